/* PixelCNN's masked convolution: against a loop over the allowed kernel taps, raster-order
 * causality through a stack of an A and a B layer, central-difference gradients, errors. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* y[n][o][i][j] = b[o] + sum over c and the kernel taps (di, dj) the mask allows of
 * w[o][c][di][dj] x[n][c][i + di - K/2][j + dj - K/2] (zero outside the image). */
static void ref_masked(const float *x, const float *w, const float *b, int64_t N, int64_t C,
                       int64_t H, int64_t W, int64_t OC, int64_t K, int type, float *y)
{
    int64_t c0 = K / 2;
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++)
            for (int64_t i = 0; i < H; i++)
                for (int64_t j = 0; j < W; j++) {
                    double s = b ? b[o] : 0;
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t di = 0; di < K; di++)
                            for (int64_t dj = 0; dj < K; dj++) {
                                int ok = di < c0 || (di == c0 && (dj < c0 || (dj == c0 && type)));
                                int64_t yi = i + di - c0, xj = j + dj - c0;
                                if (!ok || yi < 0 || yi >= H || xj < 0 || xj >= W)
                                    continue;
                                s += (double)w[((o * C + c) * K + di) * K + dj] *
                                     x[((n * C + c) * H + yi) * W + xj];
                            }
                    y[((n * OC + o) * H + i) * W + j] = (float)s;
                }
}

static void test_forward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    static const int64_t cases[][6] = {/* N, C, H, W, OC, K */
                                       {2, 1, 6, 5, 3, 7}, {1, 3, 4, 4, 2, 3}, {2, 2, 7, 9, 4, 5},
                                       {1, 1, 1, 1, 1, 3}};
    for (int k = 0; k < 4; k++)
        for (int type = 0; type < 2; type++) {
            const int64_t *c = cases[k];
            ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){c[0], c[1], c[2], c[3]}, 3 + k, -1, 1, 0);
            ssl_tensor_t *w = tu_rand(ctx, 4, (int64_t[]){c[4], c[1], c[5], c[5]}, 9 + k, -1, 1, 0);
            ssl_tensor_t *b = tu_rand(ctx, 1, &c[4], 20 + k, -1, 1, 0);
            ssl_tensor_t *y = ssl_masked_conv2d(ctx, x, w, type ? b : NULL, type);
            assert_non_null(y);
            assert_int_equal(y->shape[2], c[2]);
            assert_int_equal(y->shape[3], c[3]);
            float *ref = malloc((size_t)y->numel * sizeof(float));
            ref_masked(x->data, w->data, type ? b->data : NULL, c[0], c[1], c[2], c[3], c[4], c[5],
                       type, ref);
            tu_assert_close(y->data, ref, y->numel, 1e-5, 1e-5);
            free(ref);
            ssl_ctx_reset(ctx);
        }
    ssl_ctx_free(ctx);
}

/* A type-A layer then two type-B layers: output pixel p depends on the input pixels before p
 * in raster order only (not on p itself nor on any later one), the PixelCNN property; and on
 * its left neighbour. */
static void test_causality(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    enum { H = 6, W = 5 };
    ssl_tensor_t *wa = tu_rand(ctx, 4, (int64_t[]){3, 1, 5, 5}, 1, -1, 1, 0);
    ssl_tensor_t *wb = tu_rand(ctx, 4, (int64_t[]){3, 3, 3, 3}, 2, -1, 1, 0);
    ssl_tensor_t *wc = tu_rand(ctx, 4, (int64_t[]){1, 3, 3, 3}, 3, -1, 1, 0);
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){1, 1, H, W}, 4, -1, 1, 0);
    ssl_tensor_t *y0 = ssl_masked_conv2d(
        ctx, ssl_masked_conv2d(ctx, ssl_masked_conv2d(ctx, x, wa, NULL, SSL_CONV_MASK_A), wb,
                               NULL, SSL_CONV_MASK_B),
        wc, NULL, SSL_CONV_MASK_B);
    assert_non_null(y0);
    for (int p = 0; p < H * W; p++) {
        ssl_tensor_t *x2 = tu_rand(ctx, 4, (int64_t[]){1, 1, H, W}, 4, -1, 1, 0);
        x2->data[p] += 1.0f;
        ssl_tensor_t *y = ssl_masked_conv2d(
            ctx, ssl_masked_conv2d(ctx, ssl_masked_conv2d(ctx, x2, wa, NULL, SSL_CONV_MASK_A),
                                   wb, NULL, SSL_CONV_MASK_B),
            wc, NULL, SSL_CONV_MASK_B);
        for (int q = 0; q <= p; q++) /* pixels up to and including p do not see x[p] */
            if (y->data[q] != y0->data[q])
                fail_msg("output pixel %d changed with input pixel %d", q, p);
        /* its right neighbour does (across a row end it may not: PixelCNN's blind spot) */
        if (p % W + 1 < W && y->data[p + 1] == y0->data[p + 1])
            fail_msg("output pixel %d does not see input pixel %d", p + 1, p);
    }
    ssl_ctx_free(ctx);
}

typedef struct mc_case {
    int type;
} mc_case_t;

static ssl_tensor_t *build_mc(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    return ssl_masked_conv2d(ctx, in[0], in[1], in[2], ((mc_case_t *)user)->type);
}

static void test_gradients(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int type = 0; type < 2; type++) {
        mc_case_t c = {type};
        ssl_tensor_t *in[3] = {tu_rand(ctx, 4, (int64_t[]){2, 2, 4, 5}, 5, -1, 1, 1),
                               tu_rand(ctx, 4, (int64_t[]){3, 2, 3, 3}, 6, -1, 1, 1),
                               tu_rand(ctx, 1, (int64_t[]){3}, 7, -1, 1, 1)};
        assert_int_equal(tu_gradcheck(ctx, build_mc, &c, in, 3, NULL), 0);
        /* the masked-out taps get no gradient (they never act), the others do */
        assert_int_equal(ssl_backward(ctx, ssl_sum_all(ctx, build_mc(ctx, in, &c))), SSL_OK);
        for (int64_t o = 0; o < 3 * 2; o++)
            for (int64_t t = 0; t < 9; t++)
                if ((t < (type ? 5 : 4)) != (in[1]->grad[o * 9 + t] != 0.0f))
                    fail_msg("type %d: weight tap %lld of kernel %lld has gradient %g", type,
                             (long long)t, (long long)o, (double)in[1]->grad[o * 9 + t]);
        ssl_ctx_reset(ctx);
    }
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){1, 1, 4, 4}, 1, -1, 1, 0);
    tu_assert_error(ssl_masked_conv2d(ctx, x, tu_rand(ctx, 4, (int64_t[]){1, 1, 2, 2}, 2, -1, 1, 0),
                                      NULL, SSL_CONV_MASK_A),
                    SSL_ERR_SHAPE, "masked_conv2d", "(1, 1, 2, 2)", NULL);
    tu_assert_error(ssl_masked_conv2d(ctx, x, tu_rand(ctx, 4, (int64_t[]){1, 1, 3, 3}, 2, -1, 1, 0),
                                      NULL, 7),
                    SSL_ERR_SHAPE, "type 7", NULL);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward),
        cmocka_unit_test(test_causality),
        cmocka_unit_test(test_gradients),
    };
    return cmocka_run_group_tests_name("ops_masked_conv", tests, NULL, NULL);
}
