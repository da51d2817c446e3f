/* The VQ tokenizer and BEiT through the trainer (src/methods/vqvae.c, src/methods/beit.c): a
 * tokenizer run logs its loss parts, the eval split's reconstruction error and code use, and
 * reconstructions (no samples); its features are the pooled pre-quantisation outputs. BEiT
 * trains on a tokenizer checkpoint, keeps it out of its own checkpoint, and that checkpoint
 * gives features without the tokenizer file. The configs' mistakes name their keys. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/io.h"
#include "ssl/train.h"

#define DATA                                                                                       \
    "\"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, \"channels\": 1, \"limit\": 80, "  \
    "\"val_size\": 32, \"eval_split\": \"val\", \"workers\": 0}, "
#define VIT(patch)                                                                                 \
    "{\"type\": \"vit\", \"image_size\": 8, \"patch_size\": " patch ", \"in_channels\": 1, "      \
    "\"dim\": 16, \"depth\": 1, \"heads\": 2}"
#define TOK_CONFIG(views, enc, head, extra)                                                        \
    "{\"name\": \"tok\", " DATA "\"views\": [" views "], \"train\": {\"batch_size\": 16, "         \
    "\"epochs\": 2}, \"model\": {\"encoder\": " enc ", \"head\": " head "}, \"loss\": {\"type\": " \
    "\"vqvae\", \"beta\": 0.25}, \"optim\": {\"name\": \"adamw\", \"base_lr\": 0.01}, \"eval\": "  \
    "{\"knn_every\": 0, \"knn_test_limit\": 16" extra "}}"
#define BEIT_CONFIG(views, tokenizer)                                                              \
    "{\"name\": \"beit\", " DATA "\"views\": [" views "], \"train\": {\"batch_size\": 16, "        \
    "\"epochs\": 1, \"max_steps\": 1}, \"model\": {\"encoder\": " VIT("4") tokenizer "}, "         \
    "\"loss\": {\"type\": \"beit\"}, \"masks\": {\"type\": \"blockwise\", \"ratio\": 0.5, "       \
    "\"min_block\": 1}, \"optim\": {\"name\": \"adamw\", \"base_lr\": 0.01}, \"eval\": "          \
    "{\"knn_every\": 0}}"
#define TOK ", \"tokenizer\": {\"checkpoint\": \"x\"}"
#define VIEW "{\"n\": 1, \"size\": 8, \"normalize\": false}"
#define HEAD "{\"codebook_size\": 6, \"code_dim\": 3, \"channels\": 4}"

static char g_tmp[256], g_tok[400];

static int setup(void **state)
{
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ssl_beit_XXXXXX");
    if (!mkdtemp(g_tmp))
        return -1;
    snprintf(g_tok, sizeof g_tok, "%s/tok/checkpoints/last.safetensors", g_tmp);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* the test metrics the trainer reports to its progress callback at each epoch's end */
typedef struct epoch_metrics {
    int epochs;
    ssl_loss_parts_t m[4];
} epoch_metrics_t;

static void on_progress(const ssl_train_progress_t *p, void *user)
{
    epoch_metrics_t *e = user;
    if (p->epoch_done && e->epochs < 4)
        e->m[e->epochs++] = p->test_metrics;
}

static ssl_trainer_t *create_cb(const char *config, const char *const *sets, int n,
                                int run_dir, epoch_metrics_t *em)
{
    ssl_train_opts_t o = {0};
    if (em) {
        o.progress = on_progress;
        o.user = em;
    }
    o.config_text = config;
    o.overrides = sets;
    o.n_overrides = n;
    if (run_dir)
        o.out_dir = g_tmp;
    else
        o.no_run_dir = 1;
    return ssl_trainer_create(&o);
}

static ssl_trainer_t *create(const char *config, const char *const *sets, int n, int run_dir)
{
    return create_cb(config, sets, n, run_dir, NULL);
}

/* two epochs (3 steps each) of the tokenizer into g_tmp/tok */
static epoch_metrics_t g_tok_metrics;

static void train_tokenizer(void)
{
    static int done;
    if (done++)
        return;
    ssl_trainer_t *t =
        create_cb(TOK_CONFIG(VIEW, VIT("4"), HEAD, ""), NULL, 0, 1, &g_tok_metrics);
    if (!t)
        fail_msg("%s", ssl_last_error());
    assert_int_equal(ssl_trainer_run(t), SSL_OK);
    ssl_trainer_free(t);
}

/* metrics.jsonl: loss = rec + codebook + 0.25 commit (codebook and commit equal in value) at
 * the log points; per epoch test_rec_mse > 0, 1 <= test_perplexity <= test_codes_used <= 6
 * codes over test_images 16 then 32, the same values in the progress callback (what sslc train
 * prints); the recon picture, no samples; features of 3 dims */
static void test_tokenizer_run(void **state)
{
    (void)state;
    train_tokenizer();
    char path[400];
    snprintf(path, sizeof path, "%s/tok/metrics.jsonl", g_tmp);
    ssl_run_log_t rl;
    assert_int_equal(ssl_run_log_read(path, &rl), SSL_OK);
    int cl = ssl_run_log_key(&rl, "loss"), cr = ssl_run_log_key(&rl, "loss_rec");
    int cc = ssl_run_log_key(&rl, "loss_codebook"), cm = ssl_run_log_key(&rl, "loss_commit");
    int tr = ssl_run_log_key(&rl, "test_rec_mse"), tp = ssl_run_log_key(&rl, "test_perplexity");
    int tu = ssl_run_log_key(&rl, "test_codes_used"), ti = ssl_run_log_key(&rl, "test_images");
    assert_true(cl >= 0 && cr >= 0 && cc >= 0 && cm >= 0 && tr >= 0 && tp >= 0 && tu >= 0);
    assert_true(ti >= 0 && ssl_run_log_key(&rl, "test_nll") < 0);
    int steps = 0, epochs = 0;
    for (int64_t i = 0; i < rl.n_rows; i++) {
        const double *r = rl.values + i * SSL_RUN_LOG_MAX_KEYS;
        if (isfinite(r[cl])) {
            steps++;
            assert_true(fabs(r[cl] - (r[cr] + r[cc] + 0.25 * r[cm])) <= 1e-4 * fabs(r[cl]));
            assert_true(fabs(r[cc] - r[cm]) <= 1e-6 * r[cc] && r[cc] > 0 && r[cr] > 0);
        }
        if (isfinite(r[tp])) {
            epochs++;
            assert_int_equal((int)r[ti], epochs == 1 ? 16 : 32);
            assert_true(r[tr] > 0 && r[tr] < 1);
            assert_true(r[tp] >= 1 - 1e-6 && r[tp] <= r[tu] + 1e-4 && r[tu] <= 6);
            assert_true(epochs <= g_tok_metrics.epochs);
            const ssl_loss_parts_t *pm = &g_tok_metrics.m[epochs - 1];
            assert_int_equal(pm->n, 3);
            const int col[3] = {tr, tp, tu};
            const char *name[3] = {"rec_mse", "perplexity", "codes_used"};
            for (int k = 0; k < 3; k++) {
                assert_string_equal(pm->name[k], name[k]);
                assert_true(fabs(pm->value[k] - r[col[k]]) <= 1e-5 * fabs(r[col[k]]) + 1e-7);
            }
        }
    }
    assert_true(steps >= 1);
    assert_int_equal(epochs, 2);
    assert_int_equal(g_tok_metrics.epochs, 2);
    ssl_run_log_free(&rl);
    snprintf(path, sizeof path, "%s/tok/pictures/epoch-002-recon.png", g_tmp);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/tok/pictures/epoch-002-samples.png", g_tmp);
    assert_null(fopen(path, "rb"));
    /* sslc sample: no samples to draw */
    snprintf(path, sizeof path, "%s/samples.png", g_tmp);
    ssl_sample_opts_t so = {0};
    so.checkpoint = g_tok;
    so.out_path = path;
    assert_int_equal(ssl_sample_checkpoint(&so), SSL_ERR_UNSUPPORTED);
    assert_non_null(strstr(ssl_last_error(), "no samples"));
    ssl_ckpt_features_t f;
    assert_int_equal(ssl_checkpoint_features(g_tok, NULL, 20, &f), SSL_OK);
    assert_int_equal(f.n, 20);
    assert_int_equal(f.dim, 3);
    ssl_ckpt_features_free(&f);
}

/* BEiT on the tokenizer: trains, its checkpoint holds head (6 codes x 16) and no tokenizer
 * tensor, and gives the encoder's features with the tokenizer file gone */
static void train_beit(void)
{
    static int done;
    if (done++)
        return;
    train_tokenizer();
    char set[600];
    snprintf(set, sizeof set, "model.tokenizer.checkpoint=%s", g_tok);
    const char *sets[] = {set};
    ssl_trainer_t *t = create(BEIT_CONFIG(VIEW, TOK), sets, 1, 1);
    if (!t)
        fail_msg("%s", ssl_last_error());
    assert_int_equal(ssl_trainer_run(t), SSL_OK);
    ssl_trainer_free(t);
}

static void test_beit_run(void **state)
{
    (void)state;
    train_beit();
    char ckpt[400], moved[420];
    snprintf(ckpt, sizeof ckpt, "%s/beit/checkpoints/last.safetensors", g_tmp);
    ssl_st_t *f = ssl_st_open(ckpt);
    assert_non_null(f);
    int h = ssl_st_find(f, "head.weight");
    assert_true(h >= 0);
    assert_int_equal(ssl_st_tensor(f, h)->shape[0], 6);
    for (int i = 0; i < ssl_st_count(f); i++)
        if (strstr(ssl_st_tensor(f, i)->name, "codebook") ||
            strstr(ssl_st_tensor(f, i)->name, "code_usage") ||
            strstr(ssl_st_tensor(f, i)->name, "tokenizer"))
            fail_msg("the beit checkpoint holds %s", ssl_st_tensor(f, i)->name);
    ssl_st_close(f);
    snprintf(moved, sizeof moved, "%s.away", g_tok);
    assert_int_equal(rename(g_tok, moved), 0);
    ssl_ckpt_features_t feat;
    int st = ssl_checkpoint_features(ckpt, NULL, 10, &feat);
    assert_int_equal(rename(moved, g_tok), 0);
    if (st != SSL_OK)
        fail_msg("%s", ssl_last_error());
    assert_int_equal(feat.dim, 16);
    ssl_ckpt_features_free(&feat);
}

static void expect_error(const char *config, const char *set, const char *const *needles)
{
    const char *sets[] = {set};
    ssl_trainer_t *t = create(config, sets, set ? 1 : 0, 0);
    if (t)
        fail_msg("config accepted: %s", config);
    for (int i = 0; needles[i]; i++)
        if (!strstr(ssl_last_error(), needles[i]))
            fail_msg("'%s' lacks '%s'", ssl_last_error(), needles[i]);
}

static void test_config_errors(void **state)
{
    (void)state;
    train_tokenizer();
    expect_error(TOK_CONFIG("{\"n\": 1, \"size\": 8}", VIT("4"), HEAD, ""), NULL,
                 (const char *[]){"views", "normalize", NULL});
    expect_error(TOK_CONFIG(VIEW, VIT("2"), HEAD, ""), NULL,
                 (const char *[]){"model.encoder.patch_size", "4x", NULL});
    expect_error(TOK_CONFIG(VIEW, VIT("4"), "{\"codebok_size\": 6}", ""), NULL,
                 (const char *[]){"codebok_size", "codebook_size", NULL});
    expect_error(TOK_CONFIG(VIEW, VIT("4"), "{\"channels\": 5}", ""), NULL,
                 (const char *[]){"channels", "odd", NULL});
    expect_error(TOK_CONFIG(VIEW, VIT("4"), "{\"restart_decay\": 1}", ""), NULL,
                 (const char *[]){"model.head.restart_decay", NULL});
    expect_error(TOK_CONFIG(VIEW, VIT("4"), "{\"restart_below\": 2}", ""), NULL,
                 (const char *[]){"model.head.restart_below", NULL});
    expect_error(TOK_CONFIG(VIEW, VIT("4"), HEAD, ", \"blocks\": 2"), NULL,
                 (const char *[]){"eval.blocks", NULL});
    char set[600];
    snprintf(set, sizeof set, "model.tokenizer.checkpoint=%s", g_tok);
    expect_error(BEIT_CONFIG(VIEW, ""), NULL, (const char *[]){"model.tokenizer", NULL});
    expect_error(BEIT_CONFIG(VIEW, ", \"tokenizer\": {}"), NULL,
                 (const char *[]){"model.tokenizer.checkpoint", NULL});
    expect_error(BEIT_CONFIG(VIEW, ", \"tokenizer\": {\"chekpoint\": \"x\"}"), NULL,
                 (const char *[]){"chekpoint", "checkpoint", NULL});
    expect_error(BEIT_CONFIG(VIEW, TOK), "model.tokenizer.checkpoint=/nonexistent.safetensors",
                 (const char *[]){"model.tokenizer.checkpoint", "/nonexistent.safetensors",
                                  NULL});
    expect_error(BEIT_CONFIG("{\"n\": 1, \"size\": 8}", TOK), set,
                 (const char *[]){"views", "normalize", NULL});
    /* a checkpoint of another method: a BEiT run's own (test_beit_run) or a tokenizer of
     * another patch grid */
    char other[600];
    snprintf(other, sizeof other, "model.tokenizer.checkpoint=%s/beit/checkpoints/last.safetensors",
             g_tmp);
    train_beit();
    expect_error(BEIT_CONFIG(VIEW, TOK), other,
                 (const char *[]){"model.tokenizer.checkpoint", "'beit' run", "vqvae", NULL});
    ssl_trainer_t *t = create(
        "{\"name\": \"tok16\", \"data\": {\"dataset\": \"synthetic\", \"image_size\": 16, "
        "\"channels\": 1, \"limit\": 32, \"val_size\": 16, \"eval_split\": \"val\", "
        "\"workers\": 0}, \"views\": [{\"n\": 1, \"size\": 16, \"normalize\": false}], "
        "\"train\": {\"batch_size\": 16, \"epochs\": 1, \"max_steps\": 1}, \"model\": "
        "{\"encoder\": {\"type\": \"vit\", \"image_size\": 16, \"patch_size\": 4, "
        "\"in_channels\": 1, \"dim\": 16, \"depth\": 1, \"heads\": 2}, \"head\": " HEAD "}, "
        "\"loss\": {\"type\": \"vqvae\"}, \"eval\": {\"knn_every\": 0}}",
        NULL, 0, 1);
    if (!t)
        fail_msg("%s", ssl_last_error());
    assert_non_null(t);
    assert_int_equal(ssl_trainer_run(t), SSL_OK);
    ssl_trainer_free(t);
    snprintf(other, sizeof other,
             "model.tokenizer.checkpoint=%s/tok16/checkpoints/last.safetensors", g_tmp);
    expect_error(BEIT_CONFIG(VIEW, TOK), other,
                 (const char *[]){"model.tokenizer.checkpoint", "16-pixel", "patch grid", NULL});
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer_run),
        cmocka_unit_test(test_beit_run),
        cmocka_unit_test(test_config_errors),
    };
    return tu_status(cmocka_run_group_tests_name("train_beit", tests, setup, teardown));
}
