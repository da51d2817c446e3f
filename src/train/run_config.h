/* The run config: every section but model/loss/optim, which their modules read. */
#ifndef SSL_TRAIN_RUN_CONFIG_H
#define SSL_TRAIN_RUN_CONFIG_H

#include "io/json_strict.h"
#include "methods/method.h"
#include "ssl/data.h"
#include "ssl/io.h"
#include "ssl/train.h"

typedef struct ssl_run_cfg {
    char name[64];
    /* data */
    char dataset[32], root[512], split[16], eval_split[16];
    int64_t limit, eval_limit;
    int64_t
        val_size; /* the last val_size training images form split SSL_VAL_SPLIT, not trained on */
    int image_size, channels, workers, strict_files;
    int captions;  /* build captions from class names ("a photo of a {name}") */
    int follow_links; /* data.follow_links: folder datasets read directory links out of root */
    /* views and masks */
    ssl_views_t views;
    int n_global;  /* views of the first group */
    ssl_view_aug_t eval_view;
    int mask_kind; /* ssl_mask_kind_t */
    ssl_mask_opts_t mask;
    /* train */
    int epochs;
    int64_t batch_size, max_steps; /* max_steps: per epoch, 0 = all */
    uint64_t seed;
    int threads, log_every, skip_nonfinite;
    ssl_precision_t precision; /* train.precision: of the step's GEMM-shaped ops */
    char precision_auto[200];  /* train.precision "auto": why it resolved as it did ("" else) */
    int sync_bn;    /* train.sync_bn: batch norm over the batch of all ranks (several ranks) */
    int check_sync; /* train.check_sync: compare the ranks' parameters after every step (else
                     * after the first step and at every epoch's end) */
    /* eval */
    int knn_every, knn_k;
    float knn_t;
    int64_t knn_train_limit, knn_test_limit;
    int samples; /* eval.samples: a generative method's samples per epoch's picture (0: none) */
    int eval_target; /* eval.encoder "target": probe the EMA target encoder (DINO's teacher) */
    int eval_blocks; /* eval.blocks: probe features of the last n ViT blocks (1: pooled) */
    /* checkpoint */
    int ckpt_every, keep_last;
    int64_t ckpt_every_steps; /* checkpoint.every_steps: last.safetensors every N steps too */
    int save_init; /* checkpoint.save_init: checkpoints/init.safetensors before the first step */
    /* target */
    int target;
    double ema_start, ema_end;
    int ema_schedule; /* target.schedule: SSL_SCHED_COSINE, _LINEAR or _CONSTANT */
} ssl_run_cfg_t;

/* Read the sections data, views, masks, train, eval, checkpoint, target of the root reader
 * (SSL_CFG_FILL writes the defaults into the document). */
int ssl__run_cfg_read(ssl_cfg_t *root, ssl_run_cfg_t *rc);
/* The run config a checkpoint's metadata holds (key "config"), parsed. NULL with
 * SSL_ERR_FORMAT naming the file and the metadata key when it is missing or not JSON. */
cJSON *ssl__run_cfg_from_checkpoint(const ssl_st_t *f, const char *path);
/* What the method of this run needs to know of the other sections (env->dataset points into
 * rc). */
void ssl__run_cfg_method_env(const ssl_run_cfg_t *rc, ssl_method_env_t *env);

#endif
