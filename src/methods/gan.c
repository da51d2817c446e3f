/* GANs whose networks are representations: DCGAN (Radford et al. 2016) and BiGAN (Donahue et
 * al. 2017; "adversarial feature learning"), two optimizer phases per step (method record's
 * n_phases): the discriminator's, then the generator's (and BiGAN's encoder's).
 *
 * Generator (both), after the PyTorch DCGAN example scaled to S x S images (S a multiple of 4):
 * z (B, K) as (B, K, 1, 1) -> gen.conv1 ConvTranspose2d(K, 2G, S/4, 1, 0) -> gen.bn1, ReLU
 * -> gen.conv2 ConvTranspose2d(2G, G, 4, 2, 1) -> gen.bn2, ReLU -> gen.conv3 ConvTranspose2d(G,
 * C, 4, 2, 1) -> tanh: images in [-1, 1]; no biases; weights N(0, 0.02), BatchNorm weights
 * N(1, 0.02) (the example's weights_init). Real views (pixels in [0, 1]) enter as 2 x - 1.
 *
 * DCGAN: the discriminator is the configured encoder (type "dcgan": its strided convolutions,
 * BatchNorm, LeakyReLU) and disc.out, a Conv2d over the whole last map (kernel = its side, no
 * bias) to one logit. Its pooled features (the last map's spatial mean: the discriminator's
 * penultimate layer) are what kNN and the probes read.
 * BiGAN: the encoder E is the configured encoder and head.z (Linear to K): E(x) = head.z(pooled);
 * its pooled features are the representation. The discriminator sees pairs (x, z): disc.x, a
 * dcgan convnet of model.discriminator's width and depth, flattened; disc.z Linear(K, H),
 * LeakyReLU; concatenated, disc.j Linear(., H), LeakyReLU; disc.out Linear(H, 1).
 *
 * Losses (the non-saturating ones of the DCGAN example: binary cross-entropy, means over the
 * batch), phase 0 updates the discriminator, phase 1 the generator (BiGAN: and E):
 *   DCGAN  L_D = BCE(D(x), 1) + BCE(D(G(z)), 0)  (G(z) detached);  L_G = BCE(D'(G(z)), 1)
 *   BiGAN  L_D = BCE(D(x, E(x)), 1) + BCE(D(G(z), z), 0)  (E(x), G(z) detached);
 *          L_GE = BCE(D'(x, E(x)), 0) + BCE(D'(G(z), z), 1)
 * with D' the discriminator after its step, G(z) (and E(x)) those of phase 0 (one forward of
 * each per step, as the example reuses `fake`), every D call in training mode (its own batch
 * statistics and running-statistics update, as the example's three netD calls). */
#include "methods_internal.h"

#include <string.h>

#define GAN_STREAM_STEP 0x47414e0001ull
#define GAN_STREAM_SAMPLE 0x47414e0002ull

typedef struct gan_method {
    ssl_method_t base;
    int bigan;
    int64_t k, g, s, c; /* latent dims, generator width, first map side, image channels */
    ssl_nn_conv_transpose2d_t gconv[3];
    ssl_nn_batchnorm_t gbn[2];
    ssl_nn_conv2d_t dout_conv;         /* DCGAN: disc.out */
    ssl_encoder_t *dx;                 /* BiGAN: disc.x */
    ssl_nn_linear_t dz, dj, dout, ez;  /* BiGAN: disc.z, disc.j, disc.out, head.z */
    float slope;
    uint64_t seed;
    /* phase 0's results for phase 1 (arena tensors of the step's tape) */
    ssl_tensor_t *x, *z, *fake, *ex;
} gan_method_t;

/* N(mean, 0.02) in place: the DCGAN example's weights_init */
static void dcgan_init(ssl_tensor_t *t, float mean, uint64_t seed, const char *name)
{
    ssl_nn_fill_normal(t, mean, 0.02f, seed ^ ssl_nn_name_stream(name));
}

static int create_generator(gan_method_t *gm, ssl_method_build_t *b)
{
    ssl_params_t *p = b->online;
    int64_t k = gm->k, g = gm->g;
    const ssl_init_t ti = SSL_INIT_TORCH_DEFAULT;
    const struct { const char *name; int64_t in, out; int kern, stride, pad; } l[3] = {
        {"gen.conv1", k, 2 * g, (int)gm->s, 1, 0},
        {"gen.conv2", 2 * g, g, 4, 2, 1},
        {"gen.conv3", g, gm->c, 4, 2, 1}};
    for (int i = 0; i < 3; i++) {
        if (ssl_nn_conv_transpose2d_init(&gm->gconv[i], p, l[i].name, l[i].in, l[i].out,
                                         l[i].kern, l[i].stride, l[i].pad, 0, 0, ti,
                                         b->seed + 10 + (uint64_t)i) != SSL_OK)
            return ssl_last_status();
        dcgan_init(gm->gconv[i].weight, 0.0f, b->seed, l[i].name);
    }
    const char *bn[2] = {"gen.bn1", "gen.bn2"};
    for (int i = 0; i < 2; i++) {
        if (ssl_nn_batchnorm_init(&gm->gbn[i], p, bn[i], i ? g : 2 * g, 1, 0.1f, 1e-5f) != SSL_OK)
            return ssl_last_status();
        dcgan_init(gm->gbn[i].weight, 1.0f, b->seed, bn[i]);
    }
    return SSL_OK;
}

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    gan_method_t *gm = (gan_method_t *)m;
    gm->bigan = m->loss[0].type == SSL_LOSS_BIGAN;
    static const char *const gkeys[] = {"latent_dim", "width", NULL};
    ssl_cfg_t gc = ssl__method_section(m, b, "generator");
    ssl_cfg_keys(&gc, gkeys);
    gm->k = ssl_cfg_int(&gc, "latent_dim", 100, 1, 4096);
    gm->g = ssl_cfg_int(&gc, "width", 64, 1, 4096);
    int64_t dw = 64, dd = 2, hidden = 512;
    if (gm->bigan) {
        static const char *const dkeys[] = {"width", "depth", "hidden", NULL};
        ssl_cfg_t dc = ssl__method_section(m, b, "discriminator");
        ssl_cfg_keys(&dc, dkeys);
        dw = ssl_cfg_int(&dc, "width", 64, 1, 4096);
        dd = ssl_cfg_int(&dc, "depth", 2, 1, 6);
        hidden = ssl_cfg_int(&dc, "hidden", 512, 1, 65536);
    }
    if (ssl_cfg_status(b->root))
        return ssl_cfg_status(b->root);
    const char *name = gm->bigan ? "bigan" : "dcgan";
    if (ssl__method_pixel_view(m, b, name, "compares images in [-1, 1] made from", 4) != SSL_OK)
        return ssl_last_status();
    const ssl_encoder_cfg_t *ec = ssl_encoder_config(m->enc);
    if (!gm->bigan && ec->kind != SSL_ENC_CONVNET) {
        ssl_cfg_t enc = ssl_cfg_obj(b->model, "encoder");
        return ssl_cfg_fail(&enc, "type", "the dcgan's discriminator is the encoder: type "
                            "\"dcgan\" (strided convolutions, LeakyReLU)");
    }
    gm->s = m->env.view_size / 4;
    gm->c = b->ds->c;
    gm->seed = b->seed;
    if (create_generator(gm, b) != SSL_OK)
        return ssl_last_status();
    ssl_params_t *p = b->online;
    const ssl_init_t ti = SSL_INIT_TORCH_DEFAULT;
    int64_t side = m->env.view_size;
    if (!gm->bigan) {
        for (int i = 0; i < ec->convnet.depth; i++)
            side /= 2; /* 4x4, stride 2, padding 1 */
        if (side < 1)
            return ssl__method_fail(b, "model.encoder", "depth", "%d halvings leave nothing of "
                                    "a %d-pixel view", ec->convnet.depth, m->env.view_size);
        gm->slope = (float)ec->convnet.slope;
        if (ssl_nn_conv2d_init(&gm->dout_conv, p, "disc.out", ssl_encoder_dim(m->enc), 1,
                               (int)side, 1, 0, 0, ti, b->seed + 20) != SSL_OK)
            return ssl_last_status();
        dcgan_init(gm->dout_conv.weight, 0.0f, b->seed, "disc.out");
        return SSL_OK;
    }
    ssl_encoder_cfg_t dcfg;
    ssl_encoder_preset("dcgan", &dcfg);
    dcfg.convnet.in_channels = (int)gm->c;
    dcfg.convnet.width = (int)dw;
    dcfg.convnet.depth = (int)dd;
    gm->slope = (float)dcfg.convnet.slope;
    for (int i = 0; i < dd; i++)
        side /= 2; /* 4x4, stride 2, padding 1 */
    if (side < 1 || ((int64_t)dw << (dd - 1)) > 8192)
        return ssl__method_fail(b, "model.discriminator", side < 1 ? "depth" : "width",
                                "does not fit a %d-pixel view", m->env.view_size);
    if (!(gm->dx = ssl_encoder_create(&dcfg, p, "disc.x", b->seed + 21)))
        return ssl_last_status();
    int64_t flat = ssl_encoder_dim(gm->dx) * side * side;
    if (ssl_nn_linear_init(&gm->ez, p, "head.z", ssl_encoder_dim(m->enc), gm->k, 1, ti,
                           b->seed + 22) != SSL_OK ||
        ssl_nn_linear_init(&gm->dz, p, "disc.z", gm->k, hidden, 1, ti, b->seed + 23) != SSL_OK ||
        ssl_nn_linear_init(&gm->dj, p, "disc.j", flat + hidden, hidden, 1, ti, b->seed + 24) !=
            SSL_OK ||
        ssl_nn_linear_init(&gm->dout, p, "disc.out", hidden, 1, 1, ti, b->seed + 25) != SSL_OK)
        return ssl_last_status();
    return SSL_OK;
}

static void gan_free(ssl_method_t *m)
{
    ssl_encoder_free(((gan_method_t *)m)->dx);
}

static const char *const *phase_params(const ssl_method_t *m, int phase)
{
    static const char *const dcgan[2][3] = {{"encoder.", "disc.", NULL}, {"gen.", NULL, NULL}};
    static const char *const bigan[2][4] = {{"disc.", NULL, NULL, NULL},
                                            {"gen.", "encoder.", "head.", NULL}};
    return ((const gan_method_t *)m)->bigan ? bigan[phase] : dcgan[phase];
}

/* G(z): (B, K) -> (B, C, S, S) in [-1, 1] */
static ssl_tensor_t *generate(gan_method_t *gm, ssl_ctx_t *ctx, ssl_tensor_t *z, int training)
{
    int64_t B = z ? z->shape[0] : 0;
    ssl_tensor_t *h = ssl_reshape(ctx, z, 4, (int64_t[]){B, gm->k, 1, 1});
    for (int i = 0; i < 2; i++)
        h = ssl_nn_batchnorm_relu_forward(ctx, &gm->gbn[i],
                                          ssl_nn_conv_transpose2d_forward(ctx, &gm->gconv[i], h),
                                          training);
    return ssl_tanh(ctx, ssl_nn_conv_transpose2d_forward(ctx, &gm->gconv[2], h));
}

/* the discriminator's logits (B) of images x (and BiGAN's latents z), training mode; DCGAN:
 * its pooled features in *pooled (may be NULL) */
static ssl_tensor_t *discriminate(gan_method_t *gm, ssl_ctx_t *ctx, ssl_tensor_t *x,
                                  ssl_tensor_t *z, ssl_tensor_t **pooled)
{
    ssl_encoder_out_t o;
    int64_t B = x ? x->shape[0] : 0;
    if (!gm->bigan) {
        if (ssl_encoder_forward(ctx, gm->base.enc, x, NULL, 0, 1, &o) != SSL_OK)
            return NULL;
        if (pooled)
            *pooled = o.pooled;
        return ssl_reshape(ctx, ssl_nn_conv2d_forward(ctx, &gm->dout_conv, o.fmap), 1,
                           (int64_t[]){B});
    }
    if (ssl_encoder_forward(ctx, gm->dx, x, NULL, 0, 1, &o) != SSL_OK)
        return NULL;
    int64_t flat = o.fmap->numel / B;
    ssl_tensor_t *parts[2] = {ssl_reshape(ctx, o.fmap, 2, (int64_t[]){B, flat}),
                              ssl_leaky_relu(ctx, ssl_nn_linear_forward(ctx, &gm->dz, z),
                                             gm->slope)};
    ssl_tensor_t *h = ssl_leaky_relu(
        ctx, ssl_nn_linear_forward(ctx, &gm->dj, ssl_concat(ctx, parts, 2, 1)), gm->slope);
    return ssl_reshape(ctx, ssl_nn_linear_forward(ctx, &gm->dout, h), 1, (int64_t[]){B});
}

/* binary cross-entropy of logits against all-1 (real) or all-0 labels, mean over the batch */
static ssl_tensor_t *bce(ssl_ctx_t *ctx, ssl_tensor_t *logits, int real)
{
    ssl_tensor_t *l = real ? logits : ssl_scale(ctx, logits, -1.0f, 0.0f);
    return ssl_scale(ctx, ssl_mean_all(ctx, ssl_log_sigmoid(ctx, l)), -1.0f, 0.0f);
}

/* E(x) = head.z(pooled encoder features), and the pooled features in *h */
static ssl_tensor_t *encode(gan_method_t *gm, ssl_ctx_t *ctx, ssl_tensor_t *x, int training,
                            ssl_tensor_t **h)
{
    ssl_encoder_out_t o;
    if (ssl_encoder_forward(ctx, gm->base.enc, x, NULL, 0, training, &o) != SSL_OK)
        return NULL;
    *h = o.pooled;
    return ssl_nn_linear_forward(ctx, &gm->ez, o.pooled);
}

static ssl_tensor_t *draw_z(gan_method_t *gm, ssl_ctx_t *ctx, const ssl_batch_t *b,
                            const ssl_step_pos_t *pos)
{
    int64_t B = b->size;
    if (b->noise) { /* the caller's draws (step-parity tests) */
        if (b->noise_dim != gm->k) {
            ssl_set_error(SSL_ERR_SHAPE, "%s: the batch's noise has %lld dims per sample, the "
                          "latent %lld (model.generator.latent_dim)", gm->base.def->name,
                          (long long)b->noise_dim, (long long)gm->k);
            return NULL;
        }
        return ssl_tensor_from(ctx, 2, (int64_t[]){B, gm->k}, b->noise);
    }
    ssl_tensor_t *z = ssl_tensor_2d(ctx, B, gm->k);
    if (z)
        ssl_rng_fill_normal(z->data, (size_t)(B * gm->k), 0.0f, 1.0f, gm->seed,
                            ssl_rng_stream(GAN_STREAM_STEP, (uint64_t)pos->step, 0),
                            (uint64_t)(ssl__method_row0(ctx, B) * gm->k));
    return z;
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    gan_method_t *gm = (gan_method_t *)m;
    ssl_tensor_t *L;
    if (pos->phase == 0) {
        gm->x = ssl_scale(ctx, ssl__method_view(b, 0), 2.0f, -1.0f);
        if (!(gm->z = draw_z(gm, ctx, b, pos)) || !(gm->fake = generate(gm, ctx, gm->z, 1)))
            return NULL;
        ssl_tensor_t *h = NULL, *fake = ssl_detach(ctx, gm->fake), *real_logits, *fake_logits;
        if (gm->bigan) {
            if (!(gm->ex = encode(gm, ctx, gm->x, 1, &h)))
                return NULL;
            real_logits = discriminate(gm, ctx, gm->x, ssl_detach(ctx, gm->ex), NULL);
            fake_logits = discriminate(gm, ctx, fake, gm->z, NULL);
        } else {
            real_logits = discriminate(gm, ctx, gm->x, NULL, &h);
            fake_logits = discriminate(gm, ctx, fake, NULL, NULL);
        }
        L = ssl_add(ctx, bce(ctx, real_logits, 1), bce(ctx, fake_logits, 0));
        m->last_z = h; /* the representation of the real images (collapse metrics) */
        ssl__method_add_part(m, "d", L);
        return L;
    }
    if (gm->bigan) { /* in this order: each call updates the running statistics */
        ssl_tensor_t *real = bce(ctx, discriminate(gm, ctx, gm->x, gm->ex, NULL), 0);
        L = ssl_add(ctx, real, bce(ctx, discriminate(gm, ctx, gm->fake, gm->z, NULL), 1));
    } else
        L = bce(ctx, discriminate(gm, ctx, gm->fake, NULL, NULL), 1);
    ssl__method_add_part(m, gm->bigan ? "ge" : "g", L);
    return L;
}

/* BiGAN's reconstructions G(E(x)) and samples G(z), z ~ N(0, I), eval mode, in [0, 1] */
static int pictures(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t n, uint64_t seed,
                    ssl_tensor_t **recon, ssl_tensor_t **samples)
{
    gan_method_t *gm = (gan_method_t *)m;
    *recon = *samples = NULL;
    ssl_tensor_t *h = NULL;
    if (x && gm->bigan) {
        ssl_tensor_t *ex = encode(gm, ctx, ssl_scale(ctx, x, 2.0f, -1.0f), 0, &h);
        *recon = ex ? ssl_scale(ctx, generate(gm, ctx, ex, 0), 0.5f, 0.5f) : NULL;
    }
    ssl_tensor_t *z = n > 0 ? ssl_tensor_2d(ctx, n, gm->k) : NULL; /* eval.samples 0: none */
    if (z) {
        ssl_rng_fill_normal(z->data, (size_t)(n * gm->k), 0.0f, 1.0f, seed, GAN_STREAM_SAMPLE,
                            0);
        *samples = ssl_scale(ctx, generate(gm, ctx, z, 0), 0.5f, 0.5f);
    }
    return (*samples || n < 1) && (*recon || !x || !gm->bigan) ? SSL_OK : ssl_last_status();
}

static const int k_types[] = {SSL_LOSS_DCGAN, SSL_LOSS_BIGAN, -1};

const ssl_method_def_t ssl__method_gan = {
    .name = "gan",
    .loss_types = k_types,
    .size = sizeof(gan_method_t),
    .target = SSL_TARGET_NONE,
    .create = create,
    .free = gan_free,
    .n_phases = 2,
    .phase_params = phase_params,
    .loss = loss,
    .pictures = pictures,
};
