/* PixelCNN's masked convolution: the kernel multiplied by a fixed raster-order mask before an
 * ordinary stride-1 convolution, so each output pixel sees only the pixels above it and to its
 * left (type A: not itself, the first layer; type B: itself too, every later layer). Composed of
 * mul and conv2d, so the weight gradient is the convolution's masked the same way. */
#include "core/check.h"
#include "ssl/core.h"

ssl_tensor_t *ssl_masked_conv2d(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *w,
                                ssl_tensor_t *bias, int type)
{
    if (SSL__NULL_INPUT(x, __func__) || SSL__NULL_INPUT(w, __func__))
        return NULL;
    char s[96];
    if (w->ndim != 4 || w->shape[2] != w->shape[3] || w->shape[2] % 2 == 0 ||
        (type != SSL_CONV_MASK_A && type != SSL_CONV_MASK_B)) {
        ssl_set_error(SSL_ERR_SHAPE, "masked_conv2d: weight %s must be (OC, C, K, K) with K odd, "
                      "and the type %d A (%d) or B (%d)", ssl_shape_str(w, s, sizeof s), type,
                      SSL_CONV_MASK_A, SSL_CONV_MASK_B);
        return NULL;
    }
    int64_t K = w->shape[2], c = K / 2;
    ssl_tensor_t *m = ssl_tensor_zeros(ctx, 4, (int64_t[]){1, 1, K, K});
    if (!m)
        return NULL;
    for (int64_t i = 0; i < K; i++) /* rows above the centre, then the centre row's left part */
        for (int64_t j = 0; j < K; j++)
            m->data[i * K + j] =
                i < c || (i == c && (j < c || (j == c && type == SSL_CONV_MASK_B)));
    return ssl_conv2d(ctx, x, ssl_mul(ctx, w, m), bias, 1, (int)c); /* same size */
}
