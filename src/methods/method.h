/* A method: the networks (online, target), heads and loss a run config composes, and one
 * training step's loss graph (the methods layer, below train). The trainer knows nothing of
 * which method it runs. */
#ifndef SSL_METHODS_METHOD_H
#define SSL_METHODS_METHOD_H

#include "io/json_strict.h"
#include "ssl/data.h"
#include "ssl/losses.h"
#include "ssl/models.h"

typedef struct ssl_method ssl_method_t;

typedef enum ssl_target_kind {
    SSL_TARGET_NONE = 0,  /* no target branch */
    SSL_TARGET_STOP_GRAD, /* the online outputs, detached (SimSiam) */
    SSL_TARGET_EMA        /* a momentum copy of the online network (BYOL, MoCo, DINO) */
} ssl_target_kind_t;

/* What a method needs to know of the rest of the run config (its target, views, masks and
 * data sections; the train layer fills it from its run config). */
typedef struct ssl_method_env {
    int target;           /* ssl_target_kind_t: target.type */
    int eval_target;      /* eval.encoder "target": features from the EMA target encoder */
    int eval_blocks;      /* eval.blocks: the probe readout of the last n ViT blocks */
    int n_views;          /* all views of a step */
    int n_global;         /* views of the first group */
    int view_size;        /* output size of views[0] */
    int view_normalize;   /* views[0].normalize: mean/std-normalised (0: pixels in [0, 1]) */
    int mask_kind;        /* masks.type as given (SSL_MASK_NONE: the method's usual masks) */
    ssl_mask_opts_t mask; /* the masks section */
    const char *dataset;  /* data.dataset, for messages */
    int64_t batch_size;   /* train.batch_size */
    /* the trainer's steps per epoch (0: the method is not trained, only run: a checkpoint
     * opened for features; state only training needs, such as a memory bank, is not built) */
    int64_t steps_per_epoch;
    int ranks; /* data-parallel ranks sharing each batch (0 or 1: one process) */
    int sample_steps; /* a diffusion sampler's levels for pictures (0: the config's) */
    const char *readout; /* a diffusion model's feature readout "BLOCK@T" (NULL: the config's) */
} ssl_method_env_t;

/* Per-step position, for schedules inside the method (teacher temperature, freezing). */
typedef struct ssl_step_pos {
    int64_t epoch; /* 0-based */
    int64_t step;  /* global step, 0-based */
    int64_t steps_per_epoch, total_steps;
    int phase; /* the optimizer phase of the step (ssl__method_phases), 0-based */
} ssl_step_pos_t;

/* Build from the "model" and "loss" sections (strict readers). Parameters go into `online`
 * (optimised) and `target` (EMA copy; may stay empty). `ds` gives the channels and captions.
 * vocab: a checkpoint's text vocabulary (ssl_vocab_to_string text) for the text tower, or NULL
 * to build it from the captions of ds. */
ssl_method_t *ssl__method_create(ssl_cfg_t *root, const ssl_method_env_t *env,
                                 const ssl_dataset_t *ds, ssl_params_t *online,
                                 ssl_params_t *target, uint64_t seed, const char *vocab);
void ssl__method_free(ssl_method_t *m);
/* A method that is an encoder alone (taken over: freed with the method), for the features of
 * torchvision/timm weights without a training checkpoint (ssl__method_features only). */
ssl_method_t *ssl__method_from_encoder(ssl_encoder_t *enc, int eval_blocks);
/* A fresh run's encoder initialisation: the online encoder from model.encoder.weights when the
 * config names a file (ssl_encoder_load_weights; the trainer then copies it into the target).
 * A resumed run skips this: its checkpoint holds the weights. */
int ssl__method_init_encoder(ssl_method_t *m);

/* Called before the forward of every step (prototype normalisation, freezing schedules); at the
 * first step of an epoch it first runs the family's epoch start (DeepCluster-v2's k-means). */
int ssl__method_before_step(ssl_method_t *m, ssl_params_t *online, const ssl_step_pos_t *pos);
/* 1 when the method makes a forward-only pass over one epoch of data before its first step
 * (DeepCluster-v2 fills its memory bank); ssl__method_observe then takes each batch of it
 * (b->index: the batch's index in the pass), no tape. A no-op for the other methods. */
int ssl__method_observes(const ssl_method_t *m);
int ssl__method_observe(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b);
/* The optimizers a step takes in turn (1, or 2 for a GAN: discriminator, then generator), the
 * parameter name prefixes phase i's optimizer steps (NULL-ended; NULL for a one-phase method:
 * all), and the family's name. */
int ssl__method_phases(const ssl_method_t *m);
const char *const *ssl__method_phase_params(const ssl_method_t *m, int phase);
const char *ssl__method_name(const ssl_method_t *m);
/* Images per forward pass without a tape (features, likelihoods): at most 256 and at most the
 * images of a training step (train.batch_size x views), so that evaluating never holds more
 * activations than training does (a PixelCNN's 256-image pass held 7 GB); 256 for a method
 * that is not trained (an encoder from weights). */
int64_t ssl__method_eval_batch(const ssl_method_t *m);
/* The loss graph of one batch (grad mode on; the target branch runs without a tape); of the
 * step's phase pos->phase, on the tape of the phases before it. */
ssl_tensor_t *ssl__method_loss(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_batch_t *b,
                               const ssl_step_pos_t *pos);
/* After the optimizer step: queues, centers (EMA of the target is the trainer's). */
int ssl__method_after_step(ssl_method_t *m, ssl_ctx_t *ctx, const ssl_step_pos_t *pos);
/* The online modules ("encoder.", "head.", ...) the EMA target copies, NULL-ended. */
const char *const *ssl__method_ema_modules(const ssl_method_t *m);
/* Probe features of images x (B, C, H, W), eval mode, no tape: the eval encoder's readout of
 * its last eval.blocks blocks (ssl_encoder_readout; 1: the pooled output). */
ssl_tensor_t *ssl__method_features(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x);
/* The eval encoder's pooled output alone, whatever eval.blocks says (CLIP's image tower). */
ssl_tensor_t *ssl__method_eval_pooled(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x);
/* Masks the loader must draw (SSL_MASK_NONE if none) with the encoder's patch grid filled. */
int ssl__method_mask_opts(const ssl_method_t *m, ssl_mask_opts_t *o, int *patch_size);
/* Projector output of the last step (for collapse metrics), or NULL. */
ssl_tensor_t *ssl__method_last_embedding(const ssl_method_t *m);
/* Extra metadata the checkpoint must keep (e.g. the text vocabulary), or NULL. */
const char *ssl__method_vocab(const ssl_method_t *m);
/* The two views' projector outputs of the last step (positive pairs row by row; for CLIP the
 * image and text embeddings), for alignment and uniformity; 0 when the method has no pair. */
int ssl__method_last_pair(const ssl_method_t *m, ssl_tensor_t **z1, ssl_tensor_t **z2);

/* The named terms of the last step's loss (n = 0 when the method has none). */
const ssl_loss_parts_t *ssl__method_loss_parts(const ssl_method_t *m);

/* ---- generative methods */
/* Test metrics over the eval split (the VQ tokenizer's): 1 when the method has them; one
 * batch x into the method's sums (first: reset them), no tape; the named results. */
int ssl__method_has_test(const ssl_method_t *m);
int ssl__method_test_batch(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int first);
int ssl__method_test_result(ssl_method_t *m, ssl_loss_parts_t *out);
/* 1 when the method has a likelihood bound (ssl__method_nll) / pictures (ssl__method_pictures) */
int ssl__method_has_nll(const ssl_method_t *m);
int ssl__method_has_pictures(const ssl_method_t *m);
/* Set the sampler's levels for the pictures that follow (0: the config's); SSL_ERR_UNSUPPORTED
 * for a method that samples in one pass. */
int ssl__method_set_sample_steps(ssl_method_t *m, int steps);
/* The sum over images x (B, C, H, W) of a bound on -log p(x) in nats (the VAE: its negative
 * ELBO with beta 1, one z per image drawn from (seed, index0 + row)) and of its named parts,
 * eval mode, no tape. */
int ssl__method_nll(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t index0,
                    uint64_t seed, double *sum, ssl_loss_parts_t *part_sums);
/* Reconstructions of x (NULL when the method has none) and n samples (seed fixed; NULL when n
 * is 0), each (n, C, H, W) in [0, 1], arena tensors of ctx; eval mode, no tape. */
int ssl__method_pictures(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x, int64_t n,
                         uint64_t seed, ssl_tensor_t **recon, ssl_tensor_t **samples);

/* ---- CLIP / SigLIP (zero-shot classification) */
/* 1 when the method has a text tower and an image projection. */
int ssl__method_is_clip(const ssl_method_t *m);
/* Image embeddings (B, embed_dim): encoder pooled features through the image projection, eval
 * mode, no tape. */
ssl_tensor_t *ssl__method_image_embed(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x);
/* Text embeddings (n, embed_dim) of n texts, no tape. *n_unknown (may be NULL) gets the
 * number of words the vocabulary does not know (encoded as <unk>). */
ssl_tensor_t *ssl__method_text_embed(ssl_method_t *m, ssl_ctx_t *ctx, const char *const *texts,
                                     int64_t n, int64_t *n_unknown);
/* Greedy captions of images x (CoCa): (B, context_length) token ids as floats (<sos> ... <eos>,
 * then padding), eval mode, no tape; SSL_ERR_UNSUPPORTED for a method without a decoder. */
ssl_tensor_t *ssl__method_caption_ids(ssl_method_t *m, ssl_ctx_t *ctx, ssl_tensor_t *x);

#endif
