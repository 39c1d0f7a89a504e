/* idmap.c — see idmap.h. */
#include "idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"

#define HELPER_STACK (64 * 1024)

/* The helper shares berthd's memory (nothing copied) except under
 * ThreadSanitizer, whose per-thread state the helper would then write
 * through the thread pointer it shares with its parent: a TSan build
 * gives it a copy instead (a fork's cost, only in that build). */
#if defined(__SANITIZE_THREAD__)
#define HELPER_SHARES_MEMORY 0
#else
#define HELPER_SHARES_MEMORY CLONE_VM
#endif

/* The helper only has to exist while its parent writes its maps and opens
 * its namespace; the parent then kills it (its file table is a copy of
 * berthd's, other threads' pipes included, so it cannot be told to go by
 * EOF). It shares berthd's memory (CLONE_VM, so nothing is copied) and
 * runs on a stack the sanitizers do not know, hence the attribute. */
__attribute__((no_sanitize("address", "undefined"))) static int helper_wait(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return 0;
}

static int write_map(pid_t pid, const char *file, long long base, long long size, struct berth_err *err)
{
	char path[64], line[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	int len = snprintf(line, sizeof(line), "0 %lld %lld\n", base, size);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, line, (size_t)len) != len)
		return berth_err_set(err, errno, "cannot write the container user namespace's %s (%s)", file,
				     line);
	return 0;
}

int idmap_userns_open(long long base, long long size, int *fd, struct berth_err *err)
{
	*fd = -1;
	void *stack = mmap(NULL, HELPER_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return berth_err_set(err, errno, "mmap");
	pid_t pid = clone(helper_wait, (char *)stack + HELPER_STACK, CLONE_NEWUSER | HELPER_SHARES_MEMORY | SIGCHLD, NULL);
	int r = 0;
	if (pid < 0)
		r = berth_err_set(err, errno, "cannot create a user namespace for a container");
	if (r == 0 && (write_map(pid, "uid_map", base, size, err) < 0 || write_map(pid, "gid_map", base, size, err) < 0))
		r = -1;
	if (r == 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
		if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			r = berth_err_set(err, errno, "open %s", path);
	}
	if (pid > 0) {
		int status;
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, __WALL) < 0 && errno == EINTR)
			;
	}
	munmap(stack, HELPER_STACK); /* only once the helper is gone */
	return r;
}

/* source as (dirfd, path, flags) for open_tree: "/proc/self/fd/N" (a
 * directory berthd opened beneath an allowed root, image.h) is that
 * descriptor itself, never the magic link or a new lookup. */
static int tree_of(const char *source)
{
	static const char prefix[] = "/proc/self/fd/";
	const unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
	if (strncmp(source, prefix, sizeof(prefix) - 1) == 0) {
		const char *digits = source + sizeof(prefix) - 1;
		char *end;
		errno = 0;
		long fd = strtol(digits, &end, 10);
		if (*digits != '\0' && *end == '\0' && errno == 0 && fd >= 0 && fd <= INT_MAX)
			return open_tree((int)fd, "", flags | AT_EMPTY_PATH);
	}
	return open_tree(AT_FDCWD, source, flags | AT_SYMLINK_NOFOLLOW);
}

int idmap_bind(const char *source, const char *target, int userns_fd, bool read_only, struct berth_err *err)
{
	_cleanup_close_ int tree = tree_of(source);
	if (tree < 0)
		return berth_err_set(err, errno, "cannot clone the mount of %s", source);
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | (read_only ? MOUNT_ATTR_RDONLY : 0),
		.userns_fd = (unsigned long long)userns_fd,
	};
	if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
		int e = errno;
		if (e == EINVAL || e == EPERM)
			return berth_err_set(err, e,
					     "cannot make an idmapped mount of %s (its filesystem may not support "
					     "idmapped mounts: keep berthd's state directory on ext4, xfs, btrfs or "
					     "tmpfs, or set \"no_user_namespaces\": true)",
					     source);
		return berth_err_set(err, e, "cannot make an idmapped mount of %s", source);
	}
	if (move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return berth_err_set(err, errno, "cannot attach the idmapped mount of %s at %s", source, target);
	return 0;
}
