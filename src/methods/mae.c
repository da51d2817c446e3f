/* MAE: the encoder sees the kept patches only; a light decoder predicts the pixels of the
 * masked ones (per-patch normalised targets by default). */
#include "methods_internal.h"

typedef struct mae_method {
    ssl_method_t base;
    ssl_mae_decoder_t dec;
} mae_method_t;

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    ssl_head_cfg_t h;
    if (ssl__method_read_head(m, b, "head", "mae_decoder", &h) != SSL_OK ||
        ssl_head_cfg_fit_encoder(&h, m->enc) != SSL_OK)
        return ssl_last_status();
    return ssl_mae_decoder_init(&((mae_method_t *)m)->dec, b->online, "decoder", &h.mae, b->seed);
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    (void)pos;
    const ssl_masks_t *mk = b->masks;
    ssl_encoder_out_t o;
    ssl_tensor_t *x = ssl__method_view(b, 0);
    if (ssl_encoder_forward(ctx, m->enc, x, mk->keep, mk->n_keep, 1, &o) != SSL_OK)
        return NULL;
    /* the decoder's cls slot takes the cls token's output, also when the encoder pools the
     * mean patch token (o.pooled) */
    ssl_tensor_t *pred = ssl_mae_decoder_forward(ctx, &((mae_method_t *)m)->dec, o.cls, o.tokens,
                                                 mk->keep, mk->n_keep);
    ssl_tensor_t *target = ssl_patchify(ctx, x, ssl_encoder_config(m->enc)->vit.patch_size);
    m->last_z = o.pooled;
    return ssl_loss_mae_idx(ctx, pred, target, mk->masked, mk->n_masked,
                            m->loss[0].mae.norm_pix_loss);
}

static const int k_types[] = {SSL_LOSS_MAE, -1};

const ssl_method_def_t ssl__method_mae = {
    .name = "mae",
    .loss_types = k_types,
    .size = sizeof(mae_method_t),
    .target = SSL_TARGET_NONE,
    .needs_vit = 1,
    .mask_kind = SSL_MASK_RANDOM,
    .create = create,
    .loss = loss,
};
