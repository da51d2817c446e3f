/* conv2d in bf16 through oneDNN's convolution primitives (forward, input gradient, weight
 * gradient), for bf16 contexts where they beat the fp32 kernels (ssl__bf16_conv_usable). The
 * tensors stay fp32 NCHW: each call reorders its fp32 operands into the bf16 blocked layouts
 * the primitive asked for (oneDNN reorders, rounding to nearest even) and its fp32 result back
 * into NCHW, adding onto the gradient when it must (the reorder's sum post-op). Primitives and
 * reorders are created once per layer shape and kept. The buffers come from the context's
 * scratch. Bias and its gradient stay with the caller (fp32). */
#include "core_internal.h"

#include <string.h>

/* 0: never, 1: where measured faster (ssl__bf16_conv_usable; the default), 2: every bf16 conv */
int ssl__bf16_conv_dnnl = 1;

#if SSL_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>

dnnl_engine_t ssl__dnnl_engine(void);
dnnl_stream_t ssl__dnnl_stream(void);
dnnl_primitive_attr_t ssl__dnnl_attr(int sum, int user_scratch);

enum { R_X_F, R_W_F, R_Y, R_DY_D, R_W_D, R_DX_SET, R_DX_ADD, R_X_W, R_DY_W, R_DW_ADD, N_REORDER };

typedef struct conv_key {
    int64_t n, c, h, w, oc, kh, kw, stride, pad;
} conv_key_t;

typedef struct conv_entry {
    conv_key_t key;
    int used, ok;
    dnnl_primitive_t fwd, bwd_d, bwd_w, reorder[N_REORDER];
    /* the primitives' layouts: x, w, y of forward; dy, w, dx of the input gradient; x, dy, dw
     * of the weight gradient */
    dnnl_memory_desc_t x_f, w_f, y_f, dy_d, w_d, dx_d, x_w, dy_w, dw_w;
    size_t scratch; /* largest user scratchpad of the three */
} conv_entry_t;

#define CONV_SLOTS 128
static conv_entry_t g_conv[CONV_SLOTS];
static pthread_mutex_t g_conv_lock = PTHREAD_MUTEX_INITIALIZER;

static int key_eq(const conv_key_t *a, const conv_key_t *b)
{
    return !memcmp(a, b, sizeof *a);
}

static dnnl_primitive_t make_prim(const_dnnl_primitive_desc_t pd)
{
    dnnl_primitive_t p = NULL;
    return dnnl_primitive_create(&p, pd) == dnnl_success ? p : NULL;
}

/* fp32 <-> bf16 or blocked <-> plain, accumulating into dst with add */
static dnnl_primitive_t make_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                     int add)
{
    dnnl_engine_t eng = ssl__dnnl_engine();
    dnnl_primitive_attr_t attr = ssl__dnnl_attr(add, 0);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t p = NULL;
    if (attr && dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, attr) == dnnl_success)
        p = make_prim(pd);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    return p;
}

static const dnnl_memory_desc_t *md_of(const_dnnl_primitive_desc_t pd, dnnl_query_t q)
{
    return dnnl_primitive_desc_query_md(pd, q, 0);
}

static size_t scratch_of(const_dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *m = md_of(pd, dnnl_query_scratchpad_md);
    return m ? dnnl_memory_desc_get_size(m) : 0;
}

static int entry_create(conv_entry_t *e)
{
    const conv_key_t *k = &e->key;
    dnnl_engine_t eng = ssl__dnnl_engine();
    int64_t oh = (k->h + 2 * k->pad - k->kh) / k->stride + 1;
    int64_t ow = (k->w + 2 * k->pad - k->kw) / k->stride + 1;
    dnnl_dims_t xd = {k->n, k->c, k->h, k->w}, wd = {k->oc, k->c, k->kh, k->kw};
    dnnl_dims_t yd = {k->n, k->oc, oh, ow}, st = {k->stride, k->stride}, pd2 = {k->pad, k->pad};
    dnnl_memory_desc_t xb, wb, yb, wf, xp, wp, yp; /* bf16 any, fp32 any, fp32 plain */
    dnnl_primitive_attr_t attr = ssl__dnnl_attr(0, 1);
    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL;
    dnnl_convolution_desc_t fd, dd, wdsc;
    int ok =
        attr &&
        dnnl_memory_desc_init_by_tag(&xb, 4, xd, dnnl_bf16, dnnl_format_tag_any) == dnnl_success &&
        dnnl_memory_desc_init_by_tag(&wb, 4, wd, dnnl_bf16, dnnl_format_tag_any) == dnnl_success &&
        dnnl_memory_desc_init_by_tag(&yb, 4, yd, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
        dnnl_memory_desc_init_by_tag(&wf, 4, wd, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
        dnnl_memory_desc_init_by_tag(&xp, 4, xd, dnnl_f32, dnnl_nchw) == dnnl_success &&
        dnnl_memory_desc_init_by_tag(&wp, 4, wd, dnnl_f32, dnnl_oihw) == dnnl_success &&
        dnnl_memory_desc_init_by_tag(&yp, 4, yd, dnnl_f32, dnnl_nchw) == dnnl_success;
    /* forward: bf16 x and w, fp32 y */
    ok = ok &&
         dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                            &xb, &wb, NULL, &yb, st, pd2, pd2) == dnnl_success &&
         dnnl_primitive_desc_create(&fpd, &fd, attr, eng, NULL) == dnnl_success;
    /* input gradient: bf16 dy and w, fp32 dx */
    dnnl_memory_desc_t xf, yb16;
    ok = ok &&
         dnnl_memory_desc_init_by_tag(&xf, 4, xd, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
         dnnl_memory_desc_init_by_tag(&yb16, 4, yd, dnnl_bf16, dnnl_format_tag_any) ==
             dnnl_success &&
         dnnl_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &xf, &wb, &yb16, st,
                                                  pd2, pd2) == dnnl_success &&
         dnnl_primitive_desc_create(&dpd, &dd, attr, eng, fpd) == dnnl_success;
    /* weight gradient: bf16 x and dy, fp32 dw */
    ok = ok &&
         dnnl_convolution_backward_weights_desc_init(&wdsc, dnnl_convolution_direct, &xb, &wf, NULL,
                                                     &yb16, st, pd2, pd2) == dnnl_success &&
         dnnl_primitive_desc_create(&wpd, &wdsc, attr, eng, fpd) == dnnl_success;
    if (ok) {
        e->x_f = *md_of(fpd, dnnl_query_src_md);
        e->w_f = *md_of(fpd, dnnl_query_weights_md);
        e->y_f = *md_of(fpd, dnnl_query_dst_md);
        e->dy_d = *md_of(dpd, dnnl_query_diff_dst_md);
        e->w_d = *md_of(dpd, dnnl_query_weights_md);
        e->dx_d = *md_of(dpd, dnnl_query_diff_src_md);
        e->x_w = *md_of(wpd, dnnl_query_src_md);
        e->dy_w = *md_of(wpd, dnnl_query_diff_dst_md);
        e->dw_w = *md_of(wpd, dnnl_query_diff_weights_md);
        size_t s0 = scratch_of(fpd), s1 = scratch_of(dpd), s2 = scratch_of(wpd);
        e->scratch = s0 > s1 ? (s0 > s2 ? s0 : s2) : (s1 > s2 ? s1 : s2);
        e->fwd = make_prim(fpd);
        e->bwd_d = make_prim(dpd);
        e->bwd_w = make_prim(wpd);
        e->reorder[R_X_F] = make_reorder(&xp, &e->x_f, 0);
        e->reorder[R_W_F] = make_reorder(&wp, &e->w_f, 0);
        e->reorder[R_Y] = make_reorder(&e->y_f, &yp, 0);
        e->reorder[R_DY_D] = make_reorder(&yp, &e->dy_d, 0);
        e->reorder[R_W_D] = make_reorder(&wp, &e->w_d, 0);
        e->reorder[R_DX_SET] = make_reorder(&e->dx_d, &xp, 0);
        e->reorder[R_DX_ADD] = make_reorder(&e->dx_d, &xp, 1);
        e->reorder[R_X_W] = make_reorder(&xp, &e->x_w, 0);
        e->reorder[R_DY_W] = make_reorder(&yp, &e->dy_w, 0);
        e->reorder[R_DW_ADD] = make_reorder(&e->dw_w, &wp, 1);
        ok = e->fwd && e->bwd_d && e->bwd_w;
        for (int i = 0; i < N_REORDER; i++)
            ok = ok && e->reorder[i];
    }
    if (fpd)
        dnnl_primitive_desc_destroy(fpd);
    if (dpd)
        dnnl_primitive_desc_destroy(dpd);
    if (wpd)
        dnnl_primitive_desc_destroy(wpd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    e->ok = ok;
    return ok ? SSL_OK
              : ssl_set_error(SSL_ERR_UNSUPPORTED,
                              "bf16 conv2d: oneDNN has no convolution for %lldx%lld %lld->%lld "
                              "stride %lld pad %lld on (%lld, %lld, %lld, %lld)",
                              (long long)k->kh, (long long)k->kw, (long long)k->c, (long long)k->oc,
                              (long long)k->stride, (long long)k->pad, (long long)k->n,
                              (long long)k->c, (long long)k->h, (long long)k->w);
}

static conv_entry_t *entry_get(const conv_key_t *k)
{
    uint64_t h = 1469598103934665603ull;
    const int64_t *v = (const int64_t *)k;
    for (size_t i = 0; i < sizeof *k / sizeof(int64_t); i++)
        h = (h ^ (uint64_t)v[i]) * 1099511628211ull;
    conv_entry_t *found = NULL;
    pthread_mutex_lock(&g_conv_lock);
    for (int i = 0; i < CONV_SLOTS && !found; i++) {
        conv_entry_t *e = &g_conv[(h + (uint64_t)i) % CONV_SLOTS];
        if (e->used && key_eq(&e->key, k)) {
            found = e;
        } else if (!e->used) {
            e->key = *k;
            e->used = 1;
            entry_create(e);
            found = e;
        }
    }
    pthread_mutex_unlock(&g_conv_lock);
    if (!found)
        ssl_set_error(SSL_ERR_NOMEM, "bf16 conv2d: more than %d layer shapes", CONV_SLOTS);
    else if (!found->ok)
        ssl_set_error(SSL_ERR_UNSUPPORTED, "bf16 conv2d: oneDNN refused this layer shape");
    return found && found->ok ? found : NULL;
}

/* ---------------------------------------------------------------- running */

typedef struct arg {
    int id;
    const dnnl_memory_desc_t *md;
    void *p;
} arg_t;

static int run(dnnl_primitive_t prim, const arg_t *a, int n)
{
    dnnl_memory_t m[5] = {NULL};
    dnnl_exec_arg_t ea[5];
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        ok = dnnl_memory_create(&m[i], a[i].md, ssl__dnnl_engine(), a[i].p) == dnnl_success;
        ea[i].arg = a[i].id;
        ea[i].memory = m[i];
    }
    ok = ok && dnnl_primitive_execute(prim, ssl__dnnl_stream(), n, ea) == dnnl_success &&
         dnnl_stream_wait(ssl__dnnl_stream()) == dnnl_success;
    for (int i = 0; i < n; i++)
        dnnl_memory_destroy(m[i]);
    return ok ? SSL_OK : ssl_set_error(SSL_ERR_UNSUPPORTED, "bf16 conv2d: oneDNN failed to run");
}

/* a convolution primitive on its three operands and the scratchpad at sp */
static int conv_exec(dnnl_primitive_t prim, const arg_t *a3, void *sp)
{
    const_dnnl_primitive_desc_t pd;
    if (dnnl_primitive_get_primitive_desc(prim, &pd) != dnnl_success)
        return ssl_set_error(SSL_ERR_UNSUPPORTED, "bf16 conv2d: oneDNN primitive without desc");
    const dnnl_memory_desc_t *spm = md_of(pd, dnnl_query_scratchpad_md);
    arg_t a[4] = {a3[0], a3[1], a3[2], {DNNL_ARG_SCRATCHPAD, spm, sp}};
    return run(prim, a, spm && dnnl_memory_desc_get_size(spm) ? 4 : 3);
}

static int reorder(dnnl_primitive_t r, const dnnl_memory_desc_t *from, const void *src,
                   const dnnl_memory_desc_t *to, void *dst)
{
    arg_t a[2] = {{DNNL_ARG_FROM, from, (void *)src}, {DNNL_ARG_TO, to, dst}};
    return run(r, a, 2);
}

static size_t sz(const dnnl_memory_desc_t *m)
{
    return (dnnl_memory_desc_get_size(m) + 63) / 64 * 64;
}

static void plain_mds(const conv_key_t *k, dnnl_memory_desc_t *xp, dnnl_memory_desc_t *wp,
                      dnnl_memory_desc_t *yp)
{
    int64_t oh = (k->h + 2 * k->pad - k->kh) / k->stride + 1;
    int64_t ow = (k->w + 2 * k->pad - k->kw) / k->stride + 1;
    dnnl_dims_t xd = {k->n, k->c, k->h, k->w}, wd = {k->oc, k->c, k->kh, k->kw};
    dnnl_dims_t yd = {k->n, k->oc, oh, ow};
    dnnl_memory_desc_init_by_tag(xp, 4, xd, dnnl_f32, dnnl_nchw);
    dnnl_memory_desc_init_by_tag(wp, 4, wd, dnnl_f32, dnnl_oihw);
    dnnl_memory_desc_init_by_tag(yp, 4, yd, dnnl_f32, dnnl_nchw);
}

/* The layer's primitives and the plain layouts of x, w and y */
static conv_entry_t *layer(const conv_key_t *k, dnnl_memory_desc_t *xp, dnnl_memory_desc_t *wp,
                           dnnl_memory_desc_t *yp)
{
    plain_mds(k, xp, wp, yp);
    return entry_get(k);
}

/* One operand of a pass: the user's fp32 NCHW/OIHW tensor (plain md, pointer), the reorder
 * between it and the primitive's layout, the argument id and the primitive's layout and buffer. */
typedef struct operand {
    int reorder, id;
    const dnnl_memory_desc_t *plain, *md;
    void *user, *buf;
} operand_t;

/* The two inputs reordered into the primitive's layouts, the primitive, its output reordered
 * into the user's tensor (stored or added, as out.reorder says). */
static int conv_pass(const conv_entry_t *e, dnnl_primitive_t prim, const operand_t *in0,
                     const operand_t *in1, const operand_t *out, void *sp)
{
    int st = reorder(e->reorder[in0->reorder], in0->plain, in0->user, in0->md, in0->buf);
    if (st == SSL_OK)
        st = reorder(e->reorder[in1->reorder], in1->plain, in1->user, in1->md, in1->buf);
    if (st == SSL_OK) {
        arg_t a[3] = {{in0->id, in0->md, in0->buf},
                      {in1->id, in1->md, in1->buf},
                      {out->id, out->md, out->buf}};
        st = conv_exec(prim, a, sp);
    }
    if (st == SSL_OK)
        st = reorder(e->reorder[out->reorder], out->md, out->buf, out->plain, out->user);
    return st;
}

int ssl__bf16_conv_forward(ssl_ctx_t *ctx, const float *x, const float *w, float *y, int64_t n,
                           int64_t c, int64_t h, int64_t wd, int64_t oc, int64_t kh, int64_t kw,
                           int64_t stride, int64_t pad)
{
    conv_key_t k = {n, c, h, wd, oc, kh, kw, stride, pad};
    dnnl_memory_desc_t xp, wp, yp;
    conv_entry_t *e = layer(&k, &xp, &wp, &yp);
    if (!e)
        return ssl_last_status();
    size_t bx = sz(&e->x_f), bw = sz(&e->w_f), by = sz(&e->y_f);
    char *s = ssl__scratch(ctx, bx + bw + by + e->scratch);
    if (!s)
        return SSL_ERR_NOMEM;
    operand_t ox = {R_X_F, DNNL_ARG_SRC, &xp, &e->x_f, (void *)x, s};
    operand_t ow = {R_W_F, DNNL_ARG_WEIGHTS, &wp, &e->w_f, (void *)w, s + bx};
    operand_t oy = {R_Y, DNNL_ARG_DST, &yp, &e->y_f, y, s + bx + bw};
    return conv_pass(e, e->fwd, &ox, &ow, &oy, s + bx + bw + by);
}

/* dx (+)= the input gradient (dx_add: add), dw += the weight gradient; either may be NULL */
int ssl__bf16_conv_backward(ssl_ctx_t *ctx, const float *x, const float *w, const float *dy,
                            float *dx, int dx_add, float *dw, int64_t n, int64_t c, int64_t h,
                            int64_t wd, int64_t oc, int64_t kh, int64_t kw, int64_t stride,
                            int64_t pad)
{
    conv_key_t k = {n, c, h, wd, oc, kh, kw, stride, pad};
    dnnl_memory_desc_t xp, wp, yp;
    conv_entry_t *e = layer(&k, &xp, &wp, &yp);
    if (!e)
        return ssl_last_status();
    size_t b1 = sz(&e->dy_d), b2 = sz(&e->w_d), b3 = sz(&e->dx_d);
    size_t b4 = sz(&e->x_w), b5 = sz(&e->dy_w), b6 = sz(&e->dw_w);
    char *s = ssl__scratch(ctx, b1 + b2 + b3 + b4 + b5 + b6 + e->scratch);
    if (!s)
        return SSL_ERR_NOMEM;
    char *sp = s + b1 + b2 + b3 + b4 + b5 + b6;
    int st = SSL_OK;
    if (dx) {
        operand_t ody = {R_DY_D, DNNL_ARG_DIFF_DST, &yp, &e->dy_d, (void *)dy, s};
        operand_t ow = {R_W_D, DNNL_ARG_WEIGHTS, &wp, &e->w_d, (void *)w, s + b1};
        operand_t odx = {
            dx_add ? R_DX_ADD : R_DX_SET, DNNL_ARG_DIFF_SRC, &xp, &e->dx_d, dx, s + b1 + b2};
        st = conv_pass(e, e->bwd_d, &ody, &ow, &odx, sp);
    }
    if (dw && st == SSL_OK) {
        char *s2 = s + b1 + b2 + b3;
        operand_t ox = {R_X_W, DNNL_ARG_SRC, &xp, &e->x_w, (void *)x, s2};
        operand_t ody = {R_DY_W, DNNL_ARG_DIFF_DST, &yp, &e->dy_w, (void *)dy, s2 + b4};
        operand_t odw = {R_DW_ADD, DNNL_ARG_DIFF_WEIGHTS, &wp, &e->dw_w, dw, s2 + b4 + b5};
        st = conv_pass(e, e->bwd_w, &ox, &ody, &odw, sp);
    }
    return st;
}

int ssl__bf16_conv_usable(const ssl_ctx_t *ctx, int64_t kh, int64_t stride)
{
    if (!ssl__ctx_bf16(ctx) || ssl__bf16_conv_dnnl == 0)
        return 0;
    /* With AMX tiles every layer (oneDNN's bf16 3x3 64->64 on 28x28 maps measured 12x fp32
     * there). With AVX512-BF16 alone only the 3x3 stride-2 layers beat the fp32 Winograd and
     * direct kernels (Fashion-MNIST ResNet-18, 256 images, 1 thread, fwd + bwd, median of 7
     * alternating rounds: 16->32 @28 1.13x, 32->64 @14 1.58x, 64->128 @7 2.04x; the stride-1
     * layers 0.83-1.13x, the 1x1 projections 0.96x; bench_ops --bf16). */
    return ssl__bf16_conv_dnnl == 2 || ssl__bf16_amx() || (kh == 3 && stride == 2);
}

#else /* no oneDNN */

int ssl__bf16_conv_usable(const ssl_ctx_t *ctx, int64_t kh, int64_t stride)
{
    (void)ctx, (void)kh, (void)stride;
    return 0;
}

int ssl__bf16_conv_forward(ssl_ctx_t *ctx, const float *x, const float *w, float *y, int64_t n,
                           int64_t c, int64_t h, int64_t wd, int64_t oc, int64_t kh, int64_t kw,
                           int64_t stride, int64_t pad)
{
    (void)ctx, (void)x, (void)w, (void)y, (void)n, (void)c, (void)h, (void)wd, (void)oc;
    (void)kh, (void)kw, (void)stride, (void)pad;
    return ssl__bf16_check();
}

int ssl__bf16_conv_backward(ssl_ctx_t *ctx, const float *x, const float *w, const float *dy,
                            float *dx, int dx_add, float *dw, int64_t n, int64_t c, int64_t h,
                            int64_t wd, int64_t oc, int64_t kh, int64_t kw, int64_t stride,
                            int64_t pad)
{
    (void)ctx, (void)x, (void)w, (void)dy, (void)dx, (void)dx_add, (void)dw, (void)n, (void)c;
    (void)h, (void)wd, (void)oc, (void)kh, (void)kw, (void)stride, (void)pad;
    return ssl__bf16_check();
}

#endif
