/* conv2d on NCHW as im2col + one sgemm per chunk of images (columns of several images side by
 * side, so the GEMMs stay large on small feature maps). The columns live in the context's
 * scratch buffer, not the arena: backward recomputes them instead of keeping them for the whole
 * step, and reuses the buffer for the column gradients. */
#include "core_internal.h"

#include <string.h>

typedef struct conv_dims {
    int64_t n, c, h, w; /* input */
    int64_t oc, kh, kw; /* weight */
    int64_t oh, ow;     /* output */
    int64_t stride, pad;
    int64_t k;  /* C * KH * KW: rows of a column matrix */
    int64_t p;  /* OH * OW: columns of a column matrix per image */
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

/* Images per GEMM: as many as fit about ssl__conv_chunk_floats of scratch (columns and the output
 * block), so a GEMM multiplies N*P columns instead of P (the deep layers of a CIFAR ResNet have
 * P = 16 positions per image: one GEMM per image would pack the whole weight for 16 columns). */
int64_t ssl__conv_chunk_floats = (int64_t)1 << 22;

static int64_t conv_chunk(const conv_dims_t *d)
{
    int64_t per = (d->k + d->oc) * d->p;
    int64_t nb = ssl__conv_chunk_floats / (per > 0 ? per : 1);
    if (nb > d->n)
        nb = d->n;
    return nb < 1 ? 1 : nb;
}

/* Row r = (c * KH + ky) * KW + kx of image x's (C, H, W) column matrix: P values into dst. */
static void im2col_row(const conv_dims_t *d, const float *x, int64_t r, float *dst)
{
    int64_t kx = r % d->kw, ky = (r / d->kw) % d->kh, c = r / (d->kw * d->kh);
    const float *xc = x + c * d->h * d->w; // (H, W)
    int64_t lo, hi;
    valid_range(kx, d->w, d->ow, d->stride, d->pad, &lo, &hi);
    for (int64_t oy = 0; oy < d->oh; oy++, dst += d->ow) {
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

/* col (K, m*P) from m images x (m, C, H, W): image j's columns are col[r, j*P .. (j+1)*P). */
static void im2col(const conv_dims_t *d, const float *x, int64_t m, float *col)
{
    int64_t ld = m * d->p, chw = d->c * d->h * d->w;
    for (int64_t t = 0; t < m * d->k; t++) {
        int64_t j = t / d->k, r = t % d->k;
        im2col_row(d, x + j * chw, r, col + r * ld + j * d->p);
    }
}

/* dx (m, C, H, W) += col2im(dcol (K, m*P)). One thread owns an (image, channel) plane and walks
 * its rows in a fixed order, so the sums are race-free and do not depend on the thread count. */
static void col2im_add(const conv_dims_t *d, const float *dcol, int64_t m, float *dx)
{
    int64_t ld = m * d->p;
    for (int64_t t = 0; t < m * d->c; t++) {
        int64_t j = t / d->c, c = t % d->c;
        float *dxc = dx + t * d->h * d->w; // (H, W) of image j, channel c
        for (int64_t ky = 0; ky < d->kh; ky++)
            for (int64_t kx = 0; kx < d->kw; kx++) {
                int64_t r = (c * d->kh + ky) * d->kw + kx, lo, hi;
                valid_range(kx, d->w, d->ow, d->stride, d->pad, &lo, &hi);
                for (int64_t oy = 0; oy < d->oh; oy++) {
                    int64_t iy = oy * d->stride - d->pad + ky;
                    if (iy < 0 || iy >= d->h)
                        continue;
                    const float *src = dcol + r * ld + j * d->p + oy * d->ow; // (OW)
                    float *dst = dxc + iy * d->w - d->pad + kx; /* dst[ox * stride] */
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

/* Between the (OC, m*P) block of a chunk's GEMM and the images' (m, OC, P) layout:
 * to_images 1: y[j, o, :] = blk[o, j*P ..] + bias[o]; 0: blk[o, j*P ..] = y[j, o, :]. */
static void block_copy(const conv_dims_t *d, int64_t m, float *blk, float *y, const float *bias,
                       int to_images)
{
    int64_t ld = m * d->p;
    for (int64_t t = 0; t < m * d->oc; t++) {
        int64_t j = t / d->oc, o = t % d->oc;
        float *b = blk + o * ld + j * d->p, *yi = y + t * d->p;
        if (!to_images) {
            memcpy(b, yi, (size_t)d->p * sizeof(float));
        } else {
            float v = bias ? bias[o] : 0.0f;
            for (int64_t q = 0; q < d->p; q++)
                yi[q] = b[q] + v;
        }
    }
}

/* Threads take whole chunks of images: im2col, a single-threaded GEMM (OpenBLAS runs on one
 * thread inside an OpenMP region) and the copy back, in their own workspace of columns (K, m*P)
 * and an output block (OC, m*P). No thread waits on another between the phases. */
static int64_t ws_floats(const conv_dims_t *d, int64_t nb) { return (d->k + d->oc) * nb * d->p; }

static int64_t chunk_for_threads(const conv_dims_t *d)
{
    return ssl__balanced_chunk(d->n, conv_chunk(d));
}

static int conv_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    conv_dims_t d;
    conv_dims(nd, &d);
    const float *x = nd->in[0]->data, *w = nd->in[1]->data; // (N, C, H, W), (OC, K)
    const float *bias = nd->in[2] ? nd->in[2]->data : NULL;
    float *y = nd->out->data; // (N, OC, P)
    if (d.n == 0)
        return SSL_OK;
    if (ssl__conv3x3_direct_usable(d.c, d.oc, d.h, d.w, d.kh, d.kw, d.stride, d.pad))
        return ssl__conv3x3_direct_forward(ctx, x, w, bias, y, d.n, d.c, d.h, d.w, d.oc, d.pad,
                                           (int)d.stride);
    if (ssl__conv3x3_winograd_usable(d.c, d.oc, d.w, d.kh, d.kw, d.stride, d.pad))
        return ssl__conv3x3_winograd_forward(ctx, x, w, bias, y, d.n, d.c, d.h, d.w, d.oc, d.pad);
    int64_t nb = chunk_for_threads(&d), chw = d.c * d.h * d.w, wsf = ws_floats(&d, nb);
    int64_t n_chunks = (d.n + nb - 1) / nb;
    float *ws = ssl__scratch(ctx, (size_t)(ssl__max_threads() * wsf) * sizeof(float));
    if (!ws)
        return SSL_ERR_NOMEM;
#pragma omp parallel if (n_chunks > 1)
    {
        float *col = ws + ssl__thread_id() * wsf, *blk = col + d.k * nb * d.p; // (K, mP), (OC, mP)
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            int64_t i0 = ch * nb, m = d.n - i0 < nb ? d.n - i0 : nb;
            im2col(&d, x + i0 * chw, m, col);
            /* blk (OC, m*P) = W (OC, K) @ col (K, m*P) */
            ssl__sgemm(0, 0, d.oc, m * d.p, d.k, 1.0f, w, d.k, col, m * d.p, 0.0f, blk, m * d.p);
            block_copy(&d, m, blk, y + i0 * d.oc * d.p, bias, 1);
        }
    }
    return SSL_OK;
}

static void conv_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    conv_dims_t d;
    conv_dims(nd, &d);
    const float *x = nd->in[0]->data, *w = nd->in[1]->data;
    float *dy = nd->out->grad;
    /* dx is stored, not added, when the input has no gradient yet (no zeroing pass) */
    int fresh = 0;
    float *dx = ssl__grad_write(ctx, nd->in[0], &fresh), *dw = ssl__grad(ctx, nd->in[1]);
    float *db = ssl__grad(ctx, nd->in[2]);
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
    if ((!dx && !dw) || d.n == 0)
        return;
    /* stride 2 runs its backward through im2col below: the GEMMs were faster there than the
     * direct weight gradient on the phase planes */
    if (d.stride == 1 &&
        ssl__conv3x3_direct_usable(d.c, d.oc, d.h, d.w, d.kh, d.kw, d.stride, d.pad)) {
        ssl__conv3x3_direct_backward(ctx, x, w, dy, dx, !fresh, dw, d.n, d.c, d.h, d.w, d.oc,
                                     d.pad);
        return; /* out of memory shows in the context's flag */
    } else if (ssl__conv3x3_winograd_usable(d.c, d.oc, d.w, d.kh, d.kw, d.stride, d.pad)) {
        ssl__conv3x3_winograd_backward(ctx, x, w, dy, dx, !fresh, dw, d.n, d.c, d.h, d.w, d.oc,
                                       d.pad);
        return; /* out of memory shows in the context's flag */
    }
    int64_t nb = chunk_for_threads(&d), chw = d.c * d.h * d.w, wsf = ws_floats(&d, nb);
    int64_t n_chunks = (d.n + nb - 1) / nb, nt = ssl__max_threads(), kw = d.oc * d.k;
    /* per thread: columns (recomputed, then reused for their gradient), the chunk's dy block,
     * then nt partial weight gradients summed in thread order at the end */
    float *ws = ssl__scratch(ctx, (size_t)(nt * wsf + (dw ? nt * kw : 0)) * sizeof(float));
    if (!ws)
        return;
    float *parts = ws + nt * wsf;
    if (dw)
        memset(parts, 0, (size_t)(nt * kw) * sizeof(float));
#pragma omp parallel if (n_chunks > 1)
    {
        float *col = ws + ssl__thread_id() * wsf, *dyb = col + d.k * nb * d.p; // (K, mP), (OC, mP)
        float *pdw = dw ? parts + ssl__thread_id() * kw : NULL;
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            int64_t i0 = ch * nb, m = d.n - i0 < nb ? d.n - i0 : nb, mp = m * d.p;
            const float *g = dy + i0 * d.oc * d.p;
            if (m > 1) {
                block_copy(&d, m, dyb, (float *)g, NULL, 0);
                g = dyb;
            }
            if (pdw) {
                im2col(&d, x + i0 * chw, m, col);
                /* dW (OC, K) += dy (OC, m*P) @ col^T (m*P, K) */
                ssl__sgemm(0, 1, d.oc, d.k, mp, 1.0f, g, mp, col, mp, 1.0f, pdw, d.k);
            }
            if (dx) {
                /* dcol (K, m*P) = W^T (K, OC) @ dy (OC, m*P), then scattered onto the images */
                ssl__sgemm(1, 0, d.k, mp, d.oc, 1.0f, w, d.k, g, mp, 0.0f, col, mp);
                if (fresh) /* the chunk's images, zeroed here while they are about to be hot */
                    memset(dx + i0 * chw, 0, (size_t)(m * chw) * sizeof(float));
                col2im_add(&d, col, m, dx + i0 * chw);
            }
        }
    }
    if (dw) {
        int64_t used = n_chunks > 1 ? nt : 1;
#pragma omp parallel for schedule(static) if (kw > SSL_OMP_MIN)
        for (int64_t i = 0; i < kw; i++) {
            float s = parts[i];
            for (int64_t t = 1; t < used; t++) /* in thread order: deterministic */
                s += parts[t * kw + i];
            dw[i] += s;
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
