/* shim_conn.h — getting a socket connected to a container's port from its
 * berth-shim (proto_shim.h "connect"): the one implementation of both
 * ends of the client side. The request is encoded and the answer decoded
 * here; berthd uses the blocking shim_conn_open(), an event loop (the
 * router) writes shim_conn_request() on its own shim connection and hands
 * each answer line it reads (ipc_read_nonblock, with the passed fd) to
 * shim_conn_answer(). */
#ifndef BERTH_SHIM_CONN_H
#define BERTH_SHIM_CONN_H

#include <stddef.h>

#include "err.h"

#define SHIM_CONN_REQUEST_MAX 48 /* longest request line, '\n' and NUL included */

/* Writes the request line for port ('\n'-terminated, NUL after) into out.
 * Returns its length without the NUL, or -1 (err) when port is not a TCP
 * port or out is smaller than SHIM_CONN_REQUEST_MAX. */
int shim_conn_request(int port, char *out, size_t size, struct berth_err *err);

/* Decodes the shim's answer to a connect request: line/len as ipc_read
 * returns them, fd the descriptor that came with it (-1: none), which
 * this call takes over. 0 with *conn = fd (a TCP socket connected to the
 * container, blocking, CLOEXEC when read with ipc.h); or -1 with fd
 * closed and err saying why: the shim's own message ("connect to
 * 127.0.0.1:8080 in container ID: Connection refused"), an answer without
 * a socket, or one that is not the protocol's. shim_socket names the shim
 * in those messages. */
int shim_conn_answer(const char *shim_socket, const char *line, size_t len, int fd, int *conn,
		     struct berth_err *err);

/* Blocking, for berthd: connects to the shim's socket, asks for port and
 * waits for the answer, all within timeout_ms (ETIMEDOUT after). *conn as
 * shim_conn_answer gives it; the caller closes it. */
int shim_conn_open(const char *shim_socket, int port, int timeout_ms, int *conn, struct berth_err *err);

#endif
