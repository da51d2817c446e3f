/* Pooling on NCHW: max (argmax saved for backward), average (count_include_pad) and global
 * average. Every loop is parallel over the N * C planes, so each plane's gradient is written by
 * one thread in a fixed order: race-free and independent of the thread count. */
#include "core_internal.h"

#include <math.h>

typedef struct pool_dims {
    int64_t planes, h, w; /* input: N * C planes of (H, W) */
    int64_t oh, ow;
    int64_t k, stride, pad;
} pool_dims_t;

static void pool_dims(const ssl_node_t *nd, pool_dims_t *d)
{
    const ssl_tensor_t *x = nd->in[0];
    d->planes = x->shape[0] * x->shape[1];
    d->h = x->shape[2];
    d->w = x->shape[3];
    d->k = nd->ia[0];
    d->stride = nd->ia[1];
    d->pad = nd->ia[2];
    d->oh = (d->h + 2 * d->pad - d->k) / d->stride + 1;
    d->ow = (d->w + 2 * d->pad - d->k) / d->stride + 1;
}

/* Shared by max and avg pooling. padding <= kernel / 2 (as PyTorch requires) guarantees that
 * every window holds at least one real input element. */
static int pool_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0];
    int64_t k = nd->ia[0], s = nd->ia[1], p = nd->ia[2];
    if (x->ndim != 4)
        return ssl__op_error(nd, "need x (N, C, H, W)");
    if (k < 1 || s < 1 || p < 0 || p > k / 2)
        return ssl__op_error_status(nd, SSL_ERR_INVALID,
                                    "need kernel >= 1, stride >= 1 and 0 <= padding <= kernel / "
                                    "2, got kernel %lld, stride %lld, padding %lld",
                                    (long long)k, (long long)s, (long long)p);
    int64_t ph = x->shape[2] + 2 * p, pw = x->shape[3] + 2 * p;
    if (k > ph || k > pw)
        return ssl__op_error(nd, "kernel %lld is larger than the padded input %lldx%lld",
                             (long long)k, (long long)ph, (long long)pw);
    pool_dims_t d;
    pool_dims(nd, &d);
    *ndim = 4;
    shape[0] = x->shape[0];
    shape[1] = x->shape[1];
    shape[2] = d.oh;
    shape[3] = d.ow;
    return SSL_OK;
}

/* Input rows (or columns) [*a, *b) covered by output position o. */
static void window(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t len, int64_t *a,
                   int64_t *b)
{
    int64_t start = o * stride - pad, end = start + k;
    *a = start > 0 ? start : 0;
    *b = end < len ? end : len;
}

/* ---------------------------------------------------------------- max_pool2d */

/* The window of output position o along an axis of length len (axis 0: rows, 1: columns). */
typedef void (*window_fn)(const ssl_node_t *nd, int axis, int64_t o, int64_t len, int64_t *a,
                          int64_t *b);

static void fixed_window(const ssl_node_t *nd, int axis, int64_t o, int64_t len, int64_t *a,
                         int64_t *b)
{
    (void)axis;
    window(o, nd->ia[1], nd->ia[2], nd->ia[0], len, a, b);
}

/* torch's adaptive pooling: [floor(o len / out), ceil((o + 1) len / out)) */
static void adaptive_window(const ssl_node_t *nd, int axis, int64_t o, int64_t len, int64_t *a,
                            int64_t *b)
{
    int64_t out = nd->ia[axis];
    *a = o * len / out;
    *b = ((o + 1) * len + out - 1) / out;
}

/* Max over each window of each (H, W) plane into y (planes, OH, OW); the argmax kept for
 * backward when it can run. */
static int max_pool_run(ssl_ctx_t *ctx, ssl_node_t *nd, int64_t oh, int64_t ow, window_fn win,
                        int64_t work_per_out)
{
    const ssl_tensor_t *in = nd->in[0];
    int64_t planes = in->shape[0] * in->shape[1], h = in->shape[2], w = in->shape[3];
    const float *x = in->data; // (planes, H, W)
    float *y = nd->out->data;  // (planes, OH, OW)
    int64_t op = oh * ow;
    /* argmax (planes, OH, OW) as an offset inside the plane, kept only if backward can run */
    int32_t *arg = NULL;
    if (ssl_ctx_grad_enabled(ctx) && in->requires_grad) {
        arg = ssl_arena_alloc(ctx, (size_t)(planes * op) * sizeof(int32_t));
        if (!arg)
            return SSL_ERR_NOMEM;
    }
#pragma omp parallel for schedule(static) if (planes * op * work_per_out > SSL_OMP_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * h * w;
        for (int64_t oy = 0; oy < oh; oy++) {
            int64_t ya, yb;
            win(nd, 0, oy, h, &ya, &yb);
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t xa, xb;
                win(nd, 1, ox, w, &xa, &xb);
                /* padding is -inf; strict > keeps the first maximum; NaN propagates */
                float best = -INFINITY;
                int64_t bi = ya * w + xa;
                for (int64_t iy = ya; iy < yb; iy++)
                    for (int64_t ix = xa; ix < xb; ix++) {
                        float v = xp[iy * w + ix];
                        if (v > best || isnan(v)) {
                            best = v;
                            bi = iy * w + ix;
                        }
                    }
                int64_t o = pl * op + oy * ow + ox;
                y[o] = best;
                if (arg)
                    arg[o] = (int32_t)bi;
            }
        }
    }
    nd->aux[0] = arg;
    return SSL_OK;
}

static int max_pool_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    pool_dims_t d;
    pool_dims(nd, &d);
    return max_pool_run(ctx, nd, d.oh, d.ow, fixed_window, d.k * d.k);
}

/* Each output's gradient to its argmax (max_pool2d and adaptive_max_pool2d). */
static void max_pool_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    float *dx = ssl__grad(ctx, nd->in[0]);
    const int32_t *arg = nd->aux[0];
    if (!dx || !arg)
        return;
    const ssl_tensor_t *in = nd->in[0];
    int64_t planes = in->shape[0] * in->shape[1], hw = in->shape[2] * in->shape[3];
    const float *dy = nd->out->grad; // (planes, OH, OW)
    int64_t op = nd->out->shape[2] * nd->out->shape[3];
#pragma omp parallel for schedule(static) if (planes * op > SSL_OMP_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * hw;
        for (int64_t o = pl * op; o < (pl + 1) * op; o++)
            dxp[arg[o]] += dy[o];
    }
}

const ssl_op_def_t ssl_opdef_max_pool2d = {.name = "max_pool2d",
                                           .n_opt = 0,
                                           .shape = pool_shape,
                                           .forward = max_pool_forward,
                                           .backward = max_pool_backward,
                                           .flags = 0};

ssl_tensor_t *ssl_max_pool2d(ssl_ctx_t *ctx, ssl_tensor_t *x, int kernel, int stride, int padding)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_MAX_POOL2D, 1, x);
    n.ia[0] = kernel;
    n.ia[1] = stride;
    n.ia[2] = padding;
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- adaptive_max_pool2d */

static int adaptive_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0];
    if (x->ndim != 4)
        return ssl__op_error(nd, "need x (N, C, H, W)");
    if (nd->ia[0] < 1 || nd->ia[1] < 1 || nd->ia[0] > x->shape[2] || nd->ia[1] > x->shape[3])
        return ssl__op_error_status(nd, SSL_ERR_INVALID,
                                    "need an output of 1..%lld x 1..%lld, got %lld x %lld",
                                    (long long)x->shape[2], (long long)x->shape[3],
                                    (long long)nd->ia[0], (long long)nd->ia[1]);
    *ndim = 4;
    shape[0] = x->shape[0];
    shape[1] = x->shape[1];
    shape[2] = nd->ia[0];
    shape[3] = nd->ia[1];
    return SSL_OK;
}

static int adaptive_max_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    const ssl_tensor_t *x = nd->in[0];
    int64_t kh = (x->shape[2] + nd->ia[0] - 1) / nd->ia[0] + 1;
    int64_t kw = (x->shape[3] + nd->ia[1] - 1) / nd->ia[1] + 1;
    return max_pool_run(ctx, nd, nd->ia[0], nd->ia[1], adaptive_window, kh * kw);
}

const ssl_op_def_t ssl_opdef_adaptive_max_pool2d = {.name = "adaptive_max_pool2d",
                                                    .n_opt = 0,
                                                    .shape = adaptive_shape,
                                                    .forward = adaptive_max_forward,
                                                    .backward = max_pool_backward,
                                                    .flags = 0};

ssl_tensor_t *ssl_adaptive_max_pool2d(ssl_ctx_t *ctx, ssl_tensor_t *x, int out_h, int out_w)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_ADAPTIVE_MAX_POOL2D, 1, x);
    n.ia[0] = out_h;
    n.ia[1] = out_w;
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- avg_pool2d */

/* With count_include_pad and no ceil mode every window counts k * k elements: padding <= k / 2
 * keeps each window inside the padded input. */
static int avg_pool_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    pool_dims_t d;
    pool_dims(nd, &d);
    const float *x = nd->in[0]->data; // (planes, H, W)
    float *y = nd->out->data;         // (planes, OH, OW)
    int64_t op = d.oh * d.ow;
    float inv = 1.0f / (float)(d.k * d.k);
#pragma omp parallel for schedule(static) if (d.planes * op * d.k * d.k > SSL_OMP_MIN)
    for (int64_t pl = 0; pl < d.planes; pl++) {
        const float *xp = x + pl * d.h * d.w;
        for (int64_t oy = 0; oy < d.oh; oy++) {
            int64_t ya, yb;
            window(oy, d.stride, d.pad, d.k, d.h, &ya, &yb);
            for (int64_t ox = 0; ox < d.ow; ox++) {
                int64_t xa, xb;
                window(ox, d.stride, d.pad, d.k, d.w, &xa, &xb);
                float s = 0.0f;
                for (int64_t iy = ya; iy < yb; iy++)
                    for (int64_t ix = xa; ix < xb; ix++)
                        s += xp[iy * d.w + ix];
                y[pl * op + oy * d.ow + ox] = s * inv;
            }
        }
    }
    return SSL_OK;
}

static void avg_pool_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    float *dx = ssl__grad(ctx, nd->in[0]);
    if (!dx)
        return;
    pool_dims_t d;
    pool_dims(nd, &d);
    const float *dy = nd->out->grad; // (planes, OH, OW)
    int64_t op = d.oh * d.ow;
    float inv = 1.0f / (float)(d.k * d.k);
#pragma omp parallel for schedule(static) if (d.planes * op * d.k * d.k > SSL_OMP_MIN)
    for (int64_t pl = 0; pl < d.planes; pl++) {
        float *dxp = dx + pl * d.h * d.w;
        for (int64_t oy = 0; oy < d.oh; oy++) {
            int64_t ya, yb;
            window(oy, d.stride, d.pad, d.k, d.h, &ya, &yb);
            for (int64_t ox = 0; ox < d.ow; ox++) {
                int64_t xa, xb;
                window(ox, d.stride, d.pad, d.k, d.w, &xa, &xb);
                float g = dy[pl * op + oy * d.ow + ox] * inv;
                for (int64_t iy = ya; iy < yb; iy++)
                    for (int64_t ix = xa; ix < xb; ix++)
                        dxp[iy * d.w + ix] += g;
            }
        }
    }
}

const ssl_op_def_t ssl_opdef_avg_pool2d = {.name = "avg_pool2d",
                                           .n_opt = 0,
                                           .shape = pool_shape,
                                           .forward = avg_pool_forward,
                                           .backward = avg_pool_backward,
                                           .flags = 0};

ssl_tensor_t *ssl_avg_pool2d(ssl_ctx_t *ctx, ssl_tensor_t *x, int kernel, int stride, int padding)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_AVG_POOL2D, 1, x);
    n.ia[0] = kernel;
    n.ia[1] = stride;
    n.ia[2] = padding;
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- global_avg_pool */

static int gap_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0];
    if (x->ndim != 4)
        return ssl__op_error(nd, "need x (N, C, H, W)");
    if (x->shape[2] * x->shape[3] == 0)
        return ssl__op_error(nd, "empty spatial dimensions");
    *ndim = 2;
    shape[0] = x->shape[0];
    shape[1] = x->shape[1];
    return SSL_OK;
}

static int gap_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    const ssl_tensor_t *x = nd->in[0];
    int64_t planes = x->shape[0] * x->shape[1], hw = x->shape[2] * x->shape[3];
    float *y = nd->out->data; // (N, C)
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = x->data + pl * hw;
        double s = 0;
        for (int64_t i = 0; i < hw; i++)
            s += xp[i];
        y[pl] = (float)(s / (double)hw);
    }
    return SSL_OK;
}

static void gap_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    ssl_tensor_t *x = nd->in[0];
    float *dx = ssl__grad(ctx, x);
    if (!dx)
        return;
    int64_t planes = x->shape[0] * x->shape[1], hw = x->shape[2] * x->shape[3];
    const float *dy = nd->out->grad; // (N, C)
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        float g = (float)((double)dy[pl] / (double)hw), *dxp = dx + pl * hw;
        for (int64_t i = 0; i < hw; i++)
            dxp[i] += g;
    }
}

const ssl_op_def_t ssl_opdef_global_avg_pool = {.name = "global_avg_pool",
                                                .n_opt = 0,
                                                .shape = gap_shape,
                                                .forward = gap_forward,
                                                .backward = gap_backward,
                                                .flags = 0};

ssl_tensor_t *ssl_global_avg_pool(ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_GLOBAL_AVG_POOL, 1, x);
    return ssl__apply(ctx, &n);
}
