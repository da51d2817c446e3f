/* Argument checks and row norms shared by the eval layer. */
#include "eval_internal.h"

#include <math.h>

#include "core/core_internal.h"

int ssl__eval_check_matrix(const char *fn, const char *what, const float *x, int64_t n, int64_t d)
{
    if (n < 0 || d < 1)
        return ssl_set_error(SSL_ERR_SHAPE, "%s: %s has shape (%lld, %lld); need n >= 0, dim >= 1",
                             fn, what, (long long)n, (long long)d);
    if (n > 0 && !x)
        return ssl_set_error(SSL_ERR_INVALID, "%s: %s data is NULL", fn, what);
    int64_t bad = INT64_MAX;
#pragma omp parallel for schedule(static) reduction(min : bad) if (n * d > SSL_EVAL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float *r = x + i * d;
        float acc = 0.0f; /* NaN/Inf propagate through r[j] * 0 */
        for (int64_t j = 0; j < d; j++)
            acc += r[j] * 0.0f;
        if (acc != 0.0f && i < bad)
            bad = i;
    }
    if (bad != INT64_MAX)
        return ssl_set_error(SSL_ERR_NONFINITE, "%s: %s row %lld has a NaN or infinite value", fn,
                             what, (long long)bad);
    return SSL_OK;
}

int ssl__eval_check_features(const char *fn, const char *what, const ssl_features_t *f,
                             int n_classes)
{
    if (!f)
        return ssl_set_error(SSL_ERR_INVALID, "%s: %s is NULL", fn, what);
    int st = ssl__eval_check_matrix(fn, what, f->x, f->n, f->dim);
    if (st != SSL_OK)
        return st;
    if (n_classes <= 0)
        return SSL_OK;
    if (f->n > 0 && !f->labels)
        return ssl_set_error(SSL_ERR_INVALID, "%s: %s labels are NULL", fn, what);
    for (int64_t i = 0; i < f->n; i++)
        if (f->labels[i] < 0 || f->labels[i] >= n_classes)
            return ssl_set_error(SSL_ERR_INVALID, "%s: %s label[%lld] = %d is outside [0, %d)", fn,
                                 what, (long long)i, (int)f->labels[i], n_classes);
    return SSL_OK;
}

void ssl__eval_inv_norms(const float *x, int64_t n, int64_t d, float *inv)
{
#pragma omp parallel for schedule(static) if (n * d > SSL_EVAL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float *r = x + i * d;
        double s = 0;
        for (int64_t j = 0; j < d; j++)
            s += (double)r[j] * r[j];
        double nr = sqrt(s);
        inv[i] = (float)(1.0 / (nr > 1e-12 ? nr : 1e-12));
    }
}
