/* http1.h — the HTTP/1.1 server side of a client connection (http-parser).
 *
 * One request at a time: after a request is complete the parser pauses
 * until its response has been written, so pipelined requests are answered
 * in order. Bodies are bounded by dispatch (Content-Length is checked
 * before any body byte is read; `Expect: 100-continue` gets 100 Continue
 * or the rejection). Head size and count are bounded (request.h); idle,
 * head and body timeouts close slow clients. A connection that starts
 * with the HTTP/2 preface, or asks `Upgrade: h2c` with HTTP2-Settings, is
 * handed to http2.c. */
#ifndef BERTH_ROUTER_HTTP1_H
#define BERTH_ROUTER_HTTP1_H

#include <stddef.h>

#include "request.h"

struct server;

/* Takes ownership of fd (non-blocking, accepted). 0 or -1 (fd closed). */
int http1_conn_new(struct server *srv, int fd);

/* "HTTP/1.1 200 OK\r\n" + headers + Content-Length (unless 1xx/204/304) +
 * Connection: close / keep-alive as asked + "\r\n". Pure. */
int http1_render_head(struct berth_buf *out, const struct request *req, int http_minor, bool close, bool keep_alive_10);
const char *http1_reason(int status);

#endif
