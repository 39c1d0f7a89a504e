/* container.h — one container of an endpoint instance: its paths, how it
 * is prepared and started (image → rootfs, artifact → /opt/ml/model,
 * bundle, shim), health-checked, and stopped and removed. */
#ifndef BERTH_CONTAINER_H
#define BERTH_CONTAINER_H

#include <stdbool.h>

#include "buf.h"
#include "err.h"
#include "resources.h"

struct runtime_config;

/* (userns) At start-up: containers' unprivileged roots must reach their
 * mounts under STATE/containers/ID, so STATE and STATE/containers become
 * 0711 (passable, not listable) and every directory above STATE must be
 * searchable by others; the message names the one that is not. */
int container_userns_prepare(const char *state_dir, struct berth_err *err);
/* Fills c (id, socket, log) for a new container; the caller owns it. */
int container_alloc(const struct runtime_config *cfg, const char *hostname, struct endpoint_container *c,
		    struct berth_err *err);
/* Unpacks what it needs, mounts the private overlay root (rootfs.h),
 * writes the bundle and starts the shim; on failure nothing stays mounted.
 * n_model_containers: how many containers the model has (a multi-container
 * model's OCI image without the accept-bind-to-port label is warned about). */
int container_start(const struct runtime_config *cfg, const char *endpoint, const struct endpoint_container *c,
		    const struct container_def *def, size_t n_model_containers, struct berth_err *err);
/* Stops the container (through its shim, or runc directly when the shim is
 * gone) and removes its directory. Errors are logged; it always finishes. */
void container_stop_and_remove(const struct runtime_config *cfg, const struct endpoint_container *c);
/* (added) Stops the container like container_stop_and_remove but keeps its
 * directory (log, bundle), so it can be started again under the same id
 * (a restart); the old exit file is removed. */
void container_stop(const struct runtime_config *cfg, const struct endpoint_container *c, int timeout_ms);
/* At start-up: stops and removes (overlay included) every container
 * directory in STATE/containers whose id is not in known_ids. */
void container_remove_orphans(const struct runtime_config *cfg, const char *const *known_ids, size_t n_known);
/* `runc delete --force ID` under berthd's runc root, waited for; for
 * containers whose shim is gone. */
void container_runc_delete(const struct runtime_config *cfg, const char *id);
/* Appends up to max_lines last lines of the container's log, on one line
 * each separated by " | " (for FailureReason). */
void container_log_tail(const struct endpoint_container *c, int max_lines, struct berth_buf *out);
/* Why a container is not running (exit code, signal, OOM), for FailureReason. */
void container_describe_exit(const struct runtime_config *cfg, const struct endpoint_container *c,
			     struct berth_buf *out);

#endif
