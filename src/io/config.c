/* The strict config reader (ssl_cfg_*): typed getters with defaults and ranges, unknown-key
 * checks with suggestions, key paths in every message, sticky first error, optional
 * write-back of defaults (the resolved config). API and usage: json_strict.h. */
#include "io_internal.h"
#include "json_strict.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cfg_dead(const ssl_cfg_t *c)
{
    return !c || !c->err || *c->err != 0;
}

/* "PATH.KEY" (or "PATH", or "(root)") into buf. */
static const char *key_path(const ssl_cfg_t *c, const char *key, char *buf, size_t n)
{
    int w;
    if (!key)
        w = snprintf(buf, n, "%s", c->path[0] ? c->path : "(root)");
    else
        w = snprintf(buf, n, "%s%s%s", c->path, c->path[0] ? "." : "", key);
    if (w < 0 || (size_t)w >= n)
        buf[n - 1] = '\0'; /* truncated: still names the start of the path */
    return buf;
}

/* Records "SOURCE: message" as the reader tree's first error. */
static int cfg_error(ssl_cfg_t *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int cfg_error(ssl_cfg_t *c, const char *fmt, ...)
{
    if (!c || !c->err)
        return SSL_ERR_INVALID;
    if (*c->err)
        return *c->err;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->source)
        ssl_set_error(SSL_ERR_CONFIG, "%s: %s", c->source, msg);
    else
        ssl_set_error(SSL_ERR_CONFIG, "%s", msg);
    *c->err = SSL_ERR_CONFIG;
    return *c->err;
}

int ssl_cfg_fail(ssl_cfg_t *c, const char *key, const char *fmt, ...)
{
    if (!c || !c->err)
        return SSL_ERR_INVALID;
    if (*c->err)
        return *c->err;
    char msg[700], kp[SSL_CFG_PATH_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cfg_error(c, "key '%s': %s", key_path(c, key, kp, sizeof kp), msg);
}

static void cfg_nomem(ssl_cfg_t *c, const char *key)
{
    if (cfg_dead(c))
        return;
    char kp[SSL_CFG_PATH_MAX + 64];
    ssl_set_error(SSL_ERR_NOMEM, "config key '%s': out of memory", key_path(c, key, kp, sizeof kp));
    *c->err = SSL_ERR_NOMEM;
}

ssl_cfg_t ssl_cfg_root(cJSON *obj, const char *source, int *err, int flags)
{
    ssl_cfg_t c = {.obj = NULL, .source = source, .err = err, .flags = flags};
    if (!err) {
        ssl_set_error(SSL_ERR_INVALID, "ssl_cfg_root: NULL error slot");
        return c;
    }
    if (!cJSON_IsObject(obj))
        cfg_error(&c, "the config must be a JSON object, got %s", ssl_json_type_name(obj));
    else
        c.obj = obj;
    return c;
}

int ssl_cfg_status(const ssl_cfg_t *c)
{
    return (c && c->err) ? *c->err : SSL_ERR_INVALID;
}

/* The value at key; NULL when absent or null. */
static cJSON *cfg_item(const ssl_cfg_t *c, const char *key)
{
    if (!c->obj || !key)
        return NULL;
    cJSON *it = cJSON_GetObjectItemCaseSensitive(c->obj, key);
    return (it && !cJSON_IsNull(it)) ? it : NULL;
}

/* With SSL_CFG_FILL, store val (owned) at key; otherwise drop it. */
static void cfg_fill(ssl_cfg_t *c, const char *key, cJSON *val)
{
    if (!(c->flags & SSL_CFG_FILL) || !c->obj || cfg_dead(c)) {
        cJSON_Delete(val);
        return;
    }
    int ok = 0;
    if (val)
        ok = cJSON_GetObjectItemCaseSensitive(c->obj, key)
                 ? cJSON_ReplaceItemInObjectCaseSensitive(c->obj, key, val)
                 : cJSON_AddItemToObject(c->obj, key, val);
    if (!ok) {
        cJSON_Delete(val);
        cfg_nomem(c, key);
    }
}

/* Shortest text that reads back as v. */
static const char *fmt_num(double v, char *buf, size_t n)
{
    snprintf(buf, n, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, n, "%.17g", v);
    return buf;
}

/* Shortest text that reads back as the float v. */
static const char *fmt_flt(float v, char *buf, size_t n)
{
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)v);
        if ((float)strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

static const char *describe(const cJSON *it, char *buf, size_t n)
{
    if (cJSON_IsNumber(it))
        return fmt_num(it->valuedouble, buf, n);
    if (cJSON_IsString(it)) {
        size_t len = strlen(it->valuestring);
        snprintf(buf, n, "string \"%.40s%s\"", it->valuestring, len > 40 ? "..." : "");
        return buf;
    }
    if (cJSON_IsTrue(it))
        return "true";
    if (cJSON_IsFalse(it))
        return "false";
    return ssl_json_type_name(it);
}

int ssl_cfg_keys(ssl_cfg_t *c, const char *const *allowed)
{
    if (cfg_dead(c) || !c->obj)
        return ssl_cfg_status(c);
    int n_allowed = 0;
    while (allowed && allowed[n_allowed])
        n_allowed++;
    for (const cJSON *ch = c->obj->child; ch; ch = ch->next) {
        int found = 0;
        for (int i = 0; i < n_allowed && !found; i++)
            found = !strcmp(ch->string, allowed[i]);
        if (found)
            continue;
        char kp[SSL_CFG_PATH_MAX + 64];
        key_path(c, ch->string, kp, sizeof kp);
        const char *near = ssl_nearest(ch->string, allowed, n_allowed);
        if (near)
            return cfg_error(c, "unknown key '%s' (did you mean '%s'?)", kp, near);
        ssl__sb_t list = {0};
        for (int i = 0; i < n_allowed; i++)
            ssl__sb_printf(&list, "%s%s", i ? ", " : "", allowed[i]);
        int rc = cfg_error(c, "unknown key '%s' (allowed keys: %s)", kp,
                           list.buf && !list.oom ? list.buf : "none");
        ssl__sb_free(&list);
        return rc;
    }
    return SSL_OK;
}

int ssl_cfg_has(ssl_cfg_t *c, const char *key)
{
    return c && cfg_item(c, key) != NULL;
}

int ssl_cfg_require(ssl_cfg_t *c, const char *key)
{
    if (cfg_dead(c))
        return ssl_cfg_status(c);
    if (!cfg_item(c, key)) {
        char kp[SSL_CFG_PATH_MAX + 64];
        return cfg_error(c, "missing required key '%s'", key_path(c, key, kp, sizeof kp));
    }
    return SSL_OK;
}

cJSON *ssl_cfg_get(ssl_cfg_t *c, const char *key)
{
    return c ? cfg_item(c, key) : NULL;
}

static const char *int_range(char *buf, size_t n, int64_t lo, int64_t hi, int64_t tmin,
                             int64_t tmax)
{
    if (lo <= tmin && hi >= tmax)
        snprintf(buf, n, "an integer");
    else if (hi >= tmax)
        snprintf(buf, n, "an integer >= %lld", (long long)lo);
    else if (lo <= tmin)
        snprintf(buf, n, "an integer <= %lld", (long long)hi);
    else
        snprintf(buf, n, "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
    return buf;
}

#define EXACT_INT_MAX 9007199254740992.0 /* 2^53 */

/* Validates an integer item; returns 1 and *out on success, 0 after recording an error. */
static int int_value(ssl_cfg_t *c, const char *key, const cJSON *it, int64_t lo, int64_t hi,
                     int64_t tmin, int64_t tmax, int64_t *out)
{
    char want[96], got[64];
    int_range(want, sizeof want, lo, hi, tmin, tmax);
    if (!cJSON_IsNumber(it)) {
        ssl_cfg_fail(c, key, "expected %s, got %s", want, describe(it, got, sizeof got));
        return 0;
    }
    double v = it->valuedouble;
    if (!(fabs(v) <= EXACT_INT_MAX) || v != floor(v)) {
        ssl_cfg_fail(c, key, "expected %s, got %s", want, describe(it, got, sizeof got));
        return 0;
    }
    int64_t iv = (int64_t)v;
    if (iv < lo || iv > hi) {
        ssl_cfg_fail(c, key, "expected %s, got %lld", want, (long long)iv);
        return 0;
    }
    *out = iv;
    return 1;
}

int64_t ssl_cfg_i64(ssl_cfg_t *c, const char *key, int64_t def, int64_t lo, int64_t hi)
{
    if (cfg_dead(c))
        return def;
    cJSON *it = cfg_item(c, key);
    if (!it) {
        cfg_fill(c, key, cJSON_CreateNumber((double)def));
        return def;
    }
    int64_t v;
    return int_value(c, key, it, lo, hi, INT64_MIN, INT64_MAX, &v) ? v : def;
}

int ssl_cfg_int(ssl_cfg_t *c, const char *key, int def, int lo, int hi)
{
    if (cfg_dead(c))
        return def;
    cJSON *it = cfg_item(c, key);
    if (!it) {
        cfg_fill(c, key, cJSON_CreateNumber((double)def));
        return def;
    }
    int64_t v;
    return int_value(c, key, it, lo, hi, INT_MIN, INT_MAX, &v) ? (int)v : def;
}

static const char *num_range(char *buf, size_t n, double lo, double hi, int bounds)
{
    char a[40], b[40];
    int lo_inf = isinf(lo) && lo < 0, hi_inf = isinf(hi) && hi > 0;
    int lo_open = (bounds & SSL_CFG_LO_OPEN) != 0, hi_open = (bounds & SSL_CFG_HI_OPEN) != 0;
    if (lo_inf && hi_inf)
        snprintf(buf, n, "a finite number");
    else if (hi_inf)
        snprintf(buf, n, "a number %s %s", lo_open ? ">" : ">=", fmt_num(lo, a, sizeof a));
    else if (lo_inf)
        snprintf(buf, n, "a number %s %s", hi_open ? "<" : "<=", fmt_num(hi, b, sizeof b));
    else
        snprintf(buf, n, "a number in %c%s, %s%c", lo_open ? '(' : '[', fmt_num(lo, a, sizeof a),
                 fmt_num(hi, b, sizeof b), hi_open ? ')' : ']');
    return buf;
}

static int in_range(double v, double lo, double hi, int bounds)
{
    int lo_ok = (bounds & SSL_CFG_LO_OPEN) ? v > lo : v >= lo;
    int hi_ok = (bounds & SSL_CFG_HI_OPEN) ? v < hi : v <= hi;
    return isfinite(v) && lo_ok && hi_ok;
}

/* Validates a number item; returns 1 and *out, or 0 after recording an error. */
static int num_value(ssl_cfg_t *c, const char *key, const cJSON *it, double lo, double hi,
                     int bounds, int is_float, double *out)
{
    char want[128], got[64];
    num_range(want, sizeof want, lo, hi, bounds);
    if (!cJSON_IsNumber(it) || !in_range(it->valuedouble, lo, hi, bounds) ||
        (is_float && fabs(it->valuedouble) > FLT_MAX)) {
        ssl_cfg_fail(c, key, "expected %s, got %s", want, describe(it, got, sizeof got));
        return 0;
    }
    *out = it->valuedouble;
    return 1;
}

static double get_num(ssl_cfg_t *c, const char *key, double def, double lo, double hi, int bounds,
                      int is_float)
{
    if (cfg_dead(c))
        return def;
    cJSON *it = cfg_item(c, key);
    if (!it) {
        cfg_fill(c, key, cJSON_CreateNumber(def));
        return def;
    }
    double v;
    return num_value(c, key, it, lo, hi, bounds, is_float, &v) ? v : def;
}

double ssl_cfg_double(ssl_cfg_t *c, const char *key, double def, double lo, double hi)
{
    return get_num(c, key, def, lo, hi, 0, 0);
}

double ssl_cfg_double_ex(ssl_cfg_t *c, const char *key, double def, double lo, double hi,
                         int bounds)
{
    return get_num(c, key, def, lo, hi, bounds, 0);
}

float ssl_cfg_float(ssl_cfg_t *c, const char *key, double def, double lo, double hi)
{
    return (float)get_num(c, key, def, lo, hi, 0, 1);
}

float ssl_cfg_float_ex(ssl_cfg_t *c, const char *key, double def, double lo, double hi, int bounds)
{
    return (float)get_num(c, key, def, lo, hi, bounds, 1);
}

int ssl_cfg_bool(ssl_cfg_t *c, const char *key, int def)
{
    if (cfg_dead(c))
        return def;
    cJSON *it = cfg_item(c, key);
    if (!it) {
        cfg_fill(c, key, cJSON_CreateBool(def != 0));
        return def;
    }
    if (!cJSON_IsBool(it)) {
        char got[64];
        ssl_cfg_fail(c, key, "expected true or false, got %s", describe(it, got, sizeof got));
        return def;
    }
    return cJSON_IsTrue(it) ? 1 : 0;
}

const char *ssl_cfg_str(ssl_cfg_t *c, const char *key, const char *def)
{
    if (cfg_dead(c))
        return def;
    cJSON *it = cfg_item(c, key);
    if (!it) {
        if (def)
            cfg_fill(c, key, cJSON_CreateString(def));
        return def;
    }
    if (!cJSON_IsString(it)) {
        char got[64];
        ssl_cfg_fail(c, key, "expected a string, got %s", describe(it, got, sizeof got));
        return def;
    }
    return it->valuestring;
}

int ssl_cfg_enum(ssl_cfg_t *c, const char *key, const char *const *choices, int def)
{
    if (cfg_dead(c))
        return def;
    int n = 0;
    while (choices && choices[n])
        n++;
    cJSON *it = cfg_item(c, key);
    if (!it) {
        if (def >= 0 && def < n)
            cfg_fill(c, key, cJSON_CreateString(choices[def]));
        return def;
    }
    ssl__sb_t list = {0};
    for (int i = 0; i < n; i++)
        ssl__sb_printf(&list, "%s%s", i ? ", " : "", choices[i]);
    const char *ls = list.buf && !list.oom ? list.buf : "";
    if (!cJSON_IsString(it)) {
        char got[64];
        ssl_cfg_fail(c, key, "expected one of: %s; got %s", ls, describe(it, got, sizeof got));
        ssl__sb_free(&list);
        return def;
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(it->valuestring, choices[i])) {
            ssl__sb_free(&list);
            return i;
        }
    const char *near = ssl_nearest(it->valuestring, choices, n);
    char hint[96] = "";
    if (near)
        snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
    ssl_cfg_fail(c, key, "'%.64s' is not one of: %s%s", it->valuestring, ls, hint);
    ssl__sb_free(&list);
    return def;
}

/* Reads an array of numbers into vals[max_n] (as doubles); returns its length or -1 (error
 * recorded), 0 with *absent = 1 when the key is absent. */
static int num_array(ssl_cfg_t *c, const char *key, double *vals, int min_n, int max_n, double lo,
                     double hi, int integral, int *absent)
{
    *absent = 0;
    cJSON *it = cfg_item(c, key);
    if (!it) {
        *absent = 1;
        return 0;
    }
    char want[192], elem[96], got[64];
    if (integral)
        int_range(elem, sizeof elem, (int64_t)lo, (int64_t)hi, INT_MIN, INT_MAX);
    else
        num_range(elem, sizeof elem, lo, hi, 0);
    if (min_n == max_n)
        snprintf(want, sizeof want, "an array of %d elements, each %s", min_n, elem);
    else
        snprintf(want, sizeof want, "an array of %d to %d elements, each %s", min_n, max_n, elem);
    if (!cJSON_IsArray(it)) {
        ssl_cfg_fail(c, key, "expected %s; got %s", want, describe(it, got, sizeof got));
        return -1;
    }
    int n = cJSON_GetArraySize(it);
    if (n < min_n || n > max_n) {
        ssl_cfg_fail(c, key, "expected %s; got %d element%s", want, n, n == 1 ? "" : "s");
        return -1;
    }
    int i = 0;
    for (const cJSON *e = it->child; e; e = e->next, i++) {
        char ek[SSL_CFG_PATH_MAX];
        snprintf(ek, sizeof ek, "%s[%d]", key, i);
        if (integral) {
            int64_t v;
            if (!int_value(c, ek, e, (int64_t)lo, (int64_t)hi, INT_MIN, INT_MAX, &v))
                return -1;
            vals[i] = (double)v;
        } else if (!num_value(c, ek, e, lo, hi, 0, 1, &vals[i])) {
            return -1;
        }
    }
    return n;
}

static cJSON *num_array_json(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateNumber(v[i]);
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

int ssl_cfg_floats(ssl_cfg_t *c, const char *key, float *out, int min_n, int max_n,
                   const double *def, int n_def, double lo, double hi)
{
    if (n_def > max_n)
        n_def = max_n;
    for (int i = 0; i < n_def; i++)
        out[i] = (float)def[i];
    if (cfg_dead(c) || max_n <= 0)
        return n_def;
    double stack_vals[16];
    double *vals = max_n <= 16 ? stack_vals : malloc((size_t)max_n * sizeof *vals);
    if (!vals) {
        cfg_nomem(c, key);
        return n_def;
    }
    int absent, n = num_array(c, key, vals, min_n, max_n, lo, hi, 0, &absent);
    if (absent) {
        cfg_fill(c, key, num_array_json(def, n_def));
        n = n_def;
    } else if (n < 0) {
        n = n_def;
    } else {
        for (int i = 0; i < n; i++)
            out[i] = (float)vals[i];
    }
    if (vals != stack_vals)
        free(vals);
    return n;
}

int ssl_cfg_ints(ssl_cfg_t *c, const char *key, int *out, int min_n, int max_n, const int *def,
                 int n_def, int lo, int hi)
{
    if (n_def > max_n)
        n_def = max_n;
    for (int i = 0; i < n_def; i++)
        out[i] = def[i];
    if (cfg_dead(c) || max_n <= 0)
        return n_def;
    double stack_vals[16];
    double *vals = max_n <= 16 ? stack_vals : malloc((size_t)max_n * sizeof *vals);
    if (!vals) {
        cfg_nomem(c, key);
        return n_def;
    }
    int absent, n = num_array(c, key, vals, min_n, max_n, lo, hi, 1, &absent);
    if (absent) {
        for (int i = 0; i < n_def; i++)
            vals[i] = def[i];
        cfg_fill(c, key, num_array_json(vals, n_def));
        n = n_def;
    } else if (n < 0) {
        n = n_def;
    } else {
        for (int i = 0; i < n; i++)
            out[i] = (int)vals[i];
    }
    if (vals != stack_vals)
        free(vals);
    return n;
}

void ssl_cfg_range(ssl_cfg_t *c, const char *key, float out[2], double def_a, double def_b,
                   double lo, double hi)
{
    double def[2] = {def_a, def_b};
    float v[2];
    out[0] = (float)def_a;
    out[1] = (float)def_b;
    if (ssl_cfg_floats(c, key, v, 2, 2, def, 2, lo, hi) != 2 || cfg_dead(c))
        return;
    if (v[0] > v[1]) {
        char a[40], b[40];
        ssl_cfg_fail(c, key, "expected [a, b] with a <= b, got [%s, %s]",
                     fmt_flt(v[0], a, sizeof a), fmt_flt(v[1], b, sizeof b));
        return;
    }
    out[0] = v[0];
    out[1] = v[1];
}

static ssl_cfg_t cfg_child(const ssl_cfg_t *c, const char *suffix_fmt, const char *key, int i)
{
    ssl_cfg_t ch = {.obj = NULL, .source = c->source, .err = c->err, .flags = c->flags};
    char sub[SSL_CFG_PATH_MAX];
    snprintf(sub, sizeof sub, suffix_fmt, key, i);
    key_path(c, sub, ch.path, sizeof ch.path);
    return ch;
}

ssl_cfg_t ssl_cfg_obj(ssl_cfg_t *c, const char *key)
{
    ssl_cfg_t ch = cfg_child(c, "%s", key, 0);
    if (cfg_dead(c))
        return ch;
    cJSON *it = cfg_item(c, key);
    if (!it) {
        if ((c->flags & SSL_CFG_FILL) && c->obj) {
            cfg_fill(c, key, cJSON_CreateObject());
            ch.obj = cfg_item(c, key);
        }
        return ch;
    }
    if (!cJSON_IsObject(it)) {
        char got[64];
        ssl_cfg_fail(c, key, "expected an object, got %s", describe(it, got, sizeof got));
        return ch;
    }
    ch.obj = it;
    return ch;
}

int ssl_cfg_len(ssl_cfg_t *c, const char *key)
{
    if (cfg_dead(c))
        return 0;
    cJSON *it = cfg_item(c, key);
    if (!it)
        return 0;
    if (!cJSON_IsArray(it)) {
        char got[64];
        ssl_cfg_fail(c, key, "expected an array, got %s", describe(it, got, sizeof got));
        return 0;
    }
    return cJSON_GetArraySize(it);
}

ssl_cfg_t ssl_cfg_at(ssl_cfg_t *c, const char *key, int i)
{
    ssl_cfg_t ch = cfg_child(c, "%s[%d]", key, i);
    if (cfg_dead(c))
        return ch;
    int n = ssl_cfg_len(c, key);
    if (cfg_dead(c))
        return ch;
    char ek[SSL_CFG_PATH_MAX];
    snprintf(ek, sizeof ek, "%s[%d]", key, i);
    if (i < 0 || i >= n) {
        ssl_cfg_fail(c, ek, "index out of range (the array has %d element%s)", n,
                     n == 1 ? "" : "s");
        return ch;
    }
    cJSON *it = cJSON_GetArrayItem(cfg_item(c, key), i);
    if (!cJSON_IsObject(it)) {
        char got[64];
        ssl_cfg_fail(c, ek, "expected an object, got %s", describe(it, got, sizeof got));
        return ch;
    }
    ch.obj = it;
    return ch;
}
