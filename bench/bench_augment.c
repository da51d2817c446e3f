/* Augmentation throughput: images per second per thread for 2-view batches (SimCLR-style
 * pipeline: random resized crop, flip, colour jitter, grayscale, blur, normalise with the
 * documented defaults) on 28x28 grayscale and 96x96 RGB images; then the loader's throughput
 * with 1 and 2 worker threads.
 *
 *   bench_augment [seconds per measurement, default 1.0] */
#define _POSIX_C_SOURCE 200809L
#include "ssl/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of this thread / process: the rates stay meaningful on a shared, busy machine. */
static double thread_cpu(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }
static double process_cpu(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

static ssl_dataset_t *synthetic(int64_t n, int64_t c, int64_t s)
{
    ssl_dataset_t *ds = ssl_dataset_new(n, c, s, s);
    if (!ds)
        return NULL;
    /* Smooth content with noise, so blur and jitter see realistic values. */
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < s; y++)
                for (int64_t x = 0; x < s; x++) {
                    uint32_t r = ssl_rng_u32(1, (uint64_t)i, (uint64_t)((ch * s + y) * s + x));
                    int v = (int)((x * 7 + y * 3 + ch * 50 + i * 13) % 200) + (int)(r % 56);
                    ds->images[((i * c + ch) * s + y) * s + x] = (uint8_t)v;
                }
    return ds;
}

/* One thread: 2 views per image until `seconds` of its CPU time have passed; images per
 * CPU-second of the thread. */
static double per_thread(const ssl_dataset_t *ds, int size, double seconds)
{
    ssl_views_t v;
    ssl_views_simclr(&v, 2, size);
    ssl_aug_ws_t *ws = ssl_aug_ws_create();
    float *out = malloc(sizeof(float) * (size_t)(ds->c * size * size));
    int64_t per = ds->c * ds->h * ds->w, done = 0;
    double t0 = thread_cpu(), t;
    do {
        for (int k = 0; k < 64; k++, done++) {
            int64_t i = done % ds->n;
            for (int view = 0; view < 2; view++)
                if (ssl_augment_view(&v.view[view], ds->images + i * per, ds->c, ds->h, ds->w, 1,
                                     0, done, view, out, ws) != SSL_OK) {
                    fprintf(stderr, "augment failed: %s\n", ssl_last_error());
                    exit(1);
                }
        }
        t = thread_cpu() - t0;
    } while (t < seconds);
    free(out);
    ssl_aug_ws_free(ws);
    return (double)done / t;
}

/* Images per wall-clock second; *per_cpu gets images per CPU-second of the process. */
static double loader_rate(const ssl_dataset_t *ds, int size, int workers, double seconds,
                          double *per_cpu)
{
    ssl_loader_opts_t o;
    ssl_loader_opts_default(&o);
    o.batch_size = 128;
    o.n_workers = workers;
    ssl_views_simclr(&o.views, 2, size);
    ssl_loader_t *l = ssl_loader_create(ds, &o);
    if (!l) {
        fprintf(stderr, "loader: %s\n", ssl_last_error());
        exit(1);
    }
    int64_t images = 0, epoch = 0;
    double t0 = now(), c0 = process_cpu(), t;
    do {
        ssl_loader_start_epoch(l, epoch++, 0);
        const ssl_batch_t *b;
        while ((b = ssl_loader_next(l)) != NULL && now() - t0 < seconds)
            images += b->size;
        t = now() - t0;
    } while (t < seconds);
    *per_cpu = (double)images / (process_cpu() - c0);
    ssl_loader_free(l);
    return (double)images / t;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    if (seconds <= 0)
        seconds = 1.0;
    ssl_dataset_t *gray = synthetic(1024, 1, 28), *rgb = synthetic(512, 3, 96);
    if (!gray || !rgb) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    printf("augmentation throughput, 2 views per image (SimCLR defaults: crop, flip, jitter p0.8, "
           "gray p0.2, blur p0.5, normalise)\n");
    double g = per_thread(gray, 28, seconds);
    printf("  28x28 gray -> 2 x 28x28 : %9.0f images/s per thread-CPU-second (target 20000)\n", g);
    double r = per_thread(rgb, 96, seconds);
    printf("  96x96 RGB  -> 2 x 96x96 : %9.0f images/s per thread-CPU-second (target 2000)\n", r);
    printf("loader (batch 128; 0 workers = all in the calling thread, which also helps the "
           "workers while it waits)\n");
    for (int w = 0; w <= 2; w++) {
        double cpu, wall = loader_rate(gray, 28, w, seconds, &cpu);
        printf("  28x28 gray, %d worker(s): %9.0f images/s (%9.0f per CPU-second)\n", w, wall, cpu);
        wall = loader_rate(rgb, 96, w, seconds, &cpu);
        printf("  96x96 RGB,  %d worker(s): %9.0f images/s (%9.0f per CPU-second)\n", w, wall, cpu);
    }
    ssl_dataset_free(gray);
    ssl_dataset_free(rgb);
    return 0;
}
