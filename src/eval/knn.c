/* kNN classification on feature matrices. For each block of test rows one sgemm gives the
 * (B, N_train) dot products; then, in parallel over the block's rows, each product becomes a
 * ranking key on the fly, a bounded heap keeps the max(k) best training rows (most rows are
 * rejected by one vectorised comparison with the heap's worst), the heap is sorted best-first
 * and the votes of every (k, T) setting are accumulated incrementally over that sorted list. */
#include "eval_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_internal.h"

#define KNN_DEFAULT_BLOCK_BYTES ((size_t)64 << 20)

ssl_knn_opts_t ssl_knn_opts_default(void)
{
    return (ssl_knn_opts_t){SSL_KNN_COSINE, SSL_KNN_WEIGHTED, 200, 0.07f, 0};
}

/* ---------------------------------------------------------------- top-k selection */

/* Heap order: the root is the worst kept neighbour. a is worse than b when its key is lower,
 * or equal with a higher training index, so the kept set and its order are those of a stable
 * sort by decreasing key. */
static inline int worse(float ka, int32_t ia, float kb, int32_t ib)
{
    return ka < kb || (ka == kb && ia > ib);
}

static void sift_down(float *hk, int32_t *hi, int n, int i)
{
    float k = hk[i];
    int32_t id = hi[i];
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && worse(hk[c + 1], hi[c + 1], hk[c], hi[c]))
            c++;
        if (!worse(hk[c], hi[c], k, id))
            break;
        hk[i] = hk[c];
        hi[i] = hi[c];
        i = c;
    }
    hk[i] = k;
    hi[i] = id;
}

/* Rows are scanned in chunks: the chunk's keys are computed and compared with the heap's worst
 * in straight-line loops the compiler vectorises; only a chunk holding a better key (rare once
 * the heap is full) is walked element by element. */
#define SEL_CHUNK 32

/* Ranking key of training row j from the raw product s (see knn_run). */
static inline float rank_key(int is_cos, float s, float aux)
{
    return is_cos ? s * aux : s - aux;
}

/* The k best keys of row[0..n) (k <= n), key_j = rank_key(row[j], aux[j]), into hk/hi, best
 * first. */
static void select_topk(int is_cos, const float *row, const float *aux, int64_t n, int k, float *hk,
                        int32_t *hi)
{
    for (int j = 0; j < k; j++) {
        hk[j] = rank_key(is_cos, row[j], aux[j]);
        hi[j] = j;
    }
    for (int j = k / 2 - 1; j >= 0; j--)
        sift_down(hk, hi, k, j);
    float worst = hk[0];
    int64_t j = k;
    float kc[SEL_CHUNK];
    for (; j + SEL_CHUNK <= n; j += SEL_CHUNK) {
        int any = 0;
        if (is_cos) {
            for (int t = 0; t < SEL_CHUNK; t++)
                kc[t] = row[j + t] * aux[j + t];
        } else {
            for (int t = 0; t < SEL_CHUNK; t++)
                kc[t] = row[j + t] - aux[j + t];
        }
        for (int t = 0; t < SEL_CHUNK; t++)
            any |= kc[t] > worst;
        if (!any)
            continue;
        for (int t = 0; t < SEL_CHUNK; t++)
            if (kc[t] > worst) { /* equal keys lose: their index is higher */
                hk[0] = kc[t];
                hi[0] = (int32_t)(j + t);
                sift_down(hk, hi, k, 0);
                worst = hk[0];
            }
    }
    for (; j < n; j++) {
        float kj = rank_key(is_cos, row[j], aux[j]);
        if (kj > worst) {
            hk[0] = kj;
            hi[0] = (int32_t)j;
            sift_down(hk, hi, k, 0);
            worst = hk[0];
        }
    }
    /* Heap sort: repeatedly move the worst to the end, leaving the best at 0. */
    for (int m = k - 1; m > 0; m--) {
        float tk = hk[0];
        int32_t ti = hi[0];
        hk[0] = hk[m];
        hi[0] = hi[m];
        hk[m] = tk;
        hi[m] = ti;
        sift_down(hk, hi, m, 0);
    }
}

/* ---------------------------------------------------------------- voting */

/* Place of class y among the scores: classes with a higher score, or an equal score and a
 * lower index, rank before it. */
static int label_rank(const double *score, int n_classes, int y)
{
    double sy = score[y];
    int r = 0;
    for (int c = 0; c < n_classes; c++)
        r += score[c] > sy || (score[c] == sy && c < y);
    return r;
}

static int32_t argmax_low(const double *score, int n_classes)
{
    int best = 0;
    for (int c = 1; c < n_classes; c++)
        if (score[c] > score[best])
            best = c;
    return best;
}

typedef struct knn_plan {
    const ssl_features_t *train, *test;
    int n_classes;
    int metric, vote;
    int n_k;            /* settings of k, sorted ascending in ks */
    const int *ks;      /* (n_k) sorted */
    const int *k_slot;  /* (n_k) index of ks[i] in the caller's order */
    int n_t;            /* temperatures voted (1 for majority) */
    const float *temps; /* (n_t) */
    int kmax;
} knn_plan_t;

/* Votes of one test row from its kmax neighbours (best first): sets hits[slot * n_t + t] to
 * bit 0 (top-1) and bit 1 (top-5) for every setting; pred (if non-NULL) gets the prediction of
 * the first setting. scratch: n_classes + kmax doubles. */
static void vote_row(const knn_plan_t *p, const float *sim, const int32_t *lab, int32_t y,
                     double *scratch, uint8_t *hits, int32_t *pred)
{
    double *score = scratch;            /* (C) */
    double *w = scratch + p->n_classes; /* (kmax) */
    int C = p->n_classes;
    for (int t = 0; t < p->n_t; t++) {
        if (p->vote == SSL_KNN_MAJORITY) {
            for (int j = 0; j < p->kmax; j++)
                w[j] = 1.0;
        } else {
            double inv_t = 1.0 / p->temps[t], s0 = sim[0];
            for (int j = 0; j < p->kmax; j++)
                w[j] = exp(((double)sim[j] - s0) * inv_t);
        }
        memset(score, 0, (size_t)C * sizeof(double));
        int j = 0;
        for (int i = 0; i < p->n_k; i++) {
            for (; j < p->ks[i]; j++)
                score[lab[j]] += w[j];
            int r = label_rank(score, C, y);
            hits[p->k_slot[i] * p->n_t + t] = (uint8_t)((r == 0) | ((r < 5) << 1));
            if (pred && p->k_slot[i] == 0 && t == 0)
                *pred = argmax_low(score, C);
        }
    }
}

/* ---------------------------------------------------------------- the pass */

static int knn_run(const knn_plan_t *p, size_t block_bytes, int64_t *c1, int64_t *c5, int32_t *pred)
{
    const ssl_features_t *tr = p->train, *te = p->test;
    const int64_t N = tr->n, M = te->n, D = tr->dim;
    const int is_cos = p->metric == SSL_KNN_COSINE;
    const int n_cfg = p->n_k * p->n_t;
    if (!block_bytes)
        block_bytes = KNN_DEFAULT_BLOCK_BYTES;
    int64_t B = (int64_t)(block_bytes / ((size_t)N * sizeof(float)));
    B = B < 1 ? 1 : B > M ? M : B;
    int nth = omp_get_max_threads();
    size_t scratch_n = (size_t)p->n_classes + (size_t)p->kmax;

    float *tr_aux = malloc((size_t)N * sizeof(float)); /* 1/||y|| or ||y||^2 */ // (N)
    float *S = malloc((size_t)B * (size_t)N * sizeof(float));                   // (B, N)
    float *nk = malloc((size_t)nth * p->kmax * sizeof(float));                  // (threads, kmax)
    int32_t *ni = malloc((size_t)nth * p->kmax * sizeof(int32_t));
    int32_t *nl = malloc((size_t)nth * p->kmax * sizeof(int32_t));
    double *scratch = malloc((size_t)nth * scratch_n * sizeof(double));
    uint8_t *hits = malloc((size_t)B * (size_t)n_cfg); // (B, n_cfg)
    if (!tr_aux || !S || !nk || !ni || !nl || !scratch || !hits) {
        free(tr_aux), free(S), free(nk), free(ni), free(nl), free(scratch), free(hits);
        return ssl_set_error(SSL_ERR_NOMEM,
                             "knn: out of memory for a block of %lld x %lld similarities",
                             (long long)B, (long long)N);
    }
    if (is_cos) {
        ssl__eval_inv_norms(tr->x, N, D, tr_aux);
    } else {
#pragma omp parallel for schedule(static) if (N * D > SSL_EVAL_OMP_MIN)
        for (int64_t i = 0; i < N; i++) {
            double s = 0;
            for (int64_t j = 0; j < D; j++)
                s += (double)tr->x[i * D + j] * tr->x[i * D + j];
            tr_aux[i] = (float)s;
        }
    }
    memset(c1, 0, (size_t)n_cfg * sizeof(int64_t));
    memset(c5, 0, (size_t)n_cfg * sizeof(int64_t));

    for (int64_t b0 = 0; b0 < M; b0 += B) {
        int64_t nb = M - b0 < B ? M - b0 : B;
        /* cosine: S = X Y^T; euclidean: S = 2 X Y^T, key = S - ||y||^2 = ||x||^2 - d^2 */
        ssl__sgemm(0, 1, nb, N, D, is_cos ? 1.0f : 2.0f, te->x + b0 * D, D, tr->x, D, 0.0f, S, N);
#pragma omp parallel for schedule(dynamic, 4) if (nb * N > SSL_EVAL_OMP_MIN)
        for (int64_t r = 0; r < nb; r++) {
            int th = omp_get_thread_num();
            const float *row = S + r * N;
            const float *xr = te->x + (b0 + r) * D;
            float *hk = nk + (size_t)th * p->kmax;
            int32_t *hi = ni + (size_t)th * p->kmax;
            int32_t *hl = nl + (size_t)th * p->kmax;
            select_topk(is_cos, row, tr_aux, N, p->kmax, hk, hi);
            double xs = 0;
            for (int64_t j = 0; j < D; j++)
                xs += (double)xr[j] * xr[j];
            if (is_cos) {
                double nr = sqrt(xs), inv = 1.0 / (nr > 1e-12 ? nr : 1e-12);
                for (int j = 0; j < p->kmax; j++)
                    hk[j] = (float)(hk[j] * inv);
            } else {
                for (int j = 0; j < p->kmax; j++) {
                    double d2 = xs - hk[j];
                    hk[j] = (float)-sqrt(d2 > 0 ? d2 : 0);
                }
            }
            for (int j = 0; j < p->kmax; j++)
                hl[j] = tr->labels[hi[j]];
            vote_row(p, hk, hl, te->labels[b0 + r], scratch + (size_t)th * scratch_n,
                     hits + r * n_cfg, pred ? pred + b0 + r : NULL);
        }
        for (int64_t r = 0; r < nb; r++)
            for (int c = 0; c < n_cfg; c++) {
                c1[c] += hits[r * n_cfg + c] & 1;
                c5[c] += hits[r * n_cfg + c] >> 1;
            }
    }
    free(tr_aux), free(S), free(nk), free(ni), free(nl), free(scratch), free(hits);
    return SSL_OK;
}

/* ---------------------------------------------------------------- public entry points */

static int check_common(const char *fn, const ssl_features_t *train, const ssl_features_t *test,
                        int n_classes, const ssl_knn_opts_t *o)
{
    if (n_classes < 1)
        return ssl_set_error(SSL_ERR_INVALID, "%s: n_classes = %d; need >= 1", fn, n_classes);
    if (o->metric != SSL_KNN_COSINE && o->metric != SSL_KNN_EUCLIDEAN)
        return ssl_set_error(SSL_ERR_INVALID, "%s: metric = %d is not cosine (0) or euclidean (1)",
                             fn, o->metric);
    if (o->vote != SSL_KNN_WEIGHTED && o->vote != SSL_KNN_MAJORITY)
        return ssl_set_error(SSL_ERR_INVALID, "%s: vote = %d is not weighted (0) or majority (1)",
                             fn, o->vote);
    int st = ssl__eval_check_features(fn, "train", train, n_classes);
    if (st == SSL_OK)
        st = ssl__eval_check_features(fn, "test", test, n_classes);
    if (st != SSL_OK)
        return st;
    if (train->dim != test->dim)
        return ssl_set_error(
            SSL_ERR_SHAPE, "%s: train (%lld, %lld) and test (%lld, %lld) differ in feature dim", fn,
            (long long)train->n, (long long)train->dim, (long long)test->n, (long long)test->dim);
    if (train->n >= INT32_MAX)
        return ssl_set_error(SSL_ERR_SHAPE, "%s: %lld training rows; at most %d supported", fn,
                             (long long)train->n, INT32_MAX - 1);
    return SSL_OK;
}

int ssl_knn_sweep(const ssl_features_t *train, const ssl_features_t *test, int n_classes,
                  const ssl_knn_opts_t *opts, const int *ks, int n_k, const float *temps, int n_t,
                  ssl_knn_result_t *res)
{
    const char *fn = "knn";
    ssl_knn_opts_t o = opts ? *opts : ssl_knn_opts_default();
    int st = check_common(fn, train, test, n_classes, &o);
    if (st != SSL_OK)
        return st;
    if (!res || !ks || n_k < 1)
        return ssl_set_error(SSL_ERR_INVALID, "%s: need a result array and at least one k", fn);
    int majority = o.vote == SSL_KNN_MAJORITY;
    if (n_t < 0 || (!majority && (n_t < 1 || !temps)) || (n_t > 0 && !temps))
        return ssl_set_error(SSL_ERR_INVALID,
                             "%s: need at least one temperature for weighted votes (n_t = %d)", fn,
                             n_t);
    for (int i = 0; i < n_k; i++)
        if (ks[i] < 1 || ks[i] > train->n)
            return ssl_set_error(SSL_ERR_INVALID,
                                 "%s: k = %d must be in [1, %lld] (the number of training rows)",
                                 fn, ks[i], (long long)train->n);
    for (int j = 0; j < n_t; j++)
        if (!(temps[j] > 0.0f) || !isfinite(temps[j]))
            return ssl_set_error(SSL_ERR_INVALID, "%s: temperature %g must be finite and > 0", fn,
                                 (double)temps[j]);
    int n_out_t = n_t > 0 ? n_t : 1;

    /* ks sorted ascending with their slots; majority votes do not depend on T. */
    int *sorted = malloc((size_t)n_k * 2 * sizeof(int));
    int vote_t = majority ? 1 : n_t;
    int n_cfg = n_k * vote_t;
    int64_t *cnt = malloc((size_t)n_cfg * 2 * sizeof(int64_t));
    int32_t *pred = NULL;
    if (!sorted || !cnt) {
        free(sorted), free(cnt);
        return ssl_set_error(SSL_ERR_NOMEM, "%s: out of memory", fn);
    }
    int *sk = sorted, *slot = sorted + n_k;
    for (int i = 0; i < n_k; i++) { /* insertion sort: grids are short */
        int j = i;
        while (j > 0 && sk[j - 1] > ks[i]) {
            sk[j] = sk[j - 1];
            slot[j] = slot[j - 1];
            j--;
        }
        sk[j] = ks[i];
        slot[j] = i;
    }
    knn_plan_t p = {train, test, n_classes, o.metric, o.vote,     n_k,
                    sk,    slot, vote_t,    temps,    sk[n_k - 1]};
    static const float k_one = 1.0f;
    if (majority)
        p.temps = &k_one;
    if (test->n > 0)
        st = knn_run(&p, o.block_bytes, cnt, cnt + n_cfg, pred);
    else
        memset(cnt, 0, (size_t)n_cfg * 2 * sizeof(int64_t));
    if (st == SSL_OK) {
        double n = test->n > 0 ? (double)test->n : 1.0;
        for (int i = 0; i < n_k; i++)
            for (int j = 0; j < n_out_t; j++) {
                int c = i * vote_t + (majority ? 0 : j);
                ssl_knn_result_t *r = &res[i * n_out_t + j];
                r->k = ks[i];
                r->temperature = n_t > 0 ? temps[j] : 0.0f;
                r->top1 = (double)cnt[c] / n;
                r->top5 = n_classes > 5 ? (double)cnt[n_cfg + c] / n : -1.0;
                r->n = test->n;
            }
    }
    free(sorted);
    free(cnt);
    return st;
}

int ssl_knn_eval(const ssl_features_t *train, const ssl_features_t *test, int n_classes,
                 const ssl_knn_opts_t *opts, ssl_knn_result_t *res, int32_t *pred)
{
    const char *fn = "knn";
    ssl_knn_opts_t o = opts ? *opts : ssl_knn_opts_default();
    int st = check_common(fn, train, test, n_classes, &o);
    if (st != SSL_OK)
        return st;
    if (!res)
        return ssl_set_error(SSL_ERR_INVALID, "%s: result is NULL", fn);
    if (o.k < 1 || o.k > train->n)
        return ssl_set_error(SSL_ERR_INVALID,
                             "%s: k = %d must be in [1, %lld] (the number of training rows)", fn,
                             o.k, (long long)train->n);
    if (o.vote == SSL_KNN_WEIGHTED && (!(o.temperature > 0.0f) || !isfinite(o.temperature)))
        return ssl_set_error(SSL_ERR_INVALID, "%s: temperature %g must be finite and > 0", fn,
                             (double)o.temperature);
    int k = o.k, slot = 0;
    float t = o.vote == SSL_KNN_WEIGHTED ? o.temperature : 1.0f;
    knn_plan_t p = {train, test, n_classes, o.metric, o.vote, 1, &k, &slot, 1, &t, k};
    int64_t cnt[2] = {0, 0};
    if (test->n > 0)
        st = knn_run(&p, o.block_bytes, cnt, cnt + 1, pred);
    if (st != SSL_OK)
        return st;
    double n = test->n > 0 ? (double)test->n : 1.0;
    res->k = k;
    res->temperature = o.vote == SSL_KNN_WEIGHTED ? o.temperature : 0.0f;
    res->top1 = (double)cnt[0] / n;
    res->top5 = n_classes > 5 ? (double)cnt[1] / n : -1.0;
    res->n = test->n;
    return SSL_OK;
}
