/* Fused multi-head self-attention on the output of a fused qkv projection:
 *   qkv (B, T, 3C), token rows [q | k | v], head h at columns h D .. h D + D - 1 of each part,
 *   S = scale Q K^T + bias, P = softmax(S) along keys, O = P V written as (B, T, C),
 * so no permute, slice or reshape copies are made in either direction. Each (batch, head) pair
 * is one work item of an OpenMP loop that does all of its arithmetic in a fixed order, so the
 * results do not depend on the thread count. The inner loops are plain C on 16-float vectors
 * (GCC/Clang vector extension) over blocks of keys or of the head dimension, with K and V copied
 * transposed per work item: for the short sequences and small heads of ViT-Tiny and the MAE
 * decoder (T 17..65, D 32..64) one call per head pair is too small for BLAS, and BLAS may not be
 * called from inside the OpenMP loop. Training keeps P (B, H, T, T) for backward. */
#include "core_internal.h"
#include "fast_math.h"

#include <math.h>
#include <string.h>

#include <omp.h>

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

/* Keys are padded to a multiple of this (one 512-bit vector of floats) in the transposed
 * per-thread copies, so the score loops run whole vectors. */
#define ATT_VEC 16

static int64_t att_pad(int64_t t) { return (t + ATT_VEC - 1) / ATT_VEC * ATT_VEC; }

/* Per-thread work memory in floats: a transposed (D, Tp) copy of K or V, a (Tp) score row and a
 * (T, T) block of dS. Threads index it by omp_get_thread_num(): which thread runs a work item
 * changes no result. */
static int64_t att_work_floats(const att_dims_t *d)
{
    int64_t Tp = att_pad(d->T);
    return d->D * Tp + Tp + d->T * d->T;
}

/* dst (D, Tp) = the D columns of rows src[j * ld], j < T, transposed; zero beyond T. */
static void att_transpose(float *restrict dst, const float *restrict src, int64_t ld, int64_t T,
                          int64_t D, int64_t Tp)
{
    for (int64_t dd = 0; dd < D; dd++) {
        float *row = dst + dd * Tp;
        for (int64_t j = 0; j < T; j++)
            row[j] = src[j * ld + dd];
        for (int64_t j = T; j < Tp; j++)
            row[j] = 0.0f;
    }
}

/* One vector of ATT_VEC floats (GCC/Clang vector extension: one zmm register with AVX-512,
 * split into narrower registers elsewhere); loads and stores through memcpy, no alignment.
 * GCC notes that passing such vectors without AVX-512 differs in ABI from AVX-512 code: moot for
 * these file-local helpers, and the note failed portable builds with SSL_WERROR. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float att_vec __attribute__((vector_size(ATT_VEC * sizeof(float))));

static inline att_vec vload(const float *p)
{
    att_vec v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void vstore(float *p, att_vec v) { memcpy(p, &v, sizeof v); }

/* Up to ATT_GROUP vectors of accumulators live in registers at once: independent chains, so
 * the loops run at FMA throughput instead of waiting on one accumulator's latency. */
#define ATT_GROUP 4

/* s[jb .. jb + nc VEC) = alpha * sum_d a[d] * mt[d, jb ..]; nc a constant after inlining. */
static inline __attribute__((always_inline)) void
att_rt_group(float *restrict s, float alpha, const float *restrict a, const float *restrict mt,
             int64_t D, int64_t Tp, int64_t jb, int nc)
{
    att_vec acc[ATT_GROUP] = {{0}};
    for (int64_t dd = 0; dd < D; dd++) {
        const float ad = a[dd], *m = mt + dd * Tp + jb;
        for (int c = 0; c < nc; c++)
            acc[c] += ad * vload(m + c * ATT_VEC);
    }
    for (int c = 0; c < nc; c++)
        vstore(s + jb + c * ATT_VEC, alpha * acc[c]);
}

/* s (Tp) = alpha * sum_d a[d] * mt[d, :] for a transposed (D, Tp) matrix mt: a row of A M^T. */
static void att_row_times_t(float *restrict s, float alpha, const float *restrict a,
                            const float *restrict mt, int64_t D, int64_t Tp)
{
    int64_t jb = 0;
    for (; jb + ATT_GROUP * ATT_VEC <= Tp; jb += ATT_GROUP * ATT_VEC)
        att_rt_group(s, alpha, a, mt, D, Tp, jb, ATT_GROUP);
    switch ((Tp - jb) / ATT_VEC) {
    case 3: att_rt_group(s, alpha, a, mt, D, Tp, jb, 3); break;
    case 2: att_rt_group(s, alpha, a, mt, D, Tp, jb, 2); break;
    case 1: att_rt_group(s, alpha, a, mt, D, Tp, jb, 1); break;
    default: break;
    }
}

/* y[db .. db + nc VEC) (+)= alpha * sum_j w[j ws] rows[j ld + db ..], even and odd j in
 * separate accumulators (two chains per vector), summed at the end. */
static inline __attribute__((always_inline)) void
att_sr_group(float *restrict y, float alpha, const float *restrict w, int64_t ws,
             const float *restrict rows, int64_t ld, int64_t n, int64_t db, int nc, int acc)
{
    att_vec e[ATT_GROUP] = {{0}}, o[ATT_GROUP] = {{0}};
    int64_t j = 0;
    for (; j + 1 < n; j += 2) {
        const float w0 = w[j * ws], w1 = w[(j + 1) * ws];
        const float *r0 = rows + j * ld + db, *r1 = r0 + ld;
        for (int c = 0; c < nc; c++) {
            e[c] += w0 * vload(r0 + c * ATT_VEC);
            o[c] += w1 * vload(r1 + c * ATT_VEC);
        }
    }
    if (j < n) {
        const float w0 = w[j * ws], *r0 = rows + j * ld + db;
        for (int c = 0; c < nc; c++)
            e[c] += w0 * vload(r0 + c * ATT_VEC);
    }
    for (int c = 0; c < nc; c++) {
        float *yc = y + db + c * ATT_VEC;
        att_vec v = alpha * (e[c] + o[c]);
        vstore(yc, acc ? vload(yc) + v : v);
    }
}

/* y (D) (+)= alpha * sum_j w[j * ws] * rows[j * ld + :], j < n: a weighted sum of rows, added
 * to y with acc, else stored. */
static void att_sum_rows(float *restrict y, float alpha, const float *restrict w, int64_t ws,
                         const float *restrict rows, int64_t ld, int64_t n, int64_t D, int acc)
{
    int64_t db = 0;
    for (; db + ATT_GROUP * ATT_VEC <= D; db += ATT_GROUP * ATT_VEC)
        att_sr_group(y, alpha, w, ws, rows, ld, n, db, ATT_GROUP, acc);
    switch ((D - db) / ATT_VEC) {
    case 3: att_sr_group(y, alpha, w, ws, rows, ld, n, db, 3, acc); break;
    case 2: att_sr_group(y, alpha, w, ws, rows, ld, n, db, 2, acc); break;
    case 1: att_sr_group(y, alpha, w, ws, rows, ld, n, db, 1, acc); break;
    default: break;
    }
    for (db += (D - db) / ATT_VEC * ATT_VEC; db < D; db++) { /* D not a multiple of VEC */
        float sum = 0.0f;
        for (int64_t j = 0; j < n; j++)
            sum += w[j * ws] * rows[j * ld + db];
        y[db] = (acc ? y[db] : 0.0f) + alpha * sum;
    }
}

/* Softmax of s[0..T) in place (bias row added first when given). */
static void att_softmax_row(float *s, const float *brow, int64_t sj, int64_t T)
{
    if (brow)
        for (int64_t j = 0; j < T; j++)
            s[j] += brow[j * sj];
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < T; j++)
        m = s[j] > m ? s[j] : m;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < T; j++) {
        float e = ssl__expf(s[j] - m);
        s[j] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < T; j++)
        s[j] *= inv;
}

/* Forward of one (batch, head): P rows into p_out (T, T) or, when not kept, one reused row. */
static void att_forward_item(const att_dims_t *d, int64_t bh, const float *qkv, const float *bias,
                             float *out, float *P, int keep, float *work)
{
    const int64_t T = d->T, C = d->C, D = d->D, ld = 3 * C, Tp = att_pad(T);
    const int64_t b = bh / d->H, h = bh % d->H;
    const float *q0 = qkv + b * T * ld + h * D, *k0 = q0 + C, *v0 = q0 + 2 * C;
    float *kt = work, *s = work + D * Tp; // (D, Tp), (Tp)
    att_transpose(kt, k0, ld, T, D, Tp);
    for (int64_t i = 0; i < T; i++) {
        float *p = keep ? P + (bh * T + i) * T : s;
        att_row_times_t(s, d->scale, q0 + i * ld, kt, D, Tp);
        const float *brow = bias ? bias + b * d->sb + h * d->sh + i * d->si : NULL;
        att_softmax_row(s, brow, d->sj, T);
        if (p != s)
            memcpy(p, s, (size_t)T * sizeof(float));
        att_sum_rows(out + (b * T + i) * C + h * D, 1.0f, p, 1, v0, ld, T, D, 0);
    }
}

static int attention_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    att_dims_t d;
    att_dims(nd, &d);
    const ssl_tensor_t *x = nd->in[0], *bias = nd->in[1];
    const int64_t T = d.T, nbh = d.B * d.H;
    /* P is kept only when the node goes on the tape (the condition of ssl__apply). */
    int keep = ssl_ctx_grad_enabled(ctx) && (x->requires_grad || (bias && bias->requires_grad));
    float *P = NULL;
    if (keep && !(P = ssl_arena_alloc(ctx, (size_t)(nbh * T * T) * sizeof(float)))) // (B,H,T,T)
        return ssl_last_status();
    nd->aux[0] = P;
    const int nth = omp_get_max_threads();
    const int64_t wf = att_work_floats(&d);
    float *work = ssl__scratch(ctx, (size_t)(nth * wf) * sizeof(float));
    if (!work)
        return ssl_last_status();
    const float *qkv = x->data, *bd = bias ? bias->data : NULL; // (B, T, 3C)
    float *out = nd->out->data;                                 // (B, T, C)
    ssl__model_flops_add((uint64_t)(4 * nbh * T * T * d.D));    /* Q K^T and P V */
#pragma omp parallel for schedule(static) if (nbh * T * T * d.D > SSL_OMP_MIN)
    for (int64_t bh = 0; bh < nbh; bh++)
        att_forward_item(&d, bh, qkv, bd, out, P, keep, work + omp_get_thread_num() * wf);
    return SSL_OK;
}

/* Backward of one (batch, head). With dP = dO V^T and dS = P * (dP - rowsum(P * dP)):
 *   dQ (+)= scale dS K,  dK (+)= scale dS^T Q,  dV (+)= P^T dO,  and dS itself for the bias.
 * First pass over queries: dS rows (into ds, (T, T)) and dQ; second pass over keys: dK, dV.
 * Every element of the head's dq, dk, dv is written once: added with acc, else stored. */
static void att_backward_item(const att_dims_t *d, int64_t bh, const float *qkv, const float *P,
                              const float *dout, float *dqkv, int acc, float *ds, float *work)
{
    const int64_t T = d->T, C = d->C, D = d->D, ld = 3 * C, Tp = att_pad(T);
    const int64_t b = bh / d->H, h = bh % d->H;
    const float *q0 = qkv + b * T * ld + h * D, *k0 = q0 + C, *v0 = q0 + 2 * C;
    const float *do0 = dout + b * T * C + h * D, *p0 = P + bh * T * T;
    float *vt = work, *dp = work + D * Tp; // (D, Tp), (Tp)
    if (!ds)
        ds = dp + Tp; // (T, T)
    att_transpose(vt, v0, ld, T, D, Tp);
    for (int64_t i = 0; i < T; i++) {
        const float *p = p0 + i * T;
        float *dsi = ds + i * T;
        att_row_times_t(dp, 1.0f, do0 + i * C, vt, D, Tp);
        float r = 0.0f;
#pragma omp simd reduction(+ : r)
        for (int64_t j = 0; j < T; j++)
            r += p[j] * dp[j];
        for (int64_t j = 0; j < T; j++)
            dsi[j] = p[j] * (dp[j] - r);
        if (dqkv)
            att_sum_rows(dqkv + (b * T + i) * ld + h * D, d->scale, dsi, 1, k0, ld, T, D, acc);
    }
    if (!dqkv)
        return;
    for (int64_t j = 0; j < T; j++) {
        float *dkj = dqkv + (b * T + j) * ld + C + h * D;
        att_sum_rows(dkj, d->scale, ds + j, T, q0, ld, T, D, acc);  /* column j of dS */
        att_sum_rows(dkj + C, 1.0f, p0 + j, T, do0, C, T, D, acc); /* column j of P */
    }
}

static void attention_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    att_dims_t d;
    att_dims(nd, &d);
    ssl_tensor_t *x = nd->in[0], *bias = nd->in[1];
    const float *P = nd->aux[0];
    int fresh; /* qkv has no gradient yet: store into an unzeroed buffer */
    float *dqkv = ssl__grad_write(ctx, x, &fresh), *dbias = ssl__grad(ctx, bias);
    if (!P || (!dqkv && !dbias))
        return;
    const int64_t T = d.T, nbh = d.B * d.H;
    /* A broadcast bias sums dS over the work items: keep dS (B, H, T, T) and reduce it in
     * order afterwards. */
    float *ds = dbias ? ssl_arena_alloc(ctx, (size_t)(nbh * T * T) * sizeof(float)) : NULL;
    const int nth = omp_get_max_threads();
    const int64_t wf = att_work_floats(&d);
    float *work = ssl__scratch(ctx, (size_t)(nth * wf) * sizeof(float));
    if ((dbias && !ds) || !work)
        return; /* the context records the failure; backward reports it */
    const float *qkv = x->data, *dout = nd->out->grad;
    /* dP = dO V^T, then (for qkv's gradient) dQ, dK and dV */
    ssl__model_flops_add((uint64_t)((dqkv ? 8 : 2) * nbh * T * T * d.D));
#pragma omp parallel for schedule(static) if (nbh * T * T * d.D > SSL_OMP_MIN)
    for (int64_t bh = 0; bh < nbh; bh++)
        att_backward_item(&d, bh, qkv, P, dout, dqkv, !fresh, ds ? ds + bh * T * T : NULL,
                          work + omp_get_thread_num() * wf);
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
