/* shim_client.c — see shim_client.h. */
#include "shim_client.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "ipc.h"
#include "json.h"
#include "log.h"
#include "report.h"

int shim_spawn(const struct shim_launch *l, int timeout_ms, struct berth_err *err)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return berth_err_set(err, errno, "pipe");
	char ready_fd[16];
	snprintf(ready_fd, sizeof(ready_fd), "%d", pipefd[1]);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return berth_err_set(err, e, "fork");
	}
	if (pid == 0) {
		/* child: keep only the ready pipe's write end across exec */
		fcntl(pipefd[1], F_SETFD, 0);
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		execl(l->shim_path, "berth-shim", "--id", l->id, "--bundle", l->bundle, "--socket", l->socket,
		      "--log", l->log, "--exit-file", l->exit_file, "--runc", l->runc_path, "--runc-root",
		      l->runc_root, "--ready-fd", ready_fd, (char *)NULL);
		dprintf(pipefd[1], "error: cannot execute %s: %s\n", l->shim_path, strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	_cleanup_close_ int rfd = pipefd[0];
	char line[REPORT_MAX + 1];
	size_t used = 0;
	int r = -1;
	switch (report_read(rfd, clock_now_ms() + timeout_ms, line, sizeof(line), &used)) {
	case 1:
		r = report_parse(line, err);
		break;
	case 0:
		line[strcspn(line, "\n")] = '\0';
		berth_err_set(err, 0, "berth-shim for %s exited before reporting ready%s%s", l->id, used ? ": " : "",
			      line);
		break;
	default:
		berth_err_set(err, ETIMEDOUT, "berth-shim for %s did not report ready within %d ms", l->id, timeout_ms);
		kill(pid, SIGKILL);
		break;
	}
	/* the process we forked exits once the daemonized shim is ready */
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return r;
}

#define SHIM_EXIT_WAIT_MS 10000 /* after its stop answer, the shim only finishes up */

/* A pidfd of the process listening on s (the shim), or -1. Opened while
 * the connection holds the shim up, so the pid cannot have been reused. */
static int peer_pidfd(int s)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0)
		return -1;
	return (int)syscall(SYS_pidfd_open, cred.pid, 0);
}

/* One request/answer on a fresh connection; *reply must be yajl_tree_free'd.
 * pidfd (may be NULL) receives a pidfd of the shim process, or -1. */
static int shim_call(const char *socket, const char *request, int timeout_ms, yajl_val *reply, int *pidfd,
		     struct berth_err *err)
{
	_cleanup_close_ int s = ipc_connect(socket, err);
	if (s < 0)
		return -1;
	if (pidfd != NULL)
		*pidfd = peer_pidfd(s);
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (ipc_send(s, request, strlen(request), -1, err) < 0)
		return -1;
	struct ipc_reader rd;
	ipc_reader_init(&rd, s);
	const char *line;
	size_t len;
	int r = ipc_read(&rd, &line, &len, NULL, err);
	if (r == 0)
		berth_err_set(err, 0, "the shim at %s closed the connection without answering", socket);
	if (r == 1) {
		*reply = json_parse(line, len, err);
		if (*reply == NULL)
			r = -1;
	}
	ipc_reader_free(&rd); /* closes any descriptor that came along */
	if (r != 1)
		return -1;
	bool ok = false;
	if (!json_get_bool(*reply, "ok", &ok) || !ok) {
		const char *why = json_get_string(*reply, "error");
		berth_err_set(err, 0, "%s", why ? why : "the shim refused the request");
		yajl_tree_free(*reply);
		*reply = NULL;
		return -1;
	}
	return 0;
}

static void read_exit_members(yajl_val v, struct shim_state *st)
{
	long long n;
	st->exit_code = json_get_int64(v, "exit_code", &n) ? (int)n : -1;
	st->signal = json_get_int64(v, "signal", &n) ? (int)n : 0;
	bool oom = false;
	st->oom_killed = json_get_bool(v, "oom_killed", &oom) && oom;
}

int shim_get_state(const char *socket, struct shim_state *st, struct berth_err *err)
{
	memset(st, 0, sizeof(*st));
	yajl_val v = NULL;
	if (shim_call(socket, "{\"op\":\"state\"}", 2000, &v, NULL, err) < 0)
		return -1;
	const char *state = json_get_string(v, "state");
	long long pid = 0;
	json_get_int64(v, "pid", &pid);
	st->pid = (int)pid;
	json_get_double(v, "started_at", &st->started_at);
	st->running = state != NULL && strcmp(state, "running") == 0;
	st->exited = !st->running;
	if (st->exited)
		read_exit_members(v, st);
	yajl_tree_free(v);
	return 0;
}

int shim_stop(const char *socket, int timeout_ms, struct berth_err *err)
{
	char req[64];
	snprintf(req, sizeof(req), "{\"op\":\"stop\",\"timeout_ms\":%d}", timeout_ms);
	yajl_val v = NULL;
	_cleanup_close_ int pidfd = -1;
	if (shim_call(socket, req, timeout_ms + 10000, &v, &pidfd, err) < 0)
		return -1;
	yajl_tree_free(v);
	/* The shim answers once the container is gone, then finishes (exit
	 * file, socket) and exits: wait for that too, so that a stopped
	 * container leaves no process behind when the caller goes on. */
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	if (pidfd >= 0 && poll(&p, 1, SHIM_EXIT_WAIT_MS) == 0)
		log_warn("the shim at %s answered stop but is still running after %d ms", socket, SHIM_EXIT_WAIT_MS);
	return 0;
}

int shim_read_exit_file(const char *path, struct shim_state *st, struct berth_err *err)
{
	struct berth_buf text = BERTH_BUF_INIT;
	memset(st, 0, sizeof(*st));
	if (fs_read_file(path, &text, 65536, err) < 0) {
		buf_free(&text);
		return -1;
	}
	yajl_val v = json_parse(text.data ? text.data : "", text.len, err);
	buf_free(&text);
	if (v == NULL)
		return -1;
	st->exited = true;
	read_exit_members(v, st);
	yajl_tree_free(v);
	return 0;
}
