/* 3x3 stride-1 convolutions with padding 1 by Winograd's F(4x4, 3x3) (Lavin & Gray 2016), with
 * channels in the vector lanes (AVX-512): 16-512 channels (multiples of 16) on maps up to 32
 * wide.
 *
 * Every 4x4 output tile is A^T [(G g G^T) . (B^T d B)] A over its 6x6 input tile d: 36
 * multiplications per tile and channel pair instead of a direct convolution's 144 (on 7x7
 * maps four tiles cover 8x8: 3x fewer; on 4x4 maps one tile is the whole padded image). The 36
 * products are 36 GEMMs, one per point xi of the 6x6 transform domain:
 *   M_xi (tiles, OC) = V_xi (tiles, C) U_xi (C, OC),
 * with V's rows running over channels, so a transform works on vectors of 16 channels of one
 * tile (no lane is wasted on a map's edge, as the tile-in-lanes F(2x2) of ops_conv_winograd.c
 * wastes 12 of 16 lanes on a 4x4 map). An image is first copied channels-last (16 x 16
 * register transposes) into a padded plane (ph, pw, C) whose border stays zero.
 *
 * Backward: the input gradient is the same convolution of dy by the flipped, transposed kernel
 * (padding 1); the weight gradient is the exact chain rule through the three transforms:
 * dU_xi (C, OC) = V_xi^T dM_xi with dM = A dY A^T per tile, then dg = G^T dU G.
 *
 * Two ways to run (fused_path): layers of 16-64 channels on maps wider than 8 take one image
 * at a time per thread, every buffer in the thread's cache, the GEMMs by a register-blocked
 * kernel over the image's tiles; the others go in chunks of images (the transformed tiles of a
 * chunk stay in the L2/L3 caches), threads taking images for the transforms and points xi for
 * OpenBLAS's GEMMs (one thread each), so the 36 U matrices are shared by a chunk's tiles.
 *
 * In float, F(4x4)'s transforms (coefficients up to 8 and 1/24) round to about 2e-5 of the
 * values' scale, against about 1e-6 for the direct kernels (cuDNN and NNPACK train with the
 * same or larger tiles). */
#include "core_internal.h"

#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

int ssl__conv_wino4 = 1;
#define W4_MAX_SIDE 32
int64_t ssl__wino4_chunk_floats = (int64_t)1 << 20;

#if defined(__AVX512F__)

typedef struct w4geom {
    int64_t c, oc, h, w; /* input (C, H, W); the output is (OC, H, W) (padding 1) */
    int64_t th, tw, t;   /* 4x4 tiles over the output: th x tw = t per image */
    int64_t ph, pw;      /* the padded channels-last plane: 4 th + 2 rows of 4 tw + 2 */
} w4geom_t;

static void w4_geom(w4geom_t *g, int64_t c, int64_t h, int64_t w, int64_t oc)
{
    g->c = c;
    g->oc = oc;
    g->h = h;
    g->w = w;
    g->th = (h + 3) / 4;
    g->tw = (w + 3) / 4;
    g->t = g->th * g->tw;
    g->ph = 4 * g->th + 2;
    g->pw = 4 * g->tw + 2;
}

/* Images per chunk: the transformed tiles of a chunk (floats per image: per_image) within the
 * budget, chunks equal to within one image (the threads share each chunk, so their number
 * need not be a multiple of the thread count) */
static int64_t w4_chunk(int64_t n, int64_t per_image)
{
    return ssl__even_chunk(n, ssl__wino4_chunk_floats / per_image, 1);
}

/* G (6x3) of F(4x4, 3x3) on the points 0, 1, -1, 2, -2 and infinity */
static const float G4[6][3] = {{0.25f, 0.0f, 0.0f},
                               {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                               {-1.0f / 6, 1.0f / 6, -1.0f / 6},
                               {1.0f / 24, 1.0f / 12, 1.0f / 6},
                               {1.0f / 24, -1.0f / 12, 1.0f / 6},
                               {0.0f, 0.0f, 1.0f}};

/* u (36) = G g G^T for 16 kernels at once, one per lane */
static inline void weight_tile16(const __m512 g[9], __m512 u[36])
{
    __m512 t[6][3];
    for (int i = 0; i < 6; i++)
        for (int b = 0; b < 3; b++)
            t[i][b] =
                _mm512_fmadd_ps(_mm512_set1_ps(G4[i][0]), g[b],
                                _mm512_fmadd_ps(_mm512_set1_ps(G4[i][1]), g[3 + b],
                                                _mm512_mul_ps(_mm512_set1_ps(G4[i][2]), g[6 + b])));
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
            u[i * 6 + j] =
                _mm512_fmadd_ps(t[i][0], _mm512_set1_ps(G4[j][0]),
                                _mm512_fmadd_ps(t[i][1], _mm512_set1_ps(G4[j][1]),
                                                _mm512_mul_ps(t[i][2], _mm512_set1_ps(G4[j][2]))));
}

/* dg (9) = G^T du G for 16 kernels at once */
static inline void weight_tile_adjoint16(const __m512 du[36], __m512 dg[9])
{
    __m512 t[3][6];
    for (int a = 0; a < 3; a++)
        for (int j = 0; j < 6; j++) {
            __m512 s = _mm512_mul_ps(_mm512_set1_ps(G4[0][a]), du[j]);
            for (int i = 1; i < 6; i++)
                s = _mm512_fmadd_ps(_mm512_set1_ps(G4[i][a]), du[i * 6 + j], s);
            t[a][j] = s;
        }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            __m512 s = _mm512_mul_ps(t[a][0], _mm512_set1_ps(G4[0][b]));
            for (int j = 1; j < 6; j++)
                s = _mm512_fmadd_ps(t[a][j], _mm512_set1_ps(G4[j][b]), s);
            dg[a * 3 + b] = s;
        }
}

/* U (36, C, OC) from w (OC, C, 3, 3), or with flip (36, OC, C) from the kernel of the input
 * gradient, w'[c, o] = w[o, c] rotated by 180 degrees: 16 of U's columns at a time, their
 * kernels gathered (C * 9 floats apart, or 9 when flipped). */
static void weights_in(const float *w, int64_t oc, int64_t c, int flip, float *U)
{
    int64_t plane = oc * c, cols = flip ? c : oc;
    __m512i step =
        _mm512_mullo_epi32(_mm512_set1_epi32((int)(flip ? 9 : c * 9)),
                           _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
#pragma omp parallel for schedule(static) if (plane * 36 > SSL_OMP_MIN)
    for (int64_t at = 0; at < plane; at += 16) { /* U's row r, columns q..q+15 */
        int64_t r = at / cols, q = at % cols;
        const float *src = flip ? w + (r * c + q) * 9 : w + (q * c + r) * 9;
        __m512 g[9], u[36];
        for (int k = 0; k < 9; k++)
            g[k] = _mm512_i32gather_ps(step, src + (flip ? 8 - k : k), 4);
        weight_tile16(g, u);
        for (int xi = 0; xi < 36; xi++)
            _mm512_storeu_ps(U + xi * plane + at, u[xi]);
    }
}

/* dw (OC, C, 3, 3) += G^T dU G from dU (36, C, OC): 16 output channels at a time, gathered
 * and scattered C * 9 floats apart. */
static void weights_out(const float *dU, int64_t oc, int64_t c, float *dw)
{
    int64_t plane = oc * c;
    __m512i step =
        _mm512_mullo_epi32(_mm512_set1_epi32((int)(c * 9)),
                           _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
#pragma omp parallel for schedule(static) if (plane * 36 > SSL_OMP_MIN)
    for (int64_t at = 0; at < plane; at += 16) { /* at = ci * OC + o */
        int64_t ci = at / oc, o = at % oc;
        float *dst = dw + (o * c + ci) * 9;
        __m512 du[36], dg[9];
        for (int xi = 0; xi < 36; xi++)
            du[xi] = _mm512_loadu_ps(dU + xi * plane + at);
        weight_tile_adjoint16(du, dg);
        for (int k = 0; k < 9; k++)
            _mm512_i32scatter_ps(dst + k, step,
                                 _mm512_add_ps(_mm512_i32gather_ps(step, dst + k, 4), dg[k]), 4);
    }
}

/* r[j] lane l <- r[l] lane j (the unpack / shuffle sequence of a 16 x 16 transpose) */
static inline void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 16; i += 8)
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + 4 + j], 0x88);
            t[i + 4 + j] = _mm512_shuffle_f32x4(r[i + j], r[i + 4 + j], 0xdd);
        }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
    }
}

/* Between one image's planes (k, H, W) and a channels-last buffer (rows bw positions wide,
 * the image at row and column b0), in blocks of 16 channels x 16 positions of a row, each
 * transposed in registers. into_buf: buffer = planes; else planes = (add ? planes : bias) +
 * buffer. */
static void relayout(const w4geom_t *g, int64_t k, float *planes, float *buf, int64_t bw,
                     int64_t b0, int into_buf, const float *bias, int add)
{
    int64_t hw = g->h * g->w;
    for (int64_t yy = 0; yy < g->h; yy++)
        for (int64_t x0 = 0; x0 < g->w; x0 += 16) {
            int64_t nv = g->w - x0 < 16 ? g->w - x0 : 16;
            __mmask16 m = ssl__lanes16(nv);
            float *pl = planes + yy * g->w + x0, *bf = buf + ((yy + b0) * bw + x0 + b0) * k;
            for (int64_t cb = 0; cb < k; cb += 16) {
                __m512 r[16];
                if (into_buf) {
                    for (int j = 0; j < 16; j++)
                        r[j] = _mm512_maskz_loadu_ps(m, pl + (cb + j) * hw);
                    transpose16(r);
                    for (int64_t l = 0; l < nv; l++)
                        _mm512_storeu_ps(bf + l * k + cb, r[l]);
                    continue;
                }
                for (int64_t l = 0; l < 16; l++)
                    r[l] = l < nv ? _mm512_loadu_ps(bf + l * k + cb) : _mm512_setzero_ps();
                transpose16(r);
                for (int j = 0; j < 16; j++) {
                    float *o = pl + (cb + j) * hw;
                    __m512 v =
                        add ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, o), r[j])
                            : _mm512_add_ps(r[j], _mm512_set1_ps(bias ? bias[cb + j] : 0.0f));
                    _mm512_mask_storeu_ps(o, m, v);
                }
            }
        }
}

/* one image's planes (k, H, W) into the interior of the padded channels-last plane P (ph, pw,
 * k), at row and column 1 */
static void to_channels_last(const w4geom_t *g, const float *x, int64_t k, float *P)
{
    relayout(g, k, (float *)x, P, g->pw, 1, 1, NULL, 0); /* x is only read */
}

/* r = B^T d for 6 vectors */
static inline void bt6(const __m512 d[6], __m512 r[6])
{
    const __m512 c4 = _mm512_set1_ps(4.0f), c5 = _mm512_set1_ps(5.0f), c2 = _mm512_set1_ps(2.0f);
    __m512 a = _mm512_fnmadd_ps(c4, d[2], d[4]); /* d4 - 4 d2 */
    __m512 b = _mm512_fnmadd_ps(c4, d[1], d[3]); /* d3 - 4 d1 */
    __m512 e = _mm512_sub_ps(d[4], d[2]);
    __m512 f = _mm512_mul_ps(c2, _mm512_sub_ps(d[3], d[1]));
    r[0] = _mm512_fmadd_ps(c4, d[0], _mm512_fnmadd_ps(c5, d[2], d[4]));
    r[1] = _mm512_add_ps(a, b);
    r[2] = _mm512_sub_ps(a, b);
    r[3] = _mm512_add_ps(e, f);
    r[4] = _mm512_sub_ps(e, f);
    r[5] = _mm512_fmadd_ps(c4, d[1], _mm512_fnmadd_ps(c5, d[3], d[5]));
}

/* r (6) = A y for 4 vectors: the adjoint of at6 */
static inline void a6(const __m512 y[4], __m512 r[6])
{
    const __m512 c2 = _mm512_set1_ps(2.0f), c4 = _mm512_set1_ps(4.0f), c8 = _mm512_set1_ps(8.0f);
    __m512 e = _mm512_add_ps(y[0], y[2]), o = _mm512_add_ps(y[1], y[3]);
    __m512 e2 = _mm512_fmadd_ps(c4, y[2], y[0]),
           o2 = _mm512_fmadd_ps(c8, y[3], _mm512_mul_ps(c2, y[1]));
    r[0] = y[0];
    r[1] = _mm512_add_ps(e, o);
    r[2] = _mm512_sub_ps(e, o);
    r[3] = _mm512_add_ps(e2, o2);
    r[4] = _mm512_sub_ps(e2, o2);
    r[5] = y[3];
}

/* r (4) = A^T m for 6 vectors */
static inline void at6(const __m512 m[6], __m512 r[4])
{
    const __m512 c2 = _mm512_set1_ps(2.0f), c4 = _mm512_set1_ps(4.0f), c8 = _mm512_set1_ps(8.0f);
    __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
    __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
    r[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
    r[1] = _mm512_fmadd_ps(c2, d34, d12);
    r[2] = _mm512_fmadd_ps(c4, s34, s12);
    r[3] = _mm512_add_ps(_mm512_fmadd_ps(c8, d34, d12), m[5]);
}

/* The 36 transformed points of an image's tiles from its padded channels-last plane P (k
 * channels): V + (xi * ld + t0 + tile) * k. adjoint 0: B^T d B over the 6x6 tile at (4 ty, 4 tx)
 * of P; 1: A dY A^T over the 4x4 block at (4 ty + 1, 4 tx + 1) (dy's tiles for the weight
 * gradient). */
static void tiles_in(const w4geom_t *g, const float *P, int64_t k, int adjoint, float *V,
                     int64_t ld, int64_t t0)
{
    for (int64_t ty = 0; ty < g->th; ty++)
        for (int64_t tx = 0; tx < g->tw; tx++) {
            float *dst = V + (t0 + ty * g->tw + tx) * k;
            for (int64_t cb = 0; cb < k; cb += 16) {
                __m512 t[6][6], col[6], r[6];
                /* columns (t = B^T d, or A dY), then rows ((B^T d) B, or (A dY) A^T) */
                int nin = adjoint ? 4 : 6, o = adjoint ? 1 : 0;
                const float *src = P + ((4 * ty + o) * g->pw + 4 * tx + o) * k + cb;
                for (int j = 0; j < nin; j++) {
                    for (int i = 0; i < nin; i++)
                        col[i] = _mm512_loadu_ps(src + (i * g->pw + j) * k);
                    if (adjoint)
                        a6(col, r);
                    else
                        bt6(col, r);
                    for (int i = 0; i < 6; i++)
                        t[i][j] = r[i];
                }
                for (int i = 0; i < 6; i++) {
                    if (adjoint)
                        a6(t[i], r);
                    else
                        bt6(t[i], r);
                    for (int j = 0; j < 6; j++)
                        _mm512_storeu_ps(dst + (i * 6 + j) * ld * k + cb, r[j]);
                }
            }
        }
}

/* One image's outputs (k, H, W) from the 36 planes M + (xi * ld + t0 + tile) * k: A^T m A per
 * tile into the channels-last buffer Q (4 th, 4 tw, k), then y = (add ? y : 0) + bias + Q's
 * values inside the map. */
static void tiles_out(const w4geom_t *g, const float *M, int64_t k, int64_t ld, int64_t t0,
                      float *Q, const float *bias, int add, float *y)
{
    int64_t qw = 4 * g->tw;
    for (int64_t ty = 0; ty < g->th; ty++)
        for (int64_t tx = 0; tx < g->tw; tx++) {
            const float *src = M + (t0 + ty * g->tw + tx) * k;
            for (int64_t cb = 0; cb < k; cb += 16) {
                __m512 s[4][6], col[6], r[4];
                for (int j = 0; j < 6; j++) { /* columns: A^T m */
                    for (int i = 0; i < 6; i++)
                        col[i] = _mm512_loadu_ps(src + (i * 6 + j) * ld * k + cb);
                    at6(col, r);
                    for (int a = 0; a < 4; a++)
                        s[a][j] = r[a];
                }
                for (int a = 0; a < 4; a++) { /* rows: (A^T m) A */
                    at6(s[a], r);
                    float *q = Q + ((4 * ty + a) * qw + 4 * tx) * k + cb;
                    for (int b = 0; b < 4; b++)
                        _mm512_storeu_ps(q + b * k, r[b]);
                }
            }
        }
    relayout(g, k, y, Q, qw, 0, 0, bias, add); /* back to (k, H, W) */
}

/* floats of a thread's buffers: the padded planes of x (C) and dy (OC), and Q */
static int64_t thread_floats(const w4geom_t *g)
{
    int64_t k = g->c > g->oc ? g->c : g->oc;
    return g->ph * g->pw * (g->c + g->oc) + 16 * g->t * k;
}

static int chunked_forward(ssl_ctx_t *ctx, const float *x, const float *w, const float *bias,
                           float *y, int64_t n, int64_t c, int64_t h, int64_t wd, int64_t oc)
{
    w4geom_t g;
    w4_geom(&g, c, h, wd, oc);
    int64_t nb = w4_chunk(n, 36 * g.t * (c + oc)), nt = ssl__max_threads();
    int64_t uf = 36 * c * oc, vf = 36 * nb * g.t * c, mf = 36 * nb * g.t * oc;
    int64_t tf = thread_floats(&g);
    float *U = ssl__scratch(ctx, (size_t)(uf + vf + mf + nt * tf) * sizeof(float));
    if (!U)
        return SSL_ERR_NOMEM;
    float *V = U + uf, *M = V + vf, *bufs = M + mf;
    weights_in(w, oc, c, 0, U);
    for (int64_t i0 = 0; i0 < n; i0 += nb) {
        int64_t m = n - i0 < nb ? n - i0 : nb, ld = m * g.t;
#pragma omp parallel
        {
            float *P = bufs + ssl__thread_id() * tf, *Q = P + g.ph * g.pw * (c + oc);
            memset(P, 0, (size_t)(g.ph * g.pw * c) * sizeof(float));
#pragma omp for schedule(static)
            for (int64_t j = 0; j < m; j++) {
                to_channels_last(&g, x + (i0 + j) * c * h * wd, c, P);
                tiles_in(&g, P, c, 0, V, ld, j * g.t);
            }
#pragma omp for schedule(static)
            for (int xi = 0; xi < 36; xi++)
                ssl__sgemm_inner(0, 0, ld, oc, c, 1.0f, V + xi * ld * c, c, U + xi * c * oc, oc,
                                 0.0f, M + xi * ld * oc, oc);
#pragma omp for schedule(static)
            for (int64_t j = 0; j < m; j++)
                tiles_out(&g, M, oc, ld, j * g.t, Q, bias, 0, y + (i0 + j) * oc * h * wd);
        }
    }
    return SSL_OK;
}

static int chunked_backward(ssl_ctx_t *ctx, const float *x, const float *w, const float *dy,
                            float *dx, int dx_add, float *dw, int64_t n, int64_t c, int64_t h,
                            int64_t wd, int64_t oc)
{
    if (!dx && !dw)
        return SSL_OK;
    w4geom_t g;
    w4_geom(&g, c, h, wd, oc);
    /* per image: dy's B^T dY B (dx) and dx's products (36 t (OC + C)), dy's A dY A^T and x's
     * transform (dw, 36 t (OC + C)) */
    int64_t per = 36 * g.t * (c + oc) * ((dx ? 1 : 0) + (dw ? 1 : 0));
    int64_t nb = w4_chunk(n, per), nt = ssl__max_threads();
    int64_t uf = 36 * c * oc, tf = thread_floats(&g);
    int64_t cf = 36 * nb * g.t; /* floats of a (36, tiles) plane set per channel */
    int64_t total = (dx ? uf + cf * (oc + c) : 0) + (dw ? uf + cf * (oc + c) : 0) + nt * tf;
    float *base = ssl__scratch(ctx, (size_t)total * sizeof(float));
    if (!base)
        return SSL_ERR_NOMEM;
    float *Uf = NULL, *By = NULL, *Mx = NULL, *dU = NULL, *Ay = NULL, *Vx = NULL, *p = base;
    if (dx) {
        Uf = p, By = Uf + uf, Mx = By + cf * oc, p = Mx + cf * c;
        weights_in(w, oc, c, 1, Uf);
    }
    if (dw) {
        dU = p, Ay = dU + uf, Vx = Ay + cf * oc, p = Vx + cf * c;
        memset(dU, 0, (size_t)uf * sizeof(float));
    }
    float *bufs = p;
    for (int64_t i0 = 0; i0 < n; i0 += nb) {
        int64_t m = n - i0 < nb ? n - i0 : nb, ld = m * g.t;
#pragma omp parallel
        {
            float *Px = bufs + ssl__thread_id() * tf, *Py = Px + g.ph * g.pw * c;
            float *Q = Py + g.ph * g.pw * oc;
            memset(Px, 0, (size_t)(g.ph * g.pw * (c + oc)) * sizeof(float));
#pragma omp for schedule(static)
            for (int64_t j = 0; j < m; j++) {
                to_channels_last(&g, dy + (i0 + j) * oc * h * wd, oc, Py);
                if (dx)
                    tiles_in(&g, Py, oc, 0, By, ld, j * g.t);
                if (dw) {
                    tiles_in(&g, Py, oc, 1, Ay, ld, j * g.t);
                    to_channels_last(&g, x + (i0 + j) * c * h * wd, c, Px);
                    tiles_in(&g, Px, c, 0, Vx, ld, j * g.t);
                }
            }
#pragma omp for schedule(static)
            for (int xi = 0; xi < 36; xi++) {
                if (dx) /* (tiles, C) = (tiles, OC) (OC, C) */
                    ssl__sgemm_inner(0, 0, ld, c, oc, 1.0f, By + xi * ld * oc, oc, Uf + xi * oc * c,
                                     c, 0.0f, Mx + xi * ld * c, c);
                if (dw) /* (C, OC) += (tiles, C)^T (tiles, OC) */
                    ssl__sgemm_inner(1, 0, c, oc, ld, 1.0f, Vx + xi * ld * c, c, Ay + xi * ld * oc,
                                     oc, 1.0f, dU + xi * c * oc, oc);
            }
            if (dx) {
#pragma omp for schedule(static)
                for (int64_t j = 0; j < m; j++)
                    tiles_out(&g, Mx, c, ld, j * g.t, Q, NULL, dx_add, dx + (i0 + j) * c * h * wd);
            }
        }
    }
    if (dw)
        weights_out(dU, oc, c, dw);
    return SSL_OK;
}

/* the path for a layer: images in chunks through OpenBLAS's GEMMs (small maps, many
 * channels: the 36 U matrices shared by a chunk's tiles), or one image at a time through the
 * register-blocked GEMM below (wider maps, 16-64 channels: an image's tiles fill the rows) */
static int fused_path(int64_t c, int64_t oc, int64_t h, int64_t w)
{
    int64_t t = ((h + 3) / 4) * ((w + 3) / 4);
    return (h > 8 || w > 8) && c <= 64 && oc <= 64 && (t % 8 == 0 || t % 7 == 0);
}

int ssl__conv3x3_wino4_usable(int64_t c, int64_t oc, int64_t h, int64_t w, int64_t kh, int64_t kw,
                              int64_t stride, int64_t pad)
{
    if (!ssl__conv_wino4 || kh != 3 || kw != 3 || stride != 1 || pad != 1 || c % 16 != 0 ||
        oc % 16 != 0 || h < 3 || w < 3)
        return 0;
    if (h > W4_MAX_SIDE || w > W4_MAX_SIDE)
        return 0;
    return fused_path(c, oc, h, w) || (c >= 32 && oc >= 32 && c <= 512 && oc <= 512);
}

/* ---------------------------------------------------------------- one image at a time */

/* out (RB rows, NB vectors of 16) (+)= sum over kn of a(r, k) b(k, :), a(r, k) = a[r ars + k
 * aks] broadcast, b's rows ldb floats apart: the accumulators stay in registers. */
#define W4_MK(RB, NB)                                                                              \
    static void mk_##RB##x##NB(const float *a, int64_t ars, int64_t aks, const float *b,           \
                               int64_t ldb, int64_t kn, float *out, int64_t ldo, int add)          \
    {                                                                                              \
        __m512 acc[RB][NB];                                                                        \
        for (int r = 0; r < RB; r++)                                                               \
            for (int j = 0; j < NB; j++)                                                           \
                acc[r][j] = _mm512_setzero_ps();                                                   \
        for (int64_t kk = 0; kk < kn; kk++) {                                                      \
            __m512 bv[NB];                                                                         \
            for (int j = 0; j < NB; j++)                                                           \
                bv[j] = _mm512_loadu_ps(b + kk * ldb + 16 * j);                                    \
            const float *ak = a + kk * aks;                                                        \
            for (int r = 0; r < RB; r++) {                                                         \
                __m512 sv = _mm512_set1_ps(ak[r * ars]);                                           \
                for (int j = 0; j < NB; j++)                                                       \
                    acc[r][j] = _mm512_fmadd_ps(sv, bv[j], acc[r][j]);                             \
            }                                                                                      \
        }                                                                                          \
        for (int r = 0; r < RB; r++)                                                               \
            for (int j = 0; j < NB; j++) {                                                         \
                float *o = out + r * ldo + 16 * j;                                                 \
                _mm512_storeu_ps(o,                                                                \
                                 add ? _mm512_add_ps(_mm512_loadu_ps(o), acc[r][j]) : acc[r][j]);  \
            }                                                                                      \
    }
W4_MK(16, 1)
W4_MK(14, 1)
W4_MK(8, 1)
W4_MK(7, 1)
W4_MK(8, 2)
W4_MK(7, 2)

/* out (rows, n) (+)= a (rows, kn) b (kn, n) for rows a multiple of 8 or 7 and n of 16: blocks
 * of 8 or 7 rows x 2 vectors, or 16 or 14 rows x 1 vector */
static void small_gemm(int64_t rows, int64_t n, int64_t kn, const float *a, int64_t ars,
                       int64_t aks, const float *b, int64_t ldb, float *out, int64_t ldo, int add)
{
    int eight = rows % 8 == 0;
    int64_t rb = eight ? 8 : 7, j = 0;
    for (; j + 32 <= n; j += 32)
        for (int64_t r = 0; r < rows; r += rb) {
            const float *ar = a + r * ars;
            float *o = out + r * ldo + j;
            if (eight)
                mk_8x2(ar, ars, aks, b + j, ldb, kn, o, ldo, add);
            else
                mk_7x2(ar, ars, aks, b + j, ldb, kn, o, ldo, add);
        }
    for (; j < n; j += 16)
        for (int64_t r = 0; r < rows;) {
            const float *ar = a + r * ars;
            float *o = out + r * ldo + j;
            if (rows - r >= 2 * rb) {
                if (eight)
                    mk_16x1(ar, ars, aks, b + j, ldb, kn, o, ldo, add);
                else
                    mk_14x1(ar, ars, aks, b + j, ldb, kn, o, ldo, add);
                r += 2 * rb;
            } else {
                if (eight)
                    mk_8x1(ar, ars, aks, b + j, ldb, kn, o, ldo, add);
                else
                    mk_7x1(ar, ars, aks, b + j, ldb, kn, o, ldo, add);
                r += rb;
            }
        }
}

/* A thread's buffers for one image: padded planes of x and dy, their transforms, the
 * products, Q and (backward) its partial dU. */
typedef struct w4bufs {
    float *px, *py, *vx, *by, *ay, *mx, *q, *du;
} w4bufs_t;

static int64_t fused_floats(const w4geom_t *g, int backward)
{
    int64_t k = g->c > g->oc ? g->c : g->oc, tt = 36 * g->t;
    int64_t f = g->ph * g->pw * (g->c + g->oc) + tt * (g->c + g->oc) + 16 * g->t * k;
    return backward ? f + tt * (g->c + g->oc) + 36 * g->c * g->oc : f;
}

static void fused_bufs(const w4geom_t *g, float *base, int backward, w4bufs_t *b)
{
    int64_t tt = 36 * g->t, k = g->c > g->oc ? g->c : g->oc;
    b->px = base;
    b->py = b->px + g->ph * g->pw * g->c;
    b->vx = b->py + g->ph * g->pw * g->oc; /* forward: x's transform, (36, T, C) */
    b->by = b->vx + tt * g->c;             /* forward: the products M (36, T, OC) */
    b->q = b->by + tt * g->oc;
    b->ay = b->mx = b->du = NULL;
    if (backward) {
        b->ay = b->q + 16 * g->t * k;
        b->mx = b->ay + tt * g->oc;
        b->du = b->mx + tt * g->c;
    }
}

static int fused_forward(ssl_ctx_t *ctx, const float *x, const float *w, const float *bias,
                         float *y, int64_t n, int64_t c, int64_t h, int64_t wd, int64_t oc)
{
    w4geom_t g;
    w4_geom(&g, c, h, wd, oc);
    int64_t uf = 36 * c * oc, tf = fused_floats(&g, 0), t = g.t;
    float *U = ssl__scratch(ctx, (size_t)(uf + ssl__max_threads() * tf) * sizeof(float));
    if (!U)
        return SSL_ERR_NOMEM;
    weights_in(w, oc, c, 0, U);
#pragma omp parallel if (n > 1)
    {
        w4bufs_t b;
        fused_bufs(&g, U + uf + ssl__thread_id() * tf, 0, &b);
        memset(b.px, 0, (size_t)(g.ph * g.pw * c) * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            to_channels_last(&g, x + i * c * h * wd, c, b.px);
            tiles_in(&g, b.px, c, 0, b.vx, t, 0);
            for (int xi = 0; xi < 36; xi++) /* M_xi (T, OC) = V_xi (T, C) U_xi (C, OC) */
                small_gemm(t, oc, c, b.vx + xi * t * c, c, 1, U + xi * c * oc, oc,
                           b.by + xi * t * oc, oc, 0);
            tiles_out(&g, b.by, oc, t, 0, b.q, bias, 0, y + i * oc * h * wd);
        }
    }
    return SSL_OK;
}

static int fused_backward(ssl_ctx_t *ctx, const float *x, const float *w, const float *dy,
                          float *dx, int dx_add, float *dw, int64_t n, int64_t c, int64_t h,
                          int64_t wd, int64_t oc)
{
    w4geom_t g;
    w4_geom(&g, c, h, wd, oc);
    int64_t uf = 36 * c * oc, tf = fused_floats(&g, 1), t = g.t, nt = ssl__max_threads();
    float *Uf = ssl__scratch(ctx, (size_t)(2 * uf + nt * tf) * sizeof(float));
    if (!Uf)
        return SSL_ERR_NOMEM;
    float *dU = Uf + uf, *bufs = dU + uf;
    if (dx)
        weights_in(w, oc, c, 1, Uf);
    w4bufs_t b0;
    fused_bufs(&g, bufs, 1, &b0);
    int64_t off = b0.du - bufs;               /* the partial dU's place in a thread's block */
    for (int64_t th = 0; dw && th < nt; th++) /* all of them: a smaller team leaves some unused */
        memset(bufs + th * tf + off, 0, (size_t)uf * sizeof(float));
#pragma omp parallel
    {
        w4bufs_t b;
        fused_bufs(&g, bufs + ssl__thread_id() * tf, 1, &b);
        memset(b.px, 0, (size_t)(g.ph * g.pw * (c + oc)) * sizeof(float));
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            to_channels_last(&g, dy + i * oc * h * wd, oc, b.py);
            if (dx) { /* the convolution of dy by the flipped kernel */
                tiles_in(&g, b.py, oc, 0, b.by, t, 0);
                for (int xi = 0; xi < 36; xi++)
                    small_gemm(t, c, oc, b.by + xi * t * oc, oc, 1, Uf + xi * oc * c, c,
                               b.mx + xi * t * c, c, 0);
                tiles_out(&g, b.mx, c, t, 0, b.q, NULL, dx_add, dx + i * c * h * wd);
            }
            if (dw) { /* dU_xi (C, OC) += V_xi^T (C, T) dM_xi (T, OC) */
                tiles_in(&g, b.py, oc, 1, b.ay, t, 0);
                to_channels_last(&g, x + i * c * h * wd, c, b.px);
                tiles_in(&g, b.px, c, 0, b.vx, t, 0);
                for (int xi = 0; xi < 36; xi++)
                    small_gemm(c, oc, t, b.vx + xi * t * c, 1, c, b.ay + xi * t * oc, oc,
                               b.du + xi * c * oc, oc, 1);
            }
        }
        if (dw) { /* the threads' partial sums, added in thread order */
#pragma omp for schedule(static)
            for (int64_t e = 0; e < uf; e += 16) {
                __m512 sum = _mm512_setzero_ps();
                for (int64_t th = 0; th < nt; th++)
                    sum = _mm512_add_ps(sum, _mm512_loadu_ps(bufs + th * tf + off + e));
                _mm512_storeu_ps(dU + e, sum);
            }
        }
    }
    if (dw)
        weights_out(dU, oc, c, dw);
    return SSL_OK;
}

int ssl__conv3x3_wino4_forward(ssl_ctx_t *ctx, const float *x, const float *w, const float *bias,
                               float *y, int64_t n, int64_t c, int64_t h, int64_t wd, int64_t oc)
{
    if (fused_path(c, oc, h, wd))
        return fused_forward(ctx, x, w, bias, y, n, c, h, wd, oc);
    return chunked_forward(ctx, x, w, bias, y, n, c, h, wd, oc);
}

int ssl__conv3x3_wino4_backward(ssl_ctx_t *ctx, const float *x, const float *w, const float *dy,
                                float *dx, int dx_add, float *dw, int64_t n, int64_t c, int64_t h,
                                int64_t wd, int64_t oc)
{
    if (!dx && !dw)
        return SSL_OK;
    if (fused_path(c, oc, h, wd))
        return fused_backward(ctx, x, w, dy, dx, dx_add, dw, n, c, h, wd, oc);
    return chunked_backward(ctx, x, w, dy, dx, dx_add, dw, n, c, h, wd, oc);
}

#else /* without AVX-512 the layers take the other kernels */

int ssl__conv3x3_wino4_usable(int64_t c, int64_t oc, int64_t h, int64_t w, int64_t kh, int64_t kw,
                              int64_t stride, int64_t pad)
{
    (void)c, (void)oc, (void)h, (void)w, (void)kh, (void)kw, (void)stride, (void)pad;
    return 0;
}

int ssl__conv3x3_wino4_forward(ssl_ctx_t *ctx, const float *x, const float *w, const float *bias,
                               float *y, int64_t n, int64_t c, int64_t h, int64_t wd, int64_t oc)
{
    (void)ctx, (void)x, (void)w, (void)bias, (void)y, (void)n, (void)c, (void)h, (void)wd, (void)oc;
    return SSL_ERR_INVALID;
}

int ssl__conv3x3_wino4_backward(ssl_ctx_t *ctx, const float *x, const float *w, const float *dy,
                                float *dx, int dx_add, float *dw, int64_t n, int64_t c, int64_t h,
                                int64_t wd, int64_t oc)
{
    (void)ctx, (void)x, (void)w, (void)dy, (void)dx, (void)dx_add, (void)dw, (void)n, (void)c;
    (void)h, (void)wd, (void)oc;
    return SSL_ERR_INVALID;
}

#endif
