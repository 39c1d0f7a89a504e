/* control_server.h — berthd's control socket (proto_control.h): accepts
 * connections from the router and the CLI, one thread per connection, and
 * hands each request to the API, the route table or `ps`. */
#ifndef BERTH_CONTROL_SERVER_H
#define BERTH_CONTROL_SERVER_H

#include "api.h"
#include "err.h"
#include "runtime.h"

struct control_server;

struct control_server *control_server_start(const char *socket_path, struct api_ctx *api, struct runtime *rt,
					    struct berth_err *err);
/* Stops accepting, ends the connections still open (shutdown: their reads
 * and writes fail) and waits, at most 10 s, until no connection thread uses
 * the server, the API or the runtime any more; the caller may then free
 * those. Past 10 s (a request still in its grace wait) it says so and leaves
 * the server allocated rather than free what a thread uses. */
void control_server_stop(struct control_server *cs);

#endif
