/* loop.c — see loop.h. */
#include "loop.h"
#include "clock.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "container_log.h"
#include "exit.h"
#include "log.h"
#include "runc.h"
#include "server.h"
#include "stop.h"

#define LOOP_EVENTS 16
#define LOOP_DRAIN_AFTER_EXIT_MS 200 /* wait this long for the output pipe's EOF */

static int watch_add(struct shim *shim, int fd, struct shim_watch *w, enum shim_watch_kind kind,
		     struct berth_err *err)
{
	w->kind = kind;
	w->client = NULL;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };
	if (epoll_ctl(shim->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return berth_err_set(err, errno, "epoll_ctl");
	return 0;
}

int shim_loop_init(struct shim *shim, struct berth_err *err)
{
	shim->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (shim->epfd < 0)
		return berth_err_set(err, errno, "epoll_create1");
	shim->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (shim->timer_fd < 0)
		return berth_err_set(err, errno, "timerfd_create");
	if (watch_add(shim, shim->signal_fd, &shim->signal_watch, WATCH_SIGNAL, err) < 0 ||
	    watch_add(shim, shim->timer_fd, &shim->timer_watch, WATCH_TIMER, err) < 0)
		return -1;
	return 0;
}

static void on_signal(struct shim *shim)
{
	struct signalfd_siginfo si;
	bool child = false;
	while (read(shim->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			child = true;
		} else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
			log_info("signal %u: stopping container %s", si.ssi_signo, shim->cfg.id);
			shim_stop_request(shim, STOP_TIMEOUT_MS_DEFAULT);
		}
	}
	if (child)
		shim_exit_reap(shim);
}

/* After the container's init died the kernel kills the rest of its pid
 * namespace, so the pipe's EOF follows shortly; wait a little for it so the
 * last lines make it into the log before the exit file says "done". */
static void drain_after_exit(struct shim *shim)
{
	long long deadline = clock_now_ms() + LOOP_DRAIN_AFTER_EXIT_MS;
	while (shim->output_fd >= 0 && clock_now_ms() < deadline) {
		if (container_log_drain(shim) == 1)
			break;
		struct epoll_event ev;
		long long left = deadline - clock_now_ms();
		int fd = epoll_create1(EPOLL_CLOEXEC);
		if (fd < 0)
			break;
		struct epoll_event want = { .events = EPOLLIN };
		epoll_ctl(fd, EPOLL_CTL_ADD, shim->output_fd, &want);
		epoll_wait(fd, &ev, 1, (int)(left > 0 ? left : 0));
		close(fd);
	}
}

static int finish(struct shim *shim)
{
	int rc = 0;
	struct berth_err err;
	drain_after_exit(shim);
	shim_exit_check_oom(shim); /* the cgroup goes with runc delete */
	runc_delete(shim, NULL);
	container_log_drain(shim);
	if (shim_exit_write_file(shim, &err) < 0) {
		log_error("%s", err.msg);
		rc = -1;
	}
	server_answer_stops(shim);
	server_shutdown(shim);
	return rc;
}

int shim_loop_run(struct shim *shim)
{
	struct epoll_event events[LOOP_EVENTS];
	while (!shim->exited) {
		long long next = server_expire_connects(shim);
		server_collect(shim);
		int timeout = -1;
		if (next >= 0) {
			long long left = next - clock_now_ms();
			timeout = left < 0 ? 0 : (int)left;
		}
		int n = epoll_wait(shim->epfd, events, LOOP_EVENTS, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct shim_watch *w = events[i].data.ptr;
			switch (w->kind) {
			case WATCH_SIGNAL:
				on_signal(shim);
				break;
			case WATCH_LISTEN:
				server_accept(shim);
				break;
			case WATCH_OUTPUT:
				container_log_drain(shim);
				break;
			case WATCH_TIMER:
				shim_stop_on_timer(shim);
				break;
			case WATCH_CLIENT:
				if (!w->client->closing)
					server_client_event(shim, w->client, events[i].events);
				break;
			case WATCH_CONNECT:
				if (!w->client->closing)
					server_connect_event(shim, w->client);
				break;
			}
		}
	}
	server_collect(shim);
	return finish(shim);
}

int shim_loop_watch_output(struct shim *shim, struct berth_err *err)
{
	if (shim->output_fd < 0)
		return 0;
	return watch_add(shim, shim->output_fd, &shim->output_watch, WATCH_OUTPUT, err);
}
