/* Loss configs (strict reader, defaults, errors, weighted lists) and the configured loss
 * objects: state in the parameter store (MoCo queue, DINO center, SwAV queues, CLIP/SigLIP
 * scalars), evaluation from ssl_loss_inputs_t, after-step updates, weighted sums, checkpoint
 * round trip of the state. */
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

static void test_moco_object(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_params_t *p = ssl_params_create();
    ssl_loss_cfg_t c;
    assert_int_equal(
        read_cfg("{\"type\": \"infonce\", \"form\": \"moco_v2\", \"queue_size\": 8}", &c), SSL_OK);
    ssl_loss_t l;
    assert_int_equal(ssl_loss_init(&l, &c, p, "loss", 4, 1), SSL_OK);
    assert_non_null(ssl_params_get(p, "loss.queue_keys"));
    ssl_loss_inputs_t in = {0};
    in.z1 = R2(3, 4, 1, 1);
    in.t2 = R2(3, 4, 2, 0);
    ssl_tensor_t *v = ssl_loss_forward(ctx, &l, &in, NULL);
    ssl_tensor_t *ref = ssl_loss_moco(ctx, in.z1, in.t2, l.queue.keys, 0.2f);
    assert_non_null(v);
    assert_float_equal(v->data[0], ref->data[0], 0);
    assert_int_equal(ssl_loss_after_step(&l, &in), SSL_OK);
    assert_float_equal(l.queue.ptr->data[0], 3.0f, 0);
    /* symmetrised: mean of both directions, both keys enqueued */
    in.z2 = R2(3, 4, 3, 1);
    in.t1 = R2(3, 4, 4, 0);
    v = ssl_loss_forward(ctx, &l, &in, NULL);
    float a = ssl_loss_moco(ctx, in.z1, in.t2, l.queue.keys, 0.2f)->data[0];
    float b = ssl_loss_moco(ctx, in.z2, in.t1, l.queue.keys, 0.2f)->data[0];
    assert_float_equal(v->data[0], 0.5f * (a + b), 1e-6);
    assert_int_equal(ssl_loss_after_step(&l, &in), SSL_OK);
    assert_float_equal(l.queue.ptr->data[0], 1.0f, 0); /* (3 + 6) mod 8 */
    /* missing input */
    ssl_loss_inputs_t none = {0};
    ssl_clear_error();
    tu_assert_error(ssl_loss_forward(ctx, &l, &none, NULL), SSL_ERR_INVALID, "moco_v2", "'z1'",
                    NULL);
    /* the queue is part of the checkpoint: save, load into a fresh store, same state */
    char path[] = "/tmp/ssl_loss_ckpt_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(ssl_st_save_params(path, p, "loss_state.", NULL, 0), SSL_OK);
    ssl_params_t *p2 = ssl_params_create();
    ssl_loss_t l2;
    assert_int_equal(ssl_loss_init(&l2, &c, p2, "loss", 4, 99), SSL_OK);
    assert_int_equal(ssl_st_load_params_file(path, p2, "loss_state.", SSL_ST_STRICT, NULL), SSL_OK);
    tu_assert_close(l2.queue.keys->data, l.queue.keys->data, l.queue.keys->numel, 0, 0);
    assert_float_equal(l2.queue.ptr->data[0], 1.0f, 0);
    assert_int_equal(ssl_queue_count(&l2.queue), 8);
    unlink(path);
    ssl_params_free(p2);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

static void test_dino_object(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_params_t *p = ssl_params_create();
    ssl_loss_cfg_t c;
    assert_int_equal(read_cfg("{\"type\": \"dino\", \"warmup_teacher_temp_epochs\": 11}", &c),
                     SSL_OK);
    ssl_loss_t l;
    assert_int_equal(ssl_loss_init(&l, &c, p, "dino_loss", 5, 1), SSL_OK);
    assert_non_null(ssl_params_get(p, "dino_loss.center"));
    ssl_loss_inputs_t in = {0};
    in.student = R2(8, 5, 1, 1); /* 4 views of 2 */
    in.teacher = R2(4, 5, 2, 0);
    in.epoch = 5;
    ssl_loss_parts_t parts;
    ssl_tensor_t *v = ssl_loss_forward(ctx, &l, &in, &parts);
    assert_non_null(v);
    assert_int_equal(parts.n, 1);
    assert_float_equal(parts.value[0], 0.04f + 0.03f * 0.5f, 1e-7); /* epoch 5 of 11 */
    ssl_tensor_t *ref =
        ssl_loss_dino(ctx, in.student, in.teacher, 2, l.center, 0.1f, parts.value[0]);
    assert_float_equal(v->data[0], ref->data[0], 0);
    assert_int_equal(ssl_loss_after_step(&l, &in), SSL_OK);
    double m0 = 0; /* center = 0.1 * mean of the teacher's first column */
    for (int r = 0; r < 4; r++)
        m0 += in.teacher->data[r * 5];
    assert_float_equal(l.center->data[0], 0.1 * m0 / 4, 1e-7);
    in.teacher = NULL;
    ssl_clear_error();
    tu_assert_error(ssl_loss_forward(ctx, &l, &in, NULL), SSL_ERR_INVALID, "dino", "'teacher'",
                    NULL);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

static void test_swav_object(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_params_t *p = ssl_params_create();
    ssl_loss_cfg_t c;
    assert_int_equal(read_cfg("{\"type\": \"swav\", \"queue_length\": 4, "
                              "\"epoch_queue_starts\": 1}",
                              &c),
                     SSL_OK);
    ssl_loss_t l;
    assert_int_equal(ssl_loss_init(&l, &c, p, "swav", 3, 1), SSL_OK);
    assert_non_null(ssl_params_get(p, "swav.queue0.queue_keys"));
    assert_non_null(ssl_params_get(p, "swav.queue1.queue_keys"));
    /* 3 views of 2 samples, D = 3, K = 5 prototypes */
    ssl_tensor_t *protos = ssl_l2_normalize(ctx, R2(5, 3, 1, 1), -1, 1e-12f);
    ssl_tensor_t *emb = ssl_l2_normalize(ctx, R2(6, 3, 2, 1), -1, 1e-12f);
    ssl_loss_inputs_t in = {0};
    in.student = ssl_matmul(ctx, emb, protos, 0, 1);
    in.n_views = 3;
    in.embeddings = emb;
    in.prototypes = protos;
    in.epoch = 2;
    static const int views[2] = {0, 1};
    ssl_loss_parts_t parts;
    for (int step = 0; step < 3; step++) {
        ssl_tensor_t *v = ssl_loss_forward(ctx, &l, &in, &parts);
        assert_non_null(v);
        int used = step >= 2; /* 2 pushes of 2 rows fill the queues of 4 */
        assert_float_equal(parts.value[0], (float)used, 0);
        ssl_tensor_t *qs[2] = {NULL, NULL};
        if (used)
            for (int a = 0; a < 2; a++)
                qs[a] = ssl_matmul(ctx, l.swav_queue[a].keys, protos, 0, 1);
        ssl_tensor_t *ref =
            ssl_loss_swav(ctx, in.student, 3, views, 2, used ? qs : NULL, 0.1f, 0.05f, 3);
        assert_float_equal(v->data[0], ref->data[0], 0);
        assert_int_equal(ssl_loss_after_step(&l, &in), SSL_OK);
    }
    /* the queue holds the assigned views' embeddings */
    tu_assert_close(l.swav_queue[1].keys->data, emb->data + 2 * 3, 6, 1e-6, 1e-6);
    /* before epoch_queue_starts the queue is not used */
    in.epoch = 0.5;
    assert_non_null(ssl_loss_forward(ctx, &l, &in, &parts));
    assert_float_equal(parts.value[0], 0.0f, 0);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

static void test_clip_objects(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_params_t *p = ssl_params_create();
    ssl_loss_cfg_t c;
    assert_int_equal(read_cfg("{\"type\": \"clip\"}", &c), SSL_OK);
    ssl_loss_t l;
    assert_int_equal(ssl_loss_init(&l, &c, p, "", 0, 1), SSL_OK);
    ssl_tensor_t *s = ssl_params_get(p, "logit_scale");
    assert_ptr_equal(s, l.logit_scale);
    assert_float_equal(s->data[0], logf(1.0f / 0.07f), 1e-6);
    assert_true(ssl_params_info(p, 0)->flags & SSL_PARAM_NO_DECAY);
    ssl_loss_inputs_t in = {0};
    in.z1 = R2(4, 6, 1, 1);
    in.z2 = R2(4, 6, 2, 1);
    ssl_tensor_t *v = ssl_loss_forward(ctx, &l, &in, NULL);
    assert_non_null(v);
    assert_int_equal(ssl_backward(ctx, v), SSL_OK);
    assert_true(s->grad[0] != 0.0f); /* the scale is learned */
    assert_float_equal(v->data[0], ssl_loss_clip(ctx, in.z1, in.z2, s, logf(100))->data[0], 0);
    assert_int_equal(read_cfg("{\"type\": \"siglip\", \"init_logit_bias\": -5}", &c), SSL_OK);
    ssl_loss_t sl;
    assert_int_equal(ssl_loss_init(&sl, &c, p, "siglip", 0, 1), SSL_OK);
    assert_float_equal(ssl_params_get(p, "siglip.logit_scale")->data[0], logf(10.0f), 1e-6);
    assert_float_equal(ssl_params_get(p, "siglip.logit_bias")->data[0], -5.0f, 0);
    ssl_loss_parts_t parts;
    v = ssl_loss_forward(ctx, &sl, &in, &parts);
    assert_non_null(v);
    assert_int_equal(parts.n, 2);
    assert_float_equal(
        v->data[0], ssl_loss_siglip(ctx, in.z1, in.z2, sl.logit_scale, sl.logit_bias)->data[0], 0);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

static void test_weighted_sum(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_params_t *p = ssl_params_create();
    ssl_loss_cfg_t c[2];
    ssl_loss_t l[2];
    assert_int_equal(read_cfg("{\"type\": \"byol\"}", &c[0]), SSL_OK);
    assert_int_equal(read_cfg("{\"type\": \"vicreg\", \"weight\": 0.5}", &c[1]), SSL_OK);
    for (int i = 0; i < 2; i++)
        assert_int_equal(ssl_loss_init(&l[i], &c[i], p, "", 8, 1), SSL_OK);
    ssl_loss_inputs_t in = {0};
    in.z1 = R2(5, 8, 1, 1);
    in.z2 = R2(5, 8, 2, 1);
    in.t1 = R2(5, 8, 3, 0);
    in.t2 = R2(5, 8, 4, 0);
    const ssl_loss_inputs_t *ins[2] = {&in, &in};
    float vals[2];
    ssl_tensor_t *total = ssl_loss_sum(ctx, l, 2, ins, vals);
    assert_non_null(total);
    float b = ssl_loss_byol(ctx, in.z1, in.z2, in.t1, in.t2)->data[0];
    float v = ssl_loss_vicreg(ctx, in.z1, in.z2, NULL, NULL)->data[0];
    assert_float_equal(vals[0], b, 0);
    assert_float_equal(vals[1], v, 0);
    assert_float_equal(total->data[0], b + 0.5f * v, 1e-5 * fabsf(b + 0.5f * v));
    /* the gradient is the weighted sum of the gradients */
    assert_int_equal(ssl_backward(ctx, total), SSL_OK);
    float g[40];
    memcpy(g, in.z1->grad, sizeof g);
    memset(in.z1->grad, 0, sizeof g);
    assert_int_equal(ssl_backward(ctx, ssl_loss_byol(ctx, in.z1, in.z2, in.t1, in.t2)), SSL_OK);
    assert_int_equal(
        ssl_backward(ctx,
                     ssl_scale(ctx, ssl_loss_vicreg(ctx, in.z1, in.z2, NULL, NULL), 0.5f, 0.0f)),
        SSL_OK);
    tu_assert_close(in.z1->grad, g, 40, 1e-6, 1e-5);
    ssl_params_free(p);
    ssl_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),      cmocka_unit_test(test_errors),
        cmocka_unit_test(test_list_and_fill), cmocka_unit_test(test_moco_object),
        cmocka_unit_test(test_dino_object),   cmocka_unit_test(test_swav_object),
        cmocka_unit_test(test_clip_objects),  cmocka_unit_test(test_weighted_sum),
    };
    return cmocka_run_group_tests_name("losses_config", tests, NULL, NULL);
}
