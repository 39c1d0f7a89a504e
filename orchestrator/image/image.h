/* image.h — turns a CreateModel `Image` into a root filesystem directory
 * and the image config to run it with.
 *
 * Accepted: an OCI image layout `oci:/path/to/layout[:tag]` (oci.h: digests
 * verified, unpacked once into STATE_DIR/images/sha256-<manifest digest>/
 * rootfs, config honoured), an absolute path to a rootfs directory (used
 * in place as the read-only lower layer) or to a rootfs tarball (.tar,
 * .tar.gz, .tgz, .tar.xz, …) unpacked once into STATE_DIR/images/KEY/rootfs.
 * Directories and tarballs have no config: berth runs `serve` from PATH
 * (or /serve) as root in /. */
#ifndef BERTH_IMAGE_H
#define BERTH_IMAGE_H

#include <stdbool.h>

#include "err.h"
#include "oci.h"

struct image_info {
	char *rootfs;                   /* never written to: the overlay's lower layer */
	bool oci;                       /* from an OCI layout (has a config) */
	struct oci_image_config config; /* all empty unless an OCI image */
};

/* Cheap check done at CreateModel time: the image exists and is of a kind
 * berth can run. The message is written for the API user. */
int image_check(const char *image, struct berth_err *err);

/* Fills *out (free with image_info_free), unpacking into the cache once. */
int image_resolve(const char *state_dir, const char *image, struct image_info *out, struct berth_err *err);
void image_info_free(struct image_info *info);

#endif
