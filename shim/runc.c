/* runc.c — see runc.h. */
#include "runc.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "container_log.h"
#include "exit.h"
#include "fsutil.h"
#include "log.h"

#define RUNC_CAPTURE_MAX 4096 /* tail of runc's output kept for the error message */

/* Forks and execs argv with stdin /dev/null and stdout+stderr on out_fd.
 * The child gets a clean signal state: the shim blocks SIGCHLD/SIGTERM and
 * ignores SIGPIPE, and both would otherwise be inherited by the container. */
static pid_t runc_exec(char *const argv[], int out_fd, struct berth_err *err)
{
	pid_t pid = fork();
	if (pid < 0)
		return berth_err_set(err, errno, "fork for %s", argv[0]);
	if (pid > 0)
		return pid;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0 ||
	    dup2(out_fd, STDERR_FILENO) < 0)
		_exit(127);
	execv(argv[0], argv);
	dprintf(STDERR_FILENO, "berth-shim: cannot execute %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void capture_append(struct berth_buf *cap, const char *data, size_t len)
{
	if (buf_append(cap, data, len) < 0)
		return;
	if (cap->len > RUNC_CAPTURE_MAX)
		buf_consume(cap, cap->len - RUNC_CAPTURE_MAX);
}

/* Moves what the pipe holds into the log (and the capture). */
static void output_read(struct shim *shim, struct berth_buf *cap)
{
	char chunk[4096];
	for (int round = 0; round < 64; round++) { /* bounded: a flooding container must not stall the start */
		ssize_t n = read(shim->output_fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		container_log_write(shim, chunk, (size_t)n);
		capture_append(cap, chunk, (size_t)n);
	}
}

/* Turns runc's output into one readable sentence. runc (logrus) prints
 *   time="..." level=error msg="runc run failed: ..."
 * so the last msg="..." is the useful part; otherwise the last line. */
static void runc_error_text(const struct berth_buf *cap, char *out, size_t out_size)
{
	out[0] = '\0';
	if (cap->len == 0)
		return;
	const char *text = cap->data;
	const char *msg = NULL;
	for (const char *p = text; (p = strstr(p, "msg=\"")) != NULL; p += 5)
		msg = p + 5;
	size_t n = 0;
	if (msg) {
		for (const char *p = msg; *p && *p != '\n' && n + 1 < out_size; p++) {
			if (*p == '\\' && p[1]) {
				p++;
			} else if (*p == '"') {
				break;
			}
			out[n++] = *p;
		}
	} else {
		size_t end = cap->len;
		while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r'))
			end--;
		size_t start = end;
		while (start > 0 && text[start - 1] != '\n')
			start--;
		for (size_t i = start; i < end && n + 1 < out_size; i++)
			out[n++] = text[i];
	}
	out[n] = '\0';
}

static int read_pid_file(const char *path, pid_t *pid, struct berth_err *err)
{
	struct berth_buf b = BERTH_BUF_INIT;
	if (fs_read_file(path, &b, 64, err) < 0)
		return berth_err_prefix(err, "runc did not leave a pid file");
	char *end;
	errno = 0;
	long v = strtol(b.data ? b.data : "", &end, 10);
	bool bad = errno || end == b.data || v <= 0 || v > (1L << 22) || (*end && *end != '\n');
	buf_free(&b);
	if (bad)
		return berth_err_set(err, 0, "runc's pid file %s does not hold a pid", path);
	*pid = (pid_t)v;
	return 0;
}

int runc_run(struct shim *shim, struct berth_err *err)
{
	_cleanup_free_ char *pid_file = fs_path("%s/pid", shim->cfg.bundle);
	if (pid_file == NULL)
		return berth_err_set(err, ENOMEM, "starting the container");
	unlink(pid_file); /* a stale one from an earlier run would lie */

	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return berth_err_set(err, errno, "pipe");
	/* Only the shim's end is non-blocking: the container writes blocking. */
	if (fcntl(pipefd[0], F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return berth_err_set(err, e, "fcntl O_NONBLOCK");
	}
	shim->output_fd = pipefd[0];

	char *const argv[] = { (char *)shim->cfg.runc, "--root", (char *)shim->cfg.runc_root, "run", "-d",
			       "--pid-file", pid_file, "--bundle", (char *)shim->cfg.bundle,
			       (char *)shim->cfg.id, NULL };
	pid_t runc_pid = runc_exec(argv, pipefd[1], err);
	close(pipefd[1]);
	if (runc_pid < 0)
		return -1;

	struct berth_buf cap = BERTH_BUF_INIT;
	int status = 0;
	bool runc_done = false;
	long long deadline = clock_now_ms() + RUNC_RUN_TIMEOUT_MS;
	while (!runc_done) {
		long long left = deadline - clock_now_ms();
		if (left <= 0) {
			kill(runc_pid, SIGKILL);
			waitpid(runc_pid, &status, 0);
			output_read(shim, &cap);
			buf_free(&cap);
			berth_err_set(err, 0, "runc run did not finish within %d s", RUNC_RUN_TIMEOUT_MS / 1000);
			runc_delete(shim, NULL);
			return -1;
		}
		struct pollfd pfd[2] = { { shim->signal_fd, POLLIN, 0 }, { shim->output_fd, POLLIN, 0 } };
		int n = poll(pfd, 2, (int)(left > 1000 ? 1000 : left));
		if (n < 0 && errno != EINTR) {
			berth_err_set(err, errno, "poll");
			kill(runc_pid, SIGKILL);
			waitpid(runc_pid, &status, 0);
			buf_free(&cap);
			runc_delete(shim, NULL);
			return -1;
		}
		if (pfd[1].revents)
			output_read(shim, &cap);
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			while (read(shim->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				/* SIGTERM/SIGINT during start: the start finishes first, the
				 * loop then sees shim->stopping set by main. */
				if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
					shim->stopping = true;
			}
		}
		/* Reap on every turn: a SIGCHLD may have been consumed already. */
		pid_t p;
		int st;
		while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
			if (p == runc_pid) {
				status = st;
				runc_done = true;
			} else {
				shim_exit_remember(shim, p, st);
			}
		}
	}
	output_read(shim, &cap);

	if (!runc_done || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		char why[900];
		runc_error_text(&cap, why, sizeof(why));
		buf_free(&cap);
		if (!runc_done)
			return -1;
		if (WIFSIGNALED(status))
			berth_err_set(err, 0, "runc run was killed by signal %d%s%s", WTERMSIG(status),
				      why[0] ? ": " : "", why);
		else
			berth_err_set(err, 0, "runc run failed (exit status %d)%s%s", WEXITSTATUS(status),
				      why[0] ? ": " : "", why);
		runc_delete(shim, NULL);
		return -1;
	}
	buf_free(&cap);
	if (read_pid_file(pid_file, &shim->container_pid, err) < 0) {
		runc_delete(shim, NULL);
		return -1;
	}
	shim->started_at = time(NULL);
	return 0;
}

int runc_delete(struct shim *shim, struct berth_err *err)
{
	char *const argv[] = { (char *)shim->cfg.runc, "--root", (char *)shim->cfg.runc_root, "delete", "--force",
			       (char *)shim->cfg.id, NULL };
	pid_t pid = runc_exec(argv, STDERR_FILENO, err);
	if (pid < 0)
		return -1;
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return berth_err_set(err, errno, "waiting for runc delete");
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		log_warn("runc delete --force %s failed (status 0x%x)", shim->cfg.id, status);
		return berth_err_set(err, 0, "runc delete failed");
	}
	return 0;
}
