/* Run config strings and lists that cannot be honoured are errors naming the key (issue 17):
 * an empty or too long name (an empty one gave the run directory "-2"), data.root over 511
 * bytes and data.split over 15 (they were cut silently), an empty views list (it trained with
 * the default views). ssl_trainer_create must fail with SSL_ERR_CONFIG before reading any data,
 * so no dataset is needed. */
#include "testutil.h"

#include "ssl/ssl.h"

#include <stdio.h>
#include <string.h>

/* simclr.json with one override: NULL trainer, SSL_ERR_CONFIG, a message holding each needle. */
static void expect_config_error(const char *override, const char *key, const char *why)
{
    ssl_train_opts_t o;
    memset(&o, 0, sizeof o);
    o.config_path = SSL_SOURCE_DIR "/configs/simclr.json";
    o.overrides = &override;
    o.n_overrides = 1;
    o.no_run_dir = 1;
    ssl_clear_error();
    tu_assert_error(ssl_trainer_create(&o), SSL_ERR_CONFIG, key, why, NULL);
}

static void test_strings_never_cut(void **state)
{
    (void)state;
    char buf[700];
    expect_config_error("name=\"\"", "'name'", "must not be empty");
    snprintf(buf, sizeof buf, "name=%064d", 7);
    expect_config_error(buf, "'name'", "64 bytes long, more than the 63 allowed");
    snprintf(buf, sizeof buf, "data.root=/%0600d", 1);
    expect_config_error(buf, "'data.root'", "601 bytes long, more than the 511 allowed");
    snprintf(buf, sizeof buf, "data.split=%016d", 2);
    expect_config_error(buf, "'data.split'", "more than the 15 allowed");
    expect_config_error("data.eval_split=\"\"", "'data.eval_split'", "must not be empty");
}

static void test_empty_views(void **state)
{
    (void)state;
    expect_config_error("views=[]", "'views'", "is empty");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings_never_cut),
        cmocka_unit_test(test_empty_views),
    };
    return tu_status(cmocka_run_group_tests(tests, NULL, NULL));
}
