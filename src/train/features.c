/* Features of a method over a dataset, in batches of 256 without a tape. */
#include "features.h"

#include <stdlib.h>
#include <string.h>

float *ssl__extract(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_view_aug_t *a,
                    const ssl_dataset_t *ds, int64_t n, uint64_t seed, int view,
                    ssl__forward_fn forward, int64_t *dim)
{
    int64_t C = ds->c, S = a->out_h, B = 256;
    float *feats = NULL;
    ssl_aug_ws_t *ws = ssl_aug_ws_create();
    if (!ws)
        return NULL;
    int prev = ssl_ctx_set_grad(ctx, 0);
    for (int64_t i0 = 0; i0 < n; i0 += B) {
        int64_t b = n - i0 < B ? n - i0 : B;
        ssl_ctx_reset(ctx);
        ssl_tensor_t *x = ssl_tensor_4d(ctx, b, C, S, S);
        if (!x)
            goto fail;
        for (int64_t i = 0; i < b; i++) {
            const uint8_t *src = ds->images + (i0 + i) * ds->c * ds->h * ds->w;
            if (ssl_augment_view(a, src, ds->c, ds->h, ds->w, seed, 0, i0 + i, view,
                                 x->data + i * C * S * S, ws) != SSL_OK)
                goto fail;
        }
        ssl_tensor_t *f = forward(m, ctx, x);
        if (!f)
            goto fail;
        if (!feats) {
            *dim = f->shape[1];
            feats = malloc((size_t)(n * *dim) * sizeof(float));
            if (!feats) {
                ssl_set_error(SSL_ERR_NOMEM, "embedding: out of memory for %lld x %lld features",
                              (long long)n, (long long)*dim);
                goto fail;
            }
        }
        memcpy(feats + i0 * *dim, f->data, (size_t)(b * *dim) * sizeof(float));
    }
    ssl_ctx_reset(ctx);
    ssl_ctx_set_grad(ctx, prev);
    ssl_aug_ws_free(ws);
    return feats;
fail:
    ssl_ctx_reset(ctx);
    ssl_ctx_set_grad(ctx, prev);
    ssl_aug_ws_free(ws);
    free(feats);
    return NULL;
}

float *ssl__extract_features(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_view_aug_t *a,
                             const ssl_dataset_t *ds, int64_t n, int64_t *dim)
{
    return ssl__extract(m, ctx, a, ds, n, 0, 0, ssl__method_features, dim);
}
