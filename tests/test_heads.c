/* Heads: presets and the strict config reader, parameter names and counts against the official
 * models, output shapes in train/eval mode, freezing, SwAV renormalisation, and the errors for
 * bad inputs. (Gradients: test_heads_grad.c; PyTorch parity: test_heads_parity.c.) */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/heads.h"

static int64_t n_trainable(const ssl_params_t *p)
{
    int64_t n = 0;
    for (int i = 0; i < ssl_params_count(p); i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        if (in->kind == SSL_PARAM_TRAINABLE)
            n += in->t->numel;
    }
    return n;
}

static const ssl_param_info_t *info(const ssl_params_t *p, const char *name)
{
    for (int i = 0; i < ssl_params_count(p); i++)
        if (!strcmp(ssl_params_info(p, i)->name, name))
            return ssl_params_info(p, i);
    fail_msg("no parameter '%s'", name);
    return NULL;
}

/* ---------------------------------------------------------------- presets and JSON */

static void test_presets(void **state)
{
    (void)state;
    ssl_head_cfg_t c;
    assert_int_equal(ssl_head_preset("simclr_projector", &c), SSL_OK);
    assert_int_equal(c.kind, SSL_HEAD_MLP);
    assert_int_equal(c.mlp.layers, 2);
    assert_int_equal(c.mlp.hidden, 2048);
    assert_int_equal(c.mlp.out, 256);
    assert_int_equal(c.mlp.last_norm, SSL_NORM_NONE);
    assert_int_equal(ssl_head_preset("byol_projector", &c), SSL_OK);
    assert_int_equal(c.mlp.hidden, 4096);
    assert_int_equal(c.mlp.out, 256);
    assert_int_equal(ssl_head_preset("simsiam_projector", &c), SSL_OK);
    assert_int_equal(c.mlp.layers, 3);
    assert_int_equal(c.mlp.last_norm, SSL_NORM_BN);
    assert_int_equal(c.mlp.last_norm_affine, 0);
    assert_int_equal(c.mlp.bias, 0);
    assert_int_equal(ssl_head_preset("simsiam_predictor", &c), SSL_OK);
    assert_int_equal(c.mlp.hidden, 512);
    assert_int_equal(c.mlp.out, 2048);
    assert_true(c.is_predictor);
    assert_int_equal(ssl_head_preset("dino", &c), SSL_OK);
    assert_int_equal(c.dino.out_dim, 65536);
    assert_int_equal(c.dino.bottleneck_dim, 256);
    assert_int_equal(c.dino.freeze_last_layer, 1);
    assert_int_equal(ssl_head_preset("swav_prototypes", &c), SSL_OK);
    assert_int_equal(c.swav.n_prototypes, 3000);
    assert_int_equal(c.swav.freeze_iters, 313);
    assert_int_equal(ssl_head_preset("mae_decoder", &c), SSL_OK);
    assert_int_equal(c.mae.dim, 512);
    assert_int_equal(c.mae.depth, 8);
    assert_int_equal(c.mae.heads, 16);
    assert_int_equal(ssl_head_preset("ijepa_predictor", &c), SSL_OK);
    assert_int_equal(c.jepa.dim, 384);
    assert_int_equal(c.jepa.depth, 12);
    assert_int_equal(ssl_head_preset("clip_text", &c), SSL_OK);
    assert_int_equal(c.text.context_length, 77);
    assert_int_equal(ssl_head_preset("swav_projector", &c), SSL_OK); /* hidden_mlp, feat_dim */
    assert_true(c.mlp.hidden == 2048 && c.mlp.out == 128 && c.mlp.bias && !c.mlp.no_last_bias);
    assert_int_equal(ssl_head_preset("simclr_projecter", &c), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "did you mean 'simclr_projector'"));
}

static void test_json(void **state)
{
    (void)state;
    ssl_head_cfg_t c;
    const char *j = "{\"layers\": 3, \"hidden_dim\": 64, \"out_dim\": 32, \"norm\": \"ln\", "
                    "\"activation\": \"gelu\", \"last_bias\": false}";
    assert_int_equal(ssl_head_cfg_from_json(j, strlen(j), "h.json", "mlp", &c), SSL_OK);
    assert_int_equal(c.mlp.layers, 3);
    assert_int_equal(c.mlp.hidden, 64);
    assert_int_equal(c.mlp.norm, SSL_NORM_LN);
    assert_int_equal(c.mlp.act, SSL_ACT_GELU);
    assert_int_equal(c.mlp.no_last_bias, 1);
    j = "{\"out_dim\": 4096, \"use_bn\": true, \"freeze_last_layer\": 0}";
    assert_int_equal(ssl_head_cfg_from_json(j, strlen(j), "h.json", "dino", &c), SSL_OK);
    assert_int_equal(c.dino.out_dim, 4096);
    assert_int_equal(c.dino.use_bn, 1);
    assert_int_equal(c.dino.hidden_dim, 2048); /* default kept */
    j = "{\"dim\": 64, \"depth\": 2, \"heads\": 4}";
    assert_int_equal(ssl_head_cfg_from_json(j, strlen(j), "h.json", "mae_decoder", &c), SSL_OK);
    assert_int_equal(c.mae.dim, 64);
    j = "{\"width\": 64, \"layers\": 2, \"heads\": 4, \"pool\": \"mean\", \"causal\": false, "
        "\"tokenizer\": \"bytes\"}";
    assert_int_equal(ssl_head_cfg_from_json(j, strlen(j), "h.json", "clip_text", &c), SSL_OK);
    assert_int_equal(c.text.pool, SSL_TEXT_POOL_MEAN);
    assert_int_equal(c.text.tokenizer, SSL_TOK_BYTES);
    assert_int_equal(c.text.causal, 0);
    static const struct {
        const char *kind, *json, *n1, *n2;
    } bad[] = {
        {"simclr_projector", "{\"hiden_dim\": 3}", "hiden_dim", "did you mean 'hidden_dim'"},
        {"simclr_projector", "{\"out_dim\": 0}", "out_dim", "1"},
        {"simclr_projector", "{\"norm\": \"batch\"}", "norm", "bn"},
        {"dino", "{\"bottleneck\": 8}", "bottleneck", "allowed keys"},
        {"dino", "{\"botleneck_dim\": 8}", "botleneck_dim", "did you mean 'bottleneck_dim'"},
        {"dino", "{\"norm_last_layer\": 1}", "norm_last_layer", "true or false"},
        {"swav_prototypes", "{\"n_prototype\": 10}", "n_prototype", "n_prototypes"},
        {"mae_decoder", "{\"dim\": 30}", "dim", "multiple of 4"},
        {"mae_decoder", "{\"dim\": 64, \"heads\": 3}", "heads", "does not divide"},
        {"ijepa_predictor", "{\"depht\": 3}", "depht", "did you mean 'depth'"},
        {"clip_text", "{\"pool\": \"cls\"}", "pool", "eos"},
        {"clip_text", "{\"width\": 30, \"heads\": 4}", "heads", "does not divide"},
        {"clip_image_proj", "{\"embed\": 3}", "embed", "embed_dim"},
        {"dinoo", "{}", "dinoo", "did you mean 'dino'"},
        {"dino", "{\"out_dim\": 8, \"out_dim\": 9}", "out_dim", "duplicate"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st =
            ssl_head_cfg_from_json(bad[i].json, strlen(bad[i].json), "h.json", bad[i].kind, &c);
        if (st == SSL_OK)
            fail_msg("accepted %s for %s", bad[i].json, bad[i].kind);
        const char *m = ssl_last_error();
        if (!strstr(m, bad[i].n1) || !strstr(m, bad[i].n2) || !strstr(m, "h.json"))
            fail_msg("message for %s: \"%s\"", bad[i].json, m);
    }
}

static void test_fit_encoder(void **state)
{
    (void)state;
    ssl_encoder_cfg_t ec;
    ssl_encoder_preset("vit_tiny", &ec);
    ec.vit.image_size = 32;
    ec.vit.patch_size = 4;
    ec.vit.depth = 1;
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&ec, p, "encoder", 1);
    ssl_head_cfg_t c;
    ssl_head_preset("mae_decoder", &c);
    assert_int_equal(ssl_head_cfg_fit_encoder(&c, e), SSL_OK);
    assert_int_equal(c.mae.in_dim, 192);
    assert_int_equal(c.mae.grid_h, 8);
    assert_int_equal(c.mae.patch_size, 4);
    assert_int_equal(c.mae.in_chans, 3);
    assert_int_equal(c.mae.cls_token, 1);
    /* the encoder's outputs feed the decoder directly: visible tokens + cls (pool 'cls') */
    c.mae.dim = 32;
    c.mae.depth = 1;
    c.mae.heads = 2;
    ssl_mae_decoder_t *d = malloc(sizeof *d);
    assert_int_equal(ssl_mae_decoder_init(d, p, "decoder", &c.mae, 1), SSL_OK);
    ssl_ctx_t *ctx = ssl_ctx_create(8 << 20);
    ssl_tensor_t *img = tu_rand(ctx, 4, (int64_t[]){2, 3, 32, 32}, 1, -1, 1, 0);
    int32_t keep[32];
    for (int i = 0; i < 32; i++)
        keep[i] = (i * 7 + i / 16) % 64; /* 16 distinct patches per image */
    ssl_encoder_out_t eo;
    assert_int_equal(ssl_encoder_forward(ctx, e, img, keep, 16, 1, &eo), SSL_OK);
    ssl_tensor_t *pix = ssl_mae_decoder_forward(ctx, d, eo.pooled, eo.tokens, keep, 16);
    if (!pix)
        fail_msg("%s", ssl_last_error());
    assert_int_equal(pix->shape[0], 2);
    assert_int_equal(pix->shape[1], 64);
    assert_int_equal(pix->shape[2], 48);
    free(d);
    ssl_ctx_free(ctx);
    ssl_head_preset("ijepa_predictor", &c);
    assert_int_equal(ssl_head_cfg_fit_encoder(&c, e), SSL_OK);
    assert_int_equal(c.jepa.grid_w, 8);
    assert_int_equal(c.jepa.in_dim, 192);
    ssl_head_preset("byol_predictor", &c);
    assert_int_equal(ssl_head_cfg_fit_encoder(&c, e), SSL_OK);
    assert_int_equal(c.mlp.in, 0); /* fed by the projector, set by the caller */
    ssl_encoder_free(e);
    ssl_params_free(p);
    ssl_encoder_preset("resnet18", &ec);
    p = ssl_params_create();
    e = ssl_encoder_create(&ec, p, "encoder", 1);
    ssl_head_preset("simclr_projector", &c);
    assert_int_equal(ssl_head_cfg_fit_encoder(&c, e), SSL_OK);
    assert_int_equal(c.mlp.in, 512);
    ssl_head_preset("mae_decoder", &c);
    assert_int_equal(ssl_head_cfg_fit_encoder(&c, e), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "ViT"));
    ssl_encoder_free(e);
    ssl_params_free(p);
}

/* ---------------------------------------------------------------- names and counts */

static void test_projector_names(void **state)
{
    (void)state;
    static const struct {
        const char *kind;
        const char *has, *lacks;
        int64_t params;
    } cases[] = {
        /* simsiam builder.py: Linear(nb)-BN-ReLU x2, Linear, BN(affine=False) */
        {"simsiam_projector", "projector.7.running_var", "projector.6.bias",
         8 * 16 + 32 + 16 * 16 + 32 + 16 * 12},
        /* BYOL / SimCLR (solo-learn): biased linears, no output norm */
        {"byol_projector", "projector.3.bias", "projector.4.weight",
         8 * 16 + 16 + 32 + 16 * 12 + 12},
        /* VICReg: last linear without bias */
        {"vicreg_projector", "projector.3.bias", "projector.6.bias",
         (8 * 16 + 16) + 32 + (16 * 16 + 16) + 32 + 16 * 12},
        /* MoCo v3: bias-free, ends in BN(affine=False) */
        {"mocov3_projector", "projector.4.running_mean", "projector.3.bias", 8 * 16 + 32 + 16 * 12},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ssl_head_cfg_t c;
        assert_int_equal(ssl_head_preset(cases[i].kind, &c), SSL_OK);
        c.mlp.in = 8;
        c.mlp.hidden = 16;
        c.mlp.out = 12;
        ssl_params_t *p = ssl_params_create();
        ssl_mlp_t m;
        assert_int_equal(ssl_mlp_init(&m, p, "projector", &c.mlp, 1), SSL_OK);
        if (!ssl_params_get(p, cases[i].has) || ssl_params_get(p, cases[i].lacks))
            fail_msg("%s: expected %s and no %s", cases[i].kind, cases[i].has, cases[i].lacks);
        assert_int_equal(n_trainable(p), cases[i].params);
        ssl_params_free(p);
    }
}

static void test_official_counts(void **state)
{
    (void)state;
    ssl_head_cfg_t c;
    /* Official widths with fewer blocks / prototypes so the test stays fast (filling 100 M
     * values takes seconds); the counts come from the PyTorch modules of
     * gen_head_fixtures.py. At full size they give DINOHead(384, 65536) 22,286,592, the MAE
     * ViT-B decoder 26,008,320, the I-JEPA ViT-B predictor 21,885,696 and open_clip's ViT-B/32
     * text tower 63,428,096, which libssl matches too.
     * DINO head on ViT-S (in 384), 4096 prototypes */
    ssl_head_preset("dino", &c);
    c.dino.in_dim = 384;
    c.dino.out_dim = 4096;
    ssl_params_t *p = ssl_params_create();
    ssl_dino_head_t dh;
    assert_int_equal(ssl_dino_head_init(&dh, p, "head", &c.dino, 1), SSL_OK);
    assert_int_equal(n_trainable(p), 6557952);
    assert_int_equal(info(p, "head.last_layer.weight_g")->kind, SSL_PARAM_BUFFER);
    assert_int_equal(info(p, "head.last_layer.weight_v")->t->shape[0], 4096);
    assert_non_null(ssl_params_get(p, "head.mlp.4.bias")); /* Linear, GELU, Linear, GELU, Linear */
    ssl_params_free(p);
    /* MAE ViT-B decoder (512 wide, 16 heads, 14x14 patches of 16 px), 2 blocks */
    ssl_head_preset("mae_decoder", &c);
    c.mae = (ssl_mae_decoder_cfg_t){768, 14, 14, 16, 3, 1, 512, 2, 16, 4.0};
    p = ssl_params_create();
    ssl_mae_decoder_t *md = malloc(sizeof *md);
    assert_int_equal(ssl_mae_decoder_init(md, p, "", &c.mae, 1), SSL_OK);
    assert_int_equal(n_trainable(p), 7094016);
    assert_int_equal(info(p, "decoder_pos_embed")->kind, SSL_PARAM_BUFFER);
    assert_int_equal(md->pos_embed->shape[1], 197);
    for (int i = 0; i < 512; i++)
        assert_true(md->pos_embed->data[i] == 0.0f); /* the cls slot */
    assert_non_null(ssl_params_get(p, "decoder_blocks.1.mlp.fc2.weight"));
    assert_non_null(ssl_params_get(p, "decoder_pred.bias"));
    assert_int_equal(ssl_params_get(p, "decoder_pred.weight")->shape[0], 768);
    free(md);
    ssl_params_free(p);
    /* I-JEPA predictor for ViT-B/16 at 224 (384 wide, 12 heads), 2 blocks */
    ssl_head_preset("ijepa_predictor", &c);
    c.jepa.depth = 2;
    c.jepa.in_dim = 768;
    c.jepa.grid_h = c.jepa.grid_w = 14;
    p = ssl_params_create();
    ssl_jepa_predictor_t *jp = malloc(sizeof *jp);
    assert_int_equal(ssl_jepa_predictor_init(jp, p, "predictor", &c.jepa, 1), SSL_OK);
    assert_int_equal(n_trainable(p), 4141056);
    assert_non_null(ssl_params_get(p, "predictor.predictor_blocks.1.attn.proj.weight"));
    assert_non_null(ssl_params_get(p, "predictor.predictor_proj.weight"));
    /* fix_init_weight: block i's residual outputs are scaled by 1/sqrt(2 (i + 1)) */
    ssl_tensor_t *w0 = jp->blocks[0].fc2.weight, *w11 = jp->blocks[1].fc2.weight;
    double s0 = 0, s11 = 0;
    for (int64_t i = 0; i < w0->numel; i++) {
        s0 += (double)w0->data[i] * w0->data[i];
        s11 += (double)w11->data[i] * w11->data[i];
    }
    assert_float_equal(sqrt(s0 / s11), sqrt(2.0), 0.02);
    free(jp);
    ssl_params_free(p);
    /* open_clip ViT-B/32 text tower (512 wide, 8 heads, context 77), 1000 words, 2 blocks */
    ssl_head_preset("clip_text", &c);
    c.text.vocab_size = 1000;
    c.text.layers = 2;
    p = ssl_params_create();
    ssl_text_tower_t *tt = malloc(sizeof *tt);
    assert_int_equal(ssl_text_tower_init(tt, p, "text", &c.text, 1), SSL_OK);
    assert_int_equal(n_trainable(p), 7119360);
    assert_non_null(ssl_params_get(p, "text.transformer.resblocks.1.attn.in_proj_weight"));
    assert_non_null(ssl_params_get(p, "text.transformer.resblocks.0.mlp.c_proj.bias"));
    assert_int_equal(ssl_params_get(p, "text.text_projection")->shape[0], 512);
    free(tt);
    ssl_params_free(p);
}

/* ---------------------------------------------------------------- forward shapes, modes */

static void test_dino_forward_and_freeze(void **state)
{
    (void)state;
    ssl_dino_head_cfg_t cfg = {6, 3, 16, 8, 32, 1, 1, 2};
    ssl_params_t *p = ssl_params_create();
    ssl_dino_head_t h;
    assert_int_equal(ssl_dino_head_init(&h, p, "head", &cfg, 3), SSL_OK);
    assert_non_null(ssl_params_get(p, "head.mlp.1.running_mean"));
    assert_string_equal(h.last_layer_prefix, "head.last_layer.");
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 2, (int64_t[]){4, 6}, 1, -1, 1, 0);
    ssl_tensor_t *bn = NULL;
    ssl_tensor_t *yt = ssl_dino_head_forward(ctx, &h, x, 1, &bn);
    ssl_tensor_t *ye = ssl_dino_head_forward(ctx, &h, x, 0, NULL);
    assert_non_null(yt);
    assert_int_equal(yt->shape[0], 4);
    assert_int_equal(yt->shape[1], 32);
    assert_int_equal(bn->shape[1], 8);
    /* bottleneck rows have unit norm; the prototypes too, so every logit is a cosine */
    for (int b = 0; b < 4; b++) {
        double s = 0;
        for (int k = 0; k < 8; k++)
            s += (double)bn->data[b * 8 + k] * bn->data[b * 8 + k];
        assert_float_equal(s, 1.0, 1e-5);
    }
    for (int64_t i = 0; i < yt->numel; i++)
        assert_true(fabsf(yt->data[i]) <= 1.0f + 1e-5f);
    int differ = 0; /* eval uses running statistics */
    for (int64_t i = 0; i < yt->numel; i++)
        differ += fabsf(yt->data[i] - ye->data[i]) > 1e-4f;
    assert_true(differ > 0);
    /* frozen for epochs 0 and 1: the last layer gets no gradient, the MLP does */
    assert_int_equal(ssl_dino_head_set_epoch(&h, p, 0), 1);
    assert_true(info(p, "head.last_layer.weight_v")->flags & SSL_PARAM_FROZEN);
    assert_int_equal(h.weight_v->requires_grad, 0);
    ssl_ctx_reset(ctx);
    ssl_params_zero_grad(p);
    x = tu_rand(ctx, 2, (int64_t[]){4, 6}, 1, -1, 1, 0);
    ssl_tensor_t *y = ssl_dino_head_forward(ctx, &h, x, 1, NULL);
    assert_int_equal(ssl_backward(ctx, ssl_sum_all(ctx, ssl_mul(ctx, y, y))), SSL_OK);
    double gv = 0, gm = 0;
    for (int64_t i = 0; i < h.weight_v->numel; i++)
        gv += fabsf(h.weight_v->grad[i]);
    ssl_tensor_t *w0 = ssl_params_get(p, "head.mlp.0.weight");
    for (int64_t i = 0; i < w0->numel; i++)
        gm += fabsf(w0->grad[i]);
    assert_true(gv == 0.0);
    assert_true(gm > 0.0);
    assert_int_equal(ssl_dino_head_set_epoch(&h, p, 1), 1);
    assert_int_equal(ssl_dino_head_set_epoch(&h, p, 2), 0);
    assert_int_equal(h.weight_v->requires_grad, 1);
    assert_false(info(p, "head.last_layer.weight_v")->flags & SSL_PARAM_FROZEN);
    /* errors name the head and the shape */
    ssl_tensor_t *bad = tu_rand(ctx, 2, (int64_t[]){4, 7}, 1, -1, 1, 0);
    tu_assert_error(ssl_dino_head_forward(ctx, &h, bad, 1, NULL), SSL_ERR_SHAPE, "dino head",
                    "(4, 7)", "(B, 6)", NULL);
    ssl_dino_head_t h2;
    cfg.in_dim = 0;
    assert_int_equal(ssl_dino_head_init(&h2, p, "h2", &cfg, 3), SSL_ERR_CONFIG);
    /* a single-layer head is one linear named "mlp" as DINOHead(nlayers=1) */
    cfg = (ssl_dino_head_cfg_t){6, 1, 16, 8, 32, 0, 0, 0};
    assert_int_equal(ssl_dino_head_init(&h2, p, "h1", &cfg, 3), SSL_OK);
    assert_non_null(ssl_params_get(p, "h1.mlp.weight"));
    assert_int_equal(info(p, "h1.last_layer.weight_g")->kind, SSL_PARAM_TRAINABLE);
    ssl_ctx_free(ctx);
    ssl_params_free(p);
}

static void test_swav_normalize_and_freeze(void **state)
{
    (void)state;
    ssl_swav_cfg_t cfg = {5, 7, 3};
    ssl_params_t *p = ssl_params_create();
    ssl_swav_prototypes_t h;
    assert_int_equal(ssl_swav_prototypes_init(&h, p, "prototypes", &cfg, 1), SSL_OK);
    assert_non_null(ssl_params_get(p, "prototypes.weight"));
    for (int64_t i = 0; i < h.weight->numel; i++)
        h.weight->data[i] *= (float)(1 + i % 3); /* an optimizer step moved them off the sphere */
    ssl_swav_prototypes_normalize(&h);
    for (int k = 0; k < 7; k++) {
        double s = 0;
        for (int d = 0; d < 5; d++)
            s += (double)h.weight->data[k * 5 + d] * h.weight->data[k * 5 + d];
        assert_float_equal(s, 1.0, 1e-6);
    }
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *z = tu_rand(ctx, 2, (int64_t[]){4, 5}, 2, -3, 3, 0), *zn;
    ssl_tensor_t *s = ssl_swav_prototypes_forward(ctx, &h, z, &zn);
    assert_int_equal(s->shape[1], 7);
    assert_int_equal(zn->shape[1], 5);
    for (int64_t i = 0; i < s->numel; i++)
        assert_true(fabsf(s->data[i]) <= 1.0f + 1e-5f);
    assert_int_equal(ssl_swav_prototypes_set_iteration(&h, p, 0), 1);
    assert_int_equal(h.weight->requires_grad, 0);
    assert_int_equal(ssl_swav_prototypes_set_iteration(&h, p, 2), 1);
    assert_int_equal(ssl_swav_prototypes_set_iteration(&h, p, 3), 0);
    assert_int_equal(h.weight->requires_grad, 1);
    tu_assert_error(
        ssl_swav_prototypes_forward(ctx, &h, tu_rand(ctx, 1, (int64_t[]){5}, 1, 0, 1, 0), NULL),
        SSL_ERR_SHAPE, "swav prototypes", "(5)", NULL);
    ssl_ctx_free(ctx);
    ssl_params_free(p);
}

static ssl_mae_decoder_cfg_t small_mae(int cls)
{
    return (ssl_mae_decoder_cfg_t){8, 2, 3, 2, 1, cls, 8, 1, 2, 2.0};
}

static void test_mae_decoder(void **state)
{
    (void)state;
    ssl_mae_decoder_cfg_t cfg = small_mae(1);
    ssl_params_t *p = ssl_params_create();
    ssl_mae_decoder_t *d = malloc(sizeof *d);
    assert_int_equal(ssl_mae_decoder_init(d, p, "decoder", &cfg, 1), SSL_OK);
    assert_non_null(ssl_params_get(p, "decoder.mask_token"));
    assert_non_null(ssl_params_get(p, "decoder.decoder_blocks.0.attn.qkv.weight"));
    assert_non_null(ssl_params_get(p, "decoder.decoder_norm.weight"));
    ssl_ctx_t *ctx = tu_ctx();
    const int32_t keep[4] = {4, 1, 0, 5}; /* 2 samples, 2 of 6 patches visible */
    ssl_tensor_t *tok = tu_rand(ctx, 3, (int64_t[]){2, 2, 8}, 1, -1, 1, 0);
    ssl_tensor_t *cls = tu_rand(ctx, 2, (int64_t[]){2, 8}, 2, -1, 1, 0);
    ssl_tensor_t *y = ssl_mae_decoder_forward(ctx, d, cls, tok, keep, 2);
    if (!y)
        fail_msg("%s", ssl_last_error());
    assert_int_equal(y->ndim, 3);
    assert_int_equal(y->shape[1], 6);
    assert_int_equal(y->shape[2], 4); /* 2 x 2 pixels x 1 channel */
    /* bad inputs */
    const int32_t dup[4] = {4, 4, 0, 5}, out[4] = {4, 6, 0, 5};
    tu_assert_error(ssl_mae_decoder_forward(ctx, d, cls, tok, dup, 2), SSL_ERR_INVALID,
                    "mae decoder", "repeats", "sample 0", NULL);
    tu_assert_error(ssl_mae_decoder_forward(ctx, d, cls, tok, out, 2), SSL_ERR_INVALID,
                    "outside [0, 6)", NULL);
    tu_assert_error(ssl_mae_decoder_forward(ctx, d, NULL, tok, keep, 2), SSL_ERR_INVALID, "cls",
                    NULL);
    tu_assert_error(ssl_mae_decoder_forward(ctx, d, cls, tok, keep, 3), SSL_ERR_SHAPE, "(2, 2, 8)",
                    NULL);
    ssl_tensor_t *bad_cls = tu_rand(ctx, 2, (int64_t[]){3, 8}, 2, -1, 1, 0);
    tu_assert_error(ssl_mae_decoder_forward(ctx, d, bad_cls, tok, keep, 2), SSL_ERR_SHAPE, "(3, 8)",
                    NULL);
    free(d);
    ssl_params_free(p);
    /* without a cls slot: giving one is an error */
    cfg = small_mae(0);
    p = ssl_params_create();
    d = malloc(sizeof *d);
    assert_int_equal(ssl_mae_decoder_init(d, p, "", &cfg, 1), SSL_OK);
    assert_int_equal(d->pos_embed->shape[1], 6);
    assert_non_null(ssl_mae_decoder_forward(ctx, d, NULL, tok, keep, 2));
    tu_assert_error(ssl_mae_decoder_forward(ctx, d, cls, tok, keep, 2), SSL_ERR_INVALID, "cls",
                    NULL);
    free(d);
    ssl_params_free(p);
    /* geometry missing */
    cfg.grid_h = 0;
    p = ssl_params_create();
    d = malloc(sizeof *d);
    assert_int_equal(ssl_mae_decoder_init(d, p, "", &cfg, 1), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "geometry"));
    free(d);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

static void test_jepa_predictor(void **state)
{
    (void)state;
    ssl_jepa_predictor_cfg_t cfg = {8, 3, 3, 8, 1, 2, 2.0};
    ssl_params_t *p = ssl_params_create();
    ssl_jepa_predictor_t *m = malloc(sizeof *m);
    assert_int_equal(ssl_jepa_predictor_init(m, p, "predictor", &cfg, 1), SSL_OK);
    assert_int_equal(ssl_params_get(p, "predictor.predictor_pos_embed")->shape[1], 9);
    ssl_ctx_t *ctx = tu_ctx();
    const int32_t cidx[6] = {0, 1, 2, 3, 4, 5};       /* 2 samples x 3 context tokens */
    const int32_t tidx[8] = {6, 7, 8, 0, 5, 6, 7, 8}; /* 2 blocks x 2 samples x 2 targets */
    ssl_tensor_t *x = tu_rand(ctx, 3, (int64_t[]){2, 3, 8}, 1, -1, 1, 0);
    ssl_tensor_t *y = ssl_jepa_predictor_forward(ctx, m, x, cidx, tidx, 2, 2);
    if (!y)
        fail_msg("%s", ssl_last_error());
    assert_int_equal(y->shape[0], 4);
    assert_int_equal(y->shape[1], 2);
    assert_int_equal(y->shape[2], 8);
    /* rows m*B + b: block 0 of sample 1 and block 1 of sample 1 share the context of sample 1,
     * and rows with the same targets and context agree */
    ssl_tensor_t *y1 = ssl_jepa_predictor_forward(ctx, m, x, cidx, tidx, 1, 2);
    tu_assert_close(y1->data, y->data, y1->numel, 1e-6, 1e-5);
    const int32_t bad[8] = {6, 7, 9, 0, 5, 6, 7, 8};
    tu_assert_error(ssl_jepa_predictor_forward(ctx, m, x, cidx, bad, 2, 2), SSL_ERR_INVALID,
                    "target", "outside [0, 9)", NULL);
    tu_assert_error(ssl_jepa_predictor_forward(ctx, m, x, cidx, tidx, 0, 2), SSL_ERR_INVALID,
                    "n_targets", NULL);
    ssl_tensor_t *wrong = tu_rand(ctx, 3, (int64_t[]){2, 3, 5}, 1, -1, 1, 0);
    tu_assert_error(ssl_jepa_predictor_forward(ctx, m, wrong, cidx, tidx, 2, 2), SSL_ERR_SHAPE,
                    "(2, 3, 5)", "(B, Kc, 8)", NULL);
    free(m);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

static void test_text_tower(void **state)
{
    (void)state;
    ssl_text_cfg_t cfg = {10, 6, 8, 1, 2, 2.0, 4, 1, SSL_TEXT_POOL_EOS, SSL_TOK_WORDS, 1, 0};
    ssl_params_t *p = ssl_params_create();
    ssl_text_tower_t *t = malloc(sizeof *t);
    assert_int_equal(ssl_text_tower_init(t, p, "text", &cfg, 1), SSL_OK);
    ssl_ctx_t *ctx = tu_ctx();
    const int32_t ids[12] = {1, 5, 6, 2, 0, 0, /**/ 1, 7, 2, 0, 0, 0};
    ssl_tensor_t *y = ssl_text_tower_forward(ctx, t, ids, 2, 6);
    if (!y)
        fail_msg("%s", ssl_last_error());
    assert_int_equal(y->shape[0], 2);
    assert_int_equal(y->shape[1], 4);
    /* causal + EOS pooling: tokens after <eos> cannot change the embedding */
    const int32_t ids2[12] = {1, 5, 6, 2, 9, 8, /**/ 1, 7, 2, 3, 3, 0};
    ssl_tensor_t *y2 = ssl_text_tower_forward(ctx, t, ids2, 2, 6);
    tu_assert_close(y2->data, y->data, y->numel, 1e-6, 1e-5);
    /* a shorter sequence than the context gives the same embedding */
    const int32_t ids3[8] = {1, 5, 6, 2, /**/ 1, 7, 2, 0};
    ssl_tensor_t *y3 = ssl_text_tower_forward(ctx, t, ids3, 2, 4);
    tu_assert_close(y3->data, y->data, y->numel, 1e-6, 1e-5);
    const int32_t no_eos[6] = {1, 5, 6, 0, 0, 0};
    tu_assert_error(ssl_text_tower_forward(ctx, t, no_eos, 1, 6), SSL_ERR_INVALID, "row 0", "<eos>",
                    NULL);
    tu_assert_error(ssl_text_tower_forward(ctx, t, ids, 1, 7), SSL_ERR_SHAPE, "(1, 7)",
                    "context_length 6", NULL);
    const int32_t oov[6] = {1, 10, 2, 0, 0, 0};
    assert_null(ssl_text_tower_forward(ctx, t, oov, 1, 6));
    assert_non_null(strstr(ssl_last_error(), "10"));
    free(t);
    ssl_params_free(p);
    /* bidirectional + mean: padding never matters */
    cfg.causal = 0;
    cfg.pool = SSL_TEXT_POOL_MEAN;
    p = ssl_params_create();
    t = malloc(sizeof *t);
    assert_int_equal(ssl_text_tower_init(t, p, "", &cfg, 1), SSL_OK);
    y = ssl_text_tower_forward(ctx, t, ids, 2, 6);
    y3 = ssl_text_tower_forward(ctx, t, ids3, 2, 4);
    tu_assert_close(y3->data, y->data, y->numel, 1e-6, 1e-5);
    const int32_t pad[6] = {0, 0, 0, 0, 0, 0};
    tu_assert_error(ssl_text_tower_forward(ctx, t, pad, 1, 6), SSL_ERR_INVALID, "padding", NULL);
    free(t);
    ssl_params_free(p);
    /* the image-side projection */
    p = ssl_params_create();
    ssl_clip_proj_t pr;
    assert_int_equal(ssl_clip_proj_init(&pr, p, "visual.proj", 6, 4, 1), SSL_OK);
    assert_non_null(ssl_params_get(p, "visual.proj"));
    ssl_tensor_t *x = tu_rand(ctx, 2, (int64_t[]){3, 6}, 1, -1, 1, 0);
    y = ssl_clip_proj_forward(ctx, &pr, x);
    assert_int_equal(y->shape[1], 4);
    tu_assert_error(ssl_clip_proj_forward(ctx, &pr, tu_rand(ctx, 2, (int64_t[]){3, 5}, 1, 0, 1, 0)),
                    SSL_ERR_SHAPE, "(3, 5)", NULL);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_fit_encoder),
        cmocka_unit_test(test_projector_names),
        cmocka_unit_test(test_official_counts),
        cmocka_unit_test(test_dino_forward_and_freeze),
        cmocka_unit_test(test_swav_normalize_and_freeze),
        cmocka_unit_test(test_mae_decoder),
        cmocka_unit_test(test_jepa_predictor),
        cmocka_unit_test(test_text_tower),
    };
    return cmocka_run_group_tests_name("heads", tests, NULL, NULL);
}
