/* Status codes, the thread's last error message, the log callback, version and threads. */
#include "core_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#include <cblas.h>

#ifndef SSL_VERSION_STRING
#define SSL_VERSION_STRING "0.0.0"
#endif

static _Thread_local char tl_msg[1024];
static _Thread_local int tl_status;

const char *ssl_err_name(int status)
{
    switch (status) {
    case SSL_OK: return "SSL_OK";
    case SSL_ERR_INVALID: return "SSL_ERR_INVALID";
    case SSL_ERR_SHAPE: return "SSL_ERR_SHAPE";
    case SSL_ERR_NOMEM: return "SSL_ERR_NOMEM";
    case SSL_ERR_IO: return "SSL_ERR_IO";
    case SSL_ERR_FORMAT: return "SSL_ERR_FORMAT";
    case SSL_ERR_CONFIG: return "SSL_ERR_CONFIG";
    case SSL_ERR_NONFINITE: return "SSL_ERR_NONFINITE";
    case SSL_ERR_STATE: return "SSL_ERR_STATE";
    case SSL_ERR_UNSUPPORTED: return "SSL_ERR_UNSUPPORTED";
    case SSL_ERR_INTERRUPTED: return "SSL_ERR_INTERRUPTED";
    default: return "SSL_ERR_UNKNOWN";
    }
}

const char *ssl_strerror(int status)
{
    switch (status) {
    case SSL_OK: return "success";
    case SSL_ERR_INVALID: return "invalid argument";
    case SSL_ERR_SHAPE: return "tensor shapes do not fit";
    case SSL_ERR_NOMEM: return "out of memory";
    case SSL_ERR_IO: return "i/o error";
    case SSL_ERR_FORMAT: return "malformed file";
    case SSL_ERR_CONFIG: return "invalid configuration";
    case SSL_ERR_NONFINITE: return "non-finite value";
    case SSL_ERR_STATE: return "invalid state";
    case SSL_ERR_UNSUPPORTED: return "unsupported";
    case SSL_ERR_INTERRUPTED: return "interrupted";
    default: return "unknown error";
    }
}

const char *ssl_last_error(void) { return tl_msg; }
int ssl_last_status(void) { return tl_status; }

void ssl_clear_error(void)
{
    tl_msg[0] = '\0';
    tl_status = SSL_OK;
}

int ssl_set_error(int status, const char *fmt, ...)
{
    if (!fmt) { /* a caller's mistake: keep the status, say what is missing */
        snprintf(tl_msg, sizeof tl_msg, "%s (ssl_set_error without a message)",
                 ssl_strerror(status));
        tl_status = status;
        return status;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
    va_end(ap);
    tl_status = status;
    return status;
}

/* ---------------------------------------------------------------- logging */

static ssl_log_fn g_log_fn;
static void *g_log_user;
static int g_log_min = SSL_LOG_INFO;

void ssl_set_log_callback(ssl_log_fn fn, void *user, int min_level)
{
    g_log_fn = fn;
    g_log_user = user;
    g_log_min = min_level;
}

void ssl_logf(int level, const char *fmt, ...)
{
    if (!g_log_fn || level < g_log_min || !fmt)
        return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log_fn(level, buf, g_log_user);
}

/* ---------------------------------------------------------------- version, threads */

const char *ssl_version(void) { return SSL_VERSION_STRING; }

static int g_threads;

void ssl_set_num_threads(int n)
{
    if (n <= 0) {
#ifdef _OPENMP
        n = omp_get_num_procs();
#else
        n = 1;
#endif
    }
    g_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n);
    ssl__fixed_teams();
}

void ssl__fixed_teams(void)
{
#ifdef _OPENMP
    /* OpenBLAS's OpenMP build spins until every thread of the team it asked for has taken its
     * share: with dynamic teams (OMP_DYNAMIC=true) a smaller team never finishes a GEMM */
    omp_set_dynamic(0);
#endif
}

int ssl_get_num_threads(void)
{
    if (g_threads > 0)
        return g_threads;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int ssl__thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int64_t ssl__max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int64_t ssl__even_chunk(int64_t n, int64_t nb_max, int64_t multiple)
{
    if (nb_max < 1)
        nb_max = 1;
    int64_t chunks = (n + nb_max - 1) / nb_max;
    if (n >= multiple && chunks % multiple)
        chunks += multiple - chunks % multiple;
    if (chunks < 1)
        chunks = 1;
    int64_t nb = (n + chunks - 1) / chunks;
    return nb < 1 ? 1 : nb;
}

int64_t ssl__balanced_chunk(int64_t n, int64_t nb_max)
{
    return ssl__even_chunk(n, nb_max, ssl__max_threads());
}

ssl_conv3_shape_t ssl__conv3_shape(int64_t c, int64_t h, int64_t w, int64_t oc, int64_t pad)
{
    return (ssl_conv3_shape_t){c, h, w, oc, pad, h + 2 * pad - 2, w + 2 * pad - 2};
}

const char *ssl_blas_info(void) { return openblas_get_config(); }

const char *ssl_blas_coretype_hint(void)
{
    if (getenv("OPENBLAS_CORETYPE"))
        return NULL;
    const char *core = openblas_get_corename();
    static const char *const generic[] = {"Prescott", "Core2",     "Penryn",   "Dunnington",
                                          "Nehalem",  "Atom",      "Katmai",   "Coppermine",
                                          "Northwood", "Banias",   "Sandybridge", "unknown"};
    int old = 0;
    for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++)
        old |= core && strcmp(core, generic[i]) == 0;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx512 && (old || (core && strcmp(core, "Haswell") == 0)))
        return "SkylakeX";
    if (avx2 && old)
        return "Haswell";
#else
    (void)old;
#endif
    return NULL;
}
