/* Internal to the train layer: helpers shared by the optimizer, clipping and EMA files. */
#ifndef SSL_TRAIN_OPTIM_INTERNAL_H
#define SSL_TRAIN_OPTIM_INTERNAL_H

#include "core/check.h"
#include "ssl/optim.h"

#include <stdint.h>

/* Loops shorter than this run on one thread. */
#define SSL_TRAIN_OMP_MIN 16384

/* Sum of squares of x[0..n) in double. Fixed chunks summed in order, so the result is the same
 * bits for any number of threads. */
double ssl__sumsq_f32(const float *x, int64_t n);

/* 1 if the entry takes part in optimisation: trainable and not frozen. */
static inline int ssl__param_active(const ssl_param_info_t *in)
{
    return in->kind == SSL_PARAM_TRAINABLE && !(in->flags & SSL_PARAM_FROZEN);
}

#endif
