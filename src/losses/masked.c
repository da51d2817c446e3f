/* Masked image modelling: MAE's patchify/unpatchify, the MAE loss (mean over masked patches,
 * optional per-patch normalised target) and the SimMIM loss (L1 over masked pixels).
 *
 * A 0/1 mask m turns "mean over the masked elements" into one fused op on masked inputs:
 * (m a - m b)^2 = m (a - b)^2 and |m a - m b| = m |a - b| when m is 0 or 1, so
 * mse(m pred, m target) * numel / count is the masked mean and the gradient is exact. */
#include "losses_internal.h"

#include <math.h>
#include <string.h>

ssl_tensor_t *ssl_patchify(ssl_ctx_t *ctx, ssl_tensor_t *images, int p)
{
    static const char *L = "patchify";
    if (SSL__NULL_INPUT(images, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    char a[64];
    if (images->ndim != 4 || p < 1 || images->shape[2] % p || images->shape[3] % p)
        return ssl__loss_fail(L, "images %s must be (B, C, H, W) with H and W multiples of %d",
                              LSHAPE(images, a), p);
    int64_t b = images->shape[0], c = images->shape[1];
    int64_t h = images->shape[2] / p, w = images->shape[3] / p;
    /* (B C h, p, w, p) -> (B C h, w, p, p) = (B, C, h w, p p) -> (B, h w, p p, C) */
    ssl_tensor_t *x = ssl_reshape(ctx, images, 4, (int64_t[]){b * c * h, p, w, p});
    x = ssl_permute(ctx, x, (int[]){0, 2, 1, 3});
    x = ssl_reshape(ctx, x, 4, (int64_t[]){b, c, h * w, (int64_t)p * p});
    x = ssl_permute(ctx, x, (int[]){0, 2, 3, 1});
    return ssl_reshape(ctx, x, 3, (int64_t[]){b, h * w, (int64_t)p * p * c});
}

ssl_tensor_t *ssl_unpatchify(ssl_ctx_t *ctx, ssl_tensor_t *patches, int p, int64_t height,
                             int64_t width)
{
    static const char *L = "unpatchify";
    if (SSL__NULL_INPUT(patches, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    char a[64];
    if (p < 1 || height < 1 || width < 1 || height % p || width % p)
        return ssl__loss_fail(L, "image %lld x %lld must be a multiple of the patch size %d",
                              (long long)height, (long long)width, p);
    int64_t h = height / p, w = width / p, pp = (int64_t)p * p;
    if (patches->ndim != 3 || patches->shape[1] != h * w || patches->shape[2] % pp ||
        patches->shape[2] == 0)
        return ssl__loss_fail(L, "patches %s must be (B, %lld, %d * %d * C) for %lld x %lld images",
                              LSHAPE(patches, a), (long long)(h * w), p, p, (long long)height,
                              (long long)width);
    int64_t b = patches->shape[0], c = patches->shape[2] / pp;
    ssl_tensor_t *x = ssl_reshape(ctx, patches, 4, (int64_t[]){b, h * w, pp, c});
    x = ssl_permute(ctx, x, (int[]){0, 3, 1, 2}); // (B, C, h w, p p)
    x = ssl_reshape(ctx, x, 4, (int64_t[]){b * c * h, w, p, p});
    x = ssl_permute(ctx, x, (int[]){0, 2, 1, 3}); // (B C h, p, w, p)
    return ssl_reshape(ctx, x, 4, (int64_t[]){b, c, height, width});
}

/* MAE's norm_pix_loss target: each row of P normalised by its mean and unbiased variance
 * (eps 1e-6). Forward-only: the target carries no gradient. */
static ssl_tensor_t *norm_pix(ssl_ctx_t *ctx, const ssl_tensor_t *t)
{
    ssl_tensor_t *out = ssl_tensor_new(ctx, t->ndim, t->shape);
    if (!out)
        return NULL;
    int64_t pdim = t->shape[t->ndim - 1], rows = t->numel / pdim;
#pragma omp parallel for schedule(static) if (t->numel > 16384)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = t->data + r * pdim;
        float *y = out->data + r * pdim;
        double s = 0, ss = 0;
        for (int64_t j = 0; j < pdim; j++)
            s += x[j];
        double mean = s / (double)pdim;
        for (int64_t j = 0; j < pdim; j++)
            ss += ((double)x[j] - mean) * ((double)x[j] - mean);
        double inv = 1.0 / sqrt(ss / (double)(pdim - 1) + 1e-6);
        for (int64_t j = 0; j < pdim; j++)
            y[j] = (float)(((double)x[j] - mean) * inv);
    }
    return out;
}

static int check_patches(const char *L, const ssl_tensor_t *pred, const ssl_tensor_t *target,
                         int norm_pix_on)
{
    char a[64], b[64];
    if (pred->ndim != 3 || target->ndim != 3 || pred->shape[0] != target->shape[0] ||
        pred->shape[2] != target->shape[2] || target->shape[2] < 1) {
        ssl__loss_fail(L, "pred %s and target %s must be (B, T, P) patches", LSHAPE(pred, a),
                       LSHAPE(target, b));
        return 0;
    }
    if (norm_pix_on && target->shape[2] < 2) {
        ssl__loss_fail(L, "norm_pix needs at least 2 values per patch, target is %s",
                       LSHAPE(target, a));
        return 0;
    }
    return 1;
}

ssl_tensor_t *ssl_loss_mae(ssl_ctx_t *ctx, ssl_tensor_t *pred, ssl_tensor_t *target,
                           const ssl_tensor_t *mask, int norm_pix_on)
{
    static const char *L = "mae";
    if (SSL__NULL_INPUT(pred, L) || SSL__NULL_INPUT(target, L) || SSL__NULL_INPUT(mask, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    if (!check_patches(L, pred, target, norm_pix_on))
        return NULL;
    char a[64], b[64];
    int64_t nb = pred->shape[0], nt = pred->shape[1];
    if (target->shape[1] != nt)
        return ssl__loss_fail(L, "pred %s and target %s must have the same shape", LSHAPE(pred, a),
                              LSHAPE(target, b));
    if (mask->ndim != 2 || mask->shape[0] != nb || mask->shape[1] != nt)
        return ssl__loss_fail(L, "mask %s must be (B, T) = (%lld, %lld)", LSHAPE(mask, a),
                              (long long)nb, (long long)nt);
    ssl_tensor_t *m = ssl_tensor_from(ctx, 3, (int64_t[]){nb, nt, 1}, mask->data); // (B, T, 1)
    if (!m)
        return NULL;
    int64_t count = 0;
    for (int64_t i = 0; i < mask->numel; i++) {
        float v = mask->data[i];
        if (v != 0.0f && v != 1.0f)
            return ssl__loss_fail_status(SSL_ERR_INVALID, L,
                                         "mask value %g at index %lld is not 0 or 1", (double)v,
                                         (long long)i);
        count += v == 1.0f;
    }
    if (count == 0)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "mask %s has no masked patch",
                                     LSHAPE(mask, a));
    ssl_tensor_t *t = ssl__loss_sg(ctx, target);
    if (norm_pix_on)
        t = norm_pix(ctx, t);
    ssl_tensor_t *mse = ssl_mse(ctx, ssl_mul(ctx, pred, m), ssl_mul(ctx, t, m));
    return ssl_scale(ctx, mse, (float)((double)(nb * nt) / (double)count), 0.0f);
}

ssl_tensor_t *ssl_loss_mae_idx(ssl_ctx_t *ctx, ssl_tensor_t *pred, ssl_tensor_t *target,
                               const int32_t *idx, int64_t m, int norm_pix_on)
{
    static const char *L = "mae";
    if (SSL__NULL_INPUT(pred, L) || SSL__NULL_INPUT(target, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    if (!check_patches(L, pred, target, norm_pix_on))
        return NULL;
    char a[64], b[64];
    if (!idx || m < 1)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "need at least one masked index");
    int64_t nt = target->shape[1];
    if (pred->shape[1] != nt && pred->shape[1] != m)
        return ssl__loss_fail(L, "pred %s must have T = %lld or M = %lld rows (target %s)",
                              LSHAPE(pred, a), (long long)nt, (long long)m, LSHAPE(target, b));
    ssl_tensor_t *p = pred->shape[1] == nt ? ssl_gather_rows(ctx, pred, idx, m) : pred;
    ssl_tensor_t *t = ssl_gather_rows(ctx, ssl__loss_sg(ctx, target), idx, m); // (B, M, P)
    if (norm_pix_on && t)
        t = norm_pix(ctx, t);
    return ssl_mse(ctx, p, t);
}

ssl_tensor_t *ssl_loss_simmim(ssl_ctx_t *ctx, ssl_tensor_t *pred, ssl_tensor_t *images,
                              const ssl_tensor_t *mask)
{
    static const char *L = "simmim";
    if (SSL__NULL_INPUT(pred, L) || SSL__NULL_INPUT(images, L) || SSL__NULL_INPUT(mask, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    char a[64], b[64];
    if (pred->ndim != 4 || !ssl_same_shape(pred, images))
        return ssl__loss_fail(L, "pred %s and images %s must be the same (B, C, H, W)",
                              LSHAPE(pred, a), LSHAPE(images, b));
    int64_t nb = pred->shape[0], nc = pred->shape[1], hh = pred->shape[2], ww = pred->shape[3];
    if (mask->ndim != 3 || mask->shape[0] != nb || mask->shape[1] < 1 || mask->shape[2] < 1 ||
        hh % mask->shape[1] || ww % mask->shape[2])
        return ssl__loss_fail(L, "mask %s must be (B, h, w) with h | %lld and w | %lld (images %s)",
                              LSHAPE(mask, a), (long long)hh, (long long)ww, LSHAPE(pred, b));
    int64_t mh = mask->shape[1], mw = mask->shape[2], sy = hh / mh, sx = ww / mw;
    ssl_tensor_t *pm = ssl_tensor_new(ctx, 4, (int64_t[]){nb, 1, hh, ww}); // pixel mask
    if (!pm)
        return NULL;
    int64_t count = 0;
    for (int64_t i = 0; i < mask->numel; i++) {
        float v = mask->data[i];
        if (v != 0.0f && v != 1.0f)
            return ssl__loss_fail_status(SSL_ERR_INVALID, L,
                                         "mask value %g at index %lld is not 0 or 1", (double)v,
                                         (long long)i);
        count += v == 1.0f;
    }
    for (int64_t n = 0; n < nb; n++)
        for (int64_t y = 0; y < hh; y++) {
            const float *mr = mask->data + (n * mh + y / sy) * mw;
            float *dst = pm->data + (n * hh + y) * ww;
            for (int64_t x = 0; x < ww; x++)
                dst[x] = mr[x / sx];
        }
    ssl_tensor_t *l1 =
        ssl_l1(ctx, ssl_mul(ctx, pred, pm), ssl_mul(ctx, ssl__loss_sg(ctx, images), pm));
    /* mean over B C H W -> sum / ((masked pixels + 1e-5) C) */
    double pixels = (double)count * (double)(sy * sx);
    double f = (double)pred->numel / ((pixels + 1e-5) * (double)nc);
    return ssl_scale(ctx, l1, (float)f, 0.0f);
}
