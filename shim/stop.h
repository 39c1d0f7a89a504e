/* stop.h — stopping the container: SIGTERM to its process (kill(2) on the
 * pid the shim reaps, so the pid cannot have been reused), then SIGKILL when
 * timeout_ms passes (a timerfd in the loop). A second stop request can only
 * bring the SIGKILL deadline closer. timeout_ms 0 sends SIGKILL at once,
 * and so does any stop of a container whose init (PID 1 of its pid
 * namespace) neither catches nor blocks SIGTERM: the kernel drops SIGTERM
 * sent to such an init, so the wait could only delay the end.
 * Answers are sent by the loop once the container has exited and `runc
 * delete` is done (server_answer_stops).
 */
#ifndef BERTH_SHIM_STOP_H
#define BERTH_SHIM_STOP_H

#include <stdbool.h>
#include <sys/types.h>

#include "shim.h"

#define STOP_TIMEOUT_MS_DEFAULT 30000
#define STOP_TIMEOUT_MS_MAX (24LL * 3600 * 1000)

void shim_stop_request(struct shim *shim, long long timeout_ms);
/* Is pid the init of its pid namespace that neither catches nor blocks
 * SIGTERM (SIGTERM would be dropped)? From /proc/PID/status (NSpid,
 * SigCgt, SigBlk); false when it cannot be read. */
bool stop_term_is_dropped(pid_t pid);
/* The timerfd fired: SIGKILL if still running. */
void shim_stop_on_timer(struct shim *shim);

#endif
