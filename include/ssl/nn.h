/* libssl nn: building blocks with named parameters over the core ops.
 *
 * A block is a small struct of tensor pointers into an ssl_params_t, created by an *_init
 * function under a name prefix ("layer1.0.conv1" makes "layer1.0.conv1.weight"), and applied by
 * a *_forward function. Names follow torchvision (ResNet) and timm (ViT) so weights move between
 * libssl and PyTorch by name. Initial values are drawn from the counter-based RNG keyed on the
 * seed and the parameter's full name, so they do not depend on the order blocks are built in.
 *
 * `training` selects batch statistics and dropout (1) or running statistics (0).
 */
#ifndef SSL_NN_H
#define SSL_NN_H

#include "ssl/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- initialisation */

typedef enum ssl_init {
    SSL_INIT_TORCH_DEFAULT = 0, /* PyTorch default: kaiming_uniform(a=sqrt(5)), bias U(±1/sqrt(fan_in)) */
    SSL_INIT_KAIMING_FAN_OUT,   /* normal(0, sqrt(2 / fan_out)) (torchvision ResNet convs) */
    SSL_INIT_TRUNC_NORMAL_02,   /* trunc_normal(std 0.02, [-2, 2]), bias 0 (timm ViT linears) */
    SSL_INIT_XAVIER_UNIFORM,    /* U(±sqrt(6 / (fan_in + fan_out))), bias 0 (MAE) */
    SSL_INIT_ZEROS
} ssl_init_t;

/* Fill a parameter by scheme. fan_in/fan_out as PyTorch computes them for its shape. */
SSL_API void ssl_nn_init_tensor(ssl_tensor_t *t, ssl_init_t scheme, uint64_t seed);
/* Uniform / normal / constant fills keyed on the tensor's name. */
SSL_API void ssl_nn_fill_uniform(ssl_tensor_t *t, float lo, float hi, uint64_t seed);
SSL_API void ssl_nn_fill_normal(ssl_tensor_t *t, float mean, float std, uint64_t seed);
SSL_API void ssl_nn_fill_const(ssl_tensor_t *t, float v);
/* Stream id of a parameter name (FNV-1a), used as the RNG stream for its values. */
SSL_API uint64_t ssl_nn_name_stream(const char *name);

/* Join a prefix and a name with '.' into buf ("a.b" + "c" -> "a.b.c"; "" + "c" -> "c"). */
SSL_API const char *ssl_nn_name(char *buf, size_t len, const char *prefix, const char *name);

/* ---------------------------------------------------------------- layers */

typedef struct ssl_nn_linear {
    ssl_tensor_t *weight; /* (out, in) */
    ssl_tensor_t *bias;   /* (out) or NULL */
} ssl_nn_linear_t;

SSL_API int ssl_nn_linear_init(ssl_nn_linear_t *m, ssl_params_t *p, const char *name, int64_t in,
                               int64_t out, int bias, ssl_init_t init, uint64_t seed);
SSL_API ssl_tensor_t *ssl_nn_linear_forward(ssl_ctx_t *ctx, const ssl_nn_linear_t *m,
                                            ssl_tensor_t *x);

typedef struct ssl_nn_conv2d {
    ssl_tensor_t *weight; /* (out, in, k, k); (out, in, kh, kw) from ssl_nn_conv2d_init_hw */
    ssl_tensor_t *bias;   /* (out) or NULL */
    int stride, padding;
} ssl_nn_conv2d_t;

SSL_API int ssl_nn_conv2d_init(ssl_nn_conv2d_t *m, ssl_params_t *p, const char *name, int64_t in,
                               int64_t out, int kernel, int stride, int padding, int bias,
                               ssl_init_t init, uint64_t seed);
/* The same with a kernel of kh rows and kw columns (weight (out, in, kh, kw)): the gated
 * PixelCNN's vertical (k / 2 + 1, k) and horizontal (1, k / 2 + 1) stacks. */
SSL_API int ssl_nn_conv2d_init_hw(ssl_nn_conv2d_t *m, ssl_params_t *p, const char *name,
                                  int64_t in, int64_t out, int kh, int kw, int stride,
                                  int padding, int bias, ssl_init_t init, uint64_t seed);
SSL_API ssl_tensor_t *ssl_nn_conv2d_forward(ssl_ctx_t *ctx, const ssl_nn_conv2d_t *m,
                                            ssl_tensor_t *x);

/* ConvTranspose2d (groups 1): weight (in, out, k, k) as PyTorch stores it; PyTorch's default
 * init draws from its fan-in, dim 1 x k x k = out k k. */
typedef struct ssl_nn_conv_transpose2d {
    ssl_tensor_t *weight; /* (in, out, k, k) */
    ssl_tensor_t *bias;   /* (out) or NULL */
    int stride, padding, output_padding;
} ssl_nn_conv_transpose2d_t;

SSL_API int ssl_nn_conv_transpose2d_init(ssl_nn_conv_transpose2d_t *m, ssl_params_t *p,
                                         const char *name, int64_t in, int64_t out, int kernel,
                                         int stride, int padding, int output_padding, int bias,
                                         ssl_init_t init, uint64_t seed);
SSL_API ssl_tensor_t *ssl_nn_conv_transpose2d_forward(ssl_ctx_t *ctx,
                                                      const ssl_nn_conv_transpose2d_t *m,
                                                      ssl_tensor_t *x);

/* BatchNorm1d/2d: weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked as in
 * torchvision (a buffer, counted in training). affine = 0 gives BatchNorm without weight/bias.
 *
 * groups > 1 (split BatchNorm, set after init; 0 and 1 mean one group): in training the batch
 * statistics are taken per group of samples, as MoCo's per-GPU BatchNorm on one process. Group g
 * holds samples g, g + G, g + 2G, ... (the MoCo CIFAR demo's SplitBatchNorm, which views x
 * (N, C, ...) as (N / G, G C, ...)); N must be a multiple of G. The running statistics are
 * updated as each group's BatchNorm would update them and then averaged over the groups (the
 * demo's rule); eval mode uses them as one BatchNorm does. */
typedef struct ssl_nn_batchnorm {
    ssl_tensor_t *weight, *bias;             /* (C) or NULL */
    ssl_tensor_t *running_mean, *running_var; /* (C) buffers */
    ssl_tensor_t *num_batches_tracked;        /* () buffer, stored as float */
    float momentum, eps;
    int groups; /* split BatchNorm's groups in training (0 or 1: the whole batch) */
} ssl_nn_batchnorm_t;

SSL_API int ssl_nn_batchnorm_init(ssl_nn_batchnorm_t *m, ssl_params_t *p, const char *name,
                                  int64_t channels, int affine, float momentum, float eps);
SSL_API ssl_tensor_t *ssl_nn_batchnorm_forward(ssl_ctx_t *ctx, const ssl_nn_batchnorm_t *m,
                                               ssl_tensor_t *x, int training);
/* relu(batchnorm(x)) as one fused op (ssl_batch_norm_relu). */
SSL_API ssl_tensor_t *ssl_nn_batchnorm_relu_forward(ssl_ctx_t *ctx, const ssl_nn_batchnorm_t *m,
                                                    ssl_tensor_t *x, int training);
/* relu(batchnorm(x) + residual) as one fused op (ssl_batch_norm_add_relu). */
SSL_API ssl_tensor_t *ssl_nn_batchnorm_add_relu_forward(ssl_ctx_t *ctx, const ssl_nn_batchnorm_t *m,
                                                        ssl_tensor_t *x, ssl_tensor_t *residual,
                                                        int training);

typedef struct ssl_nn_layernorm {
    ssl_tensor_t *weight, *bias; /* (C) */
    float eps;
} ssl_nn_layernorm_t;

SSL_API int ssl_nn_layernorm_init(ssl_nn_layernorm_t *m, ssl_params_t *p, const char *name,
                                  int64_t dim, float eps);
SSL_API ssl_tensor_t *ssl_nn_layernorm_forward(ssl_ctx_t *ctx, const ssl_nn_layernorm_t *m,
                                               ssl_tensor_t *x);

/* ---------------------------------------------------------------- MLP */

typedef enum ssl_norm_kind { SSL_NORM_NONE = 0, SSL_NORM_BN, SSL_NORM_LN } ssl_norm_kind_t;
typedef enum ssl_act_kind {
    SSL_ACT_NONE = 0,
    SSL_ACT_RELU,
    SSL_ACT_GELU,
    SSL_ACT_GELU_TANH
} ssl_act_kind_t;

#define SSL_MLP_MAX_LAYERS 8

typedef struct ssl_mlp_cfg {
    int layers;         /* number of linear layers (>= 1) */
    int64_t in, hidden, out;
    int norm;           /* ssl_norm_kind_t after each hidden linear */
    int act;            /* ssl_act_kind_t after each hidden norm */
    int last_norm;      /* ssl_norm_kind_t on the output (BYOL/SimSiam projector: BN) */
    int last_norm_affine; /* affine weights on the output norm */
    int bias;           /* linear biases (a linear followed by BN usually has none) */
    ssl_init_t init;
    int no_last_bias;   /* 1: the last linear has no bias either (VICReg, Barlow, MoCo v3) */
} ssl_mlp_cfg_t;

/* Linear layers are named "<name>.<index>" with the index of the torch nn.Sequential that the
 * same MLP would be (Linear, norm, act, Linear, ...), so "projector.0.weight", "projector.1.*"
 * for its BatchNorm, "projector.3.weight" for the second linear. */
typedef struct ssl_mlp {
    ssl_mlp_cfg_t cfg;
    ssl_nn_linear_t lin[SSL_MLP_MAX_LAYERS];
    ssl_nn_batchnorm_t bn[SSL_MLP_MAX_LAYERS];
    ssl_nn_layernorm_t ln[SSL_MLP_MAX_LAYERS];
} ssl_mlp_t;

SSL_API int ssl_mlp_init(ssl_mlp_t *m, ssl_params_t *p, const char *name, const ssl_mlp_cfg_t *cfg,
                         uint64_t seed);
SSL_API ssl_tensor_t *ssl_mlp_forward(ssl_ctx_t *ctx, const ssl_mlp_t *m, ssl_tensor_t *x,
                                      int training);
SSL_API ssl_tensor_t *ssl_nn_activation(ssl_ctx_t *ctx, ssl_tensor_t *x, int act);

/* ---------------------------------------------------------------- attention, transformer */

typedef struct ssl_nn_attention {
    ssl_nn_linear_t qkv;  /* (3C, C), timm "attn.qkv" */
    ssl_nn_linear_t proj; /* (C, C), timm "attn.proj" */
    int heads;
    int64_t dim;
} ssl_nn_attention_t;

SSL_API int ssl_nn_attention_init(ssl_nn_attention_t *m, ssl_params_t *p, const char *name,
                                  int64_t dim, int heads, int qkv_bias, ssl_init_t init,
                                  uint64_t seed);
/* x (B, T, C). attn_bias: NULL, or added to the (B, heads, T, T) scores before softmax with
 * broadcasting, e.g. (T, T) with -inf above the diagonal for causal attention or (B, 1, 1, T)
 * with -inf at padded keys. */
SSL_API ssl_tensor_t *ssl_nn_attention_forward(ssl_ctx_t *ctx, const ssl_nn_attention_t *m,
                                               ssl_tensor_t *x, ssl_tensor_t *attn_bias);

/* Multi-head cross-attention (torch.nn.MultiheadAttention with kdim = vdim = kv_dim): queries
 * from x (B, Tq, C), keys and values from kv (B, Tk, kv_dim); per head (D = C / heads)
 * softmax(Q K^T / sqrt(D) + attn_bias) V, heads side by side, then the output projection.
 * Parameters "<name>.q" (C, C), "<name>.k" and "<name>.v" (C, kv_dim), "<name>.proj" (C, C),
 * all with biases. attn_bias: NULL, or added to the (B, heads, Tq, Tk) scores with
 * broadcasting. */
typedef struct ssl_nn_cross_attention {
    ssl_nn_linear_t q, k, v, proj;
    int heads;
    int64_t dim, kv_dim;
} ssl_nn_cross_attention_t;

SSL_API int ssl_nn_cross_attention_init(ssl_nn_cross_attention_t *m, ssl_params_t *p,
                                        const char *name, int64_t dim, int64_t kv_dim, int heads,
                                        ssl_init_t init, uint64_t seed);
SSL_API ssl_tensor_t *ssl_nn_cross_attention_forward(ssl_ctx_t *ctx,
                                                     const ssl_nn_cross_attention_t *m,
                                                     ssl_tensor_t *x, ssl_tensor_t *kv,
                                                     ssl_tensor_t *attn_bias);

/* Pre-norm transformer block (timm Block): x + attn(norm1(x)); x + mlp(norm2(x)), GELU MLP
 * "mlp.fc1", "mlp.fc2". */
typedef struct ssl_nn_block {
    ssl_nn_layernorm_t norm1, norm2;
    ssl_nn_attention_t attn;
    ssl_nn_linear_t fc1, fc2;
    int act; /* SSL_ACT_GELU */
} ssl_nn_block_t;

SSL_API int ssl_nn_block_init(ssl_nn_block_t *m, ssl_params_t *p, const char *name, int64_t dim,
                              int heads, double mlp_ratio, int qkv_bias, ssl_init_t init,
                              uint64_t seed);
SSL_API ssl_tensor_t *ssl_nn_block_forward(ssl_ctx_t *ctx, const ssl_nn_block_t *m, ssl_tensor_t *x,
                                           ssl_tensor_t *attn_bias);

/* Patch embedding (timm "patch_embed.proj"): conv k = stride = patch, then (B, T, C). */
typedef struct ssl_nn_patch_embed {
    ssl_nn_conv2d_t proj;
    int patch;
    int64_t grid_h, grid_w; /* tokens per side */
} ssl_nn_patch_embed_t;

SSL_API int ssl_nn_patch_embed_init(ssl_nn_patch_embed_t *m, ssl_params_t *p, const char *name,
                                    int64_t in_chans, int64_t dim, int patch, int64_t img_h,
                                    int64_t img_w, ssl_init_t init, uint64_t seed);
SSL_API ssl_tensor_t *ssl_nn_patch_embed_forward(ssl_ctx_t *ctx, const ssl_nn_patch_embed_t *m,
                                                 ssl_tensor_t *x);

/* Fixed 2-D sin-cos positional embedding (MAE/I-JEPA get_2d_sincos_pos_embed): out
 * (grid_h * grid_w, dim) for tokens in row-major order; the first dim/2 channels encode the
 * column (w) coordinate, the last dim/2 the row (h), each as [sin(pos w_k), cos(pos w_k)] with
 * w_k = 10000^(-k / (dim/4)). dim must be a multiple of 4. */
SSL_API int ssl_nn_sincos_2d(float *out, int64_t dim, int64_t grid_h, int64_t grid_w);

#ifdef __cplusplus
}
#endif
#endif
