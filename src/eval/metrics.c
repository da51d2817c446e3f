/* Collapse metrics of an embedding matrix: singular values and RankMe, the std of L2-normalised
 * embeddings, alignment and uniformity. Sums are in double; per-row partial results are
 * combined serially so values do not depend on the number of threads. */
#include "eval_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"

#define GRAM_BLOCK 256                      /* rows (or columns) converted to double at once */
#define GRAM_MAX ((int64_t)16384)           /* min(n, d) limit: a 2 GB Gram matrix */
#define PAIR_BLOCK_BYTES ((size_t)32 << 20) /* one block of uniformity dot products */
#define RANKME_EPS 1e-7

/* ---------------------------------------------------------------- singular values */

int ssl_singular_values(const float *z, int64_t n, int64_t d, double *s)
{
    const char *fn = "singular values";
    ssl__fixed_teams(); /* before BLAS: dynamic OpenMP teams hang OpenBLAS */
    int st = ssl__eval_check_matrix(fn, "z", z, n, d);
    if (st != SSL_OK)
        return st;
    if (n < 1 || !s)
        return ssl_set_error(SSL_ERR_INVALID, "%s: need n >= 1 rows and an output", fn);
    const int64_t g = n < d ? n : d;
    if (g > GRAM_MAX)
        return ssl_set_error(
            SSL_ERR_UNSUPPORTED,
            "%s: z (%lld, %lld) needs a %lld x %lld Gram matrix; at most %lld supported", fn,
            (long long)n, (long long)d, (long long)g, (long long)g, (long long)GRAM_MAX);
    double *G = calloc((size_t)g * (size_t)g, sizeof(double)); // (g, g)
    double *w = malloc((size_t)g * sizeof(double));            // (g)
    int64_t other = d <= n ? d : n;
    double *blk = malloc((size_t)GRAM_BLOCK * (size_t)other * sizeof(double));
    if (!G || !w || !blk) {
        free(G), free(w), free(blk);
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory for a %lld x %lld Gram matrix", fn,
                             (long long)g, (long long)g);
    }
    if (d <= n) { /* G = z^T z, accumulated over blocks of rows */
        for (int64_t r0 = 0; r0 < n; r0 += GRAM_BLOCK) {
            int64_t rb = n - r0 < GRAM_BLOCK ? n - r0 : GRAM_BLOCK;
            for (int64_t i = 0; i < rb * d; i++)
                blk[i] = z[r0 * d + i];
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (blasint)d, (blasint)rb, 1.0, blk,
                        (blasint)d, 1.0, G, (blasint)d);
        }
    } else { /* G = z z^T, accumulated over blocks of columns */
        for (int64_t c0 = 0; c0 < d; c0 += GRAM_BLOCK) {
            int64_t cb = d - c0 < GRAM_BLOCK ? d - c0 : GRAM_BLOCK;
            for (int64_t i = 0; i < n; i++)
                for (int64_t j = 0; j < cb; j++)
                    blk[i * cb + j] = z[i * d + c0 + j];
            cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, (blasint)n, (blasint)cb, 1.0, blk,
                        (blasint)cb, 1.0, G, (blasint)n);
        }
    }
    free(blk);
    st = ssl_eigvalsh(G, g, w);
    if (st == SSL_OK)
        for (int64_t i = 0; i < g; i++) {
            double l = w[g - 1 - i];
            s[i] = l > 0 ? sqrt(l) : 0.0;
        }
    free(G);
    free(w);
    return st;
}

int ssl_rankme(const float *z, int64_t n, int64_t d, double *out)
{
    if (!out)
        return ssl_set_error(SSL_ERR_INVALID, "rankme: output is NULL");
    if (n < 1 || d < 1)
        return ssl_set_error(SSL_ERR_SHAPE, "rankme: z has shape (%lld, %lld); need n, d >= 1",
                             (long long)n, (long long)d);
    int64_t g = n < d ? n : d;
    double *s = malloc((size_t)g * sizeof(double));
    if (!s)
        return ssl_set_error(SSL_ERR_NOMEM, "rankme: out of memory");
    int st = ssl_singular_values(z, n, d, s);
    if (st == SSL_OK) {
        double l1 = 0;
        for (int64_t i = 0; i < g; i++)
            l1 += s[i];
        if (!(l1 > 0)) {
            st = ssl_set_error(SSL_ERR_INVALID, "rankme: z (%lld, %lld) is all zeros", (long long)n,
                               (long long)d);
        } else {
            double h = 0;
            for (int64_t i = 0; i < g; i++) {
                double p = s[i] / l1 + RANKME_EPS;
                h -= p * log(p);
            }
            *out = exp(h);
        }
    }
    free(s);
    return st;
}

/* ---------------------------------------------------------------- std of normalised rows */

int ssl_collapse_std(const float *z, int64_t n, int64_t d, double *out)
{
    const char *fn = "collapse std";
    int st = ssl__eval_check_matrix(fn, "z", z, n, d);
    if (st != SSL_OK)
        return st;
    if (n < 2 || !out)
        return ssl_set_error(SSL_ERR_INVALID, "%s: need n >= 2 rows (got %lld) and an output", fn,
                             (long long)n);
    float *inv = malloc((size_t)n * sizeof(float));
    double *sd = malloc((size_t)d * sizeof(double));
    if (!inv || !sd) {
        free(inv), free(sd);
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", fn);
    }
    ssl__eval_inv_norms(z, n, d, inv);
#pragma omp parallel for schedule(static) if (n * d > SSL_EVAL_OMP_MIN)
    for (int64_t j0 = 0; j0 < d; j0 += 64) { /* column panels: each thread owns its columns */
        int64_t j1 = j0 + 64 < d ? j0 + 64 : d;
        double s[64] = {0}, q[64] = {0};
        for (int64_t i = 0; i < n; i++) {
            const float *r = z + i * d;
            double iv = inv[i];
            for (int64_t j = j0; j < j1; j++) {
                double v = r[j] * iv;
                s[j - j0] += v;
                q[j - j0] += v * v;
            }
        }
        for (int64_t j = j0; j < j1; j++) {
            double mu = s[j - j0] / (double)n;
            double var = (q[j - j0] - (double)n * mu * mu) / (double)(n - 1);
            sd[j] = var > 0 ? sqrt(var) : 0.0;
        }
    }
    double acc = 0;
    for (int64_t j = 0; j < d; j++)
        acc += sd[j];
    *out = acc / (double)d;
    free(inv);
    free(sd);
    return SSL_OK;
}

/* ---------------------------------------------------------------- alignment and uniformity */

int ssl_alignment(const float *z1, const float *z2, int64_t n, int64_t d, double alpha,
                  int normalize, double *out)
{
    const char *fn = "alignment";
    int st = ssl__eval_check_matrix(fn, "z1", z1, n, d);
    if (st == SSL_OK)
        st = ssl__eval_check_matrix(fn, "z2", z2, n, d);
    if (st != SSL_OK)
        return st;
    if (n < 1 || !out || !(alpha > 0) || !isfinite(alpha))
        return ssl_set_error(SSL_ERR_INVALID,
                             "%s: need n >= 1 pairs (got %lld), alpha > 0 (got %g) and an output",
                             fn, (long long)n, alpha);
    double *row = malloc((size_t)n * sizeof(double));
    if (!row)
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", fn);
#pragma omp parallel for schedule(static) if (n * d > SSL_EVAL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float *a = z1 + i * d, *b = z2 + i * d;
        double ia = 1.0, ib = 1.0;
        if (normalize) {
            double sa = 0, sb = 0;
            for (int64_t j = 0; j < d; j++) {
                sa += (double)a[j] * a[j];
                sb += (double)b[j] * b[j];
            }
            sa = sqrt(sa);
            sb = sqrt(sb);
            ia = 1.0 / (sa > 1e-12 ? sa : 1e-12);
            ib = 1.0 / (sb > 1e-12 ? sb : 1e-12);
        }
        double s = 0;
        for (int64_t j = 0; j < d; j++) {
            double t = a[j] * ia - b[j] * ib;
            s += t * t;
        }
        row[i] = alpha == 2.0 ? s : pow(sqrt(s), alpha);
    }
    double acc = 0;
    for (int64_t i = 0; i < n; i++)
        acc += row[i];
    *out = acc / (double)n;
    free(row);
    return SSL_OK;
}

int ssl_uniformity(const float *z, int64_t n, int64_t d, double t, int normalize, double *out)
{
    const char *fn = "uniformity";
    int st = ssl__eval_check_matrix(fn, "z", z, n, d);
    if (st != SSL_OK)
        return st;
    if (n < 2 || !out || !(t > 0) || !isfinite(t))
        return ssl_set_error(SSL_ERR_INVALID,
                             "%s: need n >= 2 rows (got %lld), t > 0 (got %g) and an output", fn,
                             (long long)n, t);
    int64_t B = (int64_t)(PAIR_BLOCK_BYTES / ((size_t)n * sizeof(float)));
    B = B < 1 ? 1 : B > n ? n : B;
    float *zn = normalize ? malloc((size_t)n * (size_t)d * sizeof(float)) : NULL; // (n, d)
    float *sq = malloc((size_t)n * sizeof(float));                                // (n)
    float *S = malloc((size_t)B * (size_t)n * sizeof(float));                     // (B, n)
    double *rmax = malloc((size_t)n * 2 * sizeof(double)); /* per row: max exponent, sum */
    if ((normalize && !zn) || !sq || !S || !rmax) {
        free(zn), free(sq), free(S), free(rmax);
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", fn);
    }
    const float *x = z;
    if (normalize) {
        ssl__eval_inv_norms(z, n, d, sq);
#pragma omp parallel for schedule(static) if (n * d > SSL_EVAL_OMP_MIN)
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < d; j++)
                zn[i * d + j] = z[i * d + j] * sq[i];
        x = zn;
    }
#pragma omp parallel for schedule(static) if (n * d > SSL_EVAL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++)
            s += (double)x[i * d + j] * x[i * d + j];
        sq[i] = (float)s;
    }
    double *rsum = rmax + n;
    /* Block of rows [r0, r0 + nb) against columns [r0, n): pairs (i, j) with j > i. */
    for (int64_t r0 = 0; r0 < n - 1; r0 += B) {
        int64_t nb = n - 1 - r0 < B ? n - 1 - r0 : B, nc = n - r0;
        ssl__sgemm(0, 1, nb, nc, d, 1.0f, x + r0 * d, d, x + r0 * d, d, 0.0f, S, nc);
#pragma omp parallel for schedule(dynamic, 8) if (nb * nc > SSL_EVAL_OMP_MIN)
        for (int64_t r = 0; r < nb; r++) {
            int64_t i = r0 + r;
            const float *srow = S + r * nc;
            double m = -INFINITY, acc = 0;
            for (int64_t j = i + 1; j < n; j++) {
                double d2 = (double)sq[i] + sq[j] - 2.0 * srow[j - r0];
                double e = -t * (d2 > 0 ? d2 : 0);
                m = e > m ? e : m;
            }
            for (int64_t j = i + 1; j < n; j++) {
                double d2 = (double)sq[i] + sq[j] - 2.0 * srow[j - r0];
                acc += exp(-t * (d2 > 0 ? d2 : 0) - m);
            }
            rmax[i] = m;
            rsum[i] = acc;
        }
    }
    double M = -INFINITY;
    for (int64_t i = 0; i < n - 1; i++)
        M = rmax[i] > M ? rmax[i] : M;
    double tot = 0;
    for (int64_t i = 0; i < n - 1; i++)
        tot += rsum[i] * exp(rmax[i] - M);
    *out = M + log(tot) - log((double)n * (double)(n - 1) / 2.0);
    free(zn), free(sq), free(S), free(rmax);
    return SSL_OK;
}
