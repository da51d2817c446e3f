/* The method table and what is the same for every method: the "model" keys, the encoder(s),
 * the loss sections, the target and view checks, the sections a family did not read; the step
 * dispatched to the family's record. A new family is a new file and one line in k_methods. */
#include "methods_internal.h"

#include <stdlib.h>
#include <string.h>

#include "models/encoder_config.h"

static const ssl_method_def_t *const k_methods[] = {
    &ssl__method_contrastive, &ssl__method_regression, &ssl__method_redundancy,
    &ssl__method_dino,        &ssl__method_swav,       &ssl__method_mae,
    &ssl__method_simmim,      &ssl__method_ijepa,      &ssl__method_clip,
    &ssl__method_directpred,  &ssl__method_mocov1,     &ssl__method_deepclusterv2,
    &ssl__method_ibot,        &ssl__method_data2vec,   &ssl__method_maskfeat,
    &ssl__method_vae,         &ssl__method_gan,        &ssl__method_ddpm,
    &ssl__method_vqvae,       &ssl__method_beit,       &ssl__method_pixelcnn,
};

/* The family record of a loss type, or NULL. */
static const ssl_method_def_t *def_of(int loss_type)
{
    for (size_t i = 0; i < sizeof k_methods / sizeof k_methods[0]; i++)
        for (const int *t = k_methods[i]->loss_types; *t >= 0; t++)
            if (*t == loss_type)
                return k_methods[i];
    return NULL;
}

static int has_type(const int *types, int type)
{
    for (const int *t = types; t && *t >= 0; t++)
        if (*t == type)
            return 1;
    return 0;
}

/* The family of a config's losses: a family that composes its own lists (list_types) takes any
 * list holding one of its loss types; otherwise the family of loss[0]. */
static const ssl_method_def_t *family_of(const ssl_loss_cfg_t *loss, int n)
{
    for (size_t i = 0; i < sizeof k_methods / sizeof k_methods[0]; i++)
        if (k_methods[i]->list_types)
            for (int j = 0; j < n; j++)
                if (has_type(k_methods[i]->loss_types, loss[j].type))
                    return k_methods[i];
    return def_of(loss[0].type);
}

/* The model sections families read (bit i of read_sections: common.c's k_read_bits). */
static const char *const k_target_names[] = {"none", "stop_grad", "ema"};

/* What every method checks and builds before its family's create. */
static int create_common(ssl_method_t *m, ssl_method_build_t *b, const ssl_encoder_cfg_t *ecfg)
{
    const ssl_method_def_t *d = m->def;
    const ssl_loss_cfg_t *L = &m->loss[0];
    for (int i = 0; i < m->n_loss; i++) {
        if (d->list_types) { /* the family composes the list: each type once */
            int twice = 0;
            for (int j = 0; j < i; j++)
                twice |= m->loss[j].type == m->loss[i].type;
            if (!has_type(d->list_types, m->loss[i].type) || twice)
                return ssl_cfg_fail(b->root, "loss",
                                    "the %s family combines dino, ibot and koleo terms, each "
                                    "once ('%s' %s)",
                                    d->name, ssl_loss_type_name(m->loss[i].type),
                                    twice ? "is listed twice" : "is not one of them");
            continue;
        }
        const ssl_method_def_t *di = def_of(m->loss[i].type);
        m->term[i] = di ? di->term : NULL;
        if (m->n_loss > 1 && !m->term[i])
            return ssl_cfg_fail(b->root, "loss",
                                "a weighted list may only combine infonce, byol, "
                                "simsiam, barlow and vicreg terms (or dino, ibot and koleo "
                                "with an ibot term)");
    }
    int want = d->target_for ? d->target_for(L) : d->target;
    if (want != SSL_TARGET_NONE && m->target != want)
        return ssl__method_fail(b, "target", "type",
                                "this loss needs a '%s' target, the config has '%s'",
                                k_target_names[want], k_target_names[m->target]);
    if (m->target == SSL_TARGET_EMA && want == SSL_TARGET_NONE && !d->ema_optional)
        return ssl__method_fail(b, "target", "type", "this loss uses no target network");
    if (m->eval_target && !b->ema)
        return ssl__method_fail(b, "eval", "encoder",
                                "'target' needs an EMA target network (target.type 'ema')");
    if (!ecfg) /* the family's own network (its create checks what applies to it) */
        return m->eval_blocks > 1 ? ssl__method_fail(b, "eval", "blocks", "%d: the %s has no "
                                                     "encoder blocks to read", m->eval_blocks,
                                                     d->name)
                                  : SSL_OK;
    if (d->needs_vit && ecfg->kind != SSL_ENC_VIT) {
        ssl_cfg_t ec = ssl_cfg_obj(b->model, "encoder");
        return ssl_cfg_fail(&ec, "type", "the %s loss needs a ViT encoder",
                            ssl_loss_type_name(L->type));
    }
    int groups = ecfg->kind == SSL_ENC_RESNET ? ecfg->resnet.bn_groups : 1;
    if (groups > 1 && m->env.batch_size > 0 && m->env.batch_size % groups) {
        ssl_cfg_t ec = ssl_cfg_obj(b->model, "encoder");
        return ssl_cfg_fail(&ec, "bn_groups", "%d does not divide train.batch_size %lld", groups,
                            (long long)m->env.batch_size);
    }
    /* several ranks: each splits its own part of the batch into the groups */
    int64_t part = m->env.ranks > 1 ? m->env.batch_size / m->env.ranks : 0;
    if (groups > 1 && part > 0 && part % groups) {
        ssl_cfg_t ec = ssl_cfg_obj(b->model, "encoder");
        return ssl_cfg_fail(&ec, "bn_groups",
                            "%d does not divide the %lld images of each of the %d ranks "
                            "(train.batch_size %lld)",
                            groups, (long long)part, m->env.ranks, (long long)m->env.batch_size);
    }
    int depth = ecfg->kind == SSL_ENC_VIT       ? ecfg->vit.depth
                : ecfg->kind == SSL_ENC_CONVNET ? ecfg->convnet.depth
                                                : 0;
    if (m->eval_blocks > 1 && m->eval_blocks > depth)
        return depth ? ssl__method_fail(b, "eval", "blocks", "%d is more blocks than the %s "
                                        "has (model.encoder depth %d)", m->eval_blocks,
                                        ecfg->kind == SSL_ENC_VIT ? "ViT" : "dcgan encoder",
                                        depth)
                     : ssl__method_fail(b, "eval", "blocks", "%d: a readout of several blocks "
                                        "needs a ViT or dcgan encoder (model.encoder is a "
                                        "ResNet)", m->eval_blocks);
    m->enc = ssl_encoder_create(ecfg, b->online, "encoder", b->seed);
    if (!m->enc ||
        (b->ema && !(m->tenc = ssl_encoder_create(ecfg, b->target, "target.encoder", b->seed))))
        return ssl_last_status();
    return SSL_OK;
}

static int check_phases(const ssl_method_t *m, const ssl_params_t *online);

ssl_method_t *ssl__method_create(ssl_cfg_t *root, const ssl_method_env_t *env,
                                 const ssl_dataset_t *ds, ssl_params_t *online,
                                 ssl_params_t *target, uint64_t seed, const char *vocab)
{
    static const char *const model_keys[] = {"encoder",   "projector",     "predictor",
                                             "head",      "text",          "image_proj",
                                             "decoder",   "generator",     "discriminator",
                                             "unet",      "tokenizer",     "network",
                                             NULL};
    ssl_cfg_t model = ssl_cfg_obj(root, "model");
    ssl_cfg_keys(&model, model_keys);
    if (ssl_cfg_status(root))
        return NULL;
    ssl_loss_cfg_t loss[SSL_METHOD_MAX_LOSSES];
    int n_loss = 0;
    if (ssl__loss_cfgs_read(root, "loss", loss, SSL_METHOD_MAX_LOSSES, &n_loss) != SSL_OK)
        return NULL;
    const ssl_method_def_t *d = family_of(loss, n_loss);
    if (!d) {
        ssl_cfg_t lc = ssl_cfg_obj(root, "loss");
        ssl_cfg_fail(&lc, "type", "no method trains the loss '%s'",
                     ssl_loss_type_name(loss[0].type));
        return NULL;
    }
    ssl_encoder_cfg_t ecfg;
    const char *weights = NULL;
    if (d->network) { /* the family's own network, no encoder */
        if (ssl_cfg_has(&model, "encoder"))
            ssl_cfg_fail(&model, "encoder", "the %s has no encoder: its network is "
                         "model.%s", d->name, d->network);
        if (ssl_cfg_status(root))
            return NULL;
    } else {
        ssl_cfg_require(&model, "encoder");
        ssl_cfg_t ec = ssl_cfg_obj(&model, "encoder");
        if (ssl_cfg_status(root) || ssl__encoder_cfg_read(&ec, &ecfg, &weights) != SSL_OK)
            return NULL;
        int in_ch = ssl_encoder_cfg_in_channels(&ecfg);
        if (in_ch != ds->c) {
            ssl_cfg_fail(&ec, "in_channels", "%d, but the %s images have %lld channel%s", in_ch,
                         env->dataset, (long long)ds->c, ds->c == 1 ? "" : "s");
            return NULL;
        }
    }
    ssl_method_t *m = calloc(1, d->size);
    if (!m) {
        ssl_set_error(SSL_ERR_NOMEM, "method: out of memory");
        return NULL;
    }
    m->def = d;
    m->env = *env;
    m->env.dataset = NULL; /* points into the caller's run config: only for create's messages */
    memcpy(m->loss, loss, sizeof loss);
    m->n_loss = n_loss;
    m->target = env->target;
    m->eval_target = env->eval_target;
    m->eval_blocks = env->eval_blocks > 0 ? env->eval_blocks : 1;
    m->n_views = env->n_views;
    m->n_global = env->n_global;
    m->enc_weights = weights;
    m->epoch_begun = -1;
    ssl_method_build_t b = {root, &model, online, target,
                            ds,   seed,   vocab,  env->target == SSL_TARGET_EMA};
    if (create_common(m, &b, d->network ? NULL : &ecfg) != SSL_OK || d->create(m, &b) != SSL_OK ||
        (d->n_phases > 1 && check_phases(m, online) != SSL_OK))
        goto fail;
    /* sections the method does not use are mistakes worth naming */
    for (int i = 0; ssl__method_sections[i]; i++)
        if (!(m->read_sections & (1u << i)) && ssl_cfg_has(&model, ssl__method_sections[i])) {
            ssl_cfg_fail(&model, ssl__method_sections[i], "this method has no %s",
                         ssl__method_sections[i]);
            goto fail;
        }
    if (m->env.readout && !m->readout_read) {
        ssl_set_error(SSL_ERR_CONFIG, "readout '%s': the %s method has no readout choice (a "
                      "ddpm checkpoint's BLOCK@T, a pixelcnn checkpoint's LAYER[/maxG])",
                      m->env.readout, d->name);
        goto fail;
    }
    if (m->n_global < d->min_global) {
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

static const ssl_method_def_t k_encoder_only = {.name = "encoder"};

ssl_method_t *ssl__method_from_encoder(ssl_encoder_t *enc, int eval_blocks)
{
    ssl_method_t *m = calloc(1, sizeof *m);
    if (!m) {
        ssl_set_error(SSL_ERR_NOMEM, "method: out of memory");
        return NULL;
    }
    m->def = &k_encoder_only;
    m->enc = enc;
    m->eval_blocks = eval_blocks;
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
    if (m->def && m->def->free)
        m->def->free(m);
    ssl_encoder_free(m->enc);
    ssl_encoder_free(m->tenc);
    free(m);
}

const char *ssl__method_vocab(const ssl_method_t *m)
{
    return m->def->vocab ? m->def->vocab(m) : NULL;
}

const char *const *ssl__method_ema_modules(const ssl_method_t *m)
{
    static const char *const none[] = {NULL};
    return m->def->ema_modules ? m->def->ema_modules : none;
}

ssl_tensor_t *ssl__method_last_embedding(const ssl_method_t *m)
{
    return m->last_z;
}

int ssl__method_last_pair(const ssl_method_t *m, ssl_tensor_t **z1, ssl_tensor_t **z2)
{
    *z1 = m->last_z;
    *z2 = m->last_z2;
    return m->last_z && m->last_z2;
}

/* Mask kinds that stand in for each other: the token-dropping ones (random, simmim, blockwise). */
static int mask_group(int kind)
{
    return kind == SSL_MASK_MULTIBLOCK || kind == SSL_MASK_IBOT ? kind : 0;
}

int ssl__method_mask_opts(const ssl_method_t *m, ssl_mask_opts_t *o, int *patch_size)
{
    const ssl_method_env_t *env = &m->env;
    *o = env->mask;
    *patch_size = 0;
    int need = m->def->mask_kind;
    if (need == SSL_MASK_NONE) {
        o->kind = SSL_MASK_NONE;
        return SSL_OK;
    }
    if (env->mask_kind == SSL_MASK_NONE) /* the loss's usual masks */
        ssl_mask_opts_default(o, need, 0, 0);
    else if (mask_group(need) != mask_group(env->mask_kind))
        return ssl_set_error(SSL_ERR_CONFIG, "masks.type: the %s method needs %s masks",
                             m->def->name,
                             need == SSL_MASK_MULTIBLOCK ? "'multiblock'"
                             : need == SSL_MASK_IBOT     ? "'ibot'"
                                                         : "token-dropping");
    if (o->kind == SSL_MASK_IBOT)
        o->n_views = m->n_global; /* one mask per global view */
    const ssl_encoder_cfg_t *ec = ssl_encoder_config(m->enc);
    *patch_size = ec->vit.patch_size;
    o->grid_h = o->grid_w = ec->vit.image_size / ec->vit.patch_size;
    if (o->kind == SSL_MASK_SIMMIM && env->mask_kind == SSL_MASK_NONE && o->grid_h % o->block)
        o->block = 1; /* the default cell does not tile this grid: mask single tokens */
    if (env->view_size != ec->vit.image_size)
        return ssl_set_error(SSL_ERR_CONFIG,
                             "views[0].size: %d, but the ViT takes %d-pixel "
                             "images",
                             env->view_size, ec->vit.image_size);
    return ssl_mask_opts_validate(o);
}

/* ---------------------------------------------------------------- the step */

int ssl__method_before_step(ssl_method_t *m, ssl_params_t *online, const ssl_step_pos_t *pos)
{
    if (m->def->before_epoch && pos->steps_per_epoch > 0 && pos->step % pos->steps_per_epoch == 0 &&
        pos->epoch != m->epoch_begun) {
        if (m->def->before_epoch(m, pos) != SSL_OK)
            return ssl_last_status();
        m->epoch_begun = pos->epoch;
    }
    return m->def->before_step ? m->def->before_step(m, online, pos) : SSL_OK;
}

int ssl__method_observes(const ssl_method_t *m)
{
    return m->def->observe != NULL;
}

int ssl__method_observe(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b)
{
    if (!m->def->observe)
        return SSL_OK;
    int prev = ssl_ctx_set_grad(ctx, 0);
    int st = m->def->observe(m, ctx, b);
    ssl_ctx_set_grad(ctx, prev);
    return st;
}

int64_t ssl__method_eval_batch(const ssl_method_t *m)
{
    int64_t step = m->env.batch_size * (m->env.n_views > 1 ? m->env.n_views : 1);
    return step > 0 && step < 256 ? step : 256;
}

int ssl__method_phases(const ssl_method_t *m)
{
    return m->def->n_phases > 1 ? m->def->n_phases : 1;
}

const char *const *ssl__method_phase_params(const ssl_method_t *m, int phase)
{
    return ssl__method_phases(m) > 1 ? m->def->phase_params(m, phase) : NULL;
}

const char *ssl__method_name(const ssl_method_t *m)
{
    return m->def->name;
}

/* Every trainable parameter in exactly one optimizer phase (a family's bug otherwise). */
static int check_phases(const ssl_method_t *m, const ssl_params_t *online)
{
    for (int i = 0; i < ssl_params_count(online); i++) {
        const ssl_param_info_t *in = ssl_params_info(online, i);
        if (in->kind != SSL_PARAM_TRAINABLE)
            continue;
        int n = 0;
        for (int ph = 0; ph < ssl__method_phases(m); ph++) {
            const char *const *pre = ssl__method_phase_params(m, ph);
            for (int k = 0; pre[k]; k++)
                n += !strncmp(in->name, pre[k], strlen(pre[k]));
        }
        if (n != 1)
            return ssl_set_error(SSL_ERR_STATE, "method %s: parameter '%s' is in %d of its "
                                 "optimizer phases, not one", m->def->name, in->name, n);
    }
    return SSL_OK;
}

ssl_tensor_t *ssl__method_loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                               const ssl_step_pos_t *pos)
{
    if (pos->phase == 0) { /* a later phase adds its parts and embeddings to the first's */
        m->last_z = m->last_z2 = NULL;
        m->parts.n = 0;
    }
    if (!m->def->loss) {
        ssl_set_error(SSL_ERR_STATE, "method: an encoder alone has no training loss");
        return NULL;
    }
    if (m->def->mask_kind != SSL_MASK_NONE && !b->masks) {
        ssl_set_error(SSL_ERR_STATE, "method: the batch carries no masks");
        return NULL;
    }
    return m->def->loss(m, ctx, b, pos);
}

int ssl__method_after_step(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_step_pos_t *pos)
{
    return m->def->after_step ? m->def->after_step(m, ctx, pos) : SSL_OK;
}

const ssl_loss_parts_t *ssl__method_loss_parts(const ssl_method_t *m)
{
    return &m->parts;
}

/* ---------------------------------------------------------------- generative methods */

int ssl__method_has_nll(const ssl_method_t *m)
{
    return m->def->nll != NULL;
}

int ssl__method_has_pictures(const ssl_method_t *m)
{
    return m->def->pictures != NULL;
}

int ssl__method_set_sample_steps(ssl_method_t *m, int steps)
{
    if (steps > 0 && !m->def->stepped_sampler)
        return ssl_set_error(SSL_ERR_UNSUPPORTED, "method: the %s draws its samples in one pass "
                             "(no sampler steps to set)", m->def->name);
    m->env.sample_steps = steps > 0 ? steps : 0;
    return SSL_OK;
}

int ssl__method_nll(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t index0,
                    uint64_t seed, double *sum, ssl_loss_parts_t *part_sums)
{
    if (!m->def->nll)
        return ssl_set_error(SSL_ERR_UNSUPPORTED, "method: %s has no likelihood", m->def->name);
    int prev = ssl_ctx_set_grad(ctx, 0);
    int st = m->def->nll(m, ctx, x, index0, seed, sum, part_sums);
    ssl_ctx_set_grad(ctx, prev);
    return st;
}

int ssl__method_has_test(const ssl_method_t *m)
{
    return m->def->test_batch != NULL;
}

int ssl__method_test_batch(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int first)
{
    if (!m->def->test_batch)
        return ssl_set_error(SSL_ERR_UNSUPPORTED, "method: %s has no test metrics",
                             m->def->name);
    int prev = ssl_ctx_set_grad(ctx, 0);
    int st = m->def->test_batch(m, ctx, x, first);
    ssl_ctx_set_grad(ctx, prev);
    return st;
}

int ssl__method_test_result(ssl_method_t *m, ssl_loss_parts_t *out)
{
    out->n = 0;
    return m->def->test_result ? m->def->test_result(m, out) : SSL_OK;
}

int ssl__method_pictures(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t n,
                         uint64_t seed, ssl_tensor_t **recon, ssl_tensor_t **samples)
{
    if (!m->def->pictures)
        return ssl_set_error(SSL_ERR_UNSUPPORTED, "method: %s makes no pictures", m->def->name);
    int prev = ssl_ctx_set_grad(ctx, 0);
    int st = m->def->pictures(m, ctx, x, n, seed, recon, samples);
    ssl_ctx_set_grad(ctx, prev);
    return st;
}

/* ---------------------------------------------------------------- CLIP zero-shot */

int ssl__method_is_clip(const ssl_method_t *m)
{
    return m->def->text_embed != NULL;
}

ssl_tensor_t *ssl__method_image_embed(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    if (!m->def->image_embed) {
        ssl_set_error(SSL_ERR_STATE, "method: no image projection (not a CLIP/SigLIP method)");
        return NULL;
    }
    return m->def->image_embed(m, ctx, x);
}

ssl_tensor_t *ssl__method_caption_ids(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    if (!m->def->caption_ids) {
        ssl_set_error(SSL_ERR_UNSUPPORTED, "method: %s has no caption decoder (a coca loss "
                      "trains one)", m->def->name);
        return NULL;
    }
    return m->def->caption_ids(m, ctx, x);
}

ssl_tensor_t *ssl__method_text_embed(ssl_method_t *m, ssl_ctx_t *ctx, const char *const *texts,
                                     int64_t n, int64_t *n_unknown)
{
    if (!m->def->text_embed) {
        ssl_set_error(SSL_ERR_STATE, "method: no text tower (not a CLIP/SigLIP method)");
        return NULL;
    }
    return m->def->text_embed(m, ctx, texts, n, n_unknown);
}
