/* Eigen-decompositions of symmetric matrices by LAPACK's dsyevr, which OpenBLAS ships (no
 * solver of our own): all eigenvalues (ssl_eigvalsh: collapse metrics, RankMe) or the k largest
 * eigenpairs (ssl__eigh_top: PCA). dsyevr reduces to tridiagonal form and uses the MRRR
 * algorithm (eigenvectors) or QR (eigenvalues only); all in double. */
#include "eval_internal.h"

#include <lapack.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "core/core_internal.h"

/* LAPACK indexes a column-major n x n matrix with its 32-bit integers: i + j * n must fit. */
#define EIG_MAX_N ((int64_t)46340)

/* dsyevr on the lower triangle of the row-major (n, n) matrix a (destroyed), which is the upper
 * triangle of the same memory read column-major. k == 0: every eigenvalue, ascending, into w[n].
 * k > 0: the k largest, ascending, into w[k] and their unit eigenvectors as the rows of z (k, n)
 * (LAPACK's column-major (n, k) Z is exactly that), row i belonging to w[i]. */
static int syevr(const char *fn, double *a, int64_t n, int k, double *w, double *z)
{
    if (n > EIG_MAX_N)
        return ssl_set_error(SSL_ERR_UNSUPPORTED,
                             "%s: n = %lld; LAPACK's 32-bit indices: n <= %lld", fn, (long long)n,
                             (long long)EIG_MAX_N);
    ssl__fixed_teams(); /* before BLAS: dynamic OpenMP teams hang OpenBLAS */
    const lapack_int ln = (lapack_int)n, il = (lapack_int)(n - k + 1), iu = ln, query = -1;
    const double unused = 0.0, abstol = 0.0; /* abstol 0: LAPACK's default tolerance */
    lapack_int m = 0, info = 0, iwork_len = 0, ldz = k ? ln : 1;
    double work_len = 0, zdummy = 0;
    lapack_int *isuppz = malloc(sizeof(lapack_int) * 2 * (size_t)(k ? k : n));
    double *zz = k ? z : &zdummy;
    const char *jobz = k ? "V" : "N", *range = k ? "I" : "A";
    if (isuppz) /* workspace query */
        LAPACK_dsyevr(jobz, range, "U", &ln, a, &ln, &unused, &unused, &il, &iu, &abstol, &m, w, zz,
                      &ldz, isuppz, &work_len, &query, &iwork_len, &query, &info);
    lapack_int lwork = (lapack_int)work_len, liwork = iwork_len;
    double *work = isuppz && info == 0 ? malloc(sizeof(double) * (size_t)lwork) : NULL;
    lapack_int *iwork = work ? malloc(sizeof(lapack_int) * (size_t)liwork) : NULL;
    int st = SSL_OK;
    if (!iwork) {
        st = info ? ssl_set_error(SSL_ERR_STATE, "%s: dsyevr workspace query: info %d", fn,
                                  (int)info)
                  : ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory (n = %lld)", fn, (long long)n);
    } else {
        LAPACK_dsyevr(jobz, range, "U", &ln, a, &ln, &unused, &unused, &il, &iu, &abstol, &m, w, zz,
                      &ldz, isuppz, work, &lwork, iwork, &liwork, &info);
        if (info != 0 || m != (k ? k : ln))
            st =
                ssl_set_error(SSL_ERR_STATE, "%s: dsyevr on %lld x %lld: info %d, %d of %d values",
                              fn, (long long)n, (long long)n, (int)info, (int)m, (int)(k ? k : ln));
    }
    free(isuppz), free(work), free(iwork);
    return st;
}

/* SSL_ERR_NONFINITE naming the first NaN/Inf of the lower triangle of a (n, n), or SSL_OK:
 * LAPACK's result for such input is undefined. */
static int check_finite(const char *fn, const double *a, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++)
            if (!isfinite(a[i * n + j]))
                return ssl_set_error(SSL_ERR_NONFINITE, "%s: element (%lld, %lld) is %g", fn,
                                     (long long)i, (long long)j, a[i * n + j]);
    return SSL_OK;
}

int ssl_eigvalsh(double *a, int64_t n, double *w)
{
    const char *fn = "eigvalsh";
    if (n < 1 || !a || !w)
        return ssl_set_error(SSL_ERR_INVALID, "%s: need a non-empty %lld x %lld matrix and output",
                             fn, (long long)n, (long long)n);
    int st = check_finite(fn, a, n);
    return st != SSL_OK ? st : syevr(fn, a, n, 0, w, NULL);
}

int ssl__eigh_top(const char *fn, double *a, int64_t n, int k, double *w, double *z)
{
    if (n < 1 || k < 1 || k > n || !a || !w || !z)
        return ssl_set_error(SSL_ERR_INVALID, "%s: need 1 <= k <= n (k %d, n %lld) and outputs", fn,
                             k, (long long)n);
    int st = check_finite(fn, a, n);
    return st != SSL_OK ? st : syevr(fn, a, n, k, w, z);
}
