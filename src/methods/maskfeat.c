/* MaskFeat for images (facebookresearch/SlowFast, slowfast/models/masked.py MaskMViT with
 * MASK.PRED_HOG, operators.py HOGLayerC): the ViT sees the image with its masked patches
 * (blockwise) replaced by a learned mask token before positions are added; a linear head on its
 * final-normed tokens at the masked positions predicts those patches' HOG (ssl_hog_patches: per
 * channel, 9-bin histograms of unsigned gradient orientation over cells of `cell` pixels, each
 * cell's histogram L2-normalised), with the mean squared error over them. */
#include "methods_internal.h"

typedef struct maskfeat_method {
    ssl_method_t base;
    ssl_tensor_t *mask_token; /* (1, 1, D) */
    ssl_nn_linear_t head;     /* D -> c nbins (patch / cell)^2 */
    int64_t n_feat;
} maskfeat_method_t;

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    maskfeat_method_t *mf = (maskfeat_method_t *)m;
    const ssl_vit_cfg_t *v = &ssl_encoder_config(m->enc)->vit;
    const int cell = m->loss[0].maskfeat.cell;
    if (v->patch_size % cell)
        return ssl__method_fail(b, "loss", "cell",
                                "%d pixels must divide model.encoder.patch_size %d", cell,
                                v->patch_size);
    int64_t u = v->patch_size / cell, D = ssl_encoder_dim(m->enc);
    mf->n_feat = (int64_t)v->in_channels * m->loss[0].maskfeat.nbins * u * u;
    if (!(mf->mask_token = ssl__method_mask_token(b, "mask_token", D)))
        return ssl_last_status();
    return ssl_nn_linear_init(&mf->head, b->online, "head", D, mf->n_feat, 1,
                              SSL_INIT_TRUNC_NORMAL_02, b->seed);
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    (void)pos;
    maskfeat_method_t *mf = (maskfeat_method_t *)m;
    const ssl_masks_t *mk = b->masks;
    const ssl_vit_cfg_t *v = &ssl_encoder_config(m->enc)->vit;
    ssl_tensor_t *x = ssl__method_view(b, 0); // (B, C, H, W)
    ssl_encoder_out_t o;
    if (ssl_encoder_forward_masked(ctx, m->enc, x, NULL, 0, mk->masked, mk->n_masked,
                                   mf->mask_token, 1, &o) != SSL_OK)
        return NULL;
    ssl_tensor_t *pred = ssl_nn_linear_forward(
        ctx, &mf->head, ssl_gather_rows(ctx, o.tokens, mk->masked, mk->n_masked)); // (B, M, F)
    const int64_t B = x->shape[0], T = ssl_encoder_num_tokens(m->enc);
    ssl_tensor_t *hog = ssl_tensor_new(ctx, 3, (int64_t[]){B, T, mf->n_feat}); // (B, T, F)
    if (!hog || ssl_hog_patches(x->data, B, x->shape[1], x->shape[2], x->shape[3],
                                m->loss[0].maskfeat.nbins, m->loss[0].maskfeat.cell,
                                v->patch_size, hog->data) != SSL_OK)
        return NULL;
    m->last_z = o.pooled;
    /* MSE over the masked patches' HOG: MAE's per-patch mean over equal-length rows */
    return ssl_loss_mae_idx(ctx, pred, hog, mk->masked, mk->n_masked, 0);
}

static const int k_types[] = {SSL_LOSS_MASKFEAT, -1};

const ssl_method_def_t ssl__method_maskfeat = {
    .name = "maskfeat",
    .loss_types = k_types,
    .size = sizeof(maskfeat_method_t),
    .target = SSL_TARGET_NONE,
    .needs_vit = 1,
    .mask_kind = SSL_MASK_BLOCKWISE,
    .create = create,
    .loss = loss,
};
