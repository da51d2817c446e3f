/* A deterministic tokenizer for the CLIP text tower: lower-cased words (or raw bytes), a
 * vocabulary built from the captions and kept sorted, fixed special tokens, a text form for
 * checkpoint metadata, and fixed-length encoding. */
#include "heads_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const k_special[SSL_VOCAB_N_SPECIAL] = {"<pad>", "<sos>", "<eos>", "<unk>"};
static const char k_magic_words[] = "ssl-vocab 1 words\n";
static const char k_magic_bytes[] = "ssl-vocab 1 bytes\n";

struct ssl_vocab {
    int kind;
    int64_t n;  /* tokens, specials included */
    char **tok; /* n strings; words sorted by bytes from SSL_VOCAB_N_SPECIAL on */
};

/* strdup is POSIX, not C11 */
static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Next word of s from *pos into buf (lower-cased, NUL-terminated); 0 at the end. buf must hold
 * strlen(s) + 1 bytes. */
static int next_word(const char *s, size_t *pos, char *buf)
{
    size_t i = *pos;
    while (s[i] && !is_word_byte((unsigned char)s[i]))
        i++;
    if (!s[i]) {
        *pos = i;
        return 0;
    }
    size_t n = 0;
    while (s[i] && is_word_byte((unsigned char)s[i]))
        buf[n++] = lower(s[i++]);
    buf[n] = '\0';
    *pos = i;
    return 1;
}

void ssl_vocab_free(ssl_vocab_t *v)
{
    if (!v)
        return;
    for (int64_t i = 0; v->tok && i < v->n; i++)
        free(v->tok[i]);
    free(v->tok);
    free(v);
}

static ssl_vocab_t *vocab_alloc(int kind, int64_t n)
{
    ssl_vocab_t *v = calloc(1, sizeof *v);
    if (v)
        v->tok = calloc((size_t)n, sizeof *v->tok);
    if (!v || !v->tok) {
        free(v);
        ssl_set_error(SSL_ERR_NOMEM, "vocabulary: out of memory");
        return NULL;
    }
    v->kind = kind;
    v->n = n;
    for (int i = 0; i < SSL_VOCAB_N_SPECIAL; i++)
        if (!(v->tok[i] = dup_str(k_special[i]))) {
            ssl_vocab_free(v);
            ssl_set_error(SSL_ERR_NOMEM, "vocabulary: out of memory");
            return NULL;
        }
    return v;
}

static ssl_vocab_t *bytes_vocab(void)
{
    ssl_vocab_t *v = vocab_alloc(SSL_TOK_BYTES, SSL_VOCAB_N_SPECIAL + 256);
    for (int b = 0; v && b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        if (!(v->tok[SSL_VOCAB_N_SPECIAL + b] = dup_str(s))) {
            ssl_vocab_free(v);
            ssl_set_error(SSL_ERR_NOMEM, "vocabulary: out of memory");
            return NULL;
        }
    }
    return v;
}

/* ---------------------------------------------------------------- building */

typedef struct word_count {
    char *word;
    int64_t count;
} word_count_t;

/* Open-addressing table of distinct words (FNV-1a). */
typedef struct word_table {
    word_count_t *slot;
    size_t cap, n;
} word_table_t;

static int table_grow(word_table_t *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1024;
    word_count_t *s = calloc(cap, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slot[i].word)
            continue;
        size_t h = (size_t)ssl_nn_name_stream(t->slot[i].word) & (cap - 1);
        while (s[h].word)
            h = (h + 1) & (cap - 1);
        s[h] = t->slot[i];
    }
    free(t->slot);
    t->slot = s;
    t->cap = cap;
    return 0;
}

static int table_add(word_table_t *t, const char *w)
{
    if ((t->n + 1) * 2 > t->cap && table_grow(t))
        return -1;
    size_t h = (size_t)ssl_nn_name_stream(w) & (t->cap - 1);
    while (t->slot[h].word && strcmp(t->slot[h].word, w))
        h = (h + 1) & (t->cap - 1);
    if (!t->slot[h].word) {
        if (!(t->slot[h].word = dup_str(w)))
            return -1;
        t->n++;
    }
    t->slot[h].count++;
    return 0;
}

static int by_count_then_bytes(const void *a, const void *b)
{
    const word_count_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->word, y->word);
}

static int by_bytes(const void *a, const void *b)
{
    return strcmp(((const word_count_t *)a)->word, ((const word_count_t *)b)->word);
}

ssl_vocab_t *ssl_vocab_build(const char *const *captions, int64_t n, int kind, int min_count,
                             int64_t max_words)
{
    if (kind == SSL_TOK_BYTES)
        return bytes_vocab();
    if (kind != SSL_TOK_WORDS || n < 0 || (n > 0 && !captions)) {
        ssl_set_error(SSL_ERR_INVALID, "vocabulary: bad arguments (kind %d, %lld captions)", kind,
                      (long long)n);
        return NULL;
    }
    word_table_t t = {NULL, 0, 0};
    char *buf = NULL;
    size_t buf_cap = 0;
    int fail = 0;
    for (int64_t i = 0; i < n && !fail; i++) {
        const char *s = captions[i] ? captions[i] : "";
        size_t len = strlen(s) + 1, pos = 0;
        if (len > buf_cap) {
            char *nb = realloc(buf, len);
            if (!nb) {
                fail = 1;
                break;
            }
            buf = nb;
            buf_cap = len;
        }
        while (!fail && next_word(s, &pos, buf))
            fail = table_add(&t, buf) != 0;
    }
    free(buf);
    word_count_t *list = fail ? NULL : malloc((t.n ? t.n : 1) * sizeof *list);
    ssl_vocab_t *v = NULL;
    if (list) {
        size_t m = 0;
        for (size_t i = 0; i < t.cap; i++)
            if (t.slot[i].word && t.slot[i].count >= (min_count > 1 ? min_count : 1))
                list[m++] = t.slot[i];
        if (max_words > 0 && (int64_t)m > max_words) {
            qsort(list, m, sizeof *list, by_count_then_bytes);
            m = (size_t)max_words;
        }
        qsort(list, m, sizeof *list, by_bytes);
        v = vocab_alloc(SSL_TOK_WORDS, SSL_VOCAB_N_SPECIAL + (int64_t)m);
        for (size_t i = 0; v && i < m; i++)
            if (!(v->tok[SSL_VOCAB_N_SPECIAL + i] = dup_str(list[i].word))) {
                ssl_vocab_free(v);
                v = NULL;
                ssl_set_error(SSL_ERR_NOMEM, "vocabulary: out of memory");
            }
        free(list);
    } else {
        ssl_set_error(SSL_ERR_NOMEM, "vocabulary: out of memory");
    }
    for (size_t i = 0; i < t.cap; i++)
        free(t.slot[i].word);
    free(t.slot);
    return v;
}

/* ---------------------------------------------------------------- queries */

int64_t ssl_vocab_size(const ssl_vocab_t *v)
{
    return SSL__IS_NULL(v, __func__) ? SSL_ERR_INVALID : v->n;
}

int ssl_vocab_kind(const ssl_vocab_t *v)
{
    if (SSL__IS_NULL(v, __func__))
        return SSL_ERR_INVALID;
    return v->kind;
}

const char *ssl_vocab_token(const ssl_vocab_t *v, int32_t id)
{
    if (SSL__IS_NULL(v, __func__) || SSL__BAD_RANGE(id, 0, v->n - 1, __func__))
        return NULL;
    return v->tok[id];
}

static int cmp_str(const void *key, const void *elem)
{
    return strcmp((const char *)key, *(char *const *)elem);
}

int32_t ssl_vocab_id(const ssl_vocab_t *v, const char *word)
{
    if (SSL__IS_NULL(v, __func__) || SSL__IS_NULL(word, __func__))
        return SSL_ERR_INVALID;
    if (v->kind != SSL_TOK_WORDS)
        return SSL_VOCAB_UNK;
    char *const *hit = bsearch(word, v->tok + SSL_VOCAB_N_SPECIAL,
                               (size_t)(v->n - SSL_VOCAB_N_SPECIAL), sizeof *v->tok, cmp_str);
    return hit ? (int32_t)(hit - v->tok) : SSL_VOCAB_UNK;
}

/* ---------------------------------------------------------------- text form */

char *ssl_vocab_to_string(const ssl_vocab_t *v)
{
    if (SSL__IS_NULL(v, __func__))
        return NULL;
    if (v->kind == SSL_TOK_BYTES) {
        char *s = dup_str(k_magic_bytes);
        if (!s)
            ssl_set_error(SSL_ERR_NOMEM, "vocabulary: out of memory");
        return s;
    }
    size_t len = sizeof k_magic_words;
    for (int64_t i = 0; i < v->n; i++)
        len += strlen(v->tok[i]) + 1;
    char *s = malloc(len), *o = s;
    if (!s) {
        ssl_set_error(SSL_ERR_NOMEM, "vocabulary: out of memory");
        return NULL;
    }
    memcpy(o, k_magic_words, sizeof k_magic_words - 1);
    o += sizeof k_magic_words - 1;
    for (int64_t i = 0; i < v->n; i++) {
        size_t n = strlen(v->tok[i]);
        memcpy(o, v->tok[i], n);
        o += n;
        *o++ = '\n';
    }
    *o = '\0';
    return s;
}

static ssl_vocab_t *parse_error(ssl_vocab_t *v, int64_t line, const char *why)
{
    ssl_vocab_free(v);
    ssl_set_error(SSL_ERR_FORMAT, "vocabulary text, line %lld: %s", (long long)line, why);
    return NULL;
}

ssl_vocab_t *ssl_vocab_from_string(const char *s)
{
    if (!s)
        return parse_error(NULL, 1, "no text");
    if (!strcmp(s, k_magic_bytes))
        return bytes_vocab();
    size_t hl = sizeof k_magic_words - 1;
    if (strncmp(s, k_magic_words, hl))
        return parse_error(NULL, 1, "expected \"ssl-vocab 1 words\" or \"ssl-vocab 1 bytes\"");
    const char *body = s + hl;
    int64_t lines = 0;
    for (const char *c = body; *c; c++)
        lines += *c == '\n';
    if (*body && body[strlen(body) - 1] != '\n')
        return parse_error(NULL, lines + 2, "the last token has no final newline");
    if (lines < SSL_VOCAB_N_SPECIAL)
        return parse_error(NULL, lines + 2, "the special tokens are missing");
    ssl_vocab_t *v = vocab_alloc(SSL_TOK_WORDS, lines);
    if (!v)
        return NULL;
    const char *c = body;
    for (int64_t i = 0; i < lines; i++) {
        const char *e = strchr(c, '\n');
        size_t n = (size_t)(e - c);
        int64_t line = i + 2;
        if (i < SSL_VOCAB_N_SPECIAL) {
            if (n != strlen(k_special[i]) || strncmp(c, k_special[i], n))
                return parse_error(v, line, "special tokens must be <pad>, <sos>, <eos>, <unk>");
        } else {
            if (n == 0)
                return parse_error(v, line, "empty token");
            for (size_t j = 0; j < n; j++) {
                unsigned char b = (unsigned char)c[j];
                if (!is_word_byte(b) || (b >= 'A' && b <= 'Z'))
                    return parse_error(v, line,
                                       "a word holds only lower-case letters, digits "
                                       "and non-ASCII bytes");
            }
            if (!(v->tok[i] = malloc(n + 1)))
                return parse_error(v, line, "out of memory");
            memcpy(v->tok[i], c, n);
            v->tok[i][n] = '\0';
            if (i > SSL_VOCAB_N_SPECIAL && strcmp(v->tok[i - 1], v->tok[i]) >= 0)
                return parse_error(v, line, "words must be sorted and distinct");
        }
        c = e + 1;
    }
    return v;
}

/* ---------------------------------------------------------------- encoding */

int ssl_vocab_encode(const ssl_vocab_t *v, const char *text, int32_t *out, int context_length)
{
    if (context_length < 2)
        return ssl_set_error(SSL_ERR_INVALID,
                             "vocabulary encode: context_length %d < 2 leaves no "
                             "room for <sos> and <eos>",
                             context_length);
    const char *s = text ? text : "";
    int room = context_length - 2, n = 0;
    out[n++] = SSL_VOCAB_SOS;
    if (v->kind == SSL_TOK_BYTES) {
        for (const unsigned char *c = (const unsigned char *)s; *c && n - 1 < room; c++)
            out[n++] = SSL_VOCAB_N_SPECIAL + *c;
    } else {
        char *buf = malloc(strlen(s) + 1);
        if (!buf)
            return ssl_set_error(SSL_ERR_NOMEM, "vocabulary encode: out of memory");
        size_t pos = 0;
        while (n - 1 < room && next_word(s, &pos, buf))
            out[n++] = ssl_vocab_id(v, buf);
        free(buf);
    }
    out[n++] = SSL_VOCAB_EOS;
    for (int i = n; i < context_length; i++)
        out[i] = SSL_VOCAB_PAD;
    return n;
}
