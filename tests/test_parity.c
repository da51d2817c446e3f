/* Parity with PyTorch: a narrow CIFAR-stem torchvision ResNet-18 and a 2-block timm-style ViT,
 * loaded by parameter name from golden fixtures (tests/fixtures/gen_encoder_fixtures.py), give
 * the same outputs, input gradients, weight gradients and BatchNorm running statistics, in train
 * and in eval mode. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/io.h"
#include "ssl/models.h"

#define FIXTURE(name) TU_FIXTURE(name)

static void resnet_case(const char *path, int training)
{
    ssl_st_t *f = ssl_st_open(path);
    if (!f)
        fail_msg("%s", ssl_last_error());
    ssl_encoder_cfg_t cfg;
    ssl_encoder_preset("resnet18", &cfg);
    cfg.resnet = (ssl_resnet_cfg_t){18, 1, 4, 3, 0, 1};
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&cfg, p, "", 0);
    assert_non_null(e);
    ssl_st_report_t rep;
    int st = ssl_st_load_params(f, p, "weight.", SSL_ST_STRICT, &rep);
    if (st != SSL_OK)
        fail_msg("loading torchvision weights by name: %s", ssl_last_error());
    ssl_st_report_free(&rep);
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_fixture_tensor(ctx, f, "input");
    x->requires_grad = 1;
    ssl_encoder_out_t out;
    assert_int_equal(ssl_encoder_forward(ctx, e, x, NULL, 0, training, &out), SSL_OK);
    ssl_tensor_t *ref = tu_fixture_tensor(ctx, f, "pooled");
    assert_true(ssl_same_shape(out.pooled, ref));
    tu_assert_close(out.pooled->data, ref->data, ref->numel, 1e-5, 1e-4);
    ssl_tensor_t *up = tu_fixture_tensor(ctx, f, "upstream");
    assert_int_equal(ssl_backward_with(ctx, out.pooled, up->data), SSL_OK);
    ssl_tensor_t *gx = tu_fixture_tensor(ctx, f, "grad.input");
    tu_assert_close(x->grad, gx->data, gx->numel, 1e-5, 1e-3);
    assert_true(tu_fixture_param_grads(f, p, 5e-5, 1e-3) > 10);
    if (training) { /* running statistics after the step */
        for (int i = 0; i < ssl_params_count(p); i++) {
            const ssl_param_info_t *in = ssl_params_info(p, i);
            if (!strstr(in->name, "running_"))
                continue;
            char name[256];
            snprintf(name, sizeof name, "after.%s", in->name);
            ssl_tensor_t *r = tu_fixture_tensor(ctx, f, name);
            tu_assert_close(in->t->data, r->data, r->numel, 1e-6, 1e-5);
        }
    }
    ssl_ctx_free(ctx);
    ssl_encoder_free(e);
    ssl_params_free(p);
    ssl_st_close(f);
}

static void test_resnet18_train(void **state)
{
    (void)state;
    resnet_case(FIXTURE("resnet18_w4_train.safetensors"), 1);
}

static void test_resnet18_eval(void **state)
{
    (void)state;
    resnet_case(FIXTURE("resnet18_w4_eval.safetensors"), 0);
}

static void vit_case(const char *path, int subset)
{
    ssl_st_t *f = ssl_st_open(path);
    if (!f)
        fail_msg("%s", ssl_last_error());
    ssl_encoder_cfg_t cfg;
    ssl_encoder_preset("vit_tiny", &cfg);
    cfg.vit.image_size = 16;
    cfg.vit.patch_size = 4;
    cfg.vit.dim = 32;
    cfg.vit.depth = 2;
    cfg.vit.heads = 2;
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&cfg, p, "", 0);
    assert_non_null(e);
    if (ssl_st_load_params(f, p, "weight.", SSL_ST_STRICT, NULL) != SSL_OK)
        fail_msg("loading timm-named weights: %s", ssl_last_error());
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_fixture_tensor(ctx, f, "input");
    x->requires_grad = 1;
    int32_t keep[64];
    int64_t k = 0;
    if (subset) {
        ssl_tensor_t *kt = tu_fixture_tensor(ctx, f, "keep"); /* (B, K) as floats */
        k = kt->shape[1];
        for (int64_t i = 0; i < kt->numel; i++)
            keep[i] = (int32_t)kt->data[i];
    }
    ssl_encoder_out_t out;
    assert_int_equal(ssl_encoder_forward(ctx, e, x, subset ? keep : NULL, k, 1, &out), SSL_OK);
    ssl_tensor_t *rp = tu_fixture_tensor(ctx, f, "pooled"), *rt = tu_fixture_tensor(ctx, f, "tokens");
    assert_true(ssl_same_shape(out.tokens, rt));
    tu_assert_close(out.pooled->data, rp->data, rp->numel, 1e-5, 1e-4);
    tu_assert_close(out.tokens->data, rt->data, rt->numel, 1e-5, 1e-4);
    assert_true(out.cls && out.cls == out.pooled); /* pool "cls": the cls token's output */
    ssl_tensor_t *u1 = tu_fixture_tensor(ctx, f, "upstream.pooled"), *u2 = tu_fixture_tensor(ctx, f, "upstream.tokens");
    ssl_tensor_t *loss = ssl_add(ctx, ssl_sum_all(ctx, ssl_mul(ctx, out.pooled, u1)),
                                 ssl_sum_all(ctx, ssl_mul(ctx, out.tokens, u2)));
    assert_int_equal(ssl_backward(ctx, loss), SSL_OK);
    ssl_tensor_t *gx = tu_fixture_tensor(ctx, f, "grad.input");
    tu_assert_close(x->grad, gx->data, gx->numel, 1e-5, 1e-3);
    assert_true(tu_fixture_param_grads(f, p, 5e-5, 1e-3) > 10);
    ssl_ctx_free(ctx);
    ssl_encoder_free(e);
    ssl_params_free(p);
    ssl_st_close(f);
}

static void test_vit_all_tokens(void **state)
{
    (void)state;
    vit_case(FIXTURE("vit_d32_all.safetensors"), 0);
}

static void test_vit_token_subset(void **state)
{
    (void)state;
    vit_case(FIXTURE("vit_d32_subset.safetensors"), 1);
}

static void test_load_reports_mismatch(void **state)
{
    (void)state;
    /* A wider ResNet than the file: every conv is mis-shaped, and strict loading names them. */
    ssl_encoder_cfg_t cfg;
    ssl_encoder_preset("resnet18", &cfg);
    cfg.resnet = (ssl_resnet_cfg_t){18, 1, 8, 3, 0, 1};
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&cfg, p, "", 0);
    ssl_st_report_t rep;
    int st = ssl_st_load_params_file(FIXTURE("resnet18_w4_eval.safetensors"), p, "weight.",
                                     SSL_ST_STRICT, &rep);
    assert_int_equal(st, SSL_ERR_FORMAT);
    assert_non_null(strstr(ssl_last_error(), "conv1.weight"));
    assert_true(rep.n_mismatched > 0);
    ssl_st_report_free(&rep);
    ssl_encoder_free(e);
    ssl_params_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet18_train),    cmocka_unit_test(test_resnet18_eval),
        cmocka_unit_test(test_vit_all_tokens),    cmocka_unit_test(test_vit_token_subset),
        cmocka_unit_test(test_load_reports_mismatch),
    };
    return cmocka_run_group_tests_name("parity", tests, NULL, NULL);
}
