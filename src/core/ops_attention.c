/* Fused multi-head self-attention on the output of a fused qkv projection:
 *   qkv (B, T, 3C), token rows [q | k | v], head h at columns h D .. h D + D - 1 of each part,
 *   S = scale Q K^T + bias, P = softmax(S) along keys, O = P V written as (B, T, C),
 * so no permute, slice or reshape copies are made in either direction. Each (batch, head) pair
 * is one work item of an OpenMP loop that does all of its arithmetic in a fixed order, so the
 * results do not depend on the thread count. The inner loops are plain C on 16-float vectors
 * (GCC/Clang vector extension) on blocks of 8 rows (queries, or keys in backward) times 32 keys
 * or 32 columns of the head dimension, with K and V copied transposed per work item; a few keys
 * past the last whole vector of 16 (T = 17, 65) are dot products instead of a padded vector.
 * For the short sequences and small heads of ViT-Tiny and the MAE decoder (T 17..65, D 32..64)
 * one call per head pair is too small for BLAS, and BLAS may not be called from inside the
 * OpenMP loop. Training keeps P (B, H, T, T) for backward. */
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
/* The kernels work on blocks of ATT_R rows (queries, or keys in backward) at once: each vector
 * loaded from K^T, V^T, V, K, Q or dO serves ATT_R rows, and ATT_R x 2 accumulators are
 * independent chains, so the loops run at FMA throughput rather than load or latency bound. */
#define ATT_R 8
#define ATT_NV 2 /* vectors per row in a block: ATT_R x ATT_NV accumulators in registers */

static int64_t att_pad(int64_t t) { return (t + ATT_VEC - 1) / ATT_VEC * ATT_VEC; }

/* Per-thread work memory in floats: a transposed (D, Tp) copy of K or V, an (ATT_R, Tp) block
 * of score rows and a (T, T) block of dS. Threads index it by omp_get_thread_num(): which
 * thread runs a work item changes no result. */
static int64_t att_work_floats(const att_dims_t *d)
{
    int64_t Tp = att_pad(d->T);
    return d->D * Tp + ATT_R * Tp + d->T * d->T;
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

/* Rows a block kernel computes for nr valid rows: the next power of two up to ATT_R. */
static int att_rows_for(int nr) { return nr > 4 ? ATT_R : nr > 2 ? 4 : nr; }

/* s[r * Tp + jb ..+ nv VEC) = alpha * sum_d a[r][d] * mt[d, jb ..] for the R rows a[r]:
 * columns jb.. of the rows of A M^T, M given transposed (D, Tp); R and nv are constants after
 * inlining. */
static inline __attribute__((always_inline)) void
att_rt_block(float *restrict s, int64_t Tp, float alpha, const float *const *a,
             const float *restrict mt, int64_t D, int64_t jb, int R, int nv)
{
    att_vec acc[ATT_R][ATT_NV] = {{{0}}};
    for (int64_t dd = 0; dd < D; dd++) {
        att_vec m[ATT_NV];
        for (int v = 0; v < nv; v++)
            m[v] = vload(mt + dd * Tp + jb + v * ATT_VEC);
        for (int r = 0; r < R; r++) {
            const float ar = a[r][dd];
            for (int v = 0; v < nv; v++)
                acc[r][v] += ar * m[v];
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < nv; v++)
            vstore(s + r * Tp + jb + v * ATT_VEC, alpha * acc[r][v]);
}

static inline __attribute__((always_inline)) void
att_rt_rows(float *restrict s, int64_t Tp, float alpha, const float *const *a,
            const float *restrict mt, int64_t D, int64_t Tv, int R)
{
    int64_t jb = 0;
    for (; jb + ATT_NV * ATT_VEC <= Tv; jb += ATT_NV * ATT_VEC)
        att_rt_block(s, Tp, alpha, a, mt, D, jb, R, ATT_NV);
    if (jb < Tv) /* Tv is a multiple of ATT_VEC: one vector left */
        att_rt_block(s, Tp, alpha, a, mt, D, jb, R, 1);
}

/* s (nr, Tp) = alpha * A M^T for the rows a[r] (D), r < nr, of a block (a[r] readable up to
 * ATT_R): keys j < Tv from M^T given as mt (D, Tp), the rest (j < T) as dot products with M's
 * rows m[j * ld]. */
static void att_scores(float *restrict s, int64_t Tp, float alpha, const float *const *a, int nr,
                       const float *restrict mt, int64_t D, int64_t Tv, const float *m,
                       int64_t ld, int64_t T)
{
    switch (att_rows_for(nr)) {
    case ATT_R: att_rt_rows(s, Tp, alpha, a, mt, D, Tv, ATT_R); break;
    case 4: att_rt_rows(s, Tp, alpha, a, mt, D, Tv, 4); break;
    case 2: att_rt_rows(s, Tp, alpha, a, mt, D, Tv, 2); break;
    default: att_rt_rows(s, Tp, alpha, a, mt, D, Tv, 1); break;
    }
    for (int64_t j = Tv; j < T; j++)
        for (int r = 0; r < nr; r++) {
            const float *ar = a[r], *mj = m + j * ld;
            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
            for (int64_t dd = 0; dd < D; dd++)
                dot += ar[dd] * mj[dd];
            s[r * Tp + j] = alpha * dot;
        }
}

/* Keys a score kernel takes as vectors of M^T; the others (at most ATT_TAIL after the last
 * whole vector) as dot products, cheaper than a vector of mostly padding. */
#define ATT_TAIL 4

static int64_t att_vec_keys(int64_t T)
{
    return T % ATT_VEC <= ATT_TAIL ? T - T % ATT_VEC : att_pad(T);
}

/* y[r][db ..+ nv VEC) (+)= alpha * sum_{j<n} w[r][j ws] rows[j ld + db ..] for r < nr, R >= nr
 * rows computed (the others on readable memory, dropped); R, nv constants after inlining. */
static inline __attribute__((always_inline)) void
att_ws_block(float *const *y, int nr, float alpha, const float *const *w, int64_t ws,
             const float *restrict rows, int64_t ld, int64_t n, int64_t db, int R, int nv,
             int acc)
{
    att_vec c[ATT_R][ATT_NV] = {{{0}}};
    for (int64_t j = 0; j < n; j++) {
        att_vec m[ATT_NV];
        for (int v = 0; v < nv; v++)
            m[v] = vload(rows + j * ld + db + v * ATT_VEC);
        for (int r = 0; r < R; r++) {
            const float wr = w[r][j * ws];
            for (int v = 0; v < nv; v++)
                c[r][v] += wr * m[v];
        }
    }
    for (int r = 0; r < nr; r++)
        for (int v = 0; v < nv; v++) {
            float *yv = y[r] + db + v * ATT_VEC;
            att_vec t = alpha * c[r][v];
            vstore(yv, acc ? vload(yv) + t : t);
        }
}

static inline __attribute__((always_inline)) void
att_ws_rows(float *const *y, int nr, float alpha, const float *const *w, int64_t ws,
            const float *restrict rows, int64_t ld, int64_t n, int64_t D, int R, int acc)
{
    int64_t db = 0;
    for (; db + ATT_NV * ATT_VEC <= D; db += ATT_NV * ATT_VEC)
        att_ws_block(y, nr, alpha, w, ws, rows, ld, n, db, R, ATT_NV, acc);
    if (db + ATT_VEC <= D)
        att_ws_block(y, nr, alpha, w, ws, rows, ld, n, db, R, 1, acc);
}

/* y[r] (D) (+)= alpha * sum_{j<n} w[r][j * ws] * rows[j * ld + :] for r < nr: weighted sums of
 * rows, added to y with acc, else stored. w[r] must be readable up to ATT_R. */
static void att_wsum_rows(float *const *y, int nr, float alpha, const float *const *w, int64_t ws,
                          const float *restrict rows, int64_t ld, int64_t n, int64_t D, int acc)
{
    switch (att_rows_for(nr)) {
    case ATT_R: att_ws_rows(y, nr, alpha, w, ws, rows, ld, n, D, ATT_R, acc); break;
    case 4: att_ws_rows(y, nr, alpha, w, ws, rows, ld, n, D, 4, acc); break;
    case 2: att_ws_rows(y, nr, alpha, w, ws, rows, ld, n, D, 2, acc); break;
    default: att_ws_rows(y, nr, alpha, w, ws, rows, ld, n, D, 1, acc); break;
    }
    for (int64_t db = D / ATT_VEC * ATT_VEC; db < D; db++) /* D not a multiple of ATT_VEC */
        for (int r = 0; r < nr; r++) {
            float sum = 0.0f;
            for (int64_t j = 0; j < n; j++)
                sum += w[r][j * ws] * rows[j * ld + db];
            y[r][db] = (acc ? y[r][db] : 0.0f) + alpha * sum;
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

/* ptr[r] = base + min(i0 + r, n - 1) * stride for the ATT_R rows of a block starting at i0:
 * rows past the end repeat the last one (computed, never stored). Returns the valid rows. */
static int att_block_ptrs(const float **ptr, const float *base, int64_t stride, int64_t i0,
                          int64_t n)
{
    for (int r = 0; r < ATT_R; r++)
        ptr[r] = base + (i0 + r < n ? i0 + r : n - 1) * stride;
    return n - i0 < ATT_R ? (int)(n - i0) : ATT_R;
}

/* Forward of one (batch, head), ATT_R queries at a time: scores, softmax (P rows into P (T, T)
 * when kept), then their outputs. */
static void att_forward_item(const att_dims_t *d, int64_t bh, const float *qkv, const float *bias,
                             float *out, float *P, int keep, float *work)
{
    const int64_t T = d->T, C = d->C, D = d->D, ld = 3 * C, Tp = att_pad(T);
    const int64_t Tv = att_vec_keys(T);
    const int64_t b = bh / d->H, h = bh % d->H;
    const float *q0 = qkv + b * T * ld + h * D, *k0 = q0 + C, *v0 = q0 + 2 * C;
    float *kt = work, *s = work + D * Tp; // (D, Tp), (ATT_R, Tp)
    const float *a[ATT_R], *w[ATT_R];
    float *y[ATT_R];
    att_transpose(kt, k0, ld, T, D, Tp);
    for (int64_t i0 = 0; i0 < T; i0 += ATT_R) {
        int nr = att_block_ptrs(a, q0, ld, i0, T);
        att_scores(s, Tp, d->scale, a, nr, kt, D, Tv, k0, ld, T);
        for (int r = 0; r < nr; r++) {
            const int64_t i = i0 + r;
            const float *brow = bias ? bias + b * d->sb + h * d->sh + i * d->si : NULL;
            att_softmax_row(s + r * Tp, brow, d->sj, T);
            if (keep)
                memcpy(P + (bh * T + i) * T, s + r * Tp, (size_t)T * sizeof(float));
            y[r] = out + (b * T + i) * C + h * D;
        }
        att_block_ptrs(w, s, Tp, 0, nr);
        att_wsum_rows(y, nr, 1.0f, w, 1, v0, ld, T, D, 0);
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
 * First pass over blocks of queries: dS rows (into ds, (T, T)) and dQ; second pass over blocks
 * of keys: dK, dV. Every element of the head's dq, dk, dv is written once: added with acc,
 * else stored. */
static void att_backward_item(const att_dims_t *d, int64_t bh, const float *qkv, const float *P,
                              const float *dout, float *dqkv, int acc, float *ds, float *work)
{
    const int64_t T = d->T, C = d->C, D = d->D, ld = 3 * C, Tp = att_pad(T);
    const int64_t Tv = att_vec_keys(T);
    const int64_t b = bh / d->H, h = bh % d->H;
    const float *q0 = qkv + b * T * ld + h * D, *k0 = q0 + C, *v0 = q0 + 2 * C;
    const float *do0 = dout + b * T * C + h * D, *p0 = P + bh * T * T;
    float *vt = work, *dp = work + D * Tp; // (D, Tp), (ATT_R, Tp)
    if (!ds)
        ds = dp + ATT_R * Tp; // (T, T)
    const float *a[ATT_R], *w[ATT_R];
    float *y[ATT_R];
    att_transpose(vt, v0, ld, T, D, Tp);
    for (int64_t i0 = 0; i0 < T; i0 += ATT_R) {
        int nr = att_block_ptrs(a, do0, C, i0, T);
        att_scores(dp, Tp, 1.0f, a, nr, vt, D, Tv, v0, ld, T);
        for (int r = 0; r < nr; r++) {
            const float *p = p0 + (i0 + r) * T, *dpr = dp + r * Tp;
            float *dsi = ds + (i0 + r) * T;
            float rs = 0.0f;
#pragma omp simd reduction(+ : rs)
            for (int64_t j = 0; j < T; j++)
                rs += p[j] * dpr[j];
            for (int64_t j = 0; j < T; j++)
                dsi[j] = p[j] * (dpr[j] - rs);
            y[r] = dqkv ? dqkv + (b * T + i0 + r) * ld + h * D : NULL;
        }
        if (dqkv) {
            att_block_ptrs(w, ds, T, i0, T);
            att_wsum_rows(y, nr, d->scale, w, 1, k0, ld, T, D, acc);
        }
    }
    if (!dqkv)
        return;
    for (int64_t j0 = 0; j0 < T; j0 += ATT_R) {
        int nr = att_block_ptrs(w, ds, 1, j0, T); /* columns j0.. of dS */
        for (int r = 0; r < nr; r++)
            y[r] = dqkv + (b * T + j0 + r) * ld + C + h * D;
        att_wsum_rows(y, nr, d->scale, w, T, q0, ld, T, D, acc);
        att_block_ptrs(w, p0, 1, j0, T); /* columns j0.. of P */
        for (int r = 0; r < nr; r++)
            y[r] += C;
        att_wsum_rows(y, nr, 1.0f, w, T, do0, C, T, D, acc);
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
