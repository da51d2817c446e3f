/* Redundancy reduction between the two views' projections: Barlow Twins (cross-correlation to
 * the identity) and VICReg (variance, invariance, covariance). */
#include "methods_internal.h"

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    int64_t dim = 0;
    return ssl__proj_create(
        m, b, m->loss[0].type == SSL_LOSS_BARLOW ? "barlow_projector" : "vicreg_projector", NULL,
        &dim);
}

static ssl_tensor_t *term(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_loss_cfg_t *L, ssl_tensor_t *const z[2],
                          ssl_tensor_t *const p[2])
{
    (void)m, (void)b, (void)p;
    /* batch statistics over the whole batch: every rank's rows, gathered with their gradient */
    ssl_tensor_t *z0 = ssl__all_gather(ctx, z[0]), *z1 = ssl__all_gather(ctx, z[1]);
    if (L->type == SSL_LOSS_BARLOW)
        return ssl_loss_barlow(ctx, z0, z1, L->barlow.lambda, L->barlow.scale, NULL);
    return ssl_loss_vicreg(ctx, z0, z1, &L->vicreg, NULL);
}

static const int k_types[] = {SSL_LOSS_BARLOW, SSL_LOSS_VICREG, -1};
static const char *const k_ema[] = {"encoder.", "projector.", NULL};

const ssl_method_def_t ssl__method_redundancy = {
    .name = "redundancy",
    .loss_types = k_types,
    .size = sizeof(ssl_proj_method_t),
    .target = SSL_TARGET_NONE,
    .ema_optional = 1,
    .mask_kind = SSL_MASK_NONE,
    .min_global = 2,
    .ema_modules = k_ema,
    .create = create,
    .loss = ssl__proj_loss,
    .term = term,
};
