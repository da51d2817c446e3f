/* libssl models: the encoders (ResNet, ViT) behind one interface.
 *
 * Parameter names follow torchvision (ResNet: conv1.weight, bn1.running_mean,
 * layer1.0.conv1.weight, layer1.0.downsample.0.weight, ...) and timm (ViT: cls_token, pos_embed,
 * patch_embed.proj.weight, blocks.0.attn.qkv.weight, norm.weight, ...) under the caller's
 * prefix (e.g. "encoder."), so weights move between libssl and PyTorch by name.
 */
#ifndef SSL_MODELS_H
#define SSL_MODELS_H

#include "ssl/core.h"
#include "ssl/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ssl_encoder_kind {
    SSL_ENC_RESNET = 0,
    SSL_ENC_VIT = 1,
    SSL_ENC_CONVNET = 2 /* DCGAN's discriminator body */
} ssl_encoder_kind_t;

typedef struct ssl_resnet_cfg {
    int depth;            /* 18, 34 or 50 */
    int cifar_stem;       /* 1: 3x3 stride 1, no max-pool; 0: 7x7 stride 2 + max-pool */
    int width;            /* base width (64 in torchvision; 32 for CPU-sized runs) */
    int in_channels;      /* 3, or 1 for grayscale */
    int zero_init_residual; /* last BN gamma of each block starts at 0 */
    int bn_groups;          /* split BatchNorm in training (ssl_nn_batchnorm_t.groups); 0 or 1:
                               BatchNorm over the whole batch */
} ssl_resnet_cfg_t;

typedef enum ssl_vit_pool { SSL_POOL_CLS = 0, SSL_POOL_MEAN = 1 } ssl_vit_pool_t;
typedef enum ssl_pos_embed { SSL_POS_LEARNED = 0, SSL_POS_SINCOS = 1 } ssl_pos_embed_t;

typedef struct ssl_vit_cfg {
    int image_size;   /* square input side */
    int patch_size;
    int in_channels;
    int dim, depth, heads;
    double mlp_ratio; /* 4 */
    int cls_token;    /* prepend a cls token */
    int pool;         /* ssl_vit_pool_t; SSL_POOL_CLS requires cls_token */
    int pos_embed;    /* ssl_pos_embed_t; sin-cos is a fixed buffer */
    int qkv_bias;     /* 1 */
    int init;         /* ssl_init_t for linears: SSL_INIT_TRUNC_NORMAL_02 (timm) or XAVIER (MAE) */
} ssl_vit_cfg_t;

/* The DCGAN discriminator's body (Radford et al. 2016, the PyTorch DCGAN example): `depth`
 * convolutions 4x4, stride 2, padding 1, no bias, of width, 2 width, 4 width, ... channels, each
 * followed by BatchNorm (all but the first) and LeakyReLU(slope); no pooling inside (strided
 * convolutions), pooled = the mean of the last map over its positions. Weights N(0, 0.02),
 * BatchNorm weights N(1, 0.02) and biases 0 (the example's weights_init). Names: conv1.weight,
 * conv2.weight, bn2.weight, bn2.running_mean, ... (layer i from 1). */
typedef struct ssl_convnet_cfg {
    int in_channels;
    int width; /* channels of the first convolution (64) */
    int depth; /* convolutions: 2 takes 28 x 28 to 7 x 7 (1..6) */
    double slope; /* LeakyReLU's negative slope (0.2) */
} ssl_convnet_cfg_t;

typedef struct ssl_encoder_cfg {
    int kind; /* ssl_encoder_kind_t */
    ssl_resnet_cfg_t resnet;
    ssl_vit_cfg_t vit;
    ssl_convnet_cfg_t convnet;
} ssl_encoder_cfg_t;

/* The input channels the encoder of cfg takes. */
SSL_API int ssl_encoder_cfg_in_channels(const ssl_encoder_cfg_t *cfg);

/* Defaults of the named architectures: "resnet18", "resnet34", "resnet50", "vit_tiny",
 * "vit_small", "vit_base", "dcgan". Returns SSL_ERR_CONFIG for an unknown name. */
SSL_API int ssl_encoder_preset(const char *type, ssl_encoder_cfg_t *cfg);

/* Read an encoder section from JSON text (strict: an unknown key or a bad value is an
 * SSL_ERR_CONFIG error naming the key path, e.g. "model.encoder.widht: unknown key (did you mean
 * 'width'?)"); `source` names the text (a file name) in messages. Keys: type
 * (resnet18|resnet34|resnet50|vit_tiny|vit_small|vit_base|vit|dcgan); ResNet: stem
 * (imagenet|cifar), in_channels, width, zero_init_residual; ViT: image_size, patch_size,
 * in_channels, dim, depth, heads, mlp_ratio, cls_token, pool (cls|mean), pos_embed
 * (learned|sincos), qkv_bias, init (timm|mae); dcgan: in_channels, width, depth, slope. See
 * docs/models.md for defaults. */
SSL_API int ssl_encoder_cfg_from_json(const char *json, size_t len, const char *source,
                                      ssl_encoder_cfg_t *cfg);

typedef struct ssl_encoder ssl_encoder_t;

/* Build an encoder whose parameters are added to p under prefix ("" or "encoder", names get a
 * '.' after a non-empty prefix). Initial values come from seed. NULL + error on bad config. */
SSL_API ssl_encoder_t *ssl_encoder_create(const ssl_encoder_cfg_t *cfg, ssl_params_t *p,
                                          const char *prefix, uint64_t seed);
SSL_API void ssl_encoder_free(ssl_encoder_t *e);
SSL_API const ssl_encoder_cfg_t *ssl_encoder_config(const ssl_encoder_t *e);
SSL_API int64_t ssl_encoder_dim(const ssl_encoder_t *e);        /* pooled feature width */
SSL_API int64_t ssl_encoder_num_tokens(const ssl_encoder_t *e); /* ViT patch tokens; 0 for ResNet */
/* Parameters (trainable elements) of this encoder. */
SSL_API int64_t ssl_encoder_num_params(const ssl_encoder_t *e);
/* Multiply-accumulates of one forward pass on one image of h x w (conv, linear and attention
 * matmuls; norms and activations not counted), as fvcore/ptflops count "FLOPs". */
SSL_API int64_t ssl_encoder_macs(const ssl_encoder_t *e, int64_t h, int64_t w);

typedef struct ssl_encoder_out {
    ssl_tensor_t *pooled; /* (B, C): global-average-pooled map / cls token / mean token */
    ssl_tensor_t *tokens; /* ViT: (B, T or K, C) patch tokens after the final norm; else NULL */
    ssl_tensor_t *fmap;   /* ResNet: (B, C, h, w) last feature map; else NULL */
    ssl_tensor_t *cls;    /* ViT with a cls token: (B, C) its output after the final norm
                             (whatever `pool` says); else NULL */
} ssl_encoder_out_t;

/* Forward x (B, C, H, W). keep_idx (B, keep) selects the patch tokens a ViT sees (MAE / I-JEPA
 * context); NULL keeps all. training selects BatchNorm batch statistics. */
SSL_API int ssl_encoder_forward(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x,
                                const int32_t *keep_idx, int64_t keep, int training,
                                ssl_encoder_out_t *out);

/* SimMIM's forward: the patch embeddings at masked_idx (B, n_masked) are replaced by
 * mask_token (1, 1, D) before positions are added; every token goes through the blocks. */
SSL_API int ssl_encoder_forward_masked(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x,
                                       const int32_t *keep_idx, int64_t keep,
                                       const int32_t *masked_idx, int64_t n_masked,
                                       ssl_tensor_t *mask_token, int training,
                                       ssl_encoder_out_t *out);

/* iBOT's forward: any number of masked tokens per sample. token_mask (B, T) holds 1 for a
 * masked patch, 0 for a visible one; the masked patch embeddings are replaced by mask_token
 * (1, 1, D) before positions are added (as iBOT's masked_embed); every token goes through the
 * blocks. ViT only. */
SSL_API int ssl_encoder_forward_token_mask(ssl_ctx_t *ctx, const ssl_encoder_t *e,
                                           ssl_tensor_t *x, const float *token_mask,
                                           ssl_tensor_t *mask_token, int training,
                                           ssl_encoder_out_t *out);

/* data2vec's teacher: ssl_encoder_forward on every token (out filled as there) that also gives,
 * in blocks[0..n), the patch tokens (B, T, D) output by each of the ViT's last n blocks (after the
 * block's residual additions, before the final norm; the cls token dropped), the deepest last.
 * ViT only, n in 1..depth. */
SSL_API int ssl_encoder_forward_blocks(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x,
                                       int n, int training, ssl_tensor_t **blocks,
                                       ssl_encoder_out_t *out);

/* The features a probe reads: n = 1, the pooled output of ssl_encoder_forward (B, D); n > 1
 * (ViT only, n <= depth), the readout of DINO's ViT evaluation: the tokens output by each of
 * the last n blocks, each through the encoder's final LayerNorm and pooled as the encoder pools
 * (cls token, or mean of the patch tokens), concatenated (B, n * D), the deepest last. NULL +
 * error otherwise (a ResNet with n > 1 names its depth). */
SSL_API ssl_tensor_t *ssl_encoder_readout(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x,
                                          int n, int training);

/* ---------------------------------------------------------------- weights in and out */

/* Set the encoder's parameters and buffers from a safetensors file of torchvision's ResNet or
 * timm's ViT state_dict (names without the encoder's prefix: conv1.weight, bn1.running_mean,
 * layer1.0.conv1.weight, ...; patch_embed.proj.weight, cls_token, pos_embed,
 * blocks.0.attn.qkv.weight, norm.weight, ...), converting F16/BF16/F64 to float32. Strict:
 * a parameter the file lacks (missing), a tensor that is no parameter (unexpected) and a tensor
 * whose shape differs (mis-shaped: a 7x7 ImageNet stem into a CIFAR-stem encoder) fail with
 * SSL_ERR_FORMAT naming the file, the count of each kind, the first few tensors and both shapes
 * (the debug log lists them all); then nothing is loaded. BatchNorm's num_batches_tracked is
 * ignored either way; classifier tensors (fc.*, head.*) are skipped and an info log message
 * names them. An I/O error while reading data (SSL_ERR_IO) can leave some tensors loaded. */
SSL_API int ssl_encoder_load_weights(ssl_encoder_t *e, const char *path);

/* Metadata key of the encoder's JSON description in files ssl_encoder_save_weights writes. */
#define SSL_WEIGHTS_META_ENCODER "sslc.encoder"

/* Write the encoder alone under the names ssl_encoder_load_weights reads (torchvision / timm:
 * `torchvision.models.resnet18(...).load_state_dict(..., strict=True)` takes a ResNet-18's file
 * once its fc is removed or the file's absence of fc.* allowed), num_batches_tracked as I64
 * scalars, __metadata__ {"format": "pt"} and, when encoder_json is not NULL, the encoder's JSON
 * description under SSL_WEIGHTS_META_ENCODER. Atomic (temp file, fsync, rename). */
SSL_API int ssl_encoder_save_weights(const ssl_encoder_t *e, const char *path,
                                     const char *encoder_json);

#ifdef __cplusplus
}
#endif
#endif
