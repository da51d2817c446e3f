/* Image-text objectives: CLIP's symmetric cross-entropy with a learnable logit scale and
 * SigLIP's pairwise sigmoid loss with learnable scale and bias. */
#include "losses_internal.h"
#include "ranks.h"

#include <math.h>

static int check_scalar(const char *L, const char *what, const ssl_tensor_t *t)
{
    if (t->numel != 1) {
        char a[64];
        ssl__loss_fail(L, "%s %s must be a scalar", what, LSHAPE(t, a));
        return 0;
    }
    return 1;
}

/* A () view of a one-element tensor, so it broadcasts against anything. */
static ssl_tensor_t *as_scalar(ssl_ctx_t *ctx, ssl_tensor_t *t)
{
    return t->ndim == 0 ? t : ssl_reshape(ctx, t, 0, NULL);
}

ssl_tensor_t *ssl__loss_clip_rows(ssl_ctx_t *ctx, ssl_tensor_t *image, ssl_tensor_t *text,
                                  ssl_tensor_t *image_all, ssl_tensor_t *text_all, int64_t row0,
                                  ssl_tensor_t *logit_scale, float max_logit_scale)
{
    static const char *L = "clip";
    if (SSL__NULL_INPUT(image, L) || SSL__NULL_INPUT(text, L) || SSL__NULL_INPUT(logit_scale, L) ||
        SSL__NULL_INPUT(image_all, L) || SSL__NULL_INPUT(text_all, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    if (!ssl__loss_check_pair(L, "image", image, "text", text, 1) ||
        !ssl__loss_check_pair(L, "image_all", image_all, "text_all", text_all, 1) ||
        !ssl__loss_check_rows(L, "image", image, "image_all", image_all, row0) ||
        !check_scalar(L, "logit_scale", logit_scale))
        return NULL;
    if (!(max_logit_scale >= 0.0f && max_logit_scale < 80.0f))
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "max_logit_scale %g outside [0, 80)",
                                     (double)max_logit_scale);
    int32_t *labels = ssl__loss_row_labels(ctx, image->shape[0], row0);
    if (!labels)
        return NULL;
    /* exp(clamp(t, 0, max)) with torch.clamp's gradient: it passes at the bounds themselves
     * (ssl_clamp's stops there), so a parameter held at max by the trainer's clamp after each
     * step (open_clip's loop) still learns; only a value strictly outside gets none */
    float tv = logit_scale->data[0];
    ssl_tensor_t *t = as_scalar(ctx, logit_scale);
    ssl_tensor_t *s = ssl_exp(
        ctx, tv >= 0.0f && tv <= max_logit_scale ? t : ssl_clamp(ctx, t, 0.0f, max_logit_scale));
    ssl_tensor_t *in = ssl_mul(ctx, ssl_l2_normalize(ctx, image, -1, 1e-12f), s); // (B, D)
    ssl_tensor_t *tn = ssl_l2_normalize(ctx, text, -1, 1e-12f);
    ssl_tensor_t *li, *lt;
    if (image_all == image && text_all == text) { /* one process: one (B, B) product */
        ssl_tensor_t *logits = ssl_matmul(ctx, in, tn, 0, 1); // (B, B) image -> text
        li = ssl_cross_entropy(ctx, logits, labels);
        lt = ssl_cross_entropy(ctx, ssl_transpose(ctx, logits, 0, 1), labels);
    } else { /* this rank's images -> every text, its texts -> every image: (B, M) each */
        ssl_tensor_t *tn_all = ssl_l2_normalize(ctx, text_all, -1, 1e-12f);
        ssl_tensor_t *in_all = ssl_l2_normalize(ctx, image_all, -1, 1e-12f);
        li = ssl_cross_entropy(ctx, ssl_matmul(ctx, in, tn_all, 0, 1), labels);
        lt = ssl_cross_entropy(ctx, ssl_matmul(ctx, ssl_mul(ctx, tn, s), in_all, 0, 1), labels);
    }
    return ssl_scale(ctx, ssl_add(ctx, li, lt), 0.5f, 0.0f);
}

ssl_tensor_t *ssl_loss_clip(ssl_ctx_t *ctx, ssl_tensor_t *image, ssl_tensor_t *text,
                            ssl_tensor_t *logit_scale, float max_logit_scale)
{
    return ssl__loss_clip_rows(ctx, image, text, image, text, 0, logit_scale, max_logit_scale);
}

ssl_tensor_t *ssl__loss_siglip_rows(ssl_ctx_t *ctx, ssl_tensor_t *image, ssl_tensor_t *text_all,
                                    int64_t row0, ssl_tensor_t *logit_scale,
                                    ssl_tensor_t *logit_bias)
{
    static const char *L = "siglip";
    if (SSL__NULL_INPUT(image, L) || SSL__NULL_INPUT(text_all, L) ||
        SSL__NULL_INPUT(logit_scale, L) || SSL__NULL_INPUT(logit_bias, L))
        return NULL;
    if (!ctx)
        return ssl__loss_fail_status(SSL_ERR_INVALID, L, "NULL context");
    if (!ssl__loss_check_2d(L, "image", image, 1) ||
        !ssl__loss_check_rows(L, "image", image, "text", text_all, row0) ||
        !check_scalar(L, "logit_scale", logit_scale) || !check_scalar(L, "logit_bias", logit_bias))
        return NULL;
    int64_t n = image->shape[0], m = text_all->shape[0];
    ssl_tensor_t *z = ssl_tensor_fill(ctx, 2, (int64_t[]){n, m}, -1.0f); // labels +-1 (B, M)
    if (!z)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        z->data[i * m + row0 + i] = 1.0f;
    ssl_tensor_t *t = ssl_exp(ctx, as_scalar(ctx, logit_scale));
    ssl_tensor_t *in = ssl_mul(ctx, ssl_l2_normalize(ctx, image, -1, 1e-12f), t); // (B, D)
    ssl_tensor_t *tn = ssl_l2_normalize(ctx, text_all, -1, 1e-12f);
    ssl_tensor_t *logits = ssl_add(ctx, ssl_matmul(ctx, in, tn, 0, 1), as_scalar(ctx, logit_bias));
    ssl_tensor_t *ll = ssl_log_sigmoid(ctx, ssl_mul(ctx, logits, z)); // (B, M)
    return ssl_scale(ctx, ssl_sum_all(ctx, ll), -1.0f / (float)n, 0.0f);
}

ssl_tensor_t *ssl_loss_siglip(ssl_ctx_t *ctx, ssl_tensor_t *image, ssl_tensor_t *text,
                              ssl_tensor_t *logit_scale, ssl_tensor_t *logit_bias)
{
    static const char *L = "siglip";
    if (ctx && image && text &&
        (!ssl__loss_check_2d(L, "image", image, 1) ||
         !ssl__loss_check_pair(L, "image", image, "text", text, 1)))
        return NULL;
    return ssl__loss_siglip_rows(ctx, image, text, 0, logit_scale, logit_bias);
}
