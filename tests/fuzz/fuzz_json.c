/* libFuzzer harness: the strict JSON parser, the config reader and --set on arbitrary bytes.
 * A document that parses must print and parse back to an equal document; the scanner and the
 * parser must agree. Corpus: tests/fuzz/corpus/json/. */
#include "io/json_strict.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int has_nonfinite(const cJSON *n)
{
    if (cJSON_IsNumber(n) && !isfinite(n->valuedouble))
        return 1;
    for (const cJSON *c = n->child; c; c = c->next)
        if (has_nonfinite(c))
            return 1;
    return 0;
}

static const char *const k_allowed[] = {"model", "width", "depth", "lr", "name", "views", NULL};
static const char *const k_choices[] = {"relu", "gelu", "silu", NULL};

/* Every getter on every key of an object, each with a fresh error slot. */
static void exercise_reader(cJSON *obj, int level)
{
    int err = 0;
    ssl_cfg_t r = ssl_cfg_root(obj, "fuzz.json", &err, level == 0 ? SSL_CFG_FILL : 0);
    ssl_cfg_keys(&r, k_allowed);
    /* Filling defaults replaces null items: iterate over a copy of the keys. */
    cJSON *keys = cJSON_Duplicate(obj, 1);
    if (!keys)
        return;
    for (cJSON *c = keys->child; c; c = c->next) {
        const char *k = c->string;
        float fv[4];
        int iv[4];
        static const double dd[2] = {0.5, 1};
        static const int di[1] = {3};
        err = 0;
        (void)ssl_cfg_int(&r, k, 1, -5, 5000);
        err = 0;
        (void)ssl_cfg_i64(&r, k, 1, INT64_MIN, INT64_MAX);
        err = 0;
        (void)ssl_cfg_double_ex(&r, k, 0.5, 0, 1, SSL_CFG_LO_OPEN);
        err = 0;
        (void)ssl_cfg_float(&r, k, 0.5, -INFINITY, INFINITY);
        err = 0;
        (void)ssl_cfg_bool(&r, k, 0);
        err = 0;
        (void)ssl_cfg_str(&r, k, NULL);
        err = 0;
        (void)ssl_cfg_enum(&r, k, k_choices, 0);
        err = 0;
        (void)ssl_cfg_floats(&r, k, fv, 1, 4, dd, 2, -1, 1);
        err = 0;
        (void)ssl_cfg_ints(&r, k, iv, 1, 4, di, 1, 0, 9);
        err = 0;
        ssl_cfg_range(&r, k, fv, 0.1, 0.9, 0, 1);
        err = 0;
        int n = ssl_cfg_len(&r, k);
        for (int i = 0; i < n && i < 4; i++) {
            err = 0;
            ssl_cfg_t e = ssl_cfg_at(&r, k, i);
            if (e.obj && level < 3)
                exercise_reader(e.obj, level + 1);
        }
        err = 0;
        ssl_cfg_t sub = ssl_cfg_obj(&r, k);
        if (sub.obj && level < 3)
            exercise_reader(sub.obj, level + 1);
    }
    cJSON_Delete(keys);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    int valid = ssl_json_valid(text, size);
    cJSON *doc = ssl_json_parse(text, size, "fuzz.json");
    if (doc && !valid)
        abort(); /* parsed what the scanner rejects */
    if (!doc && valid && ssl_last_status() != SSL_ERR_FORMAT)
        abort(); /* a valid text fails only on a duplicate key (or out of memory) */
    if (doc) {
        char *printed = ssl_json_print(doc);
        if (!printed)
            abort();
        cJSON *back = ssl_json_parse(printed, strlen(printed), "printed");
        if (!back)
            abort();
        if (!has_nonfinite(doc) && !cJSON_Compare(doc, back, 1))
            abort();
        cJSON_Delete(back);
        free(printed);
        if (cJSON_IsObject(doc))
            exercise_reader(doc, 0);
        cJSON_Delete(doc);
    }
    /* The input as a --set assignment on a small document. */
    if (size < 4096 && !memchr(data, 0, size)) {
        char *assign = malloc(size + 1);
        if (!assign)
            abort();
        memcpy(assign, data, size);
        assign[size] = '\0';
        static const char base_text[] = "{\"a\": {\"b\": 1}, \"c\": [1]}";
        cJSON *base = ssl_json_parse(base_text, sizeof base_text - 1, "base");
        if (!base)
            abort();
        if (ssl_json_override(base, assign) == SSL_OK) {
            char *p = ssl_json_print(base);
            if (!p)
                abort();
            free(p);
        }
        cJSON_Delete(base);
        free(assign);
    }
    return 0;
}
