/* DINO: self-distillation without labels. The student (every view, multi-crop) predicts the
 * EMA teacher's centred, sharpened distribution over the global views; the center is an EMA of
 * the teacher's outputs, updated after the step. */
#include "methods_internal.h"

typedef struct dino_method {
    ssl_method_t base;
    ssl_dino_head_t head, thead;
    ssl_tensor_t *center;          /* (1, K) buffer "loss.center" */
    ssl_tensor_t *pending_teacher; /* the step's teacher outputs, for the center */
} dino_method_t;

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    dino_method_t *dm = (dino_method_t *)m;
    ssl_head_cfg_t h;
    if (ssl__method_read_head(m, b, "head", "dino", &h) != SSL_OK ||
        ssl_head_cfg_fit_encoder(&h, m->enc) != SSL_OK ||
        ssl_dino_head_init(&dm->head, b->online, "head", &h.dino, b->seed) != SSL_OK ||
        ssl_dino_head_init(&dm->thead, b->target, "target.head", &h.dino, b->seed) != SSL_OK)
        return ssl_last_status();
    /* Sinkhorn-Knopp centering keeps no center */
    if (m->loss[0].centering == SSL_CENTERING_CENTER &&
        ssl_dino_center_init(&dm->center, b->online, "loss.center", h.dino.out_dim) != SSL_OK)
        return ssl_last_status();
    return SSL_OK;
}

static int before_step(ssl_method_t *m, ssl_params_t *online, const ssl_step_pos_t *pos)
{
    /* returns 1 while the last layer is frozen: not a status */
    (void)ssl_dino_head_set_epoch(&((dino_method_t *)m)->head, online, (int)pos->epoch);
    return SSL_OK;
}

/* DINO's MultiCropWrapper: the head once over every view's features, (n B, K). */
static ssl_tensor_t *multicrop_forward(ssl_ctx_t *ctx, const ssl_encoder_t *e,
                                       const ssl_dino_head_t *h, const ssl_batch_t *b, int n)
{
    return ssl_dino_head_forward(ctx, h, ssl__method_multicrop_pooled(ctx, e, b, n), 1, NULL);
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    dino_method_t *dm = (dino_method_t *)m;
    ssl_tensor_t *S = multicrop_forward(ctx, m->enc, &dm->head, b, m->n_views);
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *T = multicrop_forward(ctx, m->tenc, &dm->thead, b, m->n_global);
    ssl_ctx_set_grad(ctx, prev);
    dm->pending_teacher = dm->center ? T : NULL;
    m->last_z = S;
    return ssl__method_dino_loss(ctx, &m->loss[0], S, T, m->n_global, dm->center, pos);
}

static int after_step(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_step_pos_t *pos)
{
    (void)pos;
    dino_method_t *dm = (dino_method_t *)m;
    if (dm->pending_teacher &&
        ssl__method_center_update(ctx, dm->center, dm->pending_teacher,
                                  m->loss[0].dino.center_momentum) != SSL_OK)
        return ssl_last_status();
    dm->pending_teacher = NULL;
    return SSL_OK;
}

static const int k_types[] = {SSL_LOSS_DINO, -1};
static const char *const k_ema[] = {"encoder.", "head.", NULL};

const ssl_method_def_t ssl__method_dino = {
    .name = "dino",
    .loss_types = k_types,
    .size = sizeof(dino_method_t),
    .target = SSL_TARGET_EMA,
    .mask_kind = SSL_MASK_NONE,
    .min_global = 2,
    .ema_modules = k_ema,
    .create = create,
    .before_step = before_step,
    .loss = loss,
    .after_step = after_step,
};
