/* sslc subcommands: each takes the arguments after its name; returns the exit status
 * (0 ok, 1 runtime error, 2 usage or config error). */
#ifndef SSLC_H
#define SSLC_H

#include <stdint.h>

#include "ssl/train.h"

int sslc_cmd_train(int argc, char **argv);
int sslc_cmd_embed(int argc, char **argv);
int sslc_cmd_knn(int argc, char **argv);
int sslc_cmd_linear(int argc, char **argv);
int sslc_cmd_info_ckpt(int argc, char **argv);
int sslc_cmd_bench(int argc, char **argv);
int sslc_cmd_zeroshot(int argc, char **argv);
int sslc_cmd_report(int argc, char **argv);
/* RUN_DIR's report.html (or `out`): charts of metrics.jsonl and a PCA scatter of `points` test
 * embeddings of `ckpt` (default RUN_DIR/checkpoints/last.safetensors) unless no_scatter.
 * Returns 0, or 1 after printing why to stderr. */
int sslc_report_write(const char *run, const char *out, const char *ckpt, int64_t points,
                      int no_scatter);

/* Where sslc knn / linear take their features: CKPT (or CONFIG with --identity),
 * --identity, --train-limit N, --test-limit N, --threads N. */
typedef struct sslc_feature_src {
    const char *source;
    int identity, threads;
    int64_t train_limit, test_limit;
} sslc_feature_src_t;

/* If argv[*i] is one of those options (or the positional source), take it (advancing *i past
 * its value) and return 1; else 0. */
int sslc_feature_opt(int argc, char **argv, int *i, sslc_feature_src_t *s);

/* Train and test features of s->source for subcommand `cmd`: its encoder's (a checkpoint) or,
 * with identity, raw pixels (a checkpoint or a config file), after setting the thread count.
 * Prints the error and returns 1 (nothing to free) or 0. */
int sslc_load_features(const char *cmd, const sslc_feature_src_t *s, ssl_ckpt_features_t *tr,
                       ssl_ckpt_features_t *te);

#endif
