/* conv2d, max_pool2d, avg_pool2d, global_avg_pool: forward and backward against plain
 * direct-loop references, central-difference gradient checks, determinism across thread
 * counts, and error paths. */
#include "testutil.h"

#include "core/core_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- plain references */

static int64_t out_size(int64_t in, int64_t k, int64_t stride, int64_t pad)
{
    return (in + 2 * pad - k) / stride + 1;
}

/* y (N, OC, OH, OW) by the 7 nested loops of the definition, accumulated in double. */
static void ref_conv2d(const ssl_tensor_t *x, const ssl_tensor_t *w, const ssl_tensor_t *b,
                       int64_t s, int64_t p, float *y)
{
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t OC = w->shape[0], KH = w->shape[2], KW = w->shape[3];
    int64_t OH = out_size(H, KH, s, p), OW = out_size(W, KW, s, p);
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++)
            for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox++) {
                    double acc = b ? b->data[o] : 0.0;
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t ky = 0; ky < KH; ky++)
                            for (int64_t kx = 0; kx < KW; kx++) {
                                int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                acc += (double)x->data[((n * C + c) * H + iy) * W + ix] *
                                       (double)w->data[((o * C + c) * KH + ky) * KW + kx];
                            }
                    y[((n * OC + o) * OH + oy) * OW + ox] = (float)acc;
                }
}

/* The adjoint of ref_conv2d for upstream gradient g: dx, dw, db overwritten (db may be NULL). */
static void ref_conv2d_backward(const ssl_tensor_t *x, const ssl_tensor_t *w, int64_t s, int64_t p,
                                const float *g, float *dx, float *dw, float *db)
{
    int64_t N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t OC = w->shape[0], KH = w->shape[2], KW = w->shape[3];
    int64_t OH = out_size(H, KH, s, p), OW = out_size(W, KW, s, p);
    double *ax = calloc((size_t)x->numel, sizeof(double));
    double *aw = calloc((size_t)w->numel, sizeof(double));
    double *ab = calloc((size_t)OC, sizeof(double));
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++)
            for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox++) {
                    double gv = g[((n * OC + o) * OH + oy) * OW + ox];
                    ab[o] += gv;
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t ky = 0; ky < KH; ky++)
                            for (int64_t kx = 0; kx < KW; kx++) {
                                int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                                    continue;
                                int64_t xi = ((n * C + c) * H + iy) * W + ix;
                                int64_t wi = ((o * C + c) * KH + ky) * KW + kx;
                                ax[xi] += gv * w->data[wi];
                                aw[wi] += gv * x->data[xi];
                            }
                }
    for (int64_t i = 0; i < x->numel; i++)
        dx[i] = (float)ax[i];
    for (int64_t i = 0; i < w->numel; i++)
        dw[i] = (float)aw[i];
    if (db)
        for (int64_t i = 0; i < OC; i++)
            db[i] = (float)ab[i];
    free(ax);
    free(aw);
    free(ab);
}

/* Max pooling with padding as -inf and the first maximum winning; arg gets the flat input
 * index of each output's maximum (for the backward reference). */
static void ref_max_pool(const ssl_tensor_t *x, int64_t k, int64_t s, int64_t p, float *y,
                         int64_t *arg)
{
    int64_t P = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t OH = out_size(H, k, s, p), OW = out_size(W, k, s, p);
    for (int64_t pl = 0; pl < P; pl++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++) {
                float best = -INFINITY;
                int64_t bi = -1;
                for (int64_t ky = 0; ky < k; ky++)
                    for (int64_t kx = 0; kx < k; kx++) {
                        int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                            continue;
                        float v = x->data[(pl * H + iy) * W + ix];
                        if (bi < 0 || v > best) {
                            best = v;
                            bi = (pl * H + iy) * W + ix;
                        }
                    }
                int64_t o = (pl * OH + oy) * OW + ox;
                y[o] = best;
                arg[o] = bi;
            }
}

/* Average pooling, count_include_pad: every window divides by k * k. */
static void ref_avg_pool(const ssl_tensor_t *x, int64_t k, int64_t s, int64_t p, float *y)
{
    int64_t P = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t OH = out_size(H, k, s, p), OW = out_size(W, k, s, p);
    for (int64_t pl = 0; pl < P; pl++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++) {
                double acc = 0;
                for (int64_t ky = 0; ky < k; ky++)
                    for (int64_t kx = 0; kx < k; kx++) {
                        int64_t iy = oy * s - p + ky, ix = ox * s - p + kx;
                        if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                            acc += x->data[(pl * H + iy) * W + ix];
                    }
                y[(pl * OH + oy) * OW + ox] = (float)(acc / (double)(k * k));
            }
}

/* Values that are a shuffled grid with spacing `gap`: no ties and no near ties, so a max
 * pooling gradient check never crosses a kink. */
static ssl_tensor_t *rand_distinct(ssl_ctx_t *ctx, int ndim, const int64_t *shape, uint64_t seed,
                                   float gap)
{
    ssl_tensor_t *t = ssl_tensor_new(ctx, ndim, shape);
    assert_non_null(t);
    for (int64_t i = 0; i < t->numel; i++)
        t->data[i] = gap * (float)(i - t->numel / 2);
    for (int64_t i = t->numel - 1; i > 0; i--) {
        int64_t j = ssl_rng_u32(seed, 5, (uint64_t)i) % (uint64_t)(i + 1);
        float tmp = t->data[i];
        t->data[i] = t->data[j];
        t->data[j] = tmp;
    }
    t->requires_grad = 1;
    return t;
}

/* ---------------------------------------------------------------- conv2d */

typedef struct conv_case {
    int64_t n, c, h, w, oc, kh, kw;
    int stride, pad, bias;
} conv_case_t;

/* 1x1 (direct and through im2col), 3x3 s1 p1, 3x3 s2 p1, 7x7 s2 p3, non-square inputs and
 * kernels, C = 1, N > 1, bias on and off, and sizes large enough for the parallel loops. */
// clang-format off
static const conv_case_t conv_cases[] = {
    {2, 5, 6, 7, 4, 1, 1, 1, 0, 1},   /* 1x1 s1 p0 */
    {2, 5, 6, 7, 4, 1, 1, 1, 0, 0},
    {2, 3, 7, 6, 4, 1, 1, 2, 0, 1},   /* 1x1 stride 2: im2col */
    {1, 3, 5, 5, 2, 1, 1, 1, 1, 0},   /* 1x1 with padding */
    {2, 3, 8, 8, 6, 3, 3, 1, 1, 1},   /* 3x3 s1 p1 */
    {3, 4, 9, 7, 5, 3, 3, 2, 1, 0},   /* 3x3 s2 p1, odd non-square */
    {3, 4, 9, 7, 5, 3, 3, 2, 1, 1},
    {1, 3, 15, 13, 5, 7, 7, 2, 3, 1}, /* 7x7 s2 p3 stem */
    {2, 1, 5, 6, 3, 3, 3, 1, 0, 1},   /* C = 1 */
    {1, 1, 4, 9, 1, 2, 3, 1, 0, 0},   /* non-square kernel, OC = 1 */
    {2, 2, 8, 10, 3, 2, 3, 3, 1, 1},  /* stride 3 */
    {2, 3, 4, 4, 2, 4, 4, 1, 0, 0},   /* kernel = input: 1x1 output */
    {2, 16, 20, 18, 8, 3, 3, 1, 1, 1},/* parallel im2col / col2im */
    {2, 32, 12, 12, 16, 1, 1, 1, 0, 1},/* parallel 1x1 */
    {5, 3, 6, 6, 4, 3, 3, 1, 1, 1},   /* N = 5: uneven chunks of images */
    {7, 8, 4, 4, 16, 3, 3, 2, 1, 0},  /* tiny maps, many images per GEMM */
    /* 3x3 stride 1 with >= 8 channels in and out and outputs >= 4 wide: Winograd F(2x2, 3x3) */
    {3, 8, 7, 9, 8, 3, 3, 1, 1, 1},   /* odd output sizes: partial edge tiles */
    {2, 8, 5, 9, 12, 3, 3, 1, 0, 0},  /* padding 0 (input gradient at padding 2) */
    {2, 9, 5, 6, 8, 3, 3, 1, 2, 1},   /* padding 2 */
    {5, 12, 3, 6, 10, 3, 3, 1, 1, 0}, /* N = 5 */
    {1, 8, 2, 6, 8, 3, 3, 1, 1, 1},   /* one row of tiles */
    {5, 12, 4, 4, 10, 3, 3, 1, 1, 0}, /* 4x4 maps, N = 5 */
    /* narrower maps: im2col with index tables (one vector holds a 3x3 plane) */
    {1, 8, 3, 3, 8, 3, 3, 1, 1, 1},
    {2, 8, 6, 5, 12, 3, 3, 1, 0, 0},  /* padding 0: 4x3 outputs */
    /* larger maps for the direct kernel */
    {2, 8, 14, 15, 8, 3, 3, 1, 1, 1},
    {1, 4, 16, 16, 20, 3, 3, 1, 1, 0},  /* OC = 20: partial channel blocks */
    {2, 3, 15, 14, 17, 3, 3, 1, 0, 1},  /* padding 0 */
    {2, 64, 6, 7, 8, 3, 3, 1, 1, 1},    /* 64 channels on a small map: weight gradient by GEMM */
    {1, 64, 12, 13, 64, 3, 3, 1, 1, 1}, /* 64 -> 64 at 12x13: Winograd by default */
    /* 3x3 stride 2 with outputs >= 7 wide (forward: the direct kernel on four phase planes):
     * paddings 0, 2 and 1, odd and even widths */
    {2, 5, 9, 15, 6, 3, 3, 2, 0, 1},
    {2, 4, 6, 12, 5, 3, 3, 2, 2, 0},
    {3, 6, 14, 14, 20, 3, 3, 2, 1, 1},
    {1, 3, 11, 13, 4, 3, 3, 2, 1, 1},
    {1, 2, 5, 37, 3, 3, 3, 2, 1, 1},    /* rows over 32 wide: the phase split in two pieces */
    {1, 2, 4, 34, 3, 3, 3, 2, 2, 0},
    /* stride 1 on maps up to 7 wide with 32+ output channels (multiples of 16): output
     * channels in the vector lanes, blocks of 7 x 3, 7 x 2 and 6 x 4 channel vectors, input
     * channels in passes of 8, partial last position blocks */
    {2, 24, 7, 7, 48, 3, 3, 1, 1, 1},
    {3, 13, 5, 6, 32, 3, 3, 1, 1, 0},   /* 13 channels in: a short last pass */
    {2, 40, 4, 4, 64, 3, 3, 1, 1, 1},
    {1, 72, 3, 7, 80, 3, 3, 1, 1, 0},   /* 72 channels in: the direct kernel up to 128 here */
    {2, 96, 4, 4, 128, 3, 3, 1, 1, 1},
    {2, 16, 5, 5, 32, 3, 3, 1, 2, 0},   /* padding 2: 7x7 outputs */
    {9, 32, 4, 4, 32, 3, 3, 1, 1, 0},   /* weight gradient in chunks of 8 images, then 1 */
    /* outputs 8-14 wide: only the weight gradient has channels in the lanes */
    {5, 12, 10, 11, 32, 3, 3, 1, 1, 1}, /* chunks of 2, 2, 1 images */
    {3, 8, 19, 20, 48, 3, 3, 2, 1, 0},  /* stride 2, 10x10 outputs */
    /* stride 2, padding 1, 32+ input channels (multiples of 16) on inputs up to 14 wide: the
     * input gradient by parity of position with channels in the lanes */
    {2, 32, 13, 14, 48, 3, 3, 2, 1, 1},
    {3, 64, 7, 7, 32, 3, 3, 2, 1, 0},
    {2, 48, 8, 6, 16, 3, 3, 2, 1, 1},
    {2, 16, 28, 27, 32, 3, 3, 2, 1, 1}, /* 16 channels: blocks of 14 positions x 1 vector */
    {1, 32, 20, 22, 16, 3, 3, 2, 1, 0}, /* 32 channels up to 28 wide */
    /* ... and at stride 2 (the forward and the weight gradient) */
    {2, 24, 13, 14, 48, 3, 3, 2, 1, 1},
    {2, 72, 7, 8, 64, 3, 3, 2, 1, 0},
    {3, 13, 11, 12, 32, 3, 3, 2, 0, 1},
    /* stride 1, padding 1, 32-128 channels (multiples of 16) on maps up to 8 wide: Winograd
     * F(4x4, 3x3) with channels in the lanes in chunks of images (one tile per 4x4 map,
     * partial tiles elsewhere) */
    {3, 32, 7, 7, 48, 3, 3, 1, 1, 1},
    {5, 64, 5, 6, 32, 3, 3, 1, 1, 0},   /* N = 5: chunks of 2, 2, 1 images in mode 5 */
    {2, 128, 8, 8, 128, 3, 3, 1, 1, 1},
    {1, 32, 3, 3, 32, 3, 3, 1, 1, 1},
    /* ... and on wider maps with 16-64 channels, one image at a time (tiles per image a
     * multiple of 7 or 8: 7x7 tiles on 28x28, 4x4 on 13x14 to 16x16) */
    {2, 16, 28, 28, 16, 3, 3, 1, 1, 1},
    {1, 16, 13, 14, 48, 3, 3, 1, 1, 0}, /* 48 outputs: blocks of 2 vectors, then 1 */
    {3, 48, 16, 16, 32, 3, 3, 1, 1, 1},
    {2, 32, 14, 14, 32, 3, 3, 1, 1, 0},
    /* ... in chunks of images beyond 8 wide or 128 channels */
    {2, 96, 9, 10, 128, 3, 3, 1, 1, 1},
    {1, 256, 4, 4, 160, 3, 3, 1, 1, 0}
};
// clang-format on
#define N_CONV_CASES (int)(sizeof conv_cases / sizeof conv_cases[0])

typedef struct conv_user {
    int stride, pad;
} conv_user_t;

static ssl_tensor_t *build_conv(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    conv_user_t *u = user;
    return ssl_conv2d(ctx, in[0], in[1], in[2], u->stride, u->pad);
}

static void make_conv_inputs(ssl_ctx_t *ctx, const conv_case_t *c, uint64_t seed, ssl_tensor_t **in)
{
    in[0] = tu_rand(ctx, 4, (int64_t[]){c->n, c->c, c->h, c->w}, seed, -1, 1, 1);
    in[1] = tu_rand(ctx, 4, (int64_t[]){c->oc, c->c, c->kh, c->kw}, seed + 1, -1, 1, 1);
    in[2] = c->bias ? tu_rand(ctx, 1, (int64_t[]){c->oc}, seed + 2, -1, 1, 1) : NULL;
}

/* Mode 0: the defaults (3x3 stride-1 convolutions with <= 64 input channels take the direct
 * kernel). Modes 1 and 2 turn the direct kernel off (Winograd for 3x3 stride 1 with >= 8
 * channels) with one and two images per GEMM chunk (chunks of 2, 2, 1 for N = 5), mode 2 also
 * the index-table (gather) paths of im2col and Winograd's transforms; mode 3 turns
 * Winograd off too, so the im2col path runs every case; mode 4 is the direct kernel with its
 * weight gradient one image per chunk (mode 0: all of a thread's images in one chunk) and
 * positions in the vector lanes on the maps where mode 0 puts output channels there.
 * Mode 5 is the defaults with Winograd F(4x4)'s chunks at two images; modes 1-4 turn that
 * kernel off, so the others run its shapes. */
#define N_CHUNK_MODES 6
/* 4x4 output tiles of a stride-1 padding-1 layer (Winograd F(4x4)) */
static int64_t tiles4(const conv_case_t *c)
{
    return ((c->h + 3) / 4) * ((c->w + 3) / 4);
}

/* Winograd F(4x4, 3x3)'s transforms (coefficients up to 8 and 1/24) round to about 2e-5 of the
 * values' scale in float, the other kernels to about 1e-6: the absolute tolerance has a part
 * proportional to the reference's root mean square (a wrong tap or channel is off by about that
 * scale). */
static double conv_atol(const float *ref, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += (double)ref[i] * ref[i];
    return 5e-5 * sqrt(s / (double)(n ? n : 1));
}
static void set_chunk_mode(const conv_case_t *c, int mode)
{
    int64_t oh = out_size(c->h, c->kh, c->stride, c->pad), ow = out_size(c->w, c->kw, c->stride, c->pad);
    int64_t per = (c->c * c->kh * c->kw + c->oc) * oh * ow;
    int64_t tiles = ((oh + 1) / 2) * ((ow + 1) / 2);
    int m = mode >= 3 ? 0 : mode;
    ssl__conv_chunk_floats = m == 0 ? (int64_t)1 << 20 : m * per;
    ssl__wino_chunk_floats = m == 0 ? (int64_t)1 << 19 : m * 16 * (c->c + c->oc) * tiles;
    ssl__conv_winograd = mode != 3;
    ssl__conv_direct = mode == 0 || mode == 4;
    ssl__conv_vec_tables = mode != 2;
    ssl__direct_dw_chunk_floats = mode == 4 ? 1 : (int64_t)1 << 16;
    ssl__conv_cl = mode != 4;
    ssl__conv_wino4 = mode == 0 || mode == 5;
    ssl__wino4_chunk_floats = mode == 5 ? 2 * 36 * tiles4(c) * (c->c + c->oc) : (int64_t)1 << 20;
}

static void restore_conv_defaults(void)
{
    ssl__conv_chunk_floats = (int64_t)1 << 20;
    ssl__wino_chunk_floats = (int64_t)1 << 19;
    ssl__conv_winograd = 1;
    ssl__conv_direct = 1;
    ssl__conv_vec_tables = 1;
    ssl__direct_dw_chunk_floats = (int64_t)1 << 16;
    ssl__conv_cl = 1;
    ssl__conv_wino4 = 1;
    ssl__wino4_chunk_floats = (int64_t)1 << 20;
}

static void test_conv_forward_vs_reference(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int i = 0; i < N_CONV_CASES * N_CHUNK_MODES; i++) {
        const conv_case_t *c = &conv_cases[i % N_CONV_CASES];
        set_chunk_mode(c, i / N_CONV_CASES);
        ssl_tensor_t *in[3];
        make_conv_inputs(ctx, c, 100 + (uint64_t)i, in);
        ssl_tensor_t *y = ssl_conv2d(ctx, in[0], in[1], in[2], c->stride, c->pad);
        assert_non_null(y);
        int64_t oh = out_size(c->h, c->kh, c->stride, c->pad);
        int64_t ow = out_size(c->w, c->kw, c->stride, c->pad);
        assert_int_equal(y->ndim, 4);
        assert_int_equal(y->shape[0], c->n);
        assert_int_equal(y->shape[1], c->oc);
        assert_int_equal(y->shape[2], oh);
        assert_int_equal(y->shape[3], ow);
        float *ref = malloc((size_t)y->numel * sizeof(float));
        ref_conv2d(in[0], in[1], in[2], c->stride, c->pad, ref);
        tu_assert_close(y->data, ref, y->numel, 1e-4 + conv_atol(ref, y->numel), 1e-4);
        free(ref);
        ssl_ctx_reset(ctx);
    }
    restore_conv_defaults();
    ssl_ctx_free(ctx);
}

/* Backward of y = conv(in) with upstream g (k times in all, so the gradients hold k times the
 * adjoint loops' result) and the inputs' gradients checked against that. */
static void backward_vs_reference(ssl_ctx_t *ctx, const conv_case_t *c, ssl_tensor_t **in,
                                  ssl_tensor_t *y, const float *g, int k)
{
    float *dx = malloc((size_t)in[0]->numel * sizeof(float));
    float *dw = malloc((size_t)in[1]->numel * sizeof(float));
    float db[256];
    assert_true(dx && dw && c->oc <= 256);
    ref_conv2d_backward(in[0], in[1], c->stride, c->pad, g, dx, dw, c->bias ? db : NULL);
    for (int64_t j = 0; j < in[0]->numel; j++)
        dx[j] *= (float)k;
    for (int64_t j = 0; j < in[1]->numel; j++)
        dw[j] *= (float)k;
    for (int64_t j = 0; c->bias && j < c->oc; j++)
        db[j] *= (float)k;
    assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
    tu_assert_close(in[0]->grad, dx, in[0]->numel, 1e-4 * k + conv_atol(dx, in[0]->numel), 1e-4);
    tu_assert_close(in[1]->grad, dw, in[1]->numel, 1e-4 * k + conv_atol(dw, in[1]->numel), 1e-4);
    if (c->bias)
        tu_assert_close(in[2]->grad, db, c->oc, 1e-4 * k, 1e-4);
    free(dx);
    free(dw);
}

/* Every case's gradients against the adjoint loops, then a second backward that must add the
 * same amount again (accumulation, and the reused column buffer is not stale). */
static void test_conv_backward_vs_reference(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int i = 0; i < N_CONV_CASES * N_CHUNK_MODES; i++) {
        const conv_case_t *c = &conv_cases[i % N_CONV_CASES];
        set_chunk_mode(c, i / N_CONV_CASES);
        ssl_tensor_t *in[3];
        make_conv_inputs(ctx, c, 200 + (uint64_t)i, in);
        ssl_tensor_t *y = ssl_conv2d(ctx, in[0], in[1], in[2], c->stride, c->pad);
        assert_non_null(y);
        float *g = malloc((size_t)y->numel * sizeof(float));
        ssl_rng_fill_uniform(g, (size_t)y->numel, -1, 1, 300 + (uint64_t)i, 0, 0);
        backward_vs_reference(ctx, c, in, y, g, 1);
        backward_vs_reference(ctx, c, in, y, g, 2);
        free(g);
        ssl_ctx_reset(ctx);
    }
    restore_conv_defaults();
    ssl_ctx_free(ctx);
}

/* The input gradient stored into a fresh buffer or added to another consumer's gradient, on
 * every path (direct, Winograd, im2col with one and several images per chunk). */
static void test_conv_grad_adds(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    /* 1x1 stride 2, 3x3 stride 1 (small; 20x18), 3x3 stride 2, Winograd cases with odd sizes
     * and padding 0, 4x4 maps (Winograd), 3x3 maps (im2col's index tables), 64 channels on 6x7
     * (direct input gradient, GEMM weight gradient) and on 12x13 (Winograd), 3x3 stride 2 with
     * padding 2 */
    const int picks[] = {2, 4, 5, 12, 16, 17, 21, 22, 27, 28, 30};
    for (int mode = 0; mode < N_CHUNK_MODES; mode++)
        for (size_t p = 0; p < sizeof picks / sizeof picks[0]; p++) {
            const conv_case_t *c = &conv_cases[picks[p] % N_CONV_CASES];
            set_chunk_mode(c, mode);
            ssl_tensor_t *in[3];
            make_conv_inputs(ctx, c, 500 + (uint64_t)(mode * 10) + p, in);
            conv_user_t u = {c->stride, c->pad};
            tu_check_grad_adds(ctx, build_conv, &u, in, 3, 600 + (uint64_t)p);
            ssl_ctx_reset(ctx);
        }
    restore_conv_defaults();
    ssl_ctx_free(ctx);
}

/* The direct weight gradient on one thread in chunks of 4 images over N = 7: the last chunk (3
 * images of 3x3, planes of 25 positions) is shorter than the slots its thread filled before,
 * and its last vector (positions 64..79) reaches into the 4th slot (75..), whose stale dy from
 * the first chunk must not count. */
static void test_conv_direct_dw_short_chunk(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const conv_case_t c = {7, 3, 3, 3, 20, 3, 3, 1, 1, 1};
    int64_t ocb = (c.oc + 15) / 16 * 16, plane = (c.h + 2 * c.pad) * (c.w + 2 * c.pad);
    ssl_set_num_threads(1);
    ssl__direct_dw_chunk_floats = 4 * (c.c + ocb) * plane;
    ssl_tensor_t *in[3];
    make_conv_inputs(ctx, &c, 77, in);
    ssl_tensor_t *y = ssl_conv2d(ctx, in[0], in[1], in[2], c.stride, c.pad);
    float *g = malloc((size_t)y->numel * sizeof(float));
    ssl_rng_fill_uniform(g, (size_t)y->numel, -1, 1, 78, 0, 0);
    backward_vs_reference(ctx, &c, in, y, g, 1);
    free(g);
    ssl_set_num_threads(0);
    restore_conv_defaults();
    ssl_ctx_free(ctx);
}

/* Chunks for the threads: never above the cap, at least one per thread when there are enough
 * items, and the last chunk short by at most one item per chunk (121/121/14 was the bug). */
static void test_balanced_chunk(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 2; threads++) {
        ssl_set_num_threads(threads);
        for (int64_t n = 1; n <= 300; n += 7)
            for (int64_t cap = 1; cap <= 130; cap += 3) {
                int64_t nb = ssl__balanced_chunk(n, cap);
                int64_t chunks = (n + nb - 1) / nb, last = n - (chunks - 1) * nb;
                assert_true(nb >= 1 && nb <= cap);
                assert_true(last >= 1 && nb - last <= chunks); /* equal to within rounding */
                if (n >= threads)                              /* every thread gets a chunk */
                    assert_true(chunks >= threads);
            }
        assert_int_equal(ssl__balanced_chunk(256, 121), threads == 2 ? 64 : 86);
    }
    ssl_set_num_threads(0);
}

/* Gradients reach only the inputs that ask for them (frozen weight, input without grad). */
static void test_conv_partial_grads(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const conv_case_t c = {2, 3, 6, 5, 4, 3, 3, 2, 1, 1};
    for (int which = 0; which < 2; which++) {
        ssl_tensor_t *in[3];
        make_conv_inputs(ctx, &c, 7, in);
        in[which]->requires_grad = 0;
        ssl_tensor_t *y = ssl_conv2d(ctx, in[0], in[1], in[2], c.stride, c.pad);
        float *g = malloc((size_t)y->numel * sizeof(float));
        ssl_rng_fill_uniform(g, (size_t)y->numel, -1, 1, 8, 0, 0);
        float dx[2 * 3 * 6 * 5], dw[4 * 3 * 3 * 3], db[4];
        ref_conv2d_backward(in[0], in[1], c.stride, c.pad, g, dx, dw, db);
        assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
        assert_null(in[which]->grad);
        if (which == 0)
            tu_assert_close(in[1]->grad, dw, in[1]->numel, 1e-4, 1e-4);
        else
            tu_assert_close(in[0]->grad, dx, in[0]->numel, 1e-4, 1e-4);
        tu_assert_close(in[2]->grad, db, 4, 1e-4, 1e-4);
        free(g);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static void test_conv_gradcheck(void **state)
{
    (void)state;
    /* conv is linear in each input, so a large step is exact up to float rounding (and keeps
     * Winograd F(4x4)'s rounding, ~2e-5 of the values' scale, small against the difference) */
    const tu_gradcheck_opts_t opts = {0.25, 1e-3, 1e-2, 256};
    const conv_case_t cases[] = {
        {2, 3, 5, 5, 2, 3, 3, 1, 1, 1},   /* 3x3 s1 p1 */
        {2, 2, 6, 5, 3, 3, 3, 2, 1, 1},   /* 3x3 s2 p1 */
        {2, 3, 4, 3, 2, 1, 1, 1, 0, 1},   /* 1x1 direct */
        {1, 2, 5, 4, 2, 1, 1, 2, 0, 0},   /* 1x1 stride 2 */
        {1, 2, 5, 6, 2, 2, 3, 2, 1, 1},   /* non-square kernel */
        {1, 1, 7, 7, 2, 7, 7, 2, 3, 1},   /* 7x7 s2 p3, C = 1 */
        {2, 8, 5, 6, 8, 3, 3, 1, 1, 1},   /* Winograd (direct off below), partial tiles */
        {1, 8, 4, 8, 9, 3, 3, 1, 0, 0},   /* Winograd, padding 0 */
        {2, 8, 3, 3, 8, 3, 3, 1, 1, 1},   /* im2col's index tables (3x3 maps) */
        {2, 8, 4, 4, 8, 3, 3, 1, 1, 1},   /* Winograd on 4x4 maps */
        {1, 4, 4, 5, 32, 3, 3, 1, 1, 1},  /* channels in the lanes (direct on below) */
        {1, 4, 9, 9, 32, 3, 3, 2, 1, 0},  /* ... at stride 2 */
        {1, 4, 10, 9, 32, 3, 3, 1, 1, 0}, /* its weight gradient only (9 wide) */
        {1, 32, 6, 5, 4, 3, 3, 2, 1, 1},  /* stride-2 input gradient by parity */
        {1, 16, 9, 10, 4, 3, 3, 2, 1, 0}, /* ... with 16 channels */
        {2, 32, 5, 6, 32, 3, 3, 1, 1, 1}, /* Winograd F(4x4) with channels in the lanes */
    };
    ssl_ctx_t *ctx = tu_ctx();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ssl__conv_direct = cases[i].c < 8; /* 3x3 stride 1 with 8 channels: Winograd or im2col */
        ssl_tensor_t *in[3];
        make_conv_inputs(ctx, &cases[i], 400 + i, in);
        conv_user_t u = {cases[i].stride, cases[i].pad};
        assert_int_equal(tu_gradcheck(ctx, build_conv, &u, in, 3, &opts), 0);
        ssl_ctx_reset(ctx);
    }
    restore_conv_defaults();
    ssl_ctx_free(ctx);
}

/* Forward and backward are bit-identical run to run at a fixed thread count. Between 1 and 2
 * threads only the bias gradient (our own reduction) is bit-identical: OpenBLAS 0.3.21 takes
 * a different kernel for small single-threaded gemms (e.g. 8 x 360 x 144), so the gemm
 * results may differ in the last bits. */
static void conv_deterministic_case(const conv_case_t *cp);
static void test_conv_deterministic(void **state)
{
    (void)state;
    /* the direct kernel, Winograd F(4x4) one image per thread (per-thread weight-gradient
     * partials) and in chunks of images */
    const conv_case_t cases[] = {{3, 16, 20, 18, 8, 3, 3, 1, 1, 1},
                                 {3, 16, 28, 28, 16, 3, 3, 1, 1, 1},
                                 {3, 64, 7, 7, 64, 3, 3, 1, 1, 1}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        conv_deterministic_case(&cases[ci]);
}

static void conv_deterministic_case(const conv_case_t *cp)
{
    const conv_case_t c = *cp;
    float *res[3][4];
    int64_t sz[4];
    int threads[3] = {2, 2, 1};
    ssl_ctx_t *ctx = tu_ctx();
    for (int r = 0; r < 3; r++) {
        ssl_set_num_threads(threads[r]);
        ssl_tensor_t *in[3];
        make_conv_inputs(ctx, &c, 9, in);
        ssl_tensor_t *y = ssl_conv2d(ctx, in[0], in[1], in[2], c.stride, c.pad);
        float *g = malloc((size_t)y->numel * sizeof(float));
        ssl_rng_fill_uniform(g, (size_t)y->numel, -1, 1, 10, 0, 0);
        assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
        free(g);
        const float *src[4] = {y->data, in[0]->grad, in[1]->grad, in[2]->grad};
        int64_t n[4] = {y->numel, in[0]->numel, in[1]->numel, in[2]->numel};
        for (int k = 0; k < 4; k++) {
            sz[k] = n[k];
            res[r][k] = malloc((size_t)n[k] * sizeof(float));
            memcpy(res[r][k], src[k], (size_t)n[k] * sizeof(float));
        }
        ssl_ctx_reset(ctx);
    }
    ssl_set_num_threads(2);
    for (int k = 0; k < 4; k++) {
        assert_memory_equal(res[0][k], res[1][k], (size_t)sz[k] * sizeof(float));
        if (k == 3)
            assert_memory_equal(res[0][k], res[2][k], (size_t)sz[k] * sizeof(float));
        else
            tu_assert_close(res[0][k], res[2][k], sz[k], 1e-5, 1e-5);
        for (int r = 0; r < 3; r++)
            free(res[r][k]);
    }
    ssl_ctx_free(ctx);
}

/* ssl_model_flops(): 2 N OC C KH KW OH OW for the forward, the input gradient and the weight
 * gradient each, whichever kernel runs (Winograd F(4x4) and F(2x2), direct, im2col), and the
 * GEMMs inside a convolution not counted twice */
static void test_conv_model_flops(void **state)
{
    (void)state;
    const conv_case_t cases[] = {
        {2, 32, 8, 8, 32, 3, 3, 1, 1, 1},   /* Winograd F(4x4), chunks */
        {2, 16, 28, 28, 16, 3, 3, 1, 1, 0}, /* Winograd F(4x4), one image per thread */
        {2, 8, 9, 9, 8, 3, 3, 1, 1, 1},     /* direct */
        {2, 3, 9, 7, 5, 3, 3, 2, 1, 0},     /* im2col, stride 2 */
        {1, 8, 12, 13, 12, 3, 3, 1, 0, 1},  /* Winograd F(2x2) (direct off below) */
    };
    ssl_ctx_t *ctx = tu_ctx();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int xgrad = 0; xgrad < 2; xgrad++) {
            const conv_case_t *c = &cases[i];
            ssl__conv_direct = i != 4;
            ssl_tensor_t *in[3];
            make_conv_inputs(ctx, c, 700 + i, in);
            ssl_tensor_set_requires_grad(in[0], xgrad);
            uint64_t f0 = ssl_model_flops();
            ssl_tensor_t *y = ssl_conv2d(ctx, in[0], in[1], in[2], c->stride, c->pad);
            assert_non_null(y);
            uint64_t f1 = ssl_model_flops();
            uint64_t one =
                (uint64_t)(2 * c->n * c->oc * c->c * c->kh * c->kw * y->shape[2] * y->shape[3]);
            assert_int_equal(f1 - f0, one);
            assert_int_equal(ssl_backward(ctx, ssl_sum_all(ctx, y)), SSL_OK);
            assert_int_equal(ssl_model_flops() - f1, (xgrad ? 2 : 1) * one);
            ssl_ctx_reset(ctx);
        }
    restore_conv_defaults();
    ssl_ctx_free(ctx);
}

static void test_conv_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_4d(ctx, 2, 3, 5, 5);
    ssl_tensor_t *w_bad_c = ssl_tensor_4d(ctx, 4, 2, 3, 3);
    tu_assert_error(ssl_conv2d(ctx, x, w_bad_c, NULL, 1, 1), SSL_ERR_SHAPE, "conv2d",
                    "(2, 3, 5, 5)", "(4, 2, 3, 3)", "channels", NULL);
    /* kernel 8x8 against a padded 7x7 input */
    ssl_tensor_t *w_big = ssl_tensor_4d(ctx, 4, 3, 8, 8);
    tu_assert_error(ssl_conv2d(ctx, x, w_big, NULL, 1, 1), SSL_ERR_SHAPE, "(2, 3, 5, 5)",
                    "(4, 3, 8, 8)", "larger", NULL);
    /* only one axis too large */
    ssl_tensor_t *w_tall = ssl_tensor_4d(ctx, 4, 3, 6, 1);
    tu_assert_error(ssl_conv2d(ctx, x, w_tall, NULL, 1, 0), SSL_ERR_SHAPE, "(4, 3, 6, 1)", NULL);
    ssl_tensor_t *w = ssl_tensor_4d(ctx, 4, 3, 3, 3);
    tu_assert_error(ssl_conv2d(ctx, x, w, NULL, 0, 1), SSL_ERR_INVALID, "stride", "(2, 3, 5, 5)",
                    "(4, 3, 3, 3)", NULL);
    tu_assert_error(ssl_conv2d(ctx, x, w, NULL, -2, 1), SSL_ERR_INVALID, "stride", NULL);
    tu_assert_error(ssl_conv2d(ctx, x, w, NULL, 1, -1), SSL_ERR_INVALID, "padding", NULL);
    ssl_tensor_t *b_bad = ssl_tensor_1d(ctx, 5);
    tu_assert_error(ssl_conv2d(ctx, x, w, b_bad, 1, 1), SSL_ERR_SHAPE, "bias", "(5)", NULL);
    ssl_tensor_t *b_2d = ssl_tensor_2d(ctx, 4, 1);
    tu_assert_error(ssl_conv2d(ctx, x, w, b_2d, 1, 1), SSL_ERR_SHAPE, "(4, 1)", NULL);
    ssl_tensor_t *x3 = ssl_tensor_3d(ctx, 3, 5, 5);
    tu_assert_error(ssl_conv2d(ctx, x3, w, NULL, 1, 1), SSL_ERR_SHAPE, "(3, 5, 5)", NULL);
    ssl_tensor_t *w3 = ssl_tensor_3d(ctx, 4, 3, 3);
    tu_assert_error(ssl_conv2d(ctx, x, w3, NULL, 1, 1), SSL_ERR_SHAPE, "(4, 3, 3)", NULL);
    /* a NULL input returns NULL and keeps the first error */
    ssl_set_error(SSL_ERR_NOMEM, "earlier failure");
    assert_null(ssl_conv2d(ctx, NULL, w, NULL, 1, 1));
    assert_null(ssl_conv2d(ctx, x, NULL, NULL, 1, 1));
    assert_int_equal(ssl_last_status(), SSL_ERR_NOMEM);
    assert_string_equal(ssl_last_error(), "earlier failure");
    /* the optional bias may be NULL; an empty batch is a valid (0, OC, OH, OW) result */
    assert_non_null(ssl_conv2d(ctx, x, w, NULL, 2, 0));
    ssl_tensor_t *x0 = ssl_tensor_4d(ctx, 0, 3, 5, 5);
    ssl_tensor_t *y0 = ssl_conv2d(ctx, x0, w, NULL, 2, 1);
    assert_non_null(y0);
    assert_int_equal(y0->shape[0], 0);
    assert_int_equal(y0->shape[1], 4);
    assert_int_equal(y0->shape[2], 3);
    assert_int_equal(y0->shape[3], 3);
    ssl_ctx_free(ctx);
}

/* ---------------------------------------------------------------- pooling */

typedef struct pool_case {
    int64_t n, c, h, w;
    int k, stride, pad;
} pool_case_t;

// clang-format off
static const pool_case_t pool_cases[] = {
    {2, 3, 8, 8, 2, 2, 0},   /* 2x2 s2 */
    {2, 3, 9, 7, 3, 2, 1},   /* ResNet stem pooling, odd non-square */
    {1, 2, 5, 6, 3, 1, 1},   /* overlapping windows */
    {1, 1, 5, 5, 2, 1, 0},
    {2, 2, 10, 11, 3, 3, 0}, /* stride = kernel, leftover columns dropped */
    {1, 2, 4, 4, 4, 1, 2},   /* padding = kernel / 2 */
    {1, 1, 3, 3, 3, 1, 0},   /* kernel = input */
    {2, 8, 32, 30, 3, 2, 1}, /* parallel loops */
};
// clang-format on
#define N_POOL_CASES (int)(sizeof pool_cases / sizeof pool_cases[0])

typedef struct pool_user {
    int k, stride, pad, avg;
} pool_user_t;

static ssl_tensor_t *build_pool(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    pool_user_t *u = user;
    return u->avg ? ssl_avg_pool2d(ctx, in[0], u->k, u->stride, u->pad)
                  : ssl_max_pool2d(ctx, in[0], u->k, u->stride, u->pad);
}

static void test_max_pool_forward_backward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int i = 0; i < N_POOL_CASES; i++) {
        const pool_case_t *c = &pool_cases[i];
        ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){c->n, c->c, c->h, c->w}, 30 + i, -1, 1, 1);
        ssl_tensor_t *y = ssl_max_pool2d(ctx, x, c->k, c->stride, c->pad);
        assert_non_null(y);
        int64_t oh = out_size(c->h, c->k, c->stride, c->pad);
        int64_t ow = out_size(c->w, c->k, c->stride, c->pad);
        assert_int_equal(y->shape[0], c->n);
        assert_int_equal(y->shape[1], c->c);
        assert_int_equal(y->shape[2], oh);
        assert_int_equal(y->shape[3], ow);
        float *ref = malloc((size_t)y->numel * sizeof(float));
        int64_t *arg = malloc((size_t)y->numel * sizeof(int64_t));
        ref_max_pool(x, c->k, c->stride, c->pad, ref, arg);
        assert_memory_equal(y->data, ref, (size_t)y->numel * sizeof(float)); /* exact */
        float *g = malloc((size_t)y->numel * sizeof(float));
        ssl_rng_fill_uniform(g, (size_t)y->numel, -1, 1, 40 + (uint64_t)i, 0, 0);
        float *dx = calloc((size_t)x->numel, sizeof(float));
        for (int64_t o = 0; o < y->numel; o++)
            dx[arg[o]] += g[o];
        assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
        tu_assert_close(x->grad, dx, x->numel, 1e-6, 1e-6);
        free(ref);
        free(arg);
        free(g);
        free(dx);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

/* Padding counts as -inf (an all-negative input never yields 0), ties go to the first element
 * of the window in row-major order, and NaN propagates. */
static void test_max_pool_semantics(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *neg = ssl_tensor_fill(ctx, 4, (int64_t[]){1, 1, 3, 3}, -2.0f);
    neg->data[4] = -1.0f;
    ssl_tensor_t *y = ssl_max_pool2d(ctx, neg, 3, 2, 1); /* 2x2 windows of the padded input */
    assert_non_null(y);
    assert_int_equal(y->numel, 4);
    for (int i = 0; i < 4; i++)
        assert_true(y->data[i] == -1.0f);

    /* all equal: the gradient goes to each window's first element */
    ssl_tensor_t *x = ssl_tensor_fill(ctx, 4, (int64_t[]){1, 1, 4, 4}, 0.5f);
    x->requires_grad = 1;
    y = ssl_max_pool2d(ctx, x, 2, 2, 0);
    float ones[4] = {1, 1, 1, 1};
    assert_int_equal(ssl_backward_with(ctx, y, ones), SSL_OK);
    const float expect[16] = {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0};
    assert_memory_equal(x->grad, expect, sizeof expect);
    /* overlapping windows with padding: ties resolved per window, not per input */
    ssl_tensor_t *x2 = ssl_tensor_fill(ctx, 4, (int64_t[]){1, 1, 2, 3}, 1.0f);
    x2->requires_grad = 1;
    y = ssl_max_pool2d(ctx, x2, 3, 1, 1); /* (1, 1, 2, 3): windows start at (-1, ox - 1) */
    float g6[6] = {1, 2, 3, 4, 5, 6};
    assert_int_equal(ssl_backward_with(ctx, y, g6), SSL_OK);
    /* window (oy, ox) first real element: row 0, col max(ox - 1, 0) */
    const float expect2[6] = {1 + 2 + 4 + 5, 3 + 6, 0, 0, 0, 0};
    assert_memory_equal(x2->grad, expect2, sizeof expect2);

    ssl_tensor_t *xn = ssl_tensor_fill(ctx, 4, (int64_t[]){1, 1, 2, 2}, 1.0f);
    xn->data[2] = NAN;
    y = ssl_max_pool2d(ctx, xn, 2, 2, 0);
    assert_true(isnan(y->data[0]));
    ssl_ctx_free(ctx);
}

static void test_max_pool_gradcheck(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const tu_gradcheck_opts_t opts = {1e-3, 1e-3, 1e-2, 256};
    const pool_case_t cases[] = {
        {2, 2, 6, 5, 3, 2, 1}, {1, 3, 4, 4, 2, 2, 0}, {1, 2, 5, 4, 3, 1, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const pool_case_t *c = &cases[i];
        /* spacing 0.01 >> eps: no perturbation changes which element is the maximum */
        ssl_tensor_t *in[1] = {
            rand_distinct(ctx, 4, (int64_t[]){c->n, c->c, c->h, c->w}, 50 + i, 0.01f)};
        pool_user_t u = {c->k, c->stride, c->pad, 0};
        assert_int_equal(tu_gradcheck(ctx, build_pool, &u, in, 1, &opts), 0);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static void test_avg_pool_forward_backward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int i = 0; i < N_POOL_CASES; i++) {
        const pool_case_t *c = &pool_cases[i];
        ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){c->n, c->c, c->h, c->w}, 60 + i, -1, 1, 1);
        ssl_tensor_t *y = ssl_avg_pool2d(ctx, x, c->k, c->stride, c->pad);
        assert_non_null(y);
        assert_int_equal(y->shape[2], out_size(c->h, c->k, c->stride, c->pad));
        assert_int_equal(y->shape[3], out_size(c->w, c->k, c->stride, c->pad));
        float *ref = malloc((size_t)y->numel * sizeof(float));
        ref_avg_pool(x, c->k, c->stride, c->pad, ref);
        tu_assert_close(y->data, ref, y->numel, 1e-6, 1e-5);
        free(ref);
        ssl_ctx_reset(ctx);
    }
    /* count_include_pad: a 3x3 window at a corner of padded ones holds 4 ones out of 9 */
    ssl_tensor_t *ones = ssl_tensor_fill(ctx, 4, (int64_t[]){1, 1, 3, 3}, 1.0f);
    ones->requires_grad = 1;
    ssl_tensor_t *y = ssl_avg_pool2d(ctx, ones, 3, 1, 1);
    const float expect[9] = {4 / 9.f, 6 / 9.f, 4 / 9.f, 6 / 9.f, 1,
                             6 / 9.f, 4 / 9.f, 6 / 9.f, 4 / 9.f};
    tu_assert_close(y->data, expect, 9, 1e-6, 1e-6);
    /* backward: each input receives 1/9 from every window covering it */
    float g[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
    tu_assert_close(ones->grad, expect, 9, 1e-6, 1e-6);
    ssl_ctx_free(ctx);
}

static void test_avg_pool_gradcheck(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const tu_gradcheck_opts_t opts = {1e-2, 1e-3, 1e-2, 256}; /* linear */
    for (int i = 0; i < N_POOL_CASES - 1; i++) {
        const pool_case_t *c = &pool_cases[i];
        ssl_tensor_t *in[1] = {
            tu_rand(ctx, 4, (int64_t[]){c->n, c->c, c->h, c->w}, 70 + i, -1, 1, 1)};
        pool_user_t u = {c->k, c->stride, c->pad, 1};
        assert_int_equal(tu_gradcheck(ctx, build_pool, &u, in, 1, &opts), 0);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

static ssl_tensor_t *build_gap(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    (void)user;
    return ssl_global_avg_pool(ctx, in[0]);
}

static void test_global_avg_pool(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    const int64_t shapes[3][4] = {{2, 3, 4, 5}, {1, 1, 1, 1}, {4, 64, 9, 7}};
    for (int s = 0; s < 3; s++) {
        const int64_t *sh = shapes[s];
        ssl_tensor_t *x = tu_rand(ctx, 4, sh, 80 + s, -1, 1, 1);
        ssl_tensor_t *y = ssl_global_avg_pool(ctx, x);
        assert_non_null(y);
        assert_int_equal(y->ndim, 2);
        assert_int_equal(y->shape[0], sh[0]);
        assert_int_equal(y->shape[1], sh[1]);
        int64_t hw = sh[2] * sh[3];
        float *ref = malloc((size_t)y->numel * sizeof(float));
        float *dx = malloc((size_t)x->numel * sizeof(float));
        float *g = malloc((size_t)y->numel * sizeof(float));
        ssl_rng_fill_uniform(g, (size_t)y->numel, -1, 1, 90 + (uint64_t)s, 0, 0);
        for (int64_t p = 0; p < y->numel; p++) {
            double acc = 0;
            for (int64_t i = 0; i < hw; i++) {
                acc += x->data[p * hw + i];
                dx[p * hw + i] = g[p] / (float)hw;
            }
            ref[p] = (float)(acc / (double)hw);
        }
        tu_assert_close(y->data, ref, y->numel, 1e-6, 1e-6);
        assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
        tu_assert_close(x->grad, dx, x->numel, 1e-7, 1e-6);
        free(ref);
        free(dx);
        free(g);
        ssl_ctx_reset(ctx);
    }
    const tu_gradcheck_opts_t opts = {1e-2, 1e-3, 1e-2, 256};
    ssl_tensor_t *in[1] = {tu_rand(ctx, 4, (int64_t[]){2, 3, 3, 2}, 95, -1, 1, 1)};
    assert_int_equal(tu_gradcheck(ctx, build_gap, NULL, in, 1, &opts), 0);
    ssl_ctx_free(ctx);
}

static void test_pool_errors(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = ssl_tensor_4d(ctx, 2, 3, 5, 4);
    for (int avg = 0; avg < 2; avg++) {
        ssl_tensor_t *(*pool)(ssl_ctx_t *, ssl_tensor_t *, int, int, int) =
            avg ? ssl_avg_pool2d : ssl_max_pool2d;
        const char *name = avg ? "avg_pool2d" : "max_pool2d";
        tu_assert_error(pool(ctx, x, 0, 1, 0), SSL_ERR_INVALID, name, "(2, 3, 5, 4)", "kernel",
                        NULL);
        tu_assert_error(pool(ctx, x, 2, 0, 0), SSL_ERR_INVALID, "stride", NULL);
        tu_assert_error(pool(ctx, x, 2, 2, -1), SSL_ERR_INVALID, "padding", NULL);
        tu_assert_error(pool(ctx, x, 3, 1, 2), SSL_ERR_INVALID, "padding 2", NULL);
        tu_assert_error(pool(ctx, x, 6, 1, 0), SSL_ERR_SHAPE, "(2, 3, 5, 4)", "larger", NULL);
        tu_assert_error(pool(ctx, x, 5, 1, 0), SSL_ERR_SHAPE, "5x4", NULL); /* width 4 < 5 */
        ssl_tensor_t *x3 = ssl_tensor_3d(ctx, 3, 5, 5);
        tu_assert_error(pool(ctx, x3, 2, 2, 0), SSL_ERR_SHAPE, name, "(3, 5, 5)", NULL);
        ssl_set_error(SSL_ERR_NOMEM, "earlier failure");
        assert_null(pool(ctx, NULL, 2, 2, 0));
        assert_string_equal(ssl_last_error(), "earlier failure");
    }
    tu_assert_error(ssl_global_avg_pool(ctx, ssl_tensor_2d(ctx, 3, 4)), SSL_ERR_SHAPE,
                    "global_avg_pool", "(3, 4)", NULL);
    tu_assert_error(ssl_global_avg_pool(ctx, ssl_tensor_4d(ctx, 2, 3, 0, 4)), SSL_ERR_SHAPE,
                    "(2, 3, 0, 4)", NULL);
    ssl_set_error(SSL_ERR_NOMEM, "earlier failure");
    assert_null(ssl_global_avg_pool(ctx, NULL));
    assert_int_equal(ssl_last_status(), SSL_ERR_NOMEM);
    ssl_ctx_free(ctx);
}

/* Pooling is our own code only: bit-identical between 1 and 2 threads, forward and backward. */
static void test_pool_thread_invariant(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int op = 0; op < 3; op++) {
        float *res[2][2];
        int64_t ny = 0, nx = 0;
        for (int r = 0; r < 2; r++) {
            ssl_set_num_threads(2 - r);
            ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){4, 16, 24, 22}, 11, -1, 1, 1);
            ssl_tensor_t *y = op == 0   ? ssl_max_pool2d(ctx, x, 3, 2, 1)
                              : op == 1 ? ssl_avg_pool2d(ctx, x, 3, 2, 1)
                                        : ssl_global_avg_pool(ctx, x);
            assert_non_null(y);
            float *g = malloc((size_t)y->numel * sizeof(float));
            ssl_rng_fill_uniform(g, (size_t)y->numel, -1, 1, 12, 0, 0);
            assert_int_equal(ssl_backward_with(ctx, y, g), SSL_OK);
            free(g);
            ny = y->numel;
            nx = x->numel;
            res[r][0] = malloc((size_t)ny * sizeof(float));
            res[r][1] = malloc((size_t)nx * sizeof(float));
            memcpy(res[r][0], y->data, (size_t)ny * sizeof(float));
            memcpy(res[r][1], x->grad, (size_t)nx * sizeof(float));
            ssl_ctx_reset(ctx);
        }
        ssl_set_num_threads(2);
        assert_memory_equal(res[0][0], res[1][0], (size_t)ny * sizeof(float));
        assert_memory_equal(res[0][1], res[1][1], (size_t)nx * sizeof(float));
        for (int r = 0; r < 2; r++) {
            free(res[r][0]);
            free(res[r][1]);
        }
    }
    ssl_ctx_free(ctx);
}

/* Inference: no argmax is kept and nothing is recorded, the result is the same. */
static void test_pool_no_grad(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){2, 3, 7, 7}, 3, -1, 1, 1);
    ssl_tensor_t *y1 = ssl_max_pool2d(ctx, x, 3, 2, 1);
    ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *y0 = ssl_max_pool2d(ctx, x, 3, 2, 1);
    ssl_ctx_set_grad(ctx, 1);
    assert_int_equal(ssl_ctx_tape_len(ctx), 1);
    assert_false(y0->requires_grad);
    assert_memory_equal(y0->data, y1->data, (size_t)y1->numel * sizeof(float));
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_forward_vs_reference),
        cmocka_unit_test(test_conv_backward_vs_reference),
        cmocka_unit_test(test_balanced_chunk),
        cmocka_unit_test(test_conv_grad_adds),
        cmocka_unit_test(test_conv_direct_dw_short_chunk),
        cmocka_unit_test(test_conv_partial_grads),
        cmocka_unit_test(test_conv_gradcheck),
        cmocka_unit_test(test_conv_deterministic),
        cmocka_unit_test(test_conv_model_flops),
        cmocka_unit_test(test_conv_errors),
        cmocka_unit_test(test_max_pool_forward_backward),
        cmocka_unit_test(test_max_pool_semantics),
        cmocka_unit_test(test_max_pool_gradcheck),
        cmocka_unit_test(test_avg_pool_forward_backward),
        cmocka_unit_test(test_avg_pool_gradcheck),
        cmocka_unit_test(test_global_avg_pool),
        cmocka_unit_test(test_pool_errors),
        cmocka_unit_test(test_pool_thread_invariant),
        cmocka_unit_test(test_pool_no_grad),
    };
    return cmocka_run_group_tests_name("ops_conv", tests, NULL, NULL);
}
