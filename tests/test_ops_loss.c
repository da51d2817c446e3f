/* Losses: mse, l1, smooth_l1, cross_entropy and cross_entropy_soft. Forward against plain
 * double-precision references, backward against central differences, hand-computed values,
 * thread-count independence and error paths. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_MSE, OP_L1, OP_SMOOTH_L1, OP_CE, OP_CE_SOFT };

typedef struct loss_case {
    int op;
    float beta;
    const int32_t *labels;
} loss_case_t;

static ssl_tensor_t *build(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    const loss_case_t *c = user;
    switch (c->op) {
    case OP_MSE:
        return ssl_mse(ctx, in[0], in[1]);
    case OP_L1:
        return ssl_l1(ctx, in[0], in[1]);
    case OP_SMOOTH_L1:
        return ssl_smooth_l1(ctx, in[0], in[1], c->beta);
    case OP_CE:
        return ssl_cross_entropy(ctx, in[0], c->labels);
    default:
        return ssl_cross_entropy_soft(ctx, in[0], in[1]);
    }
}

/* ---------------------------------------------------------------- references */

static float ref_regression(int op, const float *a, const float *b, int64_t n, float beta)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (op == OP_MSE)
            s += d * d;
        else if (op == OP_L1 || beta == 0)
            s += d;
        else
            s += d < beta ? 0.5 * d * d / beta : d - 0.5 * beta;
    }
    return (float)(s / (double)n);
}

/* Row log-sum-exp in double with libm. */
static double ref_lse(const float *x, int64_t c)
{
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < c; j++)
        m = fmax(m, x[j]);
    for (int64_t j = 0; j < c; j++)
        s += exp(x[j] - m);
    return m + log(s);
}

static float ref_ce(const ssl_tensor_t *x, const int32_t *labels)
{
    int64_t rows = x->shape[0], c = x->shape[1];
    double s = 0;
    for (int64_t r = 0; r < rows; r++)
        s += ref_lse(x->data + r * c, c) - x->data[r * c + labels[r]];
    return (float)(s / (double)rows);
}

static float ref_ce_soft(const ssl_tensor_t *x, const ssl_tensor_t *t)
{
    int64_t rows = x->shape[0], c = x->shape[1];
    double s = 0;
    for (int64_t r = 0; r < rows; r++) {
        double l = ref_lse(x->data + r * c, c);
        for (int64_t j = 0; j < c; j++)
            s -= t->data[r * c + j] * (x->data[r * c + j] - l);
    }
    return (float)(s / (double)rows);
}

/* Random int labels in [0, c). */
static void rand_labels(int32_t *lab, int64_t n, int64_t c, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        lab[i] = (int32_t)(ssl_rng_u32(seed, 5, (uint64_t)i) % (uint32_t)c);
}

/* ---------------------------------------------------------------- mse, l1, smooth_l1 */

typedef struct shape_case {
    int nd;
    int64_t s[SSL_MAX_DIMS];
} shape_case_t;

static void test_regression_losses(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(4u << 20);
    /* Odd sizes, one block, several blocks, above the OpenMP threshold. */
    const shape_case_t shapes[] = {{1, {7}},    {2, {3, 5}},    {3, {2, 3, 4}},
                                   {1, {4097}}, {2, {300, 70}}, {4, {2, 3, 1, 5}}};
    const loss_case_t cases[] = {{OP_MSE, 0, NULL},          {OP_L1, 0, NULL},
                                 {OP_SMOOTH_L1, 1.0f, NULL}, {OP_SMOOTH_L1, 0.5f, NULL},
                                 {OP_SMOOTH_L1, 0.0f, NULL}, {OP_SMOOTH_L1, 10.0f, NULL}};
    for (int si = 0; si < 6; si++)
        for (int ci = 0; ci < 6; ci++) {
            const shape_case_t *sc = &shapes[si];
            loss_case_t c = cases[ci];
            /* b = a - d with |d| >= 0.05: off the kink of |d| at 0. */
            ssl_tensor_t *a = tu_rand(ctx, sc->nd, sc->s, 10 + si, -1, 1, 1);
            ssl_tensor_t *d = tu_rand_away0(ctx, sc->nd, sc->s, 20 + si, -1.5f, 1.5f, 0.05f, 0);
            ssl_tensor_t *b = tu_rand(ctx, sc->nd, sc->s, 30 + si, 0, 1, 1);
            for (int64_t i = 0; i < a->numel; i++)
                b->data[i] = a->data[i] - d->data[i];
            ssl_tensor_t *in[2] = {a, b};
            ssl_tensor_t *y = build(ctx, in, &c);
            assert_non_null(y);
            assert_int_equal(y->ndim, 0);
            assert_int_equal(y->numel, 1);
            float ref = ref_regression(c.op, a->data, b->data, a->numel, c.beta);
            tu_assert_close(y->data, &ref, 1, 1e-7, 1e-6);
            if (a->numel <= 64)
                assert_int_equal(tu_gradcheck(ctx, build, &c, in, 2, NULL), 0);
            ssl_ctx_reset(ctx);
        }
    ssl_ctx_free(ctx);
}

static void test_regression_hand_values(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *a = ssl_tensor_from(ctx, 1, (int64_t[]){2}, (float[]){1, 2});
    ssl_tensor_t *z = ssl_tensor_zeros(ctx, 1, (int64_t[]){2});
    a->requires_grad = 1;
    z->requires_grad = 1;
    ssl_tensor_t *m = ssl_mse(ctx, a, z);
    assert_true(m->data[0] == 2.5f);
    assert_true(ssl_l1(ctx, a, z)->data[0] == 1.5f);
    assert_int_equal(ssl_backward(ctx, m), SSL_OK);
    /* d/da mean((a - b)^2) = 2 (a - b) / n */
    assert_true(a->grad[0] == 1.0f && a->grad[1] == 2.0f);
    assert_true(z->grad[0] == -1.0f && z->grad[1] == -2.0f);
    /* smooth_l1, beta 1: d = (0.5, 2) -> (0.125 + 1.5) / 2; beta 0 is l1. */
    ssl_tensor_t *h = ssl_tensor_from(ctx, 1, (int64_t[]){2}, (float[]){0.5f, 2});
    h->requires_grad = 1;
    ssl_tensor_t *s = ssl_smooth_l1(ctx, h, z, 1.0f);
    assert_float_equal(s->data[0], 0.8125f, 1e-7);
    assert_float_equal(ssl_smooth_l1(ctx, h, z, 0.0f)->data[0], 1.25f, 1e-7);
    /* 0.5 d^2 / beta below beta: with beta 4 both are quadratic, (0.03125 + 0.5) / 2 */
    assert_float_equal(ssl_smooth_l1(ctx, h, z, 4.0f)->data[0], 0.265625f, 1e-7);
    a->grad = z->grad = NULL;
    assert_int_equal(ssl_backward(ctx, s), SSL_OK);
    /* d/dh: (d / beta, sign d) / n = (0.25, 0.5) */
    assert_float_equal(h->grad[0], 0.25f, 1e-7);
    assert_float_equal(h->grad[1], 0.5f, 1e-7);
    /* l1 at d == 0 has gradient 0, as torch's sign(0). */
    ssl_tensor_t *e = ssl_tensor_from(ctx, 1, (int64_t[]){2}, (float[]){0, 3});
    e->requires_grad = 1;
    ssl_tensor_t *l = ssl_l1(ctx, e, z);
    assert_int_equal(ssl_backward(ctx, l), SSL_OK);
    assert_true(e->grad[0] == 0.0f && e->grad[1] == 0.5f);
    ssl_ctx_free(ctx);
}

static void test_regression_errors_and_null(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *a = ssl_tensor_zeros(ctx, 2, (int64_t[]){2, 3});
    ssl_tensor_t *b = ssl_tensor_zeros(ctx, 2, (int64_t[]){3, 2});
    ssl_tensor_t *f = ssl_tensor_zeros(ctx, 1, (int64_t[]){6});
    ssl_tensor_t *r = ssl_tensor_zeros(ctx, 2, (int64_t[]){1, 3}); /* broadcastable: still no */
    tu_assert_error(ssl_mse(ctx, a, b), SSL_ERR_SHAPE, "mse", "(2, 3)", "(3, 2)", NULL);
    tu_assert_error(ssl_l1(ctx, f, a), SSL_ERR_SHAPE, "l1", "(6)", "(2, 3)", NULL);
    tu_assert_error(ssl_smooth_l1(ctx, a, r, 1.0f), SSL_ERR_SHAPE, "smooth_l1", "(2, 3)", "(1, 3)",
                    NULL);
    tu_assert_error(ssl_smooth_l1(ctx, a, a, -1.0f), SSL_ERR_INVALID, "smooth_l1", "beta", NULL);
    tu_assert_error(ssl_smooth_l1(ctx, a, a, NAN), SSL_ERR_INVALID, "beta", NULL);
    ssl_set_error(SSL_ERR_IO, "earlier failure");
    assert_null(ssl_mse(ctx, NULL, a));
    assert_null(ssl_mse(ctx, a, NULL));
    assert_null(ssl_l1(ctx, NULL, a));
    assert_null(ssl_smooth_l1(ctx, a, NULL, 1.0f));
    assert_int_equal(ssl_last_status(), SSL_ERR_IO);
    assert_string_equal(ssl_last_error(), "earlier failure");
    ssl_clear_error();
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- cross_entropy */

static void test_cross_entropy(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(4u << 20);
    const int64_t shapes[][2] = {{1, 1}, {4, 10}, {3, 7}, {5, 300}, {37, 1000}, {2, 257}};
    for (int si = 0; si < 6; si++) {
        int64_t rows = shapes[si][0], c = shapes[si][1];
        int32_t lab[64];
        rand_labels(lab, rows, c, 40 + si);
        ssl_tensor_t *x = tu_rand(ctx, 2, shapes[si], 50 + si, -5, 5, 1);
        loss_case_t lc = {OP_CE, 0, lab};
        ssl_tensor_t *y = build(ctx, &x, &lc);
        assert_non_null(y);
        assert_int_equal(y->ndim, 0);
        float ref = ref_ce(x, lab);
        tu_assert_close(y->data, &ref, 1, 1e-6, 1e-6);
        if (x->numel <= 2000)
            assert_int_equal(tu_gradcheck(ctx, build, &lc, &x, 1, NULL), 0);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static void test_cross_entropy_hand_values(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    /* Uniform logits: log C whatever the labels. */
    ssl_tensor_t *u = ssl_tensor_fill(ctx, 2, (int64_t[]){5, 10}, 3.7f);
    assert_float_equal(ssl_cross_entropy(ctx, u, (int32_t[]){0, 9, 3, 3, 5})->data[0], logf(10),
                       1e-6);
    /* (1, 2, 3), label 2: log(1 + e^-1 + e^-2) */
    ssl_tensor_t *x = ssl_tensor_from(ctx, 2, (int64_t[]){1, 3}, (float[]){1, 2, 3});
    assert_float_equal(ssl_cross_entropy(ctx, x, (int32_t[]){2})->data[0], 0.40760596f, 1e-6);
    /* Huge logits stay finite. */
    ssl_tensor_t *big = ssl_tensor_from(ctx, 2, (int64_t[]){2, 2}, (float[]){1000, 0, 0, 1000});
    assert_float_equal(ssl_cross_entropy(ctx, big, (int32_t[]){1, 1})->data[0], 500.0f, 1e-3);
    assert_float_equal(ssl_cross_entropy(ctx, big, (int32_t[]){0, 1})->data[0], 0.0f, 1e-6);
    /* Gradient of uniform logits: (1/C - onehot) / N. */
    ssl_tensor_t *g = ssl_tensor_zeros(ctx, 2, (int64_t[]){2, 4});
    g->requires_grad = 1;
    assert_int_equal(ssl_backward(ctx, ssl_cross_entropy(ctx, g, (int32_t[]){1, 3})), SSL_OK);
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 4; j++)
            assert_float_equal(g->grad[r * 4 + j], (0.25f - (j == 2 * r + 1)) / 2, 1e-7);
    ssl_ctx_free(ctx);
}

/* The labels are copied: changing or freeing them before backward changes nothing. */
static void test_cross_entropy_labels_copied(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 2, (int64_t[]){3, 5}, 9, -2, 2, 1);
    int32_t *lab = malloc(3 * sizeof *lab);
    lab[0] = 4;
    lab[1] = 0;
    lab[2] = 2;
    ssl_tensor_t *y = ssl_cross_entropy(ctx, x, lab);
    assert_non_null(y);
    lab[0] = lab[1] = lab[2] = 1;
    free(lab);
    assert_int_equal(ssl_backward(ctx, y), SSL_OK);
    const int32_t orig[3] = {4, 0, 2};
    for (int r = 0; r < 3; r++) {
        double l = ref_lse(x->data + r * 5, 5);
        for (int j = 0; j < 5; j++) {
            float ref = (float)((exp(x->data[r * 5 + j] - l) - (j == orig[r])) / 3.0);
            assert_float_equal(x->grad[r * 5 + j], ref, 1e-6);
        }
    }
    ssl_ctx_free(ctx);
}

static void test_cross_entropy_errors_and_null(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_zeros(ctx, 2, (int64_t[]){4, 5});
    tu_assert_error(ssl_cross_entropy(ctx, x, (int32_t[]){0, 1, -1, 2}), SSL_ERR_INVALID,
                    "cross_entropy", "(4, 5)", "index 2", "-1", NULL);
    tu_assert_error(ssl_cross_entropy(ctx, x, (int32_t[]){0, 1, 2, 5}), SSL_ERR_INVALID, "index 3",
                    "is 5", NULL);
    tu_assert_error(ssl_cross_entropy(ctx, x, NULL), SSL_ERR_INVALID, "labels", NULL);
    ssl_tensor_t *x3 = ssl_tensor_zeros(ctx, 3, (int64_t[]){2, 3, 4});
    tu_assert_error(ssl_cross_entropy(ctx, x3, (int32_t[]){0, 0}), SSL_ERR_SHAPE, "cross_entropy",
                    "(2, 3, 4)", NULL);
    ssl_tensor_t *x1 = ssl_tensor_zeros(ctx, 1, (int64_t[]){5});
    tu_assert_error(ssl_cross_entropy(ctx, x1, (int32_t[]){0}), SSL_ERR_SHAPE, "(5)", NULL);
    /* soft: shapes must match exactly, logits must be 2-D */
    ssl_tensor_t *t = ssl_tensor_zeros(ctx, 2, (int64_t[]){4, 6});
    tu_assert_error(ssl_cross_entropy_soft(ctx, x, t), SSL_ERR_SHAPE, "cross_entropy_soft",
                    "(4, 5)", "(4, 6)", NULL);
    ssl_tensor_t *r = ssl_tensor_zeros(ctx, 2, (int64_t[]){1, 5});
    tu_assert_error(ssl_cross_entropy_soft(ctx, x, r), SSL_ERR_SHAPE, "(4, 5)", "(1, 5)", NULL);
    tu_assert_error(ssl_cross_entropy_soft(ctx, x1, x1), SSL_ERR_SHAPE, "(5)", NULL);
    ssl_set_error(SSL_ERR_IO, "earlier failure");
    assert_null(ssl_cross_entropy(ctx, NULL, (int32_t[]){0}));
    assert_null(ssl_cross_entropy(ctx, NULL, NULL));
    assert_null(ssl_cross_entropy_soft(ctx, NULL, x));
    assert_null(ssl_cross_entropy_soft(ctx, x, NULL));
    assert_int_equal(ssl_last_status(), SSL_ERR_IO);
    assert_string_equal(ssl_last_error(), "earlier failure");
    ssl_clear_error();
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- cross_entropy_soft */

static void test_cross_entropy_soft(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(4u << 20);
    const int64_t shapes[][2] = {{1, 1}, {4, 7}, {3, 10}, {2, 300}, {37, 1000}};
    for (int si = 0; si < 5; si++) {
        /* Targets need not sum to 1 (that exercises the softmax * sum_c t term); rows sum to
         * about 1 so the loss keeps the magnitude finite differences need. */
        float thi = 2.0f / (float)shapes[si][1];
        ssl_tensor_t *in[2] = {tu_rand(ctx, 2, shapes[si], 60 + si, -5, 5, 1),
                               tu_rand(ctx, 2, shapes[si], 70 + si, 0, thi, 1)};
        loss_case_t lc = {OP_CE_SOFT, 0, NULL};
        ssl_tensor_t *y = build(ctx, in, &lc);
        assert_non_null(y);
        assert_int_equal(y->ndim, 0);
        float ref = ref_ce_soft(in[0], in[1]);
        tu_assert_close(y->data, &ref, 1, 1e-6, 1e-6);
        if (in[0]->numel <= 2000) {
            assert_int_equal(tu_gradcheck(ctx, build, &lc, in, 2, NULL), 0);
            /* Only one side requiring a gradient. */
            for (int side = 0; side < 2; side++) {
                in[side]->requires_grad = 0;
                assert_int_equal(tu_gradcheck(ctx, build, &lc, in, 2, NULL), 0);
                assert_null(in[side]->grad);
                in[side]->requires_grad = 1;
            }
        }
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static void test_cross_entropy_soft_hand_values(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    /* One-hot targets give the hard-label loss and gradient. */
    ssl_tensor_t *x = tu_rand(ctx, 2, (int64_t[]){3, 6}, 3, -3, 3, 1);
    const int32_t lab[3] = {5, 0, 2};
    ssl_tensor_t *t = ssl_tensor_zeros(ctx, 2, (int64_t[]){3, 6});
    for (int r = 0; r < 3; r++)
        t->data[r * 6 + lab[r]] = 1;
    ssl_tensor_t *hard = ssl_cross_entropy(ctx, x, lab);
    assert_int_equal(ssl_backward(ctx, hard), SSL_OK);
    float gh[18];
    memcpy(gh, x->grad, sizeof gh);
    x->grad = NULL;
    ssl_tensor_t *soft = ssl_cross_entropy_soft(ctx, x, t);
    assert_float_equal(soft->data[0], hard->data[0], 1e-6);
    assert_int_equal(ssl_backward(ctx, soft), SSL_OK);
    tu_assert_close(x->grad, gh, 18, 1e-7, 1e-5);
    /* Uniform logits, target a distribution: log C. */
    ssl_tensor_t *u = ssl_tensor_fill(ctx, 2, (int64_t[]){2, 4}, -1.0f);
    ssl_tensor_t *p = ssl_tensor_from(ctx, 2, (int64_t[]){2, 4},
                                      (float[]){0.1f, 0.2f, 0.3f, 0.4f, 0.25f, 0.25f, 0.5f, 0});
    p->requires_grad = 1;
    ssl_tensor_t *l = ssl_cross_entropy_soft(ctx, u, p);
    assert_float_equal(l->data[0], logf(4), 1e-6);
    /* Gradient to the target: -log_softmax / N = log(4) / 2 everywhere. */
    assert_int_equal(ssl_backward(ctx, l), SSL_OK);
    for (int i = 0; i < 8; i++)
        assert_float_equal(p->grad[i], logf(4) / 2, 1e-6);
    ssl_ctx_free(ctx);
}

/* Same bits whatever the number of threads. */
static void test_thread_count_independent(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(16u << 20);
    ssl_tensor_t *in[2] = {tu_rand(ctx, 2, (int64_t[]){200, 1001}, 1, -3, 3, 1),
                           tu_rand(ctx, 2, (int64_t[]){200, 1001}, 2, 0, 1, 1)};
    int32_t lab[200];
    rand_labels(lab, 200, 1001, 3);
    const loss_case_t cases[] = {{OP_MSE, 0, NULL},
                                 {OP_L1, 0, NULL},
                                 {OP_SMOOTH_L1, 0.3f, NULL},
                                 {OP_CE, 0, lab},
                                 {OP_CE_SOFT, 0, NULL}};
    for (int ci = 0; ci < 5; ci++) {
        float val[2], *grad[2];
        for (int th = 0; th < 2; th++) {
            ssl_set_num_threads(th + 1);
            in[0]->grad = NULL;
            ssl_tensor_t *y = build(ctx, in, (void *)&cases[ci]);
            assert_non_null(y);
            val[th] = y->data[0];
            assert_int_equal(ssl_backward(ctx, y), SSL_OK);
            grad[th] = in[0]->grad;
        }
        assert_memory_equal(&val[0], &val[1], sizeof(float));
        assert_memory_equal(grad[0], grad[1], (size_t)in[0]->numel * sizeof(float));
    }
    ssl_set_num_threads(2);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regression_losses),
        cmocka_unit_test(test_regression_hand_values),
        cmocka_unit_test(test_regression_errors_and_null),
        cmocka_unit_test(test_cross_entropy),
        cmocka_unit_test(test_cross_entropy_hand_values),
        cmocka_unit_test(test_cross_entropy_labels_copied),
        cmocka_unit_test(test_cross_entropy_errors_and_null),
        cmocka_unit_test(test_cross_entropy_soft),
        cmocka_unit_test(test_cross_entropy_soft_hand_values),
        cmocka_unit_test(test_thread_count_independent),
    };
    return cmocka_run_group_tests_name("ops_loss", tests, NULL, NULL);
}
