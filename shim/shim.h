/* shim.h — the berth-shim context: everything one shim knows about its one
 * container, owned by main.c and passed to every duty (spawn.c, runc.c,
 * container_log.c, exit.c, server.c, stop.c, loop.c). No duty keeps state of
 * its own; all of it lives here. The protocol is common/proto_shim.h.
 */
#ifndef BERTH_SHIM_H
#define BERTH_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "ipc.h"

struct shim_config {
	const char *id;          /* runc container id */
	const char *bundle;      /* OCI bundle directory (config.json, pid file) */
	const char *socket_path; /* unix socket the shim serves */
	const char *log_path;    /* container stdout+stderr */
	const char *exit_file;   /* JSON written once the container has exited */
	const char *runc;        /* runc binary */
	const char *runc_root;   /* runc --root */
	unsigned long long log_max_bytes; /* 0: never rotate */
	int ready_fd;            /* -1 when not given */
};

/* What an epoll event refers to (epoll_event.data.ptr points at one). */
enum shim_watch_kind {
	WATCH_SIGNAL,   /* signalfd: SIGCHLD, SIGTERM, SIGINT */
	WATCH_LISTEN,   /* the unix socket */
	WATCH_OUTPUT,   /* read end of the container's stdout/stderr pipe */
	WATCH_TIMER,    /* stop: SIGKILL deadline */
	WATCH_CLIENT,   /* a client connection */
	WATCH_CONNECT,  /* a client's TCP connect in progress */
};

struct shim_watch {
	enum shim_watch_kind kind;
	struct shim_client *client; /* WATCH_CLIENT, WATCH_CONNECT */
};

struct shim_client {
	struct shim_client *next;
	int fd;
	struct ipc_reader reader;
	struct shim_watch watch;
	/* A connect in progress: requests behind it wait (answers are in order). */
	int connect_fd;
	int connect_port;
	long long connect_deadline_ms; /* CLOCK_MONOTONIC */
	struct shim_watch connect_watch;
	bool waiting_stop;   /* answered once the container has exited */
	bool privileged;     /* peer runs as the shim's own uid (berthd): state and stop */
	bool closing;        /* EOF or error: free at the end of the iteration */
};

/* Children reaped before their pid was known (runc's own helpers, or the
 * container's process exiting before `runc run -d` has returned). */
#define SHIM_EARLY_REAPED_MAX 8
struct shim_reaped {
	pid_t pid;
	int status;
};

struct shim_log {
	int fd;                  /* also dup'ed onto the shim's stderr */
	unsigned long long size; /* bytes in the current file */
};

struct shim {
	struct shim_config cfg;

	int epfd;
	int signal_fd;
	int listen_fd;
	int output_fd;          /* -1 once the pipe reached EOF */
	int timer_fd;
	int own_netns_fd;       /* the shim's network namespace, to return to */
	int container_netns_fd; /* /proc/PID/ns/net, opened once after start */
	struct shim_watch signal_watch, listen_watch, output_watch, timer_watch;

	struct shim_log log;

	pid_t container_pid;    /* 0 before start */
	time_t started_at;
	bool exited;
	int exit_status;        /* wait status, valid when exited */
	time_t finished_at;
	bool oom_killed;

	bool stopping;          /* SIGTERM sent */
	bool killed;            /* SIGKILL sent */
	long long kill_deadline_ms;

	struct shim_reaped early[SHIM_EARLY_REAPED_MAX];
	size_t n_early;

	struct shim_client *clients;
	bool done;              /* leave the loop */
};

/* Current CLOCK_MONOTONIC time in milliseconds. */

#endif
