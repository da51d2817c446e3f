/* Normalisation and dropout: layer_norm (per row over the last dim), batch_norm (per channel
 * over the batch and spatial dims, with in-place running statistics) and inverted dropout whose
 * mask is recomputed from the counter-based RNG instead of being stored.
 *
 * Reductions are done in double in a fixed order (per row, per channel, or in row blocks whose
 * split depends only on the shape), so results do not depend on the number of threads. */
#include "core_internal.h"
#include "comm.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- double-accumulated sums */

/* DACC independent accumulators break the add dependency chain and fill two vector registers
 * (two chains: one chain of 4-cycle adds per 8 values held the statistics passes of batch norm
 * below memory speed); the order is fixed by the index, so the result is the same on any
 * thread. */
#define DACC 16

static inline double dfold(const double *a)
{
    double h[8];
    for (int k = 0; k < 8; k++)
        h[k] = a[k] + a[k + 8];
    return ((h[0] + h[1]) + (h[2] + h[3])) + ((h[4] + h[5]) + (h[6] + h[7]));
}

static inline double dsum(const float *x, int64_t n)
{
    double a[DACC] = {0};
    int64_t i = 0;
    for (; i + DACC <= n; i += DACC)
        for (int k = 0; k < DACC; k++)
            a[k] += (double)x[i + k];
    for (int k = 0; i < n; i++, k++)
        a[k] += (double)x[i];
    return dfold(a);
}

/* sum (x - mean)^2 */
static inline double dsum_sqdev(const float *x, int64_t n, double mean)
{
    double a[DACC] = {0};
    int64_t i = 0;
    for (; i + DACC <= n; i += DACC)
        for (int k = 0; k < DACC; k++) {
            double d = (double)x[i + k] - mean;
            a[k] += d * d;
        }
    for (int k = 0; i < n; i++, k++) {
        double d = (double)x[i] - mean;
        a[k] += d * d;
    }
    return dfold(a);
}

/* The two-sum passes below (batch_norm's statistics and gradient sums) run over every
 * activation of a CNN twice per step; GCC leaves their widening loops scalar, so they are
 * written with AVX-512 where available: 16 floats widened to two vectors of 8 doubles, which
 * are exactly the DACC lanes of the scalar loops, added (no FMA) in the same order, so both
 * builds give the same bits. */
#if defined(__AVX512F__) && defined(__AVX512VL__)
#include <immintrin.h>
#define DSUM_VEC 1
static inline __m512d widen8(const float *p)
{
    return _mm512_cvtps_pd(_mm256_loadu_ps(p));
}
#endif

/* a[k] += u and b[k] += u * v for lane k of element i (the scalar tails) */
static inline void dlane2(double *a, double *b, int64_t i, double u, double v)
{
    a[i % DACC] += u;
    b[i % DACC] += u * v;
}

/* sum (x - k) and sum (x - k)^2 in one pass (k: a value of the data, which keeps the variance
 * E[(x-k)^2] - E[x-k]^2 free of cancellation for data far from zero) */
static inline void dsum_shift2(const float *x, int64_t n, double k0, double *s1, double *s2)
{
    double a[DACC] = {0}, b[DACC] = {0};
    int64_t i = 0;
#ifdef DSUM_VEC
    __m512d va = _mm512_setzero_pd(), vb = va, va2 = va, vb2 = va, vk = _mm512_set1_pd(k0);
    for (; i + DACC <= n; i += DACC) {
        __m512d d = _mm512_sub_pd(widen8(x + i), vk), d2 = _mm512_sub_pd(widen8(x + i + 8), vk);
        va = _mm512_add_pd(va, d);
        vb = _mm512_add_pd(vb, _mm512_mul_pd(d, d));
        va2 = _mm512_add_pd(va2, d2);
        vb2 = _mm512_add_pd(vb2, _mm512_mul_pd(d2, d2));
    }
    _mm512_storeu_pd(a, va);
    _mm512_storeu_pd(b, vb);
    _mm512_storeu_pd(a + 8, va2);
    _mm512_storeu_pd(b + 8, vb2);
#else
    for (; i + DACC <= n; i += DACC)
        for (int k = 0; k < DACC; k++) {
            double d = (double)x[i + k] - k0;
            a[k] += d;
            b[k] += d * d;
        }
#endif
    for (; i < n; i++)
        dlane2(a, b, i, (double)x[i] - k0, (double)x[i] - k0);
    *s1 = dfold(a);
    *s2 = dfold(b);
}

/* The fused relu's gate: a bit per value, set where the output y is positive, in 16-bit words;
 * each plane (S values) starts on a new word. Backward reads these instead of y: 1/32 of the
 * bytes (batch norm is memory-bound; y was read twice per step). */
static inline int64_t gate_words(int64_t s)
{
    return (s + 15) / 16;
}

static inline float gated(float g, const uint16_t *gate, int64_t k)
{
    return gate[k / 16] >> (k % 16) & 1 ? g : 0.0f;
}

/* sum g and sum g * (x - mean), with g taken only where the gate bit is set when gate (the
 * fused relu's) is given */
static inline void dsum_g_gx(const float *g, const uint16_t *gate, const float *x, int64_t n,
                             double mean, double *sg, double *sgx)
{
    double a[DACC] = {0}, b[DACC] = {0};
    int64_t i = 0;
#ifdef DSUM_VEC
    __m512d va = _mm512_setzero_pd(), vb = va, va2 = va, vb2 = va, vm = _mm512_set1_pd(mean);
    for (; i + DACC <= n; i += DACC) {
        __m512 gf = _mm512_loadu_ps(g + i);
        if (gate)
            gf = _mm512_maskz_mov_ps((__mmask16)gate[i / 16], gf);
        __m512d gd = _mm512_cvtps_pd(_mm512_castps512_ps256(gf));
        __m512d gd2 =
            _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(gf), 1)));
        va = _mm512_add_pd(va, gd);
        vb = _mm512_add_pd(vb, _mm512_mul_pd(gd, _mm512_sub_pd(widen8(x + i), vm)));
        va2 = _mm512_add_pd(va2, gd2);
        vb2 = _mm512_add_pd(vb2, _mm512_mul_pd(gd2, _mm512_sub_pd(widen8(x + i + 8), vm)));
    }
    _mm512_storeu_pd(a, va);
    _mm512_storeu_pd(b, vb);
    _mm512_storeu_pd(a + 8, va2);
    _mm512_storeu_pd(b + 8, vb2);
#else
    for (; i + DACC <= n; i += DACC)
        for (int k = 0; k < DACC; k++) {
            double gk = (double)(gate ? gated(g[i + k], gate, i + k) : g[i + k]);
            a[k] += gk;
            b[k] += gk * ((double)x[i + k] - mean);
        }
#endif
    for (; i < n; i++)
        dlane2(a, b, i, (double)(gate ? gated(g[i], gate, i) : g[i]), (double)x[i] - mean);
    *sg = dfold(a);
    *sgx = dfold(b);
}

static int finite_nonneg(float v)
{
    return v >= 0.0f && isfinite(v);
}

/* ---------------------------------------------------------------- layer_norm */

/* in: x (..., C), weight (C) or NULL, bias (C) or NULL; fa[0] = eps.
 * aux[0]: float (rows, 2) = mean, rstd per row. */

static int affine_vec_ok(const ssl_tensor_t *t, int64_t c)
{
    return !t || (t->ndim == 1 && t->shape[0] == c);
}

static int layer_norm_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0], *w = nd->in[1], *b = nd->in[2];
    if (!finite_nonneg(nd->fa[0]))
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "eps must be finite and >= 0, got %g",
                                    (double)nd->fa[0]);
    if (x->ndim < 1)
        return ssl__op_error(nd, "x needs at least 1 dim (normalised over the last)");
    int64_t c = x->shape[x->ndim - 1];
    if (!affine_vec_ok(w, c) || !affine_vec_ok(b, c))
        return ssl__op_error(nd, "weight and bias must have shape (%lld), the last dim of x",
                             (long long)c);
    *ndim = x->ndim;
    memcpy(shape, x->shape, (size_t)x->ndim * sizeof(int64_t));
    return SSL_OK;
}

static int layer_norm_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    const ssl_tensor_t *x = nd->in[0], *wt = nd->in[1], *bt = nd->in[2];
    int64_t C = x->shape[x->ndim - 1], rows = C ? x->numel / C : 0;
    const double eps = nd->fa[0];
    float *stats = ssl_arena_alloc(ctx, (size_t)(rows > 0 ? rows : 1) * 2 * sizeof(float));
    if (!stats)
        return SSL_ERR_NOMEM;
    nd->aux[0] = stats;       // (rows, 2)
    const float *X = x->data; // (rows, C)
    const float *w = wt ? wt->data : NULL, *b = bt ? bt->data : NULL;
    float *Y = nd->out->data; // (rows, C)
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = X + r * C;
        float *yr = Y + r * C;
        double mean = dsum(xr, C) / (double)C;
        double var = dsum_sqdev(xr, C, mean) / (double)C;
        float m = (float)mean, rs = (float)(1.0 / sqrt(var + eps));
        stats[2 * r] = m;
        stats[2 * r + 1] = rs;
        if (w && b)
            for (int64_t j = 0; j < C; j++)
                yr[j] = (xr[j] - m) * rs * w[j] + b[j];
        else if (w)
            for (int64_t j = 0; j < C; j++)
                yr[j] = (xr[j] - m) * rs * w[j];
        else if (b)
            for (int64_t j = 0; j < C; j++)
                yr[j] = (xr[j] - m) * rs + b[j];
        else
            for (int64_t j = 0; j < C; j++)
                yr[j] = (xr[j] - m) * rs;
    }
    return SSL_OK;
}

/* Row blocks for the weight/bias gradient: each block sums its rows into its own double
 * vectors, the blocks are then added in order. The split depends on `rows` only. */
#define LN_MAX_BLOCKS 64
#define LN_MIN_BLOCK_ROWS 16

static void layer_norm_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    ssl_tensor_t *x = nd->in[0], *wt = nd->in[1], *bt = nd->in[2];
    int64_t C = x->shape[x->ndim - 1], rows = C ? x->numel / C : 0;
    if (rows == 0)
        return;
    const float *X = x->data, *dY = nd->out->grad; // (rows, C)
    const float *stats = nd->aux[0];               // (rows, 2)
    const float *w = wt ? wt->data : NULL;
    int fresh; /* dX may be dY's buffer itself: each row is read before it is written */
    float *dX = ssl__grad_take(ctx, x, nd->out, &fresh);
    float *dW = ssl__grad(ctx, wt), *dB = ssl__grad(ctx, bt);
    if (!dX && !dW && !dB)
        return;
    int64_t nb = (rows + LN_MIN_BLOCK_ROWS - 1) / LN_MIN_BLOCK_ROWS;
    if (nb > LN_MAX_BLOCKS)
        nb = LN_MAX_BLOCKS;
    double *part = NULL; // (nb, 2, C): sum dy * xhat, sum dy
    if (dW || dB) {
        part = ssl_arena_alloc(ctx, (size_t)nb * 2 * (size_t)C * sizeof(double));
        if (!part)
            return;
    }
    /* Scratch g = dy * w per row, one per block (blocks run on one thread each). */
    float *gbuf = NULL;
    if (dX && w) {
        gbuf = ssl_arena_alloc(ctx, (size_t)nb * (size_t)C * sizeof(float));
        if (!gbuf)
            return;
    }
    int64_t per = (rows + nb - 1) / nb;
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
    for (int64_t blk = 0; blk < nb; blk++) {
        int64_t r0 = blk * per, r1 = r0 + per < rows ? r0 + per : rows;
        double *pw = part ? part + blk * 2 * C : NULL, *pb = pw ? pw + C : NULL;
        if (pw)
            for (int64_t j = 0; j < 2 * C; j++)
                pw[j] = 0;
        float *g = gbuf ? gbuf + blk * C : NULL;
        for (int64_t r = r0; r < r1; r++) {
            const float *xr = X + r * C, *dyr = dY + r * C;
            const float m = stats[2 * r], rs = stats[2 * r + 1];
            if (pw)
                for (int64_t j = 0; j < C; j++) {
                    pw[j] += (double)dyr[j] * (double)((xr[j] - m) * rs);
                    pb[j] += (double)dyr[j];
                }
            if (!dX)
                continue;
            const float *gr = dyr;
            if (g) {
                for (int64_t j = 0; j < C; j++)
                    g[j] = dyr[j] * w[j];
                gr = g;
            }
            /* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) */
            double sg, sgx;
            dsum_g_gx(gr, NULL, xr, C, (double)m, &sg, &sgx);
            const float mg = (float)(sg / (double)C);
            const float mgx = (float)(sgx * (double)rs / (double)C);
            float *dxr = dX + r * C;
            for (int64_t j = 0; j < C; j++) {
                float v = rs * (gr[j] - mg - (xr[j] - m) * rs * mgx);
                dxr[j] = fresh ? v : dxr[j] + v;
            }
        }
    }
    if (!part)
        return;
#pragma omp parallel for schedule(static) if (nb * C > SSL_OMP_MIN)
    for (int64_t j = 0; j < C; j++) {
        double sw = 0, sb = 0;
        for (int64_t blk = 0; blk < nb; blk++) {
            sw += part[blk * 2 * C + j];
            sb += part[blk * 2 * C + C + j];
        }
        if (dW)
            dW[j] += (float)sw;
        if (dB)
            dB[j] += (float)sb;
    }
}

const ssl_op_def_t ssl_opdef_layer_norm = {
    "layer_norm", 2, layer_norm_shape, layer_norm_forward, layer_norm_backward, 0};

ssl_tensor_t *ssl_layer_norm(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *weight,
                             ssl_tensor_t *bias, float eps)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_LAYER_NORM, 3, x, weight, bias);
    n.fa[0] = eps;
    return ssl__apply(ctx, &n);
}

ssl_tensor_t *ssl_instance_norm_tokens(ssl_ctx_t *ctx, ssl_tensor_t *x, float eps)
{
    if (SSL__NULL_INPUT(x, __func__))
        return NULL;
    if (x->ndim != 3) {
        char s[96];
        ssl_set_error(SSL_ERR_SHAPE, "instance_norm_tokens: x %s must be (B, T, C)",
                      ssl_shape_str(x, s, sizeof s));
        return NULL;
    }
    static const int swap[3] = {0, 2, 1};
    ssl_tensor_t *t = ssl_layer_norm(ctx, ssl_permute(ctx, x, swap), NULL, NULL, eps); // (B, C, T)
    return ssl_permute(ctx, t, swap);                                                 // (B, T, C)
}

ssl_tensor_t *ssl_group_norm(ssl_ctx_t *ctx, ssl_tensor_t *x, int groups, ssl_tensor_t *weight,
                             ssl_tensor_t *bias, float eps)
{
    if (SSL__NULL_INPUT(x, __func__))
        return NULL;
    char s[96];
    if (x->ndim < 2 || groups < 1 || x->shape[1] % groups) {
        ssl_set_error(SSL_ERR_SHAPE, "group_norm: x %s must be (N, C, ...) with C a multiple of "
                      "groups %d", ssl_shape_str(x, s, sizeof s), groups);
        return NULL;
    }
    int64_t N = x->shape[0], C = x->shape[1];
    if (!affine_vec_ok(weight, C) || !affine_vec_ok(bias, C)) {
        ssl_set_error(SSL_ERR_SHAPE, "group_norm: weight and bias must be (%lld) or NULL",
                      (long long)C);
        return NULL;
    }
    int64_t shape[SSL_MAX_DIMS] = {1, C, 1, 1, 1};
    ssl_tensor_t *y = ssl_reshape(ctx, x, 2, (int64_t[]){N * groups, x->numel / (N * groups)});
    y = ssl_reshape(ctx, ssl_layer_norm(ctx, y, NULL, NULL, eps), x->ndim, x->shape);
    if (weight)
        y = ssl_mul(ctx, y, ssl_reshape(ctx, weight, x->ndim, shape));
    if (bias)
        y = ssl_add(ctx, y, ssl_reshape(ctx, bias, x->ndim, shape));
    return y;
}

/* ---------------------------------------------------------------- batch_norm */

/* in: x (N, C, *spatial), weight (C), bias (C), running_mean (C), running_var (C), each of the
 * last four may be NULL. ia[0] = training; fa[0] = momentum, fa[1] = eps.
 * aux[0]: float (2, C) = mean, rstd used to normalise (batch or running statistics).
 * The running statistics are parameter-store buffers: updated in place by a training forward,
 * never differentiated. */

typedef struct bn_dims {
    int64_t n, c, s; /* x viewed as (N, C, S) */
} bn_dims_t;

static bn_dims_t bn_dims(const ssl_tensor_t *x)
{
    bn_dims_t d = {x->shape[0], x->shape[1], 1};
    for (int i = 2; i < x->ndim; i++)
        d.s *= x->shape[i];
    return d;
}

/* Channels per task when S == 1: the inner loop runs along a row of x, which is contiguous. */
#define BN_TILE 64

static int batch_norm_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0], *rm = nd->in[3], *rv = nd->in[4];
    const int training = (int)nd->ia[0];
    if (x->ndim < 2)
        return ssl__op_error(nd, "x must be (N, C) or (N, C, ...spatial)");
    static const char *const names[5] = {"x", "weight", "bias", "running_mean", "running_var"};
    int64_t c = x->shape[1];
    for (int i = 1; i < 5; i++)
        if (!affine_vec_ok(nd->in[i], c))
            return ssl__op_error(nd, "%s must have shape (%lld), the channels of x", names[i],
                                 (long long)c);
    if (!rm != !rv)
        return ssl__op_error_status(nd, SSL_ERR_INVALID,
                                    "running_mean and running_var must both be given or both "
                                    "be NULL");
    if (!training && !rm)
        return ssl__op_error_status(nd, SSL_ERR_INVALID,
                                    "eval mode needs running_mean and running_var");
    if (!(nd->fa[0] >= 0.0f && nd->fa[0] <= 1.0f))
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "momentum must be in [0, 1], got %g",
                                    (double)nd->fa[0]);
    if (!finite_nonneg(nd->fa[1]))
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "eps must be finite and >= 0, got %g",
                                    (double)nd->fa[1]);
    if (nd->n_in > 5 && !ssl_same_shape(nd->in[5], x)) {
        char sr[96], sx[96];
        return ssl__op_error(nd, "residual has shape %s, x has %s",
                             ssl_shape_str(nd->in[5], sr, sizeof sr),
                             ssl_shape_str(x, sx, sizeof sx));
    }
    bn_dims_t d = bn_dims(x);
    if (training && c > 0 && d.n * d.s <= 1)
        return ssl__op_error(nd, "training needs more than one value per channel");
    *ndim = x->ndim;
    memcpy(shape, x->shape, (size_t)x->ndim * sizeof(int64_t));
    return SSL_OK;
}

/* Plane partial sums in memory order: the two-sum passes over (N, C, S) activations ran
 * channel by channel, a plane of S values then a jump of C S values, and streamed at half the
 * bandwidth of a sequential pass; planes are now summed in order (threads over contiguous runs
 * of planes) into pp (2 per plane), and each channel's planes added in image order afterwards:
 * the same sums in the same order as before. */
static void plane_partials_shift2(const float *X, bn_dims_t d, double *pp)
{
#pragma omp parallel for schedule(static) if (d.n * d.c * d.s > SSL_OMP_MIN)
    for (int64_t p = 0; p < d.n * d.c; p++) {
        const double k0 = (double)X[p % d.c * d.s]; /* the channel's first value */
        dsum_shift2(X + p * d.s, d.s, k0, pp + 2 * p, pp + 2 * p + 1);
    }
}

/* Channel c's two sums: its planes' partials added in image order */
static void channel_sums(const double *pp, bn_dims_t d, int64_t c, double *s1, double *s2)
{
    double a = 0, b = 0;
    for (int64_t i = 0; i < d.n; i++) {
        a += pp[2 * (i * d.c + c)];
        b += pp[2 * (i * d.c + c) + 1];
    }
    *s1 = a;
    *s2 = b;
}

/* Batch mean and biased variance of channels [c0, c1) in double; pp: the plane partials of
 * planes (S > 1). */
static void bn_stats(const float *X, const double *pp, bn_dims_t d, int64_t c0, int64_t c1,
                     double *mean, double *var)
{
    const double cnt = (double)(d.n * d.s);
    if (d.s == 1) {
        for (int64_t c = c0; c < c1; c++)
            mean[c - c0] = 0;
        for (int64_t i = 0; i < d.n; i++) {
            const float *xr = X + i * d.c;
            for (int64_t c = c0; c < c1; c++)
                mean[c - c0] += (double)xr[c];
        }
        for (int64_t c = c0; c < c1; c++) {
            mean[c - c0] /= cnt;
            var[c - c0] = 0;
        }
        for (int64_t i = 0; i < d.n; i++) {
            const float *xr = X + i * d.c;
            for (int64_t c = c0; c < c1; c++) {
                double v = (double)xr[c] - mean[c - c0];
                var[c - c0] += v * v;
            }
        }
        for (int64_t c = c0; c < c1; c++)
            var[c - c0] /= cnt;
        return;
    }
    for (int64_t c = c0; c < c1; c++) {
        double s1, s2, k0 = d.n > 0 && d.s > 0 ? (double)X[c * d.s] : 0.0;
        channel_sums(pp, d, c, &s1, &s2);
        const double dm = s1 / cnt, v = s2 / cnt - dm * dm;
        mean[c - c0] = k0 + dm;
        var[c - c0] = v > 0 ? v : 0;
    }
}

typedef struct bn_fwd {
    const float *X, *R; /* R: the residual added before the relu, or NULL */
    float *Y;
    const float *w, *b;
    ssl_tensor_t *rmt, *rvt;
    bn_dims_t d;
    int training, relu;
    double momentum, eps;
    float *stats, *scale, *shift; /* (2, C) mean, rstd; (C); (C) */
    uint16_t *gate;               /* the relu's gate bits (gate_words(S) per plane), or NULL */
    const double *pp;             /* training, S > 1: the planes' partial sums */
    const double *gmean, *gvar;   /* SyncBN: mean and variance over all ranks, or NULL */
    double gcnt;                  /* SyncBN: values per channel over all ranks */
} bn_fwd_t;

/* Statistics (batch or running) of channels [c0, c1), y = x * scale + shift coefficients, and
 * the running statistics' update. */
static void bn_fwd_coefs(const bn_fwd_t *f, int64_t c0, int64_t c1)
{
    const int64_t C = f->d.c;
    const double cnt = f->gmean ? f->gcnt : (double)(f->d.n * f->d.s);
    double mean[BN_TILE], var[BN_TILE];
    if (f->gmean) {
        for (int64_t c = c0; c < c1; c++) {
            mean[c - c0] = f->gmean[c];
            var[c - c0] = f->gvar[c];
        }
    } else if (f->training) {
        bn_stats(f->X, f->pp, f->d, c0, c1, mean, var);
    } else {
        for (int64_t c = c0; c < c1; c++) {
            mean[c - c0] = f->rmt->data[c];
            var[c - c0] = f->rvt->data[c];
        }
    }
    for (int64_t c = c0; c < c1; c++) {
        const double m = mean[c - c0], rs = 1.0 / sqrt(var[c - c0] + f->eps);
        const double sc = f->w ? (double)f->w[c] * rs : rs;
        f->stats[c] = (float)m;
        f->stats[C + c] = (float)rs;
        f->scale[c] = (float)sc;
        f->shift[c] = (float)((f->b ? (double)f->b[c] : 0.0) - m * sc);
        if (f->training && f->rmt) {
            /* PyTorch: running = (1 - m) running + m batch, with the unbiased variance */
            const double unbiased = var[c - c0] * cnt / (cnt - 1.0);
            f->rmt->data[c] = (float)((1.0 - f->momentum) * f->rmt->data[c] + f->momentum * m);
            f->rvt->data[c] =
                (float)((1.0 - f->momentum) * f->rvt->data[c] + f->momentum * unbiased);
        }
    }
}

/* Plane p = i * C + c of y from x, and its gate bits when kept. */
static void bn_fwd_plane(const bn_fwd_t *f, int64_t p)
{
    const int64_t S = f->d.s;
    const float sc = f->scale[p % f->d.c], sh = f->shift[p % f->d.c];
    const float *xp = f->X + p * S, *rp = f->R ? f->R + p * S : NULL;
    float *yp = f->Y + p * S;
    uint16_t *gp = f->gate ? f->gate + p * gate_words(S) : NULL;
    if (!f->relu) {
        for (int64_t k = 0; k < S; k++)
            yp[k] = xp[k] * sc + sh;
        return;
    }
    if (rp)
        for (int64_t k = 0; k < S; k++) {
            float v = xp[k] * sc + sh + rp[k];
            yp[k] = v > 0.0f ? v : 0.0f;
        }
    else
        for (int64_t k = 0; k < S; k++) {
            float v = xp[k] * sc + sh;
            yp[k] = v > 0.0f ? v : 0.0f;
        }
    if (!gp)
        return;
#if defined(__AVX512F__)
    for (int64_t k = 0; k < S; k += 16)
        gp[k / 16] = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(ssl__lanes16(S - k), yp + k),
                                        _mm512_setzero_ps(), _CMP_GT_OQ);
#else
    for (int64_t k = 0; k < S; k++) {
        if (k % 16 == 0)
            gp[k / 16] = 0;
        gp[k / 16] |= (uint16_t)((yp[k] > 0.0f) << (k % 16));
    }
#endif
}

/* SyncBN (comm.h): the mean and the biased variance of each channel over the batch of every
 * rank, in two sums over the ranks (the values, then the squared deviations from the mean) so
 * the variance keeps its precision; each rank's partial sums run in image order. gm, gv: (C);
 * *gcnt: the values per channel over all ranks. */
static int bn_sync_stats(ssl_ctx_t *ctx, const ssl_comm_t *cm, const float *X, bn_dims_t d,
                         double *gm, double *gv, double *gcnt)
{
    const int64_t C = d.c;
    double *buf = ssl_arena_alloc(ctx, sizeof(double) * (size_t)(C + 1));
    if (!buf)
        return SSL_ERR_NOMEM;
    for (int pass = 0; pass < 2; pass++) {
#pragma omp parallel for schedule(static) if (d.n * C * d.s > SSL_OMP_MIN)
        for (int64_t c = 0; c < C; c++) {
            double a = 0;
            for (int64_t i = 0; i < d.n; i++) {
                const float *xp = X + (i * C + c) * d.s;
                a += pass ? dsum_sqdev(xp, d.s, gm[c]) : dsum(xp, d.s);
            }
            buf[c] = a;
        }
        buf[C] = (double)(d.n * d.s);
        int st = cm->allreduce_f64(cm->user, buf, pass ? C : C + 1);
        if (st != SSL_OK)
            return st;
        if (!pass)
            *gcnt = buf[C];
        for (int64_t c = 0; c < C; c++)
            (pass ? gv : gm)[c] = buf[c] / *gcnt;
    }
    return SSL_OK;
}

static int batch_norm_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    const ssl_tensor_t *x = nd->in[0], *wt = nd->in[1], *bt = nd->in[2];
    ssl_tensor_t *rmt = nd->in[3], *rvt = nd->in[4];
    const int training = (int)nd->ia[0], relu = (int)nd->ia[1];
    const double momentum = nd->fa[0], eps = nd->fa[1];
    const bn_dims_t d = bn_dims(x);
    const int64_t C = d.c, S = d.s;
    float *stats = ssl_arena_alloc(ctx, (size_t)(C > 0 ? C : 1) * 2 * sizeof(float));
    /* per-channel y = x * scale + shift */
    float *ss = ssl_arena_alloc(ctx, (size_t)(C > 0 ? C : 1) * 2 * sizeof(float));
    if (!stats || !ss)
        return SSL_ERR_NOMEM;
    nd->aux[0] = stats; // (2, C): mean, rstd
    float *scale = ss, *shift = ss + C;
    const float *X = x->data; // (N, C, S)
    const float *w = wt ? wt->data : NULL, *b = bt ? bt->data : NULL;
    const float *R = nd->n_in > 5 ? nd->in[5]->data : NULL;
    /* the relu's gate bits, for backward (planes only: batch norm over rows reads y) */
    uint16_t *gate = NULL;
    if (relu && S > 1 && ssl_ctx_grad_enabled(ctx)) {
        gate = ssl_arena_alloc(ctx, (size_t)(d.n * C * gate_words(S)) * sizeof(uint16_t) + 1);
        if (!gate)
            return SSL_ERR_NOMEM;
    }
    nd->aux[1] = gate;
    const ssl_comm_t *cm = training ? ssl__ctx_comm(ctx) : NULL;
    if (cm && !cm->sync_bn)
        cm = NULL;
    double *pp = NULL, *gm = NULL, gcnt = 0;
    if (cm) {
        if (!(gm = ssl_arena_alloc(ctx, sizeof(double) * (size_t)(2 * C + 1))))
            return SSL_ERR_NOMEM;
        int st = bn_sync_stats(ctx, cm, X, d, gm, gm + C, &gcnt);
        if (st != SSL_OK)
            return st;
    } else if (training && S > 1) {
        pp = ssl__scratch(ctx, (size_t)(2 * d.n * C) * sizeof(double) + 1);
        if (!pp)
            return SSL_ERR_NOMEM;
        plane_partials_shift2(X, d, pp);
    }
    nd->ia[2] = cm != NULL; /* backward sums over the ranks too */
    bn_fwd_t f = {X,     R,     nd->out->data, w,    b,  rmt,          rvt, d, training, relu,
                  momentum, eps, stats,        scale, shift, gate, pp, gm, gm ? gm + C : NULL, gcnt};
    const int64_t ntiles = S == 1 ? (C + BN_TILE - 1) / BN_TILE : C;
    const int64_t tile = S == 1 ? BN_TILE : 1;
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
    for (int64_t t = 0; t < ntiles; t++) {
        int64_t c0 = t * tile, c1 = c0 + tile < C ? c0 + tile : C;
        bn_fwd_coefs(&f, c0, c1);
    }
    float *Y = nd->out->data; // (N, C, S)
    if (S == 1) {
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
        for (int64_t i = 0; i < d.n; i++) {
            const float *xr = X + i * C;
            float *yr = Y + i * C;
            for (int64_t c = 0; c < C; c++)
                yr[c] = xr[c] * scale[c] + shift[c];
            if (R)
                for (int64_t c = 0; c < C; c++)
                    yr[c] += R[i * C + c];
            if (relu)
                for (int64_t c = 0; c < C; c++)
                    yr[c] = yr[c] > 0.0f ? yr[c] : 0.0f;
        }
    } else {
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
        for (int64_t p = 0; p < d.n * C; p++)
            bn_fwd_plane(&f, p);
    }
    return SSL_OK;
}

/* Per channel: sum dy and sum dy * (x - mean) over channels [c0, c1). */
/* sum g and sum g (x - mean) of every plane, in memory order (as plane_partials_shift2) */
static void plane_partials_g_gx(const float *X, const float *dY, const uint16_t *gate,
                                bn_dims_t d, const float *mean, double *pp)
{
#pragma omp parallel for schedule(static) if (d.n * d.c * d.s > SSL_OMP_MIN)
    for (int64_t p = 0; p < d.n * d.c; p++)
        dsum_g_gx(dY + p * d.s, gate ? gate + p * gate_words(d.s) : NULL, X + p * d.s, d.s,
                  (double)mean[p % d.c], pp + 2 * p, pp + 2 * p + 1);
}

/* Per channel in [c0, c1): sum g and sum g (x - mean), from the plane partials pp (S > 1). */
static void bn_grad_sums(const float *X, const float *dY, const float *Y, const double *pp,
                         bn_dims_t d, const float *mean, int64_t c0, int64_t c1, double *sg,
                         double *sgx)
{
    if (d.s == 1) {
        for (int64_t c = c0; c < c1; c++)
            sg[c - c0] = sgx[c - c0] = 0;
        for (int64_t i = 0; i < d.n; i++) {
            const float *xr = X + i * d.c, *gr = dY + i * d.c;
            const float *yr = Y ? Y + i * d.c : NULL;
            for (int64_t c = c0; c < c1; c++) {
                double g = yr && !(yr[c] > 0.0f) ? 0.0 : (double)gr[c];
                sg[c - c0] += g;
                sgx[c - c0] += g * ((double)xr[c] - (double)mean[c]);
            }
        }
        return;
    }
    for (int64_t c = c0; c < c1; c++) {
        channel_sums(pp, d, c, &sg[c - c0], &sgx[c - c0]);
    }
}

typedef struct bn_bwd {
    const float *X, *dY, *Y; /* Y: the fused relu's output (rows, S == 1), or NULL */
    const uint16_t *gate;    /* the fused relu's gate bits (planes, S > 1), or NULL */
    float *dR;               /* the residual's gradient, written with dx (or NULL) */
    int rfresh;              /* dR is stored, else added to */
    const float *w, *mean, *rstd;
    bn_dims_t d;
    int training;
    float *dX; /* NULL when x needs no gradient */
    int fresh; /* dX is stored (a fresh or taken-over buffer), else added to */
    float *dW, *dB;
    float *k1, *k2, *k0; /* (C) each */
    const double *pp;    /* S > 1: the planes' gradient sums */
    const double *gsum;  /* SyncBN: (2, C) sum g and sum g (x - mean) over all ranks, or NULL */
    double gcnt;         /* SyncBN: values per channel over all ranks */
} bn_bwd_t;

/* Channels [c0, c1): gradient sums, dW and dB, and dx's coefficients k1, k2, k0. */
static void bn_bwd_coefs(const bn_bwd_t *b, int64_t c0, int64_t c1)
{
    const int need_sums = b->training ? (b->dX || b->dW || b->dB) : (b->dW || b->dB);
    const double cnt = b->gsum ? b->gcnt : (double)(b->d.n * b->d.s);
    double sg[BN_TILE], sgx[BN_TILE];
    if (need_sums)
        bn_grad_sums(b->X, b->dY, b->Y, b->pp, b->d, b->mean, c0, c1, sg, sgx);
    /* SyncBN: dW and dB from this rank's sums (the gradient all-reduce adds the ranks'), dx
     * from the sums over all ranks */
    const double *gsg = b->gsum ? b->gsum + c0 : sg, *gsgx = b->gsum ? b->gsum + b->d.c + c0 : sgx;
    for (int64_t c = c0; c < c1; c++) {
        const double rs = b->rstd[c], wc = b->w ? (double)b->w[c] : 1.0;
        if (b->dW)
            b->dW[c] += (float)(sgx[c - c0] * rs);
        if (b->dB)
            b->dB[c] += (float)sg[c - c0];
        b->k1[c] = (float)(wc * rs);
        if (b->training) {
            b->k2[c] = (float)(-wc * rs * rs * rs * gsgx[c - c0] / cnt);
            b->k0[c] = (float)(-wc * rs * gsg[c - c0] / cnt);
        } else {
            b->k2[c] = 0.0f;
            b->k0[c] = 0.0f;
        }
    }
}

/* Plane p = i * C + c of dx (in place over dy when dx took dy's buffer) and, when dR is given,
 * of the residual's gradient (the gated dy), in the same pass. */
static void bn_dx_plane(const bn_bwd_t *b, int64_t p)
{
    const int64_t S = b->d.s, c = p % b->d.c;
    const float a1 = b->k1[c], a2 = b->k2[c], a0 = b->k0[c], m = b->mean[c];
    const float *xp = b->X + p * S, *gp = b->dY + p * S;
    const uint16_t *mp = b->gate ? b->gate + p * gate_words(S) : NULL;
    float *dxp = b->dX + p * S, *drp = b->dR ? b->dR + p * S : NULL;
#if defined(__AVX512F__)
    const __m512 v1 = _mm512_set1_ps(a1), v2 = _mm512_set1_ps(a2), v0 = _mm512_set1_ps(a0),
                 vm = _mm512_set1_ps(m);
    for (int64_t k = 0; k < S; k += 16) {
        __mmask16 n = ssl__lanes16(S - k), on = mp ? (__mmask16)(mp[k / 16] & n) : n;
        __m512 g = _mm512_maskz_loadu_ps(on, gp + k);
        if (drp)
            _mm512_mask_storeu_ps(drp + k, n,
                                  b->rfresh ? g
                                            : _mm512_add_ps(g, _mm512_maskz_loadu_ps(n, drp + k)));
        /* a1 g + a2 (x - m) + a0, in the scalar loop's order */
        __m512 v = _mm512_add_ps(
            _mm512_add_ps(_mm512_mul_ps(v1, g),
                          _mm512_mul_ps(v2, _mm512_sub_ps(_mm512_maskz_loadu_ps(n, xp + k), vm))),
            v0);
        if (!b->fresh)
            v = _mm512_add_ps(_mm512_maskz_loadu_ps(n, dxp + k), v);
        _mm512_mask_storeu_ps(dxp + k, n, v);
    }
#else
    for (int64_t k = 0; k < S; k++) {
        float g = mp ? gated(gp[k], mp, k) : gp[k];
        if (drp)
            drp[k] = b->rfresh ? g : drp[k] + g;
        float v = a1 * g + a2 * (xp[k] - m) + a0;
        dxp[k] = b->fresh ? v : dxp[k] + v;
    }
#endif
}

/* SyncBN backward: every rank's sums of g and g (x - mean) per channel, added over the ranks
 * into b->gsum (each rank's dx needs the gradient of the shared statistics). */
static int bn_sync_grad_sums(ssl_ctx_t *ctx, bn_bwd_t *b, int64_t ntiles, int64_t tile)
{
    const ssl_comm_t *cm = ssl__ctx_comm(ctx);
    const int64_t C = b->d.c;
    double *g = ssl_arena_alloc(ctx, sizeof(double) * (size_t)(2 * C + 1));
    if (!cm || !g)
        return ssl_set_error(cm ? SSL_ERR_NOMEM : SSL_ERR_STATE,
                             "batch_norm backward: %s", cm ? "out of memory" : "no ranks attached");
#pragma omp parallel for schedule(static) if (b->d.n * C * b->d.s > SSL_OMP_MIN)
    for (int64_t t = 0; t < ntiles; t++) {
        int64_t c0 = t * tile, c1 = c0 + tile < C ? c0 + tile : C;
        double sg[BN_TILE], sgx[BN_TILE];
        bn_grad_sums(b->X, b->dY, b->Y, b->pp, b->d, b->mean, c0, c1, sg, sgx);
        for (int64_t c = c0; c < c1; c++) {
            g[c] = sg[c - c0];
            g[C + c] = sgx[c - c0];
        }
    }
    g[2 * C] = (double)(b->d.n * b->d.s);
    int st = cm->allreduce_f64(cm->user, g, 2 * C + 1);
    if (st != SSL_OK)
        return st;
    b->gsum = g;
    b->gcnt = g[2 * C];
    return SSL_OK;
}

static void batch_norm_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    ssl_tensor_t *x = nd->in[0], *wt = nd->in[1], *bt = nd->in[2];
    const int training = (int)nd->ia[0];
    const bn_dims_t d = bn_dims(x);
    const int64_t C = d.c, S = d.s;
    const float *X = x->data, *dY = nd->out->grad;    // (N, C, S)
    const float *mean = nd->aux[0], *rstd = mean + C; // (C), (C)
    const float *w = wt ? wt->data : NULL;
    float *dW = ssl__grad(ctx, wt), *dB = ssl__grad(ctx, bt);
    /* dx may take over dy's buffer (nothing reads dy after this node): the last pass then
     * rewrites it in place, element by element, and no zeroed buffer is needed */
    int fresh = 0;
    float *dX = x->requires_grad ? ssl__grad_take(ctx, x, nd->out, &fresh) : NULL;
    if (!dX && !dW && !dB)
        return;
    /* fused relu: the gradient reaching the normalisation is dy where y > 0 (the gate bits
     * of planes, y itself for rows) */
    const uint16_t *gate = nd->aux[1];
    const float *Y = nd->ia[1] && !gate ? nd->out->data : NULL;
    /* Per channel: k1 multiplies dy, k2 multiplies (x - mean), k0 is added:
     * training dx = w rstd (dy - mean(dy) - xhat mean(dy xhat)), eval dx = w rstd dy. */
    float *coef = ssl_arena_alloc(ctx, (size_t)(C > 0 ? C : 1) * 3 * sizeof(float));
    if (!coef)
        return;
    bn_bwd_t b = {X,  dY,    Y,  gate, NULL, 0,    w,        mean,        rstd, d, training,
                  dX, fresh, dW, dB,   coef, coef + C, coef + 2 * C, NULL, NULL, 0};
    if (nd->n_in > 5) {
        /* residual: its gradient is dy where the output is positive; written in dx's pass over
         * the planes, else here, before dx (which may overwrite dy) */
        int rfresh = 0;
        float *dR = ssl__grad_write(ctx, nd->in[5], &rfresh);
        if (dR && gate && dX) {
            b.dR = dR;
            b.rfresh = rfresh;
        } else if (dR) {
            const int64_t n = x->numel, ws = gate_words(S);
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
            for (int64_t i = 0; i < n; i++) {
                float g = gate ? gated(dY[i], gate + i / S * ws, i % S)
                               : Y[i] > 0.0f ? dY[i] : 0.0f;
                dR[i] = rfresh ? g : dR[i] + g;
            }
        } else if (nd->in[5]->requires_grad) {
            return; /* out of memory shows in the context's flag */
        }
    }
    if (S > 1 && (training ? (dX || dW || dB) : (dW || dB))) {
        double *pp = ssl__scratch(ctx, (size_t)(2 * d.n * C) * sizeof(double) + 1);
        if (!pp)
            return;
        plane_partials_g_gx(X, dY, gate, d, mean, pp);
        b.pp = pp;
    }
    const int64_t ntiles = S == 1 ? (C + BN_TILE - 1) / BN_TILE : C;
    const int64_t tile = S == 1 ? BN_TILE : 1;
    if (nd->ia[2] && bn_sync_grad_sums(ctx, &b, ntiles, tile) != SSL_OK)
        return; /* the comm failed or out of memory: the error is set */
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
    for (int64_t t = 0; t < ntiles; t++) {
        int64_t c0 = t * tile, c1 = c0 + tile < C ? c0 + tile : C;
        bn_bwd_coefs(&b, c0, c1);
    }
    if (!dX)
        return;
    const float *k1 = b.k1, *k2 = b.k2, *k0 = b.k0;
    if (S == 1) {
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
        for (int64_t i = 0; i < d.n; i++) {
            const float *xr = X + i * C, *gr = dY + i * C, *yr = Y ? Y + i * C : NULL;
            float *dxr = dX + i * C;
            for (int64_t c = 0; c < C; c++) {
                float g = yr && !(yr[c] > 0.0f) ? 0.0f : gr[c];
                float v = k1[c] * g + k2[c] * (xr[c] - mean[c]) + k0[c];
                dxr[c] = fresh ? v : dxr[c] + v;
            }
        }
    } else {
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
        for (int64_t p = 0; p < d.n * C; p++)
            bn_dx_plane(&b, p);
    }
}

const ssl_op_def_t ssl_opdef_batch_norm = {
    "batch_norm", 4, batch_norm_shape, batch_norm_forward, batch_norm_backward, 0};

static ssl_tensor_t *batch_norm_node(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *weight,
                                     ssl_tensor_t *bias, ssl_tensor_t *running_mean,
                                     ssl_tensor_t *running_var, int training, float momentum,
                                     float eps, int relu, ssl_tensor_t *residual)
{
    if (!x || (relu == 2 && !residual)) {
        ssl__null_input("batch_norm", !x ? "x" : "residual");
        return NULL;
    }
    if (!ctx) {
        ssl_set_error(SSL_ERR_INVALID, "batch_norm: NULL context");
        return NULL;
    }
    /* Five or six inputs: more than the node's inline slots, so the list lives in the arena. */
    int n_in = relu == 2 ? 6 : 5;
    ssl_tensor_t **in = ssl_arena_alloc(ctx, (size_t)n_in * sizeof *in);
    if (!in)
        return NULL;
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_BATCH_NORM, n_in, x, weight, bias, running_mean);
    in[0] = x;
    in[1] = weight;
    in[2] = bias;
    in[3] = running_mean;
    in[4] = running_var;
    if (n_in > 5)
        in[5] = residual;
    n.in = in;
    n.ia[0] = training != 0;
    n.ia[1] = relu != 0; /* 2: with a residual (in[5]) added before the relu */
    n.fa[0] = momentum;
    n.fa[1] = eps;
    return ssl__apply(ctx, &n);
}

ssl_tensor_t *ssl_batch_norm(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *weight,
                             ssl_tensor_t *bias, ssl_tensor_t *running_mean,
                             ssl_tensor_t *running_var, int training, float momentum, float eps)
{
    return batch_norm_node(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps,
                           0, NULL);
}

ssl_tensor_t *ssl_batch_norm_relu(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *weight,
                                  ssl_tensor_t *bias, ssl_tensor_t *running_mean,
                                  ssl_tensor_t *running_var, int training, float momentum,
                                  float eps)
{
    return batch_norm_node(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps,
                           1, NULL);
}

ssl_tensor_t *ssl_batch_norm_add_relu(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *weight,
                                      ssl_tensor_t *bias, ssl_tensor_t *running_mean,
                                      ssl_tensor_t *running_var, ssl_tensor_t *residual,
                                      int training, float momentum, float eps)
{
    return batch_norm_node(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps,
                           2, residual);
}

/* ---------------------------------------------------------------- dropout */

/* in: x. ia[0] = training, ia[1] = seed, ia[2] = stream; fa[0] = p, fa[1] = 1 / (1 - p).
 * Element i is kept iff ssl_rng_uniform(seed, stream, i) >= p. One Philox block gives the
 * words of elements 4b..4b+3, exactly as ssl_rng_u32 indexes them. */

static int dropout_active(const ssl_node_t *nd)
{
    return nd->ia[0] && nd->fa[0] > 0.0f;
}

static uint64_t dropout_u64(int64_t v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static int dropout_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0];
    float p = nd->fa[0];
    if (!(p >= 0.0f && p < 1.0f))
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "p must be in [0, 1), got %g", (double)p);
    *ndim = x->ndim;
    memcpy(shape, x->shape, (size_t)x->ndim * sizeof(int64_t));
    return SSL_OK;
}

/* out[i] = keep(i) ? in[i] * scale : 0, or out[i] += that when acc. */
static void dropout_apply(const float *src, float *dst, int64_t n, float p, float scale,
                          uint64_t seed, uint64_t stream, int acc)
{
    const int64_t nblk = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN / 4)
    for (int64_t blk = 0; blk < nblk; blk++) {
        uint32_t wd[4];
        ssl_philox4x32(seed, stream, (uint64_t)blk, wd);
        const int64_t i0 = blk * 4, cnt = n - i0 < 4 ? n - i0 : 4;
        for (int64_t k = 0; k < cnt; k++) {
            /* the same conversion as ssl_rng_uniform: 24 bits to [0, 1) */
            const float u = (float)(wd[k] >> 8) * (1.0f / 16777216.0f);
            const float v = u >= p ? src[i0 + k] * scale : 0.0f;
            if (acc)
                dst[i0 + k] += v;
            else
                dst[i0 + k] = v;
        }
    }
}

static int dropout_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    const ssl_tensor_t *x = nd->in[0];
    if (!dropout_active(nd)) {
        if (x->numel)
            memcpy(nd->out->data, x->data, (size_t)x->numel * sizeof(float));
        return SSL_OK;
    }
    dropout_apply(x->data, nd->out->data, x->numel, nd->fa[0], nd->fa[1], dropout_u64(nd->ia[1]),
                  dropout_u64(nd->ia[2]), 0);
    return SSL_OK;
}

static void dropout_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    ssl_tensor_t *x = nd->in[0];
    float *dX = ssl__grad(ctx, x);
    if (!dX)
        return;
    const float *dY = nd->out->grad;
    if (!dropout_active(nd)) {
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
        for (int64_t i = 0; i < x->numel; i++)
            dX[i] += dY[i];
        return;
    }
    dropout_apply(dY, dX, x->numel, nd->fa[0], nd->fa[1], dropout_u64(nd->ia[1]),
                  dropout_u64(nd->ia[2]), 1);
}

const ssl_op_def_t ssl_opdef_dropout = {"dropout",        0, dropout_shape, dropout_forward,
                                        dropout_backward, 0};

ssl_tensor_t *ssl_dropout(ssl_ctx_t *ctx, ssl_tensor_t *x, float p, int training, uint64_t seed,
                          uint64_t stream)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_DROPOUT, 1, x);
    n.ia[0] = training != 0;
    /* stored bit for bit (no implementation-defined conversion), read back as uint64_t */
    memcpy(&n.ia[1], &seed, sizeof seed);
    memcpy(&n.ia[2], &stream, sizeof stream);
    n.fa[0] = p;
    n.fa[1] = (p >= 0.0f && p < 1.0f) ? 1.0f / (1.0f - p) : 0.0f;
    return ssl__apply(ctx, &n);
}
