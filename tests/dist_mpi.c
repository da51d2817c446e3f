/* The MPI side of data-parallel training across real ranks (run by tests/dist_mpi.sh under
 * mpirun with 3 ranks: not a power of two). Each check runs on every rank; a rank that sees a
 * mismatch prints it and the program exits 1 on every rank (the result is all-reduced).
 *   - dist.c's collectives: sums, gathers, broadcast, the non-blocking float sums; the ranks
 *     on this machine and their default share of its cores;
 *   - all_gather with gradient against central differences of the sum of every rank's loss,
 *     perturbing one rank's input at a time (every rank evaluates its loss at each point);
 *   - SyncBN against plain batch norm of the whole batch (each rank gathers it): outputs,
 *     running statistics, and the x gradient of the sum of every rank's loss;
 *   - the gradient buckets: every rank's gradient becomes the mean over the ranks, and their
 *     counters (steps, floats summed, started during backward);
 *   - the losses of one rank's rows (losses/ranks.h: NT-Xent, MoCo v3, CLIP, SigLIP): the mean
 *     over the ranks is the whole batch's loss of one process, and the gradient of the sum of
 *     every rank's loss N times the whole batch's (through all_gather's backward);
 *   - the Sinkhorn-Knopp over every rank's rows (ranks holding 5, 0 and 4 rows) against
 *     ssl_sinkhorn of the whole matrix;
 *   - ssl_trainer_step with unequal parts of the batch on the ranks: an error naming the sizes
 *     on every rank (no hang), and a rank's refused batch stops every rank. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/comm.h"
#include "losses/ranks.h"
#include "ssl/losses.h"
#include "ssl/train.h"
#include "ssl/core.h"
#include "train/dist.h"
#include "train/dist_grads.h"

static int g_fail;
static int g_rank, g_size;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "rank %d: FAIL %s:%d: ", g_rank, __FILE__, __LINE__);                  \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            g_fail++;                                                                              \
        }                                                                                          \
    } while (0)

static int close_to(double a, double b, double atol, double rtol)
{
    return fabs(a - b) <= atol + rtol * fabs(b);
}

static void check_collectives(void)
{
    /* the test runs its ranks on one machine: each takes its share of the cores */
    CHECK(ssl__dist_local_size() == g_size, "local size %d of %d ranks", ssl__dist_local_size(),
          g_size);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int share = (int)(cores / g_size) < 1 ? 1 : (int)(cores / g_size);
    int got = ssl__dist_default_threads();
    CHECK(got >= 1 && got <= share, "default threads %d, want 1..%d (%ld cores, %d ranks)", got,
          share, cores, g_size);
    double s[3] = {g_rank, 1, -0.5 * g_rank};
    CHECK(ssl__dist_allreduce_f64(s, 3) == SSL_OK, "allreduce: %s", ssl_last_error());
    double want = g_size * (g_size - 1) / 2.0;
    CHECK(s[0] == want && s[1] == g_size && s[2] == -0.5 * want, "allreduce: %g %g %g", s[0],
          s[1], s[2]);
    uint64_t all[16];
    CHECK(ssl__dist_allgather_u64(100 + (uint64_t)g_rank, all) == SSL_OK, "allgather_u64");
    for (int r = 0; r < g_size; r++)
        CHECK(all[r] == 100 + (uint64_t)r, "allgather_u64[%d] = %llu", r,
              (unsigned long long)all[r]);
    char msg[32] = {0};
    if (g_rank == 0)
        snprintf(msg, sizeof msg, "from rank 0");
    CHECK(ssl__dist_bcast(msg, sizeof msg, 0) == SSL_OK && !strcmp(msg, "from rank 0"), "bcast");
    /* two non-blocking sums in flight at once, then waited for */
    float a[1000], b[7];
    for (int i = 0; i < 1000; i++)
        a[i] = (float)(g_rank + i);
    for (int i = 0; i < 7; i++)
        b[i] = (float)(g_rank * i);
    CHECK(ssl__dist_isum_f32(a, 1000) == SSL_OK && ssl__dist_isum_f32(b, 7) == SSL_OK, "isum");
    ssl__dist_progress();
    CHECK(ssl__dist_wait_all() == SSL_OK, "wait_all");
    for (int i = 0; i < 1000; i++)
        CHECK(a[i] == (float)(want + g_size * i), "isum a[%d] = %g", i, a[i]);
    for (int i = 0; i < 7; i++)
        CHECK(b[i] == (float)(want * i), "isum b[%d] = %g", i, b[i]);
}

/* rank r's input (B, D) and its loss's weights: distinct on every rank */
enum { B = 3, D = 4 };

static ssl_tensor_t *rank_input(ssl_ctx_t *ctx, uint64_t seed, int requires_grad)
{
    ssl_tensor_t *x = ssl_tensor_2d(ctx, B, D);
    ssl_rng_fill_uniform(x->data, B * D, -1, 1, seed, (uint64_t)g_rank, 0);
    ssl_tensor_set_requires_grad(x, requires_grad);
    return x;
}

/* L_r = sum_k w_r[k] exp(0.5 G[k]) + (sum_k G[k] v_r[k])^2 over the gathered G (size B, D):
 * every rank's rows enter every rank's loss, nonlinearly. */
static ssl_tensor_t *rank_loss(ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    ssl_tensor_t *G = ssl__all_gather(ctx, x);
    ssl_tensor_t *w = ssl_tensor_2d(ctx, (int64_t)g_size * B, D);
    ssl_tensor_t *v = ssl_tensor_2d(ctx, (int64_t)g_size * B, D);
    ssl_rng_fill_uniform(w->data, (size_t)w->numel, 0, 1, 77, (uint64_t)g_rank, 0);
    ssl_rng_fill_uniform(v->data, (size_t)v->numel, -1, 1, 78, (uint64_t)g_rank, 0);
    ssl_tensor_t *a = ssl_sum_all(ctx, ssl_mul(ctx, w, ssl_exp(ctx, ssl_scale(ctx, G, 0.5f, 0))));
    ssl_tensor_t *c = ssl_sum_all(ctx, ssl_mul(ctx, G, v));
    return ssl_add(ctx, a, ssl_mul(ctx, c, c));
}

static double total_loss(ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    int prev = ssl_ctx_set_grad(ctx, 0);
    double l = rank_loss(ctx, x)->data[0];
    ssl_ctx_set_grad(ctx, prev);
    ssl__dist_allreduce_f64(&l, 1);
    return l;
}

static void check_all_gather_grad(const ssl_comm_t *comm)
{
    ssl_ctx_t *ctx = ssl_ctx_create(1 << 20);
    ssl__ctx_set_comm(ctx, comm);
    ssl_tensor_t *x = rank_input(ctx, 5, 1);
    ssl_tensor_t *G = ssl__all_gather(ctx, x);
    CHECK(G && G->shape[0] == (int64_t)g_size * B, "all_gather shape");
    /* rank r's rows sit at [r B, (r + 1) B) */
    ssl_tensor_t *mine = rank_input(ctx, 5, 0);
    CHECK(!memcmp(G->data + (int64_t)g_rank * B * D, mine->data, sizeof(float) * B * D),
          "all_gather: this rank's rows are not at its place");
    ssl_tensor_t *L = rank_loss(ctx, x);
    CHECK(ssl_backward(ctx, L) == SSL_OK, "backward: %s", ssl_last_error());
    float analytic[B * D];
    memcpy(analytic, x->grad, sizeof analytic);
    /* central differences of sum_r L_r: one rank perturbs one element at a time */
    const double eps = 1e-2;
    for (int s = 0; s < g_size; s++)
        for (int i = 0; i < B * D; i++) {
            double f[2];
            for (int k = 0; k < 2; k++) {
                float keep = x->data[i];
                if (g_rank == s)
                    x->data[i] = keep + (float)(k ? -eps : eps);
                f[k] = total_loss(ctx, x);
                x->data[i] = keep;
            }
            double num = (f[0] - f[1]) / (2 * eps);
            if (g_rank == s)
                CHECK(close_to(analytic[i], num, 2e-3, 2e-2),
                      "all_gather gradient of rank %d element %d: %g, central differences %g", s,
                      i, analytic[i], num);
        }
    ssl_ctx_free(ctx);
}

/* SyncBN on (B, C, 2, 2) per rank against batch norm of the gathered batch (one process). */
static void check_sync_bn(const ssl_comm_t *comm)
{
    enum { C = 3, S = 4 };
    ssl_ctx_t *ctx = ssl_ctx_create(1 << 20);
    int64_t shape[4] = {B, C, 2, 2}, c = C;
    ssl_tensor_t *x = ssl_tensor_new(ctx, 4, shape);
    ssl_rng_fill_uniform(x->data, B * C * S, -2, 3, 9, (uint64_t)g_rank, 0);
    ssl_tensor_set_requires_grad(x, 1);
    ssl_tensor_t *w = ssl_tensor_fill(ctx, 1, &c, 1.3f), *bias = ssl_tensor_fill(ctx, 1, &c, 0.2f);
    ssl_tensor_t *rm[2] = {ssl_tensor_zeros(ctx, 1, &c), ssl_tensor_zeros(ctx, 1, &c)};
    ssl_tensor_t *rv[2] = {ssl_tensor_fill(ctx, 1, &c, 1), ssl_tensor_fill(ctx, 1, &c, 1)};
    /* dy: each rank's own weights of its rows */
    float dy[B * C * S];
    ssl_rng_fill_uniform(dy, B * C * S, -1, 1, 10, (uint64_t)g_rank, 0);
    /* the whole batch, one process: every rank runs it on the gathered rows */
    ssl__ctx_set_comm(ctx, comm);
    ssl_tensor_t *X = ssl__all_gather_nograd(ctx, x);
    ssl_tensor_t dyt = {2, {B, C * S}, B * C * S, dy, NULL, 0, -1, NULL};
    ssl_tensor_t *DY = ssl__all_gather_nograd(ctx, &dyt);
    ssl__ctx_set_comm(ctx, NULL);
    ssl_tensor_t *Xg = ssl_tensor_from(ctx, 4, (int64_t[]){(int64_t)g_size * B, C, 2, 2}, X->data);
    ssl_tensor_set_requires_grad(Xg, 1);
    ssl_tensor_t *Y = ssl_batch_norm_relu(ctx, Xg, w, bias, rm[0], rv[0], 1, 0.1f, 1e-5f);
    CHECK(Y && ssl_backward_with(ctx, Y, DY->data) == SSL_OK, "reference batch norm");
    /* SyncBN */
    ssl__ctx_set_comm(ctx, comm);
    ssl_tensor_t *y = ssl_batch_norm_relu(ctx, x, w, bias, rm[1], rv[1], 1, 0.1f, 1e-5f);
    CHECK(y && ssl_backward_with(ctx, y, dy) == SSL_OK, "SyncBN: %s", ssl_last_error());
    ssl__ctx_set_comm(ctx, NULL);
    int64_t off = (int64_t)g_rank * B * C * S;
    for (int i = 0; i < B * C * S; i++) {
        CHECK(close_to(y->data[i], Y->data[off + i], 1e-5, 1e-4), "SyncBN y[%d] %g vs %g", i,
              y->data[i], Y->data[off + i]);
        CHECK(close_to(x->grad[i], Xg->grad[off + i], 1e-5, 1e-3), "SyncBN dx[%d] %g vs %g", i,
              x->grad[i], Xg->grad[off + i]);
    }
    for (int i = 0; i < C; i++)
        CHECK(close_to(rm[1]->data[i], rm[0]->data[i], 1e-6, 1e-5) &&
                  close_to(rv[1]->data[i], rv[0]->data[i], 1e-6, 1e-5),
              "SyncBN running statistics of channel %d", i);
    ssl_ctx_free(ctx);
}

/* Two parameters in two buckets (a 1-float bucket size), one started during backward: after
 * finish every gradient is the mean of the ranks' gradients. */
static void check_buckets(void)
{
    ssl_ctx_t *ctx = ssl_ctx_create(1 << 20);
    ssl_params_t *p = ssl_params_create();
    ssl_tensor_t *a = ssl_params_add(p, "a", 1, (int64_t[]){5}, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *b = ssl_params_add(p, "b", 1, (int64_t[]){5}, SSL_PARAM_TRAINABLE, 0);
    ssl_params_add(p, "unused", 1, (int64_t[]){2}, SSL_PARAM_TRAINABLE, 0);
    ssl_dist_grads_t *g = ssl__dist_grads_create(p, sizeof(float));
    CHECK(g != NULL, "grads_create: %s", ssl_last_error());
    int64_t early = 0;
    CHECK(ssl__dist_grads_buckets(g, NULL) == 3, "3 buckets, got %d",
          ssl__dist_grads_buckets(g, NULL));
    for (int i = 0; i < 5; i++) {
        a->data[i] = (float)(i + 1);
        b->data[i] = (float)(g_rank + 1); /* d/da of sum(a * b) = b: differs by rank */
    }
    ssl__dist_grads_attach(g, ctx);
    ssl_tensor_t *l = ssl_sum_all(ctx, ssl_mul(ctx, a, b));
    CHECK(ssl_backward(ctx, l) == SSL_OK, "backward");
    CHECK(ssl__dist_grads_finish(g, ctx) == SSL_OK, "grads_finish: %s", ssl_last_error());
    ssl__dist_grads_buckets(g, &early);
    CHECK(early == 2, "2 buckets started during backward, got %lld", (long long)early);
    /* the counters: one step, 12 floats summed, a's and b's 10 started during backward */
    ssl_dist_grads_stats_t s;
    ssl__dist_grads_stats(g, &s);
    CHECK(s.steps == 1 && s.floats == 12 && s.floats_early == 10 && s.floats_done >= 0 &&
              s.floats_done <= 10 && s.backward_s >= 0 && s.wait_s >= 0,
          "counters: %lld steps, %lld floats, %lld early, %lld done, %g s, %g s",
          (long long)s.steps, (long long)s.floats, (long long)s.floats_early,
          (long long)s.floats_done, s.backward_s, s.wait_s);
    double mean_b = (g_size + 1) / 2.0;
    for (int i = 0; i < 5; i++) {
        CHECK(close_to(a->grad[i], mean_b, 1e-6, 1e-6), "a.grad[%d] = %g, want %g", i,
              a->grad[i], mean_b);
        CHECK(close_to(b->grad[i], i + 1, 1e-6, 1e-6), "b.grad[%d] = %g", i, b->grad[i]);
    }
    ssl__dist_grads_free(g);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

/* One loss of the whole batch (one process, the public function) and of one rank's rows. */
enum { L_NTXENT, L_MOCOV3, L_CLIP, L_SIGLIP, L_COUNT };
static const char *const k_loss_names[] = {"ntxent", "moco_v3", "clip", "siglip"};

/* x (B, 2 D): two D-wide halves (views; image and text), one a key without gradient for MoCo
 * v3 (its keys: x * 0.7 + 0.1, detached). whole: the one-process loss of x (all B rows). */
static ssl_tensor_t *pair_loss(ssl_ctx_t *ctx, int kind, ssl_tensor_t *x, ssl_tensor_t *scale,
                               ssl_tensor_t *bias, int whole)
{
    ssl_tensor_t *a = ssl_slice(ctx, x, 1, 0, D), *b = ssl_slice(ctx, x, 1, D, D);
    int64_t row0 = whole ? 0 : (int64_t)g_rank * x->shape[0];
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *ka = kind == L_MOCOV3 ? ssl_scale(ctx, a, 0.7f, 0.1f) : NULL;
    ssl_tensor_t *kb = kind == L_MOCOV3 ? ssl_scale(ctx, b, 0.7f, 0.1f) : NULL;
    ssl_tensor_t *ka_all = ka && !whole ? ssl__all_gather_nograd(ctx, ka) : ka;
    ssl_tensor_t *kb_all = kb && !whole ? ssl__all_gather_nograd(ctx, kb) : kb;
    ssl_ctx_set_grad(ctx, prev);
    if (whole) {
        switch (kind) {
        case L_NTXENT: return ssl_loss_ntxent(ctx, a, b, 0.5f);
        case L_MOCOV3: return ssl_loss_moco_v3(ctx, a, b, ka, kb, 0.5f);
        case L_CLIP: return ssl_loss_clip(ctx, a, b, scale, 4.6f);
        default: return ssl_loss_siglip(ctx, a, b, scale, bias);
        }
    }
    switch (kind) {
    case L_NTXENT:
        return ssl__loss_ntxent_rows(ctx, a, b, ssl__all_gather(ctx, a), ssl__all_gather(ctx, b),
                                     row0, 0.5f);
    case L_MOCOV3: return ssl__loss_moco_v3_rows(ctx, a, b, ka_all, kb_all, row0, 0.5f);
    case L_CLIP:
        return ssl__loss_clip_rows(ctx, a, b, ssl__all_gather(ctx, a), ssl__all_gather(ctx, b),
                                   row0, scale, 4.6f);
    default: return ssl__loss_siglip_rows(ctx, a, ssl__all_gather(ctx, b), row0, scale, bias);
    }
}

static void check_rows_losses(const ssl_comm_t *comm)
{
    for (int kind = 0; kind < L_COUNT; kind++) {
        ssl_ctx_t *ctx = ssl_ctx_create(1 << 20);
        ssl__ctx_set_comm(ctx, comm);
        ssl_tensor_t *x = ssl_tensor_2d(ctx, B, 2 * D); // this rank's rows
        ssl_rng_fill_uniform(x->data, B * 2 * D, -1, 1, 21, (uint64_t)g_rank, 0);
        ssl_tensor_set_requires_grad(x, 1);
        ssl_tensor_t *scale = ssl_tensor_fill(ctx, 0, NULL, 1.2f);
        ssl_tensor_t *bias = ssl_tensor_fill(ctx, 0, NULL, -1.5f);
        ssl_tensor_t *X = ssl__all_gather_nograd(ctx, x); // the whole batch
        ssl_tensor_t *L = pair_loss(ctx, kind, x, scale, bias, 0);
        CHECK(L && ssl_backward(ctx, L) == SSL_OK, "%s rows: %s", k_loss_names[kind],
              ssl_last_error());
        double mean = L ? L->data[0] : NAN;
        ssl__dist_allreduce_f64(&mean, 1);
        mean /= g_size;
        /* one process on the whole batch */
        ssl__ctx_set_comm(ctx, NULL);
        ssl_tensor_t *Xg = ssl_tensor_from(ctx, 2, X->shape, X->data);
        ssl_tensor_set_requires_grad(Xg, 1);
        ssl_tensor_t *W = pair_loss(ctx, kind, Xg, scale, bias, 1);
        CHECK(W && ssl_backward(ctx, W) == SSL_OK, "%s whole: %s", k_loss_names[kind],
              ssl_last_error());
        CHECK(W && close_to(mean, W->data[0], 1e-6, 1e-5), "%s: mean of the ranks' losses %.9g, "
              "whole batch %.9g", k_loss_names[kind], mean, W ? W->data[0] : NAN);
        int64_t off = (int64_t)g_rank * B * 2 * D;
        for (int i = 0; x->grad && Xg->grad && i < B * 2 * D; i++)
            CHECK(close_to(x->grad[i], g_size * Xg->grad[off + i], 1e-6, 1e-4),
                  "%s: gradient [%d] %g, N x the whole batch's %g", k_loss_names[kind], i,
                  x->grad[i], g_size * Xg->grad[off + i]);
        ssl_ctx_free(ctx);
    }
}

/* Rank r holds rows of one (R, K) matrix (5, 0, 4, 5, 0, 4, ... rows): its rows of the
 * Sinkhorn-Knopp over the ranks equal those of ssl_sinkhorn of the whole matrix. */
static void check_sinkhorn_ranks(const ssl_comm_t *comm)
{
    enum { K = 6 };
    static const int per[3] = {5, 0, 4};
    int64_t R = 0, row0 = 0;
    for (int r = 0; r < g_size; r++) {
        row0 += r < g_rank ? per[r % 3] : 0;
        R += per[r % 3];
    }
    const int64_t n = per[g_rank % 3];
    ssl_ctx_t *ctx = ssl_ctx_create(1 << 20);
    ssl_tensor_t *all = ssl_tensor_2d(ctx, R, K);
    ssl_rng_fill_uniform(all->data, (size_t)(R * K), -3, 3, 31, 0, 0);
    ssl_tensor_t *want = ssl_sinkhorn(ctx, all, 0.5f, 3);
    ssl__ctx_set_comm(ctx, comm);
    ssl_tensor_t *mine = ssl_tensor_from(ctx, 2, (int64_t[]){n, K}, all->data + row0 * K);
    ssl_tensor_t *got = ssl__sinkhorn_ranks(ctx, mine, 0.5f, 3);
    CHECK(want && got && got->shape[0] == n, "sinkhorn over ranks: %s", ssl_last_error());
    for (int64_t i = 0; want && got && i < n * K; i++)
        CHECK(close_to(got->data[i], want->data[row0 * K + i], 1e-7, 1e-5),
              "sinkhorn over ranks [%lld]: %g, whole matrix %g", (long long)i, got->data[i],
              want->data[row0 * K + i]);
    ssl_ctx_free(ctx);
}

/* A caller's loop (ssl_trainer_step) on every rank: parts of 2, 2, 3 (the last rank's larger)
 * are an error on every rank naming the sizes; a rank whose batch has a wrong view count makes
 * every rank refuse the step; equal parts step. */
static void check_step_parts(void)
{
    enum { HW = 8, MAXB = 3 };
    static const char *cfg =
        "{\"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, \"channels\": 1, "
        "\"limit\": 24, \"workers\": 0}, \"views\": [{\"n\": 2, \"size\": 8}], "
        "\"train\": {\"batch_size\": 6}, \"model\": {\"encoder\": {\"type\": \"resnet18\", "
        "\"width\": 4, \"in_channels\": 1}, \"projector\": {\"hidden_dim\": 16, "
        "\"out_dim\": 8}}, \"loss\": {\"type\": \"infonce\"}, \"eval\": {\"knn_every\": 0}}";
    ssl_train_opts_t o = {0};
    o.config_text = cfg;
    o.no_run_dir = 1;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    CHECK(t, "trainer: %s", ssl_last_error());
    if (!t)
        return;
    static float buf[2 * MAXB * HW * HW];
    for (int i = 0; i < 2 * MAXB * HW * HW; i++)
        buf[i] = (float)((i * 7919 + g_rank) % 101) / 50.0f - 1.0f;
    ssl_batch_t b;
    double loss = 0;
    for (int round = 0; round < 3; round++) {
        /* round 0: unequal parts; 1: a wrong view count on the last rank; 2: equal parts */
        int64_t n = round == 0 && g_rank == g_size - 1 ? 3 : 2;
        memset(&b, 0, sizeof b);
        b.size = n;
        b.n_views = round == 1 && g_rank == g_size - 1 ? 1 : 2;
        for (int v = 0; v < b.n_views; v++)
            b.views[v] = (ssl_tensor_t){4, {n, 1, HW, HW}, n * HW * HW, buf + v * MAXB * HW * HW,
                                        NULL, 0, -1, NULL};
        int st = ssl_trainer_step(t, &b, &loss);
        char want[96];
        snprintf(want, sizeof want, "rank %d passed a batch of 3 samples, rank 0 one of 2",
                 g_size - 1);
        if (round == 0)
            CHECK(st != SSL_OK && strstr(ssl_last_error(), want), "unequal parts: %s",
                  st == SSL_OK ? "stepped" : ssl_last_error());
        else if (round == 1 && g_rank == g_size - 1)
            CHECK(st != SSL_OK && strstr(ssl_last_error(), "the batch has 1 views"),
                  "the bad rank's own error: %s", st == SSL_OK ? "stepped" : ssl_last_error());
        else if (round == 1) {
            snprintf(want, sizeof want, "rank %d refused its batch", g_size - 1);
            CHECK(st != SSL_OK && strstr(ssl_last_error(), want), "another rank's bad batch: %s",
                  st == SSL_OK ? "stepped" : ssl_last_error());
        } else
            CHECK(st == SSL_OK && ssl_trainer_global_step(t) == 1, "equal parts: %s",
                  ssl_last_error());
    }
    ssl_trainer_free(t);
}

int main(void)
{
    if (ssl__dist_init() != SSL_OK) {
        fprintf(stderr, "dist_mpi: %s\n", ssl_last_error());
        return 1;
    }
    g_rank = ssl__dist_rank();
    g_size = ssl__dist_size();
    if (g_size < 2) {
        fprintf(stderr, "dist_mpi: run under mpirun with at least 2 ranks\n");
        return 1;
    }
    const ssl_comm_t *comm = ssl__dist_comm(1);
    check_collectives();
    check_all_gather_grad(comm);
    check_sync_bn(comm);
    check_buckets();
    check_rows_losses(comm);
    check_sinkhorn_ranks(comm);
    check_step_parts();
    double fails = g_fail;
    ssl__dist_allreduce_f64(&fails, 1);
    if (g_rank == 0)
        printf("%s: %d ranks, %g failed checks\n", fails ? "FAIL" : "ok", g_size, fails);
    return fails ? 1 : 0;
}
