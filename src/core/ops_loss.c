/* Elementwise regression losses, mean-reduced to a scalar: mse, l1 and smooth_l1 (PyTorch's
 * SmoothL1Loss). The two inputs must have exactly the same shape (no broadcasting). The sum
 * is taken over fixed blocks in double and the blocks are combined in order, so the result
 * depends on the element count only, never on the thread count. */
#include "core_internal.h"

#include <math.h>

#define LANES 16   /* independent accumulators inside a block */
#define BLOCK 4096 /* elements per block of the deterministic sum */
#define MAX_BLOCKS 64

enum { LOSS_MSE = 0, LOSS_L1 = 1, LOSS_SMOOTH_L1 = 2 };

/* Per-element loss of d = a - b. */
static inline double loss_elem(int kind, float d, float beta)
{
    double ad = fabs((double)d);
    if (kind == LOSS_MSE)
        return ad * ad;
    if (kind == LOSS_L1)
        return ad;
    return ad < beta ? 0.5 * ad * ad / beta : ad - 0.5 * beta;
}

/* Sum of loss_elem over [lo, hi) in double. kind is a loop invariant, so each branch of
 * loss_elem is hoisted by the compiler and the lane loop vectorises. */
static double block_sum(int kind, const float *a, const float *b, int64_t lo, int64_t hi,
                        float beta)
{
    double acc[LANES] = {0}, tail = 0;
    int64_t i = lo;
    for (; i + LANES <= hi; i += LANES) {
#pragma omp simd
        for (int k = 0; k < LANES; k++)
            acc[k] += loss_elem(kind, a[i + k] - b[i + k], beta);
    }
    for (; i < hi; i++)
        tail += loss_elem(kind, a[i] - b[i], beta);
    for (int w = LANES / 2; w > 0; w /= 2) /* pairwise, fixed order */
        for (int k = 0; k < w; k++)
            acc[k] += acc[k + w];
    return acc[0] + tail;
}

static double loss_sum(int kind, const float *a, const float *b, int64_t n, float beta)
{
    int64_t nb = (n + BLOCK - 1) / BLOCK;
    if (nb > MAX_BLOCKS)
        nb = MAX_BLOCKS;
    if (nb <= 1)
        return block_sum(kind, a, b, 0, n, beta);
    int64_t size = (n + nb - 1) / nb;
    double part[MAX_BLOCKS];
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (int64_t k = 0; k < nb; k++) {
        int64_t lo = k * size, hi = lo + size < n ? lo + size : n;
        part[k] = lo < hi ? block_sum(kind, a, b, lo, hi, beta) : 0.0;
    }
    double s = 0;
    for (int64_t k = 0; k < nb; k++)
        s += part[k];
    return s;
}

static int loss_shape(const ssl_node_t *n, int *ndim, int64_t *shape)
{
    (void)shape;
    if (!ssl_same_shape(n->in[0], n->in[1]))
        return ssl__op_error(n, "inputs must have the same shape");
    if (n->op == SSL_OP_SMOOTH_L1 && !(n->fa[0] >= 0.0f && n->fa[0] < INFINITY))
        return ssl__op_error_status(n, SSL_ERR_INVALID, "beta must be finite and >= 0, got %g",
                                    (double)n->fa[0]);
    *ndim = 0; /* a scalar */
    return SSL_OK;
}

static int loss_kind(const ssl_node_t *n)
{
    return n->op == SSL_OP_MSE ? LOSS_MSE : n->op == SSL_OP_L1 ? LOSS_L1 : LOSS_SMOOTH_L1;
}

static int loss_forward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    (void)ctx;
    const ssl_tensor_t *a = n->in[0], *b = n->in[1];
    int kind = loss_kind(n);
    float beta = n->fa[0];
    if (kind == LOSS_SMOOTH_L1 && beta == 0.0f)
        kind = LOSS_L1;
    double s = loss_sum(kind, a->data, b->data, a->numel, beta);
    n->out->data[0] = (float)(s / (double)a->numel);
    return SSL_OK;
}

/* dL/da = g/n * f'(a - b), dL/db = -dL/da, with
 * mse: 2 d; l1: sign(d) (0 at 0, as torch); smooth_l1: d / beta inside |d| < beta, else sign. */
static void loss_backward(ssl_ctx_t *ctx, ssl_node_t *n)
{
    ssl_tensor_t *a = n->in[0], *b = n->in[1];
    float *da = ssl__grad(ctx, a), *db = ssl__grad(ctx, b);
    int64_t cnt = a->numel;
    int kind = loss_kind(n);
    float beta = n->fa[0];
    if (kind == LOSS_SMOOTH_L1 && beta == 0.0f)
        kind = LOSS_L1;
    float scale = (float)(n->out->grad[0] / (double)cnt);
    float s2 = kind == LOSS_MSE ? 2.0f * scale : scale;
    float ib = kind == LOSS_SMOOTH_L1 ? 1.0f / beta : 0.0f;
    const float *x = a->data, *y = b->data;
#pragma omp parallel for schedule(static) if (cnt > SSL_OMP_MIN)
    for (int64_t i = 0; i < cnt; i++) {
        float d = x[i] - y[i], g;
        if (kind == LOSS_MSE)
            g = s2 * d;
        else {
            float sg = d > 0 ? 1.0f : (d < 0 ? -1.0f : 0.0f);
            g = kind == LOSS_SMOOTH_L1 && fabsf(d) < beta ? d * ib : sg;
            g *= s2;
        }
        if (da)
            da[i] += g;
        if (db)
            db[i] -= g;
    }
}

const ssl_op_def_t ssl_opdef_mse = {"mse", 0, loss_shape, loss_forward, loss_backward, 0};
const ssl_op_def_t ssl_opdef_l1 = {"l1", 0, loss_shape, loss_forward, loss_backward, 0};
const ssl_op_def_t ssl_opdef_smooth_l1 = {"smooth_l1", 0, loss_shape, loss_forward,
                                          loss_backward, 0};

static ssl_tensor_t *loss(ssl_ctx_t *ctx, int op, ssl_tensor_t *a, ssl_tensor_t *b, float beta)
{
    ssl_node_t n;
    ssl__node_init(&n, op, 2, a, b);
    n.fa[0] = beta;
    return ssl__apply(ctx, &n);
}

ssl_tensor_t *ssl_mse(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b)
{
    return loss(ctx, SSL_OP_MSE, a, b, 0.0f);
}

ssl_tensor_t *ssl_l1(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b)
{
    return loss(ctx, SSL_OP_L1, a, b, 0.0f);
}

ssl_tensor_t *ssl_smooth_l1(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b, float beta)
{
    return loss(ctx, SSL_OP_SMOOTH_L1, a, b, beta);
}
