/* add_relu: relu(a + b) for two tensors of one shape (a residual block's end), one pass each
 * way and no separate sum tensor. */
#include "core_internal.h"

static int add_relu_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *a = nd->in[0], *b = nd->in[1];
    if (!ssl_same_shape(a, b))
        return ssl__op_error(nd, "both inputs must have the same shape");
    *ndim = a->ndim;
    for (int i = 0; i < a->ndim; i++)
        shape[i] = a->shape[i];
    return SSL_OK;
}

static int add_relu_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    const float *a = nd->in[0]->data, *b = nd->in[1]->data;
    float *y = nd->out->data;
    int64_t n = nd->out->numel;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float v = a[i] + b[i];
        y[i] = v > 0.0f ? v : 0.0f;
    }
    return SSL_OK;
}

static void add_relu_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    const float *y = nd->out->data, *g = nd->out->grad;
    /* a's gradient may take over the output's buffer (masked in place), b's is stored into a
     * fresh buffer: no zeroing pass (ssl__grad_take / ssl__grad_write) */
    int fa = 0, fb = 0;
    float *da = ssl__grad_take(ctx, nd->in[0], nd->out, &fa);
    float *db = ssl__grad_write(ctx, nd->in[1], &fb);
    int64_t n = nd->out->numel;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = y[i] > 0.0f ? g[i] : 0.0f; /* read before da (maybe g itself) is written */
        if (da)
            da[i] = fa ? gi : da[i] + gi;
        if (db)
            db[i] = fb ? gi : db[i] + gi;
    }
}

const ssl_op_def_t ssl_opdef_add_relu = {"add_relu", 0, add_relu_shape, add_relu_forward,
                                         add_relu_backward, 0};

ssl_tensor_t *ssl_add_relu(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_ADD_RELU, 2, a, b);
    return ssl__apply(ctx, &n);
}
