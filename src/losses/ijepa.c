/* I-JEPA: predicted features regressed onto layer-normed target-encoder features at the
 * target blocks' token indices. */
#include "losses_internal.h"

ssl_tensor_t *ssl_loss_ijepa(ssl_ctx_t *ctx, ssl_tensor_t *const *preds, ssl_tensor_t *target,
                             const int32_t *const *idx, const int64_t *k, int n_blocks, int kind,
                             float beta)
{
    static const char *L = "ijepa";
    if (SSL__NULL_INPUT(preds, L) || SSL__NULL_INPUT(target, L))
        return NULL;
    for (int i = 0; i < n_blocks; i++)
        if (!preds[i])
            return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    char a[64], b[64];
    if (n_blocks < 1 || !idx || !k)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "need at least one target block");
    if (kind != SSL_REGRESS_SMOOTH_L1 && kind != SSL_REGRESS_MSE)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "unknown regression kind %d", kind);
    if (kind == SSL_REGRESS_SMOOTH_L1 && !(beta >= 0.0f))
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "beta %g must be >= 0", (double)beta);
    if (target->ndim != 3 || target->shape[1] < 1 || target->shape[2] < 1)
        return ssl__loss_fail(L, "target %s must be (B, T, D) tokens", LSHAPE(target, a));
    int64_t nb = target->shape[0], d = target->shape[2];
    for (int i = 0; i < n_blocks; i++) {
        const ssl_tensor_t *p = preds[i];
        if (!idx[i] || k[i] < 1 || p->ndim != 3 || p->shape[0] != nb || p->shape[1] != k[i] ||
            p->shape[2] != d)
            return ssl__loss_fail(
                L, "preds[%d] %s must be (%lld, k[%d] = %lld, %lld) for target %s", i, LSHAPE(p, a),
                (long long)nb, i, (long long)k[i], (long long)d, LSHAPE(target, b));
    }
    /* F.layer_norm(h, (D,)): no affine, eps 1e-5; no gradient (target encoder) */
    ssl_tensor_t *tn = ssl_layer_norm(ctx, ssl__loss_sg(ctx, target), NULL, NULL, 1e-5f);
    ssl_tensor_t *sum = NULL;
    for (int i = 0; i < n_blocks; i++) {
        ssl_tensor_t *t = ssl_gather_rows(ctx, tn, idx[i], k[i]); // (B, k, D)
        ssl_tensor_t *l = kind == SSL_REGRESS_MSE ? ssl_mse(ctx, preds[i], t)
                                                  : ssl_smooth_l1(ctx, preds[i], t, beta);
        sum = sum ? ssl_add(ctx, sum, l) : l;
    }
    return ssl_scale(ctx, sum, 1.0f / (float)n_blocks, 0.0f);
}
