/* SwAV: swapped prediction of Sinkhorn-Knopp codes over learned prototypes, multi-crop.
 *
 * With loss.queue_length > 0, as main_swav.py: from epoch epoch_queue_starts on, every step
 * stores the normalised embeddings of each assigned crop in a queue of its own (after the step;
 * "loss.queue<a>.*" buffers, checkpointed), and once a queue is full its scores against the
 * current prototypes are stacked before the batch's for Sinkhorn-Knopp only: the codes of the
 * batch come from the joint normalisation, the loss stays over the batch. */
#include "methods_internal.h"

#include <stdio.h>

typedef struct swav_method {
    ssl_method_t base;
    ssl_mlp_t proj;
    ssl_swav_prototypes_t protos;
    ssl_queue_t queue[SSL_SWAV_MAX_ASSIGN]; /* per assigned crop, with queue_length > 0 */
    ssl_tensor_t *pending;                  /* the step's normalised embeddings (V B, D) */
} swav_method_t;

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    swav_method_t *sm = (swav_method_t *)m;
    ssl_head_cfg_t h, s;
    if (ssl__method_read_head(m, b, "projector", "swav_projector", &h) != SSL_OK)
        return ssl_last_status();
    h.mlp.in = ssl_encoder_dim(m->enc);
    if (ssl_mlp_init(&sm->proj, b->online, "projector", &h.mlp, b->seed) != SSL_OK ||
        ssl__method_read_head(m, b, "head", "swav_prototypes", &s) != SSL_OK)
        return ssl_last_status();
    s.swav.in_dim = h.mlp.out;
    if (ssl_swav_prototypes_init(&sm->protos, b->online, "prototypes", &s.swav, b->seed) != SSL_OK)
        return ssl_last_status();
    const ssl_loss_cfg_t *L = &m->loss[0];
    for (int a = 0; a < L->swav.n_assign; a++)
        if (L->swav.crops_for_assign[a] >= m->n_views)
            return ssl__method_fail(b, "loss", "crops_for_assign",
                                    "crop %d, but the views section makes %d crops (0 to %d)",
                                    L->swav.crops_for_assign[a], m->n_views, m->n_views - 1);
    int64_t Q = L->swav.queue_length, B = m->env.batch_size;
    if (Q > 0 && B > 0 && Q % B)
        return ssl__method_fail(b, "loss", "queue_length",
                                "%lld is not a multiple of train.batch_size %lld (the queue "
                                "shifts by whole batches; main_swav.py rounds down to %lld)",
                                (long long)Q, (long long)B, (long long)(Q - Q % B));
    for (int a = 0; Q > 0 && a < L->swav.n_assign; a++) {
        char name[32];
        snprintf(name, sizeof name, "loss.queue%d", a);
        if (ssl_queue_init(&sm->queue[a], b->online, name, Q, h.mlp.out, 0, b->seed) != SSL_OK)
            return ssl_last_status();
    }
    return SSL_OK;
}

/* The queues take part from epoch_queue_starts on (filled from then, used once full). */
static int queue_active(const ssl_method_t *m, const ssl_step_pos_t *pos)
{
    const ssl_loss_cfg_t *L = &m->loss[0];
    return L->swav.queue_length > 0 && (double)pos->epoch >= L->swav.epoch_queue_starts;
}

/* Scores of every full queue against the current prototypes, (Q, K) each, no tape; NULL
 * entries for queues not full yet. Returns 0 on error. */
static int queue_scores(swav_method_t *sm, ssl_ctx_t *ctx, ssl_tensor_t **qs)
{
    const ssl_loss_cfg_t *L = &sm->base.loss[0];
    int prev = ssl_ctx_set_grad(ctx, 0), ok = 1;
    for (int a = 0; a < L->swav.n_assign; a++) {
        const ssl_queue_t *q = &sm->queue[a];
        if (ssl_queue_count(q) == ssl_queue_size(q))
            ok = ok && (qs[a] = ssl_matmul(ctx, q->keys, sm->protos.weight, 0, 1)) != NULL;
    }
    ssl_ctx_set_grad(ctx, prev);
    return ok;
}

static int before_step(ssl_method_t *m, ssl_params_t *online, const ssl_step_pos_t *pos)
{
    swav_method_t *sm = (swav_method_t *)m;
    ssl_swav_prototypes_normalize(&sm->protos);
    /* the result is 1 while frozen, not a status (cannot fail) */
    (void)ssl_swav_prototypes_set_iteration(&sm->protos, online, pos->step);
    return SSL_OK;
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    swav_method_t *sm = (swav_method_t *)m;
    sm->pending = NULL;
    const ssl_loss_cfg_t *L = &m->loss[0];
    /* As swav's ResNet.forward: the crops of one resolution go through the backbone as one
     * batch and the projection head runs once over every crop, so BatchNorm normalises over all
     * crops of the step (one statistics update per run, not one per view). */
    ssl_tensor_t *z = ssl_mlp_forward(
        ctx, &sm->proj, ssl__method_multicrop_pooled(ctx, m->enc, b, m->n_views), 1); // (V B, D)
    if (z) { /* the two global views' projections, for the collapse and alignment metrics */
        int prev = ssl_ctx_set_grad(ctx, 0);
        m->last_z = ssl_slice(ctx, z, 0, 0, b->size);
        m->last_z2 = ssl_slice(ctx, z, 0, b->size, b->size);
        ssl_ctx_set_grad(ctx, prev);
    }
    ssl_tensor_t *zn = NULL;
    ssl_tensor_t *scores = ssl_swav_prototypes_forward(ctx, &sm->protos, z, &zn); // (V B, K)
    ssl_tensor_t *qs[SSL_SWAV_MAX_ASSIGN] = {NULL};
    int active = queue_active(m, pos);
    if (active && !queue_scores(sm, ctx, qs))
        return NULL;
    /* several ranks: the codes (Sinkhorn) and the loss of the whole batch on every rank, from
     * every rank's scores (gathered with their gradient); the queues take every rank's rows */
    scores = ssl__method_gather_views(ctx, scores, m->n_views);
    if (active && ssl__ctx_comm(ctx)) {
        int prev = ssl_ctx_set_grad(ctx, 0);
        zn = ssl__method_gather_views(ctx, zn, m->n_views);
        ssl_ctx_set_grad(ctx, prev);
    }
    sm->pending = active ? zn : NULL;
    return ssl_loss_swav(ctx, scores, m->n_views, L->swav.crops_for_assign, L->swav.n_assign,
                         active ? qs : NULL, L->swav.temperature, L->swav.epsilon,
                         L->swav.sinkhorn_iterations);
}

/* Each assigned crop's embeddings of the step into its queue (main_swav.py fills the queue
 * after computing the codes, so a step's codes never see its own batch twice). */
static int after_step(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_step_pos_t *pos)
{
    (void)ctx, (void)pos;
    swav_method_t *sm = (swav_method_t *)m;
    const ssl_loss_cfg_t *L = &m->loss[0];
    const ssl_tensor_t *e = sm->pending;
    for (int a = 0; e && a < L->swav.n_assign; a++) {
        int64_t nb = e->shape[0] / m->n_views, d = e->shape[1];
        ssl_tensor_t rows = *e; /* the rows of crop crops_for_assign[a] */
        rows.shape[0] = nb;
        rows.numel = nb * d;
        rows.data = e->data + (int64_t)L->swav.crops_for_assign[a] * nb * d;
        if (ssl_queue_push(&sm->queue[a], &rows) != SSL_OK)
            return ssl_last_status();
    }
    sm->pending = NULL;
    return SSL_OK;
}

static const int k_types[] = {SSL_LOSS_SWAV, -1};

const ssl_method_def_t ssl__method_swav = {
    .name = "swav",
    .loss_types = k_types,
    .size = sizeof(swav_method_t),
    .target = SSL_TARGET_NONE,
    .mask_kind = SSL_MASK_NONE,
    .min_global = 2,
    .create = create,
    .before_step = before_step,
    .loss = loss,
    .after_step = after_step,
};
