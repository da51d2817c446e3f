/* Loss sections of a run config, read with the strict reader (used by the trainer). */
#ifndef SSL_LOSSES_LOSS_CONFIG_H
#define SSL_LOSSES_LOSS_CONFIG_H

#include "io/json_strict.h"
#include "ssl/losses.h"

/* Read one loss section {"type": "infonce", "temperature": 0.2, ...} into out: "type" is
 * required, every other key defaults as docs/losses.md lists, keys that the type does not take
 * are errors naming the key path (and the nearest valid key). Returns ssl_cfg_status(c). */
int ssl__loss_cfg_read(ssl_cfg_t *c, ssl_loss_cfg_t *out);

/* Read parent[key] as one loss section (an object) or a weighted list of them (an array of
 * objects, "loss": [{"type": ..., "weight": ...}, ...]) into out[0..max_n); *n gets the count.
 * An absent key, an empty array or more than max_n entries is an error. */
int ssl__loss_cfgs_read(ssl_cfg_t *parent, const char *key, ssl_loss_cfg_t *out, int max_n, int *n);

#endif
