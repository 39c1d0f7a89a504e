/* image.h — turns a CreateModel `Image` into a root filesystem directory
 * and the image config to run it with.
 *
 * Accepted: a registry reference `[registry/]repository[:tag][@digest]`
 * (registry.h: pulled with skopeo into STATE/registry/, then an OCI
 * layout as below), an OCI image layout `oci:/path/to/layout[:tag]` (oci.h: digests
 * verified, unpacked once into STATE_DIR/images/sha256-<manifest digest>/
 * rootfs, config honoured), an absolute path to a rootfs directory (used
 * in place as the read-only lower layer) or to a rootfs tarball (.tar,
 * .tar.gz, .tgz, .tar.xz, …) unpacked once into STATE_DIR/images/KEY/rootfs.
 * Directories and tarballs have no config: berth runs `serve` from PATH
 * (or /serve) as root in /.
 *
 * Host paths (all three kinds) are accepted only under the policy's roots
 * and opened without leaving them (host_paths.h); a directory image is then
 * used through its open descriptor (/proc/self/fd/N), never looked up
 * again. Tarballs and layers unpack within the policy's bounds. */
#ifndef BERTH_IMAGE_H
#define BERTH_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "host_paths.h"
#include "oci.h"
#include "registry.h"

#define IMAGE_DEFAULT_MAX_BYTES (20ULL << 30)
#define IMAGE_DEFAULT_MAX_ENTRIES 1000000ULL

struct image_policy {
	const struct host_roots *roots; /* where local images may be (NULL: nowhere) */
	uint64_t max_bytes;             /* unpacked size of one image, all layers (0: no bound) */
	uint64_t max_entries;           /* entries of one image, all layers (0: no bound) */
	struct registry *registry;      /* registry references (NULL: refused) */
};

struct image_info {
	char *rootfs;                   /* never written to: the overlay's lower layer */
	int dir_fd;                     /* a directory image held open (rootfs is /proc/self/fd/N) */
	bool holds_fd;
	bool oci;                       /* from an OCI layout (has a config) */
	struct oci_image_config config; /* all empty unless an OCI image */
};

/* Cheap check done at CreateModel time: the image is under the roots,
 * exists and is of a kind berth can run. The message is written for the
 * API user; its class is VALIDATION when the image is wrong (outside the
 * roots, missing, malformed layout, unknown tag) and INTERNAL when berth
 * could not look (out of memory or file descriptors, an I/O error). */
int image_check(const struct image_policy *p, const char *image, struct berth_err *err);

/* Fills *out (free with image_info_free), unpacking into the cache once. */
int image_resolve(const char *state_dir, const struct image_policy *p, const char *image, struct image_info *out,
		  struct berth_err *err);
void image_info_free(struct image_info *info);

#endif
