/* The configured loss object: state creation (queue, center, logit scale), evaluation of any
 * objective from one inputs struct, state updates after the step, and weighted sums. */
#include "losses_internal.h"
#include "ssl/nn.h"

#include <stdio.h>
#include <string.h>

int ssl_loss_init(ssl_loss_t *l, const ssl_loss_cfg_t *cfg, ssl_params_t *p, const char *name,
                  int64_t dim, uint64_t seed)
{
    if (!l || !cfg || !p || !name)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_loss_init: NULL argument");
    memset(l, 0, sizeof *l);
    const char *tn = ssl_loss_type_name(cfg->type);
    if (!tn)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_loss_init: unknown loss type %d", cfg->type);
    l->cfg = *cfg;
    int needs_dim = (cfg->type == SSL_LOSS_INFONCE && cfg->infonce.form == SSL_INFONCE_MOCO_V2) ||
                    cfg->type == SSL_LOSS_DINO ||
                    (cfg->type == SSL_LOSS_SWAV && cfg->swav.queue_length > 0);
    if (needs_dim && dim < 1)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_loss_init (%s): embedding width %lld < 1", tn,
                             (long long)dim);
    char buf[256];
    switch (cfg->type) {
    case SSL_LOSS_INFONCE:
        if (cfg->infonce.form == SSL_INFONCE_MOCO_V2)
            return ssl_queue_init(&l->queue, p, name, cfg->infonce.queue_size, dim, 1, seed);
        return SSL_OK;
    case SSL_LOSS_DINO:
        return ssl_dino_center_init(&l->center, p, name, dim);
    case SSL_LOSS_SWAV:
        if (cfg->swav.n_assign > SSL_SWAV_MAX_ASSIGN)
            return ssl_set_error(SSL_ERR_INVALID, "ssl_loss_init (swav): at most %d assigned crops",
                                 SSL_SWAV_MAX_ASSIGN);
        for (int a = 0; cfg->swav.queue_length > 0 && a < cfg->swav.n_assign; a++) {
            char qn[32];
            snprintf(qn, sizeof qn, "queue%d", a);
            int st = ssl_queue_init(&l->swav_queue[a], p, ssl_nn_name(buf, sizeof buf, name, qn),
                                    cfg->swav.queue_length, dim, 0, seed);
            if (st)
                return st;
        }
        return SSL_OK;
    case SSL_LOSS_CLIP:
    case SSL_LOSS_SIGLIP:
        l->logit_scale = ssl_params_add(p, ssl_nn_name(buf, sizeof buf, name, "logit_scale"), 0,
                                        NULL, SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY);
        if (!l->logit_scale)
            return ssl_last_status();
        l->logit_scale->data[0] = cfg->clip.init_logit_scale;
        if (cfg->type == SSL_LOSS_SIGLIP) {
            l->logit_bias = ssl_params_add(p, ssl_nn_name(buf, sizeof buf, name, "logit_bias"), 0,
                                           NULL, SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY);
            if (!l->logit_bias)
                return ssl_last_status();
            l->logit_bias->data[0] = cfg->clip.init_logit_bias;
        }
        return SSL_OK;
    default:
        return SSL_OK;
    }
}

/* Error for a NULL input: names the loss and the field, and keeps an earlier error's text
 * (the NULL may come from a failed op upstream). */
static int missing(const char *loss, const char *field)
{
    if (ssl_last_status() != SSL_OK) {
        char prev[384];
        snprintf(prev, sizeof prev, "%s", ssl_last_error());
        return ssl_set_error(ssl_last_status(), "%s: input '%s' is NULL (after: %s)", loss, field,
                             prev);
    }
    return ssl_set_error(SSL_ERR_INVALID, "%s: input '%s' is missing", loss, field);
}

#define NEED(loss, in, field)                                                                      \
    do {                                                                                           \
        if (!(in)->field) {                                                                        \
            missing(loss, #field);                                                                 \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)

static void add_part(ssl_loss_parts_t *parts, const char *name, float v)
{
    if (parts && parts->n < SSL_LOSS_MAX_PARTS) {
        parts->name[parts->n] = name;
        parts->value[parts->n++] = v;
    }
}

static ssl_tensor_t *infonce_forward(ssl_ctx_t *ctx, ssl_loss_t *l, const ssl_loss_inputs_t *in)
{
    float tau = l->cfg.infonce.temperature;
    switch (l->cfg.infonce.form) {
    case SSL_INFONCE_NTXENT:
        NEED("infonce (ntxent)", in, z1);
        NEED("infonce (ntxent)", in, z2);
        return ssl_loss_ntxent(ctx, in->z1, in->z2, tau);
    case SSL_INFONCE_MOCO_V2: {
        NEED("infonce (moco_v2)", in, z1);
        NEED("infonce (moco_v2)", in, t2);
        ssl_tensor_t *l12 = ssl_loss_moco(ctx, in->z1, in->t2, l->queue.keys, tau);
        if (!in->z2 || !in->t1)
            return l12;
        ssl_tensor_t *l21 = ssl_loss_moco(ctx, in->z2, in->t1, l->queue.keys, tau);
        return ssl_scale(ctx, ssl_add(ctx, l12, l21), 0.5f, 0.0f);
    }
    default:
        NEED("infonce (moco_v3)", in, z1);
        NEED("infonce (moco_v3)", in, z2);
        NEED("infonce (moco_v3)", in, t1);
        NEED("infonce (moco_v3)", in, t2);
        return ssl_loss_moco_v3(ctx, in->z1, in->z2, in->t1, in->t2, tau);
    }
}

static int swav_queue_ready(const ssl_loss_t *l, double epoch)
{
    if (l->cfg.swav.queue_length <= 0 || epoch < l->cfg.swav.epoch_queue_starts)
        return 0;
    for (int a = 0; a < l->cfg.swav.n_assign; a++)
        if (ssl_queue_count(&l->swav_queue[a]) < ssl_queue_size(&l->swav_queue[a]))
            return 0;
    return 1;
}

static ssl_tensor_t *swav_forward(ssl_ctx_t *ctx, ssl_loss_t *l, const ssl_loss_inputs_t *in,
                                  ssl_loss_parts_t *parts)
{
    const char *L = "swav";
    NEED(L, in, student);
    const ssl_loss_cfg_t *c = &l->cfg;
    ssl_tensor_t *qs[SSL_SWAV_MAX_ASSIGN] = {NULL};
    int use_queue = swav_queue_ready(l, in->epoch);
    if (use_queue) { /* scores of the queued embeddings against the current prototypes */
        NEED(L, in, prototypes);
        ssl_tensor_t *protos = ssl__loss_sg(ctx, in->prototypes);
        for (int a = 0; a < c->swav.n_assign; a++) {
            qs[a] = ssl_matmul(ctx, l->swav_queue[a].keys, protos, 0, 1); // (Q, K)
            if (!qs[a])
                return NULL;
        }
    }
    add_part(parts, "queue_used", (float)use_queue);
    return ssl_loss_swav(ctx, in->student, in->n_views, c->swav.crops_for_assign, c->swav.n_assign,
                         use_queue ? qs : NULL, c->swav.temperature, c->swav.epsilon,
                         c->swav.sinkhorn_iterations);
}

ssl_tensor_t *ssl_loss_forward(ssl_ctx_t *ctx, ssl_loss_t *l, const ssl_loss_inputs_t *in,
                               ssl_loss_parts_t *parts)
{
    if (parts)
        parts->n = 0;
    if (!ctx || !l || !in) {
        ssl_set_error(SSL_ERR_INVALID, "ssl_loss_forward: NULL argument");
        return NULL;
    }
    const ssl_loss_cfg_t *c = &l->cfg;
    switch (c->type) {
    case SSL_LOSS_INFONCE:
        return infonce_forward(ctx, l, in);
    case SSL_LOSS_BYOL:
    case SSL_LOSS_SIMSIAM: {
        const char *L = c->type == SSL_LOSS_BYOL ? "byol" : "simsiam";
        NEED(L, in, z1);
        NEED(L, in, z2);
        NEED(L, in, t1);
        NEED(L, in, t2);
        return c->type == SSL_LOSS_BYOL ? ssl_loss_byol(ctx, in->z1, in->z2, in->t1, in->t2)
                                        : ssl_loss_simsiam(ctx, in->z1, in->z2, in->t1, in->t2);
    }
    case SSL_LOSS_DINO: {
        NEED("dino", in, student);
        NEED("dino", in, teacher);
        float tt = ssl_dino_teacher_temp(c->dino.warmup_teacher_temp, c->dino.teacher_temp,
                                         c->dino.warmup_teacher_temp_epochs, in->epoch);
        add_part(parts, "teacher_temp", tt);
        return ssl_loss_dino(ctx, in->student, in->teacher, in->n_global ? in->n_global : 2,
                             l->center, c->dino.student_temp, tt);
    }
    case SSL_LOSS_SWAV:
        return swav_forward(ctx, l, in, parts);
    case SSL_LOSS_BARLOW:
        NEED("barlow", in, z1);
        NEED("barlow", in, z2);
        return ssl_loss_barlow(ctx, in->z1, in->z2, c->barlow.lambda, c->barlow.scale, parts);
    case SSL_LOSS_VICREG:
        NEED("vicreg", in, z1);
        NEED("vicreg", in, z2);
        return ssl_loss_vicreg(ctx, in->z1, in->z2, &c->vicreg, parts);
    case SSL_LOSS_MAE:
        NEED("mae", in, pred);
        NEED("mae", in, target);
        if (in->mask)
            return ssl_loss_mae(ctx, in->pred, in->target, in->mask, c->mae.norm_pix_loss);
        if (!in->idx) {
            missing("mae", "mask' or 'idx");
            return NULL;
        }
        return ssl_loss_mae_idx(ctx, in->pred, in->target, in->idx, in->n_idx,
                                c->mae.norm_pix_loss);
    case SSL_LOSS_SIMMIM:
        NEED("simmim", in, pred);
        NEED("simmim", in, target);
        NEED("simmim", in, mask);
        return ssl_loss_simmim(ctx, in->pred, in->target, in->mask);
    case SSL_LOSS_IJEPA:
        NEED("ijepa", in, preds);
        NEED("ijepa", in, target);
        NEED("ijepa", in, block_idx);
        NEED("ijepa", in, block_len);
        return ssl_loss_ijepa(ctx, in->preds, in->target, in->block_idx, in->block_len,
                              in->n_blocks, c->ijepa.kind, c->ijepa.beta);
    case SSL_LOSS_CLIP:
    case SSL_LOSS_SIGLIP: {
        const char *L = c->type == SSL_LOSS_CLIP ? "clip" : "siglip";
        NEED(L, in, z1);
        NEED(L, in, z2);
        if (!l->logit_scale || (c->type == SSL_LOSS_SIGLIP && !l->logit_bias)) {
            ssl_set_error(SSL_ERR_STATE, "%s: loss not initialised (ssl_loss_init)", L);
            return NULL;
        }
        add_part(parts, "logit_scale", l->logit_scale->data[0]);
        if (c->type == SSL_LOSS_CLIP)
            return ssl_loss_clip(ctx, in->z1, in->z2, l->logit_scale, c->clip.max_logit_scale);
        add_part(parts, "logit_bias", l->logit_bias->data[0]);
        return ssl_loss_siglip(ctx, in->z1, in->z2, l->logit_scale, l->logit_bias);
    }
    default:
        ssl_set_error(SSL_ERR_INVALID, "ssl_loss_forward: unknown loss type %d", c->type);
        return NULL;
    }
}

int ssl_loss_after_step(ssl_loss_t *l, const ssl_loss_inputs_t *in)
{
    if (!l || !in)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_loss_after_step: NULL argument");
    const ssl_loss_cfg_t *c = &l->cfg;
    if (c->type == SSL_LOSS_INFONCE && c->infonce.form == SSL_INFONCE_MOCO_V2) {
        if (!in->t2)
            return ssl_set_error(SSL_ERR_INVALID, "infonce (moco_v2): input 't2' is missing");
        if (in->z2 && in->t1) { /* symmetrised: both views' keys */
            int st = ssl_queue_push(&l->queue, in->t1);
            if (st)
                return st;
        }
        return ssl_queue_push(&l->queue, in->t2);
    }
    if (c->type == SSL_LOSS_DINO) {
        if (!in->teacher)
            return ssl_set_error(SSL_ERR_INVALID, "dino: input 'teacher' is missing");
        return ssl_dino_center_update(l->center, in->teacher, c->dino.center_momentum);
    }
    if (c->type == SSL_LOSS_SWAV && c->swav.queue_length > 0) {
        const ssl_tensor_t *e = in->embeddings;
        if (!e)
            return ssl_set_error(SSL_ERR_INVALID, "swav: input 'embeddings' is missing");
        if (e->ndim != 2 || in->n_views < 1 || e->shape[0] % in->n_views)
            return ssl_set_error(SSL_ERR_SHAPE,
                                 "swav: embeddings must be (n_views * B, D) with n_views = %d",
                                 in->n_views);
        int64_t nb = e->shape[0] / in->n_views, d = e->shape[1];
        for (int a = 0; a < c->swav.n_assign; a++) {
            int v = c->swav.crops_for_assign[a];
            if (v >= in->n_views)
                return ssl_set_error(SSL_ERR_INVALID, "swav: assigned crop %d >= n_views %d", v,
                                     in->n_views);
            ssl_tensor_t view = *e; /* rows of view v */
            view.shape[0] = nb;
            view.numel = nb * d;
            view.data = e->data + (int64_t)v * nb * d;
            int st = ssl_queue_push(&l->swav_queue[a], &view);
            if (st)
                return st;
        }
    }
    return SSL_OK;
}

ssl_tensor_t *ssl_loss_sum(ssl_ctx_t *ctx, ssl_loss_t *losses, int n,
                           const ssl_loss_inputs_t *const *in, float *values)
{
    if (!ctx || !losses || !in || n < 1) {
        ssl_set_error(SSL_ERR_INVALID, "ssl_loss_sum: NULL argument or no loss");
        return NULL;
    }
    ssl_tensor_t *total = NULL;
    for (int i = 0; i < n; i++) {
        ssl_tensor_t *li = ssl_loss_forward(ctx, &losses[i], in[i], NULL);
        if (!li)
            return NULL;
        if (values)
            values[i] = li->data[0];
        ssl_tensor_t *w = ssl_scale(ctx, li, losses[i].cfg.weight, 0.0f);
        total = total ? ssl_add(ctx, total, w) : w;
    }
    return total;
}
