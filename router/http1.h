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
 * handed to http2.c (h2c Upgrade only in cleartext). One that starts with a
 * TLS handshake record (0x16) is handed to tls.c with the bytes read, and
 * comes back through http1_tls_ready: HTTP/1.1 or, by ALPN, HTTP/2 over
 * TLS. On a TLS-only address (--tls-listen) anything else is answered 400
 * `The plain HTTP request was sent to the HTTPS port: use
 * https://HOST:PORT/.` at once, then the connection lingers and closes. */
#ifndef BERTH_ROUTER_HTTP1_H
#define BERTH_ROUTER_HTTP1_H

#include <stdbool.h>
#include <stddef.h>

#include "request.h"

struct server;
struct tls_conn;

/* Takes ownership of fd (non-blocking, accepted). 0 or -1 (fd closed). */
int http1_conn_new(struct server *srv, int fd);
/* The listener's accept callback (user_data: struct server). Under
 * cfg.max_connections open client connections: http1_conn_new. At the
 * cap: answers 503 ServiceUnavailable with Retry-After at once, lingers
 * ROUTER_LINGER_MS and closes; ROUTER_REFUSING_EXTRA past it: closes. */
void http1_accept(int fd, int tag, void *user_data);
/* tls.h's ready callback (main.c wires it): a finished handshake becomes
 * an HTTP/2 connection (ALPN h2) or an HTTP/1.1 one. */
void http1_tls_ready(struct server *srv, int fd, struct tls_conn *t, bool h2);

/* "HTTP/1.1 200 OK\r\n" + headers + Content-Length (unless 1xx/204/304) +
 * Connection: close / keep-alive as asked + "\r\n". Pure. */
int http1_render_head(struct berth_buf *out, const struct request *req, int http_minor, bool close, bool keep_alive_10);
const char *http1_reason(int status);

#endif
