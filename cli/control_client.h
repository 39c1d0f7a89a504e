/* control_client.h — the CLI's side of berthd's control socket. */
#ifndef BERTH_CLI_CONTROL_CLIENT_H
#define BERTH_CLI_CONTROL_CLIENT_H

#include <yajl/yajl_tree.h>

#include "err.h"

/* Calls a SageMaker operation through berthd (proto_control.h kind 1).
 * Returns the HTTP status (or -1 with err when berthd is unreachable);
 * *reply is the parsed answer body (NULL if it was not JSON). */
int control_call(const char *socket, const char *operation, const char *body, yajl_val *reply,
		 struct berth_err *err);
/* (mme) Sends one request line as given and returns the parsed answer. */
yajl_val control_request(const char *socket, const char *line, struct berth_err *err);
/* Sends {"op":OP} and returns the parsed single-line answer. */
yajl_val control_simple(const char *socket, const char *op, struct berth_err *err);

#endif
