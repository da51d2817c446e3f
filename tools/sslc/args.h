/* Strict values of sslc's numeric options, one parser for every subcommand: the whole string
 * must be the number and lie in the range, else the option and the value are named on stderr
 * and the command exits 2 (a usage error). */
#ifndef SSLC_ARGS_H
#define SSLC_ARGS_H

#include <stdint.h>

/* value is a base-10 integer in [lo, hi]: *out = it, 1. Else prints
 * "sslc CMD: OPT 'VALUE' is not an integer in LO..HI" and returns 0. */
int sslc_arg_i64(const char *cmd, const char *opt, const char *value, int64_t lo, int64_t hi,
                 int64_t *out);
int sslc_arg_int(const char *cmd, const char *opt, const char *value, int lo, int hi, int *out);
/* value is a finite number in [lo, hi]: *out = it, 1; else prints why and returns 0. */
int sslc_arg_f64(const char *cmd, const char *opt, const char *value, double lo, double hi,
                 double *out);
int sslc_arg_float(const char *cmd, const char *opt, const char *value, double lo, double hi,
                   float *out);
/* value is a comma-separated list of 1..max numbers, each in [lo, hi] (integers when
 * integral): stores them and returns how many; else prints why and returns 0. */
int sslc_arg_list(const char *cmd, const char *opt, const char *value, double lo, double hi,
                  int integral, double *out, int max);

#endif
