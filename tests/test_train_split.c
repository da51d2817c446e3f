/* Evaluation settings of a run. The validation split (data.val_size): the last val_size
 * training images form split "val", training uses the rest, the two never overlap; a folder
 * (or pairs list) without the eval split is an error naming data.val_size, never the training
 * images evaluated again;
 * ssl_dataset_split_tail moves strings and refuses impossible splits; the config names the key when
 * the split cannot be made. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ssl/data.h"
#include "ssl/train.h"
#include "train/trainer_internal.h"

static void test_split_tail(void **state)
{
    (void)state;
    ssl_dataset_t *ds = ssl_dataset_synthetic(10, 1, 4, 4, 3, 7);
    assert_non_null(ds);
    ds->captions = calloc(10, sizeof(char *));
    for (int i = 0; i < 10; i++) {
        ds->captions[i] = malloc(8);
        snprintf(ds->captions[i], 8, "c%d", i);
    }
    uint8_t tail_pixels[3 * 16];
    memcpy(tail_pixels, ds->images + 7 * 16, sizeof tail_pixels);
    ssl_dataset_t *t = ssl_dataset_split_tail(ds, 3);
    assert_non_null(t);
    assert_int_equal(ds->n, 7);
    assert_int_equal(t->n, 3);
    assert_memory_equal(t->images, tail_pixels, sizeof tail_pixels);
    assert_int_equal(t->labels[0], 7 % 3);
    assert_string_equal(t->captions[2], "c9");
    assert_string_equal(ds->captions[6], "c6");
    assert_int_equal(t->n_classes, 3);
    assert_string_equal(t->class_names[1], "class1");
    /* impossible splits leave ds alone */
    assert_null(ssl_dataset_split_tail(ds, 7));
    assert_null(ssl_dataset_split_tail(ds, 0));
    assert_int_equal(ds->n, 7);
    ssl_dataset_free(t);
    ssl_dataset_free(ds);
}

static void test_val_split_disjoint(void **state)
{
    (void)state;
    ssl_run_cfg_t rc;
    memset(&rc, 0, sizeof rc);
    strcpy(rc.dataset, "synthetic");
    strcpy(rc.split, "train");
    strcpy(rc.eval_split, SSL_VAL_SPLIT);
    rc.image_size = 8;
    rc.channels = 1;
    rc.val_size = 100;
    ssl_dataset_t *all = ssl_dataset_synthetic(1024, 1, 8, 8, 10, 1); /* what "train" loads */
    ssl_dataset_t *tr = ssl__load_split(&rc, "train", 0);
    ssl_dataset_t *va = ssl__load_split(&rc, SSL_VAL_SPLIT, 0);
    ssl_dataset_t *tr_lim = ssl__load_split(&rc, "train", 50);
    assert_non_null(all);
    assert_non_null(tr);
    assert_non_null(va);
    assert_non_null(tr_lim);
    assert_int_equal(tr->n, 924);
    assert_int_equal(va->n, 100);
    assert_int_equal(tr_lim->n, 50);
    assert_memory_equal(tr->images, all->images, 924 * 64);
    assert_memory_equal(va->images, all->images + 924 * 64, 100 * 64);
    assert_memory_equal(va->labels, all->labels + 924, 100 * sizeof(int32_t));
    rc.val_size = 1024;
    assert_null(ssl__load_split(&rc, "train", 0));
    assert_non_null(strstr(ssl_last_error(), "data.val_size"));
    ssl_dataset_free(all);
    ssl_dataset_free(tr);
    ssl_dataset_free(va);
    ssl_dataset_free(tr_lim);
}

static void test_val_split_config(void **state)
{
    (void)state;
    ssl_train_opts_t o = {0};
    o.config_text = "{\"data\": {\"dataset\": \"synthetic\", \"eval_split\": \"val\"}, "
                    "\"model\": {\"encoder\": {\"type\": \"resnet18\", \"width\": 4}}, "
                    "\"loss\": {\"type\": \"infonce\"}}";
    o.no_run_dir = 1;
    assert_null(ssl_trainer_create(&o));
    assert_non_null(strstr(ssl_last_error(), "data.eval_split"));
}

/* eval.encoder "target" needs an EMA target; with one, the trainer probes it */
static void test_eval_encoder(void **state)
{
    (void)state;
    ssl_train_opts_t o = {0};
    o.config_text = "{\"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, "
                    "\"channels\": 1, \"limit\": 64}, \"train\": {\"batch_size\": 16}, \"views\": "
                    "[{\"n\": 2, \"size\": 8}], "
                    "\"model\": {\"encoder\": {\"type\": \"resnet18\", \"width\": 4, "
                    "\"in_channels\": 1}}, \"loss\": {\"type\": \"infonce\"}, "
                    "\"eval\": {\"encoder\": \"target\"}}";
    o.no_run_dir = 1;
    assert_null(ssl_trainer_create(&o));
    assert_non_null(strstr(ssl_last_error(), "eval.encoder"));
    o.config_text = "{\"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, "
                    "\"channels\": 1, \"limit\": 64}, \"train\": {\"batch_size\": 16}, \"views\": "
                    "[{\"n\": 2, \"size\": 8}], "
                    "\"model\": {\"encoder\": {\"type\": \"resnet18\", \"width\": 4, "
                    "\"in_channels\": 1}}, \"target\": {\"type\": \"ema\"}, "
                    "\"loss\": {\"type\": \"byol\"}, \"eval\": {\"encoder\": \"target\"}}";
    ssl_trainer_t *t = ssl_trainer_create(&o);
    assert_non_null(t);
    /* a target that differs from the online network shows in the features */
    ssl_ctx_t *ctx = ssl_ctx_create(1 << 24);
    ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){2, 1, 8, 8}, 3, -1, 1, 0);
    ssl_tensor_t *f1 = ssl__method_features(t->method, ctx, x);
    assert_non_null(f1);
    float before = f1->data[0];
    ssl_tensor_t *w = ssl_params_get(t->target, "target.encoder.bn1.bias");
    assert_non_null(w);
    for (int64_t i = 0; i < w->numel; i++)
        w->data[i] += 1.0f;
    ssl_tensor_t *f2 = ssl__method_features(t->method, ctx, x);
    assert_true(f2->data[0] != before);
    ssl_ctx_free(ctx);
    ssl_trainer_free(t);
}

/* A 4 x 4 24-bit BMP of one gray level. */
static void write_bmp(const char *path, uint8_t level)
{
    uint8_t h[54] = {'B', 'M', 54 + 48, 0, 0, 0, 0, 0, 0, 0,  54, 0, 0, 0, 40, 0,  0, 0, 4,
                     0,   0,   0,       4, 0, 0, 0, 1, 0, 24, 0,  0, 0, 0, 0,  48, 0, 0, 0};
    uint8_t px[48];
    memset(px, level, sizeof px);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(h, 1, sizeof h, f), sizeof h);
    assert_int_equal(fwrite(px, 1, sizeof px, f), sizeof px);
    fclose(f);
}

/* A folder of class directories and no test/: the train split is the folder; the test split is
 * an error naming data.val_size (it used to be the training images again); val works; a
 * test/ directory is used. */
static void test_folder_without_test_split(void **state)
{
    (void)state;
    char root[64] = "/tmp/ssl_split_XXXXXX", path[256];
    assert_non_null(mkdtemp(root));
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s/%c", root, 'a' + c);
        assert_int_equal(mkdir(path, 0755), 0);
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/%c/%d.bmp", root, 'a' + c, i);
            write_bmp(path, (uint8_t)(40 * c + 10 * i));
        }
    }
    ssl_run_cfg_t rc;
    memset(&rc, 0, sizeof rc);
    strcpy(rc.dataset, "folder");
    snprintf(rc.root, sizeof rc.root, "%s", root);
    strcpy(rc.split, "train");
    strcpy(rc.eval_split, "test");
    rc.image_size = 4;
    rc.channels = 1;
    ssl_dataset_t *tr = ssl__load_split(&rc, "train", 0);
    assert_non_null(tr);
    assert_int_equal(tr->n, 6);
    ssl_dataset_free(tr);
    assert_null(ssl__load_split(&rc, "test", 0));
    assert_int_equal(ssl_last_status(), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "data.val_size"));
    assert_non_null(strstr(ssl_last_error(), "/test"));
    /* the documented way out: a held-out tail */
    rc.val_size = 2;
    ssl_dataset_t *va = ssl__load_split(&rc, SSL_VAL_SPLIT, 0);
    tr = ssl__load_split(&rc, "train", 0);
    assert_non_null(va);
    assert_non_null(tr);
    assert_int_equal(va->n + tr->n, 6);
    ssl_dataset_free(va);
    ssl_dataset_free(tr);
    /* a test directory is the test split */
    rc.val_size = 0;
    snprintf(path, sizeof path, "%s/test", root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/test/a", root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/test/a/0.bmp", root);
    write_bmp(path, 200);
    ssl_dataset_t *te = ssl__load_split(&rc, "test", 0);
    assert_non_null(te);
    assert_int_equal(te->n, 1);
    ssl_dataset_free(te);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_tail),
        cmocka_unit_test(test_val_split_disjoint),
        cmocka_unit_test(test_val_split_config),
        cmocka_unit_test(test_eval_encoder),
        cmocka_unit_test(test_folder_without_test_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
