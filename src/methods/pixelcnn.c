/* Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
 * Decoders"), unconditional, on one-channel images. The network is the method's own
 * (model.network; no encoder). The input is 2 x - 1 (x the un-normalised view in [0, 1]).
 * Layer l keeps two stacks of C channels:
 *   vertical:   v' = conv (k/2+1, k) over rows i-k/2 .. i, columns j-k/2 .. j+k/2   (2C out)
 *               v  <- tanh(v'_a) * sigmoid(v'_b)
 *   horizontal: h' = conv (1, k/2+1) over columns j-k/2 .. j of row i            (2C out)
 *                    + v2h(v' shifted down a row)                               (1x1, 2C)
 *               h  <- res(tanh(h'_a) * sigmoid(h'_b)) + h                        (1x1, C)
 * Layer 0 (first_kernel, "type A") reads the image itself: its horizontal conv covers columns
 * j-k/2-1 .. j-1 (the row shifted right, so not the pixel itself) and it has no residual (one
 * input channel). The down shift keeps the vertical stack's rows i-.. strictly above the
 * horizontal stack's row, so output pixel (i, j) depends on the pixels before it in raster
 * order only, and the union of the two stacks has no blind spot. Every pad is ssl_pad2d, every
 * conv an unpadded ssl_conv2d. Output: relu, a 1x1 C -> hidden, relu, a 1x1 hidden -> 256
 * (linears on the channels-last map), the logits of the pixel's 256 values; loss
 * ssl_loss_pixelcnn (nats per dimension). Features: the horizontal stack's output of layer
 * model.network.feature_layer, mean-pooled over positions (feature_grid 0) or max-pooled to a
 * feature_grid x feature_grid grid and flattened (C g^2); `--readout LAYER[/maxG]` of the
 * evaluation commands picks another layer and pooling for one evaluation. */
#include "methods_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCNN_STREAM_SAMPLE 0x50434e4e01ull /* the pictures' draws */
#define PCNN_MAX_LAYERS 64
enum { LEVELS = 256 };

typedef struct gated_layer {
    ssl_nn_conv2d_t v, h, v2h, res; /* network.layers.L.{v, h, v2h, res}; layer 0 has no res */
} gated_layer_t;

typedef struct pixelcnn_method {
    ssl_method_t base;
    gated_layer_t layer[PCNN_MAX_LAYERS];
    ssl_nn_linear_t out1, out2; /* network.out1: C -> hidden, network.out2: hidden -> 256 */
    int n_layers, first_kernel, kernel, feature_layer, feature_grid;
    int64_t ch, hidden;
} pixelcnn_method_t;

/* "LAYER" or "LAYER/maxG": the features' layer and pooling in place of the config's */
static int parse_readout(pixelcnn_method_t *pm, const char *s, int64_t size)
{
    char *end = NULL;
    long layer = strtol(s, &end, 10), grid = 0;
    int ok = end != s && layer >= 1 && layer <= pm->n_layers;
    if (ok && !strncmp(end, "/max", 4)) {
        const char *g = end + 4;
        grid = strtol(g, &end, 10);
        ok = end != g && grid >= 1 && grid <= size;
    }
    if (!ok || *end)
        return ssl_set_error(SSL_ERR_CONFIG, "readout '%s': expected LAYER (mean-pooled) or "
                             "LAYER/maxG (max-pooled to a G x G grid) with LAYER in 1..%d and G "
                             "in 1..%lld", s, pm->n_layers, (long long)size);
    pm->feature_layer = (int)layer;
    pm->feature_grid = (int)grid;
    return SSL_OK;
}

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    static const char *const keys[] = {"channels",      "layers",       "first_kernel",
                                       "kernel",        "hidden",       "feature_layer",
                                       "feature_grid",  NULL};
    pixelcnn_method_t *pm = (pixelcnn_method_t *)m;
    ssl_cfg_t c = ssl__method_section(m, b, "network");
    ssl_cfg_keys(&c, keys);
    pm->ch = ssl_cfg_int(&c, "channels", 64, 1, 4096);
    pm->n_layers = ssl_cfg_int(&c, "layers", 8, 1, PCNN_MAX_LAYERS);
    pm->first_kernel = ssl_cfg_int(&c, "first_kernel", 7, 1, 31);
    pm->kernel = ssl_cfg_int(&c, "kernel", 3, 1, 31);
    pm->hidden = ssl_cfg_int(&c, "hidden", (int)pm->ch, 1, 4096);
    pm->feature_layer = ssl_cfg_int(&c, "feature_layer", (pm->n_layers + 1) / 2, 1,
                                    pm->n_layers);
    pm->feature_grid = ssl_cfg_int(&c, "feature_grid", 0, 0, 64);
    if (ssl_cfg_status(b->root))
        return ssl_cfg_status(b->root);
    if (pm->first_kernel % 2 == 0)
        return ssl_cfg_fail(&c, "first_kernel", "%d is even: the kernel is centred on the pixel",
                            pm->first_kernel);
    if (pm->kernel % 2 == 0)
        return ssl_cfg_fail(&c, "kernel", "%d is even: the kernel is centred on the pixel",
                            pm->kernel);
    if (b->ds->c != 1)
        return ssl__method_fail(b, "data", "dataset",
                                "the pixelcnn models one-channel images, the %s images have "
                                "%lld channels",
                                m->env.dataset ? m->env.dataset : "data", (long long)b->ds->c);
    if (ssl__method_pixel_view(m, b, "pixelcnn", "classifies 256 levels of", 0) != SSL_OK)
        return ssl_last_status();
    if (pm->feature_grid > m->env.view_size)
        return ssl_cfg_fail(&c, "feature_grid", "%d is larger than the %lld-pixel view",
                            pm->feature_grid, (long long)m->env.view_size);
    if (m->env.readout && parse_readout(pm, m->env.readout, m->env.view_size) != SSL_OK)
        return ssl_last_status();
    m->readout_read = 1;
    const ssl_init_t ti = SSL_INIT_TORCH_DEFAULT;
    ssl_params_t *p = b->online;
    int64_t C = pm->ch;
    for (int l = 0; l < pm->n_layers; l++) {
        gated_layer_t *g = &pm->layer[l];
        int k = l ? pm->kernel : pm->first_kernel;
        int64_t in = l ? C : 1;
        char name[96];
        uint64_t s = b->seed + 16 * (uint64_t)l;
#define LNAME(part) (snprintf(name, sizeof name, "network.layers.%d." part, l), name)
        if (ssl_nn_conv2d_init_hw(&g->v, p, LNAME("v"), in, 2 * C, k / 2 + 1, k, 1, 0, 1, ti,
                                  s + 1) != SSL_OK ||
            ssl_nn_conv2d_init_hw(&g->h, p, LNAME("h"), in, 2 * C, 1, k / 2 + 1, 1, 0, 1, ti,
                                  s + 2) != SSL_OK ||
            ssl_nn_conv2d_init(&g->v2h, p, LNAME("v2h"), 2 * C, 2 * C, 1, 1, 0, 1, ti, s + 3) !=
                SSL_OK ||
            (l && ssl_nn_conv2d_init(&g->res, p, LNAME("res"), C, C, 1, 1, 0, 1, ti, s + 4) !=
                      SSL_OK))
            return ssl_last_status();
#undef LNAME
    }
    if (ssl_nn_linear_init(&pm->out1, p, "network.out1", C, pm->hidden, 1, ti, b->seed + 2) !=
            SSL_OK ||
        ssl_nn_linear_init(&pm->out2, p, "network.out2", pm->hidden, LEVELS, 1, ti,
                           b->seed + 3) != SSL_OK)
        return ssl_last_status();
    return SSL_OK;
}

/* tanh(first half of the channels) * sigmoid(second half) */
static ssl_tensor_t *gate(ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    ssl_tensor_t *ab[2];
    if (!x || ssl_split(ctx, x, 1, 2, ab) != SSL_OK)
        return NULL;
    return ssl_mul(ctx, ssl_tanh(ctx, ab[0]), ssl_sigmoid(ctx, ab[1]));
}

static int half(const pixelcnn_method_t *pm, int l)
{
    return (l ? pm->kernel : pm->first_kernel) / 2;
}

/* layer l's vertical pre-activation v' (B, 2C, R, W) of v: rows i-c .. i */
static ssl_tensor_t *vertical(pixelcnn_method_t *pm, ssl_ctx_t *ctx, int l, ssl_tensor_t *v)
{
    int c = half(pm, l);
    return ssl_nn_conv2d_forward(ctx, &pm->layer[l].v, ssl_pad2d(ctx, v, c, 0, c, c));
}

/* layer l's horizontal stack on h (B, C or 1, R, W) plus vh, the v2h of the vertical
 * pre-activation shifted down a row (B, 2C, R, W) */
static ssl_tensor_t *horizontal(pixelcnn_method_t *pm, ssl_ctx_t *ctx, int l, ssl_tensor_t *h,
                                ssl_tensor_t *vh)
{
    const gated_layer_t *g = &pm->layer[l];
    int c = half(pm, l);
    /* layer 0: the row shifted right by one, so the pixel itself is not read */
    ssl_tensor_t *hin = l ? ssl_pad2d(ctx, h, 0, 0, c, 0) : ssl_pad2d(ctx, h, 0, 0, c + 1, -1);
    ssl_tensor_t *hg = gate(ctx, ssl_add(ctx, ssl_nn_conv2d_forward(ctx, &g->h, hin), vh));
    return l ? ssl_add(ctx, ssl_nn_conv2d_forward(ctx, &g->res, hg), h) : hg;
}

/* The stacks' first n_layers layers over images x (B, 1, H, W) in [0, 1]: the last one's
 * horizontal output (B, C, H, W); *feat (may be NULL) gets that of layer feature_layer. */
static ssl_tensor_t *trunk(pixelcnn_method_t *pm, ssl_ctx_t *ctx, ssl_tensor_t *x, int n_layers,
                           ssl_tensor_t **feat)
{
    ssl_tensor_t *in = ssl_scale(ctx, x, 2.0f, -1.0f), *v = in, *h = in;
    for (int l = 0; l < n_layers && h; l++) {
        ssl_tensor_t *vp = vertical(pm, ctx, l, v);
        h = horizontal(pm, ctx, l, h,
                       ssl_nn_conv2d_forward(ctx, &pm->layer[l].v2h,
                                             ssl_pad2d(ctx, vp, 1, -1, 0, 0)));
        v = gate(ctx, vp);
        if (feat && l + 1 == pm->feature_layer)
            *feat = h;
    }
    return h;
}

/* What row i of images x (B, 1, H, W) gets from the rows above it, vh[l] (B, 2C, 1, W) per
 * layer: the v2h of the vertical pre-activation of row i - 1 (zeros above row 0), from the
 * rows that reach it only (ssl__pixelcnn_rows - 1 of them). */
static int row_context(pixelcnn_method_t *pm, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t i,
                       ssl_tensor_t **vh)
{
    int64_t n = x->shape[0], W = x->shape[3], up = ssl__pixelcnn_rows(&pm->base) - 1;
    int64_t a = i > up ? i - up : 0;
    ssl_tensor_t *v = i ? ssl_scale(ctx, ssl_slice(ctx, x, 2, a, i - a), 2.0f, -1.0f) : NULL;
    for (int l = 0; l < pm->n_layers; l++) {
        ssl_tensor_t *vp = i ? vertical(pm, ctx, l, v)
                             : ssl_tensor_zeros(ctx, 4, (int64_t[]){n, 2 * pm->ch, 1, W});
        vh[l] = ssl_nn_conv2d_forward(ctx, &pm->layer[l].v2h,
                                      i ? ssl_slice(ctx, vp, 2, i - 1 - a, 1) : vp);
        if (!vh[l])
            return ssl_last_status();
        v = i ? gate(ctx, vp) : NULL;
    }
    return SSL_OK;
}

/* The horizontal stacks over row i of x given its row_context: (B, C, 1, W) */
static ssl_tensor_t *row_trunk(pixelcnn_method_t *pm, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t i,
                               ssl_tensor_t *const *vh)
{
    ssl_tensor_t *h = ssl_scale(ctx, ssl_slice(ctx, x, 2, i, 1), 2.0f, -1.0f);
    for (int l = 0; l < pm->n_layers && h; l++)
        h = horizontal(pm, ctx, l, h, vh[l]);
    return h;
}

/* relu, out1, relu, out2 over channels-last rows (..., C) -> (..., 256) */
static ssl_tensor_t *head(pixelcnn_method_t *pm, ssl_ctx_t *ctx, ssl_tensor_t *h)
{
    ssl_tensor_t *z = ssl_relu(ctx, ssl_nn_linear_forward(ctx, &pm->out1, ssl_relu(ctx, h)));
    return ssl_nn_linear_forward(ctx, &pm->out2, z);
}

/* logits (B, H, W, 256) of images x (B, 1, H, W) */
static ssl_tensor_t *logits_of(pixelcnn_method_t *pm, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    ssl_tensor_t *h = trunk(pm, ctx, x, pm->n_layers, NULL);
    return head(pm, ctx, ssl_permute(ctx, h, (int[]){0, 2, 3, 1}));
}

/* The rows the logits of row i read: i - rows + 1 .. i. The vertical stack's layer 0 reaches
 * first_kernel / 2 rows up, each later layer kernel / 2 more, and the down shift one more. */
int ssl__pixelcnn_rows(const ssl_method_t *m)
{
    const pixelcnn_method_t *pm = (const pixelcnn_method_t *)m;
    return pm->first_kernel / 2 + (pm->n_layers - 1) * (pm->kernel / 2) + 2;
}

ssl_tensor_t *ssl__pixelcnn_row_logits(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x,
                                       int64_t i)
{
    if (m->def != &ssl__method_pixelcnn) {
        ssl_set_error(SSL_ERR_INVALID, "pixelcnn: the method is %s", m->def->name);
        return NULL;
    }
    pixelcnn_method_t *pm = (pixelcnn_method_t *)m;
    ssl_tensor_t *vh[PCNN_MAX_LAYERS];
    if (row_context(pm, ctx, x, i, vh) != SSL_OK)
        return NULL;
    ssl_tensor_t *h = row_trunk(pm, ctx, x, i, vh);
    return head(pm, ctx, ssl_permute(ctx, h, (int[]){0, 2, 3, 1}));
}

ssl_tensor_t *ssl__pixelcnn_logits(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    if (m->def != &ssl__method_pixelcnn) {
        ssl_set_error(SSL_ERR_INVALID, "pixelcnn: the method is %s", m->def->name);
        return NULL;
    }
    return logits_of((pixelcnn_method_t *)m, ctx, x);
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    (void)pos;
    ssl_tensor_t *x = ssl__method_view(b, 0);
    return ssl_loss_pixelcnn(ctx, logits_of((pixelcnn_method_t *)m, ctx, x), x);
}

static ssl_tensor_t *features(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    /* the layers after feature_layer do not change its output: not run */
    pixelcnn_method_t *pm = (pixelcnn_method_t *)m;
    ssl_tensor_t *f = NULL;
    if (!trunk(pm, ctx, x, pm->feature_layer, &f))
        return NULL;
    if (!pm->feature_grid)
        return ssl_global_avg_pool(ctx, f);
    ssl_tensor_t *g = ssl_adaptive_max_pool2d(ctx, f, pm->feature_grid, pm->feature_grid);
    return g ? ssl_reshape(ctx, g, 2, (int64_t[]){g->shape[0], g->numel / g->shape[0]}) : NULL;
}

/* the exact -log p(x): the per-pixel nats summed */
static int nll(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t index0, uint64_t seed,
               double *sum, ssl_loss_parts_t *part_sums)
{
    (void)index0;
    (void)seed;
    part_sums->n = 0;
    ssl_tensor_t *l = ssl_loss_pixelcnn(ctx, logits_of((pixelcnn_method_t *)m, ctx, x), x);
    if (!l)
        return ssl_last_status();
    *sum = (double)l->data[0] * (double)x->numel;
    return SSL_OK;
}

/* value of a draw u in [0, 1) from the softmax of logits row z (256) */
static int draw(const float *z, float u)
{
    float mx = z[0];
    for (int k = 1; k < LEVELS; k++)
        mx = z[k] > mx ? z[k] : mx;
    double p[LEVELS], s = 0;
    for (int k = 0; k < LEVELS; k++)
        s += p[k] = exp((double)(z[k] - mx));
    double t = u * s, c = 0;
    for (int k = 0; k < LEVELS; k++)
        if ((c += p[k]) > t)
            return k;
    return LEVELS - 1;
}

/* n samples drawn pixel by pixel in raster order. Per row i, once: the vertical stacks over the
 * rows above that reach it (row_context; later rows cannot change them); per pixel (i, j): the
 * horizontal stacks over row i alone (row_trunk), the head at column j. Two scratch contexts
 * (one reset per row, one per pixel) at the caller's precision; no reconstructions. */
static int pictures(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t n, uint64_t seed,
                    ssl_tensor_t **recon, ssl_tensor_t **samples)
{
    (void)x;
    pixelcnn_method_t *pm = (pixelcnn_method_t *)m;
    *recon = *samples = NULL;
    if (n < 1)
        return SSL_OK;
    int64_t H = m->env.view_size, W = H;
    ssl_tensor_t *s = ssl_tensor_zeros(ctx, 4, (int64_t[]){n, 1, H, W}); // (n, 1, H, W)
    ssl_ctx_t *wr = s ? ssl_ctx_create((size_t)1 << 24) : NULL;
    ssl_ctx_t *w = wr ? ssl_ctx_create((size_t)1 << 22) : NULL;
    if (!w) {
        ssl_ctx_free(wr);
        return s ? ssl_set_error(SSL_ERR_NOMEM, "pixelcnn: out of memory for sampling")
                 : ssl_last_status();
    }
    ssl_ctx_set_grad(wr, 0);
    ssl_ctx_set_grad(w, 0);
    int st = ssl_ctx_set_precision(wr, ssl_ctx_precision(ctx));
    if (st == SSL_OK)
        st = ssl_ctx_set_precision(w, ssl_ctx_precision(ctx));
    ssl_tensor_t *vh[PCNN_MAX_LAYERS];
    for (int64_t i = 0; i < H && st == SSL_OK; i++) {
        ssl_ctx_reset(wr);
        st = row_context(pm, wr, s, i, vh);
        for (int64_t j = 0; j < W && st == SSL_OK; j++) {
            ssl_ctx_reset(w);
            ssl_tensor_t *h = ssl_slice(w, row_trunk(pm, w, s, i, vh), 3, j, 1); // (n, C, 1, 1)
            ssl_tensor_t *z = head(pm, w, ssl_reshape(w, h, 2, (int64_t[]){n, pm->ch}));
            if (!z) {
                st = ssl_last_status();
                break;
            }
            for (int64_t r = 0; r < n; r++) {
                uint64_t idx = (uint64_t)((r * H + i) * W + j);
                int k = draw(z->data + r * LEVELS, ssl_rng_uniform(seed, PCNN_STREAM_SAMPLE, idx));
                s->data[(r * H + i) * W + j] = (float)k / (float)(LEVELS - 1);
            }
        }
    }
    ssl_ctx_free(w);
    ssl_ctx_free(wr);
    if (st == SSL_OK)
        *samples = s;
    return st;
}

static const int k_types[] = {SSL_LOSS_PIXELCNN, -1};

const ssl_method_def_t ssl__method_pixelcnn = {
    .name = "pixelcnn",
    .loss_types = k_types,
    .size = sizeof(pixelcnn_method_t),
    .target = SSL_TARGET_NONE,
    .network = "network",
    .create = create,
    .loss = loss,
    .features = features,
    .nll = nll,
    .pictures = pictures,
};
