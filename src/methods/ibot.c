/* iBOT (bytedance/ibot main_ibot.py): DINO's self-distillation on the class token plus masked
 * image modelling on the patch tokens. The student sees the global crops with blockwise-masked
 * patches (a learned embedding in their place), the EMA teacher the unmasked crops; the
 * student's patch tokens at the masked positions predict the teacher's patch distributions at
 * the same positions through the head (its own last layer unless shared), with a center and a
 * teacher temperature schedule of their own.
 *
 * The family composes a weighted list of terms that share this forward: dino (class tokens,
 * weight = iBOT's lambda1) and ibot (masked patches, lambda2), e.g.
 * "loss": [{"type": "dino"}, {"type": "ibot"}]; with koleo (KoLeo on the student's class tokens
 * of each global crop, weight 0.1) and "centering": "sinkhorn_knopp" this is DINOv2's
 * objective (facebookresearch/dinov2 ssl_meta_arch.py). */
#include "methods_internal.h"

#include <string.h>

typedef struct ibot_method {
    ssl_method_t base;
    ssl_dino_head_t head, thead;
    ssl_tensor_t *patch_g, *patch_v; /* the student's patch last layer (NULL when shared) */
    ssl_tensor_t *masked_embed;      /* (1, 1, D): replaces the masked patch embeddings */
    ssl_tensor_t *center, *center2;  /* (1, K) buffers: class and patch centers */
    /* the dino, ibot and koleo terms (NULL when absent) */
    const ssl_loss_cfg_t *cls, *patch, *koleo;
    /* the step's teacher outputs, for the centers after the step */
    ssl_tensor_t *pending_cls, *pending_patch;
} ibot_method_t;

#define PATCH_LAYER "head_patch" /* outside "head." so the EMA teacher (shared head) skips it */

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    ibot_method_t *im = (ibot_method_t *)m;
    for (int i = 0; i < m->n_loss; i++) {
        if (m->loss[i].type == SSL_LOSS_DINO)
            im->cls = &m->loss[i];
        else if (m->loss[i].type == SSL_LOSS_IBOT)
            im->patch = &m->loss[i];
        else
            im->koleo = &m->loss[i];
    }
    const ssl_vit_cfg_t *v = &ssl_encoder_config(m->enc)->vit;
    if (!v->cls_token) {
        ssl_cfg_t ec = ssl_cfg_obj(b->model, "encoder");
        return ssl_cfg_fail(&ec, "cls_token", "iBOT distils the class token: needs true");
    }
    ssl_head_cfg_t h;
    if (ssl__method_read_head(m, b, "head", "dino", &h) != SSL_OK ||
        ssl_head_cfg_fit_encoder(&h, m->enc) != SSL_OK)
        return ssl_last_status();
    if (h.dino.use_bn) {
        ssl_cfg_t hc = ssl_cfg_obj(b->model, "head");
        return ssl_cfg_fail(&hc, "use_bn", "iBOT's head has no BatchNorm (norm_in_head None)");
    }
    const int64_t K = h.dino.out_dim, D = ssl_encoder_dim(m->enc);
    if (ssl_dino_head_init(&im->head, b->online, "head", &h.dino, b->seed) != SSL_OK ||
        ssl_dino_head_init(&im->thead, b->target, "target.head", &h.dino, b->seed) != SSL_OK ||
        (im->cls && im->cls->centering == SSL_CENTERING_CENTER &&
         ssl_dino_center_init(&im->center, b->online, "loss", K) != SSL_OK))
        return ssl_last_status();
    if (!im->patch)
        return SSL_OK;
    /* main_ibot.py's defaults: the student's patch tokens get a last layer of their own
     * (shared_head false), the teacher's share its class-token layer (shared_head_teacher
     * true), so the patch distributions have out_dim entries too */
    if (!im->patch->ibot.shared_head &&
        ssl_dino_last_layer_init(b->online, PATCH_LAYER ".last_layer", K, h.dino.bottleneck_dim,
                                 h.dino.norm_last_layer, b->seed, &im->patch_g,
                                 &im->patch_v) != SSL_OK)
        return ssl_last_status();
    if (im->patch->centering == SSL_CENTERING_CENTER &&
        !(im->center2 =
              ssl_params_add(b->online, "loss.center2", 2, (int64_t[]){1, K}, SSL_PARAM_BUFFER, 0)))
        return ssl_last_status();
    /* iBOT's masked_embed: zeros, decayed (2-d) */
    im->masked_embed =
        ssl_params_add(b->online, "masked_embed", 3, (int64_t[]){1, 1, D}, SSL_PARAM_TRAINABLE, 0);
    return im->masked_embed ? SSL_OK : ssl_last_status();
}

static int before_step(ssl_method_t *m, ssl_params_t *online, const ssl_step_pos_t *pos)
{
    /* cancel_gradients_last_layer freezes every parameter named *last_layer*, the patch
     * layer too */
    ibot_method_t *im = (ibot_method_t *)m;
    int frozen = ssl_dino_head_set_epoch(&im->head, online, (int)pos->epoch);
    if (im->patch_g)
        ssl_params_set_frozen(online, PATCH_LAYER ".", frozen);
    return SSL_OK;
}

/* The first n views of the batch as one (n B, C, H, W) batch. */
static ssl_tensor_t *views_cat(ssl_ctx_t *ctx, const ssl_batch_t *b, int v0, int n)
{
    ssl_tensor_t *xs[SSL_MAX_VIEWS];
    for (int v = 0; v < n; v++)
        xs[v] = ssl__method_view(b, v0 + v);
    return n == 1 ? xs[0] : ssl_concat(ctx, xs, n, 0);
}

static ssl_tensor_t *weighted(ssl_ctx_t *ctx, ssl_tensor_t *total, ssl_tensor_t *l, float w)
{
    if (w != 1.0f)
        l = ssl_scale(ctx, l, w, 0.0f);
    return total ? ssl_add(ctx, total, l) : l;
}

/* The batch's iBOT masks of its G global views as the crops' (G B, T) 0/1 map, the masked
 * rows of their (G B T, D) tokens, view-major, and each crop's count (arena). Returns the
 * number of rows, or -1 (error set). */
static int64_t mask_rows(ssl_ctx_t *ctx, const ssl_batch_t *b, int G, int64_t T, float **map,
                         int32_t **rows, int32_t **counts)
{
    const ssl_masks_t *mk = b->masks;
    if (!mk || mk->kind != SSL_MASK_IBOT || mk->n_views != G) {
        ssl_set_error(SSL_ERR_STATE, "ibot: the batch needs 'ibot' masks for its %d global views",
                      G);
        return -1;
    }
    const int64_t B = b->size, GB = (int64_t)G * B;
    *map = ssl_arena_alloc(ctx, sizeof(float) * (size_t)(GB * T));
    *rows = ssl_arena_alloc(ctx, sizeof(int32_t) * (size_t)(GB * T));
    *counts = ssl_arena_alloc(ctx, sizeof(int32_t) * (size_t)GB);
    if (!*map || !*rows || !*counts)
        return -1;
    memset(*map, 0, sizeof(float) * (size_t)(GB * T));
    int64_t M = 0;
    /* the masks are sample-major (row b G + v), the crops view-major (row v B + b) */
    for (int64_t g = 0; g < GB; g++) {
        int64_t v = g / B, s = g % B;
        const int32_t *idx = mk->masked + s * mk->n_masked + v * T;
        (*counts)[g] = mk->counts[s * G + v];
        for (int32_t i = 0; i < (*counts)[g]; i++) {
            (*map)[g * T + idx[i]] = 1.0f;
            (*rows)[M++] = (int32_t)(g * T + idx[i]);
        }
    }
    return M;
}

/* The ibot term: the student's patch outputs at the M masked tokens (its head's MLP, then its
 * own last layer or the head's) against the teacher's Tm there: centred targets, or dinov2's
 * Sinkhorn-Knopp over the masked tokens of the batch. */
static ssl_tensor_t *patch_term(ibot_method_t *im, ssl_ctx_t *ctx, ssl_tensor_t *tokens,
                                ssl_tensor_t *Tm, const int32_t *rows, const int32_t *counts,
                                int64_t M, int64_t n_crops, const ssl_step_pos_t *pos)
{
    const ssl_loss_cfg_t *L = im->patch;
    ssl_tensor_t *tok = ssl_reshape(
        ctx, tokens, 2, (int64_t[]){tokens->shape[0] * tokens->shape[1], tokens->shape[2]});
    ssl_tensor_t *z = ssl_dino_head_bottleneck(ctx, &im->head, ssl_gather_rows(ctx, tok, rows, M),
                                               1); // (M, bottleneck)
    ssl_tensor_t *Sp = im->patch_g ? ssl_dino_last_layer(ctx, z, im->patch_g, im->patch_v)
                                   : ssl_dino_last_layer(ctx, z, im->head.weight_g,
                                                         im->head.weight_v); // (M, K)
    float tt = ssl__method_teacher_temp(L, pos);
    if (im->center2)
        return ssl_loss_ibot_patch(ctx, Sp, Tm, counts, n_crops, im->center2, L->dino.student_temp,
                                   tt);
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *Q = ssl__sinkhorn_ranks(ctx, Tm, tt, SSL_SK_TEACHER_ITERS);
    ssl_ctx_set_grad(ctx, prev);
    return ssl_loss_ibot_patch_targets(ctx, Sp, Q, counts, n_crops, L->dino.student_temp);
}

/* Several ranks with Sinkhorn-Knopp patch targets: its sums span every rank's masked tokens
 * (dinov2 all-reduces n_masked_patches), so a rank whose crops drew no masked token still
 * joins them with none (K columns) while any other rank has some. SSL_OK when none has any. */
static int patch_sk_join(const ibot_method_t *im, ssl_ctx_t *ctx, int64_t M, int64_t K,
                         const ssl_step_pos_t *pos)
{
    if (im->center2 || !ssl__ctx_comm(ctx))
        return SSL_OK;
    double all = (double)M; /* the masked tokens of every rank */
    if (ssl__all_reduce_f64(ctx, &all, 1) != SSL_OK)
        return ssl_last_status();
    if (M > 0 || all == 0)
        return SSL_OK;
    ssl_tensor_t *none = ssl_tensor_new(ctx, 2, (int64_t[]){0, K});
    return none && ssl__sinkhorn_ranks(ctx, none, ssl__method_teacher_temp(im->patch, pos),
                                       SSL_SK_TEACHER_ITERS)
               ? SSL_OK
               : ssl_last_status();
}

/* dinov2's KoLeo term: per global crop on the student backbone's class tokens cls (G B, D),
 * summed; with several ranks over every rank's tokens (gathered with the gradient). */
static ssl_tensor_t *koleo_term(ssl_ctx_t *ctx, ssl_tensor_t *cls, int G)
{
    ssl_tensor_t *c = ssl__method_gather_views(ctx, cls, G); // (G N B, D)
    int64_t nb = c ? c->shape[0] / G : 0;
    ssl_tensor_t *k = NULL;
    for (int v = 0; v < G; v++) {
        ssl_tensor_t *l = ssl_loss_koleo(ctx, ssl_slice(ctx, c, 0, v * nb, nb));
        k = k ? ssl_add(ctx, k, l) : l;
    }
    return k;
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    ibot_method_t *im = (ibot_method_t *)m;
    const int G = m->n_global, V = m->n_views;
    const int64_t B = b->size, T = ssl_encoder_num_tokens(m->enc), D = ssl_encoder_dim(m->enc);
    const int64_t GB = (int64_t)G * B;
    im->pending_cls = im->pending_patch = NULL;
    ssl_tensor_t *xg = views_cat(ctx, b, 0, G); // (G B, C, H, W)
    /* the masks of the global views as a (G B, T) map and the masked rows of (G B T, D) */
    float *map = NULL;
    int32_t *rows = NULL, *counts = NULL; /* counts: masked tokens of crop row g */
    int64_t M = im->patch ? mask_rows(ctx, b, G, T, &map, &rows, &counts) : 0;
    if (M < 0)
        return NULL;
    /* student: the masked global crops, then the other crops unmasked (class tokens only) */
    ssl_encoder_out_t so;
    int st = map ? ssl_encoder_forward_token_mask(ctx, m->enc, xg, map, im->masked_embed, 1, &so)
                 : ssl_encoder_forward(ctx, m->enc, xg, NULL, 0, 1, &so);
    if (st != SSL_OK)
        return NULL;
    ssl_tensor_t *cls = so.cls; // (G B, D)
    if (V > G) {
        ssl_encoder_out_t lo;
        if (ssl_encoder_forward(ctx, m->enc, views_cat(ctx, b, G, V - G), NULL, 0, 1, &lo))
            return NULL;
        ssl_tensor_t *parts[2] = {cls, lo.cls};
        cls = ssl_concat(ctx, parts, 2, 0); // (V B, D)
    }
    ssl_tensor_t *S = ssl_dino_head_forward(ctx, &im->head, cls, 1, NULL); // (V B, K)
    /* teacher: the unmasked global crops, no tape */
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_encoder_out_t to;
    st = ssl_encoder_forward(ctx, m->tenc, xg, NULL, 0, 1, &to);
    ssl_tensor_t *Tc =
        st == SSL_OK ? ssl_dino_head_forward(ctx, &im->thead, to.cls, 1, NULL) : NULL; // (G B, K)
    /* the teacher's patch outputs: of every token when the center (their mean) needs them,
     * else of the masked ones only */
    ssl_tensor_t *Tp = NULL, *Tm = NULL;
    if (im->patch && Tc) {
        ssl_tensor_t *tt = ssl_reshape(ctx, to.tokens, 2, (int64_t[]){GB * T, D});
        if (im->center2)
            Tp = ssl_dino_head_forward(ctx, &im->thead, tt, 1, NULL); // (G B T, K)
        if (M > 0)                                                    // (M, K)
            Tm = Tp ? ssl_gather_rows(ctx, Tp, rows, M)
                    : ssl_dino_head_forward(ctx, &im->thead, ssl_gather_rows(ctx, tt, rows, M), 1,
                                            NULL);
    }
    ssl_ctx_set_grad(ctx, prev);
    if (!S || !Tc || (im->center2 && !Tp) || (im->patch && M > 0 && !Tm))
        return NULL;
    m->last_z = S;
    ssl_tensor_t *total = NULL;
    if (im->cls) {
        total = weighted(ctx, total, ssl__method_dino_loss(ctx, im->cls, S, Tc, G, im->center, pos),
                         im->cls->weight);
        im->pending_cls = im->center ? Tc : NULL;
    }
    if (im->patch) {
        im->pending_patch = Tp;
        if (patch_sk_join(im, ctx, M, S->shape[1], pos) != SSL_OK)
            return NULL;
        if (M > 0) /* the student's patch head only where the loss reads it */
            total =
                weighted(ctx, total, patch_term(im, ctx, so.tokens, Tm, rows, counts, M, GB, pos),
                         im->patch->weight);
        else if (!total && !im->koleo) /* no masked token and no other term: a zero loss */
            total = ssl_scale(ctx, ssl_sum_all(ctx, S), 0.0f, 0.0f);
    }
    if (im->koleo)
        total = weighted(ctx, total, koleo_term(ctx, so.cls, G), im->koleo->weight);
    return total;
}

static int after_step(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_step_pos_t *pos)
{
    (void)pos;
    ibot_method_t *im = (ibot_method_t *)m;
    int st = SSL_OK;
    if (im->pending_cls)
        st = ssl__method_center_update(ctx, im->center, im->pending_cls,
                                       im->cls->dino.center_momentum);
    /* the patch center: the mean over samples of each sample's token mean, i.e. over rows */
    if (st == SSL_OK && im->pending_patch)
        st = ssl__method_center_update(ctx, im->center2, im->pending_patch,
                                       im->patch->dino.center_momentum);
    im->pending_cls = im->pending_patch = NULL;
    return st;
}

static const int k_types[] = {SSL_LOSS_IBOT, -1};
static const int k_list[] = {SSL_LOSS_DINO, SSL_LOSS_IBOT, SSL_LOSS_KOLEO, -1};
static const char *const k_ema[] = {"encoder.", "head.", NULL};

const ssl_method_def_t ssl__method_ibot = {
    .name = "ibot",
    .loss_types = k_types,
    .list_types = k_list,
    .size = sizeof(ibot_method_t),
    .target = SSL_TARGET_EMA,
    .needs_vit = 1,
    .mask_kind = SSL_MASK_IBOT,
    .min_global = 2,
    .ema_modules = k_ema,
    .create = create,
    .before_step = before_step,
    .loss = loss,
    .after_step = after_step,
};
