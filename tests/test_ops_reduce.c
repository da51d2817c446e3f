/* Reductions (sum, mean, sum_all, mean_all) and the softmax family (softmax, log_softmax,
 * l2_normalize): forward against plain double-precision references, backward against central
 * differences, hand-computed values, thread-count independence and error paths. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape_case {
    int nd;
    int64_t s[SSL_MAX_DIMS];
} shape_case_t;

/* Odd sizes, a size-1 axis, a strided axis wider than the kernels' column block (300 > 256),
 * rows longer than their chunk, and sizes above the OpenMP threshold. */
static const shape_case_t SHAPES[] = {
    {1, {7}},         {2, {3, 5}},    {3, {2, 3, 4}},    {4, {2, 1, 5, 3}},
    {3, {3, 5, 300}}, {2, {64, 300}}, {3, {4, 1100, 5}}, {2, {5, 1000}},
};
#define N_SHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))
#define GRADCHECK_MAX 200 /* numel above which the shape is only checked forward */

/* x viewed as (outer, dim, inner) around axis: plain loops, written independently of the
 * library's helper. */
static void split_dims(const ssl_tensor_t *x, int axis, int64_t *outer, int64_t *dim,
                       int64_t *inner)
{
    int ax = axis < 0 ? axis + x->ndim : axis;
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < ax; i++)
        *outer *= x->shape[i];
    for (int i = ax + 1; i < x->ndim; i++)
        *inner *= x->shape[i];
    *dim = x->shape[ax];
}

#define AT(o, d, j) (((o)*dim + (d)) * inner + (j))

static void ref_reduce(const ssl_tensor_t *x, int axis, int mean, float *out)
{
    int64_t outer, dim, inner;
    split_dims(x, axis, &outer, &dim, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double s = 0;
            for (int64_t d = 0; d < dim; d++)
                s += x->data[AT(o, d, j)];
            out[o * inner + j] = (float)(mean ? s / (double)dim : s);
        }
}

static void ref_softmax(const ssl_tensor_t *x, int axis, int log_out, float *out)
{
    int64_t outer, dim, inner;
    split_dims(x, axis, &outer, &dim, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double m = -INFINITY, s = 0;
            for (int64_t d = 0; d < dim; d++)
                m = fmax(m, x->data[AT(o, d, j)]);
            for (int64_t d = 0; d < dim; d++)
                s += exp(x->data[AT(o, d, j)] - m);
            for (int64_t d = 0; d < dim; d++) {
                double v = x->data[AT(o, d, j)] - m;
                out[AT(o, d, j)] = (float)(log_out ? v - log(s) : exp(v) / s);
            }
        }
}

static void ref_l2(const ssl_tensor_t *x, int axis, float eps, float *out)
{
    int64_t outer, dim, inner;
    split_dims(x, axis, &outer, &dim, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double ss = 0;
            for (int64_t d = 0; d < dim; d++)
                ss += (double)x->data[AT(o, d, j)] * x->data[AT(o, d, j)];
            double den = fmax(sqrt(ss), eps);
            for (int64_t d = 0; d < dim; d++)
                out[AT(o, d, j)] = (float)(x->data[AT(o, d, j)] / den);
        }
}

typedef struct op_case {
    int op; /* which op of the file */
    int axis, keepdim;
    float eps;
} op_case_t;

enum { OP_SUM, OP_MEAN, OP_SUM_ALL, OP_MEAN_ALL, OP_SOFTMAX, OP_LOG_SOFTMAX, OP_L2 };

static ssl_tensor_t *build(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    const op_case_t *c = user;
    switch (c->op) {
    case OP_SUM:
        return ssl_sum(ctx, in[0], c->axis, c->keepdim);
    case OP_MEAN:
        return ssl_mean(ctx, in[0], c->axis, c->keepdim);
    case OP_SUM_ALL:
        return ssl_sum_all(ctx, in[0]);
    case OP_MEAN_ALL:
        return ssl_mean_all(ctx, in[0]);
    case OP_SOFTMAX:
        return ssl_softmax(ctx, in[0], c->axis);
    case OP_LOG_SOFTMAX:
        return ssl_log_softmax(ctx, in[0], c->axis);
    default:
        return ssl_l2_normalize(ctx, in[0], c->axis, c->eps);
    }
}

/* ---------------------------------------------------------------- sum / mean */

static void test_sum_mean_axis(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int si = 0; si < N_SHAPES; si++) {
        const shape_case_t *sc = &SHAPES[si];
        for (int op = OP_SUM; op <= OP_MEAN; op++)
            for (int axis = -sc->nd; axis < sc->nd; axis++)
                for (int keep = 0; keep < 2; keep++) {
                    ssl_tensor_t *x = tu_rand(ctx, sc->nd, sc->s, 100 + si, -1, 1, 1);
                    op_case_t c = {op, axis, keep, 0};
                    ssl_tensor_t *y = build(ctx, &x, &c);
                    assert_non_null(y);
                    int ax = axis < 0 ? axis + sc->nd : axis;
                    assert_int_equal(y->ndim, keep ? sc->nd : sc->nd - 1);
                    for (int i = 0, o = 0; i < sc->nd; i++) {
                        if (i == ax && !keep)
                            continue;
                        assert_int_equal(y->shape[o++], i == ax ? 1 : sc->s[i]);
                    }
                    float *ref = malloc((size_t)y->numel * sizeof(float));
                    ref_reduce(x, axis, op == OP_MEAN, ref);
                    tu_assert_close(y->data, ref, y->numel, 1e-6, 1e-6);
                    free(ref);
                    if (x->numel <= GRADCHECK_MAX)
                        assert_int_equal(tu_gradcheck(ctx, build, &c, &x, 1, NULL), 0);
                    ssl_ctx_reset(ctx);
                }
    }
    ssl_ctx_free(ctx);
}

static void test_reduce_hand_values(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_from(ctx, 2, (int64_t[]){2, 3}, (float[]){1, 2, 3, 4, 5, 6});
    ssl_tensor_t *s0 = ssl_sum(ctx, x, 0, 0);
    assert_int_equal(s0->ndim, 1);
    assert_true(s0->data[0] == 5 && s0->data[1] == 7 && s0->data[2] == 9);
    ssl_tensor_t *s1 = ssl_sum(ctx, x, -1, 0);
    assert_true(s1->data[0] == 6 && s1->data[1] == 15);
    ssl_tensor_t *m1 = ssl_mean(ctx, x, 1, 1);
    assert_int_equal(m1->ndim, 2);
    assert_int_equal(m1->shape[0], 2);
    assert_int_equal(m1->shape[1], 1);
    assert_true(m1->data[0] == 2 && m1->data[1] == 5);
    ssl_tensor_t *sa = ssl_sum_all(ctx, x), *ma = ssl_mean_all(ctx, x);
    assert_int_equal(sa->ndim, 0);
    assert_int_equal(sa->numel, 1);
    assert_int_equal(ma->ndim, 0);
    assert_true(sa->data[0] == 21 && ma->data[0] == 3.5f);
    /* 1-D input reduced over its only axis gives a scalar; keepdim gives (1). */
    ssl_tensor_t *v = ssl_tensor_from(ctx, 1, (int64_t[]){4}, (float[]){1, 2, 3, 4});
    ssl_tensor_t *sv = ssl_mean(ctx, v, 0, 0), *kv = ssl_sum(ctx, v, 0, 1);
    assert_int_equal(sv->ndim, 0);
    assert_true(sv->data[0] == 2.5f);
    assert_int_equal(kv->ndim, 1);
    assert_int_equal(kv->shape[0], 1);
    assert_true(kv->data[0] == 10);
    /* Backward by hand: d mean(x, axis 1) / dx with upstream (1, 2) is (1/3, 2/3) per row. */
    x->requires_grad = 1;
    ssl_tensor_t *m = ssl_mean(ctx, x, 1, 0);
    assert_int_equal(ssl_backward_with(ctx, m, (float[]){1, 2}), SSL_OK);
    for (int i = 0; i < 3; i++) {
        assert_float_equal(x->grad[i], 1.0f / 3, 1e-7);
        assert_float_equal(x->grad[3 + i], 2.0f / 3, 1e-7);
    }
    ssl_ctx_free(ctx);
}

/* Empty axes: a sum of nothing is 0, a mean of nothing NaN (as torch). */
static void test_reduce_empty(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_zeros(ctx, 2, (int64_t[]){2, 0});
    x->requires_grad = 1;
    ssl_tensor_t *s = ssl_sum(ctx, x, 1, 0), *m = ssl_mean(ctx, x, 1, 0);
    assert_int_equal(s->numel, 2);
    assert_true(s->data[0] == 0.0f && s->data[1] == 0.0f);
    assert_true(isnan(m->data[0]) && isnan(m->data[1]));
    ssl_tensor_t *s0 = ssl_sum(ctx, x, 0, 1);
    assert_int_equal(s0->ndim, 2);
    assert_int_equal(s0->numel, 0);
    ssl_tensor_t *sa = ssl_sum_all(ctx, x), *ma = ssl_mean_all(ctx, x);
    assert_true(sa->data[0] == 0.0f && isnan(ma->data[0]));
    assert_int_equal(ssl_backward(ctx, sa), SSL_OK);
    assert_int_equal(ssl_backward_with(ctx, s, (float[]){1, 1}), SSL_OK);
    ssl_ctx_free(ctx);
}

static void test_sum_mean_all(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    /* One block, several blocks, above the OpenMP threshold. */
    const int64_t sizes[] = {1, 13, 4096, 10007, 100003};
    for (int si = 0; si < 5; si++) {
        ssl_tensor_t *x = tu_rand(ctx, 1, &sizes[si], 7 + si, -1, 2, 1);
        double s = 0;
        for (int64_t i = 0; i < x->numel; i++)
            s += x->data[i];
        for (int op = OP_SUM_ALL; op <= OP_MEAN_ALL; op++) {
            op_case_t c = {op, 0, 0, 0};
            ssl_tensor_t *y = build(ctx, &x, &c);
            assert_non_null(y);
            assert_int_equal(y->ndim, 0);
            float ref = (float)(op == OP_SUM_ALL ? s : s / (double)x->numel);
            tu_assert_close(y->data, &ref, 1, 1e-6, 1e-6);
            if (x->numel <= GRADCHECK_MAX)
                assert_int_equal(tu_gradcheck(ctx, build, &c, &x, 1, NULL), 0);
        }
        ssl_ctx_reset(ctx);
    }
    /* Multi-dimensional input, gradient of mean_all is 1/numel everywhere. */
    ssl_tensor_t *x = tu_rand(ctx, 3, (int64_t[]){2, 3, 5}, 3, -1, 1, 1);
    op_case_t c = {OP_MEAN_ALL, 0, 0, 0};
    assert_int_equal(tu_gradcheck(ctx, build, &c, &x, 1, NULL), 0);
    for (int i = 1; i < 30; i++) /* the same for every element */
        assert_true(x->grad[i] == x->grad[0]);
    assert_true(x->grad[0] != 0.0f);
    ssl_ctx_free(ctx);
}

/* Same bits whatever the number of threads. */
static void test_thread_count_independent(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(64u << 20);
    ssl_tensor_t *x = tu_rand(ctx, 3, (int64_t[]){40, 300, 33}, 5, -1, 1, 0);
    const op_case_t cases[] = {{OP_SUM, 0, 0, 0},     {OP_SUM, 1, 0, 0},
                               {OP_MEAN, 2, 0, 0},    {OP_SUM_ALL, 0, 0, 0},
                               {OP_SOFTMAX, 1, 0, 0}, {OP_LOG_SOFTMAX, -1, 0, 0},
                               {OP_L2, 0, 0, 1e-12f}};
    for (int ci = 0; ci < (int)(sizeof cases / sizeof cases[0]); ci++) {
        op_case_t c = cases[ci];
        ssl_set_num_threads(1);
        ssl_tensor_t *a = build(ctx, &x, &c);
        ssl_set_num_threads(2);
        ssl_tensor_t *b = build(ctx, &x, &c);
        assert_non_null(a);
        assert_non_null(b);
        assert_memory_equal(a->data, b->data, (size_t)a->numel * sizeof(float));
    }
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- softmax, log_softmax */

static void test_softmax_forward_backward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(8u << 20);
    for (int si = 0; si < N_SHAPES; si++) {
        const shape_case_t *sc = &SHAPES[si];
        for (int op = OP_SOFTMAX; op <= OP_LOG_SOFTMAX; op++)
            for (int axis = -sc->nd; axis < sc->nd; axis++) {
                ssl_tensor_t *x = tu_rand(ctx, sc->nd, sc->s, 200 + si, -4, 4, 1);
                op_case_t c = {op, axis, 0, 0};
                ssl_tensor_t *y = build(ctx, &x, &c);
                assert_non_null(y);
                assert_true(ssl_same_shape(x, y));
                float *ref = malloc((size_t)y->numel * sizeof(float));
                ref_softmax(x, axis, op == OP_LOG_SOFTMAX, ref);
                tu_assert_close(y->data, ref, y->numel, 1e-6, 1e-5);
                free(ref);
                if (x->numel <= GRADCHECK_MAX)
                    assert_int_equal(tu_gradcheck(ctx, build, &c, &x, 1, NULL), 0);
                ssl_ctx_reset(ctx);
            }
    }
    ssl_ctx_free(ctx);
}

static void test_softmax_hand_values_and_stability(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_from(ctx, 1, (int64_t[]){2}, (float[]){0, logf(3)});
    ssl_tensor_t *y = ssl_softmax(ctx, x, 0);
    assert_float_equal(y->data[0], 0.25f, 1e-7);
    assert_float_equal(y->data[1], 0.75f, 1e-7);
    /* Huge logits: no overflow. */
    ssl_tensor_t *big =
        ssl_tensor_from(ctx, 2, (int64_t[]){2, 3}, (float[]){1000, 1000, -1000, 5e30f, 0, -5e30f});
    ssl_tensor_t *sb = ssl_softmax(ctx, big, 1);
    assert_float_equal(sb->data[0], 0.5f, 1e-7);
    assert_float_equal(sb->data[1], 0.5f, 1e-7);
    assert_true(sb->data[2] == 0.0f);
    assert_true(sb->data[3] == 1.0f && sb->data[4] == 0.0f && sb->data[5] == 0.0f);
    ssl_tensor_t *lb = ssl_log_softmax(ctx, big, 1);
    assert_float_equal(lb->data[0], -logf(2), 1e-6);
    assert_float_equal(lb->data[2], -2000 - logf(2), 1e-3);
    /* -inf entries get probability 0, log-probability -inf. */
    ssl_tensor_t *mi = ssl_tensor_from(ctx, 1, (int64_t[]){3}, (float[]){1, -INFINITY, 1});
    ssl_tensor_t *sm = ssl_softmax(ctx, mi, 0), *lm = ssl_log_softmax(ctx, mi, 0);
    assert_true(sm->data[1] == 0.0f && sm->data[0] == 0.5f);
    assert_true(isinf(lm->data[1]) && lm->data[1] < 0);
    /* NaN propagates (a diverged model must show up in the loss). */
    ssl_tensor_t *nn = ssl_tensor_from(ctx, 1, (int64_t[]){3}, (float[]){1, NAN, 2});
    ssl_tensor_t *sn = ssl_softmax(ctx, nn, 0);
    assert_true(isnan(sn->data[0]) && isnan(sn->data[2]));
    /* Accuracy of the exponential over its whole range: softmax(0, t)[1] = e^t / (1 + e^t). */
    int64_t n = 2000;
    ssl_tensor_t *sw = ssl_tensor_2d(ctx, n, 2);
    float *ref = malloc((size_t)n * 2 * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        float t = -87.0f * (float)i / (float)(n - 1) + 0.001f * (float)(i % 7);
        sw->data[2 * i] = 0;
        sw->data[2 * i + 1] = t;
        ref[2 * i] = (float)(1.0 / (1.0 + exp((double)t)));
        ref[2 * i + 1] = (float)(exp((double)t) / (1.0 + exp((double)t)));
    }
    ssl_tensor_t *ys = ssl_softmax(ctx, sw, 1);
    tu_assert_close(ys->data, ref, n * 2, 1e-37, 4e-7);
    free(ref);
    /* Below ln(FLT_MIN) the probability is flushed to 0 rather than denormal. */
    ssl_tensor_t *tiny = ssl_tensor_from(ctx, 1, (int64_t[]){2}, (float[]){0, -100});
    ssl_tensor_t *yt = ssl_softmax(ctx, tiny, 0);
    assert_true(yt->data[0] == 1.0f && yt->data[1] < 1e-37f);
    ssl_ctx_free(ctx);
}

/* Backward by hand: for y = softmax(x) and upstream g, dx = y (g - <g, y>). */
static void test_softmax_backward_hand(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_from(ctx, 1, (int64_t[]){2}, (float[]){0, logf(3)});
    x->requires_grad = 1;
    ssl_tensor_t *y = ssl_softmax(ctx, x, 0);
    assert_int_equal(ssl_backward_with(ctx, y, (float[]){1, 0}), SSL_OK);
    /* <g, y> = 0.25: dx = (0.25 * 0.75, 0.75 * -0.25) */
    assert_float_equal(x->grad[0], 0.1875f, 1e-7);
    assert_float_equal(x->grad[1], -0.1875f, 1e-7);
    x->grad = NULL;
    ssl_tensor_t *l = ssl_log_softmax(ctx, x, 0);
    assert_int_equal(ssl_backward_with(ctx, l, (float[]){1, 1}), SSL_OK);
    /* dx = g - softmax * sum(g) = (1 - 0.5, 1 - 1.5) */
    assert_float_equal(x->grad[0], 0.5f, 1e-6);
    assert_float_equal(x->grad[1], -0.5f, 1e-6);
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- l2_normalize */

static void test_l2_normalize(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(8u << 20);
    for (int si = 0; si < N_SHAPES; si++) {
        const shape_case_t *sc = &SHAPES[si];
        for (int axis = -sc->nd; axis < sc->nd; axis++) {
            ssl_tensor_t *x = tu_rand(ctx, sc->nd, sc->s, 300 + si, -1, 1, 1);
            op_case_t c = {OP_L2, axis, 0, 1e-12f};
            ssl_tensor_t *y = build(ctx, &x, &c);
            assert_non_null(y);
            assert_true(ssl_same_shape(x, y));
            float *ref = malloc((size_t)y->numel * sizeof(float));
            ref_l2(x, axis, c.eps, ref);
            tu_assert_close(y->data, ref, y->numel, 1e-7, 1e-6);
            free(ref);
            /* a size-1 axis is the sign function: its derivative is 0, no kink when x != 0 */
            if (x->numel <= GRADCHECK_MAX)
                assert_int_equal(tu_gradcheck(ctx, build, &c, &x, 1, NULL), 0);
            ssl_ctx_reset(ctx);
        }
    }
    /* Hand value. */
    ssl_tensor_t *v = ssl_tensor_from(ctx, 2, (int64_t[]){1, 2}, (float[]){3, 4});
    ssl_tensor_t *y = ssl_l2_normalize(ctx, v, -1, 1e-12f);
    assert_float_equal(y->data[0], 0.6f, 1e-7);
    assert_float_equal(y->data[1], 0.8f, 1e-7);
    /* A zero vector stays zero (norm clamped to eps), as in torch. */
    ssl_tensor_t *z = ssl_tensor_zeros(ctx, 2, (int64_t[]){2, 3});
    ssl_tensor_t *yz = ssl_l2_normalize(ctx, z, 1, 1e-12f);
    for (int i = 0; i < 6; i++)
        assert_true(yz->data[i] == 0.0f);
    ssl_ctx_free(ctx);
}

/* Both regimes of the norm clamp, along the last axis (row kernel) and an inner axis (column
 * kernel): rows of scale ~1 have norms well above eps = 0.5, rows of scale ~0.01 well below,
 * so no finite-difference step crosses the clamp. */
static void test_l2_normalize_clamped_gradient(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int axis = 1; axis <= 2; axis++) {
        ssl_tensor_t *x = tu_rand_away0(ctx, 3, (int64_t[]){2, 4, 3}, 11 + axis, -1, 1, 0.3f, 1);
        int64_t outer, dim, inner;
        split_dims(x, axis, &outer, &dim, &inner);
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < inner; j++)
                if ((o + j) % 2) /* shrink every other vector below eps */
                    for (int64_t d = 0; d < dim; d++)
                        x->data[AT(o, d, j)] *= 0.01f;
        op_case_t c = {OP_L2, axis, 0, 0.5f};
        ssl_tensor_t *y = build(ctx, &x, &c);
        float ref[24];
        ref_l2(x, axis, c.eps, ref);
        tu_assert_close(y->data, ref, 24, 1e-7, 1e-6);
        assert_int_equal(tu_gradcheck(ctx, build, &c, &x, 1, NULL), 0);
        /* In the clamped vectors the gradient is exactly g / eps: check with g = 1. */
        x->grad = NULL;
        y = build(ctx, &x, &c);
        float ones[24];
        for (int i = 0; i < 24; i++)
            ones[i] = 1;
        assert_int_equal(ssl_backward_with(ctx, y, ones), SSL_OK);
        for (int64_t oo = 0; oo < outer; oo++)
            for (int64_t j = 0; j < inner; j++)
                if ((oo + j) % 2)
                    for (int64_t d = 0; d < dim; d++)
                        assert_float_equal(x->grad[AT(oo, d, j)], 2.0f, 1e-6);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- errors */

static void test_errors_and_null(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_zeros(ctx, 2, (int64_t[]){2, 3});
    tu_assert_error(ssl_sum(ctx, x, 2, 0), SSL_ERR_SHAPE, "sum", "(2, 3)", "axis 2", NULL);
    tu_assert_error(ssl_mean(ctx, x, -3, 1), SSL_ERR_SHAPE, "mean", "(2, 3)", "axis -3", NULL);
    tu_assert_error(ssl_softmax(ctx, x, 5), SSL_ERR_SHAPE, "softmax", "(2, 3)", "axis 5", NULL);
    tu_assert_error(ssl_log_softmax(ctx, x, -4), SSL_ERR_SHAPE, "log_softmax", "(2, 3)", "axis -4",
                    NULL);
    tu_assert_error(ssl_l2_normalize(ctx, x, 2, 1e-12f), SSL_ERR_SHAPE, "l2_normalize", "(2, 3)",
                    "axis 2", NULL);
    tu_assert_error(ssl_l2_normalize(ctx, x, 1, -1.0f), SSL_ERR_INVALID, "l2_normalize", "eps",
                    NULL);
    tu_assert_error(ssl_l2_normalize(ctx, x, 1, NAN), SSL_ERR_INVALID, "eps", NULL);
    /* A rank-0 tensor has no axis to reduce. */
    ssl_tensor_t *s = ssl_sum_all(ctx, x);
    tu_assert_error(ssl_sum(ctx, s, 0, 0), SSL_ERR_SHAPE, "sum", "()", NULL);
    /* NULL in, NULL out, the first error kept. */
    ssl_set_error(SSL_ERR_IO, "earlier failure");
    assert_null(ssl_sum(ctx, NULL, 0, 0));
    assert_null(ssl_mean(ctx, NULL, 0, 1));
    assert_null(ssl_sum_all(ctx, NULL));
    assert_null(ssl_mean_all(ctx, NULL));
    assert_null(ssl_softmax(ctx, NULL, -1));
    assert_null(ssl_log_softmax(ctx, NULL, -1));
    assert_null(ssl_l2_normalize(ctx, NULL, -1, 1e-12f));
    assert_int_equal(ssl_last_status(), SSL_ERR_IO);
    assert_string_equal(ssl_last_error(), "earlier failure");
    ssl_clear_error();
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_mean_axis),
        cmocka_unit_test(test_reduce_hand_values),
        cmocka_unit_test(test_reduce_empty),
        cmocka_unit_test(test_sum_mean_all),
        cmocka_unit_test(test_thread_count_independent),
        cmocka_unit_test(test_softmax_forward_backward),
        cmocka_unit_test(test_softmax_hand_values_and_stability),
        cmocka_unit_test(test_softmax_backward_hand),
        cmocka_unit_test(test_l2_normalize),
        cmocka_unit_test(test_l2_normalize_clamped_gradient),
        cmocka_unit_test(test_errors_and_null),
    };
    return cmocka_run_group_tests_name("ops_reduce", tests, NULL, NULL);
}
