/* data2vec (v1) for images, as facebookresearch/data2vec_vision (beit/run_cyclical.py,
 * engine_for_cyclical.py, modeling_cyclical.py): the student ViT sees the image with its masked
 * patches (BEiT's blockwise masks) replaced by a learned mask token before positions are added;
 * its final-normed tokens at the masked positions go through a linear head (lm_head, D -> D) and
 * regress, with smooth L1 (beta 2), the EMA teacher's targets on the unmasked image: the average
 * of its last top_k blocks' outputs (the blocks' residual stream, "layer_results end"), each
 * layer-normed, the average layer-normed again. docs/losses.md, "data2vec", says where sslc
 * differs (no relative position bias, layer scale or drop path in sslc's ViT). */
#include "methods_internal.h"

typedef struct d2v_method {
    ssl_method_t base;
    ssl_tensor_t *mask_token; /* (1, 1, D), the student's only: outside the EMA's "encoder." */
    ssl_nn_linear_t head;     /* lm_head: the masked tokens' predictions, D -> D */
} d2v_method_t;

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    d2v_method_t *dm = (d2v_method_t *)m;
    const ssl_vit_cfg_t *v = &ssl_encoder_config(m->enc)->vit;
    if (m->loss[0].data2vec.top_k > v->depth)
        return ssl__method_fail(b, "loss", "top_k",
                                "%d blocks to average, but model.encoder has depth %d",
                                m->loss[0].data2vec.top_k, v->depth);
    int64_t D = ssl_encoder_dim(m->enc);
    /* trunc_normal(std 0.02) in [-0.02, 0.02] as modeling_cyclical's trunc_normal_ wrapper; decayed
     * (no_weight_decay is {pos_embed, cls_token}) */
    if (!(dm->mask_token = ssl__method_mask_token(b, "mask_token", D)))
        return ssl_last_status();
    return ssl_nn_linear_init(&dm->head, b->online, "head", D, D, 1, SSL_INIT_TRUNC_NORMAL_02,
                              b->seed);
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    (void)pos;
    d2v_method_t *dm = (d2v_method_t *)m;
    const ssl_masks_t *mk = b->masks;
    const ssl_data2vec_opts_t *o = &m->loss[0].data2vec;
    ssl_tensor_t *x = ssl__method_view(b, 0);
    /* student: every token, the masked ones replaced; its predictions at the masked ones */
    ssl_encoder_out_t so;
    if (ssl_encoder_forward_masked(ctx, m->enc, x, NULL, 0, mk->masked, mk->n_masked,
                                   dm->mask_token, 1, &so) != SSL_OK)
        return NULL;
    ssl_tensor_t *pred = ssl_nn_linear_forward(
        ctx, &dm->head, ssl_gather_rows(ctx, so.tokens, mk->masked, mk->n_masked)); // (B, M, D)
    /* teacher: the whole image, its last top_k blocks' outputs, no tape */
    ssl_tensor_t *blocks[64];
    ssl_encoder_out_t to;
    int prev = ssl_ctx_set_grad(ctx, 0);
    int st = ssl_encoder_forward_blocks(ctx, m->tenc, x, o->top_k, 0, blocks, &to);
    ssl_tensor_t *targets = st == SSL_OK ? ssl_loss_data2vec_targets(ctx, blocks, o->top_k, o)
                                         : NULL; // (B, T, D)
    ssl_ctx_set_grad(ctx, prev);
    if (!targets)
        return NULL;
    m->last_z = so.pooled;
    return ssl_loss_data2vec(ctx, pred, targets, mk->masked, mk->n_masked, o);
}

static const int k_types[] = {SSL_LOSS_DATA2VEC, -1};
static const char *const k_ema[] = {"encoder.", NULL};

const ssl_method_def_t ssl__method_data2vec = {
    .name = "data2vec",
    .loss_types = k_types,
    .size = sizeof(d2v_method_t),
    .target = SSL_TARGET_EMA,
    .needs_vit = 1,
    .mask_kind = SSL_MASK_BLOCKWISE,
    .ema_modules = k_ema,
    .create = create,
    .loss = loss,
};
