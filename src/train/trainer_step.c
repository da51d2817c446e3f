/* The trainer driven by the caller: one step on views (and masks) the caller made, the weights
 * of both networks loaded from a file, and the parameter stores to read. For users who bring
 * their own augmentation or loop, and for the step-parity tests against PyTorch. */
#include <stdio.h>
#include <string.h>

#include "trainer_internal.h"

/* The batch must carry what the config's views section makes: n_views views of (B, C, H, W). */
static int check_batch(const ssl_trainer_t *t, const ssl_batch_t *b)
{
    if (!b || b->size < 1)
        return ssl_set_error(SSL_ERR_INVALID, "train step: the batch is %s",
                             b ? "empty (size < 1)" : "NULL");
    const ssl_views_t *v = &t->rc.views;
    if (b->n_views != v->n_views)
        return ssl_set_error(SSL_ERR_SHAPE,
                             "train step: the batch has %d views, the config's "
                             "views section makes %d",
                             b->n_views, v->n_views);
    int64_t C = t->train_ds->c;
    for (int i = 0; i < b->n_views; i++) {
        const ssl_tensor_t *x = &b->views[i];
        int64_t want[4] = {b->size, C, v->view[i].out_h, v->view[i].out_w};
        int ok = x->ndim == 4 && x->data;
        for (int d = 0; ok && d < 4; d++)
            ok = x->shape[d] == want[d];
        if (!ok)
            return ssl_set_error(SSL_ERR_SHAPE,
                                 "train step: view %d is (%lld, %lld, %lld, %lld) "
                                 "with %d dims, expected (%lld, %lld, %lld, %lld)",
                                 i, (long long)(x->ndim > 0 ? x->shape[0] : 0),
                                 (long long)(x->ndim > 1 ? x->shape[1] : 0),
                                 (long long)(x->ndim > 2 ? x->shape[2] : 0),
                                 (long long)(x->ndim > 3 ? x->shape[3] : 0), x->ndim,
                                 (long long)want[0], (long long)want[1], (long long)want[2],
                                 (long long)want[3]);
    }
    if (b->masks && b->masks->batch != b->size)
        return ssl_set_error(SSL_ERR_SHAPE,
                             "train step: the masks are for %lld samples, the "
                             "batch has %lld",
                             (long long)b->masks->batch, (long long)b->size);
    return SSL_OK;
}

int ssl_trainer_step(ssl_trainer_t *t, const ssl_batch_t *b, double *loss)
{
    if (!t)
        return ssl_set_error(SSL_ERR_INVALID, "train step: no trainer");
    if (check_batch(t, b) != SSL_OK)
        return ssl_last_status();
    if (t->global_step >= t->total_steps)
        return ssl_set_error(SSL_ERR_STATE,
                             "train step: all %lld steps of the schedule are "
                             "done (train.epochs x steps per epoch)",
                             (long long)t->total_steps);
    double lr = 0, wd = 0, L = 0;
    if (ssl__trainer_step_next(t, b, &lr, &wd, &L) != SSL_OK)
        return ssl_last_status();
    if (t->global_step % t->steps_per_epoch == 0)
        t->epoch_done++;
    if (loss)
        *loss = L;
    return SSL_OK;
}

int ssl_trainer_observes(const ssl_trainer_t *t)
{
    return SSL__IS_NULL(t, __func__) ? SSL_ERR_INVALID : ssl__method_observes(t->method);
}

int ssl_trainer_observe(ssl_trainer_t *t, const ssl_batch_t *b)
{
    if (!t)
        return ssl_set_error(SSL_ERR_INVALID, "train observe: no trainer");
    if (check_batch(t, b) != SSL_OK)
        return ssl_last_status();
    ssl_ctx_reset(t->ctx);
    return ssl__method_observe(t->method, t->ctx, b);
}

/* How many tensors of f are named "<prefix>...". */
static int count_prefixed(const ssl_st_t *f, const char *prefix, const char **first)
{
    int n = 0;
    for (int i = 0; i < ssl_st_count(f); i++)
        if (!strncmp(ssl_st_tensor(f, i)->name, prefix, strlen(prefix)) && n++ == 0 && first)
            *first = ssl_st_tensor(f, i)->name;
    return n;
}

int ssl_trainer_load_weights(ssl_trainer_t *t, const char *path, const char *prefix)
{
    if (!t || !path)
        return ssl_set_error(SSL_ERR_INVALID, "load weights: no trainer or path");
    prefix = prefix ? prefix : "";
    ssl_st_t *f = ssl_st_open(path);
    if (!f)
        return ssl_last_status();
    ssl_params_t *stores[2] = {t->online, t->target};
    int loaded = 0, st = SSL_OK;
    for (int s = 0; s < 2 && st == SSL_OK; s++) {
        if (ssl_params_count(stores[s]) == 0)
            continue;
        ssl_st_report_t rep;
        memset(&rep, 0, sizeof rep);
        st = ssl_st_load_params(f, stores[s], prefix, SSL_ST_ALLOW_UNEXPECTED, &rep);
        loaded += rep.n_loaded;
        ssl_st_report_free(&rep);
    }
    const char *any = NULL;
    int n = count_prefixed(f, prefix, &any);
    if (st == SSL_OK && n != loaded) {
        /* a tensor neither store has: name the first one */
        const char *bad = NULL;
        for (int i = 0; i < ssl_st_count(f) && !bad; i++) {
            const char *name = ssl_st_tensor(f, i)->name;
            if (strncmp(name, prefix, strlen(prefix)))
                continue;
            const char *rest = name + strlen(prefix);
            if (!ssl_params_get(t->online, rest) && !ssl_params_get(t->target, rest))
                bad = name;
        }
        st = ssl_set_error(SSL_ERR_FORMAT,
                           "%s: %d tensor%s under '%s' match no parameter of "
                           "this config (first: '%s')",
                           path, n - loaded, n - loaded == 1 ? "" : "s", prefix,
                           bad   ? bad
                           : any ? any
                                 : "?");
    }
    ssl_st_close(f);
    return st;
}

ssl_params_t *ssl_trainer_params(ssl_trainer_t *t, int target)
{
    if (SSL__IS_NULL(t, __func__))
        return NULL;
    return target ? t->target : t->online;
}

int64_t ssl_trainer_global_step(const ssl_trainer_t *t)
{
    return SSL__IS_NULL(t, __func__) ? SSL_ERR_INVALID : t->global_step;
}
int64_t ssl_trainer_total_steps(const ssl_trainer_t *t)
{
    return SSL__IS_NULL(t, __func__) ? SSL_ERR_INVALID : t->total_steps;
}
