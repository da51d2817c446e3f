/* sslc train: run a config with a live progress line. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "ssl/train.h"
#include "sslc.h"
#include "train/dist.h"

static const char *k_help =
    "usage: sslc train CONFIG [--set key.path=value]... [--threads N] [--out DIR]\n"
    "       sslc train --resume RUN_DIR [--set key.path=value]... [--threads N]\n"
    "\n"
    "Pretrains the encoder described by CONFIG (JSON; see configs/ and docs/train.md) and\n"
    "writes RUN_DIR = DIR/NAME (DIR defaults to runs/): config.json (the resolved config),\n"
    "metrics.jsonl, checkpoints/last.safetensors and checkpoints/epoch-N.safetensors, and at\n"
    "the end report.html (as `sslc report RUN_DIR` writes it: charts of the metrics and a PCA\n"
    "scatter of 1000 test embeddings).\n"
    "Evaluation keys worth knowing: data.val_size=N holds the last N training images out as\n"
    "split \"val\" (data.eval_split=val evaluates there: tune on it, report the test split\n"
    "once); eval.encoder=target probes the EMA teacher (DINO, I-JEPA); checkpoint.save_init\n"
    "=true also writes checkpoints/init.safetensors (the random-init baseline). The library's\n"
    "ssl_trainer_step runs the same step on views you made (docs/train.md).\n"
    "Generative methods (configs/vae.json, betavae.json: loss.type vae, loss.beta,\n"
    "model.head.latent_dim; views[0].normalize=false) also print and log the eval split's\n"
    "negative ELBO at every epoch's end (test_nll in nats/image, test_bits_per_dim; over\n"
    "eval.knn_test_limit images, the whole eval split at the last epoch) and write\n"
    "RUN_DIR/pictures/epoch-NNN-{recon,samples}.png (eval.samples samples, 64; 0 = none),\n"
    "which the report shows; their features for kNN, probes and embed are the posterior\n"
    "means mu. The GANs (dcgan.json, bigan.json) step two optimizers in turn\n"
    "(discriminator, then generator: loss_d, loss_g logged) and write samples; the diffusion\n"
    "model (ddpm.json: model.unet, no encoder) writes samples of its reverse process; the\n"
    "gated PixelCNN (pixelcnn.json: model.network, no encoder) logs the exact -log p(x) as\n"
    "test_nll / test_bits_per_dim, reads a middle layer pooled as its features and draws its\n"
    "samples pixel by pixel. sslc sample CKPT draws a grid of samples of any of them.\n"
    "BEiT is two runs: configs/beit_tokenizer.json trains a VQ-VAE tokenizer (loss.type vqvae;\n"
    "prints and logs the eval split's test_rec_mse, test_perplexity and test_codes_used at\n"
    "every epoch's end and writes RUN_DIR/pictures/epoch-NNN-recon.png), then\n"
    "configs/beit.json predicts its codes at masked patches, the tokenizer's checkpoint named\n"
    "by model.tokenizer.checkpoint\n"
    "(default runs/beit_tokenizer/checkpoints/last.safetensors; --set to choose another).\n"
    "Speed: train.precision=bf16 runs matmuls and convolutions in bf16 with fp32 sums\n"
    "(oneDNN; refused where the build or the CPU cannot: docs/precision.md); train.precision=auto\n"
    "runs bf16 where it can and fp32 elsewhere, says which, and keeps it in config.json.\n"
    "Several processes: mpirun -np N sslc train CONFIG trains data-parallel and equals one\n"
    "process at the same train.batch_size (the global batch; a multiple of N); rank 0 writes\n"
    "the run, an error on any rank ends all. train.sync_bn (true) normalises batch norm over\n"
    "the whole batch, train.check_sync (false) compares the ranks' parameters every step,\n"
    "not only after the first and at each epoch's end; with several ranks the epoch lines of\n"
    "metrics.jsonl time the gradient sums (docs/distributed.md: launching on a cluster, what\n"
    "is synchronised, tolerances, failures; the build needs MPI: SSL_MPI).\n"
    "\n"
    "  --set k=v            override one config key (repeatable), e.g. --set train.epochs=50\n"
    "  --resume RUN_DIR     continue from RUN_DIR/checkpoints/last.safetensors exactly as the\n"
    "                       uninterrupted run would have (config taken from the checkpoint)\n"
    "  --threads N          worker threads for math (default: train.threads, 0 = all cores,\n"
    "                       or with several ranks on one machine each rank's share of them);\n"
    "                       on cores other processes use too, run with OMP_WAIT_POLICY=PASSIVE\n"
    "                       in the environment (docs/train.md, \"Sharing the cores\")\n"
    "  --out DIR            parent directory of the run directory (default: runs)\n"
    "  --stop-after N       stop after N epochs as if interrupted (schedules still span\n"
    "                       train.epochs); resume later with --resume\n"
    "  --quiet              no progress line, only the per-epoch summary\n"
    "  --no-report          do not write report.html at the end\n"
    "\n"
    "Ctrl-C (SIGINT) or SIGTERM finishes the step in progress, saves\n"
    "RUN_DIR/checkpoints/last.safetensors there (checkpoints can be mid-epoch), prints how to\n"
    "resume and exits 130 (143 for SIGTERM); a second Ctrl-C quits at once without saving.\n"
    "Under mpirun the ranks stop at the same step if mpirun leaves them the time: Open MPI's\n"
    "kills them 1 s after passing on Ctrl-C (mpirun --mca odls_base_sigkill_timeout 30 gives\n"
    "30 s) and at once after an error on any rank (docs/distributed.md).\n"
    "checkpoint.every_steps=N also saves last.safetensors every N steps inside an epoch. A run\n"
    "holds RUN_DIR/lock while it trains: a second --resume of a live run is refused. Resuming\n"
    "removes what an interruption left: temporary files, epoch-N files beyond\n"
    "checkpoint.keep_last, and lines of metrics.jsonl after the checkpoint's step.\n"
    "\n"
    "Exit status: 0 done, 1 runtime error, 2 usage or config error, 130 / 143 stopped by\n"
    "SIGINT / SIGTERM with a checkpoint to resume from.\n";

/* Ctrl-C / SIGTERM: the first asks the trainer to stop after the step in progress and save a
 * checkpoint there; a second one stops at once (the default action). What it prints is set
 * before the handler can run (write() of a ready string is all a handler may do): with
 * several ranks rank 0 says what happens to the job, the others nothing. */
static ssl_trainer_t *volatile g_trainer;
static volatile sig_atomic_t g_signal, g_signals;
static const char k_stop_one[] = "\nsslc train: stopping after this step to save a checkpoint "
                                 "(press Ctrl-C again to quit at once, losing it)\n";
/* mpirun passes a signal on as SIGTERM to every rank when it ends the job (its own Ctrl-C or
 * SIGTERM, or MPI_Abort after a rank's error) and sends SIGKILL odls_base_sigkill_timeout
 * seconds later (Open MPI: 1): the stop completes only if that leaves time */
static const char k_stop_ranks[] =
    "\nsslc train: signal on rank 0: if another rank failed (its message says why), the job "
    "is ending now and nothing more is saved; else every rank stops after this step and rank 0 "
    "saves a checkpoint, if mpirun leaves the time (Open MPI kills the ranks 1 s after passing "
    "on a signal; mpirun --mca odls_base_sigkill_timeout 30 gives 30 s; docs/distributed.md)\n";
static const char *volatile g_stop_msg = k_stop_one;
static volatile size_t g_stop_len = sizeof k_stop_one - 1;

static void on_signal(int sig)
{
    if (g_signals++ > 0) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    g_signal = sig;
    ssl_trainer_t *t = g_trainer;
    if (t)
        ssl_trainer_request_stop(t);
    ssize_t w = g_stop_len ? write(STDERR_FILENO, g_stop_msg, g_stop_len) : 0;
    (void)w;
}

static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* An error of this rank; with several ranks it names the rank and ends the whole job with
 * `code` (MPI_Abort: the other ranks may be waiting for this one in a collective). */
static int fail(int code)
{
    if (ssl__dist_size() > 1) {
        fprintf(stderr,
                "sslc train: rank %d of %d: %s\nsslc train: rank %d of %d: ending every rank "
                "now (MPI_Abort, exit %d); checkpoints saved before stay\n",
                ssl__dist_rank(), ssl__dist_size(), ssl_last_error(), ssl__dist_rank(),
                ssl__dist_size(), code);
        ssl__dist_abort(code);
    }
    fprintf(stderr, "sslc train: %s\n", ssl_last_error());
    return code;
}

typedef struct prog {
    int tty, quiet, no_report;
} prog_t;

static void fmt_time(double s, char *buf, size_t n)
{
    long t = s > 0 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

static void on_progress(const ssl_train_progress_t *p, void *user)
{
    prog_t *g = user;
    char eta[32];
    fmt_time(p->eta_s, eta, sizeof eta);
    if (p->epoch_done) {
        if (g->tty && !g->quiet)
            printf("\r\033[K");
        printf("epoch %lld/%lld  loss %.4f", (long long)p->epoch, (long long)p->epochs, p->loss);
        if (p->knn_top1 >= 0)
            printf("  knn top-1 %.2f%%", 100 * p->knn_top1);
        if (p->knn_top1_init >= 0)
            printf(" (random init %.2f%%)", 100 * p->knn_top1_init);
        if (isfinite(p->test_nll)) /* a generative method's bound on the eval split */
            printf("  test nll %.2f nats/image (%.4f bits/dim)", p->test_nll,
                   p->test_bits_per_dim);
        for (int i = 0; i < p->test_metrics.n; i++) /* e.g. the tokenizer's perplexity */
            printf("%s %s %.4g", i ? "," : "  test", p->test_metrics.name[i],
                   p->test_metrics.value[i]);
        printf("  %.1f img/s\n", p->images_per_s);
        fflush(stdout);
        return;
    }
    if (g->quiet)
        return;
    if (g->tty) {
        int width = 24, filled = (int)(width * p->step / (p->steps_per_epoch ? p->steps_per_epoch : 1));
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        printf("\r\033[Kepoch %lld/%lld [%s] %lld/%lld  loss %.4f  lr %.3g  %.1f img/s  ETA %s",
               (long long)p->epoch, (long long)p->epochs, bar, (long long)p->step,
               (long long)p->steps_per_epoch, p->loss, p->lr, p->images_per_s, eta);
        fflush(stdout);
    } else if (p->is_log_point) {
        printf("epoch %lld/%lld step %lld/%lld loss %.4f lr %.3g %.1f img/s ETA %s\n",
               (long long)p->epoch, (long long)p->epochs, (long long)p->step,
               (long long)p->steps_per_epoch, p->loss, p->lr, p->images_per_s, eta);
        fflush(stdout);
    }
}

int sslc_cmd_train(int argc, char **argv)
{
    ssl_train_opts_t o;
    memset(&o, 0, sizeof o);
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    prog_t g = {isatty(STDOUT_FILENO), 0, 0};
    if (!sets)
        return 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_help, stdout);
            free(sets);
            return 0;
        } else if (!strcmp(a, "--set") && i + 1 < argc) {
            sets[o.n_overrides++] = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            sets[o.n_overrides++] = a + 6;
        } else if (!strcmp(a, "--resume") && i + 1 < argc) {
            o.resume_dir = argv[++i];
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!sslc_arg_int("train", a, argv[++i], 0, 4096, &o.threads))
                goto usage;
        } else if (!strcmp(a, "--out") && i + 1 < argc) {
            o.out_dir = argv[++i];
        } else if (!strcmp(a, "--stop-after") && i + 1 < argc) {
            if (!sslc_arg_int("train", a, argv[++i], 1, 1000000, &o.stop_after_epochs))
                goto usage;
        } else if (!strcmp(a, "--quiet")) {
            g.quiet = 1;
        } else if (!strcmp(a, "--no-report")) {
            g.no_report = 1;
        } else if (a[0] != '-' && !o.config_path) {
            o.config_path = a;
        } else {
            fprintf(stderr, "sslc train: unexpected argument '%s' (see sslc train --help)\n", a);
            goto usage;
        }
    }
    if (!o.config_path == !o.resume_dir) {
        fprintf(stderr, "sslc train: give a CONFIG or --resume RUN_DIR (see sslc train --help)\n");
    usage:
        free(sets);
        return 2;
    }
    if (o.config_path && access(o.config_path, R_OK) != 0) { /* a usage error, as a typo */
        fprintf(stderr, "sslc train: cannot read config file '%s': %s\n", o.config_path,
                strerror(errno));
        goto usage;
    }
    o.overrides = sets;
    o.progress = on_progress;
    o.user = &g;
    /* join the MPI job first (the trainer would): a signal may come while the ranks wait for
     * each other in ssl_trainer_create, and rank 0 then speaks for the job */
    if (ssl__dist_init() != SSL_OK) {
        free(sets);
        return fail(1);
    }
    if (ssl__dist_size() > 1) {
        g_stop_msg = k_stop_ranks;
        g_stop_len = ssl__dist_rank() == 0 ? sizeof k_stop_ranks - 1 : 0;
    }
    catch_signals();
    ssl_trainer_t *t = ssl_trainer_create(&o);
    g_trainer = t;
    if (t && g_signal) /* arrived while the data was loading */
        ssl_trainer_request_stop(t);
    if (!t) {
        int st = ssl_last_status();
        free(sets);
        return fail((st == SSL_ERR_CONFIG || (st == SSL_ERR_FORMAT && !o.resume_dir)) ? 2 : 1);
    }
    const int rank0 = ssl__dist_rank() == 0;
    if (rank0)
        printf("run directory: %s\n", ssl_trainer_run_dir(t));
    int st = ssl_trainer_run(t);
    if (st == SSL_ERR_INTERRUPTED && !rank0) {
        /* every rank stopped at the same step; rank 0 saved and says how to resume */
    } else if (st == SSL_ERR_INTERRUPTED) {
        if (g.tty)
            printf("\n");
        fflush(stdout);
        fprintf(stderr, "sslc train: %s\nresume with: sslc train --resume %s\n", ssl_last_error(),
                ssl_trainer_run_dir(t));
    } else if (st != SSL_OK) {
        if (g.tty)
            printf("\n");
        fail(1);
    } else if (rank0) {
        printf("done: %s/checkpoints/last.safetensors\n", ssl_trainer_run_dir(t));
        /* the training is done and saved whatever happens here: a failed report only warns */
        if (!g.no_report && !g_signal) {
            fflush(stdout);
            const char *run = ssl_trainer_run_dir(t);
            /* without the scatter when the embeddings cannot be made (no test split) */
            if (sslc_report_write(run, NULL, NULL, 1000, 0) != 0 &&
                sslc_report_write(run, NULL, NULL, 1000, 1) != 0)
                fprintf(stderr,
                        "sslc train: report.html not written (the run is complete; "
                        "retry with sslc report %s)\n",
                        run);
        }
    }
    g_trainer = NULL;
    ssl_trainer_free(t);
    free(sets);
    if (st == SSL_ERR_INTERRUPTED)
        return 128 + (g_signal ? (int)g_signal : SIGINT); /* as the shell reports a signal */
    return st == SSL_OK ? 0 : 1;
}
