/* rootfs.h — a container's private writable root: an overlay mounted by
 * berthd at CONTAINER_DIR/rootfs with the image's root (the cached OCI
 * rootfs or the user's rootfs directory) read-only below and
 * CONTAINER_DIR/upper (with CONTAINER_DIR/work) above. Everything the
 * container writes lands in upper, so the image and other containers of
 * the same image never see it; it disappears with the container.
 *
 * (userns) With a user namespace fd (idmap.h), the image is mounted
 * idmapped below the overlay (host id i reads as the range's base + i),
 * upper takes the image root's mapped owner and mode, and the container's
 * read-only data directories are idmapped binds at CONTAINER_DIR/NAME
 * (rootfs_mount_data), so its unprivileged root owns what host root owns.
 *
 * The mounts live in berthd's (the host's) mount namespace; runc
 * bind-mounts them into the container's own. */
#ifndef BERTH_ROOTFS_H
#define BERTH_ROOTFS_H

#include <stdbool.h>

#include "err.h"

/* Mounts the overlay; *mountpoint (caller frees) is CONTAINER_DIR/rootfs.
 * userns_fd < 0: the image as it is (no user namespace). */
int rootfs_mount(const char *container_dir, const char *lower, int userns_fd, char **mountpoint,
		 struct berth_err *err);
/* An idmapped read-only bind of source at CONTAINER_DIR/name (name is
 * "model" or "models"); *mountpoint (caller frees) is that path. */
int rootfs_mount_data(const char *container_dir, const char *name, const char *source, int userns_fd,
		      char **mountpoint, struct berth_err *err);
/* Unmounts CONTAINER_DIR/rootfs and the data binds if mounted (lazily when
 * busy) and removes rootfs, upper, work and their mount points.
 * Idempotent; fine when nothing was ever mounted. */
int rootfs_unmount(const char *container_dir, struct berth_err *err);
/* True when CONTAINER_DIR/rootfs is a mount point. */
bool rootfs_is_mounted(const char *container_dir);

#endif
