/* Internal to the losses layer: argument checks with messages that name the loss and the
 * shapes, and small constant tensors built in the step's arena. */
#ifndef SSL_LOSSES_INTERNAL_H
#define SSL_LOSSES_INTERNAL_H

#include "core/check.h"
#include "ssl/losses.h"

#include <stdint.h>

/* "(2, 3)" of t, or "NULL". */
#define LSHAPE(t, buf) ((t) ? ssl_shape_str((t), (buf), sizeof(buf)) : "NULL")

/* Set "<loss>: <message>" with SSL_ERR_SHAPE (or the given status) and return NULL. */
void *ssl__loss_fail(const char *loss, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void *ssl__loss_fail_status(int status, const char *loss, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* 1 when t is (rows, cols) with rows >= min_rows (cols > 0); else sets an error naming the
 * loss and the argument and returns 0. */
int ssl__loss_check_2d(const char *loss, const char *arg, const ssl_tensor_t *t, int64_t min_rows);
/* 1 when a and b are both 2-D of the same shape with at least min_rows rows. */
int ssl__loss_check_pair(const char *loss, const char *an, const ssl_tensor_t *a, const char *bn,
                         const ssl_tensor_t *b, int64_t min_rows);
/* 1 when the temperature-like value is finite and > 0. */
int ssl__loss_check_pos(const char *loss, const char *what, float v);

/* labels[i] = (i + shift) mod n for i < n, in the arena. */
int32_t *ssl__loss_labels(ssl_ctx_t *ctx, int64_t n, int64_t shift);
/* labels[i] = row0 + i for i < n, in the arena: each of a rank's rows paired with its own row
 * among every rank's (ranks.h). */
int32_t *ssl__loss_row_labels(ssl_ctx_t *ctx, int64_t n, int64_t row0);
/* 1 when all (M, D) holds the B rows of x (B, D) at [row0, row0 + B): the gathered rows of
 * every rank and this rank's; else an error naming the loss and both arguments. */
int ssl__loss_check_rows(const char *loss, const char *xn, const ssl_tensor_t *x, const char *an,
                         const ssl_tensor_t *all, int64_t row0);
/* n labels all equal to value, in the arena. */
int32_t *ssl__loss_labels_const(ssl_ctx_t *ctx, int64_t n, int32_t value);

/* Forward-only copy of x with grad mode off when x does not require a gradient: the same
 * tensor; used to keep targets out of the tape. */
ssl_tensor_t *ssl__loss_sg(ssl_ctx_t *ctx, ssl_tensor_t *x);

/* DINO's teacher targets softmax((teacher - center) / teacher_temp) (N, K), no gradient;
 * center (K) or (1, K) or NULL. */
ssl_tensor_t *ssl__loss_teacher_probs(ssl_ctx_t *ctx, ssl_tensor_t *teacher,
                                      const ssl_tensor_t *center, float teacher_temp);

/* Cosine similarity per row of two (N, D) tensors -> (N); b is used as given. */
ssl_tensor_t *ssl__loss_row_cos(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b);

/* Value of a scalar tensor (0 if NULL). */
float ssl__loss_value(const ssl_tensor_t *t);

#endif
