/* exit.h — reaping children and recording how the container ended.
 *
 * The shim is a child subreaper, so once `runc run -d` has exited the
 * container's process is the shim's child, and so is anything else that gets
 * orphaned above the container's pid namespace. shim_exit_reap() empties the
 * zombie list (waitpid(-1, WNOHANG) until none is left) after each SIGCHLD;
 * the container's own pid sets shim->exited, exit_status and finished_at;
 * others are dropped (or remembered, before the container's pid is known).
 *
 * The exit file (proto_shim.h) is written atomically (temp file, fsync,
 * rename, fsync of the directory):
 *   {"exit_code":N|null,"signal":N|null,"oom_killed":bool,"finished_at":EPOCH_SECONDS}
 * exit_code is set when the process exited, signal when a signal ended it.
 */
#ifndef BERTH_SHIM_EXIT_H
#define BERTH_SHIM_EXIT_H

#include <sys/types.h>

#include "buf.h"
#include "err.h"
#include "json.h"
#include "shim.h"

/* Keeps (pid, status) of a child reaped before container_pid was known. */
void shim_exit_remember(struct shim *shim, pid_t pid, int status);
/* After container_pid is known: takes its status from the early list, if it
 * was reaped there. */
void shim_exit_check_early(struct shim *shim);
/* Reaps every waitable child. */
void shim_exit_reap(struct shim *shim);
/* Appends "exit_code":…,"signal":… members for the current status (both
 * null while running) to an open yajl map. */
int shim_exit_gen_status(const struct shim *shim, yajl_gen g);
/* Before `runc delete` removes the container's cgroup: sets oom_killed
 * (and says so in the log) when the OOM killer killed a process of it.
 * The cgroup is the bundle's linux.cgroupsPath, in every memory hierarchy:
 * v2 memory.events "oom_kill N", v1 memory.oom_control "oom_kill N"
 * (counted in the victim's own cgroup, whichever ancestor's limit it hit). */
void shim_exit_check_oom(struct shim *shim);
/* Writes cfg.exit_file. */
int shim_exit_write_file(const struct shim *shim, struct berth_err *err);

#endif
