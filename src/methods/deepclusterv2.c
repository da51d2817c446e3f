/* DeepCluster-v2 (Caron et al. 2020; facebookresearch/swav main_deepclusterv2.py).
 *
 * The projections z = l2norm(projector(encoder(crop))) of every crop are scored against several
 * sets of prototypes that are not learned: at the start of each epoch k-means over a memory bank
 * of the last epoch's projections sets them (the centroids) and assigns every sample a cluster
 * per set; the loss is the cross-entropy of softmax(z C_h^T / T) against those assignments, the
 * same target for all crops of a sample (ssl_loss_deepclusterv2).
 *
 * The memory bank holds, for each crop of crops_for_assign, the projection of every sample the
 * last epoch saw, slot by slot in the order seen (slot = step in the epoch x batch + row), with
 * the samples' dataset indices beside it; set h clusters bank h mod len(crops_for_assign). The
 * bank is written after every step with the step's projections (taken before the optimizer
 * step, as the official code takes them from the forward). Before the first epoch a
 * forward-only pass over one epoch fills it (the official init_memory: each crop of
 * crops_for_assign through the network in training mode, so BatchNorm statistics move).
 *
 * k-means (cluster_memory): centroids start as K distinct bank rows drawn by a partial
 * Fisher-Yates shuffle from the counter-based RNG (seed, epoch, set); then kmeans_iters times:
 * assign every row to its highest-scoring centroid (bank chunk x centroids^T by sgemm, first
 * maximum on ties), set each non-empty cluster's centroid to its members' mean (summed in
 * double in slot order: deterministic), l2-normalise every centroid; a last assignment. The
 * centroids become prototypes.prototypes<h>.weight (frozen parameters, as the official code
 * never lets their gradient through); samples the bank does not hold get no target (-1).
 * Bank, indices and assignments are buffers, so a run resumed inside an epoch keeps its
 * targets and one resumed at an epoch's start clusters the same bank. */
#include "methods_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dcv2_method {
    ssl_method_t base;
    ssl_mlp_t proj;
    ssl_tensor_t *protos[SSL_DCV2_MAX_HEADS]; /* (K_h, D) frozen: the centroids */
    ssl_tensor_t *bank;                       /* (n_assign, S, D) "loss.memory_embeddings" */
    ssl_tensor_t *bank_index;                 /* (S) "loss.memory_index": dataset index, -1 */
    ssl_tensor_t *assign;                     /* (n_heads, N) "loss.assignments": cluster, -1 */
    int64_t slots, n_data, dim, batch;
    uint64_t seed;
    /* the step's projections (V B, D) and samples, written into the bank after the step */
    ssl_tensor_t *pending;
    int64_t *pending_idx;
    int64_t pending_slot;
} dcv2_method_t;

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    dcv2_method_t *dm = (dcv2_method_t *)m;
    const ssl_loss_cfg_t *L = &m->loss[0];
    ssl_head_cfg_t h;
    if (ssl__method_read_head(m, b, "projector", "swav_projector", &h) != SSL_OK)
        return ssl_last_status();
    h.mlp.in = ssl_encoder_dim(m->enc);
    if (ssl_mlp_init(&dm->proj, b->online, "projector", &h.mlp, b->seed) != SSL_OK)
        return ssl_last_status();
    dm->dim = h.mlp.out;
    dm->seed = b->seed;
    for (int a = 0; a < L->deepclusterv2.n_assign; a++)
        if (L->deepclusterv2.crops_for_assign[a] >= m->n_views)
            return ssl__method_fail(b, "loss", "crops_for_assign",
                                    "crop %d, but the views section makes %d crops (0 to %d)",
                                    L->deepclusterv2.crops_for_assign[a], m->n_views,
                                    m->n_views - 1);
    for (int k = 0; k < L->deepclusterv2.n_heads; k++) {
        char name[64];
        snprintf(name, sizeof name, "prototypes.prototypes%d", k);
        ssl_nn_linear_t lin; /* nn.Linear(feat_dim, K, bias=False); k-means sets it */
        if (ssl_nn_linear_init(&lin, b->online, name, dm->dim, L->deepclusterv2.n_prototypes[k], 0,
                               SSL_INIT_TORCH_DEFAULT, b->seed) != SSL_OK)
            return ssl_last_status();
        snprintf(name, sizeof name, "prototypes.prototypes%d.weight", k);
        if (ssl_params_set_frozen(b->online, name, 1) < 0)
            return ssl_last_status();
        dm->protos[k] = lin.weight;
    }
    if (m->env.steps_per_epoch <= 0) /* run for features only: no training state */
        return SSL_OK;
    dm->batch = m->env.batch_size;
    dm->slots = m->env.steps_per_epoch * dm->batch;
    dm->n_data = b->ds->n;
    for (int k = 0; k < L->deepclusterv2.n_heads; k++)
        if (L->deepclusterv2.n_prototypes[k] > dm->slots)
            return ssl__method_fail(b, "loss", "n_prototypes",
                                    "%d clusters, but the memory bank holds %lld samples (steps "
                                    "per epoch x train.batch_size)",
                                    L->deepclusterv2.n_prototypes[k], (long long)dm->slots);
    const int64_t na = L->deepclusterv2.n_assign, nh = L->deepclusterv2.n_heads;
    dm->bank = ssl_params_add(b->online, "loss.memory_embeddings", 3,
                              (int64_t[]){na, dm->slots, dm->dim}, SSL_PARAM_BUFFER, 0);
    dm->bank_index = dm->bank ? ssl_params_add(b->online, "loss.memory_index", 1,
                                               (int64_t[]){dm->slots}, SSL_PARAM_BUFFER, 0)
                              : NULL;
    dm->assign = dm->bank_index ? ssl_params_add(b->online, "loss.assignments", 2,
                                                 (int64_t[]){nh, dm->n_data}, SSL_PARAM_BUFFER, 0)
                                : NULL;
    if (!dm->assign)
        return ssl_last_status();
    for (int64_t i = 0; i < dm->slots; i++)
        dm->bank_index->data[i] = -1.0f;
    for (int64_t i = 0; i < nh * dm->n_data; i++)
        dm->assign->data[i] = -1.0f;
    return SSL_OK;
}

static int need_bank(const dcv2_method_t *dm)
{
    return dm->bank ? SSL_OK
                    : ssl_set_error(SSL_ERR_STATE, "deepclusterv2: the method was opened to "
                                                   "run, not to train (no memory bank)");
}

/* Row r of the batch into slot `slot` of every bank: z (V B, D) view-major. */
static void bank_write(dcv2_method_t *dm, const float *z, int64_t B, int64_t slot,
                       const int64_t *idx)
{
    const ssl_loss_cfg_t *L = &dm->base.loss[0];
    const int64_t D = dm->dim;
    for (int a = 0; a < L->deepclusterv2.n_assign; a++) {
        const float *src = z + (int64_t)L->deepclusterv2.crops_for_assign[a] * B * D;
        memcpy(dm->bank->data + ((int64_t)a * dm->slots + slot) * D, src,
               sizeof(float) * (size_t)(B * D));
    }
    for (int64_t r = 0; r < B; r++)
        dm->bank_index->data[slot + r] = (float)idx[r];
}

/* The normalised projections of x (B, C, H, W), training mode. */
static ssl_tensor_t *project(dcv2_method_t *dm, ssl_ctx_t *ctx, ssl_tensor_t *x)
{
    ssl_tensor_t *z = ssl_mlp_forward(ctx, &dm->proj, ssl__method_pooled(ctx, dm->base.enc, x), 1);
    return ssl_l2_normalize(ctx, z, 1, 1e-12f);
}

/* The ranks of a data-parallel step (1 for one process): each holds b->size of the batch. */
static int64_t ranks(ssl_ctx_t *ctx)
{
    const ssl_comm_t *c = ssl__ctx_comm(ctx);
    return c ? c->size : 1;
}

/* Several ranks: the dataset indices of every rank's rows in rank order (the whole batch's, as
 * one process sees it), gathered as floats (exact below 2^24, an error above), in the arena;
 * one process: idx itself. */
static const int64_t *gather_index(ssl_ctx_t *ctx, const int64_t *idx, int64_t B)
{
    if (!ssl__ctx_comm(ctx))
        return idx;
    ssl_tensor_t *fi = ssl_tensor_1d(ctx, B);
    if (!fi)
        return NULL;
    for (int64_t r = 0; r < B; r++) {
        if (idx[r] >= (int64_t)1 << 24) {
            ssl_set_error(SSL_ERR_UNSUPPORTED, "deepclusterv2 on several ranks: dataset index "
                          "%lld is beyond 2^24", (long long)idx[r]);
            return NULL;
        }
        fi->data[r] = (float)idx[r];
    }
    ssl_tensor_t *all = ssl__all_gather_nograd(ctx, fi);
    int64_t *out = all ? ssl_arena_alloc(ctx, sizeof(int64_t) * (size_t)all->numel) : NULL;
    if (!out) {
        ssl_set_error(SSL_ERR_NOMEM, "deepclusterv2: out of memory");
        return NULL;
    }
    for (int64_t r = 0; r < all->numel; r++)
        out[r] = (int64_t)all->data[r];
    return out;
}

static int check_batch(const dcv2_method_t *dm, const ssl_batch_t *b, int64_t index, int64_t R)
{
    if (need_bank(dm) != SSL_OK)
        return ssl_last_status();
    if (!b->indices)
        return ssl_set_error(SSL_ERR_INVALID, "deepclusterv2: the batch carries no dataset "
                                              "indices (ssl_batch_t.indices)");
    if (b->size * R != dm->batch || index < 0 || (index + 1) * dm->batch > dm->slots)
        return ssl_set_error(SSL_ERR_INVALID,
                             "deepclusterv2: batch %lld of %lld samples does not fit the memory "
                             "bank (%lld batches of %lld per epoch)",
                             (long long)index, (long long)(b->size * R),
                             (long long)(dm->slots / dm->batch), (long long)dm->batch);
    for (int64_t r = 0; r < b->size; r++)
        if (b->indices[r] < 0 || b->indices[r] >= dm->n_data)
            return ssl_set_error(SSL_ERR_INVALID,
                                 "deepclusterv2: dataset index %lld is not below the %lld "
                                 "training samples",
                                 (long long)b->indices[r], (long long)dm->n_data);
    return SSL_OK;
}

/* The pass before the first epoch (init_memory): each crop of crops_for_assign on its own. */
static int observe(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b)
{
    dcv2_method_t *dm = (dcv2_method_t *)m;
    if (check_batch(dm, b, b->index, ranks(ctx)) != SSL_OK)
        return ssl_last_status();
    const ssl_loss_cfg_t *L = &m->loss[0];
    /* several ranks: every rank's rows (the whole batch), so the banks stay the same */
    const int64_t B = b->size * ranks(ctx), D = dm->dim;
    const int64_t *idx = gather_index(ctx, b->indices, b->size);
    if (!idx)
        return ssl_last_status();
    for (int a = 0; a < L->deepclusterv2.n_assign; a++) {
        ssl_tensor_t *z = ssl__all_gather_nograd(
            ctx, project(dm, ctx, ssl__method_view(b, L->deepclusterv2.crops_for_assign[a])));
        if (!z)
            return ssl_last_status();
        memcpy(dm->bank->data + ((int64_t)a * dm->slots + b->index * B) * D, z->data,
               sizeof(float) * (size_t)(B * D));
    }
    for (int64_t r = 0; r < B; r++)
        dm->bank_index->data[b->index * B + r] = (float)idx[r];
    return SSL_OK;
}

/* k-means of bank X (S, D) into the K rows of C (K, D); asg (S) gets the last assignment. */
static int kmeans(dcv2_method_t *dm, ssl_ctx_t *ctx, const ssl_tensor_t *bank, int a,
                  ssl_tensor_t *C, int iters, uint64_t stream, int32_t *asg, int32_t *perm)
{
    const int64_t S = dm->slots, D = dm->dim, K = C->shape[0];
    const float *X = bank->data + (int64_t)a * S * D;
    /* K distinct rows: the first K of a partial Fisher-Yates shuffle */
    for (int64_t i = 0; i < S; i++)
        perm[i] = (int32_t)i;
    for (int64_t i = 0; i < K; i++) {
        int64_t j = i + (int64_t)(ssl_rng_u32(dm->seed, stream, (uint64_t)i) % (uint64_t)(S - i));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        memcpy(C->data + i * D, X + (int64_t)perm[i] * D, sizeof(float) * (size_t)D);
    }
    /* rows per sgemm: a (chunk, K) score block of at most 2^20 floats */
    const int64_t chunk = (1 << 20) / K < 1 ? 1 : (1 << 20) / K > S ? S : (1 << 20) / K;
    double *sums = calloc((size_t)(K * D), sizeof(double)); // (K, D)
    int64_t *counts = calloc((size_t)K, sizeof(int64_t));   // (K)
    if (!sums || !counts) {
        free(sums);
        free(counts);
        return ssl_set_error(SSL_ERR_NOMEM, "deepclusterv2: out of memory for k-means");
    }
    int st = SSL_OK;
    for (int it = 0; it <= iters && st == SSL_OK; it++) {
        /* E step: every row to its highest-scoring centroid */
        for (int64_t r0 = 0; r0 < S && st == SSL_OK; r0 += chunk) {
            const int64_t n = r0 + chunk <= S ? chunk : S - r0;
            ssl_tensor_t rows = *C; /* a view of bank rows [r0, r0 + n) */
            rows.shape[0] = n;
            rows.numel = n * D;
            rows.data = (float *)X + r0 * D;
            ssl_ctx_reset(ctx);
            ssl_tensor_t *sc = ssl_matmul(ctx, &rows, C, 0, 1); // (n, K)
            if (!sc) {
                st = ssl_last_status();
                break;
            }
            for (int64_t i = 0; i < n; i++) {
                const float *s = sc->data + i * K;
                int64_t best = 0;
                for (int64_t k = 1; k < K; k++)
                    best = s[k] > s[best] ? k : best;
                asg[r0 + i] = (int32_t)best;
            }
        }
        if (st != SSL_OK || it == iters)
            break;
        /* M step: the members' means, then every centroid l2-normalised */
        memset(sums, 0, sizeof(double) * (size_t)(K * D));
        memset(counts, 0, sizeof(int64_t) * (size_t)K);
        for (int64_t r = 0; r < S; r++) {
            double *sk = sums + (int64_t)asg[r] * D;
            for (int64_t d = 0; d < D; d++)
                sk[d] += X[r * D + d];
            counts[asg[r]]++;
        }
        for (int64_t k = 0; k < K; k++) {
            float *c = C->data + k * D;
            for (int64_t d = 0; counts[k] > 0 && d < D; d++)
                c[d] = (float)(sums[k * D + d] / (double)counts[k]);
            double nrm = 0;
            for (int64_t d = 0; d < D; d++)
                nrm += (double)c[d] * c[d];
            nrm = sqrt(nrm);
            nrm = nrm > 1e-12 ? nrm : 1e-12;
            for (int64_t d = 0; d < D; d++)
                c[d] = (float)(c[d] / nrm);
        }
    }
    free(sums);
    free(counts);
    return st;
}

static int before_epoch(ssl_method_t *m, const ssl_step_pos_t *pos)
{
    dcv2_method_t *dm = (dcv2_method_t *)m;
    if (need_bank(dm) != SSL_OK)
        return ssl_last_status();
    const ssl_loss_cfg_t *L = &m->loss[0];
    int64_t empty = 0;
    for (int64_t i = 0; i < dm->slots; i++)
        empty += dm->bank_index->data[i] < 0;
    if (empty)
        return ssl_set_error(SSL_ERR_STATE,
                             "deepclusterv2: %lld of the memory bank's %lld slots are empty at "
                             "the start of epoch %lld: make the forward pass over one epoch "
                             "first (ssl_trainer_observe; ssl_trainer_run makes it)",
                             (long long)empty, (long long)dm->slots, (long long)pos->epoch + 1);
    int32_t *asg = malloc(sizeof(int32_t) * (size_t)dm->slots);  // (S) clusters
    int32_t *perm = malloc(sizeof(int32_t) * (size_t)dm->slots); // (S)
    /* the score blocks of k-means (2^20 floats, or one row of K > 2^20) and sgemm's scratch */
    ssl_ctx_t *ctx = ssl_ctx_create(((size_t)1 << 24) + ((size_t)1 << 20) * 2 * sizeof(float));
    int st =
        asg && perm && ctx ? SSL_OK : ssl_set_error(SSL_ERR_NOMEM, "deepclusterv2: out of memory");
    if (ctx)
        ssl_ctx_set_grad(ctx, 0);
    for (int64_t i = 0; st == SSL_OK && i < L->deepclusterv2.n_heads * dm->n_data; i++)
        dm->assign->data[i] = -1.0f;
    for (int h = 0; st == SSL_OK && h < L->deepclusterv2.n_heads; h++) {
        const uint64_t stream = ssl_rng_stream(0x646376326b6d6e73ull /* "dcv2kmns" */,
                                               (uint64_t)pos->epoch, (uint64_t)h);
        st = kmeans(dm, ctx, dm->bank, h % L->deepclusterv2.n_assign, dm->protos[h],
                    L->deepclusterv2.kmeans_iters, stream, asg, perm);
        for (int64_t i = 0; st == SSL_OK && i < dm->slots; i++)
            dm->assign->data[h * dm->n_data + (int64_t)dm->bank_index->data[i]] = (float)asg[i];
    }
    ssl_ctx_free(ctx);
    free(asg);
    free(perm);
    return st;
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    dcv2_method_t *dm = (dcv2_method_t *)m;
    const ssl_loss_cfg_t *L = &m->loss[0];
    dm->pending = NULL;
    const int64_t index = pos->steps_per_epoch > 0 ? pos->step % pos->steps_per_epoch : 0;
    if (check_batch(dm, b, index, ranks(ctx)) != SSL_OK)
        return NULL;
    int64_t B = b->size;
    /* as SwAV: the crops of one resolution through the backbone as one batch, the head once */
    ssl_tensor_t *z = ssl_l2_normalize(
        ctx,
        ssl_mlp_forward(ctx, &dm->proj, ssl__method_multicrop_pooled(ctx, m->enc, b, m->n_views),
                        1),
        1, 1e-12f); // (V B, D)
    if (!z)
        return NULL;
    int prev = ssl_ctx_set_grad(ctx, 0);
    m->last_z = ssl_slice(ctx, z, 0, 0, B);
    m->last_z2 = ssl_slice(ctx, z, 0, B, B);
    ssl_ctx_set_grad(ctx, prev);
    /* several ranks: the whole batch's projections (gathered with their gradient) and indices:
     * the loss (a mean over the samples with an assignment) and the bank of the whole batch on
     * every rank, as one process computes them */
    const int64_t *indices = gather_index(ctx, b->indices, B);
    z = ssl__method_gather_views(ctx, z, m->n_views);
    if (!indices || !z)
        return NULL;
    B *= ranks(ctx);
    ssl_tensor_t *scores[SSL_DCV2_MAX_HEADS];
    const int32_t *targets[SSL_DCV2_MAX_HEADS];
    for (int h = 0; h < L->deepclusterv2.n_heads; h++) {
        int32_t *t = ssl_arena_alloc(ctx, sizeof(int32_t) * (size_t)B); // (B)
        if (!t)
            return NULL;
        for (int64_t r = 0; r < B; r++)
            t[r] = (int32_t)dm->assign->data[h * dm->n_data + indices[r]];
        targets[h] = t;
        scores[h] = ssl_matmul(ctx, z, dm->protos[h], 0, 1); // (V B, K_h)
    }
    dm->pending_idx = ssl_arena_alloc(ctx, sizeof(int64_t) * (size_t)B);
    if (!dm->pending_idx)
        return NULL;
    memcpy(dm->pending_idx, indices, sizeof(int64_t) * (size_t)B);
    dm->pending_slot = index * B;
    dm->pending = z;
    return ssl_loss_deepclusterv2(ctx, scores, L->deepclusterv2.n_heads, targets, m->n_views,
                                  L->deepclusterv2.temperature);
}

static int after_step(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_step_pos_t *pos)
{
    (void)ctx, (void)pos;
    dcv2_method_t *dm = (dcv2_method_t *)m;
    if (dm->pending)
        bank_write(dm, dm->pending->data, dm->pending->shape[0] / m->n_views, dm->pending_slot,
                   dm->pending_idx);
    dm->pending = NULL;
    return SSL_OK;
}

static const int k_types[] = {SSL_LOSS_DEEPCLUSTERV2, -1};

const ssl_method_def_t ssl__method_deepclusterv2 = {
    .name = "deepclusterv2",
    .loss_types = k_types,
    .size = sizeof(dcv2_method_t),
    .target = SSL_TARGET_NONE,
    .mask_kind = SSL_MASK_NONE,
    .min_global = 2,
    .create = create,
    .before_epoch = before_epoch,
    .observe = observe,
    .loss = loss,
    .after_step = after_step,
};
