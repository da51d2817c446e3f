/* The data of a run config: its dataset splits (data.dataset, root, split, val_size) and the
 * captions CLIP builds from class names. Below the trainer, checkpoint use and zero-shot: it
 * calls none of them. */
#define _POSIX_C_SOURCE 200809L
#include "run_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int dir_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The first `limit` samples of ds (0: all); ds is freed on error. */
static ssl_dataset_t *keep_first(ssl_dataset_t *ds, int64_t limit)
{
    if (ds && limit > 0 && limit < ds->n) {
        ssl_dataset_t *rest = ssl_dataset_split_tail(ds, ds->n - limit);
        if (!rest) {
            ssl_dataset_free(ds);
            return NULL;
        }
        ssl_dataset_free(rest);
    }
    return ds;
}

/* data.val_size: the training split without its last val_size images, or (split "val") those
 * images, as a validation split for choosing hyperparameters without the test set. */
static ssl_dataset_t *load_with_val(const ssl_run_cfg_t *rc, const char *split, int64_t limit)
{
    ssl_run_cfg_t full = *rc;
    full.val_size = 0;
    ssl_dataset_t *ds = ssl__load_split(&full, rc->split, 0);
    if (!ds)
        return NULL;
    if (ds->n <= rc->val_size) {
        ssl_set_error(SSL_ERR_CONFIG,
                      "data.val_size: %lld, but the '%s' split has %lld images "
                      "(some must stay for training)",
                      (long long)rc->val_size, rc->split, (long long)ds->n);
        ssl_dataset_free(ds);
        return NULL;
    }
    ssl_dataset_t *val = ssl_dataset_split_tail(ds, rc->val_size);
    if (!val) {
        ssl_dataset_free(ds);
        return NULL;
    }
    int want_val = !strcmp(split, SSL_VAL_SPLIT);
    ssl_dataset_free(want_val ? ds : val);
    return keep_first(want_val ? val : ds, limit);
}

/* A split other than the training one that the data does not have: an error, never the
 * training images again (kNN with the same images as bank and queries measures memory). */
static ssl_dataset_t *no_split(const char *split, const char *path)
{
    ssl_set_error(SSL_ERR_CONFIG,
                  "data.eval_split: the '%s' split would be %s, which does not exist; "
                  "evaluating on the training images instead would score memory, not the "
                  "representation: create it, or hold out training images with "
                  "data.val_size=N and data.eval_split=val (or turn the online kNN off with "
                  "eval.knn_every=0)",
                  split, path);
    return NULL;
}

ssl_dataset_t *ssl__load_split(const ssl_run_cfg_t *rc, const char *split, int64_t limit)
{
    if (rc->val_size > 0 && (!strcmp(split, rc->split) || !strcmp(split, SSL_VAL_SPLIT)))
        return load_with_val(rc, split, limit);
    ssl_read_opts_t o;
    ssl_read_opts_default(&o);
    o.limit = limit;
    o.strict = rc->strict_files;
    o.follow_links = rc->follow_links;
    o.image_size = rc->image_size;
    o.channels = rc->channels;
    const char *d = rc->dataset;
    if (!strcmp(d, "fashion_mnist"))
        return ssl_dataset_load_fashion_mnist(rc->root, split, &o);
    if (!strcmp(d, "mnist"))
        return ssl_dataset_load_mnist(rc->root, split, &o);
    if (!strcmp(d, "cifar10") || !strcmp(d, "cifar100"))
        return ssl_dataset_load_cifar_dir(rc->root, !strcmp(d, "cifar10") ? 10 : 100, split, &o);
    if (!strcmp(d, "synthetic")) /* random pixels: benchmarks and tests without files */
        return ssl_dataset_synthetic(limit > 0 ? limit : 1024, rc->channels, rc->image_size,
                                     rc->image_size, 10, strcmp(split, rc->split) ? 2 : 1);
    char path[1100];
    int train = !strcmp(split, rc->split);
    if (!strcmp(d, "folder")) {
        /* root/<split>; a root of class directories alone is the training split only */
        snprintf(path, sizeof path, "%s/%s", rc->root, split);
        if (dir_exists(path) || train)
            return ssl_dataset_load_image_folder(dir_exists(path) ? path : rc->root, &o);
        return no_split(split, path);
    }
    /* pairs: root is the list file of the training split, <stem>.<split><ext> another's */
    if (train)
        return ssl_dataset_load_pairs(rc->root, &o);
    const char *slash = strrchr(rc->root, '/'), *dot = strrchr(rc->root, '.');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - rc->root) : strlen(rc->root);
    snprintf(path, sizeof path, "%.*s.%s%s", (int)stem, rc->root, split, rc->root + stem);
    struct stat st;
    if (stat(path, &st) != 0)
        return no_split(split, path);
    return ssl_dataset_load_pairs(path, &o);
}

/* CLIP on a labelled dataset: captions from class names ("a photo of a sneaker"). */
int ssl__add_class_captions(ssl_dataset_t *ds)
{
    if (ds->captions || !ds->class_names)
        return ds->captions ? SSL_OK
                            : ssl_set_error(SSL_ERR_CONFIG, "data.captions: the dataset has no "
                                                            "class names to build captions from");
    ds->captions = calloc((size_t)ds->n, sizeof(char *));
    if (!ds->captions)
        return ssl_set_error(SSL_ERR_NOMEM, "captions: out of memory");
    for (int64_t i = 0; i < ds->n; i++) {
        const char *name = ds->labels[i] >= 0 ? ds->class_names[ds->labels[i]] : "thing";
        ds->captions[i] = ssl__fill_prompt(SSL_ZEROSHOT_PROMPT, name);
        if (!ds->captions[i])
            return ssl_set_error(SSL_ERR_NOMEM, "captions: out of memory");
    }
    return SSL_OK;
}

char *ssl__fill_prompt(const char *tmpl, const char *name)
{
    const char *at = strstr(tmpl, "{}");
    size_t len = strlen(tmpl) - 2 + strlen(name) + 1;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%.*s%s%s", (int)(at - tmpl), tmpl, name, at + 2);
    return s;
}
