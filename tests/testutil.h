/* Shared test helpers: random tensors, closeness checks and the central-difference gradient
 * check every op test uses. Include after <cmocka.h>'s prerequisites via this header. */
#ifndef SSL_TESTUTIL_H
#define SSL_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/core_internal.h"
#include "ssl/core.h"

/* Uniform values in [lo, hi) from (seed) into a new arena tensor; requires_grad as given. */
ssl_tensor_t *tu_rand(ssl_ctx_t *ctx, int ndim, const int64_t *shape, uint64_t seed, float lo,
                      float hi, int requires_grad);
/* Same, but every |value| >= gap (keeps inputs off kinks at 0 such as relu, abs, l1). */
ssl_tensor_t *tu_rand_away0(ssl_ctx_t *ctx, int ndim, const int64_t *shape, uint64_t seed,
                            float lo, float hi, float gap, int requires_grad);

/* Skips the running test, printing why, and remembers it: a test binary returns
 * tu_status(cmocka_run_group_tests(...)), which is 77 (ctest: skipped, SKIP_RETURN_CODE) when
 * nothing failed but something was skipped, so a missing dataset or tool shows as a skip, not
 * as a pass (.ci/run fails on skips). */
#define TU_SKIP(...)                                                                               \
    do {                                                                                           \
        tu_note_skip(__VA_ARGS__);                                                                 \
        skip();                                                                                    \
    } while (0)
void tu_note_skip(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* failed (cmocka's count of failed tests) if non-zero, else 77 if a test was skipped, else 0. */
int tu_status(int failed);

/* Number of i with |a[i] - b[i]| > atol + rtol * |b[i]|; prints the first few. */
int tu_count_mismatch(const float *a, const float *b, int64_t n, double atol, double rtol,
                      const char *what);
#define tu_assert_close(a, b, n, atol, rtol)                                                     \
    assert_int_equal(tu_count_mismatch((a), (b), (n), (atol), (rtol), #a " vs " #b), 0)

/* Builds the graph under test from the inputs; returns its output (any shape). */
typedef ssl_graph_fn tu_build_fn;

typedef struct tu_gradcheck_opts {
    double eps;       /* central-difference step (default 1e-3) */
    double atol;      /* default 1e-3 */
    double rtol;      /* default 1e-2 */
    int max_per_input; /* elements checked per input, spread over it (default 256) */
} tu_gradcheck_opts_t;

/* Checks d f / d in[i] for every input that requires a gradient, where
 * f = sum_j out_j * r_j with fixed random weights r (so every output element matters).
 * Analytic: ssl_backward_with(out, r). Numeric: (f(x + eps) - f(x - eps)) / 2 eps, f
 * accumulated in double, forward run in a scratch context with grad mode off.
 * Returns the number of mismatching elements (0 = pass) and prints the worst ones.
 * Leaves the inputs' data unchanged. opts may be NULL. */
int tu_gradcheck(ssl_ctx_t *ctx, tu_build_fn fn, void *user, ssl_tensor_t **in, int n_in,
                 const tu_gradcheck_opts_t *opts);

/* An op's input gradients when the input already holds another consumer's gradient: each
 * input that requires a gradient goes through an intermediate copy, which is also read by a
 * second consumer (2 * copy, recorded after the op, so its backward runs first). The inputs'
 * gradients must equal the op's own (a first run without the second consumer) plus 2 * the
 * second consumer's upstream. Catches kernels that store where they must add. Fails the test
 * on a mismatch; leaves the inputs' gradients zeroed. */
void tu_check_grad_adds(ssl_ctx_t *ctx, tu_build_fn fn, void *user, ssl_tensor_t **in, int n_in,
                        uint64_t seed);

/* Fresh context with a small arena (freed by the caller with ssl_ctx_free). */
ssl_ctx_t *tu_ctx(void);

/* Assert that `t` is NULL and the last error is `status` and mentions every string in the
 * NULL-terminated list (used for shape errors that must name both shapes). */
void tu_assert_error(const void *t, int status, ...);
/* ssl_trainer_create refuses the run config text (no run directory) with an error holding every
 * one of the NULL-ended needles. */
void tu_expect_trainer_config_error(const char *config, const char *const *needles);
/* A fresh directory tu_tmp for a test group (cmocka group setup) and its removal (teardown). */
extern char tu_tmp[256];
int tu_tmpdir_setup(void **state);
int tu_tmpdir_teardown(void **state);
/* The image file at path exists and is a w x h image (fails the test naming the path). */
void tu_expect_image_size(const char *path, int w, int h);

/* ---------------------------------------------------------------- golden fixtures */

typedef struct ssl_st_reader ssl_st_t;
#define TU_FIXTURE(name) SSL_SOURCE_DIR "/tests/fixtures/" name
/* Open a safetensors fixture (fails the test with the reason when it cannot). */
ssl_st_t *tu_fixture_open(const char *path);
/* Tensor `name` of a fixture as float32 in ctx (fails the test when absent). */
ssl_tensor_t *tu_fixture_tensor(ssl_ctx_t *ctx, const ssl_st_t *f, const char *name);
/* Tensor `name` of a fixture stored as F64, malloc'd (free it); its element count must be numel
 * (fails the test otherwise). */
double *tu_fixture_f64(const ssl_st_t *f, const char *name, int64_t numel);
/* Every trainable parameter's gradient against the fixture's "grad.<name>"; fails the test on a
 * missing tensor or a mismatch; returns how many were compared. */
int tu_fixture_param_grads(const ssl_st_t *f, ssl_params_t *p, double atol, double rtol);

#endif
