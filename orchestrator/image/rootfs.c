/* rootfs.c — see rootfs.h. */
#include "rootfs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "log.h"

/* overlayfs splits its options at ',' and lowerdir at ':'; '\' escapes */
static int append_escaped(struct berth_buf *b, const char *path)
{
	for (const char *p = path; *p; p++) {
		if ((*p == ',' || *p == ':' || *p == '\\') && buf_append(b, "\\", 1) < 0)
			return -1;
		if (buf_append(b, p, 1) < 0)
			return -1;
	}
	return 0;
}

bool rootfs_is_mounted(const char *container_dir)
{
	_cleanup_free_ char *mp = fs_path("%s/rootfs", container_dir);
	struct stat dir, root;
	if (mp == NULL || stat(container_dir, &dir) < 0 || lstat(mp, &root) < 0)
		return false;
	return dir.st_dev != root.st_dev;
}

int rootfs_mount(const char *container_dir, const char *lower, char **mountpoint, struct berth_err *err)
{
	_cleanup_free_ char *mp = fs_path("%s/rootfs", container_dir);
	_cleanup_free_ char *upper = fs_path("%s/upper", container_dir);
	_cleanup_free_ char *work = fs_path("%s/work", container_dir);
	if (mp == NULL || upper == NULL || work == NULL)
		return berth_err_set(err, ENOMEM, "overlay");
	if (rootfs_unmount(container_dir, err) < 0) /* a leftover from an earlier try */
		return -1;
	if (fs_mkdir_p(mp, 0755, err) < 0 || fs_mkdir_p(upper, 0755, err) < 0 || fs_mkdir_p(work, 0700, err) < 0)
		return -1;
	struct berth_buf opts = BERTH_BUF_INIT;
	int r = buf_append_str(&opts, "lowerdir=") | append_escaped(&opts, lower) |
		buf_append_str(&opts, ",upperdir=") | append_escaped(&opts, upper) |
		buf_append_str(&opts, ",workdir=") | append_escaped(&opts, work);
	if (r < 0) {
		buf_free(&opts);
		return berth_err_set(err, ENOMEM, "overlay");
	}
	if (mount("overlay", mp, "overlay", MS_NODEV, opts.data) < 0) {
		int e = errno;
		buf_free(&opts);
		berth_err_set(err, e, "cannot mount the container's overlay root at %s (lower %s)", mp, lower);
		struct berth_err ignored;
		rootfs_unmount(container_dir, &ignored);
		return -1;
	}
	buf_free(&opts);
	*mountpoint = berth_steal_ptr(&mp);
	return 0;
}

int rootfs_unmount(const char *container_dir, struct berth_err *err)
{
	_cleanup_free_ char *mp = fs_path("%s/rootfs", container_dir);
	_cleanup_free_ char *upper = fs_path("%s/upper", container_dir);
	_cleanup_free_ char *work = fs_path("%s/work", container_dir);
	if (mp == NULL || upper == NULL || work == NULL)
		return berth_err_set(err, ENOMEM, "overlay");
	for (int i = 0; i < 8 && rootfs_is_mounted(container_dir); i++) {
		if (umount2(mp, UMOUNT_NOFOLLOW) == 0)
			continue;
		if (errno == EBUSY) {
			log_warn("%s is busy; detaching it lazily", mp);
			if (umount2(mp, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
				continue;
		}
		return berth_err_set(err, errno, "cannot unmount %s", mp);
	}
	if (rootfs_is_mounted(container_dir))
		return berth_err_set(err, EBUSY, "%s is still mounted", mp);
	/* fs_remove_tree never crosses a mount point, so this cannot reach the image */
	if (fs_remove_tree(mp, err) < 0 || fs_remove_tree(upper, err) < 0 || fs_remove_tree(work, err) < 0)
		return -1;
	return 0;
}
