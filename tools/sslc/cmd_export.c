/* sslc export CKPT --out FILE: a training checkpoint's encoder alone, torchvision/timm names. */
#include <stdio.h>
#include <string.h>

#include "ssl/train.h"
#include "sslc.h"

static const char *k_help =
    "usage: sslc export CKPT --out ENCODER.safetensors [--encoder-source online|target]\n"
    "\n"
    "Writes the encoder (backbone) of a training checkpoint alone, its parameters and\n"
    "BatchNorm statistics named as torchvision's ResNet (conv1.weight, bn1.running_mean,\n"
    "layer1.0.conv1.weight, ..., num_batches_tracked as int64) or timm's ViT (patch_embed.proj.\n"
    "weight, cls_token, pos_embed, blocks.0.attn.qkv.weight, ..., norm.weight) state_dict names\n"
    "it, without projector, predictor or classifier. The metadata holds {\"format\": \"pt\"} and\n"
    "the encoder's JSON (model.encoder of the run config) under \"sslc.encoder\".\n"
    "--encoder-source: the online encoder (encoder.*) or the EMA target (target.encoder.*, the\n"
    "teacher of DINO, BYOL, MoCo); default: the one the run's eval.encoder names.\n"
    "In PyTorch: torchvision.models.resnet18() with the run's stem (stem \"cifar\": conv1 a 3x3\n"
    "stride-1 conv, maxpool Identity), in_chans and width, fc removed:\n"
    "  m.load_state_dict(safetensors.torch.load_file(\"ENCODER.safetensors\"), strict=True)\n"
    "Back into sslc: model.encoder.weights (training from it) or sslc embed|knn|linear "
    "--weights.\n";

int sslc_cmd_export(int argc, char **argv)
{
    const char *ckpt = NULL, *out = NULL, *source = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(k_help, stdout);
            return 0;
        } else if (!strcmp(a, "--out") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--encoder-source") && i + 1 < argc) {
            source = argv[++i];
            if (strcmp(source, "online") && strcmp(source, "target")) {
                fprintf(stderr, "sslc export: --encoder-source is online or target, not '%s'\n",
                        source);
                return 2;
            }
        } else if (a[0] != '-' && !ckpt) {
            ckpt = a;
        } else {
            fprintf(stderr, "sslc export: unexpected argument '%s' (see sslc export --help)\n", a);
            return 2;
        }
    }
    if (!ckpt || !out) {
        fprintf(stderr, "sslc export: CKPT and --out are required (see sslc export --help)\n");
        return 2;
    }
    int st = ssl_checkpoint_export_encoder(ckpt, source, out);
    if (st != SSL_OK) {
        fprintf(stderr, "sslc export: %s\n", ssl_last_error());
        return st == SSL_ERR_UNSUPPORTED ? 2 : 1;
    }
    printf("%s: encoder of %s\n", out, ckpt);
    return 0;
}
