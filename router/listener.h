/* listener.h — listening TCP sockets (bound here from HOST:PORT, or
 * inherited already listening). Each accepted connection (non-blocking,
 * close-on-exec, TCP_NODELAY) goes to the accept callback given at
 * creation, with its user_data; this module knows nothing of what the
 * connection speaks. */
#ifndef BERTH_ROUTER_LISTENER_H
#define BERTH_ROUTER_LISTENER_H

#include <stdbool.h>

#include "err.h"
#include "loop.h"

/* Owns fd from then on (closes it or hands it on). tag: the listener's,
 * as given to listener_open / listener_adopt (what it means is the
 * callback's business: server.h's ROUTER_LISTEN_*). */
typedef void (*listener_accept_cb)(int fd, int tag, void *user_data);

struct listeners;

/* NULL on ENOMEM. */
struct listeners *listeners_new(struct loop *loop, listener_accept_cb on_accept, void *user_data);
/* Closes every socket and frees. NULL is fine. */
void listeners_free(struct listeners *ls);

/* Binds (SO_REUSEADDR), listens and registers; prints
 * "berth-router: listening on ADDR" on stdout. */
int listener_open(struct listeners *ls, const char *address, int tag, struct berth_err *err);
/* Adopts fd, a socket already listening (made non-blocking here). */
int listener_adopt(struct listeners *ls, int fd, int tag, struct berth_err *err);
/* Stops accepting for good (drain): closes every listening socket. */
void listener_close_all(struct listeners *ls);
/* Stops (paused) or resumes accepting on every listener; pending clients
 * wait in the kernel's backlog meanwhile. */
void listener_pause_all(struct listeners *ls, bool paused);

#endif
