/* Separable bilinear resampling with half-pixel centres, antialiased when shrinking: each output
 * sample is a triangle-filter average of the input whose width grows with the downscale factor
 * (the scheme of PIL and torchvision's antialias=True). Without antialiasing, or when enlarging,
 * the filter is the plain bilinear one (align_corners=False). Weights are clipped to the source
 * box and renormalised, which reproduces edge clamping. */
#include "data_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

ssl_aug_ws_t *ssl_aug_ws_create(void)
{
    ssl_aug_ws_t *ws = calloc(1, sizeof *ws);
    if (!ws)
        ssl_set_error(SSL_ERR_NOMEM, "out of memory for an augmentation workspace");
    return ws;
}

void ssl_aug_ws_free(ssl_aug_ws_t *ws)
{
    if (!ws)
        return;
    for (int i = 0; i < SSL__WS_SLOTS; i++)
        free(ws->slot[i]);
    free(ws);
}

void *ssl__ws_get(ssl_aug_ws_t *ws, int i, size_t bytes)
{
    if (bytes == 0)
        bytes = 1;
    if (ws->cap[i] < bytes) {
        size_t cap = ws->cap[i] ? ws->cap[i] : 256;
        while (cap < bytes)
            cap = cap * 2 > cap ? cap * 2 : bytes;
        free(ws->slot[i]);
        ws->slot[i] = malloc(cap);
        ws->cap[i] = ws->slot[i] ? cap : 0;
        if (!ws->slot[i]) {
            ssl_set_error(SSL_ERR_NOMEM, "out of memory for %zu bytes of augmentation scratch",
                          bytes);
            return NULL;
        }
    }
    return ws->slot[i];
}

/* Weights of one axis: output o (of cnt, starting at virtual index off) reads input
 * start[o] .. start[o] + count[o] - 1 (absolute indices) with weights w[o * maxk + k]. */
typedef struct axis {
    int64_t *start;
    int *count;
    float *w;
    int maxk;
} axis_t;

static int axis_prepare(axis_t *a, int64_t in0, int64_t in_len, int64_t out_len, int64_t off,
                        int64_t cnt, int antialias, float gain, ssl_aug_ws_t *ws, int slot)
{
    double scale = (double)in_len / (double)out_len;
    double fs = antialias && scale > 1.0 ? scale : 1.0;
    double support = fs; /* bilinear (triangle) support is 1, widened by the filter scale */
    int maxk = (int)ceil(2.0 * support) + 2;
    size_t bytes = (size_t)cnt * (sizeof(int64_t) + sizeof(int)) + (size_t)cnt * (size_t)maxk *
                   sizeof(float) + 64;
    uint8_t *mem = ssl__ws_get(ws, slot, bytes);
    if (!mem)
        return SSL_ERR_NOMEM;
    a->start = (int64_t *)(void *)mem;
    a->count = (int *)(void *)(mem + (size_t)cnt * sizeof(int64_t));
    size_t woff = (size_t)cnt * (sizeof(int64_t) + sizeof(int));
    woff = (woff + 15) & ~(size_t)15;
    a->w = (float *)(void *)(mem + woff);
    a->maxk = maxk;
    double inv_fs = 1.0 / fs;
    for (int64_t o = 0; o < cnt; o++) {
        double center = ((double)(o + off) + 0.5) * scale;
        int64_t lo = (int64_t)floor(center - support + 0.5);
        int64_t hi = (int64_t)floor(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > in_len)
            hi = in_len;
        if (hi <= lo) { /* only for degenerate inputs: take the nearest pixel */
            lo = (int64_t)floor(center);
            if (lo >= in_len)
                lo = in_len - 1;
            if (lo < 0)
                lo = 0;
            hi = lo + 1;
        }
        if (hi - lo > maxk)
            hi = lo + maxk;
        float *w = a->w + (size_t)o * (size_t)maxk;
        double sum = 0;
        double wd[512];
        double *wt = hi - lo <= 512 ? wd : NULL;
        for (int64_t x = lo; x < hi; x++) {
            double t = fabs(((double)x - center + 0.5) * inv_fs);
            double v = t < 1.0 ? 1.0 - t : 0.0;
            if (wt)
                wt[x - lo] = v;
            else
                w[x - lo] = (float)v;
            sum += v;
        }
        if (sum <= 0) { /* cannot happen for a non-empty window; keep it safe */
            for (int64_t x = lo; x < hi; x++)
                w[x - lo] = x == lo ? gain : 0.0f;
        } else {
            for (int64_t x = lo; x < hi; x++)
                w[x - lo] = (float)((wt ? wt[x - lo] : (double)w[x - lo]) / sum * gain);
        }
        a->start[o] = in0 + lo;
        a->count[o] = (int)(hi - lo);
    }
    return SSL_OK;
}

int ssl__resample(const void *src, int is_u8, int64_t c, int64_t cs, int64_t rs, int64_t xs,
                  const int64_t box[4], int64_t vh, int64_t vw, int64_t off_y, int64_t off_x,
                  int64_t oh, int64_t ow, int antialias, float gain, float *dst,
                  ssl_aug_ws_t *ws)
{
    axis_t ax, ay;
    int rc = axis_prepare(&ax, box[1], box[3], vw, off_x, ow, antialias, gain, ws,
                          SSL__WS_AXIS_X);
    if (rc == SSL_OK)
        rc = axis_prepare(&ay, box[0], box[2], vh, off_y, oh, antialias, 1.0f, ws,
                          SSL__WS_AXIS_Y);
    if (rc != SSL_OK)
        return rc;
    /* Only the rows the vertical pass reads go through the horizontal pass. */
    int64_t row0 = ay.start[0];
    int64_t row1 = ay.start[oh - 1] + ay.count[oh - 1];
    for (int64_t o = 0; o < oh; o++) {
        if (ay.start[o] < row0)
            row0 = ay.start[o];
        if (ay.start[o] + ay.count[o] > row1)
            row1 = ay.start[o] + ay.count[o];
    }
    int64_t nrows = row1 - row0;
    float *tmp = ssl__ws_get(ws, SSL__WS_RESIZE, sizeof(float) * (size_t)(c * nrows * ow));
    if (!tmp)
        return SSL_ERR_NOMEM;
    for (int64_t ch = 0; ch < c; ch++) {
        for (int64_t r = 0; r < nrows; r++) {
            float *t = tmp + (ch * nrows + r) * ow;
            if (is_u8) {
                const uint8_t *row = (const uint8_t *)src + ch * cs + (row0 + r) * rs;
                for (int64_t o = 0; o < ow; o++) {
                    const uint8_t *p = row + ax.start[o] * xs;
                    const float *w = ax.w + (size_t)o * (size_t)ax.maxk;
                    float s = 0;
                    for (int k = 0; k < ax.count[o]; k++)
                        s += w[k] * (float)p[k * xs];
                    t[o] = s;
                }
            } else {
                const float *row = (const float *)src + ch * cs + (row0 + r) * rs;
                for (int64_t o = 0; o < ow; o++) {
                    const float *p = row + ax.start[o] * xs;
                    const float *w = ax.w + (size_t)o * (size_t)ax.maxk;
                    float s = 0;
                    for (int k = 0; k < ax.count[o]; k++)
                        s += w[k] * p[k * xs];
                    t[o] = s;
                }
            }
        }
        for (int64_t o = 0; o < oh; o++) {
            float *d = dst + (ch * oh + o) * ow;
            const float *w = ay.w + (size_t)o * (size_t)ay.maxk;
            const float *t0 = tmp + (ch * nrows + ay.start[o] - row0) * ow;
            float w0 = w[0];
            for (int64_t x = 0; x < ow; x++)
                d[x] = w0 * t0[x];
            for (int k = 1; k < ay.count[o]; k++) {
                const float *t = t0 + k * ow;
                float wk = w[k];
                for (int64_t x = 0; x < ow; x++)
                    d[x] += wk * t[x];
            }
        }
    }
    return SSL_OK;
}

static int check_box(const void *src, int64_t c, int64_t h, int64_t w, const int64_t box[4],
                     const float *dst, int64_t oh, int64_t ow, const char *fn)
{
    if (SSL__IS_NULL(src, fn) || SSL__IS_NULL(dst, fn) || SSL__IS_NULL(box, fn) ||
        SSL__BAD_SIZES(fn, sizeof(float), c, h, w) || SSL__BAD_SIZES(fn, sizeof(float), c, oh, ow))
        return SSL_ERR_INVALID;
    if (box[0] < 0 || box[1] < 0 || box[2] <= 0 || box[3] <= 0 || box[0] + box[2] > h ||
        box[1] + box[3] > w || oh <= 0 || ow <= 0)
        return ssl_set_error(SSL_ERR_INVALID, "%s: box {top %lld, left %lld, height %lld, width "
                             "%lld} of a %lld x %lld image to %lld x %lld is invalid", fn,
                             (long long)box[0], (long long)box[1], (long long)box[2],
                             (long long)box[3], (long long)h, (long long)w, (long long)oh,
                             (long long)ow);
    return SSL_OK;
}

int ssl_resize_u8(const uint8_t *src, int64_t c, int64_t h, int64_t w, const int64_t box[4],
                  float *dst, int64_t oh, int64_t ow, int antialias, ssl_aug_ws_t *ws)
{
    int rc = check_box(src, c, h, w, box, dst, oh, ow, __func__);
    if (rc != SSL_OK)
        return rc;
    ssl_aug_ws_t *own = ws ? NULL : ssl_aug_ws_create();
    if (!ws && !own)
        return SSL_ERR_NOMEM;
    rc = ssl__resample(src, 1, c, h * w, w, 1, box, oh, ow, 0, 0, oh, ow, antialias,
                       1.0f / 255.0f, dst, ws ? ws : own);
    ssl_aug_ws_free(own);
    return rc;
}

int ssl_resize_f32(const float *src, int64_t c, int64_t h, int64_t w, const int64_t box[4],
                   float *dst, int64_t oh, int64_t ow, int antialias, ssl_aug_ws_t *ws)
{
    int rc = check_box(src, c, h, w, box, dst, oh, ow, __func__);
    if (rc != SSL_OK)
        return rc;
    ssl_aug_ws_t *own = ws ? NULL : ssl_aug_ws_create();
    if (!ws && !own)
        return SSL_ERR_NOMEM;
    rc = ssl__resample(src, 0, c, h * w, w, 1, box, oh, ow, 0, 0, oh, ow, antialias, 1.0f, dst,
                       ws ? ws : own);
    ssl_aug_ws_free(own);
    return rc;
}

int ssl__resize_center_crop_hwc(const uint8_t *src, int64_t h, int64_t w, int64_t c, int size,
                                uint8_t *dst)
{
    /* torchvision Resize(size) then CenterCrop(size): the shorter side becomes size, the longer
     * int(size * long / short); the crop starts at round((resized - size) / 2). */
    int64_t vh, vw;
    if (h <= w) {
        vh = size;
        vw = (int64_t)((double)size * (double)w / (double)h);
    } else {
        vw = size;
        vh = (int64_t)((double)size * (double)h / (double)w);
    }
    if (vh < size)
        vh = size;
    if (vw < size)
        vw = size;
    int64_t top = (int64_t)nearbyint((double)(vh - size) / 2.0);
    int64_t left = (int64_t)nearbyint((double)(vw - size) / 2.0);
    ssl_aug_ws_t *ws = ssl_aug_ws_create();
    if (!ws)
        return SSL_ERR_NOMEM;
    int rc = SSL_ERR_NOMEM;
    float *out = ssl__ws_get(ws, SSL__WS_U8, sizeof(float) * (size_t)(c * size * size));
    if (out) {
        int64_t box[4] = {0, 0, h, w};
        rc = ssl__resample(src, 1, c, 1, w * c, c, box, vh, vw, top, left, size, size, 1, 1.0f,
                           out, ws);
    }
    if (rc == SSL_OK)
        for (int64_t i = 0; i < c * size * size; i++) {
            float v = out[i] + 0.5f;
            dst[i] = v <= 0.0f ? 0 : v >= 255.0f ? 255 : (uint8_t)v;
        }
    ssl_aug_ws_free(ws);
    return rc;
}
