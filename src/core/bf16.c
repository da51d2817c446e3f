/* bf16 GEMM through oneDNN (train.precision "bf16", docs/precision.md): both operands are
 * rounded to bf16 (round to nearest even) and multiplied by oneDNN's matmul primitive, which
 * sums the products in fp32 and writes (or adds onto) an fp32 C. One primitive per shape is
 * created on first use and kept in a table; each thread converts its operands into a buffer of
 * its own and passes oneDNN a scratchpad of its own, so conv's per-thread GEMMs run
 * concurrently. Without oneDNN (SSL_HAVE_DNNL unset) bf16 is refused with a message saying so
 * and nothing here runs. */
#include "core_internal.h"

#include <stdio.h>
#include <string.h>

#if SSL_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#endif

/* Round to nearest even, as oneDNN's own conversion does; NaN stays NaN (quiet). */
static inline uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (u & 0x7FFFFFFFu) > 0x7F800000u ? (uint16_t)((u >> 16) | 0x40u) : (uint16_t)r;
}

static inline float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

void ssl__bf16_round(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = bf16_to_f32(f32_to_bf16(x[i]));
}

int ssl_precision_supported(ssl_precision_t precision)
{
    if (precision == SSL_PRECISION_FP32)
        return SSL_OK;
    if (precision == SSL_PRECISION_BF16)
        return ssl__bf16_check();
    return ssl_set_error(SSL_ERR_INVALID, "ssl_precision_supported: unknown precision %d",
                         (int)precision);
}

const char *ssl_precision_name(ssl_precision_t precision)
{
    if (precision == SSL_PRECISION_FP32)
        return "fp32";
    if (precision == SSL_PRECISION_BF16)
        return "bf16";
    ssl_set_error(SSL_ERR_INVALID, "ssl_precision_name: unknown precision %d", (int)precision);
    return NULL;
}

#if SSL_HAVE_DNNL

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t g_engine;
static int g_status = SSL_ERR_UNSUPPORTED; /* of the CPU check, set once */
static char g_reason[200];

static void init_once(void)
{
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) {
        snprintf(g_reason, sizeof g_reason, "oneDNN could not create its CPU engine");
        return;
    }
    /* bf16 dot products in hardware: AVX512-BF16 (avx512_core_bf16) or AMX tiles
     * (avx512_core_amx, a superset). oneDNN would emulate bf16 on plain AVX-512, slower than
     * fp32: refused. ONEDNN_MAX_CPU_ISA lowers what oneDNN sees (the tests use it). */
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if (((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) !=
        (unsigned)dnnl_cpu_isa_avx512_core_bf16) {
        snprintf(g_reason, sizeof g_reason,
                 "this CPU has neither AVX512-BF16 nor AMX (oneDNN's instruction set: 0x%x)",
                 (unsigned)isa);
        return;
    }
    g_status = SSL_OK;
}

int ssl__bf16_check(void)
{
    pthread_once(&g_once, init_once);
    if (g_status != SSL_OK)
        return ssl_set_error(g_status, "bf16 precision: %s", g_reason);
    return SSL_OK;
}

int ssl__bf16_amx(void)
{
    pthread_once(&g_once, init_once);
    return g_status == SSL_OK &&
           ((unsigned)dnnl_get_effective_cpu_isa() & (unsigned)dnnl_cpu_isa_avx512_core_amx) ==
               (unsigned)dnnl_cpu_isa_avx512_core_amx;
}

dnnl_engine_t ssl__dnnl_engine(void);
dnnl_stream_t ssl__dnnl_stream(void);
dnnl_primitive_attr_t ssl__dnnl_attr(int sum, int user_scratch);

/* Attributes: a sum post-op (dst += result) with sum, the caller's scratchpad with
 * user_scratch. NULL when oneDNN refuses (destroy with dnnl_primitive_attr_destroy). */
dnnl_primitive_attr_t ssl__dnnl_attr(int sum, int user_scratch)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    int ok = dnnl_primitive_attr_create(&attr) == dnnl_success;
    if (ok && user_scratch)
        ok = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) ==
             dnnl_success;
    if (ok && sum)
        ok = dnnl_post_ops_create(&po) == dnnl_success &&
             dnnl_post_ops_append_sum(po, 1.0f) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    if (po)
        dnnl_post_ops_destroy(po);
    if (!ok && attr) {
        dnnl_primitive_attr_destroy(attr);
        attr = NULL;
    }
    return attr;
}

dnnl_engine_t ssl__dnnl_engine(void)
{
    pthread_once(&g_once, init_once);
    return g_engine;
}

/* ---------------------------------------------------------------- primitives per shape */

typedef struct mm_key {
    int64_t m, n, k, ldc;
    int ta, tb, acc, bias;
} mm_key_t;

typedef struct mm_entry {
    mm_key_t key;
    dnnl_primitive_t prim;
    size_t scratch; /* bytes of the user scratchpad it needs */
    int used;
} mm_entry_t;

#define MM_SLOTS 1024 /* a ViT's or ResNet's step uses a few dozen shapes */
static mm_entry_t g_table[MM_SLOTS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t key_hash(const mm_key_t *k)
{
    uint64_t h = 1469598103934665603ull;
    const int64_t v[8] = {k->m, k->n, k->k, k->ldc, k->ta, k->tb, k->acc, k->bias};
    for (int i = 0; i < 8; i++)
        h = (h ^ (uint64_t)v[i]) * 1099511628211ull;
    return h;
}

static int key_eq(const mm_key_t *a, const mm_key_t *b)
{
    return a->m == b->m && a->n == b->n && a->k == b->k && a->ldc == b->ldc && a->ta == b->ta &&
           a->tb == b->tb && a->acc == b->acc && a->bias == b->bias;
}

/* A (M, K) and B (K, N) are dense bf16 copies of the stored operands: op(A) = A^T reads the
 * stored (K, M) matrix, described to oneDNN by strides. */
static int mm_create(const mm_key_t *k, dnnl_primitive_t *prim, size_t *scratch)
{
    dnnl_memory_desc_t a, b, c, bias;
    dnnl_dims_t ad = {k->m, k->k}, bd = {k->k, k->n}, cd = {k->m, k->n}, biasd = {1, k->n};
    dnnl_dims_t as = {k->ta ? 1 : k->k, k->ta ? k->m : 1};
    dnnl_dims_t bs = {k->tb ? 1 : k->n, k->tb ? k->k : 1};
    dnnl_dims_t cs = {k->ldc, 1};
    /* C += A B (accumulate): the sum post-op reads C before writing it */
    dnnl_primitive_attr_t attr = ssl__dnnl_attr(k->acc, 1);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_matmul_desc_t desc;
    int ok = attr && dnnl_memory_desc_init_by_strides(&a, 2, ad, dnnl_bf16, as) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&b, 2, bd, dnnl_bf16, bs) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&c, 2, cd, dnnl_f32, cs) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&bias, 2, biasd, dnnl_f32, dnnl_ab) == dnnl_success &&
             dnnl_matmul_desc_init(&desc, &a, &b, k->bias ? &bias : NULL, &c) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &desc, attr, g_engine, NULL) == dnnl_success;
    if (ok) {
        const dnnl_memory_desc_t *sp =
            dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        *scratch = sp ? dnnl_memory_desc_get_size(sp) : 0;
        ok = dnnl_primitive_create(prim, pd) == dnnl_success;
    }
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    if (!ok)
        return ssl_set_error(SSL_ERR_UNSUPPORTED,
                             "bf16 gemm: oneDNN has no matmul for M=%lld N=%lld K=%lld%s%s",
                             (long long)k->m, (long long)k->n, (long long)k->k, k->ta ? " A^T" : "",
                             k->tb ? " B^T" : "");
    return SSL_OK;
}

/* The cached primitive of key k (created on first use). */
static int mm_get(const mm_key_t *k, dnnl_primitive_t *prim, size_t *scratch)
{
    uint64_t h = key_hash(k);
    int st = SSL_OK;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < MM_SLOTS; i++) {
        mm_entry_t *e = &g_table[(h + (uint64_t)i) % MM_SLOTS];
        if (e->used && key_eq(&e->key, k)) {
            *prim = e->prim;
            *scratch = e->scratch;
            goto out;
        }
        if (!e->used) {
            st = mm_create(k, &e->prim, &e->scratch);
            if (st == SSL_OK) {
                e->key = *k;
                e->used = 1;
                *prim = e->prim;
                *scratch = e->scratch;
            }
            goto out;
        }
    }
    st = ssl_set_error(SSL_ERR_NOMEM, "bf16 gemm: more than %d GEMM shapes", MM_SLOTS);
out:
    pthread_mutex_unlock(&g_lock);
    return st;
}

/* ---------------------------------------------------------------- per-thread buffers */

typedef struct tls_buf {
    void *p;
    size_t cap;
    dnnl_stream_t stream;
} tls_buf_t;

static _Thread_local tls_buf_t t_buf;

/* the calling thread's stream (NULL when oneDNN cannot make one) */
dnnl_stream_t ssl__dnnl_stream(void)
{
    if (!t_buf.stream && dnnl_stream_create(&t_buf.stream, ssl__dnnl_engine(),
                                            dnnl_stream_default_flags) != dnnl_success)
        t_buf.stream = NULL;
    return t_buf.stream;
}

static void *tls_reserve(size_t bytes)
{
    if (bytes > t_buf.cap) {
        free(t_buf.p);
        t_buf.cap = (bytes + 4095) / 4096 * 4096;
        t_buf.p = aligned_alloc(64, t_buf.cap);
        if (!t_buf.p) {
            t_buf.cap = 0;
            return NULL;
        }
    }
    return t_buf.p;
}

/* rows x cols of x (leading dimension ld) into dense bf16 */
static void to_bf16(const float *x, int64_t rows, int64_t cols, int64_t ld, uint16_t *y)
{
    /* inside a conv's per-thread region this runs on the calling thread alone */
#pragma omp parallel for schedule(static) if (rows * cols > SSL_OMP_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        uint16_t *yr = y + r * cols;
        for (int64_t j = 0; j < cols; j++)
            yr[j] = f32_to_bf16(xr[j]);
    }
}

static size_t round64(size_t b)
{
    return (b + 63) / 64 * 64;
}

static int bf16_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                     const float *b, int64_t ldb, const float *bias, int accumulate, float *c,
                     int64_t ldc)
{
    if (m == 0 || n == 0)
        return SSL_OK;
    int st = ssl__bf16_check();
    if (st != SSL_OK)
        return st;
    if (k == 0) { /* nothing to add; a store of zeros */
        if (!accumulate)
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++)
                    c[i * ldc + j] = bias ? bias[j] : 0.0f;
        return SSL_OK;
    }
    mm_key_t key = {m, n, k, ldc, ta != 0, tb != 0, accumulate != 0, bias != NULL};
    dnnl_primitive_t prim;
    size_t scratch;
    if ((st = mm_get(&key, &prim, &scratch)) != SSL_OK)
        return st;
    size_t abytes = round64((size_t)(m * k) * 2), bbytes = round64((size_t)(k * n) * 2);
    char *buf = tls_reserve(abytes + bbytes + scratch);
    if (!buf)
        return ssl_set_error(SSL_ERR_NOMEM, "bf16 gemm: out of memory (%zu bytes)",
                             abytes + bbytes + scratch);
    if (!ssl__dnnl_stream())
        return ssl_set_error(SSL_ERR_UNSUPPORTED, "bf16 gemm: oneDNN could not create a stream");
    uint16_t *ab = (uint16_t *)buf, *bb = (uint16_t *)(buf + abytes);
    /* the stored matrices as they are: A (M, K) or (K, M), B (K, N) or (N, K) */
    to_bf16(a, ta ? k : m, ta ? m : k, lda, ab);
    to_bf16(b, tb ? n : k, tb ? k : n, ldb, bb);
    const_dnnl_primitive_desc_t pd;
    if (dnnl_primitive_get_primitive_desc(prim, &pd) != dnnl_success)
        return ssl_set_error(SSL_ERR_UNSUPPORTED, "bf16 gemm: oneDNN primitive without desc");
    const dnnl_memory_desc_t *amd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *bmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *cmd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    const dnnl_memory_desc_t *biasmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1);
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL, ms = NULL, mbias = NULL;
    int ok = dnnl_memory_create(&ma, amd, g_engine, ab) == dnnl_success &&
             dnnl_memory_create(&mb, bmd, g_engine, bb) == dnnl_success &&
             dnnl_memory_create(&mc, cmd, g_engine, c) == dnnl_success &&
             (!scratch ||
              dnnl_memory_create(&ms, smd, g_engine, buf + abytes + bbytes) == dnnl_success) &&
             (!bias || dnnl_memory_create(&mbias, biasmd, g_engine, (void *)bias) == dnnl_success);
    if (ok) {
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
        int na = 3;
        if (scratch)
            args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, ms};
        if (bias)
            args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mbias};
        ok = dnnl_primitive_execute(prim, t_buf.stream, na, args) == dnnl_success &&
             dnnl_stream_wait(t_buf.stream) == dnnl_success;
    }
    dnnl_memory_destroy(ma);
    dnnl_memory_destroy(mb);
    dnnl_memory_destroy(mc);
    dnnl_memory_destroy(ms);
    dnnl_memory_destroy(mbias);
    if (!ok)
        return ssl_set_error(SSL_ERR_UNSUPPORTED,
                             "bf16 gemm: oneDNN failed on M=%lld N=%lld "
                             "K=%lld",
                             (long long)m, (long long)n, (long long)k);
    return SSL_OK;
}

int ssl__bf16_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, int accumulate, float *c, int64_t ldc)
{
    return bf16_gemm(ta, tb, m, n, k, a, lda, b, ldb, NULL, accumulate, c, ldc);
}

int ssl__bf16_gemm_bias(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a,
                        int64_t lda, const float *b, int64_t ldb, const float *bias, float *c,
                        int64_t ldc)
{
    return bf16_gemm(ta, tb, m, n, k, a, lda, b, ldb, bias, 0, c, ldc);
}

const char *ssl__bf16_gemm_impl(int ta, int tb, int64_t m, int64_t n, int64_t k)
{
    if (ssl__bf16_check() != SSL_OK)
        return "none";
    mm_key_t key = {m, n, k, n, ta != 0, tb != 0, 0, 0};
    dnnl_primitive_t prim;
    size_t scratch;
    const_dnnl_primitive_desc_t pd;
    const char *impl = "none";
    if (mm_get(&key, &prim, &scratch) == SSL_OK &&
        dnnl_primitive_get_primitive_desc(prim, &pd) == dnnl_success)
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    return impl;
}

#else /* no oneDNN */

int ssl__bf16_check(void)
{
    return ssl_set_error(SSL_ERR_UNSUPPORTED,
                         "bf16 precision: this libssl was built without oneDNN (install "
                         "libdnnl-dev and rebuild; CMake option SSL_WITH_DNNL)");
}

int ssl__bf16_amx(void)
{
    return 0;
}

int ssl__bf16_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, int accumulate, float *c, int64_t ldc)
{
    (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb;
    (void)accumulate, (void)c, (void)ldc;
    return ssl__bf16_check();
}

int ssl__bf16_gemm_bias(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a,
                        int64_t lda, const float *b, int64_t ldb, const float *bias, float *c,
                        int64_t ldc)
{
    (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)a, (void)lda, (void)b, (void)ldb;
    (void)bias, (void)c, (void)ldc;
    return ssl__bf16_check();
}

const char *ssl__bf16_gemm_impl(int ta, int tb, int64_t m, int64_t n, int64_t k)
{
    (void)ta, (void)tb, (void)m, (void)n, (void)k;
    return "none";
}

#endif
