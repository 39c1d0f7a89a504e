/* idmap.h — user namespaces for containers' id mappings, and idmapped
 * mounts (Linux ≥ 5.12; overlayfs accepts them as lower layers from 5.19).
 *
 * A container whose root is host uid B (uid_range.h) must see the image,
 * which berthd unpacked as host root, owned by its own root. Instead of
 * chowning a copy of the image per range, berthd mounts the image's tree
 * idmapped: through that mount, host id i (0 ≤ i < size) reads as B + i,
 * so the cached image is shared by every range and a start costs a few
 * system calls. The mapping is taken from a user namespace made for the
 * purpose (idmap_userns_open); the mount keeps what it needs of it. */
#ifndef BERTH_IDMAP_H
#define BERTH_IDMAP_H

#include <stdbool.h>

#include "err.h"

/* A user namespace mapping uids and gids 0..size-1 to base..base+size-1,
 * as an O_CLOEXEC fd of /proc/PID/ns/user (the helper process that made it
 * is gone when this returns). */
int idmap_userns_open(long long base, long long size, int *fd, struct berth_err *err);

/* Clones the mount tree at source (not following a final symlink), maps
 * it through userns_fd (host id i reads as base + i), read-only when asked,
 * and attaches it at target, an existing directory. The filesystem must
 * support idmapped mounts (ext4, xfs, btrfs, tmpfs ≥ 6.3, …); the message
 * says so when it does not. */
int idmap_bind(const char *source, const char *target, int userns_fd, bool read_only, struct berth_err *err);

#endif
