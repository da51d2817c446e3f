/* I-JEPA predictor (ijepa VisionTransformerPredictor): context tokens with their positions,
 * followed by one mask token per target position carrying that position's embedding, through a
 * narrow transformer; the outputs at the mask tokens are projected back to the encoder width. */
#include "heads_internal.h"

#include <math.h>
#include <string.h>

int ssl_jepa_predictor_init(ssl_jepa_predictor_t *m, ssl_params_t *p, const char *prefix,
                            const ssl_jepa_predictor_cfg_t *cfg, uint64_t seed)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(cfg, __func__))
        return SSL_ERR_INVALID;
    memset(m, 0, sizeof *m);
    const char *pre = prefix ? prefix : "";
    if (cfg->in_dim <= 0 || cfg->grid_h <= 0 || cfg->grid_w <= 0)
        return ssl_set_error(SSL_ERR_CONFIG,
                             "jepa predictor '%s': the encoder geometry is not set (in_dim %lld, "
                             "grid %lldx%lld)",
                             pre, (long long)cfg->in_dim, (long long)cfg->grid_h,
                             (long long)cfg->grid_w);
    if (cfg->dim <= 0 || cfg->dim % 4 || cfg->heads <= 0 || cfg->dim % cfg->heads)
        return ssl_set_error(SSL_ERR_CONFIG,
                             "jepa predictor '%s': dim %d must be a positive multiple of 4 "
                             "(sin-cos positions) and of heads %d",
                             pre, cfg->dim, cfg->heads);
    if (cfg->depth < 0 || cfg->depth > SSL_HEAD_MAX_DEPTH)
        return ssl_set_error(SSL_ERR_CONFIG, "jepa predictor '%s': depth must be in 0..%d, got %d",
                             pre, SSL_HEAD_MAX_DEPTH, cfg->depth);
    m->cfg = *cfg;
    const int64_t D = cfg->dim, T = cfg->grid_h * cfg->grid_w;
    const int init = SSL_INIT_TRUNC_NORMAL_02;
    char nm[256], sub[64];
    int st;
    if ((st = ssl_nn_linear_init(&m->embed, p, HEAD_NAME(nm, pre, "predictor_embed"), cfg->in_dim,
                                 D, 1, init, seed)))
        return st;
    m->mask_token = ssl_params_add(p, HEAD_NAME(nm, pre, "mask_token"), 3, (int64_t[]){1, 1, D},
                                   SSL_PARAM_TRAINABLE, 0);
    m->pos_embed = ssl_params_add(p, HEAD_NAME(nm, pre, "predictor_pos_embed"), 3,
                                  (int64_t[]){1, T, D}, SSL_PARAM_BUFFER, 0);
    if (!m->mask_token || !m->pos_embed)
        return ssl_last_status();
    ssl_nn_init_tensor(m->mask_token, init, seed);
    if ((st = ssl_nn_sincos_2d(m->pos_embed->data, D, cfg->grid_h, cfg->grid_w)))
        return st;
    for (int i = 0; i < cfg->depth; i++) {
        snprintf(sub, sizeof sub, "predictor_blocks.%d", i);
        if ((st = ssl_nn_block_init(&m->blocks[i], p, HEAD_NAME(nm, pre, sub), D, cfg->heads,
                                    cfg->mlp_ratio, 1, init, seed)))
            return st;
        /* fix_init_weight: residual branch outputs shrink with depth */
        float s = (float)(1.0 / sqrt(2.0 * (i + 1)));
        ssl_tensor_t *ws[2] = {m->blocks[i].attn.proj.weight, m->blocks[i].fc2.weight};
        for (int w = 0; w < 2; w++)
            for (int64_t j = 0; j < ws[w]->numel; j++)
                ws[w]->data[j] *= s;
    }
    if ((st = ssl_nn_layernorm_init(&m->norm, p, HEAD_NAME(nm, pre, "predictor_norm"), D, 1e-6f)))
        return st;
    return ssl_nn_linear_init(&m->proj, p, HEAD_NAME(nm, pre, "predictor_proj"), D, cfg->in_dim, 1,
                              init, seed);
}

ssl_tensor_t *ssl_jepa_predictor_forward(ssl_ctx_t *ctx, const ssl_jepa_predictor_t *m,
                                         ssl_tensor_t *ctx_tokens, const int32_t *ctx_idx,
                                         const int32_t *tgt_idx, int n_targets, int64_t kt)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(m, __func__))
        return NULL;
    if (SSL__NULL_INPUT(ctx_tokens, __func__))
        return NULL;
    if (SSL__IS_NULL(ctx_idx, __func__) || SSL__IS_NULL(tgt_idx, __func__))
        return NULL;
    const ssl_jepa_predictor_cfg_t *c = &m->cfg;
    const int64_t T = c->grid_h * c->grid_w, D = c->dim;
    if (ctx_tokens->ndim != 3 || ctx_tokens->shape[2] != c->in_dim) {
        char want[64];
        snprintf(want, sizeof want, "(B, Kc, %lld)", (long long)c->in_dim);
        return ssl__head_shape_error("jepa predictor", ctx_tokens, want);
    }
    const int64_t B = ctx_tokens->shape[0], kc = ctx_tokens->shape[1];
    if (n_targets < 1 || kt < 1) {
        ssl_set_error(SSL_ERR_INVALID,
                      "jepa predictor: need at least one target block of at least one token "
                      "(n_targets %d, kt %lld)",
                      n_targets, (long long)kt);
        return NULL;
    }
    const int64_t R = (int64_t)n_targets * B;
    if (!ssl__head_check_indices(ctx, "jepa predictor", "context", ctx_idx, B, kc, T, 0) ||
        !ssl__head_check_indices(ctx, "jepa predictor", "target", tgt_idx, R, kt, T, 0))
        return NULL;
    const float *pos = m->pos_embed->data;                               // (T, d)
    ssl_tensor_t *x = ssl_nn_linear_forward(ctx, &m->embed, ctx_tokens); // (B, Kc, d)
    ssl_tensor_t *pc = ssl__head_gather_const(ctx, pos, D, ctx_idx, B * kc);
    x = ssl_add(ctx, x, ssl_reshape(ctx, pc, 3, (int64_t[]){B, kc, D}));
    if (n_targets > 1) { /* x.repeat(n_targets, 1, 1): row m * B + b is sample b */
        ssl_tensor_t **rep = ssl_arena_alloc(ctx, (size_t)n_targets * sizeof *rep);
        if (!rep)
            return NULL;
        for (int i = 0; i < n_targets; i++)
            rep[i] = x;
        x = ssl_concat(ctx, rep, n_targets, 0); // (R, Kc, d)
    }
    ssl_tensor_t *pt = ssl__head_gather_const(ctx, pos, D, tgt_idx, R * kt);
    pt = ssl_reshape(ctx, pt, 3, (int64_t[]){R, kt, D});
    ssl_tensor_t *parts[2] = {x, ssl_add(ctx, pt, m->mask_token)}; // (R, Kt, d)
    x = ssl_concat(ctx, parts, 2, 1);                              // (R, Kc + Kt, d)
    for (int i = 0; i < c->depth; i++)
        x = ssl_nn_block_forward(ctx, &m->blocks[i], x, NULL);
    x = ssl_slice(ctx, x, 1, kc, kt); /* norm and proj are per token: only the targets */
    x = ssl_nn_layernorm_forward(ctx, &m->norm, x);
    return ssl_nn_linear_forward(ctx, &m->proj, x); // (R, Kt, in_dim)
}
