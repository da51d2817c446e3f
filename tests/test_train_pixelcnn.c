/* The gated PixelCNN (src/methods/pixelcnn.c) through the trainer: causality through the whole
 * network (each pixel's logits depend on the pixels before it in raster order only, and on its
 * neighbours up, up-right and left: no blind spot there); features = the pooled middle layer;
 * a run logs the exact test -log p(x) and writes samples of whole levels; eval.samples 0 writes
 * none; the config's mistakes name their keys. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "methods/methods_internal.h"
#include "ssl/data.h"
#include "ssl/io.h"
#include "ssl/train.h"
#include "train/trainer_internal.h"

#define S 8 /* image side */
#define VIEW_RAW                                                                                   \
    "{\"n\": 1, \"size\": 8, \"crop\": 0, \"flip\": 0, \"jitter\": {\"p\": 0}, \"grayscale\": 0, " \
    "\"blur\": {\"p\": 0}, \"normalize\": false}"
#define NET "{\"channels\": 6, \"layers\": 3, \"first_kernel\": 5, \"kernel\": 3, \"hidden\": 8}"
#define CONFIG_X(views, model, eval)                                                               \
    "{\"name\": \"p\", \"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, \"channels\": "   \
    "1, \"limit\": 80, \"val_size\": 32, \"eval_split\": \"val\", \"workers\": 0}, "               \
    "\"views\": [" views "], \"train\": {\"batch_size\": 16, \"epochs\": 2}, \"model\": " model   \
    ", \"loss\": {\"type\": \"pixelcnn\"}, \"optim\": {\"name\": \"adamw\", \"base_lr\": 0.01}, " \
    "\"eval\": {\"knn_every\": 0, \"knn_test_limit\": 16" eval "}}"
#define CONFIG(views, net) CONFIG_X(views, "{\"network\": " net "}", ", \"samples\": 3")

static ssl_trainer_t *make(const char *config)
{
    ssl_train_opts_t o = {0};
    o.config_text = config;
    o.no_run_dir = 1;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    if (!t)
        fail_msg("%s", ssl_last_error());
    return t;
}

/* Perturb input pixel p of a random image of whole levels: the logits of pixels 0 .. p stay
 * bit for bit (no path from p to them), those of p + 1 (the right neighbour), of the pixels
 * below and below-left of p (p seen as up, up-right) change; over every p of an 8x8 image. */
static void test_causality(void **state)
{
    (void)state;
    ssl_trainer_t *t = make(CONFIG(VIEW_RAW, NET));
    ssl_ctx_t *ctx = tu_ctx();
    ssl_ctx_set_grad(ctx, 0);
    float img[S * S];
    for (int i = 0; i < S * S; i++)
        img[i] = (float)((i * 97 + 13) % 256) / 255.0f;
    ssl_tensor_t *x = ssl_tensor_from(ctx, 4, (int64_t[]){1, 1, S, S}, img);
    ssl_tensor_t *l0 = ssl__pixelcnn_logits(t->method, ctx, x);
    assert_non_null(l0);
    assert_int_equal(l0->numel, S * S * 256);
    for (int p = 0; p < S * S; p++) {
        float img2[S * S];
        memcpy(img2, img, sizeof img);
        img2[p] = img[p] > 0.5f ? 0.0f : 1.0f;
        ssl_tensor_t *l = ssl__pixelcnn_logits(t->method, ctx,
                                               ssl_tensor_from(ctx, 4, (int64_t[]){1, 1, S, S},
                                                               img2));
        assert_non_null(l);
        for (int q = 0; q <= p; q++)
            if (memcmp(l->data + q * 256, l0->data + q * 256, 256 * sizeof(float)))
                fail_msg("the logits of pixel %d changed with input pixel %d", q, p);
        int i = p / S, j = p % S;
        int seen_by[3][2] = {{i, j + 1}, {i + 1, j}, {i + 1, j - 1}}; /* left, up, up-right */
        for (int k = 0; k < 3; k++) {
            int qi = seen_by[k][0], qj = seen_by[k][1], q = qi * S + qj;
            if (qi >= S || qj < 0 || qj >= S)
                continue;
            if (!memcmp(l->data + q * 256, l0->data + q * 256, 256 * sizeof(float)))
                fail_msg("the logits of pixel %d do not see input pixel %d", q, p);
        }
    }
    ssl_ctx_free(ctx);
    ssl_trainer_free(t);
}

/* The logits of a row from the ssl__pixelcnn_rows rows ending at it (6 for this net: 2 + 2 * 1
 * + 2) equal the whole image's bit for bit; one row fewer changes them (the window is no larger
 * than it must be). The sampler's row logits (vertical stacks over the rows above in that
 * window, horizontal ones over the row alone) equal the whole image's, row by row. */
static void test_rows_seen(void **state)
{
    (void)state;
    ssl_trainer_t *t = make(CONFIG(VIEW_RAW, NET));
    assert_int_equal(ssl__pixelcnn_rows(t->method), 6);
    ssl_ctx_t *ctx = tu_ctx();
    ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){2, 1, S, S}, 9, 0, 1, 0);
    for (int64_t i = 0; i < 2 * S * S; i++)
        x->data[i] = roundf(x->data[i] * 255.0f) / 255.0f;
    ssl_tensor_t *full = ssl__pixelcnn_logits(t->method, ctx, x); // (2, S, S, 256)
    for (int rows = 5; rows <= 6; rows++) {
        int64_t i = S - 1, i0 = i + 1 - rows;
        ssl_tensor_t *l = ssl__pixelcnn_logits(t->method, ctx, ssl_slice(ctx, x, 2, i0, rows));
        assert_non_null(l);
        int same = 1;
        for (int64_t b = 0; b < 2; b++)
            same &= !memcmp(l->data + ((b * rows + rows - 1) * S) * 256,
                            full->data + ((b * S + i) * S) * 256, S * 256 * sizeof(float));
        assert_int_equal(same, rows == 6);
    }
    for (int64_t i = 0; i < S; i++) {
        ssl_tensor_t *r = ssl__pixelcnn_row_logits(t->method, ctx, x, i); // (2, 1, S, 256)
        assert_non_null(r);
        assert_int_equal(r->numel, 2 * S * 256);
        for (int64_t b = 0; b < 2; b++)
            tu_assert_close(r->data + b * S * 256, full->data + ((b * S + i) * S) * 256, S * 256,
                            1e-6, 1e-5);
    }
    ssl_ctx_free(ctx);
    ssl_trainer_free(t);
}

/* two epochs into tu_tmp/p */
static void train_once(void)
{
    static int done;
    if (done++)
        return;
    ssl_train_opts_t o = {0};
    o.config_text = CONFIG(VIEW_RAW, NET);
    o.out_dir = tu_tmp;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    if (!t)
        fail_msg("%s", ssl_last_error());
    assert_int_equal(ssl_trainer_run(t), SSL_OK);
    ssl_trainer_free(t);
}

/* test_nll is the exact -log p(x): the mean per-pixel nats of the eval images times 64, and
 * bits/dim = nats / (64 ln 2); the samples grid is 3 images of whole levels in [0, 1] (8 + 2
 * pixels each: 3 * 10 + 2 = 32 wide, one row) and there are no reconstructions */
static void test_run_outputs(void **state)
{
    (void)state;
    train_once();
    char path[400];
    snprintf(path, sizeof path, "%s/p/metrics.jsonl", tu_tmp);
    ssl_run_log_t rl;
    assert_int_equal(ssl_run_log_read(path, &rl), SSL_OK);
    int cn = ssl_run_log_key(&rl, "test_nll"), cb = ssl_run_log_key(&rl, "test_bits_per_dim");
    int ci = ssl_run_log_key(&rl, "test_images");
    assert_true(cn >= 0 && cb >= 0 && ci >= 0);
    int epochs = 0;
    double nll_last = 0;
    for (int64_t i = 0; i < rl.n_rows; i++) {
        const double *r = rl.values + i * SSL_RUN_LOG_MAX_KEYS;
        if (isfinite(r[cn])) {
            epochs++;
            assert_int_equal((int)r[ci], epochs == 1 ? 16 : 32);
            assert_true(fabs(r[cb] - r[cn] / (64 * log(2.0))) <= 1e-4 * r[cb]);
            nll_last = r[cn];
        }
    }
    assert_int_equal(epochs, 2);
    ssl_run_log_free(&rl);
    /* the last epoch's -log p over the 32 eval images, recomputed from the checkpoint's network */
    snprintf(path, sizeof path, "%s/p/checkpoints/last.safetensors", tu_tmp);
    ssl_trainer_t *t = make(CONFIG(VIEW_RAW, NET));
    /* the network's tensors (the checkpoint also holds the optimizer's) */
    assert_int_equal(ssl_st_load_params_file(path, t->online, "", SSL_ST_ALLOW_UNEXPECTED, NULL),
                     SSL_OK);
    ssl_ctx_t *ctx = tu_ctx();
    ssl_ctx_set_grad(ctx, 0);
    const ssl_dataset_t *ds = t->eval_ds;
    assert_non_null(ds);
    assert_int_equal(ds->n, 32);
    double sum = 0;
    for (int64_t n = 0; n < ds->n; n++) {
        ssl_tensor_t *x = ssl_tensor_4d(ctx, 1, 1, S, S);
        for (int i = 0; i < S * S; i++)
            x->data[i] = (float)ds->images[n * S * S + i] / 255.0f;
        ssl_tensor_t *l = ssl__pixelcnn_logits(t->method, ctx, x);
        assert_non_null(l);
        for (int i = 0; i < S * S; i++) {
            const float *z = l->data + i * 256;
            double mx = z[0], s = 0;
            for (int k = 1; k < 256; k++)
                mx = fmax(mx, z[k]);
            for (int k = 0; k < 256; k++)
                s += exp(z[k] - mx);
            sum += mx + log(s) - z[ds->images[n * S * S + i]];
        }
        ssl_ctx_reset(ctx);
    }
    assert_true(fabs(sum / 32 - nll_last) <= 1e-4 * nll_last);
    /* features from the checkpoint (kNN, probes, embed): the pooled middle layer; no encoder to
     * export */
    ssl_ckpt_features_t cf;
    assert_int_equal(ssl_checkpoint_features(path, NULL, 20, &cf), SSL_OK);
    assert_int_equal(cf.dim, 6);
    ssl_ckpt_features_free(&cf);
    char out[400];
    snprintf(out, sizeof out, "%s/enc.safetensors", tu_tmp);
    assert_int_equal(ssl_checkpoint_export_encoder(path, NULL, out), SSL_ERR_UNSUPPORTED);
    assert_non_null(strstr(ssl_last_error(), "no encoder"));
    assert_non_null(strstr(ssl_last_error(), "model.network"));
    ssl_ctx_free(ctx);
    ssl_trainer_free(t);
    for (int e = 1; e <= 2; e++) {
        snprintf(path, sizeof path, "%s/p/pictures/epoch-00%d-recon.png", tu_tmp, e);
        assert_int_equal(access(path, F_OK), -1);
        snprintf(path, sizeof path, "%s/p/pictures/epoch-00%d-samples.png", tu_tmp, e);
        tu_expect_image_size(path, 32, 12);
    }
}

/* the samples themselves: whole levels in [0, 1], not all equal, the same for the same seed,
 * other for another; and none for n = 0 */
static void test_samples(void **state)
{
    (void)state;
    ssl_trainer_t *t = make(CONFIG(VIEW_RAW, NET));
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *rec = NULL, *s[3] = {NULL};
    for (int r = 0; r < 3; r++)
        assert_int_equal(ssl__method_pictures(t->method, ctx, NULL, 2, r == 2 ? 8 : 7, &rec, &s[r]),
                         SSL_OK);
    assert_null(rec);
    assert_int_equal(s[0]->numel, 2 * S * S);
    int distinct = 0;
    for (int64_t i = 0; i < s[0]->numel; i++) {
        float v = s[0]->data[i] * 255.0f;
        assert_true(v >= 0.0f && v <= 255.0f && fabsf(v - roundf(v)) < 1e-3f);
        distinct += s[0]->data[i] != s[0]->data[0];
    }
    assert_true(distinct > 0);
    assert_memory_equal(s[0]->data, s[1]->data, (size_t)s[0]->numel * sizeof(float));
    assert_true(memcmp(s[0]->data, s[2]->data, (size_t)s[0]->numel * sizeof(float)) != 0);
    ssl_tensor_t *none = NULL;
    assert_int_equal(ssl__method_pictures(t->method, ctx, NULL, 0, 7, &rec, &none), SSL_OK);
    assert_null(none);
    ssl_ctx_free(ctx);
    ssl_trainer_free(t);
}

/* features: the horizontal stack after layer feature_layer (default the middle: 2 of 3),
 * mean-pooled: (B, channels), and a later layer gives other values */
static void test_features(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){3, 1, S, S}, 5, 0, 1, 0);
    ssl_tensor_t *f[2];
    for (int k = 0; k < 2; k++) {
        ssl_trainer_t *t = make(k ? CONFIG(VIEW_RAW, "{\"channels\": 6, \"layers\": 3, "
                                                     "\"first_kernel\": 5, \"hidden\": 8, "
                                                     "\"feature_layer\": 3}")
                                  : CONFIG(VIEW_RAW, NET));
        f[k] = ssl__method_features(t->method, ctx, x);
        assert_non_null(f[k]);
        assert_int_equal(f[k]->ndim, 2);
        assert_int_equal(f[k]->shape[0], 3);
        assert_int_equal(f[k]->shape[1], 6);
        ssl_trainer_free(t);
    }
    assert_true(memcmp(f[0]->data, f[1]->data, 18 * sizeof(float)) != 0);
    ssl_ctx_free(ctx);
}

/* The readouts of a checkpoint (ssl_embed_features, as sslc embed / knn / linear --readout):
 * "L" is layer L mean-pooled, as the config's feature_layer; "L/max8" on 8x8 images is the whole
 * map (C x 8 x 8), whose per-channel mean is "L" and whose per-channel max is "L/max1"; the
 * config's feature_grid 2 gives C x 2 x 2; malformed readouts are errors naming the form. */
static void test_readouts(void **state)
{
    (void)state;
    train_once();
    char path[400];
    snprintf(path, sizeof path, "%s/p/checkpoints/last.safetensors", tu_tmp);
    const char *readouts[] = {NULL, "2", "3", "3/max8", "3/max1"};
    ssl_ckpt_features_t f[5];
    for (int k = 0; k < 5; k++) {
        ssl_embed_opts_t o = {path, NULL, 5, NULL, NULL, 0, readouts[k], 0};
        assert_int_equal(ssl_embed_features(&o, &f[k]), SSL_OK);
        assert_int_equal(f[k].n, 5);
    }
    assert_int_equal(f[0].dim, 6);
    assert_int_equal(f[3].dim, 6 * S * S);
    assert_int_equal(f[4].dim, 6);
    /* the default is the middle layer (2 of 3), the same as readout "2"; layer 3 differs */
    assert_memory_equal(f[0].x, f[1].x, 5 * 6 * sizeof(float));
    assert_true(memcmp(f[1].x, f[2].x, 5 * 6 * sizeof(float)) != 0);
    for (int i = 0; i < 5; i++)
        for (int c = 0; c < 6; c++) {
            const float *map = f[3].x + ((int64_t)i * 6 + c) * S * S;
            double sum = 0;
            float mx = map[0];
            for (int q = 0; q < S * S; q++) {
                sum += map[q];
                mx = map[q] > mx ? map[q] : mx;
            }
            assert_float_equal(sum / (S * S), f[2].x[i * 6 + c], 1e-5);
            assert_float_equal(mx, f[4].x[i * 6 + c], 0);
        }
    for (int k = 0; k < 5; k++)
        ssl_ckpt_features_free(&f[k]);
    const char *bad[] = {"4", "0", "2/max9", "2/max", "2/mean", "x", "2/max2x", "mid@10"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ssl_embed_opts_t o = {path, NULL, 5, NULL, NULL, 0, bad[k], 0};
        ssl_ckpt_features_t g;
        assert_int_equal(ssl_embed_features(&o, &g), SSL_ERR_CONFIG);
        if (!strstr(ssl_last_error(), "expected LAYER") || !strstr(ssl_last_error(), bad[k]))
            fail_msg("readout '%s': %s", bad[k], ssl_last_error());
    }
    /* the config's feature_grid: C x g x g features */
    ssl_trainer_t *t = make(CONFIG(VIEW_RAW, "{\"channels\": 6, \"layers\": 3, "
                                             "\"first_kernel\": 5, \"hidden\": 8, "
                                             "\"feature_grid\": 2}"));
    ssl_ctx_t *ctx = tu_ctx();
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){3, 1, S, S}, 5, 0, 1, 0);
    ssl_tensor_t *g = ssl__method_features(t->method, ctx, x);
    assert_non_null(g);
    assert_int_equal(g->ndim, 2);
    assert_int_equal(g->shape[0], 3);
    assert_int_equal(g->shape[1], 6 * 2 * 2);
    ssl_ctx_free(ctx);
    ssl_trainer_free(t);
}

static void expect_config_error(const char *config, const char *const *needles)
{
    ssl_train_opts_t o = {0};
    o.config_text = config;
    o.no_run_dir = 1;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    if (t)
        fail_msg("config accepted: %s", config);
    for (int i = 0; needles[i]; i++)
        if (!strstr(ssl_last_error(), needles[i]))
            fail_msg("'%s' lacks '%s'", ssl_last_error(), needles[i]);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_config_error(CONFIG("{\"n\": 1, \"size\": 8}", NET),
                        (const char *[]){"views", "normalize", NULL});
    expect_config_error(CONFIG("{\"n\": 2, \"size\": 8, \"normalize\": false}", NET),
                        (const char *[]){"views", "one view", NULL});
    expect_config_error(CONFIG(VIEW_RAW, "{\"kernel\": 4}"),
                        (const char *[]){"network.kernel", "even", NULL});
    expect_config_error(CONFIG(VIEW_RAW, "{\"first_kernel\": 6}"),
                        (const char *[]){"network.first_kernel", "even", NULL});
    expect_config_error(CONFIG(VIEW_RAW, "{\"layers\": 2, \"feature_layer\": 3}"),
                        (const char *[]){"feature_layer", NULL});
    expect_config_error(CONFIG(VIEW_RAW, "{\"feature_grid\": 9}"),
                        (const char *[]){"network.feature_grid", "larger than the 8-pixel", NULL});
    expect_config_error(CONFIG(VIEW_RAW, "{\"chanels\": 4}"),
                        (const char *[]){"chanels", "channels", NULL});
    expect_config_error(CONFIG_X(VIEW_RAW,
                                 "{\"network\": " NET ", \"encoder\": {\"type\": \"resnet18\"}}",
                                 ""),
                        (const char *[]){"model.encoder", "no encoder", NULL});
    expect_config_error(CONFIG_X(VIEW_RAW, "{\"network\": " NET "}", ", \"samples\": -1"),
                        (const char *[]){"eval.samples", NULL});
    expect_config_error(CONFIG_X(VIEW_RAW, "{\"network\": " NET "}", ", \"blocks\": 2"),
                        (const char *[]){"eval.blocks", "no encoder", NULL});
    /* views that are not whole levels: the step names the cause */
    ssl_trainer_t *t = make(CONFIG("{\"n\": 1, \"size\": 8, \"normalize\": false}", NET));
    float img[16 * S * S];
    for (int i = 0; i < 16 * S * S; i++)
        img[i] = (float)(i % 255) / 255.0f;
    img[5] = 0.3f;
    ssl_batch_t b = {0};
    b.size = 16;
    b.n_views = 1;
    b.views[0] = (ssl_tensor_t){.ndim = 4, .shape = {16, 1, S, S}, .numel = 16 * S * S,
                                .data = img};
    double L = 0;
    assert_int_equal(ssl_trainer_step(t, &b, &L), SSL_ERR_INVALID);
    assert_non_null(strstr(ssl_last_error(), "element 5"));
    img[5] = 0.0f;
    assert_int_equal(ssl_trainer_step(t, &b, &L), SSL_OK);
    assert_true(L > 5.0 && L < 6.0); /* about ln 256 = 5.55 at the start */
    ssl_trainer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_causality),
        cmocka_unit_test(test_rows_seen),
        cmocka_unit_test(test_run_outputs),
        cmocka_unit_test(test_samples),
        cmocka_unit_test(test_features),
        cmocka_unit_test(test_readouts),
        cmocka_unit_test(test_config_errors),
    };
    return tu_status(
        cmocka_run_group_tests_name("train_pixelcnn", tests, tu_tmpdir_setup, tu_tmpdir_teardown));
}
