/* conv2d on NCHW as im2col + one sgemm per image; a 1x1 / stride 1 / padding 0 convolution
 * is already a gemm on the image and skips im2col. Backward recomputes each image's columns
 * instead of keeping them for the whole batch, and reuses one (K, P) buffer for columns and
 * column gradients. */
#include "core_internal.h"

#include <string.h>

typedef struct conv_dims {
    int64_t n, c, h, w; /* input */
    int64_t oc, kh, kw; /* weight */
    int64_t oh, ow;     /* output */
    int64_t stride, pad;
    int64_t k;  /* C * KH * KW: rows of a column matrix */
    int64_t p;  /* OH * OW: columns of a column matrix */
    int direct; /* 1x1, stride 1, padding 0: x[n] is its own column matrix */
} conv_dims_t;

static void conv_dims(const ssl_node_t *nd, conv_dims_t *d)
{
    const ssl_tensor_t *x = nd->in[0], *w = nd->in[1];
    d->n = x->shape[0];
    d->c = x->shape[1];
    d->h = x->shape[2];
    d->w = x->shape[3];
    d->oc = w->shape[0];
    d->kh = w->shape[2];
    d->kw = w->shape[3];
    d->stride = nd->ia[0];
    d->pad = nd->ia[1];
    d->oh = (d->h + 2 * d->pad - d->kh) / d->stride + 1;
    d->ow = (d->w + 2 * d->pad - d->kw) / d->stride + 1;
    d->k = d->c * d->kh * d->kw;
    d->p = d->oh * d->ow;
    d->direct = d->kh == 1 && d->kw == 1 && d->stride == 1 && d->pad == 0;
}

static int conv_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0], *w = nd->in[1], *b = nd->in[2];
    if (x->ndim != 4 || w->ndim != 4)
        return ssl__op_error(nd, "need x (N, C, H, W) and weight (OC, C, KH, KW)");
    if (nd->ia[0] < 1)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "stride must be >= 1, got %lld",
                                    (long long)nd->ia[0]);
    if (nd->ia[1] < 0)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "padding must be >= 0, got %lld",
                                    (long long)nd->ia[1]);
    if (w->shape[1] != x->shape[1])
        return ssl__op_error(nd, "x has %lld channels, weight expects %lld", (long long)x->shape[1],
                             (long long)w->shape[1]);
    if (x->shape[1] < 1 || w->shape[2] < 1 || w->shape[3] < 1)
        return ssl__op_error(nd, "empty kernel or no input channels");
    int64_t ph = x->shape[2] + 2 * nd->ia[1], pw = x->shape[3] + 2 * nd->ia[1];
    if (w->shape[2] > ph || w->shape[3] > pw)
        return ssl__op_error(nd, "kernel %lldx%lld is larger than the padded input %lldx%lld",
                             (long long)w->shape[2], (long long)w->shape[3], (long long)ph,
                             (long long)pw);
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return ssl__op_error(nd, "bias must have shape (%lld)", (long long)w->shape[0]);
    conv_dims_t d;
    conv_dims(nd, &d);
    *ndim = 4;
    shape[0] = d.n;
    shape[1] = d.oc;
    shape[2] = d.oh;
    shape[3] = d.ow;
    return SSL_OK;
}

/* Output columns [lo, hi) of kernel offset kx read inside the input row (0 <= ix < len);
 * the others read padding. ix = ox * stride - pad + kx. */
static void valid_range(int64_t kx, int64_t len, int64_t out, int64_t stride, int64_t pad,
                        int64_t *lo, int64_t *hi)
{
    int64_t a = pad - kx; /* need ox * stride >= a */
    int64_t l = a > 0 ? (a + stride - 1) / stride : 0;
    int64_t e = len + pad - kx; /* need ox * stride < e */
    int64_t h = e > 0 ? (e + stride - 1) / stride : 0;
    if (h > out)
        h = out;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* col (K, P) from one image x (C, H, W); row r = (c * KH + ky) * KW + kx. */
static void im2col(const conv_dims_t *d, const float *x, float *col)
{
#pragma omp parallel for schedule(static) if (d->k * d->p > SSL_OMP_MIN)
    for (int64_t r = 0; r < d->k; r++) {
        int64_t kx = r % d->kw, ky = (r / d->kw) % d->kh, c = r / (d->kw * d->kh);
        const float *xc = x + c * d->h * d->w; // (H, W)
        int64_t lo, hi;
        valid_range(kx, d->w, d->ow, d->stride, d->pad, &lo, &hi);
        for (int64_t oy = 0; oy < d->oh; oy++) {
            float *dst = col + r * d->p + oy * d->ow; // (OW)
            int64_t iy = oy * d->stride - d->pad + ky;
            if (iy < 0 || iy >= d->h) {
                memset(dst, 0, (size_t)d->ow * sizeof(float));
                continue;
            }
            const float *src = xc + iy * d->w - d->pad + kx; /* src[ox * stride] */
            for (int64_t ox = 0; ox < lo; ox++)
                dst[ox] = 0.0f;
            if (d->stride == 1)
                memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
            else
                for (int64_t ox = lo; ox < hi; ox++)
                    dst[ox] = src[ox * d->stride];
            for (int64_t ox = hi; ox < d->ow; ox++)
                dst[ox] = 0.0f;
        }
    }
}

/* dx (C, H, W) += col2im(dcol (K, P)). One thread owns a channel and walks its rows in a fixed
 * order, so the sums are race-free and do not depend on the thread count. */
static void col2im_add(const conv_dims_t *d, const float *dcol, float *dx)
{
#pragma omp parallel for schedule(static) if (d->k * d->p > SSL_OMP_MIN)
    for (int64_t c = 0; c < d->c; c++) {
        float *dxc = dx + c * d->h * d->w; // (H, W)
        for (int64_t ky = 0; ky < d->kh; ky++)
            for (int64_t kx = 0; kx < d->kw; kx++) {
                int64_t r = (c * d->kh + ky) * d->kw + kx, lo, hi;
                valid_range(kx, d->w, d->ow, d->stride, d->pad, &lo, &hi);
                for (int64_t oy = 0; oy < d->oh; oy++) {
                    int64_t iy = oy * d->stride - d->pad + ky;
                    if (iy < 0 || iy >= d->h)
                        continue;
                    const float *src = dcol + r * d->p + oy * d->ow; // (OW)
                    float *dst = dxc + iy * d->w - d->pad + kx;      /* dst[ox * stride] */
                    if (d->stride == 1)
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox] += src[ox];
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox * d->stride] += src[ox];
                }
            }
    }
}

static int conv_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    conv_dims_t d;
    conv_dims(nd, &d);
    const float *x = nd->in[0]->data, *w = nd->in[1]->data; // (N, C, H, W), (OC, K)
    const ssl_tensor_t *b = nd->in[2];
    float *y = nd->out->data; // (N, OC, P)
    float *col = NULL;        // (K, P), reused for every image
    if (!d.direct && d.n > 0) {
        col = ssl_arena_alloc(ctx, (size_t)(d.k * d.p) * sizeof(float));
        if (!col)
            return SSL_ERR_NOMEM;
    }
    if (b) {
#pragma omp parallel for schedule(static) if (d.n * d.oc * d.p > SSL_OMP_MIN)
        for (int64_t i = 0; i < d.n * d.oc; i++) {
            float v = b->data[i % d.oc], *yi = y + i * d.p;
            for (int64_t j = 0; j < d.p; j++)
                yi[j] = v;
        }
    }
    for (int64_t i = 0; i < d.n; i++) {
        const float *xi = x + i * d.c * d.h * d.w;
        if (!d.direct)
            im2col(&d, xi, col);
        /* y[i] (OC, P) = W (OC, K) @ col (K, P) */
        ssl__sgemm(0, 0, d.oc, d.p, d.k, 1.0f, w, d.k, d.direct ? xi : col, d.p, b ? 1.0f : 0.0f,
                   y + i * d.oc * d.p, d.p);
    }
    nd->aux[0] = col;
    return SSL_OK;
}

static void conv_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    conv_dims_t d;
    conv_dims(nd, &d);
    const float *x = nd->in[0]->data, *w = nd->in[1]->data, *dy = nd->out->grad;
    float *dx = ssl__grad(ctx, nd->in[0]), *dw = ssl__grad(ctx, nd->in[1]);
    float *db = ssl__grad(ctx, nd->in[2]);
    float *col = nd->aux[0]; /* the forward's (K, P) buffer: columns, then their gradient */
    if (db) {
#pragma omp parallel for schedule(static) if (d.n * d.oc * d.p > SSL_OMP_MIN)
        for (int64_t o = 0; o < d.oc; o++) {
            double s = 0;
            for (int64_t i = 0; i < d.n; i++) {
                const float *g = dy + (i * d.oc + o) * d.p;
                for (int64_t j = 0; j < d.p; j++)
                    s += g[j];
            }
            db[o] += (float)s;
        }
    }
    for (int64_t i = 0; i < d.n; i++) {
        const float *xi = x + i * d.c * d.h * d.w, *dyi = dy + i * d.oc * d.p; // dyi (OC, P)
        float *dxi = dx ? dx + i * d.c * d.h * d.w : NULL;
        if (d.direct) {
            if (dw) /* dW (OC, C) += dy[i] (OC, P) @ x[i]^T (P, C) */
                ssl__sgemm(0, 1, d.oc, d.k, d.p, 1.0f, dyi, d.p, xi, d.p, 1.0f, dw, d.k);
            if (dxi) /* dx[i] (C, P) += W^T (C, OC) @ dy[i] (OC, P) */
                ssl__sgemm(1, 0, d.k, d.p, d.oc, 1.0f, w, d.k, dyi, d.p, 1.0f, dxi, d.p);
            continue;
        }
        if (dw) {
            im2col(&d, xi, col);
            /* dW (OC, K) += dy[i] (OC, P) @ col^T (P, K) */
            ssl__sgemm(0, 1, d.oc, d.k, d.p, 1.0f, dyi, d.p, col, d.p, 1.0f, dw, d.k);
        }
        if (dxi) {
            /* dcol (K, P) = W^T (K, OC) @ dy[i] (OC, P), then scattered back onto the image */
            ssl__sgemm(1, 0, d.k, d.p, d.oc, 1.0f, w, d.k, dyi, d.p, 0.0f, col, d.p);
            col2im_add(&d, col, dxi);
        }
    }
}

const ssl_op_def_t ssl_opdef_conv2d = {"conv2d", 1, conv_shape, conv_forward, conv_backward, 0};

ssl_tensor_t *ssl_conv2d(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *w, ssl_tensor_t *bias,
                         int stride, int padding)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_CONV2D, 3, x, w, bias);
    n.ia[0] = stride;
    n.ia[1] = padding;
    return ssl__apply(ctx, &n);
}
