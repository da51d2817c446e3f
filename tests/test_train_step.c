/* The caller-driven trainer (ssl_trainer_step, ssl_trainer_load_weights): a batch that does not
 * match the config's views is an error naming the view and both shapes; stepping past the
 * schedule is an error; weights load by checkpoint name and a file with a tensor no parameter
 * has, or missing one, is refused with its name; a step advances the counters. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ssl/io.h"
#include "ssl/train.h"

static const char *k_config =
    "{\"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, \"channels\": 1, \"limit\": 32, "
    "\"workers\": 0}, \"views\": [{\"n\": 2, \"size\": 8}], \"train\": {\"batch_size\": 16}, "
    "\"model\": {\"encoder\": {\"type\": \"resnet18\", \"width\": 4, \"in_channels\": 1}, "
    "\"projector\": {\"hidden_dim\": 16, \"out_dim\": 8}}, \"loss\": {\"type\": \"infonce\"}, "
    "\"eval\": {\"knn_every\": 0}}";

static ssl_trainer_t *make(void)
{
    ssl_train_opts_t o = {0};
    o.config_text = k_config;
    o.no_run_dir = 1;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    assert_non_null(t);
    return t;
}

static void fill_batch(ssl_batch_t *b, float *buf, int64_t B, int n_views, int64_t hw)
{
    memset(b, 0, sizeof *b);
    b->size = B;
    b->n_views = n_views;
    for (int v = 0; v < n_views; v++) {
        ssl_tensor_t *x = &b->views[v];
        x->ndim = 4;
        x->shape[0] = B;
        x->shape[1] = 1;
        x->shape[2] = x->shape[3] = hw;
        x->numel = B * hw * hw;
        x->data = buf + (size_t)v * (size_t)x->numel;
    }
    for (int64_t i = 0; i < (int64_t)n_views * B * hw * hw; i++)
        buf[i] = (float)((i * 7919) % 101) / 50.0f - 1.0f;
}

static void test_step_checks_batch(void **state)
{
    (void)state;
    ssl_trainer_t *t = make();
    float *buf = malloc(3 * 16 * 64 * sizeof(float));
    ssl_batch_t b;
    double loss = 0;
    fill_batch(&b, buf, 16, 1, 8);
    assert_int_not_equal(ssl_trainer_step(t, &b, &loss), SSL_OK);
    assert_non_null(strstr(ssl_last_error(), "1 views"));
    fill_batch(&b, buf, 16, 2, 8);
    b.views[1].shape[2] = 7;
    assert_int_not_equal(ssl_trainer_step(t, &b, &loss), SSL_OK);
    assert_non_null(strstr(ssl_last_error(), "view 1 is (16, 1, 7, 8)"));
    assert_non_null(strstr(ssl_last_error(), "expected (16, 1, 8, 8)"));
    assert_int_equal(ssl_trainer_global_step(t), 0);
    /* two good steps fill the schedule (32 images / 16), a third is refused */
    fill_batch(&b, buf, 16, 2, 8);
    assert_int_equal(ssl_trainer_total_steps(t), 2);
    assert_int_equal(ssl_trainer_step(t, &b, &loss), SSL_OK);
    assert_true(loss > 0);
    assert_int_equal(ssl_trainer_step(t, &b, &loss), SSL_OK);
    assert_int_equal(ssl_trainer_global_step(t), 2);
    assert_int_not_equal(ssl_trainer_step(t, &b, &loss), SSL_OK);
    assert_non_null(strstr(ssl_last_error(), "all 2 steps"));
    free(buf);
    ssl_trainer_free(t);
}

static void test_load_weights(void **state)
{
    (void)state;
    ssl_trainer_t *a = make(), *b = make();
    char path[64];
    snprintf(path, sizeof path, "/tmp/ssl_weights_%d.safetensors", (int)getpid());
    /* a's weights, changed, saved under a prefix; b loads them and has the same */
    ssl_params_t *pa = ssl_trainer_params(a, 0);
    ssl_tensor_t *w = ssl_params_get(pa, "encoder.conv1.weight");
    assert_non_null(w);
    for (int64_t i = 0; i < w->numel; i++)
        w->data[i] = 0.25f * (float)i;
    assert_int_equal(ssl_st_save_params(path, pa, "init.", NULL, 0), SSL_OK);
    assert_int_equal(ssl_trainer_load_weights(b, path, "init."), SSL_OK);
    ssl_tensor_t *wb = ssl_params_get(ssl_trainer_params(b, 0), "encoder.conv1.weight");
    assert_memory_equal(wb->data, w->data, (size_t)w->numel * sizeof(float));
    /* under another prefix nothing matches: every parameter is missing */
    assert_int_not_equal(ssl_trainer_load_weights(b, path, "other."), SSL_OK);
    assert_non_null(strstr(ssl_last_error(), "missing"));
    /* a tensor under the prefix that no parameter has is named */
    ssl_st_writer_t *wr = ssl_st_writer_create();
    float extra[2] = {1, 2};
    assert_int_equal(ssl_st_writer_add_params(wr, pa, "init."), SSL_OK);
    assert_int_equal(ssl_st_writer_add(wr, "init.encoder.bogus", 1, (int64_t[]){2}, extra), SSL_OK);
    assert_int_equal(ssl_st_writer_save(wr, path), SSL_OK);
    ssl_st_writer_free(wr);
    assert_int_not_equal(ssl_trainer_load_weights(b, path, "init."), SSL_OK);
    assert_non_null(strstr(ssl_last_error(), "init.encoder.bogus"));
    unlink(path);
    ssl_trainer_free(a);
    ssl_trainer_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_checks_batch),
        cmocka_unit_test(test_load_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
