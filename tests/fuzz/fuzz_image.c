/* Fuzz the image decoder: header check, pixel budget, stb_image decode (PNG, JPEG, BMP), resize
 * and centre crop, on an in-memory buffer. */
#include "ssl/data.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t out[3 * 24 * 24];
    int w, h;
    (void)ssl_image_info(data, size, &w, &h);
    /* A budget of 4 Mpx keeps each run fast while still reaching the large-image paths. */
    (void)ssl_image_decode(data, size, "fuzz", 3, 24, 4000000, out);
    if (size < 4096)
        (void)ssl_image_decode(data, size, "fuzz", 1, 7, 4000000, out);
    return 0;
}
