/* DINO head (DINOHead of facebookresearch/dino): MLP with GELU, L2-normalised bottleneck, and a
 * weight-normalised bias-free prototype layer whose row norms (weight_g) are fixed to 1 by
 * default, so only the directions (weight_v) learn. */
#include "heads_internal.h"

#include <string.h>

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
    /* nn.utils.weight_norm(dim=0): g (K, 1), v (K, bottleneck); DINO fills g with 1 and turns
     * its gradient off when norm_last_layer: a buffer here, so freezing never touches it. */
    const int64_t K = cfg->out_dim, D = cfg->bottleneck_dim;
    h->weight_g = ssl_params_add(p, HEAD_NAME(nm, pre, "last_layer.weight_g"), 2, (int64_t[]){K, 1},
                                 cfg->norm_last_layer ? SSL_PARAM_BUFFER : SSL_PARAM_TRAINABLE, 0);
    if (!h->weight_g)
        return ssl_last_status();
    ssl_nn_fill_const(h->weight_g, 1.0f);
    h->weight_v = ssl_params_add(p, HEAD_NAME(nm, pre, "last_layer.weight_v"), 2, (int64_t[]){K, D},
                                 SSL_PARAM_TRAINABLE, 0);
    if (!h->weight_v)
        return ssl_last_status();
    ssl_nn_init_tensor(h->weight_v, SSL_INIT_TORCH_DEFAULT, seed);
    snprintf(h->last_layer_prefix, sizeof h->last_layer_prefix, "%s",
             HEAD_NAME(nm, pre, "last_layer."));
    return SSL_OK;
}

ssl_tensor_t *ssl_dino_head_forward(ssl_ctx_t *ctx, const ssl_dino_head_t *h, ssl_tensor_t *x,
                                    int training, ssl_tensor_t **bottleneck)
{
    if (bottleneck)
        *bottleneck = NULL;
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
    z = ssl_l2_normalize(ctx, z, -1, 1e-12f);                        // (B, bottleneck)
    ssl_tensor_t *w = ssl_l2_normalize(ctx, h->weight_v, 1, 1e-12f); // (K, bottleneck)
    w = ssl_mul(ctx, h->weight_g, w);
    if (bottleneck)
        *bottleneck = z;
    return ssl_linear(ctx, z, w, NULL); // (B, K)
}

int ssl_dino_head_set_epoch(const ssl_dino_head_t *h, ssl_params_t *p, int epoch)
{
    if (SSL__IS_NULL(h, __func__) || SSL__IS_NULL(p, __func__))
        return SSL_ERR_INVALID;
    int frozen = epoch < h->cfg.freeze_last_layer;
    ssl_params_set_frozen(p, h->last_layer_prefix, frozen);
    return frozen;
}
