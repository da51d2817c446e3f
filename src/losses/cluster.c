/* DeepCluster-v2's loss (facebookresearch/swav main_deepclusterv2.py): for each set of
 * prototypes, the cross-entropy of the scores / T against the k-means assignments of the last
 * epoch, the same target for every crop of a sample, samples without an assignment left out
 * (the official ignore_index -100); averaged over the sets. */
#include "losses_internal.h"

ssl_tensor_t *ssl_loss_deepclusterv2(ssl_ctx_t *ctx, ssl_tensor_t *const *scores, int n_heads,
                                     const int32_t *const *targets, int n_views, float temperature)
{
    static const char *L = "deepclusterv2";
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    if (!scores || !targets || n_heads < 1 || n_heads > SSL_DCV2_MAX_HEADS || n_views < 1)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L,
                                     "needs 1 to %d score tensors and targets and n_views >= 1 "
                                     "(got %d heads, %d views)",
                                     SSL_DCV2_MAX_HEADS, n_heads, n_views);
    if (!ssl__loss_check_pos(L, "temperature", temperature))
        return NULL;
    ssl_tensor_t *total = NULL;
    for (int h = 0; h < n_heads; h++) {
        if (SSL__NULL_INPUT(scores[h], L))
            return NULL;
        if (!ssl__loss_check_2d(L, "scores", scores[h], n_views) || !targets[h])
            return targets[h] ? NULL : ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL targets");
        const int64_t rows = scores[h]->shape[0], K = scores[h]->shape[1];
        if (rows % n_views) {
            char s[64];
            return ssl__loss_fail(L, "scores[%d] %s: rows are not %d views of one batch", h,
                                  LSHAPE(scores[h], s), n_views);
        }
        const int64_t B = rows / n_views;
        /* the rows with an assignment, view-major, and their targets */
        int32_t *idx = ssl_arena_alloc(ctx, sizeof(int32_t) * (size_t)rows);
        int32_t *lab = ssl_arena_alloc(ctx, sizeof(int32_t) * (size_t)rows);
        if (!idx || !lab)
            return NULL;
        int64_t n = 0;
        for (int64_t r = 0; r < rows; r++) {
            int32_t t = targets[h][r % B];
            if (t >= K)
                return ssl__loss_fail_status(SSL_ERR_INVALID, L,
                                             "target %d of sample %lld is not below the %lld "
                                             "prototypes of set %d",
                                             (int)t, (long long)(r % B), (long long)K, h);
            if (t >= 0) {
                idx[n] = (int32_t)r;
                lab[n++] = t;
            }
        }
        if (n == 0) /* PyTorch's mean over no row is NaN; a set without targets adds nothing */
            continue;
        ssl_tensor_t *x = n == rows ? scores[h] : ssl_gather_rows(ctx, scores[h], idx, n);
        ssl_tensor_t *l = ssl_cross_entropy(ctx, ssl_scale(ctx, x, 1.0f / temperature, 0.0f), lab);
        total = total ? ssl_add(ctx, total, l) : l;
    }
    if (!total) /* no sample of the batch has an assignment: a zero loss */
        return ssl_scale(ctx, ssl_sum_all(ctx, scores[0]), 0.0f, 0.0f);
    return ssl_scale(ctx, total, 1.0f / (float)n_heads, 0.0f);
}
