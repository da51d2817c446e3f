/* Normalisation and dropout: layer_norm (per row over the last dim), batch_norm (per channel
 * over the batch and spatial dims, with in-place running statistics) and inverted dropout whose
 * mask is recomputed from the counter-based RNG instead of being stored.
 *
 * Reductions are done in double in a fixed order (per row, per channel, or in row blocks whose
 * split depends only on the shape), so results do not depend on the number of threads. */
#include "core_internal.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- double-accumulated sums */

/* DACC independent accumulators break the add dependency chain and fill a vector register;
 * the order is fixed by the index, so the result is the same on any thread. */
#define DACC 8

static inline double dfold(const double *a)
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
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

/* sum (x - k) and sum (x - k)^2 in one pass (k: a value of the data, which keeps the variance
 * E[(x-k)^2] - E[x-k]^2 free of cancellation for data far from zero) */
static inline void dsum_shift2(const float *x, int64_t n, double k0, double *s1, double *s2)
{
    double a[DACC] = {0}, b[DACC] = {0};
    int64_t i = 0;
    for (; i + DACC <= n; i += DACC)
        for (int k = 0; k < DACC; k++) {
            double d = (double)x[i + k] - k0;
            a[k] += d;
            b[k] += d * d;
        }
    for (int k = 0; i < n; i++, k++) {
        double d = (double)x[i] - k0;
        a[k] += d;
        b[k] += d * d;
    }
    *s1 = dfold(a);
    *s2 = dfold(b);
}

/* sum g and sum g * (x - mean) */
static inline void dsum_g_gx(const float *g, const float *x, int64_t n, double mean, double *sg,
                             double *sgx)
{
    double a[DACC] = {0}, b[DACC] = {0};
    int64_t i = 0;
    for (; i + DACC <= n; i += DACC)
        for (int k = 0; k < DACC; k++) {
            double gk = (double)g[i + k];
            a[k] += gk;
            b[k] += gk * ((double)x[i + k] - mean);
        }
    for (int k = 0; i < n; i++, k++) {
        a[k] += (double)g[i];
        b[k] += (double)g[i] * ((double)x[i] - mean);
    }
    *sg = dfold(a);
    *sgx = dfold(b);
}

/* The same with g taken only where the fused relu's output y is positive. */
static inline void dsum_g_gx_relu(const float *g, const float *y, const float *x, int64_t n,
                                  double mean, double *sg, double *sgx)
{
    double a[DACC] = {0}, b[DACC] = {0};
    int64_t i = 0;
    for (; i + DACC <= n; i += DACC)
        for (int k = 0; k < DACC; k++) {
            double gk = y[i + k] > 0.0f ? (double)g[i + k] : 0.0;
            a[k] += gk;
            b[k] += gk * ((double)x[i + k] - mean);
        }
    for (int k = 0; i < n; i++, k++) {
        double gk = y[i] > 0.0f ? (double)g[i] : 0.0;
        a[k] += gk;
        b[k] += gk * ((double)x[i] - mean);
    }
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
            dsum_g_gx(gr, xr, C, (double)m, &sg, &sgx);
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
    bn_dims_t d = bn_dims(x);
    if (training && c > 0 && d.n * d.s <= 1)
        return ssl__op_error(nd, "training needs more than one value per channel");
    *ndim = x->ndim;
    memcpy(shape, x->shape, (size_t)x->ndim * sizeof(int64_t));
    return SSL_OK;
}

/* Batch mean and biased variance of channels [c0, c1) in double. */
static void bn_stats(const float *X, bn_dims_t d, int64_t c0, int64_t c1, double *mean, double *var)
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
        double s1 = 0, s2 = 0, k0 = d.n > 0 && d.s > 0 ? (double)X[c * d.s] : 0.0;
        for (int64_t i = 0; i < d.n; i++) {
            double a, b;
            dsum_shift2(X + (i * d.c + c) * d.s, d.s, k0, &a, &b);
            s1 += a;
            s2 += b;
        }
        const double dm = s1 / cnt, v = s2 / cnt - dm * dm;
        mean[c - c0] = k0 + dm;
        var[c - c0] = v > 0 ? v : 0;
    }
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
    const int64_t ntiles = S == 1 ? (C + BN_TILE - 1) / BN_TILE : C;
    const int64_t tile = S == 1 ? BN_TILE : 1;
    const double cnt = (double)(d.n * S);
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
    for (int64_t t = 0; t < ntiles; t++) {
        int64_t c0 = t * tile, c1 = c0 + tile < C ? c0 + tile : C;
        double mean[BN_TILE], var[BN_TILE];
        if (training) {
            bn_stats(X, d, c0, c1, mean, var);
        } else {
            for (int64_t c = c0; c < c1; c++) {
                mean[c - c0] = rmt->data[c];
                var[c - c0] = rvt->data[c];
            }
        }
        for (int64_t c = c0; c < c1; c++) {
            const double m = mean[c - c0], rs = 1.0 / sqrt(var[c - c0] + eps);
            const double sc = w ? (double)w[c] * rs : rs;
            stats[c] = (float)m;
            stats[C + c] = (float)rs;
            scale[c] = (float)sc;
            shift[c] = (float)((b ? (double)b[c] : 0.0) - m * sc);
            if (training && rmt) {
                /* PyTorch: running = (1 - m) running + m batch, with the unbiased variance */
                const double unbiased = var[c - c0] * cnt / (cnt - 1.0);
                rmt->data[c] = (float)((1.0 - momentum) * rmt->data[c] + momentum * m);
                rvt->data[c] = (float)((1.0 - momentum) * rvt->data[c] + momentum * unbiased);
            }
        }
    }
    float *Y = nd->out->data; // (N, C, S)
    if (S == 1) {
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
        for (int64_t i = 0; i < d.n; i++) {
            const float *xr = X + i * C;
            float *yr = Y + i * C;
            for (int64_t c = 0; c < C; c++)
                yr[c] = xr[c] * scale[c] + shift[c];
            if (relu)
                for (int64_t c = 0; c < C; c++)
                    yr[c] = yr[c] > 0.0f ? yr[c] : 0.0f;
        }
    } else {
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
        for (int64_t p = 0; p < d.n * C; p++) {
            const float sc = scale[p % C], sh = shift[p % C];
            const float *xp = X + p * S;
            float *yp = Y + p * S;
            if (relu)
                for (int64_t k = 0; k < S; k++) {
                    float v = xp[k] * sc + sh;
                    yp[k] = v > 0.0f ? v : 0.0f;
                }
            else
                for (int64_t k = 0; k < S; k++)
                    yp[k] = xp[k] * sc + sh;
        }
    }
    return SSL_OK;
}

/* Per channel: sum dy and sum dy * (x - mean) over channels [c0, c1). */
static void bn_grad_sums(const float *X, const float *dY, const float *Y, bn_dims_t d,
                         const float *mean, int64_t c0, int64_t c1, double *sg, double *sgx)
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
        double a = 0, bsum = 0;
        for (int64_t i = 0; i < d.n; i++) {
            double s1, s2;
            int64_t off = (i * d.c + c) * d.s;
            if (Y)
                dsum_g_gx_relu(dY + off, Y + off, X + off, d.s, (double)mean[c], &s1, &s2);
            else
                dsum_g_gx(dY + off, X + off, d.s, (double)mean[c], &s1, &s2);
            a += s1;
            bsum += s2;
        }
        sg[c - c0] = a;
        sgx[c - c0] = bsum;
    }
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
    /* fused relu: the gradient reaching the normalisation is dy where y > 0 */
    const float *Y = nd->ia[1] ? nd->out->data : NULL;
    /* Per channel: k1 multiplies dy, k2 multiplies (x - mean), k0 is added:
     * training dx = w rstd (dy - mean(dy) - xhat mean(dy xhat)), eval dx = w rstd dy. */
    float *coef = ssl_arena_alloc(ctx, (size_t)(C > 0 ? C : 1) * 3 * sizeof(float));
    if (!coef)
        return;
    float *k1 = coef, *k2 = coef + C, *k0 = coef + 2 * C;
    const int need_sums = training ? (dX || dW || dB) : (dW || dB);
    const int64_t ntiles = S == 1 ? (C + BN_TILE - 1) / BN_TILE : C;
    const int64_t tile = S == 1 ? BN_TILE : 1;
    const double cnt = (double)(d.n * S);
#pragma omp parallel for schedule(static) if (x->numel > SSL_OMP_MIN)
    for (int64_t t = 0; t < ntiles; t++) {
        int64_t c0 = t * tile, c1 = c0 + tile < C ? c0 + tile : C;
        double sg[BN_TILE], sgx[BN_TILE];
        if (need_sums)
            bn_grad_sums(X, dY, Y, d, mean, c0, c1, sg, sgx);
        for (int64_t c = c0; c < c1; c++) {
            const double rs = rstd[c], wc = w ? (double)w[c] : 1.0;
            if (dW)
                dW[c] += (float)(sgx[c - c0] * rs);
            if (dB)
                dB[c] += (float)sg[c - c0];
            k1[c] = (float)(wc * rs);
            if (training) {
                k2[c] = (float)(-wc * rs * rs * rs * sgx[c - c0] / cnt);
                k0[c] = (float)(-wc * rs * sg[c - c0] / cnt);
            } else {
                k2[c] = 0.0f;
                k0[c] = 0.0f;
            }
        }
    }
    if (!dX)
        return;
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
        for (int64_t p = 0; p < d.n * C; p++) {
            const int64_t c = p % C;
            const float a1 = k1[c], a2 = k2[c], a0 = k0[c], m = mean[c];
            const float *xp = X + p * S, *gp = dY + p * S;
            float *dxp = dX + p * S;
            if (Y && fresh) {
                const float *yp = Y + p * S;
                for (int64_t k = 0; k < S; k++)
                    dxp[k] = a1 * (yp[k] > 0.0f ? gp[k] : 0.0f) + a2 * (xp[k] - m) + a0;
            } else if (Y) {
                const float *yp = Y + p * S;
                for (int64_t k = 0; k < S; k++)
                    dxp[k] += a1 * (yp[k] > 0.0f ? gp[k] : 0.0f) + a2 * (xp[k] - m) + a0;
            } else if (fresh) {
                for (int64_t k = 0; k < S; k++)
                    dxp[k] = a1 * gp[k] + a2 * (xp[k] - m) + a0;
            } else {
                for (int64_t k = 0; k < S; k++)
                    dxp[k] += a1 * gp[k] + a2 * (xp[k] - m) + a0;
            }
        }
    }
}

const ssl_op_def_t ssl_opdef_batch_norm = {
    "batch_norm", 4, batch_norm_shape, batch_norm_forward, batch_norm_backward, 0};

static ssl_tensor_t *batch_norm_node(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *weight,
                                     ssl_tensor_t *bias, ssl_tensor_t *running_mean,
                                     ssl_tensor_t *running_var, int training, float momentum,
                                     float eps, int relu)
{
    if (!x)
        return NULL; /* an earlier op failed: keep its error */
    if (!ctx) {
        ssl_set_error(SSL_ERR_INVALID, "batch_norm: NULL context");
        return NULL;
    }
    /* Five inputs: more than the node's inline slots, so the list lives in the arena. */
    ssl_tensor_t **in = ssl_arena_alloc(ctx, 5 * sizeof *in);
    if (!in)
        return NULL;
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_BATCH_NORM, 5, x, weight, bias, running_mean);
    in[0] = x;
    in[1] = weight;
    in[2] = bias;
    in[3] = running_mean;
    in[4] = running_var;
    n.in = in;
    n.ia[0] = training != 0;
    n.ia[1] = relu;
    n.fa[0] = momentum;
    n.fa[1] = eps;
    return ssl__apply(ctx, &n);
}

ssl_tensor_t *ssl_batch_norm(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *weight,
                             ssl_tensor_t *bias, ssl_tensor_t *running_mean,
                             ssl_tensor_t *running_var, int training, float momentum, float eps)
{
    return batch_norm_node(ctx, x, weight, bias, running_mean, running_var, training, momentum,
                           eps, 0);
}

ssl_tensor_t *ssl_batch_norm_relu(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *weight,
                                  ssl_tensor_t *bias, ssl_tensor_t *running_mean,
                                  ssl_tensor_t *running_var, int training, float momentum,
                                  float eps)
{
    return batch_norm_node(ctx, x, weight, bias, running_mean, running_var, training, momentum,
                           eps, 1);
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
