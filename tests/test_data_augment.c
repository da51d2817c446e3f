/* Data layer: augmentations on small synthetic images against expected results. */
#include "testutil.h"

#include "ssl/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IDX(c, y, x, H, W) (((c) * (H) + (y)) * (W) + (x))

static void test_crop_box_ranges(void **state)
{
    (void)state;
    const float scale[2] = {0.08f, 1.0f}, ratio[2] = {3.0f / 4.0f, 4.0f / 3.0f};
    int n_ok = 0;
    double min_area = 1, max_area = 0;
    for (int s = 0; s < 2000; s++) {
        int64_t box[4];
        int64_t H = 40 + s % 7, W = 60 - s % 5;
        int ok = ssl_aug_crop_box(H, W, scale, ratio, 7, ssl_aug_stream(0, s, 0), 1, box);
        assert_true(box[0] >= 0 && box[1] >= 0 && box[2] >= 1 && box[3] >= 1);
        assert_true(box[0] + box[2] <= H && box[1] + box[3] <= W);
        if (ok) {
            n_ok++;
            /* Rounding of the side lengths moves area and ratio a little off the ranges. */
            double area = (double)(box[2] * box[3]) / (double)(H * W);
            double ar = (double)box[3] / (double)box[2];
            assert_true(area >= 0.08 * 0.7 && area <= 1.0);
            assert_true(ar >= 0.75 * 0.8 && ar <= 4.0 / 3.0 * 1.25);
            if (area < min_area) min_area = area;
            if (area > max_area) max_area = area;
        }
    }
    assert_true(n_ok > 1900);  /* the 10 attempts almost always succeed */
    assert_true(min_area < 0.15 && max_area > 0.85); /* the whole range is used */
}

static void test_crop_box_fallback(void **state)
{
    (void)state;
    /* A 10 x 100 image cannot hold a square of 90-100% of its area: every attempt fails and the
     * fallback clamps the ratio into range: h = 10, w = round(10 * 1) = 10, centred. */
    const float scale[2] = {0.9f, 1.0f}, ratio[2] = {1.0f, 1.0f};
    int64_t box[4];
    assert_int_equal(ssl_aug_crop_box(10, 100, scale, ratio, 1, 2, 0, box), 0);
    assert_int_equal(box[0], 0);
    assert_int_equal(box[1], 45);
    assert_int_equal(box[2], 10);
    assert_int_equal(box[3], 10);
    /* Tall image: w = 10, h = round(10 / 1) = 10, top = (100 - 10) / 2. */
    assert_int_equal(ssl_aug_crop_box(100, 10, scale, ratio, 1, 2, 0, box), 0);
    assert_int_equal(box[0], 45);
    assert_int_equal(box[1], 0);
    assert_int_equal(box[2], 10);
    assert_int_equal(box[3], 10);
    /* Ratio range containing the image's: the whole image. */
    const float wide[2] = {0.05f, 20.0f}, big[2] = {1.0f, 1.0f};
    int64_t h = 7, w = 9;
    /* scale 1 with random ratios rarely fits exactly; whatever happens the box is valid, and
     * when it is the fallback it is the whole image. */
    int ok = ssl_aug_crop_box(h, w, big, wide, 3, 4, 0, box);
    if (!ok) {
        assert_int_equal(box[2], 7);
        assert_int_equal(box[3], 9);
    }
}

static void test_resize(void **state)
{
    (void)state;
    /* Identity: same size, whole image -> value / 255 exactly. */
    uint8_t src[2 * 3 * 4];
    for (int i = 0; i < 24; i++)
        src[i] = (uint8_t)(i * 10);
    float out[24];
    int64_t full[4] = {0, 0, 3, 4};
    assert_int_equal(ssl_resize_u8(src, 2, 3, 4, full, out, 3, 4, 1, NULL), SSL_OK);
    for (int i = 0; i < 24; i++)
        assert_float_equal(out[i], (float)(i * 10) / 255.0f, 1e-7);

    /* 2x upscale of [0, 255]: half-pixel centres, edges clamped -> 0, .25, .75, 1. */
    uint8_t two[2] = {0, 255};
    float up[4];
    int64_t b2[4] = {0, 0, 1, 2};
    assert_int_equal(ssl_resize_u8(two, 1, 1, 2, b2, up, 1, 4, 1, NULL), SSL_OK);
    const float want_up[4] = {0.0f, 0.25f, 0.75f, 1.0f};
    tu_assert_close(up, want_up, 4, 1e-6, 0);

    /* 2x downscale of [0, 0, 255, 255]: plain bilinear averages pairs; antialiased uses a
     * triangle of half-width 2: weights (.75, .75, .25) / 1.75 for the first output. */
    uint8_t four[4] = {0, 0, 255, 255};
    float dn[2];
    int64_t b4[4] = {0, 0, 1, 4};
    assert_int_equal(ssl_resize_u8(four, 1, 1, 4, b4, dn, 1, 2, 0, NULL), SSL_OK);
    assert_float_equal(dn[0], 0.0f, 1e-7);
    assert_float_equal(dn[1], 1.0f, 1e-7);
    assert_int_equal(ssl_resize_u8(four, 1, 1, 4, b4, dn, 1, 2, 1, NULL), SSL_OK);
    assert_float_equal(dn[0], 0.25f / 1.75f, 1e-6);
    assert_float_equal(dn[1], 1.0f - 0.25f / 1.75f, 1e-6);

    /* A box: only its pixels matter. */
    uint8_t img[16];
    for (int i = 0; i < 16; i++)
        img[i] = (i / 4 >= 1 && i / 4 <= 2 && i % 4 >= 1 && i % 4 <= 2) ? 200 : 0;
    int64_t inner[4] = {1, 1, 2, 2};
    float o5[25];
    assert_int_equal(ssl_resize_u8(img, 1, 4, 4, inner, o5, 5, 5, 1, NULL), SSL_OK);
    for (int i = 0; i < 25; i++)
        assert_float_equal(o5[i], 200.0f / 255.0f, 1e-6);

    /* Constant image stays constant under antialiased shrinking. */
    float cst[30 * 30], o7[7 * 7];
    for (int i = 0; i < 900; i++)
        cst[i] = 0.3f;
    int64_t b30[4] = {0, 0, 30, 30};
    assert_int_equal(ssl_resize_f32(cst, 1, 30, 30, b30, o7, 7, 7, 1, NULL), SSL_OK);
    for (int i = 0; i < 49; i++)
        assert_float_equal(o7[i], 0.3f, 1e-6);

    int64_t bad[4] = {0, 0, 5, 5};
    assert_int_equal(ssl_resize_f32(cst, 1, 4, 4, bad, o7, 2, 2, 1, NULL), SSL_ERR_INVALID);
}

static void test_flip(void **state)
{
    (void)state;
    float x[2 * 2 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const float want[12] = {3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10};
    ssl_hflip(x, 2, 2, 3);
    tu_assert_close(x, want, 12, 0, 0);
}

/* A random RGB image in [0, 1]. */
static void rand_img(float *x, int64_t n, uint64_t seed)
{
    ssl_rng_fill_uniform(x, (size_t)n, 0.0f, 1.0f, seed, 11, 0);
}

/* Naive reference: torchvision's _rgb2hsv / _hsv2rgb with the six-sector selection. */
static void hue_reference(float *px, float shift)
{
    float r = px[0], g = px[1], b = px[2];
    float mx = fmaxf(r, fmaxf(g, b)), mn = fminf(r, fminf(g, b)), cr = mx - mn;
    float s = cr / (cr == 0 ? 1 : mx), d = cr == 0 ? 1 : cr, h;
    if (mx == r)
        h = (g - b) / d;
    else if (mx == g)
        h = 2 + (b - r) / d;
    else
        h = 4 + (r - g) / d;
    h = fmodf(h / 6 + 1 + shift + 2, 1.0f);
    float v = mx, h6 = h * 6;
    int i = (int)floorf(h6);
    float f = h6 - (float)i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
    const float out[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
    memcpy(px, out[i % 6], sizeof out[0]);
}

static void test_hue_against_reference(void **state)
{
    (void)state;
    enum { N = 2000 };
    float x[3 * N];
    rand_img(x, 3 * N, 5);
    for (int i = 0; i < 20; i++) /* gray and saturated pixels too */
        x[i] = x[N + i] = x[2 * N + i] = (float)i / 19.0f;
    for (int i = 20; i < 40; i++) {
        x[i] = 1.0f;
        x[N + i] = 0.0f;
    }
    for (int k = 0; k < 9; k++) {
        float shift = -0.5f + 0.125f * (float)k;
        float y[3 * N];
        memcpy(y, x, sizeof x);
        ssl_adjust_hue(y, 3, 1, N, shift);
        for (int i = 0; i < N; i++) {
            float ref[3] = {x[i], x[N + i], x[2 * N + i]};
            hue_reference(ref, shift);
            assert_float_equal(y[i], ref[0], 2e-5);
            assert_float_equal(y[N + i], ref[1], 2e-5);
            assert_float_equal(y[2 * N + i], ref[2], 2e-5);
        }
    }
}

static void test_color_identity_and_extremes(void **state)
{
    (void)state;
    enum { H = 5, W = 6, N = 3 * H * W };
    float x[N], y[N];
    rand_img(x, N, 1);
    memcpy(y, x, sizeof x);
    ssl_adjust_brightness(y, 3, H, W, 1.0f);
    ssl_adjust_contrast(y, 3, H, W, 1.0f);
    ssl_adjust_saturation(y, 3, H, W, 1.0f);
    ssl_adjust_hue(y, 3, H, W, 0.0f);
    tu_assert_close(y, x, N, 1e-6, 0);

    /* Brightness scales and clamps. */
    memcpy(y, x, sizeof x);
    ssl_adjust_brightness(y, 3, H, W, 1.5f);
    for (int i = 0; i < N; i++)
        assert_float_equal(y[i], fminf(1.0f, 1.5f * x[i]), 1e-6);

    /* Contrast 0: every value becomes the grayscale mean. */
    double mean = 0;
    for (int i = 0; i < H * W; i++)
        mean += 0.2989 * x[i] + 0.587 * x[H * W + i] + 0.114 * x[2 * H * W + i];
    mean /= H * W;
    memcpy(y, x, sizeof x);
    ssl_adjust_contrast(y, 3, H, W, 0.0f);
    for (int i = 0; i < N; i++)
        assert_float_equal(y[i], mean, 1e-5);

    /* Saturation 0 equals grayscale. */
    float g[N];
    memcpy(y, x, sizeof x);
    memcpy(g, x, sizeof x);
    ssl_adjust_saturation(y, 3, H, W, 0.0f);
    ssl_grayscale(g, 3, H, W);
    tu_assert_close(y, g, N, 1e-6, 0);
    for (int i = 0; i < H * W; i++) {
        assert_float_equal(g[i], g[H * W + i], 0);
        assert_float_equal(g[i], g[2 * H * W + i], 0);
    }

    /* Hue: red shifted by 1/3 turns green, by 1/2 cyan; a full turn is the identity. */
    float px[3] = {1, 0, 0};
    ssl_adjust_hue(px, 3, 1, 1, 1.0f / 3.0f);
    assert_float_equal(px[0], 0, 1e-5);
    assert_float_equal(px[1], 1, 1e-5);
    assert_float_equal(px[2], 0, 1e-5);
    float cy[3] = {0.8f, 0.2f, 0.2f};
    ssl_adjust_hue(cy, 3, 1, 1, 0.5f);
    assert_float_equal(cy[0], 0.2f, 1e-5);
    assert_float_equal(cy[1], 0.8f, 1e-5);
    assert_float_equal(cy[2], 0.8f, 1e-5);
    memcpy(y, x, sizeof x);
    ssl_adjust_hue(y, 3, H, W, 0.5f);
    ssl_adjust_hue(y, 3, H, W, 0.5f);
    tu_assert_close(y, x, N, 1e-5, 0);

    /* 1-channel: saturation, hue and grayscale do nothing. */
    float m[H * W], m0[H * W];
    rand_img(m, H * W, 2);
    memcpy(m0, m, sizeof m);
    ssl_adjust_saturation(m, 1, H, W, 0.0f);
    ssl_adjust_hue(m, 1, H, W, 0.3f);
    ssl_grayscale(m, 1, H, W);
    tu_assert_close(m, m0, H * W, 0, 0);
}

/* A view with every op off, then the op under test switched on. */
static ssl_view_aug_t plain_view(int size)
{
    ssl_view_aug_t a;
    ssl_view_aug_eval(&a, size);
    a.normalize = 0;
    return a;
}

static void test_jitter_in_view(void **state)
{
    (void)state;
    enum { H = 8, W = 8 };
    uint8_t src[3 * H * W];
    for (int i = 0; i < 3 * H * W; i++)
        src[i] = 128;
    float base[3 * H * W], out[3 * H * W];
    ssl_view_aug_t a = plain_view(H);
    assert_int_equal(ssl_augment_view(&a, src, 3, H, W, 1, 0, 0, 0, base, NULL), SSL_OK);

    /* Jitter on with all strengths 0: identity. */
    a.jitter.p = 1.0f;
    a.jitter.brightness = a.jitter.contrast = a.jitter.saturation = a.jitter.hue = 0.0f;
    assert_int_equal(ssl_augment_view(&a, src, 3, H, W, 1, 0, 0, 0, out, NULL), SSL_OK);
    tu_assert_close(out, base, 3 * H * W, 0, 0);

    /* Brightness only: every factor within [0.6, 1.4], and both ends are reached. */
    a.jitter.brightness = 0.4f;
    float lo = 10, hi = 0;
    for (int s = 0; s < 400; s++) {
        assert_int_equal(ssl_augment_view(&a, src, 3, H, W, 1, 0, s, 0, out, NULL), SSL_OK);
        float f = out[0] / base[0];
        for (int i = 0; i < 3 * H * W; i++)
            assert_float_equal(out[i], out[0], 1e-6);
        if (f < lo) lo = f;
        if (f > hi) hi = f;
    }
    assert_true(lo >= 0.6f - 1e-5f && hi <= 1.4f + 1e-5f);
    assert_true(lo < 0.65f && hi > 1.35f);

    /* p: with p = 0.8 about 80% of the views change. */
    a.jitter.p = 0.8f;
    int changed = 0;
    for (int s = 0; s < 1000; s++) {
        assert_int_equal(ssl_augment_view(&a, src, 3, H, W, 1, 0, s, 0, out, NULL), SSL_OK);
        changed += fabsf(out[0] - base[0]) > 1e-6f;
    }
    assert_true(changed > 740 && changed < 860);

    /* 1-channel data with every colour op on: no error, only brightness/contrast act. */
    ssl_view_aug_t g = plain_view(H);
    g.jitter.p = 1.0f;
    g.jitter.brightness = g.jitter.contrast = 0.0f;
    g.jitter.saturation = 0.9f;
    g.jitter.hue = 0.5f;
    g.p_gray = 1.0f;
    ssl_view_aug_t g0 = plain_view(H);
    float o1[H * W], o0[H * W];
    assert_int_equal(ssl_augment_view(&g, src, 1, H, W, 1, 0, 3, 0, o1, NULL), SSL_OK);
    assert_int_equal(ssl_augment_view(&g0, src, 1, H, W, 1, 0, 3, 0, o0, NULL), SSL_OK);
    tu_assert_close(o1, o0, H * W, 0, 0);
}

static void test_blur(void **state)
{
    (void)state;
    float k[64];
    for (float sigma = 0.1f; sigma <= 2.0f; sigma += 0.3f) {
        int r = ssl_gaussian_kernel(sigma, 0, k, 64);
        assert_int_equal(r, (int)ceil(3.0 * sigma));
        double s = 0;
        for (int i = 0; i <= 2 * r; i++) {
            s += k[i];
            assert_float_equal(k[i], k[2 * r - i], 0);
            if (i > 0 && i <= r)
                assert_true(k[i] >= k[i - 1]);
        }
        assert_float_equal(s, 1.0, 1e-6);
    }
    assert_int_equal(ssl_gaussian_kernel(1.0f, 9, k, 64), 4); /* fixed kernel size */

    enum { H = 9, W = 11 };
    float x[3 * H * W];
    for (int i = 0; i < 3 * H * W; i++)
        x[i] = 0.42f;
    /* Reflect padding: a constant image stays constant, even with a kernel wider than it. */
    assert_int_equal(ssl_gaussian_blur(x, 3, H, W, 1.3f, 0, NULL), SSL_OK);
    for (int i = 0; i < 3 * H * W; i++)
        assert_float_equal(x[i], 0.42f, 1e-6);
    assert_int_equal(ssl_gaussian_blur(x, 3, H, W, 5.0f, 0, NULL), SSL_OK);
    for (int i = 0; i < 3 * H * W; i++)
        assert_float_equal(x[i], 0.42f, 1e-6);
    /* An impulse in the middle: mass kept, spread symmetric. */
    float d[H * W] = {0};
    d[IDX(0, 4, 5, H, W)] = 1.0f;
    assert_int_equal(ssl_gaussian_blur(d, 1, H, W, 0.8f, 0, NULL), SSL_OK);
    double mass = 0;
    for (int i = 0; i < H * W; i++)
        mass += d[i];
    assert_float_equal(mass, 1.0, 1e-5);
    assert_float_equal(d[IDX(0, 4, 4, H, W)], d[IDX(0, 4, 6, H, W)], 1e-7);
    assert_float_equal(d[IDX(0, 3, 5, H, W)], d[IDX(0, 5, 5, H, W)], 1e-7);
    assert_true(d[IDX(0, 4, 5, H, W)] > d[IDX(0, 4, 6, H, W)]);
    assert_int_equal(ssl_gaussian_blur(d, 1, H, W, 0.0f, 0, NULL), SSL_ERR_INVALID);
}

static void test_solarize_normalize(void **state)
{
    (void)state;
    float x[6] = {0.0f, 0.25f, 0.49f, 0.5f, 0.75f, 1.0f};
    const float want[6] = {0.0f, 0.25f, 0.49f, 0.5f, 0.25f, 0.0f};
    ssl_solarize(x, 6, 0.5f);
    tu_assert_close(x, want, 6, 1e-7, 0);

    float y[2 * 2] = {0.5f, 1.0f, 0.2f, 0.4f};
    const float mean[2] = {0.5f, 0.2f}, std[2] = {0.5f, 0.1f};
    ssl_normalize(y, 2, 1, 2, mean, std);
    const float wy[4] = {0.0f, 1.0f, 0.0f, 2.0f};
    tu_assert_close(y, wy, 4, 1e-6, 0);
}

static void test_view_determinism_and_shape(void **state)
{
    (void)state;
    enum { C = 3, H = 20, W = 24, OH = 12, OW = 10 };
    uint8_t src[C * H * W];
    for (int i = 0; i < C * H * W; i++)
        src[i] = (uint8_t)((i * 37) % 251);
    ssl_view_aug_t a;
    ssl_view_aug_default(&a, OH);
    a.out_w = OW;
    a.p_solarize = 0.3f;
    assert_int_equal(ssl_view_aug_validate(&a), SSL_OK);
    float o1[C * OH * OW], o2[C * OH * OW], o3[C * OH * OW];
    ssl_aug_ws_t *ws = ssl_aug_ws_create();
    assert_int_equal(ssl_augment_view(&a, src, C, H, W, 5, 2, 17, 0, o1, ws), SSL_OK);
    assert_int_equal(ssl_augment_view(&a, src, C, H, W, 5, 2, 17, 0, o2, NULL), SSL_OK);
    assert_memory_equal(o1, o2, sizeof o1);
    assert_int_equal(ssl_augment_view(&a, src, C, H, W, 5, 2, 17, 1, o3, ws), SSL_OK);
    assert_memory_not_equal(o1, o3, sizeof o1); /* another view */
    assert_int_equal(ssl_augment_view(&a, src, C, H, W, 5, 3, 17, 0, o3, ws), SSL_OK);
    assert_memory_not_equal(o1, o3, sizeof o1); /* another epoch */
    for (int i = 0; i < C * OH * OW; i++)
        assert_true(isfinite(o1[i]) && o1[i] > -3.0f && o1[i] < 3.0f);

    /* Eval view: plain resize + normalise. */
    ssl_view_aug_t e;
    ssl_view_aug_eval(&e, 10);
    uint8_t cst[C * 30 * 30];
    memset(cst, 255, sizeof cst);
    float oe[C * 10 * 10];
    assert_int_equal(ssl_augment_view(&e, cst, C, 30, 30, 1, 0, 0, 0, oe, ws), SSL_OK);
    for (int c = 0; c < C; c++)
        assert_float_equal(oe[c * 100 + 55], (1.0f - e.mean[c]) / e.std[c], 1e-5);
    ssl_aug_ws_free(ws);
}

static void test_validate(void **state)
{
    (void)state;
    ssl_view_aug_t a;
    ssl_view_aug_default(&a, 32);
    a.p_flip = 1.5f;
    assert_int_equal(ssl_view_aug_validate(&a), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "p_flip"));
    ssl_view_aug_default(&a, 32);
    a.crop.scale[0] = 0.9f;
    a.crop.scale[1] = 0.5f;
    assert_int_equal(ssl_view_aug_validate(&a), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "crop.scale"));
    ssl_view_aug_default(&a, 32);
    a.blur.kernel_size = 4;
    assert_int_equal(ssl_view_aug_validate(&a), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "blur.kernel_size"));
    ssl_view_aug_default(&a, 32);
    a.jitter.hue = 0.7f;
    assert_int_equal(ssl_view_aug_validate(&a), SSL_ERR_CONFIG);

    ssl_views_t v;
    const float gs[2] = {0.4f, 1.0f}, ls[2] = {0.05f, 0.4f};
    assert_int_equal(ssl_views_multicrop(&v, 2, 32, gs, 6, 16, ls), SSL_OK);
    assert_int_equal(v.n_views, 8);
    assert_int_equal(v.view[0].out_h, 32);
    assert_int_equal(v.view[7].out_w, 16);
    assert_float_equal(v.view[0].blur.p, 1.0f, 0);
    assert_float_equal(v.view[1].p_solarize, 0.2f, 0);
    assert_float_equal(v.view[5].crop.scale[1], 0.4f, 0);
    for (int i = 0; i < v.n_views; i++)
        assert_int_equal(ssl_view_aug_validate(&v.view[i]), SSL_OK);
    assert_int_equal(ssl_views_multicrop(&v, 10, 32, gs, 10, 16, ls), SSL_ERR_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crop_box_ranges),
        cmocka_unit_test(test_crop_box_fallback),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_flip),
        cmocka_unit_test(test_color_identity_and_extremes),
        cmocka_unit_test(test_hue_against_reference),
        cmocka_unit_test(test_jitter_in_view),
        cmocka_unit_test(test_blur),
        cmocka_unit_test(test_solarize_normalize),
        cmocka_unit_test(test_view_determinism_and_shape),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
