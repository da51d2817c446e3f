/* Losses of a data-parallel step (issue #20) that couple the samples of every rank: each rank
 * computes the rows of its own samples against every rank's (gathered) rows, as the official
 * multi-GPU code does (SimCLR's and MoCo v3's B x (N B) logits, open_clip's local_loss), so a
 * rank's work and memory grow with N B, not (N B)^2. The loss of a rank is the mean over its own
 * rows; the mean over the ranks (equal parts) is the whole batch's loss, and the gradient is
 * exact when the gathered rows carry theirs (ssl__all_gather: its backward sums over the ranks).
 * With the rows of one process (the *_all arguments the same tensors as the local ones, row0 0)
 * each runs the very ops of the public loss: the same bits. Internal: the trainer's methods call
 * these with the context's comm (core/comm.h). */
#ifndef SSL_LOSSES_RANKS_H
#define SSL_LOSSES_RANKS_H

#include "ssl/losses.h"

/* ssl_sinkhorn over the rows of every rank when ctx has a comm (swav's distributed_sinkhorn,
 * dinov2's sinkhorn_knopp_teacher): the maximum, the total, B (the rows of all ranks) and each
 * iteration's prototype sums are summed over the ranks; returns this rank's rows, which may be
 * 0 (every rank must call it, the same number of times). Without a comm: ssl_sinkhorn. */
ssl_tensor_t *ssl__sinkhorn_ranks(ssl_ctx_t *ctx, const ssl_tensor_t *scores, float epsilon,
                                  int iters);

/* NT-Xent of this rank's z1, z2 (B, D) against every rank's z1_all, z2_all (M, D), in which
 * this rank's rows start at row0: the mean over the 2B queries of the cross-entropy over the 2M
 * keys (itself masked, the positive the other view of its sample). M = B, row0 = 0 and the
 * same tensors: ssl_loss_ntxent. */
ssl_tensor_t *ssl__loss_ntxent_rows(ssl_ctx_t *ctx, ssl_tensor_t *z1, ssl_tensor_t *z2,
                                    ssl_tensor_t *z1_all, ssl_tensor_t *z2_all, int64_t row0,
                                    float temperature);

/* MoCo v3 of this rank's queries q1, q2 (B, D) against every rank's keys k1_all, k2_all (M, D)
 * (detached), positives at row0 + i (moco v3's labels arange(N) + N rank). */
ssl_tensor_t *ssl__loss_moco_v3_rows(ssl_ctx_t *ctx, ssl_tensor_t *q1, ssl_tensor_t *q2,
                                     ssl_tensor_t *k1_all, ssl_tensor_t *k2_all, int64_t row0,
                                     float temperature);

/* CLIP (open_clip ClipLoss local_loss): this rank's images (B, D) against every rank's texts
 * (M, D) and its texts against every rank's images, labels row0 + i, the two cross-entropies'
 * mean. */
ssl_tensor_t *ssl__loss_clip_rows(ssl_ctx_t *ctx, ssl_tensor_t *image, ssl_tensor_t *text,
                                  ssl_tensor_t *image_all, ssl_tensor_t *text_all, int64_t row0,
                                  ssl_tensor_t *logit_scale, float max_logit_scale);

/* SigLIP (open_clip SigLipLoss over ranks): this rank's images (B, D) against every rank's texts
 * (M, D), +1 at (i, row0 + i), -1 elsewhere, -sum log sigmoid / B: the rows of the whole
 * batch's (M, M) pairs that belong to this rank's images. */
ssl_tensor_t *ssl__loss_siglip_rows(ssl_ctx_t *ctx, ssl_tensor_t *image, ssl_tensor_t *text_all,
                                    int64_t row0, ssl_tensor_t *logit_scale,
                                    ssl_tensor_t *logit_bias);

#endif
