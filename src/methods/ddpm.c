/* Denoising diffusion (DDPM, Ho et al. 2020) with its U-Net's activations as the representation
 * (as DIFT / diffusion hyperfeatures read a denoiser's inner maps).
 *
 * Training: x0 = 2 v - 1 from the un-normalised view v in [0, 1]; t uniform in {0 .. T-1};
 * x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps; the U-Net predicts eps from (x_t, t); the loss
 * is the mean squared error over every element (the paper's L_simple). Schedules: the paper's
 * linear betas (1e-4 .. 0.02 over T = 1000), or Nichol & Dhariwal's cosine alpha-bar (s 0.008,
 * betas clipped at 0.999). abar_t = prod_{s <= t} (1 - beta_s), t 0-based as diffusers counts.
 *
 * The U-Net (ddpm's `Model` of diffusion_models_pytorch / the paper's, scaled to 28 x 28, without
 * attention or dropout): a sinusoidal embedding of t (C channels) through Linear(C, 4C), SiLU,
 * Linear(4C, 4C); residual blocks GroupNorm, SiLU, conv 3x3, + Linear(SiLU(temb)) per channel,
 * GroupNorm, SiLU, conv 3x3, with a 1x1 skip where the width changes:
 *   conv_in (C) -> d0 (C) -> down0 (stride 2) -> d1 (2C) -> down1 (stride 2) -> d2 (2C) -> mid
 *   -> u2 [mid, d2] (2C) -> up1 (nearest x2, conv) -> u1 [., d1] (C) -> up0 -> u0 [., d0] (C)
 *   -> GroupNorm, SiLU, conv_out (image channels).
 * Features (kNN, probes, embed): one block's output at noise level readout_t, mean-pooled over
 * its positions; the image's noise is drawn from a hash of the image itself, so an image has one
 * feature vector whatever batch it is in. Samples: ancestral sampling over sample_steps levels
 * spaced evenly in {0 .. T-1} (the respacing of Nichol & Dhariwal: betas recomputed from abar at
 * the kept levels; all T levels: the paper's sampler), variance beta (the paper's sigma^2 =
 * beta_t), clipped to [-1, 1] at the end. */
#include "methods_internal.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DDPM_STREAM_T 0x4444504d01ull
#define DDPM_STREAM_EPS 0x4444504d02ull
#define DDPM_STREAM_FEAT 0x4444504d03ull
#define DDPM_STREAM_SAMPLE 0x4444504d04ull

enum { B_D0, B_D1, B_D2, B_MID, B_U2, B_U1, B_U0, N_BLOCKS };
static const char *const k_block_names[] = {"d0", "d1", "d2", "mid", "u2", "u1", "u0", NULL};

typedef struct res_block {
    ssl_tensor_t *n1w, *n1b, *n2w, *n2b;
    ssl_nn_conv2d_t conv1, conv2, skip;
    ssl_nn_linear_t temb;
    int has_skip;
} res_block_t;

typedef struct ddpm_method {
    ssl_method_t base;
    int64_t ch, c, size;
    int groups, T, readout_t, readout_block, sample_steps;
    double *abar; /* (T) */
    ssl_nn_linear_t time1, time2;
    ssl_nn_conv2d_t conv_in, down0, down1, up1, up0, conv_out;
    ssl_tensor_t *now, *nob; /* norm_out */
    res_block_t blk[N_BLOCKS];
    uint64_t seed;
} ddpm_method_t;

static ssl_tensor_t *norm_param(ssl_params_t *p, const char *pre, const char *name, int64_t c,
                                float v)
{
    char buf[256];
    ssl_tensor_t *t = ssl_params_add(p, ssl_nn_name(buf, sizeof buf, pre, name), 1, &c,
                                     SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY);
    if (t)
        ssl_nn_fill_const(t, v);
    return t;
}

static int res_init(res_block_t *r, ssl_params_t *p, const char *pre, int64_t in, int64_t out,
                    int64_t tdim, uint64_t seed)
{
    char buf[256];
    const ssl_init_t ti = SSL_INIT_TORCH_DEFAULT;
    r->has_skip = in != out;
    if (!(r->n1w = norm_param(p, pre, "norm1.weight", in, 1.0f)) ||
        !(r->n1b = norm_param(p, pre, "norm1.bias", in, 0.0f)) ||
        ssl_nn_conv2d_init(&r->conv1, p, ssl_nn_name(buf, sizeof buf, pre, "conv1"), in, out, 3,
                           1, 1, 1, ti, seed + 1) != SSL_OK ||
        ssl_nn_linear_init(&r->temb, p, ssl_nn_name(buf, sizeof buf, pre, "temb"), tdim, out, 1,
                           ti, seed + 2) != SSL_OK ||
        !(r->n2w = norm_param(p, pre, "norm2.weight", out, 1.0f)) ||
        !(r->n2b = norm_param(p, pre, "norm2.bias", out, 0.0f)) ||
        ssl_nn_conv2d_init(&r->conv2, p, ssl_nn_name(buf, sizeof buf, pre, "conv2"), out, out, 3,
                           1, 1, 1, ti, seed + 3) != SSL_OK ||
        (r->has_skip && ssl_nn_conv2d_init(&r->skip, p, ssl_nn_name(buf, sizeof buf, pre, "skip"),
                                           in, out, 1, 1, 0, 1, ti, seed + 4) != SSL_OK))
        return ssl_last_status();
    return SSL_OK;
}

static ssl_tensor_t *silu(ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    return ssl_mul(ctx, x, ssl_sigmoid(ctx, x));
}

/* x + res(x, temb) */
static ssl_tensor_t *res_forward(ssl_ctx_t *ctx, const res_block_t *r, int groups, ssl_tensor_t *x,
                                 ssl_tensor_t *temb_act)
{
    ssl_tensor_t *h = silu(ctx, ssl_group_norm(ctx, x, groups, r->n1w, r->n1b, 1e-6f));
    h = ssl_nn_conv2d_forward(ctx, &r->conv1, h);
    ssl_tensor_t *tb = ssl_nn_linear_forward(ctx, &r->temb, temb_act); /* (B, out) */
    int64_t B = tb ? tb->shape[0] : 0, C = tb ? tb->shape[1] : 0;
    h = ssl_add(ctx, h, ssl_reshape(ctx, tb, 4, (int64_t[]){B, C, 1, 1}));
    h = silu(ctx, ssl_group_norm(ctx, h, groups, r->n2w, r->n2b, 1e-6f));
    h = ssl_nn_conv2d_forward(ctx, &r->conv2, h);
    return ssl_add(ctx, r->has_skip ? ssl_nn_conv2d_forward(ctx, &r->skip, x) : x, h);
}

/* the sinusoidal embedding of the B levels t (diffusers' get_timestep_embedding, flip_sin_to_cos
 * false, shift 1): (B, ch) = [sin(t f_i), cos(t f_i)], f_i = exp(-ln(10000) i / (ch/2 - 1)),
 * computed in double and rounded once (t f reaches 1000 radians, where a float's last bit of f
 * moves the sine by 1e-4) */
static ssl_tensor_t *time_embedding(ssl_ctx_t *ctx, const float *t, int64_t B, int64_t ch)
{
    ssl_tensor_t *e = ssl_tensor_2d(ctx, B, ch);
    if (!e)
        return NULL;
    int64_t half = ch / 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < half; i++) {
            double a = (double)t[b] * exp(-log(10000.0) * (double)i / (double)(half - 1));
            e->data[b * ch + i] = (float)sin(a);
            e->data[b * ch + half + i] = (float)cos(a);
        }
    return e;
}

/* the U-Net's eps prediction of x (B, C, S, S) at levels t (B); blocks[i] (may be NULL) gets
 * block i's output */
static ssl_tensor_t *unet(ddpm_method_t *dm, ssl_ctx_t *ctx, ssl_tensor_t *x, const float *t,
                          ssl_tensor_t **blocks)
{
    int64_t B = x->shape[0];
    int g = dm->groups;
    ssl_tensor_t *temb = time_embedding(ctx, t, B, dm->ch);
    temb = ssl_nn_linear_forward(ctx, &dm->time2,
                                 silu(ctx, ssl_nn_linear_forward(ctx, &dm->time1, temb)));
    ssl_tensor_t *ta = silu(ctx, temb), *o[N_BLOCKS];
    ssl_tensor_t *h = ssl_nn_conv2d_forward(ctx, &dm->conv_in, x);
    o[B_D0] = res_forward(ctx, &dm->blk[B_D0], g, h, ta);
    o[B_D1] = res_forward(ctx, &dm->blk[B_D1], g, ssl_nn_conv2d_forward(ctx, &dm->down0, o[B_D0]),
                          ta);
    o[B_D2] = res_forward(ctx, &dm->blk[B_D2], g, ssl_nn_conv2d_forward(ctx, &dm->down1, o[B_D1]),
                          ta);
    o[B_MID] = res_forward(ctx, &dm->blk[B_MID], g, o[B_D2], ta);
    ssl_tensor_t *cat[2] = {o[B_MID], o[B_D2]};
    o[B_U2] = res_forward(ctx, &dm->blk[B_U2], g, ssl_concat(ctx, cat, 2, 1), ta);
    cat[0] = ssl_nn_conv2d_forward(ctx, &dm->up1, ssl_upsample_nearest2d(ctx, o[B_U2], 2));
    cat[1] = o[B_D1];
    o[B_U1] = res_forward(ctx, &dm->blk[B_U1], g, ssl_concat(ctx, cat, 2, 1), ta);
    cat[0] = ssl_nn_conv2d_forward(ctx, &dm->up0, ssl_upsample_nearest2d(ctx, o[B_U1], 2));
    cat[1] = o[B_D0];
    o[B_U0] = res_forward(ctx, &dm->blk[B_U0], g, ssl_concat(ctx, cat, 2, 1), ta);
    if (blocks)
        memcpy(blocks, o, sizeof o);
    h = silu(ctx, ssl_group_norm(ctx, o[B_U0], g, dm->now, dm->nob, 1e-6f));
    return ssl_nn_conv2d_forward(ctx, &dm->conv_out, h);
}

/* abar_t for t = 0 .. T-1 */
static int make_schedule(ddpm_method_t *dm, const ssl_loss_cfg_t *L)
{
    int T = dm->T = L->ddpm.timesteps;
    if (!(dm->abar = malloc((size_t)T * sizeof *dm->abar)))
        return ssl_set_error(SSL_ERR_NOMEM, "ddpm: out of memory");
    double a = 1.0;
    for (int t = 0; t < T; t++) {
        double beta;
        if (L->ddpm.schedule == SSL_DDPM_COSINE) { /* improved DDPM: betas from alpha-bar */
            double s = 0.008, f0 = cos(s / (1 + s) * M_PI / 2);
            double f1 = cos(((double)t / T + s) / (1 + s) * M_PI / 2) / f0;
            double f2 = cos(((double)(t + 1) / T + s) / (1 + s) * M_PI / 2) / f0;
            beta = fmin(1.0 - (f2 * f2) / (f1 * f1), 0.999);
        } else { /* torch.linspace(beta_start, beta_end, T) */
            beta = L->ddpm.beta_start +
                   (L->ddpm.beta_end - L->ddpm.beta_start) * (double)t / (double)(T - 1);
        }
        a *= 1.0 - beta;
        dm->abar[t] = a;
    }
    return SSL_OK;
}

/* "BLOCK@T": the readout's block and noise level in place of the config's */
static int parse_readout(ddpm_method_t *dm, const char *s, int T)
{
    const char *at = strchr(s, '@');
    char *end = NULL;
    long t = at ? strtol(at + 1, &end, 10) : -1;
    int blk = -1;
    for (int i = 0; at && k_block_names[i]; i++)
        if ((size_t)(at - s) == strlen(k_block_names[i]) && !strncmp(s, k_block_names[i], at - s))
            blk = i;
    if (blk < 0 || !end || *end || end == at + 1 || t < 0 || t >= T)
        return ssl_set_error(SSL_ERR_CONFIG, "readout '%s': expected BLOCK@T with BLOCK one of "
                             "d0, d1, d2, mid, u2, u1, u0 and T a level in 0..%d", s, T - 1);
    dm->readout_block = blk;
    dm->readout_t = (int)t;
    return SSL_OK;
}

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    ddpm_method_t *dm = (ddpm_method_t *)m;
    static const char *const keys[] = {"channels",       "groups",       "readout_t",
                                       "readout_block",  "sample_steps", NULL};
    ssl_cfg_t u = ssl__method_section(m, b, "unet");
    ssl_cfg_keys(&u, keys);
    dm->ch = ssl_cfg_int(&u, "channels", 32, 2, 1024);
    dm->groups = (int)ssl_cfg_int(&u, "groups", 8, 1, 1024);
    dm->readout_block = ssl_cfg_enum(&u, "readout_block", k_block_names, B_MID);
    int T = m->loss[0].ddpm.timesteps;
    dm->readout_t = (int)ssl_cfg_int(&u, "readout_t", 50, 0, T - 1);
    dm->sample_steps = (int)ssl_cfg_int(&u, "sample_steps", 100, 1, T);
    if (ssl_cfg_status(b->root))
        return ssl_cfg_status(b->root);
    if (m->env.readout && parse_readout(dm, m->env.readout, T) != SSL_OK)
        return ssl_last_status();
    m->readout_read = 1;
    if (dm->ch % 2 || dm->ch < 4)
        return ssl_cfg_fail(&u, "channels", "%lld: the time embedding needs an even width >= 4",
                            (long long)dm->ch);
    if (dm->ch % dm->groups)
        return ssl_cfg_fail(&u, "groups", "%d does not divide channels %lld", dm->groups,
                            (long long)dm->ch);
    if (ssl__method_pixel_view(m, b, "ddpm", "diffuses images in [-1, 1] made from", 4) != SSL_OK)
        return ssl_last_status();
    dm->c = b->ds->c;
    dm->size = m->env.view_size;
    dm->seed = b->seed;
    if (make_schedule(dm, &m->loss[0]) != SSL_OK)
        return ssl_last_status();
    ssl_params_t *p = b->online;
    int64_t c = dm->ch, c2 = 2 * dm->ch, td = 4 * dm->ch;
    const ssl_init_t ti = SSL_INIT_TORCH_DEFAULT;
    uint64_t s = b->seed;
    if (ssl_nn_linear_init(&dm->time1, p, "unet.time1", c, td, 1, ti, s + 1) != SSL_OK ||
        ssl_nn_linear_init(&dm->time2, p, "unet.time2", td, td, 1, ti, s + 2) != SSL_OK ||
        ssl_nn_conv2d_init(&dm->conv_in, p, "unet.conv_in", dm->c, c, 3, 1, 1, 1, ti, s + 3) ||
        res_init(&dm->blk[B_D0], p, "unet.d0", c, c, td, s + 10) != SSL_OK ||
        ssl_nn_conv2d_init(&dm->down0, p, "unet.down0", c, c, 3, 2, 1, 1, ti, s + 20) ||
        res_init(&dm->blk[B_D1], p, "unet.d1", c, c2, td, s + 30) != SSL_OK ||
        ssl_nn_conv2d_init(&dm->down1, p, "unet.down1", c2, c2, 3, 2, 1, 1, ti, s + 40) ||
        res_init(&dm->blk[B_D2], p, "unet.d2", c2, c2, td, s + 50) != SSL_OK ||
        res_init(&dm->blk[B_MID], p, "unet.mid", c2, c2, td, s + 60) != SSL_OK ||
        res_init(&dm->blk[B_U2], p, "unet.u2", 2 * c2, c2, td, s + 70) != SSL_OK ||
        ssl_nn_conv2d_init(&dm->up1, p, "unet.up1", c2, c2, 3, 1, 1, 1, ti, s + 80) ||
        res_init(&dm->blk[B_U1], p, "unet.u1", 2 * c2, c, td, s + 90) != SSL_OK ||
        ssl_nn_conv2d_init(&dm->up0, p, "unet.up0", c, c, 3, 1, 1, 1, ti, s + 100) ||
        res_init(&dm->blk[B_U0], p, "unet.u0", 2 * c, c, td, s + 110) != SSL_OK ||
        !(dm->now = norm_param(p, "unet.norm_out", "weight", c, 1.0f)) ||
        !(dm->nob = norm_param(p, "unet.norm_out", "bias", c, 0.0f)) ||
        ssl_nn_conv2d_init(&dm->conv_out, p, "unet.conv_out", c, dm->c, 3, 1, 1, 1, ti, s + 120))
        return ssl_last_status();
    return SSL_OK;
}

static void ddpm_free(ssl_method_t *m)
{
    free(((ddpm_method_t *)m)->abar);
}

/* x_t (B, C, S, S) of x0 = 2 v - 1 at levels t with noise eps (B, C S S) */
static ssl_tensor_t *noised(ddpm_method_t *dm, ssl_ctx_t *ctx, const ssl_tensor_t *v,
                            const float *t, const float *eps)
{
    int64_t B = v->shape[0], n = v->numel / B;
    ssl_tensor_t *x = ssl_tensor_4d(ctx, B, dm->c, dm->size, dm->size);
    for (int64_t b = 0; x && b < B; b++) {
        double a = dm->abar[(int)t[b]];
        float sa = (float)sqrt(a), sn = (float)sqrt(1.0 - a);
        for (int64_t i = 0; i < n; i++)
            x->data[b * n + i] = sa * (2.0f * v->data[b * n + i] - 1.0f) + sn * eps[b * n + i];
    }
    return x;
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    ddpm_method_t *dm = (ddpm_method_t *)m;
    const ssl_tensor_t *v = &b->views[0];
    int64_t B = b->size, n = v->numel / B;
    ssl_tensor_t *eps = ssl_tensor_2d(ctx, B, n), *tt = ssl_tensor_2d(ctx, B, 1);
    if (!eps || !tt)
        return NULL;
    if (b->noise) { /* the caller's draws (step-parity tests): [t, eps (C S S)] per sample */
        if (b->noise_dim != 1 + n) {
            ssl_set_error(SSL_ERR_SHAPE, "ddpm: the batch's noise has %lld values per sample, "
                          "not 1 + %lld (the level t, then the image's eps)",
                          (long long)b->noise_dim, (long long)n);
            return NULL;
        }
        for (int64_t i = 0; i < B; i++) {
            float t = b->noise[i * (1 + n)];
            if (!(t >= 0 && t < dm->T && t == floorf(t))) {
                ssl_set_error(SSL_ERR_INVALID, "ddpm: sample %lld's level %g is not an integer "
                              "in 0 .. %d", (long long)i, (double)t, dm->T - 1);
                return NULL;
            }
            tt->data[i] = t;
            memcpy(eps->data + i * n, b->noise + i * (1 + n) + 1, (size_t)n * sizeof(float));
        }
    } else {
        int64_t row0 = ssl__method_row0(ctx, B);
        uint64_t st = ssl_rng_stream(DDPM_STREAM_T, (uint64_t)pos->step, 0);
        for (int64_t i = 0; i < B; i++) {
            int t = (int)(ssl_rng_uniform(dm->seed, st, (uint64_t)(row0 + i)) * (float)dm->T);
            tt->data[i] = (float)(t < dm->T ? t : dm->T - 1);
        }
        ssl_rng_fill_normal(eps->data, (size_t)(B * n), 0.0f, 1.0f, dm->seed,
                            ssl_rng_stream(DDPM_STREAM_EPS, (uint64_t)pos->step, 0),
                            (uint64_t)(row0 * n));
    }
    ssl_tensor_t *x = noised(dm, ctx, v, tt->data, eps->data);
    ssl_tensor_t *pred = x ? unet(dm, ctx, x, tt->data, NULL) : NULL;
    return pred ? ssl_mse(ctx, ssl_reshape(ctx, pred, 2, (int64_t[]){B, n}), eps) : NULL;
}

/* FNV-1a of an image's floats: its own noise stream for the readout */
static uint64_t image_hash(const float *x, int64_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        h = (h ^ u) * 1099511628211ull;
    }
    return h;
}

static ssl_tensor_t *features(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    ddpm_method_t *dm = (ddpm_method_t *)m;
    int64_t B = x->shape[0], n = x->numel / B;
    ssl_tensor_t *eps = ssl_tensor_2d(ctx, B, n), *tt = ssl_tensor_2d(ctx, B, 1);
    if (!eps || !tt)
        return NULL;
    for (int64_t i = 0; i < B; i++) {
        tt->data[i] = (float)dm->readout_t;
        ssl_rng_fill_normal(eps->data + i * n, (size_t)n, 0.0f, 1.0f, dm->seed,
                            ssl_rng_stream(DDPM_STREAM_FEAT, image_hash(x->data + i * n, n), 0),
                            0);
    }
    ssl_tensor_t *blocks[N_BLOCKS];
    ssl_tensor_t *xt = noised(dm, ctx, x, tt->data, eps->data);
    if (!xt || !unet(dm, ctx, xt, tt->data, blocks))
        return NULL;
    return ssl_global_avg_pool(ctx, blocks[dm->readout_block]);
}

/* n samples: ancestral sampling over sample_steps levels, images in [0, 1] */
static int pictures(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t n, uint64_t seed,
                    ssl_tensor_t **recon, ssl_tensor_t **samples)
{
    (void)x;
    ddpm_method_t *dm = (ddpm_method_t *)m;
    *recon = *samples = NULL;
    if (n < 1) /* eval.samples 0: none */
        return SSL_OK;
    int64_t d = dm->c * dm->size * dm->size;
    int64_t K = m->env.sample_steps > 0 ? m->env.sample_steps : dm->sample_steps;
    if (K > dm->T)
        return ssl_set_error(SSL_ERR_INVALID, "ddpm: %lld sampling levels, the model has %d",
                             (long long)K, dm->T);
    float *cur = malloc((size_t)(n * d) * sizeof(float)), *tv = malloc((size_t)n * sizeof(float));
    /* a context of its own, reset at every level (the caller's holds its tensors) */
    ssl_ctx_t *sc = ssl_ctx_create((size_t)64 << 20);
    int st = cur && tv && sc ? SSL_OK : ssl_set_error(SSL_ERR_NOMEM, "ddpm: out of memory");
    if (sc)
        ssl_ctx_set_grad(sc, 0);
    if (st == SSL_OK)
        ssl_rng_fill_normal(cur, (size_t)(n * d), 0.0f, 1.0f, seed, DDPM_STREAM_SAMPLE, 0);
    /* levels tau_k = round(k (T - 1) / (K - 1)), k = K-1 .. 0 (all T: every level) */
    for (int64_t k = K - 1; k >= 0 && st == SSL_OK; k--) {
        int t = K > 1 ? (int)llround((double)k * (dm->T - 1) / (double)(K - 1)) : dm->T - 1;
        int tp = k > 0 ? (int)llround((double)(k - 1) * (dm->T - 1) / (double)(K - 1)) : -1;
        double ab = dm->abar[t], abp = tp >= 0 ? dm->abar[tp] : 1.0;
        double beta = 1.0 - ab / abp, alpha = 1.0 - beta;
        ssl_ctx_reset(sc);
        for (int64_t i = 0; i < n; i++)
            tv[i] = (float)t;
        ssl_tensor_t *xt = ssl_tensor_from(sc, 4, (int64_t[]){n, dm->c, dm->size, dm->size}, cur);
        ssl_tensor_t *e = xt ? unet(dm, sc, xt, tv, NULL) : NULL;
        if (!e) {
            st = ssl_last_status();
            break;
        }
        float c1 = (float)(1.0 / sqrt(alpha)), c2 = (float)(beta / sqrt(1.0 - ab));
        float sig = k > 0 ? (float)sqrt(beta) : 0.0f;
        float *z = NULL;
        if (k > 0 && !(z = malloc((size_t)(n * d) * sizeof(float)))) {
            st = ssl_set_error(SSL_ERR_NOMEM, "ddpm: out of memory");
            break;
        }
        if (z)
            ssl_rng_fill_normal(z, (size_t)(n * d), 0.0f, 1.0f, seed,
                                ssl_rng_stream(DDPM_STREAM_SAMPLE, (uint64_t)k, 1), 0);
        for (int64_t i = 0; i < n * d; i++)
            cur[i] = c1 * (cur[i] - c2 * e->data[i]) + (z ? sig * z[i] : 0.0f);
        free(z);
    }
    ssl_ctx_free(sc);
    if (st == SSL_OK) {
        ssl_tensor_t *s = ssl_tensor_4d(ctx, n, dm->c, dm->size, dm->size);
        for (int64_t i = 0; s && i < n * d; i++) {
            float v = cur[i] < -1.0f ? -1.0f : cur[i] > 1.0f ? 1.0f : cur[i];
            s->data[i] = 0.5f * (v + 1.0f);
        }
        st = s ? SSL_OK : ssl_last_status();
        *samples = s;
    }
    free(cur);
    free(tv);
    return st;
}

static const int k_types[] = {SSL_LOSS_DDPM, -1};

const ssl_method_def_t ssl__method_ddpm = {
    .name = "ddpm",
    .loss_types = k_types,
    .size = sizeof(ddpm_method_t),
    .target = SSL_TARGET_NONE,
    .network = "unet",
    .create = create,
    .free = ddpm_free,
    .loss = loss,
    .features = features,
    .pictures = pictures,
    .stepped_sampler = 1,
};
