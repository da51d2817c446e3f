/* Branch-free float exp and erf that the compiler vectorises (libm's expf/erff are scalar calls
 * without -ffast-math). Both are written from the math: range reduction plus polynomials fitted
 * here with mpmath's Chebyshev fit (mpmath.chebyfit, 40 digits), evaluated with fmaf.
 * Accuracy, checked against double libm over dense sweeps in tests/test_ops_elementwise.c:
 *   ssl__expf_neg  x in [-87, 0]: relative error < 3e-7 (exp(x) for x < -87 returns exp(-87))
 *   ssl__erff      all finite x:  absolute error < 2e-7 (exact +-1 beyond |x| = 4) */
#ifndef SSL_FAST_MATH_H
#define SSL_FAST_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for x <= 0: x = k ln2 + r with |r| <= ln2 / 2, exp(r) by a degree-6 polynomial
 * (fit error 2e-9), 2^k put into the exponent bits. */
static inline float ssl__expf_neg(float x)
{
    x = x < -87.0f ? -87.0f : x; /* keeps 2^k a normal number; NaN passes through */
    /* round to nearest with the 1.5 * 2^23 trick: exact for |x log2 e| < 2^22 */
    const float shift = 12582912.0f;
    float kf = (x * 1.44269504088896341f + shift) - shift;
    float r = fmaf(kf, -0.693145751953125f, x); /* ln2 split: the high part has 12 bits */
    r = fmaf(kf, -1.42860682030941723e-6f, r);
    float p = 0.001394110843f;
    p = fmaf(p, r, 0.008375126398f);
    p = fmaf(p, r, 0.0416663529f);
    p = fmaf(p, r, 0.1666641551f);
    p = fmaf(p, r, 0.5000000047f);
    p = fmaf(p, r, 1.000000038f);
    p = fmaf(p, r, 1.0f);
    int32_t bits = ((int32_t)kf + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
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
    float large = 1.0f - ssl__expf_neg(-s) * g;
    float r = a < 1.0f ? small : large;
    return copysignf(r, x);
}

#endif
