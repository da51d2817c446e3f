/* Gradient averaging over the ranks in buckets, overlapping backward (as PyTorch DDP).
 *
 * The trainable parameters are grouped, in reverse order of registration (about the order
 * backward finishes them), into buckets of consecutive parameters of up to SSL_DIST_BUCKET_BYTES;
 * the store keeps their gradients in one buffer, so a bucket is one contiguous range. core's
 * backward reports each parameter whose gradient is final (comm.h, ssl_grad_ready_fn); when a
 * bucket's last parameter is reported its sum over the ranks starts (non-blocking) while
 * backward goes on. The buckets are started in the order they become ready, the same on every
 * rank (the same tape); after backward, ssl__dist_grads_finish starts those the step did not
 * reach (in bucket order), waits for all and divides by the number of ranks. */
#define _POSIX_C_SOURCE 200809L
#include "dist_grads.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"

typedef struct bucket {
    size_t lo, hi;  /* gradient range [lo, hi) in floats */
    int n_params;   /* parameters in it */
    int n_ready;    /* reported this step */
    int started;
} bucket_t;

typedef struct pmap {
    const ssl_tensor_t *t;
    int bucket;
} pmap_t;

struct ssl_dist_grads {
    ssl_params_t *p;
    bucket_t *b;
    int n_b;
    pmap_t *map; /* sorted by tensor address */
    int n_map;
    int status;  /* first error of a start during backward */
    int64_t n_started_early;
    double t_attach; /* when this step's backward began */
    ssl_dist_grads_stats_t stats;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_map(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const pmap_t *)a)->t, y = (uintptr_t)((const pmap_t *)b)->t;
    return x < y ? -1 : x > y;
}

ssl_dist_grads_t *ssl__dist_grads_create(ssl_params_t *p, size_t bucket_bytes)
{
    if (ssl__dist_size() < 2)
        return NULL; /* one process: nothing to average */
    ssl_dist_grads_t *g = calloc(1, sizeof *g);
    int np = ssl_params_count(p);
    if (!g || !(g->b = calloc((size_t)np + 1, sizeof *g->b)) ||
        !(g->map = calloc((size_t)np + 1, sizeof *g->map))) {
        ssl__dist_grads_free(g);
        ssl_set_error(SSL_ERR_NOMEM, "out of memory for the gradient buckets");
        return NULL;
    }
    g->p = p;
    size_t cap = bucket_bytes / sizeof(float);
    bucket_t *cur = NULL;
    for (int i = np - 1; i >= 0; i--) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        if (in->kind != SSL_PARAM_TRAINABLE)
            continue;
        size_t lo = in->offset, hi = in->offset + (size_t)in->t->numel;
        /* the store lays parameters out in order: going backwards, each ends where the next
         * begins, so a bucket grows downwards */
        if (!cur || cur->lo != hi || cur->hi - lo > cap) {
            cur = &g->b[g->n_b++];
            cur->hi = hi;
        }
        cur->lo = lo;
        cur->n_params++;
        g->map[g->n_map++] = (pmap_t){in->t, (int)(cur - g->b)};
    }
    qsort(g->map, (size_t)g->n_map, sizeof *g->map, cmp_map);
    return g;
}

void ssl__dist_grads_free(ssl_dist_grads_t *g)
{
    if (!g)
        return;
    free(g->b);
    free(g->map);
    free(g);
}

static int start(ssl_dist_grads_t *g, bucket_t *b)
{
    b->started = 1;
    float *grad = ssl_params_grad(g->p, NULL);
    return ssl__dist_isum_f32(grad + b->lo, (int64_t)(b->hi - b->lo));
}

static void on_ready(void *user, ssl_tensor_t *leaf)
{
    ssl_dist_grads_t *g = user;
    pmap_t key = {leaf, 0};
    const pmap_t *m = bsearch(&key, g->map, (size_t)g->n_map, sizeof key, cmp_map);
    if (!m) /* an input or a parameter of another store (the target) */
        return;
    bucket_t *b = &g->b[m->bucket];
    if (++b->n_ready == b->n_params && !b->started) {
        int st = start(g, b);
        if (st != SSL_OK && g->status == SSL_OK)
            g->status = st;
        g->n_started_early++;
        g->stats.floats_early += (int64_t)(b->hi - b->lo);
    }
    ssl__dist_progress();
}

void ssl__dist_grads_attach(ssl_dist_grads_t *g, ssl_ctx_t *ctx)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_b; i++)
        g->b[i].n_ready = g->b[i].started = 0;
    g->status = SSL_OK;
    g->n_started_early = 0;
    g->t_attach = now_s();
    ssl__ctx_set_grad_ready(ctx, on_ready, g);
}

int ssl__dist_grads_finish(ssl_dist_grads_t *g, ssl_ctx_t *ctx)
{
    if (!g)
        return SSL_OK;
    ssl__ctx_set_grad_ready(ctx, NULL, NULL);
    double t0 = now_s();
    g->stats.steps++;
    g->stats.backward_s += t0 - g->t_attach;
    g->stats.floats_done += ssl__dist_done_floats();
    int st = g->status;
    for (int i = 0; i < g->n_b && st == SSL_OK; i++) {
        g->stats.floats += (int64_t)(g->b[i].hi - g->b[i].lo);
        if (!g->b[i].started)
            st = start(g, &g->b[i]);
    }
    int wst = ssl__dist_wait_all();
    if (st != SSL_OK || wst != SSL_OK)
        return st != SSL_OK ? st : wst;
    size_t n = 0;
    float *grad = ssl_params_grad(g->p, &n);
    const float inv = 1.0f / (float)ssl__dist_size();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        grad[i] *= inv;
    g->stats.wait_s += now_s() - t0;
    return SSL_OK;
}

void ssl__dist_grads_stats(const ssl_dist_grads_t *g, ssl_dist_grads_stats_t *s)
{
    if (g)
        *s = g->stats;
    else
        memset(s, 0, sizeof *s);
}

int ssl__dist_grads_buckets(const ssl_dist_grads_t *g, int64_t *early)
{
    if (early)
        *early = g ? g->n_started_early : 0;
    return g ? g->n_b : 0;
}
