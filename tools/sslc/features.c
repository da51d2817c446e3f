/* Train and test features for sslc knn / linear: a checkpoint's encoder, or raw pixels. */
#include <stdio.h>

#include "sslc.h"
#include "ssl/train.h"

int sslc_load_features(const char *cmd, const char *source, int identity, int64_t train_limit,
                       int64_t test_limit, ssl_ckpt_features_t *tr, ssl_ckpt_features_t *te)
{
    int st = identity ? ssl_pixel_features(source, "train", train_limit, tr)
                      : ssl_checkpoint_features(source, "train", train_limit, tr);
    if (st == SSL_OK)
        st = identity ? ssl_pixel_features(source, NULL, test_limit, te)
                      : ssl_checkpoint_features(source, NULL, test_limit, te);
    if (st != SSL_OK) {
        fprintf(stderr, "sslc %s: %s\n", cmd, ssl_last_error());
        ssl_ckpt_features_free(tr);
        return 1;
    }
    if (!tr->labels || !te->labels || tr->n_classes < 2) {
        fprintf(stderr, "sslc %s: the dataset of %s has no labels\n", cmd, source);
        ssl_ckpt_features_free(tr);
        ssl_ckpt_features_free(te);
        return 1;
    }
    return 0;
}
