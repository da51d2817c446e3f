#ifndef SSL_MODELS_ENCODER_CONFIG_H
#define SSL_MODELS_ENCODER_CONFIG_H

#include "io/json_strict.h"
#include "ssl/models.h"

/* Read an encoder section through a strict reader (used by the trainer's config too). With
 * weights not NULL the section may have "weights": a torchvision/timm safetensors file to
 * initialise the encoder from (ssl_encoder_load_weights); *weights gets its path or NULL (the
 * string lives as long as the document). Without, "weights" is an unknown key. */
int ssl__encoder_cfg_read(ssl_cfg_t *c, ssl_encoder_cfg_t *cfg, const char **weights);

#endif
