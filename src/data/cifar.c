/* CIFAR-10/100 binary format: fixed-size records, label byte(s) then 3x32x32 RGB planes. There
 * is no magic number, so the checks are the record size and the label ranges. */
#include "data_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CIFAR_PIXELS 3072

static int64_t record_size(int n_classes) { return n_classes == 100 ? 3074 : 3073; }

/* Validate one buffer of records; returns the number of records or a negative status. */
static int64_t check_records(const uint8_t *b, size_t len, int n_classes, const char *name)
{
    int64_t rec = record_size(n_classes);
    if (len == 0)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: empty file (CIFAR-%d records are %lld bytes)",
                             name, n_classes, (long long)rec);
    if (len % (size_t)rec != 0)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: %zu bytes is not a whole number of CIFAR-%d "
                             "records of %lld bytes: the last record starting at offset %zu is "
                             "truncated", name, len, n_classes, (long long)rec,
                             len - len % (size_t)rec);
    int64_t n = (int64_t)(len / (size_t)rec);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *r = b + i * rec;
        if (n_classes == 100) {
            if (r[0] >= 20)
                return ssl_set_error(SSL_ERR_FORMAT, "%s: coarse label %d at offset %lld is not "
                                     "in [0, 20)", name, r[0], (long long)(i * rec));
            if (r[1] >= 100)
                return ssl_set_error(SSL_ERR_FORMAT, "%s: fine label %d at offset %lld is not in "
                                     "[0, 100)", name, r[1], (long long)(i * rec + 1));
        } else if (r[0] >= 10) {
            return ssl_set_error(SSL_ERR_FORMAT, "%s: label %d at offset %lld is not in [0, 10) "
                                 "(a CIFAR-100 file read as CIFAR-10?)", name, r[0],
                                 (long long)(i * rec));
        }
    }
    return n;
}

static void copy_records(ssl_dataset_t *ds, int64_t at, const uint8_t *b, int64_t n,
                         int n_classes)
{
    int64_t rec = record_size(n_classes);
    int lab = n_classes == 100 ? 1 : 0;
    for (int64_t i = 0; i < n && at + i < ds->n; i++) {
        const uint8_t *r = b + i * rec;
        ds->labels[at + i] = r[lab];
        memcpy(ds->images + (size_t)(at + i) * CIFAR_PIXELS, r + lab + 1, CIFAR_PIXELS);
    }
}

ssl_dataset_t *ssl_dataset_cifar_from_memory(const void *buf, size_t len, int n_classes,
                                             const char *name)
{
    if (!name)
        name = "<memory>";
    if (n_classes != 10 && n_classes != 100) {
        ssl_set_error(SSL_ERR_INVALID, "%s: CIFAR n_classes %d must be 10 or 100", name,
                      n_classes);
        return NULL;
    }
    if (!buf && len) {
        ssl_set_error(SSL_ERR_INVALID, "%s: NULL buffer", name);
        return NULL;
    }
    int64_t n = check_records(buf, len, n_classes, name);
    if (n < 0)
        return NULL;
    ssl_dataset_t *ds = ssl__dataset_alloc(n, 3, 32, 32, false);
    if (!ds)
        return NULL;
    copy_records(ds, 0, buf, n, n_classes);
    ds->n_classes = n_classes;
    return ds;
}

ssl_dataset_t *ssl_dataset_load_cifar(const char *const *files, int n_files, int n_classes,
                                      const ssl_read_opts_t *opts)
{
    ssl_read_opts_t o = ssl__read_opts(opts);
    if (n_classes != 10 && n_classes != 100) {
        ssl_set_error(SSL_ERR_INVALID, "CIFAR n_classes %d must be 10 or 100", n_classes);
        return NULL;
    }
    if (!files || n_files <= 0) {
        ssl_set_error(SSL_ERR_INVALID, "CIFAR: no files given");
        return NULL;
    }
    uint8_t **bufs = calloc((size_t)n_files, sizeof *bufs);
    int64_t *counts = calloc((size_t)n_files, sizeof *counts);
    ssl_dataset_t *ds = NULL;
    if (!bufs || !counts) {
        ssl_set_error(SSL_ERR_NOMEM, "out of memory");
        goto done;
    }
    int64_t total = 0;
    for (int f = 0; f < n_files; f++) {
        size_t len;
        if (!files[f]) {
            ssl_set_error(SSL_ERR_INVALID, "CIFAR: file %d of %d is NULL", f, n_files);
            goto done;
        }
        if (ssl__data_read_file(files[f], 0, &bufs[f], &len) != SSL_OK)
            goto done;
        counts[f] = check_records(bufs[f], len, n_classes, files[f]);
        if (counts[f] < 0)
            goto done;
        total += counts[f];
    }
    int64_t keep = o.limit > 0 && o.limit < total ? o.limit : total;
    ds = ssl__dataset_alloc(keep, 3, 32, 32, false);
    if (!ds)
        goto done;
    ds->n_classes = n_classes;
    int64_t at = 0;
    for (int f = 0; f < n_files && at < keep; f++) {
        copy_records(ds, at, bufs[f], counts[f], n_classes);
        at += counts[f];
    }
done:
    if (bufs)
        for (int f = 0; f < n_files; f++)
            free(bufs[f]);
    free(bufs);
    free(counts);
    return ds;
}

/* Class names: one per non-empty line of a text file; missing file -> NULL without error. */
static char **read_names(const char *path, int n)
{
    uint8_t *buf;
    size_t len;
    if (ssl__data_read_file(path, 1 << 20, &buf, &len) != SSL_OK) {
        ssl_clear_error();
        return NULL;
    }
    char **names = calloc((size_t)n, sizeof(char *));
    int k = 0;
    char *s = (char *)buf;
    while (names && *s && k < n) {
        char *e = s;
        while (*e && *e != '\n' && *e != '\r')
            e++;
        char save = *e;
        *e = 0;
        if (e > s)
            names[k++] = ssl__strdup(s);
        *e = save;
        s = *e ? e + 1 : e;
    }
    free(buf);
    if (names && k != n) {
        ssl__free_strings(names, n);
        return NULL;
    }
    return names;
}

ssl_dataset_t *ssl_dataset_load_cifar_dir(const char *dir, int n_classes, const char *split,
                                          const ssl_read_opts_t *opts)
{
    if (!dir || !split || (strcmp(split, "train") != 0 && strcmp(split, "test") != 0)) {
        ssl_set_error(SSL_ERR_INVALID, "CIFAR: split \"%s\" must be \"train\" or \"test\"",
                      split ? split : "(null)");
        return NULL;
    }
    bool train = strcmp(split, "train") == 0;
    char *paths[5] = {0};
    int n = 0;
    const char *meta;
    if (n_classes == 10) {
        meta = "batches.meta.txt";
        if (train) {
            for (int i = 0; i < 5; i++) {
                char name[32];
                snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
                paths[n++] = ssl__path_join(dir, name);
            }
        } else {
            paths[n++] = ssl__path_join(dir, "test_batch.bin");
        }
    } else {
        meta = "fine_label_names.txt";
        paths[n++] = ssl__path_join(dir, train ? "train.bin" : "test.bin");
    }
    ssl_dataset_t *ds = ssl_dataset_load_cifar((const char *const *)paths, n, n_classes, opts);
    for (int i = 0; i < n; i++)
        free(paths[i]);
    if (ds) {
        char *mp = ssl__path_join(dir, meta);
        if (mp)
            ds->class_names = read_names(mp, n_classes);
        free(mp);
    }
    return ds;
}
