/* The VAE's negative ELBO with a Bernoulli likelihood and a diagonal Gaussian posterior against
 * N(0, I), composed from core ops (autograd gives the gradient):
 *   rec = sum over pixels of BCE(logits, x) = (1 - x) l - log sigmoid(l)   (softplus(l) - x l)
 *   kl  = sum over latent dims of (exp(lv) + mu^2 - lv - 1) / 2
 * each averaged over the batch; loss = rec + beta kl. */
#include "losses_internal.h"

#include <math.h>

ssl_tensor_t *ssl_loss_vae(ssl_ctx_t *ctx, ssl_tensor_t *logits, ssl_tensor_t *x,
                           ssl_tensor_t *mu, ssl_tensor_t *logvar, float beta,
                           ssl_loss_parts_t *parts)
{
    static const char *L = "vae";
    if (SSL__NULL_INPUT(logits, L) || SSL__NULL_INPUT(x, L) || SSL__NULL_INPUT(mu, L) ||
        SSL__NULL_INPUT(logvar, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    char a[64], b[64];
    if (logits->ndim < 2 || !ssl_same_shape(logits, x))
        return ssl__loss_fail(L, "logits %s and images %s must have the same shape (B, ...)",
                              LSHAPE(logits, a), LSHAPE(x, b));
    if (!ssl__loss_check_pair(L, "mu", mu, "logvar", logvar, 1))
        return NULL;
    if (mu->shape[0] != logits->shape[0])
        return ssl__loss_fail(L, "mu %s and logits %s have different batch sizes",
                              LSHAPE(mu, a), LSHAPE(logits, b));
    if (!(beta >= 0.0f) || !isfinite(beta))
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "beta must be finite and >= 0, got %g",
                                     (double)beta);
    for (int64_t i = 0; i < x->numel; i++)
        if (!(x->data[i] >= 0.0f && x->data[i] <= 1.0f))
            return ssl__loss_fail_status(SSL_ERR_INVALID, L,
                                         "images must lie in [0, 1] (Bernoulli means): element "
                                         "%lld is %g (normalised views?)",
                                         (long long)i, (double)x->data[i]);
    float inv_b = 1.0f / (float)logits->shape[0];
    int64_t k = mu->shape[1];
    ssl_tensor_t *one_minus_x = ssl_scale(ctx, ssl__loss_sg(ctx, x), -1.0f, 1.0f);
    ssl_tensor_t *bce =
        ssl_sub(ctx, ssl_mul(ctx, one_minus_x, logits), ssl_log_sigmoid(ctx, logits));
    ssl_tensor_t *rec = ssl_scale(ctx, ssl_sum_all(ctx, bce), inv_b, 0.0f);
    ssl_tensor_t *s =
        ssl_sub(ctx, ssl_add(ctx, ssl_exp(ctx, logvar), ssl_mul(ctx, mu, mu)), logvar);
    ssl_tensor_t *kl = ssl_scale(ctx, ssl_sum_all(ctx, s), 0.5f * inv_b, -0.5f * (float)k);
    ssl_tensor_t *loss = ssl_add(ctx, rec, ssl_scale(ctx, kl, beta, 0.0f));
    if (loss && parts) {
        parts->n = 2;
        parts->name[0] = "rec";
        parts->value[0] = ssl__loss_value(rec);
        parts->name[1] = "kl";
        parts->value[1] = ssl__loss_value(kl);
    }
    return loss;
}
