/* Training checkpoints: every tensor of the run's state in one safetensors file, with the
 * resolved config and the position in __metadata__, written atomically. */
#include "trainer_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ssl/io.h"

#define CKPT_FORMAT "sslc-checkpoint"
#define CKPT_VERSION "1"

/* One integer of __metadata__; nothing after an earlier failure (st). */
static int meta_put_i64(ssl_st_writer_t *w, int st, const char *key, int64_t v)
{
    char num[32];
    snprintf(num, sizeof num, "%" PRId64, v);
    return st == SSL_OK ? ssl_st_writer_meta(w, key, num) : st;
}

int ssl__trainer_save(ssl_trainer_t *t, const char *path)
{
    ssl_st_writer_t *w = ssl_st_writer_create();
    if (!w)
        return ssl_last_status();
    int st = ssl_st_writer_add_params(w, t->online, "");
    if (st == SSL_OK)
        st = ssl_st_writer_add_params(w, t->target, ""); /* names start with "target." */
    for (int i = 0; st == SSL_OK && i < ssl_optim_state_count(t->optim); i++) {
        ssl_optim_state_t s;
        if ((st = ssl_optim_state_get(t->optim, i, &s)) != SSL_OK)
            break;
        char name[256];
        snprintf(name, sizeof name, "optim.%s", s.name);
        st = ssl_st_writer_add(w, name, 1, (int64_t[]){(int64_t)s.n}, s.data);
    }
    int n_steps = 0;
    int64_t *steps = ssl_optim_param_steps(t->optim, &n_steps);
    if (st == SSL_OK && steps && n_steps > 0)
        st = ssl_st_writer_add_raw(w, "optim.param_steps", SSL_DTYPE_I64, 1,
                                   (int64_t[]){n_steps}, steps);
    char *config = st == SSL_OK ? ssl_json_print(t->doc) : NULL;
    char num[64];
    if (st == SSL_OK && !config)
        st = ssl_last_status() ? ssl_last_status() : SSL_ERR_NOMEM;
    if (st == SSL_OK)
        st = ssl_st_writer_meta(w, "format", CKPT_FORMAT);
    if (st == SSL_OK)
        st = ssl_st_writer_meta(w, "format_version", CKPT_VERSION);
    if (st == SSL_OK)
        st = ssl_st_writer_meta(w, "sslc_version", ssl_version());
    if (st == SSL_OK)
        st = ssl_st_writer_meta(w, "config", config);
    st = meta_put_i64(w, st, "epoch", t->epoch_done);
    st = meta_put_i64(w, st, "step", t->global_step);
    st = meta_put_i64(w, st, "optim_steps", ssl_optim_step_count(t->optim));
    snprintf(num, sizeof num, "%" PRIu64, t->rc.seed);
    if (st == SSL_OK)
        st = ssl_st_writer_meta(w, "seed", num);
    st = meta_put_i64(w, st, "skipped_steps", t->skipped_steps);
    if (st == SSL_OK && t->knn_init >= 0) {
        snprintf(num, sizeof num, "%.6f", t->knn_init);
        st = ssl_st_writer_meta(w, "knn_top1_init", num);
    }
    if (st == SSL_OK && t->global_step > t->epoch_done * t->steps_per_epoch) {
        /* inside an epoch (checkpoint.every_steps, a stop): its running sums, so that the
         * resumed epoch logs the loss_mean of the uninterrupted one (%.17g round-trips) */
        snprintf(num, sizeof num, "%.17g", t->epoch_loss_sum);
        st = ssl_st_writer_meta(w, "epoch_loss_sum", num);
        st = meta_put_i64(w, st, "epoch_loss_n", t->epoch_loss_n);
        st = meta_put_i64(w, st, "epoch_skipped", t->epoch_skipped);
    }
    const char *vocab = ssl__method_vocab(t->method);
    if (st == SSL_OK && vocab)
        st = ssl_st_writer_meta(w, "vocab", vocab);
    if (st == SSL_OK)
        st = ssl_st_writer_save(w, path);
    free(config);
    ssl_st_writer_free(w);
    return st;
}

static int meta_i64(const ssl_st_t *f, const char *key, int64_t *out)
{
    const char *v = ssl_st_meta(f, key);
    char *end = NULL;
    errno = 0;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (v && errno == ERANGE) /* 99999999999999999999 would overflow the step arithmetic */
        return ssl_set_error(SSL_ERR_FORMAT, "%s: metadata '%s' is %.40s, out of range (> %lld)",
                             ssl_st_path(f), key, v, LLONG_MAX);
    if (!v || !end || *end || x < 0)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: metadata '%s' is %s", ssl_st_path(f), key,
                             v ? "not a count" : "missing");
    *out = x;
    return SSL_OK;
}

/* The running sums of the epoch a mid-epoch checkpoint was taken in. */
static int load_epoch_sums(ssl_trainer_t *t, const ssl_st_t *f)
{
    const char *v = ssl_st_meta(f, "epoch_loss_sum");
    char *end = NULL;
    t->epoch_loss_sum = v ? strtod(v, &end) : 0;
    if (!v || !end || *end)
        return ssl_set_error(SSL_ERR_FORMAT,
                             "%s: metadata 'epoch_loss_sum' of a mid-epoch "
                             "checkpoint is %s",
                             ssl_st_path(f), v ? "not a number" : "missing");
    int st = meta_i64(f, "epoch_loss_n", &t->epoch_loss_n);
    return st == SSL_OK ? meta_i64(f, "epoch_skipped", &t->epoch_skipped) : st;
}

int ssl__trainer_load(ssl_trainer_t *t, const char *path)
{
    ssl_st_t *f = ssl_st_open(path);
    if (!f)
        return ssl_last_status();
    int st = SSL_OK;
    const char *fmt = ssl_st_meta(f, "format");
    if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0)
        st = ssl_set_error(SSL_ERR_FORMAT, "%s: not an sslc training checkpoint", path);
    ssl_st_report_t rep;
    memset(&rep, 0, sizeof rep);
    /* Every parameter of the model must be there with its shape: a config that does not match
     * the checkpoint is reported key by key. Other tensors (target., optim.) are ignored here. */
    if (st == SSL_OK)
        st = ssl_st_load_params(f, t->online, "", SSL_ST_ALLOW_UNEXPECTED, &rep);
    ssl_st_report_free(&rep);
    if (st == SSL_OK && ssl_params_count(t->target) > 0) {
        st = ssl_st_load_params(f, t->target, "", SSL_ST_ALLOW_UNEXPECTED, &rep);
        ssl_st_report_free(&rep);
    }
    for (int i = 0; st == SSL_OK && i < ssl_optim_state_count(t->optim); i++) {
        ssl_optim_state_t s;
        if ((st = ssl_optim_state_get(t->optim, i, &s)) != SSL_OK)
            break;
        char name[256];
        snprintf(name, sizeof name, "optim.%s", s.name);
        int j = ssl_st_find(f, name);
        if (j < 0 || ssl_st_tensor(f, j)->numel != (int64_t)s.n)
            st = ssl_set_error(SSL_ERR_FORMAT, "%s: optimizer state '%s' is %s", path, name,
                               j < 0 ? "missing" : "of another size");
        else
            st = ssl_st_read_f32(f, j, s.data, s.n);
    }
    int n_steps = 0;
    int64_t *steps = ssl_optim_param_steps(t->optim, &n_steps);
    if (st == SSL_OK && steps && n_steps > 0) {
        int j = ssl_st_find(f, "optim.param_steps");
        if (j < 0 || ssl_st_tensor(f, j)->numel != n_steps)
            st = ssl_set_error(SSL_ERR_FORMAT, "%s: optim.param_steps is missing or of another "
                               "size", path);
        else
            st = ssl_st_read_raw(f, j, steps, (size_t)n_steps * sizeof(int64_t));
    }
    int64_t optim_steps = 0, skipped = 0;
    if (st == SSL_OK)
        st = meta_i64(f, "epoch", &t->epoch_done);
    if (st == SSL_OK)
        st = meta_i64(f, "step", &t->global_step);
    if (st == SSL_OK)
        st = meta_i64(f, "optim_steps", &optim_steps);
    if (st == SSL_OK)
        st = meta_i64(f, "skipped_steps", &skipped);
    if (st == SSL_OK) {
        ssl_optim_set_step_count(t->optim, optim_steps);
        t->skipped_steps = skipped;
        const char *k = ssl_st_meta(f, "knn_top1_init");
        if (k)
            t->knn_init = atof(k);
        /* at an epoch's end, or inside the next one (a mid-epoch checkpoint); the bounds
         * first keep the product from overflowing */
        int64_t in_epoch = t->epoch_done <= t->rc.epochs && t->global_step <= t->total_steps
                               ? t->global_step - t->epoch_done * t->steps_per_epoch
                               : -1;
        if (in_epoch < 0 || in_epoch >= t->steps_per_epoch)
            st = ssl_set_error(SSL_ERR_CONFIG,
                               "%s: the checkpoint is at step %lld after epoch %lld "
                               "but this config makes %lld steps per epoch (data or batch size "
                               "changed?)",
                               path, (long long)t->global_step, (long long)t->epoch_done,
                               (long long)t->steps_per_epoch);
        else if (in_epoch > 0)
            st = load_epoch_sums(t, f);
    }
    ssl_st_close(f);
    return st;
}
