/* Internal to the data layer: file reading, gzip, dataset building and the bad-file report. */
#ifndef SSL_DATA_INTERNAL_H
#define SSL_DATA_INTERNAL_H

#include "core/check.h"
#include "ssl/data.h"

#include <stdbool.h>

/* Read a whole file into a new buffer with one extra NUL byte after the content (so text can
 * be parsed in place). Fails with SSL_ERR_IO naming the path, or SSL_ERR_INVALID when the file
 * is larger than max_bytes (> 0). */
int ssl__data_read_file(const char *path, int64_t max_bytes, uint8_t **buf, size_t *len);

/* True when buf starts with the gzip magic 1f 8b. */
bool ssl__is_gzip(const uint8_t *buf, size_t len);
/* Inflate a gzip (or zlib) buffer into a new buffer of at most max_out bytes. Errors name
 * `name` and the compressed byte offset where decoding stopped. */
int ssl__gunzip(const uint8_t *in, size_t len, const char *name, size_t max_out, uint8_t **out,
                size_t *out_len);

char *ssl__strdup(const char *s);
char *ssl__path_join(const char *a, const char *b);
/* Free an array of n strings and the array. */
void ssl__free_strings(char **v, int64_t n);

/* Dataset with images of the given shape; labels set to -1; image memory uninitialised unless
 * zero is set. NULL + SSL_ERR_NOMEM (or SSL_ERR_INVALID on a bad shape). */
ssl_dataset_t *ssl__dataset_alloc(int64_t n, int64_t c, int64_t h, int64_t w, bool zero);
/* Shrink to the first n samples (after skipping bad files). */
void ssl__dataset_truncate(ssl_dataset_t *ds, int64_t n);

/* Bad-file accounting shared by the file-per-image readers. */
typedef struct ssl__badlog {
    const ssl_read_opts_t *opts;
    const char *what; /* "image folder ROOT" */
    int64_t n_bad;
} ssl__badlog_t;

/* Record a skipped file. Logs the first report_limit. Returns SSL_OK to go on, or (strict) an
 * error status with "PATH: REASON" as the message. */
int ssl__badlog_add(ssl__badlog_t *b, const char *path, const char *reason);
/* Log the summary line when anything was skipped. */
void ssl__badlog_finish(const ssl__badlog_t *b, int64_t n_total);

/* Effective read options (defaults when NULL). */
ssl_read_opts_t ssl__read_opts(const ssl_read_opts_t *o);

/* Shorter side to size + centre crop of a decoded image (h, w, c interleaved as stb gives it)
 * into dst (c, size, size) uint8. */
int ssl__resize_center_crop_hwc(const uint8_t *src, int64_t h, int64_t w, int64_t c, int size,
                                uint8_t *dst);

/* ---------------------------------------------------------------- augmentation scratch */

#define SSL__WS_SLOTS 8
enum { SSL__WS_AXIS_X = 0, SSL__WS_AXIS_Y, SSL__WS_RESIZE, SSL__WS_BLUR, SSL__WS_KERNEL,
       SSL__WS_U8, SSL__WS_VIEW };

struct ssl_aug_ws {
    void *slot[SSL__WS_SLOTS];
    size_t cap[SSL__WS_SLOTS];
};

/* Scratch of at least `bytes` in slot i (grown, contents not kept); NULL + error when out of
 * memory. ws must not be NULL (public entry points make a temporary one when given NULL). */
void *ssl__ws_get(ssl_aug_ws_t *ws, int i, size_t bytes);

/* Resampling core shared by the view crop and the dataset resize: source of c channels with
 * element strides (channel, row, column), either uint8 (is_u8) or float. The output is the
 * window [off_y, off_y + oh) x [off_x, off_x + ow) of the box {top, left, bh, bw} resized to
 * virtual size (vh, vw); values are multiplied by gain. dst is (c, oh, ow) float. */
int ssl__resample(const void *src, int is_u8, int64_t c, int64_t cs, int64_t rs, int64_t xs,
                  const int64_t box[4], int64_t vh, int64_t vw, int64_t off_y, int64_t off_x,
                  int64_t oh, int64_t ow, int antialias, float gain, float *dst,
                  ssl_aug_ws_t *ws);

#endif
