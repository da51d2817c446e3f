/* VAE and beta-VAE (Kingma & Welling 2014; Higgins et al. 2017). The configured encoder's pooled
 * features go through two linears to the mean and log-variance of q(z|x) = N(mu, diag(exp lv));
 * z = mu + exp(lv / 2) eps; the decoder maps z to Bernoulli logits of the image: a linear to a
 * (C0, S/4, S/4) map and ReLU, then transposed convolutions 3x3 (as the Keras VAE example's
 * "same" ones): C0 -> C0 stride 2, ReLU, C0 -> C0/2 stride 2, ReLU, C0/2 -> C stride 1. The loss
 * is ssl_loss_vae (rec + beta kl) against the un-normalised view. Features: mu. */
#include "methods_internal.h"

#include <string.h>

/* counter-RNG streams of the reparameterisation noise: training steps, the likelihood pass,
 * the picture samples */
#define VAE_STREAM_STEP 0x5641450001ull
#define VAE_STREAM_NLL 0x5641450002ull
#define VAE_STREAM_SAMPLE 0x5641450003ull

typedef struct vae_method {
    ssl_method_t base;
    ssl_nn_linear_t mu, logvar;               /* head.mu, head.logvar: D -> K */
    ssl_nn_linear_t fc;                       /* decoder.fc: K -> C0 s s */
    ssl_nn_conv_transpose2d_t up1, up2, out; /* decoder.up1, decoder.up2, decoder.out */
    int64_t k, c0, s;                         /* latent dims, decoder width, first map side */
    uint64_t seed;
} vae_method_t;

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    static const char *const keys[] = {"latent_dim", "channels", NULL};
    vae_method_t *vm = (vae_method_t *)m;
    ssl_cfg_t h = ssl__method_section(m, b, "head");
    ssl_cfg_keys(&h, keys);
    vm->k = ssl_cfg_int(&h, "latent_dim", 32, 1, 4096);
    vm->c0 = ssl_cfg_int(&h, "channels", 64, 2, 1024);
    if (ssl_cfg_status(b->root))
        return ssl_cfg_status(b->root);
    if (vm->c0 % 2)
        return ssl_cfg_fail(&h, "channels", "%lld is odd: the second upsampling halves it",
                            (long long)vm->c0);
    if (ssl__method_pixel_view(m, b, "vae", "models Bernoulli", 4) != SSL_OK)
        return ssl_last_status();
    if (m->eval_blocks > 1)
        return ssl__method_fail(b, "eval", "blocks",
                                "%d: the vae's features are mu (one readout)", m->eval_blocks);
    vm->s = m->env.view_size / 4;
    vm->seed = b->seed;
    int64_t d = ssl_encoder_dim(m->enc), c = b->ds->c, k = vm->k, c0 = vm->c0;
    const ssl_init_t ti = SSL_INIT_TORCH_DEFAULT;
    ssl_params_t *p = b->online;
    if (ssl_nn_linear_init(&vm->mu, p, "head.mu", d, k, 1, ti, b->seed + 1) != SSL_OK ||
        ssl_nn_linear_init(&vm->logvar, p, "head.logvar", d, k, 1, ti, b->seed + 2) != SSL_OK ||
        ssl_nn_linear_init(&vm->fc, p, "decoder.fc", k, c0 * vm->s * vm->s, 1, ti, b->seed + 3) !=
            SSL_OK ||
        ssl_nn_conv_transpose2d_init(&vm->up1, p, "decoder.up1", c0, c0, 3, 2, 1, 1, 1, ti,
                                     b->seed + 4) != SSL_OK ||
        ssl_nn_conv_transpose2d_init(&vm->up2, p, "decoder.up2", c0, c0 / 2, 3, 2, 1, 1, 1, ti,
                                     b->seed + 5) != SSL_OK ||
        ssl_nn_conv_transpose2d_init(&vm->out, p, "decoder.out", c0 / 2, c, 3, 1, 1, 0, 1, ti,
                                     b->seed + 6) != SSL_OK)
        return ssl_last_status();
    return SSL_OK;
}

/* (B, K) -> Bernoulli logits (B, C, S, S) */
static ssl_tensor_t *decode(vae_method_t *vm, ssl_ctx_t *ctx, ssl_tensor_t *z)
{
    int64_t B = z ? z->shape[0] : 0;
    ssl_tensor_t *h = ssl_relu(ctx, ssl_nn_linear_forward(ctx, &vm->fc, z));
    h = ssl_reshape(ctx, h, 4, (int64_t[]){B, vm->c0, vm->s, vm->s});
    h = ssl_relu(ctx, ssl_nn_conv_transpose2d_forward(ctx, &vm->up1, h));
    h = ssl_relu(ctx, ssl_nn_conv_transpose2d_forward(ctx, &vm->up2, h));
    return ssl_nn_conv_transpose2d_forward(ctx, &vm->out, h);
}

/* mu and logvar (B, K) of images x; training: batch statistics in the encoder's norms */
static int encode(vae_method_t *vm, ssl_ctx_t *ctx, ssl_tensor_t *x, int training,
                  ssl_tensor_t **mu, ssl_tensor_t **lv)
{
    ssl_encoder_out_t o;
    if (ssl_encoder_forward(ctx, vm->base.enc, x, NULL, 0, training, &o) != SSL_OK)
        return ssl_last_status();
    *mu = ssl_nn_linear_forward(ctx, &vm->mu, o.pooled);
    *lv = ssl_nn_linear_forward(ctx, &vm->logvar, o.pooled);
    return *mu && *lv ? SSL_OK : ssl_last_status();
}

/* (B, K) standard normal draws: row i from (seed, stream, (row0 + i) K ...) */
static ssl_tensor_t *draw_eps(vae_method_t *vm, ssl_ctx_t *ctx, int64_t B, uint64_t seed,
                              uint64_t stream, int64_t row0)
{
    ssl_tensor_t *e = ssl_tensor_2d(ctx, B, vm->k);
    if (e)
        ssl_rng_fill_normal(e->data, (size_t)(B * vm->k), 0.0f, 1.0f, seed, stream,
                            (uint64_t)(row0 * vm->k));
    return e;
}

/* z = mu + exp(lv / 2) eps */
static ssl_tensor_t *reparam(ssl_ctx_t *ctx, ssl_tensor_t *mu, ssl_tensor_t *lv, ssl_tensor_t *eps)
{
    return ssl_add(ctx, mu, ssl_mul(ctx, ssl_exp(ctx, ssl_scale(ctx, lv, 0.5f, 0.0f)), eps));
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    vae_method_t *vm = (vae_method_t *)m;
    ssl_tensor_t *x = ssl__method_view(b, 0), *mu = NULL, *lv = NULL, *eps;
    int64_t B = b->size;
    if (b->noise) { /* the caller's draws (step-parity tests) */
        if (b->noise_dim != vm->k) {
            ssl_set_error(SSL_ERR_SHAPE, "vae: the batch's noise has %lld dims per sample, the "
                          "latent %lld (model.head.latent_dim)",
                          (long long)b->noise_dim, (long long)vm->k);
            return NULL;
        }
        eps = ssl_tensor_from(ctx, 2, (int64_t[]){B, vm->k}, b->noise);
    } else {
        uint64_t stream = ssl_rng_stream(VAE_STREAM_STEP, (uint64_t)pos->step, 0);
        eps = draw_eps(vm, ctx, B, vm->seed, stream, ssl__method_row0(ctx, B));
    }
    if (!eps || encode(vm, ctx, x, 1, &mu, &lv) != SSL_OK)
        return NULL;
    ssl_tensor_t *logits = decode(vm, ctx, reparam(ctx, mu, lv, eps));
    m->last_z = mu;
    return ssl_loss_vae(ctx, logits, x, mu, lv, m->loss[0].vae.beta, &m->parts);
}

static ssl_tensor_t *features(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    ssl_tensor_t *mu = NULL, *lv = NULL;
    return encode((vae_method_t *)m, ctx, x, 0, &mu, &lv) == SSL_OK ? mu : NULL;
}

/* the negative ELBO with beta 1, one z per image */
static int nll(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t index0, uint64_t seed,
               double *sum, ssl_loss_parts_t *part_sums)
{
    vae_method_t *vm = (vae_method_t *)m;
    ssl_tensor_t *mu = NULL, *lv = NULL;
    int64_t B = x->shape[0];
    if (encode(vm, ctx, x, 0, &mu, &lv) != SSL_OK)
        return ssl_last_status();
    ssl_tensor_t *eps = draw_eps(vm, ctx, B, seed, VAE_STREAM_NLL, index0);
    ssl_tensor_t *l = ssl_loss_vae(ctx, decode(vm, ctx, reparam(ctx, mu, lv, eps)), x, mu, lv,
                                   1.0f, part_sums);
    if (!l)
        return ssl_last_status();
    *sum = (double)l->data[0] * (double)B;
    for (int i = 0; i < part_sums->n; i++)
        part_sums->value[i] *= (float)B;
    return SSL_OK;
}

/* reconstructions from the posterior means, samples from z ~ N(0, I): Bernoulli means */
static int pictures(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t n, uint64_t seed,
                    ssl_tensor_t **recon, ssl_tensor_t **samples)
{
    vae_method_t *vm = (vae_method_t *)m;
    ssl_tensor_t *mu = NULL, *lv = NULL;
    *recon = *samples = NULL;
    if (x && encode(vm, ctx, x, 0, &mu, &lv) == SSL_OK)
        *recon = ssl_sigmoid(ctx, decode(vm, ctx, mu));
    if (n > 0) /* eval.samples 0: none */
        *samples =
            ssl_sigmoid(ctx, decode(vm, ctx, draw_eps(vm, ctx, n, seed, VAE_STREAM_SAMPLE, 0)));
    return (*samples || n < 1) && (*recon || !x) ? SSL_OK : ssl_last_status();
}

static const int k_types[] = {SSL_LOSS_VAE, -1};

const ssl_method_def_t ssl__method_vae = {
    .name = "vae",
    .loss_types = k_types,
    .size = sizeof(vae_method_t),
    .target = SSL_TARGET_NONE,
    .create = create,
    .loss = loss,
    .features = features,
    .nll = nll,
    .pictures = pictures,
};
