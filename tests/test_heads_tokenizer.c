/* The CLIP tokenizer: vocabulary building (sorted, specials first, min_count / max_words),
 * encoding with padding and truncation, the text form for checkpoints and its validation. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "ssl/heads.h"

static const char *const k_caps[] = {"A dog runs.", "a DOG, sleeping!",
                                     "\xc3\x9c"
                                     "ber caf\xc3\xa9 42",
                                     NULL, "dog-dog"};

static void test_build_words(void **state)
{
    (void)state;
    ssl_vocab_t *v = ssl_vocab_build(k_caps, 5, SSL_TOK_WORDS, 1, 0);
    assert_non_null(v);
    /* specials, then the words sorted by bytes; ASCII lower-cased, UTF-8 kept whole */
    static const char *const want[] = {"<pad>",
                                       "<sos>",
                                       "<eos>",
                                       "<unk>",
                                       "42",
                                       "a",
                                       "caf\xc3\xa9",
                                       "dog",
                                       "runs",
                                       "sleeping",
                                       "\xc3\x9c"
                                       "ber"};
    assert_int_equal(ssl_vocab_size(v), 11);
    for (int i = 0; i < 11; i++)
        assert_string_equal(ssl_vocab_token(v, i), want[i]);
    assert_null(ssl_vocab_token(v, 11));
    assert_int_equal(ssl_vocab_id(v, "dog"), 7);
    assert_int_equal(ssl_vocab_id(v, "cat"), SSL_VOCAB_UNK);
    assert_int_equal(ssl_vocab_kind(v), SSL_TOK_WORDS);
    ssl_vocab_free(v);
    /* dog x4, a x2: min_count 2 keeps both, max_words 1 keeps the most frequent */
    v = ssl_vocab_build(k_caps, 5, SSL_TOK_WORDS, 2, 0);
    assert_int_equal(ssl_vocab_size(v), 6);
    assert_string_equal(ssl_vocab_token(v, 4), "a");
    ssl_vocab_free(v);
    v = ssl_vocab_build(k_caps, 5, SSL_TOK_WORDS, 1, 1);
    assert_int_equal(ssl_vocab_size(v), 5);
    assert_string_equal(ssl_vocab_token(v, 4), "dog");
    ssl_vocab_free(v);
    /* ties are broken by bytes, so the result never depends on caption order */
    const char *const ab[] = {"b a c", "c"}, *const ba[] = {"c", "c a b"};
    ssl_vocab_t *v1 = ssl_vocab_build(ab, 2, SSL_TOK_WORDS, 1, 2);
    ssl_vocab_t *v2 = ssl_vocab_build(ba, 2, SSL_TOK_WORDS, 1, 2);
    char *s1 = ssl_vocab_to_string(v1), *s2 = ssl_vocab_to_string(v2);
    assert_string_equal(s1, s2);
    assert_string_equal(s1, "ssl-vocab 1 words\n<pad>\n<sos>\n<eos>\n<unk>\na\nc\n");
    free(s1);
    free(s2);
    ssl_vocab_free(v1);
    ssl_vocab_free(v2);
    /* no captions: just the specials */
    v = ssl_vocab_build(NULL, 0, SSL_TOK_WORDS, 1, 0);
    assert_int_equal(ssl_vocab_size(v), 4);
    ssl_vocab_free(v);
    assert_null(ssl_vocab_build(k_caps, 5, 7, 1, 0));
    assert_int_equal(ssl_last_status(), SSL_ERR_INVALID);
}

static void test_encode(void **state)
{
    (void)state;
    ssl_vocab_t *v = ssl_vocab_build(k_caps, 5, SSL_TOK_WORDS, 1, 0);
    int32_t ids[8];
    assert_int_equal(ssl_vocab_encode(v, "The DOG runs", ids, 8), 5);
    const int32_t want[8] = {1, 3, 7, 8, 2, 0, 0, 0};
    assert_memory_equal(ids, want, sizeof want);
    /* too long: cut to context - 2 tokens, still ending in <eos> */
    assert_int_equal(ssl_vocab_encode(v, "a a dog dog a", ids, 4), 4);
    const int32_t cut[4] = {1, 5, 5, 2};
    assert_memory_equal(ids, cut, sizeof cut);
    assert_int_equal(ssl_vocab_encode(v, "", ids, 2), 2);
    assert_int_equal(ids[0], SSL_VOCAB_SOS);
    assert_int_equal(ids[1], SSL_VOCAB_EOS);
    assert_int_equal(ssl_vocab_encode(v, NULL, ids, 3), 2);
    assert_int_equal(ssl_vocab_encode(v, "a", ids, 1), SSL_ERR_INVALID);
    ssl_vocab_free(v);
    /* bytes: 4 + byte value, no case folding */
    v = ssl_vocab_build(NULL, 0, SSL_TOK_BYTES, 1, 0);
    assert_int_equal(ssl_vocab_size(v), 260);
    assert_string_equal(ssl_vocab_token(v, 4 + 'H'), "<0x48>");
    assert_int_equal(ssl_vocab_encode(v, "Hi\xff", ids, 8), 5);
    const int32_t bw[8] = {1, 4 + 'H', 4 + 'i', 4 + 255, 2, 0, 0, 0};
    assert_memory_equal(ids, bw, sizeof bw);
    ssl_vocab_free(v);
}

static void test_text_form(void **state)
{
    (void)state;
    ssl_vocab_t *v = ssl_vocab_build(k_caps, 5, SSL_TOK_WORDS, 1, 0);
    char *s = ssl_vocab_to_string(v);
    ssl_vocab_t *w = ssl_vocab_from_string(s);
    if (!w)
        fail_msg("%s", ssl_last_error());
    assert_int_equal(ssl_vocab_size(w), ssl_vocab_size(v));
    for (int32_t i = 0; i < ssl_vocab_size(v); i++)
        assert_string_equal(ssl_vocab_token(v, i), ssl_vocab_token(w, i));
    int32_t a[8], b[8];
    ssl_vocab_encode(v, "a sleeping dog in a caf\xc3\xa9", a, 8);
    ssl_vocab_encode(w, "a sleeping dog in a caf\xc3\xa9", b, 8);
    assert_memory_equal(a, b, sizeof a);
    char *s2 = ssl_vocab_to_string(w);
    assert_string_equal(s, s2);
    free(s);
    free(s2);
    ssl_vocab_free(v);
    ssl_vocab_free(w);
    v = ssl_vocab_build(NULL, 0, SSL_TOK_BYTES, 1, 0);
    s = ssl_vocab_to_string(v);
    assert_string_equal(s, "ssl-vocab 1 bytes\n");
    w = ssl_vocab_from_string(s);
    assert_int_equal(ssl_vocab_kind(w), SSL_TOK_BYTES);
    assert_int_equal(ssl_vocab_size(w), 260);
    free(s);
    ssl_vocab_free(v);
    ssl_vocab_free(w);
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"ssl-vocab 2 words\n", "line 1"},
        {"ssl-vocab 1 words\n<pad>\n<sos>\n<eos>\n", "line 5"},
        {"ssl-vocab 1 words\n<pad>\n<sos>\n<unk>\n<eos>\n", "special"},
        {"ssl-vocab 1 words\n<pad>\n<sos>\n<eos>\n<unk>\nb\na\n", "line 7"},
        {"ssl-vocab 1 words\n<pad>\n<sos>\n<eos>\n<unk>\na\na\n", "sorted"},
        {"ssl-vocab 1 words\n<pad>\n<sos>\n<eos>\n<unk>\nDog\n", "lower-case"},
        {"ssl-vocab 1 words\n<pad>\n<sos>\n<eos>\n<unk>\na b\n", "line 6"},
        {"ssl-vocab 1 words\n<pad>\n<sos>\n<eos>\n<unk>\n\n", "empty"},
        {"ssl-vocab 1 words\n<pad>\n<sos>\n<eos>\n<unk>\nabc", "final newline"},
        {"ssl-vocab 1 bytes\nextra\n", "line 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ssl_vocab_t *x = ssl_vocab_from_string(bad[i].text);
        if (x)
            fail_msg("accepted %s", bad[i].text);
        assert_int_equal(ssl_last_status(), SSL_ERR_FORMAT);
        if (!strstr(ssl_last_error(), bad[i].needle))
            fail_msg("message for case %zu: \"%s\"", i, ssl_last_error());
    }
    assert_null(ssl_vocab_from_string(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_words),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_text_form),
    };
    return cmocka_run_group_tests_name("heads_tokenizer", tests, NULL, NULL);
}
