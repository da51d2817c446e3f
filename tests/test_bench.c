/* Benchmark plumbing: the GEMM FLOP counter, the synthetic dataset, ssl_bench_run on a tiny
 * workload (timings are not tested, only that the numbers are consistent) and its errors. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "core/core_internal.h"
#include "ssl/data.h"
#include "ssl/models.h"
#include "ssl/train.h"

static void test_gemm_flop_counter(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t sa[2] = {5, 7}, sb[2] = {7, 3};
    ssl_tensor_t *a = tu_rand(ctx, 2, sa, 1, -1, 1, 0), *b = tu_rand(ctx, 2, sb, 2, -1, 1, 0);
    uint64_t f0 = ssl_gemm_flops();
    ssl_tensor_t *c = ssl_matmul(ctx, a, b, 0, 0);
    assert_non_null(c);
    assert_int_equal(ssl_gemm_flops() - f0, 2 * 5 * 7 * 3);
    ssl_ctx_free(ctx);
}

static void test_op_profile(void **state)
{
    (void)state;
    ssl_ctx_t *ctx = tu_ctx();
    int64_t sa[2] = {5, 7}, sb[2] = {7, 3};
    ssl_tensor_t *a = tu_rand(ctx, 2, sa, 1, -1, 1, 1), *b = tu_rand(ctx, 2, sb, 2, -1, 1, 0);
    ssl_profile_reset();
    ssl_profile_enable(1);
    ssl_tensor_t *loss = ssl_sum_all(ctx, ssl_relu(ctx, ssl_matmul(ctx, a, b, 0, 0)));
    assert_int_equal(ssl_backward(ctx, loss), SSL_OK);
    ssl_tensor_t *again = ssl_relu(ctx, a);
    assert_non_null(again);
    ssl_profile_enable(0);
    ssl_tensor_t *unseen = ssl_matmul(ctx, a, b, 0, 0); /* profiling off: not counted */
    assert_non_null(unseen);
    ssl_op_profile_t p[8];
    int n = ssl_profile_get(p, 8);
    assert_int_equal(n, 3);
    int seen = 0;
    for (int i = 0; i < n; i++) {
        assert_true(p[i].fwd_s >= 0 && p[i].bwd_s >= 0);
        if (i > 0)
            assert_true(p[i - 1].fwd_s + p[i - 1].bwd_s >= p[i].fwd_s + p[i].bwd_s);
        if (!strcmp(p[i].op, "matmul")) {
            assert_int_equal(p[i].fwd_calls, 1);
            assert_int_equal(p[i].bwd_calls, 1);
            seen |= 1;
        } else if (!strcmp(p[i].op, "relu")) {
            assert_int_equal(p[i].fwd_calls, 2);
            assert_int_equal(p[i].bwd_calls, 1);
            seen |= 2;
        }
    }
    assert_int_equal(seen, 3);
    assert_int_equal(ssl_profile_get(p, 1), 1); /* truncated to max */
    ssl_profile_reset();
    assert_int_equal(ssl_profile_get(p, 8), 0);
    ssl_ctx_free(ctx);
}

static void test_synthetic_dataset(void **state)
{
    (void)state;
    ssl_dataset_t *a = ssl_dataset_synthetic(25, 3, 8, 6, 10, 7);
    ssl_dataset_t *b = ssl_dataset_synthetic(25, 3, 8, 6, 10, 7);
    ssl_dataset_t *c = ssl_dataset_synthetic(25, 3, 8, 6, 10, 8);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(a->n, 25);
    assert_int_equal(a->n_classes, 10);
    assert_string_equal(a->class_names[9], "class9");
    size_t bytes = 25 * 3 * 8 * 6;
    assert_memory_equal(a->images, b->images, bytes);           /* deterministic in seed */
    assert_memory_not_equal(a->images, c->images, bytes);       /* and varies with it */
    int hist[4] = {0};                                          /* pixels cover the range */
    for (size_t i = 0; i < bytes; i++)
        hist[a->images[i] >> 6]++;
    for (int q = 0; q < 4; q++)
        assert_true(hist[q] > (int)bytes / 8);
    for (int i = 0; i < 25; i++)
        assert_int_equal(a->labels[i], i % 10);
    ssl_dataset_free(a);
    ssl_dataset_free(b);
    ssl_dataset_free(c);
    assert_null(ssl_dataset_synthetic(4, 1, 8, 8, 0, 1));
    tu_assert_error(NULL, SSL_ERR_INVALID, "n_classes", NULL);
}

static void test_bench_tiny_workload(void **state)
{
    (void)state;
    const char *sets[] = {"model.encoder.width=4", "model.projector.hidden_dim=32"};
    ssl_bench_opts_t o = {0};
    o.workload = "simclr-r18";
    o.overrides = sets;
    o.n_overrides = 2;
    o.batch_size = 4;
    o.steps = 3;
    o.threads = 1;
    o.peak_n = 64;
    ssl_bench_result_t r, rw;
    assert_int_equal(ssl_bench_run(&o, &rw), SSL_OK); /* direct / Winograd 3x3 stride-1 convs */
    /* every conv through im2col + GEMM */
    ssl__conv_winograd = ssl__conv_direct = ssl__conv_wino4 = ssl__conv_cl = 0;
    assert_int_equal(ssl_bench_run(&o, &r), SSL_OK);
    ssl__conv_winograd = ssl__conv_direct = ssl__conv_wino4 = ssl__conv_cl = 1;
    assert_true(rw.gemm_gflop_per_step < 0.8 * r.gemm_gflop_per_step);
    /* the model's count does not depend on the kernels; with every product a GEMM it is the
     * GEMM count */
    assert_true(rw.model_gflop_per_step == r.model_gflop_per_step);
    assert_true(r.model_gflop_per_step == r.gemm_gflop_per_step);
    assert_true(fabs(rw.model_gflops - rw.model_gflop_per_step / rw.step_s_median) <
                1e-9 * rw.model_gflops);
    assert_string_equal(r.name, "simclr-r18");
    assert_int_equal(r.batch_size, 4);
    assert_int_equal(r.steps, 3);
    assert_true(r.step_s_min > 0 && r.step_s_min <= r.step_s_median &&
                r.step_s_median <= r.step_s_max);
    assert_true(fabs(r.images_per_s - 4 / r.step_s_median) < 1e-6 * r.images_per_s);
    /* forward + backward (input and weight gradients) of 8 views through the encoder: 3x the
     * encoder's forward MACs x 2 FLOP, plus a little for the projector and the loss (the stem
     * conv's input gradient is not needed, so slightly less than 3x is fine too) */
    ssl_encoder_cfg_t ec;
    const char *js = "{\"type\": \"resnet18\", \"stem\": \"cifar\", \"width\": 4}";
    assert_int_equal(ssl_encoder_cfg_from_json(js, strlen(js), "test", &ec), SSL_OK);
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&ec, p, "", 0);
    assert_non_null(e);
    double fwd = 2.0 * 8 * (double)ssl_encoder_macs(e, 32, 32) * 1e-9;
    assert_true(r.gemm_gflop_per_step > 2.9 * fwd);
    assert_true(r.gemm_gflop_per_step < 3.5 * fwd);
    ssl_encoder_free(e);
    ssl_params_free(p);
    assert_true(r.gemm_gflops > 0 && r.sgemm_peak_gflops > 0);
    assert_true(isfinite(r.loss) && r.loss > 0);
    assert_true(r.peak_rss_bytes > 0);
}

static void test_bench_errors(void **state)
{
    (void)state;
    ssl_bench_opts_t o = {0};
    ssl_bench_result_t r;
    o.workload = "resnet-9000";
    assert_int_equal(ssl_bench_run(&o, &r), SSL_ERR_INVALID);
    tu_assert_error(NULL, SSL_ERR_INVALID, "resnet-9000", "simclr-r18, mae-vitt", NULL);
    o.workload = NULL;
    assert_int_equal(ssl_bench_run(&o, &r), SSL_ERR_INVALID);
    const char *bad[] = {"model.encoder.widht=4"};
    o.workload = "simclr-r18";
    o.overrides = bad;
    o.n_overrides = 1;
    assert_int_not_equal(ssl_bench_run(&o, &r), SSL_OK);
    tu_assert_error(NULL, ssl_last_status(), "model.encoder.widht", NULL);
    assert_null(ssl_bench_workload_config("nope"));
    assert_non_null(strstr(ssl_bench_workload_config("mae-vitt"), "vit_tiny"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_flop_counter),
        cmocka_unit_test(test_op_profile),
        cmocka_unit_test(test_synthetic_dataset),
        cmocka_unit_test(test_bench_tiny_workload),
        cmocka_unit_test(test_bench_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
