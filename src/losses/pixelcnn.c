/* PixelCNN's likelihood: each pixel's value k = 255 x is a class of a 256-way softmax, the loss
 * the mean cross-entropy over pixels (nats per dimension). */
#include "losses_internal.h"

#include <math.h>
#include <stdlib.h>

enum { PIXEL_LEVELS = 256 };

ssl_tensor_t *ssl_loss_pixelcnn(ssl_ctx_t *ctx, ssl_tensor_t *logits, ssl_tensor_t *x)
{
    static const char *L = "pixelcnn";
    if (SSL__NULL_INPUT(logits, L) || SSL__NULL_INPUT(x, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    char a[64], b[64];
    if (logits->ndim < 2 || logits->shape[logits->ndim - 1] != PIXEL_LEVELS ||
        logits->numel != x->numel * PIXEL_LEVELS)
        return ssl__loss_fail(L, "logits %s must have one row of %d per pixel of the images %s",
                              LSHAPE(logits, a), PIXEL_LEVELS, LSHAPE(x, b));
    int32_t *k = ssl_arena_alloc(ctx, (size_t)x->numel * sizeof(int32_t));
    if (!k)
        return NULL;
    for (int64_t i = 0; i < x->numel; i++) {
        float v = x->data[i] * (PIXEL_LEVELS - 1);
        long r = lrintf(v);
        if (!(v > -0.5f && v < PIXEL_LEVELS - 0.5f) || fabsf(v - (float)r) > 1e-3f)
            return ssl__loss_fail_status(SSL_ERR_INVALID, L,
                                         "image element %lld is %.7g, not k / 255 for an "
                                         "integer k in [0, 255] (normalised, resized or "
                                         "jittered views?)",
                                         (long long)i, (double)x->data[i]);
        k[i] = (int32_t)r;
    }
    ssl_tensor_t *rows = ssl_reshape(ctx, logits, 2, (int64_t[]){x->numel, PIXEL_LEVELS});
    return ssl_cross_entropy(ctx, rows, k);
}
