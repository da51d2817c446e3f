/* libFuzzer harness: a checkpoint's metadata as resume and the evaluation commands read it
 * (issue 17). fuzz_safetensors checks the container and fuzz_json the JSON reader; this one
 * the metadata's values through their consumer: the run config of metadata key "config",
 * parsed (ssl__run_cfg_from_checkpoint) and read (ssl__run_cfg_read, defaults filled).
 * Byte 0 even: the rest is a whole safetensors file; odd: the rest is the text of "config" in
 * an otherwise valid checkpoint, so mutations explore the run config reader rather than the
 * header. A failure must leave an error naming the file; a config that reads must read again,
 * identically, from the document with its defaults filled in. Corpus: tests/fuzz/corpus/ckpt_meta/. */
#include "train/run_config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char k_name[] = "fuzz.safetensors";

/* A safetensors file without tensors whose metadata "config" is text[0..n). */
static uint8_t *wrap(const uint8_t *text, size_t n, size_t *len)
{
    char *s = malloc(n + 1);
    cJSON *hdr = cJSON_CreateObject(), *meta = cJSON_AddObjectToObject(hdr, "__metadata__");
    if (!s || !meta)
        abort();
    memcpy(s, text, n);
    s[n] = '\0';
    cJSON_AddStringToObject(meta, "config", s);
    char *h = cJSON_PrintUnformatted(hdr);
    if (!h)
        abort();
    size_t hl = strlen(h), padded = (hl + 7) / 8 * 8;
    uint8_t *buf = malloc(8 + padded);
    if (!buf)
        abort();
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, h, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    *len = 8 + padded;
    free(h);
    free(s);
    cJSON_Delete(hdr);
    return buf;
}

static void require_error(void)
{
    if (ssl_last_status() >= 0 || !strstr(ssl_last_error(), k_name))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len = size - 1;
    uint8_t *own = (data[0] & 1) ? wrap(data + 1, size - 1, &len) : NULL;
    ssl_clear_error();
    ssl_st_t *f = ssl_st_open_memory(own ? own : data + 1, len, k_name);
    if (!f) {
        require_error();
        free(own);
        return 0;
    }
    cJSON *doc = ssl__run_cfg_from_checkpoint(f, k_name);
    if (!doc) {
        require_error();
    } else {
        int err = 0;
        ssl_cfg_t root = ssl_cfg_root(doc, k_name, &err, SSL_CFG_FILL);
        ssl_run_cfg_t a, b;
        if (ssl__run_cfg_read(&root, &a) != SSL_OK) {
            require_error();
        } else {
            int err2 = 0;
            ssl_cfg_t again = ssl_cfg_root(doc, k_name, &err2, 0);
            if (ssl__run_cfg_read(&again, &b) != SSL_OK || strcmp(a.name, b.name) ||
                strcmp(a.root, b.root) || strcmp(a.split, b.split) ||
                a.views.n_views != b.views.n_views || a.views.n_views < 1)
                abort();
        }
        cJSON_Delete(doc);
    }
    ssl_st_close(f);
    free(own);
    return 0;
}
