/* Training-step benchmarks: a run config's method, optimizer and batch timed on one fixed batch,
 * with the GEMM work counted and OpenBLAS's sgemm peak (and oneDNN's bf16 matmul peak, where
 * bf16 runs) measured in the same process. */
#define _POSIX_C_SOURCE 200809L
#include "trainer_internal.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/core_internal.h"

static const char k_simclr_r18[] =
    "{\"name\": \"simclr-r18\","
    " \"data\": {\"dataset\": \"synthetic\", \"image_size\": 32, \"channels\": 3, \"workers\": 0},"
    " \"views\": [{\"n\": 2, \"size\": 32}],"
    " \"model\": {\"encoder\": {\"type\": \"resnet18\", \"stem\": \"cifar\", \"in_channels\": 3,"
    "                           \"width\": 64},"
    "           \"projector\": {\"type\": \"simclr_projector\", \"hidden_dim\": 2048,"
    "                             \"out_dim\": 128}},"
    " \"loss\": {\"type\": \"infonce\", \"temperature\": 0.2},"
    " \"optim\": {\"name\": \"sgd\", \"base_lr\": 0.1, \"momentum\": 0.9,"
    "            \"weight_decay\": 0.0001, \"warmup_epochs\": 0},"
    " \"train\": {\"epochs\": 1, \"batch_size\": 128, \"seed\": 0},"
    " \"eval\": {\"knn_every\": 0}, \"checkpoint\": {\"every\": 0}}";

static const char k_mae_vitt[] =
    "{\"name\": \"mae-vitt\","
    " \"data\": {\"dataset\": \"synthetic\", \"image_size\": 32, \"channels\": 3, \"workers\": 0},"
    " \"views\": [{\"n\": 1, \"size\": 32}],"
    " \"masks\": {\"type\": \"random\", \"ratio\": 0.75},"
    " \"model\": {\"encoder\": {\"type\": \"vit_tiny\", \"image_size\": 32, \"patch_size\": 4,"
    "                           \"in_channels\": 3},"
    "           \"head\": {\"dim\": 128, \"depth\": 2, \"heads\": 4}},"
    " \"loss\": {\"type\": \"mae\", \"norm_pix_loss\": true},"
    " \"optim\": {\"name\": \"adamw\", \"base_lr\": 0.00015, \"weight_decay\": 0.05,"
    "            \"betas\": [0.9, 0.95], \"warmup_epochs\": 0},"
    " \"train\": {\"epochs\": 1, \"batch_size\": 128, \"seed\": 0},"
    " \"eval\": {\"knn_every\": 0}, \"checkpoint\": {\"every\": 0}}";

static const char *const k_names[] = {"simclr-r18", "mae-vitt", NULL};
static const char *const k_texts[] = {k_simclr_r18, k_mae_vitt};

const char *const *ssl_bench_workloads(void) { return k_names; }

const char *ssl_bench_workload_config(const char *name)
{
    if (SSL__IS_NULL(name, __func__))
        return NULL;
    for (int i = 0; k_names[i]; i++)
        if (!strcmp(name, k_names[i]))
            return k_texts[i];
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the whole process, all threads: on a shared machine the step's cost without the
 * time it waited for a core (wall time counts that too). */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts t[0..n) and returns its median. */
static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* Best GFLOP/s of `reps` n x n GEMMs (after one warm-up: thread pool, pages, oneDNN's
 * primitive), fp32 through OpenBLAS or bf16 through oneDNN; 0 when one fails. */
static double gemm_peak(int n, int reps, int bf16)
{
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(nn * sizeof(float)), *b = malloc(nn * sizeof(float)),
          *c = malloc(nn * sizeof(float));
    double best = 0;
    if (a && b && c) {
        ssl_rng_fill_uniform(a, nn, -1, 1, 1, 1, 0);
        ssl_rng_fill_uniform(b, nn, -1, 1, 1, 2, 0);
        for (int r = 0; r <= reps; r++) {
            double t0 = now_s();
            if (!bf16)
                ssl__sgemm(0, 0, n, n, n, 1, a, n, b, n, 0, c, n);
            else if (ssl__bf16_gemm(0, 0, n, n, n, a, n, b, n, 0, c, n) != SSL_OK) {
                best = 0;
                break;
            }
            double g = 2.0 * n * (double)n * n / (now_s() - t0) * 1e-9;
            if (r > 0 && g > best)
                best = g;
        }
    } else {
        ssl_set_error(SSL_ERR_NOMEM, "bench: out of memory for the %s peak",
                      bf16 ? "bf16" : "sgemm");
    }
    free(a);
    free(b);
    free(c);
    return best;
}

double ssl_bench_sgemm_peak(int n, int reps)
{
    if (SSL__BAD_RANGE(n, 1, 46340, __func__) || SSL__BAD_RANGE(reps, 1, INT_MAX, __func__))
        return 0; /* n * n floats must be addressable by an int BLAS */
    return gemm_peak(n, reps, 0);
}

double ssl_bench_bf16_peak(int n, int reps)
{
    if (SSL__BAD_RANGE(n, 1, 46340, __func__) || SSL__BAD_RANGE(reps, 1, INT_MAX, __func__))
        return 0;
    if (ssl__bf16_check() != SSL_OK)
        return 0;
    return gemm_peak(n, reps, 1);
}

int ssl_bench_run(const ssl_bench_opts_t *o, ssl_bench_result_t *r)
{
    return ssl_bench_run_ex(o, r, NULL);
}

int ssl_bench_run_ex(const ssl_bench_opts_t *o, ssl_bench_result_t *r, ssl_bench_extra_t *x)
{
    if (SSL__IS_NULL(o, __func__) || SSL__IS_NULL(r, __func__))
        return SSL_ERR_INVALID;
    memset(r, 0, sizeof *r);
    if (x)
        memset(x, 0, sizeof *x);
    const char *text = NULL;
    if (o->workload) {
        text = ssl_bench_workload_config(o->workload);
        if (!text) {
            char list[256] = "";
            for (int i = 0; k_names[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                         k_names[i]);
            return ssl_set_error(SSL_ERR_INVALID, "bench: unknown workload '%s' (one of: %s)",
                                 o->workload, list);
        }
    } else if (!o->config_path) {
        return ssl_set_error(SSL_ERR_INVALID, "bench: give a workload or a config file");
    }
    int steps = o->steps > 0 ? o->steps : 5;
    /* the overrides, then our own: nothing written, no evaluation */
    int n_ov = o->n_overrides + 4;
    const char **ov = calloc((size_t)n_ov, sizeof *ov);
    char batch_kv[64];
    if (!ov)
        return ssl_set_error(SSL_ERR_NOMEM, "bench: out of memory");
    int k = 0;
    for (int i = 0; i < o->n_overrides; i++)
        ov[k++] = o->overrides[i];
    ov[k++] = "eval.knn_every=0";
    ov[k++] = "train.epochs=1";
    if (o->batch_size > 0) {
        snprintf(batch_kv, sizeof batch_kv, "train.batch_size=%lld", (long long)o->batch_size);
        ov[k++] = batch_kv;
    }
    ssl_train_opts_t to = {0};
    to.config_path = o->workload ? NULL : o->config_path;
    to.config_text = o->workload ? text : NULL;
    to.overrides = ov;
    to.n_overrides = k;
    to.threads = o->threads;
    to.no_run_dir = 1;
    /* a synthetic workload needs as many images as one batch */
    char limit_kv[64];
    int64_t want = o->batch_size > 0 ? o->batch_size : 128;
    if (o->workload) {
        snprintf(limit_kv, sizeof limit_kv, "data.limit=%lld", (long long)want);
        ov[k++] = limit_kv;
        to.n_overrides = k;
    }
    ssl_trainer_t *t = ssl_trainer_create(&to);
    free(ov);
    if (!t)
        return ssl_last_status();
    int st = SSL_OK;
    double *times = calloc((size_t)steps, sizeof(double));
    double *cpu = calloc((size_t)steps, sizeof(double));
    if (!times || !cpu) {
        st = ssl_set_error(SSL_ERR_NOMEM, "bench: out of memory");
        goto done;
    }
    /* a method with a memory (DeepCluster-v2) fills it first, untimed, as a run does */
    if (ssl__trainer_observe_pass(t) != SSL_OK ||
        ssl_loader_start_epoch(t->loader, 0, 0) != SSL_OK) {
        st = ssl_last_status();
        goto done;
    }
    const ssl_batch_t *b = ssl_loader_next(t->loader);
    if (!b) {
        st = ssl_last_status() ? ssl_last_status()
                               : ssl_set_error(SSL_ERR_STATE, "bench: the loader gave no batch");
        goto done;
    }
    double lr = ssl_sched_value(&t->lr_sched, t->steps_per_epoch / 2, t->total_steps);
    double wd = ssl_sched_value(&t->wd_sched, 0, t->total_steps);
    double loss = 0;
    if (ssl__trainer_step(t, b, lr, wd, &loss) != SSL_OK) { /* warm-up */
        st = ssl_last_status();
        goto done;
    }
    uint64_t f0 = ssl_gemm_flops(), m0 = ssl_model_flops();
    if (o->profile) {
        ssl_profile_reset();
        ssl_profile_enable(1);
    }
    for (int s = 0; s < steps; s++) {
        double t0 = now_s(), c0 = cpu_s();
        if (ssl__trainer_step(t, b, lr, wd, &loss) != SSL_OK) {
            ssl_profile_enable(0);
            st = ssl_last_status();
            goto done;
        }
        times[s] = now_s() - t0;
        cpu[s] = cpu_s() - c0;
    }
    ssl_profile_enable(0);
    r->gemm_gflop_per_step = (double)(ssl_gemm_flops() - f0) / steps * 1e-9;
    r->model_gflop_per_step = (double)(ssl_model_flops() - m0) / steps * 1e-9;
    for (int s = 0; s < steps; s++)
        r->step_s_total += times[s];
    snprintf(r->name, sizeof r->name, "%s", o->workload ? o->workload : t->rc.name);
    r->batch_size = b->size;
    r->steps = steps;
    r->threads = ssl_get_num_threads();
    r->step_s_median = median(times, steps);
    r->step_s_min = times[0];
    r->step_s_max = times[steps - 1];
    if (t->world > 1) { /* the gradient sums of the timed steps (and the warm-up's) */
        ssl_dist_grads_stats_t g;
        ssl__dist_grads_stats(t->grads, &g);
        double n = g.steps > 0 ? (double)g.steps : 1, f = g.floats > 0 ? (double)g.floats : 1;
        ssl_logf(SSL_LOG_INFO,
                 "%d ranks: %.2f MB of gradients summed per step; backward %.4f s a step, "
                 "waiting for the sums after it %.4f s (%.1f%% of the median step); %.0f%% of "
                 "the floats started during backward, %.0f%% summed by its end",
                 t->world, 4e-6 * f / n, g.backward_s / n, g.wait_s / n,
                 100 * g.wait_s / n / r->step_s_median, 100 * g.floats_early / f,
                 100 * g.floats_done / f);
    }
    r->images_per_s = (double)b->size / r->step_s_median;
    r->gemm_gflops = r->gemm_gflop_per_step / r->step_s_median;
    r->model_gflops = r->model_gflop_per_step / r->step_s_median;
    r->loss = loss;
    if (x) {
        x->precision = t->rc.precision;
        x->cpu_s_median = median(cpu, steps);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        r->peak_rss_bytes = (int64_t)ru.ru_maxrss * 1024;
done:
    free(times);
    free(cpu);
    ssl_trainer_free(t);
    /* after the RSS reading and with the trainer's memory released: the peak measurement's
     * matrices are not the workload's, and do not raise the process's peak RSS either (a
     * caller reading it from the kernel, as side_by_side.py does, sees the workload's) */
    if (st == SSL_OK && o->peak_n >= 0) {
        int n = o->peak_n ? o->peak_n : 2048;
        r->sgemm_peak_gflops = ssl_bench_sgemm_peak(n, 3);
        if (x && ssl_precision_supported(SSL_PRECISION_BF16) == SSL_OK)
            x->bf16_peak_gflops = ssl_bench_bf16_peak(n, 3);
    }
    return st;
}
