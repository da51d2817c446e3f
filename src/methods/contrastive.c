/* Contrastive methods (InfoNCE): SimCLR's NT-Xent between the two views' projections, MoCo v2's
 * queries against a momentum encoder's keys and a queue of past keys, MoCo v3's symmetrised
 * in-batch loss from the predictor's outputs to the momentum encoder's projections. */
#include "methods_internal.h"

static int target_for(const ssl_loss_cfg_t *l)
{
    return l->infonce.form == SSL_INFONCE_NTXENT ? SSL_TARGET_NONE : SSL_TARGET_EMA;
}

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    ssl_proj_method_t *pm = (ssl_proj_method_t *)m;
    int form = m->loss[0].infonce.form;
    int64_t dim = 0;
    const char *proj = form == SSL_INFONCE_MOCO_V2   ? "mocov2_projector"
                       : form == SSL_INFONCE_MOCO_V3 ? "mocov3_projector"
                                                     : "simclr_projector";
    if (ssl__proj_create(m, b, proj, form == SSL_INFONCE_MOCO_V3 ? "mocov3_predictor" : NULL,
                         &dim) != SSL_OK)
        return ssl_last_status();
    if (form == SSL_INFONCE_MOCO_V2) {
        if (ssl_queue_init(&pm->queue, b->online, "loss.queue", m->loss[0].infonce.queue_size, dim,
                           1, b->seed) != SSL_OK)
            return ssl_last_status();
        pm->has_queue = 1;
    }
    return SSL_OK;
}

static ssl_tensor_t *term(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_loss_cfg_t *L, ssl_tensor_t *const z[2],
                          ssl_tensor_t *const p[2])
{
    ssl_proj_method_t *pm = (ssl_proj_method_t *)m;
    float tau = L->infonce.temperature;
    /* several ranks: the in-batch losses (SimCLR, MoCo v3) are of this rank's queries against
     * every rank's rows (SimCLR's gathered with their gradient, MoCo v3's keys without), as the
     * official code: B x (N B) logits per rank; the mean over the ranks is the batch's loss */
    const int64_t row0 = ssl__method_row0(ctx, b->size);
    if (L->infonce.form == SSL_INFONCE_NTXENT)
        return ssl__loss_ntxent_rows(ctx, z[0], z[1], ssl__all_gather(ctx, z[0]),
                                     ssl__all_gather(ctx, z[1]), row0, tau);
    ssl_tensor_t *k0 = ssl__proj_target_z(pm, ctx, ssl__method_view(b, 0));
    ssl_tensor_t *k1 = ssl__proj_target_z(pm, ctx, ssl__method_view(b, 1));
    if (L->infonce.form == SSL_INFONCE_MOCO_V3)
        return ssl__loss_moco_v3_rows(ctx, p[0], p[1], ssl__all_gather_nograd(ctx, k0),
                                      ssl__all_gather_nograd(ctx, k1), row0, tau);
    /* MoCo v2, symmetrised (a mean over this rank's queries); both views' keys of every rank
     * are queued after the step, view 0's then view 1's, each in rank order */
    ssl_tensor_t *l0 = ssl_loss_moco(ctx, z[0], k1, pm->queue.keys, tau);
    ssl_tensor_t *l1 = ssl_loss_moco(ctx, z[1], k0, pm->queue.keys, tau);
    ssl_tensor_t *keys[2] = {ssl__all_gather_nograd(ctx, k0), ssl__all_gather_nograd(ctx, k1)};
    pm->pending_keys = ssl_concat(ctx, keys, 2, 0);
    return ssl_scale(ctx, ssl_add(ctx, l0, l1), 0.5f, 0.0f);
}

static const int k_types[] = {SSL_LOSS_INFONCE, -1};
static const char *const k_ema[] = {"encoder.", "projector.", NULL};

const ssl_method_def_t ssl__method_contrastive = {
    .name = "contrastive",
    .loss_types = k_types,
    .size = sizeof(ssl_proj_method_t),
    .target_for = target_for,
    .ema_optional = 1,
    .mask_kind = SSL_MASK_NONE,
    .min_global = 2,
    .ema_modules = k_ema,
    .create = create,
    .loss = ssl__proj_loss,
    .term = term,
    .after_step = ssl__proj_push_keys,
};
