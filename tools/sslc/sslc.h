/* sslc subcommands: each takes the arguments after its name; returns the exit status
 * (0 ok, 1 runtime error, 2 usage or config error). */
#ifndef SSLC_H
#define SSLC_H

#include <stddef.h>
#include <stdint.h>

#include "ssl/train.h"

int sslc_cmd_train(int argc, char **argv);
int sslc_cmd_embed(int argc, char **argv);
int sslc_cmd_knn(int argc, char **argv);
int sslc_cmd_linear(int argc, char **argv);
int sslc_cmd_info_ckpt(int argc, char **argv);
int sslc_cmd_bench(int argc, char **argv);
int sslc_cmd_zeroshot(int argc, char **argv);
int sslc_cmd_caption(int argc, char **argv);
int sslc_cmd_sample(int argc, char **argv);
int sslc_cmd_report(int argc, char **argv);
int sslc_cmd_export(int argc, char **argv);
/* JSON given inline ("{...}") or as a file name: a malloc'ed NUL-terminated text, *source
 * naming it in messages ("--encoder" or the file); NULL after printing why to stderr. */
char *sslc_read_json_arg(const char *arg, const char **source);
/* RUN_DIR's report.html (or `out`): charts of metrics.jsonl and a PCA scatter of `points` test
 * embeddings of `ckpt` (default RUN_DIR/checkpoints/last.safetensors) unless no_scatter.
 * Returns 0, or 1 after printing why to stderr. */
int sslc_report_write(const char *run, const char *out, const char *ckpt, int64_t points,
                      int no_scatter);

/* Where sslc knn / linear take their features: CKPT (or CONFIG with --identity or --weights),
 * --identity, --encoder JSON|FILE, --weights FILE, --train-limit N, --test-limit N,
 * --threads N, --blocks N, --readout BLOCK@T, --bn-stats N, --train-features F
 * --test-features F. */
typedef struct sslc_feature_src {
    const char *source;
    const char *encoder, *weights; /* torchvision/timm weights instead of a checkpoint */
    int identity, threads;
    int blocks; /* 0: the checkpoint config's eval.blocks */
    const char *readout; /* NULL: the diffusion checkpoint config's readout */
    int64_t bn_stats;    /* --bn-stats N: BatchNorm statistics recomputed first (0: kept) */
    int64_t train_limit, test_limit;
    /* --train-features / --test-features: .npy files of sslc embed (with their .labels.npy)
     * instead of embedding here; source then not needed */
    const char *train_features, *test_features;
} sslc_feature_src_t;

/* What --weights and --encoder do, for the --help of embed, knn and linear. */
extern const char sslc_weights_help[];
/* What --blocks does, for the same. */
extern const char sslc_blocks_help[];
/* What --train-features / --test-features do, for the --help of knn and linear. */
extern const char sslc_npy_features_help[];

/* The labels file sslc embed writes beside FEATS: FEATS.labels.npy, or FEATS's name with
 * its .npy replaced. Returns 0, or -1 when buf (cap bytes) is too small. */
int sslc_labels_path(const char *feats, char *buf, size_t cap);

/* If argv[*i] is one of those options (or the positional source), take it (advancing *i past
 * its value) and return 1; else 0; -1 after printing why its value is invalid (exit 2). */
int sslc_feature_opt(const char *cmd, int argc, char **argv, int *i, sslc_feature_src_t *s);

/* Train and test features of s->source for subcommand `cmd`: its encoder's (a checkpoint),
 * with identity raw pixels, with weights those of the encoder the weights initialise (source
 * then a checkpoint or a config file giving the data), after setting the thread count.
 * Prints the error and returns 1 (nothing to free) or 0. */
int sslc_load_features(const char *cmd, const sslc_feature_src_t *s, ssl_ckpt_features_t *tr,
                       ssl_ckpt_features_t *te);

#endif
