/* Per-view augmentations with torchvision semantics on float CHW images in [0, 1].
 *
 * Every random draw of a view is ssl_rng_*(seed, ssl_aug_stream(epoch, sample, view), d) with a
 * fixed draw number d per decision (the D_* below), so adding or disabling one op never shifts
 * the draws of another, and nothing depends on the thread that runs the view. */
#include "data_internal.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Draw numbers inside a view's stream. */
enum {
    D_CROP_P = 0,
    D_CROP = 1,      /* 40 draws: 10 attempts x (scale, log-ratio, top, left) */
    D_FLIP = 41,
    D_JITTER_P = 42,
    D_JITTER_PERM = 43, /* 3 draws: Fisher-Yates of the 4 colour ops */
    D_JITTER_F = 46,    /* 4 draws: brightness, contrast, saturation, hue factors */
    D_GRAY = 50,
    D_BLUR_P = 51,
    D_BLUR_SIGMA = 52,
    D_SOLARIZE = 53
};

#define TAG_AUG 0x6175676d656e74ull /* "augment" */

/* Luma weights of torchvision rgb_to_grayscale (ITU-R 601-2). */
#define GR 0.2989f
#define GG 0.587f
#define GB 0.114f

void ssl_view_aug_default(ssl_view_aug_t *a, int size)
{
    if (SSL__IS_NULL(a, __func__))
        return;
    memset(a, 0, sizeof *a);
    a->out_h = a->out_w = size;
    a->crop.p = 1.0f;
    a->crop.scale[0] = 0.08f;
    a->crop.scale[1] = 1.0f;
    a->crop.ratio[0] = 3.0f / 4.0f;
    a->crop.ratio[1] = 4.0f / 3.0f;
    a->crop.antialias = 1;
    a->p_flip = 0.5f;
    a->jitter.p = 0.8f;
    a->jitter.brightness = 0.4f;
    a->jitter.contrast = 0.4f;
    a->jitter.saturation = 0.2f;
    a->jitter.hue = 0.1f;
    a->p_gray = 0.2f;
    a->blur.p = 0.5f;
    a->blur.sigma[0] = 0.1f;
    a->blur.sigma[1] = 2.0f;
    a->blur.kernel_size = 0;
    a->p_solarize = 0.0f;
    a->solarize_threshold = 0.5f;
    a->normalize = 1;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(a->mean, mean, sizeof mean);
    memcpy(a->std, std, sizeof std);
}

void ssl_view_aug_eval(ssl_view_aug_t *a, int size)
{
    if (SSL__IS_NULL(a, __func__))
        return;
    ssl_view_aug_default(a, size);
    a->crop.p = 0.0f;
    a->p_flip = 0.0f;
    a->jitter.p = 0.0f;
    a->p_gray = 0.0f;
    a->blur.p = 0.0f;
    a->p_solarize = 0.0f;
}

static int bad_field(const char *field, double v, const char *range)
{
    return ssl_set_error(SSL_ERR_CONFIG, "augmentation %s = %g is out of range: %s", field, v,
                         range);
}

static bool prob_ok(float p) { return p >= 0.0f && p <= 1.0f; }

int ssl_view_aug_validate(const ssl_view_aug_t *a)
{
    if (SSL__IS_NULL(a, __func__))
        return SSL_ERR_INVALID;
    if (a->out_h <= 0 || a->out_h > 8192)
        return bad_field("out_h", a->out_h, "[1, 8192]");
    if (a->out_w <= 0 || a->out_w > 8192)
        return bad_field("out_w", a->out_w, "[1, 8192]");
    struct { const char *name; float p; } probs[] = {
        {"crop.p", a->crop.p},   {"p_flip", a->p_flip}, {"jitter.p", a->jitter.p},
        {"p_gray", a->p_gray},   {"blur.p", a->blur.p}, {"p_solarize", a->p_solarize}};
    for (size_t i = 0; i < sizeof probs / sizeof probs[0]; i++)
        if (!prob_ok(probs[i].p))
            return bad_field(probs[i].name, probs[i].p, "a probability in [0, 1]");
    if (!(a->crop.scale[0] > 0.0f && a->crop.scale[0] <= a->crop.scale[1] &&
          a->crop.scale[1] <= 1.0f))
        return ssl_set_error(SSL_ERR_CONFIG, "augmentation crop.scale = (%g, %g) must satisfy "
                             "0 < min <= max <= 1", a->crop.scale[0], a->crop.scale[1]);
    if (!(a->crop.ratio[0] > 0.0f && a->crop.ratio[0] <= a->crop.ratio[1] &&
          isfinite(a->crop.ratio[1])))
        return ssl_set_error(SSL_ERR_CONFIG, "augmentation crop.ratio = (%g, %g) must satisfy "
                             "0 < min <= max", a->crop.ratio[0], a->crop.ratio[1]);
    if (!(a->jitter.brightness >= 0.0f && a->jitter.brightness <= 100.0f))
        return bad_field("jitter.brightness", a->jitter.brightness, "[0, 100]");
    if (!(a->jitter.contrast >= 0.0f && a->jitter.contrast <= 100.0f))
        return bad_field("jitter.contrast", a->jitter.contrast, "[0, 100]");
    if (!(a->jitter.saturation >= 0.0f && a->jitter.saturation <= 100.0f))
        return bad_field("jitter.saturation", a->jitter.saturation, "[0, 100]");
    if (!(a->jitter.hue >= 0.0f && a->jitter.hue <= 0.5f))
        return bad_field("jitter.hue", a->jitter.hue, "[0, 0.5]");
    if (!(a->blur.sigma[0] > 0.0f && a->blur.sigma[0] <= a->blur.sigma[1] &&
          a->blur.sigma[1] <= 100.0f))
        return ssl_set_error(SSL_ERR_CONFIG, "augmentation blur.sigma = (%g, %g) must satisfy "
                             "0 < min <= max <= 100", a->blur.sigma[0], a->blur.sigma[1]);
    if (a->blur.kernel_size < 0 || a->blur.kernel_size > 601 ||
        (a->blur.kernel_size > 0 && a->blur.kernel_size % 2 == 0))
        return bad_field("blur.kernel_size", a->blur.kernel_size,
                         "0 (from sigma) or an odd size in [1, 601]");
    if (!(a->solarize_threshold >= 0.0f && a->solarize_threshold <= 1.0f))
        return bad_field("solarize_threshold", a->solarize_threshold, "[0, 1]");
    for (int i = 0; i < 3; i++) {
        if (!isfinite(a->mean[i]))
            return bad_field(i == 0 ? "mean[0]" : i == 1 ? "mean[1]" : "mean[2]", a->mean[i],
                             "finite");
        if (a->normalize && !(a->std[i] > 0.0f && isfinite(a->std[i])))
            return bad_field(i == 0 ? "std[0]" : i == 1 ? "std[1]" : "std[2]", a->std[i],
                             "finite and > 0");
    }
    return SSL_OK;
}

void ssl_views_simclr(ssl_views_t *v, int n, int size)
{
    if (SSL__IS_NULL(v, __func__))
        return;
    memset(v, 0, sizeof *v);
    if (SSL__BAD_RANGE(n, 0, SSL_MAX_VIEWS, __func__))
        n = n < 0 ? 0 : SSL_MAX_VIEWS; /* the error is set; v stays a valid set of views */
    v->n_views = n;
    for (int i = 0; i < n; i++)
        ssl_view_aug_default(&v->view[i], size);
}

int ssl_views_multicrop(ssl_views_t *v, int n_global, int global_size, const float global_scale[2],
                        int n_local, int local_size, const float local_scale[2])
{
    if (n_global < 0 || n_local < 0 || n_global + n_local > SSL_MAX_VIEWS ||
        n_global + n_local == 0)
        return ssl_set_error(SSL_ERR_CONFIG, "multi-crop: %d global + %d local views must be "
                             "between 1 and %d", n_global, n_local, SSL_MAX_VIEWS);
    memset(v, 0, sizeof *v);
    v->n_views = n_global + n_local;
    for (int i = 0; i < n_global; i++) {
        ssl_view_aug_t *a = &v->view[i];
        ssl_view_aug_default(a, global_size);
        a->crop.scale[0] = global_scale[0];
        a->crop.scale[1] = global_scale[1];
        a->blur.p = i == 0 ? 1.0f : i == 1 ? 0.1f : 0.5f;
        a->p_solarize = i == 1 ? 0.2f : 0.0f;
    }
    for (int i = 0; i < n_local; i++) {
        ssl_view_aug_t *a = &v->view[n_global + i];
        ssl_view_aug_default(a, local_size);
        a->crop.scale[0] = local_scale[0];
        a->crop.scale[1] = local_scale[1];
        a->blur.p = 0.5f;
    }
    return SSL_OK;
}

uint64_t ssl_aug_stream(uint64_t epoch, int64_t sample, int view)
{
    if (SSL__BAD_RANGE(sample, 0, INT64_MAX, __func__) ||
        SSL__BAD_RANGE(view, 0, INT_MAX, __func__))
        return 0;
    return ssl_rng_stream(ssl_rng_stream(TAG_AUG, epoch, 0), (uint64_t)sample, (uint64_t)view);
}

/* Integer uniform in [0, n] from the full 32-bit word. */
static int64_t rand_int(uint64_t seed, uint64_t stream, uint64_t d, int64_t n)
{
    uint64_t u = ssl_rng_u32(seed, stream, d);
    return (int64_t)((u * (uint64_t)(n + 1)) >> 32);
}

int ssl_aug_crop_box(int64_t h, int64_t w, const float scale[2], const float ratio[2],
                     uint64_t seed, uint64_t stream, uint64_t first_draw, int64_t box[4])
{
    if (SSL__IS_NULL(scale, __func__) || SSL__IS_NULL(ratio, __func__) ||
        SSL__IS_NULL(box, __func__) || SSL__BAD_RANGE(h, 1, INT64_MAX, __func__) ||
        SSL__BAD_RANGE(w, 1, INT64_MAX, __func__))
        return SSL_ERR_INVALID;
    double area = (double)h * (double)w;
    double lr0 = log((double)ratio[0]), lr1 = log((double)ratio[1]);
    for (int t = 0; t < 10; t++) {
        uint64_t d = first_draw + 4 * (uint64_t)t;
        double s = scale[0] + (scale[1] - scale[0]) * (double)ssl_rng_uniform(seed, stream, d);
        double ar = exp(lr0 + (lr1 - lr0) * (double)ssl_rng_uniform(seed, stream, d + 1));
        double target = area * s;
        int64_t cw = (int64_t)nearbyint(sqrt(target * ar));
        int64_t ch = (int64_t)nearbyint(sqrt(target / ar));
        if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
            box[0] = rand_int(seed, stream, d + 2, h - ch);
            box[1] = rand_int(seed, stream, d + 3, w - cw);
            box[2] = ch;
            box[3] = cw;
            return 1;
        }
    }
    /* Fallback: the largest centred box whose aspect ratio is clamped into the range. */
    double in_ratio = (double)w / (double)h;
    int64_t cw, ch;
    if (in_ratio < ratio[0]) {
        cw = w;
        ch = (int64_t)nearbyint((double)cw / ratio[0]);
    } else if (in_ratio > ratio[1]) {
        ch = h;
        cw = (int64_t)nearbyint((double)ch * ratio[1]);
    } else {
        cw = w;
        ch = h;
    }
    if (ch < 1) ch = 1;
    if (cw < 1) cw = 1;
    if (ch > h) ch = h;
    if (cw > w) cw = w;
    box[0] = (h - ch) / 2;
    box[1] = (w - cw) / 2;
    box[2] = ch;
    box[3] = cw;
    return 0;
}

/* ---------------------------------------------------------------- colour ops */

/* The colour ops return nothing: a NULL image or absurd sizes set the error and do nothing. */
static bool bad_image(const char *fn, const float *x, int64_t c, int64_t h, int64_t w)
{
    return SSL__IS_NULL(x, fn) || SSL__BAD_SIZES(fn, sizeof(float), c, h, w);
}

void ssl_hflip(float *x, int64_t c, int64_t h, int64_t w)
{
    if (bad_image(__func__, x, c, h, w))
        return;
    for (int64_t r = 0; r < c * h; r++) {
        float *row = x + r * w;
        for (int64_t i = 0, j = w - 1; i < j; i++, j--) {
            float t = row[i];
            row[i] = row[j];
            row[j] = t;
        }
    }
}

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

void ssl_adjust_brightness(float *x, int64_t c, int64_t h, int64_t w, float f)
{
    if (bad_image(__func__, x, c, h, w))
        return;
    int64_t n = c * h * w;
    for (int64_t i = 0; i < n; i++)
        x[i] = clamp01(x[i] * f);
}

void ssl_adjust_contrast(float *x, int64_t c, int64_t h, int64_t w, float f)
{
    if (bad_image(__func__, x, c, h, w))
        return;
    int64_t hw = h * w;
    double mean = 0;
    if (c == 3) {
        for (int64_t i = 0; i < hw; i++)
            mean += GR * x[i] + GG * x[hw + i] + GB * x[2 * hw + i];
    } else {
        for (int64_t i = 0; i < hw; i++)
            mean += x[i];
    }
    mean /= (double)hw;
    float add = (1.0f - f) * (float)mean;
    for (int64_t i = 0; i < c * hw; i++)
        x[i] = clamp01(f * x[i] + add);
}

void ssl_adjust_saturation(float *x, int64_t c, int64_t h, int64_t w, float f)
{
    if (bad_image(__func__, x, c, h, w))
        return;
    if (c != 3)
        return;
    int64_t hw = h * w;
    float *r = x, *g = x + hw, *b = x + 2 * hw;
    float k = 1.0f - f;
    for (int64_t i = 0; i < hw; i++) {
        float y = k * (GR * r[i] + GG * g[i] + GB * b[i]);
        r[i] = clamp01(f * r[i] + y);
        g[i] = clamp01(f * g[i] + y);
        b[i] = clamp01(f * b[i] + y);
    }
}

void ssl_grayscale(float *x, int64_t c, int64_t h, int64_t w)
{
    if (bad_image(__func__, x, c, h, w))
        return;
    if (c != 3)
        return;
    int64_t hw = h * w;
    for (int64_t i = 0; i < hw; i++) {
        float y = GR * x[i] + GG * x[hw + i] + GB * x[2 * hw + i];
        x[i] = x[hw + i] = x[2 * hw + i] = y;
    }
}

/* Hue rotation through HSV (torchvision's _rgb2hsv / _hsv2rgb on float tensors), written
 * without branches so it vectorises. HSV -> RGB uses the equivalent closed form
 * channel_n = v * (1 - s * clamp(min(k, 4 - k), 0, 1)), k = (n + 6 h) mod 6, n = 5, 3, 1 for
 * R, G, B. A gray pixel (max == min) has s = 0 and comes back unchanged. */
void ssl_adjust_hue(float *x, int64_t c, int64_t h, int64_t w, float shift)
{
    if (bad_image(__func__, x, c, h, w))
        return;
    if (c != 3 || shift == 0.0f)
        return;
    shift -= floorf(shift); /* any shift: the same rotation in [0, 1) */
    int64_t hw = h * w;
    float *restrict R = x, *restrict G = x + hw, *restrict B = x + 2 * hw;
    for (int64_t i = 0; i < hw; i++) {
        float r = R[i], g = G[i], b = B[i];
        float mx = r > g ? r : g;
        mx = mx > b ? mx : b;
        float mn = r < g ? r : g;
        mn = mn < b ? mn : b;
        float cr = mx - mn;
        float s = cr / (mx > 0.0f ? mx : 1.0f);
        float inv = 1.0f / (cr > 0.0f ? cr : 1.0f);
        float hr = (g - b) * inv, hg = 2.0f + (b - r) * inv, hb = 4.0f + (r - g) * inv;
        float hue = mx == r ? hr : (mx == g ? hg : hb);
        hue = hue * (1.0f / 6.0f) + shift; /* in [-2/3, 4/3] for |shift| <= 0.5 */
        hue = hue < 0.0f ? hue + 1.0f : hue;
        hue = hue >= 1.0f ? hue - 1.0f : hue;
        float h6 = hue * 6.0f, vs = mx * s;
        float kr = 5.0f + h6, kg = 3.0f + h6, kb = 1.0f + h6;
        kr = kr >= 6.0f ? kr - 6.0f : kr;
        kg = kg >= 6.0f ? kg - 6.0f : kg;
        kb = kb >= 6.0f ? kb - 6.0f : kb;
        float fr = kr < 4.0f - kr ? kr : 4.0f - kr;
        float fg = kg < 4.0f - kg ? kg : 4.0f - kg;
        float fb = kb < 4.0f - kb ? kb : 4.0f - kb;
        R[i] = mx - vs * clamp01(fr);
        G[i] = mx - vs * clamp01(fg);
        B[i] = mx - vs * clamp01(fb);
    }
}

void ssl_solarize(float *x, int64_t n, float threshold)
{
    if (bad_image(__func__, x, 1, 1, n))
        return;
    for (int64_t i = 0; i < n; i++)
        if (x[i] >= threshold)
            x[i] = 1.0f - x[i];
}

void ssl_normalize(float *x, int64_t c, int64_t h, int64_t w, const float *mean,
                   const float *std)
{
    if (bad_image(__func__, x, c, h, w) || SSL__IS_NULL(mean, __func__) ||
        SSL__IS_NULL(std, __func__))
        return;
    int64_t hw = h * w;
    for (int64_t ch = 0; ch < c; ch++) {
        float m = mean[ch], inv = 1.0f / std[ch];
        float *p = x + ch * hw;
        for (int64_t i = 0; i < hw; i++)
            p[i] = (p[i] - m) * inv;
    }
}

/* ---------------------------------------------------------------- blur */

int ssl_gaussian_kernel(float sigma, int kernel_size, float *k, int max_size)
{
    if (SSL__IS_NULL(k, __func__) || SSL__BAD_RANGE(max_size, 1, INT_MAX, __func__))
        return SSL_ERR_INVALID;
    if (!(sigma > 0.0f))
        return ssl_set_error(SSL_ERR_INVALID, "%s: sigma %g must be > 0", __func__, sigma);
    int radius = kernel_size > 0 ? kernel_size / 2 : (int)ceil(3.0 * (double)sigma);
    if (radius < 0)
        radius = 0;
    if (2 * radius + 1 > max_size)
        radius = (max_size - 1) / 2;
    double sum = 0, tmp[1024];
    double *t = 2 * radius + 1 <= 1024 ? tmp : NULL;
    for (int i = -radius; i <= radius; i++) {
        double z = (double)i / (double)sigma;
        double v = exp(-0.5 * z * z);
        if (t)
            t[i + radius] = v;
        else
            k[i + radius] = (float)v;
        sum += v;
    }
    for (int i = 0; i <= 2 * radius; i++)
        k[i] = (float)((t ? t[i] : (double)k[i]) / sum);
    return radius;
}

/* Reflect without repeating the edge (torch "reflect" padding), for any offset. */
static inline int64_t reflect(int64_t i, int64_t n)
{
    if (n == 1)
        return 0;
    int64_t period = 2 * (n - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i >= n ? period - i : i;
}

int ssl_gaussian_blur(float *x, int64_t c, int64_t h, int64_t w, float sigma, int kernel_size,
                      ssl_aug_ws_t *ws)
{
    if (!(sigma > 0.0f))
        return ssl_set_error(SSL_ERR_INVALID, "gaussian blur: sigma %g must be > 0", sigma);
    ssl_aug_ws_t *own = ws ? NULL : ssl_aug_ws_create();
    if (!ws && !own)
        return SSL_ERR_NOMEM;
    ssl_aug_ws_t *W = ws ? ws : own;
    int max_size = 1201;
    float *k = ssl__ws_get(W, SSL__WS_KERNEL, sizeof(float) * (size_t)max_size);
    if (!k) {
        ssl_aug_ws_free(own);
        return SSL_ERR_NOMEM;
    }
    int r = ssl_gaussian_kernel(sigma, kernel_size, k, max_size);
    int64_t K = 2 * r + 1;
    /* tmp: one padded row (w + 2r), the horizontally blurred plane (h * w), then the reflected
     * column indices (w + 2r) and row indices (h + 2r), computed once per call. */
    size_t nf = (size_t)(w + 2 * r + h * w);
    size_t bytes = sizeof(float) * nf + sizeof(int64_t) * (size_t)(w + h + 4 * r) + 64;
    float *tmp = ssl__ws_get(W, SSL__WS_BLUR, bytes);
    if (!tmp) {
        ssl_aug_ws_free(own);
        return SSL_ERR_NOMEM;
    }
    float *pad = tmp, *plane = tmp + w + 2 * r;
    int64_t *xi = (int64_t *)(void *)(((uintptr_t)(tmp + nf) + 15) & ~(uintptr_t)15);
    int64_t *yi = xi + w + 2 * r;
    for (int64_t i = 0; i < w + 2 * r; i++)
        xi[i] = reflect(i - r, w);
    for (int64_t i = 0; i < h + 2 * r; i++)
        yi[i] = reflect(i - r, h);
    for (int64_t ch = 0; ch < c; ch++) {
        float *img = x + ch * h * w;
        for (int64_t y = 0; y < h; y++) {
            const float *row = img + y * w;
            for (int64_t i = 0; i < r; i++) {
                pad[i] = row[xi[i]];
                pad[w + r + i] = row[xi[w + r + i]];
            }
            memcpy(pad + r, row, sizeof(float) * (size_t)w);
            float *o = plane + y * w;
            for (int64_t i = 0; i < w; i++)
                o[i] = k[0] * pad[i];
            for (int64_t j = 1; j < K; j++) {
                float kj = k[j];
                const float *p = pad + j;
                for (int64_t i = 0; i < w; i++)
                    o[i] += kj * p[i];
            }
        }
        for (int64_t y = 0; y < h; y++) {
            float *o = img + y * w;
            const float *p0 = plane + yi[y] * w;
            for (int64_t i = 0; i < w; i++)
                o[i] = k[0] * p0[i];
            for (int64_t j = 1; j < K; j++) {
                const float *p = plane + yi[y + j] * w;
                float kj = k[j];
                for (int64_t i = 0; i < w; i++)
                    o[i] += kj * p[i];
            }
        }
    }
    ssl_aug_ws_free(own);
    return SSL_OK;
}

/* ---------------------------------------------------------------- one view */

static void apply_jitter(const ssl_aug_jitter_t *j, float *x, int64_t c, int64_t h, int64_t w,
                         uint64_t seed, uint64_t stream)
{
    int order[4] = {0, 1, 2, 3};
    for (int i = 3; i > 0; i--) { /* Fisher-Yates: j uniform in [0, i] */
        int k = (int)rand_int(seed, stream, D_JITTER_PERM + (uint64_t)(3 - i), i);
        int t = order[i];
        order[i] = order[k];
        order[k] = t;
    }
    float u[4];
    for (int i = 0; i < 4; i++)
        u[i] = ssl_rng_uniform(seed, stream, D_JITTER_F + (uint64_t)i);
    for (int i = 0; i < 4; i++) {
        switch (order[i]) {
        case 0:
            if (j->brightness > 0) {
                float lo = fmaxf(0.0f, 1.0f - j->brightness), hi = 1.0f + j->brightness;
                ssl_adjust_brightness(x, c, h, w, lo + (hi - lo) * u[0]);
            }
            break;
        case 1:
            if (j->contrast > 0) {
                float lo = fmaxf(0.0f, 1.0f - j->contrast), hi = 1.0f + j->contrast;
                ssl_adjust_contrast(x, c, h, w, lo + (hi - lo) * u[1]);
            }
            break;
        case 2:
            if (j->saturation > 0 && c == 3) {
                float lo = fmaxf(0.0f, 1.0f - j->saturation), hi = 1.0f + j->saturation;
                ssl_adjust_saturation(x, c, h, w, lo + (hi - lo) * u[2]);
            }
            break;
        default:
            if (j->hue > 0 && c == 3)
                ssl_adjust_hue(x, c, h, w, -j->hue + 2.0f * j->hue * u[3]);
            break;
        }
    }
}

int ssl_augment_view(const ssl_view_aug_t *a, const uint8_t *src, int64_t c, int64_t h, int64_t w,
                     uint64_t seed, uint64_t epoch, int64_t sample, int view, float *dst,
                     ssl_aug_ws_t *ws)
{
    if (c != 1 && c != 3)
        return ssl_set_error(SSL_ERR_INVALID, "augment: %lld channels (1 or 3 supported)",
                             (long long)c);
    if (h <= 0 || w <= 0)
        return ssl_set_error(SSL_ERR_INVALID, "augment: empty %lld x %lld image", (long long)h,
                             (long long)w);
    ssl_aug_ws_t *own = ws ? NULL : ssl_aug_ws_create();
    if (!ws && !own)
        return SSL_ERR_NOMEM;
    ssl_aug_ws_t *W = ws ? ws : own;
    uint64_t st = ssl_aug_stream(epoch, sample, view);
#define DRAW(d) ssl_rng_uniform(seed, st, (d))
    int64_t oh = a->out_h, ow = a->out_w;
    int64_t box[4] = {0, 0, h, w};
    if (DRAW(D_CROP_P) < a->crop.p)
        ssl_aug_crop_box(h, w, a->crop.scale, a->crop.ratio, seed, st, D_CROP, box);
    int rc = ssl__resample(src, 1, c, h * w, w, 1, box, oh, ow, 0, 0, oh, ow, a->crop.antialias,
                           1.0f / 255.0f, dst, W);
    if (rc == SSL_OK) {
        if (DRAW(D_FLIP) < a->p_flip)
            ssl_hflip(dst, c, oh, ow);
        if (DRAW(D_JITTER_P) < a->jitter.p)
            apply_jitter(&a->jitter, dst, c, oh, ow, seed, st);
        if (c == 3 && DRAW(D_GRAY) < a->p_gray)
            ssl_grayscale(dst, c, oh, ow);
        if (DRAW(D_BLUR_P) < a->blur.p) {
            float s = a->blur.sigma[0] + (a->blur.sigma[1] - a->blur.sigma[0]) * DRAW(D_BLUR_SIGMA);
            rc = ssl_gaussian_blur(dst, c, oh, ow, s, a->blur.kernel_size, W);
        }
        if (DRAW(D_SOLARIZE) < a->p_solarize)
            ssl_solarize(dst, c * oh * ow, a->solarize_threshold);
        if (a->normalize)
            ssl_normalize(dst, c, oh, ow, a->mean, a->std);
    }
#undef DRAW
    ssl_aug_ws_free(own);
    return rc;
}
