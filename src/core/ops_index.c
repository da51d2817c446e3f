/* Row selection by index: gather_rows / scatter_rows (masked encoders keep a subset of tokens
 * and later put them back in order) and embedding lookup. Indices are copied into the arena
 * and range-checked when the node is built.
 *
 * Scatter-adds (a row named twice receives the sum) are deterministic without atomics: work
 * is split over the batch and over column blocks, never over the index list, so every output
 * element sums its contributions in index order whatever the number of threads. */
#include "core_internal.h"

#include <string.h>

/* dst[b, k, :] (+)= src[b, idx[b, k], :]: dst (B, K, C), src (B, T, C), idx (B, K).
 * Each dst row is written by one iteration, so rows parallelise freely. */
static void gather_kernel(float *dst, const float *src, const int32_t *idx, int64_t B, int64_t T,
                          int64_t K, int64_t C, int acc)
{
    int64_t rows = B * K;
#pragma omp parallel for schedule(static) if (rows * C > SSL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t b = r / K;
        const float *s = src + (b * T + idx[r]) * C;
        float *d = dst + r * C;
        if (acc)
            for (int64_t c = 0; c < C; c++)
                d[c] += s[c];
        else
            memcpy(d, s, (size_t)C * sizeof(float));
    }
}

/* dst[b, idx[b, k], :] += src[b, k, :]: dst (B, T, C), src (B, K, C), idx (B, K). Tasks are
 * (batch, column block); each walks k in order. */
static void scatter_add_kernel(float *dst, const float *src, const int32_t *idx, int64_t B,
                               int64_t T, int64_t K, int64_t C)
{
    if (B == 0 || K == 0 || C == 0)
        return;
    int64_t nt = ssl_get_num_threads(), nblk = 1;
    if (B < nt && C >= 32) {
        nblk = (nt + B - 1) / B;
        if (nblk > C / 16)
            nblk = C / 16;
    }
    int64_t w = (C + nblk - 1) / nblk;
    w = (w + 15) / 16 * 16; /* whole cache lines per block */
    nblk = (C + w - 1) / w;
    int64_t tasks = B * nblk;
#pragma omp parallel for schedule(static) if (B * K * C > SSL_OMP_MIN)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t b = t / nblk, c0 = (t % nblk) * w, c1 = c0 + w < C ? c0 + w : C;
        float *db = dst + b * T * C;
        for (int64_t k = 0; k < K; k++) {
            float *d = db + (int64_t)idx[b * K + k] * C;
            const float *s = src + (b * K + k) * C;
            for (int64_t c = c0; c < c1; c++)
                d[c] += s[c];
        }
    }
}

/* First index outside [0, T) as (position in idx, value), or -1. */
static int64_t find_bad_index(const int32_t *idx, int64_t n, int64_t T)
{
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= T)
            return i;
    return -1;
}

/* Copy n indices into the arena (NULL when n == 0 or idx is NULL; *fail on OOM). */
static int32_t *copy_indices(ssl_ctx_t *ctx, const int32_t *idx, int64_t n, int *fail)
{
    *fail = 0;
    if (n <= 0 || !idx)
        return NULL;
    int32_t *cp = ssl_arena_alloc(ctx, (size_t)n * sizeof *cp);
    if (!cp) {
        *fail = 1;
        return NULL;
    }
    memcpy(cp, idx, (size_t)n * sizeof *cp);
    return cp;
}

/* ---------------------------------------------------------------- gather_rows */

/* (B, T, C) as the op sees it: a 2-D x is one batch. */
static void btc(const ssl_tensor_t *x, int64_t *B, int64_t *T, int64_t *C)
{
    *B = x->ndim == 3 ? x->shape[0] : 1;
    *T = x->shape[x->ndim - 2];
    *C = x->shape[x->ndim - 1];
}

/* Checks idx (B, K) against [0, T); names batch, position and value of the first bad one. */
static int check_indices(const ssl_node_t *nd, const int32_t *idx, int64_t B, int64_t K, int64_t T)
{
    if (B * K > 0 && !idx)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "idx is NULL");
    int64_t bad = find_bad_index(idx, B * K, T);
    if (bad >= 0)
        return ssl__op_error_status(
            nd, SSL_ERR_INVALID, "index %d at batch %lld, position %lld is outside [0, %lld)",
            (int)idx[bad], (long long)(bad / K), (long long)(bad % K), (long long)T);
    return SSL_OK;
}

/* ia[0] = k; aux[0] = indices (B * k). */
static int gather_rows_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0];
    if (x->ndim != 2 && x->ndim != 3)
        return ssl__op_error(nd, "x must be (B, T, C) or (T, C)");
    int64_t k = nd->ia[0], B, T, C;
    if (k < 0)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "k = %lld is negative", (long long)k);
    btc(x, &B, &T, &C);
    int st = check_indices(nd, nd->aux[0], B, k, T);
    if (st != SSL_OK)
        return st;
    *ndim = x->ndim;
    if (x->ndim == 3)
        shape[0] = B;
    shape[x->ndim - 2] = k;
    shape[x->ndim - 1] = C;
    return SSL_OK;
}

static int gather_rows_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    int64_t B, T, C;
    btc(nd->in[0], &B, &T, &C);
    gather_kernel(nd->out->data, nd->in[0]->data, nd->aux[0], B, T, nd->ia[0], C, 0);
    return SSL_OK;
}

static void gather_rows_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    float *dx = ssl__grad(ctx, nd->in[0]);
    if (!dx)
        return;
    int64_t B, T, C;
    btc(nd->in[0], &B, &T, &C);
    scatter_add_kernel(dx, nd->out->grad, nd->aux[0], B, T, nd->ia[0], C);
}

const ssl_op_def_t ssl_opdef_gather_rows = {
    "gather_rows", 0, gather_rows_shape, gather_rows_forward, gather_rows_backward, 0};

ssl_tensor_t *ssl_gather_rows(ssl_ctx_t *ctx, ssl_tensor_t *x, const int32_t *idx, int64_t k)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_GATHER_ROWS, 1, x);
    n.ia[0] = k;
    if (ctx && x && k > 0 && (x->ndim == 2 || x->ndim == 3)) {
        int fail;
        n.aux[0] = copy_indices(ctx, idx, (x->ndim == 3 ? x->shape[0] : 1) * k, &fail);
        if (fail)
            return NULL;
    }
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- scatter_rows */

/* ia[0] = t; aux[0] = indices (B * K). src is (B, K, C) or (K, C). */
static int scatter_rows_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *src = nd->in[0];
    if (src->ndim != 2 && src->ndim != 3)
        return ssl__op_error(nd, "src must be (B, K, C) or (K, C)");
    int64_t t = nd->ia[0], B, K, C;
    if (t < 0)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "t = %lld is negative", (long long)t);
    btc(src, &B, &K, &C);
    int st = check_indices(nd, nd->aux[0], B, K, t);
    if (st != SSL_OK)
        return st;
    *ndim = src->ndim;
    if (src->ndim == 3)
        shape[0] = B;
    shape[src->ndim - 2] = t;
    shape[src->ndim - 1] = C;
    return SSL_OK;
}

static int scatter_rows_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    int64_t B, K, C;
    btc(nd->in[0], &B, &K, &C);
    float *y = nd->out->data; // (B, t, C)
    memset(y, 0, (size_t)nd->out->numel * sizeof(float));
    scatter_add_kernel(y, nd->in[0]->data, nd->aux[0], B, nd->ia[0], K, C);
    return SSL_OK;
}

static void scatter_rows_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    float *dsrc = ssl__grad(ctx, nd->in[0]);
    if (!dsrc)
        return;
    int64_t B, K, C;
    btc(nd->in[0], &B, &K, &C);
    gather_kernel(dsrc, nd->out->grad, nd->aux[0], B, nd->ia[0], K, C, 1);
}

const ssl_op_def_t ssl_opdef_scatter_rows = {
    "scatter_rows", 0, scatter_rows_shape, scatter_rows_forward, scatter_rows_backward, 0};

ssl_tensor_t *ssl_scatter_rows(ssl_ctx_t *ctx, ssl_tensor_t *src, const int32_t *idx, int64_t t)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_SCATTER_ROWS, 1, src);
    n.ia[0] = t;
    if (ctx && src && (src->ndim == 2 || src->ndim == 3)) {
        int64_t B, K, C;
        btc(src, &B, &K, &C);
        int fail;
        n.aux[0] = copy_indices(ctx, idx, B * K, &fail);
        if (fail)
            return NULL;
    }
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- embedding */

/* ia[0] = ids rank, ia[1..4] = ids shape, ia[5] = ids count, ia[6] = ids_shape missing;
 * aux[0] = ids. */
static int embedding_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *w = nd->in[0];
    if (w->ndim != 2)
        return ssl__op_error(nd, "weight must be (V, C)");
    int r = (int)nd->ia[0];
    if (r < 0 || r > SSL_MAX_DIMS - 1)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "ids rank %d outside 0..%d", r,
                                    SSL_MAX_DIMS - 1);
    if (nd->ia[6])
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "ids_shape is NULL");
    for (int i = 0; i < r; i++)
        if (nd->ia[1 + i] < 0)
            return ssl__op_error_status(nd, SSL_ERR_INVALID, "ids dim %d is negative (%lld)", i,
                                        (long long)nd->ia[1 + i]);
    int64_t n = nd->ia[5], V = w->shape[0];
    const int32_t *ids = nd->aux[0];
    if (n > 0 && !ids)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "ids is NULL");
    int64_t bad = find_bad_index(ids, n, V);
    if (bad >= 0)
        return ssl__op_error_status(nd, SSL_ERR_INVALID,
                                    "id %d at position %lld is outside [0, %lld)", (int)ids[bad],
                                    (long long)bad, (long long)V);
    *ndim = r + 1;
    for (int i = 0; i < r; i++)
        shape[i] = nd->ia[1 + i];
    shape[r] = w->shape[1];
    return SSL_OK;
}

static int embedding_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    const ssl_tensor_t *w = nd->in[0];
    gather_kernel(nd->out->data, w->data, nd->aux[0], 1, w->shape[0], nd->ia[5], w->shape[1], 0);
    return SSL_OK;
}

static void embedding_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    ssl_tensor_t *w = nd->in[0];
    float *dw = ssl__grad(ctx, w);
    if (dw)
        scatter_add_kernel(dw, nd->out->grad, nd->aux[0], 1, w->shape[0], nd->ia[5], w->shape[1]);
}

const ssl_op_def_t ssl_opdef_embedding = {"embedding",        0, embedding_shape, embedding_forward,
                                          embedding_backward, 0};

ssl_tensor_t *ssl_embedding(ssl_ctx_t *ctx, ssl_tensor_t *weight, const int32_t *ids, int ndim,
                            const int64_t *ids_shape)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_EMBEDDING, 1, weight);
    n.ia[0] = ndim;
    if (ndim < 0 || ndim > SSL_MAX_DIMS - 1)
        return ssl__apply(ctx, &n); /* the shape check reports the rank */
    if (ndim > 0 && !ids_shape) {
        n.ia[6] = 1;
        return ssl__apply(ctx, &n);
    }
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        n.ia[1 + i] = ids_shape[i];
        count *= ids_shape[i] > 0 ? ids_shape[i] : 0;
    }
    n.ia[5] = count;
    if (ctx && weight) {
        int fail;
        n.aux[0] = copy_indices(ctx, ids, count, &fail);
        if (fail)
            return NULL;
    }
    return ssl__apply(ctx, &n);
}
