/* GEMM through OpenBLAS, and the plain reference the tests hold it to. */
#include "core_internal.h"

#include <stdatomic.h>

#include <cblas.h>

static _Atomic uint64_t g_gemm_flops, g_model_flops;

uint64_t ssl_gemm_flops(void) { return atomic_load_explicit(&g_gemm_flops, memory_order_relaxed); }
uint64_t ssl_model_flops(void)
{
    return atomic_load_explicit(&g_model_flops, memory_order_relaxed);
}

void ssl__model_flops_add(uint64_t flops)
{
    atomic_fetch_add_explicit(&g_model_flops, flops, memory_order_relaxed);
}

void ssl__sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0)
        return;
    ssl__fixed_teams(); /* callers outside an op (evaluation) too */
    ssl__model_flops_add((uint64_t)(2 * m * n * k));
    ssl__sgemm_inner(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void ssl__sgemm_inner(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                      int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0)
        return;
    atomic_fetch_add_explicit(&g_gemm_flops, (uint64_t)(2 * m * n * k), memory_order_relaxed);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta,
                c, (blasint)ldc);
}

_Atomic uint64_t ssl__bf16_fallbacks;

static int bf16_gemm_counted(const ssl_ctx_t *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k,
                             float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                             float beta, float *c, int64_t ldc)
{
    if (!ssl__ctx_bf16(ctx) || alpha != 1.0f || (beta != 0.0f && beta != 1.0f))
        return 0;
    if (ssl__bf16_gemm(ta, tb, m, n, k, a, lda, b, ldb, beta == 1.0f, c, ldc) != SSL_OK) {
        atomic_fetch_add_explicit(&ssl__bf16_fallbacks, 1, memory_order_relaxed);
        return 0;
    }
    atomic_fetch_add_explicit(&g_gemm_flops, (uint64_t)(2 * m * n * k), memory_order_relaxed);
    return 1;
}

int ssl__gemm_bias_bf16(const ssl_ctx_t *ctx, int64_t m, int64_t n, int64_t k, const float *a,
                        const float *b, const float *bias, float *c)
{
    if (!ssl__ctx_bf16(ctx) || m == 0 || n == 0)
        return 0;
    ssl__fixed_teams();
    if (ssl__bf16_gemm_bias(0, 1, m, n, k, a, k, b, k, bias, c, n) != SSL_OK) {
        atomic_fetch_add_explicit(&ssl__bf16_fallbacks, 1, memory_order_relaxed);
        return 0;
    }
    ssl__model_flops_add((uint64_t)(2 * m * n * k));
    atomic_fetch_add_explicit(&g_gemm_flops, (uint64_t)(2 * m * n * k), memory_order_relaxed);
    return 1;
}

void ssl__gemm(const ssl_ctx_t *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc)
{
    if (m == 0 || n == 0)
        return;
    ssl__fixed_teams();
    ssl__model_flops_add((uint64_t)(2 * m * n * k));
    if (!bf16_gemm_counted(ctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
        ssl__sgemm_inner(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void ssl__gemm_inner(const ssl_ctx_t *ctx, int ta, int tb, int64_t m, int64_t n, int64_t k,
                     float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                     float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0)
        return;
    if (!bf16_gemm_counted(ctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
        ssl__sgemm_inner(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void ssl_ref_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) {
                double av = ta ? a[p * lda + i] : a[i * lda + p];
                double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                s += av * bv;
            }
            c[i * ldc + j] = (float)(alpha * s + (beta == 0.0f ? 0.0 : beta * c[i * ldc + j]));
        }
}
