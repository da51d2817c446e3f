/* Threaded batch loader with two batch slots (double buffering).
 *
 * A batch is a list of work items: one per sample (all its views) plus one for the masks. The
 * worker threads, and the caller while it waits, claim items of the oldest unfinished batch
 * under one mutex. An item's result depends only on (seed, epoch, dataset index, view) or
 * (seed, epoch, batch index), never on the thread that ran it, so batches are bit-identical for
 * any number of workers. While the caller holds batch n, the other slot is being filled with
 * batch n + 1; handing back slot n (the next call) queues batch n + 2 in it.
 *
 * Cancellation (a new epoch, or free) stops new claims and waits for the items in progress,
 * so no worker ever writes into a slot after it has been reused. */
#define _POSIX_C_SOURCE 200809L
#include "data_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_SHUFFLE 0x73687566666c65ull /* "shuffle" */
#define MAX_WORKERS 256

enum { SLOT_FREE = 0, SLOT_FILLING, SLOT_READY };

typedef struct slot {
    int state;
    int64_t batch_index, size;
    int64_t next_item, n_items, done_items;
    int status;        /* first error of an item, SSL_OK otherwise */
    char errmsg[1024];
    ssl_batch_t batch;
    float *view_data[SSL_MAX_VIEWS]; /* (batch_size, C, H_v, W_v) */
    int32_t *labels;
    int64_t *indices;
    int64_t *global_indices; /* (batch_size) the whole batch's, for its masks */
    const char **captions;
    ssl_masks_t masks;       /* of the whole batch */
    ssl_masks_t shard_masks; /* this shard's rows of masks (pointers into it) */
} slot_t;

struct ssl_loader {
    const ssl_dataset_t *ds;
    ssl_loader_opts_t o;
    int64_t n_batches;
    int64_t *perm;
    int shard, n_shards; /* ssl_loader_set_shard: this process's part of every batch */
    int64_t epoch;
    bool started;
    int64_t next_issue, next_return;
    int held; /* slot handed to the caller, or -1 */
    int failed;
    char errmsg[1024];
    slot_t slot[2];
    int64_t view_elems[SSL_MAX_VIEWS];
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    pthread_t *threads;
    int n_threads;
    bool stop, cancel;
    int busy; /* items being processed right now */
    ssl_aug_ws_t *caller_ws;
};

void ssl_loader_opts_default(ssl_loader_opts_t *o)
{
    if (SSL__IS_NULL(o, __func__))
        return;
    memset(o, 0, sizeof *o);
    o->batch_size = 64;
    o->shuffle = 1;
    o->drop_last = 1;
    o->seed = 0;
    o->n_workers = 2;
    ssl_views_simclr(&o->views, 2, 32);
    ssl_mask_opts_default(&o->mask, SSL_MASK_NONE, 0, 0);
    o->patch_size = 16;
}

int64_t ssl_loader_num_batches(const ssl_loader_t *l)
{
    return SSL__IS_NULL(l, __func__) ? SSL_ERR_INVALID : l->n_batches;
}

/* ---------------------------------------------------------------- work items */

/* dst: rows [shard B, (shard + 1) B) of the whole batch's masks src (views into its lists). */
static void shard_rows(const ssl_masks_t *src, ssl_masks_t *dst, int shard, int64_t B)
{
    *dst = *src;
    int64_t r0 = (int64_t)shard * B;
    dst->batch = B;
    if (src->keep)
        dst->keep = src->keep + r0 * src->n_keep;
    if (src->masked)
        dst->masked = src->masked + r0 * src->n_masked;
    if (src->targets)
        dst->targets = src->targets + r0 * src->n_targets * src->n_target;
    if (src->counts)
        dst->counts = src->counts + r0 * src->n_views;
    dst->capacity_batch = B;
}

static void run_item(ssl_loader_t *l, slot_t *s, int64_t item, ssl_aug_ws_t *ws)
{
    const ssl_dataset_t *ds = l->ds;
    int rc = SSL_OK;
    if (!ws) {
        rc = ssl_set_error(SSL_ERR_NOMEM, "loader: out of memory for a worker workspace");
    } else if (item < s->size) {
        int64_t idx = s->indices[item];
        const uint8_t *src = ds->images + (size_t)idx * (size_t)(ds->c * ds->h * ds->w);
        /* Each view is built in the thread's scratch (its ~10 passes stay in cache), then
         * copied once into the batch. */
        for (int v = 0; v < l->o.views.n_views && rc == SSL_OK; v++) {
            size_t bytes = sizeof(float) * (size_t)l->view_elems[v];
            float *tmp = ssl__ws_get(ws, SSL__WS_VIEW, bytes);
            rc = tmp ? ssl_augment_view(&l->o.views.view[v], src, ds->c, ds->h, ds->w, l->o.seed,
                                        (uint64_t)l->epoch, idx, v, tmp, ws)
                     : SSL_ERR_NOMEM;
            if (rc == SSL_OK)
                memcpy(s->view_data[v] + item * l->view_elems[v], tmp, bytes);
        }
    } else {
        /* the masks of the whole batch (I-JEPA's are truncated to the batch's shortest), then
         * this shard's rows */
        int64_t whole = s->size * l->n_shards;
        rc = ssl_masks_generate(&s->masks, &l->o.mask, whole, s->global_indices, l->o.seed,
                                (uint64_t)l->epoch, s->batch_index);
        if (rc == SSL_OK && l->n_shards > 1)
            shard_rows(&s->masks, &s->shard_masks, l->shard, s->size);
    }
    if (rc != SSL_OK) {
        pthread_mutex_lock(&l->mu);
        if (s->status == SSL_OK) {
            s->status = rc;
            snprintf(s->errmsg, sizeof s->errmsg, "loader batch %lld: %s",
                     (long long)s->batch_index, ssl_last_error());
        }
        pthread_mutex_unlock(&l->mu);
    }
}

/* Under the lock: the unfinished slot with the lowest batch index that has items to claim. */
static slot_t *claimable(ssl_loader_t *l)
{
    slot_t *best = NULL;
    for (int i = 0; i < 2; i++) {
        slot_t *s = &l->slot[i];
        if (s->state == SLOT_FILLING && s->next_item < s->n_items &&
            (!best || s->batch_index < best->batch_index))
            best = s;
    }
    return best;
}

/* Under the lock: mark one item of s done (and the slot ready when it was the last). */
static void finish_item(ssl_loader_t *l, slot_t *s)
{
    l->busy--;
    s->done_items++;
    if (s->done_items == s->n_items)
        s->state = SLOT_READY;
    pthread_cond_broadcast(&l->done_cv);
}

static void *worker_main(void *arg)
{
    ssl_loader_t *l = arg;
    ssl_aug_ws_t *ws = ssl_aug_ws_create();
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        slot_t *s = l->cancel ? NULL : claimable(l);
        if (!s) {
            pthread_cond_wait(&l->work_cv, &l->mu);
            continue;
        }
        int64_t item = s->next_item++;
        l->busy++;
        pthread_mutex_unlock(&l->mu);
        run_item(l, s, item, ws);
        pthread_mutex_lock(&l->mu);
        finish_item(l, s);
    }
    pthread_mutex_unlock(&l->mu);
    ssl_aug_ws_free(ws);
    return NULL;
}

/* ---------------------------------------------------------------- slots */

/* Under the lock: queue the next batches into free slots. */
static void issue(ssl_loader_t *l)
{
    for (int i = 0; i < 2 && l->next_issue < l->n_batches; i++) {
        slot_t *s = &l->slot[i];
        if (s->state != SLOT_FREE || (l->held == i))
            continue;
        int64_t b = l->next_issue++;
        int64_t B = l->o.batch_size, first = b * B;
        int64_t whole = first + B <= l->ds->n ? B : l->ds->n - first;
        /* a shard takes its equal part of the whole batch (drop_last: whole == B) */
        int64_t size = whole / l->n_shards, off = first + (int64_t)l->shard * size;
        for (int64_t k = 0; k < whole; k++)
            s->global_indices[k] = l->perm[first + k];
        s->batch_index = b;
        s->size = size;
        s->status = SSL_OK;
        s->errmsg[0] = 0;
        for (int64_t k = 0; k < size; k++) {
            int64_t idx = l->perm[off + k];
            s->indices[k] = idx;
            s->labels[k] = l->ds->labels[idx];
            if (s->captions)
                s->captions[k] = l->ds->captions[idx];
        }
        s->next_item = 0;
        s->done_items = 0;
        s->n_items = size + (l->o.mask.kind != SSL_MASK_NONE ? 1 : 0);
        s->state = SLOT_FILLING;
        ssl_batch_t *bt = &s->batch;
        bt->epoch = l->epoch;
        bt->index = b;
        bt->size = size;
        if (bt->masks)
            bt->masks = l->n_shards > 1 ? &s->shard_masks : &s->masks;
        for (int v = 0; v < l->o.views.n_views; v++)
            bt->views[v].shape[0] = size;
        for (int v = 0; v < l->o.views.n_views; v++)
            bt->views[v].numel = size * l->view_elems[v];
    }
    pthread_cond_broadcast(&l->work_cv);
}

/* Under the lock: stop claims, wait for items in progress, free every slot. */
static void cancel_all(ssl_loader_t *l)
{
    l->cancel = true;
    while (l->busy > 0)
        pthread_cond_wait(&l->done_cv, &l->mu);
    for (int i = 0; i < 2; i++)
        l->slot[i].state = SLOT_FREE;
    l->held = -1;
    l->cancel = false;
}

/* ---------------------------------------------------------------- public */

static int check_opts(const ssl_dataset_t *ds, const ssl_loader_opts_t *o, ssl_mask_opts_t *mask)
{
    if (!ds || !ds->images || ds->n <= 0)
        return ssl_set_error(SSL_ERR_INVALID, "loader: the dataset is empty");
    if (ds->c != 1 && ds->c != 3)
        return ssl_set_error(SSL_ERR_INVALID, "loader: dataset has %lld channels (1 or 3)",
                             (long long)ds->c);
    if (o->batch_size <= 0 || o->batch_size > (1 << 24))
        return ssl_set_error(SSL_ERR_CONFIG, "loader.batch_size = %lld must be in [1, 2^24]",
                             (long long)o->batch_size);
    if (o->drop_last && ds->n < o->batch_size)
        return ssl_set_error(SSL_ERR_CONFIG, "loader: %lld samples make no full batch of %lld "
                             "with drop_last", (long long)ds->n, (long long)o->batch_size);
    if (o->n_workers < 0 || o->n_workers > MAX_WORKERS)
        return ssl_set_error(SSL_ERR_CONFIG, "loader.n_workers = %d must be in [0, %d]",
                             o->n_workers, MAX_WORKERS);
    if (o->views.n_views < 1 || o->views.n_views > SSL_MAX_VIEWS)
        return ssl_set_error(SSL_ERR_CONFIG, "loader.views.n_views = %d must be in [1, %d]",
                             o->views.n_views, SSL_MAX_VIEWS);
    for (int v = 0; v < o->views.n_views; v++) {
        int rc = ssl_view_aug_validate(&o->views.view[v]);
        if (rc != SSL_OK) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", ssl_last_error());
            return ssl_set_error(rc, "loader view %d: %s", v, msg);
        }
    }
    *mask = o->mask;
    if (mask->kind != SSL_MASK_NONE && (mask->grid_h == 0 || mask->grid_w == 0)) {
        const ssl_view_aug_t *v0 = &o->views.view[0];
        if (o->patch_size <= 0 || v0->out_h % o->patch_size || v0->out_w % o->patch_size)
            return ssl_set_error(SSL_ERR_CONFIG, "loader.patch_size = %d must divide view 0's "
                                 "size %d x %d", o->patch_size, v0->out_h, v0->out_w);
        mask->grid_h = v0->out_h / o->patch_size;
        mask->grid_w = v0->out_w / o->patch_size;
    }
    return ssl_mask_opts_validate(mask);
}

ssl_loader_t *ssl_loader_create(const ssl_dataset_t *ds, const ssl_loader_opts_t *o)
{
    ssl_mask_opts_t mask;
    if (!o) {
        ssl_set_error(SSL_ERR_INVALID, "loader: options are NULL");
        return NULL;
    }
    if (check_opts(ds, o, &mask) != SSL_OK)
        return NULL;
    ssl_loader_t *l = calloc(1, sizeof *l);
    if (!l) {
        ssl_set_error(SSL_ERR_NOMEM, "out of memory for a loader");
        return NULL;
    }
    l->ds = ds;
    l->o = *o;
    l->n_shards = 1;
    l->o.mask = mask;
    l->held = -1;
    int64_t B = o->batch_size;
    l->n_batches = o->drop_last ? ds->n / B : (ds->n + B - 1) / B;
    l->perm = malloc(sizeof(int64_t) * (size_t)ds->n);
    l->caller_ws = ssl_aug_ws_create();
    bool ok = l->perm && l->caller_ws;
    for (int v = 0; v < o->views.n_views; v++)
        l->view_elems[v] = ds->c * o->views.view[v].out_h * o->views.view[v].out_w;
    for (int i = 0; i < 2 && ok; i++) {
        slot_t *s = &l->slot[i];
        s->labels = malloc(sizeof(int32_t) * (size_t)B);
        s->indices = malloc(sizeof(int64_t) * (size_t)B);
        s->global_indices = malloc(sizeof(int64_t) * (size_t)B);
        ok = s->labels && s->indices && s->global_indices;
        if (ok && ds->captions)
            ok = (s->captions = malloc(sizeof(char *) * (size_t)B)) != NULL;
        for (int v = 0; v < o->views.n_views && ok; v++) {
            s->view_data[v] = malloc(sizeof(float) * (size_t)(B * l->view_elems[v]));
            ok = s->view_data[v] != NULL;
        }
        if (ok && mask.kind != SSL_MASK_NONE)
            ok = ssl_masks_alloc(&s->masks, &mask, B) == SSL_OK;
        if (!ok)
            break;
        ssl_batch_t *bt = &s->batch;
        bt->n_views = o->views.n_views;
        for (int v = 0; v < o->views.n_views; v++) {
            ssl_tensor_t *t = &bt->views[v];
            t->ndim = 4;
            t->shape[0] = B;
            t->shape[1] = ds->c;
            t->shape[2] = o->views.view[v].out_h;
            t->shape[3] = o->views.view[v].out_w;
            t->numel = B * l->view_elems[v];
            t->data = s->view_data[v];
            t->node = -1;
        }
        bt->labels = s->labels;
        bt->indices = s->indices;
        bt->captions = s->captions;
        bt->masks = mask.kind != SSL_MASK_NONE ? &s->masks : NULL;
    }
    if (!ok) {
        ssl_loader_free(l);
        ssl_set_error(SSL_ERR_NOMEM, "out of memory for loader batches of %lld", (long long)B);
        return NULL;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work_cv, NULL);
    pthread_cond_init(&l->done_cv, NULL);
    l->threads = calloc((size_t)(o->n_workers ? o->n_workers : 1), sizeof(pthread_t));
    if (!l->threads) {
        ssl_loader_free(l);
        ssl_set_error(SSL_ERR_NOMEM, "out of memory for loader threads");
        return NULL;
    }
    for (int i = 0; i < o->n_workers; i++) {
        if (pthread_create(&l->threads[i], NULL, worker_main, l) != 0) {
            ssl_loader_free(l);
            ssl_set_error(SSL_ERR_IO, "loader: cannot start worker thread %d", i);
            return NULL;
        }
        l->n_threads++;
    }
    return l;
}

void ssl_loader_free(ssl_loader_t *l)
{
    if (!l)
        return;
    if (l->threads) { /* the sync objects exist once threads was allocated */
        pthread_mutex_lock(&l->mu);
        cancel_all(l);
        l->stop = true;
        pthread_cond_broadcast(&l->work_cv);
        pthread_mutex_unlock(&l->mu);
        for (int i = 0; i < l->n_threads; i++)
            pthread_join(l->threads[i], NULL);
        free(l->threads);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->work_cv);
        pthread_cond_destroy(&l->done_cv);
    }
    for (int i = 0; i < 2; i++) {
        slot_t *s = &l->slot[i];
        for (int v = 0; v < SSL_MAX_VIEWS; v++)
            free(s->view_data[v]);
        free(s->labels);
        free(s->indices);
        free(s->global_indices);
        free(s->captions);
        ssl_masks_free(&s->masks);
    }
    free(l->perm);
    ssl_aug_ws_free(l->caller_ws);
    free(l);
}

int ssl_loader_set_shard(ssl_loader_t *l, int shard, int n_shards)
{
    if (!l)
        return ssl_set_error(SSL_ERR_INVALID, "loader is NULL");
    if (n_shards < 1 || shard < 0 || shard >= n_shards)
        return ssl_set_error(SSL_ERR_INVALID, "loader: shard %d of %d is out of range", shard,
                             n_shards);
    if (l->o.batch_size % n_shards)
        return ssl_set_error(SSL_ERR_CONFIG, "loader: the batch size %lld is not a multiple of "
                             "the %d shards", (long long)l->o.batch_size, n_shards);
    if (n_shards > 1 && !l->o.drop_last)
        return ssl_set_error(SSL_ERR_CONFIG, "loader: shards need drop_last (every batch whole)");
    pthread_mutex_lock(&l->mu);
    cancel_all(l); /* batches in flight were cut for the old shards */
    l->shard = shard;
    l->n_shards = n_shards;
    l->started = false;
    pthread_mutex_unlock(&l->mu);
    return SSL_OK;
}

int ssl_loader_start_epoch(ssl_loader_t *l, int64_t epoch, int64_t first_batch)
{
    if (!l)
        return ssl_set_error(SSL_ERR_INVALID, "loader is NULL");
    if (epoch < 0 || first_batch < 0 || first_batch > l->n_batches)
        return ssl_set_error(SSL_ERR_INVALID, "loader: epoch %lld / first batch %lld out of range "
                             "(%lld batches per epoch)", (long long)epoch, (long long)first_batch,
                             (long long)l->n_batches);
    pthread_mutex_lock(&l->mu);
    cancel_all(l);
    int64_t n = l->ds->n;
    for (int64_t i = 0; i < n; i++)
        l->perm[i] = i;
    if (l->o.shuffle) { /* Fisher-Yates from the end; j uniform in [0, i] */
        uint64_t st = ssl_rng_stream(TAG_SHUFFLE, (uint64_t)epoch, 0);
        for (int64_t i = n - 1; i > 0; i--) {
            uint64_t u = (uint64_t)ssl_rng_u32(l->o.seed, st, 2 * (uint64_t)i) << 32 |
                         ssl_rng_u32(l->o.seed, st, 2 * (uint64_t)i + 1);
            int64_t j = (int64_t)(u % (uint64_t)(i + 1));
            int64_t t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
    }
    /* the per-epoch reminder of the bad files the reader named once (with counts, not names) */
    if (l->ds->n_skipped > 0)
        ssl_logf(SSL_LOG_WARN,
                 "epoch %lld: %lld images; %lld unreadable files were left out when the dataset "
                 "was read (the first ones are named above)",
                 (long long)epoch + 1, (long long)n, (long long)l->ds->n_skipped);
    l->epoch = epoch;
    l->started = true;
    l->failed = 0;
    l->next_issue = l->next_return = first_batch;
    issue(l);
    pthread_mutex_unlock(&l->mu);
    return SSL_OK;
}

const ssl_batch_t *ssl_loader_next(ssl_loader_t *l)
{
    if (!l) {
        ssl_set_error(SSL_ERR_INVALID, "loader is NULL");
        return NULL;
    }
    pthread_mutex_lock(&l->mu);
    if (!l->started) {
        pthread_mutex_unlock(&l->mu);
        ssl_set_error(SSL_ERR_STATE, "loader: call ssl_loader_start_epoch() before next()");
        return NULL;
    }
    if (l->held >= 0) {
        l->slot[l->held].state = SLOT_FREE;
        l->held = -1;
    }
    if (l->failed) {
        pthread_mutex_unlock(&l->mu);
        ssl_set_error(l->failed, "%s", l->errmsg);
        return NULL;
    }
    issue(l);
    if (l->next_return >= l->n_batches) {
        pthread_mutex_unlock(&l->mu);
        ssl_clear_error();
        return NULL;
    }
    slot_t *s = NULL;
    for (int i = 0; i < 2; i++)
        if (l->slot[i].state != SLOT_FREE && l->slot[i].batch_index == l->next_return)
            s = &l->slot[i];
    if (!s) { /* issue() always queues next_return: it is the oldest batch not handed out */
        pthread_mutex_unlock(&l->mu);
        ssl_set_error(SSL_ERR_STATE, "loader: batch %lld is not queued", (long long)l->next_return);
        return NULL;
    }
    while (s->state != SLOT_READY) {
        if (s->next_item < s->n_items) { /* help instead of waiting */
            int64_t item = s->next_item++;
            l->busy++;
            pthread_mutex_unlock(&l->mu);
            run_item(l, s, item, l->caller_ws);
            pthread_mutex_lock(&l->mu);
            finish_item(l, s);
        } else {
            pthread_cond_wait(&l->done_cv, &l->mu);
        }
    }
    l->next_return++;
    l->held = (int)(s - l->slot);
    if (s->status != SSL_OK) {
        l->failed = s->status;
        snprintf(l->errmsg, sizeof l->errmsg, "%s", s->errmsg);
        s->state = SLOT_FREE;
        l->held = -1;
        pthread_mutex_unlock(&l->mu);
        ssl_set_error(l->failed, "%s", l->errmsg);
        return NULL;
    }
    issue(l);
    pthread_mutex_unlock(&l->mu);
    return &s->batch;
}
