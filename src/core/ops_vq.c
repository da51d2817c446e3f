/* Vector quantisation (VQ-VAE, van den Oord et al. 2017): the nearest codebook row of each
 * input row, and the straight-through lookup that feeds the decoder.
 *
 * ssl_vq_nearest finds argmin_k ||z_i - e_k||^2 = argmin_k (||e_k||^2 - 2 z_i . e_k) with one
 * GEMM per block of rows (||z_i||^2 is the same for every k and is left out); ties go to the
 * lowest k. ssl_vq_straight_through outputs codebook[codes] and passes the output's gradient
 * to z unchanged, which is z + sg(e - z) of the common PyTorch code; the codebook gets its
 * gradient from the codebook loss instead (ssl_loss_vqvae over ssl_embedding). */
#include "core_internal.h"

#include <float.h>
#include <string.h>

enum { VQ_ROWS = 256 }; /* rows per GEMM block: the scratch is VQ_ROWS x K floats */

int ssl_vq_nearest(ssl_ctx_t *ctx, const ssl_tensor_t *z, const ssl_tensor_t *codebook,
                   int32_t *codes)
{
    if (!ctx || !z || !codebook || !codes)
        return ssl_set_error(SSL_ERR_INVALID, "vq_nearest: NULL %s",
                             !ctx ? "context" : !z ? "z" : !codebook ? "codebook" : "codes");
    if (z->ndim != 2 || codebook->ndim != 2 || z->shape[1] != codebook->shape[1] ||
        codebook->shape[0] < 1)
        return ssl_set_error(SSL_ERR_SHAPE,
                             "vq_nearest: z must be (N, D) and the codebook (K, D), K >= 1; got "
                             "%dD z with %lld columns and %dD codebook (%lld, %lld)",
                             z->ndim, (long long)(z->ndim == 2 ? z->shape[1] : 0),
                             codebook->ndim, (long long)codebook->shape[0],
                             (long long)(codebook->ndim == 2 ? codebook->shape[1] : 0));
    int64_t N = z->shape[0], K = codebook->shape[0], D = z->shape[1];
    if (N == 0)
        return SSL_OK;
    int64_t rows = N < VQ_ROWS ? N : VQ_ROWS;
    float *norm = ssl_arena_alloc(ctx, (size_t)K * sizeof(float));          // (K)
    float *dot = ssl_arena_alloc(ctx, (size_t)(rows * K) * sizeof(float)); // (rows, K)
    if (!norm || !dot)
        return ssl_set_error(SSL_ERR_NOMEM, "vq_nearest: out of arena memory for %lld x %lld "
                             "distances", (long long)rows, (long long)K);
    const float *e = codebook->data;
    for (int64_t k = 0; k < K; k++) {
        double s = 0;
        for (int64_t d = 0; d < D; d++)
            s += (double)e[k * D + d] * e[k * D + d];
        norm[k] = (float)s;
    }
    for (int64_t r0 = 0; r0 < N; r0 += rows) {
        int64_t n = N - r0 < rows ? N - r0 : rows;
        /* dot (n, K) = z[r0 .. r0 + n) (n, D) @ E^T; fp32 whatever the context's precision:
         * a bf16 distance would move codes */
        ssl__sgemm(0, 1, n, K, D, 1.0f, z->data + r0 * D, D, e, D, 0.0f, dot, K);
#pragma omp parallel for schedule(static) if (n * K > SSL_OMP_MIN)
        for (int64_t i = 0; i < n; i++) {
            const float *di = dot + i * K;
            float best = FLT_MAX;
            int32_t arg = 0;
            for (int64_t k = 0; k < K; k++) {
                float v = norm[k] - 2.0f * di[k];
                if (v < best) {
                    best = v;
                    arg = (int32_t)k;
                }
            }
            codes[r0 + i] = arg;
        }
    }
    return SSL_OK;
}

/* in[0] z (N, D), in[1] codebook (K, D); aux[0] the codes (N) */
static int vq_st_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *z = nd->in[0], *e = nd->in[1];
    if (z->ndim != 2 || e->ndim != 2 || z->shape[1] != e->shape[1])
        return ssl__op_error(nd, "z must be (N, D) and the codebook (K, D)");
    const int32_t *c = nd->aux[0];
    if (!c && z->shape[0] > 0)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "codes is NULL");
    for (int64_t i = 0; i < z->shape[0]; i++)
        if (c[i] < 0 || c[i] >= e->shape[0])
            return ssl__op_error_status(nd, SSL_ERR_INVALID,
                                        "code %d at row %lld is outside [0, %lld)", (int)c[i],
                                        (long long)i, (long long)e->shape[0]);
    *ndim = 2;
    shape[0] = z->shape[0];
    shape[1] = z->shape[1];
    return SSL_OK;
}

static int vq_st_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    const ssl_tensor_t *e = nd->in[1];
    const int32_t *c = nd->aux[0];
    int64_t N = nd->out->shape[0], D = nd->out->shape[1];
    for (int64_t i = 0; i < N; i++)
        memcpy(nd->out->data + i * D, e->data + (int64_t)c[i] * D, (size_t)D * sizeof(float));
    return SSL_OK;
}

/* straight-through: dz += dout; the codebook gets nothing from this output */
static void vq_st_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    float *dz = ssl__grad(ctx, nd->in[0]);
    const float *g = nd->out->grad;
    if (dz)
        for (int64_t i = 0; i < nd->out->numel; i++)
            dz[i] += g[i];
}

const ssl_op_def_t ssl_opdef_vq_straight_through = {"vq_straight_through", 0, vq_st_shape,
                                                    vq_st_forward, vq_st_backward, 0};

ssl_tensor_t *ssl_vq_straight_through(ssl_ctx_t *ctx, ssl_tensor_t *z, ssl_tensor_t *codebook,
                                      const int32_t *codes)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_VQ_STRAIGHT_THROUGH, 2, z, codebook);
    if (ctx && z && codebook) {
        if (!codes) {
            ssl_set_error(SSL_ERR_INVALID, "vq_straight_through: codes is NULL");
            return NULL;
        }
        int64_t N = z->ndim == 2 ? z->shape[0] : 0;
        int32_t *cp = ssl_arena_alloc(ctx, (size_t)(N > 0 ? N : 1) * sizeof *cp);
        if (!cp) {
            ssl_set_error(SSL_ERR_NOMEM, "vq_straight_through: out of arena memory");
            return NULL;
        }
        if (N > 0)
            memcpy(cp, codes, (size_t)N * sizeof *cp);
        n.aux[0] = cp;
    }
    return ssl__apply(ctx, &n);
}
