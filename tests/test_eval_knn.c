/* kNN: a plain full-sort reference on small data (predictions, top-1/top-5, tie-breaking on
 * integer features), separable blobs, the (k, T) sweep against separate runs, invariance to
 * block size and thread count, argument errors, and raw Fashion-MNIST pixels against
 * independently measured accuracies. */
#include "../tools/common/blas_env.h" /* first: defines _GNU_SOURCE */

#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval_fmnist.h"
#include "ssl/eval.h"

/* ---------------------------------------------------------------- data */

/* C Gaussian blobs in D dims: centres N(0, 1) * spread, points centre + N(0, noise). */
static void blobs(int64_t n, int64_t d, int c, float spread, float noise, uint64_t seed, float *x,
                  int32_t *y)
{
    float *centres = malloc((size_t)c * (size_t)d * sizeof(float));
    ssl_rng_fill_normal(centres, (size_t)(c * d), 0.0f, spread, 1234, 1, 0);
    ssl_rng_fill_normal(x, (size_t)(n * d), 0.0f, noise, seed, 2, 0);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (int32_t)(ssl_rng_u32(seed, 3, (uint64_t)i) % (uint32_t)c);
        for (int64_t j = 0; j < d; j++)
            x[i * d + j] += centres[y[i] * d + j];
    }
    free(centres);
}

/* ---------------------------------------------------------------- reference */

typedef struct ref_item {
    double s;
    int64_t i;
} ref_item_t;

static int ref_cmp(const void *a, const void *b)
{
    const ref_item_t *x = a, *y = b;
    if (x->s != y->s)
        return x->s > y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Full sort of every similarity in double, then the documented vote; returns counts. */
static void ref_knn(const ssl_features_t *tr, const ssl_features_t *te, int C, int metric, int vote,
                    int k, double T, int32_t *pred, int64_t *c1, int64_t *c5)
{
    ref_item_t *it = malloc((size_t)tr->n * sizeof(ref_item_t));
    double *score = malloc((size_t)C * sizeof(double));
    int64_t D = tr->dim;
    *c1 = *c5 = 0;
    for (int64_t q = 0; q < te->n; q++) {
        const float *a = te->x + q * D;
        double na = 0;
        for (int64_t j = 0; j < D; j++)
            na += (double)a[j] * a[j];
        for (int64_t i = 0; i < tr->n; i++) {
            const float *b = tr->x + i * D;
            double dot = 0, nb = 0, d2 = 0;
            for (int64_t j = 0; j < D; j++) {
                dot += (double)a[j] * b[j];
                nb += (double)b[j] * b[j];
                d2 += ((double)a[j] - b[j]) * ((double)a[j] - b[j]);
            }
            it[i].s = metric == SSL_KNN_COSINE
                          ? dot / (fmax(sqrt(na), 1e-12) * fmax(sqrt(nb), 1e-12))
                          : -sqrt(d2);
            it[i].i = i;
        }
        qsort(it, (size_t)tr->n, sizeof *it, ref_cmp);
        memset(score, 0, (size_t)C * sizeof(double));
        for (int j = 0; j < k; j++)
            score[tr->labels[it[j].i]] +=
                vote == SSL_KNN_MAJORITY ? 1.0 : exp((it[j].s - it[0].s) / T);
        int y = te->labels[q], rank = 0, best = 0;
        for (int c = 0; c < C; c++) {
            rank += score[c] > score[y] || (score[c] == score[y] && c < y);
            if (score[c] > score[best])
                best = c;
        }
        pred[q] = best;
        *c1 += rank == 0;
        *c5 += rank < 5;
    }
    free(it);
    free(score);
}

static void compare_with_ref(const ssl_features_t *tr, const ssl_features_t *te, int C, int metric,
                             int vote, int k, float T, int max_pred_diff)
{
    ssl_knn_opts_t o = ssl_knn_opts_default();
    o.metric = metric;
    o.vote = vote;
    o.k = k;
    o.temperature = T;
    o.block_bytes = 5000; /* several blocks */
    ssl_knn_result_t r;
    int32_t *pred = malloc((size_t)te->n * sizeof(int32_t)),
            *rp = malloc((size_t)te->n * sizeof(int32_t));
    assert_int_equal(ssl_knn_eval(tr, te, C, &o, &r, pred), SSL_OK);
    int64_t c1, c5;
    ref_knn(tr, te, C, metric, vote, k, T, rp, &c1, &c5);
    int diff = 0;
    for (int64_t i = 0; i < te->n; i++)
        diff += pred[i] != rp[i];
    if (diff > max_pred_diff)
        fail_msg("metric %d vote %d k %d: %d predictions differ from the reference", metric, vote,
                 k, diff);
    if (max_pred_diff == 0) {
        assert_true(fabs(r.top1 - (double)c1 / (double)te->n) < 1e-12);
        if (C > 5)
            assert_true(fabs(r.top5 - (double)c5 / (double)te->n) < 1e-12);
    } else {
        assert_true(fabs(r.top1 - (double)c1 / (double)te->n) <= (double)max_pred_diff / te->n);
    }
    if (C <= 5)
        assert_true(r.top5 == -1.0);
    assert_int_equal(r.n, te->n);
    free(pred);
    free(rp);
}

/* Continuous noisy data: the library's float ranking equals the double reference. */
static void test_knn_matches_reference(void **state)
{
    (void)state;
    const int64_t n = 300, m = 97, d = 12;
    const int C = 7;
    float *xtr = malloc(n * d * sizeof(float)), *xte = malloc(m * d * sizeof(float));
    int32_t *ytr = malloc(n * sizeof(int32_t)), *yte = malloc(m * sizeof(int32_t));
    blobs(n, d, C, 1.0f, 1.0f, 11, xtr, ytr);
    blobs(m, d, C, 1.0f, 1.0f, 12, xte, yte);
    ssl_features_t tr = {xtr, ytr, n, d}, te = {xte, yte, m, d};
    int ks[] = {1, 5, 20, 300};
    for (int i = 0; i < 4; i++) {
        compare_with_ref(&tr, &te, C, SSL_KNN_COSINE, SSL_KNN_WEIGHTED, ks[i], 0.07f, 0);
        compare_with_ref(&tr, &te, C, SSL_KNN_COSINE, SSL_KNN_MAJORITY, ks[i], 0.0f, 0);
        compare_with_ref(&tr, &te, C, SSL_KNN_EUCLIDEAN, SSL_KNN_WEIGHTED, ks[i], 0.5f, 0);
        compare_with_ref(&tr, &te, C, SSL_KNN_EUCLIDEAN, SSL_KNN_MAJORITY, ks[i], 0.0f, 0);
    }
    /* 4 classes: top-5 is reported as -1 */
    for (int64_t i = 0; i < n; i++)
        ytr[i] %= 4;
    for (int64_t i = 0; i < m; i++)
        yte[i] %= 4;
    compare_with_ref(&tr, &te, 4, SSL_KNN_COSINE, SSL_KNN_WEIGHTED, 10, 0.1f, 0);
    free(xtr), free(xte), free(ytr), free(yte);
}

/* Small integer features: many exactly equal distances and tied votes. The order of equal
 * neighbours (lower training index first) and of tied classes (lower class first) must match
 * the reference exactly. */
static void test_knn_ties(void **state)
{
    (void)state;
    const int64_t n = 400, m = 150, d = 3;
    const int C = 6;
    float *xtr = malloc(n * d * sizeof(float)), *xte = malloc(m * d * sizeof(float));
    int32_t *ytr = malloc(n * sizeof(int32_t)), *yte = malloc(m * sizeof(int32_t));
    for (int64_t i = 0; i < n * d; i++)
        xtr[i] = (float)(ssl_rng_u32(5, 1, (uint64_t)i) % 3);
    for (int64_t i = 0; i < m * d; i++)
        xte[i] = (float)(ssl_rng_u32(5, 2, (uint64_t)i) % 3);
    for (int64_t i = 0; i < n; i++)
        ytr[i] = (int32_t)(ssl_rng_u32(5, 3, (uint64_t)i) % C);
    for (int64_t i = 0; i < m; i++)
        yte[i] = (int32_t)(ssl_rng_u32(5, 4, (uint64_t)i) % C);
    ssl_features_t tr = {xtr, ytr, n, d}, te = {xte, yte, m, d};
    int ks[] = {1, 2, 4, 7, 16, 50};
    for (int i = 0; i < 6; i++) {
        compare_with_ref(&tr, &te, C, SSL_KNN_EUCLIDEAN, SSL_KNN_MAJORITY, ks[i], 0.0f, 0);
        compare_with_ref(&tr, &te, C, SSL_KNN_EUCLIDEAN, SSL_KNN_WEIGHTED, ks[i], 1.0f, 0);
    }
    free(xtr), free(xte), free(ytr), free(yte);
}

static void test_knn_blobs_separable(void **state)
{
    (void)state;
    const int64_t n = 2000, m = 500, d = 32;
    const int C = 10;
    float *xtr = malloc(n * d * sizeof(float)), *xte = malloc(m * d * sizeof(float));
    int32_t *ytr = malloc(n * sizeof(int32_t)), *yte = malloc(m * sizeof(int32_t));
    blobs(n, d, C, 3.0f, 0.5f, 21, xtr, ytr);
    blobs(m, d, C, 3.0f, 0.5f, 22, xte, yte);
    ssl_features_t tr = {xtr, ytr, n, d}, te = {xte, yte, m, d};
    ssl_knn_result_t r;
    assert_int_equal(ssl_knn_eval(&tr, &te, C, NULL, &r, NULL), SSL_OK); /* cosine k200 T.07 */
    assert_true(r.top1 == 1.0 && r.top5 == 1.0);
    assert_int_equal(r.k, 200);
    ssl_knn_opts_t o = ssl_knn_opts_default();
    o.metric = SSL_KNN_EUCLIDEAN;
    o.vote = SSL_KNN_MAJORITY;
    o.k = 5;
    assert_int_equal(ssl_knn_eval(&tr, &te, C, &o, &r, NULL), SSL_OK);
    assert_true(r.top1 == 1.0);
    free(xtr), free(xte), free(ytr), free(yte);
}

/* One pass over a grid equals separate runs, for any block size and thread count. */
static void test_knn_sweep_equals_separate(void **state)
{
    (void)state;
    const int64_t n = 3000, m = 400, d = 16; /* 400 x 3000 similarities: threaded rows */
    const int C = 10;
    float *xtr = malloc(n * d * sizeof(float)), *xte = malloc(m * d * sizeof(float));
    int32_t *ytr = malloc(n * sizeof(int32_t)), *yte = malloc(m * sizeof(int32_t));
    blobs(n, d, C, 1.0f, 1.2f, 31, xtr, ytr);
    blobs(m, d, C, 1.0f, 1.2f, 32, xte, yte);
    ssl_features_t tr = {xtr, ytr, n, d}, te = {xte, yte, m, d};
    const int ks[] = {200, 10, 20, 1, 100, 20};
    const float ts[] = {0.07f, 0.5f, 0.02f};
    for (int metric = 0; metric < 2; metric++)
        for (int vote = 0; vote < 2; vote++) {
            ssl_knn_opts_t o = ssl_knn_opts_default();
            o.metric = metric;
            o.vote = vote;
            ssl_knn_result_t grid[18], g2[18], g3[18];
            assert_int_equal(ssl_knn_sweep(&tr, &te, C, &o, ks, 6, ts, 3, grid), SSL_OK);
            int at_chance = 1;
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 3; j++) {
                    ssl_knn_opts_t s = o;
                    s.k = ks[i];
                    s.temperature = ts[j];
                    ssl_knn_result_t r;
                    assert_int_equal(ssl_knn_eval(&tr, &te, C, &s, &r, NULL), SSL_OK);
                    const ssl_knn_result_t *g = &grid[i * 3 + j];
                    assert_int_equal(g->k, ks[i]);
                    assert_true(g->temperature == ts[j]);
                    assert_true(g->top1 == r.top1 && g->top5 == r.top5);
                    at_chance &= g->top1 < 0.3;
                }
            assert_false(at_chance);
            /* tiny blocks (one row), one thread */
            o.block_bytes = 1;
            ssl_set_num_threads(1);
            assert_int_equal(ssl_knn_sweep(&tr, &te, C, &o, ks, 6, ts, 3, g2), SSL_OK);
            ssl_set_num_threads(2);
            o.block_bytes = 7 * n * sizeof(float);
            assert_int_equal(ssl_knn_sweep(&tr, &te, C, &o, ks, 6, ts, 3, g3), SSL_OK);
            for (int i = 0; i < 18; i++) {
                assert_true(grid[i].top1 == g2[i].top1 && grid[i].top5 == g2[i].top5);
                assert_true(grid[i].top1 == g3[i].top1 && grid[i].top5 == g3[i].top5);
            }
        }
    /* majority votes need no temperatures */
    ssl_knn_opts_t o = ssl_knn_opts_default();
    o.vote = SSL_KNN_MAJORITY;
    ssl_knn_result_t r3[3];
    assert_int_equal(ssl_knn_sweep(&tr, &te, C, &o, ks, 3, NULL, 0, r3), SSL_OK);
    assert_true(r3[0].temperature == 0.0f && r3[0].k == 200);
    ssl_set_num_threads(0);
    free(xtr), free(xte), free(ytr), free(yte);
}

static void test_knn_errors(void **state)
{
    (void)state;
    float x[2 * 3] = {1, 2, 3, 4, 5, 6}, z[2 * 2] = {1, 2, 3, 4};
    int32_t y[2] = {0, 1}, yb[2] = {0, 9};
    ssl_features_t tr = {x, y, 2, 3}, te = {z, y, 2, 2};
    ssl_knn_result_t r;
    ssl_knn_opts_t o = ssl_knn_opts_default();
    o.k = 1;
    assert_int_equal(ssl_knn_eval(&tr, &te, 2, &o, &r, NULL), SSL_ERR_SHAPE);
    assert_non_null(strstr(ssl_last_error(), "(2, 3)"));
    assert_non_null(strstr(ssl_last_error(), "(2, 2)"));
    te = (ssl_features_t){x, yb, 2, 3};
    assert_int_equal(ssl_knn_eval(&tr, &te, 2, &o, &r, NULL), SSL_ERR_INVALID);
    assert_non_null(strstr(ssl_last_error(), "test label[1] = 9"));
    te = (ssl_features_t){x, y, 2, 3};
    o.k = 3;
    assert_int_equal(ssl_knn_eval(&tr, &te, 2, &o, &r, NULL), SSL_ERR_INVALID);
    assert_non_null(strstr(ssl_last_error(), "k = 3"));
    o.k = 1;
    o.temperature = 0.0f;
    assert_int_equal(ssl_knn_eval(&tr, &te, 2, &o, &r, NULL), SSL_ERR_INVALID);
    assert_non_null(strstr(ssl_last_error(), "temperature"));
    o.temperature = 0.1f;
    o.metric = 7;
    assert_int_equal(ssl_knn_eval(&tr, &te, 2, &o, &r, NULL), SSL_ERR_INVALID);
    o.metric = SSL_KNN_COSINE;
    float xn[6] = {1, 2, 3, 4, NAN, 6};
    ssl_features_t trn = {xn, y, 2, 3};
    assert_int_equal(ssl_knn_eval(&trn, &te, 2, &o, &r, NULL), SSL_ERR_NONFINITE);
    assert_non_null(strstr(ssl_last_error(), "train row 1"));
    int ks[1] = {1};
    assert_int_equal(ssl_knn_sweep(&tr, &te, 2, &o, ks, 1, NULL, 0, &r), SSL_ERR_INVALID);
    /* an empty test set is fine */
    te.n = 0;
    assert_int_equal(ssl_knn_eval(&tr, &te, 2, &o, &r, NULL), SSL_OK);
    assert_int_equal(r.n, 0);
}

/* ---------------------------------------------------------------- Fashion-MNIST */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Both splits, or the test is skipped. */
static void load_fm(fmnist_t *tr, fmnist_t *te)
{
    if (fmnist_load("train", tr) || fmnist_load("t10k", te)) {
        fmnist_free(tr);
        fmnist_free(te);
        TU_SKIP("Fashion-MNIST not found under " FMNIST_DIR);
    }
}

/* Raw pixels in [0, 1] as the identity "encoder"; figures measured independently: PyTorch
 * (F.normalize, topk, exp(sim/T) votes: 79.13% top-1, 99.63% top-5) and 85.5% for euclidean
 * k = 5 majority (scikit-learn's rule; a PyTorch check with ties to the lower class: 85.54%). */
static void test_knn_fashion_mnist(void **state)
{
    (void)state;
    fmnist_t a = {0}, b = {0}; /* freed whole when a split is missing */
    load_fm(&a, &b);
    ssl_features_t tr = {a.x, a.y, a.n, 784}, te = {b.x, b.y, b.n, 784};
    const int ks[] = {10, 20, 100, 200};
    const float ts[] = {0.07f, 0.1f};
    ssl_knn_result_t g[8];
    double t0 = now();
    assert_int_equal(ssl_knn_sweep(&tr, &te, 10, NULL, ks, 4, ts, 2, g), SSL_OK);
    double t1 = now();
    for (int i = 0; i < 8; i++)
        print_message("  cosine weighted k=%3d T=%.2f: top-1 %.2f%% top-5 %.2f%%\n", g[i].k,
                      (double)g[i].temperature, 100 * g[i].top1, 100 * g[i].top5);
    const ssl_knn_result_t *r = &g[3 * 2 + 0]; /* k 200, T 0.07 */
    assert_true(fabs(r->top1 - 0.7913) <= 0.002);
    assert_true(fabs(r->top5 - 0.9963) <= 0.002);
    ssl_knn_opts_t o = ssl_knn_opts_default();
    o.metric = SSL_KNN_EUCLIDEAN;
    o.vote = SSL_KNN_MAJORITY;
    o.k = 5;
    ssl_knn_result_t e;
    double t2 = now();
    assert_int_equal(ssl_knn_eval(&tr, &te, 10, &o, &e, NULL), SSL_OK);
    double t3 = now();
    print_message("  euclidean majority k=5: top-1 %.2f%%\n", 100 * e.top1);
    print_message("  time: sweep %.2f s, euclidean %.2f s (%s)\n", t1 - t0, t3 - t2,
                  ssl_blas_info());
    assert_true(fabs(e.top1 - 0.8554) <= 0.002);
    fmnist_free(&a);
    fmnist_free(&b);
}

int main(int argc, char **argv)
{
    ssl_tool_blas_reexec(argv);
    if (argc > 1) /* run only the tests matching a pattern, e.g. "*fashion*" */
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_knn_matches_reference),
        cmocka_unit_test(test_knn_ties),
        cmocka_unit_test(test_knn_blobs_separable),
        cmocka_unit_test(test_knn_sweep_equals_separate),
        cmocka_unit_test(test_knn_errors),
        cmocka_unit_test(test_knn_fashion_mnist),
    };
    return tu_status(cmocka_run_group_tests(tests, NULL, NULL));
}
