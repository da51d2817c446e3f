/* Linear probe: multinomial logistic regression on cached features, trained with the core ops
 * (ssl_linear + ssl_cross_entropy + ssl_backward) in mini-batches, AdamW or SGD with momentum,
 * cosine learning rate with optional linear warmup. Features are standardised on the fly with
 * statistics of the training rows (BatchNorm1d without affine, as MAE's probe), so no copy of
 * the feature matrix is made. A seeded held-out share of train picks the reported epoch. */
#include "eval_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"

#define PROBE_BN_EPS 1e-6
#define PROBE_EVAL_BYTES ((size_t)16 << 20) /* one evaluation chunk of standardised rows */
/* A training step with fewer multiply-adds than this (batch x dim x classes) runs on one thread:
 * the threads would spend the step waiting for each other. */
#define PROBE_SERIAL_MACS ((int64_t)1 << 23)

/* RNG streams of the probe (folded with the caller's seed). */
enum { STREAM_SPLIT = 0x5e11, STREAM_SHUFFLE = 0x5e12, STREAM_INIT = 0x5e13 };

ssl_probe_opts_t ssl_probe_opts_default(void)
{
    ssl_probe_opts_t o;
    memset(&o, 0, sizeof o);
    o.optimizer = SSL_PROBE_ADAMW;
    o.epochs = 10;
    o.batch_size = 256;
    o.lr = 1e-3f;
    o.min_lr = 0.0f;
    o.warmup_epochs = 0;
    o.weight_decay = 1e-4f;
    o.momentum = 0.9f;
    o.beta1 = 0.9f;
    o.beta2 = 0.999f;
    o.eps = 1e-8f;
    o.standardize = 1;
    o.val_fraction = 0.1f;
    o.seed = 0;
    return o;
}

/* Fisher-Yates shuffle of idx[n] driven by the counter RNG at (seed, stream). */
static void shuffle(int64_t *idx, int64_t n, uint64_t seed, uint64_t stream)
{
    for (int64_t i = n - 1; i > 0; i--) {
        uint64_t u = ssl_rng_u32(seed, stream, (uint64_t)i);
        int64_t j = (int64_t)((u * (uint64_t)(i + 1)) >> 32);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

typedef struct probe_data {
    const ssl_features_t *f;
    const float *mean, *inv_std; /* (D) */
} probe_data_t;

/* dst (n, D) = standardised rows rows[0..n) of the features (rows NULL: rows start..start+n). */
static void gather(const probe_data_t *pd, const int64_t *rows, int64_t start, int64_t n,
                   float *dst)
{
    const int64_t D = pd->f->dim;
#pragma omp parallel for schedule(static) if (n * D > SSL_EVAL_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        int64_t r = rows ? rows[start + i] : start + i;
        const float *src = pd->f->x + r * D;
        float *o = dst + i * D;
        for (int64_t j = 0; j < D; j++)
            o[j] = (src[j] - pd->mean[j]) * pd->inv_std[j];
    }
}

/* Top-1 / top-5 accuracy of the classifier on rows[0..n) (or all rows when rows is NULL). */
static int evaluate(ssl_ctx_t *ctx, const probe_data_t *pd, const int64_t *rows, int64_t n,
                    ssl_tensor_t *w, ssl_tensor_t *b, int n_classes, int64_t chunk, double *top1,
                    double *top5)
{
    const int64_t D = pd->f->dim;
    int64_t c1 = 0, c5 = 0;
    int prev = ssl_ctx_set_grad(ctx, 0);
    for (int64_t s = 0; s < n; s += chunk) {
        int64_t nb = n - s < chunk ? n - s : chunk;
        ssl_tensor_t *x = ssl_tensor_2d(ctx, nb, D);
        if (!x) {
            ssl_ctx_set_grad(ctx, prev);
            return ssl_last_status();
        }
        gather(pd, rows, s, nb, x->data);
        ssl_tensor_t *logits = ssl_linear(ctx, x, w, b); // (nb, C)
        if (!logits) {
            ssl_ctx_set_grad(ctx, prev);
            return ssl_last_status();
        }
        for (int64_t i = 0; i < nb; i++) {
            const float *l = logits->data + i * n_classes;
            int64_t r = rows ? rows[s + i] : s + i;
            int y = pd->f->labels[r], rank = 0;
            for (int c = 0; c < n_classes; c++)
                rank += l[c] > l[y] || (l[c] == l[y] && c < y);
            c1 += rank == 0;
            c5 += rank < 5;
        }
        ssl_ctx_reset(ctx);
    }
    ssl_ctx_set_grad(ctx, prev);
    *top1 = n > 0 ? (double)c1 / (double)n : -1.0;
    *top5 = n > 0 && n_classes > 5 ? (double)c5 / (double)n : -1.0;
    return SSL_OK;
}

static double lr_at(const ssl_probe_opts_t *o, int64_t step, int64_t total, int64_t warmup)
{
    if (step < warmup)
        return (double)o->lr * (double)(step + 1) / (double)warmup;
    double prog = total > warmup ? (double)(step - warmup) / (double)(total - warmup) : 1.0;
    return o->min_lr + (o->lr - o->min_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * prog));
}

/* One optimizer step over every trainable parameter; state (2 x n floats) starts at zero. */
static void optim_step(const ssl_probe_opts_t *o, ssl_params_t *p, float *state, int64_t t,
                       double lr)
{
    size_t n;
    float *data = ssl_params_data(p, &n);
    float *grad = ssl_params_grad(p, &n);
    float *m = state, *v = state + n;
    for (int i = 0; i < ssl_params_count(p); i++) {
        const ssl_param_info_t *in = ssl_params_info(p, i);
        if (in->kind != SSL_PARAM_TRAINABLE)
            continue;
        double wd = (in->flags & SSL_PARAM_NO_DECAY) ? 0.0 : o->weight_decay;
        size_t a = in->offset, e = in->offset + (size_t)in->t->numel;
        if (o->optimizer == SSL_PROBE_ADAMW) {
            double b1 = o->beta1, b2 = o->beta2;
            double c1 = 1.0 - pow(b1, (double)t), c2 = 1.0 - pow(b2, (double)t);
            float decay = (float)(1.0 - lr * wd), step = (float)(lr / c1);
            float b1f = (float)b1, b2f = (float)b2, inv_c2 = (float)(1.0 / c2);
            for (size_t j = a; j < e; j++) {
                float g = grad[j];
                m[j] = b1f * m[j] + (1.0f - b1f) * g;
                v[j] = b2f * v[j] + (1.0f - b2f) * g * g;
                data[j] = data[j] * decay - step * m[j] / (sqrtf(v[j] * inv_c2) + o->eps);
            }
        } else {
            float mom = o->momentum, wdf = (float)wd, lrf = (float)lr;
            for (size_t j = a; j < e; j++) {
                float g = grad[j] + wdf * data[j];
                m[j] = mom * m[j] + g;
                data[j] -= lrf * m[j];
            }
        }
    }
}

static int check_opts(const ssl_probe_opts_t *o)
{
    const char *fn = "linear probe";
    if (o->optimizer != SSL_PROBE_ADAMW && o->optimizer != SSL_PROBE_SGD)
        return ssl_set_error(SSL_ERR_INVALID, "%s: optimizer = %d is not adamw (0) or sgd (1)", fn,
                             o->optimizer);
    if (o->epochs < 1 || o->batch_size < 1)
        return ssl_set_error(SSL_ERR_INVALID, "%s: epochs = %d and batch_size = %d must be >= 1",
                             fn, o->epochs, o->batch_size);
    if (!(o->lr > 0.0f) || !isfinite(o->lr) || !(o->min_lr >= 0.0f) || o->min_lr > o->lr)
        return ssl_set_error(SSL_ERR_INVALID,
                             "%s: lr = %g must be finite and > 0, min_lr = %g in [0, lr]", fn,
                             (double)o->lr, (double)o->min_lr);
    if (o->warmup_epochs < 0 || o->warmup_epochs > o->epochs)
        return ssl_set_error(SSL_ERR_INVALID, "%s: warmup_epochs = %d must be in [0, epochs = %d]",
                             fn, o->warmup_epochs, o->epochs);
    if (!(o->weight_decay >= 0.0f) || !isfinite(o->weight_decay))
        return ssl_set_error(SSL_ERR_INVALID, "%s: weight_decay = %g must be finite and >= 0", fn,
                             (double)o->weight_decay);
    if (!(o->momentum >= 0.0f && o->momentum < 1.0f) || !(o->beta1 >= 0.0f && o->beta1 < 1.0f) ||
        !(o->beta2 >= 0.0f && o->beta2 < 1.0f) || !(o->eps > 0.0f))
        return ssl_set_error(
            SSL_ERR_INVALID,
            "%s: momentum = %g, beta1 = %g, beta2 = %g must be in [0, 1) and eps = %g > 0", fn,
            (double)o->momentum, (double)o->beta1, (double)o->beta2, (double)o->eps);
    if (!(o->val_fraction >= 0.0f && o->val_fraction < 1.0f))
        return ssl_set_error(SSL_ERR_INVALID, "%s: val_fraction = %g must be in [0, 1)", fn,
                             (double)o->val_fraction);
    return SSL_OK;
}

/* Per-dimension mean and 1/sqrt(var + eps) (biased variance) over rows[0..n): partial sums over
 * fixed blocks of rows (in parallel), combined in block order. */
#define STATS_ROWS 1024
static int train_stats(const ssl_features_t *f, const int64_t *rows, int64_t n, float *mean,
                       float *inv_std)
{
    const int64_t D = f->dim, nblk = (n + STATS_ROWS - 1) / STATS_ROWS;
    double *part = calloc((size_t)nblk * 2 * (size_t)D, sizeof(double)); // (nblk, 2, D)
    if (!part)
        return ssl_set_error(SSL_ERR_NOMEM, "linear probe: out of memory");
#pragma omp parallel for schedule(static) if (n * D > SSL_EVAL_OMP_MIN)
    for (int64_t bi = 0; bi < nblk; bi++) {
        double *s = part + bi * 2 * D, *q = s + D;
        int64_t e = (bi + 1) * STATS_ROWS < n ? (bi + 1) * STATS_ROWS : n;
        for (int64_t i = bi * STATS_ROWS; i < e; i++) {
            const float *r = f->x + rows[i] * D;
            for (int64_t j = 0; j < D; j++) {
                double v = r[j];
                s[j] += v;
                q[j] += v * v;
            }
        }
    }
    for (int64_t j = 0; j < D; j++) {
        double s = 0, q = 0;
        for (int64_t bi = 0; bi < nblk; bi++) {
            s += part[bi * 2 * D + j];
            q += part[bi * 2 * D + D + j];
        }
        double mu = s / (double)n, var = q / (double)n - mu * mu;
        mean[j] = (float)mu;
        inv_std[j] = (float)(1.0 / sqrt((var > 0 ? var : 0) + PROBE_BN_EPS));
    }
    free(part);
    return SSL_OK;
}

int ssl_linear_probe(const ssl_features_t *train, const ssl_features_t *test, int n_classes,
                     const ssl_probe_opts_t *opts, ssl_probe_result_t *res, float *weight_out,
                     float *bias_out)
{
    const char *fn = "linear probe";
    ssl_probe_opts_t o = opts ? *opts : ssl_probe_opts_default();
    int st = check_opts(&o);
    if (st != SSL_OK)
        return st;
    if (n_classes < 2)
        return ssl_set_error(SSL_ERR_INVALID, "%s: n_classes = %d; need >= 2", fn, n_classes);
    if (!res)
        return ssl_set_error(SSL_ERR_INVALID, "%s: result is NULL", fn);
    st = ssl__eval_check_features(fn, "train", train, n_classes);
    if (st == SSL_OK && test)
        st = ssl__eval_check_features(fn, "test", test, n_classes);
    if (st != SSL_OK)
        return st;
    if (test && test->dim != train->dim)
        return ssl_set_error(
            SSL_ERR_SHAPE, "%s: train (%lld, %lld) and test (%lld, %lld) differ in feature dim", fn,
            (long long)train->n, (long long)train->dim, (long long)test->n, (long long)test->dim);
    const int64_t N = train->n, D = train->dim, C = n_classes;
    const int64_t n_val = (int64_t)llround((double)o.val_fraction * (double)N);
    const int64_t n_tr = N - n_val;
    if (n_tr < 1)
        return ssl_set_error(SSL_ERR_INVALID,
                             "%s: no training rows left (n = %lld, val_fraction = %g)", fn,
                             (long long)N, (double)o.val_fraction);

    const int64_t B = o.batch_size < n_tr ? o.batch_size : n_tr;
    int64_t chunk = (int64_t)(PROBE_EVAL_BYTES / ((size_t)D * sizeof(float)));
    chunk = chunk < B ? B : chunk;
    int64_t *perm = malloc((size_t)N * sizeof(int64_t));     // (N): val rows, then train
    int64_t *order = malloc((size_t)n_tr * sizeof(int64_t)); // (n_tr) this epoch's order
    float *stats = malloc((size_t)D * 2 * sizeof(float));    // mean (D), inv_std (D)
    int keep = weight_out || bias_out;
    float *best_w = keep ? malloc((size_t)(C * D + C) * sizeof(float)) : NULL; // (C*D + C)
    ssl_params_t *params = ssl_params_create();
    ssl_ctx_t *ctx =
        ssl_ctx_create((size_t)chunk * (size_t)(D + 2 * C) * sizeof(float) + ((size_t)1 << 20));
    float *state = NULL;
    if (!perm || !order || !stats || (keep && !best_w) || !params || !ctx) {
        st = ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", fn);
        goto done;
    }
    for (int64_t i = 0; i < N; i++)
        perm[i] = i;
    shuffle(perm, N, o.seed, STREAM_SPLIT);
    const int64_t *val_rows = perm, *tr_rows = perm + n_val;
    float *mean = stats, *inv_std = stats + D;
    if (o.standardize) {
        if ((st = train_stats(train, tr_rows, n_tr, mean, inv_std)) != SSL_OK)
            goto done;
    } else {
        for (int64_t j = 0; j < D; j++) {
            mean[j] = 0.0f;
            inv_std[j] = 1.0f;
        }
    }
    ssl_tensor_t *w =
        ssl_params_add(params, "weight", 2, (int64_t[]){C, D}, SSL_PARAM_TRAINABLE, 0);
    ssl_tensor_t *b =
        ssl_params_add(params, "bias", 1, (int64_t[]){C}, SSL_PARAM_TRAINABLE, SSL_PARAM_NO_DECAY);
    if (!w || !b) {
        st = ssl_last_status();
        goto done;
    }
    ssl_rng_fill_normal(w->data, (size_t)w->numel, 0.0f, 0.01f, o.seed, STREAM_INIT, 0);
    size_t n_par;
    ssl_params_data(params, &n_par);
    state = calloc(n_par * 2, sizeof(float));
    if (!state) {
        st = ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", fn);
        goto done;
    }

    probe_data_t ptr = {train, mean, inv_std};
    probe_data_t pte = {test, mean, inv_std};
    const int64_t spe = (n_tr + B - 1) / B;
    const int64_t total = spe * o.epochs, warmup = spe * o.warmup_epochs;
    int64_t step = 0;
    double best_val = -2.0;
    memset(res, 0, sizeof *res);
    res->n_train = n_tr;
    res->n_val = n_val;
    int32_t *lab = malloc((size_t)B * sizeof(int32_t));
    if (!lab) {
        st = ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", fn);
        goto done;
    }
    ssl_ctx_set_grad(ctx, 1);
    const int threads = ssl_get_num_threads();
    const int serial = B * D * C < PROBE_SERIAL_MACS && threads > 1;
    if (serial)
        ssl_set_num_threads(1);
    for (int epoch = 1; epoch <= o.epochs && st == SSL_OK; epoch++) {
        memcpy(order, tr_rows, (size_t)n_tr * sizeof(int64_t));
        shuffle(order, n_tr, o.seed, ssl_rng_stream(STREAM_SHUFFLE, (uint64_t)epoch, 0));
        double loss_sum = 0;
        for (int64_t s = 0; s < n_tr; s += B, step++) {
            int64_t nb = n_tr - s < B ? n_tr - s : B;
            ssl_tensor_t *x = ssl_tensor_2d(ctx, nb, D); // (nb, D)
            if (!x) {
                st = ssl_last_status();
                break;
            }
            gather(&ptr, order, s, nb, x->data);
            for (int64_t i = 0; i < nb; i++)
                lab[i] = train->labels[order[s + i]];
            ssl_tensor_t *loss = ssl_cross_entropy(ctx, ssl_linear(ctx, x, w, b), lab);
            if (!loss || (st = ssl_backward(ctx, loss)) != SSL_OK) {
                st = loss ? st : ssl_last_status();
                break;
            }
            if (!isfinite(loss->data[0])) {
                st = ssl_set_error(
                    SSL_ERR_NONFINITE,
                    "%s: the loss became %g at epoch %d, step %lld (learning rate %g too high?)",
                    fn, (double)loss->data[0], epoch, (long long)step, (double)o.lr);
                break;
            }
            loss_sum += (double)loss->data[0] * (double)nb;
            optim_step(&o, params, state, step + 1, lr_at(&o, step, total, warmup));
            ssl_params_zero_grad(params);
            ssl_ctx_reset(ctx);
        }
        if (st != SSL_OK)
            break;
        double val1 = -1, val5, te1 = -1, te5 = -1;
        if (n_val > 0)
            st = evaluate(ctx, &ptr, val_rows, n_val, w, b, n_classes, chunk, &val1, &val5);
        if (st == SSL_OK && test && test->n > 0)
            st = evaluate(ctx, &pte, NULL, test->n, w, b, n_classes, chunk, &te1, &te5);
        if (st != SSL_OK)
            break;
        res->train_loss = loss_sum / (double)n_tr;
        res->last_test_top1 = te1;
        if (n_val == 0 || val1 > best_val) {
            best_val = val1;
            res->best_epoch = epoch;
            res->val_top1 = val1;
            res->test_top1 = te1;
            res->test_top5 = te5;
            if (best_w) {
                memcpy(best_w, w->data, (size_t)(C * D) * sizeof(float));
                memcpy(best_w + C * D, b->data, (size_t)C * sizeof(float));
            }
        }
        if (o.on_epoch)
            o.on_epoch(epoch, res->train_loss, val1, te1, o.user);
    }
    free(lab);
    if (serial)
        ssl_set_num_threads(threads);
    if (st == SSL_OK && weight_out)
        memcpy(weight_out, best_w, (size_t)(C * D) * sizeof(float));
    if (st == SSL_OK && bias_out)
        memcpy(bias_out, best_w + C * D, (size_t)C * sizeof(float));
done:
    free(perm);
    free(order);
    free(stats);
    free(best_w);
    free(state);
    ssl_params_free(params);
    ssl_ctx_free(ctx);
    return st;
}
