/* Branch-free float exp, erf, tanh and sigmoid that the compiler vectorises (libm's expf, erff
 * and tanhf are scalar calls without -ffast-math). All are written from the math: range
 * reduction plus polynomials fitted here with mpmath's Chebyshev fit (mpmath.chebyfit, 40
 * digits) for erf, and an iteratively reweighted least-squares fit of the relative error
 * (NumPy, float64) for tanh.
 * Accuracy, checked against libm over dense sweeps in tests/test_ops_elementwise.c:
 *   ssl__expf     relative error < 3e-7 where the result is a normal float
 *   ssl__erff     absolute error < 2e-7 for all finite x (exactly +-1 beyond |x| = 4)
 *   ssl__tanhf    relative error < 2.5e-7 for all finite x (+-1 beyond |x| = 10; libm: 1.6e-7)
 *   ssl__sigmoidf relative error < 2.5e-7 where the result is a normal float */
#ifndef SSL_FAST_MATH_H
#define SSL_FAST_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) to about 1 ulp, written so loops over it vectorise (libm's expf does not without
 * -ffast-math): x = k ln2 + r with |r| <= ln2/2, a degree-7 polynomial for e^r, 2^k put in
 * the exponent bits. Exact for x < ln(FLT_MIN) (returns 0), NaN and +-inf; x in (88.37, 88.72]
 * is clamped, which the callers never reach (they exponentiate x - max <= 0). */
static inline float ssl__expf(float x)
{
    const float lo = -87.33654475f, hi = 88.37f;
    float xc = x < lo ? lo : x;
    xc = xc > hi ? hi : xc;
    /* Adding 1.5 * 2^23 rounds to an integer and leaves it in the low mantissa bits. */
    float kf = xc * 1.44269504088896341f + 12582912.0f;
    uint32_t kb;
    memcpy(&kb, &kf, sizeof kb);
    kf -= 12582912.0f;
    float r = xc - kf * 0.693359375f; /* ln2 split in two (Cody-Waite): the first is exact */
    r = r + kf * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    uint32_t eb = (kb - 0x4B400000u + 127u) << 23;
    float s;
    memcpy(&s, &eb, sizeof s);
    float y = p * s;
    y = x < lo ? 0.0f : y;
    return x > 88.72283906f ? INFINITY : y;
}

/* erf(x). |x| < 1: x P(x^2), P of degree 6 (fit error 1.2e-9); 1 <= |x| <= 4:
 * 1 - exp(-x^2) G(|x| - 2.5), G of degree 10 fitted to erfc(a) exp(a^2) (fit error 5e-8);
 * beyond 4 erf rounds to +-1 in float. Both branches are computed and one is selected, so the
 * loop calling it has no branches. */
static inline float ssl__erff(float x)
{
    float a = fabsf(x);
    a = a > 4.0f ? 4.0f : a;
    float s = a * a;
    float p = 7.875875063e-5f;
    p = fmaf(p, s, -0.0008016864287f);
    p = fmaf(p, s, 0.005189087423f);
    p = fmaf(p, s, -0.02685421201f);
    p = fmaf(p, s, 0.1128359472f);
    p = fmaf(p, s, -0.3761262667f);
    p = fmaf(p, s, 1.128379166f);
    float small = a * p;
    float u = a - 2.5f;
    float g = 1.611890749e-6f;
    g = fmaf(g, u, -6.377862276e-6f);
    g = fmaf(g, u, 1.468955683e-5f);
    g = fmaf(g, u, -5.362729453e-5f);
    g = fmaf(g, u, 0.0002123135674f);
    g = fmaf(g, u, -0.0007389278863f);
    g = fmaf(g, u, 0.00246650857f);
    g = fmaf(g, u, -0.007999388865f);
    g = fmaf(g, u, 0.02493805689f);
    g = fmaf(g, u, -0.0743475937f);
    g = fmaf(g, u, 0.2108063641f);
    float large = 1.0f - ssl__expf(-s) * g;
    float r = a < 1.0f ? small : large;
    return copysignf(r, x);
}

/* tanh(x). |x| < 0.625: x + x^3 P(x^2), P of degree 5 (relative error 1.3 ulp in float);
 * beyond: 1 - 2 / (e^{2|x|} + 1), no cancellation there (tanh >= 0.55), |x| clamped to 10
 * (tanh(10) rounds to 1). Both branches are computed and one selected; NaN stays NaN. */
static inline float ssl__tanhf(float x)
{
    float a = fabsf(x);
    float s = a * a;
    float p = 0.0021740517f;
    p = fmaf(p, s, -0.0082108648f);
    p = fmaf(p, s, 0.021713993f);
    p = fmaf(p, s, -0.053949133f);
    p = fmaf(p, s, 0.13333224f);
    p = fmaf(p, s, -0.33333331f);
    float small = fmaf(a * s, p, a);
    float e = ssl__expf(2.0f * (a > 10.0f ? 10.0f : a));
    float large = 1.0f - 2.0f / (e + 1.0f);
    float r = a < 0.625f ? small : large;
    return copysignf(r, x);
}

/* 1 / (1 + e^-x): e^-x overflows to +inf below x = -88.7, giving 0 (the float result there is
 * below 4e-39 anyway); no NaN for any finite x. */
static inline float ssl__sigmoidf(float x)
{
    return 1.0f / (1.0f + ssl__expf(-x));
}

#endif
