/* Loading a safetensors file into a parameter store by name, with a prefix per module, and
 * the missing / unexpected / mis-shaped report. Uses only the public reader API. */
#include "ssl/io.h"

#include "io_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct strlist {
    char **v;
    int n, cap;
    int oom;
} strlist_t;

static void list_add(strlist_t *l, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void list_add(strlist_t *l, const char *fmt, ...)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        int c = l->cap ? l->cap * 2 : 8;
        char **v = realloc(l->v, (size_t)c * sizeof *v);
        if (!v) {
            l->oom = 1;
            return;
        }
        l->v = v;
        l->cap = c;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) {
        l->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    l->v[l->n++] = s;
}

static void list_free(strlist_t *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    *l = (strlist_t){0};
}

void ssl_st_report_free(ssl_st_report_t *r)
{
    if (!r)
        return;
    strlist_t l[3] = {{r->missing, r->n_missing, 0, 0},
                      {r->unexpected, r->n_unexpected, 0, 0},
                      {r->mismatched, r->n_mismatched, 0, 0}};
    for (int i = 0; i < 3; i++)
        list_free(&l[i]);
    *r = (ssl_st_report_t){0};
}

/* "2 missing (a, b, c, ...)" */
static void describe_list(ssl__sb_t *sb, const strlist_t *l, const char *what)
{
    if (sb->len)
        ssl__sb_puts(sb, "; ");
    ssl__sb_printf(sb, "%d %s (", l->n, what);
    for (int i = 0; i < l->n && i < 3; i++)
        ssl__sb_printf(sb, "%s%s", i ? ", " : "", l->v[i]);
    ssl__sb_puts(sb, l->n > 3 ? ", ...)" : ")");
}

int ssl_st_load_params(const ssl_st_t *f, ssl_params_t *p, const char *prefix, int flags,
                       ssl_st_report_t *report)
{
    if (report)
        *report = (ssl_st_report_t){0};
    if (!f || !p)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_st_load_params: NULL file or store");
    if (!prefix)
        prefix = "";
    size_t plen = strlen(prefix);
    int np = ssl_params_count(p);
    int *match = malloc(((size_t)np + 1) * sizeof *match); /* tensor index per parameter */
    unsigned char *used = calloc((size_t)ssl_st_count(f) + 1, 1);
    strlist_t missing = {0}, unexpected = {0}, mismatched = {0};
    int rc = SSL_OK;
    if (!match || !used) {
        rc = ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", ssl_st_path(f));
        goto done;
    }
    for (int i = 0; i < np; i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        size_t n = plen + strlen(in->name) + 1;
        char *full = malloc(n);
        if (!full) {
            rc = ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", ssl_st_path(f));
            goto done;
        }
        snprintf(full, n, "%s%s", prefix, in->name);
        int j = ssl_st_find(f, full);
        match[i] = -1;
        if (j < 0) {
            list_add(&missing, "%s", full);
        } else {
            used[j] = 1;
            const ssl_st_tensor_t *t = ssl_st_tensor(f, j);
            int same = t->ndim == in->t->ndim;
            for (int d = 0; same && d < t->ndim; d++)
                same = t->shape[d] == in->t->shape[d];
            if (same) {
                match[i] = j;
            } else {
                char a[160], b[160];
                list_add(&mismatched, "%s: file %s %s vs store %s", full, ssl_dtype_name(t->dtype),
                         ssl__shape_text(t->ndim, t->shape, a, sizeof a),
                         ssl__shape_text(in->t->ndim, in->t->shape, b, sizeof b));
            }
        }
        free(full);
    }
    for (int j = 0; j < ssl_st_count(f); j++) {
        const char *name = ssl_st_tensor(f, j)->name;
        if (!used[j] && !strncmp(name, prefix, plen))
            list_add(&unexpected, "%s", name);
    }
    if (missing.oom || unexpected.oom || mismatched.oom) {
        rc = ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", ssl_st_path(f));
        goto done;
    }
    int bad_missing = missing.n && !(flags & SSL_ST_ALLOW_MISSING);
    int bad_unexpected = unexpected.n && !(flags & SSL_ST_ALLOW_UNEXPECTED);
    int bad_mismatch = mismatched.n && !(flags & SSL_ST_ALLOW_MISMATCH);
    if (bad_missing || bad_unexpected || bad_mismatch) {
        ssl__sb_t sb = {0};
        if (bad_missing)
            describe_list(&sb, &missing, "missing");
        if (bad_unexpected)
            describe_list(&sb, &unexpected, "unexpected");
        if (bad_mismatch)
            describe_list(&sb, &mismatched, "mis-shaped");
        rc = ssl_set_error(SSL_ERR_FORMAT,
                           "%s: tensors under prefix '%s' do not match the "
                           "parameters: %s",
                           ssl_st_path(f), prefix, sb.buf && !sb.oom ? sb.buf : "");
        ssl__sb_free(&sb);
        goto done;
    }
    int loaded = 0;
    for (int i = 0; i < np && !rc; i++) {
        if (match[i] < 0)
            continue;
        ssl_tensor_t *t = ssl_params_info(p, i)->t;
        rc = ssl_st_read_f32(f, match[i], t->data, (size_t)t->numel);
        loaded += !rc;
    }
    if (report)
        report->n_loaded = loaded;
done:
    if (report && rc != SSL_ERR_NOMEM) {
        report->missing = missing.v;
        report->n_missing = missing.n;
        report->unexpected = unexpected.v;
        report->n_unexpected = unexpected.n;
        report->mismatched = mismatched.v;
        report->n_mismatched = mismatched.n;
    } else {
        list_free(&missing);
        list_free(&unexpected);
        list_free(&mismatched);
    }
    free(match);
    free(used);
    return rc;
}

int ssl_st_load_params_file(const char *path, ssl_params_t *p, const char *prefix, int flags,
                            ssl_st_report_t *report)
{
    if (report)
        *report = (ssl_st_report_t){0};
    ssl_st_t *f = ssl_st_open(path);
    if (!f)
        return ssl_last_status();
    int rc = ssl_st_load_params(f, p, prefix, flags, report);
    ssl_st_close(f);
    return rc;
}
