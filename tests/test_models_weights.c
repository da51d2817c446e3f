/* Encoder weights in and out (ssl_encoder_load_weights / ssl_encoder_save_weights): round trips
 * of a CIFAR-stem ResNet and a ViT, the strict report (mis-shaped stem, missing, unexpected,
 * each named with the file and both shapes), num_batches_tracked ignored, classifier tensors
 * skipped with a log message, and the hint for a training checkpoint. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include "ssl/io.h"
#include "ssl/models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[64];
static char g_log[4096];

static int setup_dir(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/ssl_test_weights_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void on_log(int level, const char *msg, void *user)
{
    (void)level;
    (void)user;
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", msg);
}

static ssl_encoder_cfg_t resnet_cfg(int cifar)
{
    ssl_encoder_cfg_t c;
    ssl_encoder_preset("resnet18", &c);
    c.resnet.cifar_stem = cifar;
    c.resnet.width = 4;
    c.resnet.in_channels = 1;
    return c;
}

static ssl_encoder_cfg_t vit_cfg(void)
{
    ssl_encoder_cfg_t c;
    ssl_encoder_preset("vit_tiny", &c);
    c.vit.image_size = 8;
    c.vit.patch_size = 4;
    c.vit.in_channels = 1;
    c.vit.dim = 8;
    c.vit.depth = 2;
    c.vit.heads = 2;
    return c;
}

/* Pooled eval-mode features of a fixed input. */
static void features(const ssl_encoder_t *e, int64_t size, float *out, int64_t n)
{
    ssl_ctx_t *ctx = ssl_ctx_create((size_t)16 << 20);
    ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){2, 1, size, size}, 7, -1.0f, 1.0f, 0);
    ssl_encoder_out_t o;
    assert_int_equal(ssl_encoder_forward(ctx, e, x, NULL, 0, 0, &o), SSL_OK);
    assert_int_equal(o.pooled->numel, n);
    memcpy(out, o.pooled->data, (size_t)n * sizeof(float));
    ssl_ctx_free(ctx);
}

/* Random BN statistics so that the round trip carries buffers too. */
static void perturb_buffers(ssl_params_t *p)
{
    for (int i = 0; i < ssl_params_count(p); i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        if (in->kind != SSL_PARAM_BUFFER)
            continue;
        for (int64_t j = 0; j < in->t->numel; j++)
            in->t->data[j] = strstr(in->name, "num_batches") ? 5.0f : 0.5f + 0.01f * (float)(j % 7);
    }
}

static void round_trip(const ssl_encoder_cfg_t *cfg, int64_t size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/enc.safetensors", g_dir);
    ssl_params_t *p1 = ssl_params_create(), *p2 = ssl_params_create();
    /* different prefixes: the file's names carry neither */
    ssl_encoder_t *a = ssl_encoder_create(cfg, p1, "target.encoder", 1);
    ssl_encoder_t *b = ssl_encoder_create(cfg, p2, "encoder", 2);
    assert_non_null(a);
    assert_non_null(b);
    perturb_buffers(p1);
    assert_int_equal(ssl_encoder_save_weights(a, path, "{\"type\": \"x\"}"), SSL_OK);
    ssl_st_t *f = ssl_st_open(path);
    assert_non_null(f);
    assert_string_equal(ssl_st_meta(f, "format"), "pt");
    assert_string_equal(ssl_st_meta(f, SSL_WEIGHTS_META_ENCODER), "{\"type\": \"x\"}");
    const char *first = cfg->kind == SSL_ENC_VIT ? "patch_embed.proj.weight" : "conv1.weight";
    assert_true(ssl_st_find(f, first) >= 0);
    if (cfg->kind == SSL_ENC_RESNET) {
        int j = ssl_st_find(f, "bn1.num_batches_tracked");
        assert_true(j >= 0);
        assert_int_equal(ssl_st_tensor(f, j)->dtype, SSL_DTYPE_I64);
        assert_int_equal(ssl_st_tensor(f, j)->ndim, 0);
    }
    ssl_st_close(f);
    assert_int_equal(ssl_encoder_load_weights(b, path), SSL_OK);
    for (int i = 0; i < ssl_params_count(p1); i++) {
        const ssl_param_info_t *x = ssl_params_info(p1, i), *y = ssl_params_info(p2, i);
        if (strstr(x->name, "num_batches_tracked"))
            continue; /* ignored on import */
        assert_int_equal(x->t->numel, y->t->numel);
        assert_memory_equal(x->t->data, y->t->data, (size_t)x->t->numel * sizeof(float));
    }
    int64_t d = ssl_encoder_dim(a);
    float *fa = malloc((size_t)(2 * d) * sizeof(float)),
          *fb = malloc((size_t)(2 * d) * sizeof(float));
    features(a, size, fa, 2 * d);
    features(b, size, fb, 2 * d);
    assert_memory_equal(fa, fb, (size_t)(2 * d) * sizeof(float));
    free(fa);
    free(fb);
    ssl_encoder_free(a);
    ssl_encoder_free(b);
    ssl_params_free(p1);
    ssl_params_free(p2);
}

static void test_resnet_round_trip(void **state)
{
    (void)state;
    ssl_encoder_cfg_t c = resnet_cfg(1);
    round_trip(&c, 8);
}

static void test_vit_round_trip(void **state)
{
    (void)state;
    ssl_encoder_cfg_t c = vit_cfg();
    round_trip(&c, 8);
}

/* The file of encoder `cfg` written under its names, with tensor `drop` left out and `extra`
 * tensors added (NULL-terminated names, each a 2-vector). */
static void write_file(const char *path, const ssl_encoder_cfg_t *cfg, const char *drop,
                       const char *const *extra)
{
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(cfg, p, "", 3);
    assert_non_null(e);
    ssl_st_writer_t *w = ssl_st_writer_create();
    for (int i = 0; i < ssl_params_count(p); i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        if (drop && !strcmp(in->name, drop))
            continue;
        assert_int_equal(ssl_st_writer_add(w, in->name, in->t->ndim, in->t->shape, in->t->data),
                         SSL_OK);
    }
    static const float two[2] = {1, 2};
    for (int i = 0; extra && extra[i]; i++)
        assert_int_equal(ssl_st_writer_add(w, extra[i], 1, (int64_t[]){2}, two), SSL_OK);
    assert_int_equal(ssl_st_writer_save(w, path), SSL_OK);
    ssl_st_writer_free(w);
    ssl_encoder_free(e);
    ssl_params_free(p);
}

static void test_strict_report(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/imagenet.safetensors", g_dir);
    ssl_encoder_cfg_t in = resnet_cfg(0), cifar = resnet_cfg(1);
    static const char *const extra[] = {"layer5.0.conv1.weight", NULL};
    write_file(path, &in, "layer4.1.bn2.bias", extra);
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&cifar, p, "encoder", 1);
    float before = ssl_params_info(p, 1)->t->data[0]; /* bn1.weight */
    assert_int_equal(ssl_encoder_load_weights(e, path), SSL_ERR_FORMAT);
    const char *m = ssl_last_error();
    assert_non_null(strstr(m, path));
    /* the 7x7 stem against the CIFAR 3x3: both shapes */
    assert_non_null(
        strstr(m, "1 mis-shaped: conv1.weight: file (4, 1, 7, 7) vs encoder (4, 1, 3, 3)"));
    assert_non_null(strstr(m, "1 missing: layer4.1.bn2.bias (32)"));
    assert_non_null(strstr(m, "1 unexpected: layer5.0.conv1.weight (2)"));
    assert_float_equal(ssl_params_info(p, 1)->t->data[0], before, 0.0f); /* nothing loaded */
    ssl_encoder_free(e);
    ssl_params_free(p);
}

static void test_counter_and_classifier(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/fc.safetensors", g_dir);
    ssl_encoder_cfg_t c = resnet_cfg(1);
    /* no num_batches_tracked for bn1 in the file; a classifier that is not the encoder's */
    static const char *const extra[] = {"fc.weight", "fc.bias", NULL};
    write_file(path, &c, "bn1.num_batches_tracked", extra);
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&c, p, "encoder", 1);
    g_log[0] = '\0';
    ssl_set_log_callback(on_log, NULL, SSL_LOG_INFO);
    int st = ssl_encoder_load_weights(e, path);
    ssl_set_log_callback(NULL, NULL, SSL_LOG_INFO);
    assert_int_equal(st, SSL_OK);
    assert_non_null(strstr(g_log, "skipped 2 classifier tensors, not part of the encoder: "
                                  "fc.weight (2); fc.bias (2)"));
    assert_non_null(strstr(g_log, path));
    ssl_encoder_free(e);
    ssl_params_free(p);
}

static void test_checkpoint_hint(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", g_dir);
    ssl_encoder_cfg_t c = vit_cfg();
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&c, p, "encoder", 1);
    assert_int_equal(ssl_st_save_params(path, p, NULL, NULL, 0), SSL_OK);
    assert_int_equal(ssl_encoder_load_weights(e, path), SSL_ERR_FORMAT);
    assert_non_null(strstr(ssl_last_error(), "missing: patch_embed.proj.weight (8, 1, 4, 4)"));
    assert_non_null(strstr(ssl_last_error(), "training checkpoint: `sslc export"));
    assert_int_equal(ssl_encoder_load_weights(e, "/nonexistent/w.safetensors"), SSL_ERR_IO);
    ssl_encoder_free(e);
    ssl_params_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resnet_round_trip), cmocka_unit_test(test_vit_round_trip),
        cmocka_unit_test(test_strict_report),     cmocka_unit_test(test_counter_and_classifier),
        cmocka_unit_test(test_checkpoint_hint),
    };
    return tu_status(cmocka_run_group_tests(tests, setup_dir, teardown_dir));
}
