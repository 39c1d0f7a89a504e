/* container_http.h — berthd's HTTP/1.1 calls to a container's port, made
 * through its shim (shim_conn.h) with the shared client (http_client.h):
 * the health ping and the /models API of multi-model containers
 * (CONTRACT.md §4). One request per connection (Connection: close); the
 * answer may use Content-Length, chunked or close-delimited bodies, and is
 * bounded: head CONTAINER_HTTP_MAX_HEAD bytes, body CONTAINER_HTTP_MAX_BODY
 * (a larger answer is an error, never cut short), time timeout_ms in all. */
#ifndef BERTH_CONTAINER_HTTP_H
#define BERTH_CONTAINER_HTTP_H

#include "buf.h"
#include "err.h"

#define CONTAINER_HTTP_MAX_HEAD (32u << 10)
#define CONTAINER_HTTP_MAX_BODY (64u << 10)
#define CONTAINER_HTTP_CONNECT_TIMEOUT_MS 5000 /* asking the shim, within timeout_ms */

/* *status = the HTTP status; body (may be NULL) gets the answer's body,
 * NUL-terminated. json_body (may be NULL) is sent as application/json.
 * -1 when the container cannot be reached or gives no complete answer. */
int container_http(const char *shim_socket, const char *method, const char *path, const char *json_body,
		   int timeout_ms, int *status, struct berth_buf *body, struct berth_err *err);

/* (async) One POST /invocations of an asynchronous request: the input
 * bytes with its SageMaker headers (each NULL when absent; values must hold
 * no control characters: the caller validated them), the answer's body
 * (at most max_body bytes, else EMSGSIZE) and Content-Type (content_type_out,
 * "" when none) kept. One connection, closed after. */
struct container_invocation {
	const char *content_type, *accept, *custom_attributes, *inference_id;
	const void *body;
	size_t body_len;
	size_t max_body;
	char *content_type_out;
	size_t content_type_out_len;
	const int *stop_fd; /* may be NULL; see http_client.h */
};
int container_invoke(const char *shim_socket, const struct container_invocation *inv, int timeout_ms, int *status,
		     struct berth_buf *body, struct berth_err *err);

/* GET /ping (the health check); *status = the HTTP status, 0 on failure. */
int container_ping(const char *shim_socket, int timeout_ms, int *status, struct berth_err *err);

#endif
