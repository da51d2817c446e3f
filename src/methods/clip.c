/* Image-text methods: CLIP (softmax over the batch both ways, learned temperature clamped after
 * every step as open_clip does), SigLIP (pairwise sigmoid with a learned bias) and CoCa (CLIP's
 * loss on an attentional pooler's first token plus a captioning loss: a multimodal decoder
 * cross-attends to the pooler's other tokens and predicts each next caption token, open_clip's
 * coca_model.py). They also embed images and texts for zero-shot classification. */
#include "methods_internal.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct clip_method {
    ssl_method_t base;
    ssl_text_tower_t text;
    ssl_clip_proj_t img_proj;
    ssl_vocab_t *vocab;
    char *vocab_str;
    int context_length;
    ssl_tensor_t *logit_scale, *logit_bias;
    int coca;                 /* CoCa: the pooler, ln_post and the caption decoder below */
    ssl_attn_pooler_t pooler; /* "image_pooler": image tokens -> n_queries tokens */
    ssl_nn_layernorm_t ln_post;
    ssl_coca_decoder_t dec; /* "decoder" */
} clip_method_t;

/* CoCa's pooler, ln_post and decoder over the text tower's width (model.decoder). */
static int create_coca(clip_method_t *cm, ssl_method_build_t *b, const ssl_text_cfg_t *t)
{
    ssl_method_t *m = &cm->base;
    ssl_head_cfg_t d;
    if (ssl__method_read_head(m, b, "decoder", "coca_decoder", &d) != SSL_OK)
        return ssl_last_status();
    ssl_cfg_t tc = ssl_cfg_obj(b->model, "text");
    if (!t->causal) /* the decoder reads the text tower's tokens: position i must not see i+1 */
        return ssl_cfg_fail(&tc, "causal", "the coca loss needs a causal text tower (its tokens "
                            "feed the caption decoder)");
    if (t->context_length < 2)
        return ssl_cfg_fail(&tc, "context_length", "%d leaves no next token to predict",
                            t->context_length);
    d.coca.width = t->width;
    d.coca.vocab_size = t->vocab_size;
    if (ssl_attn_pooler_init(&cm->pooler, b->online, "image_pooler", t->width,
                             ssl_encoder_dim(m->enc), d.coca.pooler_heads, d.coca.n_queries,
                             b->seed) != SSL_OK ||
        ssl_nn_layernorm_init(&cm->ln_post, b->online, "image_ln_post", t->width, 1e-5f) ||
        ssl_coca_decoder_init(&cm->dec, b->online, "decoder", &d.coca, b->seed) != SSL_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", ssl_last_error());
        ssl_cfg_t dc = ssl_cfg_obj(b->model, "decoder");
        return ssl_cfg_fail(&dc, NULL, "%s", msg);
    }
    return SSL_OK;
}

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    clip_method_t *cm = (clip_method_t *)m;
    const ssl_loss_cfg_t *L = &m->loss[0];
    const ssl_dataset_t *ds = b->ds;
    if (!ds->captions)
        return ssl__method_fail(b, "data", "captions",
                                "the %s loss needs captions: use image-text pairs or "
                                "\"captions\": \"class_names\"",
                                ssl_loss_type_name(L->type));
    cm->coca = L->type == SSL_LOSS_COCA;
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
        (cm->coca && create_coca(cm, b, &t.text) != SSL_OK) ||
        ssl_clip_proj_init(&cm->img_proj, b->online, "image_proj",
                           cm->coca ? t.text.width : ssl_encoder_dim(m->enc),
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

/* The encoder's output tokens (B, N, C): a ViT's patch tokens after its final norm, a ResNet's
 * last feature map as h*w tokens. */
static ssl_tensor_t *image_tokens(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x,
                                  int training)
{
    ssl_encoder_out_t o;
    if (ssl_encoder_forward(ctx, e, x, NULL, 0, training, &o) != SSL_OK)
        return NULL;
    if (o.tokens)
        return o.tokens;
    int64_t B = o.fmap->shape[0], C = o.fmap->shape[1], N = o.fmap->shape[2] * o.fmap->shape[3];
    ssl_tensor_t *t = ssl_reshape(ctx, o.fmap, 3, (int64_t[]){B, C, N});
    return ssl_permute(ctx, t, (int[]){0, 2, 1});
}

/* CoCa's image side: the pooler's tokens after ln_post (B, n_queries, W); *latent gets the
 * first one projected into the joint space (B, embed_dim). */
static ssl_tensor_t *coca_image(clip_method_t *cm, ssl_ctx_t *ctx, ssl_tensor_t *x, int training,
                                ssl_tensor_t **latent)
{
    ssl_tensor_t *t = ssl_attn_pooler_forward(ctx, &cm->pooler,
                                              image_tokens(ctx, cm->base.enc, x, training));
    t = ssl_nn_layernorm_forward(ctx, &cm->ln_post, t);
    if (!t)
        return NULL;
    int64_t B = t->shape[0], W = t->shape[2];
    ssl_tensor_t *first = ssl_reshape(ctx, ssl_slice(ctx, t, 1, 0, 1), 2, (int64_t[]){B, W});
    *latent = ssl_clip_proj_forward(ctx, &cm->img_proj, first);
    return *latent ? t : NULL;
}

/* open_clip's caption loss: cross-entropy of the logits (B, L - 1, V) at positions 0..L-2
 * against the next tokens ids[:, 1:], padding ignored, mean over the rest. Several ranks: the
 * mean over every rank's targets (this rank's sum times ranks / all targets, so the ranks'
 * averaged gradients are one process's; open_clip averages per-rank means instead). */
static ssl_tensor_t *caption_loss(ssl_ctx_t *ctx, ssl_tensor_t *logits, const int32_t *ids,
                                  int64_t B, int64_t L)
{
    if (!logits)
        return NULL;
    int64_t V = logits->shape[2], n = 0;
    int32_t *idx = ssl_arena_alloc(ctx, (size_t)(B * (L - 1)) * sizeof(int32_t));
    int32_t *lab = ssl_arena_alloc(ctx, (size_t)(B * (L - 1)) * sizeof(int32_t));
    if (!idx || !lab)
        return NULL;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i + 1 < L; i++)
            if (ids[b * L + i + 1] != SSL_VOCAB_PAD) {
                idx[n] = (int32_t)(b * (L - 1) + i);
                lab[n++] = ids[b * L + i + 1];
            }
    ssl_tensor_t *flat = ssl_reshape(ctx, logits, 3, (int64_t[]){1, B * (L - 1), V});
    ssl_tensor_t *sel = ssl_gather_rows(ctx, flat, idx, n); // (1, n, V)
    ssl_tensor_t *ce = ssl_cross_entropy(ctx, ssl_reshape(ctx, sel, 2, (int64_t[]){n, V}), lab);
    const ssl_comm_t *c = ssl__ctx_comm(ctx);
    double total = (double)n;
    if (!c || !ce)
        return ce;
    if (ssl__all_reduce_f64(ctx, &total, 1) != SSL_OK)
        return NULL;
    return ssl_scale(ctx, ce, (float)((double)n * c->size / total), 0.0f);
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
    int64_t Lc = cm->context_length;
    ssl_tensor_t *img = NULL, *itok = NULL, *ttok = NULL, *cap = NULL;
    if (cm->coca)
        itok = coca_image(cm, ctx, ssl__method_view(b, 0), 1, &img);
    else
        img = ssl_clip_proj_forward(ctx, &cm->img_proj,
                                    ssl__method_pooled(ctx, m->enc, ssl__method_view(b, 0)));
    ssl_tensor_t *txt =
        ssl_text_tower_forward_tokens(ctx, &cm->text, ids, B, Lc, cm->coca ? &ttok : NULL);
    if (cm->coca) {
        /* the decoder reads token i of the text and predicts token i + 1 (teacher forcing) */
        ssl_tensor_t *in = ttok ? ssl_slice(ctx, ttok, 1, 0, Lc - 1) : NULL;
        ssl_tensor_t *embs = itok ? ssl_slice(ctx, itok, 1, 1, itok->shape[1] - 1) : NULL;
        cap = caption_loss(ctx, ssl_coca_decoder_forward(ctx, &cm->dec, embs, in), ids, B, Lc);
        if (!cap)
            return NULL;
    }
    m->last_z = img;
    m->last_z2 = txt;
    /* several ranks: every rank's pairs are negatives, gathered with their gradient; this
     * rank's rows of the logits against them (open_clip's local_loss), B x (N B) */
    const int64_t row0 = ssl__method_row0(ctx, B);
    ssl_tensor_t *txt_all = ssl__all_gather(ctx, txt);
    if (cm->coca) { /* open_clip's CoCaLoss: clip_weight * CLIP + caption_weight * caption */
        const ssl_loss_cfg_t *L = &m->loss[0];
        ssl_tensor_t *con =
            ssl__loss_clip_rows(ctx, img, txt, ssl__all_gather(ctx, img), txt_all, row0,
                                cm->logit_scale, L->clip.max_logit_scale);
        ssl__method_add_part(m, "clip", con); /* unweighted; this rank's rows */
        ssl__method_add_part(m, "caption", cap);
        return ssl_add(ctx, ssl_scale(ctx, con, L->clip.clip_weight, 0.0f),
                       ssl_scale(ctx, cap, L->clip.caption_weight, 0.0f));
    }
    if (m->loss[0].type == SSL_LOSS_CLIP)
        return ssl__loss_clip_rows(ctx, img, txt, ssl__all_gather(ctx, img), txt_all, row0,
                                   cm->logit_scale, m->loss[0].clip.max_logit_scale);
    /* SigLIP: the pairs of this rank's images with every text, (B, N B) of the (N B)^2 */
    return ssl__loss_siglip_rows(ctx, img, txt_all, row0, cm->logit_scale, cm->logit_bias);
}

static int after_step(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_step_pos_t *pos)
{
    (void)ctx, (void)pos;
    if (m->loss[0].type != SSL_LOSS_SIGLIP) {
        /* open_clip's loop: logit_scale.clamp_(0, log 100) after every optimizer step, so the
         * parameter stays where its gradient is alive (the loss passes it at the bounds) */
        float *t = ((clip_method_t *)m)->logit_scale->data, hi = m->loss[0].clip.max_logit_scale;
        t[0] = t[0] < 0.0f ? 0.0f : t[0] > hi ? hi : t[0];
    }
    return SSL_OK;
}

static ssl_tensor_t *image_embed(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    clip_method_t *cm = (clip_method_t *)m;
    if (cm->coca) {
        int prev = ssl_ctx_set_grad(ctx, 0);
        ssl_tensor_t *z = NULL;
        ssl_tensor_t *t = coca_image(cm, ctx, x, 0, &z);
        ssl_ctx_set_grad(ctx, prev);
        return t ? z : NULL;
    }
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

/* Greedy decoding: each step runs the text tower and the decoder over the prefix (then <eos> and
 * padding, which the causal masks keep from the prefix's positions) and appends the argmax of
 * the last position's logits, never <pad>, <sos> or <unk>; a row ends at its <eos>. */
static ssl_tensor_t *caption_ids(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    clip_method_t *cm = (clip_method_t *)m;
    if (!cm->coca) {
        ssl_set_error(SSL_ERR_UNSUPPORTED, "caption: a %s model has no caption decoder (a coca "
                      "loss trains one)", ssl_loss_type_name(m->loss[0].type));
        return NULL;
    }
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *lat, *itok = coca_image(cm, ctx, x, 0, &lat), *out = NULL;
    int64_t B = x->shape[0], L = cm->context_length, V = cm->dec.cfg.vocab_size;
    int32_t *ids = ssl_arena_alloc(ctx, (size_t)(B * L) * sizeof(int32_t));
    int *done = ssl_arena_alloc(ctx, (size_t)B * sizeof(int));
    if (!itok || !ids || !done)
        goto end;
    ssl_tensor_t *embs = ssl_slice(ctx, itok, 1, 1, itok->shape[1] - 1);
    for (int64_t b = 0; b < B; b++) {
        done[b] = 0;
        ids[b * L] = SSL_VOCAB_SOS;
        for (int64_t i = 1; i < L; i++)
            ids[b * L + i] = i == 1 ? SSL_VOCAB_EOS : SSL_VOCAB_PAD;
    }
    for (int64_t t = 0; t + 1 < L; t++) { /* position t predicts token t + 1 */
        ssl_tensor_t *tok = NULL;
        if (!ssl_text_tower_forward_tokens(ctx, &cm->text, ids, B, L, &tok))
            goto end;
        ssl_tensor_t *lg = ssl_coca_decoder_forward(ctx, &cm->dec, embs, tok); // (B, L, V)
        if (!lg)
            goto end;
        int all_done = 1;
        for (int64_t b = 0; b < B; b++) {
            if (done[b])
                continue;
            const float *row = lg->data + (b * L + t) * V;
            int32_t best = SSL_VOCAB_EOS;
            for (int32_t v = 0; v < V; v++)
                if (v != SSL_VOCAB_PAD && v != SSL_VOCAB_SOS && v != SSL_VOCAB_UNK &&
                    row[v] > row[best])
                    best = v;
            ids[b * L + t + 1] = best;
            if (best == SSL_VOCAB_EOS || t + 2 == L)
                done[b] = 1;
            else
                ids[b * L + t + 2] = SSL_VOCAB_EOS; /* keeps the text tower's <eos> pooling */
            all_done &= done[b];
        }
        if (all_done)
            break;
    }
    if ((out = ssl_tensor_2d(ctx, B, L)))
        for (int64_t i = 0; i < B * L; i++)
            out->data[i] = (float)ids[i];
end:
    ssl_ctx_set_grad(ctx, prev);
    return out;
}

static const char *vocab(const ssl_method_t *m)
{
    return ((const clip_method_t *)m)->vocab_str;
}

static const int k_types[] = {SSL_LOSS_CLIP, SSL_LOSS_SIGLIP, SSL_LOSS_COCA, -1};

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
    .caption_ids = caption_ids,
};
