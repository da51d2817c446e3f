/* conv2d on NCHW as im2col + one sgemm per chunk of images (columns of several images side by
 * side, so the GEMMs stay large on small feature maps). The columns live in the context's
 * scratch buffer, not the arena: backward recomputes them instead of keeping them for the whole
 * step, and reuses the buffer for the column gradients. */
#include "core_internal.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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
 * P = 16 positions per image: one GEMM per image would pack the whole weight for 16 columns).
 * 4 MiB per thread: 16 MiB was 5-30% slower (fwd + bwd, 2 threads: 128->128 at 4x4 over 256
 * images 26-27 vs 32-34 ms, 128->256 stride 2 at 16x16 over 128 images 92-124 vs 120-135 ms). */
int64_t ssl__conv_chunk_floats = (int64_t)1 << 20;

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

/* Index tables of the vector im2col and col2im (AVX-512): for every tap (ky, kx) and vector of
 * 16 output positions, the offset in the input plane each position reads and a mask of the
 * positions that read inside it (the others read padding: zero); for every tap and vector of
 * 16 input positions, the offset in the tap's column row of the output position that reads it
 * (the inverse map, for the scatter of column gradients as gathers). Strided and narrow rows
 * (the stride-2 layers, 4x4 and 7x7 maps) then cost a gather per 16 values instead of a scalar
 * loop or a memcpy call per few floats: on (256, 128, 4, 4) the scalar im2col and col2im took
 * as long as the GEMMs. The tables do not depend on the image or channel. */
typedef struct gtab {
    int64_t taps, nvo, nvi; /* KH * KW; vectors per output plane (P) and per input plane (H * W) */
    int32_t *fidx, *bidx;   /* (taps, nvo, 16) and (taps, nvi, 16) offsets */
    uint16_t *fmsk, *bmsk;  /* (taps, nvo) and (taps, nvi) masks of valid lanes */
} gtab_t;

/* Floats of scratch for d's tables, or 0 when the vector path does not apply: rows of 16 or
 * more contiguous values (stride 1) copy faster as rows, and huge tables are not worth it. */
int ssl__conv_vec_tables = 1;

static int64_t gtab_floats(const conv_dims_t *d)
{
#if defined(__AVX512F__)
    if (!ssl__conv_vec_tables || (d->stride == 1 && d->ow >= 16))
        return 0;
    int64_t taps = d->kh * d->kw, nv = (d->p + 15) / 16 + (d->h * d->w + 15) / 16;
    int64_t f = taps * nv * 17; /* 16 offsets and a mask (in one float's room) per vector */
    if (f > ((int64_t)1 << 18) || d->h * d->w > ((int64_t)1 << 24))
        return 0;
    return (f + 15) / 16 * 16;
#else
    (void)d;
    return 0;
#endif
}

static void gtab_build(const conv_dims_t *d, float *buf, gtab_t *t)
{
    t->taps = d->kh * d->kw;
    t->nvo = (d->p + 15) / 16;
    t->nvi = (d->h * d->w + 15) / 16;
    t->fidx = (int32_t *)buf;
    t->bidx = t->fidx + t->taps * t->nvo * 16;
    t->fmsk = (uint16_t *)(t->bidx + t->taps * t->nvi * 16);
    t->bmsk = t->fmsk + t->taps * t->nvo;
    memset(t->fmsk, 0, (size_t)(t->taps * (t->nvo + t->nvi)) * sizeof(uint16_t));
    for (int64_t k = 0; k < t->taps; k++) {
        int64_t ky = k / d->kw, kx = k % d->kw;
        for (int64_t q = 0; q < t->nvo * 16; q++) {
            int64_t oy = q / d->ow, ox = q % d->ow;
            int64_t iy = oy * d->stride - d->pad + ky, ix = ox * d->stride - d->pad + kx;
            int ok = q < d->p && iy >= 0 && iy < d->h && ix >= 0 && ix < d->w;
            t->fidx[k * t->nvo * 16 + q] = ok ? (int32_t)(iy * d->w + ix) : 0;
            if (ok)
                t->fmsk[k * t->nvo + q / 16] |= (uint16_t)(1u << (q % 16));
        }
        for (int64_t q = 0; q < t->nvi * 16; q++) {
            int64_t iy = q / d->w, ix = q % d->w;
            int64_t sy = iy + d->pad - ky, sx = ix + d->pad - kx; /* = o * stride */
            int64_t oy = sy / d->stride, ox = sx / d->stride;
            int ok = q < d->h * d->w && sy >= 0 && sx >= 0 && sy % d->stride == 0 &&
                     sx % d->stride == 0 && oy < d->oh && ox < d->ow;
            t->bidx[k * t->nvi * 16 + q] = ok ? (int32_t)(oy * d->ow + ox) : 0;
            if (ok)
                t->bmsk[k * t->nvi + q / 16] |= (uint16_t)(1u << (q % 16));
        }
    }
}

#if defined(__AVX512F__)
static __mmask16 tail_mask(int64_t len, int64_t v)
{
    return ssl__lanes16(len - v * 16);
}

/* Image j's columns from its planes by gathers (one load and permutes for planes of at most
 * 16 values). */
static void im2col_vec(const conv_dims_t *d, const gtab_t *t, const float *x, int64_t j, int64_t ld,
                       float *col)
{
    int64_t hw = d->h * d->w;
    for (int64_t c = 0; c < d->c; c++) {
        const float *plane = x + (j * d->c + c) * hw;
        __m512 xv = hw <= 16 ? _mm512_maskz_loadu_ps(tail_mask(hw, 0), plane) : _mm512_setzero_ps();
        for (int64_t k = 0; k < t->taps; k++) {
            float *dst = col + (c * t->taps + k) * ld + j * d->p;
            for (int64_t v = 0; v < t->nvo; v++) {
                __mmask16 mk = t->fmsk[k * t->nvo + v];
                __m512i ix = _mm512_loadu_si512(t->fidx + (k * t->nvo + v) * 16);
                __m512 val = hw <= 16
                                 ? _mm512_maskz_permutexvar_ps(mk, ix, xv)
                                 : _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk, ix, plane, 4);
                _mm512_mask_storeu_ps(dst + v * 16, tail_mask(d->p, v), val);
            }
        }
    }
}

/* dx plane (j, c) (+)= the sum over taps of its gathered column gradients, in tap order (the
 * order of the scalar loop: the same sums). */
static void col2im_vec(const conv_dims_t *d, const gtab_t *t, const float *dcol, int64_t j,
                       int64_t ld, int add, float *dx)
{
    int64_t hw = d->h * d->w;
    for (int64_t c = 0; c < d->c; c++) {
        float *dxc = dx + (j * d->c + c) * hw;
        const float *rows = dcol + c * t->taps * ld + j * d->p;
        for (int64_t v = 0; v < t->nvi; v++) {
            __mmask16 tm = tail_mask(hw, v);
            __m512 acc = add ? _mm512_maskz_loadu_ps(tm, dxc + v * 16) : _mm512_setzero_ps();
            for (int64_t k = 0; k < t->taps; k++) {
                __mmask16 mk = t->bmsk[k * t->nvi + v];
                if (!mk)
                    continue;
                __m512i ix = _mm512_loadu_si512(t->bidx + (k * t->nvi + v) * 16);
                const float *row = rows + k * ld;
                __m512 g =
                    d->p <= 16
                        ? _mm512_permutexvar_ps(ix, _mm512_maskz_loadu_ps(tail_mask(d->p, 0), row))
                        : _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mk, ix, row, 4);
                acc = _mm512_mask_add_ps(acc, mk, acc, g);
            }
            _mm512_mask_storeu_ps(dxc + v * 16, tm, acc);
        }
    }
}
#endif

/* col (K, m*P) from m images x (m, C, H, W): image j's columns are col[r, j*P .. (j+1)*P). */
static void im2col(const conv_dims_t *d, const gtab_t *t, const float *x, int64_t m, float *col)
{
    int64_t ld = m * d->p, chw = d->c * d->h * d->w;
#if defined(__AVX512F__)
    if (t) {
        for (int64_t j = 0; j < m; j++)
            im2col_vec(d, t, x, j, ld, col);
        return;
    }
#else
    (void)t;
#endif
    for (int64_t t2 = 0; t2 < m * d->k; t2++) {
        int64_t j = t2 / d->k, r = t2 % d->k;
        im2col_row(d, x + j * chw, r, col + r * ld + j * d->p);
    }
}

/* dx (m, C, H, W) = (add: +=) col2im(dcol (K, m*P)). One thread owns an (image, channel) plane
 * and walks its rows in a fixed order, so the sums are race-free and do not depend on the
 * thread count. */
static void col2im(const conv_dims_t *d, const gtab_t *tb, const float *dcol, int64_t m, int add,
                   float *dx)
{
    int64_t ld = m * d->p;
#if defined(__AVX512F__)
    if (tb) {
        for (int64_t j = 0; j < m; j++)
            col2im_vec(d, tb, dcol, j, ld, add, dx);
        return;
    }
#else
    (void)tb;
#endif
    if (!add)
        memset(dx, 0, (size_t)(m * d->c * d->h * d->w) * sizeof(float));
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

/* y (N, OC, P) += bias per output channel */
static void add_bias(const conv_dims_t *d, float *y, const float *bias)
{
#pragma omp parallel for schedule(static) if (d->n * d->oc * d->p > SSL_OMP_MIN)
    for (int64_t t = 0; t < d->n * d->oc; t++) {
        float v = bias[t % d->oc], *yt = y + t * d->p;
        for (int64_t q = 0; q < d->p; q++)
            yt[q] += v;
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

/* dw (kw) += the sum of `used` per-thread partial weight gradients, in thread order
 * (deterministic for a thread count) */
static void add_weight_parts(const float *parts, int64_t used, int64_t kw, float *dw)
{
#pragma omp parallel for schedule(static) if (kw > SSL_OMP_MIN)
    for (int64_t i = 0; i < kw; i++) {
        float s = parts[i];
        for (int64_t t = 1; t < used; t++)
            s += parts[t * kw + i];
        dw[i] += s;
    }
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
    ssl__model_flops_add((uint64_t)(2 * d.n * d.oc * d.k * d.p)); /* as a direct convolution */
    if (ssl__bf16_conv_usable(ctx, d.kh, d.stride)) {
        if (ssl__bf16_conv_forward(ctx, x, w, y, d.n, d.c, d.h, d.w, d.oc, d.kh, d.kw, d.stride,
                                   d.pad) == SSL_OK) {
            if (bias)
                add_bias(&d, y, bias);
            return SSL_OK;
        }
        atomic_fetch_add_explicit(&ssl__bf16_fallbacks, 1, memory_order_relaxed);
    }
    if (ssl__conv3x3_wino4_usable(d.c, d.oc, d.h, d.w, d.kh, d.kw, d.stride, d.pad))
        return ssl__conv3x3_wino4_forward(ctx, x, w, bias, y, d.n, d.c, d.h, d.w, d.oc);
    if (ssl__conv3x3_direct_usable(d.c, d.oc, d.h, d.w, d.kh, d.kw, d.stride, d.pad))
        return ssl__conv3x3_direct_forward(ctx, x, w, bias, y, d.n, d.c, d.h, d.w, d.oc, d.pad,
                                           (int)d.stride);
    if (ssl__conv3x3_winograd_usable(d.c, d.oc, d.w, d.kh, d.kw, d.stride, d.pad))
        return ssl__conv3x3_winograd_forward(ctx, x, w, bias, y, d.n, d.c, d.h, d.w, d.oc, d.pad);
    int64_t nb = chunk_for_threads(&d), chw = d.c * d.h * d.w, wsf = ws_floats(&d, nb);
    int64_t n_chunks = (d.n + nb - 1) / nb, gtf = gtab_floats(&d);
    float *ws = ssl__scratch(ctx, (size_t)(ssl__max_threads() * wsf + gtf) * sizeof(float));
    if (!ws)
        return SSL_ERR_NOMEM;
    gtab_t tab, *tp = NULL;
    if (gtf) {
        gtab_build(&d, ws + ssl__max_threads() * wsf, &tab);
        tp = &tab;
    }
#pragma omp parallel if (n_chunks > 1)
    {
        float *col = ws + ssl__thread_id() * wsf, *blk = col + d.k * nb * d.p; // (K, mP), (OC, mP)
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            int64_t i0 = ch * nb, m = d.n - i0 < nb ? d.n - i0 : nb;
            im2col(&d, tp, x + i0 * chw, m, col);
            /* blk (OC, m*P) = W (OC, K) @ col (K, m*P) */
            ssl__gemm_inner(ctx, 0, 0, d.oc, m * d.p, d.k, 1.0f, w, d.k, col, m * d.p, 0.0f, blk,
                            m * d.p);
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
    ssl__model_flops_add((uint64_t)(((dx ? 1 : 0) + (dw ? 1 : 0)) * 2 * d.n * d.oc * d.k * d.p));
    if (ssl__bf16_conv_usable(ctx, d.kh, d.stride)) {
        if (ssl__bf16_conv_backward(ctx, x, w, dy, dx, !fresh, dw, d.n, d.c, d.h, d.w, d.oc, d.kh,
                                    d.kw, d.stride, d.pad) == SSL_OK)
            return;
        atomic_fetch_add_explicit(&ssl__bf16_fallbacks, 1, memory_order_relaxed);
    }
    if (ssl__conv3x3_wino4_usable(d.c, d.oc, d.h, d.w, d.kh, d.kw, d.stride, d.pad)) {
        ssl__conv3x3_wino4_backward(ctx, x, w, dy, dx, !fresh, dw, d.n, d.c, d.h, d.w, d.oc);
        return; /* out of memory shows in the context's flag */
    }
    if (d.stride == 2 && dx && d.kh == 3 && d.kw == 3 &&
        ssl__conv3x3_s2_dx_usable(d.c, d.h, d.w, d.pad)) {
        /* the input gradient with channels in the lanes (no columns, no col2im) */
        ssl__conv3x3_s2_dx(ctx, w, dy, dx, !fresh, d.n, d.c, d.h, d.w, d.oc);
        dx = NULL;
        if (!dw)
            return; /* out of memory shows in the context's flag */
    }
    if (d.stride == 2 && dw && d.c < 64 && ssl__conv_direct_s2_dw &&
        ssl__conv3x3_direct_usable(d.c, d.oc, d.h, d.w, d.kh, d.kw, d.stride, d.pad)) {
        /* the weight gradient on the phase planes (256 images, 2 threads: 16->32 @28 7.6-8.8
         * vs 11.1-14.2 ms through im2col, 32->64 @14 6.5-7.9 vs 8.0-9.7, @28 20.7-21.0 vs
         * 26.5-27.4; at 64 input channels im2col's GEMM stays ahead, 64->128 @32 46-48 vs
         * 50-52 ms at 128 images); the input gradient below through im2col */
        ssl__conv3x3_direct_backward(ctx, x, w, dy, NULL, 0, dw, d.n, d.c, d.h, d.w, d.oc, d.pad,
                                     2);
        dw = NULL;
        if (!dx)
            return;
    } else if (d.stride == 1 &&
               ssl__conv3x3_direct_usable(d.c, d.oc, d.h, d.w, d.kh, d.kw, d.stride, d.pad)) {
        /* 64 input channels on maps up to 8 wide: the weight gradient's GEMM below beat the
         * direct dot products, whose padded grid wastes 40% of a 7x7 map (64->64 at 7x7, 256
         * images, 2 threads: 8.5-9.8 vs 11.3-11.7 ms; at 32 channels or 14x14 the direct one
         * wins) */
        int dw_gemm =
            dw && d.c >= 64 && d.ow <= 8 && !ssl__conv3x3_cl_dw_usable(d.c, d.oc, d.oh, d.ow);
        ssl__conv3x3_direct_backward(ctx, x, w, dy, dx, !fresh, dw_gemm ? NULL : dw, d.n, d.c, d.h,
                                     d.w, d.oc, d.pad, 1);
        if (!dw_gemm)
            return; /* out of memory shows in the context's flag */
        dx = NULL;
    } else if (ssl__conv3x3_winograd_usable(d.c, d.oc, d.w, d.kh, d.kw, d.stride, d.pad)) {
        ssl__conv3x3_winograd_backward(ctx, x, w, dy, dx, !fresh, dw, d.n, d.c, d.h, d.w, d.oc,
                                       d.pad);
        return; /* out of memory shows in the context's flag */
    }
    int64_t nb = chunk_for_threads(&d), chw = d.c * d.h * d.w, wsf = ws_floats(&d, nb);
    int64_t n_chunks = (d.n + nb - 1) / nb, nt = ssl__max_threads(), kw = d.oc * d.k;
    /* per thread: columns (recomputed, then reused for their gradient), the chunk's dy block,
     * then nt partial weight gradients summed in thread order at the end */
    int64_t gtf = gtab_floats(&d);
    float *ws = ssl__scratch(ctx, (size_t)(nt * wsf + (dw ? nt * kw : 0) + gtf) * sizeof(float));
    if (!ws)
        return;
    float *parts = ws + nt * wsf;
    gtab_t tab, *tp = NULL;
    if (gtf) {
        gtab_build(&d, parts + (dw ? nt * kw : 0), &tab);
        tp = &tab;
    }
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
                im2col(&d, tp, x + i0 * chw, m, col);
                /* dW (OC, K) += dy (OC, m*P) @ col^T (m*P, K) */
                ssl__gemm_inner(ctx, 0, 1, d.oc, d.k, mp, 1.0f, g, mp, col, mp, 1.0f, pdw, d.k);
            }
            if (dx) {
                /* dcol (K, m*P) = W^T (K, OC) @ dy (OC, m*P), then scattered onto the images */
                ssl__gemm_inner(ctx, 1, 0, d.k, mp, d.oc, 1.0f, w, d.k, g, mp, 0.0f, col, mp);
                /* fresh: stored, not added (the chunk's images hold no gradient yet) */
                col2im(&d, tp, col, m, !fresh, dx + i0 * chw);
            }
        }
    }
    if (dw)
        add_weight_parts(parts, n_chunks > 1 ? nt : 1, kw, dw);
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

/* ---------------------------------------------------------------- conv_transpose2d
 * y = conv_transpose2d(x, w) is the input gradient of a convolution whose input has y's shape
 * and whose output has x's: the same dims in the convolution's view (conv_dims_t: "input" =
 * y (N, C_out, OH, OW), "output" = x (N, C_in, H, W), weight (C_in, C_out*KH*KW) = (OC, K), as
 * PyTorch stores a transposed convolution's weight). Forward is conv2d's input-gradient path
 * (columns W^T x, then col2im), backward is conv2d's forward for dx (im2col of dy, then W cols)
 * and its weight gradient with x in dy's place: the same sgemm calls and scratch chunks. */

static void convt_dims(const ssl_node_t *nd, conv_dims_t *d)
{
    const ssl_tensor_t *x = nd->in[0], *w = nd->in[1];
    d->n = x->shape[0];
    d->oc = x->shape[1];
    d->oh = x->shape[2];
    d->ow = x->shape[3];
    d->c = w->shape[1];
    d->kh = w->shape[2];
    d->kw = w->shape[3];
    d->stride = nd->ia[0];
    d->pad = nd->ia[1];
    d->h = (d->oh - 1) * d->stride - 2 * d->pad + d->kh + nd->ia[2];
    d->w = (d->ow - 1) * d->stride - 2 * d->pad + d->kw + nd->ia[2];
    d->k = d->c * d->kh * d->kw;
    d->p = d->oh * d->ow;
}

static int convt_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0], *w = nd->in[1], *b = nd->in[2];
    int64_t s = nd->ia[0], p = nd->ia[1], op = nd->ia[2];
    if (x->ndim != 4 || w->ndim != 4)
        return ssl__op_error(nd, "need x (N, C_in, H, W) and weight (C_in, C_out, KH, KW)");
    if (s < 1)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "stride must be >= 1, got %lld",
                                    (long long)s);
    if (p < 0)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "padding must be >= 0, got %lld",
                                    (long long)p);
    if (op < 0 || op >= s)
        return ssl__op_error_status(nd, SSL_ERR_INVALID,
                                    "output_padding must be in [0, stride %lld), got %lld",
                                    (long long)s, (long long)op);
    if (w->shape[0] != x->shape[1])
        return ssl__op_error(nd, "x has %lld channels, weight expects %lld", (long long)x->shape[1],
                             (long long)w->shape[0]);
    if (x->shape[1] < 1 || w->shape[1] < 1 || w->shape[2] < 1 || w->shape[3] < 1)
        return ssl__op_error(nd, "empty kernel or no channels");
    if (x->shape[2] < 1 || x->shape[3] < 1)
        return ssl__op_error(nd, "empty input map");
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[1]))
        return ssl__op_error(nd, "bias must have shape (%lld)", (long long)w->shape[1]);
    conv_dims_t d;
    convt_dims(nd, &d);
    if (d.h < 1 || d.w < 1)
        return ssl__op_error(nd, "padding %lld leaves an empty %lldx%lld output", (long long)p,
                             (long long)d.h, (long long)d.w);
    *ndim = 4;
    shape[0] = d.n;
    shape[1] = d.c;
    shape[2] = d.h;
    shape[3] = d.w;
    return SSL_OK;
}

/* per thread: columns (K, m*P) and a block (OC, m*P) of x (or of dx), as conv2d's */
static float *convt_workspace(ssl_ctx_t *ctx, const conv_dims_t *d, int64_t extra, gtab_t *tab,
                              gtab_t **tp)
{
    int64_t nb = chunk_for_threads(d), gtf = gtab_floats(d), nt = ssl__max_threads();
    float *ws = ssl__scratch(ctx, (size_t)(nt * ws_floats(d, nb) + extra + gtf) * sizeof(float));
    *tp = NULL;
    if (ws && gtf) {
        gtab_build(d, ws + nt * ws_floats(d, nb) + extra, tab);
        *tp = tab;
    }
    return ws;
}

static int convt_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    conv_dims_t d;
    convt_dims(nd, &d);
    const float *x = nd->in[0]->data, *w = nd->in[1]->data; // (N, OC, P), (OC, K)
    const float *bias = nd->in[2] ? nd->in[2]->data : NULL; // (C)
    float *y = nd->out->data;                                // (N, C, H, W)
    if (d.n == 0)
        return SSL_OK;
    ssl__model_flops_add((uint64_t)(2 * d.n * d.oc * d.k * d.p));
    int64_t nb = chunk_for_threads(&d), chw = d.c * d.h * d.w, wsf = ws_floats(&d, nb);
    int64_t n_chunks = (d.n + nb - 1) / nb;
    gtab_t tab, *tp;
    float *ws = convt_workspace(ctx, &d, 0, &tab, &tp);
    if (!ws)
        return SSL_ERR_NOMEM;
#pragma omp parallel if (n_chunks > 1)
    {
        float *col = ws + ssl__thread_id() * wsf, *blk = col + d.k * nb * d.p; // (K, mP), (OC, mP)
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            int64_t i0 = ch * nb, m = d.n - i0 < nb ? d.n - i0 : nb, mp = m * d.p;
            const float *g = x + i0 * d.oc * d.p;
            if (m > 1) {
                block_copy(&d, m, blk, (float *)g, NULL, 0);
                g = blk;
            }
            /* col (K, m*P) = W^T (K, OC) @ x (OC, m*P), scattered onto the output images */
            ssl__gemm_inner(ctx, 1, 0, d.k, mp, d.oc, 1.0f, w, d.k, g, mp, 0.0f, col, mp);
            col2im(&d, tp, col, m, 0, y + i0 * chw);
        }
    }
    if (bias) {
        int64_t hw = d.h * d.w;
#pragma omp parallel for schedule(static) if (d.n * chw > SSL_OMP_MIN)
        for (int64_t t = 0; t < d.n * d.c; t++) {
            float v = bias[t % d.c], *yt = y + t * hw;
            for (int64_t q = 0; q < hw; q++)
                yt[q] += v;
        }
    }
    return SSL_OK;
}

static void convt_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    conv_dims_t d;
    convt_dims(nd, &d);
    const float *x = nd->in[0]->data, *w = nd->in[1]->data;
    const float *dy = nd->out->grad; // (N, C, H, W)
    int fresh = 0;
    float *dx = ssl__grad_write(ctx, nd->in[0], &fresh), *dw = ssl__grad(ctx, nd->in[1]);
    float *db = ssl__grad(ctx, nd->in[2]);
    int64_t hw = d.h * d.w, chw = d.c * hw;
    if (db) {
#pragma omp parallel for schedule(static) if (d.n * chw > SSL_OMP_MIN)
        for (int64_t c = 0; c < d.c; c++) {
            double s = 0;
            for (int64_t i = 0; i < d.n; i++) {
                const float *g = dy + (i * d.c + c) * hw;
                for (int64_t j = 0; j < hw; j++)
                    s += g[j];
            }
            db[c] += (float)s;
        }
    }
    if ((!dx && !dw) || d.n == 0)
        return;
    ssl__model_flops_add((uint64_t)(((dx ? 1 : 0) + (dw ? 1 : 0)) * 2 * d.n * d.oc * d.k * d.p));
    int64_t nb = chunk_for_threads(&d), wsf = ws_floats(&d, nb);
    int64_t n_chunks = (d.n + nb - 1) / nb, nt = ssl__max_threads(), kw = d.oc * d.k;
    gtab_t tab, *tp;
    float *ws = convt_workspace(ctx, &d, dw ? nt * kw : 0, &tab, &tp);
    if (!ws)
        return;
    float *parts = ws + nt * wsf; /* nt partial weight gradients, summed in thread order */
    if (dw)
        memset(parts, 0, (size_t)(nt * kw) * sizeof(float));
#pragma omp parallel if (n_chunks > 1)
    {
        float *col = ws + ssl__thread_id() * wsf, *blk = col + d.k * nb * d.p; // (K, mP), (OC, mP)
        float *pdw = dw ? parts + ssl__thread_id() * kw : NULL;
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            int64_t i0 = ch * nb, m = d.n - i0 < nb ? d.n - i0 : nb, mp = m * d.p;
            im2col(&d, tp, dy + i0 * chw, m, col);
            if (pdw) {
                const float *g = x + i0 * d.oc * d.p;
                if (m > 1) {
                    block_copy(&d, m, blk, (float *)g, NULL, 0);
                    g = blk;
                }
                /* dW (OC, K) += x (OC, m*P) @ col^T (m*P, K) */
                ssl__gemm_inner(ctx, 0, 1, d.oc, d.k, mp, 1.0f, g, mp, col, mp, 1.0f, pdw, d.k);
            }
            if (dx) {
                /* dx block (OC, m*P) = W (OC, K) @ col (K, m*P), onto the images */
                ssl__gemm_inner(ctx, 0, 0, d.oc, mp, d.k, 1.0f, w, d.k, col, mp, 0.0f, blk, mp);
                for (int64_t t = 0; t < m * d.oc; t++) {
                    int64_t j = t / d.oc, o = t % d.oc;
                    const float *b = blk + o * mp + j * d.p;
                    float *di = dx + (i0 * d.oc + t) * d.p;
                    if (fresh)
                        memcpy(di, b, (size_t)d.p * sizeof(float));
                    else
                        for (int64_t q = 0; q < d.p; q++)
                            di[q] += b[q];
                }
            }
        }
    }
    if (dw)
        add_weight_parts(parts, n_chunks > 1 ? nt : 1, kw, dw);
}

const ssl_op_def_t ssl_opdef_conv_transpose2d = {"conv_transpose2d", 1, convt_shape, convt_forward,
                                                 convt_backward, 0};

ssl_tensor_t *ssl_conv_transpose2d(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *w,
                                   ssl_tensor_t *bias, int stride, int padding, int output_padding)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_CONV_TRANSPOSE2D, 3, x, w, bias);
    n.ia[0] = stride;
    n.ia[1] = padding;
    n.ia[2] = output_padding;
    return ssl__apply(ctx, &n);
}
