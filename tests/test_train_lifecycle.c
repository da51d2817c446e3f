/* The training run's lifecycle (issue 17): a stop request saves a mid-epoch checkpoint and the
 * resumed chain equals the uninterrupted run byte for byte (BYOL-like EMA + predictor, MoCo
 * queue, DINO center with multi-crop); checkpoint.every_steps; a skipped non-finite step leaves
 * the buffers (BN statistics) as they were and an epoch of mostly skipped steps fails; a
 * metrics.jsonl that cannot be written is an error; metrics lines are read with a length limit
 * and repaired on resume; the run directory is claimed with mkdir and locked; resume tidies
 * temporary and surplus epoch files and names an epoch-N checkpoint when last is missing. */
#define _DEFAULT_SOURCE /* mkdtemp, symlink */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_internal.h"
#include "ssl/io.h"
#include "ssl/train.h"
#include "train/run_dir.h"
#include "train/trainer_internal.h"

#define DATA                                                                                       \
    "\"data\": {\"dataset\": \"synthetic\", \"image_size\": 8, \"channels\": 1, \"limit\": 64, "   \
    "\"workers\": 1}, \"train\": {\"batch_size\": 16, \"epochs\": 2, \"log_every\": 1}, "          \
    "\"eval\": {\"knn_every\": 0}, "
#define ENC "\"encoder\": {\"type\": \"resnet18\", \"width\": 4, \"in_channels\": 1}"

/* an EMA target with a predictor (LARS), a MoCo queue, a DINO center with two crop sizes */
static const char *const k_configs[] = {
    "{\"name\": \"byol\", " DATA "\"views\": [{\"n\": 2, \"size\": 8}], \"model\": {" ENC
    ", \"projector\": {\"type\": \"byol_projector\", \"hidden_dim\": 16, \"out_dim\": 8}, "
    "\"predictor\": {\"type\": \"byol_predictor\", \"hidden_dim\": 16, \"out_dim\": 8}}, "
    "\"target\": {\"type\": \"ema\"}, \"loss\": {\"type\": \"byol\"}, \"optim\": {\"name\": "
    "\"lars\", \"base_lr\": 0.5}}",
    "{\"name\": \"moco\", " DATA "\"views\": [{\"n\": 2, \"size\": 8}], \"model\": {" ENC
    ", \"projector\": {\"hidden_dim\": 16, \"out_dim\": 8}}, \"target\": {\"type\": \"ema\"}, "
    "\"loss\": {\"type\": \"infonce\", \"form\": \"moco_v2\", \"queue_size\": 48}}",
    "{\"name\": \"dino\", " DATA "\"views\": [{\"n\": 2, \"size\": 8}, {\"n\": 2, \"size\": 6}], "
    "\"model\": {" ENC ", \"head\": {\"hidden_dim\": 16, \"bottleneck_dim\": 8, \"out_dim\": 32}}, "
    "\"target\": {\"type\": \"ema\"}, \"loss\": {\"type\": \"dino\"}, \"optim\": {\"name\": "
    "\"adamw\", \"base_lr\": 0.001}}",
};

static char g_tmp[256];

static int setup(void **state)
{
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/ssl_lifecycle_XXXXXX");
    return mkdtemp(g_tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* The file's bytes (malloc'd, NUL-terminated). */
static char *slurp(const char *path, size_t *len)
{
    char *buf = NULL;
    if (ssl__read_file(path, (size_t)1 << 30, &buf, len) != SSL_OK)
        fail_msg("%s", ssl_last_error());
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A progress callback that requests a stop once the global step reaches *stop_at (0: never). */
typedef struct stopper {
    ssl_trainer_t *t;
    int64_t stop_at;
} stopper_t;

static void stop_at_step(const ssl_train_progress_t *p, void *user)
{
    stopper_t *s = user;
    if (s->stop_at > 0 && p->global_step == s->stop_at && !p->epoch_done)
        ssl_trainer_request_stop(s->t);
}

/* Options for a new run of config under out with the overrides sets[n]. */
static ssl_train_opts_t opts_for(const char *config, const char *out, const char *const *sets,
                                 int n)
{
    ssl_train_opts_t o = {0};
    o.config_text = config;
    o.out_dir = out;
    o.overrides = sets;
    o.n_overrides = n;
    return o;
}

/* Create (config or resume), run with a stop at step stop_at; returns ssl_trainer_run's status. */
static int run(const char *config, const char *out, const char *resume, int64_t stop_at,
               const char *const *sets, int n_sets)
{
    ssl_train_opts_t o = opts_for(resume ? NULL : config, out, sets, n_sets);
    stopper_t s = {NULL, stop_at};
    o.resume_dir = resume;
    o.progress = stop_at_step;
    o.user = &s;
    s.t = ssl_trainer_create(&o);
    if (!s.t)
        fail_msg("create: %s", ssl_last_error());
    int st = ssl_trainer_run(s.t);
    ssl_trainer_free(s.t);
    return st;
}

/* metrics.jsonl of two runs equal but for their timing columns. */
static void assert_same_metrics(const char *a, const char *b)
{
    ssl_run_log_t la, lb;
    assert_int_equal(ssl_run_log_read(a, &la), SSL_OK);
    assert_int_equal(ssl_run_log_read(b, &lb), SSL_OK);
    assert_int_equal(la.n_rows, lb.n_rows);
    assert_int_equal(la.n_keys, lb.n_keys);
    for (int k = 0; k < la.n_keys; k++) {
        if (!strcmp(la.keys[k], "images_per_s") || !strcmp(la.keys[k], "epoch_s"))
            continue;
        int kb = ssl_run_log_key(&lb, la.keys[k]);
        assert_true(kb >= 0);
        for (int64_t i = 0; i < la.n_rows; i++) {
            double x = la.values[i * SSL_RUN_LOG_MAX_KEYS + k];
            double y = lb.values[i * SSL_RUN_LOG_MAX_KEYS + kb];
            if (!(isnan(x) && isnan(y)) && x != y)
                fail_msg("%s row %lld key %s: %.17g vs %.17g", b, (long long)i, la.keys[k], x, y);
        }
    }
    ssl_run_log_free(&la);
    ssl_run_log_free(&lb);
}

/* Stopped inside epoch 1 (step 3 of 4) and inside epoch 2 (step 6), resumed each time: the
 * final checkpoint is byte-identical to the straight run and the metrics agree. */
static void test_stop_mid_epoch_resumes_exactly(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof k_configs / sizeof *k_configs; c++) {
        char a[512], b[512], run_b[600], pa[700], pb[700];
        snprintf(a, sizeof a, "%s/straight", g_tmp);
        snprintf(b, sizeof b, "%s/stopped", g_tmp);
        assert_int_equal(run(k_configs[c], a, NULL, 0, NULL, 0), SSL_OK);
        assert_int_equal(run(k_configs[c], b, NULL, 3, NULL, 0), SSL_ERR_INTERRUPTED);
        assert_non_null(strstr(ssl_last_error(), "stopped at step 3 of 8"));
        assert_non_null(strstr(ssl_last_error(), "checkpoints/last.safetensors"));
        const char *name = c == 0 ? "byol" : c == 1 ? "moco" : "dino";
        snprintf(run_b, sizeof run_b, "%s/%s", b, name);
        assert_int_equal(run(NULL, NULL, run_b, 6, NULL, 0), SSL_ERR_INTERRUPTED);
        assert_non_null(strstr(ssl_last_error(), "step 2 of 4 in epoch 2"));
        assert_int_equal(run(NULL, NULL, run_b, 0, NULL, 0), SSL_OK);
        snprintf(pa, sizeof pa, "%s/%s/checkpoints/last.safetensors", a, name);
        snprintf(pb, sizeof pb, "%s/checkpoints/last.safetensors", run_b);
        size_t na, nb;
        char *x = slurp(pa, &na), *y = slurp(pb, &nb);
        if (na != nb || memcmp(x, y, na))
            fail_msg("%s: the resumed chain's checkpoint differs from the straight run's", name);
        free(x);
        free(y);
        snprintf(pa, sizeof pa, "%s/%s/metrics.jsonl", a, name);
        snprintf(pb, sizeof pb, "%s/metrics.jsonl", run_b);
        assert_same_metrics(pa, pb);
    }
}

static void progress_check_every(const ssl_train_progress_t *p, void *user)
{
    const char *path = user;
    if (p->epoch_done || p->global_step != 3)
        return;
    /* after step 3 the every_steps=2 checkpoint of step 2 is there */
    ssl_st_t *f = ssl_st_open(path);
    assert_non_null(f);
    assert_string_equal(ssl_st_meta(f, "step"), "2");
    assert_string_equal(ssl_st_meta(f, "epoch"), "0");
    ssl_st_close(f);
}

static void test_every_steps(void **state)
{
    (void)state;
    char out[512], path[700];
    snprintf(out, sizeof out, "%s/every", g_tmp);
    snprintf(path, sizeof path, "%s/moco/checkpoints/last.safetensors", out);
    const char *sets[] = {"checkpoint.every_steps=2"};
    ssl_train_opts_t o = opts_for(k_configs[1], out, sets, 1);
    o.progress = progress_check_every;
    o.user = path;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    assert_non_null(t);
    assert_false(exists(path));
    assert_int_equal(ssl_trainer_run(t), SSL_OK);
    ssl_trainer_free(t);
    assert_true(exists(path));
}

/* Every trainable parameter of the online network NaN: every loss is NaN from now on. */
static void poison(ssl_trainer_t *t)
{
    size_t n = 0;
    float *w = ssl_params_data(ssl_trainer_params(t, 0), &n);
    for (size_t i = 0; i < n; i++)
        w[i] = NAN;
}

/* A step whose loss is not finite is skipped without a trace: BN running statistics of both
 * networks (updated by its forward) are put back. */
static void test_skip_keeps_buffers(void **state)
{
    (void)state;
    const char *sets[] = {"train.on_nonfinite=skip"};
    ssl_train_opts_t o = {0};
    o.config_text = k_configs[0];
    o.no_run_dir = 1;
    o.overrides = sets;
    o.n_overrides = 1;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    assert_non_null(t);
    int64_t B = 16, n = B * 64;
    float *buf = malloc(2 * (size_t)n * sizeof(float));
    ssl_batch_t b;
    memset(&b, 0, sizeof b);
    b.size = B;
    b.n_views = 2;
    for (int v = 0; v < 2; v++) {
        ssl_tensor_t *x = &b.views[v];
        x->ndim = 4;
        x->shape[0] = B;
        x->shape[1] = 1;
        x->shape[2] = x->shape[3] = 8;
        x->numel = n;
        x->data = buf + v * n;
    }
    for (int64_t i = 0; i < 2 * n; i++)
        buf[i] = (float)((i * 7919) % 101) / 50.0f - 1.0f;
    poison(t);
    size_t nb[2];
    float *before[2];
    for (int s = 0; s < 2; s++) {
        float *p = ssl_params_buffers(ssl_trainer_params(t, s), &nb[s]);
        assert_true(nb[s] > 0);
        before[s] = malloc(nb[s] * sizeof(float));
        memcpy(before[s], p, nb[s] * sizeof(float));
    }
    double loss = 0;
    assert_int_equal(ssl_trainer_step(t, &b, &loss), SSL_OK);
    assert_true(isnan(loss));
    for (int s = 0; s < 2; s++) {
        const float *p = ssl_params_buffers(ssl_trainer_params(t, s), &nb[s]);
        assert_memory_equal(p, before[s], nb[s] * sizeof(float));
        free(before[s]);
    }
    const ssl_tensor_t *rm = ssl_params_get(ssl_trainer_params(t, 0), "encoder.bn1.running_mean");
    assert_non_null(rm);
    for (int64_t i = 0; i < rm->numel; i++)
        assert_true(isfinite(rm->data[i]));
    free(buf);
    ssl_trainer_free(t);
}

/* An epoch that skips more than half of its steps stops the run instead of ending "done". */
static void test_skipping_most_steps_fails(void **state)
{
    (void)state;
    char out[512], path[800];
    snprintf(out, sizeof out, "%s/diverge", g_tmp);
    const char *sets[] = {"train.on_nonfinite=skip", "train.epochs=1"};
    ssl_train_opts_t o = opts_for(k_configs[1], out, sets, 2);
    ssl_trainer_t *t = ssl_trainer_create(&o);
    assert_non_null(t);
    poison(t);
    assert_int_equal(ssl_trainer_run(t), SSL_ERR_NONFINITE);
    assert_non_null(strstr(ssl_last_error(), "4 of its 4 steps were skipped"));
    snprintf(path, sizeof path, "%s/checkpoints/last.safetensors", ssl_trainer_run_dir(t));
    assert_false(exists(path));
    ssl_trainer_free(t);
}

/* metrics.jsonl on a full disk: the run fails naming the file. */
static void test_metrics_write_error(void **state)
{
    (void)state;
    if (!exists("/dev/full"))
        skip();
    char out[512], path[800];
    snprintf(out, sizeof out, "%s/full", g_tmp);
    ssl_train_opts_t o = opts_for(k_configs[1], out, NULL, 0);
    ssl_trainer_t *t = ssl_trainer_create(&o);
    assert_non_null(t);
    snprintf(path, sizeof path, "%s/metrics.jsonl", ssl_trainer_run_dir(t));
    assert_int_equal(symlink("/dev/full", path), 0);
    assert_int_equal(ssl_trainer_run(t), SSL_ERR_IO);
    assert_non_null(strstr(ssl_last_error(), "metrics.jsonl"));
    ssl_trainer_free(t);
}

static void test_run_log_line_limit(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/long.jsonl", g_tmp);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("{\"step\": 1}\n{\"step\": 2, \"x\": \"", f);
    for (int i = 0; i < 100000; i++)
        fputc('a', f);
    fputs("\"}\n", f);
    fclose(f);
    ssl_run_log_t log;
    assert_int_equal(ssl_run_log_read(path, &log), SSL_ERR_FORMAT);
    assert_non_null(strstr(ssl_last_error(), "long.jsonl line 2: longer than"));
    assert_int_equal(ssl__run_log_repair(path, 5), SSL_ERR_FORMAT);
    if (exists("/dev/zero")) { /* an endless line: refused after the limit, not read whole */
        snprintf(path, sizeof path, "%s/zero.jsonl", g_tmp);
        assert_int_equal(symlink("/dev/zero", path), 0);
        assert_int_equal(ssl_run_log_read(path, &log), SSL_ERR_FORMAT);
        assert_non_null(strstr(ssl_last_error(), "zero.jsonl line 1: longer than"));
    }
}

/* The repair keeps what the checkpoint at step 4 had seen: lines after it, a cut-off line and
 * the lines an earlier resume repeated go. */
static void test_run_log_repair(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/m.jsonl", g_tmp);
    write_file(path, "{\"epoch\": 0, \"step\": 0, \"knn_top1\": 0.1}\n"
                     "{\"epoch\": 1, \"step\": 1, \"loss\": 5}\n"
                     "{\"epoch\": 1, \"step\": 2, \"loss\": 4}\n"
                     "{\"epoch\": 1, \"step\": 3, \"loss\": 9}\n" /* repeated below */
                     "{\"epoch\": 1, \"step\": 3, \"loss\": 3}\n"
                     "{\"epoch\": 1, \"step\": 4, \"loss\": 2}\n"
                     "{\"epoch\": 1, \"step\": 4, \"loss_mean\": 3.5}\n"
                     "{\"epoch\": 2, \"step\": 5, \"loss\": 1}\n" /* after step 4 */
                     "{\"epoch\": 2, \"step\": 6, \"lo");         /* cut off */
    assert_int_equal(ssl__run_log_repair(path, 4), SSL_OK);
    size_t n;
    char *text = slurp(path, &n);
    assert_string_equal(text, "{\"epoch\": 0, \"step\": 0, \"knn_top1\": 0.1}\n"
                              "{\"epoch\": 1, \"step\": 1, \"loss\": 5}\n"
                              "{\"epoch\": 1, \"step\": 2, \"loss\": 4}\n"
                              "{\"epoch\": 1, \"step\": 3, \"loss\": 3}\n"
                              "{\"epoch\": 1, \"step\": 4, \"loss\": 2}\n"
                              "{\"epoch\": 1, \"step\": 4, \"loss_mean\": 3.5}\n");
    free(text);
    ssl_run_log_t log;
    assert_int_equal(ssl_run_log_read(path, &log), SSL_OK);
    assert_int_equal(log.n_rows, 6);
    ssl_run_log_free(&log);
    /* nothing to repair: the file is left alone; no file is fine */
    assert_int_equal(ssl__run_log_repair(path, 4), SSL_OK);
    snprintf(path, sizeof path, "%s/none.jsonl", g_tmp);
    assert_int_equal(ssl__run_log_repair(path, 4), SSL_OK);
    assert_false(exists(path));
}

/* Two claims of one name get two directories; a second trainer on a live run is refused. */
static void test_claim_and_lock(void **state)
{
    (void)state;
    char out[512], d1[700], d2[700];
    snprintf(out, sizeof out, "%s/claims/x", g_tmp);
    assert_int_equal(ssl__run_dir_claim(out, "c", d1, sizeof d1), SSL_OK);
    assert_int_equal(ssl__run_dir_claim(out, "c", d2, sizeof d2), SSL_OK);
    assert_non_null(strstr(d1, "/x/c"));
    assert_non_null(strstr(d2, "/x/c-2"));
    int fd1 = -1, fd2 = -1;
    assert_int_equal(ssl__run_dir_lock(d1, &fd1), SSL_OK);
    assert_int_equal(ssl__run_dir_lock(d1, &fd2), SSL_ERR_STATE);
    assert_non_null(strstr(ssl_last_error(), "in use by another training"));
    ssl__run_dir_unlock(fd1);
    assert_int_equal(ssl__run_dir_lock(d1, &fd2), SSL_OK);
    ssl__run_dir_unlock(fd2);

    /* a live trainer (its lock held) and a resume of its directory */
    ssl_train_opts_t o = opts_for(k_configs[1], out, NULL, 0);
    ssl_trainer_t *t = ssl_trainer_create(&o);
    assert_non_null(t);
    ssl_train_opts_t r = {0};
    r.resume_dir = ssl_trainer_run_dir(t);
    assert_null(ssl_trainer_create(&r));
    assert_int_equal(ssl_last_status(), SSL_ERR_STATE);
    assert_non_null(strstr(ssl_last_error(), "in use by another training"));
    ssl_trainer_free(t);
}

/* Resume removes stale temporary files and epoch files beyond keep_last; with last missing,
 * the error names the newest epoch-N checkpoint. */
static void test_resume_tidies(void **state)
{
    (void)state;
    char out[512], dir[700], path[900];
    snprintf(out, sizeof out, "%s/tidy", g_tmp);
    const char *sets[] = {"train.epochs=3"};
    ssl_train_opts_t o = opts_for(k_configs[1], out, sets, 1);
    o.stop_after_epochs = 2;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    assert_non_null(t);
    snprintf(dir, sizeof dir, "%s", ssl_trainer_run_dir(t));
    assert_int_equal(ssl_trainer_run(t), SSL_OK);
    ssl_trainer_free(t);
    /* what kills leave: an old epoch file the window dropped, temporary files */
    snprintf(path, sizeof path, "%s/checkpoints/epoch-2.safetensors", dir);
    char epoch0[900];
    snprintf(epoch0, sizeof epoch0, "%s/checkpoints/epoch-0.safetensors", dir);
    assert_int_equal(link(path, epoch0), 0);
    char tmp1[900], tmp2[900];
    snprintf(tmp1, sizeof tmp1, "%s/checkpoints/last.safetensors.tmp-99-1", dir);
    snprintf(tmp2, sizeof tmp2, "%s/config.json.tmp-99-2", dir);
    write_file(tmp1, "partial");
    write_file(tmp2, "partial");
    /* keep_last 1 on resume: epoch-1 goes too */
    ssl_train_opts_t r = {0};
    const char *keep[] = {"checkpoint.keep_last=1"};
    r.resume_dir = dir;
    r.overrides = keep;
    r.n_overrides = 1;
    t = ssl_trainer_create(&r);
    assert_non_null(t);
    ssl_trainer_free(t);
    assert_false(exists(tmp1));
    assert_false(exists(tmp2));
    assert_false(exists(epoch0));
    snprintf(path, sizeof path, "%s/checkpoints/epoch-1.safetensors", dir);
    assert_false(exists(path));
    snprintf(path, sizeof path, "%s/checkpoints/epoch-2.safetensors", dir);
    assert_true(exists(path));
    /* no last.safetensors: the error points at epoch-2 */
    snprintf(path, sizeof path, "%s/checkpoints/last.safetensors", dir);
    assert_int_equal(remove(path), 0);
    r.n_overrides = 0;
    assert_null(ssl_trainer_create(&r));
    assert_non_null(strstr(ssl_last_error(), "epoch-2.safetensors"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_mid_epoch_resumes_exactly),
        cmocka_unit_test(test_every_steps),
        cmocka_unit_test(test_skip_keeps_buffers),
        cmocka_unit_test(test_skipping_most_steps_fails),
        cmocka_unit_test(test_metrics_write_error),
        cmocka_unit_test(test_run_log_line_limit),
        cmocka_unit_test(test_run_log_repair),
        cmocka_unit_test(test_claim_and_lock),
        cmocka_unit_test(test_resume_tidies),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
