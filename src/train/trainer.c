/* The generic trainer: one loop for every method. */
#define _POSIX_C_SOURCE 200809L
#include "trainer_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dist.h"
#include "optim_config.h"
#include "run_dir.h"
#include "ssl/eval.h"
#include "ssl/io.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- config */

/* The checkpoint a resume starts from: run_dir/checkpoints/last.safetensors. When it is missing
 * (deleted, or not copied with the run), the error names the newest epoch-N checkpoint beside
 * it: a complete checkpoint of that epoch's end. */
static int resume_path(const char *run_dir, char *path, size_t len)
{
    snprintf(path, len, "%s/checkpoints/last.safetensors", run_dir);
    struct stat st;
    if (stat(path, &st) == 0)
        return SSL_OK;
    int e = errno;
    long long n = ssl__run_dir_newest_epoch(run_dir);
    if (n >= 0)
        return ssl_set_error(SSL_ERR_IO,
                             "%s: %s; the newest checkpoint there is epoch-%lld.safetensors: "
                             "copy it to last.safetensors to resume from the end of epoch %lld",
                             path, strerror(e), n, n);
    return ssl_set_error(SSL_ERR_IO, "%s: %s (no checkpoint to resume from)", path, strerror(e));
}

static cJSON *config_from_checkpoint(const char *run_dir)
{
    char path[1100];
    if (resume_path(run_dir, path, sizeof path) != SSL_OK)
        return NULL;
    ssl_st_t *f = ssl_st_open(path);
    if (!f)
        return NULL;
    cJSON *doc = ssl__run_cfg_from_checkpoint(f, path);
    ssl_st_close(f);
    return doc;
}

static int read_config(ssl_trainer_t *t)
{
    const ssl_train_opts_t *o = &t->opts;
    t->doc = o->resume_dir    ? config_from_checkpoint(o->resume_dir)
             : o->config_path ? ssl_json_parse_file(o->config_path)
             : o->config_text ? ssl_json_parse(o->config_text, strlen(o->config_text), "config")
                              : NULL;
    if (!t->doc)
        return o->resume_dir || o->config_path || o->config_text
                   ? ssl_last_status()
                   : ssl_set_error(SSL_ERR_INVALID, "train: no config file given");
    for (int i = 0; i < o->n_overrides; i++)
        if (ssl_json_override(t->doc, o->overrides[i]) != SSL_OK)
            return ssl_last_status();
    static const char *const keys[] = {"name",   "data",  "views", "masks", "model",
                                       "target", "loss",  "optim", "train", "eval",
                                       "checkpoint", NULL};
    int err = 0;
    const char *src = o->resume_dir ? o->resume_dir : o->config_path ? o->config_path : "config";
    ssl_cfg_t root = ssl_cfg_root(t->doc, src, &err, SSL_CFG_FILL);
    ssl_cfg_keys(&root, keys);
    if (ssl__run_cfg_read(&root, &t->rc) != SSL_OK)
        return ssl_last_status();
    if (t->rc.precision_auto[0])
        ssl_logf(SSL_LOG_INFO, "train.precision \"auto\": %s (%s)",
                 ssl_precision_name(t->rc.precision), t->rc.precision_auto);
    if (o->threads > 0)
        t->rc.threads = o->threads;
    /* several ranks on one machine: each takes its share of the cores, not all of them */
    if (t->rc.threads == 0)
        t->rc.threads = ssl__dist_default_threads();
    ssl_cfg_t oc = ssl_cfg_obj(&root, "optim");
    if (ssl__optim_cfg_read(&oc, SSL_OPTIM_SGD, &t->ocfg) != SSL_OK)
        return ssl_last_status();
    /* the method reads model and loss (and fills their defaults) */
    ssl_set_num_threads(t->rc.threads);
    if (t->world > 1)
        ssl_logf(SSL_LOG_INFO, "%d ranks (%d on this machine), %d thread%s each", t->world,
                 ssl__dist_local_size(), ssl_get_num_threads(),
                 ssl_get_num_threads() == 1 ? "" : "s");
    t->train_ds = ssl__load_split(&t->rc, t->rc.split, t->rc.limit);
    if (!t->train_ds)
        return ssl_last_status();
    if (t->rc.captions && ssl__add_class_captions(t->train_ds) != SSL_OK)
        return ssl_last_status();
    if (t->rc.knn_every > 0) {
        t->eval_ds = ssl__load_split(&t->rc, t->rc.eval_split, t->rc.eval_limit);
        if (!t->eval_ds)
            return ssl_last_status();
    }
    t->online = ssl_params_create();
    t->target = ssl_params_create();
    if (!t->online || !t->target)
        return ssl_last_status();
    ssl_method_env_t env;
    ssl__run_cfg_method_env(&t->rc, &env);
    env.ranks = t->world;
    /* the loader's batches per epoch (it drops a last partial batch), at most train.max_steps */
    env.steps_per_epoch = t->train_ds->n / (t->rc.batch_size > 0 ? t->rc.batch_size : 1);
    if (t->rc.max_steps > 0 && t->rc.max_steps < env.steps_per_epoch)
        env.steps_per_epoch = t->rc.max_steps;
    t->method = ssl__method_create(&root, &env, t->train_ds, t->online, t->target, t->rc.seed,
                                   NULL);
    if (!t->method)
        return ssl_last_status();
    /* a generative method measures its likelihood on the eval split and shows its images */
    if (!t->eval_ds &&
        (ssl__method_has_nll(t->method) || ssl__method_has_pictures(t->method) ||
         ssl__method_has_test(t->method)) &&
        !(t->eval_ds = ssl__load_split(&t->rc, t->rc.eval_split, t->rc.eval_limit)))
        return ssl_last_status();
    /* model.encoder.weights, before the target copies the online network */
    if (!o->resume_dir && ssl__method_init_encoder(t->method) != SSL_OK)
        return ssl_last_status();
    return ssl_cfg_status(&root);
}

/* ---------------------------------------------------------------- setup */

/* Whether this process writes the run directory (rank 0 of a data-parallel run). */
static int writes(const ssl_trainer_t *t) { return !t->opts.no_run_dir && t->rank == 0; }

static int setup_run_dir(ssl_trainer_t *t)
{
    const char *out = t->opts.out_dir ? t->opts.out_dir : "runs";
    if (t->opts.no_run_dir) {
        if (t->opts.resume_dir)
            return ssl_set_error(SSL_ERR_INVALID, "train: no_run_dir cannot resume a run");
        t->run_dir[0] = '\0';
        return SSL_OK;
    }
    if (t->rank > 0) /* rank 0 claims the directory (a new name if taken) and says which */
        return ssl__dist_bcast(t->run_dir, sizeof t->run_dir, 0);
    if (!t->opts.resume_dir) { /* a resumed run's directory was locked before reading it */
        if (ssl__run_dir_claim(out, t->rc.name, t->run_dir, sizeof t->run_dir) != SSL_OK ||
            ssl__run_dir_lock(t->run_dir, &t->lock_fd) != SSL_OK)
            return ssl_last_status();
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/checkpoints", t->run_dir);
    if (ssl__make_dirs(path) != SSL_OK)
        return ssl_last_status();
    snprintf(path, sizeof path, "%s/config.json", t->run_dir);
    if (ssl_json_write_file(path, t->doc) != SSL_OK)
        return ssl_last_status();
    return ssl__dist_bcast(t->run_dir, sizeof t->run_dir, 0);
}

/* Data-parallel: every rank starts from rank 0's parameters and buffers (both networks), and
 * each loads its part of every batch. */
static int setup_ranks(ssl_trainer_t *t)
{
    if (t->world < 2)
        return SSL_OK;
    if (t->rc.batch_size % t->world)
        return ssl_set_error(SSL_ERR_CONFIG,
                             "train.batch_size: %lld is not a multiple of the %d ranks (each "
                             "rank trains an equal part of every batch)",
                             (long long)t->rc.batch_size, t->world);
    if (ssl_loader_set_shard(t->loader, t->rank, t->world) != SSL_OK)
        return ssl_last_status();
    /* every rank steps in rank 0's precision ("auto" resolves on each machine) */
    int precision = (int)t->rc.precision;
    if (ssl__dist_bcast(&precision, sizeof precision, 0) != SSL_OK)
        return ssl_last_status();
    if (precision != (int)t->rc.precision)
        return ssl_set_error(SSL_ERR_CONFIG,
                             "train.precision: rank %d runs %s but rank 0 runs %s (\"auto\" "
                             "resolves per machine: set fp32 or bf16 for mixed machines)",
                             t->rank, ssl_precision_name(t->rc.precision),
                             ssl_precision_name((ssl_precision_t)precision));
    ssl_params_t *stores[2] = {t->online, t->target};
    for (int i = 0; i < 2; i++) {
        size_t n = 0, nb = 0;
        float *d = ssl_params_data(stores[i], &n), *b = ssl_params_buffers(stores[i], &nb);
        if ((n && ssl__dist_bcast(d, n * sizeof(float), 0) != SSL_OK) ||
            (nb && ssl__dist_bcast(b, nb * sizeof(float), 0) != SSL_OK))
            return ssl_last_status();
    }
    ssl__ctx_set_comm(t->ctx, ssl__dist_comm(t->rc.sync_bn));
    t->grads = ssl__dist_grads_create(t->online, SSL_DIST_BUCKET_BYTES);
    return t->grads ? SSL_OK : ssl_last_status();
}

ssl_trainer_t *ssl_trainer_create(const ssl_train_opts_t *opts)
{
    if (SSL__IS_NULL(opts, __func__))
        return NULL;
    ssl_trainer_t *t = calloc(1, sizeof *t);
    if (!t) {
        ssl_set_error(SSL_ERR_NOMEM, "trainer: out of memory");
        return NULL;
    }
    t->opts = *opts;
    t->knn_init = -1;
    t->lock_fd = -1;
    if (ssl__dist_init() != SSL_OK)
        goto fail;
    t->rank = ssl__dist_rank();
    t->world = ssl__dist_size();
    if (opts->resume_dir && !opts->no_run_dir) {
        /* before reading anything: a second trainer on a live run is refused */
        if (snprintf(t->run_dir, sizeof t->run_dir, "%s", opts->resume_dir) >=
            (int)sizeof t->run_dir) {
            ssl_set_error(SSL_ERR_INVALID, "train: run directory name too long");
            goto fail;
        }
        if (t->rank == 0 && ssl__run_dir_lock(t->run_dir, &t->lock_fd) != SSL_OK)
            goto fail;
    }
    if (read_config(t) != SSL_OK)
        goto fail;
    ssl_loader_opts_t lo;
    ssl_loader_opts_default(&lo);
    lo.batch_size = t->rc.batch_size;
    lo.shuffle = 1;
    lo.drop_last = 1;
    lo.seed = t->rc.seed;
    lo.n_workers = t->rc.workers;
    lo.views = t->rc.views;
    if (ssl__method_mask_opts(t->method, &lo.mask, &lo.patch_size) != SSL_OK)
        goto fail;
    if (t->train_ds->n < t->rc.batch_size) {
        ssl_set_error(SSL_ERR_CONFIG, "train.batch_size: %lld is larger than the %lld training "
                      "images", (long long)t->rc.batch_size, (long long)t->train_ds->n);
        goto fail;
    }
    t->loader = ssl_loader_create(t->train_ds, &lo);
    if (!t->loader)
        goto fail;
    t->steps_per_epoch = ssl_loader_num_batches(t->loader);
    if (t->rc.max_steps > 0 && t->rc.max_steps < t->steps_per_epoch)
        t->steps_per_epoch = t->rc.max_steps;
    t->total_steps = t->steps_per_epoch * t->rc.epochs;
    t->optim = ssl_optim_create(&t->ocfg, t->online);
    if (!t->optim)
        goto fail;
    /* SimSiam's fix_pred_lr: the predictor keeps the peak rate, no warm-up, no decay */
    if (t->ocfg.fix_predictor_lr &&
        ssl_optim_set_lr_fixed(t->optim, "predictor.",
                               ssl_optim_peak_lr(&t->ocfg, t->rc.batch_size)) <= 0) {
        ssl_set_error(SSL_ERR_CONFIG, "optim.fix_predictor_lr: this method has no predictor");
        goto fail;
    }
    t->lr_sched = ssl_optim_lr_sched(&t->ocfg, t->rc.batch_size, t->steps_per_epoch);
    t->wd_sched = ssl_optim_wd_sched(&t->ocfg);
    t->ema_sched =
        (ssl_sched_t){t->rc.ema_schedule, t->rc.ema_start, t->rc.ema_start, t->rc.ema_end, 0};
    if (t->rc.target == SSL_TARGET_EMA) {
        if (ssl_params_count(t->target) == 0) {
            ssl_set_error(SSL_ERR_CONFIG, "target.type: 'ema' but the method has no target "
                                          "network");
            goto fail;
        }
        /* the target copies the modules of the online network its method names (not the
         * predictor, queue or center): one EMA per module, matched by name */
        const char *const *mods = ssl__method_ema_modules(t->method);
        for (int i = 0; mods[i]; i++) {
            char tp[64];
            snprintf(tp, sizeof tp, "target.%s", mods[i]);
            int present = 0;
            for (int j = 0; j < ssl_params_count(t->target) && !present; j++)
                present = !strncmp(ssl_params_info(t->target, j)->name, tp, strlen(tp));
            if (!present)
                continue;
            if (t->n_ema == (int)(sizeof t->ema / sizeof t->ema[0])) {
                ssl_set_error(SSL_ERR_STATE, "trainer: the method's target copies more than %d "
                              "modules", t->n_ema);
                goto fail;
            }
            ssl_ema_t *e = ssl_ema_create(t->target, tp, t->online, mods[i]);
            if (!e)
                goto fail;
            t->ema[t->n_ema++] = e;
            if (ssl_ema_copy(e) != SSL_OK)
                goto fail;
        }
    }
    t->ctx = ssl_ctx_create((size_t)64 << 20);
    if (!t->ctx || ssl_ctx_set_precision(t->ctx, t->rc.precision) != SSL_OK)
        goto fail;
    if (setup_run_dir(t) != SSL_OK)
        goto fail;
    if (t->rc.skip_nonfinite && ssl__method_phases(t->method) > 1) {
        ssl_set_error(SSL_ERR_CONFIG, "train.on_nonfinite: \"skip\" cannot undo the %s "
                      "method's earlier optimizer phases of a step: use \"error\"",
                      ssl__method_name(t->method));
        goto fail;
    }
    if (t->rc.skip_nonfinite) {
        for (int i = 0; i < 2; i++) {
            size_t n = 0;
            ssl_params_buffers(i ? t->target : t->online, &n);
            if (n && !(t->buf_save[i] = malloc(n * sizeof(float)))) {
                ssl_set_error(SSL_ERR_NOMEM, "trainer: out of memory");
                goto fail;
            }
        }
    }
    if (t->opts.resume_dir) {
        char path[1100];
        if (resume_path(t->run_dir, path, sizeof path) != SSL_OK ||
            ssl__trainer_load(t, path) != SSL_OK)
            goto fail;
        if (t->rank == 0) {
            ssl__run_dir_tidy(t->run_dir, t->epoch_done, t->rc.ckpt_every, t->rc.keep_last);
            snprintf(path, sizeof path, "%s/metrics.jsonl", t->run_dir);
            if (ssl__run_log_repair(path, t->global_step) != SSL_OK)
                goto fail;
        }
    }
    if (setup_ranks(t) != SSL_OK)
        goto fail;
    return t;
fail:
    ssl_trainer_free(t);
    return NULL;
}

void ssl_trainer_free(ssl_trainer_t *t)
{
    if (!t)
        return;
    /* keep the first error message: freeing must not overwrite it */
    ssl_loader_free(t->loader);
    ssl__dist_grads_free(t->grads);
    ssl__method_free(t->method);
    ssl_optim_free(t->optim);
    for (int i = 0; i < t->n_ema; i++)
        ssl_ema_free(t->ema[i]);
    ssl_ctx_free(t->ctx);
    ssl_params_free(t->online);
    ssl_params_free(t->target);
    ssl_dataset_free(t->train_ds);
    ssl_dataset_free(t->eval_ds);
    cJSON_Delete(t->doc);
    free(t->buf_save[0]);
    free(t->buf_save[1]);
    ssl__run_dir_unlock(t->lock_fd);
    free(t);
}

const char *ssl_trainer_run_dir(const ssl_trainer_t *t)
{
    return SSL__IS_NULL(t, __func__) ? NULL : t->run_dir;
}

void ssl_trainer_request_stop(ssl_trainer_t *t)
{
    if (t)
        t->stop_requested = 1; /* only this: it runs in signal handlers */
}

/* ---------------------------------------------------------------- metrics */

/* One line of metrics.jsonl; a failure to write it (full disk, no permission) is an error
 * naming the file, not a run that ends "done" with no metrics. */
static int metrics_line(ssl_trainer_t *t, const char *json)
{
    if (!writes(t))
        return SSL_OK;
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", t->run_dir);
    FILE *f = fopen(path, "a");
    if (!f)
        return ssl_set_error(SSL_ERR_IO, "cannot append to %s: %s", path, strerror(errno));
    int bad = fprintf(f, "%s\n", json) < 0 || fflush(f) != 0;
    int e = bad ? errno : 0;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    return bad ? ssl_set_error(SSL_ERR_IO, "cannot write to %s: %s", path, strerror(e)) : SSL_OK;
}

/* A JSON number with %.6g, or null when v is not finite (strict JSON has no NaN). */
static const char *json_num(char *buf, size_t len, double v)
{
    if (isfinite(v))
        snprintf(buf, len, "%.6g", v);
    else
        snprintf(buf, len, "null");
    return buf;
}

/* Label-free collapse metrics of the last step's embeddings (eval layer): the mean
 * per-dimension std of the L2-normalised rows and RankMe; -1 when not available. */
static void collapse_metrics(const ssl_tensor_t *z, double *std, double *rankme)
{
    *std = *rankme = -1;
    if (!z || z->ndim != 2 || z->shape[0] < 2)
        return;
    if (ssl_collapse_std(z->data, z->shape[0], z->shape[1], std) != SSL_OK)
        *std = -1;
    if (ssl_rankme(z->data, z->shape[0], z->shape[1], rankme) != SSL_OK)
        *rankme = -1;
}

/* Alignment and uniformity (Wang & Isola 2020, alpha 2, t 2, on L2-normalised rows) of the last
 * step's positive pairs: the two views' projector outputs (or CLIP's image and text
 * embeddings); uniformity of the first. -1 when the method has no pair. */
static void pair_metrics(const ssl_method_t *m, double *align, double *unif)
{
    ssl_tensor_t *z1, *z2;
    *align = *unif = -1;
    if (!ssl__method_last_pair(m, &z1, &z2) || z1->ndim != 2 || z2->ndim != 2 ||
        z1->shape[0] < 2 || z1->shape[0] != z2->shape[0] || z1->shape[1] != z2->shape[1])
        return;
    if (ssl_alignment(z1->data, z2->data, z1->shape[0], z1->shape[1], 2.0, 1, align) != SSL_OK)
        *align = -1;
    if (ssl_uniformity(z1->data, z1->shape[0], z1->shape[1], 2.0, 1, unif) != SSL_OK)
        *unif = 1; /* uniformity is <= 0: 1 marks "not available" */
}

/* ---------------------------------------------------------------- checkpoints */

static int save_last(ssl_trainer_t *t)
{
    if (!writes(t))
        return SSL_OK;
    char path[1100];
    snprintf(path, sizeof path, "%s/checkpoints/last.safetensors", t->run_dir);
    return ssl__trainer_save(t, path);
}

static int save_checkpoints(ssl_trainer_t *t)
{
    if (!writes(t))
        return SSL_OK;
    if (save_last(t) != SSL_OK)
        return ssl_last_status();
    char path[1100];
    if (t->rc.ckpt_every > 0 && t->epoch_done % t->rc.ckpt_every == 0) {
        snprintf(path, sizeof path, "%s/checkpoints/epoch-%lld.safetensors", t->run_dir,
                 (long long)t->epoch_done);
        if (ssl__trainer_save(t, path) != SSL_OK)
            return ssl_last_status();
        if (t->rc.keep_last > 0) { /* drop the epoch checkpoint that fell out of the window */
            int64_t old = t->epoch_done - (int64_t)t->rc.keep_last * t->rc.ckpt_every;
            if (old > 0) {
                snprintf(path, sizeof path, "%s/checkpoints/epoch-%lld.safetensors", t->run_dir,
                         (long long)old);
                remove(path);
            }
        }
    }
    return SSL_OK;
}

/* The run stops on request (ssl_trainer_request_stop) with its state saved where it is. */
static int stopped(ssl_trainer_t *t, int64_t steps_at_start)
{
    long long g = (long long)t->global_step, e = (long long)t->epoch_done;
    long long s = g - e * (long long)t->steps_per_epoch;
    if (t->opts.no_run_dir)
        return ssl_set_error(SSL_ERR_INTERRUPTED,
                             "stopped at step %lld of %lld (nothing saved: "
                             "no run directory)",
                             g, (long long)t->total_steps);
    if (t->global_step == steps_at_start)
        return ssl_set_error(SSL_ERR_INTERRUPTED,
                             "stopped before the first step of this run "
                             "(%s/checkpoints: nothing new saved)",
                             t->run_dir);
    if (s == 0)
        return ssl_set_error(SSL_ERR_INTERRUPTED,
                             "stopped after epoch %lld (step %lld of %lld): "
                             "checkpoint %s/checkpoints/last.safetensors",
                             e, g, (long long)t->total_steps, t->run_dir);
    return ssl_set_error(SSL_ERR_INTERRUPTED,
                         "stopped at step %lld of %lld (step %lld of %lld "
                         "in epoch %lld): checkpoint %s/checkpoints/last.safetensors",
                         g, (long long)t->total_steps, s, (long long)t->steps_per_epoch, e + 1,
                         t->run_dir);
}

/* ---------------------------------------------------------------- the loop */

static int first_nonfinite_param(ssl_trainer_t *t, char *name, size_t len)
{
    int bad = -1;
    if (ssl_grad_check_finite(t->online, &bad) == SSL_OK || bad < 0)
        return 0;
    const ssl_param_info_t *in = ssl_params_info(t->online, bad);
    snprintf(name, len, "%s", in ? in->name : "?");
    return 1;
}

/* on_nonfinite "skip": the buffers of both networks (BN running statistics, queues, centers)
 * before the step's forward, which updates BN statistics with the batch that then turns out
 * non-finite; restored when the step is skipped, so a skipped step changes nothing. */
static void buffers_keep(ssl_trainer_t *t, int restore)
{
    for (int i = 0; i < 2; i++) {
        size_t n = 0;
        float *b = ssl_params_buffers(i ? t->target : t->online, &n);
        if (!n || !t->buf_save[i])
            continue;
        if (restore)
            memcpy(b, t->buf_save[i], n * sizeof(float));
        else
            memcpy(t->buf_save[i], b, n * sizeof(float));
    }
}

static void skip_step(ssl_trainer_t *t)
{
    buffers_keep(t, 1);
    ssl_params_zero_grad(t->online);
    t->skipped_steps++;
    t->epoch_skipped++;
}

/* train.sync_bn false: each rank's batch norm updated its running statistics with its own part
 * of the batch; as PyTorch DDP (broadcast_buffers), every rank takes rank 0's buffers after the
 * step, so the ranks stay the same and rank 0's checkpoint holds what all use. */
static int bcast_buffers(ssl_trainer_t *t)
{
    ssl_params_t *stores[2] = {t->online, t->target};
    for (int i = 0; i < 2; i++) {
        size_t n = 0;
        float *b = ssl_params_buffers(stores[i], &n);
        if (n && ssl__dist_bcast(b, n * sizeof(float), 0) != SSL_OK)
            return ssl_last_status();
    }
    return SSL_OK;
}

/* A 64-bit checksum of the bits of n floats: fixed chunks, each hashed alone and folded in
 * order, so it does not depend on the thread count. */
static uint64_t hash_floats(const float *x, size_t n, uint64_t h)
{
    enum { CHUNKS = 64 };
    uint64_t part[CHUNKS];
    size_t chunk = (n + CHUNKS - 1) / CHUNKS;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int c = 0; c < CHUNKS; c++) {
        size_t lo = (size_t)c * chunk, hi = lo + chunk < n ? lo + chunk : n;
        uint64_t a = 0x9e3779b97f4a7c15ull * (uint64_t)(c + 1);
        for (size_t i = lo; i < hi; i++) {
            uint32_t u;
            memcpy(&u, x + i, 4);
            a = (a ^ u) * 0x100000001b3ull;
        }
        part[c] = a;
    }
    for (int c = 0; c < CHUNKS; c++)
        h = (h ^ part[c]) * 0xff51afd7ed558ccdull;
    return h;
}

/* The parameters and buffers of both networks must be the same bits on every rank: compared
 * after the first step of a run and at every epoch's end, and after every step with
 * train.check_sync. A rank that drifted (state a method updated from its own rows only, a
 * collective that summed differently) stops the run, naming the step (1-based) and the rank. */
static int check_sync(ssl_trainer_t *t, int64_t step, int64_t epoch)
{
    if (t->world < 2)
        return SSL_OK;
    t->sync_checked = 1;
    uint64_t h = 1469598103934665603ull;
    ssl_params_t *stores[2] = {t->online, t->target};
    for (int i = 0; i < 2; i++) {
        size_t n = 0, nb = 0;
        const float *d = ssl_params_data(stores[i], &n), *b = ssl_params_buffers(stores[i], &nb);
        h = hash_floats(d, n, h);
        h = hash_floats(b, nb, h);
    }
    uint64_t *all = malloc(sizeof *all * (size_t)t->world);
    if (!all)
        return ssl_set_error(SSL_ERR_NOMEM, "train.check_sync: out of memory");
    int st = ssl__dist_allgather_u64(h, all);
    for (int r = 1; r < t->world && st == SSL_OK; r++)
        if (all[r] != all[0])
            st = ssl_set_error(SSL_ERR_STATE,
                               "step %lld (epoch %lld): the parameters of rank %d differ from "
                               "rank 0's (checksums %016llx and %016llx; compared after the "
                               "first step, every epoch and, with train.check_sync, every step): "
                               "the ranks diverged",
                               (long long)step, (long long)epoch, r,
                               (unsigned long long)all[r], (unsigned long long)all[0]);
    free(all);
    return st;
}

/* One phase of a step (the whole step for a one-optimizer method): the method's loss on the
 * step's tape, backward, the gradient checks and clipping, the optimizer over the phase's
 * parameters (NULL: all). *skipped: a non-finite loss or gradient was skipped (on_nonfinite). */
static int step_phase(ssl_trainer_t *t, const ssl_batch_t *b, const ssl_step_pos_t *pos,
                      double lr, double wd, const char *const *params, double *loss_out,
                      int *skipped)
{
    *skipped = 0;
    ssl_tensor_t *loss = ssl__method_loss(t->method, t->ctx, b, pos);
    if (!loss)
        return ssl_last_status();
    double L = loss->data[0];
    if (t->world > 1) {
        /* the mean of the ranks' losses (the loss of the whole batch: each rank's is a mean
         * over its part, or the whole batch's loss from gathered rows), and whether any rank
         * was asked to stop: every rank decides alike on both */
        double sum[2] = {L, t->stop_requested ? 1.0 : 0.0};
        if (ssl__dist_allreduce_f64(sum, 2) != SSL_OK)
            return ssl_last_status();
        L = sum[0] / t->world;
        t->stop_agreed = sum[1] > 0;
    }
    *loss_out = L;
    if (!isfinite(L)) {
        if (t->rc.skip_nonfinite) {
            skip_step(t);
            ssl_logf(SSL_LOG_WARN, "step %lld: loss is %g, step skipped",
                     (long long)t->global_step + 1, L);
            *skipped = 1;
            return SSL_OK;
        }
        return ssl_set_error(SSL_ERR_NONFINITE, "step %lld (epoch %lld): the loss is %g",
                             (long long)t->global_step + 1, (long long)t->epoch_done + 1, L);
    }
    /* the gradient sums over the ranks start while backward runs (dist_grads.c) */
    ssl__dist_grads_attach(t->grads, t->ctx);
    int bst = ssl_backward(t->ctx, loss);
    int gst = ssl__dist_grads_finish(t->grads, t->ctx);
    if (bst != SSL_OK || gst != SSL_OK)
        return ssl_last_status();
    char bad[256];
    if (first_nonfinite_param(t, bad, sizeof bad)) {
        ssl_params_zero_grad(t->online);
        if (t->rc.skip_nonfinite) {
            skip_step(t);
            ssl_logf(SSL_LOG_WARN, "step %lld: non-finite gradient in %s, step skipped",
                     (long long)t->global_step + 1, bad);
            *skipped = 1;
            return SSL_OK;
        }
        return ssl_set_error(SSL_ERR_NONFINITE,
                             "step %lld (epoch %lld): the gradient of '%s' is not finite",
                             (long long)t->global_step + 1, (long long)t->epoch_done + 1, bad);
    }
    if (t->ocfg.clip_grad > 0 && ssl_grad_clip_norm(t->online, t->ocfg.clip_grad, NULL) != SSL_OK)
        return ssl_last_status();
    if (t->ocfg.clip_grad_per_param > 0 &&
        ssl_grad_clip_per_param(t->online, t->ocfg.clip_grad_per_param, NULL) != SSL_OK)
        return ssl_last_status();
    if (ssl_optim_step_only(t->optim, lr, wd, params) != SSL_OK)
        return ssl_last_status();
    ssl_params_zero_grad(t->online);
    return SSL_OK;
}

int ssl__trainer_step(ssl_trainer_t *t, const ssl_batch_t *b, double lr, double wd,
                      double *loss_out)
{
    ssl_step_pos_t pos = {t->epoch_done, t->global_step, t->steps_per_epoch, t->total_steps, 0};
    ssl_ctx_reset(t->ctx);
    if (ssl__method_before_step(t->method, t->online, &pos) != SSL_OK)
        return ssl_last_status();
    if (t->rc.skip_nonfinite)
        buffers_keep(t, 0);
    /* a method with several optimizers (a GAN) steps them in turn on one tape: each phase's
     * loss sees the parameters the phases before it updated; the step's loss is their sum */
    int n_phases = ssl__method_phases(t->method);
    *loss_out = 0;
    for (int ph = 0; ph < n_phases; ph++) {
        double L = 0;
        int skipped = 0;
        pos.phase = ph;
        if (step_phase(t, b, &pos, lr, wd, ssl__method_phase_params(t->method, ph), &L,
                       &skipped) != SSL_OK)
            return ssl_last_status();
        *loss_out += L;
        if (skipped)
            return SSL_OK;
    }
    double m = ssl_sched_value(&t->ema_sched, t->global_step, t->total_steps);
    for (int i = 0; i < t->n_ema; i++)
        if (ssl_ema_update(t->ema[i], m, SSL_EMA_BUFFERS_KEEP) != SSL_OK)
            return ssl_last_status();
    if (ssl__method_after_step(t->method, t->ctx, &pos) != SSL_OK)
        return ssl_last_status();
    if (t->world > 1 && !t->rc.sync_bn && bcast_buffers(t) != SSL_OK)
        return ssl_last_status();
    return t->rc.check_sync || !t->sync_checked
               ? check_sync(t, t->global_step + 1, t->epoch_done + 1)
               : SSL_OK;
}

int ssl__trainer_step_next(ssl_trainer_t *t, const ssl_batch_t *b, double *lr, double *wd,
                           double *loss)
{
    *lr = ssl_sched_value(&t->lr_sched, t->global_step, t->total_steps);
    *wd = ssl_sched_value(&t->wd_sched, t->global_step, t->total_steps);
    if (ssl__trainer_step(t, b, *lr, *wd, loss) != SSL_OK)
        return ssl_last_status();
    t->global_step++;
    return SSL_OK;
}

int ssl__trainer_observe_pass(ssl_trainer_t *t)
{
    if (!ssl__method_observes(t->method))
        return SSL_OK;
    ssl_logf(SSL_LOG_INFO,
             "a forward pass over %lld batches before the first epoch fills the "
             "method's memory",
             (long long)t->steps_per_epoch);
    if (ssl_loader_start_epoch(t->loader, 0, 0) != SSL_OK)
        return ssl_last_status();
    for (int64_t s = 0; s < t->steps_per_epoch; s++) {
        const ssl_batch_t *b = ssl_loader_next(t->loader);
        if (!b)
            return ssl_last_status() ? ssl_last_status()
                                     : ssl_set_error(SSL_ERR_STATE, "loader ran dry");
        ssl_ctx_reset(t->ctx);
        if (ssl__method_observe(t->method, t->ctx, b) != SSL_OK)
            return ssl_last_status();
    }
    return SSL_OK;
}

static void report(ssl_trainer_t *t, ssl_train_progress_t *p)
{
    if (t->opts.progress && t->rank == 0)
        t->opts.progress(p, t->opts.user);
}

/* ", "key": value, ..." of the named loss terms (prefix + name) inserted before the closing
 * brace of a metrics line */
static void append_parts(char *line, size_t len, const char *prefix, const ssl_loss_parts_t *p)
{
    char num[32];
    for (int i = 0; i < p->n; i++) {
        size_t o = strlen(line) - 1; /* the '}' */
        snprintf(line + o, len - o, ", \"%s%s\": %s}", prefix, p->name[i],
                 json_num(num, sizeof num, p->value[i]));
    }
}

/* Label-free metrics of the epoch's last step, taken before the kNN reuses the step arena. */
typedef struct epoch_metrics {
    double emb_std, rankme, align, unif;
} epoch_metrics_t;

static void last_step_metrics(const ssl_trainer_t *t, epoch_metrics_t *m)
{
    collapse_metrics(ssl__method_last_embedding(t->method), &m->emb_std, &m->rankme);
    pair_metrics(t->method, &m->align, &m->unif);
}

/* The epoch's last line of metrics.jsonl: means, collapse metrics, kNN. */
static int epoch_line(ssl_trainer_t *t, const epoch_metrics_t *m, double epoch_s, int64_t images,
                      double knn, const ssl__trainer_nll_t *nll)
{
    char line[1536], num[32];
    double emb_std = m->emb_std, rankme = m->rankme, align = m->align, unif = m->unif;
    snprintf(line, sizeof line,
             "{\"epoch\": %lld, \"step\": %lld, \"loss_mean\": %s, \"epoch_s\": %.2f, "
             "\"images_per_s\": %.1f, \"embedding_std\": %.6g, \"rankme\": %.6g, "
             "\"skipped_steps\": %lld, \"train_images\": %lld, \"batches_per_epoch\": %lld%s",
             (long long)t->epoch_done, (long long)t->global_step,
             json_num(num, sizeof num,
                      t->epoch_loss_n ? t->epoch_loss_sum / (double)t->epoch_loss_n : NAN),
             epoch_s, (double)images / (epoch_s > 0 ? epoch_s : 1), emb_std, rankme,
             (long long)t->skipped_steps, (long long)t->train_ds->n,
             (long long)ssl_loader_num_batches(t->loader), knn >= 0 ? ", " : "}");
    if (align >= 0 && unif <= 0) { /* before the closing brace or the kNN key */
        size_t o = strlen(line) - (knn >= 0 ? 2 : 1);
        snprintf(line + o, sizeof line - o, ", \"alignment\": %.6g, \"uniformity\": %.6g%s", align,
                 unif, knn >= 0 ? ", " : "}");
    }
    if (knn >= 0) {
        size_t o = strlen(line);
        snprintf(line + o, sizeof line - o, "\"knn_top1\": %.6f}", knn);
    }
    if (nll->n > 0) { /* the eval split's likelihood bound and metrics (generative methods) */
        ssl_loss_parts_t p = {nll->has_nll ? 3 : 1, {"images", "nll", "bits_per_dim"},
                              {(float)nll->n, (float)nll->nats, (float)nll->bits_per_dim}};
        append_parts(line, sizeof line, "test_", &p);
        append_parts(line, sizeof line, "test_", &nll->parts);
        append_parts(line, sizeof line, "test_", &nll->metrics);
    }
    if (t->world > 1) { /* the gradient sums of the epoch (dist_grads.h), before the brace */
        ssl_dist_grads_stats_t s, s0 = t->grads_at_epoch;
        ssl__dist_grads_stats(t->grads, &s);
        int64_t n = s.steps - s0.steps, f = s.floats - s0.floats;
        size_t o = strlen(line) - 1;
        snprintf(line + o, sizeof line - o,
                 ", \"grad_sum_mb\": %.3f, \"backward_s\": %.3f, \"grad_wait_s\": %.3f, "
                 "\"grad_started_in_backward\": %.4f, \"grad_done_in_backward\": %.4f}",
                 n > 0 ? 4e-6 * (double)f / (double)n : 0.0, s.backward_s - s0.backward_s,
                 s.wait_s - s0.wait_s,
                 f > 0 ? (double)(s.floats_early - s0.floats_early) / (double)f : 0.0,
                 f > 0 ? (double)(s.floats_done - s0.floats_done) / (double)f : 0.0);
    }
    return metrics_line(t, line);
}

/* on_nonfinite "skip" skips a step now and then; an epoch that skipped more than half of its
 * steps has diverged and stops the run before its checkpoint (the last good one stays). */
static int check_skipped(const ssl_trainer_t *t)
{
    if (2 * t->epoch_skipped <= t->steps_per_epoch)
        return SSL_OK;
    return ssl_set_error(SSL_ERR_NONFINITE,
                         "epoch %lld: %lld of its %lld steps were skipped for a non-finite loss "
                         "or gradient (train.on_nonfinite \"skip\" stops the run when more than "
                         "half are): the training diverged; lower the learning rate or set "
                         "optim.clip_grad. The last checkpoint (epoch %lld) is kept",
                         (long long)t->epoch_done, (long long)t->epoch_skipped,
                         (long long)t->steps_per_epoch, (long long)t->epoch_done - 1);
}

/* A stop request: this process's, or with several ranks the one they agreed on at the last
 * step (a signal reaches the ranks at different moments; all must stop at the same step). */
static int stop_now(const ssl_trainer_t *t)
{
    return t->world > 1 ? t->stop_agreed : t->stop_requested;
}

int ssl_trainer_run(ssl_trainer_t *t)
{
    if (SSL__IS_NULL(t, __func__))
        return SSL_ERR_INVALID;
    char line[1024], num[32];
    int64_t steps_at_start = t->global_step;
    if (stop_now(t))
        return stopped(t, steps_at_start);
    if (t->rc.knn_every > 0 && t->epoch_done == 0 && t->knn_init < 0 && t->rank == 0) {
        if (ssl__trainer_knn(t, &t->knn_init) != SSL_OK)
            return ssl_last_status();
        snprintf(line, sizeof line, "{\"epoch\": 0, \"step\": 0, \"knn_top1\": %.6f}",
                 t->knn_init);
        if (metrics_line(t, line) != SSL_OK)
            return ssl_last_status();
    }
    if (t->rc.save_init && t->global_step == 0 && writes(t)) {
        /* the random-init encoder, for probing the baseline with sslc knn / linear */
        char path[1100];
        snprintf(path, sizeof path, "%s/checkpoints/init.safetensors", t->run_dir);
        if (ssl__trainer_save(t, path) != SSL_OK)
            return ssl_last_status();
    }
    /* after the initial kNN and init checkpoint: the pass moves BatchNorm statistics */
    if (t->global_step == 0 && ssl__trainer_observe_pass(t) != SSL_OK)
        return ssl_last_status();
    double t_run = now_s();
    int64_t last_epoch = t->rc.epochs;
    if (t->opts.stop_after_epochs > 0 && t->opts.stop_after_epochs < last_epoch)
        last_epoch = t->opts.stop_after_epochs;
    while (t->epoch_done < last_epoch) {
        int64_t epoch = t->epoch_done;
        /* > 0 right after resuming from a checkpoint.every_steps or interrupted checkpoint */
        int64_t first = t->global_step - epoch * t->steps_per_epoch;
        if (first == 0) {
            t->epoch_loss_sum = 0;
            t->epoch_loss_n = t->epoch_skipped = 0;
        }
        if (ssl_loader_start_epoch(t->loader, epoch, first) != SSL_OK)
            return ssl_last_status();
        ssl__dist_grads_stats(t->grads, &t->grads_at_epoch);
        double t0 = now_s();
        int64_t images = 0;
        ssl_train_progress_t p = {0};
        p.epochs = t->rc.epochs;
        p.steps_per_epoch = t->steps_per_epoch;
        p.total_steps = t->total_steps;
        p.knn_top1 = -1;
        p.knn_top1_init = t->knn_init;
        p.test_nll = p.test_bits_per_dim = NAN;
        for (int64_t s = first; s < t->steps_per_epoch; s++) {
            const ssl_batch_t *b = ssl_loader_next(t->loader);
            if (!b)
                return ssl_last_status() ? ssl_last_status()
                                         : ssl_set_error(SSL_ERR_STATE, "loader ran dry");
            double lr = 0, wd = 0, L = 0;
            if (ssl__trainer_step_next(t, b, &lr, &wd, &L) != SSL_OK)
                return ssl_last_status();
            images += b->size * t->world;
            if (isfinite(L)) {
                t->epoch_loss_sum += L;
                t->epoch_loss_n++;
            }
            double dt = now_s() - t0;
            p.epoch = epoch + 1;
            p.step = s + 1;
            p.global_step = t->global_step;
            p.loss = L;
            p.lr = lr;
            p.images_per_s = dt > 0 ? (double)images / dt : 0;
            double run_dt = now_s() - t_run;
            int64_t done = t->global_step - steps_at_start;
            p.eta_s =
                done > 0 ? run_dt / (double)done * (double)(t->total_steps - t->global_step) : 0;
            p.is_log_point = (s + 1) % t->rc.log_every == 0 || s + 1 == t->steps_per_epoch;
            if (p.is_log_point) {
                snprintf(line, sizeof line,
                         "{\"epoch\": %lld, \"step\": %lld, \"loss\": %s, \"lr\": %.6g, "
                         "\"weight_decay\": %.6g, \"images_per_s\": %.1f}",
                         (long long)epoch + 1, (long long)t->global_step,
                         json_num(num, sizeof num, L), lr, wd, p.images_per_s);
                append_parts(line, sizeof line, "loss_", ssl__method_loss_parts(t->method));
                if (metrics_line(t, line) != SSL_OK)
                    return ssl_last_status();
            }
            report(t, &p);
            if (s + 1 == t->steps_per_epoch)
                break; /* the epoch's end saves */
            int stop = stop_now(t);
            if ((stop ||
                 (t->rc.ckpt_every_steps > 0 && t->global_step % t->rc.ckpt_every_steps == 0)) &&
                save_last(t) != SSL_OK)
                return ssl_last_status();
            if (stop)
                return stopped(t, steps_at_start);
        }
        t->epoch_done++;
        if (!t->rc.check_sync && check_sync(t, t->global_step, t->epoch_done) != SSL_OK)
            return ssl_last_status();
        double epoch_s = now_s() - t0;
        epoch_metrics_t em;
        last_step_metrics(t, &em);
        double knn = -1;
        if (t->rc.knn_every > 0 && t->rank == 0 &&
            (t->epoch_done % t->rc.knn_every == 0 || t->epoch_done == t->rc.epochs)) {
            if (ssl__trainer_knn(t, &knn) != SSL_OK)
                return ssl_last_status();
        }
        /* the last epoch measures every eval image, the others eval.knn_test_limit of them */
        int64_t nll_limit = t->epoch_done == t->rc.epochs ? 0 : t->rc.knn_test_limit;
        ssl__trainer_nll_t nll = {0};
        if (t->rank == 0 && (ssl__trainer_nll(t, nll_limit, &nll) != SSL_OK ||
                             ssl__trainer_pictures(t, t->epoch_done) != SSL_OK))
            return ssl_last_status();
        if (epoch_line(t, &em, epoch_s, images, knn, &nll) != SSL_OK ||
            check_skipped(t) != SSL_OK)
            return ssl_last_status();
        p.loss = t->epoch_loss_n ? t->epoch_loss_sum / (double)t->epoch_loss_n : NAN;
        t->epoch_loss_sum = 0;
        t->epoch_loss_n = t->epoch_skipped = 0;
        if (save_checkpoints(t) != SSL_OK)
            return ssl_last_status();
        p.epoch_done = 1;
        p.knn_top1 = knn;
        p.test_nll = nll.has_nll ? nll.nats : NAN;
        p.test_bits_per_dim = nll.has_nll ? nll.bits_per_dim : NAN;
        p.test_metrics = nll.metrics;
        report(t, &p);
        if (stop_now(t) && t->epoch_done < last_epoch)
            return stopped(t, steps_at_start);
    }
    return SSL_OK;
}
