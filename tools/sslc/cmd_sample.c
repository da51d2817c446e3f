/* sslc sample CKPT --out FILE.png: samples of a generative checkpoint as an image grid. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "ssl/train.h"
#include "sslc.h"

static const char *k_help =
    "usage: sslc sample CKPT --out FILE.png [--n 64] [--cols 8] [--seed 0] [--steps N]\n"
    "                   [--threads N]\n"
    "\n"
    "CKPT: a checkpoint of a generative run (vae, betavae, dcgan, bigan, ddpm, pixelcnn). Draws N\n"
    "samples of the model from the seed and writes them as a PNG grid of COLS per row (2 pixels\n"
    "between): the VAE decodes z ~ N(0, I) (Bernoulli means), the GANs generate G(z), the\n"
    "diffusion model runs its reverse process from noise, the PixelCNN draws pixel by pixel.\n"
    "--steps: the diffusion model's sampling levels, evenly spaced over its T (1000 for the\n"
    "paper's full ancestral sampler; default: the config's model.unet.sample_steps, 100); an\n"
    "error for the others. The same seed gives the same samples. Exit status 2 for a checkpoint whose method draws no\n"
    "samples.\n";

int sslc_cmd_sample(int argc, char **argv)
{
    ssl_sample_opts_t o;
    memset(&o, 0, sizeof o);
    int threads = 0;
    int64_t seed = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_help, stdout);
            return 0;
        } else if (!strcmp(a, "--out") && i + 1 < argc) {
            o.out_path = argv[++i];
        } else if (!strcmp(a, "--n") && i + 1 < argc) {
            if (!sslc_arg_i64("sample", a, argv[++i], 1, 4096, &o.n))
                return 2;
        } else if (!strcmp(a, "--cols") && i + 1 < argc) {
            if (!sslc_arg_int("sample", a, argv[++i], 1, 256, &o.cols))
                return 2;
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            if (!sslc_arg_i64("sample", a, argv[++i], 0, INT64_MAX, &seed))
                return 2;
        } else if (!strcmp(a, "--steps") && i + 1 < argc) {
            if (!sslc_arg_int("sample", a, argv[++i], 1, 1000000, &o.steps))
                return 2;
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            if (!sslc_arg_int("sample", a, argv[++i], 0, 4096, &threads))
                return 2;
        } else if (a[0] != '-' && !o.checkpoint) {
            o.checkpoint = a;
        } else {
            fprintf(stderr, "sslc sample: unexpected argument '%s' (see sslc sample --help)\n",
                    a);
            return 2;
        }
    }
    if (!o.checkpoint || !o.out_path) {
        fprintf(stderr, "sslc sample: need CKPT and --out FILE.png (see sslc sample --help)\n");
        return 2;
    }
    o.seed = (uint64_t)seed;
    ssl_set_num_threads(threads);
    int st = ssl_sample_checkpoint(&o);
    if (st != SSL_OK) {
        fprintf(stderr, "sslc sample: %s\n", ssl_last_error());
        return st == SSL_ERR_UNSUPPORTED ? 2 : 1;
    }
    printf("%s: %lld samples\n", o.out_path, (long long)(o.n ? o.n : 64));
    return 0;
}
