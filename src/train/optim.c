/* Optimizers over the parameter store's contiguous buffers: SGD (torch.optim.SGD), LARS
 * (solo-learn's LARS) and AdamW (torch.optim.AdamW). Each update is written in float32 in the
 * order PyTorch evaluates it, scalars computed in double and rounded once, so trajectories match
 * PyTorch to a few ulps (tests/test_optim.c). */
#include "optim_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ssl_optim {
    ssl_optim_cfg_t cfg;
    ssl_params_t *p;
    int n_params;   /* store entries at creation */
    size_t n;       /* trainable floats at creation */
    float *s1, *s2; /* (n) momentum_buffer, or exp_avg + exp_avg_sq */
    int n_state;
    int64_t *psteps; /* (n_params) updates applied to each entry */
    float *lr_scale; /* (n_params) */
    double *lr_fixed; /* (n_params) the lr to use instead of the step's; < 0: the step's */
    int64_t steps;
};

static const char *const k_kind_names[] = {"sgd", "lars", "adamw"};

const char *ssl_optim_kind_name(int kind)
{
    return SSL__BAD_RANGE(kind, 0, SSL_OPTIM_ADAMW, __func__) ? "?" : k_kind_names[kind];
}

void ssl_optim_cfg_default(int kind, ssl_optim_cfg_t *c)
{
    if (SSL__IS_NULL(c, __func__))
        return;
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->lr_scaled = 1;
    c->schedule = SSL_SCHED_WARMUP_COSINE;
    c->warmup_epochs = 10;
    c->warmup_start_lr = 0;
    c->min_lr = 0;
    c->weight_decay_end = -1;
    c->exclude_bias_and_norm = 1;
    c->momentum = 0.9;
    c->nesterov = 0;
    c->lars_eta = 0.02;
    c->lars_eps = 1e-8;
    c->lars_clip = 1; /* solo-learn SimCLR/BYOL configs: clip_lr True */
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    switch (kind) {
    case SSL_OPTIM_SGD: /* SimSiam (solo-learn CIFAR): SGD 0.5 @ 256, wd 1e-5 */
        c->lr = 0.5;
        c->weight_decay = 1e-5;
        break;
    case SSL_OPTIM_LARS: /* SimCLR (solo-learn CIFAR): LARS 0.4 @ 256, wd 1e-4, eta 0.02 */
        c->lr = 0.4;
        c->weight_decay = 1e-4;
        break;
    default: /* MAE: AdamW blr 1.5e-4 @ 256, betas (0.9, 0.95), wd 0.05 */
        c->lr = 1.5e-4;
        c->weight_decay = 0.05;
        c->beta2 = 0.95;
        break;
    }
}

double ssl_optim_peak_lr(const ssl_optim_cfg_t *c, int64_t batch_size)
{
    if (SSL__IS_NULL(c, __func__))
        return NAN;
    return c->lr_scaled ? c->lr * (double)batch_size / 256.0 : c->lr;
}

ssl_sched_t ssl_optim_lr_sched(const ssl_optim_cfg_t *c, int64_t batch_size,
                               int64_t steps_per_epoch)
{
    if (SSL__IS_NULL(c, __func__))
        return ssl_sched_constant(NAN);
    double peak = ssl_optim_peak_lr(c, batch_size);
    int64_t w = (int64_t)llround(c->warmup_epochs * (double)steps_per_epoch);
    if (w < 0)
        w = 0;
    if (c->schedule == SSL_SCHED_CONSTANT)
        return (ssl_sched_t){w ? SSL_SCHED_WARMUP_CONSTANT : SSL_SCHED_CONSTANT, c->warmup_start_lr,
                             peak, peak, w};
    return ssl_sched_warmup_cosine(c->warmup_start_lr, peak, c->min_lr, w);
}

ssl_sched_t ssl_optim_wd_sched(const ssl_optim_cfg_t *c)
{
    if (SSL__IS_NULL(c, __func__))
        return ssl_sched_constant(NAN);
    if (c->weight_decay_end >= 0)
        return ssl_sched_cosine(c->weight_decay, c->weight_decay_end);
    return ssl_sched_constant(c->weight_decay);
}

/* ---------------------------------------------------------------- create / free */

static int check_cfg(const ssl_optim_cfg_t *c)
{
#define BAD(field, range)                                                                          \
    ssl_set_error(SSL_ERR_INVALID, "ssl_optim_create: %s = %g outside " range, #field,             \
                  (double)c->field)
    if (c->kind < SSL_OPTIM_SGD || c->kind > SSL_OPTIM_ADAMW)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_optim_create: unknown optimizer kind %d",
                             c->kind);
    if (c->kind != SSL_OPTIM_ADAMW) {
        if (!(c->momentum >= 0 && c->momentum < 1))
            return BAD(momentum, "[0, 1)");
        if (c->nesterov && c->momentum <= 0)
            return ssl_set_error(SSL_ERR_INVALID,
                                 "ssl_optim_create: nesterov needs momentum > 0 (momentum = %g)",
                                 c->momentum);
    }
    if (c->kind == SSL_OPTIM_LARS) {
        if (!(c->lars_eta > 0 && isfinite(c->lars_eta)))
            return BAD(lars_eta, "(0, inf)");
        if (!(c->lars_eps >= 0 && isfinite(c->lars_eps)))
            return BAD(lars_eps, "[0, inf)");
    }
    if (c->kind == SSL_OPTIM_ADAMW) {
        if (!(c->beta1 >= 0 && c->beta1 < 1))
            return BAD(beta1, "[0, 1)");
        if (!(c->beta2 >= 0 && c->beta2 < 1))
            return BAD(beta2, "[0, 1)");
        if (!(c->eps > 0 && isfinite(c->eps)))
            return BAD(eps, "(0, inf)");
    }
#undef BAD
    return SSL_OK;
}

ssl_optim_t *ssl_optim_create(const ssl_optim_cfg_t *cfg, ssl_params_t *p)
{
    if (!cfg || !p) {
        ssl_set_error(SSL_ERR_INVALID, "ssl_optim_create: NULL config or store");
        return NULL;
    }
    if (check_cfg(cfg) != SSL_OK)
        return NULL;
    ssl_optim_t *o = calloc(1, sizeof *o);
    if (!o)
        goto nomem;
    o->cfg = *cfg;
    o->p = p;
    o->n_params = ssl_params_count(p);
    ssl_params_data(p, &o->n);
    if (cfg->kind == SSL_OPTIM_ADAMW)
        o->n_state = 2;
    else
        o->n_state = cfg->momentum > 0 ? 1 : 0;
    size_t nn = o->n ? o->n : 1;
    size_t np = o->n_params ? (size_t)o->n_params : 1;
    if (o->n_state >= 1 && !(o->s1 = calloc(nn, sizeof(float))))
        goto nomem;
    if (o->n_state >= 2 && !(o->s2 = calloc(nn, sizeof(float))))
        goto nomem;
    o->psteps = calloc(np, sizeof(int64_t));
    o->lr_scale = malloc(np * sizeof(float));
    o->lr_fixed = malloc(np * sizeof(double));
    if (!o->psteps || !o->lr_scale || !o->lr_fixed)
        goto nomem;
    for (int i = 0; i < o->n_params; i++) {
        o->lr_scale[i] = 1.0f;
        o->lr_fixed[i] = -1.0;
    }
    return o;
nomem:
    ssl_optim_free(o);
    ssl_set_error(SSL_ERR_NOMEM, "ssl_optim_create: out of memory");
    return NULL;
}

void ssl_optim_free(ssl_optim_t *o)
{
    if (!o)
        return;
    free(o->s1);
    free(o->s2);
    free(o->psteps);
    free(o->lr_scale);
    free(o->lr_fixed);
    free(o);
}

const ssl_optim_cfg_t *ssl_optim_cfg(const ssl_optim_t *o)
{
    return SSL__IS_NULL(o, __func__) ? NULL : &o->cfg;
}

/* Sets lr_scale (fixed 0) or lr_fixed (fixed 1) of every trainable entry under prefix to v;
 * returns how many. */
static int set_per_param(ssl_optim_t *o, const char *prefix, int fixed, double v)
{
    size_t len = prefix ? strlen(prefix) : 0;
    int count = 0;
    for (int i = 0; i < o->n_params; i++) {
        const ssl_param_info_t *in = ssl_params_info(o->p, i);
        if (in->kind != SSL_PARAM_TRAINABLE || (len && strncmp(in->name, prefix, len) != 0))
            continue;
        if (fixed)
            o->lr_fixed[i] = v;
        else
            o->lr_scale[i] = (float)v;
        count++;
    }
    return count;
}

int ssl_optim_set_lr_scale(ssl_optim_t *o, const char *prefix, double scale)
{
    if (!(scale >= 0 && isfinite(scale)))
        return ssl_set_error(SSL_ERR_INVALID, "ssl_optim_set_lr_scale: scale %g for '%s'", scale,
                             prefix ? prefix : "");
    return set_per_param(o, prefix, 0, scale);
}

int ssl_optim_set_lr_fixed(ssl_optim_t *o, const char *prefix, double lr)
{
    if (SSL__IS_NULL(o, __func__) || SSL__IS_NULL(prefix, __func__))
        return SSL_ERR_INVALID;
    if (!isfinite(lr))
        return ssl_set_error(SSL_ERR_INVALID, "ssl_optim_set_lr_fixed: lr %g for '%s'", lr,
                             prefix ? prefix : "");
    return set_per_param(o, prefix, 1, lr < 0 ? -1.0 : lr);
}

/* ---------------------------------------------------------------- update kernels */

/* SGD with optional momentum and nesterov, wd added to the gradient (torch.optim.SGD). */
static void sgd_update(float *restrict w, const float *restrict g, float *restrict buf, int64_t n,
                       double lr, double wd, double momentum, int nesterov)
{
    const float nlr = (float)-lr, fwd = (float)wd, fm = (float)momentum;
    const int has_wd = wd != 0;
#pragma omp parallel for schedule(static) if (n >= SSL_TRAIN_OMP_MIN)
    for (int64_t j = 0; j < n; j++) {
        float d = has_wd ? g[j] + fwd * w[j] : g[j];
        if (buf) {
            float b = buf[j] * fm + d;
            buf[j] = b;
            d = nesterov ? d + fm * b : b;
        }
        w[j] = w[j] + nlr * d;
    }
}

/* LARS direction (solo-learn): d = (g + wd w) * trust for adapted parameters with non-zero
 * norms, d = g otherwise; then the SGD momentum step without further decay. */
static void lars_update(float *restrict w, const float *restrict g, float *restrict buf, int64_t n,
                        double lr, double wd, int adapt, const ssl_optim_cfg_t *c)
{
    if (adapt) {
        double pn = sqrt(ssl__sumsq_f32(w, n)), gn = sqrt(ssl__sumsq_f32(g, n));
        if (pn > 0 && gn > 0) {
            float fpn = (float)pn, fgn = (float)gn, fwd = (float)wd;
            float trust = fpn / (fgn + fpn * fwd + (float)c->lars_eps);
            trust *= (float)c->lars_eta;
            if (c->lars_clip) {
                float r = lr > 0 ? (float)(trust / lr) : 1.0f;
                trust = r < 1.0f ? r : 1.0f;
            }
            const float nlr = (float)-lr, fm = (float)c->momentum;
            const int nesterov = c->nesterov;
#pragma omp parallel for schedule(static) if (n >= SSL_TRAIN_OMP_MIN)
            for (int64_t j = 0; j < n; j++) {
                float d = (g[j] + fwd * w[j]) * trust;
                if (buf) {
                    float b = buf[j] * fm + d;
                    buf[j] = b;
                    d = nesterov ? d + fm * b : b;
                }
                w[j] = w[j] + nlr * d;
            }
            return;
        }
    }
    sgd_update(w, g, buf, n, lr, 0.0, c->momentum, c->nesterov);
}

/* AdamW (torch.optim.AdamW, single-tensor path), t = this parameter's step count from 1.
 * This file is compiled with -fno-math-errno (CMakeLists.txt): sqrtf of v >= 0 never sets errno,
 * and without the errno path the loop vectorises. Results are unchanged. */
static void adamw_update(float *restrict w, const float *restrict g, float *restrict m1,
                         float *restrict m2, int64_t n, double lr, double wd, int64_t t,
                         const ssl_optim_cfg_t *c)
{
    const float decay = (float)(1.0 - lr * wd);
    const float b1 = (float)c->beta1, ob1 = (float)(1.0 - c->beta1);
    const float b2 = (float)c->beta2, ob2 = (float)(1.0 - c->beta2);
    const double bc1 = 1.0 - pow(c->beta1, (double)t), bc2 = 1.0 - pow(c->beta2, (double)t);
    const float nstep = (float)-(lr / bc1), bc2s = (float)sqrt(bc2), eps = (float)c->eps;
#pragma omp parallel for schedule(static) if (n >= SSL_TRAIN_OMP_MIN)
    for (int64_t j = 0; j < n; j++) {
        float wj = w[j] * decay;
        float a = m1[j] * b1 + ob1 * g[j];
        float v = m2[j] * b2 + ob2 * (g[j] * g[j]);
        m1[j] = a;
        m2[j] = v;
        float denom = sqrtf(v) / bc2s + eps;
        w[j] = wj + nstep * (a / denom);
    }
}

/* Whether the parameter name starts with one of the NULL-ended prefixes (NULL: every name). */
static int in_subset(const char *name, const char *const *prefixes)
{
    if (!prefixes)
        return 1;
    for (int k = 0; prefixes[k]; k++)
        if (!strncmp(name, prefixes[k], strlen(prefixes[k])))
            return 1;
    return 0;
}

int ssl_optim_step(ssl_optim_t *o, double lr, double weight_decay)
{
    return ssl_optim_step_only(o, lr, weight_decay, NULL);
}

int ssl_optim_step_only(ssl_optim_t *o, double lr, double weight_decay,
                        const char *const *prefixes)
{
    if (!o)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_optim_step: NULL optimizer");
    if (!(lr >= 0 && isfinite(lr)) || !(weight_decay >= 0 && isfinite(weight_decay)))
        return ssl_set_error(SSL_ERR_INVALID,
                             "ssl_optim_step: lr %g and weight_decay %g must be finite and >= 0",
                             lr, weight_decay);
    size_t n;
    float *data = ssl_params_data(o->p, &n);
    float *grad = ssl_params_grad(o->p, NULL);
    if (n != o->n || ssl_params_count(o->p) != o->n_params)
        return ssl_set_error(SSL_ERR_STATE,
                             "ssl_optim_step: the parameter store changed since the optimizer "
                             "was created (%d entries, %zu floats; now %d, %zu)",
                             o->n_params, o->n, ssl_params_count(o->p), n);
    const ssl_optim_cfg_t *c = &o->cfg;
    for (int i = 0; i < o->n_params; i++) {
        const ssl_param_info_t *in = ssl_params_info(o->p, i);
        if (!ssl__param_active(in) || !in_subset(in->name, prefixes))
            continue;
        int decay = !(c->exclude_bias_and_norm && (in->flags & SSL_PARAM_NO_DECAY));
        double lr_i = (o->lr_fixed[i] >= 0 ? o->lr_fixed[i] : lr) * (double)o->lr_scale[i];
        double wd_i = decay ? weight_decay : 0.0;
        size_t off = in->offset;
        int64_t len = in->t->numel;
        float *w = data + off;
        const float *g = grad + off;
        float *s1 = o->s1 ? o->s1 + off : NULL, *s2 = o->s2 ? o->s2 + off : NULL;
        int64_t t = ++o->psteps[i];
        switch (c->kind) {
        case SSL_OPTIM_SGD:
            sgd_update(w, g, s1, len, lr_i, wd_i, c->momentum, c->nesterov);
            break;
        case SSL_OPTIM_LARS:
            lars_update(w, g, s1, len, lr_i, wd_i, decay, c);
            break;
        default:
            adamw_update(w, g, s1, s2, len, lr_i, wd_i, t, c);
            break;
        }
    }
    o->steps++;
    return SSL_OK;
}

/* ---------------------------------------------------------------- state */

int ssl_optim_state_count(const ssl_optim_t *o)
{
    return SSL__IS_NULL(o, __func__) ? SSL_ERR_INVALID : o->n_state;
}

int ssl_optim_state_get(ssl_optim_t *o, int i, ssl_optim_state_t *out)
{
    if (!o || !out || i < 0 || i >= o->n_state)
        return ssl_set_error(SSL_ERR_INVALID, "ssl_optim_state_get: no state entry %d (%d)", i,
                             o ? o->n_state : 0);
    const char *name;
    if (o->cfg.kind == SSL_OPTIM_ADAMW)
        name = i == 0 ? "exp_avg" : "exp_avg_sq";
    else
        name = "momentum_buffer";
    *out = (ssl_optim_state_t){name, i == 0 ? o->s1 : o->s2, o->n};
    return SSL_OK;
}

int64_t ssl_optim_step_count(const ssl_optim_t *o)
{
    return SSL__IS_NULL(o, __func__) ? SSL_ERR_INVALID : o->steps;
}

void ssl_optim_set_step_count(ssl_optim_t *o, int64_t steps)
{
    if (SSL__IS_NULL(o, __func__) || SSL__BAD_RANGE(steps, 0, INT64_MAX, __func__))
        return;
    o->steps = steps;
}

int64_t *ssl_optim_param_steps(ssl_optim_t *o, int *n_params)
{
    if (n_params)
        *n_params = 0;
    if (SSL__IS_NULL(o, __func__))
        return NULL;
    if (n_params)
        *n_params = o->n_params;
    return o->psteps;
}
