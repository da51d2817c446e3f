/* Embedding a dataset with a trained checkpoint's encoder (sslc embed). */
#include "trainer_internal.h"

#include <stdlib.h>
#include <string.h>

#include "ssl/eval.h"
#include "ssl/io.h"

int ssl__embed(const ssl_embed_opts_t *o, ssl_ckpt_features_t *keep);

int ssl_checkpoint_features(const char *checkpoint, const char *split, int64_t limit,
                            ssl_ckpt_features_t *out)
{
    memset(out, 0, sizeof *out);
    ssl_embed_opts_t eo = {checkpoint, split, limit, NULL, NULL};
    return ssl__embed(&eo, out);
}

void ssl_ckpt_features_free(ssl_ckpt_features_t *f)
{
    free(f->x);
    free(f->labels);
    memset(f, 0, sizeof *f);
}

int ssl_embed_checkpoint(const ssl_embed_opts_t *o, int64_t *n_out, int64_t *dim_out)
{
    ssl_ckpt_features_t f;
    memset(&f, 0, sizeof f);
    int st = ssl__embed(o, &f);
    if (st == SSL_OK) {
        if (n_out)
            *n_out = f.n;
        if (dim_out)
            *dim_out = f.dim;
    }
    ssl_ckpt_features_free(&f);
    return st;
}

/* Features in memory (keep != NULL) and/or written to o->out_path. */
int ssl__embed(const ssl_embed_opts_t *o, ssl_ckpt_features_t *keep)
{
    ssl_st_t *f = ssl_st_open(o->checkpoint);
    if (!f)
        return ssl_last_status();
    const char *text = ssl_st_meta(f, "config");
    if (!text) {
        ssl_st_close(f);
        return ssl_set_error(SSL_ERR_FORMAT, "%s: no config in the metadata (not an sslc "
                             "training checkpoint)", o->checkpoint);
    }
    cJSON *doc = ssl_json_parse(text, strlen(text), o->checkpoint);
    int err = 0, st;
    ssl_run_cfg_t rc;
    ssl_dataset_t *ds = NULL;
    ssl_params_t *online = ssl_params_create(), *target = ssl_params_create();
    ssl_method_t *m = NULL;
    ssl_ctx_t *ctx = ssl_ctx_create((size_t)64 << 20);
    float *feats = NULL;
    int64_t dim = 0, n = 0;
    if (!doc || !online || !target || !ctx) {
        st = ssl_last_status() ? ssl_last_status() : SSL_ERR_NOMEM;
        goto done;
    }
    ssl_cfg_t root = ssl_cfg_root(doc, o->checkpoint, &err, 0);
    if ((st = ssl__run_cfg_read(&root, &rc)) != SSL_OK)
        goto done;
    ds = ssl__load_split(&rc, o->split ? o->split : rc.eval_split, o->limit);
    if (!ds || (rc.captions && ssl__add_class_captions(ds) != SSL_OK)) {
        st = ssl_last_status();
        goto done;
    }
    m = ssl__method_create(&root, &rc, ds, online, target, rc.seed);
    if (!m) {
        st = ssl_last_status();
        goto done;
    }
    ssl_st_report_t rep;
    memset(&rep, 0, sizeof rep);
    st = ssl_st_load_params(f, online, "", SSL_ST_ALLOW_UNEXPECTED, &rep);
    ssl_st_report_free(&rep);
    if (st != SSL_OK)
        goto done;
    n = ds->n;
    feats = ssl__extract_features(m, ctx, &rc.eval_view, ds, n, &dim);
    if (!feats) {
        st = ssl_last_status();
        goto done;
    }
    st = o->out_path ? ssl_npy_save_f32_2d(o->out_path, n, dim, feats) : SSL_OK;
    if (st == SSL_OK && o->out_path && o->labels_path && ds->labels)
        st = ssl_npy_save_labels_i32(o->labels_path, n, ds->labels);
    keep->n = n;
    keep->dim = dim;
    keep->n_classes = ds->n_classes;
    if (st == SSL_OK && ds->labels) {
        keep->labels = malloc((size_t)n * sizeof(int32_t));
        if (!keep->labels)
            st = ssl_set_error(SSL_ERR_NOMEM, "embed: out of memory");
        else
            memcpy(keep->labels, ds->labels, (size_t)n * sizeof(int32_t));
    }
    if (st == SSL_OK) {
        keep->x = feats;
        feats = NULL;
    }
done:
    free(feats);
    ssl__method_free(m);
    ssl_params_free(online);
    ssl_params_free(target);
    ssl_dataset_free(ds);
    ssl_ctx_free(ctx);
    cJSON_Delete(doc);
    ssl_st_close(f);
    return st;
}
