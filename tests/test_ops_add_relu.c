/* add_relu: relu(a + b) against plain loops forward and backward, central differences away
 * from the kink, shape errors, an input without a gradient. */
#include "testutil.h"

#include <stdlib.h>

static ssl_tensor_t *build(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    (void)user;
    return ssl_add_relu(ctx, in[0], in[1]);
}

static void test_add_relu_vs_reference(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const int64_t shapes[][4] = {{3, 4, 1, 1}, {2, 8, 40, 60}}; /* small, and parallel */
    for (int s = 0; s < 2; s++) {
        ssl_tensor_t *a = tu_rand(ctx, 4, shapes[s], 1 + s, -1, 1, 1);
        ssl_tensor_t *b = tu_rand(ctx, 4, shapes[s], 3 + s, -1, 1, 1);
        ssl_tensor_t *y = ssl_add_relu(ctx, a, b);
        assert_non_null(y);
        int64_t n = y->numel;
        float *ref = malloc((size_t)n * sizeof(float)), *g = malloc((size_t)n * sizeof(float));
        float *dref = malloc((size_t)n * sizeof(float));
        ssl_rng_fill_uniform(g, (size_t)n, -1, 1, 9, 0, 0);
        for (int64_t i = 0; i < n; i++) {
            float v = a->data[i] + b->data[i];
            ref[i] = v > 0 ? v : 0;
            dref[i] = v > 0 ? g[i] : 0;
        }
        tu_assert_close(y->data, ref, n, 0, 0);
        assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
        tu_assert_close(a->grad, dref, n, 0, 0);
        tu_assert_close(b->grad, dref, n, 0, 0);
        free(ref);
        free(g);
        free(dref);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static void test_add_relu_gradcheck(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t shape[2] = {3, 5};
    /* b = 0.5 away from 0 and a within 0.25 of 0: a + b never near the kink */
    ssl_tensor_t *in[2] = {tu_rand(ctx, 2, shape, 5, -0.25f, 0.25f, 1),
                           tu_rand_away0(ctx, 2, shape, 6, -1, 1, 0.5f, 1)};
    assert_int_equal(tu_gradcheck(ctx, build, NULL, in, 2, NULL), 0);
    ssl_ctx_free(ctx);
}

/* a's gradient taken over from the output's buffer, b's stored fresh, or both added to other
 * consumers' gradients. */
static void test_add_relu_grad_adds(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t shape[4] = {2, 8, 40, 60};
    ssl_tensor_t *in[2] = {tu_rand(ctx, 4, shape, 11, -1, 1, 1),
                           tu_rand(ctx, 4, shape, 12, -1, 1, 1)};
    tu_check_grad_adds(ctx, build, NULL, in, 2, 13);
    ssl_ctx_free(ctx);
}

static void test_add_relu_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t s1[2] = {3, 4}, s2[2] = {4, 3};
    ssl_tensor_t *a = tu_rand(ctx, 2, s1, 1, -1, 1, 1), *b = tu_rand(ctx, 2, s2, 2, -1, 1, 0);
    tu_assert_error(ssl_add_relu(ctx, a, b), SSL_ERR_SHAPE, "add_relu", "(3, 4)", "(4, 3)", NULL);
    /* b without a gradient: only a's is written */
    ssl_tensor_t *c = tu_rand(ctx, 2, s1, 3, -1, 1, 0);
    ssl_tensor_t *y = ssl_add_relu(ctx, a, c);
    assert_int_equal(ssl_backward(ctx, ssl_sum_all(ctx, y)), SSL_OK);
    assert_non_null(a->grad);
    assert_null(c->grad);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_relu_vs_reference),
        cmocka_unit_test(test_add_relu_gradcheck),
        cmocka_unit_test(test_add_relu_grad_adds),
        cmocka_unit_test(test_add_relu_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
