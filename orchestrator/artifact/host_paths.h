/* host_paths.h — the host paths a caller may name (an `Image` directory,
 * tarball or OCI layout; `file://` model data): only under directories the
 * operator configured (image_roots, model_roots), opened without leaving
 * them.
 *
 * A path is matched lexically against the roots (it must be absolute, with
 * no ".." component), then opened with openat2(2) relative to the root's
 * directory with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: a symbolic link
 * that leads out of the root (an absolute link, or ".." past the root) or
 * through /proc magic links fails instead of being followed. What is used
 * afterwards is the returned descriptor (fstat, openat, /proc/self/fd/N),
 * never the path looked up again, so swapping a component for a link after
 * the check changes nothing.
 *
 * The roots themselves are the operator's: they are opened as configured
 * (a root that is itself a symbolic link is followed). */
#ifndef BERTH_HOST_PATHS_H
#define BERTH_HOST_PATHS_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

#define HOST_ROOTS_MAX 32

struct host_roots {
	char *dirs[HOST_ROOTS_MAX]; /* absolute, normalised, no trailing '/' (except "/") */
	size_t n;
};

/* Adds an absolute directory (normalised: "//" and "/./" collapsed,
 * trailing '/' dropped; ".." refused). -1 with a message when not absolute,
 * has "..", or there are HOST_ROOTS_MAX already. */
int host_roots_add(struct host_roots *r, const char *dir, struct berth_err *err);
void host_roots_free(struct host_roots *r);
/* "/a, /b" (or "none") for messages. */
void host_roots_describe(const struct host_roots *r, struct berth_buf *out);

/* Opens path (openat2 flags, e.g. O_PATH | O_CLOEXEC or O_RDONLY) beneath
 * the root it lies under. Returns the descriptor, or -1 with err->errnum:
 *   EXDEV   path is not under any root, is not absolute, has a ".."
 *           component, or leads out of its root through a symbolic link
 *   other   the open's own error (ENOENT, ENOTDIR, ELOOP, …)
 * The message of an EXDEV failure is generic; callers write their own for
 * the user with host_roots_describe. */
int host_path_open(const struct host_roots *r, const char *path, int flags, struct berth_err *err);

/* The ValidationException messages (docs/contract.md pins them); both
 * return -1 with err->errnum EXDEV:
 *   Image "IMAGE" is outside the directories berth may run images from
 *   (image roots: ROOTS). Move the image under one of them, or add its
 *   directory to image_roots in berthd's configuration (--image-root); a
 *   symbolic link must not lead out of its root.
 *   Could not access model data at URL: it is outside the directories berth
 *   may read model data from (model roots: ROOTS). Move it under one of
 *   them, or add its directory to model_roots in berthd's configuration
 *   (--model-root); a symbolic link must not lead out of its root. */
int host_paths_refuse_image(const struct host_roots *r, const char *image, struct berth_err *err);
int host_paths_refuse_model(const struct host_roots *r, const char *url, struct berth_err *err);

/* Opens rel (a relative path) beneath the directory root, as above. */
int host_path_open_beneath(const char *root, const char *rel, int flags, struct berth_err *err);

#endif
