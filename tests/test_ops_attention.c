/* Fused attention: forward against a plain double-precision reference, gradients against
 * central differences (qkv and a broadcast bias), masks, thread-count independence, errors. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

/* out (B, T, C) = softmax(Q K^T / sqrt(D) + bias) V per (b, h), in double. bias is (B, H, T, T)
 * already broadcast, or NULL. */
static void ref_attention(const float *qkv, int64_t B, int64_t T, int64_t C, int64_t H,
                          const float *bias, float *out)
{
    int64_t D = C / H;
    double scale = 1.0 / sqrt((double)D);
    double *s = malloc((size_t)T * sizeof *s);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                double m = -INFINITY, sum = 0;
                for (int64_t j = 0; j < T; j++) {
                    double dot = 0;
                    for (int64_t d = 0; d < D; d++)
                        dot += (double)qkv[(b * T + i) * 3 * C + h * D + d] *
                               qkv[(b * T + j) * 3 * C + C + h * D + d];
                    s[j] = scale * dot + (bias ? bias[((b * H + h) * T + i) * T + j] : 0.0);
                    m = s[j] > m ? s[j] : m;
                }
                for (int64_t j = 0; j < T; j++)
                    sum += s[j] = exp(s[j] - m);
                for (int64_t d = 0; d < D; d++) {
                    double o = 0;
                    for (int64_t j = 0; j < T; j++)
                        o += s[j] / sum * qkv[(b * T + j) * 3 * C + 2 * C + h * D + d];
                    out[(b * T + i) * C + h * D + d] = (float)o;
                }
            }
    free(s);
}

/* bias (any broadcastable shape) expanded to (B, H, T, T) */
static float *expand_bias(const ssl_tensor_t *bias, int64_t B, int64_t H, int64_t T)
{
    float *e = malloc((size_t)(B * H * T * T) * sizeof *e);
    const int64_t full[4] = {B, H, T, T};
    for (int64_t o = 0; o < B * H * T * T; o++) {
        int64_t rem = o, idx = 0, stride = 1;
        for (int d = 3; d >= 0; d--) {
            int64_t i = rem % full[d];
            rem /= full[d];
            int bd = d - (4 - bias->ndim);
            if (bd < 0)
                continue;
            if (bias->shape[bd] != 1)
                idx += i * stride;
            stride *= bias->shape[bd];
        }
        e[o] = bias->data[idx];
    }
    return e;
}

typedef struct att_case {
    int64_t B, T, C, H;
    int bias_ndim;
    int64_t bias_shape[4];
} att_case_t;

static const att_case_t CASES[] = {
    {2, 5, 6, 2, 0, {0}},           /* no bias, D = 3 */
    {3, 4, 8, 1, 2, {4, 4}},        /* one head, (T, T) bias */
    {2, 6, 12, 3, 4, {2, 1, 1, 6}}, /* key padding shape */
    {1, 3, 4, 2, 4, {1, 2, 3, 3}},  /* per-head bias */
    {2, 17, 64, 2, 0, {0}},         /* a ViT-like size, D = 32 */
    /* the blocked kernels' paths: rows in blocks of 8 (then 4, 2, 1), keys as 16-wide vectors
     * with up to 4 tail keys as dot products (more are padded), D in 32- and 16-wide parts
     * with the rest column by column */
    {2, 17, 192, 3, 0, {0}},          /* mae-vitt's encoder: D = 64, 1 tail key, rows 8+8+1 */
    {1, 65, 128, 4, 2, {65, 65}},     /* its decoder: D = 32, keys 4 x 16 + 1, a bias */
    {2, 37, 80, 2, 4, {2, 1, 1, 37}}, /* D = 40 = 32 + 8 columns, 5 tail keys padded, 8x4+5 */
    {1, 20, 48, 1, 0, {0}},           /* D = 48 = 32 + 16, 4 tail keys as dots, rows 8+8+4 */
    {3, 2, 16, 1, 0, {0}},            /* all keys as dots, a 2-row block */
};

static ssl_tensor_t *build_att(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    const att_case_t *c = user;
    return ssl_attention(ctx, in[0], (int)c->H, c->bias_ndim ? in[1] : NULL);
}

static void test_attention_forward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(8 << 20);
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        const att_case_t *c = &CASES[k];
        ssl_tensor_t *qkv = tu_rand(ctx, 3, (int64_t[]){c->B, c->T, 3 * c->C}, 10 + k, -2, 2, 1);
        ssl_tensor_t *bias =
            c->bias_ndim ? tu_rand(ctx, c->bias_ndim, c->bias_shape, 20 + k, -1, 1, 0) : NULL;
        ssl_tensor_t *y = ssl_attention(ctx, qkv, (int)c->H, bias);
        if (!y)
            fail_msg("case %zu: %s", k, ssl_last_error());
        assert_int_equal(y->ndim, 3);
        assert_int_equal(y->shape[2], c->C);
        float *eb = bias ? expand_bias(bias, c->B, c->H, c->T) : NULL;
        float *ref = malloc((size_t)y->numel * sizeof *ref);
        ref_attention(qkv->data, c->B, c->T, c->C, c->H, eb, ref);
        tu_assert_close(y->data, ref, y->numel, 1e-5, 1e-4);
        /* forward only (grad off) takes the path that keeps no probabilities */
        int prev = ssl_ctx_set_grad(ctx, 0);
        ssl_tensor_t *y2 = ssl_attention(ctx, qkv, (int)c->H, bias);
        ssl_ctx_set_grad(ctx, prev);
        assert_memory_equal(y2->data, y->data, (size_t)y->numel * sizeof(float));
        free(ref);
        free(eb);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

/* ssl_model_flops(): 4 B H T^2 D forward (Q K^T, P V); backward 8 B H T^2 D with qkv's
 * gradient (dP, dQ, dK, dV), 2 B H T^2 D (dP) when only the bias wants one */
static void test_attention_model_flops(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(8 << 20);
    const int64_t B = 2, T = 6, C = 12, H = 3, unit = B * H * T * T * (C / H);
    for (int qkv_grad = 0; qkv_grad < 2; qkv_grad++) {
        ssl_tensor_t *qkv = tu_rand(ctx, 3, (int64_t[]){B, T, 3 * C}, 5, -1, 1, qkv_grad);
        ssl_tensor_t *bias = tu_rand(ctx, 2, (int64_t[]){T, T}, 6, -1, 1, 1);
        uint64_t f0 = ssl_model_flops();
        ssl_tensor_t *y = ssl_attention(ctx, qkv, (int)H, bias);
        assert_non_null(y);
        uint64_t f1 = ssl_model_flops();
        assert_int_equal(f1 - f0, 4 * unit);
        assert_int_equal(ssl_backward(ctx, ssl_sum_all(ctx, y)), SSL_OK);
        assert_int_equal(ssl_model_flops() - f1, (qkv_grad ? 8 : 2) * unit);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static void test_attention_gradcheck(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(8 << 20);
    for (size_t k = 0; k < sizeof CASES / sizeof CASES[0]; k++) {
        const att_case_t *c = &CASES[k];
        for (int bias_grad = 0; bias_grad < (c->bias_ndim ? 2 : 1); bias_grad++) {
            ssl_tensor_t *in[2] = {
                tu_rand(ctx, 3, (int64_t[]){c->B, c->T, 3 * c->C}, 30 + k, -1, 1, 1),
                c->bias_ndim ? tu_rand(ctx, c->bias_ndim, c->bias_shape, 40 + k, -1, 1, bias_grad)
                             : NULL};
            int bad = tu_gradcheck(ctx, build_att, (void *)c, in, c->bias_ndim ? 2 : 1, NULL);
            if (bad)
                fail_msg("case %zu (bias grad %d): %d gradient elements off", k, bias_grad, bad);
            ssl_ctx_reset(ctx);
        }
    }
    ssl_ctx_free(ctx);
}

/* -inf in the bias masks keys out (causal), and the masked keys get no gradient. */
static void test_attention_causal_mask(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const int64_t B = 2, T = 4, C = 4, H = 2;
    ssl_tensor_t *qkv = tu_rand(ctx, 3, (int64_t[]){B, T, 3 * C}, 5, -1, 1, 1);
    ssl_tensor_t *mask = ssl_tensor_zeros(ctx, 2, (int64_t[]){T, T});
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = i + 1; j < T; j++)
            mask->data[i * T + j] = -INFINITY;
    ssl_tensor_t *y = ssl_attention(ctx, qkv, (int)H, mask);
    assert_non_null(y);
    /* the first query sees only the first key: its output is that key's value */
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++)
            assert_float_equal(y->data[b * T * C + c], qkv->data[b * T * 3 * C + 2 * C + c],
                               1e-6);
    float *g = calloc((size_t)y->numel, sizeof *g);
    for (int64_t c = 0; c < C; c++)
        g[c] = 1.0f; /* only the first query of batch 0 */
    assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
    for (int64_t j = 1; j < T; j++) /* keys and values after the first get nothing */
        for (int64_t c = C; c < 3 * C; c++)
            assert_true(qkv->grad[j * 3 * C + c] == 0.0f);
    free(g);
    ssl_ctx_free(ctx);
}

/* Same bits on 1 and 2 threads, forward and backward. */
static void test_attention_thread_independent(void **state)
{
    (void)state;
    const int64_t B = 4, T = 65, C = 128, H = 4;
    float *out[2], *grad[2];
    int prev = omp_get_max_threads();
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r + 1);
        ssl_ctx_t *ctx = ssl_ctx_create(16 << 20);
        ssl_tensor_t *qkv = tu_rand(ctx, 3, (int64_t[]){B, T, 3 * C}, 3, -1, 1, 1);
        ssl_tensor_t *y = ssl_attention(ctx, qkv, (int)H, NULL);
        ssl_tensor_t *g = tu_rand(ctx, 3, (int64_t[]){B, T, C}, 4, -1, 1, 0);
        assert_int_equal(ssl_backward_with(ctx, y, g->data), SSL_OK);
        out[r] = malloc((size_t)y->numel * sizeof(float));
        grad[r] = malloc((size_t)qkv->numel * sizeof(float));
        memcpy(out[r], y->data, (size_t)y->numel * sizeof(float));
        memcpy(grad[r], qkv->grad, (size_t)qkv->numel * sizeof(float));
        ssl_ctx_free(ctx);
    }
    omp_set_num_threads(prev);
    assert_memory_equal(out[0], out[1], (size_t)(B * T * C) * sizeof(float));
    assert_memory_equal(grad[0], grad[1], (size_t)(B * T * 3 * C) * sizeof(float));
    for (int r = 0; r < 2; r++) {
        free(out[r]);
        free(grad[r]);
    }
}

static void test_attention_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *qkv = ssl_tensor_zeros(ctx, 3, (int64_t[]){2, 5, 12});
    tu_assert_error(ssl_attention(ctx, qkv, 3, NULL), SSL_ERR_SHAPE, "attention", "(2, 5, 12)",
                    "3 heads", NULL);
    tu_assert_error(ssl_attention(ctx, qkv, 0, NULL), SSL_ERR_INVALID, "heads", NULL);
    ssl_tensor_t *flat = ssl_tensor_zeros(ctx, 2, (int64_t[]){5, 12});
    tu_assert_error(ssl_attention(ctx, flat, 2, NULL), SSL_ERR_SHAPE, "(5, 12)", NULL);
    ssl_tensor_t *bad = ssl_tensor_zeros(ctx, 2, (int64_t[]){5, 4});
    tu_assert_error(ssl_attention(ctx, qkv, 2, bad), SSL_ERR_SHAPE, "(2, 5, 12)", "(5, 4)",
                    "(2, 2, 5, 5)", NULL);
    ssl_set_error(SSL_ERR_IO, "earlier failure");
    assert_null(ssl_attention(ctx, NULL, 2, NULL));
    assert_int_equal(ssl_last_status(), SSL_ERR_IO);
    ssl_clear_error();
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_forward),
        cmocka_unit_test(test_attention_gradcheck),
        cmocka_unit_test(test_attention_model_flops),
        cmocka_unit_test(test_attention_causal_mask),
        cmocka_unit_test(test_attention_thread_independent),
        cmocka_unit_test(test_attention_errors),
    };
    return cmocka_run_group_tests_name("ops_attention", tests, NULL, NULL);
}
