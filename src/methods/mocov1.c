/* MoCo v1 (He et al. 2020; facebookresearch/moco main_moco.py without --mlp): queries
 * q = fc(encoder(view 0)), keys k = fc_k(encoder_k(view 1)) from the momentum copy, one way (not
 * symmetrised), logits [q.k, q queue^T] / T against a queue of past keys (ssl_loss_moco), the
 * batch's keys enqueued after the step. The head is one linear layer ("mocov1_projector": the
 * encoder's fc to 128), no MLP.
 *
 * Shuffling BN: with split BatchNorm in the encoder (model.encoder.bn_groups G > 1, standing in
 * for one BatchNorm per GPU), the key encoder's batch is permuted before its forward and the keys
 * put back in order after it, as moco/builder.py's _batch_shuffle_ddp / _batch_unshuffle_ddp do
 * across GPUs: the keys' BN statistics then come from other samples than the queries' of the same
 * images. The permutation is a Fisher-Yates shuffle drawn from (seed, step) by the counter-based
 * RNG, so a run and its resume draw the same ones. */
#include "methods_internal.h"

#include <stdlib.h>

typedef struct mocov1_method {
    ssl_proj_method_t pm; /* fc, its momentum copy, the queue */
    uint64_t seed;
    int shuffle; /* the key encoder's batch is shuffled (split BatchNorm) */
} mocov1_method_t;

static int create(ssl_method_t *m, ssl_method_build_t *b)
{
    mocov1_method_t *mm = (mocov1_method_t *)m;
    int64_t dim = 0;
    if (ssl__proj_create(m, b, "mocov1_projector", NULL, &dim) != SSL_OK ||
        ssl_queue_init(&mm->pm.queue, b->online, "loss.queue", m->loss[0].infonce.queue_size, dim,
                       1, b->seed) != SSL_OK)
        return ssl_last_status();
    mm->pm.has_queue = 1;
    mm->seed = b->seed;
    const ssl_encoder_cfg_t *ec = ssl_encoder_config(m->enc);
    mm->shuffle = ec->kind == SSL_ENC_RESNET && ec->resnet.bn_groups > 1;
    return SSL_OK;
}

/* perm (n): a uniform permutation of 0..n-1 drawn from (seed, step); inv its inverse. */
static void shuffle(uint64_t seed, int64_t step, int64_t n, int32_t *perm, int32_t *inv)
{
    const uint64_t stream =
        ssl_rng_stream(0x6d6f636f76317368ull /* "mocov1sh" */, (uint64_t)step, 0);
    for (int64_t i = 0; i < n; i++)
        perm[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(ssl_rng_u32(seed, stream, (uint64_t)i) % (uint32_t)(i + 1));
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int64_t i = 0; i < n; i++)
        inv[perm[i]] = (int32_t)i;
}

/* The keys of view x (B, C, H, W) in x's row order, no tape; with shuffling the key encoder sees
 * the rows permuted. Several ranks: as _batch_shuffle_ddp, the permutation is of the whole batch
 * (every rank's rows gathered), each rank encodes its slice of the shuffled batch and the keys
 * come back through a gather and the inverse permutation: one process's keys at N times the
 * batch. One process: the gathers return their input and the slice is everything. */
static ssl_tensor_t *keys(mocov1_method_t *mm, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t step)
{
    if (!mm->shuffle)
        return ssl__proj_target_z(&mm->pm, ctx, x);
    const ssl_comm_t *cm = ssl__ctx_comm(ctx);
    const int64_t B = x->shape[0], R = cm ? cm->size : 1, r0 = cm ? cm->rank * B : 0;
    int32_t *perm = ssl_arena_alloc(ctx, sizeof(int32_t) * (size_t)(2 * R * B));
    if (!perm) {
        ssl_set_error(SSL_ERR_NOMEM, "moco_v1: out of memory");
        return NULL;
    }
    int32_t *inv = perm + R * B;
    shuffle(mm->seed, step, R * B, perm, inv);
    int prev = ssl_ctx_set_grad(ctx, 0);
    ssl_tensor_t *rows = ssl_reshape(ctx, ssl__all_gather_nograd(ctx, x), 2,
                                     (int64_t[]){R * B, -1}); // (R B, C H W)
    ssl_tensor_t *xs = ssl_reshape(ctx, ssl_gather_rows(ctx, rows, perm + r0, B), x->ndim,
                                   x->shape);                          // this rank's part
    ssl_tensor_t *ks = ssl__all_gather_nograd(ctx, ssl__proj_target_z(&mm->pm, ctx, xs));
    ssl_tensor_t *k = ssl_gather_rows(ctx, ks, inv + r0, B); // (B, D), x's order
    ssl_ctx_set_grad(ctx, prev);
    return k;
}

static ssl_tensor_t *loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                          const ssl_step_pos_t *pos)
{
    mocov1_method_t *mm = (mocov1_method_t *)m;
    mm->pm.pending_keys = NULL;
    ssl_tensor_t *q = ssl_mlp_forward(ctx, &mm->pm.proj,
                                      ssl__method_pooled(ctx, m->enc, ssl__method_view(b, 0)), 1);
    ssl_tensor_t *k = keys(mm, ctx, ssl__method_view(b, 1), pos->step);
    m->last_z = q;
    m->last_z2 = k;
    mm->pm.pending_keys = ssl__all_gather_nograd(ctx, k); /* every rank's, in rank order */
    return ssl_loss_moco(ctx, q, k, mm->pm.queue.keys, m->loss[0].infonce.temperature);
}

static const int k_types[] = {SSL_LOSS_MOCO_V1, -1};
static const char *const k_ema[] = {"encoder.", "projector.", NULL};

const ssl_method_def_t ssl__method_mocov1 = {
    .name = "mocov1",
    .loss_types = k_types,
    .size = sizeof(mocov1_method_t),
    .target = SSL_TARGET_EMA,
    .mask_kind = SSL_MASK_NONE,
    .min_global = 2,
    .ema_modules = k_ema,
    .create = create,
    .loss = loss,
    .after_step = ssl__proj_push_keys,
};
