/* Helpers shared by the head modules. */
#ifndef SSL_HEADS_INTERNAL_H
#define SSL_HEADS_INTERNAL_H

#include "core/check.h"
#include "ssl/heads.h"

#include <stdio.h>

/* "<prefix>.<name>" (or "<name>" for an empty prefix) into buf. */
#define HEAD_NAME(buf, prefix, name) ssl_nn_name(buf, sizeof buf, prefix, name)

/* Error "HEAD: input (shape), expected WHAT" as SSL_ERR_SHAPE; returns NULL. */
ssl_tensor_t *ssl__head_shape_error(const char *head, const ssl_tensor_t *x, const char *what);

/* 1 if idx[b * k + j] are distinct within every sample b and in [0, t); else an SSL_ERR_INVALID
 * error naming head, sample and position, and 0. */
int ssl__head_check_indices(ssl_ctx_t *ctx, const char *head, const char *what, const int32_t *idx,
                            int64_t b, int64_t k, int64_t t, int distinct);

/* A (rows, dim) tensor (no gradient) whose row r is table[idx[r]] (table (T, dim)). */
ssl_tensor_t *ssl__head_gather_const(ssl_ctx_t *ctx, const float *table, int64_t dim,
                                     const int32_t *idx, int64_t rows);

#endif
