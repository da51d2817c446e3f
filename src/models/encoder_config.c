/* Encoder configuration from JSON: the strict reader behind model.encoder in run configs and
 * `sslc info --encoder`. */
#include "encoder_config.h"

#include <string.h>

static const char *const k_types[] = {"resnet18", "resnet34", "resnet50", "vit_tiny",
                                      "vit_small", "vit_base", "vit", "dcgan", NULL};

int ssl__encoder_cfg_read(ssl_cfg_t *c, ssl_encoder_cfg_t *cfg, const char **weights)
{
    /* "weights" last: it is a key only where the caller takes it */
    static const char *const resnet_keys[] = {
        "type", "stem", "in_channels", "width", "zero_init_residual", "bn_groups", "weights", NULL};
    static const char *const vit_keys[] = {"type",      "image_size", "patch_size", "in_channels",
                                           "dim",       "depth",      "heads",      "mlp_ratio",
                                           "cls_token", "pool",       "pos_embed",  "qkv_bias",
                                           "init",      "weights",    NULL};
    /* without `weights` the list ends before it */
    const char *rk[sizeof resnet_keys / sizeof *resnet_keys],
        *vk[sizeof vit_keys / sizeof *vit_keys];
    memcpy(rk, resnet_keys, sizeof rk);
    memcpy(vk, vit_keys, sizeof vk);
    if (!weights) {
        rk[sizeof rk / sizeof *rk - 2] = NULL;
        vk[sizeof vk / sizeof *vk - 2] = NULL;
    }
    ssl_cfg_require(c, "type");
    int t = ssl_cfg_enum(c, "type", k_types, 0);
    if (ssl_cfg_status(c))
        return ssl_cfg_status(c);
    ssl_encoder_preset(t == 6 ? "vit_tiny" : k_types[t], cfg);
    if (cfg->kind == SSL_ENC_CONVNET) {
        static const char *const conv_keys[] = {"type",  "in_channels", "width",
                                                "depth", "slope",       "weights", NULL};
        const char *ck[sizeof conv_keys / sizeof *conv_keys];
        memcpy(ck, conv_keys, sizeof ck);
        if (!weights)
            ck[sizeof ck / sizeof *ck - 2] = NULL;
        ssl_cfg_keys(c, ck);
        ssl_convnet_cfg_t *n = &cfg->convnet;
        n->in_channels = ssl_cfg_int(c, "in_channels", 3, 1, 64);
        n->width = ssl_cfg_int(c, "width", 64, 1, 8192);
        n->depth = ssl_cfg_int(c, "depth", 2, 1, 6);
        n->slope = ssl_cfg_double(c, "slope", 0.2, 0.0, 0.999);
        if (!ssl_cfg_status(c) && ((int64_t)n->width << (n->depth - 1)) > 8192)
            ssl_cfg_fail(c, "width", "%d doubled by each of %d more convolutions exceeds 8192",
                         n->width, n->depth - 1);
    } else if (cfg->kind == SSL_ENC_RESNET) {
        static const char *const stems[] = {"imagenet", "cifar", NULL};
        ssl_cfg_keys(c, rk);
        ssl_resnet_cfg_t *r = &cfg->resnet;
        r->cifar_stem = ssl_cfg_enum(c, "stem", stems, 0);
        r->in_channels = ssl_cfg_int(c, "in_channels", 3, 1, 64);
        r->width = ssl_cfg_int(c, "width", 64, 1, 4096);
        r->zero_init_residual = ssl_cfg_bool(c, "zero_init_residual", 0);
        r->bn_groups = ssl_cfg_int(c, "bn_groups", 1, 1, 64);
    } else {
        static const char *const pools[] = {"cls", "mean", NULL};
        static const char *const poss[] = {"learned", "sincos", NULL};
        static const char *const inits[] = {"timm", "mae", NULL};
        ssl_cfg_keys(c, vk);
        ssl_vit_cfg_t *v = &cfg->vit;
        if (t == 6) { /* custom: dim/depth/heads are required */
            ssl_cfg_require(c, "dim");
            ssl_cfg_require(c, "depth");
            ssl_cfg_require(c, "heads");
        }
        v->image_size = ssl_cfg_int(c, "image_size", v->image_size, 1, 4096);
        v->patch_size = ssl_cfg_int(c, "patch_size", v->patch_size, 1, 1024);
        v->in_channels = ssl_cfg_int(c, "in_channels", 3, 1, 64);
        v->dim = ssl_cfg_int(c, "dim", v->dim, 1, 16384);
        v->depth = ssl_cfg_int(c, "depth", v->depth, 1, 64);
        v->heads = ssl_cfg_int(c, "heads", v->heads, 1, 256);
        v->mlp_ratio = ssl_cfg_double(c, "mlp_ratio", 4.0, 0.125, 16.0);
        v->cls_token = ssl_cfg_bool(c, "cls_token", 1);
        v->pool = ssl_cfg_enum(c, "pool", pools, v->cls_token ? SSL_POOL_CLS : SSL_POOL_MEAN);
        v->pos_embed = ssl_cfg_enum(c, "pos_embed", poss, SSL_POS_LEARNED);
        v->qkv_bias = ssl_cfg_bool(c, "qkv_bias", 1);
        v->init = ssl_cfg_enum(c, "init", inits, 0) == 1 ? SSL_INIT_XAVIER_UNIFORM
                                                         : SSL_INIT_TRUNC_NORMAL_02;
        if (!ssl_cfg_status(c)) {
            if (v->image_size % v->patch_size)
                ssl_cfg_fail(c, "patch_size", "%d does not divide image_size %d", v->patch_size,
                             v->image_size);
            else if (v->dim % v->heads)
                ssl_cfg_fail(c, "heads", "%d does not divide dim %d", v->heads, v->dim);
            else if (v->pool == SSL_POOL_CLS && !v->cls_token)
                ssl_cfg_fail(c, "pool", "'cls' needs cls_token true");
            else if (v->pos_embed == SSL_POS_SINCOS && v->dim % 4)
                ssl_cfg_fail(c, "pos_embed", "'sincos' needs dim divisible by 4 (dim %d)",
                             v->dim);
        }
    }
    if (weights) { /* absent or null: random initialisation (nothing to fill in) */
        *weights = ssl_cfg_str(c, "weights", NULL);
        if (*weights && !**weights)
            ssl_cfg_fail(c, "weights",
                         "empty file name (leave the key out for a random initialisation)");
    }
    return ssl_cfg_status(c);
}

int ssl_encoder_cfg_from_json(const char *json, size_t len, const char *source,
                              ssl_encoder_cfg_t *cfg)
{
    cJSON *doc = ssl_json_parse(json, len, source);
    if (!doc)
        return ssl_last_status();
    int err = 0;
    ssl_cfg_t c = ssl_cfg_root(doc, source, &err, 0);
    int st = ssl__encoder_cfg_read(&c, cfg, NULL);
    cJSON_Delete(doc);
    return st;
}
