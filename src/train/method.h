/* A method: the networks (online, target), heads and loss a run config composes, and one
 * training step's loss graph. The trainer knows nothing of which method it runs. */
#ifndef SSL_TRAIN_METHOD_H
#define SSL_TRAIN_METHOD_H

#include "io/json_strict.h"
#include "run_config.h"
#include "ssl/data.h"
#include "ssl/models.h"

typedef struct ssl_method ssl_method_t;

/* Per-step position, for schedules inside the method (teacher temperature, freezing). */
typedef struct ssl_step_pos {
    int64_t epoch;       /* 0-based */
    int64_t step;        /* global step, 0-based */
    int64_t steps_per_epoch, total_steps;
} ssl_step_pos_t;

/* Build from the "model" and "loss" sections (strict readers). Parameters go into `online`
 * (optimised) and `target` (EMA copy; may stay empty). `ds` gives the channels and captions. */
ssl_method_t *ssl__method_create(ssl_cfg_t *root, const ssl_run_cfg_t *rc,
                                 const ssl_dataset_t *ds, ssl_params_t *online,
                                 ssl_params_t *target, uint64_t seed);
void ssl__method_free(ssl_method_t *m);

/* Called before the forward of every step (prototype normalisation, freezing schedules). */
int ssl__method_before_step(ssl_method_t *m, ssl_params_t *online, const ssl_step_pos_t *pos);
/* The loss graph of one batch (grad mode on; the target branch runs without a tape). */
ssl_tensor_t *ssl__method_loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                               const ssl_step_pos_t *pos);
/* After the optimizer step: queues, centers (EMA of the target is the trainer's). */
int ssl__method_after_step(ssl_method_t *m, ssl_ctx_t *ctx);
/* Pooled encoder features of images x (B, C, H, W), eval mode, no tape. */
ssl_tensor_t *ssl__method_features(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x);
/* Masks the loader must draw (SSL_MASK_NONE if none) with the encoder's patch grid filled. */
int ssl__method_mask_opts(const ssl_method_t *m, const ssl_run_cfg_t *rc, ssl_mask_opts_t *o,
                          int *patch_size);
/* Projector output of the last step (for collapse metrics), or NULL. */
ssl_tensor_t *ssl__method_last_embedding(const ssl_method_t *m);
/* Extra metadata the checkpoint must keep (e.g. the text vocabulary), or NULL. */
const char *ssl__method_vocab(const ssl_method_t *m);

#endif
