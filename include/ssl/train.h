/* libssl train: the config-driven trainer. A JSON run config composes encoder x heads x target
 * network x loss (see docs/train.md and configs/); the trainer runs it with schedules, EMA,
 * online kNN, checkpoints and exact resume. */
#ifndef SSL_TRAIN_H
#define SSL_TRAIN_H

#include "ssl/core.h"
#include "ssl/data.h"
#include "ssl/eval.h"
#include "ssl/losses.h"

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
    /* the eval split's bound on -log p(x) at the epoch's end, generative methods only (the
     * VAE's negative ELBO): nats per image and bits per dimension; NAN when not measured */
    double test_nll, test_bits_per_dim;
    /* the family's own metrics of the eval split at the epoch's end (n 0 when it has none;
     * the BEiT tokenizer's rec_mse, perplexity, codes_used), as test_NAME in metrics.jsonl */
    ssl_loss_parts_t test_metrics;
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

/* The split data.val_size carves from the end of the training split (eval_split "val"): hold
 * out images to choose hyperparameters on, and report the test split once. */
#define SSL_VAL_SPLIT "val"

typedef struct ssl_trainer ssl_trainer_t;

/* Read the config (strictly: errors name the key path), load the data, build the model,
 * optimizer and run directory; restore the checkpoint when resuming. NULL + error. */
SSL_API ssl_trainer_t *ssl_trainer_create(const ssl_train_opts_t *opts);
/* Train to the configured number of epochs. SSL_OK, or an error (a non-finite loss or gradient
 * stops the run naming the step and the first non-finite tensor; the last good checkpoint is
 * kept), or SSL_ERR_INTERRUPTED after ssl_trainer_request_stop. A resumed trainer continues
 * where its checkpoint was taken, at an epoch's end or inside an epoch. */
SSL_API int ssl_trainer_run(ssl_trainer_t *t);
/* Ask ssl_trainer_run to stop: it finishes the step in progress, saves
 * RUN_DIR/checkpoints/last.safetensors there (inside the epoch; at the end of the epoch when
 * that was its last step) and returns SSL_ERR_INTERRUPTED with a message naming the checkpoint;
 * resuming from it continues exactly as the uninterrupted run. Async-signal-safe: it only sets
 * a volatile sig_atomic_t, so a SIGINT/SIGTERM handler may call it (the library installs no
 * signal handlers; sslc train does, docs/train.md). A request before ssl_trainer_run makes it
 * return at once. */
SSL_API void ssl_trainer_request_stop(ssl_trainer_t *t);
SSL_API const char *ssl_trainer_run_dir(const ssl_trainer_t *t);
SSL_API void ssl_trainer_free(ssl_trainer_t *t);

/* ---- your own loop: steps on views you made (docs/train.md, "Your own loop")
 * One training step exactly as ssl_trainer_run takes it (forward, backward, finiteness check,
 * clipping, optimizer at the lr / weight-decay schedules' value for the trainer's current step,
 * EMA of the target, the method's updates: queues, centers), on a batch the caller built:
 * b->n_views views as the config's "views" section describes them, each (B, C, H, W) already
 * augmented and normalised; b->masks for the masked methods (MAE, SimMIM, I-JEPA: as
 * ssl_masks_generate makes them); b->captions for CLIP/SigLIP; b->indices (the samples' indices
 * in the training set) for DeepCluster-v2, after its pass (ssl_trainer_observe below). The step
 * counter then advances (and the epoch, after steps-per-epoch steps: the training split's size /
 * train.batch_size, or train.max_steps), so the schedules run over train.epochs x steps per epoch;
 * stepping past their end is an error. Do not mix with ssl_trainer_run inside an epoch. The
 * config's data section is still read (channels, captions' vocabulary): "dataset": "synthetic"
 * needs no files. *loss (may be NULL) gets the step's loss. Under MPI (mpirun) every rank
 * calls it with its own, equal part of the batch: unequal sizes are an error on every rank
 * naming them (docs/distributed.md). */
SSL_API int ssl_trainer_step(ssl_trainer_t *t, const ssl_batch_t *b, double *loss);
/* Methods with a memory of the data (DeepCluster-v2's memory bank) make a forward-only pass over
 * one epoch before their first step: ssl_trainer_observes returns 1 for them (0 for the others,
 * negative on a NULL trainer). ssl_trainer_run makes the pass itself on a fresh run; a caller of
 * ssl_trainer_step gives it each batch of one epoch first, in order, with b->index its index
 * in the pass (0 to steps per epoch - 1) and b->indices the samples' dataset indices. For
 * methods without a pass ssl_trainer_observe does nothing and returns SSL_OK. */
SSL_API int ssl_trainer_observes(const ssl_trainer_t *t);
SSL_API int ssl_trainer_observe(ssl_trainer_t *t, const ssl_batch_t *b);
/* Set the weights of the online and target networks (parameters, buffers such as batch-norm
 * statistics, and method state such as queues and centers; not the optimizer state) from the
 * tensors "<prefix><name>" of a safetensors file, names as in checkpoints (encoder.conv1.weight,
 * target.encoder.conv1.weight, ...). Every parameter must be there with its shape, and every
 * tensor under the prefix must be a parameter: otherwise an error names them (the online
 * network may by then hold the file's weights: load again or discard the trainer). prefix
 * NULL: "". */
SSL_API int ssl_trainer_load_weights(ssl_trainer_t *t, const char *path, const char *prefix);
/* The online (target 0) or target (target 1) parameter store: read it with ssl_params_get. */
SSL_API ssl_params_t *ssl_trainer_params(ssl_trainer_t *t, int target);
/* Steps taken so far and the schedules' length. */
SSL_API int64_t ssl_trainer_global_step(const ssl_trainer_t *t);
SSL_API int64_t ssl_trainer_total_steps(const ssl_trainer_t *t);

/* Embed a dataset split with the encoder of a training checkpoint: pooled features (N, D) as
 * float32 .npy at out_path and int32 labels at labels_path (may be NULL), the data and the
 * evaluation transform taken from the checkpoint's config. split NULL: the config's eval split;
 * limit 0: all images. blocks 0: the readout the config's eval.blocks names (1 unless set);
 * n > 0: the readout of the last n blocks of a ViT (ssl_encoder_readout: n * D features).
 * readout: a diffusion checkpoint's readout "BLOCK@T" (e.g. "mid@50": the block and noise
 * level, as model.unet.readout_block and readout_t; NULL: the config's) or a PixelCNN
 * checkpoint's "LAYER" / "LAYER/maxG" (the layer, mean-pooled or max-pooled to a G x G grid, as
 * model.network.feature_layer and feature_grid); an error for the other methods.
 * bn_stats n > 0: before embedding, the BatchNorm running statistics of the layers the readout
 * runs are recomputed from the first n images of the train split under the evaluation
 * transform (reset, then the average of the batches' statistics weighted by batch size, as
 * torch.optim.swa_utils.update_bn averages them); an error when the readout runs no BatchNorm
 * layer or the train split has fewer than n images; 0: the checkpoint's statistics. The
 * checkpoint file is not changed. *n and *dim (may be NULL) get the matrix size. */
typedef struct ssl_embed_opts {
    const char *checkpoint;
    const char *split;
    int64_t limit;
    const char *out_path, *labels_path;
    int blocks;
    const char *readout;
    int64_t bn_stats;
} ssl_embed_opts_t;

SSL_API int ssl_embed_checkpoint(const ssl_embed_opts_t *o, int64_t *n, int64_t *dim);

/* The same features in memory: x (n, dim), labels (n) or NULL, n_classes of the dataset and
 * its class names (n_classes strings) or NULL. */
typedef struct ssl_ckpt_features {
    float *x;
    int32_t *labels;
    int64_t n, dim;
    int n_classes;
    char **class_names;
} ssl_ckpt_features_t;

SSL_API int ssl_checkpoint_features(const char *checkpoint, const char *split, int64_t limit,
                                    ssl_ckpt_features_t *out);
/* As ssl_checkpoint_features with the options of ssl_embed_checkpoint (out_path and
 * labels_path are not read): e.g. another readout (blocks). */
SSL_API int ssl_embed_features(const ssl_embed_opts_t *o, ssl_ckpt_features_t *out);
SSL_API void ssl_ckpt_features_free(ssl_ckpt_features_t *f);

/* The identity encoder: raw pixels of a split, flattened (C*H*W per row, as the data section
 * loads the images) and scaled to [0, 1], with labels: the baseline every learned
 * representation should beat. source: a training checkpoint or a run config file (a name
 * ending in ".json"); only its data section is used. */
SSL_API int ssl_pixel_features(const char *source, const char *split, int64_t limit,
                               ssl_ckpt_features_t *out);

/* Features of a split as ssl_checkpoint_features makes them, with an encoder from torchvision /
 * timm weights instead of a training checkpoint: encoder_json describes it (the JSON of
 * ssl_encoder_cfg_from_json, e.g. {"type": "resnet18", "stem": "cifar", "in_channels": 1};
 * NULL: the description a file of sslc export carries in its metadata), weights is read by
 * ssl_encoder_load_weights (strict), and source (a run config file ending in ".json", or a
 * training checkpoint) gives the data section and the evaluation transform. */
SSL_API int ssl_weights_features(const char *encoder_json, const char *weights, const char *source,
                                 const char *split, int64_t limit, ssl_ckpt_features_t *out);

/* Write the encoder of a training checkpoint alone as torchvision / timm weights
 * (ssl_encoder_save_weights, with the checkpoint's model.encoder section as the description).
 * source: "online" (encoder.*), "target" (the EMA teacher, target.encoder.*), or NULL for the
 * one the checkpoint's eval.encoder names. A checkpoint without that encoder is an error. */
SSL_API int ssl_checkpoint_export_encoder(const char *checkpoint, const char *source,
                                          const char *out_path);

/* A run's metrics.jsonl read back (sslc report, sslc info): every line a strict JSON object of
 * numbers (null: a value that was not finite). values is (n_rows, SSL_RUN_LOG_MAX_KEYS), column
 * k holding keys[k]; NAN where a row lacks the key or has null. Empty lines are skipped; a
 * malformed line is an error naming the file, the line number and the reason. */
#define SSL_RUN_LOG_MAX_KEYS 64

typedef struct ssl_run_log {
    int64_t n_rows;
    int n_keys;
    char *keys[SSL_RUN_LOG_MAX_KEYS];
    double *values;
} ssl_run_log_t;

SSL_API int ssl_run_log_read(const char *path, ssl_run_log_t *log);
SSL_API void ssl_run_log_free(ssl_run_log_t *log);
/* Column of a key, or -1. */
SSL_API int ssl_run_log_key(const ssl_run_log_t *log, const char *key);
/* The rows where both keys have finite values, in file order: x[i], y[i] (room for n_rows
 * each). Returns how many (0 when a key never occurs). */
SSL_API int64_t ssl_run_log_series(const ssl_run_log_t *log, const char *xkey, const char *ykey,
                                   double *x, double *y);

/* Collapse metrics of a checkpoint's encoder on the first `limit` images (0: 1000) of a split
 * (NULL: the eval split): rankme and embedding_std of the pooled features under the evaluation
 * transform; alignment (alpha 2) and uniformity (t 2) of the L2-normalised pooled features of
 * two views of each image drawn with the training augmentation (views 1 and 2 of the config, or
 * view 1 twice), seeded by the run's seed. The trainer's per-epoch values in metrics.jsonl are
 * measured on the projector outputs of a training batch instead, so the two differ. */
typedef struct ssl_collapse_report {
    int64_t n, dim;
    double rankme, embedding_std, alignment, uniformity;
} ssl_collapse_report_t;

SSL_API int ssl_checkpoint_collapse(const char *checkpoint, const char *split, int64_t limit,
                                    ssl_collapse_report_t *out);

/* One line describing a run config (a run directory's config.json or any config file):
 * "simclr: resnet18 (width 16), loss infonce, fashion_mnist, 1 epoch x batch 256, sgd lr 0.3".
 * Keys that are absent are left out. */
SSL_API int ssl_run_describe(const char *config_path, char *buf, size_t len);

/* Zero-shot classification with a CLIP or SigLIP checkpoint. Each class name of the dataset
 * goes into the prompt template ("{}" is replaced by the name) and through the text tower (with
 * the vocabulary stored in the checkpoint); each image of the split through the encoder and
 * the image projection (evaluation transform); an image is assigned the class whose prompt
 * embedding has the highest cosine similarity (ssl_zeroshot_eval). Words of the prompts the
 * vocabulary does not know become <unk>; *unknown_words (may be NULL) counts them.
 * SSL_ERR_UNSUPPORTED for a checkpoint without a text tower. */
#define SSL_ZEROSHOT_PROMPT "a photo of a {}" /* the captions data.captions builds */

typedef struct ssl_zeroshot_opts {
    const char *checkpoint;
    const char *split;  /* NULL: the config's eval split */
    int64_t limit;      /* 0: all images */
    const char *prompt; /* NULL: SSL_ZEROSHOT_PROMPT */
} ssl_zeroshot_opts_t;

SSL_API int ssl_zeroshot_checkpoint(const ssl_zeroshot_opts_t *o, ssl_zeroshot_result_t *res,
                                    int64_t *unknown_words);

/* Captions of the first n images of a split by a CoCa checkpoint: greedy decoding (at every
 * step the most probable next word, never padding or <unk>, up to <eos> or the text tower's
 * context length) with the vocabulary stored in the checkpoint; evaluation transform.
 * out->text[i] is the generated caption of image i (words joined by spaces, without <sos> and
 * <eos>), out->reference[i] the dataset's own caption of it (NULL when it has none) and
 * out->labels (NULL when unlabelled) its class. SSL_ERR_UNSUPPORTED for a checkpoint without a
 * caption decoder. Free with ssl_captions_free. */
typedef struct ssl_caption_opts {
    const char *checkpoint;
    const char *split; /* NULL: the config's eval split */
    int64_t n;         /* images, from the first; 0: 8 */
} ssl_caption_opts_t;

typedef struct ssl_captions {
    int64_t n;
    char **text, **reference;
    int32_t *labels;
} ssl_captions_t;

SSL_API int ssl_caption_checkpoint(const ssl_caption_opts_t *o, ssl_captions_t *out);
SSL_API void ssl_captions_free(ssl_captions_t *c);

/* Samples of a generative checkpoint (VAE, DCGAN, BiGAN, DDPM, PixelCNN: methods that draw
 * pictures) as a PNG grid (sslc sample): n images of the model from seed, cols per row, 2 pixels between, each
 * image's pixels in [0, 1] as grey levels (colour images as RGB). steps: the diffusion sampler's
 * levels (0: the checkpoint config's model.unet.sample_steps; > 0 for a method that samples in
 * one pass is an error). SSL_ERR_UNSUPPORTED for a checkpoint whose method draws no samples. */
typedef struct ssl_sample_opts {
    const char *checkpoint;
    const char *out_path; /* the PNG */
    int64_t n;            /* 0: 64 */
    uint64_t seed;
    int steps;
    int cols; /* 0: 8 */
} ssl_sample_opts_t;

SSL_API int ssl_sample_checkpoint(const ssl_sample_opts_t *o);

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
    double model_gflop_per_step;  /* the model's operations per step (ssl_model_flops) */
    double model_gflops;          /* model work per step / median step time */
    double sgemm_peak_gflops;     /* OpenBLAS sgemm n x n measured in the same run (0: skipped) */
    double loss;                  /* of the last step */
    int64_t peak_rss_bytes;       /* of the whole process so far */
} ssl_bench_result_t;

/* NULL-terminated list of the built-in workload names. */
SSL_API const char *const *ssl_bench_workloads(void);
/* The run config of a built-in workload as JSON text (static storage), or NULL. */
SSL_API const char *ssl_bench_workload_config(const char *name);
SSL_API int ssl_bench_run(const ssl_bench_opts_t *o, ssl_bench_result_t *r);
/* OpenBLAS sgemm of n x n matrices: best GFLOP/s of `reps` runs at the current thread count. */
SSL_API double ssl_bench_sgemm_peak(int n, int reps);
/* The same for oneDNN's bf16 matmul (bf16 operands, fp32 sums and result, as the bf16 ops run
 * it, the operands' conversion included): 0 with SSL_ERR_UNSUPPORTED where bf16 cannot run. */
SSL_API double ssl_bench_bf16_peak(int n, int reps);
/* What ssl_bench_run_ex adds to ssl_bench_result_t (a struct of its own: the result's size is
 * part of the ABI). */
typedef struct ssl_bench_extra {
    ssl_precision_t precision; /* train.precision the steps ran in */
    double bf16_peak_gflops;   /* ssl_bench_bf16_peak in the same run (0: skipped or no bf16) */
    double cpu_s_median;       /* median CPU seconds of the process (all threads) per step */
} ssl_bench_extra_t;
/* ssl_bench_run, and into *x (may be NULL) the precision, the bf16 peak and the CPU time. */
SSL_API int ssl_bench_run_ex(const ssl_bench_opts_t *o, ssl_bench_result_t *r,
                             ssl_bench_extra_t *x);

#ifdef __cplusplus
}
#endif
#endif
