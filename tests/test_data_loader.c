/* Data layer: the threaded loader. Batches are bit-identical for 0, 1 and 2 worker threads,
 * differ for another seed or epoch, cover a permutation of the dataset, resume at a batch, and
 * the loader shuts down cleanly when the consumer stops early. Shards (data-parallel ranks)
 * hand out the rows of the whole batch exactly: views, labels and masks. */
#include "testutil.h"

#include "ssl/data.h"

#include <stdlib.h>
#include <string.h>

enum { N = 37, C = 3, H = 12, W = 10 };

static ssl_dataset_t *make_dataset(void)
{
    ssl_dataset_t *ds = ssl_dataset_new(N, C, H, W);
    assert_non_null(ds);
    for (int64_t i = 0; i < N * C * H * W; i++)
        ds->images[i] = (uint8_t)(ssl_rng_u32(1, 2, (uint64_t)i) & 0xff);
    for (int64_t i = 0; i < N; i++)
        ds->labels[i] = (int32_t)(i % 5);
    ds->n_classes = 5;
    return ds;
}

static ssl_loader_opts_t opts(int workers, uint64_t seed)
{
    ssl_loader_opts_t o;
    ssl_loader_opts_default(&o);
    o.batch_size = 8;
    o.n_workers = workers;
    o.seed = seed;
    o.drop_last = 0;
    const float gs[2] = {0.4f, 1.0f}, ls[2] = {0.1f, 0.4f};
    assert_int_equal(ssl_views_multicrop(&o.views, 2, 8, gs, 2, 4, ls), SSL_OK);
    o.mask.kind = SSL_MASK_RANDOM;
    o.mask.ratio = 0.75f;
    o.patch_size = 2; /* 8 x 8 view 0 -> 4 x 4 tokens */
    return o;
}

/* Every float of every batch of an epoch, concatenated, plus labels/indices/masks. */
typedef struct epoch_dump {
    float *views;
    int64_t n_floats;
    int64_t idx[N];
    int32_t lab[N];
    int32_t keep[N * 16];
    int64_t n_idx, n_keep, n_batches;
} epoch_dump_t;

static void dump_epoch(ssl_loader_t *l, int64_t epoch, epoch_dump_t *d)
{
    memset(d, 0, sizeof *d);
    d->views = malloc(sizeof(float) * 200000);
    assert_int_equal(ssl_loader_start_epoch(l, epoch, 0), SSL_OK);
    const ssl_batch_t *b;
    while ((b = ssl_loader_next(l)) != NULL) {
        assert_int_equal(b->index, d->n_batches);
        assert_int_equal(b->epoch, epoch);
        d->n_batches++;
        for (int v = 0; v < b->n_views; v++) {
            const ssl_tensor_t *t = &b->views[v];
            assert_int_equal(t->ndim, 4);
            assert_int_equal(t->shape[0], b->size);
            assert_int_equal(t->shape[1], C);
            assert_int_equal(t->numel, t->shape[0] * t->shape[1] * t->shape[2] * t->shape[3]);
            memcpy(d->views + d->n_floats, t->data, sizeof(float) * (size_t)t->numel);
            d->n_floats += t->numel;
        }
        assert_non_null(b->masks);
        assert_int_equal(b->masks->batch, b->size);
        assert_int_equal(b->masks->n_keep, 4);
        for (int64_t i = 0; i < b->size; i++) {
            d->idx[d->n_idx] = b->indices[i];
            d->lab[d->n_idx] = b->labels[i];
            memcpy(d->keep + d->n_keep, b->masks->keep + i * 4, 4 * sizeof(int32_t));
            d->n_keep += 4;
            d->n_idx++;
        }
    }
    assert_int_equal(ssl_last_status(), SSL_OK);
}

static void assert_same(const epoch_dump_t *a, const epoch_dump_t *b)
{
    assert_int_equal(a->n_floats, b->n_floats);
    assert_memory_equal(a->views, b->views, sizeof(float) * (size_t)a->n_floats);
    assert_memory_equal(a->idx, b->idx, sizeof a->idx);
    assert_memory_equal(a->lab, b->lab, sizeof a->lab);
    assert_memory_equal(a->keep, b->keep, sizeof a->keep);
}

static void test_identical_across_threads(void **state)
{
    (void)state;
    ssl_dataset_t *ds = make_dataset();
    epoch_dump_t d[3];
    for (int workers = 0; workers <= 2; workers++) {
        ssl_loader_opts_t o = opts(workers, 42);
        ssl_loader_t *l = ssl_loader_create(ds, &o);
        assert_non_null(l);
        assert_int_equal(ssl_loader_num_batches(l), 5); /* ceil(37 / 8) */
        dump_epoch(l, 3, &d[workers]);
        assert_int_equal(d[workers].n_batches, 5);
        assert_int_equal(d[workers].n_idx, N);
        ssl_loader_free(l);
    }
    assert_same(&d[0], &d[1]);
    assert_same(&d[1], &d[2]);
    /* The epoch is a permutation of the dataset, labels follow the indices. */
    int seen[N] = {0};
    for (int i = 0; i < N; i++) {
        seen[d[2].idx[i]]++;
        assert_int_equal(d[2].lab[i], ds->labels[d[2].idx[i]]);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);

    /* Another epoch and another seed change the order and the pixels. */
    ssl_loader_opts_t o = opts(2, 42);
    ssl_loader_t *l = ssl_loader_create(ds, &o);
    epoch_dump_t e;
    dump_epoch(l, 4, &e);
    assert_memory_not_equal(e.idx, d[2].idx, sizeof e.idx);
    assert_memory_not_equal(e.views, d[2].views, 4096);
    free(e.views);
    ssl_loader_free(l);
    o = opts(1, 43);
    l = ssl_loader_create(ds, &o);
    dump_epoch(l, 3, &e);
    assert_memory_not_equal(e.idx, d[2].idx, sizeof e.idx);
    free(e.views);
    ssl_loader_free(l);
    for (int i = 0; i < 3; i++)
        free(d[i].views);
    ssl_dataset_free(ds);
}

static void test_order_drop_last_resume(void **state)
{
    (void)state;
    ssl_dataset_t *ds = make_dataset();
    ssl_loader_opts_t o = opts(2, 7);
    o.shuffle = 0;
    o.drop_last = 1;
    ssl_loader_t *l = ssl_loader_create(ds, &o);
    assert_int_equal(ssl_loader_num_batches(l), 4); /* 37 / 8 */
    assert_int_equal(ssl_loader_start_epoch(l, 0, 0), SSL_OK);
    const ssl_batch_t *b;
    int64_t k = 0;
    while ((b = ssl_loader_next(l)) != NULL) {
        assert_int_equal(b->size, 8);
        for (int64_t i = 0; i < b->size; i++)
            assert_int_equal(b->indices[i], k++); /* dataset order */
    }
    assert_int_equal(k, 32);
    ssl_loader_free(l);

    /* Resume at batch 2: the same batches 2, 3 as the full epoch. */
    o = opts(2, 7);
    l = ssl_loader_create(ds, &o);
    assert_int_equal(ssl_loader_start_epoch(l, 1, 0), SSL_OK);
    float want[2][8 * C * 8 * 8];
    int64_t want_idx[2][8];
    for (int i = 0; i < 4; i++) {
        b = ssl_loader_next(l);
        assert_non_null(b);
        if (i >= 2) {
            memcpy(want[i - 2], b->views[0].data, sizeof want[0]);
            memcpy(want_idx[i - 2], b->indices, sizeof want_idx[0]);
        }
    }
    assert_int_equal(ssl_loader_start_epoch(l, 1, 2), SSL_OK);
    for (int i = 0; i < 2; i++) {
        b = ssl_loader_next(l);
        assert_non_null(b);
        assert_int_equal(b->index, 2 + i);
        assert_memory_equal(want[i], b->views[0].data, sizeof want[0]);
        assert_memory_equal(want_idx[i], b->indices, sizeof want_idx[0]);
    }
    ssl_loader_free(l);
    ssl_dataset_free(ds);
}

static void test_early_stop_and_errors(void **state)
{
    (void)state;
    ssl_dataset_t *ds = make_dataset();
    ssl_loader_opts_t o = opts(2, 1);
    ssl_loader_t *l = ssl_loader_create(ds, &o);
    assert_null(ssl_loader_next(l)); /* no epoch started */
    assert_int_equal(ssl_last_status(), SSL_ERR_STATE);
    /* Stop after one batch, restart epochs mid-way, free with work in flight. */
    for (int e = 0; e < 5; e++) {
        assert_int_equal(ssl_loader_start_epoch(l, e, 0), SSL_OK);
        assert_non_null(ssl_loader_next(l));
    }
    assert_int_equal(ssl_loader_start_epoch(l, 0, 0), SSL_OK);
    ssl_loader_free(l);
    /* Created and freed without ever starting. */
    l = ssl_loader_create(ds, &o);
    assert_non_null(l);
    ssl_loader_free(l);

    o.batch_size = 64;
    o.drop_last = 1;
    tu_assert_error(ssl_loader_create(ds, &o), SSL_ERR_CONFIG, "drop_last", NULL);
    o = opts(1, 1);
    o.patch_size = 3;
    tu_assert_error(ssl_loader_create(ds, &o), SSL_ERR_CONFIG, "patch_size", NULL);
    o = opts(1, 1);
    o.views.view[1].p_gray = -1.0f;
    tu_assert_error(ssl_loader_create(ds, &o), SSL_ERR_CONFIG, "view 1", "p_gray", NULL);
    ssl_dataset_free(ds);
}

static void test_one_channel_multiblock(void **state)
{
    (void)state;
    /* Fashion-MNIST-like 1-channel data, SimCLR views, I-JEPA masks. */
    ssl_dataset_t *ds = ssl_dataset_new(20, 1, 28, 28);
    for (int64_t i = 0; i < 20 * 784; i++)
        ds->images[i] = (uint8_t)(i % 256);
    ssl_loader_opts_t o;
    ssl_loader_opts_default(&o);
    o.batch_size = 6;
    ssl_views_simclr(&o.views, 2, 28);
    ssl_mask_opts_default(&o.mask, SSL_MASK_MULTIBLOCK, 0, 0);
    o.mask.min_keep = 4;
    o.patch_size = 4; /* 7 x 7 tokens */
    ssl_loader_t *l = ssl_loader_create(ds, &o);
    assert_non_null(l);
    assert_int_equal(ssl_loader_start_epoch(l, 0, 0), SSL_OK);
    const ssl_batch_t *b;
    int nb = 0;
    while ((b = ssl_loader_next(l)) != NULL) {
        nb++;
        assert_int_equal(b->views[0].shape[1], 1);
        assert_int_equal(b->masks->tokens, 49);
        assert_int_equal(b->masks->n_targets, 4);
        assert_true(b->masks->n_keep >= 4);
    }
    assert_int_equal(nb, 3);
    ssl_loader_free(l);
    ssl_dataset_free(ds);
}

/* Shard r of n of every batch: rows [r B/n, (r + 1) B/n) of what one loader hands out, bit for
 * bit: views of both resolutions, indices, labels and masks (I-JEPA's multiblock masks are
 * truncated to the batch's shortest context: the whole batch's, not the shard's). */
static void check_shards(int mask_kind)
{
    ssl_dataset_t *ds = make_dataset();
    ssl_loader_opts_t o = opts(1, 7);
    o.drop_last = 1;
    if (mask_kind == SSL_MASK_MULTIBLOCK) {
        ssl_mask_opts_default(&o.mask, SSL_MASK_MULTIBLOCK, 0, 0);
        o.mask.min_keep = 1;
    } else if (mask_kind == SSL_MASK_IBOT) {
        ssl_mask_opts_default(&o.mask, SSL_MASK_IBOT, 0, 0);
        o.mask.n_views = 2;
    }
    ssl_loader_t *whole = ssl_loader_create(ds, &o);
    assert_non_null(whole);
    const int counts[2] = {2, 4};
    for (int k = 0; k < 2; k++) {
        int n = counts[k];
        ssl_loader_t *sh[4];
        for (int r = 0; r < n; r++) {
            assert_non_null(sh[r] = ssl_loader_create(ds, &o));
            assert_int_equal(ssl_loader_set_shard(sh[r], r, n), SSL_OK);
            assert_int_equal(ssl_loader_start_epoch(sh[r], 1, 0), SSL_OK);
        }
        assert_int_equal(ssl_loader_start_epoch(whole, 1, 0), SSL_OK);
        const ssl_batch_t *b;
        int batches = 0;
        while ((b = ssl_loader_next(whole)) != NULL) {
            batches++;
            int64_t Bs = b->size / n;
            for (int r = 0; r < n; r++) {
                const ssl_batch_t *p = ssl_loader_next(sh[r]);
                assert_non_null(p);
                assert_int_equal(p->index, b->index);
                assert_int_equal(p->size, Bs);
                for (int v = 0; v < b->n_views; v++) {
                    int64_t row = b->views[v].numel / b->size;
                    assert_memory_equal(p->views[v].data, b->views[v].data + r * Bs * row,
                                        sizeof(float) * (size_t)(Bs * row));
                }
                assert_memory_equal(p->indices, b->indices + r * Bs, sizeof(int64_t) * Bs);
                assert_memory_equal(p->labels, b->labels + r * Bs, sizeof(int32_t) * Bs);
                const ssl_masks_t *pm = p->masks, *bm = b->masks;
                assert_int_equal(pm->batch, Bs);
                assert_int_equal(pm->n_keep, bm->n_keep);
                assert_int_equal(pm->n_target, bm->n_target);
                if (bm->n_keep)
                    assert_memory_equal(pm->keep, bm->keep + r * Bs * bm->n_keep,
                                        sizeof(int32_t) * (size_t)(Bs * bm->n_keep));
                if (bm->counts) /* iBOT: counts per sample and view */
                    assert_memory_equal(pm->counts, bm->counts + r * Bs * bm->n_views,
                                        sizeof(int32_t) * (size_t)(Bs * bm->n_views));
                if (bm->n_masked)
                    assert_memory_equal(pm->masked, bm->masked + r * Bs * bm->n_masked,
                                        sizeof(int32_t) * (size_t)(Bs * bm->n_masked));
                if (bm->n_targets)
                    assert_memory_equal(pm->targets,
                                        bm->targets + r * Bs * bm->n_targets * bm->n_target,
                                        sizeof(int32_t) *
                                            (size_t)(Bs * bm->n_targets * bm->n_target));
            }
        }
        assert_int_equal(batches, N / 8);
        for (int r = 0; r < n; r++) {
            assert_null(ssl_loader_next(sh[r]));
            ssl_loader_free(sh[r]);
        }
    }
    /* a batch that does not split, a shard out of range */
    assert_int_equal(ssl_loader_set_shard(whole, 0, 3), SSL_ERR_CONFIG);
    assert_int_equal(ssl_loader_set_shard(whole, 2, 2), SSL_ERR_INVALID);
    ssl_loader_free(whole);
    ssl_dataset_free(ds);
}

static void test_shards(void **state)
{
    (void)state;
    check_shards(SSL_MASK_RANDOM);
    check_shards(SSL_MASK_MULTIBLOCK);
    check_shards(SSL_MASK_IBOT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shards),
        cmocka_unit_test(test_identical_across_threads),
        cmocka_unit_test(test_order_drop_last_resume),
        cmocka_unit_test(test_early_stop_and_errors),
        cmocka_unit_test(test_one_channel_multiblock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
