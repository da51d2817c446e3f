/* Direct 3x3 convolution (stride 1 or 2) for narrow layers (few channels, small maps), where
 * im2col and Winograd GEMMs are too thin to run fast. Stride 1: each image is copied once into
 * a zero-padded plane of width PW = W + 2 pad; output position i = oy * PW + ox then reads
 * input i + ky * PW + kx for every (ky, kx), so a run of 16 consecutive outputs is one vector
 * of 16 consecutive inputs per tap (the two columns past each row are computed and dropped).
 * Stride 2: the padded image is split into its four phases (even / odd rows x even / odd
 * columns), each a plane of width G = ceil(PW / 2); output i = oy * G + ox reads phase
 * (ky % 2, kx % 2) at i + (ky / 2) * G + kx / 2, again one vector per tap. Every tap is thus a
 * fixed offset (off[k]) from the output position. 16 output channels accumulate in registers;
 * each tap's weights are broadcast from a (C, 9, OC16) copy. Backward: the input gradient
 * (stride 1; stride 2 goes through im2col) is the same convolution of dy by the flipped kernel;
 * the weight gradient (stride 1 and 2) is a dot product per (o, c, tap) over the grid positions.
 * Threads own whole images (or chunks of them); weight gradients are per-thread partials summed in
 * thread order. */
#include "core_internal.h"

#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define CL_LANES 1 /* the channels-in-lanes kernel (below) */
static int cl_usable(int64_t c, int64_t oc, int64_t oh, int64_t ow);
static int clw_usable(int64_t c, int64_t oc, int64_t oh, int64_t ow);
#endif

int ssl__conv_direct = 1;
int ssl__conv_direct_s2_dw = 1;
/* 256 KiB per thread: 1 MiB was 0-10% slower (32->32 @14 9.3 vs 8.5 ms, 64->64 @14 34.1 vs
 * 32.1 ms, 256 images, 2 threads) */
int64_t ssl__direct_dw_chunk_floats = (int64_t)1 << 16;

#define OB 16 /* output channels per register block */
#define VL 16 /* positions per vector */

typedef struct dgeom {
    int64_t c, h, w, oc, pad, oh, ow;
    int stride;
    int64_t pw, ph; /* padded input */
    int64_t gw;     /* output grid row length: PW (stride 1) or G = ceil(PW / 2) (stride 2) */
    int64_t ps;     /* positions per image plane: PH * PW, or ceil(PH / 2) * G per phase */
    int64_t plane;  /* floats per plane in a one-image buffer, with slack for the last taps */
    int64_t cs;     /* floats per channel: plane, or 4 phase planes */
    int64_t l;      /* output positions on the grid: OH * GW, rounded up to VL */
    int64_t ocb;    /* OC rounded up to OB */
    int64_t off[9]; /* tap k's offset from the output position, in a one-image buffer */
    int64_t cls;    /* channels in lanes: the stride over plainly padded planes (cl_geom) */
} dgeom_t;

/* off[k] for planes of `plane` floats */
static void tap_offsets(const dgeom_t *g, int64_t plane, int64_t off[9])
{
    for (int k = 0; k < 9; k++) {
        int ky = k / 3, kx = k % 3;
        off[k] = g->stride == 1 ? ky * g->pw + kx
                                : ((ky & 1) * 2 + (kx & 1)) * plane + (ky >> 1) * g->gw + (kx >> 1);
    }
}

static void dgeom(dgeom_t *g, int64_t c, int64_t h, int64_t w, int64_t oc, int64_t pad, int stride)
{
    memset(g, 0, sizeof *g);
    g->c = c;
    g->h = h;
    g->w = w;
    g->oc = oc;
    g->pad = pad;
    g->stride = stride;
    g->pw = w + 2 * pad;
    g->ph = h + 2 * pad;
    g->oh = (g->ph - 3) / stride + 1;
    g->ow = (g->pw - 3) / stride + 1;
    g->gw = stride == 1 ? g->pw : (g->pw + 1) / 2;
    g->ps = stride == 1 ? g->ph * g->pw : (g->ph + 1) / 2 * g->gw;
    g->l = (g->oh * g->gw + VL - 1) / VL * VL;
    /* the last vector's farthest tap: 2 rows and 2 columns on (stride 1), 1 and 1 (stride 2) */
    g->plane = g->l + (stride == 1 ? 2 * g->pw + 2 : g->gw + 1) + VL;
    if (g->plane < g->ps)
        g->plane = g->ps;
    g->plane = (g->plane + VL - 1) / VL * VL; /* planes and output rows start on cache lines */
    g->cs = stride == 1 ? g->plane : 4 * g->plane;
    g->ocb = (oc + OB - 1) / OB * OB;
    g->cls = 1;
    tap_offsets(g, g->plane, g->off);
}

#ifdef CL_LANES
/* The channels-in-lanes kernel's geometry: plainly padded planes (the stride-1 layout, also at
 * stride 2) and the outputs of the given stride; output position (oy, ox) reads its taps from
 * (oy * PW + ox) * stride. */
static void cl_geom(dgeom_t *g, int64_t c, int64_t h, int64_t w, int64_t oc, int64_t pad,
                    int stride)
{
    dgeom(g, c, h, w, oc, pad, 1);
    g->oh = (g->ph - 3) / stride + 1;
    g->ow = (g->pw - 3) / stride + 1;
    g->cls = stride;
}
#endif

int ssl__conv3x3_cl_dw_usable(int64_t c, int64_t oc, int64_t oh, int64_t ow)
{
#ifdef CL_LANES
    return clw_usable(c, oc, oh, ow);
#else
    (void)c, (void)oc, (void)oh, (void)ow;
    return 0;
#endif
}

int ssl__conv3x3_direct_usable(int64_t c, int64_t oc, int64_t h, int64_t w, int64_t kh,
                               int64_t kw, int64_t stride, int64_t pad)
{
    (void)h; /* used by the channels-in-lanes test only */
    /* 64 channels in and out at stride 1 on outputs at least 12 wide: Winograd (with its
     * vectorised transforms) was faster (fwd + bwd, 2 threads: 64->64 @32 131-148 vs 183 ms at
     * 128 images, @16 79-83 vs 101-110 ms and @14 66-73 vs 78-85 ms at 256); at 32 channels, or
     * 7x7 maps, the direct kernel is as fast or faster */
    if (stride == 1 && c >= 64 && oc >= 64 && w + 2 * pad - 2 >= 12 &&
        ssl__conv3x3_winograd_usable(c, oc, w, kh, kw, stride, pad))
        return 0;
#ifdef CL_LANES
    /* outputs up to 7 wide with 32+ output channels: channels in the lanes (stride 1 or 2, up
     * to 128 input channels) */
    if (ssl__conv_direct && kh == 3 && kw == 3 && pad <= 2 && (stride == 1 || stride == 2) &&
        c <= 128 &&
        cl_usable(c, oc, (h + 2 * pad - 3) / stride + 1, (w + 2 * pad - 3) / stride + 1))
        return 1;
#endif
    /* stride 2 on outputs narrower than 7: the grid rows (G = ceil(PW / 2)) waste too much of
     * each vector, and the im2col GEMM was faster (4x4 outputs: 9.0 vs 7.4 ms) */
    return ssl__conv_direct && kh == 3 && kw == 3 && pad <= 2 && c <= 64 &&
           (stride == 1 || (stride == 2 && (w + 2 * pad - 3) / 2 + 1 >= 7));
}

/* Image x (C, H, W) into a buffer of channel stride cs and plane stride ps at position `at` of
 * every plane: zero-padded (stride 1) or split into its four padded phases (stride 2). Only
 * interior positions are written, so the caller zeroes the buffer once and reuses it for every
 * image of the same geometry. */
static void pad_image(const dgeom_t *g, const float *x, float *xp, int64_t cs, int64_t ps,
                      int64_t at)
{
    for (int64_t c = 0; c < g->c; c++) {
        float *dst = xp + c * cs + at;
        const float *xc = x + c * g->h * g->w;
        if (g->stride == 1) {
            for (int64_t y = 0; y < g->h; y++)
                memcpy(dst + (y + g->pad) * g->pw + g->pad, xc + y * g->w,
                       (size_t)g->w * sizeof(float));
            continue;
        }
        for (int64_t y = 0; y < g->h; y++) {
            int64_t py = y + g->pad;
            float *row = dst + (py & 1) * 2 * ps + (py >> 1) * g->gw;
#if defined(__AVX512F__)
            /* input columns 2i (even) land in phase column pad & 1 at i + pad / 2, columns
             * 2i + 1 in the other one at i + (pad + 1) / 2: 32 columns at a time, split by two
             * permutes (the scalar scatter cost as much as the convolution) */
            const __m512i ev =
                _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
            const __m512i od =
                _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
            float *de = row + (g->pad & 1) * ps + g->pad / 2;
            float *dd = row + (1 - (g->pad & 1)) * ps + (g->pad + 1) / 2;
            const float *src = xc + y * g->w;
            for (int64_t x0 = 0; x0 < g->w; x0 += 32) {
                int64_t r = g->w - x0 < 32 ? g->w - x0 : 32, ne = (r + 1) / 2, no = r / 2;
                __m512 lo = _mm512_maskz_loadu_ps(ssl__lanes16(r), src + x0);
                __m512 hi = _mm512_maskz_loadu_ps(ssl__lanes16(r - 16), src + x0 + 16);
                _mm512_mask_storeu_ps(de + x0 / 2, ssl__lanes16(ne),
                                      _mm512_permutex2var_ps(lo, ev, hi));
                _mm512_mask_storeu_ps(dd + x0 / 2, ssl__lanes16(no),
                                      _mm512_permutex2var_ps(lo, od, hi));
            }
#else
            for (int64_t xx = 0; xx < g->w; xx++) {
                int64_t px = xx + g->pad;
                row[(px & 1) * ps + (px >> 1)] = xc[y * g->w + xx];
            }
#endif
        }
    }
}

/* wt (C, 9, OCB) from w (OC, C, 3, 3); flip: the kernel of the input gradient, as (OC, 9, CB)
 * with w'[c, o, k] = w[o, c, 8 - k] (the caller's geometry has C and OC swapped). */
static void weights_taps(const float *w, int64_t oc, int64_t c, int flip, int64_t ocb, float *wt)
{
    /* rows: input channels of the convolution that runs; columns: its output channels */
    int64_t rows = flip ? oc : c;
    memset(wt, 0, (size_t)(rows * 9 * ocb) * sizeof(float));
    for (int64_t o = 0; o < oc; o++)
        for (int64_t ci = 0; ci < c; ci++)
            for (int k = 0; k < 9; k++) {
                float v = w[(o * c + ci) * 9 + k];
                if (flip)
                    wt[(o * 9 + (8 - k)) * ocb + ci] = v;
                else
                    wt[(ci * 9 + k) * ocb + o] = v;
            }
}

/* Where each vector of grid positions goes in an output plane (OH, OW): the mask of its valid
 * positions (column < OW, row < OH) and the plane offset of the first of them. The valid
 * positions in grid order are the plane in row-major order, so a vector's valid lanes, packed
 * to the front, are one contiguous run there. */
typedef struct vmap {
    int64_t at;
    uint16_t mask;
} vmap_t;

static void vector_map(const dgeom_t *g, vmap_t *vm)
{
    int64_t done = 0;
    for (int64_t v = 0; v < g->l / VL; v++) {
        vm[v].at = done;
        vm[v].mask = 0;
        for (int64_t k = 0; k < VL; k++) {
            int64_t p = v * VL + k;
            if (p < g->oh * g->gw && p % g->gw < g->ow) {
                vm[v].mask |= (uint16_t)(1u << k);
                done++;
            }
        }
    }
}

/* y (OC, OH, OW) (+)= taps of xp (C, cs) with wt (C, 9, OCB) + bias. With AVX-512 each vector
 * of 16 outputs goes from its register straight into y (valid lanes packed, one masked store);
 * otherwise through out (OCB, L) and store_image. */
#if !defined(__AVX512F__)
static void store_image(const dgeom_t *g, const float *out, const float *bias, int accumulate,
                        float *y);
#endif
static void conv_image(const dgeom_t *g, const float *xp, const float *wt, const vmap_t *vm,
                       const float *bias, int accumulate, float *y, float *out)
{
    int64_t op = g->oh * g->ow;
    const int64_t *off = g->off;
    for (int64_t ob = 0; ob < g->ocb; ob += OB) {
        for (int64_t i = 0; i < g->l; i += VL) {
#if defined(__AVX512F__)
            __m512 acc[OB];
            for (int q = 0; q < OB; q++)
                acc[q] = _mm512_setzero_ps();
            for (int64_t c = 0; c < g->c; c++) {
                const float *xc = xp + c * g->cs + i;
                const float *wc = wt + c * 9 * g->ocb + ob;
                for (int k = 0; k < 9; k++) {
                    __m512 xv = _mm512_loadu_ps(xc + off[k]);
                    const float *wk = wc + k * g->ocb;
                    for (int q = 0; q < OB; q++)
                        acc[q] = _mm512_fmadd_ps(_mm512_set1_ps(wk[q]), xv, acc[q]);
                }
            }
            const vmap_t *m = vm + i / VL;
            __mmask16 n = ssl__lanes16(__builtin_popcount(m->mask));
            for (int q = 0; q < OB && ob + q < g->oc; q++) {
                __m512 v = _mm512_maskz_compress_ps(m->mask, acc[q]);
                float *dst = y + (ob + q) * op + m->at;
                if (bias)
                    v = _mm512_add_ps(v, _mm512_set1_ps(bias[ob + q]));
                if (accumulate)
                    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(n, dst));
                _mm512_mask_storeu_ps(dst, n, v);
            }
            (void)out;
#else
            float acc[OB][VL];
            memset(acc, 0, sizeof acc);
            for (int64_t c = 0; c < g->c; c++) {
                const float *xc = xp + c * g->cs + i;
                const float *wc = wt + c * 9 * g->ocb + ob;
                for (int k = 0; k < 9; k++) {
                    const float *xv = xc + off[k], *wk = wc + k * g->ocb;
                    for (int q = 0; q < OB; q++)
                        for (int v = 0; v < VL; v++)
                            acc[q][v] += wk[q] * xv[v];
                }
            }
            for (int q = 0; q < OB; q++)
                memcpy(out + (ob + q) * g->l + i, acc[q], sizeof acc[q]);
#endif
        }
    }
#if !defined(__AVX512F__)
    (void)vm;
    (void)op;
    store_image(g, out, bias, accumulate, y);
#endif
}

#if !defined(__AVX512F__)
/* y (OC, OH, OW) (+)= out's valid positions + bias. */
static void store_image(const dgeom_t *g, const float *out, const float *bias, int accumulate,
                        float *y)
{
    for (int64_t o = 0; o < g->oc; o++) {
        float b = bias ? bias[o] : 0.0f;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            const float *src = out + o * g->l + oy * g->gw;
            float *dst = y + (o * g->oh + oy) * g->ow;
            if (accumulate)
                for (int64_t ox = 0; ox < g->ow; ox++)
                    dst[ox] += src[ox] + b;
            else
                for (int64_t ox = 0; ox < g->ow; ox++)
                    dst[ox] = src[ox] + b;
        }
    }
}

#endif

/* ---------------------------------------------------------------- channels in lanes */

/* Small maps (outputs up to 7 wide; the weight gradient up to 14) with 32+ output channels:
 * vectors of 16 output channels instead of 16 positions. A register block of P output
 * positions x NB channel vectors takes, per input channel and tap, NB weight vectors and P
 * broadcast inputs for P x NB FMAs (0.4 loads per FMA, and no grid positions wasted on a
 * 7-wide row in 16 lanes); the block lands in an image buffer (positions, OCB) that one gather
 * pass per image turns into y's planes. */
int ssl__conv_cl = 1;

#if defined(__AVX512F__)

/* A tap list: the taps every position of a block reads, as offsets from the position's base
 * in the padded planes and indices into the weights' 9 taps */
typedef struct cltap {
    int nt;         /* 9 (a forward), or 1, 2 or 4 (one parity of a stride-2 input gradient) */
    int64_t off[9]; /* in the padded plane, from the position's base */
    int64_t k[9];   /* the tap's index in wt (C, 9, OCB) */
} cltap_t;

/* Positions [p0, p0 + P) of np (clamped to the last one; bt: each one's base in the padded
 * planes, rt: its row of out) x output channels [ob, ob + 16 NB), over input channels
 * [c0, c1) (out holds the partial sums of [0, c0)); out rows of stride ld */
#define CL_BLOCK(P, NB)                                                                            \
    static void cl_block_##P##_##NB(const dgeom_t *g, const float *xp, const float *wt,           \
                                    const cltap_t *tp, const int64_t *bt, const int64_t *rt,      \
                                    int64_t np, int64_t c0, int64_t c1, int64_t p0, int64_t ob,   \
                                    float *out, int64_t ld)                                        \
    {                                                                                              \
        int64_t base[P];                                                                           \
        for (int p = 0; p < P; p++)                                                                \
            base[p] = bt[p0 + p < np ? p0 + p : np - 1];                                           \
        __m512 acc[P][NB];                                                                         \
        for (int p = 0; p < P; p++)                                                                \
            for (int b = 0; b < NB; b++)                                                           \
                acc[p][b] = c0 == 0 || p0 + p >= np                                               \
                                ? _mm512_setzero_ps()                                              \
                                : _mm512_loadu_ps(out + rt[p0 + p] * ld + ob + 16 * b);           \
        for (int64_t c = c0; c < c1; c++) {                                                        \
            const float *xc = xp + c * g->cs;                                                      \
            const float *wc = wt + c * 9 * g->ocb + ob;                                            \
            for (int t = 0; t < tp->nt; t++) {                                                     \
                const float *xk = xc + tp->off[t], *wk = wc + tp->k[t] * g->ocb;                   \
                __m512 wv[NB];                                                                     \
                for (int b = 0; b < NB; b++)                                                       \
                    wv[b] = _mm512_loadu_ps(wk + 16 * b);                                          \
                for (int p = 0; p < P; p++) {                                                      \
                    __m512 xb = _mm512_set1_ps(xk[base[p]]);                                       \
                    for (int b = 0; b < NB; b++)                                                   \
                        acc[p][b] = _mm512_fmadd_ps(xb, wv[b], acc[p][b]);                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int p = 0; p < P && p0 + p < np; p++)                                                 \
            for (int b = 0; b < NB; b++)                                                           \
                _mm512_storeu_ps(out + rt[p0 + p] * ld + ob + 16 * b, acc[p][b]);                  \
    }
CL_BLOCK(14, 1)
CL_BLOCK(7, 2)
CL_BLOCK(7, 3)
CL_BLOCK(6, 4)

static int cl_usable(int64_t c, int64_t oc, int64_t oh, int64_t ow)
{
    (void)c;
    return ssl__conv_cl && oc >= 32 && oc % 16 == 0 && ow <= 7 && oh * ow >= 16;
}

/* The weight gradient with channels in the lanes also runs on outputs up to 14 wide (its
 * forward only up to 7): 128 images, 2 threads, 32->32 @14 3.2-3.9 -> 2.5-3.1 ms, 16->32 s2 @28
 * 2.0-2.6 -> 1.6-2.1 ms against the direct weight gradient */
int ssl__clw_max_ow = 14;
static int clw_usable(int64_t c, int64_t oc, int64_t oh, int64_t ow)
{
    (void)c;
    return ssl__conv_cl && oc >= 32 && oc % 16 == 0 && ow <= ssl__clw_max_ow && oh * ow >= 16;
}

/* Lane i of the result: i * s (gather indices of 16 values s floats apart) */
static inline __m512i lane_strides(int64_t s)
{
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    return _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)s));
}

/* Where output position q (of OH x OW) reads its taps in one image's padded planes */
static inline int64_t cl_base(const dgeom_t *g, int64_t q)
{
    return (q / g->ow * g->pw + q % g->ow) * g->cls;
}

/* y (OC, OH, OW) (+)= out (OH OW, OCB) transposed + bias */
static void cl_store(const dgeom_t *g, const float *out, const float *bias, int accumulate,
                     float *y)
{
    int64_t np = g->oh * g->ow;
    const __m512i step = lane_strides(g->ocb);
    for (int64_t o = 0; o < g->oc; o++) {
        const __m512 vb = _mm512_set1_ps(bias ? bias[o] : 0.0f);
        for (int64_t q = 0; q < np; q += 16) {
            __mmask16 m = ssl__lanes16(np - q);
            __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, step,
                                                out + q * g->ocb + o, 4);
            if (bias)
                v = _mm512_add_ps(v, vb);
            float *dst = y + o * np + q;
            if (accumulate)
                v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst), v);
            _mm512_mask_storeu_ps(dst, m, v);
        }
    }
}

/* Input channels per pass: the pass's weights (CL_CB x 9 taps x OCB) stay in L1 while every
 * position block uses them; partial sums go through out (L1 too on these maps). */
#define CL_CB 8

/* out's rows rt of the np positions bt that share the tap list tp += their products over input
 * channels [c0, c1): blocks of 6 positions x 4 channel vectors, else 7 x 3 and 7 x 2 */
static void cl_positions(const dgeom_t *g, const float *xp, const float *wt, const cltap_t *tp,
                         const int64_t *bt, const int64_t *rt, int64_t np, int64_t c0, int64_t c1,
                         float *out)
{
    int64_t nob = g->ocb / 16, pb = nob == 1 ? 14 : nob % 4 == 0 ? 6 : 7;
    for (int64_t p0 = 0; p0 < np; p0 += pb)
        for (int64_t b = 0; b < nob;) {
            if (nob == 1) { /* 16 channels: one vector, 14 positions */
                cl_block_14_1(g, xp, wt, tp, bt, rt, np, c0, c1, p0, 0, out, g->ocb);
                b += 1;
            } else if (pb == 6) {
                cl_block_6_4(g, xp, wt, tp, bt, rt, np, c0, c1, p0, b * 16, out, g->ocb);
                b += 4;
            } else if (nob - b == 2 || nob - b == 4) {
                cl_block_7_2(g, xp, wt, tp, bt, rt, np, c0, c1, p0, b * 16, out, g->ocb);
                b += 2;
            } else {
                cl_block_7_3(g, xp, wt, tp, bt, rt, np, c0, c1, p0, b * 16, out, g->ocb);
                b += 3;
            }
        }
}

/* The forward's tap list and position tables (bt, rt: OH OW each) of geometry g */
static void cl_tables(const dgeom_t *g, cltap_t *tp, int64_t *bt, int64_t *rt)
{
    tp->nt = 9;
    for (int k = 0; k < 9; k++) {
        tp->off[k] = g->off[k];
        tp->k[k] = k;
    }
    for (int64_t q = 0; q < g->oh * g->ow; q++) {
        bt[q] = cl_base(g, q);
        rt[q] = q;
    }
}

/* One image: y (OC, OH, OW) (+)= conv of its padded planes xp + bias */
static void cl_image(const dgeom_t *g, const float *xp, const float *wt, const cltap_t *tp,
                     const int64_t *bt, const int64_t *rt, const float *bias, int accumulate,
                     float *y, float *out)
{
    for (int64_t c0 = 0; c0 < g->c; c0 += CL_CB)
        cl_positions(g, xp, wt, tp, bt, rt, g->oh * g->ow, c0,
                     c0 + CL_CB < g->c ? c0 + CL_CB : g->c, out);
    cl_store(g, out, bias, accumulate, y);
}

/* Weight gradient with output channels in the lanes: dW[o][c][k] = sum over images and
 * positions p of dy[o][p] x[c][p + off_k]. Per image, dy goes to (positions, OCB) by gathers;
 * then per input channel a block of 9 taps x NB channel vectors of accumulators runs over the
 * positions, one broadcast input per tap and NB dy vectors per position (the im2col GEMM this
 * replaces on these maps ran its K = 9 C dimension over 16-49 positions per image). */
#define CLW_BLOCK(NB)                                                                              \
    static void clw_block_##NB(const dgeom_t *g, const float *xc, const int64_t *base,            \
                               int64_t npos, const float *dyt, int64_t ob, float *part)            \
    {                                                                                              \
        __m512 acc[9][NB];                                                                         \
        for (int k = 0; k < 9; k++)                                                                \
            for (int b = 0; b < NB; b++)                                                           \
                acc[k][b] = _mm512_loadu_ps(part + k * g->ocb + ob + 16 * b);                      \
        for (int64_t p = 0; p < npos; p++) {                                                       \
            const float *xk = xc + base[p];                                                        \
            __m512 dv[NB];                                                                         \
            for (int b = 0; b < NB; b++)                                                           \
                dv[b] = _mm512_loadu_ps(dyt + p * g->ocb + ob + 16 * b);                           \
            for (int k = 0; k < 9; k++) {                                                          \
                __m512 xb = _mm512_set1_ps(xk[g->off[k]]);                                         \
                for (int b = 0; b < NB; b++)                                                       \
                    acc[k][b] = _mm512_fmadd_ps(xb, dv[b], acc[k][b]);                             \
            }                                                                                      \
        }                                                                                          \
        for (int k = 0; k < 9; k++)                                                                \
            for (int b = 0; b < NB; b++)                                                           \
                _mm512_storeu_ps(part + k * g->ocb + ob + 16 * b, acc[k][b]);                      \
    }
CLW_BLOCK(3)
CLW_BLOCK(2)

/* part (C, 9, OCB) += a chunk's products: xp its images' padded planes (C planes each), dyt
 * their dy (npos positions, OCB), base each position's offset in xp */
static void clw_chunk(const dgeom_t *g, const float *xp, const float *dyt, const int64_t *base,
                      int64_t npos, float *part)
{
    int64_t nob = g->ocb / 16;
    for (int64_t c = 0; c < g->c; c++) {
        float *pc = part + c * 9 * g->ocb;
        int64_t ob = 0;
        if (nob % 2 != 0)
            for (; ob + 3 <= nob; ob += 3)
                clw_block_3(g, xp + c * g->cs, base, npos, dyt, ob * 16, pc);
        for (; ob < nob; ob += 2)
            clw_block_2(g, xp + c * g->cs, base, npos, dyt, ob * 16, pc);
    }
}

/* dy (OC, P) of one image to dyt (P, OCB) */
static void clw_transpose(const dgeom_t *g, const float *dy, float *dyt)
{
    int64_t np = g->oh * g->ow;
    const __m512i step = lane_strides(np);
    for (int64_t p = 0; p < np; p++)
        for (int64_t ob = 0; ob < g->ocb; ob += 16)
            _mm512_storeu_ps(dyt + p * g->ocb + ob,
                             _mm512_i32gather_ps(step, dy + ob * np + p, 4));
}

/* dw (OC, C, 3, 3) += the weight gradient of the stride-1 layer of geometry g */
static int clw_weight_grad(ssl_ctx_t *ctx, const dgeom_t *g, const float *x, const float *dy,
                           float *dw, int64_t n)
{
    /* chunks of m images, about 128 positions: on 4x4 maps one image's 16 positions per pass
     * paid the accumulators' loads and stores every 16 positions */
    int64_t np = g->oh * g->ow, kw = g->c * 9 * g->ocb, nt = ssl__max_threads();
    int64_t m = np >= 128 ? 1 : (128 + np - 1) / np, chunks = (n + m - 1) / m;
    int64_t per = m * (g->c * g->cs + np * g->ocb) + kw + 64; /* padded x, dyt, partial dW */
    float *ws = ssl__scratch(ctx, (size_t)(nt * per) * sizeof(float) +
                                      (size_t)(m * np) * sizeof(int64_t));
    if (!ws)
        return SSL_ERR_NOMEM;
    int64_t *base = (int64_t *)(ws + nt * per);
    for (int64_t q = 0; q < m * np; q++) /* image q / np of the chunk */
        base[q] = q / np * g->c * g->cs + cl_base(g, q % np);
    int used = chunks > 1 && nt > 1 ? (int)(nt < chunks ? nt : chunks) : 1;
#pragma omp parallel num_threads(used) if (used > 1)
    {
        float *xp = ws + ssl__thread_id() * per, *dyt = xp + m * g->c * g->cs;
        float *part = dyt + m * np * g->ocb;
        memset(xp, 0, (size_t)(m * g->c * g->cs) * sizeof(float));
        memset(part, 0, (size_t)kw * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < chunks; ch++) {
            int64_t j0 = ch * m, mj = n - j0 < m ? n - j0 : m;
            for (int64_t j = 0; j < mj; j++) {
                pad_image(g, x + (j0 + j) * g->c * g->h * g->w, xp + j * g->c * g->cs, g->cs,
                          g->plane, 0);
                clw_transpose(g, dy + (j0 + j) * g->oc * np, dyt + j * np * g->ocb);
            }
            clw_chunk(g, xp, dyt, base, mj * np, part);
        }
    }
#pragma omp parallel for schedule(static) if (kw > SSL_OMP_MIN)
    for (int64_t i = 0; i < g->oc * g->c * 9; i++) {
        int64_t o = i / (g->c * 9), ck = i % (g->c * 9);
        float s = 0;
        for (int t = 0; t < used; t++) /* in thread order: deterministic */
            s += ws[t * per + m * (g->c * g->cs + np * g->ocb) + ck * g->ocb + o];
        dw[i] += s;
    }
    return SSL_OK;
}

/* Input gradient of a 3x3 stride-2 layer (padding 1) with channels in the lanes: dx position
 * (iy, ix) gathers dy at taps that depend on its parity, (iy + 1) % 2 and (ix + 1) % 2: one tap
 * (ky = 1) or two (ky = 0 at dy row a, ky = 2 at row a - 1, a = (iy + 1) / 2) per axis. The
 * positions of each of the four parities share one tap list, so blocks of them run like the
 * forward's, reading dy's zero-padded planes (no im2col columns, no col2im); the outputs land
 * in the image buffer by dx position and reach dx by the same gather pass. */

int ssl__conv3x3_s2_dx_usable(int64_t c, int64_t h, int64_t w, int64_t pad)
{
    /* up to 32 channels also on inputs up to 28 wide (128 images, 2 threads, dx only: 16->32
     * @28 7.3 -> 5.1 ms, 32->64 @28 15.5 -> 12.4 ms against im2col; 64->128 @32 and 128->256
     * @16 were slower) */
    return ssl__conv_cl && pad == 1 && c >= 16 && c % 16 == 0 && h * w >= 16 &&
           (w <= 14 || (c <= 32 && w <= 28));
}

/* dx (n, C, H, W) (+)= the input gradient of the stride-2, padding-1 layer w (OC, C, 3, 3)
 * for dy (n, OC, OH, OW) */
int ssl__conv3x3_s2_dx(ssl_ctx_t *ctx, const float *w, const float *dy, float *dx, int dx_add,
                       int64_t n, int64_t c, int64_t h, int64_t wd, int64_t oc)
{
    int64_t oh = (h - 1) / 2 + 1, ow = (wd - 1) / 2 + 1, np = h * wd;
    dgeom_t g; /* dy's planes, padded by 1, as the runs' input; outputs: dx's channels */
    dgeom(&g, oc, oh, ow, c, 1, 1);
    dgeom_t go = g; /* what cl_store writes: dx's (C, H, W) from (positions, CB) */
    go.oh = h;
    go.ow = wd;
    int64_t wtf = oc * 9 * g.ocb, outf = (np * g.ocb + VL - 1) / VL * VL;
    int64_t per = oc * g.cs + outf + 64, nt = ssl__max_threads();
    float *wt = ssl__scratch(ctx, (size_t)(wtf + nt * per) * sizeof(float) +
                                      (size_t)(2 * np) * sizeof(int64_t));
    if (!wt)
        return SSL_ERR_NOMEM;
    float *ws = wt + wtf;
    int64_t *bt = (int64_t *)(ws + nt * per), *rt = bt + np;
    weights_taps(w, oc, c, 1, g.ocb, wt);
    /* positions grouped by parity: bt their base in dy's padded plane, rt their dx position */
    cltap_t taps[4];
    int64_t first[5] = {0}, q = 0;
    for (int ph = 0; ph < 4; ph++) {
        int ry = ph >> 1, rx = ph & 1;
        cltap_t *t = &taps[ph];
        t->nt = 0;
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++)
                if (ky % 2 == ry && kx % 2 == rx) {
                    t->off[t->nt] = (ky == 2 ? -g.pw : 0) + (kx == 2 ? -1 : 0);
                    t->k[t->nt] = 8 - (3 * ky + kx);
                    t->nt++;
                }
        first[ph] = q;
        for (int64_t iy = 0; iy < h; iy++)
            for (int64_t ix = 0; ix < wd; ix++)
                if ((iy + 1) % 2 == ry && (ix + 1) % 2 == rx) {
                    bt[q] = ((iy + 1) / 2 + 1) * g.pw + (ix + 1) / 2 + 1;
                    rt[q++] = iy * wd + ix;
                }
    }
    first[4] = q;
#pragma omp parallel if (n > 1)
    {
        float *xp = ws + ssl__thread_id() * per, *out = xp + oc * g.cs;
        memset(xp, 0, (size_t)(oc * g.cs) * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t j = 0; j < n; j++) {
            pad_image(&g, dy + j * oc * oh * ow, xp, g.cs, g.plane, 0);
            for (int64_t c0 = 0; c0 < oc; c0 += CL_CB) {
                int64_t c1 = c0 + CL_CB < oc ? c0 + CL_CB : oc;
                for (int ph = 0; ph < 4; ph++)
                    cl_positions(&g, xp, wt, &taps[ph], bt + first[ph], rt + first[ph],
                                 first[ph + 1] - first[ph], c0, c1, out);
            }
            cl_store(&go, out, NULL, dx_add, dx + j * c * np);
        }
    }
    return SSL_OK;
}

#else
int ssl__conv3x3_s2_dx_usable(int64_t c, int64_t h, int64_t w, int64_t pad)
{
    (void)c, (void)h, (void)w, (void)pad;
    return 0;
}

int ssl__conv3x3_s2_dx(ssl_ctx_t *ctx, const float *w, const float *dy, float *dx, int dx_add,
                       int64_t n, int64_t c, int64_t h, int64_t wd, int64_t oc)
{
    (void)ctx, (void)w, (void)dy, (void)dx, (void)dx_add, (void)n, (void)c, (void)h, (void)wd,
        (void)oc;
    return ssl_set_error(SSL_ERR_UNSUPPORTED, "conv2d: the channels-in-lanes input gradient "
                                              "needs AVX-512");
}
#endif

/* The padded input, then the output block: (positions, OCB) of the channels-in-lanes kernel, or
 * (without AVX-512) what store_image reads. */
static int64_t ws_floats(const dgeom_t *g)
{
#if defined(__AVX512F__)
    /* channels in lanes: out (positions, OCB), then the position tables (2 int64 each) */
    int64_t np = g->oh * g->ow;
    int64_t cl = g->stride == 1 && cl_usable(g->c, g->oc, g->oh, g->ow)
                     ? (np * g->ocb + VL - 1) / VL * VL + (4 * np + VL - 1) / VL * VL
                     : 0;
    return g->c * g->cs + cl + 64;
#else
    return g->c * g->cs + g->ocb * g->l + 64;
#endif
}
/* (every term is a multiple of VL floats, so each thread's workspace stays 64-byte aligned) */

/* Floats of scratch for the vector map (a multiple of VL: what follows stays aligned). */
static int64_t vmap_floats(const dgeom_t *g)
{
    return (g->l / VL * (int64_t)sizeof(vmap_t) / (int64_t)sizeof(float) + VL - 1) / VL * VL;
}

/* y (n, OC, OH, OW) (+)= conv(x, wt) + bias, threads over images; ws holds the threads'
 * workspaces (ws_floats each), vmb vmap_floats. */
static void direct_conv(const dgeom_t *g, const float *wt, const float *x, int64_t n,
                        const float *bias, int accumulate, float *y, float *ws, float *vmb)
{
    int64_t wsf = ws_floats(g);
    vmap_t *vm = (vmap_t *)vmb;
    vector_map(g, vm);
#pragma omp parallel if (n > 1)
    {
        float *xp = ws + ssl__thread_id() * wsf, *out = xp + g->c * g->cs;
        memset(xp, 0, (size_t)(g->c * g->cs) * sizeof(float));
#ifdef CL_LANES
        const int cl = g->stride == 1 && cl_usable(g->c, g->oc, g->oh, g->ow);
        cltap_t tp;
        int64_t *bt = (int64_t *)(out + (g->oh * g->ow * g->ocb + VL - 1) / VL * VL);
        int64_t *rt = bt + g->oh * g->ow;
        if (cl)
            cl_tables(g, &tp, bt, rt);
#endif
#pragma omp for schedule(static)
        for (int64_t j = 0; j < n; j++) {
            pad_image(g, x + j * g->c * g->h * g->w, xp, g->cs, g->plane, 0);
#ifdef CL_LANES
            if (cl) {
                cl_image(g, xp, wt, &tp, bt, rt, bias, accumulate,
                         y + j * g->oc * g->oh * g->ow, out);
                continue;
            }
#endif
            conv_image(g, xp, wt, vm, bias, accumulate, y + j * g->oc * g->oh * g->ow, out);
        }
    }
}

int ssl__conv3x3_direct_forward(ssl_ctx_t *ctx, const float *x, const float *w, const float *bias,
                                float *y, int64_t n, int64_t c, int64_t h, int64_t wd, int64_t oc,
                                int64_t pad, int stride)
{
    dgeom_t g;
    dgeom(&g, c, h, wd, oc, pad, stride);
#ifdef CL_LANES
    if (stride == 2 && cl_usable(c, oc, g.oh, g.ow))
        cl_geom(&g, c, h, wd, oc, pad, 2); /* direct_conv takes the channels-in-lanes kernel */
#endif
    int64_t wtf = c * 9 * g.ocb;
    int64_t wsf = ssl__max_threads() * ws_floats(&g);
    float *wt = ssl__scratch(ctx, (size_t)(wtf + wsf + vmap_floats(&g)) * sizeof(float));
    if (!wt)
        return SSL_ERR_NOMEM;
    weights_taps(w, oc, c, 0, g.ocb, wt);
    direct_conv(&g, wt, x, n, bias, 0, y, wt + wtf, wt + wtf + wsf);
    return SSL_OK;
}

/* dW partial (OC, C, 9, VL) += dot products of dyp (OCB rows of stride dys; zero off the valid
 * positions and in the rows past OC) with the taps of xp (channel stride cs, tap offsets off),
 * over the first
 * len positions (a multiple of VL), kept as VL lanes (summed once at the end: on small maps a
 * horizontal sum per image would cost more than the products). Blocks of 8 output channels x
 * one row of 3 taps: 24 accumulators, each dy vector reused for 3 taps and each input vector
 * for 8 channels. */
#define WB 8
static void weight_grad_image(const dgeom_t *g, const float *xp, int64_t cs, const int64_t off[9],
                              const float *dyp, int64_t dys, int64_t len, float *dw)
{
    for (int64_t ob = 0; ob < g->oc; ob += WB) {
        int64_t nob = g->oc - ob < WB ? g->oc - ob : WB;
        for (int64_t c = 0; c < g->c; c++)
            for (int ky = 0; ky < 3; ky++) {
                const float *x0p = xp + c * cs + off[3 * ky], *x1p = xp + c * cs + off[3 * ky + 1];
                const float *x2p = xp + c * cs + off[3 * ky + 2], *go = dyp + ob * dys;
                float sums[WB][3];
#if defined(__AVX512F__)
                __m512 acc[WB][3];
                for (int q = 0; q < WB; q++)
                    for (int kx = 0; kx < 3; kx++)
                        acc[q][kx] = q < nob ? _mm512_loadu_ps(
                                                   dw + (((ob + q) * g->c + c) * 9 + ky * 3 + kx) * VL)
                                             : _mm512_setzero_ps();
                for (int64_t i = 0; i < len; i += VL) {
                    __m512 x0 = _mm512_loadu_ps(x0p + i), x1 = _mm512_loadu_ps(x1p + i),
                           x2 = _mm512_loadu_ps(x2p + i);
                    for (int q = 0; q < WB; q++) {
                        __m512 gv = _mm512_loadu_ps(go + q * dys + i);
                        /* keeps gv in a register: GCC otherwise folds the load into each of
                         * the three FMAs, 27 loads per 24 FMAs, and the loads bind (16->16 at
                         * 28x28, 1 thread: 21 -> 13 ms) */
                        __asm__("" : "+v"(gv));
                        acc[q][0] = _mm512_fmadd_ps(gv, x0, acc[q][0]);
                        acc[q][1] = _mm512_fmadd_ps(gv, x1, acc[q][1]);
                        acc[q][2] = _mm512_fmadd_ps(gv, x2, acc[q][2]);
                    }
                }
                for (int64_t q = 0; q < nob; q++)
                    for (int kx = 0; kx < 3; kx++)
                        _mm512_storeu_ps(dw + (((ob + q) * g->c + c) * 9 + ky * 3 + kx) * VL,
                                         acc[q][kx]);
                (void)sums;
#else
                for (int q = 0; q < WB; q++)
                    for (int kx = 0; kx < 3; kx++) {
                        float sum = 0;
                        const float *xk = kx == 0 ? x0p : kx == 1 ? x1p : x2p;
                        for (int64_t i = 0; i < len; i++)
                            sum += go[q * dys + i] * xk[i];
                        sums[q][kx] = sum;
                    }
                for (int64_t q = 0; q < nob; q++)
                    for (int kx = 0; kx < 3; kx++)
                        dw[(((ob + q) * g->c + c) * 9 + ky * 3 + kx) * VL] += sums[q][kx];
#endif
            }
    }
}

int ssl__conv3x3_direct_backward(ssl_ctx_t *ctx, const float *x, const float *w, const float *dy,
                                 float *dx, int dx_add, float *dw, int64_t n, int64_t c, int64_t h,
                                 int64_t wd, int64_t oc, int64_t pad, int stride)
{
    if (stride != 1 && dx)
        return ssl_set_error(SSL_ERR_INVALID, "direct conv: the input gradient needs stride 1");
    dgeom_t g, gb; /* forward geometry; the input gradient's: dy -> dx, padding 2 - pad */
    dgeom(&g, c, h, wd, oc, pad, stride);
    dgeom(&gb, oc, g.oh, g.ow, c, 2 - pad, 1);
    int64_t nt = ssl__max_threads(), kw = oc * c * 9;
    int64_t wtf = gb.c * 9 * gb.ocb;
    /* weight gradient: chunks of m images side by side, image j's padded plane (or phases) of
     * S positions, and dy on the same grid, at j * S in every row, so one accumulator pass runs
     * over m * S positions (on 7x7 maps one image is 4 vectors: per-image passes cost as much in
     * accumulator loads and stores as in products). Reads stay inside an image's plane wherever
     * dy is non-zero; the row tails cover the last vector's taps. */
    int64_t S = g.ps, per_img = (c + g.ocb) * S;
    int64_t m = dw ? ssl__balanced_chunk(n, ssl__direct_dw_chunk_floats / per_img) : 1;
    /* xs: one plane (stride 2: one of the four phase planes) of the chunk, with room for the
     * farthest tap of the last vector */
    int64_t reach = stride == 1 ? 2 * g.pw + 2 : g.gw + 1;
    int64_t dys = (m * S + VL - 1) / VL * VL, xs = (dys + reach + VL + VL - 1) / VL * VL;
    int64_t cs = stride == 1 ? xs : 4 * xs, off[9];
    tap_offsets(&g, xs, off);
    int64_t wsw = c * cs + g.ocb * dys + 64;
    int64_t wsb = ws_floats(&gb), per = wsb > wsw ? wsb : wsw;
    float *wt = ssl__scratch(ctx, (size_t)(wtf + nt * per + nt * kw * VL + vmap_floats(&gb)) *
                                      sizeof(float));
    if (!wt)
        return SSL_ERR_NOMEM;
    float *ws = wt + wtf, *parts = ws + nt * per;
    if (dx) {
        weights_taps(w, oc, c, 1, gb.ocb, wt);
        direct_conv(&gb, wt, dy, n, NULL, dx_add, dx, ws, parts + nt * kw * VL);
    }
    if (!dw)
        return SSL_OK;
#ifdef CL_LANES
    if (clw_usable(c, oc, g.oh, g.ow)) { /* dx is done: the scratch is free */
        dgeom_t gl;
        cl_geom(&gl, c, h, wd, oc, pad, stride);
        return clw_weight_grad(ctx, &gl, x, dy, dw, n);
    }
#endif
    memset(parts, 0, (size_t)(nt * kw * VL) * sizeof(float));
    int64_t n_chunks = (n + m - 1) / m;
#pragma omp parallel if (n_chunks > 1)
    {
        float *xp = ws + ssl__thread_id() * per, *dyp = xp + c * cs;
        float *pdw = parts + ssl__thread_id() * kw * VL;
        /* padding, the columns past each row and the rows past OC stay zero from here on:
         * every chunk writes only the same interior positions */
        memset(xp, 0, (size_t)(c * cs + g.ocb * dys) * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            int64_t j0 = ch * m, mj = n - j0 < m ? n - j0 : m;
            for (int64_t j = 0; j < mj; j++) {
                const float *gj = dy + (j0 + j) * oc * g.oh * g.ow;
                pad_image(&g, x + (j0 + j) * c * h * wd, xp, cs, xs, j * S);
                for (int64_t o = 0; o < oc; o++)
                    for (int64_t oy = 0; oy < g.oh; oy++)
                        memcpy(dyp + o * dys + j * S + oy * g.gw, gj + (o * g.oh + oy) * g.ow,
                               (size_t)g.ow * sizeof(float));
            }
            /* up to the last image's last output row (its padding rows hold no dy) */
            int64_t len = ((mj - 1) * S + g.oh * g.gw + VL - 1) / VL * VL;
            if (mj < m && len > mj * S) /* into a slot past a shorter last chunk: its dy is
                                         * an earlier chunk's */
                for (int64_t o = 0; o < oc; o++)
                    memset(dyp + o * dys + mj * S, 0, (size_t)(len - mj * S) * sizeof(float));
            weight_grad_image(&g, xp, cs, off, dyp, dys, len, pdw);
        }
    }
    int64_t used = n_chunks > 1 ? nt : 1;
#pragma omp parallel for schedule(static) if (kw > SSL_OMP_MIN)
    for (int64_t i = 0; i < kw; i++) {
        float s = 0;
        for (int64_t t = 0; t < used; t++) /* in thread and lane order: deterministic */
            for (int v = 0; v < VL; v++)
                s += parts[(t * kw + i) * VL + v];
        dw[i] += s;
    }
    return SSL_OK;
}
