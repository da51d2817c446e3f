/* MLP heads (projectors, predictors) named like the torch nn.Sequential they mirror. */
#include "core/check.h"
#include "ssl/nn.h"

#include <stdio.h>
#include <string.h>

static int add_norm(ssl_mlp_t *m, ssl_params_t *p, const char *name, int idx, int kind,
                    int64_t dim, int affine, int layer)
{
    char nm[256];
    snprintf(nm, sizeof nm, "%s.%d", name, idx);
    if (kind == SSL_NORM_BN)
        return ssl_nn_batchnorm_init(&m->bn[layer], p, nm, dim, affine, 0.1f, 1e-5f);
    if (kind == SSL_NORM_LN)
        return ssl_nn_layernorm_init(&m->ln[layer], p, nm, dim, 1e-5f);
    return SSL_OK;
}

int ssl_mlp_init(ssl_mlp_t *m, ssl_params_t *p, const char *name, const ssl_mlp_cfg_t *cfg,
                 uint64_t seed)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(name, __func__) ||
        SSL__IS_NULL(cfg, __func__))
        return SSL_ERR_INVALID;
    memset(m, 0, sizeof *m);
    if (cfg->layers < 1 || cfg->layers > SSL_MLP_MAX_LAYERS)
        return ssl_set_error(SSL_ERR_CONFIG, "%s: layers must be in 1..%d, got %d", name,
                             SSL_MLP_MAX_LAYERS, cfg->layers);
    if (cfg->in <= 0 || cfg->out <= 0 || (cfg->layers > 1 && cfg->hidden <= 0))
        return ssl_set_error(SSL_ERR_CONFIG, "%s: widths must be positive (in %lld, hidden %lld, "
                             "out %lld)", name, (long long)cfg->in, (long long)cfg->hidden,
                             (long long)cfg->out);
    m->cfg = *cfg;
    int idx = 0;
    for (int l = 0; l < cfg->layers; l++) {
        int last = l == cfg->layers - 1;
        int64_t in = l == 0 ? cfg->in : cfg->hidden, out = last ? cfg->out : cfg->hidden;
        char nm[256];
        snprintf(nm, sizeof nm, "%s.%d", name, idx++);
        /* A hidden linear followed by BatchNorm has no bias in the usual heads; cfg->bias
         * decides for all layers except the last, which has one unless last_norm is BN or
         * cfg->no_last_bias is set */
        int bias = last ? !cfg->no_last_bias && (cfg->last_norm != SSL_NORM_BN || cfg->bias)
                        : cfg->bias;
        int st = ssl_nn_linear_init(&m->lin[l], p, nm, in, out, bias, cfg->init, seed);
        if (st != SSL_OK)
            return st;
        if (!last) {
            if (cfg->norm != SSL_NORM_NONE &&
                (st = add_norm(m, p, name, idx++, cfg->norm, out, 1, l)) != SSL_OK)
                return st;
            if (cfg->act != SSL_ACT_NONE)
                idx++;
        } else if (cfg->last_norm != SSL_NORM_NONE &&
                   (st = add_norm(m, p, name, idx++, cfg->last_norm, out, cfg->last_norm_affine,
                                  l)) != SSL_OK) {
            return st;
        }
    }
    return SSL_OK;
}

static ssl_tensor_t *norm_fwd(ssl_ctx_t *ctx, const ssl_mlp_t *m, int kind, int l,
                              ssl_tensor_t *x, int training)
{
    if (kind == SSL_NORM_BN)
        return ssl_nn_batchnorm_forward(ctx, &m->bn[l], x, training);
    if (kind == SSL_NORM_LN)
        return ssl_nn_layernorm_forward(ctx, &m->ln[l], x);
    return x;
}

ssl_tensor_t *ssl_mlp_forward(ssl_ctx_t *ctx, const ssl_mlp_t *m, ssl_tensor_t *x, int training)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(m, __func__))
        return NULL;
    for (int l = 0; l < m->cfg.layers; l++) {
        int last = l == m->cfg.layers - 1;
        x = ssl_nn_linear_forward(ctx, &m->lin[l], x);
        if (!last) {
            x = norm_fwd(ctx, m, m->cfg.norm, l, x, training);
            x = ssl_nn_activation(ctx, x, m->cfg.act);
        } else {
            x = norm_fwd(ctx, m, m->cfg.last_norm, l, x, training);
        }
    }
    return x;
}
