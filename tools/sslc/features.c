/* Train and test features for sslc knn / linear: a checkpoint's encoder, an encoder from
 * torchvision/timm weights, or raw pixels; and the --encoder JSON argument. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ssl/io.h"
#include "ssl/train.h"
#include "sslc.h"

const char sslc_weights_help[] =
    "--weights FILE: the encoder initialised from a safetensors file of torchvision's ResNet or\n"
    "timm's ViT parameter names (conv1.weight, layer1.0.bn1.running_mean, ...; patch_embed.proj.\n"
    "weight, blocks.0.attn.qkv.weight, ...: an ImageNet model, a file of sslc export) instead of\n"
    "a training checkpoint; strict: missing, unexpected and mis-shaped tensors are errors, fc.*\n"
    "and head.* are skipped. --encoder describes it (JSON inline or a file, as sslc info\n"
    "--encoder takes), e.g. '{\"type\": \"resnet18\", \"stem\": \"cifar\", \"in_channels\": 1,\n"
    "\"width\": 16}'; files of sslc export carry their description, so it may be left out. The\n"
    "positional CONFIG.json (a run config) or CKPT gives the data and the evaluation transform.\n";

const char sslc_blocks_help[] =
    "--blocks N: the features of a ViT checkpoint read from its last N blocks, as DINO's linear\n"
    "evaluation of ViTs: each block's tokens through the final LayerNorm, pooled as the encoder\n"
    "pools (cls token or mean of the patch tokens), concatenated (N x dim features). Default:\n"
    "the checkpoint config's eval.blocks (1 unless set: the pooled output). Not with\n"
    "--identity or --weights (those read eval.blocks of the config file given).\n"
    "--readout BLOCK@T: a diffusion (ddpm) checkpoint's features read from U-Net block BLOCK\n"
    "(d0, d1, d2, mid, u2, u1, u0) of the image noised to level T, mean-pooled, instead of the\n"
    "config's model.unet.readout_block and readout_t (e.g. mid@50); --readout LAYER[/maxG]: a\n"
    "pixelcnn checkpoint's features read from layer LAYER, mean-pooled, or max-pooled to a G x G\n"
    "grid (e.g. 6/max4), instead of model.network.feature_layer and feature_grid; an error for\n"
    "the other methods.\n"
    "--bn-stats N: before embedding, the BatchNorm running statistics of the layers the readout\n"
    "runs recomputed from the first N training images under the evaluation transform (reset,\n"
    "then averaged over the batches, as torch.optim.swa_utils.update_bn): e.g. a random-init\n"
    "checkpoint (init.safetensors, whose statistics are still mean 0 and variance 1) probed as\n"
    "a random-feature baseline. An error for an encoder without BatchNorm (a ViT) and with\n"
    "--identity or --weights. The checkpoint file is not changed.\n";

const char sslc_npy_features_help[] =
    "--train-features TRAIN.npy --test-features TEST.npy: features written by sslc embed (float32\n"
    "N x D, labels in TRAIN.labels.npy and TEST.labels.npy beside them) instead of a checkpoint:\n"
    "embed each split once and run knn and linear on the files (the classes are 0 .. the\n"
    "largest label). --train-limit / --test-limit take the first rows.\n";

int sslc_labels_path(const char *feats, char *buf, size_t cap)
{
    size_t len = strlen(feats);
    int n = len > 4 && !strcmp(feats + len - 4, ".npy")
                ? snprintf(buf, cap, "%.*s.labels.npy", (int)(len - 4), feats)
                : snprintf(buf, cap, "%s.labels.npy", feats);
    return n >= 0 && (size_t)n < cap ? 0 : -1;
}

/* One split's features from a .npy of sslc embed and its labels file; the first `limit` rows
 * (0: all). Prints why and returns 1, or 0. */
static int load_npy_features(const char *cmd, const char *path, int64_t limit,
                             ssl_ckpt_features_t *f)
{
    char lpath[4096];
    ssl_npy_t x = {0}, y = {0};
    if (sslc_labels_path(path, lpath, sizeof lpath) != 0) {
        fprintf(stderr, "sslc %s: path too long: %s\n", cmd, path);
        return 1;
    }
    if (ssl_npy_load_f32(path, &x) != SSL_OK || ssl_npy_load_i32(lpath, &y) != SSL_OK) {
        fprintf(stderr, "sslc %s: %s\n", cmd, ssl_last_error());
        ssl_npy_free(&x);
        return 1;
    }
    const char *why = NULL;
    if (x.ndim != 2 || x.shape[0] < 1 || x.shape[1] < 1)
        why = "features must be a non-empty 2-D array (N x D)";
    else if (y.ndim != 1 || y.shape[0] != x.shape[0])
        why = "its labels file must hold one label per row of the features";
    for (int64_t i = 0; !why && i < y.numel; i++)
        if (((int32_t *)y.data)[i] < 0 || ((int32_t *)y.data)[i] > 65535)
            why = "labels must be class indices in 0 .. 65535";
    if (why) {
        fprintf(stderr, "sslc %s: %s (%s: shape", cmd, why, path);
        for (int d = 0; d < x.ndim; d++)
            fprintf(stderr, "%s%lld", d ? " x " : " ", (long long)x.shape[d]);
        fprintf(stderr, "; %s: %lld labels)\n", lpath, (long long)y.numel);
        ssl_npy_free(&x);
        ssl_npy_free(&y);
        return 1;
    }
    f->x = x.data;
    f->labels = y.data;
    f->dim = x.shape[1];
    f->n = limit > 0 && limit < x.shape[0] ? limit : x.shape[0];
    for (int64_t i = 0; i < f->n; i++)
        if (f->labels[i] >= f->n_classes)
            f->n_classes = f->labels[i] + 1;
    return 0;
}

/* Both splits from --train-features / --test-features; the class count covers both. */
static int load_npy_splits(const char *cmd, const sslc_feature_src_t *s,
                           ssl_ckpt_features_t *tr, ssl_ckpt_features_t *te)
{
    if (!s->train_features || !s->test_features || s->source || s->identity || s->weights ||
        s->encoder || s->blocks || s->readout || s->bn_stats) {
        fprintf(stderr, "sslc %s: --train-features and --test-features go together and take "
                        "no CKPT, --identity, --weights, --blocks, --readout or --bn-stats\n",
                cmd);
        return 1;
    }
    if (load_npy_features(cmd, s->train_features, s->train_limit, tr) != 0)
        return 1;
    if (load_npy_features(cmd, s->test_features, s->test_limit, te) != 0) {
        ssl_ckpt_features_free(tr);
        return 1;
    }
    if (tr->dim != te->dim) {
        fprintf(stderr, "sslc %s: train features are %lld-dimensional (%s), test features "
                        "%lld-dimensional (%s)\n", cmd, (long long)tr->dim, s->train_features,
                (long long)te->dim, s->test_features);
        ssl_ckpt_features_free(tr);
        ssl_ckpt_features_free(te);
        return 1;
    }
    tr->n_classes = te->n_classes = tr->n_classes > te->n_classes ? tr->n_classes : te->n_classes;
    return 0;
}

char *sslc_read_json_arg(const char *arg, const char **source)
{
    if (arg[0] == '{') {
        *source = "--encoder";
        return strdup(arg);
    }
    *source = arg;
    FILE *f = fopen(arg, "rb");
    if (!f) {
        fprintf(stderr, "sslc: cannot open '%s'\n", arg);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "sslc: cannot read '%s'\n", arg);
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

int sslc_feature_opt(const char *cmd, int argc, char **argv, int *i, sslc_feature_src_t *s)
{
    const char *a = argv[*i];
    int has_value = *i + 1 < argc;
    if (!strcmp(a, "--identity")) {
        s->identity = 1;
    } else if (!strcmp(a, "--encoder") && has_value) {
        s->encoder = argv[++*i];
    } else if (!strcmp(a, "--weights") && has_value) {
        s->weights = argv[++*i];
    } else if (!strcmp(a, "--train-limit") && has_value) {
        return sslc_arg_i64(cmd, a, argv[++*i], 0, INT64_MAX, &s->train_limit) ? 1 : -1;
    } else if (!strcmp(a, "--test-limit") && has_value) {
        return sslc_arg_i64(cmd, a, argv[++*i], 0, INT64_MAX, &s->test_limit) ? 1 : -1;
    } else if (!strcmp(a, "--threads") && has_value) {
        return sslc_arg_int(cmd, a, argv[++*i], 0, 4096, &s->threads) ? 1 : -1;
    } else if (!strcmp(a, "--blocks") && has_value) {
        return sslc_arg_int(cmd, a, argv[++*i], 1, 64, &s->blocks) ? 1 : -1;
    } else if (!strcmp(a, "--readout") && has_value) {
        s->readout = argv[++*i];
    } else if (!strcmp(a, "--bn-stats") && has_value) {
        return sslc_arg_i64(cmd, a, argv[++*i], 1, INT64_MAX, &s->bn_stats) ? 1 : -1;
    } else if (!strcmp(a, "--train-features") && has_value) {
        s->train_features = argv[++*i];
    } else if (!strcmp(a, "--test-features") && has_value) {
        s->test_features = argv[++*i];
    } else if (a[0] != '-' && !s->source) {
        s->source = a;
    } else {
        return 0;
    }
    return 1;
}

int sslc_load_features(const char *cmd, const sslc_feature_src_t *s, ssl_ckpt_features_t *tr,
                       ssl_ckpt_features_t *te)
{
    const char *source = s->source;
    int identity = s->identity;
    int64_t train_limit = s->train_limit, test_limit = s->test_limit;
    memset(tr, 0, sizeof *tr);
    memset(te, 0, sizeof *te);
    if (s->train_features || s->test_features) {
        if (load_npy_splits(cmd, s, tr, te) != 0)
            return 1;
        ssl_set_num_threads(s->threads);
        if (tr->n_classes < 2) {
            fprintf(stderr, "sslc %s: the labels of %s and %s hold fewer than 2 classes\n", cmd,
                    s->train_features, s->test_features);
            ssl_ckpt_features_free(tr);
            ssl_ckpt_features_free(te);
            return 1;
        }
        return 0;
    }
    if (identity && (s->weights || s->encoder)) {
        fprintf(stderr, "sslc %s: --identity takes no --encoder or --weights\n", cmd);
        return 1;
    }
    if ((s->blocks || s->readout || s->bn_stats) && (identity || s->weights)) {
        fprintf(stderr, "sslc %s: --blocks, --readout and --bn-stats read a training "
                        "checkpoint; with --identity or --weights the config file's eval.blocks "
                        "applies\n", cmd);
        return 1;
    }
    if (s->encoder && !s->weights) {
        fprintf(stderr, "sslc %s: --encoder needs --weights FILE\n", cmd);
        return 1;
    }
    char *json = NULL;
    const char *json_src;
    if (s->encoder && !(json = sslc_read_json_arg(s->encoder, &json_src)))
        return 1;
    ssl_set_num_threads(s->threads);
    int st = SSL_OK;
    for (int i = 0; i < 2 && st == SSL_OK; i++) {
        const char *split = i ? NULL : "train";
        int64_t limit = i ? test_limit : train_limit;
        ssl_ckpt_features_t *f = i ? te : tr;
        ssl_embed_opts_t eo = {source, split, limit, NULL, NULL, s->blocks, s->readout,
                               s->bn_stats};
        st = identity     ? ssl_pixel_features(source, split, limit, f)
             : s->weights ? ssl_weights_features(json, s->weights, source, split, limit, f)
                          : ssl_embed_features(&eo, f);
    }
    free(json);
    if (st != SSL_OK) {
        fprintf(stderr, "sslc %s: %s\n", cmd, ssl_last_error());
        ssl_ckpt_features_free(tr);
        ssl_ckpt_features_free(te);
        return 1;
    }
    if (!tr->labels || !te->labels || tr->n_classes < 2) {
        fprintf(stderr, "sslc %s: the dataset of %s has no labels\n", cmd, source);
        ssl_ckpt_features_free(tr);
        ssl_ckpt_features_free(te);
        return 1;
    }
    return 0;
}
