/* image_user.h — resolves an image config's `User` as Docker (runc's
 * GetExecUser) does: "", "name", "uid", "name:group", "uid:gid", … with
 * names looked up in the image's own /etc/passwd and /etc/group, read
 * inside the rootfs (openat2 RESOLVE_IN_ROOT, so symlinks in the image
 * cannot make berthd read host files), bounded in size.
 *
 * A numeric user missing from /etc/passwd runs with that uid and gid 0; a
 * name that is missing is an error. Supplementary groups are the groups of
 * /etc/group that list the user by name (none when a group is given). */
#ifndef BERTH_IMAGE_USER_H
#define BERTH_IMAGE_USER_H

#include <stddef.h>

#include "err.h"

#define IMAGE_USER_MAX_GROUPS 64

struct image_user {
	unsigned int uid, gid;
	unsigned int additional_gids[IMAGE_USER_MAX_GROUPS];
	size_t n_additional_gids;
};

int image_user_resolve(const char *rootfs, const char *user, struct image_user *out, struct berth_err *err);

#endif
