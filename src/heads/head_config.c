/* Head presets (the reference implementations' defaults) and the strict JSON reader over them. */
#include "head_config.h"
#include "core/check.h"

#include <stdio.h>
#include <string.h>

/* Projector / predictor MLPs as the reference code builds them:
 * SimCLR (solo-learn): Linear-BN-ReLU-Linear, biases.   MoCo v2: Linear-ReLU-Linear, biases.
 * MoCo v1 (main_moco.py without --mlp): the encoder's fc, one biased Linear to 128.
 * MoCo v3 (_build_mlp): bias-free linears, BN-ReLU between, projector ends in BN(affine=False).
 * BYOL: Linear-BN-ReLU-Linear, biases.   SimSiam: bias-free hidden linears, projector ends in
 * BN(affine=False), predictor 512-wide bottleneck with a biased last linear.
 * VICReg: biased hidden linears, bias-free last.   Barlow Twins: bias-free linears.
 * SwAV (src/resnet50.py projection_head): Linear-BN-ReLU-Linear, biases, 2048 -> feat_dim 128. */
typedef struct mlp_preset {
    const char *name;
    int layers;
    int64_t hidden, out;
    int norm, act, last_norm, last_norm_affine, bias, no_last_bias, is_predictor;
} mlp_preset_t;

static const mlp_preset_t k_mlp[] = {
    {"mlp", 2, 2048, 256, SSL_NORM_BN, SSL_ACT_RELU, SSL_NORM_NONE, 1, 1, 0, 0},
    {"simclr_projector", 2, 2048, 256, SSL_NORM_BN, SSL_ACT_RELU, SSL_NORM_NONE, 1, 1, 0, 0},
    {"mocov1_projector", 1, 2048, 128, SSL_NORM_NONE, SSL_ACT_NONE, SSL_NORM_NONE, 1, 1, 0, 0},
    {"mocov2_projector", 2, 2048, 128, SSL_NORM_NONE, SSL_ACT_RELU, SSL_NORM_NONE, 1, 1, 0, 0},
    {"mocov3_projector", 2, 4096, 256, SSL_NORM_BN, SSL_ACT_RELU, SSL_NORM_BN, 0, 0, 1, 0},
    {"mocov3_predictor", 2, 4096, 256, SSL_NORM_BN, SSL_ACT_RELU, SSL_NORM_NONE, 1, 0, 1, 1},
    {"byol_projector", 2, 4096, 256, SSL_NORM_BN, SSL_ACT_RELU, SSL_NORM_NONE, 1, 1, 0, 0},
    {"byol_predictor", 2, 4096, 256, SSL_NORM_BN, SSL_ACT_RELU, SSL_NORM_NONE, 1, 1, 0, 1},
    {"simsiam_projector", 3, 2048, 2048, SSL_NORM_BN, SSL_ACT_RELU, SSL_NORM_BN, 0, 0, 0, 0},
    {"simsiam_predictor", 2, 512, 2048, SSL_NORM_BN, SSL_ACT_RELU, SSL_NORM_NONE, 1, 0, 0, 1},
    {"vicreg_projector", 3, 2048, 2048, SSL_NORM_BN, SSL_ACT_RELU, SSL_NORM_NONE, 1, 1, 1, 0},
    {"barlow_projector", 3, 2048, 2048, SSL_NORM_BN, SSL_ACT_RELU, SSL_NORM_NONE, 1, 0, 1, 0},
    {"swav_projector", 2, 2048, 128, SSL_NORM_BN, SSL_ACT_RELU, SSL_NORM_NONE, 1, 1, 0, 0},
};
#define N_MLP ((int)(sizeof k_mlp / sizeof k_mlp[0]))

static const struct {
    const char *name;
    int kind;
} k_other[] = {
    {"dino", SSL_HEAD_DINO},
    {"swav_prototypes", SSL_HEAD_SWAV},
    {"mae_decoder", SSL_HEAD_MAE_DECODER},
    {"ijepa_predictor", SSL_HEAD_JEPA_PREDICTOR},
    {"clip_text", SSL_HEAD_CLIP_TEXT},
    {"clip_image_proj", SSL_HEAD_CLIP_PROJ},
    {"coca_decoder", SSL_HEAD_COCA_DECODER},
};
#define N_OTHER ((int)(sizeof k_other / sizeof k_other[0]))

static const char *const k_norms[] = {"none", "bn", "ln", NULL};
static const char *const k_acts[] = {"none", "relu", "gelu", "gelu_tanh", NULL};

int ssl_head_preset(const char *kind, ssl_head_cfg_t *cfg)
{
    if (SSL__IS_NULL(kind, __func__) || SSL__IS_NULL(cfg, __func__))
        return SSL_ERR_INVALID;
    memset(cfg, 0, sizeof *cfg);
    const char *names[N_MLP + N_OTHER];
    for (int i = 0; i < N_MLP; i++) {
        names[i] = k_mlp[i].name;
        if (kind && !strcmp(kind, k_mlp[i].name)) {
            const mlp_preset_t *m = &k_mlp[i];
            cfg->kind = SSL_HEAD_MLP;
            cfg->is_predictor = m->is_predictor;
            cfg->mlp = (ssl_mlp_cfg_t){m->layers,      0,
                                       m->hidden,      m->out,
                                       m->norm,        m->act,
                                       m->last_norm,   m->last_norm_affine,
                                       m->bias,        SSL_INIT_TORCH_DEFAULT,
                                       m->no_last_bias};
            snprintf(cfg->name, sizeof cfg->name, "%s", kind);
            return SSL_OK;
        }
    }
    for (int i = 0; i < N_OTHER; i++) {
        names[N_MLP + i] = k_other[i].name;
        if (!kind || strcmp(kind, k_other[i].name))
            continue;
        cfg->kind = k_other[i].kind;
        snprintf(cfg->name, sizeof cfg->name, "%s", kind);
        cfg->dino = (ssl_dino_head_cfg_t){0, 3, 2048, 256, 65536, 0, 1, 1};
        cfg->swav = (ssl_swav_cfg_t){0, 3000, 313};
        cfg->mae = (ssl_mae_decoder_cfg_t){0, 0, 0, 0, 0, 0, 512, 8, 16, 4.0};
        cfg->jepa = (ssl_jepa_predictor_cfg_t){0, 0, 0, 384, 12, 12, 4.0};
        cfg->text = (ssl_text_cfg_t){
            0, 77, 512, 12, 8, 4.0, 512, 1, SSL_TEXT_POOL_EOS, SSL_TOK_WORDS, 1, 0};
        cfg->clip_proj.embed_dim = 512;
        cfg->coca = (ssl_coca_decoder_cfg_t){0, 0, 12, 8, 4.0, 256, 8};
        return SSL_OK;
    }
    const char *near = kind ? ssl_nearest(kind, names, N_MLP + N_OTHER) : NULL;
    return ssl_set_error(SSL_ERR_CONFIG, "unknown head kind '%s'%s%s%s", kind ? kind : "(null)",
                         near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
}

static void read_mlp(ssl_cfg_t *c, ssl_mlp_cfg_t *m)
{
    static const char *const keys[] = {"type", "layers",     "hidden_dim", "out_dim",          "norm",
                                       "activation", "last_norm",  "last_norm_affine", "bias",
                                       "last_bias",  NULL};
    ssl_cfg_keys(c, keys);
    m->layers = ssl_cfg_int(c, "layers", m->layers, 1, SSL_MLP_MAX_LAYERS);
    m->hidden = ssl_cfg_i64(c, "hidden_dim", m->hidden, 1, 1 << 20);
    m->out = ssl_cfg_i64(c, "out_dim", m->out, 1, 1 << 20);
    m->norm = ssl_cfg_enum(c, "norm", k_norms, m->norm);
    m->act = ssl_cfg_enum(c, "activation", k_acts, m->act);
    m->last_norm = ssl_cfg_enum(c, "last_norm", k_norms, m->last_norm);
    m->last_norm_affine = ssl_cfg_bool(c, "last_norm_affine", m->last_norm_affine);
    m->bias = ssl_cfg_bool(c, "bias", m->bias);
    m->no_last_bias = !ssl_cfg_bool(c, "last_bias", !m->no_last_bias);
}

static void read_dino(ssl_cfg_t *c, ssl_dino_head_cfg_t *d)
{
    static const char *const keys[] = {"type", "layers", "hidden_dim",      "bottleneck_dim",    "out_dim",
                                       "use_bn", "norm_last_layer", "freeze_last_layer", NULL};
    ssl_cfg_keys(c, keys);
    d->layers = ssl_cfg_int(c, "layers", d->layers, 1, SSL_MLP_MAX_LAYERS);
    d->hidden_dim = ssl_cfg_i64(c, "hidden_dim", d->hidden_dim, 1, 1 << 20);
    d->bottleneck_dim = ssl_cfg_i64(c, "bottleneck_dim", d->bottleneck_dim, 1, 1 << 20);
    d->out_dim = ssl_cfg_i64(c, "out_dim", d->out_dim, 1, 1 << 24);
    d->use_bn = ssl_cfg_bool(c, "use_bn", d->use_bn);
    d->norm_last_layer = ssl_cfg_bool(c, "norm_last_layer", d->norm_last_layer);
    d->freeze_last_layer = ssl_cfg_int(c, "freeze_last_layer", d->freeze_last_layer, 0, 1 << 20);
}

static void read_swav(ssl_cfg_t *c, ssl_swav_cfg_t *s)
{
    static const char *const keys[] = {"type", "n_prototypes", "freeze_iters", NULL};
    ssl_cfg_keys(c, keys);
    s->n_prototypes = ssl_cfg_i64(c, "n_prototypes", s->n_prototypes, 1, 1 << 24);
    s->freeze_iters = ssl_cfg_int(c, "freeze_iters", s->freeze_iters, 0, 1 << 30);
}

/* dim / depth / heads / mlp_ratio of a narrow transformer (MAE decoder, I-JEPA predictor). */
static void read_transformer(ssl_cfg_t *c, int *dim, int *depth, int *heads, double *mlp_ratio)
{
    static const char *const keys[] = {"type", "dim", "depth", "heads", "mlp_ratio", NULL};
    ssl_cfg_keys(c, keys);
    *dim = ssl_cfg_int(c, "dim", *dim, 4, 16384);
    *depth = ssl_cfg_int(c, "depth", *depth, 0, SSL_HEAD_MAX_DEPTH);
    *heads = ssl_cfg_int(c, "heads", *heads, 1, 256);
    *mlp_ratio = ssl_cfg_double(c, "mlp_ratio", *mlp_ratio, 0.125, 16.0);
    if (ssl_cfg_status(c))
        return;
    if (*dim % 4)
        ssl_cfg_fail(c, "dim", "%d is not a multiple of 4 (fixed sin-cos positions)", *dim);
    else if (*dim % *heads)
        ssl_cfg_fail(c, "heads", "%d does not divide dim %d", *heads, *dim);
}

static void read_text(ssl_cfg_t *c, ssl_text_cfg_t *t)
{
    static const char *const keys[] = {"type", "context_length", "width",     "layers",    "heads",
                                       "mlp_ratio",      "embed_dim", "causal",    "pool",
                                       "tokenizer",      "min_count", "max_words", NULL};
    static const char *const pools[] = {"eos", "mean", NULL};
    static const char *const toks[] = {"words", "bytes", NULL};
    ssl_cfg_keys(c, keys);
    t->context_length = ssl_cfg_int(c, "context_length", t->context_length, 2, 4096);
    t->width = ssl_cfg_int(c, "width", t->width, 1, 16384);
    t->layers = ssl_cfg_int(c, "layers", t->layers, 0, SSL_HEAD_MAX_DEPTH);
    t->heads = ssl_cfg_int(c, "heads", t->heads, 1, 256);
    t->mlp_ratio = ssl_cfg_double(c, "mlp_ratio", t->mlp_ratio, 0.125, 16.0);
    t->embed_dim = ssl_cfg_i64(c, "embed_dim", t->embed_dim, 1, 1 << 20);
    t->causal = ssl_cfg_bool(c, "causal", t->causal);
    t->pool = ssl_cfg_enum(c, "pool", pools, t->pool);
    t->tokenizer = ssl_cfg_enum(c, "tokenizer", toks, t->tokenizer);
    t->min_count = ssl_cfg_int(c, "min_count", t->min_count, 1, 1 << 30);
    t->max_words = ssl_cfg_i64(c, "max_words", t->max_words, 0, 1 << 24);
    if (!ssl_cfg_status(c) && t->width % t->heads)
        ssl_cfg_fail(c, "heads", "%d does not divide width %d", t->heads, t->width);
}

int ssl__head_cfg_read(ssl_cfg_t *c, const char *kind, ssl_head_cfg_t *cfg)
{
    if (ssl_cfg_status(c))
        return ssl_cfg_status(c);
    /* a "type" key in the section picks another preset than the caller's default */
    char chosen[64];
    snprintf(chosen, sizeof chosen, "%s", ssl_cfg_str(c, "type", kind));
    if (ssl_cfg_status(c))
        return ssl_cfg_status(c);
    kind = chosen;
    if (ssl_head_preset(kind, cfg) != SSL_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", ssl_last_error());
        return ssl_cfg_fail(c, ssl_cfg_has(c, "type") ? "type" : NULL, "%s", msg);
    }
    switch (cfg->kind) {
    case SSL_HEAD_MLP:
        read_mlp(c, &cfg->mlp);
        break;
    case SSL_HEAD_DINO:
        read_dino(c, &cfg->dino);
        break;
    case SSL_HEAD_SWAV:
        read_swav(c, &cfg->swav);
        break;
    case SSL_HEAD_MAE_DECODER:
        read_transformer(c, &cfg->mae.dim, &cfg->mae.depth, &cfg->mae.heads, &cfg->mae.mlp_ratio);
        break;
    case SSL_HEAD_JEPA_PREDICTOR:
        read_transformer(c, &cfg->jepa.dim, &cfg->jepa.depth, &cfg->jepa.heads,
                         &cfg->jepa.mlp_ratio);
        break;
    case SSL_HEAD_CLIP_TEXT:
        read_text(c, &cfg->text);
        break;
    case SSL_HEAD_COCA_DECODER: {
        static const char *const keys[] = {"type",      "layers",       "heads", "mlp_ratio",
                                           "n_queries", "pooler_heads", NULL};
        ssl_coca_decoder_cfg_t *d = &cfg->coca;
        ssl_cfg_keys(c, keys);
        d->layers = ssl_cfg_int(c, "layers", d->layers, 1, SSL_HEAD_MAX_DEPTH);
        d->heads = ssl_cfg_int(c, "heads", d->heads, 1, 256);
        d->mlp_ratio = ssl_cfg_double(c, "mlp_ratio", d->mlp_ratio, 0.125, 16.0);
        d->n_queries = ssl_cfg_int(c, "n_queries", d->n_queries, 2, 4096);
        d->pooler_heads = ssl_cfg_int(c, "pooler_heads", d->pooler_heads, 1, 256);
        break;
    }
    case SSL_HEAD_CLIP_PROJ: {
        static const char *const keys[] = {"type", "embed_dim", NULL};
        ssl_cfg_keys(c, keys);
        cfg->clip_proj.embed_dim =
            ssl_cfg_i64(c, "embed_dim", cfg->clip_proj.embed_dim, 1, 1 << 20);
        break;
    }
    default:
        break;
    }
    return ssl_cfg_status(c);
}

int ssl_head_cfg_from_json(const char *json, size_t len, const char *source, const char *kind,
                           ssl_head_cfg_t *cfg)
{
    cJSON *doc = ssl_json_parse(json, len, source);
    if (!doc)
        return ssl_last_status();
    int err = 0;
    ssl_cfg_t c = ssl_cfg_root(doc, source, &err, 0);
    int st = ssl__head_cfg_read(&c, kind, cfg);
    cJSON_Delete(doc);
    return st;
}

int ssl_head_cfg_fit_encoder(ssl_head_cfg_t *cfg, const ssl_encoder_t *e)
{
    if (SSL__IS_NULL(cfg, __func__) || SSL__IS_NULL(e, __func__))
        return SSL_ERR_INVALID;
    const ssl_encoder_cfg_t *ec = ssl_encoder_config(e);
    int64_t dim = ssl_encoder_dim(e);
    switch (cfg->kind) {
    case SSL_HEAD_MLP:
        if (!cfg->is_predictor)
            cfg->mlp.in = dim;
        return SSL_OK;
    case SSL_HEAD_DINO:
        cfg->dino.in_dim = dim;
        return SSL_OK;
    case SSL_HEAD_CLIP_PROJ:
        cfg->clip_proj.in_dim = dim;
        return SSL_OK;
    case SSL_HEAD_MAE_DECODER:
    case SSL_HEAD_JEPA_PREDICTOR: {
        if (ec->kind != SSL_ENC_VIT)
            return ssl_set_error(SSL_ERR_CONFIG, "%s: needs a ViT encoder (patch tokens)",
                                 cfg->name);
        const ssl_vit_cfg_t *v = &ec->vit;
        int64_t g = v->image_size / v->patch_size;
        if (cfg->kind == SSL_HEAD_MAE_DECODER) {
            ssl_mae_decoder_cfg_t *m = &cfg->mae;
            m->in_dim = v->dim;
            m->grid_h = m->grid_w = g;
            m->patch_size = v->patch_size;
            m->in_chans = v->in_channels;
            m->cls_token = v->cls_token;
        } else {
            cfg->jepa.in_dim = v->dim;
            cfg->jepa.grid_h = cfg->jepa.grid_w = g;
        }
        return SSL_OK;
    }
    default:
        return SSL_OK; /* SwAV and the text tower take nothing from the image encoder */
    }
}
