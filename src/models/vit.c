/* Vision Transformer as timm builds it (pre-norm blocks, LayerNorm eps 1e-6, fused qkv), with
 * an optional cls token, learned or fixed sin-cos positions, and a forward on a per-sample
 * subset of patch tokens (the visible tokens of MAE, the context of I-JEPA). */
#include "models_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME(buf, ...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)

int ssl__vit_init(ssl_encoder_t *e, ssl_params_t *p, const char *pre, uint64_t seed)
{
    const ssl_vit_cfg_t *c = &e->cfg.vit;
    ssl_vit_t *v = &e->vit;
    if (c->image_size < 1 || c->patch_size < 1 || c->image_size % c->patch_size)
        return ssl_set_error(SSL_ERR_CONFIG, "vit: image_size %d must be a positive multiple of "
                             "patch_size %d", c->image_size, c->patch_size);
    if (c->dim < 1 || c->depth < 1 || c->depth > 64 || c->heads < 1 || c->dim % c->heads)
        return ssl_set_error(SSL_ERR_CONFIG, "vit: need dim > 0 divisible by heads (dim %d, "
                             "heads %d) and depth in 1..64 (%d)", c->dim, c->heads, c->depth);
    if (c->pool == SSL_POOL_CLS && !c->cls_token)
        return ssl_set_error(SSL_ERR_CONFIG, "vit: pool 'cls' needs cls_token");
    if (c->pos_embed == SSL_POS_SINCOS && c->dim % 4)
        return ssl_set_error(SSL_ERR_CONFIG, "vit: sin-cos positions need dim divisible by 4 "
                             "(dim %d)", c->dim);
    if (!(c->mlp_ratio > 0 && c->mlp_ratio <= 16))
        return ssl_set_error(SSL_ERR_CONFIG, "vit: mlp_ratio must be in (0, 16], got %g",
                             c->mlp_ratio);
    char nm[256];
    int st;
    int init = c->init;
    if ((st = ssl_nn_patch_embed_init(&v->patch, p, NAME(nm, "%spatch_embed", pre),
                                      c->in_channels, c->dim, c->patch_size, c->image_size,
                                      c->image_size, init, seed)))
        return st;
    int64_t T = v->patch.grid_h * v->patch.grid_w, D = c->dim;
    if (c->cls_token) {
        v->cls_token = ssl_params_add(p, NAME(nm, "%scls_token", pre), 3, (int64_t[]){1, 1, D},
                                      SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY);
        if (!v->cls_token)
            return ssl_last_status();
        /* timm: normal(std 1e-6); MAE: normal(std 0.02) */
        ssl_nn_fill_normal(v->cls_token, 0.0f, init == SSL_INIT_XAVIER_UNIFORM ? 0.02f : 1e-6f,
                           seed);
    }
    int64_t np = T + (c->cls_token ? 1 : 0);
    int fixed = c->pos_embed == SSL_POS_SINCOS;
    v->pos_embed = ssl_params_add(p, NAME(nm, "%spos_embed", pre), 3, (int64_t[]){1, np, D},
                                  fixed ? SSL_PARAM_BUFFER : SSL_PARAM_TRAINABLE,
                                  SSL_PARAM_NO_DECAY);
    if (!v->pos_embed)
        return ssl_last_status();
    if (fixed) { /* cls position stays zero, as in MAE */
        if ((st = ssl_nn_sincos_2d(v->pos_embed->data + (c->cls_token ? D : 0), D,
                                   v->patch.grid_h, v->patch.grid_w)))
            return st;
    } else {
        ssl_rng_fill_trunc_normal(v->pos_embed->data, (size_t)v->pos_embed->numel, 0.0f, 0.02f,
                                  -2.0f, 2.0f, seed, ssl_nn_name_stream(v->pos_embed->name), 0);
    }
    v->blocks = calloc((size_t)c->depth, sizeof *v->blocks);
    if (!v->blocks)
        return ssl_set_error(SSL_ERR_NOMEM, "vit: out of memory");
    for (int i = 0; i < c->depth; i++)
        if ((st = ssl_nn_block_init(&v->blocks[i], p, NAME(nm, "%sblocks.%d", pre, i), D,
                                    c->heads, c->mlp_ratio, c->qkv_bias, init, seed)))
            return st;
    return ssl_nn_layernorm_init(&v->norm, p, NAME(nm, "%snorm", pre), D, 1e-6f);
}

int ssl__vit_forward(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x,
                     const int32_t *keep_idx, int64_t keep, const int32_t *masked_idx,
                     int64_t n_masked, const float *token_mask, ssl_tensor_t *mask_token,
                     int n_blocks_out, ssl_tensor_t **blocks_out, ssl_encoder_out_t *out)
{
    const ssl_vit_cfg_t *c = &e->cfg.vit;
    const ssl_vit_t *v = &e->vit;
    int64_t T = v->patch.grid_h * v->patch.grid_w, D = c->dim;
    ssl_tensor_t *h = ssl_nn_patch_embed_forward(ctx, &v->patch, x); // (B, T, D)
    if (!h)
        return ssl_last_status();
    int64_t B = h->shape[0];
    if (masked_idx && n_masked > 0) {
        /* SimMIM: the masked patch embeddings become the mask token, positions added after:
         * h + scatter(mask_token - h[masked]) replaces those rows and sends them no gradient */
        ssl_tensor_t *hm = ssl_gather_rows(ctx, h, masked_idx, n_masked);        // (B, M, D)
        ssl_tensor_t *delta = ssl_sub(ctx, mask_token, hm);                       // (B, M, D)
        h = ssl_add(ctx, h, ssl_scatter_rows(ctx, delta, masked_idx, T));
    } else if (token_mask) {
        /* iBOT: any number of masked tokens per sample. h + m (mask_token - h) with m (B, T, 1)
         * of 0/1 replaces the masked rows and sends them no gradient */
        ssl_tensor_t *m = ssl_tensor_from(ctx, 3, (int64_t[]){B, T, 1}, token_mask);
        h = ssl_add(ctx, h, ssl_mul(ctx, m, ssl_sub(ctx, mask_token, h)));
        if (!h)
            return ssl_last_status();
    }
    int off = c->cls_token ? 1 : 0;
    ssl_tensor_t *pos = off ? ssl_slice(ctx, v->pos_embed, 1, 1, T) : v->pos_embed;
    h = ssl_add(ctx, h, pos);
    if (keep_idx)
        h = ssl_gather_rows(ctx, h, keep_idx, keep); // (B, K, D)
    if (off) {
        ssl_tensor_t *cls = ssl_add(ctx, v->cls_token, ssl_slice(ctx, v->pos_embed, 1, 0, 1));
        cls = ssl_add(ctx, ssl_tensor_zeros(ctx, 3, (int64_t[]){B, 1, D}), cls); // (B, 1, D)
        ssl_tensor_t *parts[2] = {cls, h};
        h = ssl_concat(ctx, parts, 2, 1);
    }
    int first_out = c->depth - n_blocks_out; /* the blocks whose outputs the caller reads */
    for (int i = 0; i < c->depth; i++) {
        h = ssl_nn_block_forward(ctx, &v->blocks[i], h, NULL);
        if (i >= first_out) { /* the block's tokens (cls first), before the final norm */
            if (!h)
                return ssl_last_status();
            blocks_out[i - first_out] = h;
        }
    }
    h = ssl_nn_layernorm_forward(ctx, &v->norm, h); // (B, off + K, D)
    if (!h)
        return ssl_last_status();
    int64_t n_tok = h->shape[1] - off;
    out->fmap = NULL;
    out->tokens = off ? ssl_slice(ctx, h, 1, 1, n_tok) : h;
    out->cls = off ? ssl_reshape(ctx, ssl_slice(ctx, h, 1, 0, 1), 2, (int64_t[]){B, D}) : NULL;
    if (off && !out->cls)
        return ssl_last_status();
    if (c->pool == SSL_POOL_CLS)
        out->pooled = out->cls;
    else
        out->pooled = ssl_mean(ctx, out->tokens, 1, 0);
    return out->pooled && out->tokens ? SSL_OK : ssl_last_status();
}

ssl_tensor_t *ssl__vit_readout(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *const *blocks,
                               int n)
{
    const ssl_vit_cfg_t *c = &e->cfg.vit;
    int off = c->cls_token ? 1 : 0;
    ssl_tensor_t *parts[64];
    for (int i = 0; i < n; i++) {
        ssl_tensor_t *y = ssl_nn_layernorm_forward(ctx, &e->vit.norm, blocks[i]); // (B, off+K, D)
        if (!y)
            return NULL;
        int64_t B = y->shape[0], K = y->shape[1] - off;
        parts[i] = c->pool == SSL_POOL_CLS
                       ? ssl_reshape(ctx, ssl_slice(ctx, y, 1, 0, 1), 2, (int64_t[]){B, c->dim})
                       : ssl_mean(ctx, off ? ssl_slice(ctx, y, 1, 1, K) : y, 1, 0);
        if (!parts[i])
            return NULL;
    }
    return n == 1 ? parts[0] : ssl_concat(ctx, parts, n, 1);
}

int64_t ssl__vit_macs(const ssl_encoder_t *e, int64_t h, int64_t w)
{
    const ssl_vit_cfg_t *c = &e->cfg.vit;
    int64_t P = c->patch_size, T = (h / P) * (w / P), D = c->dim;
    int64_t n = T + (c->cls_token ? 1 : 0);
    int64_t hidden = (int64_t)(D * c->mlp_ratio);
    int64_t macs = T * D * c->in_channels * P * P; /* patch projection */
    int64_t per_block = n * D * 3 * D   /* qkv */
                        + 2 * n * n * D /* q k^T and attn v */
                        + n * D * D     /* proj */
                        + 2 * n * D * hidden;
    return macs + c->depth * per_block;
}
