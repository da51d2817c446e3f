/* Strict numeric option values (args.h). */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int sslc_arg_i64(const char *cmd, const char *opt, const char *value, int64_t lo, int64_t hi,
                 int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = value && *value ? strtoll(value, &end, 10) : 0;
    if (!value || !*value || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "sslc %s: %s '%s' is not an integer in %lld..%lld\n", cmd, opt,
                value ? value : "", (long long)lo, (long long)hi);
        return 0;
    }
    *out = v;
    return 1;
}

int sslc_arg_int(const char *cmd, const char *opt, const char *value, int lo, int hi, int *out)
{
    int64_t v;
    if (!sslc_arg_i64(cmd, opt, value, lo, hi, &v))
        return 0;
    *out = (int)v;
    return 1;
}

/* A finite number in [lo, hi] at the start of s; *end after it. */
static int number(const char *s, double lo, double hi, int integral, double *v, char **end)
{
    errno = 0;
    *v = strtod(s, end);
    return *end != s && !errno && isfinite(*v) && *v >= lo && *v <= hi &&
           (!integral || *v == floor(*v));
}

int sslc_arg_f64(const char *cmd, const char *opt, const char *value, double lo, double hi,
                 double *out)
{
    char *end = NULL;
    double v;
    if (!value || !number(value, lo, hi, 0, &v, &end) || *end) {
        fprintf(stderr, "sslc %s: %s '%s' is not a number in [%g, %g]\n", cmd, opt,
                value ? value : "", lo, hi);
        return 0;
    }
    *out = v;
    return 1;
}

int sslc_arg_float(const char *cmd, const char *opt, const char *value, double lo, double hi,
                   float *out)
{
    double v;
    if (!sslc_arg_f64(cmd, opt, value, lo, hi, &v))
        return 0;
    *out = (float)v;
    return 1;
}

int sslc_arg_list(const char *cmd, const char *opt, const char *value, double lo, double hi,
                  int integral, double *out, int max)
{
    int n = 0;
    const char *s = value ? value : "";
    char *end = NULL;
    while (n < max && number(s, lo, hi, integral, &out[n], &end)) {
        n++;
        if (!*end)
            return n;
        if (*end != ',')
            break;
        s = end + 1;
    }
    fprintf(stderr,
            "sslc %s: %s '%s' is not a list of at most %d %s in [%g, %g], separated by "
            "commas\n",
            cmd, opt, value ? value : "", max, integral ? "integers" : "numbers", lo, hi);
    return 0;
}
