/* artifact.h — model artifacts (`ModelDataUrl`) of single-model
 * containers: resolves the URL to a file or directory on this host and
 * unpacks a file once into STATE_DIR/artifacts/KEY.
 *
 *   s3://BUCKET/KEY  → OBJECT_STORE_ROOT/BUCKET/KEY (the store's local root),
 *                      opened beneath that root; the bucket must be allowed
 *                      by the store's s3_buckets (objstore.h)
 *   file:///ABS/PATH → /ABS/PATH, only under the store's model roots,
 *                      opened beneath its root (host_paths.h)
 * A URL naming a directory is used as it is (already unpacked).
 *
 * The result is an open directory (O_PATH), never a path to look up again:
 * the caller mounts it (model_mount.h). With store->artifact_timeout_ms,
 * fetching and unpacking must end within it (ETIMEDOUT otherwise, the
 * message naming ModelDataDownloadTimeoutInSeconds); an artifact already
 * unpacked is used at once. */
#ifndef BERTH_ARTIFACT_H
#define BERTH_ARTIFACT_H

#include "err.h"
#include "objstore.h"

#define ARTIFACT_MAX_UNPACKED_BYTES (64ULL << 30)

/* *dir_fd: the directory to mount at /opt/ml/model (caller closes). */
int artifact_resolve(const char *state_dir, const struct objstore_config *store, const char *url, int *dir_fd,
		     struct berth_err *err);

#endif
