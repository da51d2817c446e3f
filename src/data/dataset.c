/* Dataset memory, read options, file reading, gzip and the bad-file report. */
#define _POSIX_C_SOURCE 200809L
#include "data_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

void ssl_read_opts_default(ssl_read_opts_t *o)
{
    if (SSL__IS_NULL(o, __func__))
        return;
    memset(o, 0, sizeof *o);
    o->image_size = 96;
    o->channels = 3;
    o->strict = 0;
    o->report_limit = 5;
    o->max_file_bytes = (int64_t)64 << 20;
    o->max_pixels = 40000000;
    o->max_decoded_bytes = (int64_t)4 << 30;
    o->limit = 0;
    o->root = NULL;
}

ssl_read_opts_t ssl__read_opts(const ssl_read_opts_t *o)
{
    ssl_read_opts_t r;
    ssl_read_opts_default(&r);
    if (o)
        r = *o;
    return r;
}

char *ssl__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *ssl__path_join(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *p = malloc(na + nb + 2);
    if (!p)
        return NULL;
    memcpy(p, a, na);
    size_t k = na;
    if (na > 0 && a[na - 1] != '/')
        p[k++] = '/';
    memcpy(p + k, b, nb + 1);
    return p;
}

void ssl__free_strings(char **v, int64_t n)
{
    if (!v)
        return;
    for (int64_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---------------------------------------------------------------- datasets */

ssl_dataset_t *ssl__dataset_alloc(int64_t n, int64_t c, int64_t h, int64_t w, bool zero)
{
    if (n < 0 || c <= 0 || h <= 0 || w <= 0 || c > 4 || h > (1 << 16) || w > (1 << 16)) {
        ssl_set_error(SSL_ERR_INVALID, "dataset shape (%lld, %lld, %lld, %lld) is invalid",
                      (long long)n, (long long)c, (long long)h, (long long)w);
        return NULL;
    }
    size_t per = (size_t)(c * h * w);
    if (n > 0 && (size_t)n > SIZE_MAX / 2 / per) {
        ssl_set_error(SSL_ERR_NOMEM, "dataset of %lld images of %zu bytes is too large",
                      (long long)n, per);
        return NULL;
    }
    ssl_dataset_t *ds = calloc(1, sizeof *ds);
    if (!ds)
        goto oom;
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    size_t bytes = per * (size_t)n;
    ds->images = zero ? calloc(bytes ? bytes : 1, 1) : malloc(bytes ? bytes : 1);
    ds->labels = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    if (!ds->images || !ds->labels)
        goto oom;
    for (int64_t i = 0; i < n; i++)
        ds->labels[i] = -1;
    return ds;
oom:
    ssl_dataset_free(ds);
    ssl_set_error(SSL_ERR_NOMEM, "out of memory for a dataset of %lld images of %zu bytes",
                  (long long)n, per);
    return NULL;
}

ssl_dataset_t *ssl_dataset_new(int64_t n, int64_t c, int64_t h, int64_t w)
{
    return ssl__dataset_alloc(n, c, h, w, true);
}

ssl_dataset_t *ssl_dataset_synthetic(int64_t n, int64_t c, int64_t h, int64_t w, int n_classes,
                                     uint64_t seed)
{
    if (n_classes < 1 || n_classes > 100000) {
        ssl_set_error(SSL_ERR_INVALID, "synthetic dataset: n_classes %d is outside [1, 100000]",
                      n_classes);
        return NULL;
    }
    ssl_dataset_t *ds = ssl__dataset_alloc(n, c, h, w, false);
    if (!ds)
        return NULL;
    ds->class_names = calloc((size_t)n_classes, sizeof(char *));
    if (!ds->class_names) {
        ssl_dataset_free(ds);
        ssl_set_error(SSL_ERR_NOMEM, "synthetic dataset: out of memory");
        return NULL;
    }
    ds->n_classes = n_classes;
    for (int k = 0; k < n_classes; k++) {
        char name[32];
        snprintf(name, sizeof name, "class%d", k);
        ds->class_names[k] = ssl__strdup(name);
        if (!ds->class_names[k]) {
            ssl_dataset_free(ds);
            ssl_set_error(SSL_ERR_NOMEM, "synthetic dataset: out of memory");
            return NULL;
        }
    }
    size_t bytes = (size_t)(n * c * h * w);
    for (size_t i = 0; i < bytes; i += 4) {
        uint32_t r = ssl_rng_u32(seed, 0x5e7d47a, i / 4);
        for (size_t j = 0; j < 4 && i + j < bytes; j++)
            ds->images[i + j] = (uint8_t)(r >> (8 * j));
    }
    for (int64_t i = 0; i < n; i++)
        ds->labels[i] = (int32_t)(i % n_classes);
    return ds;
}

void ssl__dataset_truncate(ssl_dataset_t *ds, int64_t n)
{
    if (n >= ds->n)
        return;
    if (ds->captions)
        for (int64_t i = n; i < ds->n; i++) {
            free(ds->captions[i]);
            ds->captions[i] = NULL;
        }
    if (ds->paths)
        for (int64_t i = n; i < ds->n; i++) {
            free(ds->paths[i]);
            ds->paths[i] = NULL;
        }
    size_t per = (size_t)(ds->c * ds->h * ds->w);
    if (n > 0) { /* shrinking realloc: keep the old block if it fails */
        uint8_t *im = realloc(ds->images, per * (size_t)n);
        if (im)
            ds->images = im;
    }
    ds->n = n;
}

ssl_dataset_t *ssl_dataset_split_tail(ssl_dataset_t *ds, int64_t n_tail)
{
    if (!ds || n_tail < 1 || n_tail >= ds->n) {
        ssl_set_error(SSL_ERR_INVALID,
                      "dataset split: %lld of %lld samples cannot be split off "
                      "(at least 1 must go and 1 stay)",
                      (long long)n_tail, (long long)(ds ? ds->n : 0));
        return NULL;
    }
    int64_t keep = ds->n - n_tail;
    ssl_dataset_t *t = ssl__dataset_alloc(n_tail, ds->c, ds->h, ds->w, false);
    if (!t)
        return NULL;
    size_t per = (size_t)(ds->c * ds->h * ds->w);
    memcpy(t->images, ds->images + per * (size_t)keep, per * (size_t)n_tail);
    memcpy(t->labels, ds->labels + keep, sizeof(int32_t) * (size_t)n_tail);
    t->n_classes = ds->n_classes;
    int oom = 0;
    if (ds->class_names) {
        oom |= !(t->class_names = calloc((size_t)ds->n_classes, sizeof(char *)));
        for (int k = 0; !oom && k < ds->n_classes; k++)
            oom |= !(t->class_names[k] = ssl__strdup(ds->class_names[k]));
    }
    /* the strings of the tail move to the new dataset */
    char **lists[2][2] = {{ds->captions, NULL}, {ds->paths, NULL}};
    for (int l = 0; l < 2 && !oom; l++) {
        if (!lists[l][0])
            continue;
        oom |= !(lists[l][1] = calloc((size_t)n_tail, sizeof(char *)));
        for (int64_t i = 0; !oom && i < n_tail; i++) {
            lists[l][1][i] = lists[l][0][keep + i];
            lists[l][0][keep + i] = NULL;
        }
    }
    t->captions = lists[0][1];
    t->paths = lists[1][1];
    if (oom) {
        ssl_dataset_free(t);
        ssl_set_error(SSL_ERR_NOMEM, "dataset split: out of memory");
        return NULL;
    }
    ssl__dataset_truncate(ds, keep);
    return t;
}

void ssl_dataset_free(ssl_dataset_t *ds)
{
    if (!ds)
        return;
    free(ds->images);
    free(ds->labels);
    ssl__free_strings(ds->class_names, ds->n_classes);
    ssl__free_strings(ds->captions, ds->n);
    ssl__free_strings(ds->paths, ds->n);
    free(ds);
}

/* ---------------------------------------------------------------- files */

int ssl__data_read_file(const char *path, int64_t max_bytes, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ssl_set_error(SSL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return ssl_set_error(SSL_ERR_IO, "%s: not a regular file", path);
    }
    if (max_bytes > 0 && (int64_t)st.st_size > max_bytes) {
        fclose(f);
        return ssl_set_error(SSL_ERR_INVALID, "%s: file of %lld bytes is larger than the limit "
                             "of %lld bytes", path, (long long)st.st_size, (long long)max_bytes);
    }
    size_t cap = (size_t)st.st_size;
    uint8_t *b = malloc(cap + 1);
    if (!b) {
        fclose(f);
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory for %zu bytes", path, cap);
    }
    size_t n = fread(b, 1, cap, f);
    int err = ferror(f);
    fclose(f);
    if (err || n != cap) {
        free(b);
        return ssl_set_error(SSL_ERR_IO, "%s: read %zu of %zu bytes", path, n, cap);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return SSL_OK;
}

bool ssl__is_gzip(const uint8_t *buf, size_t len)
{
    return len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
}

int ssl__gunzip(const uint8_t *in, size_t len, const char *name, size_t max_out, uint8_t **out,
                size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK) /* 32: detect gzip or zlib header */
        return ssl_set_error(SSL_ERR_NOMEM, "%s: cannot initialise zlib", name);
    size_t cap = len * 4 + 1024;
    if (cap > max_out)
        cap = max_out;
    if (cap < 64)
        cap = 64;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        inflateEnd(&zs);
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", name);
    }
    size_t done = 0;
    int status = SSL_OK;
    /* zlib counts in uInt: feed and drain in chunks so sizes past 4 GiB work too. */
    const size_t chunk = (size_t)1 << 30;
    size_t in_pos = 0;
    for (;;) {
        if (zs.avail_in == 0 && in_pos < len) {
            size_t k = len - in_pos < chunk ? len - in_pos : chunk;
            zs.next_in = (Bytef *)(uintptr_t)(in + in_pos);
            zs.avail_in = (uInt)k;
            in_pos += k;
        }
        if (done == cap) {
            if (cap >= max_out) {
                status = ssl_set_error(SSL_ERR_FORMAT, "%s: decompressed data exceeds the limit "
                                       "of %zu bytes (compressed offset %zu)", name, max_out,
                                       in_pos - zs.avail_in);
                break;
            }
            size_t ncap = cap * 2 < max_out && cap * 2 > cap ? cap * 2 : max_out;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                status = ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory at %zu bytes", name, ncap);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t room = cap - done < chunk ? cap - done : chunk;
        zs.next_out = buf + done;
        zs.avail_out = (uInt)room;
        int rc = inflate(&zs, Z_NO_FLUSH);
        done += room - zs.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if (rc == Z_BUF_ERROR && zs.avail_in == 0 && in_pos >= len) {
            status = ssl_set_error(SSL_ERR_FORMAT, "%s: truncated gzip stream at compressed "
                                   "offset %zu", name, len);
            break;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            status = ssl_set_error(SSL_ERR_FORMAT, "%s: corrupt gzip data at compressed offset "
                                   "%zu: %s", name, in_pos - zs.avail_in,
                                   zs.msg ? zs.msg : "inflate error");
            break;
        }
    }
    inflateEnd(&zs);
    if (status != SSL_OK) {
        free(buf);
        return status;
    }
    *out = buf;
    *out_len = done;
    return SSL_OK;
}

/* ---------------------------------------------------------------- bad files */

int ssl__badlog_add(ssl__badlog_t *b, const char *path, const char *reason)
{
    b->n_bad++;
    if (b->opts->strict)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: %s (strict mode: bad files are fatal)", path,
                             reason);
    if (b->n_bad <= b->opts->report_limit)
        ssl_logf(SSL_LOG_WARN, "%s: skipped %s: %s", b->what, path, reason);
    return SSL_OK;
}

void ssl__badlog_finish(const ssl__badlog_t *b, int64_t n_total)
{
    if (b->n_bad == 0)
        return;
    ssl_logf(SSL_LOG_WARN, "%s: skipped %lld of %lld files%s", b->what, (long long)b->n_bad,
             (long long)n_total,
             b->n_bad > b->opts->report_limit ? " (only the first ones are listed)" : "");
}
