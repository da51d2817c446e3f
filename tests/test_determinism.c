/* For a fixed seed and thread count every result is bit-identical from run to run: a small
 * network's loss, its parameter gradients and BatchNorm running statistics, run twice with 2
 * threads (and compared with 1 thread, where the kernels promise the same bits). */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "ssl/models.h"

typedef struct run_out {
    float loss;
    float *grad;
    float *bufs;
    size_t n_grad, n_buf;
} run_out_t;

static run_out_t run(int threads)
{
    ssl_set_num_threads(threads);
    ssl_encoder_cfg_t cfg;
    ssl_encoder_preset("resnet18", &cfg);
    cfg.resnet = (ssl_resnet_cfg_t){18, 1, 8, 1, 0, 1};
    ssl_params_t *p = ssl_params_create();
    ssl_encoder_t *e = ssl_encoder_create(&cfg, p, "encoder", 11);
    assert_non_null(e);
    ssl_mlp_t head;
    ssl_mlp_cfg_t hc = {2, 64, 128, 10, SSL_NORM_BN, SSL_ACT_RELU, SSL_NORM_NONE, 0, 1,
                        SSL_INIT_TORCH_DEFAULT, 0};
    assert_int_equal(ssl_mlp_init(&head, p, "head", &hc, 11), SSL_OK);
    ssl_ctx_t *ctx = tu_ctx();
    run_out_t r = {0};
    for (int step = 0; step < 2; step++) {
        ssl_tensor_t *x = tu_rand(ctx, 4, (int64_t[]){16, 1, 28, 28}, 100 + (uint64_t)step, -1, 1,
                                  0);
        int32_t labels[16];
        for (int i = 0; i < 16; i++)
            labels[i] = (i * 7 + step) % 10;
        ssl_encoder_out_t out;
        assert_int_equal(ssl_encoder_forward(ctx, e, x, NULL, 0, 1, &out), SSL_OK);
        ssl_tensor_t *logits = ssl_mlp_forward(ctx, &head, out.pooled, 1);
        ssl_tensor_t *loss = ssl_cross_entropy(ctx, ssl_scale(ctx, logits, 5.0f, 0.0f), labels);
        assert_non_null(loss);
        assert_int_equal(ssl_backward(ctx, loss), SSL_OK);
        r.loss = loss->data[0];
        ssl_ctx_reset(ctx);
    }
    float *g = ssl_params_grad(p, &r.n_grad);
    float *b = ssl_params_buffers(p, &r.n_buf);
    r.grad = malloc(r.n_grad * sizeof(float));
    r.bufs = malloc(r.n_buf * sizeof(float));
    memcpy(r.grad, g, r.n_grad * sizeof(float));
    memcpy(r.bufs, b, r.n_buf * sizeof(float));
    ssl_ctx_free(ctx);
    ssl_encoder_free(e);
    ssl_params_free(p);
    return r;
}

static void test_bit_identical_runs(void **state)
{
    (void)state;
    run_out_t a = run(2), b = run(2), c = run(1);
    assert_true(a.loss == a.loss); /* finite */
    assert_memory_equal(&a.loss, &b.loss, sizeof(float));
    assert_memory_equal(a.grad, b.grad, a.n_grad * sizeof(float));
    assert_memory_equal(a.bufs, b.bufs, a.n_buf * sizeof(float));
    /* Thread count: OpenBLAS may split GEMM sums differently with 1 and 2 threads, so across
     * thread counts the results agree closely but are not promised bit for bit. */
    assert_float_equal(a.loss, c.loss, 1e-5);
    tu_assert_close(a.grad, c.grad, (int64_t)a.n_grad, 1e-5, 1e-3);
    int nonzero = 0;
    for (size_t i = 0; i < a.n_grad; i++)
        nonzero += a.grad[i] != 0.0f;
    assert_true(nonzero > (int)(a.n_grad / 2));
    free(a.grad), free(a.bufs), free(b.grad), free(b.bufs), free(c.grad), free(c.bufs);
    ssl_set_num_threads(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bit_identical_runs),
    };
    return cmocka_run_group_tests_name("determinism", tests, NULL, NULL);
}
