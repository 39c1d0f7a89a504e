/* image.h — turns a CreateModel `Image` into a root filesystem directory.
 *
 * Accepted today: an absolute path to a rootfs directory (used in place,
 * read-only) or to a rootfs tarball (.tar, .tar.gz, .tgz, .tar.xz, …),
 * unpacked once into STATE_DIR/images/KEY/rootfs. OCI layouts come next
 * (issue 3). */
#ifndef BERTH_IMAGE_H
#define BERTH_IMAGE_H

#include "err.h"

/* Cheap check done at CreateModel time: the image exists and is of a kind
 * berth can run. The message is written for the API user. */
int image_check(const char *image, struct berth_err *err);

/* Returns (in *rootfs, caller frees) the directory to use as the root. */
int image_resolve(const char *state_dir, const char *image, char **rootfs, struct berth_err *err);

#endif
