/* listener.h — listening TCP sockets (bound here from HOST:PORT, or
 * inherited already listening), accepting client connections into the
 * HTTP/1.1 front end (which hands HTTP/2 connections on). */
#ifndef BERTH_ROUTER_LISTENER_H
#define BERTH_ROUTER_LISTENER_H

#include <stdbool.h>
#include <sys/socket.h>

#include "err.h"

struct server;
struct listener;


/* Binds (SO_REUSEADDR), listens and registers; prints
 * "berth-router: listening on ADDR" on stdout. */
int listener_open(struct server *srv, const char *address, struct berth_err *err);
/* Adopts fd, a socket already listening (made non-blocking here). */
int listener_adopt(struct server *srv, int fd, struct berth_err *err);
void listener_close_all(struct server *srv);
/* Stops (paused) or resumes accepting on every listener; pending clients
 * wait in the kernel's backlog meanwhile. */
void listener_pause_all(struct server *srv, bool paused);

#endif
