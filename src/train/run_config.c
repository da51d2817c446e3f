/* Reading the generic sections of a run config. */
#include "run_config.h"

#include <stdio.h>
#include <string.h>

#include "ssl/optim.h"

static void copy_str(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

/* The string at key into dst[n]: one that does not fit (or an empty one unless allowed) is an
 * error naming the key, never cut. */
static void read_str(ssl_cfg_t *c, const char *key, const char *def, char *dst, size_t n,
                     int allow_empty)
{
    const char *v = ssl_cfg_str(c, key, def);
    size_t len = v ? strlen(v) : 0;
    if (len >= n)
        ssl_cfg_fail(c, key, "'%.24s...' is %zu bytes long, more than the %zu allowed", v, len,
                     n - 1);
    else if (!len && !allow_empty)
        ssl_cfg_fail(c, key, "must not be empty");
    else
        copy_str(dst, n, v);
}

static void read_data(ssl_cfg_t *root, ssl_run_cfg_t *rc)
{
    static const char *const keys[] = {
        "dataset",  "root",    "split",  "eval_split", "limit",    "eval_limit",   "image_size",
        "channels", "workers", "strict", "captions",   "val_size", "follow_links", NULL};
    static const char *const sets[] = {"fashion_mnist", "mnist", "cifar10", "cifar100",
                                       "folder", "pairs", "synthetic", NULL};
    static const char *const caps[] = {"none", "class_names", NULL};
    ssl_cfg_t c = ssl_cfg_obj(root, "data");
    ssl_cfg_keys(&c, keys);
    int set = ssl_cfg_enum(&c, "dataset", sets, 0);
    copy_str(rc->dataset, sizeof rc->dataset, sets[set]);
    const char *def_root = set <= 1 ? SSL_FASHION_MNIST_DIR : "data";
    if (set == 1)
        def_root = "/usr/share/datasets/mnist";
    read_str(&c, "root", def_root, rc->root, sizeof rc->root, 0);
    read_str(&c, "split", "train", rc->split, sizeof rc->split, 0);
    read_str(&c, "eval_split", "test", rc->eval_split, sizeof rc->eval_split, 0);
    rc->limit = ssl_cfg_i64(&c, "limit", 0, 0, (int64_t)1 << 40);
    rc->eval_limit = ssl_cfg_i64(&c, "eval_limit", 0, 0, (int64_t)1 << 40);
    rc->image_size = ssl_cfg_int(&c, "image_size", 32, 8, 1024);
    rc->channels = ssl_cfg_int(&c, "channels", 3, 1, 3);
    rc->workers = ssl_cfg_int(&c, "workers", 2, 0, 64);
    rc->strict_files = ssl_cfg_bool(&c, "strict", 0);
    rc->follow_links = ssl_cfg_bool(&c, "follow_links", 0);
    rc->captions = ssl_cfg_enum(&c, "captions", caps, 0);
    rc->val_size = ssl_cfg_i64(&c, "val_size", 0, 0, (int64_t)1 << 40);
    if (!strcmp(rc->eval_split, SSL_VAL_SPLIT) && rc->val_size == 0)
        ssl_cfg_fail(&c, "eval_split",
                     "'%s' is the split data.val_size carves from the training "
                     "split, and val_size is 0",
                     SSL_VAL_SPLIT);
    if (!strcmp(rc->split, SSL_VAL_SPLIT) && rc->val_size > 0)
        ssl_cfg_fail(&c, "split", "'%s' is held out of training by data.val_size", SSL_VAL_SPLIT);
}

/* One group of identical views: {"n": 2, "size": 28, "crop_scale": [0.2, 1], ...}. */
static void read_view_group(ssl_cfg_t *g, ssl_view_aug_t *a, int *n)
{
    static const char *const keys[] = {"n", "size", "crop", "crop_scale", "crop_ratio",
                                       "antialias", "flip", "jitter", "grayscale", "blur",
                                       "solarize", "solarize_threshold", "normalize", "mean",
                                       "std", NULL};
    static const char *const jkeys[] = {"p", "brightness", "contrast", "saturation", "hue",
                                        NULL};
    static const char *const bkeys[] = {"p", "sigma", "kernel_size", NULL};
    ssl_cfg_keys(g, keys);
    *n = ssl_cfg_int(g, "n", 2, 1, SSL_MAX_VIEWS);
    int size = ssl_cfg_int(g, "size", 32, 4, 1024);
    ssl_view_aug_default(a, size);
    a->crop.p = ssl_cfg_float(g, "crop", a->crop.p, 0, 1);
    ssl_cfg_range(g, "crop_scale", a->crop.scale, a->crop.scale[0], a->crop.scale[1], 1e-3, 1);
    ssl_cfg_range(g, "crop_ratio", a->crop.ratio, a->crop.ratio[0], a->crop.ratio[1], 1e-2, 1e2);
    a->crop.antialias = ssl_cfg_bool(g, "antialias", a->crop.antialias);
    a->p_flip = ssl_cfg_float(g, "flip", a->p_flip, 0, 1);
    ssl_cfg_t j = ssl_cfg_obj(g, "jitter");
    ssl_cfg_keys(&j, jkeys);
    a->jitter.p = ssl_cfg_float(&j, "p", a->jitter.p, 0, 1);
    a->jitter.brightness = ssl_cfg_float(&j, "brightness", a->jitter.brightness, 0, 10);
    a->jitter.contrast = ssl_cfg_float(&j, "contrast", a->jitter.contrast, 0, 10);
    a->jitter.saturation = ssl_cfg_float(&j, "saturation", a->jitter.saturation, 0, 10);
    a->jitter.hue = ssl_cfg_float(&j, "hue", a->jitter.hue, 0, 0.5);
    a->p_gray = ssl_cfg_float(g, "grayscale", a->p_gray, 0, 1);
    ssl_cfg_t b = ssl_cfg_obj(g, "blur");
    ssl_cfg_keys(&b, bkeys);
    a->blur.p = ssl_cfg_float(&b, "p", a->blur.p, 0, 1);
    ssl_cfg_range(&b, "sigma", a->blur.sigma, a->blur.sigma[0], a->blur.sigma[1], 1e-3, 100);
    a->blur.kernel_size = ssl_cfg_int(&b, "kernel_size", a->blur.kernel_size, 0, 101);
    a->p_solarize = ssl_cfg_float(g, "solarize", a->p_solarize, 0, 1);
    a->solarize_threshold = ssl_cfg_float(g, "solarize_threshold", a->solarize_threshold, 0, 1);
    a->normalize = ssl_cfg_bool(g, "normalize", a->normalize);
    double dm[3] = {a->mean[0], a->mean[1], a->mean[2]}, ds[3] = {a->std[0], a->std[1], a->std[2]};
    ssl_cfg_floats(g, "mean", a->mean, 1, 3, dm, 3, -10, 10);
    ssl_cfg_floats(g, "std", a->std, 1, 3, ds, 3, 1e-6, 10);
}

static void read_views(ssl_cfg_t *root, ssl_run_cfg_t *rc)
{
    rc->views.n_views = 0;
    int groups = ssl_cfg_len(root, "views");
    if (ssl_cfg_status(root))
        return;
    if (groups == 0 && ssl_cfg_has(root, "views")) {
        ssl_cfg_fail(root, "views",
                     "is empty: give at least one group of views, or leave the key out for two "
                     "SimCLR views of 32x32");
        return;
    }
    if (groups == 0) { /* absent: two SimCLR views of 32x32 */
        ssl_views_simclr(&rc->views, 2, 32);
        rc->n_global = 2;
        return;
    }
    for (int i = 0; i < groups && !ssl_cfg_status(root); i++) {
        ssl_cfg_t g = ssl_cfg_at(root, "views", i);
        ssl_view_aug_t a;
        int n = 0;
        read_view_group(&g, &a, &n);
        if (ssl_cfg_status(root))
            return;
        if (rc->views.n_views + n > SSL_MAX_VIEWS) {
            ssl_cfg_fail(&g, "n", "more than %d views in all", SSL_MAX_VIEWS);
            return;
        }
        if (ssl_view_aug_validate(&a) != SSL_OK) {
            ssl_cfg_fail(&g, "size", "%s", ssl_last_error());
            return;
        }
        for (int k = 0; k < n; k++)
            rc->views.view[rc->views.n_views++] = a;
        if (i == 0)
            rc->n_global = n;
    }
}

/* whether the space-separated list holds word */
static int has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(list, word); p; p = strstr(p + 1, word))
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

static void read_masks(ssl_cfg_t *root, ssl_run_cfg_t *rc)
{
    static const char *const keys[] = {"type", "ratio", "block", "min_block", "block_aspect",
                                       "n_targets", "target_scale", "target_aspect",
                                       "context_scale", "context_aspect", "min_keep",
                                       "ratio_var", "prob", NULL};
    static const char *const kinds[] = {"none",       "random", "simmim", "blockwise",
                                        "multiblock", "ibot",   NULL};
    ssl_cfg_t c = ssl_cfg_obj(root, "masks");
    ssl_cfg_keys(&c, keys);
    rc->mask_kind = ssl_cfg_enum(&c, "type", kinds, 0);
    /* the keys each kind's generator reads (src/data/mask.c), in kinds[] order: any other key is
       an error rather than a setting read and ignored */
    static const char *const used[] = {
        "",
        "ratio",
        "ratio block",
        "ratio min_block block_aspect",
        "n_targets target_scale target_aspect context_scale context_aspect min_keep",
        "ratio ratio_var prob min_block block_aspect"};
    for (int i = 1; keys[i] && ssl_cfg_status(&c) == SSL_OK; i++)
        if (ssl_cfg_has(&c, keys[i]) && !has_word(used[rc->mask_kind], keys[i]))
            ssl_cfg_fail(&c, keys[i], "is not used by masks.type \"%s\" (%s%s)",
                         kinds[rc->mask_kind],
                         rc->mask_kind ? "its keys: " : "it has no keys: set masks.type",
                         used[rc->mask_kind]);
    ssl_mask_opts_t *m = &rc->mask;
    ssl_mask_opts_default(m, rc->mask_kind, 0, 0);
    /* only the kind's keys are read: a read records the default into the resolved config, and a
       resumed run must not find another kind's keys there */
    const char *u = used[rc->mask_kind];
    if (has_word(u, "ratio"))
        m->ratio = ssl_cfg_float(&c, "ratio", m->ratio, 0, 0.99);
    if (has_word(u, "block"))
        m->block = ssl_cfg_int(&c, "block", m->block, 1, 64);
    if (has_word(u, "min_block")) /* ibot: 0 auto */
        m->min_block = ssl_cfg_i64(&c, "min_block", m->min_block, 0, 1 << 20);
    if (has_word(u, "block_aspect"))
        ssl_cfg_range(&c, "block_aspect", m->block_aspect, m->block_aspect[0],
                      m->block_aspect[1], 1e-2, 1e2);
    if (has_word(u, "n_targets")) {
        m->n_targets = ssl_cfg_int(&c, "n_targets", m->n_targets, 0, SSL_MASK_MAX_TARGETS);
        ssl_cfg_range(&c, "target_scale", m->target_scale, m->target_scale[0],
                      m->target_scale[1], 1e-3, 1);
        ssl_cfg_range(&c, "target_aspect", m->target_aspect, m->target_aspect[0],
                      m->target_aspect[1], 1e-2, 1e2);
        ssl_cfg_range(&c, "context_scale", m->context_scale, m->context_scale[0],
                      m->context_scale[1], 1e-3, 1);
        ssl_cfg_range(&c, "context_aspect", m->context_aspect, m->context_aspect[0],
                      m->context_aspect[1], 1e-2, 1e2);
        m->min_keep = ssl_cfg_i64(&c, "min_keep", m->min_keep, 0, 1 << 20);
    }
    if (has_word(u, "ratio_var")) {
        m->ratio_var = ssl_cfg_float(&c, "ratio_var", m->ratio_var, 0, 0.99);
        m->prob = ssl_cfg_float_ex(&c, "prob", m->prob, 0, 1, SSL_CFG_LO_OPEN);
    }
}

/* train.precision "auto": bf16 where it can run (docs/precision.md), else fp32; the reason is
 * kept for the log, and the resolved name replaces "auto" in a filled document, so the run's
 * config.json and checkpoints (and so a resumed run) keep the precision the run trained in. */
static void resolve_auto_precision(ssl_cfg_t *c, ssl_run_cfg_t *rc)
{
    int bf16 = ssl_precision_supported(SSL_PRECISION_BF16) == SSL_OK;
    rc->precision = bf16 ? SSL_PRECISION_BF16 : SSL_PRECISION_FP32;
    snprintf(rc->precision_auto, sizeof rc->precision_auto, "%s",
             bf16 ? "this build and CPU run bf16" : ssl_last_error());
    if (!bf16)
        ssl_clear_error();
    if ((c->flags & SSL_CFG_FILL) && c->obj) {
        cJSON *v = cJSON_CreateString(ssl_precision_name(rc->precision));
        if (!v || !cJSON_ReplaceItemInObject(c->obj, "precision", v)) {
            cJSON_Delete(v);
            ssl_cfg_fail(c, "precision", "out of memory resolving \"auto\"");
        }
    }
}

static void read_train(ssl_cfg_t *root, ssl_run_cfg_t *rc)
{
    static const char *const keys[] = {"epochs", "batch_size", "seed", "threads", "log_every",
                                       "max_steps", "on_nonfinite", "precision", "sync_bn",
                                       "check_sync", NULL};
    static const char *const nf[] = {"stop", "skip", NULL};
    /* ssl_precision_t order, then "auto" */
    static const char *const precisions[] = {"fp32", "bf16", "auto", NULL};
    ssl_cfg_t c = ssl_cfg_obj(root, "train");
    ssl_cfg_keys(&c, keys);
    rc->epochs = ssl_cfg_int(&c, "epochs", 1, 1, 100000);
    rc->batch_size = ssl_cfg_i64(&c, "batch_size", 256, 2, 1 << 20);
    rc->seed = (uint64_t)ssl_cfg_i64(&c, "seed", 0, 0, (int64_t)1 << 52);
    rc->threads = ssl_cfg_int(&c, "threads", 0, 0, 1024);
    rc->log_every = ssl_cfg_int(&c, "log_every", 20, 1, 1 << 30);
    rc->max_steps = ssl_cfg_i64(&c, "max_steps", 0, 0, (int64_t)1 << 40);
    rc->skip_nonfinite = ssl_cfg_enum(&c, "on_nonfinite", nf, 0);
    int precision = ssl_cfg_enum(&c, "precision", precisions, 0);
    rc->precision = precision == 1 ? SSL_PRECISION_BF16 : SSL_PRECISION_FP32;
    rc->precision_auto[0] = '\0';
    if (precision == 2 && ssl_cfg_status(&c) == SSL_OK)
        resolve_auto_precision(&c, rc);
    /* data-parallel runs (several ranks; no effect on one process) */
    rc->sync_bn = ssl_cfg_bool(&c, "sync_bn", 1);
    rc->check_sync = ssl_cfg_bool(&c, "check_sync", 0);
    /* refused where it cannot run, naming the key (docs/precision.md) */
    if (ssl_cfg_status(&c) == SSL_OK && ssl_precision_supported(rc->precision) != SSL_OK)
        ssl_cfg_fail(&c, "precision", "\"%s\" cannot run here: %s; use \"fp32\"",
                     ssl_precision_name(rc->precision), ssl_last_error());
}

static void read_eval(ssl_cfg_t *root, ssl_run_cfg_t *rc)
{
    static const char *const keys[] = {"knn_every",      "knn_k",   "knn_t", "knn_train_limit",
                                       "knn_test_limit", "encoder", "blocks", "samples",
                                       NULL};
    static const char *const encoders[] = {"online", "target", NULL};
    ssl_cfg_t c = ssl_cfg_obj(root, "eval");
    ssl_cfg_keys(&c, keys);
    rc->eval_target = ssl_cfg_enum(&c, "encoder", encoders, 0);
    rc->eval_blocks = ssl_cfg_int(&c, "blocks", 1, 1, 64);
    rc->knn_every = ssl_cfg_int(&c, "knn_every", 1, 0, 100000);
    rc->knn_k = ssl_cfg_int(&c, "knn_k", 200, 1, 100000);
    rc->knn_t = ssl_cfg_float(&c, "knn_t", 0.07, 1e-4, 100);
    rc->knn_train_limit = ssl_cfg_i64(&c, "knn_train_limit", 10000, 0, (int64_t)1 << 40);
    rc->knn_test_limit = ssl_cfg_i64(&c, "knn_test_limit", 10000, 0, (int64_t)1 << 40);
    rc->samples = ssl_cfg_int(&c, "samples", 64, 0, 1024);
}

static void read_checkpoint(ssl_cfg_t *root, ssl_run_cfg_t *rc)
{
    static const char *const keys[] = {"every", "every_steps", "keep_last", "save_init", NULL};
    ssl_cfg_t c = ssl_cfg_obj(root, "checkpoint");
    ssl_cfg_keys(&c, keys);
    rc->ckpt_every = ssl_cfg_int(&c, "every", 1, 0, 100000);
    rc->keep_last = ssl_cfg_int(&c, "keep_last", 2, 0, 100000);
    rc->ckpt_every_steps = ssl_cfg_i64(&c, "every_steps", 0, 0, (int64_t)1 << 40);
    rc->save_init = ssl_cfg_bool(&c, "save_init", 0);
}

static void read_target(ssl_cfg_t *root, ssl_run_cfg_t *rc)
{
    static const char *const keys[] = {"type", "momentum", "momentum_end", "schedule", NULL};
    static const char *const kinds[] = {"none", "stop_grad", "ema", NULL};
    /* as ssl_ema_cfg_t reads them (docs/optim.md): DINO/BYOL cosine, I-JEPA linear */
    static const char *const scheds[] = {"cosine", "linear", "constant", NULL};
    static const int sched_kind[] = {SSL_SCHED_COSINE, SSL_SCHED_LINEAR, SSL_SCHED_CONSTANT};
    ssl_cfg_t c = ssl_cfg_obj(root, "target");
    ssl_cfg_keys(&c, keys);
    rc->target = ssl_cfg_enum(&c, "type", kinds, 0);
    rc->ema_start = ssl_cfg_double(&c, "momentum", 0.99, 0, 1);
    rc->ema_schedule = sched_kind[ssl_cfg_enum(&c, "schedule", scheds, 0)];
    if (rc->ema_schedule == SSL_SCHED_CONSTANT && ssl_cfg_has(&c, "momentum_end"))
        ssl_cfg_fail(&c, "momentum_end", "has no effect with schedule 'constant'");
    rc->ema_end = rc->ema_schedule == SSL_SCHED_CONSTANT
                      ? rc->ema_start
                      : ssl_cfg_double(&c, "momentum_end", 1.0, 0, 1);
}

int ssl__run_cfg_read(ssl_cfg_t *root, ssl_run_cfg_t *rc)
{
    memset(rc, 0, sizeof *rc);
    read_str(root, "name", "run", rc->name, sizeof rc->name, 0);
    read_data(root, rc);
    read_views(root, rc);
    read_masks(root, rc);
    read_train(root, rc);
    read_eval(root, rc);
    read_checkpoint(root, rc);
    read_target(root, rc);
    if (ssl_cfg_status(root))
        return ssl_cfg_status(root);
    ssl_view_aug_eval(&rc->eval_view, rc->views.view[0].out_h);
    memcpy(rc->eval_view.mean, rc->views.view[0].mean, sizeof rc->eval_view.mean);
    memcpy(rc->eval_view.std, rc->views.view[0].std, sizeof rc->eval_view.std);
    rc->eval_view.normalize = rc->views.view[0].normalize;
    for (const char *p = rc->name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return ssl_cfg_fail(root, "name", "'%s' may only use letters, digits, '_', '-', '.'",
                                rc->name);
    return SSL_OK;
}

cJSON *ssl__run_cfg_from_checkpoint(const ssl_st_t *f, const char *path)
{
    const char *text = ssl_st_meta(f, "config");
    if (!text) {
        ssl_set_error(SSL_ERR_FORMAT,
                      "%s: no metadata key 'config' (not an sslc training checkpoint)", path);
        return NULL;
    }
    cJSON *doc = ssl_json_parse(text, strlen(text), "");
    if (!doc && ssl_last_status() == SSL_ERR_FORMAT) {
        /* what is wrong, without the line:column inside the metadata string */
        const char *msg = ssl_last_error(), *pos = strstr(msg, "): ");
        char why[512];
        snprintf(why, sizeof why, "%s", pos ? pos + 3 : msg + strspn(msg, ": "));
        ssl_set_error(SSL_ERR_FORMAT, "%s: metadata key 'config' is not a JSON config (%s)", path,
                      why);
    }
    return doc;
}

void ssl__run_cfg_method_env(const ssl_run_cfg_t *rc, ssl_method_env_t *env)
{
    memset(env, 0, sizeof *env);
    env->target = rc->target;
    env->eval_target = rc->eval_target;
    env->eval_blocks = rc->eval_blocks;
    env->n_views = rc->views.n_views;
    env->n_global = rc->n_global;
    env->view_size = rc->views.view[0].out_h;
    env->view_normalize = rc->views.view[0].normalize;
    env->mask_kind = rc->mask_kind;
    env->mask = rc->mask;
    env->dataset = rc->dataset;
    env->batch_size = rc->batch_size;
}
