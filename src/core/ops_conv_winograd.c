/* 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016):
 * every 2x2 output tile is A^T [(G g G^T) . (B^T d B)] A over a 4x4 input tile d, so the
 * 36 multiplications of a direct 2x2 tile become 16, done as 16 GEMMs (one per point xi of the
 * 4x4 transform domain) of U_xi (OC, C) by V_xi (C, tiles). Backward:
 *   dx is the same convolution of dy by the flipped, transposed kernel (padding 2 - pad);
 *   dW: dU_xi = dM_xi (OC, tiles) V_xi^T with dM = A dY A^T per tile, then dg = G^T dU G,
 * which is the exact chain rule through the three linear transforms.
 * Chunks of images bound the scratch memory (transformed tiles are never kept in the arena). */
#include "core_internal.h"

#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

int ssl__conv_winograd = 1;
int64_t ssl__wino_chunk_floats = (int64_t)1 << 19;

/* ---------------------------------------------------------------- tile transforms */

/* u (16) = G g G^T for a 3x3 kernel g, G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]. */
static inline void tile_weight(const float g[9], float u[16])
{
    float t[12];
    for (int j = 0; j < 3; j++) {
        t[0 * 3 + j] = g[j];
        t[1 * 3 + j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
        t[2 * 3 + j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
        t[3 * 3 + j] = g[6 + j];
    }
    for (int i = 0; i < 4; i++) {
        const float *r = t + 3 * i;
        u[4 * i + 0] = r[0];
        u[4 * i + 1] = 0.5f * (r[0] + r[1] + r[2]);
        u[4 * i + 2] = 0.5f * (r[0] - r[1] + r[2]);
        u[4 * i + 3] = r[2];
    }
}

/* dg (3x3) += G^T du G: the adjoint of tile_weight. */
static inline void tile_weight_adjoint(const float du[16], float dg[9])
{
    float t[12]; /* G^T du: 3x4 */
    for (int j = 0; j < 4; j++) {
        t[0 * 4 + j] = du[j] + 0.5f * (du[4 + j] + du[8 + j]);
        t[1 * 4 + j] = 0.5f * (du[4 + j] - du[8 + j]);
        t[2 * 4 + j] = 0.5f * (du[4 + j] + du[8 + j]) + du[12 + j];
    }
    for (int i = 0; i < 3; i++) {
        const float *r = t + 4 * i;
        dg[3 * i + 0] += r[0] + 0.5f * (r[1] + r[2]);
        dg[3 * i + 1] += 0.5f * (r[1] - r[2]);
        dg[3 * i + 2] += 0.5f * (r[1] + r[2]) + r[3];
    }
}

/* ---------------------------------------------------------------- whole-tensor passes */

typedef struct wgeom {
    int64_t c, h, w, oc, pad, oh, ow; /* as ssl_conv3_shape_t */
    int64_t th, tw, t;                /* tiles over the output: th x tw = t per image */
} wgeom_t;

static void geom(wgeom_t *g, int64_t c, int64_t h, int64_t w, int64_t oc, int64_t pad)
{
    ssl_conv3_shape_t s = ssl__conv3_shape(c, h, w, oc, pad);
    *g = (wgeom_t){s.c, s.h, s.w, s.oc, s.pad, s.oh, s.ow, 0, 0, 0};
    g->th = (g->oh + 1) / 2;
    g->tw = (g->ow + 1) / 2;
    g->t = g->th * g->tw;
}

/* U (16, OC, C) from weights w (OC, C, 3, 3); flip: U (16, C, OC) of the kernel that gives the
 * input gradient, w'[c, o] = w[o, c] rotated by 180 degrees. */
static void weights_in(const float *w, int64_t oc, int64_t c, int flip, float *U)
{
    int64_t plane = oc * c;
    /* in the order of U's rows (at = o * C + ci, or ci * OC + o when flipped), so the 16 planes
     * are written sequentially: walking w in order and writing the flipped U transposed missed
     * the cache on every store (4% of a ResNet-18 step) */
#pragma omp parallel for schedule(static) if (oc * c * 16 > SSL_OMP_MIN)
    for (int64_t at = 0; at < oc * c; at++) {
        int64_t o = flip ? at % oc : at / c, ci = flip ? at / oc : at % c;
        float g[9], u[16];
        const float *src = w + (o * c + ci) * 9;
        for (int k = 0; k < 9; k++)
            g[k] = flip ? src[8 - k] : src[k];
        tile_weight(g, u);
        for (int x = 0; x < 16; x++)
            U[x * plane + at] = u[x];
    }
}

/* Tile rows are transformed together: a plane is first copied with its zero padding into a
 * per-thread buffer (no bounds checks in the transforms), the 16 transform points of a whole
 * row of tiles go to 16 short local rows that the compiler vectorises across tiles, and each is
 * then copied out as one contiguous run (the 16 destination planes are far apart). */
#define WINO_MAX_TW 256

/* Gather tables of the vector input transform (AVX-512): for each vector of 16 tiles of a
 * plane and each of a tile's 16 input points, the offsets of the points in the unpadded plane
 * and the mask of those inside it (padding reads as zero). A vector then holds one transform
 * point of 16 tiles: 16 gathers, the transform as 64 vector adds, 16 stores that land
 * contiguously in V (its rows run over tiles). The scalar pass copied each plane padded, then
 * transformed tile by tile and stored the 16 points in runs of TW floats (4 on 8x8 maps): 22%
 * of a 128-channel 16x16 layer's time. The output transform likewise scatters each of a
 * tile's 4 outputs for 16 tiles at once. */
typedef struct wtab {
    int64_t nv;          /* vectors of 16 tiles per plane */
    const int32_t *idx;  /* (nv, points, 16 lanes) */
    const uint16_t *msk; /* (nv, points) */
} wtab_t;

/* Tables for tiles whose side x side points lie at (2 ty + sy - shift, 2 tx + sx - shift) of
 * an (H, W) plane: the input points (side 4, shift pad, the input plane) or the outputs (side
 * 2, shift 0, the output plane). Floats of scratch for them, 0 when the scalar pass runs. */
static int64_t tab_floats(const wgeom_t *g, int side, int64_t hh, int64_t ww)
{
#if defined(__AVX512F__)
    int64_t nv = (g->t + 15) / 16, pts = side * side;
    /* big planes (and the switch off): the scalar pass */
    if (!ssl__conv_vec_tables || nv > 256 || hh * ww > ((int64_t)1 << 24))
        return 0;
    return (nv * pts * 16 + nv * pts / 2 + 15) / 16 * 16;
#else
    (void)g;
    (void)side;
    (void)hh;
    (void)ww;
    return 0;
#endif
}

/* The tables in buf (tab_floats floats), or NULL when the scalar pass runs. */
static const wtab_t *tab_build(const wgeom_t *g, int side, int64_t shift, int64_t hh, int64_t ww,
                               float *buf, wtab_t *t)
{
    if (!tab_floats(g, side, hh, ww))
        return NULL;
    int pts = side * side;
    t->nv = (g->t + 15) / 16;
    int32_t *idx = (int32_t *)buf;
    uint16_t *msk = (uint16_t *)(idx + t->nv * pts * 16);
    memset(msk, 0, (size_t)(t->nv * pts) * sizeof(uint16_t));
    for (int64_t q = 0; q < t->nv * 16; q++) {
        int64_t ty = q / g->tw, tx = q % g->tw;
        for (int s = 0; s < pts; s++) {
            int64_t iy = 2 * ty + s / side - shift, ix = 2 * tx + s % side - shift;
            int ok = q < g->t && iy >= 0 && iy < hh && ix >= 0 && ix < ww;
            idx[((q / 16) * pts + s) * 16 + q % 16] = ok ? (int32_t)(iy * ww + ix) : 0;
            if (ok)
                msk[(q / 16) * pts + s] |= (uint16_t)(1u << (q % 16));
        }
    }
    t->idx = idx;
    t->msk = msk;
    return t;
}

/* the input transform's gathers and the output transform's scatters */
static int64_t wtab_floats(const wgeom_t *g)
{
    return tab_floats(g, 4, g->h, g->w);
}
static const wtab_t *wtab_build(const wgeom_t *g, float *buf, wtab_t *t)
{
    return tab_build(g, 4, g->pad, g->h, g->w, buf, t);
}
static int64_t otab_floats(const wgeom_t *g)
{
    return tab_floats(g, 2, g->oh, g->ow);
}
static const wtab_t *otab_build(const wgeom_t *g, float *buf, wtab_t *t)
{
    return tab_build(g, 2, 0, g->oh, g->ow, buf, t);
}

#if defined(__AVX512F__)
/* V's 16 points of plane xc's tiles, dst = V + c * ld + j * T, points plane floats apart. */
static void input_tiles_vec(const wgeom_t *g, const wtab_t *tb, const float *xc, float *dst,
                            int64_t plane)
{
    for (int64_t v = 0; v < tb->nv; v++) {
        __m512 d[16], t[4][4];
        for (int s = 0; s < 16; s++)
            d[s] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), tb->msk[v * 16 + s],
                                            _mm512_loadu_si512(tb->idx + (v * 16 + s) * 16), xc, 4);
        for (int s2 = 0; s2 < 4; s2++) { /* B^T d: rows, as the scalar pass */
            t[0][s2] = _mm512_sub_ps(d[s2], d[8 + s2]);
            t[1][s2] = _mm512_add_ps(d[4 + s2], d[8 + s2]);
            t[2][s2] = _mm512_sub_ps(d[8 + s2], d[4 + s2]);
            t[3][s2] = _mm512_sub_ps(d[4 + s2], d[12 + s2]);
        }
        int64_t r = g->t - v * 16;
        __mmask16 tm = ssl__lanes16(r);
        float *o = dst + v * 16;
        for (int i = 0; i < 4; i++) { /* (B^T d) B */
            _mm512_mask_storeu_ps(o + (4 * i + 0) * plane, tm, _mm512_sub_ps(t[i][0], t[i][2]));
            _mm512_mask_storeu_ps(o + (4 * i + 1) * plane, tm, _mm512_add_ps(t[i][1], t[i][2]));
            _mm512_mask_storeu_ps(o + (4 * i + 2) * plane, tm, _mm512_sub_ps(t[i][2], t[i][1]));
            _mm512_mask_storeu_ps(o + (4 * i + 3) * plane, tm, _mm512_sub_ps(t[i][1], t[i][3]));
        }
    }
}
#endif

/* V (16, C, m*T): the transformed input tiles of m images x (m, C, H, W); tb: gather tables
 * (AVX-512) or NULL. */
static void input_tiles(const wgeom_t *g, const wtab_t *tb, const float *x, int64_t m, float *V,
                        float *P)
{
    int64_t ld = m * g->t, plane = g->c * ld;
#if defined(__AVX512F__)
    if (tb) {
        for (int64_t jc = 0; jc < m * g->c; jc++) {
            int64_t j = jc / g->c, c = jc % g->c;
            input_tiles_vec(g, tb, x + jc * g->h * g->w, V + c * ld + j * g->t, plane);
        }
        return;
    }
#else
    (void)tb;
#endif
    int64_t pw = 2 * g->tw + 2, ph = 2 * g->th + 2; /* padded plane covering every tile */
    for (int64_t jc = 0; jc < m * g->c; jc++) {
        int64_t j = jc / g->c, c = jc % g->c;
        const float *xc = x + jc * g->h * g->w;
        float *dst = V + c * ld + j * g->t;
        /* columns [pad, pad + copy) of a row come from x; the rest is zero padding */
        int64_t copy = g->w < pw - g->pad ? g->w : pw - g->pad;
        for (int64_t yy = 0; yy < ph; yy++) {
            int64_t sy = yy - g->pad;
            float *row = P + yy * pw;
            if (sy < 0 || sy >= g->h) {
                memset(row, 0, (size_t)pw * sizeof(float));
                continue;
            }
            for (int64_t xx = 0; xx < g->pad; xx++)
                row[xx] = 0.0f;
            memcpy(row + g->pad, xc + sy * g->w, (size_t)copy * sizeof(float));
            for (int64_t xx = g->pad + copy; xx < pw; xx++)
                row[xx] = 0.0f;
        }
        int64_t tw = g->tw;
        for (int64_t ty = 0; ty < g->th; ty++) {
            float(*vb)[WINO_MAX_TW] = (float(*)[WINO_MAX_TW])(P + ph * pw); /* after the plane */
            const float *r0 = P + 2 * ty * pw, *r1 = r0 + pw, *r2 = r1 + pw, *r3 = r2 + pw;
            for (int64_t tx = 0; tx < tw; tx++) {
                float t[4][4];
                for (int s2 = 0; s2 < 4; s2++) {
                    int64_t q = 2 * tx + s2;
                    t[0][s2] = r0[q] - r2[q];
                    t[1][s2] = r1[q] + r2[q];
                    t[2][s2] = r2[q] - r1[q];
                    t[3][s2] = r1[q] - r3[q];
                }
                for (int i = 0; i < 4; i++) {
                    vb[4 * i + 0][tx] = t[i][0] - t[i][2];
                    vb[4 * i + 1][tx] = t[i][1] + t[i][2];
                    vb[4 * i + 2][tx] = t[i][2] - t[i][1];
                    vb[4 * i + 3][tx] = t[i][1] - t[i][3];
                }
            }
            for (int k = 0; k < 16; k++) {
                float *o = dst + k * plane + ty * tw;
                for (int64_t tx = 0; tx < tw; tx++)
                    o[tx] = vb[k][tx];
            }
        }
    }
}

/* y (m, OC, OH, OW) = (accumulate ? y : 0) + bias + A^T M A from M (16, OC, m*T); tb: scatter
 * tables (AVX-512: 16 tiles per vector, their 4 outputs scattered) or NULL. */
static void output_tiles(const wgeom_t *g, const wtab_t *tb, const float *M, int64_t m,
                         const float *bias, int accumulate, float *y)
{
    int64_t ld = m * g->t, plane = g->oc * ld;
#if defined(__AVX512F__)
    if (tb) {
        for (int64_t jo = 0; jo < m * g->oc; jo++) {
            int64_t j = jo / g->oc, o = jo % g->oc;
            float *yo = y + jo * g->oh * g->ow;
            const float *src = M + o * ld + j * g->t;
            __m512 b = _mm512_set1_ps(bias ? bias[o] : 0.0f);
            for (int64_t v = 0; v < tb->nv; v++) {
                int64_t r = g->t - v * 16;
                __mmask16 tm = ssl__lanes16(r);
                __m512 mk[16], t0[4], t1[4], out[4];
                for (int k = 0; k < 16; k++)
                    mk[k] = _mm512_maskz_loadu_ps(tm, src + k * plane + v * 16);
                for (int q = 0; q < 4; q++) { /* as the scalar pass, in the same order */
                    t0[q] = _mm512_add_ps(_mm512_add_ps(mk[q], mk[4 + q]), mk[8 + q]);
                    t1[q] = _mm512_sub_ps(_mm512_sub_ps(mk[4 + q], mk[8 + q]), mk[12 + q]);
                }
                out[0] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t0[0], t0[1]), t0[2]), b);
                out[1] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(t0[1], t0[2]), t0[3]), b);
                out[2] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(t1[0], t1[1]), t1[2]), b);
                out[3] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(t1[1], t1[2]), t1[3]), b);
                for (int s = 0; s < 4; s++) {
                    __mmask16 ms = tb->msk[v * 4 + s];
                    __m512i ix = _mm512_loadu_si512(tb->idx + (v * 4 + s) * 16);
                    __m512 val = out[s];
                    if (accumulate) /* y + value, as the scalar pass adds */
                        val = _mm512_add_ps(
                            _mm512_mask_i32gather_ps(_mm512_setzero_ps(), ms, ix, yo, 4), val);
                    _mm512_mask_i32scatter_ps(yo, ms, ix, val, 4);
                }
            }
        }
        return;
    }
#else
    (void)tb;
#endif

    for (int64_t jo = 0; jo < m * g->oc; jo++) {
        int64_t j = jo / g->oc, o = jo % g->oc;
        float *yo = y + jo * g->oh * g->ow, b = bias ? bias[o] : 0.0f;
        const float *src = M + o * ld + j * g->t;
        int64_t tw = g->tw;
        float ob[2][2 * WINO_MAX_TW];
        for (int64_t ty = 0; ty < g->th; ty++) {
            const float *mk[16];
            for (int k = 0; k < 16; k++)
                mk[k] = src + k * plane + ty * tw;
            for (int64_t tx = 0; tx < tw; tx++) {
                float t0[4], t1[4];
                for (int q = 0; q < 4; q++) {
                    t0[q] = mk[q][tx] + mk[4 + q][tx] + mk[8 + q][tx];
                    t1[q] = mk[4 + q][tx] - mk[8 + q][tx] - mk[12 + q][tx];
                }
                ob[0][2 * tx] = t0[0] + t0[1] + t0[2] + b;
                ob[0][2 * tx + 1] = t0[1] - t0[2] - t0[3] + b;
                ob[1][2 * tx] = t1[0] + t1[1] + t1[2] + b;
                ob[1][2 * tx + 1] = t1[1] - t1[2] - t1[3] + b;
            }
            for (int r = 0; r < 2; r++) {
                int64_t yy = 2 * ty + r;
                if (yy >= g->oh)
                    break;
                float *dst = yo + yy * g->ow;
                if (accumulate)
                    for (int64_t xx = 0; xx < g->ow; xx++)
                        dst[xx] += ob[r][xx];
                else
                    for (int64_t xx = 0; xx < g->ow; xx++)
                        dst[xx] = ob[r][xx];
            }
        }
    }
}

/* dM (16, OC, m*T) = A dY A^T per tile of dy (m, OC, OH, OW) (zero beyond the edges). */
static void output_tiles_adjoint(const wgeom_t *g, const float *dy, int64_t m, float *dM)
{
    int64_t ld = m * g->t, plane = g->oc * ld;
    for (int64_t jo = 0; jo < m * g->oc; jo++) {
        int64_t j = jo / g->oc, o = jo % g->oc;
        const float *go = dy + jo * g->oh * g->ow;
        float *dst = dM + o * ld + j * g->t;
        int64_t tw = g->tw;
        float yb[2][2 * WINO_MAX_TW], vb[16][WINO_MAX_TW];
        for (int64_t ty = 0; ty < g->th; ty++) {
            for (int r = 0; r < 2; r++) {
                int64_t yy = 2 * ty + r;
                if (yy < g->oh) {
                    memcpy(yb[r], go + yy * g->ow, (size_t)g->ow * sizeof(float));
                    for (int64_t xx = g->ow; xx < 2 * tw; xx++)
                        yb[r][xx] = 0.0f;
                } else {
                    memset(yb[r], 0, (size_t)(2 * tw) * sizeof(float));
                }
            }
            for (int64_t tx = 0; tx < tw; tx++) {
                float y00 = yb[0][2 * tx], y01 = yb[0][2 * tx + 1];
                float y10 = yb[1][2 * tx], y11 = yb[1][2 * tx + 1];
                float a[4] = {y00, y00 + y10, y00 - y10, -y10}; /* A dY, column 0 */
                float c[4] = {y01, y01 + y11, y01 - y11, -y11}; /* column 1 */
                for (int i = 0; i < 4; i++) {
                    vb[4 * i + 0][tx] = a[i];
                    vb[4 * i + 1][tx] = a[i] + c[i];
                    vb[4 * i + 2][tx] = a[i] - c[i];
                    vb[4 * i + 3][tx] = -c[i];
                }
            }
            for (int k = 0; k < 16; k++) {
                float *d = dst + k * plane + ty * tw;
                for (int64_t tx = 0; tx < tw; tx++)
                    d[tx] = vb[k][tx];
            }
        }
    }
}

/* Threads take whole chunks of images (transforms and 16 single-threaded GEMMs each, in
 * their own cache-sized workspace) instead of sharing every small GEMM: OpenBLAS runs on one
 * thread inside an OpenMP region, so nothing is oversubscribed and no thread waits on another
 * between the phases. Images per chunk: the two tile buffers (16 x (C + OC) x tiles each) fit
 * the budget (2 MiB: 1.1-1.3x faster than 4 MiB, 1.3-1.7x faster than 32 MiB here), at least
 * WINO_MIN_TILES columns per GEMM, and enough chunks for every thread. */
#define WINO_MIN_TILES 128
static int64_t chunk_images(const wgeom_t *g, int64_t n)
{
    int64_t per = 16 * (g->c + g->oc) * g->t;
    int64_t nb = ssl__wino_chunk_floats / (per > 0 ? per : 1);
    if (nb * g->t < WINO_MIN_TILES && ssl__wino_chunk_floats >= ((int64_t)1 << 19))
        nb = (WINO_MIN_TILES + g->t - 1) / g->t;
    return ssl__balanced_chunk(n, nb);
}

/* Per-thread workspace: the padded plane and the row buffers of input_tiles, then two tile
 * buffers of 16 x max(C, OC) x nb*T. */
static int64_t pad_floats(const wgeom_t *g)
{
    return (2 * g->th + 2) * (2 * g->tw + 2) + 16 * WINO_MAX_TW + 16;
}

static int64_t ws_floats(const wgeom_t *g, int64_t nb)
{
    int64_t cm = g->c > g->oc ? g->c : g->oc;
    return pad_floats(g) + 2 * 16 * cm * nb * g->t + 16;
}

/* y (n, OC, OH, OW) (+)= conv(x, U) + bias, U already transformed (16, OC, C). */
static void wino_conv(const wgeom_t *g, const wtab_t *tb, const wtab_t *ob, const float *U,
                      const float *x, int64_t n, const float *bias, int accumulate, float *y,
                      int64_t nb, float *ws)
{
    int64_t n_chunks = (n + nb - 1) / nb, wsf = ws_floats(g, nb);
    int64_t cm = g->c > g->oc ? g->c : g->oc;
#pragma omp parallel if (n_chunks > 1)
    {
        float *P = ws + (int64_t)ssl__thread_id() * wsf, *V = P + pad_floats(g);
        float *M = V + 16 * cm * nb * g->t;
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            int64_t i0 = ch * nb, m = n - i0 < nb ? n - i0 : nb, mt = m * g->t;
            input_tiles(g, tb, x + i0 * g->c * g->h * g->w, m, V, P);
            for (int k = 0; k < 16; k++) /* M_k (OC, mT) = U_k (OC, C) @ V_k (C, mT) */
                ssl__sgemm_inner(0, 0, g->oc, mt, g->c, 1.0f, U + k * g->oc * g->c, g->c,
                                 V + k * g->c * mt, mt, 0.0f, M + k * g->oc * mt, mt);
            output_tiles(g, ob, M, m, bias, accumulate, y + i0 * g->oc * g->oh * g->ow);
        }
    }
}

/* Outputs narrower than 4: im2col with its vector gathers (a plane has too few tiles to fill
 * the transforms' vectors). Once the transforms were vectorised, 4x4 maps ran faster here than
 * through im2col (fwd + bwd, 2 threads: 512 channels at 128 images 178-183 vs 220 ms, 128 at
 * 256 images 30-31 vs 36 ms); before that im2col had won on maps under 6 wide. */
int ssl__conv3x3_winograd_usable(int64_t c, int64_t oc, int64_t w, int64_t kh, int64_t kw,
                                 int64_t stride, int64_t pad)
{
    return ssl__conv_winograd && kh == 3 && kw == 3 && stride == 1 && pad <= 2 && c >= 8 &&
           oc >= 8 && w + 2 * pad - 2 >= 4 && (w + 2 * pad) / 2 <= WINO_MAX_TW;
}

int ssl__conv3x3_winograd_forward(ssl_ctx_t *ctx, const float *x, const float *w,
                                  const float *bias, float *y, int64_t n, int64_t c, int64_t h,
                                  int64_t wd, int64_t oc, int64_t pad)
{
    wgeom_t g;
    geom(&g, c, h, wd, oc, pad);
    int64_t nb = chunk_images(&g, n);
    size_t u = (size_t)(16 * oc * c);
    size_t wsf = (size_t)(ssl__max_threads() * ws_floats(&g, nb));
    size_t tf = (size_t)wtab_floats(&g);
    float *U = ssl__scratch(ctx, (u + wsf + tf + (size_t)otab_floats(&g)) * sizeof(float));
    if (!U)
        return SSL_ERR_NOMEM;
    wtab_t tab, otab;
    const wtab_t *tb = wtab_build(&g, U + u + wsf, &tab);
    const wtab_t *ob = otab_build(&g, U + u + wsf + tf, &otab);
    weights_in(w, oc, c, 0, U);
    wino_conv(&g, tb, ob, U, x, n, bias, 0, y, nb, U + u);
    return SSL_OK;
}

int ssl__conv3x3_winograd_backward(ssl_ctx_t *ctx, const float *x, const float *w, const float *dy,
                                   float *dx, int dx_add, float *dw, int64_t n, int64_t c,
                                   int64_t h, int64_t wd, int64_t oc, int64_t pad)
{
    wgeom_t g, gb; /* forward geometry; the input gradient's: dy -> dx, padding 2 - pad */
    geom(&g, c, h, wd, oc, pad);
    geom(&gb, oc, g.oh, g.ow, c, 2 - pad);
    int64_t nb = chunk_images(&g, n), nbb = chunk_images(&gb, n), nt = ssl__max_threads();
    int64_t u = 16 * oc * c, wsf = ws_floats(&g, nb), wsb = ws_floats(&gb, nbb);
    /* U (or U'), then per thread: a workspace and a partial dU */
    int64_t per = (wsf > wsb ? wsf : wsb) + u, tf = wtab_floats(&g), tfb = wtab_floats(&gb);
    int64_t ofb = otab_floats(&gb);
    float *U = ssl__scratch(ctx, (size_t)(u + nt * per + tf + tfb + ofb) * sizeof(float));
    if (!U)
        return SSL_ERR_NOMEM;
    float *ws = U + u;
    wtab_t tab, tabb, otabb;
    const wtab_t *tb = wtab_build(&g, U + u + nt * per, &tab);
    const wtab_t *tbb = wtab_build(&gb, U + u + nt * per + tf, &tabb);
    const wtab_t *obb = otab_build(&gb, U + u + nt * per + tf + tfb, &otabb);
    if (dx) {
        weights_in(w, oc, c, 1, U); /* (16, C, OC) */
        wino_conv(&gb, tbb, obb, U, dy, n, NULL, dx_add, dx, nbb, ws);
    }
    if (!dw)
        return SSL_OK;
    int64_t n_chunks = (n + nb - 1) / nb, cm = c > oc ? c : oc;
    float *parts = ws + nt * wsf; /* nt partial dU (16, OC, C); a thread without chunks (or
                                   * absent, in a nested region) leaves its zeros */
    memset(parts, 0, (size_t)(nt * u) * sizeof(float));
#pragma omp parallel if (n_chunks > 1)
    {
        int tid = ssl__thread_id();
        float *P = ws + tid * wsf, *V = P + pad_floats(&g), *dM = V + 16 * cm * nb * g.t;
        float *dU = parts + tid * u;
#pragma omp for schedule(static)
        for (int64_t ch = 0; ch < n_chunks; ch++) {
            int64_t i0 = ch * nb, m = n - i0 < nb ? n - i0 : nb, mt = m * g.t;
            input_tiles(&g, tb, x + i0 * c * h * wd, m, V, P);
            output_tiles_adjoint(&g, dy + i0 * oc * g.oh * g.ow, m, dM);
            for (int k = 0; k < 16; k++) /* dU_k (OC, C) += dM_k (OC, mT) @ V_k^T (mT, C) */
                ssl__sgemm_inner(0, 1, oc, c, mt, 1.0f, dM + k * oc * mt, mt, V + k * c * mt, mt,
                                 1.0f, dU + k * oc * c, c);
        }
    }
    int64_t used = n_chunks > 1 ? nt : 1; /* threads that may hold a partial */
#pragma omp parallel for schedule(static) if (oc * c * 16 > SSL_OMP_MIN)
    for (int64_t i = 0; i < oc * c; i++) {
        float du[16];
        for (int k = 0; k < 16; k++) {
            float sum = parts[k * oc * c + i];
            for (int64_t t = 1; t < used; t++) /* partials summed in thread order */
                sum += parts[t * u + k * oc * c + i];
            du[k] = sum;
        }
        tile_weight_adjoint(du, dw + i * 9);
    }
    return SSL_OK;
}
