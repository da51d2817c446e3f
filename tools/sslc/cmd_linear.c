/* sslc linear CKPT: linear probe of a checkpoint's encoder (features computed once). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ssl/eval.h"
#include "ssl/train.h"
#include "sslc.h"

static const char *k_help =
    "usage: sslc linear CKPT [--epochs 10] [--lr 1e-3[,X...]] [--wd 1e-4[,Y...]] [--sgd]\n"
    "                   [--batch 256]\n"
    "                   [--no-standardize] [--train-limit N] [--test-limit N] [--threads N]\n"
    "                   [--blocks N] [--readout BLOCK@T] [--bn-stats N]\n"
    "       sslc linear --identity CKPT|CONFIG.json [same options]\n"
    "       sslc linear --weights FILE [--encoder JSON|FILE] CONFIG.json|CKPT [same options]\n"
    "       sslc linear --train-features TRAIN.npy --test-features TEST.npy [same options]\n"
    "\n"
    "Embeds the train and eval splits of the checkpoint's dataset once with its encoder (pooled\n"
    "features, evaluation transform) and trains a multinomial logistic regression on them:\n"
    "AdamW (or SGD with momentum, --sgd), cosine lr schedule, weight decay, features\n"
    "standardised with train statistics (BatchNorm without affine, as MAE's probe). 10% of the\n"
    "train split is held out to choose the epoch; prints validation and test top-1 of it.\n"
    "Lists of --lr and --wd train one probe per pair on the same features and report the\n"
    "pair and epoch with the best validation top-1 (the first on ties), as DINO's and MAE's\n"
    "linear evaluations sweep the learning rate.\n"
    "--identity: raw pixels scaled to [0, 1], flattened, as the features (the data section of\n"
    "the checkpoint's or the config file's run config); Fashion-MNIST with the defaults: ~84%.\n";

static void on_epoch(int epoch, double loss, double val, double test, void *user)
{
    const char *tag = user;
    printf("%sepoch %3d  loss %.4f  val %.2f%%  test %.2f%%\n", tag, epoch, loss, 100 * val,
           100 * test);
    fflush(stdout);
}

int sslc_cmd_linear(int argc, char **argv)
{
    sslc_feature_src_t src = {0};
    int taken;
    ssl_probe_opts_t o = ssl_probe_opts_default();
    double lrs[16] = {o.lr}, wds[16] = {o.weight_decay};
    int n_lr = 1, n_wd = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_help, stdout);
            fputs(sslc_weights_help, stdout);
            fputs(sslc_blocks_help, stdout);
            fputs(sslc_npy_features_help, stdout);
            return 0;
        } else if (!strcmp(a, "--epochs") && i + 1 < argc) {
            if (!sslc_arg_int("linear", a, argv[++i], 1, 100000, &o.epochs))
                return 2;
        } else if (!strcmp(a, "--lr") && i + 1 < argc) {
            if (!(n_lr = sslc_arg_list("linear", a, argv[++i], 1e-12, 100, 0, lrs, 16)))
                return 2;
        } else if (!strcmp(a, "--wd") && i + 1 < argc) {
            if (!(n_wd = sslc_arg_list("linear", a, argv[++i], 0, 10, 0, wds, 16)))
                return 2;
        } else if (!strcmp(a, "--batch") && i + 1 < argc) {
            if (!sslc_arg_int("linear", a, argv[++i], 1, 1 << 20, &o.batch_size))
                return 2;
        } else if (!strcmp(a, "--sgd")) {
            o.optimizer = SSL_PROBE_SGD;
        } else if (!strcmp(a, "--no-standardize")) {
            o.standardize = 0;
        } else if ((taken = sslc_feature_opt("linear", argc, argv, &i, &src)) < 0) {
            return 2;
        } else if (!taken) {
            fprintf(stderr, "sslc linear: unexpected argument '%s' (see sslc linear --help)\n", a);
            return 2;
        }
    }
    if ((!src.source && !src.train_features && !src.test_features) || o.epochs < 1 || o.batch_size < 1) {
        fprintf(stderr, "sslc linear: need CKPT (or CONFIG) and positive --epochs/--batch/--lr "
                        "(see --help)\n");
        return 2;
    }
    ssl_ckpt_features_t tr, te;
    if (sslc_load_features("linear", &src, &tr, &te) != 0)
        return 1;
    ssl_features_t a = {tr.x, tr.labels, tr.n, tr.dim}, b = {te.x, te.labels, te.n, te.dim};
    o.on_epoch = on_epoch;
    ssl_probe_result_t r, best = {0};
    double best_lr = lrs[0], best_wd = wds[0];
    int st = SSL_OK, sweep = n_lr * n_wd > 1;
    for (int k = 0; st == SSL_OK && k < n_lr * n_wd; k++) {
        char tag[64] = "";
        o.lr = (float)lrs[k / n_wd];
        o.weight_decay = (float)wds[k % n_wd];
        if (sweep)
            snprintf(tag, sizeof tag, "lr %g wd %g  ", (double)o.lr, (double)o.weight_decay);
        o.user = tag;
        if ((st = ssl_linear_probe(&a, &b, tr.n_classes, &o, &r, NULL, NULL)) != SSL_OK)
            break;
        if (sweep)
            printf("%sbest epoch %d: val top-1 %.2f%%, test top-1 %.2f%%\n", tag, r.best_epoch,
                   100 * r.val_top1, 100 * r.test_top1);
        if (k == 0 || r.val_top1 > best.val_top1) {
            best = r;
            best_lr = o.lr;
            best_wd = o.weight_decay;
        }
    }
    if (st != SSL_OK)
        fprintf(stderr, "sslc linear: %s\n", ssl_last_error());
    else
        printf("best epoch %d: val top-1 %.2f%%, test top-1 %.2f%% (train %lld, val %lld, "
               "test %lld, dim %lld, lr %g, wd %g%s)\n", best.best_epoch, 100 * best.val_top1,
               100 * best.test_top1, (long long)best.n_train, (long long)best.n_val,
               (long long)te.n, (long long)tr.dim, best_lr, best_wd,
               src.identity ? ", raw pixels" : "");
    ssl_ckpt_features_free(&tr);
    ssl_ckpt_features_free(&te);
    return st == SSL_OK ? 0 : 1;
}
