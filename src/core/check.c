/* Argument checks of the public entry points (check.h). */
#include "check.h"

#include <string.h>

int ssl__null_input(const char *op, const char *arg)
{
    if (ssl_last_status() == SSL_OK)
        return ssl_set_error(SSL_ERR_INVALID, "%s: %s is NULL", op, arg);
    return ssl_last_status();
}

int ssl__out_of_range(const char *fn, const char *what, int64_t v, int64_t lo, int64_t hi)
{
    ssl_set_error(SSL_ERR_INVALID, "%s: %s is %lld, outside %lld..%lld", fn, what, (long long)v,
                  (long long)lo, (long long)hi);
    return 1;
}

int ssl__bad_sizes(const char *fn, const char *names, int n, const int64_t *dims, size_t elem)
{
    int64_t total = elem ? (int64_t)elem : 1;
    for (int i = 0; i < n; i++) {
        /* the i-th name of the list, for the message */
        const char *name = names;
        for (int k = 0; k < i && name; k++) {
            name = strchr(name, ',');
            name = name ? name + 1 + strspn(name + 1, " ") : NULL;
        }
        int len = name ? (int)strcspn(name, ",") : 1;
        if (dims[i] < 0)
            return ssl_set_error(SSL_ERR_INVALID, "%s: %.*s is %lld (a size, >= 0)", fn, len,
                                 name ? name : "?", (long long)dims[i]),
                   1;
        if (dims[i] > 0 && total > PTRDIFF_MAX / dims[i])
            return ssl_set_error(SSL_ERR_INVALID,
                                 "%s: %.*s = %lld makes the buffer overflow (sizes %s)", fn, len,
                                 name ? name : "?", (long long)dims[i], names),
                   1;
        total *= dims[i] ? dims[i] : 1;
    }
    return 0;
}
