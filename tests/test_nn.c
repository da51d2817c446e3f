/* nn building blocks and encoders: names, shapes, parameter counts, FLOPs, init statistics,
 * sin-cos positions, and gradients through whole blocks. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/models.h"
#include "ssl/nn.h"

static void test_names_and_mlp_layout(void **state)
{
    (void)state;
    ssl_params_t *p = ssl_params_create();
    ssl_mlp_t m;
    ssl_mlp_cfg_t cfg = {3, 8, 16, 4, SSL_NORM_BN, SSL_ACT_RELU, SSL_NORM_BN, 0, 0,
                         SSL_INIT_TORCH_DEFAULT, 0};
    assert_int_equal(ssl_mlp_init(&m, p, "projector", &cfg, 1), SSL_OK);
    /* nn.Sequential(Linear, BN, ReLU, Linear, BN, ReLU, Linear, BN(affine=False)) */
    assert_non_null(ssl_params_get(p, "projector.0.weight"));
    assert_null(ssl_params_get(p, "projector.0.bias"));
    assert_non_null(ssl_params_get(p, "projector.1.weight"));
    assert_non_null(ssl_params_get(p, "projector.1.running_var"));
    assert_non_null(ssl_params_get(p, "projector.3.weight"));
    assert_non_null(ssl_params_get(p, "projector.6.weight"));
    assert_non_null(ssl_params_get(p, "projector.7.running_mean"));
    assert_null(ssl_params_get(p, "projector.7.weight")); /* affine off */
    ssl_params_free(p);
}

static void test_init_statistics(void **state)
{
    (void)state;
    ssl_params_t *p = ssl_params_create();
    ssl_nn_conv2d_t c;
    assert_int_equal(ssl_nn_conv2d_init(&c, p, "conv", 64, 128, 3, 1, 1, 0,
                                        SSL_INIT_KAIMING_FAN_OUT, 7), SSL_OK);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < c.weight->numel; i++) {
        s += c.weight->data[i];
        s2 += (double)c.weight->data[i] * c.weight->data[i];
    }
    double mean = s / c.weight->numel, sd = sqrt(s2 / c.weight->numel - mean * mean);
    assert_true(fabs(mean) < 0.005);
    assert_true(fabs(sd - sqrt(2.0 / (128 * 9))) < 0.002); /* fan_out = 128 * 3 * 3 */
    ssl_nn_linear_t l;
    assert_int_equal(ssl_nn_linear_init(&l, p, "fc", 100, 50, 1, SSL_INIT_TORCH_DEFAULT, 7),
                     SSL_OK);
    for (int64_t i = 0; i < l.weight->numel; i++)
        assert_true(fabsf(l.weight->data[i]) <= 0.1f); /* 1 / sqrt(100) */
    ssl_nn_linear_t t;
    assert_int_equal(ssl_nn_linear_init(&t, p, "vit", 100, 200, 1, SSL_INIT_TRUNC_NORMAL_02, 7),
                     SSL_OK);
    s = s2 = 0;
    for (int64_t i = 0; i < t.weight->numel; i++) {
        s2 += (double)t.weight->data[i] * t.weight->data[i];
    }
    assert_true(fabs(sqrt(s2 / t.weight->numel) - 0.02) < 0.001);
    assert_true(t.bias->data[0] == 0.0f);
    /* Values depend on the name, not on the order of creation. */
    ssl_params_t *q = ssl_params_create();
    ssl_nn_linear_t t2;
    ssl_nn_linear_init(&t2, q, "vit", 100, 200, 1, SSL_INIT_TRUNC_NORMAL_02, 7);
    assert_memory_equal(t.weight->data, t2.weight->data, sizeof(float) * 100);
    ssl_params_free(q);
    ssl_params_free(p);
}

/* ConvTranspose2d: PyTorch's names and weight layout (in, out, k, k), its default init's bound
 * 1 / sqrt(fan_in) with fan_in = out k k (dim 1), and a forward that is the op's. */
static void test_conv_transpose_layer(void **state)
{
    (void)state;
    ssl_params_t *p = ssl_params_create();
    ssl_nn_conv_transpose2d_t m;
    assert_int_equal(ssl_nn_conv_transpose2d_init(&m, p, "decoder.up1", 6, 4, 3, 2, 1, 1, 1,
                                                  SSL_INIT_TORCH_DEFAULT, 3),
                     SSL_OK);
    assert_ptr_equal(ssl_params_get(p, "decoder.up1.weight"), m.weight);
    assert_ptr_equal(ssl_params_get(p, "decoder.up1.bias"), m.bias);
    assert_int_equal(m.weight->shape[0], 6);
    assert_int_equal(m.weight->shape[1], 4);
    float bound = 1.0f / sqrtf(4 * 9), wmax = 0, bmax = 0;
    for (int64_t i = 0; i < m.weight->numel; i++)
        wmax = fmaxf(wmax, fabsf(m.weight->data[i]));
    for (int64_t i = 0; i < m.bias->numel; i++)
        bmax = fmaxf(bmax, fabsf(m.bias->data[i]));
    assert_true(wmax <= bound && wmax > 0.5f * bound);
    assert_true(bmax <= bound && bmax > 0.0f);
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){2, 6, 3, 3}, 5, -1, 1, 0);
    ssl_tensor_t *y = ssl_nn_conv_transpose2d_forward(ctx, &m, x);
    ssl_tensor_t *r = ssl_conv_transpose2d(ctx, x, m.weight, m.bias, 2, 1, 1);
    assert_non_null(y);
    assert_int_equal(y->shape[2], 6);
    assert_memory_equal(y->data, r->data, (size_t)r->numel * sizeof(float));
    ssl_ctx_free(ctx);
    ssl_params_free(p);
}

/* a rectangular kernel: PyTorch's default init from fan_in = in kh kw, the forward conv2d's */
static void test_conv2d_hw(void **state)
{
    (void)state;
    ssl_params_t *p = ssl_params_create();
    ssl_nn_conv2d_t m;
    assert_int_equal(ssl_nn_conv2d_init_hw(&m, p, "v", 5, 6, 2, 3, 1, 0, 1,
                                           SSL_INIT_TORCH_DEFAULT, 3),
                     SSL_OK);
    assert_ptr_equal(ssl_params_get(p, "v.weight"), m.weight);
    assert_int_equal(m.weight->shape[2], 2);
    assert_int_equal(m.weight->shape[3], 3);
    float bound = 1.0f / sqrtf(5 * 2 * 3), wmax = 0, bmax = 0;
    for (int64_t i = 0; i < m.weight->numel; i++)
        wmax = fmaxf(wmax, fabsf(m.weight->data[i]));
    for (int64_t i = 0; i < m.bias->numel; i++)
        bmax = fmaxf(bmax, fabsf(m.bias->data[i]));
    assert_true(wmax <= bound && wmax > 0.5f * bound);
    assert_true(bmax <= bound && bmax > 0.0f);
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){2, 5, 4, 4}, 5, -1, 1, 0);
    ssl_tensor_t *y = ssl_nn_conv2d_forward(ctx, &m, x);
    ssl_tensor_t *r = ssl_conv2d(ctx, x, m.weight, m.bias, 1, 0);
    assert_non_null(y);
    assert_int_equal(y->shape[2], 3);
    assert_int_equal(y->shape[3], 2);
    assert_memory_equal(y->data, r->data, (size_t)r->numel * sizeof(float));
    ssl_ctx_free(ctx);
    ssl_params_free(p);
}

static void test_sincos(void **state)
{
    (void)state;
    float pe[4 * 3 * 8];
    assert_int_equal(ssl_nn_sincos_2d(pe, 8, 4, 3), SSL_OK);
    /* token (i=2, j=1): channels 0..3 encode w=1: sin(1), sin(1/100), cos(1), cos(1/100) */
    const float *t = pe + (2 * 3 + 1) * 8;
    assert_float_equal(t[0], sinf(1.0f), 1e-6);
    assert_float_equal(t[1], sinf(0.01f), 1e-6);
    assert_float_equal(t[2], cosf(1.0f), 1e-6);
    assert_float_equal(t[3], cosf(0.01f), 1e-6);
    assert_float_equal(t[4], sinf(2.0f), 1e-6); /* h = 2 */
    assert_float_equal(t[7], cosf(0.02f), 1e-6);
    assert_int_equal(ssl_nn_sincos_2d(pe, 6, 2, 2), SSL_ERR_CONFIG);
}

static void test_resnet_counts(void **state)
{
    (void)state;
    ssl_encoder_cfg_t cfg;
    assert_int_equal(ssl_encoder_preset("resnet18", &cfg), SSL_OK);
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&cfg, p, "", 0);
    assert_non_null(e);
    /* torchvision resnet18: 11,689,512 parameters including the 512x1000 fc (513,000). */
    assert_int_equal(ssl_encoder_num_params(e), 11689512 - 513000);
    /* 1.81 GMACs at 224 (the fc would add 0.5 M) */
    int64_t macs = ssl_encoder_macs(e, 224, 224);
    assert_int_equal(macs, 1813561344LL); /* conv MACs counted by hooks on torchvision's model */
    assert_int_equal(ssl_encoder_dim(e), 512);
    assert_non_null(ssl_params_get(p, "layer1.0.conv1.weight"));
    assert_non_null(ssl_params_get(p, "layer2.0.downsample.0.weight"));
    assert_non_null(ssl_params_get(p, "layer4.1.bn2.running_var"));
    assert_null(ssl_params_get(p, "layer1.0.downsample.0.weight"));
    ssl_encoder_free(e);
    ssl_params_free(p);
    /* CIFAR stem at 32x32: about 0.56 GMACs */
    cfg.resnet.cifar_stem = 1;
    p = ssl_params_create();
    e = ssl_encoder_create(&cfg, p, "encoder", 0);
    assert_non_null(ssl_params_get(p, "encoder.conv1.weight"));
    macs = ssl_encoder_macs(e, 32, 32);
    assert_int_equal(macs, 555417600LL);
    ssl_ctx_t *ctx = tu_ctx(); /* a ResNet has no blocks to read out */
    ssl_tensor_t *x = ssl_tensor_zeros(ctx, 4, (int64_t[]){1, 3, 32, 32});
    assert_null(ssl_encoder_readout(ctx, e, x, 2, 0));
    tu_assert_error(NULL, SSL_ERR_INVALID, "readout of 2 blocks", "ResNet", NULL);
    ssl_ctx_free(ctx);
    ssl_encoder_free(e);
    ssl_params_free(p);
    /* resnet50: 25,557,032 with fc (2048*1000+1000) */
    assert_int_equal(ssl_encoder_preset("resnet50", &cfg), SSL_OK);
    p = ssl_params_create();
    e = ssl_encoder_create(&cfg, p, "", 0);
    assert_int_equal(ssl_encoder_num_params(e), 25557032 - 2049000);
    assert_int_equal(ssl_encoder_dim(e), 2048);
    ssl_encoder_free(e);
    ssl_params_free(p);
}

static void test_vit_counts(void **state)
{
    (void)state;
    ssl_encoder_cfg_t cfg;
    assert_int_equal(ssl_encoder_preset("vit_tiny", &cfg), SSL_OK);
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&cfg, p, "", 0);
    assert_non_null(e);
    /* timm vit_tiny_patch16_224: 5,717,416 including the 192x1000 head (193,000) */
    assert_int_equal(ssl_encoder_num_params(e), 5717416 - 193000);
    assert_non_null(ssl_params_get(p, "blocks.11.attn.qkv.weight"));
    assert_non_null(ssl_params_get(p, "blocks.0.mlp.fc2.bias"));
    assert_non_null(ssl_params_get(p, "patch_embed.proj.weight"));
    assert_non_null(ssl_params_get(p, "cls_token"));
    assert_non_null(ssl_params_get(p, "norm.weight"));
    /* about 1.26 GMACs at 224 (fvcore counts 1.3 G including the head and norms) */
    int64_t macs = ssl_encoder_macs(e, 224, 224);
    assert_true(macs > 1200000000LL && macs < 1300000000LL);
    ssl_encoder_free(e);
    ssl_params_free(p);
    cfg.vit.heads = 5;
    p = ssl_params_create();
    assert_null(ssl_encoder_create(&cfg, p, "", 0));
    assert_int_equal(ssl_last_status(), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "heads"));
    ssl_params_free(p);
}

typedef struct enc_case {
    ssl_encoder_t *e;
    int training;
    const int32_t *keep;
    int64_t k;
} enc_case_t;

static ssl_tensor_t *build_encoder(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    enc_case_t *c = user;
    ssl_encoder_out_t out;
    if (ssl_encoder_forward(ctx, c->e, in[0], c->keep, c->k, c->training, &out) != SSL_OK)
        return NULL;
    return ssl_encoder_config(c->e)->kind == SSL_ENC_VIT ? out.tokens : out.pooled;
}

static void test_encoder_gradients(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    /* a tiny ResNet in eval mode (batch statistics make central differences noisy) */
    ssl_encoder_cfg_t cfg;
    ssl_encoder_preset("resnet18", &cfg);
    cfg.resnet = (ssl_resnet_cfg_t){18, 1, 2, 1, 0, 1};
    ssl_params_t *p = ssl_params_create();
    enc_case_t c = {ssl_encoder_create(&cfg, p, "", 3), 0, NULL, 0};
    assert_non_null(c.e);
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){2, 1, 8, 8}, 1, -1, 1, 1);
    tu_gradcheck_opts_t o = {2e-4, 1e-2, 5e-2, 64};
    assert_int_equal(tu_gradcheck(ctx, build_encoder, &c, &x, 1, &o), 0);
    ssl_encoder_free(c.e);
    ssl_params_free(p);
    ssl_ctx_reset(ctx);
    /* a tiny ViT on a token subset */
    ssl_encoder_preset("vit_tiny", &cfg);
    cfg.vit.image_size = 8;
    cfg.vit.patch_size = 2;
    cfg.vit.dim = 8;
    cfg.vit.depth = 1;
    cfg.vit.heads = 2;
    cfg.vit.in_channels = 1;
    p = ssl_params_create();
    const int32_t keep[6] = {0, 5, 9, 15, 3, 3};
    c = (enc_case_t){ssl_encoder_create(&cfg, p, "", 3), 1, keep, 3};
    assert_non_null(c.e);
    x = tu_rand(ctx, 4, (int64_t[]){2, 1, 8, 8}, 2, -1, 1, 1);
    assert_int_equal(tu_gradcheck(ctx, build_encoder, &c, &x, 1, &o), 0);
    /* bad inputs name the shape */
    ssl_encoder_out_t out;
    ssl_tensor_t *bad = tu_rand(ctx, 4, (int64_t[]){2, 3, 8, 8}, 2, -1, 1, 0);
    assert_int_equal(ssl_encoder_forward(ctx, c.e, bad, NULL, 0, 0, &out), SSL_ERR_SHAPE);
    assert_non_null(strstr(ssl_last_error(), "(2, 3, 8, 8)"));
    ssl_encoder_free(c.e);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

/* out (C_out, H/2, W/2) of one image: 4x4 stride-2 padding-1 convolution, plain loops */
static void ref_conv4s2(const float *x, int64_t ci, int64_t h, int64_t w, const float *wt,
                        int64_t co, float *out)
{
    int64_t oh = h / 2, ow = w / 2;
    for (int64_t o = 0; o < co; o++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                double acc = 0;
                for (int64_t c = 0; c < ci; c++)
                    for (int u = 0; u < 4; u++)
                        for (int v = 0; v < 4; v++) {
                            int64_t y = 2 * i - 1 + u, xx = 2 * j - 1 + v;
                            if (y >= 0 && y < h && xx >= 0 && xx < w)
                                acc += (double)x[(c * h + y) * w + xx] *
                                       wt[((o * ci + c) * 4 + u) * 4 + v];
                        }
                out[(o * oh + i) * ow + j] = (float)acc;
            }
}

/* The dcgan encoder (DCGAN's discriminator body) against plain loops in training mode: conv,
 * LeakyReLU(0.2), conv, BatchNorm with batch statistics, LeakyReLU, spatial mean; its names,
 * MACs, central differences in eval mode, and an input too small for its depth. */
static void test_dcgan_encoder(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_encoder_cfg_t cfg;
    assert_int_equal(ssl_encoder_preset("dcgan", &cfg), SSL_OK);
    cfg.convnet.in_channels = 1;
    cfg.convnet.width = 3;
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&cfg, p, "encoder", 5);
    assert_non_null(e);
    assert_int_equal(ssl_encoder_dim(e), 6);
    assert_int_equal(ssl_encoder_macs(e, 8, 8), 3 * 16 * 16 + 6 * 3 * 16 * 4);
    ssl_tensor_t *w1 = ssl_params_get(p, "encoder.conv1.weight"),
                 *w2 = ssl_params_get(p, "encoder.conv2.weight"),
                 *g2 = ssl_params_get(p, "encoder.bn2.weight"),
                 *b2 = ssl_params_get(p, "encoder.bn2.bias");
    assert_true(w1 && w2 && g2 && b2 && !ssl_params_get(p, "encoder.bn1.weight"));
    assert_null(ssl_params_get(p, "encoder.conv1.bias"));
    for (int i = 0; i < 6; i++)
        b2->data[i] = 0.1f * (float)i - 0.2f; /* a non-zero shift to check */
    const int64_t B = 3;
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){B, 1, 8, 8}, 7, -1, 1, 1);
    ssl_encoder_out_t o;
    assert_int_equal(ssl_encoder_forward(ctx, e, x, NULL, 0, 1, &o), SSL_OK);
    float h1[3 * 16], h2[3][6 * 4];
    for (int64_t b = 0; b < B; b++) {
        ref_conv4s2(x->data + b * 64, 1, 8, 8, w1->data, 3, h1);
        for (int i = 0; i < 48; i++)
            h1[i] = h1[i] > 0 ? h1[i] : 0.2f * h1[i];
        ref_conv4s2(h1, 3, 4, 4, w2->data, 6, h2[b]);
    }
    float ref[3 * 6];
    for (int c = 0; c < 6; c++) {
        double mean = 0, var = 0;
        for (int b = 0; b < B; b++)
            for (int k = 0; k < 4; k++)
                mean += h2[b][c * 4 + k];
        mean /= B * 4;
        for (int b = 0; b < B; b++)
            for (int k = 0; k < 4; k++)
                var += (h2[b][c * 4 + k] - mean) * (h2[b][c * 4 + k] - mean);
        var /= B * 4;
        for (int b = 0; b < B; b++) {
            double acc = 0;
            for (int k = 0; k < 4; k++) {
                double v = (h2[b][c * 4 + k] - mean) / sqrt(var + 1e-5) * g2->data[c] +
                           b2->data[c];
                acc += v > 0 ? v : 0.2 * v;
            }
            ref[b * 6 + c] = (float)(acc / 4);
        }
    }
    tu_assert_close(o.pooled->data, ref, B * 6, 1e-5, 1e-4);
    assert_true(o.fmap && o.fmap->shape[1] == 6 && o.fmap->shape[2] == 2);
    ssl_ctx_reset(ctx);
    enc_case_t c = {e, 0, NULL, 0};
    x = tu_rand(ctx, 4, (int64_t[]){2, 1, 8, 8}, 8, -1, 1, 1);
    tu_gradcheck_opts_t go = {2e-4, 1e-2, 5e-2, 64};
    assert_int_equal(tu_gradcheck(ctx, build_encoder, &c, &x, 1, &go), 0);
    /* the readout of both layers (DCGAN's protocol): each layer's map max-pooled to 4 x 4
     * (the second's 2 x 2 kept), flattened, concatenated; the first 3 x 16 values are the
     * first layer's pooled grid (computed here from h1 in plain loops for image 0) */
    ssl_tensor_t *r = ssl_encoder_readout(ctx, e, x, 2, 0);
    assert_non_null(r);
    assert_true(r->shape[0] == 2 && r->shape[1] == 3 * 16 + 6 * 4);
    ref_conv4s2(x->data, 1, 8, 8, w1->data, 3, h1); /* 4 x 4 maps: the grid is the map */
    for (int i = 0; i < 48; i++)
        h1[i] = h1[i] > 0 ? h1[i] : 0.2f * h1[i];
    tu_assert_close(r->data, h1, 48, 1e-6, 1e-5);
    assert_null(ssl_encoder_readout(ctx, e, x, 3, 0));
    tu_assert_error(NULL, SSL_ERR_INVALID, "readout of 3 blocks", "dcgan", "depth 2", NULL);
    ssl_tensor_t *tiny = tu_rand(ctx, 4, (int64_t[]){1, 1, 3, 3}, 9, -1, 1, 0);
    assert_int_equal(ssl_encoder_forward(ctx, e, tiny, NULL, 0, 0, &o), SSL_ERR_SHAPE);
    assert_non_null(strstr(ssl_last_error(), "too small"));
    ssl_encoder_free(e);
    ssl_params_free(p);
    ssl_encoder_cfg_t bad;
    const char *json = "{\"type\": \"dcgan\", \"depth\": 7}";
    assert_int_equal(ssl_encoder_cfg_from_json(json, strlen(json), "j", &bad), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "depth"));
    ssl_ctx_free(ctx);
}

typedef struct masked_case {
    ssl_encoder_t *e;
    const int32_t *idx;
    int64_t m;
} masked_case_t;

static ssl_tensor_t *build_masked(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    masked_case_t *c = user;
    ssl_encoder_out_t out;
    if (ssl_encoder_forward_masked(ctx, c->e, in[0], NULL, 0, c->idx, c->m, in[1], 1, &out))
        return NULL;
    return out.tokens;
}

/* SimMIM's forward: masked patches become the mask token (the input there does not matter),
 * and gradients reach the input and the mask token. */
static void test_encoder_masked_tokens(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_encoder_cfg_t cfg;
    ssl_encoder_preset("vit_tiny", &cfg);
    cfg.vit.image_size = 8;
    cfg.vit.patch_size = 4;
    cfg.vit.dim = 8;
    cfg.vit.depth = 1;
    cfg.vit.heads = 2;
    cfg.vit.in_channels = 1;
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&cfg, p, "", 3);
    ssl_tensor_t *tok = tu_rand(ctx, 3, (int64_t[]){1, 1, 8}, 9, -1, 1, 1);
    const int32_t all[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    ssl_tensor_t *x1 = tu_rand(ctx, 4, (int64_t[]){2, 1, 8, 8}, 1, -1, 1, 0);
    ssl_tensor_t *x2 = tu_rand(ctx, 4, (int64_t[]){2, 1, 8, 8}, 2, -1, 1, 0);
    ssl_encoder_out_t o1, o2;
    assert_int_equal(ssl_encoder_forward_masked(ctx, e, x1, NULL, 0, all, 4, tok, 0, &o1), SSL_OK);
    assert_int_equal(ssl_encoder_forward_masked(ctx, e, x2, NULL, 0, all, 4, tok, 0, &o2), SSL_OK);
    tu_assert_close(o1.tokens->data, o2.tokens->data, o1.tokens->numel, 1e-5, 1e-5);
    ssl_encoder_forward(ctx, e, x2, NULL, 0, 0, &o2); /* unmasked: the input matters */
    assert_true(tu_count_mismatch(o1.tokens->data, o2.tokens->data, o1.tokens->numel, 1e-3, 1e-3,
                                  "masked vs plain") > 0);
    const int32_t some[4] = {1, 3, 0, 2};
    masked_case_t c = {e, some, 2};
    ssl_tensor_t *in[2] = {tu_rand(ctx, 4, (int64_t[]){2, 1, 8, 8}, 5, -1, 1, 1), tok};
    tu_gradcheck_opts_t o = {1e-3, 1e-2, 5e-2, 64};
    assert_int_equal(tu_gradcheck(ctx, build_masked, &c, in, 2, &o), 0);
    ssl_encoder_free(e);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

typedef struct blocks_case {
    ssl_encoder_t *e;
    int n, which;
} blocks_case_t;

static ssl_tensor_t *build_blocks(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    blocks_case_t *c = user;
    ssl_tensor_t *blocks[4];
    ssl_encoder_out_t out;
    if (ssl_encoder_forward_blocks(ctx, c->e, in[0], c->n, 1, blocks, &out))
        return NULL;
    return blocks[c->which];
}

/* data2vec's block outputs: the deepest, normed by the encoder's final norm, is the forward's
 * output; a block's output is that of the same block in a shallower ViT built from the same seed
 * (the parameters are drawn by name); gradients reach the input through an inner block. */
static void test_encoder_block_outputs(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    for (int cls = 0; cls < 2; cls++) {
        ssl_encoder_cfg_t cfg;
        ssl_encoder_preset("vit_tiny", &cfg);
        cfg.vit.image_size = 8;
        cfg.vit.patch_size = 4;
        cfg.vit.dim = 8;
        cfg.vit.depth = 3;
        cfg.vit.heads = 2;
        cfg.vit.in_channels = 1;
        cfg.vit.cls_token = cls;
        cfg.vit.pool = cls ? SSL_POOL_CLS : SSL_POOL_MEAN;
        ssl_params_t *p3 = ssl_params_create(), *p2 = ssl_params_create();
        ssl_encoder_t *e3 = ssl_encoder_create(&cfg, p3, "", 5);
        cfg.vit.depth = 2;
        ssl_encoder_t *e2 = ssl_encoder_create(&cfg, p2, "", 5);
        assert_non_null(e3);
        assert_non_null(e2);
        ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){2, 1, 8, 8}, 3, -1, 1, 0);
        ssl_tensor_t *b3[3], *b2[1];
        ssl_encoder_out_t o3, o2;
        assert_int_equal(ssl_encoder_forward_blocks(ctx, e3, x, 3, 0, b3, &o3), SSL_OK);
        assert_int_equal(ssl_encoder_forward_blocks(ctx, e2, x, 1, 0, b2, &o2), SSL_OK);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(b3[i]->ndim, 3);
            assert_int_equal(b3[i]->shape[1], 4);
            assert_int_equal(b3[i]->shape[2], 8);
        }
        tu_assert_close(b3[1]->data, b2[0]->data, b2[0]->numel, 1e-6, 1e-6);
        assert_true(tu_count_mismatch(b3[1]->data, b3[2]->data, b3[2]->numel, 1e-3, 1e-3,
                                      "blocks 1 and 2") > 0);
        ssl_tensor_t *w = ssl_params_get(p3, "norm.weight"), *bn = ssl_params_get(p3, "norm.bias");
        ssl_tensor_t *normed = ssl_layer_norm(ctx, b3[2], w, bn, 1e-6f);
        tu_assert_close(normed->data, o3.tokens->data, o3.tokens->numel, 1e-5, 1e-5);
        /* the plain forward is unchanged by reading the blocks */
        ssl_encoder_out_t o;
        assert_int_equal(ssl_encoder_forward(ctx, e3, x, NULL, 0, 0, &o), SSL_OK);
        tu_assert_close(o.pooled->data, o3.pooled->data, o.pooled->numel, 0, 0);
        blocks_case_t c = {e3, 2, 0};
        ssl_tensor_t *in = tu_rand(ctx, 4, (int64_t[]){2, 1, 8, 8}, 7, -1, 1, 1);
        tu_gradcheck_opts_t go = {1e-3, 1e-2, 5e-2, 64};
        assert_int_equal(tu_gradcheck(ctx, build_blocks, &c, &in, 1, &go), 0);
        /* the probe readout of the last 2 blocks: the shallower ViT's pooled output (its final
         * norm drawn like e3's), then e3's own; of 1 block: the pooled output itself */
        ssl_tensor_t *r2 = ssl_encoder_readout(ctx, e3, x, 2, 0), *r1;
        assert_non_null(r2);
        assert_int_equal(r2->ndim, 2);
        assert_int_equal(r2->shape[0], 2);
        assert_int_equal(r2->shape[1], 16);
        assert_int_equal(ssl_encoder_forward(ctx, e2, x, NULL, 0, 0, &o2), SSL_OK);
        for (int b = 0; b < 2; b++) {
            tu_assert_close(r2->data + b * 16, o2.pooled->data + b * 8, 8, 1e-5, 1e-5);
            tu_assert_close(r2->data + b * 16 + 8, o3.pooled->data + b * 8, 8, 1e-5, 1e-5);
        }
        assert_non_null(r1 = ssl_encoder_readout(ctx, e3, x, 1, 0));
        tu_assert_close(r1->data, o3.pooled->data, o3.pooled->numel, 0, 0);
        assert_null(ssl_encoder_readout(ctx, e3, x, 4, 0));
        tu_assert_error(NULL, SSL_ERR_INVALID, "readout of 4 blocks", "depth 3", NULL);
        assert_int_equal(ssl_encoder_forward_blocks(ctx, e3, x, 4, 0, b3, &o3), SSL_ERR_INVALID);
        tu_assert_error(NULL, SSL_ERR_INVALID, "1..depth (3), got 4", NULL);
        assert_int_equal(ssl_encoder_forward_blocks(ctx, e3, x, 0, 0, b3, &o3), SSL_ERR_INVALID);
        tu_assert_error(NULL, SSL_ERR_INVALID, "got 0", NULL);
        ssl_encoder_free(e3);
        ssl_encoder_free(e2);
        ssl_params_free(p3);
        ssl_params_free(p2);
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_free(ctx);
}

/* y = x W^T + b over rows (plain loops) */
static void ref_linear(const float *x, int64_t rows, int64_t in, const ssl_nn_linear_t *l,
                       int64_t out, float *y)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double s = l->bias->data[o];
            for (int64_t i = 0; i < in; i++)
                s += (double)x[r * in + i] * l->weight->data[o * in + i];
            y[r * out + o] = (float)s;
        }
}

typedef struct cross_case {
    ssl_nn_cross_attention_t a;
    ssl_tensor_t *bias;
} cross_case_t;

static ssl_tensor_t *build_cross(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    cross_case_t *c = user;
    return ssl_nn_cross_attention_forward(ctx, &c->a, in[0], in[1], c->bias);
}

/* Cross-attention against plain loops (2 heads, 3 queries over 5 keys of another width, a
 * (Tq, Tk) bias), and its gradient by central differences. */
static void test_cross_attention(void **state)
{
    (void)state;
    enum { B = 2, TQ = 3, TK = 5, C = 8, CK = 6, H = 2, D = C / H };
    ssl_ctx_t *ctx = tu_ctx();
    ssl_params_t *p = ssl_params_create();
    cross_case_t c;
    assert_int_equal(ssl_nn_cross_attention_init(&c.a, p, "x", C, CK, H, SSL_INIT_TORCH_DEFAULT,
                                                 3), SSL_OK);
    for (int i = 0; i < 4; i++) { /* non-zero biases */
        ssl_nn_linear_t *l = i == 0 ? &c.a.q : i == 1 ? &c.a.k : i == 2 ? &c.a.v : &c.a.proj;
        for (int64_t j = 0; j < l->bias->numel; j++)
            l->bias->data[j] = 0.1f * (float)((j * 7 + i) % 5 - 2);
    }
    c.bias = tu_rand(ctx, 2, (int64_t[]){TQ, TK}, 9, -1, 1, 0);
    c.bias->data[1] = -INFINITY;
    ssl_tensor_t *x = tu_rand(ctx, 3, (int64_t[]){B, TQ, C}, 1, -1, 1, 1);
    ssl_tensor_t *kv = tu_rand(ctx, 3, (int64_t[]){B, TK, CK}, 2, -1, 1, 1);
    ssl_tensor_t *y = ssl_nn_cross_attention_forward(ctx, &c.a, x, kv, c.bias);
    assert_non_null(y);
    assert_int_equal(y->shape[1], TQ);
    assert_int_equal(y->shape[2], C);
    float q[B * TQ * C], k[B * TK * C], v[B * TK * C], o[B * TQ * C], want[B * TQ * C];
    ref_linear(x->data, B * TQ, C, &c.a.q, C, q);
    ref_linear(kv->data, B * TK, CK, &c.a.k, C, k);
    ref_linear(kv->data, B * TK, CK, &c.a.v, C, v);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < TQ; i++) {
                double s[TK], mx = -INFINITY, z = 0;
                for (int j = 0; j < TK; j++) {
                    double d = 0;
                    for (int e = 0; e < D; e++)
                        d += (double)q[(b * TQ + i) * C + h * D + e] *
                             k[(b * TK + j) * C + h * D + e];
                    s[j] = d / sqrt((double)D) + c.bias->data[i * TK + j];
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = 0; j < TK; j++)
                    z += (s[j] = exp(s[j] - mx));
                for (int e = 0; e < D; e++) {
                    double acc = 0;
                    for (int j = 0; j < TK; j++)
                        acc += s[j] / z * v[(b * TK + j) * C + h * D + e];
                    o[(b * TQ + i) * C + h * D + e] = (float)acc;
                }
            }
    ref_linear(o, B * TQ, C, &c.a.proj, C, want);
    tu_assert_close(y->data, want, B * TQ * C, 1e-5, 1e-4);
    ssl_tensor_t *in[2] = {x, kv};
    tu_gradcheck_opts_t go = {1e-3, 1e-3, 1e-2, 64};
    assert_int_equal(tu_gradcheck(ctx, build_cross, &c, in, 2, &go), 0);
    assert_null(ssl_nn_cross_attention_forward(ctx, &c.a, kv, x, NULL));
    tu_assert_error(NULL, SSL_ERR_SHAPE, "cross-attention", "(2, 5, 6)", NULL);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

static void test_encoder_from_json(void **state)
{
    (void)state;
    ssl_encoder_cfg_t cfg;
    const char *r = "{\"type\": \"resnet18\", \"stem\": \"cifar\", \"in_channels\": 1, \"width\": 32}";
    assert_int_equal(ssl_encoder_cfg_from_json(r, strlen(r), "enc.json", &cfg), SSL_OK);
    assert_int_equal(cfg.kind, SSL_ENC_RESNET);
    assert_int_equal(cfg.resnet.depth, 18);
    assert_int_equal(cfg.resnet.cifar_stem, 1);
    assert_int_equal(cfg.resnet.in_channels, 1);
    assert_int_equal(cfg.resnet.width, 32);
    assert_int_equal(cfg.resnet.bn_groups, 1);
    const char *g = "{\"type\": \"resnet18\", \"bn_groups\": 4}";
    assert_int_equal(ssl_encoder_cfg_from_json(g, strlen(g), "enc.json", &cfg), SSL_OK);
    assert_int_equal(cfg.resnet.bn_groups, 4);
    const char *v = "{\"type\": \"vit_tiny\", \"patch_size\": 4, \"image_size\": 32, "
                    "\"pool\": \"mean\", \"pos_embed\": \"sincos\"}";
    assert_int_equal(ssl_encoder_cfg_from_json(v, strlen(v), "enc.json", &cfg), SSL_OK);
    assert_int_equal(cfg.kind, SSL_ENC_VIT);
    assert_int_equal(cfg.vit.dim, 192);
    assert_int_equal(cfg.vit.patch_size, 4);
    assert_int_equal(cfg.vit.pool, SSL_POOL_MEAN);
    assert_int_equal(cfg.vit.pos_embed, SSL_POS_SINCOS);
    static const struct {
        const char *json, *needle1, *needle2;
    } bad[] = {
        {"{\"type\": \"resnet18\", \"widht\": 3}", "widht", "did you mean 'width'"},
        {"{\"type\": \"resnet19\"}", "type", "resnet18"},
        {"{\"type\": \"resnet18\", \"width\": 0}", "width", "1"},
        {"{\"type\": \"resnet18\", \"stem\": \"tiny\"}", "stem", "cifar"},
        {"{\"type\": \"vit_tiny\", \"heads\": 5}", "heads", "192"},
        {"{\"type\": \"vit_tiny\", \"patch_size\": 5, \"image_size\": 32}", "patch_size", "32"},
        {"{\"type\": \"vit\", \"dim\": 64}", "depth", "missing"},
        {"{\"width\": 3}", "type", "missing"},
        {"{\"type\": \"resnet18\", \"bn_groups\": 0}", "bn_groups", "64"},
        {"{\"type\": \"vit_tiny\", \"bn_groups\": 2}", "bn_groups", "unknown"},
        {"{\"type\": \"resnet18\", \"type\": \"resnet50\"}", "type", "duplicate"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st = ssl_encoder_cfg_from_json(bad[i].json, strlen(bad[i].json), "enc.json", &cfg);
        if (st == SSL_OK)
            fail_msg("accepted %s", bad[i].json);
        const char *m = ssl_last_error();
        if (!strstr(m, bad[i].needle1) || !strstr(m, bad[i].needle2) || !strstr(m, "enc.json"))
            fail_msg("message for %s: \"%s\"", bad[i].json, m);
    }
}

/* ---------------------------------------------------------------- split BatchNorm */

/* Plain split BatchNorm in double: group g = samples n with n % G == g, each normalised with its
 * own batch mean and biased variance; the running statistics get each group's PyTorch update
 * (unbiased variance), averaged over the groups. x (N, C, S). */
static void ref_split_bn(const float *x, const float *w, const float *b, int64_t N, int64_t C,
                         int64_t S, int G, float momentum, float eps, float *y, float *rm,
                         float *rv)
{
    const int64_t n = N / G;
    double *nrm = calloc((size_t)C, sizeof(double)), *nrv = calloc((size_t)C, sizeof(double));
    for (int g = 0; g < G; g++)
        for (int64_t c = 0; c < C; c++) {
            double mean = 0, var = 0;
            for (int64_t i = g; i < N; i += G)
                for (int64_t k = 0; k < S; k++)
                    mean += x[(i * C + c) * S + k];
            mean /= (double)(n * S);
            for (int64_t i = g; i < N; i += G)
                for (int64_t k = 0; k < S; k++) {
                    double d = x[(i * C + c) * S + k] - mean;
                    var += d * d;
                }
            var /= (double)(n * S);
            for (int64_t i = g; i < N; i += G)
                for (int64_t k = 0; k < S; k++) {
                    double z = (x[(i * C + c) * S + k] - mean) / sqrt(var + eps);
                    y[(i * C + c) * S + k] = (float)(z * (w ? w[c] : 1.0) + (b ? b[c] : 0.0));
                }
            double cnt = (double)(n * S);
            nrm[c] += (1 - momentum) * rm[c] + momentum * mean;
            nrv[c] += (1 - momentum) * rv[c] + momentum * var * cnt / (cnt - 1);
        }
    for (int64_t c = 0; c < C; c++) {
        rm[c] = (float)(nrm[c] / G);
        rv[c] = (float)(nrv[c] / G);
    }
    free(nrm);
    free(nrv);
}

static void test_split_batchnorm_forward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    static const struct {
        int ndim;
        int64_t shape[4];
        int groups, relu;
    } cases[] = {{4, {8, 3, 4, 5}, 4, 0},
                 {4, {6, 2, 3, 3}, 3, 1},
                 {2, {12, 5}, 2, 0},
                 {4, {4, 3, 2, 2}, 2, 2},
                 {3, {6, 4, 7}, 6, 0}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        ssl_params_t *p = ssl_params_create();
        ssl_nn_batchnorm_t bn;
        const int64_t C = cases[ci].shape[1];
        assert_int_equal(ssl_nn_batchnorm_init(&bn, p, "bn", C, 1, 0.1f, 1e-5f), SSL_OK);
        bn.groups = cases[ci].groups;
        ssl_tensor_t *x = tu_rand(ctx, cases[ci].ndim, cases[ci].shape, 700 + ci, -1, 3, 0);
        ssl_tensor_t *r = tu_rand(ctx, cases[ci].ndim, cases[ci].shape, 710 + ci, -1, 1, 0);
        for (int64_t c = 0; c < C; c++) {
            bn.weight->data[c] = 0.5f + 0.25f * (float)c;
            bn.bias->data[c] = 0.1f * (float)c - 0.2f;
            bn.running_mean->data[c] = 0.3f * (float)c;
            bn.running_var->data[c] = 1.0f + 0.5f * (float)c;
        }
        const int64_t N = x->shape[0], S = x->numel / (N * C);
        float *ref = malloc(sizeof(float) * (size_t)x->numel);
        float erm[8], erv[8];
        memcpy(erm, bn.running_mean->data, sizeof(float) * (size_t)C);
        memcpy(erv, bn.running_var->data, sizeof(float) * (size_t)C);
        ref_split_bn(x->data, bn.weight->data, bn.bias->data, N, C, S, cases[ci].groups, 0.1f,
                     1e-5f, ref, erm, erv);
        int relu = cases[ci].relu;
        for (int64_t i = 0; relu && i < x->numel; i++) {
            float v = ref[i] + (relu == 2 ? r->data[i] : 0.0f);
            ref[i] = v > 0 ? v : 0;
        }
        ssl_tensor_t *y = relu == 2   ? ssl_nn_batchnorm_add_relu_forward(ctx, &bn, x, r, 1)
                          : relu == 1 ? ssl_nn_batchnorm_relu_forward(ctx, &bn, x, 1)
                                      : ssl_nn_batchnorm_forward(ctx, &bn, x, 1);
        assert_non_null(y);
        assert_true(ssl_same_shape(x, y));
        tu_assert_close(y->data, ref, x->numel, 1e-5, 1e-5);
        tu_assert_close(bn.running_mean->data, erm, C, 1e-6, 1e-6);
        tu_assert_close(bn.running_var->data, erv, C, 1e-6, 1e-6);
        assert_float_equal(bn.num_batches_tracked->data[0], 1.0f, 0);
        /* eval mode: the running statistics, one BatchNorm (groups do not apply) */
        ssl_tensor_t *ye = ssl_nn_batchnorm_forward(ctx, &bn, x, 0);
        ssl_tensor_t *yp = ssl_batch_norm(ctx, x, bn.weight, bn.bias, bn.running_mean,
                                          bn.running_var, 0, 0.1f, 1e-5f);
        assert_non_null(ye);
        assert_non_null(yp);
        assert_memory_equal(ye->data, yp->data, sizeof(float) * (size_t)x->numel);
        /* one group is plain BatchNorm, and differs from the split one */
        bn.groups = 1;
        ssl_tensor_t *y1 = ssl_nn_batchnorm_forward(ctx, &bn, x, 1);
        assert_non_null(y1);
        double diff = 0;
        for (int64_t i = 0; i < x->numel; i++)
            diff = fmax(diff, fabs((double)y1->data[i] - ref[i]));
        assert_true(diff > 1e-2);
        free(ref);
        ssl_params_free(p);
        ssl_ctx_reset(ctx);
    }
    /* a batch that is not a multiple of the groups: an error naming the shape */
    ssl_params_t *p = ssl_params_create();
    ssl_nn_batchnorm_t bn;
    assert_int_equal(ssl_nn_batchnorm_init(&bn, p, "bn", 3, 1, 0.1f, 1e-5f), SSL_OK);
    bn.groups = 4;
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){6, 3, 2, 2}, 720, -1, 1, 0);
    tu_assert_error(ssl_nn_batchnorm_forward(ctx, &bn, x, 1), SSL_ERR_SHAPE, "4 groups",
                    "(6, 3, 2, 2)", NULL);
    assert_float_equal(bn.num_batches_tracked->data[0], 0.0f, 0);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

static ssl_tensor_t *build_split_bn(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    ssl_nn_batchnorm_t bn = *(const ssl_nn_batchnorm_t *)user;
    bn.weight = in[1]; /* the inputs' weight and bias; no running statistics to move */
    bn.bias = in[2];
    bn.running_mean = bn.running_var = NULL;
    return ssl_nn_batchnorm_forward(ctx, &bn, in[0], 1);
}

/* Central differences through split BatchNorm to x, weight and bias (the relu forms are the
 * same op on the same view, checked in the forward test). */
static void test_split_batchnorm_backward(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_params_t *p = ssl_params_create();
    ssl_nn_batchnorm_t bn;
    assert_int_equal(ssl_nn_batchnorm_init(&bn, p, "bn", 3, 1, 0.1f, 1e-5f), SSL_OK);
    static const struct {
        int ndim;
        int64_t shape[4];
        int groups;
    } cases[] = {{4, {6, 3, 2, 3}, 3}, {2, {8, 3}, 2}, {4, {4, 3, 3, 2}, 4}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        bn.groups = cases[ci].groups;
        int64_t C = 3;
        ssl_tensor_t *in[3] = {tu_rand(ctx, cases[ci].ndim, cases[ci].shape, 730 + ci, -2, 2, 1),
                               tu_rand_away0(ctx, 1, &C, 740 + ci, -2, 2, 0.3f, 1),
                               tu_rand(ctx, 1, &C, 750 + ci, -1, 1, 1)};
        assert_int_equal(tu_gradcheck(ctx, build_split_bn, &bn, in, 3, NULL), 0);
        ssl_ctx_reset(ctx);
    }
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_mlp_layout),
        cmocka_unit_test(test_init_statistics),
        cmocka_unit_test(test_conv2d_hw),
        cmocka_unit_test(test_sincos),
        cmocka_unit_test(test_conv_transpose_layer),
        cmocka_unit_test(test_resnet_counts),
        cmocka_unit_test(test_vit_counts),
        cmocka_unit_test(test_encoder_gradients),
        cmocka_unit_test(test_dcgan_encoder),
        cmocka_unit_test(test_encoder_from_json),
        cmocka_unit_test(test_encoder_masked_tokens),
        cmocka_unit_test(test_encoder_block_outputs),
        cmocka_unit_test(test_cross_attention),
        cmocka_unit_test(test_split_batchnorm_forward),
        cmocka_unit_test(test_split_batchnorm_backward),
    };
    return cmocka_run_group_tests_name("nn", tests, NULL, NULL);
}
