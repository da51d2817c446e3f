/* Features of a method over a dataset: every image through the method's forward without a tape
 * (train layer; used by the online kNN, checkpoint use, zero-shot and collapse metrics). */
#ifndef SSL_TRAIN_FEATURES_H
#define SSL_TRAIN_FEATURES_H

#include "methods/method.h"
#include "ssl/data.h"

/* fn(ctx, x, i0, user) on the first n images of ds, augmented by a with (seed, epoch 0, sample
 * index, view), in batches x of up to ssl__method_eval_batch(m) images (i0 ..) without a tape;
 * the context is reset before each batch. Stops at the first error (fn's status). */
typedef int (*ssl__batch_fn)(ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t i0, void *user);
int ssl__each_batch(const ssl_method_t *m, ssl_ctx_t *ctx, const ssl_view_aug_t *a,
                    const ssl_dataset_t *ds, int64_t n, uint64_t seed, int view, ssl__batch_fn fn,
                    void *user);
/* forward(m, ctx, x) of the first n images of ds, each augmented by a with (seed, epoch 0,
 * sample index, view), in batches without a tape (as ssl__each_batch): (n, *dim) malloc'ed, or NULL
 * + error. */
typedef ssl_tensor_t *(*ssl__forward_fn)(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x);
float *ssl__extract(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_view_aug_t *a,
                    const ssl_dataset_t *ds, int64_t n, uint64_t seed, int view,
                    ssl__forward_fn forward, int64_t *dim);
/* Pooled encoder features of the first n images of ds under the eval transform a: (n, *dim)
 * malloc'ed, or NULL + error. */
float *ssl__extract_features(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_view_aug_t *a,
                             const ssl_dataset_t *ds, int64_t n, int64_t *dim);

#endif
