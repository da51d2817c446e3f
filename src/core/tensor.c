/* The per-step context: a chunked arena that is reset (not freed) after each step, tensors
 * allocated in it, and the define-by-run tape with backward. */
#define _POSIX_C_SOURCE 200809L
#include "core_internal.h"

#include "bn_update.h"
#include "comm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARENA_ALIGN 64
#define ARENA_MAX_CHUNKS 64

typedef struct chunk {
    char *base;
    size_t cap;
    size_t used;
} chunk_t;

struct ssl_ctx {
    chunk_t chunks[ARENA_MAX_CHUNKS];
    int n_chunks;
    int cur;            /* chunk being filled */
    size_t used;        /* bytes handed out since reset (with alignment padding) */
    size_t peak;
    int oom;            /* an allocation failed since reset */
    int grad_enabled;
    ssl_node_t *nodes;  /* the tape */
    int n_nodes, cap_nodes;
    struct free_grad {  /* gradient buffers of intermediates whose backward has run */
        float *p;
        int64_t n;
    } *free_grads;
    int n_free, cap_free;
    void *scratch;      /* ssl__scratch: one buffer kernels reuse, kept across resets */
    size_t scratch_cap;
    ssl_precision_t precision; /* of GEMM-shaped ops (ssl__gemm) */
    const ssl_comm_t *comm;    /* the ranks of a data-parallel step, or NULL (comm.h) */
    int bn_update;             /* eval-mode batch norms recompute their statistics (bn_update.h) */
    ssl_grad_ready_fn grad_ready;
    void *grad_ready_user;
};

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

static int add_chunk(ssl_ctx_t *ctx, size_t cap)
{
    if (ctx->n_chunks == ARENA_MAX_CHUNKS)
        return ssl_set_error(SSL_ERR_NOMEM, "arena: more than %d chunks", ARENA_MAX_CHUNKS);
    if (cap > SIZE_MAX / 2) /* rounding up would wrap to 0 */
        return ssl_set_error(SSL_ERR_NOMEM, "arena: cannot allocate %zu bytes", cap);
    cap = round_up(cap, ARENA_ALIGN);
    char *p = aligned_alloc(ARENA_ALIGN, cap);
    if (!p)
        return ssl_set_error(SSL_ERR_NOMEM, "arena: cannot allocate %zu bytes", cap);
    ctx->chunks[ctx->n_chunks++] = (chunk_t){p, cap, 0};
    return SSL_OK;
}

ssl_ctx_t *ssl_ctx_create(size_t arena_bytes)
{
    ssl_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        ssl_set_error(SSL_ERR_NOMEM, "ssl_ctx_create: out of memory");
        return NULL;
    }
    ctx->grad_enabled = 1;
    if (add_chunk(ctx, arena_bytes < (1u << 20) ? (1u << 20) : arena_bytes) != SSL_OK) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

void ssl_ctx_free(ssl_ctx_t *ctx)
{
    if (!ctx)
        return;
    for (int i = 0; i < ctx->n_chunks; i++)
        free(ctx->chunks[i].base);
    free(ctx->nodes);
    free(ctx->scratch);
    free(ctx->free_grads);
    free(ctx);
}

void ssl_ctx_reset(ssl_ctx_t *ctx)
{
    if (SSL__IS_NULL(ctx, __func__))
        return;
    if (ctx->n_chunks > 1) {
        /* The step needed more than one chunk: replace them by one that holds it all, so the
         * next step allocates nothing. */
        size_t total = 0;
        for (int i = 0; i < ctx->n_chunks; i++) {
            total += ctx->chunks[i].cap;
            free(ctx->chunks[i].base);
        }
        ctx->n_chunks = 0;
        if (add_chunk(ctx, total) != SSL_OK)
            add_chunk(ctx, 1u << 20); /* keep a usable context; the next alloc reports OOM */
    }
    for (int i = 0; i < ctx->n_chunks; i++)
        ctx->chunks[i].used = 0;
    ctx->cur = 0;
    ctx->used = 0;
    ctx->oom = 0;
    ctx->n_nodes = 0;
    ctx->n_free = 0;
}

int ssl_ctx_set_grad(ssl_ctx_t *ctx, int enabled)
{
    if (SSL__IS_NULL(ctx, __func__))
        return 0;
    int prev = ctx->grad_enabled;
    ctx->grad_enabled = enabled != 0;
    return prev;
}

void ssl__ctx_set_comm(ssl_ctx_t *ctx, const ssl_comm_t *comm)
{
    if (ctx)
        ctx->comm = comm;
}

const ssl_comm_t *ssl__ctx_comm(const ssl_ctx_t *ctx)
{
    return ctx && ctx->comm && ctx->comm->size > 1 ? ctx->comm : NULL;
}

int ssl__ctx_set_bn_update(ssl_ctx_t *ctx, int on)
{
    if (!ctx)
        return 0;
    int prev = ctx->bn_update;
    ctx->bn_update = on != 0;
    return prev;
}

int ssl__ctx_bn_update(const ssl_ctx_t *ctx) { return ctx && ctx->bn_update; }

void ssl__ctx_set_grad_ready(ssl_ctx_t *ctx, ssl_grad_ready_fn fn, void *user)
{
    if (!ctx)
        return;
    ctx->grad_ready = fn;
    ctx->grad_ready_user = user;
}

/* Getters of a NULL context: 0 and the error set. */
int ssl_ctx_grad_enabled(const ssl_ctx_t *ctx)
{
    return SSL__IS_NULL(ctx, __func__) ? 0 : ctx->grad_enabled;
}
size_t ssl_ctx_arena_used(const ssl_ctx_t *ctx)
{
    return SSL__IS_NULL(ctx, __func__) ? 0 : ctx->used;
}
size_t ssl_ctx_arena_peak(const ssl_ctx_t *ctx)
{
    return SSL__IS_NULL(ctx, __func__) ? 0 : ctx->peak;
}
int ssl_ctx_tape_len(const ssl_ctx_t *ctx)
{
    return SSL__IS_NULL(ctx, __func__) ? 0 : ctx->n_nodes;
}

int ssl_ctx_set_precision(ssl_ctx_t *ctx, ssl_precision_t precision)
{
    if (SSL__IS_NULL(ctx, __func__))
        return SSL_ERR_INVALID;
    int st = ssl_precision_supported(precision);
    if (st != SSL_OK)
        return st;
    ctx->precision = precision;
    return SSL_OK;
}

ssl_precision_t ssl_ctx_precision(const ssl_ctx_t *ctx)
{
    return SSL__IS_NULL(ctx, __func__) ? SSL_PRECISION_FP32 : ctx->precision;
}

int ssl__ctx_bf16(const ssl_ctx_t *ctx) { return ctx && ctx->precision == SSL_PRECISION_BF16; }

size_t ssl_ctx_arena_capacity(const ssl_ctx_t *ctx)
{
    if (SSL__IS_NULL(ctx, __func__))
        return 0;
    size_t c = 0;
    for (int i = 0; i < ctx->n_chunks; i++)
        c += ctx->chunks[i].cap;
    return c;
}

void *ssl_arena_alloc(ssl_ctx_t *ctx, size_t bytes)
{
    if (SSL__IS_NULL(ctx, __func__))
        return NULL;
    if (bytes > SIZE_MAX / 2) {
        ssl_set_error(SSL_ERR_NOMEM, "ssl_arena_alloc: %zu bytes", bytes);
        return NULL;
    }
    size_t need = round_up(bytes ? bytes : 1, ARENA_ALIGN);
    for (;;) {
        chunk_t *c = &ctx->chunks[ctx->cur];
        if (c->cap - c->used >= need) {
            void *p = c->base + c->used;
            c->used += need;
            ctx->used += need;
            if (ctx->used > ctx->peak)
                ctx->peak = ctx->used;
            return p;
        }
        if (ctx->cur + 1 < ctx->n_chunks) {
            ctx->cur++;
            continue;
        }
        size_t cap = c->cap * 2;
        if (cap < need)
            cap = need;
        if (add_chunk(ctx, cap) != SSL_OK) {
            ctx->oom = 1;
            return NULL;
        }
        ctx->cur = ctx->n_chunks - 1;
    }
}

void *ssl__scratch(ssl_ctx_t *ctx, size_t bytes)
{
    if (bytes > ctx->scratch_cap) {
        size_t cap = round_up(bytes, ARENA_ALIGN);
        void *p = aligned_alloc(ARENA_ALIGN, cap);
        if (!p) {
            ctx->oom = 1;
            ssl_set_error(SSL_ERR_NOMEM, "scratch: cannot allocate %zu bytes", cap);
            return NULL;
        }
        free(ctx->scratch);
        ctx->scratch = p;
        ctx->scratch_cap = cap;
    }
    return ctx->scratch;
}

size_t ssl__scratch_capacity(const ssl_ctx_t *ctx) { return ctx->scratch_cap; }

/* ---------------------------------------------------------------- tensors */

char *ssl_shape_str(const ssl_tensor_t *t, char *buf, size_t len)
{
    if (SSL__IS_NULL(buf, __func__) || len == 0 || len > PTRDIFF_MAX) {
        if (buf)
            ssl_set_error(SSL_ERR_INVALID, "ssl_shape_str: buffer length %zu", len);
        return NULL;
    }
    if (!t) {
        snprintf(buf, len, "(null)");
        return buf;
    }
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "(");
    for (int i = 0; i < t->ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (o < len)
        snprintf(buf + o, len - o, ")");
    return buf;
}

int ssl_same_shape(const ssl_tensor_t *a, const ssl_tensor_t *b)
{
    if (SSL__IS_NULL(a, __func__) || SSL__IS_NULL(b, __func__))
        return 0;
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

int64_t ssl_dim(const ssl_tensor_t *t, int d)
{
    if (SSL__IS_NULL(t, __func__))
        return 0;
    if (d < 0)
        d += t->ndim;
    return (d >= 0 && d < t->ndim) ? t->shape[d] : 0;
}

static ssl_tensor_t *header(ssl_ctx_t *ctx, int ndim, const int64_t *shape)
{
    if (SSL__IS_NULL(ctx, "tensor"))
        return NULL;
    if (ndim < 0 || ndim > SSL_MAX_DIMS || (ndim > 0 && !shape)) {
        ssl_set_error(SSL_ERR_INVALID, "tensor: rank %d outside 0..%d%s", ndim, SSL_MAX_DIMS,
                      shape ? "" : " or shape NULL");
        return NULL;
    }
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            ssl_set_error(SSL_ERR_INVALID, "tensor: dimension %d is negative (%lld)", i,
                          (long long)shape[i]);
            return NULL;
        }
        /* float elements addressable in memory: numel * 4 bytes must fit (and not wrap) */
        if (shape[i] > 0 && numel > (int64_t)(PTRDIFF_MAX / sizeof(float)) / shape[i]) {
            ssl_set_error(SSL_ERR_INVALID,
                          "tensor: %lld elements up to dimension %d (%lld) overflow the "
                          "address space",
                          (long long)numel, i, (long long)shape[i]);
            return NULL;
        }
        numel *= shape[i];
    }
    ssl_tensor_t *t = ssl_arena_alloc(ctx, sizeof *t);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->numel = numel;
    t->node = -1;
    return t;
}

ssl_tensor_t *ssl_tensor_new(ssl_ctx_t *ctx, int ndim, const int64_t *shape)
{
    ssl_tensor_t *t = header(ctx, ndim, shape);
    if (!t)
        return NULL;
    t->data = ssl_arena_alloc(ctx, (size_t)t->numel * sizeof(float));
    return t->data ? t : NULL;
}

ssl_tensor_t *ssl_tensor_zeros(ssl_ctx_t *ctx, int ndim, const int64_t *shape)
{
    ssl_tensor_t *t = ssl_tensor_new(ctx, ndim, shape);
    if (t)
        memset(t->data, 0, (size_t)t->numel * sizeof(float));
    return t;
}

ssl_tensor_t *ssl_tensor_from(ssl_ctx_t *ctx, int ndim, const int64_t *shape, const float *src)
{
    ssl_tensor_t *t = ssl_tensor_new(ctx, ndim, shape);
    if (t && t->numel)
        memcpy(t->data, src, (size_t)t->numel * sizeof(float));
    return t;
}

ssl_tensor_t *ssl_tensor_fill(ssl_ctx_t *ctx, int ndim, const int64_t *shape, float value)
{
    ssl_tensor_t *t = ssl_tensor_new(ctx, ndim, shape);
    if (t)
        for (int64_t i = 0; i < t->numel; i++)
            t->data[i] = value;
    return t;
}

ssl_tensor_t *ssl_tensor_1d(ssl_ctx_t *ctx, int64_t n0)
{
    return ssl_tensor_new(ctx, 1, (int64_t[]){n0});
}
ssl_tensor_t *ssl_tensor_2d(ssl_ctx_t *ctx, int64_t n0, int64_t n1)
{
    return ssl_tensor_new(ctx, 2, (int64_t[]){n0, n1});
}
ssl_tensor_t *ssl_tensor_3d(ssl_ctx_t *ctx, int64_t n0, int64_t n1, int64_t n2)
{
    return ssl_tensor_new(ctx, 3, (int64_t[]){n0, n1, n2});
}
ssl_tensor_t *ssl_tensor_4d(ssl_ctx_t *ctx, int64_t n0, int64_t n1, int64_t n2, int64_t n3)
{
    return ssl_tensor_new(ctx, 4, (int64_t[]){n0, n1, n2, n3});
}

void ssl_tensor_set_requires_grad(ssl_tensor_t *t, int on)
{
    if (!SSL__IS_NULL(t, __func__))
        t->requires_grad = on != 0;
}

ssl_tensor_t *ssl_detach(ssl_ctx_t *ctx, ssl_tensor_t *t)
{
    if (SSL__IS_NULL(t, __func__))
        return NULL;
    ssl_tensor_t *d = header(ctx, t->ndim, t->shape);
    if (!d)
        return NULL;
    d->data = t->data;
    d->name = t->name;
    return d;
}

/* ---------------------------------------------------------------- op plumbing */

void ssl__node_init(ssl_node_t *n, int op, int n_in, ...)
{
    memset(n, 0, sizeof *n);
    n->op = op;
    n->n_in = n_in;
    n->in = n->in_buf;
    va_list ap;
    va_start(ap, n_in);
    for (int i = 0; i < n_in && i < SSL_NODE_INLINE_IN; i++)
        n->in_buf[i] = va_arg(ap, ssl_tensor_t *);
    va_end(ap);
}

static int vop_error(const ssl_node_t *n, int status, const char *fmt, va_list ap)
{
    char msg[1024];
    size_t o = 0;
    const ssl_op_def_t *d = ssl__op_def(n->op);
    o += (size_t)snprintf(msg, sizeof msg, "%s(", d ? d->name : "?");
    for (int i = 0; i < n->n_in && o < sizeof msg; i++) {
        char s[96];
        o += (size_t)snprintf(msg + o, sizeof msg - o, "%s%s", i ? ", " : "",
                              n->in[i] ? ssl_shape_str(n->in[i], s, sizeof s) : "none");
    }
    if (o < sizeof msg)
        o += (size_t)snprintf(msg + o, sizeof msg - o, "): ");
    if (o < sizeof msg)
        vsnprintf(msg + o, sizeof msg - o, fmt, ap);
    return ssl_set_error(status, "%s", msg);
}

int ssl__op_error(const ssl_node_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vop_error(n, SSL_ERR_SHAPE, fmt, ap);
    va_end(ap);
    return r;
}

int ssl__op_error_status(const ssl_node_t *n, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vop_error(n, status, fmt, ap);
    va_end(ap);
    return r;
}

/* ---------------------------------------------------------------- profile */

static int g_prof_on;
static struct {
    double fwd_s, bwd_s;
    int64_t fwd_calls, bwd_calls;
} g_prof[SSL_OP_COUNT];

static double prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void ssl_profile_enable(int on) { g_prof_on = on != 0; }
void ssl_profile_reset(void) { memset(g_prof, 0, sizeof g_prof); }

static int prof_cmp(const void *a, const void *b)
{
    const ssl_op_profile_t *x = a, *y = b;
    double tx = x->fwd_s + x->bwd_s, ty = y->fwd_s + y->bwd_s;
    return (tx < ty) - (tx > ty);
}

int ssl_profile_get(ssl_op_profile_t *out, int max)
{
    if (SSL__IS_NULL(out, __func__) || max < 0)
        return out ? ssl_set_error(SSL_ERR_INVALID, "ssl_profile_get: max %d < 0", max)
                   : SSL_ERR_INVALID;
    ssl_op_profile_t all[SSL_OP_COUNT];
    int n = 0;
    for (int i = 0; i < SSL_OP_COUNT; i++)
        if (g_prof[i].fwd_calls || g_prof[i].bwd_calls)
            all[n++] = (ssl_op_profile_t){ssl__op_def(i)->name, g_prof[i].fwd_s, g_prof[i].bwd_s,
                                          g_prof[i].fwd_calls, g_prof[i].bwd_calls};
    qsort(all, (size_t)n, sizeof all[0], prof_cmp);
    if (n > max)
        n = max;
    if (n > 0)
        memcpy(out, all, (size_t)n * sizeof all[0]);
    return n;
}

static int run_forward(const ssl_op_def_t *d, ssl_ctx_t *ctx, ssl_node_t *n)
{
    ssl__fixed_teams(); /* the kernels' per-thread buffers assume the team they asked for */
    if (!g_prof_on)
        return d->forward(ctx, n);
    double t0 = prof_now();
    int st = d->forward(ctx, n);
    g_prof[n->op].fwd_s += prof_now() - t0;
    g_prof[n->op].fwd_calls++;
    return st;
}

static void run_backward(const ssl_op_def_t *d, ssl_ctx_t *ctx, ssl_node_t *n)
{
    ssl__fixed_teams();
    if (!g_prof_on) {
        d->backward(ctx, n);
        return;
    }
    double t0 = prof_now();
    d->backward(ctx, n);
    g_prof[n->op].bwd_s += prof_now() - t0;
    g_prof[n->op].bwd_calls++;
}

ssl_tensor_t *ssl__apply(ssl_ctx_t *ctx, ssl_node_t *n)
{
    const ssl_op_def_t *d = ssl__op_def(n->op);
    if (!ctx) {
        ssl_set_error(SSL_ERR_INVALID, "%s: NULL context", d ? d->name : "op");
        return NULL;
    }
    if (!d) {
        ssl_set_error(SSL_ERR_UNSUPPORTED, "op %d is not implemented", n->op);
        return NULL;
    }
    int n_req = n->n_in - d->n_opt;
    int needs_grad = 0;
    for (int i = 0; i < n->n_in; i++) {
        if (!n->in[i]) {
            if (i >= n_req)
                continue;
            char arg[32];
            snprintf(arg, sizeof arg, "input %d", i);
            ssl__null_input(d->name, arg);
            return NULL;
        }
        needs_grad |= n->in[i]->requires_grad;
    }
    int ndim = 0;
    int64_t shape[SSL_MAX_DIMS] = {0};
    if (d->shape(n, &ndim, shape) != SSL_OK)
        return NULL;
    ssl_tensor_t *out;
    if (d->flags & SSL_OPF_ALIAS) {
        out = header(ctx, ndim, shape);
        if (out)
            out->data = n->in[0]->data;
    } else {
        out = ssl_tensor_new(ctx, ndim, shape);
    }
    if (!out)
        return NULL;
    n->out = out;
    if (run_forward(d, ctx, n) != SSL_OK)
        return NULL;
    if (!(ctx->grad_enabled && needs_grad))
        return out;
    if (ctx->n_nodes == ctx->cap_nodes) {
        int cap = ctx->cap_nodes ? ctx->cap_nodes * 2 : 256;
        ssl_node_t *nodes = realloc(ctx->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes) {
            ssl_set_error(SSL_ERR_NOMEM, "%s: cannot grow the tape to %d nodes", d->name, cap);
            return NULL;
        }
        ctx->nodes = nodes;
        ctx->cap_nodes = cap;
        /* the array moved: inline input lists must point into their node's new place */
        for (int i = 0; i < ctx->n_nodes; i++)
            if (nodes[i].in_inline)
                nodes[i].in = nodes[i].in_buf;
    }
    ssl_node_t *rec = &ctx->nodes[ctx->n_nodes];
    *rec = *n;
    rec->in_inline = n->in == n->in_buf;
    if (rec->in_inline)
        rec->in = rec->in_buf;
    out->requires_grad = 1;
    out->node = ctx->n_nodes++;
    return out;
}

/* Intermediate gradients live only from their first consumer's backward to their producer's:
 * backward hands the buffer back here and the next gradient of a fitting size reuses it, so a
 * step's peak memory is the activations plus the gradients alive at once, not all of them. */
static float *grad_block(ssl_ctx_t *ctx, int64_t numel)
{
    int best = -1;
    for (int i = 0; i < ctx->n_free; i++)
        if (ctx->free_grads[i].n >= numel &&
            (best < 0 || ctx->free_grads[i].n < ctx->free_grads[best].n))
            best = i;
    if (best < 0)
        return NULL;
    float *p = ctx->free_grads[best].p;
    ctx->free_grads[best] = ctx->free_grads[--ctx->n_free];
    return p;
}

static void grad_release(ssl_ctx_t *ctx, ssl_tensor_t *t)
{
    if (ctx->n_free == ctx->cap_free) {
        int cap = ctx->cap_free ? 2 * ctx->cap_free : 64;
        struct free_grad *f = realloc(ctx->free_grads, (size_t)cap * sizeof *f);
        if (!f)
            return; /* the buffer stays unused until the next reset */
        ctx->free_grads = f;
        ctx->cap_free = cap;
    }
    ctx->free_grads[ctx->n_free++] = (struct free_grad){t->grad, t->numel};
}

float *ssl__grad(ssl_ctx_t *ctx, ssl_tensor_t *t)
{
    if (!t || !t->requires_grad)
        return NULL;
    if (!t->grad) {
        t->grad = t->node >= 0 ? grad_block(ctx, t->numel) : NULL;
        if (!t->grad)
            t->grad = ssl_arena_alloc(ctx, (size_t)t->numel * sizeof(float));
        if (!t->grad)
            return NULL;
        memset(t->grad, 0, (size_t)t->numel * sizeof(float));
    }
    return t->grad;
}

float *ssl__grad_write(ssl_ctx_t *ctx, ssl_tensor_t *t, int *fresh)
{
    *fresh = 0;
    if (!t || !t->requires_grad)
        return NULL;
    if (t->grad)
        return t->grad;
    t->grad = t->node >= 0 ? grad_block(ctx, t->numel) : NULL;
    if (!t->grad)
        t->grad = ssl_arena_alloc(ctx, (size_t)t->numel * sizeof(float));
    *fresh = t->grad != NULL;
    return t->grad;
}

float *ssl__grad_take(ssl_ctx_t *ctx, ssl_tensor_t *t, ssl_tensor_t *out, int *fresh)
{
    *fresh = 0;
    if (!t || !t->requires_grad)
        return NULL;
    if (!t->grad && t->numel == out->numel && out->grad) {
        t->grad = out->grad;
        *fresh = 1;
        return t->grad;
    }
    return ssl__grad(ctx, t);
}

/* For the grad-ready hook: the leaves (parameters and inputs with requires_grad) each node of
 * tape[0..last] uses first, as lists: ready[i] heads node i's list (-1: none), ready[last + 1 +
 * k] links entry k to the next, leaf[k] is its leaf. A leaf's first use is the last backward to
 * add to its gradient. Arena memory; a pointer set finds the leaves already seen. */
static int leaf_first_uses(ssl_ctx_t *ctx, int last, int **ready_out, ssl_tensor_t ***leaf_out)
{
    int64_t n_in = 0;
    for (int i = 0; i <= last; i++)
        n_in += ctx->nodes[i].n_in;
    int64_t cap = 16;
    while (cap < 2 * n_in)
        cap *= 2;
    int *ready = ssl_arena_alloc(ctx, sizeof(int) * (size_t)(last + 1 + n_in + 1));
    ssl_tensor_t **leaf = ssl_arena_alloc(ctx, sizeof *leaf * (size_t)(n_in + 1));
    const ssl_tensor_t **seen = ssl_arena_alloc(ctx, sizeof *seen * (size_t)cap);
    if (!ready || !leaf || !seen)
        return ssl_set_error(SSL_ERR_NOMEM, "backward: out of memory for the grad-ready lists");
    memset(seen, 0, sizeof *seen * (size_t)cap);
    int *next = ready + last + 1;
    int k = 0;
    for (int i = 0; i <= last; i++) {
        ready[i] = -1;
        const ssl_node_t *nd = &ctx->nodes[i];
        for (int j = 0; j < nd->n_in; j++) {
            ssl_tensor_t *t = nd->in[j];
            if (!t || t->node >= 0 || !t->requires_grad)
                continue;
            uint64_t h = (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ull;
            int64_t s = (int64_t)(h >> 20) & (cap - 1);
            while (seen[s] && seen[s] != t)
                s = (s + 1) & (cap - 1);
            if (seen[s])
                continue;
            seen[s] = t;
            leaf[k] = t;
            next[k] = ready[i];
            ready[i] = k++;
        }
    }
    *ready_out = ready;
    *leaf_out = leaf;
    return SSL_OK;
}

static void report_ready(ssl_ctx_t *ctx, const int *ready, ssl_tensor_t **leaf, int last,
                         int node)
{
    const int *next = ready + last + 1;
    if (node > last)
        return;
    for (int k = ready[node]; k >= 0; k = next[k])
        ctx->grad_ready(ctx->grad_ready_user, leaf[k]);
}

int ssl_backward_with(ssl_ctx_t *ctx, ssl_tensor_t *out, const float *grad_out)
{
    if (!ctx || !out || !grad_out)
        return ssl_set_error(SSL_ERR_INVALID, "backward: NULL %s",
                             !ctx ? "context" : !out ? "output tensor" : "gradient");
    if (!out->requires_grad)
        return ssl_set_error(SSL_ERR_STATE,
                             "backward: the output does not require a gradient (no parameter "
                             "or input with requires_grad reaches it, or grad mode was off)");
    if (out->node >= ctx->n_nodes)
        return ssl_set_error(SSL_ERR_STATE, "backward: the tape was reset after this tensor "
                                            "was computed");
    /* Gradients of intermediates start from zero at every backward call (leaves and
     * parameters accumulate), so calling backward twice adds the same amount twice. */
    for (int i = 0; i <= out->node; i++)
        ctx->nodes[i].out->grad = NULL;
    float *g = ssl__grad(ctx, out);
    if (!g)
        return ssl_set_error(SSL_ERR_NOMEM, "backward: out of memory");
    for (int64_t i = 0; i < out->numel; i++)
        g[i] += grad_out[i];
    int *ready = NULL;
    ssl_tensor_t **leaf = NULL;
    if (ctx->grad_ready && leaf_first_uses(ctx, out->node, &ready, &leaf) != SSL_OK)
        return ssl_last_status();
    for (int i = out->node; i >= 0; i--) {
        ssl_node_t *n = &ctx->nodes[i];
        if (ready) /* the leaves node i+1 used first are final: nothing before it reads them */
            report_ready(ctx, ready, leaf, out->node, i + 1);
        if (!n->out->grad)
            continue; /* not on a path to `out` */
        run_backward(ssl__op_def(n->op), ctx, n);
        if (ctx->oom)
            return ssl_set_error(SSL_ERR_NOMEM, "backward: out of memory at %s",
                                 ssl__op_def(n->op)->name);
        /* every consumer of n->out came later on the tape and has run: its gradient is spent
         * (unless an input's gradient shares the buffer) */
        if (n->out != out) {
            int shared = 0;
            for (int k = 0; k < n->n_in; k++)
                shared |= n->in[k] && n->in[k]->grad == n->out->grad;
            if (!shared)
                grad_release(ctx, n->out);
            n->out->grad = NULL;
        }
    }
    if (ready)
        report_ready(ctx, ready, leaf, out->node, 0);
    return SSL_OK;
}

int ssl_backward(ssl_ctx_t *ctx, ssl_tensor_t *loss)
{
    if (loss && loss->numel != 1) {
        char s[96];
        return ssl_set_error(SSL_ERR_SHAPE,
                             "backward: the loss must have one element, got shape %s",
                             ssl_shape_str(loss, s, sizeof s));
    }
    const float one = 1.0f;
    return ssl_backward_with(ctx, loss, &one);
}

/* ---------------------------------------------------------------- small shared helpers */

int ssl__axis(int axis, int ndim)
{
    if (axis < 0)
        axis += ndim;
    return (axis >= 0 && axis < ndim) ? axis : -1;
}

void ssl__outer_dim_inner(const ssl_tensor_t *t, int axis, int64_t *outer, int64_t *dim,
                          int64_t *inner)
{
    int64_t o = 1, in = 1;
    for (int i = 0; i < axis; i++)
        o *= t->shape[i];
    for (int i = axis + 1; i < t->ndim; i++)
        in *= t->shape[i];
    *outer = o;
    *dim = t->shape[axis];
    *inner = in;
}

/* At most 64 blocks of at least 4096 elements; the split depends on n only. */
double ssl__sum_f32(const float *x, int64_t n)
{
    int64_t nb = (n + 4095) / 4096;
    if (nb > 64)
        nb = 64;
    if (nb <= 1) {
        double s = 0;
        for (int64_t i = 0; i < n; i++)
            s += x[i];
        return s;
    }
    int64_t block = (n + nb - 1) / nb;
    double parts[64];
#pragma omp parallel for schedule(static) if (n > SSL_OMP_MIN)
    for (int64_t b = 0; b < nb; b++) {
        int64_t lo = b * block, hi = lo + block < n ? lo + block : n;
        double s = 0;
        for (int64_t i = lo; i < hi; i++)
            s += x[i];
        parts[b] = s;
    }
    double s = 0;
    for (int64_t b = 0; b < nb; b++)
        s += parts[b];
    return s;
}
