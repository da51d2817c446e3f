/* Loss configuration: type names, defaults (docs/losses.md; sources in
 * /work/shared/reference/hyperparameters.md) and the strict JSON reader. */
#include "loss_config.h"
#include "core/check.h"

#include <math.h>
#include <string.h>

static const char *const k_types[] = {
    "infonce", "byol",  "simsiam", "dino",   "swav",       "barlow",  "vicreg",        "mae",
    "simmim",  "ijepa", "clip",    "siglip", "directpred", "moco_v1", "deepclusterv2", "ibot",
    "koleo",   "data2vec", "maskfeat", "coca", "vae", "dcgan", "bigan", "ddpm", "vqvae",
    "beit",    "pixelcnn", NULL};
_Static_assert(sizeof k_types / sizeof k_types[0] == SSL_LOSS_TYPE_COUNT + 1,
               "loss type names and ssl_loss_type_t disagree");

const char *ssl_loss_type_name(int type)
{
    return SSL__BAD_RANGE(type, 0, SSL_LOSS_TYPE_COUNT - 1, __func__) ? NULL : k_types[type];
}

int ssl_loss_type_from_name(const char *name)
{
    if (SSL__IS_NULL(name, __func__))
        return SSL_ERR_INVALID;
    for (int i = 0; k_types[i]; i++)
        if (strcmp(k_types[i], name) == 0)
            return i;
    return ssl_set_error(SSL_ERR_INVALID, "%s: unknown loss type '%s'", __func__, name);
}

/* Defaults as doubles, so the resolved config shows 0.2 rather than 0.200000003. */
#define D_TEMPERATURE 0.2
#define D_MOCO_V1_TEMPERATURE 0.07
#define D_QUEUE 65536
#define D_DINO_STUDENT 0.1
#define D_DINO_TEACHER 0.07
#define D_DINO_WARMUP_TEACHER 0.04
#define D_DINO_WARMUP_EPOCHS 30
#define D_DINO_CENTER_M 0.9
#define D_SWAV_TEMP 0.1
#define D_SWAV_EPS 0.05
#define D_SWAV_ITERS 3
#define D_SWAV_QUEUE_START 15
#define D_BARLOW_LAMBDA 0.0051
#define D_BARLOW_SCALE 0.024
#define D_CLIP_MAX 4.605170185988092 /* log(100) */
#define D_DC_TEMP 0.1
#define D_DC_PROTOTYPES 3000
#define D_DC_ITERS 10
#define D_DP_RHO 0.3
#define D_DP_EPS 0.01
#define D_KOLEO_WEIGHT 0.1 /* dinov2's koleo_loss_weight */
#define D_D2V_TOP_K 6  /* data2vec_vision's ViT-B recipe: target_layers [6..11] of 12 blocks */
#define D_D2V_BETA 2.0 /* its l1_beta */
#define D_MF_BINS 9     /* MaskFeat's HOG: 9 orientation bins */
#define D_MF_CELL 2     /* cells of 2 pixels: 2 x 2 per 4-pixel patch, as 8 in MaskFeat's 16 */

static double clip_init(int type)
{
    return type == SSL_LOSS_SIGLIP ? 2.302585092994046 /* log 10 */
                                   : 2.659260036932778 /* log(1 / 0.07) */;
}

void ssl_loss_cfg_defaults(int type, ssl_loss_cfg_t *c)
{
    if (SSL__IS_NULL(c, __func__))
        return;
    memset(c, 0, sizeof *c);
    c->type = type;
    c->weight = type == SSL_LOSS_KOLEO ? (float)D_KOLEO_WEIGHT : 1.0f;
    c->infonce.form = SSL_INFONCE_NTXENT;
    c->infonce.temperature =
        (float)(type == SSL_LOSS_MOCO_V1 ? D_MOCO_V1_TEMPERATURE : D_TEMPERATURE);
    c->infonce.queue_size = D_QUEUE;
    c->dino.student_temp = (float)D_DINO_STUDENT;
    c->dino.teacher_temp = (float)D_DINO_TEACHER;
    c->dino.warmup_teacher_temp = (float)D_DINO_WARMUP_TEACHER;
    c->dino.warmup_teacher_temp_epochs = D_DINO_WARMUP_EPOCHS;
    c->dino.center_momentum = (float)D_DINO_CENTER_M;
    c->swav.temperature = (float)D_SWAV_TEMP;
    c->swav.epsilon = (float)D_SWAV_EPS;
    c->swav.sinkhorn_iterations = D_SWAV_ITERS;
    c->swav.crops_for_assign[0] = 0;
    c->swav.crops_for_assign[1] = 1;
    c->swav.n_assign = 2;
    c->swav.queue_length = 0;
    c->swav.epoch_queue_starts = D_SWAV_QUEUE_START;
    c->barlow.lambda = (float)D_BARLOW_LAMBDA;
    c->barlow.scale = (float)D_BARLOW_SCALE;
    c->vicreg = (ssl_vicreg_opts_t){25.0f, 25.0f, 1.0f, 1.0f, 1e-4f};
    c->mae.norm_pix_loss = 1;
    c->ijepa.kind = SSL_REGRESS_SMOOTH_L1;
    c->ijepa.beta = 1.0f;
    c->clip.init_logit_scale = (float)clip_init(type);
    c->clip.max_logit_scale = (float)D_CLIP_MAX;
    c->clip.init_logit_bias = -10.0f;
    c->clip.clip_weight = 1.0f;
    c->clip.caption_weight = 2.0f;
    c->directpred.rho = (float)D_DP_RHO;
    c->directpred.eps = (float)D_DP_EPS;
    c->deepclusterv2.temperature = (float)D_DC_TEMP;
    c->deepclusterv2.n_heads = 3;
    for (int h = 0; h < 3; h++)
        c->deepclusterv2.n_prototypes[h] = D_DC_PROTOTYPES;
    c->deepclusterv2.kmeans_iters = D_DC_ITERS;
    c->deepclusterv2.crops_for_assign[0] = 0;
    c->deepclusterv2.crops_for_assign[1] = 1;
    c->deepclusterv2.n_assign = 2;
    c->data2vec = (ssl_data2vec_opts_t){D_D2V_TOP_K, 0, 1, 1, SSL_REGRESS_SMOOTH_L1,
                                        (float)D_D2V_BETA};
    c->maskfeat.nbins = D_MF_BINS;
    c->maskfeat.cell = D_MF_CELL;
    c->vae.beta = 1.0f;
    c->ddpm.timesteps = 1000;
    c->ddpm.schedule = SSL_DDPM_LINEAR;
    c->ddpm.beta_start = 1e-4f;
    c->ddpm.beta_end = 0.02f;
    c->vqvae.beta = 0.25f;
}

/* A strictly positive float with an open lower bound at 0. */
static float pos(ssl_cfg_t *c, const char *key, double def, double hi)
{
    return ssl_cfg_float_ex(c, key, def, 0.0, hi, SSL_CFG_LO_OPEN);
}

static void read_infonce(ssl_cfg_t *c, ssl_loss_cfg_t *o)
{
    static const char *const keys[] = {"type", "weight", "temperature", "form", "queue_size", NULL};
    static const char *const forms[] = {"ntxent", "moco_v2", "moco_v3", NULL};
    ssl_cfg_keys(c, keys);
    o->infonce.temperature = pos(c, "temperature", D_TEMPERATURE, 100.0);
    o->infonce.form = ssl_cfg_enum(c, "form", forms, SSL_INFONCE_NTXENT);
    if (o->infonce.form == SSL_INFONCE_MOCO_V2)
        o->infonce.queue_size = ssl_cfg_i64(c, "queue_size", D_QUEUE, 1, 1 << 24);
    else if (ssl_cfg_has(c, "queue_size"))
        ssl_cfg_fail(c, "queue_size", "only used with \"form\": \"moco_v2\"");
}

/* dino, and ibot's patch term (the same keys and defaults, plus shared_head) */
static void read_dino(ssl_cfg_t *c, ssl_loss_cfg_t *o)
{
    static const char *const keys[] = {"type",
                                       "weight",
                                       "student_temp",
                                       "teacher_temp",
                                       "warmup_teacher_temp",
                                       "warmup_teacher_temp_epochs",
                                       "center_momentum",
                                       "centering",
                                       "shared_head",
                                       NULL};
    static const char *const centerings[] = {"center", "sinkhorn_knopp", NULL};
    ssl_cfg_keys(c, keys);
    if (o->type == SSL_LOSS_IBOT)
        o->ibot.shared_head = ssl_cfg_bool(c, "shared_head", 0);
    else if (ssl_cfg_has(c, "shared_head"))
        ssl_cfg_fail(c, "shared_head", "only used with \"type\": \"ibot\"");
    o->dino.student_temp = pos(c, "student_temp", D_DINO_STUDENT, 100.0);
    o->dino.teacher_temp = pos(c, "teacher_temp", D_DINO_TEACHER, 100.0);
    o->dino.warmup_teacher_temp = pos(c, "warmup_teacher_temp", D_DINO_WARMUP_TEACHER, 100.0);
    o->dino.warmup_teacher_temp_epochs =
        ssl_cfg_double(c, "warmup_teacher_temp_epochs", D_DINO_WARMUP_EPOCHS, 0.0, 1e6);
    o->centering = ssl_cfg_enum(c, "centering", centerings, SSL_CENTERING_CENTER);
    if (o->centering == SSL_CENTERING_CENTER)
        o->dino.center_momentum = ssl_cfg_float(c, "center_momentum", D_DINO_CENTER_M, 0.0, 1.0);
    else if (ssl_cfg_has(c, "center_momentum"))
        ssl_cfg_fail(c, "center_momentum", "only used with \"centering\": \"center\"");
}

/* A list of crop indices, each listed once (SwAV's and DeepCluster-v2's crops_for_assign). */
static int read_crops(ssl_cfg_t *c, int *out, int max_n)
{
    static const int def_assign[] = {0, 1};
    int n = ssl_cfg_ints(c, "crops_for_assign", out, 1, max_n, def_assign, 2, 0, 255);
    for (int i = 0; i < n && !ssl_cfg_status(c); i++)
        for (int j = 0; j < i; j++)
            if (out[i] == out[j])
                ssl_cfg_fail(c, "crops_for_assign", "crop %d is listed twice", out[i]);
    return n;
}

static void read_swav(ssl_cfg_t *c, ssl_loss_cfg_t *o)
{
    static const char *const keys[] = {"type",
                                       "weight",
                                       "temperature",
                                       "epsilon",
                                       "sinkhorn_iterations",
                                       "crops_for_assign",
                                       "queue_length",
                                       "epoch_queue_starts",
                                       NULL};
    ssl_cfg_keys(c, keys);
    o->swav.temperature = pos(c, "temperature", D_SWAV_TEMP, 100.0);
    o->swav.epsilon = pos(c, "epsilon", D_SWAV_EPS, 100.0);
    o->swav.sinkhorn_iterations = ssl_cfg_int(c, "sinkhorn_iterations", D_SWAV_ITERS, 0, 1000);
    o->swav.n_assign = read_crops(c, o->swav.crops_for_assign, SSL_SWAV_MAX_ASSIGN);
    o->swav.queue_length = ssl_cfg_i64(c, "queue_length", 0, 0, 1 << 24);
    o->swav.epoch_queue_starts =
        ssl_cfg_double(c, "epoch_queue_starts", D_SWAV_QUEUE_START, 0.0, 1e6);
}

static void read_deepclusterv2(ssl_cfg_t *c, ssl_loss_cfg_t *o)
{
    static const char *const keys[] = {
        "type", "weight", "temperature", "n_prototypes", "kmeans_iters", "crops_for_assign", NULL};
    static const int def_protos[] = {D_DC_PROTOTYPES, D_DC_PROTOTYPES, D_DC_PROTOTYPES};
    ssl_cfg_keys(c, keys);
    o->deepclusterv2.temperature = pos(c, "temperature", D_DC_TEMP, 100.0);
    o->deepclusterv2.n_heads = ssl_cfg_ints(c, "n_prototypes", o->deepclusterv2.n_prototypes, 1,
                                            SSL_DCV2_MAX_HEADS, def_protos, 3, 1, 1 << 20);
    o->deepclusterv2.kmeans_iters = ssl_cfg_int(c, "kmeans_iters", D_DC_ITERS, 0, 1000);
    o->deepclusterv2.n_assign =
        read_crops(c, o->deepclusterv2.crops_for_assign, SSL_DCV2_MAX_HEADS);
}

static void read_vicreg(ssl_cfg_t *c, ssl_loss_cfg_t *o)
{
    static const char *const keys[] = {"type",      "weight", "sim_coeff", "std_coeff",
                                       "cov_coeff", "gamma",  "eps",       NULL};
    ssl_cfg_keys(c, keys);
    ssl_vicreg_opts_t *v = &o->vicreg;
    v->sim_coeff = ssl_cfg_float(c, "sim_coeff", 25.0, 0.0, 1e6);
    v->std_coeff = ssl_cfg_float(c, "std_coeff", 25.0, 0.0, 1e6);
    v->cov_coeff = ssl_cfg_float(c, "cov_coeff", 1.0, 0.0, 1e6);
    v->gamma = ssl_cfg_float(c, "gamma", 1.0, 0.0, 1e6);
    v->eps = pos(c, "eps", 1e-4, 1.0);
}

/* "criterion" (smooth_l1 | mse) and smooth L1's "beta" (I-JEPA, data2vec). */
static void read_regress(ssl_cfg_t *c, int *kind, float *beta, double def_beta)
{
    static const char *const kinds[] = {"smooth_l1", "mse", NULL};
    *kind = ssl_cfg_enum(c, "criterion", kinds, SSL_REGRESS_SMOOTH_L1);
    if (*kind == SSL_REGRESS_SMOOTH_L1)
        *beta = ssl_cfg_float(c, "beta", def_beta, 0.0, 1e6);
    else if (ssl_cfg_has(c, "beta"))
        ssl_cfg_fail(c, "beta", "only used with \"criterion\": \"smooth_l1\"");
}

static void read_ijepa(ssl_cfg_t *c, ssl_loss_cfg_t *o)
{
    static const char *const keys[] = {"type", "weight", "criterion", "beta", NULL};
    ssl_cfg_keys(c, keys);
    read_regress(c, &o->ijepa.kind, &o->ijepa.beta, 1.0);
}

/* top_k is checked against the encoder's depth when the method is built (src/methods). */
static void read_data2vec(ssl_cfg_t *c, ssl_loss_cfg_t *o)
{
    static const char *const keys[] = {"type",       "weight",     "top_k",
                                       "layer_norm", "instance_norm", "final_norm",
                                       "criterion",  "beta",       NULL};
    ssl_cfg_keys(c, keys);
    ssl_data2vec_opts_t *d = &o->data2vec;
    d->top_k = ssl_cfg_int(c, "top_k", D_D2V_TOP_K, 1, 64);
    d->instance_norm = ssl_cfg_bool(c, "instance_norm", 0);
    d->layer_norm = ssl_cfg_bool(c, "layer_norm", 1);
    d->final_norm = ssl_cfg_bool(c, "final_norm", 1);
    read_regress(c, &d->kind, &d->beta, D_D2V_BETA);
}

static void read_clip(ssl_cfg_t *c, ssl_loss_cfg_t *o)
{
    static const char *const clip_keys[] = {"type", "weight", "init_logit_scale", "max_logit_scale",
                                            NULL};
    static const char *const siglip_keys[] = {"type", "weight", "init_logit_scale",
                                              "init_logit_bias", NULL};
    static const char *const coca_keys[] = {"type",           "weight",      "init_logit_scale",
                                            "max_logit_scale", "clip_weight", "caption_weight",
                                            NULL};
    int sig = o->type == SSL_LOSS_SIGLIP;
    ssl_cfg_keys(c, sig ? siglip_keys : o->type == SSL_LOSS_COCA ? coca_keys : clip_keys);
    if (o->type == SSL_LOSS_COCA) {
        o->clip.clip_weight = ssl_cfg_float(c, "clip_weight", 1.0, 0.0, 1e6);
        o->clip.caption_weight = ssl_cfg_float(c, "caption_weight", 2.0, 0.0, 1e6);
    }
    o->clip.init_logit_scale =
        ssl_cfg_float(c, "init_logit_scale", clip_init(o->type), -20.0, 20.0);
    if (sig) {
        o->clip.init_logit_bias = ssl_cfg_float(c, "init_logit_bias", -10.0, -1e3, 1e3);
    } else {
        o->clip.max_logit_scale = ssl_cfg_float(c, "max_logit_scale", D_CLIP_MAX, 0.0, 20.0);
        if (!ssl_cfg_status(c) && o->clip.init_logit_scale > o->clip.max_logit_scale)
            ssl_cfg_fail(c, "init_logit_scale", "%g is above max_logit_scale %g",
                         (double)o->clip.init_logit_scale, (double)o->clip.max_logit_scale);
    }
}

int ssl__loss_cfg_read(ssl_cfg_t *c, ssl_loss_cfg_t *out)
{
    ssl_cfg_require(c, "type");
    int type = ssl_cfg_enum(c, "type", k_types, 0);
    if (ssl_cfg_status(c))
        return ssl_cfg_status(c);
    ssl_loss_cfg_t o;
    ssl_loss_cfg_defaults(type, &o);
    o.weight = ssl_cfg_float(c, "weight", type == SSL_LOSS_KOLEO ? D_KOLEO_WEIGHT : 1.0, 0.0, 1e6);
    static const char *const plain[] = {"type", "weight", NULL};
    switch (type) {
    case SSL_LOSS_INFONCE:
        read_infonce(c, &o);
        break;
    case SSL_LOSS_DINO:
    case SSL_LOSS_IBOT:
        read_dino(c, &o);
        break;
    case SSL_LOSS_SWAV:
        read_swav(c, &o);
        break;
    case SSL_LOSS_BARLOW: {
        static const char *const keys[] = {"type", "weight", "lambda", "scale", NULL};
        ssl_cfg_keys(c, keys);
        o.barlow.lambda = ssl_cfg_float(c, "lambda", D_BARLOW_LAMBDA, 0.0, 1e3);
        o.barlow.scale = pos(c, "scale", D_BARLOW_SCALE, 1e6);
        break;
    }
    case SSL_LOSS_VICREG:
        read_vicreg(c, &o);
        break;
    case SSL_LOSS_MAE: {
        static const char *const keys[] = {"type", "weight", "norm_pix_loss", NULL};
        ssl_cfg_keys(c, keys);
        o.mae.norm_pix_loss = ssl_cfg_bool(c, "norm_pix_loss", 1);
        break;
    }
    case SSL_LOSS_IJEPA:
        read_ijepa(c, &o);
        break;
    case SSL_LOSS_CLIP:
    case SSL_LOSS_SIGLIP:
    case SSL_LOSS_COCA:
        read_clip(c, &o);
        break;
    case SSL_LOSS_DIRECTPRED: {
        static const char *const keys[] = {"type", "weight", "rho", "eps", NULL};
        ssl_cfg_keys(c, keys);
        o.directpred.rho = ssl_cfg_float_ex(c, "rho", D_DP_RHO, 0.0, 1.0, SSL_CFG_HI_OPEN);
        o.directpred.eps = ssl_cfg_float(c, "eps", D_DP_EPS, -1.0, 1.0);
        break;
    }
    case SSL_LOSS_DEEPCLUSTERV2:
        read_deepclusterv2(c, &o);
        break;
    case SSL_LOSS_DATA2VEC:
        read_data2vec(c, &o);
        break;
    case SSL_LOSS_MASKFEAT: { /* cell is checked against the ViT's patch size (src/methods) */
        static const char *const keys[] = {"type", "weight", "nbins", "cell", NULL};
        ssl_cfg_keys(c, keys);
        o.maskfeat.nbins = ssl_cfg_int(c, "nbins", D_MF_BINS, 1, 360);
        o.maskfeat.cell = ssl_cfg_int(c, "cell", D_MF_CELL, 1, 256);
        break;
    }
    case SSL_LOSS_DDPM: {
        static const char *const keys[] = {"type",       "weight",   "timesteps",
                                           "schedule",   "beta_start", "beta_end", NULL};
        static const char *const scheds[] = {"linear", "cosine", NULL};
        ssl_cfg_keys(c, keys);
        o.ddpm.timesteps = ssl_cfg_int(c, "timesteps", 1000, 2, 100000);
        o.ddpm.schedule = ssl_cfg_enum(c, "schedule", scheds, SSL_DDPM_LINEAR);
        if (o.ddpm.schedule == SSL_DDPM_COSINE) { /* its betas follow from its alpha-bar */
            if (ssl_cfg_has(c, "beta_start") || ssl_cfg_has(c, "beta_end"))
                ssl_cfg_fail(c, ssl_cfg_has(c, "beta_start") ? "beta_start" : "beta_end",
                             "the cosine schedule has no betas to set (they follow from its "
                             "alpha-bar)");
            break;
        }
        o.ddpm.beta_start = ssl_cfg_float_ex(c, "beta_start", 1e-4, 0.0, 1.0, SSL_CFG_LO_OPEN);
        o.ddpm.beta_end = ssl_cfg_float_ex(c, "beta_end", 0.02, 0.0, 1.0, SSL_CFG_HI_OPEN);
        if (!ssl_cfg_status(c) && o.ddpm.beta_end < o.ddpm.beta_start)
            ssl_cfg_fail(c, "beta_end", "%g is below beta_start %g", (double)o.ddpm.beta_end,
                         (double)o.ddpm.beta_start);
        break;
    }
    case SSL_LOSS_VAE: {
        static const char *const keys[] = {"type", "weight", "beta", NULL};
        ssl_cfg_keys(c, keys);
        o.vae.beta = ssl_cfg_float(c, "beta", 1.0, 0.0, 1e6);
        break;
    }
    case SSL_LOSS_VQVAE: {
        static const char *const keys[] = {"type", "weight", "beta", NULL};
        ssl_cfg_keys(c, keys);
        o.vqvae.beta = ssl_cfg_float(c, "beta", 0.25, 0.0, 1e6);
        break;
    }
    case SSL_LOSS_MOCO_V1: {
        static const char *const keys[] = {"type", "weight", "temperature", "queue_size", NULL};
        ssl_cfg_keys(c, keys);
        o.infonce.temperature = pos(c, "temperature", D_MOCO_V1_TEMPERATURE, 100.0);
        o.infonce.queue_size = ssl_cfg_i64(c, "queue_size", D_QUEUE, 1, 1 << 24);
        break;
    }
    default: /* byol, simsiam, simmim, koleo, beit, pixelcnn: no parameters */
        ssl_cfg_keys(c, plain);
        break;
    }
    if (!ssl_cfg_status(c))
        *out = o;
    return ssl_cfg_status(c);
}

int ssl__loss_cfgs_read(ssl_cfg_t *parent, const char *key, ssl_loss_cfg_t *out, int max_n, int *n)
{
    *n = 0;
    if (ssl_cfg_require(parent, key))
        return ssl_cfg_status(parent);
    cJSON *item = ssl_cfg_get(parent, key);
    if (cJSON_IsObject(item)) {
        if (max_n < 1)
            return ssl_cfg_fail(parent, key, "no room for a loss");
        ssl_cfg_t c = ssl_cfg_obj(parent, key);
        if (ssl__loss_cfg_read(&c, &out[0]) == 0)
            *n = 1;
        return ssl_cfg_status(parent);
    }
    int len = ssl_cfg_len(parent, key);
    if (ssl_cfg_status(parent))
        return ssl_cfg_status(parent);
    if (len < 1 || len > max_n)
        return ssl_cfg_fail(parent, key, "needs 1 to %d losses, got %d", max_n, len);
    for (int i = 0; i < len; i++) {
        ssl_cfg_t c = ssl_cfg_at(parent, key, i);
        if (ssl__loss_cfg_read(&c, &out[i]))
            return ssl_cfg_status(parent);
    }
    *n = len;
    return SSL_OK;
}

int ssl_loss_cfg_from_json(const char *json, size_t len, const char *source, ssl_loss_cfg_t *cfg)
{
    cJSON *doc = ssl_json_parse(json, len, source);
    if (!doc)
        return ssl_last_status();
    int err = 0;
    ssl_cfg_t c = ssl_cfg_root(doc, source, &err, 0);
    int st = ssl__loss_cfg_read(&c, cfg);
    cJSON_Delete(doc);
    return st;
}
