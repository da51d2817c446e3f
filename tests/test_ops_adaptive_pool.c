/* adaptive_max_pool2d: against plain loops over torch's windows (floor(i H / o) to
 * ceil((i + 1) H / o), computed here in double), overlapping windows included (7 -> 4,
 * 14 -> 4, 5 -> 3); the gradient to each window's first maximum; central differences; equal to
 * max_pool2d where the windows tile the input; bad sizes. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

static ssl_tensor_t *build(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    const int *o = user;
    return ssl_adaptive_max_pool2d(ctx, in[0], o[0], o[1]);
}

static void test_adaptive_vs_loops(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const int cases[][4] = {{7, 7, 4, 4}, {14, 14, 4, 4}, {5, 6, 3, 2}, {4, 4, 4, 4}};
    for (int c = 0; c < 4; c++) {
        int H = cases[c][0], W = cases[c][1], OH = cases[c][2], OW = cases[c][3];
        ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){2, 3, H, W}, 10 + c, -1, 1, 1);
        ssl_tensor_t *y = ssl_adaptive_max_pool2d(ctx, x, OH, OW);
        assert_non_null(y);
        assert_true(y->shape[2] == OH && y->shape[3] == OW);
        int64_t n = y->numel;
        float *ref = malloc((size_t)n * sizeof(float)), *g = malloc((size_t)n * sizeof(float));
        float *dref = calloc((size_t)x->numel, sizeof(float));
        ssl_rng_fill_uniform(g, (size_t)n, -1, 1, 3, 0, 0);
        for (int p = 0; p < 6; p++)
            for (int i = 0; i < OH; i++)
                for (int j = 0; j < OW; j++) {
                    int y0 = (int)floor((double)i * H / OH), y1 = (int)ceil((i + 1.0) * H / OH);
                    int x0 = (int)floor((double)j * W / OW), x1 = (int)ceil((j + 1.0) * W / OW);
                    float best = -INFINITY;
                    int at = -1;
                    for (int a = y0; a < y1; a++)
                        for (int b = x0; b < x1; b++)
                            if (x->data[(p * H + a) * W + b] > best) {
                                best = x->data[(p * H + a) * W + b];
                                at = (p * H + a) * W + b;
                            }
                    int o = (p * OH + i) * OW + j;
                    ref[o] = best;
                    dref[at] += g[o];
                }
        tu_assert_close(y->data, ref, n, 0, 0);
        assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
        tu_assert_close(x->grad, dref, x->numel, 0, 0);
        free(ref);
        free(g);
        free(dref);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static void test_adaptive_gradcheck_and_tiling(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int out[2] = {4, 3};
    ssl_tensor_t *in[1] = {tu_rand(ctx, 4, (int64_t[]){1, 2, 7, 5}, 21, -1, 1, 1)};
    assert_int_equal(tu_gradcheck(ctx, build, out, in, 1, NULL), 0);
    /* 8 x 8 to 4 x 4: the windows are max_pool2d's 2 x 2, stride 2 */
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){2, 3, 8, 8}, 22, -1, 1, 0);
    ssl_tensor_t *a = ssl_adaptive_max_pool2d(ctx, x, 4, 4), *b = ssl_max_pool2d(ctx, x, 2, 2, 0);
    assert_true(a && b);
    tu_assert_close(a->data, b->data, a->numel, 0, 0);
    tu_assert_error(ssl_adaptive_max_pool2d(ctx, x, 9, 4), SSL_ERR_INVALID,
                    "adaptive_max_pool2d", "1..8", NULL);
    tu_assert_error(ssl_adaptive_max_pool2d(ctx, x, 0, 4), SSL_ERR_INVALID, NULL);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adaptive_vs_loops),
        cmocka_unit_test(test_adaptive_gradcheck_and_tiling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
