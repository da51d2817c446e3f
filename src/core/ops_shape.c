/* Shape ops: reshape (a view), permute/transpose (a tiled copy), concat, slice and split.
 * None of them does arithmetic, so forward and backward are copies; results are bit-exact and
 * independent of the thread count. */
#include "core_internal.h"

#include <stdio.h>
#include <string.h>

#if defined(__AVX__)
#include <immintrin.h>
#endif

/* "(2, -1, 3)" from a plain dims array. */
static char *dims_str(const int64_t *d, int n, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < n && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ", %lld" : "%lld", (long long)d[i]);
    if (o < len)
        snprintf(buf + o, len - o, ")");
    return buf;
}

/* dst[i] (+)= src[i] for i < n. */
static void copy_flat(float *dst, const float *src, int64_t n, int acc)
{
    if (!acc) {
        if (n <= SSL_OMP_MIN) {
            memcpy(dst, src, (size_t)n * sizeof(float));
            return;
        }
    }
    const int64_t ch = 8192;
    int64_t nch = (n + ch - 1) / ch;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (int64_t c = 0; c < nch; c++) {
        int64_t lo = c * ch, hi = lo + ch < n ? lo + ch : n;
        if (acc)
            for (int64_t i = lo; i < hi; i++)
                dst[i] += src[i];
        else
            memcpy(dst + lo, src + lo, (size_t)(hi - lo) * sizeof(float));
    }
}

/* For o < outer: dst[o * dstride + i] (+)= src[o * sstride + i], i < len. Rows are split into
 * chunks so that both many short rows and a few long ones spread over the threads. */
static void copy_rows(float *dst, int64_t dstride, const float *src, int64_t sstride, int64_t outer,
                      int64_t len, int acc)
{
    if (outer == 0 || len == 0)
        return;
    const int64_t ch = 8192;
    int64_t nch = (len + ch - 1) / ch, tasks = outer * nch;
#pragma omp parallel for schedule(static) if (outer * len > SSL_OMP_MIN)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t o = t / nch, lo = (t % nch) * ch, hi = lo + ch < len ? lo + ch : len;
        float *d = dst + o * dstride;
        const float *s = src + o * sstride;
        if (acc)
            for (int64_t i = lo; i < hi; i++)
                d[i] += s[i];
        else
            memcpy(d + lo, s + lo, (size_t)(hi - lo) * sizeof(float));
    }
}

/* ---------------------------------------------------------------- reshape */

/* ia[0] = rank, ia[1..5] = requested shape (one entry may be -1). */
static int reshape_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0];
    int r = (int)nd->ia[0];
    if (r < 0 || r > SSL_MAX_DIMS)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "rank %d outside 0..%d", r, SSL_MAX_DIMS);
    if (nd->ia[6])
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "shape is NULL");
    const int64_t *want = &nd->ia[1];
    char s[128];
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < r; i++) {
        if (want[i] == -1) {
            if (infer >= 0)
                return ssl__op_error_status(nd, SSL_ERR_INVALID, "shape %s has more than one -1",
                                            dims_str(want, r, s, sizeof s));
            infer = i;
        } else if (want[i] < 0) {
            return ssl__op_error_status(nd, SSL_ERR_INVALID, "shape %s has a negative dim",
                                        dims_str(want, r, s, sizeof s));
        } else {
            known *= want[i];
        }
    }
    for (int i = 0; i < r; i++)
        shape[i] = want[i];
    if (infer >= 0) {
        if (known == 0 || x->numel % known != 0)
            return ssl__op_error(nd, "cannot reshape %lld elements into %s", (long long)x->numel,
                                 dims_str(want, r, s, sizeof s));
        shape[infer] = x->numel / known;
    } else if (known != x->numel) {
        return ssl__op_error(nd, "cannot reshape %lld elements into %s", (long long)x->numel,
                             dims_str(want, r, s, sizeof s));
    }
    *ndim = r;
    return SSL_OK;
}

static int reshape_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    (void)nd; /* the output aliases the input's data (SSL_OPF_ALIAS) */
    return SSL_OK;
}

/* The gradient is a view too: an input without a gradient yet takes the output's buffer
 * (ssl__grad_take; a reshape of the (B, T, 3C) qkv activations saves zeroing and adding 5 MB). */
static void reshape_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    int fresh;
    float *dx = ssl__grad_take(ctx, nd->in[0], nd->out, &fresh);
    if (dx && !fresh)
        copy_flat(dx, nd->out->grad, nd->out->numel, 1);
}

const ssl_op_def_t ssl_opdef_reshape = {
    "reshape", 0, reshape_shape, reshape_forward, reshape_backward, SSL_OPF_ALIAS};

ssl_tensor_t *ssl_reshape(ssl_ctx_t *ctx, ssl_tensor_t *x, int ndim, const int64_t *shape)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_RESHAPE, 1, x);
    n.ia[0] = ndim;
    if (ndim > 0 && ndim <= SSL_MAX_DIMS) {
        if (shape)
            for (int i = 0; i < ndim; i++)
                n.ia[1 + i] = shape[i];
        else
            n.ia[6] = 1;
    }
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- permute */

/* Drop size-1 dims and merge input dims that stay adjacent and in order, so that e.g.
 * (B, T, H, D) -> (B, H, T, D) stays rank 4 but (N, C, H, W) -> (N, H, W, C) becomes the
 * rank-3 (N, C, HW) -> (N, HW, C). Writes the reduced input shape s and perm p; returns the
 * reduced rank (0 when every dim is 1). */
static int perm_simplify(int nd, const int64_t *shape, const int *perm, int64_t *s, int *p)
{
    int map[SSL_MAX_DIMS], p1[SSL_MAX_DIMS], r = 0;
    int64_t s1[SSL_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        map[d] = shape[d] == 1 ? -1 : r;
        if (shape[d] != 1)
            s1[r++] = shape[d];
    }
    int m = 0;
    for (int j = 0; j < nd; j++)
        if (map[perm[j]] >= 0)
            p1[m++] = map[perm[j]];
    int gstart[SSL_MAX_DIMS], glen[SSL_MAX_DIMS], ng = 0;
    for (int j = 0; j < r;) {
        int k = j + 1;
        while (k < r && p1[k] == p1[k - 1] + 1)
            k++;
        gstart[ng] = p1[j];
        glen[ng++] = k - j;
        j = k;
    }
    for (int g = 0; g < ng; g++) {
        int rank = 0;
        for (int h = 0; h < ng; h++)
            rank += gstart[h] < gstart[g];
        int64_t sz = 1;
        for (int d = gstart[g]; d < gstart[g] + glen[g]; d++)
            sz *= s1[d];
        s[rank] = sz;
        p[g] = rank;
    }
    return ng;
}

enum { PT_TILE = 32 };

#if defined(__AVX__)
/* One 8x8 block in registers: d[b * ldd + a] (+)= s[a * lds + b]. */
static inline void transpose8(float *d, int64_t ldd, const float *s, int64_t lds, int acc)
{
    __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + lds);
    __m256 r2 = _mm256_loadu_ps(s + 2 * lds), r3 = _mm256_loadu_ps(s + 3 * lds);
    __m256 r4 = _mm256_loadu_ps(s + 4 * lds), r5 = _mm256_loadu_ps(s + 5 * lds);
    __m256 r6 = _mm256_loadu_ps(s + 6 * lds), r7 = _mm256_loadu_ps(s + 7 * lds);
    /* interleave row pairs, then 2x2 blocks within 128-bit lanes, then swap lanes */
    __m256 a0 = _mm256_unpacklo_ps(r0, r1), a1 = _mm256_unpackhi_ps(r0, r1);
    __m256 a2 = _mm256_unpacklo_ps(r2, r3), a3 = _mm256_unpackhi_ps(r2, r3);
    __m256 a4 = _mm256_unpacklo_ps(r4, r5), a5 = _mm256_unpackhi_ps(r4, r5);
    __m256 a6 = _mm256_unpacklo_ps(r6, r7), a7 = _mm256_unpackhi_ps(r6, r7);
    __m256 b0 = _mm256_shuffle_ps(a0, a2, 0x44), b1 = _mm256_shuffle_ps(a0, a2, 0xEE);
    __m256 b2 = _mm256_shuffle_ps(a1, a3, 0x44), b3 = _mm256_shuffle_ps(a1, a3, 0xEE);
    __m256 b4 = _mm256_shuffle_ps(a4, a6, 0x44), b5 = _mm256_shuffle_ps(a4, a6, 0xEE);
    __m256 b6 = _mm256_shuffle_ps(a5, a7, 0x44), b7 = _mm256_shuffle_ps(a5, a7, 0xEE);
    __m256 o[8] = {_mm256_permute2f128_ps(b0, b4, 0x20), _mm256_permute2f128_ps(b1, b5, 0x20),
                   _mm256_permute2f128_ps(b2, b6, 0x20), _mm256_permute2f128_ps(b3, b7, 0x20),
                   _mm256_permute2f128_ps(b0, b4, 0x31), _mm256_permute2f128_ps(b1, b5, 0x31),
                   _mm256_permute2f128_ps(b2, b6, 0x31), _mm256_permute2f128_ps(b3, b7, 0x31)};
    for (int k = 0; k < 8; k++) {
        float *dk = d + k * ldd;
        _mm256_storeu_ps(dk, acc ? _mm256_add_ps(_mm256_loadu_ps(dk), o[k]) : o[k]);
    }
}
#endif

/* dst[j * ldd + i] (+)= src[i * lds + j] for i in [i0, i1), j in [j0, j1). */
static void transpose_tile(float *dst, int64_t ldd, const float *src, int64_t lds, int64_t i0,
                           int64_t i1, int64_t j0, int64_t j1, int acc)
{
    int64_t ie = i0, je = j0; /* end of the part done in 8x8 blocks */
#if defined(__AVX__)
    ie = i0 + (i1 - i0) / 8 * 8;
    je = j0 + (j1 - j0) / 8 * 8;
    for (int64_t i = i0; i < ie; i += 8)
        for (int64_t j = j0; j < je; j += 8)
            transpose8(dst + j * ldd + i, ldd, src + i * lds + j, lds, acc);
#endif
    /* ragged edges (everything without AVX): output row j, contiguous in i */
    for (int64_t j = j0; j < j1; j++) {
        float *drow = dst + j * ldd;
        const float *scol = src + j;
        int64_t from = j < je ? ie : i0;
        if (acc)
            for (int64_t i = from; i < i1; i++)
                drow[i] += scol[i * lds];
        else
            for (int64_t i = from; i < i1; i++)
                drow[i] = scol[i * lds];
    }
}

/* dst (+)= src permuted: dst's dim j is src's dim perm[j]. src has shape `shape`. */
static void permute_kernel(float *dst, const float *src, int nd, const int64_t *shape,
                           const int *perm, int acc)
{
    int64_t numel = 1;
    for (int d = 0; d < nd; d++)
        numel *= shape[d];
    if (numel == 0)
        return;
    int64_t s[SSL_MAX_DIMS];
    int p[SSL_MAX_DIMS];
    int r = perm_simplify(nd, shape, perm, s, p);
    int identity = 1;
    for (int j = 0; j < r; j++)
        identity &= p[j] == j;
    if (identity) {
        copy_flat(dst, src, numel, acc);
        return;
    }
    /* r >= 2 from here. Input strides by input dim; output shape/strides by output dim. */
    int64_t is[SSL_MAX_DIMS], os[SSL_MAX_DIMS], ost[SSL_MAX_DIMS];
    is[r - 1] = 1;
    for (int d = r - 2; d >= 0; d--)
        is[d] = is[d + 1] * s[d + 1];
    for (int j = 0; j < r; j++)
        os[j] = s[p[j]];
    ost[r - 1] = 1;
    for (int j = r - 2; j >= 0; j--)
        ost[j] = ost[j + 1] * os[j + 1];

    if (p[r - 1] != r - 1) {
        /* The innermost dim moves: tiled 2-D transposes of the (M, N) planes formed by input
         * dim a (the output's innermost) and the input's innermost dim (output position q).
         * All other dims (at most 3) index the planes. */
        int a = p[r - 1], q = 0;
        for (int j = 0; j < r; j++)
            if (p[j] == r - 1)
                q = j;
        int64_t M = s[a], N = s[r - 1], lds = is[a], ldd = ost[q];
        int64_t osz[SSL_MAX_DIMS], oin[SSL_MAX_DIMS], oout[SSL_MAX_DIMS];
        int no = 0;
        for (int j = 0; j < r; j++)
            if (j != q && j != r - 1) {
                osz[no] = os[j];
                oin[no] = is[p[j]];
                oout[no++] = ost[j];
            }
        /* Square tiles, stretched along the long side when the other is short (e.g. the 3
         * channels of NCHW -> NHWC) so that a tile still moves about PT_TILE^2 floats. */
        int64_t bi = PT_TILE, bj = PT_TILE;
        if (M < PT_TILE)
            bj = PT_TILE * PT_TILE / M / 8 * 8;
        else if (N < PT_TILE)
            bi = PT_TILE * PT_TILE / N / 8 * 8;
        int64_t tm = (M + bi - 1) / bi, tn = (N + bj - 1) / bj;
        int64_t planes = numel / (M * N), tasks = planes * tm * tn;
#pragma omp parallel for schedule(static) if (numel > SSL_OMP_MIN)
        for (int64_t t = 0; t < tasks; t++) {
            int64_t pl = t / (tm * tn), ti = (t / tn) % tm, tj = t % tn;
            int64_t bin = 0, bout = 0, rem = pl;
            for (int k = no - 1; k >= 0; k--) {
                int64_t c = rem % osz[k];
                rem /= osz[k];
                bin += c * oin[k];
                bout += c * oout[k];
            }
            int64_t i0 = ti * bi, i1 = i0 + bi < M ? i0 + bi : M;
            int64_t j0 = tj * bj, j1 = j0 + bj < N ? j0 + bj : N;
            transpose_tile(dst + bout, ldd, src + bin, lds, i0, i1, j0, j1, acc);
        }
        return;
    }

    /* The innermost dim stays: copy contiguous rows of `inner` floats; blocks of rows walk
     * the output index with an odometer so the decomposition is paid once per block. */
    int64_t inner = s[r - 1], rows = numel / inner;
    int64_t per = inner >= 4096 ? 1 : 4096 / inner;
    int64_t nblk = (rows + per - 1) / per;
    int ro = r - 1; /* output dims that index rows */
#pragma omp parallel for schedule(static) if (numel > SSL_OMP_MIN)
    for (int64_t b = 0; b < nblk; b++) {
        int64_t r0 = b * per, r1 = r0 + per < rows ? r0 + per : rows;
        int64_t c[SSL_MAX_DIMS], rem = r0, off = 0;
        for (int k = ro - 1; k >= 0; k--) {
            c[k] = rem % os[k];
            rem /= os[k];
            off += c[k] * is[p[k]];
        }
        float *d = dst + r0 * inner;
        for (int64_t row = r0; row < r1; row++, d += inner) {
            const float *sp = src + off;
            if (acc)
                for (int64_t i = 0; i < inner; i++)
                    d[i] += sp[i];
            else
                memcpy(d, sp, (size_t)inner * sizeof(float));
            for (int k = ro - 1; k >= 0; k--) { /* next row */
                off += is[p[k]];
                if (++c[k] < os[k])
                    break;
                off -= c[k] * is[p[k]];
                c[k] = 0;
            }
        }
    }
}

/* ia[0..ndim-1] = perm. */
static int permute_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0];
    if (nd->ia[7])
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "perm is NULL");
    int seen[SSL_MAX_DIMS] = {0}, ok = 1;
    for (int j = 0; j < x->ndim; j++) {
        int64_t d = nd->ia[j];
        if (d < 0 || d >= x->ndim || seen[d])
            ok = 0;
        else
            seen[d] = 1;
    }
    if (!ok) {
        char s[128];
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "perm %s is not a permutation of 0..%d",
                                    dims_str(nd->ia, x->ndim, s, sizeof s), x->ndim - 1);
    }
    *ndim = x->ndim;
    for (int j = 0; j < x->ndim; j++)
        shape[j] = x->shape[nd->ia[j]];
    return SSL_OK;
}

static int permute_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    const ssl_tensor_t *x = nd->in[0];
    int perm[SSL_MAX_DIMS];
    for (int j = 0; j < x->ndim; j++)
        perm[j] = (int)nd->ia[j];
    permute_kernel(nd->out->data, x->data, x->ndim, x->shape, perm, 0);
    return SSL_OK;
}

static void permute_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    ssl_tensor_t *x = nd->in[0];
    float *dx = ssl__grad(ctx, x);
    if (!dx)
        return;
    int inv[SSL_MAX_DIMS];
    for (int j = 0; j < x->ndim; j++)
        inv[nd->ia[j]] = j;
    permute_kernel(dx, nd->out->grad, nd->out->ndim, nd->out->shape, inv, 1);
}

const ssl_op_def_t ssl_opdef_permute = {"permute",        0, permute_shape, permute_forward,
                                        permute_backward, 0};

ssl_tensor_t *ssl_permute(ssl_ctx_t *ctx, ssl_tensor_t *x, const int *perm)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_PERMUTE, 1, x);
    if (x && perm)
        for (int j = 0; j < x->ndim; j++)
            n.ia[j] = perm[j];
    n.ia[7] = x && x->ndim > 0 && !perm;
    return ssl__apply(ctx, &n);
}

ssl_tensor_t *ssl_upsample_nearest2d(ssl_ctx_t *ctx, ssl_tensor_t *x, int scale)
{
    if (SSL__NULL_INPUT(x, __func__))
        return NULL;
    if (x->ndim != 4 || scale < 1) {
        char s[96];
        ssl_set_error(SSL_ERR_SHAPE, "upsample_nearest2d: x %s must be (N, C, H, W) and scale %d "
                      ">= 1", ssl_shape_str(x, s, sizeof s), scale);
        return NULL;
    }
    int64_t NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    ssl_tensor_t *y = ssl_reshape(ctx, x, 5, (int64_t[]){NC, H, 1, W, 1});
    y = ssl_add(ctx, y, ssl_tensor_zeros(ctx, 5, (int64_t[]){NC, H, scale, W, scale}));
    return ssl_reshape(ctx, y, 4, (int64_t[]){x->shape[0], x->shape[1], H * scale, W * scale});
}

ssl_tensor_t *ssl_transpose(ssl_ctx_t *ctx, ssl_tensor_t *x, int d0, int d1)
{
    int perm[SSL_MAX_DIMS] = {0};
    if (!x)
        return ssl_permute(ctx, x, perm); /* keeps the earlier error */
    int a = ssl__axis(d0, x->ndim), b = ssl__axis(d1, x->ndim);
    if (a < 0 || b < 0) {
        char s[96];
        ssl_set_error(SSL_ERR_INVALID, "transpose(%s): dims %d and %d, rank is %d",
                      ssl_shape_str(x, s, sizeof s), d0, d1, x->ndim);
        return NULL;
    }
    for (int j = 0; j < x->ndim; j++)
        perm[j] = j;
    perm[a] = b;
    perm[b] = a;
    return ssl_permute(ctx, x, perm);
}

/* ---------------------------------------------------------------- concat */

/* ia[0] = axis as given. Inputs in n->in[0..n_in-1]. */
static int concat_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x0 = nd->in[0];
    int axis = ssl__axis((int)nd->ia[0], x0->ndim);
    if (axis < 0)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "axis %d out of range for rank %d",
                                    (int)nd->ia[0], x0->ndim);
    int64_t total = 0;
    for (int i = 0; i < nd->n_in; i++) {
        const ssl_tensor_t *xi = nd->in[i];
        int same = xi->ndim == x0->ndim;
        for (int d = 0; same && d < x0->ndim; d++)
            same = d == axis || xi->shape[d] == x0->shape[d];
        if (!same) {
            char s0[96], si[96];
            return ssl__op_error(nd, "input 0 %s and input %d %s differ outside axis %d",
                                 ssl_shape_str(x0, s0, sizeof s0), i,
                                 ssl_shape_str(xi, si, sizeof si), axis);
        }
        total += xi->shape[axis];
    }
    *ndim = x0->ndim;
    for (int d = 0; d < x0->ndim; d++)
        shape[d] = x0->shape[d];
    shape[axis] = total;
    return SSL_OK;
}

static int concat_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    ssl_tensor_t *y = nd->out; // (outer, total, inner)
    int axis = ssl__axis((int)nd->ia[0], y->ndim);
    int64_t outer, total, inner;
    ssl__outer_dim_inner(y, axis, &outer, &total, &inner);
    int64_t off = 0;
    for (int i = 0; i < nd->n_in; i++) {
        int64_t len = nd->in[i]->shape[axis] * inner;
        copy_rows(y->data + off, total * inner, nd->in[i]->data, len, outer, len, 0);
        off += len;
    }
    return SSL_OK;
}

static void concat_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    ssl_tensor_t *y = nd->out;
    int axis = ssl__axis((int)nd->ia[0], y->ndim);
    int64_t outer, total, inner;
    ssl__outer_dim_inner(y, axis, &outer, &total, &inner);
    int64_t off = 0;
    /* One input at a time, so an input passed twice accumulates without a race. */
    for (int i = 0; i < nd->n_in; i++) {
        int64_t len = nd->in[i]->shape[axis] * inner;
        float *dx = ssl__grad(ctx, nd->in[i]);
        if (dx)
            copy_rows(dx, len, y->grad + off, total * inner, outer, len, 1);
        off += len;
    }
}

const ssl_op_def_t ssl_opdef_concat = {"concat",        0, concat_shape, concat_forward,
                                       concat_backward, 0};

ssl_tensor_t *ssl_concat(ssl_ctx_t *ctx, ssl_tensor_t *const *xs, int n, int axis)
{
    if (!ctx || !xs || n < 1) {
        ssl_set_error(SSL_ERR_INVALID, "concat: %s",
                      !ctx  ? "NULL context"
                      : !xs ? "NULL input array"
                            : "needs at least one input");
        return NULL;
    }
    ssl_node_t nd;
    ssl__node_init(&nd, SSL_OP_CONCAT, 0);
    nd.n_in = n;
    if (n > SSL_NODE_INLINE_IN) {
        /* The tape keeps this array until the context is reset. */
        nd.in = ssl_arena_alloc(ctx, (size_t)n * sizeof *nd.in);
        if (!nd.in)
            return NULL;
    }
    for (int i = 0; i < n; i++)
        nd.in[i] = xs[i];
    nd.ia[0] = axis;
    return ssl__apply(ctx, &nd);
}

/* ---------------------------------------------------------------- slice */

/* ia[0] = axis as given, ia[1] = start, ia[2] = len. */
static int slice_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0];
    int axis = ssl__axis((int)nd->ia[0], x->ndim);
    int64_t start = nd->ia[1], len = nd->ia[2];
    if (axis < 0 || start < 0 || len < 0 || start > x->shape[axis] - len)
        return ssl__op_error_status(nd, SSL_ERR_INVALID,
                                    "axis %d, start %lld, len %lld out of range", (int)nd->ia[0],
                                    (long long)start, (long long)len);
    *ndim = x->ndim;
    for (int d = 0; d < x->ndim; d++)
        shape[d] = x->shape[d];
    shape[axis] = len;
    return SSL_OK;
}

static int slice_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    const ssl_tensor_t *x = nd->in[0];
    int axis = ssl__axis((int)nd->ia[0], x->ndim);
    int64_t outer, dim, inner, start = nd->ia[1], len = nd->ia[2];
    ssl__outer_dim_inner(x, axis, &outer, &dim, &inner);
    copy_rows(nd->out->data, len * inner, x->data + start * inner, dim * inner, outer, len * inner,
              0);
    return SSL_OK;
}

static void slice_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    ssl_tensor_t *x = nd->in[0];
    float *dx = ssl__grad(ctx, x);
    if (!dx)
        return;
    int axis = ssl__axis((int)nd->ia[0], x->ndim);
    int64_t outer, dim, inner, start = nd->ia[1], len = nd->ia[2];
    ssl__outer_dim_inner(x, axis, &outer, &dim, &inner);
    copy_rows(dx + start * inner, dim * inner, nd->out->grad, len * inner, outer, len * inner, 1);
}

const ssl_op_def_t ssl_opdef_slice = {"slice", 0, slice_shape, slice_forward, slice_backward, 0};

ssl_tensor_t *ssl_slice(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis, int64_t start, int64_t len)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_SLICE, 1, x);
    n.ia[0] = axis;
    n.ia[1] = start;
    n.ia[2] = len;
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- split */

int ssl_split(ssl_ctx_t *ctx, ssl_tensor_t *x, int axis, int n, ssl_tensor_t **out)
{
    if (!out || n < 1)
        return ssl_set_error(SSL_ERR_INVALID, "split: %s",
                             !out ? "NULL output array" : "needs at least one part");
    for (int i = 0; i < n; i++)
        out[i] = NULL;
    if (!x)
        return ssl__null_input("split", "x");
    char s[96];
    int a = ssl__axis(axis, x->ndim);
    if (a < 0)
        return ssl_set_error(SSL_ERR_INVALID, "split(%s): axis %d out of range",
                             ssl_shape_str(x, s, sizeof s), axis);
    if (x->shape[a] % n != 0)
        return ssl_set_error(SSL_ERR_SHAPE,
                             "split(%s): dim %d of size %lld does not split into %d equal parts",
                             ssl_shape_str(x, s, sizeof s), a, (long long)x->shape[a], n);
    int64_t len = x->shape[a] / n;
    for (int i = 0; i < n; i++) {
        out[i] = ssl_slice(ctx, x, a, i * len, len);
        if (!out[i]) {
            for (int j = 0; j < i; j++)
                out[j] = NULL;
            return ssl_last_status();
        }
    }
    return SSL_OK;
}
