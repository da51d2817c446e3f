/* Method composition: encoder x heads x target network x loss, from the "model", "target" and
 * "loss" sections. Each loss type names the branch outputs it consumes; which heads exist and
 * how the target is made follow from the config, so a new method is a new config. */
#include "method.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heads/head_config.h"
#include "losses/loss_config.h"
#include "models/encoder_config.h"
#include "ssl/heads.h"
#include "ssl/losses.h"

#define MAX_LOSSES 4

struct ssl_method {
    ssl_loss_cfg_t loss[MAX_LOSSES];
    int n_loss;
    int target;      /* ssl_target_kind_t */
    int eval_target; /* features (kNN, embed, probes) from the target encoder */
    int n_views, n_global;
    ssl_encoder_t *enc, *tenc;
    const char *enc_weights; /* model.encoder.weights (in the config document) or NULL */
    int has_proj, has_pred, has_dino, has_swav, has_mae, has_jepa, has_clip, has_simmim;
    ssl_tensor_t *mask_token;  /* SimMIM: (1, 1, D) */
    ssl_nn_linear_t simmim_dec; /* SimMIM: per-token linear decoder D -> p*p*C */
    ssl_mlp_t proj, tproj, pred;
    ssl_dino_head_t dino, tdino;
    ssl_swav_prototypes_t swav;
    ssl_mae_decoder_t mae;
    ssl_jepa_predictor_t jepa;
    ssl_text_tower_t text;
    ssl_clip_proj_t img_proj;
    ssl_vocab_t *vocab;
    char *vocab_str;
    int context_length;
    ssl_tensor_t *logit_scale, *logit_bias;
    ssl_queue_t queue;
    int has_queue;
    ssl_tensor_t *center;
    /* set by the step, consumed by after_step / the trainer (arena tensors of that step) */
    ssl_tensor_t *pending_keys, *pending_teacher, *last_z, *last_z2;
};

/* ---------------------------------------------------------------- config */

/* A head section ("projector": {"type": "byol_projector", ...}): "type" picks the preset
 * (default def_kind), the other keys override it. */
static int read_head(ssl_cfg_t *model, const char *key, const char *def_kind, ssl_head_cfg_t *h)
{
    ssl_cfg_t sec = ssl_cfg_obj(model, key);
    return ssl__head_cfg_read(&sec, def_kind, h);
}

static int is_projector_family(int type)
{
    return type == SSL_LOSS_INFONCE || type == SSL_LOSS_BYOL || type == SSL_LOSS_SIMSIAM ||
           type == SSL_LOSS_BARLOW || type == SSL_LOSS_VICREG;
}

static const char *default_projector(const ssl_loss_cfg_t *l)
{
    switch (l->type) {
    case SSL_LOSS_INFONCE:
        return l->infonce.form == SSL_INFONCE_MOCO_V2   ? "mocov2_projector"
               : l->infonce.form == SSL_INFONCE_MOCO_V3 ? "mocov3_projector"
                                                        : "simclr_projector";
    case SSL_LOSS_BYOL: return "byol_projector";
    case SSL_LOSS_SIMSIAM: return "simsiam_projector";
    case SSL_LOSS_BARLOW: return "barlow_projector";
    case SSL_LOSS_VICREG: return "vicreg_projector";
    case SSL_LOSS_SWAV: return "swav_projector";
    default: return NULL;
    }
}

static const char *default_predictor(const ssl_loss_cfg_t *l)
{
    if (l->type == SSL_LOSS_BYOL)
        return "byol_predictor";
    if (l->type == SSL_LOSS_SIMSIAM)
        return "simsiam_predictor";
    if (l->type == SSL_LOSS_INFONCE && l->infonce.form == SSL_INFONCE_MOCO_V3)
        return "mocov3_predictor";
    return NULL;
}

/* Which target each loss needs. */
static int needs_target(const ssl_loss_cfg_t *l)
{
    switch (l->type) {
    case SSL_LOSS_BYOL:
    case SSL_LOSS_DINO:
    case SSL_LOSS_IJEPA: return SSL_TARGET_EMA;
    case SSL_LOSS_INFONCE: return l->infonce.form == SSL_INFONCE_NTXENT ? SSL_TARGET_NONE
                                                                        : SSL_TARGET_EMA;
    case SSL_LOSS_SIMSIAM: return SSL_TARGET_STOP_GRAD;
    default: return SSL_TARGET_NONE;
    }
}

static const char *const k_target_names[] = {"none", "stop_grad", "ema"};

ssl_method_t *ssl__method_create(ssl_cfg_t *root, const ssl_run_cfg_t *rc,
                                 const ssl_dataset_t *ds, ssl_params_t *online,
                                 ssl_params_t *target, uint64_t seed, const char *vocab)
{
    ssl_method_t *m = calloc(1, sizeof *m);
    if (!m) {
        ssl_set_error(SSL_ERR_NOMEM, "method: out of memory");
        return NULL;
    }
    m->target = rc->target;
    m->eval_target = rc->eval_target;
    m->n_views = rc->views.n_views;
    m->n_global = rc->n_global;
    static const char *const model_keys[] = {"encoder", "projector", "predictor", "head",
                                             "text", "image_proj", NULL};
    ssl_cfg_t model = ssl_cfg_obj(root, "model");
    ssl_cfg_keys(&model, model_keys);
    ssl_cfg_require(&model, "encoder");
    ssl_cfg_t ec = ssl_cfg_obj(&model, "encoder");
    ssl_encoder_cfg_t ecfg;
    if (ssl_cfg_status(root) || ssl__encoder_cfg_read(&ec, &ecfg, &m->enc_weights) != SSL_OK)
        goto fail;
    int in_ch = ecfg.kind == SSL_ENC_VIT ? ecfg.vit.in_channels : ecfg.resnet.in_channels;
    if (in_ch != ds->c) {
        ssl_cfg_fail(&ec, "in_channels", "%d, but the %s images have %lld channel%s", in_ch,
                     rc->dataset, (long long)ds->c, ds->c == 1 ? "" : "s");
        goto fail;
    }
    if (ssl__loss_cfgs_read(root, "loss", m->loss, MAX_LOSSES, &m->n_loss) != SSL_OK)
        goto fail;
    const ssl_loss_cfg_t *L = &m->loss[0];
    for (int i = 1; i < m->n_loss; i++)
        if (!is_projector_family(m->loss[i].type) || !is_projector_family(L->type)) {
            ssl_cfg_fail(root, "loss", "a weighted list may only combine infonce, byol, simsiam, "
                                       "barlow and vicreg terms");
            goto fail;
        }
    int want = needs_target(L);
    if (want != SSL_TARGET_NONE && m->target != want) {
        ssl_cfg_t tc = ssl_cfg_obj(root, "target");
        ssl_cfg_fail(&tc, "type", "this loss needs a '%s' target, the config has '%s'",
                     k_target_names[want], k_target_names[m->target]);
        goto fail;
    }
    if (m->target == SSL_TARGET_EMA && want == SSL_TARGET_NONE && !is_projector_family(L->type)) {
        ssl_cfg_t tc = ssl_cfg_obj(root, "target");
        ssl_cfg_fail(&tc, "type", "this loss uses no target network");
        goto fail;
    }
    if (L->type == SSL_LOSS_MAE || L->type == SSL_LOSS_IJEPA || L->type == SSL_LOSS_SIMMIM) {
        if (ecfg.kind != SSL_ENC_VIT) {
            ssl_cfg_fail(&ec, "type", "the %s loss needs a ViT encoder",
                         L->type == SSL_LOSS_MAE ? "mae" : L->type == SSL_LOSS_IJEPA ? "ijepa"
                                                                                   : "simmim");
            goto fail;
        }
    }
    int ema = m->target == SSL_TARGET_EMA;
    if (m->eval_target && !ema) {
        ssl_cfg_t ev = ssl_cfg_obj(root, "eval");
        ssl_cfg_fail(&ev, "encoder", "'target' needs an EMA target network (target.type 'ema')");
        goto fail;
    }
    /* encoder(s) */
    m->enc = ssl_encoder_create(&ecfg, online, "encoder", seed);
    if (!m->enc || (ema && !(m->tenc = ssl_encoder_create(&ecfg, target, "target.encoder", seed))))
        goto fail;
    int64_t D = ssl_encoder_dim(m->enc);
    /* projector / predictor */
    const char *pk = default_projector(L);
    if (pk) {
        ssl_head_cfg_t h;
        if (read_head(&model, "projector", pk, &h) != SSL_OK)
            goto fail;
        h.mlp.in = D;
        if (ssl_mlp_init(&m->proj, online, "projector", &h.mlp, seed) != SSL_OK ||
            (ema && ssl_mlp_init(&m->tproj, target, "target.projector", &h.mlp, seed) != SSL_OK))
            goto fail;
        m->has_proj = 1;
        const char *pp = default_predictor(L);
        if (pp) {
            ssl_head_cfg_t q;
            if (read_head(&model, "predictor", pp, &q) != SSL_OK)
                goto fail;
            q.mlp.in = h.mlp.out;
            if (q.mlp.out != h.mlp.out) {
                ssl_cfg_t pc = ssl_cfg_obj(&model, "predictor");
                ssl_cfg_fail(&pc, "out_dim", "%lld must equal the projector's out_dim %lld",
                             (long long)q.mlp.out, (long long)h.mlp.out);
                goto fail;
            }
            if (ssl_mlp_init(&m->pred, online, "predictor", &q.mlp, seed) != SSL_OK)
                goto fail;
            m->has_pred = 1;
        }
        if (L->type == SSL_LOSS_INFONCE && L->infonce.form == SSL_INFONCE_MOCO_V2) {
            if (ssl_queue_init(&m->queue, online, "loss.queue", L->infonce.queue_size, h.mlp.out,
                               1, seed) != SSL_OK)
                goto fail;
            m->has_queue = 1;
        }
        if (L->type == SSL_LOSS_SWAV) {
            ssl_head_cfg_t s;
            if (read_head(&model, "head", "swav_prototypes", &s) != SSL_OK)
                goto fail;
            s.swav.in_dim = h.mlp.out;
            if (ssl_swav_prototypes_init(&m->swav, online, "prototypes", &s.swav, seed) != SSL_OK)
                goto fail;
            m->has_swav = 1;
        }
    }
    if (L->type == SSL_LOSS_DINO) {
        ssl_head_cfg_t h;
        if (read_head(&model, "head", "dino", &h) != SSL_OK ||
            ssl_head_cfg_fit_encoder(&h, m->enc) != SSL_OK ||
            ssl_dino_head_init(&m->dino, online, "head", &h.dino, seed) != SSL_OK ||
            ssl_dino_head_init(&m->tdino, target, "target.head", &h.dino, seed) != SSL_OK ||
            ssl_dino_center_init(&m->center, online, "loss.center", h.dino.out_dim) != SSL_OK)
            goto fail;
        m->has_dino = 1;
    }
    if (L->type == SSL_LOSS_MAE) {
        ssl_head_cfg_t h;
        if (read_head(&model, "head", "mae_decoder", &h) != SSL_OK ||
            ssl_head_cfg_fit_encoder(&h, m->enc) != SSL_OK ||
            ssl_mae_decoder_init(&m->mae, online, "decoder", &h.mae, seed) != SSL_OK)
            goto fail;
        m->has_mae = 1;
    }
    if (L->type == SSL_LOSS_SIMMIM) {
        /* SimMIM: a learned mask token in the encoder and a one-layer linear decoder (the
         * official 1x1 conv + pixel shuffle) predicting each patch's pixels. The token is
         * decayed and drawn from N(0, 0.02) truncated at +-0.02, as VisionTransformerForSimMIM
         * does (its no_weight_decay() is only {pos_embed, cls_token}; the Swin variant's adds
         * mask_token). */
        m->mask_token = ssl_params_add(online, "encoder.mask_token", 3, (int64_t[]){1, 1, D},
                                       SSL_PARAM_TRAINABLE, 0);
        if (!m->mask_token)
            goto fail;
        ssl_rng_fill_trunc_normal(m->mask_token->data, (size_t)D, 0.0f, 0.02f, -0.02f, 0.02f, seed,
                                  ssl_nn_name_stream(m->mask_token->name), 0);
        int64_t pp = (int64_t)ecfg.vit.patch_size * ecfg.vit.patch_size * ecfg.vit.in_channels;
        if (ssl_nn_linear_init(&m->simmim_dec, online, "decoder", D, pp, 1,
                               SSL_INIT_TORCH_DEFAULT, seed) != SSL_OK)
            goto fail;
        m->has_simmim = 1;
    }
    if (L->type == SSL_LOSS_IJEPA) {
        ssl_head_cfg_t h;
        if (read_head(&model, "head", "ijepa_predictor", &h) != SSL_OK ||
            ssl_head_cfg_fit_encoder(&h, m->enc) != SSL_OK ||
            ssl_jepa_predictor_init(&m->jepa, online, "predictor", &h.jepa, seed) != SSL_OK)
            goto fail;
        m->has_jepa = 1;
    }
    if (L->type == SSL_LOSS_CLIP || L->type == SSL_LOSS_SIGLIP) {
        if (!ds->captions) {
            ssl_cfg_t dc = ssl_cfg_obj(root, "data");
            ssl_cfg_fail(&dc, "captions", "the %s loss needs captions: use image-text pairs or "
                         "\"captions\": \"class_names\"", L->type == SSL_LOSS_CLIP ? "clip"
                                                                                 : "siglip");
            goto fail;
        }
        ssl_head_cfg_t t, ip;
        if (read_head(&model, "text", "clip_text", &t) != SSL_OK ||
            read_head(&model, "image_proj", "clip_image_proj", &ip) != SSL_OK)
            goto fail;
        m->vocab = vocab ? ssl_vocab_from_string(vocab)
                         : ssl_vocab_build((const char *const *)ds->captions, ds->n,
                                           t.text.tokenizer, t.text.min_count, t.text.max_words);
        if (!m->vocab || !(m->vocab_str = ssl_vocab_to_string(m->vocab)))
            goto fail;
        t.text.vocab_size = ssl_vocab_size(m->vocab);
        t.text.embed_dim = ip.clip_proj.embed_dim;
        m->context_length = t.text.context_length;
        if (ssl_text_tower_init(&m->text, online, "text", &t.text, seed) != SSL_OK ||
            ssl_clip_proj_init(&m->img_proj, online, "image_proj", D, ip.clip_proj.embed_dim,
                               seed) != SSL_OK)
            goto fail;
        m->logit_scale = ssl_params_add(online, "loss.logit_scale", 0, NULL, SSL_PARAM_TRAINABLE,
                                        SSL_PARAM_NO_DECAY);
        if (!m->logit_scale)
            goto fail;
        m->logit_scale->data[0] = L->clip.init_logit_scale;
        if (L->type == SSL_LOSS_SIGLIP) {
            m->logit_bias = ssl_params_add(online, "loss.logit_bias", 0, NULL,
                                           SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY);
            if (!m->logit_bias)
                goto fail;
            m->logit_bias->data[0] = L->clip.init_logit_bias;
        }
        m->has_clip = 1;
    }
    if (ssl_cfg_status(root) == SSL_OK) {
        /* sections the method does not use are mistakes worth naming */
        static const char *const unused[] = {"projector", "predictor", "head", "text",
                                             "image_proj"};
        int used[5] = {m->has_proj, m->has_pred, m->has_dino || m->has_swav || m->has_mae ||
                                                     m->has_jepa, m->has_clip, m->has_clip};
        for (int i = 0; i < 5; i++)
            if (!used[i] && ssl_cfg_has(&model, unused[i])) {
                ssl_cfg_fail(&model, unused[i], "this method has no %s", unused[i]);
                goto fail;
            }
    }
    if (m->n_global < 2 && (is_projector_family(L->type) || L->type == SSL_LOSS_DINO ||
                            L->type == SSL_LOSS_SWAV)) {
        ssl_cfg_fail(root, "views", "this loss compares two views: the first group needs n >= 2");
        goto fail;
    }
    if (ssl_cfg_status(root))
        goto fail;
    return m;
fail:
    ssl__method_free(m);
    return NULL;
}

ssl_method_t *ssl__method_from_encoder(ssl_encoder_t *enc)
{
    ssl_method_t *m = calloc(1, sizeof *m);
    if (!m) {
        ssl_set_error(SSL_ERR_NOMEM, "method: out of memory");
        return NULL;
    }
    m->enc = enc;
    return m;
}

int ssl__method_init_encoder(ssl_method_t *m)
{
    return m->enc_weights ? ssl_encoder_load_weights(m->enc, m->enc_weights) : SSL_OK;
}

void ssl__method_free(ssl_method_t *m)
{
    if (!m)
        return;
    ssl_encoder_free(m->enc);
    ssl_encoder_free(m->tenc);
    ssl_vocab_free(m->vocab);
    free(m->vocab_str);
    free(m);
}

const char *ssl__method_vocab(const ssl_method_t *m) { return m->vocab_str; }
ssl_tensor_t *ssl__method_last_embedding(const ssl_method_t *m) { return m->last_z; }

int ssl__method_last_pair(const ssl_method_t *m, ssl_tensor_t **z1, ssl_tensor_t **z2)
{
    *z1 = m->last_z;
    *z2 = m->last_z2;
    return m->last_z && m->last_z2;
}

int ssl__method_mask_opts(const ssl_method_t *m, const ssl_run_cfg_t *rc, ssl_mask_opts_t *o,
                          int *patch_size)
{
    *o = rc->mask;
    *patch_size = 0;
    int need = m->loss[0].type == SSL_LOSS_MAE      ? SSL_MASK_RANDOM
             : m->loss[0].type == SSL_LOSS_SIMMIM ? SSL_MASK_SIMMIM
             : m->loss[0].type == SSL_LOSS_IJEPA  ? SSL_MASK_MULTIBLOCK
                                                  : SSL_MASK_NONE;
    if (need == SSL_MASK_NONE) {
        o->kind = SSL_MASK_NONE;
        return SSL_OK;
    }
    if (rc->mask_kind == SSL_MASK_NONE) { /* the loss's usual masks */
        const ssl_mask_opts_t given = *o;
        ssl_mask_opts_default(o, need, 0, 0);
        (void)given;
    } else if ((need == SSL_MASK_MULTIBLOCK) != (rc->mask_kind == SSL_MASK_MULTIBLOCK)) {
        return ssl_set_error(SSL_ERR_CONFIG, "masks.type: the %s loss needs %s masks",
                             need == SSL_MASK_MULTIBLOCK ? "ijepa"
                             : need == SSL_MASK_SIMMIM  ? "simmim" : "mae",
                             need == SSL_MASK_MULTIBLOCK ? "'multiblock'" : "token-dropping");
    }
    const ssl_encoder_cfg_t *ec = ssl_encoder_config(m->enc);
    *patch_size = ec->vit.patch_size;
    o->grid_h = o->grid_w = ec->vit.image_size / ec->vit.patch_size;
    if (o->kind == SSL_MASK_SIMMIM && rc->mask_kind == SSL_MASK_NONE && o->grid_h % o->block)
        o->block = 1; /* the default cell does not tile this grid: mask single tokens */
    if (rc->views.view[0].out_h != ec->vit.image_size)
        return ssl_set_error(SSL_ERR_CONFIG, "views[0].size: %d, but the ViT takes %d-pixel "
                             "images", rc->views.view[0].out_h, ec->vit.image_size);
    return ssl_mask_opts_validate(o);
}

/* ---------------------------------------------------------------- forward pieces */

static ssl_tensor_t *view(const ssl_batch_t *b, int v)
{
    return (ssl_tensor_t *)&b->views[v]; /* loader-owned, no gradient */
}

static ssl_tensor_t *pooled(ssl_ctx_t *ctx, const ssl_encoder_t *e, ssl_tensor_t *x)
{
    ssl_encoder_out_t o;
    return ssl_encoder_forward(ctx, e, x, NULL, 0, 1, &o) == SSL_OK ? o.pooled : NULL;
}

/* Online z = projector(encoder(x)). */
static ssl_tensor_t *online_z(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    return ssl_mlp_forward(ctx, &m->proj, pooled(ctx, m->enc, x), 1);
}

/* Target z, no tape. */
static ssl_tensor_t *target_z(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *z = ssl_mlp_forward(ctx, &m->tproj, pooled(ctx, m->tenc, x), 1);
    ssl_ctx_set_grad(ctx, prev);
    return z;
}

static ssl_tensor_t *projector_family_loss(ssl_method_t *m, ssl_ctx_t *ctx,
                                           const ssl_batch_t *b, const ssl_loss_cfg_t *L,
                                           ssl_tensor_t *const z[2], ssl_tensor_t *const p[2])
{
    switch (L->type) {
    case SSL_LOSS_INFONCE:
        if (L->infonce.form == SSL_INFONCE_NTXENT)
            return ssl_loss_ntxent(ctx, z[0], z[1], L->infonce.temperature);
        if (L->infonce.form == SSL_INFONCE_MOCO_V3) {
            ssl_tensor_t *k0 = target_z(m, ctx, view(b, 0)), *k1 = target_z(m, ctx, view(b, 1));
            return ssl_loss_moco_v3(ctx, p[0], p[1], k0, k1, L->infonce.temperature);
        } else { /* MoCo v2, symmetrised; both views' keys are queued after the step */
            ssl_tensor_t *k0 = target_z(m, ctx, view(b, 0)), *k1 = target_z(m, ctx, view(b, 1));
            ssl_tensor_t *l0 = ssl_loss_moco(ctx, z[0], k1, m->queue.keys, L->infonce.temperature);
            ssl_tensor_t *l1 = ssl_loss_moco(ctx, z[1], k0, m->queue.keys, L->infonce.temperature);
            ssl_tensor_t *keys[2] = {k0, k1}; /* view order, as ssl_loss_after_step */
            m->pending_keys = ssl_concat(ctx, keys, 2, 0);
            return ssl_scale(ctx, ssl_add(ctx, l0, l1), 0.5f, 0.0f);
        }
    case SSL_LOSS_BYOL: {
        ssl_tensor_t *t0 = target_z(m, ctx, view(b, 0)), *t1 = target_z(m, ctx, view(b, 1));
        return ssl_loss_byol(ctx, p[0], p[1], t0, t1);
    }
    case SSL_LOSS_SIMSIAM:
        return ssl_loss_simsiam(ctx, p[0], p[1], z[0], z[1]);
    case SSL_LOSS_BARLOW:
        return ssl_loss_barlow(ctx, z[0], z[1], L->barlow.lambda, L->barlow.scale, NULL);
    case SSL_LOSS_VICREG:
        return ssl_loss_vicreg(ctx, z[0], z[1], &L->vicreg, NULL);
    default:
        ssl_set_error(SSL_ERR_STATE, "method: loss %d is not a projector loss", L->type);
        return NULL;
    }
}

/* The encoder's pooled features of the first n views as DINO's MultiCropWrapper and SwAV's
 * ResNet.forward make them: each run of consecutive views of one size goes through the encoder
 * as ONE batch (BatchNorm statistics over all those crops together, one update of the running
 * statistics per run). (n B, D), views in order; the caller's head then runs once over all. */
static ssl_tensor_t *multicrop_pooled(ssl_ctx_t *ctx, const ssl_encoder_t *e, const ssl_batch_t *b,
                                      int n)
{
    ssl_tensor_t *feats[SSL_MAX_VIEWS], *xs[SSL_MAX_VIEWS];
    int nf = 0;
    for (int v0 = 0, v1; v0 < n; v0 = v1) {
        for (v1 = v0; v1 < n && b->views[v1].shape[2] == b->views[v0].shape[2] &&
                      b->views[v1].shape[3] == b->views[v0].shape[3];
             v1++)
            xs[v1 - v0] = view(b, v1);
        feats[nf++] = pooled(ctx, e, v1 - v0 == 1 ? xs[0] : ssl_concat(ctx, xs, v1 - v0, 0));
    }
    return nf == 1 ? feats[0] : ssl_concat(ctx, feats, nf, 0);
}

/* DINO's MultiCropWrapper: the head once over every view's features, (n B, K). */
static ssl_tensor_t *multicrop_forward(ssl_ctx_t *ctx, const ssl_encoder_t *e,
                                       const ssl_dino_head_t *h, const ssl_batch_t *b, int n)
{
    return ssl_dino_head_forward(ctx, h, multicrop_pooled(ctx, e, b, n), 1, NULL);
}

static ssl_tensor_t *dino_loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                               const ssl_step_pos_t *pos)
{
    const ssl_loss_cfg_t *L = &m->loss[0];
    ssl_tensor_t *S = multicrop_forward(ctx, m->enc, &m->dino, b, m->n_views);
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *T = multicrop_forward(ctx, m->tenc, &m->tdino, b, m->n_global);
    ssl_ctx_set_grad(ctx, prev);
    double epoch = (double)pos->epoch + (double)(pos->step % (pos->steps_per_epoch ? pos->steps_per_epoch : 1)) /
                                            (double)(pos->steps_per_epoch ? pos->steps_per_epoch : 1);
    float tt = ssl_dino_teacher_temp(L->dino.warmup_teacher_temp, L->dino.teacher_temp,
                                     L->dino.warmup_teacher_temp_epochs, epoch);
    m->pending_teacher = T;
    m->last_z = S;
    return ssl_loss_dino(ctx, S, T, m->n_global, m->center, L->dino.student_temp, tt);
}

static ssl_tensor_t *swav_loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b)
{
    const ssl_loss_cfg_t *L = &m->loss[0];
    /* As swav's ResNet.forward: the crops of one resolution go through the backbone as one
     * batch and the projection head runs once over every crop, so BatchNorm normalises over all
     * crops of the step (one statistics update per run, not one per view). */
    ssl_tensor_t *z = ssl_mlp_forward(ctx, &m->proj, multicrop_pooled(ctx, m->enc, b, m->n_views),
                                      1); // (V B, D)
    if (z) { /* the two global views' projections, for the collapse and alignment metrics */
        int prev = ssl_ctx_set_grad(ctx, 0);
        m->last_z = ssl_slice(ctx, z, 0, 0, b->size);
        m->last_z2 = ssl_slice(ctx, z, 0, b->size, b->size);
        ssl_ctx_set_grad(ctx, prev);
    }
    ssl_tensor_t *scores = ssl_swav_prototypes_forward(ctx, &m->swav, z, NULL); // (V B, K)
    int n_assign = L->swav.n_assign < m->n_global ? L->swav.n_assign : m->n_global;
    return ssl_loss_swav(ctx, scores, m->n_views, L->swav.crops_for_assign, n_assign, NULL,
                         L->swav.temperature, L->swav.epsilon, L->swav.sinkhorn_iterations);
}

static ssl_tensor_t *mae_loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b)
{
    const ssl_masks_t *mk = b->masks;
    ssl_encoder_out_t o;
    ssl_tensor_t *x = view(b, 0);
    if (ssl_encoder_forward(ctx, m->enc, x, mk->keep, mk->n_keep, 1, &o) != SSL_OK)
        return NULL;
    /* the decoder's cls slot takes the cls token's output, also when the encoder pools the
     * mean patch token (o.pooled) */
    ssl_tensor_t *cls = o.cls;
    ssl_tensor_t *pred = ssl_mae_decoder_forward(ctx, &m->mae, cls, o.tokens, mk->keep, mk->n_keep);
    ssl_tensor_t *target = ssl_patchify(ctx, x, ssl_encoder_config(m->enc)->vit.patch_size);
    m->last_z = o.pooled;
    return ssl_loss_mae_idx(ctx, pred, target, mk->masked, mk->n_masked, m->loss[0].mae.norm_pix_loss);
}

static ssl_tensor_t *simmim_loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b)
{
    const ssl_masks_t *mk = b->masks;
    const ssl_vit_cfg_t *v = &ssl_encoder_config(m->enc)->vit;
    ssl_tensor_t *x = view(b, 0);
    ssl_encoder_out_t o;
    if (ssl_encoder_forward_masked(ctx, m->enc, x, NULL, 0, mk->masked, mk->n_masked,
                                   m->mask_token, 1, &o) != SSL_OK)
        return NULL;
    int64_t g = v->image_size / v->patch_size, B = b->size;
    ssl_tensor_t *pred = ssl_nn_linear_forward(ctx, &m->simmim_dec, o.tokens); // (B, T, p*p*C)
    pred = ssl_unpatchify(ctx, pred, v->patch_size, v->image_size, v->image_size);
    ssl_tensor_t *mask = ssl_tensor_zeros(ctx, 3, (int64_t[]){B, g, g});
    if (!mask)
        return NULL;
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < mk->n_masked; j++)
            mask->data[i * g * g + mk->masked[i * mk->n_masked + j]] = 1.0f;
    m->last_z = o.pooled;
    return ssl_loss_simmim(ctx, pred, x, mask);
}

static ssl_tensor_t *ijepa_loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b)
{
    const ssl_masks_t *mk = b->masks;
    ssl_tensor_t *x = view(b, 0);
    ssl_encoder_out_t o, t;
    if (ssl_encoder_forward(ctx, m->enc, x, mk->keep, mk->n_keep, 1, &o) != SSL_OK)
        return NULL;
    int prev = ssl_ctx_set_grad(ctx, 0);
    int st = ssl_encoder_forward(ctx, m->tenc, x, NULL, 0, 1, &t);
    ssl_ctx_set_grad(ctx, prev);
    if (st != SSL_OK)
        return NULL;
    ssl_tensor_t *preds[16];
    const int32_t *idx[16];
    int64_t ks[16];
    int nt = mk->n_targets < 16 ? mk->n_targets : 16;
    const int64_t B = b->size, K = mk->n_target;
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
        preds[i] = ssl_jepa_predictor_forward(ctx, &m->jepa, o.tokens, mk->keep, idx[i], 1,
                                              mk->n_target);
    }
    m->last_z = o.pooled;
    return ssl_loss_ijepa(ctx, preds, t.tokens, idx, ks, nt, m->loss[0].ijepa.kind,
                          m->loss[0].ijepa.beta);
}

static ssl_tensor_t *clip_loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b)
{
    int64_t B = b->size, Lc = m->context_length;
    int32_t *ids = ssl_arena_alloc(ctx, (size_t)(B * Lc) * sizeof(int32_t));
    if (!ids)
        return NULL;
    for (int64_t i = 0; i < B; i++)
        if (ssl_vocab_encode(m->vocab, b->captions[i], ids + i * Lc, (int)Lc) < 0)
            return NULL;
    ssl_tensor_t *img = ssl_clip_proj_forward(ctx, &m->img_proj, pooled(ctx, m->enc, view(b, 0)));
    ssl_tensor_t *txt = ssl_text_tower_forward(ctx, &m->text, ids, B, Lc);
    m->last_z = img;
    m->last_z2 = txt;
    if (m->loss[0].type == SSL_LOSS_CLIP)
        return ssl_loss_clip(ctx, img, txt, m->logit_scale, m->loss[0].clip.max_logit_scale);
    return ssl_loss_siglip(ctx, img, txt, m->logit_scale, m->logit_bias);
}

/* ---------------------------------------------------------------- the step */

int ssl__method_before_step(ssl_method_t *m, ssl_params_t *online, const ssl_step_pos_t *pos)
{
    if (m->has_swav) {
        ssl_swav_prototypes_normalize(&m->swav);
        /* the result is 1 while frozen, not a status (cannot fail) */
        (void)ssl_swav_prototypes_set_iteration(&m->swav, online, pos->step);
    }
    if (m->has_dino) /* returns 1 while the last layer is frozen: not a status */
        (void)ssl_dino_head_set_epoch(&m->dino, online, (int)pos->epoch);
    return SSL_OK;
}

ssl_tensor_t *ssl__method_loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                               const ssl_step_pos_t *pos)
{
    m->pending_keys = m->pending_teacher = m->last_z = m->last_z2 = NULL;
    const ssl_loss_cfg_t *L = &m->loss[0];
    if ((L->type == SSL_LOSS_MAE || L->type == SSL_LOSS_IJEPA || L->type == SSL_LOSS_SIMMIM) &&
        !b->masks) {
        ssl_set_error(SSL_ERR_STATE, "method: the batch carries no masks");
        return NULL;
    }
    switch (L->type) {
    case SSL_LOSS_DINO: return dino_loss(m, ctx, b, pos);
    case SSL_LOSS_SWAV: return swav_loss(m, ctx, b);
    case SSL_LOSS_MAE: return mae_loss(m, ctx, b);
    case SSL_LOSS_SIMMIM: return simmim_loss(m, ctx, b);
    case SSL_LOSS_IJEPA: return ijepa_loss(m, ctx, b);
    case SSL_LOSS_CLIP:
    case SSL_LOSS_SIGLIP: return clip_loss(m, ctx, b);
    default: break;
    }
    ssl_tensor_t *z[2], *p[2] = {NULL, NULL};
    for (int v = 0; v < 2; v++) {
        z[v] = online_z(m, ctx, view(b, v));
        if (m->has_pred)
            p[v] = ssl_mlp_forward(ctx, &m->pred, z[v], 1);
    }
    m->last_z = z[0];
    m->last_z2 = z[1];
    ssl_tensor_t *total = NULL;
    for (int i = 0; i < m->n_loss; i++) {
        ssl_tensor_t *l = projector_family_loss(m, ctx, b, &m->loss[i], z, p);
        if (m->loss[i].weight != 1.0f)
            l = ssl_scale(ctx, l, m->loss[i].weight, 0.0f);
        total = total ? ssl_add(ctx, total, l) : l;
    }
    return total;
}

int ssl__method_after_step(ssl_method_t *m, ssl_ctx_t *ctx)
{
    (void)ctx;
    if (m->has_queue && m->pending_keys && ssl_queue_push(&m->queue, m->pending_keys) != SSL_OK)
        return ssl_last_status();
    if (m->has_dino && m->pending_teacher &&
        ssl_dino_center_update(m->center, m->pending_teacher, m->loss[0].dino.center_momentum) !=
            SSL_OK)
        return ssl_last_status();
    if (m->has_clip && m->loss[0].type == SSL_LOSS_CLIP) {
        /* open_clip's loop: logit_scale.clamp_(0, log 100) after every optimizer step, so the
         * parameter stays where its gradient is alive (the loss passes it at the bounds) */
        float *t = m->logit_scale->data, hi = m->loss[0].clip.max_logit_scale;
        t[0] = t[0] < 0.0f ? 0.0f : t[0] > hi ? hi : t[0];
    }
    return SSL_OK;
}

ssl_tensor_t *ssl__method_features(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    ssl_encoder_out_t o;
    int prev = ssl_ctx_set_grad(ctx, 0);
    int st = ssl_encoder_forward(ctx, m->eval_target ? m->tenc : m->enc, x, NULL, 0, 0, &o);
    ssl_ctx_set_grad(ctx, prev);
    return st == SSL_OK ? o.pooled : NULL;
}

/* ---------------------------------------------------------------- CLIP zero-shot */

int ssl__method_is_clip(const ssl_method_t *m) { return m->has_clip; }

ssl_tensor_t *ssl__method_image_embed(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    if (!m->has_clip) {
        ssl_set_error(SSL_ERR_STATE, "method: no image projection (not a CLIP/SigLIP method)");
        return NULL;
    }
    ssl_tensor_t *f = ssl__method_features(m, ctx, x);
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *z = f ? ssl_clip_proj_forward(ctx, &m->img_proj, f) : NULL;
    ssl_ctx_set_grad(ctx, prev);
    return z;
}

ssl_tensor_t *ssl__method_text_embed(ssl_method_t *m, ssl_ctx_t *ctx, const char *const *texts,
                                     int64_t n, int64_t *n_unknown)
{
    if (!m->has_clip) {
        ssl_set_error(SSL_ERR_STATE, "method: no text tower (not a CLIP/SigLIP method)");
        return NULL;
    }
    int64_t Lc = m->context_length, unk = 0;
    int32_t *ids = ssl_arena_alloc(ctx, (size_t)(n * Lc) * sizeof(int32_t)); // (n, Lc)
    if (!ids)
        return NULL;
    for (int64_t i = 0; i < n; i++) {
        int len = ssl_vocab_encode(m->vocab, texts[i], ids + i * Lc, (int)Lc);
        if (len < 0)
            return NULL;
        for (int j = 0; j < len; j++)
            unk += ids[i * Lc + j] == SSL_VOCAB_UNK;
    }
    if (n_unknown)
        *n_unknown = unk;
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *t = ssl_text_tower_forward(ctx, &m->text, ids, n, Lc);
    ssl_ctx_set_grad(ctx, prev);
    return t;
}
