/* safetensors writer: tensors in insertion order, "__metadata__" first, header padded with
 * spaces to a multiple of 8, written atomically (io_util.c). */
#include "ssl/io.h"

#include "io_internal.h"

#include <stdlib.h>
#include <string.h>

#define EXACT_INT_MAX 9007199254740992.0 /* 2^53: sizes a JSON reader holds exactly */

typedef struct wentry {
    char *name;
    int dtype, ndim;
    int64_t *shape;
    const void *data;
    uint64_t nbytes;
} wentry_t;

struct ssl_st_writer {
    wentry_t *e;
    int n, cap;
    char **mk, **mv;
    int n_meta, cap_meta;
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

ssl_st_writer_t *ssl_st_writer_create(void)
{
    ssl_st_writer_t *w = calloc(1, sizeof *w);
    if (!w)
        ssl_set_error(SSL_ERR_NOMEM, "ssl_st_writer_create: out of memory");
    return w;
}

void ssl_st_writer_free(ssl_st_writer_t *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].shape);
    }
    for (int i = 0; i < w->n_meta; i++) {
        free(w->mk[i]);
        free(w->mv[i]);
    }
    free(w->e);
    free(w->mk);
    free(w->mv);
    free(w);
}

static int check_utf8(const char *s, const char *what)
{
    size_t bad;
    if (!ssl__utf8_valid(s, strlen(s), &bad))
        return ssl_set_error(SSL_ERR_INVALID,
                             "safetensors writer: %s is not valid UTF-8 (byte "
                             "%zu)",
                             what, bad);
    return SSL_OK;
}

int ssl_st_writer_add_raw(ssl_st_writer_t *w, const char *name, int dtype, int ndim,
                          const int64_t *shape, const void *data)
{
    if (!w || !name)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_st_writer_add: NULL writer or name");
    if (check_utf8(name, "a tensor name"))
        return SSL_ERR_INVALID;
    if (!strcmp(name, "__metadata__"))
        return ssl_set_error(SSL_ERR_INVALID, "ssl_st_writer_add: '__metadata__' is reserved");
    if (dtype < 0 || dtype >= SSL_DTYPE_COUNT)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_st_writer_add '%s': unknown dtype %d", name,
                             dtype);
    if (ndim < 0 || ndim > 64 || (ndim > 0 && !shape))
        return ssl_set_error(SSL_ERR_INVALID, "ssl_st_writer_add '%s': bad rank %d", name, ndim);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->e[i].name, name))
            return ssl_set_error(SSL_ERR_INVALID, "ssl_st_writer_add: duplicate tensor name '%s'",
                                 name);
    uint64_t numel = 1, nbytes;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (double)shape[i] > EXACT_INT_MAX ||
            ssl__mul_overflows(numel, (uint64_t)shape[i], &numel))
            return ssl_set_error(SSL_ERR_INVALID,
                                 "ssl_st_writer_add '%s': bad size %lld in "
                                 "dimension %d",
                                 name, (long long)shape[i], i);
    }
    if (ssl__mul_overflows(numel, ssl_dtype_size(dtype), &nbytes) || (double)nbytes > EXACT_INT_MAX)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_st_writer_add '%s': too large", name);
    if (nbytes && !data)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_st_writer_add '%s': NULL data", name);
    if (w->n == w->cap) {
        int c = w->cap ? w->cap * 2 : 16;
        wentry_t *e = realloc(w->e, (size_t)c * sizeof *e);
        if (!e)
            return ssl_set_error(SSL_ERR_NOMEM, "ssl_st_writer_add '%s': out of memory", name);
        w->e = e;
        w->cap = c;
    }
    wentry_t *e = &w->e[w->n];
    e->name = dup_str(name);
    e->shape = malloc(((size_t)ndim + 1) * sizeof *e->shape);
    if (!e->name || !e->shape) {
        free(e->name);
        free(e->shape);
        return ssl_set_error(SSL_ERR_NOMEM, "ssl_st_writer_add '%s': out of memory", name);
    }
    if (ndim)
        memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
    e->dtype = dtype;
    e->ndim = ndim;
    e->data = data;
    e->nbytes = nbytes;
    w->n++;
    return SSL_OK;
}

int ssl_st_writer_add(ssl_st_writer_t *w, const char *name, int ndim, const int64_t *shape,
                      const float *data)
{
    return ssl_st_writer_add_raw(w, name, SSL_DTYPE_F32, ndim, shape, data);
}

int ssl_st_writer_add_params(ssl_st_writer_t *w, const ssl_params_t *p, const char *prefix)
{
    if (!w || !p)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_st_writer_add_params: NULL writer or store");
    if (!prefix)
        prefix = "";
    size_t plen = strlen(prefix);
    for (int i = 0; i < ssl_params_count(p); i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        size_t n = plen + strlen(in->name) + 1;
        char *full = malloc(n);
        if (!full)
            return ssl_set_error(SSL_ERR_NOMEM, "ssl_st_writer_add_params: out of memory");
        snprintf(full, n, "%s%s", prefix, in->name);
        int rc = ssl_st_writer_add(w, full, in->t->ndim, in->t->shape, in->t->data);
        free(full);
        if (rc)
            return rc;
    }
    return SSL_OK;
}

int ssl_st_writer_meta(ssl_st_writer_t *w, const char *key, const char *value)
{
    if (!w || !key || !value)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_st_writer_meta: NULL argument");
    if (check_utf8(key, "a metadata key") || check_utf8(value, "a metadata value"))
        return SSL_ERR_INVALID;
    char *v = dup_str(value);
    if (!v)
        return ssl_set_error(SSL_ERR_NOMEM, "ssl_st_writer_meta '%s': out of memory", key);
    for (int i = 0; i < w->n_meta; i++)
        if (!strcmp(w->mk[i], key)) {
            free(w->mv[i]);
            w->mv[i] = v;
            return SSL_OK;
        }
    if (w->n_meta == w->cap_meta) {
        int c = w->cap_meta ? w->cap_meta * 2 : 8;
        char **mk = realloc(w->mk, (size_t)c * sizeof *mk);
        if (mk)
            w->mk = mk;
        char **mv = mk ? realloc(w->mv, (size_t)c * sizeof *mv) : NULL;
        if (mv)
            w->mv = mv;
        if (!mk || !mv) {
            free(v);
            return ssl_set_error(SSL_ERR_NOMEM, "ssl_st_writer_meta '%s': out of memory", key);
        }
        w->cap_meta = c;
    }
    char *k = dup_str(key);
    if (!k) {
        free(v);
        return ssl_set_error(SSL_ERR_NOMEM, "ssl_st_writer_meta '%s': out of memory", key);
    }
    w->mk[w->n_meta] = k;
    w->mv[w->n_meta] = v;
    w->n_meta++;
    return SSL_OK;
}

typedef struct emit_ctx {
    const ssl_st_writer_t *w;
    const ssl__sb_t *hdr;
} emit_ctx_t;

/* Host-order elements to little-endian bytes (a plain copy on little-endian hosts). */
static void write_le(FILE *f, const void *data, uint64_t nbytes, size_t es)
{
    if (ssl__host_le() || es == 1) {
        fwrite(data, 1, (size_t)nbytes, f);
        return;
    }
    unsigned char buf[4096];
    const unsigned char *p = data;
    for (uint64_t done = 0; done < nbytes;) {
        size_t k = nbytes - done < sizeof buf ? (size_t)(nbytes - done) : sizeof buf;
        for (size_t j = 0; j < k; j += es)
            for (size_t b = 0; b < es; b++)
                buf[j + b] = p[done + j + es - 1 - b];
        fwrite(buf, 1, k, f);
        done += k;
    }
}

static int emit_st(FILE *f, void *user)
{
    const emit_ctx_t *c = user;
    unsigned char len8[8];
    ssl__store_le(len8, c->hdr->len, 8);
    fwrite(len8, 1, 8, f);
    fwrite(c->hdr->buf, 1, c->hdr->len, f);
    for (int i = 0; i < c->w->n; i++) {
        const wentry_t *e = &c->w->e[i];
        if (e->nbytes)
            write_le(f, e->data, e->nbytes, ssl_dtype_size(e->dtype));
    }
    return SSL_OK;
}

int ssl_st_writer_save(ssl_st_writer_t *w, const char *path)
{
    if (!w || !path)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_st_writer_save: NULL writer or path");
    ssl__sb_t h = {0};
    ssl__sb_puts(&h, "{");
    if (w->n_meta) {
        ssl__sb_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i)
                ssl__sb_puts(&h, ",");
            ssl__sb_json_string(&h, w->mk[i]);
            ssl__sb_puts(&h, ":");
            ssl__sb_json_string(&h, w->mv[i]);
        }
        ssl__sb_puts(&h, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const wentry_t *e = &w->e[i];
        if (i || w->n_meta)
            ssl__sb_puts(&h, ",");
        ssl__sb_json_string(&h, e->name);
        ssl__sb_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", ssl_dtype_name(e->dtype));
        for (int d = 0; d < e->ndim; d++)
            ssl__sb_printf(&h, "%s%lld", d ? "," : "", (long long)e->shape[d]);
        ssl__sb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                       (unsigned long long)(off + e->nbytes));
        off += e->nbytes;
    }
    ssl__sb_puts(&h, "}");
    while (h.len % 8) /* 8 + N stays a multiple of 8: aligned data */
        ssl__sb_puts(&h, " ");
    if (h.oom) {
        ssl__sb_free(&h);
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory building the header", path);
    }
    if (h.len > SSL_ST_MAX_HEADER) {
        size_t len = h.len;
        ssl__sb_free(&h);
        return ssl_set_error(SSL_ERR_INVALID,
                             "%s: the header would be %zu bytes, above the "
                             "%u-byte limit",
                             path, len, SSL_ST_MAX_HEADER);
    }
    emit_ctx_t c = {w, &h};
    int rc = ssl__write_atomic(path, emit_st, &c);
    ssl__sb_free(&h);
    return rc;
}

int ssl_st_save(const char *path, const ssl_st_entry_t *tensors, int n, const ssl_st_kv_t *meta,
                int n_meta)
{
    ssl_st_writer_t *w = ssl_st_writer_create();
    if (!w)
        return SSL_ERR_NOMEM;
    int rc = SSL_OK;
    for (int i = 0; i < n && !rc; i++)
        rc = ssl_st_writer_add(w, tensors[i].name, tensors[i].ndim, tensors[i].shape,
                               tensors[i].data);
    for (int i = 0; i < n_meta && !rc; i++)
        rc = ssl_st_writer_meta(w, meta[i].key, meta[i].value);
    if (!rc)
        rc = ssl_st_writer_save(w, path);
    ssl_st_writer_free(w);
    return rc;
}

int ssl_st_save_params(const char *path, const ssl_params_t *p, const char *prefix,
                       const ssl_st_kv_t *meta, int n_meta)
{
    ssl_st_writer_t *w = ssl_st_writer_create();
    if (!w)
        return SSL_ERR_NOMEM;
    int rc = ssl_st_writer_add_params(w, p, prefix);
    for (int i = 0; i < n_meta && !rc; i++)
        rc = ssl_st_writer_meta(w, meta[i].key, meta[i].value);
    if (!rc)
        rc = ssl_st_writer_save(w, path);
    ssl_st_writer_free(w);
    return rc;
}
