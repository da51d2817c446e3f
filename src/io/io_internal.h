/* Internal to the io layer: a growable string buffer, UTF-8 checking, whole-file reading and
 * the atomic file writer shared by configs and checkpoints. */
#ifndef SSL_IO_INTERNAL_H
#define SSL_IO_INTERNAL_H

#include "core/check.h"
#include "ssl/core.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- string buffer */

/* Appends never fail loudly: on out-of-memory `oom` is set and later appends are dropped, so a
 * builder checks once at the end. buf is always NUL-terminated once anything was appended. */
typedef struct ssl__sb {
    char *buf;
    size_t len, cap;
    int oom;
} ssl__sb_t;

void ssl__sb_putn(ssl__sb_t *sb, const char *s, size_t n);
void ssl__sb_puts(ssl__sb_t *sb, const char *s);
void ssl__sb_printf(ssl__sb_t *sb, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* s as a quoted JSON string (escapes '"', '\\' and control characters; bytes >= 0x80 as is). */
void ssl__sb_json_string(ssl__sb_t *sb, const char *s);
/* Drop everything after the first `len` bytes (len <= sb->len). */
void ssl__sb_truncate(ssl__sb_t *sb, size_t len);
void ssl__sb_free(ssl__sb_t *sb);

/* ---------------------------------------------------------------- UTF-8 */

/* Length (1..4) of the well-formed UTF-8 sequence at s[0..n), or 0 if it is not one (overlong
 * forms, surrogates and code points above U+10FFFF are not well formed). */
int ssl__utf8_seq(const unsigned char *s, size_t n);
/* 1 if s[0..n) is well-formed UTF-8; otherwise 0 and *bad_at (if given) = offset of the first
 * bad byte. */
int ssl__utf8_valid(const char *s, size_t n, size_t *bad_at);

/* ---------------------------------------------------------------- bytes and sizes */

static inline int ssl__host_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* n-byte little-endian unsigned integer at p (n <= 8), independent of the host's order. */
static inline uint64_t ssl__load_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static inline void ssl__store_le(unsigned char *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* *out = a * b; returns 1 (and leaves *out) if the product overflows. */
static inline int ssl__mul_overflows(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return 1;
    *out = a * b;
    return 0;
}

/* "(2, 3)" or "()" into buf; returns buf. */
const char *ssl__shape_text(int ndim, const int64_t *shape, char *buf, size_t n);

/* ---------------------------------------------------------------- files */

/* Read a whole regular file into a malloc'd buffer with a NUL after the last byte. Files above
 * max_bytes are refused. SSL_ERR_IO names the path and the reason. */
int ssl__read_file(const char *path, size_t max_bytes, char **out, size_t *len);

/* Writes the content into f; returns SSL_OK or an error (set with ssl_set_error). Write errors
 * on f need no checking: the caller checks ferror(f) afterwards. */
typedef int (*ssl__emit_fn)(FILE *f, void *user);

/* Write a file atomically: the content goes to a new temporary file in the same directory,
 * which is flushed, fsync'ed and renamed over `path` (then the directory is fsync'ed). On any
 * failure the temporary file is removed and an existing `path` is left untouched. */
int ssl__write_atomic(const char *path, ssl__emit_fn emit, void *user);

/* Tests only: make the next ssl__write_atomic on this thread fail at the given stage. */
enum { SSL__FAIL_NONE = 0, SSL__FAIL_WRITE, SSL__FAIL_FSYNC, SSL__FAIL_RENAME };
void ssl__io_fail_next(int stage);

#endif
