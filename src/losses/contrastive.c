/* InfoNCE family: NT-Xent (SimCLR), MoCo v2 (queue of negatives), MoCo v3 (in-batch keys,
 * symmetrised), and the key queue. Each is cross-entropy over cosine-similarity logits: the
 * temperature is folded into the (N, D) queries before the product, never applied to the
 * (N, K) logits. */
#include "losses_internal.h"
#include "ranks.h"
#include "ssl/nn.h"

#include <math.h>
#include <string.h>

/* Added to the self-similarity logits: exp(-1e9 - max) is exactly 0, and unlike -inf it can
 * never meet another infinity. */
#define MASKED_LOGIT (-1e9f)

ssl_tensor_t *ssl__loss_ntxent_rows(ssl_ctx_t *ctx, ssl_tensor_t *z1, ssl_tensor_t *z2,
                                    ssl_tensor_t *z1_all, ssl_tensor_t *z2_all, int64_t row0,
                                    float temperature)
{
    static const char *L = "ntxent";
    if (SSL__NULL_INPUT(z1, L) || SSL__NULL_INPUT(z2, L) || SSL__NULL_INPUT(z1_all, L) ||
        SSL__NULL_INPUT(z2_all, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    if (!ssl__loss_check_pair(L, "z1", z1, "z2", z2, 1) ||
        !ssl__loss_check_pair(L, "z1_all", z1_all, "z2_all", z2_all, 1) ||
        !ssl__loss_check_rows(L, "z1", z1, "z1_all", z1_all, row0) ||
        !ssl__loss_check_pos(L, "temperature", temperature))
        return NULL;
    int64_t n = z1->shape[0], n2 = 2 * n, m = z1_all->shape[0], m2 = 2 * m;
    ssl_tensor_t *zs[2] = {z1, z2};
    ssl_tensor_t *zn = ssl_l2_normalize(ctx, ssl_concat(ctx, zs, 2, 0), -1, 1e-12f); // (2B, D)
    ssl_tensor_t *kn = zn; /* one process: the keys are the queries */
    if (z1_all != z1 || z2_all != z2) {
        ssl_tensor_t *ks[2] = {z1_all, z2_all};
        kn = ssl_l2_normalize(ctx, ssl_concat(ctx, ks, 2, 0), -1, 1e-12f); // (2M, D)
    }
    ssl_tensor_t *sim = ssl_matmul(ctx, ssl_scale(ctx, zn, 1.0f / temperature, 0.0f), kn, 0, 1);
    ssl_tensor_t *mask = ssl_tensor_zeros(ctx, 2, (int64_t[]){n2, m2}); // (2B, 2M)
    int32_t *labels = ssl__loss_labels(ctx, n2, 0);
    if (!sim || !mask || !labels)
        return NULL;
    /* query i: view v = i / B of sample row0 + i % B; masked itself, its positive the other
     * view of the sample (one process: i + B mod 2B) */
    for (int64_t i = 0; i < n2; i++) {
        int64_t v = i / n, j = row0 + i % n;
        mask->data[i * m2 + v * m + j] = MASKED_LOGIT;
        labels[i] = (int32_t)((1 - v) * m + j);
    }
    return ssl_cross_entropy(ctx, ssl_add(ctx, sim, mask), labels);
}

ssl_tensor_t *ssl_loss_ntxent(ssl_ctx_t *ctx, ssl_tensor_t *z1, ssl_tensor_t *z2, float temperature)
{
    return ssl__loss_ntxent_rows(ctx, z1, z2, z1, z2, 0, temperature);
}

ssl_tensor_t *ssl_loss_moco(ssl_ctx_t *ctx, ssl_tensor_t *q, ssl_tensor_t *k, ssl_tensor_t *queue,
                            float temperature)
{
    static const char *L = "moco";
    if (SSL__NULL_INPUT(q, L) || SSL__NULL_INPUT(k, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    if (!ssl__loss_check_pair(L, "q", q, "k", k, 1) ||
        !ssl__loss_check_pos(L, "temperature", temperature))
        return NULL;
    if (queue && (queue->ndim != 2 || queue->shape[1] != q->shape[1])) {
        char a[64], b[64];
        return ssl__loss_fail(L, "queue %s must be (K, %lld) to match q %s", LSHAPE(queue, a),
                              (long long)q->shape[1], LSHAPE(q, b));
    }
    int64_t n = q->shape[0];
    ssl_tensor_t *qs = ssl_scale(ctx, ssl_l2_normalize(ctx, q, -1, 1e-12f), 1.0f / temperature,
                                 0.0f);                                         // (N, D)
    ssl_tensor_t *kn = ssl_l2_normalize(ctx, ssl__loss_sg(ctx, k), -1, 1e-12f); // (N, D)
    ssl_tensor_t *logits = ssl_sum(ctx, ssl_mul(ctx, qs, kn), -1, 1);           // (N, 1)
    if (queue && queue->shape[0] > 0) {
        ssl_tensor_t *parts[2] = {logits, ssl_matmul(ctx, qs, ssl__loss_sg(ctx, queue), 0, 1)};
        logits = ssl_concat(ctx, parts, 2, 1); // (N, 1 + K)
    }
    int32_t *labels = ssl__loss_labels_const(ctx, n, 0);
    if (!labels)
        return NULL;
    return ssl_cross_entropy(ctx, logits, labels);
}

/* 2 tau CE(q k^T / tau, diagonal) with the keys detached. */
static ssl_tensor_t *moco_v3_ctr(ssl_ctx_t *ctx, ssl_tensor_t *q, ssl_tensor_t *k, float tau,
                                 const int32_t *labels)
{
    ssl_tensor_t *qs = ssl_scale(ctx, ssl_l2_normalize(ctx, q, -1, 1e-12f), 1.0f / tau, 0.0f);
    ssl_tensor_t *kn = ssl_l2_normalize(ctx, ssl__loss_sg(ctx, k), -1, 1e-12f);
    ssl_tensor_t *ce = ssl_cross_entropy(ctx, ssl_matmul(ctx, qs, kn, 0, 1), labels);
    return ssl_scale(ctx, ce, 2.0f * tau, 0.0f);
}

ssl_tensor_t *ssl__loss_moco_v3_rows(ssl_ctx_t *ctx, ssl_tensor_t *q1, ssl_tensor_t *q2,
                                     ssl_tensor_t *k1_all, ssl_tensor_t *k2_all, int64_t row0,
                                     float temperature)
{
    static const char *L = "moco_v3";
    if (SSL__NULL_INPUT(q1, L) || SSL__NULL_INPUT(q2, L) || SSL__NULL_INPUT(k1_all, L) ||
        SSL__NULL_INPUT(k2_all, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    if (!ssl__loss_check_pair(L, "q1", q1, "q2", q2, 1) ||
        !ssl__loss_check_pair(L, "k1", k1_all, "k2", k2_all, 1) ||
        !ssl__loss_check_rows(L, "q1", q1, "k1", k1_all, row0) ||
        !ssl__loss_check_pos(L, "temperature", temperature))
        return NULL;
    int32_t *labels = ssl__loss_row_labels(ctx, q1->shape[0], row0);
    if (!labels)
        return NULL;
    return ssl_add(ctx, moco_v3_ctr(ctx, q1, k2_all, temperature, labels),
                   moco_v3_ctr(ctx, q2, k1_all, temperature, labels));
}

ssl_tensor_t *ssl_loss_moco_v3(ssl_ctx_t *ctx, ssl_tensor_t *q1, ssl_tensor_t *q2, ssl_tensor_t *k1,
                               ssl_tensor_t *k2, float temperature)
{
    static const char *L = "moco_v3";
    if (ctx && q1 && k1 && !ssl__loss_check_pair(L, "q1", q1, "k1", k1, 1))
        return NULL;
    return ssl__loss_moco_v3_rows(ctx, q1, q2, k1, k2, 0, temperature);
}

/* ---------------------------------------------------------------- key queue */

int ssl_queue_init(ssl_queue_t *q, ssl_params_t *p, const char *name, int64_t size, int64_t dim,
                   int random_init, uint64_t seed)
{
    if (!q || !p || !name)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_queue_init: NULL argument");
    memset(q, 0, sizeof *q);
    if (size < 1 || dim < 1 || size > (1 << 24))
        return ssl_set_error(SSL_ERR_INVALID,
                             "ssl_queue_init '%s': size %lld must be in [1, 2^24] and dim %lld "
                             ">= 1",
                             name, (long long)size, (long long)dim);
    char buf[256];
    q->keys = ssl_params_add(p, ssl_nn_name(buf, sizeof buf, name, "queue_keys"), 2,
                             (int64_t[]){size, dim}, SSL_PARAM_BUFFER, 0);
    if (!q->keys)
        return ssl_last_status();
    q->ptr = ssl_params_add(p, ssl_nn_name(buf, sizeof buf, name, "queue_ptr"), 0, NULL,
                            SSL_PARAM_BUFFER, 0);
    if (!q->ptr)
        return ssl_last_status();
    q->len = ssl_params_add(p, ssl_nn_name(buf, sizeof buf, name, "queue_len"), 0, NULL,
                            SSL_PARAM_BUFFER, 0);
    if (!q->len)
        return ssl_last_status();
    if (random_init) { /* MoCo: normalize(randn(dim, K)) */
        ssl_nn_fill_normal(q->keys, 0.0f, 1.0f, seed);
        float *k = q->keys->data;
        for (int64_t r = 0; r < size; r++) {
            double s = 0;
            for (int64_t j = 0; j < dim; j++)
                s += (double)k[r * dim + j] * k[r * dim + j];
            double nrm = sqrt(s);
            float inv = (float)(1.0 / (nrm > 1e-12 ? nrm : 1e-12));
            for (int64_t j = 0; j < dim; j++)
                k[r * dim + j] *= inv;
        }
        q->len->data[0] = (float)size;
    }
    return SSL_OK;
}

int64_t ssl_queue_size(const ssl_queue_t *q)
{
    if (SSL__IS_NULL(q, __func__) || SSL__IS_NULL(q->keys, __func__))
        return SSL_ERR_INVALID;
    return q->keys->shape[0];
}

int64_t ssl_queue_count(const ssl_queue_t *q)
{
    if (SSL__IS_NULL(q, __func__) || SSL__IS_NULL(q->len, __func__))
        return SSL_ERR_INVALID;
    return (int64_t)q->len->data[0];
}

int ssl_queue_push(ssl_queue_t *q, const ssl_tensor_t *keys)
{
    if (!q || !q->keys || !keys)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_queue_push: NULL queue or keys");
    int64_t size = q->keys->shape[0], dim = q->keys->shape[1];
    if (keys->ndim != 2 || keys->shape[1] != dim) {
        char a[64];
        return ssl_set_error(SSL_ERR_SHAPE, "ssl_queue_push: keys %s must be (N, %lld)",
                             LSHAPE(keys, a), (long long)dim);
    }
    int64_t n = keys->shape[0], ptr = (int64_t)q->ptr->data[0];
    if (ptr < 0 || ptr >= size)
        return ssl_set_error(SSL_ERR_STATE, "ssl_queue_push: stored pointer %lld outside [0, %lld)",
                             (long long)ptr, (long long)size);
    /* With more keys than rows only the last `size` survive: skip the others. */
    int64_t skip = n > size ? n - size : 0;
    int64_t start = (ptr + skip) % size;
#pragma omp parallel for schedule(static) if ((n - skip) * dim > 16384)
    for (int64_t i = skip; i < n; i++) {
        const float *src = keys->data + i * dim;
        float *dst = q->keys->data + ((start + i - skip) % size) * dim;
        double s = 0;
        for (int64_t j = 0; j < dim; j++)
            s += (double)src[j] * src[j];
        double nrm = sqrt(s);
        float inv = (float)(1.0 / (nrm > 1e-12 ? nrm : 1e-12));
        for (int64_t j = 0; j < dim; j++)
            dst[j] = src[j] * inv;
    }
    q->ptr->data[0] = (float)((ptr + n) % size);
    int64_t len = ssl_queue_count(q) + n;
    q->len->data[0] = (float)(len < size ? len : size);
    return SSL_OK;
}
