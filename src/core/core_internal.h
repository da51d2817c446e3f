/* Internal to the core: tape nodes, op records and the helpers every op family uses. */
#ifndef SSL_CORE_INTERNAL_H
#define SSL_CORE_INTERNAL_H

#include "check.h"
#include "ssl/core.h"

#include <stdarg.h>
#include <stdbool.h>

/* ---------------------------------------------------------------- op enum */

typedef enum ssl_op {
#define X(e, n) SSL_OP_##e,
#include "op_list.h"
#undef X
    SSL_OP_COUNT
} ssl_op_t;

/* ---------------------------------------------------------------- tape node */

#define SSL_NODE_INLINE_IN 4

typedef struct ssl_node {
    int op;
    int n_in;
    ssl_tensor_t **in; /* in_buf, or an arena array for ops with many inputs (concat) */
    int in_inline;     /* in points at in_buf (re-pointed when the tape array moves) */
    ssl_tensor_t *in_buf[SSL_NODE_INLINE_IN];
    ssl_tensor_t *out;
    int64_t ia[8]; /* integer attributes (axis, stride, ...) */
    float fa[4];   /* float attributes (eps, p, ...) */
    void *aux[2];  /* op-owned arena memory: copied labels/indices, saved statistics */
} ssl_node_t;

/* One record per op: the shape rule, the forward kernel and the backward kernel. */
typedef struct ssl_op_def {
    const char *name;
    int n_opt; /* the last n_opt inputs may be NULL (bias, affine weights, ...) */
    /* Check inputs and attributes, write the output's rank and shape. On a mismatch return
     * ssl__op_error(n, ...), which names the op and every input shape. */
    int (*shape)(const ssl_node_t *n, int *ndim, int64_t *shape);
    /* Compute n->out->data. May keep state for backward in n->aux (ssl_arena_alloc). */
    int (*forward)(ssl_ctx_t *ctx, ssl_node_t *n);
    /* Accumulate (+=) into the inputs' gradients from n->out->grad. ssl__grad() returns the
     * buffer to add into, or NULL for an input that needs no gradient. */
    void (*backward)(ssl_ctx_t *ctx, ssl_node_t *n);
    int flags; /* SSL_OPF_* */
} ssl_op_def_t;

enum {
    SSL_OPF_ALIAS = 1 << 0 /* output shares input 0's data (reshape): no allocation */
};

#define X(e, n) extern const ssl_op_def_t ssl_opdef_##n;
#include "op_list.h"
#undef X

const ssl_op_def_t *ssl__op_def(int op);

/* ---------------------------------------------------------------- building and running ops */

/* Initialise a node for `op` with n_in inputs given as ssl_tensor_t* varargs. */
void ssl__node_init(ssl_node_t *n, int op, int n_in, ...);
/* Shape check, allocate the output, run forward, record on the tape if needed. Returns the
 * output or NULL (error set). If any input is NULL returns NULL and keeps the earlier error. */
ssl_tensor_t *ssl__apply(ssl_ctx_t *ctx, ssl_node_t *n);
/* Set the last error to "<op>(<shape>, <shape>, ...): <message>"; returns SSL_ERR_SHAPE. */
int ssl__op_error(const ssl_node_t *n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Same, with another status (e.g. SSL_ERR_INVALID for a label out of range). */
int ssl__op_error_status(const ssl_node_t *n, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Gradient buffer of t to accumulate into: allocated zeroed in the arena on first use; NULL
 * when t does not require a gradient. */
float *ssl__grad(ssl_ctx_t *ctx, ssl_tensor_t *t);

/* Zeroing and then adding costs two passes over a buffer that one store would fill. Backward
 * runs in reverse tape order, so when a node runs every other consumer of an input that has no
 * gradient yet runs later (it was recorded earlier) and would only add to it. Two shortcuts:
 *
 * ssl__grad_write: for a kernel that writes every element of t's gradient. If t has no
 * gradient yet it gets a new buffer that is NOT zeroed and *fresh = 1: the kernel stores
 * (dx = v, beta = 0 in a GEMM). Else t's buffer and *fresh = 0: the kernel adds.
 *
 * ssl__grad_take: for an input gradient of the output's size computed element by element
 * from out->grad (reshape, add, scale, gelu, layer_norm rows). If t has no gradient yet it
 * takes over out's gradient buffer, which nothing reads after this node, and *fresh = 1: the
 * kernel transforms it in place (dx[i] = f(g[i]) with dx == g; nothing to do for identity).
 * Else as ssl__grad with *fresh = 0. A node may take at most one buffer from its output (two
 * inputs sharing one buffer would add each other's gradients). After backward, the grad of an
 * intermediate whose buffer was taken holds its input's gradient: only leaves' gradients are
 * meant to be read, as in PyTorch.
 * Both return NULL when t needs no gradient (or memory ran out: the context records it). */
float *ssl__grad_write(ssl_ctx_t *ctx, ssl_tensor_t *t, int *fresh);
float *ssl__grad_take(ssl_ctx_t *ctx, ssl_tensor_t *t, ssl_tensor_t *out, int *fresh);

/* Normalise a possibly negative axis against ndim; -1 if out of range. */
int ssl__axis(int axis, int ndim);
/* Split a shape around `axis` into outer * dim * inner. */
void ssl__outer_dim_inner(const ssl_tensor_t *t, int axis, int64_t *outer, int64_t *dim,
                          int64_t *inner);

/* Deterministic sum: fixed blocks summed in double, then combined in order, so the result
 * does not depend on the number of threads. */
double ssl__sum_f32(const float *x, int64_t n);

/* OpenMP threshold: loops shorter than this run on one thread. */
#define SSL_OMP_MIN 16384

/* Scratch memory of a kernel call: one buffer per context, grown on demand and kept across
 * steps (no malloc in the steady state). Valid until the next ssl__scratch call on the context,
 * so a kernel takes everything it needs in one call. NULL (and the context's out-of-memory flag,
 * which backward reports) when it cannot grow. */
void *ssl__scratch(ssl_ctx_t *ctx, size_t bytes);
size_t ssl__scratch_capacity(const ssl_ctx_t *ctx);

/* conv2d's scratch budget in floats (columns + output block of a chunk of images; default 4 Mi).
 * Tests shrink it to run the chunked paths on small shapes. */
/* The first r of 16 vector lanes (r clamped to 0..16): the mask of a vector loop's tail. */
static inline uint16_t ssl__lanes16(int64_t r)
{
    return r >= 16 ? (uint16_t)0xFFFF : r <= 0 ? (uint16_t)0 : (uint16_t)((1u << r) - 1);
}
extern int64_t ssl__conv_chunk_floats;
/* The AVX-512 index-table paths of im2col / col2im and of Winograd's tile transforms (on by
 * default; off: the scalar loops, which otherwise run only for huge planes and wide stride-1
 * rows; tests compare both against plain loops) */
extern int ssl__conv_vec_tables;

/* The calling thread's index in the current OpenMP team and the team size a region would get
 * (0 and 1 without OpenMP): for per-thread workspaces. */
int ssl__thread_id(void);
int64_t ssl__max_threads(void);
/* OpenMP teams of the size asked for: dynamic adjustment (OMP_DYNAMIC=true) hangs OpenBLAS,
 * which waits for the whole team it asked for, and would leave kernels' per-thread buffers
 * unfilled. Called before every op's kernel (and so before the GEMMs inside it), by ssl__sgemm,
 * the evaluation's BLAS calls and ssl_set_num_threads. */
void ssl__fixed_teams(void);

/* Items per chunk when n items are split into chunks of at most nb_max for the threads of a
 * static OpenMP loop: the number of chunks is rounded up to a multiple of the thread count and
 * the chunks made equal (to within one item), so no thread gets a chunk more than another
 * (3 chunks of 121, 121 and 14 images on 2 threads ran at half speed). */
int64_t ssl__balanced_chunk(int64_t n, int64_t nb_max);
/* The same with the number of chunks a multiple of `multiple` (1: any), for loops whose
 * threads share each chunk. */
int64_t ssl__even_chunk(int64_t n, int64_t nb_max, int64_t multiple);

/* Shapes of a 3x3 stride-1 convolution: input (C, H, W), output (OC, OH, OW), padding. */
typedef struct ssl_conv3_shape {
    int64_t c, h, w, oc, pad, oh, ow;
} ssl_conv3_shape_t;
ssl_conv3_shape_t ssl__conv3_shape(int64_t c, int64_t h, int64_t w, int64_t oc, int64_t pad);

/* 3x3 stride-1 convolutions by Winograd F(2x2, 3x3) (ops_conv_winograd.c), used by conv2d when
 * ssl__conv3x3_winograd_usable() (both channel counts >= 8, padding <= 2) and the switch
 * ssl__conv_winograd is on (tests turn it off to compare with the im2col path). Scratch memory
 * comes in chunks of images of about ssl__wino_chunk_floats. */
extern int ssl__conv_winograd;
extern int64_t ssl__wino_chunk_floats;
int ssl__conv3x3_winograd_usable(int64_t c, int64_t oc, int64_t w, int64_t kh, int64_t kw,
                                 int64_t stride, int64_t pad);
int ssl__conv3x3_winograd_forward(ssl_ctx_t *ctx, const float *x, const float *w,
                                  const float *bias, float *y, int64_t n, int64_t c, int64_t h,
                                  int64_t wd, int64_t oc, int64_t pad);
/* Direct 3x3 convolution for narrow layers (ops_conv_direct.c): stride 1, and the stride-2
 * forward on outputs at least 7 wide; used before Winograd when ssl__conv3x3_direct_usable()
 * and the switch ssl__conv_direct is on. Same contracts. */
extern int ssl__conv_direct;
/* stride-2 layers with fewer than 64 input channels that the direct kernel runs forward also
 * take its weight gradient (on the phase planes); 0: through im2col (tests compare both) */
extern int ssl__conv_direct_s2_dw;
/* Stride-1 layers on maps up to 14 wide with 32+ output channels: the direct kernel with
 * output channels in the vector lanes (0: positions in the lanes; tests compare both). */
extern int ssl__conv_cl;
/* the widest output (default 14) whose weight gradient takes that kernel */
extern int ssl__clw_max_ow;
/* The input gradient of a 3x3 stride-2 layer with padding 1, channels in the lanes (AVX-512;
 * C a multiple of 16, inputs up to 14 wide, or 28 with up to 32 channels): dx (+)= ..., as
 * the direct kernels. */
int ssl__conv3x3_s2_dx_usable(int64_t c, int64_t h, int64_t w, int64_t pad);
int ssl__conv3x3_s2_dx(ssl_ctx_t *ctx, const float *w, const float *dy, float *dx, int dx_add,
                       int64_t n, int64_t c, int64_t h, int64_t wd, int64_t oc);
/* whether a 3x3 layer with these output sizes takes the weight gradient with channels in the
 * lanes (the direct backward decides by the same rule) */
int ssl__conv3x3_cl_dw_usable(int64_t c, int64_t oc, int64_t oh, int64_t ow);
/* Workspace budget (floats per thread) of the direct weight gradient's chunks of images; tests
 * shrink it to one image per chunk. */
extern int64_t ssl__direct_dw_chunk_floats;
int ssl__conv3x3_direct_usable(int64_t c, int64_t oc, int64_t h, int64_t w, int64_t kh,
                               int64_t kw, int64_t stride, int64_t pad);
int ssl__conv3x3_direct_forward(ssl_ctx_t *ctx, const float *x, const float *w, const float *bias,
                                float *y, int64_t n, int64_t c, int64_t h, int64_t wd, int64_t oc,
                                int64_t pad, int stride);
/* stride 1, or stride 2 for the weight gradient only (dx NULL) */
int ssl__conv3x3_direct_backward(ssl_ctx_t *ctx, const float *x, const float *w, const float *dy,
                                 float *dx, int dx_add, float *dw, int64_t n, int64_t c, int64_t h,
                                 int64_t wd, int64_t oc, int64_t pad, int stride);
/* dw (may be NULL) += the weight gradient for upstream dy; dx (may be NULL) = the input
 * gradient, or += it when dx_add (dx then holds other consumers' gradients). */
int ssl__conv3x3_winograd_backward(ssl_ctx_t *ctx, const float *x, const float *w, const float *dy,
                                   float *dx, int dx_add, float *dw, int64_t n, int64_t c,
                                   int64_t h, int64_t wd, int64_t oc, int64_t pad);

/* 3x3 stride-1 convolutions with padding 1 by Winograd F(4x4, 3x3) with channels in the
 * vector lanes (ops_conv_wino4.c; AVX-512): channels in and out multiples of 16 (16-64 on maps
 * wider than 8 whose 4x4 tiles number a multiple of 7 or 8, else 32-512), maps up to 32 wide.
 * Used before the other kernels when usable and the switch ssl__conv_wino4 is on (tests turn
 * it off to compare). Chunks of images of about ssl__wino4_chunk_floats transformed floats
 * (the chunked path). Same contracts as the direct kernels. */
extern int ssl__conv_wino4;
extern int64_t ssl__wino4_chunk_floats;
int ssl__conv3x3_wino4_usable(int64_t c, int64_t oc, int64_t h, int64_t w, int64_t kh, int64_t kw,
                              int64_t stride, int64_t pad);
int ssl__conv3x3_wino4_forward(ssl_ctx_t *ctx, const float *x, const float *w, const float *bias,
                               float *y, int64_t n, int64_t c, int64_t h, int64_t wd, int64_t oc);
int ssl__conv3x3_wino4_backward(ssl_ctx_t *ctx, const float *x, const float *w, const float *dy,
                                float *dx, int dx_add, float *dw, int64_t n, int64_t c, int64_t h,
                                int64_t wd, int64_t oc);

/* ---------------------------------------------------------------- BLAS and plain references */

/* C (M, N) = alpha * op(A) op(B) + beta * C; row-major, lda/ldb/ldc as in cblas. Counted in
 * ssl_gemm_flops() and ssl_model_flops(). */
void ssl__sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
/* The same, counted in ssl_gemm_flops() only: a GEMM inside an op that counts its model FLOPs
 * itself (convolutions, whatever algorithm runs them). */
void ssl__sgemm_inner(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                      int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void ssl__model_flops_add(uint64_t flops);

/* ---------------------------------------------------------------- bf16 (src/core/bf16.c) */

/* SSL_OK when bf16 GEMMs can run here, else SSL_ERR_UNSUPPORTED with the reason (no oneDNN in
 * this build, or a CPU without AVX512-BF16 / AMX). ssl__bf16_amx: oneDNN uses AMX tiles. */
int ssl__bf16_check(void);
int ssl__bf16_amx(void);
/* C (M, N) = op(A) op(B), or += with accumulate: A and B rounded to bf16, products summed in
 * fp32 by oneDNN (one cached primitive per shape). SSL_OK or an error (nothing written). */
int ssl__bf16_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, int accumulate, float *c, int64_t ldc);
/* C (M, N) = op(A) op(B) + bias (N) on every row, the bias added in fp32 by oneDNN */
int ssl__bf16_gemm_bias(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a,
                        int64_t lda, const float *b, int64_t ldb, const float *bias, float *c,
                        int64_t ldc);
/* ssl__gemm's bf16 route for C (M, N) = A (M, K) B^T (N, K) + bias (linear's forward): 1 when
 * it ran (counted), 0 when ctx is fp32 or oneDNN refused (the caller runs its fp32 route) */
int ssl__gemm_bias_bf16(const ssl_ctx_t *ctx, int64_t m, int64_t n, int64_t k, const float *a,
                        const float *b, const float *bias, float *c);
/* oneDNN's name of the implementation it picked for that shape (tests, benchmarks) */
const char *ssl__bf16_gemm_impl(int ta, int tb, int64_t m, int64_t n, int64_t k);
/* conv2d through oneDNN's bf16 convolutions (src/core/bf16_conv.c), NCHW fp32 in and out, no
 * bias: y = conv(x, w); dx (+)= (dx_add), dw += (either NULL to skip). ssl__bf16_conv_usable:
 * ctx is bf16 and ssl__bf16_conv_dnnl allows a layer with that kernel size and stride (0 never;
 * 1, the default: where measured faster than the fp32 kernels; 2 always). */
extern int ssl__bf16_conv_dnnl;
int ssl__bf16_conv_usable(const ssl_ctx_t *ctx, int64_t kh, int64_t stride);
int ssl__bf16_conv_forward(ssl_ctx_t *ctx, const float *x, const float *w, float *y, int64_t n,
                           int64_t c, int64_t h, int64_t wd, int64_t oc, int64_t kh, int64_t kw,
                           int64_t stride, int64_t pad);
int ssl__bf16_conv_backward(ssl_ctx_t *ctx, const float *x, const float *w, const float *dy,
                            float *dx, int dx_add, float *dw, int64_t n, int64_t c, int64_t h,
                            int64_t wd, int64_t oc, int64_t kh, int64_t kw, int64_t stride,
                            int64_t pad);
/* y = x rounded to bf16 and back (the references of the bf16 tests) */
void ssl__bf16_round(const float *x, float *y, int64_t n);
/* ctx runs its GEMM-shaped ops in bf16 (ssl_ctx_set_precision) */
int ssl__ctx_bf16(const ssl_ctx_t *ctx);
/* ssl__sgemm / ssl__sgemm_inner in ctx's precision: bf16 when ctx asks for it and alpha is 1
 * and beta 0 or 1 (as the ops call them), fp32 otherwise. A bf16 GEMM that oneDNN cannot run
 * (out of memory, a shape it refuses) runs in fp32 instead and is counted in
 * ssl__bf16_fallbacks, which the tests expect to stay 0. */
extern _Atomic uint64_t ssl__bf16_fallbacks;
void ssl__gemm(const ssl_ctx_t *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc);
void ssl__gemm_inner(const ssl_ctx_t *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k,
                     float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                     float beta, float *c, int64_t ldc);
/* The plain triple loop, accumulated in double: the reference the tests compare against. */
void ssl_ref_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

#endif
