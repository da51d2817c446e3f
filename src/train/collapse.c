/* Collapse metrics of a checkpoint measured on a sample of its data (sslc info): RankMe and the
 * std of normalised rows of the pooled encoder features under the evaluation transform, and
 * alignment / uniformity of the features of two augmented views of the same images. */
#include "ckpt_model.h"

#include <stdlib.h>
#include <string.h>

#include "ssl/eval.h"

int ssl_checkpoint_collapse(const char *checkpoint, const char *split, int64_t limit,
                            ssl_collapse_report_t *out)
{
    if (SSL__IS_NULL(checkpoint, __func__) || SSL__IS_NULL(out, __func__))
        return SSL_ERR_INVALID;
    memset(out, 0, sizeof *out);
    ssl_ckpt_model_t cm;
    float *f = NULL, *v1 = NULL, *v2 = NULL;
    int64_t d = 0, d1 = 0, d2 = 0;
    int st = ssl__ckpt_model_open(&cm, checkpoint, split, limit > 0 ? limit : 1000, 0, NULL);
    if (st != SSL_OK)
        goto done;
    const ssl_dataset_t *ds = cm.ds;
    if (ds->n < 2) {
        st = ssl_set_error(SSL_ERR_INVALID, "%s: collapse metrics need at least 2 images (the "
                           "split has %lld)", checkpoint, (long long)ds->n);
        goto done;
    }
    /* the first two views of the training augmentation (the first one twice when the method
     * trains on one view); the view index picks independent random draws */
    const ssl_views_t *vs = &cm.rc.views;
    const ssl_view_aug_t *a2 = &vs->view[vs->n_views > 1 ? 1 : 0];
    f = ssl__extract_features(cm.m, cm.ctx, &cm.rc.eval_view, ds, ds->n, &d);
    v1 = f ? ssl__extract(cm.m, cm.ctx, &vs->view[0], ds, ds->n, cm.rc.seed, 0,
                          ssl__method_features, &d1)
           : NULL;
    v2 = v1 ? ssl__extract(cm.m, cm.ctx, a2, ds, ds->n, cm.rc.seed, 1, ssl__method_features, &d2)
            : NULL;
    if (!v2) {
        st = ssl_last_status();
        goto done;
    }
    out->n = ds->n;
    out->dim = d;
    if ((st = ssl_rankme(f, ds->n, d, &out->rankme)) == SSL_OK &&
        (st = ssl_collapse_std(f, ds->n, d, &out->embedding_std)) == SSL_OK &&
        (st = ssl_alignment(v1, v2, ds->n, d, 2.0, 1, &out->alignment)) == SSL_OK)
        st = ssl_uniformity(v1, ds->n, d, 2.0, 1, &out->uniformity);
    if (st != SSL_OK)
        st = ssl_set_error(st, "%s: %s", checkpoint, ssl_last_error());
done:
    free(f);
    free(v1);
    free(v2);
    ssl__ckpt_model_close(&cm);
    return st;
}
