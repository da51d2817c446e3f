/* Regression to a target branch: BYOL (predictor -> momentum encoder's projection) and SimSiam
 * (predictor -> the other view's projection, stop-gradient). */
#include "methods_internal.h"

static int target_for(const ssl_loss_cfg_t *l)
{
    return l->type == SSL_LOSS_BYOL ? SSL_TARGET_EMA : SSL_TARGET_STOP_GRAD;
}

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    int byol = m->loss[0].type == SSL_LOSS_BYOL;
    int64_t dim = 0;
    return ssl__proj_create(m, b, byol ? "byol_projector" : "simsiam_projector",
                            byol ? "byol_predictor" : "simsiam_predictor", &dim);
}

static ssl_tensor_t *term(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_loss_cfg_t *L, ssl_tensor_t *const z[2],
                          ssl_tensor_t *const p[2])
{
    if (L->type == SSL_LOSS_SIMSIAM)
        return ssl_loss_simsiam(ctx, p[0], p[1], z[0], z[1]);
    ssl_proj_method_t *pm = (ssl_proj_method_t *)m;
    ssl_tensor_t *t0 = ssl__proj_target_z(pm, ctx, ssl__method_view(b, 0));
    ssl_tensor_t *t1 = ssl__proj_target_z(pm, ctx, ssl__method_view(b, 1));
    return ssl_loss_byol(ctx, p[0], p[1], t0, t1);
}

static const int k_types[] = {SSL_LOSS_BYOL, SSL_LOSS_SIMSIAM, -1};
static const char *const k_ema[] = {"encoder.", "projector.", NULL};

const ssl_method_def_t ssl__method_regression = {
    .name = "regression",
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
};
