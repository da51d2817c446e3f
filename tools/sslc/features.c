/* Train and test features for sslc knn / linear: a checkpoint's encoder, or raw pixels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sslc.h"
#include "ssl/train.h"

int sslc_feature_opt(int argc, char **argv, int *i, sslc_feature_src_t *s)
{
    const char *a = argv[*i];
    int has_value = *i + 1 < argc;
    if (!strcmp(a, "--identity")) {
        s->identity = 1;
    } else if (!strcmp(a, "--train-limit") && has_value) {
        s->train_limit = atoll(argv[++*i]);
    } else if (!strcmp(a, "--test-limit") && has_value) {
        s->test_limit = atoll(argv[++*i]);
    } else if (!strcmp(a, "--threads") && has_value) {
        s->threads = atoi(argv[++*i]);
    } else if (a[0] != '-' && !s->source) {
        s->source = a;
    } else {
        return 0;
    }
    return 1;
}

int sslc_load_features(const char *cmd, const sslc_feature_src_t *s, ssl_ckpt_features_t *tr,
                       ssl_ckpt_features_t *te)
{
    const char *source = s->source;
    int identity = s->identity;
    int64_t train_limit = s->train_limit, test_limit = s->test_limit;
    ssl_set_num_threads(s->threads);
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
