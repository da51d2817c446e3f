#ifndef SSL_MODELS_INTERNAL_H
#define SSL_MODELS_INTERNAL_H

#include "ssl/models.h"

typedef struct ssl_resnet_block {
    ssl_nn_conv2d_t conv1, conv2, conv3; /* conv3 only in bottlenecks */
    ssl_nn_batchnorm_t bn1, bn2, bn3;
    ssl_nn_conv2d_t ds_conv;             /* downsample.0 / downsample.1 */
    ssl_nn_batchnorm_t ds_bn;
    int has_ds;
} ssl_resnet_block_t;

typedef struct ssl_resnet {
    ssl_nn_conv2d_t conv1;
    ssl_nn_batchnorm_t bn1;
    ssl_resnet_block_t *blocks; /* all blocks of layer1..layer4 in order */
    int n_blocks;
    int layer_of[64];           /* which layer (0..3) each block belongs to */
    int bottleneck;
    int64_t out_dim;
} ssl_resnet_t;

typedef struct ssl_vit {
    ssl_nn_patch_embed_t patch;
    ssl_tensor_t *cls_token; /* (1, 1, D) or NULL */
    ssl_tensor_t *pos_embed; /* (1, T [+1], D) */
    ssl_nn_block_t *blocks;
    ssl_nn_layernorm_t norm;
} ssl_vit_t;

#define SSL_CONVNET_MAX_DEPTH 6

typedef struct ssl_convnet {
    ssl_nn_conv2d_t conv[SSL_CONVNET_MAX_DEPTH];
    ssl_nn_batchnorm_t bn[SSL_CONVNET_MAX_DEPTH]; /* bn[0] unused: no norm after the first */
    int64_t out_dim;
} ssl_convnet_t;

struct ssl_encoder {
    ssl_encoder_cfg_t cfg;
    ssl_params_t *params;
    int first_param, n_params; /* range of this encoder's entries in the store */
    char prefix[128];          /* "" or "encoder.": what its parameter names start with */
    ssl_resnet_t resnet;
    ssl_vit_t vit;
    ssl_convnet_t convnet;
};

int ssl__resnet_init(ssl_encoder_t *e, ssl_params_t *p, const char *prefix, uint64_t seed);
int ssl__resnet_forward(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x, int training,
                        ssl_encoder_out_t *out);
int64_t ssl__resnet_macs(const ssl_encoder_t *e, int64_t h, int64_t w);
/* "ResNet", "ViT" or "dcgan", for messages. */
const char *ssl__encoder_kind_name(const ssl_encoder_t *e);
int ssl__convnet_init(ssl_encoder_t *e, ssl_params_t *p, const char *prefix, uint64_t seed);
int ssl__convnet_forward(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x, int training,
                         ssl_encoder_out_t *out);
/* The last n layers' outputs (after LeakyReLU), each adaptive-max-pooled to 4 x 4 (smaller maps
 * keep their size), flattened and concatenated: (B, sum C_i g_i). */
ssl_tensor_t *ssl__convnet_readout(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x, int n,
                                   int training);
int64_t ssl__convnet_macs(const ssl_encoder_t *e, int64_t h, int64_t w);
int ssl__vit_init(ssl_encoder_t *e, ssl_params_t *p, const char *prefix, uint64_t seed);
/* masked_idx (B, n_masked) or token_mask (B, T) (1: masked): those patch embeddings become
 * mask_token before positions are added. blocks_out[0..n_blocks_out) get the tokens
 * (B, cls + K, D) output by the last n_blocks_out blocks (0..depth), before the final norm,
 * the cls token first when the ViT has one. */
int ssl__vit_forward(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x,
                     const int32_t *keep_idx, int64_t keep, const int32_t *masked_idx,
                     int64_t n_masked, const float *token_mask, ssl_tensor_t *mask_token,
                     int n_blocks_out, ssl_tensor_t **blocks_out, ssl_encoder_out_t *out);
/* The probe readout of blocks[0..n) (tokens as ssl__vit_forward's blocks_out, n <= 64): each
 * through the final LayerNorm and pooled as the encoder pools, concatenated: (B, n * D). */
ssl_tensor_t *ssl__vit_readout(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *const *blocks,
                               int n);
int64_t ssl__vit_macs(const ssl_encoder_t *e, int64_t h, int64_t w);

#endif
