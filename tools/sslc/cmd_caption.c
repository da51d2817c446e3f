/* sslc caption CKPT: greedy captions of a few images by a CoCa checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ssl/train.h"
#include "sslc.h"

static const char *k_help =
    "usage: sslc caption CKPT [--n 8] [--split test] [--threads N]\n"
    "\n"
    "CKPT: a checkpoint of a coca run (image encoder, attentional pooler, text tower and caption\n"
    "decoder). Captions the first N images of the split (default: the config's eval split) by\n"
    "greedy decoding: from <sos>, the most probable next word at every step (never padding or\n"
    "<unk>) until <eos> or the text tower's context length, with the vocabulary stored in the\n"
    "checkpoint. Prints one line per image: its index, its class and its own caption when the\n"
    "dataset has them, and the generated caption. Exit status 2 for a checkpoint without a\n"
    "caption decoder.\n";

int sslc_cmd_caption(int argc, char **argv)
{
    ssl_caption_opts_t o;
    memset(&o, 0, sizeof o);
    int threads = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_help, stdout);
            return 0;
        } else if (!strcmp(a, "--split") && i + 1 < argc) {
            o.split = argv[++i];
        } else if (!strcmp(a, "--n") && i + 1 < argc) {
            if (!sslc_arg_i64("caption", a, argv[++i], 1, 1 << 20, &o.n))
                return 2;
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!sslc_arg_int("caption", a, argv[++i], 0, 4096, &threads))
                return 2;
        } else if (a[0] != '-' && !o.checkpoint) {
            o.checkpoint = a;
        } else {
            fprintf(stderr, "sslc caption: unexpected argument '%s' (see sslc caption --help)\n",
                    a);
            return 2;
        }
    }
    if (!o.checkpoint) {
        fprintf(stderr, "sslc caption: need CKPT (see sslc caption --help)\n");
        return 2;
    }
    ssl_set_num_threads(threads);
    ssl_captions_t c;
    int st = ssl_caption_checkpoint(&o, &c);
    if (st != SSL_OK) {
        fprintf(stderr, "sslc caption: %s\n", ssl_last_error());
        return st == SSL_ERR_UNSUPPORTED ? 2 : 1;
    }
    for (int64_t i = 0; i < c.n; i++) {
        printf("%4lld", (long long)i);
        if (c.labels)
            printf("  class %d", c.labels[i]);
        if (c.reference[i])
            printf("  \"%s\"", c.reference[i]);
        printf("  ->  \"%s\"\n", c.text[i]);
    }
    ssl_captions_free(&c);
    return 0;
}
