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

/* Additive attention bias: causal (L, L) with -inf above the diagonal, or (B, 1, 1, L) with
 * -inf at the keys where ids holds padding. */
ssl_tensor_t *ssl__text_attention_bias(ssl_ctx_t *ctx, const int32_t *ids, int64_t B, int64_t L,
                                       int causal);
/* open_clip's ResidualAttentionBlock as an nn transformer block under its names (ln_1,
 * attn.in_proj_weight/bias, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj; LayerNorm eps 1e-5) with
 * open_clip's init for a stack of `layers` blocks of width W. */
int ssl__clip_resblock_init(ssl_nn_block_t *m, ssl_params_t *p, const char *pre, int64_t W,
                            int heads, int64_t hidden, int layers, uint64_t seed);

#endif
