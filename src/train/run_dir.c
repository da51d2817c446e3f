/* The run directory's lifecycle: claimed atomically, locked while a trainer uses it, and
 * tidied on resume (stale temporary files, epoch checkpoints beyond checkpoint.keep_last). */
#define _DEFAULT_SOURCE /* flock, d_type-free readdir */
#include "run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ssl/core.h"

int ssl__make_dirs(const char *path)
{
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return ssl_set_error(SSL_ERR_INVALID, "directory name too long: '%s'", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return ssl_set_error(SSL_ERR_IO, "cannot create directory '%s': %s", path, strerror(errno));
    return SSL_OK;
}

int ssl__run_dir_claim(const char *out, const char *name, char *dir, size_t len)
{
    if (ssl__make_dirs(out) != SSL_OK)
        return ssl_last_status();
    /* mkdir either creates the directory or fails: of two runs started together, one gets
     * NAME and the other NAME-2 (checking for existence first left a window for both) */
    for (int i = 1; i < 10000; i++) {
        int n = i == 1 ? snprintf(dir, len, "%s/%s", out, name)
                       : snprintf(dir, len, "%s/%s-%d", out, name, i);
        if (n < 0 || (size_t)n >= len)
            return ssl_set_error(SSL_ERR_INVALID, "run directory name too long: '%s/%s'", out,
                                 name);
        if (mkdir(dir, 0755) == 0)
            return SSL_OK;
        if (errno != EEXIST)
            return ssl_set_error(SSL_ERR_IO, "cannot create directory '%s': %s", dir,
                                 strerror(errno));
    }
    return ssl_set_error(SSL_ERR_IO, "%s: %s and %s-2 ... %s-9999 are all taken", out, name, name,
                         name);
}

int ssl__run_dir_lock(const char *dir, int *fd_out)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/" SSL__RUN_LOCK, dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return ssl_set_error(SSL_ERR_IO, "%s: cannot open the run's lock file: %s", path,
                             strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return ssl_set_error(SSL_ERR_STATE,
                                 "%s is in use by another training (process %s holds %s): "
                                 "wait for it to finish or stop it (Ctrl-C saves a checkpoint) "
                                 "before resuming",
                                 dir, pid[0] ? pid : "?", path);
        return ssl_set_error(SSL_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return ssl_set_error(SSL_ERR_IO, "%s: cannot write the lock file: %s", path, strerror(e));
    }
    *fd_out = fd;
    return SSL_OK;
}

void ssl__run_dir_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock; the file stays (removing it would race a new lock) */
}

/* "epoch-N.safetensors" -> N, or -1. */
static long long epoch_file_number(const char *name)
{
    static const char pre[] = "epoch-", suf[] = ".safetensors";
    size_t len = strlen(name);
    if (strncmp(name, pre, sizeof pre - 1) || len <= sizeof pre - 1 + sizeof suf - 1 ||
        strcmp(name + len - (sizeof suf - 1), suf))
        return -1;
    long long n = 0;
    for (const char *p = name + sizeof pre - 1; p < name + len - (sizeof suf - 1); p++) {
        if (*p < '0' || *p > '9' || n > 1000000000LL)
            return -1;
        n = 10 * n + (*p - '0');
    }
    return n;
}

/* Remove the temporary files an interrupted atomic write left in dir ("X.tmp-PID-N"). */
static void remove_stale_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[1400];
    while ((e = readdir(d)) != NULL) {
        if (!strstr(e->d_name, ".tmp-"))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (remove(path) == 0)
            ssl_logf(SSL_LOG_INFO, "removed %s (left by an interrupted write)", path);
    }
    closedir(d);
}

void ssl__run_dir_tidy(const char *dir, int64_t epoch_done, int every, int keep_last)
{
    char ck[1100], path[1400];
    snprintf(ck, sizeof ck, "%s/checkpoints", dir);
    remove_stale_tmp(dir);
    remove_stale_tmp(ck);
    if (every <= 0 || keep_last <= 0)
        return;
    /* the window a finished epoch leaves: epoch-N for N in (epoch_done - keep_last * every,
     * epoch_done]; a kill between writing epoch-N and removing the oldest leaves one more */
    long long oldest_kept = (long long)epoch_done - (long long)keep_last * every + 1;
    DIR *d = opendir(ck);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long long n = epoch_file_number(e->d_name);
        if (n < 0 || n >= oldest_kept)
            continue;
        snprintf(path, sizeof path, "%s/%s", ck, e->d_name);
        if (remove(path) == 0)
            ssl_logf(SSL_LOG_INFO, "removed %s (checkpoint.keep_last %d)", path, keep_last);
    }
    closedir(d);
}

long long ssl__run_dir_newest_epoch(const char *dir)
{
    char ck[1100];
    snprintf(ck, sizeof ck, "%s/checkpoints", dir);
    DIR *d = opendir(ck);
    if (!d)
        return -1;
    long long best = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long long n = epoch_file_number(e->d_name);
        if (n > best)
            best = n;
    }
    closedir(d);
    return best;
}
