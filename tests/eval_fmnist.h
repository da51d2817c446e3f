/* A small self-contained Fashion-MNIST reader for the eval tests (IDX files, gzip): images as
 * float pixels / 255 in (n, 784), labels as int32. The data layer has its own reader; this one
 * keeps the eval tests independent of it. Tests skip when the files are absent. */
#ifndef SSL_TEST_EVAL_FMNIST_H
#define SSL_TEST_EVAL_FMNIST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist/"

typedef struct fmnist {
    float *x;   /* (n, 784) in [0, 1] */
    int32_t *y; /* (n) */
    int64_t n;
} fmnist_t;

static uint32_t fm_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Whole decompressed file into a malloc'd buffer; NULL if it cannot be read. */
static unsigned char *fm_read_gz(const char *path, size_t *len)
{
    gzFile g = gzopen(path, "rb");
    if (!g)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        int r = gzread(g, buf + n, (unsigned)(cap - n));
        if (r <= 0) {
            if (r < 0) {
                free(buf);
                buf = NULL;
            }
            break;
        }
        n += (size_t)r;
    }
    gzclose(g);
    *len = n;
    return buf;
}

/* split: "train" or "t10k". Returns 0 on success, -1 if the files are missing or malformed. */
static int fmnist_load(const char *split, fmnist_t *out)
{
    char pi[256], pl[256];
    snprintf(pi, sizeof pi, FMNIST_DIR "%s-images-idx3-ubyte.gz", split);
    snprintf(pl, sizeof pl, FMNIST_DIR "%s-labels-idx1-ubyte.gz", split);
    size_t li = 0, ll = 0;
    unsigned char *bi = fm_read_gz(pi, &li), *bl = fm_read_gz(pl, &ll);
    int ok = bi && bl && li >= 16 && ll >= 8 && fm_be32(bi) == 0x803 && fm_be32(bl) == 0x801;
    uint32_t n = ok ? fm_be32(bi + 4) : 0;
    ok = ok && fm_be32(bl + 4) == n && fm_be32(bi + 8) == 28 && fm_be32(bi + 12) == 28 &&
         li == 16 + (size_t)n * 784 && ll == 8 + (size_t)n;
    if (ok) {
        out->n = n;
        out->x = malloc((size_t)n * 784 * sizeof(float));
        out->y = malloc((size_t)n * sizeof(int32_t));
        for (size_t i = 0; i < (size_t)n * 784; i++)
            out->x[i] = bi[16 + i] / 255.0f;
        for (size_t i = 0; i < n; i++)
            out->y[i] = bl[8 + i];
    }
    free(bi);
    free(bl);
    return ok ? 0 : -1;
}

static void fmnist_free(fmnist_t *f)
{
    free(f->x);
    free(f->y);
    memset(f, 0, sizeof *f);
}

#endif
