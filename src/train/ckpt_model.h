/* A training checkpoint opened for use (sslc embed, knn, linear, zeroshot, info): its method
 * rebuilt from the config in its metadata, the parameters loaded, a split of its data. */
#ifndef SSL_TRAIN_CKPT_MODEL_H
#define SSL_TRAIN_CKPT_MODEL_H

#include "core/check.h"
#include "features.h"
#include "run_data.h"
#include "ssl/io.h"
#include "ssl/train.h"

/* A training checkpoint opened for use: the method its config composes, with the checkpoint's
 * parameters loaded, and a split of its dataset (captions added for CLIP). */
typedef struct ssl_ckpt_model {
    const char *path;
    ssl_st_t *f;
    cJSON *doc;
    ssl_run_cfg_t rc;
    ssl_dataset_t *ds;
    ssl_params_t *online, *target;
    ssl_method_t *m;
    ssl_ctx_t *ctx;
} ssl_ckpt_model_t;

/* split NULL: the config's eval split; limit 0: all images; blocks 0: the config's eval.blocks
 * (else the probe readout of that many ViT blocks); readout NULL: the config's (else a diffusion
 * model's "BLOCK@T"). On error the partly opened model must still be closed. */
int ssl__ckpt_model_open(ssl_ckpt_model_t *cm, const char *checkpoint, const char *split,
                         int64_t limit, int blocks, const char *readout);
void ssl__ckpt_model_close(ssl_ckpt_model_t *cm);

#endif
