/* Internal to the eval layer: argument checks shared by kNN, the linear probe and the metrics. */
#ifndef SSL_EVAL_INTERNAL_H
#define SSL_EVAL_INTERNAL_H

#include "ssl/eval.h"

#include <stdint.h>

/* Checks a feature matrix passed as `what` ("knn: train") to function `fn`: x non-NULL (unless
 * n == 0), n >= 0, dim >= 1, every value finite; with n_classes > 0 also labels non-NULL and in
 * [0, n_classes). Returns SSL_OK or an error naming fn, what and the first bad row. */
int ssl__eval_check_features(const char *fn, const char *what, const ssl_features_t *f,
                             int n_classes);

/* Same for a bare (n, d) matrix. */
int ssl__eval_check_matrix(const char *fn, const char *what, const float *x, int64_t n, int64_t d);

/* 1 / max(||row||_2, 1e-12) of every row of x (n, d), accumulated in double, into inv[n]. */
void ssl__eval_inv_norms(const float *x, int64_t n, int64_t d, float *inv);

#endif
