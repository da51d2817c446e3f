/* Features of a method over a dataset, in batches without a tape. */
#include "features.h"

#include <stdlib.h>
#include <string.h>

int ssl__each_batch(const ssl_method_t *m, ssl_ctx_t *ctx, const ssl_view_aug_t *a,
                    const ssl_dataset_t *ds, int64_t n, uint64_t seed, int view, ssl__batch_fn fn,
                    void *user)
{
    int64_t C = ds->c, S = a->out_h, B = ssl__method_eval_batch(m);
    ssl_aug_ws_t *ws = ssl_aug_ws_create();
    if (!ws)
        return ssl_last_status();
    int prev = ssl_ctx_set_grad(ctx, 0), st = SSL_OK;
    for (int64_t i0 = 0; i0 < n && st == SSL_OK; i0 += B) {
        int64_t b = n - i0 < B ? n - i0 : B;
        ssl_ctx_reset(ctx);
        ssl_tensor_t *x = ssl_tensor_4d(ctx, b, C, S, S);
        st = x ? SSL_OK : ssl_last_status();
        for (int64_t i = 0; i < b && st == SSL_OK; i++) {
            const uint8_t *src = ds->images + (i0 + i) * ds->c * ds->h * ds->w;
            st = ssl_augment_view(a, src, ds->c, ds->h, ds->w, seed, 0, i0 + i, view,
                                  x->data + i * C * S * S, ws);
        }
        if (st == SSL_OK)
            st = fn(ctx, x, i0, user);
    }
    ssl_ctx_reset(ctx);
    ssl_ctx_set_grad(ctx, prev);
    ssl_aug_ws_free(ws);
    return st;
}

typedef struct extract_state {
    ssl_method_t *m;
    ssl__forward_fn forward;
    int64_t n, dim;
    float *feats; /* (n, dim) */
} extract_state_t;

static int extract_batch(ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t i0, void *user)
{
    extract_state_t *e = user;
    ssl_tensor_t *f = e->forward(e->m, ctx, x);
    if (!f)
        return ssl_last_status();
    if (!e->feats) {
        e->dim = f->shape[1];
        e->feats = malloc((size_t)(e->n * e->dim) * sizeof(float));
        if (!e->feats)
            return ssl_set_error(SSL_ERR_NOMEM, "embedding: out of memory for %lld x %lld features",
                                 (long long)e->n, (long long)e->dim);
    }
    memcpy(e->feats + i0 * e->dim, f->data, (size_t)(x->shape[0] * e->dim) * sizeof(float));
    return SSL_OK;
}

float *ssl__extract(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_view_aug_t *a,
                    const ssl_dataset_t *ds, int64_t n, uint64_t seed, int view,
                    ssl__forward_fn forward, int64_t *dim)
{
    extract_state_t e = {m, forward, n, 0, NULL};
    if (ssl__each_batch(m, ctx, a, ds, n, seed, view, extract_batch, &e) != SSL_OK) {
        free(e.feats);
        return NULL;
    }
    *dim = e.dim;
    return e.feats;
}

float *ssl__extract_features(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_view_aug_t *a,
                             const ssl_dataset_t *ds, int64_t n, int64_t *dim)
{
    return ssl__extract(m, ctx, a, ds, n, 0, 0, ssl__method_features, dim);
}
