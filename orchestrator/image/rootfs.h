/* rootfs.h — a container's private writable root: an overlay mounted by
 * berthd at CONTAINER_DIR/rootfs with the image's root (the cached OCI
 * rootfs or the user's rootfs directory) read-only below and
 * CONTAINER_DIR/upper (with CONTAINER_DIR/work) above. Everything the
 * container writes lands in upper, so the image and other containers of
 * the same image never see it; it disappears with the container.
 *
 * The mount lives in berthd's (the host's) mount namespace; runc
 * bind-mounts it into the container's own. */
#ifndef BERTH_ROOTFS_H
#define BERTH_ROOTFS_H

#include <stdbool.h>

#include "err.h"

/* Mounts the overlay; *mountpoint (caller frees) is CONTAINER_DIR/rootfs. */
int rootfs_mount(const char *container_dir, const char *lower, char **mountpoint, struct berth_err *err);
/* Unmounts CONTAINER_DIR/rootfs if mounted (lazily when busy) and removes
 * rootfs, upper and work. Idempotent; fine when nothing was ever mounted. */
int rootfs_unmount(const char *container_dir, struct berth_err *err);
/* True when CONTAINER_DIR/rootfs is a mount point. */
bool rootfs_is_mounted(const char *container_dir);

#endif
