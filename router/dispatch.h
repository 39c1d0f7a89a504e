/* dispatch.h — what a request is and who answers it (CONTRACT.md §1):
 * GET /ping, GET /metrics, control-plane POST / with X-Amz-Target:
 * SageMaker.Op (forwarded to berthd), POST /endpoints/NAME/invocations
 * (InvokeEndpoint), POST /endpoints/NAME/invocations-response-stream
 * (InvokeEndpointWithResponseStream: kind INVOKE, stream set),
 * POST /endpoints/NAME/async-invocations (InvokeEndpointAsync: kind
 * INVOKE, async set), anything
 * else 404 {"message":…}.
 *
 * Front ends call dispatch_head() once the request head is complete (it
 * sets the body limit), dispatch_body_too_large() when the body (declared
 * or received) exceeds it, and dispatch_request() once the body is whole. */
#ifndef BERTH_ROUTER_DISPATCH_H
#define BERTH_ROUTER_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "request.h"

enum dispatch_kind {
	DISPATCH_PING,
	DISPATCH_METRICS,
	DISPATCH_CONTROL,
	DISPATCH_INVOKE,
	DISPATCH_NOT_FOUND,
};

struct dispatch_target {
	enum dispatch_kind kind;
	const char *name; /* CONTROL: operation; INVOKE: endpoint name (not NUL-terminated) */
	size_t name_len;
	bool stream;      /* INVOKE: InvokeEndpointWithResponseStream */
	bool async;       /* INVOKE: InvokeEndpointAsync (async_invoke.h) */
};

/* Pure classification of method, path (query ignored) and X-Amz-Target. */
struct dispatch_target dispatch_classify(enum request_method method, const char *path, const char *amz_target);

struct server;

void dispatch_head(struct server *srv, struct request *req);
void dispatch_body_too_large(struct server *srv, struct request *req, size_t size);
/* dispatch_head may find the request refused by its head alone (a
 * signature that cannot pass, auth.h): req->refusal is then set, and the
 * front end, instead of reading the body, calls this (outside its parser)
 * to answer, then treats the request like one whose body was too large. */
void dispatch_refuse_early(struct server *srv, struct request *req);
void dispatch_request(struct server *srv, struct request *req);

#endif
