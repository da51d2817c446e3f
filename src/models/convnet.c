/* The DCGAN discriminator's body (Radford et al. 2016) as an encoder: strided 4x4 convolutions,
 * BatchNorm after all but the first, LeakyReLU; pooled features = the last map's spatial mean.
 * Initialised as the PyTorch DCGAN example's weights_init: conv N(0, 0.02), BatchNorm weight
 * N(1, 0.02), bias 0. The readout of several layers is DCGAN's CIFAR-10 protocol: each layer's
 * output max-pooled to a 4 x 4 grid, flattened, concatenated. */
#include "models_internal.h"

#include <stdio.h>

#define NAME(buf, ...) (snprintf(buf, sizeof buf, __VA_ARGS__), buf)

int ssl__convnet_init(ssl_encoder_t *e, ssl_params_t *p, const char *pre, uint64_t seed)
{
    const ssl_convnet_cfg_t *c = &e->cfg.convnet;
    ssl_convnet_t *n = &e->convnet;
    if (c->depth < 1 || c->depth > SSL_CONVNET_MAX_DEPTH)
        return ssl_set_error(SSL_ERR_CONFIG, "dcgan encoder: depth must be in 1..%d, got %d",
                             SSL_CONVNET_MAX_DEPTH, c->depth);
    if (c->width < 1 || ((int64_t)c->width << (c->depth - 1)) > 8192)
        return ssl_set_error(SSL_ERR_CONFIG, "dcgan encoder: width %d doubled %d times must be "
                             "in 1..8192", c->width, c->depth - 1);
    if (c->in_channels < 1 || c->in_channels > 64)
        return ssl_set_error(SSL_ERR_CONFIG, "dcgan encoder: in_channels must be in 1..64, got %d",
                             c->in_channels);
    if (!(c->slope >= 0 && c->slope < 1))
        return ssl_set_error(SSL_ERR_CONFIG, "dcgan encoder: slope must be in [0, 1), got %g",
                             c->slope);
    char nm[256];
    int64_t in = c->in_channels;
    for (int i = 0; i < c->depth; i++) {
        int64_t out = (int64_t)c->width << i;
        int st = ssl_nn_conv2d_init(&n->conv[i], p, NAME(nm, "%sconv%d", pre, i + 1), in, out, 4,
                                    2, 1, 0, SSL_INIT_TORCH_DEFAULT, seed);
        if (st != SSL_OK)
            return st;
        ssl_nn_fill_normal(n->conv[i].weight, 0.0f, 0.02f, seed ^ ssl_nn_name_stream(nm));
        if (i > 0) {
            if ((st = ssl_nn_batchnorm_init(&n->bn[i], p, NAME(nm, "%sbn%d", pre, i + 1), out, 1,
                                            0.1f, 1e-5f)) != SSL_OK)
                return st;
            ssl_nn_fill_normal(n->bn[i].weight, 1.0f, 0.02f,
                               seed ^ ssl_nn_name_stream(NAME(nm, "%sbn%d.weight", pre, i + 1)));
        }
        in = out;
    }
    n->out_dim = in;
    return SSL_OK;
}

int ssl__convnet_forward(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x, int training,
                         ssl_encoder_out_t *out)
{
    const ssl_convnet_cfg_t *c = &e->cfg.convnet;
    const ssl_convnet_t *n = &e->convnet;
    ssl_tensor_t *h = x;
    for (int i = 0; i < c->depth; i++) {
        h = ssl_nn_conv2d_forward(ctx, &n->conv[i], h);
        if (i > 0)
            h = ssl_nn_batchnorm_forward(ctx, &n->bn[i], h, training);
        h = ssl_leaky_relu(ctx, h, (float)c->slope);
    }
    out->fmap = h;
    out->tokens = NULL;
    out->pooled = ssl_global_avg_pool(ctx, h);
    return out->pooled ? SSL_OK : ssl_last_status();
}

ssl_tensor_t *ssl__convnet_readout(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x, int n,
                                   int training)
{
    const ssl_convnet_cfg_t *c = &e->cfg.convnet;
    const ssl_convnet_t *net = &e->convnet;
    ssl_tensor_t *h = x, *parts[SSL_CONVNET_MAX_DEPTH];
    int64_t B = x->shape[0];
    for (int i = 0; i < c->depth && h; i++) {
        h = ssl_nn_conv2d_forward(ctx, &net->conv[i], h);
        if (i > 0)
            h = ssl_nn_batchnorm_forward(ctx, &net->bn[i], h, training);
        h = ssl_leaky_relu(ctx, h, (float)c->slope);
        int k = i - (c->depth - n); /* the last n layers */
        if (h && k >= 0) {
            int gh = h->shape[2] < 4 ? (int)h->shape[2] : 4, gw = h->shape[3] < 4 ? (int)h->shape[3] : 4;
            ssl_tensor_t *p = ssl_adaptive_max_pool2d(ctx, h, gh, gw);
            parts[k] = p ? ssl_reshape(ctx, p, 2, (int64_t[]){B, p->numel / B}) : NULL;
            if (!parts[k])
                return NULL;
        }
    }
    return h ? ssl_concat(ctx, parts, n, 1) : NULL;
}

int64_t ssl__convnet_macs(const ssl_encoder_t *e, int64_t h, int64_t w)
{
    int64_t macs = 0;
    for (int i = 0; i < e->cfg.convnet.depth; i++) {
        const ssl_tensor_t *wt = e->convnet.conv[i].weight;
        h /= 2; /* floor((h + 2 - 4) / 2) + 1 */
        w /= 2;
        macs += wt->numel * h * w;
    }
    return macs;
}
