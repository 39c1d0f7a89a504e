/* skopeo.c — see skopeo.h. */
#include "skopeo.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"

static void child_exec(const struct skopeo_run *r, int out_w, int err_w, char *const *envp)
{
	/* only async-signal-safe calls from here on (berthd has threads) */
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
		_exit(126);
	syscall(SYS_close_range, 3U, ~0U, 0U);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execvpe(r->argv[0], (char *const *)r->argv, envp);
	static const char msg[] = "Error: cannot run skopeo (is the skopeo package installed?)\n";
	ssize_t ignored = write(2, msg, sizeof(msg) - 1);
	(void)ignored;
	_exit(127);
}

/* Keeps the last SKOPEO_STDERR_KEEP bytes. */
static void keep_tail(struct berth_buf *b, const char *data, size_t n)
{
	if (buf_append(b, data, n) < 0)
		return;
	if (b->len > 2 * SKOPEO_STDERR_KEEP)
		buf_consume(b, b->len - SKOPEO_STDERR_KEEP);
}

static void emit_lines(const struct skopeo_run *r, struct berth_buf *pending, bool flush)
{
	for (;;) {
		char *nl = pending->len ? memchr(pending->data, '\n', pending->len) : NULL;
		if (nl == NULL && !(flush && pending->len > 0))
			return;
		size_t n = nl ? (size_t)(nl - pending->data) : pending->len;
		char line[1024];
		snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) - 1 ? n : sizeof(line) - 1), pending->data);
		if (line[0])
			r->on_line(r->user_data, line);
		buf_consume(pending, nl ? n + 1 : n);
	}
}

int skopeo_run(const struct skopeo_run *r, struct berth_buf *out, struct berth_buf *errtext,
	       enum skopeo_outcome *outcome, int *exit_status, struct berth_err *err)
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		return berth_err_set(err, errno, "skopeo: pipe");
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]);
		close(po[1]);
		return berth_err_set(err, errno, "skopeo: pipe");
	}
	char env_path[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char env_home[4200], env_conf[4200];
	snprintf(env_home, sizeof(env_home), "HOME=%s", r->home ? r->home : "/nonexistent");
	snprintf(env_conf, sizeof(env_conf), "CONTAINERS_REGISTRIES_CONF=%s",
		 r->registries_conf ? r->registries_conf : "/dev/null");
	char *envp[] = { env_path, env_home, env_conf, NULL };
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return berth_err_set(err, e, "skopeo: fork");
	}
	if (pid == 0)
		child_exec(r, po[1], pe[1], envp);
	setpgid(pid, pid); /* also here: no window where a kill misses it */
	close(po[1]);
	close(pe[1]);

	struct berth_buf pending = BERTH_BUF_INIT;
	long long deadline = clock_now_ms() + (r->timeout_ms > 0 ? r->timeout_ms : 1800000);
	*outcome = SKOPEO_EXITED;
	struct pollfd fds[2] = { { .fd = po[0], .events = POLLIN }, { .fd = pe[0], .events = POLLIN } };
	int open_fds = 2;
	while (open_fds > 0 && *outcome == SKOPEO_EXITED) {
		long long left = deadline - clock_now_ms();
		if (left <= 0) {
			*outcome = SKOPEO_TIMED_OUT;
			break;
		}
		if ((r->stop && atomic_load(r->stop)) || (r->cancelled && r->cancelled(r->cancel_ctx))) {
			*outcome = SKOPEO_STOPPED;
			break;
		}
		int n = poll(fds, 2, left < 200 ? (int)left : 200); /* wakes to see *stop */
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; n > 0 && i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char chunk[8192];
			ssize_t got = read(fds[i].fd, chunk, sizeof(chunk));
			if (got <= 0) {
				if (got < 0 && errno == EINTR)
					continue;
				close(fds[i].fd);
				fds[i].fd = -1;
				open_fds--;
				continue;
			}
			if (i == 1) {
				keep_tail(errtext, chunk, (size_t)got);
			} else if (r->on_line) {
				buf_append(&pending, chunk, (size_t)got);
				emit_lines(r, &pending, false);
				if (pending.len > 65536)
					buf_reset(&pending);
			} else if (out->len + (size_t)got > r->max_stdout) {
				*outcome = SKOPEO_TOO_MUCH;
			} else {
				buf_append(out, chunk, (size_t)got);
			}
		}
	}
	if (*outcome != SKOPEO_EXITED)
		kill(-pid, SIGKILL);
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (*outcome != SKOPEO_EXITED)
		kill(-pid, SIGKILL); /* anything it left in its group */
	if (r->on_line)
		emit_lines(r, &pending, true);
	buf_free(&pending);
	*exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	buf_append(out, "", 1);
	out->len--;
	buf_append(errtext, "", 1);
	errtext->len--;
	return 0;
}

void skopeo_error_line(const char *errtext, char *buf, size_t size)
{
	buf[0] = '\0';
	const char *best = NULL, *last = NULL;
	size_t best_n = 0, last_n = 0;
	for (const char *p = errtext; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n > 0) {
			last = p;
			last_n = n;
			if (!strncmp(p, "Error: ", 7) || !strncmp(p, "FATA[", 5) || strstr(p, "level=fatal")) {
				best = p;
				best_n = n;
			}
		}
		p = e ? e + 1 : NULL;
	}
	if (best == NULL) {
		best = last;
		best_n = last_n;
	}
	if (best == NULL)
		return;
	if (!strncmp(best, "Error: ", 7)) {
		best += 7;
		best_n -= 7;
	} else if (!strncmp(best, "FATA[", 5)) {
		const char *close = memchr(best, ']', best_n);
		if (close) {
			size_t skip = (size_t)(close - best) + 1;
			while (skip < best_n && best[skip] == ' ')
				skip++;
			best += skip;
			best_n -= skip;
		}
	} else if (strstr(best, "msg=\"")) {
		const char *m = strstr(best, "msg=\"") + 5;
		best_n -= (size_t)(m - best);
		best = m;
		if (best_n > 0 && best[best_n - 1] == '"')
			best_n--;
	}
	snprintf(buf, size, "%.*s", (int)(best_n < size ? best_n : size - 1), best);
}
