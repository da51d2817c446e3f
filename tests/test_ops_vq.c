/* Vector quantisation: ssl_vq_nearest against a double-precision search over every code (one
 * GEMM block and several, ties to the lowest index), the straight-through lookup's forward,
 * its gradient (the output's gradient to z unchanged, none to the codebook; a central
 * difference through it is 0: the identity is the estimator, not the derivative), central-
 * difference gradients of the differentiable VQ-VAE terms around it, and errors. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

/* argmin_k sum_d (z_id - e_kd)^2 in double, the lowest k on ties */
static void ref_nearest(const float *z, const float *e, int64_t N, int64_t K, int64_t D,
                        int32_t *codes)
{
    for (int64_t i = 0; i < N; i++) {
        double best = 0;
        for (int64_t k = 0; k < K; k++) {
            double s = 0;
            for (int64_t d = 0; d < D; d++) {
                double t = (double)z[i * D + d] - e[k * D + d];
                s += t * t;
            }
            if (k == 0 || s < best) {
                best = s;
                codes[i] = (int32_t)k;
            }
        }
    }
}

static void test_nearest(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    static const int64_t cases[][3] = {{37, 11, 5}, {600, 64, 8}, {1, 1, 3}, {300, 7, 1}};
    for (int c = 0; c < 4; c++) {
        int64_t N = cases[c][0], K = cases[c][1], D = cases[c][2];
        ssl_tensor_t *z = tu_rand(ctx, 2, (int64_t[]){N, D}, 1 + c, -1, 1, 0);
        ssl_tensor_t *e = tu_rand(ctx, 2, (int64_t[]){K, D}, 11 + c, -1, 1, 0);
        int32_t *got = malloc((size_t)N * sizeof *got), *want = malloc((size_t)N * sizeof *want);
        assert_int_equal(ssl_vq_nearest(ctx, z, e, got), SSL_OK);
        ref_nearest(z->data, e->data, N, K, D, want);
        for (int64_t i = 0; i < N; i++)
            if (got[i] != want[i])
                fail_msg("case %d row %lld: code %d, the search over all codes %d", c,
                         (long long)i, got[i], want[i]);
        free(got);
        free(want);
        ssl_ctx_reset(ctx);
    }
    /* ties: rows 1 and 3 of the codebook repeat row 0's and row 2's; z on them */
    ssl_tensor_t *e = tu_rand(ctx, 2, (int64_t[]){4, 3}, 5, -1, 1, 0);
    memcpy(e->data + 3, e->data, 3 * sizeof(float));
    memcpy(e->data + 9, e->data + 6, 3 * sizeof(float));
    ssl_tensor_t *z = ssl_tensor_new(ctx, 2, (int64_t[]){2, 3});
    memcpy(z->data, e->data + 9, 3 * sizeof(float));
    memcpy(z->data + 3, e->data + 3, 3 * sizeof(float));
    int32_t codes[2];
    assert_int_equal(ssl_vq_nearest(ctx, z, e, codes), SSL_OK);
    assert_int_equal(codes[0], 2);
    assert_int_equal(codes[1], 0);
    ssl_ctx_free(ctx);
}

typedef struct st_case {
    int32_t codes[64];
} st_case_t;

static ssl_tensor_t *build_st(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    return ssl_vq_straight_through(ctx, in[0], in[1], ((st_case_t *)user)->codes);
}

static void test_straight_through(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    enum { N = 9, K = 6, D = 4 };
    ssl_tensor_t *z = tu_rand(ctx, 2, (int64_t[]){N, D}, 3, -1, 1, 1);
    ssl_tensor_t *e = tu_rand(ctx, 2, (int64_t[]){K, D}, 4, -1, 1, 1);
    st_case_t c;
    assert_int_equal(ssl_vq_nearest(ctx, z, e, c.codes), SSL_OK);
    ssl_tensor_t *q = build_st(ctx, (ssl_tensor_t *[]){z, e}, &c);
    assert_non_null(q);
    for (int64_t i = 0; i < N; i++)
        assert_memory_equal(q->data + i * D, e->data + c.codes[i] * D, D * sizeof(float));
    /* backward: dz = the upstream gradient exactly, dE untouched */
    ssl_tensor_t *r = tu_rand(ctx, 2, (int64_t[]){N, D}, 5, -1, 1, 0);
    assert_int_equal(ssl_backward_with(ctx, q, r->data), SSL_OK);
    assert_memory_equal(z->grad, r->data, N * D * sizeof(float));
    for (int64_t i = 0; e->grad && i < K * D; i++)
        assert_true(e->grad[i] == 0.0f);
    /* the true derivative through the lookup is 0 almost everywhere: central differences of
     * sum(r q) in z see nothing, where the estimator passes r */
    ssl_ctx_set_grad(ctx, 0);
    for (int64_t j = 0; j < N * D; j += 5) {
        float keep = z->data[j];
        double f[2];
        for (int s = 0; s < 2; s++) {
            z->data[j] = keep + (s ? 1e-3f : -1e-3f);
            int32_t cc[N];
            assert_int_equal(ssl_vq_nearest(ctx, z, e, cc), SSL_OK);
            ssl_tensor_t *qq = ssl_vq_straight_through(ctx, z, e, cc);
            f[s] = 0;
            for (int64_t i = 0; i < N * D; i++)
                f[s] += (double)qq->data[i] * r->data[i];
        }
        z->data[j] = keep;
        assert_true(f[0] == f[1]);
    }
    ssl_ctx_set_grad(ctx, 1);
    ssl_ctx_reset(ctx);
    z = tu_rand(ctx, 2, (int64_t[]){N, D}, 3, -1, 1, 1);
    e = tu_rand(ctx, 2, (int64_t[]){K, D}, 4, -1, 1, 0);
    tu_check_grad_adds(ctx, build_st, &c, (ssl_tensor_t *[]){z, e}, 2, 7);
    ssl_ctx_free(ctx);
}

/* The differentiable path around the quantiser: ||E[nearest(z, E)] - z||^2 (mean), codes chosen
 * anew at every evaluation, so central differences see both z and the chosen codebook rows
 * (ssl_loss_vqvae's codebook and commitment terms are this with one side stopped; their
 * gradients are checked against PyTorch in test_losses_golden). */
static ssl_tensor_t *build_terms(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    (void)user;
    int64_t N = in[0]->shape[0];
    int32_t *codes = ssl_arena_alloc(ctx, (size_t)N * sizeof *codes);
    if (ssl_vq_nearest(ctx, in[0], in[1], codes) != SSL_OK)
        return NULL;
    return ssl_mse(ctx, ssl_embedding(ctx, in[1], codes, 1, &N), in[0]);
}

static void test_gradients(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *in[2] = {tu_rand(ctx, 2, (int64_t[]){12, 3}, 8, -1, 1, 1),
                           tu_rand(ctx, 2, (int64_t[]){5, 3}, 9, -1, 1, 1)};
    assert_int_equal(tu_gradcheck(ctx, build_terms, NULL, in, 2, NULL), 0);
    ssl_ctx_free(ctx);
}

static void test_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *z = tu_rand(ctx, 2, (int64_t[]){4, 3}, 1, -1, 1, 0);
    ssl_tensor_t *e = tu_rand(ctx, 2, (int64_t[]){5, 2}, 2, -1, 1, 0);
    int32_t codes[4] = {0, 1, 2, 5};
    assert_int_equal(ssl_vq_nearest(ctx, z, e, codes), SSL_ERR_SHAPE);
    assert_non_null(strstr(ssl_last_error(), "codebook (5, 2)"));
    tu_assert_error(ssl_vq_straight_through(ctx, z, e, codes), SSL_ERR_SHAPE,
                    "vq_straight_through", "(4, 3)", "(5, 2)", NULL);
    e = tu_rand(ctx, 2, (int64_t[]){5, 3}, 2, -1, 1, 0);
    tu_assert_error(ssl_vq_straight_through(ctx, z, e, codes), SSL_ERR_INVALID, "code 5",
                    "row 3", NULL);
    tu_assert_error(ssl_vq_straight_through(ctx, z, e, NULL), SSL_ERR_INVALID, "codes", NULL);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nearest),
        cmocka_unit_test(test_straight_through),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests_name("ops_vq", tests, NULL, NULL);
}
