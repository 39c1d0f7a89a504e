/* http_client.h — one blocking HTTP/1.1 exchange on a connected socket,
 * bounded in time and size: berthd's health pings and model-management
 * calls to containers. The answer is read with http_response.h (the
 * parser the router's upstreams use too), so Content-Length, chunked and
 * close-delimited bodies all work.
 *
 * The request carries Connection: close; the socket is used for one
 * exchange only. The socket may be blocking or not: every wait is a poll
 * against the one deadline. */
#ifndef BERTH_HTTP_CLIENT_H
#define BERTH_HTTP_CLIENT_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

struct http_client_request {
	const char *method;       /* "GET", "POST", ... */
	const char *path;         /* "/ping" */
	const char *host;         /* Host header; NULL: localhost */
	const char *content_type; /* NULL: no Content-Type */
	const char *body;         /* NULL: no body (no Content-Length on GET, 0 otherwise) */
	size_t body_len;
	size_t max_head;          /* bounds on the answer (http_response.h) */
	size_t max_body;
	/* (async) more request header lines, each "Name: value\r\n" (NULL: none) */
	const char *extra_headers;
	/* (async) when set, gets the answer's Content-Type (cut to its size; "" when none) */
	char *content_type_out;
	size_t content_type_out_len;
	/* (async) when set, *stop_fd turning readable ends the exchange at
	 * once with ECANCELED (the caller is shutting down) */
	const int *stop_fd;
};

/* Sends req on conn and reads the whole answer within timeout_ms.
 * *status = its status; body (may be NULL: the body is read and dropped)
 * gets its decoded body, NUL-terminated. -1 with err ("METHOD PATH: what
 * happened": ETIMEDOUT, EPROTO for a malformed or early-closed answer,
 * EMSGSIZE over a bound, ECANCELED when stop_fd turned readable) when no
 * complete answer came. */
int http_client_exchange(int conn, const struct http_client_request *req, int timeout_ms, int *status,
			 struct berth_buf *body, struct berth_err *err);

#endif
