/* Softmax and log-softmax along an axis, L2 normalisation along an axis, and the cross-entropy
 * losses on (N, C) logits. Exponentials are taken after subtracting the row maximum, and every
 * row reduction (sum, dot, norm, log-sum-exp) is accumulated in double in an order fixed by the
 * shape, so results do not depend on the thread count.
 *
 * Layout: a tensor is seen as (outer, dim, inner) around the axis. inner == 1 (the last axis,
 * the common case) runs contiguous row kernels; otherwise IBLOCK columns of inner are processed
 * together so the inner loops stay contiguous. */
#include "core_internal.h"
#include "fast_math.h"

#include <math.h>
#include <string.h>

#define LANES 16   /* independent accumulators of a contiguous row reduction */
#define IBLOCK 256 /* columns processed together when the axis is not the last */
#define CHUNK 256  /* row elements exponentiated into a stack buffer before summing */

/* ---------------------------------------------------------------- kernels shared below */

/* Maximum of a row (-inf if empty). NaNs are skipped here but still reach the output
 * through x - max. */
static float row_max(const float *x, int64_t n)
{
    float mx[LANES];
    for (int k = 0; k < LANES; k++)
        mx[k] = -INFINITY;
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) {
#pragma omp simd
        for (int k = 0; k < LANES; k++)
            mx[k] = x[i + k] > mx[k] ? x[i + k] : mx[k];
    }
    for (; i < n; i++)
        mx[0] = x[i] > mx[0] ? x[i] : mx[0];
    float m = mx[0];
    for (int k = 1; k < LANES; k++)
        m = mx[k] > m ? mx[k] : m;
    return m;
}

/* The lanes combined pairwise in a fixed order. */
static double lanes_total(const double *acc, double tail)
{
    double t[LANES];
    for (int k = 0; k < LANES; k++)
        t[k] = acc[k];
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int k = 0; k < w; k++)
            t[k] += t[k + w];
    return t[0] + tail;
}

static double row_sum(const float *x, int64_t n)
{
    double acc[LANES] = {0}, tail = 0;
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) {
#pragma omp simd
        for (int k = 0; k < LANES; k++)
            acc[k] += x[i + k];
    }
    for (; i < n; i++)
        tail += x[i];
    return lanes_total(acc, tail);
}

static double row_dot(const float *a, const float *b, int64_t n)
{
    double acc[LANES] = {0}, tail = 0;
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES) {
#pragma omp simd
        for (int k = 0; k < LANES; k++)
            acc[k] += (double)a[i + k] * (double)b[i + k];
    }
    for (; i < n; i++)
        tail += (double)a[i] * (double)b[i];
    return lanes_total(acc, tail);
}

/* log sum exp of a row, in double. */
static double row_lse(const float *x, int64_t n)
{
    float m = row_max(x, n), buf[CHUNK];
    double s = 0;
    for (int64_t i0 = 0; i0 < n; i0 += CHUNK) {
        int64_t w = n - i0 < CHUNK ? n - i0 : CHUNK;
        for (int64_t j = 0; j < w; j++)
            buf[j] = ssl__expf(x[i0 + j] - m);
        s += row_sum(buf, w);
    }
    return (double)m + log(s);
}

/* ---------------------------------------------------------------- softmax, log_softmax */

enum { SM_SOFTMAX = 0, SM_LOG = 1 };

static void softmax_row(const float *x, float *y, int64_t n, int kind)
{
    float m = row_max(x, n);
    for (int64_t i = 0; i < n; i++)
        y[i] = ssl__expf(x[i] - m);
    double s = row_sum(y, n);
    if (kind == SM_LOG) {
        float ls = (float)log(s);
        for (int64_t i = 0; i < n; i++)
            y[i] = (x[i] - m) - ls;
    } else {
        float inv = (float)(1.0 / s);
        for (int64_t i = 0; i < n; i++)
            y[i] *= inv;
    }
}

/* w columns of x (dim, inner) starting at x; rows are `inner` apart. */
static void softmax_cols(const float *x, float *y, int64_t dim, int64_t inner, int64_t w, int kind)
{
    float m[IBLOCK], f[IBLOCK];
    double s[IBLOCK];
    for (int64_t j = 0; j < w; j++) {
        m[j] = -INFINITY;
        s[j] = 0;
    }
    for (int64_t d = 0; d < dim; d++) {
        const float *xr = x + d * inner;
        for (int64_t j = 0; j < w; j++)
            m[j] = xr[j] > m[j] ? xr[j] : m[j];
    }
    for (int64_t d = 0; d < dim; d++) {
        const float *xr = x + d * inner;
        float *yr = y + d * inner;
        for (int64_t j = 0; j < w; j++)
            yr[j] = ssl__expf(xr[j] - m[j]);
        for (int64_t j = 0; j < w; j++)
            s[j] += yr[j];
    }
    if (kind == SM_LOG) {
        for (int64_t j = 0; j < w; j++)
            f[j] = (float)log(s[j]);
        for (int64_t d = 0; d < dim; d++) {
            const float *xr = x + d * inner;
            float *yr = y + d * inner;
            for (int64_t j = 0; j < w; j++)
                yr[j] = (xr[j] - m[j]) - f[j];
        }
    } else {
        for (int64_t j = 0; j < w; j++)
            f[j] = (float)(1.0 / s[j]);
        for (int64_t d = 0; d < dim; d++) {
            float *yr = y + d * inner;
            for (int64_t j = 0; j < w; j++)
                yr[j] *= f[j];
        }
    }
}

/* softmax: dx += y (g - sum(g y)); log_softmax: dx += g - exp(y) sum(g). One row. */
static void softmax_row_backward(const float *y, const float *g, float *dx, int64_t n, int kind)
{
    if (kind == SM_LOG) {
        float gs = (float)row_sum(g, n);
        for (int64_t i = 0; i < n; i++)
            dx[i] += g[i] - ssl__expf(y[i]) * gs;
    } else {
        float dot = (float)row_dot(g, y, n);
        for (int64_t i = 0; i < n; i++)
            dx[i] += y[i] * (g[i] - dot);
    }
}

static void softmax_cols_backward(const float *y, const float *g, float *dx, int64_t dim,
                                  int64_t inner, int64_t w, int kind)
{
    double acc[IBLOCK];
    float f[IBLOCK];
    for (int64_t j = 0; j < w; j++)
        acc[j] = 0;
    for (int64_t d = 0; d < dim; d++) {
        const float *yr = y + d * inner, *gr = g + d * inner;
        if (kind == SM_LOG)
            for (int64_t j = 0; j < w; j++)
                acc[j] += gr[j];
        else
            for (int64_t j = 0; j < w; j++)
                acc[j] += (double)gr[j] * (double)yr[j];
    }
    for (int64_t j = 0; j < w; j++)
        f[j] = (float)acc[j];
    for (int64_t d = 0; d < dim; d++) {
        const float *yr = y + d * inner, *gr = g + d * inner;
        float *dr = dx + d * inner;
        if (kind == SM_LOG)
            for (int64_t j = 0; j < w; j++)
                dr[j] += gr[j] - ssl__expf(yr[j]) * f[j];
        else
            for (int64_t j = 0; j < w; j++)
                dr[j] += yr[j] * (gr[j] - f[j]);
    }
}

static int axis_shape(const ssl_node_t *n, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = n->in[0];
    if (ssl__axis((int)n->ia[0], x->ndim) < 0)
        return ssl__op_error(n, "axis %d is out of range for a tensor with %d dims", (int)n->ia[0],
                             x->ndim);
    *ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++)
        shape[i] = x->shape[i];
    return SSL_OK;
}

static void node_dims(const ssl_node_t *n, int64_t *outer, int64_t *dim, int64_t *inner)
{
    const ssl_tensor_t *x = n->in[0];
    ssl__outer_dim_inner(x, ssl__axis((int)n->ia[0], x->ndim), outer, dim, inner);
}

static void softmax_run(const ssl_node_t *n, int kind)
{
    int64_t outer, dim, inner;
    node_dims(n, &outer, &dim, &inner);
    const float *x = n->in[0]->data; // (outer, dim, inner)
    float *y = n->out->data;
    int64_t work = outer * dim * inner;
    if (inner == 1) {
#pragma omp parallel for schedule(static) if (work > SSL_OMP_MIN)
        for (int64_t o = 0; o < outer; o++)
            softmax_row(x + o * dim, y + o * dim, dim, kind);
        return;
    }
    int64_t nblk = (inner + IBLOCK - 1) / IBLOCK;
#pragma omp parallel for schedule(static) if (work > SSL_OMP_MIN)
    for (int64_t t = 0; t < outer * nblk; t++) {
        int64_t o = t / nblk, j0 = (t % nblk) * IBLOCK;
        int64_t w = inner - j0 < IBLOCK ? inner - j0 : IBLOCK, off = o * dim * inner + j0;
        softmax_cols(x + off, y + off, dim, inner, w, kind);
    }
}

static void softmax_run_backward(ssl_ctx_t *ctx, ssl_node_t *n, int kind)
{
    float *dx = ssl__grad(ctx, n->in[0]);
    if (!dx)
        return;
    int64_t outer, dim, inner;
    node_dims(n, &outer, &dim, &inner);
    const float *y = n->out->data, *g = n->out->grad; // (outer, dim, inner)
    int64_t work = outer * dim * inner;
    if (inner == 1) {
#pragma omp parallel for schedule(static) if (work > SSL_OMP_MIN)
        for (int64_t o = 0; o < outer; o++)
            softmax_row_backward(y + o * dim, g + o * dim, dx + o * dim, dim, kind);
        return;
    }
    int64_t nblk = (inner + IBLOCK - 1) / IBLOCK;
#pragma omp parallel for schedule(static) if (work > SSL_OMP_MIN)
    for (int64_t t = 0; t < outer * nblk; t++) {
        int64_t o = t / nblk, j0 = (t % nblk) * IBLOCK;
        int64_t w = inner - j0 < IBLOCK ? inner - j0 : IBLOCK, off = o * dim * inner + j0;
        softmax_cols_backward(y + off, g + off, dx + off, dim, inner, w, kind);
    }
}

static int softmax_forward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    (void)ctx;
    softmax_run(n, SM_SOFTMAX);
    return SSL_OK;
}

static int log_softmax_forward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    (void)ctx;
    softmax_run(n, SM_LOG);
    return SSL_OK;
}

static void softmax_backward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    softmax_run_backward(ctx, n, SM_SOFTMAX);
}

static void log_softmax_backward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    softmax_run_backward(ctx, n, SM_LOG);
}

const ssl_op_def_t ssl_opdef_softmax = {"softmax", 0, axis_shape, softmax_forward,
                                        softmax_backward, 0};
const ssl_op_def_t ssl_opdef_log_softmax = {"log_softmax", 0, axis_shape,
                                            log_softmax_forward, log_softmax_backward, 0};

ssl_tensor_t *ssl_softmax(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_SOFTMAX, 1, x);
    n.ia[0] = axis;
    return ssl__apply(ctx, &n);
}

ssl_tensor_t *ssl_log_softmax(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_LOG_SOFTMAX, 1, x);
    n.ia[0] = axis;
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- l2_normalize */

/* y = x / max(||x||, eps) as torch.nn.functional.normalize. aux[0] keeps ||x|| (outer, inner)
 * for backward: where ||x|| >= eps the gradient flows through the norm,
 * dx = (g - y sum(g y)) / ||x||; where the norm was clamped to eps, dx = g / eps. */
static int l2_shape(const ssl_node_t *n, int *ndim, int64_t *shape)
{
    float eps = n->fa[0];
    if (!(eps >= 0.0f && eps < INFINITY))
        return ssl__op_error_status(n, SSL_ERR_INVALID, "eps must be finite and >= 0, got %g",
                                    (double)eps);
    return axis_shape(n, ndim, shape);
}

static int l2_forward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    int64_t outer, dim, inner;
    node_dims(n, &outer, &dim, &inner);
    const float *x = n->in[0]->data; // (outer, dim, inner)
    float *y = n->out->data, eps = n->fa[0];
    float *nrm = ssl_arena_alloc(ctx, (size_t)(outer * inner) * sizeof(float)); // (outer, inner)
    if (!nrm)
        return SSL_ERR_NOMEM;
    n->aux[0] = nrm;
    int64_t work = outer * dim * inner;
    if (inner == 1) {
#pragma omp parallel for schedule(static) if (work > SSL_OMP_MIN)
        for (int64_t o = 0; o < outer; o++) {
            const float *xr = x + o * dim;
            float *yr = y + o * dim;
            float nv = (float)sqrt(row_dot(xr, xr, dim));
            float den = nv >= eps ? nv : eps;
            nrm[o] = nv;
            for (int64_t i = 0; i < dim; i++)
                yr[i] = xr[i] / den;
        }
        return SSL_OK;
    }
    int64_t nblk = (inner + IBLOCK - 1) / IBLOCK;
#pragma omp parallel for schedule(static) if (work > SSL_OMP_MIN)
    for (int64_t t = 0; t < outer * nblk; t++) {
        int64_t o = t / nblk, j0 = (t % nblk) * IBLOCK;
        int64_t w = inner - j0 < IBLOCK ? inner - j0 : IBLOCK, off = o * dim * inner + j0;
        double ss[IBLOCK];
        float den[IBLOCK], *nv = nrm + o * inner + j0;
        for (int64_t j = 0; j < w; j++)
            ss[j] = 0;
        for (int64_t d = 0; d < dim; d++) {
            const float *xr = x + off + d * inner;
            for (int64_t j = 0; j < w; j++)
                ss[j] += (double)xr[j] * (double)xr[j];
        }
        for (int64_t j = 0; j < w; j++) {
            nv[j] = (float)sqrt(ss[j]);
            den[j] = nv[j] >= eps ? nv[j] : eps;
        }
        for (int64_t d = 0; d < dim; d++) {
            const float *xr = x + off + d * inner;
            float *yr = y + off + d * inner;
            for (int64_t j = 0; j < w; j++)
                yr[j] = xr[j] / den[j];
        }
    }
    return SSL_OK;
}

static void l2_backward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    float *dx = ssl__grad(ctx, n->in[0]);
    if (!dx)
        return;
    int64_t outer, dim, inner;
    node_dims(n, &outer, &dim, &inner);
    const float *y = n->out->data, *g = n->out->grad; // (outer, dim, inner)
    const float *nrm = n->aux[0], eps = n->fa[0];
    int64_t work = outer * dim * inner;
    if (inner == 1) {
#pragma omp parallel for schedule(static) if (work > SSL_OMP_MIN)
        for (int64_t o = 0; o < outer; o++) {
            const float *yr = y + o * dim, *gr = g + o * dim;
            float *dr = dx + o * dim;
            float nv = nrm[o];
            if (nv >= eps) {
                float dot = (float)row_dot(gr, yr, dim), inv = 1.0f / nv;
                for (int64_t i = 0; i < dim; i++)
                    dr[i] += (gr[i] - yr[i] * dot) * inv;
            } else {
                float inv = 1.0f / eps;
                for (int64_t i = 0; i < dim; i++)
                    dr[i] += gr[i] * inv;
            }
        }
        return;
    }
    int64_t nblk = (inner + IBLOCK - 1) / IBLOCK;
#pragma omp parallel for schedule(static) if (work > SSL_OMP_MIN)
    for (int64_t t = 0; t < outer * nblk; t++) {
        int64_t o = t / nblk, j0 = (t % nblk) * IBLOCK;
        int64_t w = inner - j0 < IBLOCK ? inner - j0 : IBLOCK, off = o * dim * inner + j0;
        const float *nv = nrm + o * inner + j0;
        double acc[IBLOCK];
        float dot[IBLOCK], inv[IBLOCK];
        for (int64_t j = 0; j < w; j++)
            acc[j] = 0;
        for (int64_t d = 0; d < dim; d++) {
            const float *yr = y + off + d * inner, *gr = g + off + d * inner;
            for (int64_t j = 0; j < w; j++)
                acc[j] += (double)gr[j] * (double)yr[j];
        }
        for (int64_t j = 0; j < w; j++) {
            int through = nv[j] >= eps; /* else the clamped norm is a constant */
            dot[j] = through ? (float)acc[j] : 0.0f;
            inv[j] = 1.0f / (through ? nv[j] : eps);
        }
        for (int64_t d = 0; d < dim; d++) {
            const float *yr = y + off + d * inner, *gr = g + off + d * inner;
            float *dr = dx + off + d * inner;
            for (int64_t j = 0; j < w; j++)
                dr[j] += (gr[j] - yr[j] * dot[j]) * inv[j];
        }
    }
}

const ssl_op_def_t ssl_opdef_l2_normalize = {"l2_normalize", 0, l2_shape, l2_forward,
                                             l2_backward, 0};

ssl_tensor_t *ssl_l2_normalize(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis, float eps)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_L2_NORMALIZE, 1, x);
    n.ia[0] = axis;
    n.fa[0] = eps;
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- cross_entropy */

/* loss = mean_n (lse(x_n) - x_n[label_n]). aux[0]: the copied labels (N), aux[1]: the
 * log-sum-exp of each row (N) for backward, where dx = (softmax - onehot) g / N. */
static int ce_shape(const ssl_node_t *n, int *ndim, int64_t *shape)
{
    (void)shape;
    const ssl_tensor_t *x = n->in[0];
    if (x->ndim != 2)
        return ssl__op_error(n, "logits must be (N, C)");
    const int32_t *labels = n->aux[0];
    if (!labels)
        return ssl__op_error_status(n, SSL_ERR_INVALID, "labels is NULL");
    int64_t rows = x->shape[0], c = x->shape[1];
    for (int64_t i = 0; i < rows; i++)
        if (labels[i] < 0 || labels[i] >= c)
            return ssl__op_error_status(n, SSL_ERR_INVALID,
                                        "label at index %lld is %d, outside [0, %lld)",
                                        (long long)i, (int)labels[i], (long long)c);
    *ndim = 0;
    return SSL_OK;
}

static int ce_forward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    const ssl_tensor_t *x = n->in[0];
    int64_t rows = x->shape[0], c = x->shape[1];
    const int32_t *labels = n->aux[0];
    float *lse = ssl_arena_alloc(ctx, (size_t)rows * sizeof(float));    // (N)
    double *loss = ssl_arena_alloc(ctx, (size_t)rows * sizeof(double)); // (N)
    if (!lse || !loss)
        return SSL_ERR_NOMEM;
#pragma omp parallel for schedule(static) if (rows * c > SSL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        double l = row_lse(x->data + r * c, c);
        lse[r] = (float)l;
        loss[r] = l - (double)x->data[r * c + labels[r]];
    }
    double total = 0;
    for (int64_t r = 0; r < rows; r++)
        total += loss[r];
    n->out->data[0] = (float)(total / (double)rows);
    n->aux[1] = lse;
    return SSL_OK;
}

static void ce_backward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    ssl_tensor_t *x = n->in[0];
    float *dx = ssl__grad(ctx, x);
    if (!dx)
        return;
    int64_t rows = x->shape[0], c = x->shape[1];
    const int32_t *labels = n->aux[0];
    const float *lse = n->aux[1];
    float scale = (float)(n->out->grad[0] / (double)rows);
#pragma omp parallel for schedule(static) if (rows * c > SSL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * c;
        float *dr = dx + r * c, l = lse[r];
        for (int64_t j = 0; j < c; j++)
            dr[j] += scale * ssl__expf(xr[j] - l);
        dr[labels[r]] -= scale;
    }
}

const ssl_op_def_t ssl_opdef_cross_entropy = {"cross_entropy", 0, ce_shape, ce_forward,
                                              ce_backward, 0};

ssl_tensor_t *ssl_cross_entropy(ssl_ctx_t *ctx, ssl_tensor_t *logits, const int32_t *labels)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_CROSS_ENTROPY, 1, logits);
    /* Copied, because the caller may free its labels before backward. Only for well-formed
     * logits; otherwise the shape rule reports the problem. */
    if (ctx && logits && logits->ndim == 2 && labels) {
        size_t bytes = (size_t)logits->shape[0] * sizeof(int32_t);
        int32_t *copy = ssl_arena_alloc(ctx, bytes);
        if (!copy)
            return NULL;
        if (bytes)
            memcpy(copy, labels, bytes);
        n.aux[0] = copy;
    }
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- cross_entropy_soft */

/* loss = mean_n -sum_c t log_softmax(x). aux[0]: log-sum-exp of each row (N).
 * d/dx = (softmax(x) sum_c t - t) g / N; d/dt = -log_softmax(x) g / N. */
static int ce_soft_shape(const ssl_node_t *n, int *ndim, int64_t *shape)
{
    (void)shape;
    const ssl_tensor_t *x = n->in[0], *t = n->in[1];
    if (x->ndim != 2)
        return ssl__op_error(n, "logits must be (N, C)");
    if (!ssl_same_shape(x, t))
        return ssl__op_error(n, "target must have the shape of the logits");
    *ndim = 0;
    return SSL_OK;
}

static int ce_soft_forward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    const ssl_tensor_t *x = n->in[0], *t = n->in[1];
    int64_t rows = x->shape[0], c = x->shape[1];
    float *lse = ssl_arena_alloc(ctx, (size_t)rows * sizeof(float));    // (N)
    double *loss = ssl_arena_alloc(ctx, (size_t)rows * sizeof(double)); // (N)
    if (!lse || !loss)
        return SSL_ERR_NOMEM;
#pragma omp parallel for schedule(static) if (rows * c > SSL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * c, *tr = t->data + r * c;
        double l = row_lse(xr, c), acc[LANES] = {0}, tail = 0;
        int64_t i = 0;
        for (; i + LANES <= c; i += LANES) {
#pragma omp simd
            for (int k = 0; k < LANES; k++)
                acc[k] += (double)tr[i + k] * ((double)xr[i + k] - l);
        }
        for (; i < c; i++)
            tail += (double)tr[i] * ((double)xr[i] - l);
        lse[r] = (float)l;
        loss[r] = -lanes_total(acc, tail);
    }
    double total = 0;
    for (int64_t r = 0; r < rows; r++)
        total += loss[r];
    n->out->data[0] = (float)(total / (double)rows);
    n->aux[0] = lse;
    return SSL_OK;
}

static void ce_soft_backward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    ssl_tensor_t *x = n->in[0], *t = n->in[1];
    float *dx = ssl__grad(ctx, x), *dt = ssl__grad(ctx, t);
    int64_t rows = x->shape[0], c = x->shape[1];
    const float *lse = n->aux[0];
    float scale = (float)(n->out->grad[0] / (double)rows);
#pragma omp parallel for schedule(static) if (rows * c > SSL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x->data + r * c, *tr = t->data + r * c;
        float l = lse[r];
        if (dx) {
            float *dr = dx + r * c, st = (float)row_sum(tr, c);
            for (int64_t j = 0; j < c; j++)
                dr[j] += scale * (ssl__expf(xr[j] - l) * st - tr[j]);
        }
        if (dt) {
            float *dr = dt + r * c;
            for (int64_t j = 0; j < c; j++)
                dr[j] -= scale * (xr[j] - l);
        }
    }
}

const ssl_op_def_t ssl_opdef_cross_entropy_soft = {"cross_entropy_soft", 0, ce_soft_shape,
                                                   ce_soft_forward, ce_soft_backward, 0};

ssl_tensor_t *ssl_cross_entropy_soft(ssl_ctx_t *ctx, ssl_tensor_t *logits, ssl_tensor_t *target)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_CROSS_ENTROPY_SOFT, 2, logits, target);
    return ssl__apply(ctx, &n);
}
