/* libssl losses: the self-supervised objectives, each composed from core ops so autograd gives
 * its gradient.
 *
 * Two parts:
 * 1. Functions (ssl_loss_ntxent, ssl_loss_dino, ...): one objective on tensors, returning a
 *    scalar tensor in the context, or NULL with an error naming the loss and the shapes. Like
 *    ops, a NULL input gives NULL and keeps the earlier error. Stop-gradients are applied
 *    inside (targets, keys, teacher outputs and codes are detached), so callers pass the raw
 *    tensors. Constants follow the official implementations; docs/losses.md lists them.
 * 2. Their configuration (ssl_loss_cfg_t): type names, defaults and the strict reader of a
 *    config's loss section ({"type": "dino", ...}). The state a loss keeps across steps (MoCo
 *    queue, DINO center, SwAV queues, CLIP logit scale) belongs to the method that trains it
 *    (src/methods/, docs/methods.md), which also composes weighted lists of losses.
 *
 * Shapes: embeddings (N, D) rows per sample; multi-crop tensors stack the views along rows,
 * view-major ((V * B, K), view v in rows [v B, (v + 1) B)); tokens (B, T, C); images NCHW.
 */
#ifndef SSL_LOSSES_H
#define SSL_LOSSES_H

#include "ssl/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ================================================================ contrastive (InfoNCE) */

/* NT-Xent (SimCLR) over the 2N views: z = [z1; z2] L2-normalised, logits z z^T / temperature
 * with self-similarity masked out, cross-entropy to the other view of the same sample,
 * averaged over all 2N anchors. z1, z2 (N, D). */
SSL_API ssl_tensor_t *ssl_loss_ntxent(ssl_ctx_t *ctx, ssl_tensor_t *z1, ssl_tensor_t *z2,
                                      float temperature);

/* MoCo v2: queries q (N, D) against their positive keys k (N, D) (detached: the momentum
 * encoder's output) and the negatives in `queue` (K, D), rows already L2-normalised (an
 * ssl_queue_t's keys), or NULL for no negatives from a queue. q and k are L2-normalised here.
 * logits [q.k+, q queue^T] / temperature, cross-entropy to index 0, mean over N. */
SSL_API ssl_tensor_t *ssl_loss_moco(ssl_ctx_t *ctx, ssl_tensor_t *q, ssl_tensor_t *k,
                                    ssl_tensor_t *queue, float temperature);

/* MoCo v3: ctr(q1, k2) + ctr(q2, k1), ctr(q, k) = 2 temperature * CE(q k^T / temperature,
 * diagonal) with q, k L2-normalised and the keys (momentum encoder) detached; (N, D) each. */
SSL_API ssl_tensor_t *ssl_loss_moco_v3(ssl_ctx_t *ctx, ssl_tensor_t *q1, ssl_tensor_t *q2,
                                       ssl_tensor_t *k1, ssl_tensor_t *k2, float temperature);

/* A FIFO queue of L2-normalised keys (MoCo negatives, SwAV embedding queue): a ring buffer
 * whose state lives in a parameter store as buffers, so checkpoints save and restore it:
 *   "<name>.queue_keys" (size, dim), "<name>.queue_ptr" () next row to write,
 *   "<name>.queue_len" () rows written so far, saturating at size.
 * ptr and len are stored as floats (exact below 2^24 rows). */
typedef struct ssl_queue {
    ssl_tensor_t *keys; /* (size, dim) */
    ssl_tensor_t *ptr;  /* () */
    ssl_tensor_t *len;  /* () */
} ssl_queue_t;

/* random_init: fill with random unit vectors and mark the queue full (MoCo); else zeros and
 * empty (SwAV uses its queue only once full). Values are drawn from (seed, name). */
SSL_API int ssl_queue_init(ssl_queue_t *q, ssl_params_t *p, const char *name, int64_t size,
                           int64_t dim, int random_init, uint64_t seed);
/* Enqueue the rows of keys (N, dim), L2-normalised, oldest rows overwritten first. Call after
 * the step's backward: the loss of the step reads the queue's data in backward. */
SSL_API int ssl_queue_push(ssl_queue_t *q, const ssl_tensor_t *keys);
SSL_API int64_t ssl_queue_size(const ssl_queue_t *q);  /* capacity */
SSL_API int64_t ssl_queue_count(const ssl_queue_t *q); /* rows filled (== size once full) */

/* ================================================================ regression (BYOL, SimSiam) */

/* BYOL: (2 - 2 cos(p1, z2)) + (2 - 2 cos(p2, z1)), each averaged over the batch; p online
 * predictions, z target projections (detached here). (N, D) each. */
SSL_API ssl_tensor_t *ssl_loss_byol(ssl_ctx_t *ctx, ssl_tensor_t *p1, ssl_tensor_t *p2,
                                    ssl_tensor_t *z1, ssl_tensor_t *z2);
/* SimSiam: -(cos(p1, z2) + cos(p2, z1)) / 2, batch means; z detached here. */
SSL_API ssl_tensor_t *ssl_loss_simsiam(ssl_ctx_t *ctx, ssl_tensor_t *p1, ssl_tensor_t *p2,
                                       ssl_tensor_t *z1, ssl_tensor_t *z2);

/* ================================================================ DINO */

/* Student logits (V * B, K) for V views (the first n_global are the global views, in the
 * teacher's order), teacher logits (n_global * B, K) (detached here), center (K) or (1, K) or
 * NULL. Teacher targets softmax((t - center) / teacher_temp); cross-entropy
 * -sum_k t_i log softmax(s_v / student_temp) over every pair (teacher view i, student view
 * v != i), batch-averaged, then averaged over the pairs. V >= 2, n_global >= 1. */
SSL_API ssl_tensor_t *ssl_loss_dino(ssl_ctx_t *ctx, ssl_tensor_t *student, ssl_tensor_t *teacher,
                                    int n_global, ssl_tensor_t *center, float student_temp,
                                    float teacher_temp);

/* The same with the teacher's targets given (V_t = n_global views of B rows, each a
 * distribution, e.g. Sinkhorn-Knopp codes: DINOv2's sinkhorn_knopp_teacher); detached here. */
SSL_API ssl_tensor_t *ssl_loss_dino_targets(ssl_ctx_t *ctx, ssl_tensor_t *student,
                                            ssl_tensor_t *targets, int n_global,
                                            float student_temp);

/* Teacher temperature schedule of the official code: linear from warmup_temp to temp over
 * warmup_epochs epochs (np.linspace, endpoints included), then temp. `epoch` may be
 * fractional (per-step schedules); warmup_epochs 0 gives temp throughout. A temperature <= 0
 * or a negative epoch: NaN and SSL_ERR_INVALID. */
SSL_API float ssl_dino_teacher_temp(float warmup_temp, float temp, double warmup_epochs,
                                    double epoch);

/* The DINO center: a buffer "<name>.center" (1, dim), zeros, in the store. */
SSL_API int ssl_dino_center_init(ssl_tensor_t **center, ssl_params_t *p, const char *name,
                                 int64_t dim);
/* After the step: center = momentum * center + (1 - momentum) * mean over rows of teacher
 * (N, K). Forward-only (not recorded). */
SSL_API int ssl_dino_center_update(ssl_tensor_t *center, const ssl_tensor_t *teacher,
                                   float momentum);
/* The same from a precomputed batch mean (K) (e.g. all-reduced across ranks). */
SSL_API int ssl_dino_center_update_mean(ssl_tensor_t *center, const float *batch_mean,
                                        float momentum);

/* iBOT's masked-patch loss (main_ibot.py iBOTLoss, patch term). student (M, K): the student's
 * patch logits at the masked tokens, grouped by (view, sample) view-major, counts[g] rows for
 * group g (n_groups = views x batch, the counts sum to M; a group may have none); teacher
 * (M, K): the teacher's logits at the same tokens of the unmasked view (detached here); center
 * (K) or (1, K) or NULL. Per group the mean over its rows of -sum_k softmax((t - center) /
 * teacher_temp) log softmax(s / student_temp) (0 for an empty group), then the mean over the
 * n_groups groups. */
SSL_API ssl_tensor_t *ssl_loss_ibot_patch(ssl_ctx_t *ctx, ssl_tensor_t *student,
                                          ssl_tensor_t *teacher, const int32_t *counts,
                                          int64_t n_groups, ssl_tensor_t *center,
                                          float student_temp, float teacher_temp);

/* The same with the teacher's targets (M, K) given (DINOv2's Sinkhorn-Knopp teacher of the
 * masked tokens); detached here. */
SSL_API ssl_tensor_t *ssl_loss_ibot_patch_targets(ssl_ctx_t *ctx, ssl_tensor_t *student,
                                                  ssl_tensor_t *targets, const int32_t *counts,
                                                  int64_t n_groups, float student_temp);

/* KoLeo (facebookresearch/dinov2 KoLeoLoss): x (N, D), N >= 2, rows L2-normalised (eps 1e-8);
 * for each row its nearest other row nn(i) by inner product (the first on ties);
 * -mean_i log(||x_i - x_nn(i) + 1e-8||_2 + 1e-8) (torch's pairwise_distance adds its eps to the
 * difference). The gradient flows through both rows; the neighbours are not differentiated. */
SSL_API ssl_tensor_t *ssl_loss_koleo(ssl_ctx_t *ctx, ssl_tensor_t *x);

/* ================================================================ SwAV */

/* Sinkhorn-Knopp codes as the official SwAV code computes them: Q = exp(scores / epsilon)^T
 * (K, B), scaled to sum to 1; then `iters` times: rows (prototypes) to 1/K, columns (samples)
 * to 1/B; finally times B. Returned transposed as (B, K): each sample's row sums to 1, each
 * prototype's column to B/K (exactly in the limit). A global maximum is subtracted before exp
 * (it cancels in the first normalisation), so large scores / epsilon do not overflow.
 * Computed in double, forward-only; the result has no gradient. scores (B, K). */
SSL_API ssl_tensor_t *ssl_sinkhorn(ssl_ctx_t *ctx, const ssl_tensor_t *scores, float epsilon,
                                   int iters);

/* The swapped prediction given codes: for each assigned view a (views[a]) and every other
 * view v, -mean_b sum_k codes[a] log softmax(scores_v / temperature); averaged over the
 * V - 1 views, then over the assigned views. scores (V * B, K); codes[a] (B, K) (detached). */
SSL_API ssl_tensor_t *ssl_loss_swav_codes(ssl_ctx_t *ctx, ssl_tensor_t *scores, int n_views,
                                          const int *views, int n_assign,
                                          ssl_tensor_t *const *codes, float temperature);
/* Full SwAV loss: codes by ssl_sinkhorn of each assigned view's scores (detached), with the
 * scores of queued embeddings queue_scores[a] (Q, K) stacked before them when queue_scores is
 * not NULL (only the batch's codes are kept), then ssl_loss_swav_codes. */
SSL_API ssl_tensor_t *ssl_loss_swav(ssl_ctx_t *ctx, ssl_tensor_t *scores, int n_views,
                                    const int *views, int n_assign,
                                    ssl_tensor_t *const *queue_scores, float temperature,
                                    float epsilon, int sinkhorn_iters);

/* ================================================================ DeepCluster-v2 */

#define SSL_DCV2_MAX_HEADS 8 /* sets of prototypes (k-means runs) */

/* DeepCluster-v2 (main_deepclusterv2.py): for each set h of prototypes, the cross-entropy of
 * scores[h] / temperature against the k-means assignments targets[h], mean over the rows with
 * an assignment; then the mean over the n_heads sets. scores[h] (V * B, K_h), view-major (the
 * normalised projections of V crops times the set's prototypes); targets[h] (B): each sample's
 * cluster in [0, K_h), the same for all its crops, or negative for a sample without one (left
 * out, as the official ignore_index -100). A set with no assigned row adds 0 (PyTorch: NaN). */
SSL_API ssl_tensor_t *ssl_loss_deepclusterv2(ssl_ctx_t *ctx, ssl_tensor_t *const *scores,
                                             int n_heads, const int32_t *const *targets,
                                             int n_views, float temperature);

/* ================================================================ redundancy reduction */

/* Named scalar terms of a loss, unweighted, for logging (filled when the pointer is given). */
#define SSL_LOSS_MAX_PARTS 4
typedef struct ssl_loss_parts {
    int n;
    const char *name[SSL_LOSS_MAX_PARTS];
    float value[SSL_LOSS_MAX_PARTS];
} ssl_loss_parts_t;

/* Barlow Twins: c = BN(z1)^T BN(z2) / N with BN the batch standardisation of the official
 * code (BatchNorm1d without affine: batch mean, biased variance, eps 1e-5);
 * scale * (sum_i (1 - c_ii)^2 + lambda sum_{i != j} c_ij^2). Parts: on_diag, off_diag. */
SSL_API ssl_tensor_t *ssl_loss_barlow(ssl_ctx_t *ctx, ssl_tensor_t *z1, ssl_tensor_t *z2,
                                      float lambda, float scale, ssl_loss_parts_t *parts);

typedef struct ssl_vicreg_opts {
    float sim_coeff, std_coeff, cov_coeff; /* 25, 25, 1 */
    float gamma, eps;                      /* 1, 1e-4 */
} ssl_vicreg_opts_t;

/* VICReg as the official code: sim_coeff * mse(z1, z2)
 *   + std_coeff * (mean_d relu(gamma - sqrt(var1 + eps)) + mean_d relu(gamma - sqrt(var2 + eps))) /
 * 2
 *   + cov_coeff * (sum_{i != j} cov1_ij^2 + sum_{i != j} cov2_ij^2) / D,
 * variances and covariances unbiased (N - 1) over the batch. opts NULL: the defaults above.
 * Parts: invariance, variance, covariance (unweighted). N >= 2. */
SSL_API ssl_tensor_t *ssl_loss_vicreg(ssl_ctx_t *ctx, ssl_tensor_t *z1, ssl_tensor_t *z2,
                                      const ssl_vicreg_opts_t *opts, ssl_loss_parts_t *parts);

/* ================================================================ masked image modelling */

/* images (B, C, H, W) -> patches (B, T, p * p * C), T = (H / p) (W / p) in row-major patch
 * order, each patch flattened as (p, p, C) (MAE's 'nhwpqc'). Differentiable. */
SSL_API ssl_tensor_t *ssl_patchify(ssl_ctx_t *ctx, ssl_tensor_t *images, int p);
/* The inverse: patches (B, T, p * p * C) -> images (B, C, height, width). */
SSL_API ssl_tensor_t *ssl_unpatchify(ssl_ctx_t *ctx, ssl_tensor_t *patches, int p, int64_t height,
                                     int64_t width);

/* MAE: mean over the masked patches of the per-patch mean squared error between pred
 * (B, T, P) and target patches (B, T, P) (detached). mask (B, T) holds 1 for a masked (removed)
 * patch and 0 for a visible one (other values are an error; at least one patch masked).
 * norm_pix: the target normalised per patch, (t - mean) / sqrt(var + 1e-6) with the unbiased
 * variance over the patch, as MAE's norm_pix_loss. */
SSL_API ssl_tensor_t *ssl_loss_mae(ssl_ctx_t *ctx, ssl_tensor_t *pred, ssl_tensor_t *target,
                                   const ssl_tensor_t *mask, int norm_pix);
/* The same with the masked patches given as indices idx (B, M) into T. pred is either the
 * full (B, T, P) (rows idx are taken) or only the masked patches (B, M, P) in idx order. */
SSL_API ssl_tensor_t *ssl_loss_mae_idx(ssl_ctx_t *ctx, ssl_tensor_t *pred, ssl_tensor_t *target,
                                       const int32_t *idx, int64_t m, int norm_pix);

/* SimMIM: sum over masked pixels and channels of |pred - images| / (masked pixels + 1e-5) / C,
 * as SimMIM's code. pred, images (B, C, H, W) (images detached); mask (B, h, w) of 0/1 with
 * h | H, w | W (patch mask upsampled to pixels; a (B, H, W) pixel mask works too). */
SSL_API ssl_tensor_t *ssl_loss_simmim(ssl_ctx_t *ctx, ssl_tensor_t *pred, ssl_tensor_t *images,
                                      const ssl_tensor_t *mask);

/* ================================================================ I-JEPA */

typedef enum ssl_regress_kind { SSL_REGRESS_SMOOTH_L1 = 0, SSL_REGRESS_MSE = 1 } ssl_regress_kind_t;

/* I-JEPA: the target encoder's tokens target (B, T, D) (detached here) are layer-normed
 * without affine (eps 1e-5); for each target block b the predictor output preds[b] (B, k[b], D)
 * is regressed onto the normed tokens at idx[b] (B, k[b]) with smooth-L1 (beta) or MSE, mean
 * over the block; the loss is the average over the n_blocks blocks. */
SSL_API ssl_tensor_t *ssl_loss_ijepa(ssl_ctx_t *ctx, ssl_tensor_t *const *preds,
                                     ssl_tensor_t *target, const int32_t *const *idx,
                                     const int64_t *k, int n_blocks, int kind, float beta);

/* ================================================================ data2vec */

/* How data2vec (v1) builds its targets and regresses them (facebookresearch/data2vec_vision,
 * engine_for_cyclical.py; docs/losses.md, "data2vec"). */
typedef struct ssl_data2vec_opts {
    int top_k;         /* the teacher's last k blocks are averaged: 6 (target_layers [6..11]) */
    int instance_norm; /* each block's output instance-normalised over tokens first: 0 */
    int layer_norm;    /* each block's output layer-normed (no affine): 1 */
    int final_norm;    /* their average layer-normed (post_target_layer_norm): 1 */
    int kind;          /* ssl_regress_kind_t: smooth_l1 */
    float beta;        /* smooth L1's beta: 2 (l1_beta) */
} ssl_data2vec_opts_t;

/* data2vec's targets from the teacher's block outputs layers[0..k) (B, T, D): each block's
 * output instance-normalised over its T tokens (opts->instance_norm) and then layer-normed over
 * D (opts->layer_norm), the k averaged, the average layer-normed (opts->final_norm); every norm
 * without affine, eps 1e-5 (F.instance_norm, F.layer_norm). No gradient. (B, T, D). */
SSL_API ssl_tensor_t *ssl_loss_data2vec_targets(ssl_ctx_t *ctx, ssl_tensor_t *const *layers,
                                                int k, const ssl_data2vec_opts_t *opts);
/* data2vec's regression: pred (B, M, D), the student's predictions at the masked tokens
 * idx (B, M) (indices into T), against targets (B, T, D) (detached here) at those tokens:
 * smooth L1 with opts->beta or MSE (opts->kind), the mean over the B M D elements. */
SSL_API ssl_tensor_t *ssl_loss_data2vec(ssl_ctx_t *ctx, ssl_tensor_t *pred, ssl_tensor_t *targets,
                                        const int32_t *idx, int64_t m,
                                        const ssl_data2vec_opts_t *opts);

/* ================================================================ image-text (CLIP, SigLIP) */

/* CLIP: image (N, D) and text (N, D) features L2-normalised; logits = exp(logit_scale) I T^T
 * with logit_scale (a scalar tensor, usually a parameter) clamped to [0, max_logit_scale] in
 * the forward with torch.clamp's gradient (none strictly outside, passed at the bounds);
 * (CE(logits, diag) + CE(logits^T, diag)) / 2. Like open_clip's loop, clamp the parameter itself
 * into [0, max_logit_scale] after each optimizer step (the trainer does), or once it leaves the
 * range it gets no gradient and cannot come back. */
SSL_API ssl_tensor_t *ssl_loss_clip(ssl_ctx_t *ctx, ssl_tensor_t *image, ssl_tensor_t *text,
                                    ssl_tensor_t *logit_scale, float max_logit_scale);
/* SigLIP: -sum_{i,j} log sigmoid(z_ij (exp(t) x_i . y_j + b)) / N, z = +1 on the diagonal and
 * -1 elsewhere, x and y L2-normalised; t = logit_scale, b = logit_bias scalar tensors. */
SSL_API ssl_tensor_t *ssl_loss_siglip(ssl_ctx_t *ctx, ssl_tensor_t *image, ssl_tensor_t *text,
                                      ssl_tensor_t *logit_scale, ssl_tensor_t *logit_bias);

/* ================================================================ generative */

/* The VAE's negative ELBO for one sample z ~ q(z|x), Bernoulli pixels (Kingma & Welling 2014;
 * beta-VAE, Higgins et al. 2017, with beta != 1): logits (B, ...) of the decoder, x the same
 * shape with values in [0, 1] (the un-normalised image; an element outside is an error),
 * mu and logvar (B, K) of the encoder's diagonal Gaussian q(z|x).
 *   rec = sum over elements of BCE-with-logits(logits, x), kl = KL(q(z|x) || N(0, I)) summed
 *   over the K dims; both averaged over the batch; returns rec + beta * kl.
 * x takes no gradient. Parts (per image, nats): rec, kl. */
SSL_API ssl_tensor_t *ssl_loss_vae(ssl_ctx_t *ctx, ssl_tensor_t *logits, ssl_tensor_t *x,
                                   ssl_tensor_t *mu, ssl_tensor_t *logvar, float beta,
                                   ssl_loss_parts_t *parts);

/* VQ-VAE's loss (van den Oord et al. 2017) with a mean-squared-error likelihood: recon and x
 * (B, ...) the decoder's output and the image (x takes no gradient); z (N, D) the encoder's
 * outputs before quantisation and zq (N, D) their codebook rows (ssl_embedding of the codes,
 * so the codebook gets a gradient).
 *   rec = mean over elements of (recon - x)^2, codebook = mean of (zq - sg(z))^2,
 *   commit = mean of (z - sg(zq))^2; returns rec + codebook + beta * commit.
 * Parts: rec, codebook, commit. */
SSL_API ssl_tensor_t *ssl_loss_vqvae(ssl_ctx_t *ctx, ssl_tensor_t *recon, ssl_tensor_t *x,
                                     ssl_tensor_t *z, ssl_tensor_t *zq, float beta,
                                     ssl_loss_parts_t *parts);

/* PixelCNN's negative log-likelihood per dimension (van den Oord et al. 2016): a 256-way softmax
 * per pixel. logits (..., 256), one row per pixel of x in x's order (for one-channel images
 * (B, 1, H, W): logits (B, H, W, 256)); x the un-normalised image, every value k / 255 for an
 * integer k in [0, 255] (the pixel's class; a value off that grid by more than 1e-3 / 255 is an
 * error: resized or jittered views). Returns the mean over pixels of -log softmax(logits)[k]
 * in nats (divide by ln 2 for bits per dimension); x takes no gradient. */
SSL_API ssl_tensor_t *ssl_loss_pixelcnn(ssl_ctx_t *ctx, ssl_tensor_t *logits, ssl_tensor_t *x);

/* ================================================================ configured loss objects */

typedef enum ssl_loss_type {
    SSL_LOSS_INFONCE = 0,
    SSL_LOSS_BYOL,
    SSL_LOSS_SIMSIAM,
    SSL_LOSS_DINO,
    SSL_LOSS_SWAV,
    SSL_LOSS_BARLOW,
    SSL_LOSS_VICREG,
    SSL_LOSS_MAE,
    SSL_LOSS_SIMMIM,
    SSL_LOSS_IJEPA,
    SSL_LOSS_CLIP,
    SSL_LOSS_SIGLIP,
    SSL_LOSS_DIRECTPRED,    /* BYOL's loss, the linear predictor set from feature correlations */
    SSL_LOSS_MOCO_V1,       /* ssl_loss_moco one way, queue, shuffled split BN (infonce's keys) */
    SSL_LOSS_DEEPCLUSTERV2, /* k-means assignments of a memory bank as targets */
    SSL_LOSS_IBOT,          /* masked-patch self-distillation (dino's keys, own defaults) */
    SSL_LOSS_KOLEO,         /* KoLeo on the student's class tokens (default weight 0.1) */
    SSL_LOSS_DATA2VEC,      /* masked tokens regress an EMA teacher's averaged block outputs */
    SSL_LOSS_MASKFEAT,      /* masked tokens regress their patches' HOG (ssl_loss_mae_idx) */
    SSL_LOSS_COCA,          /* CLIP's loss + captioning cross-entropy (clip's keys + weights) */
    SSL_LOSS_VAE,           /* negative ELBO, Bernoulli pixels, beta-weighted KL (ssl_loss_vae) */
    SSL_LOSS_DCGAN,         /* GAN: discriminator and generator phases, non-saturating BCE */
    SSL_LOSS_BIGAN,         /* DCGAN's with an encoder, the discriminator on (x, z) pairs */
    SSL_LOSS_DDPM,          /* diffusion: a U-Net predicts the noise eps of x_t (MSE) */
    SSL_LOSS_VQVAE,         /* VQ tokenizer: MSE reconstruction + codebook + beta commitment */
    SSL_LOSS_BEIT,          /* masked tokens predict a frozen VQ tokenizer's codes (CE) */
    SSL_LOSS_PIXELCNN,      /* per-pixel 256-way softmax NLL (ssl_loss_pixelcnn) */
    SSL_LOSS_TYPE_COUNT
} ssl_loss_type_t;

/* DDPM's noise schedules: Ho et al.'s linear betas, Nichol & Dhariwal's cosine alpha-bar. */
typedef enum ssl_ddpm_schedule { SSL_DDPM_LINEAR = 0, SSL_DDPM_COSINE = 1 } ssl_ddpm_schedule_t;

typedef enum ssl_infonce_form {
    SSL_INFONCE_NTXENT = 0, /* SimCLR */
    SSL_INFONCE_MOCO_V2,    /* queue of negatives */
    SSL_INFONCE_MOCO_V3     /* in-batch keys, symmetrised, scaled by 2 tau */
} ssl_infonce_form_t;

/* How the teacher's outputs become targets (dino, ibot): softmax((t - center) / temp) with the
 * moving-average center, or DINOv2's Sinkhorn-Knopp (3 iterations, epsilon = temp). */
typedef enum ssl_centering {
    SSL_CENTERING_CENTER = 0,
    SSL_CENTERING_SINKHORN_KNOPP = 1
} ssl_centering_t;
#define SSL_SK_TEACHER_ITERS 3 /* dinov2's sinkhorn_knopp_teacher n_iterations */

#define SSL_SWAV_MAX_ASSIGN 8

/* One loss section, every default filled in (see docs/losses.md for the config keys). */
typedef struct ssl_loss_cfg {
    int type;     /* ssl_loss_type_t */
    float weight; /* factor in a weighted sum (1) */
    struct {
        int form;           /* ssl_infonce_form_t */
        float temperature;  /* 0.2 (moco_v1: 0.07) */
        int64_t queue_size; /* moco_v2, moco_v1: 65536 */
    } infonce;              /* also the settings of moco_v1 (temperature, queue_size) */
    struct {
        float student_temp, teacher_temp, warmup_teacher_temp; /* 0.1, 0.07, 0.04 */
        double warmup_teacher_temp_epochs;                     /* 30 */
        float center_momentum;                                 /* 0.9 */
    } dino; /* also the settings of ibot's patch term (its own center and schedule) */
    struct {
        float temperature, epsilon;                /* 0.1, 0.05 */
        int sinkhorn_iterations;                   /* 3 */
        int crops_for_assign[SSL_SWAV_MAX_ASSIGN]; /* {0, 1} */
        int n_assign;
        int64_t queue_length;      /* 0: no queue */
        double epoch_queue_starts; /* 15 */
    } swav;
    struct {
        float lambda, scale; /* 0.0051, 0.024 */
    } barlow;
    ssl_vicreg_opts_t vicreg;
    struct {
        int norm_pix_loss; /* 1 */
    } mae;
    struct {
        int kind;   /* ssl_regress_kind_t: smooth_l1 */
        float beta; /* 1 */
    } ijepa;
    struct {
        float init_logit_scale; /* clip: log(1 / 0.07); siglip: log(10) */
        float max_logit_scale;  /* clip: log(100) */
        float init_logit_bias;  /* siglip: -10 */
        float clip_weight;      /* coca: 1 (open_clip's coca_contrastive_loss_weight) */
        float caption_weight;   /* coca: 2 (coca_caption_loss_weight) */
    } clip;
    struct {
        float rho; /* 0.3: weight of the old correlation in its moving average */
        float eps; /* 0.01: added to the normalised square-rooted eigenvalues */
    } directpred;
    struct {
        float temperature;                        /* 0.1 */
        int n_heads;                              /* sets of prototypes: 3 */
        int n_prototypes[SSL_DCV2_MAX_HEADS];     /* k-means clusters of each set: 3000 */
        int kmeans_iters;                         /* 10 */
        int crops_for_assign[SSL_DCV2_MAX_HEADS]; /* memory banks: {0, 1} */
        int n_assign;
    } deepclusterv2;
    struct {
        int shared_head; /* 0: the student's patch tokens get a last layer of their own */
    } ibot;
    ssl_data2vec_opts_t data2vec;
    struct {
        int nbins; /* 9 orientation bins */
        int cell;  /* HOG cell side in pixels: 2 (2 x 2 cells per 4-pixel patch) */
    } maskfeat;
    int centering; /* dino, ibot: ssl_centering_t (the center; center_momentum is its) */
    struct {
        float beta; /* 1: the VAE; > 1: beta-VAE */
    } vae;
    struct {
        int timesteps;     /* T noise levels (1000) */
        int schedule;      /* ssl_ddpm_schedule_t */
        float beta_start, beta_end; /* the linear schedule's betas (1e-4, 0.02) */
    } ddpm;
    struct {
        float beta; /* the commitment loss's weight: 0.25 (VQ-VAE) */
    } vqvae;
} ssl_loss_cfg_t;

/* "infonce", "byol", ... (NULL for an unknown value) and back (SSL_ERR_INVALID = -1 if
 * unknown); both set the error then. */
SSL_API const char *ssl_loss_type_name(int type);
SSL_API int ssl_loss_type_from_name(const char *name);
/* The defaults of a type (weight 1). */
SSL_API void ssl_loss_cfg_defaults(int type, ssl_loss_cfg_t *cfg);
/* Parse one loss section from JSON text (strict: unknown keys and out-of-range values are
 * errors naming the key). source names the text in messages (may be NULL). */
SSL_API int ssl_loss_cfg_from_json(const char *json, size_t len, const char *source,
                                   ssl_loss_cfg_t *cfg);

#ifdef __cplusplus
}
#endif
#endif /* SSL_LOSSES_H */
