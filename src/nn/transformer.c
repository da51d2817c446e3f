/* Multi-head self-attention, the pre-norm transformer block, patch embedding and the fixed 2-D
 * sin-cos positional embedding, with timm's parameter names. */
#include "core/check.h"
#include "ssl/nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define NAME(buf, pre, n) ssl_nn_name(buf, sizeof buf, pre, n)

int ssl_nn_attention_init(ssl_nn_attention_t *m, ssl_params_t *p, const char *name,
                          int64_t dim, int heads, int qkv_bias, ssl_init_t init, uint64_t seed)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(name, __func__))
        return SSL_ERR_INVALID;
    char buf[256];
    memset(m, 0, sizeof *m);
    if (heads <= 0 || dim % heads != 0)
        return ssl_set_error(SSL_ERR_CONFIG, "%s: dim %lld is not divisible by heads %d", name,
                             (long long)dim, heads);
    m->heads = heads;
    m->dim = dim;
    int st = ssl_nn_linear_init(&m->qkv, p, NAME(buf, name, "qkv"), dim, 3 * dim, qkv_bias, init,
                                seed);
    if (st == SSL_OK)
        st = ssl_nn_linear_init(&m->proj, p, NAME(buf, name, "proj"), dim, dim, 1, init, seed);
    return st;
}

/* The heads' outputs side by side (B, T, C), before the output projection. */
static ssl_tensor_t *attention_heads(ssl_ctx_t *ctx, const ssl_nn_attention_t *m,
                                     ssl_tensor_t *x, ssl_tensor_t *attn_bias)
{
    if (!x)
        return NULL;
    if (x->ndim != 3 || x->shape[2] != m->dim) {
        char s[96];
        ssl_set_error(SSL_ERR_SHAPE, "attention: input %s, expected (B, T, %lld)",
                      ssl_shape_str(x, s, sizeof s), (long long)m->dim);
        return NULL;
    }
    ssl_tensor_t *qkv = ssl_nn_linear_forward(ctx, &m->qkv, x); // (B, T, 3C)
    return ssl_attention(ctx, qkv, m->heads, attn_bias);        // (B, T, C)
}

ssl_tensor_t *ssl_nn_attention_forward(ssl_ctx_t *ctx, const ssl_nn_attention_t *m,
                                       ssl_tensor_t *x, ssl_tensor_t *attn_bias)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(m, __func__))
        return NULL;
    return ssl_nn_linear_forward(ctx, &m->proj, attention_heads(ctx, m, x, attn_bias));
}

int ssl_nn_cross_attention_init(ssl_nn_cross_attention_t *m, ssl_params_t *p, const char *name,
                                int64_t dim, int64_t kv_dim, int heads, ssl_init_t init,
                                uint64_t seed)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(name, __func__))
        return SSL_ERR_INVALID;
    char buf[256];
    memset(m, 0, sizeof *m);
    if (heads <= 0 || dim % heads != 0 || kv_dim <= 0)
        return ssl_set_error(SSL_ERR_CONFIG, "%s: dim %lld is not divisible by heads %d (or "
                             "kv_dim %lld is not positive)", name, (long long)dim, heads,
                             (long long)kv_dim);
    m->heads = heads;
    m->dim = dim;
    m->kv_dim = kv_dim;
    int st;
    if ((st = ssl_nn_linear_init(&m->q, p, NAME(buf, name, "q"), dim, dim, 1, init, seed)) ||
        (st = ssl_nn_linear_init(&m->k, p, NAME(buf, name, "k"), kv_dim, dim, 1, init, seed)) ||
        (st = ssl_nn_linear_init(&m->v, p, NAME(buf, name, "v"), kv_dim, dim, 1, init, seed)))
        return st;
    return ssl_nn_linear_init(&m->proj, p, NAME(buf, name, "proj"), dim, dim, 1, init, seed);
}

/* (B, T, C) -> (B, heads, T, D) */
static ssl_tensor_t *split_heads(ssl_ctx_t *ctx, ssl_tensor_t *x, int heads)
{
    if (!x)
        return NULL;
    int64_t B = x->shape[0], T = x->shape[1], C = x->shape[2];
    x = ssl_reshape(ctx, x, 4, (int64_t[]){B, T, heads, C / heads});
    return ssl_permute(ctx, x, (int[]){0, 2, 1, 3});
}

ssl_tensor_t *ssl_nn_cross_attention_forward(ssl_ctx_t *ctx, const ssl_nn_cross_attention_t *m,
                                             ssl_tensor_t *x, ssl_tensor_t *kv,
                                             ssl_tensor_t *attn_bias)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(m, __func__))
        return NULL;
    if (SSL__NULL_INPUT(x, __func__) || SSL__NULL_INPUT(kv, __func__))
        return NULL;
    if (x->ndim != 3 || x->shape[2] != m->dim || kv->ndim != 3 || kv->shape[2] != m->kv_dim ||
        kv->shape[0] != x->shape[0]) {
        char s[96], t[96];
        ssl_set_error(SSL_ERR_SHAPE, "cross-attention: queries %s and keys %s, expected "
                      "(B, Tq, %lld) and (B, Tk, %lld)", ssl_shape_str(x, s, sizeof s),
                      ssl_shape_str(kv, t, sizeof t), (long long)m->dim, (long long)m->kv_dim);
        return NULL;
    }
    int64_t B = x->shape[0], Tq = x->shape[1];
    ssl_tensor_t *q = split_heads(ctx, ssl_nn_linear_forward(ctx, &m->q, x), m->heads);
    ssl_tensor_t *k = split_heads(ctx, ssl_nn_linear_forward(ctx, &m->k, kv), m->heads);
    ssl_tensor_t *v = split_heads(ctx, ssl_nn_linear_forward(ctx, &m->v, kv), m->heads);
    float scale = (float)(1.0 / sqrt((double)(m->dim / m->heads)));
    ssl_tensor_t *s = ssl_scale(ctx, ssl_matmul(ctx, q, k, 0, 1), scale, 0.0f); // (B,H,Tq,Tk)
    if (attn_bias)
        s = ssl_add(ctx, s, attn_bias);
    ssl_tensor_t *o = ssl_matmul(ctx, ssl_softmax(ctx, s, -1), v, 0, 0); // (B, H, Tq, D)
    o = ssl_permute(ctx, o, (int[]){0, 2, 1, 3});                          // (B, Tq, H, D)
    o = ssl_reshape(ctx, o, 3, (int64_t[]){B, Tq, m->dim});
    return ssl_nn_linear_forward(ctx, &m->proj, o);
}

int ssl_nn_block_init(ssl_nn_block_t *m, ssl_params_t *p, const char *name, int64_t dim,
                      int heads, double mlp_ratio, int qkv_bias, ssl_init_t init, uint64_t seed)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(name, __func__))
        return SSL_ERR_INVALID;
    char buf[256];
    memset(m, 0, sizeof *m);
    m->act = SSL_ACT_GELU;
    int64_t hidden = (int64_t)(dim * mlp_ratio);
    if (hidden <= 0)
        return ssl_set_error(SSL_ERR_CONFIG, "%s: mlp_ratio %g gives no hidden units", name,
                             mlp_ratio);
    int st;
    if ((st = ssl_nn_layernorm_init(&m->norm1, p, NAME(buf, name, "norm1"), dim, 1e-6f)) ||
        (st = ssl_nn_attention_init(&m->attn, p, NAME(buf, name, "attn"), dim, heads, qkv_bias,
                                    init, seed)) ||
        (st = ssl_nn_layernorm_init(&m->norm2, p, NAME(buf, name, "norm2"), dim, 1e-6f)) ||
        (st = ssl_nn_linear_init(&m->fc1, p, NAME(buf, name, "mlp.fc1"), dim, hidden, 1, init,
                                 seed)) ||
        (st = ssl_nn_linear_init(&m->fc2, p, NAME(buf, name, "mlp.fc2"), hidden, dim, 1, init,
                                 seed)))
        return st;
    return SSL_OK;
}

ssl_tensor_t *ssl_nn_block_forward(ssl_ctx_t *ctx, const ssl_nn_block_t *m, ssl_tensor_t *x,
                                   ssl_tensor_t *attn_bias)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(m, __func__))
        return NULL;
    /* the residual additions ride on the output projections (ssl_linear_residual) */
    ssl_tensor_t *h = ssl_nn_layernorm_forward(ctx, &m->norm1, x);
    h = attention_heads(ctx, &m->attn, h, attn_bias);
    x = ssl_linear_residual(ctx, h, m->attn.proj.weight, m->attn.proj.bias, x);
    h = ssl_nn_layernorm_forward(ctx, &m->norm2, x);
    h = ssl_nn_linear_forward(ctx, &m->fc1, h);
    h = ssl_nn_activation(ctx, h, m->act);
    return ssl_linear_residual(ctx, h, m->fc2.weight, m->fc2.bias, x);
}

int ssl_nn_patch_embed_init(ssl_nn_patch_embed_t *m, ssl_params_t *p, const char *name,
                            int64_t in_chans, int64_t dim, int patch, int64_t img_h,
                            int64_t img_w, ssl_init_t init, uint64_t seed)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(name, __func__))
        return SSL_ERR_INVALID;
    char buf[256];
    memset(m, 0, sizeof *m);
    if (patch <= 0 || img_h % patch || img_w % patch)
        return ssl_set_error(SSL_ERR_CONFIG, "%s: image %lldx%lld is not divisible into %d-pixel "
                             "patches", name, (long long)img_h, (long long)img_w, patch);
    m->patch = patch;
    m->grid_h = img_h / patch;
    m->grid_w = img_w / patch;
    int st = ssl_nn_conv2d_init(&m->proj, p, NAME(buf, name, "proj"), in_chans, dim, patch,
                                patch, 0, 1, SSL_INIT_TORCH_DEFAULT, seed);
    if (st == SSL_OK && init == SSL_INIT_XAVIER_UNIFORM) {
        /* MAE initialises the patch projection like a linear layer on the flattened patch:
         * xavier over (dim, in_chans * patch * patch). */
        ssl_tensor_t *w = m->proj.weight;
        double fi = (double)(w->numel / w->shape[0]), fo = (double)w->shape[0];
        float b = (float)sqrt(6.0 / (fi + fo));
        ssl_nn_fill_uniform(w, -b, b, seed);
        ssl_nn_fill_const(m->proj.bias, 0.0f);
    }
    return st;
}

ssl_tensor_t *ssl_nn_patch_embed_forward(ssl_ctx_t *ctx, const ssl_nn_patch_embed_t *m,
                                         ssl_tensor_t *x)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(m, __func__))
        return NULL;
    ssl_tensor_t *y = ssl_nn_conv2d_forward(ctx, &m->proj, x); // (B, C, gh, gw)
    if (!y)
        return NULL;
    int64_t B = y->shape[0], C = y->shape[1], T = y->shape[2] * y->shape[3];
    y = ssl_reshape(ctx, y, 3, (int64_t[]){B, C, T});
    return ssl_permute(ctx, y, (int[]){0, 2, 1}); // (B, T, C)
}

static void sincos_1d(float *out, int64_t stride, int64_t half, double pos)
{
    /* half = D/2 channels: sin(pos w_k) for k < half/2, then cos(pos w_k) */
    int64_t quarter = half / 2;
    for (int64_t k = 0; k < quarter; k++) {
        double omega = 1.0 / pow(10000.0, (double)k / (double)quarter);
        out[k * stride] = (float)sin(pos * omega);
        out[(quarter + k) * stride] = (float)cos(pos * omega);
    }
}

int ssl_nn_sincos_2d(float *out, int64_t dim, int64_t grid_h, int64_t grid_w)
{
    if (dim % 4 != 0)
        return ssl_set_error(SSL_ERR_CONFIG,
                             "sin-cos positional embedding: dim %lld is not a multiple of 4",
                             (long long)dim);
    int64_t half = dim / 2;
    for (int64_t i = 0; i < grid_h; i++)
        for (int64_t j = 0; j < grid_w; j++) {
            float *row = out + (i * grid_w + j) * dim;
            sincos_1d(row, 1, half, (double)j);        /* w coordinate first */
            sincos_1d(row + half, 1, half, (double)i); /* then h */
        }
    return SSL_OK;
}
