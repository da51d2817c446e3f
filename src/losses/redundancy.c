/* Redundancy reduction: Barlow Twins (cross-correlation towards identity) and VICReg
 * (invariance, variance hinge, covariance decorrelation), as the official code computes them.
 *
 * Both need sum_{i != j} M_ij^2 of a (D, D) product M = A^T B / n of (N, D) batches. It is
 * ||M||_F^2 - ||diag M||^2, the diagonal being cheap (column dot products), so no mask is
 * built; and when the batch is narrower than the embedding (N < D, the usual case: 256 vs
 * 2048 or 8192) ||A^T B||_F^2 = tr(A^T B B^T A) = sum((A A^T) o (B B^T)) costs two (N, N)
 * Gram products, N^2 D flops instead of N D^2, and no (D, D) matrix is ever formed. */
#include "losses_internal.h"

#include <math.h>

/* ||a^T b||_F^2 for a, b (N, D) (b may be a). */
static ssl_tensor_t *cross_fro2(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b)
{
    if (!a || !b)
        return NULL;
    if (a->shape[0] >= a->shape[1]) {
        ssl_tensor_t *c = ssl_matmul(ctx, a, b, 1, 0); // (D, D)
        return ssl_sum_all(ctx, ssl_mul(ctx, c, c));
    }
    ssl_tensor_t *ga = ssl_matmul(ctx, a, a, 0, 1); // (N, N)
    ssl_tensor_t *gb = b == a ? ga : ssl_matmul(ctx, b, b, 0, 1);
    return ssl_sum_all(ctx, ssl_mul(ctx, ga, gb));
}

/* sum_{i != j} M_ij^2 for M = a^T b * f whose diagonal is diag (D). */
static ssl_tensor_t *offdiag_sq(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b, float f,
                                ssl_tensor_t *diag)
{
    return ssl_sub(ctx, ssl_scale(ctx, cross_fro2(ctx, a, b), f * f, 0.0f),
                   ssl_sum_all(ctx, ssl_mul(ctx, diag, diag)));
}

static void set_parts(ssl_loss_parts_t *parts, int n, const char *const *names,
                      ssl_tensor_t *const *values)
{
    if (!parts)
        return;
    parts->n = n;
    for (int i = 0; i < n; i++) {
        parts->name[i] = names[i];
        parts->value[i] = ssl__loss_value(values[i]);
    }
}

ssl_tensor_t *ssl_loss_barlow(ssl_ctx_t *ctx, ssl_tensor_t *z1, ssl_tensor_t *z2, float lambda,
                              float scale, ssl_loss_parts_t *parts)
{
    static const char *L = "barlow";
    if (SSL__NULL_INPUT(z1, L) || SSL__NULL_INPUT(z2, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    if (!ssl__loss_check_pair(L, "z1", z1, "z2", z2, 2))
        return NULL;
    if (!(lambda >= 0.0f && lambda < INFINITY) || !(scale > 0.0f && scale < INFINITY))
        return ssl__loss_fail_status(SSL_ERR_INVALID, L,
                                     "lambda %g must be >= 0 and scale %g > 0 (both finite)",
                                     (double)lambda, (double)scale);
    float inv_n = 1.0f / (float)z1->shape[0];
    /* BatchNorm1d(affine=False) in training mode: batch mean, biased variance, eps 1e-5 */
    ssl_tensor_t *b1 = ssl_batch_norm(ctx, z1, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f); // (N, D)
    ssl_tensor_t *b2 = ssl_batch_norm(ctx, z2, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f);
    ssl_tensor_t *diag = ssl_scale(ctx, ssl_sum(ctx, ssl_mul(ctx, b1, b2), 0, 0), inv_n, 0.0f);
    ssl_tensor_t *dm1 = ssl_scale(ctx, diag, 1.0f, -1.0f);
    ssl_tensor_t *on = ssl_sum_all(ctx, ssl_mul(ctx, dm1, dm1));
    ssl_tensor_t *off = offdiag_sq(ctx, b1, b2, inv_n, diag);
    ssl_tensor_t *loss =
        ssl_scale(ctx, ssl_add(ctx, on, ssl_scale(ctx, off, lambda, 0.0f)), scale, 0.0f);
    if (loss) {
        static const char *const names[] = {"on_diag", "off_diag"};
        ssl_tensor_t *vals[] = {on, off};
        set_parts(parts, 2, names, vals);
    }
    return loss;
}

/* Variance hinge mean_d relu(gamma - sqrt(var + eps)) and the off-diagonal covariance sum / D
 * of one branch x (N, D), unbiased statistics. */
static void vicreg_branch(ssl_ctx_t *ctx, ssl_tensor_t *x, const ssl_vicreg_opts_t *o,
                          ssl_tensor_t **std_term, ssl_tensor_t **cov_term)
{
    int64_t n = x->shape[0], d = x->shape[1];
    float inv = 1.0f / (float)(n - 1);
    ssl_tensor_t *xc = ssl_sub(ctx, x, ssl_mean(ctx, x, 0, 1)); // (N, D)
    ssl_tensor_t *var = ssl_scale(ctx, ssl_sum(ctx, ssl_mul(ctx, xc, xc), 0, 0), inv, 0.0f); // (D)
    ssl_tensor_t *std = ssl_sqrt(ctx, ssl_scale(ctx, var, 1.0f, o->eps));
    *std_term = ssl_mean_all(ctx, ssl_relu(ctx, ssl_scale(ctx, std, -1.0f, o->gamma)));
    *cov_term = ssl_scale(ctx, offdiag_sq(ctx, xc, xc, inv, var), 1.0f / (float)d, 0.0f);
}

ssl_tensor_t *ssl_loss_vicreg(ssl_ctx_t *ctx, ssl_tensor_t *z1, ssl_tensor_t *z2,
                              const ssl_vicreg_opts_t *opts, ssl_loss_parts_t *parts)
{
    static const char *L = "vicreg";
    static const ssl_vicreg_opts_t defaults = {25.0f, 25.0f, 1.0f, 1.0f, 1e-4f};
    if (SSL__NULL_INPUT(z1, L) || SSL__NULL_INPUT(z2, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    const ssl_vicreg_opts_t *o = opts ? opts : &defaults;
    if (!ssl__loss_check_pair(L, "z1", z1, "z2", z2, 2))
        return NULL;
    if (!(o->eps > 0.0f) || !isfinite(o->gamma) || !isfinite(o->sim_coeff) ||
        !isfinite(o->std_coeff) || !isfinite(o->cov_coeff))
        return ssl__loss_fail_status(SSL_ERR_INVALID, L,
                                     "coefficients and gamma must be finite and eps > 0");
    ssl_tensor_t *inv = ssl_mse(ctx, z1, z2);
    ssl_tensor_t *s1, *c1, *s2, *c2;
    vicreg_branch(ctx, z1, o, &s1, &c1);
    vicreg_branch(ctx, z2, o, &s2, &c2);
    ssl_tensor_t *var = ssl_scale(ctx, ssl_add(ctx, s1, s2), 0.5f, 0.0f);
    ssl_tensor_t *cov = ssl_add(ctx, c1, c2);
    ssl_tensor_t *loss = ssl_add(ctx,
                                 ssl_add(ctx, ssl_scale(ctx, inv, o->sim_coeff, 0.0f),
                                         ssl_scale(ctx, var, o->std_coeff, 0.0f)),
                                 ssl_scale(ctx, cov, o->cov_coeff, 0.0f));
    if (loss) {
        static const char *const names[] = {"invariance", "variance", "covariance"};
        ssl_tensor_t *vals[] = {inv, var, cov};
        set_parts(parts, 3, names, vals);
    }
    return loss;
}
