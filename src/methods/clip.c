/* Image-text contrastive methods: CLIP (softmax over the batch both ways, learned temperature
 * clamped after every step as open_clip does) and SigLIP (pairwise sigmoid with a learned bias).
 * They also embed images and texts for zero-shot classification. */
#include "methods_internal.h"

#include <stdlib.h>

typedef struct clip_method {
    ssl_method_t base;
    ssl_text_tower_t text;
    ssl_clip_proj_t img_proj;
    ssl_vocab_t *vocab;
    char *vocab_str;
    int context_length;
    ssl_tensor_t *logit_scale, *logit_bias;
} clip_method_t;

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    clip_method_t *cm = (clip_method_t *)m;
    const ssl_loss_cfg_t *L = &m->loss[0];
    const ssl_dataset_t *ds = b->ds;
    if (!ds->captions)
        return ssl__method_fail(b, "data", "captions",
                                "the %s loss needs captions: use image-text pairs or "
                                "\"captions\": \"class_names\"",
                                L->type == SSL_LOSS_CLIP ? "clip" : "siglip");
    ssl_head_cfg_t t, ip;
    if (ssl__method_read_head(m, b, "text", "clip_text", &t) != SSL_OK ||
        ssl__method_read_head(m, b, "image_proj", "clip_image_proj", &ip) != SSL_OK)
        return ssl_last_status();
    cm->vocab = b->vocab ? ssl_vocab_from_string(b->vocab)
                         : ssl_vocab_build((const char *const *)ds->captions, ds->n,
                                           t.text.tokenizer, t.text.min_count, t.text.max_words);
    if (!cm->vocab || !(cm->vocab_str = ssl_vocab_to_string(cm->vocab)))
        return ssl_last_status();
    t.text.vocab_size = ssl_vocab_size(cm->vocab);
    t.text.embed_dim = ip.clip_proj.embed_dim;
    cm->context_length = t.text.context_length;
    if (ssl_text_tower_init(&cm->text, b->online, "text", &t.text, b->seed) != SSL_OK ||
        ssl_clip_proj_init(&cm->img_proj, b->online, "image_proj", ssl_encoder_dim(m->enc),
                           ip.clip_proj.embed_dim, b->seed) != SSL_OK)
        return ssl_last_status();
    cm->logit_scale = ssl_params_add(b->online, "loss.logit_scale", 0, NULL, SSL_PARAM_TRAINABLE,
                                     SSL_PARAM_NO_DECAY);
    if (!cm->logit_scale)
        return ssl_last_status();
    cm->logit_scale->data[0] = L->clip.init_logit_scale;
    if (L->type == SSL_LOSS_SIGLIP) {
        cm->logit_bias = ssl_params_add(b->online, "loss.logit_bias", 0, NULL, SSL_PARAM_TRAINABLE,
                                        SSL_PARAM_NO_DECAY);
        if (!cm->logit_bias)
            return ssl_last_status();
        cm->logit_bias->data[0] = L->clip.init_logit_bias;
    }
    return SSL_OK;
}

static void free_clip(ssl_method_t *m)
{
    clip_method_t *cm = (clip_method_t *)m;
    ssl_vocab_free(cm->vocab);
    free(cm->vocab_str);
}

/* Token ids (n, context_length) of n texts in the arena; *unk (may be NULL) counts <unk>s. */
static int32_t *encode(clip_method_t *cm, ssl_ctx_t *ctx, const char *const *texts, int64_t n,
                       int64_t *unk)
{
    int64_t Lc = cm->context_length;
    int32_t *ids = ssl_arena_alloc(ctx, (size_t)(n * Lc) * sizeof(int32_t)); // (n, Lc)
    for (int64_t i = 0; ids && i < n; i++) {
        int len = ssl_vocab_encode(cm->vocab, texts[i], ids + i * Lc, (int)Lc);
        if (len < 0)
            return NULL;
        for (int j = 0; unk && j < len; j++)
            *unk += ids[i * Lc + j] == SSL_VOCAB_UNK;
    }
    return ids;
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    (void)pos;
    clip_method_t *cm = (clip_method_t *)m;
    int64_t B = b->size;
    int32_t *ids = encode(cm, ctx, (const char *const *)b->captions, B, NULL);
    if (!ids)
        return NULL;
    ssl_tensor_t *img = ssl_clip_proj_forward(
        ctx, &cm->img_proj, ssl__method_pooled(ctx, m->enc, ssl__method_view(b, 0)));
    ssl_tensor_t *txt = ssl_text_tower_forward(ctx, &cm->text, ids, B, cm->context_length);
    m->last_z = img;
    m->last_z2 = txt;
    /* several ranks: every rank's pairs are negatives, gathered with their gradient; this
     * rank's rows of the logits against them (open_clip's local_loss), B x (N B) */
    const int64_t row0 = ssl__method_row0(ctx, B);
    ssl_tensor_t *txt_all = ssl__all_gather(ctx, txt);
    if (m->loss[0].type == SSL_LOSS_CLIP)
        return ssl__loss_clip_rows(ctx, img, txt, ssl__all_gather(ctx, img), txt_all, row0,
                                   cm->logit_scale, m->loss[0].clip.max_logit_scale);
    /* SigLIP: the pairs of this rank's images with every text, (B, N B) of the (N B)^2 */
    return ssl__loss_siglip_rows(ctx, img, txt_all, row0, cm->logit_scale, cm->logit_bias);
}

static int after_step(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_step_pos_t *pos)
{
    (void)ctx, (void)pos;
    if (m->loss[0].type == SSL_LOSS_CLIP) {
        /* open_clip's loop: logit_scale.clamp_(0, log 100) after every optimizer step, so the
         * parameter stays where its gradient is alive (the loss passes it at the bounds) */
        float *t = ((clip_method_t *)m)->logit_scale->data, hi = m->loss[0].clip.max_logit_scale;
        t[0] = t[0] < 0.0f ? 0.0f : t[0] > hi ? hi : t[0];
    }
    return SSL_OK;
}

static ssl_tensor_t *image_embed(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    ssl_tensor_t *f = ssl__method_eval_pooled(m, ctx, x);
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *z = f ? ssl_clip_proj_forward(ctx, &((clip_method_t *)m)->img_proj, f) : NULL;
    ssl_ctx_set_grad(ctx, prev);
    return z;
}

static ssl_tensor_t *text_embed(ssl_method_t *m, ssl_ctx_t *ctx, const char *const *texts,
                                int64_t n, int64_t *n_unknown)
{
    clip_method_t *cm = (clip_method_t *)m;
    int64_t unk = 0;
    int32_t *ids = encode(cm, ctx, texts, n, &unk);
    if (!ids)
        return NULL;
    if (n_unknown)
        *n_unknown = unk;
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *t = ssl_text_tower_forward(ctx, &cm->text, ids, n, cm->context_length);
    ssl_ctx_set_grad(ctx, prev);
    return t;
}

static const char *vocab(const ssl_method_t *m)
{
    return ((const clip_method_t *)m)->vocab_str;
}

static const int k_types[] = {SSL_LOSS_CLIP, SSL_LOSS_SIGLIP, -1};

const ssl_method_def_t ssl__method_clip = {
    .name = "clip",
    .loss_types = k_types,
    .size = sizeof(clip_method_t),
    .target = SSL_TARGET_NONE,
    .mask_kind = SSL_MASK_NONE,
    .create = create,
    .free = free_clip,
    .loss = loss,
    .after_step = after_step,
    .image_embed = image_embed,
    .text_embed = text_embed,
    .vocab = vocab,
};
