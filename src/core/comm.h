/* The processes a training step spans (data-parallel training over MPI), as core sees them: a
 * table of collective functions the train layer fills (src/train/dist.c) and attaches to a
 * context. A context without one is one process, and then every function here is the identity:
 * ssl__all_gather returns its input, batch norm keeps its statistics local, nothing is summed.
 * core knows no MPI: it calls these functions between ops, on the thread that runs the ops. */
#ifndef SSL_CORE_COMM_H
#define SSL_CORE_COMM_H

#include "ssl/core.h"

typedef struct ssl_comm {
    int rank, size; /* this process's rank among size (size > 1 when attached) */
    int sync_bn;    /* a training batch norm normalises with the statistics of all ranks */
    void *user;
    /* buf (n) = the sum over ranks of every rank's buf, the same bits on every rank */
    int (*allreduce_f64)(void *user, double *buf, int64_t n);
    int (*allreduce_f32)(void *user, float *buf, int64_t n);
    /* recv (size * n) = the ranks' send (n) one after the other in rank order */
    int (*allgather_f32)(void *user, const float *send, int64_t n, float *recv);
} ssl_comm_t;

/* Attach comm (NULL: one process) to the context; comm must outlive it or be detached. A
 * comm of size 1 is the same as none. */
void ssl__ctx_set_comm(ssl_ctx_t *ctx, const ssl_comm_t *comm);
/* The attached comm when it spans more than one process, else NULL. */
const ssl_comm_t *ssl__ctx_comm(const ssl_ctx_t *ctx);

/* x (B, ...) of every rank stacked in rank order: (size B, ...). Backward sums the gathered
 * gradient over the ranks and hands each rank its own rows: every rank's loss may use every
 * rank's rows (contrastive negatives, batch statistics). One process: x itself. */
ssl_tensor_t *ssl__all_gather(ssl_ctx_t *ctx, ssl_tensor_t *x);
/* The same without a gradient, into the arena (teacher outputs, keys, scores); x itself for
 * one process. */
ssl_tensor_t *ssl__all_gather_nograd(ssl_ctx_t *ctx, const ssl_tensor_t *x);
/* buf (n) summed over the ranks in place (centers, counts): SSL_OK and nothing for one
 * process. */
int ssl__all_reduce_f64(ssl_ctx_t *ctx, double *buf, int64_t n);
int ssl__all_reduce_f32(ssl_ctx_t *ctx, float *buf, int64_t n);

/* Called by backward once the gradient of a leaf (a parameter) is final: right after the
 * node that uses it first on the tape has run its backward, as nothing before it on the tape
 * reads the leaf. Leaves the tape does not reach are never reported. fn NULL: none. */
typedef void (*ssl_grad_ready_fn)(void *user, ssl_tensor_t *leaf);
void ssl__ctx_set_grad_ready(ssl_ctx_t *ctx, ssl_grad_ready_fn fn, void *user);

#endif
