/* libssl eval: measuring a representation from its feature matrices.
 *
 * - kNN classification (cosine or euclidean, temperature-weighted or majority votes), one
 *   setting or a grid of (k, T) settings from a single pass over the similarities.
 * - Linear probe: multinomial logistic regression on cached features with AdamW or SGD, cosine
 *   learning rate, optional standardisation (MAE's BatchNorm without affine) and a validation
 *   split that picks the reported epoch.
 * - Collapse metrics: RankMe, the per-dimension std of L2-normalised embeddings, alignment and
 *   uniformity (Wang & Isola), and the symmetric eigenvalue solver RankMe uses.
 *
 * Features are float32 row-major (N, D) matrices owned by the caller; labels are int32 in
 * [0, n_classes). Nothing here keeps a pointer after returning. Accuracies are fractions in
 * [0, 1]. Functions return SSL_OK or a negative ssl_status_t with ssl_last_error() naming the
 * argument, shape or file; they never print. OpenMP threads and OpenBLAS follow
 * ssl_set_num_threads(); BLAS is never called from inside a parallel region. Results do not
 * depend on the number of threads except through the BLAS's own summation order.
 */
#ifndef SSL_EVAL_H
#define SSL_EVAL_H

#include "ssl/core.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A labelled feature matrix: x (n, dim) row-major, labels[n] (labels may be NULL where a
 * function says so). */
typedef struct ssl_features {
    const float *x;
    const int32_t *labels;
    int64_t n, dim;
} ssl_features_t;

/* ---------------------------------------------------------------- kNN */

typedef enum ssl_knn_metric {
    SSL_KNN_COSINE = 0,   /* similarity = cosine of the L2-normalised rows */
    SSL_KNN_EUCLIDEAN = 1 /* similarity = -||x - y||_2 */
} ssl_knn_metric_t;

typedef enum ssl_knn_vote {
    SSL_KNN_WEIGHTED = 0, /* each neighbour votes exp(sim / T) for its class (InstDisc, DINO) */
    SSL_KNN_MAJORITY = 1  /* each neighbour votes 1 (T is ignored) */
} ssl_knn_vote_t;

typedef struct ssl_knn_opts {
    int metric;         /* ssl_knn_metric_t; default SSL_KNN_COSINE */
    int vote;           /* ssl_knn_vote_t; default SSL_KNN_WEIGHTED */
    int k;              /* neighbours; default 200 (ignored by the sweep) */
    float temperature;  /* T > 0; default 0.07 (ignored by the sweep) */
    size_t block_bytes; /* memory for one block of test-vs-train similarities; 0: 64 MiB */
} ssl_knn_opts_t;

typedef struct ssl_knn_result {
    int k;
    float temperature;
    double top1; /* fraction of test rows whose top-scoring class is the label */
    double top5; /* same within the 5 best classes; -1 when there are 5 classes or fewer */
    int64_t n;   /* test rows evaluated */
} ssl_knn_result_t;

/* The defaults above (cosine, weighted, k 200, T 0.07). */
SSL_API ssl_knn_opts_t ssl_knn_opts_default(void);

/* Classify every test row by its k nearest training rows and score against test->labels.
 *
 * Protocol. Cosine: rows are L2-normalised (a zero row has similarity 0 to everything).
 * Neighbours are the k most similar training rows; equal similarities are ordered by training
 * index (lower first). Class scores are sums of votes; the predicted class is the highest score,
 * and a tie goes to the lower class index (as scikit-learn's majority vote). Top-5 counts a row
 * when fewer than 5 classes rank above its label under that order. Weighted votes are computed
 * as exp((sim - sim_1) / T), sim_1 the best neighbour's similarity: the same ranking as
 * exp(sim / T) without overflow.
 *
 * Work: one sgemm per block of test rows (sized by block_bytes), then, in parallel over the
 * block's rows, a partial selection of the k best (a bounded heap, O(N_train) per row) and the
 * votes. train and test must have the same dim, k <= train->n, labels in [0, n_classes), all
 * values finite. pred (may be NULL) receives the n predicted classes. opts NULL: defaults. */
SSL_API int ssl_knn_eval(const ssl_features_t *train, const ssl_features_t *test, int n_classes,
                         const ssl_knn_opts_t *opts, ssl_knn_result_t *res, int32_t *pred);

/* Every (k, T) pair of a grid from one pass: the max(ks) neighbours of each row are selected
 * once, then voted for each setting. res[i * n_t + j] is (ks[i], temps[j]) and equals what
 * ssl_knn_eval gives for that setting. With majority votes temps may be NULL with n_t 0 (one
 * result per k, temperature 0). ks need not be sorted; opts->k and opts->temperature are
 * unused. */
SSL_API int ssl_knn_sweep(const ssl_features_t *train, const ssl_features_t *test, int n_classes,
                          const ssl_knn_opts_t *opts, const int *ks, int n_k, const float *temps,
                          int n_t, ssl_knn_result_t *res);

/* ---------------------------------------------------------------- linear probe */

typedef enum ssl_probe_optim { SSL_PROBE_ADAMW = 0, SSL_PROBE_SGD = 1 } ssl_probe_optim_t;

/* Called after every epoch (for progress display); val/test are -1 when that split is empty. */
typedef void (*ssl_probe_epoch_fn)(int epoch, double train_loss, double val_top1, double test_top1,
                                   void *user);

typedef struct ssl_probe_opts {
    int optimizer;      /* ssl_probe_optim_t; default AdamW */
    int epochs;         /* default 10 */
    int batch_size;     /* default 256 */
    float lr;           /* peak learning rate; default 1e-3 (use ~0.1 with SGD) */
    float min_lr;       /* cosine floor; default 0 */
    int warmup_epochs;  /* linear warmup from 0; default 0 */
    float weight_decay; /* decoupled (AdamW) or L2 (SGD), weights only; default 1e-4 */
    float momentum;     /* SGD; default 0.9 (Nesterov off) */
    float beta1, beta2; /* AdamW; default 0.9, 0.999 */
    float eps;          /* AdamW; default 1e-8 */
    int standardize;    /* 1 (default): (x - mean) / sqrt(var + 1e-6) with statistics of the
                           training rows, i.e. BatchNorm1d(affine=False) as in MAE's probe */
    float val_fraction; /* share of train held out (seeded permutation); default 0.1; 0: no
                           validation, the last epoch is reported */
    uint64_t seed;      /* split, shuffling and initialisation; default 0 */
    ssl_probe_epoch_fn on_epoch; /* may be NULL */
    void *user;
} ssl_probe_opts_t;

typedef struct ssl_probe_result {
    int best_epoch;        /* 1-based epoch with the best validation top-1 (first on ties) */
    double val_top1;       /* at best_epoch; -1 without validation */
    double test_top1;      /* at best_epoch; -1 without a test set */
    double test_top5;      /* at best_epoch; -1 without a test set or with <= 5 classes */
    double last_test_top1; /* after the final epoch */
    double train_loss;     /* mean cross-entropy of the final epoch */
    int64_t n_train, n_val;
} ssl_probe_result_t;

SSL_API ssl_probe_opts_t ssl_probe_opts_default(void);

/* Train a linear classifier (weight (C, D), bias (C), initialised N(0, 0.01^2) and 0) on
 * `train` minus the validation rows, with mini-batch cross-entropy through the core ops
 * (ssl_linear, ssl_cross_entropy, ssl_backward), evaluate validation and `test` after each
 * epoch, and report the epoch with the best validation top-1. test may be NULL. weight_out
 * (C*D floats) and bias_out (C), which may be NULL, receive the classifier of the best epoch
 * acting on standardised features. opts NULL: defaults. A probe whose step is small (batch x dim
 * x classes < 2^23 multiply-adds) trains with ssl_set_num_threads(1) and restores the previous
 * count when it returns: thread fork/join would cost more than the step. */
SSL_API int ssl_linear_probe(const ssl_features_t *train, const ssl_features_t *test, int n_classes,
                             const ssl_probe_opts_t *opts, ssl_probe_result_t *res,
                             float *weight_out, float *bias_out);

/* ---------------------------------------------------------------- zero-shot */

typedef struct ssl_zeroshot_result {
    double top1; /* fraction of images whose most similar class is the label */
    double top5; /* within the 5 most similar classes; -1 with 5 classes or fewer */
    int64_t n;   /* images evaluated */
} ssl_zeroshot_result_t;

/* Zero-shot classification (CLIP): images (n, dim) with labels; classes (n_classes, dim), one
 * embedding per class (the text embedding of its prompt). Each image goes to the class of
 * highest cosine similarity; equal similarities rank the lower class index first (as kNN).
 * pred (may be NULL) receives the n predicted classes. Dot products in double. */
SSL_API int ssl_zeroshot_eval(const ssl_features_t *images, const float *classes, int n_classes,
                              ssl_zeroshot_result_t *res, int32_t *pred);

/* ---------------------------------------------------------------- collapse metrics */

/* Eigenvalues of the symmetric n x n matrix a (row-major; only the lower triangle is read;
 * destroyed), ascending, into w[n], by LAPACK's dsyevr (OpenBLAS), in double. n <= 46340
 * (LAPACK's 32-bit indices; SSL_ERR_UNSUPPORTED above). SSL_ERR_NONFINITE for NaN/Inf input,
 * SSL_ERR_STATE if LAPACK reports a failure (not seen for finite input). */
SSL_API int ssl_eigvalsh(double *a, int64_t n, double *w);

/* Singular values of z (n, d), descending, into s[min(n, d)]: square roots of the eigenvalues
 * of the smaller Gram matrix (z^T z or z z^T), accumulated in double. */
SSL_API int ssl_singular_values(const float *z, int64_t n, int64_t d, double *s);

/* RankMe (Garrido et al. 2023): exp(-sum_k p_k log p_k), p_k = s_k / ||s||_1 + 1e-7 over the
 * singular values of z (n, d). Between 1 and min(n, d); ~r for rank r with equal singular
 * values. A zero matrix gives SSL_ERR_INVALID. */
SSL_API int ssl_rankme(const float *z, int64_t n, int64_t d, double *out);

/* Mean over dimensions of the std (unbiased, over rows) of the L2-normalised rows of z (n, d),
 * n >= 2: ~1/sqrt(d) for well-spread embeddings, 0 when collapsed to one point (SimSiam). */
SSL_API int ssl_collapse_std(const float *z, int64_t n, int64_t d, double *out);

/* Alignment (Wang & Isola 2020): mean_i ||z1_i - z2_i||_2^alpha over positive pairs (rows of
 * z1 and z2, both (n, d)); alpha default 2. normalize: L2-normalise rows first (the metric is
 * defined on the unit sphere). */
SSL_API int ssl_alignment(const float *z1, const float *z2, int64_t n, int64_t d, double alpha,
                          int normalize, double *out);

/* Uniformity (Wang & Isola 2020): log mean_{i<j} exp(-t ||z_i - z_j||^2), t default 2, over all
 * pairs of rows of z (n, d), n >= 2 (blocked sgemm, O(n^2 d)). normalize as above. */
SSL_API int ssl_uniformity(const float *z, int64_t n, int64_t d, double t, int normalize,
                           double *out);

/* Principal components of x (n, d), n >= 2, 1 <= k <= d <= 4096: rows centred, covariance
 * (divided by n - 1) in double by BLAS dsyrk, its k leading eigenpairs by LAPACK's dsyevr.
 * proj (n, k) receives the centred rows projected on them; components (k, d), variance (k)
 * (the variance along each: the eigenvalue) and total_variance (the trace) may be NULL. Each
 * component's largest entry is positive, so results do not flip sign. O(n d^2 + d^3). */
SSL_API int ssl_pca(const float *x, int64_t n, int64_t d, int k, float *proj, float *components,
                    double *variance, double *total_variance);

#ifdef __cplusplus
}
#endif
#endif /* SSL_EVAL_H */
