#define _POSIX_C_SOURCE 200809L
/* sslc bench WORKLOAD|CONFIG: images/s of training steps, achieved GFLOP/s (model and GEMM),
 * sgemm peak, RSS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "ssl/train.h"
#include "sslc.h"

static const char *k_help =
    "usage: sslc bench WORKLOAD|CONFIG [--batch N] [--steps N] [--threads N] [--set k=v]...\n"
    "                  [--precision fp32|bf16|auto] [--peak-n N | --no-peak] [--profile]\n"
    "\n"
    "Times training steps (forward, backward, optimizer, EMA) on one fixed batch, after one\n"
    "warm-up step, and prints one line: median step seconds, images/s (original images, not\n"
    "views), the model's GFLOP per step and achieved GFLOP/s (products counted as textbook\n"
    "algorithms do them: convolutions as direct ones, so Winograd's savings show as speed),\n"
    "the same for the work done in GEMMs, OpenBLAS sgemm peak (n x n, measured in the same run\n"
    "after the steps) and the model GFLOP/s's share of it (over 100% is possible with\n"
    "Winograd), peak RSS of the process, and cpu_s: the median CPU seconds the process spent\n"
    "per step (all its threads; on a busy machine the step's cost without the time it waited\n"
    "for a core: at 1 thread it is the step time of an idle machine). Where bf16 can run\n"
    "(oneDNN, a CPU with AVX512-BF16 or AMX) it also prints oneDNN's bf16 matmul peak\n"
    "(bf16_peak) and, for steps run in bf16, the model GFLOP/s's share of that peak (pct_peak\n"
    "is then of the bf16 peak).\n"
    "--precision P is --set train.precision=P: the step's matmuls and convolutions in bf16 with\n"
    "fp32 sums (docs/precision.md); refused where bf16 cannot run; auto: bf16 where it can,\n"
    "else fp32 (the line's precision= says which ran).\n"
    "WORKLOAD is a built-in one (the same as bench/torch_ref.py times in PyTorch):\n"
    "  simclr-r18  ResNet-18 CIFAR stem (width 64), 2 views of 3x32x32, projector\n"
    "              512-2048(BN, ReLU)-128, NT-Xent tau 0.2, SGD momentum 0.9, weight decay\n"
    "  mae-vitt    ViT-Tiny patch 4 on 3x32x32, mask 0.75, decoder dim 128 depth 2 heads 4,\n"
    "              normalised-pixel loss, AdamW\n"
    "or a run config file (e.g. configs/simclr.json: its model, loss, optimizer, batch and a\n"
    "batch of its own data and augmentations).\n"
    "--profile adds a table of the time each op kind took in forward and backward over the timed\n"
    "steps; 'other' is the rest of the step (optimizer, EMA, loss bookkeeping, tape).\n"
    "Defaults: batch 128 (workloads) or the config's, 5 timed steps, 2048 for the peak.\n"
    "bench/README.md has the side-by-side comparison with PyTorch.\n";

int sslc_cmd_bench(int argc, char **argv)
{
    ssl_bench_opts_t o = {0};
    const char *what = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    if (!sets)
        return 1;
    int n_sets = 0, st = 2;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_help, stdout);
            st = 0;
            goto out;
        } else if (!strcmp(a, "--batch") && i + 1 < argc) {
            if (!sslc_arg_i64("bench", a, argv[++i], 1, 1 << 20, &o.batch_size))
                goto out;
        } else if (!strcmp(a, "--steps") && i + 1 < argc) {
            if (!sslc_arg_int("bench", a, argv[++i], 1, 1000000, &o.steps))
                goto out;
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!sslc_arg_int("bench", a, argv[++i], 0, 4096, &o.threads))
                goto out;
        } else if (!strcmp(a, "--peak-n") && i + 1 < argc) {
            if (!sslc_arg_int("bench", a, argv[++i], 1, 46340, &o.peak_n))
                goto out;
        } else if (!strcmp(a, "--profile")) {
            o.profile = 1;
        } else if (!strcmp(a, "--no-peak")) {
            o.peak_n = -1;
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            sets[n_sets++] = argv[++i];
        } else if (!strcmp(a, "--precision") && i + 1 < argc) {
            const char *p = argv[++i];
            static const char *const ps[][2] = {{"fp32", "train.precision=fp32"},
                                                {"bf16", "train.precision=bf16"},
                                                {"auto", "train.precision=auto"}};
            int k = 0;
            while (k < 3 && strcmp(p, ps[k][0]))
                k++;
            if (k == 3) {
                fprintf(stderr, "sslc bench: --precision must be fp32, bf16 or auto, got '%s'\n",
                        p);
                goto out;
            }
            sets[n_sets++] = ps[k][1];
        } else if (a[0] != '-' && !what) {
            what = a;
        } else {
            fprintf(stderr, "sslc bench: unexpected argument '%s' (see sslc bench --help)\n", a);
            goto out;
        }
    }
    if (!what) {
        fprintf(stderr, "sslc bench: give a workload (simclr-r18, mae-vitt) or a config file "
                        "(see sslc bench --help)\n");
        goto out;
    }
    if (o.batch_size < 0 || o.steps < 0 || o.threads < 0) {
        fprintf(stderr, "sslc bench: --batch, --steps and --threads must be positive\n");
        goto out;
    }
    if (ssl_bench_workload_config(what)) {
        o.workload = what;
    } else if (access(what, F_OK) == 0 || strstr(what, ".json")) {
        o.config_path = what;
    } else {
        fprintf(stderr, "sslc bench: '%s' is neither a workload (", what);
        for (const char *const *w = ssl_bench_workloads(); *w; w++)
            fprintf(stderr, "%s%s", w == ssl_bench_workloads() ? "" : ", ", *w);
        fprintf(stderr, ") nor a config file\n");
        goto out;
    }
    o.overrides = sets;
    o.n_overrides = n_sets;
    ssl_bench_result_t r;
    ssl_bench_extra_t x;
    if (ssl_bench_run_ex(&o, &r, &x) != SSL_OK) {
        fprintf(stderr, "sslc bench: %s\n", ssl_last_error());
        st = ssl_last_status() == SSL_ERR_CONFIG || ssl_last_status() == SSL_ERR_INVALID ? 2 : 1;
        goto out;
    }
    printf("%s batch=%lld threads=%d steps=%d precision=%s step_s=%.3f (min %.3f max %.3f) "
           "img_per_s=%.1f model_gflop_per_step=%.2f model_gflops=%.1f gemm_gflop_per_step=%.2f "
           "gemm_gflops=%.1f",
           r.name, (long long)r.batch_size, r.threads, r.steps, ssl_precision_name(x.precision),
           r.step_s_median, r.step_s_min, r.step_s_max, r.images_per_s, r.model_gflop_per_step,
           r.model_gflops, r.gemm_gflop_per_step, r.gemm_gflops);
    /* pct_peak: of the peak of the precision the steps ran in */
    double peak = x.precision == SSL_PRECISION_BF16 ? x.bf16_peak_gflops : r.sgemm_peak_gflops;
    if (r.sgemm_peak_gflops > 0)
        printf(" sgemm_peak=%.1f", r.sgemm_peak_gflops);
    if (x.bf16_peak_gflops > 0)
        printf(" bf16_peak=%.1f", x.bf16_peak_gflops);
    if (peak > 0)
        printf(" pct_peak=%.1f", 100 * r.model_gflops / peak);
    printf(" peak_rss_mb=%.0f cpu_s=%.3f loss=%.4f\n", r.peak_rss_bytes / 1048576.0,
           x.cpu_s_median, r.loss);
    if (o.profile) {
        ssl_op_profile_t prof[128];
        int n = ssl_profile_get(prof, 128);
        double ops = 0;
        printf("%-22s %9s %9s %9s %7s %7s\n", "op (per step)", "fwd ms", "bwd ms", "total ms",
               "share", "calls");
        for (int i = 0; i < n; i++) {
            double tot = prof[i].fwd_s + prof[i].bwd_s;
            ops += tot;
            printf("%-22s %9.1f %9.1f %9.1f %6.1f%% %7lld\n", prof[i].op,
                   1e3 * prof[i].fwd_s / r.steps, 1e3 * prof[i].bwd_s / r.steps,
                   1e3 * tot / r.steps, 100 * tot / r.step_s_total,
                   (long long)((prof[i].fwd_calls + prof[i].bwd_calls) / r.steps));
        }
        printf("%-22s %9s %9s %9.1f %6.1f%%\n", "other", "", "",
               1e3 * (r.step_s_total - ops) / r.steps, 100 * (r.step_s_total - ops) / r.step_s_total);
    }
    st = 0;
out:
    free(sets);
    return st;
}
