/* ssl_pad2d: zero padding and cropping of NCHW images against an index loop, central-difference
 * gradients (and that they accumulate), the causal convolution and down shift the gated
 * PixelCNN builds from it, errors. */
#include "testutil.h"

#include <stdlib.h>

/* y[n][c][i][j] = x[n][c][i - top][j - left], 0 outside x */
static void ref_pad(const float *x, int64_t planes, int64_t H, int64_t W, int top, int left,
                    int64_t OH, int64_t OW, float *y)
{
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++) {
                int64_t si = i - top, sj = j - left;
                y[(p * OH + i) * OW + j] =
                    si >= 0 && si < H && sj >= 0 && sj < W ? x[(p * H + si) * W + sj] : 0.0f;
            }
}

static const int k_pads[][4] = {/* top, bottom, left, right */
                                {0, 0, 0, 0},  {1, 0, 2, 2},   {2, 0, 0, 0},  {1, -1, 0, 0},
                                {0, 0, 3, -1}, {-2, 1, -1, 3}, {0, -3, 0, 0}, {4, -2, -3, 5},
                                /* every input row cropped: zeros (a one-row down shift) */
                                {5, -4, 0, 0}, {-4, 1, 0, 0}};

static void test_forward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    enum { N = 2, C = 3, H = 4, W = 5 };
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){N, C, H, W}, 1, -1, 1, 0);
    for (size_t k = 0; k < sizeof k_pads / sizeof k_pads[0]; k++) {
        const int *p = k_pads[k];
        ssl_tensor_t *y = ssl_pad2d(ctx, x, p[0], p[1], p[2], p[3]);
        assert_non_null(y);
        int64_t OH = H + p[0] + p[1], OW = W + p[2] + p[3];
        assert_int_equal(y->shape[0], N);
        assert_int_equal(y->shape[1], C);
        assert_int_equal(y->shape[2], OH);
        assert_int_equal(y->shape[3], OW);
        float *ref = malloc((size_t)y->numel * sizeof(float));
        ref_pad(x->data, N * C, H, W, p[0], p[2], OH, OW, ref);
        tu_assert_close(y->data, ref, y->numel, 0, 0); /* a copy: exact */
        free(ref);
    }
    ssl_ctx_free(ctx);
}

typedef struct pad_case {
    const int *p;
} pad_case_t;

static ssl_tensor_t *build_pad(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    const int *p = ((pad_case_t *)user)->p;
    return ssl_pad2d(ctx, in[0], p[0], p[1], p[2], p[3]);
}

static void test_gradients(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (size_t k = 0; k < sizeof k_pads / sizeof k_pads[0]; k++) {
        pad_case_t c = {k_pads[k]};
        ssl_tensor_t *in[1] = {tu_rand(ctx, 4, (int64_t[]){2, 2, 4, 5}, 5 + k, -1, 1, 1)};
        tu_check_grad_adds(ctx, build_pad, &c, in, 1, 11 + k); /* (leaves the gradient 0) */
        assert_int_equal(tu_gradcheck(ctx, build_pad, &c, in, 1, NULL), 0);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

/* A one-sided pad then an unpadded conv2d is the gated PixelCNN's vertical stack: output row i
 * reads input rows i - 1 .. i; after pad2d(1, -1, 0, 0), rows i - 2 .. i - 1 (the down shift).
 * Checked against conv2d with symmetric padding on the rows it shares. */
static void test_causal_conv(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    enum { H = 5, W = 6, K = 3 };
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){1, 2, H, W}, 3, -1, 1, 0);
    ssl_tensor_t *w = tu_rand(ctx, 4, (int64_t[]){3, 2, K / 2 + 1, K}, 4, -1, 1, 0);
    ssl_tensor_t *v = ssl_conv2d(ctx, ssl_pad2d(ctx, x, K / 2, 0, K / 2, K / 2), w, NULL, 1, 0);
    ssl_tensor_t *s = ssl_pad2d(ctx, v, 1, -1, 0, 0);
    assert_non_null(s);
    assert_int_equal(v->shape[2], H);
    assert_int_equal(v->shape[3], W);
    /* the same kernel with its bottom half zero, centred: the symmetric conv2d */
    ssl_tensor_t *wf = ssl_tensor_zeros(ctx, 4, (int64_t[]){3, 2, K, K});
    for (int64_t o = 0; o < 3 * 2; o++)
        for (int64_t t = 0; t < (K / 2 + 1) * K; t++)
            wf->data[o * K * K + t] = w->data[o * (K / 2 + 1) * K + t];
    ssl_tensor_t *r = ssl_conv2d(ctx, x, wf, NULL, 1, K / 2);
    tu_assert_close(v->data, r->data, v->numel, 1e-5, 1e-5);
    for (int64_t o = 0; o < 3; o++)
        for (int64_t i = 0; i < H; i++)
            for (int64_t j = 0; j < W; j++) {
                float want = i ? v->data[(o * H + i - 1) * W + j] : 0.0f;
                assert_true(s->data[(o * H + i) * W + j] == want);
            }
    ssl_ctx_free(ctx);
}

static void test_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){1, 1, 3, 4}, 1, -1, 1, 0);
    tu_assert_error(ssl_pad2d(ctx, x, -2, -1, 0, 0), SSL_ERR_INVALID, "pad2d", "top -2",
                    "bottom -1", NULL);
    tu_assert_error(ssl_pad2d(ctx, x, 0, 0, 0, -4), SSL_ERR_INVALID, "right -4", NULL);
    tu_assert_error(ssl_pad2d(ctx, x, -3, 0, 0, 0), SSL_ERR_INVALID, "top -3", "empty", NULL);
    tu_assert_error(ssl_pad2d(ctx, tu_rand(ctx, 3, (int64_t[]){1, 3, 4}, 1, -1, 1, 0), 1, 0, 0,
                              0),
                    SSL_ERR_SHAPE, "pad2d", "(1, 3, 4)", NULL);
    tu_assert_error(ssl_pad2d(NULL, x, 1, 1, 1, 1), SSL_ERR_INVALID, NULL);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_causal_conv),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("ops_pad", tests, NULL, NULL);
}
