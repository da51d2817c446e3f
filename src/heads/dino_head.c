/* DINO head (DINOHead of facebookresearch/dino): MLP with GELU, L2-normalised bottleneck, and a
 * weight-normalised bias-free prototype layer whose row norms (weight_g) are fixed to 1 by
 * default, so only the directions (weight_v) learn. */
#include "heads_internal.h"

#include <string.h>

int ssl_dino_last_layer_init(ssl_params_t *p, const char *prefix, int64_t out_dim,
                             int64_t bottleneck_dim, int norm_last_layer, uint64_t seed,
                             ssl_tensor_t **weight_g, ssl_tensor_t **weight_v)
{
    if (SSL__IS_NULL(p, __func__) || SSL__IS_NULL(weight_g, __func__) ||
        SSL__IS_NULL(weight_v, __func__))
        return SSL_ERR_INVALID;
    if (out_dim <= 0 || bottleneck_dim <= 0)
        return ssl_set_error(SSL_ERR_CONFIG, "%s: out_dim %lld and bottleneck_dim %lld must be > 0",
                             __func__, (long long)out_dim, (long long)bottleneck_dim);
    /* nn.utils.weight_norm(dim=0): g (K, 1), v (K, bottleneck); DINO fills g with 1 and turns
     * its gradient off when norm_last_layer: a buffer here, so freezing never touches it. */
    const char *pre = prefix ? prefix : "";
    char nm[256];
    *weight_g = ssl_params_add(p, HEAD_NAME(nm, pre, "weight_g"), 2, (int64_t[]){out_dim, 1},
                               norm_last_layer ? SSL_PARAM_BUFFER : SSL_PARAM_TRAINABLE, 0);
    if (!*weight_g)
        return ssl_last_status();
    ssl_nn_fill_const(*weight_g, 1.0f);
    *weight_v = ssl_params_add(p, HEAD_NAME(nm, pre, "weight_v"), 2,
                               (int64_t[]){out_dim, bottleneck_dim}, SSL_PARAM_TRAINABLE, 0);
    if (!*weight_v)
        return ssl_last_status();
    ssl_nn_init_tensor(*weight_v, SSL_INIT_TORCH_DEFAULT, seed);
    return SSL_OK;
}

int ssl_dino_head_init(ssl_dino_head_t *h, ssl_params_t *p, const char *prefix,
                       const ssl_dino_head_cfg_t *cfg, uint64_t seed)
{
    if (SSL__IS_NULL(h, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(cfg, __func__))
        return SSL_ERR_INVALID;
    memset(h, 0, sizeof *h);
    const char *pre = prefix ? prefix : "";
    if (cfg->in_dim <= 0 || cfg->bottleneck_dim <= 0 || cfg->out_dim <= 0 ||
        (cfg->layers > 1 && cfg->hidden_dim <= 0))
        return ssl_set_error(SSL_ERR_CONFIG,
                             "dino head '%s': widths must be positive (in_dim %lld, hidden_dim "
                             "%lld, bottleneck_dim %lld, out_dim %lld)",
                             pre, (long long)cfg->in_dim, (long long)cfg->hidden_dim,
                             (long long)cfg->bottleneck_dim, (long long)cfg->out_dim);
    if (cfg->layers < 1 || cfg->layers > SSL_MLP_MAX_LAYERS)
        return ssl_set_error(SSL_ERR_CONFIG, "dino head '%s': layers must be in 1..%d, got %d", pre,
                             SSL_MLP_MAX_LAYERS, cfg->layers);
    h->cfg = *cfg;
    char nm[256];
    int st;
    if (cfg->layers == 1) {
        st = ssl_nn_linear_init(&h->mlp1, p, HEAD_NAME(nm, pre, "mlp"), cfg->in_dim,
                                cfg->bottleneck_dim, 1, SSL_INIT_TRUNC_NORMAL_02, seed);
    } else {
        ssl_mlp_cfg_t m = {cfg->layers,
                           cfg->in_dim,
                           cfg->hidden_dim,
                           cfg->bottleneck_dim,
                           cfg->use_bn ? SSL_NORM_BN : SSL_NORM_NONE,
                           SSL_ACT_GELU,
                           SSL_NORM_NONE,
                           0,
                           1,
                           SSL_INIT_TRUNC_NORMAL_02,
                           0};
        st = ssl_mlp_init(&h->mlp, p, HEAD_NAME(nm, pre, "mlp"), &m, seed);
    }
    if (st != SSL_OK)
        return st;
    if ((st = ssl_dino_last_layer_init(p, HEAD_NAME(nm, pre, "last_layer"), cfg->out_dim,
                                       cfg->bottleneck_dim, cfg->norm_last_layer, seed,
                                       &h->weight_g, &h->weight_v)) != SSL_OK)
        return st;
    snprintf(h->last_layer_prefix, sizeof h->last_layer_prefix, "%s",
             HEAD_NAME(nm, pre, "last_layer."));
    return SSL_OK;
}

ssl_tensor_t *ssl_dino_head_bottleneck(ssl_ctx_t *ctx, const ssl_dino_head_t *h, ssl_tensor_t *x,
                                       int training)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(h, __func__))
        return NULL;
    if (SSL__NULL_INPUT(x, __func__))
        return NULL;
    if (x->ndim != 2 || x->shape[1] != h->cfg.in_dim) {
        char want[64];
        snprintf(want, sizeof want, "(B, %lld)", (long long)h->cfg.in_dim);
        return ssl__head_shape_error("dino head", x, want);
    }
    ssl_tensor_t *z = h->cfg.layers == 1 ? ssl_nn_linear_forward(ctx, &h->mlp1, x)
                                         : ssl_mlp_forward(ctx, &h->mlp, x, training);
    return ssl_l2_normalize(ctx, z, -1, 1e-12f);
}

ssl_tensor_t *ssl_dino_head_forward(ssl_ctx_t *ctx, const ssl_dino_head_t *h, ssl_tensor_t *x,
                                    int training, ssl_tensor_t **bottleneck)
{
    if (bottleneck)
        *bottleneck = NULL;
    ssl_tensor_t *z = ssl_dino_head_bottleneck(ctx, h, x, training); // (B, bottleneck)
    if (!z)
        return NULL;
    if (bottleneck)
        *bottleneck = z;
    return ssl_dino_last_layer(ctx, z, h->weight_g, h->weight_v); // (B, K)
}

ssl_tensor_t *ssl_dino_last_layer(ssl_ctx_t *ctx, ssl_tensor_t *z, ssl_tensor_t *weight_g,
                                  ssl_tensor_t *weight_v)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__NULL_INPUT(z, __func__) ||
        SSL__NULL_INPUT(weight_g, __func__) || SSL__NULL_INPUT(weight_v, __func__))
        return NULL;
    ssl_tensor_t *w = ssl_l2_normalize(ctx, weight_v, 1, 1e-12f); // (K, bottleneck)
    return ssl_linear(ctx, z, ssl_mul(ctx, weight_g, w), NULL);
}

int ssl_dino_head_set_epoch(const ssl_dino_head_t *h, ssl_params_t *p, int epoch)
{
    if (SSL__IS_NULL(h, __func__) || SSL__IS_NULL(p, __func__))
        return SSL_ERR_INVALID;
    int frozen = epoch < h->cfg.freeze_last_layer;
    ssl_params_set_frozen(p, h->last_layer_prefix, frozen);
    return frozen;
}
