/* Readers for the "optim" and "target" (EMA) config sections, for the trainer's config. */
#ifndef SSL_TRAIN_OPTIM_CONFIG_H
#define SSL_TRAIN_OPTIM_CONFIG_H

#include "io/json_strict.h"
#include "ssl/optim.h"

/* Read an "optim" object through a strict reader. default_kind (ssl_optim_kind_t) is used when
 * "name" is absent (a method's usual optimizer); -1 makes "name" required. Errors name the key
 * path ("optim.momentm: unknown key (did you mean 'momentum'?)"). Returns the reader status. */
int ssl__optim_cfg_read(ssl_cfg_t *c, int default_kind, ssl_optim_cfg_t *out);

/* Read a "target" object: momentum, momentum_end, schedule (cosine|linear|constant), buffers
 * (keep|copy|ema). */
int ssl__ema_cfg_read(ssl_cfg_t *c, ssl_ema_cfg_t *out);

#endif
