/* Online evaluation during training: kNN on the pooled features of the online encoder. */
#include "trainer_internal.h"

#include <stdlib.h>
#include <string.h>

#include "ssl/eval.h"

int ssl__trainer_knn(ssl_trainer_t *t, double *top1)
{
    const ssl_dataset_t *tr = t->train_ds, *te = t->eval_ds;
    if (!te || !tr->labels || !te->labels || tr->n_classes < 2)
        return ssl_set_error(SSL_ERR_CONFIG, "eval.knn_every: kNN needs labelled train and "
                             "eval splits (set eval.knn_every to 0 to turn it off)");
    int64_t ntr = t->rc.knn_train_limit > 0 && t->rc.knn_train_limit < tr->n
                      ? t->rc.knn_train_limit : tr->n;
    int64_t nte = t->rc.knn_test_limit > 0 && t->rc.knn_test_limit < te->n
                      ? t->rc.knn_test_limit : te->n;
    int64_t d1 = 0, d2 = 0;
    float *ftr = ssl__extract_features(t->method, t->ctx, &t->rc.eval_view, tr, ntr, &d1);
    float *fte = ftr ? ssl__extract_features(t->method, t->ctx, &t->rc.eval_view, te, nte, &d2)
                     : NULL;
    int st = ftr && fte ? SSL_OK : ssl_last_status();
    if (st == SSL_OK) {
        ssl_knn_result_t r;
        ssl_features_t a = {ftr, tr->labels, ntr, d1}, b = {fte, te->labels, nte, d2};
        ssl_knn_opts_t ko = ssl_knn_opts_default();
        ko.k = t->rc.knn_k < ntr ? t->rc.knn_k : (int)ntr;
        ko.temperature = t->rc.knn_t;
        st = ssl_knn_eval(&a, &b, tr->n_classes, &ko, &r, NULL);
        if (st == SSL_OK)
            *top1 = r.top1;
    }
    free(ftr);
    free(fte);
    return st;
}
