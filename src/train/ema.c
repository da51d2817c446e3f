/* EMA (momentum) targets: target = m target + (1 - m) online over stores built identically.
 * The pairing is checked once, by name, kind and shape, and reduced to contiguous runs, so an
 * update is usually a single loop over one buffer. */
#include "optim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ema_run {
    size_t t_off, o_off, len; /* floats */
} ema_run_t;

struct ssl_ema {
    ssl_params_t *target, *online;
    int t_count, o_count; /* store entries at creation */
    size_t t_n, o_n;      /* trainable floats at creation */
    size_t t_nb, o_nb;    /* buffer floats at creation */
    ema_run_t *runs;      /* trainable */
    int n_runs;
    ema_run_t *bruns; /* buffers */
    int n_bruns;
};

static int has_prefix(const char *name, const char *prefix, size_t len)
{
    return len == 0 || strncmp(name, prefix, len) == 0;
}

/* Next entry at or after *i whose name has the prefix; -1 at the end. */
static int next_entry(const ssl_params_t *p, int i, const char *prefix, size_t len)
{
    int n = ssl_params_count(p);
    for (; i < n; i++)
        if (has_prefix(ssl_params_info(p, i)->name, prefix, len))
            return i;
    return -1;
}

static int add_run(ema_run_t *runs, int n, size_t t_off, size_t o_off, size_t len)
{
    if (n > 0) {
        ema_run_t *r = &runs[n - 1];
        if (r->t_off + r->len == t_off && r->o_off + r->len == o_off) {
            r->len += len;
            return n;
        }
    }
    runs[n] = (ema_run_t){t_off, o_off, len};
    return n + 1;
}

static const char *kind_name(int kind)
{
    return kind == SSL_PARAM_TRAINABLE ? "a parameter" : "a buffer";
}

ssl_ema_t *ssl_ema_create(ssl_params_t *target, const char *target_prefix, ssl_params_t *online,
                          const char *online_prefix)
{
    if (!target || !online) {
        ssl_set_error(SSL_ERR_INVALID, "ssl_ema_create: NULL store");
        return NULL;
    }
    const char *tp = target_prefix ? target_prefix : "", *op = online_prefix ? online_prefix : "";
    size_t tl = strlen(tp), ol = strlen(op);
    ssl_ema_t *e = calloc(1, sizeof *e);
    int cap = ssl_params_count(target) + 1;
    if (!e || !(e->runs = malloc((size_t)cap * sizeof *e->runs)) ||
        !(e->bruns = malloc((size_t)cap * sizeof *e->bruns))) {
        ssl_ema_free(e);
        ssl_set_error(SSL_ERR_NOMEM, "ssl_ema_create: out of memory");
        return NULL;
    }
    e->target = target;
    e->online = online;
    e->t_count = ssl_params_count(target);
    e->o_count = ssl_params_count(online);
    ssl_params_data(target, &e->t_n);
    ssl_params_data(online, &e->o_n);
    ssl_params_buffers(target, &e->t_nb);
    ssl_params_buffers(online, &e->o_nb);

    int it = next_entry(target, 0, tp, tl), io = next_entry(online, 0, op, ol);
    int pairs = 0;
    while (it >= 0 || io >= 0) {
        const ssl_param_info_t *a = it >= 0 ? ssl_params_info(target, it) : NULL;
        const ssl_param_info_t *b = io >= 0 ? ssl_params_info(online, io) : NULL;
        if (!a || !b) {
            ssl_set_error(SSL_ERR_SHAPE, "ssl_ema_create: %s has '%s' with no %s entry",
                          a ? "target" : "online", a ? a->name : b->name, a ? "online" : "target");
            goto fail;
        }
        char sa[96], sb[96];
        if (strcmp(a->name + tl, b->name + ol) != 0) {
            ssl_set_error(SSL_ERR_SHAPE,
                          "ssl_ema_create: entry %d differs: target '%s' vs online '%s' (the "
                          "stores must be built identically)",
                          pairs, a->name, b->name);
            goto fail;
        }
        if (a->kind != b->kind) {
            ssl_set_error(SSL_ERR_SHAPE, "ssl_ema_create: target '%s' is %s, online '%s' is %s",
                          a->name, kind_name(a->kind), b->name, kind_name(b->kind));
            goto fail;
        }
        if (!ssl_same_shape(a->t, b->t)) {
            ssl_set_error(SSL_ERR_SHAPE, "ssl_ema_create: target '%s' %s vs online '%s' %s",
                          a->name, ssl_shape_str(a->t, sa, sizeof sa), b->name,
                          ssl_shape_str(b->t, sb, sizeof sb));
            goto fail;
        }
        size_t len = (size_t)a->t->numel;
        if (a->kind == SSL_PARAM_TRAINABLE)
            e->n_runs = add_run(e->runs, e->n_runs, a->offset, b->offset, len);
        else
            e->n_bruns = add_run(e->bruns, e->n_bruns, a->offset, b->offset, len);
        pairs++;
        it = next_entry(target, it + 1, tp, tl);
        io = next_entry(online, io + 1, op, ol);
    }
    if (pairs == 0) {
        ssl_set_error(SSL_ERR_SHAPE, "ssl_ema_create: no entries under target prefix '%s'", tp);
        goto fail;
    }
    return e;
fail:
    ssl_ema_free(e);
    return NULL;
}

void ssl_ema_free(ssl_ema_t *e)
{
    if (!e)
        return;
    free(e->runs);
    free(e->bruns);
    free(e);
}

static int check_unchanged(const ssl_ema_t *e, const char *fn)
{
    size_t tn, on, tb, ob;
    ssl_params_data(e->target, &tn);
    ssl_params_data(e->online, &on);
    ssl_params_buffers(e->target, &tb);
    ssl_params_buffers(e->online, &ob);
    if (ssl_params_count(e->target) != e->t_count || ssl_params_count(e->online) != e->o_count ||
        tn != e->t_n || on != e->o_n || tb != e->t_nb || ob != e->o_nb)
        return ssl_set_error(SSL_ERR_STATE, "%s: a store gained entries after ssl_ema_create", fn);
    return SSL_OK;
}

/* t = m t + (1 - m) o over each run; t and o may be the same store (never the same floats
 * unless the prefixes are equal, where the result is t again). */
static void ema_runs(float *t, const float *o, const ema_run_t *runs, int n_runs, double m)
{
    const float fm = (float)m, om = (float)(1.0 - m);
    for (int r = 0; r < n_runs; r++) {
        float *tr = t + runs[r].t_off;
        const float *orr = o + runs[r].o_off;
        int64_t len = (int64_t)runs[r].len;
#pragma omp parallel for schedule(static) if (len >= SSL_TRAIN_OMP_MIN)
        for (int64_t j = 0; j < len; j++)
            tr[j] = tr[j] * fm + om * orr[j];
    }
}

static void copy_runs(float *t, const float *o, const ema_run_t *runs, int n_runs)
{
    for (int r = 0; r < n_runs; r++)
        memmove(t + runs[r].t_off, o + runs[r].o_off, runs[r].len * sizeof(float));
}

int ssl_ema_update(ssl_ema_t *e, double m, int buffers)
{
    if (!e)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_ema_update: NULL");
    if (!(m >= 0 && m <= 1))
        return ssl_set_error(SSL_ERR_INVALID, "ssl_ema_update: momentum %g outside [0, 1]", m);
    if (buffers < SSL_EMA_BUFFERS_KEEP || buffers > SSL_EMA_BUFFERS_EMA)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_ema_update: unknown buffers mode %d", buffers);
    int st = check_unchanged(e, "ssl_ema_update");
    if (st)
        return st;
    ema_runs(ssl_params_data(e->target, NULL), ssl_params_data(e->online, NULL), e->runs, e->n_runs,
             m);
    float *tb = ssl_params_buffers(e->target, NULL), *ob = ssl_params_buffers(e->online, NULL);
    if (buffers == SSL_EMA_BUFFERS_COPY)
        copy_runs(tb, ob, e->bruns, e->n_bruns);
    else if (buffers == SSL_EMA_BUFFERS_EMA)
        ema_runs(tb, ob, e->bruns, e->n_bruns, m);
    return SSL_OK;
}

int ssl_ema_copy(ssl_ema_t *e)
{
    if (!e)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_ema_copy: NULL");
    int st = check_unchanged(e, "ssl_ema_copy");
    if (st)
        return st;
    copy_runs(ssl_params_data(e->target, NULL), ssl_params_data(e->online, NULL), e->runs,
              e->n_runs);
    copy_runs(ssl_params_buffers(e->target, NULL), ssl_params_buffers(e->online, NULL), e->bruns,
              e->n_bruns);
    return SSL_OK;
}

void ssl_ema_cfg_default(ssl_ema_cfg_t *cfg)
{
    if (SSL__IS_NULL(cfg, __func__))
        return;
    cfg->momentum = ssl_sched_cosine(0.996, 1.0);
    cfg->buffers = SSL_EMA_BUFFERS_KEEP;
}
