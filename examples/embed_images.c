/* A small program using the installed libssl: build the encoder a training run used, load its
 * weights from the checkpoint, and embed images.
 *
 *   cc embed_images.c $(pkg-config --cflags --libs sslc) -o embed_images
 *   ./embed_images runs/simclr/checkpoints/last.safetensors [N]
 *
 * It reads the encoder section of the run config stored in the checkpoint, loads the
 * "encoder." tensors, and prints the pooled features of the first N Fashion-MNIST test images
 * (or of random images when the dataset is not installed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ssl/ssl.h>

/* The "model.encoder" object of the config JSON, found by a plain scan: enough for an example
 * (the library's strict reader checks it when building the encoder). */
static char *encoder_json(const char *config)
{
    const char *p = strstr(config, "\"encoder\"");
    p = p ? strchr(p, '{') : NULL;
    if (!p)
        return NULL;
    int depth = 0;
    const char *q = p;
    do {
        depth += *q == '{' ? 1 : *q == '}' ? -1 : 0;
        q++;
    } while (*q && depth > 0);
    char *out = malloc((size_t)(q - p) + 1);
    if (out) {
        memcpy(out, p, (size_t)(q - p));
        out[q - p] = '\0';
    }
    return out;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CHECKPOINT [N]\n", argv[0]);
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 8;
    ssl_st_t *f = ssl_st_open(argv[1]);
    if (!f) {
        fprintf(stderr, "%s\n", ssl_last_error());
        return 1;
    }
    const char *config = ssl_st_meta(f, "config");
    char *enc_json = config ? encoder_json(config) : NULL;
    ssl_encoder_cfg_t cfg;
    if (!enc_json || ssl_encoder_cfg_from_json(enc_json, strlen(enc_json), "checkpoint", &cfg)) {
        fprintf(stderr, "no usable encoder config in %s: %s\n", argv[1], ssl_last_error());
        return 1;
    }
    ssl_params_t *params = ssl_params_create();
    ssl_encoder_t *enc = ssl_encoder_create(&cfg, params, "", 0);
    /* the checkpoint names the encoder's tensors "encoder.<torchvision name>" */
    if (!enc || ssl_st_load_params(f, params, "encoder.", SSL_ST_ALLOW_UNEXPECTED, NULL)) {
        fprintf(stderr, "%s\n", ssl_last_error());
        return 1;
    }
    int size = cfg.kind == SSL_ENC_VIT ? cfg.vit.image_size : 28;
    int ch = cfg.kind == SSL_ENC_VIT ? cfg.vit.in_channels : cfg.resnet.in_channels;
    ssl_ctx_t *ctx = ssl_ctx_create(64 << 20);
    ssl_ctx_set_grad(ctx, 0); /* inference: record no tape */
    ssl_tensor_t *x = ssl_tensor_4d(ctx, n, ch, size, size);
    ssl_read_opts_t ro;
    ssl_read_opts_default(&ro);
    ro.limit = n;
    ssl_dataset_t *ds = ch == 1 ? ssl_dataset_load_fashion_mnist(SSL_FASHION_MNIST_DIR, "test", &ro)
                                : NULL;
    for (int64_t i = 0; i < x->numel; i++) /* pixels scaled and normalised as in training */
        x->data[i] = ds && ds->n == n && ds->h == size
                         ? ((float)ds->images[i] / 255.0f - 0.286f) / 0.353f
                         : ssl_rng_normal(1, 2, (uint64_t)i);
    ssl_encoder_out_t out;
    if (ssl_encoder_forward(ctx, enc, x, NULL, 0, 0, &out) != SSL_OK) {
        fprintf(stderr, "%s\n", ssl_last_error());
        return 1;
    }
    printf("libssl %s: %lld images -> features (%lld, %lld)%s\n", ssl_version(),
           (long long)n, (long long)out.pooled->shape[0], (long long)out.pooled->shape[1],
           ds ? " (Fashion-MNIST test)" : " (random images)");
    for (int i = 0; i < n && i < 4; i++)
        printf("  image %d: label %d, features %.4f %.4f %.4f ...\n", i,
               ds && ds->labels ? ds->labels[i] : -1, out.pooled->data[i * out.pooled->shape[1]],
               out.pooled->data[i * out.pooled->shape[1] + 1],
               out.pooled->data[i * out.pooled->shape[1] + 2]);
    ssl_dataset_free(ds);
    ssl_ctx_free(ctx);
    ssl_encoder_free(enc);
    ssl_params_free(params);
    free(enc_json);
    ssl_st_close(f);
    return 0;
}
