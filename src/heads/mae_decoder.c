/* MAE decoder (models_mae.py forward_decoder): embed the visible tokens, put them back at their
 * patch positions with mask_token everywhere else, add fixed sin-cos positions, run the narrow
 * transformer and predict each patch's pixels. */
#include "heads_internal.h"

#include <string.h>

int ssl_mae_decoder_init(ssl_mae_decoder_t *d, ssl_params_t *p, const char *prefix,
                         const ssl_mae_decoder_cfg_t *cfg, uint64_t seed)
{
    if (SSL__IS_NULL(d, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(cfg, __func__))
        return SSL_ERR_INVALID;
    memset(d, 0, sizeof *d);
    const char *pre = prefix ? prefix : "";
    if (cfg->in_dim <= 0 || cfg->grid_h <= 0 || cfg->grid_w <= 0 || cfg->patch_size <= 0 ||
        cfg->in_chans <= 0)
        return ssl_set_error(SSL_ERR_CONFIG,
                             "mae decoder '%s': the encoder geometry is not set (in_dim %lld, "
                             "grid %lldx%lld, patch_size %d, in_chans %d)",
                             pre, (long long)cfg->in_dim, (long long)cfg->grid_h,
                             (long long)cfg->grid_w, cfg->patch_size, cfg->in_chans);
    if (cfg->dim <= 0 || cfg->dim % 4 || cfg->heads <= 0 || cfg->dim % cfg->heads)
        return ssl_set_error(SSL_ERR_CONFIG,
                             "mae decoder '%s': dim %d must be a positive multiple of 4 (sin-cos "
                             "positions) and of heads %d",
                             pre, cfg->dim, cfg->heads);
    if (cfg->depth < 0 || cfg->depth > SSL_HEAD_MAX_DEPTH)
        return ssl_set_error(SSL_ERR_CONFIG, "mae decoder '%s': depth must be in 0..%d, got %d",
                             pre, SSL_HEAD_MAX_DEPTH, cfg->depth);
    d->cfg = *cfg;
    const int64_t D = cfg->dim, T = cfg->grid_h * cfg->grid_w, off = cfg->cls_token ? 1 : 0;
    const int init = SSL_INIT_XAVIER_UNIFORM;
    char nm[256], sub[64];
    int st;
    if ((st = ssl_nn_linear_init(&d->embed, p, HEAD_NAME(nm, pre, "decoder_embed"), cfg->in_dim, D,
                                 1, init, seed)))
        return st;
    d->mask_token = ssl_params_add(p, HEAD_NAME(nm, pre, "mask_token"), 3, (int64_t[]){1, 1, D},
                                   SSL_PARAM_TRAINABLE, 0);
    d->pos_embed = ssl_params_add(p, HEAD_NAME(nm, pre, "decoder_pos_embed"), 3,
                                  (int64_t[]){1, off + T, D}, SSL_PARAM_BUFFER, 0);
    if (!d->mask_token || !d->pos_embed)
        return ssl_last_status();
    ssl_nn_fill_normal(d->mask_token, 0.0f, 0.02f, seed);
    /* the cls slot keeps a zero position, as get_2d_sincos_pos_embed(cls_token=True) */
    if ((st = ssl_nn_sincos_2d(d->pos_embed->data + off * D, D, cfg->grid_h, cfg->grid_w)))
        return st;
    for (int i = 0; i < cfg->depth; i++) {
        snprintf(sub, sizeof sub, "decoder_blocks.%d", i);
        if ((st = ssl_nn_block_init(&d->blocks[i], p, HEAD_NAME(nm, pre, sub), D, cfg->heads,
                                    cfg->mlp_ratio, 1, init, seed)))
            return st;
    }
    if ((st = ssl_nn_layernorm_init(&d->norm, p, HEAD_NAME(nm, pre, "decoder_norm"), D, 1e-6f)))
        return st;
    int64_t out = (int64_t)cfg->patch_size * cfg->patch_size * cfg->in_chans;
    return ssl_nn_linear_init(&d->pred, p, HEAD_NAME(nm, pre, "decoder_pred"), D, out, 1, init,
                              seed);
}

ssl_tensor_t *ssl_mae_decoder_forward(ssl_ctx_t *ctx, const ssl_mae_decoder_t *d, ssl_tensor_t *cls,
                                      ssl_tensor_t *tokens, const int32_t *keep_idx, int64_t k)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(d, __func__))
        return NULL;
    if (SSL__NULL_INPUT(tokens, __func__))
        return NULL;
    const ssl_mae_decoder_cfg_t *c = &d->cfg;
    if (c->cls_token && !cls) { /* tokens came through, so the caller left cls out */
        ssl_set_error(SSL_ERR_INVALID,
                      "mae decoder: configured with a cls slot: pass the "
                      "encoder's cls token output (B, %lld)",
                      (long long)c->in_dim);
        return NULL;
    }
    const int64_t T = c->grid_h * c->grid_w, D = c->in_dim;
    char want[96];
    snprintf(want, sizeof want, "(B, %lld, %lld): K visible tokens of %lld", (long long)k,
             (long long)D, (long long)T);
    if (tokens->ndim != 3 || tokens->shape[1] != k || tokens->shape[2] != D || k > T)
        return ssl__head_shape_error("mae decoder", tokens, want);
    const int64_t B = tokens->shape[0];
    if (cls && !c->cls_token) {
        ssl_set_error(SSL_ERR_INVALID, "mae decoder: given a cls token but configured without "
                                       "a cls slot (cls_token false)");
        return NULL;
    }
    if (cls && (cls->ndim != 2 || cls->shape[0] != B || cls->shape[1] != D)) {
        snprintf(want, sizeof want, "cls (%lld, %lld)", (long long)B, (long long)D);
        return ssl__head_shape_error("mae decoder", cls, want);
    }
    if (!ssl__head_check_indices(ctx, "mae decoder", "keep", keep_idx, B, k, T, 1))
        return NULL;
    /* 1 at the masked positions: where the mask token goes. (B, T, 1) */
    ssl_tensor_t *masked = ssl_tensor_fill(ctx, 3, (int64_t[]){B, T, 1}, 1.0f);
    if (!masked)
        return NULL;
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < k; j++)
            masked->data[b * T + keep_idx[b * k + j]] = 0.0f;
    ssl_tensor_t *x = ssl_nn_linear_forward(ctx, &d->embed, tokens); // (B, K, d)
    x = ssl_scatter_rows(ctx, x, keep_idx, T);                       // (B, T, d)
    x = ssl_add(ctx, x, ssl_mul(ctx, d->mask_token, masked));
    if (cls) {
        ssl_tensor_t *ce = ssl_reshape(ctx, cls, 3, (int64_t[]){B, 1, D});
        ssl_tensor_t *parts[2] = {ssl_nn_linear_forward(ctx, &d->embed, ce), x};
        x = ssl_concat(ctx, parts, 2, 1); // (B, 1 + T, d)
    }
    x = ssl_add(ctx, x, d->pos_embed);
    for (int i = 0; i < c->depth; i++)
        x = ssl_nn_block_forward(ctx, &d->blocks[i], x, NULL);
    if (cls)
        x = ssl_slice(ctx, x, 1, 1, T); /* per-token norm and pred: drop the cls slot first */
    x = ssl_nn_layernorm_forward(ctx, &d->norm, x);
    return ssl_nn_linear_forward(ctx, &d->pred, x); // (B, T, p * p * C)
}
