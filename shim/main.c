/* main.c — berth-shim: one per container (common/proto_shim.h). Parses the
 * command line, then wires the duties together in order:
 *   daemonize (spawn.c) → open the log (container_log.c) → signals, epoll
 *   (loop.c) → `runc run -d` (runc.c) → the container's netns → the socket
 *   (server.c) → "ok" on --ready-fd → the loop until the container exits
 *   (loop.c, exit.c, stop.c).
 * The one struct shim below is the only state; every duty gets a pointer. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "container_log.h"
#include "err.h"
#include "exit.h"
#include "log.h"
#include "loop.h"
#include "proto_shim.h"
#include "runc.h"
#include "server.h"
#include "shim.h"
#include "spawn.h"
#include "stop.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: berth-shim --id ID --bundle DIR --socket PATH --log PATH --exit-file PATH\n"
		"                  --runc PATH --runc-root DIR [--log-max-bytes N] [--ready-fd N]\n"
		"Runs one container with runc and serves its socket; see common/proto_shim.h.\n");
}

static int parse_number(const char *flag, const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max) {
		fprintf(stderr, "berth-shim: %s: not a number from 0 to %llu: %s\n", flag, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct shim_config *cfg)
{
	enum { O_ID = 1, O_BUNDLE, O_SOCKET, O_LOG, O_EXIT, O_RUNC, O_ROOT, O_MAX, O_READY, O_HELP };
	static const struct option opts[] = {
		{ "id", required_argument, NULL, O_ID },
		{ "bundle", required_argument, NULL, O_BUNDLE },
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "log", required_argument, NULL, O_LOG },
		{ "exit-file", required_argument, NULL, O_EXIT },
		{ "runc", required_argument, NULL, O_RUNC },
		{ "runc-root", required_argument, NULL, O_ROOT },
		{ "log-max-bytes", required_argument, NULL, O_MAX },
		{ "ready-fd", required_argument, NULL, O_READY },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long v;
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case O_ID: cfg->id = optarg; break;
		case O_BUNDLE: cfg->bundle = optarg; break;
		case O_SOCKET: cfg->socket_path = optarg; break;
		case O_LOG: cfg->log_path = optarg; break;
		case O_EXIT: cfg->exit_file = optarg; break;
		case O_RUNC: cfg->runc = optarg; break;
		case O_ROOT: cfg->runc_root = optarg; break;
		case O_MAX:
			if (parse_number("--log-max-bytes", optarg, 1ULL << 50, &v) < 0)
				return -1;
			cfg->log_max_bytes = v;
			break;
		case O_READY:
			if (parse_number("--ready-fd", optarg, INT_MAX, &v) < 0)
				return -1;
			cfg->ready_fd = (int)v;
			if (fcntl(cfg->ready_fd, F_GETFD) < 0) {
				fprintf(stderr, "berth-shim: --ready-fd %d is not open\n", cfg->ready_fd);
				return -1;
			}
			break;
		case O_HELP: usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "berth-shim: unexpected argument %s\n", argv[optind]);
		return -1;
	}
	const char *missing = !cfg->id ? "--id" : !cfg->bundle ? "--bundle" : !cfg->socket_path ? "--socket"
			    : !cfg->log_path ? "--log" : !cfg->exit_file ? "--exit-file" : !cfg->runc ? "--runc"
			    : !cfg->runc_root ? "--runc-root" : NULL;
	if (missing) {
		fprintf(stderr, "berth-shim: %s is required\n", missing);
		usage(stderr);
		return -1;
	}
	/* The id goes into paths and argv: keep it to runc's own charset. */
	size_t n = strlen(cfg->id);
	if (n == 0 || n > 128 || strspn(cfg->id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.") != n) {
		fprintf(stderr, "berth-shim: --id %s: use 1-128 of [A-Za-z0-9_+.-]\n", cfg->id);
		return -1;
	}
	const char *paths[] = { cfg->bundle, cfg->socket_path, cfg->log_path, cfg->exit_file, cfg->runc, cfg->runc_root };
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(paths); i++) {
		if (paths[i][0] != '/') {
			fprintf(stderr, "berth-shim: %s: paths must be absolute (the shim runs in /)\n", paths[i]);
			return -1;
		}
	}
	return 0;
}

/* Signals arrive through a signalfd; the runc child restores the mask. */
static int signals_setup(struct shim *shim, struct berth_err *err)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return berth_err_set(err, errno, "sigprocmask");
	shim->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (shim->signal_fd < 0)
		return berth_err_set(err, errno, "signalfd");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	return 0;
}

static int open_netns(const char *path, struct berth_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return berth_err_set(err, errno, "open %s", path);
	return fd;
}

static int shim_start(struct shim *shim, struct berth_err *err)
{
	if (container_log_open(shim, err) < 0 || signals_setup(shim, err) < 0 || shim_loop_init(shim, err) < 0)
		return -1;
	shim->own_netns_fd = open_netns("/proc/self/ns/net", err);
	if (shim->own_netns_fd < 0)
		return -1;
	if (runc_run(shim, err) < 0)
		return -1;
	if (shim_loop_watch_output(shim, err) < 0)
		goto kill;
	shim_exit_check_early(shim);
	shim_exit_reap(shim);
	if (!shim->exited) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)shim->container_pid);
		struct berth_err nerr;
		shim->container_netns_fd = open_netns(path, &nerr);
		/* A process that died in between is not an error here: the loop
		 * reaps it and records its status like any exit. */
		if (shim->container_netns_fd < 0)
			log_warn("%s; container %s seems to have exited already", nerr.msg, shim->cfg.id);
	}
	if (server_listen(shim, err) < 0)
		goto kill;
	if (shim->exited)
		log_info("container %s (pid %d) started and has already exited", shim->cfg.id,
			 (int)shim->container_pid);
	else
		log_info("container %s runs as pid %d", shim->cfg.id, (int)shim->container_pid);
	return 0;
kill:
	/* The container runs but cannot be served: take it down again. */
	if (!shim->exited)
		kill(shim->container_pid, SIGKILL);
	runc_delete(shim, NULL);
	return -1;
}

int main(int argc, char **argv)
{
	/* Descriptors 0-2 must exist, or the first open() would become "stderr". */
	for (;;) {
		int fd = open("/dev/null", O_RDWR);
		if (fd < 0)
			return 1;
		if (fd > STDERR_FILENO) {
			close(fd);
			break;
		}
	}

	struct shim shim = {
		.cfg = { .log_max_bytes = SHIM_LOG_MAX_BYTES_DEFAULT, .ready_fd = -1 },
		.epfd = -1, .signal_fd = -1, .listen_fd = -1, .output_fd = -1, .timer_fd = -1,
		.own_netns_fd = -1, .container_netns_fd = -1, .log = { .fd = -1 },
	};
	if (parse_args(argc, argv, &shim.cfg) < 0)
		return 2;

	struct berth_err err;
	int report_fd = -1;
	if (shim_daemonize(&shim, &report_fd, &err) < 0) {
		fprintf(stderr, "berth-shim: %s\n", err.msg);
		return 1;
	}
	/* From here on we are the daemon; stderr becomes the container log. */
	if (shim_start(&shim, &err) < 0) {
		log_error("start of container %s failed: %s", shim.cfg.id, err.msg);
		shim_report(&report_fd, false, err.msg);
		return 1;
	}
	shim_report(&report_fd, true, NULL);
	if (shim.stopping) { /* SIGTERM arrived while runc was starting */
		shim.stopping = false;
		shim_stop_request(&shim, STOP_TIMEOUT_MS_DEFAULT);
	}
	int rc = shim_loop_run(&shim);
	log_info("shim for container %s done", shim.cfg.id);
	return rc < 0 ? 1 : 0;
}
