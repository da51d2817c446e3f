/* Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11). Every value is a pure
 * function of (seed, stream, index), so results do not depend on threads or draw order. */
#include "core_internal.h"

#include <math.h>

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void ssl_philox4x32(uint64_t seed, uint64_t stream, uint64_t index, uint32_t out[4])
{
    if (SSL__IS_NULL(out, __func__))
        return;
    uint32_t c0 = (uint32_t)index, c1 = (uint32_t)(index >> 32);
    uint32_t c2 = (uint32_t)stream, c3 = (uint32_t)(stream >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(0xD2511F53u, c0, &hi0, &lo0);
        mulhilo(0xCD9E8D57u, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

static inline uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t ssl_rng_stream(uint64_t a, uint64_t b, uint64_t c)
{
    return splitmix64(splitmix64(splitmix64(a) ^ b) ^ c);
}

/* Word `index` of the stream: block index/4, lane index%4. */
uint32_t ssl_rng_u32(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t w[4];
    ssl_philox4x32(seed, stream, index >> 2, w);
    return w[index & 3];
}

static inline float u32_to_unit(uint32_t u) { return (float)(u >> 8) * (1.0f / 16777216.0f); }

float ssl_rng_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    return u32_to_unit(ssl_rng_u32(seed, stream, index));
}

/* Normal `index` uses lanes 2*(index%2) and 2*(index%2)+1 of block index/2 (Box-Muller). */
static float normal_from(uint32_t a, uint32_t b)
{
    double u1 = ((double)(a >> 8) + 1.0) * (1.0 / 16777216.0); /* (0, 1] */
    double u2 = (double)(b >> 8) * (1.0 / 16777216.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

float ssl_rng_normal(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t w[4];
    ssl_philox4x32(seed, stream, index >> 1, w);
    int l = (int)(index & 1) * 2;
    return normal_from(w[l], w[l + 1]);
}

void ssl_rng_fill_uniform(float *dst, size_t n, float lo, float hi, uint64_t seed,
                          uint64_t stream, uint64_t offset)
{
    if (n > 0 && SSL__IS_NULL(dst, __func__))
        return;
    float span = hi - lo;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (size_t i = 0; i < n; i++)
        dst[i] = lo + span * ssl_rng_uniform(seed, stream, offset + i);
}

void ssl_rng_fill_normal(float *dst, size_t n, float mean, float std, uint64_t seed,
                         uint64_t stream, uint64_t offset)
{
    if (n > 0 && SSL__IS_NULL(dst, __func__))
        return;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (size_t i = 0; i < n; i++)
        dst[i] = mean + std * ssl_rng_normal(seed, stream, offset + i);
}

void ssl_rng_fill_trunc_normal(float *dst, size_t n, float mean, float std, float a, float b,
                               uint64_t seed, uint64_t stream, uint64_t offset)
{
    if (n > 0 && SSL__IS_NULL(dst, __func__))
        return;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        float v = mean + std * ssl_rng_normal(seed, stream, offset + i);
        /* Resample from independent streams until inside [a, b]; after 64 tries clamp. */
        for (uint64_t t = 1; (v < a || v > b) && t <= 64; t++)
            v = mean + std * ssl_rng_normal(seed, ssl_rng_stream(stream, t, 0x74726e63ull),
                                            offset + i);
        dst[i] = v < a ? a : (v > b ? b : v);
    }
}
