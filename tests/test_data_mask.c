/* Data layer: token masks. Invariants: counts and ratio, bounds, sorted without duplicates,
 * keep and masked partition the tokens, context disjoint from targets, minimum kept,
 * determinism. */
#include "testutil.h"

#include "ssl/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void assert_sorted_in_range(const int32_t *v, int64_t n, int64_t T)
{
    for (int64_t i = 0; i < n; i++) {
        assert_true(v[i] >= 0 && v[i] < T);
        if (i > 0)
            assert_true(v[i] > v[i - 1]); /* strictly increasing: no duplicates */
    }
}

/* keep and masked of each sample are disjoint and cover all T tokens. */
static void check_partition(const ssl_masks_t *m)
{
    int64_t T = m->tokens;
    uint8_t *seen = malloc((size_t)T);
    for (int64_t b = 0; b < m->batch; b++) {
        memset(seen, 0, (size_t)T);
        const int32_t *k = m->keep + b * m->n_keep, *x = m->masked + b * m->n_masked;
        assert_sorted_in_range(k, m->n_keep, T);
        assert_sorted_in_range(x, m->n_masked, T);
        for (int64_t i = 0; i < m->n_keep; i++)
            seen[k[i]]++;
        for (int64_t i = 0; i < m->n_masked; i++)
            seen[x[i]]++;
        for (int64_t t = 0; t < T; t++)
            assert_int_equal(seen[t], 1);
    }
    free(seen);
}

static void test_random_mae(void **state)
{
    (void)state;
    ssl_mask_opts_t o;
    ssl_mask_opts_default(&o, SSL_MASK_RANDOM, 14, 14);
    ssl_masks_t m;
    assert_int_equal(ssl_masks_alloc(&m, &o, 16), SSL_OK);
    int64_t ids[16];
    for (int i = 0; i < 16; i++)
        ids[i] = 100 + i;
    assert_int_equal(ssl_masks_generate(&m, &o, 16, ids, 3, 0, 0), SSL_OK);
    assert_int_equal(m.tokens, 196);
    assert_int_equal(m.n_keep, 49); /* round(196 * 0.25) */
    assert_int_equal(m.n_masked, 147);
    check_partition(&m);
    /* Samples differ; the same sample id gives the same mask again. */
    assert_memory_not_equal(m.keep, m.keep + 49, 49 * sizeof(int32_t));
    int32_t first[49];
    memcpy(first, m.keep, sizeof first);
    assert_int_equal(ssl_masks_generate(&m, &o, 1, ids, 3, 0, 5), SSL_OK);
    assert_memory_equal(first, m.keep, sizeof first);
    assert_int_equal(ssl_masks_generate(&m, &o, 1, ids, 3, 1, 0), SSL_OK);
    assert_memory_not_equal(first, m.keep, sizeof first); /* another epoch */
    /* Every token is masked with frequency close to the ratio. */
    int hits[196] = {0};
    for (int rep = 0; rep < 50; rep++) {
        for (int i = 0; i < 16; i++)
            ids[i] = rep * 16 + i;
        assert_int_equal(ssl_masks_generate(&m, &o, 16, ids, 3, 0, 0), SSL_OK);
        for (int64_t j = 0; j < 16 * m.n_masked; j++)
            hits[m.masked[j]]++;
    }
    for (int t = 0; t < 196; t++)
        assert_true(hits[t] > 800 * 0.6 && hits[t] < 800 * 0.9);
    ssl_masks_free(&m);
}

static void test_simmim(void **state)
{
    (void)state;
    ssl_mask_opts_t o;
    ssl_mask_opts_default(&o, SSL_MASK_SIMMIM, 8, 8);
    o.block = 2; /* 16 cells of 2x2 tokens; ceil(16 * 0.6) = 10 cells = 40 tokens */
    ssl_masks_t m;
    assert_int_equal(ssl_masks_alloc(&m, &o, 4), SSL_OK);
    int64_t ids[4] = {0, 1, 2, 3};
    assert_int_equal(ssl_masks_generate(&m, &o, 4, ids, 1, 0, 0), SSL_OK);
    assert_int_equal(m.n_masked, 40);
    assert_int_equal(m.n_keep, 24);
    check_partition(&m);
    /* Masked tokens come in whole 2x2 cells. */
    for (int b = 0; b < 4; b++) {
        uint8_t mk[64] = {0};
        for (int i = 0; i < 40; i++)
            mk[m.masked[b * 40 + i]] = 1;
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++)
                assert_int_equal(mk[y * 8 + x], mk[(y & ~1) * 8 + (x & ~1)]);
    }
    ssl_masks_free(&m);
    o.block = 3; /* does not divide 8 */
    assert_int_equal(ssl_masks_alloc(&m, &o, 4), SSL_ERR_CONFIG);
}

static void test_blockwise(void **state)
{
    (void)state;
    ssl_mask_opts_t o;
    ssl_mask_opts_default(&o, SSL_MASK_BLOCKWISE, 14, 14);
    ssl_masks_t m;
    assert_int_equal(ssl_masks_alloc(&m, &o, 8), SSL_OK);
    int64_t ids[8];
    for (int rep = 0; rep < 20; rep++) {
        for (int i = 0; i < 8; i++)
            ids[i] = rep * 8 + i;
        assert_int_equal(ssl_masks_generate(&m, &o, 8, ids, 9, 0, rep), SSL_OK);
        assert_int_equal(m.n_masked, 78); /* round(196 * 0.4) exactly, every sample */
        check_partition(&m);
    }
    /* Block-wise: masked tokens mostly have a masked 4-neighbour (unlike random masking). */
    int with_nb = 0;
    for (int i = 0; i < 78; i++) {
        int t = m.masked[i], y = t / 14, x = t % 14, nb = 0;
        for (int j = 0; j < 78; j++) {
            int u = m.masked[j], uy = u / 14, ux = u % 14;
            nb |= abs(uy - y) + abs(ux - x) == 1;
        }
        with_nb += nb;
    }
    assert_true(with_nb > 70);
    ssl_masks_free(&m);
    /* A high ratio on a small grid still ends with the exact count. */
    ssl_mask_opts_default(&o, SSL_MASK_BLOCKWISE, 3, 5);
    o.ratio = 0.9f;
    assert_int_equal(ssl_masks_alloc(&m, &o, 2), SSL_OK);
    assert_int_equal(ssl_masks_generate(&m, &o, 2, ids, 1, 0, 0), SSL_OK);
    assert_int_equal(m.n_masked, 13); /* round(15 * 0.9f) with 0.9f just below 0.9 */
    check_partition(&m);
    ssl_masks_free(&m);
}

/* iBOT: per view and sample, masked with probability prob, rectangles up to ratio T tokens. */
static void test_ibot(void **state)
{
    (void)state;
    ssl_mask_opts_t o;
    ssl_mask_opts_default(&o, SSL_MASK_IBOT, 7, 7);
    assert_float_equal(o.ratio, 0.3f, 0);
    assert_float_equal(o.ratio_var, 0.2f, 0);
    assert_float_equal(o.prob, 0.5f, 0);
    assert_int_equal(o.n_views, 2);
    assert_int_equal(o.min_block, 0);
    enum { B = 64, T = 49 };
    ssl_masks_t m, m2;
    assert_int_equal(ssl_masks_alloc(&m, &o, B), SSL_OK);
    assert_int_equal(ssl_masks_alloc(&m2, &o, B), SSL_OK);
    int64_t ids[B];
    for (int i = 0; i < B; i++)
        ids[i] = 1000 + i;
    assert_int_equal(ssl_masks_generate(&m, &o, B, ids, 5, 3, 0), SSL_OK);
    assert_int_equal(m.n_views, 2);
    assert_int_equal(m.n_masked, 2 * T); /* a sample's stride: rows (b, v) */
    int masked_crops = 0, differ = 0;
    long total = 0;
    for (int g = 0; g < 2 * B; g++) {
        int c = m.counts[g];
        /* at most (ratio + ratio_var) T = 24.5 tokens; sorted, distinct, in range */
        assert_true(c >= 0 && c <= 24);
        assert_sorted_in_range(m.masked + g * T, c, T);
        masked_crops += c > 0;
        total += c;
        if (g % 2 == 0)
            differ += m.counts[g] != m.counts[g + 1];
    }
    /* about half the crops (prob 0.5 of 128: 64 +- 6), each 5-24 tokens (0.1-0.5 of 49) */
    assert_true(masked_crops > 40 && masked_crops < 88);
    assert_true(total > 5 * masked_crops && total < 25 * masked_crops);
    assert_true(differ > 20); /* the two views of a sample draw their own masks */
    /* the same seed, epoch and samples give the same masks, in any batch position */
    int64_t rev[B];
    for (int i = 0; i < B; i++)
        rev[i] = ids[B - 1 - i];
    assert_int_equal(ssl_masks_generate(&m2, &o, B, rev, 5, 3, 7), SSL_OK);
    for (int v = 0; v < 2; v++)
        for (int b = 0; b < B; b++) {
            int g = b * 2 + v, g2 = (B - 1 - b) * 2 + v;
            assert_int_equal(m.counts[g], m2.counts[g2]);
            assert_memory_equal(m.masked + g * T, m2.masked + g2 * T,
                                sizeof(int32_t) * (size_t)m.counts[g]);
        }
    /* prob 1: every crop masked; the blocks are rectangles, so most masked tokens have a
     * masked 4-neighbour */
    o.prob = 1.0f;
    assert_int_equal(ssl_masks_generate(&m, &o, B, ids, 5, 3, 0), SSL_OK);
    int with_nb = 0, n_tok = 0;
    for (int g = 0; g < 2 * B; g++) {
        const int32_t *x = m.masked + g * T;
        assert_true(m.counts[g] >= 3); /* a first rectangle of area ~(7 / 3)^2: 3 or 4 tokens */
        for (int i = 0; i < m.counts[g]; i++, n_tok++) {
            int nb = 0;
            for (int j = 0; j < m.counts[g]; j++)
                nb |= abs(x[j] / 7 - x[i] / 7) + abs(x[j] % 7 - x[i] % 7) == 1;
            with_nb += nb;
        }
    }
    assert_true(with_nb > n_tok * 9 / 10);
    /* views asked of masks allocated for another count, and bad options: errors */
    o.n_views = 3;
    assert_int_equal(ssl_masks_generate(&m, &o, B, ids, 5, 3, 0), SSL_ERR_INVALID);
    o.n_views = 2;
    o.ratio_var = 0.4f; /* ratios down to -0.1 */
    assert_int_equal(ssl_mask_opts_validate(&o), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "ratio_var"));
    o.ratio_var = 0.2f;
    o.prob = 0.0f;
    assert_int_equal(ssl_mask_opts_validate(&o), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "masks.prob"));
    o.prob = 0.5f;
    o.n_views = 0;
    assert_int_equal(ssl_mask_opts_validate(&o), SSL_ERR_CONFIG);
    ssl_masks_free(&m);
    ssl_masks_free(&m2);
}

static void check_multiblock(const ssl_mask_opts_t *o, int64_t B, uint64_t seed, int reps)
{
    ssl_masks_t m;
    assert_int_equal(ssl_masks_alloc(&m, o, B), SSL_OK);
    int64_t T = o->grid_h * o->grid_w;
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)B);
    uint8_t *tm = malloc((size_t)T);
    for (int rep = 0; rep < reps; rep++) {
        for (int64_t i = 0; i < B; i++)
            ids[i] = rep * B + i;
        assert_int_equal(ssl_masks_generate(&m, o, B, ids, seed, 0, rep), SSL_OK);
        assert_int_equal(m.n_targets, o->n_targets);
        assert_true(m.n_keep >= o->min_keep);
        assert_true(m.n_target >= 1);
        for (int64_t b = 0; b < B; b++) {
            memset(tm, 0, (size_t)T);
            for (int k = 0; k < m.n_targets; k++) {
                const int32_t *t = m.targets + (b * m.n_targets + k) * m.n_target;
                assert_sorted_in_range(t, m.n_target, T);
                /* A target is a rectangle: rows x cols of consecutive tokens. */
                int64_t y0 = t[0] / o->grid_w, x0 = t[0] % o->grid_w;
                int64_t y1 = t[m.n_target - 1] / o->grid_w, x1 = t[m.n_target - 1] % o->grid_w;
                assert_int_equal((y1 - y0 + 1) * (x1 - x0 + 1), m.n_target);
                for (int64_t i = 0; i < m.n_target; i++)
                    tm[t[i]] = 1;
            }
            const int32_t *c = m.keep + b * m.n_keep;
            assert_sorted_in_range(c, m.n_keep, T);
            for (int64_t i = 0; i < m.n_keep; i++)
                assert_int_equal(tm[c[i]], 0); /* no context token is a target */
        }
    }
    free(ids);
    free(tm);
    ssl_masks_free(&m);
}

static void test_multiblock(void **state)
{
    (void)state;
    ssl_mask_opts_t o;
    ssl_mask_opts_default(&o, SSL_MASK_MULTIBLOCK, 14, 14); /* the paper's config */
    check_multiblock(&o, 16, 1, 10);
    /* Code defaults of the official repo: wider ranges, 2 targets... */
    o.n_targets = 2;
    o.target_scale[0] = 0.2f;
    o.target_scale[1] = 0.8f;
    o.target_aspect[0] = 0.3f;
    o.target_aspect[1] = 3.0f;
    check_multiblock(&o, 8, 2, 10);
    /* ... and a small CIFAR grid (32 px, patch 4 -> 8 x 8) with a crowded image. */
    ssl_mask_opts_default(&o, SSL_MASK_MULTIBLOCK, 8, 8);
    o.min_keep = 4;
    check_multiblock(&o, 8, 3, 20);

    /* Truncation to the batch minimum: the first sample alone keeps at least as many. */
    ssl_mask_opts_default(&o, SSL_MASK_MULTIBLOCK, 14, 14);
    ssl_masks_t m;
    assert_int_equal(ssl_masks_alloc(&m, &o, 8), SSL_OK);
    int64_t ids[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    assert_int_equal(ssl_masks_generate(&m, &o, 8, ids, 4, 0, 0), SSL_OK);
    int64_t batch_keep = m.n_keep;
    int32_t first[196];
    memcpy(first, m.keep, sizeof(int32_t) * (size_t)batch_keep);
    assert_int_equal(ssl_masks_generate(&m, &o, 1, ids, 4, 0, 0), SSL_OK);
    assert_true(m.n_keep >= batch_keep);
    assert_memory_equal(first, m.keep, sizeof(int32_t) * (size_t)batch_keep); /* a prefix */
    ssl_masks_free(&m);

    /* Impossible: targets always cover the grid. */
    ssl_mask_opts_default(&o, SSL_MASK_MULTIBLOCK, 4, 4);
    o.target_scale[0] = o.target_scale[1] = 1.0f;
    o.target_aspect[0] = o.target_aspect[1] = 1.0f;
    o.min_keep = 2;
    assert_int_equal(ssl_masks_alloc(&m, &o, 2), SSL_OK);
    assert_int_equal(ssl_masks_generate(&m, &o, 2, ids, 1, 0, 0), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "min_keep"));
    ssl_masks_free(&m);
}

static void test_mask_validation(void **state)
{
    (void)state;
    ssl_mask_opts_t o;
    ssl_mask_opts_default(&o, SSL_MASK_RANDOM, 4, 4);
    o.ratio = 1.0f;
    assert_int_equal(ssl_mask_opts_validate(&o), SSL_ERR_CONFIG);
    assert_non_null(strstr(ssl_last_error(), "masks.ratio"));
    o.ratio = 0.99f; /* keeps round(16 * 0.01) = 0 tokens */
    assert_int_equal(ssl_mask_opts_validate(&o), SSL_ERR_CONFIG);
    ssl_mask_opts_default(&o, SSL_MASK_MULTIBLOCK, 4, 4);
    o.min_keep = 16; /* all 16 tokens */
    assert_int_equal(ssl_mask_opts_validate(&o), SSL_ERR_CONFIG);
    o.min_keep = 2;
    assert_int_equal(ssl_mask_opts_validate(&o), SSL_OK);
    o.kind = 9;
    assert_int_equal(ssl_mask_opts_validate(&o), SSL_ERR_CONFIG);
    ssl_masks_t m;
    ssl_mask_opts_default(&o, SSL_MASK_RANDOM, 4, 4);
    assert_int_equal(ssl_masks_alloc(&m, &o, 2), SSL_OK);
    int64_t ids[3] = {0, 1, 2};
    assert_int_equal(ssl_masks_generate(&m, &o, 3, ids, 1, 0, 0), SSL_ERR_INVALID);
    ssl_masks_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_mae),      cmocka_unit_test(test_simmim),
        cmocka_unit_test(test_blockwise),       cmocka_unit_test(test_multiblock),
        cmocka_unit_test(test_ibot),
        cmocka_unit_test(test_mask_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
