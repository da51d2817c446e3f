/* Step parity of a method against its PyTorch re-implementation (tests/fixtures/
 * gen_method_fixtures.py): the same initial weights, the same pre-made views (and masks,
 * captions), the config's optimizer, schedules, EMA and state updates for `steps` optimizer
 * steps. Every step's loss must agree to loss_rtol (1e-4 relative unless the fixture states
 * otherwise) and every final parameter, buffer and state tensor of the online and target
 * networks to the fixture's param_atol + param_rtol * max|torch tensor| (max over the tensor).
 *
 *   method_parity FIXTURE.safetensors
 *   method_parity --names CONFIG.json   every parameter the config's method has (online and
 *                                       target): name, shape, trainable/buffer, no_decay, frozen;
 *                                       and the trainer's steps per epoch and total steps
 *
 * The fixture (docs/testing.md, "Step parity"): metadata config (the sslc run config, on the
 * synthetic dataset), steps, param_atol, param_rtol, loss_rtol (optional), captions.S (JSON list
 * of strings, CLIP/SigLIP); tensors init.NAME (every parameter), stepS.viewV (B, C, H, W),
 * stepS.keep / stepS.masked (B, n) and stepS.targets (B, n_targets, n_target) as float
 * indices, stepS.ibot_mask (views, B, T) iBOT's 0/1 token masks, stepS.indices (B) the samples'
 * dataset indices, stepS.noise (B, K) the draws of a method's own noise (the VAE's eps, passed
 * as ssl_batch_t.noise), prepI.viewV and prepI.indices the
 * batches of a forward-only pass before the first step (ssl_trainer_observe: DeepCluster-v2's
 * memory bank), loss (steps), final.NAME; a frozen model the method loads from a checkpoint
 * (BEiT's tokenizer): its tensors tokenizer.NAME and its run config tokenizer_config, written
 * to a temporary checkpoint whose path replaces the config's model.tokenizer.checkpoint.
 * Exit 0 on agreement, 1 otherwise (with the worst tensors), 77 when the fixture file is
 * absent. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ssl/ssl.h"

#define MAX_STEPS 64

static const char *fixture;

static int fail(const char *what)
{
    fprintf(stderr, "%s: %s: %s\n", fixture, what, ssl_last_error());
    return 1;
}

/* Tensor `name` of f as a malloc'd float array, shape into t (ndim, shape); NULL if absent. */
static float *read_tensor(const ssl_st_t *f, const char *name, ssl_tensor_t *t)
{
    int i = ssl_st_find(f, name);
    if (i < 0)
        return NULL;
    const ssl_st_tensor_t *d = ssl_st_tensor(f, i);
    float *x = malloc((size_t)(d->numel > 0 ? d->numel : 1) * sizeof(float));
    if (!x || ssl_st_read_f32(f, i, x, (size_t)d->numel) != SSL_OK) {
        free(x);
        return NULL;
    }
    if (t) {
        memset(t, 0, sizeof *t);
        t->ndim = d->ndim;
        for (int k = 0; k < d->ndim; k++)
            t->shape[k] = d->shape[k];
        t->numel = d->numel;
        t->data = x;
    }
    return x;
}

static double meta_num(const ssl_st_t *f, const char *key, double def)
{
    const char *v = ssl_st_meta(f, key);
    return v ? atof(v) : def;
}

/* float indices (rows of n) -> int32 */
static int32_t *read_index(const ssl_st_t *f, const char *name, int64_t *rows, int64_t *n,
                           int64_t *mid)
{
    ssl_tensor_t t;
    float *x = read_tensor(f, name, &t);
    if (!x)
        return NULL;
    int32_t *idx = malloc((size_t)t.numel * sizeof(int32_t));
    for (int64_t i = 0; idx && i < t.numel; i++)
        idx[i] = (int32_t)lrintf(x[i]);
    *rows = t.shape[0];
    *n = t.shape[t.ndim - 1];
    if (mid)
        *mid = t.ndim == 3 ? t.shape[1] : 0;
    free(x);
    return idx;
}

/* float indices -> int64 (malloc'd), or NULL when the fixture has none */
static int64_t *read_indices64(const ssl_st_t *f, const char *name)
{
    ssl_tensor_t t;
    float *x = read_tensor(f, name, &t);
    if (!x)
        return NULL;
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)t.numel);
    for (int64_t i = 0; idx && i < t.numel; i++)
        idx[i] = (int64_t)llrintf(x[i]);
    free(x);
    return idx;
}

/* The batch "<pre>.viewV" (V = 0, 1, ...; views[] malloc'd, b->n_views 0 when there is none)
 * with "<pre>.indices", the samples' dataset indices (DeepCluster-v2; returned malloc'd, or
 * NULL when absent). */
static int64_t *read_batch(const ssl_st_t *f, const char *pre, ssl_batch_t *b, float **views)
{
    char name[64];
    memset(b, 0, sizeof *b);
    for (int v = 0; v < SSL_MAX_VIEWS; v++) {
        snprintf(name, sizeof name, "%s.view%d", pre, v);
        if (!(views[v] = read_tensor(f, name, &b->views[v])))
            break;
        b->n_views = v + 1;
    }
    b->size = b->n_views ? b->views[0].shape[0] : 0;
    snprintf(name, sizeof name, "%s.indices", pre);
    int64_t *idx = read_indices64(f, name);
    b->indices = idx;
    return idx;
}

/* iBOT's masks "stepS.ibot_mask" (views, B, T) of 0/1 as SSL_MASK_IBOT lists and counts
 * (sample-major: row (b, v)), or 0 when the fixture has none. */
static int read_ibot_masks(const ssl_st_t *f, int s, ssl_masks_t *m)
{
    char name[64];
    ssl_tensor_t t;
    snprintf(name, sizeof name, "step%d.ibot_mask", s);
    float *x = read_tensor(f, name, &t);
    if (!x)
        return 0;
    int64_t G = t.shape[0], B = t.shape[1], T = t.shape[2];
    m->kind = SSL_MASK_IBOT;
    m->batch = m->capacity_batch = B;
    m->tokens = T;
    m->n_masked = G * T;
    m->n_views = (int)G;
    m->masked = malloc(sizeof(int32_t) * (size_t)(G * B * T));
    m->counts = calloc((size_t)(G * B), sizeof(int32_t));
    for (int64_t v = 0; v < G; v++)
        for (int64_t b = 0; b < B; b++) {
            int64_t row = b * G + v;
            for (int64_t i = 0; i < T; i++)
                if (x[(v * B + b) * T + i] > 0.5f)
                    m->masked[row * T + m->counts[row]++] = (int32_t)i;
        }
    free(x);
    return 1;
}

/* The masks of step s, or 0 when the fixture has none. */
static int read_masks(const ssl_st_t *f, int s, ssl_masks_t *m)
{
    char name[64];
    int64_t rows = 0, n = 0, mid = 0;
    memset(m, 0, sizeof *m);
    if (read_ibot_masks(f, s, m))
        return 1;
    snprintf(name, sizeof name, "step%d.keep", s);
    m->keep = read_index(f, name, &rows, &m->n_keep, NULL);
    if (!m->keep)
        return 0;
    m->batch = m->capacity_batch = rows;
    snprintf(name, sizeof name, "step%d.masked", s);
    m->masked = read_index(f, name, &rows, &n, NULL);
    m->n_masked = m->masked ? n : 0;
    snprintf(name, sizeof name, "step%d.targets", s);
    m->targets = read_index(f, name, &rows, &n, &mid);
    if (m->targets) {
        m->kind = SSL_MASK_MULTIBLOCK;
        m->n_targets = (int)mid;
        m->n_target = n;
    } else {
        m->kind = SSL_MASK_RANDOM;
    }
    m->tokens = m->n_keep + m->n_masked;
    return 1;
}

/* BEiT's tokenizer: the fixture's tokenizer.NAME tensors and tokenizer_config as a checkpoint
 * at tmp, and the run config with model.tokenizer.checkpoint = tmp (malloc'd); the config
 * itself (a copy) when the fixture has no tokenizer; NULL on failure. */
static char *with_tokenizer(const ssl_st_t *f, const char *config, char *tmp, size_t n)
{
    const char *tcfg = ssl_st_meta(f, "tokenizer_config");
    if (!tcfg) {
        char *copy = malloc(strlen(config) + 1);
        return copy ? memcpy(copy, config, strlen(config) + 1) : NULL;
    }
    snprintf(tmp, n, "/tmp/method_parity_tokenizer_%ld.safetensors", (long)getpid());
    ssl_st_writer_t *w = ssl_st_writer_create();
    float *data[256] = {0};
    int nd = 0, st = w ? ssl_st_writer_meta(w, "config", tcfg) : SSL_ERR_NOMEM;
    for (int i = 0; st == SSL_OK && i < ssl_st_count(f) && nd < 256; i++) {
        const ssl_st_tensor_t *d = ssl_st_tensor(f, i);
        if (strncmp(d->name, "tokenizer.", 10))
            continue;
        ssl_tensor_t t;
        if (!(data[nd] = read_tensor(f, d->name, &t)))
            st = SSL_ERR_IO;
        else
            st = ssl_st_writer_add(w, d->name + 10, t.ndim, t.shape, data[nd]);
        nd++;
    }
    if (st == SSL_OK)
        st = ssl_st_writer_save(w, tmp);
    ssl_st_writer_free(w);
    for (int i = 0; i < nd; i++)
        free(data[i]);
    cJSON *doc = st == SSL_OK ? cJSON_Parse(config) : NULL;
    cJSON *model = doc ? cJSON_GetObjectItem(doc, "model") : NULL;
    cJSON *tok = model ? cJSON_GetObjectItem(model, "tokenizer") : NULL;
    char *out = NULL;
    if (tok) {
        cJSON_DeleteItemFromObject(tok, "checkpoint");
        cJSON_AddStringToObject(tok, "checkpoint", tmp);
        out = cJSON_PrintUnformatted(doc);
    }
    cJSON_Delete(doc);
    return out;
}

typedef struct worst {
    char name[160];
    double err, scale, moved; /* scale: err as a fraction of the tensor's limit */
} worst_t;

static int list_names(const char *config)
{
    ssl_train_opts_t o = {0};
    o.config_path = config;
    o.no_run_dir = 1;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    if (!t) {
        fprintf(stderr, "%s: %s\n", config, ssl_last_error());
        return 1;
    }
    for (int store = 0; store < 2; store++) {
        ssl_params_t *p = ssl_trainer_params(t, store);
        for (int i = 0; i < ssl_params_count(p); i++) {
            const ssl_param_info_t *in = ssl_params_info(p, i);
            printf("%s [", in->name);
            for (int d = 0; d < in->t->ndim; d++)
                printf("%s%lld", d ? ", " : "", (long long)in->t->shape[d]);
            printf("] %s%s%s\n", in->kind == SSL_PARAM_BUFFER ? "buffer" : "trainable",
                   in->flags & SSL_PARAM_NO_DECAY ? " no_decay" : "",
                   in->flags & SSL_PARAM_FROZEN ? " frozen" : "");
        }
    }
    printf("total_steps %lld\n", (long long)ssl_trainer_total_steps(t));
    ssl_trainer_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--names"))
        return list_names(argv[2]);
    if (argc != 2) {
        fprintf(stderr, "usage: method_parity FIXTURE.safetensors\n");
        return 2;
    }
    fixture = argv[1];
    if (access(fixture, R_OK) != 0) {
        fprintf(stderr, "%s: not found: skipped\n", fixture);
        return 77;
    }
    ssl_st_t *f = ssl_st_open(fixture);
    if (!f)
        return fail("open");
    const char *config = ssl_st_meta(f, "config");
    int steps = (int)meta_num(f, "steps", 0);
    double patol = meta_num(f, "param_atol", -1), prtol = meta_num(f, "param_rtol", -1);
    double lrtol = meta_num(f, "loss_rtol", 1e-4);
    double urtol = meta_num(f, "update_rtol", -1); /* < 0: no bound relative to the update */
    ssl_tensor_t lt;
    float *want_loss = read_tensor(f, "loss", &lt);
    if (!config || steps < 1 || steps > MAX_STEPS || patol < 0 || prtol < 0 || !want_loss ||
        lt.numel != steps) {
        fprintf(stderr, "%s: fixture lacks config, steps, param_atol, param_rtol or loss\n",
                fixture);
        return 1;
    }
    char tok_path[128] = "";
    char *run_config = with_tokenizer(f, config, tok_path, sizeof tok_path);
    if (!run_config)
        return fail("the tokenizer's checkpoint");
    ssl_train_opts_t o = {0};
    o.config_text = run_config;
    o.no_run_dir = 1;
    o.threads = 2;
    ssl_trainer_t *t = ssl_trainer_create(&o);
    if (tok_path[0])
        remove(tok_path);
    free(run_config);
    if (!t)
        return fail("trainer");
    if (ssl_trainer_load_weights(t, fixture, "init.") != SSL_OK)
        return fail("initial weights");
    /* the forward-only pass before the first step (DeepCluster-v2's memory bank): prepI.viewV,
     * prepI.indices, I = 0, 1, ... */
    for (int i = 0;; i++) {
        ssl_batch_t b;
        float *views[SSL_MAX_VIEWS] = {0};
        char pre[32];
        snprintf(pre, sizeof pre, "prep%d", i);
        int64_t *idx = read_batch(f, pre, &b, views);
        if (!b.n_views)
            break;
        b.index = i;
        int st = ssl_trainer_observe(t, &b);
        free(idx);
        for (int v = 0; v < SSL_MAX_VIEWS; v++)
            free(views[v]);
        if (st != SSL_OK) {
            fprintf(stderr, "pass batch %d: ", i);
            return fail("observe");
        }
    }
    int bad = 0;
    printf("%-6s %14s %14s %10s\n", "step", "sslc", "pytorch", "rel");
    for (int s = 0; s < steps; s++) {
        ssl_batch_t b;
        float *views[SSL_MAX_VIEWS] = {0};
        char name[64];
        snprintf(name, sizeof name, "step%d", s);
        int64_t *indices = read_batch(f, name, &b, views);
        b.epoch = ssl_trainer_global_step(t);
        ssl_masks_t masks;
        if (read_masks(f, s, &masks))
            b.masks = &masks;
        /* captions (CLIP/SigLIP) */
        snprintf(name, sizeof name, "captions.%d", s);
        const char *ctext = ssl_st_meta(f, name);
        cJSON *cj = ctext ? cJSON_Parse(ctext) : NULL;
        char **caps = NULL;
        if (cj) {
            int nc = cJSON_GetArraySize(cj);
            caps = calloc((size_t)nc + 1, sizeof(char *));
            for (int i = 0; i < nc; i++)
                caps[i] = cJSON_GetArrayItem(cj, i)->valuestring;
            b.captions = (const char *const *)caps;
        }
        /* the reparameterisation noise (VAE): stepS.noise (B, K) */
        ssl_tensor_t nt;
        snprintf(name, sizeof name, "step%d.noise", s);
        float *noise = read_tensor(f, name, &nt);
        if (noise) {
            b.noise = noise;
            b.noise_dim = nt.ndim == 2 ? nt.shape[1] : -1;
        }
        double L = 0;
        if (ssl_trainer_step(t, &b, &L) != SSL_OK) {
            fprintf(stderr, "step %d: ", s);
            return fail("step");
        }
        double rel = fabs(L - want_loss[s]) / fmax(fabs((double)want_loss[s]), 1e-12);
        printf("%-6d %14.8g %14.8g %10.2e%s\n", s, L, want_loss[s], rel,
               rel > lrtol ? "  MISMATCH" : "");
        bad += rel > lrtol;
        free(caps);
        free(noise);
        free(indices);
        cJSON_Delete(cj);
        ssl_masks_free(&masks);
        for (int v = 0; v < SSL_MAX_VIEWS; v++)
            free(views[v]);
    }
    /* final parameters of both stores */
    worst_t w[5] = {0}; /* the five tensors closest to their limit */
    int n_checked = 0, n_bad = 0;
    for (int store = 0; store < 2; store++) {
        ssl_params_t *p = ssl_trainer_params(t, store);
        for (int i = 0; i < ssl_params_count(p); i++) {
            const ssl_param_info_t *in = ssl_params_info(p, i);
            char name[256];
            snprintf(name, sizeof name, "final.%s", in->name);
            ssl_tensor_t ft;
            float *want = read_tensor(f, name, &ft);
            ssl_tensor_t *have = ssl_params_get(p, in->name);
            if (!want || ft.numel != have->numel) {
                fprintf(stderr, "%s: %s %s\n", fixture, name,
                        want ? "has another size" : "is missing");
                free(want);
                return 1;
            }
            snprintf(name, sizeof name, "init.%s", in->name);
            float *init = read_tensor(f, name, NULL);
            double err = 0, scale = 0, moved = 0;
            for (int64_t k = 0; k < ft.numel; k++) {
                err = fmax(err, fabs((double)have->data[k] - want[k]));
                scale = fmax(scale, fabs((double)want[k]));
                if (init)
                    moved = fmax(moved, fabs((double)want[k] - init[k]));
            }
            free(want);
            free(init);
            n_checked++;
            double ratio = err / (patol + prtol * scale);
            /* the step taken must agree too, not only the weights it was added to */
            if (urtol >= 0)
                ratio = fmax(ratio, err / (patol + urtol * moved));
            if (ratio > 1)
                n_bad++;
            for (int j = 0; j < 5; j++)
                if (!w[j].name[0] || ratio > w[j].scale) {
                    memmove(&w[j + 1], &w[j], (size_t)(4 - j) * sizeof w[0]);
                    snprintf(w[j].name, sizeof w[j].name, "%s", in->name);
                    w[j].err = err;
                    w[j].scale = ratio; /* the fraction of the limit */
                    w[j].moved = moved;
                    break;
                }
        }
    }
    printf("%d tensors after %d steps, %d outside atol %g + rtol %g * max|torch|", n_checked, steps,
           n_bad, patol, prtol);
    if (urtol >= 0)
        printf(" or atol + %g * max|torch update|", urtol);
    printf("; closest to the limit:\n");
    for (int j = 0; j < 5 && w[j].name[0]; j++)
        printf("  %-44s max|diff| %.3e  max|update| %.3e  (%.2f of the limit)\n", w[j].name,
               w[j].err, w[j].moved, w[j].scale);
    ssl_trainer_free(t);
    ssl_st_close(f);
    free(want_loss);
    if (bad || n_bad) {
        fprintf(stderr, "%s: %d loss(es) and %d tensor(s) disagree with PyTorch\n", fixture, bad,
                n_bad);
        return 1;
    }
    return 0;
}
