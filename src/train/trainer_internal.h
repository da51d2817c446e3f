#ifndef SSL_TRAIN_TRAINER_INTERNAL_H
#define SSL_TRAIN_TRAINER_INTERNAL_H

#include <signal.h>

#include "core/check.h"
#include "dist_grads.h"
#include "features.h"
#include "methods/method.h"
#include "run_data.h"
#include "run_config.h"
#include "ssl/data.h"
#include "ssl/io.h"
#include "ssl/optim.h"
#include "ssl/train.h"

struct ssl_trainer {
    ssl_train_opts_t opts;
    cJSON *doc;                 /* resolved config */
    ssl_run_cfg_t rc;
    ssl_optim_cfg_t ocfg;
    ssl_dataset_t *train_ds, *eval_ds;
    ssl_params_t *online, *target;
    ssl_method_t *method;
    ssl_optim_t *optim;
    ssl_ema_t *ema[8];         /* one per module the target copies (ssl__method_ema_modules) */
    int n_ema;
    ssl_loader_t *loader;
    ssl_ctx_t *ctx;
    ssl_sched_t lr_sched, wd_sched, ema_sched;
    int64_t steps_per_epoch, total_steps;
    int64_t epoch_done;         /* completed epochs */
    int64_t global_step;
    int64_t skipped_steps;
    /* the epoch in progress, saved by a mid-epoch checkpoint so that resuming there logs the
     * same epoch line as the uninterrupted run */
    double epoch_loss_sum;
    int64_t epoch_loss_n, epoch_skipped; /* finite losses summed; steps skipped this epoch */
    double knn_init;            /* kNN top-1 at initialisation, -1 if not measured */
    volatile sig_atomic_t stop_requested; /* ssl_trainer_request_stop */
    int lock_fd;                          /* flock on run_dir/lock, -1 without a run directory */
    float *buf_save[2]; /* on_nonfinite "skip": the buffers of online / target before
                         * the step (BN statistics), restored when it is skipped */
    char run_dir[1024];
    char vocab_meta[8];
    /* data-parallel (dist.h): this process's rank of `world`; rank 0 alone writes the run
     * directory, logs and reports */
    int rank, world;
    ssl_dist_grads_t *grads;   /* gradient buckets, NULL for one process */
    ssl_dist_grads_stats_t grads_at_epoch; /* their counters when the epoch began */
    int stop_agreed;           /* a stop request some rank had at the last step's sum */
    int sync_checked;          /* the ranks' parameters were compared once (check_sync) */
};

/* kNN top-1 of the online encoder's pooled features: a bank from the train split, queries from
 * the eval split (eval.knn_* keys). Returns SSL_OK and *top1 in [0, 1]. */
int ssl__trainer_knn(ssl_trainer_t *t, double *top1);
/* The eval split's measures of a generative method over its first `limit` images (0: all; eval
 * transform): n images (0: not measured: the method has none, or no eval split). has_nll: its
 * likelihood bound (ssl__method_nll, one noise draw per image from train.seed) in nats per
 * image, bits per dimension (nats / (C H W ln 2)) and the per-image means of its parts (the
 * VAE: rec, kl). metrics: its test metrics (ssl__method_test_*: the VQ tokenizer's rec_mse,
 * perplexity, codes_used). */
typedef struct ssl__trainer_nll {
    int64_t n;
    int has_nll;
    double nats, bits_per_dim;
    ssl_loss_parts_t parts, metrics;
} ssl__trainer_nll_t;
int ssl__trainer_nll(ssl_trainer_t *t, int64_t limit, ssl__trainer_nll_t *r);
/* RUN_DIR/pictures/epoch-NNN-recon.png (rows of 8 eval images, each followed by the row of their
 * reconstructions) and epoch-NNN-samples.png (64 samples, seed train.seed) for a method that
 * makes pictures; nothing for the others, without a run directory, or on other ranks. */
int ssl__trainer_pictures(ssl_trainer_t *t, int64_t epoch);
/* One training step on batch b at learning rate lr and weight decay wd: forward, backward,
 * finiteness check, clipping, optimizer, EMA, method updates. *loss_out gets the loss. */
int ssl__trainer_step(ssl_trainer_t *t, const ssl_batch_t *b, double lr, double wd,
                      double *loss_out);
/* The next step of the schedule: ssl__trainer_step at the lr and weight decay of the current
 * global step, which then advances. *lr and *wd get the values used. */
/* The forward-only pass over epoch 0's batches a method with a memory makes before its first
 * step (ssl_trainer_observes); SSL_OK at once for the other methods. */
int ssl__trainer_observe_pass(ssl_trainer_t *t);
int ssl__trainer_step_next(ssl_trainer_t *t, const ssl_batch_t *b, double *lr, double *wd,
                           double *loss);
/* On resume: rewrite path (metrics.jsonl) without the lines written after the checkpoint's
 * step, lines cut off or run together by a kill, and lines an earlier resume repeated (a
 * missing file is fine). A line longer than 64 KB is an error naming the file and line. */
int ssl__run_log_repair(const char *path, int64_t step);
/* Checkpoints: save the full state (atomic) / restore it. */
int ssl__trainer_save(ssl_trainer_t *t, const char *path);
int ssl__trainer_load(ssl_trainer_t *t, const char *path);

#endif
