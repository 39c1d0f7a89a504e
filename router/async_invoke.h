/* async_invoke.h — InvokeEndpointAsync (POST /endpoints/NAME/async-invocations):
 * the router checks the request's headers (botocore's sagemaker-runtime
 * model: X-Amzn-SageMaker-InputLocation required, ^(https|s3)://([^/]+)/?(.*)$,
 * at most 1024; RequestTTLSeconds 60..21600; InvocationTimeoutSeconds
 * 1..3600; InferenceId 1..64 printable; Content-Type, Accept and
 * Custom-Attributes at most 1024 ASCII; S3OutputPathExtension and Filename
 * by their patterns) and answers 400 ValidationError in AWS's words for
 * what is wrong, then hands the request to berthd (proto_control.h kind
 * 11), which queues it durably; berthd's yes is answered 202 with
 * X-Amzn-SageMaker-OutputLocation, X-Amzn-SageMaker-FailureLocation and
 * {"InferenceId":…}; its no (unknown endpoint, no AsyncInferenceConfig,
 * full queue) as it says. The request's own body is not used (the input is
 * at InputLocation). */
#ifndef BERTH_ROUTER_ASYNC_INVOKE_H
#define BERTH_ROUTER_ASYNC_INVOKE_H

#include <stddef.h>

#include "buf.h"

struct server;
struct request;

#define ASYNC_SUBMIT_TIMEOUT_MS 10000

/* The header checks alone (pure): 0 with the request line for berthd in
 * line (its '\n' included), or -1 with the client's message in why
 * ("N validation error(s) detected: …"). get(ctx, name) returns a header
 * (lower-case name) or NULL. */
typedef const char *(*async_header_fn)(const void *ctx, const char *name);
int async_invoke_render(const char *endpoint, async_header_fn get, const void *ctx, struct berth_buf *line,
			struct berth_buf *why);

/* Answers req (now or once berthd has). endpoint is NUL-terminated. */
void async_invoke_start(struct server *srv, struct request *req, const char *endpoint);

#endif
