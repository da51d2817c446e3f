/* The diffusion model through the trainer (src/methods/ddpm.c): the caller's [t, eps] drive the
 * step (a level out of range and a wrong width are errors), its readout has the chosen block's
 * width and does not depend on how many images are embedded (an image's noise comes from the
 * image), its samples are images in [0, 1] that a seed fixes, and the config's mistakes name
 * their keys. Step parity against PyTorch is method_parity_ddpm / ddpm_cosine. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/data.h"
#include "ssl/io.h"
#include "ssl/train.h"

#define CONFIG_L(unet, views, loss)                                                                \
    "{\"name\": \"d\", \"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, \"channels\": "   \
    "1, \"limit\": 64, \"workers\": 0}, \"views\": [" views "], \"train\": {\"batch_size\": 8, "   \
    "\"epochs\": 1}, \"model\": {\"unet\": " unet "}, \"loss\": " loss ", \"optim\": {\"name\": "  \
    "\"adamw\", \"lr\": 0.001, \"warmup_epochs\": 0}, \"eval\": {\"knn_every\": 0}}"
#define CONFIG(unet, views) CONFIG_L(unet, views, "{\"type\": \"ddpm\", \"timesteps\": 50}")
#define VIEW "{\"n\": 1, \"size\": 8, \"normalize\": false}"
#define UNET "{\"channels\": 8, \"groups\": 4, \"readout_t\": 10, \"sample_steps\": 5}"

static ssl_trainer_t *trainer(const char *config)
{
    ssl_train_opts_t o = {0};
    o.config_text = config;
    o.no_run_dir = 1;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    if (!t)
        fail_msg("%s", ssl_last_error());
    return t;
}

static void test_step_noise(void **state)
{
    (void)state;
    double loss[3];
    for (int r = 0; r < 3; r++) {
        ssl_trainer_t *t = trainer(CONFIG(UNET, VIEW));
        float img[8 * 64], noise[8 * 65];
        for (int i = 0; i < 8 * 64; i++)
            img[i] = (float)((i * 37) % 17) / 16.0f;
        for (int b = 0; b < 8; b++) {
            noise[b * 65] = (float)(r == 2 ? 40 : 3 * b); /* the levels */
            for (int i = 0; i < 64; i++)
                noise[b * 65 + 1 + i] = sinf(0.7f * (float)(b * 64 + i));
        }
        ssl_batch_t bt = {0};
        bt.size = 8;
        bt.n_views = 1;
        bt.views[0] = (ssl_tensor_t){.ndim = 4, .shape = {8, 1, 8, 8}, .numel = 8 * 64,
                                     .data = img};
        bt.noise = noise;
        bt.noise_dim = 64;
        assert_int_equal(ssl_trainer_step(t, &bt, NULL), SSL_ERR_SHAPE);
        assert_non_null(strstr(ssl_last_error(), "1 + 64"));
        bt.noise_dim = 65;
        float keep = noise[0];
        noise[0] = 50; /* T = 50: levels 0 .. 49 */
        assert_int_equal(ssl_trainer_step(t, &bt, NULL), SSL_ERR_INVALID);
        assert_non_null(strstr(ssl_last_error(), "0 .. 49"));
        noise[0] = keep;
        assert_int_equal(ssl_trainer_step(t, &bt, &loss[r]), SSL_OK);
        ssl_trainer_free(t);
    }
    assert_true(loss[0] == loss[1]);
    assert_true(fabs(loss[0] - loss[2]) > 1e-4 * fabs(loss[0]));
}

static void test_features_and_samples(void **state)
{
    (void)state;
    char tmp[] = "/tmp/ssl_ddpm_XXXXXX";
    assert_non_null(mkdtemp(tmp));
    ssl_train_opts_t o = {0};
    o.config_text = CONFIG(UNET, VIEW);
    o.out_dir = tmp;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    assert_non_null(t);
    assert_int_equal(ssl_trainer_run(t), SSL_OK);
    ssl_trainer_free(t);
    char ckpt[300], png[2][300];
    snprintf(ckpt, sizeof ckpt, "%s/d/checkpoints/last.safetensors", tmp);
    /* the mid block's width (2 x 8); the first 10 images and the first 7: the same rows (up to
     * the summation order of batches of other sizes) */
    ssl_ckpt_features_t a, b;
    assert_int_equal(ssl_checkpoint_features(ckpt, "train", 10, &a), SSL_OK);
    assert_int_equal(ssl_checkpoint_features(ckpt, "train", 7, &b), SSL_OK);
    assert_int_equal(a.dim, 16);
    tu_assert_close(b.x, a.x, 7 * 16, 1e-6, 1e-4);
    ssl_ckpt_features_free(&a);
    ssl_ckpt_features_free(&b);
    /* samples: the same seed the same grid, another seed another */
    for (int i = 0; i < 2; i++) {
        snprintf(png[i], sizeof png[i], "%s/s%d.png", tmp, i);
        ssl_sample_opts_t so = {ckpt, png[i], 4, (uint64_t)i, 3, 2};
        assert_int_equal(ssl_sample_checkpoint(&so), SSL_OK);
    }
    ssl_sample_opts_t so = {ckpt, png[0], 4, 0, 51, 2};
    assert_int_equal(ssl_sample_checkpoint(&so), SSL_ERR_INVALID);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", png[0], png[1]);
    assert_int_not_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
}

static void test_config_errors(void **state)
{
    (void)state;
    tu_expect_trainer_config_error(
        "{\"name\": \"d\", \"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, \"channels\": "
        "1, \"limit\": 64}, \"views\": [" VIEW "], \"model\": {\"encoder\": {\"type\": "
        "\"resnet18\"}, \"unet\": " UNET "}, \"loss\": {\"type\": \"ddpm\"}}",
        (const char *[]){"model.encoder", "no encoder", "model.unet", NULL});
    tu_expect_trainer_config_error(CONFIG("{\"channels\": 7}", VIEW),
                                   (const char *[]){"channels", "even", NULL});
    tu_expect_trainer_config_error(CONFIG("{\"channels\": 12, \"groups\": 8}", VIEW),
                                   (const char *[]){"groups", "does not divide", NULL});
    tu_expect_trainer_config_error(CONFIG("{\"readout_t\": 50}", VIEW),
                                   (const char *[]){"readout_t", NULL});
    tu_expect_trainer_config_error(CONFIG("{\"readout_block\": \"d3\"}", VIEW),
                                   (const char *[]){"readout_block", NULL});
    tu_expect_trainer_config_error(CONFIG(UNET, "{\"n\": 1, \"size\": 8}"),
                                   (const char *[]){"views", "normalize", NULL});
    tu_expect_trainer_config_error(
        CONFIG_L(UNET, VIEW, "{\"type\": \"ddpm\", \"schedule\": \"cosine\", \"beta_end\": 0.1}"),
        (const char *[]){"loss.beta_end", "cosine", NULL});
    tu_expect_trainer_config_error(
        CONFIG_L(UNET, VIEW, "{\"type\": \"ddpm\", \"beta_start\": 0.1, \"beta_end\": 0.01}"),
        (const char *[]){"loss.beta_end", "below", NULL});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_noise),
        cmocka_unit_test(test_features_and_samples),
        cmocka_unit_test(test_config_errors),
    };
    return tu_status(cmocka_run_group_tests_name("train_ddpm", tests, NULL, NULL));
}
