/* Internal to the eval layer: argument checks shared by kNN, the linear probe and the metrics;
 * the top-k symmetric eigensolver PCA uses. */
#ifndef SSL_EVAL_INTERNAL_H
#define SSL_EVAL_INTERNAL_H

#include "core/check.h"
#include "ssl/eval.h"

#include <stdint.h>

/* Loops over fewer elements than this run on one thread. Eval loops do ~1 ns of work per
 * element, so a fork/join only pays off for about a millisecond of work, and far later when the
 * cores are shared with other processes (a waiting thread may not be scheduled for a whole
 * time slice). */
#define SSL_EVAL_OMP_MIN ((int64_t)1 << 20)

/* Checks a feature matrix passed as `what` ("knn: train") to function `fn`: x non-NULL (unless
 * n == 0), n >= 0, dim >= 1, every value finite; with n_classes > 0 also labels non-NULL and in
 * [0, n_classes). Returns SSL_OK or an error naming fn, what and the first bad row. */
int ssl__eval_check_features(const char *fn, const char *what, const ssl_features_t *f,
                             int n_classes);

/* Same for a bare (n, d) matrix. */
int ssl__eval_check_matrix(const char *fn, const char *what, const float *x, int64_t n, int64_t d);

/* The k largest eigenvalues of the symmetric (n, n) matrix a (row-major, lower triangle read,
 * destroyed), ascending, into w[k], and their unit eigenvectors as the rows of z (k, n), by
 * LAPACK's dsyevr. Errors name fn. */
int ssl__eigh_top(const char *fn, double *a, int64_t n, int k, double *w, double *z);

/* 1 / max(||row||_2, 1e-12) of every row of x (n, d), accumulated in double, into inv[n]. */
void ssl__eval_inv_norms(const float *x, int64_t n, int64_t d, float *inv);

#endif
