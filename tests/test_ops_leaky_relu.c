/* leaky_relu: against plain loops forward and backward (the gradient at 0 is the slope's, as
 * PyTorch), central differences away from the kink, a bad slope. */
#include "testutil.h"

#include <stdlib.h>

static ssl_tensor_t *build(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    return ssl_leaky_relu(ctx, in[0], *(const float *)user);
}

static void test_leaky_relu_vs_reference(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const int64_t shapes[][4] = {{3, 4, 1, 1}, {2, 8, 40, 60}}; /* small, and parallel */
    const float slopes[] = {0.2f, 0.0f};
    for (int s = 0; s < 2; s++) {
        ssl_tensor_t *x = tu_rand(ctx, 4, shapes[s], 1 + s, -1, 1, 1);
        x->data[0] = 0.0f; /* the kink: value 0, gradient slope * g */
        ssl_tensor_t *y = ssl_leaky_relu(ctx, x, slopes[s]);
        assert_non_null(y);
        int64_t n = y->numel;
        float *ref = malloc((size_t)n * sizeof(float)), *g = malloc((size_t)n * sizeof(float));
        float *dref = malloc((size_t)n * sizeof(float));
        ssl_rng_fill_uniform(g, (size_t)n, -1, 1, 9, 0, 0);
        for (int64_t i = 0; i < n; i++) {
            float v = x->data[i];
            ref[i] = v > 0 ? v : slopes[s] * v;
            dref[i] = v > 0 ? g[i] : slopes[s] * g[i];
        }
        tu_assert_close(y->data, ref, n, 0, 0);
        assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
        tu_assert_close(x->grad, dref, n, 0, 0);
        free(ref);
        free(g);
        free(dref);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static void test_leaky_relu_gradcheck(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t shape[2] = {4, 5};
    float slope = 0.2f;
    ssl_tensor_t *in[1] = {tu_rand_away0(ctx, 2, shape, 5, -1, 1, 0.1f, 1)};
    assert_int_equal(tu_gradcheck(ctx, build, &slope, in, 1, NULL), 0);
    ssl_ctx_free(ctx);
}

static void test_leaky_relu_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t shape[2] = {3, 4};
    ssl_tensor_t *x = tu_rand(ctx, 2, shape, 1, -1, 1, 1);
    tu_assert_error(ssl_leaky_relu(ctx, x, 1.5f), SSL_ERR_INVALID, "leaky_relu", "slope", NULL);
    tu_assert_error(ssl_leaky_relu(ctx, x, -0.1f), SSL_ERR_INVALID, "leaky_relu", NULL);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaky_relu_vs_reference),
        cmocka_unit_test(test_leaky_relu_gradcheck),
        cmocka_unit_test(test_leaky_relu_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
