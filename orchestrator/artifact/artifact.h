/* artifact.h — the artifacts a container gets whole at start: its
 * `ModelDataUrl` (single-model and pipeline containers) and its
 * `SAGEMAKER_SUBMIT_DIRECTORY` archive. Every URL goes through the object
 * store (objstore.h: local root or S3-compatible endpoint for s3://,
 * file:// beneath a model root, http(s):// from a listed host), with its
 * lists, bounds and error classes. A URL naming a directory (local stores
 * only) is used as it is (already unpacked).
 *
 * An archive is unpacked once into STATE_DIR/artifacts/KEY, KEY = the
 * first 16 hex digits of sha256(URL "\n" VERSION) (VERSION: the object's
 * ETag, or mtime/size/inode for a local file; objstore_stat). The version
 * is asked first and an entry already there is used without fetching:
 * restarting a container does not download again, and a changed object
 * gets a new entry. Containers starting together that name the same
 * version share one download (a lock file in .fetch/). A remote object is
 * downloaded into
 * STATE_DIR/artifacts/.fetch/ (at most max_bytes; removed once unpacked,
 * or on failure, never kept half-downloaded), then unpacked (unpack.h:
 * bounded by max_bytes and UNPACK_DEFAULT_MAX_ENTRIES, into a .partial
 * directory renamed when complete).
 *
 * The entry a URL of a remote store last resolved to is recorded in
 * STATE_DIR/artifacts/.last/; when the store cannot be reached (not when
 * it answers "missing") that entry is used, with a warning in the log, so
 * a container restarted while the store is down runs what it ran before.
 *
 * The result is an open directory (O_PATH), never a path to look up again:
 * the caller mounts it (model_mount.h). With store->artifact_timeout_ms,
 * fetching and unpacking must end within it (ETIMEDOUT otherwise, the
 * message naming ModelDataDownloadTimeoutInSeconds); an artifact already
 * unpacked is used at once. */
#ifndef BERTH_ARTIFACT_H
#define BERTH_ARTIFACT_H

#include <stdint.h>

#include "artifact_cache.h"
#include "err.h"
#include "objstore.h"

#define ARTIFACT_MAX_UNPACKED_BYTES (64ULL << 30)

struct artifact_config {
	const char *state_dir;
	const struct objstore_config *store;   /* NULL: every URL is refused */
	uint64_t max_bytes;   /* downloaded and unpacked size of one artifact; 0: ARTIFACT_MAX_UNPACKED_BYTES */
};

/* *dir_fd: the directory to mount (caller closes); key[]: its entry in
 * the cache (artifact_cache.h: the caller records that its container
 * holds it, with the cache lock held shared across both), "" for a
 * directory used as it is. what names the
 * artifact in messages: "model data" (ModelDataUrl) or "the source
 * directory" (SAGEMAKER_SUBMIT_DIRECTORY). Failures carry objstore_failure's
 * message and class (a missing object: SageMaker's "Failed to download
 * model data(bucket: B, key: K). …"; a bad archive: "Failed to extract
 * WHAT from URL: …"). */
int artifact_resolve(const struct artifact_config *cfg, const char *url, const char *what, int *dir_fd,
		     char key[ARTIFACT_KEY_LEN + 1], struct berth_err *err);

/* Removes what an interrupted fetch left in STATE_DIR/artifacts/.fetch
 * (berthd start, before any container starts). */
void artifact_sweep(const char *state_dir);

#endif
