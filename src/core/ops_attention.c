/* Fused multi-head self-attention on the output of a fused qkv projection:
 *   qkv (B, T, 3C), token rows [q | k | v], head h at columns h D .. h D + D - 1 of each part,
 *   S = scale Q K^T + bias, P = softmax(S) along keys, O = P V written as (B, T, C),
 * so no permute, slice or reshape copies are made in either direction. Each (batch, head) pair
 * is one work item of an OpenMP loop that does all of its arithmetic in a fixed order, so the
 * results do not depend on the thread count. The inner loops are plain vectorisable C over the
 * head dimension or the keys: for the short sequences and small heads of ViT-Tiny and the MAE
 * decoder (T 17..65, D 32..64) one call per head pair is too small for BLAS, and BLAS may not be
 * called from inside the OpenMP loop. Training keeps P (B, H, T, T) for backward. */
#include "core_internal.h"
#include "fast_math.h"

#include <math.h>
#include <string.h>

/* Geometry of a node: qkv (B, T, 3C), H heads of D = C / H, bias strides (0 = broadcast). */
typedef struct att_dims {
    int64_t B, T, C, H, D;
    int64_t sb, sh, si, sj; /* bias element strides along (B, H, T, T) */
    float scale;
} att_dims_t;

static void att_dims(const ssl_node_t *nd, att_dims_t *d)
{
    const ssl_tensor_t *x = nd->in[0], *bias = nd->in[1];
    d->B = x->shape[0];
    d->T = x->shape[1];
    d->C = x->shape[2] / 3;
    d->H = nd->ia[0];
    d->D = d->C / d->H;
    d->scale = nd->fa[0];
    int64_t st[4] = {0, 0, 0, 0};
    if (bias) {
        const int64_t full[4] = {d->B, d->H, d->T, d->T};
        int64_t s = 1;
        for (int i = 3, j = bias->ndim - 1; j >= 0; i--, j--) {
            st[i] = (bias->shape[j] == 1 && full[i] != 1) ? 0 : s;
            s *= bias->shape[j];
        }
    }
    d->sb = st[0], d->sh = st[1], d->si = st[2], d->sj = st[3];
}

static int attention_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0], *bias = nd->in[1];
    int64_t H = nd->ia[0];
    if (H < 1)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "heads must be positive, got %lld",
                                    (long long)H);
    if (x->ndim != 3 || x->shape[2] % (3 * H) != 0)
        return ssl__op_error(nd, "qkv must be (B, T, 3 C) with C divisible by %lld heads",
                             (long long)H);
    if (bias) {
        const int64_t full[4] = {x->shape[0], H, x->shape[1], x->shape[1]};
        int ok = bias->ndim <= 4;
        for (int j = 0; ok && j < bias->ndim; j++) {
            int64_t want = full[4 - bias->ndim + j];
            ok = bias->shape[j] == 1 || bias->shape[j] == want;
        }
        if (!ok)
            return ssl__op_error(nd, "the bias does not broadcast to the scores (%lld, %lld, "
                                     "%lld, %lld)",
                                 (long long)full[0], (long long)full[1], (long long)full[2],
                                 (long long)full[3]);
    }
    *ndim = 3;
    shape[0] = x->shape[0];
    shape[1] = x->shape[1];
    shape[2] = x->shape[2] / 3;
    return SSL_OK;
}

static inline float dot(const float *a, const float *b, int64_t n)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* y += a x */
static inline void axpy(float *restrict y, float a, const float *restrict x, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* One query row: p (T) = softmax(scale q K^T + bias row), o (D) = p V. */
static void att_row(const att_dims_t *d, const float *q, const float *k, const float *v,
                    int64_t ld, const float *brow, float *p, float *o)
{
    const int64_t T = d->T, D = d->D;
    float m = -INFINITY;
    for (int64_t j = 0; j < T; j++) {
        float s = d->scale * dot(q, k + j * ld, D);
        if (brow)
            s += brow[j * d->sj];
        p[j] = s;
        m = s > m ? s : m;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < T; j++) {
        float e = ssl__expf(p[j] - m);
        p[j] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < T; j++)
        p[j] *= inv;
    memset(o, 0, (size_t)D * sizeof(float));
    for (int64_t j = 0; j < T; j++)
        axpy(o, p[j], v + j * ld, D);
}

static int attention_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    att_dims_t d;
    att_dims(nd, &d);
    const ssl_tensor_t *x = nd->in[0], *bias = nd->in[1];
    const int64_t T = d.T, C = d.C, H = d.H, D = d.D, ld = 3 * C, nbh = d.B * H;
    /* P is kept only when the node goes on the tape (see ssl__apply); else one row per work
     * item in scratch memory. */
    int keep = ssl_ctx_grad_enabled(ctx) && (x->requires_grad || (bias && bias->requires_grad));
    float *P = keep ? ssl_arena_alloc(ctx, (size_t)(nbh * T * T) * sizeof(float)) // (B, H, T, T)
                    : ssl__scratch(ctx, (size_t)(nbh * T) * sizeof(float));       // (B*H, T)
    if (!P)
        return ssl_last_status();
    nd->aux[0] = keep ? P : NULL;
    const float *qkv = x->data; // (B, T, 3C)
    float *out = nd->out->data; // (B, T, C)
#pragma omp parallel for schedule(static) if (nbh * T * T * D > SSL_OMP_MIN)
    for (int64_t bh = 0; bh < nbh; bh++) {
        int64_t b = bh / H, h = bh % H;
        const float *q0 = qkv + b * T * ld + h * D, *k0 = q0 + C, *v0 = q0 + 2 * C;
        for (int64_t i = 0; i < T; i++) {
            float *p = keep ? P + (bh * T + i) * T : P + bh * T;
            const float *brow = bias ? bias->data + b * d.sb + h * d.sh + i * d.si : NULL;
            att_row(&d, q0 + i * ld, k0, v0, ld, brow, p, out + (b * T + i) * C + h * D);
        }
    }
    return SSL_OK;
}

/* Backward of one (batch, head): with dP = dO V^T and dS = P * (dP - rowsum(P * dP)),
 *   dQ += scale dS K,  dK += scale dS^T Q,  dV += P^T dO,  dbias row (if wanted) = dS.
 * work holds 2 T floats. */
static void att_backward_item(const att_dims_t *d, int64_t bh, const float *qkv, const float *P,
                              const float *dout, float *dqkv, float *dsall, float *work)
{
    const int64_t T = d->T, C = d->C, D = d->D, ld = 3 * C;
    const int64_t b = bh / d->H, h = bh % d->H;
    const float *q0 = qkv + b * T * ld + h * D, *k0 = q0 + C, *v0 = q0 + 2 * C;
    const float *do0 = dout + b * T * C + h * D;
    float *dq0 = dqkv ? dqkv + b * T * ld + h * D : NULL;
    float *dp = work;
    for (int64_t i = 0; i < T; i++) {
        const float *p = P + (bh * T + i) * T, *doi = do0 + i * C;
        float *ds = dsall ? dsall + (bh * T + i) * T : work + T;
        for (int64_t j = 0; j < T; j++)
            dp[j] = dot(doi, v0 + j * ld, D);
        float r = 0.0f;
#pragma omp simd reduction(+ : r)
        for (int64_t j = 0; j < T; j++)
            r += p[j] * dp[j];
        for (int64_t j = 0; j < T; j++)
            ds[j] = p[j] * (dp[j] - r);
        if (!dq0)
            continue;
        const float *qi = q0 + i * ld;
        float *dqi = dq0 + i * ld, *dk0 = dq0 + C, *dv0 = dq0 + 2 * C;
        for (int64_t j = 0; j < T; j++) {
            axpy(dqi, d->scale * ds[j], k0 + j * ld, D);
            axpy(dk0 + j * ld, d->scale * ds[j], qi, D);
            axpy(dv0 + j * ld, p[j], doi, D);
        }
    }
}

static void attention_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    att_dims_t d;
    att_dims(nd, &d);
    ssl_tensor_t *x = nd->in[0], *bias = nd->in[1];
    const float *P = nd->aux[0];
    float *dqkv = ssl__grad(ctx, x), *dbias = ssl__grad(ctx, bias);
    if (!P || (!dqkv && !dbias))
        return;
    const int64_t T = d.T, nbh = d.B * d.H;
    /* A broadcast bias sums dS over the work items: keep dS (B, H, T, T) and reduce it in
     * order afterwards. */
    float *ds = dbias ? ssl_arena_alloc(ctx, (size_t)(nbh * T * T) * sizeof(float)) : NULL;
    float *work = ssl__scratch(ctx, (size_t)(nbh * 2 * T) * sizeof(float)); // (B*H, 2T)
    if ((dbias && !ds) || !work)
        return; /* the context records the failure; backward reports it */
    const float *qkv = x->data, *dout = nd->out->grad;
#pragma omp parallel for schedule(static) if (nbh * T * T * d.D > SSL_OMP_MIN)
    for (int64_t bh = 0; bh < nbh; bh++)
        att_backward_item(&d, bh, qkv, P, dout, dqkv, ds, work + bh * 2 * T);
    if (!dbias)
        return;
    for (int64_t bh = 0; bh < nbh; bh++) {
        const float *dsb = ds + bh * T * T;
        float *db = dbias + (bh / d.H) * d.sb + (bh % d.H) * d.sh;
        for (int64_t i = 0; i < T; i++)
            for (int64_t j = 0; j < T; j++)
                db[i * d.si + j * d.sj] += dsb[i * T + j];
    }
}

const ssl_op_def_t ssl_opdef_attention = {"attention",        1, attention_shape,
                                          attention_forward, attention_backward, 0};

ssl_tensor_t *ssl_attention(ssl_ctx_t *ctx, ssl_tensor_t *qkv, int heads, ssl_tensor_t *bias)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_ATTENTION, 2, qkv, bias);
    n.ia[0] = heads;
    if (qkv && qkv->ndim == 3 && heads > 0 && qkv->shape[2] % (3 * (int64_t)heads) == 0)
        n.fa[0] = (float)(1.0 / sqrt((double)(qkv->shape[2] / 3 / heads)));
    return ssl__apply(ctx, &n);
}
