/* libssl optimisation: optimizers (SGD, LARS, AdamW) over a parameter store, gradient clipping
 * and the finite check, schedules (warm-up + cosine, cosine, linear, constant) and the EMA
 * (momentum) update of a target store. See docs/optim.md.
 *
 * Everything here works on the store's contiguous buffers (ssl_params_data / ssl_params_grad):
 * no tape, no arena. Optimizer state lives in buffers of the same layout as the trainable data,
 * exposed so a trainer can save it in a checkpoint and restore it bit for bit.
 *
 * Parameter flags (core.h) decide the treatment:
 * - SSL_PARAM_FROZEN: skipped entirely. No update, no weight decay, state untouched, its
 *   per-parameter step count does not advance (PyTorch skips a parameter whose grad is None).
 * - SSL_PARAM_NO_DECAY (biases, norm weights): no weight decay and, for LARS, no trust-ratio
 *   adaptation, when the optimizer's exclude_bias_and_norm is set (the default).
 * Buffers (SSL_PARAM_BUFFER) are never touched by an optimizer.
 */
#ifndef SSL_OPTIM_H
#define SSL_OPTIM_H

#include "ssl/core.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- schedules */

typedef enum ssl_sched_kind {
    SSL_SCHED_CONSTANT = 0,       /* peak at every step */
    SSL_SCHED_WARMUP_COSINE = 1,  /* linear start -> peak over warmup steps, cosine peak -> end */
    SSL_SCHED_COSINE = 2,         /* cosine from start to end over all steps (no warm-up) */
    SSL_SCHED_LINEAR = 3,         /* linear from start to end over all steps */
    SSL_SCHED_WARMUP_CONSTANT = 4 /* linear start -> peak over warmup steps, then peak */
} ssl_sched_kind_t;

typedef struct ssl_sched {
    int kind;             /* ssl_sched_kind_t */
    double start;         /* value at step 0 (warm-up start; cosine/linear start) */
    double peak;          /* value at the end of warm-up; the constant of SSL_SCHED_CONSTANT */
    double end;           /* value at step total_steps (and after) */
    int64_t warmup_steps; /* 0: no warm-up */
} ssl_sched_t;

/* The value at `step` of a run of `total_steps` steps (the unit is the caller's: optimizer steps
 * for lr / weight decay / EMA momentum, epochs for DINO's teacher temperature).
 *   warm-up (step < W):     start + (peak - start) * step / W            (step W gives peak)
 *   warmup_cosine (W <= step <= T): end + (peak - end) * (1 + cos(pi (step - W) / (T - W))) / 2
 *   cosine:                 end + (start - end) * (1 + cos(pi step / T)) / 2
 *   linear:                 start + (end - start) * step / T
 * Steps past T give `end` (warmup_constant: peak); negative steps count as 0; total_steps < 1
 * counts as 1; W >= T makes the whole run warm-up. */
SSL_API double ssl_sched_value(const ssl_sched_t *s, int64_t step, int64_t total_steps);

/* Shorthands. */
SSL_API ssl_sched_t ssl_sched_constant(double value);
SSL_API ssl_sched_t ssl_sched_warmup_cosine(double start, double peak, double end,
                                            int64_t warmup_steps);
SSL_API ssl_sched_t ssl_sched_cosine(double start, double end);

/* ---------------------------------------------------------------- optimizer configuration */

typedef enum ssl_optim_kind {
    SSL_OPTIM_SGD = 0,  /* torch.optim.SGD (dampening 0) */
    SSL_OPTIM_LARS = 1, /* SGD + layer-wise trust ratio, as solo-learn's LARS */
    SSL_OPTIM_ADAMW = 2 /* torch.optim.AdamW (amsgrad off) */
} ssl_optim_kind_t;

typedef struct ssl_optim_cfg {
    int kind; /* ssl_optim_kind_t */
    /* learning rate schedule (used by ssl_optim_lr_sched; ssl_optim_step takes the value) */
    double lr;              /* peak learning rate, or the base rate when lr_scaled */
    int lr_scaled;          /* 1: peak = lr * batch_size / 256 (config key base_lr) */
    int schedule;           /* SSL_SCHED_WARMUP_COSINE or SSL_SCHED_CONSTANT */
    double warmup_epochs;   /* linear warm-up length (may be fractional) */
    double warmup_start_lr; /* absolute lr at step 0 of the warm-up */
    double min_lr;          /* absolute lr at the last step of the cosine */
    /* weight decay */
    double weight_decay;
    double weight_decay_end;   /* < 0: constant; else cosine weight_decay -> weight_decay_end */
    int exclude_bias_and_norm; /* SSL_PARAM_NO_DECAY params: no decay, no LARS adaptation */
    int fix_predictor_lr;      /* "predictor." params keep the peak lr (SimSiam fix_pred_lr) */
    /* SGD / LARS */
    double momentum; /* 0: plain SGD, no state */
    int nesterov;
    double lars_eta; /* trust coefficient */
    double lars_eps;
    int lars_clip; /* trust ratio clipped: effective lr = min(lr, eta-ratio) */
    /* AdamW */
    double beta1, beta2, eps;
    /* gradient clipping applied by the trainer before the step (0: off) */
    double clip_grad;           /* global L2 norm (clip_grad_norm_) */
    double clip_grad_per_param; /* per-parameter L2 norm (DINO) */
} ssl_optim_cfg_t;

/* Defaults for an optimizer kind (docs/optim.md lists them with their sources). */
SSL_API void ssl_optim_cfg_default(int kind, ssl_optim_cfg_t *cfg);
/* "sgd", "lars", "adamw" ("?" for an unknown kind). */
SSL_API const char *ssl_optim_kind_name(int kind);
/* The peak learning rate for a batch size: lr, or lr * batch_size / 256 when lr_scaled. */
SSL_API double ssl_optim_peak_lr(const ssl_optim_cfg_t *cfg, int64_t batch_size);
/* The learning-rate and weight-decay schedules of a config, in optimizer steps. */
SSL_API ssl_sched_t ssl_optim_lr_sched(const ssl_optim_cfg_t *cfg, int64_t batch_size,
                                       int64_t steps_per_epoch);
SSL_API ssl_sched_t ssl_optim_wd_sched(const ssl_optim_cfg_t *cfg);

/* Read an "optim" object from JSON text (strict, errors name the key path). Keys and defaults:
 * docs/optim.md. */
SSL_API int ssl_optim_cfg_from_json(const char *json, size_t len, const char *source,
                                    ssl_optim_cfg_t *cfg);

/* ---------------------------------------------------------------- optimizer */

typedef struct ssl_optim ssl_optim_t;

/* An optimizer over every trainable parameter of `p` (borrowed: it must outlive the optimizer,
 * and must not gain parameters afterwards: ssl_optim_step then fails with SSL_ERR_STATE). State
 * starts at zero. NULL + error on a bad config (names the field and the accepted range). */
SSL_API ssl_optim_t *ssl_optim_create(const ssl_optim_cfg_t *cfg, ssl_params_t *p);
SSL_API void ssl_optim_free(ssl_optim_t *o);
SSL_API const ssl_optim_cfg_t *ssl_optim_cfg(const ssl_optim_t *o);

/* One update of every non-frozen trainable parameter from its gradient with the given learning
 * rate and weight decay (the values of the schedules at this step). Does not zero gradients.
 *   sgd:   d = g + wd w;  buf = m buf + d;  d = nesterov ? d + m buf : buf;  w -= lr d
 *   lars:  if adapted and ||w|| > 0 and ||g|| > 0:
 *            r = eta ||w|| / (||g|| + wd ||w|| + eps)  (clip: r = min(r / lr, 1));
 *            d = (g + wd w) r;   else d = g;   then the sgd momentum update without decay
 *   adamw: w *= 1 - lr wd;  m1 = b1 m1 + (1 - b1) g;  m2 = b2 m2 + (1 - b2) g^2;
 *          w -= lr / (1 - b1^t) * m1 / (sqrt(m2) / sqrt(1 - b2^t) + eps)   (t: the parameter's
 *          own step count, from 1)
 * Returns SSL_OK, or SSL_ERR_INVALID for a non-finite or negative lr / wd. */
SSL_API int ssl_optim_step(ssl_optim_t *o, double lr, double weight_decay);
/* ssl_optim_step over the trainable parameters whose names start with one of `prefixes`
 * (NULL-ended; NULL: all of them): the others, their state and their update counts are left as
 * they are. One optimizer stepped on disjoint subsets in turn is several optimizers with the
 * same settings (a GAN's discriminator and generator: each parameter has its own state and step
 * count). Counts as one step (ssl_optim_step_count). */
SSL_API int ssl_optim_step_only(ssl_optim_t *o, double lr, double weight_decay,
                                const char *const *prefixes);

/* Multiply the learning rate of every trainable parameter whose name starts with `prefix` by
 * `scale` (default 1; e.g. layer-wise decay, or a fixed predictor lr as SimSiam). Returns the
 * number of parameters changed, or SSL_ERR_INVALID for a negative or non-finite scale. */
SSL_API int ssl_optim_set_lr_scale(ssl_optim_t *o, const char *prefix, double scale);

/* Give every trainable parameter whose name starts with `prefix` the learning rate `lr` at every
 * step, whatever ssl_optim_step is passed (SimSiam's fixed predictor lr: the peak rate, no
 * warm-up or decay); its lr scale still multiplies it. lr < 0 returns them to the passed rate.
 * Returns the number of parameters changed, or SSL_ERR_INVALID for a non-finite lr. */
SSL_API int ssl_optim_set_lr_fixed(ssl_optim_t *o, const char *prefix, double lr);

/* State, for checkpoints. Entry i (0 <= i < count) is a named float buffer with the layout of
 * ssl_params_data: "momentum_buffer" (sgd/lars with momentum), "exp_avg" and "exp_avg_sq"
 * (adamw). The pointer is live: write into it to restore. */
typedef struct ssl_optim_state {
    const char *name;
    float *data; /* n floats */
    size_t n;
} ssl_optim_state_t;

SSL_API int ssl_optim_state_count(const ssl_optim_t *o);
/* Entry i, or SSL_ERR_INVALID for an index out of range. */
SSL_API int ssl_optim_state_get(ssl_optim_t *o, int i, ssl_optim_state_t *out);
/* Completed ssl_optim_step calls; settable on restore. */
SSL_API int64_t ssl_optim_step_count(const ssl_optim_t *o);
SSL_API void ssl_optim_set_step_count(ssl_optim_t *o, int64_t steps);
/* Per-parameter update counts (one per store entry, in ssl_params_info order; 0 for buffers and
 * for parameters frozen so far), AdamW's bias-correction step t. Live: write to restore. */
SSL_API int64_t *ssl_optim_param_steps(ssl_optim_t *o, int *n_params);

/* ---------------------------------------------------------------- gradients */

/* Scale the gradients of all non-frozen trainable parameters so that their global L2 norm is at
 * most max_norm, as torch.nn.utils.clip_grad_norm_: coef = min(max_norm / (norm + 1e-6), 1).
 * *total_norm (may be NULL) receives the norm before clipping. A non-finite norm leaves the
 * gradients untouched (so ssl_grad_check_finite can still name the culprit) and returns
 * SSL_ERR_NONFINITE. max_norm must be > 0. */
SSL_API int ssl_grad_clip_norm(ssl_params_t *p, double max_norm, double *total_norm);
/* DINO's clip_gradients: each non-frozen parameter's gradient with L2 norm above max_norm is
 * scaled by max_norm / (norm + 1e-6). norms (may be NULL) receives one norm per store entry
 * (ssl_params_info order; 0 for buffers and frozen parameters). Non-finite norms: as above. */
SSL_API int ssl_grad_clip_per_param(ssl_params_t *p, double max_norm, float *norms);
/* SSL_OK if every gradient of a non-frozen trainable parameter is finite; else
 * SSL_ERR_NONFINITE with "non-finite gradient in 'NAME' at element I (nan)" and *bad_index
 * (may be NULL) = the first offending store entry. */
SSL_API int ssl_grad_check_finite(ssl_params_t *p, int *bad_index);

/* ---------------------------------------------------------------- EMA (momentum) targets */

typedef enum ssl_ema_buffers {
    SSL_EMA_BUFFERS_KEEP = 0, /* target buffers left alone (its own forward updates them) */
    SSL_EMA_BUFFERS_COPY = 1, /* target buffers = online buffers */
    SSL_EMA_BUFFERS_EMA = 2   /* buffers averaged like parameters (timm ModelEma) */
} ssl_ema_buffers_t;

typedef struct ssl_ema_cfg {
    ssl_sched_t momentum; /* per step; default cosine 0.996 -> 1 */
    int buffers;          /* ssl_ema_buffers_t */
} ssl_ema_cfg_t;

SSL_API void ssl_ema_cfg_default(ssl_ema_cfg_t *cfg);

/* A pairing of a target store with an online store. The entries of `target` whose names start
 * with target_prefix and those of `online` whose names start with online_prefix (NULL or "":
 * all) must be the same list after the prefixes: same names in the same order, same kinds and
 * shapes. Anything else is SSL_ERR_SHAPE naming the first difference ("target 'x.weight' (4, 3)
 * vs online 'x.weight' (4, 4)", "online has 'predictor.0.weight' with no target entry").
 * Target and online may be the same store with different prefixes. Both are borrowed and must
 * not gain entries afterwards. Contiguous runs are updated in one loop (usually one in all). */
typedef struct ssl_ema ssl_ema_t;

SSL_API ssl_ema_t *ssl_ema_create(ssl_params_t *target, const char *target_prefix,
                                  ssl_params_t *online, const char *online_prefix);
SSL_API void ssl_ema_free(ssl_ema_t *e);
/* target = m target + (1 - m) online over the paired trainable data; buffers per `buffers`.
 * m in [0, 1]. */
SSL_API int ssl_ema_update(ssl_ema_t *e, double m, int buffers);
/* target = online for parameters and buffers (the initial copy). */
SSL_API int ssl_ema_copy(ssl_ema_t *e);

/* Read a "target" object (momentum, momentum_end, schedule, buffers) from JSON text. */
SSL_API int ssl_ema_cfg_from_json(const char *json, size_t len, const char *source,
                                  ssl_ema_cfg_t *cfg);

#ifdef __cplusplus
}
#endif
#endif /* SSL_OPTIM_H */
