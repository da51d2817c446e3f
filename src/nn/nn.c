/* Parameter initialisation and the basic layers: linear, conv2d, batchnorm, layernorm. */
#include "ssl/nn.h"
#include "core/bn_update.h"
#include "core/check.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* FNV-1a of the name; a tensor without a name (NULL) gets the stream of "". */
static uint64_t name_hash(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *c = (const unsigned char *)name; c && *c; c++) {
        h ^= *c;
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t ssl_nn_name_stream(const char *name)
{
    return SSL__IS_NULL(name, __func__) ? 0 : name_hash(name);
}

const char *ssl_nn_name(char *buf, size_t len, const char *prefix, const char *name)
{
    if (SSL__IS_NULL(buf, __func__) || SSL__IS_NULL(name, __func__) ||
        SSL__BAD_RANGE(len, 1, PTRDIFF_MAX, __func__))
        return NULL;
    if (prefix && *prefix)
        snprintf(buf, len, "%s.%s", prefix, name);
    else
        snprintf(buf, len, "%s", name);
    return buf;
}

void ssl_nn_fill_uniform(ssl_tensor_t *t, float lo, float hi, uint64_t seed)
{
    if (SSL__IS_NULL(t, __func__))
        return;
    ssl_rng_fill_uniform(t->data, (size_t)t->numel, lo, hi, seed, name_hash(t->name), 0);
}

void ssl_nn_fill_normal(ssl_tensor_t *t, float mean, float std, uint64_t seed)
{
    if (SSL__IS_NULL(t, __func__))
        return;
    ssl_rng_fill_normal(t->data, (size_t)t->numel, mean, std, seed, name_hash(t->name), 0);
}

void ssl_nn_fill_const(ssl_tensor_t *t, float v)
{
    if (SSL__IS_NULL(t, __func__))
        return;
    for (int64_t i = 0; i < t->numel; i++)
        t->data[i] = v;
}

/* fan_in / fan_out as torch.nn.init._calculate_fan_in_and_fan_out: dim 1 and dim 0 times the
 * receptive field size. */
static void fans(const ssl_tensor_t *t, double *fan_in, double *fan_out)
{
    double rf = 1;
    for (int i = 2; i < t->ndim; i++)
        rf *= (double)t->shape[i];
    *fan_in = t->ndim >= 2 ? (double)t->shape[1] * rf : (double)t->shape[0];
    *fan_out = (double)t->shape[0] * rf;
}

void ssl_nn_init_tensor(ssl_tensor_t *t, ssl_init_t scheme, uint64_t seed)
{
    if (SSL__IS_NULL(t, __func__) ||
        SSL__BAD_RANGE(scheme, SSL_INIT_TORCH_DEFAULT, SSL_INIT_ZEROS, __func__))
        return;
    double fi, fo;
    fans(t, &fi, &fo);
    switch (scheme) {
    case SSL_INIT_TORCH_DEFAULT: { /* kaiming_uniform(a = sqrt 5): bound = 1 / sqrt(fan_in) */
        float b = (float)(1.0 / sqrt(fi));
        ssl_nn_fill_uniform(t, -b, b, seed);
        break;
    }
    case SSL_INIT_KAIMING_FAN_OUT:
        ssl_nn_fill_normal(t, 0.0f, (float)sqrt(2.0 / fo), seed);
        break;
    case SSL_INIT_TRUNC_NORMAL_02:
        ssl_rng_fill_trunc_normal(t->data, (size_t)t->numel, 0.0f, 0.02f, -2.0f, 2.0f, seed,
                                  name_hash(t->name), 0);
        break;
    case SSL_INIT_XAVIER_UNIFORM: {
        float b = (float)sqrt(6.0 / (fi + fo));
        ssl_nn_fill_uniform(t, -b, b, seed);
        break;
    }
    case SSL_INIT_ZEROS:
    default:
        ssl_nn_fill_const(t, 0.0f);
        break;
    }
}

/* Bias init that goes with a weight scheme: PyTorch's default draws U(±1/sqrt(fan_in)); the
 * ViT/MAE schemes and torchvision's ResNet fc... use zeros except the default. */
static void init_bias(ssl_tensor_t *b, const ssl_tensor_t *w, ssl_init_t scheme, uint64_t seed)
{
    if (scheme == SSL_INIT_TORCH_DEFAULT) {
        double fi, fo;
        fans(w, &fi, &fo);
        float bd = (float)(1.0 / sqrt(fi));
        ssl_nn_fill_uniform(b, -bd, bd, seed);
    } else {
        ssl_nn_fill_const(b, 0.0f);
    }
}

#define NAME(buf, pre, n) ssl_nn_name(buf, sizeof buf, pre, n)

/* ---------------------------------------------------------------- linear */

int ssl_nn_linear_init(ssl_nn_linear_t *m, ssl_params_t *p, const char *name, int64_t in,
                       int64_t out, int bias, ssl_init_t init, uint64_t seed)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(name, __func__))
        return SSL_ERR_INVALID;
    char buf[256];
    memset(m, 0, sizeof *m);
    m->weight = ssl_params_add(p, NAME(buf, name, "weight"), 2, (int64_t[]){out, in},
                               SSL_PARAM_TRAINABLE, 0);
    if (!m->weight)
        return ssl_last_status();
    ssl_nn_init_tensor(m->weight, init, seed);
    if (bias) {
        m->bias = ssl_params_add(p, NAME(buf, name, "bias"), 1, (int64_t[]){out},
                                 SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY);
        if (!m->bias)
            return ssl_last_status();
        init_bias(m->bias, m->weight, init, seed);
    }
    return SSL_OK;
}

ssl_tensor_t *ssl_nn_linear_forward(ssl_ctx_t *ctx, const ssl_nn_linear_t *m, ssl_tensor_t *x)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(m, __func__))
        return NULL;
    return ssl_linear(ctx, x, m->weight, m->bias);
}

/* ---------------------------------------------------------------- conv2d */

/* weight of `shape` and (bias) a bias of `out`, the bias drawn as the weight's scheme goes */
static int conv_weights(ssl_params_t *p, const char *name, const int64_t *shape, int64_t out,
                        int bias, ssl_init_t init, uint64_t seed, ssl_tensor_t **w,
                        ssl_tensor_t **b)
{
    char buf[256];
    *w = ssl_params_add(p, NAME(buf, name, "weight"), 4, shape, SSL_PARAM_TRAINABLE, 0);
    if (!*w)
        return ssl_last_status();
    ssl_nn_init_tensor(*w, init, seed);
    if (bias) {
        *b = ssl_params_add(p, NAME(buf, name, "bias"), 1, (int64_t[]){out}, SSL_PARAM_TRAINABLE,
                            SSL_PARAM_NO_DECAY);
        if (!*b)
            return ssl_last_status();
        init_bias(*b, *w, init == SSL_INIT_KAIMING_FAN_OUT ? SSL_INIT_ZEROS : init, seed);
    }
    return SSL_OK;
}

int ssl_nn_conv2d_init_hw(ssl_nn_conv2d_t *m, ssl_params_t *p, const char *name, int64_t in,
                          int64_t out, int kh, int kw, int stride, int padding, int bias,
                          ssl_init_t init, uint64_t seed)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(name, __func__))
        return SSL_ERR_INVALID;
    memset(m, 0, sizeof *m);
    m->stride = stride;
    m->padding = padding;
    return conv_weights(p, name, (int64_t[]){out, in, kh, kw}, out, bias, init, seed, &m->weight,
                        &m->bias);
}

int ssl_nn_conv2d_init(ssl_nn_conv2d_t *m, ssl_params_t *p, const char *name, int64_t in,
                       int64_t out, int kernel, int stride, int padding, int bias,
                       ssl_init_t init, uint64_t seed)
{
    return ssl_nn_conv2d_init_hw(m, p, name, in, out, kernel, kernel, stride, padding, bias, init,
                                 seed);
}

ssl_tensor_t *ssl_nn_conv2d_forward(ssl_ctx_t *ctx, const ssl_nn_conv2d_t *m, ssl_tensor_t *x)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(m, __func__))
        return NULL;
    return ssl_conv2d(ctx, x, m->weight, m->bias, m->stride, m->padding);
}

int ssl_nn_conv_transpose2d_init(ssl_nn_conv_transpose2d_t *m, ssl_params_t *p, const char *name,
                                 int64_t in, int64_t out, int kernel, int stride, int padding,
                                 int output_padding, int bias, ssl_init_t init, uint64_t seed)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(name, __func__))
        return SSL_ERR_INVALID;
    memset(m, 0, sizeof *m);
    m->stride = stride;
    m->padding = padding;
    m->output_padding = output_padding;
    return conv_weights(p, name, (int64_t[]){in, out, kernel, kernel}, out, bias, init, seed,
                        &m->weight, &m->bias);
}

ssl_tensor_t *ssl_nn_conv_transpose2d_forward(ssl_ctx_t *ctx, const ssl_nn_conv_transpose2d_t *m,
                                              ssl_tensor_t *x)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(m, __func__))
        return NULL;
    return ssl_conv_transpose2d(ctx, x, m->weight, m->bias, m->stride, m->padding,
                                m->output_padding);
}

/* ---------------------------------------------------------------- batchnorm */

int ssl_nn_batchnorm_init(ssl_nn_batchnorm_t *m, ssl_params_t *p, const char *name,
                          int64_t channels, int affine, float momentum, float eps)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(name, __func__))
        return SSL_ERR_INVALID;
    char buf[256];
    memset(m, 0, sizeof *m);
    m->momentum = momentum;
    m->eps = eps;
    const int64_t shape[1] = {channels};
    if (affine) {
        m->weight = ssl_params_add(p, NAME(buf, name, "weight"), 1, shape, SSL_PARAM_TRAINABLE,
                                   SSL_PARAM_NO_DECAY);
        m->bias = ssl_params_add(p, NAME(buf, name, "bias"), 1, shape, SSL_PARAM_TRAINABLE,
                                 SSL_PARAM_NO_DECAY);
        if (!m->weight || !m->bias)
            return ssl_last_status();
        ssl_nn_fill_const(m->weight, 1.0f);
    }
    m->running_mean = ssl_params_add(p, NAME(buf, name, "running_mean"), 1, shape,
                                     SSL_PARAM_BUFFER, 0);
    m->running_var = ssl_params_add(p, NAME(buf, name, "running_var"), 1, shape,
                                    SSL_PARAM_BUFFER, 0);
    m->num_batches_tracked = ssl_params_add(p, NAME(buf, name, "num_batches_tracked"), 0, NULL,
                                            SSL_PARAM_BUFFER, 0);
    if (!m->running_mean || !m->running_var || !m->num_batches_tracked)
        return ssl_last_status();
    ssl_nn_fill_const(m->running_var, 1.0f);
    return SSL_OK;
}

/* The op over (N, C, ...) or, in split form, over x viewed as (N / G, G C, ...). */
static ssl_tensor_t *batchnorm_op(ssl_ctx_t *ctx, ssl_tensor_t *x, ssl_tensor_t *w, ssl_tensor_t *b,
                                  ssl_tensor_t *rm, ssl_tensor_t *rv, ssl_tensor_t *residual,
                                  int training, int relu, float momentum, float eps)
{
    if (relu == 2)
        return ssl_batch_norm_add_relu(ctx, x, w, b, rm, rv, residual, training, momentum, eps);
    return (relu ? ssl_batch_norm_relu : ssl_batch_norm)(ctx, x, w, b, rm, rv, training, momentum,
                                                         eps);
}

/* G copies of v (C) end to end, (G C); gradients of the copies add up in v. NULL stays NULL. */
static ssl_tensor_t *repeat_vec(ssl_ctx_t *ctx, ssl_tensor_t *v, int groups)
{
    ssl_tensor_t *copies[64];
    if (!v)
        return NULL;
    for (int g = 0; g < groups; g++)
        copies[g] = v;
    return ssl_concat(ctx, copies, groups, 0);
}

/* Split BatchNorm in training: x (N, C, ...) viewed as (N / G, G C, ...) so that channel
 * g C + c of the view holds channel c of samples g, g + G, ...; one op normalises every group,
 * with the weights repeated G times and running statistics of its own (copies, averaged back
 * over the groups afterwards). */
static ssl_tensor_t *batchnorm_split(ssl_ctx_t *ctx, const ssl_nn_batchnorm_t *m, ssl_tensor_t *x,
                                     int relu, ssl_tensor_t *residual)
{
    const int G = m->groups;
    if (!x || (relu == 2 && !residual))
        return batchnorm_op(ctx, x, m->weight, m->bias, NULL, NULL, residual, 1, relu, m->momentum,
                            m->eps); /* reports the NULL input */
    char sx[96];
    if (x->ndim < 2 || x->shape[0] % G) {
        ssl_set_error(SSL_ERR_SHAPE,
                      "batchnorm: split into %d groups needs a batch that is a multiple of %d, "
                      "x has shape %s",
                      G, G, ssl_shape_str(x, sx, sizeof sx));
        return NULL;
    }
    const int64_t C = x->shape[1];
    int64_t shape[SSL_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[0] /= G;
    shape[1] *= G;
    ssl_tensor_t *rm = NULL, *rv = NULL;
    if (m->running_mean) { // (G C) each: every group's copy of the running statistics
        rm = ssl_tensor_new(ctx, 1, (int64_t[]){G * C});
        rv = ssl_tensor_new(ctx, 1, (int64_t[]){G * C});
        if (!rm || !rv)
            return NULL;
        for (int g = 0; g < G; g++) {
            memcpy(rm->data + g * C, m->running_mean->data, sizeof(float) * (size_t)C);
            memcpy(rv->data + g * C, m->running_var->data, sizeof(float) * (size_t)C);
        }
    }
    ssl_tensor_t *y = batchnorm_op(ctx, ssl_reshape(ctx, x, x->ndim, shape),
                                   repeat_vec(ctx, m->weight, G), repeat_vec(ctx, m->bias, G), rm,
                                   rv, residual ? ssl_reshape(ctx, residual, x->ndim, shape) : NULL,
                                   1, relu, m->momentum, m->eps);
    if (!y)
        return NULL;
    for (int64_t c = 0; rm && c < C; c++) { /* the groups' updates, averaged in double */
        double sm = 0, sv = 0;
        for (int g = 0; g < G; g++) {
            sm += rm->data[g * C + c];
            sv += rv->data[g * C + c];
        }
        m->running_mean->data[c] = (float)(sm / G);
        m->running_var->data[c] = (float)(sv / G);
    }
    return ssl_reshape(ctx, y, x->ndim, x->shape);
}

static ssl_tensor_t *batchnorm_forward(ssl_ctx_t *ctx, const ssl_nn_batchnorm_t *m, ssl_tensor_t *x,
                                       int training, int relu, ssl_tensor_t *residual)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(m, __func__))
        return NULL;
    if (training && m->groups > 1) {
        if (m->groups > 64) {
            ssl_set_error(SSL_ERR_INVALID, "batchnorm: groups must be in 1..64, got %d", m->groups);
            return NULL;
        }
        ssl_tensor_t *ys = batchnorm_split(ctx, m, x, relu, residual);
        if (ys)
            m->num_batches_tracked->data[0] += 1.0f;
        return ys;
    }
    float momentum = m->momentum, count = 1.0f;
    if (!training && m->running_mean && x && ssl__ctx_bn_update(ctx)) {
        /* recomputing the statistics (bn_update.h): this batch's, averaged with the ones before
         * it, weighted by their sizes; num_batches_tracked counts the samples meanwhile */
        training = 1;
        count = (float)x->shape[0];
        momentum = count / (m->num_batches_tracked->data[0] + count);
    }
    ssl_tensor_t *y =
        relu == 2 ? ssl_batch_norm_add_relu(ctx, x, m->weight, m->bias, m->running_mean,
                                            m->running_var, residual, training, momentum, m->eps)
                  : (relu ? ssl_batch_norm_relu : ssl_batch_norm)(ctx, x, m->weight, m->bias,
                                                                  m->running_mean, m->running_var,
                                                                  training, momentum, m->eps);
    if (y && training)
        m->num_batches_tracked->data[0] += count;
    return y;
}

ssl_tensor_t *ssl_nn_batchnorm_forward(ssl_ctx_t *ctx, const ssl_nn_batchnorm_t *m,
                                       ssl_tensor_t *x, int training)
{
    return batchnorm_forward(ctx, m, x, training, 0, NULL);
}

ssl_tensor_t *ssl_nn_batchnorm_relu_forward(ssl_ctx_t *ctx, const ssl_nn_batchnorm_t *m,
                                            ssl_tensor_t *x, int training)
{
    return batchnorm_forward(ctx, m, x, training, 1, NULL);
}

ssl_tensor_t *ssl_nn_batchnorm_add_relu_forward(ssl_ctx_t *ctx, const ssl_nn_batchnorm_t *m,
                                                ssl_tensor_t *x, ssl_tensor_t *residual,
                                                int training)
{
    return batchnorm_forward(ctx, m, x, training, 2, residual);
}

/* ---------------------------------------------------------------- layernorm */

int ssl_nn_layernorm_init(ssl_nn_layernorm_t *m, ssl_params_t *p, const char *name,
                          int64_t dim, float eps)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(p, __func__) || SSL__IS_NULL(name, __func__))
        return SSL_ERR_INVALID;
    char buf[256];
    memset(m, 0, sizeof *m);
    m->eps = eps;
    m->weight = ssl_params_add(p, NAME(buf, name, "weight"), 1, (int64_t[]){dim},
                               SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY);
    m->bias = ssl_params_add(p, NAME(buf, name, "bias"), 1, (int64_t[]){dim},
                             SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY);
    if (!m->weight || !m->bias)
        return ssl_last_status();
    ssl_nn_fill_const(m->weight, 1.0f);
    return SSL_OK;
}

ssl_tensor_t *ssl_nn_layernorm_forward(ssl_ctx_t *ctx, const ssl_nn_layernorm_t *m,
                                       ssl_tensor_t *x)
{
    if (SSL__IS_NULL(ctx, __func__) || SSL__IS_NULL(m, __func__))
        return NULL;
    return ssl_layer_norm(ctx, x, m->weight, m->bias, m->eps);
}

ssl_tensor_t *ssl_nn_activation(ssl_ctx_t *ctx, ssl_tensor_t *x, int act)
{
    if (SSL__IS_NULL(ctx, __func__))
        return NULL;
    if (SSL__BAD_RANGE(act, SSL_ACT_NONE, SSL_ACT_GELU_TANH, __func__))
        return NULL;
    switch (act) {
    case SSL_ACT_RELU: return ssl_relu(ctx, x);
    case SSL_ACT_GELU: return ssl_gelu(ctx, x, SSL_GELU_ERF);
    case SSL_ACT_GELU_TANH: return ssl_gelu(ctx, x, SSL_GELU_TANH);
    default: return x;
    }
}
