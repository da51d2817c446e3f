/* Principal component analysis of an embedding matrix (the 2-D scatter of sslc report): the
 * covariance in double, its eigenvalues from ssl_eigvalsh (total and explained variance, and
 * the convergence target), the leading eigenvectors by power iteration with deflation. */
#include "eval_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PCA_MAX_DIM ((int64_t)4096)  /* a 128 MB covariance matrix */
#define PCA_MAX_ITERS 20000
#define PCA_TOL 1e-10                /* Rayleigh quotient vs eigenvalue, relative to the largest */

/* v (d) = v / ||v||; returns the norm. */
static double normalize(double *v, int64_t d)
{
    double s = 0;
    for (int64_t i = 0; i < d; i++)
        s += v[i] * v[i];
    s = sqrt(s);
    for (int64_t i = 0; s > 0 && i < d; i++)
        v[i] /= s;
    return s;
}

/* y = C v for the full symmetric C (d, d); returns v^T C v. */
static double matvec(const double *C, const double *v, int64_t d, double *y)
{
    double q = 0;
    for (int64_t i = 0; i < d; i++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++)
            s += C[i * d + j] * v[j];
        y[i] = s;
        q += v[i] * s;
    }
    return q;
}

/* Leading eigenvector j of C orthogonal to the rows of V before it, into V + j * d; returns its
 * Rayleigh quotient (the variance along it). target: the eigenvalue it converges to. */
static double power_iteration(const double *C, int64_t d, double *V, int j, double target,
                              double scale, double *y)
{
    double *v = V + j * d;
    for (int64_t i = 0; i < d; i++) /* deterministic start, not orthogonal to any axis */
        v[i] = 1.0 + 0.5 * ssl_rng_uniform(0x9ca, (uint64_t)j, (uint64_t)i);
    double q = 0;
    for (int it = 0; it < PCA_MAX_ITERS; it++) {
        for (int p = 0; p < j; p++) { /* deflate: stay orthogonal to the earlier components */
            const double *u = V + p * d;
            double c = 0;
            for (int64_t i = 0; i < d; i++)
                c += u[i] * v[i];
            for (int64_t i = 0; i < d; i++)
                v[i] -= c * u[i];
        }
        if (normalize(v, d) == 0.0)
            return 0.0; /* the remaining variance is zero: any orthogonal direction would do */
        q = matvec(C, v, d, y);
        if (fabs(q - target) <= PCA_TOL * scale && it > 0)
            break;
        memcpy(v, y, (size_t)d * sizeof(double));
    }
    /* sign: the largest entry positive, so the picture does not flip between runs */
    int64_t big = 0;
    for (int64_t i = 1; i < d; i++)
        if (fabs(v[i]) > fabs(v[big]))
            big = i;
    if (v[big] < 0)
        for (int64_t i = 0; i < d; i++)
            v[i] = -v[i];
    return q;
}

int ssl_pca(const float *x, int64_t n, int64_t d, int k, float *proj, float *components,
            double *variance, double *total_variance)
{
    const char *fn = "pca";
    int st = ssl__eval_check_matrix(fn, "x", x, n, d);
    if (st != SSL_OK)
        return st;
    if (n < 2 || k < 1 || k > d || !proj)
        return ssl_set_error(SSL_ERR_INVALID, "%s: need n >= 2 rows (got %lld), 1 <= k <= dim "
                             "(k %d, dim %lld) and an output", fn, (long long)n, k, (long long)d);
    if (d > PCA_MAX_DIM)
        return ssl_set_error(SSL_ERR_UNSUPPORTED, "%s: dim %lld needs a %lld x %lld covariance; "
                             "at most %lld supported", fn, (long long)d, (long long)d,
                             (long long)d, (long long)PCA_MAX_DIM);
    double *mean = calloc((size_t)d, sizeof(double));           // (d)
    double *C = calloc((size_t)(d * d), sizeof(double));        // (d, d)
    double *A = malloc((size_t)(d * d) * sizeof(double));       // (d, d) eigvalsh scratch
    double *w = malloc((size_t)d * sizeof(double));             // (d)
    double *V = malloc((size_t)(k * d) * sizeof(double));       // (k, d)
    double *y = malloc((size_t)d * sizeof(double));             // (d)
    double *r = malloc((size_t)d * sizeof(double));             // (d)
    if (!mean || !C || !A || !w || !V || !y || !r) {
        st = ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory for a %lld x %lld covariance", fn,
                           (long long)d, (long long)d);
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++)
            mean[j] += x[i * d + j];
    for (int64_t j = 0; j < d; j++)
        mean[j] /= (double)n;
    for (int64_t i = 0; i < n; i++) { /* lower triangle of sum (x - mean)(x - mean)^T */
        for (int64_t j = 0; j < d; j++)
            r[j] = x[i * d + j] - mean[j];
        for (int64_t a = 0; a < d; a++)
            for (int64_t b = 0; b <= a; b++)
                C[a * d + b] += r[a] * r[b];
    }
    double trace = 0;
    for (int64_t a = 0; a < d; a++) {
        for (int64_t b = 0; b <= a; b++)
            C[b * d + a] = C[a * d + b] = C[a * d + b] / (double)(n - 1);
        trace += C[a * d + a];
    }
    memcpy(A, C, (size_t)(d * d) * sizeof(double));
    if ((st = ssl_eigvalsh(A, d, w)) != SSL_OK)
        goto done;
    double scale = w[d - 1] > 0 ? w[d - 1] : 1.0;
    for (int j = 0; j < k; j++) {
        double q = power_iteration(C, d, V, j, w[d - 1 - j], scale, y);
        if (variance)
            variance[j] = q;
    }
    if (total_variance)
        *total_variance = trace;
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            double s = 0;
            for (int64_t c = 0; c < d; c++)
                s += (x[i * d + c] - mean[c]) * V[j * d + c];
            proj[i * k + j] = (float)s;
        }
    if (components)
        for (int64_t i = 0; i < k * d; i++)
            components[i] = (float)V[i];
done:
    free(mean), free(C), free(A), free(w), free(V), free(y), free(r);
    return st;
}
