/* Optimisation: SGD / LARS / AdamW trajectories against PyTorch (golden fixtures from
 * tests/fixtures/gen_optim_fixtures.py), weight-decay exclusion, frozen parameters, state save
 * and restore, gradient clipping against torch, the finite check, schedules, EMA targets and the
 * "optim" / "target" config readers. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json_strict.h"
#include "ssl/io.h"
#include "ssl/optim.h"
#include "train/optim_config.h"

#define FIXTURE SSL_SOURCE_DIR "/tests/fixtures/optim_trajectories.safetensors"
#define STEPS 5

static const double k_lr_mult[STEPS] = {1.0, 0.8, 1.2, 0.5, 0.9};
static const double k_wd_mult[STEPS] = {1.0, 1.5, 2.0, 2.5, 3.0};

/* The fixture's parameters (gen_optim_fixtures.py PARAMS) plus a buffer. */
typedef struct pdef {
    const char *name;
    int ndim;
    int64_t shape[2];
    int kind, flags;
} pdef_t;

static const pdef_t k_params[] = {
    {"fc.weight", 2, {4, 3}, SSL_PARAM_TRAINABLE, 0},
    {"fc.bias", 1, {4, 0}, SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY},
    {"norm.weight", 1, {4, 0}, SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY},
    {"norm.running_mean", 1, {4, 0}, SSL_PARAM_BUFFER, 0},
    {"frozen.weight", 2, {2, 3}, SSL_PARAM_TRAINABLE, SSL_PARAM_FROZEN},
    {"head.weight", 2, {2, 4}, SSL_PARAM_TRAINABLE, 0},
    {"zero.weight", 2, {2, 2}, SSL_PARAM_TRAINABLE, 0},
};
#define N_PARAMS ((int)(sizeof k_params / sizeof k_params[0]))

static ssl_st_t *open_fixture(void)
{
    ssl_st_t *f = ssl_st_open(FIXTURE);
    if (!f)
        fail_msg("%s", ssl_last_error());
    return f;
}

static void read_into(const ssl_st_t *f, const char *name, float *dst, int64_t n)
{
    int i = ssl_st_find(f, name);
    if (i < 0)
        fail_msg("fixture has no tensor '%s'", name);
    assert_int_equal(ssl_st_read_f32(f, i, dst, (size_t)n), SSL_OK);
}

/* A store laid out as the fixture, initialised from init.<name> (buffer: 1, 2, 3, 4). */
static ssl_params_t *fixture_store(const ssl_st_t *f)
{
    ssl_params_t *p = ssl_params_create();
    assert_non_null(p);
    for (int i = 0; i < N_PARAMS; i++) {
        const pdef_t *d = &k_params[i];
        ssl_tensor_t *t = ssl_params_add(p, d->name, d->ndim, d->shape, d->kind, d->flags);
        assert_non_null(t);
        if (d->kind == SSL_PARAM_BUFFER) {
            for (int64_t j = 0; j < t->numel; j++)
                t->data[j] = (float)(j + 1);
        } else {
            char key[128];
            snprintf(key, sizeof key, "init.%s", d->name);
            read_into(f, key, t->data, t->numel);
        }
    }
    return p;
}

/* Gradients of step k, into every trainable entry (frozen ones too: they must be ignored). */
static void set_grads(const ssl_st_t *f, ssl_params_t *p, int k)
{
    for (int i = 0; i < ssl_params_count(p); i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        if (in->kind != SSL_PARAM_TRAINABLE)
            continue;
        char key[128];
        snprintf(key, sizeof key, "grad.%d.%s", k, in->name);
        read_into(f, key, in->t->grad, in->t->numel);
    }
}

typedef struct ocase {
    const char *name;
    int kind;
    double lr, momentum, wd;
    int nesterov, exclude;
    double eta;
    int clip;
    double beta1, beta2, eps;
    int unfreeze_at; /* -1: frozen.weight stays frozen */
} ocase_t;

/* Mirrors CASES in gen_optim_fixtures.py. */
static const ocase_t k_cases[] = {
    {"sgd", SSL_OPTIM_SGD, 0.1, 0.9, 0.05, 0, 1, 0, 0, 0, 0, 0, -1},
    {"sgd_nesterov", SSL_OPTIM_SGD, 0.1, 0.8, 0.01, 1, 1, 0, 0, 0, 0, 0, -1},
    {"sgd_all_decay", SSL_OPTIM_SGD, 0.1, 0.9, 0.05, 0, 0, 0, 0, 0, 0, 0, -1},
    {"sgd_plain", SSL_OPTIM_SGD, 0.1, 0.0, 0.05, 0, 1, 0, 0, 0, 0, 0, -1},
    {"lars", SSL_OPTIM_LARS, 0.5, 0.9, 0.01, 0, 1, 0.02, 0, 0, 0, 0, -1},
    {"lars_clip", SSL_OPTIM_LARS, 0.02, 0.9, 0.01, 0, 1, 0.02, 1, 0, 0, 0, -1},
    {"lars_nesterov_all", SSL_OPTIM_LARS, 0.5, 0.9, 0.01, 1, 0, 0.02, 0, 0, 0, 0, -1},
    {"adamw", SSL_OPTIM_ADAMW, 0.01, 0, 0.05, 0, 1, 0, 0, 0.9, 0.95, 1e-8, -1},
    {"adamw_all_decay", SSL_OPTIM_ADAMW, 0.01, 0, 0.1, 0, 0, 0, 0, 0.9, 0.999, 1e-6, -1},
    {"adamw_unfreeze", SSL_OPTIM_ADAMW, 0.01, 0, 0.05, 0, 1, 0, 0, 0.9, 0.95, 1e-8, 2},
};

static ssl_optim_cfg_t case_cfg(const ocase_t *c)
{
    ssl_optim_cfg_t cfg;
    ssl_optim_cfg_default(c->kind, &cfg);
    cfg.lr = c->lr;
    cfg.lr_scaled = 0;
    cfg.weight_decay = c->wd;
    cfg.exclude_bias_and_norm = c->exclude;
    if (c->kind != SSL_OPTIM_ADAMW) {
        cfg.momentum = c->momentum;
        cfg.nesterov = c->nesterov;
    }
    if (c->kind == SSL_OPTIM_LARS) {
        cfg.lars_eta = c->eta;
        cfg.lars_clip = c->clip;
    }
    if (c->kind == SSL_OPTIM_ADAMW) {
        cfg.beta1 = c->beta1;
        cfg.beta2 = c->beta2;
        cfg.eps = c->eps;
    }
    return cfg;
}

/* Every trainable parameter against "<case>.<k>.<name>"; the frozen one (while frozen) must be
 * bit-identical to its initial value; the buffer must be untouched. */
static void compare_step(const ssl_st_t *f, ssl_params_t *p, const char *cname, int k)
{
    for (int i = 0; i < ssl_params_count(p); i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        float ref[16];
        char key[160];
        if (in->kind == SSL_PARAM_BUFFER) {
            for (int64_t j = 0; j < in->t->numel; j++)
                assert_true(in->t->data[j] == (float)(j + 1));
            continue;
        }
        snprintf(key, sizeof key, "%s.%d.%s", cname, k, in->name);
        read_into(f, key, ref, in->t->numel);
        if (in->flags & SSL_PARAM_FROZEN) {
            assert_memory_equal(in->t->data, ref, (size_t)in->t->numel * sizeof(float));
            continue;
        }
        if (tu_count_mismatch(in->t->data, ref, in->t->numel, 1e-8, 1e-6, key))
            fail_msg("%s differs from PyTorch after step %d", key, k);
    }
}

static void test_trajectories_match_pytorch(void **state)
{
    (void)state;
    ssl_st_t *f = open_fixture();
    for (size_t ci = 0; ci < sizeof k_cases / sizeof k_cases[0]; ci++) {
        const ocase_t *c = &k_cases[ci];
        ssl_params_t *p = fixture_store(f);
        ssl_optim_cfg_t cfg = case_cfg(c);
        ssl_optim_t *o = ssl_optim_create(&cfg, p);
        if (!o)
            fail_msg("%s: %s", c->name, ssl_last_error());
        for (int k = 0; k < STEPS; k++) {
            if (k == c->unfreeze_at)
                assert_int_equal(ssl_params_set_frozen(p, "frozen.", 0), 1);
            set_grads(f, p, k);
            assert_int_equal(ssl_optim_step(o, c->lr * k_lr_mult[k], c->wd * k_wd_mult[k]), SSL_OK);
            compare_step(f, p, c->name, k);
        }
        /* frozen throughout: its slice of every state buffer stays zero, its step count 0 */
        int np;
        int64_t *ps = ssl_optim_param_steps(o, &np);
        assert_int_equal(np, N_PARAMS);
        const ssl_param_info_t *fr = ssl_params_info(p, 4);
        assert_string_equal(fr->name, "frozen.weight");
        if (c->unfreeze_at < 0) {
            assert_int_equal(ps[4], 0);
            for (int s = 0; s < ssl_optim_state_count(o); s++) {
                ssl_optim_state_t st;
                assert_int_equal(ssl_optim_state_get(o, s, &st), SSL_OK);
                for (int64_t j = 0; j < fr->t->numel; j++)
                    assert_true(st.data[fr->offset + j] == 0.0f);
            }
        } else {
            assert_int_equal(ps[4], STEPS - c->unfreeze_at);
        }
        assert_int_equal(ps[0], STEPS);
        assert_int_equal(ps[3], 0); /* the buffer */
        assert_int_equal(ssl_optim_step_count(o), STEPS);
        ssl_optim_free(o);
        ssl_params_free(p);
    }
    ssl_st_close(f);
}

/* With zero gradients only weight decay moves parameters: decayed ones shrink by (1 - lr wd),
 * NO_DECAY ones stay, unless exclude_bias_and_norm is off. */
static void decay_case(int kind, int exclude)
{
    ssl_params_t *p = ssl_params_create();
    int64_t s2[2] = {3, 2}, s1[1] = {3};
    ssl_tensor_t *w = ssl_params_add(p, "w", 2, s2, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *b = ssl_params_add(p, "b", 1, s1, SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY);
    for (int j = 0; j < 6; j++)
        w->data[j] = (float)(j + 1);
    for (int j = 0; j < 3; j++)
        b->data[j] = (float)(j + 1);
    ssl_optim_cfg_t cfg;
    ssl_optim_cfg_default(kind, &cfg);
    cfg.exclude_bias_and_norm = exclude;
    ssl_optim_t *o = ssl_optim_create(&cfg, p);
    assert_non_null(o);
    ssl_params_zero_grad(p);
    assert_int_equal(ssl_optim_step(o, 0.5, 0.2), SSL_OK);
    float f = (float)(1.0 - 0.5 * 0.2);
    for (int j = 0; j < 6; j++)
        assert_float_equal(w->data[j], (float)(j + 1) * f, 1e-6);
    for (int j = 0; j < 3; j++)
        assert_float_equal(b->data[j], exclude ? (float)(j + 1) : (float)(j + 1) * f, 1e-6);
    ssl_optim_free(o);
    ssl_params_free(p);
}

static void test_weight_decay_exclusion(void **state)
{
    (void)state;
    decay_case(SSL_OPTIM_SGD, 1);
    decay_case(SSL_OPTIM_SGD, 0);
    decay_case(SSL_OPTIM_ADAMW, 1);
    decay_case(SSL_OPTIM_ADAMW, 0);
}

/* LARS: a NO_DECAY parameter takes plain SGD (no decay, no trust ratio). */
static void test_lars_excluded_is_sgd(void **state)
{
    (void)state;
    ssl_params_t *p = ssl_params_create();
    int64_t s1[1] = {4};
    ssl_tensor_t *b = ssl_params_add(p, "b", 1, s1, SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY);
    for (int j = 0; j < 4; j++) {
        b->data[j] = 1.0f;
        b->grad[j] = 0.25f * (float)(j + 1);
    }
    ssl_optim_cfg_t cfg;
    ssl_optim_cfg_default(SSL_OPTIM_LARS, &cfg);
    ssl_optim_t *o = ssl_optim_create(&cfg, p);
    assert_int_equal(ssl_optim_step(o, 0.1, 0.5), SSL_OK);
    for (int j = 0; j < 4; j++)
        assert_float_equal(b->data[j], 1.0f - 0.1f * 0.25f * (float)(j + 1), 1e-7);
    ssl_optim_free(o);
    ssl_params_free(p);
}

/* Saving state after 2 steps and restoring it into a fresh optimizer continues bit for bit. */
static void test_state_save_restore(void **state)
{
    (void)state;
    ssl_st_t *f = open_fixture();
    const int kinds[3] = {SSL_OPTIM_SGD, SSL_OPTIM_LARS, SSL_OPTIM_ADAMW};
    const char *names[3][2] = {
        {"momentum_buffer", NULL}, {"momentum_buffer", NULL}, {"exp_avg", "exp_avg_sq"}};
    for (int ki = 0; ki < 3; ki++) {
        ssl_optim_cfg_t cfg;
        ssl_optim_cfg_default(kinds[ki], &cfg);
        ssl_params_t *a = fixture_store(f), *b = fixture_store(f);
        ssl_optim_t *oa = ssl_optim_create(&cfg, a);
        assert_int_equal(ssl_optim_state_count(oa), ki == 2 ? 2 : 1);
        for (int k = 0; k < 2; k++) {
            set_grads(f, a, k);
            assert_int_equal(ssl_optim_step(oa, 0.05, 0.01), SSL_OK);
        }
        /* "checkpoint": parameters, state buffers, step counters */
        size_t n;
        float *bd = ssl_params_data(b, &n);
        memcpy(bd, ssl_params_data(a, NULL), n * sizeof(float));
        ssl_optim_t *ob = ssl_optim_create(&cfg, b);
        for (int s = 0; s < ssl_optim_state_count(oa); s++) {
            ssl_optim_state_t sa, sb;
            assert_int_equal(ssl_optim_state_get(oa, s, &sa), SSL_OK);
            assert_int_equal(ssl_optim_state_get(ob, s, &sb), SSL_OK);
            assert_string_equal(sa.name, names[ki][s]);
            assert_int_equal(sa.n, n);
            memcpy(sb.data, sa.data, sa.n * sizeof(float));
        }
        ssl_optim_state_t bad;
        assert_int_equal(ssl_optim_state_get(oa, 2, &bad), SSL_ERR_INVALID);
        int np;
        int64_t *steps_b = ssl_optim_param_steps(ob, &np);
        memcpy(steps_b, ssl_optim_param_steps(oa, NULL), (size_t)np * sizeof(int64_t));
        ssl_optim_set_step_count(ob, ssl_optim_step_count(oa));
        for (int k = 2; k < STEPS; k++) {
            set_grads(f, a, k);
            set_grads(f, b, k);
            assert_int_equal(ssl_optim_step(oa, 0.05, 0.01), SSL_OK);
            assert_int_equal(ssl_optim_step(ob, 0.05, 0.01), SSL_OK);
        }
        assert_memory_equal(ssl_params_data(a, NULL), ssl_params_data(b, NULL), n * sizeof(float));
        assert_int_equal(ssl_optim_step_count(ob), STEPS);
        ssl_optim_free(oa);
        ssl_optim_free(ob);
        ssl_params_free(a);
        ssl_params_free(b);
    }
    ssl_st_close(f);
}

static void test_optim_errors(void **state)
{
    (void)state;
    ssl_params_t *p = ssl_params_create();
    int64_t s[1] = {3};
    ssl_params_add(p, "w", 1, s, SSL_PARAM_TRAINABLE, 0);
    ssl_optim_cfg_t cfg;
    ssl_optim_cfg_default(SSL_OPTIM_SGD, &cfg);
    cfg.momentum = 1.0;
    tu_assert_error(ssl_optim_create(&cfg, p), SSL_ERR_INVALID, "momentum", NULL);
    cfg.momentum = 0;
    cfg.nesterov = 1;
    tu_assert_error(ssl_optim_create(&cfg, p), SSL_ERR_INVALID, "nesterov", NULL);
    ssl_optim_cfg_default(SSL_OPTIM_ADAMW, &cfg);
    cfg.beta2 = 1.0;
    tu_assert_error(ssl_optim_create(&cfg, p), SSL_ERR_INVALID, "beta2", NULL);
    ssl_optim_cfg_default(SSL_OPTIM_LARS, &cfg);
    cfg.lars_eta = 0;
    tu_assert_error(ssl_optim_create(&cfg, p), SSL_ERR_INVALID, "lars_eta", NULL);
    ssl_optim_cfg_default(SSL_OPTIM_SGD, &cfg);
    ssl_optim_t *o = ssl_optim_create(&cfg, p);
    assert_non_null(o);
    assert_int_equal(ssl_optim_step(o, NAN, 0), SSL_ERR_INVALID);
    assert_int_equal(ssl_optim_step(o, 0.1, -1), SSL_ERR_INVALID);
    ssl_params_add(p, "late", 1, s, SSL_PARAM_TRAINABLE, 0);
    assert_int_equal(ssl_optim_step(o, 0.1, 0), SSL_ERR_STATE);
    assert_non_null(strstr(ssl_last_error(), "changed"));
    ssl_optim_free(o);
    ssl_params_free(p);
}

static void test_lr_scale(void **state)
{
    (void)state;
    ssl_params_t *p = ssl_params_create();
    int64_t s[1] = {2};
    ssl_tensor_t *a = ssl_params_add(p, "enc.w", 1, s, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *b = ssl_params_add(p, "pred.w", 1, s, SSL_PARAM_TRAINABLE, 0);
    ssl_optim_cfg_t cfg;
    ssl_optim_cfg_default(SSL_OPTIM_SGD, &cfg);
    cfg.momentum = 0;
    ssl_optim_t *o = ssl_optim_create(&cfg, p);
    assert_int_equal(ssl_optim_set_lr_scale(o, "pred.", 0.5), 1);
    assert_int_equal(ssl_optim_set_lr_scale(o, "x", -1), SSL_ERR_INVALID);
    for (int j = 0; j < 2; j++)
        a->grad[j] = b->grad[j] = 1.0f;
    assert_int_equal(ssl_optim_step(o, 0.2, 0), SSL_OK);
    assert_float_equal(a->data[0], -0.2f, 1e-7);
    assert_float_equal(b->data[0], -0.1f, 1e-7);
    ssl_optim_free(o);
    ssl_params_free(p);
}

/* SimSiam's fix_pred_lr: the fixed rate replaces the step's, even when the step's is 0 (warm-up
 * start), is still multiplied by the scale, and lr < 0 hands the parameters back. */
static void test_lr_fixed(void **state)
{
    (void)state;
    ssl_params_t *p = ssl_params_create();
    int64_t s[1] = {2};
    ssl_tensor_t *a = ssl_params_add(p, "encoder.w", 1, s, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *b = ssl_params_add(p, "predictor.w", 1, s, SSL_PARAM_TRAINABLE, 0);
    ssl_params_add(p, "predictor.running_mean", 1, s, SSL_PARAM_BUFFER, 0);
    ssl_optim_cfg_t cfg;
    ssl_optim_cfg_default(SSL_OPTIM_SGD, &cfg);
    cfg.momentum = 0;
    ssl_optim_t *o = ssl_optim_create(&cfg, p);
    assert_int_equal(ssl_optim_set_lr_fixed(o, "predictor.", 0.25), 1);
    assert_int_equal(ssl_optim_set_lr_fixed(o, "predictor.", INFINITY), SSL_ERR_INVALID);
    for (int j = 0; j < 2; j++)
        a->grad[j] = b->grad[j] = 1.0f;
    assert_int_equal(ssl_optim_step(o, 0.0, 0), SSL_OK);
    assert_float_equal(a->data[0], 0.0f, 0);
    assert_float_equal(b->data[0], -0.25f, 1e-7);
    assert_int_equal(ssl_optim_set_lr_scale(o, "predictor.", 2.0), 1);
    assert_int_equal(ssl_optim_step(o, 0.1, 0), SSL_OK);
    assert_float_equal(a->data[0], -0.1f, 1e-7);
    assert_float_equal(b->data[0], -0.75f, 1e-7);
    assert_int_equal(ssl_optim_set_lr_fixed(o, "predictor.", -1), 1);
    assert_int_equal(ssl_optim_step(o, 0.1, 0), SSL_OK);
    assert_float_equal(b->data[0], -0.95f, 1e-6);
    ssl_optim_free(o);
    ssl_params_free(p);
}

/* ssl_optim_step_only on disjoint subsets in turn equals one optimizer per subset (a GAN's two):
 * AdamW, whose bias correction counts each parameter's own steps, against two optimizers over
 * stores holding one parameter each; the parameter outside the subset keeps weights and state. */
static void test_step_only(void **state)
{
    (void)state;
    int64_t s[1] = {3};
    ssl_params_t *p = ssl_params_create(), *pd = ssl_params_create(), *pg = ssl_params_create();
    ssl_tensor_t *d = ssl_params_add(p, "disc.w", 1, s, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *g = ssl_params_add(p, "gen.w", 1, s, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *d1 = ssl_params_add(pd, "disc.w", 1, s, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *g1 = ssl_params_add(pg, "gen.w", 1, s, SSL_PARAM_TRAINABLE, 0);
    ssl_optim_cfg_t cfg;
    ssl_optim_cfg_default(SSL_OPTIM_ADAMW, &cfg);
    cfg.beta1 = 0.5;
    ssl_optim_t *o = ssl_optim_create(&cfg, p), *od = ssl_optim_create(&cfg, pd),
                *og = ssl_optim_create(&cfg, pg);
    static const char *const only_d[] = {"disc.", NULL}, *const only_g[] = {"gen.", NULL};
    for (int step = 0; step < 4; step++) {
        for (int j = 0; j < 3; j++) /* discriminator phase: both get gradients */
            d->grad[j] = d1->grad[j] = g->grad[j] = 0.3f * (float)(j + 1) - 0.1f * (float)step;
        float g_before[3];
        memcpy(g_before, g->data, sizeof g_before);
        assert_int_equal(ssl_optim_step_only(o, 2e-3, 0.01, only_d), SSL_OK);
        assert_int_equal(ssl_optim_step(od, 2e-3, 0.01), SSL_OK);
        assert_memory_equal(g->data, g_before, sizeof g_before); /* not in the subset */
        for (int j = 0; j < 3; j++) /* generator phase */
            g->grad[j] = g1->grad[j] = -0.2f * (float)(j + 1) + 0.05f * (float)step;
        assert_int_equal(ssl_optim_step_only(o, 2e-3, 0.01, only_g), SSL_OK);
        assert_int_equal(ssl_optim_step(og, 2e-3, 0.01), SSL_OK);
        assert_memory_equal(d->data, d1->data, sizeof(float) * 3);
        assert_memory_equal(g->data, g1->data, sizeof(float) * 3);
    }
    int n = 0;
    int64_t *ps = ssl_optim_param_steps(o, &n);
    assert_int_equal(n, 2);
    assert_true(ps[0] == 4 && ps[1] == 4);
    assert_int_equal(ssl_optim_step_count(o), 8);
    ssl_optim_free(o);
    ssl_optim_free(od);
    ssl_optim_free(og);
    ssl_params_free(p);
    ssl_params_free(pd);
    ssl_params_free(pg);
}

/* ---------------------------------------------------------------- gradients */

/* grad.0 into a store holding the non-frozen fixture parameters (plus the frozen one, whose
 * gradient must be left alone). */
static void clip_case(const char *label, int per_param)
{
    ssl_st_t *f = open_fixture();
    ssl_params_t *p = fixture_store(f);
    set_grads(f, p, 0);
    const ssl_param_info_t *fr = ssl_params_info(p, 4);
    float frozen_g[6];
    memcpy(frozen_g, fr->t->grad, sizeof frozen_g);
    float max_norm;
    char key[128];
    snprintf(key, sizeof key, "%s.max_norm", label);
    read_into(f, key, &max_norm, 1);
    if (per_param) {
        float norms[N_PARAMS], ref[N_PARAMS - 2];
        assert_int_equal(ssl_grad_clip_per_param(p, max_norm, norms), SSL_OK);
        read_into(f, "clip_param.norms", ref, N_PARAMS - 2);
        /* norms per store entry: 0 for the buffer (3) and the frozen entry (4) */
        float got[N_PARAMS - 2] = {norms[0], norms[1], norms[2], norms[5], norms[6]};
        assert_true(norms[3] == 0 && norms[4] == 0);
        tu_assert_close(got, ref, N_PARAMS - 2, 1e-7, 1e-6);
    } else {
        double total;
        float ref_total;
        assert_int_equal(ssl_grad_clip_norm(p, max_norm, &total), SSL_OK);
        snprintf(key, sizeof key, "%s.total", label);
        read_into(f, key, &ref_total, 1);
        assert_float_equal(total, ref_total, 1e-6 * ref_total);
    }
    for (int i = 0; i < ssl_params_count(p); i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        if (in->kind != SSL_PARAM_TRAINABLE || (in->flags & SSL_PARAM_FROZEN))
            continue;
        float ref[16];
        snprintf(key, sizeof key, "%s.%s", label, in->name);
        read_into(f, key, ref, in->t->numel);
        if (tu_count_mismatch(in->t->grad, ref, in->t->numel, 1e-7, 1e-6, key))
            fail_msg("clipped gradient %s differs from torch", key);
    }
    assert_memory_equal(fr->t->grad, frozen_g, sizeof frozen_g);
    ssl_params_free(p);
    ssl_st_close(f);
}

static void test_clip_global_norm(void **state)
{
    (void)state;
    clip_case("clip_small", 0);
    clip_case("clip_large", 0);
}

static void test_clip_per_param(void **state)
{
    (void)state;
    clip_case("clip_param", 1);
}

static void test_nonfinite(void **state)
{
    (void)state;
    ssl_params_t *p = ssl_params_create();
    int64_t big[1] = {40000}, s[1] = {3};
    ssl_params_add(p, "a", 1, big, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *fz = ssl_params_add(p, "frozen", 1, s, SSL_PARAM_TRAINABLE, SSL_PARAM_FROZEN);
    ssl_tensor_t *b = ssl_params_add(p, "blocks.1.attn.qkv.weight", 1, big, SSL_PARAM_TRAINABLE, 0);
    ssl_params_zero_grad(p);
    int bad = 7;
    assert_int_equal(ssl_grad_check_finite(p, &bad), SSL_OK);
    assert_int_equal(bad, -1);
    fz->grad[1] = NAN; /* a frozen entry's gradient is never used */
    assert_int_equal(ssl_grad_check_finite(p, &bad), SSL_OK);
    b->grad[33333] = INFINITY;
    b->grad[33334] = NAN;
    assert_int_equal(ssl_grad_check_finite(p, &bad), SSL_ERR_NONFINITE);
    assert_int_equal(bad, 2);
    assert_non_null(strstr(ssl_last_error(), "'blocks.1.attn.qkv.weight'"));
    assert_non_null(strstr(ssl_last_error(), "element 33333 (inf)"));
    /* clipping a non-finite norm leaves gradients alone */
    double total;
    assert_int_equal(ssl_grad_clip_norm(p, 1.0, &total), SSL_ERR_NONFINITE);
    assert_false(isfinite(total));
    assert_true(b->grad[0] == 0.0f && isinf(b->grad[33333]));
    assert_int_equal(ssl_grad_clip_per_param(p, 1.0, NULL), SSL_ERR_NONFINITE);
    assert_non_null(strstr(ssl_last_error(), "blocks.1.attn.qkv.weight"));
    assert_int_equal(ssl_grad_clip_norm(p, 0.0, NULL), SSL_ERR_INVALID);
    ssl_params_free(p);
}

/* The parallel sum of squares gives the same bits for any thread count. */
static void test_clip_deterministic(void **state)
{
    (void)state;
    ssl_params_t *p = ssl_params_create();
    int64_t big[1] = {300001};
    ssl_tensor_t *a = ssl_params_add(p, "a", 1, big, SSL_PARAM_TRAINABLE, 0);
    ssl_rng_fill_normal(a->grad, (size_t)a->numel, 0, 1, 3, 4, 0);
    int nt = ssl_get_num_threads();
    double t1, t2;
    ssl_set_num_threads(1);
    assert_int_equal(ssl_grad_clip_norm(p, 1e9, &t1), SSL_OK);
    ssl_set_num_threads(nt > 1 ? nt : 2);
    assert_int_equal(ssl_grad_clip_norm(p, 1e9, &t2), SSL_OK);
    ssl_set_num_threads(nt);
    assert_memory_equal(&t1, &t2, sizeof t1);
    double ref = 0;
    for (int64_t j = 0; j < a->numel; j++)
        ref += (double)a->grad[j] * a->grad[j];
    assert_float_equal(t1, sqrt(ref), 1e-9 * sqrt(ref));
    ssl_params_free(p);
}

/* ---------------------------------------------------------------- schedules */

static void test_schedules(void **state)
{
    (void)state;
    const double pi = 3.14159265358979323846;
    /* warm-up 0 -> 1.0 over 10 steps, cosine to 0.1 at step 110 */
    ssl_sched_t s = ssl_sched_warmup_cosine(0.0, 1.0, 0.1, 10);
    assert_float_equal(ssl_sched_value(&s, 0, 110), 0.0, 1e-15);
    assert_float_equal(ssl_sched_value(&s, 5, 110), 0.5, 1e-15);
    assert_float_equal(ssl_sched_value(&s, 10, 110), 1.0, 1e-15);  /* end of warm-up */
    assert_float_equal(ssl_sched_value(&s, 60, 110), 0.55, 1e-12); /* middle of the cosine */
    assert_float_equal(ssl_sched_value(&s, 35, 110), 0.1 + 0.45 * (1 + cos(pi / 4)), 1e-12);
    assert_float_equal(ssl_sched_value(&s, 110, 110), 0.1, 1e-15); /* end */
    assert_float_equal(ssl_sched_value(&s, 500, 110), 0.1, 1e-15);
    assert_float_equal(ssl_sched_value(&s, -3, 110), 0.0, 1e-15);
    /* warm-up from a non-zero start (I-JEPA: 2e-4 -> 1e-3 -> 1e-6) */
    s = ssl_sched_warmup_cosine(2e-4, 1e-3, 1e-6, 4);
    assert_float_equal(ssl_sched_value(&s, 2, 20), 6e-4, 1e-15);
    /* warm-up longer than the run: all warm-up, then end */
    s = ssl_sched_warmup_cosine(0.0, 1.0, 0.0, 100);
    assert_float_equal(ssl_sched_value(&s, 50, 80), 0.5, 1e-15);
    /* cosine start -> end: DINO weight decay 0.04 -> 0.4, EMA momentum 0.996 -> 1 */
    s = ssl_sched_cosine(0.04, 0.4);
    assert_float_equal(ssl_sched_value(&s, 0, 1000), 0.04, 1e-15);
    assert_float_equal(ssl_sched_value(&s, 500, 1000), 0.22, 1e-15);
    assert_float_equal(ssl_sched_value(&s, 1000, 1000), 0.4, 1e-15);
    s = ssl_sched_cosine(0.996, 1.0);
    assert_float_equal(ssl_sched_value(&s, 250, 1000), 1.0 - 0.004 * (1 + cos(pi / 4)) / 2, 1e-15);
    /* teacher temperature: linear warm-up 0.04 -> 0.07 over 30 epochs, then constant */
    s = (ssl_sched_t){SSL_SCHED_WARMUP_CONSTANT, 0.04, 0.07, 0.07, 30};
    assert_float_equal(ssl_sched_value(&s, 0, 100), 0.04, 1e-15);
    assert_float_equal(ssl_sched_value(&s, 15, 100), 0.055, 1e-15);
    assert_float_equal(ssl_sched_value(&s, 30, 100), 0.07, 1e-15);
    assert_float_equal(ssl_sched_value(&s, 99, 100), 0.07, 1e-15);
    /* linear (I-JEPA EMA 0.996 -> 1) and constant */
    s = (ssl_sched_t){SSL_SCHED_LINEAR, 0.996, 0.996, 1.0, 0};
    assert_float_equal(ssl_sched_value(&s, 50, 100), 0.998, 1e-15);
    assert_float_equal(ssl_sched_value(&s, 100, 100), 1.0, 1e-15);
    s = ssl_sched_constant(0.3);
    assert_float_equal(ssl_sched_value(&s, 7, 100), 0.3, 0);
    /* total_steps < 1 counts as 1 */
    s = ssl_sched_cosine(1.0, 0.0);
    assert_float_equal(ssl_sched_value(&s, 0, 0), 1.0, 1e-15);
}

static void test_optim_scheds_from_cfg(void **state)
{
    (void)state;
    ssl_optim_cfg_t c;
    ssl_optim_cfg_default(SSL_OPTIM_LARS, &c); /* base_lr 0.4, warm-up 10 epochs */
    assert_float_equal(ssl_optim_peak_lr(&c, 512), 0.8, 1e-15);
    ssl_sched_t s = ssl_optim_lr_sched(&c, 512, 20);
    assert_int_equal(s.kind, SSL_SCHED_WARMUP_COSINE);
    assert_int_equal(s.warmup_steps, 200);
    assert_float_equal(ssl_sched_value(&s, 200, 2000), 0.8, 1e-15);
    assert_float_equal(ssl_sched_value(&s, 2000, 2000), 0.0, 1e-15);
    c.lr_scaled = 0;
    c.lr = 0.3;
    c.schedule = SSL_SCHED_CONSTANT;
    c.warmup_epochs = 0;
    s = ssl_optim_lr_sched(&c, 512, 20);
    assert_float_equal(ssl_sched_value(&s, 1000, 2000), 0.3, 0);
    c.warmup_epochs = 1;
    s = ssl_optim_lr_sched(&c, 512, 20);
    assert_float_equal(ssl_sched_value(&s, 10, 2000), 0.15, 1e-15);
    assert_float_equal(ssl_sched_value(&s, 1000, 2000), 0.3, 0);
    s = ssl_optim_wd_sched(&c);
    assert_float_equal(ssl_sched_value(&s, 1000, 2000), c.weight_decay, 0);
    c.weight_decay = 0.04;
    c.weight_decay_end = 0.4;
    s = ssl_optim_wd_sched(&c);
    assert_float_equal(ssl_sched_value(&s, 1000, 2000), 0.22, 1e-15);
}

/* ---------------------------------------------------------------- EMA */

static ssl_params_t *ema_store(const char *prefix, int extra, int64_t width, float base)
{
    ssl_params_t *p = ssl_params_create();
    char name[64];
    int64_t w2[2] = {3, width}, s1[1] = {3};
    snprintf(name, sizeof name, "%sconv.weight", prefix);
    ssl_tensor_t *a = ssl_params_add(p, name, 2, w2, SSL_PARAM_TRAINABLE, 0);
    snprintf(name, sizeof name, "%sbn.weight", prefix);
    ssl_tensor_t *b = ssl_params_add(p, name, 1, s1, SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY);
    snprintf(name, sizeof name, "%sbn.running_mean", prefix);
    ssl_tensor_t *r = ssl_params_add(p, name, 1, s1, SSL_PARAM_BUFFER, 0);
    if (extra) {
        snprintf(name, sizeof name, "%spredictor.weight", prefix);
        ssl_params_add(p, name, 1, s1, SSL_PARAM_TRAINABLE, 0);
    }
    for (int64_t j = 0; j < a->numel; j++)
        a->data[j] = base + (float)j;
    for (int j = 0; j < 3; j++) {
        b->data[j] = base * 2 + (float)j;
        r->data[j] = base * 3 + (float)j;
    }
    return p;
}

static void test_ema_update(void **state)
{
    (void)state;
    for (int mode = SSL_EMA_BUFFERS_KEEP; mode <= SSL_EMA_BUFFERS_EMA; mode++) {
        ssl_params_t *t = ema_store("", 0, 2, 1.0f), *o = ema_store("", 0, 2, 5.0f);
        ssl_ema_t *e = ssl_ema_create(t, NULL, o, NULL);
        assert_non_null(e);
        const double m = 0.75;
        assert_int_equal(ssl_ema_update(e, m, mode), SSL_OK);
        ssl_tensor_t *tw = ssl_params_get(t, "conv.weight"), *ow = ssl_params_get(o, "conv.weight");
        for (int j = 0; j < 6; j++)
            assert_float_equal(tw->data[j], 0.75 * (1.0 + j) + 0.25 * (5.0 + j), 1e-6);
        ssl_tensor_t *tb = ssl_params_get(t, "bn.weight");
        assert_float_equal(tb->data[1], 0.75 * 3.0 + 0.25 * 11.0, 1e-6);
        ssl_tensor_t *tr = ssl_params_get(t, "bn.running_mean");
        float want = mode == SSL_EMA_BUFFERS_KEEP   ? 3.0f
                     : mode == SSL_EMA_BUFFERS_COPY ? 15.0f
                                                    : (float)(0.75 * 3 + 0.25 * 15);
        assert_float_equal(tr->data[0], want, 1e-6);
        assert_float_equal(ow->data[0], 5.0f, 0); /* online untouched */
        /* m = 1 keeps the target; m = 0 copies the online */
        float before = tw->data[3];
        assert_int_equal(ssl_ema_update(e, 1.0, mode), SSL_OK);
        assert_true(tw->data[3] == before);
        assert_int_equal(ssl_ema_update(e, 0.0, mode), SSL_OK);
        assert_true(tw->data[3] == ow->data[3]);
        assert_int_equal(ssl_ema_update(e, 1.5, mode), SSL_ERR_INVALID);
        assert_int_equal(ssl_ema_update(e, 0.5, 9), SSL_ERR_INVALID);
        ssl_ema_free(e);
        ssl_params_free(t);
        ssl_params_free(o);
    }
}

static void test_ema_copy_and_prefixes(void **state)
{
    (void)state;
    /* target in the same store as the online network, under "target." */
    ssl_params_t *p = ssl_params_create();
    int64_t s[1] = {4};
    ssl_tensor_t *ow = ssl_params_add(p, "encoder.w", 1, s, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *ob = ssl_params_add(p, "encoder.rm", 1, s, SSL_PARAM_BUFFER, 0);
    ssl_params_add(p, "predictor.w", 1, s, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *tw =
        ssl_params_add(p, "target.encoder.w", 1, s, SSL_PARAM_TRAINABLE, SSL_PARAM_FROZEN);
    ssl_tensor_t *tb = ssl_params_add(p, "target.encoder.rm", 1, s, SSL_PARAM_BUFFER, 0);
    for (int j = 0; j < 4; j++) {
        ow->data[j] = (float)j;
        ob->data[j] = (float)(10 + j);
    }
    ssl_ema_t *e = ssl_ema_create(p, "target.encoder.", p, "encoder.");
    assert_non_null(e);
    assert_int_equal(ssl_ema_copy(e), SSL_OK);
    assert_memory_equal(tw->data, ow->data, 4 * sizeof(float));
    assert_memory_equal(tb->data, ob->data, 4 * sizeof(float));
    ow->data[0] = 4.0f;
    assert_int_equal(ssl_ema_update(e, 0.5, SSL_EMA_BUFFERS_KEEP), SSL_OK);
    assert_float_equal(tw->data[0], 2.0f, 0);
    /* a store that grows afterwards is refused */
    ssl_params_add(p, "late", 1, s, SSL_PARAM_TRAINABLE, 0);
    assert_int_equal(ssl_ema_update(e, 0.5, SSL_EMA_BUFFERS_KEEP), SSL_ERR_STATE);
    ssl_ema_free(e);
    ssl_params_free(p);
}

static void test_ema_mismatch(void **state)
{
    (void)state;
    ssl_params_t *t = ema_store("", 0, 2, 1.0f);
    ssl_params_t *wide = ema_store("", 0, 3, 1.0f);
    tu_assert_error(ssl_ema_create(t, NULL, wide, NULL), SSL_ERR_SHAPE, "conv.weight", "(3, 2)",
                    "(3, 3)", NULL);
    ssl_params_t *extra = ema_store("", 1, 2, 1.0f);
    tu_assert_error(ssl_ema_create(t, NULL, extra, NULL), SSL_ERR_SHAPE,
                    "online has 'predictor.weight' with no target entry", NULL);
    tu_assert_error(ssl_ema_create(extra, NULL, t, NULL), SSL_ERR_SHAPE,
                    "target has 'predictor.weight'", NULL);
    ssl_params_t *named = ema_store("m.", 0, 2, 1.0f);
    tu_assert_error(ssl_ema_create(t, NULL, named, NULL), SSL_ERR_SHAPE, "'conv.weight'",
                    "'m.conv.weight'", NULL);
    ssl_ema_t *ok = ssl_ema_create(t, NULL, named, "m.");
    assert_non_null(ok);
    ssl_ema_free(ok);
    tu_assert_error(ssl_ema_create(t, "nothing.", named, "nothing."), SSL_ERR_SHAPE, "no entries",
                    NULL);
    /* same name, parameter vs buffer */
    ssl_params_t *a = ssl_params_create(), *b = ssl_params_create();
    int64_t s[1] = {2};
    ssl_params_add(a, "x", 1, s, SSL_PARAM_TRAINABLE, 0);
    ssl_params_add(b, "x", 1, s, SSL_PARAM_BUFFER, 0);
    tu_assert_error(ssl_ema_create(a, NULL, b, NULL), SSL_ERR_SHAPE, "a parameter", "a buffer",
                    NULL);
    ssl_params_free(a);
    ssl_params_free(b);
    ssl_params_free(t);
    ssl_params_free(wide);
    ssl_params_free(extra);
    ssl_params_free(named);
}

/* ---------------------------------------------------------------- config */

/* Parse doc and read its "optim" (or "target") section with the internal reader. */
static int read_section(const char *json, const char *section, ssl_optim_cfg_t *oc,
                        ssl_ema_cfg_t *ec)
{
    cJSON *doc = ssl_json_parse(json, strlen(json), "run.json");
    assert_non_null(doc);
    int err = 0;
    ssl_cfg_t root = ssl_cfg_root(doc, "run.json", &err, 0);
    ssl_cfg_t c = ssl_cfg_obj(&root, section);
    int st = oc ? ssl__optim_cfg_read(&c, -1, oc) : ssl__ema_cfg_read(&c, ec);
    cJSON_Delete(doc);
    return st;
}

static void expect_cfg_error(const char *json, const char *section, const char *a, const char *b)
{
    ssl_optim_cfg_t oc;
    ssl_ema_cfg_t ec;
    int st = strcmp(section, "optim") == 0 ? read_section(json, section, &oc, NULL)
                                           : read_section(json, section, NULL, &ec);
    if (st != SSL_ERR_CONFIG)
        fail_msg("expected a config error for %s, got %d (%s)", json, st, ssl_last_error());
    if (!strstr(ssl_last_error(), a) || (b && !strstr(ssl_last_error(), b)))
        fail_msg("\"%s\" should mention \"%s\" and \"%s\"", ssl_last_error(), a, b ? b : "");
}

static void test_config_reader(void **state)
{
    (void)state;
    ssl_optim_cfg_t c;
    assert_int_equal(read_section("{\"optim\": {\"name\": \"adamw\", \"base_lr\": 1.5e-4, "
                                  "\"betas\": [0.9, 0.95], \"weight_decay\": 0.04, "
                                  "\"weight_decay_end\": 0.4, \"warmup_epochs\": 40, "
                                  "\"clip_grad_per_param\": 3.0}}",
                                  "optim", &c, NULL),
                     SSL_OK);
    assert_int_equal(c.kind, SSL_OPTIM_ADAMW);
    assert_true(c.lr_scaled);
    assert_true(c.lr == 1.5e-4 && c.beta1 == 0.9 && c.beta2 == 0.95); /* exact doubles */
    assert_true(c.weight_decay_end == 0.4 && c.warmup_epochs == 40);
    assert_true(c.clip_grad_per_param == 3.0 && c.clip_grad == 0);
    assert_true(c.eps == 1e-8 && c.exclude_bias_and_norm);
    assert_int_equal(read_section("{\"optim\": {\"name\": \"lars\", \"lr\": 0.3, \"momentum\": "
                                  "0.8, \"lars_eta\": 0.001, \"lars_clip_lr\": true, "
                                  "\"exclude_bias_and_norm\": false, \"schedule\": "
                                  "\"constant\"}}",
                                  "optim", &c, NULL),
                     SSL_OK);
    assert_true(c.kind == SSL_OPTIM_LARS && !c.lr_scaled && c.lr == 0.3);
    assert_true(c.momentum == 0.8 && c.lars_eta == 0.001 && c.lars_clip);
    assert_true(!c.exclude_bias_and_norm && c.schedule == SSL_SCHED_CONSTANT);
    assert_true(c.weight_decay == 1e-4 && c.weight_decay_end < 0);
    /* defaults per optimizer */
    assert_int_equal(read_section("{\"optim\": {\"name\": \"sgd\"}}", "optim", &c, NULL), SSL_OK);
    assert_true(c.lr_scaled && c.lr == 0.5 && c.momentum == 0.9 && !c.nesterov);

    expect_cfg_error("{\"optim\": {\"name\": \"sgd\", \"momentm\": 0.9}}", "optim", "optim.momentm",
                     "did you mean 'momentum'");
    expect_cfg_error("{\"optim\": {\"name\": \"adamw\", \"momentum\": 0.9}}", "optim",
                     "optim.momentum", "option of sgd and lars, not of adamw");
    expect_cfg_error("{\"optim\": {\"name\": \"adam\"}}", "optim", "optim.name", "adamw");
    expect_cfg_error("{\"optim\": {\"lr\": 0.1}}", "optim", "optim.name", "missing");
    expect_cfg_error("{\"optim\": {\"name\": \"sgd\", \"lr\": 0.1, \"base_lr\": 0.1}}", "optim",
                     "optim.base_lr", "not both");
    expect_cfg_error("{\"optim\": {\"name\": \"sgd\", \"lr\": 0}}", "optim", "optim.lr", NULL);
    expect_cfg_error("{\"optim\": {\"name\": \"sgd\", \"momentum\": 1.0}}", "optim",
                     "optim.momentum", NULL);
    expect_cfg_error("{\"optim\": {\"name\": \"sgd\", \"momentum\": 0, \"nesterov\": true}}",
                     "optim", "optim.nesterov", "momentum > 0");
    expect_cfg_error("{\"optim\": {\"name\": \"adamw\", \"betas\": [0.9]}}", "optim", "optim.betas",
                     NULL);
    expect_cfg_error("{\"optim\": {\"name\": \"adamw\", \"betas\": [0.9, 1.0]}}", "optim",
                     "optim.betas", "[0, 1)");
    expect_cfg_error("{\"optim\": {\"name\": \"lars\", \"weight_decay\": \"big\"}}", "optim",
                     "optim.weight_decay", "number");
    expect_cfg_error("{\"optim\": {\"name\": \"lars\", \"clip_grad\": 1, "
                     "\"clip_grad_per_param\": 3}}",
                     "optim", "optim.clip_grad_per_param", "not both");
    expect_cfg_error("{\"optim\": 3}", "optim", "optim", "object");

    ssl_ema_cfg_t e;
    assert_int_equal(read_section("{\"target\": {}}", "target", NULL, &e), SSL_OK);
    assert_int_equal(e.momentum.kind, SSL_SCHED_COSINE);
    assert_true(e.momentum.start == 0.996 && e.momentum.end == 1.0);
    assert_int_equal(e.buffers, SSL_EMA_BUFFERS_KEEP);
    assert_int_equal(read_section("{\"target\": {\"momentum\": 0.99, \"schedule\": \"linear\", "
                                  "\"buffers\": \"copy\"}}",
                                  "target", NULL, &e),
                     SSL_OK);
    assert_true(e.momentum.kind == SSL_SCHED_LINEAR && e.momentum.start == 0.99);
    assert_int_equal(e.buffers, SSL_EMA_BUFFERS_COPY);
    expect_cfg_error("{\"target\": {\"momentum\": 1.5}}", "target", "target.momentum", NULL);
    expect_cfg_error("{\"target\": {\"momentum_end\": 1, \"schedule\": \"constant\"}}", "target",
                     "target.momentum_end", NULL);
    expect_cfg_error("{\"target\": {\"buffer\": \"copy\"}}", "target", "target.buffer",
                     "did you mean 'buffers'");

    /* the public JSON entry points */
    const char *j = "{\"name\": \"sgd\", \"lr\": 0.2, \"nesterov\": true}";
    assert_int_equal(ssl_optim_cfg_from_json(j, strlen(j), "optim.json", &c), SSL_OK);
    assert_true(c.nesterov && c.lr == 0.2 && !c.lr_scaled);
    j = "{\"name\": \"sgd\", \"eta\": 1}";
    assert_int_equal(ssl_optim_cfg_from_json(j, strlen(j), "optim.json", &c), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "optim.json"));
    j = "{\"momentum\": 0.99}";
    assert_int_equal(ssl_ema_cfg_from_json(j, strlen(j), "t.json", &e), SSL_OK);
    assert_true(e.momentum.start == 0.99);
}

/* With SSL_CFG_FILL an absent section is written out with every default; reading the resolved
 * document again gives the same configuration. */
static void test_config_resolved_round_trip(void **state)
{
    (void)state;
    const char *json = "{\"data\": {}}";
    cJSON *doc = ssl_json_parse(json, strlen(json), "run.json");
    int err = 0;
    ssl_cfg_t root = ssl_cfg_root(doc, "run.json", &err, SSL_CFG_FILL);
    ssl_cfg_t oc = ssl_cfg_obj(&root, "optim"), tc = ssl_cfg_obj(&root, "target");
    ssl_optim_cfg_t a, b;
    ssl_ema_cfg_t ea, eb;
    assert_int_equal(ssl__optim_cfg_read(&oc, SSL_OPTIM_ADAMW, &a), SSL_OK);
    assert_int_equal(ssl__ema_cfg_read(&tc, &ea), SSL_OK);
    char *text = ssl_json_print(doc);
    assert_non_null(strstr(text, "\"adamw\""));
    assert_non_null(strstr(text, "\"base_lr\""));
    assert_non_null(strstr(text, "\"betas\""));
    assert_non_null(strstr(text, "\"momentum_end\""));
    assert_null(strstr(text, "\"lr\":"));
    cJSON *doc2 = ssl_json_parse(text, strlen(text), "resolved.json");
    int err2 = 0;
    ssl_cfg_t root2 = ssl_cfg_root(doc2, "resolved.json", &err2, 0);
    ssl_cfg_t oc2 = ssl_cfg_obj(&root2, "optim"), tc2 = ssl_cfg_obj(&root2, "target");
    assert_int_equal(ssl__optim_cfg_read(&oc2, -1, &b), SSL_OK);
    assert_int_equal(ssl__ema_cfg_read(&tc2, &eb), SSL_OK);
    assert_memory_equal(&a, &b, sizeof a); /* padding is zero: ssl_optim_cfg_default memsets */
    assert_int_equal(ea.momentum.kind, eb.momentum.kind);
    assert_true(ea.momentum.start == eb.momentum.start && ea.momentum.end == eb.momentum.end);
    assert_int_equal(ea.buffers, eb.buffers);
    free(text);
    cJSON_Delete(doc);
    cJSON_Delete(doc2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trajectories_match_pytorch),
        cmocka_unit_test(test_weight_decay_exclusion),
        cmocka_unit_test(test_lars_excluded_is_sgd),
        cmocka_unit_test(test_state_save_restore),
        cmocka_unit_test(test_optim_errors),
        cmocka_unit_test(test_lr_scale),
        cmocka_unit_test(test_lr_fixed),
        cmocka_unit_test(test_step_only),
        cmocka_unit_test(test_clip_global_norm),
        cmocka_unit_test(test_clip_per_param),
        cmocka_unit_test(test_nonfinite),
        cmocka_unit_test(test_clip_deterministic),
        cmocka_unit_test(test_schedules),
        cmocka_unit_test(test_optim_scheds_from_cfg),
        cmocka_unit_test(test_ema_update),
        cmocka_unit_test(test_ema_copy_and_prefixes),
        cmocka_unit_test(test_ema_mismatch),
        cmocka_unit_test(test_config_reader),
        cmocka_unit_test(test_config_resolved_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
