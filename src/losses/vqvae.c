/* VQ-VAE's loss (van den Oord et al. 2017, eq. 3) with a Gaussian (mean-squared-error)
 * reconstruction term, composed from core ops:
 *   rec      = mean (recon - x)^2           trains the decoder, and the encoder through the
 *                                           straight-through quantiser
 *   codebook = mean (zq - sg(z))^2          moves the chosen codes toward the encoder outputs
 *   commit   = mean (z - sg(zq))^2          keeps the encoder near its codes
 * loss = rec + codebook + beta commit (beta 0.25), as the common PyTorch VQ-VAE code has it
 * (F.mse_loss for each; q_latent_loss + commitment_cost * e_latent_loss). */
#include "losses_internal.h"

#include <math.h>

ssl_tensor_t *ssl_loss_vqvae(ssl_ctx_t *ctx, ssl_tensor_t *recon, ssl_tensor_t *x,
                             ssl_tensor_t *z, ssl_tensor_t *zq, float beta,
                             ssl_loss_parts_t *parts)
{
    static const char *L = "vqvae";
    if (SSL__NULL_INPUT(recon, L) || SSL__NULL_INPUT(x, L) || SSL__NULL_INPUT(z, L) ||
        SSL__NULL_INPUT(zq, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    char a[64], b[64];
    if (recon->ndim < 2 || !ssl_same_shape(recon, x))
        return ssl__loss_fail(L, "reconstruction %s and images %s must have the same shape "
                              "(B, ...)", LSHAPE(recon, a), LSHAPE(x, b));
    if (!ssl__loss_check_pair(L, "z", z, "zq", zq, 1))
        return NULL;
    if (!(beta >= 0.0f) || !isfinite(beta))
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "beta must be finite and >= 0, got %g",
                                     (double)beta);
    ssl_tensor_t *rec = ssl_mse(ctx, recon, ssl__loss_sg(ctx, x));
    ssl_tensor_t *cb = ssl_mse(ctx, zq, ssl__loss_sg(ctx, z));
    ssl_tensor_t *commit = ssl_mse(ctx, z, ssl__loss_sg(ctx, zq));
    ssl_tensor_t *loss = ssl_add(ctx, ssl_add(ctx, rec, cb), ssl_scale(ctx, commit, beta, 0.0f));
    if (loss && parts) {
        parts->n = 3;
        parts->name[0] = "rec";
        parts->value[0] = ssl__loss_value(rec);
        parts->name[1] = "codebook";
        parts->value[1] = ssl__loss_value(cb);
        parts->name[2] = "commit";
        parts->value[2] = ssl__loss_value(commit);
    }
    return loss;
}
