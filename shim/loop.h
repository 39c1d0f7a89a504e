/* loop.h — the shim's event loop (epoll): the signalfd (SIGCHLD → reap;
 * SIGTERM/SIGINT → stop the container with the default timeout), the unix
 * socket and its clients, the container's output pipe, the stop timer.
 *
 * When the container's process has exited, shim_loop_run() finishes in this
 * order: drain the output into the log, `runc delete --force`, write the exit
 * file, answer pending stops, close clients and remove the socket, return.
 * So a client that finds the socket gone can rely on the exit file.
 */
#ifndef BERTH_SHIM_LOOP_H
#define BERTH_SHIM_LOOP_H

#include "err.h"
#include "shim.h"

/* Creates the epoll instance and the timerfd; the signalfd must exist. */
int shim_loop_init(struct shim *shim, struct berth_err *err);
/* Adds the container's output pipe (after runc_run) to the loop. */
int shim_loop_watch_output(struct shim *shim, struct berth_err *err);
/* Runs until the container has exited and everything above is done.
 * Returns 0, or -1 when the exit file could not be written. */
int shim_loop_run(struct shim *shim);

#endif
