/* metrics.jsonl reader (ssl_run_log_*): columns, null and missing values, series; errors name
 * the file and the line. */
#include "../tools/common/blas_env.h" /* first: defines _GNU_SOURCE */

#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ssl/train.h"

static char g_path[64];

static void write_file(const char *text)
{
    snprintf(g_path, sizeof g_path, "/tmp/ssl_runlog_%d.jsonl", (int)getpid());
    FILE *f = fopen(g_path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_runlog_read(void **state)
{
    (void)state;
    write_file("{\"epoch\": 0, \"step\": 0, \"knn_top1\": 0.5}\n"
               "\n"
               "{\"epoch\": 1, \"step\": 10, \"loss\": 2.5, \"lr\": 0.1}\n"
               "{\"epoch\": 1, \"step\": 20, \"loss\": null, \"lr\": 0.05}\r\n"
               "{\"epoch\": 1, \"step\": 20, \"loss_mean\": 2.25, \"knn_top1\": 0.75}");
    ssl_run_log_t log;
    assert_int_equal(ssl_run_log_read(g_path, &log), SSL_OK);
    assert_int_equal(log.n_rows, 4);
    assert_int_equal(log.n_keys, 6);
    int kl = ssl_run_log_key(&log, "loss");
    assert_true(kl >= 0);
    assert_int_equal(ssl_run_log_key(&log, "nope"), -1);
    assert_true(isnan(log.values[0 * SSL_RUN_LOG_MAX_KEYS + kl])); /* missing */
    assert_true(isnan(log.values[2 * SSL_RUN_LOG_MAX_KEYS + kl])); /* null */
    double x[4], y[4];
    assert_int_equal(ssl_run_log_series(&log, "step", "loss", x, y), 1);
    assert_true(x[0] == 10 && y[0] == 2.5);
    assert_int_equal(ssl_run_log_series(&log, "step", "knn_top1", x, y), 2);
    assert_true(x[1] == 20 && y[1] == 0.75);
    assert_int_equal(ssl_run_log_series(&log, "step", "rankme", x, y), 0);
    ssl_run_log_free(&log);
    unlink(g_path);
}

static void expect_error(const char *text, const char *needle)
{
    write_file(text);
    ssl_run_log_t log;
    assert_int_not_equal(ssl_run_log_read(g_path, &log), SSL_OK);
    if (!strstr(ssl_last_error(), needle) || !strstr(ssl_last_error(), g_path))
        fail_msg("error '%s' lacks '%s' or the file name", ssl_last_error(), needle);
    assert_int_equal(log.n_rows, 0);
    unlink(g_path);
}

static void test_runlog_errors(void **state)
{
    (void)state;
    expect_error("{\"step\": 1}\n{\"step\": 2,}\n", "line 2");
    expect_error("{\"step\": 1}\n[1, 2]\n", "line 2: not a JSON object");
    expect_error("{\"step\": 1, \"name\": \"x\"}\n", "line 1: key 'name' is not a number");
    expect_error("{\"step\": 1}\n{\"step\": 2, \"loss\": 1.", "line 2: the last line is cut short");
    expect_error("{\"step\": nan}\n", "line 1");
    ssl_run_log_t log;
    assert_int_equal(ssl_run_log_read("/nonexistent/metrics.jsonl", &log), SSL_ERR_IO);
    assert_non_null(strstr(ssl_last_error(), "/nonexistent/metrics.jsonl"));
}

int main(int argc, char **argv)
{
    ssl_tool_blas_reexec(argv);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runlog_read),
        cmocka_unit_test(test_runlog_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
