/* http1.h — the HTTP/1.1 server side of a client connection (http-parser).
 *
 * One request at a time: after a request is complete the parser pauses
 * until its response has been written, so pipelined requests are answered
 * in order. Bodies are bounded by dispatch (Content-Length is checked
 * before any body byte is read; `Expect: 100-continue` gets 100 Continue
 * or the rejection); body bytes are charged to the router's memory budget
 * (503 with Retry-After past it). Head size and count are bounded
 * (request.h); idle, head, body-idle timeouts and the whole-request
 * deadline (cfg.request_timeout_ms) answer 408 to slow clients. A connection that starts
 * with the HTTP/2 preface, or asks `Upgrade: h2c` with HTTP2-Settings, is
 * handed to http2.c. */
#ifndef BERTH_ROUTER_HTTP1_H
#define BERTH_ROUTER_HTTP1_H

#include <stddef.h>

#include "request.h"

struct server;

/* Takes ownership of fd (non-blocking, accepted). 0 or -1 (fd closed). */
int http1_conn_new(struct server *srv, int fd);
/* The listener's accept callback (user_data: struct server). Under
 * cfg.max_connections open client connections: http1_conn_new. At the
 * cap: answers 503 ServiceUnavailable with Retry-After at once, lingers
 * ROUTER_LINGER_MS and closes; ROUTER_REFUSING_EXTRA past it: closes. */
void http1_accept(int fd, void *user_data);

/* "HTTP/1.1 200 OK\r\n" + headers + Content-Length (unless 1xx/204/304) +
 * Connection: close / keep-alive as asked + "\r\n". Pure. */
int http1_render_head(struct berth_buf *out, const struct request *req, int http_minor, bool close, bool keep_alive_10);
const char *http1_reason(int status);

#endif
