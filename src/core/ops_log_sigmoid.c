/* log_sigmoid: y = log(1 / (1 + exp(-x))), the pairwise term of the SigLIP loss.
 *
 * Composing ssl_log(ssl_sigmoid(x)) loses everything once sigmoid underflows (x below about
 * -88 in float: log(0) = -inf, and the gradient of the positive pairs is lost long before) and
 * rounds 1 - sigmoid(x) to 0 for x above about 17. The fused form stays exact everywhere:
 *   y  = min(x, 0) - log1p(exp(-|x|))
 *   dy/dx = sigmoid(-x) = 1 - sigmoid(x), computed without cancellation. */
#include "core_internal.h"

#include <math.h>

static int log_sigmoid_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0];
    *ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++)
        shape[i] = x->shape[i];
    return SSL_OK;
}

/* log(sigmoid(v)) without overflow or cancellation. */
static inline float log_sigmoid_ref(float v)
{
    return fminf(v, 0.0f) - log1pf(expf(-fabsf(v)));
}

/* sigmoid(-v), the derivative of log_sigmoid at v: exp of a non-positive argument only. */
static inline float sigmoid_neg(float v)
{
    if (v >= 0.0f) {
        float e = expf(-v);
        return e / (1.0f + e);
    }
    return 1.0f / (1.0f + expf(v));
}

static int log_sigmoid_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    const float *x = nd->in[0]->data;
    float *y = nd->out->data;
    const int64_t n = nd->out->numel;
#pragma omp parallel for schedule(static) if (n * 8 > SSL_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        y[i] = log_sigmoid_ref(x[i]);
    return SSL_OK;
}

static void log_sigmoid_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    float *dx = ssl__grad(ctx, nd->in[0]);
    if (!dx)
        return;
    const float *x = nd->in[0]->data, *g = nd->out->grad;
    const int64_t n = nd->out->numel;
#pragma omp parallel for schedule(static) if (n * 8 > SSL_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        dx[i] += g[i] * sigmoid_neg(x[i]);
}

const ssl_op_def_t ssl_opdef_log_sigmoid = {
    "log_sigmoid", 0, log_sigmoid_shape, log_sigmoid_forward, log_sigmoid_backward, 0};

ssl_tensor_t *ssl_log_sigmoid(ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_LOG_SIGMOID, 1, x);
    return ssl__apply(ctx, &n);
}
