/* Eigenvalues of a symmetric matrix (no LAPACK): Householder reduction to tridiagonal form with
 * level-2 updates (dsymv + dsyr2 on the lower triangle; plain loops for small blocks), then the
 * implicit QL iteration with Wilkinson-style shifts on the tridiagonal matrix. Eigenvalues only,
 * all in double. Cost:
 * ~(4/3) n^3 flops, memory-bound; ~1 s at n = 1024. */
#include "eval_internal.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"

/* Below this trailing size the level-2 updates run as plain loops: a BLAS call (and its thread
 * fork/join) costs more than the work. */
#define EIG_BLAS_MIN 512

/* p = beta * A v for the symmetric m x m block A (lower triangle, leading dimension lda). */
static void symv_lower(int64_t m, double beta, const double *a, int64_t lda, const double *v,
                       double *p)
{
    for (int64_t i = 0; i < m; i++)
        p[i] = 0.0;
    for (int64_t i = 0; i < m; i++) {
        const double *row = a + i * lda;
        double s = 0;
        for (int64_t j = 0; j < i; j++) { /* row i left of the diagonal serves (i, j) and (j, i) */
            s += row[j] * v[j];
            p[j] += row[j] * v[i];
        }
        p[i] += s + row[i] * v[i];
    }
    for (int64_t i = 0; i < m; i++)
        p[i] *= beta;
}

/* A -= v p^T + p v^T on the lower triangle. */
static void syr2_lower(int64_t m, const double *v, const double *p, double *a, int64_t lda)
{
    for (int64_t i = 0; i < m; i++) {
        double *row = a + i * lda;
        double vi = v[i], pi = p[i];
        for (int64_t j = 0; j <= i; j++)
            row[j] -= vi * p[j] + pi * v[j];
    }
}

/* a (n, n) lower triangle -> diagonal d (n) and off-diagonal e (n, e[i] couples i and i+1,
 * e[n-1] = 0). a is overwritten. work: 2n doubles. */
static void tridiagonalize(double *a, int64_t n, double *d, double *e, double *work)
{
    ssl__fixed_teams(); /* before BLAS: dynamic OpenMP teams hang OpenBLAS */
    double *v = work, *p = work + n;
    for (int64_t k = 0; k + 2 < n; k++) {
        int64_t m = n - k - 1; /* trailing block rows/cols k+1 .. n-1 */
        double *blk = a + (k + 1) * n + (k + 1);
        double xx = 0;
        for (int64_t i = 0; i < m; i++) {
            v[i] = a[(k + 1 + i) * n + k];
            xx += v[i] * v[i];
        }
        d[k] = a[k * n + k];
        double nx = sqrt(xx);
        if (nx == 0.0) {
            e[k] = 0.0;
            continue;
        }
        double alpha = v[0] >= 0 ? -nx : nx;
        v[0] -= alpha;
        double vv = xx - 2.0 * alpha * (v[0] + alpha) + alpha * alpha; /* ||x - alpha e1||^2 */
        double beta = 2.0 / vv;
        /* H A H = A - v w^T - w v^T with p = beta A v, w = p - (beta v^T p / 2) v */
        if (m >= EIG_BLAS_MIN)
            cblas_dsymv(CblasRowMajor, CblasLower, (blasint)m, beta, blk, (blasint)n, v, 1, 0.0, p,
                        1);
        else
            symv_lower(m, beta, blk, n, v, p);
        double c = 0;
        for (int64_t i = 0; i < m; i++)
            c += v[i] * p[i];
        double kk = 0.5 * beta * c;
        for (int64_t i = 0; i < m; i++)
            p[i] -= kk * v[i];
        if (m >= EIG_BLAS_MIN)
            cblas_dsyr2(CblasRowMajor, CblasLower, (blasint)m, -1.0, v, 1, p, 1, blk, (blasint)n);
        else
            syr2_lower(m, v, p, blk, n);
        e[k] = alpha;
    }
    if (n >= 2) {
        d[n - 2] = a[(n - 2) * n + (n - 2)];
        e[n - 2] = a[(n - 1) * n + (n - 2)];
    }
    d[n - 1] = a[(n - 1) * n + (n - 1)];
    e[n - 1] = 0.0;
}

/* Implicit QL on the symmetric tridiagonal (d, e): d becomes the eigenvalues (unsorted).
 * Returns 0, or -1 when an eigenvalue needs more than 60 iterations. */
static int tridiagonal_ql(double *d, double *e, int64_t n)
{
    for (int64_t l = 0; l < n; l++) {
        int iter = 0;
        for (;;) {
            int64_t m = l;
            for (; m + 1 < n; m++) { /* find a negligible off-diagonal to split at */
                double dd = fabs(d[m]) + fabs(d[m + 1]);
                if (fabs(e[m]) <= DBL_EPSILON * dd)
                    break;
            }
            if (m == l)
                break;
            if (++iter > 60)
                return -1;
            /* shift from the leading 2x2 block's eigenvalue closest to d[l] */
            double g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            double r = hypot(g, 1.0);
            g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
            double s = 1.0, c = 1.0, p = 0.0;
            int64_t i = m - 1;
            int deflated = 0;
            for (; i >= l; i--) { /* chase the bulge up with Givens rotations */
                double f = s * e[i], b = c * e[i];
                r = hypot(f, g);
                e[i + 1] = r;
                if (r == 0.0) { /* underflow: the problem splits here */
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = 1;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
            }
            if (deflated)
                continue;
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int ssl_eigvalsh(double *a, int64_t n, double *w)
{
    if (n < 1 || !a || !w)
        return ssl_set_error(SSL_ERR_INVALID,
                             "eigvalsh: need a non-empty %lld x %lld matrix and an output",
                             (long long)n, (long long)n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++)
            if (!isfinite(a[i * n + j]))
                return ssl_set_error(SSL_ERR_NONFINITE, "eigvalsh: element (%lld, %lld) is %g",
                                     (long long)i, (long long)j, a[i * n + j]);
    double *work = malloc((size_t)n * 3 * sizeof(double));
    if (!work)
        return ssl_set_error(SSL_ERR_NOMEM, "eigvalsh: out of memory (n = %lld)", (long long)n);
    double *e = work;
    tridiagonalize(a, n, w, e, work + n);
    int bad = tridiagonal_ql(w, e, n);
    free(work);
    if (bad)
        return ssl_set_error(SSL_ERR_STATE, "eigvalsh: QL iteration did not converge (n = %lld)",
                             (long long)n);
    qsort(w, (size_t)n, sizeof(double), cmp_double);
    return SSL_OK;
}
