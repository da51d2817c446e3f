/* Elementwise ops: add/sub/mul/div with broadcasting, scale and the unary maps, each against a
 * plain reference computed here, central-difference gradient checks and error paths. */
#include "testutil.h"

#include "core/fast_math.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ================================================================ plain references */

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };
static const char *const BIN_NAMES[] = {"add", "sub", "mul", "div"};

/* Flat index into t of the element broadcast to output flat index o. */
static int64_t ref_bcast_index(const ssl_tensor_t *t, int ndim, const int64_t *oshape, int64_t o)
{
    int64_t idx = 0, stride = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        int64_t i = o % oshape[d];
        o /= oshape[d];
        int td = d - (ndim - t->ndim);
        if (td < 0)
            continue;
        if (t->shape[td] != 1)
            idx += i * stride;
        stride *= t->shape[td];
    }
    return idx;
}

static float ref_bin(int op, float x, float z)
{
    switch (op) {
    case OP_ADD:
        return x + z;
    case OP_SUB:
        return x - z;
    case OP_MUL:
        return x * z;
    default:
        return x / z;
    }
}

static void ref_binary(int op, const ssl_tensor_t *a, const ssl_tensor_t *b, int ndim,
                       const int64_t *oshape, float *out)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= oshape[d];
    for (int64_t o = 0; o < n; o++)
        out[o] = ref_bin(op, a->data[ref_bcast_index(a, ndim, oshape, o)],
                         b->data[ref_bcast_index(b, ndim, oshape, o)]);
}

/* Gradients of sum(r * (a op b)) by the chain rule, accumulated in double. */
static void ref_binary_grads(int op, const ssl_tensor_t *a, const ssl_tensor_t *b, int ndim,
                             const int64_t *oshape, const float *r, float *da, float *db)
{
    double *ga = calloc((size_t)a->numel, sizeof *ga), *gb = calloc((size_t)b->numel, sizeof *gb);
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= oshape[d];
    for (int64_t o = 0; o < n; o++) {
        int64_t ia = ref_bcast_index(a, ndim, oshape, o), ib = ref_bcast_index(b, ndim, oshape, o);
        double g = r[o], x = a->data[ia], z = b->data[ib];
        switch (op) {
        case OP_ADD:
            ga[ia] += g;
            gb[ib] += g;
            break;
        case OP_SUB:
            ga[ia] += g;
            gb[ib] -= g;
            break;
        case OP_MUL:
            ga[ia] += g * z;
            gb[ib] += g * x;
            break;
        default:
            ga[ia] += g / z;
            gb[ib] -= g * x / (z * z);
            break;
        }
    }
    for (int64_t i = 0; i < a->numel; i++)
        da[i] = (float)ga[i];
    for (int64_t i = 0; i < b->numel; i++)
        db[i] = (float)gb[i];
    free(ga);
    free(gb);
}

/* ================================================================ binary ops */

typedef struct bcase {
    int na;
    int64_t a[SSL_MAX_DIMS];
    int nb;
    int64_t b[SSL_MAX_DIMS];
    int no;
    int64_t o[SSL_MAX_DIMS];
} bcase_t;

static const bcase_t SMALL_CASES[] = {
    {2, {3, 5}, 2, {3, 5}, 2, {3, 5}},                            /* same shape */
    {3, {2, 3, 7}, 1, {7}, 3, {2, 3, 7}},                         /* (B, T, C) + (C) */
    {4, {2, 3, 4, 5}, 4, {1, 3, 1, 1}, 4, {2, 3, 4, 5}},          /* (N,C,H,W) + (1,C,1,1) */
    {3, {2, 3, 4}, 2, {3, 1}, 3, {2, 3, 4}},                      /* (B, T, 1)-like */
    {3, {2, 3, 4}, 3, {2, 1, 4}, 3, {2, 3, 4}},                   /* middle dim */
    {2, {4, 1}, 2, {1, 5}, 2, {4, 5}},                            /* outer product */
    {1, {3}, 2, {2, 3}, 2, {2, 3}},                               /* a broadcast, b full */
    {3, {2, 1, 3}, 2, {4, 1}, 3, {2, 4, 3}},                      /* both broadcast */
    {2, {2, 3}, 1, {1}, 2, {2, 3}},                               /* scalar b */
    {0, {0}, 2, {2, 3}, 2, {2, 3}},                               /* 0-d a */
    {5, {3, 1, 2, 1, 2}, 5, {1, 2, 1, 3, 1}, 5, {3, 2, 2, 3, 2}}, /* alternating */
    {1, {1}, 1, {1}, 1, {1}},                                     /* one element */
    {2, {1, 1}, 3, {2, 1, 3}, 3, {2, 1, 3}},                      /* size-1 kept dim */
};

static ssl_tensor_t *bin_call(ssl_ctx_t *ctx, int op, ssl_tensor_t *a, ssl_tensor_t *b)
{
    switch (op) {
    case OP_ADD:
        return ssl_add(ctx, a, b);
    case OP_SUB:
        return ssl_sub(ctx, a, b);
    case OP_MUL:
        return ssl_mul(ctx, a, b);
    default:
        return ssl_div(ctx, a, b);
    }
}

static ssl_tensor_t *build_binary(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    return bin_call(ctx, *(int *)user, in[0], in[1]);
}

/* Inputs for a case: b kept away from 0 for div. */
static void make_bin_inputs(ssl_ctx_t *ctx, int op, const bcase_t *c, uint64_t seed, int ga, int gb,
                            ssl_tensor_t **in)
{
    in[0] = tu_rand(ctx, c->na, c->a, seed, -2, 2, ga);
    in[1] = op == OP_DIV ? tu_rand_away0(ctx, c->nb, c->b, seed + 1, -2, 2, 0.5f, gb)
                         : tu_rand(ctx, c->nb, c->b, seed + 1, -2, 2, gb);
}

/* Forward against ref_binary and both gradients against ref_binary_grads. */
static void check_binary_case(ssl_ctx_t *ctx, int op, const bcase_t *c, uint64_t seed, int ga,
                              int gb, double grad_atol)
{
    ssl_tensor_t *in[2];
    make_bin_inputs(ctx, op, c, seed, ga, gb, in);
    ssl_tensor_t *y = bin_call(ctx, op, in[0], in[1]);
    if (!y)
        fail_msg("%s: %s", BIN_NAMES[op], ssl_last_error());
    assert_int_equal(y->ndim, c->no);
    for (int d = 0; d < c->no; d++)
        assert_int_equal(y->shape[d], c->o[d]);
    float *ref = malloc((size_t)y->numel * sizeof(float));
    ref_binary(op, in[0], in[1], c->no, c->o, ref);
    /* one IEEE operation per element: the result must be exact */
    tu_assert_close(y->data, ref, y->numel, 0.0, 0.0);

    float *r = malloc((size_t)y->numel * sizeof(float));
    ssl_rng_fill_uniform(r, (size_t)y->numel, -1, 1, seed, 5, 0);
    float *da = malloc((size_t)in[0]->numel * sizeof(float));
    float *db = malloc((size_t)in[1]->numel * sizeof(float));
    ref_binary_grads(op, in[0], in[1], c->no, c->o, r, da, db);
    assert_int_equal(ssl_backward_with(ctx, y, r), SSL_OK);
    if (ga)
        tu_assert_close(in[0]->grad, da, in[0]->numel, grad_atol, 1e-5);
    else
        assert_null(in[0]->grad);
    if (gb)
        tu_assert_close(in[1]->grad, db, in[1]->numel, grad_atol, 1e-5);
    else
        assert_null(in[1]->grad);
    /* a second backward adds the same again */
    assert_int_equal(ssl_backward_with(ctx, y, r), SSL_OK);
    for (int64_t i = 0; i < in[0]->numel; i++)
        da[i] *= 2;
    for (int64_t i = 0; i < in[1]->numel; i++)
        db[i] *= 2;
    if (ga)
        tu_assert_close(in[0]->grad, da, in[0]->numel, 2 * grad_atol, 1e-5);
    if (gb)
        tu_assert_close(in[1]->grad, db, in[1]->numel, 2 * grad_atol, 1e-5);
    free(ref);
    free(r);
    free(da);
    free(db);
}

static void test_binary_forward_backward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const int ncase = (int)(sizeof SMALL_CASES / sizeof SMALL_CASES[0]);
    for (int op = OP_ADD; op <= OP_DIV; op++)
        for (int k = 0; k < ncase; k++) {
            const bcase_t *c = &SMALL_CASES[k];
            check_binary_case(ctx, op, c, 100 + (uint64_t)k, 1, 1, 1e-5);
            ssl_ctx_reset(ctx);
            /* only one input requiring a gradient */
            check_binary_case(ctx, op, c, 200 + (uint64_t)k, k % 2, 1 - k % 2, 1e-5);
            ssl_ctx_reset(ctx);
            ssl_tensor_t *in[2];
            make_bin_inputs(ctx, op, c, 300 + (uint64_t)k, 1, 1, in);
            int bad = tu_gradcheck(ctx, build_binary, &op, in, 2, NULL);
            if (bad)
                fail_msg("%s case %d: gradcheck failed (%d)", BIN_NAMES[op], k, bad);
            ssl_ctx_reset(ctx);
        }
    ssl_ctx_free(ctx);
}

/* Sizes above the OpenMP threshold: the chunked walker (chunks ending mid-row), the parallel
 * reductions, and bit-identical results for 1 and 2 threads. */
static const bcase_t LARGE_CASES[] = {
    {3, {40, 33, 17}, 3, {40, 33, 17}, 3, {40, 33, 17}},
    {3, {40, 33, 17}, 1, {17}, 3, {40, 33, 17}},
    {3, {40, 33, 17}, 2, {33, 1}, 3, {40, 33, 17}},
    {1, {1}, 3, {40, 33, 17}, 3, {40, 33, 17}},
    {3, {40, 1, 17}, 2, {33, 1}, 3, {40, 33, 17}},
    {2, {700, 600}, 2, {1, 600}, 2, {700, 600}}, /* columns in more than one block */
};

static void test_binary_large_deterministic(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(64 << 20);
    const int prev_threads = ssl_get_num_threads();
    const int ncase = (int)(sizeof LARGE_CASES / sizeof LARGE_CASES[0]);
    for (int op = OP_ADD; op <= OP_DIV; op++)
        for (int k = 0; k < ncase; k++) {
            const bcase_t *c = &LARGE_CASES[k];
            ssl_set_num_threads(2);
            /* long float sums: rounding of the per-element terms adds up */
            check_binary_case(ctx, op, c, 400 + (uint64_t)k, 1, 1, 1e-4);
            ssl_ctx_reset(ctx);
            float *keep[2][3] = {{0}};
            int64_t nums[3];
            for (int t = 0; t < 2; t++) {
                ssl_set_num_threads(t + 1);
                ssl_tensor_t *in[2];
                make_bin_inputs(ctx, op, c, 500 + (uint64_t)k, 1, 1, in);
                ssl_tensor_t *y = bin_call(ctx, op, in[0], in[1]);
                assert_non_null(y);
                float *r = malloc((size_t)y->numel * sizeof(float));
                ssl_rng_fill_uniform(r, (size_t)y->numel, -1, 1, 7, 7, 0);
                assert_int_equal(ssl_backward_with(ctx, y, r), SSL_OK);
                free(r);
                const ssl_tensor_t *ts[3] = {y, in[0], in[1]};
                for (int j = 0; j < 3; j++) {
                    nums[j] = ts[j]->numel;
                    keep[t][j] = malloc((size_t)nums[j] * sizeof(float));
                    memcpy(keep[t][j], j ? ts[j]->grad : ts[j]->data,
                           (size_t)nums[j] * sizeof(float));
                }
                ssl_ctx_reset(ctx);
            }
            for (int j = 0; j < 3; j++) {
                assert_memory_equal(keep[0][j], keep[1][j], (size_t)nums[j] * sizeof(float));
                free(keep[0][j]);
                free(keep[1][j]);
            }
        }
    ssl_set_num_threads(prev_threads);
    ssl_ctx_free(ctx);
}

static void test_binary_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *a = ssl_tensor_2d(ctx, 2, 3), *b = ssl_tensor_2d(ctx, 4, 5);
    tu_assert_error(ssl_add(ctx, a, b), SSL_ERR_SHAPE, "add", "(2, 3)", "(4, 5)", NULL);
    ssl_tensor_t *c = ssl_tensor_1d(ctx, 2);
    tu_assert_error(ssl_sub(ctx, a, c), SSL_ERR_SHAPE, "sub", "(2, 3)", "(2)", NULL);
    ssl_tensor_t *d = ssl_tensor_3d(ctx, 3, 4, 5), *e = ssl_tensor_3d(ctx, 2, 1, 5);
    tu_assert_error(ssl_mul(ctx, d, e), SSL_ERR_SHAPE, "mul", "(3, 4, 5)", "(2, 1, 5)", NULL);
    ssl_tensor_t *f = ssl_tensor_2d(ctx, 3, 2);
    tu_assert_error(ssl_div(ctx, a, f), SSL_ERR_SHAPE, "div", "(2, 3)", "(3, 2)", NULL);
    /* NULL inputs: NULL out, the earlier error kept */
    ssl_set_error(SSL_ERR_IO, "earlier failure");
    for (int op = OP_ADD; op <= OP_DIV; op++) {
        assert_null(bin_call(ctx, op, NULL, a));
        assert_null(bin_call(ctx, op, a, NULL));
        assert_null(bin_call(ctx, op, NULL, NULL));
    }
    assert_int_equal(ssl_last_status(), SSL_ERR_IO);
    assert_string_equal(ssl_last_error(), "earlier failure");
    ssl_clear_error();
    ssl_ctx_free(ctx);
}

/* Backward adds to what is there (also through the reduction paths: per-column and scalar). */
static void test_binary_accumulates(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int nb = 3; nb >= 1; nb -= 2) {
        ssl_tensor_t *a = tu_rand(ctx, 2, (int64_t[]){4, 3}, 1, -1, 1, 1);
        ssl_tensor_t *b = tu_rand_away0(ctx, 1, (int64_t[]){nb}, 2, -2, 2, 0.5f, 1);
        ssl_tensor_t *y = ssl_add(ctx, ssl_mul(ctx, a, b), ssl_div(ctx, a, b));
        float g[12];
        for (int i = 0; i < 12; i++)
            g[i] = 1.0f;
        assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
        float ga[12], gb[3];
        memcpy(ga, a->grad, sizeof ga);
        memcpy(gb, b->grad, (size_t)nb * sizeof(float));
        /* d/db_j sum (a_ij b_j + a_ij / b_j) = (1 - 1 / b_j^2) * (sum of the a_ij it meets) */
        for (int j = 0; j < nb; j++) {
            double s = 0;
            for (int i = 0; i < 12; i++)
                if (i % 3 % nb == j)
                    s += a->data[i];
            double bj = b->data[j];
            assert_float_equal(gb[j], (1 - 1 / (bj * bj)) * s, 1e-5);
        }
        assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
        for (int i = 0; i < 12; i++)
            assert_float_equal(a->grad[i], 2 * ga[i], 1e-6);
        for (int j = 0; j < nb; j++)
            assert_float_equal(b->grad[j], 2 * gb[j], 1e-6);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

/* ================================================================ unary ops */

enum { U_EXP, U_LOG, U_SQRT, U_POW, U_CLAMP, U_RELU, U_GELU, U_SIGMOID, U_TANH, U_SCALE };

typedef struct ucase {
    int op;
    float p0, p1; /* pow: p; clamp: lo, hi; gelu: kind; scale: alpha, beta */
    float lo, hi; /* input range */
    const char *name;
} ucase_t;

static const ucase_t UNARY_CASES[] = {
    {U_EXP, 0, 0, -3, 3, "exp"},
    {U_LOG, 0, 0, 0.2f, 3, "log"},
    {U_SQRT, 0, 0, 0.2f, 3, "sqrt"},
    {U_POW, 2, 0, -2, 2, "pow 2"},
    {U_POW, 3, 0, -2, 2, "pow 3"},
    {U_POW, 0.5f, 0, 0.2f, 3, "pow 0.5"},
    {U_POW, -1.5f, 0, 0.3f, 2, "pow -1.5"},
    {U_POW, 1, 0, -2, 2, "pow 1"},
    {U_POW, 0, 0, -2, 2, "pow 0"},
    {U_CLAMP, -0.5f, 0.7f, -1.5f, 1.5f, "clamp"},
    {U_CLAMP, -INFINITY, 0.3f, -1.5f, 1.5f, "clamp max only"},
    {U_RELU, 0, 0, -2, 2, "relu"},
    {U_GELU, SSL_GELU_ERF, 0, -4, 4, "gelu erf"},
    {U_GELU, SSL_GELU_TANH, 0, -4, 4, "gelu tanh"},
    {U_SIGMOID, 0, 0, -6, 6, "sigmoid"},
    {U_TANH, 0, 0, -3, 3, "tanh"},
    {U_SCALE, -1.5f, 0.25f, -2, 2, "scale"},
};

static ssl_tensor_t *unary_call(ssl_ctx_t *ctx, const ucase_t *c, ssl_tensor_t *x)
{
    switch (c->op) {
    case U_EXP:
        return ssl_exp(ctx, x);
    case U_LOG:
        return ssl_log(ctx, x);
    case U_SQRT:
        return ssl_sqrt(ctx, x);
    case U_POW:
        return ssl_pow(ctx, x, c->p0);
    case U_CLAMP:
        return ssl_clamp(ctx, x, c->p0, c->p1);
    case U_RELU:
        return ssl_relu(ctx, x);
    case U_GELU:
        return ssl_gelu(ctx, x, (int)c->p0);
    case U_SIGMOID:
        return ssl_sigmoid(ctx, x);
    case U_TANH:
        return ssl_tanh(ctx, x);
    default:
        return ssl_scale(ctx, x, c->p0, c->p1);
    }
}

static ssl_tensor_t *build_unary(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    return unary_call(ctx, user, in[0]);
}

static const double SQRT_2_PI = 0.79788456080286535588, INV_SQRT_2PI = 0.39894228040143267794,
                    KAPPA = 0.044715;

/* Value and derivative in double, straight from the textbook formulas. */
static void ref_unary(const ucase_t *c, double x, double *y, double *dy)
{
    switch (c->op) {
    case U_EXP:
        *y = exp(x);
        *dy = exp(x);
        break;
    case U_LOG:
        *y = log(x);
        *dy = 1 / x;
        break;
    case U_SQRT:
        *y = sqrt(x);
        *dy = 0.5 / sqrt(x);
        break;
    case U_POW:
        *y = pow(x, c->p0);
        *dy = c->p0 == 0 ? 0 : c->p0 * pow(x, c->p0 - 1);
        break;
    case U_CLAMP:
        *y = x < c->p0 ? c->p0 : x > c->p1 ? c->p1 : x;
        *dy = (x > c->p0 && x < c->p1) ? 1 : 0;
        break;
    case U_RELU:
        *y = x > 0 ? x : 0;
        *dy = x > 0;
        break;
    case U_GELU:
        if ((int)c->p0 == SSL_GELU_ERF) {
            double cdf = 0.5 * (1 + erf(x / sqrt(2.0)));
            *y = x * cdf;
            *dy = cdf + x * exp(-0.5 * x * x) * INV_SQRT_2PI;
        } else {
            double t = tanh(SQRT_2_PI * (x + KAPPA * x * x * x));
            *y = 0.5 * x * (1 + t);
            *dy = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_PI * (1 + 3 * KAPPA * x * x);
        }
        break;
    case U_SIGMOID: {
        double s = 1 / (1 + exp(-x));
        *y = s;
        *dy = s * (1 - s);
        break;
    }
    case U_TANH:
        *y = tanh(x);
        *dy = 1 - tanh(x) * tanh(x);
        break;
    default:
        *y = c->p0 * x + c->p1;
        *dy = c->p0;
        break;
    }
}

/* Random input in the case's range, kept at least `gap` away from the op's kinks. */
static ssl_tensor_t *unary_input(ssl_ctx_t *ctx, const ucase_t *c, int ndim, const int64_t *shape,
                                 uint64_t seed)
{
    const float gap = 0.02f;
    ssl_tensor_t *x = tu_rand(ctx, ndim, shape, seed, c->lo, c->hi, 1);
    float kinks[2];
    int nk = 0;
    if (c->op == U_RELU)
        kinks[nk++] = 0;
    if (c->op == U_CLAMP) {
        if (isfinite(c->p0))
            kinks[nk++] = c->p0;
        kinks[nk++] = c->p1;
    }
    for (int64_t i = 0; i < x->numel; i++)
        for (int k = 0; k < nk; k++)
            if (fabsf(x->data[i] - kinks[k]) < gap)
                x->data[i] = kinks[k] + (x->data[i] < kinks[k] ? -gap : gap);
    return x;
}

static void test_unary_forward_backward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(16 << 20);
    static const int64_t shapes[][3] = {{7, 0, 0}, {3, 5, 0}, {2, 3, 4}, {130, 129, 0}};
    static const int ranks[] = {1, 2, 3, 2};
    const int ncase = (int)(sizeof UNARY_CASES / sizeof UNARY_CASES[0]);
    for (int k = 0; k < ncase; k++) {
        const ucase_t *c = &UNARY_CASES[k];
        for (int s = 0; s < 4; s++) {
            ssl_tensor_t *x = unary_input(ctx, c, ranks[s], shapes[s], 10 * (uint64_t)k + s);
            ssl_tensor_t *y = unary_call(ctx, c, x);
            if (!y)
                fail_msg("%s: %s", c->name, ssl_last_error());
            assert_true(ssl_same_shape(x, y));
            const int64_t n = x->numel;
            float *ry = malloc((size_t)n * sizeof(float)), *rd = malloc((size_t)n * sizeof(float));
            float *g = malloc((size_t)n * sizeof(float)), *rg = malloc((size_t)n * sizeof(float));
            ssl_rng_fill_uniform(g, (size_t)n, -1, 1, 77, (uint64_t)s, 0);
            for (int64_t i = 0; i < n; i++) {
                double yy, dd;
                ref_unary(c, x->data[i], &yy, &dd);
                ry[i] = (float)yy;
                rd[i] = (float)dd;
                rg[i] = (float)(g[i] * dd);
            }
            if (tu_count_mismatch(y->data, ry, n, 1e-6, 1e-5, c->name))
                fail_msg("%s: forward differs from the reference", c->name);
            assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
            if (tu_count_mismatch(x->grad, rg, n, 1e-6, 1e-5, c->name))
                fail_msg("%s: backward differs from the reference derivative", c->name);
            assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK); /* accumulates */
            for (int64_t i = 0; i < n; i++)
                rg[i] *= 2;
            if (tu_count_mismatch(x->grad, rg, n, 2e-6, 1e-5, c->name))
                fail_msg("%s: a second backward does not accumulate", c->name);
            free(ry);
            free(rd);
            free(g);
            free(rg);
            if (s < 3) { /* central differences on the small shapes */
                ssl_tensor_t *in[1] = {unary_input(ctx, c, ranks[s], shapes[s], 999 + (uint64_t)k)};
                int bad = tu_gradcheck(ctx, build_unary, (void *)c, in, 1, NULL);
                if (bad)
                    fail_msg("%s: gradcheck failed (%d)", c->name, bad);
            }
            ssl_ctx_reset(ctx);
        }
    }
    ssl_ctx_free(ctx);
}

/* PyTorch values: torch.nn.functional.gelu(x) and gelu(x, approximate="tanh"), with the
 * derivatives of the same formulas (which PyTorch's backward implements). */
static void test_gelu_known_values(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const float xs[6] = {1.0f, -1.0f, 2.0f, -0.5f, 0.5f, 3.0f};
    const float erf_y[6] = {0.8413447f,  -0.1586553f, 1.9544997f,
                            -0.1542688f, 0.3457312f,  2.9959502f};
    const float tanh_y[6] = {0.8411920f,  -0.1588080f, 1.9545977f,
                             -0.1542860f, 0.3457140f,  2.9963627f};
    const float erf_d[6] = {1.0833155f, -0.0833155f, 1.0852318f,
                            0.1325049f, 0.8674951f,  1.0119457f};
    const float tanh_d[6] = {1.0829641f, -0.0829641f, 1.0860993f,
                             0.1326301f, 0.8673699f,  1.0115842f};
    for (int kind = 0; kind < 2; kind++) {
        ssl_tensor_t *x = ssl_tensor_from(ctx, 1, (int64_t[]){6}, xs);
        x->requires_grad = 1;
        ssl_tensor_t *y = ssl_gelu(ctx, x, kind ? SSL_GELU_TANH : SSL_GELU_ERF);
        assert_non_null(y);
        const float ones[6] = {1, 1, 1, 1, 1, 1};
        assert_int_equal(ssl_backward_with(ctx, y, ones), SSL_OK);
        tu_assert_close(y->data, kind ? tanh_y : erf_y, 6, 3e-7, 1e-6);
        tu_assert_close(x->grad, kind ? tanh_d : erf_d, 6, 3e-7, 1e-6);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

/* The vectorised erf and exp behind gelu against libm (the plain references), over dense
 * sweeps that cross every branch and range-reduction boundary. */
static void test_fast_erf_exp(void **state)
{
    (void)state;
    double worst_erf = 0, worst_exp = 0;
    for (int64_t i = -700000; i <= 700000; i++) { /* x in [-7, 7] step 1e-5 */
        float x = (float)i * 1e-5f;
        worst_erf = fmax(worst_erf, fabs((double)ssl__erff(x) - (double)erff(x)));
    }
    for (int64_t i = -870000; i <= 880000; i++) { /* x in [-87, 88] step 1e-4 */
        float x = (float)i * 1e-4f;
        double ref = exp((double)x);
        worst_exp = fmax(worst_exp, fabs((double)ssl__expf(x) - ref) / ref);
    }
    if (worst_erf > 2e-7 || worst_exp > 3e-7)
        fail_msg("fast erf max abs error %.3g (limit 2e-7), fast exp max rel error %.3g "
                 "(limit 3e-7)", worst_erf, worst_exp);
    assert_true(ssl__erff(0.0f) == 0.0f && ssl__erff(100.0f) == 1.0f &&
                ssl__erff(-100.0f) == -1.0f && isnan(ssl__erff(NAN)));
    assert_true(ssl__expf(0.0f) == 1.0f && ssl__expf(-1000.0f) == 0.0f &&
                ssl__expf(1000.0f) == INFINITY);
}

/* The vectorised tanh and sigmoid behind ssl_tanh, ssl_sigmoid and gelu's tanh form against
 * double-precision libm, relative error, over dense sweeps across tanh's branch point
 * (|x| = 0.625) and into saturation, plus the tiny, infinite and NaN inputs. */
static void test_fast_tanh_sigmoid(void **state)
{
    (void)state;
    double worst_tanh = 0, worst_sig = 0;
    for (int64_t i = -1200000; i <= 1200000; i++) { /* x in [-12, 12] step 1e-5 */
        float x = (float)i * 1e-5f;
        double t = tanh((double)x);
        if (t != 0)
            worst_tanh = fmax(worst_tanh, fabs((double)ssl__tanhf(x) - t) / fabs(t));
    }
    for (int64_t i = -870000; i <= 870000; i++) { /* x in [-87, 87] step 1e-4 */
        float x = (float)i * 1e-4f;
        double s = 1 / (1 + exp(-(double)x));
        worst_sig = fmax(worst_sig, fabs((double)ssl__sigmoidf(x) - s) / s);
    }
    for (int i = -45; i <= -1; i++) { /* 2^-45 .. 2^-1: tanh(x) = x(1 - x^2/3 ...) */
        float x = ldexpf(1.0f, i) * 1.37f;
        double t = tanh((double)x);
        worst_tanh = fmax(worst_tanh, fabs((double)ssl__tanhf(x) - t) / t);
        worst_tanh = fmax(worst_tanh, fabs((double)ssl__tanhf(-x) + t) / t);
    }
    if (worst_tanh > 2.5e-7 || worst_sig > 2.5e-7)
        fail_msg("fast tanh max rel error %.3g, fast sigmoid max rel error %.3g "
                 "(limit 2.5e-7)",
                 worst_tanh, worst_sig);
    assert_true(ssl__tanhf(0.0f) == 0.0f && !signbit(ssl__tanhf(0.0f)) &&
                signbit(ssl__tanhf(-0.0f)));
    assert_true(ssl__tanhf(INFINITY) == 1.0f && ssl__tanhf(-INFINITY) == -1.0f &&
                ssl__tanhf(30.0f) == 1.0f && isnan(ssl__tanhf(NAN)));
    assert_true(ssl__sigmoidf(0.0f) == 0.5f && ssl__sigmoidf(INFINITY) == 1.0f &&
                ssl__sigmoidf(-INFINITY) == 0.0f && ssl__sigmoidf(-1000.0f) == 0.0f &&
                ssl__sigmoidf(1000.0f) == 1.0f && isnan(ssl__sigmoidf(NAN)));
}

/* Points the random tests avoid: kinks, saturation, exact values. */
static void test_unary_edge_values(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const float ones[4] = {1, 1, 1, 1};
    ssl_tensor_t *x = ssl_tensor_from(ctx, 1, (int64_t[]){4}, (float[]){-100, 0, 100, -0.5f});
    x->requires_grad = 1;

    ssl_tensor_t *s = ssl_sigmoid(ctx, x); /* no overflow, no NaN */
    assert_int_equal(ssl_backward_with(ctx, s, ones), SSL_OK);
    assert_true(s->data[0] >= 0.0f && s->data[0] < 1e-40f); /* 3.8e-44 as PyTorch */
    assert_true(s->data[1] == 0.5f && s->data[2] == 1.0f);
    assert_true(x->grad[0] >= 0.0f && x->grad[0] < 1e-40f);
    assert_true(x->grad[1] == 0.25f && x->grad[2] == 0.0f);

    x->grad = NULL;
    ssl_tensor_t *r = ssl_relu(ctx, x); /* gradient 0 at x = 0 */
    assert_int_equal(ssl_backward_with(ctx, r, ones), SSL_OK);
    assert_true(r->data[0] == 0.0f && r->data[1] == 0.0f && r->data[2] == 100.0f);
    assert_true(x->grad[0] == 0.0f && x->grad[1] == 0.0f && x->grad[2] == 1.0f);

    x->grad = NULL;
    ssl_tensor_t *c = ssl_clamp(ctx, x, -0.5f, 0.5f); /* at lo exactly: no gradient */
    assert_int_equal(ssl_backward_with(ctx, c, ones), SSL_OK);
    assert_true(c->data[0] == -0.5f && c->data[1] == 0.0f && c->data[2] == 0.5f &&
                c->data[3] == -0.5f);
    assert_true(x->grad[0] == 0.0f && x->grad[1] == 1.0f && x->grad[2] == 0.0f &&
                x->grad[3] == 0.0f);

    x->grad = NULL;
    ssl_tensor_t *p = ssl_pow(ctx, x, 0.0f); /* x^0 = 1 with zero gradient, also at 0 */
    assert_int_equal(ssl_backward_with(ctx, p, ones), SSL_OK);
    for (int i = 0; i < 4; i++)
        assert_true(p->data[i] == 1.0f && x->grad[i] == 0.0f);

    ssl_tensor_t *t = ssl_tanh(ctx, x);
    assert_true(t->data[0] == -1.0f && t->data[2] == 1.0f);
    ssl_tensor_t *e = ssl_exp(ctx, ssl_log(ctx, ssl_tensor_fill(ctx, 1, (int64_t[]){1}, 2.5f)));
    assert_float_equal(e->data[0], 2.5f, 1e-6);
    ssl_tensor_t *sc = ssl_scale(ctx, x, 2.0f, 1.0f);
    assert_true(sc->data[0] == -199.0f && sc->data[1] == 1.0f && sc->data[3] == 0.0f);
    ssl_ctx_free(ctx);
}

static void test_unary_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_fill(ctx, 2, (int64_t[]){2, 3}, 1.0f);
    tu_assert_error(ssl_gelu(ctx, x, 7), SSL_ERR_INVALID, "gelu", "(2, 3)", "7", NULL);
    tu_assert_error(ssl_clamp(ctx, x, 1.0f, -1.0f), SSL_ERR_INVALID, "clamp", "(2, 3)", NULL);
    tu_assert_error(ssl_clamp(ctx, x, NAN, 1.0f), SSL_ERR_INVALID, "clamp", NULL);
    tu_assert_error(ssl_pow(ctx, x, NAN), SSL_ERR_INVALID, "pow", "(2, 3)", NULL);
    tu_assert_error(ssl_pow(ctx, x, INFINITY), SSL_ERR_INVALID, "pow", NULL);
    tu_assert_error(ssl_scale(ctx, x, NAN, 0.0f), SSL_ERR_INVALID, "scale", "(2, 3)", NULL);
    tu_assert_error(ssl_scale(ctx, x, 1.0f, INFINITY), SSL_ERR_INVALID, "scale", NULL);
    /* lo == hi is allowed: a constant */
    ssl_tensor_t *c = ssl_clamp(ctx, x, 0.25f, 0.25f);
    assert_non_null(c);
    assert_true(c->data[4] == 0.25f);

    ssl_set_error(SSL_ERR_IO, "earlier failure");
    const int ncase = (int)(sizeof UNARY_CASES / sizeof UNARY_CASES[0]);
    for (int k = 0; k < ncase; k++)
        assert_null(unary_call(ctx, &UNARY_CASES[k], NULL));
    assert_int_equal(ssl_last_status(), SSL_ERR_IO);
    assert_string_equal(ssl_last_error(), "earlier failure");
    ssl_clear_error();
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_forward_backward),
        cmocka_unit_test(test_binary_large_deterministic),
        cmocka_unit_test(test_binary_errors),
        cmocka_unit_test(test_binary_accumulates),
        cmocka_unit_test(test_unary_forward_backward),
        cmocka_unit_test(test_gelu_known_values),
        cmocka_unit_test(test_fast_erf_exp),
        cmocka_unit_test(test_fast_tanh_sigmoid),
        cmocka_unit_test(test_unary_edge_values),
        cmocka_unit_test(test_unary_errors),
    };
    return cmocka_run_group_tests_name("ops_elementwise", tests, NULL, NULL);
}
