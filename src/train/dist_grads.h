/* Gradient averaging over the ranks in buckets started during backward (dist_grads.c). */
#ifndef SSL_TRAIN_DIST_GRADS_H
#define SSL_TRAIN_DIST_GRADS_H

#include "ssl/core.h"

/* Bucket size of the gradient sums: large enough to reach the link's bandwidth, small enough
 * that the first sums start early in backward (PyTorch DDP uses 25 MB; the first bucket 1). */
#define SSL_DIST_BUCKET_BYTES ((size_t)4 << 20)

typedef struct ssl_dist_grads ssl_dist_grads_t;

/* Buckets over the trainable parameters of p; NULL for one process (the functions below then
 * do nothing) or with the error set. */
ssl_dist_grads_t *ssl__dist_grads_create(ssl_params_t *p, size_t bucket_bytes);
void ssl__dist_grads_free(ssl_dist_grads_t *g);
/* Before backward: the buckets start as ctx's backward finishes their gradients. */
void ssl__dist_grads_attach(ssl_dist_grads_t *g, ssl_ctx_t *ctx);
/* After backward: start the rest, wait, divide by the ranks. Every gradient is then the mean
 * over the ranks, the same bits on every rank. */
int ssl__dist_grads_finish(ssl_dist_grads_t *g, ssl_ctx_t *ctx);
/* Number of buckets; *early: those started during the last backward. */
int ssl__dist_grads_buckets(const ssl_dist_grads_t *g, int64_t *early);

/* What the sums cost, added up over the steps since the buckets were made: the time from
 * attach to finish (backward, with the sums started inside it), the time finish took (the
 * rest started, all waited for: the part of the sums backward did not hide), and the floats
 * summed, started during backward, and complete when backward ended. */
typedef struct ssl_dist_grads_stats {
    int64_t steps;
    double backward_s, wait_s;
    int64_t floats, floats_early, floats_done;
} ssl_dist_grads_stats_t;
void ssl__dist_grads_stats(const ssl_dist_grads_t *g, ssl_dist_grads_stats_t *s);

#endif
