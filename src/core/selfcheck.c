/* `sslc selfcheck`: every op's gradient against central differences and the BLAS and conv
 * kernels against plain loops, on small random inputs. It tells a user in seconds whether this
 * build (compiler flags, BLAS, OpenMP) computes what it should. */
#include "core_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct sc_case {
    const char *name;
    ssl_graph_fn fn;
    int n_in;
    int ndim[4];
    int64_t shape[4][4];
    float lo, hi; /* input range; values within 0.05 of 0 are pushed away (kinks) */
} sc_case_t;

static const int32_t k_idx[6] = {2, 0, 3, 3, 1, 0};

#define IN0 in[0]
#define IN1 in[1]
#define IN2 in[2]
#define U (void)user
static ssl_tensor_t *f_matmul(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_matmul(c, IN0, IN1, 0, 1); }
static ssl_tensor_t *f_bmm(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_matmul(c, IN0, IN1, 1, 0); }
static ssl_tensor_t *f_linear(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_linear(c, IN0, IN1, IN2); }
static ssl_tensor_t *f_linear_res(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_linear_residual(c, IN0, IN1, NULL, IN2); }
static ssl_tensor_t *f_add(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_add(c, IN0, IN1); }
static ssl_tensor_t *f_sub(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_sub(c, IN0, IN1); }
static ssl_tensor_t *f_mul(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_mul(c, IN0, IN1); }
static ssl_tensor_t *f_div(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_div(c, IN0, IN1); }
static ssl_tensor_t *f_scale(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_scale(c, IN0, -1.5f, 0.25f); }
static ssl_tensor_t *f_sum(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_sum(c, IN0, 1, 0); }
static ssl_tensor_t *f_mean(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_mean(c, IN0, -1, 1); }
static ssl_tensor_t *f_sum_all(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_sum_all(c, IN0); }
static ssl_tensor_t *f_mean_all(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_mean_all(c, IN0); }
static ssl_tensor_t *f_exp(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_exp(c, IN0); }
static ssl_tensor_t *f_log(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_log(c, IN0); }
static ssl_tensor_t *f_sqrt(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_sqrt(c, IN0); }
static ssl_tensor_t *f_pow(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_pow(c, IN0, 2.5f); }
static ssl_tensor_t *f_clamp(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_clamp(c, IN0, -0.5f, 0.6f); }
static ssl_tensor_t *f_relu(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_relu(c, IN0); }
static ssl_tensor_t *f_add_relu(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_add_relu(c, IN0, IN1); }
static ssl_tensor_t *f_bn_relu(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_batch_norm_relu(c, IN0, IN1, IN2, NULL, NULL, 1, 0.1f, 1e-5f); }
static ssl_tensor_t *f_bn_add_relu(ssl_ctx_t *c, ssl_tensor_t **in, void *user)
{
    U;
    return ssl_batch_norm_add_relu(c, IN0, IN1, IN2, NULL, NULL, in[3], 1, 0.1f, 1e-5f);
}
static ssl_tensor_t *f_gelu(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_gelu(c, IN0, SSL_GELU_ERF); }
static ssl_tensor_t *f_gelu_tanh(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_gelu(c, IN0, SSL_GELU_TANH); }
static ssl_tensor_t *f_sigmoid(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_sigmoid(c, IN0); }
static ssl_tensor_t *f_tanh(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_tanh(c, IN0); }
static ssl_tensor_t *f_leaky(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_leaky_relu(c, IN0, 0.2f); }
static ssl_tensor_t *f_amax(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_adaptive_max_pool2d(c, IN0, 2, 3); }
static ssl_tensor_t *f_softmax(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_softmax(c, IN0, 1); }
static ssl_tensor_t *f_log_softmax(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_log_softmax(c, IN0, -1); }
static ssl_tensor_t *f_l2n(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_l2_normalize(c, IN0, -1, 1e-12f); }
static ssl_tensor_t *f_ce(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_cross_entropy(c, IN0, k_idx); }
static ssl_tensor_t *f_ce_soft(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_cross_entropy_soft(c, IN0, ssl_softmax(c, IN1, -1)); }
static ssl_tensor_t *f_mse(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_mse(c, IN0, IN1); }
static ssl_tensor_t *f_l1(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_l1(c, IN0, IN1); }
static ssl_tensor_t *f_smooth_l1(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_smooth_l1(c, IN0, IN1, 1.0f); }
static ssl_tensor_t *f_layer_norm(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_layer_norm(c, IN0, IN1, IN2, 1e-5f); }
static ssl_tensor_t *f_batch_norm(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_batch_norm(c, IN0, IN1, IN2, NULL, NULL, 1, 0.1f, 1e-5f); }
static ssl_tensor_t *f_conv(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_conv2d(c, IN0, IN1, IN2, 2, 1); }
static ssl_tensor_t *f_convt(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_conv_transpose2d(c, IN0, IN1, IN2, 2, 1, 1); }
static ssl_tensor_t *f_pad2d(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_pad2d(c, IN0, 2, -1, 1, -2); }
static ssl_tensor_t *f_maxpool(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_max_pool2d(c, IN0, 3, 2, 1); }
static ssl_tensor_t *f_avgpool(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_avg_pool2d(c, IN0, 2, 2, 0); }
static ssl_tensor_t *f_gap(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_global_avg_pool(c, IN0); }
static ssl_tensor_t *f_reshape(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_reshape(c, IN0, 2, (int64_t[]){-1, 6}); }
static ssl_tensor_t *f_permute(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_permute(c, IN0, (int[]){0, 2, 1, 3}); }
static ssl_tensor_t *f_concat(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_concat(c, in, 2, 1); }
static ssl_tensor_t *f_slice(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_slice(c, IN0, 1, 1, 2); }
static ssl_tensor_t *f_gather(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_gather_rows(c, IN0, k_idx, 3); }
static ssl_tensor_t *f_scatter(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_scatter_rows(c, IN0, k_idx, 4); }
static ssl_tensor_t *f_embedding(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_embedding(c, IN0, k_idx, 2, (int64_t[]){2, 3}); }
static ssl_tensor_t *f_dropout(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_dropout(c, IN0, 0.3f, 1, 7, 1); }
static ssl_tensor_t *f_log_sigmoid(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_log_sigmoid(c, IN0); }
static ssl_tensor_t *f_attention(ssl_ctx_t *c, ssl_tensor_t **in, void *user) { U; return ssl_attention(c, IN0, 2, IN1); }

static const sc_case_t k_cases[] = {
    {"matmul", f_matmul, 2, {2, 2}, {{5, 4}, {3, 4}}, -1, 1},
    {"matmul (batched, a^T)", f_bmm, 2, {3, 3}, {{2, 4, 5}, {2, 4, 3}}, -1, 1},
    {"linear", f_linear, 3, {3, 2, 1}, {{2, 3, 4}, {5, 4}, {5}}, -1, 1},
    {"linear (residual)", f_linear_res, 3, {3, 2, 3}, {{2, 3, 4}, {5, 4}, {2, 3, 5}}, -1, 1},
    {"add (broadcast)", f_add, 2, {3, 1}, {{2, 3, 4}, {4}}, -1, 1},
    {"sub (broadcast)", f_sub, 2, {2, 2}, {{3, 4}, {3, 1}}, -1, 1},
    {"mul (broadcast)", f_mul, 2, {3, 3}, {{2, 1, 4}, {1, 3, 1}}, -1, 1},
    {"div", f_div, 2, {2, 2}, {{3, 4}, {3, 4}}, 0.5f, 2},
    {"scale", f_scale, 1, {2}, {{3, 4}}, -1, 1},
    {"sum (axis)", f_sum, 1, {3}, {{2, 3, 4}}, -1, 1},
    {"mean (axis, keepdim)", f_mean, 1, {3}, {{2, 3, 4}}, -1, 1},
    {"sum_all", f_sum_all, 1, {2}, {{3, 4}}, -1, 1},
    {"mean_all", f_mean_all, 1, {2}, {{3, 4}}, -1, 1},
    {"exp", f_exp, 1, {2}, {{3, 4}}, -1, 1},
    {"log", f_log, 1, {2}, {{3, 4}}, 0.5f, 2},
    {"sqrt", f_sqrt, 1, {2}, {{3, 4}}, 0.5f, 2},
    {"pow", f_pow, 1, {2}, {{3, 4}}, 0.5f, 2},
    {"clamp", f_clamp, 1, {2}, {{3, 4}}, -1, 1},
    {"relu", f_relu, 1, {2}, {{3, 4}}, -1, 1},
    {"add_relu", f_add_relu, 2, {2, 2}, {{3, 4}, {3, 4}}, -1, 1},
    {"gelu (erf)", f_gelu, 1, {2}, {{3, 4}}, -2, 2},
    {"gelu (tanh)", f_gelu_tanh, 1, {2}, {{3, 4}}, -2, 2},
    {"sigmoid", f_sigmoid, 1, {2}, {{3, 4}}, -2, 2},
    {"tanh", f_tanh, 1, {2}, {{3, 4}}, -2, 2},
    {"leaky_relu", f_leaky, 1, {2}, {{3, 4}}, -2, 2},
    {"adaptive_max_pool2d", f_amax, 1, {4}, {{1, 2, 5, 7}}, -1, 1},
    {"softmax", f_softmax, 1, {3}, {{2, 4, 3}}, -2, 2},
    {"log_softmax", f_log_softmax, 1, {2}, {{3, 5}}, -2, 2},
    {"l2_normalize", f_l2n, 1, {2}, {{3, 5}}, -1, 1},
    {"cross_entropy", f_ce, 1, {2}, {{6, 4}}, -2, 2},
    {"cross_entropy (soft)", f_ce_soft, 2, {2, 2}, {{3, 4}, {3, 4}}, -2, 2},
    {"mse", f_mse, 2, {2, 2}, {{3, 4}, {3, 4}}, -1, 1},
    {"l1", f_l1, 2, {2, 2}, {{3, 4}, {3, 4}}, -1, 1},
    {"smooth_l1", f_smooth_l1, 2, {2, 2}, {{3, 4}, {3, 4}}, -2, 2},
    {"layer_norm", f_layer_norm, 3, {3, 1, 1}, {{2, 3, 6}, {6}, {6}}, -2, 2},
    {"batch_norm", f_batch_norm, 3, {4, 1, 1}, {{3, 2, 2, 2}, {2}, {2}}, -2, 2},
    {"batch_norm_relu", f_bn_relu, 3, {4, 1, 1}, {{3, 2, 2, 2}, {2}, {2}}, -2, 2},
    {"batch_norm_add_relu",
     f_bn_add_relu,
     4,
     {4, 1, 1, 4},
     {{3, 2, 2, 2}, {2}, {2}, {3, 2, 2, 2}},
     -2,
     2},
    {"conv2d", f_conv, 3, {4, 4, 1}, {{2, 2, 5, 5}, {3, 2, 3, 3}, {3}}, -1, 1},
    {"conv_transpose2d", f_convt, 3, {4, 4, 1}, {{2, 2, 3, 4}, {2, 3, 3, 3}, {3}}, -1, 1},
    {"pad2d", f_pad2d, 1, {4}, {{2, 2, 3, 4}}, -1, 1},
    {"max_pool2d", f_maxpool, 1, {4}, {{1, 2, 5, 5}}, -1, 1},
    {"avg_pool2d", f_avgpool, 1, {4}, {{1, 2, 4, 4}}, -1, 1},
    {"global_avg_pool", f_gap, 1, {4}, {{2, 3, 2, 2}}, -1, 1},
    {"reshape", f_reshape, 1, {3}, {{2, 3, 2}}, -1, 1},
    {"permute", f_permute, 1, {4}, {{2, 3, 2, 2}}, -1, 1},
    {"concat", f_concat, 2, {2, 2}, {{2, 3}, {2, 2}}, -1, 1},
    {"slice", f_slice, 1, {2}, {{2, 4}}, -1, 1},
    {"gather_rows", f_gather, 1, {3}, {{2, 4, 3}}, -1, 1},
    {"scatter_rows", f_scatter, 1, {3}, {{2, 3, 3}}, -1, 1},
    {"embedding", f_embedding, 1, {2}, {{4, 3}}, -1, 1},
    {"dropout", f_dropout, 1, {2}, {{4, 8}}, -1, 1},
    {"log_sigmoid", f_log_sigmoid, 1, {2}, {{3, 4}}, -4, 4},
    {"attention (bias)", f_attention, 2, {3, 4}, {{2, 3, 12}, {2, 1, 3, 3}}, -1, 1},
};

/* Direct convolution: the plain reference for the im2col + sgemm kernel. */
static void conv_direct(const ssl_tensor_t *x, const ssl_tensor_t *w, int stride, int pad,
                        float *out, int64_t oh, int64_t ow)
{
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t OC = w->shape[0], KH = w->shape[2], KW = w->shape[3];
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double s = 0;
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t a = 0; a < KH; a++)
                            for (int64_t b = 0; b < KW; b++) {
                                int64_t y = i * stride - pad + a, z = j * stride - pad + b;
                                if (y >= 0 && y < H && z >= 0 && z < W)
                                    s += (double)x->data[((n * C + c) * H + y) * W + z] *
                                         w->data[((o * C + c) * KH + a) * KW + b];
                            }
                    out[((n * OC + o) * oh + i) * ow + j] = (float)s;
                }
}

static int max_rel_diff_ok(const float *a, const float *b, int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - b[i]) <= tol * (1 + fabs((double)b[i]))))
            return 0;
    return 1;
}

static int check_kernels(ssl_ctx_t *ctx, ssl_selfcheck_fn report, void *user)
{
    int failed = 0;
    /* sgemm, all four transpose combinations, odd sizes */
    int64_t m = 37, n = 29, k = 53;
    ssl_tensor_t *a = ssl_tensor_1d(ctx, m * k), *b = ssl_tensor_1d(ctx, k * n);
    ssl_tensor_t *c = ssl_tensor_1d(ctx, m * n), *r = ssl_tensor_1d(ctx, m * n);
    if (!a || !b || !c || !r)
        return 1;
    ssl_rng_fill_uniform(a->data, (size_t)(m * k), -1, 1, 1, 1, 0);
    ssl_rng_fill_uniform(b->data, (size_t)(k * n), -1, 1, 1, 2, 0);
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        ssl__sgemm(ta, tb, m, n, k, 1, a->data, ta ? m : k, b->data, tb ? k : n, 0, c->data, n);
        ssl_ref_sgemm(ta, tb, m, n, k, 1, a->data, ta ? m : k, b->data, tb ? k : n, 0, r->data,
                      n);
        int ok = max_rel_diff_ok(c->data, r->data, m * n, 1e-5);
        char name[64];
        snprintf(name, sizeof name, "sgemm %s%s vs reference", ta ? "T" : "N", tb ? "T" : "N");
        if (report)
            report(name, ok ? SSL_OK : SSL_ERR_INVALID, ok ? "" : "results differ", user);
        failed += !ok;
    }
    /* conv2d (im2col + sgemm, and the 1x1 path) against direct convolution */
    const int cfg[3][4] = {{3, 1, 1, 0}, {3, 2, 1, 0}, {1, 1, 0, 1}}; /* k, stride, pad, _ */
    for (int i = 0; i < 3; i++) {
        int kk = cfg[i][0], s = cfg[i][1], p = cfg[i][2];
        ssl_tensor_t *x = ssl_tensor_4d(ctx, 2, 3, 9, 7), *w = ssl_tensor_4d(ctx, 4, 3, kk, kk);
        if (!x || !w)
            return failed + 1;
        ssl_rng_fill_uniform(x->data, (size_t)x->numel, -1, 1, 2, (uint64_t)i, 0);
        ssl_rng_fill_uniform(w->data, (size_t)w->numel, -1, 1, 3, (uint64_t)i, 0);
        ssl_tensor_t *y = ssl_conv2d(ctx, x, w, NULL, s, p);
        char name[64];
        snprintf(name, sizeof name, "conv2d %dx%d stride %d pad %d vs direct", kk, kk, s, p);
        int ok = 0;
        if (y) {
            float *ref = ssl_arena_alloc(ctx, (size_t)y->numel * sizeof(float));
            conv_direct(x, w, s, p, ref, y->shape[2], y->shape[3]);
            ok = ref && max_rel_diff_ok(y->data, ref, y->numel, 1e-5);
        }
        if (report)
            report(name, ok ? SSL_OK : SSL_ERR_INVALID,
                   ok ? "" : (y ? "results differ" : ssl_last_error()), user);
        failed += !ok;
    }
    return failed;
}

int ssl_selfcheck(ssl_selfcheck_fn report, void *user)
{
    ssl_ctx_t *ctx = ssl_ctx_create(4 << 20);
    if (!ctx)
        return 1;
    int failed = check_kernels(ctx, report, user);
    ssl_ctx_reset(ctx);
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        const sc_case_t *cs = &k_cases[i];
        ssl_tensor_t *in[4] = {NULL, NULL, NULL, NULL};
        for (int j = 0; j < cs->n_in; j++) {
            in[j] = ssl_tensor_new(ctx, cs->ndim[j], cs->shape[j]);
            if (!in[j])
                break;
            ssl_rng_fill_uniform(in[j]->data, (size_t)in[j]->numel, cs->lo, cs->hi, 42,
                                 (uint64_t)(i * 3 + (size_t)j), 0);
            for (int64_t e = 0; e < in[j]->numel; e++) { /* keep off kinks at 0 */
                float v = in[j]->data[e];
                if (fabsf(v) < 0.05f)
                    in[j]->data[e] = v < 0 ? v - 0.05f : v + 0.05f;
            }
            in[j]->requires_grad = 1;
        }
        ssl_gradcheck_opts_t o = {1e-3, 2e-3, 2e-2, 64};
        int st = ssl_gradcheck(ctx, cs->fn, NULL, in, cs->n_in, &o, NULL);
        if (report)
            report(cs->name, st, st == SSL_OK ? "" : ssl_last_error(), user);
        failed += st != SSL_OK;
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
    return failed;
}
