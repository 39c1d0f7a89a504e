/* fsutil.c — see fsutil.h. */
#include "fsutil.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fsync_parent(const char *path, struct berth_err *err)
{
	_cleanup_free_ char *copy = strdup(path);
	if (copy == NULL)
		return berth_err_set(err, ENOMEM, "syncing the directory of %s", path);
	_cleanup_close_ int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		return berth_err_set(err, errno, "syncing the directory of %s", path);
	return 0;
}

int fs_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct berth_err *err)
{
	/* by thread: two threads writing one path must not share a temporary */
	_cleanup_free_ char *tmp = fs_path("%s.tmp.%d", path, (int)gettid());
	if (tmp == NULL)
		return berth_err_set(err, ENOMEM, "writing %s", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return berth_err_set(err, errno, "cannot write %s", tmp);
	if (fs_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		return berth_err_set(err, e, "cannot write %s", tmp);
	}
	if (close(fd) < 0) {
		int e = errno;
		unlink(tmp);
		return berth_err_set(err, e, "cannot write %s", tmp);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return berth_err_set(err, e, "cannot rename %s to %s", tmp, path);
	}
	return fsync_parent(path, err);
}

int fs_unlink_durable(const char *path, struct berth_err *err)
{
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return 0;
		return berth_err_set(err, errno, "cannot remove %s", path);
	}
	return fsync_parent(path, err);
}

int fs_read_file(const char *path, struct berth_buf *out, size_t max, struct berth_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return berth_err_set(err, errno, "cannot read %s", path);
	size_t total = 0;
	for (;;) {
		if (buf_reserve(out, 65536) < 0)
			return berth_err_set(err, ENOMEM, "reading %s", path);
		ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return berth_err_set(err, errno, "cannot read %s", path);
		}
		if (n == 0)
			break;
		total += (size_t)n;
		if (total > max)
			return berth_err_set(err, EFBIG, "%s is larger than %zu bytes", path, max);
		out->len += (size_t)n;
		out->data[out->len] = '\0';
	}
	return 0;
}

int fs_mkdir_p(const char *path, mode_t mode, struct berth_err *err)
{
	_cleanup_free_ char *copy = strdup(path);
	if (copy == NULL)
		return berth_err_set(err, ENOMEM, "creating %s", path);
	for (char *p = copy + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char saved = *p;
			*p = '\0';
			if (mkdir(copy, mode) < 0 && errno != EEXIST)
				return berth_err_set(err, errno, "cannot create directory %s", copy);
			*p = saved;
			if (saved == '\0')
				break;
		}
	}
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return berth_err_set(err, ENOTDIR, "cannot create directory %s", path);
	return 0;
}

static int remove_at(int parent, const char *name, dev_t dev, struct berth_err *err)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : berth_err_set(err, errno, "cannot stat %s", name);
	if (S_ISDIR(st.st_mode)) {
		if (st.st_dev != dev)
			return berth_err_set(err, EXDEV, "refusing to remove %s: it is a mount point", name);
		int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return berth_err_set(err, errno, "cannot open %s", name);
		DIR *d = fdopendir(fd);
		if (d == NULL) {
			close(fd);
			return berth_err_set(err, errno, "cannot open %s", name);
		}
		int r = 0;
		struct dirent *de;
		while (r == 0 && (de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			r = remove_at(dirfd(d), de->d_name, dev, err);
		}
		closedir(d);
		if (r < 0)
			return r;
		if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			return berth_err_set(err, errno, "cannot remove directory %s", name);
		return 0;
	}
	if (unlinkat(parent, name, 0) < 0 && errno != ENOENT)
		return berth_err_set(err, errno, "cannot remove %s", name);
	return 0;
}

int fs_remove_tree(const char *path, struct berth_err *err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : berth_err_set(err, errno, "cannot stat %s", path);
	if (remove_at(AT_FDCWD, path, st.st_dev, err) < 0)
		return berth_err_prefix(err, "removing %s", path);
	return 0;
}

static uint64_t bytes_at(int parent, const char *name)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	uint64_t total = (uint64_t)st.st_blocks * 512;
	if (!S_ISDIR(st.st_mode))
		return total;
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return total;
	}
	for (struct dirent *de; (de = readdir(d)) != NULL;)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			total += bytes_at(dirfd(d), de->d_name);
	closedir(d);
	return total;
}

uint64_t fs_tree_bytes(const char *path)
{
	return bytes_at(AT_FDCWD, path);
}

char *fs_path(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

void fs_share_with_group(const char *path, mode_t mode, gid_t gid)
{
	_cleanup_free_ char *dir = strdup(path);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		struct stat st;
		if (stat(dir, &st) == 0 && (st.st_gid != gid || (st.st_mode & 0010) == 0) &&
		    (chown(dir, (uid_t)-1, gid) < 0 || chmod(dir, (st.st_mode & 0700) | 0010) < 0))
			log_warn("cannot share %s with group %u: %s", dir, (unsigned)gid, strerror(errno));
	}
	if (chown(path, (uid_t)-1, gid) < 0 || chmod(path, mode) < 0)
		log_warn("cannot share %s with group %u: %s", path, (unsigned)gid, strerror(errno));
}
