/* control_server.h — berthd's control sockets (proto_control.h): accepts
 * connections, one thread per connection, and hands each request to the
 * API, the route table, the multi-model cache or `ps`.
 *
 * Two channels:
 * - the admin socket (--socket, RUN_DIR/berthd.sock): root only (0600),
 *   every operation; the CLI's, and a router run by hand as root;
 * - the router's channel (RUN_DIR/router.sock, when berthd runs the
 *   router): root:ROUTER_GROUP 0660, and a connection whose peer uid
 *   (SO_PEERCRED) is not the router's is closed unanswered. It offers
 *   only what the router needs: control (the public API its clients
 *   call), watch_routes, mme_load, mme_touch; any other operation gets
 *   {"ok":false,"error":"operation \"OP\" is not offered on the router's
 *   channel; …"}. */
#ifndef BERTH_CONTROL_SERVER_H
#define BERTH_CONTROL_SERVER_H

#include <sys/types.h>

#include <stdbool.h>

#include "api.h"
#include "err.h"
#include "runtime.h"

enum control_channel { CONTROL_ADMIN, CONTROL_ROUTER };

struct control_server;

/* Opens the admin socket at socket_path (0600). */
struct control_server *control_server_start(const char *socket_path, struct api_ctx *api, struct runtime *rt,
					    struct berth_err *err);
/* The admin socket's {"op":"shutdown","stop_containers":B} (the CLI's
 * `berth shutdown`): fn runs on the connection's thread after the answer
 * {"ok":true,"pid":PID} was sent; it must only ask the main thread to stop.
 * Set before the socket serves. */
typedef void (*control_shutdown_fn)(void *data, bool stop_containers);
void control_server_on_shutdown(struct control_server *cs, control_shutdown_fn fn, void *data);
/* Opens the router's channel at path: group router_gid, mode 0660, only
 * peers of uid router_uid served. */
int control_server_open_router_channel(struct control_server *cs, const char *path, uid_t router_uid,
				       gid_t router_gid, struct berth_err *err);
/* Stops accepting on both channels, ends the connections still open
 * (shutdown: their reads and writes fail) and waits, at most 10 s, until no
 * connection thread uses the server, the API or the runtime any more; the
 * caller may then free those. Past 10 s (a request still in its grace
 * wait) it says so and leaves the server allocated rather than free what a
 * thread uses. */
void control_server_stop(struct control_server *cs);

#endif
