/* matmul (plain, shared-weight and batched) and linear, all on sgemm without transposing
 * copies: the transposes are passed to BLAS as flags. In a bf16 context (ssl__gemm) the same
 * GEMMs run in bf16 with fp32 sums; the bias and residual sums stay fp32. */
#include "core_internal.h"

#include <string.h>

/* ---------------------------------------------------------------- matmul */

typedef struct mm_dims {
    int64_t batch; /* number of (M, K) matrices in a */
    int64_t m, k, n;
    int shared;    /* b is 2-D and shared across a's leading dims */
    int ta, tb;
} mm_dims_t;

static void mm_dims(const ssl_node_t *nd, mm_dims_t *d)
{
    const ssl_tensor_t *a = nd->in[0], *b = nd->in[1];
    d->ta = (int)nd->ia[0];
    d->tb = (int)nd->ia[1];
    int64_t r0 = a->shape[a->ndim - 2], r1 = a->shape[a->ndim - 1];
    d->m = d->ta ? r1 : r0;
    d->k = d->ta ? r0 : r1;
    int64_t c0 = b->shape[b->ndim - 2], c1 = b->shape[b->ndim - 1];
    d->n = d->tb ? c0 : c1;
    d->batch = 1;
    for (int i = 0; i < a->ndim - 2; i++)
        d->batch *= a->shape[i];
    d->shared = b->ndim == 2;
}

static int matmul_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *a = nd->in[0], *b = nd->in[1];
    if (a->ndim < 2 || b->ndim < 2)
        return ssl__op_error(nd, "both operands need at least 2 dims");
    mm_dims_t d;
    mm_dims(nd, &d);
    int64_t bk = d.tb ? b->shape[b->ndim - 1] : b->shape[b->ndim - 2];
    if (bk != d.k)
        return ssl__op_error(nd, "inner dimensions differ: %lld (a%s) vs %lld (b%s)",
                             (long long)d.k, d.ta ? "^T" : "", (long long)bk, d.tb ? "^T" : "");
    if (b->ndim > 2) {
        if (b->ndim != a->ndim)
            return ssl__op_error(nd, "batched operands need the same rank (%d vs %d)", a->ndim,
                                 b->ndim);
        for (int i = 0; i < a->ndim - 2; i++)
            if (a->shape[i] != b->shape[i])
                return ssl__op_error(nd, "batch dimension %d differs (%lld vs %lld)", i,
                                     (long long)a->shape[i], (long long)b->shape[i]);
    }
    *ndim = a->ndim;
    for (int i = 0; i < a->ndim - 2; i++)
        shape[i] = a->shape[i];
    shape[a->ndim - 2] = d.m;
    shape[a->ndim - 1] = d.n;
    return SSL_OK;
}

static int matmul_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    mm_dims_t d;
    mm_dims(nd, &d);
    const float *A = nd->in[0]->data, *B = nd->in[1]->data;
    float *C = nd->out->data; // (batch, M, N)
    int64_t lda = d.ta ? d.m : d.k, ldb = d.tb ? d.k : d.n;
    if (d.shared && !d.ta) { /* all of a's rows against one b: one gemm */
        ssl__gemm(ctx, 0, d.tb, d.batch * d.m, d.n, d.k, 1.0f, A, lda, B, ldb, 0.0f, C, d.n);
        return SSL_OK;
    }
    int64_t sb = d.shared ? 0 : d.k * d.n;
    for (int64_t i = 0; i < d.batch; i++)
        ssl__gemm(ctx, d.ta, d.tb, d.m, d.n, d.k, 1.0f, A + i * d.m * d.k, lda, B + i * sb, ldb,
                  0.0f, C + i * d.m * d.n, d.n);
    return SSL_OK;
}

static void matmul_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    mm_dims_t d;
    mm_dims(nd, &d);
    const float *A = nd->in[0]->data, *B = nd->in[1]->data, *dC = nd->out->grad;
    float *dA = ssl__grad(ctx, nd->in[0]), *dB = ssl__grad(ctx, nd->in[1]);
    int64_t lda = d.ta ? d.m : d.k, ldb = d.tb ? d.k : d.n;
    int64_t sb = d.shared ? 0 : d.k * d.n;
    int flat = d.shared && !d.ta;
    int64_t nb = flat ? 1 : d.batch, m = flat ? d.batch * d.m : d.m;
    for (int64_t i = 0; i < nb; i++) {
        const float *Ai = A + i * d.m * d.k, *Bi = B + i * sb, *dCi = dC + i * d.m * d.n;
        if (dA) {
            float *dAi = dA + i * d.m * d.k;
            if (!d.ta) /* dA (M, K) += dC op(B)^T */
                ssl__gemm(ctx, 0, !d.tb, m, d.k, d.n, 1.0f, dCi, d.n, Bi, ldb, 1.0f, dAi, lda);
            else /* dA (K, M) += op(B) dC^T */
                ssl__gemm(ctx, d.tb, 1, d.k, m, d.n, 1.0f, Bi, ldb, dCi, d.n, 1.0f, dAi, lda);
        }
        if (dB) {
            float *dBi = dB + i * sb;
            if (!d.tb) /* dB (K, N) += op(A)^T dC */
                ssl__gemm(ctx, !d.ta, 0, d.k, d.n, m, 1.0f, Ai, lda, dCi, d.n, 1.0f, dBi, ldb);
            else /* dB (N, K) += dC^T op(A) */
                ssl__gemm(ctx, 1, d.ta, d.n, d.k, m, 1.0f, dCi, d.n, Ai, lda, 1.0f, dBi, ldb);
        }
    }
}

const ssl_op_def_t ssl_opdef_matmul = {"matmul", 0, matmul_shape, matmul_forward,
                                       matmul_backward, 0};

ssl_tensor_t *ssl_matmul(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b, int ta, int tb)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_MATMUL, 2, a, b);
    n.ia[0] = ta != 0;
    n.ia[1] = tb != 0;
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- linear */

static int linear_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0], *w = nd->in[1], *b = nd->in[2];
    if (x->ndim < 1 || w->ndim != 2)
        return ssl__op_error(nd, "need x (..., in) and weight (out, in)");
    if (w->shape[1] != x->shape[x->ndim - 1])
        return ssl__op_error(nd, "x has %lld input features, weight expects %lld",
                             (long long)x->shape[x->ndim - 1], (long long)w->shape[1]);
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return ssl__op_error(nd, "bias must have shape (%lld)", (long long)w->shape[0]);
    *ndim = x->ndim;
    for (int i = 0; i < x->ndim - 1; i++)
        shape[i] = x->shape[i];
    shape[x->ndim - 1] = w->shape[0];
    const ssl_tensor_t *res = nd->in[3];
    int same = res && res->ndim == x->ndim;
    for (int i = 0; same && i < x->ndim; i++)
        same = res->shape[i] == shape[i];
    if (res && !same)
        return ssl__op_error(nd, "the residual must have the output's shape (x's leading dims, "
                                 "%lld)",
                             (long long)w->shape[0]);
    return SSL_OK;
}

/* in: x, weight, bias (or NULL), residual (or NULL). y starts as residual + bias (or either,
 * or nothing) and the GEMM adds x W^T onto it. */
static int linear_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    const ssl_tensor_t *x = nd->in[0], *w = nd->in[1], *b = nd->in[2], *res = nd->in[3];
    int64_t in = w->shape[1], out = w->shape[0], rows = in ? x->numel / in : 0;
    float *y = nd->out->data; // (rows, out)
    const float *bd = b ? b->data : NULL, *rd = res ? res->data : NULL;
    /* bf16 with a bias and no residual: oneDNN adds the bias (no pass filling y with it, no
     * read of y by an accumulating GEMM) */
    if (bd && !rd && ssl__gemm_bias_bf16(ctx, rows, out, in, x->data, w->data, bd, y))
        return SSL_OK;
    if (bd || rd) {
#pragma omp parallel for schedule(static) if (rows * out > SSL_OMP_MIN)
        for (int64_t r = 0; r < rows; r++) {
            float *yr = y + r * out;
            if (bd && rd)
                for (int64_t j = 0; j < out; j++)
                    yr[j] = rd[r * out + j] + bd[j];
            else
                memcpy(yr, rd ? rd + r * out : bd, (size_t)out * sizeof(float));
        }
    }
    ssl__gemm(ctx, 0, 1, rows, out, in, 1.0f, x->data, in, w->data, in, bd || rd ? 1.0f : 0.0f, y,
              out);
    return SSL_OK;
}

/* Columns per work item of the bias gradient: a block of one row is a few cache lines. Rows are
 * summed in float in groups of DB_ROWS, the groups in double. */
#define DB_COLS 64
#define DB_ROWS 16

/* db (out) += the column sums of dy (rows, out). Each work item owns a block of columns and
 * walks all rows in order, reading contiguous runs (a column at a time would stride through
 * dy once per column); the grouping is fixed by the shape, so the sums do not depend on the
 * thread count. */
static void bias_grad(float *db, const float *dy, int64_t rows, int64_t out)
{
    int64_t nblk = (out + DB_COLS - 1) / DB_COLS;
#pragma omp parallel for schedule(static) if (rows * out > SSL_OMP_MIN)
    for (int64_t b = 0; b < nblk; b++) {
        int64_t c0 = b * DB_COLS, nc = out - c0 < DB_COLS ? out - c0 : DB_COLS;
        double acc[DB_COLS] = {0};
        for (int64_t r0 = 0; r0 < rows; r0 += DB_ROWS) {
            int64_t r1 = r0 + DB_ROWS < rows ? r0 + DB_ROWS : rows;
            float part[DB_COLS] = {0};
            for (int64_t r = r0; r < r1; r++) {
                const float *row = dy + r * out + c0;
#pragma omp simd
                for (int64_t c = 0; c < nc; c++)
                    part[c] += row[c];
            }
            for (int64_t c = 0; c < nc; c++)
                acc[c] += part[c];
        }
        for (int64_t c = 0; c < nc; c++)
            db[c0 + c] += (float)acc[c];
    }
}

static void linear_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    ssl_tensor_t *x = nd->in[0], *w = nd->in[1], *b = nd->in[2];
    int64_t in = w->shape[1], out = w->shape[0], rows = in ? x->numel / in : 0;
    const float *dy = nd->out->grad; // (rows, out)
    int fresh; /* x has no gradient yet: the GEMM stores into an unzeroed buffer */
    float *dx = ssl__grad_write(ctx, x, &fresh), *dw = ssl__grad(ctx, w), *db = ssl__grad(ctx, b);
    if (dx) /* dx (rows, in) (+)= dy w */
        ssl__gemm(ctx, 0, 0, rows, in, out, 1.0f, dy, out, w->data, in, fresh ? 0.0f : 1.0f, dx,
                  in);
    if (dw) /* dw (out, in) += dy^T x */
        ssl__gemm(ctx, 1, 0, out, in, rows, 1.0f, dy, out, x->data, in, 1.0f, dw, in);
    if (db)
        bias_grad(db, dy, rows, out);
    /* The residual last: taking dy's buffer must not alias a GEMM operand above. */
    int took;
    float *dr = ssl__grad_take(ctx, nd->in[3], nd->out, &took);
    if (dr && !took) {
        const int64_t n = nd->out->numel;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
        for (int64_t i = 0; i < n; i++)
            dr[i] += dy[i];
    }
}

const ssl_op_def_t ssl_opdef_linear = {"linear", 2, linear_shape, linear_forward,
                                       linear_backward, 0};

ssl_tensor_t *ssl_linear(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *w, ssl_tensor_t *bias)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_LINEAR, 4, x, w, bias, (ssl_tensor_t *)NULL);
    return ssl__apply(ctx, &n);
}

ssl_tensor_t *ssl_linear_residual(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *w,
                                  ssl_tensor_t *bias, ssl_tensor_t *residual)
{
    if (!residual) {
        ssl__null_input("linear_residual", "residual");
        return NULL;
    }
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_LINEAR, 4, x, w, bias, residual);
    return ssl__apply(ctx, &n);
}
