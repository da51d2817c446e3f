/* sslc knn CKPT: kNN evaluation of a checkpoint's encoder (pooled features). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ssl/eval.h"
#include "ssl/train.h"
#include "sslc.h"

static const char *k_help =
    "usage: sslc knn CKPT [--k 10,20,100,200] [--t 0.07] [--majority] [--euclidean]\n"
    "                [--train-limit N] [--test-limit N] [--threads N] [--blocks N]\n"
    "                [--readout BLOCK@T] [--bn-stats N]\n"
    "       sslc knn --identity CKPT|CONFIG.json [same options]\n"
    "       sslc knn --weights FILE [--encoder JSON|FILE] CONFIG.json|CKPT [same options]\n"
    "       sslc knn --train-features TRAIN.npy --test-features TEST.npy [same options]\n"
    "\n"
    "Embeds the train split (the bank) and the eval split of the checkpoint's dataset with its\n"
    "encoder (pooled features, evaluation transform), L2-normalises them and classifies every\n"
    "test image by its k nearest bank images: votes weighted by exp(cos/T) (default, k=200,\n"
    "T=0.07) or plain majority. Lists of k and T are swept in one pass over the similarities.\n"
    "Prints top-1 (and top-5 with more than 5 classes) for every setting.\n"
    "--identity: raw pixels scaled to [0, 1], flattened, as the features (the data section of\n"
    "the checkpoint's or the config file's run config). Fashion-MNIST, all 60k/10k images:\n"
    "79.1% (cosine, k=200, T=0.07), 85.5% (--euclidean --majority --k 5).\n";

int sslc_cmd_knn(int argc, char **argv)
{
    sslc_feature_src_t src = {0};
    double ks[16] = {200}, ts[16] = {0.07};
    int nk = 1, nt = 1, majority = 0, euclid = 0, taken;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_help, stdout);
            fputs(sslc_weights_help, stdout);
            fputs(sslc_blocks_help, stdout);
            fputs(sslc_npy_features_help, stdout);
            return 0;
        } else if (!strcmp(a, "--k") && i + 1 < argc) {
            if (!(nk = sslc_arg_list("knn", a, argv[++i], 1, 1e6, 1, ks, 16)))
                return 2;
        } else if (!strcmp(a, "--t") && i + 1 < argc) {
            if (!(nt = sslc_arg_list("knn", a, argv[++i], 1e-4, 100, 0, ts, 16)))
                return 2;
        } else if (!strcmp(a, "--majority")) {
            majority = 1;
        } else if (!strcmp(a, "--euclidean")) {
            euclid = 1;
        } else if ((taken = sslc_feature_opt("knn", argc, argv, &i, &src)) < 0) {
            return 2;
        } else if (!taken) {
            fprintf(stderr, "sslc knn: unexpected argument '%s' (see sslc knn --help)\n", a);
            return 2;
        }
    }
    if ((!src.source && !src.train_features && !src.test_features) || nk <= 0 || nt <= 0) {
        fprintf(stderr, "sslc knn: need CKPT (or CONFIG) and valid --k/--t lists (see sslc knn "
                        "--help)\n");
        return 2;
    }
    for (int i = 0; i < nk; i++)
        if (ks[i] < 1) {
            fprintf(stderr, "sslc knn: --k values must be >= 1\n");
            return 2;
        }
    for (int i = 0; i < nt; i++)
        if (!(ts[i] > 0)) {
            fprintf(stderr, "sslc knn: --t values must be > 0\n");
            return 2;
        }
    ssl_ckpt_features_t tr, te;
    if (sslc_load_features("knn", &src, &tr, &te) != 0)
        return 1;
    int kk[16];
    float tt[16];
    for (int i = 0; i < nk; i++)
        kk[i] = (int)ks[i] < tr.n ? (int)ks[i] : (int)tr.n;
    for (int i = 0; i < nt; i++)
        tt[i] = (float)ts[i];
    ssl_features_t a = {tr.x, tr.labels, tr.n, tr.dim}, b = {te.x, te.labels, te.n, te.dim};
    ssl_knn_opts_t o = ssl_knn_opts_default();
    o.metric = euclid ? SSL_KNN_EUCLIDEAN : SSL_KNN_COSINE;
    o.vote = majority ? SSL_KNN_MAJORITY : SSL_KNN_WEIGHTED;
    ssl_knn_result_t res[256];
    int st = ssl_knn_sweep(&a, &b, tr.n_classes, &o, kk, nk, majority ? NULL : tt,
                           majority ? 0 : nt, res);
    if (st != SSL_OK) {
        fprintf(stderr, "sslc knn: %s\n", ssl_last_error());
    } else {
        printf("bank %lld x %lld%s, test %lld, %s, %s votes\n", (long long)tr.n,
               (long long)tr.dim, src.identity ? " raw pixels" : "", (long long)te.n,
               euclid ? "euclidean" : "cosine", majority ? "majority" : "exp(sim/T)");
        int n_res = nk * (majority ? 1 : nt);
        for (int i = 0; i < n_res; i++) {
            printf("k=%-4d", res[i].k);
            if (!majority)
                printf(" T=%-6g", (double)res[i].temperature);
            printf(" top-1 %.2f%%", 100 * res[i].top1);
            if (res[i].top5 >= 0)
                printf("  top-5 %.2f%%", 100 * res[i].top5);
            printf("\n");
        }
    }
    ssl_ckpt_features_free(&tr);
    ssl_ckpt_features_free(&te);
    return st == SSL_OK ? 0 : 1;
}
