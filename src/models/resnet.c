/* ResNet-18/34/50 as torchvision builds them (v1.5: stride on the 3x3 of bottlenecks), with
 * an ImageNet or CIFAR stem, any base width and any number of input channels. */
#include "models_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int k_blocks[3][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}};

#define NAME(buf, ...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)

static int conv(ssl_nn_conv2d_t *c, ssl_params_t *p, const char *name, int64_t in, int64_t out,
                int k, int stride, uint64_t seed)
{
    return ssl_nn_conv2d_init(c, p, name, in, out, k, stride, k / 2, 0, SSL_INIT_KAIMING_FAN_OUT,
                              seed);
}

/* groups: split BatchNorm in training (model.encoder.bn_groups) */
static int bn(ssl_nn_batchnorm_t *b, ssl_params_t *p, const char *name, int64_t ch, int groups)
{
    int st = ssl_nn_batchnorm_init(b, p, name, ch, 1, 0.1f, 1e-5f);
    b->groups = groups;
    return st;
}

int ssl__resnet_init(ssl_encoder_t *e, ssl_params_t *p, const char *pre, uint64_t seed)
{
    const ssl_resnet_cfg_t *c = &e->cfg.resnet;
    ssl_resnet_t *r = &e->resnet;
    int variant = c->depth == 18 ? 0 : c->depth == 34 ? 1 : c->depth == 50 ? 2 : -1;
    if (variant < 0)
        return ssl_set_error(SSL_ERR_CONFIG, "resnet: depth must be 18, 34 or 50, got %d",
                             c->depth);
    if (c->width < 1 || c->width > 4096)
        return ssl_set_error(SSL_ERR_CONFIG, "resnet: width must be in 1..4096, got %d",
                             c->width);
    if (c->in_channels < 1 || c->in_channels > 64)
        return ssl_set_error(SSL_ERR_CONFIG, "resnet: in_channels must be in 1..64, got %d",
                             c->in_channels);
    r->bottleneck = variant == 2;
    int exp = r->bottleneck ? 4 : 1;
    r->n_blocks = 0;
    for (int l = 0; l < 4; l++)
        r->n_blocks += k_blocks[variant][l];
    r->blocks = calloc((size_t)r->n_blocks, sizeof *r->blocks);
    if (!r->blocks)
        return ssl_set_error(SSL_ERR_NOMEM, "resnet: out of memory");
    char nm[256];
    int st;
    if ((st = conv(&r->conv1, p, NAME(nm, "%sconv1", pre), c->in_channels, c->width,
                   c->cifar_stem ? 3 : 7, c->cifar_stem ? 1 : 2, seed)) ||
        (st = bn(&r->bn1, p, NAME(nm, "%sbn1", pre), c->width, c->bn_groups)))
        return st;
    int64_t in = c->width;
    int b = 0;
    for (int l = 0; l < 4; l++) {
        int64_t width = (int64_t)c->width << l, out = width * exp;
        for (int i = 0; i < k_blocks[variant][l]; i++, b++) {
            ssl_resnet_block_t *blk = &r->blocks[b];
            r->layer_of[b] = l;
            int stride = (i == 0 && l > 0) ? 2 : 1;
            char base[200];
            NAME(base, "%slayer%d.%d", pre, l + 1, i);
            if (r->bottleneck) {
                if ((st =
                         conv(&blk->conv1, p, NAME(nm, "%s.conv1", base), in, width, 1, 1, seed)) ||
                    (st = bn(&blk->bn1, p, NAME(nm, "%s.bn1", base), width, c->bn_groups)) ||
                    (st = conv(&blk->conv2, p, NAME(nm, "%s.conv2", base), width, width, 3, stride,
                               seed)) ||
                    (st = bn(&blk->bn2, p, NAME(nm, "%s.bn2", base), width, c->bn_groups)) ||
                    (st = conv(&blk->conv3, p, NAME(nm, "%s.conv3", base), width, out, 1, 1,
                               seed)) ||
                    (st = bn(&blk->bn3, p, NAME(nm, "%s.bn3", base), out, c->bn_groups)))
                    return st;
                if (c->zero_init_residual)
                    ssl_nn_fill_const(blk->bn3.weight, 0.0f);
            } else {
                if ((st = conv(&blk->conv1, p, NAME(nm, "%s.conv1", base), in, width, 3, stride,
                               seed)) ||
                    (st = bn(&blk->bn1, p, NAME(nm, "%s.bn1", base), width, c->bn_groups)) ||
                    (st = conv(&blk->conv2, p, NAME(nm, "%s.conv2", base), width, width, 3, 1,
                               seed)) ||
                    (st = bn(&blk->bn2, p, NAME(nm, "%s.bn2", base), width, c->bn_groups)))
                    return st;
                if (c->zero_init_residual)
                    ssl_nn_fill_const(blk->bn2.weight, 0.0f);
            }
            if (stride != 1 || in != out) {
                blk->has_ds = 1;
                if ((st = conv(&blk->ds_conv, p, NAME(nm, "%s.downsample.0", base), in, out, 1,
                               stride, seed)) ||
                    (st = bn(&blk->ds_bn, p, NAME(nm, "%s.downsample.1", base), out, c->bn_groups)))
                    return st;
            }
            in = out;
        }
    }
    r->out_dim = in;
    return SSL_OK;
}

static ssl_tensor_t *block_forward(ssl_ctx_t *ctx, const ssl_resnet_block_t *b, int bottleneck,
                                   ssl_tensor_t *x, int training)
{
    ssl_tensor_t *h = ssl_nn_conv2d_forward(ctx, &b->conv1, x);
    h = ssl_nn_batchnorm_relu_forward(ctx, &b->bn1, h, training);
    h = ssl_nn_conv2d_forward(ctx, &b->conv2, h);
    const ssl_nn_batchnorm_t *last = &b->bn2;
    if (bottleneck) {
        h = ssl_nn_batchnorm_relu_forward(ctx, &b->bn2, h, training);
        h = ssl_nn_conv2d_forward(ctx, &b->conv3, h);
        last = &b->bn3;
    }
    ssl_tensor_t *id = x;
    if (b->has_ds)
        id = ssl_nn_batchnorm_forward(ctx, &b->ds_bn, ssl_nn_conv2d_forward(ctx, &b->ds_conv, x),
                                      training);
    /* relu(bn(h) + id) in one op: the block's normalised output is never stored */
    return ssl_nn_batchnorm_add_relu_forward(ctx, last, h, id, training);
}

int ssl__resnet_forward(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x, int training,
                        ssl_encoder_out_t *out)
{
    const ssl_resnet_t *r = &e->resnet;
    ssl_tensor_t *h = ssl_nn_conv2d_forward(ctx, &r->conv1, x);
    h = ssl_nn_batchnorm_relu_forward(ctx, &r->bn1, h, training);
    if (!e->cfg.resnet.cifar_stem)
        h = ssl_max_pool2d(ctx, h, 3, 2, 1);
    for (int b = 0; b < r->n_blocks; b++)
        h = block_forward(ctx, &r->blocks[b], r->bottleneck, h, training);
    out->fmap = h;
    out->tokens = NULL;
    out->pooled = ssl_global_avg_pool(ctx, h);
    return out->pooled ? SSL_OK : ssl_last_status();
}

static int64_t conv_macs(const ssl_nn_conv2d_t *c, int64_t *h, int64_t *w)
{
    const ssl_tensor_t *wt = c->weight;
    int64_t k = wt->shape[2];
    *h = (*h + 2 * c->padding - k) / c->stride + 1;
    *w = (*w + 2 * c->padding - k) / c->stride + 1;
    return wt->numel * *h * *w;
}

int64_t ssl__resnet_macs(const ssl_encoder_t *e, int64_t h, int64_t w)
{
    const ssl_resnet_t *r = &e->resnet;
    int64_t macs = conv_macs(&r->conv1, &h, &w);
    if (!e->cfg.resnet.cifar_stem) {
        h = (h + 2 - 3) / 2 + 1;
        w = (w + 2 - 3) / 2 + 1;
    }
    for (int b = 0; b < r->n_blocks; b++) {
        const ssl_resnet_block_t *blk = &r->blocks[b];
        int64_t h0 = h, w0 = w;
        macs += conv_macs(&blk->conv1, &h, &w);
        macs += conv_macs(&blk->conv2, &h, &w);
        if (r->bottleneck)
            macs += conv_macs(&blk->conv3, &h, &w);
        if (blk->has_ds)
            macs += conv_macs(&blk->ds_conv, &h0, &w0);
    }
    return macs;
}
