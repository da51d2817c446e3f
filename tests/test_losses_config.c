/* Loss configs: the strict reader, defaults, errors, weighted lists, resolved configs. (The
 * losses' state lives in the methods that train them: tests/method_parity.c.) */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "losses/loss_config.h"
#include "ssl/io.h"
#include "ssl/losses.h"

static int read_cfg(const char *json, ssl_loss_cfg_t *out)
{
    return ssl_loss_cfg_from_json(json, strlen(json), "test.json", out);
}

static void expect_cfg_error(const char *json, const char *a, const char *b)
{
    ssl_loss_cfg_t c;
    int st = read_cfg(json, &c);
    if (st != SSL_ERR_CONFIG)
        fail_msg("%s: expected SSL_ERR_CONFIG, got %s (%s)", json, ssl_err_name(st),
                 ssl_last_error());
    if ((a && !strstr(ssl_last_error(), a)) || (b && !strstr(ssl_last_error(), b)))
        fail_msg("%s: message \"%s\" lacks \"%s\" / \"%s\"", json, ssl_last_error(), a, b ? b : "");
}

static void test_defaults(void **state)
{
    (void)state;
    ssl_loss_cfg_t c;
    assert_int_equal(read_cfg("{\"type\": \"infonce\"}", &c), SSL_OK);
    assert_int_equal(c.type, SSL_LOSS_INFONCE);
    assert_float_equal(c.weight, 1.0f, 0);
    assert_int_equal(c.infonce.form, SSL_INFONCE_NTXENT);
    assert_float_equal(c.infonce.temperature, 0.2f, 0);
    assert_int_equal(read_cfg("{\"type\": \"infonce\", \"form\": \"moco_v2\", "
                              "\"temperature\": 0.1, \"queue_size\": 4096, \"weight\": 2}",
                              &c),
                     SSL_OK);
    assert_int_equal(c.infonce.form, SSL_INFONCE_MOCO_V2);
    assert_int_equal(c.infonce.queue_size, 4096);
    assert_float_equal(c.infonce.temperature, 0.1f, 0);
    assert_float_equal(c.weight, 2.0f, 0);
    assert_int_equal(read_cfg("{\"type\": \"directpred\"}", &c), SSL_OK);
    assert_int_equal(c.type, SSL_LOSS_DIRECTPRED);
    assert_float_equal(c.directpred.rho, 0.3f, 0);
    assert_float_equal(c.directpred.eps, 0.01f, 0);
    expect_cfg_error("{\"type\": \"directpred\", \"rho\": 1}", "'rho'", "in [0, 1)");
    expect_cfg_error("{\"type\": \"directpred\", \"temperature\": 1}", "temperature", NULL);
    assert_int_equal(read_cfg("{\"type\": \"moco_v1\"}", &c), SSL_OK);
    assert_int_equal(c.type, SSL_LOSS_MOCO_V1);
    assert_float_equal(c.infonce.temperature, 0.07f, 0);
    assert_int_equal(c.infonce.queue_size, 65536);
    assert_int_equal(read_cfg("{\"type\": \"moco_v1\", \"queue_size\": 16384}", &c), SSL_OK);
    assert_int_equal(c.infonce.queue_size, 16384);
    expect_cfg_error("{\"type\": \"moco_v1\", \"queue_size\": 0}", "'queue_size'", NULL);
    expect_cfg_error("{\"type\": \"moco_v1\", \"form\": \"moco_v2\"}", "form", NULL);
    assert_int_equal(read_cfg("{\"type\": \"deepclusterv2\"}", &c), SSL_OK);
    assert_int_equal(c.type, SSL_LOSS_DEEPCLUSTERV2);
    assert_float_equal(c.deepclusterv2.temperature, 0.1f, 0);
    assert_int_equal(c.deepclusterv2.n_heads, 3);
    assert_int_equal(c.deepclusterv2.n_prototypes[2], 3000);
    assert_int_equal(c.deepclusterv2.kmeans_iters, 10);
    assert_int_equal(c.deepclusterv2.n_assign, 2);
    assert_int_equal(c.deepclusterv2.crops_for_assign[1], 1);
    assert_int_equal(read_cfg("{\"type\": \"deepclusterv2\", \"n_prototypes\": [50, 40], "
                              "\"kmeans_iters\": 3, \"crops_for_assign\": [1]}",
                              &c),
                     SSL_OK);
    assert_int_equal(c.deepclusterv2.n_heads, 2);
    assert_int_equal(c.deepclusterv2.n_prototypes[1], 40);
    assert_int_equal(c.deepclusterv2.kmeans_iters, 3);
    assert_int_equal(c.deepclusterv2.n_assign, 1);
    assert_int_equal(c.deepclusterv2.crops_for_assign[0], 1);
    expect_cfg_error("{\"type\": \"deepclusterv2\", \"n_prototypes\": []}", "'n_prototypes'", NULL);
    /* ibot: dino's keys and defaults for its patch term (main_ibot.py's patch temperatures
     * 0.04 -> 0.07, center momentum 0.9), plus shared_head (false: a patch layer of its own) */
    assert_int_equal(read_cfg("{\"type\": \"ibot\"}", &c), SSL_OK);
    assert_int_equal(c.type, SSL_LOSS_IBOT);
    assert_float_equal(c.dino.student_temp, 0.1f, 0);
    assert_float_equal(c.dino.teacher_temp, 0.07f, 0);
    assert_float_equal(c.dino.warmup_teacher_temp, 0.04f, 0);
    assert_float_equal(c.dino.warmup_teacher_temp_epochs, 30.0, 0);
    assert_float_equal(c.dino.center_momentum, 0.9f, 0);
    assert_int_equal(c.ibot.shared_head, 0);
    assert_int_equal(read_cfg("{\"type\": \"ibot\", \"shared_head\": true, \"weight\": 0.5}", &c),
                     SSL_OK);
    assert_int_equal(c.ibot.shared_head, 1);
    assert_float_equal(c.weight, 0.5f, 0);
    expect_cfg_error("{\"type\": \"ibot\", \"teacher_temp\": 0}", "'teacher_temp'", NULL);
    expect_cfg_error("{\"type\": \"dino\", \"shared_head\": true}", "'shared_head'",
                     "only used with");
    /* centering: the center (default) or DINOv2's Sinkhorn-Knopp, which has no momentum */
    assert_int_equal(c.centering, SSL_CENTERING_CENTER);
    assert_int_equal(read_cfg("{\"type\": \"dino\", \"centering\": \"sinkhorn_knopp\"}", &c),
                     SSL_OK);
    assert_int_equal(c.centering, SSL_CENTERING_SINKHORN_KNOPP);
    expect_cfg_error("{\"type\": \"ibot\", \"centering\": \"sinkhorn_knopp\", "
                     "\"center_momentum\": 0.9}",
                     "'center_momentum'", "only used with");
    expect_cfg_error("{\"type\": \"dino\", \"centering\": \"sinkhorn\"}", "'centering'", NULL);
    /* koleo: DINOv2's weight 0.1 by default, no other key */
    assert_int_equal(read_cfg("{\"type\": \"koleo\"}", &c), SSL_OK);
    assert_int_equal(c.type, SSL_LOSS_KOLEO);
    assert_float_equal(c.weight, 0.1f, 0);
    assert_int_equal(read_cfg("{\"type\": \"koleo\", \"weight\": 0.5}", &c), SSL_OK);
    assert_float_equal(c.weight, 0.5f, 0);
    expect_cfg_error("{\"type\": \"koleo\", \"eps\": 1}", "'eps'", NULL);
    expect_cfg_error("{\"type\": \"deepclusterv2\", \"n_prototypes\": [1,1,1,1,1,1,1,1,1]}",
                     "'n_prototypes'", NULL);
    expect_cfg_error("{\"type\": \"deepclusterv2\", \"crops_for_assign\": [0, 0]}",
                     "'crops_for_assign'", "listed twice");
    expect_cfg_error("{\"type\": \"deepclusterv2\", \"epsilon\": 0.05}", "epsilon", NULL);
    assert_int_equal(read_cfg("{\"type\": \"dino\"}", &c), SSL_OK);
    assert_float_equal(c.dino.student_temp, 0.1f, 0);
    assert_float_equal(c.dino.teacher_temp, 0.07f, 0);
    assert_float_equal(c.dino.warmup_teacher_temp, 0.04f, 0);
    assert_float_equal(c.dino.warmup_teacher_temp_epochs, 30.0, 0);
    assert_float_equal(c.dino.center_momentum, 0.9f, 0);
    assert_int_equal(read_cfg("{\"type\": \"swav\", \"crops_for_assign\": [0, 1, 2]}", &c), SSL_OK);
    assert_float_equal(c.swav.temperature, 0.1f, 0);
    assert_float_equal(c.swav.epsilon, 0.05f, 0);
    assert_int_equal(c.swav.sinkhorn_iterations, 3);
    assert_int_equal(c.swav.n_assign, 3);
    assert_int_equal(c.swav.queue_length, 0);
    assert_int_equal(read_cfg("{\"type\": \"barlow\"}", &c), SSL_OK);
    assert_float_equal(c.barlow.lambda, 0.0051f, 0);
    assert_float_equal(c.barlow.scale, 0.024f, 0);
    assert_int_equal(read_cfg("{\"type\": \"vicreg\"}", &c), SSL_OK);
    assert_float_equal(c.vicreg.sim_coeff, 25.0f, 0);
    assert_float_equal(c.vicreg.std_coeff, 25.0f, 0);
    assert_float_equal(c.vicreg.cov_coeff, 1.0f, 0);
    assert_float_equal(c.vicreg.gamma, 1.0f, 0);
    assert_float_equal(c.vicreg.eps, 1e-4f, 0);
    assert_int_equal(read_cfg("{\"type\": \"mae\"}", &c), SSL_OK);
    assert_int_equal(c.mae.norm_pix_loss, 1);
    assert_int_equal(read_cfg("{\"type\": \"ijepa\", \"criterion\": \"mse\"}", &c), SSL_OK);
    assert_int_equal(c.ijepa.kind, SSL_REGRESS_MSE);
    assert_int_equal(read_cfg("{\"type\": \"clip\"}", &c), SSL_OK);
    assert_float_equal(c.clip.init_logit_scale, logf(1.0f / 0.07f), 1e-6);
    assert_float_equal(c.clip.max_logit_scale, logf(100.0f), 1e-6);
    assert_int_equal(read_cfg("{\"type\": \"siglip\"}", &c), SSL_OK);
    assert_float_equal(c.clip.init_logit_scale, logf(10.0f), 1e-6);
    assert_float_equal(c.clip.init_logit_bias, -10.0f, 0);
    assert_int_equal(read_cfg("{\"type\": \"data2vec\"}", &c), SSL_OK); /* data2vec_vision's */
    assert_int_equal(c.type, SSL_LOSS_DATA2VEC);
    assert_int_equal(c.data2vec.top_k, 6);
    assert_int_equal(c.data2vec.instance_norm, 0);
    assert_int_equal(c.data2vec.layer_norm, 1);
    assert_int_equal(c.data2vec.final_norm, 1);
    assert_int_equal(c.data2vec.kind, SSL_REGRESS_SMOOTH_L1);
    assert_float_equal(c.data2vec.beta, 2.0f, 0);
    assert_int_equal(read_cfg("{\"type\": \"data2vec\", \"top_k\": 3, \"instance_norm\": "
                              "true, \"layer_norm\": false, \"final_norm\": false, "
                              "\"criterion\": \"mse\"}",
                              &c),
                     SSL_OK);
    assert_int_equal(c.data2vec.top_k, 3);
    assert_int_equal(c.data2vec.instance_norm, 1);
    assert_int_equal(c.data2vec.layer_norm, 0);
    assert_int_equal(c.data2vec.final_norm, 0);
    assert_int_equal(c.data2vec.kind, SSL_REGRESS_MSE);
    assert_int_equal(read_cfg("{\"type\": \"maskfeat\"}", &c), SSL_OK);
    assert_int_equal(c.maskfeat.nbins, 9);
    assert_int_equal(c.maskfeat.cell, 2);
    assert_int_equal(read_cfg("{\"type\": \"maskfeat\", \"nbins\": 12, \"cell\": 4}", &c), SSL_OK);
    assert_int_equal(c.maskfeat.nbins, 12);
    assert_int_equal(c.maskfeat.cell, 4);
    assert_int_equal(read_cfg("{\"type\": \"vae\"}", &c), SSL_OK);
    assert_float_equal(c.vae.beta, 1.0f, 0.0f);
    assert_int_equal(read_cfg("{\"type\": \"vae\", \"beta\": 4}", &c), SSL_OK);
    assert_float_equal(c.vae.beta, 4.0f, 0.0f);
    assert_int_equal(read_cfg("{\"type\": \"vqvae\"}", &c), SSL_OK);
    assert_float_equal(c.vqvae.beta, 0.25f, 0.0f);
    assert_int_equal(read_cfg("{\"type\": \"vqvae\", \"beta\": 1}", &c), SSL_OK);
    assert_float_equal(c.vqvae.beta, 1.0f, 0.0f);
    assert_int_equal(read_cfg("{\"type\": \"beit\"}", &c), SSL_OK);
    assert_int_equal(read_cfg("{\"type\": \"pixelcnn\"}", &c), SSL_OK);
    assert_int_equal(c.type, SSL_LOSS_PIXELCNN);
    for (int t = 0; t < SSL_LOSS_TYPE_COUNT; t++) { /* every type reads with defaults only */
        char js[64];
        snprintf(js, sizeof js, "{\"type\": \"%s\"}", ssl_loss_type_name(t));
        assert_int_equal(read_cfg(js, &c), SSL_OK);
        assert_int_equal(c.type, t);
        assert_int_equal(ssl_loss_type_from_name(ssl_loss_type_name(t)), t);
    }
    assert_null(ssl_loss_type_name(SSL_LOSS_TYPE_COUNT));
}

static void test_errors(void **state)
{
    (void)state;
    expect_cfg_error("{\"type\": \"infonce\", \"temprature\": 0.1}", "temprature",
                     "did you mean 'temperature'");
    expect_cfg_error("{\"type\": \"dinno\"}", "type", "dino");
    expect_cfg_error("{\"temperature\": 0.1}", "missing", "type");
    expect_cfg_error("{\"type\": \"infonce\", \"temperature\": 0}", "temperature", NULL);
    expect_cfg_error("{\"type\": \"infonce\", \"queue_size\": 128}", "queue_size", "moco_v2");
    expect_cfg_error("{\"type\": \"byol\", \"temperature\": 0.1}", "temperature", NULL);
    expect_cfg_error("{\"type\": \"dino\", \"center_momentum\": 1.5}", "center_momentum", NULL);
    expect_cfg_error("{\"type\": \"swav\", \"crops_for_assign\": [0, 0]}", "crops_for_assign",
                     "twice");
    expect_cfg_error("{\"type\": \"ijepa\", \"criterion\": \"mse\", \"beta\": 1}", "beta",
                     "smooth_l1");
    expect_cfg_error("{\"type\": \"data2vec\", \"criterion\": \"mse\", \"beta\": 1}", "beta",
                     "smooth_l1");
    expect_cfg_error("{\"type\": \"data2vec\", \"top_k\": 0}", "top_k", NULL);
    expect_cfg_error("{\"type\": \"maskfeat\", \"nbins\": 0}", "nbins", NULL);
    expect_cfg_error("{\"type\": \"maskfeat\", \"beta\": 1}", "beta", NULL);
    expect_cfg_error("{\"type\": \"vae\", \"beta\": -1}", "beta", NULL);
    expect_cfg_error("{\"type\": \"vae\", \"latent_dim\": 8}", "latent_dim", NULL);
    expect_cfg_error("{\"type\": \"vqvae\", \"beta\": -1}", "beta", NULL);
    expect_cfg_error("{\"type\": \"beit\", \"beta\": 1}", "beta", NULL);
    /* the network's keys are model.network's, not the loss's */
    expect_cfg_error("{\"type\": \"pixelcnn\", \"channels\": 8}", "channels", NULL);
    expect_cfg_error("{\"type\": \"data2vec\", \"instance_nrom\": true}", "instance_nrom",
                     "did you mean 'instance_norm'");
    expect_cfg_error("{\"type\": \"clip\", \"init_logit_bias\": -10}", "init_logit_bias", NULL);
    expect_cfg_error("{\"type\": \"clip\", \"init_logit_scale\": 6}", "init_logit_scale",
                     "max_logit_scale");
    expect_cfg_error("{\"type\": \"mae\", \"norm_pix_loss\": 1}", "norm_pix_loss", NULL);
    expect_cfg_error("{\"type\": \"vicreg\", \"weight\": -1}", "weight", NULL);
}

static void test_list_and_fill(void **state)
{
    (void)state;
    const char *js = "{\"loss\": [{\"type\": \"byol\"}, {\"type\": \"vicreg\", \"weight\": "
                     "0.5, \"gamma\": 2}]}";
    cJSON *doc = ssl_json_parse(js, strlen(js), "run.json");
    assert_non_null(doc);
    int err = 0, n = 0;
    ssl_cfg_t root = ssl_cfg_root(doc, "run.json", &err, SSL_CFG_FILL);
    ssl_loss_cfg_t cfgs[4];
    assert_int_equal(ssl__loss_cfgs_read(&root, "loss", cfgs, 4, &n), SSL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(cfgs[0].type, SSL_LOSS_BYOL);
    assert_int_equal(cfgs[1].type, SSL_LOSS_VICREG);
    assert_float_equal(cfgs[1].weight, 0.5f, 0);
    assert_float_equal(cfgs[1].vicreg.gamma, 2.0f, 0);
    /* the resolved config holds every default that was used */
    char *txt = ssl_json_print(doc);
    assert_non_null(strstr(txt, "\"std_coeff\""));
    assert_non_null(strstr(txt, "\"weight\""));
    free(txt);
    cJSON_Delete(doc);
    /* one object; and errors in a list name the element's path */
    const char *one = "{\"loss\": {\"type\": \"simmim\"}}";
    doc = ssl_json_parse(one, strlen(one), "run.json");
    err = 0;
    root = ssl_cfg_root(doc, "run.json", &err, 0);
    assert_int_equal(ssl__loss_cfgs_read(&root, "loss", cfgs, 4, &n), SSL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(cfgs[0].type, SSL_LOSS_SIMMIM);
    cJSON_Delete(doc);
    const char *bad = "{\"loss\": [{\"type\": \"byol\"}, {\"type\": \"barlow\", \"lamda\": 1}]}";
    doc = ssl_json_parse(bad, strlen(bad), "run.json");
    err = 0;
    root = ssl_cfg_root(doc, "run.json", &err, 0);
    assert_int_equal(ssl__loss_cfgs_read(&root, "loss", cfgs, 4, &n), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "loss[1].lamda"));
    assert_non_null(strstr(ssl_last_error(), "lambda"));
    cJSON_Delete(doc);
    const char *empty = "{\"loss\": []}";
    doc = ssl_json_parse(empty, strlen(empty), "run.json");
    err = 0;
    root = ssl_cfg_root(doc, "run.json", &err, 0);
    assert_int_equal(ssl__loss_cfgs_read(&root, "loss", cfgs, 4, &n), SSL_ERR_CONFIG);
    cJSON_Delete(doc);
}

/* ---------------------------------------------------------------- loss objects */

#define R2(r, c, seed, g) tu_rand(ctx, 2, (int64_t[]){(r), (c)}, (seed), -1, 1, (g))

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_list_and_fill),
    };
    return cmocka_run_group_tests_name("losses_config", tests, NULL, NULL);
}
