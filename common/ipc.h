/* ipc.h — newline-delimited JSON messages over unix stream sockets, with
 * file descriptors passed as SCM_RIGHTS next to a message.
 *
 * Framing: one JSON document per line, UTF-8, no raw newlines inside (yajl
 * escapes them). A passed fd rides on the first byte of its message. Each
 * channel's message kinds are described in proto_*.h. */
#ifndef BERTH_IPC_H
#define BERTH_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "err.h"

#define IPC_MAX_MESSAGE (16u << 20) /* 16 MiB: control bodies are smaller */

/* Binds and listens (backlog 128), removing a stale socket file first;
 * mode is applied with chmod. Returns a CLOEXEC fd. */
int ipc_listen(const char *path, mode_t mode, struct berth_err *err);
/* Connects (blocking). Returns a CLOEXEC fd. */
int ipc_connect(const char *path, struct berth_err *err);
/* Connects, waiting at most timeout_ms when the listener's backlog is
 * full (SO_SNDTIMEO, which also stays on the socket for later sends).
 * Returns a CLOEXEC fd. */
int ipc_connect_timeout(const char *path, int timeout_ms, struct berth_err *err);
/* Sends one message (a '\n' is appended when missing), with fd_to_pass
 * attached when >= 0. For blocking sockets; handles partial writes and
 * EINTR; a send timeout (SO_SNDTIMEO) fails with ETIMEDOUT. */
int ipc_send(int sock, const char *msg, size_t len, int fd_to_pass, struct berth_err *err);

/* Reader keeps bytes past the current line for the next call. */
struct ipc_reader {
	int sock;
	struct berth_buf in;
	size_t consumed; /* bytes of `in` already returned */
	int fds[8];      /* received fds not yet handed out, in arrival order */
	size_t n_fds;
};
void ipc_reader_init(struct ipc_reader *r, int sock);
/* Blocking: reads until a full line. *line points into the reader (valid
 * until the next call), without the '\n', NUL-terminated. *fd (may be
 * NULL) gets the next received descriptor or -1. Returns 1 for a message,
 * 0 on clean EOF, -1 on error (including a line over IPC_MAX_MESSAGE). */
int ipc_read(struct ipc_reader *r, const char **line, size_t *len, int *fd, struct berth_err *err);
/* Non-blocking variant step for event loops: reads what is available
 * (sock must be O_NONBLOCK) and returns 1 when a full line is ready (same
 * outputs as ipc_read), 0 on EOF, -1 on error, -2 when more data is needed. */
int ipc_read_nonblock(struct ipc_reader *r, const char **line, size_t *len, int *fd, struct berth_err *err);
void ipc_reader_free(struct ipc_reader *r); /* closes unclaimed fds, not sock */

#endif
