/* The generative methods' evaluation during training: the eval split's likelihood bound (nats
 * per image and bits per dimension) and an epoch's pictures (reconstructions, samples). */
#include "trainer_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct nll_state {
    ssl_method_t *m;
    uint64_t seed;
    double sum;
    ssl_loss_parts_t parts; /* sums over the images */
} nll_state_t;

static int nll_batch(ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t i0, void *user)
{
    nll_state_t *s = user;
    double sum = 0;
    ssl_loss_parts_t p = {0};
    if (ssl__method_nll(s->m, ctx, x, i0, s->seed, &sum, &p) != SSL_OK)
        return ssl_last_status();
    s->sum += sum;
    s->parts.n = p.n;
    for (int i = 0; i < p.n; i++) {
        s->parts.name[i] = p.name[i];
        s->parts.value[i] += p.value[i];
    }
    return SSL_OK;
}

static int test_batch(ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t i0, void *user)
{
    return ssl__method_test_batch(user, ctx, x, i0 == 0);
}

int ssl__trainer_nll(ssl_trainer_t *t, int64_t limit, ssl__trainer_nll_t *r)
{
    memset(r, 0, sizeof *r);
    const ssl_dataset_t *ds = t->eval_ds;
    int has_nll = ssl__method_has_nll(t->method), has_test = ssl__method_has_test(t->method);
    if ((!has_nll && !has_test) || !ds || ds->n < 1)
        return SSL_OK;
    int64_t n = limit > 0 && limit < ds->n ? limit : ds->n;
    if (has_test && (ssl__each_batch(t->method, t->ctx, &t->rc.eval_view, ds, n, 0, 0, test_batch,
                                     t->method) != SSL_OK ||
                     ssl__method_test_result(t->method, &r->metrics) != SSL_OK))
        return ssl_last_status();
    r->n = n;
    if (!has_nll)
        return SSL_OK;
    nll_state_t s = {t->method, t->rc.seed, 0, {0}};
    if (ssl__each_batch(t->method, t->ctx, &t->rc.eval_view, ds, n, 0, 0, nll_batch, &s) != SSL_OK)
        return ssl_last_status();
    int64_t dims = ds->c * (int64_t)t->rc.eval_view.out_h * t->rc.eval_view.out_w;
    r->has_nll = 1;
    r->nats = s.sum / (double)n;
    r->bits_per_dim = r->nats / ((double)dims * log(2.0));
    r->parts = s.parts;
    for (int i = 0; i < r->parts.n; i++)
        r->parts.value[i] = (float)(r->parts.value[i] / (double)n);
    return SSL_OK;
}

/* the first images of the eval split through the eval transform, (n, C, S, S) */
static ssl_tensor_t *eval_images(ssl_trainer_t *t, int64_t n)
{
    const ssl_dataset_t *ds = t->eval_ds;
    const ssl_view_aug_t *a = &t->rc.eval_view;
    int64_t C = ds->c, S = a->out_h;
    ssl_tensor_t *x = ssl_tensor_4d(t->ctx, n, C, S, S);
    ssl_aug_ws_t *ws = ssl_aug_ws_create();
    int st = x && ws ? SSL_OK : ssl_last_status();
    for (int64_t i = 0; i < n && st == SSL_OK; i++)
        st = ssl_augment_view(a, ds->images + i * C * ds->h * ds->w, ds->c, ds->h, ds->w, 0, 0, i,
                              0, x->data + i * C * S * S, ws);
    ssl_aug_ws_free(ws);
    return st == SSL_OK ? x : NULL;
}

/* rows of 8 originals, each followed by the row of their reconstructions */
static ssl_tensor_t *pair_rows(ssl_ctx_t *ctx, const ssl_tensor_t *x, const ssl_tensor_t *r)
{
    int64_t n = x->shape[0], per = x->numel / n, cols = 8;
    ssl_tensor_t *g = ssl_tensor_4d(ctx, 2 * n, x->shape[1], x->shape[2], x->shape[3]);
    if (!g)
        return NULL;
    for (int64_t i = 0; i < n; i++) {
        int64_t row = i / cols, col = i % cols;
        memcpy(g->data + ((2 * row) * cols + col) * per, x->data + i * per,
               (size_t)per * sizeof(float));
        memcpy(g->data + ((2 * row + 1) * cols + col) * per, r->data + i * per,
               (size_t)per * sizeof(float));
    }
    return g;
}

int ssl__trainer_pictures(ssl_trainer_t *t, int64_t epoch)
{
    enum { N_RECON = 32 };
    if (!ssl__method_has_pictures(t->method) || !t->run_dir[0] || t->rank != 0)
        return SSL_OK;
    char dir[1100], path[1200];
    snprintf(dir, sizeof dir, "%s/pictures", t->run_dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ssl_set_error(SSL_ERR_IO, "pictures: cannot create '%s'", dir);
    ssl_ctx_reset(t->ctx);
    int prev = ssl_ctx_set_grad(t->ctx, 0);
    int64_t nx = t->eval_ds ? (t->eval_ds->n < N_RECON ? t->eval_ds->n : N_RECON) : 0;
    nx -= nx % 8; /* whole rows of pairs */
    ssl_tensor_t *x = nx > 0 ? eval_images(t, nx) : NULL, *recon = NULL, *samples = NULL;
    int st = nx > 0 && !x ? ssl_last_status() : SSL_OK;
    if (st == SSL_OK)
        st =
            ssl__method_pictures(t->method, t->ctx, x, t->rc.samples, t->rc.seed, &recon, &samples);
    if (st == SSL_OK && recon) {
        ssl_tensor_t *g = pair_rows(t->ctx, x, recon);
        snprintf(path, sizeof path, "%s/epoch-%03lld-recon.png", dir, (long long)epoch);
        st = g ? ssl_image_grid_png(path, g->data, g->shape[0], g->shape[1], g->shape[2],
                                    g->shape[3], 8, 2)
               : ssl_last_status();
    }
    if (st == SSL_OK && samples) { /* none: eval.samples 0, or no prior (the tokenizer) */
        snprintf(path, sizeof path, "%s/epoch-%03lld-samples.png", dir, (long long)epoch);
        st = ssl_image_grid_png(path, samples->data, samples->shape[0], samples->shape[1],
                                samples->shape[2], samples->shape[3], 8, 2);
    }
    ssl_ctx_set_grad(t->ctx, prev);
    ssl_ctx_reset(t->ctx);
    return st;
}
