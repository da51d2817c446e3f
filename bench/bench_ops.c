/* Micro-benchmark of the gemm-bound ops, for 1 and 2 threads: raw OpenBLAS sgemm at n = 2048
 * (the machine's peak reference), ssl_matmul forward, and conv2d forward and forward+backward
 * on ResNet-18-like layers. Each figure is the median of several wall-clock repetitions after
 * one warm-up, with its share of the sgemm peak at the same thread count.
 *
 *   bench_ops [--quick] [--threads N] [--fmnist] [--only TEXT] [--grads xw|x|w]
 *     --quick: batch 16 and 3 repetitions; --threads 1 or 2: only that section;
 *     --fmnist: the layers of configs/simclr.json's encoder at its batch (256 views);
 *     --only TEXT: only the conv layers whose name contains TEXT;
 *     --grads: which gradients the conv backward computes (default xw: input and weights;
 *     a stem, whose input is the image, never computes x's: as in training);
 *     --bf16: instead, forward + backward of each conv layer and of mae-vitt's linear layers in
 *     fp32, in bf16 as it runs by default and in bf16 on oneDNN's convolutions, alternating
 *     (docs/precision.md);
 *     --mae: instead, the ops of one mae-vitt training step at their shapes (batch 128), each
 *     forward and forward + backward, and the step's sum of each (bench/torch_layers.py --mae
 *     times the same in PyTorch);
 *     --cpu-clock: time CPU seconds of the process (all threads) instead of wall clock: on a
 *     busy machine at 1 thread, the cost without the time spent waiting for a core */
#include "common/blas_env.h"
#include "core/core_internal.h"
#include "ssl/core.h"
#include "ssl/losses.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_cpu_clock; /* --cpu-clock: CPU seconds of the process instead of wall clock */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(g_cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static float *rand_buf(size_t n, uint64_t seed)
{
    float *p = malloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_ops: out of memory\n");
        exit(1);
    }
    ssl_rng_fill_uniform(p, n, -1.0f, 1.0f, seed, 1, 0);
    return p;
}

static void die_if(int bad, const char *what)
{
    if (bad) {
        fprintf(stderr, "bench_ops: %s failed: %s\n", what, ssl_last_error());
        exit(1);
    }
}

#define MAX_REPS 15

static int g_reps = 7;

/* ---------------------------------------------------------------- OpenBLAS peak */

static double bench_sgemm_peak(int64_t n)
{
    float *a = rand_buf((size_t)(n * n), 1), *b = rand_buf((size_t)(n * n), 2);
    float *c = malloc((size_t)(n * n) * sizeof(float));
    double t[MAX_REPS];
    for (int r = -1; r < g_reps; r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)n, (blasint)n, (blasint)n,
                    1.0f, a, (blasint)n, b, (blasint)n, 0.0f, c, (blasint)n);
        if (r >= 0)
            t[r] = now_s() - t0;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * (double)n * (double)n * (double)n / median(t, g_reps) * 1e-9;
}

/* ---------------------------------------------------------------- ssl_matmul */

static double bench_matmul(ssl_ctx_t *ctx, int64_t m, int64_t k, int64_t n)
{
    float *ha = rand_buf((size_t)(m * k), 3), *hb = rand_buf((size_t)(k * n), 4);
    double t[MAX_REPS];
    ssl_ctx_set_grad(ctx, 0);
    for (int r = -1; r < g_reps; r++) {
        ssl_ctx_reset(ctx);
        ssl_tensor_t *a = ssl_tensor_from(ctx, 2, (int64_t[]){m, k}, ha);
        ssl_tensor_t *b = ssl_tensor_from(ctx, 2, (int64_t[]){k, n}, hb);
        double t0 = now_s();
        ssl_tensor_t *c = ssl_matmul(ctx, a, b, 0, 0);
        double dt = now_s() - t0;
        die_if(!c, "ssl_matmul");
        if (r >= 0)
            t[r] = dt;
    }
    ssl_ctx_set_grad(ctx, 1);
    free(ha);
    free(hb);
    return 2.0 * (double)m * (double)k * (double)n / median(t, g_reps) * 1e-9;
}

/* ---------------------------------------------------------------- conv2d */

typedef struct layer {
    const char *name;
    int64_t c, oc, hw, k;
    int stride, pad;
} layer_t;

static int g_grad_x = 1, g_grad_w = 1; /* --grads */

static const layer_t layers[] = {
    {"stem 3->64 3x3 @32", 3, 64, 32, 3, 1, 1},
    {"64->64 3x3 @32", 64, 64, 32, 3, 1, 1},
    {"64->128 3x3 s2 @32", 64, 128, 32, 3, 2, 1},
    {"128->128 3x3 @16", 128, 128, 16, 3, 1, 1},
    {"256->256 3x3 @8", 256, 256, 8, 3, 1, 1},
    {"512->512 3x3 @4", 512, 512, 4, 3, 1, 1},
    {"proj 64->128 1x1 s2 @32", 64, 128, 32, 1, 2, 0},
    {"256->256 1x1 @8 (direct)", 256, 256, 8, 1, 1, 0},
};

/* The default Fashion-MNIST config's encoder (configs/simclr.json: width 16 on 1x28x28). */
static const layer_t layers_fmnist[] = {
    {"stem 1->16 3x3 @28", 1, 16, 28, 3, 1, 1},
    {"16->16 3x3 @28", 16, 16, 28, 3, 1, 1},
    {"16->32 3x3 s2 @28", 16, 32, 28, 3, 2, 1},
    {"32->32 3x3 @14", 32, 32, 14, 3, 1, 1},
    {"32->64 3x3 s2 @14", 32, 64, 14, 3, 2, 1},
    {"64->64 3x3 @7", 64, 64, 7, 3, 1, 1},
    {"64->128 3x3 s2 @7", 64, 128, 7, 3, 2, 1},
    {"128->128 3x3 @4", 128, 128, 4, 3, 1, 1},
    {"proj 16->32 1x1 s2 @28", 16, 32, 28, 1, 2, 0},
    {"proj 64->128 1x1 s2 @7", 64, 128, 7, 1, 2, 0},
};

/* GFLOP/s of forward (fwd) and forward + backward to x, w and bias (fb); median ms of each. */
static void bench_conv(ssl_ctx_t *ctx, const layer_t *l, int64_t batch, double *fwd, double *fb,
                       double *ms_f, double *ms_fb)
{
    int64_t o = (l->hw + 2 * l->pad - l->k) / l->stride + 1;
    size_t nx = (size_t)(batch * l->c * l->hw * l->hw), nw = (size_t)(l->oc * l->c * l->k * l->k);
    size_t ny = (size_t)(batch * l->oc * o * o);
    float *hx = rand_buf(nx, 5), *hw = rand_buf(nw, 6), *hb = rand_buf((size_t)l->oc, 7);
    float *hg = rand_buf(ny, 8);
    double flops = 2.0 * (double)ny * (double)(l->c * l->k * l->k);
    double tf[MAX_REPS], tb[MAX_REPS];
    for (int pass = 0; pass < 2; pass++) {
        ssl_ctx_set_grad(ctx, pass == 1);
        for (int r = -1; r < g_reps; r++) {
            ssl_ctx_reset(ctx);
            ssl_tensor_t *x = ssl_tensor_from(ctx, 4, (int64_t[]){batch, l->c, l->hw, l->hw}, hx);
            ssl_tensor_t *w = ssl_tensor_from(ctx, 4, (int64_t[]){l->oc, l->c, l->k, l->k}, hw);
            ssl_tensor_t *b = ssl_tensor_from(ctx, 1, (int64_t[]){l->oc}, hb);
            die_if(!x || !w || !b, "tensor allocation");
            /* the image entering a stem needs no gradient */
            ssl_tensor_set_requires_grad(x, g_grad_x && strncmp(l->name, "stem", 4) != 0);
            ssl_tensor_set_requires_grad(w, g_grad_w);
            ssl_tensor_set_requires_grad(b, g_grad_w);
            double t0 = now_s();
            ssl_tensor_t *y = ssl_conv2d(ctx, x, w, b, l->stride, l->pad);
            die_if(!y, "ssl_conv2d");
            if (pass == 1)
                die_if(ssl_backward_with(ctx, y, hg) != SSL_OK, "backward");
            double dt = now_s() - t0;
            if (r >= 0)
                (pass ? tb : tf)[r] = dt;
        }
    }
    ssl_ctx_set_grad(ctx, 1);
    *ms_f = 1e3 * median(tf, g_reps);
    *ms_fb = 1e3 * median(tb, g_reps);
    *fwd = flops / *ms_f * 1e-6;
    int terms = 1 + (g_grad_x && strncmp(l->name, "stem", 4) != 0) + g_grad_w;
    *fb = terms * flops / *ms_fb * 1e-6;
    free(hx);
    free(hw);
    free(hb);
    free(hg);
}

/* ---------------------------------------------------------------- bf16 against fp32 */

/* Variants compared in alternating rounds: fp32; bf16 as it runs by default (GEMM-shaped ops
 * in bf16, oneDNN's bf16 convolutions where ssl__bf16_conv_usable says, the fp32 Winograd and
 * direct kernels elsewhere); bf16 with every convolution on oneDNN (ssl__bf16_conv_dnnl = 2). */
#define N_VARIANTS 3
static const char *const variant_names[N_VARIANTS] = {"fp32", "bf16", "bf16 dnnl conv"};

static void set_variant(ssl_ctx_t *ctx, int v)
{
    die_if(ssl_ctx_set_precision(ctx, v ? SSL_PRECISION_BF16 : SSL_PRECISION_FP32) != SSL_OK,
           "ssl_ctx_set_precision");
    ssl__bf16_conv_dnnl = v == 2 ? 2 : 1;
}

/* One forward + backward of conv layer l or of a linear layer (rows, in) -> out, ms. */
static double once(ssl_ctx_t *ctx, const layer_t *l, const int64_t *lin, int64_t batch,
                   const float *hx, const float *hw, const float *hb, const float *hg)
{
    ssl_ctx_reset(ctx);
    ssl_tensor_t *x, *w, *b, *y;
    if (l) {
        x = ssl_tensor_from(ctx, 4, (int64_t[]){batch, l->c, l->hw, l->hw}, hx);
        w = ssl_tensor_from(ctx, 4, (int64_t[]){l->oc, l->c, l->k, l->k}, hw);
        b = ssl_tensor_from(ctx, 1, (int64_t[]){l->oc}, hb);
    } else {
        x = ssl_tensor_from(ctx, 2, (int64_t[]){lin[0], lin[1]}, hx);
        w = ssl_tensor_from(ctx, 2, (int64_t[]){lin[2], lin[1]}, hw);
        b = ssl_tensor_from(ctx, 1, (int64_t[]){lin[2]}, hb);
    }
    die_if(!x || !w || !b, "tensor allocation");
    ssl_tensor_set_requires_grad(x, !l || strncmp(l->name, "stem", 4) != 0);
    ssl_tensor_set_requires_grad(w, 1);
    ssl_tensor_set_requires_grad(b, 1);
    double t0 = now_s();
    y = l ? ssl_conv2d(ctx, x, w, b, l->stride, l->pad) : ssl_linear(ctx, x, w, b);
    die_if(!y, "forward");
    die_if(ssl_backward_with(ctx, y, hg) != SSL_OK, "backward");
    return 1e3 * (now_s() - t0);
}

static void bench_bf16_row(ssl_ctx_t *ctx, const char *name, const layer_t *l, const int64_t *lin,
                           int64_t batch)
{
    int64_t nx, nw, ny, nb;
    if (l) {
        int64_t o = (l->hw + 2 * l->pad - l->k) / l->stride + 1;
        nx = batch * l->c * l->hw * l->hw, nw = l->oc * l->c * l->k * l->k;
        ny = batch * l->oc * o * o, nb = l->oc;
    } else {
        nx = lin[0] * lin[1], nw = lin[2] * lin[1], ny = lin[0] * lin[2], nb = lin[2];
    }
    float *hx = rand_buf((size_t)nx, 5), *hw = rand_buf((size_t)nw, 6);
    float *hb = rand_buf((size_t)nb, 7), *hg = rand_buf((size_t)ny, 8);
    double t[N_VARIANTS][MAX_REPS];
    for (int r = -1; r < g_reps; r++)
        for (int v = 0; v < N_VARIANTS; v++) {
            if (!l && v == 2)
                continue;
            set_variant(ctx, v);
            double ms = once(ctx, l, lin, batch, hx, hw, hb, hg);
            if (r >= 0)
                t[v][r] = ms;
        }
    double m[N_VARIANTS];
    for (int v = 0; v < N_VARIANTS; v++)
        m[v] = !l && v == 2 ? 0 : median(t[v], g_reps);
    printf("%-34s %9.2f %9.2f %9.2f %7.2fx %7.2fx\n", name, m[0], m[1], m[2], m[0] / m[1],
           m[2] > 0 ? m[0] / m[2] : 0.0);
    set_variant(ctx, 0);
    free(hx), free(hw), free(hb), free(hg);
}

static void bench_bf16(ssl_ctx_t *ctx, const layer_t *set, size_t nset, int64_t batch,
                       const char *only)
{
    if (ssl_precision_supported(SSL_PRECISION_BF16) != SSL_OK) {
        printf("bf16: %s\n", ssl_last_error());
        return;
    }
    /* the linear layers of mae-vitt's step (batch 128: 16 visible tokens of 64 per image in the
     * encoder, all 65 tokens in the decoder) */
    static const int64_t lins[][3] = {{2048, 192, 576}, {2048, 192, 768}, {2048, 768, 192},
                                      {8320, 128, 512}, {8320, 512, 128}};
    printf("bf16 vs fp32, forward + backward, median ms of %d alternating rounds\n", g_reps);
    printf("%-34s %9s %9s %9s %8s %8s\n", "layer", variant_names[0], variant_names[1], "dnnl conv",
           "x bf16", "x dnnl");
    for (size_t i = 0; i < nset; i++)
        if (!only || strstr(set[i].name, only))
            bench_bf16_row(ctx, set[i].name, &set[i], NULL, batch);
    for (size_t i = 0; i < sizeof lins / sizeof lins[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "linear %lldx%lld->%lld", (long long)lins[i][0],
                 (long long)lins[i][1], (long long)lins[i][2]);
        if (!only || strstr(name, only))
            bench_bf16_row(ctx, name, NULL, lins[i], batch);
    }
}

/* ---------------------------------------------------------------- the mae-vitt step's ops */

/* One op of mae-vitt's step (batch 128: the encoder sees the cls token and 16 visible patches
 * of 64, 17 tokens of 192, 3 heads; the decoder sees 65 tokens of 128, 4 heads) at its shape,
 * and how many times a step runs it. */
enum { MAE_LIN, MAE_LIN_RES, MAE_ATT, MAE_LN, MAE_GELU, MAE_GATHER, MAE_SCATTER, MAE_LOSS };

typedef struct mae_op {
    const char *name;
    int kind;
    int64_t a, b, c, d; /* LIN*: rows, in, out; ATT: B, T, C, heads; LN, GELU: rows, cols;
                         * GATHER, SCATTER: B, T, K, C; LOSS: B, T, masked, P */
    int per_step;
} mae_op_t;

static const mae_op_t mae_ops[] = {
    {"enc gather 16 of 64 tokens", MAE_GATHER, 128, 64, 16, 192, 1},
    {"enc layer_norm 2176x192", MAE_LN, 2176, 192, 0, 0, 25},
    {"enc linear qkv 2176x192->576", MAE_LIN, 2176, 192, 576, 0, 12},
    {"enc attention T17 H3 D64", MAE_ATT, 128, 17, 192, 3, 12},
    {"enc linear proj+res 2176x192->192", MAE_LIN_RES, 2176, 192, 192, 0, 12},
    {"enc linear fc1 2176x192->768", MAE_LIN, 2176, 192, 768, 0, 12},
    {"enc gelu 2176x768", MAE_GELU, 2176, 768, 0, 0, 12},
    {"enc linear fc2+res 2176x768->192", MAE_LIN_RES, 2176, 768, 192, 0, 12},
    {"dec linear embed 2048x192->128", MAE_LIN, 2048, 192, 128, 0, 1},
    {"dec scatter 16 into 64 tokens", MAE_SCATTER, 128, 64, 16, 128, 1},
    {"dec layer_norm 8320x128", MAE_LN, 8320, 128, 0, 0, 5},
    {"dec linear qkv 8320x128->384", MAE_LIN, 8320, 128, 384, 0, 2},
    {"dec attention T65 H4 D32", MAE_ATT, 128, 65, 128, 4, 2},
    {"dec linear proj+res 8320x128->128", MAE_LIN_RES, 8320, 128, 128, 0, 2},
    {"dec linear fc1 8320x128->512", MAE_LIN, 8320, 128, 512, 0, 2},
    {"dec gelu 8320x512", MAE_GELU, 8320, 512, 0, 0, 2},
    {"dec linear fc2+res 8320x512->128", MAE_LIN_RES, 8320, 512, 128, 0, 2},
    {"dec linear pred 8192x128->48", MAE_LIN, 8192, 128, 48, 0, 1},
    {"loss mse 48 of 64 patches x48", MAE_LOSS, 128, 64, 48, 48, 1},
};

/* Tensor (shape) from host buffer h, requiring a gradient with rg. */
static ssl_tensor_t *mae_in(ssl_ctx_t *ctx, int ndim, const int64_t *shape, const float *h, int rg)
{
    ssl_tensor_t *t = ssl_tensor_from(ctx, ndim, shape, h);
    die_if(!t, "tensor allocation");
    ssl_tensor_set_requires_grad(t, rg);
    return t;
}

/* The op's output from host inputs x (its first input), w (weights), r (a second activation:
 * residual or target); idx are token indices (B, K). *t0 is the clock once the inputs are
 * tensors (their copies off the clock). */
static ssl_tensor_t *mae_apply(ssl_ctx_t *ctx, const mae_op_t *o, const float *x, const float *w,
                               const float *r, const int32_t *idx, double *t0)
{
    int64_t a = o->a, b = o->b, c = o->c, d = o->d;
    ssl_tensor_t *in[4] = {NULL, NULL, NULL, NULL};
    switch (o->kind) {
    case MAE_LIN:
    case MAE_LIN_RES:
        in[0] = mae_in(ctx, 2, (int64_t[]){a, b}, x, 1);
        in[1] = mae_in(ctx, 2, (int64_t[]){c, b}, w, 1);
        in[2] = mae_in(ctx, 1, (int64_t[]){c}, w + c * b, 1);
        if (o->kind == MAE_LIN_RES)
            in[3] = mae_in(ctx, 2, (int64_t[]){a, c}, r, 1);
        break;
    case MAE_ATT: in[0] = mae_in(ctx, 3, (int64_t[]){a, b, 3 * c}, x, 1); break;
    case MAE_LN:
        in[0] = mae_in(ctx, 2, (int64_t[]){a, b}, x, 1);
        in[1] = mae_in(ctx, 1, (int64_t[]){b}, w, 1);
        in[2] = mae_in(ctx, 1, (int64_t[]){b}, w + b, 1);
        break;
    case MAE_GELU: in[0] = mae_in(ctx, 2, (int64_t[]){a, b}, x, 1); break;
    case MAE_GATHER: in[0] = mae_in(ctx, 3, (int64_t[]){a, b, d}, x, 1); break;
    case MAE_SCATTER: in[0] = mae_in(ctx, 3, (int64_t[]){a, c, d}, x, 1); break;
    default: /* MAE_LOSS: the full prediction (B, T, P) and the target */
        in[0] = mae_in(ctx, 3, (int64_t[]){a, b, d}, x, 1);
        in[1] = mae_in(ctx, 3, (int64_t[]){a, b, d}, r, 0);
    }
    *t0 = now_s();
    switch (o->kind) {
    case MAE_LIN: return ssl_linear(ctx, in[0], in[1], in[2]);
    case MAE_LIN_RES: return ssl_linear_residual(ctx, in[0], in[1], in[2], in[3]);
    case MAE_ATT: return ssl_attention(ctx, in[0], (int)d, NULL);
    case MAE_LN: return ssl_layer_norm(ctx, in[0], in[1], in[2], 1e-6f);
    case MAE_GELU: return ssl_gelu(ctx, in[0], SSL_GELU_ERF);
    case MAE_GATHER: return ssl_gather_rows(ctx, in[0], idx, c);
    case MAE_SCATTER: return ssl_scatter_rows(ctx, in[0], idx, b);
    default: return ssl_loss_mae_idx(ctx, in[0], in[1], idx, c, 1); /* masked rows idx (B, M) */
    }
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Median ms of the op's forward (no tape) and of forward + backward. */
static void mae_time(ssl_ctx_t *ctx, const mae_op_t *o, double *ms_f, double *ms_fb)
{
    /* floats enough for any input or output of any kind */
    int64_t m = max64(max64(o->a * o->b, o->c * o->b + o->c), max64(o->a * o->c, 2 * o->b));
    m = max64(m, o->a * o->b * (o->kind == MAE_ATT ? 3 * o->c : max64(o->d, 1)));
    size_t n = (size_t)m;
    float *x = rand_buf(n, 11), *w = rand_buf(n, 12), *r = rand_buf(n, 13), *g = rand_buf(n, 14);
    /* token indices: a fixed permutation's first K per sample (distinct, as the masks are) */
    int64_t B = o->a, T = o->b, K = o->c;
    int32_t *idx = malloc((size_t)(B * T) * sizeof *idx);
    die_if(!idx, "index allocation");
    if (o->kind >= MAE_GATHER)
        for (int64_t i = 0; i < B; i++)
            for (int64_t j = 0; j < K; j++)
                idx[i * K + j] = (int32_t)((j * 37 + i * 11) % T); /* 37 is prime to T = 64 */
    double tf[MAX_REPS], tb[MAX_REPS];
    for (int pass = 0; pass < 2; pass++) {
        ssl_ctx_set_grad(ctx, pass == 1);
        for (int rep = -1; rep < g_reps; rep++) {
            ssl_ctx_reset(ctx);
            double t0;
            ssl_tensor_t *y = mae_apply(ctx, o, x, w, r, idx, &t0);
            die_if(!y, o->name);
            if (pass == 1)
                die_if(ssl_backward_with(ctx, y, g) != SSL_OK, "backward");
            if (rep >= 0)
                (pass ? tb : tf)[rep] = now_s() - t0;
        }
    }
    ssl_ctx_set_grad(ctx, 1);
    *ms_f = 1e3 * median(tf, g_reps);
    *ms_fb = 1e3 * median(tb, g_reps);
    free(x), free(w), free(r), free(g), free(idx);
}

static void bench_mae(ssl_ctx_t *ctx, const char *only)
{
    printf("mae-vitt step's ops (batch 128), median ms of %d after 1 warm-up, %s; per step = "
           "f+b x count\n",
           g_reps, g_cpu_clock ? "CPU time" : "wall clock");
    printf("%-36s %8s %8s %6s %9s\n", "op", "fwd ms", "f+b ms", "count", "step ms");
    double total = 0;
    for (size_t i = 0; i < sizeof mae_ops / sizeof mae_ops[0]; i++) {
        const mae_op_t *o = &mae_ops[i];
        if (only && !strstr(o->name, only))
            continue;
        double f, fb;
        mae_time(ctx, o, &f, &fb);
        total += fb * o->per_step;
        printf("%-36s %8.3f %8.3f %6d %9.2f\n", o->name, f, fb, o->per_step, fb * o->per_step);
    }
    printf("%-36s %8s %8s %6s %9.2f\n", "total", "", "", "", total);
}

int main(int argc, char **argv)
{
    ssl_tool_blas_reexec(argv);
    int quick = 0, only_threads = 0, fmnist = 0, bf16 = 0, mae = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--fmnist"))
            fmnist = 1;
        else if (!strcmp(argv[i], "--bf16"))
            bf16 = 1;
        else if (!strcmp(argv[i], "--mae"))
            mae = 1;
        else if (!strcmp(argv[i], "--cpu-clock"))
            g_cpu_clock = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            only_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--grads") && i + 1 < argc && argv[i + 1][0] &&
                 strspn(argv[i + 1], "xw") == strlen(argv[i + 1])) {
            g_grad_x = strchr(argv[i + 1], 'x') != NULL;
            g_grad_w = strchr(argv[i + 1], 'w') != NULL;
            i++;
        } else {
            fprintf(stderr,
                    "usage: %s [--quick] [--threads N] [--fmnist] [--only TEXT] "
                    "[--grads xw|x|w] [--bf16] [--mae] [--cpu-clock]\n",
                    argv[0]);
            return 2;
        }
    }
    int64_t batch = quick ? 16 : fmnist ? 256 : 64;
    const layer_t *set = fmnist ? layers_fmnist : layers;
    size_t nset = fmnist ? sizeof layers_fmnist / sizeof layers_fmnist[0]
                         : sizeof layers / sizeof layers[0];
    g_reps = quick ? 3 : 7;
    ssl_ctx_t *ctx = ssl_ctx_create((size_t)256 << 20);
    die_if(!ctx, "ssl_ctx_create");
    static const int64_t mm[][3] = {
        {256, 512, 2048}, {2048, 512, 256}, {4096, 384, 1536}, {512, 2048, 128}};
    printf("bench_ops: median of %d repetitions (after 1 warm-up), %s; conv batch %lld\n",
           g_reps, g_cpu_clock ? "CPU time" : "wall clock", (long long)batch);
    printf("conv fwd+bwd counts the forward flops once per product (forward, dx, dw)\n");
    printf("%s, kernels for %s\n", openblas_get_config(), openblas_get_corename());
    /* OpenBLAS 0.3.21 does not know newer Xeons (e.g. model 207) and falls back to its SSE3
     * Prescott kernels, several times slower; OPENBLAS_CORETYPE=SkylakeX (or CooperLake)
     * selects the AVX-512 ones. It is read when the library loads, so only the environment
     * can set it. */
    if (!getenv("OPENBLAS_CORETYPE") && !strcmp(openblas_get_corename(), "Prescott") &&
        __builtin_cpu_supports("avx512f"))
        printf("WARNING: AVX-512 CPU but OpenBLAS uses Prescott kernels: run with "
               "OPENBLAS_CORETYPE=SkylakeX\n");
    /* With the pthreads OpenBLAS, libgomp's idle threads spin (by default) while OpenBLAS's
     * threads want the same cores: ops that alternate OpenMP loops and gemm (conv2d) lose up
     * to 10x on 2 threads. Passive waiting, or the OpenMP build of OpenBLAS, avoids it. */
    if (openblas_get_parallel() == 1 && !getenv("OMP_WAIT_POLICY"))
        printf("WARNING: pthreads OpenBLAS with spinning OpenMP threads: set "
               "OMP_WAIT_POLICY=passive (or link the OpenMP OpenBLAS)\n");
    for (int threads = 1; threads <= 2; threads++) {
        if (only_threads > 0 && threads != only_threads)
            continue;
        ssl_set_num_threads(threads);
        if (mae) {
            printf("\n== %d thread%s ==\n", threads, threads > 1 ? "s" : "");
            bench_mae(ctx, only);
            continue;
        }
        if (bf16) {
            printf("\n== %d thread%s ==\n", threads, threads > 1 ? "s" : "");
            bench_bf16(ctx, set, nset, batch, only);
            continue;
        }
        double peak = bench_sgemm_peak(2048);
        printf("\n== %d thread%s ==\n", threads, threads > 1 ? "s" : "");
        printf("%-34s %9.1f GFLOP/s  (peak reference)\n", "openblas sgemm n=2048", peak);
        for (size_t i = 0; i < sizeof mm / sizeof mm[0]; i++) {
            char name[64];
            snprintf(name, sizeof name, "ssl_matmul %lldx%lldx%lld (MxKxN)", (long long)mm[i][0],
                     (long long)mm[i][1], (long long)mm[i][2]);
            double g = bench_matmul(ctx, mm[i][0], mm[i][1], mm[i][2]);
            printf("%-34s %9.1f GFLOP/s  %5.1f%%\n", name, g, 100.0 * g / peak);
        }
        printf("%-34s %9s %7s %9s %7s %8s %8s\n", "conv2d (GFLOP/s)", "fwd", "%peak", "fwd+bwd",
               "%peak", "fwd ms", "f+b ms");
        for (size_t i = 0; i < nset; i++) {
            double f, fb, ms_f, ms_fb;
            if (only && !strstr(set[i].name, only))
                continue;
            if (!g_grad_w && !strncmp(set[i].name, "stem", 4))
                continue; /* no gradient to compute */
            bench_conv(ctx, &set[i], batch, &f, &fb, &ms_f, &ms_fb);
            printf("%-34s %9.1f %6.1f%% %9.1f %6.1f%% %8.2f %8.2f\n", set[i].name, f,
                   100.0 * f / peak, fb, 100.0 * fb / peak, ms_f, ms_fb - ms_f);
        }
    }
    ssl_ctx_free(ctx);
    return 0;
}
