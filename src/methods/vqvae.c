/* A VQ-VAE image tokenizer (van den Oord et al. 2017), BEiT's first stage: the ViT encoder's
 * patch tokens (one per patch: a 4-pixel patch gives a 7 x 7 code grid on 28 x 28 images) go
 * through a linear (head.proj) to the code width; each is replaced by its nearest row of a
 * learned codebook (head.codebook, K x D) with the straight-through estimator. Both the rows
 * and the codes are L2-normalised first (ViT-VQGAN's codes, as BEiT v2's tokenizer has them):
 * with raw vectors one code took every patch within 40 steps on Fashion-MNIST, and with
 * normalised ones two codes did: codes that no row chooses get no gradient. So dead codes are
 * restarted (Jukebox's and SoundStream's remedy): head.code_usage keeps an exponential average
 * of each code's share of the step's rows (1: its share under uniform use), and after the
 * optimizer step a code whose average fell below restart_below becomes one of the step's rows
 * (chosen by a hash of the step and the code), its average reset to 1. The decoder
 * takes the code grid back to pixels: 3x3 conv D -> C0, ReLU, 4x4 transposed conv stride 2
 * C0 -> C0/2, ReLU, 4x4 transposed conv stride 2 C0/2 -> C (the VQ-VAE paper's and the common
 * PyTorch VQ-VAE code's upsampling). Loss: ssl_loss_vqvae (MSE on [0, 1] pixels + codebook +
 * beta commitment). Features: the mean over patches of the encoder's pre-quantisation output.
 * At every epoch's end the eval split's reconstruction MSE, code perplexity and codes used. */
#include "methods_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct vqvae_method {
    ssl_method_t base;
    ssl__vq_tok_t tok;
    ssl_tensor_t *usage;        /* head.code_usage (K): the codes' average share, 1 = uniform */
    float restart_decay, restart_below;
    ssl_tensor_t *step_z;       /* the step's normalised rows (B T, D) and their codes, for */
    int32_t *step_codes;        /* after_step (arena of the step) */
    ssl_nn_conv2d_t conv;                /* decoder.conv: D -> C0, 3x3 */
    ssl_nn_conv_transpose2d_t up1, up2;  /* decoder.up1: C0 -> C0/2, decoder.up2: C0/2 -> C */
    int64_t c0;
    /* the eval pass's sums (test_batch / test_result) */
    int64_t *hist; /* (K) codes chosen */
    double sse;    /* squared pixel errors */
    int64_t n_px;
} vqvae_method_t;

/* ---------------------------------------------------------------- the tokenizer (shared) */

int ssl__vq_tok_read(ssl_cfg_t *h, int64_t *codebook_size, int64_t *code_dim)
{
    *codebook_size = ssl_cfg_int(h, "codebook_size", 512, 2, 1 << 16);
    *code_dim = ssl_cfg_int(h, "code_dim", 32, 1, 4096);
    return ssl_cfg_status(h);
}

int ssl__vq_tok_init(ssl__vq_tok_t *t, ssl_encoder_t *enc, ssl_params_t *p, int64_t K,
                     int64_t D, uint64_t seed)
{
    t->enc = enc;
    t->k = K;
    t->d = D;
    t->grid = ssl_encoder_config(enc)->vit.image_size / ssl_encoder_config(enc)->vit.patch_size;
    if (ssl_nn_linear_init(&t->proj, p, "head.proj", ssl_encoder_dim(enc), D, 1,
                           SSL_INIT_TRUNC_NORMAL_02, seed + 1) != SSL_OK)
        return ssl_last_status();
    /* U(-1/K, 1/K) as the VQ-VAE code's nn.Embedding init; not decayed (decay would pull the
     * codes to 0 however the encoder moves) */
    t->codebook = ssl_params_add(p, "head.codebook", 2, (int64_t[]){K, D}, SSL_PARAM_TRAINABLE,
                                 SSL_PARAM_NO_DECAY);
    if (!t->codebook)
        return ssl_last_status();
    for (int64_t i = 0; i < K * D; i++)
        t->codebook->data[i] =
            (2.0f * ssl_rng_uniform(seed + 2, 0x5651, (uint64_t)i) - 1.0f) / (float)K;
    return SSL_OK;
}

ssl_tensor_t *ssl__vq_tok_encode(const ssl__vq_tok_t *t, ssl_ctx_t *ctx, ssl_tensor_t *x,
                                 int training)
{
    ssl_encoder_out_t o;
    if (ssl_encoder_forward(ctx, t->enc, x, NULL, 0, training, &o) != SSL_OK)
        return NULL;
    ssl_tensor_t *z = ssl_nn_linear_forward(ctx, &t->proj, o.tokens); // (B, T, D)
    z = ssl_reshape(ctx, z, 2, (int64_t[]){x->shape[0] * t->grid * t->grid, t->d});
    return ssl_l2_normalize(ctx, z, 1, 1e-12f);
}

ssl_tensor_t *ssl__vq_tok_codebook(const ssl__vq_tok_t *t, ssl_ctx_t *ctx)
{
    return ssl_l2_normalize(ctx, t->codebook, 1, 1e-12f);
}

int32_t *ssl__vq_tok_codes(ssl_ctx_t *ctx, const ssl_tensor_t *z, const ssl_tensor_t *codebook)
{
    if (!z || !codebook)
        return NULL;
    int32_t *codes = ssl_arena_alloc(ctx, (size_t)(z->shape[0] > 0 ? z->shape[0] : 1) *
                                              sizeof(int32_t));
    if (!codes) {
        ssl_set_error(SSL_ERR_NOMEM, "vq tokenizer: out of arena memory for %lld codes",
                      (long long)z->shape[0]);
        return NULL;
    }
    return ssl_vq_nearest(ctx, z, codebook, codes) == SSL_OK ? codes : NULL;
}

/* ---------------------------------------------------------------- the family */

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    static const char *const keys[] = {"codebook_size", "code_dim",      "channels",
                                       "restart_decay", "restart_below", NULL};
    vqvae_method_t *vm = (vqvae_method_t *)m;
    ssl_cfg_t h = ssl__method_section(m, b, "head");
    ssl_cfg_keys(&h, keys);
    int64_t K, D;
    ssl__vq_tok_read(&h, &K, &D);
    vm->c0 = ssl_cfg_int(&h, "channels", 64, 2, 1024);
    vm->restart_decay = ssl_cfg_float_ex(&h, "restart_decay", 0.9, 0.0, 1.0, SSL_CFG_HI_OPEN);
    vm->restart_below = ssl_cfg_float(&h, "restart_below", 0.03, 0.0, 1.0);
    if (ssl_cfg_status(b->root))
        return ssl_cfg_status(b->root);
    if (vm->c0 % 2)
        return ssl_cfg_fail(&h, "channels", "%lld is odd: the first upsampling halves it",
                            (long long)vm->c0);
    const ssl_vit_cfg_t *v = &ssl_encoder_config(m->enc)->vit;
    if (v->patch_size != 4) {
        ssl_cfg_t ec = ssl_cfg_obj(b->model, "encoder");
        return ssl_cfg_fail(&ec, "patch_size",
                            "%d: the vqvae tokenizer's decoder upsamples its code grid 4x, so "
                            "each code stands for a 4-pixel patch",
                            v->patch_size);
    }
    if (ssl__method_pixel_view(m, b, "vqvae tokenizer", "reconstructs", 0) != SSL_OK)
        return ssl_last_status();
    if (m->eval_blocks > 1)
        return ssl__method_fail(b, "eval", "blocks",
                                "%d: the vqvae tokenizer's features are its pooled "
                                "pre-quantisation output (one readout)",
                                m->eval_blocks);
    if (m->env.ranks > 1 && vm->restart_below > 0)
        return ssl_cfg_fail(&h, "restart_below",
                            "%g: dead-code restarts read one rank's rows, which would set the "
                            "ranks' codebooks apart; set 0 to train on %d ranks",
                            (double)vm->restart_below, m->env.ranks);
    int64_t c = b->ds->c, c0 = vm->c0;
    const ssl_init_t ti = SSL_INIT_TORCH_DEFAULT;
    ssl_params_t *p = b->online;
    if (ssl__vq_tok_init(&vm->tok, m->enc, p, K, D, b->seed) != SSL_OK ||
        ssl_nn_conv2d_init(&vm->conv, p, "decoder.conv", D, c0, 3, 1, 1, 1, ti, b->seed + 3) !=
            SSL_OK ||
        ssl_nn_conv_transpose2d_init(&vm->up1, p, "decoder.up1", c0, c0 / 2, 4, 2, 1, 0, 1, ti,
                                     b->seed + 4) != SSL_OK ||
        ssl_nn_conv_transpose2d_init(&vm->up2, p, "decoder.up2", c0 / 2, c, 4, 2, 1, 0, 1, ti,
                                     b->seed + 5) != SSL_OK)
        return ssl_last_status();
    if (!(vm->usage = ssl_params_add(p, "head.code_usage", 1, &K, SSL_PARAM_BUFFER, 0)))
        return ssl_last_status();
    for (int64_t k = 0; k < K; k++)
        vm->usage->data[k] = 1.0f;
    if (!(vm->hist = calloc((size_t)K, sizeof *vm->hist)))
        return ssl_set_error(SSL_ERR_NOMEM, "vqvae: out of memory");
    return SSL_OK;
}

static void destroy(ssl_method_t *m)
{
    free(((vqvae_method_t *)m)->hist);
}

/* quantised rows (B g g, D) -> the decoder's image (B, C, 4g, 4g) */
static ssl_tensor_t *decode(vqvae_method_t *vm, ssl_ctx_t *ctx, ssl_tensor_t *q, int64_t B)
{
    int64_t g = vm->tok.grid;
    ssl_tensor_t *h = ssl_reshape(ctx, q, 4, (int64_t[]){B, g, g, vm->tok.d});
    h = ssl_permute(ctx, h, (int[]){0, 3, 1, 2}); // (B, D, g, g)
    h = ssl_relu(ctx, ssl_nn_conv2d_forward(ctx, &vm->conv, h));
    h = ssl_relu(ctx, ssl_nn_conv_transpose2d_forward(ctx, &vm->up1, h));
    return ssl_nn_conv_transpose2d_forward(ctx, &vm->up2, h);
}

/* x through encoder, quantiser and decoder: the reconstruction; *z, *e (the normalised
 * codebook), *codes when asked */
static ssl_tensor_t *reconstruct(vqvae_method_t *vm, ssl_ctx_t *ctx, ssl_tensor_t *x,
                                 int training, ssl_tensor_t **z_out, ssl_tensor_t **e_out,
                                 int32_t **codes_out)
{
    ssl_tensor_t *z = ssl__vq_tok_encode(&vm->tok, ctx, x, training); // (B T, D)
    ssl_tensor_t *e = ssl__vq_tok_codebook(&vm->tok, ctx);           // (K, D)
    int32_t *codes = ssl__vq_tok_codes(ctx, z, e);
    if (!codes)
        return NULL;
    if (z_out)
        *z_out = z;
    if (e_out)
        *e_out = e;
    if (codes_out)
        *codes_out = codes;
    return decode(vm, ctx, ssl_vq_straight_through(ctx, z, e, codes), x->shape[0]);
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    (void)pos;
    vqvae_method_t *vm = (vqvae_method_t *)m;
    ssl_tensor_t *x = ssl__method_view(b, 0), *z = NULL, *e = NULL; // x (B, C, H, W)
    int32_t *codes = NULL;
    ssl_tensor_t *recon = reconstruct(vm, ctx, x, 1, &z, &e, &codes);
    if (!recon)
        return NULL;
    int64_t N = z->shape[0], B = x->shape[0], T = N / B;
    ssl_tensor_t *zq = ssl_embedding(ctx, e, codes, 1, &N); // (B T, D)
    m->last_z = ssl_mean(ctx, ssl_reshape(ctx, z, 3, (int64_t[]){B, T, vm->tok.d}), 1, 0);
    vm->step_z = z;
    vm->step_codes = codes;
    return ssl_loss_vqvae(ctx, recon, x, z, zq, m->loss[0].vqvae.beta, &m->parts);
}

/* The row of the step's N that restarts code k at global step s: a hash, so a restart is
 * reproducible (tests/fixtures/methods_ref/beit.py draws the same rows). */
static int64_t restart_row(int64_t s, int64_t k, int64_t N)
{
    uint64_t h = (uint64_t)s * 0x9E3779B97F4A7C15ull + (uint64_t)k * 0xBF58476D1CE4E5B9ull;
    return (int64_t)(h % (uint64_t)N);
}

/* usage = decay usage + (1 - decay) share K / N; codes below restart_below restarted */
static int after_step(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_step_pos_t *pos)
{
    (void)ctx;
    vqvae_method_t *vm = (vqvae_method_t *)m;
    if (!vm->step_z)
        return SSL_OK;
    int64_t N = vm->step_z->shape[0], K = vm->tok.k, D = vm->tok.d;
    float *u = vm->usage->data, d = vm->restart_decay;
    for (int64_t k = 0; k < K; k++)
        u[k] *= d;
    for (int64_t i = 0; i < N; i++)
        u[vm->step_codes[i]] += (1.0f - d) * (float)K / (float)N;
    for (int64_t k = 0; k < K && vm->restart_below > 0; k++)
        if (u[k] < vm->restart_below) {
            memcpy(vm->tok.codebook->data + k * D,
                   vm->step_z->data + restart_row(pos->step, k, N) * D, (size_t)D * sizeof(float));
            u[k] = 1.0f;
        }
    vm->step_z = NULL;
    return SSL_OK;
}

static ssl_tensor_t *features(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    vqvae_method_t *vm = (vqvae_method_t *)m;
    ssl_tensor_t *z = ssl__vq_tok_encode(&vm->tok, ctx, x, 0);
    int64_t B = x->shape[0];
    return z ? ssl_mean(ctx, ssl_reshape(ctx, z, 3, (int64_t[]){B, z->shape[0] / B, vm->tok.d}),
                        1, 0)
             : NULL;
}

static int test_batch(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int first)
{
    vqvae_method_t *vm = (vqvae_method_t *)m;
    if (first) {
        memset(vm->hist, 0, (size_t)vm->tok.k * sizeof *vm->hist);
        vm->sse = 0;
        vm->n_px = 0;
    }
    ssl_tensor_t *z = NULL;
    int32_t *codes = NULL;
    ssl_tensor_t *r = reconstruct(vm, ctx, x, 0, &z, NULL, &codes);
    if (!r)
        return ssl_last_status();
    for (int64_t i = 0; i < z->shape[0]; i++)
        vm->hist[codes[i]]++;
    double s = 0;
    for (int64_t i = 0; i < r->numel; i++) {
        double d = (double)r->data[i] - x->data[i];
        s += d * d;
    }
    vm->sse += s;
    vm->n_px += r->numel;
    return SSL_OK;
}

/* rec_mse per pixel; perplexity exp(H) of the codes' histogram; codes_used */
static int test_result(ssl_method_t *m, ssl_loss_parts_t *out)
{
    vqvae_method_t *vm = (vqvae_method_t *)m;
    int64_t total = 0, used = 0;
    for (int64_t k = 0; k < vm->tok.k; k++) {
        total += vm->hist[k];
        used += vm->hist[k] > 0;
    }
    double h = 0;
    for (int64_t k = 0; k < vm->tok.k && total > 0; k++)
        if (vm->hist[k] > 0) {
            double p = (double)vm->hist[k] / (double)total;
            h -= p * log(p);
        }
    out->n = 3;
    out->name[0] = "rec_mse";
    out->value[0] = vm->n_px > 0 ? (float)(vm->sse / (double)vm->n_px) : NAN;
    out->name[1] = "perplexity";
    out->value[1] = (float)exp(h);
    out->name[2] = "codes_used";
    out->value[2] = (float)used;
    return SSL_OK;
}

/* reconstructions through the codes, clamped to [0, 1]; no samples (no prior over codes) */
static int pictures(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t n, uint64_t seed,
                    ssl_tensor_t **recon, ssl_tensor_t **samples)
{
    (void)n;
    (void)seed;
    *samples = NULL;
    *recon = x ? ssl_clamp(ctx, reconstruct((vqvae_method_t *)m, ctx, x, 0, NULL, NULL, NULL),
                           0.0f,
                           1.0f)
               : NULL;
    return *recon || !x ? SSL_OK : ssl_last_status();
}

static const int k_types[] = {SSL_LOSS_VQVAE, -1};

const ssl_method_def_t ssl__method_vqvae = {
    .name = "vqvae",
    .loss_types = k_types,
    .size = sizeof(vqvae_method_t),
    .target = SSL_TARGET_NONE,
    .needs_vit = 1,
    .create = create,
    .free = destroy,
    .loss = loss,
    .after_step = after_step,
    .features = features,
    .test_batch = test_batch,
    .test_result = test_result,
    .pictures = pictures,
};
