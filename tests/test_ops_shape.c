/* Shape and index ops: reshape, permute/transpose, concat, slice, split, gather_rows,
 * scatter_rows, embedding. Forward against plain reference loops (bit-exact: these ops only
 * move data), backward by central differences, error paths and NULL propagation. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies are exact and f = sum r_j y_j is linear, so the numeric gradient is exact up to
 * double rounding: the tolerances can be tight. */
static const tu_gradcheck_opts_t tight = {1e-3, 1e-5, 1e-5, 4096};
/* scatter_rows' forward sums repeated rows in float, so f moves by a rounded amount; the ops
 * are linear, so a large step costs no truncation error and keeps that rounding small. */
static const tu_gradcheck_opts_t summing = {1e-2, 1e-4, 1e-4, 4096};

static int64_t numel_of(int nd, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    return n;
}

/* A sentinel error, to check that an op given a NULL input keeps the earlier error. */
static void set_sentinel(void)
{
    ssl_set_error(SSL_ERR_IO, "sentinel error");
}
static void assert_sentinel(const void *t)
{
    assert_null(t);
    assert_int_equal(ssl_last_status(), SSL_ERR_IO);
    assert_string_equal(ssl_last_error(), "sentinel error");
}

/* ---------------------------------------------------------------- plain references */

/* y[i] = x[offset of output index i]: y's dim j is x's dim perm[j]. */
static void ref_permute(const float *x, int nd, const int64_t *shape, const int *perm, float *y)
{
    int64_t is[SSL_MAX_DIMS], os[SSL_MAX_DIMS], n = numel_of(nd, shape);
    for (int d = nd - 1, st = 1; d >= 0; st *= (int)shape[d], d--)
        is[d] = st;
    for (int j = 0; j < nd; j++)
        os[j] = shape[perm[j]];
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, off = 0;
        for (int j = nd - 1; j >= 0; j--) {
            off += (rem % os[j]) * is[perm[j]];
            rem /= os[j];
        }
        y[i] = x[off];
    }
}

/* Concatenation along axis by walking (outer, input, row, inner). */
static void ref_concat(ssl_tensor_t *const *xs, int n, int axis, float *y)
{
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= xs[0]->shape[d];
    for (int d = axis + 1; d < xs[0]->ndim; d++)
        inner *= xs[0]->shape[d];
    int64_t o2 = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < n; i++)
            for (int64_t a = 0; a < xs[i]->shape[axis]; a++)
                for (int64_t c = 0; c < inner; c++)
                    y[o2++] = xs[i]->data[(o * xs[i]->shape[axis] + a) * inner + c];
}

/* y (B, K, C) = x (B, T, C) rows idx (B, K). */
static void ref_gather(const float *x, const int32_t *idx, int64_t B, int64_t T, int64_t K,
                       int64_t C, float *y)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < C; c++)
                y[(b * K + k) * C + c] = x[(b * T + idx[b * K + k]) * C + c];
}

/* y (B, T, C) = 0, then y[b, idx[b, k]] += src[b, k] in k order. */
static void ref_scatter(const float *src, const int32_t *idx, int64_t B, int64_t T, int64_t K,
                        int64_t C, float *y)
{
    memset(y, 0, (size_t)(B * T * C) * sizeof(float));
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t c = 0; c < C; c++)
                y[(b * T + idx[b * K + k]) * C + c] += src[(b * K + k) * C + c];
}

static void rand_indices(int32_t *idx, int64_t n, int32_t hi, uint64_t seed)
{
    for (int64_t i = 0; i < n; i++)
        idx[i] = (int32_t)(ssl_rng_u32(seed, 5, (uint64_t)i) % (uint32_t)hi);
}

/* Next permutation in lexicographic order; 0 after the last. */
static int next_perm(int *p, int n)
{
    int i = n - 2;
    while (i >= 0 && p[i] >= p[i + 1])
        i--;
    if (i < 0)
        return 0;
    int j = n - 1;
    while (p[j] <= p[i])
        j--;
    int t = p[i];
    p[i] = p[j];
    p[j] = t;
    for (int a = i + 1, b = n - 1; a < b; a++, b--) {
        t = p[a];
        p[a] = p[b];
        p[b] = t;
    }
    return 1;
}

/* ---------------------------------------------------------------- reshape */

typedef struct reshape_case {
    int ndim;
    int64_t shape[SSL_MAX_DIMS];
} reshape_case_t;

static ssl_tensor_t *build_reshape(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    reshape_case_t *c = user;
    return ssl_reshape(ctx, in[0], c->ndim, c->shape);
}

/* reshape of a permuted tensor, so the gradient passes through a non-leaf alias */
static ssl_tensor_t *build_permute_reshape(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    (void)user;
    ssl_tensor_t *p = ssl_permute(ctx, in[0], (int[]){1, 0, 2});
    return ssl_reshape(ctx, p, 2, (int64_t[]){-1, 4});
}

/* h = 2x feeds a scale and the reshape, and a mul recorded after the reshape (*user == 1: its
 * backward runs first, so the reshape adds into h's gradient) or before it (the reshape hands
 * its gradient buffer to h) */
static ssl_tensor_t *build_shared_reshape(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    int mul_after = *(const int *)user;
    ssl_tensor_t *h = ssl_scale(ctx, in[0], 2.0f, 0.0f);
    ssl_tensor_t *a = ssl_scale(ctx, h, -1.5f, 0.0f);
    ssl_tensor_t *b = mul_after ? NULL : ssl_mul(ctx, h, h);
    ssl_tensor_t *r = ssl_reshape(ctx, h, 3, (int64_t[]){2, 3, 4});
    if (mul_after)
        b = ssl_mul(ctx, h, h);
    return ssl_add(ctx, ssl_add(ctx, a, r), b);
}

static void test_reshape(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 3, (int64_t[]){2, 3, 4}, 1, -1, 1, 1);
    ssl_tensor_t *y = ssl_reshape(ctx, x, 2, (int64_t[]){-1, 6});
    assert_non_null(y);
    assert_ptr_equal(y->data, x->data); /* a view, no copy */
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->shape[0], 4);
    assert_int_equal(y->shape[1], 6);
    assert_int_equal(y->numel, 24);
    assert_true(y->requires_grad);
    y = ssl_reshape(ctx, x, 5, (int64_t[]){1, 2, 1, 12, 1});
    assert_ptr_equal(y->data, x->data);
    assert_int_equal(y->shape[3], 12);
    /* rank 0 from a single element */
    ssl_tensor_t *one = tu_rand(ctx, 2, (int64_t[]){1, 1}, 2, -1, 1, 0);
    ssl_tensor_t *s = ssl_reshape(ctx, one, 0, NULL);
    assert_non_null(s);
    assert_int_equal(s->ndim, 0);
    assert_int_equal(s->numel, 1);

    reshape_case_t cases[] = {{2, {4, 6}}, {1, {-1}}, {4, {2, -1, 2, 3}}, {3, {3, 8, 1}}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ssl_tensor_t *in[1] = {tu_rand(ctx, 3, (int64_t[]){2, 3, 4}, 10 + i, -1, 1, 1)};
        assert_int_equal(tu_gradcheck(ctx, build_reshape, &cases[i], in, 1, &tight), 0);
    }
    ssl_tensor_t *in[1] = {tu_rand(ctx, 3, (int64_t[]){2, 3, 4}, 20, -1, 1, 1)};
    assert_int_equal(tu_gradcheck(ctx, build_permute_reshape, NULL, in, 1, &tight), 0);

    /* backward adds into what is there */
    ssl_tensor_t *v = ssl_reshape(ctx, x, 1, (int64_t[]){24});
    float g[24];
    for (int i = 0; i < 24; i++)
        g[i] = (float)i;
    x->grad = NULL;
    assert_int_equal(ssl_backward_with(ctx, v, g), SSL_OK);
    assert_int_equal(ssl_backward_with(ctx, v, g), SSL_OK);
    for (int i = 0; i < 24; i++)
        assert_true(x->grad[i] == 2.0f * (float)i);
    /* an intermediate that also feeds ops recorded before and after the reshape: the reshape's
     * gradient buffer becomes the input's and the other consumers add into it */
    for (int mul_after = 0; mul_after < 2; mul_after++) {
        in[0] = tu_rand(ctx, 3, (int64_t[]){2, 3, 4}, 21, -1, 1, 1);
        assert_int_equal(tu_gradcheck(ctx, build_shared_reshape, &mul_after, in, 1, NULL), 0);
    }
    ssl_ctx_free(ctx);
}

static void test_reshape_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_2d(ctx, 2, 3);
    tu_assert_error(ssl_reshape(ctx, x, 2, (int64_t[]){4, 5}), SSL_ERR_SHAPE, "reshape", "(2, 3)",
                    "(4, 5)", NULL);
    tu_assert_error(ssl_reshape(ctx, x, 2, (int64_t[]){4, -1}), SSL_ERR_SHAPE, "(2, 3)", "(4, -1)",
                    NULL);
    tu_assert_error(ssl_reshape(ctx, x, 3, (int64_t[]){-1, 2, -1}), SSL_ERR_INVALID, "(2, 3)",
                    "more than one -1", NULL);
    tu_assert_error(ssl_reshape(ctx, x, 2, (int64_t[]){-2, -3}), SSL_ERR_INVALID, "negative", NULL);
    tu_assert_error(ssl_reshape(ctx, x, 6, (int64_t[]){1, 1, 1, 1, 2, 3}), SSL_ERR_INVALID,
                    "rank 6", NULL);
    tu_assert_error(ssl_reshape(ctx, x, 2, NULL), SSL_ERR_INVALID, "NULL", NULL);
    ssl_tensor_t *z = ssl_tensor_2d(ctx, 0, 3); /* -1 cannot be inferred from 0 elements */
    tu_assert_error(ssl_reshape(ctx, z, 2, (int64_t[]){0, -1}), SSL_ERR_SHAPE, "(0, -1)", NULL);
    set_sentinel();
    assert_sentinel(ssl_reshape(ctx, NULL, 1, (int64_t[]){6}));
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- permute / transpose */

static void check_permute_forward(ssl_ctx_t *ctx, int nd, const int64_t *shape, const int *perm,
                                  uint64_t seed)
{
    ssl_tensor_t *x = tu_rand(ctx, nd, shape, seed, -1, 1, 0);
    ssl_tensor_t *y = ssl_permute(ctx, x, perm);
    assert_non_null(y);
    assert_int_equal(y->ndim, nd);
    for (int j = 0; j < nd; j++)
        assert_int_equal(y->shape[j], shape[perm[j]]);
    float *ref = malloc((size_t)x->numel * sizeof(float) + 1);
    ref_permute(x->data, nd, shape, perm, ref);
    if (memcmp(ref, y->data, (size_t)x->numel * sizeof(float)) != 0) {
        char s[96];
        fail_msg("permute of %s by (%d %d %d %d %d) differs from the reference",
                 ssl_shape_str(x, s, sizeof s), perm[0], nd > 1 ? perm[1] : -1,
                 nd > 2 ? perm[2] : -1, nd > 3 ? perm[3] : -1, nd > 4 ? perm[4] : -1);
    }
    assert_ptr_not_equal(y->data, x->data);
    free(ref);
    ssl_ctx_reset(ctx);
}

static void test_permute_forward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    /* Every permutation of ranks 2..5, with odd sizes and size-1 dims (merged / dropped). */
    const int64_t shapes[][SSL_MAX_DIMS] = {{7, 13},        {3, 5, 7},    {1, 4, 3},
                                            {2, 3, 4, 5},   {2, 1, 5, 1}, {3, 2, 1, 4, 3},
                                            {2, 3, 2, 5, 3}};
    const int ranks[] = {2, 3, 3, 4, 4, 5, 5};
    uint64_t seed = 1;
    for (size_t s = 0; s < sizeof ranks / sizeof ranks[0]; s++) {
        int p[SSL_MAX_DIMS] = {0, 1, 2, 3, 4};
        do
            check_permute_forward(ctx, ranks[s], shapes[s], p, seed++);
        while (next_perm(p, ranks[s]));
    }
    /* Larger: several tiles with ragged edges, and the multi-threaded paths. */
    check_permute_forward(ctx, 2, (int64_t[]){67, 45}, (int[]){1, 0}, 100);
    check_permute_forward(ctx, 3, (int64_t[]){8, 48, 50}, (int[]){0, 2, 1}, 101);
    check_permute_forward(ctx, 4, (int64_t[]){4, 64, 6, 32}, (int[]){0, 2, 1, 3}, 102);
    check_permute_forward(ctx, 4, (int64_t[]){2, 6, 64, 32}, (int[]){0, 2, 1, 3}, 103);
    check_permute_forward(ctx, 4, (int64_t[]){2, 3, 56, 56}, (int[]){0, 2, 3, 1}, 104);
    check_permute_forward(ctx, 4, (int64_t[]){2, 56, 56, 3}, (int[]){0, 3, 1, 2}, 105);
    check_permute_forward(ctx, 4, (int64_t[]){3, 33, 37, 17}, (int[]){3, 1, 0, 2}, 106);
    check_permute_forward(ctx, 5, (int64_t[]){2, 3, 4, 64, 40}, (int[]){1, 0, 2, 4, 3}, 107);
    ssl_ctx_free(ctx);
}

typedef struct perm_case {
    int perm[SSL_MAX_DIMS];
} perm_case_t;

static ssl_tensor_t *build_permute(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    return ssl_permute(ctx, in[0], ((perm_case_t *)user)->perm);
}

static ssl_tensor_t *build_transpose(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    const int *d = user;
    return ssl_transpose(ctx, in[0], d[0], d[1]);
}

static void test_permute_backward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    struct {
        int nd;
        int64_t shape[SSL_MAX_DIMS];
        perm_case_t p;
    } cases[] = {
        {2, {5, 7}, {{1, 0}}},
        {3, {3, 4, 5}, {{2, 0, 1}}},
        {3, {3, 4, 5}, {{1, 2, 0}}},
        {4, {2, 3, 4, 5}, {{0, 2, 1, 3}}}, /* (B, T, H, D) -> (B, H, T, D) */
        {4, {2, 3, 4, 5}, {{0, 1, 3, 2}}}, /* K^T */
        {4, {2, 3, 4, 5}, {{0, 2, 3, 1}}}, /* NCHW -> NHWC */
        {4, {2, 1, 3, 1}, {{3, 2, 1, 0}}},
        {5, {2, 3, 2, 3, 2}, {{4, 2, 0, 3, 1}}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ssl_tensor_t *in[1] = {tu_rand(ctx, cases[i].nd, cases[i].shape, 30 + i, -1, 1, 1)};
        assert_int_equal(tu_gradcheck(ctx, build_permute, &cases[i].p, in, 1, &tight), 0);
        ssl_ctx_reset(ctx);
    }
    int dims[][2] = {{-1, -2}, {0, 2}, {1, 1}};
    for (int i = 0; i < 3; i++) {
        ssl_tensor_t *in[1] = {tu_rand(ctx, 3, (int64_t[]){3, 4, 5}, 40 + i, -1, 1, 1)};
        assert_int_equal(tu_gradcheck(ctx, build_transpose, dims[i], in, 1, &tight), 0);
        ssl_ctx_reset(ctx);
    }
    /* Large backward (tiled, threaded, accumulating): dx = inverse permutation of dy. */
    int64_t shape[4] = {3, 40, 6, 36};
    int perms[2][4] = {{0, 2, 1, 3}, {0, 3, 2, 1}};
    for (int k = 0; k < 2; k++) {
        ssl_tensor_t *x = tu_rand(ctx, 4, shape, 50, -1, 1, 1);
        ssl_tensor_t *y = ssl_permute(ctx, x, perms[k]);
        float *g = malloc((size_t)y->numel * sizeof(float));
        float *ref = malloc((size_t)y->numel * sizeof(float));
        ssl_rng_fill_uniform(g, (size_t)y->numel, -1, 1, 7, 7, 0);
        int inv[4];
        for (int j = 0; j < 4; j++)
            inv[perms[k][j]] = j;
        ref_permute(g, 4, y->shape, inv, ref);
        assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
        assert_memory_equal(x->grad, ref, (size_t)x->numel * sizeof(float));
        assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
        for (int64_t i = 0; i < x->numel; i++)
            assert_true(x->grad[i] == 2.0f * ref[i]);
        free(g);
        free(ref);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static void test_transpose_forward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 3, (int64_t[]){2, 3, 4}, 3, -1, 1, 0);
    ssl_tensor_t *y = ssl_transpose(ctx, x, -1, -2);
    assert_int_equal(y->shape[1], 4);
    assert_int_equal(y->shape[2], 3);
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                assert_true(y->data[(b * 4 + j) * 3 + i] == x->data[(b * 3 + i) * 4 + j]);
    y = ssl_transpose(ctx, x, 2, 0);
    assert_int_equal(y->shape[0], 4);
    assert_int_equal(y->shape[2], 2);
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                assert_true(y->data[(j * 3 + i) * 2 + b] == x->data[(b * 3 + i) * 4 + j]);
    y = ssl_transpose(ctx, x, 1, 1); /* identity, still a copy */
    assert_ptr_not_equal(y->data, x->data);
    assert_memory_equal(y->data, x->data, 24 * sizeof(float));
    ssl_ctx_free(ctx);
}

static void test_permute_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_3d(ctx, 2, 3, 4);
    tu_assert_error(ssl_permute(ctx, x, (int[]){0, 0, 2}), SSL_ERR_INVALID, "permute", "(2, 3, 4)",
                    "(0, 0, 2)", NULL);
    tu_assert_error(ssl_permute(ctx, x, (int[]){0, 1, 3}), SSL_ERR_INVALID, "(0, 1, 3)", NULL);
    tu_assert_error(ssl_permute(ctx, x, (int[]){-1, 0, 1}), SSL_ERR_INVALID, "(-1, 0, 1)", NULL);
    tu_assert_error(ssl_permute(ctx, x, NULL), SSL_ERR_INVALID, "NULL", NULL);
    tu_assert_error(ssl_transpose(ctx, x, 0, 3), SSL_ERR_INVALID, "transpose", "(2, 3, 4)", NULL);
    tu_assert_error(ssl_transpose(ctx, x, -4, 0), SSL_ERR_INVALID, "-4", NULL);
    set_sentinel();
    assert_sentinel(ssl_permute(ctx, NULL, (int[]){1, 0}));
    assert_sentinel(ssl_transpose(ctx, NULL, 0, 1));
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- concat */

typedef struct concat_case {
    int n, axis;
    int dup; /* pass input 0 again as the last input */
} concat_case_t;

static ssl_tensor_t *build_concat(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    concat_case_t *c = user;
    ssl_tensor_t *xs[8];
    for (int i = 0; i < c->n; i++)
        xs[i] = in[i];
    int n = c->n;
    if (c->dup)
        xs[n++] = in[0];
    return ssl_concat(ctx, xs, n, c->axis);
}

/* n inputs of base shape (2, 3, 4) whose `axis` size is 1 + (i % 3). */
static void make_concat_inputs(ssl_ctx_t *ctx, int n, int axis, uint64_t seed, ssl_tensor_t **xs)
{
    int a = axis < 0 ? axis + 3 : axis;
    for (int i = 0; i < n; i++) {
        int64_t shape[3] = {2, 3, 4};
        shape[a] = 1 + (i % 3);
        xs[i] = tu_rand(ctx, 3, shape, seed + (uint64_t)i, -1, 1, 1);
    }
}

static void test_concat(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int ns[] = {1, 2, 3, 6};
    for (int ni = 0; ni < 4; ni++)
        for (int axis = -1; axis < 3; axis++) {
            int n = ns[ni], a = axis < 0 ? 2 : axis;
            ssl_tensor_t *xs[8];
            make_concat_inputs(ctx, n, axis, 60 + (uint64_t)(ni * 10 + axis + 1), xs);
            concat_case_t c = {n, axis, 0};
            ssl_tensor_t *y = build_concat(ctx, xs, &c);
            assert_non_null(y);
            int64_t total = 0;
            for (int i = 0; i < n; i++)
                total += xs[i]->shape[a];
            assert_int_equal(y->shape[a], total);
            float ref[512];
            ref_concat(xs, n, a, ref);
            assert_memory_equal(y->data, ref, (size_t)y->numel * sizeof(float));
            if (n == 3 || n == 6)
                assert_int_equal(tu_gradcheck(ctx, build_concat, &c, xs, n, &tight), 0);
            ssl_ctx_reset(ctx);
        }
    /* An input passed twice receives both gradients. */
    for (int axis = 0; axis < 3; axis++) {
        ssl_tensor_t *xs[8];
        make_concat_inputs(ctx, 4, axis, 90, xs);
        concat_case_t c = {4, axis, 1};
        assert_int_equal(tu_gradcheck(ctx, build_concat, &c, xs, 4, &tight), 0);
        ssl_ctx_reset(ctx);
    }
    /* Larger inputs on the threaded path: the cls token + patch tokens pattern and a wide
     * channel concat. */
    ssl_tensor_t *cls = tu_rand(ctx, 3, (int64_t[]){4, 1, 192}, 91, -1, 1, 1);
    ssl_tensor_t *tok = tu_rand(ctx, 3, (int64_t[]){4, 49, 192}, 92, -1, 1, 1);
    ssl_tensor_t *xs2[2] = {cls, tok};
    ssl_tensor_t *y = ssl_concat(ctx, xs2, 2, 1);
    float *ref = malloc((size_t)y->numel * sizeof(float));
    ref_concat(xs2, 2, 1, ref);
    assert_memory_equal(y->data, ref, (size_t)y->numel * sizeof(float));
    assert_int_equal(ssl_backward_with(ctx, y, ref), SSL_OK); /* dy = y: dx = x */
    assert_memory_equal(cls->grad, cls->data, (size_t)cls->numel * sizeof(float));
    assert_memory_equal(tok->grad, tok->data, (size_t)tok->numel * sizeof(float));
    free(ref);
    ssl_ctx_reset(ctx);
    ssl_tensor_t *big[3];
    for (int i = 0; i < 3; i++)
        big[i] = tu_rand(ctx, 2, (int64_t[]){3, 10000 + i}, 93 + (uint64_t)i, -1, 1, 0);
    y = ssl_concat(ctx, big, 3, 1);
    ref = malloc((size_t)y->numel * sizeof(float));
    ref_concat(big, 3, 1, ref);
    assert_memory_equal(y->data, ref, (size_t)y->numel * sizeof(float));
    free(ref);
    ssl_ctx_free(ctx);
}

static void test_concat_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *a = ssl_tensor_2d(ctx, 2, 3), *b = ssl_tensor_2d(ctx, 4, 5);
    ssl_tensor_t *c = ssl_tensor_2d(ctx, 2, 7), *d = ssl_tensor_3d(ctx, 2, 3, 1);
    tu_assert_error(ssl_concat(ctx, (ssl_tensor_t *[]){a, b}, 2, 0), SSL_ERR_SHAPE, "concat",
                    "input 0 (2, 3) and input 1 (4, 5)", NULL);
    tu_assert_error(ssl_concat(ctx, (ssl_tensor_t *[]){a, c, a, c, a, b}, 6, 1), SSL_ERR_SHAPE,
                    "input 0 (2, 3) and input 5 (4, 5)", NULL);
    tu_assert_error(ssl_concat(ctx, (ssl_tensor_t *[]){a, d}, 2, 1), SSL_ERR_SHAPE, "(2, 3)",
                    "(2, 3, 1)", NULL);
    /* along axis 1 (2, 3) and (2, 7) fit, along axis 0 they do not */
    assert_non_null(ssl_concat(ctx, (ssl_tensor_t *[]){a, c}, 2, 1));
    tu_assert_error(ssl_concat(ctx, (ssl_tensor_t *[]){a, c}, 2, 0), SSL_ERR_SHAPE, "(2, 7)", NULL);
    tu_assert_error(ssl_concat(ctx, (ssl_tensor_t *[]){a, c}, 2, 2), SSL_ERR_INVALID, "axis 2",
                    NULL);
    tu_assert_error(ssl_concat(ctx, (ssl_tensor_t *[]){a}, 0, 0), SSL_ERR_INVALID, NULL);
    tu_assert_error(ssl_concat(ctx, NULL, 2, 0), SSL_ERR_INVALID, NULL);
    set_sentinel();
    assert_sentinel(ssl_concat(ctx, (ssl_tensor_t *[]){a, NULL}, 2, 0));
    assert_sentinel(ssl_concat(ctx, (ssl_tensor_t *[]){a, a, a, a, a, NULL}, 6, 0));
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- slice / split */

typedef struct slice_case {
    int axis;
    int64_t start, len;
} slice_case_t;

static ssl_tensor_t *build_slice(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    slice_case_t *c = user;
    return ssl_slice(ctx, in[0], c->axis, c->start, c->len);
}

static void test_slice(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t shape[3] = {3, 5, 4};
    slice_case_t cases[] = {{0, 1, 2}, {1, 0, 5}, {1, 2, 3}, {-1, 3, 1}, {2, 0, 2}, {1, 4, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        slice_case_t *c = &cases[i];
        int a = c->axis < 0 ? c->axis + 3 : c->axis;
        ssl_tensor_t *x = tu_rand(ctx, 3, shape, 70 + i, -1, 1, 1);
        ssl_tensor_t *y = ssl_slice(ctx, x, c->axis, c->start, c->len);
        assert_non_null(y);
        assert_int_equal(y->shape[a], c->len);
        int64_t yi = 0;
        for (int64_t i0 = 0; i0 < 3; i0++)
            for (int64_t i1 = 0; i1 < 5; i1++)
                for (int64_t i2 = 0; i2 < 4; i2++) {
                    int64_t ci = a == 0 ? i0 : a == 1 ? i1 : i2;
                    if (ci >= c->start && ci < c->start + c->len)
                        assert_true(y->data[yi++] == x->data[(i0 * 5 + i1) * 4 + i2]);
                }
        assert_int_equal(yi, y->numel);
        if (c->len > 0)
            assert_int_equal(tu_gradcheck(ctx, build_slice, c, &x, 1, &tight), 0);
        ssl_ctx_reset(ctx);
    }
    /* Threaded path: the middle of long rows. */
    ssl_tensor_t *x = tu_rand(ctx, 2, (int64_t[]){4, 30000}, 79, -1, 1, 1);
    ssl_tensor_t *y = ssl_slice(ctx, x, 1, 123, 20000);
    for (int r = 0; r < 4; r++)
        assert_memory_equal(y->data + r * 20000, x->data + r * 30000 + 123, 20000 * sizeof(float));
    assert_int_equal(ssl_backward_with(ctx, y, y->data), SSL_OK);
    for (int r = 0; r < 4; r++)
        for (int j = 0; j < 30000; j++)
            assert_true(x->grad[r * 30000 + j] ==
                        (j >= 123 && j < 20123 ? x->data[r * 30000 + j] : 0.0f));
    ssl_ctx_free(ctx);
}

typedef struct split_case {
    int axis, n;
} split_case_t;

/* The parts of a split, concatenated in reverse order: every part's gradient matters. */
static ssl_tensor_t *build_split(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    split_case_t *c = user;
    ssl_tensor_t *parts[8], *rev[8];
    if (ssl_split(ctx, in[0], c->axis, c->n, parts) != SSL_OK)
        return NULL;
    for (int i = 0; i < c->n; i++)
        rev[i] = parts[c->n - 1 - i];
    return ssl_concat(ctx, rev, c->n, c->axis);
}

static void test_split(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    split_case_t cases[] = {{1, 3}, {0, 2}, {-1, 4}, {2, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        split_case_t *c = &cases[i];
        ssl_tensor_t *x = tu_rand(ctx, 3, (int64_t[]){2, 6, 4}, 80 + i, -1, 1, 1);
        ssl_tensor_t *parts[8];
        assert_int_equal(ssl_split(ctx, x, c->axis, c->n, parts), SSL_OK);
        int a = c->axis < 0 ? c->axis + 3 : c->axis;
        int64_t len = x->shape[a] / c->n;
        for (int p = 0; p < c->n; p++) {
            ssl_tensor_t *ref = ssl_slice(ctx, x, a, p * len, len);
            assert_true(ssl_same_shape(parts[p], ref));
            assert_memory_equal(parts[p]->data, ref->data, (size_t)ref->numel * sizeof(float));
        }
        assert_int_equal(tu_gradcheck(ctx, build_split, c, &x, 1, &tight), 0);
        ssl_ctx_reset(ctx);
    }
    ssl_tensor_t *x = ssl_tensor_3d(ctx, 2, 5, 4), *parts[4];
    assert_int_equal(ssl_split(ctx, x, 1, 3, parts), SSL_ERR_SHAPE);
    assert_non_null(strstr(ssl_last_error(), "(2, 5, 4)"));
    assert_non_null(strstr(ssl_last_error(), "3 equal parts"));
    assert_null(parts[0]);
    assert_int_equal(ssl_split(ctx, x, 1, 0, parts), SSL_ERR_INVALID);
    assert_int_equal(ssl_split(ctx, x, 3, 1, parts), SSL_ERR_INVALID);
    assert_non_null(strstr(ssl_last_error(), "axis 3"));
    assert_int_equal(ssl_split(ctx, x, 1, 1, NULL), SSL_ERR_INVALID);
    set_sentinel();
    assert_int_equal(ssl_split(ctx, NULL, 0, 2, parts), SSL_ERR_IO);
    assert_sentinel(parts[1]);
    ssl_ctx_free(ctx);
}

static void test_slice_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_2d(ctx, 2, 5);
    tu_assert_error(ssl_slice(ctx, x, 1, 4, 2), SSL_ERR_INVALID, "slice", "(2, 5)", "axis 1",
                    "start 4", "len 2", NULL);
    tu_assert_error(ssl_slice(ctx, x, 0, -1, 1), SSL_ERR_INVALID, "start -1", NULL);
    tu_assert_error(ssl_slice(ctx, x, 0, 0, -1), SSL_ERR_INVALID, "len -1", NULL);
    tu_assert_error(ssl_slice(ctx, x, 2, 0, 1), SSL_ERR_INVALID, "axis 2", NULL);
    tu_assert_error(ssl_slice(ctx, x, 1, INT64_MAX, 2), SSL_ERR_INVALID, "(2, 5)", NULL);
    assert_non_null(ssl_slice(ctx, x, -1, 5, 0)); /* empty slice at the end is fine */
    set_sentinel();
    assert_sentinel(ssl_slice(ctx, NULL, 0, 0, 1));
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- gather / scatter rows */

typedef struct rows_case {
    const int32_t *idx;
    int64_t k; /* gather: K; scatter: T */
} rows_case_t;

static ssl_tensor_t *build_gather(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    rows_case_t *c = user;
    return ssl_gather_rows(ctx, in[0], c->idx, c->k);
}

static ssl_tensor_t *build_scatter(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    rows_case_t *c = user;
    return ssl_scatter_rows(ctx, in[0], c->idx, c->k);
}

static void test_gather_rows(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    /* 3-D with repeated indices */
    int32_t idx3[2 * 5] = {6, 0, 6, 3, 6, 1, 1, 2, 5, 4};
    ssl_tensor_t *x = tu_rand(ctx, 3, (int64_t[]){2, 7, 3}, 1, -1, 1, 1);
    rows_case_t c3 = {idx3, 5};
    ssl_tensor_t *y = build_gather(ctx, &x, &c3);
    assert_non_null(y);
    assert_int_equal(y->ndim, 3);
    assert_int_equal(y->shape[0], 2);
    assert_int_equal(y->shape[1], 5);
    assert_int_equal(y->shape[2], 3);
    float ref[64];
    ref_gather(x->data, idx3, 2, 7, 5, 3, ref);
    assert_memory_equal(y->data, ref, 30 * sizeof(float));
    assert_int_equal(tu_gradcheck(ctx, build_gather, &c3, &x, 1, &tight), 0);
    /* 2-D, more rows gathered than there are, repeated */
    int32_t idx2[8] = {0, 5, 5, 2, 0, 0, 4, 1};
    ssl_tensor_t *x2 = tu_rand(ctx, 2, (int64_t[]){6, 4}, 2, -1, 1, 1);
    rows_case_t c2 = {idx2, 8};
    y = build_gather(ctx, &x2, &c2);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->shape[0], 8);
    ref_gather(x2->data, idx2, 1, 6, 8, 4, ref);
    assert_memory_equal(y->data, ref, 32 * sizeof(float));
    assert_int_equal(tu_gradcheck(ctx, build_gather, &c2, &x2, 1, &tight), 0);
    /* k = 0 gives an empty tensor */
    y = ssl_gather_rows(ctx, x, NULL, 0);
    assert_non_null(y);
    assert_int_equal(y->numel, 0);
    ssl_ctx_free(ctx);
}

/* Large gather backward (threaded scatter-add, repeated indices): bit-identical to the
 * in-order reference, for one and two threads, and the caller's indices may change after the
 * forward pass. */
static void test_gather_rows_large(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int nthreads = ssl_get_num_threads();
    int64_t shapes[][3] = {{3, 50, 256}, {1, 64, 300}};
    for (int s = 0; s < 2; s++) {
        int64_t B = shapes[s][0], T = shapes[s][1], C = shapes[s][2], K = 2 * T;
        int32_t *idx = malloc((size_t)(B * K) * sizeof *idx);
        int32_t *keep = malloc((size_t)(B * K) * sizeof *keep);
        rand_indices(idx, B * K, (int32_t)T / 3, 11 + (uint64_t)s); /* many repeats */
        memcpy(keep, idx, (size_t)(B * K) * sizeof *idx);
        float *g = malloc((size_t)(B * K * C) * sizeof(float));
        float *ref = malloc((size_t)(B * T * C) * sizeof(float));
        ssl_rng_fill_uniform(g, (size_t)(B * K * C), -1, 1, 3, 3, 0);
        ref_scatter(g, keep, B, T, K, C, ref);
        for (int nt = 1; nt <= 2; nt++) {
            ssl_set_num_threads(nt);
            ssl_tensor_t *x =
                tu_rand(ctx, B > 1 ? 3 : 2, B > 1 ? shapes[s] : shapes[s] + 1, 12, -1, 1, 1);
            ssl_tensor_t *y = ssl_gather_rows(ctx, x, idx, K);
            float *fref = malloc((size_t)y->numel * sizeof(float));
            ref_gather(x->data, keep, B, T, K, C, fref);
            assert_memory_equal(y->data, fref, (size_t)y->numel * sizeof(float));
            free(fref);
            for (int64_t i = 0; i < B * K; i++)
                idx[i] = -1; /* the op copied them */
            assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
            assert_memory_equal(x->grad, ref, (size_t)(B * T * C) * sizeof(float));
            memcpy(idx, keep, (size_t)(B * K) * sizeof *idx);
            ssl_ctx_reset(ctx);
        }
        ssl_set_num_threads(nthreads);
        free(idx);
        free(keep);
        free(g);
        free(ref);
    }
    ssl_ctx_free(ctx);
}

static void test_scatter_rows(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int32_t idx3[2 * 4] = {3, 0, 3, 3, 5, 1, 2, 1};
    ssl_tensor_t *src = tu_rand(ctx, 3, (int64_t[]){2, 4, 3}, 5, -1, 1, 1);
    rows_case_t c3 = {idx3, 6};
    ssl_tensor_t *y = build_scatter(ctx, &src, &c3);
    assert_non_null(y);
    assert_int_equal(y->shape[0], 2);
    assert_int_equal(y->shape[1], 6);
    assert_int_equal(y->shape[2], 3);
    float ref[64];
    ref_scatter(src->data, idx3, 2, 6, 4, 3, ref);
    assert_memory_equal(y->data, ref, 36 * sizeof(float));
    /* spot values: row 3 of batch 0 sums three source rows, row 4 stays zero */
    assert_float_equal(y->data[3 * 3 + 1], src->data[1] + src->data[7] + src->data[10], 1e-6);
    assert_true(y->data[4 * 3] == 0.0f);
    assert_int_equal(tu_gradcheck(ctx, build_scatter, &c3, &src, 1, &summing), 0);
    /* 2-D */
    int32_t idx2[5] = {4, 4, 0, 2, 4};
    ssl_tensor_t *s2 = tu_rand(ctx, 2, (int64_t[]){5, 2}, 6, -1, 1, 1);
    rows_case_t c2 = {idx2, 5};
    y = build_scatter(ctx, &s2, &c2);
    assert_int_equal(y->ndim, 2);
    assert_int_equal(y->shape[0], 5);
    ref_scatter(s2->data, idx2, 1, 5, 5, 2, ref);
    assert_memory_equal(y->data, ref, 10 * sizeof(float));
    assert_int_equal(tu_gradcheck(ctx, build_scatter, &c2, &s2, 1, &summing), 0);
    /* Large, threaded, with repeats: bit-identical to the in-order reference. */
    int64_t B = 2, K = 300, T = 100, C = 96;
    int32_t *idx = malloc((size_t)(B * K) * sizeof *idx);
    rand_indices(idx, B * K, (int32_t)T, 21);
    ssl_tensor_t *sb = tu_rand(ctx, 3, (int64_t[]){B, K, C}, 7, -1, 1, 0);
    y = ssl_scatter_rows(ctx, sb, idx, T);
    float *big = malloc((size_t)(B * T * C) * sizeof(float));
    ref_scatter(sb->data, idx, B, T, K, C, big);
    assert_memory_equal(y->data, big, (size_t)(B * T * C) * sizeof(float));
    free(big);
    free(idx);
    ssl_ctx_free(ctx);
}

/* Masked-encoder round trip: keep a random 25% of the tokens, restore their places. */
static void test_gather_scatter_roundtrip(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t B = 2, T = 16, C = 8, K = 4;
    int32_t keep[2 * 4];
    for (int64_t b = 0; b < B; b++) { /* K distinct tokens per sample */
        int32_t order[16];
        for (int t = 0; t < T; t++)
            order[t] = t;
        for (int t = (int)T - 1; t > 0; t--) {
            int j = (int)(ssl_rng_u32(9, (uint64_t)b, (uint64_t)t) % (uint32_t)(t + 1));
            int32_t tmp = order[t];
            order[t] = order[j];
            order[j] = tmp;
        }
        memcpy(keep + b * K, order, (size_t)K * sizeof *keep);
    }
    ssl_tensor_t *x = tu_rand(ctx, 3, (int64_t[]){B, T, C}, 8, -1, 1, 1);
    ssl_tensor_t *kept = ssl_gather_rows(ctx, x, keep, K);
    ssl_tensor_t *back = ssl_scatter_rows(ctx, kept, keep, T);
    assert_non_null(back);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            int named = 0;
            for (int64_t k = 0; k < K; k++)
                named |= keep[b * K + k] == t;
            for (int64_t c = 0; c < C; c++) {
                int64_t i = (b * T + t) * C + c;
                assert_true(back->data[i] == (named ? x->data[i] : 0.0f));
            }
        }
    ssl_ctx_free(ctx);
}

static void test_rows_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_3d(ctx, 2, 7, 3);
    int32_t idx[6] = {0, 1, 2, 3, 4, 7};
    tu_assert_error(ssl_gather_rows(ctx, x, idx, 3), SSL_ERR_INVALID, "gather_rows", "(2, 7, 3)",
                    "index 7 at batch 1, position 2", "[0, 7)", NULL);
    idx[5] = 2;
    idx[1] = -3;
    tu_assert_error(ssl_gather_rows(ctx, x, idx, 3), SSL_ERR_INVALID,
                    "index -3 at batch 0, position 1", NULL);
    tu_assert_error(ssl_gather_rows(ctx, x, NULL, 3), SSL_ERR_INVALID, "NULL", NULL);
    tu_assert_error(ssl_gather_rows(ctx, x, idx, -1), SSL_ERR_INVALID, "-1", NULL);
    ssl_tensor_t *x4 = ssl_tensor_4d(ctx, 1, 2, 7, 3);
    tu_assert_error(ssl_gather_rows(ctx, x4, idx, 3), SSL_ERR_SHAPE, "(1, 2, 7, 3)", NULL);
    ssl_tensor_t *src = ssl_tensor_3d(ctx, 2, 3, 4);
    int32_t sidx[6] = {0, 1, 2, 3, 4, 5};
    tu_assert_error(ssl_scatter_rows(ctx, src, sidx, 5), SSL_ERR_INVALID, "scatter_rows",
                    "(2, 3, 4)", "index 5 at batch 1, position 2", "[0, 5)", NULL);
    tu_assert_error(ssl_scatter_rows(ctx, src, sidx, -2), SSL_ERR_INVALID, "-2", NULL);
    tu_assert_error(ssl_scatter_rows(ctx, src, NULL, 8), SSL_ERR_INVALID, "NULL", NULL);
    tu_assert_error(ssl_scatter_rows(ctx, ssl_tensor_1d(ctx, 4), sidx, 8), SSL_ERR_SHAPE, "(4)",
                    NULL);
    set_sentinel();
    assert_sentinel(ssl_gather_rows(ctx, NULL, idx, 3));
    assert_sentinel(ssl_scatter_rows(ctx, NULL, sidx, 8));
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- embedding */

typedef struct emb_case {
    const int32_t *ids;
    int ndim;
    int64_t shape[4];
} emb_case_t;

static ssl_tensor_t *build_embedding(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    emb_case_t *c = user;
    return ssl_embedding(ctx, in[0], c->ids, c->ndim, c->shape);
}

static void test_embedding(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int32_t ids[6] = {3, 0, 3, 9, 3, 0};
    emb_case_t cases[] = {{ids, 2, {2, 3}}, {ids, 1, {6}}, {ids + 3, 0, {0}}, {ids, 3, {3, 1, 2}}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        emb_case_t *c = &cases[i];
        ssl_tensor_t *w = tu_rand(ctx, 2, (int64_t[]){10, 5}, 100 + i, -1, 1, 1);
        ssl_tensor_t *y = build_embedding(ctx, &w, c);
        assert_non_null(y);
        assert_int_equal(y->ndim, c->ndim + 1);
        for (int d = 0; d < c->ndim; d++)
            assert_int_equal(y->shape[d], c->shape[d]);
        assert_int_equal(y->shape[c->ndim], 5);
        int64_t n = numel_of(c->ndim, c->shape);
        float ref[64];
        ref_gather(w->data, c->ids, 1, 10, n, 5, ref);
        assert_memory_equal(y->data, ref, (size_t)(n * 5) * sizeof(float));
        assert_int_equal(tu_gradcheck(ctx, build_embedding, c, &w, 1, &tight), 0);
        ssl_ctx_reset(ctx);
    }
    /* Large vocabulary and many repeated ids: bit-identical to the in-order reference. */
    int64_t V = 40, C = 384, N = 2 * 197;
    int32_t *big = malloc((size_t)N * sizeof *big);
    rand_indices(big, N, (int32_t)V, 31);
    ssl_tensor_t *w = tu_rand(ctx, 2, (int64_t[]){V, C}, 110, -1, 1, 1);
    ssl_tensor_t *y = ssl_embedding(ctx, w, big, 2, (int64_t[]){2, 197});
    assert_int_equal(y->ndim, 3);
    float *g = malloc((size_t)(N * C) * sizeof(float)), *ref = malloc((size_t)(V * C) * 4);
    ssl_rng_fill_uniform(g, (size_t)(N * C), -1, 1, 4, 4, 0);
    ref_scatter(g, big, 1, V, N, C, ref);
    assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
    assert_memory_equal(w->grad, ref, (size_t)(V * C) * sizeof(float));
    free(big);
    free(g);
    free(ref);
    ssl_ctx_free(ctx);
}

static void test_embedding_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *w = ssl_tensor_2d(ctx, 10, 4);
    int32_t ids[4] = {0, 9, 10, 2};
    tu_assert_error(ssl_embedding(ctx, w, ids, 1, (int64_t[]){4}), SSL_ERR_INVALID, "embedding",
                    "(10, 4)", "id 10 at position 2", "[0, 10)", NULL);
    ids[2] = -1;
    tu_assert_error(ssl_embedding(ctx, w, ids, 2, (int64_t[]){2, 2}), SSL_ERR_INVALID, "id -1",
                    NULL);
    ids[2] = 1;
    tu_assert_error(ssl_embedding(ctx, w, NULL, 1, (int64_t[]){4}), SSL_ERR_INVALID, "NULL", NULL);
    tu_assert_error(ssl_embedding(ctx, w, ids, 1, NULL), SSL_ERR_INVALID, "NULL", NULL);
    tu_assert_error(ssl_embedding(ctx, w, ids, 5, (int64_t[]){1, 1, 1, 1, 4}), SSL_ERR_INVALID,
                    "rank 5", NULL);
    tu_assert_error(ssl_embedding(ctx, w, ids, 1, (int64_t[]){-4}), SSL_ERR_INVALID, "negative",
                    NULL);
    ssl_tensor_t *w3 = ssl_tensor_3d(ctx, 2, 10, 4);
    tu_assert_error(ssl_embedding(ctx, w3, ids, 1, (int64_t[]){4}), SSL_ERR_SHAPE, "(2, 10, 4)",
                    NULL);
    set_sentinel();
    assert_sentinel(ssl_embedding(ctx, NULL, ids, 1, (int64_t[]){4}));
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- upsample_nearest2d */

static ssl_tensor_t *build_up(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    return ssl_upsample_nearest2d(ctx, in[0], *(const int *)user);
}

/* Nearest upsampling against the definition y[i][j] = x[i / s][j / s], its gradient (the sum of
 * each block), and its errors. */
static void test_upsample_nearest(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    static const int64_t shapes[][4] = {{2, 3, 4, 5}, {1, 1, 1, 1}, {1, 2, 7, 7}};
    for (int k = 0; k < 3; k++)
        for (int s = 1; s <= 3; s++) {
            const int64_t *sh = shapes[k];
            ssl_tensor_t *x = tu_rand(ctx, 4, sh, 40 + k, -1, 1, 0);
            ssl_tensor_t *y = ssl_upsample_nearest2d(ctx, x, s);
            assert_non_null(y);
            int64_t H = sh[2], W = sh[3];
            assert_int_equal(y->shape[2], H * s);
            assert_int_equal(y->shape[3], W * s);
            for (int64_t p = 0; p < sh[0] * sh[1]; p++)
                for (int64_t i = 0; i < H * s; i++)
                    for (int64_t j = 0; j < W * s; j++)
                        if (y->data[(p * H * s + i) * W * s + j] !=
                            x->data[(p * H + i / s) * W + j / s])
                            fail_msg("upsample %d of shape %d: y[%lld][%lld][%lld]", s, k,
                                     (long long)p, (long long)i, (long long)j);
            ssl_ctx_reset(ctx);
        }
    int s = 2;
    ssl_tensor_t *in = tu_rand(ctx, 4, (int64_t[]){1, 2, 3, 2}, 49, -1, 1, 1);
    assert_int_equal(tu_gradcheck(ctx, build_up, &s, &in, 1, NULL), 0);
    tu_assert_error(ssl_upsample_nearest2d(ctx, ssl_tensor_2d(ctx, 2, 3), 2), SSL_ERR_SHAPE,
                    "upsample_nearest2d", "(2, 3)", NULL);
    tu_assert_error(ssl_upsample_nearest2d(ctx, in, 0), SSL_ERR_SHAPE, "scale 0", NULL);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reshape),
        cmocka_unit_test(test_reshape_errors),
        cmocka_unit_test(test_permute_forward),
        cmocka_unit_test(test_permute_backward),
        cmocka_unit_test(test_transpose_forward),
        cmocka_unit_test(test_permute_errors),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_concat_errors),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_slice_errors),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_gather_rows),
        cmocka_unit_test(test_gather_rows_large),
        cmocka_unit_test(test_scatter_rows),
        cmocka_unit_test(test_gather_scatter_roundtrip),
        cmocka_unit_test(test_rows_errors),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_embedding_errors),
        cmocka_unit_test(test_upsample_nearest),
    };
    return cmocka_run_group_tests_name("ops_shape", tests, NULL, NULL);
}
