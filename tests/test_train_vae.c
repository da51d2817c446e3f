/* The VAE through the trainer (src/methods/vae.c, src/train/generative.c): the features every
 * evaluation reads are mu (head.mu over the encoder's pooled features, eval mode), not the
 * encoder's pooled features; a run writes the loss parts, the eval split's -ELBO and the PNG
 * pictures; the caller's noise drives the step; the config's mistakes name their keys. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ssl/data.h"
#include "ssl/io.h"
#include "ssl/train.h"

#define K 5 /* latent dims; the encoder's pooled width is 8 * 4 = 32 */
#define CONFIG(views, head)                                                                        \
    "{\"name\": \"v\", \"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, \"channels\": "   \
    "1, \"limit\": 80, \"val_size\": 32, \"eval_split\": \"val\", \"workers\": 0}, "         \
    "\"views\": [" views "], \"train\": {\"batch_size\": 16, "                                    \
    "\"epochs\": 2}, \"model\": {\"encoder\": {\"type\": \"resnet18\", \"stem\": \"cifar\", "      \
    "\"width\": 4, \"in_channels\": 1}, \"head\": " head "}, \"loss\": {\"type\": \"vae\", "       \
    "\"beta\": 2}, \"optim\": {\"name\": \"adamw\", \"base_lr\": 0.01}, \"eval\": "                \
    "{\"knn_every\": 0, \"knn_test_limit\": 16}}"
#define VIEW "{\"n\": 1, \"size\": 8, \"normalize\": false}"
#define HEAD "{\"latent_dim\": 5, \"channels\": 4}"

/* two epochs (3 steps each) of the test config into tu_tmp/v */
static void train_once(void)
{
    static int done;
    if (done++)
        return;
    ssl_train_opts_t o = {0};
    o.config_text = CONFIG(VIEW, HEAD);
    o.out_dir = tu_tmp;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    if (!t)
        fail_msg("%s", ssl_last_error());
    assert_int_equal(ssl_trainer_run(t), SSL_OK);
    ssl_trainer_free(t);
}

static float *read_named(const char *path, const char *name, int64_t *numel)
{
    ssl_st_t *f = ssl_st_open(path);
    assert_non_null(f);
    int i = ssl_st_find(f, name);
    if (i < 0)
        fail_msg("%s has no %s", path, name);
    const ssl_st_tensor_t *d = ssl_st_tensor(f, i);
    float *x = malloc((size_t)d->numel * sizeof(float));
    assert_int_equal(ssl_st_read_f32(f, i, x, (size_t)d->numel), SSL_OK);
    *numel = d->numel;
    ssl_st_close(f);
    return x;
}

/* ssl_checkpoint_features (what kNN, probes, embed and the report read) = head.mu applied to
 * the encoder's pooled features (the exported encoder's, computed apart) */
static void test_features_are_mu(void **state)
{
    (void)state;
    train_once();
    char ckpt[400], enc[400];
    snprintf(ckpt, sizeof ckpt, "%s/v/checkpoints/last.safetensors", tu_tmp);
    snprintf(enc, sizeof enc, "%s/enc.safetensors", tu_tmp);
    ssl_ckpt_features_t f, h;
    assert_int_equal(ssl_checkpoint_features(ckpt, NULL, 20, &f), SSL_OK);
    assert_int_equal(ssl_checkpoint_export_encoder(ckpt, NULL, enc), SSL_OK);
    assert_int_equal(ssl_weights_features(NULL, enc, ckpt, NULL, 20, &h), SSL_OK);
    assert_int_equal(f.n, 20);
    assert_int_equal(f.dim, K);
    assert_int_equal(h.dim, 32);
    int64_t nw, nb;
    float *w = read_named(ckpt, "head.mu.weight", &nw), *b = read_named(ckpt, "head.mu.bias", &nb);
    assert_int_equal(nw, K * 32);
    float *mu = malloc((size_t)(f.n * K) * sizeof(float));
    double spread = 0;
    for (int64_t i = 0; i < f.n; i++)
        for (int k = 0; k < K; k++) {
            double s = b[k];
            for (int j = 0; j < 32; j++)
                s += (double)h.x[i * 32 + j] * w[k * 32 + j];
            mu[i * K + k] = (float)s;
            spread += fabs(s - f.x[k]); /* mu differs between images */
        }
    assert_true(spread > 1e-3);
    tu_assert_close(f.x, mu, f.n * K, 1e-5, 1e-4);
    free(mu);
    free(w);
    free(b);
    ssl_ckpt_features_free(&f);
    ssl_ckpt_features_free(&h);
}

/* metrics.jsonl: loss_rec and loss_kl at the log points (loss = rec + beta kl), the eval
 * split's test_nll = test_rec + test_kl and its bits per dimension, over eval.knn_test_limit
 * (16) of the 32 eval images at epoch 1 and all of them at the last epoch; the pictures are
 * PNGs of the grid's size */
static void test_run_outputs(void **state)
{
    (void)state;
    train_once();
    char path[400];
    snprintf(path, sizeof path, "%s/v/metrics.jsonl", tu_tmp);
    ssl_run_log_t rl;
    assert_int_equal(ssl_run_log_read(path, &rl), SSL_OK);
    int cl = ssl_run_log_key(&rl, "loss"), cr = ssl_run_log_key(&rl, "loss_rec");
    int ck = ssl_run_log_key(&rl, "loss_kl"), cn = ssl_run_log_key(&rl, "test_nll");
    int cb = ssl_run_log_key(&rl, "test_bits_per_dim");
    int ctr = ssl_run_log_key(&rl, "test_rec"), ctk = ssl_run_log_key(&rl, "test_kl");
    int ci = ssl_run_log_key(&rl, "test_images");
    assert_true(cl >= 0 && cr >= 0 && ck >= 0 && cn >= 0 && cb >= 0 && ctr >= 0 && ctk >= 0);
    assert_true(ci >= 0);
    int steps = 0, epochs = 0;
    for (int64_t i = 0; i < rl.n_rows; i++) {
        const double *r = rl.values + i * SSL_RUN_LOG_MAX_KEYS;
        if (isfinite(r[cl])) {
            steps++;
            assert_true(fabs(r[cl] - (r[cr] + 2 * r[ck])) <= 1e-3 * fabs(r[cl]));
            assert_true(r[ck] >= 0 && r[cr] > 0);
        }
        if (isfinite(r[cn])) {
            epochs++;
            assert_int_equal((int)r[ci], epochs == 1 ? 16 : 32);
            assert_true(fabs(r[cn] - (r[ctr] + r[ctk])) <= 1e-3 * r[cn]);
            assert_true(fabs(r[cb] - r[cn] / (64 * log(2.0))) <= 1e-4 * r[cb]);
        }
    }
    assert_true(steps >= 1);
    assert_int_equal(epochs, 2);
    ssl_run_log_free(&rl);
    static const char *const kinds[2] = {"recon", "samples"};
    /* 32 test images and their reconstructions: 8 rows of 8; 64 samples: 8 x 8; 8-pixel images
     * with 2 pixels between: 8 * 10 + 2 = 82 a side */
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/v/pictures/epoch-00%d-%s.png", tu_tmp, 1 + k / 2,
                 kinds[k % 2]);
        tu_expect_image_size(path, 82, 82);
    }
}

/* The step takes the caller's eps: the same batch with eps and 4 eps gives two losses (at this
 * size the decoder's first ReLU cuts off small changes of z), the same eps twice the same loss;
 * a noise of the wrong width is an error naming latent_dim. */
static void test_step_noise(void **state)
{
    (void)state;
    float loss[3];
    for (int r = 0; r < 3; r++) {
        ssl_train_opts_t o = {0};
        o.config_text = CONFIG(VIEW, HEAD);
        o.no_run_dir = 1;
        ssl_trainer_t *t = ssl_trainer_create(&o);
        assert_non_null(t);
        float img[16 * 64], eps[16 * K];
        for (int i = 0; i < 16 * 64; i++)
            img[i] = (float)((i * 37) % 17) / 16.0f;
        for (int i = 0; i < 16 * K; i++)
            eps[i] = ((float)((i * 13) % 7) / 3.0f - 1.0f) * (r == 2 ? 4.0f : 1.0f);
        ssl_batch_t b = {0};
        b.size = 16;
        b.n_views = 1;
        b.views[0] = (ssl_tensor_t){.ndim = 4, .shape = {16, 1, 8, 8}, .numel = 16 * 64,
                                    .data = img};
        b.noise = eps;
        b.noise_dim = K + 1;
        assert_int_equal(ssl_trainer_step(t, &b, NULL), SSL_ERR_SHAPE);
        assert_non_null(strstr(ssl_last_error(), "latent_dim"));
        b.noise_dim = K;
        double L = 0;
        assert_int_equal(ssl_trainer_step(t, &b, &L), SSL_OK);
        loss[r] = (float)L;
        ssl_trainer_free(t);
    }
    assert_float_equal(loss[0], loss[1], 0.0f);
    assert_true(fabsf(loss[0] - loss[2]) > 1e-5f * fabsf(loss[2]));
}

static void test_config_errors(void **state)
{
    (void)state;
    tu_expect_trainer_config_error(CONFIG("{\"n\": 1, \"size\": 8}", HEAD),
                        (const char *[]){"views", "normalize", "[0, 1]", NULL});
    tu_expect_trainer_config_error(CONFIG("{\"n\": 1, \"size\": 6, \"normalize\": false}", HEAD),
                        (const char *[]){"views", "multiple of 4", NULL});
    tu_expect_trainer_config_error(CONFIG("{\"n\": 2, \"size\": 8, \"normalize\": false}", HEAD),
                        (const char *[]){"views", "one view", NULL});
    tu_expect_trainer_config_error(CONFIG(VIEW, "{\"latent_dm\": 5}"),
                        (const char *[]){"latent_dm", "latent_dim", NULL});
    tu_expect_trainer_config_error(CONFIG(VIEW, "{\"channels\": 5}"),
                        (const char *[]){"channels", "odd", NULL});
    tu_expect_trainer_config_error(CONFIG(VIEW, "{\"latent_dim\": 0}"),
                                   (const char *[]){"latent_dim", NULL});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features_are_mu),
        cmocka_unit_test(test_run_outputs),
        cmocka_unit_test(test_step_noise),
        cmocka_unit_test(test_config_errors),
    };
    return tu_status(
        cmocka_run_group_tests_name("train_vae", tests, tu_tmpdir_setup, tu_tmpdir_teardown));
}
