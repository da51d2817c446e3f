/* File-per-image datasets: ImageFolder, unlabeled folders and image-text pair lists. Files are
 * listed, sorted, then decoded in parallel (OpenMP); bad files are reported in list order, so
 * the dataset and the report do not depend on the number of threads. */
#define _POSIX_C_SOURCE 200809L
#include "data_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#define MAX_DEPTH 32

/* ---------------------------------------------------------------- file lists */

typedef struct entry {
    char *path;
    char *caption;
    int32_t label;
} entry_t;

typedef struct list {
    entry_t *e;
    int64_t n, cap;
} list_t;

static int list_push(list_t *l, char *path, char *caption, int32_t label)
{
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 256;
        entry_t *e = realloc(l->e, sizeof *e * (size_t)cap);
        if (!e) {
            free(path);
            free(caption);
            return ssl_set_error(SSL_ERR_NOMEM, "out of memory listing files");
        }
        l->e = e;
        l->cap = cap;
    }
    l->e[l->n++] = (entry_t){path, caption, label};
    return SSL_OK;
}

static void list_free(list_t *l)
{
    for (int64_t i = 0; i < l->n; i++) {
        free(l->e[i].path);
        free(l->e[i].caption);
    }
    free(l->e);
    memset(l, 0, sizeof *l);
}

static bool has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return false;
    char ext[8] = {0};
    for (size_t i = 0; dot[1 + i]; i++) {
        if (i + 1 >= sizeof ext)
            return false;
        ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    }
    return strcmp(ext, "png") == 0 || strcmp(ext, "jpg") == 0 || strcmp(ext, "jpeg") == 0 ||
           strcmp(ext, "bmp") == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* torchvision's order: sorted(os.walk(...)) sorts by directory path, then file name. */
static int cmp_dir_then_name(const void *a, const void *b)
{
    const char *p = ((const entry_t *)a)->path, *q = ((const entry_t *)b)->path;
    const char *sp = strrchr(p, '/'), *sq = strrchr(q, '/');
    size_t dp = sp ? (size_t)(sp - p) : 0, dq = sq ? (size_t)(sq - q) : 0;
    size_t m = dp < dq ? dp : dq;
    int c = memcmp(p, q, m);
    if (c != 0)
        return c;
    if (dp != dq)
        return dp < dq ? -1 : 1;
    return strcmp(p + dp, q + dq);
}

/* Names in dir (no "." / ".."), sorted; *n set. NULL with n = 0 and an error on failure. */
static char **read_dir_sorted(const char *dir, int64_t *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        ssl_set_error(SSL_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
        return NULL;
    }
    int64_t cap = 64, k = 0;
    char **v = malloc(sizeof(char *) * (size_t)cap);
    struct dirent *de;
    while (v && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (k == cap) {
            char **nv = realloc(v, sizeof(char *) * (size_t)(cap *= 2));
            if (!nv) {
                ssl__free_strings(v, k);
                v = NULL;
                break;
            }
            v = nv;
        }
        if (!(v[k] = ssl__strdup(de->d_name))) {
            ssl__free_strings(v, k);
            v = NULL;
            break;
        }
        k++;
    }
    closedir(d);
    if (!v) {
        ssl_set_error(SSL_ERR_NOMEM, "out of memory reading directory %s", dir);
        return NULL;
    }
    qsort(v, (size_t)k, sizeof(char *), cmp_str);
    *n = k;
    return v;
}

/* Image files under dir, recursively (callers sort them). */
static int walk(const char *dir, int depth, int32_t label, list_t *out)
{
    if (depth > MAX_DEPTH) {
        ssl_logf(SSL_LOG_WARN, "%s: deeper than %d levels, not descended (symlink loop?)", dir,
                 MAX_DEPTH);
        return SSL_OK;
    }
    int64_t n;
    char **names = read_dir_sorted(dir, &n);
    if (!names)
        return ssl_last_status();
    int rc = SSL_OK;
    for (int64_t i = 0; i < n && rc == SSL_OK; i++) {
        char *p = ssl__path_join(dir, names[i]);
        if (!p) {
            rc = ssl_set_error(SSL_ERR_NOMEM, "out of memory");
            break;
        }
        struct stat st;
        if (stat(p, &st) != 0) {
            free(p); /* dangling symlink and the like: not an image we can read */
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            rc = walk(p, depth + 1, label, out);
            free(p);
        } else if (S_ISREG(st.st_mode) && has_image_ext(names[i])) {
            rc = list_push(out, p, NULL, label);
        } else {
            free(p);
        }
    }
    ssl__free_strings(names, n);
    return rc;
}

/* ---------------------------------------------------------------- decoding */

/* Decode every listed file into a dataset (in list order, bad files dropped). The list's paths
 * and captions move into the dataset. */
static ssl_dataset_t *decode_list(list_t *l, ssl__badlog_t *bl)
{
    const ssl_read_opts_t *o = bl->opts;
    const char *what = bl->what;
    int64_t n_bad_before = bl->n_bad;
    int64_t n = l->n;
    if (o->channels != 1 && o->channels != 3) {
        ssl_set_error(SSL_ERR_INVALID, "%s: channels %d must be 1 or 3", what, o->channels);
        return NULL;
    }
    if (o->image_size <= 0 || o->image_size > 8192) {
        ssl_set_error(SSL_ERR_INVALID, "%s: image_size %d must be in [1, 8192]", what,
                      o->image_size);
        return NULL;
    }
    ssl_dataset_t *ds = ssl__dataset_alloc(n, o->channels, o->image_size, o->image_size, false);
    if (!ds)
        return NULL;
    char **why = calloc((size_t)(n ? n : 1), sizeof(char *));
    ds->paths = calloc((size_t)(n ? n : 1), sizeof(char *));
    bool any_caption = false;
    for (int64_t i = 0; i < n; i++)
        any_caption |= l->e[i].caption != NULL;
    if (any_caption)
        ds->captions = calloc((size_t)(n ? n : 1), sizeof(char *));
    if (!why || !ds->paths || (any_caption && !ds->captions)) {
        free(why);
        ssl_dataset_free(ds);
        ssl_set_error(SSL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    size_t per = (size_t)(ds->c * ds->h * ds->w);
    int oom = 0;
#pragma omp parallel for schedule(dynamic, 8)
    for (int64_t i = 0; i < n; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        int rc = ssl__data_read_file(l->e[i].path, o->max_file_bytes, &buf, &len);
        if (rc == SSL_OK)
            rc = ssl_image_decode(buf, len, l->e[i].path, o->channels, o->image_size,
                                  o->max_pixels, ds->images + per * (size_t)i);
        free(buf);
        if (rc != SSL_OK) {
            const char *msg = ssl_last_error();
            size_t pl = strlen(l->e[i].path);
            /* Drop the "PATH: " prefix: the report prints the path itself. */
            if (strncmp(msg, l->e[i].path, pl) == 0 && msg[pl] == ':')
                msg += pl + 1 + (msg[pl + 1] == ' ');
            why[i] = ssl__strdup(msg);
            if (!why[i]) {
#pragma omp atomic write
                oom = 1;
            }
        }
    }
    int64_t k = 0;
    int status = oom ? ssl_set_error(SSL_ERR_NOMEM, "out of memory") : SSL_OK;
    for (int64_t i = 0; i < n && status == SSL_OK; i++) {
        if (why[i]) {
            status = ssl__badlog_add(bl, l->e[i].path, why[i]);
            continue;
        }
        if (k != i)
            memcpy(ds->images + per * (size_t)k, ds->images + per * (size_t)i, per);
        ds->labels[k] = l->e[i].label;
        ds->paths[k] = l->e[i].path;
        l->e[i].path = NULL;
        if (ds->captions) {
            ds->captions[k] = l->e[i].caption;
            l->e[i].caption = NULL;
        }
        k++;
    }
    for (int64_t i = 0; i < n; i++)
        free(why[i]);
    free(why);
    if (status != SSL_OK) {
        ssl_dataset_free(ds);
        return NULL;
    }
    ssl__badlog_finish(bl, n + n_bad_before);
    if (k == 0) {
        ssl_set_error(SSL_ERR_FORMAT, "%s: no readable images (%lld files skipped)", what,
                      (long long)bl->n_bad);
        ssl_dataset_free(ds);
        return NULL;
    }
    ssl__dataset_truncate(ds, k);
    ds->n_skipped = bl->n_bad;
    return ds;
}

static void apply_limit(list_t *l, int64_t limit)
{
    if (limit <= 0 || limit >= l->n)
        return;
    for (int64_t i = limit; i < l->n; i++) {
        free(l->e[i].path);
        free(l->e[i].caption);
    }
    l->n = limit;
}

/* ---------------------------------------------------------------- folders */

ssl_dataset_t *ssl_dataset_load_image_folder(const char *root, const ssl_read_opts_t *opts)
{
    ssl_read_opts_t o = ssl__read_opts(opts);
    if (!root) {
        ssl_set_error(SSL_ERR_INVALID, "image folder: root is NULL");
        return NULL;
    }
    int64_t n_names;
    char **names = read_dir_sorted(root, &n_names);
    if (!names)
        return NULL;
    char **classes = calloc((size_t)(n_names ? n_names : 1), sizeof(char *));
    int n_classes = 0;
    list_t l = {0};
    ssl_dataset_t *ds = NULL;
    char what[512];
    snprintf(what, sizeof what, "image folder %s", root);
    if (!classes) {
        ssl_set_error(SSL_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n_names; i++) {
        char *p = ssl__path_join(root, names[i]);
        struct stat st;
        if (p && stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (n_classes == INT32_MAX)
                break;
            int64_t before = l.n;
            if (walk(p, 1, n_classes, &l) != SSL_OK) {
                free(p);
                goto done;
            }
            qsort(l.e + before, (size_t)(l.n - before), sizeof *l.e, cmp_dir_then_name);
            if (l.n == before)
                ssl_logf(SSL_LOG_WARN, "%s: class \"%s\" has no image files", what, names[i]);
            classes[n_classes++] = names[i];
            names[i] = NULL;
        }
        free(p);
    }
    if (n_classes == 0) {
        ssl_set_error(SSL_ERR_FORMAT, "%s: no class subdirectories (expected ROOT/CLASS/IMAGE)",
                      root);
        goto done;
    }
    apply_limit(&l, o.limit);
    ssl__badlog_t bl = {&o, what, 0};
    ds = decode_list(&l, &bl);
    if (ds) {
        ds->n_classes = n_classes;
        ds->class_names = classes;
        classes = NULL;
    }
done:
    ssl__free_strings(names, n_names);
    ssl__free_strings(classes, n_classes);
    list_free(&l);
    return ds;
}

ssl_dataset_t *ssl_dataset_load_unlabeled_folder(const char *root, const ssl_read_opts_t *opts)
{
    ssl_read_opts_t o = ssl__read_opts(opts);
    if (!root) {
        ssl_set_error(SSL_ERR_INVALID, "unlabeled folder: root is NULL");
        return NULL;
    }
    list_t l = {0};
    if (walk(root, 0, -1, &l) != SSL_OK) {
        list_free(&l);
        return NULL;
    }
    qsort(l.e, (size_t)l.n, sizeof *l.e, cmp_dir_then_name);
    apply_limit(&l, o.limit);
    char what[512];
    snprintf(what, sizeof what, "unlabeled folder %s", root);
    ssl__badlog_t bl = {&o, what, 0};
    ssl_dataset_t *ds = decode_list(&l, &bl);
    list_free(&l);
    return ds;
}

/* ---------------------------------------------------------------- image-text pairs */

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static char *resolve(const char *base, const char *path)
{
    if (path[0] == '/' || !base || !base[0])
        return ssl__strdup(path);
    return ssl__path_join(base, path);
}

static const char *json_string(const cJSON *obj, const char *const *keys)
{
    for (int i = 0; keys[i]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, keys[i]);
        if (cJSON_IsString(v) && v->valuestring)
            return v->valuestring;
    }
    return NULL;
}

/* Parse the list into l; malformed lines are reported through bl. */
static int parse_pairs(char *text, bool jsonl, const char *base, const char *list_path,
                       ssl__badlog_t *bl, list_t *l)
{
    static const char *const img_keys[] = {"image", "file", "path", NULL};
    static const char *const cap_keys[] = {"caption", "text", NULL};
    int64_t line_no = 0;
    bool first = true;
    char *s = text;
    while (*s) {
        char *e = strchr(s, '\n');
        char *next = e ? e + 1 : s + strlen(s);
        if (e)
            *e = 0;
        line_no++;
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' '))
            s[--n] = 0;
        char where[600];
        snprintf(where, sizeof where, "%s:%lld", list_path, (long long)line_no);
        const char *path = NULL, *cap = NULL;
        cJSON *j = NULL;
        if (n == 0 || s[0] == '#') {
            s = next;
            continue;
        }
        if (jsonl) {
            const char *end = NULL;
            j = cJSON_ParseWithOpts(s, &end, 1);
            if (!j || !cJSON_IsObject(j)) {
                cJSON_Delete(j);
                int rc = ssl__badlog_add(bl, where, "not a JSON object");
                if (rc != SSL_OK)
                    return rc;
                s = next;
                continue;
            }
            path = json_string(j, img_keys);
            cap = json_string(j, cap_keys);
            if (!path || !cap) {
                cJSON_Delete(j);
                int rc = ssl__badlog_add(bl, where, "needs string fields \"image\" and "
                                                    "\"caption\"");
                if (rc != SSL_OK)
                    return rc;
                s = next;
                continue;
            }
        } else {
            char *tab = strchr(s, '\t');
            if (!tab) {
                int rc = ssl__badlog_add(bl, where, "no TAB between image path and caption");
                if (rc != SSL_OK)
                    return rc;
                s = next;
                continue;
            }
            *tab = 0;
            path = s;
            cap = tab + 1;
            if (first && (strcmp(path, "image") == 0 || strcmp(path, "file") == 0 ||
                          strcmp(path, "filepath") == 0 || strcmp(path, "path") == 0)) {
                first = false;
                s = next;
                continue;
            }
        }
        first = false;
        int rc = SSL_OK;
        if (!path[0]) {
            rc = ssl__badlog_add(bl, where, "empty image path");
        } else {
            char *p = resolve(base, path);
            char *c = ssl__strdup(cap);
            if (!p || !c) {
                free(p);
                free(c);
                rc = ssl_set_error(SSL_ERR_NOMEM, "out of memory");
            } else {
                rc = list_push(l, p, c, -1);
            }
        }
        cJSON_Delete(j);
        if (rc != SSL_OK)
            return rc;
        s = next;
    }
    return SSL_OK;
}

ssl_dataset_t *ssl_dataset_load_pairs(const char *list_path, const ssl_read_opts_t *opts)
{
    ssl_read_opts_t o = ssl__read_opts(opts);
    if (!list_path) {
        ssl_set_error(SSL_ERR_INVALID, "image-text pairs: list path is NULL");
        return NULL;
    }
    uint8_t *buf;
    size_t len;
    if (ssl__data_read_file(list_path, (int64_t)1 << 31, &buf, &len) != SSL_OK)
        return NULL;
    if (memchr(buf, 0, len)) {
        free(buf);
        ssl_set_error(SSL_ERR_FORMAT, "%s: list contains NUL bytes (offset %zu); not a text "
                      "file", list_path, (size_t)((uint8_t *)memchr(buf, 0, len) - buf));
        return NULL;
    }
    char *base = NULL;
    if (o.root) {
        base = ssl__strdup(o.root);
    } else {
        base = ssl__strdup(list_path);
        if (base) {
            char *slash = strrchr(base, '/');
            if (slash)
                slash[1] = 0;
            else
                base[0] = 0;
        }
    }
    char what[600];
    snprintf(what, sizeof what, "image-text list %s", list_path);
    ssl__badlog_t bl = {&o, what, 0};
    list_t l = {0};
    ssl_dataset_t *ds = NULL;
    if (!base) {
        ssl_set_error(SSL_ERR_NOMEM, "out of memory");
    } else if (parse_pairs((char *)buf, ends_with(list_path, ".jsonl"), base, list_path, &bl,
                           &l) == SSL_OK) {
        apply_limit(&l, o.limit);
        ds = decode_list(&l, &bl);
    }
    free(base);
    free(buf);
    list_free(&l);
    return ds;
}
