/* libFuzzer harness: the safetensors reader on arbitrary bytes in memory. A file that opens
 * must satisfy the format's invariants (checked here, abort() if not) and every tensor must
 * read and convert without error. Corpus: tests/fuzz/corpus/safetensors/. */
#include "ssl/io.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ssl_st_t *f = ssl_st_open_memory(data, size, "fuzz");
    if (!f)
        return 0;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)data[i] << (8 * i);
    uint64_t data_len = size - 8 - hlen, pos = 0;
    for (int i = 0; i < ssl_st_count(f); i++) {
        const ssl_st_tensor_t *t = ssl_st_tensor(f, i);
        /* Tensors come in data order and tile the buffer. */
        if (t->offset != pos || t->nbytes != (uint64_t)t->numel * ssl_dtype_size(t->dtype))
            abort();
        pos += t->nbytes;
        if (ssl_st_find(f, t->name) != i)
            abort();
        void *raw = malloc(t->nbytes ? (size_t)t->nbytes : 1);
        float *fl = malloc(t->numel ? (size_t)t->numel * sizeof(float) : 1);
        if (!raw || !fl)
            abort();
        if (ssl_st_read_raw(f, i, raw, (size_t)t->nbytes) != SSL_OK ||
            ssl_st_read_f32(f, i, fl, (size_t)t->numel) != SSL_OK)
            abort();
        if (t->nbytes && memcmp(raw, data + 8 + hlen + t->offset, (size_t)t->nbytes) != 0)
            abort();
        free(raw);
        free(fl);
    }
    if (pos != data_len)
        abort();
    for (int i = 0; i < ssl_st_meta_count(f); i++) {
        const char *k, *v;
        if (ssl_st_meta_at(f, i, &k, &v) != SSL_OK || ssl_st_meta(f, k) == NULL)
            abort();
        (void)v;
    }
    ssl_st_close(f);
    return 0;
}
