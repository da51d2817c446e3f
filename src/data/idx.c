/* IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed.
 *
 * Layout: bytes 0-1 zero, byte 2 the element type, byte 3 the number of dims, then one
 * big-endian uint32 per dim, then the elements. Every check names the file and byte offset. */
#include "data_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int type_size(int type)
{
    switch (type) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    default: return 0;
    }
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int parse_plain(const uint8_t *b, size_t len, const char *name, ssl_idx_t *out)
{
    if (len < 4)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: %zu bytes is too short for an IDX header "
                             "(4 bytes of magic at offset 0)", name, len);
    if (b[0] != 0 || b[1] != 0)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: bad IDX magic %02x %02x %02x %02x at offset 0 "
                             "(expected 00 00 TYPE NDIM)", name, b[0], b[1], b[2], b[3]);
    int es = type_size(b[2]);
    if (!es)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: unknown IDX element type 0x%02x at offset 2",
                             name, b[2]);
    int ndim = b[3];
    if (ndim < 1 || ndim > 8)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: IDX rank %d at offset 3 is not in [1, 8]", name,
                             ndim);
    size_t hdr = 4 + 4 * (size_t)ndim;
    if (len < hdr)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: truncated IDX header: %d dims need %zu bytes, "
                             "file has %zu", name, ndim, hdr, len);
    out->type = b[2];
    out->ndim = ndim;
    out->elem_size = es;
    /* Element count in unsigned 128-bit-safe steps: stop as soon as it exceeds the file. */
    uint64_t count = 1;
    bool over = false;
    for (int d = 0; d < ndim; d++) {
        uint32_t v = be32(b + 4 + 4 * d);
        if (v > INT32_MAX)
            return ssl_set_error(SSL_ERR_FORMAT, "%s: IDX dim %d = %u at offset %d is too large",
                                 name, d, v, 4 + 4 * d);
        out->dims[d] = v;
        if (v != 0 && count > (uint64_t)len / v)
            over = true;
        else
            count *= v;
    }
    size_t avail = len - hdr;
    if (over || count * (uint64_t)es != avail) {
        char dims[128];
        size_t k = 0;
        for (int d = 0; d < ndim && k < sizeof dims; d++)
            k += (size_t)snprintf(dims + k, sizeof dims - k, d ? " x %lld" : "%lld",
                                  (long long)out->dims[d]);
        if (over || count * (uint64_t)es > avail)
            return ssl_set_error(SSL_ERR_FORMAT, "%s: IDX header claims %s elements of %d bytes "
                                 "from offset %zu but the file ends at offset %zu (truncated or "
                                 "bad dims)", name, dims, es, hdr, len);
        return ssl_set_error(SSL_ERR_FORMAT, "%s: IDX header claims %s elements of %d bytes from "
                             "offset %zu, ending at offset %llu, but the file has %zu bytes "
                             "(trailing data)", name, dims, es, hdr,
                             (unsigned long long)(hdr + count * (uint64_t)es), len);
    }
    out->count = (int64_t)count;
    out->data = malloc(avail ? avail : 1);
    if (!out->data)
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory for %zu bytes", name, avail);
    if (avail)
        memcpy(out->data, b + hdr, avail);
    return SSL_OK;
}

int ssl_idx_parse(const void *buf, size_t len, const char *name, int64_t max_decoded_bytes,
                  ssl_idx_t *out)
{
    if (SSL__IS_NULL(out, __func__))
        return SSL_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (!name)
        name = "<memory>";
    if (!buf && len)
        return ssl_set_error(SSL_ERR_INVALID, "%s: NULL buffer", name);
    const uint8_t *b = buf;
    if (ssl__is_gzip(b, len)) {
        size_t cap = max_decoded_bytes > 0 ? (size_t)max_decoded_bytes : (size_t)4 << 30;
        uint8_t *plain;
        size_t n;
        int rc = ssl__gunzip(b, len, name, cap, &plain, &n);
        if (rc != SSL_OK)
            return rc;
        rc = parse_plain(plain, n, name, out);
        free(plain);
        return rc;
    }
    return parse_plain(b, len, name, out);
}

void ssl_idx_free(ssl_idx_t *a)
{
    if (!a)
        return;
    free(a->data);
    a->data = NULL;
}

static int load_idx_file(const char *path, const ssl_read_opts_t *o, ssl_idx_t *out)
{
    uint8_t *buf;
    size_t len;
    /* The compressed file is at most as big as the decompressed cap. */
    int rc = ssl__data_read_file(path, o->max_decoded_bytes, &buf, &len);
    if (rc != SSL_OK)
        return rc;
    rc = ssl_idx_parse(buf, len, path, o->max_decoded_bytes, out);
    free(buf);
    return rc;
}

ssl_dataset_t *ssl_dataset_load_idx(const char *images_path, const char *labels_path,
                                    const ssl_read_opts_t *opts)
{
    ssl_read_opts_t o = ssl__read_opts(opts);
    if (!images_path) {
        ssl_set_error(SSL_ERR_INVALID, "ssl_dataset_load_idx: images_path is NULL");
        return NULL;
    }
    ssl_idx_t im = {0}, lb = {0};
    ssl_dataset_t *ds = NULL;
    if (load_idx_file(images_path, &o, &im) != SSL_OK)
        return NULL;
    if (im.type != 0x08 || (im.ndim != 3 && im.ndim != 4)) {
        ssl_set_error(SSL_ERR_FORMAT, "%s: expected unsigned byte images (type 0x08, 3 dims N H W "
                      "or 4 dims N C H W), found type 0x%02x with %d dims (offsets 2-3)",
                      images_path, im.type, im.ndim);
        goto done;
    }
    int64_t n = im.dims[0];
    int64_t c = im.ndim == 4 ? im.dims[1] : 1;
    int64_t h = im.dims[im.ndim - 2], w = im.dims[im.ndim - 1];
    if (c != 1 && c != 3) {
        ssl_set_error(SSL_ERR_FORMAT, "%s: %lld channels (offset 8); expected 1 or 3",
                      images_path, (long long)c);
        goto done;
    }
    if (labels_path) {
        if (load_idx_file(labels_path, &o, &lb) != SSL_OK)
            goto done;
        if (lb.type != 0x08 || lb.ndim != 1) {
            ssl_set_error(SSL_ERR_FORMAT, "%s: expected unsigned byte labels (type 0x08, 1 dim), "
                          "found type 0x%02x with %d dims (offsets 2-3)", labels_path, lb.type,
                          lb.ndim);
            goto done;
        }
        if (lb.dims[0] != n) {
            ssl_set_error(SSL_ERR_FORMAT, "%s: %lld labels (offset 4) for %lld images in %s",
                          labels_path, (long long)lb.dims[0], (long long)n, images_path);
            goto done;
        }
    }
    int64_t keep = o.limit > 0 && o.limit < n ? o.limit : n;
    if (h <= 0 || w <= 0) {
        ssl_set_error(SSL_ERR_FORMAT, "%s: image size %lld x %lld is empty", images_path,
                      (long long)h, (long long)w);
        goto done;
    }
    ds = ssl__dataset_alloc(keep, c, h, w, false);
    if (!ds)
        goto done;
    memcpy(ds->images, im.data, (size_t)(keep * c * h * w));
    if (labels_path) {
        int maxl = 0;
        for (int64_t i = 0; i < keep; i++) {
            ds->labels[i] = lb.data[i];
            if (lb.data[i] > maxl)
                maxl = lb.data[i];
        }
        ds->n_classes = keep ? maxl + 1 : 0;
    }
done:
    ssl_idx_free(&im);
    ssl_idx_free(&lb);
    return ds;
}

static const char *const fashion_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress",
                                              "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                                              "Ankle boot"};
static const char *const digit_names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

/* dir/PREFIX-KIND-ubyte, or the .gz beside it. */
static char *find_idx(const char *dir, const char *prefix, const char *kind)
{
    char name[128];
    snprintf(name, sizeof name, "%s-%s-ubyte", prefix, kind);
    char *p = ssl__path_join(dir, name);
    if (!p)
        return NULL;
    FILE *f = fopen(p, "rb");
    if (f) {
        fclose(f);
        return p;
    }
    free(p);
    snprintf(name, sizeof name, "%s-%s-ubyte.gz", prefix, kind);
    return ssl__path_join(dir, name);
}

static ssl_dataset_t *load_mnist_like(const char *dir, const char *split,
                                      const ssl_read_opts_t *opts, const char *const *names)
{
    if (!dir || !split || (strcmp(split, "train") != 0 && strcmp(split, "test") != 0)) {
        ssl_set_error(SSL_ERR_INVALID, "MNIST-style dataset: split \"%s\" must be \"train\" or "
                      "\"test\"", split ? split : "(null)");
        return NULL;
    }
    const char *prefix = strcmp(split, "train") == 0 ? "train" : "t10k";
    char *ip = find_idx(dir, prefix, "images-idx3");
    char *lp = find_idx(dir, prefix, "labels-idx1");
    ssl_dataset_t *ds = NULL;
    if (ip && lp)
        ds = ssl_dataset_load_idx(ip, lp, opts);
    else
        ssl_set_error(SSL_ERR_NOMEM, "out of memory");
    free(ip);
    free(lp);
    if (!ds)
        return NULL;
    if (ds->n_classes > 10) {
        ssl_set_error(SSL_ERR_FORMAT, "%s: labels reach %d, more than the 10 classes expected",
                      dir, ds->n_classes - 1);
        ssl_dataset_free(ds);
        return NULL;
    }
    ds->n_classes = 10;
    ds->class_names = calloc(10, sizeof(char *));
    if (!ds->class_names) {
        ssl_dataset_free(ds);
        ssl_set_error(SSL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < 10; i++)
        if (!(ds->class_names[i] = ssl__strdup(names[i]))) {
            ssl_dataset_free(ds);
            ssl_set_error(SSL_ERR_NOMEM, "out of memory");
            return NULL;
        }
    return ds;
}

ssl_dataset_t *ssl_dataset_load_fashion_mnist(const char *dir, const char *split,
                                              const ssl_read_opts_t *opts)
{
    return load_mnist_like(dir ? dir : SSL_FASHION_MNIST_DIR, split, opts, fashion_names);
}

ssl_dataset_t *ssl_dataset_load_mnist(const char *dir, const char *split,
                                      const ssl_read_opts_t *opts)
{
    return load_mnist_like(dir, split, opts, digit_names);
}
