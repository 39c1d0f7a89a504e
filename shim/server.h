/* server.h — the shim's unix socket (proto_shim.h): ops "connect", "state",
 * "stop", newline-delimited JSON, answered in order per connection.
 *
 * "connect" enters the container's network namespace only to create the
 * socket: setns(container netns) → socket(AF_INET) → setns(back to the shim's
 * own netns, saved at start) → connect to 127.0.0.1:PORT. A socket belongs to
 * the namespace it was created in, so the connect reaches the container's
 * loopback while the shim itself never stays inside. The connect is
 * non-blocking (a container whose accept queue is full would otherwise stall
 * every client) and bounded by SERVER_CONNECT_TIMEOUT_MS; the connected
 * socket goes back to blocking mode and is passed with SCM_RIGHTS. A refused
 * connection is an ordinary answer {"ok":false,"error":...}.
 */
#ifndef BERTH_SHIM_SERVER_H
#define BERTH_SHIM_SERVER_H

#include <stdint.h>

#include "err.h"
#include "shim.h"

#define SERVER_CONNECT_TIMEOUT_MS 1000
#define SERVER_CLIENTS_MAX 256

/* Binds cfg.socket_path (mode 0600, non-blocking) and registers it. */
int server_listen(struct shim *shim, struct berth_err *err);
void server_accept(struct shim *shim);
void server_client_event(struct shim *shim, struct shim_client *c, uint32_t events);
void server_connect_event(struct shim *shim, struct shim_client *c);
/* Fails connects past their deadline; returns the earliest remaining
 * deadline (CLOCK_MONOTONIC ms) or -1. */
long long server_expire_connects(struct shim *shim);
/* Frees clients marked closing. */
void server_collect(struct shim *shim);
/* Answers every waiting stop with the exit status. */
void server_answer_stops(struct shim *shim);
/* Closes every client and the listening socket, and removes the socket file. */
void server_shutdown(struct shim *shim);

#endif
