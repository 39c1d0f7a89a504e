/* fsutil.h — file helpers: durable atomic writes, bounded reads, trees. */
#ifndef BERTH_FSUTIL_H
#define BERTH_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"

/* Writes data to path so that after return the file holds either its old
 * content or exactly data, across crashes: PATH.tmp.TID (the calling
 * thread's id: concurrent writers of one path never share it), fsync, rename,
 * fsync of the directory. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct berth_err *err);
/* write(2) until all of len is written, retrying on EINTR; -1 with errno. */
int fs_write_all(int fd, const void *data, size_t len);
/* Removes path and fsyncs its directory (ENOENT is not an error). */
int fs_unlink_durable(const char *path, struct berth_err *err);
/* Reads a whole file into out (appends), failing with EFBIG past max bytes. */
int fs_read_file(const char *path, struct berth_buf *out, size_t max, struct berth_err *err);
/* mkdir -p; existing directories are fine. */
int fs_mkdir_p(const char *path, mode_t mode, struct berth_err *err);
/* rm -rf that does not cross mount points and does not follow symlinks;
 * ENOENT is not an error. */
int fs_remove_tree(const char *path, struct berth_err *err);
/* Disk space a file or tree takes (st_blocks, symlinks not followed);
 * what cannot be read counts 0. */
uint64_t fs_tree_bytes(const char *path);
/* Joins into a newly allocated string: fs_path("%s/models/%s.json", a, b). */
char *fs_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Lets group gid reach path (e.g. a shim socket the unprivileged router
 * connects to): group gid, mode, and group search permission on its
 * directory. Failures are logged, not returned: the caller goes on. */
void fs_share_with_group(const char *path, mode_t mode, gid_t gid);

#endif
