/* conv_transpose2d: forward and backward against plain loops (the definition: every input
 * pixel scatters its kernel-weighted copy onto the output), on one and several images per
 * GEMM chunk and with the index-table (gather) im2col/col2im on and off; central-difference
 * gradients; the adjoint identity with conv2d; gradients that add; determinism; errors. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ct_case {
    int64_t n, c, h, w, oc, kh, kw; /* x (N, C, H, W), weight (C, OC, KH, KW) */
    int stride, pad, opad, bias;
} ct_case_t;

/* stride 1 and 2, padding 0-2, output_padding 1, odd and non-square sizes and kernels, C or
 * OC of 1, the VAE decoder's 7 -> 14 -> 28 layers, and sizes large enough for the parallel
 * loops and several chunks */
// clang-format off
static const ct_case_t ct_cases[] = {
    {2, 3, 5, 5, 2, 3, 3, 1, 1, 0, 1},
    {2, 3, 4, 4, 2, 3, 3, 2, 1, 1, 1},   /* 4 -> 8 */
    {3, 2, 5, 4, 3, 3, 3, 2, 1, 0, 0},   /* odd: 5 -> 9 */
    {1, 2, 3, 5, 4, 4, 4, 2, 1, 0, 1},   /* DCGAN's 4x4 stride 2: 3 -> 6 */
    {2, 4, 3, 3, 2, 2, 3, 3, 0, 2, 1},   /* non-square kernel, stride 3, output_padding 2 */
    {1, 1, 6, 7, 1, 3, 3, 2, 2, 1, 0},   /* C = OC = 1, padding 2 */
    {2, 3, 4, 5, 2, 1, 1, 1, 0, 0, 1},   /* 1x1 */
    {1, 2, 4, 4, 3, 1, 1, 2, 0, 1, 0},   /* 1x1 stride 2 */
    {5, 64, 7, 7, 32, 3, 3, 2, 1, 1, 1}, /* decoder 7 -> 14 */
    {4, 32, 14, 14, 1, 3, 3, 2, 1, 1, 1},/* decoder 14 -> 28, one output channel */
    {3, 16, 9, 10, 8, 5, 5, 1, 2, 0, 1}, /* 5x5 stride 1 (rows of 16+ on the output) */
};
// clang-format on
#define N_CT (int)(sizeof ct_cases / sizeof ct_cases[0])

static int64_t ct_out(int64_t in, int64_t k, int s, int p, int op)
{
    return (in - 1) * s - 2 * p + k + op;
}

/* y (N, OC, OH, OW) = bias + sum over inputs scattered: y[oy = iy*s - p + ky] += x * w */
static void ref_convt(const ct_case_t *c, const float *x, const float *w, const float *b,
                      float *y)
{
    int64_t oh = ct_out(c->h, c->kh, c->stride, c->pad, c->opad);
    int64_t ow = ct_out(c->w, c->kw, c->stride, c->pad, c->opad);
    double *acc = calloc((size_t)(c->n * c->oc * oh * ow), sizeof(double));
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t ci = 0; ci < c->c; ci++)
            for (int64_t iy = 0; iy < c->h; iy++)
                for (int64_t ix = 0; ix < c->w; ix++) {
                    double xv = x[((n * c->c + ci) * c->h + iy) * c->w + ix];
                    for (int64_t o = 0; o < c->oc; o++)
                        for (int64_t ky = 0; ky < c->kh; ky++)
                            for (int64_t kx = 0; kx < c->kw; kx++) {
                                int64_t oy = iy * c->stride - c->pad + ky;
                                int64_t ox = ix * c->stride - c->pad + kx;
                                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow)
                                    continue;
                                double wv = w[((ci * c->oc + o) * c->kh + ky) * c->kw + kx];
                                acc[((n * c->oc + o) * oh + oy) * ow + ox] += xv * wv;
                            }
                }
    for (int64_t i = 0; i < c->n * c->oc * oh * ow; i++)
        y[i] = (float)(acc[i] + (b ? b[(i / (oh * ow)) % c->oc] : 0.0));
    free(acc);
}

/* The adjoint loops for upstream g: dx, dw, db overwritten (db may be NULL). */
static void ref_convt_backward(const ct_case_t *c, const float *x, const float *w,
                               const float *g, float *dx, float *dw, float *db)
{
    int64_t oh = ct_out(c->h, c->kh, c->stride, c->pad, c->opad);
    int64_t ow = ct_out(c->w, c->kw, c->stride, c->pad, c->opad);
    int64_t nw = c->c * c->oc * c->kh * c->kw;
    double *aw = calloc((size_t)nw, sizeof(double));
    for (int64_t n = 0; n < c->n; n++)
        for (int64_t ci = 0; ci < c->c; ci++)
            for (int64_t iy = 0; iy < c->h; iy++)
                for (int64_t ix = 0; ix < c->w; ix++) {
                    int64_t xi = ((n * c->c + ci) * c->h + iy) * c->w + ix;
                    double s = 0;
                    for (int64_t o = 0; o < c->oc; o++)
                        for (int64_t ky = 0; ky < c->kh; ky++)
                            for (int64_t kx = 0; kx < c->kw; kx++) {
                                int64_t oy = iy * c->stride - c->pad + ky;
                                int64_t ox = ix * c->stride - c->pad + kx;
                                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow)
                                    continue;
                                int64_t wi = ((ci * c->oc + o) * c->kh + ky) * c->kw + kx;
                                double gv = g[((n * c->oc + o) * oh + oy) * ow + ox];
                                s += gv * w[wi];
                                aw[wi] += gv * x[xi];
                            }
                    dx[xi] = (float)s;
                }
    for (int64_t i = 0; i < nw; i++)
        dw[i] = (float)aw[i];
    for (int64_t o = 0; db && o < c->oc; o++) {
        double s = 0;
        for (int64_t n = 0; n < c->n; n++)
            for (int64_t q = 0; q < oh * ow; q++)
                s += g[(n * c->oc + o) * oh * ow + q];
        db[o] = (float)s;
    }
    free(aw);
}

typedef struct ct_user {
    int stride, pad, opad;
} ct_user_t;

static ssl_tensor_t *build_ct(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    ct_user_t *u = user;
    return ssl_conv_transpose2d(ctx, in[0], in[1], in[2], u->stride, u->pad, u->opad);
}

static void make_inputs(ssl_ctx_t *ctx, const ct_case_t *c, uint64_t seed, ssl_tensor_t **in)
{
    in[0] = tu_rand(ctx, 4, (int64_t[]){c->n, c->c, c->h, c->w}, seed, -1, 1, 1);
    in[1] = tu_rand(ctx, 4, (int64_t[]){c->c, c->oc, c->kh, c->kw}, seed + 1, -1, 1, 1);
    in[2] = c->bias ? tu_rand(ctx, 1, (int64_t[]){c->oc}, seed + 2, -1, 1, 1) : NULL;
}

/* Mode 0: the defaults; 1: one image per GEMM chunk; 2: two images per chunk and the scalar
 * im2col/col2im (index tables off). */
#define N_MODES 3
static void set_mode(const ct_case_t *c, int mode)
{
    int64_t per = (c->oc * c->kh * c->kw + c->c) * c->h * c->w;
    ssl__conv_chunk_floats = mode == 0 ? (int64_t)1 << 20 : mode * per;
    ssl__conv_vec_tables = mode != 2;
}

static void restore_defaults(void)
{
    ssl__conv_chunk_floats = (int64_t)1 << 20;
    ssl__conv_vec_tables = 1;
}

static void test_convt_forward_backward_vs_reference(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int i = 0; i < N_CT * N_MODES; i++) {
        const ct_case_t *c = &ct_cases[i % N_CT];
        set_mode(c, i / N_CT);
        ssl_tensor_t *in[3];
        make_inputs(ctx, c, 100 + (uint64_t)i, in);
        ssl_tensor_t *y = ssl_conv_transpose2d(ctx, in[0], in[1], in[2], c->stride, c->pad,
                                               c->opad);
        assert_non_null(y);
        assert_int_equal(y->shape[0], c->n);
        assert_int_equal(y->shape[1], c->oc);
        assert_int_equal(y->shape[2], ct_out(c->h, c->kh, c->stride, c->pad, c->opad));
        assert_int_equal(y->shape[3], ct_out(c->w, c->kw, c->stride, c->pad, c->opad));
        float *ref = malloc((size_t)y->numel * sizeof(float));
        ref_convt(c, in[0]->data, in[1]->data, in[2] ? in[2]->data : NULL, ref);
        tu_assert_close(y->data, ref, y->numel, 1e-4, 1e-4);
        /* backward twice: the gradients hold twice the adjoint loops' result */
        float *g = malloc((size_t)y->numel * sizeof(float));
        ssl_rng_fill_uniform(g, (size_t)y->numel, -1, 1, 300 + (uint64_t)i, 0, 0);
        float *dx = malloc((size_t)in[0]->numel * sizeof(float));
        float *dw = malloc((size_t)in[1]->numel * sizeof(float));
        float db[64];
        ref_convt_backward(c, in[0]->data, in[1]->data, g, dx, dw, c->bias ? db : NULL);
        for (int k = 1; k <= 2; k++) {
            assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
            for (int64_t j = 0; j < in[0]->numel; j++)
                assert_true(fabsf(in[0]->grad[j] - k * dx[j]) <= 1e-4f * k + 1e-4f * fabsf(dx[j]));
            for (int64_t j = 0; j < in[1]->numel; j++)
                assert_true(fabsf(in[1]->grad[j] - k * dw[j]) <= 1e-3f * k + 1e-4f * fabsf(dw[j]));
            for (int64_t j = 0; c->bias && j < c->oc; j++)
                assert_true(fabsf(in[2]->grad[j] - k * db[j]) <= 1e-3f * k + 1e-4f * fabsf(db[j]));
        }
        free(ref);
        free(g);
        free(dx);
        free(dw);
        ssl_ctx_reset(ctx);
    }
    restore_defaults();
    ssl_ctx_free(ctx);
}

/* <conv_transpose2d(x, w), u> = <x, conv2d(u, w)>: the two ops are each other's adjoint (the
 * transposed weight read as conv2d's (OC = C_in, C = C_out, KH, KW)). */
static void test_convt_adjoint_of_conv2d(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int i = 0; i < N_CT; i++) {
        const ct_case_t *c = &ct_cases[i];
        ssl_tensor_t *in[3];
        make_inputs(ctx, c, 700 + (uint64_t)i, in);
        ssl_tensor_t *y = ssl_conv_transpose2d(ctx, in[0], in[1], NULL, c->stride, c->pad,
                                               c->opad);
        assert_non_null(y);
        ssl_tensor_t *u = tu_rand(ctx, 4, y->shape, 800 + (uint64_t)i, -1, 1, 0);
        ssl_tensor_t *cu = ssl_conv2d(ctx, u, in[1], NULL, c->stride, c->pad);
        assert_non_null(cu);
        assert_true(cu->numel == in[0]->numel);
        double a = 0, b = 0, s = 0;
        for (int64_t j = 0; j < y->numel; j++)
            a += (double)y->data[j] * u->data[j], s += fabs((double)y->data[j] * u->data[j]);
        for (int64_t j = 0; j < cu->numel; j++)
            b += (double)in[0]->data[j] * cu->data[j];
        assert_true(fabs(a - b) <= 1e-5 * s + 1e-6);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static void test_convt_gradcheck(void **state)
{
    (void)state;
    /* linear in each input: a large step is exact up to float rounding */
    const tu_gradcheck_opts_t opts = {0.25, 1e-3, 1e-2, 256};
    ssl_ctx_t *ctx = tu_ctx();
    for (int i = 0; i < 8; i++) { /* the small cases */
        const ct_case_t *c = &ct_cases[i];
        ssl_tensor_t *in[3];
        make_inputs(ctx, c, 400 + (uint64_t)i, in);
        ct_user_t u = {c->stride, c->pad, c->opad};
        assert_int_equal(tu_gradcheck(ctx, build_ct, &u, in, 3, &opts), 0);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static void test_convt_grad_adds(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int mode = 0; mode < N_MODES; mode++)
        for (int i = 0; i < N_CT; i += 2) {
            const ct_case_t *c = &ct_cases[i];
            set_mode(c, mode);
            ssl_tensor_t *in[3];
            make_inputs(ctx, c, 500 + (uint64_t)(mode * 20 + i), in);
            ct_user_t u = {c->stride, c->pad, c->opad};
            tu_check_grad_adds(ctx, build_ct, &u, in, 3, 600 + (uint64_t)i);
            ssl_ctx_reset(ctx);
        }
    restore_defaults();
    ssl_ctx_free(ctx);
}

/* bit-identical run to run (same thread count) */
static void test_convt_deterministic(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const ct_case_t *c = &ct_cases[8];
    float *first[3] = {NULL, NULL, NULL};
    for (int run = 0; run < 2; run++) {
        ssl_tensor_t *in[3];
        make_inputs(ctx, c, 900, in);
        ssl_tensor_t *y = ssl_conv_transpose2d(ctx, in[0], in[1], in[2], c->stride, c->pad,
                                               c->opad);
        assert_non_null(y);
        assert_int_equal(ssl_backward(ctx, ssl_sum_all(ctx, ssl_mul(ctx, y, y))), SSL_OK);
        const ssl_tensor_t *t[3] = {y, in[0], in[1]};
        for (int k = 0; k < 3; k++) {
            const float *v = k == 0 ? t[k]->data : t[k]->grad;
            size_t bytes = (size_t)t[k]->numel * sizeof(float);
            if (run == 0) {
                first[k] = malloc(bytes);
                memcpy(first[k], v, bytes);
            } else {
                assert_memory_equal(first[k], v, bytes);
                free(first[k]);
            }
        }
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static void test_convt_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_4d(ctx, 2, 3, 5, 5);
    ssl_tensor_t *w = ssl_tensor_4d(ctx, 3, 4, 3, 3);
    ssl_tensor_t *w_bad = ssl_tensor_4d(ctx, 4, 3, 3, 3);
    tu_assert_error(ssl_conv_transpose2d(ctx, x, w_bad, NULL, 2, 1, 1), SSL_ERR_SHAPE,
                    "conv_transpose2d", "(2, 3, 5, 5)", "(4, 3, 3, 3)", "channels", NULL);
    tu_assert_error(ssl_conv_transpose2d(ctx, x, w, NULL, 0, 1, 0), SSL_ERR_INVALID, "stride",
                    NULL);
    tu_assert_error(ssl_conv_transpose2d(ctx, x, w, NULL, 1, -1, 0), SSL_ERR_INVALID, "padding",
                    NULL);
    tu_assert_error(ssl_conv_transpose2d(ctx, x, w, NULL, 2, 1, 2), SSL_ERR_INVALID,
                    "output_padding", NULL);
    tu_assert_error(ssl_conv_transpose2d(ctx, x, w, NULL, 2, 1, -1), SSL_ERR_INVALID,
                    "output_padding", NULL);
    /* padding 3 on a 1x1 map with a 3x3 kernel: (1 - 1) - 6 + 3 < 1 */
    ssl_tensor_t *x1 = ssl_tensor_4d(ctx, 2, 3, 1, 1);
    tu_assert_error(ssl_conv_transpose2d(ctx, x1, w, NULL, 1, 3, 0), SSL_ERR_SHAPE, "empty",
                    NULL);
    ssl_tensor_t *b_bad = ssl_tensor_1d(ctx, 3);
    tu_assert_error(ssl_conv_transpose2d(ctx, x, w, b_bad, 2, 1, 1), SSL_ERR_SHAPE, "bias", "(3)",
                    NULL);
    ssl_tensor_t *x3 = ssl_tensor_3d(ctx, 3, 5, 5);
    tu_assert_error(ssl_conv_transpose2d(ctx, x3, w, NULL, 1, 1, 0), SSL_ERR_SHAPE, "(3, 5, 5)",
                    NULL);
    ssl_set_error(SSL_ERR_NOMEM, "earlier failure");
    assert_null(ssl_conv_transpose2d(ctx, NULL, w, NULL, 1, 1, 0));
    assert_int_equal(ssl_last_status(), SSL_ERR_NOMEM);
    /* an empty batch is a valid (0, OC, OH, OW) result */
    ssl_tensor_t *x0 = ssl_tensor_4d(ctx, 0, 3, 5, 5);
    ssl_tensor_t *y0 = ssl_conv_transpose2d(ctx, x0, w, NULL, 2, 1, 1);
    assert_non_null(y0);
    assert_int_equal(y0->shape[1], 4);
    assert_int_equal(y0->shape[2], 10);
    assert_int_equal(y0->shape[3], 10);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convt_forward_backward_vs_reference),
        cmocka_unit_test(test_convt_adjoint_of_conv2d),
        cmocka_unit_test(test_convt_gradcheck),
        cmocka_unit_test(test_convt_grad_adds),
        cmocka_unit_test(test_convt_deterministic),
        cmocka_unit_test(test_convt_errors),
    };
    return tu_status(cmocka_run_group_tests(tests, NULL, NULL));
}
