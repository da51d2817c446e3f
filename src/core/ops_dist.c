/* Collective ops of a data-parallel step (comm.h): all_gather with its gradient, and the
 * no-gradient gathers and sums the methods use for statistics. With no comm attached (one
 * process) each is the identity and records nothing. */
#include "core_internal.h"

#include <string.h>

#include "comm.h"

/* ---------------------------------------------------------------- all_gather */

/* in: x (B, ...). ia[0] = ranks, ia[1] = this rank. out: (ranks B, ...), rank r's rows at
 * [r B, (r + 1) B). */
static int all_gather_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0];
    if (x->ndim < 1)
        return ssl__op_error(nd, "x must have a batch dimension");
    *ndim = x->ndim;
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[0] *= nd->ia[0];
    return SSL_OK;
}

static int all_gather_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    const ssl_comm_t *c = ssl__ctx_comm(ctx);
    if (!c || c->size != nd->ia[0])
        return ssl__op_error_status(nd, SSL_ERR_STATE, "the context's ranks changed");
    return c->allgather_f32(c->user, nd->in[0]->data, nd->in[0]->numel, nd->out->data);
}

/* Every rank's loss may read every rank's rows: the gradient of this rank's rows is the sum of
 * the gathered gradients of all ranks, at this rank's place. */
static void all_gather_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    const ssl_comm_t *c = ssl__ctx_comm(ctx);
    ssl_tensor_t *x = nd->in[0], *y = nd->out;
    float *dx = ssl__grad(ctx, x);
    float *sum = ssl_arena_alloc(ctx, sizeof(float) * (size_t)y->numel);
    if (!dx || !sum || !c)
        return; /* out of memory shows in the context's flag */
    memcpy(sum, y->grad, sizeof(float) * (size_t)y->numel);
    if (c->allreduce_f32(c->user, sum, y->numel) != SSL_OK)
        return;
    const float *mine = sum + nd->ia[1] * x->numel;
    for (int64_t i = 0; i < x->numel; i++)
        dx[i] += mine[i];
}

const ssl_op_def_t ssl_opdef_all_gather = {"all_gather", 0, all_gather_shape,
                                           all_gather_forward, all_gather_backward, 0};

ssl_tensor_t *ssl__all_gather(ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    if (!x) {
        ssl__null_input("all_gather", "x");
        return NULL;
    }
    const ssl_comm_t *c = ssl__ctx_comm(ctx);
    if (!c)
        return x;
    ssl_node_t nd;
    ssl__node_init(&nd, SSL_OP_ALL_GATHER, 1, x);
    nd.ia[0] = c->size;
    nd.ia[1] = c->rank;
    return ssl__apply(ctx, &nd);
}

ssl_tensor_t *ssl__all_gather_nograd(ssl_ctx_t *ctx, const ssl_tensor_t *x)
{
    if (!x) {
        ssl__null_input("all_gather", "x");
        return NULL;
    }
    const ssl_comm_t *c = ssl__ctx_comm(ctx);
    if (!c)
        return (ssl_tensor_t *)x;
    int64_t shape[SSL_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[0] *= c->size;
    ssl_tensor_t *y = ssl_tensor_new(ctx, x->ndim, shape);
    if (!y || c->allgather_f32(c->user, x->data, x->numel, y->data) != SSL_OK)
        return NULL;
    return y;
}

int ssl__all_reduce_f64(ssl_ctx_t *ctx, double *buf, int64_t n)
{
    const ssl_comm_t *c = ssl__ctx_comm(ctx);
    return c ? c->allreduce_f64(c->user, buf, n) : SSL_OK;
}

int ssl__all_reduce_f32(ssl_ctx_t *ctx, float *buf, int64_t n)
{
    const ssl_comm_t *c = ssl__ctx_comm(ctx);
    return c ? c->allreduce_f32(c->user, buf, n) : SSL_OK;
}
