/* File-per-image datasets: ImageFolder, unlabeled folders and image-text pair lists. Files are
 * listed, sorted, then decoded in parallel (OpenMP); bad files are reported in list order, so
 * the dataset and the report do not depend on the number of threads. */
#define _XOPEN_SOURCE 700 /* realpath */
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

/* ---------------------------------------------------------------- walking directories */

/* A directory tree is walked once. Directory links inside the dataset root are never followed
 * (whatever they point at is read without them, so they would only add duplicates, under
 * another class, or loop); links that leave the root are followed only with
 * ssl_read_opts_t.follow_links, and then every directory is read at most once (device and
 * inode of each one read), so a loop or a second link to the same place is skipped. Each
 * skipped link is reported with ssl_logf(SSL_LOG_WARN). */
typedef struct dir_id {
    dev_t dev;
    ino_t ino;
} dir_id_t;

typedef struct dir_slot {
    dir_id_t id;
    bool used;
} dir_slot_t;

typedef struct walker {
    const char *what; /* "image folder ROOT" */
    char *real_root;  /* realpath of the root */
    int follow_links;
    dir_slot_t *seen; /* open-addressing set of the directories read, cap a power of 2 */
    size_t n_seen, cap_seen;
    dir_id_t path[MAX_DEPTH + 2]; /* the directories from the root to the current one */
    int depth;
} walker_t;

static bool same_dir(dir_id_t a, dir_id_t b)
{
    return a.dev == b.dev && a.ino == b.ino;
}

static dir_id_t dir_id(const struct stat *st)
{
    return (dir_id_t){st->st_dev, st->st_ino};
}

static size_t dir_hash(dir_id_t id, size_t cap)
{
    uint64_t h = (uint64_t)id.ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)id.dev;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

/* Add id to the set; 1 if added, 0 if it was there, negative status when out of memory. */
static int seen_add(walker_t *w, dir_id_t id)
{
    if (2 * (w->n_seen + 1) > w->cap_seen) {
        size_t cap = w->cap_seen ? 2 * w->cap_seen : 64;
        dir_slot_t *s = calloc(cap, sizeof *s);
        if (!s)
            return ssl_set_error(SSL_ERR_NOMEM, "out of memory listing directories");
        for (size_t i = 0; i < w->cap_seen; i++) {
            if (!w->seen[i].used)
                continue;
            size_t k = dir_hash(w->seen[i].id, cap);
            while (s[k].used)
                k = (k + 1) & (cap - 1);
            s[k] = w->seen[i];
        }
        free(w->seen);
        w->seen = s;
        w->cap_seen = cap;
    }
    size_t k = dir_hash(id, w->cap_seen);
    for (; w->seen[k].used; k = (k + 1) & (w->cap_seen - 1))
        if (same_dir(w->seen[k].id, id))
            return 0;
    w->seen[k] = (dir_slot_t){id, true};
    w->n_seen++;
    return 1;
}

static bool on_path(const walker_t *w, dir_id_t id)
{
    for (int i = 0; i < w->depth; i++)
        if (same_dir(w->path[i], id))
            return true;
    return false;
}

/* 1 when real (a resolved path) is real_root or below it. */
static bool under_root(const walker_t *w, const char *real)
{
    size_t n = strlen(w->real_root);
    if (n == 1) /* the root is "/" */
        return true;
    return strncmp(real, w->real_root, n) == 0 && (real[n] == 0 || real[n] == '/');
}

enum { DIR_READ = 1, DIR_SKIP = 0 };

/* Whether to descend into directory p (st: stat of p): DIR_READ, or DIR_SKIP with the reason in
 * msg ("WHAT: P links to ..., not followed") for a link into the tree, a link out of it
 * (without follow_links), a loop or a directory already read; a negative status when out of
 * memory. */
static int dir_check(walker_t *w, const char *p, const struct stat *st, char *msg, size_t n)
{
    dir_id_t id = dir_id(st);
    struct stat lst;
    if (lstat(p, &lst) == 0 && S_ISLNK(lst.st_mode)) {
        char *real = realpath(p, NULL);
        const char *why = NULL;
        if (!real)
            why = "a target that cannot be resolved";
        else if (on_path(w, id))
            why = "an ancestor: a loop";
        else if (under_root(w, real))
            why = "inside the dataset: its images are read without the link";
        else if (!w->follow_links)
            why = "outside the dataset root (data.follow_links: true reads it)";
        if (why)
            snprintf(msg, n, "%s: %s links to %s, %s; not followed", w->what, p, real ? real : "?",
                     why);
        free(real);
        if (why)
            return DIR_SKIP;
    }
    int added = seen_add(w, id);
    if (added == 0)
        snprintf(msg, n, "%s: %s was already read (%s); not read again", w->what, p,
                 on_path(w, id) ? "a loop" : "a duplicate");
    return added < 0 ? added : added ? DIR_READ : DIR_SKIP;
}

static int walk_dir(walker_t *w, const char *dir, const struct stat *dst, int32_t label,
                    list_t *out);
static int walk(walker_t *w, const char *dir, int32_t label, list_t *out);

/* walk() with dir (st: its stat) on the walker's path. */
static int descend(walker_t *w, const char *dir, const struct stat *st, int32_t label, list_t *out)
{
    w->path[w->depth++] = dir_id(st);
    int rc = walk(w, dir, label, out);
    w->depth--;
    return rc;
}

/* Image files under dir, recursively (callers sort them). */
static int walk(walker_t *w, const char *dir, int32_t label, list_t *out)
{
    if (w->depth > MAX_DEPTH) {
        ssl_logf(SSL_LOG_WARN, "%s: %s: deeper than %d levels, not descended", w->what, dir,
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
            rc = walk_dir(w, p, &st, label, out);
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

/* dir (st: its stat) after dir_check, with dir on the walker's path while it is read. */
static int walk_dir(walker_t *w, const char *dir, const struct stat *dst, int32_t label,
                    list_t *out)
{
    char msg[2048];
    int rc = dir_check(w, dir, dst, msg, sizeof msg);
    if (rc == DIR_SKIP)
        ssl_logf(SSL_LOG_WARN, "%s", msg);
    return rc == DIR_READ ? descend(w, dir, dst, label, out) : rc < 0 ? rc : SSL_OK;
}

/* A walker over root: the root is read (on the path, in the set). */
static int walker_init(walker_t *w, const char *root, const char *what, int follow_links)
{
    memset(w, 0, sizeof *w);
    w->what = what;
    w->follow_links = follow_links;
    struct stat st;
    if (stat(root, &st) != 0)
        return ssl_set_error(SSL_ERR_IO, "%s: cannot open directory: %s", root, strerror(errno));
    if (!(w->real_root = realpath(root, NULL)))
        return ssl_set_error(SSL_ERR_IO, "%s: cannot resolve: %s", root, strerror(errno));
    dir_id_t id = dir_id(&st);
    int rc = seen_add(w, id);
    if (rc < 0)
        return rc;
    w->path[w->depth++] = id;
    return SSL_OK;
}

static void walker_free(walker_t *w)
{
    free(w->real_root);
    free(w->seen);
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

/* Sort the n entries from e (a class's files, or all) in torchvision's order. */
static void sort_entries(entry_t *e, int64_t n)
{
    if (n > 1) /* e is NULL when nothing was listed: qsort's pointer must not be */
        qsort(e, (size_t)n, sizeof *e, cmp_dir_then_name);
}

/* One class directory p (st: its stat) into l with label `label`. A class is never skipped (the
 * labels after it would shift): a link the walker would not follow is an error. */
static int walk_class(walker_t *w, const char *p, const struct stat *st, int32_t label,
                      const char *name, list_t *l)
{
    char msg[2048];
    int rc = dir_check(w, p, st, msg, sizeof msg);
    if (rc == DIR_SKIP)
        return ssl_set_error(SSL_ERR_FORMAT, "%s (a class directory cannot be skipped)", msg);
    if (rc < 0)
        return rc;
    int64_t before = l->n;
    rc = descend(w, p, st, label, l);
    if (rc != SSL_OK)
        return rc;
    sort_entries(l->e + before, l->n - before);
    if (l->n == before)
        ssl_logf(SSL_LOG_WARN, "%s: class \"%s\" has no image files", w->what, name);
    return SSL_OK;
}

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
    walker_t w;
    if (walker_init(&w, root, what, o.follow_links) != SSL_OK)
        goto done;
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
            if (walk_class(&w, p, &st, n_classes, names[i], &l) != SSL_OK) {
                free(p);
                goto done;
            }
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
    walker_free(&w);
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
    char what[512];
    snprintf(what, sizeof what, "unlabeled folder %s", root);
    list_t l = {0};
    walker_t w;
    int rc = walker_init(&w, root, what, o.follow_links);
    if (rc == SSL_OK)
        rc = walk(&w, root, -1, &l);
    walker_free(&w);
    if (rc != SSL_OK) {
        list_free(&l);
        return NULL;
    }
    sort_entries(l.e, l.n);
    apply_limit(&l, o.limit);
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
