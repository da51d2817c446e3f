/* sslc zeroshot CKPT: zero-shot classification with a CLIP / SigLIP checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ssl/train.h"
#include "sslc.h"

static const char *k_help =
    "usage: sslc zeroshot CKPT [--split test] [--limit N] [--template \"a photo of a {}\"]\n"
    "                     [--threads N]\n"
    "\n"
    "CKPT: a checkpoint of a clip, siglip or coca run (image encoder + text tower). Every class\n"
    "name of the dataset is put into the template ({} = the name, default \"a photo of a {}\":\n"
    "the captions the trainer builds) and embedded by the text tower; every image of the split\n"
    "(default: the config's eval split; --limit N: the first N) by the encoder and the image\n"
    "projection (evaluation transform). An image gets the class whose prompt has the highest\n"
    "cosine similarity. Prints top-1 (and top-5 with more than 5 classes) accuracy in percent.\n"
    "Exit status 2 for a checkpoint without a text tower.\n";

int sslc_cmd_zeroshot(int argc, char **argv)
{
    ssl_zeroshot_opts_t o;
    memset(&o, 0, sizeof o);
    int threads = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_help, stdout);
            return 0;
        } else if (!strcmp(a, "--split") && i + 1 < argc) {
            o.split = argv[++i];
        } else if (!strcmp(a, "--limit") && i + 1 < argc) {
            if (!sslc_arg_i64("zeroshot", a, argv[++i], 0, INT64_MAX, &o.limit))
                return 2;
        } else if (!strcmp(a, "--template") && i + 1 < argc) {
            o.prompt = argv[++i];
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!sslc_arg_int("zeroshot", a, argv[++i], 0, 4096, &threads))
                return 2;
        } else if (a[0] != '-' && !o.checkpoint) {
            o.checkpoint = a;
        } else {
            fprintf(stderr, "sslc zeroshot: unexpected argument '%s' (see sslc zeroshot --help)\n",
                    a);
            return 2;
        }
    }
    if (!o.checkpoint || o.limit < 0) {
        fprintf(stderr, "sslc zeroshot: need CKPT and --limit >= 0 (see sslc zeroshot --help)\n");
        return 2;
    }
    ssl_set_num_threads(threads);
    ssl_zeroshot_result_t r;
    int64_t unknown = 0;
    int st = ssl_zeroshot_checkpoint(&o, &r, &unknown);
    if (st != SSL_OK) {
        fprintf(stderr, "sslc zeroshot: %s\n", ssl_last_error());
        return st == SSL_ERR_UNSUPPORTED || st == SSL_ERR_INVALID ? 2 : 1;
    }
    if (unknown > 0)
        fprintf(stderr, "sslc zeroshot: warning: %lld word occurrence(s) in the prompts are not in the "
                "checkpoint's vocabulary (encoded as <unk>)\n", (long long)unknown);
    printf("zero-shot, %lld images, template \"%s\"\n", (long long)r.n,
           o.prompt ? o.prompt : SSL_ZEROSHOT_PROMPT);
    printf("top-1 %.2f%%", 100 * r.top1);
    if (r.top5 >= 0)
        printf("  top-5 %.2f%%", 100 * r.top5);
    printf("\n");
    return 0;
}
