/* SwAV prototypes: a bias-free linear (K, D) whose rows are put back on the unit sphere before
 * every step, scoring L2-normalised projections; frozen for the first iterations. */
#include "heads_internal.h"

#include <math.h>
#include <string.h>

int ssl_swav_prototypes_init(ssl_swav_prototypes_t *h, ssl_params_t *p, const char *prefix,
                             const ssl_swav_cfg_t *cfg, uint64_t seed)
{
    if (SSL__IS_NULL(h, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(cfg, __func__))
        return SSL_ERR_INVALID;
    memset(h, 0, sizeof *h);
    const char *pre = prefix ? prefix : "";
    if (cfg->in_dim <= 0 || cfg->n_prototypes <= 0)
        return ssl_set_error(SSL_ERR_CONFIG,
                             "swav prototypes '%s': in_dim (%lld) and n_prototypes (%lld) must "
                             "be positive",
                             pre, (long long)cfg->in_dim, (long long)cfg->n_prototypes);
    h->cfg = *cfg;
    char nm[256];
    h->weight = ssl_params_add(p, HEAD_NAME(nm, pre, "weight"), 2,
                               (int64_t[]){cfg->n_prototypes, cfg->in_dim}, SSL_PARAM_TRAINABLE, 0);
    if (!h->weight)
        return ssl_last_status();
    ssl_nn_init_tensor(h->weight, SSL_INIT_TORCH_DEFAULT, seed);
    ssl_swav_prototypes_normalize(h);
    snprintf(h->prefix, sizeof h->prefix, "%s", h->weight->name);
    return SSL_OK;
}

void ssl_swav_prototypes_normalize(const ssl_swav_prototypes_t *h)
{
    if (SSL__IS_NULL(h, __func__) || SSL__IS_NULL(h->weight, __func__))
        return;
    const int64_t K = h->weight->shape[0], D = h->weight->shape[1];
    float *w = h->weight->data;
#pragma omp parallel for schedule(static) if (K * D > 65536)
    for (int64_t k = 0; k < K; k++) {
        float *row = w + k * D;
        double s = 0;
        for (int64_t d = 0; d < D; d++)
            s += (double)row[d] * row[d];
        /* F.normalize: x / max(||x||, 1e-12) */
        double n = sqrt(s);
        float inv = (float)(1.0 / (n > 1e-12 ? n : 1e-12));
        for (int64_t d = 0; d < D; d++)
            row[d] *= inv;
    }
}

ssl_tensor_t *ssl_swav_prototypes_forward(ssl_ctx_t *ctx, const ssl_swav_prototypes_t *h,
                                          ssl_tensor_t *z, ssl_tensor_t **z_norm)
{
    if (z_norm)
        *z_norm = NULL;
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(h, __func__))
        return NULL;
    if (SSL__NULL_INPUT(z, __func__))
        return NULL;
    if (z->ndim != 2 || z->shape[1] != h->cfg.in_dim) {
        char want[64];
        snprintf(want, sizeof want, "(B, %lld)", (long long)h->cfg.in_dim);
        return ssl__head_shape_error("swav prototypes", z, want);
    }
    ssl_tensor_t *zn = ssl_l2_normalize(ctx, z, 1, 1e-12f);
    if (z_norm)
        *z_norm = zn;
    return ssl_linear(ctx, zn, h->weight, NULL); // (B, K)
}

int ssl_swav_prototypes_set_iteration(const ssl_swav_prototypes_t *h, ssl_params_t *p,
                                      int64_t iteration)
{
    if (SSL__IS_NULL(h, __func__) || SSL__IS_NULL(p, __func__))
        return SSL_ERR_INVALID;
    int frozen = iteration < h->cfg.freeze_iters;
    ssl_params_set_frozen(p, h->prefix, frozen);
    return frozen;
}
