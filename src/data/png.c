/* PNG grids of images (the generative methods' reconstructions and samples in the report),
 * written with stb_image_write. */
#include "core/check.h"
#include "ssl/data.h"

#include <stdlib.h>

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

int ssl_image_grid_png(const char *path, const float *images, int64_t n, int64_t c, int64_t h,
                       int64_t w, int cols, int pad)
{
    if (SSL__IS_NULL(path, __func__) || SSL__IS_NULL(images, __func__))
        return SSL_ERR_INVALID;
    if (n < 1 || (c != 1 && c != 3) || h < 1 || w < 1 || cols < 1 || pad < 0 || h > 4096 ||
        w > 4096 || n > 4096)
        return ssl_set_error(SSL_ERR_INVALID,
                             "%s: %lld images of (%lld, %lld, %lld) in %d columns with %d "
                             "pixels between: need 1-4096 images of 1 or 3 channels up to "
                             "4096 pixels a side, cols >= 1, pad >= 0",
                             __func__, (long long)n, (long long)c, (long long)h, (long long)w,
                             cols, pad);
    int64_t nc = n < cols ? n : cols, nr = (n + nc - 1) / nc;
    int64_t gw = nc * (w + pad) + pad, gh = nr * (h + pad) + pad;
    if (gw > 65535 || gh > 65535)
        return ssl_set_error(SSL_ERR_INVALID, "%s: a %lld x %lld grid is too large", __func__,
                             (long long)gw, (long long)gh);
    uint8_t *g = malloc((size_t)(gw * gh * c));
    if (!g)
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", __func__);
    for (int64_t i = 0; i < gw * gh * c; i++)
        g[i] = 255;
    for (int64_t i = 0; i < n; i++) {
        int64_t x0 = pad + (i % nc) * (w + pad), y0 = pad + (i / nc) * (h + pad);
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++) {
                    float v = images[((i * c + ch) * h + y) * w + x];
                    v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f; /* NaN -> 0 */
                    g[((y0 + y) * gw + x0 + x) * c + ch] = (uint8_t)(v * 255.0f + 0.5f);
                }
    }
    int ok = stbi_write_png(path, (int)gw, (int)gh, (int)c, g, (int)(gw * c));
    free(g);
    return ok ? SSL_OK : ssl_set_error(SSL_ERR_IO, "%s: cannot write '%s'", __func__, path);
}
