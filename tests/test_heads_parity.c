/* Parity of the heads with PyTorch: modules written from the official code
 * (tests/fixtures/gen_head_fixtures.py) give the same outputs, input gradients, weight gradients
 * and BatchNorm running statistics, with the weights loaded by their official names. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/heads.h"
#include "ssl/io.h"

#define FIXTURE(name) TU_FIXTURE(name)

/* Integer indices stored as floats. */
static int32_t *load_idx(ssl_ctx_t *ctx, const ssl_st_t *f, const char *name, int64_t *rows,
                         int64_t *cols)
{
    ssl_tensor_t *t = tu_fixture_tensor(ctx, f, name);
    int32_t *idx = ssl_arena_alloc(ctx, (size_t)t->numel * sizeof *idx);
    for (int64_t i = 0; i < t->numel; i++)
        idx[i] = (int32_t)t->data[i];
    if (rows)
        *rows = t->ndim == 2 ? t->shape[0] : 1;
    if (cols)
        *cols = t->shape[t->ndim - 1];
    return idx;
}

static void load_weights(const ssl_st_t *f, ssl_params_t *p)
{
    ssl_st_report_t rep;
    if (ssl_st_load_params(f, p, "weight.", SSL_ST_STRICT, &rep) != SSL_OK)
        fail_msg("loading official names: %s", ssl_last_error());
    ssl_st_report_free(&rep);
}

static void expect(const ssl_tensor_t *got, ssl_ctx_t *ctx, const ssl_st_t *f, const char *name,
                   double atol, double rtol)
{
    ssl_tensor_t *ref = tu_fixture_tensor(ctx, f, name);
    if (!ssl_same_shape(got, ref)) {
        char a[64], b[64];
        fail_msg("%s: shape %s vs %s", name, ssl_shape_str(got, a, sizeof a),
                 ssl_shape_str(ref, b, sizeof b));
    }
    if (tu_count_mismatch(got->data, ref->data, ref->numel, atol, rtol, name))
        fail_msg("%s differs from PyTorch", name);
}

static void expect_grad(const ssl_tensor_t *x, ssl_ctx_t *ctx, const ssl_st_t *f, const char *name,
                        double atol, double rtol)
{
    ssl_tensor_t *ref = tu_fixture_tensor(ctx, f, name);
    assert_non_null(x->grad);
    if (tu_count_mismatch(x->grad, ref->data, ref->numel, atol, rtol, name))
        fail_msg("%s differs from PyTorch", name);
}

static void compare_running_stats(ssl_ctx_t *ctx, const ssl_st_t *f, ssl_params_t *p)
{
    int n = 0;
    for (int i = 0; i < ssl_params_count(p); i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        if (!strstr(in->name, "running_"))
            continue;
        char name[256];
        snprintf(name, sizeof name, "after.%s", in->name);
        expect(in->t, ctx, f, name, 1e-6, 1e-5);
        n++;
    }
    assert_true(n > 0);
}

/* Backward from sum(out * upstream) with the fixture's upstream. */
static void backward_upstream(ssl_ctx_t *ctx, const ssl_st_t *f, ssl_tensor_t *out,
                              const char *name)
{
    char nm[128];
    snprintf(nm, sizeof nm, "upstream.%s", name);
    ssl_tensor_t *up = tu_fixture_tensor(ctx, f, nm);
    assert_true(ssl_same_shape(out, up));
    assert_int_equal(ssl_backward_with(ctx, out, up->data), SSL_OK);
}

/* ---------------------------------------------------------------- DINO */

static void dino_case(const char *path, int use_bn, int norm_last_layer)
{
    ssl_st_t *f = tu_fixture_open(path);
    ssl_head_cfg_t hc;
    assert_int_equal(ssl_head_preset("dino", &hc), SSL_OK);
    ssl_dino_head_cfg_t cfg = hc.dino;
    cfg.in_dim = 12;
    cfg.hidden_dim = 16;
    cfg.bottleneck_dim = 8;
    cfg.out_dim = 20;
    cfg.use_bn = use_bn;
    cfg.norm_last_layer = norm_last_layer;
    ssl_params_t *p = ssl_params_create();
    ssl_dino_head_t h;
    assert_int_equal(ssl_dino_head_init(&h, p, "", &cfg, 1), SSL_OK);
    load_weights(f, p);
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_fixture_tensor(ctx, f, "input");
    x->requires_grad = 1;
    ssl_tensor_t *y = ssl_dino_head_forward(ctx, &h, x, 1, NULL);
    assert_non_null(y);
    expect(y, ctx, f, "logits", 1e-5, 1e-4);
    backward_upstream(ctx, f, y, "logits");
    expect_grad(x, ctx, f, "grad.input", 1e-5, 1e-3);
    assert_true(tu_fixture_param_grads(f, p, 1e-5, 1e-3) >= 7);
    if (use_bn)
        compare_running_stats(ctx, f, p);
    ssl_ctx_free(ctx);
    ssl_params_free(p);
    ssl_st_close(f);
}

static void test_dino(void **state)
{
    (void)state;
    dino_case(FIXTURE("head_dino.safetensors"), 0, 1);
}

static void test_dino_bn_learned_g(void **state)
{
    (void)state;
    dino_case(FIXTURE("head_dino_bn_g.safetensors"), 1, 0);
}

/* ---------------------------------------------------------------- SwAV */

static void test_swav(void **state)
{
    (void)state;
    ssl_st_t *f = tu_fixture_open(FIXTURE("head_swav.safetensors"));
    ssl_swav_cfg_t cfg = {8, 10, 313};
    ssl_params_t *p = ssl_params_create();
    ssl_swav_prototypes_t h;
    assert_int_equal(ssl_swav_prototypes_init(&h, p, "prototypes", &cfg, 1), SSL_OK);
    ssl_ctx_t *ctx = tu_ctx();
    /* the un-normalised prototypes, normalised by our step function */
    ssl_tensor_t *raw = tu_fixture_tensor(ctx, f, "raw.prototypes.weight");
    memcpy(h.weight->data, raw->data, sizeof(float) * 80);
    ssl_swav_prototypes_normalize(&h);
    expect(h.weight, ctx, f, "weight.prototypes.weight", 1e-7, 1e-6);
    ssl_tensor_t *z = tu_fixture_tensor(ctx, f, "input");
    z->requires_grad = 1;
    ssl_tensor_t *s = ssl_swav_prototypes_forward(ctx, &h, z, NULL);
    expect(s, ctx, f, "scores", 1e-6, 1e-5);
    backward_upstream(ctx, f, s, "scores");
    expect_grad(z, ctx, f, "grad.input", 1e-6, 1e-4);
    assert_int_equal(tu_fixture_param_grads(f, p, 1e-6, 1e-4), 1);
    ssl_ctx_free(ctx);
    ssl_params_free(p);
    ssl_st_close(f);
}

/* ---------------------------------------------------------------- MAE decoder */

static void mae_case(const char *path, int cls)
{
    ssl_st_t *f = tu_fixture_open(path);
    ssl_head_cfg_t hc;
    assert_int_equal(ssl_head_preset("mae_decoder", &hc), SSL_OK);
    ssl_mae_decoder_cfg_t cfg = hc.mae;
    cfg.in_dim = 16;
    cfg.grid_h = cfg.grid_w = 4;
    cfg.patch_size = 2;
    cfg.in_chans = 3;
    cfg.cls_token = cls;
    cfg.dim = 16;
    cfg.depth = 2;
    cfg.heads = 2;
    ssl_params_t *p = ssl_params_create();
    ssl_mae_decoder_t *d = malloc(sizeof *d);
    assert_int_equal(ssl_mae_decoder_init(d, p, "", &cfg, 1), SSL_OK);
    ssl_ctx_t *ctx = tu_ctx();
    /* our fixed sin-cos positions equal MAE's get_2d_sincos_pos_embed */
    expect(d->pos_embed, ctx, f, "weight.decoder_pos_embed", 1e-6, 1e-5);
    load_weights(f, p);
    int64_t B, K;
    int32_t *keep = load_idx(ctx, f, "keep", &B, &K);
    ssl_tensor_t *tok = tu_fixture_tensor(ctx, f, "tokens");
    tok->requires_grad = 1;
    ssl_tensor_t *c = NULL;
    if (cls) {
        c = tu_fixture_tensor(ctx, f, "cls");
        c->requires_grad = 1;
    }
    ssl_tensor_t *y = ssl_mae_decoder_forward(ctx, d, c, tok, keep, K);
    if (!y)
        fail_msg("%s", ssl_last_error());
    expect(y, ctx, f, "pred", 1e-5, 1e-4);
    backward_upstream(ctx, f, y, "pred");
    expect_grad(tok, ctx, f, "grad.tokens", 1e-5, 1e-3);
    if (cls)
        expect_grad(c, ctx, f, "grad.cls", 1e-5, 1e-3);
    assert_true(tu_fixture_param_grads(f, p, 2e-5, 1e-3) > 20);
    ssl_ctx_free(ctx);
    free(d);
    ssl_params_free(p);
    ssl_st_close(f);
}

static void test_mae_decoder_cls(void **state)
{
    (void)state;
    mae_case(FIXTURE("head_mae_cls.safetensors"), 1);
}

static void test_mae_decoder_no_cls(void **state)
{
    (void)state;
    mae_case(FIXTURE("head_mae_nocls.safetensors"), 0);
}

/* ---------------------------------------------------------------- I-JEPA predictor */

static void test_jepa_predictor(void **state)
{
    (void)state;
    ssl_st_t *f = tu_fixture_open(FIXTURE("head_jepa.safetensors"));
    ssl_head_cfg_t hc;
    assert_int_equal(ssl_head_preset("ijepa_predictor", &hc), SSL_OK);
    ssl_jepa_predictor_cfg_t cfg = hc.jepa;
    cfg.in_dim = 16;
    cfg.grid_h = cfg.grid_w = 4;
    cfg.dim = 16;
    cfg.depth = 2;
    cfg.heads = 2;
    ssl_params_t *p = ssl_params_create();
    ssl_jepa_predictor_t *m = malloc(sizeof *m);
    assert_int_equal(ssl_jepa_predictor_init(m, p, "", &cfg, 1), SSL_OK);
    ssl_ctx_t *ctx = tu_ctx();
    expect(m->pos_embed, ctx, f, "weight.predictor_pos_embed", 1e-6, 1e-5);
    load_weights(f, p);
    int64_t B, Kc, R, Kt;
    int32_t *cidx = load_idx(ctx, f, "ctx_idx", &B, &Kc);
    int32_t *tidx = load_idx(ctx, f, "tgt_idx", &R, &Kt);
    ssl_tensor_t *x = tu_fixture_tensor(ctx, f, "tokens");
    x->requires_grad = 1;
    ssl_tensor_t *y = ssl_jepa_predictor_forward(ctx, m, x, cidx, tidx, (int)(R / B), Kt);
    if (!y)
        fail_msg("%s", ssl_last_error());
    expect(y, ctx, f, "pred", 1e-5, 1e-4);
    backward_upstream(ctx, f, y, "pred");
    expect_grad(x, ctx, f, "grad.tokens", 1e-5, 1e-3);
    assert_true(tu_fixture_param_grads(f, p, 2e-5, 1e-3) > 20);
    ssl_ctx_free(ctx);
    free(m);
    ssl_params_free(p);
    ssl_st_close(f);
}

/* ---------------------------------------------------------------- CLIP text tower */

static void text_case(const char *path, int causal, int pool)
{
    ssl_st_t *f = tu_fixture_open(path);
    ssl_head_cfg_t hc;
    assert_int_equal(ssl_head_preset("clip_text", &hc), SSL_OK);
    ssl_text_cfg_t cfg = hc.text;
    cfg.vocab_size = 30;
    cfg.context_length = 8;
    cfg.width = 16;
    cfg.layers = 2;
    cfg.heads = 2;
    cfg.embed_dim = 12;
    cfg.causal = causal;
    cfg.pool = pool;
    ssl_params_t *p = ssl_params_create();
    ssl_text_tower_t *t = malloc(sizeof *t);
    assert_int_equal(ssl_text_tower_init(t, p, "", &cfg, 1), SSL_OK);
    load_weights(f, p);
    ssl_ctx_t *ctx = tu_ctx();
    int64_t B, L;
    int32_t *ids = load_idx(ctx, f, "ids", &B, &L);
    ssl_tensor_t *y = ssl_text_tower_forward(ctx, t, ids, B, L);
    if (!y)
        fail_msg("%s", ssl_last_error());
    expect(y, ctx, f, "embedding", 1e-5, 1e-4);
    backward_upstream(ctx, f, y, "embedding");
    assert_int_equal(tu_fixture_param_grads(f, p, 1e-5, 1e-3), 2 + 2 * 12 + 2 + 1);
    ssl_ctx_free(ctx);
    free(t);
    ssl_params_free(p);
    ssl_st_close(f);
}

static void test_text_causal_eos(void **state)
{
    (void)state;
    text_case(FIXTURE("head_text_causal.safetensors"), 1, SSL_TEXT_POOL_EOS);
}

static void test_text_bidirectional_mean(void **state)
{
    (void)state;
    text_case(FIXTURE("head_text_bidir.safetensors"), 0, SSL_TEXT_POOL_MEAN);
}

/* ---------------------------------------------------------------- SimSiam projector */

static void test_simsiam_projector(void **state)
{
    (void)state;
    ssl_st_t *f = tu_fixture_open(FIXTURE("head_simsiam_proj.safetensors"));
    ssl_head_cfg_t hc;
    assert_int_equal(ssl_head_preset("simsiam_projector", &hc), SSL_OK);
    hc.mlp.in = 8;
    hc.mlp.hidden = 16;
    hc.mlp.out = 12;
    ssl_params_t *p = ssl_params_create();
    ssl_mlp_t m;
    assert_int_equal(ssl_mlp_init(&m, p, "projector", &hc.mlp, 1), SSL_OK);
    load_weights(f, p); /* strict: no extra bias, no affine output BN */
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_fixture_tensor(ctx, f, "input");
    x->requires_grad = 1;
    ssl_tensor_t *z = ssl_mlp_forward(ctx, &m, x, 1);
    expect(z, ctx, f, "z", 1e-5, 1e-4);
    backward_upstream(ctx, f, z, "z");
    expect_grad(x, ctx, f, "grad.input", 1e-5, 1e-3);
    assert_int_equal(tu_fixture_param_grads(f, p, 1e-5, 1e-3), 7);
    compare_running_stats(ctx, f, p);
    ssl_ctx_free(ctx);
    ssl_params_free(p);
    ssl_st_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dino),
        cmocka_unit_test(test_dino_bn_learned_g),
        cmocka_unit_test(test_swav),
        cmocka_unit_test(test_mae_decoder_cls),
        cmocka_unit_test(test_mae_decoder_no_cls),
        cmocka_unit_test(test_jepa_predictor),
        cmocka_unit_test(test_text_causal_eos),
        cmocka_unit_test(test_text_bidirectional_mean),
        cmocka_unit_test(test_simsiam_projector),
    };
    return cmocka_run_group_tests_name("heads_parity", tests, NULL, NULL);
}
