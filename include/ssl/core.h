/* libssl core: status codes, logging, threads, counter-based RNG, tensors, the per-step
 * context (arena + autograd tape), the long-lived parameter store and the ops.
 *
 * Conventions
 * - Tensors are float32, contiguous, row-major, 0..SSL_MAX_DIMS dims. Images are NCHW,
 *   tokens are (B, T, C).
 * - Every op takes the context first and returns a new tensor allocated in the context's
 *   arena, or NULL on error. On error the thread's last error (ssl_last_error()) names the op
 *   and the shapes. An op given a NULL input returns NULL and keeps the first error, so a whole
 *   forward pass can be written without checks and checked once at the end.
 * - An op records itself on the tape only when grad mode is on and one of its inputs requires
 *   a gradient. ssl_backward() accumulates (+=) into gradients; zeroing is explicit.
 * - Library code never exits and never prints; messages go through ssl_set_log_callback().
 */
#ifndef SSL_CORE_H
#define SSL_CORE_H

#include <stddef.h>
#include <stdint.h>

/* SSL_API marks every function the shared library exports: it is built with hidden visibility,
 * so a function without it is internal (docs/c-api.md, "ABI"). */
#if defined(__GNUC__) || defined(__clang__)
#define SSL_API __attribute__((visibility("default")))
#else
#define SSL_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status and errors */

typedef enum ssl_status {
    SSL_OK = 0,
    SSL_ERR_INVALID = -1,   /* invalid argument */
    SSL_ERR_SHAPE = -2,     /* tensor shapes do not fit the op */
    SSL_ERR_NOMEM = -3,     /* allocation failed */
    SSL_ERR_IO = -4,        /* file could not be opened, read or written */
    SSL_ERR_FORMAT = -5,    /* file content is malformed */
    SSL_ERR_CONFIG = -6,    /* configuration key or value is invalid */
    SSL_ERR_NONFINITE = -7, /* NaN or Inf where a finite value is required */
    SSL_ERR_STATE = -8,     /* call not valid in the current state */
    SSL_ERR_UNSUPPORTED = -9,
    SSL_ERR_INTERRUPTED = -10 /* stopped on request (ssl_trainer_request_stop) */
} ssl_status_t;

/* Short constant name of a status ("SSL_ERR_SHAPE") and a one-line description. */
SSL_API const char *ssl_err_name(int status);
SSL_API const char *ssl_strerror(int status);

/* The message of the last error set on this thread ("" if none) and its status. */
SSL_API const char *ssl_last_error(void);
SSL_API int ssl_last_status(void);
SSL_API void ssl_clear_error(void);
/* Set the thread's last error; returns `status` so callers can `return ssl_set_error(...)`. */
SSL_API int ssl_set_error(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---------------------------------------------------------------- logging */

typedef enum ssl_log_level {
    SSL_LOG_DEBUG = 0,
    SSL_LOG_INFO = 1,
    SSL_LOG_WARN = 2,
    SSL_LOG_ERROR = 3
} ssl_log_level_t;

typedef void (*ssl_log_fn)(int level, const char *msg, void *user);
/* Install a log callback (NULL: discard all messages, the default). Messages below
 * min_level are not formatted at all. */
SSL_API void ssl_set_log_callback(ssl_log_fn fn, void *user, int min_level);
SSL_API void ssl_logf(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---------------------------------------------------------------- version, threads */

SSL_API const char *ssl_version(void);

/* One knob for OpenMP loops and OpenBLAS GEMM. n <= 0 picks the number of cores. Kernels never
 * call BLAS from inside an OpenMP region, so the two pools never oversubscribe the machine. */
SSL_API void ssl_set_num_threads(int n);
SSL_API int ssl_get_num_threads(void);

/* Floating-point operations done by matrix products (2*m*n*k per GEMM) in this process so far,
 * summed over all threads: benchmarks divide its growth by time for achieved GFLOP/s. */
SSL_API uint64_t ssl_gemm_flops(void);
/* The model's floating-point operations in this process so far, counted as the textbook
 * algorithms do them whatever kernel ran: a GEMM 2*m*n*k; a convolution's forward, input
 * gradient and weight gradient 2*N*OC*C*KH*KW*OH*OW each (Winograd does fewer multiplications,
 * im2col and direct kernels the same number); attention 4*B*H*T*T*D forward and twice that
 * backward (only the products; softmax, norms and elementwise ops are not counted). The count
 * FLOP counters of other frameworks give, so "model GFLOP/s" compares across implementations;
 * with Winograd it can exceed the machine's sgemm peak. */
SSL_API uint64_t ssl_model_flops(void);

/* Per-op time profile, off by default: wall seconds and calls of each op kind's forward and
 * backward kernels since the last reset (`sslc bench --profile` prints it). Meant for one
 * training thread; enabling costs two clock reads per kernel call. */
typedef struct ssl_op_profile {
    const char *op;
    double fwd_s, bwd_s;
    int64_t fwd_calls, bwd_calls;
} ssl_op_profile_t;
SSL_API void ssl_profile_enable(int on);
SSL_API void ssl_profile_reset(void);
/* Fill up to max entries (op kinds that ran), sorted by fwd_s + bwd_s, largest first; returns
 * how many were filled. */
SSL_API int ssl_profile_get(ssl_op_profile_t *out, int max);

/* The BLAS in use, e.g. "OpenBLAS 0.3.21 ... SkylakeX MAX_THREADS=64". */
SSL_API const char *ssl_blas_info(void);
/* OpenBLAS picks its kernels by CPU model when it loads; a release older than the CPU falls back
 * to generic SSE3 kernels ("Prescott") that run several times below the machine's peak. When
 * that happened and OPENBLAS_CORETYPE is unset, this returns the core type to set (e.g.
 * "SkylakeX" on an AVX-512 CPU, "Haswell" on AVX2); else NULL. It only takes effect in a new
 * process: `sslc` and the benchmarks re-execute themselves with it. */
SSL_API const char *ssl_blas_coretype_hint(void);

/* ---------------------------------------------------------------- counter-based RNG */

/* Philox4x32-10. A value depends only on (seed, stream, index): never on the thread that drew
 * it or on the order of draws. Callers fold epoch/sample/view into `stream` with
 * ssl_rng_stream(). */
SSL_API void ssl_philox4x32(uint64_t seed, uint64_t stream, uint64_t index, uint32_t out[4]);
SSL_API uint64_t ssl_rng_stream(uint64_t a, uint64_t b, uint64_t c); /* mixes 3 ids */
SSL_API uint32_t ssl_rng_u32(uint64_t seed, uint64_t stream, uint64_t index);
SSL_API float ssl_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index); /* [0, 1) */
SSL_API float ssl_rng_normal(uint64_t seed, uint64_t stream, uint64_t index);  /* N(0, 1) */
/* dst[i] = value at index (offset + i). */
SSL_API void ssl_rng_fill_uniform(float *dst, size_t n, float lo, float hi, uint64_t seed,
                                  uint64_t stream, uint64_t offset);
SSL_API void ssl_rng_fill_normal(float *dst, size_t n, float mean, float std, uint64_t seed,
                                 uint64_t stream, uint64_t offset);
/* N(mean, std) truncated to the absolute bounds [a, b] by resampling (timm trunc_normal_). */
SSL_API void ssl_rng_fill_trunc_normal(float *dst, size_t n, float mean, float std, float a,
                                       float b, uint64_t seed, uint64_t stream, uint64_t offset);

/* ---------------------------------------------------------------- tensors */

#define SSL_MAX_DIMS 5

typedef struct ssl_tensor {
    int ndim;
    int64_t shape[SSL_MAX_DIMS];
    int64_t numel;
    float *data;       /* numel floats, contiguous row-major */
    float *grad;       /* same size; NULL until a gradient reaches it (params: always set) */
    int requires_grad; /* leaf flag or propagated from inputs */
    int node;          /* index of the tape node that produced it; -1 for leaves */
    const char *name;  /* parameter name, or NULL */
} ssl_tensor_t;

/* "(2, 3, 4)" into buf; returns buf. */
SSL_API char *ssl_shape_str(const ssl_tensor_t *t, char *buf, size_t len);
SSL_API int ssl_same_shape(const ssl_tensor_t *a, const ssl_tensor_t *b);
/* Size of dimension d, negative d counts from the end. */
SSL_API int64_t ssl_dim(const ssl_tensor_t *t, int d);

/* ---------------------------------------------------------------- context: arena + tape */

typedef struct ssl_ctx ssl_ctx_t;

/* A context owns the per-step arena and the tape. arena_bytes is the initial reservation; the
 * arena grows in chunks when it runs out, and ssl_ctx_reset() merges the chunks into one so a
 * steady-state step never calls malloc. */
SSL_API ssl_ctx_t *ssl_ctx_create(size_t arena_bytes);
SSL_API void ssl_ctx_free(ssl_ctx_t *ctx);
/* Forget every tensor and tape node of the step; keeps the memory. */
SSL_API void ssl_ctx_reset(ssl_ctx_t *ctx);
/* Grad mode: returns the previous mode. With grad off no op records anything. */
SSL_API int ssl_ctx_set_grad(ssl_ctx_t *ctx, int enabled);
SSL_API int ssl_ctx_grad_enabled(const ssl_ctx_t *ctx);
SSL_API size_t ssl_ctx_arena_used(const ssl_ctx_t *ctx);     /* bytes handed out since reset */
SSL_API size_t ssl_ctx_arena_capacity(const ssl_ctx_t *ctx); /* bytes reserved */
SSL_API size_t ssl_ctx_arena_peak(const ssl_ctx_t *ctx);     /* most bytes ever used in one step */
SSL_API int ssl_ctx_tape_len(const ssl_ctx_t *ctx);          /* nodes recorded since reset */

/* Precision of the GEMM-shaped ops run in a context (docs/precision.md). FP32 (the default) is
 * bit-reproducible. BF16 rounds the operands of matmul, linear and convolution to bfloat16 and
 * sums their products in fp32 (oneDNN); everything else (norms, softmax, losses, the optimizer,
 * the parameters) stays fp32. It needs a libssl built with oneDNN and a CPU with AVX512-BF16 or
 * AMX: ssl_precision_supported() says whether this process can, with the reason in
 * ssl_last_error() (SSL_ERR_UNSUPPORTED), and ssl_ctx_set_precision() refuses it likewise. */
typedef enum ssl_precision { SSL_PRECISION_FP32 = 0, SSL_PRECISION_BF16 = 1 } ssl_precision_t;
SSL_API int ssl_precision_supported(ssl_precision_t precision);
SSL_API int ssl_ctx_set_precision(ssl_ctx_t *ctx, ssl_precision_t precision);
SSL_API ssl_precision_t ssl_ctx_precision(const ssl_ctx_t *ctx);
/* "fp32" / "bf16" (NULL and SSL_ERR_INVALID for anything else) */
SSL_API const char *ssl_precision_name(ssl_precision_t precision);

/* Raw arena memory, 64-byte aligned, uninitialised (NULL + error when out of memory). */
SSL_API void *ssl_arena_alloc(ssl_ctx_t *ctx, size_t bytes);

/* New tensors in the arena (uninitialised / zeros / copied from host memory). */
SSL_API ssl_tensor_t *ssl_tensor_new(ssl_ctx_t *ctx, int ndim, const int64_t *shape);
SSL_API ssl_tensor_t *ssl_tensor_zeros(ssl_ctx_t *ctx, int ndim, const int64_t *shape);
SSL_API ssl_tensor_t *ssl_tensor_from(ssl_ctx_t *ctx, int ndim, const int64_t *shape,
                                      const float *src);
SSL_API ssl_tensor_t *ssl_tensor_fill(ssl_ctx_t *ctx, int ndim, const int64_t *shape, float value);
/* Shorthands for the common ranks. */
SSL_API ssl_tensor_t *ssl_tensor_1d(ssl_ctx_t *ctx, int64_t n0);
SSL_API ssl_tensor_t *ssl_tensor_2d(ssl_ctx_t *ctx, int64_t n0, int64_t n1);
SSL_API ssl_tensor_t *ssl_tensor_3d(ssl_ctx_t *ctx, int64_t n0, int64_t n1, int64_t n2);
SSL_API ssl_tensor_t *ssl_tensor_4d(ssl_ctx_t *ctx, int64_t n0, int64_t n1, int64_t n2, int64_t n3);

/* A leaf that requires a gradient (for tests and user-built graphs). */
SSL_API void ssl_tensor_set_requires_grad(ssl_tensor_t *t, int on);

/* Stop-gradient: a tensor sharing t's data that no gradient flows through. */
SSL_API ssl_tensor_t *ssl_detach(ssl_ctx_t *ctx, ssl_tensor_t *t);

/* Back-propagate from a scalar (numel == 1) tensor: d loss / d loss = 1, then every recorded
 * node in reverse order. Gradients are added to what is there. Returns SSL_OK or an error.
 * Afterwards the gradients of leaves and parameters are meaningful; an intermediate's grad
 * buffer may have been handed on to its input (see docs/core.md), as PyTorch frees them. */
SSL_API int ssl_backward(ssl_ctx_t *ctx, ssl_tensor_t *loss);
/* The same from a non-scalar output with a given upstream gradient (same shape as out). */
SSL_API int ssl_backward_with(ssl_ctx_t *ctx, ssl_tensor_t *out, const float *grad_out);

/* ---------------------------------------------------------------- parameter store */

typedef enum ssl_param_kind {
    SSL_PARAM_TRAINABLE = 0, /* in the data/grad buffers, seen by the optimizer */
    SSL_PARAM_BUFFER = 1     /* state such as BN running statistics: saved, never optimised */
} ssl_param_kind_t;

enum ssl_param_flags {
    SSL_PARAM_NO_DECAY = 1 << 0, /* bias / norm: excluded from weight decay and LARS */
    SSL_PARAM_FROZEN = 1 << 1    /* requires_grad off (e.g. DINO last layer early on) */
};

typedef struct ssl_params ssl_params_t;

typedef struct ssl_param_info {
    const char *name;
    ssl_tensor_t *t;  /* stable pointer; its data/grad point into the store's buffers */
    int kind;         /* ssl_param_kind_t */
    int flags;        /* ssl_param_flags */
    size_t offset;    /* element offset into the trainable or buffer data */
} ssl_param_info_t;

SSL_API ssl_params_t *ssl_params_create(void);
SSL_API void ssl_params_free(ssl_params_t *p);
/* Add a zero-initialised tensor. Names are unique (duplicate -> NULL + error). The returned
 * pointer stays valid for the life of the store; adding more parameters may move the underlying
 * buffers but updates every tensor's data/grad pointers. */
SSL_API ssl_tensor_t *ssl_params_add(ssl_params_t *p, const char *name, int ndim,
                                     const int64_t *shape, int kind, int flags);
SSL_API ssl_tensor_t *ssl_params_get(const ssl_params_t *p, const char *name);
SSL_API int ssl_params_count(const ssl_params_t *p);
SSL_API const ssl_param_info_t *ssl_params_info(const ssl_params_t *p, int i);
/* Contiguous buffers: every trainable parameter's data, then the matching gradients. */
SSL_API float *ssl_params_data(ssl_params_t *p, size_t *n_floats);
SSL_API float *ssl_params_grad(ssl_params_t *p, size_t *n_floats);
SSL_API float *ssl_params_buffers(ssl_params_t *p, size_t *n_floats);
SSL_API void ssl_params_zero_grad(ssl_params_t *p);
SSL_API int ssl_params_set_frozen(ssl_params_t *p, const char *prefix, int frozen);

/* ---------------------------------------------------------------- ops */

typedef enum ssl_gelu_kind { SSL_GELU_ERF = 0, SSL_GELU_TANH = 1 } ssl_gelu_kind_t;

/* Matrix products; no transposing copies are made.
 * matmul: a (..., M, K) [or (..., K, M) with ta], b (K, N) [or (N, K) with tb] shared across the
 *   leading dims of a; or b (..., K, N) with the same leading dims as a (batched). */
SSL_API ssl_tensor_t *ssl_matmul(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b, int ta, int tb);
/* x (..., IN) @ w(OUT, IN)^T + bias(OUT) [bias may be NULL] -> (..., OUT). */
SSL_API ssl_tensor_t *ssl_linear(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *w,
                                 ssl_tensor_t *bias);
/* residual + linear(x, w, bias), residual of the output's shape: a transformer's residual
 * connection in the same pass as the projection (no separate add over the activations). */
SSL_API ssl_tensor_t *ssl_linear_residual(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *w,
                                          ssl_tensor_t *bias, ssl_tensor_t *residual);

/* Elementwise binary with numpy broadcasting (shapes aligned from the right). */
SSL_API ssl_tensor_t *ssl_add(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b);
SSL_API ssl_tensor_t *ssl_sub(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b);
SSL_API ssl_tensor_t *ssl_mul(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b);
SSL_API ssl_tensor_t *ssl_div(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b);
/* y = alpha * x + beta */
SSL_API ssl_tensor_t *ssl_scale(ssl_ctx_t *ctx, ssl_tensor_t *x, float alpha, float beta);

/* Reductions; axis may be negative; keepdim keeps the reduced axis with size 1. */
SSL_API ssl_tensor_t *ssl_sum(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis, int keepdim);
SSL_API ssl_tensor_t *ssl_mean(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis, int keepdim);
SSL_API ssl_tensor_t *ssl_sum_all(ssl_ctx_t *ctx, ssl_tensor_t *x); /* shape () , numel 1 */
SSL_API ssl_tensor_t *ssl_mean_all(ssl_ctx_t *ctx, ssl_tensor_t *x);

/* Elementwise unary. */
SSL_API ssl_tensor_t *ssl_exp(ssl_ctx_t *ctx, ssl_tensor_t *x);
SSL_API ssl_tensor_t *ssl_log(ssl_ctx_t *ctx, ssl_tensor_t *x);
SSL_API ssl_tensor_t *ssl_sqrt(ssl_ctx_t *ctx, ssl_tensor_t *x);
SSL_API ssl_tensor_t *ssl_pow(ssl_ctx_t *ctx, ssl_tensor_t *x, float p);
SSL_API ssl_tensor_t *ssl_clamp(ssl_ctx_t *ctx, ssl_tensor_t *x, float lo, float hi);
SSL_API ssl_tensor_t *ssl_relu(ssl_ctx_t *ctx, ssl_tensor_t *x);
/* x for x > 0, slope x otherwise (torch.nn.LeakyReLU; DCGAN's discriminator: 0.2); 0 <= slope
 * < 1, else SSL_ERR_INVALID. */
SSL_API ssl_tensor_t *ssl_leaky_relu(ssl_ctx_t *ctx, ssl_tensor_t *x, float slope);
/* relu(a + b) for a and b of one shape, as one op (the end of a residual block). */
SSL_API ssl_tensor_t *ssl_add_relu(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b);
SSL_API ssl_tensor_t *ssl_gelu(ssl_ctx_t *ctx, ssl_tensor_t *x, int kind);
SSL_API ssl_tensor_t *ssl_sigmoid(ssl_ctx_t *ctx, ssl_tensor_t *x);
SSL_API ssl_tensor_t *ssl_tanh(ssl_ctx_t *ctx, ssl_tensor_t *x);

/* Along an axis (negative counts from the end). */
SSL_API ssl_tensor_t *ssl_softmax(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis);
SSL_API ssl_tensor_t *ssl_log_softmax(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis);
/* x / max(||x||_2, eps) along axis (eps 1e-12 as torch.nn.functional.normalize). */
SSL_API ssl_tensor_t *ssl_l2_normalize(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis, float eps);

/* Losses, mean-reduced to a scalar.
 * cross_entropy: logits (N, C), labels[N] in [0, C) (copied; a label out of range is an error).
 * cross_entropy_soft: logits (N, C), target (N, C) distributions: mean_n -sum_c t log_softmax. */
SSL_API ssl_tensor_t *ssl_cross_entropy(ssl_ctx_t *ctx, ssl_tensor_t *logits,
                                        const int32_t *labels);
SSL_API ssl_tensor_t *ssl_cross_entropy_soft(ssl_ctx_t *ctx, ssl_tensor_t *logits,
                                             ssl_tensor_t *target);
SSL_API ssl_tensor_t *ssl_mse(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b);
SSL_API ssl_tensor_t *ssl_l1(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b);
SSL_API ssl_tensor_t *ssl_smooth_l1(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b, float beta);

/* Normalisation.
 * layer_norm over the last dim; weight/bias (C) may be NULL.
 * batch_norm: x (N, C) or (N, C, H, W), statistics per channel. training: normalise with batch
 *   statistics (biased variance) and update running_mean/var (unbiased variance) with momentum
 *   as PyTorch does (running = (1 - m) running + m batch); eval: use running statistics.
 *   weight/bias/running_* may be NULL (no affine / no running stats). */
SSL_API ssl_tensor_t *ssl_layer_norm(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *weight,
                                     ssl_tensor_t *bias, float eps);
/* Instance norm over tokens: x (B, T, C), each (b, c) normalised over its T tokens (biased
 * variance, no affine), as F.instance_norm on x.transpose(1, 2) (data2vec's per-layer target
 * normalisation). Composed of permute and layer_norm, so it has their gradient. */
SSL_API ssl_tensor_t *ssl_instance_norm_tokens(ssl_ctx_t *ctx, ssl_tensor_t *x, float eps);
/* Group norm (F.group_norm): x (N, C, *spatial), the channels in `groups` consecutive groups,
 * each (n, group) normalised over its C / groups channels and every position (biased
 * variance), then y = x_hat * weight[c] + bias[c]; weight/bias (C) may be NULL. groups must
 * divide C. Composed of reshape, layer_norm, mul and add, so it has their gradient. */
SSL_API ssl_tensor_t *ssl_group_norm(ssl_ctx_t *ctx, ssl_tensor_t *x, int groups,
                                     ssl_tensor_t *weight, ssl_tensor_t *bias, float eps);
SSL_API ssl_tensor_t *ssl_batch_norm(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *weight,
                                     ssl_tensor_t *bias, ssl_tensor_t *running_mean,
                                     ssl_tensor_t *running_var, int training, float momentum,
                                     float eps);
/* relu(batch_norm(x)) as one op: no separate relu output, one pass fewer each way. */
SSL_API ssl_tensor_t *ssl_batch_norm_relu(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *weight,
                                          ssl_tensor_t *bias, ssl_tensor_t *running_mean,
                                          ssl_tensor_t *running_var, int training, float momentum,
                                          float eps);

/* relu(batch_norm(x) + residual) as one op (the end of a ResNet block): the normalised values
 * are never stored, which saves one activation per block and a pass each way. residual has
 * x's shape. */
SSL_API ssl_tensor_t *ssl_batch_norm_add_relu(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *weight,
                                              ssl_tensor_t *bias, ssl_tensor_t *running_mean,
                                              ssl_tensor_t *running_var, ssl_tensor_t *residual,
                                              int training, float momentum, float eps);

/* Convolution and pooling on NCHW. conv2d: w (OC, C, KH, KW), bias (OC) or NULL. */
SSL_API ssl_tensor_t *ssl_conv2d(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *w,
                                 ssl_tensor_t *bias, int stride, int padding);
/* The transpose (adjoint) of conv2d, PyTorch's conv_transpose2d with groups 1 and dilation 1:
 * x (N, C_in, H, W), w (C_in, C_out, KH, KW) as PyTorch stores it, bias (C_out) or NULL; output
 * (N, C_out, (H - 1) * stride - 2 * padding + KH + output_padding, the same for W).
 * output_padding in [0, stride) picks among the sizes a stride-s conv2d maps onto H (a decoder's
 * 2x upsampling of a 7x7 map to 14x14: kernel 3, stride 2, padding 1, output_padding 1). */
SSL_API ssl_tensor_t *ssl_conv_transpose2d(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *w,
                                           ssl_tensor_t *bias, int stride, int padding,
                                           int output_padding);
SSL_API ssl_tensor_t *ssl_max_pool2d(ssl_ctx_t *ctx, ssl_tensor_t *x, int kernel, int stride,
                                     int padding);
/* torch.nn.functional.adaptive_max_pool2d: x (N, C, H, W) to (N, C, out_h, out_w), output (i, j)
 * the max over rows [floor(i H / out_h), ceil((i + 1) H / out_h)) and the columns alike
 * (neighbouring windows may overlap); the gradient goes to each window's first maximum. 1 <=
 * out_h <= H and 1 <= out_w <= W, else SSL_ERR_INVALID. DCGAN's feature readout: every layer
 * max-pooled to a 4 x 4 grid. */
SSL_API ssl_tensor_t *ssl_adaptive_max_pool2d(ssl_ctx_t *ctx, ssl_tensor_t *x, int out_h,
                                              int out_w);
/* PixelCNN's masked convolution (van den Oord et al. 2016): w (OC, C, K, K), K odd, multiplied
 * by a raster-order mask, then conv2d with stride 1 and padding K / 2 (same size): output pixel
 * (i, j) reads the input rows above i, and row i left of j, plus (i, j) itself for type B (type
 * A, the first layer's, excludes it). All channels of a pixel are one unit (no per-channel
 * ordering: grayscale or channel-independent models). bias (OC) or NULL. */
typedef enum ssl_conv_mask { SSL_CONV_MASK_A = 0, SSL_CONV_MASK_B = 1 } ssl_conv_mask_t;
SSL_API ssl_tensor_t *ssl_masked_conv2d(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *w,
                                        ssl_tensor_t *bias, int type);
/* Zero padding of the last two dims of x (N, C, H, W), F.pad(x, (left, right, top, bottom)):
 * (N, C, H + top + bottom, W + left + right), y[.., i, j] = x[.., i - top, j - left] (0 outside
 * x). A negative amount crops that side instead, so pad2d(x, 1, -1, 0, 0) shifts the rows down
 * by one (the gated PixelCNN's down shift) and a one-sided pad then an unpadded conv2d is a
 * causal convolution. The output must keep a row and a column (it may hold only zeros). */
SSL_API ssl_tensor_t *ssl_pad2d(ssl_ctx_t *ctx, ssl_tensor_t *x, int top, int bottom, int left,
                                int right);
/* Nearest-neighbour upsampling by an integer factor (F.interpolate(x, scale_factor=s,
 * mode="nearest")): x (N, C, H, W) -> (N, C, s H, s W), y[.., i, j] = x[.., i / s, j / s]; the
 * gradient sums each s x s block. Composed of reshape and a broadcasting add. */
SSL_API ssl_tensor_t *ssl_upsample_nearest2d(ssl_ctx_t *ctx, ssl_tensor_t *x, int scale);
/* count_include_pad = true, as PyTorch's default. */
SSL_API ssl_tensor_t *ssl_avg_pool2d(ssl_ctx_t *ctx, ssl_tensor_t *x, int kernel, int stride,
                                     int padding);
SSL_API ssl_tensor_t *ssl_global_avg_pool(ssl_ctx_t *ctx, ssl_tensor_t *x); /* (N,C,H,W) -> (N,C) */

/* Shape ops. reshape: one dim may be -1; numel must match (shares data with x). */
SSL_API ssl_tensor_t *ssl_reshape(ssl_ctx_t *ctx, ssl_tensor_t *x, int ndim, const int64_t *shape);
SSL_API ssl_tensor_t *ssl_permute(ssl_ctx_t *ctx, ssl_tensor_t *x, const int *perm);
SSL_API ssl_tensor_t *ssl_transpose(ssl_ctx_t *ctx, ssl_tensor_t *x, int d0, int d1);
SSL_API ssl_tensor_t *ssl_concat(ssl_ctx_t *ctx, ssl_tensor_t *const *xs, int n, int axis);
SSL_API ssl_tensor_t *ssl_slice(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis, int64_t start,
                                int64_t len);
/* n equal parts along axis into out[n]; returns SSL_OK or an error. */
SSL_API int ssl_split(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis, int n, ssl_tensor_t **out);

/* Token selection. gather_rows: x (B, T, C) and idx (B, K) -> (B, K, C); or x (T, C), idx (K)
 *   -> (K, C). scatter_rows is its adjoint: src (B, K, C), idx (B, K) -> (B, T, C) with zeros in
 *   the rows not named (an index named twice is summed). Indices are copied. */
SSL_API ssl_tensor_t *ssl_gather_rows(ssl_ctx_t *ctx, ssl_tensor_t *x, const int32_t *idx,
                                      int64_t k);
SSL_API ssl_tensor_t *ssl_scatter_rows(ssl_ctx_t *ctx, ssl_tensor_t *src, const int32_t *idx,
                                       int64_t t);
/* Embedding lookup: weight (V, C), ids[n_ids] with the given ids shape -> (ids shape..., C). */
SSL_API ssl_tensor_t *ssl_embedding(ssl_ctx_t *ctx, ssl_tensor_t *weight, const int32_t *ids,
                                    int ndim, const int64_t *ids_shape);

/* Vector quantisation (VQ-VAE). vq_nearest: codes[i] = argmin_k ||z_i - e_k||^2 for z (N, D)
 *   and the codebook (K, D), from one fp32 GEMM per block of rows (||e_k||^2 - 2 z_i . e_k;
 *   ties: the lowest k); no tape; SSL_OK or an error. vq_straight_through: codebook[codes]
 *   (N, D), whose gradient goes to z unchanged (z + sg(e - z)) and to the codebook not at all
 *   (train it with a codebook loss over ssl_embedding). Codes are copied. */
SSL_API int ssl_vq_nearest(ssl_ctx_t *ctx, const ssl_tensor_t *z, const ssl_tensor_t *codebook,
                           int32_t *codes);
SSL_API ssl_tensor_t *ssl_vq_straight_through(ssl_ctx_t *ctx, ssl_tensor_t *z,
                                              ssl_tensor_t *codebook, const int32_t *codes);

/* Inverted dropout: the mask is drawn from (seed, stream) by element index, so backward
 * recomputes it and nothing depends on thread count. Identity when !training or p == 0. */
SSL_API ssl_tensor_t *ssl_dropout(ssl_ctx_t *ctx, ssl_tensor_t *x, float p, int training,
                                  uint64_t seed, uint64_t stream);

/* ---- ops added by the losses layer (kept in one block to ease merging) */

/* log(sigmoid(x)) elementwise, exact for any x (no underflow to log 0, no 1 - sigmoid
 * cancellation); d/dx = sigmoid(-x). The pairwise term of the SigLIP loss. */
SSL_API ssl_tensor_t *ssl_log_sigmoid(ssl_ctx_t *ctx, ssl_tensor_t *x);

/* ---- fused attention */

/* Multi-head self-attention straight from a fused qkv projection: qkv (B, T, 3C) with token rows
 * [q | k | v] and head h at columns h D .. (h + 1) D - 1 of each part (D = C / heads, timm's
 * layout). Per (batch, head): softmax(Q K^T / sqrt(D) + bias) V, returned as (B, T, C) with the
 * heads side by side (ready for the output projection). bias may be NULL, or added to the
 * (B, heads, T, T) scores with broadcasting (e.g. (T, T) causal, (B, 1, 1, T) key padding). */
SSL_API ssl_tensor_t *ssl_attention(ssl_ctx_t *ctx, ssl_tensor_t *qkv, int heads,
                                    ssl_tensor_t *bias);

/* ---------------------------------------------------------------- checking gradients */

/* Builds a graph from inputs in[0..n_in) and returns its output (any shape). */
typedef ssl_tensor_t *(*ssl_graph_fn)(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user);

typedef struct ssl_gradcheck_opts {
    double eps;        /* central-difference step (0: 1e-3) */
    double atol, rtol; /* |analytic - numeric| <= atol + rtol |numeric| (0: 1e-3, 1e-2) */
    int max_per_input; /* elements checked per input, evenly spread (0: 256) */
} ssl_gradcheck_opts_t;

typedef struct ssl_gradcheck_result {
    int checked;        /* elements compared */
    int failed;         /* elements outside tolerance */
    int worst_input;    /* input and element of the largest error */
    int64_t worst_index;
    double worst_analytic, worst_numeric;
} ssl_gradcheck_result_t;

/* Compares d f / d in[i], for every input with requires_grad, against central differences,
 * where f = sum_j out_j r_j with fixed random weights r (every output element counts).
 * The numeric side runs fn in a scratch context with grad mode off and accumulates f in double.
 * Inputs must live in ctx; their data is restored. Returns SSL_OK when every element is within
 * tolerance, SSL_ERR_INVALID with a message naming the worst element otherwise, or the error of
 * a failed build/backward. res and opts may be NULL. */
SSL_API int ssl_gradcheck(ssl_ctx_t *ctx, ssl_graph_fn fn, void *user, ssl_tensor_t **in, int n_in,
                          const ssl_gradcheck_opts_t *opts, ssl_gradcheck_result_t *res);

/* Runs every op of the library on small random inputs: forward of the BLAS and convolution
 * kernels against their plain references and the gradient of every op against central
 * differences. Calls report(name, status, message, user) once per check (may be NULL).
 * Returns the number of failed checks. */
typedef void (*ssl_selfcheck_fn)(const char *name, int status, const char *msg, void *user);
SSL_API int ssl_selfcheck(ssl_selfcheck_fn report, void *user);

#ifdef __cplusplus
}
#endif
#endif /* SSL_CORE_H */
