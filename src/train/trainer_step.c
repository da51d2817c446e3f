/* The trainer driven by the caller: one step on views (and masks) the caller made, the weights
 * of both networks loaded from a file, and the parameter stores to read. For users who bring
 * their own augmentation or loop, and for the step-parity tests against PyTorch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
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

/* Several ranks: each passes its part of the batch, and the parts must be equal (the gathers and
 * SyncBN's sums move the same count from every rank; the mean of the ranks' losses is the
 * batch's only then). Every rank learns every size, so all return the same error. */
static int check_parts(const ssl_trainer_t *t, const ssl_batch_t *b)
{
    if (t->world < 2)
        return SSL_OK;
    uint64_t *all = malloc(sizeof *all * (size_t)t->world);
    if (!all)
        return ssl_set_error(SSL_ERR_NOMEM, "train step: out of memory");
    int st = ssl__dist_allgather_u64((uint64_t)b->size, all);
    for (int r = 0; r < t->world && st == SSL_OK; r++)
        if (all[r] == 0) /* see check_batch in ssl_trainer_step */
            st = ssl_set_error(SSL_ERR_INVALID,
                               "train step: rank %d refused its batch (its own error says why)",
                               r);
        else if (all[r] != all[0])
            st = ssl_set_error(SSL_ERR_INVALID,
                               "train step: rank %d passed a batch of %llu samples, rank 0 one "
                               "of %llu: with several ranks each passes an equal part of the "
                               "batch",
                               r, (unsigned long long)all[r], (unsigned long long)all[0]);
    free(all);
    return st;
}

int ssl_trainer_step(ssl_trainer_t *t, const ssl_batch_t *b, double *loss)
{
    if (!t)
        return ssl_set_error(SSL_ERR_INVALID, "train step: no trainer");
    /* a bad batch on one rank only would leave the others in the size check: both are checked
     * before any collective, the sizes by all ranks together */
    int bst = check_batch(t, b);
    if (t->world > 1) { /* a rank whose batch is bad joins with size 0, keeping its error */
        char why[512];
        snprintf(why, sizeof why, "%s", bst == SSL_OK ? "" : ssl_last_error());
        ssl_batch_t none = {0};
        int pst = check_parts(t, bst == SSL_OK ? b : &none);
        if (bst != SSL_OK)
            return ssl_set_error(bst, "%s", why);
        if (pst != SSL_OK)
            return pst;
    }
    if (bst != SSL_OK)
        return bst;
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
