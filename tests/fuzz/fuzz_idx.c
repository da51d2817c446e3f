/* Fuzz the IDX parser (plain and gzip) on an in-memory buffer. */
#include "ssl/data.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ssl_idx_t a;
    /* 64 MiB cap on decompression so a gzip bomb is refused quickly. */
    if (ssl_idx_parse(data, size, "fuzz", (int64_t)64 << 20, &a) == SSL_OK) {
        /* Touch every byte so ASan checks the claimed size against the allocation. */
        volatile uint8_t sink = 0;
        for (int64_t i = 0; i < a.count * a.elem_size; i++)
            sink ^= a.data[i];
        (void)sink;
        ssl_idx_free(&a);
    }
    return 0;
}
