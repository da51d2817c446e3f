/* Token masks for masked image modelling and I-JEPA, as sorted int32 index lists.
 *
 * Per-sample draws come from the stream (seed, epoch, sample id) with sequential draw numbers;
 * the I-JEPA block sizes, shared by a batch, from (seed, epoch, batch index). */
#include "data_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TAG_MASK 0x6d61736b73ull       /* "masks" */
#define TAG_MASK_BATCH 0x6d61736b62ull /* "maskb" */

void ssl_mask_opts_default(ssl_mask_opts_t *o, int kind, int64_t grid_h, int64_t grid_w)
{
    if (SSL__IS_NULL(o, __func__))
        return;
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->grid_h = grid_h;
    o->grid_w = grid_w;
    o->ratio = kind == SSL_MASK_SIMMIM      ? 0.6f
               : kind == SSL_MASK_BLOCKWISE ? 0.4f
               : kind == SSL_MASK_IBOT      ? 0.3f
                                            : 0.75f;
    o->block = 2;
    o->min_block = kind == SSL_MASK_IBOT ? 0 : 4;
    o->block_aspect[0] = 0.3f;
    o->block_aspect[1] = 1.0f / 0.3f;
    o->n_targets = 4;
    o->target_scale[0] = 0.15f;
    o->target_scale[1] = 0.2f;
    o->target_aspect[0] = 0.75f;
    o->target_aspect[1] = 1.5f;
    o->context_scale[0] = 0.85f;
    o->context_scale[1] = 1.0f;
    o->context_aspect[0] = 1.0f;
    o->context_aspect[1] = 1.0f;
    o->min_keep = 10;
    o->ratio_var = 0.2f;
    o->prob = 0.5f;
    o->n_views = 2;
}

static int64_t n_masked_of(const ssl_mask_opts_t *o)
{
    int64_t T = o->grid_h * o->grid_w;
    switch (o->kind) {
    case SSL_MASK_RANDOM: return T - (int64_t)nearbyint((double)T * (1.0 - (double)o->ratio));
    case SSL_MASK_SIMMIM: {
        int64_t cells = (o->grid_h / o->block) * (o->grid_w / o->block);
        return (int64_t)ceil((double)cells * (double)o->ratio) * o->block * o->block;
    }
    case SSL_MASK_BLOCKWISE: return (int64_t)nearbyint((double)T * (double)o->ratio);
    default: return 0;
    }
}

static bool range_ok(const float r[2], float lo, float hi)
{
    return r[0] > lo && r[0] <= r[1] && r[1] <= hi;
}

static int validate_ibot(const ssl_mask_opts_t *o)
{
    float lo = o->ratio - o->ratio_var, hi = o->ratio + o->ratio_var;
    if (!(o->ratio > 0.0f && o->ratio < 1.0f && o->ratio_var >= 0.0f && lo >= 0.0f && hi < 1.0f))
        return ssl_set_error(SSL_ERR_CONFIG, "masks.ratio = %g with masks.ratio_var = %g: the "
                             "ratios [%g, %g] must lie in [0, 1)", o->ratio, o->ratio_var, lo, hi);
    if (!(o->prob > 0.0f && o->prob <= 1.0f))
        return ssl_set_error(SSL_ERR_CONFIG, "masks.prob = %g must be in (0, 1]", o->prob);
    if (o->min_block < 0)
        return ssl_set_error(SSL_ERR_CONFIG, "masks.min_block = %lld must be >= 0 (0: iBOT's "
                             "(min(grid) / 3)^2)", (long long)o->min_block);
    if (!range_ok(o->block_aspect, 0.0f, 1e6f))
        return ssl_set_error(SSL_ERR_CONFIG, "masks.block_aspect = (%g, %g) must satisfy 0 < min "
                             "<= max", o->block_aspect[0], o->block_aspect[1]);
    if (o->n_views < 1 || o->n_views > SSL_MAX_VIEWS)
        return ssl_set_error(SSL_ERR_CONFIG, "masks: n_views = %d must be in [1, %d]", o->n_views,
                             SSL_MAX_VIEWS);
    return SSL_OK;
}

int ssl_mask_opts_validate(const ssl_mask_opts_t *o)
{
    if (SSL__IS_NULL(o, __func__))
        return SSL_ERR_INVALID;
    if (o->kind < SSL_MASK_NONE || o->kind > SSL_MASK_IBOT)
        return ssl_set_error(SSL_ERR_CONFIG, "masks.type (kind %d) is not one of none, random, "
                             "simmim, blockwise, multiblock, ibot (0-5)", o->kind);
    if (o->kind == SSL_MASK_NONE)
        return SSL_OK;
    if (o->grid_h <= 0 || o->grid_w <= 0 || o->grid_h > 4096 || o->grid_w > 4096)
        return ssl_set_error(SSL_ERR_CONFIG, "masks: the grid %lld x %lld must be in [1, 4096]",
                             (long long)o->grid_h, (long long)o->grid_w);
    int64_t T = o->grid_h * o->grid_w;
    if (o->kind == SSL_MASK_IBOT)
        return validate_ibot(o);
    if (o->kind != SSL_MASK_MULTIBLOCK) {
        if (!(o->ratio > 0.0f && o->ratio < 1.0f))
            return ssl_set_error(SSL_ERR_CONFIG, "masks.ratio = %g must be in (0, 1)", o->ratio);
        if (o->kind == SSL_MASK_SIMMIM &&
            (o->block <= 0 || o->grid_h % o->block || o->grid_w % o->block))
            return ssl_set_error(SSL_ERR_CONFIG, "masks.block = %d must divide the %lld x %lld "
                                 "token grid", o->block, (long long)o->grid_h,
                                 (long long)o->grid_w);
        if (o->kind == SSL_MASK_BLOCKWISE) {
            if (o->min_block < 1)
                return ssl_set_error(SSL_ERR_CONFIG, "masks.min_block = %lld must be >= 1",
                                     (long long)o->min_block);
            if (!range_ok(o->block_aspect, 0.0f, 1e6f))
                return ssl_set_error(SSL_ERR_CONFIG, "masks.block_aspect = (%g, %g) must satisfy "
                                     "0 < min <= max", o->block_aspect[0], o->block_aspect[1]);
        }
        int64_t nm = n_masked_of(o);
        if (nm <= 0 || nm >= T)
            return ssl_set_error(SSL_ERR_CONFIG, "masks.ratio = %g masks %lld of %lld tokens; at "
                                 "least one token must be masked and one kept", o->ratio,
                                 (long long)nm, (long long)T);
        return SSL_OK;
    }
    if (o->n_targets < 1 || o->n_targets > SSL_MASK_MAX_TARGETS)
        return ssl_set_error(SSL_ERR_CONFIG, "masks.n_targets = %d must be in [1, %d]",
                             o->n_targets, SSL_MASK_MAX_TARGETS);
    if (!range_ok(o->target_scale, 0.0f, 1.0f))
        return ssl_set_error(SSL_ERR_CONFIG, "masks.target_scale = (%g, %g) must satisfy "
                             "0 < min <= max <= 1", o->target_scale[0], o->target_scale[1]);
    if (!range_ok(o->context_scale, 0.0f, 1.0f))
        return ssl_set_error(SSL_ERR_CONFIG, "masks.context_scale = (%g, %g) must satisfy "
                             "0 < min <= max <= 1", o->context_scale[0], o->context_scale[1]);
    if (!range_ok(o->target_aspect, 0.0f, 1e6f))
        return ssl_set_error(SSL_ERR_CONFIG, "masks.target_aspect = (%g, %g) must satisfy "
                             "0 < min <= max", o->target_aspect[0], o->target_aspect[1]);
    if (!range_ok(o->context_aspect, 0.0f, 1e6f))
        return ssl_set_error(SSL_ERR_CONFIG, "masks.context_aspect = (%g, %g) must satisfy "
                             "0 < min <= max", o->context_aspect[0], o->context_aspect[1]);
    if (o->min_keep < 1 || o->min_keep >= T)
        return ssl_set_error(SSL_ERR_CONFIG, "masks.min_keep = %lld must be in [1, %lld) for a "
                             "%lld x %lld grid", (long long)o->min_keep, (long long)T,
                             (long long)o->grid_h, (long long)o->grid_w);
    return SSL_OK;
}

int ssl_masks_alloc(ssl_masks_t *m, const ssl_mask_opts_t *o, int64_t batch)
{
    if (SSL__IS_NULL(m, __func__))
        return SSL_ERR_INVALID;
    memset(m, 0, sizeof *m);
    int rc = ssl_mask_opts_validate(o);
    if (rc != SSL_OK)
        return rc;
    if (batch <= 0)
        return ssl_set_error(SSL_ERR_INVALID, "masks: batch %lld must be > 0", (long long)batch);
    if (SSL__BAD_SIZES(__func__, 2 * sizeof(int32_t), batch, o->grid_h, o->grid_w))
        return SSL_ERR_INVALID;
    m->kind = o->kind;
    if (o->kind == SSL_MASK_NONE)
        return SSL_OK;
    int64_t T = o->grid_h * o->grid_w;
    size_t n = (size_t)(batch * T);
    if (o->kind == SSL_MASK_IBOT) {
        if (SSL__BAD_SIZES(__func__, sizeof(int32_t), batch * o->n_views, o->grid_h, o->grid_w))
            return SSL_ERR_INVALID;
        m->masked = malloc(sizeof(int32_t) * n * (size_t)o->n_views);
        m->counts = malloc(sizeof(int32_t) * (size_t)(batch * o->n_views));
        if (!m->masked || !m->counts) {
            ssl_masks_free(m);
            return ssl_set_error(SSL_ERR_NOMEM, "out of memory for masks of %d x %lld x %lld "
                                 "tokens", o->n_views, (long long)batch, (long long)T);
        }
        m->n_views = o->n_views;
        m->capacity_batch = batch;
        return SSL_OK;
    }
    m->keep = malloc(sizeof(int32_t) * n);
    if (o->kind == SSL_MASK_MULTIBLOCK)
        m->targets = malloc(sizeof(int32_t) * n * (size_t)o->n_targets);
    else
        m->masked = malloc(sizeof(int32_t) * n);
    if (!m->keep || (!m->targets && !m->masked)) {
        ssl_masks_free(m);
        return ssl_set_error(SSL_ERR_NOMEM, "out of memory for masks of %lld x %lld tokens",
                             (long long)batch, (long long)T);
    }
    m->capacity_batch = batch;
    return SSL_OK;
}

void ssl_masks_free(ssl_masks_t *m)
{
    if (!m)
        return;
    free(m->keep);
    free(m->masked);
    free(m->targets);
    free(m->counts);
    memset(m, 0, sizeof *m);
}

/* Sequential draws of one sample. */
typedef struct draws {
    uint64_t seed, stream, next;
} draws_t;

static float d_uniform(draws_t *d) { return ssl_rng_uniform(d->seed, d->stream, d->next++); }
static uint32_t d_u32(draws_t *d) { return ssl_rng_u32(d->seed, d->stream, d->next++); }
/* Uniform integer in [0, n]. */
static int64_t d_int(draws_t *d, int64_t n)
{
    return (int64_t)(((uint64_t)d_u32(d) * (uint64_t)(n + 1)) >> 32);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Mark k of the n candidates (indices into `cand`) chosen uniformly: random 32-bit keys with the
 * index as tie-break, the k smallest win. */
static void choose_k(draws_t *d, const int32_t *cand, int64_t n, int64_t k, uint8_t *mark,
                     uint64_t *keys)
{
    for (int64_t i = 0; i < n; i++)
        keys[i] = (uint64_t)d_u32(d) << 32 | (uint64_t)i;
    qsort(keys, (size_t)n, sizeof *keys, cmp_u64);
    for (int64_t i = 0; i < k; i++)
        mark[cand[keys[i] & 0xffffffffu]] = 1;
}

/* keep <- unmarked tokens, masked <- marked tokens, both ascending. */
static void split_marks(const uint8_t *mark, int64_t T, int32_t *keep, int32_t *masked)
{
    int64_t a = 0, b = 0;
    for (int64_t t = 0; t < T; t++) {
        if (mark[t])
            masked[b++] = (int32_t)t;
        else
            keep[a++] = (int32_t)t;
    }
}

/* The unmarked tokens of the h x w rectangle at (top, lft) of a grid gw wide; set: mark them. */
static int64_t rect(uint8_t *mark, int64_t gw, int64_t top, int64_t lft, int64_t h, int64_t w,
                    int set)
{
    int64_t fresh = 0;
    for (int64_t y = top; y < top + h; y++)
        for (int64_t x = lft; x < lft + w; x++) {
            fresh += !mark[y * gw + x];
            if (set)
                mark[y * gw + x] = 1;
        }
    return fresh;
}

/* BEiT-style rectangles until exactly `target` tokens are marked (the rest, if rectangles stop
 * fitting, are single random tokens). */
static void blockwise(draws_t *d, const ssl_mask_opts_t *o, int64_t target, uint8_t *mark,
                      int32_t *cand, uint64_t *keys)
{
    int64_t gh = o->grid_h, gw = o->grid_w, count = 0;
    double la0 = log((double)o->block_aspect[0]), la1 = log((double)o->block_aspect[1]);
    while (count < target) {
        int64_t left_over = target - count, delta = 0;
        for (int attempt = 0; attempt < 10 && delta == 0; attempt++) {
            double lo = (double)(o->min_block < left_over ? o->min_block : left_over);
            double hi = (double)(o->min_block < left_over ? left_over : o->min_block);
            double area = lo + (hi - lo) * (double)d_uniform(d);
            double ar = exp(la0 + (la1 - la0) * (double)d_uniform(d));
            int64_t h = (int64_t)nearbyint(sqrt(area * ar));
            int64_t w = (int64_t)nearbyint(sqrt(area / ar));
            int64_t top = d_int(d, gh > h ? gh - h : 0), lft = d_int(d, gw > w ? gw - w : 0);
            if (h < 1 || w < 1 || h > gh || w > gw)
                continue;
            int64_t fresh = rect(mark, gw, top, lft, h, w, 0);
            if (fresh == 0 || fresh > left_over)
                continue;
            delta = rect(mark, gw, top, lft, h, w, 1);
        }
        if (delta == 0)
            break;
        count += delta;
    }
    if (count < target) {
        int64_t n = 0;
        for (int64_t t = 0; t < gh * gw; t++)
            if (!mark[t])
                cand[n++] = (int32_t)t;
        choose_k(d, cand, n, target - count, mark, keys);
    }
}

/* iBOT's block masking (ImageFolderMask of bytedance/ibot, BEiT's MaskingGenerator with a float
 * budget): while fewer than `high` tokens are marked, up to 10 tries of a rectangle of area
 * U(low, high - marked), log-uniform aspect, strictly smaller than the grid, placed uniformly;
 * it is taken when it adds between 1 and high - marked new tokens. Stops at the first round of
 * 10 failed tries (no filling: the count may end below high). Returns the tokens marked. */
static int64_t ibot_blocks(draws_t *d, const ssl_mask_opts_t *o, double high, uint8_t *mark)
{
    int64_t gh = o->grid_h, gw = o->grid_w, count = 0;
    int64_t side = gh < gw ? gh : gw;
    double low = o->min_block > 0 ? (double)o->min_block : (double)((side / 3) * (side / 3));
    double la0 = log((double)o->block_aspect[0]), la1 = log((double)o->block_aspect[1]);
    while ((double)count < high) {
        double left_over = high - (double)count;
        int64_t delta = 0;
        for (int attempt = 0; attempt < 10 && delta == 0; attempt++) {
            double area = low + (left_over - low) * (double)d_uniform(d); /* random.uniform */
            double ar = exp(la0 + (la1 - la0) * (double)d_uniform(d));
            int64_t h = (int64_t)nearbyint(sqrt(area * ar));
            int64_t w = (int64_t)nearbyint(sqrt(area / ar));
            if (!(w < gw && h < gh))
                continue;
            int64_t top = d_int(d, gh - h), lft = d_int(d, gw - w);
            int64_t fresh = rect(mark, gw, top, lft, h, w, 0);
            if (!(fresh > 0 && (double)fresh <= left_over))
                continue;
            delta = rect(mark, gw, top, lft, h, w, 1);
        }
        if (delta == 0)
            break;
        count += delta;
    }
    return count;
}

/* IBOT masks: view v of sample b from the stream (seed, epoch, sample id, v + 1), stored
 * sample-major (row b n_views + v), so a shard of the batch is a run of rows. */
static void ibot_masks(const ssl_mask_opts_t *o, ssl_masks_t *m, int64_t batch,
                       const int64_t *ids, uint64_t seed, uint64_t epoch, uint8_t *mark)
{
    int64_t T = o->grid_h * o->grid_w;
    for (int64_t b = 0; b < batch; b++)
        for (int v = 0; v < o->n_views; v++) {
            draws_t d = {seed, ssl_rng_stream(ssl_rng_stream(TAG_MASK, epoch, 0),
                                              (uint64_t)ids[b], (uint64_t)v + 1), 0};
            memset(mark, 0, (size_t)T);
            int64_t count = 0;
            if (d_uniform(&d) < o->prob) {
                double r = o->ratio - o->ratio_var + 2.0 * o->ratio_var * (double)d_uniform(&d);
                count = ibot_blocks(&d, o, r * (double)T, mark);
            }
            int64_t g = b * o->n_views + v;
            int32_t *row = m->masked + (size_t)g * (size_t)T;
            int64_t n = 0;
            for (int64_t t = 0; t < T; t++)
                if (mark[t])
                    row[n++] = (int32_t)t;
            for (int64_t t = n; t < T; t++)
                row[t] = -1;
            m->counts[g] = (int32_t)count;
        }
    m->n_views = o->n_views;
    m->n_masked = o->n_views * T; /* a sample's stride */
    m->n_keep = 0;
    m->n_targets = 0;
    m->n_target = 0;
}

/* I-JEPA block size from a scale and an aspect-ratio range (uniform, as the official collator;
 * which however reuses one uniform draw for both, a quirk not reproduced here). */
static void block_size(draws_t *d, int64_t gh, int64_t gw, const float scale[2],
                       const float aspect[2], int64_t *bh, int64_t *bw)
{
    double s = scale[0] + (scale[1] - scale[0]) * (double)d_uniform(d);
    double ar = aspect[0] + (aspect[1] - aspect[0]) * (double)d_uniform(d);
    double keep = floor((double)(gh * gw) * s);
    int64_t h = (int64_t)nearbyint(sqrt(keep * ar));
    int64_t w = (int64_t)nearbyint(sqrt(keep / ar));
    *bh = h < 1 ? 1 : h > gh ? gh : h;
    *bw = w < 1 ? 1 : w > gw ? gw : w;
}

static int multiblock(const ssl_mask_opts_t *o, ssl_masks_t *m, int64_t batch,
                      const int64_t *ids, uint64_t seed, uint64_t epoch, int64_t batch_index,
                      uint8_t *tmark)
{
    int64_t gh = o->grid_h, gw = o->grid_w, T = gh * gw;
    int M = o->n_targets;
    draws_t bd = {seed, ssl_rng_stream(ssl_rng_stream(TAG_MASK_BATCH, epoch, 0),
                                       (uint64_t)batch_index, 0), 0};
    int64_t ph, pw, eh, ew;
    block_size(&bd, gh, gw, o->target_scale, o->target_aspect, &ph, &pw);
    block_size(&bd, gh, gw, o->context_scale, o->context_aspect, &eh, &ew);
    int64_t n_target = ph * pw, min_ctx = T;
    for (int64_t b = 0; b < batch; b++) {
        draws_t d = {seed, ssl_rng_stream(ssl_rng_stream(TAG_MASK, epoch, 0), (uint64_t)ids[b], 0),
                     0};
        int32_t *ctx = m->keep + b * T;
        int32_t *tg = m->targets + (size_t)b * (size_t)M * (size_t)T;
        int64_t n_ctx = 0;
        /* Targets, then up to 20 context placements; after that new targets (10 rounds); the
         * context never overlaps a target. Last resort: everything but the targets. */
        for (int round = 0; round <= 10; round++) {
            memset(tmark, 0, (size_t)T);
            for (int k = 0; k < M; k++) {
                int64_t top = d_int(&d, gh - ph), lft = d_int(&d, gw - pw), n = 0;
                int32_t *t = tg + (size_t)k * (size_t)T;
                for (int64_t y = top; y < top + ph; y++)
                    for (int64_t x = lft; x < lft + pw; x++) {
                        t[n++] = (int32_t)(y * gw + x);
                        tmark[y * gw + x] = 1;
                    }
            }
            if (round == 10) {
                n_ctx = 0;
                for (int64_t t = 0; t < T; t++)
                    if (!tmark[t])
                        ctx[n_ctx++] = (int32_t)t;
                break;
            }
            for (int tries = 0; tries < 20; tries++) {
                int64_t top = d_int(&d, gh - eh), lft = d_int(&d, gw - ew);
                n_ctx = 0;
                for (int64_t y = top; y < top + eh; y++)
                    for (int64_t x = lft; x < lft + ew; x++)
                        if (!tmark[y * gw + x])
                            ctx[n_ctx++] = (int32_t)(y * gw + x);
                if (n_ctx >= o->min_keep)
                    break;
            }
            if (n_ctx >= o->min_keep)
                break;
        }
        if (n_ctx < o->min_keep)
            return ssl_set_error(SSL_ERR_CONFIG, "I-JEPA masks: %d target blocks of %lld x %lld "
                                 "leave %lld context tokens of a %lld x %lld grid, fewer than "
                                 "masks.min_keep = %lld", M, (long long)ph, (long long)pw,
                                 (long long)n_ctx, (long long)gh, (long long)gw,
                                 (long long)o->min_keep);
        if (n_ctx < min_ctx)
            min_ctx = n_ctx;
    }
    /* Equal lengths across the batch: keep the first min_ctx (lowest) indices of each context,
     * as the official collator's truncation does. Rows move down to stride min_ctx. */
    for (int64_t b = 0; b < batch; b++)
        memmove(m->keep + b * min_ctx, m->keep + b * T, sizeof(int32_t) * (size_t)min_ctx);
    for (int64_t b = 0; b < batch; b++)
        for (int k = 0; k < M; k++)
            memmove(m->targets + ((size_t)b * (size_t)M + (size_t)k) * (size_t)n_target,
                    m->targets + ((size_t)b * (size_t)M + (size_t)k) * (size_t)T,
                    sizeof(int32_t) * (size_t)n_target);
    m->n_keep = min_ctx;
    m->n_masked = 0;
    m->n_targets = M;
    m->n_target = n_target;
    return SSL_OK;
}

int ssl_masks_generate(ssl_masks_t *m, const ssl_mask_opts_t *o, int64_t batch,
                       const int64_t *sample_ids, uint64_t seed, uint64_t epoch,
                       int64_t batch_index)
{
    if (SSL__IS_NULL(m, __func__) || SSL__IS_NULL(o, __func__) ||
        SSL__IS_NULL(sample_ids, __func__))
        return SSL_ERR_INVALID;
    if (o->kind != m->kind)
        return ssl_set_error(SSL_ERR_INVALID, "masks: allocated for kind %d, asked for kind %d",
                             m->kind, o->kind);
    if (batch <= 0 || batch > m->capacity_batch)
        return ssl_set_error(SSL_ERR_INVALID, "masks: batch %lld exceeds the capacity %lld",
                             (long long)batch, (long long)m->capacity_batch);
    int64_t T = o->grid_h * o->grid_w;
    m->batch = batch;
    m->tokens = T;
    if (o->kind == SSL_MASK_NONE)
        return SSL_OK;
    uint8_t *mark = malloc(2 * (size_t)T); /* token marks, then SimMIM cell marks */
    int32_t *cand = malloc(sizeof(int32_t) * (size_t)T);
    uint64_t *keys = malloc(sizeof(uint64_t) * (size_t)T);
    if (!mark || !cand || !keys) {
        free(mark);
        free(cand);
        free(keys);
        return ssl_set_error(SSL_ERR_NOMEM, "out of memory for masks");
    }
    int rc = SSL_OK;
    if (o->kind == SSL_MASK_MULTIBLOCK) {
        rc = multiblock(o, m, batch, sample_ids, seed, epoch, batch_index, mark);
    } else if (o->kind == SSL_MASK_IBOT) {
        if (o->n_views != m->n_views)
            rc = ssl_set_error(SSL_ERR_INVALID, "masks: allocated for %d views, asked for %d",
                               m->n_views, o->n_views);
        else
            ibot_masks(o, m, batch, sample_ids, seed, epoch, mark);
    } else {
        int64_t nm = n_masked_of(o);
        m->n_masked = nm;
        m->n_keep = T - nm;
        m->n_targets = 0;
        m->n_target = 0;
        for (int64_t b = 0; b < batch; b++) {
            draws_t d = {seed, ssl_rng_stream(ssl_rng_stream(TAG_MASK, epoch, 0),
                                              (uint64_t)sample_ids[b], 0), 0};
            memset(mark, 0, (size_t)T);
            if (o->kind == SSL_MASK_RANDOM) {
                for (int64_t t = 0; t < T; t++)
                    cand[t] = (int32_t)t;
                choose_k(&d, cand, T, nm, mark, keys);
            } else if (o->kind == SSL_MASK_SIMMIM) {
                int64_t cw = o->grid_w / o->block, cells = (o->grid_h / o->block) * cw;
                uint8_t *cmark = mark + T; /* cells <= T */
                memset(cmark, 0, (size_t)cells);
                for (int64_t t = 0; t < cells; t++)
                    cand[t] = (int32_t)t;
                choose_k(&d, cand, cells, nm / ((int64_t)o->block * o->block), cmark, keys);
                for (int64_t y = 0; y < o->grid_h; y++)
                    for (int64_t x = 0; x < o->grid_w; x++)
                        mark[y * o->grid_w + x] = cmark[(y / o->block) * cw + x / o->block];
            } else {
                blockwise(&d, o, nm, mark, cand, keys);
            }
            split_marks(mark, T, m->keep + b * m->n_keep, m->masked + b * nm);
        }
    }
    free(mark);
    free(cand);
    free(keys);
    return rc;
}
