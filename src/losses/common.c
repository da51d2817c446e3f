/* Helpers shared by the loss files: checks with messages naming the loss and the shapes. */
#include "losses_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

static void *vfail(int status, const char *loss, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    ssl_set_error(status, "%s: %s", loss, msg);
    return NULL;
}

void *ssl__loss_fail(const char *loss, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(SSL_ERR_SHAPE, loss, fmt, ap);
    va_end(ap);
    return NULL;
}

void *ssl__loss_fail_status(int status, const char *loss, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(status, loss, fmt, ap);
    va_end(ap);
    return NULL;
}

int ssl__loss_check_2d(const char *loss, const char *arg, const ssl_tensor_t *t, int64_t min_rows)
{
    char b[64];
    if (t->ndim != 2 || t->shape[1] < 1 || t->shape[0] < min_rows) {
        ssl__loss_fail(loss, "%s %s must be (N, D) with N >= %lld and D >= 1", arg, LSHAPE(t, b),
                       (long long)min_rows);
        return 0;
    }
    return 1;
}

int ssl__loss_check_pair(const char *loss, const char *an, const ssl_tensor_t *a, const char *bn,
                         const ssl_tensor_t *b, int64_t min_rows)
{
    if (!ssl__loss_check_2d(loss, an, a, min_rows) || !ssl__loss_check_2d(loss, bn, b, min_rows))
        return 0;
    if (!ssl_same_shape(a, b)) {
        char sa[64], sb[64];
        ssl__loss_fail(loss, "%s %s and %s %s must have the same shape", an, LSHAPE(a, sa), bn,
                       LSHAPE(b, sb));
        return 0;
    }
    return 1;
}

int ssl__loss_check_pos(const char *loss, const char *what, float v)
{
    if (!(v > 0.0f && v < INFINITY)) {
        ssl__loss_fail_status(SSL_ERR_INVALID, loss, "%s must be finite and > 0, got %g", what,
                              (double)v);
        return 0;
    }
    return 1;
}

int32_t *ssl__loss_labels(ssl_ctx_t *ctx, int64_t n, int64_t shift)
{
    int32_t *l = ssl_arena_alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    if (!l)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        l[i] = (int32_t)((i + shift) % n);
    return l;
}

int ssl__loss_check_rows(const char *loss, const char *xn, const ssl_tensor_t *x, const char *an,
                         const ssl_tensor_t *all, int64_t row0)
{
    if (!ssl__loss_check_2d(loss, an, all, 1))
        return 0;
    if (all->shape[1] != x->shape[1] || row0 < 0 || row0 + x->shape[0] > all->shape[0]) {
        char a[64], b[64];
        ssl__loss_fail(loss, "%s %s must be rows %lld.. of %s %s", xn, LSHAPE(x, a),
                       (long long)row0, an, LSHAPE(all, b));
        return 0;
    }
    return 1;
}

int32_t *ssl__loss_row_labels(ssl_ctx_t *ctx, int64_t n, int64_t row0)
{
    int32_t *l = ssl__loss_labels(ctx, n, 0);
    for (int64_t i = 0; l && i < n; i++)
        l[i] += (int32_t)row0;
    return l;
}

int32_t *ssl__loss_labels_const(ssl_ctx_t *ctx, int64_t n, int32_t value)
{
    int32_t *l = ssl_arena_alloc(ctx, (size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    if (!l)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        l[i] = value;
    return l;
}

ssl_tensor_t *ssl__loss_sg(ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    if (!x)
        return NULL;
    return x->requires_grad ? ssl_detach(ctx, x) : x;
}

ssl_tensor_t *ssl__loss_row_cos(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b)
{
    ssl_tensor_t *an = ssl_l2_normalize(ctx, a, -1, 1e-12f);
    ssl_tensor_t *bn = ssl_l2_normalize(ctx, b, -1, 1e-12f);
    return ssl_sum(ctx, ssl_mul(ctx, an, bn), -1, 0);
}

float ssl__loss_value(const ssl_tensor_t *t)
{
    return t ? t->data[0] : 0.0f;
}
