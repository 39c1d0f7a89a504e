/* tls.h — TLS on client connections (OpenSSL), and the transport seam
 * http1.c and http2.c read and write through.
 *
 * The certificate chain and key come from berthd on the route watch
 * ({"op":"tls","cert":"PEM…","key":"PEM…"}, a greeting before the first
 * route table and again on each SIGHUP): the router runs unprivileged and
 * never opens key files. Each push builds a new SSL_CTX and swaps it in;
 * connections keep the one they started with (OpenSSL counts references).
 * A bad push is logged and the previous context stays.
 *
 * Protocol: TLS 1.2 at least; ALPN h2 then http/1.1 in the server's
 * order; a client that offers neither, or no ALPN, speaks HTTP/1.1. No
 * renegotiation, no compression.
 *
 * A connection is handed here (tls_server_accept) by the HTTP/1.1 front
 * once its first byte shows a TLS handshake record (0x16), with the bytes
 * already read. The handshake runs on the router's loop without blocking,
 * bounded by ROUTER_HEADER_TIMEOUT_MS; it counts as a client connection
 * (cap, drain, teardown). When it completes, the ready callback
 * (tls_server_set_ready; main.c wires http1_tls_ready) gets the socket and
 * its struct tls_conn. Until a certificate has arrived a TLS client is
 * closed and that is logged at most once a second.
 *
 * struct tls_conn reads and writes like read(2) and write(2): a positive
 * count, 0 at the end of the stream (close_notify or EOF), or -1 with errno
 * EAGAIN when the socket would block (either way: the caller keeps its
 * EPOLLIN and EPOLLOUT interest as for a plain socket) or another errno on
 * a failure. A cleartext connection has no tls_conn (NULL): the callers
 * branch once, so the cleartext path makes the very same system calls as
 * without TLS. */
#ifndef BERTH_ROUTER_TLS_H
#define BERTH_ROUTER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "err.h"

#define TLS_RECORD_HANDSHAKE 0x16 /* the first byte of every TLS ClientHello */

struct server;
struct tls_server;
struct tls_conn;

/* Owns fd and t from then on. h2: ALPN selected h2. */
typedef void (*tls_ready_cb)(struct server *srv, int fd, struct tls_conn *t, bool h2);

/* OpenSSL's initialisation (it reads its configuration file and loads its
 * providers): once, before router_confine. */
int tls_global_init(struct berth_err *err);

/* NULL on ENOMEM. */
struct tls_server *tls_server_new(struct server *srv);
/* Frees the context; connections that hold it keep it. NULL is fine. */
void tls_server_free(struct tls_server *ts);
void tls_server_set_ready(struct tls_server *ts, tls_ready_cb ready);
/* Builds a context from a PEM certificate chain (leaf first) and its key
 * and swaps it in. 0, or -1 with err saying what is wrong (the previous
 * context stays). */
int tls_server_set_pem(struct tls_server *ts, const char *cert, size_t cert_len, const char *key, size_t key_len,
		       struct berth_err *err);
bool tls_server_has_cert(const struct tls_server *ts);
/* A line of the route watch: true when it was {"op":"tls",…} (installed,
 * or logged as refused; the line, which carries the private key, is
 * zeroed), false when it is something else (left as it was). */
bool tls_server_route_event(struct tls_server *ts, char *line, size_t len);
/* A client sent a TLS handshake record first: takes fd (accepted,
 * non-blocking); data/len are the bytes already read from it (copied). */
void tls_server_accept(struct tls_server *ts, int fd, const char *data, size_t len);

ssize_t tls_conn_read(struct tls_conn *t, void *buf, size_t len);
/* Bytes OpenSSL holds already (epoll will not report them). */
bool tls_conn_has_pending(const struct tls_conn *t);
ssize_t tls_conn_write(struct tls_conn *t, const void *buf, size_t len);
/* A small first buffer (a response head) is sent in one record with what
 * follows, up to 16 KiB. May write less than asked (like writev). */
ssize_t tls_conn_writev(struct tls_conn *t, const struct iovec *iov, int n);
/* Sends close_notify if the socket takes it now, frees; the fd stays open. */
void tls_conn_free(struct tls_conn *t);

#endif
