/* http2.h — the HTTP/2 server side of a client connection (nghttp2):
 * over TLS (ALPN h2, tls.h), or cleartext: prior knowledge (the connection
 * starts with the client preface) or Upgrade: h2c from an HTTP/1.1 request
 * (that request becomes stream 1). Each stream is one struct request; the response is submitted
 * when the request is answered. */
#ifndef BERTH_ROUTER_HTTP2_H
#define BERTH_ROUTER_HTTP2_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"

struct server;
struct tls_conn;

/* fd: accepted, non-blocking; tls: its TLS session (NULL: cleartext);
 * data/len: bytes already read (the preface). Takes ownership of fd and
 * tls. 0 or -1 (fd closed, tls freed). */
int http2_conn_new(struct server *srv, int fd, struct tls_conn *tls, const char *data, size_t len);

/* From HTTP/1.1 Upgrade: h2c. req is the complete upgrade request (it is
 * answered on stream 1); settings is the HTTP2-Settings value (base64url);
 * rest: bytes read after the request. Takes ownership of fd and req, even
 * on failure (then both are closed/released). */
int http2_conn_upgrade(struct server *srv, int fd, struct request *req, const char *settings,
		       size_t settings_len, const char *rest, size_t rest_len);

/* base64url (RFC 4648 §5, padding optional) decoding; -1 on bad input or
 * when out_cap is too small. Returns the decoded length. */
long base64url_decode(const char *in, size_t len, uint8_t *out, size_t out_cap);

#endif
