/* DCGAN and BiGAN through the trainer (src/methods/gan.c): two optimizer phases per step whose
 * losses the log keeps apart (loss = loss_d + loss_g), sample grids (BiGAN: and reconstructions
 * G(E(x))), the caller's z, and the config's mistakes named by key. Step parity against PyTorch
 * is method_parity_dcgan / method_parity_bigan. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/data.h"
#include "ssl/io.h"
#include "ssl/train.h"

#define K 6
#define CONFIG_T(name, views, encoder, extra, loss, train)                                         \
    "{\"name\": \"" name "\", \"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, "          \
    "\"channels\": 1, \"limit\": 80, \"val_size\": 32, \"eval_split\": \"val\", \"workers\": 0}, " \
    "\"views\": [" views "], \"train\": {\"batch_size\": 16, \"epochs\": 2" train "}, \"model\": " \
    "{\"encoder\": " encoder ", \"generator\": {\"latent_dim\": 6, \"width\": 4}" extra "}, "      \
    "\"loss\": {\"type\": \"" loss "\"}, \"optim\": {\"name\": \"adamw\", \"lr\": 0.0002, "        \
    "\"schedule\": \"constant\", \"warmup_epochs\": 0, \"betas\": [0.5, 0.999]}, "             \
    "\"eval\": {\"knn_every\": 0}}"
#define CONFIG(name, views, encoder, extra, loss) CONFIG_T(name, views, encoder, extra, loss, "")
#define VIEW "{\"n\": 1, \"size\": 8, \"normalize\": false}"
#define DCGAN_ENC "{\"type\": \"dcgan\", \"in_channels\": 1, \"width\": 4}"
#define RESNET_ENC "{\"type\": \"resnet18\", \"stem\": \"cifar\", \"width\": 4, \"in_channels\": 1}"
#define DISC ", \"discriminator\": {\"width\": 4, \"depth\": 2, \"hidden\": 8}"
#define DCGAN_CONFIG CONFIG("dcgan", VIEW, DCGAN_ENC, "", "dcgan")
#define BIGAN_CONFIG CONFIG("bigan", VIEW, RESNET_ENC, DISC, "bigan")

/* whether tu_tmp/name/pictures/epoch-00E-kind.png is an 82 x 82 image (8 x 8 pictures of 8
 * pixels, 2 between) */
static int picture_ok(const char *name, int epoch, const char *kind)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s/pictures/epoch-%03d-%s.png", tu_tmp, name, epoch, kind);
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return 0;
    unsigned char buf[8192];
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    int w = 0, h = 0;
    return ssl_image_info(buf, len, &w, &h) == SSL_OK && w == 82 && h == 82;
}

static void run_case(const char *config, const char *name, const char *g_part, int recon)
{
    ssl_train_opts_t o = {0};
    o.config_text = config;
    o.out_dir = tu_tmp;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    if (!t)
        fail_msg("%s: %s", name, ssl_last_error());
    assert_int_equal(ssl_trainer_run(t), SSL_OK);
    ssl_trainer_free(t);
    char path[400];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", tu_tmp, name);
    ssl_run_log_t rl;
    assert_int_equal(ssl_run_log_read(path, &rl), SSL_OK);
    int cl = ssl_run_log_key(&rl, "loss"), cd = ssl_run_log_key(&rl, "loss_d");
    int cg = ssl_run_log_key(&rl, g_part);
    assert_true(cl >= 0 && cd >= 0 && cg >= 0);
    int steps = 0;
    for (int64_t i = 0; i < rl.n_rows; i++) {
        const double *r = rl.values + i * SSL_RUN_LOG_MAX_KEYS;
        if (!isfinite(r[cl]))
            continue;
        steps++; /* the step's loss is the sum of its phases'; BCE terms are positive */
        assert_true(fabs(r[cl] - (r[cd] + r[cg])) <= 1e-4 * fabs(r[cl]));
        assert_true(r[cd] > 0 && r[cg] > 0);
    }
    assert_true(steps >= 1);
    ssl_run_log_free(&rl);
    for (int e = 1; e <= 2; e++) {
        assert_true(picture_ok(name, e, "samples"));
        assert_int_equal(picture_ok(name, e, "recon"), recon);
    }
}

static void test_run_outputs(void **state)
{
    (void)state;
    run_case(DCGAN_CONFIG, "dcgan", "loss_g", 0);
    run_case(BIGAN_CONFIG, "bigan", "loss_ge", 1);
}

/* The step takes the caller's z: the same batch and z twice give the same loss, another z
 * another; a z of the wrong width is an error naming latent_dim. Both phases move their own
 * parameters: the discriminator's and the generator's change in one step. */
static void test_step_noise(void **state)
{
    (void)state;
    double loss[3];
    for (int r = 0; r < 3; r++) {
        ssl_train_opts_t o = {0};
        o.config_text = DCGAN_CONFIG;
        o.no_run_dir = 1;
        ssl_trainer_t *t = ssl_trainer_create(&o);
        assert_non_null(t);
        float img[16 * 64], z[16 * K];
        for (int i = 0; i < 16 * 64; i++)
            img[i] = (float)((i * 37) % 17) / 16.0f;
        for (int i = 0; i < 16 * K; i++)
            /* another pattern, not a multiple (the generator's BatchNorm after its first
             * layer, no bias, makes G(3 z) = G(z)) nor a permutation of the rows */
            z[i] = sinf(0.37f * (float)i * (r == 2 ? 2.0f : 1.0f) + 0.1f);
        ssl_batch_t b = {0};
        b.size = 16;
        b.n_views = 1;
        b.views[0] = (ssl_tensor_t){.ndim = 4, .shape = {16, 1, 8, 8}, .numel = 16 * 64,
                                    .data = img};
        b.noise = z;
        b.noise_dim = K + 1;
        assert_int_equal(ssl_trainer_step(t, &b, NULL), SSL_ERR_SHAPE);
        assert_non_null(strstr(ssl_last_error(), "latent_dim"));
        b.noise_dim = K;
        ssl_params_t *p = ssl_trainer_params(t, 0);
        ssl_tensor_t *dw = ssl_params_get(p, "disc.out.weight"),
                     *gw = ssl_params_get(p, "gen.conv3.weight");
        assert_true(dw && gw);
        float d0 = dw->data[0], g0 = gw->data[0];
        assert_int_equal(ssl_trainer_step(t, &b, &loss[r]), SSL_OK);
        assert_true(dw->data[0] != d0 && gw->data[0] != g0);
        ssl_trainer_free(t);
    }
    assert_true(loss[0] == loss[1]);
    assert_true(fabs(loss[0] - loss[2]) > 1e-5 * fabs(loss[2]));
}

static void test_config_errors(void **state)
{
    (void)state;
    /* DCGAN's discriminator is the encoder: it must be the dcgan convnet */
    tu_expect_trainer_config_error(CONFIG("dcgan", VIEW, RESNET_ENC, "", "dcgan"),
                        (const char *[]){"model.encoder.type", "dcgan", NULL});
    tu_expect_trainer_config_error(
        CONFIG("dcgan", "{\"n\": 1, \"size\": 8}", DCGAN_ENC, "", "dcgan"),
                        (const char *[]){"views", "normalize", NULL});
    tu_expect_trainer_config_error(CONFIG("dcgan", "{\"n\": 1, \"size\": 6, \"normalize\": false}",
                               DCGAN_ENC, "", "dcgan"),
                        (const char *[]){"views", "multiple of 4", NULL});
    tu_expect_trainer_config_error(CONFIG("dcgan", VIEW, DCGAN_ENC, DISC, "dcgan"),
                        (const char *[]){"model.discriminator", "no discriminator", NULL});
    tu_expect_trainer_config_error(CONFIG("bigan", VIEW, RESNET_ENC,
                               ", \"discriminator\": {\"widht\": 4}", "bigan"),
                        (const char *[]){"widht", "width", NULL});
    tu_expect_trainer_config_error(CONFIG("bigan", VIEW, RESNET_ENC,
                               ", \"discriminator\": {\"depth\": 4}", "bigan"),
                        (const char *[]){"model.discriminator", "depth", NULL});
    /* a skipped phase cannot be undone once an earlier one stepped */
    tu_expect_trainer_config_error(CONFIG_T("dcgan", VIEW, DCGAN_ENC, "", "dcgan",
                                 ", \"on_nonfinite\": \"skip\""),
                        (const char *[]){"on_nonfinite", "skip", "phases", NULL});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_outputs),
        cmocka_unit_test(test_step_noise),
        cmocka_unit_test(test_config_errors),
    };
    return tu_status(
        cmocka_run_group_tests_name("train_gan", tests, tu_tmpdir_setup, tu_tmpdir_teardown));
}
