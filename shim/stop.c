/* stop.c — see stop.h. */
#include "stop.h"
#include "clock.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"

static void send_kill(struct shim *shim)
{
	if (shim->killed || shim->exited)
		return;
	log_info("stop: sending SIGKILL to container %s (pid %d)", shim->cfg.id, (int)shim->container_pid);
	if (kill(shim->container_pid, SIGKILL) < 0 && errno != ESRCH)
		log_error("kill(%d, SIGKILL): %s", (int)shim->container_pid, strerror(errno));
	shim->killed = true;
}

static void arm_timer(struct shim *shim)
{
	long long left = shim->kill_deadline_ms - clock_now_ms();
	if (left < 1)
		left = 1;
	struct itimerspec its = { .it_value = { .tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000 } };
	if (timerfd_settime(shim->timer_fd, 0, &its, NULL) < 0) {
		log_error("timerfd_settime: %s; sending SIGKILL now", strerror(errno));
		send_kill(shim);
	}
}

bool stop_term_is_dropped(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return false;
	bool init = false, caught = false, blocked = false, read_any = false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "NSpid:", 6) == 0) {
			/* the last field is its pid in its own namespace */
			const char *last = strrchr(line, '\t');
			init = last != NULL && strtol(last + 1, NULL, 10) == 1;
		} else if (strncmp(line, "SigCgt:", 7) == 0) {
			caught = (strtoull(line + 7, NULL, 16) >> (SIGTERM - 1)) & 1;
			read_any = true;
		} else if (strncmp(line, "SigBlk:", 7) == 0) {
			/* blocked (a signalfd reader): queued, never dropped */
			blocked = (strtoull(line + 7, NULL, 16) >> (SIGTERM - 1)) & 1;
		}
	}
	fclose(f);
	return init && read_any && !caught && !blocked;
}

void shim_stop_request(struct shim *shim, long long timeout_ms)
{
	if (shim->exited || shim->container_pid <= 0)
		return;
	if (timeout_ms < 0)
		timeout_ms = 0;
	if (timeout_ms > STOP_TIMEOUT_MS_MAX)
		timeout_ms = STOP_TIMEOUT_MS_MAX;
	long long deadline = clock_now_ms() + timeout_ms;
	if (!shim->stopping && timeout_ms > 0 && stop_term_is_dropped(shim->container_pid)) {
		shim->stopping = true;
		log_info("stop: container %s's init (pid %d) has no SIGTERM handler, and the kernel drops SIGTERM "
			 "for a namespace's init: waiting %lld ms would change nothing",
			 shim->cfg.id, (int)shim->container_pid, timeout_ms);
		shim->kill_deadline_ms = clock_now_ms();
		send_kill(shim);
		return;
	}
	if (!shim->stopping) {
		shim->stopping = true;
		log_info("stop: sending SIGTERM to container %s (pid %d), SIGKILL in %lld ms", shim->cfg.id,
			 (int)shim->container_pid, timeout_ms);
		if (kill(shim->container_pid, SIGTERM) < 0 && errno != ESRCH)
			log_error("kill(%d, SIGTERM): %s", (int)shim->container_pid, strerror(errno));
		shim->kill_deadline_ms = deadline;
	} else if (deadline < shim->kill_deadline_ms) {
		shim->kill_deadline_ms = deadline;
	} else {
		return;
	}
	if (timeout_ms == 0)
		send_kill(shim);
	else if (!shim->killed)
		arm_timer(shim);
}

void shim_stop_on_timer(struct shim *shim)
{
	uint64_t expirations;
	if (read(shim->timer_fd, &expirations, sizeof(expirations)) < 0 && errno == EAGAIN)
		return;
	if (shim->stopping && clock_now_ms() >= shim->kill_deadline_ms)
		send_kill(shim);
}
