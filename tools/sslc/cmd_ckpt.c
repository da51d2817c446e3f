/* sslc embed / sslc info CKPT: use and inspect training checkpoints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ssl/eval.h"
#include "ssl/io.h"
#include "ssl/train.h"
#include "sslc.h"

static const char *k_embed_help =
    "usage: sslc embed CKPT --out FEATS.npy [--split test|train] [--limit N] [--threads N]\n"
    "                  [--blocks N] [--readout BLOCK@T] [--bn-stats N]\n"
    "       sslc embed --weights FILE [--encoder JSON|FILE] CONFIG.json|CKPT --out FEATS.npy\n"
    "                  [same options]\n"
    "\n"
    "Embeds a split of the checkpoint's dataset (data section of its config) with its encoder:\n"
    "pooled features, evaluation transform (resize + normalise), no augmentation. Writes\n"
    "FEATS.npy (float32, N x D) and, when the data is labelled, FEATS.labels.npy (int32, N).\n";

/* ssl_embed_checkpoint's files from torchvision/timm weights (o->checkpoint: the data's
 * config or checkpoint). */
static int embed_weights(const ssl_embed_opts_t *o, const char *encoder, const char *weights,
                         int64_t *n, int64_t *d)
{
    const char *json_src;
    char *json = NULL;
    if (encoder && !(json = sslc_read_json_arg(encoder, &json_src)))
        return ssl_set_error(SSL_ERR_IO, "cannot read --encoder %s", encoder);
    ssl_ckpt_features_t f;
    int st = ssl_weights_features(json, weights, o->checkpoint, o->split, o->limit, &f);
    free(json);
    if (st == SSL_OK)
        st = ssl_npy_save_f32_2d(o->out_path, f.n, f.dim, f.x);
    if (st == SSL_OK && f.labels)
        st = ssl_npy_save_labels_i32(o->labels_path, f.n, f.labels);
    *n = f.n;
    *d = f.dim;
    ssl_ckpt_features_free(&f);
    return st;
}

int sslc_cmd_embed(int argc, char **argv)
{
    ssl_embed_opts_t o;
    memset(&o, 0, sizeof o);
    int threads = 0;
    const char *encoder = NULL, *weights = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_embed_help, stdout);
            fputs(sslc_weights_help, stdout);
            fputs(sslc_blocks_help, stdout);
            return 0;
        } else if (!strcmp(a, "--out") && i + 1 < argc) {
            o.out_path = argv[++i];
        } else if (!strcmp(a, "--split") && i + 1 < argc) {
            o.split = argv[++i];
        } else if (!strcmp(a, "--limit") && i + 1 < argc) {
            if (!sslc_arg_i64("embed", a, argv[++i], 0, INT64_MAX, &o.limit))
                return 2;
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!sslc_arg_int("embed", a, argv[++i], 0, 4096, &threads))
                return 2;
        } else if (!strcmp(a, "--readout") && i + 1 < argc) {
            o.readout = argv[++i];
        } else if (!strcmp(a, "--bn-stats") && i + 1 < argc) {
            if (!sslc_arg_i64("embed", a, argv[++i], 1, INT64_MAX, &o.bn_stats))
                return 2;
        } else if (!strcmp(a, "--blocks") && i + 1 < argc) {
            if (!sslc_arg_int("embed", a, argv[++i], 1, 64, &o.blocks))
                return 2;
        } else if (!strcmp(a, "--encoder") && i + 1 < argc) {
            encoder = argv[++i];
        } else if (!strcmp(a, "--weights") && i + 1 < argc) {
            weights = argv[++i];
        } else if (a[0] != '-' && !o.checkpoint) {
            o.checkpoint = a;
        } else {
            fprintf(stderr, "sslc embed: unexpected argument '%s' (see sslc embed --help)\n", a);
            return 2;
        }
    }
    if (!o.checkpoint || !o.out_path || (encoder && !weights) ||
        (weights && (o.blocks || o.readout || o.bn_stats))) {
        fprintf(stderr, "sslc embed: CKPT (or CONFIG with --weights) and --out are required; "
                        "--encoder needs --weights; --blocks, --readout and --bn-stats are not "
                        "for --weights "
                        "(see sslc embed --help)\n");
        return 2;
    }
    char labels[4096];
    if (sslc_labels_path(o.out_path, labels, sizeof labels) != 0) {
        fprintf(stderr, "sslc embed: --out path too long: %s\n", o.out_path);
        return 2;
    }
    o.labels_path = labels;
    ssl_set_num_threads(threads);
    int64_t n = 0, d = 0;
    if ((weights ? embed_weights(&o, encoder, weights, &n, &d)
                 : ssl_embed_checkpoint(&o, &n, &d)) != SSL_OK) {
        fprintf(stderr, "sslc embed: %s\n", ssl_last_error());
        return 1;
    }
    printf("%s: %lld x %lld float32\n%s: labels\n", o.out_path, (long long)n, (long long)d,
           labels);
    return 0;
}

static const char *k_info_help =
    "usage: sslc info CKPT [--tensors] [--no-metrics] [--metrics-limit N] [--threads N]\n"
    "       sslc info --encoder JSON|FILE [--size N]\n"
    "\n"
    "CKPT: a safetensors checkpoint. Prints its metadata (format, epoch, step, seed), the run\n"
    "name and method, parameter counts per module and, with --tensors, every tensor.\n"
    "For a training checkpoint it also prints collapse metrics: RankMe and embedding std of the\n"
    "pooled encoder features of the first N (default 1000) eval-split images, alignment and\n"
    "uniformity of two augmented views of them (--no-metrics skips this), and the values the\n"
    "trainer logged for the checkpoint's epoch in the run's metrics.jsonl (projector outputs of\n"
    "the last training batch), when that file is beside the checkpoints directory.\n";

/* The epoch line of the run's metrics.jsonl for this checkpoint's epoch. */
static void print_logged_metrics(const char *ckpt, const char *epoch)
{
    char dir[1100], path[1200];
    snprintf(dir, sizeof dir, "%s", ckpt);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    size_t n = strlen(dir);
    if (!strcmp(dir, "checkpoints"))
        snprintf(dir, sizeof dir, ".");
    else if (n > 12 && !strcmp(dir + n - 12, "/checkpoints")) /* runs/NAME/checkpoints */
        dir[n - 12] = '\0';
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    fclose(f);
    ssl_run_log_t log;
    if (ssl_run_log_read(path, &log) != SSL_OK) {
        fprintf(stderr, "sslc info: warning: %s\n", ssl_last_error());
        return;
    }
    static const char *const keys[] = {"rankme", "embedding_std", "alignment", "uniformity",
                                       "knn_top1", "loss_mean"};
    int ke = ssl_run_log_key(&log, "epoch"), kl = ssl_run_log_key(&log, "loss_mean");
    double want = epoch ? atof(epoch) : -1;
    int64_t row = -1;
    for (int64_t i = 0; ke >= 0 && kl >= 0 && i < log.n_rows; i++)
        if (log.values[i * SSL_RUN_LOG_MAX_KEYS + ke] == want &&
            log.values[i * SSL_RUN_LOG_MAX_KEYS + kl] == log.values[i * SSL_RUN_LOG_MAX_KEYS + kl])
            row = i;
    if (row < 0) {
        printf("logged      %s has no epoch line for epoch %s\n", path, epoch ? epoch : "?");
    } else {
        printf("logged      %s, epoch %s (projector outputs of the last batch)\n", path, epoch);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            int c = ssl_run_log_key(&log, keys[k]);
            double v = c >= 0 ? log.values[row * SSL_RUN_LOG_MAX_KEYS + c] : NAN;
            if (v == v)
                printf("  %-14s %.6g\n", keys[k], v);
        }
    }
    ssl_run_log_free(&log);
}

static void print_measured_metrics(const char *ckpt, int64_t limit)
{
    ssl_collapse_report_t r;
    if (ssl_checkpoint_collapse(ckpt, NULL, limit, &r) != SSL_OK) {
        fprintf(stderr, "sslc info: collapse metrics: %s\n", ssl_last_error());
        return;
    }
    printf("collapse    pooled encoder features of %lld eval-split images (dim %lld; "
           "--no-metrics skips)\n", (long long)r.n, (long long)r.dim);
    printf("  %-14s %.6g\n  %-14s %.6g  (1/sqrt(dim) = %.4g when spread, 0 when collapsed)\n",
           "rankme", r.rankme, "embedding_std", r.embedding_std, 1.0 / sqrt((double)r.dim));
    printf("  %-14s %.6g  (two augmented views, lower is better)\n  %-14s %.6g\n",
           "alignment", r.alignment, "uniformity", r.uniformity);
}

int sslc_cmd_info_ckpt(int argc, char **argv)
{
    const char *path = NULL;
    int tensors = 0, metrics = 1, threads = 0;
    int64_t metrics_limit = 1000;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--tensors"))
            tensors = 1;
        else if (!strcmp(argv[i], "--no-metrics"))
            metrics = 0;
        else if (!strcmp(argv[i], "--metrics-limit") && i + 1 < argc) {
            if (!sslc_arg_i64("info", argv[i], argv[i + 1], 1, INT64_MAX, &metrics_limit))
                return 2;
            i++;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (!sslc_arg_int("info", argv[i], argv[i + 1], 0, 4096, &threads))
                return 2;
            i++;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(k_info_help, stdout);
            return 0;
        } else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "sslc info: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!path || metrics_limit < 2) {
        fputs(k_info_help, stderr);
        return 2;
    }
    ssl_set_num_threads(threads);
    ssl_st_t *f = ssl_st_open(path);
    if (!f) {
        fprintf(stderr, "sslc info: %s\n", ssl_last_error());
        return 1;
    }
    printf("file        %s\n", path);
    static const char *const keys[] = {"format", "format_version", "sslc_version", "epoch",
                                       "step", "seed", "knn_top1_init"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = ssl_st_meta(f, keys[i]);
        if (v)
            printf("%-11s %s\n", keys[i], v);
    }
    /* parameter counts per top-level module ("encoder", "projector", "target.encoder", ...) */
    struct { char name[64]; int64_t n; int count; } mods[32];
    int n_mods = 0;
    int64_t total = 0;
    for (int i = 0; i < ssl_st_count(f); i++) {
        const ssl_st_tensor_t *t = ssl_st_tensor(f, i);
        char mod[64];
        const char *dot = strchr(t->name, '.');
        if (dot && !strncmp(t->name, "target.", 7) && strchr(dot + 1, '.'))
            dot = strchr(dot + 1, '.');
        snprintf(mod, sizeof mod, "%.*s", dot ? (int)(dot - t->name) : (int)strlen(t->name),
                 t->name);
        int j = 0;
        while (j < n_mods && strcmp(mods[j].name, mod))
            j++;
        if (j == n_mods && n_mods < 32) {
            snprintf(mods[n_mods].name, sizeof mods[n_mods].name, "%s", mod);
            mods[n_mods].n = 0;
            mods[n_mods++].count = 0;
        }
        if (j < n_mods) {
            mods[j].n += t->numel;
            mods[j].count++;
        }
        total += t->numel;
    }
    printf("tensors     %d (%lld values)\n", ssl_st_count(f), (long long)total);
    for (int j = 0; j < n_mods; j++)
        printf("  %-24s %5d tensors %12lld values\n", mods[j].name, mods[j].count,
               (long long)mods[j].n);
    if (tensors)
        for (int i = 0; i < ssl_st_count(f); i++) {
            const ssl_st_tensor_t *t = ssl_st_tensor(f, i);
            printf("  %-48s %-5s (", t->name, ssl_dtype_name(t->dtype));
            for (int d = 0; d < t->ndim; d++)
                printf(d ? ", %lld" : "%lld", (long long)t->shape[d]);
            printf(")\n");
        }
    const char *cfg = ssl_st_meta(f, "config");
    if (cfg) {
        print_logged_metrics(path, ssl_st_meta(f, "epoch"));
        if (metrics)
            print_measured_metrics(path, metrics_limit);
    }
    if (cfg)
        printf("config      (resolved, %zu bytes; sslc info --tensors lists every tensor)\n%s",
               strlen(cfg), cfg);
    ssl_st_close(f);
    return 0;
}
