/* I-JEPA: from a context block, a narrow ViT predictor predicts the EMA target encoder's tokens
 * of several target blocks (multi-block masks). */
#include "methods_internal.h"

#include <string.h>

typedef struct ijepa_method {
    ssl_method_t base;
    ssl_jepa_predictor_t pred;
} ijepa_method_t;

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    ssl_head_cfg_t h;
    if (ssl__method_read_head(m, b, "head", "ijepa_predictor", &h) != SSL_OK ||
        ssl_head_cfg_fit_encoder(&h, m->enc) != SSL_OK)
        return ssl_last_status();
    return ssl_jepa_predictor_init(&((ijepa_method_t *)m)->pred, b->online, "predictor", &h.jepa,
                                   b->seed);
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    (void)pos;
    ijepa_method_t *jm = (ijepa_method_t *)m;
    const ssl_masks_t *mk = b->masks;
    ssl_tensor_t *x = ssl__method_view(b, 0);
    ssl_encoder_out_t o, t;
    if (ssl_encoder_forward(ctx, m->enc, x, mk->keep, mk->n_keep, 1, &o) != SSL_OK)
        return NULL;
    int prev = ssl_ctx_set_grad(ctx, 0);
    int st = ssl_encoder_forward(ctx, m->tenc, x, NULL, 0, 1, &t);
    ssl_ctx_set_grad(ctx, prev);
    if (st != SSL_OK)
        return NULL;
    /* every target block of the masks (ijepa's masks_pred), however many the generator made */
    const int nt = mk->n_targets;
    const int64_t B = b->size, K = mk->n_target;
    ssl_tensor_t **preds = ssl_arena_alloc(ctx, (size_t)nt * sizeof *preds);
    const int32_t **idx = ssl_arena_alloc(ctx, (size_t)nt * sizeof *idx);
    int64_t *ks = ssl_arena_alloc(ctx, (size_t)nt * sizeof *ks);
    if (!preds || !idx || !ks)
        return NULL;
    for (int i = 0; i < nt; i++) {
        /* the masks hold targets (B, n_targets, K): block i of every sample, as a (B, K) list
         * (ijepa's masks_pred[i]) for the predictor and the target gather */
        int32_t *blk = ssl_arena_alloc(ctx, (size_t)(B * K) * sizeof(int32_t)); // (B, K)
        if (!blk)
            return NULL;
        for (int64_t s = 0; s < B; s++)
            memcpy(blk + s * K, mk->targets + (s * mk->n_targets + i) * K,
                   (size_t)K * sizeof(int32_t));
        idx[i] = blk;
        ks[i] = K;
        preds[i] =
            ssl_jepa_predictor_forward(ctx, &jm->pred, o.tokens, mk->keep, idx[i], 1, mk->n_target);
    }
    m->last_z = o.pooled;
    return ssl_loss_ijepa(ctx, preds, t.tokens, idx, ks, nt, m->loss[0].ijepa.kind,
                          m->loss[0].ijepa.beta);
}

static const int k_types[] = {SSL_LOSS_IJEPA, -1};
static const char *const k_ema[] = {"encoder.", NULL};

const ssl_method_def_t ssl__method_ijepa = {
    .name = "ijepa",
    .loss_types = k_types,
    .size = sizeof(ijepa_method_t),
    .target = SSL_TARGET_EMA,
    .needs_vit = 1,
    .mask_kind = SSL_MASK_MULTIBLOCK,
    .ema_modules = k_ema,
    .create = create,
    .loss = loss,
};
