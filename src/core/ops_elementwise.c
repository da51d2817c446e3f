/* Elementwise ops: add, sub, mul, div with numpy broadcasting, scale, and the unary maps
 * (exp, log, sqrt, pow, clamp, relu, leaky_relu, gelu, sigmoid, tanh).
 *
 * Broadcasting works on a "collapsed geometry": size-1 output dims are dropped and adjacent
 * dims are merged whenever both operands stay contiguous (or stay broadcast) across them. The
 * common cases then become trivial loops without special-casing each one:
 *   same shape               -> 1 dim, one contiguous loop
 *   (B, T, C) + (C)          -> (B*T, C), b stride 0 along rows: bias rows
 *   (N, C, H, W) + (1,C,1,1) -> (N, C, H*W), b a scalar per inner run
 * and anything else (outer products, middle-dim broadcasts, a broadcast instead of b) runs the
 * same strided walker. The innermost run is a contiguous loop specialised on whether each
 * operand is contiguous or a scalar there, so the compiler can vectorise it.
 *
 * Backward reduces the gradient over the broadcast dims with one double accumulator per
 * gradient element, summed in a fixed order, so results do not depend on the thread count. */
#include "core_internal.h"
#include "fast_math.h"

#include <math.h>
#include <string.h>

/* ================================================================ broadcasting machinery */

enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV };

/* Output elements per parallel work item of the strided walker. */
#define BC_CHUNK 8192
/* Columns per work item when reducing a gradient onto a trailing kept dim. */
#define RED_COLS 256

typedef struct bc_geom {
    int nd;                                     /* collapsed dims, >= 1 */
    int64_t n[SSL_MAX_DIMS];                    /* sizes */
    int64_t sa[SSL_MAX_DIMS], sb[SSL_MAX_DIMS]; /* element strides, 0 = broadcast */
    int64_t numel;
} bc_geom_t;

/* Strides of t viewed with the output's rank nd and shape: 0 where t is broadcast. */
static void bc_strides(const ssl_tensor_t *t, int nd, const int64_t *oshape, int64_t *st)
{
    int off = nd - t->ndim;
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int j = i - off;
        if (j < 0) {
            st[i] = 0;
            continue;
        }
        st[i] = (t->shape[j] == 1 && oshape[i] != 1) ? 0 : s;
        s *= t->shape[j];
    }
}

static void bc_geom(bc_geom_t *g, int nd, const int64_t *shape, const int64_t *sa,
                    const int64_t *sb)
{
    int k = 0;
    g->numel = 1;
    for (int i = 0; i < nd; i++) {
        g->numel *= shape[i];
        if (shape[i] == 1)
            continue;
        if (k > 0 && g->sa[k - 1] == sa[i] * shape[i] && g->sb[k - 1] == sb[i] * shape[i]) {
            g->n[k - 1] *= shape[i];
            g->sa[k - 1] = sa[i];
            g->sb[k - 1] = sb[i];
            continue;
        }
        g->n[k] = shape[i];
        g->sa[k] = sa[i];
        g->sb[k] = sb[i];
        k++;
    }
    if (k == 0) { /* every dim is 1: one element */
        g->n[0] = 1;
        g->sa[0] = g->sb[0] = 0;
        k = 1;
    }
    g->nd = k;
}

/* Geometry of an op whose inputs are (t0, t1) broadcast to `out`; t0 == NULL means an
 * out-shaped contiguous operand (the upstream gradient). */
static void bc_geom_for(bc_geom_t *g, const ssl_tensor_t *out, const ssl_tensor_t *t0,
                        const ssl_tensor_t *t1)
{
    int64_t sa[SSL_MAX_DIMS], sb[SSL_MAX_DIMS];
    bc_strides(t0 ? t0 : out, out->ndim, out->shape, sa);
    bc_strides(t1, out->ndim, out->shape, sb);
    bc_geom(g, out->ndim, out->shape, sa, sb);
}

/* One inner run: y[i] (=|+=) a[i*sa] op b[i*sb], sa and sb in {0, 1}. */
#define BC_RUN(EXPR)                                                                               \
    do {                                                                                           \
        if (sa == 1 && sb == 1) {                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                      \
                float x = a[i], z = b[i];                                                          \
                BC_STORE(EXPR);                                                                    \
            }                                                                                      \
        } else if (sa == 1) {                                                                      \
            const float z = b[0];                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                      \
                float x = a[i];                                                                    \
                BC_STORE(EXPR);                                                                    \
            }                                                                                      \
        } else if (sb == 1) {                                                                      \
            const float x = a[0];                                                                  \
            for (int64_t i = 0; i < n; i++) {                                                      \
                float z = b[i];                                                                    \
                BC_STORE(EXPR);                                                                    \
            }                                                                                      \
        } else {                                                                                   \
            const float x = a[0], z = b[0];                                                        \
            for (int64_t i = 0; i < n; i++)                                                        \
                BC_STORE(EXPR);                                                                    \
        }                                                                                          \
    } while (0)

static void bc_inner_set(int op, float *restrict y, const float *restrict a, int64_t sa,
                         const float *restrict b, int64_t sb, int64_t n)
{
#define BC_STORE(v) y[i] = (v)
    switch (op) {
    case BIN_ADD:
        BC_RUN(x + z);
        break;
    case BIN_SUB:
        BC_RUN(x - z);
        break;
    case BIN_MUL:
        BC_RUN(x * z);
        break;
    default:
        BC_RUN(x / z);
        break;
    }
#undef BC_STORE
}

static void bc_inner_acc(int op, float *restrict y, const float *restrict a, int64_t sa,
                         const float *restrict b, int64_t sb, int64_t n)
{
#define BC_STORE(v) y[i] += (v)
    switch (op) {
    case BIN_ADD:
        BC_RUN(x + z);
        break;
    case BIN_SUB:
        BC_RUN(x - z);
        break;
    case BIN_MUL:
        BC_RUN(x * z);
        break;
    default:
        BC_RUN(x / z);
        break;
    }
#undef BC_STORE
}
#undef BC_RUN

/* y (out-shaped, contiguous) = a op b, or += with acc, walking the collapsed geometry in
 * chunks of BC_CHUNK output elements; a chunk may start and end inside an inner run. */
static void bc_apply(int op, int acc, float *y, const float *a, const float *b, const bc_geom_t *g)
{
    const int nd = g->nd;
    const int64_t inner = g->n[nd - 1], isa = g->sa[nd - 1], isb = g->sb[nd - 1];
    const int64_t numel = g->numel, nchunk = (numel + BC_CHUNK - 1) / BC_CHUNK;
#pragma omp parallel for schedule(static) if (numel > SSL_OMP_MIN)
    for (int64_t c = 0; c < nchunk; c++) {
        int64_t lo = c * BC_CHUNK, hi = lo + BC_CHUNK < numel ? lo + BC_CHUNK : numel;
        int64_t row = lo / inner, pos = lo % inner;
        int64_t idx[SSL_MAX_DIMS] = {0}, oa = 0, ob = 0;
        for (int d = nd - 2; d >= 0; d--) {
            idx[d] = row % g->n[d];
            row /= g->n[d];
            oa += idx[d] * g->sa[d];
            ob += idx[d] * g->sb[d];
        }
        for (int64_t i = lo; i < hi;) {
            int64_t len = inner - pos < hi - i ? inner - pos : hi - i;
            if (acc)
                bc_inner_acc(op, y + i, a + oa + pos * isa, isa, b + ob + pos * isb, isb, len);
            else
                bc_inner_set(op, y + i, a + oa + pos * isa, isa, b + ob + pos * isb, isb, len);
            i += len;
            pos = 0;
            for (int d = nd - 2; d >= 0; d--) { /* next row: odometer over the outer dims */
                idx[d]++;
                oa += g->sa[d];
                ob += g->sb[d];
                if (idx[d] < g->n[d])
                    break;
                oa -= idx[d] * g->sa[d];
                ob -= idx[d] * g->sb[d];
                idx[d] = 0;
            }
        }
    }
}

/* Advance an odometer over dims n[0..k) (last fastest), keeping offset o in step with
 * strides s. */
static inline void odo_next(int k, const int64_t *n, const int64_t *s, int64_t *idx, int64_t *o)
{
    for (int d = k - 1; d >= 0; d--) {
        idx[d]++;
        *o += s[d];
        if (idx[d] < n[d])
            return;
        *o -= idx[d] * s[d];
        idx[d] = 0;
    }
}

/* dst (x's shape) += sign * src (out-shaped) summed over the dims along which x is broadcast.
 * Every dst element is one double sum over its source elements in increasing index order
 * (a single ssl__sum_f32 when x is a scalar), whatever the thread count. */
static void bc_reduce(float *dst, const float *src, float sign, const ssl_tensor_t *out,
                      const ssl_tensor_t *x)
{
    bc_geom_t g; /* sa: src strides (contiguous), sb: dst strides (0 on reduced dims) */
    bc_geom_for(&g, out, NULL, x);
    if (g.numel == 0)
        return;
    if (x->numel == 1) {
        dst[0] += sign * (float)ssl__sum_f32(src, g.numel);
        return;
    }
    /* Split the collapsed dims into kept (x not broadcast) and reduced ones; the innermost
     * dim is handled by the kernels below, not by an odometer. */
    int last = g.nd - 1, inner_kept = g.sb[last] != 0;
    int nk = 0, nr = 0;
    int64_t kn[SSL_MAX_DIMS], ks[SSL_MAX_DIMS], kd[SSL_MAX_DIMS];
    int64_t rn[SSL_MAX_DIMS], rs[SSL_MAX_DIMS];
    int64_t nkept = 1, nred = 1;
    for (int d = 0; d < last; d++) {
        if (g.sb[d]) {
            kn[nk] = g.n[d], ks[nk] = g.sa[d], kd[nk] = g.sb[d], nk++;
            nkept *= g.n[d];
        } else {
            rn[nr] = g.n[d], rs[nr] = g.sa[d], nr++;
            nred *= g.n[d];
        }
    }
    const int64_t inner = g.n[last];
    /* Narrower column blocks when there are few kept rows (a bias gradient), so the threads
     * get balanced work; blocking never changes the order of any element's sum. */
    int64_t cols = RED_COLS;
    while (inner_kept && cols > 64 && nkept * ((inner + cols - 1) / cols) < 32)
        cols /= 2;
    const int64_t ncb = inner_kept ? (inner + cols - 1) / cols : 1;
    const int64_t nwork = nkept * ncb;
#pragma omp parallel for schedule(static) if (g.numel > SSL_OMP_MIN)
    for (int64_t w = 0; w < nwork; w++) {
        int64_t kw = w / ncb, cb = w % ncb;
        int64_t so = 0, dof = 0; /* source and destination offsets of this kept index */
        for (int d = nk - 1; d >= 0; d--) {
            int64_t i = kw % kn[d];
            kw /= kn[d];
            so += i * ks[d];
            dof += i * kd[d];
        }
        int64_t ridx[SSL_MAX_DIMS] = {0}, ro = 0;
        if (inner_kept) { /* columns c0..c1 of a kept inner run, summed over reduced dims */
            int64_t c0 = cb * cols, nc = inner - c0 < cols ? inner - c0 : cols;
            double acc[RED_COLS];
            for (int64_t c = 0; c < nc; c++)
                acc[c] = 0;
            for (int64_t r = 0; r < nred; r++) {
                const float *s = src + so + ro + c0;
                for (int64_t c = 0; c < nc; c++)
                    acc[c] += s[c];
                odo_next(nr, rn, rs, ridx, &ro);
            }
            for (int64_t c = 0; c < nc; c++)
                dst[dof + c0 + c] += sign * (float)acc[c];
        } else { /* one element: the reduced inner runs of all reduced outer indices */
            double acc = 0;
            for (int64_t r = 0; r < nred; r++) {
                const float *s = src + so + ro;
                for (int64_t c = 0; c < inner; c++)
                    acc += s[c];
                odo_next(nr, rn, rs, ridx, &ro);
            }
            dst[dof] += sign * (float)acc;
        }
    }
}

/* ================================================================ add, sub, mul, div */

static int binary_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *a = nd->in[0], *b = nd->in[1];
    int r = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < r; i++) { /* aligned from the right */
        int ia = i - (r - a->ndim), ib = i - (r - b->ndim);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return ssl__op_error(nd,
                                 "shapes do not broadcast: dim %d from the right is %lld "
                                 "vs %lld",
                                 r - i, (long long)da, (long long)db);
        shape[i] = da == 1 ? db : da;
    }
    *ndim = r;
    return SSL_OK;
}

static int bin_kind(const ssl_node_t *nd)
{
    switch (nd->op) {
    case SSL_OP_ADD:
        return BIN_ADD;
    case SSL_OP_SUB:
        return BIN_SUB;
    case SSL_OP_MUL:
        return BIN_MUL;
    default:
        return BIN_DIV;
    }
}

static int binary_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    bc_geom_t g;
    bc_geom_for(&g, nd->out, nd->in[0], nd->in[1]);
    if (g.numel)
        bc_apply(bin_kind(nd), 0, nd->out->data, nd->in[0]->data, nd->in[1]->data, &g);
    return SSL_OK;
}

/* dx += sign * g when x is out-shaped (dx = sign * g when fresh: dx not initialised), else the
 * reduction of sign * g onto x. */
static void grad_pass(float *dx, const float *g, float sign, const ssl_tensor_t *out,
                      const ssl_tensor_t *x, int fresh)
{
    const int64_t n = out->numel;
    if (x->numel != n) {
        bc_reduce(dx, g, sign, out, x);
    } else if (fresh) {
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
        for (int64_t i = 0; i < n; i++)
            dx[i] = sign * g[i];
    } else if (sign > 0) {
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
        for (int64_t i = 0; i < n; i++)
            dx[i] += g[i];
    } else {
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
        for (int64_t i = 0; i < n; i++)
            dx[i] -= g[i];
    }
}

/* dx += g op other (other broadcast), reducing onto x's shape when x is broadcast. */
static void grad_product(ssl_ctx_t *ctx, int op, float *dx, const ssl_tensor_t *x,
                         const ssl_tensor_t *other, const ssl_tensor_t *out)
{
    bc_geom_t geo;
    bc_geom_for(&geo, out, NULL, other);
    if (x->numel == out->numel) {
        bc_apply(op, 1, dx, out->grad, other->data, &geo);
        return;
    }
    float *t = ssl_arena_alloc(ctx, (size_t)out->numel * sizeof(float)); // out-shaped
    if (!t)
        return; /* the context records the failure; backward reports it */
    bc_apply(op, 0, t, out->grad, other->data, &geo);
    bc_reduce(dx, t, 1.0f, out, x);
}

static void binary_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    ssl_tensor_t *a = nd->in[0], *b = nd->in[1], *out = nd->out;
    const float *g = out->grad;
    const int64_t n = out->numel;
    if (n == 0)
        return;
    const int kind = bin_kind(nd);
    if (kind == BIN_ADD || kind == BIN_SUB) {
        /* An out-shaped input without a gradient yet takes g's buffer (nothing to compute);
         * at most one input may take it. */
        int took = 0, tb = 0, fresh = 0;
        float *da = ssl__grad_take(ctx, a, out, &took);
        if (da && !took)
            grad_pass(da, g, 1.0f, out, a, 0);
        float *db;
        if (kind == BIN_ADD && !took)
            db = ssl__grad_take(ctx, b, out, &tb);
        else if (b->numel == n) /* stored, not zeroed and added */
            db = ssl__grad_write(ctx, b, &fresh);
        else
            db = ssl__grad(ctx, b);
        if (db && !tb)
            grad_pass(db, g, kind == BIN_SUB ? -1.0f : 1.0f, out, b, fresh);
        return;
    }
    float *da = ssl__grad(ctx, a), *db = ssl__grad(ctx, b);
    switch (kind) {
    case BIN_MUL:
        if (da)
            grad_product(ctx, BIN_MUL, da, a, b, out);
        if (db)
            grad_product(ctx, BIN_MUL, db, b, a, out);
        break;
    default: { /* y = a / b: da = g / b, db = -g a / b^2 = -(g / b) y */
        const float *y = out->data;
        if (da)
            grad_product(ctx, BIN_DIV, da, a, b, out);
        if (!db)
            break;
        if (b->numel == n) {
            const float *bd = b->data;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
            for (int64_t i = 0; i < n; i++)
                db[i] -= g[i] / bd[i] * y[i];
            break;
        }
        float *t = ssl_arena_alloc(ctx, (size_t)n * sizeof(float)); // out-shaped
        if (!t)
            break;
        bc_geom_t geo;
        bc_geom_for(&geo, out, NULL, b);
        bc_apply(BIN_DIV, 0, t, g, b->data, &geo);
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
        for (int64_t i = 0; i < n; i++)
            t[i] *= y[i];
        bc_reduce(db, t, -1.0f, out, b);
        break;
    }
    }
}

const ssl_op_def_t ssl_opdef_add = {"add", 0, binary_shape, binary_forward, binary_backward, 0};
const ssl_op_def_t ssl_opdef_sub = {"sub", 0, binary_shape, binary_forward, binary_backward, 0};
const ssl_op_def_t ssl_opdef_mul = {"mul", 0, binary_shape, binary_forward, binary_backward, 0};
const ssl_op_def_t ssl_opdef_div = {"div", 0, binary_shape, binary_forward, binary_backward, 0};

static ssl_tensor_t *binary(ssl_ctx_t *ctx, int op, ssl_tensor_t *a, ssl_tensor_t *b)
{
    ssl_node_t n;
    ssl__node_init(&n, op, 2, a, b);
    return ssl__apply(ctx, &n);
}

ssl_tensor_t *ssl_add(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b)
{
    return binary(ctx, SSL_OP_ADD, a, b);
}

ssl_tensor_t *ssl_sub(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b)
{
    return binary(ctx, SSL_OP_SUB, a, b);
}

ssl_tensor_t *ssl_mul(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b)
{
    return binary(ctx, SSL_OP_MUL, a, b);
}

ssl_tensor_t *ssl_div(ssl_ctx_t *ctx, ssl_tensor_t *a, ssl_tensor_t *b)
{
    return binary(ctx, SSL_OP_DIV, a, b);
}

/* ================================================================ unary ops */

/* Transcendental maps cost roughly this many simple flops per element: parallelise sooner. */
#define HEAVY 8

static int unary_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    const ssl_tensor_t *x = nd->in[0];
    *ndim = x->ndim;
    for (int i = 0; i < x->ndim; i++)
        shape[i] = x->shape[i];
    return SSL_OK;
}

static ssl_tensor_t *unary(ssl_ctx_t *ctx, int op, ssl_tensor_t *x)
{
    ssl_node_t n;
    ssl__node_init(&n, op, 1, x);
    return ssl__apply(ctx, &n);
}

/* clang-format cannot lay out _Pragma inside a macro. */
// clang-format off
/* Declares the forward of a unary op as y[i] = EXPR with v = x[i]; WORK_MUL is the cost
 * per element for the OpenMP threshold. */
#define UNARY_FORWARD(name, WORK_MUL, EXPR)                                                        \
    static int name##_forward(ssl_ctx_t *ctx, ssl_node_t *nd)                                      \
    {                                                                                              \
        (void)ctx;                                                                                 \
        const float *x = nd->in[0]->data;                                                          \
        float *y = nd->out->data;                                                                  \
        const int64_t n = nd->out->numel, work = n * (WORK_MUL);                                   \
        _Pragma("omp parallel for schedule(static) if (work > SSL_OMP_MIN)")                       \
        for (int64_t i = 0; i < n; i++) {                                                          \
            const float v = x[i];                                                                  \
            y[i] = (EXPR);                                                                         \
        }                                                                                          \
        return SSL_OK;                                                                             \
    }

/* Declares the backward as dx[i] += g[i] * DERIV, with v = x[i] and o = y[i] in scope (the
 * compiler drops whichever load DERIV does not use). */
#define UNARY_BACKWARD(name, WORK_MUL, DERIV)                                                      \
    static void name##_backward(ssl_ctx_t *ctx, ssl_node_t *nd)                                    \
    {                                                                                              \
        float *dx = ssl__grad(ctx, nd->in[0]);                                                     \
        if (!dx)                                                                                   \
            return;                                                                                \
        const float *x = nd->in[0]->data, *y = nd->out->data, *g = nd->out->grad;                  \
        const int64_t n = nd->out->numel, work = n * (WORK_MUL);                                   \
        _Pragma("omp parallel for schedule(static) if (work > SSL_OMP_MIN)")                       \
        for (int64_t i = 0; i < n; i++) {                                                          \
            const float v = x[i], o = y[i];                                                        \
            (void)v;                                                                               \
            (void)o;                                                                               \
            dx[i] += g[i] * (DERIV);                                                               \
        }                                                                                          \
    }

#define UNARY_OP(name, OPENUM)                                                                     \
    const ssl_op_def_t ssl_opdef_##name = {#name, 0, unary_shape, name##_forward,                  \
                                           name##_backward, 0};                                    \
    ssl_tensor_t *ssl_##name(ssl_ctx_t *ctx, ssl_tensor_t *x) { return unary(ctx, OPENUM, x); }
// clang-format on

/* ---------------------------------------------------------------- exp, log, sqrt */

UNARY_FORWARD(exp, HEAVY, expf(v))
UNARY_BACKWARD(exp, 1, o)
UNARY_OP(exp, SSL_OP_EXP)

UNARY_FORWARD(log, HEAVY, logf(v))
UNARY_BACKWARD(log, 1, 1.0f / v)
UNARY_OP(log, SSL_OP_LOG)

/* d sqrt(x) = 1 / (2 sqrt(x)): reuse the output (inf at x = 0, as PyTorch). */
UNARY_FORWARD(sqrt, 1, sqrtf(v))
UNARY_BACKWARD(sqrt, 1, 0.5f / o)
UNARY_OP(sqrt, SSL_OP_SQRT)

/* ---------------------------------------------------------------- relu, sigmoid, tanh */

/* Gradient 0 at x <= 0, as PyTorch. */
UNARY_FORWARD(relu, 1, v > 0.0f ? v : 0.0f)
UNARY_BACKWARD(relu, 1, v > 0.0f ? 1.0f : 0.0f)
UNARY_OP(relu, SSL_OP_RELU)

UNARY_FORWARD(sigmoid, HEAVY, ssl__sigmoidf(v))
UNARY_BACKWARD(sigmoid, 1, (1.0f - o) * o)
UNARY_OP(sigmoid, SSL_OP_SIGMOID)

UNARY_FORWARD(tanh, HEAVY, ssl__tanhf(v))
UNARY_BACKWARD(tanh, 1, 1.0f - o * o)
UNARY_OP(tanh, SSL_OP_TANH)

/* ---------------------------------------------------------------- scale */

static int scale_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    if (!isfinite(nd->fa[0]) || !isfinite(nd->fa[1]))
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "alpha (%g) and beta (%g) must be finite",
                                    (double)nd->fa[0], (double)nd->fa[1]);
    return unary_shape(nd, ndim, shape);
}

static int scale_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    const float alpha = nd->fa[0], beta = nd->fa[1], *x = nd->in[0]->data;
    float *y = nd->out->data;
    const int64_t n = nd->out->numel;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        y[i] = alpha * x[i] + beta;
    return SSL_OK;
}

static void scale_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    int fresh; /* dx may be out->grad itself: scaled in place */
    float *dx = ssl__grad_take(ctx, nd->in[0], nd->out, &fresh);
    if (!dx)
        return;
    const float alpha = nd->fa[0], *g = nd->out->grad;
    const int64_t n = nd->out->numel;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        dx[i] = fresh ? alpha * g[i] : dx[i] + alpha * g[i];
}

const ssl_op_def_t ssl_opdef_scale = {"scale", 0, scale_shape, scale_forward, scale_backward, 0};

ssl_tensor_t *ssl_scale(ssl_ctx_t *ctx, ssl_tensor_t *x, float alpha, float beta)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_SCALE, 1, x);
    n.fa[0] = alpha;
    n.fa[1] = beta;
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- pow */

static int pow_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    if (!isfinite(nd->fa[0]))
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "exponent must be finite, got %g",
                                    (double)nd->fa[0]);
    return unary_shape(nd, ndim, shape);
}

static int pow_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    const float p = nd->fa[0], *x = nd->in[0]->data;
    float *y = nd->out->data;
    const int64_t n = nd->out->numel;
    if (p == 2.0f) { /* the common square: no powf */
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
        for (int64_t i = 0; i < n; i++)
            y[i] = x[i] * x[i];
        return SSL_OK;
    }
#pragma omp parallel for schedule(static) if (n * HEAVY > SSL_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        y[i] = powf(x[i], p);
    return SSL_OK;
}

static void pow_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    float *dx = ssl__grad(ctx, nd->in[0]);
    if (!dx)
        return;
    const float p = nd->fa[0], *x = nd->in[0]->data, *g = nd->out->grad;
    const int64_t n = nd->out->numel;
    if (p == 0.0f) /* constant output: zero gradient even at x = 0 (as PyTorch) */
        return;
    if (p == 2.0f) {
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
        for (int64_t i = 0; i < n; i++)
            dx[i] += g[i] * (2.0f * x[i]);
        return;
    }
    const float pm1 = p - 1.0f;
#pragma omp parallel for schedule(static) if (n * HEAVY > SSL_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        dx[i] += g[i] * (p * powf(x[i], pm1));
}

const ssl_op_def_t ssl_opdef_pow = {"pow", 0, pow_shape, pow_forward, pow_backward, 0};

ssl_tensor_t *ssl_pow(ssl_ctx_t *ctx, ssl_tensor_t *x, float p)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_POW, 1, x);
    n.fa[0] = p;
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- clamp */

static int clamp_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    float lo = nd->fa[0], hi = nd->fa[1];
    if (isnan(lo) || isnan(hi) || lo > hi)
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "need lo <= hi, got lo %g hi %g",
                                    (double)lo, (double)hi);
    return unary_shape(nd, ndim, shape);
}

static int clamp_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    const float lo = nd->fa[0], hi = nd->fa[1], *x = nd->in[0]->data;
    float *y = nd->out->data;
    const int64_t n = nd->out->numel;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] < lo ? lo : x[i];
        y[i] = v > hi ? hi : v;
    }
    return SSL_OK;
}

static void clamp_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    float *dx = ssl__grad(ctx, nd->in[0]);
    if (!dx)
        return;
    const float lo = nd->fa[0], hi = nd->fa[1], *x = nd->in[0]->data, *g = nd->out->grad;
    const int64_t n = nd->out->numel;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        dx[i] += (x[i] > lo && x[i] < hi) ? g[i] : 0.0f;
}

const ssl_op_def_t ssl_opdef_clamp = {"clamp", 0, clamp_shape, clamp_forward, clamp_backward, 0};

ssl_tensor_t *ssl_clamp(ssl_ctx_t *ctx, ssl_tensor_t *x, float lo, float hi)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_CLAMP, 1, x);
    n.fa[0] = lo;
    n.fa[1] = hi;
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- gelu */

#define GELU_SQRT1_2 0.70710678118654752440f      /* 1 / sqrt(2) */
#define GELU_INV_SQRT_2PI 0.39894228040143267794f /* 1 / sqrt(2 pi) */
#define GELU_SQRT_2_PI 0.79788456080286535588f    /* sqrt(2 / pi) */
#define GELU_KAPPA 0.044715f

static int gelu_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    if (nd->ia[0] != SSL_GELU_ERF && nd->ia[0] != SSL_GELU_TANH)
        return ssl__op_error_status(nd, SSL_ERR_INVALID,
                                    "unknown kind %lld (SSL_GELU_ERF or SSL_GELU_TANH)",
                                    (long long)nd->ia[0]);
    return unary_shape(nd, ndim, shape);
}

static int gelu_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    const float *x = nd->in[0]->data;
    float *y = nd->out->data;
    const int64_t n = nd->out->numel;
    if (nd->ia[0] == SSL_GELU_ERF) { /* 0.5 x (1 + erf(x / sqrt 2)), erf vectorised */
#pragma omp parallel for simd schedule(static) if (n > SSL_OMP_MIN)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            y[i] = 0.5f * v * (1.0f + ssl__erff(v * GELU_SQRT1_2));
        }
    } else { /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
#pragma omp parallel for schedule(static) if (n * HEAVY > SSL_OMP_MIN)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            float u = GELU_SQRT_2_PI * (v + GELU_KAPPA * v * v * v);
            y[i] = 0.5f * v * (1.0f + ssl__tanhf(u));
        }
    }
    return SSL_OK;
}

static void gelu_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    int fresh; /* dx may be out->grad itself: dx[i] = g[i] * f'(x[i]) in place */
    float *dx = ssl__grad_take(ctx, nd->in[0], nd->out, &fresh);
    if (!dx)
        return;
    const float *x = nd->in[0]->data, *y = nd->out->data, *g = nd->out->grad;
    const int64_t n = nd->out->numel;
    if (nd->ia[0] == SSL_GELU_ERF) { /* Phi(x) + x phi(x) */
        /* Phi(x) = y / x from the forward output: an erf less per element (40% of the time);
         * within 2e-7 of the erf form, and y stays a normal float wherever |x| >= 1e-30. */
#pragma omp parallel for simd schedule(static) if (n > SSL_OMP_MIN)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i];
            float cdf = fabsf(v) < 1e-30f ? 0.5f : y[i] / v;
            float pdf = GELU_INV_SQRT_2PI * ssl__expf(-0.5f * v * v);
            float d = g[i] * (cdf + v * pdf);
            dx[i] = fresh ? d : dx[i] + d;
        }
    } else { /* 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 kappa x^2) */
#pragma omp parallel for schedule(static) if (n * HEAVY > SSL_OMP_MIN)
        for (int64_t i = 0; i < n; i++) {
            float v = x[i], v2 = v * v;
            float t = ssl__tanhf(GELU_SQRT_2_PI * (v + GELU_KAPPA * v2 * v));
            float du = GELU_SQRT_2_PI * (1.0f + 3.0f * GELU_KAPPA * v2);
            float d = g[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
            dx[i] = fresh ? d : dx[i] + d;
        }
    }
}

const ssl_op_def_t ssl_opdef_gelu = {"gelu", 0, gelu_shape, gelu_forward, gelu_backward, 0};

ssl_tensor_t *ssl_gelu(ssl_ctx_t *ctx, ssl_tensor_t *x, int kind)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_GELU, 1, x);
    n.ia[0] = kind;
    return ssl__apply(ctx, &n);
}

/* ---------------------------------------------------------------- leaky relu */

static int leaky_relu_shape(const ssl_node_t *nd, int *ndim, int64_t *shape)
{
    if (!(nd->fa[0] >= 0.0f && nd->fa[0] < 1.0f))
        return ssl__op_error_status(nd, SSL_ERR_INVALID, "need 0 <= slope < 1, got %g",
                                    (double)nd->fa[0]);
    return unary_shape(nd, ndim, shape);
}

/* x for x > 0, slope x otherwise; the gradient at 0 is slope's, as PyTorch. */
static int leaky_relu_forward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    (void)ctx;
    const float a = nd->fa[0], *x = nd->in[0]->data;
    float *y = nd->out->data;
    const int64_t n = nd->out->numel;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : a * x[i];
    return SSL_OK;
}

static void leaky_relu_backward(ssl_ctx_t *ctx, ssl_node_t *nd)
{
    float *dx = ssl__grad(ctx, nd->in[0]);
    if (!dx)
        return;
    const float a = nd->fa[0], *x = nd->in[0]->data, *g = nd->out->grad;
    const int64_t n = nd->out->numel;
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        dx[i] += x[i] > 0.0f ? g[i] : a * g[i];
}

const ssl_op_def_t ssl_opdef_leaky_relu = {"leaky_relu", 0, leaky_relu_shape, leaky_relu_forward,
                                           leaky_relu_backward, 0};

ssl_tensor_t *ssl_leaky_relu(ssl_ctx_t *ctx, ssl_tensor_t *x, float slope)
{
    ssl_node_t n;
    ssl__node_init(&n, SSL_OP_LEAKY_RELU, 1, x);
    n.fa[0] = slope;
    return ssl__apply(ctx, &n);
}
