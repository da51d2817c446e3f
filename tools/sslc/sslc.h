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

/* Train and test features of `source` for subcommand `cmd`: its encoder's (a checkpoint) or,
 * with identity, raw pixels (a checkpoint or a config file). Prints the error and returns 1
 * (nothing to free) or 0. */
int sslc_load_features(const char *cmd, const char *source, int identity, int64_t train_limit,
                       int64_t test_limit, ssl_ckpt_features_t *tr, ssl_ckpt_features_t *te);

#endif
