/* Negative-free regression: BYOL (normalised MSE, 2 - 2 cos) and SimSiam (negative cosine),
 * symmetrised over the two views, with the targets behind a stop-gradient. */
#include "losses_internal.h"

static int check4(const char *L, ssl_tensor_t *p1, ssl_tensor_t *p2, ssl_tensor_t *z1,
                  ssl_tensor_t *z2)
{
    return ssl__loss_check_pair(L, "p1", p1, "p2", p2, 1) &&
           ssl__loss_check_pair(L, "p1", p1, "z1", z1, 1) &&
           ssl__loss_check_pair(L, "p1", p1, "z2", z2, 1);
}

/* mean_n cos(p_n, sg(z_n)) */
static ssl_tensor_t *mean_cos(ssl_ctx_t *ctx, ssl_tensor_t *p, ssl_tensor_t *z)
{
    return ssl_mean_all(ctx, ssl__loss_row_cos(ctx, p, ssl__loss_sg(ctx, z)));
}

ssl_tensor_t *ssl_loss_byol(ssl_ctx_t *ctx, ssl_tensor_t *p1, ssl_tensor_t *p2, ssl_tensor_t *z1,
                            ssl_tensor_t *z2)
{
    if (SSL__NULL_INPUT(p1, __func__) || SSL__NULL_INPUT(p2, __func__) ||
        SSL__NULL_INPUT(z1, __func__) || SSL__NULL_INPUT(z2, __func__))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, "byol", "NULL context");
    if (!check4("byol", p1, p2, z1, z2))
        return NULL;
    /* (2 - 2 c12) + (2 - 2 c21) = 4 - 2 (c12 + c21) */
    ssl_tensor_t *c = ssl_add(ctx, mean_cos(ctx, p1, z2), mean_cos(ctx, p2, z1));
    return ssl_scale(ctx, c, -2.0f, 4.0f);
}

ssl_tensor_t *ssl_loss_simsiam(ssl_ctx_t *ctx, ssl_tensor_t *p1, ssl_tensor_t *p2, ssl_tensor_t *z1,
                               ssl_tensor_t *z2)
{
    if (SSL__NULL_INPUT(p1, __func__) || SSL__NULL_INPUT(p2, __func__) ||
        SSL__NULL_INPUT(z1, __func__) || SSL__NULL_INPUT(z2, __func__))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, "simsiam", "NULL context");
    if (!check4("simsiam", p1, p2, z1, z2))
        return NULL;
    ssl_tensor_t *c = ssl_add(ctx, mean_cos(ctx, p1, z2), mean_cos(ctx, p2, z1));
    return ssl_scale(ctx, c, -0.5f, 0.0f);
}
