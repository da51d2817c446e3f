/* NumPy .npy files (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 *   "\x93NUMPY", major, minor, header length (uint16 LE in 1.0; uint32 LE in 2.0 and 3.0),
 *   a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (n, d), } padded
 *   with spaces and ended by '\n' so the data starts at a multiple of 64 bytes, then the data.
 * The writer goes through the atomic file writer of this layer (io_util.c). */
#define _POSIX_C_SOURCE 200809L

#include "io_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ssl/io.h"

#define NPY_MAX_HEADER ((size_t)1 << 20)
#define NPY_CHUNK ((size_t)1 << 20)

static const char k_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* ---------------------------------------------------------------- dtypes */

/* The dtypes this file handles: numpy kind ('f', 'i', 'u', 'b') and item size. */
static const struct {
    int dtype;
    char kind;
    unsigned char size;
} k_types[] = {
    {SSL_DTYPE_F32, 'f', 4}, {SSL_DTYPE_F64, 'f', 8},  {SSL_DTYPE_I8, 'i', 1},
    {SSL_DTYPE_I16, 'i', 2}, {SSL_DTYPE_I32, 'i', 4},  {SSL_DTYPE_I64, 'i', 8},
    {SSL_DTYPE_U8, 'u', 1},  {SSL_DTYPE_U16, 'u', 2},  {SSL_DTYPE_U32, 'u', 4},
    {SSL_DTYPE_U64, 'u', 8}, {SSL_DTYPE_BOOL, 'b', 1},
};
#define N_TYPES ((int)(sizeof k_types / sizeof k_types[0]))

/* Kind and item size of a dtype; kind 0 (size 0) if unknown. */
static int dtype_kind(int dtype, size_t *size)
{
    for (int i = 0; i < N_TYPES; i++)
        if (k_types[i].dtype == dtype) {
            *size = k_types[i].size;
            return k_types[i].kind;
        }
    *size = 0;
    return 0;
}

static int dtype_from(int kind, size_t size)
{
    for (int i = 0; i < N_TYPES; i++)
        if (k_types[i].kind == kind && k_types[i].size == size)
            return k_types[i].dtype;
    return -1;
}

/* ---------------------------------------------------------------- writer */

typedef struct npy_out {
    int dtype;
    size_t item;
    int64_t numel;
    const void *data;
    char header[512];
    size_t header_len;
} npy_out_t;

static int npy_emit(FILE *f, void *user)
{
    npy_out_t *o = user;
    fwrite(o->header, 1, o->header_len, f);
    if (o->numel == 0)
        return SSL_OK;
    if (ssl__host_le() || o->item == 1) {
        fwrite(o->data, o->item, (size_t)o->numel, f);
        return SSL_OK;
    }
    unsigned char buf[4096];
    const unsigned char *src = o->data;
    size_t per = sizeof buf / o->item;
    for (int64_t i = 0; i < o->numel; i += (int64_t)per) {
        size_t cnt = (size_t)(o->numel - i) < per ? (size_t)(o->numel - i) : per;
        for (size_t k = 0; k < cnt; k++)
            for (size_t b = 0; b < o->item; b++) /* host big-endian: reverse each element */
                buf[k * o->item + b] = src[((size_t)i + k) * o->item + o->item - 1 - b];
        fwrite(buf, o->item, cnt, f);
    }
    return SSL_OK;
}

int ssl_npy_save(const char *path, int dtype, int ndim, const int64_t *shape, const void *data)
{
    size_t item;
    int kind = dtype_kind(dtype, &item);
    if (!path)
        return ssl_set_error(SSL_ERR_INVALID, "npy save: path is NULL");
    if (dtype != SSL_DTYPE_F32 && dtype != SSL_DTYPE_F64 && dtype != SSL_DTYPE_I32 &&
        dtype != SSL_DTYPE_I64 && dtype != SSL_DTYPE_U8)
        return ssl_set_error(SSL_ERR_UNSUPPORTED,
                             "npy save %s: dtype %s not supported (F32, F64, I32, I64, U8)", path,
                             ssl_dtype_name(dtype));
    if (ndim < 0 || ndim > SSL_NPY_MAX_DIMS || (ndim > 0 && !shape))
        return ssl_set_error(SSL_ERR_SHAPE, "npy save %s: %d dims (at most %d)", path, ndim,
                             SSL_NPY_MAX_DIMS);
    npy_out_t o = {dtype, item, 1, data, {0}, 0};
    char shp[8 * 24 + 8] = "(";
    size_t sl = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && o.numel > INT64_MAX / shape[i]))
            return ssl_set_error(SSL_ERR_SHAPE, "npy save %s: bad size %lld in dim %d", path,
                                 (long long)shape[i], i);
        o.numel *= shape[i];
        sl += (size_t)snprintf(shp + sl, sizeof shp - sl, "%s%lld", i ? ", " : "",
                               (long long)shape[i]);
    }
    snprintf(shp + sl, sizeof shp - sl, ndim == 1 ? ",)" : ")");
    if (o.numel > 0 && !data)
        return ssl_set_error(SSL_ERR_INVALID, "npy save %s: data is NULL", path);
    const char end = item == 1 ? '|' : '<';
    int hl = snprintf(o.header + 10, sizeof o.header - 10,
                      "{'descr': '%c%c%zu', 'fortran_order': False, 'shape': %s, }", end, kind,
                      item, shp);
    size_t total = 10 + (size_t)hl + 1; /* + the final '\n' */
    total = (total + 63) / 64 * 64;
    if (total > sizeof o.header)
        return ssl_set_error(SSL_ERR_SHAPE, "npy save %s: header too long", path);
    memset(o.header + 10 + hl, ' ', total - 10 - (size_t)hl - 1);
    o.header[total - 1] = '\n';
    memcpy(o.header, k_magic, 6);
    o.header[6] = 1; /* version 1.0 */
    o.header[7] = 0;
    ssl__store_le((unsigned char *)o.header + 8, total - 10, 2);
    o.header_len = total;
    return ssl__write_atomic(path, npy_emit, &o);
}

int ssl_npy_save_f32_2d(const char *path, int64_t n, int64_t d, const float *x)
{
    return ssl_npy_save(path, SSL_DTYPE_F32, 2, (const int64_t[]){n, d}, x);
}

int ssl_npy_save_labels_i32(const char *path, int64_t n, const int32_t *y)
{
    return ssl_npy_save(path, SSL_DTYPE_I32, 1, &n, y);
}

int ssl_npy_save_labels_i64(const char *path, int64_t n, const int64_t *y)
{
    return ssl_npy_save(path, SSL_DTYPE_I64, 1, &n, y);
}

/* ---------------------------------------------------------------- header parser */

typedef struct scan {
    const char *s;
    size_t n, i;
    const char *path;
} scan_t;

static void skip_ws(scan_t *sc)
{
    while (sc->i < sc->n && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t' || sc->s[sc->i] == '\n'))
        sc->i++;
}

static int bad(const scan_t *sc, const char *what)
{
    return ssl_set_error(SSL_ERR_FORMAT, "%s: npy header: %s at header byte %zu", sc->path, what,
                         sc->i);
}

static int expect(scan_t *sc, char c)
{
    skip_ws(sc);
    if (sc->i >= sc->n || sc->s[sc->i] != c) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", c);
        return bad(sc, msg);
    }
    sc->i++;
    return SSL_OK;
}

static int peek(scan_t *sc, char c)
{
    skip_ws(sc);
    return sc->i < sc->n && sc->s[sc->i] == c;
}

static int parse_string(scan_t *sc, char *out, size_t cap)
{
    skip_ws(sc);
    if (sc->i >= sc->n || (sc->s[sc->i] != '\'' && sc->s[sc->i] != '"'))
        return bad(sc, "expected a quoted string");
    char q = sc->s[sc->i++];
    size_t len = 0;
    while (sc->i < sc->n && sc->s[sc->i] != q) {
        if (sc->s[sc->i] == '\\' || len + 1 >= cap)
            return bad(sc, "unsupported string");
        out[len++] = sc->s[sc->i++];
    }
    if (sc->i >= sc->n)
        return bad(sc, "unterminated string");
    sc->i++;
    out[len] = '\0';
    return SSL_OK;
}

typedef struct npy_header {
    int dtype;
    int big;
    int fortran;
    int ndim;
    int64_t shape[SSL_NPY_MAX_DIMS];
} npy_header_t;

static int parse_descr(scan_t *sc, npy_header_t *h)
{
    char d[16];
    int st = parse_string(sc, d, sizeof d);
    if (st != SSL_OK)
        return st;
    char order = d[0];
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return ssl_set_error(SSL_ERR_UNSUPPORTED, "%s: npy dtype '%s' is not supported", sc->path,
                             d);
    char *end;
    errno = 0;
    long size = d[1] ? strtol(d + 2, &end, 10) : 0;
    int t = (d[1] && d[2] && !*end && errno == 0 && size > 0 && size <= 8)
                ? dtype_from(d[1], (size_t)size)
                : -1;
    if (t < 0)
        return ssl_set_error(
            SSL_ERR_UNSUPPORTED,
            "%s: npy dtype '%s' is not supported (bool, int/uint 1-8 bytes, float32, float64)",
            sc->path, d);
    h->dtype = t;
    h->big = order == '>' || (order == '=' && !ssl__host_le());
    return SSL_OK;
}

static int parse_shape(scan_t *sc, npy_header_t *h)
{
    int st = expect(sc, '(');
    if (st != SSL_OK)
        return st;
    h->ndim = 0;
    while (!peek(sc, ')')) {
        if (h->ndim == SSL_NPY_MAX_DIMS)
            return bad(sc, "too many dimensions");
        skip_ws(sc);
        int64_t v = 0;
        size_t start = sc->i;
        while (sc->i < sc->n && sc->s[sc->i] >= '0' && sc->s[sc->i] <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return bad(sc, "dimension too large");
            v = v * 10 + (sc->s[sc->i++] - '0');
        }
        if (sc->i == start)
            return bad(sc, "expected a dimension");
        h->shape[h->ndim++] = v;
        if (peek(sc, ','))
            sc->i++;
        else if (!peek(sc, ')'))
            return bad(sc, "expected ',' or ')' in the shape");
    }
    sc->i++;
    return SSL_OK;
}

static int parse_header(const char *s, size_t n, const char *path, npy_header_t *h)
{
    scan_t sc = {s, n, 0, path};
    int seen = 0, st = expect(&sc, '{');
    while (st == SSL_OK && !peek(&sc, '}')) {
        char key[32];
        if ((st = parse_string(&sc, key, sizeof key)) != SSL_OK || (st = expect(&sc, ':')))
            return st;
        if (!strcmp(key, "descr") && !(seen & 1)) {
            st = parse_descr(&sc, h);
            seen |= 1;
        } else if (!strcmp(key, "fortran_order") && !(seen & 2)) {
            skip_ws(&sc);
            if (sc.n - sc.i >= 4 && !memcmp(s + sc.i, "True", 4)) {
                h->fortran = 1;
                sc.i += 4;
            } else if (sc.n - sc.i >= 5 && !memcmp(s + sc.i, "False", 5)) {
                h->fortran = 0;
                sc.i += 5;
            } else {
                st = bad(&sc, "fortran_order must be True or False");
            }
            seen |= 2;
        } else if (!strcmp(key, "shape") && !(seen & 4)) {
            st = parse_shape(&sc, h);
            seen |= 4;
        } else {
            return ssl_set_error(SSL_ERR_FORMAT, "%s: npy header: unexpected or repeated key '%s'",
                                 path, key);
        }
        if (st == SSL_OK && peek(&sc, ','))
            sc.i++;
        else if (st == SSL_OK && !peek(&sc, '}'))
            st = bad(&sc, "expected ',' or '}'");
    }
    if (st != SSL_OK)
        return st;
    sc.i++;
    skip_ws(&sc);
    if (sc.i != n)
        return bad(&sc, "trailing characters after the dict");
    if (seen != 7)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: npy header lacks %s", path,
                             !(seen & 1)   ? "'descr'"
                             : !(seen & 2) ? "'fortran_order'"
                                           : "'shape'");
    if (h->fortran && h->ndim > 1)
        return ssl_set_error(
            SSL_ERR_UNSUPPORTED,
            "%s: Fortran-order arrays are not supported (save with np.ascontiguousarray)", path);
    return SSL_OK;
}

/* ---------------------------------------------------------------- reader */

/* Element p of size `size` as a double / int64 (sign- or zero-extended by kind). */
static inline uint64_t load_bits(const unsigned char *p, size_t size, int big)
{
    uint64_t v = 0;
    for (size_t b = 0; b < size; b++)
        v |= (uint64_t)p[big ? size - 1 - b : b] << (8 * b);
    return v;
}

static inline double elem_f64(const unsigned char *p, int kind, size_t size, int big)
{
    uint64_t v = load_bits(p, size, big);
    if (kind == 'f') {
        if (size == 4) {
            uint32_t u = (uint32_t)v;
            float f;
            memcpy(&f, &u, 4);
            return f;
        }
        double d;
        memcpy(&d, &v, 8);
        return d;
    }
    if (kind == 'i' && size < 8 && (v >> (8 * size - 1)) & 1)
        v |= ~(uint64_t)0 << (8 * size);
    if (kind == 'i')
        return (double)(int64_t)v;
    if (kind == 'b')
        return v != 0;
    return (double)v;
}

static int npy_load(const char *path, int want_int, ssl_npy_t *out)
{
    const char *fn = want_int ? "npy load (int32)" : "npy load (float32)";
    if (!path || !out)
        return ssl_set_error(SSL_ERR_INVALID, "%s: path or output is NULL", fn);
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return ssl_set_error(SSL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int st = SSL_OK;
    char *hdr = NULL;
    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, f);
    if (got < 10 || memcmp(pre, k_magic, 6)) {
        st = ssl_set_error(SSL_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
        goto done;
    }
    int major = pre[6], minor = pre[7];
    size_t hlen, pre_len = 10;
    if (major == 1 && minor == 0) {
        hlen = (size_t)ssl__load_le(pre + 8, 2);
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            st = ssl_set_error(SSL_ERR_FORMAT, "%s: truncated npy preamble", path);
            goto done;
        }
        hlen = (size_t)ssl__load_le(pre + 8, 4);
        pre_len = 12;
    } else {
        st = ssl_set_error(SSL_ERR_UNSUPPORTED, "%s: npy format version %d.%d is not supported",
                           path, major, minor);
        goto done;
    }
    if (hlen > NPY_MAX_HEADER) {
        st = ssl_set_error(SSL_ERR_FORMAT, "%s: npy header length %zu is over the %zu limit", path,
                           hlen, NPY_MAX_HEADER);
        goto done;
    }
    hdr = malloc(hlen + 1);
    if (!hdr) {
        st = ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (fread(hdr, 1, hlen, f) != hlen) {
        st = ssl_set_error(SSL_ERR_FORMAT, "%s: truncated npy header (%zu bytes announced)", path,
                           hlen);
        goto done;
    }
    npy_header_t h;
    memset(&h, 0, sizeof h);
    if ((st = parse_header(hdr, hlen, path, &h)) != SSL_OK)
        goto done;
    size_t item;
    int kind = dtype_kind(h.dtype, &item);
    if (want_int && kind == 'f') {
        st = ssl_set_error(SSL_ERR_UNSUPPORTED, "%s: dtype %s where integer labels are expected",
                           path, ssl_dtype_name(h.dtype));
        goto done;
    }
    uint64_t numel = 1, nbytes;
    for (int i = 0; i < h.ndim; i++)
        if (ssl__mul_overflows(numel, (uint64_t)h.shape[i], &numel)) {
            st = ssl_set_error(SSL_ERR_FORMAT, "%s: npy shape overflows", path);
            goto done;
        }
    if (ssl__mul_overflows(numel, item, &nbytes) || numel > (uint64_t)INT64_MAX / 8) {
        st = ssl_set_error(SSL_ERR_FORMAT, "%s: npy shape overflows", path);
        goto done;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || (uint64_t)sb.st_size != pre_len + hlen + nbytes) {
        st = ssl_set_error(SSL_ERR_FORMAT, "%s: file is %lld bytes; the header (%s %s) needs %llu",
                           path, (long long)sb.st_size, ssl_dtype_name(h.dtype),
                           ssl__shape_text(h.ndim, h.shape, (char[160]){0}, 160),
                           (unsigned long long)(pre_len + hlen + nbytes));
        goto done;
    }
    size_t osize = want_int ? sizeof(int32_t) : sizeof(float);
    out->data = malloc(numel ? (size_t)numel * osize : 1);
    if (!out->data) {
        st = ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory for %llu elements", path,
                           (unsigned long long)numel);
        goto done;
    }
    out->dtype = h.dtype;
    out->ndim = h.ndim;
    memcpy(out->shape, h.shape, sizeof h.shape);
    out->numel = (int64_t)numel;
    int native = ssl__host_le() != h.big || item == 1;
    if (native && ((!want_int && h.dtype == SSL_DTYPE_F32) ||
                   (want_int && h.dtype == SSL_DTYPE_I32))) { /* read straight into place */
        if (fread(out->data, item, (size_t)numel, f) != (size_t)numel)
            st = ssl_set_error(SSL_ERR_IO, "%s: read failed", path);
        goto done;
    }
    unsigned char *buf = malloc(NPY_CHUNK);
    if (!buf) {
        st = ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    size_t per = NPY_CHUNK / item;
    for (uint64_t i = 0; i < numel && st == SSL_OK; i += per) {
        size_t cnt = numel - i < per ? (size_t)(numel - i) : per;
        if (fread(buf, item, cnt, f) != cnt) {
            st = ssl_set_error(SSL_ERR_IO, "%s: read failed", path);
            break;
        }
        for (size_t k = 0; k < cnt; k++) {
            const unsigned char *p = buf + k * item;
            if (!want_int) {
                ((float *)out->data)[i + k] = (float)elem_f64(p, kind, item, h.big);
                continue;
            }
            uint64_t v = load_bits(p, item, h.big);
            if (kind == 'i' && item < 8 && (v >> (8 * item - 1)) & 1)
                v |= ~(uint64_t)0 << (8 * item);
            int ok = kind == 'i' ? ((int64_t)v >= INT32_MIN && (int64_t)v <= INT32_MAX)
                                 : v <= (uint64_t)INT32_MAX;
            if (!ok) {
                st = ssl_set_error(SSL_ERR_FORMAT, "%s: element %llu does not fit int32", path,
                                   (unsigned long long)(i + k));
                break;
            }
            ((int32_t *)out->data)[i + k] = kind == 'b' ? (v != 0) : (int32_t)(int64_t)v;
        }
    }
    free(buf);
done:
    free(hdr);
    fclose(f);
    if (st != SSL_OK)
        ssl_npy_free(out);
    return st;
}

int ssl_npy_load_f32(const char *path, ssl_npy_t *out)
{
    return npy_load(path, 0, out);
}

int ssl_npy_load_i32(const char *path, ssl_npy_t *out)
{
    return npy_load(path, 1, out);
}

void ssl_npy_free(ssl_npy_t *a)
{
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}
