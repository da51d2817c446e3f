/* io helpers: string buffer, UTF-8 checks, whole-file reads and atomic writes. */
#define _POSIX_C_SOURCE 200809L

#include "io_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- string buffer */

static int sb_reserve(ssl__sb_t *sb, size_t extra)
{
    if (sb->oom)
        return 0;
    if (extra > SIZE_MAX / 2 - sb->len) {
        sb->oom = 1;
        return 0;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return 1;
    size_t c = sb->cap ? sb->cap : 64;
    while (c < need)
        c *= 2;
    char *b = realloc(sb->buf, c);
    if (!b) {
        sb->oom = 1;
        return 0;
    }
    sb->buf = b;
    sb->cap = c;
    return 1;
}

void ssl__sb_putn(ssl__sb_t *sb, const char *s, size_t n)
{
    if (!sb_reserve(sb, n))
        return;
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void ssl__sb_puts(ssl__sb_t *sb, const char *s)
{
    ssl__sb_putn(sb, s, strlen(s));
}

void ssl__sb_printf(ssl__sb_t *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb_reserve(sb, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void ssl__sb_json_string(ssl__sb_t *sb, const char *s)
{
    ssl__sb_putn(sb, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            ssl__sb_putn(sb, "\\\"", 2);
            break;
        case '\\':
            ssl__sb_putn(sb, "\\\\", 2);
            break;
        case '\n':
            ssl__sb_putn(sb, "\\n", 2);
            break;
        case '\r':
            ssl__sb_putn(sb, "\\r", 2);
            break;
        case '\t':
            ssl__sb_putn(sb, "\\t", 2);
            break;
        case '\b':
            ssl__sb_putn(sb, "\\b", 2);
            break;
        case '\f':
            ssl__sb_putn(sb, "\\f", 2);
            break;
        default:
            if (*p < 0x20)
                ssl__sb_printf(sb, "\\u%04x", *p);
            else
                ssl__sb_putn(sb, (const char *)p, 1);
        }
    }
    ssl__sb_putn(sb, "\"", 1);
}

void ssl__sb_truncate(ssl__sb_t *sb, size_t len)
{
    if (sb->buf && len <= sb->len) {
        sb->len = len;
        sb->buf[len] = '\0';
    }
}

void ssl__sb_free(ssl__sb_t *sb)
{
    free(sb->buf);
    *sb = (ssl__sb_t){0};
}

/* ---------------------------------------------------------------- UTF-8 */

int ssl__utf8_seq(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    int len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < (size_t)len || s[1] < lo || s[1] > hi)
        return 0;
    for (int i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

int ssl__utf8_valid(const char *s, size_t n, size_t *bad_at)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        int k = ssl__utf8_seq(u + i, n - i);
        if (!k) {
            if (bad_at)
                *bad_at = i;
            return 0;
        }
        i += (size_t)k;
    }
    return 1;
}

const char *ssl__shape_text(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (len < n)
        snprintf(buf + len, n - len, ")");
    return buf;
}

/* ---------------------------------------------------------------- reading */

int ssl__read_file(const char *path, size_t max_bytes, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ssl_set_error(SSL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ssl_set_error(SSL_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ssl_set_error(SSL_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)max_bytes) {
        close(fd);
        return ssl_set_error(SSL_ERR_IO, "%s: file is %lld bytes, above the %zu-byte limit", path,
                             (long long)st.st_size, max_bytes);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return ssl_set_error(SSL_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n + 1);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = errno;
            free(buf);
            close(fd);
            if (r == 0)
                return ssl_set_error(SSL_ERR_IO, "%s: file shrank while reading (%zu of %zu bytes)",
                                     path, got, n);
            return ssl_set_error(SSL_ERR_IO, "%s: read failed at byte %zu: %s", path, got,
                                 strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return SSL_OK;
}

/* ---------------------------------------------------------------- atomic writes */

static _Thread_local int tl_fail_stage;
static atomic_uint g_tmp_counter;

void ssl__io_fail_next(int stage)
{
    tl_fail_stage = stage;
}

/* Best effort: make the rename durable. Some file systems refuse fsync on a directory. */
static void fsync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) {
        dir = malloc(2);
        if (dir)
            strcpy(dir, ".");
    } else {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        dir = malloc(n + 1);
        if (dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
        }
    }
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int ssl__write_atomic(const char *path, ssl__emit_fn emit, void *user)
{
    int fail = tl_fail_stage;
    tl_fail_stage = SSL__FAIL_NONE;
    if (!path || !*path)
        return ssl_set_error(SSL_ERR_INVALID, "atomic write: empty path");
    size_t plen = strlen(path);
    size_t tlen = plen + 48;
    char *tmp = malloc(tlen);
    if (!tmp)
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", path);
    int fd = -1;
    for (int attempt = 0; attempt < 64 && fd < 0; attempt++) {
        snprintf(tmp, tlen, "%s.tmp-%ld-%u", path, (long)getpid(),
                 atomic_fetch_add(&g_tmp_counter, 1u));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return ssl_set_error(SSL_ERR_IO, "%s: cannot create a temporary file next to it: %s", path,
                             strerror(e));
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        free(tmp);
        return ssl_set_error(SSL_ERR_IO, "%s: fdopen failed: %s", path, strerror(e));
    }
    int rc = emit(f, user);
    if (rc == SSL_OK) {
        if (fail == SSL__FAIL_WRITE) {
            rc = ssl_set_error(SSL_ERR_IO, "%s: writing '%s' failed: %s (simulated)", path, tmp,
                               strerror(ENOSPC));
        } else if (ferror(f) || fflush(f) != 0) {
            rc = ssl_set_error(SSL_ERR_IO, "%s: writing '%s' failed: %s", path, tmp,
                               strerror(errno));
        }
    }
    if (rc == SSL_OK) {
        if (fail == SSL__FAIL_FSYNC)
            rc = ssl_set_error(SSL_ERR_IO, "%s: fsync of '%s' failed: %s (simulated)", path, tmp,
                               strerror(EIO));
        else if (fsync(fileno(f)) != 0)
            rc = ssl_set_error(SSL_ERR_IO, "%s: fsync of '%s' failed: %s", path, tmp,
                               strerror(errno));
    }
    if (fclose(f) != 0 && rc == SSL_OK)
        rc = ssl_set_error(SSL_ERR_IO, "%s: closing '%s' failed: %s", path, tmp, strerror(errno));
    if (rc == SSL_OK) {
        if (fail == SSL__FAIL_RENAME)
            rc = ssl_set_error(SSL_ERR_IO, "%s: renaming '%s' over it failed: %s (simulated)", path,
                               tmp, strerror(EXDEV));
        else if (rename(tmp, path) != 0)
            rc = ssl_set_error(SSL_ERR_IO, "%s: renaming '%s' over it failed: %s", path, tmp,
                               strerror(errno));
    }
    if (rc != SSL_OK)
        unlink(tmp);
    else
        fsync_parent_dir(path);
    free(tmp);
    return rc;
}
