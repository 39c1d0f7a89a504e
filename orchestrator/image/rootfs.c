/* rootfs.c — see rootfs.h. */
#include "rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "idmap.h"
#include "log.h"

/* The host-side mount points of one container, unmounted in this order. */
static const char *const mount_names[] = { "rootfs", "model", "models", "lower" };

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

/* A mount's root (a bind of the same filesystem shares st_dev, so ask). */
static bool is_mount_root(const char *path)
{
	struct statx stx;
	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &stx) < 0)
		return false;
	return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

bool rootfs_is_mounted(const char *container_dir)
{
	_cleanup_free_ char *mp = fs_path("%s/rootfs", container_dir);
	return mp != NULL && is_mount_root(mp);
}

static int unmount_one(const char *mp, struct berth_err *err)
{
	for (int i = 0; i < 8 && is_mount_root(mp); i++) {
		if (umount2(mp, UMOUNT_NOFOLLOW) == 0)
			continue;
		if (errno == EBUSY) {
			log_warn("%s is busy; detaching it lazily", mp);
			if (umount2(mp, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
				continue;
		}
		return berth_err_set(err, errno, "cannot unmount %s", mp);
	}
	if (is_mount_root(mp))
		return berth_err_set(err, EBUSY, "%s is still mounted", mp);
	return 0;
}

/* upper is the overlay's root directory: give it the image root's owner
 * and mode as the container sees them (through the idmapped lower), or
 * the container's root could not write in "/" */
static int upper_like_lower(const char *upper, const char *lower, struct berth_err *err)
{
	struct stat st;
	if (stat(lower, &st) < 0)
		return berth_err_set(err, errno, "stat %s", lower);
	if (chown(upper, st.st_uid, st.st_gid) < 0 || chmod(upper, st.st_mode & 07777) < 0)
		return berth_err_set(err, errno, "cannot give %s the owner of the image root", upper);
	return 0;
}

int rootfs_mount(const char *container_dir, const char *lower, int userns_fd, char **mountpoint,
		 struct berth_err *err)
{
	_cleanup_free_ char *mp = fs_path("%s/rootfs", container_dir);
	_cleanup_free_ char *upper = fs_path("%s/upper", container_dir);
	_cleanup_free_ char *work = fs_path("%s/work", container_dir);
	_cleanup_free_ char *mapped = fs_path("%s/lower", container_dir);
	if (mp == NULL || upper == NULL || work == NULL || mapped == NULL)
		return berth_err_set(err, ENOMEM, "overlay");
	if (rootfs_unmount(container_dir, err) < 0) /* a leftover from an earlier try */
		return -1;
	if (fs_mkdir_p(mp, 0755, err) < 0 || fs_mkdir_p(upper, 0755, err) < 0 || fs_mkdir_p(work, 0700, err) < 0)
		return -1;
	if (userns_fd >= 0) {
		/* the image idmapped, only long enough for the overlay to take it */
		if (fs_mkdir_p(mapped, 0700, err) < 0 || idmap_bind(lower, mapped, userns_fd, true, err) < 0 ||
		    upper_like_lower(upper, mapped, err) < 0)
			goto fail;
		lower = mapped;
	}
	struct berth_buf opts = BERTH_BUF_INIT;
	int r = buf_append_str(&opts, "lowerdir=") | append_escaped(&opts, lower) |
		buf_append_str(&opts, ",upperdir=") | append_escaped(&opts, upper) |
		buf_append_str(&opts, ",workdir=") | append_escaped(&opts, work);
	if (r < 0) {
		buf_free(&opts);
		berth_err_set(err, ENOMEM, "overlay");
		goto fail;
	}
	if (mount("overlay", mp, "overlay", MS_NODEV, opts.data) < 0) {
		int e = errno;
		buf_free(&opts);
		berth_err_set(err, e, "cannot mount the container's overlay root at %s (lower %s)", mp, lower);
		goto fail;
	}
	buf_free(&opts);
	/* overlayfs holds its own private clone of the lower mount */
	if (userns_fd >= 0 && unmount_one(mapped, err) < 0)
		goto fail;
	if (userns_fd >= 0 && rmdir(mapped) < 0) {
		berth_err_set(err, errno, "rmdir %s", mapped);
		goto fail;
	}
	*mountpoint = berth_steal_ptr(&mp);
	return 0;
fail:;
	struct berth_err ignored;
	rootfs_unmount(container_dir, &ignored);
	return -1;
}

int rootfs_mount_data(const char *container_dir, const char *name, const char *source, int userns_fd,
		      char **mountpoint, struct berth_err *err)
{
	_cleanup_free_ char *mp = fs_path("%s/%s", container_dir, name);
	if (mp == NULL)
		return berth_err_set(err, ENOMEM, "mount");
	if (unmount_one(mp, err) < 0 || fs_mkdir_p(mp, 0755, err) < 0 ||
	    idmap_bind(source, mp, userns_fd, true, err) < 0)
		return -1;
	*mountpoint = berth_steal_ptr(&mp);
	return 0;
}

int rootfs_unmount(const char *container_dir, struct berth_err *err)
{
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(mount_names); i++) {
		_cleanup_free_ char *mp = fs_path("%s/%s", container_dir, mount_names[i]);
		if (mp == NULL)
			return berth_err_set(err, ENOMEM, "overlay");
		if (unmount_one(mp, err) < 0)
			return -1;
	}
	/* fs_remove_tree never crosses a mount point, so this cannot reach the image */
	const char *const dirs[] = { "rootfs", "upper", "work", "model", "models", "lower" };
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(dirs); i++) {
		_cleanup_free_ char *path = fs_path("%s/%s", container_dir, dirs[i]);
		if (path == NULL)
			return berth_err_set(err, ENOMEM, "overlay");
		if (fs_remove_tree(path, err) < 0)
			return -1;
	}
	return 0;
}
