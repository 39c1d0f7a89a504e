/* runc.h — running the container with the runc binary (never linked).
 *
 * runc_run() execs `RUNC --root ROOT run -d --pid-file BUNDLE/pid --bundle
 * BUNDLE ID` with stdin /dev/null and stdout+stderr on one pipe whose read
 * end the shim keeps (shim->output_fd, non-blocking): `run -d` hands that
 * pipe to the container's process, so the same pipe carries runc's messages
 * and then the container's output. Everything read goes to the log. It waits
 * for runc (reaping through the signalfd; children other than runc are kept
 * in shim->early) up to RUNC_RUN_TIMEOUT_MS, then reads the pid file into
 * shim->container_pid. When runc fails, err says so with runc's own message
 * (the `msg="..."` of its error line when it has one), and the half-created
 * container has been deleted.
 *
 * runc_delete() runs `runc delete --force ID` (output into the log) and waits
 * for it. runc 1.1.5 returns 0 for an id it does not know, so it is safe to
 * call whatever state the container is in.
 */
#ifndef BERTH_SHIM_RUNC_H
#define BERTH_SHIM_RUNC_H

#include "err.h"
#include "shim.h"

#define RUNC_RUN_TIMEOUT_MS 120000

int runc_run(struct shim *shim, struct berth_err *err);
int runc_delete(struct shim *shim, struct berth_err *err);

#endif
