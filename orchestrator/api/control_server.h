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
/* Stops accepting; connections in progress finish on their own. */
void control_server_stop(struct control_server *cs);

#endif
