/* sslc subcommands: each takes the arguments after its name; returns the exit status
 * (0 ok, 1 runtime error, 2 usage or config error). */
#ifndef SSLC_H
#define SSLC_H

int sslc_cmd_train(int argc, char **argv);
int sslc_cmd_embed(int argc, char **argv);
int sslc_cmd_knn(int argc, char **argv);
int sslc_cmd_linear(int argc, char **argv);
int sslc_cmd_info_ckpt(int argc, char **argv);
int sslc_cmd_zeroshot(int argc, char **argv);

#endif
