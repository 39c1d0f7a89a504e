/* model_mount.c — see model_mount.h. */
#include "model_mount.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"

/* A bind mount of the same file system has the same st_dev: compare the
 * mount ids instead. */
static bool is_mounted(const char *container_dir, const char *mp)
{
	struct statx dir, m;
	return statx(AT_FDCWD, container_dir, 0, STATX_MNT_ID, &dir) == 0 &&
	       statx(AT_FDCWD, mp, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &m) == 0 && (dir.stx_mask & STATX_MNT_ID) &&
	       (m.stx_mask & STATX_MNT_ID) && dir.stx_mnt_id != m.stx_mnt_id;
}

static int unmount_one(const char *container_dir, const char *name, struct berth_err *err)
{
	_cleanup_free_ char *mp = fs_path("%s/%s", container_dir, name);
	if (mp == NULL)
		return berth_err_set(err, ENOMEM, "model mount");
	for (int i = 0; i < 8 && is_mounted(container_dir, mp); i++) {
		if (umount2(mp, UMOUNT_NOFOLLOW) == 0)
			continue;
		if (errno == EBUSY && umount2(mp, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
			continue;
		return berth_err_set(err, errno, "cannot unmount %s", mp);
	}
	if (is_mounted(container_dir, mp))
		return berth_err_set(err, EBUSY, "%s is still mounted", mp);
	if (rmdir(mp) < 0 && errno != ENOENT)
		return berth_err_set(err, errno, "cannot remove %s", mp);
	return 0;
}

int model_unmount(const char *container_dir, struct berth_err *err)
{
	static const char *const names[] = MODEL_MOUNT_NAMES;
	int r = 0;
	struct berth_err e;
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(names); i++)
		if (unmount_one(container_dir, names[i], &e) < 0 && r == 0) {
			*err = e;
			r = -1;
		}
	return r;
}

int model_mount(const char *container_dir, int dir_fd, int userns_fd, char **mountpoint, struct berth_err *err)
{
	return model_mount_at(container_dir, "model", dir_fd, userns_fd, mountpoint, err);
}

int model_mount_at(const char *container_dir, const char *name, int dir_fd, int userns_fd, char **mountpoint,
		   struct berth_err *err)
{
	_cleanup_free_ char *mp = fs_path("%s/%s", container_dir, name);
	if (mp == NULL)
		return berth_err_set(err, ENOMEM, "model mount");
	if (unmount_one(container_dir, name, err) < 0)
		return -1;
	if (mkdir(mp, 0755) < 0 && errno != EEXIST)
		return berth_err_set(err, errno, "cannot create %s", mp);
	/* a detached copy of this one directory: no submount comes along */
	_cleanup_close_ int tree = open_tree(dir_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (tree < 0)
		return berth_err_set(err, errno, "cannot clone the model directory's mount");
	/* private: nothing mounted later below the source propagates into it */
	struct mount_attr attr = {
		.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
		.propagation = MS_PRIVATE,
	};
	if (userns_fd >= 0) { /* host id i reads as the container's range base + i */
		attr.attr_set |= MOUNT_ATTR_IDMAP;
		attr.userns_fd = (unsigned long long)userns_fd;
	}
	if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
		if (userns_fd >= 0 && (errno == EINVAL || errno == EPERM))
			return berth_err_set(err, errno,
					     "cannot make an idmapped mount of the model data (its filesystem may not "
					     "support idmapped mounts: keep berthd's state directory on ext4, xfs, btrfs "
					     "or tmpfs, or set \"no_user_namespaces\": true)");
		return berth_err_set(err, errno, "cannot make the model mount read-only");
	}
	if (move_mount(tree, "", AT_FDCWD, mp, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return berth_err_set(err, errno, "cannot mount the model directory at %s", mp);
	*mountpoint = berth_steal_ptr(&mp);
	return 0;
}
