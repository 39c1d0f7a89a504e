/* spawn.h — turning the process berthd started into a daemon, and telling
 * berthd how the start went.
 *
 * shim_daemonize() forks. The child (the shim proper) returns 0 from it:
 * it has its own session (setsid), is the child subreaper of everything it
 * will start (so the container's process becomes its child once `runc run
 * -d` exits), has chdir'ed to /, has /dev/null on stdin and stdout, and keeps
 * only the descriptors it needs. The parent never returns: it waits for the
 * child's one-line report, copies it to --ready-fd (or stderr), and exits 0
 * after "ok" or 1 after "error: ..." (or when the child dies first). So the
 * process berthd spawned ends exactly when the container runs and the socket
 * listens, and berthd can either read the line or wait for that exit.
 */
#ifndef BERTH_SHIM_SPAWN_H
#define BERTH_SHIM_SPAWN_H

#include <stdbool.h>

#include "err.h"
#include "shim.h"

/* Returns 0 in the daemon child; on failure before the fork, -1 with err.
 * On success *report_fd is the child's end of the report pipe. */
int shim_daemonize(struct shim *shim, int *report_fd, struct berth_err *err);

/* Sends the ready line ("ok" or "error: MESSAGE") on report_fd and closes
 * it; report_fd becomes -1. Safe to call with -1 (does nothing). */
void shim_report(int *report_fd, bool ok, const char *message);

#endif
