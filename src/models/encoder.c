/* The encoder interface over ResNet and ViT, and the named presets. */
#include "core/check.h"
#include "models_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ssl_encoder_preset(const char *type, ssl_encoder_cfg_t *cfg)
{
    if (SSL__IS_NULL(type, __func__) || SSL__IS_NULL(cfg, __func__))
        return SSL_ERR_INVALID;
    memset(cfg, 0, sizeof *cfg);
    static const struct { const char *name; int depth; } resnets[] = {
        {"resnet18", 18}, {"resnet34", 34}, {"resnet50", 50}};
    for (size_t i = 0; i < sizeof resnets / sizeof resnets[0]; i++)
        if (!strcmp(type, resnets[i].name)) {
            cfg->kind = SSL_ENC_RESNET;
            cfg->resnet = (ssl_resnet_cfg_t){resnets[i].depth, 0, 64, 3, 0, 1};
            return SSL_OK;
        }
    static const struct { const char *name; int dim, depth, heads; } vits[] = {
        {"vit_tiny", 192, 12, 3}, {"vit_small", 384, 12, 6}, {"vit_base", 768, 12, 12}};
    for (size_t i = 0; i < sizeof vits / sizeof vits[0]; i++)
        if (!strcmp(type, vits[i].name)) {
            cfg->kind = SSL_ENC_VIT;
            cfg->vit = (ssl_vit_cfg_t){224, 16, 3, vits[i].dim, vits[i].depth, vits[i].heads,
                                       4.0, 1, SSL_POOL_CLS, SSL_POS_LEARNED, 1,
                                       SSL_INIT_TRUNC_NORMAL_02};
            return SSL_OK;
        }
    if (!strcmp(type, "dcgan")) {
        cfg->kind = SSL_ENC_CONVNET;
        cfg->convnet = (ssl_convnet_cfg_t){3, 64, 2, 0.2};
        return SSL_OK;
    }
    return ssl_set_error(SSL_ERR_CONFIG, "unknown encoder type '%s' (resnet18, resnet34, "
                         "resnet50, vit_tiny, vit_small, vit_base, dcgan)", type);
}

int ssl_encoder_cfg_in_channels(const ssl_encoder_cfg_t *cfg)
{
    if (SSL__IS_NULL(cfg, __func__))
        return SSL_ERR_INVALID;
    return cfg->kind == SSL_ENC_VIT       ? cfg->vit.in_channels
           : cfg->kind == SSL_ENC_CONVNET ? cfg->convnet.in_channels
                                          : cfg->resnet.in_channels;
}

ssl_encoder_t *ssl_encoder_create(const ssl_encoder_cfg_t *cfg, ssl_params_t *p,
                                  const char *prefix, uint64_t seed)
{
    if (SSL__IS_NULL(cfg, __func__) || SSL__IS_NULL(p, __func__))
        return NULL;
    ssl_encoder_t *e = calloc(1, sizeof *e);
    if (!e) {
        ssl_set_error(SSL_ERR_NOMEM, "encoder: out of memory");
        return NULL;
    }
    e->cfg = *cfg;
    e->params = p;
    e->first_param = ssl_params_count(p);
    char *pre = e->prefix;
    if (snprintf(pre, sizeof e->prefix, "%s%s", prefix ? prefix : "",
                 prefix && *prefix ? "." : "") >= (int)sizeof e->prefix) {
        ssl_set_error(SSL_ERR_INVALID, "encoder: prefix '%.60s...' is too long", prefix);
        free(e);
        return NULL;
    }
    int st = cfg->kind == SSL_ENC_RESNET    ? ssl__resnet_init(e, p, pre, seed)
             : cfg->kind == SSL_ENC_VIT     ? ssl__vit_init(e, p, pre, seed)
             : cfg->kind == SSL_ENC_CONVNET ? ssl__convnet_init(e, p, pre, seed)
                 : ssl_set_error(SSL_ERR_CONFIG, "encoder: unknown kind %d", cfg->kind);
    if (st != SSL_OK) {
        ssl_encoder_free(e);
        return NULL;
    }
    e->n_params = ssl_params_count(p) - e->first_param;
    return e;
}

void ssl_encoder_free(ssl_encoder_t *e)
{
    if (!e)
        return;
    free(e->resnet.blocks);
    free(e->vit.blocks);
    free(e);
}

const char *ssl__encoder_kind_name(const ssl_encoder_t *e)
{
    return e->cfg.kind == SSL_ENC_VIT ? "ViT" : e->cfg.kind == SSL_ENC_CONVNET ? "dcgan" : "ResNet";
}

const ssl_encoder_cfg_t *ssl_encoder_config(const ssl_encoder_t *e)
{
    return SSL__IS_NULL(e, __func__) ? NULL : &e->cfg;
}

int64_t ssl_encoder_dim(const ssl_encoder_t *e)
{
    if (SSL__IS_NULL(e, __func__))
        return SSL_ERR_INVALID;
    return e->cfg.kind == SSL_ENC_RESNET    ? e->resnet.out_dim
           : e->cfg.kind == SSL_ENC_CONVNET ? e->convnet.out_dim
                                            : e->cfg.vit.dim;
}

int64_t ssl_encoder_num_tokens(const ssl_encoder_t *e)
{
    if (SSL__IS_NULL(e, __func__))
        return SSL_ERR_INVALID;
    return e->cfg.kind == SSL_ENC_VIT ? e->vit.patch.grid_h * e->vit.patch.grid_w : 0;
}

int64_t ssl_encoder_num_params(const ssl_encoder_t *e)
{
    if (SSL__IS_NULL(e, __func__))
        return SSL_ERR_INVALID;
    int64_t n = 0;
    for (int i = e->first_param; i < e->first_param + e->n_params; i++) {
        const ssl_param_info_t *in = ssl_params_info(e->params, i);
        if (in->kind == SSL_PARAM_TRAINABLE)
            n += in->t->numel;
    }
    return n;
}

int64_t ssl_encoder_macs(const ssl_encoder_t *e, int64_t h, int64_t w)
{
    if (SSL__IS_NULL(e, __func__))
        return SSL_ERR_INVALID;
    if (SSL__BAD_RANGE(h, 1, INT32_MAX, __func__) || SSL__BAD_RANGE(w, 1, INT32_MAX, __func__))
        return SSL_ERR_INVALID;
    return e->cfg.kind == SSL_ENC_RESNET    ? ssl__resnet_macs(e, h, w)
           : e->cfg.kind == SSL_ENC_CONVNET ? ssl__convnet_macs(e, h, w)
                                            : ssl__vit_macs(e, h, w);
}


/* The forward behind the public entry points: token subset, masked token lists or a (B, T) map. */
static int forward(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x,
                   const int32_t *keep_idx, int64_t keep, const int32_t *masked_idx,
                   int64_t n_masked, const float *token_mask, ssl_tensor_t *mask_token,
                   int n_blocks_out, ssl_tensor_t **blocks_out, int training,
                   ssl_encoder_out_t *out)
{
    if (SSL__IS_NULL(out, __func__))
        return SSL_ERR_INVALID;
    memset(out, 0, sizeof *out);
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(e, __func__))
        return SSL_ERR_INVALID;
    if (SSL__NULL_INPUT(x, __func__))
        return ssl_last_status();
    int64_t want_c = ssl_encoder_cfg_in_channels(&e->cfg);
    if (x->ndim != 4 || x->shape[1] != want_c) {
        char s[96];
        return ssl_set_error(SSL_ERR_SHAPE, "encoder: input %s, expected (B, %lld, H, W)",
                             ssl_shape_str(x, s, sizeof s), (long long)want_c);
    }
    if (e->cfg.kind != SSL_ENC_VIT) {
        if (keep_idx || masked_idx || token_mask)
            return ssl_set_error(SSL_ERR_INVALID, "encoder: a %s cannot take a token subset "
                                 "or masked tokens", ssl__encoder_kind_name(e));
        if (e->cfg.kind == SSL_ENC_CONVNET) {
            /* each convolution halves the side (rounding down): it must not reach 0 */
            if ((x->shape[2] >> e->cfg.convnet.depth) < 1 ||
                (x->shape[3] >> e->cfg.convnet.depth) < 1)
                return ssl_set_error(SSL_ERR_SHAPE, "encoder: a %lldx%lld input is too small "
                                     "for %d stride-2 convolutions (dcgan depth)",
                                     (long long)x->shape[2], (long long)x->shape[3],
                                     e->cfg.convnet.depth);
            return ssl__convnet_forward(ctx, e, x, training, out);
        }
        return ssl__resnet_forward(ctx, e, x, training, out);
    }
    int64_t S = e->cfg.vit.image_size;
    if (x->shape[2] != S || x->shape[3] != S) {
        char s[96];
        return ssl_set_error(SSL_ERR_SHAPE, "encoder: input %s, this ViT takes %lldx%lld images",
                             ssl_shape_str(x, s, sizeof s), (long long)S, (long long)S);
    }
    if ((masked_idx || token_mask) && (!mask_token || mask_token->numel != e->cfg.vit.dim))
        return ssl_set_error(SSL_ERR_SHAPE, "encoder: masked tokens need a mask token of %d "
                             "values", e->cfg.vit.dim);
    return ssl__vit_forward(ctx, e, x, keep_idx, keep, masked_idx, n_masked, token_mask, mask_token,
                            n_blocks_out, blocks_out, out);
}

int ssl_encoder_forward(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x,
                        const int32_t *keep_idx, int64_t keep, int training,
                        ssl_encoder_out_t *out)
{
    return forward(ctx, e, x, keep_idx, keep, NULL, 0, NULL, NULL, 0, NULL, training, out);
}

int ssl_encoder_forward_masked(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x,
                               const int32_t *keep_idx, int64_t keep, const int32_t *masked_idx,
                               int64_t n_masked, ssl_tensor_t *mask_token, int training,
                               ssl_encoder_out_t *out)
{
    return forward(ctx, e, x, keep_idx, keep, masked_idx, n_masked, NULL, mask_token, 0, NULL,
                   training, out);
}

int ssl_encoder_forward_token_mask(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x,
                                   const float *token_mask, ssl_tensor_t *mask_token,
                                   int training, ssl_encoder_out_t *out)
{
    if (!token_mask) {
        if (out)
            memset(out, 0, sizeof *out);
        return ssl_set_error(SSL_ERR_INVALID, "%s: NULL token_mask", __func__);
    }
    return forward(ctx, e, x, NULL, 0, NULL, 0, token_mask, mask_token, 0, NULL, training, out);
}

int ssl_encoder_forward_blocks(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x, int n,
                               int training, ssl_tensor_t **blocks, ssl_encoder_out_t *out)
{
    if (SSL__IS_NULL(e, __func__) || SSL__IS_NULL(blocks, __func__)) {
        if (out)
            memset(out, 0, sizeof *out);
        return SSL_ERR_INVALID;
    }
    if (e->cfg.kind != SSL_ENC_VIT || n < 1 || n > e->cfg.vit.depth) {
        if (out)
            memset(out, 0, sizeof *out);
        return ssl_set_error(SSL_ERR_INVALID, "%s: block outputs need a ViT and n in 1..depth "
                             "(%d), got %d", __func__,
                             e->cfg.kind == SSL_ENC_VIT ? e->cfg.vit.depth : 0, n);
    }
    int st = forward(ctx, e, x, NULL, 0, NULL, 0, NULL, NULL, n, blocks, training, out);
    for (int i = 0; st == SSL_OK && e->cfg.vit.cls_token && i < n; i++) /* patch tokens only */
        if (!(blocks[i] = ssl_slice(ctx, blocks[i], 1, 1, blocks[i]->shape[1] - 1)))
            st = ssl_last_status();
    return st;
}

ssl_tensor_t *ssl_encoder_readout(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x, int n,
                                  int training)
{
    ssl_encoder_out_t o;
    if (SSL__IS_NULL(e, __func__))
        return NULL;
    if (n == 1)
        return ssl_encoder_forward(ctx, e, x, NULL, 0, training, &o) == SSL_OK ? o.pooled : NULL;
    int depth = e->cfg.kind == SSL_ENC_VIT       ? e->cfg.vit.depth
                : e->cfg.kind == SSL_ENC_CONVNET ? e->cfg.convnet.depth
                                                 : 0;
    if (n < 1 || n > depth) {
        ssl_set_error(SSL_ERR_INVALID, "%s: a readout of %d blocks needs %s (the encoder is a %s "
                      "of depth %d)", __func__, n,
                      n < 1 ? "n >= 1" : "a ViT or dcgan encoder at least that deep",
                      ssl__encoder_kind_name(e), depth);
        return NULL;
    }
    if (e->cfg.kind == SSL_ENC_CONVNET) { /* DCGAN's protocol: 4 x 4 max-pooled grids */
        if (SSL__NULL_INPUT(x, __func__))
            return NULL;
        return ssl__convnet_readout(ctx, e, x, n, training);
    }
    ssl_tensor_t *blocks[64];
    if (forward(ctx, e, x, NULL, 0, NULL, 0, NULL, NULL, n, blocks, training, &o) != SSL_OK)
        return NULL;
    return ssl__vit_readout(ctx, e, blocks, n);
}
