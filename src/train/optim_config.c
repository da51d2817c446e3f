/* The "optim" and "target" config sections (keys and defaults: docs/optim.md). */
#include "optim_config.h"

#include <math.h>

static const char *const k_names[] = {"sgd", "lars", "adamw", NULL};

#define COMMON_KEYS                                                                                \
    "name", "lr", "base_lr", "schedule", "warmup_epochs", "warmup_start_lr", "min_lr",             \
        "weight_decay", "weight_decay_end", "exclude_bias_and_norm", "fix_predictor_lr",           \
        "clip_grad", "clip_grad_per_param"

static const char *const k_sgd_keys[] = {COMMON_KEYS, "momentum", "nesterov", NULL};
static const char *const k_lars_keys[] = {COMMON_KEYS, "momentum",     "nesterov",
                                          "lars_eta",  "lars_clip_lr", NULL};
static const char *const k_adamw_keys[] = {COMMON_KEYS, "betas", "eps", NULL};

/* Keys of one optimizer given to another get a message naming the optimizers they belong to. */
static void check_kind_keys(ssl_cfg_t *c, int kind)
{
    static const struct {
        const char *key;
        const char *owners;
        int mask; /* 1 << ssl_optim_kind_t */
    } own[] = {{"momentum", "sgd and lars", 3}, {"nesterov", "sgd and lars", 3},
               {"lars_eta", "lars", 2},         {"lars_clip_lr", "lars", 2},
               {"betas", "adamw", 4},           {"eps", "adamw", 4}};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!(own[i].mask & (1 << kind)) && ssl_cfg_get(c, own[i].key))
            ssl_cfg_fail(c, own[i].key, "is an option of %s, not of %s", own[i].owners,
                         k_names[kind]);
}

/* betas as doubles (a float round trip would move 0.95 by 1e-8 and the bias correction with it) */
static void read_betas(ssl_cfg_t *c, ssl_optim_cfg_t *out)
{
    const double def[2] = {out->beta1, out->beta2};
    float f[2];
    if (ssl_cfg_floats(c, "betas", f, 2, 2, def, 2, 0.0, 1.0) != 2 || ssl_cfg_status(c))
        return;
    cJSON *item = ssl_cfg_get(c, "betas");
    if (item && cJSON_IsArray(item)) {
        out->beta1 = cJSON_GetArrayItem(item, 0)->valuedouble;
        out->beta2 = cJSON_GetArrayItem(item, 1)->valuedouble;
    }
    if (!(out->beta1 < 1.0 && out->beta2 < 1.0))
        ssl_cfg_fail(c, "betas", "[%g, %g]: each beta must be in [0, 1)", out->beta1, out->beta2);
}

int ssl__optim_cfg_read(ssl_cfg_t *c, int default_kind, ssl_optim_cfg_t *out)
{
    static const char *const scheds[] = {"warmup_cosine", "constant", NULL};
    if (default_kind < 0)
        ssl_cfg_require(c, "name");
    int kind = ssl_cfg_enum(c, "name", k_names, default_kind < 0 ? 0 : default_kind);
    if (ssl_cfg_status(c))
        return ssl_cfg_status(c);
    ssl_optim_cfg_default(kind, out);
    check_kind_keys(c, kind);
    ssl_cfg_keys(c, kind == SSL_OPTIM_SGD    ? k_sgd_keys
                    : kind == SSL_OPTIM_LARS ? k_lars_keys
                                             : k_adamw_keys);
    if (ssl_cfg_has(c, "lr") && ssl_cfg_has(c, "base_lr"))
        ssl_cfg_fail(c, "base_lr",
                     "give either lr (absolute) or base_lr (scaled by batch_size / 256), not both");
    if (ssl_cfg_has(c, "lr")) {
        out->lr = ssl_cfg_double_ex(c, "lr", out->lr, 0.0, 100.0, SSL_CFG_LO_OPEN);
        out->lr_scaled = 0;
    } else {
        out->lr = ssl_cfg_double_ex(c, "base_lr", out->lr, 0.0, 100.0, SSL_CFG_LO_OPEN);
        out->lr_scaled = 1;
    }
    out->schedule =
        ssl_cfg_enum(c, "schedule", scheds, 0) == 1 ? SSL_SCHED_CONSTANT : SSL_SCHED_WARMUP_COSINE;
    out->warmup_epochs = ssl_cfg_double(c, "warmup_epochs", out->warmup_epochs, 0.0, 1e6);
    out->warmup_start_lr = ssl_cfg_double(c, "warmup_start_lr", out->warmup_start_lr, 0.0, 100.0);
    out->min_lr = ssl_cfg_double(c, "min_lr", out->min_lr, 0.0, 100.0);
    out->weight_decay = ssl_cfg_double(c, "weight_decay", out->weight_decay, 0.0, 10.0);
    if (ssl_cfg_has(c, "weight_decay_end")) /* absent: constant weight decay */
        out->weight_decay_end = ssl_cfg_double(c, "weight_decay_end", 0.0, 0.0, 10.0);
    out->exclude_bias_and_norm =
        ssl_cfg_bool(c, "exclude_bias_and_norm", out->exclude_bias_and_norm);
    out->fix_predictor_lr = ssl_cfg_bool(c, "fix_predictor_lr", out->fix_predictor_lr);
    out->clip_grad = ssl_cfg_double(c, "clip_grad", 0.0, 0.0, 1e6);
    out->clip_grad_per_param = ssl_cfg_double(c, "clip_grad_per_param", 0.0, 0.0, 1e6);
    if (out->clip_grad > 0 && out->clip_grad_per_param > 0)
        ssl_cfg_fail(c, "clip_grad_per_param", "use clip_grad or clip_grad_per_param, not both");
    if (kind != SSL_OPTIM_ADAMW) {
        out->momentum = ssl_cfg_double_ex(c, "momentum", out->momentum, 0.0, 1.0, SSL_CFG_HI_OPEN);
        out->nesterov = ssl_cfg_bool(c, "nesterov", 0);
        if (!ssl_cfg_status(c) && out->nesterov && out->momentum <= 0)
            ssl_cfg_fail(c, "nesterov", "needs momentum > 0");
    }
    if (kind == SSL_OPTIM_LARS) {
        out->lars_eta =
            ssl_cfg_double_ex(c, "lars_eta", out->lars_eta, 0.0, 100.0, SSL_CFG_LO_OPEN);
        out->lars_clip = ssl_cfg_bool(c, "lars_clip_lr", out->lars_clip);
    }
    if (kind == SSL_OPTIM_ADAMW) {
        read_betas(c, out);
        out->eps = ssl_cfg_double_ex(c, "eps", out->eps, 0.0, 1.0, SSL_CFG_LO_OPEN);
    }
    return ssl_cfg_status(c);
}

int ssl__ema_cfg_read(ssl_cfg_t *c, ssl_ema_cfg_t *out)
{
    static const char *const keys[] = {"momentum", "momentum_end", "schedule", "buffers", NULL};
    static const char *const scheds[] = {"cosine", "linear", "constant", NULL};
    static const char *const bufs[] = {"keep", "copy", "ema", NULL};
    ssl_ema_cfg_default(out);
    ssl_cfg_keys(c, keys);
    double m = ssl_cfg_double(c, "momentum", out->momentum.start, 0.0, 1.0);
    int s = ssl_cfg_enum(c, "schedule", scheds, 0);
    if (s == 2) {
        if (ssl_cfg_has(c, "momentum_end"))
            ssl_cfg_fail(c, "momentum_end", "has no effect with schedule 'constant'");
        out->momentum = ssl_sched_constant(m);
    } else {
        double e = ssl_cfg_double(c, "momentum_end", out->momentum.end, 0.0, 1.0);
        out->momentum = (ssl_sched_t){s == 0 ? SSL_SCHED_COSINE : SSL_SCHED_LINEAR, m, m, e, 0};
    }
    out->buffers = ssl_cfg_enum(c, "buffers", bufs, SSL_EMA_BUFFERS_KEEP);
    return ssl_cfg_status(c);
}

/* Parse text and run a section reader over its root object. */
static int from_json(const char *json, size_t len, const char *source,
                     int (*read)(ssl_cfg_t *, void *), void *out)
{
    cJSON *doc = ssl_json_parse(json, len, source);
    if (!doc)
        return ssl_last_status();
    int err = 0;
    ssl_cfg_t c = ssl_cfg_root(doc, source, &err, 0);
    int st = ssl_cfg_status(&c) ? ssl_cfg_status(&c) : read(&c, out);
    cJSON_Delete(doc);
    return st;
}

static int read_optim(ssl_cfg_t *c, void *out)
{
    return ssl__optim_cfg_read(c, -1, out);
}
static int read_ema(ssl_cfg_t *c, void *out)
{
    return ssl__ema_cfg_read(c, out);
}

int ssl_optim_cfg_from_json(const char *json, size_t len, const char *source, ssl_optim_cfg_t *cfg)
{
    return from_json(json, len, source, read_optim, cfg);
}

int ssl_ema_cfg_from_json(const char *json, size_t len, const char *source, ssl_ema_cfg_t *cfg)
{
    return from_json(json, len, source, read_ema, cfg);
}
