/* The run directory's lifecycle (run_dir.c). */
#ifndef SSL_TRAIN_RUN_DIR_H
#define SSL_TRAIN_RUN_DIR_H

#include <stddef.h>
#include <stdint.h>

/* The file a live trainer holds an flock on (it contains the holder's pid). */
#define SSL__RUN_LOCK "lock"

/* mkdir -p path. */
int ssl__make_dirs(const char *path);
/* Create out (and its parents) and claim out/name, else out/name-2, -3, ... with an mkdir that
 * fails when the directory exists, so two runs started together never share one. The claimed
 * path goes to dir (len bytes). */
int ssl__run_dir_claim(const char *out, const char *name, char *dir, size_t len);
/* Take the run's lock (dir/lock, flock, non-blocking): SSL_ERR_STATE naming the holding
 * process when another trainer has it. *fd gets the descriptor to pass to ssl__run_dir_unlock. */
int ssl__run_dir_lock(const char *dir, int *fd);
void ssl__run_dir_unlock(int fd);
/* On resume, with the lock held: remove temporary files of interrupted atomic writes (in dir
 * and dir/checkpoints) and epoch-N checkpoints older than the keep_last window ending at
 * epoch_done (a kill between writing one and removing the oldest leaves one too many). */
void ssl__run_dir_tidy(const char *dir, int64_t epoch_done, int every, int keep_last);
/* The largest N of dir/checkpoints/epoch-N.safetensors, or -1. */
long long ssl__run_dir_newest_epoch(const char *dir);

#endif
