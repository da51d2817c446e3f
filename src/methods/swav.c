/* SwAV: swapped prediction of Sinkhorn-Knopp codes over learned prototypes, multi-crop. */
#include "methods_internal.h"

typedef struct swav_method {
    ssl_method_t base;
    ssl_mlp_t proj;
    ssl_swav_prototypes_t protos;
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
    return ssl_swav_prototypes_init(&sm->protos, b->online, "prototypes", &s.swav, b->seed);
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
    (void)pos;
    swav_method_t *sm = (swav_method_t *)m;
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
    ssl_tensor_t *scores = ssl_swav_prototypes_forward(ctx, &sm->protos, z, NULL); // (V B, K)
    int n_assign = L->swav.n_assign < m->n_global ? L->swav.n_assign : m->n_global;
    return ssl_loss_swav(ctx, scores, m->n_views, L->swav.crops_for_assign, n_assign, NULL,
                         L->swav.temperature, L->swav.epsilon, L->swav.sinkhorn_iterations);
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
};
