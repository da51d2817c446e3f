/* libssl io: safetensors checkpoints, and NumPy .npy files (atomic writer and reader, to move
 * features and labels to and from Python).
 *
 * File format (https://github.com/huggingface/safetensors):
 *   8 bytes   N, the header length, unsigned 64-bit little-endian
 *   N bytes   JSON object, UTF-8:
 *               {"__metadata__": {"key": "value", ...},            (optional, strings only)
 *                "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 *   the rest  the data buffer; a tensor's bytes are [begin, end) of it, little-endian,
 *             row-major.
 *
 * Reading validates everything the reference implementation does (see docs/io.md): the header
 * length (at most 100 MB, inside the file), a header that starts with '{' and is strict UTF-8
 * JSON without duplicate keys, known dtypes, non-negative integral shapes, element count x dtype
 * size == end - begin (overflow-checked), tensors that tile the data buffer exactly (no holes,
 * no overlaps, nothing left over, nothing missing), string metadata values. Every error names
 * the file and the reason, and the tensor or byte offset where there is one: SSL_ERR_FORMAT for
 * malformed content, SSL_ERR_IO for a file that cannot be read, SSL_ERR_UNSUPPORTED for a
 * dtype the format defines but this library does not handle (the sub-byte F4/F6 types,
 * F8_E8M0, C64).
 *
 * Writing: tensors are laid out in the order they were added (which is also their order in the
 * header); the header starts with '{', holds "__metadata__" first when there is metadata, and
 * is padded with spaces to a multiple of 8 bytes so the data stays 8-byte aligned. Files are
 * written atomically: a temporary file in the same directory, fsync, rename. On failure the
 * previous file is untouched.
 *
 * Checkpoints name tensors as torchvision/timm do under a prefix per module ("encoder.",
 * "projector.", "target.encoder.", ...): ssl_st_writer_add_params / ssl_st_load_params add and
 * strip the prefix.
 */
#ifndef SSL_IO_H
#define SSL_IO_H

#include "ssl/core.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- dtypes */

typedef enum ssl_dtype {
    SSL_DTYPE_F32 = 0,
    SSL_DTYPE_F16,
    SSL_DTYPE_BF16,
    SSL_DTYPE_F64,
    SSL_DTYPE_I64,
    SSL_DTYPE_I32,
    SSL_DTYPE_I16,
    SSL_DTYPE_I8,
    SSL_DTYPE_U64,
    SSL_DTYPE_U32,
    SSL_DTYPE_U16,
    SSL_DTYPE_U8,
    SSL_DTYPE_BOOL,
    SSL_DTYPE_F8_E4M3, /* float8 e4m3fn: no infinities, NaN = S.1111.111 */
    SSL_DTYPE_F8_E5M2,
    SSL_DTYPE_COUNT
} ssl_dtype_t;

/* "F32", "BF16", ... ("?" for an unknown value) and the element size in bytes (0 if unknown);
 * an unknown value sets SSL_ERR_INVALID. */
SSL_API const char *ssl_dtype_name(int dtype);
SSL_API size_t ssl_dtype_size(int dtype);
/* The dtype named `name` ("F16"), or -1. */
SSL_API int ssl_dtype_from_name(const char *name);

/* ---------------------------------------------------------------- reading */

#define SSL_ST_MAX_HEADER 100000000u /* header length limit, as the reference implementation */

/* The tag is not `ssl_st`: OpenSSL's SSL is `struct ssl_st`, and a shared tag would let an SSL *
 * convert to an ssl_st_t * without a diagnostic. */
typedef struct ssl_st_reader ssl_st_t;

typedef struct ssl_st_tensor {
    const char *name;
    int dtype;            /* ssl_dtype_t */
    int ndim;             /* any rank; 0 for a scalar */
    const int64_t *shape; /* ndim sizes */
    int64_t numel;        /* product of the shape (1 for a scalar) */
    uint64_t offset;      /* byte offset within the data buffer */
    uint64_t nbytes;      /* numel * ssl_dtype_size(dtype) */
} ssl_st_tensor_t;

/* Open and validate a file. Only the header is read now; tensor data is read on request
 * (pread), so a large checkpoint costs no memory until its tensors are read. NULL + error.
 * An open handle is read-only: several threads may read tensors from it at once. */
SSL_API ssl_st_t *ssl_st_open(const char *path);
/* Validate a file image in memory. `buf` is borrowed: it must outlive the handle. `name`
 * names the image in messages (e.g. "<memory>"). NULL + error. */
SSL_API ssl_st_t *ssl_st_open_memory(const void *buf, size_t len, const char *name);
SSL_API void ssl_st_close(ssl_st_t *f);

/* The name given at open (path or memory name). */
SSL_API const char *ssl_st_path(const ssl_st_t *f);
/* Tensors, in data-buffer order (for files this library wrote: the order they were added). */
SSL_API int ssl_st_count(const ssl_st_t *f);
SSL_API const ssl_st_tensor_t *ssl_st_tensor(const ssl_st_t *f, int i);
/* Index of the tensor named `name`, or -1 (no error set). */
SSL_API int ssl_st_find(const ssl_st_t *f, const char *name);

/* Read tensor i converted to float32 into dst[n]; n must equal its numel. F32 is copied; F16,
 * BF16, F8_* and F64 are converted (F64 rounds to nearest); integer and BOOL tensors become
 * their float values. */
SSL_API int ssl_st_read_f32(const ssl_st_t *f, int i, float *dst, size_t n);
/* The raw little-endian bytes of tensor i into dst[nbytes]; nbytes must equal its size. */
SSL_API int ssl_st_read_raw(const ssl_st_t *f, int i, void *dst, size_t nbytes);

/* Metadata: the value for `key` or NULL; and all pairs by index (header order). */
SSL_API const char *ssl_st_meta(const ssl_st_t *f, const char *key);
SSL_API int ssl_st_meta_count(const ssl_st_t *f);
SSL_API int ssl_st_meta_at(const ssl_st_t *f, int i, const char **key, const char **value);

/* ---------------------------------------------------------------- writing */

typedef struct ssl_st_writer ssl_st_writer_t;

/* A writer collects tensor references and metadata; nothing is written until save. Data
 * pointers are borrowed and must stay valid until ssl_st_writer_save returns; names, shapes
 * and metadata are copied. */
SSL_API ssl_st_writer_t *ssl_st_writer_create(void);
SSL_API void ssl_st_writer_free(ssl_st_writer_t *w);
/* Add a float32 tensor (ndim 0 = scalar, one element). Names must be unique, valid UTF-8 and
 * not "__metadata__"; sizes must be >= 0. */
SSL_API int ssl_st_writer_add(ssl_st_writer_t *w, const char *name, int ndim, const int64_t *shape,
                              const float *data);
/* Add a tensor of any dtype from host-order elements (converted to little-endian). */
SSL_API int ssl_st_writer_add_raw(ssl_st_writer_t *w, const char *name, int dtype, int ndim,
                                  const int64_t *shape, const void *data);
/* Add every parameter and buffer of the store as "<prefix><name>" (prefix may be NULL or "").
 * The store must not be modified before save. */
SSL_API int ssl_st_writer_add_params(ssl_st_writer_t *w, const ssl_params_t *p, const char *prefix);
/* Set a metadata pair (a later value for the same key replaces the earlier one). */
SSL_API int ssl_st_writer_meta(ssl_st_writer_t *w, const char *key, const char *value);
/* Write the file atomically. The writer can be saved again or freed afterwards. */
SSL_API int ssl_st_writer_save(ssl_st_writer_t *w, const char *path);

/* One-call forms. */
typedef struct ssl_st_entry {
    const char *name;
    int ndim;
    const int64_t *shape;
    const float *data;
} ssl_st_entry_t;

typedef struct ssl_st_kv {
    const char *key;
    const char *value;
} ssl_st_kv_t;

SSL_API int ssl_st_save(const char *path, const ssl_st_entry_t *tensors, int n,
                        const ssl_st_kv_t *meta, int n_meta);
SSL_API int ssl_st_save_params(const char *path, const ssl_params_t *p, const char *prefix,
                               const ssl_st_kv_t *meta, int n_meta);

/* ---------------------------------------------------------------- loading into a store */

enum ssl_st_load_flags {
    SSL_ST_STRICT = 0,                /* any missing, unexpected or mis-shaped tensor fails */
    SSL_ST_ALLOW_MISSING = 1 << 0,    /* parameters absent from the file keep their values */
    SSL_ST_ALLOW_UNEXPECTED = 1 << 1, /* tensors under the prefix matching no parameter */
    SSL_ST_ALLOW_MISMATCH = 1 << 2,   /* tensors whose shape differs from the parameter's */
    SSL_ST_NONSTRICT = SSL_ST_ALLOW_MISSING | SSL_ST_ALLOW_UNEXPECTED | SSL_ST_ALLOW_MISMATCH
};

/* What a load found. Lists hold full tensor names (prefix included); a mis-shaped entry reads
 * "name: file F16 (3, 4) vs store (4, 4)". Free with ssl_st_report_free. */
typedef struct ssl_st_report {
    int n_loaded;
    int n_missing, n_unexpected, n_mismatched;
    char **missing;    /* parameters with no tensor "<prefix><name>" in the file */
    char **unexpected; /* tensors named "<prefix>..." that match no parameter */
    char **mismatched; /* same name, different shape (never loaded) */
} ssl_st_report_t;

SSL_API void ssl_st_report_free(ssl_st_report_t *r);

/* Load tensors "<prefix><name>" into every parameter and buffer of the store, converting to
 * float32. Tensors outside the prefix are ignored (they belong to other modules). Problems not
 * allowed by `flags` fail with SSL_ERR_FORMAT, the message counting each kind and naming the
 * first few, and then nothing is loaded. Allowed problems are only reported. report may be
 * NULL; when given it is filled in either case (free it with ssl_st_report_free). An I/O error
 * while reading tensor data (SSL_ERR_IO) can leave the parameters read before it loaded. */
SSL_API int ssl_st_load_params(const ssl_st_t *f, ssl_params_t *p, const char *prefix, int flags,
                               ssl_st_report_t *report);
/* The same from a path. */
SSL_API int ssl_st_load_params_file(const char *path, ssl_params_t *p, const char *prefix,
                                    int flags, ssl_st_report_t *report);

/* ---------------------------------------------------------------- NumPy .npy files */

#define SSL_NPY_MAX_DIMS 8

/* An array read from a .npy file. dtype is the ssl_dtype_t of the file; data is
 * malloc'd in the requested type (free with ssl_npy_free). */
typedef struct ssl_npy {
    int dtype;
    int ndim;
    int64_t shape[SSL_NPY_MAX_DIMS];
    int64_t numel;
    void *data;
} ssl_npy_t;

/* Write a C-order array: format version 1.0, header dict ("descr", "fortran_order",
 * "shape") padded with spaces and a final '\n' so the data starts at a multiple of 64 bytes,
 * little-endian data. dtype: SSL_DTYPE_F32, F64, I32, I64 or U8. Written atomically
 * (temporary file, fsync, rename). */
SSL_API int ssl_npy_save(const char *path, int dtype, int ndim, const int64_t *shape,
                         const void *data);
/* Shorthands: float32 features (n, d) and int32 / int64 labels (n). */
SSL_API int ssl_npy_save_f32_2d(const char *path, int64_t n, int64_t d, const float *x);
SSL_API int ssl_npy_save_labels_i32(const char *path, int64_t n, const int32_t *y);
SSL_API int ssl_npy_save_labels_i64(const char *path, int64_t n, const int64_t *y);

/* Read a .npy file (versions 1.0, 2.0 and 3.0; C order; either byte order; dtypes bool, int
 * and uint of 1-8 bytes, float32, float64). _f32 converts every value to float (float64
 * rounds); _i32 accepts integer and bool dtypes whose values fit int32. Errors name the file
 * and the reason (SSL_ERR_FORMAT for malformed content, SSL_ERR_UNSUPPORTED for Fortran order
 * or other dtypes). */
SSL_API int ssl_npy_load_f32(const char *path, ssl_npy_t *out);
SSL_API int ssl_npy_load_i32(const char *path, ssl_npy_t *out);
SSL_API void ssl_npy_free(ssl_npy_t *a);

#ifdef __cplusplus
}
#endif
#endif /* SSL_IO_H */
