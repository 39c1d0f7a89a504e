/* container_log.h — the container's size-capped log file.
 *
 * Bytes are written exactly as the container wrote them to stdout/stderr: no
 * timestamp or stream prefix, so the file reads like `docker logs` without
 * -t and berthd can quote its last lines verbatim. The shim's own messages
 * (berth_log on its stderr, which is this file) are the only additions; they
 * are whole lines starting with a timestamp and "berth-shim[PID]:".
 *
 * When the file passes log_max_bytes (checked after each write) it is renamed
 * to LOG.1, replacing an older LOG.1, and a new LOG is started: at most about
 * 2 × log_max_bytes on disk. log_max_bytes 0 means never rotate. An existing
 * LOG is appended to (a restarted container keeps its history).
 */
#ifndef BERTH_SHIM_CONTAINER_LOG_H
#define BERTH_SHIM_CONTAINER_LOG_H

#include <stddef.h>

#include "err.h"
#include "shim.h"

/* Opens (creates, 0640) cfg.log_path for appending and makes it the shim's
 * stderr. */
int container_log_open(struct shim *shim, struct berth_err *err);
/* Appends len bytes, rotating when over the cap. Failures are reported once
 * per call on stderr and otherwise ignored: a full disk must not stop the
 * container. */
void container_log_write(struct shim *shim, const char *data, size_t len);
/* Reads what the container's pipe holds now (non-blocking) into the log.
 * Returns 0 while the pipe is open, 1 at EOF (the pipe is then closed and
 * shim->output_fd is -1). */
int container_log_drain(struct shim *shim);

#endif
