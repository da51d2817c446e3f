/* Using a trained checkpoint: its method rebuilt from the config in its metadata, the
 * parameters loaded, and a dataset split to run it on (sslc embed, knn, linear, zeroshot). */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "ckpt_model.h"
#include "core/bn_update.h"

#include <stdlib.h>
#include <string.h>

#include "ssl/eval.h"
#include "ssl/io.h"

int ssl__ckpt_model_open(ssl_ckpt_model_t *cm, const char *checkpoint, const char *split,
                         int64_t limit, int blocks, const char *readout)
{
    memset(cm, 0, sizeof *cm);
    cm->path = checkpoint;
    cm->f = ssl_st_open(checkpoint);
    if (!cm->f)
        return ssl_last_status();
    cm->doc = ssl__run_cfg_from_checkpoint(cm->f, checkpoint);
    if (!cm->doc)
        return ssl_last_status();
    cm->online = ssl_params_create();
    cm->target = ssl_params_create();
    cm->ctx = ssl_ctx_create((size_t)64 << 20);
    if (!cm->doc || !cm->online || !cm->target || !cm->ctx)
        return ssl_last_status() ? ssl_last_status() : SSL_ERR_NOMEM;
    int err = 0, st;
    ssl_cfg_t root = ssl_cfg_root(cm->doc, checkpoint, &err, 0);
    if ((st = ssl__run_cfg_read(&root, &cm->rc)) != SSL_OK)
        return st;
    cm->ds = ssl__load_split(&cm->rc, split ? split : cm->rc.eval_split, limit);
    if (!cm->ds || (cm->rc.captions && ssl__add_class_captions(cm->ds) != SSL_OK))
        return ssl_last_status();
    /* the text tower's vocabulary is the one it was trained with, not one rebuilt from the
     * captions of this split (which may lack words) */
    ssl_method_env_t env;
    ssl__run_cfg_method_env(&cm->rc, &env);
    if (blocks > 0)
        env.eval_blocks = blocks;
    env.readout = readout;
    cm->m = ssl__method_create(&root, &env, cm->ds, cm->online, cm->target, cm->rc.seed,
                               ssl_st_meta(cm->f, "vocab"));
    if (!cm->m)
        return ssl_last_status();
    ssl_st_report_t rep;
    memset(&rep, 0, sizeof rep);
    st = ssl_st_load_params(cm->f, cm->online, "", SSL_ST_ALLOW_UNEXPECTED, &rep);
    ssl_st_report_free(&rep);
    if (st == SSL_OK && ssl_params_count(cm->target) > 0) { /* eval.encoder "target" */
        st = ssl_st_load_params(cm->f, cm->target, "", SSL_ST_ALLOW_UNEXPECTED, &rep);
        ssl_st_report_free(&rep);
    }
    return st;
}

void ssl__ckpt_model_close(ssl_ckpt_model_t *cm)
{
    ssl__method_free(cm->m);
    ssl_params_free(cm->online);
    ssl_params_free(cm->target);
    ssl_dataset_free(cm->ds);
    ssl_ctx_free(cm->ctx);
    cJSON_Delete(cm->doc);
    ssl_st_close(cm->f);
    memset(cm, 0, sizeof *cm);
}

/* A copy of the dataset's class names into f (nothing when it has none). */
static int copy_class_names(ssl_ckpt_features_t *f, const ssl_dataset_t *ds)
{
    if (!ds->class_names || ds->n_classes < 1)
        return SSL_OK;
    f->class_names = calloc((size_t)ds->n_classes, sizeof(char *));
    for (int c = 0; f->class_names && c < ds->n_classes; c++)
        if (!(f->class_names[c] = strdup(ds->class_names[c] ? ds->class_names[c] : "")))
            return ssl_set_error(SSL_ERR_NOMEM, "features: out of memory for class names");
    return f->class_names ? SSL_OK : ssl_set_error(SSL_ERR_NOMEM, "features: out of memory");
}

/* The features of an opened model's split in memory (keep != NULL) and/or written to
 * o->out_path (o may be NULL: none). */
static int embed_model(ssl_ckpt_model_t *cm, const ssl_embed_opts_t *o, ssl_ckpt_features_t *keep)
{
    float *feats = NULL;
    int64_t dim = 0, n = 0;
    int st = SSL_OK;
    const ssl_dataset_t *ds = cm->ds;
    n = ds->n;
    feats = ssl__extract_features(cm->m, cm->ctx, &cm->rc.eval_view, ds, n, &dim);
    if (!feats) {
        st = ssl_last_status();
        goto done;
    }
    st = o && o->out_path ? ssl_npy_save_f32_2d(o->out_path, n, dim, feats) : SSL_OK;
    if (st == SSL_OK && o && o->out_path && o->labels_path && ds->labels)
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
    if (st == SSL_OK)
        st = copy_class_names(keep, ds);
    if (st == SSL_OK) {
        keep->x = feats;
        feats = NULL;
    }
done:
    free(feats);
    return st;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && !strcmp(s + n - k, tail);
}

/* Every BatchNorm layer's running statistics of p reset: mean 0, var 1, no batches seen. */
static void reset_bn_stats(ssl_params_t *p)
{
    for (int i = 0; i < ssl_params_count(p); i++) {
        const ssl_param_info_t *pi = ssl_params_info(p, i);
        int var = ends_with(pi->name, ".running_var");
        if (var || ends_with(pi->name, ".running_mean") ||
            ends_with(pi->name, ".num_batches_tracked"))
            for (int64_t j = 0; j < pi->t->numel; j++)
                pi->t->data[j] = var ? 1.0f : 0.0f;
    }
}

/* Whether a BatchNorm layer of p has seen a batch since reset_bn_stats. */
static int bn_stats_seen(const ssl_params_t *p)
{
    for (int i = 0; i < ssl_params_count(p); i++) {
        const ssl_param_info_t *pi = ssl_params_info(p, i);
        if (ends_with(pi->name, ".num_batches_tracked") && pi->t->data[0] > 0.0f)
            return 1;
    }
    return 0;
}

static int run_readout(ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t i0, void *user)
{
    (void)i0;
    return ssl__method_features(user, ctx, x) ? SSL_OK : ssl_last_status();
}

/* o->bn_stats (ssl_embed_opts_t): the readout's BatchNorm statistics recomputed from the first
 * n training images, with the layers in eval mode otherwise (nn.c, bn_update.h). */
static int recompute_bn_stats(ssl_ckpt_model_t *cm, int64_t n)
{
    ssl_dataset_t *tr = ssl__load_split(&cm->rc, cm->rc.split, n);
    if (!tr)
        return ssl_last_status();
    int st = SSL_OK;
    if (tr->n < n)
        st = ssl_set_error(SSL_ERR_INVALID,
                           "%s: bn_stats %lld needs %lld images of the '%s' split, it has %lld",
                           cm->path, (long long)n, (long long)n, cm->rc.split, (long long)tr->n);
    if (st == SSL_OK) {
        reset_bn_stats(cm->online);
        reset_bn_stats(cm->target);
        int prev = ssl__ctx_set_bn_update(cm->ctx, 1);
        st = ssl__each_batch(cm->m, cm->ctx, &cm->rc.eval_view, tr, tr->n, 0, 0, run_readout,
                             cm->m);
        ssl__ctx_set_bn_update(cm->ctx, prev);
    }
    if (st == SSL_OK && !bn_stats_seen(cm->online) && !bn_stats_seen(cm->target))
        st = ssl_set_error(SSL_ERR_INVALID,
                           "%s: bn_stats: the encoder's readout runs no BatchNorm layer (a ViT "
                           "normalises with LayerNorm); leave it 0",
                           cm->path);
    ssl_dataset_free(tr);
    return st;
}

static int embed(const ssl_embed_opts_t *o, ssl_ckpt_features_t *keep)
{
    ssl_ckpt_model_t cm;
    if (o->bn_stats < 0)
        return ssl_set_error(SSL_ERR_INVALID, "embed: bn_stats must be >= 0, got %lld",
                             (long long)o->bn_stats);
    int st = ssl__ckpt_model_open(&cm, o->checkpoint, o->split, o->limit, o->blocks, o->readout);
    if (st == SSL_OK && o->bn_stats > 0)
        st = recompute_bn_stats(&cm, o->bn_stats);
    if (st == SSL_OK)
        st = embed_model(&cm, o, keep);
    ssl__ckpt_model_close(&cm);
    return st;
}

int ssl_checkpoint_features(const char *checkpoint, const char *split, int64_t limit,
                            ssl_ckpt_features_t *out)
{
    if (SSL__IS_NULL(checkpoint, __func__) || SSL__IS_NULL(out, __func__))
        return SSL_ERR_INVALID;
    memset(out, 0, sizeof *out);
    ssl_embed_opts_t eo = {checkpoint, split, limit, NULL, NULL, 0, NULL, 0};
    return embed(&eo, out);
}

int ssl_embed_features(const ssl_embed_opts_t *o, ssl_ckpt_features_t *out)
{
    if (SSL__IS_NULL(o, __func__) || SSL__IS_NULL(o->checkpoint, __func__) ||
        SSL__IS_NULL(out, __func__))
        return SSL_ERR_INVALID;
    memset(out, 0, sizeof *out);
    ssl_embed_opts_t eo = *o;
    eo.out_path = eo.labels_path = NULL;
    return embed(&eo, out);
}

void ssl_ckpt_features_free(ssl_ckpt_features_t *f)
{
    if (!f) /* as free(NULL) */
        return;
    for (int c = 0; f->class_names && c < f->n_classes; c++)
        free(f->class_names[c]);
    free(f->class_names);
    free(f->x);
    free(f->labels);
    memset(f, 0, sizeof *f);
}

int ssl_embed_checkpoint(const ssl_embed_opts_t *o, int64_t *n_out, int64_t *dim_out)
{
    if (SSL__IS_NULL(o, __func__))
        return SSL_ERR_INVALID;
    ssl_ckpt_features_t f;
    memset(&f, 0, sizeof f);
    int st = embed(o, &f);
    if (st == SSL_OK) {
        if (n_out)
            *n_out = f.n;
        if (dim_out)
            *dim_out = f.dim;
    }
    ssl_ckpt_features_free(&f);
    return st;
}

/* The run config of a checkpoint's metadata or of a JSON config file (".json"). */
static cJSON *source_config(const char *source)
{
    size_t len = strlen(source);
    if (len > 5 && !strcmp(source + len - 5, ".json"))
        return ssl_json_parse_file(source);
    ssl_st_t *f = ssl_st_open(source);
    if (!f)
        return NULL;
    cJSON *doc = ssl__run_cfg_from_checkpoint(f, source);
    ssl_st_close(f);
    return doc;
}

int ssl_pixel_features(const char *source, const char *split, int64_t limit,
                       ssl_ckpt_features_t *out)
{
    if (SSL__IS_NULL(source, __func__) || SSL__IS_NULL(out, __func__))
        return SSL_ERR_INVALID;
    memset(out, 0, sizeof *out);
    cJSON *doc = source_config(source);
    if (!doc)
        return ssl_last_status();
    int err = 0, st;
    ssl_run_cfg_t rc;
    ssl_cfg_t root = ssl_cfg_root(doc, source, &err, 0);
    ssl_dataset_t *ds = NULL;
    if ((st = ssl__run_cfg_read(&root, &rc)) != SSL_OK)
        goto done;
    ds = ssl__load_split(&rc, split ? split : rc.eval_split, limit);
    if (!ds) {
        st = ssl_last_status();
        goto done;
    }
    int64_t n = ds->n, d = ds->c * ds->h * ds->w;
    out->x = malloc((size_t)(n * d) * sizeof(float)); // (n, C*H*W)
    out->labels = ds->labels ? malloc((size_t)n * sizeof(int32_t)) : NULL;
    if (!out->x || (ds->labels && !out->labels)) {
        ssl_ckpt_features_free(out);
        st = ssl_set_error(SSL_ERR_NOMEM, "pixel features: out of memory for %lld x %lld",
                           (long long)n, (long long)d);
        goto done;
    }
    for (int64_t i = 0; i < n * d; i++)
        out->x[i] = ds->images[i] / 255.0f;
    if (ds->labels)
        memcpy(out->labels, ds->labels, (size_t)n * sizeof(int32_t));
    out->n = n;
    out->dim = d;
    out->n_classes = ds->n_classes;
    if ((st = copy_class_names(out, ds)) != SSL_OK)
        ssl_ckpt_features_free(out);
done:
    ssl_dataset_free(ds);
    cJSON_Delete(doc);
    return st;
}

/* ---------------------------------------------------------------- torchvision / timm weights */

/* The encoder `encoder_json` describes (NULL: the one the weights file's metadata names), with
 * the weights of the file, over a split of the data section of `source`. */
static int weights_model_open(ssl_ckpt_model_t *cm, const char *encoder_json, const char *weights,
                              const char *source, const char *split, int64_t limit)
{
    memset(cm, 0, sizeof *cm);
    cm->path = weights;
    ssl_st_t *wf = NULL;
    if (!encoder_json) {
        if (!(wf = ssl_st_open(weights)))
            return ssl_last_status();
        encoder_json = ssl_st_meta(wf, SSL_WEIGHTS_META_ENCODER);
        if (!encoder_json) {
            ssl_st_close(wf);
            return ssl_set_error(SSL_ERR_INVALID,
                                 "%s: no encoder description in the metadata "
                                 "(files of sslc export have one): give the encoder's JSON",
                                 weights);
        }
    }
    ssl_encoder_cfg_t ecfg;
    int st = ssl_encoder_cfg_from_json(encoder_json, strlen(encoder_json), wf ? weights : "encoder",
                                       &ecfg);
    ssl_st_close(wf);
    if (st != SSL_OK)
        return st;
    cm->doc = source_config(source);
    cm->online = ssl_params_create();
    cm->target = ssl_params_create();
    cm->ctx = ssl_ctx_create((size_t)64 << 20);
    if (!cm->doc || !cm->online || !cm->target || !cm->ctx)
        return ssl_last_status() ? ssl_last_status() : SSL_ERR_NOMEM;
    int err = 0;
    ssl_cfg_t root = ssl_cfg_root(cm->doc, source, &err, 0);
    if ((st = ssl__run_cfg_read(&root, &cm->rc)) != SSL_OK)
        return st;
    cm->ds = ssl__load_split(&cm->rc, split ? split : cm->rc.eval_split, limit);
    if (!cm->ds)
        return ssl_last_status();
    int in_ch = ssl_encoder_cfg_in_channels(&ecfg);
    if (in_ch != cm->ds->c)
        return ssl_set_error(SSL_ERR_CONFIG,
                             "encoder in_channels %d, but the %s images of %s have %lld", in_ch,
                             cm->rc.dataset, source, (long long)cm->ds->c);
    ssl_encoder_t *e = ssl_encoder_create(&ecfg, cm->online, "encoder", 0);
    if (!e)
        return ssl_last_status();
    if (!(cm->m = ssl__method_from_encoder(e, cm->rc.eval_blocks))) { /* the source's readout */
        ssl_encoder_free(e);
        return ssl_last_status();
    }
    return ssl_encoder_load_weights(e, weights);
}

int ssl_weights_features(const char *encoder_json, const char *weights, const char *source,
                         const char *split, int64_t limit, ssl_ckpt_features_t *out)
{
    if (!out)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_weights_features: NULL out");
    memset(out, 0, sizeof *out);
    if (!weights || !source)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_weights_features: NULL weights or source");
    ssl_ckpt_model_t cm;
    int st = weights_model_open(&cm, encoder_json, weights, source, split, limit);
    if (st == SSL_OK)
        st = embed_model(&cm, NULL, out);
    ssl__ckpt_model_close(&cm);
    return st;
}
