/* Normalisation and dropout: layer_norm, batch_norm (training/eval, running statistics) and
 * dropout, against plain double-precision references and central differences. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- plain references */

/* x (rows, C) -> y; optional w, b (C). */
static void ref_layer_norm(const float *x, const float *w, const float *b, int64_t rows, int64_t C,
                           double eps, float *y)
{
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        double m = 0, v = 0;
        for (int64_t j = 0; j < C; j++)
            m += xr[j];
        m /= (double)C;
        for (int64_t j = 0; j < C; j++)
            v += (xr[j] - m) * (xr[j] - m);
        v /= (double)C;
        double rs = 1.0 / sqrt(v + eps);
        for (int64_t j = 0; j < C; j++) {
            double o = (xr[j] - m) * rs;
            if (w)
                o *= w[j];
            if (b)
                o += b[j];
            y[r * C + j] = (float)o;
        }
    }
}

/* PyTorch's layer_norm backward; dx, dw, db are overwritten (dw, db may be NULL). */
static void ref_layer_norm_backward(const float *x, const float *w, const float *dy, int64_t rows,
                                    int64_t C, double eps, float *dx, float *dw, float *db)
{
    double *xh = malloc((size_t)C * sizeof(double)), *g = malloc((size_t)C * sizeof(double));
    double *sw = calloc((size_t)C, sizeof(double)), *sb = calloc((size_t)C, sizeof(double));
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C, *dyr = dy + r * C;
        double m = 0, v = 0;
        for (int64_t j = 0; j < C; j++)
            m += xr[j];
        m /= (double)C;
        for (int64_t j = 0; j < C; j++)
            v += (xr[j] - m) * (xr[j] - m);
        v /= (double)C;
        double rs = 1.0 / sqrt(v + eps), mg = 0, mgx = 0;
        for (int64_t j = 0; j < C; j++) {
            xh[j] = (xr[j] - m) * rs;
            g[j] = dyr[j] * (w ? w[j] : 1.0);
            mg += g[j];
            mgx += g[j] * xh[j];
            sw[j] += dyr[j] * xh[j];
            sb[j] += dyr[j];
        }
        mg /= (double)C;
        mgx /= (double)C;
        for (int64_t j = 0; j < C; j++)
            dx[r * C + j] = (float)(rs * (g[j] - mg - xh[j] * mgx));
    }
    for (int64_t j = 0; j < C; j++) {
        if (dw)
            dw[j] = (float)sw[j];
        if (db)
            db[j] = (float)sb[j];
    }
    free(xh);
    free(g);
    free(sw);
    free(sb);
}

/* Per-channel batch mean and biased variance of x (N, C, S). */
static void ref_bn_stats(const float *x, int64_t N, int64_t C, int64_t S, double *mean, double *var)
{
    for (int64_t c = 0; c < C; c++) {
        double m = 0, v = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++)
                m += x[(n * C + c) * S + s];
        m /= (double)(N * S);
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++) {
                double d = x[(n * C + c) * S + s] - m;
                v += d * d;
            }
        mean[c] = m;
        var[c] = v / (double)(N * S);
    }
}

/* y = (x - mean) / sqrt(var + eps) * w + b with the given per-channel statistics. */
static void ref_bn_apply(const float *x, const float *w, const float *b, const double *mean,
                         const double *var, int64_t N, int64_t C, int64_t S, double eps, float *y)
{
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t s = 0; s < S; s++) {
                int64_t i = (n * C + c) * S + s;
                double o = (x[i] - mean[c]) / sqrt(var[c] + eps);
                y[i] = (float)(o * (w ? w[c] : 1.0) + (b ? b[c] : 0.0));
            }
}

/* Backward; training uses the batch statistics, eval the given mean/var. Overwrites outputs. */
static void ref_bn_backward(const float *x, const float *w, const float *dy, const double *mean,
                            const double *var, int training, int64_t N, int64_t C, int64_t S,
                            double eps, float *dx, float *dw, float *db)
{
    double M = (double)(N * S);
    for (int64_t c = 0; c < C; c++) {
        double rs = 1.0 / sqrt(var[c] + eps), sg = 0, sgx = 0, wc = w ? w[c] : 1.0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++) {
                int64_t i = (n * C + c) * S + s;
                sg += dy[i];
                sgx += dy[i] * (x[i] - mean[c]) * rs;
            }
        if (dw)
            dw[c] = (float)sgx;
        if (db)
            db[c] = (float)sg;
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++) {
                int64_t i = (n * C + c) * S + s;
                double xh = (x[i] - mean[c]) * rs;
                dx[i] =
                    (float)(training ? wc * rs * (dy[i] - sg / M - xh * sgx / M) : wc * rs * dy[i]);
            }
    }
}

static int64_t prod(int ndim, const int64_t *shape)
{
    int64_t p = 1;
    for (int i = 0; i < ndim; i++)
        p *= shape[i];
    return p;
}

/* ---------------------------------------------------------------- layer_norm */

static ssl_tensor_t *build_ln(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    return ssl_layer_norm(ctx, in[0], in[1], in[2], *(float *)user);
}

static void test_layer_norm_forward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const int64_t shapes[][3] = {{4, 0, 0}, {3, 5, 0}, {2, 3, 7}, {2, 1, 33}, {5, 1, 0}};
    const int ndims[] = {1, 2, 3, 3, 2};
    for (int si = 0; si < 5; si++)
        for (int aff = 0; aff < 4; aff++) { /* bit 0: weight, bit 1: bias */
            int nd = ndims[si];
            int64_t C = shapes[si][nd - 1], rows = prod(nd, shapes[si]) / C;
            ssl_tensor_t *x = tu_rand(ctx, nd, shapes[si], 100 + si, -2, 3, 0);
            ssl_tensor_t *w = (aff & 1) ? tu_rand(ctx, 1, &C, 200 + si, -1.5f, 1.5f, 0) : NULL;
            ssl_tensor_t *b = (aff & 2) ? tu_rand(ctx, 1, &C, 300 + si, -1, 1, 0) : NULL;
            ssl_tensor_t *y = ssl_layer_norm(ctx, x, w, b, 1e-5f);
            assert_non_null(y);
            assert_true(ssl_same_shape(x, y));
            float *ref = malloc((size_t)x->numel * sizeof(float));
            ref_layer_norm(x->data, w ? w->data : NULL, b ? b->data : NULL, rows, C, 1e-5, ref);
            tu_assert_close(y->data, ref, x->numel, 1e-5, 1e-5);
            free(ref);
            ssl_ctx_reset(ctx);
        }
    /* C == 1: every row normalises to 0, the output is the bias */
    int64_t s1[2] = {3, 1}, one = 1;
    ssl_tensor_t *x = tu_rand(ctx, 2, s1, 7, -1, 1, 0);
    ssl_tensor_t *b = ssl_tensor_fill(ctx, 1, &one, 0.25f);
    ssl_tensor_t *y = ssl_layer_norm(ctx, x, NULL, b, 1e-5f);
    for (int i = 0; i < 3; i++)
        assert_float_equal(y->data[i], 0.25f, 1e-6);
    ssl_ctx_free(ctx);
}

static void test_layer_norm_backward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const int64_t shapes[][3] = {{3, 5, 0}, {2, 3, 4}, {1, 2, 9}};
    const int ndims[] = {2, 3, 3};
    float eps = 1e-5f;
    for (int si = 0; si < 3; si++)
        for (int aff = 0; aff < 4; aff++) {
            int nd = ndims[si];
            int64_t C = shapes[si][nd - 1];
            ssl_tensor_t *in[3] = {
                tu_rand(ctx, nd, shapes[si], 10 + si, -2, 2, 1),
                (aff & 1) ? tu_rand_away0(ctx, 1, &C, 20 + si, -1.5f, 1.5f, 0.2f, 1) : NULL,
                (aff & 2) ? tu_rand(ctx, 1, &C, 30 + si, -1, 1, 1) : NULL};
            assert_int_equal(tu_gradcheck(ctx, build_ln, &eps, in, 3, NULL), 0);
            ssl_ctx_reset(ctx);
        }
    /* Gradient only to the affine parameters (x is a constant). */
    int64_t xs[2] = {4, 6}, C = 6;
    ssl_tensor_t *in[3] = {tu_rand(ctx, 2, xs, 1, -2, 2, 0), tu_rand(ctx, 1, &C, 2, -1, 1, 1),
                           tu_rand(ctx, 1, &C, 3, -1, 1, 1)};
    assert_int_equal(tu_gradcheck(ctx, build_ln, &eps, in, 3, NULL), 0);
    assert_null(in[0]->grad);
    ssl_ctx_free(ctx);
}

/* Large enough for the parallel paths and several row blocks: against the references, and
 * bit-identical with 1 and 2 threads. */
static void test_layer_norm_large(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(16 << 20);
    int64_t xs[3] = {5, 301, 97}, C = 97, rows = 5 * 301, numel = rows * C;
    float *res[2][4];
    for (int th = 0; th < 2; th++) {
        ssl_set_num_threads(th + 1);
        ssl_tensor_t *x = tu_rand(ctx, 3, xs, 41, -3, 1, 1);
        ssl_tensor_t *w = tu_rand(ctx, 1, &C, 42, -1, 1, 1);
        ssl_tensor_t *b = tu_rand(ctx, 1, &C, 43, -1, 1, 1);
        ssl_tensor_t *y = ssl_layer_norm(ctx, x, w, b, 1e-6f);
        assert_non_null(y);
        float *dy = malloc((size_t)numel * sizeof(float));
        ssl_rng_fill_uniform(dy, (size_t)numel, -1, 1, 44, 0, 0);
        assert_int_equal(ssl_backward_with(ctx, y, dy), SSL_OK);
        float *ry = malloc((size_t)numel * sizeof(float)), *rdx = malloc((size_t)numel * 4);
        float rdw[97], rdb[97];
        ref_layer_norm(x->data, w->data, b->data, rows, C, 1e-6, ry);
        ref_layer_norm_backward(x->data, w->data, dy, rows, C, 1e-6, rdx, rdw, rdb);
        tu_assert_close(y->data, ry, numel, 1e-5, 1e-5);
        tu_assert_close(x->grad, rdx, numel, 1e-4, 1e-4);
        tu_assert_close(w->grad, rdw, C, 1e-3, 1e-4);
        tu_assert_close(b->grad, rdb, C, 1e-3, 1e-4);
        const float *src[4] = {y->data, x->grad, w->grad, b->grad};
        const int64_t len[4] = {numel, numel, C, C};
        for (int k = 0; k < 4; k++) {
            res[th][k] = malloc((size_t)len[k] * sizeof(float));
            memcpy(res[th][k], src[k], (size_t)len[k] * sizeof(float));
        }
        free(dy);
        free(ry);
        free(rdx);
        ssl_ctx_reset(ctx);
    }
    ssl_set_num_threads(0);
    const int64_t len[4] = {numel, numel, C, C};
    for (int k = 0; k < 4; k++) {
        assert_memory_equal(res[0][k], res[1][k], (size_t)len[k] * sizeof(float));
        free(res[0][k]);
        free(res[1][k]);
    }
    ssl_ctx_free(ctx);
}

static void test_layer_norm_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_2d(ctx, 2, 3), *w4 = ssl_tensor_1d(ctx, 4);
    ssl_tensor_t *w3 = ssl_tensor_1d(ctx, 3), *w23 = ssl_tensor_2d(ctx, 2, 3);
    tu_assert_error(ssl_layer_norm(ctx, x, w4, NULL, 1e-5f), SSL_ERR_SHAPE, "layer_norm", "(2, 3)",
                    "(4)", NULL);
    tu_assert_error(ssl_layer_norm(ctx, x, w3, w4, 1e-5f), SSL_ERR_SHAPE, "(2, 3)", "(3)", "(4)",
                    NULL);
    tu_assert_error(ssl_layer_norm(ctx, x, NULL, w23, 1e-5f), SSL_ERR_SHAPE, "(2, 3)", NULL);
    ssl_tensor_t *s = ssl_tensor_new(ctx, 0, NULL);
    tu_assert_error(ssl_layer_norm(ctx, s, NULL, NULL, 1e-5f), SSL_ERR_SHAPE, "()", NULL);
    tu_assert_error(ssl_layer_norm(ctx, x, w3, w3, -1e-5f), SSL_ERR_INVALID, "eps", NULL);
    tu_assert_error(ssl_layer_norm(ctx, x, w3, w3, NAN), SSL_ERR_INVALID, "eps", NULL);
    /* A NULL input keeps the earlier error. */
    ssl_set_error(SSL_ERR_IO, "earlier failure");
    assert_null(ssl_layer_norm(ctx, NULL, w3, w3, 1e-5f));
    tu_assert_error(NULL, SSL_ERR_IO, "earlier failure", NULL);
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- instance_norm_tokens */

/* x (B, T, C): each (b, c) over its T tokens, in double, as F.instance_norm(x.transpose(1, 2)). */
static void ref_instance_norm_tokens(const float *x, int64_t B, int64_t T, int64_t C, double eps,
                                     float *y)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++) {
            const float *xb = x + b * T * C + c;
            double m = 0, v = 0;
            for (int64_t t = 0; t < T; t++)
                m += xb[t * C];
            m /= (double)T;
            for (int64_t t = 0; t < T; t++)
                v += (xb[t * C] - m) * (xb[t * C] - m);
            v /= (double)T;
            for (int64_t t = 0; t < T; t++)
                y[b * T * C + t * C + c] = (float)((xb[t * C] - m) / sqrt(v + eps));
        }
}

static ssl_tensor_t *build_in_tokens(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    (void)user;
    return ssl_instance_norm_tokens(ctx, in[0], 1e-5f);
}

static void test_instance_norm_tokens(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const int64_t shapes[][3] = {{2, 5, 3}, {1, 7, 1}, {3, 2, 9}, {2, 49, 16}};
    for (int si = 0; si < 4; si++) {
        const int64_t *sh = shapes[si];
        ssl_tensor_t *x = tu_rand(ctx, 3, sh, 50 + si, -2, 3, 0);
        ssl_tensor_t *y = ssl_instance_norm_tokens(ctx, x, 1e-5f);
        assert_non_null(y);
        assert_true(ssl_same_shape(x, y));
        float *ref = malloc((size_t)x->numel * sizeof(float));
        ref_instance_norm_tokens(x->data, sh[0], sh[1], sh[2], 1e-5, ref);
        tu_assert_close(y->data, ref, x->numel, 1e-5, 1e-5);
        free(ref);
        ssl_ctx_reset(ctx);
    }
    ssl_tensor_t *in = tu_rand(ctx, 3, (int64_t[]){2, 4, 3}, 60, -2, 2, 1);
    assert_int_equal(tu_gradcheck(ctx, build_in_tokens, NULL, &in, 1, NULL), 0);
    ssl_tensor_t *x2 = ssl_tensor_2d(ctx, 2, 3);
    tu_assert_error(ssl_instance_norm_tokens(ctx, x2, 1e-5f), SSL_ERR_SHAPE,
                    "instance_norm_tokens", "(2, 3)", NULL);
    ssl_set_error(SSL_ERR_IO, "earlier failure");
    assert_null(ssl_instance_norm_tokens(ctx, NULL, 1e-5f));
    tu_assert_error(NULL, SSL_ERR_IO, "earlier failure", NULL);
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- group_norm */

/* x (N, C, S): each (n, group of C/G channels) over its channels and positions, in double, then
 * the per-channel affine (w, b may be NULL), as F.group_norm. */
static void ref_group_norm(const float *x, int64_t N, int64_t C, int64_t S, int G,
                           const float *w, const float *b, double eps, float *y)
{
    int64_t cg = C / G, m = cg * S;
    for (int64_t n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            const float *xg = x + (n * C + g * cg) * S;
            double mean = 0, var = 0;
            for (int64_t i = 0; i < m; i++)
                mean += xg[i];
            mean /= (double)m;
            for (int64_t i = 0; i < m; i++)
                var += (xg[i] - mean) * (xg[i] - mean);
            var /= (double)m;
            for (int64_t i = 0; i < m; i++) {
                int64_t c = g * cg + i / S;
                double v = (xg[i] - mean) / sqrt(var + eps);
                y[(n * C + g * cg) * S + i] = (float)(v * (w ? w[c] : 1) + (b ? b[c] : 0));
            }
        }
}

static ssl_tensor_t *build_gn(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    return ssl_group_norm(ctx, in[0], *(const int *)user, in[1], in[2], 1e-5f);
}

static void test_group_norm(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    static const struct {
        int64_t shape[4];
        int ndim, groups, affine;
    } cases[] = {{{2, 6, 5, 3}, 4, 3, 1}, {{1, 4, 7, 7}, 4, 1, 1}, {{3, 8, 2, 2}, 4, 8, 0},
                 {{2, 6, 0, 0}, 2, 2, 1}, {{2, 32, 4, 4}, 4, 32, 1}};
    for (int k = 0; k < 5; k++) {
        const int64_t *sh = cases[k].shape;
        int64_t N = sh[0], C = sh[1], S = cases[k].ndim == 4 ? sh[2] * sh[3] : 1;
        ssl_tensor_t *x = tu_rand(ctx, cases[k].ndim, sh, 70 + k, -2, 3, 0);
        ssl_tensor_t *w = cases[k].affine ? tu_rand(ctx, 1, &C, 80 + k, 0.5f, 1.5f, 0) : NULL;
        ssl_tensor_t *b = cases[k].affine ? tu_rand(ctx, 1, &C, 90 + k, -1, 1, 0) : NULL;
        ssl_tensor_t *y = ssl_group_norm(ctx, x, cases[k].groups, w, b, 1e-5f);
        assert_non_null(y);
        assert_true(ssl_same_shape(x, y));
        float *ref = malloc((size_t)x->numel * sizeof(float));
        ref_group_norm(x->data, N, C, S, cases[k].groups, w ? w->data : NULL,
                       b ? b->data : NULL, 1e-5, ref);
        tu_assert_close(y->data, ref, x->numel, 1e-5, 1e-5);
        free(ref);
        ssl_ctx_reset(ctx);
    }
    int g = 2;
    ssl_tensor_t *in[3] = {tu_rand(ctx, 4, (int64_t[]){2, 4, 3, 2}, 61, -2, 2, 1),
                           tu_rand(ctx, 1, (int64_t[]){4}, 62, 0.5f, 1.5f, 1),
                           tu_rand(ctx, 1, (int64_t[]){4}, 63, -1, 1, 1)};
    assert_int_equal(tu_gradcheck(ctx, build_gn, &g, in, 3, NULL), 0);
    tu_assert_error(ssl_group_norm(ctx, in[0], 3, NULL, NULL, 1e-5f), SSL_ERR_SHAPE,
                    "group_norm", "(2, 4, 3, 2)", "groups 3", NULL);
    tu_assert_error(ssl_group_norm(ctx, in[0], 2, in[0], NULL, 1e-5f), SSL_ERR_SHAPE,
                    "group_norm", "(4)", NULL);
    ssl_set_error(SSL_ERR_IO, "earlier failure");
    assert_null(ssl_group_norm(ctx, NULL, 1, NULL, NULL, 1e-5f));
    tu_assert_error(NULL, SSL_ERR_IO, "earlier failure", NULL);
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- batch_norm */

typedef struct bn_case {
    int training;
    float eps;
} bn_case_t;

static ssl_tensor_t *build_bn(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    bn_case_t *c = user;
    /* in[3], in[4]: running statistics (NULL in training, so repeated forwards do not move
     * them; eval only reads them). */
    return ssl_batch_norm(ctx, in[0], in[1], in[2], in[3], in[4], c->training, 0.1f, c->eps);
}

/* Worked by hand: x (4, 2), eps = 0, momentum 0.1.
 * channel 0: 1 2 3 4 -> mean 2.5, biased var 1.25, unbiased 5/3
 * channel 1: 0 0 2 2 -> mean 1,   biased var 1,    unbiased 4/3 */
static void test_batch_norm_hand(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const float xv[8] = {1, 0, 2, 0, 3, 2, 4, 2};
    ssl_tensor_t *x = ssl_tensor_from(ctx, 2, (int64_t[]){4, 2}, xv);
    ssl_tensor_t *w = ssl_tensor_from(ctx, 1, (int64_t[]){2}, (float[]){2, 3});
    ssl_tensor_t *b = ssl_tensor_from(ctx, 1, (int64_t[]){2}, (float[]){0.5f, -1});
    ssl_tensor_t *rm = ssl_tensor_from(ctx, 1, (int64_t[]){2}, (float[]){0, 1});
    ssl_tensor_t *rv = ssl_tensor_from(ctx, 1, (int64_t[]){2}, (float[]){1, 1});
    ssl_tensor_t *y = ssl_batch_norm(ctx, x, w, b, rm, rv, 1, 0.1f, 0.0f);
    assert_non_null(y);
    /* channel 0: 2 (x - 2.5) / sqrt(1.25) + 0.5; (x - 2.5) / sqrt(1.25) = -+1.3416408,
     * -+0.4472136. channel 1: 3 (x - 1) - 1 */
    const float expect[8] = {2 * -1.3416408f + 0.5f, -4, 2 * -0.4472136f + 0.5f, -4,
                             2 * 0.4472136f + 0.5f,  2,  2 * 1.3416408f + 0.5f,  2};
    tu_assert_close(y->data, expect, 8, 1e-5, 1e-6);
    /* running_mean = 0.9 [0, 1] + 0.1 [2.5, 1]; running_var = 0.9 [1, 1] + 0.1 [5/3, 4/3] */
    const float erm[2] = {0.25f, 1.0f}, erv[2] = {1.0666667f, 1.0333333f};
    tu_assert_close(rm->data, erm, 2, 1e-6, 1e-6);
    tu_assert_close(rv->data, erv, 2, 1e-6, 1e-6);
    /* Eval with those statistics: (x - rm) / sqrt(rv) * w + b, and no update. */
    ssl_tensor_t *ye = ssl_batch_norm(ctx, x, w, b, rm, rv, 0, 0.1f, 0.0f);
    assert_non_null(ye);
    float ee[8];
    for (int i = 0; i < 8; i++) {
        int c = i % 2;
        ee[i] = (float)((xv[i] - erm[c]) / sqrt(erv[c]) * w->data[c] + b->data[c]);
    }
    tu_assert_close(ye->data, ee, 8, 1e-5, 1e-6);
    assert_float_equal(ye->data[0], (1 - 0.25) / sqrt(1.0666667) * 2 + 0.5, 1e-5);
    tu_assert_close(rm->data, erm, 2, 0, 0);
    tu_assert_close(rv->data, erv, 2, 0, 0);
    /* Backward in training with dy = 1 everywhere: dx = 0 (the mean is subtracted), dw = sum
     * xhat = 0, db = N = 4. */
    ssl_tensor_set_requires_grad(x, 1);
    ssl_tensor_set_requires_grad(w, 1);
    ssl_tensor_set_requires_grad(b, 1);
    ssl_tensor_t *yt = ssl_batch_norm(ctx, x, w, b, NULL, NULL, 1, 0.1f, 0.0f);
    const float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1}, zeros[8] = {0};
    assert_int_equal(ssl_backward_with(ctx, yt, ones), SSL_OK);
    tu_assert_close(x->grad, zeros, 8, 1e-6, 0);
    tu_assert_close(w->grad, zeros, 2, 1e-6, 0);
    const float four[2] = {4, 4};
    tu_assert_close(b->grad, four, 2, 0, 0);
    ssl_ctx_free(ctx);
}

typedef struct bn_shape {
    int ndim;
    int64_t shape[4];
} bn_shape_t;

static void bn_nsc(const bn_shape_t *s, int64_t *N, int64_t *C, int64_t *S)
{
    *N = s->shape[0];
    *C = s->shape[1];
    *S = 1;
    for (int i = 2; i < s->ndim; i++)
        *S *= s->shape[i];
}

static void test_batch_norm_forward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const bn_shape_t shapes[] = {
        {2, {5, 3}}, {2, {7, 70}}, {3, {4, 3, 7}}, {4, {2, 3, 4, 5}}, {4, {3, 1, 1, 1}}};
    const float momentum = 0.3f, eps = 1e-4f;
    for (int si = 0; si < 5; si++)
        for (int training = 0; training < 2; training++)
            for (int aff = 0; aff < 4; aff++) {
                int64_t N, C, S;
                bn_nsc(&shapes[si], &N, &C, &S);
                ssl_tensor_t *x =
                    tu_rand(ctx, shapes[si].ndim, shapes[si].shape, 50 + si, -1, 3, 0);
                ssl_tensor_t *w = (aff & 1) ? tu_rand(ctx, 1, &C, 60 + si, -2, 2, 0) : NULL;
                ssl_tensor_t *b = (aff & 2) ? tu_rand(ctx, 1, &C, 70 + si, -1, 1, 0) : NULL;
                ssl_tensor_t *rm = tu_rand(ctx, 1, &C, 80 + si, -1, 1, 0);
                ssl_tensor_t *rv = tu_rand(ctx, 1, &C, 90 + si, 0.5f, 2, 0);
                double *mean = malloc((size_t)C * sizeof(double));
                double *var = malloc((size_t)C * sizeof(double));
                float *erm = malloc((size_t)C * sizeof(float));
                float *erv = malloc((size_t)C * sizeof(float));
                float *ref = malloc((size_t)x->numel * sizeof(float));
                if (training) {
                    ref_bn_stats(x->data, N, C, S, mean, var);
                    double M = (double)(N * S);
                    for (int64_t c = 0; c < C; c++) { /* PyTorch's update rule */
                        erm[c] = (float)((1 - momentum) * rm->data[c] + momentum * mean[c]);
                        erv[c] =
                            (float)((1 - momentum) * rv->data[c] + momentum * var[c] * M / (M - 1));
                    }
                } else {
                    for (int64_t c = 0; c < C; c++) {
                        mean[c] = erm[c] = rm->data[c];
                        var[c] = erv[c] = rv->data[c];
                    }
                }
                ref_bn_apply(x->data, w ? w->data : NULL, b ? b->data : NULL, mean, var, N, C, S,
                             eps, ref);
                ssl_tensor_t *y = ssl_batch_norm(ctx, x, w, b, rm, rv, training, momentum, eps);
                assert_non_null(y);
                assert_true(ssl_same_shape(x, y));
                tu_assert_close(y->data, ref, x->numel, 1e-5, 1e-5);
                tu_assert_close(rm->data, erm, C, 1e-6, 1e-6);
                tu_assert_close(rv->data, erv, C, 1e-6, 1e-6);
                /* training without running statistics: same output */
                if (training) {
                    ssl_tensor_t *y2 = ssl_batch_norm(ctx, x, w, b, NULL, NULL, 1, momentum, eps);
                    assert_non_null(y2);
                    assert_memory_equal(y2->data, y->data, (size_t)x->numel * sizeof(float));
                }
                free(mean);
                free(var);
                free(erm);
                free(erv);
                free(ref);
                ssl_ctx_reset(ctx);
            }
    ssl_ctx_free(ctx);
}

/* Running statistics living in a parameter store, updated over several training steps exactly
 * as PyTorch's rule; the affine parameters receive gradients in the store. */
static void test_batch_norm_params_store(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_params_t *p = ssl_params_create();
    int64_t C = 3;
    ssl_tensor_t *w = ssl_params_add(p, "bn.weight", 1, &C, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *b = ssl_params_add(p, "bn.bias", 1, &C, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *rm = ssl_params_add(p, "bn.running_mean", 1, &C, SSL_PARAM_BUFFER, 0);
    ssl_tensor_t *rv = ssl_params_add(p, "bn.running_var", 1, &C, SSL_PARAM_BUFFER, 0);
    assert_non_null(rv);
    for (int c = 0; c < 3; c++) {
        w->data[c] = 1;
        rv->data[c] = 1;
    }
    double erm[3] = {0, 0, 0}, erv[3] = {1, 1, 1};
    int64_t xs[4] = {4, 3, 2, 3};
    for (int step = 0; step < 3; step++) {
        ssl_tensor_t *x = tu_rand(ctx, 4, xs, 500 + step, -1.0f + step, 2.0f + step, 0);
        double mean[3], var[3];
        ref_bn_stats(x->data, 4, 3, 6, mean, var);
        for (int c = 0; c < 3; c++) {
            erm[c] = 0.9 * erm[c] + 0.1 * mean[c];
            erv[c] = 0.9 * erv[c] + 0.1 * var[c] * 24.0 / 23.0;
        }
        ssl_tensor_t *y = ssl_batch_norm(ctx, x, w, b, rm, rv, 1, 0.1f, 1e-5f);
        assert_non_null(y);
        float *dy = malloc((size_t)y->numel * sizeof(float));
        for (int64_t i = 0; i < y->numel; i++)
            dy[i] = (float)(i % 5) - 2.0f;
        assert_int_equal(ssl_backward_with(ctx, y, dy), SSL_OK);
        free(dy);
        ssl_ctx_reset(ctx);
    }
    for (int c = 0; c < 3; c++) {
        assert_float_equal(rm->data[c], erm[c], 1e-5);
        assert_float_equal(rv->data[c], erv[c], 1e-5);
    }
    /* db = sum dy over 3 steps; dy pattern is known, so check it exactly. */
    for (int c = 0; c < 3; c++) {
        double s = 0;
        for (int n = 0; n < 4; n++)
            for (int k = 0; k < 6; k++)
                s += (double)(((n * 3 + c) * 6 + k) % 5) - 2.0;
        assert_float_equal(b->grad[c], 3 * s, 1e-4);
    }
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

static void test_batch_norm_backward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const bn_shape_t shapes[] = {{2, {4, 3}}, {3, {2, 3, 5}}, {4, {2, 2, 3, 3}}};
    for (int si = 0; si < 3; si++)
        for (int training = 0; training < 2; training++)
            for (int aff = 0; aff < 4; aff++) {
                int64_t N, C, S;
                bn_nsc(&shapes[si], &N, &C, &S);
                (void)N;
                (void)S;
                bn_case_t bc = {training, 1e-5f};
                ssl_tensor_t *in[5] = {
                    tu_rand(ctx, shapes[si].ndim, shapes[si].shape, 110 + si, -2, 2, 1),
                    (aff & 1) ? tu_rand_away0(ctx, 1, &C, 120 + si, -2, 2, 0.3f, 1) : NULL,
                    (aff & 2) ? tu_rand(ctx, 1, &C, 130 + si, -1, 1, 1) : NULL,
                    training ? NULL : tu_rand(ctx, 1, &C, 140 + si, -0.5f, 0.5f, 0),
                    training ? NULL : tu_rand(ctx, 1, &C, 150 + si, 0.5f, 1.5f, 0)};
                assert_int_equal(tu_gradcheck(ctx, build_bn, &bc, in, 5, NULL), 0);
                ssl_ctx_reset(ctx);
            }
    ssl_ctx_free(ctx);
}

static ssl_tensor_t *build_bn_relu(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    (void)user;
    return ssl_batch_norm_relu(ctx, in[0], in[1], in[2], NULL, NULL, 1, 0.1f, 1e-5f);
}

/* Central differences through the fused op, with inputs whose normalised values are well away
 * from the relu's kink: per channel x = 1, 2, 3, 4 (z = -1.34, -0.45, 0.45, 1.34), weights of
 * either sign, bias 0: half the outputs are masked, none is near 0. */
static void bn_kink_free_inputs(ssl_ctx_t *ctx, ssl_tensor_t **in)
{
    int64_t xs[2] = {4, 2}, cs = 2;
    const float x[8] = {1, 4, 2, 3, 3, 2, 4, 1}, w[2] = {0.8f, -1.2f}, b[2] = {0.0f, 0.0f};
    in[0] = ssl_tensor_from(ctx, 2, xs, x);
    in[1] = ssl_tensor_from(ctx, 1, &cs, w);
    in[2] = ssl_tensor_from(ctx, 1, &cs, b);
    for (int i = 0; i < 3; i++) {
        assert_non_null(in[i]);
        ssl_tensor_set_requires_grad(in[i], 1);
    }
}

static void test_batch_norm_relu_gradcheck(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *in[3];
    bn_kink_free_inputs(ctx, in);
    assert_int_equal(tu_gradcheck(ctx, build_bn_relu, NULL, in, 3, NULL), 0);
    ssl_ctx_free(ctx);
}

/* The fused relu(batch_norm(x)) and relu(batch_norm(x) + r) against the ops composed
 * (batch_norm then relu / add_relu): the same output, running statistics and gradients (the
 * composition's parts are tested against references above). Planes of 30, 144 and 49 values
 * (the relu's gate bits start each plane on a new 16-bit word), threaded sizes; x's gradient
 * stored, added to (x also feeds another op) or not wanted (the residual's gradient then takes
 * its own pass). */
static void test_batch_norm_relu_fused(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const bn_shape_t shapes[] = {
        {2, {6, 3}}, {4, {3, 4, 5, 6}}, {4, {16, 8, 12, 12}}, {4, {48, 8, 7, 7}}};
    for (int si = 0; si < 4; si++)
        for (int variant = 0; variant < 12; variant++) { /* (add?) x (training?) x x's grad */
            const int add = variant / 2 % 2, training = variant % 2, xmode = variant / 4;
            int64_t C = shapes[si].shape[1];
            float *ref[6] = {0};
            for (int fused = 0; fused < 2; fused++) {
                ssl_tensor_t *x = tu_rand(ctx, shapes[si].ndim, shapes[si].shape, 7 + si, -2, 2,
                                          xmode != 2);
                ssl_tensor_t *w = tu_rand(ctx, 1, &C, 8 + si, -2, 2, 1);
                ssl_tensor_t *b = tu_rand(ctx, 1, &C, 9 + si, -1, 1, 1);
                ssl_tensor_t *rm = tu_rand(ctx, 1, &C, 10 + si, -0.5f, 0.5f, 0);
                ssl_tensor_t *rv = tu_rand(ctx, 1, &C, 11 + si, 0.5f, 1.5f, 0);
                ssl_tensor_t *r =
                    tu_rand(ctx, shapes[si].ndim, shapes[si].shape, 13 + si, -1, 1, 1);
                ssl_tensor_t *y;
                if (fused)
                    y = add ? ssl_batch_norm_add_relu(ctx, x, w, b, rm, rv, r, training, 0.1f,
                                                      1e-5f)
                            : ssl_batch_norm_relu(ctx, x, w, b, rm, rv, training, 0.1f, 1e-5f);
                else {
                    y = ssl_batch_norm(ctx, x, w, b, rm, rv, training, 0.1f, 1e-5f);
                    y = add ? ssl_add_relu(ctx, y, r) : ssl_relu(ctx, y);
                }
                if (xmode == 1) /* x's other use runs first in backward: the op adds to it */
                    y = ssl_add(ctx, y, ssl_scale(ctx, x, 0.5f, 0.0f));
                assert_non_null(y);
                float *g = malloc((size_t)y->numel * sizeof(float));
                ssl_rng_fill_uniform(g, (size_t)y->numel, -1, 1, 12 + si, 0, 0);
                assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
                free(g);
                const ssl_tensor_t *out[6] = {y, x, w, rm, b, r};
                for (int k = 0; k < 5 + add; k++) {
                    if (k == 1 && xmode == 2) {
                        assert_null(x->grad);
                        continue;
                    }
                    const float *v = k == 0 || k == 3 ? out[k]->data : out[k]->grad;
                    int64_t n = out[k]->numel;
                    if (!fused) {
                        ref[k] = malloc((size_t)n * sizeof(float));
                        memcpy(ref[k], v, (size_t)n * sizeof(float));
                    } else {
                        tu_assert_close(v, ref[k], n, 1e-6, 1e-5);
                        free(ref[k]);
                    }
                }
                ssl_ctx_reset(ctx);
            }
        }
    ssl_ctx_free(ctx);
}

static ssl_tensor_t *build_bn_add_relu(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    (void)user;
    return ssl_batch_norm_add_relu(ctx, in[0], in[1], in[2], NULL, NULL, in[3], 1, 0.1f, 1e-5f);
}

/* Central differences through relu(bn(x) + r) with bn(x) + r away from the kink (x as in the
 * relu test, |r| <= 0.2), the adds paths, and a residual of the wrong shape. */
static void test_batch_norm_add_relu(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t xs[2] = {4, 2};
    ssl_tensor_t *in[4];
    bn_kink_free_inputs(ctx, in);
    in[3] = tu_rand(ctx, 2, xs, 4, -0.2f, 0.2f, 1);
    assert_int_equal(tu_gradcheck(ctx, build_bn_add_relu, NULL, in, 4, NULL), 0);
    ssl_ctx_reset(ctx);
    int64_t big[4] = {4, 3, 5, 6}, c3 = 3;
    ssl_tensor_t *in2[4] = {tu_rand(ctx, 4, big, 5, -2, 2, 1), tu_rand(ctx, 1, &c3, 6, 0.5f, 2, 1),
                            tu_rand(ctx, 1, &c3, 7, -1, 1, 1), tu_rand(ctx, 4, big, 8, -1, 1, 1)};
    tu_check_grad_adds(ctx, build_bn_add_relu, NULL, in2, 4, 9);
    int64_t other[4] = {4, 3, 6, 5};
    ssl_tensor_t *bad = tu_rand(ctx, 4, other, 10, -1, 1, 0);
    tu_assert_error(
        ssl_batch_norm_add_relu(ctx, in2[0], in2[1], in2[2], NULL, NULL, bad, 1, 0.1f, 1e-5f),
        SSL_ERR_SHAPE, "batch_norm", "residual", "(4, 3, 6, 5)", "(4, 3, 5, 6)", NULL);
    ssl_ctx_free(ctx);
}

/* Parallel paths (per-channel with spatial dims, channel tiles for (N, C)): forward and
 * backward against the references, bit-identical with 1 and 2 threads. */
static void test_batch_norm_large(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(16 << 20);
    const bn_shape_t shapes[] = {{4, {16, 9, 11, 13}}, {2, {150, 131}}};
    for (int si = 0; si < 2; si++)
        for (int training = 0; training < 2; training++) {
            int64_t N, C, S;
            bn_nsc(&shapes[si], &N, &C, &S);
            int64_t numel = N * C * S;
            float *res[2][4];
            for (int th = 0; th < 2; th++) {
                ssl_set_num_threads(th + 1);
                ssl_tensor_t *x =
                    tu_rand(ctx, shapes[si].ndim, shapes[si].shape, 210 + si, -2, 4, 1);
                ssl_tensor_t *w = tu_rand(ctx, 1, &C, 220 + si, -1, 1, 1);
                ssl_tensor_t *b = tu_rand(ctx, 1, &C, 230 + si, -1, 1, 1);
                ssl_tensor_t *rm = tu_rand(ctx, 1, &C, 240 + si, -1, 1, 0);
                ssl_tensor_t *rv = tu_rand(ctx, 1, &C, 250 + si, 0.5f, 2, 0);
                double *mean = malloc((size_t)C * sizeof(double));
                double *var = malloc((size_t)C * sizeof(double));
                if (training) {
                    ref_bn_stats(x->data, N, C, S, mean, var);
                } else {
                    for (int64_t c = 0; c < C; c++) {
                        mean[c] = rm->data[c];
                        var[c] = rv->data[c];
                    }
                }
                ssl_tensor_t *y = ssl_batch_norm(ctx, x, w, b, rm, rv, training, 0.1f, 1e-5f);
                assert_non_null(y);
                float *dy = malloc((size_t)numel * sizeof(float));
                ssl_rng_fill_uniform(dy, (size_t)numel, -1, 1, 260 + si, 0, 0);
                assert_int_equal(ssl_backward_with(ctx, y, dy), SSL_OK);
                float *ry = malloc((size_t)numel * 4), *rdx = malloc((size_t)numel * 4);
                float *rdw = malloc((size_t)C * 4), *rdb = malloc((size_t)C * 4);
                ref_bn_apply(x->data, w->data, b->data, mean, var, N, C, S, 1e-5, ry);
                ref_bn_backward(x->data, w->data, dy, mean, var, training, N, C, S, 1e-5, rdx, rdw,
                                rdb);
                tu_assert_close(y->data, ry, numel, 1e-5, 1e-5);
                tu_assert_close(x->grad, rdx, numel, 1e-5, 1e-4);
                tu_assert_close(w->grad, rdw, C, 1e-3, 1e-4);
                tu_assert_close(b->grad, rdb, C, 1e-3, 1e-4);
                const float *src[4] = {y->data, x->grad, w->grad, b->grad};
                const int64_t len[4] = {numel, numel, C, C};
                for (int k = 0; k < 4; k++) {
                    res[th][k] = malloc((size_t)len[k] * sizeof(float));
                    memcpy(res[th][k], src[k], (size_t)len[k] * sizeof(float));
                }
                free(mean);
                free(var);
                free(dy);
                free(ry);
                free(rdx);
                free(rdw);
                free(rdb);
                ssl_ctx_reset(ctx);
            }
            ssl_set_num_threads(0);
            const int64_t len[4] = {numel, numel, C, C};
            for (int k = 0; k < 4; k++) {
                assert_memory_equal(res[0][k], res[1][k], (size_t)len[k] * sizeof(float));
                free(res[0][k]);
                free(res[1][k]);
            }
        }
    ssl_ctx_free(ctx);
}

static void test_batch_norm_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_fill(ctx, 2, (int64_t[]){2, 3}, 1.0f);
    ssl_tensor_t *c3 = ssl_tensor_fill(ctx, 1, (int64_t[]){3}, 1.0f);
    ssl_tensor_t *c4 = ssl_tensor_fill(ctx, 1, (int64_t[]){4}, 1.0f);
    ssl_tensor_t *m23 = ssl_tensor_fill(ctx, 2, (int64_t[]){2, 3}, 1.0f);
    /* channel-count mismatches in each optional input */
    tu_assert_error(ssl_batch_norm(ctx, x, c4, NULL, NULL, NULL, 1, 0.1f, 1e-5f), SSL_ERR_SHAPE,
                    "batch_norm", "(2, 3)", "(4)", "weight", NULL);
    tu_assert_error(ssl_batch_norm(ctx, x, c3, c4, NULL, NULL, 1, 0.1f, 1e-5f), SSL_ERR_SHAPE,
                    "(2, 3)", "(4)", "bias", NULL);
    tu_assert_error(ssl_batch_norm(ctx, x, NULL, NULL, c4, c3, 1, 0.1f, 1e-5f), SSL_ERR_SHAPE,
                    "(2, 3)", "(4)", "running_mean", NULL);
    tu_assert_error(ssl_batch_norm(ctx, x, NULL, NULL, c3, c4, 0, 0.1f, 1e-5f), SSL_ERR_SHAPE,
                    "(2, 3)", "(4)", "running_var", NULL);
    tu_assert_error(ssl_batch_norm(ctx, x, m23, NULL, NULL, NULL, 1, 0.1f, 1e-5f), SSL_ERR_SHAPE,
                    "(2, 3)", NULL);
    ssl_tensor_t *x4 = ssl_tensor_fill(ctx, 4, (int64_t[]){2, 5, 2, 2}, 1.0f);
    tu_assert_error(ssl_batch_norm(ctx, x4, c3, c3, NULL, NULL, 1, 0.1f, 1e-5f), SSL_ERR_SHAPE,
                    "(2, 5, 2, 2)", "(3)", NULL);
    /* rank 1 */
    tu_assert_error(ssl_batch_norm(ctx, c3, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f), SSL_ERR_SHAPE,
                    "(3)", NULL);
    /* eval without running statistics, or with only one of them */
    tu_assert_error(ssl_batch_norm(ctx, x, c3, c3, NULL, NULL, 0, 0.1f, 1e-5f), SSL_ERR_INVALID,
                    "running", NULL);
    tu_assert_error(ssl_batch_norm(ctx, x, c3, c3, c3, NULL, 1, 0.1f, 1e-5f), SSL_ERR_INVALID,
                    "running", NULL);
    /* one value per channel cannot be normalised with batch statistics */
    ssl_tensor_t *x1 = ssl_tensor_fill(ctx, 2, (int64_t[]){1, 3}, 1.0f);
    tu_assert_error(ssl_batch_norm(ctx, x1, NULL, NULL, NULL, NULL, 1, 0.1f, 1e-5f), SSL_ERR_SHAPE,
                    "(1, 3)", NULL);
    assert_non_null(ssl_batch_norm(ctx, x1, NULL, NULL, c3, c3, 0, 0.1f, 1e-5f));
    /* attributes */
    tu_assert_error(ssl_batch_norm(ctx, x, NULL, NULL, NULL, NULL, 1, 1.5f, 1e-5f), SSL_ERR_INVALID,
                    "momentum", NULL);
    tu_assert_error(ssl_batch_norm(ctx, x, NULL, NULL, NULL, NULL, 1, NAN, 1e-5f), SSL_ERR_INVALID,
                    "momentum", NULL);
    tu_assert_error(ssl_batch_norm(ctx, x, NULL, NULL, NULL, NULL, 1, 0.1f, -1.0f), SSL_ERR_INVALID,
                    "eps", NULL);
    /* running statistics are left alone when the op fails */
    ssl_tensor_t *rm = ssl_tensor_fill(ctx, 1, (int64_t[]){3}, 7.0f);
    ssl_tensor_t *rv = ssl_tensor_fill(ctx, 1, (int64_t[]){3}, 7.0f);
    assert_null(ssl_batch_norm(ctx, x, c4, NULL, rm, rv, 1, 0.1f, 1e-5f));
    for (int c = 0; c < 3; c++)
        assert_true(rm->data[c] == 7.0f && rv->data[c] == 7.0f);
    /* NULL input keeps the earlier error */
    ssl_set_error(SSL_ERR_IO, "earlier failure");
    assert_null(ssl_batch_norm(ctx, NULL, c3, c3, rm, rv, 1, 0.1f, 1e-5f));
    tu_assert_error(NULL, SSL_ERR_IO, "earlier failure", NULL);
    assert_null(ssl_batch_norm(ctx, NULL, NULL, NULL, NULL, NULL, 0, 0.1f, 1e-5f));
    tu_assert_error(NULL, SSL_ERR_IO, "earlier failure", NULL);
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- dropout */

static void test_dropout_mask(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = ssl_ctx_create(8 << 20);
    const int64_t n = 100003; /* not a multiple of 4, above the parallel threshold */
    const float p = 0.3f, scale = 1.0f / (1.0f - p);
    const uint64_t seed = 0xF00DDEADBEEFCAFEull /* top bit set */, stream = ssl_rng_stream(1, 2, 3);
    ssl_tensor_t *x = tu_rand_away0(ctx, 1, &n, 5, -2, 2, 0.01f, 0);
    ssl_tensor_t *y1 = ssl_dropout(ctx, x, p, 1, seed, stream);
    ssl_set_num_threads(1);
    ssl_tensor_t *y2 = ssl_dropout(ctx, x, p, 1, seed, stream);
    ssl_set_num_threads(0);
    ssl_tensor_t *y3 = ssl_dropout(ctx, x, p, 1, seed, stream + 1);
    assert_non_null(y1);
    assert_non_null(y2);
    assert_non_null(y3);
    assert_memory_equal(y1->data, y2->data, (size_t)n * sizeof(float));
    int64_t kept = 0, differ = 0;
    for (int64_t i = 0; i < n; i++) {
        int keep = ssl_rng_uniform(seed, stream, (uint64_t)i) >= p;
        assert_true(y1->data[i] == (keep ? x->data[i] * scale : 0.0f));
        kept += keep;
        differ += (y1->data[i] == 0.0f) != (y3->data[i] == 0.0f);
    }
    double frac = (double)kept / (double)n;
    assert_true(fabs(frac - 0.7) < 0.01); /* std of frac is ~0.0015 */
    assert_true(differ > n / 4);          /* independent masks differ in ~42% of places */
    ssl_ctx_free(ctx);
}

static void test_dropout_backward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t xs[3] = {3, 7, 11};
    const float p = 0.45f, scale = 1.0f / (1.0f - p);
    ssl_tensor_t *x = tu_rand(ctx, 3, xs, 9, -1, 1, 1);
    ssl_tensor_t *y = ssl_dropout(ctx, x, p, 1, 77, 5);
    assert_non_null(y);
    float dy[231];
    int zeros_seen = 0;
    for (int i = 0; i < 231; i++)
        dy[i] = 1.0f + (float)(i % 3);
    assert_int_equal(ssl_backward_with(ctx, y, dy), SSL_OK);
    for (int i = 0; i < 231; i++) {
        int keep = ssl_rng_uniform(77, 5, (uint64_t)i) >= p;
        assert_true(x->grad[i] == (keep ? dy[i] * scale : 0.0f));
        zeros_seen += !keep;
    }
    assert_true(zeros_seen > 0 && zeros_seen < 231);
    /* Backward accumulates: a second pass doubles the gradient. */
    float first[231];
    memcpy(first, x->grad, sizeof first);
    assert_int_equal(ssl_backward_with(ctx, y, dy), SSL_OK);
    for (int i = 0; i < 231; i++)
        assert_true(x->grad[i] == 2 * first[i]);
    ssl_ctx_free(ctx);
}

static void test_dropout_identity(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t xs[2] = {5, 9};
    ssl_tensor_t *x = tu_rand(ctx, 2, xs, 11, -1, 1, 1);
    float dy[45];
    ssl_rng_fill_uniform(dy, 45, -1, 1, 3, 3, 0);
    for (int mode = 0; mode < 2; mode++) { /* eval with p = 0.5, training with p = 0 */
        x->grad = NULL;
        ssl_tensor_t *y =
            mode ? ssl_dropout(ctx, x, 0.0f, 1, 1, 2) : ssl_dropout(ctx, x, 0.5f, 0, 1, 2);
        assert_non_null(y);
        assert_memory_equal(y->data, x->data, sizeof dy);
        assert_int_equal(ssl_backward_with(ctx, y, dy), SSL_OK);
        assert_memory_equal(x->grad, dy, sizeof dy);
    }
    ssl_ctx_free(ctx);
}

static void test_dropout_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_fill(ctx, 2, (int64_t[]){2, 3}, 1.0f);
    tu_assert_error(ssl_dropout(ctx, x, 1.0f, 1, 1, 1), SSL_ERR_INVALID, "dropout", "p", NULL);
    tu_assert_error(ssl_dropout(ctx, x, -0.1f, 1, 1, 1), SSL_ERR_INVALID, "p", NULL);
    tu_assert_error(ssl_dropout(ctx, x, NAN, 0, 1, 1), SSL_ERR_INVALID, "p", NULL);
    tu_assert_error(ssl_dropout(ctx, x, 1.5f, 0, 1, 1), SSL_ERR_INVALID, "p", NULL);
    ssl_set_error(SSL_ERR_IO, "earlier failure");
    assert_null(ssl_dropout(ctx, NULL, 0.5f, 1, 1, 1));
    tu_assert_error(NULL, SSL_ERR_IO, "earlier failure", NULL);
    ssl_ctx_free(ctx);
}

/* dx stored into a fresh buffer (or dy's, taken over) or added to another consumer's gradient:
 * plain and fused relu, training and eval, (N, C) and (N, C, H, W). */
static void test_batch_norm_grad_adds(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const int64_t shapes[2][4] = {{6, 5, 1, 1}, {4, 3, 5, 6}};
    for (int si = 0; si < 2; si++)
        for (int mode = 0; mode < 3; mode++) { /* training, eval, training with relu */
            int ndim = si == 0 ? 2 : 4;
            int64_t C = shapes[si][1];
            ssl_tensor_t *in[5] = {tu_rand(ctx, ndim, shapes[si], 40 + si, -2, 2, 1),
                                   tu_rand(ctx, 1, &C, 41, 0.5f, 2, 1),
                                   tu_rand(ctx, 1, &C, 42, -1, 1, 1), NULL, NULL};
            bn_case_t c = {mode != 1, 1e-5f};
            if (mode == 1) {
                in[3] = tu_rand(ctx, 1, &C, 43, -0.5f, 0.5f, 0);
                in[4] = tu_rand(ctx, 1, &C, 44, 0.5f, 1.5f, 0);
            }
            tu_check_grad_adds(ctx, mode == 2 ? build_bn_relu : build_bn, &c, in, 5,
                               50 + (uint64_t)(si * 3 + mode));
            ssl_ctx_reset(ctx);
        }
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layer_norm_forward),
        cmocka_unit_test(test_layer_norm_backward),
        cmocka_unit_test(test_layer_norm_large),
        cmocka_unit_test(test_layer_norm_errors),
        cmocka_unit_test(test_instance_norm_tokens),
        cmocka_unit_test(test_batch_norm_hand),
        cmocka_unit_test(test_batch_norm_forward),
        cmocka_unit_test(test_batch_norm_params_store),
        cmocka_unit_test(test_batch_norm_backward),
        cmocka_unit_test(test_batch_norm_large),
        cmocka_unit_test(test_batch_norm_relu_fused),
        cmocka_unit_test(test_batch_norm_relu_gradcheck),
        cmocka_unit_test(test_batch_norm_errors),
        cmocka_unit_test(test_dropout_mask),
        cmocka_unit_test(test_batch_norm_grad_adds),
        cmocka_unit_test(test_batch_norm_add_relu),
        cmocka_unit_test(test_dropout_backward),
        cmocka_unit_test(test_dropout_identity),
        cmocka_unit_test(test_dropout_errors),
        cmocka_unit_test(test_group_norm),
    };
    return cmocka_run_group_tests_name("ops_norm", tests, NULL, NULL);
}
