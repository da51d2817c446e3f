/* Argument checks of the public entry points, one mechanism for every layer (issue 17): a
 * function given NULL for a required pointer or an absurd size sets SSL_ERR_INVALID with a
 * message naming itself and the argument, and returns its error value. Internal header. */
#ifndef SSL_CORE_CHECK_H
#define SSL_CORE_CHECK_H

#include "ssl/core.h"

#include <stddef.h>
#include <stdint.h>

/* p is NULL: sets SSL_ERR_INVALID "FN: P is NULL" and is 1, else 0. */
#define SSL__IS_NULL(p, fn)                                                                        \
    ((p) ? 0 : (ssl_set_error(SSL_ERR_INVALID, "%s: %s is NULL", (fn), #p), 1))

/* A tensor input of a graph-building function is NULL: either an earlier op failed (its error
 * is kept, so a chain of calls is checked once at its end) or the caller passed NULL
 * (SSL_ERR_INVALID "OP: ARG is NULL"). Returns the status. */
int ssl__null_input(const char *op, const char *arg);
#define SSL__NULL_INPUT(x, fn) ((x) ? 0 : (ssl__null_input((fn), #x), 1))

/* v outside lo..hi: SSL_ERR_INVALID "FN: V is v, outside lo..hi" and 1, else 0. */
int ssl__out_of_range(const char *fn, const char *what, int64_t v, int64_t lo, int64_t hi);
static inline int ssl__bad_range(const char *fn, const char *what, int64_t v, int64_t lo,
                                 int64_t hi)
{
    return v < lo || v > hi ? ssl__out_of_range(fn, what, v, lo, hi) : 0;
}
#define SSL__BAD_RANGE(v, lo, hi, fn)                                                              \
    ssl__bad_range((fn), #v, (int64_t)(v), (int64_t)(lo), (int64_t)(hi))

/* The sizes of a buffer the caller passes (names: the comma-separated list of their
 * expressions): each must be >= 0 and their product times elem bytes must fit in ptrdiff_t,
 * else SSL_ERR_INVALID naming fn and the size, and 1. */
int ssl__bad_sizes(const char *fn, const char *names, int n, const int64_t *dims, size_t elem);
#define SSL__BAD_SIZES(fn, elem, ...)                                                              \
    ssl__bad_sizes((fn), #__VA_ARGS__, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
                   (int64_t[]){__VA_ARGS__}, (elem))

#endif
