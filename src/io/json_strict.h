/* Strict JSON for configs and file headers, and the strict config reader.
 *
 * Internal to libssl: other layers of the library (model factory, data, trainer) and sslc
 * include it; cJSON never appears in a public header. See docs/io.md.
 *
 * Parsing (ssl_json_parse*) is strict RFC 8259 JSON, checked by our own scanner before cJSON
 * builds the tree: one value, nothing but whitespace after it (a leading UTF-8 BOM is skipped),
 * strings of well-formed UTF-8 without raw control characters or \u0000, nesting at most
 * SSL_JSON_MAX_DEPTH, number literals at most 63 characters, and no duplicate key in any object.
 * Errors are SSL_ERR_FORMAT with "NAME:LINE:COL (byte N): reason"; a duplicate names the full
 * key path ("NAME: duplicate key 'model.encoder.width'").
 *
 * The config reader (ssl_cfg_*) reads one object with defaults, ranges and key paths in every
 * message. Errors are sticky: the first one is kept in the caller's `int err` shared by a root
 * reader and all its children, later calls return their defaults, so a module reads its
 * section straight through and checks once:
 *
 *     static const char *const keys[] = {"type", "width", "depth", "act", NULL};
 *     static const char *const acts[] = {"relu", "gelu", NULL};
 *     ssl_cfg_t c = ssl_cfg_obj(parent, "encoder");
 *     ssl_cfg_keys(&c, keys);
 *     e->width = ssl_cfg_int(&c, "width", 64, 1, 4096);
 *     e->depth = ssl_cfg_int(&c, "depth", 12, 1, 64);
 *     e->act = ssl_cfg_enum(&c, "act", acts, 0);
 *     if (ssl_cfg_status(&c)) return ssl_cfg_status(&c);
 *
 * With SSL_CFG_FILL every default that was used is written back into the document, so after
 * all modules have read their sections the document is the resolved config.
 */
#ifndef SSL_IO_JSON_STRICT_H
#define SSL_IO_JSON_STRICT_H

#include "ssl/core.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define SSL_JSON_MAX_DEPTH 64
#define SSL_JSON_MAX_FILE (64u << 20) /* config files above 64 MB are refused */

/* ---------------------------------------------------------------- parse, print */

/* Parse text[0..len) (need not be NUL-terminated). `name` (file name, "--set", ...) starts
 * every message. Returns a new document (cJSON_Delete it) or NULL with SSL_ERR_FORMAT, or
 * SSL_ERR_NOMEM. */
cJSON *ssl_json_parse(const char *text, size_t len, const char *name);
/* The same, with byte offsets reported as `base + offset` (a header inside a binary file). */
cJSON *ssl_json_parse_at(const char *text, size_t len, const char *name, size_t base);
/* Read and parse a file (SSL_ERR_IO if it cannot be read). */
cJSON *ssl_json_parse_file(const char *path);
/* 1 if text[0..len) is strict JSON as ssl_json_parse accepts it; sets no error. */
int ssl_json_valid(const char *text, size_t len);

/* The document as indented JSON text with a final newline (malloc'd, free() it), or NULL. */
char *ssl_json_print(const cJSON *doc);
/* Write ssl_json_print(doc) to path atomically (temp file, fsync, rename). */
int ssl_json_write_file(const char *path, const cJSON *doc);

/* ---------------------------------------------------------------- --set overrides */

/* Set doc[path] = value, path being dotted keys ("train.optim.lr"). The value text is parsed as
 * JSON when it is valid JSON (0.1, true, null, [1,2], {"a":1}, "quoted") and taken as a string
 * otherwise (sgd, resnet50). Missing intermediate objects are created; an existing value is
 * replaced in place. Crossing a non-object ("train.lr.x" where train.lr is a number) and empty
 * path components are SSL_ERR_CONFIG errors naming the path. */
int ssl_json_set(cJSON *doc, const char *path, const char *value);
/* "path.to.key=value" as given to --set: split at the first '=', then ssl_json_set. */
int ssl_json_override(cJSON *doc, const char *assignment);

/* ---------------------------------------------------------------- helpers */

/* "a number", "a string", "an object", ... */
const char *ssl_json_type_name(const cJSON *item);
/* Optimal-string-alignment edit distance (insert, delete, substitute, swap adjacent), ASCII
 * case-insensitive. Strings longer than 127 bytes are "far" (1000). */
int ssl_edit_distance(const char *a, const char *b);
/* The choice nearest to `word` if it is close enough to be a likely typo, else NULL. */
const char *ssl_nearest(const char *word, const char *const *choices, int n_choices);

/* ---------------------------------------------------------------- config reader */

#define SSL_CFG_PATH_MAX 256

enum ssl_cfg_flags {
    SSL_CFG_FILL = 1 << 0 /* write used defaults (and absent sections) into the document */
};

enum ssl_cfg_bounds {
    SSL_CFG_LO_OPEN = 1 << 0, /* lo itself is excluded: (lo, hi] */
    SSL_CFG_HI_OPEN = 1 << 1  /* hi itself is excluded: [lo, hi) */
};

typedef struct ssl_cfg {
    cJSON *obj;                  /* the object read; NULL for an absent section (all defaults) */
    const char *source;          /* file name for messages, or NULL */
    int *err;                    /* first error (0 = none), shared with children */
    int flags;                   /* ssl_cfg_flags */
    char path[SSL_CFG_PATH_MAX]; /* dotted path of obj, "" at the root */
} ssl_cfg_t;

/* A reader over `obj` (an object) at the root. *err must be 0 to start (a non-zero *err makes
 * every call a no-op returning its default). source names the file in messages (may be NULL).
 * A NULL or non-object obj is an error. */
ssl_cfg_t ssl_cfg_root(cJSON *obj, const char *source, int *err, int flags);
/* The first error of this reader tree (0 = none). The message is in ssl_last_error(). */
int ssl_cfg_status(const ssl_cfg_t *c);
/* Record an error about `key` (NULL: the section itself) unless one is already recorded:
 * "SOURCE: key 'PATH.KEY': message". For cross-field checks in modules. Returns *err. */
int ssl_cfg_fail(ssl_cfg_t *c, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Every key of the object must be in `allowed` (NULL-terminated). An unknown key is an error
 * naming its path and suggesting the nearest allowed key:
 * "unknown key 'model.encoder.widht' (did you mean 'width'?)". Returns the status. */
int ssl_cfg_keys(ssl_cfg_t *c, const char *const *allowed);
/* 1 if key is present and not null. */
int ssl_cfg_has(ssl_cfg_t *c, const char *key);
/* Error "missing required key 'PATH.KEY'" unless present and not null. Returns the status. */
int ssl_cfg_require(ssl_cfg_t *c, const char *key);
/* The raw item (NULL if absent), for shapes the getters do not cover. */
cJSON *ssl_cfg_get(ssl_cfg_t *c, const char *key);

/* Getters. An absent key or an explicit null yields the default (written back with
 * SSL_CFG_FILL). A value of the wrong type or out of range is an error naming the key path and
 * the accepted range; the default is returned. */
/* Integral number in [lo, hi] (1.5 and 1e300 are errors; |value| <= 2^53). */
int64_t ssl_cfg_i64(ssl_cfg_t *c, const char *key, int64_t def, int64_t lo, int64_t hi);
int ssl_cfg_int(ssl_cfg_t *c, const char *key, int def, int lo, int hi);
/* Finite number in [lo, hi]; lo = -INFINITY / hi = INFINITY for no bound. */
double ssl_cfg_double(ssl_cfg_t *c, const char *key, double def, double lo, double hi);
/* The same with open bounds (SSL_CFG_LO_OPEN / SSL_CFG_HI_OPEN). */
double ssl_cfg_double_ex(ssl_cfg_t *c, const char *key, double def, double lo, double hi,
                         int bounds);
/* As ssl_cfg_double; the value must also fit a float. def is a double so 0.1 is written back
 * as 0.1, not 0.10000000149. */
float ssl_cfg_float(ssl_cfg_t *c, const char *key, double def, double lo, double hi);
float ssl_cfg_float_ex(ssl_cfg_t *c, const char *key, double def, double lo, double hi, int bounds);
int ssl_cfg_bool(ssl_cfg_t *c, const char *key, int def);
/* A string; the pointer stays valid while the document lives. def may be NULL (no fill). */
const char *ssl_cfg_str(ssl_cfg_t *c, const char *key, const char *def);
/* A string from `choices` (NULL-terminated); returns its index, def (an index) if absent. The
 * error lists the choices and suggests the nearest. */
int ssl_cfg_enum(ssl_cfg_t *c, const char *key, const char *const *choices, int def);
/* An array of min_n..max_n numbers, each in [lo, hi], into out[max_n]. Returns the length
 * read; if absent copies def[0..n_def) and returns n_def. */
int ssl_cfg_floats(ssl_cfg_t *c, const char *key, float *out, int min_n, int max_n,
                   const double *def, int n_def, double lo, double hi);
int ssl_cfg_ints(ssl_cfg_t *c, const char *key, int *out, int min_n, int max_n, const int *def,
                 int n_def, int lo, int hi);
/* A [a, b] pair with lo <= a <= b <= hi (e.g. a crop scale range). */
void ssl_cfg_range(ssl_cfg_t *c, const char *key, float out[2], double def_a, double def_b,
                   double lo, double hi);

/* A reader over the sub-object at key (path "PATH.KEY"). Absent: an empty reader whose getters
 * return defaults (with SSL_CFG_FILL an empty object is created and filled). Present but not an
 * object: an error. The child shares the parent's error slot and flags. */
ssl_cfg_t ssl_cfg_obj(ssl_cfg_t *c, const char *key);
/* Length of the array at key (0 if absent; an error if not an array). */
int ssl_cfg_len(ssl_cfg_t *c, const char *key);
/* A reader over element i of the array at key, which must be an object (path "PATH.KEY[i]"). */
ssl_cfg_t ssl_cfg_at(ssl_cfg_t *c, const char *key, int i);

#endif
