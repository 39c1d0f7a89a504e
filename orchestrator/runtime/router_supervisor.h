/* router_supervisor.h — berthd runs berth-router and keeps it running.
 *
 * berthd binds the listening sockets itself (SO_REUSEADDR, SO_REUSEPORT)
 * and hands them to each router it starts as --listen-fd 3, 4, … (the
 * TLS-only ones of tls_listen as --tls-listen-fd N, after them), with
 * --berthd-socket (its own channel, RUN_DIR/router.sock), --user and the
 * containment limits set in its config, and its stdout and stderr on
 * berthd's log pipe, so the router never needs root and a
 * restarted router serves the very same sockets: connections that arrive
 * while it is down wait in the kernel's backlog instead of being refused.
 *
 * A thread waits on the router's pidfd and starts a new one at once when
 * it exits; when routers keep dying within 1 s of their start, the second
 * and later restarts in a row wait 100 ms, doubling to 5 s (reset once one
 * lives 1 s).
 * RUN_DIR/router.pid names the current router; a router left running by a
 * berthd that was killed keeps serving until the new one is up, then gets
 * SIGTERM (it drains). router_supervisor_stop() sends SIGTERM, waits for
 * the drain (up to 10 s), then SIGKILL. */
#ifndef BERTH_ROUTER_SUPERVISOR_H
#define BERTH_ROUTER_SUPERVISOR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

struct router_supervisor_config {
	const char *router_path;
	const char *const *listen;   /* "HOST:PORT", "[::1]:PORT" */
	size_t n_listen;
	const char *const *tls_listen; /* TLS only */
	size_t n_tls_listen;
	bool insecure_listen;        /* passed on as --insecure-listen */
	const char *berthd_socket;   /* the router's channel (control_server.h) */
	const char *user;            /* the router's user (it switches itself) */
	const char *run_dir;         /* router.pid */
	int log_fd;                  /* the router's stdout and stderr (router_log.h); -1: berthd's */
	/* the router's containment limits (berthd.json router_*); 0: the
	 * router's own default, no flag passed */
	long long request_timeout_ms;           /* --request-timeout-ms */
	long long max_connections;              /* --max-connections */
	long long max_buffered_bytes;           /* --max-buffered-bytes */
	long long max_connection_buffered_bytes; /* --max-connection-buffered-bytes */
};

struct router_supervisor;

/* Binds every address (failing on the first that cannot be bound), starts
 * the router and the watching thread. */
struct router_supervisor *router_supervisor_start(const struct router_supervisor_config *cfg,
						  struct berth_err *err);
/* The current router's pid (0 while none runs). */
pid_t router_supervisor_pid(struct router_supervisor *s);
void router_supervisor_stop(struct router_supervisor *s);

/* Warns when a directory above path is not searchable by uid/gid (the
 * router could not reach berthd's socket). */
void router_check_reachable(const char *path, uid_t uid, gid_t gid);

#endif
