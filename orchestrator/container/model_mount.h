/* model_mount.h — the source of a container's /opt/ml/model: a mount
 * berthd makes at CONTAINER_DIR/model from an open directory (artifact.h),
 * so that runc bind-mounts a berth-owned path and nobody can swap what it
 * names between the check and the mount.
 *
 * The mount is a clone of that one directory only (open_tree without
 * AT_RECURSIVE): whatever is mounted below it on the host (/proc, a tmpfs,
 * another disk) is not part of it and shows as the empty directory under
 * it. It is read-only, nosuid and nodev on its own, before runc binds it
 * (non-recursively, ro) into the container. The mount lives in berthd's
 * (the host's) mount namespace, as the overlay root does (rootfs.h). */
#ifndef BERTH_MODEL_MOUNT_H
#define BERTH_MODEL_MOUNT_H

#include <stdbool.h>

#include "err.h"

/* Mounts dir_fd's directory at CONTAINER_DIR/model; *mountpoint (caller
 * frees) is that path. A leftover mount there is removed first. With
 * userns_fd >= 0 the mount is also idmapped through that user namespace
 * (idmap.h), so the container's unprivileged root reads what host root
 * unpacked. */
int model_mount(const char *container_dir, int dir_fd, int userns_fd, char **mountpoint, struct berth_err *err);
/* The same at CONTAINER_DIR/NAME, one of MODEL_MOUNT_NAMES (the submit
 * directory is "submit"). */
int model_mount_at(const char *container_dir, const char *name, int dir_fd, int userns_fd, char **mountpoint,
		   struct berth_err *err);
/* Unmounts every CONTAINER_DIR/NAME of MODEL_MOUNT_NAMES if mounted
 * (lazily when busy) and removes the directories. Idempotent. */
int model_unmount(const char *container_dir, struct berth_err *err);

#define MODEL_MOUNT_NAMES { "model", "submit" }

#endif
