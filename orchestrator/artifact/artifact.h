/* artifact.h — model artifacts (`ModelDataUrl`): resolves the URL to a file
 * on this host and unpacks it once into STATE_DIR/artifacts/KEY, the
 * directory bind-mounted read-only at /opt/ml/model.
 *
 *   s3://BUCKET/KEY  → OBJECT_STORE_ROOT/BUCKET/KEY
 *   file:///ABS/PATH → /ABS/PATH
 * A URL naming a directory is used as it is (already unpacked). */
#ifndef BERTH_ARTIFACT_H
#define BERTH_ARTIFACT_H

#include "err.h"

#define ARTIFACT_MAX_UNPACKED_BYTES (64ULL << 30)

/* Maps the URL to a local path (caller frees). */
int artifact_local_path(const char *object_store_root, const char *url, char **path, struct berth_err *err);
int artifact_resolve(const char *state_dir, const char *object_store_root, const char *url, char **dir,
		     struct berth_err *err);

#endif
