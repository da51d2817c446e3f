/* Gradients of every head against central differences (small sizes, float32): inputs and the
 * parameters that carry the head's own math (weight-normalised prototypes, mask tokens,
 * embeddings, the in-projection under a causal mask...). */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "ssl/heads.h"

static const tu_gradcheck_opts_t k_opts = {1e-3, 1e-3, 1e-2, 256};

static ssl_tensor_t *param(ssl_params_t *p, const char *name)
{
    ssl_tensor_t *t = ssl_params_get(p, name);
    if (!t)
        fail_msg("no parameter %s", name);
    return t;
}

/* ---------------------------------------------------------------- projector presets */

typedef struct mlp_case {
    ssl_mlp_t m;
    int training;
} mlp_case_t;

static ssl_tensor_t *build_mlp(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    mlp_case_t *c = user;
    return ssl_mlp_forward(ctx, &c->m, in[0], c->training);
}

static void test_projectors(void **state)
{
    (void)state;
    static const char *const kinds[] = {"simclr_projector", "simsiam_projector",
                                        "simsiam_predictor", "vicreg_projector",
                                        "mocov3_predictor"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        ssl_head_cfg_t hc;
        assert_int_equal(ssl_head_preset(kinds[i], &hc), SSL_OK);
        hc.mlp.in = 5;
        hc.mlp.hidden = 7;
        hc.mlp.out = 4;
        ssl_params_t *p = ssl_params_create();
        mlp_case_t *c = calloc(1, sizeof *c);
        c->training = 1;
        assert_int_equal(ssl_mlp_init(&c->m, p, "projector", &hc.mlp, 9), SSL_OK);
        ssl_ctx_t *ctx = tu_ctx();
        ssl_tensor_t *in[2] = {tu_rand(ctx, 2, (int64_t[]){6, 5}, 1 + i, -1, 1, 1),
                               param(p, "projector.0.weight")};
        ssl_params_zero_grad(p);
        if (tu_gradcheck(ctx, build_mlp, c, in, 2, &k_opts))
            fail_msg("%s: gradient mismatch", kinds[i]);
        ssl_ctx_free(ctx);
        free(c);
        ssl_params_free(p);
    }
}

/* ---------------------------------------------------------------- DINO */

static ssl_tensor_t *build_dino(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    return ssl_dino_head_forward(ctx, user, in[0], 1, NULL);
}

static void test_dino(void **state)
{
    (void)state;
    for (int variant = 0; variant < 2; variant++) {
        /* variant 0: GELU MLP, fixed g; variant 1: with BN and a learned g */
        ssl_dino_head_cfg_t cfg = {6, 3, 10, 5, 7, variant, !variant, 0};
        ssl_params_t *p = ssl_params_create();
        ssl_dino_head_t *h = malloc(sizeof *h);
        assert_int_equal(ssl_dino_head_init(h, p, "head", &cfg, 4), SSL_OK);
        if (variant)
            for (int64_t i = 0; i < h->weight_g->numel; i++)
                h->weight_g->data[i] = 0.5f + 0.1f * (float)i;
        ssl_ctx_t *ctx = tu_ctx();
        ssl_tensor_t *in[4] = {tu_rand(ctx, 2, (int64_t[]){8, 6}, 3, -1, 1, 1), h->weight_v,
                               param(p, "head.mlp.0.weight"), h->weight_g};
        /* DINO's trunc_normal(0.02) MLP weights are tiny next to the finite-difference step
         * (BatchNorm then divides by their scale): test at unit scale */
        for (int i = 0; i < ssl_params_count(p); i++) {
            const ssl_param_info_t *pi = ssl_params_info(p, i);
            if (strstr(pi->name, ".mlp.") && pi->t->ndim == 2)
                for (int64_t j = 0; j < pi->t->numel; j++)
                    pi->t->data[j] *= 20.0f;
        }
        ssl_params_zero_grad(p);
        if (tu_gradcheck(ctx, build_dino, h, in, 4, &k_opts))
            fail_msg("dino head variant %d: gradient mismatch", variant);
        ssl_ctx_free(ctx);
        free(h);
        ssl_params_free(p);
    }
}

/* ---------------------------------------------------------------- SwAV */

static ssl_tensor_t *build_swav(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    return ssl_swav_prototypes_forward(ctx, user, in[0], NULL);
}

static void test_swav(void **state)
{
    (void)state;
    ssl_swav_cfg_t cfg = {5, 7, 0};
    ssl_params_t *p = ssl_params_create();
    ssl_swav_prototypes_t h;
    assert_int_equal(ssl_swav_prototypes_init(&h, p, "prototypes", &cfg, 1), SSL_OK);
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *in[2] = {tu_rand(ctx, 2, (int64_t[]){4, 5}, 5, -2, 2, 1), h.weight};
    ssl_params_zero_grad(p);
    assert_int_equal(tu_gradcheck(ctx, build_swav, &h, in, 2, &k_opts), 0);
    ssl_ctx_free(ctx);
    ssl_params_free(p);
}

/* ---------------------------------------------------------------- MAE decoder */

typedef struct mae_case {
    ssl_mae_decoder_t d;
    const int32_t *keep;
    int64_t k;
} mae_case_t;

static ssl_tensor_t *build_mae(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    mae_case_t *c = user;
    return ssl_mae_decoder_forward(ctx, &c->d, in[1], in[0], c->keep, c->k);
}

static void test_mae_decoder(void **state)
{
    (void)state;
    ssl_mae_decoder_cfg_t cfg = {8, 2, 3, 2, 1, 1, 8, 2, 2, 2.0};
    ssl_params_t *p = ssl_params_create();
    static const int32_t keep[6] = {4, 1, 2, 0, 5, 3};
    mae_case_t *c = malloc(sizeof *c);
    c->keep = keep;
    c->k = 3;
    assert_int_equal(ssl_mae_decoder_init(&c->d, p, "decoder", &cfg, 2), SSL_OK);
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *in[4] = {tu_rand(ctx, 3, (int64_t[]){2, 3, 8}, 6, -1, 1, 1),
                           tu_rand(ctx, 2, (int64_t[]){2, 8}, 7, -1, 1, 1), c->d.mask_token,
                           c->d.embed.weight};
    ssl_params_zero_grad(p);
    assert_int_equal(tu_gradcheck(ctx, build_mae, c, in, 4, &k_opts), 0);
    ssl_ctx_free(ctx);
    free(c);
    ssl_params_free(p);
}

/* ---------------------------------------------------------------- I-JEPA predictor */

typedef struct jepa_case {
    ssl_jepa_predictor_t m;
    const int32_t *cidx, *tidx;
} jepa_case_t;

static ssl_tensor_t *build_jepa(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    jepa_case_t *c = user;
    return ssl_jepa_predictor_forward(ctx, &c->m, in[0], c->cidx, c->tidx, 2, 2);
}

static void test_jepa_predictor(void **state)
{
    (void)state;
    ssl_jepa_predictor_cfg_t cfg = {8, 3, 3, 8, 2, 2, 2.0};
    ssl_params_t *p = ssl_params_create();
    static const int32_t cidx[6] = {0, 4, 8, 1, 2, 3};
    static const int32_t tidx[8] = {1, 2, 4, 5, 6, 7, 0, 8};
    jepa_case_t *c = malloc(sizeof *c);
    c->cidx = cidx;
    c->tidx = tidx;
    assert_int_equal(ssl_jepa_predictor_init(&c->m, p, "predictor", &cfg, 3), SSL_OK);
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *in[3] = {tu_rand(ctx, 3, (int64_t[]){2, 3, 8}, 8, -1, 1, 1), c->m.mask_token,
                           c->m.embed.weight};
    /* trunc_normal(0.02) weights make the blocks nearly linear: scale them up to test them */
    for (int i = 0; i < ssl_params_count(p); i++) {
        const ssl_param_info_t *pi = ssl_params_info(p, i);
        if (pi->kind == SSL_PARAM_TRAINABLE && pi->t->ndim >= 2)
            for (int64_t j = 0; j < pi->t->numel; j++)
                pi->t->data[j] *= 15.0f;
    }
    ssl_params_zero_grad(p);
    assert_int_equal(tu_gradcheck(ctx, build_jepa, c, in, 3, &k_opts), 0);
    ssl_ctx_free(ctx);
    free(c);
    ssl_params_free(p);
}

/* ---------------------------------------------------------------- CLIP text tower */

typedef struct text_case {
    ssl_text_tower_t t;
    const int32_t *ids;
} text_case_t;

static ssl_tensor_t *build_text(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    (void)in;
    text_case_t *c = user;
    return ssl_text_tower_forward(ctx, &c->t, c->ids, 2, 6);
}

static void test_text_tower(void **state)
{
    (void)state;
    static const int32_t ids[12] = {1, 5, 6, 2, 0, 0, /**/ 1, 7, 8, 9, 4, 2};
    for (int variant = 0; variant < 2; variant++) {
        ssl_text_cfg_t cfg = {10,
                              6,
                              8,
                              2,
                              2,
                              2.0,
                              4,
                              !variant,
                              variant ? SSL_TEXT_POOL_MEAN : SSL_TEXT_POOL_EOS,
                              SSL_TOK_WORDS,
                              1,
                              0};
        ssl_params_t *p = ssl_params_create();
        text_case_t *c = malloc(sizeof *c);
        c->ids = ids;
        assert_int_equal(ssl_text_tower_init(&c->t, p, "text", &cfg, 5), SSL_OK);
        ssl_ctx_t *ctx = tu_ctx();
        ssl_tensor_t *in[5] = {c->t.token_embedding, c->t.positional_embedding,
                               param(p, "text.transformer.resblocks.0.attn.in_proj_weight"),
                               param(p, "text.transformer.resblocks.1.mlp.c_fc.weight"),
                               c->t.text_projection};
        /* open_clip's embeddings (std 0.02 / 0.01) put LayerNorm in its curved region at the
         * finite-difference step: test at unit scale */
        for (int i = 0; i < 2; i++)
            for (int64_t j = 0; j < in[i]->numel; j++)
                in[i]->data[j] *= 30.0f;
        ssl_params_zero_grad(p);
        if (tu_gradcheck(ctx, build_text, c, in, 5, &k_opts))
            fail_msg("text tower variant %d: gradient mismatch", variant);
        ssl_ctx_free(ctx);
        free(c);
        ssl_params_free(p);
    }
}

/* ---------------------------------------------------------------- CoCa */

typedef struct coca_case {
    ssl_attn_pooler_t pool;
    ssl_coca_decoder_t dec;
} coca_case_t;

/* image tokens (2, 5, 6) through the pooler (3 queries of width 8); its last 2 tokens and
 * text tokens (2, 4, 8) through the decoder */
static ssl_tensor_t *build_coca(ssl_ctx_t *ctx, ssl_tensor_t **in, void *user)
{
    coca_case_t *c = user;
    ssl_tensor_t *t = ssl_attn_pooler_forward(ctx, &c->pool, in[0]);
    ssl_tensor_t *img = ssl_slice(ctx, t, 1, 1, 2);
    ssl_tensor_t *lg = ssl_coca_decoder_forward(ctx, &c->dec, img, in[1]);
    return ssl_concat(ctx, (ssl_tensor_t *[]){ssl_reshape(ctx, t, 2, (int64_t[]){2, 24}),
                                              ssl_reshape(ctx, lg, 2, (int64_t[]){2, 44})},
                      2, 1);
}

static void test_coca_heads(void **state)
{
    (void)state;
    ssl_params_t *p = ssl_params_create();
    coca_case_t *c = malloc(sizeof *c);
    ssl_coca_decoder_cfg_t cfg = {8, 11, 2, 2, 2.0, 3, 2};
    assert_int_equal(ssl_attn_pooler_init(&c->pool, p, "pool", 8, 6, 2, 3, 3), SSL_OK);
    assert_int_equal(ssl_coca_decoder_init(&c->dec, p, "dec", &cfg, 4), SSL_OK);
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *in[6] = {tu_rand(ctx, 3, (int64_t[]){2, 5, 6}, 1, -1, 1, 1),
                           tu_rand(ctx, 3, (int64_t[]){2, 4, 8}, 2, -1, 1, 1),
                           c->pool.query, param(p, "pool.attn.k.weight"),
                           param(p, "dec.cross_attn.0.attn.v.weight"), c->dec.text_projection};
    ssl_params_zero_grad(p);
    /* step 3e-3: at 1e-3 float32 rounding of the 2-layer decoder reaches the tolerance */
    tu_gradcheck_opts_t o = {3e-3, 1e-3, 1e-2, 256};
    assert_int_equal(tu_gradcheck(ctx, build_coca, c, in, 6, &o), 0);
    /* causal: the logits at text position 1 do not depend on the text at position 2 */
    ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *img = ssl_slice(ctx, ssl_attn_pooler_forward(ctx, &c->pool, in[0]), 1, 1, 2);
    ssl_tensor_t *a = ssl_coca_decoder_forward(ctx, &c->dec, img, in[1]);
    in[1]->data[2 * 8 + 3] += 1.0f;
    ssl_tensor_t *b = ssl_coca_decoder_forward(ctx, &c->dec, img, in[1]);
    tu_assert_close(a->data, b->data, 2 * 11, 0, 0);
    assert_true(tu_count_mismatch(a->data + 2 * 11, b->data + 2 * 11, 11, 1e-4, 1e-4, "pos 2") > 0);
    assert_null(ssl_coca_decoder_forward(ctx, &c->dec, img, in[0]));
    tu_assert_error(NULL, SSL_ERR_SHAPE, "caption decoder", "(2, 5, 6)", NULL);
    ssl_ctx_free(ctx);
    free(c);
    ssl_params_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_projectors),     cmocka_unit_test(test_dino),
        cmocka_unit_test(test_swav),           cmocka_unit_test(test_mae_decoder),
        cmocka_unit_test(test_jepa_predictor), cmocka_unit_test(test_text_tower),
        cmocka_unit_test(test_coca_heads),
    };
    return cmocka_run_group_tests_name("heads_grad", tests, NULL, NULL);
}
