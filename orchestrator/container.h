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

/* Fills c (id, socket, log) for a new container; the caller owns it. */
int container_alloc(const struct runtime_config *cfg, const char *hostname, struct endpoint_container *c,
		    struct berth_err *err);
/* Unpacks what it needs, writes the bundle and starts the shim. */
int container_start(const struct runtime_config *cfg, const char *endpoint, const struct endpoint_container *c,
		    const struct container_def *def, struct berth_err *err);
/* Stops the container (through its shim, or runc directly when the shim is
 * gone) and removes its directory. Errors are logged; it always finishes. */
void container_stop_and_remove(const struct runtime_config *cfg, const struct endpoint_container *c);
/* Appends up to max_lines last lines of the container's log, on one line
 * each separated by " | " (for FailureReason). */
void container_log_tail(const struct endpoint_container *c, int max_lines, struct berth_buf *out);
/* Why a container is not running (exit code, signal, OOM), for FailureReason. */
void container_describe_exit(const struct runtime_config *cfg, const struct endpoint_container *c,
			     struct berth_buf *out);

#endif
