/* shim_client.h — berthd's side of the shim channel (proto_shim.h):
 * start a shim for a bundle, ask its state, stop it. Every call is bounded
 * in time. A socket connected to the container comes from shim_conn.h;
 * HTTP to the container (the health ping) is container_http.h. */
#ifndef BERTH_SHIM_CLIENT_H
#define BERTH_SHIM_CLIENT_H

#include <stdbool.h>

#include "err.h"

struct shim_launch {
	const char *shim_path;
	const char *runc_path;
	const char *runc_root;
	const char *id;
	const char *bundle;
	const char *socket;
	const char *log;
	const char *exit_file;
};

struct shim_state {
	bool running;
	int pid;
	bool exited;      /* exit_code / signal valid */
	int exit_code;    /* -1 when killed by a signal */
	int signal;       /* 0 when exited normally */
	bool oom_killed;
	double started_at; /* epoch seconds the container started (0: unknown) */
};

/* Starts the shim and returns once it reports the container running, or
 * fails with the shim's (runc's) message. */
int shim_spawn(const struct shim_launch *launch, int timeout_ms, struct berth_err *err);
/* -1 when the shim cannot be reached (it has exited). */
int shim_get_state(const char *socket, struct shim_state *state, struct berth_err *err);
/* SIGTERM, SIGKILL after timeout_ms; returns when the container is gone
 * and the shim process has exited (or after a bounded wait for it). */
int shim_stop(const char *socket, int timeout_ms, struct berth_err *err);
/* Reads the exit file the shim wrote (proto_shim.h); -1 when absent. */
int shim_read_exit_file(const char *path, struct shim_state *state, struct berth_err *err);

#endif
