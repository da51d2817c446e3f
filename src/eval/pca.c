/* Principal component analysis of an embedding matrix (the 2-D scatter of sslc report): the
 * covariance in double by dsyrk over blocks of centred rows, its k leading eigenpairs by LAPACK's
 * dsyevr (ssl__eigh_top), the projections by dgemm. */
#include "eval_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#include "core/core_internal.h"

#define PCA_MAX_DIM ((int64_t)4096) /* a 128 MB covariance matrix */
#define PCA_BLOCK 256               /* rows centred and converted to double at once */

/* blk (rb, d) = rows r0 .. r0 + rb - 1 of x minus mean, in double. */
static void centre_rows(const float *x, int64_t r0, int64_t rb, int64_t d, const double *mean,
                        double *blk)
{
    for (int64_t i = 0; i < rb; i++)
        for (int64_t j = 0; j < d; j++)
            blk[i * d + j] = (double)x[(r0 + i) * d + j] - mean[j];
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
    ssl__fixed_teams(); /* before BLAS: dynamic OpenMP teams hang OpenBLAS */
    double *mean = calloc((size_t)d, sizeof(double));                // (d)
    double *C = calloc((size_t)(d * d), sizeof(double));             // (d, d) lower triangle
    double *blk = malloc((size_t)(PCA_BLOCK * d) * sizeof(double));  // (PCA_BLOCK, d)
    double *pblk = malloc((size_t)(PCA_BLOCK * k) * sizeof(double)); // (PCA_BLOCK, k)
    double *w = malloc((size_t)k * sizeof(double));                  // (k) ascending
    double *Z = malloc((size_t)(k * d) * sizeof(double));            // (k, d) rows as w
    double *V = malloc((size_t)(k * d) * sizeof(double));            // (k, d) descending
    if (!mean || !C || !blk || !pblk || !w || !Z || !V) {
        st = ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory for a %lld x %lld covariance", fn,
                           (long long)d, (long long)d);
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++)
            mean[j] += x[i * d + j];
    for (int64_t j = 0; j < d; j++)
        mean[j] /= (double)n;
    for (int64_t r0 = 0; r0 < n; r0 += PCA_BLOCK) { /* C += blk^T blk / (n - 1) */
        int64_t rb = n - r0 < PCA_BLOCK ? n - r0 : PCA_BLOCK;
        centre_rows(x, r0, rb, d, mean, blk);
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (blasint)d, (blasint)rb,
                    1.0 / (double)(n - 1), blk, (blasint)d, 1.0, C, (blasint)d);
    }
    double trace = 0;
    for (int64_t a = 0; a < d; a++)
        trace += C[a * d + a];
    if ((st = ssl__eigh_top(fn, C, d, k, w, Z)) != SSL_OK)
        goto done;
    for (int j = 0; j < k; j++) { /* largest first; its largest entry positive (no sign flips) */
        const double *z = Z + (int64_t)(k - 1 - j) * d;
        int64_t big = 0;
        for (int64_t i = 1; i < d; i++)
            if (fabs(z[i]) > fabs(z[big]))
                big = i;
        double sign = z[big] < 0 ? -1.0 : 1.0;
        for (int64_t i = 0; i < d; i++)
            V[j * d + i] = sign * z[i];
        if (variance)
            variance[j] = w[k - 1 - j];
    }
    if (total_variance)
        *total_variance = trace;
    for (int64_t r0 = 0; r0 < n; r0 += PCA_BLOCK) { /* proj = (x - mean) V^T */
        int64_t rb = n - r0 < PCA_BLOCK ? n - r0 : PCA_BLOCK;
        centre_rows(x, r0, rb, d, mean, blk);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)rb, k, (blasint)d, 1.0, blk,
                    (blasint)d, V, (blasint)d, 0.0, pblk, k);
        for (int64_t i = 0; i < rb * k; i++)
            proj[r0 * k + i] = (float)pblk[i];
    }
    if (components)
        for (int64_t i = 0; i < k * d; i++)
            components[i] = (float)V[i];
done:
    free(mean), free(C), free(blk), free(pblk), free(w), free(Z), free(V);
    return st;
}
