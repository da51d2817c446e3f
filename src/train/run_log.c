/* Reading a run's metrics.jsonl back: one strict JSON object per line, numeric values (null
 * for a value that was not finite) as columns. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "trainer_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/io_internal.h"
#include "io/json_strict.h"

/* sslc writes lines under 1 KB: a longer one is not a metrics log (a file linked to /dev/zero
 * or /dev/full reads as one endless line, which must not be read into memory whole) */
#define RUN_LOG_LINE_MAX 65536

/* The next line (number lineno, for the message) of f into buf (RUN_LOG_LINE_MAX bytes,
 * NUL-terminated, the newline dropped): 1 and *len, *complete (it ended with a newline); 0 at
 * the end of the file; an error naming path and line when the line is longer than
 * RUN_LOG_LINE_MAX - 1 bytes (the rest of it is not read). */
static int next_line(FILE *f, char *buf, size_t *len, int *complete, const char *path,
                     long long lineno)
{
    size_t n = 0;
    int c;
    *complete = 0;
    while ((c = getc(f)) != EOF) {
        if (c == '\n') {
            *complete = 1;
            break;
        }
        if (n + 1 >= RUN_LOG_LINE_MAX)
            return ssl_set_error(SSL_ERR_FORMAT,
                                 "%s line %lld: longer than %d bytes: not a metrics log sslc "
                                 "wrote",
                                 path, lineno, RUN_LOG_LINE_MAX - 1);
        buf[n++] = (char)c;
    }
    buf[n] = '\0';
    *len = n;
    return n > 0 || *complete;
}

static int add_row(ssl_run_log_t *log, int64_t *cap)
{
    if (log->n_rows == *cap) {
        int64_t nc = *cap ? 2 * *cap : 256;
        double *v = realloc(log->values, (size_t)(nc * SSL_RUN_LOG_MAX_KEYS) * sizeof(double));
        if (!v)
            return ssl_set_error(SSL_ERR_NOMEM, "metrics log: out of memory");
        log->values = v;
        *cap = nc;
    }
    double *row = log->values + log->n_rows * SSL_RUN_LOG_MAX_KEYS;
    for (int k = 0; k < SSL_RUN_LOG_MAX_KEYS; k++)
        row[k] = NAN;
    log->n_rows++;
    return SSL_OK;
}

static int key_column(ssl_run_log_t *log, const char *key, const char *where)
{
    int k = ssl_run_log_key(log, key);
    if (k >= 0)
        return k;
    if (log->n_keys == SSL_RUN_LOG_MAX_KEYS)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: key '%s' is one more than the %d distinct keys "
                             "a metrics log may have", where, key, SSL_RUN_LOG_MAX_KEYS);
    if (!(log->keys[log->n_keys] = strdup(key)))
        return ssl_set_error(SSL_ERR_NOMEM, "metrics log: out of memory");
    return log->n_keys++;
}

/* One line (text[0..len), no newline) into a new row. */
static int parse_line(ssl_run_log_t *log, const char *text, size_t len, const char *where,
                      int64_t *cap)
{
    cJSON *doc = ssl_json_parse(text, len, where);
    if (!doc)
        return ssl_last_status();
    int st = cJSON_IsObject(doc) ? add_row(log, cap)
                                 : ssl_set_error(SSL_ERR_FORMAT, "%s: not a JSON object", where);
    for (const cJSON *it = doc->child; st == SSL_OK && it; it = it->next) {
        if (!cJSON_IsNumber(it) && !cJSON_IsNull(it)) {
            st = ssl_set_error(SSL_ERR_FORMAT, "%s: key '%s' is not a number or null", where,
                               it->string);
            break;
        }
        int k = key_column(log, it->string, where);
        if (k < 0)
            st = k;
        else
            log->values[(log->n_rows - 1) * SSL_RUN_LOG_MAX_KEYS + k] =
                cJSON_IsNull(it) ? NAN : it->valuedouble;
    }
    cJSON_Delete(doc);
    return st;
}

int ssl_run_log_read(const char *path, ssl_run_log_t *log)
{
    if (SSL__IS_NULL(path, __func__) || SSL__IS_NULL(log, __func__))
        return SSL_ERR_INVALID;
    memset(log, 0, sizeof *log);
    FILE *f = fopen(path, "rb");
    if (!f)
        return ssl_set_error(SSL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = malloc(RUN_LOG_LINE_MAX), where[1100];
    if (!line) {
        fclose(f);
        return ssl_set_error(SSL_ERR_NOMEM, "metrics log: out of memory");
    }
    size_t len = 0;
    int64_t lineno = 0, rows_cap = 0;
    int st = SSL_OK, complete = 0, got;
    while (st == SSL_OK && (got = next_line(f, line, &len, &complete, path, lineno + 1)) != 0) {
        lineno++;
        if (got < 0) {
            st = got;
            break;
        }
        while (len > 0 && line[len - 1] == '\r')
            len--;
        if (len == 0)
            continue;
        snprintf(where, sizeof where, "%s line %lld", path, (long long)lineno);
        st = parse_line(log, line, len, where, &rows_cap);
        if (st != SSL_OK && !complete)
            st = ssl_set_error(st, "%s line %lld: the last line is cut short (the run was "
                               "interrupted while writing it?): %s", path, (long long)lineno,
                               ssl_last_error());
    }
    if (st == SSL_OK && ferror(f))
        st = ssl_set_error(SSL_ERR_IO, "%s: read error after line %lld", path, (long long)lineno);
    free(line);
    fclose(f);
    if (st != SSL_OK)
        ssl_run_log_free(log);
    return st;
}

/* ---------------------------------------------------------------- repair on resume */

/* A line kept by the repair: its place in the order lines are written, (step, kind) with kind 0
 * for the kNN line at initialisation, 1 for a log point, 2 for an epoch's end. */
typedef struct kept_line {
    long long step;
    int kind;
    char *text;
} kept_line_t;

typedef struct kept_lines {
    kept_line_t *v;
    size_t n, cap;
} kept_lines_t;

static int emit_kept(FILE *f, void *user)
{
    const kept_lines_t *k = user;
    for (size_t i = 0; i < k->n; i++)
        fprintf(f, "%s\n", k->v[i].text);
    return SSL_OK;
}

/* The position of a parsed line, or -1 when it is not a line sslc writes. */
static int line_position(const char *text, size_t len, long long *step, int *kind)
{
    if (!ssl_json_valid(text, len))
        return -1;
    cJSON *doc = ssl_json_parse(text, len, "metrics");
    const cJSON *s = doc ? cJSON_GetObjectItemCaseSensitive(doc, "step") : NULL;
    int ok =
        cJSON_IsObject(doc) && cJSON_IsNumber(s) && s->valuedouble >= 0 && s->valuedouble < 9e15;
    if (ok) {
        *step = (long long)s->valuedouble;
        *kind = cJSON_GetObjectItemCaseSensitive(doc, "loss_mean") ? 2
                : cJSON_GetObjectItemCaseSensitive(doc, "loss")    ? 1
                                                                   : 0;
    }
    cJSON_Delete(doc);
    return ok ? 0 : -1;
}

static int keep_line(kept_lines_t *k, const char *text, long long step, int kind)
{
    if (k->n == k->cap) {
        size_t nc = k->cap ? 2 * k->cap : 256;
        kept_line_t *v = realloc(k->v, nc * sizeof *v);
        if (!v)
            return ssl_set_error(SSL_ERR_NOMEM, "metrics log: out of memory");
        k->v = v;
        k->cap = nc;
    }
    if (!(k->v[k->n].text = strdup(text)))
        return ssl_set_error(SSL_ERR_NOMEM, "metrics log: out of memory");
    k->v[k->n].step = step;
    k->v[k->n++].kind = kind;
    return SSL_OK;
}

int ssl__run_log_repair(const char *path, int64_t step)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT
                   ? SSL_OK
                   : ssl_set_error(SSL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *line = malloc(RUN_LOG_LINE_MAX);
    kept_lines_t k = {NULL, 0, 0};
    size_t len = 0;
    long long lineno = 0, dropped = 0;
    int st = line ? SSL_OK : ssl_set_error(SSL_ERR_NOMEM, "metrics log: out of memory");
    int complete = 0, got;
    while (st == SSL_OK && (got = next_line(f, line, &len, &complete, path, lineno + 1)) != 0) {
        lineno++;
        if (got < 0) {
            st = got;
            break;
        }
        long long s = 0;
        int kind = 0;
        if (len == 0)
            continue;
        if (!complete || line_position(line, len, &s, &kind) != 0) {
            dropped++; /* cut off by a kill, or two writes run together */
            continue;
        }
        /* lines repeat when a run was resumed from an earlier checkpoint than its last line
         * (sslc before the repair): the later lines, of the resumed run, replace them */
        while (k.n > 0 &&
               (k.v[k.n - 1].step > s || (k.v[k.n - 1].step == s && k.v[k.n - 1].kind >= kind))) {
            free(k.v[--k.n].text);
            dropped++;
        }
        if (s > (long long)step)
            dropped++; /* written after the checkpoint: the resumed run writes it again */
        else
            st = keep_line(&k, line, s, kind);
    }
    if (st == SSL_OK && ferror(f))
        st = ssl_set_error(SSL_ERR_IO, "%s: read error after line %lld", path, lineno);
    fclose(f);
    free(line);
    if (st == SSL_OK && dropped > 0) {
        st = ssl__write_atomic(path, emit_kept, &k);
        if (st == SSL_OK)
            ssl_logf(SSL_LOG_WARN,
                     "%s: removed %lld line%s written after the checkpoint's step %lld, cut off "
                     "or repeated by an interruption",
                     path, dropped, dropped == 1 ? "" : "s", (long long)step);
    }
    for (size_t i = 0; i < k.n; i++)
        free(k.v[i].text);
    free(k.v);
    return st;
}

void ssl_run_log_free(ssl_run_log_t *log)
{
    if (!log) /* as free(NULL) */
        return;
    for (int k = 0; k < log->n_keys; k++)
        free(log->keys[k]);
    free(log->values);
    memset(log, 0, sizeof *log);
}

int ssl_run_log_key(const ssl_run_log_t *log, const char *key)
{
    if (SSL__IS_NULL(log, __func__) || SSL__IS_NULL(key, __func__))
        return SSL_ERR_INVALID;
    for (int k = 0; k < log->n_keys; k++)
        if (!strcmp(log->keys[k], key))
            return k;
    return -1;
}

int64_t ssl_run_log_series(const ssl_run_log_t *log, const char *xkey, const char *ykey,
                           double *x, double *y)
{
    if (SSL__IS_NULL(log, __func__) || SSL__IS_NULL(xkey, __func__) ||
        SSL__IS_NULL(ykey, __func__) || SSL__IS_NULL(x, __func__) || SSL__IS_NULL(y, __func__))
        return SSL_ERR_INVALID;
    int kx = ssl_run_log_key(log, xkey), ky = ssl_run_log_key(log, ykey);
    int64_t m = 0;
    if (kx < 0 || ky < 0)
        return 0;
    for (int64_t i = 0; i < log->n_rows; i++) {
        double a = log->values[i * SSL_RUN_LOG_MAX_KEYS + kx];
        double b = log->values[i * SSL_RUN_LOG_MAX_KEYS + ky];
        if (isfinite(a) && isfinite(b)) {
            x[m] = a;
            y[m] = b;
            m++;
        }
    }
    return m;
}

/* ---------------------------------------------------------------- config summary */

static const cJSON *path_get(const cJSON *doc, const char *a, const char *b, const char *c)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(doc, a);
    if (x && b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    if (x && c)
        x = cJSON_GetObjectItemCaseSensitive(x, c);
    return x;
}

/* Append ", <label><value>" for a string or number at a.b.c (nothing when absent). */
static void add_item(char *buf, size_t len, const char *sep, const char *label, const cJSON *v)
{
    size_t o = strlen(buf);
    if (o >= len || !v)
        return;
    if (cJSON_IsString(v))
        snprintf(buf + o, len - o, "%s%s%s", o ? sep : "", label, v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(buf + o, len - o, "%s%s%g", o ? sep : "", label, v->valuedouble);
}

int ssl_run_describe(const char *config_path, char *buf, size_t len)
{
    if (!buf || len == 0)
        return ssl_set_error(SSL_ERR_INVALID, "run describe: no output buffer");
    buf[0] = '\0';
    cJSON *doc = ssl_json_parse_file(config_path);
    if (!doc)
        return ssl_last_status();
    const cJSON *name = path_get(doc, "name", NULL, NULL);
    snprintf(buf, len, "%s:", cJSON_IsString(name) ? name->valuestring : "run");
    add_item(buf, len, " ", "", path_get(doc, "model", "encoder", "type"));
    add_item(buf, len, " ", "width ", path_get(doc, "model", "encoder", "width"));
    add_item(buf, len, " ", "dim ", path_get(doc, "model", "encoder", "dim"));
    add_item(buf, len, " ", "depth ", path_get(doc, "model", "encoder", "depth"));
    add_item(buf, len, ", ", "loss ", path_get(doc, "loss", "type", NULL));
    add_item(buf, len, ", ", "", path_get(doc, "data", "dataset", NULL));
    add_item(buf, len, ", ", "epochs ", path_get(doc, "train", "epochs", NULL));
    add_item(buf, len, ", ", "batch ", path_get(doc, "train", "batch_size", NULL));
    add_item(buf, len, ", ", "", path_get(doc, "optim", "name", NULL));
    add_item(buf, len, " ", "base_lr ", path_get(doc, "optim", "base_lr", NULL));
    cJSON_Delete(doc);
    return SSL_OK;
}
