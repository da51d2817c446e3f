/* Helpers shared by the head modules: shape messages, index validation, constant gathers. */
#include "heads_internal.h"

#include <string.h>

ssl_tensor_t *ssl__head_shape_error(const char *head, const ssl_tensor_t *x, const char *what)
{
    char s[96];
    ssl_set_error(SSL_ERR_SHAPE, "%s: input %s, expected %s", head, ssl_shape_str(x, s, sizeof s),
                  what);
    return NULL;
}

int ssl__head_check_indices(ssl_ctx_t *ctx, const char *head, const char *what, const int32_t *idx,
                            int64_t b, int64_t k, int64_t t, int distinct)
{
    if (b * k > 0 && !idx) {
        ssl_set_error(SSL_ERR_INVALID, "%s: %s indices are NULL", head, what);
        return 0;
    }
    unsigned char *seen = distinct && t > 0 ? ssl_arena_alloc(ctx, (size_t)t) : NULL;
    if (distinct && t > 0 && !seen)
        return 0;
    for (int64_t i = 0; i < b; i++) {
        if (seen)
            memset(seen, 0, (size_t)t);
        for (int64_t j = 0; j < k; j++) {
            int32_t v = idx[i * k + j];
            if (v < 0 || v >= t) {
                ssl_set_error(SSL_ERR_INVALID,
                              "%s: %s index %d at sample %lld, position %lld is outside [0, %lld)",
                              head, what, (int)v, (long long)i, (long long)j, (long long)t);
                return 0;
            }
            if (seen) {
                if (seen[v]) {
                    ssl_set_error(SSL_ERR_INVALID,
                                  "%s: %s index %d repeats in sample %lld (position %lld)", head,
                                  what, (int)v, (long long)i, (long long)j);
                    return 0;
                }
                seen[v] = 1;
            }
        }
    }
    return 1;
}

ssl_tensor_t *ssl__head_gather_const(ssl_ctx_t *ctx, const float *table, int64_t dim,
                                     const int32_t *idx, int64_t rows)
{
    ssl_tensor_t *y = ssl_tensor_2d(ctx, rows, dim);
    if (!y)
        return NULL;
    for (int64_t r = 0; r < rows; r++)
        memcpy(y->data + r * dim, table + (int64_t)idx[r] * dim, (size_t)dim * sizeof(float));
    return y;
}
