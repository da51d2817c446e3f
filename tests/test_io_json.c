/* Strict JSON: parse errors with line/column, depth limit, duplicate keys, the config reader's
 * key checks and getters (every error names the key path), --set overrides, printing. */
#define _POSIX_C_SOURCE 200809L
#include "testutil.h"

#include "io/json_strict.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parse s (strlen) under the name "cfg.json". */
static cJSON *parse(const char *s)
{
    return ssl_json_parse(s, strlen(s), "cfg.json");
}

/* Assert that parsing fails with SSL_ERR_FORMAT and the message contains each string. */
#define assert_parse_error(text, ...)                                                              \
    do {                                                                                           \
        cJSON *d_ = parse(text);                                                                   \
        if (d_)                                                                                    \
            cJSON_Delete(d_);                                                                      \
        tu_assert_error(d_, SSL_ERR_FORMAT, __VA_ARGS__, NULL);                                    \
    } while (0)

static void test_parse_ok(void **state)
{
    (void)state;
    cJSON *d = parse("\xEF\xBB\xBF { \"a\": [1, -2.5e3, true, false, null], \"b\": {\"c\": "
                     "\"x\\u00e9\\ud83d\\ude00\\n\"}, \"\xc3\xa9\": 0 }\r\n");
    assert_non_null(d);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(d, "a");
    assert_int_equal(cJSON_GetArraySize(a), 5);
    assert_true(cJSON_GetArrayItem(a, 1)->valuedouble == -2500.0);
    const cJSON *c =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(d, "b"), "c");
    assert_string_equal(c->valuestring, "x\xc3\xa9\xf0\x9f\x98\x80\n");
    cJSON_Delete(d);
    /* Any value at the top; the text need not be NUL-terminated. */
    const char buf[] = {'4', '2', 'x'};
    d = ssl_json_parse(buf, 2, "n");
    assert_non_null(d);
    assert_true(d->valuedouble == 42);
    cJSON_Delete(d);
    assert_true(ssl_json_valid("[]", 2));
    assert_false(ssl_json_valid("[", 1));
}

static void test_parse_errors_line_col(void **state)
{
    (void)state;
    /* Missing ':' on line 3, column 7; byte 18. */
    assert_parse_error("{\n  \"a\": 1,\n  \"b\" 2\n}", "cfg.json:3:7 (byte 18)", "':'");
    assert_parse_error("{\"a\": 1,}", "cfg.json:1:8 (byte 7)", "trailing comma");
    assert_parse_error("[1, 2,\n ]", "cfg.json:1:6", "trailing comma");
    assert_parse_error("{\"a\": 1 // c\n}", "1:9", "comments are not allowed");
    assert_parse_error("{'a': 1}", "1:2", "double quotes");
    assert_parse_error("{\"a\": yes}", "1:7", "invalid literal 'yes'");
    assert_parse_error("{\"a\": True}", "invalid literal 'True'");
    assert_parse_error("[NaN]", "invalid literal 'NaN'");
    assert_parse_error("[01]", "leading zero");
    assert_parse_error("[1.]", "expected a digit after '.'");
    assert_parse_error("[1e+]", "exponent");
    assert_parse_error("[-]", "expected a digit");
    assert_parse_error("[+1]", "unexpected '+'");
    assert_parse_error("{\"a\": \"abc", "1:7", "unterminated string");
    assert_parse_error("[\"a\nb\"]", "control character 0x0A");
    assert_parse_error("[\"\\x\"]", "invalid escape");
    assert_parse_error("[\"\\u12G4\"]", "4 hex digits");
    assert_parse_error("[\"\\u0000\"]", "\\u0000");
    assert_parse_error("[\"\\udc00\"]", "lone low surrogate");
    assert_parse_error("[\"\\ud800x\"]", "high surrogate");
    assert_parse_error("[\"\xc3\x28\"]", "invalid UTF-8 byte 0xC3");
    assert_parse_error("[\"\xed\xa0\x80\"]", "invalid UTF-8"); /* encoded surrogate */
    assert_parse_error("[\"\xc0\xaf\"]", "invalid UTF-8");     /* overlong */
    assert_parse_error("", "cfg.json:1:1 (byte 0)", "empty document");
    assert_parse_error("  \n ", "empty document");
    assert_parse_error("{} x", "1:4", "after the JSON value");
    assert_parse_error("{}}", "after the JSON value");
    assert_parse_error("{\"a\" : 1", "end of input");
    assert_parse_error("[1 2]", "',' or ']'");
    assert_parse_error("{\"a\":1 \"b\":2}", "',' or '}'");
    assert_parse_error("{1: 2}", "a string key");
    /* A number longer than cJSON reads (63 characters) is refused, not misread. */
    char big[100];
    memset(big, '1', 70);
    big[0] = '[';
    big[70] = ']';
    big[71] = '\0';
    assert_parse_error(big, "longer than 63");
    /* Embedded NUL bytes: the explicit length is honoured. */
    const char nul_in[] = "{\"a\": \"x\0y\"}";
    cJSON *d = ssl_json_parse(nul_in, sizeof nul_in - 1, "cfg.json");
    tu_assert_error(d, SSL_ERR_FORMAT, "control character 0x00", NULL);
    const char nul_after[] = "{}\0garbage";
    d = ssl_json_parse(nul_after, sizeof nul_after - 1, "cfg.json");
    tu_assert_error(d, SSL_ERR_FORMAT, "1:3", "after the JSON value", NULL);
    /* Columns count characters, not bytes. */
    assert_parse_error("{\"\xc3\xa9\xc3\xa9\": x}", "1:8 (byte 9)");
    /* Offsets can be reported relative to a containing file. */
    d = ssl_json_parse_at("{,}", 3, "f.bin header", 8);
    tu_assert_error(d, SSL_ERR_FORMAT, "f.bin header:1:2 (byte 9)", NULL);
}

static void test_depth_limit(void **state)
{
    (void)state;
    char buf[300];
    for (int depth = 63; depth <= 65; depth++) {
        /* Build {"k":[{"k":[ ... ]}]} alternating objects and arrays. */
        int n = 0;
        for (int i = 0; i < depth; i++) {
            if (i % 2 == 0) {
                memcpy(buf + n, "{\"k\":", 5);
                n += 5;
            } else {
                buf[n++] = '[';
            }
        }
        buf[n++] = '1';
        for (int i = depth - 1; i >= 0; i--)
            buf[n++] = i % 2 == 0 ? '}' : ']';
        buf[n] = '\0';
        cJSON *d = ssl_json_parse(buf, (size_t)n, "deep.json");
        if (depth <= SSL_JSON_MAX_DEPTH) {
            assert_non_null(d);
            cJSON_Delete(d);
        } else {
            tu_assert_error(d, SSL_ERR_FORMAT, "deep.json:1:", "nesting deeper than 64", NULL);
        }
    }
    /* A very deep document fails fast, without recursion into cJSON. */
    size_t n = 1000000;
    char *deep = malloc(n);
    memset(deep, '[', n);
    cJSON *d = ssl_json_parse(deep, n, "deep.json");
    tu_assert_error(d, SSL_ERR_FORMAT, "nesting deeper than 64", NULL);
    free(deep);
    /* Brackets inside strings (escaped quotes included) do not count. */
    char s[400];
    int k = 0;
    s[k++] = '[';
    s[k++] = '"';
    s[k++] = '\\';
    s[k++] = '"';
    for (int i = 0; i < 200; i++)
        s[k++] = i % 2 ? '{' : '[';
    s[k++] = '"';
    s[k++] = ']';
    s[k] = '\0';
    d = parse(s);
    assert_non_null(d);
    cJSON_Delete(d);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    assert_parse_error("{\"a\": 1, \"a\": 2}", "cfg.json: duplicate key 'a'");
    assert_parse_error("{\"model\": {\"encoder\": {\"width\": 1, \"depth\": 2, \"width\": 3}}}",
                       "duplicate key 'model.encoder.width'");
    assert_parse_error("{\"views\": [{\"size\": 1}, {\"size\": 2, \"size\": 2}]}",
                       "duplicate key 'views[1].size'");
    /* Keys are case-sensitive: these are distinct. */
    cJSON *d = parse("{\"a\": 1, \"A\": 2}");
    assert_non_null(d);
    cJSON_Delete(d);
    /* Many keys (sorted check) with one duplicate at the end. */
    char *big = malloc(20000);
    int n = sprintf(big, "{");
    for (int i = 0; i < 500; i++)
        n += sprintf(big + n, "\"k%d\": %d,", i, i);
    n += sprintf(big + n, "\"k250\": 0}");
    d = ssl_json_parse(big, (size_t)n, "big.json");
    tu_assert_error(d, SSL_ERR_FORMAT, "duplicate key 'k250'", NULL);
    free(big);
}

static char g_dir[64];

static int setup_dir(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/ssl_test_json_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_parse_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/bad.json", g_dir);
    FILE *f = fopen(path, "wb");
    fputs("{\n  \"lr\": 0.1,\n  \"lr\": 0.2\n}\n", f);
    fclose(f);
    cJSON *d = ssl_json_parse_file(path);
    tu_assert_error(d, SSL_ERR_FORMAT, path, "duplicate key 'lr'", NULL);
    snprintf(path, sizeof path, "%s/missing.json", g_dir);
    d = ssl_json_parse_file(path);
    tu_assert_error(d, SSL_ERR_IO, path, NULL);
    d = ssl_json_parse_file(g_dir); /* a directory */
    tu_assert_error(d, SSL_ERR_IO, g_dir, NULL);
    /* Print, write atomically, read back: the same document. */
    cJSON *doc = parse("{\"a\": [1, 2.5, \"s\\\"q\"], \"b\": {\"c\": true, \"d\": null}, "
                       "\"e\": 0.1, \"f\": 1e300}");
    assert_non_null(doc);
    snprintf(path, sizeof path, "%s/out.json", g_dir);
    assert_int_equal(ssl_json_write_file(path, doc), SSL_OK);
    cJSON *back = ssl_json_parse_file(path);
    assert_non_null(back);
    assert_true(cJSON_Compare(doc, back, 1));
    char *text = ssl_json_print(doc);
    assert_non_null(text);
    assert_true(text[strlen(text) - 1] == '\n');
    assert_non_null(strstr(text, "0.1"));
    free(text);
    cJSON_Delete(back);
    cJSON_Delete(doc);
}

/* ---------------------------------------------------------------- config reader */

static const char *const enc_keys[] = {"type", "width", "depth", "act", "drop", NULL};

static void test_unknown_key(void **state)
{
    (void)state;
    cJSON *d = parse("{\"model\": {\"encoder\": {\"type\": \"vit\", \"widht\": 3}}}");
    int err = 0;
    ssl_cfg_t root = ssl_cfg_root(d, "simclr.json", &err, 0);
    ssl_cfg_t model = ssl_cfg_obj(&root, "model");
    ssl_cfg_t enc = ssl_cfg_obj(&model, "encoder");
    assert_string_equal(enc.path, "model.encoder");
    assert_int_equal(ssl_cfg_keys(&enc, enc_keys), SSL_ERR_CONFIG);
    assert_int_equal(err, SSL_ERR_CONFIG);
    assert_int_equal(ssl_last_status(), SSL_ERR_CONFIG);
    assert_string_equal(ssl_last_error(),
                        "simclr.json: unknown key 'model.encoder.widht' (did you mean 'width'?)");
    cJSON_Delete(d);

    /* Nothing close: the allowed keys are listed. */
    d = parse("{\"zzzzzz\": 1}");
    err = 0;
    root = ssl_cfg_root(d, NULL, &err, 0);
    ssl_cfg_keys(&root, enc_keys);
    assert_string_equal(ssl_last_error(),
                        "unknown key 'zzzzzz' (allowed keys: type, width, depth, act, drop)");
    cJSON_Delete(d);

    /* Case differences and transpositions are suggested. */
    static const char *const opt[] = {"batch_size", "epochs", "temperature", NULL};
    assert_string_equal(ssl_nearest("BATCH_SIZE", opt, 3), "batch_size");
    assert_string_equal(ssl_nearest("epcohs", opt, 3), "epochs");
    assert_string_equal(ssl_nearest("temprature", opt, 3), "temperature");
    assert_null(ssl_nearest("lr", opt, 3));
    assert_int_equal(ssl_edit_distance("widht", "width"), 1);
    assert_int_equal(ssl_edit_distance("", "abc"), 3);
    assert_int_equal(ssl_edit_distance("kitten", "sitting"), 3);
}

/* Run one getter over {"k": <json>} under path "a.b" and check the error text. */
typedef void (*getter_fn)(ssl_cfg_t *c);

static void expect_cfg_error(const char *json, getter_fn fn, const char *want1, const char *want2)
{
    char doc[512];
    snprintf(doc, sizeof doc, "{\"a\": {\"b\": {\"k\": %s}}}", json);
    cJSON *d = parse(doc);
    assert_non_null(d);
    int err = 0;
    ssl_cfg_t root = ssl_cfg_root(d, "x.json", &err, 0);
    ssl_cfg_t a = ssl_cfg_obj(&root, "a");
    ssl_cfg_t b = ssl_cfg_obj(&a, "b");
    ssl_clear_error();
    fn(&b);
    if (err != SSL_ERR_CONFIG)
        fail_msg("no error for %s", json);
    const char *msg = ssl_last_error();
    if (strncmp(msg, "x.json: ", 8) != 0 || !strstr(msg, "'a.b.") || !strstr(msg, want1) ||
        (want2 && !strstr(msg, want2)))
        fail_msg("for %s: message \"%s\" lacks \"%s\" / \"%s\"", json, msg, want1,
                 want2 ? want2 : "");
    cJSON_Delete(d);
}

static void g_int(ssl_cfg_t *c)
{
    assert_int_equal(ssl_cfg_int(c, "k", 7, 1, 4096), 7);
}
static void g_int_min(ssl_cfg_t *c)
{
    ssl_cfg_int(c, "k", 7, 1, INT32_MAX);
}
static void g_i64(ssl_cfg_t *c)
{
    ssl_cfg_i64(c, "k", 7, INT64_MIN, INT64_MAX);
}
static void g_dbl(ssl_cfg_t *c)
{
    assert_true(ssl_cfg_double(c, "k", 0.5, 0, 1) == 0.5);
}
static void g_dbl_open(ssl_cfg_t *c)
{
    ssl_cfg_double_ex(c, "k", 0.5, 0, INFINITY, SSL_CFG_LO_OPEN);
}
static void g_dbl_open2(ssl_cfg_t *c)
{
    ssl_cfg_double_ex(c, "k", 0.5, 0, 1, SSL_CFG_LO_OPEN | SSL_CFG_HI_OPEN);
}
static void g_flt(ssl_cfg_t *c)
{
    ssl_cfg_float(c, "k", 0.5, -INFINITY, INFINITY);
}
static void g_bool(ssl_cfg_t *c)
{
    assert_int_equal(ssl_cfg_bool(c, "k", 1), 1);
}
static void g_str(ssl_cfg_t *c)
{
    assert_string_equal(ssl_cfg_str(c, "k", "d"), "d");
}
static const char *const acts[] = {"relu", "gelu", "silu", NULL};
static void g_enum(ssl_cfg_t *c)
{
    assert_int_equal(ssl_cfg_enum(c, "k", acts, 1), 1);
}
static void g_floats(ssl_cfg_t *c)
{
    float v[3];
    static const double def[2] = {0.25, 0.5};
    assert_int_equal(ssl_cfg_floats(c, "k", v, 2, 3, def, 2, 0, 1), 2);
    assert_true(v[0] == 0.25f && v[1] == 0.5f);
}
static void g_ints(ssl_cfg_t *c)
{
    int v[2];
    static const int def[2] = {3, 4};
    assert_int_equal(ssl_cfg_ints(c, "k", v, 2, 2, def, 2, 1, 10), 2);
    assert_true(v[0] == 3 && v[1] == 4);
}
static void g_range(ssl_cfg_t *c)
{
    float r[2];
    ssl_cfg_range(c, "k", r, 0.08, 1.0, 0, 1);
    assert_true(r[0] == 0.08f && r[1] == 1.0f);
}
static void g_obj(ssl_cfg_t *c)
{
    ssl_cfg_t s = ssl_cfg_obj(c, "k");
    assert_null(s.obj);
    assert_int_equal(ssl_cfg_int(&s, "x", 5, 0, 9), 5);
}
static void g_len(ssl_cfg_t *c)
{
    assert_int_equal(ssl_cfg_len(c, "k"), 0);
}
static void g_at(ssl_cfg_t *c)
{
    ssl_cfg_t e = ssl_cfg_at(c, "k", 1);
    assert_null(e.obj);
}
static void g_require(ssl_cfg_t *c)
{
    ssl_cfg_require(c, "missing");
}

static void test_getter_errors(void **state)
{
    (void)state;
    expect_cfg_error("2.5", g_int, "expected an integer in [1, 4096], got 2.5", NULL);
    expect_cfg_error("5000", g_int, "expected an integer in [1, 4096], got 5000", NULL);
    expect_cfg_error("0", g_int, "got 0", NULL);
    expect_cfg_error("\"12\"", g_int, "got string \"12\"", NULL);
    expect_cfg_error("true", g_int, "got true", NULL);
    expect_cfg_error("1e300", g_int, "got 1e+300", NULL);
    expect_cfg_error("0", g_int_min, "expected an integer >= 1, got 0", NULL);
    expect_cfg_error("1e16", g_i64, "expected an integer, got 1e+16", NULL);
    expect_cfg_error("[1]", g_i64, "got an array", NULL);
    expect_cfg_error("1.5", g_dbl, "expected a number in [0, 1], got 1.5", NULL);
    expect_cfg_error("-0.1", g_dbl, "got -0.1", NULL);
    expect_cfg_error("{}", g_dbl, "got an object", NULL);
    expect_cfg_error("1e999", g_dbl, "got inf", NULL); /* overflows to infinity */
    expect_cfg_error("0", g_dbl_open, "expected a number > 0, got 0", NULL);
    expect_cfg_error("1", g_dbl_open2, "expected a number in (0, 1), got 1", NULL);
    expect_cfg_error("1e300", g_flt, "expected a finite number, got 1e+300", NULL);
    expect_cfg_error("1", g_bool, "expected true or false, got 1", NULL);
    expect_cfg_error("\"yes\"", g_bool, "got string \"yes\"", NULL);
    expect_cfg_error("3", g_str, "expected a string, got 3", NULL);
    expect_cfg_error("\"gelu2\"", g_enum, "'gelu2' is not one of: relu, gelu, silu",
                     "(did you mean 'gelu'?)");
    expect_cfg_error("\"tanh\"", g_enum, "is not one of: relu, gelu, silu", NULL);
    expect_cfg_error("1", g_enum, "expected one of: relu, gelu, silu; got 1", NULL);
    expect_cfg_error("0.5", g_floats,
                     "expected an array of 2 to 3 elements, each a number in "
                     "[0, 1]; got 0.5",
                     NULL);
    expect_cfg_error("[0.5]", g_floats, "got 1 element", NULL);
    expect_cfg_error("[0.1, 0.2, 0.3, 0.4]", g_floats, "got 4 elements", NULL);
    expect_cfg_error("[0.5, 1.5]", g_floats, "key 'a.b.k[1]'", "got 1.5");
    expect_cfg_error("[0.5, \"x\"]", g_floats, "key 'a.b.k[1]'", "got string \"x\"");
    expect_cfg_error("[1, 2.5]", g_ints, "key 'a.b.k[1]'", "expected an integer in [1, 10]");
    expect_cfg_error("[1, 11]", g_ints, "key 'a.b.k[1]'", "got 11");
    expect_cfg_error("[0.9, 0.1]", g_range, "expected [a, b] with a <= b, got [0.9, 0.1]", NULL);
    expect_cfg_error("[0.5, 2]", g_range, "k[1]", NULL);
    expect_cfg_error("[1]", g_obj, "expected an object, got an array", NULL);
    expect_cfg_error("{}", g_len, "expected an array, got an object", NULL);
    expect_cfg_error("[{}]", g_at, "key 'a.b.k[1]'", "index out of range (the array has 1");
    expect_cfg_error("[{}, 3]", g_at, "key 'a.b.k[1]'", "expected an object, got 3");
    expect_cfg_error("1", g_require, "missing required key 'a.b.missing'", NULL);
    /* A null value means "use the default": no error. */
    cJSON *d = parse("{\"k\": null}");
    int err = 0;
    ssl_cfg_t r = ssl_cfg_root(d, NULL, &err, 0);
    assert_int_equal(ssl_cfg_int(&r, "k", 9, 0, 10), 9);
    assert_false(ssl_cfg_has(&r, "k"));
    assert_int_equal(err, 0);
    cJSON_Delete(d);
    /* The root must be an object. */
    d = parse("[1]");
    err = 0;
    r = ssl_cfg_root(d, "c.json", &err, 0);
    assert_int_equal(err, SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "c.json: the config must be a JSON object"));
    assert_int_equal(ssl_cfg_int(&r, "k", 3, 0, 10), 3);
    cJSON_Delete(d);
}

static void test_getters_read_values(void **state)
{
    (void)state;
    cJSON *d = parse("{\"model\": {\"width\": 128, \"act\": \"silu\", \"drop\": 0.25, "
                     "\"norm\": false, \"name\": \"enc\", \"seed\": 9007199254740992, "
                     "\"scale\": [0.2, 1], \"kernel\": [3, 5, 7], \"lr\": 1e-3},"
                     " \"views\": [{\"size\": 224}, {\"size\": 96}]}");
    int err = 0;
    ssl_cfg_t root = ssl_cfg_root(d, "c.json", &err, 0);
    ssl_cfg_t m = ssl_cfg_obj(&root, "model");
    assert_int_equal(ssl_cfg_int(&m, "width", 64, 1, 4096), 128);
    assert_int_equal(ssl_cfg_enum(&m, "act", acts, 0), 2);
    assert_true(ssl_cfg_float(&m, "drop", 0, 0, 1) == 0.25f);
    assert_int_equal(ssl_cfg_bool(&m, "norm", 1), 0);
    assert_string_equal(ssl_cfg_str(&m, "name", "x"), "enc");
    assert_true(ssl_cfg_i64(&m, "seed", 0, 0, INT64_MAX) == 9007199254740992LL);
    float sc[2];
    ssl_cfg_range(&m, "scale", sc, 0.08, 1, 0, 1);
    assert_true(sc[0] == 0.2f && sc[1] == 1.0f);
    int k[4];
    static const int kdef[1] = {3};
    assert_int_equal(ssl_cfg_ints(&m, "kernel", k, 1, 4, kdef, 1, 1, 15), 3);
    assert_int_equal(k[2], 7);
    assert_true(ssl_cfg_double_ex(&m, "lr", 0.1, 0, INFINITY, SSL_CFG_LO_OPEN) == 1e-3);
    assert_int_equal(ssl_cfg_int(&m, "absent", 42, 0, 100), 42);
    assert_int_equal(ssl_cfg_len(&root, "views"), 2);
    ssl_cfg_t v1 = ssl_cfg_at(&root, "views", 1);
    assert_string_equal(v1.path, "views[1]");
    assert_int_equal(ssl_cfg_int(&v1, "size", 0, 1, 1024), 96);
    assert_int_equal(err, 0);
    /* Sticky errors: the first one is kept, later getters return defaults. */
    assert_int_equal(ssl_cfg_int(&m, "act", 5, 0, 10), 5);
    assert_int_equal(err, SSL_ERR_CONFIG);
    char first[256];
    snprintf(first, sizeof first, "%s", ssl_last_error());
    assert_non_null(strstr(first, "key 'model.act'"));
    assert_int_equal(ssl_cfg_int(&v1, "size", 11, 1, 10), 11); /* would fail: not recorded */
    assert_string_equal(ssl_last_error(), first);
    ssl_cfg_fail(&m, "width", "must divide %d", 3);
    assert_string_equal(ssl_last_error(), first);
    assert_int_equal(ssl_cfg_status(&v1), SSL_ERR_CONFIG);
    cJSON_Delete(d);

    /* ssl_cfg_fail for cross-field checks. */
    d = parse("{\"heads\": 5}");
    err = 0;
    root = ssl_cfg_root(d, NULL, &err, 0);
    assert_int_equal(ssl_cfg_fail(&root, "heads", "must divide width %d", 64), SSL_ERR_CONFIG);
    assert_string_equal(ssl_last_error(), "key 'heads': must divide width 64");
    cJSON_Delete(d);
}

static void test_fill_defaults(void **state)
{
    (void)state;
    cJSON *d = parse("{\"model\": {\"width\": 32, \"act\": null}}");
    int err = 0;
    ssl_cfg_t root = ssl_cfg_root(d, NULL, &err, SSL_CFG_FILL);
    ssl_cfg_t m = ssl_cfg_obj(&root, "model");
    ssl_cfg_int(&m, "width", 64, 1, 4096);
    ssl_cfg_int(&m, "depth", 12, 1, 64);
    ssl_cfg_enum(&m, "act", acts, 1);
    ssl_cfg_float(&m, "drop", 0.1, 0, 1);
    ssl_cfg_bool(&m, "norm", 1);
    ssl_cfg_str(&m, "name", "enc");
    ssl_cfg_str(&m, "opt", NULL); /* no default: nothing written */
    float sc[2];
    ssl_cfg_range(&m, "scale", sc, 0.08, 1.0, 0, 1);
    int kk[2];
    static const int kdef[2] = {3, 5};
    ssl_cfg_ints(&m, "k", kk, 2, 2, kdef, 2, 1, 9);
    ssl_cfg_t optim = ssl_cfg_obj(&root, "optim"); /* absent section: created */
    assert_non_null(optim.obj);
    ssl_cfg_double(&optim, "lr", 0.3, 0, 10);
    assert_int_equal(err, 0);
    cJSON *want = parse("{\"model\": {\"width\": 32, \"act\": \"gelu\", \"depth\": 12, "
                        "\"drop\": 0.1, \"norm\": true, \"name\": \"enc\", \"scale\": [0.08, 1],"
                        " \"k\": [3, 5]}, \"optim\": {\"lr\": 0.3}}");
    assert_true(cJSON_Compare(d, want, 1));
    char *text = ssl_json_print(d);
    assert_non_null(strstr(text, "0.1,")); /* the double default, not 0.10000000149 */
    assert_null(strstr(text, "0.100000"));
    free(text);
    /* Without FILL nothing is written. */
    cJSON_Delete(want);
    want = cJSON_Duplicate(d, 1);
    err = 0;
    root = ssl_cfg_root(d, NULL, &err, 0);
    ssl_cfg_t other = ssl_cfg_obj(&root, "other");
    ssl_cfg_int(&other, "x", 1, 0, 2);
    ssl_cfg_int(&root, "y", 1, 0, 2);
    assert_true(cJSON_Compare(d, want, 1));
    cJSON_Delete(want);
    cJSON_Delete(d);
}

static void test_set_overrides(void **state)
{
    (void)state;
    cJSON *d = parse("{\"train\": {\"lr\": 0.1, \"epochs\": 10}, \"name\": \"a\"}");
    assert_int_equal(ssl_json_override(d, "train.lr=0.05"), SSL_OK);
    assert_int_equal(ssl_json_override(d, "train.nesterov=true"), SSL_OK);
    assert_int_equal(ssl_json_override(d, "train.betas=[0.9, 0.95]"), SSL_OK);
    assert_int_equal(ssl_json_override(d, "model.encoder.type=resnet50"), SSL_OK);
    assert_int_equal(ssl_json_override(d, "model.head={\"dim\": 128}"), SSL_OK);
    assert_int_equal(ssl_json_override(d, "name=\"true\""), SSL_OK);
    assert_int_equal(ssl_json_override(d, "note=a=b"), SSL_OK);
    assert_int_equal(ssl_json_override(d, "empty="), SSL_OK);
    assert_int_equal(ssl_json_override(d, "train.epochs=null"), SSL_OK);
    cJSON *want = parse("{\"train\": {\"lr\": 0.05, \"epochs\": null, \"nesterov\": true, "
                        "\"betas\": [0.9, 0.95]}, \"name\": \"true\", \"model\": {\"encoder\": "
                        "{\"type\": \"resnet50\"}, \"head\": {\"dim\": 128}}, \"note\": \"a=b\","
                        " \"empty\": \"\"}");
    assert_true(cJSON_Compare(d, want, 1));
    /* Key order is kept when replacing. */
    assert_string_equal(d->child->child->string, "lr");
    cJSON_Delete(want);
    want = cJSON_Duplicate(d, 1);
    /* Errors name the path and change nothing. */
    assert_int_equal(ssl_json_override(d, "train.lr.x=3"), SSL_ERR_CONFIG);
    assert_string_equal(ssl_last_error(), "--set train.lr.x: 'train.lr' is a number, not an "
                                          "object");
    assert_int_equal(ssl_json_override(d, "train.betas.0=3"), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "'train.betas' is an array, not an object"));
    assert_int_equal(ssl_json_override(d, "a..b=1"), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "--set a..b: empty key"));
    assert_int_equal(ssl_json_override(d, ".a=1"), SSL_ERR_CONFIG);
    assert_int_equal(ssl_json_override(d, "a.=1"), SSL_ERR_CONFIG);
    assert_int_equal(ssl_json_override(d, "=1"), SSL_ERR_CONFIG);
    assert_int_equal(ssl_json_override(d, "novalue"), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "expected path.to.key=value"));
    assert_int_equal(ssl_json_override(d, "x={\"a\":1,\"a\":2}"), SSL_ERR_FORMAT);
    assert_non_null(strstr(ssl_last_error(), "duplicate key 'a'"));
    assert_true(cJSON_Compare(d, want, 1));
    /* Malformed JSON becomes a string (the reader then reports the type). */
    assert_int_equal(ssl_json_set(d, "train.lr", "[1,"), SSL_OK);
    assert_string_equal(cJSON_GetObjectItem(d->child, "lr")->valuestring, "[1,");
    cJSON_Delete(want);
    cJSON_Delete(d);
    d = parse("[]");
    assert_int_equal(ssl_json_set(d, "a", "1"), SSL_ERR_INVALID);
    cJSON_Delete(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_errors_line_col),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test_setup_teardown(test_parse_file, setup_dir, teardown_dir),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_getter_errors),
        cmocka_unit_test(test_getters_read_values),
        cmocka_unit_test(test_fill_defaults),
        cmocka_unit_test(test_set_overrides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
