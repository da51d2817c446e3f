/* core's collective ops (core/comm.h) in one process, against a "mirror" comm: two ranks that
 * hold the same data (a sum over the ranks doubles, a gather repeats). A step on the mirror is
 * then the step of one process on the batch stacked twice: SyncBN's output and gradients (half
 * the doubled batch's: each rank has one half), and
 * all_gather's gradient, must equal those of the plain ops on the doubled batch. And the
 * grad-ready hook: every parameter reported once, with its final gradient. The same ops across
 * real ranks: tests/dist_mpi.c. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/comm.h"

static int m_sum64(void *u, double *b, int64_t n)
{
    (void)u;
    for (int64_t i = 0; i < n; i++)
        b[i] *= 2;
    return SSL_OK;
}
static int m_sum32(void *u, float *b, int64_t n)
{
    (void)u;
    for (int64_t i = 0; i < n; i++)
        b[i] *= 2;
    return SSL_OK;
}
static int m_gather(void *u, const float *s, int64_t n, float *r)
{
    (void)u;
    memcpy(r, s, sizeof(float) * (size_t)n);
    memcpy(r + n, s, sizeof(float) * (size_t)n);
    return SSL_OK;
}
static const ssl_comm_t k_mirror = {0, 2, 1, NULL, m_sum64, m_sum32, m_gather};

/* x twice along dim 0 */
static ssl_tensor_t *twice(ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    ssl_tensor_t *xs[2] = {x, x};
    return ssl_concat(ctx, xs, 2, 0);
}

/* SyncBN (kind 0 plain, 1 relu, 2 add relu) on the mirror against batch norm of the doubled
 * batch: outputs, running statistics and the gradients of x, weight and bias. The mirrored
 * rank's x gradient is the doubled batch's first half; weight and bias gradients are this
 * rank's part: half of the doubled batch's. */
static void check_sync_bn(int ndim, const int64_t *shape, int kind)
{
    ssl_ctx_t *ctx = tu_ctx();
    int64_t C = shape[1], n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    ssl_tensor_t *x = tu_rand(ctx, ndim, shape, 11, -2, 3, 1);
    ssl_tensor_t *res = tu_rand(ctx, ndim, shape, 12, -1, 1, 1);
    ssl_tensor_t *w = tu_rand(ctx, 1, &C, 13, 0.5f, 1.5f, 1), *b = tu_rand(ctx, 1, &C, 14, -1, 1, 1);
    ssl_tensor_t *rm[2], *rv[2];
    for (int i = 0; i < 2; i++) {
        rm[i] = tu_rand(ctx, 1, &C, 15, -1, 1, 0);
        rv[i] = tu_rand(ctx, 1, &C, 16, 0.5f, 2, 0);
    }
    float *dy = malloc(sizeof(float) * (size_t)(2 * n));
    for (int64_t i = 0; i < n; i++)
        dy[i] = dy[i + n] = ssl_rng_uniform(21, 0, (uint64_t)i) - 0.5f;
    /* the doubled batch, one process */
    ssl_tensor_t *x2 = twice(ctx, x), *r2 = twice(ctx, res);
    ssl_tensor_t *y2 = kind == 0   ? ssl_batch_norm(ctx, x2, w, b, rm[0], rv[0], 1, 0.1f, 1e-5f)
                       : kind == 1 ? ssl_batch_norm_relu(ctx, x2, w, b, rm[0], rv[0], 1, 0.1f, 1e-5f)
                                   : ssl_batch_norm_add_relu(ctx, x2, w, b, rm[0], rv[0], r2, 1,
                                                             0.1f, 1e-5f);
    assert_non_null(y2);
    assert_int_equal(ssl_backward_with(ctx, y2, dy), SSL_OK);
    float *ref = malloc(sizeof(float) * (size_t)(2 * n + 4 * C + n));
    memcpy(ref, y2->data, sizeof(float) * (size_t)n);
    /* x and res appear twice in the doubled batch: their gradients add both halves' */
    for (int64_t i = 0; i < n; i++)
        ref[n + i] = x->grad[i] / 2;
    for (int64_t c = 0; c < C; c++) {
        ref[2 * n + c] = w->grad[c] / 2;
        ref[2 * n + C + c] = b->grad[c] / 2;
    }
    for (int64_t i = 0; kind == 2 && i < n; i++)
        ref[2 * n + 2 * C + i] = res->grad[i] / 2;
    /* the mirrored rank */
    memset(x->grad, 0, sizeof(float) * (size_t)n);
    if (kind == 2)
        memset(res->grad, 0, sizeof(float) * (size_t)n);
    memset(w->grad, 0, sizeof(float) * (size_t)C);
    memset(b->grad, 0, sizeof(float) * (size_t)C);
    ssl__ctx_set_comm(ctx, &k_mirror);
    ssl_tensor_t *y = kind == 0   ? ssl_batch_norm(ctx, x, w, b, rm[1], rv[1], 1, 0.1f, 1e-5f)
                      : kind == 1 ? ssl_batch_norm_relu(ctx, x, w, b, rm[1], rv[1], 1, 0.1f, 1e-5f)
                                  : ssl_batch_norm_add_relu(ctx, x, w, b, rm[1], rv[1], res, 1, 0.1f,
                                                            1e-5f);
    assert_non_null(y);
    assert_int_equal(ssl_backward_with(ctx, y, dy), SSL_OK);
    ssl__ctx_set_comm(ctx, NULL);
    tu_assert_close(y->data, ref, n, 1e-5, 1e-4);
    tu_assert_close(x->grad, ref + n, n, 1e-5, 1e-3);
    tu_assert_close(w->grad, ref + 2 * n, C, 1e-5, 1e-4);
    tu_assert_close(b->grad, ref + 2 * n + C, C, 1e-5, 1e-4);
    if (kind == 2)
        tu_assert_close(res->grad, ref + 2 * n + 2 * C, n, 1e-6, 1e-5);
    tu_assert_close(rm[1]->data, rm[0]->data, C, 1e-6, 1e-5);
    tu_assert_close(rv[1]->data, rv[0]->data, C, 1e-6, 1e-5);
    free(dy);
    free(ref);
    ssl_ctx_free(ctx);
}

static void test_sync_bn_planes(void **state)
{
    (void)state;
    for (int kind = 0; kind < 3; kind++)
        check_sync_bn(4, (int64_t[]){3, 5, 4, 6}, kind);
}

static void test_sync_bn_rows(void **state)
{
    (void)state;
    for (int kind = 0; kind < 3; kind++)
        check_sync_bn(2, (int64_t[]){6, 70}, kind);
}

/* sync_bn off, or an eval-mode batch norm: the comm changes nothing. */
static void test_sync_bn_off(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t shape[4] = {3, 2, 3, 3}, C = 2;
    ssl_tensor_t *x = tu_rand(ctx, 4, shape, 1, -1, 1, 0);
    ssl_tensor_t *rm = tu_rand(ctx, 1, &C, 2, -1, 1, 0), *rv = tu_rand(ctx, 1, &C, 3, 1, 2, 0);
    ssl_tensor_t *a = ssl_batch_norm(ctx, x, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f);
    ssl_tensor_t *e = ssl_batch_norm(ctx, x, NULL, NULL, rm, rv, 0, 0.1f, 1e-5f);
    ssl_comm_t off = k_mirror;
    off.sync_bn = 0;
    ssl__ctx_set_comm(ctx, &off);
    ssl_tensor_t *a2 = ssl_batch_norm(ctx, x, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f);
    ssl__ctx_set_comm(ctx, &k_mirror);
    ssl_tensor_t *e2 = ssl_batch_norm(ctx, x, NULL, NULL, rm, rv, 0, 0.1f, 1e-5f);
    ssl__ctx_set_comm(ctx, NULL);
    assert_memory_equal(a->data, a2->data, sizeof(float) * (size_t)x->numel);
    assert_memory_equal(e->data, e2->data, sizeof(float) * (size_t)x->numel);
    ssl_ctx_free(ctx);
}

/* all_gather: (2 B, D) with this rank's rows twice. Each (mirrored) rank's loss reads the
 * gathered rows; the gradient of x is the sum over both ranks' losses of the gradient at this
 * rank's rows, which equals the gradient of one loss over concat(x, x) (its two copies). */
static void test_all_gather(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t shape[2] = {4, 3};
    ssl_tensor_t *x = tu_rand(ctx, 2, shape, 5, -1, 1, 1);
    assert_ptr_equal(ssl__all_gather(ctx, x), x); /* one process: the input itself */
    ssl_tensor_t *ref = twice(ctx, x);
    ssl_tensor_t *lref = ssl_sum_all(ctx, ssl_mul(ctx, ssl_exp(ctx, ref), ref));
    assert_int_equal(ssl_backward(ctx, lref), SSL_OK);
    float g1[12];
    memcpy(g1, x->grad, sizeof g1); /* the gradient of one rank's loss over both copies */
    memset(x->grad, 0, sizeof g1);
    ssl__ctx_set_comm(ctx, &k_mirror);
    ssl_tensor_t *y = ssl__all_gather(ctx, x);
    assert_non_null(y);
    assert_int_equal(y->shape[0], 8);
    assert_memory_equal(y->data, ref->data, sizeof(float) * 24);
    ssl_tensor_t *l = ssl_sum_all(ctx, ssl_mul(ctx, ssl_exp(ctx, y), y));
    assert_int_equal(ssl_backward(ctx, l), SSL_OK);
    ssl__ctx_set_comm(ctx, NULL);
    for (int i = 0; i < 12; i++)
        assert_float_equal(x->grad[i], g1[i], 1e-5 * fabsf(g1[i]) + 1e-6);
    ssl_ctx_free(ctx);
}

/* The grad-ready hook reports each parameter once, after its last gradient update: its
 * gradient then is the final one. */
typedef struct seen {
    ssl_tensor_t *t[8];
    float snap[8][64];
    int n;
} seen_t;

static void on_ready(void *user, ssl_tensor_t *leaf)
{
    seen_t *s = user;
    for (int i = 0; i < s->n; i++)
        assert_ptr_not_equal(s->t[i], leaf);
    assert_true(s->n < 8 && leaf->numel <= 64);
    s->t[s->n] = leaf;
    memcpy(s->snap[s->n], leaf->grad, sizeof(float) * (size_t)leaf->numel);
    s->n++;
}

static void test_grad_ready(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_params_t *p = ssl_params_create();
    ssl_tensor_t *w1 = ssl_params_add(p, "w1", 2, (int64_t[]){5, 4}, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *w2 = ssl_params_add(p, "w2", 2, (int64_t[]){3, 5}, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *unused = ssl_params_add(p, "u", 1, (int64_t[]){3}, SSL_PARAM_TRAINABLE, 0);
    ssl_rng_fill_uniform(ssl_params_data(p, NULL), 38, -1, 1, 3, 0, 0);
    ssl_tensor_t *x = tu_rand(ctx, 2, (int64_t[]){2, 4}, 7, -1, 1, 0);
    /* w1 used twice (two "views"), w2 once per view */
    seen_t s = {0};
    ssl__ctx_set_grad_ready(ctx, on_ready, &s);
    ssl_tensor_t *h1 = ssl_linear(ctx, ssl_linear(ctx, x, w1, NULL), w2, NULL);
    ssl_tensor_t *h2 = ssl_linear(ctx, ssl_relu(ctx, ssl_linear(ctx, x, w1, NULL)), w2, NULL);
    ssl_tensor_t *l = ssl_sum_all(ctx, ssl_mul(ctx, h1, h2));
    assert_int_equal(ssl_backward(ctx, l), SSL_OK);
    ssl__ctx_set_grad_ready(ctx, NULL, NULL);
    assert_int_equal(s.n, 2);
    for (int i = 0; i < s.n; i++) {
        assert_true(s.t[i] == w1 || s.t[i] == w2);
        assert_ptr_not_equal(s.t[i], unused);
        assert_memory_equal(s.snap[i], s.t[i]->grad, sizeof(float) * (size_t)s.t[i]->numel);
    }
    assert_ptr_equal(s.t[0], w2); /* w2 is first used after w1: final earlier */
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_bn_planes), cmocka_unit_test(test_sync_bn_rows),
        cmocka_unit_test(test_sync_bn_off),    cmocka_unit_test(test_all_gather),
        cmocka_unit_test(test_grad_ready),
    };
    return tu_status(cmocka_run_group_tests(tests, NULL, NULL));
}
