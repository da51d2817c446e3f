/* Fuzz the CIFAR-10/100 record reader on an in-memory buffer. */
#include "ssl/data.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int kinds[2] = {10, 100};
    for (int k = 0; k < 2; k++) {
        ssl_dataset_t *ds = ssl_dataset_cifar_from_memory(data, size, kinds[k], "fuzz");
        if (ds) {
            volatile int64_t sum = 0;
            for (int64_t i = 0; i < ds->n; i++)
                sum += ds->labels[i] + ds->images[i * 3072 + 3071];
            (void)sum;
            ssl_dataset_free(ds);
        }
    }
    return 0;
}
