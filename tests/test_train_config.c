/* Run config strings and lists that cannot be honoured are errors naming the key (issue 17):
 * an empty or too long name (an empty one gave the run directory "-2"), data.root over 511
 * bytes and data.split over 15 (they were cut silently), an empty views list (it trained with
 * the default views). ssl_trainer_create must fail with SSL_ERR_CONFIG before reading any data,
 * so no dataset is needed. */
#include "testutil.h"

#include "ssl/ssl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A small SwAV run on synthetic images (no files): method settings that cannot be honoured. */
static const char *k_swav =
    "{\"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, \"channels\": 1, \"limit\": 32, "
    "\"workers\": 0}, \"views\": [{\"n\": 2, \"size\": 8}], \"train\": {\"batch_size\": 16}, "
    "\"model\": {\"encoder\": {\"type\": \"resnet18\", \"width\": 4, \"in_channels\": 1}, "
    "\"projector\": {\"type\": \"swav_projector\", \"hidden_dim\": 16, \"out_dim\": 8}, "
    "\"head\": {\"n_prototypes\": 10}}, \"loss\": {\"type\": \"swav\"}, "
    "\"eval\": {\"knn_every\": 0}}";

/* The config (text, or NULL: simclr.json) with one override: NULL trainer, SSL_ERR_CONFIG, a
 * message holding each needle. */
static void expect_error_in(const char *text, const char *override, const char *key,
                            const char *why)
{
    ssl_train_opts_t o;
    memset(&o, 0, sizeof o);
    if (text)
        o.config_text = text;
    else
        o.config_path = SSL_SOURCE_DIR "/configs/simclr.json";
    o.overrides = &override;
    o.n_overrides = 1;
    o.no_run_dir = 1;
    ssl_clear_error();
    tu_assert_error(ssl_trainer_create(&o), SSL_ERR_CONFIG, key, why, NULL);
}

/* The config text with one override makes a trainer. */
static void expect_ok_in(const char *text, const char *override)
{
    ssl_train_opts_t o;
    memset(&o, 0, sizeof o);
    o.config_text = text;
    o.overrides = &override;
    o.n_overrides = 1;
    o.no_run_dir = 1;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    assert_non_null(t);
    ssl_trainer_free(t);
}

static void expect_config_error(const char *override, const char *key, const char *why)
{
    expect_error_in(NULL, override, key, why);
}

static void test_strings_never_cut(void **state)
{
    (void)state;
    char buf[700];
    expect_config_error("name=\"\"", "'name'", "must not be empty");
    snprintf(buf, sizeof buf, "name=%064d", 7);
    expect_config_error(buf, "'name'", "64 bytes long, more than the 63 allowed");
    snprintf(buf, sizeof buf, "data.root=/%0600d", 1);
    expect_config_error(buf, "'data.root'", "601 bytes long, more than the 511 allowed");
    snprintf(buf, sizeof buf, "data.split=%016d", 2);
    expect_config_error(buf, "'data.split'", "more than the 15 allowed");
    expect_config_error("data.eval_split=\"\"", "'data.eval_split'", "must not be empty");
}

static void test_empty_views(void **state)
{
    (void)state;
    expect_config_error("views=[]", "'views'", "is empty");
}

/* SwAV's queue shifts whole batches (main_swav.py rounds queue_length down to a multiple of the
 * batch; a config asking for another length is refused), and codes come only from crops the
 * views section makes (a crop beyond the global ones was cut silently). */
static void test_swav_settings(void **state)
{
    (void)state;
    expect_error_in(k_swav, "loss.queue_length=24", "'loss.queue_length'",
                    "not a multiple of train.batch_size 16");
    expect_error_in(k_swav, "loss.crops_for_assign=[0, 2]", "'loss.crops_for_assign'",
                    "crop 2, but the views section makes 2 crops");
    expect_ok_in(k_swav, "loss.queue_length=32");
}

/* A call's status and message: the status, and each needle in the message. */
static void expect_status(int st, int want, const char *n1, const char *n2)
{
    assert_int_equal(st, want);
    const char *m = ssl_last_error();
    if (!strstr(m, n1) || (n2 && !strstr(m, n2)))
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", m, n1, n2 ? n2 : "");
}

/* A batch of two 8 x 8 views of 16 samples (free the returned pixels). */
static float *two_views(ssl_batch_t *b)
{
    float *x = calloc(2 * 16 * 64, sizeof(float));
    assert_non_null(x);
    for (int i = 0; i < 2 * 16 * 64; i++)
        x[i] = (float)((i * 7919) % 13) / 13.0f;
    memset(b, 0, sizeof *b);
    b->size = 16;
    b->n_views = 2;
    for (int v = 0; v < 2; v++)
        b->views[v] = (ssl_tensor_t){
            .ndim = 4, .shape = {16, 1, 8, 8}, .numel = 16 * 64, .data = x + v * 16 * 64};
    return x;
}

/* DeepCluster-v2 on the SwAV run's data: 2 steps of 16, a memory bank of 32 samples. */
static const char *k_dcv2 =
    "{\"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, \"channels\": 1, \"limit\": 32, "
    "\"workers\": 0}, \"views\": [{\"n\": 2, \"size\": 8}], \"train\": {\"batch_size\": 16}, "
    "\"model\": {\"encoder\": {\"type\": \"resnet18\", \"width\": 4, \"in_channels\": 1}, "
    "\"projector\": {\"type\": \"swav_projector\", \"hidden_dim\": 16, \"out_dim\": 8}}, "
    "\"loss\": {\"type\": \"deepclusterv2\", \"n_prototypes\": [10, 10]}, "
    "\"eval\": {\"knn_every\": 0}}";

/* k-means cannot make more clusters than the memory bank holds samples (the official code
 * asserts), and the banks come from crops the views section makes; a step before the pass that
 * fills the bank is refused, naming the call that fills it. */
static void test_deepclusterv2_settings(void **state)
{
    (void)state;
    expect_error_in(k_dcv2, "loss.n_prototypes=[10, 33]", "'loss.n_prototypes'",
                    "33 clusters, but the memory bank holds 32 samples");
    expect_error_in(k_dcv2, "loss.crops_for_assign=[2]", "'loss.crops_for_assign'",
                    "crop 2, but the views section makes 2 crops");
    expect_error_in(k_dcv2, "model.head={}", "'model.head'", "no head");
    ssl_train_opts_t o;
    memset(&o, 0, sizeof o);
    o.config_text = k_dcv2;
    o.no_run_dir = 1;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    assert_non_null(t);
    assert_int_equal(ssl_trainer_observes(t), 1);
    int64_t idx[16];
    for (int i = 0; i < 16; i++)
        idx[i] = i;
    ssl_batch_t b;
    float *x = two_views(&b);
    b.indices = idx;
    expect_status(ssl_trainer_step(t, &b, NULL), SSL_ERR_STATE, "32 of the memory bank's 32",
                  "ssl_trainer_observe");
    b.indices = NULL;
    expect_status(ssl_trainer_observe(t, &b), SSL_ERR_INVALID, "dataset indices", NULL);
    b.indices = idx;
    b.index = 2;
    expect_status(ssl_trainer_observe(t, &b), SSL_ERR_INVALID, "batch 2", NULL);
    /* the pass's first batch fills half the bank: still refused, naming how many are empty */
    b.index = 0;
    assert_int_equal(ssl_trainer_observe(t, &b), SSL_OK);
    expect_status(ssl_trainer_step(t, &b, NULL), SSL_ERR_STATE, "16 of the memory bank's 32", NULL);
    b.index = 1;
    assert_int_equal(ssl_trainer_observe(t, &b), SSL_OK);
    assert_int_equal(ssl_trainer_step(t, &b, NULL), SSL_OK);
    free(x);
    ssl_trainer_free(t);
}

/* data2vec on a tiny ViT (a 4 x 4 token grid of 8-pixel images, 2 blocks). */
static const char *k_data2vec =
    "{\"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, \"channels\": 1, \"limit\": 32, "
    "\"workers\": 0}, \"views\": [{\"n\": 1, \"size\": 8}], \"train\": {\"batch_size\": 16}, "
    "\"model\": {\"encoder\": {\"type\": \"vit\", \"image_size\": 8, \"patch_size\": 2, "
    "\"in_channels\": 1, \"dim\": 8, \"depth\": 2, \"heads\": 2}}, "
    "\"target\": {\"type\": \"ema\", \"momentum\": 0.999, \"momentum_end\": 0.9999, "
    "\"schedule\": \"linear\"}, \"masks\": {\"type\": \"blockwise\", \"ratio\": 0.6}, "
    "\"loss\": {\"type\": \"data2vec\", \"top_k\": 2}, \"eval\": {\"knn_every\": 0}}";

/* What data2vec cannot honour names its key. */
static void test_data2vec_settings(void **state)
{
    (void)state;
    expect_error_in(k_data2vec, "loss.top_k=3", "'loss.top_k'", "depth 2");
    expect_error_in(k_data2vec, "target.type=\"none\"", "'target.type'", "'ema' target");
    expect_error_in(k_data2vec, "model.encoder={\"type\": \"resnet18\", \"width\": 4, "
                    "\"in_channels\": 1}", "'model.encoder.type'", "ViT");
    expect_error_in(k_data2vec, "model.head={\"type\": \"dino\"}", "'model.head'",
                    "no head");
    expect_error_in(k_data2vec, "masks={\"type\": \"ibot\"}", "masks.type", "token-dropping");
    expect_error_in(k_data2vec, "loss=[{\"type\": \"data2vec\"}, {\"type\": \"byol\"}]",
                    "'loss'", "weighted list");
    ssl_train_opts_t o;
    memset(&o, 0, sizeof o);
    o.config_text = k_data2vec;
    o.no_run_dir = 1;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    assert_non_null(t);
    ssl_trainer_free(t);
}

/* eval.blocks reads several ViT blocks: a ResNet has none, a ViT no more than its depth. */
static void test_eval_blocks(void **state)
{
    (void)state;
    expect_config_error("eval.blocks=2", "'eval.blocks'",
                        "needs a ViT or dcgan encoder (model.encoder is a ResNet)");
    expect_error_in(k_data2vec, "eval.blocks=3", "'eval.blocks'", "model.encoder depth 2");
    expect_error_in(k_data2vec, "eval.blocks=0", "'eval.blocks'", "0");
    expect_ok_in(k_data2vec, "eval.blocks=2");
}

/* What MaskFeat cannot honour names its key; one step trains. */
static void test_maskfeat_settings(void **state)
{
    (void)state;
    /* data2vec's tiny ViT (patch 2) and masks, without the target, with the maskfeat loss */
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "%s", k_data2vec);
    char *t = strstr(cfg, "\"target\""), *e = strstr(cfg, "\"masks\"");
    assert_non_null(t);
    assert_non_null(e);
    memmove(t, e, strlen(e) + 1); /* drop the target section */
    const char *d2v = "{\"type\": \"data2vec\", \"top_k\": 2}", *mf = "{\"type\": \"maskfeat\"}";
    char *l = strstr(cfg, d2v);
    assert_non_null(l);
    memmove(l + strlen(mf), l + strlen(d2v), strlen(l + strlen(d2v)) + 1);
    memcpy(l, mf, strlen(mf));
    expect_error_in(cfg, "loss.cell=4", "'loss.cell'", "must divide model.encoder.patch_size 2");
    expect_error_in(cfg, "loss.nbins=400", "'loss.nbins'", NULL);
    expect_error_in(cfg, "target={\"type\": \"ema\"}", "'target.type'",
                    "uses no target network");
    expect_error_in(cfg, "masks={\"type\": \"multiblock\"}", "masks.type", "token-dropping");
    ssl_train_opts_t o;
    memset(&o, 0, sizeof o);
    o.config_text = cfg;
    o.no_run_dir = 1;
    ssl_trainer_t *tr = ssl_trainer_create(&o);
    assert_non_null(tr);
    ssl_trainer_free(tr);
}

/* iBOT on a tiny ViT (a 2 x 2 token grid of 8-pixel images): dino + ibot terms. */
static const char *k_ibot =
    "{\"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, \"channels\": 1, \"limit\": 32, "
    "\"workers\": 0}, \"views\": [{\"n\": 2, \"size\": 8}], \"train\": {\"batch_size\": 16}, "
    "\"model\": {\"encoder\": {\"type\": \"vit\", \"image_size\": 8, \"patch_size\": 4, "
    "\"in_channels\": 1, \"dim\": 8, \"depth\": 1, \"heads\": 2}, "
    "\"head\": {\"hidden_dim\": 8, \"bottleneck_dim\": 4, \"out_dim\": 16}}, "
    "\"target\": {\"type\": \"ema\"}, \"loss\": [{\"type\": \"dino\"}, {\"type\": \"ibot\"}], "
    "\"eval\": {\"knn_every\": 0}}";

/* What iBOT cannot honour names its key; a step needs iBOT's masks, and one whose batch has no
 * masked token trains on the class-token term alone. */
static void test_ibot_settings(void **state)
{
    (void)state;
    expect_error_in(k_ibot, "model.encoder.cls_token=false", "'model.encoder.cls_token'",
                    "class token");
    expect_error_in(k_ibot, "model.head.use_bn=true", "'model.head.use_bn'", "no BatchNorm");
    expect_error_in(k_ibot, "loss=[{\"type\": \"ibot\"}, {\"type\": \"infonce\"}]", "'loss'",
                    "combines dino, ibot and koleo terms");
    expect_error_in(k_ibot, "loss=[{\"type\": \"ibot\"}, {\"type\": \"ibot\"}]", "'loss'",
                    "listed twice");
    expect_error_in(k_ibot, "loss=[{\"type\": \"dino\", \"shared_head\": true}, "
                    "{\"type\": \"ibot\"}]", "'loss[0].shared_head'", "only used with");
    expect_error_in(k_ibot, "masks={\"type\": \"random\"}", "masks.type", "'ibot' masks");
    expect_error_in(k_ibot, "masks={\"type\": \"ibot\", \"prob\": 0}", "'masks.prob'", NULL);
    /* KoLeo joins a list with an ibot term (DINOv2-style); without one the list is DINO's,
     * which composes no lists */
    expect_error_in(k_ibot, "loss=[{\"type\": \"dino\"}, {\"type\": \"koleo\"}]", "'loss'",
                    "with an ibot term");
    ssl_train_opts_t o;
    memset(&o, 0, sizeof o);
    o.config_text = k_ibot;
    o.no_run_dir = 1;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    assert_non_null(t);
    ssl_batch_t b;
    float *x = two_views(&b);
    expect_status(ssl_trainer_step(t, &b, NULL), SSL_ERR_STATE, "no masks", NULL);
    ssl_masks_t mk;
    memset(&mk, 0, sizeof mk);
    int32_t masked[2 * 16 * 4] = {0}, counts[2 * 16] = {0};
    mk.kind = SSL_MASK_IBOT;
    mk.batch = mk.capacity_batch = 16;
    mk.tokens = 4;
    mk.n_masked = 2 * 4; /* rows (b, v) of 4 tokens */
    mk.n_views = 2;
    mk.masked = masked;
    mk.counts = counts;
    b.masks = &mk;
    double loss = 0;
    assert_int_equal(ssl_trainer_step(t, &b, &loss), SSL_OK); /* no masked token at all */
    assert_true(isfinite(loss));
    counts[3] = 2; /* sample 1's second view (row b 2 + v): tokens 0 and 1 */
    masked[3 * 4 + 1] = 1;
    assert_int_equal(ssl_trainer_step(t, &b, &loss), SSL_OK);
    assert_true(isfinite(loss));
    free(x);
    ssl_trainer_free(t);
}

/* Split BatchNorm's groups must divide the batch (each group a whole share of it). */
/* every masks key belongs to the kinds whose generator reads it: another kind's key is an error
 * naming it (it used to be read and ignored), and the generator's own errors name masks.KEY */
static void expect_in_config(const char *config, const char *override, const char *key,
                             const char *why)
{
    ssl_train_opts_t o;
    memset(&o, 0, sizeof o);
    o.config_path = config;
    o.overrides = &override;
    o.n_overrides = 1;
    o.no_run_dir = 1;
    ssl_clear_error();
    tu_assert_error(ssl_trainer_create(&o), SSL_ERR_CONFIG, key, why, NULL);
}

static void test_mask_keys_per_kind(void **state)
{
    (void)state;
    const char *mae = SSL_SOURCE_DIR "/configs/mae.json";
    const char *ijepa = SSL_SOURCE_DIR "/configs/ijepa.json";
    expect_in_config(mae, "masks.ratio_var=0.1", "'masks.ratio_var'",
                     "is not used by masks.type \"random\" (its keys: ratio)");
    expect_in_config(mae, "masks.n_targets=4", "'masks.n_targets'", "not used by");
    expect_in_config(ijepa, "masks.ratio=0.5", "'masks.ratio'",
                     "not used by masks.type \"multiblock\"");
    expect_in_config(ijepa, "masks.min_keep=100000", "masks.min_keep", "must be in [1, 49)");
    expect_config_error("masks={\"type\": \"none\", \"ratio\": 0.5}", "'masks.ratio'",
                        "it has no keys: set masks.type");
}

static void test_bn_groups(void **state)
{
    (void)state;
    expect_error_in(k_swav, "model.encoder.bn_groups=3", "'model.encoder.bn_groups'",
                    "3 does not divide train.batch_size 16");
    expect_error_in(k_swav, "model.encoder.bn_groups=65", "'model.encoder.bn_groups'", "64");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings_never_cut),      cmocka_unit_test(test_empty_views),
        cmocka_unit_test(test_swav_settings),          cmocka_unit_test(test_bn_groups),
        cmocka_unit_test(test_deepclusterv2_settings), cmocka_unit_test(test_ibot_settings),
        cmocka_unit_test(test_data2vec_settings),
        cmocka_unit_test(test_eval_blocks),
        cmocka_unit_test(test_maskfeat_settings),
        cmocka_unit_test(test_mask_keys_per_kind),
    };
    return tu_status(cmocka_run_group_tests(tests, NULL, NULL));
}
