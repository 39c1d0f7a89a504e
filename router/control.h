/* control.h — forwards a control-plane call (POST / with X-Amz-Target:
 * SageMaker.Op) to berthd: one new non-blocking unix connection per call
 * (proto_control.h kind 1), the body embedded as a JSON string with the
 * signed request (method, path, every header) berthd verifies (auth.h). berthd's
 * status and body go back to the client as application/x-amz-json-1.1.
 * When berthd cannot be reached the client gets 503 ServiceUnavailable
 * saying where berthd was expected and to start it. */
#ifndef BERTH_ROUTER_CONTROL_H
#define BERTH_ROUTER_CONTROL_H

#include "buf.h"
#include "request.h"

#define CONTROL_TIMEOUT_MS 120000 /* berthd answers within its grace period (5 s) */
#define CONTROL_MAX_REPLY (16u << 20)

struct server;

/* operation: the X-Amz-Target value without "SageMaker.". */
void control_start(struct server *srv, struct request *req, const char *operation);

/* The request line sent to berthd (pure; appended to out with its '\n').
 * -1 when the body is not valid UTF-8 or on ENOMEM. */
int control_render_call(struct berth_buf *out, const struct request *req, const char *operation, const char *request_id,
			const char *body, size_t body_len);

#endif
