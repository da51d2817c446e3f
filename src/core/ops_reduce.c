/* Reductions: sum and mean over one axis, and over all elements. Every output element is
 * accumulated in double in an order that depends on the shape only, so results are the same
 * for any thread count. */
#include "core_internal.h"

#define LANES 16   /* independent double accumulators of a contiguous row sum */
#define IBLOCK 256 /* columns reduced together when the reduced axis is not the last */

/* Sum of a contiguous row in double. The lanes let the compiler vectorise the loop without
 * reassociating anything: the order of additions is fixed by n alone. */
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
    for (int w = LANES / 2; w > 0; w /= 2) /* pairwise, fixed order */
        for (int k = 0; k < w; k++)
            acc[k] += acc[k + w];
    return acc[0] + tail;
}

/* y (outer, inner) = sum over d of x (outer, dim, inner), divided by div. */
static void reduce_axis(const float *x, float *y, int64_t outer, int64_t dim, int64_t inner,
                        double div)
{
    int64_t work = outer * dim * inner;
    if (inner == 1) {
#pragma omp parallel for schedule(static) if (work > SSL_OMP_MIN)
        for (int64_t o = 0; o < outer; o++)
            y[o] = (float)(row_sum(x + o * dim, dim) / div);
        return;
    }
    /* Reduced axis strided: accumulate IBLOCK contiguous columns at a time, walking dim. */
    int64_t nblk = (inner + IBLOCK - 1) / IBLOCK;
#pragma omp parallel for schedule(static) if (work > SSL_OMP_MIN)
    for (int64_t t = 0; t < outer * nblk; t++) {
        int64_t o = t / nblk, j0 = (t % nblk) * IBLOCK;
        int64_t w = inner - j0 < IBLOCK ? inner - j0 : IBLOCK;
        double acc[IBLOCK];
        for (int64_t j = 0; j < w; j++)
            acc[j] = 0;
        for (int64_t d = 0; d < dim; d++) {
            const float *xr = x + (o * dim + d) * inner + j0;
            for (int64_t j = 0; j < w; j++)
                acc[j] += xr[j];
        }
        float *yr = y + o * inner + j0;
        for (int64_t j = 0; j < w; j++)
            yr[j] = (float)(acc[j] / div);
    }
}

/* dx (outer, dim, inner) += g (outer, inner) * scale */
static void reduce_axis_backward(const float *g, float *dx, int64_t outer, int64_t dim,
                                 int64_t inner, float scale)
{
#pragma omp parallel for schedule(static) if (outer * dim * inner > SSL_OMP_MIN)
    for (int64_t r = 0; r < outer * dim; r++) {
        const float *gr = g + (r / dim) * inner;
        float *dr = dx + r * inner;
        for (int64_t j = 0; j < inner; j++)
            dr[j] += gr[j] * scale;
    }
}

/* ---------------------------------------------------------------- sum / mean over an axis */

/* ia[0] axis as given (may be negative), ia[1] keepdim */
static int reduce_shape(const ssl_node_t *n, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = n->in[0];
    int ax = ssl__axis((int)n->ia[0], x->ndim);
    if (ax < 0)
        return ssl__op_error(n, "axis %d is out of range for a tensor with %d dims", (int)n->ia[0],
                             x->ndim);
    int o = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i != ax)
            shape[o++] = x->shape[i];
        else if (n->ia[1])
            shape[o++] = 1;
    }
    *ndim = o;
    return SSL_OK;
}

static void reduce_dims(const ssl_node_t *n, int64_t *outer, int64_t *dim, int64_t *inner)
{
    const ssl_tensor_t *x = n->in[0];
    ssl__outer_dim_inner(x, ssl__axis((int)n->ia[0], x->ndim), outer, dim, inner);
}

static int sum_forward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    (void)ctx;
    int64_t outer, dim, inner;
    reduce_dims(n, &outer, &dim, &inner);
    reduce_axis(n->in[0]->data, n->out->data, outer, dim, inner, 1.0);
    return SSL_OK;
}

static int mean_forward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    (void)ctx;
    int64_t outer, dim, inner;
    reduce_dims(n, &outer, &dim, &inner);
    reduce_axis(n->in[0]->data, n->out->data, outer, dim, inner, (double)dim);
    return SSL_OK;
}

static void sum_backward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    float *dx = ssl__grad(ctx, n->in[0]);
    if (!dx)
        return;
    int64_t outer, dim, inner;
    reduce_dims(n, &outer, &dim, &inner);
    reduce_axis_backward(n->out->grad, dx, outer, dim, inner, 1.0f);
}

static void mean_backward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    float *dx = ssl__grad(ctx, n->in[0]);
    if (!dx)
        return;
    int64_t outer, dim, inner;
    reduce_dims(n, &outer, &dim, &inner);
    reduce_axis_backward(n->out->grad, dx, outer, dim, inner, (float)(1.0 / (double)dim));
}

const ssl_op_def_t ssl_opdef_sum = {"sum", 0, reduce_shape, sum_forward, sum_backward, 0};
const ssl_op_def_t ssl_opdef_mean = {"mean", 0, reduce_shape, mean_forward, mean_backward, 0};

static ssl_tensor_t *reduce(ssl_ctx_t *ctx, int op, ssl_tensor_t *x, int axis, int keepdim)
{
    ssl_node_t n;
    ssl__node_init(&n, op, 1, x);
    n.ia[0] = axis;
    n.ia[1] = keepdim != 0;
    return ssl__apply(ctx, &n);
}

ssl_tensor_t *ssl_sum(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis, int keepdim)
{
    return reduce(ctx, SSL_OP_SUM, x, axis, keepdim);
}

ssl_tensor_t *ssl_mean(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis, int keepdim)
{
    return reduce(ctx, SSL_OP_MEAN, x, axis, keepdim);
}

/* ---------------------------------------------------------------- sum / mean of everything */

static int all_shape(const ssl_node_t *n, int *ndim, int64_t *shape)
{
    (void)n;
    (void)shape;
    *ndim = 0; /* shape (), numel 1 */
    return SSL_OK;
}

static int sum_all_forward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    (void)ctx;
    n->out->data[0] = (float)ssl__sum_f32(n->in[0]->data, n->in[0]->numel);
    return SSL_OK;
}

static int mean_all_forward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    (void)ctx;
    const ssl_tensor_t *x = n->in[0];
    n->out->data[0] = (float)(ssl__sum_f32(x->data, x->numel) / (double)x->numel);
    return SSL_OK;
}

static void all_backward(ssl_ctx_t *ctx, ssl_node_t *n, float g)
{
    ssl_tensor_t *x = n->in[0];
    float *dx = ssl__grad(ctx, x);
    if (!dx)
        return;
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
    for (int64_t i = 0; i < x->numel; i++)
        dx[i] += g;
}

static void sum_all_backward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    all_backward(ctx, n, n->out->grad[0]);
}

static void mean_all_backward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    all_backward(ctx, n, (float)(n->out->grad[0] / (double)n->in[0]->numel));
}

const ssl_op_def_t ssl_opdef_sum_all = {"sum_all", 0, all_shape, sum_all_forward,
                                        sum_all_backward, 0};
const ssl_op_def_t ssl_opdef_mean_all = {"mean_all", 0, all_shape, mean_all_forward,
                                         mean_all_backward, 0};

ssl_tensor_t *ssl_sum_all(ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_SUM_ALL, 1, x);
    return ssl__apply(ctx, &n);
}

ssl_tensor_t *ssl_mean_all(ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_MEAN_ALL, 1, x);
    return ssl__apply(ctx, &n);
}
