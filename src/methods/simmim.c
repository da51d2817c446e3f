/* SimMIM: masked patches replaced by a learned mask token inside the encoder, a one-layer linear
 * decoder predicting each patch's pixels, L1 on the masked ones. */
#include "methods_internal.h"

typedef struct simmim_method {
    ssl_method_t base;
    ssl_tensor_t *mask_token; /* (1, 1, D) */
    ssl_nn_linear_t dec;      /* per-token linear decoder D -> p*p*C */
} simmim_method_t;

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    /* the official 1x1 conv + pixel shuffle as a linear layer per token. The token is decayed
     * and drawn from N(0, 0.02) truncated at +-0.02, as VisionTransformerForSimMIM does (its
     * no_weight_decay() is only {pos_embed, cls_token}; the Swin variant's adds mask_token). */
    simmim_method_t *sm = (simmim_method_t *)m;
    const ssl_vit_cfg_t *v = &ssl_encoder_config(m->enc)->vit;
    int64_t D = ssl_encoder_dim(m->enc);
    if (!(sm->mask_token = ssl__method_mask_token(b, "encoder.mask_token", D)))
        return ssl_last_status();
    int64_t pp = (int64_t)v->patch_size * v->patch_size * v->in_channels;
    return ssl_nn_linear_init(&sm->dec, b->online, "decoder", D, pp, 1, SSL_INIT_TORCH_DEFAULT,
                              b->seed);
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    (void)pos;
    simmim_method_t *sm = (simmim_method_t *)m;
    const ssl_masks_t *mk = b->masks;
    const ssl_vit_cfg_t *v = &ssl_encoder_config(m->enc)->vit;
    ssl_tensor_t *x = ssl__method_view(b, 0);
    ssl_encoder_out_t o;
    if (ssl_encoder_forward_masked(ctx, m->enc, x, NULL, 0, mk->masked, mk->n_masked,
                                   sm->mask_token, 1, &o) != SSL_OK)
        return NULL;
    int64_t g = v->image_size / v->patch_size, B = b->size;
    ssl_tensor_t *pred = ssl_nn_linear_forward(ctx, &sm->dec, o.tokens); // (B, T, p*p*C)
    pred = ssl_unpatchify(ctx, pred, v->patch_size, v->image_size, v->image_size);
    ssl_tensor_t *mask = ssl_tensor_zeros(ctx, 3, (int64_t[]){B, g, g}); // (B, g, g)
    if (!mask)
        return NULL;
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < mk->n_masked; j++)
            mask->data[i * g * g + mk->masked[i * mk->n_masked + j]] = 1.0f;
    m->last_z = o.pooled;
    return ssl_loss_simmim(ctx, pred, x, mask);
}

static const int k_types[] = {SSL_LOSS_SIMMIM, -1};

const ssl_method_def_t ssl__method_simmim = {
    .name = "simmim",
    .loss_types = k_types,
    .size = sizeof(simmim_method_t),
    .target = SSL_TARGET_NONE,
    .needs_vit = 1,
    .mask_kind = SSL_MASK_SIMMIM,
    .create = create,
    .loss = loss,
};
