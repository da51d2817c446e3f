/* Image decoding with stb_image, compiled here and only here, restricted and hardened:
 * PNG, JPEG and BMP only; no stdio (we read files ourselves, with a size limit); dimensions
 * capped; the header is read first and images over the pixel budget are refused before any
 * pixel memory is allocated; a fixed channel count; no vertical flip (never enabled); zeroed
 * allocations; a pre-check for a JPEG Huffman-table overflow of stb 2.27 (below). */
#include "data_internal.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_MAX_DIMENSIONS (1 << 15)
#define STB_IMAGE_STATIC
/* Zeroed allocations: a JPEG scan may name a Huffman table the file never defined, and stb 2.27
 * then decodes with uninitialised table memory (out-of-bounds symbol ids). Zeroed tables decode
 * every code as symbol 0, in bounds. */
#define STBI_MALLOC(sz) stb_malloc(sz)
#define STBI_REALLOC(p, newsz) stb_realloc((p), (newsz))
#define STBI_FREE(p) free(p)

/* Allocations are also capped per decode (set by ssl_image_decode from the pixel budget and the
 * file size): a corrupt header cannot make stb ask for gigabytes; stb reports "outofmem". */
static _Thread_local size_t tl_alloc_cap = SIZE_MAX;

static void *stb_malloc(size_t n) { return n > tl_alloc_cap ? NULL : calloc(1, n); }
static void *stb_realloc(void *p, size_t n) { return n > tl_alloc_cap ? NULL : realloc(p, n); }
#define STB_IMAGE_IMPLEMENTATION

#if defined(__GNUC__)
/* stb declares static functions for formats compiled out; reported at the end of the file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#include <stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* The format from the magic bytes, or NULL. */
static const char *sniff(const void *buf, size_t len)
{
    const uint8_t *b = buf;
    static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 8 && memcmp(b, png, 8) == 0)
        return "PNG";
    if (len >= 2 && b[0] == 0xff && b[1] == 0xd8)
        return "JPEG";
    if (len >= 2 && b[0] == 'B' && b[1] == 'M')
        return "BMP";
    return NULL;
}

static uint64_t be32(const uint8_t *p)
{
    return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | (uint64_t)p[3];
}

/* ---------------------------------------------------------------- JPEG pre-check
 *
 * stb_image 2.27 (Debian 12) writes past its Huffman size table when a DHT table declares more
 * than 256 codes (fixed upstream in 2.28 with a bound check). We refuse such files before stb
 * sees them. Up to the first SOS the markers are walked exactly as stb walks them (junk bytes
 * skipped one at a time, fill bytes 0xFF skipped, every segment consumed by its length); after
 * it, stb finds later markers by scanning entropy-coded data for 0xFF xx, so every 0xFF 0xC4
 * there is checked. */

static unsigned byte_at(const uint8_t *b, size_t len, size_t i) { return i < len ? b[i] : 0; }

/* stb's DHT parse from the length field at p: false when a table has more than 256 codes. */
static bool dht_ok(const uint8_t *b, size_t len, size_t p)
{
    long L = (long)(byte_at(b, len, p) << 8 | byte_at(b, len, p + 1)) - 2;
    p += 2;
    while (L > 0 && p < len) {
        unsigned q = byte_at(b, len, p++);
        if ((q >> 4) > 1 || (q & 15) > 3)
            return true; /* stb rejects the header itself */
        long n = 0;
        for (int i = 0; i < 16; i++)
            n += byte_at(b, len, p++);
        if (n > 256)
            return false;
        p += (size_t)n;
        L -= 17 + n;
    }
    return true;
}

static bool jpeg_tables_ok(const uint8_t *b, size_t len)
{
    size_t p = 2; /* after SOI */
    while (p < len) {
        if (b[p] != 0xff) { /* junk: stb's get_marker returns "none" and moves one byte */
            p++;
            continue;
        }
        while (p < len && b[p] == 0xff)
            p++;
        if (p >= len)
            return true;
        unsigned m = b[p++];
        if (m == 0xd9)
            return true; /* EOI */
        if (m == 0xda)
            break;       /* SOS: entropy-coded data follows */
        if (m == 0xc4 && !dht_ok(b, len, p))
            return false;
        if (p + 2 > len)
            return true;
        p += (size_t)(b[p] << 8 | b[p + 1]);
    }
    for (size_t i = p; i + 1 < len; i++)
        if (b[i] == 0xff && b[i + 1] == 0xc4 && !dht_ok(b, len, i + 2))
            return false;
    return true;
}

/* PNG chunks must fit in the file. stb grows its IDAT buffer to a chunk's claimed length before
 * reading it, so a 2 GiB claim in a 100-byte file would otherwise be allocated. */
static bool png_chunks_ok(const uint8_t *b, size_t len, size_t *bad_at)
{
    size_t p = 8;
    while (p + 8 <= len) {
        uint64_t n = be32(b + p);
        if (n > len - p - 8 || len - p - 8 - n < 4) {
            *bad_at = p;
            return false;
        }
        if (memcmp(b + p + 4, "IEND", 4) == 0)
            return true;
        p += 12 + (size_t)n;
    }
    return true; /* ends without IEND: stb reports it */
}

int ssl_image_info(const void *buf, size_t len, int *w, int *h)
{
    int comp;
    const char *kind = buf ? sniff(buf, len) : NULL;
    if (!kind || len > INT_MAX || (strcmp(kind, "JPEG") == 0 && !jpeg_tables_ok(buf, len)) ||
        !stbi_info_from_memory(buf, (int)len, w, h, &comp) || *w <= 0 || *h <= 0)
        return ssl_set_error(SSL_ERR_FORMAT, "not a readable PNG, JPEG or BMP header");
    return SSL_OK;
}

int ssl_image_decode(const void *buf, size_t len, const char *name, int channels, int size,
                     int64_t max_pixels, uint8_t *dst)
{
    if (!name)
        name = "<memory>";
    if (channels != 1 && channels != 3)
        return ssl_set_error(SSL_ERR_INVALID, "%s: channels %d must be 1 or 3", name, channels);
    if (size <= 0 || size > 8192)
        return ssl_set_error(SSL_ERR_INVALID, "%s: image size %d must be in [1, 8192]", name,
                             size);
    if (!buf || len == 0)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: empty file", name);
    if (len > INT_MAX)
        return ssl_set_error(SSL_ERR_INVALID, "%s: %zu bytes is too large to decode", name, len);
    const char *kind = sniff(buf, len);
    if (!kind)
        return ssl_set_error(SSL_ERR_UNSUPPORTED, "%s: not a PNG, JPEG or BMP image", name);
    /* Before any stb call: stbi_info parses the DHT segments of the header too. */
    if (strcmp(kind, "JPEG") == 0 && !jpeg_tables_ok(buf, len))
        return ssl_set_error(SSL_ERR_FORMAT, "%s: corrupt JPEG (a Huffman table declares more "
                             "than 256 codes)", name);
    size_t bad_at = 0;
    if (strcmp(kind, "PNG") == 0 && !png_chunks_ok(buf, len, &bad_at))
        return ssl_set_error(SSL_ERR_FORMAT, "%s: truncated or corrupt PNG: the chunk at offset "
                             "%zu claims more bytes than the file holds", name, bad_at);
    int w = 0, h = 0, comp = 0;
    /* PNG: the size is at a fixed place, so the budget is checked even for headers stb would
     * refuse as too large (its failure reason is overwritten as it tries the other formats). */
    if (strcmp(kind, "PNG") == 0 && len >= 24 && max_pixels > 0) {
        uint64_t pw = be32((const uint8_t *)buf + 16), ph = be32((const uint8_t *)buf + 20);
        if (pw * ph > (uint64_t)max_pixels)
            return ssl_set_error(SSL_ERR_INVALID, "%s: %llu x %llu image exceeds the pixel "
                                 "budget of %lld pixels", name, (unsigned long long)pw,
                                 (unsigned long long)ph, (long long)max_pixels);
    }
    if (!stbi_info_from_memory(buf, (int)len, &w, &h, &comp))
        return ssl_set_error(SSL_ERR_FORMAT, "%s: corrupt, truncated or too large %s header",
                             name, kind);
    if (w <= 0 || h <= 0)
        return ssl_set_error(SSL_ERR_FORMAT, "%s: image header gives an empty %d x %d image",
                             name, w, h);
    if (max_pixels > 0 && (int64_t)w * (int64_t)h > max_pixels)
        return ssl_set_error(SSL_ERR_INVALID, "%s: %d x %d image exceeds the pixel budget of "
                             "%lld pixels", name, w, h, (long long)max_pixels);
    int w2 = 0, h2 = 0;
    /* Largest legitimate single allocation: 16 bytes per pixel of the image padded to whole
     * JPEG MCUs (covers 16-bit RGBA PNG rows, JPEG coefficient planes), or twice the file
     * (PNG IDAT buffer). */
    uint64_t cap = 16 * ((uint64_t)w + 32) * ((uint64_t)h + 32) + 2 * (uint64_t)len +
                   ((uint64_t)1 << 20);
    tl_alloc_cap = cap < SIZE_MAX ? (size_t)cap : SIZE_MAX;
    stbi_uc *pix = stbi_load_from_memory(buf, (int)len, &w2, &h2, &comp, channels);
    tl_alloc_cap = SIZE_MAX;
    if (!pix) {
        const char *why = stbi_failure_reason();
        return ssl_set_error(SSL_ERR_FORMAT, "%s: corrupt or truncated image (%s)", name,
                             why ? why : "unknown reason");
    }
    int rc;
    if (w2 != w || h2 != h)
        rc = ssl_set_error(SSL_ERR_FORMAT, "%s: header says %d x %d but the image decodes as "
                           "%d x %d", name, w, h, w2, h2);
    else
        rc = ssl__resize_center_crop_hwc(pix, h, w, channels, size, dst);
    stbi_image_free(pix);
    return rc;
}
