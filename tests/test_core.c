/* Core: errors, RNG, arena, parameter store, tape semantics, matmul and linear. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(ssl_err_name(SSL_ERR_SHAPE), "SSL_ERR_SHAPE");
    assert_int_equal(ssl_set_error(SSL_ERR_IO, "file %s at offset %d", "x.bin", 8), SSL_ERR_IO);
    assert_string_equal(ssl_last_error(), "file x.bin at offset 8");
    assert_int_equal(ssl_last_status(), SSL_ERR_IO);
    ssl_clear_error();
    assert_string_equal(ssl_last_error(), "");
}

static int n_logged;
static void log_cb(int level, const char *msg, void *user)
{
    (void)user;
    if (level >= SSL_LOG_INFO && strstr(msg, "hello 3"))
        n_logged++;
}

static void test_log_callback(void **state)
{
    (void)state;
    ssl_set_log_callback(log_cb, NULL, SSL_LOG_INFO);
    ssl_logf(SSL_LOG_INFO, "hello %d", 3);
    ssl_logf(SSL_LOG_DEBUG, "hello %d", 3); /* below the level: dropped */
    ssl_set_log_callback(NULL, NULL, SSL_LOG_INFO);
    ssl_logf(SSL_LOG_ERROR, "hello %d", 3); /* no callback: dropped */
    assert_int_equal(n_logged, 1);
}

static void test_rng(void **state)
{
    (void)state;
    /* Known-answer test of Philox4x32-10 (Random123 kat_vectors: counter 0, key 0). */
    uint32_t w[4];
    ssl_philox4x32(0, 0, 0, w);
    assert_int_equal(w[0], 0x6627e8d5u);
    assert_int_equal(w[1], 0xe169c58du);
    assert_int_equal(w[2], 0xbc57ac4cu);
    assert_int_equal(w[3], 0x9b00dbd8u);
    /* Values depend on index only, not on how they were drawn. */
    float a[1000], b[10];
    ssl_rng_fill_uniform(a, 1000, 0, 1, 42, 7, 0);
    ssl_rng_fill_uniform(b, 10, 0, 1, 42, 7, 500);
    assert_memory_equal(a + 500, b, sizeof b);
    double mean = 0, var = 0;
    float nrm[20000];
    ssl_rng_fill_normal(nrm, 20000, 0, 1, 1, 2, 0);
    for (int i = 0; i < 20000; i++)
        mean += nrm[i];
    mean /= 20000;
    for (int i = 0; i < 20000; i++)
        var += (nrm[i] - mean) * (nrm[i] - mean);
    var /= 20000;
    assert_true(fabs(mean) < 0.03);
    assert_true(fabs(var - 1) < 0.05);
    for (int i = 0; i < 1000; i++)
        assert_true(a[i] >= 0 && a[i] < 1);
    ssl_rng_fill_trunc_normal(nrm, 20000, 0, 1, -2, 2, 3, 4, 0);
    for (int i = 0; i < 20000; i++)
        assert_true(nrm[i] >= -2 && nrm[i] <= 2);
    assert_true(ssl_rng_stream(1, 2, 3) != ssl_rng_stream(1, 3, 2));
}

static void test_arena_reset_reuses(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(1 << 20);
    float *first = NULL;
    for (int step = 0; step < 3; step++) {
        ssl_tensor_t *t = ssl_tensor_2d(ctx, 1000, 1000); /* 4 MB: grows past the 1 MB chunk */
        assert_non_null(t);
        ssl_tensor_t *u = ssl_tensor_2d(ctx, 10, 10);
        assert_non_null(u);
        assert_true((uintptr_t)t->data % 64 == 0);
        if (step == 1)
            first = t->data;
        if (step == 2) /* after the merge at reset, the same layout comes back */
            assert_ptr_equal(first, t->data);
        size_t cap = ssl_ctx_arena_capacity(ctx);
        ssl_ctx_reset(ctx);
        assert_int_equal(ssl_ctx_arena_used(ctx), 0);
        if (step >= 1)
            assert_int_equal(ssl_ctx_arena_capacity(ctx), cap); /* no growth in steady state */
    }
    assert_true(ssl_ctx_arena_peak(ctx) >= 4000000);
    ssl_ctx_free(ctx);
}

static void test_tensor_validation(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    assert_null(ssl_tensor_new(ctx, 6, (int64_t[]){1, 1, 1, 1, 1, 1}));
    assert_int_equal(ssl_last_status(), SSL_ERR_INVALID);
    assert_null(ssl_tensor_new(ctx, 2, (int64_t[]){3, -1}));
    ssl_tensor_t *t = ssl_tensor_fill(ctx, 2, (int64_t[]){2, 3}, 1.5f);
    assert_int_equal(t->numel, 6);
    assert_true(t->data[5] == 1.5f);
    char buf[64];
    assert_string_equal(ssl_shape_str(t, buf, sizeof buf), "(2, 3)");
    assert_int_equal(ssl_dim(t, -1), 3);
    ssl_ctx_free(ctx);
}

static void test_params_store(void **state)
{
    (void)state;
    ssl_params_t *p = ssl_params_create();
    ssl_tensor_t *w = ssl_params_add(p, "layer.weight", 2, (int64_t[]){3, 4}, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *rm = ssl_params_add(p, "bn.running_mean", 1, (int64_t[]){4}, SSL_PARAM_BUFFER, 0);
    ssl_tensor_t *b = ssl_params_add(p, "layer.bias", 1, (int64_t[]){3}, SSL_PARAM_TRAINABLE,
                                     SSL_PARAM_NO_DECAY);
    assert_non_null(w);
    assert_non_null(rm);
    assert_non_null(b);
    assert_null(ssl_params_add(p, "layer.bias", 1, (int64_t[]){3}, SSL_PARAM_TRAINABLE, 0));
    assert_non_null(strstr(ssl_last_error(), "duplicate"));
    /* Many more parameters: buffers move, tensors follow. */
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "extra.%d", i);
        assert_non_null(ssl_params_add(p, name, 1, (int64_t[]){1000}, SSL_PARAM_TRAINABLE, 0));
    }
    size_t n;
    float *data = ssl_params_data(p, &n);
    float *grad = ssl_params_grad(p, NULL);
    assert_int_equal(n, 12 + 3 + 100 * 1000);
    assert_ptr_equal(w->data, data);
    assert_ptr_equal(b->data, data + 12);
    assert_ptr_equal(b->grad, grad + 12);
    assert_ptr_equal(ssl_params_get(p, "layer.bias"), b);
    assert_null(rm->grad);
    assert_false(rm->requires_grad);
    assert_true(w->requires_grad);
    for (size_t i = 0; i < n; i++)
        assert_true(data[i] == 0.0f && grad[i] == 0.0f);
    assert_int_equal(ssl_params_set_frozen(p, "layer.", 1), 2);
    assert_false(w->requires_grad);
    assert_int_equal(ssl_params_info(p, 0)->flags & SSL_PARAM_FROZEN, SSL_PARAM_FROZEN);
    ssl_params_set_frozen(p, "layer.", 0);
    assert_true(w->requires_grad);
    ssl_params_free(p);
}

/* ---------------------------------------------------------------- tape semantics */

static void test_no_grad_records_nothing(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *a = tu_rand(ctx, 2, (int64_t[]){4, 5}, 1, -1, 1, 1);
    ssl_tensor_t *b = tu_rand(ctx, 2, (int64_t[]){5, 3}, 2, -1, 1, 1);
    int prev = ssl_ctx_set_grad(ctx, 0);
    assert_int_equal(prev, 1);
    ssl_tensor_t *c = ssl_matmul(ctx, a, b, 0, 0);
    assert_non_null(c);
    assert_int_equal(ssl_ctx_tape_len(ctx), 0);
    assert_false(c->requires_grad);
    ssl_ctx_set_grad(ctx, 1);
    c = ssl_matmul(ctx, a, b, 0, 0);
    assert_int_equal(ssl_ctx_tape_len(ctx), 1);
    /* Inputs that need no gradient record nothing either. */
    ssl_tensor_t *d = ssl_matmul(ctx, ssl_detach(ctx, a), ssl_detach(ctx, b), 0, 0);
    assert_false(d->requires_grad);
    assert_int_equal(ssl_ctx_tape_len(ctx), 1);
    ssl_ctx_free(ctx);
}

static void test_detach_blocks_gradient(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *a = tu_rand(ctx, 2, (int64_t[]){2, 3}, 1, -1, 1, 1);
    ssl_tensor_t *w = tu_rand(ctx, 2, (int64_t[]){4, 3}, 2, -1, 1, 1);
    ssl_tensor_t *h = ssl_linear(ctx, a, w, NULL);          /* (2, 4) */
    ssl_tensor_t *hd = ssl_detach(ctx, h);
    assert_ptr_equal(hd->data, h->data);
    ssl_tensor_t *w2 = tu_rand(ctx, 2, (int64_t[]){1, 4}, 3, -1, 1, 1);
    ssl_tensor_t *y = ssl_linear(ctx, hd, w2, NULL);        /* (2, 1) */
    float g[2] = {1, 1};
    assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
    assert_non_null(w2->grad);
    assert_null(w->grad); /* blocked */
    assert_null(a->grad);
    ssl_ctx_free(ctx);
}

static void test_grad_accumulates_two_uses(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    /* y = x W^T used twice: d/dW (y1 + y2) = 2 x */
    ssl_tensor_t *x = ssl_tensor_from(ctx, 2, (int64_t[]){1, 2}, (float[]){3, 5});
    ssl_tensor_t *w = ssl_tensor_from(ctx, 2, (int64_t[]){1, 2}, (float[]){1, 1});
    w->requires_grad = 1;
    ssl_tensor_t *y1 = ssl_linear(ctx, x, w, NULL);
    ssl_tensor_t *y2 = ssl_linear(ctx, x, w, NULL);
    ssl_tensor_t *z = ssl_matmul(ctx, y1, y2, 0, 0); /* (1,1): y1 * y2 = (x.w)^2 */
    assert_int_equal(ssl_backward(ctx, z), SSL_OK);
    /* d/dw (x.w)^2 = 2 (x.w) x = 2 * 8 * (3, 5) */
    assert_float_equal(w->grad[0], 48.0f, 1e-4);
    assert_float_equal(w->grad[1], 80.0f, 1e-4);
    /* backward again accumulates */
    assert_int_equal(ssl_backward(ctx, z), SSL_OK);
    assert_float_equal(w->grad[0], 96.0f, 1e-4);
    ssl_ctx_free(ctx);
}

/* A tape longer than its first allocation: the node array moves while it grows, and every
 * recorded node must still find its inputs (regression: inline input lists dangled). */
static void test_long_tape(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *w = tu_rand(ctx, 2, (int64_t[]){4, 4}, 3, -0.3f, 0.3f, 1);
    ssl_tensor_t *x = tu_rand(ctx, 2, (int64_t[]){2, 4}, 4, -1, 1, 1);
    ssl_tensor_t *h = x;
    for (int i = 0; i < 1000; i++)
        h = ssl_linear(ctx, h, w, NULL);
    assert_true(ssl_ctx_tape_len(ctx) == 1000);
    float g[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(ssl_backward_with(ctx, h, g), SSL_OK);
    assert_non_null(w->grad);
    assert_non_null(x->grad);
    ssl_ctx_free(ctx);
}

static void test_backward_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *a = tu_rand(ctx, 2, (int64_t[]){2, 3}, 1, -1, 1, 0);
    assert_int_equal(ssl_backward(ctx, a), SSL_ERR_SHAPE);
    assert_non_null(strstr(ssl_last_error(), "(2, 3)"));
    ssl_tensor_t *s = tu_rand(ctx, 1, (int64_t[]){1}, 1, -1, 1, 0);
    assert_int_equal(ssl_backward(ctx, s), SSL_ERR_STATE);
    assert_int_equal(ssl_backward(ctx, NULL), SSL_ERR_INVALID);
    ssl_ctx_free(ctx);
}

static void test_params_gradient_in_store(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_params_t *p = ssl_params_create();
    ssl_tensor_t *w = ssl_params_add(p, "fc.weight", 2, (int64_t[]){2, 3}, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *b = ssl_params_add(p, "fc.bias", 1, (int64_t[]){2}, SSL_PARAM_TRAINABLE, 0);
    ssl_rng_fill_uniform(w->data, 6, -1, 1, 1, 1, 0);
    ssl_tensor_t *x = tu_rand(ctx, 2, (int64_t[]){4, 3}, 5, -1, 1, 0);
    ssl_tensor_t *y = ssl_linear(ctx, x, w, b);
    float g[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
    size_t n;
    float *grad = ssl_params_grad(p, &n);
    assert_int_equal(n, 8);
    assert_float_equal(grad[6], 4.0f, 1e-6); /* d sum / d bias = rows */
    ssl_params_zero_grad(p);
    assert_true(grad[6] == 0.0f);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- matmul / linear */

static void test_sgemm_reference(void **state)
{
    (void)state;
    float a[6 * 7], b[7 * 5], c[30], r[30];
    ssl_rng_fill_uniform(a, 42, -1, 1, 1, 1, 0);
    ssl_rng_fill_uniform(b, 35, -1, 1, 1, 2, 0);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            ssl__sgemm(ta, tb, 6, 5, 7, 1.0f, a, ta ? 6 : 7, b, tb ? 7 : 5, 0.0f, c, 5);
            ssl_ref_sgemm(ta, tb, 6, 5, 7, 1.0f, a, ta ? 6 : 7, b, tb ? 7 : 5, 0.0f, r, 5);
            tu_assert_close(c, r, 30, 1e-5, 1e-5);
        }
}

typedef struct mm_case {
    int ta, tb;
} mm_case_t;

static ssl_tensor_t *build_matmul(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    mm_case_t *c = user;
    return ssl_matmul(ctx, in[0], in[1], c->ta, c->tb);
}

static void ref_matmul(const ssl_tensor_t *a, const ssl_tensor_t *b, int ta, int tb, float *out)
{
    int64_t r0 = a->shape[a->ndim - 2], r1 = a->shape[a->ndim - 1];
    int64_t m = ta ? r1 : r0, k = ta ? r0 : r1;
    int64_t n = tb ? b->shape[b->ndim - 2] : b->shape[b->ndim - 1];
    int64_t batch = a->numel / (m * k);
    int shared = b->ndim == 2;
    for (int64_t i = 0; i < batch; i++)
        ssl_ref_sgemm(ta, tb, m, n, k, 1.0f, a->data + i * m * k, ta ? m : k,
                      b->data + (shared ? 0 : i * k * n), tb ? k : n, 0.0f, out + i * m * n, n);
}

static void test_matmul_forward_backward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int mode = 0; mode < 3; mode++) { /* 2-D, shared b over batch, batched */
                int64_t M = 5, K = 4, N = 3, B = 2;
                int64_t as[3], bs[3];
                int an = 0, bn = 0;
                if (mode > 0)
                    as[an++] = B;
                as[an++] = ta ? K : M;
                as[an++] = ta ? M : K;
                if (mode == 2)
                    bs[bn++] = B;
                bs[bn++] = tb ? N : K;
                bs[bn++] = tb ? K : N;
                ssl_tensor_t *in[2] = {tu_rand(ctx, an, as, 10 + mode, -1, 1, 1),
                                       tu_rand(ctx, bn, bs, 20 + mode, -1, 1, 1)};
                mm_case_t c = {ta, tb};
                ssl_tensor_t *y = build_matmul(ctx, in, &c);
                assert_non_null(y);
                assert_int_equal(y->shape[y->ndim - 2], M);
                assert_int_equal(y->shape[y->ndim - 1], N);
                float ref[64];
                ref_matmul(in[0], in[1], ta, tb, ref);
                tu_assert_close(y->data, ref, y->numel, 1e-5, 1e-5);
                assert_int_equal(tu_gradcheck(ctx, build_matmul, &c, in, 2, NULL), 0);
                ssl_ctx_reset(ctx);
            }
    ssl_ctx_free(ctx);
}

static void test_matmul_shape_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *a = ssl_tensor_2d(ctx, 2, 3), *b = ssl_tensor_2d(ctx, 4, 5);
    tu_assert_error(ssl_matmul(ctx, a, b, 0, 0), SSL_ERR_SHAPE, "matmul", "(2, 3)", "(4, 5)", NULL);
    /* A failed op poisons what follows without overwriting the first message. */
    ssl_tensor_t *c = ssl_matmul(ctx, ssl_matmul(ctx, a, b, 0, 0), a, 0, 0);
    tu_assert_error(c, SSL_ERR_SHAPE, "(2, 3)", "(4, 5)", NULL);
    ssl_tensor_t *x = ssl_tensor_3d(ctx, 2, 3, 4), *y = ssl_tensor_3d(ctx, 3, 4, 5);
    tu_assert_error(ssl_matmul(ctx, x, y, 0, 0), SSL_ERR_SHAPE, "(2, 3, 4)", "(3, 4, 5)", NULL);
    ssl_tensor_t *w = ssl_tensor_2d(ctx, 6, 7);
    tu_assert_error(ssl_linear(ctx, a, w, NULL), SSL_ERR_SHAPE, "linear", "(2, 3)", "(6, 7)", NULL);
    ssl_tensor_t *w2 = ssl_tensor_2d(ctx, 6, 3), *bias = ssl_tensor_1d(ctx, 5);
    tu_assert_error(ssl_linear(ctx, a, w2, bias), SSL_ERR_SHAPE, "(5)", NULL);
    ssl_ctx_free(ctx);
}

/* linear, or linear_residual when in[3] is set; user != NULL: x is its own residual (square
 * weight), so the residual's gradient and the input's land in one buffer. */
static ssl_tensor_t *build_linear(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    if (user)
        return ssl_linear_residual(ctx, in[0], in[1], in[2], in[0]);
    return in[3] ? ssl_linear_residual(ctx, in[0], in[1], in[2], in[3])
                 : ssl_linear(ctx, in[0], in[1], in[2]);
}

static void test_linear_forward_backward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int v = 0; v < 4; v++) { /* bias: v & 1, residual: v & 2 */
        int with_bias = v & 1, with_res = v & 2;
        ssl_tensor_t *in[4] = {tu_rand(ctx, 3, (int64_t[]){2, 3, 6}, 1, -1, 1, 1),
                               tu_rand(ctx, 2, (int64_t[]){4, 6}, 2, -1, 1, 1),
                               with_bias ? tu_rand(ctx, 1, (int64_t[]){4}, 3, -1, 1, 1) : NULL,
                               with_res ? tu_rand(ctx, 3, (int64_t[]){2, 3, 4}, 4, -1, 1, 1)
                                        : NULL};
        ssl_tensor_t *y = build_linear(ctx, in, NULL);
        assert_int_equal(y->ndim, 3);
        assert_int_equal(y->shape[2], 4);
        float ref[24];
        ssl_ref_sgemm(0, 1, 6, 4, 6, 1.0f, in[0]->data, 6, in[1]->data, 6, 0.0f, ref, 4);
        for (int r = 0; r < 6; r++)
            for (int j = 0; j < 4; j++)
                ref[r * 4 + j] += (with_bias ? in[2]->data[j] : 0.0f) +
                                  (with_res ? in[3]->data[r * 4 + j] : 0.0f);
        tu_assert_close(y->data, ref, 24, 1e-5, 1e-5);
        assert_int_equal(tu_gradcheck(ctx, build_linear, NULL, in, 4, NULL), 0);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static void test_linear_residual(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int with_bias = 0; with_bias < 2; with_bias++) { /* x as its own residual */
        ssl_tensor_t *sq[3] = {tu_rand(ctx, 3, (int64_t[]){2, 3, 5}, 5, -1, 1, 1),
                               tu_rand(ctx, 2, (int64_t[]){5, 5}, 6, -1, 1, 1),
                               with_bias ? tu_rand(ctx, 1, (int64_t[]){5}, 7, -1, 1, 1) : NULL};
        assert_int_equal(tu_gradcheck(ctx, build_linear, "self", sq, 3, NULL), 0);
        ssl_ctx_reset(ctx);
    }
    ssl_tensor_t *x = ssl_tensor_3d(ctx, 2, 3, 6), *w = ssl_tensor_2d(ctx, 4, 6);
    tu_assert_error(ssl_linear_residual(ctx, x, w, NULL, ssl_tensor_3d(ctx, 2, 3, 5)),
                    SSL_ERR_SHAPE, "linear", "(2, 3, 6)", "(4, 6)", "(2, 3, 5)", "residual", NULL);
    ssl_set_error(SSL_ERR_IO, "earlier failure");
    assert_null(ssl_linear_residual(ctx, x, w, NULL, NULL));
    assert_int_equal(ssl_last_status(), SSL_ERR_IO);
    ssl_clear_error();
    ssl_ctx_free(ctx);
}

/* The bias gradient in column blocks (130 outputs: two full blocks and a ragged one) against
 * plain column sums of the upstream gradient. */
static void test_linear_bias_grad_blocks(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 3, (int64_t[]){2, 50, 8}, 4, -1, 1, 0);
    ssl_tensor_t *w = tu_rand(ctx, 2, (int64_t[]){130, 8}, 5, -1, 1, 0);
    ssl_tensor_t *b = tu_rand(ctx, 1, (int64_t[]){130}, 6, -1, 1, 1);
    ssl_tensor_t *y = ssl_linear(ctx, x, w, b);
    assert_non_null(y);
    ssl_tensor_t *g = tu_rand(ctx, 3, (int64_t[]){2, 50, 130}, 7, -1, 1, 0);
    assert_int_equal(ssl_backward_with(ctx, y, g->data), SSL_OK);
    float ref[130];
    for (int j = 0; j < 130; j++) {
        double sum = 0;
        for (int r = 0; r < 100; r++)
            sum += g->data[r * 130 + j];
        ref[j] = (float)sum;
    }
    tu_assert_close(b->grad, ref, 130, 1e-6, 1e-6);
    ssl_ctx_free(ctx);
}

/* Dynamic OpenMP teams (OMP_DYNAMIC=true) hang OpenBLAS and leave kernels' per-thread
 * buffers unfilled: every op's kernel and every GEMM runs with them off. */
static void test_dynamic_teams_off(void **state)
{
    (void)state;
#ifdef _OPENMP
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *a = tu_rand(ctx, 2, (int64_t[]){8, 8}, 1, -1, 1, 1);
    omp_set_dynamic(1);
    ssl_tensor_t *y = ssl_relu(ctx, a); /* forward */
    assert_non_null(y);
    assert_int_equal(omp_get_dynamic(), 0);
    omp_set_dynamic(1);
    assert_int_equal(ssl_backward(ctx, ssl_sum_all(ctx, y)), SSL_OK); /* backward */
    assert_int_equal(omp_get_dynamic(), 0);
    omp_set_dynamic(1);
    float c[4];
    ssl__sgemm(0, 0, 2, 2, 2, 1.0f, a->data, 8, a->data, 8, 0.0f, c, 2); /* BLAS */
    assert_int_equal(omp_get_dynamic(), 0);
    ssl_ctx_free(ctx);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_log_callback),
        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_arena_reset_reuses),
        cmocka_unit_test(test_tensor_validation),
        cmocka_unit_test(test_params_store),
        cmocka_unit_test(test_no_grad_records_nothing),
        cmocka_unit_test(test_detach_blocks_gradient),
        cmocka_unit_test(test_grad_accumulates_two_uses),
        cmocka_unit_test(test_long_tape),
        cmocka_unit_test(test_backward_errors),
        cmocka_unit_test(test_params_gradient_in_store),
        cmocka_unit_test(test_sgemm_reference),
        cmocka_unit_test(test_matmul_forward_backward),
        cmocka_unit_test(test_matmul_shape_errors),
        cmocka_unit_test(test_linear_forward_backward),
        cmocka_unit_test(test_linear_bias_grad_blocks),
        cmocka_unit_test(test_linear_residual),
        cmocka_unit_test(test_dynamic_teams_off),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
