/* The KoLeo regulariser (Kozachenko-Leonenko entropy estimator, Sablayrolles et al. 2018;
 * facebookresearch/dinov2 dinov2/loss/koleo_loss.py): rows L2-normalised, each row's nearest
 * other row by inner product, -mean log(||x_i - x_nn(i) + eps||_2 + eps). Spreads the rows
 * apart: a batch whose rows crowd together costs more.
 *
 * Composed of existing ops, so autograd gives the gradient, through both the row and its
 * neighbour (as torch's x[I]); the neighbour indices are data, not differentiated. */
#include "losses_internal.h"

#define KOLEO_EPS 1e-8f /* F.normalize's eps, PairwiseDistance's eps and the log's, as dinov2 */

ssl_tensor_t *ssl_loss_koleo(ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    static const char *L = "koleo";
    if (SSL__NULL_INPUT(x, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    if (!ssl__loss_check_2d(L, "x", x, 2))
        return NULL;
    const int64_t N = x->shape[0], D = x->shape[1];
    ssl_tensor_t *xn = ssl_l2_normalize(ctx, x, -1, KOLEO_EPS); // (N, D)
    int32_t *nn = ssl_arena_alloc(ctx, sizeof(int32_t) * (size_t)N);
    /* pairwise_NNs_inner: the largest inner product with another row, the first on ties
     * (torch.max over a row whose own entry is set to -1) */
    if (!xn || !nn)
        return NULL;
#pragma omp parallel for schedule(static) if (N * N * D > 65536)
    for (int64_t i = 0; i < N; i++) {
        const float *a = xn->data + i * D;
        double best = 0;
        int32_t arg = -1;
        for (int64_t j = 0; j < N; j++) {
            double dot = -1.0;
            if (j != i) {
                dot = 0;
                const float *b = xn->data + j * D;
                for (int64_t k = 0; k < D; k++)
                    dot += (double)a[k] * (double)b[k];
            }
            if (arg < 0 || dot > best) {
                best = dot;
                arg = (int32_t)j;
            }
        }
        nn[i] = arg;
    }
    ssl_tensor_t *diff = ssl_sub(ctx, xn, ssl_gather_rows(ctx, xn, nn, N)); // (N, D)
    diff = ssl_scale(ctx, diff, 1.0f, KOLEO_EPS); /* pairwise_distance adds eps to x1 - x2 */
    ssl_tensor_t *dist = ssl_sqrt(ctx, ssl_sum(ctx, ssl_mul(ctx, diff, diff), -1, 0)); // (N)
    ssl_tensor_t *l = ssl_log(ctx, ssl_scale(ctx, dist, 1.0f, KOLEO_EPS));
    return ssl_scale(ctx, ssl_mean_all(ctx, l), -1.0f, 0.0f);
}
