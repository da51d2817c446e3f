/* Histograms of oriented gradients as MaskFeat computes its targets (facebookresearch/SlowFast,
 * slowfast/models/operators.py HOGLayerC): per channel, Sobel gradients of the image reflected
 * by one pixel at its borders, each pixel's magnitude added to the bin of its unsigned
 * orientation, the bins summed over cell x cell pixels, each cell's histogram L2-normalised. */
#include "data_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double k_pi = 3.14159265358979323846;

/* Index i of a row or column of n reflected at the borders (PyTorch's "reflect": -1 -> 1). */
static int64_t reflect(int64_t i, int64_t n)
{
    return i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i;
}

int ssl_hog(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int nbins, int cell,
            float *out)
{
    if (!x || !out)
        return ssl_set_error(SSL_ERR_INVALID, "hog: NULL %s", x ? "out" : "x");
    if (n < 1 || c < 1 || h < 2 || w < 2 || nbins < 1 || nbins > 360 || cell < 1 ||
        h % cell || w % cell)
        return ssl_set_error(SSL_ERR_INVALID,
                             "hog: images (%lld, %lld, %lld, %lld) need h, w >= 2 divisible by "
                             "the cell (%d), and 1 to 360 bins (%d)",
                             (long long)n, (long long)c, (long long)h, (long long)w, cell, nbins);
    const int64_t ch = h / cell, cw = w / cell, plane = ch * cw;
    memset(out, 0, sizeof(float) * (size_t)(n * c * nbins * plane));
#pragma omp parallel for schedule(static) if (n * c > 1)
    for (int64_t p = 0; p < n * c; p++) {
        const float *img = x + p * h * w; // (h, w)
        float *hist = out + p * nbins * plane; // (nbins, ch, cw)
        double acc[360];
        for (int64_t cy = 0; cy < ch; cy++)
            for (int64_t cx = 0; cx < cw; cx++) {
                memset(acc, 0, sizeof(double) * (size_t)nbins);
                for (int64_t y = cy * cell; y < (cy + 1) * cell; y++)
                    for (int64_t xx = cx * cell; xx < (cx + 1) * cell; xx++) {
                        /* F.conv2d (a correlation) with [[1, 0, -1], [2, 0, -2], [1, 0, -1]]
                         * for x and its transpose for y */
                        double gx = 0, gy = 0;
                        for (int dy = -1; dy <= 1; dy++)
                            for (int dx = -1; dx <= 1; dx++) {
                                double v = img[reflect(y + dy, h) * w + reflect(xx + dx, w)];
                                double wy = dy == 0 ? 2 : 1, wx = dx == 0 ? 2 : 1;
                                gx -= dx * wy * v;
                                gy -= dy * wx * v;
                            }
                        /* atan2(gx, gy) / pi * nbins in [-nbins, nbins]; floor mod nbins */
                        double ph = atan2(gx, gy) / k_pi * nbins;
                        int64_t b = (int64_t)floor(ph) % nbins;
                        if (b < 0)
                            b += nbins;
                        acc[b] += sqrt(gx * gx + gy * gy);
                    }
                double ss = 0;
                for (int k = 0; k < nbins; k++)
                    ss += acc[k] * acc[k];
                double d = fmax(sqrt(ss), 1e-12); /* F.normalize's eps */
                for (int k = 0; k < nbins; k++)
                    hist[k * plane + cy * cw + cx] = (float)(acc[k] / d);
            }
    }
    return SSL_OK;
}

int ssl_hog_patches(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int nbins,
                    int cell, int p, float *out)
{
    if (!out)
        return ssl_set_error(SSL_ERR_INVALID, "hog: NULL out");
    if (cell < 1 || p < cell || p % cell || h % p || w % p)
        return ssl_set_error(SSL_ERR_INVALID,
                             "hog: patches of %d pixels must be a multiple of the cell (%d) and "
                             "divide the images (%lld x %lld)",
                             p, cell, (long long)h, (long long)w);
    const int64_t ch = h / cell, cw = w / cell, u = p / cell, gw = w / p;
    const int64_t T = (h / p) * gw, F = c * nbins * u * u;
    float *hog = malloc(sizeof(float) * (size_t)(n * c * nbins * ch * cw));
    if (!hog)
        return ssl_set_error(SSL_ERR_NOMEM, "hog: out of memory");
    int st = ssl_hog(x, n, c, h, w, nbins, cell, hog);
    /* hog (n, c nbins, ch, cw) -> (n, T, c nbins, u, u): each patch's u x u cells */
    for (int64_t i = 0; st == SSL_OK && i < n; i++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t k = 0; k < c * nbins; k++)
                for (int64_t a = 0; a < u; a++)
                    for (int64_t b = 0; b < u; b++)
                        out[((i * T + t) * F) + (k * u + a) * u + b] =
                            hog[((i * c * nbins + k) * ch + (t / gw) * u + a) * cw +
                                (t % gw) * u + b];
    free(hog);
    return st;
}
