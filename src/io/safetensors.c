/* safetensors reader: header validation (file or memory), tensor lookup, float32 conversion.
 * The writer is in safetensors_write.c, the parameter-store loader in safetensors_params.c.
 * Format and checks: include/ssl/io.h and docs/io.md. */
#define _POSIX_C_SOURCE 200809L

#include "ssl/io.h"

#include "io_internal.h"
#include "json_strict.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ================================================================ dtypes */

static const struct {
    const char *name;
    size_t size;
} k_dtypes[SSL_DTYPE_COUNT] = {
    [SSL_DTYPE_F32] = {"F32", 4},         [SSL_DTYPE_F16] = {"F16", 2},
    [SSL_DTYPE_BF16] = {"BF16", 2},       [SSL_DTYPE_F64] = {"F64", 8},
    [SSL_DTYPE_I64] = {"I64", 8},         [SSL_DTYPE_I32] = {"I32", 4},
    [SSL_DTYPE_I16] = {"I16", 2},         [SSL_DTYPE_I8] = {"I8", 1},
    [SSL_DTYPE_U64] = {"U64", 8},         [SSL_DTYPE_U32] = {"U32", 4},
    [SSL_DTYPE_U16] = {"U16", 2},         [SSL_DTYPE_U8] = {"U8", 1},
    [SSL_DTYPE_BOOL] = {"BOOL", 1},       [SSL_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [SSL_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
};

/* Defined by the format, not handled here. */
static const char *const k_unsupported[] = {"F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "C64", NULL};

const char *ssl_dtype_name(int dtype)
{
    return SSL__BAD_RANGE(dtype, 0, SSL_DTYPE_COUNT - 1, __func__) ? "?" : k_dtypes[dtype].name;
}

size_t ssl_dtype_size(int dtype)
{
    return SSL__BAD_RANGE(dtype, 0, SSL_DTYPE_COUNT - 1, __func__) ? 0 : k_dtypes[dtype].size;
}

int ssl_dtype_from_name(const char *name)
{
    if (SSL__IS_NULL(name, __func__))
        return SSL_ERR_INVALID;
    for (int i = 0; i < SSL_DTYPE_COUNT; i++)
        if (!strcmp(name, k_dtypes[i].name))
            return i;
    return -1;
}

static float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    if (exp == 0) { /* zero or subnormal: mant * 2^-24, exact in float */
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31) /* infinity or NaN (payload kept) */
        return bits_to_float(sign | 0x7F800000u | (mant << 13));
    return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

static float e4m3_to_float(unsigned b)
{
    unsigned e = (b >> 3) & 0xFu, m = b & 7u;
    float v;
    if (e == 15 && m == 7)
        return NAN;
    if (e == 0)
        v = ldexpf((float)m, -9); /* subnormal: m/8 * 2^-6 */
    else
        v = ldexpf((float)(8 + m), (int)e - 10); /* (1 + m/8) * 2^(e-7) */
    return (b & 0x80u) ? -v : v;
}

/* One little-endian element of `dtype` at p as a float. */
static float elem_to_float(int dtype, const unsigned char *p)
{
    switch (dtype) {
    case SSL_DTYPE_F32:
        return bits_to_float((uint32_t)ssl__load_le(p, 4));
    case SSL_DTYPE_F16:
        return half_to_float((uint16_t)ssl__load_le(p, 2));
    case SSL_DTYPE_BF16:
        return bits_to_float((uint32_t)ssl__load_le(p, 2) << 16);
    case SSL_DTYPE_F64: {
        uint64_t u = ssl__load_le(p, 8);
        double d;
        memcpy(&d, &u, sizeof d);
        return (float)d;
    }
    case SSL_DTYPE_I64:
        return (float)(int64_t)ssl__load_le(p, 8);
    case SSL_DTYPE_I32:
        return (float)(int32_t)(uint32_t)ssl__load_le(p, 4);
    case SSL_DTYPE_I16:
        return (float)(int16_t)(uint16_t)ssl__load_le(p, 2);
    case SSL_DTYPE_I8:
        return (float)(int8_t)p[0];
    case SSL_DTYPE_U64:
        return (float)ssl__load_le(p, 8);
    case SSL_DTYPE_U32:
        return (float)(uint32_t)ssl__load_le(p, 4);
    case SSL_DTYPE_U16:
        return (float)(uint16_t)ssl__load_le(p, 2);
    case SSL_DTYPE_U8:
        return (float)p[0];
    case SSL_DTYPE_BOOL:
        return p[0] ? 1.0f : 0.0f;
    case SSL_DTYPE_F8_E4M3:
        return e4m3_to_float(p[0]);
    case SSL_DTYPE_F8_E5M2:
        return half_to_float((uint16_t)(p[0] << 8));
    default:
        return NAN;
    }
}

/* ================================================================ reader */

struct ssl_st_reader {
    char *name;
    int fd;                   /* -1 for a memory image */
    const unsigned char *mem; /* the whole image, borrowed */
    uint64_t data_start;      /* 8 + N */
    uint64_t data_len;
    cJSON *hdr; /* parsed header: tensor names and metadata strings point into it */
    int n;
    ssl_st_tensor_t *t; /* data order */
    int64_t *dims;      /* every tensor's shape, back to back */
    int *by_name;       /* tensor indices sorted by name */
    int n_meta;
    const char **meta_k, **meta_v;
};

static ssl_st_t *st_new(const char *name)
{
    ssl_st_t *f = calloc(1, sizeof *f);
    size_t len = strlen(name);
    char *nm = malloc(len + 1);
    if (!f || !nm) {
        free(f);
        free(nm);
        ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    memcpy(nm, name, len + 1);
    f->name = nm;
    f->fd = -1;
    return f;
}

void ssl_st_close(ssl_st_t *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    cJSON_Delete(f->hdr);
    free(f->t);
    free(f->dims);
    free(f->by_name);
    free(f->meta_k);
    free(f->meta_v);
    free(f->name);
    free(f);
}

#define EXACT_INT_MAX 9007199254740992.0 /* 2^53: integers cJSON holds exactly */

/* A non-negative integer JSON number (shape size or offset). */
static int get_uint(const cJSON *it, uint64_t *out)
{
    if (!cJSON_IsNumber(it))
        return 0;
    double v = it->valuedouble;
    if (!(v >= 0 && v <= EXACT_INT_MAX) || v != floor(v))
        return 0;
    *out = (uint64_t)v;
    return 1;
}

static int st_fmt_err(const ssl_st_t *f, const char *what, const cJSON *it)
{
    char got[40];
    if (cJSON_IsNumber(it))
        snprintf(got, sizeof got, "%.17g", it->valuedouble);
    else
        snprintf(got, sizeof got, "%s", ssl_json_type_name(it));
    return ssl_set_error(SSL_ERR_FORMAT, "%s: %s, got %s", f->name, what, got);
}

/* Parse one tensor entry into t (shape into dims). */
static int st_entry(ssl_st_t *f, const cJSON *e, ssl_st_tensor_t *t, int64_t *dims)
{
    const char *nm = e->string;
    char what[256];
    if (!cJSON_IsObject(e)) {
        snprintf(what, sizeof what, "tensor '%.128s': expected an object", nm);
        return st_fmt_err(f, what, e);
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!dt || !sh || !off)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: tensor '%.128s': missing \"%s\"", f->name, nm,
                             !dt   ? "dtype"
                             : !sh ? "shape"
                                   : "data_offsets");
    if (!cJSON_IsString(dt)) {
        snprintf(what, sizeof what, "tensor '%.128s': \"dtype\" must be a string", nm);
        return st_fmt_err(f, what, dt);
    }
    t->dtype = ssl_dtype_from_name(dt->valuestring);
    if (t->dtype < 0) {
        for (int i = 0; k_unsupported[i]; i++)
            if (!strcmp(dt->valuestring, k_unsupported[i]))
                return ssl_set_error(SSL_ERR_UNSUPPORTED,
                                     "%s: tensor '%.128s': dtype %s is not "
                                     "supported",
                                     f->name, nm, k_unsupported[i]);
        return ssl_set_error(SSL_ERR_FORMAT, "%s: tensor '%.128s': unknown dtype '%.32s'", f->name,
                             nm, dt->valuestring);
    }
    if (!cJSON_IsArray(sh)) {
        snprintf(what, sizeof what, "tensor '%.128s': \"shape\" must be an array", nm);
        return st_fmt_err(f, what, sh);
    }
    uint64_t numel = 1;
    int d = 0, overflow = 0;
    for (const cJSON *x = sh->child; x; x = x->next, d++) {
        uint64_t v;
        if (!get_uint(x, &v)) {
            snprintf(what, sizeof what, "tensor '%.128s': shape[%d] must be a non-negative integer",
                     nm, d);
            return st_fmt_err(f, what, x);
        }
        dims[d] = (int64_t)v;
        overflow |= ssl__mul_overflows(numel, v, &numel);
    }
    t->ndim = d;
    t->shape = dims;
    uint64_t nbytes;
    if (overflow || numel > (uint64_t)INT64_MAX ||
        ssl__mul_overflows(numel, k_dtypes[t->dtype].size, &nbytes))
        return ssl_set_error(SSL_ERR_FORMAT,
                             "%s: tensor '%.128s': the element count of its "
                             "shape overflows",
                             f->name, nm);
    t->numel = (int64_t)numel;
    t->nbytes = nbytes;
    uint64_t b, en;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !get_uint(off->child, &b) ||
        !get_uint(off->child->next, &en))
        return ssl_set_error(SSL_ERR_FORMAT,
                             "%s: tensor '%.128s': \"data_offsets\" must be "
                             "[begin, end] with non-negative integers",
                             f->name, nm);
    if (b > en)
        return ssl_set_error(SSL_ERR_FORMAT,
                             "%s: tensor '%.128s': data_offsets [%llu, %llu] "
                             "end before they begin",
                             f->name, nm, (unsigned long long)b, (unsigned long long)en);
    if (en - b != nbytes) {
        char s[128];
        return ssl_set_error(SSL_ERR_FORMAT,
                             "%s: tensor '%.128s': %s %s needs %llu bytes but "
                             "data_offsets [%llu, %llu] span %llu",
                             f->name, nm, k_dtypes[t->dtype].name,
                             ssl__shape_text(t->ndim, dims, s, sizeof s),
                             (unsigned long long)nbytes, (unsigned long long)b,
                             (unsigned long long)en, (unsigned long long)(en - b));
    }
    if (en > f->data_len)
        return ssl_set_error(SSL_ERR_FORMAT,
                             "%s: tensor '%.128s': data_offsets [%llu, %llu] "
                             "end past the %llu-byte data buffer (file byte %llu of %llu: "
                             "truncated?)",
                             f->name, nm, (unsigned long long)b, (unsigned long long)en,
                             (unsigned long long)f->data_len,
                             (unsigned long long)(f->data_start + en),
                             (unsigned long long)(f->data_start + f->data_len));
    t->offset = b;
    t->name = nm;
    return SSL_OK;
}

static int cmp_offset(const void *a, const void *b)
{
    const ssl_st_tensor_t *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes)
        return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

static int cmp_name_idx(const void *a, const void *b, const ssl_st_tensor_t *t)
{
    return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}

/* qsort has no context argument: a small merge sort over indices instead of global state. */
static void sort_by_name(int *idx, int *tmp, int n, const ssl_st_tensor_t *t)
{
    if (n < 2)
        return;
    int h = n / 2;
    sort_by_name(idx, tmp, h, t);
    sort_by_name(idx + h, tmp, n - h, t);
    int i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = cmp_name_idx(&idx[i], &idx[j], t) <= 0 ? idx[i++] : idx[j++];
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, (size_t)n * sizeof *idx);
}

/* Parse and validate the header text hdr[0..hlen); f->data_start/data_len are set. */
static int st_validate(ssl_st_t *f, const char *hdr, size_t hlen)
{
    if (hlen == 0)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: the header is empty (length 0)", f->name);
    if (hdr[0] != '{')
        return ssl_set_error(SSL_ERR_FORMAT,
                             "%s: the header does not start with '{' (byte 8 is "
                             "0x%02X)",
                             f->name, (unsigned char)hdr[0]);
    size_t bad;
    if (!ssl__utf8_valid(hdr, hlen, &bad))
        return ssl_set_error(SSL_ERR_FORMAT, "%s: the header is not valid UTF-8 (file byte %zu)",
                             f->name, 8 + bad);
    size_t llen = strlen(f->name) + 10;
    char *label = malloc(llen);
    if (!label)
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", f->name);
    snprintf(label, llen, "%s: header", f->name);
    f->hdr = ssl_json_parse_at(hdr, hlen, label, 8);
    free(label);
    if (!f->hdr)
        return ssl_last_status();
    if (!cJSON_IsObject(f->hdr))
        return ssl_set_error(SSL_ERR_FORMAT, "%s: the header is not a JSON object", f->name);

    int n = 0, n_dims = 0, n_meta = 0;
    const cJSON *meta = NULL;
    for (const cJSON *e = f->hdr->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            meta = e;
            continue;
        }
        n++;
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        if (cJSON_IsArray(sh))
            n_dims += cJSON_GetArraySize(sh);
    }
    if (meta) {
        if (!cJSON_IsObject(meta))
            return st_fmt_err(f, "\"__metadata__\" must be an object of strings", meta);
        for (const cJSON *m = meta->child; m; m = m->next, n_meta++)
            if (!cJSON_IsString(m)) {
                char what[200];
                snprintf(what, sizeof what, "__metadata__ value for key '%.128s' must be a string",
                         m->string);
                return st_fmt_err(f, what, m);
            }
    }
    f->t = calloc((size_t)n + 1, sizeof *f->t);
    f->dims = malloc(((size_t)n_dims + 1) * sizeof *f->dims);
    f->by_name = malloc(((size_t)n + 1) * sizeof *f->by_name);
    f->meta_k = malloc(((size_t)n_meta + 1) * sizeof *f->meta_k);
    f->meta_v = malloc(((size_t)n_meta + 1) * sizeof *f->meta_v);
    if (!f->t || !f->dims || !f->by_name || !f->meta_k || !f->meta_v)
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory for %d tensors", f->name, n);
    if (meta)
        for (const cJSON *m = meta->child; m; m = m->next, f->n_meta++) {
            f->meta_k[f->n_meta] = m->string;
            f->meta_v[f->n_meta] = m->valuestring;
        }
    int64_t *dims = f->dims;
    for (const cJSON *e = f->hdr->child; e; e = e->next) {
        if (e == meta)
            continue;
        int rc = st_entry(f, e, &f->t[f->n], dims);
        if (rc)
            return rc;
        dims += f->t[f->n].ndim;
        f->n++;
    }
    /* The tensors must tile the data buffer: sorted by offset, each starts where the previous
     * ended, the first at 0, the last at the end. */
    qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_offset);
    uint64_t pos = 0;
    for (int i = 0; i < f->n; i++) {
        const ssl_st_tensor_t *t = &f->t[i];
        if (t->offset > pos) {
            if (i == 0)
                return ssl_set_error(SSL_ERR_FORMAT,
                                     "%s: tensor '%.128s' is the first in the "
                                     "data buffer but starts at data byte %llu, not 0 (a hole)",
                                     f->name, t->name, (unsigned long long)t->offset);
            return ssl_set_error(SSL_ERR_FORMAT,
                                 "%s: tensor '%.128s' starts at data byte %llu "
                                 "but tensor '%.128s' ends at %llu: a %llu-byte hole",
                                 f->name, t->name, (unsigned long long)t->offset, f->t[i - 1].name,
                                 (unsigned long long)pos, (unsigned long long)(t->offset - pos));
        }
        if (t->offset < pos)
            return ssl_set_error(SSL_ERR_FORMAT,
                                 "%s: tensor '%.128s' [%llu, %llu) overlaps "
                                 "tensor '%.128s' [%llu, %llu)",
                                 f->name, t->name, (unsigned long long)t->offset,
                                 (unsigned long long)(t->offset + t->nbytes), f->t[i - 1].name,
                                 (unsigned long long)f->t[i - 1].offset, (unsigned long long)pos);
        pos = t->offset + t->nbytes;
    }
    if (pos != f->data_len)
        return ssl_set_error(SSL_ERR_FORMAT,
                             "%s: the tensors cover %llu data bytes but the file "
                             "has %llu after the header: %llu trailing bytes from file byte "
                             "%llu",
                             f->name, (unsigned long long)pos, (unsigned long long)f->data_len,
                             (unsigned long long)(f->data_len - pos),
                             (unsigned long long)(f->data_start + pos));
    int *tmp = malloc(((size_t)f->n + 1) * sizeof *tmp);
    if (!tmp)
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", f->name);
    for (int i = 0; i < f->n; i++)
        f->by_name[i] = i;
    sort_by_name(f->by_name, tmp, f->n, f->t);
    free(tmp);
    /* Names are unique: the JSON parser rejects duplicate keys. */
    return SSL_OK;
}

/* Checks the 8-byte length against the total size; returns N or sets an error. */
static int st_header_len(ssl_st_t *f, const unsigned char *len8, uint64_t total, uint64_t *n)
{
    if (total < 8) {
        if (total == 0)
            return ssl_set_error(SSL_ERR_FORMAT,
                                 "%s: the file is empty (0 bytes); a safetensors "
                                 "file starts with an 8-byte header length",
                                 f->name);
        return ssl_set_error(SSL_ERR_FORMAT,
                             "%s: the file is %llu bytes, too short for the "
                             "8-byte header length",
                             f->name, (unsigned long long)total);
    }
    uint64_t hl = ssl__load_le(len8, 8);
    if (hl > SSL_ST_MAX_HEADER)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: header length %llu exceeds the %u-byte limit",
                             f->name, (unsigned long long)hl, SSL_ST_MAX_HEADER);
    if (hl > total - 8)
        return ssl_set_error(SSL_ERR_FORMAT,
                             "%s: header length %llu runs past the end of the "
                             "file (%llu bytes)",
                             f->name, (unsigned long long)hl, (unsigned long long)total);
    *n = hl;
    f->data_start = 8 + hl;
    f->data_len = total - 8 - hl;
    return SSL_OK;
}

ssl_st_t *ssl_st_open_memory(const void *buf, size_t len, const char *name)
{
    ssl_st_t *f = st_new(name ? name : "<memory>");
    if (!f)
        return NULL;
    if (!buf && len) {
        ssl_set_error(SSL_ERR_INVALID, "%s: NULL buffer", f->name);
        ssl_st_close(f);
        return NULL;
    }
    f->mem = buf;
    uint64_t hl;
    if (st_header_len(f, f->mem, len, &hl) != SSL_OK ||
        st_validate(f, (const char *)f->mem + 8, (size_t)hl) != SSL_OK) {
        ssl_st_close(f);
        return NULL;
    }
    return f;
}

/* pread exactly n bytes at off; errors name the file and the offset. */
static int pread_all(const ssl_st_t *f, void *dst, size_t n, uint64_t off)
{
    unsigned char *p = dst;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(f->fd, p + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ssl_set_error(SSL_ERR_IO, "%s: read failed at file byte %llu: %s", f->name,
                                 (unsigned long long)(off + got), strerror(errno));
        if (r == 0)
            return ssl_set_error(SSL_ERR_IO,
                                 "%s: unexpected end of file at byte %llu (the file "
                                 "shrank?)",
                                 f->name, (unsigned long long)(off + got));
        got += (size_t)r;
    }
    return SSL_OK;
}

ssl_st_t *ssl_st_open(const char *path)
{
    if (!path) {
        ssl_set_error(SSL_ERR_INVALID, "ssl_st_open: NULL path");
        return NULL;
    }
    ssl_st_t *f = st_new(path);
    if (!f)
        return NULL;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        ssl_set_error(SSL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        ssl_st_close(f);
        return NULL;
    }
    struct stat st;
    if (fstat(f->fd, &st) != 0) {
        ssl_set_error(SSL_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        ssl_st_close(f);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        ssl_set_error(SSL_ERR_IO, "%s: not a regular file", path);
        ssl_st_close(f);
        return NULL;
    }
    uint64_t total = (uint64_t)st.st_size, hl = 0;
    unsigned char len8[8] = {0};
    char *hdr = NULL;
    int rc = total >= 8 ? pread_all(f, len8, 8, 0) : SSL_OK;
    if (rc == SSL_OK)
        rc = st_header_len(f, len8, total, &hl);
    if (rc == SSL_OK) {
        hdr = malloc((size_t)hl + 1);
        rc = hdr ? pread_all(f, hdr, (size_t)hl, 8)
                 : ssl_set_error(SSL_ERR_NOMEM, "%s: cannot allocate the %llu-byte header", path,
                                 (unsigned long long)hl);
    }
    if (rc == SSL_OK)
        rc = st_validate(f, hdr, (size_t)hl);
    free(hdr);
    if (rc != SSL_OK) {
        ssl_st_close(f);
        return NULL;
    }
    return f;
}

const char *ssl_st_path(const ssl_st_t *f)
{
    return SSL__IS_NULL(f, __func__) ? NULL : f->name;
}
int ssl_st_count(const ssl_st_t *f)
{
    return SSL__IS_NULL(f, __func__) ? SSL_ERR_INVALID : f->n;
}

const ssl_st_tensor_t *ssl_st_tensor(const ssl_st_t *f, int i)
{
    if (SSL__IS_NULL(f, __func__) || SSL__BAD_RANGE(i, 0, f->n - 1, __func__))
        return NULL;
    return &f->t[i];
}

int ssl_st_find(const ssl_st_t *f, const char *name)
{
    if (SSL__IS_NULL(f, __func__) || SSL__IS_NULL(name, __func__))
        return SSL_ERR_INVALID;
    int lo = 0, hi = f->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(f->t[f->by_name[mid]].name, name);
        if (c == 0)
            return f->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* Bytes [off, off + n) of the data buffer into dst. */
static int st_read_data(const ssl_st_t *f, uint64_t off, void *dst, size_t n)
{
    if (n == 0)
        return SSL_OK;
    if (f->mem) {
        memcpy(dst, f->mem + f->data_start + off, n);
        return SSL_OK;
    }
    return pread_all(f, dst, n, f->data_start + off);
}

static const ssl_st_tensor_t *st_check_index(const ssl_st_t *f, int i, const char *fn)
{
    if (!f) {
        ssl_set_error(SSL_ERR_INVALID, "%s: NULL file", fn);
        return NULL;
    }
    if (i < 0 || i >= f->n) {
        ssl_set_error(SSL_ERR_INVALID, "%s: %s: tensor index %d outside [0, %d)", f->name, fn, i,
                      f->n);
        return NULL;
    }
    return &f->t[i];
}

int ssl_st_read_raw(const ssl_st_t *f, int i, void *dst, size_t nbytes)
{
    const ssl_st_tensor_t *t = st_check_index(f, i, "ssl_st_read_raw");
    if (!t)
        return ssl_last_status();
    if (nbytes != t->nbytes)
        return ssl_set_error(SSL_ERR_INVALID, "%s: tensor '%s' has %llu bytes, not %zu", f->name,
                             t->name, (unsigned long long)t->nbytes, nbytes);
    return st_read_data(f, t->offset, dst, nbytes);
}

int ssl_st_read_f32(const ssl_st_t *f, int i, float *dst, size_t n)
{
    const ssl_st_tensor_t *t = st_check_index(f, i, "ssl_st_read_f32");
    if (!t)
        return ssl_last_status();
    if ((uint64_t)n != (uint64_t)t->numel)
        return ssl_set_error(SSL_ERR_INVALID, "%s: tensor '%s' has %lld elements, not %zu", f->name,
                             t->name, (long long)t->numel, n);
    if (t->dtype == SSL_DTYPE_F32 && ssl__host_le())
        return st_read_data(f, t->offset, dst, (size_t)t->nbytes);
    size_t es = k_dtypes[t->dtype].size;
    enum { CHUNK = 1 << 16 };
    unsigned char *buf = malloc(CHUNK);
    if (!buf)
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", f->name);
    size_t per = CHUNK / es;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < per ? n - done : per;
        int rc = st_read_data(f, t->offset + done * es, buf, k * es);
        if (rc) {
            free(buf);
            return rc;
        }
        for (size_t j = 0; j < k; j++)
            dst[done + j] = elem_to_float(t->dtype, buf + j * es);
        done += k;
    }
    free(buf);
    return SSL_OK;
}

const char *ssl_st_meta(const ssl_st_t *f, const char *key)
{
    if (SSL__IS_NULL(f, __func__) || SSL__IS_NULL(key, __func__))
        return NULL;
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_k[i], key))
            return f->meta_v[i];
    return NULL;
}

int ssl_st_meta_count(const ssl_st_t *f)
{
    return SSL__IS_NULL(f, __func__) ? SSL_ERR_INVALID : f->n_meta;
}

int ssl_st_meta_at(const ssl_st_t *f, int i, const char **key, const char **value)
{
    if (!f || i < 0 || i >= f->n_meta)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_st_meta_at: index %d out of range", i);
    if (key)
        *key = f->meta_k[i];
    if (value)
        *value = f->meta_v[i];
    return SSL_OK;
}
