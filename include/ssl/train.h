/* libssl train: the config-driven trainer. A JSON run config composes encoder x heads x target
 * network x loss (see docs/train.md and configs/); the trainer runs it with schedules, EMA,
 * online kNN, checkpoints and exact resume. */
#ifndef SSL_TRAIN_H
#define SSL_TRAIN_H

#include "ssl/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the trainer reports after every step (for progress bars) and at each log point. */
typedef struct ssl_train_progress {
    int64_t epoch, epochs;        /* epoch is 1-based while training */
    int64_t step, steps_per_epoch; /* step within the epoch, 1-based */
    int64_t global_step, total_steps;
    double loss, lr;
    double images_per_s;          /* original images (not views) per second, this epoch */
    double eta_s;                 /* seconds left for the whole run */
    int is_log_point;             /* 1 every train.log_every steps and at the end of an epoch */
    int epoch_done;               /* 1 once per epoch, after its evaluation and checkpoint */
    double knn_top1;              /* online kNN top-1 of this epoch (-1 if not run) */
    double knn_top1_init;         /* kNN top-1 at initialisation (-1 if not run) */
} ssl_train_progress_t;

typedef void (*ssl_train_progress_fn)(const ssl_train_progress_t *p, void *user);

typedef struct ssl_train_opts {
    const char *config_path;          /* JSON run config (NULL when resuming: taken from the
                                       * checkpoint) */
    const char *config_text;          /* or the config itself as JSON text (config_path NULL) */
    const char *const *overrides;     /* "path.to.key=value" applied in order */
    int n_overrides;
    const char *resume_dir;           /* runs/NAME to continue from its last checkpoint */
    const char *out_dir;              /* parent of run directories ("runs") */
    int threads;                      /* > 0 overrides train.threads */
    int stop_after_epochs;            /* > 0: stop (after its checkpoint) once this many epochs
                                       * are done, as if interrupted; the schedules still run
                                       * to train.epochs (for resume tests) */
    int no_run_dir;                   /* 1: write nothing (no run directory, metrics or
                                       * checkpoints), as benchmarks need */
    ssl_train_progress_fn progress;   /* may be NULL */
    void *user;
} ssl_train_opts_t;

typedef struct ssl_trainer ssl_trainer_t;

/* Read the config (strictly: errors name the key path), load the data, build the model,
 * optimizer and run directory; restore the checkpoint when resuming. NULL + error. */
ssl_trainer_t *ssl_trainer_create(const ssl_train_opts_t *opts);
/* Train to the configured number of epochs. SSL_OK, or an error (a non-finite loss or gradient
 * stops the run naming the step and the first non-finite tensor; the last good checkpoint is
 * kept). */
int ssl_trainer_run(ssl_trainer_t *t);
const char *ssl_trainer_run_dir(const ssl_trainer_t *t);
void ssl_trainer_free(ssl_trainer_t *t);

/* Embed a dataset split with the encoder of a training checkpoint: pooled features (N, D) as
 * float32 .npy at out_path and int32 labels at labels_path (may be NULL), the data and the
 * evaluation transform taken from the checkpoint's config. split NULL: the config's eval split;
 * limit 0: all images. *n and *dim (may be NULL) get the matrix size. */
typedef struct ssl_embed_opts {
    const char *checkpoint;
    const char *split;
    int64_t limit;
    const char *out_path, *labels_path;
} ssl_embed_opts_t;

int ssl_embed_checkpoint(const ssl_embed_opts_t *o, int64_t *n, int64_t *dim);

/* The same features in memory: x (n, dim), labels (n) or NULL, n_classes of the dataset. */
typedef struct ssl_ckpt_features {
    float *x;
    int32_t *labels;
    int64_t n, dim;
    int n_classes;
} ssl_ckpt_features_t;

int ssl_checkpoint_features(const char *checkpoint, const char *split, int64_t limit,
                            ssl_ckpt_features_t *out);
void ssl_ckpt_features_free(ssl_ckpt_features_t *f);

/* ---------------------------------------------------------------- benchmarks */

/* Time training steps of a workload: the run config's method, optimizer and batch on one fixed
 * batch (loaded once, so data loading is off the clock), one warm-up step then `steps` timed
 * steps, as ../bench/README.md describes. Built-in workloads (ssl_bench_workloads()):
 *   simclr-r18  ResNet-18 CIFAR stem width 64 on 3x32x32, 2 views, projector 512-2048(BN,
 *               ReLU)-128, NT-Xent tau 0.2, SGD momentum 0.9, weight decay 1e-4
 *   mae-vitt    ViT-Tiny patch 4 on 3x32x32, mask 0.75, decoder dim 128 depth 2 heads 4,
 *               normalised-pixel loss, AdamW
 * or any run config file (config_path), e.g. configs/simclr.json. */
typedef struct ssl_bench_opts {
    const char *workload;         /* a built-in workload name, or NULL with config_path */
    const char *config_path;      /* a run config to time instead */
    const char *const *overrides; /* "path.to.key=value" applied to either */
    int n_overrides;
    int64_t batch_size;           /* 0: the workload's (128) or the config's train.batch_size */
    int steps;                    /* timed steps after the warm-up (0: 5) */
    int threads;                  /* 0: the config's train.threads (0 there: all cores) */
    int peak_n;                   /* sgemm size of the peak measurement (0: 2048; <0: skip) */
    int profile;                  /* 1: per-op profile of the timed steps (ssl_profile_get) */
} ssl_bench_opts_t;

typedef struct ssl_bench_result {
    char name[64];
    int64_t batch_size;           /* images per step (not views) */
    int steps, threads;
    double step_s_median, step_s_min, step_s_max;
    double step_s_total;          /* of all timed steps */
    double images_per_s;          /* batch_size / median step time */
    double gemm_gflop_per_step;   /* floating-point operations in matrix products per step */
    double gemm_gflops;           /* achieved: GEMM work per step / median step time */
    double sgemm_peak_gflops;     /* OpenBLAS sgemm n x n measured in the same run (0: skipped) */
    double loss;                  /* of the last step */
    int64_t peak_rss_bytes;       /* of the whole process so far */
} ssl_bench_result_t;

/* NULL-terminated list of the built-in workload names. */
const char *const *ssl_bench_workloads(void);
/* The run config of a built-in workload as JSON text (static storage), or NULL. */
const char *ssl_bench_workload_config(const char *name);
int ssl_bench_run(const ssl_bench_opts_t *o, ssl_bench_result_t *r);
/* OpenBLAS sgemm of n x n matrices: best GFLOP/s of `reps` runs at the current thread count. */
double ssl_bench_sgemm_peak(int n, int reps);

#ifdef __cplusplus
}
#endif
#endif
