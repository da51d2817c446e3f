/* Strict JSON: our own scanner checks the grammar, depth and UTF-8 and reports line/column
 * before cJSON builds the tree; then a walk rejects duplicate keys. Also --set overrides,
 * printing and the edit distance behind "did you mean". The config reader is in config.c. */
#include "json_strict.h"
#include "io_internal.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ scanner */

typedef struct scan {
    const unsigned char *s;
    size_t n, pos;
    int depth;
    size_t err_pos;
    char msg[160];
} scan_t;

static int scan_fail(scan_t *sc, size_t pos, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int scan_fail(scan_t *sc, size_t pos, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sc->msg, sizeof sc->msg, fmt, ap);
    va_end(ap);
    sc->err_pos = pos;
    return -1;
}

/* "'x'" for printable ASCII, "byte 0xNN" otherwise. */
static const char *char_desc(unsigned c, char *buf, size_t n)
{
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, n, "'%c'", (char)c);
    else
        snprintf(buf, n, "byte 0x%02X", c);
    return buf;
}

static int scan_unexpected(scan_t *sc, const char *expected)
{
    if (sc->pos >= sc->n)
        return scan_fail(sc, sc->pos, "unexpected end of input, expected %s", expected);
    char d[16];
    unsigned c = sc->s[sc->pos];
    if (c == '/')
        return scan_fail(sc, sc->pos, "comments are not allowed in JSON");
    if (c == '\'')
        return scan_fail(sc, sc->pos, "strings need double quotes, not single quotes");
    return scan_fail(sc, sc->pos, "unexpected %s, expected %s", char_desc(c, d, sizeof d),
                     expected);
}

static void skip_ws(scan_t *sc)
{
    while (sc->pos < sc->n) {
        unsigned char c = sc->s[sc->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        sc->pos++;
    }
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

static int scan_string(scan_t *sc)
{
    size_t start = sc->pos++;
    for (;;) {
        if (sc->pos >= sc->n)
            return scan_fail(sc, start, "unterminated string");
        unsigned c = sc->s[sc->pos];
        if (c == '"') {
            sc->pos++;
            return 0;
        }
        if (c == '\\') {
            if (sc->pos + 1 >= sc->n)
                return scan_fail(sc, start, "unterminated string");
            unsigned e = sc->s[sc->pos + 1];
            if (strchr("\"\\/bfnrt", (int)e) && e) {
                sc->pos += 2;
                continue;
            }
            if (e != 'u') {
                char d[16];
                return scan_fail(sc, sc->pos, "invalid escape \\%s in string",
                                 char_desc(e, d, sizeof d));
            }
            unsigned cp;
            if (sc->n - sc->pos < 6 || !hex4(sc->s + sc->pos + 2, &cp))
                return scan_fail(sc, sc->pos, "invalid \\u escape: expected 4 hex digits");
            if (cp == 0)
                return scan_fail(sc, sc->pos, "\\u0000 (NUL) is not allowed in strings");
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return scan_fail(sc, sc->pos, "\\u%04X is a lone low surrogate", cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (sc->n - sc->pos < 12 || sc->s[sc->pos + 6] != '\\' ||
                    sc->s[sc->pos + 7] != 'u' || !hex4(sc->s + sc->pos + 8, &lo) || lo < 0xDC00 ||
                    lo > 0xDFFF)
                    return scan_fail(sc, sc->pos,
                                     "\\u%04X is a high surrogate without a low surrogate", cp);
                sc->pos += 12;
            } else {
                sc->pos += 6;
            }
            continue;
        }
        if (c < 0x20)
            return scan_fail(sc, sc->pos,
                             "raw control character 0x%02X in string (escape it, e.g. \\n)", c);
        if (c < 0x80) {
            sc->pos++;
            continue;
        }
        int k = ssl__utf8_seq(sc->s + sc->pos, sc->n - sc->pos);
        if (!k)
            return scan_fail(sc, sc->pos, "invalid UTF-8 byte 0x%02X in string", c);
        sc->pos += (size_t)k;
    }
}

static int is_digit(const scan_t *sc)
{
    return sc->pos < sc->n && sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9';
}

static int scan_number(scan_t *sc)
{
    size_t start = sc->pos;
    if (sc->s[sc->pos] == '-')
        sc->pos++;
    if (!is_digit(sc))
        return scan_fail(sc, sc->pos, "invalid number: expected a digit");
    if (sc->s[sc->pos] == '0') {
        sc->pos++;
        if (is_digit(sc))
            return scan_fail(sc, sc->pos - 1, "invalid number: leading zero");
    } else {
        while (is_digit(sc))
            sc->pos++;
    }
    if (sc->pos < sc->n && sc->s[sc->pos] == '.') {
        sc->pos++;
        if (!is_digit(sc))
            return scan_fail(sc, sc->pos, "invalid number: expected a digit after '.'");
        while (is_digit(sc))
            sc->pos++;
    }
    if (sc->pos < sc->n && (sc->s[sc->pos] == 'e' || sc->s[sc->pos] == 'E')) {
        sc->pos++;
        if (sc->pos < sc->n && (sc->s[sc->pos] == '+' || sc->s[sc->pos] == '-'))
            sc->pos++;
        if (!is_digit(sc))
            return scan_fail(sc, sc->pos, "invalid number: expected a digit in the exponent");
        while (is_digit(sc))
            sc->pos++;
    }
    /* cJSON reads at most 63 characters of a number and would misparse a longer one. */
    if (sc->pos - start > 63)
        return scan_fail(sc, start, "number literal longer than 63 characters");
    return 0;
}

static int scan_literal(scan_t *sc)
{
    size_t start = sc->pos;
    while (sc->pos < sc->n && (isalnum(sc->s[sc->pos]) || sc->s[sc->pos] == '_'))
        sc->pos++;
    size_t len = sc->pos - start;
    const char *w = (const char *)sc->s + start;
    if ((len == 4 && !memcmp(w, "true", 4)) || (len == 5 && !memcmp(w, "false", 5)) ||
        (len == 4 && !memcmp(w, "null", 4)))
        return 0;
    return scan_fail(sc, start,
                     "invalid literal '%.*s%s' (strings need double quotes; the only literals "
                     "are true, false and null)",
                     (int)(len > 24 ? 24 : len), w, len > 24 ? "..." : "");
}

static int scan_value(scan_t *sc);

static int scan_container(scan_t *sc, int is_obj)
{
    const char close = is_obj ? '}' : ']';
    const char *where = is_obj ? "object" : "array";
    if (++sc->depth > SSL_JSON_MAX_DEPTH)
        return scan_fail(sc, sc->pos, "nesting deeper than %d levels", SSL_JSON_MAX_DEPTH);
    sc->pos++;
    skip_ws(sc);
    if (sc->pos < sc->n && sc->s[sc->pos] == close) {
        sc->pos++;
        sc->depth--;
        return 0;
    }
    for (;;) {
        skip_ws(sc);
        if (is_obj) {
            if (sc->pos >= sc->n || sc->s[sc->pos] != '"')
                return scan_unexpected(sc, "a string key");
            if (scan_string(sc))
                return -1;
            skip_ws(sc);
            if (sc->pos >= sc->n || sc->s[sc->pos] != ':')
                return scan_unexpected(sc, "':' after the key");
            sc->pos++;
        }
        if (scan_value(sc))
            return -1;
        skip_ws(sc);
        if (sc->pos < sc->n && sc->s[sc->pos] == ',') {
            size_t comma = sc->pos++;
            skip_ws(sc);
            if (sc->pos < sc->n && sc->s[sc->pos] == close)
                return scan_fail(sc, comma, "trailing comma before '%c'", close);
            continue;
        }
        if (sc->pos < sc->n && sc->s[sc->pos] == close) {
            sc->pos++;
            sc->depth--;
            return 0;
        }
        char exp[48];
        snprintf(exp, sizeof exp, "',' or '%c' in %s", close, where);
        return scan_unexpected(sc, exp);
    }
}

static int scan_value(scan_t *sc)
{
    skip_ws(sc);
    if (sc->pos >= sc->n)
        return scan_unexpected(sc, "a value");
    unsigned c = sc->s[sc->pos];
    if (c == '{')
        return scan_container(sc, 1);
    if (c == '[')
        return scan_container(sc, 0);
    if (c == '"')
        return scan_string(sc);
    if (c == '-' || (c >= '0' && c <= '9'))
        return scan_number(sc);
    if (isalpha((int)c))
        return scan_literal(sc);
    return scan_unexpected(sc, "a value");
}

static int scan_document(scan_t *sc, const char *text, size_t len)
{
    *sc = (scan_t){.s = (const unsigned char *)text, .n = len};
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
        sc->pos = 3; /* UTF-8 byte order mark: cJSON skips it too */
    skip_ws(sc);
    if (sc->pos >= sc->n)
        return scan_fail(sc, sc->pos, "empty document");
    if (scan_value(sc))
        return -1;
    skip_ws(sc);
    if (sc->pos < sc->n)
        return scan_fail(sc, sc->pos, "unexpected content after the JSON value");
    return 0;
}

/* 1-based line and column (in characters) of byte offset pos. */
static void line_col(const char *text, size_t pos, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < pos; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

int ssl_json_valid(const char *text, size_t len)
{
    scan_t sc;
    return text && scan_document(&sc, text, len) == 0;
}

/* ================================================================ duplicate keys */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void path_push_key(ssl__sb_t *path, const char *key)
{
    if (path->len)
        ssl__sb_putn(path, ".", 1);
    ssl__sb_puts(path, key);
}

static int check_dups(const cJSON *node, ssl__sb_t *path, const char *name)
{
    if (cJSON_IsObject(node)) {
        int n = 0;
        for (const cJSON *ch = node->child; ch; ch = ch->next)
            n++;
        if (n > 1) {
            const char *stack_keys[32];
            const char **keys = n <= 32 ? stack_keys : malloc((size_t)n * sizeof *keys);
            if (!keys)
                return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory checking keys", name);
            int i = 0;
            for (const cJSON *ch = node->child; ch; ch = ch->next)
                keys[i++] = ch->string;
            qsort(keys, (size_t)n, sizeof *keys, cmp_str);
            const char *dup = NULL;
            for (i = 1; i < n && !dup; i++)
                if (!strcmp(keys[i - 1], keys[i]))
                    dup = keys[i];
            if (dup) {
                path_push_key(path, dup);
                int rc = ssl_set_error(SSL_ERR_FORMAT, "%s: duplicate key '%s'", name,
                                       path->oom ? dup : path->buf);
                if (keys != stack_keys)
                    free(keys);
                return rc;
            }
            if (keys != stack_keys)
                free(keys);
        }
        for (const cJSON *ch = node->child; ch; ch = ch->next) {
            size_t mark = path->len;
            path_push_key(path, ch->string);
            int rc = check_dups(ch, path, name);
            ssl__sb_truncate(path, mark);
            if (rc)
                return rc;
        }
    } else if (cJSON_IsArray(node)) {
        int i = 0;
        for (const cJSON *ch = node->child; ch; ch = ch->next, i++) {
            size_t mark = path->len;
            ssl__sb_printf(path, "[%d]", i);
            int rc = check_dups(ch, path, name);
            ssl__sb_truncate(path, mark);
            if (rc)
                return rc;
        }
    }
    return SSL_OK;
}

/* ================================================================ parse */

static cJSON *parse_impl(const char *text, size_t len, const char *name, size_t base,
                         int terminated)
{
    if (!name)
        name = "<json>";
    if (!text) {
        ssl_set_error(SSL_ERR_INVALID, "%s: NULL text", name);
        return NULL;
    }
    scan_t sc;
    if (scan_document(&sc, text, len) != 0) {
        int line, col;
        line_col(text, sc.err_pos, &line, &col);
        ssl_set_error(SSL_ERR_FORMAT, "%s:%d:%d (byte %zu): %s", name, line, col, base + sc.err_pos,
                      sc.msg);
        return NULL;
    }
    /* The scan guarantees no NUL byte inside [0, len), so a terminated copy is the text. */
    char *copy = NULL;
    const char *buf = text;
    if (!terminated) {
        copy = malloc(len + 1);
        if (!copy) {
            ssl_set_error(SSL_ERR_NOMEM, "%s: cannot allocate %zu bytes", name, len + 1);
            return NULL;
        }
        memcpy(copy, text, len);
        copy[len] = '\0';
        buf = copy;
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(buf, &end, 1);
    if (!doc) {
        size_t at = (end && end >= buf && end <= buf + len) ? (size_t)(end - buf) : 0;
        int line, col;
        line_col(buf, at, &line, &col);
        ssl_set_error(SSL_ERR_NOMEM,
                      "%s:%d:%d (byte %zu): cJSON could not build the document "
                      "(out of memory?)",
                      name, line, col, base + at);
        free(copy);
        return NULL;
    }
    free(copy);
    ssl__sb_t path = {0};
    int rc = check_dups(doc, &path, name);
    ssl__sb_free(&path);
    if (rc) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

cJSON *ssl_json_parse(const char *text, size_t len, const char *name)
{
    return parse_impl(text, len, name, 0, 0);
}

cJSON *ssl_json_parse_at(const char *text, size_t len, const char *name, size_t base)
{
    return parse_impl(text, len, name, base, 0);
}

cJSON *ssl_json_parse_file(const char *path)
{
    char *buf;
    size_t len;
    if (!path) {
        ssl_set_error(SSL_ERR_INVALID, "ssl_json_parse_file: NULL path");
        return NULL;
    }
    if (ssl__read_file(path, SSL_JSON_MAX_FILE, &buf, &len) != SSL_OK)
        return NULL;
    cJSON *doc = parse_impl(buf, len, path, 0, 1);
    free(buf);
    return doc;
}

/* ================================================================ print */

char *ssl_json_print(const cJSON *doc)
{
    if (!doc) {
        ssl_set_error(SSL_ERR_INVALID, "ssl_json_print: NULL document");
        return NULL;
    }
    char *p = cJSON_Print(doc);
    if (!p) {
        ssl_set_error(SSL_ERR_NOMEM, "ssl_json_print: out of memory");
        return NULL;
    }
    size_t n = strlen(p);
    char *out = malloc(n + 2);
    if (out) {
        memcpy(out, p, n);
        out[n] = '\n';
        out[n + 1] = '\0';
    } else {
        ssl_set_error(SSL_ERR_NOMEM, "ssl_json_print: out of memory");
    }
    cJSON_free(p);
    return out;
}

static int emit_text(FILE *f, void *user)
{
    fputs((const char *)user, f);
    return SSL_OK;
}

int ssl_json_write_file(const char *path, const cJSON *doc)
{
    char *text = ssl_json_print(doc);
    if (!text)
        return ssl_last_status();
    int rc = ssl__write_atomic(path, emit_text, text);
    free(text);
    return rc;
}

/* ================================================================ --set */

int ssl_json_set(cJSON *doc, const char *path, const char *value)
{
    if (!path)
        path = "";
    if (!doc || !cJSON_IsObject(doc))
        return ssl_set_error(SSL_ERR_INVALID, "--set %s: the document is not a JSON object", path);
    if (!value)
        return ssl_set_error(SSL_ERR_INVALID, "--set %s: NULL value", path);
    size_t plen = strlen(path);
    if (plen == 0)
        return ssl_set_error(SSL_ERR_CONFIG, "--set: empty key path");
    /* Check every component before changing anything. */
    int parts = 1;
    for (size_t i = 0; i <= plen; i++) {
        if (i == plen || path[i] == '.') {
            size_t start = i;
            while (start > 0 && path[start - 1] != '.')
                start--;
            if (start == i)
                return ssl_set_error(SSL_ERR_CONFIG, "--set %s: empty key in the path", path);
            if (i < plen)
                parts++;
        }
    }
    if (parts > SSL_JSON_MAX_DEPTH)
        return ssl_set_error(SSL_ERR_CONFIG, "--set %s: more than %d keys in the path", path,
                             SSL_JSON_MAX_DEPTH);
    char *buf = malloc(plen + 1);
    if (!buf)
        return ssl_set_error(SSL_ERR_NOMEM, "--set %s: out of memory", path);
    memcpy(buf, path, plen + 1);
    /* Walk the existing objects first: a non-object on the way is an error with no change. */
    cJSON *cur = doc;
    char *comp = buf;
    char *dot;
    while ((dot = strchr(comp, '.')) != NULL) {
        *dot = '\0';
        cJSON *ch = cJSON_GetObjectItemCaseSensitive(cur, comp);
        if (!ch) {
            *dot = '.';
            break;
        }
        if (!cJSON_IsObject(ch)) {
            int rc = ssl_set_error(SSL_ERR_CONFIG, "--set %s: '%s' is %s, not an object", path, buf,
                                   ssl_json_type_name(ch));
            free(buf);
            return rc;
        }
        *dot = '.';
        cur = ch;
        comp = dot + 1;
    }
    size_t vlen = strlen(value);
    cJSON *val = ssl_json_valid(value, vlen) ? ssl_json_parse(value, vlen, "--set value")
                                             : cJSON_CreateString(value);
    if (!val) {
        int rc = ssl_last_status() ? ssl_last_status() : SSL_ERR_NOMEM;
        if (rc == SSL_ERR_NOMEM)
            ssl_set_error(rc, "--set %s: out of memory", path);
        free(buf);
        return rc;
    }
    /* Create the missing intermediate objects, then set the leaf. */
    while ((dot = strchr(comp, '.')) != NULL) {
        *dot = '\0';
        cJSON *obj = cJSON_CreateObject();
        if (!obj || !cJSON_AddItemToObject(cur, comp, obj)) {
            cJSON_Delete(obj);
            cJSON_Delete(val);
            free(buf);
            return ssl_set_error(SSL_ERR_NOMEM, "--set %s: out of memory", path);
        }
        cur = obj;
        comp = dot + 1;
    }
    int ok = cJSON_GetObjectItemCaseSensitive(cur, comp)
                 ? cJSON_ReplaceItemInObjectCaseSensitive(cur, comp, val)
                 : cJSON_AddItemToObject(cur, comp, val);
    free(buf);
    if (!ok) {
        cJSON_Delete(val);
        return ssl_set_error(SSL_ERR_NOMEM, "--set %s: out of memory", path);
    }
    return SSL_OK;
}

int ssl_json_override(cJSON *doc, const char *assignment)
{
    if (!assignment)
        return ssl_set_error(SSL_ERR_INVALID, "--set: NULL argument");
    const char *eq = strchr(assignment, '=');
    if (!eq)
        return ssl_set_error(SSL_ERR_CONFIG, "--set %s: expected path.to.key=value", assignment);
    size_t n = (size_t)(eq - assignment);
    char *path = malloc(n + 1);
    if (!path)
        return ssl_set_error(SSL_ERR_NOMEM, "--set: out of memory");
    memcpy(path, assignment, n);
    path[n] = '\0';
    int rc = ssl_json_set(doc, path, eq + 1);
    free(path);
    return rc;
}

/* ================================================================ helpers */

const char *ssl_json_type_name(const cJSON *it)
{
    if (!it)
        return "nothing";
    if (cJSON_IsNumber(it))
        return "a number";
    if (cJSON_IsString(it))
        return "a string";
    if (cJSON_IsBool(it))
        return "a boolean";
    if (cJSON_IsNull(it))
        return "null";
    if (cJSON_IsArray(it))
        return "an array";
    if (cJSON_IsObject(it))
        return "an object";
    return "an invalid value";
}

int ssl_edit_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na > 127 || nb > 127)
        return 1000;
    int rows[3][128];
    int *r2 = rows[0], *r1 = rows[1], *r0 = rows[2]; /* rows i-2, i-1, i */
    for (size_t j = 0; j <= nb; j++)
        r1[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        r0[0] = (int)i;
        int ai = tolower((unsigned char)a[i - 1]);
        for (size_t j = 1; j <= nb; j++) {
            int bj = tolower((unsigned char)b[j - 1]);
            int v = r1[j - 1] + (ai != bj);
            if (r1[j] + 1 < v)
                v = r1[j] + 1;
            if (r0[j - 1] + 1 < v)
                v = r0[j - 1] + 1;
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == bj && r2[j - 2] + 1 < v)
                v = r2[j - 2] + 1;
            r0[j] = v;
        }
        int *t = r2;
        r2 = r1;
        r1 = r0;
        r0 = t;
    }
    return r1[nb];
}

const char *ssl_nearest(const char *word, const char *const *choices, int n_choices)
{
    size_t len = strlen(word);
    int limit = len <= 3 ? 1 : len <= 8 ? 2 : 3;
    const char *best = NULL;
    int best_d = INT_MAX;
    for (int i = 0; i < n_choices && choices[i]; i++) {
        int d = ssl_edit_distance(word, choices[i]);
        if (d < best_d && d <= limit && (size_t)d < strlen(choices[i])) {
            best = choices[i];
            best_d = d;
        }
    }
    return best;
}
