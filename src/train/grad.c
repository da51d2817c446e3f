/* Gradient clipping (global norm as torch.nn.utils.clip_grad_norm_, per parameter as DINO) and
 * the finite check that lets the trainer name the parameter that went NaN. */
#include "optim_internal.h"

#include <math.h>
#include <stdio.h>

/* Fixed chunking: the same partial sums whatever the thread count. */
#define SUMSQ_CHUNKS 64

#define SUMSQ_LANES 16

static double sumsq_serial(const float *x, int64_t n)
{
    /* independent double lanes in a fixed order: vectorises without reassociation, and gives
     * the same bits on every run */
    double acc[SUMSQ_LANES] = {0};
    int64_t j = 0;
    for (; j + SUMSQ_LANES <= n; j += SUMSQ_LANES)
        for (int l = 0; l < SUMSQ_LANES; l++)
            acc[l] += (double)x[j + l] * (double)x[j + l];
    double s = 0;
    for (; j < n; j++)
        s += (double)x[j] * (double)x[j];
    for (int l = 0; l < SUMSQ_LANES; l++)
        s += acc[l];
    return s;
}

double ssl__sumsq_f32(const float *x, int64_t n)
{
    if (n < SSL_TRAIN_OMP_MIN)
        return sumsq_serial(x, n);
    double part[SUMSQ_CHUNKS];
    int64_t chunk = (n + SUMSQ_CHUNKS - 1) / SUMSQ_CHUNKS;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < SUMSQ_CHUNKS; c++) {
        int64_t lo = (int64_t)c * chunk, hi = lo + chunk < n ? lo + chunk : n;
        part[c] = lo < hi ? sumsq_serial(x + lo, hi - lo) : 0.0;
    }
    double s = 0;
    for (int c = 0; c < SUMSQ_CHUNKS; c++)
        s += part[c];
    return s;
}

static void scale(float *x, int64_t n, float a)
{
#pragma omp parallel for schedule(static) if (n >= SSL_TRAIN_OMP_MIN)
    for (int64_t j = 0; j < n; j++)
        x[j] *= a;
}

int ssl_grad_clip_norm(ssl_params_t *p, double max_norm, double *total_norm)
{
    if (total_norm)
        *total_norm = 0;
    if (!p || !(max_norm > 0))
        return ssl_set_error(SSL_ERR_INVALID, "ssl_grad_clip_norm: max_norm %g must be > 0",
                             max_norm);
    float *grad = ssl_params_grad(p, NULL);
    int np = ssl_params_count(p);
    double s = 0;
    for (int i = 0; i < np; i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        if (ssl__param_active(in))
            s += ssl__sumsq_f32(grad + in->offset, in->t->numel);
    }
    double norm = sqrt(s);
    if (total_norm)
        *total_norm = norm;
    if (!isfinite(norm))
        return ssl_set_error(SSL_ERR_NONFINITE,
                             "ssl_grad_clip_norm: the gradient norm is %g; gradients not clipped",
                             norm);
    double coef = max_norm / (norm + 1e-6);
    if (coef >= 1.0) /* torch multiplies by the clamped 1.0: a no-op */
        return SSL_OK;
    float fc = (float)coef;
    for (int i = 0; i < np; i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        if (ssl__param_active(in))
            scale(grad + in->offset, in->t->numel, fc);
    }
    return SSL_OK;
}

int ssl_grad_clip_per_param(ssl_params_t *p, double max_norm, float *norms)
{
    if (!p || !(max_norm > 0))
        return ssl_set_error(SSL_ERR_INVALID, "ssl_grad_clip_per_param: max_norm %g must be > 0",
                             max_norm);
    float *grad = ssl_params_grad(p, NULL);
    int np = ssl_params_count(p);
    int st = SSL_OK;
    for (int i = 0; i < np; i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        if (norms)
            norms[i] = 0;
        if (!ssl__param_active(in))
            continue;
        float *g = grad + in->offset;
        double norm = sqrt(ssl__sumsq_f32(g, in->t->numel));
        if (norms)
            norms[i] = (float)norm;
        if (!isfinite(norm)) {
            if (st == SSL_OK)
                st = ssl_set_error(SSL_ERR_NONFINITE,
                                   "ssl_grad_clip_per_param: gradient norm of '%s' is %g; not "
                                   "clipped",
                                   in->name, norm);
            continue;
        }
        /* DINO: clip_coef = clip / (param_norm + 1e-6) in float32, applied when < 1 */
        float coef = (float)max_norm / ((float)norm + 1e-6f);
        if (coef < 1.0f)
            scale(g, in->t->numel, coef);
    }
    return st;
}

/* Index of the first non-finite value of x[0..n), or -1. */
static int64_t first_nonfinite(const float *x, int64_t n)
{
    /* x - x is 0 for finite x and NaN for Inf/NaN; the flag loop vectorises */
    int bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (n >= SSL_TRAIN_OMP_MIN)
    for (int64_t j = 0; j < n; j++)
        bad |= !(x[j] - x[j] == 0.0f);
    if (!bad)
        return -1;
    for (int64_t j = 0; j < n; j++)
        if (!isfinite(x[j]))
            return j;
    return -1;
}

int ssl_grad_check_finite(ssl_params_t *p, int *bad_index)
{
    if (bad_index)
        *bad_index = -1;
    if (!p)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_grad_check_finite: NULL store");
    size_t n;
    float *grad = ssl_params_grad(p, &n);
    if (first_nonfinite(grad, (int64_t)n) < 0) /* the common case: one pass over the buffer */
        return SSL_OK;
    int np = ssl_params_count(p);
    for (int i = 0; i < np; i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        if (!ssl__param_active(in)) /* a frozen entry's gradient is never used */
            continue;
        int64_t j = first_nonfinite(grad + in->offset, in->t->numel);
        if (j >= 0) {
            if (bad_index)
                *bad_index = i;
            float v = grad[in->offset + (size_t)j];
            return ssl_set_error(SSL_ERR_NONFINITE,
                                 "non-finite gradient in '%s' at element %lld (%s)", in->name,
                                 (long long)j,
                                 isnan(v) ? "nan"
                                 : v > 0  ? "inf"
                                          : "-inf");
        }
    }
    return SSL_OK;
}
