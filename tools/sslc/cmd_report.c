/* sslc report RUN_DIR: a self-contained report.html of a run (metrics charts, PCA scatter). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "report.h"
#include "ssl/eval.h"
#include "ssl/train.h"
#include "sslc.h"

static const char *k_help =
    "usage: sslc report RUN_DIR [--out FILE] [--points N] [--checkpoint CKPT] [--no-scatter]\n"
    "                   [--threads N]\n"
    "\n"
    "Writes RUN_DIR/report.html (or FILE): one self-contained page (inline SVG and CSS, no\n"
    "scripts, nothing fetched) with the run's name and config summary, charts of the training\n"
    "loss, learning rate, online kNN top-1 and RankMe (and alignment / uniformity when logged)\n"
    "against the global step from RUN_DIR/metrics.jsonl, and a 2-D PCA scatter of the pooled\n"
    "encoder features of the first N (default 1000) images of the eval split, computed with the\n"
    "checkpoint (default RUN_DIR/checkpoints/last.safetensors), coloured by class. A metric the\n"
    "log lacks is named on the page instead of its chart; a malformed metrics line is an error\n"
    "naming the file and line. For a generative method (vae, pixelcnn, the vqvae tokenizer)\n"
    "the page also shows every epoch's pictures (RUN_DIR/pictures, embedded as PNG): test\n"
    "images beside their reconstructions, and samples of the model (vae, pixelcnn); the table\n"
    "has every test_* metric of the eval split: the vae's -ELBO or the pixelcnn's -log p(x)\n"
    "(test_nll, nats/image, test_bits_per_dim), the tokenizer's reconstruction error\n"
    "(test_rec_mse, per pixel) and code use (test_perplexity, test_codes_used).\n";

typedef struct chart_def {
    const char *id, *title, *ylabel, *keys[2], *labels[2], *missing;
    int warn; /* a missing series is also reported on stderr (every method logs loss and lr;
                 kNN, RankMe and alignment are absent by configuration or by method) */
    double scale; /* y multiplier (fractions -> percent) */
} chart_def_t;

static const chart_def_t k_charts[] = {
    {"loss", "Training loss", "loss", {"loss", "loss_mean"}, {"per log point", "epoch mean"},
     "no 'loss' in the log", 1, 1},
    {"lr", "Learning rate", "lr", {"lr", NULL}, {"lr", NULL}, "no 'lr' in the log", 1, 1},
    {"knn", "Online kNN top-1", "top-1 (%)", {"knn_top1", NULL}, {"kNN", NULL},
     "no 'knn_top1' in the log (eval.knn_every was 0?)", 0, 100},
    {"rankme", "RankMe of the last batch's embeddings", "RankMe", {"rankme", NULL},
     {"RankMe", NULL}, "no 'rankme' in the log (the method has no embedding to measure?)", 0, 1},
    {"align", "Alignment and uniformity (last batch)", "value", {"alignment", "uniformity"},
     {"alignment", "uniformity"}, "no 'alignment' in the log (the method has no positive pairs?)",
     0, 1},
};

/* Charts from the log; returns how many were drawn. */
static int metric_charts(rep_buf_t *b, const ssl_run_log_t *log, const char *metrics_path)
{
    int drawn = 0;
    double *x[2], *y[2];
    for (int k = 0; k < 2; k++) {
        x[k] = malloc(((size_t)log->n_rows + 1) * sizeof(double));
        y[k] = malloc(((size_t)log->n_rows + 1) * sizeof(double));
    }
    int ok = x[0] && y[0] && x[1] && y[1];
    if (!ok)
        fprintf(stderr, "sslc report: out of memory for %lld metrics rows\n",
                (long long)log->n_rows);
    for (size_t c = 0; ok && c < sizeof k_charts / sizeof k_charts[0]; c++) {
        const chart_def_t *d = &k_charts[c];
        rep_series_t s[2];
        int ns = 0;
        for (int k = 0; k < 2 && d->keys[k]; k++) {
            int64_t m = ssl_run_log_series(log, "step", d->keys[k], x[ns], y[ns]);
            for (int64_t i = 0; i < m; i++)
                y[ns][i] *= d->scale;
            if (m > 0) {
                s[ns] = (rep_series_t){d->labels[k], x[ns], y[ns], m};
                ns++;
            }
        }
        rep_printf(b, "<figure>\n");
        if (ns > 0) {
            rep_line_chart(b, d->id, d->title, "step", d->ylabel, s, ns);
            drawn++;
        } else {
            rep_printf(b, "<p class=\"missing\" id=\"%s\">%s: ", d->id, d->title);
            rep_escape(b, d->missing);
            rep_printf(b, " &mdash; ");
            rep_escape(b, metrics_path);
            rep_printf(b, "</p>\n");
            if (d->warn)
                fprintf(stderr, "sslc report: %s: %s\n", metrics_path, d->missing);
        }
        rep_printf(b, "</figure>\n");
    }
    for (int k = 0; k < 2; k++)
        free(x[k]), free(y[k]);
    return drawn;
}

/* A row of the table: the last finite value of column col. */
static void last_value_row(rep_buf_t *b, const ssl_run_log_t *log, int col)
{
    for (int64_t i = log->n_rows - 1; col >= 0 && i >= 0; i--) {
        double v = log->values[i * SSL_RUN_LOG_MAX_KEYS + col];
        if (isfinite(v)) {
            rep_printf(b, "<tr><td>%s</td><td>%.6g</td></tr>\n", log->keys[col], v);
            break;
        }
    }
}

/* The last finite value of each collapse metric, then of every test_* metric of a generative
 * method (the VAE's -ELBO, the VQ tokenizer's reconstruction error and code perplexity), as a
 * table. */
static void last_values(rep_buf_t *b, const ssl_run_log_t *log)
{
    static const char *const keys[] = {"epoch",     "step",          "loss_mean",
                                       "knn_top1",  "rankme",        "embedding_std",
                                       "alignment", "uniformity"};
    rep_printf(b, "<table>\n<tr><th>metric</th><th>latest value</th></tr>\n");
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        last_value_row(b, log, ssl_run_log_key(log, keys[k]));
    for (int col = 0; col < log->n_keys; col++)
        if (!strncmp(log->keys[col], "test_", 5))
            last_value_row(b, log, col);
    rep_printf(b, "</table>\n");
}

static int file_exists(const char *path);

/* The file at path as a base64 data URI of a PNG into b; 0 when it cannot be read. */
static int png_data_uri(rep_buf_t *b, const char *path)
{
    static const char k64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char in[3];
    size_t n;
    rep_printf(b, "data:image/png;base64,");
    while ((n = fread(in, 1, 3, f)) > 0) {
        unsigned v = (unsigned)in[0] << 16 | (n > 1 ? (unsigned)in[1] << 8 : 0) |
                     (n > 2 ? in[2] : 0);
        rep_printf(b, "%c%c%c%c", k64[v >> 18 & 63], k64[v >> 12 & 63],
                   n > 1 ? k64[v >> 6 & 63] : '=', n > 2 ? k64[v & 63] : '=');
    }
    fclose(f);
    return 1;
}

/* A generative method's pictures (RUN_DIR/pictures/epoch-NNN-{recon,samples}.png, written by
 * the trainer at every epoch's end), embedded epoch by epoch; nothing when there are none. */
static void pictures(rep_buf_t *b, const char *run)
{
    static const char *const kinds[2] = {"recon", "samples"};
    static const char *const titles[2] = {
        "rows of 8 test images, each above the row of their reconstructions",
        "samples of the model (the same seed every epoch)"};
    char path[1200];
    int shown = 0;
    for (int e = 1; e < 100000; e++) {
        int have[2];
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "%s/pictures/epoch-%03d-%s.png", run, e, kinds[k]);
            have[k] = file_exists(path);
        }
        if (!have[0] && !have[1])
            break;
        if (!shown++)
            rep_printf(b, "<h2>Pictures</h2>\n");
        rep_printf(b, "<div class=\"pictures\" id=\"pictures-%d\"><h3>epoch %d</h3>\n", e, e);
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "%s/pictures/epoch-%03d-%s.png", run, e, kinds[k]);
            if (!have[k])
                continue;
            rep_printf(b, "<figure><img class=\"%s\" alt=\"epoch %d %s\" src=\"", kinds[k], e,
                       kinds[k]);
            if (!png_data_uri(b, path))
                fprintf(stderr, "sslc report: cannot read '%s'\n", path);
            rep_printf(b, "\"><figcaption>%s</figcaption></figure>\n", titles[k]);
        }
        rep_printf(b, "</div>\n");
    }
}

/* PCA scatter of the checkpoint's test features; 0 ok, 1 error (printed). */
static int scatter(rep_buf_t *b, const char *ckpt, int64_t points)
{
    ssl_ckpt_features_t f;
    if (ssl_checkpoint_features(ckpt, NULL, points, &f) != SSL_OK) {
        fprintf(stderr, "sslc report: %s (--no-scatter writes the report without embeddings)\n",
                ssl_last_error());
        return 1;
    }
    float *xy = malloc((size_t)f.n * 2 * sizeof(float));
    double var[2], total = 0;
    int st = xy ? ssl_pca(f.x, f.n, f.dim, 2, xy, NULL, var, &total) : SSL_ERR_NOMEM;
    if (st != SSL_OK) {
        fprintf(stderr, "sslc report: %s: PCA of %lld x %lld features: %s\n", ckpt,
                (long long)f.n, (long long)f.dim, xy ? ssl_last_error() : "out of memory");
    } else {
        char title[256], xl[64], yl[64];
        snprintf(title, sizeof title, "PCA of %lld eval-split embeddings (dim %lld)",
                 (long long)f.n, (long long)f.dim);
        snprintf(xl, sizeof xl, "PC1 (%.1f%% of variance)", total > 0 ? 100 * var[0] / total : 0);
        snprintf(yl, sizeof yl, "PC2 (%.1f%% of variance)", total > 0 ? 100 * var[1] / total : 0);
        rep_printf(b, "<figure>\n");
        rep_scatter(b, title, xl, yl, xy, f.labels, f.n, f.class_names, f.n_classes);
        rep_printf(b, "<figcaption>");
        rep_escape(b, ckpt);
        rep_printf(b, "</figcaption>\n</figure>\n");
    }
    free(xy);
    ssl_ckpt_features_free(&f);
    return st == SSL_OK ? 0 : 1;
}

static int write_file(const char *path, const rep_buf_t *b)
{
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(b->p, 1, b->n, f) == b->n;
    ok = f && fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "sslc report: cannot write '%s': %s\n", path, strerror(errno));
        remove(tmp);
        return 1;
    }
    return 0;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int sslc_cmd_report(int argc, char **argv)
{
    const char *run = NULL, *out = NULL, *ckpt = NULL;
    int64_t points = 1000;
    int threads = 0, no_scatter = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_help, stdout);
            return 0;
        } else if (!strcmp(a, "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--points") && i + 1 < argc) {
            if (!sslc_arg_i64("report", a, argv[++i], 0, INT64_MAX, &points))
                return 2;
        } else if (!strcmp(a, "--checkpoint") && i + 1 < argc) {
            ckpt = argv[++i];
        } else if (!strcmp(a, "--no-scatter")) {
            no_scatter = 1;
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!sslc_arg_int("report", a, argv[++i], 0, 4096, &threads))
                return 2;
        } else if (a[0] != '-' && !run) {
            run = a;
        } else {
            fprintf(stderr, "sslc report: unexpected argument '%s' (see sslc report --help)\n", a);
            return 2;
        }
    }
    if (!run || points < 2) {
        fprintf(stderr, "sslc report: need RUN_DIR and --points >= 2 (see sslc report --help)\n");
        return 2;
    }
    ssl_set_num_threads(threads);
    return sslc_report_write(run, out, ckpt, points, no_scatter);
}

int sslc_report_write(const char *run, const char *out, const char *ckpt, int64_t points,
                      int no_scatter)
{
    char metrics[1100], config[1100], last[1100], out_buf[1100], summary[512] = "";
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run);
    snprintf(config, sizeof config, "%s/config.json", run);
    snprintf(last, sizeof last, "%s/checkpoints/last.safetensors", run);
    snprintf(out_buf, sizeof out_buf, "%s/report.html", run);
    if (!ckpt)
        ckpt = last;
    if (!out)
        out = out_buf;
    int have_log = file_exists(metrics), have_ckpt = !no_scatter && file_exists(ckpt);
    if (!have_log && !have_ckpt) {
        fprintf(stderr, "sslc report: %s: neither metrics.jsonl nor a checkpoint (%s): not a run "
                "directory?\n", run, ckpt);
        return 1;
    }
    ssl_run_log_t log;
    memset(&log, 0, sizeof log);
    if (have_log && ssl_run_log_read(metrics, &log) != SSL_OK) {
        fprintf(stderr, "sslc report: %s\n", ssl_last_error());
        return 1;
    }
    if (file_exists(config) && ssl_run_describe(config, summary, sizeof summary) != SSL_OK)
        fprintf(stderr, "sslc report: %s (config summary left out)\n", ssl_last_error());
    const char *name = strrchr(run, '/') && strrchr(run, '/')[1] ? strrchr(run, '/') + 1 : run;
    rep_buf_t b = {0};
    rep_printf(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<title>sslc report: ");
    rep_escape(&b, name);
    rep_printf(&b, "</title>\n<style>\n"
               "body{font-family:sans-serif;margin:24px;color:#222}\n"
               "figure{display:inline-block;margin:8px;vertical-align:top}\n"
               "svg text{font-family:sans-serif;font-size:11px;fill:#333}\n"
               "svg .title{font-size:13px;font-weight:bold}\n"
               "svg .plot{fill:#fff;stroke:#888}\n svg .grid{stroke:#e4e4e4}\n"
               "svg .series{fill:none;stroke-width:1.8}\n"
               ".missing{width:440px;padding:12px;border:1px dashed #c66;color:#933}\n"
               "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}\n"
               ".pictures img{width:400px;image-rendering:pixelated}\n"
               "</style>\n</head>\n<body>\n<h1>sslc report: ");
    rep_escape(&b, name);
    rep_printf(&b, "</h1>\n<p class=\"summary\">");
    rep_escape(&b, summary[0] ? summary : "(no config.json in the run directory)");
    rep_printf(&b, "</p>\n<h2>Training</h2>\n");
    int charts = 0;
    if (have_log) {
        rep_printf(&b, "<p>%lld lines of ", (long long)log.n_rows);
        rep_escape(&b, metrics);
        rep_printf(&b, "</p>\n");
        charts = metric_charts(&b, &log, metrics);
        last_values(&b, &log);
        pictures(&b, run);
    } else {
        rep_printf(&b, "<p class=\"missing\">no metrics.jsonl in ");
        rep_escape(&b, run);
        rep_printf(&b, "</p>\n");
        fprintf(stderr, "sslc report: %s: no such file; charts left out\n", metrics);
    }
    rep_printf(&b, "<h2>Embeddings</h2>\n");
    int scatter_ok = 0;
    if (have_ckpt) {
        if (scatter(&b, ckpt, points) != 0) {
            ssl_run_log_free(&log);
            free(b.p);
            return 1;
        }
        scatter_ok = 1;
    } else {
        rep_printf(&b, "<p class=\"missing\">no scatter: %s</p>\n",
                   no_scatter ? "--no-scatter" : "no checkpoint");
    }
    rep_printf(&b, "<p>sslc %s</p>\n</body>\n</html>\n", ssl_version());
    ssl_run_log_free(&log);
    int rc = b.oom ? (fprintf(stderr, "sslc report: out of memory\n"), 1) : write_file(out, &b);
    if (rc == 0)
        printf("%s: %d charts%s, %zu bytes\n", out, charts, scatter_ok ? " + PCA scatter" : "",
               b.n);
    free(b.p);
    return rc;
}
