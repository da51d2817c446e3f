/* log_sigmoid: forward against a double-precision reference over the whole float range
 * (including where log(sigmoid(x)) under- or overflows), backward against central differences,
 * accumulation, and thread-count independence. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

static double ref(double x)
{
    return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

static ssl_tensor_t *build(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    (void)user;
    return ssl_log_sigmoid(ctx, in[0]);
}

static void test_forward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const float special[] = {-1000.0f, -200.0f, -88.0f, -30.0f, -17.0f, -1e-8f, 0.0f,
                             1e-8f,    17.0f,   30.0f,  88.0f,  200.0f, 1000.0f};
    const int ns = (int)(sizeof special / sizeof special[0]);
    ssl_tensor_t *x = tu_rand(ctx, 1, (int64_t[]){40000}, 1, -50, 50, 0);
    for (int i = 0; i < ns; i++)
        x->data[i] = special[i];
    ssl_tensor_t *y = ssl_log_sigmoid(ctx, x);
    assert_non_null(y);
    for (int64_t i = 0; i < x->numel; i++) {
        double r = ref(x->data[i]);
        if (!(fabs(y->data[i] - r) <= 1e-6 * fabs(r) + 1e-30))
            fail_msg("log_sigmoid(%g) = %.9g, want %.9g", (double)x->data[i], (double)y->data[i],
                     r);
    }
    assert_true(isfinite(y->data[0])); /* log(sigmoid(-1000)) would be log(0) */
    assert_float_equal(y->data[0], -1000.0f, 0);
    ssl_ctx_free(ctx);
}

static void test_backward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 2, (int64_t[]){5, 7}, 2, -6, 6, 1);
    assert_int_equal(tu_gradcheck(ctx, build, NULL, &x, 1, NULL), 0);
    /* the derivative sigmoid(-x) stays exact in the tails, and backward accumulates */
    ssl_tensor_t *t = ssl_tensor_from(ctx, 1, (int64_t[]){3}, (float[]){-300.0f, 30.0f, 0.0f});
    t->requires_grad = 1;
    for (int rep = 0; rep < 2; rep++) {
        ssl_tensor_t *s = ssl_sum_all(ctx, ssl_log_sigmoid(ctx, t));
        assert_int_equal(ssl_backward(ctx, s), SSL_OK);
    }
    assert_float_equal(t->grad[0], 2.0f, 0);
    assert_float_equal(t->grad[1], 2.0f * (float)exp(-30.0), 1e-18);
    assert_float_equal(t->grad[2], 1.0f, 1e-7);
    ssl_ctx_free(ctx);
}

static void test_threads(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 1, (int64_t[]){100000}, 3, -20, 20, 1);
    int old = ssl_get_num_threads();
    ssl_set_num_threads(1);
    ssl_tensor_t *a = ssl_log_sigmoid(ctx, x);
    ssl_set_num_threads(2);
    ssl_tensor_t *b = ssl_log_sigmoid(ctx, x);
    ssl_set_num_threads(old);
    tu_assert_close(a->data, b->data, a->numel, 0, 0);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward),
        cmocka_unit_test(test_backward),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests_name("ops_log_sigmoid", tests, NULL, NULL);
}
