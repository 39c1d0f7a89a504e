/* spawn.c — see spawn.h. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "report.h"


/* The original process: relay the child's one line, then exit. */
static _Noreturn void parent_relay(int report_read_fd, int ready_fd, pid_t child)
{
	char line[REPORT_MAX + 1];
	size_t len = 0;
	report_read(report_read_fd, -1, line, sizeof(line), &len);
	char *nl = memchr(line, '\n', len);
	if (nl == NULL) {
		/* The daemon died (or wrote nonsense) before reporting. */
		int status = 0;
		pid_t r = waitpid(child, &status, WNOHANG);
		if (r == child && WIFSIGNALED(status))
			len = (size_t)snprintf(line, sizeof(line), "error: berth-shim died during start (signal %d)\n",
					       WTERMSIG(status));
		else
			len = (size_t)snprintf(line, sizeof(line), "error: berth-shim exited during start without a report\n");
	} else {
		len = (size_t)(nl - line) + 1;
	}
	line[len] = '\0';
	bool ok = strcmp(line, "ok\n") == 0;
	if (ready_fd >= 0)
		fs_write_all(ready_fd, line, len);
	else if (!ok)
		fs_write_all(STDERR_FILENO, line, len);
	_exit(ok ? 0 : 1);
}

int shim_daemonize(struct shim *shim, int *report_fd, struct berth_err *err)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return berth_err_set(err, errno, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return berth_err_set(err, e, "fork");
	}
	if (pid > 0) {
		close(pipefd[1]);
		parent_relay(pipefd[0], shim->cfg.ready_fd, pid);
	}

	/* The daemon. */
	close(pipefd[0]);
	if (shim->cfg.ready_fd >= 0 && shim->cfg.ready_fd != pipefd[1])
		close(shim->cfg.ready_fd); /* only the parent writes there */
	shim->cfg.ready_fd = -1;
	/* Keep nothing berthd may have leaked to us (its sockets would live as
	 * long as the container): the report pipe moves to fd 3, the rest goes. */
	int report = pipefd[1];
	if (report != 3) {
		report = dup3(pipefd[1], 3, O_CLOEXEC);
		if (report < 0)
			_exit(1);
		close(pipefd[1]);
	}
	close_range(4, ~0U, 0);
	*report_fd = report;

	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0) {
		berth_err_set(err, errno, "open /dev/null");
		goto fail;
	}
	/* stderr stays as it is until the container log is open (main.c). */
	if (dup2(null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0) {
		berth_err_set(err, errno, "dup2 /dev/null");
		close(null_fd);
		goto fail;
	}
	if (null_fd > STDERR_FILENO)
		close(null_fd);
	if (setsid() < 0) {
		berth_err_set(err, errno, "setsid");
		goto fail;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		berth_err_set(err, errno, "prctl(PR_SET_CHILD_SUBREAPER)");
		goto fail;
	}
	if (chdir("/") < 0) {
		berth_err_set(err, errno, "chdir /");
		goto fail;
	}
	umask(0022);
	return 0;
fail:
	shim_report(report_fd, false, err->msg);
	_exit(1);
}

void shim_report(int *report_fd, bool ok, const char *message)
{
	if (*report_fd < 0)
		return;
	char line[REPORT_MAX];
	int n;
	if (ok) {
		n = snprintf(line, sizeof(line), "ok\n");
	} else {
		/* one line: newlines inside the message would end it early */
		n = snprintf(line, sizeof(line) - 1, "error: %s", message ? message : "unknown error");
		if (n < 0)
			n = 0;
		if ((size_t)n > sizeof(line) - 2)
			n = (int)sizeof(line) - 2;
		for (int i = 0; i < n; i++)
			if (line[i] == '\n' || line[i] == '\r')
				line[i] = ' ';
		line[n++] = '\n';
	}
	if (fs_write_all(*report_fd, line, (size_t)n) < 0)
		log_warn("cannot report readiness: %s", strerror(errno));
	close(*report_fd);
	*report_fd = -1;
}
