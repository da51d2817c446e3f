/* SwAV: Sinkhorn-Knopp codes (the official normalisation) and the swapped prediction.
 *
 * As in dino.c, the swapped cross-entropies are summed in one soft cross-entropy over all
 * V * B score rows: row (v, b) gets the target sum_{a: views[a] != v} codes[a][b]. */
#include "core/comm.h"
#include "losses_internal.h"
#include "ranks.h"

#include <math.h>
#include <string.h>

/* The largest of every rank's x (this rank's alone without a comm): one all-gather. */
static int max_over_ranks(ssl_ctx_t *ctx, const ssl_comm_t *comm, float *x)
{
    if (!comm)
        return SSL_OK;
    float *all = ssl_arena_alloc(ctx, sizeof(float) * (size_t)comm->size);
    if (!all)
        return ssl_last_status();
    if (comm->allgather_f32(comm->user, x, 1, all) != SSL_OK)
        return ssl_last_status();
    for (int r = 0; r < comm->size; r++)
        *x = all[r] > *x ? all[r] : *x;
    return SSL_OK;
}

/* ssl_sinkhorn; with comm (not NULL) this rank's rows of the Sinkhorn-Knopp of every rank's
 * rows, as swav's distributed_sinkhorn and dinov2's sinkhorn_knopp_teacher: the maximum, the
 * total, the row count B and each iteration's prototype sums over all ranks (every rank calls
 * the same collectives in the same order, with 0 rows too); the per-sample scaling is local. */
static ssl_tensor_t *sinkhorn(ssl_ctx_t *ctx, const ssl_tensor_t *scores, float epsilon,
                              int iters, const ssl_comm_t *comm)
{
    static const char *L = "sinkhorn";
    if (SSL__NULL_INPUT(scores, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    if (!ssl__loss_check_2d(L, "scores", scores, comm ? 0 : 1) ||
        !ssl__loss_check_pos(L, "epsilon", epsilon))
        return NULL;
    if (iters < 0)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "iterations %d < 0", iters);
    int64_t nb = scores->shape[0], nk = scores->shape[1], n = nb * nk;
    ssl_tensor_t *out = ssl_tensor_new(ctx, 2, scores->shape);      // (B, K)
    double *q = ssl_arena_alloc(ctx, (size_t)n * sizeof(double));   // (B, K)
    double *rs = ssl_arena_alloc(ctx, (size_t)nk * sizeof(double)); // (K)
    double *rt = ssl_arena_alloc(ctx, (size_t)nb * sizeof(double)); // (B)
    if (!out || !q || !rs || !rt)
        return NULL;
    const float *s = scores->data;
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        mx = s[i] > mx ? s[i] : mx;
    if (max_over_ranks(ctx, comm, &mx) != SSL_OK)
        return NULL;
    if (!isfinite(mx))
        return ssl__loss_fail_status(SSL_ERR_NONFINITE, L, "scores are not finite (max %g)",
                                     (double)mx);
    const double inv_eps = 1.0 / (double)epsilon;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t b = 0; b < nb; b++) {
        double t = 0;
        for (int64_t k = 0; k < nk; k++) {
            double e = exp(((double)s[b * nk + k] - mx) * inv_eps);
            q[b * nk + k] = e;
            t += e;
        }
        rt[b] = t;
    }
    double tot[2] = {0, (double)nb}; /* summed in order: the same for any thread count */
    for (int64_t b = 0; b < nb; b++)
        tot[0] += rt[b];
    if (comm && comm->allreduce_f64(comm->user, tot, 2) != SSL_OK)
        return NULL;
    /* The maximum element is exp(0) = 1, so total >= 1; B: the samples of every rank. */
    const double inv_total = 1.0 / tot[0], B = tot[1];
    for (int64_t i = 0; i < n; i++)
        q[i] *= inv_total;
    for (int it = 0; it < iters; it++) {
        /* each prototype (column here, a row of the official K x B matrix) to 1/K */
        memset(rs, 0, (size_t)nk * sizeof(double));
        for (int64_t b = 0; b < nb; b++)
            for (int64_t k = 0; k < nk; k++)
                rs[k] += q[b * nk + k];
        if (comm && comm->allreduce_f64(comm->user, rs, nk) != SSL_OK)
            return NULL;
        for (int64_t k = 0; k < nk; k++) /* an all-zero (underflowed) prototype stays 0 */
            rs[k] = rs[k] > 0 ? 1.0 / (rs[k] * (double)nk) : 0.0;
            /* then each sample to 1/B */
#pragma omp parallel for schedule(static) if (n > 16384)
        for (int64_t b = 0; b < nb; b++) {
            double *row = q + b * nk, cs = 0;
            for (int64_t k = 0; k < nk; k++) {
                row[k] *= rs[k];
                cs += row[k];
            }
            double f = cs > 0 ? 1.0 / (cs * B) : 0.0;
            for (int64_t k = 0; k < nk; k++)
                row[k] *= f;
        }
    }
    for (int64_t i = 0; i < n; i++)
        out->data[i] = (float)(q[i] * B);
    return out;
}

ssl_tensor_t *ssl_sinkhorn(ssl_ctx_t *ctx, const ssl_tensor_t *scores, float epsilon, int iters)
{
    return sinkhorn(ctx, scores, epsilon, iters, NULL);
}

ssl_tensor_t *ssl__sinkhorn_ranks(ssl_ctx_t *ctx, const ssl_tensor_t *scores, float epsilon,
                                  int iters)
{
    return sinkhorn(ctx, scores, epsilon, iters, ctx ? ssl__ctx_comm(ctx) : NULL);
}

/* B from scores (V B, K) and n_views, with every check of the swapped prediction. */
static int64_t swav_batch(const char *L, const ssl_tensor_t *scores, int n_views, const int *views,
                          int n_assign)
{
    char a[64];
    if (!ssl__loss_check_2d(L, "scores", scores, 1))
        return -1;
    if (n_views < 2 || scores->shape[0] % n_views) {
        ssl__loss_fail(L, "scores %s must stack n_views = %d >= 2 views", LSHAPE(scores, a),
                       n_views);
        return -1;
    }
    if (!views || n_assign < 1 || n_assign > n_views) {
        ssl__loss_fail_status(SSL_ERR_INVALID, L, "need 1..%d assigned views, got %d", n_views,
                              n_assign);
        return -1;
    }
    for (int i = 0; i < n_assign; i++) {
        if (views[i] < 0 || views[i] >= n_views) {
            ssl__loss_fail_status(SSL_ERR_INVALID, L, "assigned view %d outside [0, %d)", views[i],
                                  n_views);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (views[j] == views[i]) {
                ssl__loss_fail_status(SSL_ERR_INVALID, L, "view %d assigned twice", views[i]);
                return -1;
            }
    }
    return scores->shape[0] / n_views;
}

ssl_tensor_t *ssl_loss_swav_codes(ssl_ctx_t *ctx, ssl_tensor_t *scores, int n_views,
                                  const int *views, int n_assign, ssl_tensor_t *const *codes,
                                  float temperature)
{
    static const char *L = "swav";
    if (SSL__NULL_INPUT(scores, L) || SSL__NULL_INPUT(codes, L))
        return NULL;
    for (int a = 0; a < n_assign; a++)
        if (!codes[a])
            return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    int64_t nb = swav_batch(L, scores, n_views, views, n_assign);
    if (nb < 0 || !ssl__loss_check_pos(L, "temperature", temperature))
        return NULL;
    int64_t nk = scores->shape[1];
    for (int a = 0; a < n_assign; a++)
        if (codes[a]->ndim != 2 || codes[a]->shape[0] != nb || codes[a]->shape[1] != nk) {
            char s1[64], s2[64];
            return ssl__loss_fail(L, "codes[%d] %s must be (%lld, %lld) for scores %s", a,
                                  LSHAPE(codes[a], s1), (long long)nb, (long long)nk,
                                  LSHAPE(scores, s2));
        }
    ssl_tensor_t *tgt = ssl_tensor_new(ctx, 2, scores->shape); // (V B, K)
    if (!tgt)
        return NULL;
    int64_t rows = scores->shape[0];
#pragma omp parallel for schedule(static) if (rows * nk > 16384)
    for (int64_t r = 0; r < rows; r++) {
        int64_t v = r / nb, b = r % nb;
        float *dst = tgt->data + r * nk;
        memset(dst, 0, (size_t)nk * sizeof(float));
        for (int a = 0; a < n_assign; a++) {
            if (views[a] == v)
                continue;
            const float *src = codes[a]->data + b * nk;
            for (int64_t k = 0; k < nk; k++)
                dst[k] += src[k];
        }
    }
    ssl_tensor_t *ce =
        ssl_cross_entropy_soft(ctx, ssl_scale(ctx, scores, 1.0f / temperature, 0.0f), tgt);
    /* ce = (1 / (V B)) sum_a sum_{v != a} sum_b CE; the loss averages over B, V - 1, n_assign */
    return ssl_scale(ctx, ce, (float)((double)n_views / ((double)(n_views - 1) * n_assign)), 0.0f);
}

ssl_tensor_t *ssl_loss_swav(ssl_ctx_t *ctx, ssl_tensor_t *scores, int n_views, const int *views,
                            int n_assign, ssl_tensor_t *const *queue_scores, float temperature,
                            float epsilon, int sinkhorn_iters)
{
    static const char *L = "swav";
    if (SSL__NULL_INPUT(scores, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    int64_t nb = swav_batch(L, scores, n_views, views, n_assign);
    if (nb < 0)
        return NULL;
    ssl_tensor_t **codes = ssl_arena_alloc(ctx, (size_t)n_assign * sizeof *codes);
    if (!codes)
        return NULL;
    ssl_tensor_t *sg = ssl__loss_sg(ctx, scores);
    for (int a = 0; a < n_assign; a++) {
        ssl_tensor_t *s = ssl_slice(ctx, sg, 0, (int64_t)views[a] * nb, nb); // (B, K)
        int64_t nq = 0;
        if (queue_scores && queue_scores[a]) {
            ssl_tensor_t *qs = queue_scores[a];
            if (qs->ndim != 2 || qs->shape[1] != scores->shape[1]) {
                char s1[64], s2[64];
                return ssl__loss_fail(L, "queue_scores[%d] %s must be (Q, K) for scores %s", a,
                                      LSHAPE(qs, s1), LSHAPE(scores, s2));
            }
            nq = qs->shape[0];
            ssl_tensor_t *both[2] = {ssl__loss_sg(ctx, qs), s};
            s = ssl_concat(ctx, both, 2, 0); // (Q + B, K)
        }
        ssl_tensor_t *q = ssl_sinkhorn(ctx, s, epsilon, sinkhorn_iters);
        codes[a] = nq ? ssl_slice(ctx, q, 0, nq, nb) : q;
        if (!codes[a])
            return NULL;
    }
    return ssl_loss_swav_codes(ctx, scores, n_views, views, n_assign, codes, temperature);
}
