/* sslc: the command-line front end of libssl. */
#include "common/blas_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "ssl/ssl.h"
#include "sslc.h"
#include "train/dist.h"

static const char *k_usage =
    "usage: sslc <command> [options]\n"
    "\n"
    "commands:\n"
    "  train CONFIG [--set k=v]... [--resume RUN_DIR] [--threads N] [--out DIR]\n"
    "                            pretrain an encoder with the method a JSON config composes\n"
    "  selfcheck [--threads N]   check every op's gradient against central differences and\n"
    "                            the BLAS/conv kernels against plain loops on this build\n"
    "  embed CKPT --out F.npy [--split S] [--limit N]\n"
    "                            pooled encoder features of a dataset split as .npy\n"
    "  embed|knn|linear --weights FILE [--encoder JSON] CONFIG [options]\n"
    "                            the same with an encoder from torchvision/timm weights\n"
    "  export CKPT --out FILE [--encoder-source online|target]\n"
    "                            the encoder alone as torchvision/timm-named safetensors\n"
    "  knn CKPT [--k 20,200] [--t 0.07] [--majority] [--identity]\n"
    "                            kNN accuracy of a checkpoint's encoder features (--identity:\n"
    "                            of raw pixels; CKPT may then be a config file)\n"
    "  linear CKPT [--epochs N] [--lr X] [--sgd] [--identity]\n"
    "                            linear-probe accuracy of a checkpoint's encoder features\n"
    "  knn|linear --train-features TRAIN.npy --test-features TEST.npy [options]\n"
    "                            the same on features sslc embed wrote (embed once, probe twice)\n"
    "  zeroshot CKPT [--split S] [--limit N] [--template \"a photo of a {}\"]\n"
    "                            zero-shot accuracy of a clip/siglip/coca checkpoint from class names\n"
    "  caption CKPT [--n 8] [--split S]\n"
    "                            greedy captions of the first images by a coca checkpoint\n"
    "  sample CKPT --out FILE.png [--n 64] [--steps N]\n"
    "                            samples of a generative checkpoint as an image grid\n"
    "  report RUN_DIR [--out FILE] [--points N]\n"
    "                            self-contained report.html: metric charts, PCA of embeddings\n"
    "  info CKPT [--tensors] [--no-metrics]\n"
    "                            a checkpoint's metadata, modules, collapse metrics, config\n"
    "  info --encoder JSON|FILE [--size N]\n"
    "                            parameters and multiply-accumulates per image of an encoder\n"
    "  bench WORKLOAD|CONFIG [--batch N] [--steps N] [--threads N]\n"
    "                            time training steps: images/s, GFLOP/s, % of sgemm peak, RSS\n"
    "                            (workloads simclr-r18, mae-vitt; or any run config)\n"
    "  version                   print the version (also --version)\n"
    "  help                      this text (also --help, -h)\n";

/* The library's log (bad files skipped, directory links not followed, skipped steps, ...) on
 * stderr. A progress line being redrawn on a terminal is cleared first; it is drawn again at
 * the next step. */
static void on_log(int level, const char *msg, void *user)
{
    (void)user;
    if (level < SSL_LOG_WARN && ssl__dist_rank() > 0)
        return; /* several ranks: rank 0 says what they all do */
    fflush(stdout);
    if (isatty(STDOUT_FILENO) && isatty(STDERR_FILENO)) {
        fputs("\r\033[K", stdout);
        fflush(stdout);
    }
    const char *tag = level >= SSL_LOG_ERROR ? "error: " : level >= SSL_LOG_WARN ? "warning: " : "";
    fprintf(stderr, "sslc: %s%s\n", tag, msg);
}

static void on_check(const char *name, int status, const char *msg, void *user)
{
    int *count = user;
    (*count)++;
    if (status == SSL_OK)
        printf("  ok    %s\n", name);
    else
        printf("  FAIL  %s: %s\n", name, msg);
}

static int cmd_selfcheck(int argc, char **argv)
{
    int threads = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (!sslc_arg_int("selfcheck", argv[i], argv[i + 1], 0, 4096, &threads))
                return 2;
            i++;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: sslc selfcheck [--threads N]\n"
                   "Runs every op on small random inputs: gradients against central differences,\n"
                   "sgemm and conv2d against plain loops. Exit status 0 when all pass.\n");
            return 0;
        } else {
            fprintf(stderr, "sslc selfcheck: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    ssl_set_num_threads(threads);
    printf("sslc %s selfcheck (%d threads)\n", ssl_version(), ssl_get_num_threads());
    int count = 0;
    int failed = ssl_selfcheck(on_check, &count);
    printf("%d passed, %d failed\n", count - failed, failed);
    return failed ? 1 : 0;
}

static int cmd_info(int argc, char **argv)
{
    int has_encoder = 0;
    for (int i = 0; i < argc; i++)
        has_encoder |= !strcmp(argv[i], "--encoder");
    if (!has_encoder && !(argc == 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) &&
        argc > 0)
        return sslc_cmd_info_ckpt(argc, argv);
    const char *enc_arg = NULL;
    int size = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--encoder") && i + 1 < argc) {
            enc_arg = argv[++i];
        } else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
            if (!sslc_arg_int("info", argv[i], argv[i + 1], 1, 8192, &size))
                return 2;
            i++;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: sslc info CKPT [--tensors] [--no-metrics] [--metrics-limit N]\n"
                   "       (metadata, modules, collapse metrics and config of a checkpoint:\n"
                   "       RankMe, embedding std, alignment, uniformity measured on the first N\n"
                   "       (1000) eval-split images unless --no-metrics, and those the trainer\n"
                   "       logged for its epoch in the run's metrics.jsonl; sslc info CKPT --help)\n"
                   "       sslc info --encoder JSON|FILE [--size N]\n"
                   "Builds the encoder described by the JSON object (inline or in a file), e.g.\n"
                   "  sslc info --encoder '{\"type\": \"resnet18\", \"stem\": \"cifar\", "
                   "\"in_channels\": 1, \"width\": 32}'\n"
                   "and prints its parameter count, feature width and multiply-accumulates of one\n"
                   "forward pass per image of N x N pixels (default: the ViT's image_size, 32 for a\n"
                   "CIFAR-stem ResNet, 224 otherwise).\n");
            return 0;
        } else {
            fprintf(stderr, "sslc info: unknown option '%s' (see sslc info --help)\n", argv[i]);
            return 2;
        }
    }
    if (!enc_arg) {
        fprintf(stderr, "sslc info: --encoder JSON|FILE is required (see sslc info --help)\n");
        return 2;
    }
    const char *source;
    char *text = sslc_read_json_arg(enc_arg, &source);
    if (!text)
        return 1;
    ssl_encoder_cfg_t cfg;
    int st = ssl_encoder_cfg_from_json(text, strlen(text), source, &cfg);
    free(text);
    if (st != SSL_OK) {
        fprintf(stderr, "sslc info: %s\n", ssl_last_error());
        return 1;
    }
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&cfg, p, "", 0);
    if (!e) {
        fprintf(stderr, "sslc info: %s\n", ssl_last_error());
        ssl_params_free(p);
        return 1;
    }
    if (size <= 0)
        size = cfg.kind == SSL_ENC_VIT       ? cfg.vit.image_size
               : cfg.kind == SSL_ENC_CONVNET ? 28
               : cfg.resnet.cifar_stem       ? 32
                                             : 224;
    int64_t macs = ssl_encoder_macs(e, size, size);
    printf("encoder      %s\n", cfg.kind == SSL_ENC_VIT       ? "vit"
                                : cfg.kind == SSL_ENC_CONVNET ? "dcgan"
                                                              : "resnet");
    printf("parameters   %lld (%.2f M)\n", (long long)ssl_encoder_num_params(e),
           ssl_encoder_num_params(e) / 1e6);
    printf("feature dim  %lld\n", (long long)ssl_encoder_dim(e));
    if (cfg.kind == SSL_ENC_VIT)
        printf("tokens       %lld\n", (long long)ssl_encoder_num_tokens(e));
    printf("MACs/image   %lld (%.3f G) at %dx%d; FLOPs = 2 x MACs\n", (long long)macs, macs / 1e9,
           size, size);
    ssl_encoder_free(e);
    ssl_params_free(p);
    return 0;
}

int main(int argc, char **argv)
{
    ssl_tool_blas_reexec(argv);
    ssl_set_log_callback(on_log, NULL, SSL_LOG_INFO);
    if (argc < 2) {
        fputs(k_usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("sslc %s\n", ssl_version());
        return 0;
    }
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(k_usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "train"))
        return sslc_cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "linear"))
        return sslc_cmd_linear(argc - 2, argv + 2);
    if (!strcmp(cmd, "knn"))
        return sslc_cmd_knn(argc - 2, argv + 2);
    if (!strcmp(cmd, "report"))
        return sslc_cmd_report(argc - 2, argv + 2);
    if (!strcmp(cmd, "zeroshot"))
        return sslc_cmd_zeroshot(argc - 2, argv + 2);
    if (!strcmp(cmd, "caption"))
        return sslc_cmd_caption(argc - 2, argv + 2);
    if (!strcmp(cmd, "sample"))
        return sslc_cmd_sample(argc - 2, argv + 2);
    if (!strcmp(cmd, "embed"))
        return sslc_cmd_embed(argc - 2, argv + 2);
    if (!strcmp(cmd, "export"))
        return sslc_cmd_export(argc - 2, argv + 2);
    if (!strcmp(cmd, "info"))
        return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "bench"))
        return sslc_cmd_bench(argc - 2, argv + 2);
    if (!strcmp(cmd, "selfcheck"))
        return cmd_selfcheck(argc - 2, argv + 2);
    fprintf(stderr, "sslc: unknown command '%s'\n\n%s", cmd, k_usage);
    return 2;
}
