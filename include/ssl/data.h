/* libssl data layer: in-memory datasets, per-view augmentations, token masks and a threaded
 * batch loader. Depends on core only.
 *
 * Conventions
 * - A dataset holds every image in memory as uint8 (N, C, H, W) with int32 labels (-1 where
 *   there is none), class names and, for image-text pairs, captions.
 * - Readers never crash or hang on bad input. A file that is truncated, corrupt, empty, not an
 *   image or too large is skipped and counted (ssl_dataset_t.n_skipped); the first
 *   ssl_read_opts_t.report_limit of them are logged with ssl_logf(SSL_LOG_WARN, ...) as
 *   "skipped PATH: REASON". With ssl_read_opts_t.strict the first bad file is an error instead.
 *   Whole-file formats (IDX, CIFAR) have nothing to skip: a bad file is an error that names the
 *   file and the byte offset.
 * - Augmentations turn one uint8 image into one float32 CHW view. Every random draw is a pure
 *   function of (seed, epoch, sample index, view index, draw number) through the core's
 *   counter-based RNG, so a batch does not depend on which thread built it.
 * - Masks are int32 token-index lists (row-major over the patch grid), sorted ascending.
 * - Defaults are documented beside each field and in docs/data.md; the *_default() functions
 *   fill them in.
 */
#ifndef SSL_DATA_H
#define SSL_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "ssl/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- datasets */

typedef struct ssl_dataset {
    int64_t n, c, h, w;   /* images is (n, c, h, w) */
    uint8_t *images;      /* (N, C, H, W) uint8 */
    int32_t *labels;      /* (N); -1 for unlabeled samples */
    int n_classes;        /* 0 when unlabeled */
    char **class_names;   /* (n_classes) or NULL */
    char **captions;      /* (N) for image-text pairs, else NULL */
    char **paths;         /* (N) source file of each sample (file-per-image datasets), else NULL */
    int64_t n_skipped;    /* bad files skipped while reading */
} ssl_dataset_t;

/* Read options. Defaults (ssl_read_opts_default):
 *   image_size 96, channels 3, strict 0, report_limit 5, max_file_bytes 64 MiB,
 *   max_pixels 40,000,000 (width * height before decoding), max_decoded_bytes 4 GiB (IDX .gz),
 *   limit 0 (all), root NULL, follow_links 0. */
typedef struct ssl_read_opts {
    int image_size;            /* file-per-image datasets: resize the shorter side to this and
                                * centre-crop to image_size x image_size */
    int channels;              /* file-per-image datasets: 1 (gray) or 3 (RGB) */
    int strict;                /* 1: the first bad file is an error (NULL + ssl_last_error) */
    int report_limit;          /* how many skipped files are logged one by one */
    int64_t max_file_bytes;    /* larger image files are skipped ("too large") */
    int64_t max_pixels;        /* images with more pixels are refused before decoding */
    int64_t max_decoded_bytes; /* cap on a decompressed .gz IDX file */
    int64_t limit;             /* keep at most this many samples (0: all) */
    const char *root;          /* image-text lists: directory relative paths are resolved
                                * against (NULL: the list file's directory) */
    int follow_links;          /* folder readers: 1 also reads directory links that lead out of
                                * the root (links into the tree are never followed) */
} ssl_read_opts_t;

SSL_API void ssl_read_opts_default(ssl_read_opts_t *o);

/* A zero-filled dataset (labels -1) for callers that fill images themselves. */
SSL_API ssl_dataset_t *ssl_dataset_new(int64_t n, int64_t c, int64_t h, int64_t w);
/* Split off the last n_tail samples of ds into a new dataset (class names copied, captions and
 * paths moved); ds keeps the first ds->n - n_tail. A validation split carved from a training
 * split (data.val_size). NULL + error unless 1 <= n_tail < ds->n; ds is unchanged then. */
SSL_API ssl_dataset_t *ssl_dataset_split_tail(ssl_dataset_t *ds, int64_t n_tail);
SSL_API void ssl_dataset_free(ssl_dataset_t *ds);

/* n random images (uniform uint8 pixels from the counter RNG, stream by seed) with labels
 * i % n_classes and class names "class0".. : for benchmarks and tests that need data of a
 * given shape and no files. Deterministic in seed. */
SSL_API ssl_dataset_t *ssl_dataset_synthetic(int64_t n, int64_t c, int64_t h, int64_t w,
                                             int n_classes, uint64_t seed);

/* IDX (MNIST family): images_path is an idx3-ubyte file (N, H, W), labels_path an idx1-ubyte
 * file (N) or NULL. Either may be gzip-compressed (detected from the content, not the name).
 * opts may be NULL (defaults); only limit and max_decoded_bytes apply. */
SSL_API ssl_dataset_t *ssl_dataset_load_idx(const char *images_path, const char *labels_path,
                                            const ssl_read_opts_t *opts);
/* Directory holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; split "train" or
 * "test". Fashion-MNIST gets its class names, MNIST gets "0".."9". */
#define SSL_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
SSL_API ssl_dataset_t *ssl_dataset_load_fashion_mnist(const char *dir, const char *split,
                                                      const ssl_read_opts_t *opts);
SSL_API ssl_dataset_t *ssl_dataset_load_mnist(const char *dir, const char *split,
                                              const ssl_read_opts_t *opts);

/* CIFAR binary format: records of [label][3072 bytes RGB planes 32x32] (CIFAR-10, 3073 bytes)
 * or [coarse][fine][3072] (CIFAR-100, 3074 bytes; the fine label is used). n_classes is 10 or
 * 100. files are concatenated in order. */
SSL_API ssl_dataset_t *ssl_dataset_load_cifar(const char *const *files, int n_files, int n_classes,
                                              const ssl_read_opts_t *opts);
/* The extracted archives: dir holds data_batch_{1..5}.bin / test_batch.bin and
 * batches.meta.txt (CIFAR-10) or train.bin / test.bin and fine_label_names.txt (CIFAR-100). */
SSL_API ssl_dataset_t *ssl_dataset_load_cifar_dir(const char *dir, int n_classes, const char *split,
                                                  const ssl_read_opts_t *opts);

/* torchvision ImageFolder layout: root/CLASS/[SUBDIRS/]FILE.{png,jpg,jpeg,bmp}, classes = the
 * subdirectories of root sorted by name (byte order), label = class position. Files with other
 * extensions are ignored; image files that fail to decode are skipped and counted.
 * Directory links: each directory is read at most once. A link into the tree under root (a
 * loop such as `ln -s . d/a/s`, or `ln -s .. d/a/up`) is never followed; a link out of root is
 * followed only with opts->follow_links. A link not followed, a loop or a directory already
 * read is skipped with a warning naming it; for a class directory itself it is an error
 * (skipping a class would shift the labels after it). File links are followed. */
SSL_API ssl_dataset_t *ssl_dataset_load_image_folder(const char *root, const ssl_read_opts_t *opts);
/* Every image file under root (recursively), label -1. Files of both folder readers are in
 * torchvision's order: by directory path, then by file name (byte order). */
SSL_API ssl_dataset_t *ssl_dataset_load_unlabeled_folder(const char *root,
                                                         const ssl_read_opts_t *opts);
/* Image-text pairs. A ".jsonl" list holds one object per line with string fields "image"
 * (or "file"/"path") and "caption" (or "text"); any other list is TSV: "PATH<TAB>CAPTION" per
 * line, an optional header line whose first field is "image", "file", "filepath" or "path", and
 * lines starting with '#' ignored. Lines that cannot be parsed are skipped and counted like
 * bad images. */
SSL_API ssl_dataset_t *ssl_dataset_load_pairs(const char *list_path, const ssl_read_opts_t *opts);

/* ---------------------------------------------------------------- in-memory readers (fuzzing) */

/* A decoded IDX array. data points to prod(dims) elements of elem_size bytes, big-endian as in
 * the file. Owned by the caller: ssl_idx_free(). */
typedef struct ssl_idx {
    int type; /* 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64 */
    int ndim;
    int64_t dims[8];
    int elem_size;
    int64_t count; /* prod(dims) */
    uint8_t *data;
} ssl_idx_t;

/* Parse an IDX file held in memory (plain or gzip). name is used in error messages. Checks the
 * magic, the type, the rank (1..8) and that the size is exactly
 * 4 + 4*ndim + count*elem_size bytes. max_decoded_bytes caps decompression (0: 4 GiB). */
SSL_API int ssl_idx_parse(const void *buf, size_t len, const char *name, int64_t max_decoded_bytes,
                          ssl_idx_t *out);
SSL_API void ssl_idx_free(ssl_idx_t *a);
/* CIFAR records from memory (n_classes 10 or 100) into a new dataset. */
SSL_API ssl_dataset_t *ssl_dataset_cifar_from_memory(const void *buf, size_t len, int n_classes,
                                                     const char *name);

/* Decode an encoded image (PNG, JPEG, BMP) held in memory, refuse it when over max_pixels
 * (checked from the header before decoding), resize its shorter side to `size` (antialiased
 * bilinear) and centre-crop to size x size, into dst (channels, size, size). channels is 1 or 3.
 * On failure returns SSL_ERR_FORMAT (or SSL_ERR_UNSUPPORTED for an unknown format,
 * SSL_ERR_INVALID for a refused size) with the reason in ssl_last_error(), prefixed by name. */
SSL_API int ssl_image_decode(const void *buf, size_t len, const char *name, int channels, int size,
                             int64_t max_pixels, uint8_t *dst);
/* Width and height from the header without decoding (SSL_ERR_FORMAT if not an image). */
SSL_API int ssl_image_info(const void *buf, size_t len, int *w, int *h);
/* Write n images (n, C, H, W) with values in [0, 1] (clamped; 8 bits, rounded), C 1 or 3, as
 * one PNG (stb_image_write): a grid of `cols` columns, `pad` white pixels between and around the
 * images. SSL_ERR_IO naming the path when it cannot be written. */
SSL_API int ssl_image_grid_png(const char *path, const float *images, int64_t n, int64_t c,
                               int64_t h, int64_t w, int cols, int pad);

/* ---------------------------------------------------------------- augmentations */

/* Random resized crop (torchvision RandomResizedCrop): area fraction in scale, aspect ratio
 * w/h log-uniform in ratio, 10 attempts, then the centre-crop fallback; the box is resized to the
 * view size with bilinear resampling, antialiased when shrinking. When not applied (p) the
 * whole image is resized. Defaults: p 1, scale (0.08, 1), ratio (3/4, 4/3), antialias 1. */
typedef struct ssl_aug_crop {
    float p;
    float scale[2];
    float ratio[2];
    int antialias;
} ssl_aug_crop_t;

/* Colour jitter (torchvision ColorJitter) applied with probability p: brightness, contrast and
 * saturation factors uniform in [max(0, 1 - s), 1 + s], hue shift uniform in [-hue, hue]
 * (hue <= 0.5), the four applied in a random order; a strength of 0 disables that part.
 * Saturation and hue do nothing on 1-channel images.
 * Defaults: p 0.8, brightness 0.4, contrast 0.4, saturation 0.2, hue 0.1 (BYOL/DINO). */
typedef struct ssl_aug_jitter {
    float p;
    float brightness, contrast, saturation, hue;
} ssl_aug_jitter_t;

/* Gaussian blur with sigma uniform in [sigma[0], sigma[1]], reflect padding. kernel_size 0:
 * 2 * ceil(3 sigma) + 1 (covers +-3 sigma); else a fixed odd size.
 * Defaults: p 0.5, sigma (0.1, 2.0), kernel_size 0. */
typedef struct ssl_aug_blur {
    float p;
    float sigma[2];
    int kernel_size;
} ssl_aug_blur_t;

/* Every view's pipeline, in this fixed order: crop -> flip -> jitter -> grayscale -> blur ->
 * solarize -> normalise. Pixel values are floats in [0, 1] until the normalisation. */
typedef struct ssl_view_aug {
    int out_h, out_w;       /* view size; default 32 x 32 */
    ssl_aug_crop_t crop;
    float p_flip;           /* horizontal flip; default 0.5 */
    ssl_aug_jitter_t jitter;
    float p_gray;           /* RandomGrayscale (0.2989 R + 0.587 G + 0.114 B to every channel);
                             * default 0.2; nothing on 1-channel images */
    ssl_aug_blur_t blur;
    float p_solarize;       /* default 0 */
    float solarize_threshold; /* x >= threshold becomes 1 - x; default 0.5 (128 of 255) */
    int normalize;          /* default 1 */
    float mean[3], std[3];  /* per channel; default ImageNet (0.485, 0.456, 0.406),
                             * (0.229, 0.224, 0.225); 1-channel images use [0] */
} ssl_view_aug_t;

/* Defaults as documented above, for views of size x size. */
SSL_API void ssl_view_aug_default(ssl_view_aug_t *a, int size);
/* No randomness: whole image resized to size x size, normalised (for evaluation). */
SSL_API void ssl_view_aug_eval(ssl_view_aug_t *a, int size);
/* Checks every field; SSL_ERR_CONFIG naming the field and the accepted range. */
SSL_API int ssl_view_aug_validate(const ssl_view_aug_t *a);

#define SSL_MAX_VIEWS 16

typedef struct ssl_views {
    int n_views;
    ssl_view_aug_t view[SSL_MAX_VIEWS];
} ssl_views_t;

/* n identical views (SimCLR-style: ssl_view_aug_default). */
SSL_API void ssl_views_simclr(ssl_views_t *v, int n, int size);
/* DINO multi-crop: n_global views of global_size with crop scale global_scale, blur p 1.0 on the
 * first, 0.1 and solarize 0.2 on the second (as DINO/BYOL), then n_local views of local_size with
 * crop scale local_scale and blur p 0.5. Returns SSL_ERR_CONFIG when n_global + n_local exceeds
 * SSL_MAX_VIEWS. */
SSL_API int ssl_views_multicrop(ssl_views_t *v, int n_global, int global_size,
                                const float global_scale[2], int n_local, int local_size,
                                const float local_scale[2]);

/* Scratch memory for augmentations; one per thread. */
typedef struct ssl_aug_ws ssl_aug_ws_t;
SSL_API ssl_aug_ws_t *ssl_aug_ws_create(void);
SSL_API void ssl_aug_ws_free(ssl_aug_ws_t *ws);

/* The RNG stream of one view of one sample in one epoch; draw numbers index into it. */
SSL_API uint64_t ssl_aug_stream(uint64_t epoch, int64_t sample, int view);

/* One view: src (c, h, w) uint8 -> dst (c, a->out_h, a->out_w) float32. c is 1 or 3. */
SSL_API int ssl_augment_view(const ssl_view_aug_t *a, const uint8_t *src, int64_t c, int64_t h,
                             int64_t w, uint64_t seed, uint64_t epoch, int64_t sample, int view,
                             float *dst, ssl_aug_ws_t *ws);

/* ---- building blocks (float CHW images in [0, 1], in place unless stated) */

/* Crop box {top, left, height, width} of RandomResizedCrop for an h x w image, drawing from
 * (seed, stream) at draw numbers first_draw .. first_draw + 39. Returns 1 when one of the 10
 * attempts succeeded, 0 when the centre-crop fallback was used. */
SSL_API int ssl_aug_crop_box(int64_t h, int64_t w, const float scale[2], const float ratio[2],
                             uint64_t seed, uint64_t stream, uint64_t first_draw, int64_t box[4]);
/* Resample the box {top, left, height, width} of src (c, h, w) to dst (c, oh, ow): bilinear
 * with half-pixel centres, antialiased (triangle filter widened by the scale) when shrinking
 * and antialias is set. The u8 version also scales values by 1/255. */
SSL_API int ssl_resize_u8(const uint8_t *src, int64_t c, int64_t h, int64_t w, const int64_t box[4],
                          float *dst, int64_t oh, int64_t ow, int antialias, ssl_aug_ws_t *ws);
SSL_API int ssl_resize_f32(const float *src, int64_t c, int64_t h, int64_t w, const int64_t box[4],
                           float *dst, int64_t oh, int64_t ow, int antialias, ssl_aug_ws_t *ws);
SSL_API void ssl_hflip(float *x, int64_t c, int64_t h, int64_t w);
/* torchvision adjust_* on float images, results clamped to [0, 1]. */
SSL_API void ssl_adjust_brightness(float *x, int64_t c, int64_t h, int64_t w, float factor);
SSL_API void ssl_adjust_contrast(float *x, int64_t c, int64_t h, int64_t w, float factor);
SSL_API void ssl_adjust_saturation(float *x, int64_t c, int64_t h, int64_t w, float factor);
SSL_API void ssl_adjust_hue(float *x, int64_t c, int64_t h, int64_t w, float shift);
SSL_API void ssl_grayscale(float *x, int64_t c, int64_t h, int64_t w);
/* Normalised 1-D Gaussian of size 2 * radius + 1 into k. Returns the radius used for
 * kernel_size (0: ceil(3 sigma)). */
SSL_API int ssl_gaussian_kernel(float sigma, int kernel_size, float *k, int max_size);
SSL_API int ssl_gaussian_blur(float *x, int64_t c, int64_t h, int64_t w, float sigma,
                              int kernel_size, ssl_aug_ws_t *ws);
SSL_API void ssl_solarize(float *x, int64_t n, float threshold);
SSL_API void ssl_normalize(float *x, int64_t c, int64_t h, int64_t w, const float *mean,
                           const float *std);

/* ---------------------------------------------------------------- HOG (MaskFeat's targets) */

/* Histograms of oriented gradients as MaskFeat's HOGLayerC: x (n, c, h, w) float images; per
 * channel the Sobel gradients gx, gy of the image reflected by one pixel at its borders, each
 * pixel's magnitude sqrt(gx^2 + gy^2) added to bin floor(atan2(gx, gy) / pi * nbins) mod nbins
 * (unsigned orientation), summed over cell x cell pixels, each cell's nbins values L2-normalised
 * (divided by max(norm, 1e-12)). out (n, c, nbins, h / cell, w / cell). No gradient: a feature
 * of the input image. h, w >= 2 and divisible by cell; nbins 1..360. */
SSL_API int ssl_hog(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int nbins,
                    int cell, float *out);
/* MaskFeat's per-patch targets (SlowFast masked.py _get_hog_label_2d): ssl_hog of x with cells
 * of `cell` pixels, gathered per patch of p x p pixels (p a multiple of cell, dividing h and w):
 * out (n, T, c nbins (p / cell)^2), T = (h / p)(w / p) patches in row-major order, each row
 * ordered (channel, bin, cell row, cell column). */
SSL_API int ssl_hog_patches(const float *x, int64_t n, int64_t c, int64_t h, int64_t w, int nbins,
                            int cell, int p, float *out);

/* ---------------------------------------------------------------- masks */

/* The most target blocks a multiblock mask has (masks.n_targets). */
#define SSL_MASK_MAX_TARGETS 64

typedef enum ssl_mask_kind {
    SSL_MASK_NONE = 0,
    SSL_MASK_RANDOM = 1,     /* MAE: per sample keep K = round(T * (1 - ratio)) random tokens */
    SSL_MASK_SIMMIM = 2,     /* SimMIM: random cells of block x block tokens, ceil(cells*ratio) */
    SSL_MASK_BLOCKWISE = 3,  /* BEiT: random rectangles until round(T * ratio) tokens */
    SSL_MASK_MULTIBLOCK = 4, /* I-JEPA: one context block and n_targets target blocks */
    SSL_MASK_IBOT = 5        /* iBOT: per view, for a fraction of the samples, BEiT rectangles up
                                to a random ratio of the tokens (counts vary by sample) */
} ssl_mask_kind_t;

/* Defaults (ssl_mask_opts_default): ratio 0.75 (RANDOM), 0.6 (SIMMIM), 0.4 (BLOCKWISE);
 * block 2 (SimMIM cell in tokens: 32 px mask patch / 16 px ViT patch); min_block 4,
 * block_aspect (0.3, 1/0.3) (BEiT); I-JEPA n_targets 4, target_scale (0.15, 0.2),
 * target_aspect (0.75, 1.5), context_scale (0.85, 1.0), context_aspect (1, 1), min_keep 10
 * (the paper's config); IBOT ratio 0.3, ratio_var 0.2, prob 0.5 (main_ibot.py's --pred_ratio 0
 * 0.3 --pred_ratio_var 0 0.2 of the released recipes), min_block 0 (iBOT's (min(grid) / 3)^2),
 * n_views 2. */
typedef struct ssl_mask_opts {
    int kind;
    int64_t grid_h, grid_w;  /* patch grid; T = grid_h * grid_w */
    float ratio;             /* RANDOM, SIMMIM, BLOCKWISE: fraction of tokens masked */
    int block;               /* SIMMIM cell size in tokens (grid divisible by it) */
    int64_t min_block;       /* BLOCKWISE: smallest rectangle area in tokens */
    float block_aspect[2];   /* BLOCKWISE: aspect ratio range (log-uniform) */
    int n_targets;           /* MULTIBLOCK: 1 to SSL_MASK_MAX_TARGETS */
    float target_scale[2], target_aspect[2];
    float context_scale[2], context_aspect[2];
    int64_t min_keep;        /* MULTIBLOCK: context tokens kept at least */
    /* IBOT: each of the first n_views views of a sample is masked with probability prob, then
     * with a ratio drawn uniformly from [ratio - ratio_var, ratio + ratio_var] */
    float ratio_var, prob;
    int n_views;
} ssl_mask_opts_t;

SSL_API void ssl_mask_opts_default(ssl_mask_opts_t *o, int kind, int64_t grid_h, int64_t grid_w);
SSL_API int ssl_mask_opts_validate(const ssl_mask_opts_t *o);

/* Masks of one batch; every list is sorted ascending and has the same length for every sample.
 *   RANDOM/SIMMIM/BLOCKWISE: keep (B, n_keep) visible tokens, masked (B, n_masked) the rest
 *     (n_keep + n_masked = T).
 *   MULTIBLOCK: keep (B, n_keep) context tokens (no target token among them),
 *     targets (B, n_targets, n_target) target blocks, masked unused (n_masked 0). Lists are
 *     truncated to the shortest in the batch as the official collator does (the lowest indices
 *     are kept).
 *   IBOT: counts (B, n_views) masked tokens per sample and view (0 for an unmasked view),
 *     masked (B, n_views, T): row (b, v) starts with its counts[b n_views + v] tokens ascending
 *     (the rest of the row is -1); n_masked is a sample's stride n_views T, keep is
 *     unused (n_keep 0). */
typedef struct ssl_masks {
    int kind;
    int64_t batch, tokens;
    int64_t n_keep, n_masked;
    int32_t *keep;
    int32_t *masked;
    int n_targets;
    int64_t n_target;
    int32_t *targets;
    int64_t capacity_batch; /* allocated for this many samples */
    int n_views;            /* IBOT: views masked per sample */
    int32_t *counts;        /* IBOT: (B, n_views) */
} ssl_masks_t;

SSL_API int ssl_masks_alloc(ssl_masks_t *m, const ssl_mask_opts_t *o, int64_t batch);
SSL_API void ssl_masks_free(ssl_masks_t *m);
/* Masks for `batch` samples whose dataset indices are sample_ids. Per-sample draws come from
 * (seed, epoch, sample id); the I-JEPA block sizes, shared by the batch as in the official
 * collator, from (seed, epoch, batch_index). m must have been allocated for >= batch. */
SSL_API int ssl_masks_generate(ssl_masks_t *m, const ssl_mask_opts_t *o, int64_t batch,
                               const int64_t *sample_ids, uint64_t seed, uint64_t epoch,
                               int64_t batch_index);

/* ---------------------------------------------------------------- loader */

/* Defaults (ssl_loader_opts_default): batch_size 64, shuffle 1, drop_last 1, seed 0,
 * n_workers 2, views = 2 SimCLR views of 32 x 32, mask kind NONE, patch_size 16. */
typedef struct ssl_loader_opts {
    int64_t batch_size;
    int shuffle;        /* permutation per (seed, epoch); 0: dataset order */
    int drop_last;      /* 1: drop a last partial batch */
    uint64_t seed;
    int n_workers;      /* worker threads; 0 builds batches in the caller's thread */
    ssl_views_t views;
    ssl_mask_opts_t mask; /* grid_h/grid_w 0: view 0's size / patch_size */
    int patch_size;
} ssl_loader_opts_t;

SSL_API void ssl_loader_opts_default(ssl_loader_opts_t *o);

/* One batch, in loader-owned memory valid until the next ssl_loader_next() / start / free. */
typedef struct ssl_batch {
    int64_t epoch, index, size;  /* size B may be < batch_size for a last partial batch */
    int n_views;
    ssl_tensor_t views[SSL_MAX_VIEWS]; /* (B, C, H_v, W_v), not in any arena, no gradient */
    const int32_t *labels;             /* (B) */
    const int64_t *indices;            /* (B) dataset indices */
    const char *const *captions;       /* (B) or NULL */
    const ssl_masks_t *masks;          /* NULL unless a mask kind is configured */
    /* (B, noise_dim) standard normal draws a method uses in place of its own (the VAE's
     * reparameterisation noise eps), or NULL: the method draws them from the counter RNG.
     * For callers of ssl_trainer_step that must match another implementation step for step
     * (the step-parity tests); the loader leaves it NULL. */
    const float *noise;
    int64_t noise_dim;
} ssl_batch_t;

typedef struct ssl_loader ssl_loader_t;

/* The dataset must outlive the loader. NULL + error on a bad option. */
SSL_API ssl_loader_t *ssl_loader_create(const ssl_dataset_t *ds, const ssl_loader_opts_t *o);
SSL_API void ssl_loader_free(ssl_loader_t *l); /* stops the workers, whatever they are doing */
SSL_API int64_t ssl_loader_num_batches(const ssl_loader_t *l);
/* Make this loader one of n_shards that split every batch (data-parallel training): the
 * batches stay those of the whole loader (batch_size images each, the same order), and this one
 * hands out rows [shard B, (shard + 1) B) of each, B = batch_size / n_shards, with the views and
 * masks the whole batch would have (they depend on seed, epoch and image, never on the shard).
 * batch_size must be a multiple of n_shards and drop_last set. Call before start_epoch (it
 * abandons the batches in flight). Default: shard 0 of 1. */
SSL_API int ssl_loader_set_shard(ssl_loader_t *l, int shard, int n_shards);
/* Begin an epoch at batch first_batch (0, or a resume point); abandons any batch in flight.
 * When the dataset left bad files out (n_skipped > 0) it logs a warning with the counts,
 * "epoch E+1: N images; K unreadable files were left out ...", once per call. */
SSL_API int ssl_loader_start_epoch(ssl_loader_t *l, int64_t epoch, int64_t first_batch);
/* The next batch of the epoch, or NULL at its end (ssl_last_status() == SSL_OK) or on error.
 * While the caller uses it, the workers build the one after. */
SSL_API const ssl_batch_t *ssl_loader_next(ssl_loader_t *l);

#ifdef __cplusplus
}
#endif
#endif /* SSL_DATA_H */
