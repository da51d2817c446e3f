#ifndef SSL_MODELS_ENCODER_CONFIG_H
#define SSL_MODELS_ENCODER_CONFIG_H

#include "io/json_strict.h"
#include "ssl/models.h"

/* Read an encoder section through a strict reader (used by the trainer's config too). */
int ssl__encoder_cfg_read(ssl_cfg_t *c, ssl_encoder_cfg_t *cfg);

#endif
