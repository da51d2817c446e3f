/* Head configuration from a strict JSON section (internal: used by the trainer's config and by
 * ssl_head_cfg_from_json). */
#ifndef SSL_HEADS_HEAD_CONFIG_H
#define SSL_HEADS_HEAD_CONFIG_H

#include "io/json_strict.h"
#include "ssl/heads.h"

/* Start from ssl_head_preset(kind) -- or of the section's own "type" key when present -- and
 * read the section's keys over it. Unknown keys are errors
 * suggesting the nearest valid key; every error names the key path. An unknown kind is an
 * error on the section itself. Returns the reader's status. */
int ssl__head_cfg_read(ssl_cfg_t *c, const char *kind, ssl_head_cfg_t *cfg);

#endif
