/* Zero padding and cropping of the last two dims of NCHW (F.pad(x, (left, right, top, bottom))
 * with negative amounts cropping): the shifts and one-sided paddings of the gated PixelCNN's
 * stacks (a causal convolution is a one-sided pad, then an unpadded conv2d; the vertical
 * stack's input to the horizontal one is shifted down a row). Parallel over the N * C planes:
 * each plane's gradient is written by one thread, independent of the thread count. */
#include "core_internal.h"

#include <string.h>

/* ia[0..3] = top, bottom, left, right (negative: crop). A crop may remove every input row
 * (a down shift of a one-row image is a row of zeros); the output keeps a row and a column. */
static int pad_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0];
    if (x->ndim != 4)
        return ssl__op_error(nd, "need x (N, C, H, W)");
    int64_t oh = x->shape[2] + nd->ia[0] + nd->ia[1], ow = x->shape[3] + nd->ia[2] + nd->ia[3];
    if (oh < 1 || ow < 1)
        return ssl__op_error_status(nd, SSL_ERR_INVALID,
                                    "top %lld, bottom %lld, left %lld, right %lld leave an "
                                    "empty output",
                                    (long long)nd->ia[0], (long long)nd->ia[1],
                                    (long long)nd->ia[2], (long long)nd->ia[3]);
    *ndim = 4;
    shape[0] = x->shape[0];
    shape[1] = x->shape[1];
    shape[2] = oh;
    shape[3] = ow;
    return SSL_OK;
}

/* The planes, sizes and the output rows [r0, r1) and columns [c0, c1) that have an input pixel:
 * output (i, j) reads input (i - top, j - left). */
typedef struct pad_dims {
    int64_t planes, h, w, oh, ow, top, left, r0, r1, c0, c1;
} pad_dims_t;

static void pad_dims(const ssl_node_t *nd, pad_dims_t *d)
{
    const ssl_tensor_t *x = nd->in[0], *y = nd->out;
    d->planes = x->shape[0] * x->shape[1];
    d->h = x->shape[2];
    d->w = x->shape[3];
    d->oh = y->shape[2];
    d->ow = y->shape[3];
    d->top = nd->ia[0];
    d->left = nd->ia[2];
    d->r0 = d->top > 0 ? d->top : 0;
    d->r1 = d->h + d->top < d->oh ? d->h + d->top : d->oh;
    d->c0 = d->left > 0 ? d->left : 0;
    d->c1 = d->w + d->left < d->ow ? d->w + d->left : d->ow;
}

static int pad_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    pad_dims_t d;
    pad_dims(nd, &d);
    const float *x = nd->in[0]->data;
    float *y = nd->out->data;
#pragma omp parallel for schedule(static) if (nd->out->numel > SSL_OMP_MIN)
    for (int64_t p = 0; p < d.planes; p++) {
        float *dst = y + p * d.oh * d.ow;      /* (OH, OW) */
        const float *src = x + p * d.h * d.w; /* (H, W) */
        memset(dst, 0, (size_t)(d.oh * d.ow) * sizeof(float));
        for (int64_t i = d.r0; i < d.r1; i++)
            memcpy(dst + i * d.ow + d.c0, src + (i - d.top) * d.w + (d.c0 - d.left),
                   (size_t)(d.c1 - d.c0) * sizeof(float));
    }
    return SSL_OK;
}

static void pad_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    float *dx = ssl__grad(ctx, nd->in[0]);
    if (!dx)
        return;
    pad_dims_t d;
    pad_dims(nd, &d);
    const float *gy = nd->out->grad;
#pragma omp parallel for schedule(static) if (nd->out->numel > SSL_OMP_MIN)
    for (int64_t p = 0; p < d.planes; p++) {
        const float *g = gy + p * d.oh * d.ow;
        float *dp = dx + p * d.h * d.w;
        for (int64_t i = d.r0; i < d.r1; i++)
            for (int64_t j = d.c0; j < d.c1; j++)
                dp[(i - d.top) * d.w + (j - d.left)] += g[i * d.ow + j];
    }
}

const ssl_op_def_t ssl_opdef_pad2d = {"pad2d", 0, pad_shape, pad_forward, pad_backward, 0};

ssl_tensor_t *ssl_pad2d(ssl_ctx_t *ctx, ssl_tensor_t *x, int top, int bottom, int left,
                        int right)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_PAD2D, 1, x);
    n.ia[0] = top;
    n.ia[1] = bottom;
    n.ia[2] = left;
    n.ia[3] = right;
    return ssl__apply(ctx, &n);
}
