/* bf16 precision (docs/precision.md): the bf16 GEMM against the double-accumulated reference
 * of its bf16-rounded operands (all transposes, accumulate or store, leading dimensions wider
 * than the matrices), and every op that runs in bf16 (matmul, linear, conv2d: forward, input
 * and weight gradients) against the same op in an fp32 context with a bf16 tolerance. Skipped
 * (exit 77) where bf16 cannot run: a libssl without oneDNN, or a CPU without AVX512-BF16 or
 * AMX. */
#include "testutil.h"

#include "core/core_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bf16_or_skip(void)
{
    if (ssl_precision_supported(SSL_PRECISION_BF16) == SSL_OK)
        return 1;
    tu_note_skip("bf16 cannot run here: %s", ssl_last_error());
    return 0;
}

#define SKIP_WITHOUT_BF16()                                                                        \
    do {                                                                                           \
        if (!bf16_or_skip()) {                                                                     \
            skip();                                                                                \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static float *rand_floats(int64_t n, uint64_t seed)
{
    float *p = malloc((size_t)n * sizeof(float));
    assert_non_null(p);
    ssl_rng_fill_uniform(p, (size_t)n, -1.0f, 1.0f, seed, 3, 0);
    return p;
}

/* ||a - b|| / ||b|| */
static double rel_rms(const float *a, const float *b, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* a against b with bf16's tolerance: bf16 keeps 8 significant bits, so one rounded operand is
 * off by at most 2^-9 relative and a sum of products by about 2^-8 of its terms' size: 1% of
 * the norm overall, and no element off by more than 5% of the largest. */
static void assert_bf16_close(const float *a, const float *b, int64_t n, const char *what)
{
    double maxb = 0, maxd = 0;
    for (int64_t i = 0; i < n; i++) {
        maxb = fmax(maxb, fabs((double)b[i]));
        maxd = fmax(maxd, fabs((double)a[i] - (double)b[i]));
    }
    double r = rel_rms(a, b, n);
    if (r > 1e-2 || maxd > 5e-2 * maxb)
        print_error("%s: relative rms error %.3g, max error %.3g of max %.3g\n", what, r, maxd,
                    maxb);
    assert_true(r <= 1e-2);
    assert_true(maxd <= 5e-2 * maxb);
}

/* ---------------------------------------------------------------- the GEMM */

static void test_gemm_vs_rounded_reference(void **state)
{
    (void)state;
    SKIP_WITHOUT_BF16();
    const int64_t shapes[][3] = {{37, 53, 129}, {1, 64, 7}, {128, 256, 96}, {5, 3, 1000}};
    for (int s = 0; s < 4; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int acc = 0; acc < 2; acc++) {
                    int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                    /* leading dimensions 3 wider than the stored rows */
                    int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 3, ldc = n + 3;
                    int64_t na = (ta ? k : m) * lda, nb = (tb ? n : k) * ldb, nc = m * ldc;
                    float *a = rand_floats(na, 10 + s), *b = rand_floats(nb, 20 + s);
                    float *c = rand_floats(nc, 30 + s), *r = malloc((size_t)nc * sizeof(float));
                    float *ar = malloc((size_t)na * sizeof(float));
                    float *br = malloc((size_t)nb * sizeof(float));
                    ssl__bf16_round(a, ar, na);
                    ssl__bf16_round(b, br, nb);
                    memcpy(r, c, (size_t)nc * sizeof(float));
                    ssl_ref_sgemm(ta, tb, m, n, k, 1.0f, ar, lda, br, ldb, acc ? 1.0f : 0.0f, r,
                                  ldc);
                    assert_int_equal(ssl__bf16_gemm(ta, tb, m, n, k, a, lda, b, ldb, acc, c, ldc),
                                     SSL_OK);
                    /* fp32 sums of exact products: only summation order differs */
                    for (int64_t i = 0; i < m; i++)
                        for (int64_t j = 0; j < n; j++) {
                            float got = c[i * ldc + j], want = r[i * ldc + j];
                            if (fabsf(got - want) > 1e-5f * (float)k + 1e-5f * fabsf(want))
                                fail_msg("m%lld n%lld k%lld ta%d tb%d acc%d: C[%lld,%lld] %g vs "
                                         "%g",
                                         (long long)m, (long long)n, (long long)k, ta, tb, acc,
                                         (long long)i, (long long)j, got, want);
                        }
                    /* the padding columns of C are untouched */
                    for (int64_t i = 0; i < m; i++)
                        for (int64_t j = n; j < ldc; j++)
                            assert_true(c[i * ldc + j] == r[i * ldc + j]);
                    free(a), free(b), free(c), free(r), free(ar), free(br);
                }
}

/* C = A B^T + bias, as linear's forward runs it */
static void test_gemm_bias(void **state)
{
    (void)state;
    SKIP_WITHOUT_BF16();
    const int64_t m = 45, n = 70, k = 33;
    float *a = rand_floats(m * k, 1), *b = rand_floats(n * k, 2), *bias = rand_floats(n, 3);
    float *c = rand_floats(m * n, 4), *r = malloc((size_t)(m * n) * sizeof(float));
    float *ar = malloc((size_t)(m * k) * sizeof(float)),
          *br = malloc((size_t)(n * k) * sizeof(float));
    ssl__bf16_round(a, ar, m * k);
    ssl__bf16_round(b, br, n * k);
    for (int64_t i = 0; i < m * n; i++)
        r[i] = bias[i % n];
    ssl_ref_sgemm(0, 1, m, n, k, 1.0f, ar, k, br, k, 1.0f, r, n);
    assert_int_equal(ssl__bf16_gemm_bias(0, 1, m, n, k, a, k, b, k, bias, c, n), SSL_OK);
    tu_assert_close(c, r, m * n, 1e-5 * (double)k, 1e-5);
    free(a), free(b), free(bias), free(c), free(r), free(ar), free(br);
}

static void test_gemm_rounding(void **state)
{
    (void)state;
    /* round to nearest even on the 16 dropped bits; NaN stays NaN, infinities stay */
    const float x[] = {1.0f,
                       1.00390625f /* 1 + 2^-8: a tie, to even (1) */,
                       1.01171875f /* 1 + 3 * 2^-8: a tie, to even (1 + 2^-6) */,
                       1.0f + 1.0f / 128 + 1.0f / 65536,
                       -3.5f,
                       INFINITY,
                       -INFINITY,
                       NAN,
                       0.0f};
    const float want[] = {1.0f, 1.0f, 1.015625f, 1.0078125f, -3.5f, INFINITY, -INFINITY, NAN, 0.0f};
    float y[9];
    ssl__bf16_round(x, y, 9);
    for (int i = 0; i < 9; i++) {
        if (isnan(want[i]))
            assert_true(isnan(y[i]));
        else
            assert_true(y[i] == want[i]);
    }
}

/* ---------------------------------------------------------------- ops: bf16 vs fp32 */

typedef ssl_tensor_t *(*build_fn)(ssl_ctx_t *ctx, ssl_tensor_t **in, const int64_t *arg);

/* The op built by fn on inputs made from shapes, in an fp32 and a bf16 context: outputs and
 * every input's gradient (upstream: fixed random) compared with bf16's tolerance. */
static void compare_op(build_fn fn, const int64_t *arg, int n_in, const int64_t shapes[][5],
                       const char *what)
{
    float *out[2] = {NULL, NULL}, *grads[2][4] = {{NULL}};
    int64_t out_n = 0, in_n[4] = {0};
    for (int p = 0; p < 2; p++) {
        ssl_ctx_t *ctx = tu_ctx();
        if (p)
            assert_int_equal(ssl_ctx_set_precision(ctx, SSL_PRECISION_BF16), SSL_OK);
        ssl_tensor_t *in[4] = {NULL};
        for (int i = 0; i < n_in; i++) {
            int nd = (int)shapes[i][0];
            if (nd == 0)
                continue;
            in[i] = tu_rand(ctx, nd, shapes[i] + 1, 100 + (uint64_t)i, -1, 1, 1);
        }
        ssl_tensor_t *y = fn(ctx, in, arg);
        assert_non_null(y);
        out_n = y->numel;
        float *g = rand_floats(out_n, 7);
        assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
        free(g);
        out[p] = malloc((size_t)out_n * sizeof(float));
        memcpy(out[p], y->data, (size_t)out_n * sizeof(float));
        for (int i = 0; i < n_in; i++) {
            if (!in[i])
                continue;
            in_n[i] = in[i]->numel;
            grads[p][i] = malloc((size_t)in_n[i] * sizeof(float));
            memcpy(grads[p][i], in[i]->grad, (size_t)in_n[i] * sizeof(float));
        }
        ssl_ctx_free(ctx);
    }
    char buf[160];
    snprintf(buf, sizeof buf, "%s output", what);
    assert_bf16_close(out[1], out[0], out_n, buf);
    for (int i = 0; i < n_in; i++) {
        if (!grads[0][i])
            continue;
        snprintf(buf, sizeof buf, "%s gradient of input %d", what, i);
        assert_bf16_close(grads[1][i], grads[0][i], in_n[i], buf);
        free(grads[0][i]), free(grads[1][i]);
    }
    free(out[0]), free(out[1]);
}

static ssl_tensor_t *build_matmul(ssl_ctx_t *ctx, ssl_tensor_t **in, const int64_t *arg)
{
    return ssl_matmul(ctx, in[0], in[1], (int)arg[0], (int)arg[1]);
}

static ssl_tensor_t *build_linear(ssl_ctx_t *ctx, ssl_tensor_t **in, const int64_t *arg)
{
    (void)arg;
    return ssl_linear(ctx, in[0], in[1], in[2]);
}

static ssl_tensor_t *build_conv(ssl_ctx_t *ctx, ssl_tensor_t **in, const int64_t *arg)
{
    return ssl_conv2d(ctx, in[0], in[1], in[2], (int)arg[0], (int)arg[1]);
}

static void test_matmul_linear(void **state)
{
    (void)state;
    SKIP_WITHOUT_BF16();
    uint64_t fb = ssl__bf16_fallbacks;
    /* plain (M, K) x (K, N) with each transpose, shared weight over a batch, batched */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            const int64_t sh[2][5] = {{2, ta ? 70 : 33, ta ? 33 : 70},
                                      {2, tb ? 41 : 70, tb ? 70 : 41}};
            compare_op(build_matmul, (int64_t[]){ta, tb}, 2, sh, "matmul");
        }
    const int64_t shared[2][5] = {{3, 4, 17, 64}, {2, 64, 24}};
    compare_op(build_matmul, (int64_t[]){0, 0}, 2, shared, "matmul shared");
    const int64_t batched[2][5] = {{3, 3, 17, 64}, {3, 3, 24, 64}};
    compare_op(build_matmul, (int64_t[]){0, 1}, 2, batched, "matmul batched");
    const int64_t lin[3][5] = {{3, 4, 9, 96}, {2, 48, 96}, {1, 48}};
    compare_op(build_linear, NULL, 3, lin, "linear");
    assert_true(ssl__bf16_fallbacks == fb);
}

/* mode: ssl__bf16_conv_dnnl (0: the GEMMs of im2col, 2: oneDNN's bf16 convolutions) */
static void conv_cases(int mode)
{
    int saved = ssl__bf16_conv_dnnl;
    ssl__bf16_conv_dnnl = mode;
    uint64_t fb = ssl__bf16_fallbacks;
    /* {N, C, H, W, OC, K, stride, pad}: the layers of the ResNets (stem, 3x3 stride 1 and 2
     * on 28 to 4 wide maps, 1x1 stride-2 projections) and odd ones */
    const int64_t cases[][8] = {
        {4, 1, 28, 28, 16, 3, 1, 1},  {4, 16, 28, 28, 16, 3, 1, 1}, {4, 16, 28, 28, 32, 3, 2, 1},
        {4, 32, 14, 14, 32, 3, 1, 1}, {4, 32, 14, 14, 64, 3, 2, 1}, {4, 64, 7, 7, 64, 3, 1, 1},
        {4, 64, 7, 7, 128, 3, 2, 1},  {4, 128, 4, 4, 128, 3, 1, 1}, {4, 16, 28, 28, 32, 1, 2, 0},
        {3, 5, 9, 11, 7, 5, 2, 2},    {2, 3, 32, 32, 24, 3, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int64_t *c = cases[i];
        const int64_t sh[3][5] = {
            {4, c[0], c[1], c[2], c[3]}, {4, c[4], c[1], c[5], c[5]}, {1, c[4]}};
        char what[96];
        snprintf(what, sizeof what, "conv %lld->%lld %lldx%lld stride %lld @%lldx%lld",
                 (long long)c[1], (long long)c[4], (long long)c[5], (long long)c[5],
                 (long long)c[6], (long long)c[2], (long long)c[3]);
        compare_op(build_conv, (int64_t[]){c[6], c[7]}, 3, sh, what);
    }
    assert_true(ssl__bf16_fallbacks == fb);
    ssl__bf16_conv_dnnl = saved;
}

static void test_conv_gemm(void **state)
{
    (void)state;
    SKIP_WITHOUT_BF16();
    conv_cases(0);
}

static void test_conv_dnnl(void **state)
{
    (void)state;
    SKIP_WITHOUT_BF16();
    conv_cases(2);
}

/* a gradient that already holds another consumer's is added to, not overwritten */
static ssl_tensor_t *build_conv_user(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    const int64_t *arg = user;
    return ssl_conv2d(ctx, in[0], in[1], in[2], (int)arg[0], (int)arg[1]);
}

static void test_conv_dnnl_grad_adds(void **state)
{
    (void)state;
    SKIP_WITHOUT_BF16();
    int saved = ssl__bf16_conv_dnnl;
    ssl__bf16_conv_dnnl = 2;
    ssl_ctx_t *ctx = tu_ctx();
    assert_int_equal(ssl_ctx_set_precision(ctx, SSL_PRECISION_BF16), SSL_OK);
    ssl_tensor_t *in[3] = {tu_rand(ctx, 4, (int64_t[]){2, 16, 8, 8}, 1, -1, 1, 1),
                           tu_rand(ctx, 4, (int64_t[]){32, 16, 3, 3}, 2, -1, 1, 1),
                           tu_rand(ctx, 1, (int64_t[]){32}, 3, -1, 1, 1)};
    int64_t arg[2] = {2, 1};
    tu_check_grad_adds(ctx, build_conv_user, arg, in, 3, 9);
    ssl_ctx_free(ctx);
    ssl__bf16_conv_dnnl = saved;
}

/* the default stays fp32; the setter checks its arguments */
static void test_precision_api(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    assert_int_equal(ssl_ctx_precision(ctx), SSL_PRECISION_FP32);
    assert_int_equal(ssl_ctx_set_precision(ctx, SSL_PRECISION_FP32), SSL_OK);
    assert_int_equal(ssl_ctx_set_precision(ctx, (ssl_precision_t)7), SSL_ERR_INVALID);
    assert_int_equal(ssl_ctx_precision(ctx), SSL_PRECISION_FP32);
    assert_string_equal(ssl_precision_name(SSL_PRECISION_BF16), "bf16");
    assert_string_equal(ssl_precision_name(SSL_PRECISION_FP32), "fp32");
    int st = ssl_ctx_set_precision(ctx, SSL_PRECISION_BF16);
    if (st != SSL_OK) { /* refused with the reason */
        assert_int_equal(st, SSL_ERR_UNSUPPORTED);
        assert_non_null(strstr(ssl_last_error(), "bf16"));
        assert_int_equal(ssl_ctx_precision(ctx), SSL_PRECISION_FP32);
    } else {
        assert_int_equal(ssl_ctx_precision(ctx), SSL_PRECISION_BF16);
    }
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precision_api), cmocka_unit_test(test_gemm_rounding),
        cmocka_unit_test(test_gemm_bias),     cmocka_unit_test(test_gemm_vs_rounded_reference),
        cmocka_unit_test(test_matmul_linear), cmocka_unit_test(test_conv_gemm),
        cmocka_unit_test(test_conv_dnnl),     cmocka_unit_test(test_conv_dnnl_grad_adds),
    };
    return tu_status(cmocka_run_group_tests(tests, NULL, NULL));
}
