/* Pieces several method families share: head sections, views, pooled features, multi-crop
 * batching, and the projector pipeline of the two-view families (contrastive, regression,
 * redundancy) with its weighted list of loss terms. */
#include "methods_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *const ssl__method_sections[] = {"projector",  "predictor",     "head",
                                            "text",       "image_proj",    "decoder",
                                            "generator",  "discriminator", "unet",
                                            "tokenizer",  "network",       NULL};

int ssl__method_pixel_view(ssl_method_t *m, ssl_method_build_t *b, const char *who,
                           const char *why, int size_multiple)
{
    if (m->env.view_normalize)
        return ssl__method_fail(b, NULL, "views",
                                "the %s %s pixels in [0, 1]: set \"normalize\": false in "
                                "views[0]", who, why);
    if (size_multiple == 4 && (m->env.view_size % 4 || m->env.view_size < 4))
        return ssl__method_fail(b, NULL, "views",
                                "views[0].size %d: the %s doubles (halves) a map twice, so the "
                                "size must be a multiple of 4", m->env.view_size, who);
    if (m->n_views != 1)
        return ssl__method_fail(b, NULL, "views", "the %s takes one view, the config makes %d",
                                who, m->n_views);
    return SSL_OK;
}

void ssl__method_add_part(ssl_method_t *m, const char *name, const ssl_tensor_t *v)
{
    if (v && m->parts.n < SSL_LOSS_MAX_PARTS) {
        m->parts.name[m->parts.n] = name;
        m->parts.value[m->parts.n++] = v->data[0];
    }
}

ssl_cfg_t ssl__method_section(ssl_method_t *m, ssl_method_build_t *b, const char *key)
{
    for (int i = 0; ssl__method_sections[i]; i++)
        if (!strcmp(ssl__method_sections[i], key))
            m->read_sections |= 1u << i;
    return ssl_cfg_obj(b->model, key);
}

int ssl__method_read_head(ssl_method_t *m, ssl_method_build_t *b, const char *key,
                          const char *def_kind, ssl_head_cfg_t *h)
{
    ssl_cfg_t sec = ssl__method_section(m, b, key);
    return ssl__head_cfg_read(&sec, def_kind, h);
}

int ssl__method_fail(ssl_method_build_t *b, const char *section, const char *key, const char *fmt,
                     ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!section)
        return ssl_cfg_fail(b->root, key, "%s", msg);
    ssl_cfg_t sec = ssl_cfg_obj(b->root, section);
    return ssl_cfg_fail(&sec, key, "%s", msg);
}

/* without a tape: the eval encoder's readout of n blocks (1: its pooled output) */
static ssl_tensor_t *readout(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int n)
{
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *f = ssl_encoder_readout(ctx, m->eval_target ? m->tenc : m->enc, x, n, 0);
    ssl_ctx_set_grad(ctx, prev);
    return f;
}

ssl_tensor_t *ssl__method_features(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    if (m->def->features) { /* a method's own readout (the VAE's mu) */
        int prev = ssl_ctx_set_grad(ctx, 0);
        ssl_tensor_t *f = m->def->features(m, ctx, x);
        ssl_ctx_set_grad(ctx, prev);
        return f;
    }
    return readout(m, ctx, x, m->eval_blocks > 1 ? m->eval_blocks : 1);
}

ssl_tensor_t *ssl__method_eval_pooled(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    return readout(m, ctx, x, 1);
}

ssl_tensor_t *ssl__method_gather_views(ssl_ctx_t *ctx, ssl_tensor_t *x, int n_views)
{
    if (!x || !ssl__ctx_comm(ctx))
        return x;
    if (n_views == 1)
        return ssl__all_gather(ctx, x);
    int64_t B = x->shape[0] / n_views;
    ssl_tensor_t *parts[SSL_MAX_VIEWS];
    for (int v = 0; v < n_views; v++)
        parts[v] = ssl__all_gather(ctx, ssl_slice(ctx, x, 0, (int64_t)v * B, B));
    return ssl_concat(ctx, parts, n_views, 0);
}

int64_t ssl__method_row0(ssl_ctx_t *ctx, int64_t B)
{
    const ssl_comm_t *c = ssl__ctx_comm(ctx);
    return c ? (int64_t)c->rank * B : 0;
}

float ssl__method_teacher_temp(const ssl_loss_cfg_t *L, const ssl_step_pos_t *pos)
{
    int64_t spe = pos->steps_per_epoch ? pos->steps_per_epoch : 1;
    double epoch = (double)pos->epoch + (double)(pos->step % spe) / (double)spe;
    return ssl_dino_teacher_temp(L->dino.warmup_teacher_temp, L->dino.teacher_temp,
                                 L->dino.warmup_teacher_temp_epochs, epoch);
}

ssl_tensor_t *ssl__method_dino_loss(ssl_ctx_t *ctx, const ssl_loss_cfg_t *L, ssl_tensor_t *S,
                                    ssl_tensor_t *T, int n_global, ssl_tensor_t *center,
                                    const ssl_step_pos_t *pos)
{
    float tt = ssl__method_teacher_temp(L, pos);
    if (L->centering == SSL_CENTERING_SINKHORN_KNOPP) /* dinov2's sinkhorn_knopp_teacher */
        return ssl_loss_dino_targets(
            ctx, S, ssl__sinkhorn_ranks(ctx, T, tt, SSL_SK_TEACHER_ITERS), n_global,
            L->dino.student_temp);
    return ssl_loss_dino(ctx, S, T, n_global, center, L->dino.student_temp, tt);
}

int ssl__method_center_update(ssl_ctx_t *ctx, ssl_tensor_t *center, const ssl_tensor_t *T,
                              float momentum)
{
    if (!ssl__ctx_comm(ctx))
        return ssl_dino_center_update(center, T, momentum);
    /* the mean teacher output over every rank's rows */
    int64_t n = T->shape[0], k = T->shape[1];
    double *sum = ssl_arena_alloc(ctx, sizeof(double) * (size_t)(k + 1));
    float *mean = ssl_arena_alloc(ctx, sizeof(float) * (size_t)k);
    if (!sum || !mean)
        return ssl_set_error(SSL_ERR_NOMEM, "center: out of memory");
#pragma omp parallel for schedule(static) if (n * k > 16384)
    for (int64_t j = 0; j < k; j++) {
        double a = 0;
        for (int64_t r = 0; r < n; r++)
            a += T->data[r * k + j];
        sum[j] = a;
    }
    sum[k] = (double)n;
    if (ssl__all_reduce_f64(ctx, sum, k + 1) != SSL_OK)
        return ssl_last_status();
    for (int64_t j = 0; j < k; j++)
        mean[j] = (float)(sum[j] / sum[k]);
    return ssl_dino_center_update_mean(center, mean, momentum);
}

ssl_tensor_t *ssl__method_mask_token(ssl_method_build_t *b, const char *name, int64_t dim)
{
    ssl_tensor_t *t =
        ssl_params_add(b->online, name, 3, (int64_t[]){1, 1, dim}, SSL_PARAM_TRAINABLE, 0);
    if (t)
        ssl_rng_fill_trunc_normal(t->data, (size_t)dim, 0.0f, 0.02f, -0.02f, 0.02f, b->seed,
                                  ssl_nn_name_stream(t->name), 0);
    return t;
}

ssl_tensor_t *ssl__method_view(const ssl_batch_t *b, int v)
{
    return (ssl_tensor_t *)&b->views[v]; /* loader-owned, no gradient */
}

ssl_tensor_t *ssl__method_pooled(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x)
{
    ssl_encoder_out_t o;
    return ssl_encoder_forward(ctx, e, x, NULL, 0, 1, &o) == SSL_OK ? o.pooled : NULL;
}

ssl_tensor_t *ssl__method_multicrop_pooled(ssl_ctx_t *ctx, const ssl_encoder_t *e,
                                           const ssl_batch_t *b, int n)
{
    /* BatchNorm statistics over all crops of one size together, one update of the running
     * statistics per run of them; the caller's head then runs once over all */
    ssl_tensor_t *feats[SSL_MAX_VIEWS], *xs[SSL_MAX_VIEWS];
    int nf = 0;
    for (int v0 = 0, v1; v0 < n; v0 = v1) {
        for (v1 = v0; v1 < n && b->views[v1].shape[2] == b->views[v0].shape[2] &&
                      b->views[v1].shape[3] == b->views[v0].shape[3];
             v1++)
            xs[v1 - v0] = ssl__method_view(b, v1);
        feats[nf++] =
            ssl__method_pooled(ctx, e, v1 - v0 == 1 ? xs[0] : ssl_concat(ctx, xs, v1 - v0, 0));
    }
    return nf == 1 ? feats[0] : ssl_concat(ctx, feats, nf, 0);
}

/* ---------------------------------------------------------------- the projector pipeline */

int ssl__proj_create(ssl_method_t *m, ssl_method_build_t *b, const char *proj_kind,
                     const char *pred_kind, int64_t *out_dim)
{
    ssl_proj_method_t *pm = (ssl_proj_method_t *)m;
    ssl_head_cfg_t h;
    if (ssl__method_read_head(m, b, "projector", proj_kind, &h) != SSL_OK)
        return ssl_last_status();
    h.mlp.in = ssl_encoder_dim(m->enc);
    if (ssl_mlp_init(&pm->proj, b->online, "projector", &h.mlp, b->seed) != SSL_OK ||
        (b->ema &&
         ssl_mlp_init(&pm->tproj, b->target, "target.projector", &h.mlp, b->seed) != SSL_OK))
        return ssl_last_status();
    *out_dim = h.mlp.out;
    if (!pred_kind)
        return SSL_OK;
    ssl_head_cfg_t q;
    if (ssl__method_read_head(m, b, "predictor", pred_kind, &q) != SSL_OK)
        return ssl_last_status();
    q.mlp.in = h.mlp.out;
    if (q.mlp.out != h.mlp.out) {
        ssl_cfg_t pc = ssl_cfg_obj(b->model, "predictor");
        return ssl_cfg_fail(&pc, "out_dim", "%lld must equal the projector's out_dim %lld",
                            (long long)q.mlp.out, (long long)h.mlp.out);
    }
    if (ssl_mlp_init(&pm->pred, b->online, "predictor", &q.mlp, b->seed) != SSL_OK)
        return ssl_last_status();
    pm->has_pred = 1;
    return SSL_OK;
}

ssl_tensor_t *ssl__proj_target_z(ssl_proj_method_t *pm, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *z =
        ssl_mlp_forward(ctx, &pm->tproj, ssl__method_pooled(ctx, pm->base.tenc, x), 1);
    ssl_ctx_set_grad(ctx, prev);
    return z;
}

ssl_tensor_t *ssl__proj_loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                             const ssl_step_pos_t *pos)
{
    (void)pos;
    ssl_proj_method_t *pm = (ssl_proj_method_t *)m;
    pm->pending_keys = NULL;
    ssl_tensor_t *z[2], *p[2] = {NULL, NULL};
    for (int v = 0; v < 2; v++) {
        z[v] = ssl_mlp_forward(ctx, &pm->proj,
                               ssl__method_pooled(ctx, m->enc, ssl__method_view(b, v)), 1);
        if (pm->has_pred)
            p[v] = ssl_mlp_forward(ctx, &pm->pred, z[v], 1);
    }
    m->last_z = z[0];
    m->last_z2 = z[1];
    ssl_tensor_t *total = NULL;
    for (int i = 0; i < m->n_loss; i++) {
        ssl_tensor_t *l = m->term[i](m, ctx, b, &m->loss[i], z, p);
        if (m->loss[i].weight != 1.0f)
            l = ssl_scale(ctx, l, m->loss[i].weight, 0.0f);
        total = total ? ssl_add(ctx, total, l) : l;
    }
    return total;
}

int ssl__proj_push_keys(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_step_pos_t *pos)
{
    (void)ctx, (void)pos;
    ssl_proj_method_t *pm = (ssl_proj_method_t *)m;
    int st =
        pm->has_queue && pm->pending_keys ? ssl_queue_push(&pm->queue, pm->pending_keys) : SSL_OK;
    pm->pending_keys = NULL;
    return st;
}
