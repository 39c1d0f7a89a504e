/* ipc.c — see ipc.h. */
#include "ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static int fill_addr(struct sockaddr_un *addr, const char *path, struct berth_err *err)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(addr->sun_path))
		return berth_err_set(err, ENAMETOOLONG,
				     "socket path %s is longer than %zu bytes; choose a shorter run directory",
				     path, sizeof(addr->sun_path) - 1);
	strcpy(addr->sun_path, path);
	return 0;
}

int ipc_listen(const char *path, mode_t mode, struct berth_err *err)
{
	struct sockaddr_un addr;
	if (fill_addr(&addr, path, err) < 0)
		return -1;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_err_set(err, errno, "socket");
	if (unlink(path) < 0 && errno != ENOENT)
		return berth_err_set(err, errno, "cannot remove stale socket %s", path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return berth_err_set(err, errno, "cannot bind %s", path);
	if (chmod(path, mode) < 0)
		return berth_err_set(err, errno, "cannot chmod %s", path);
	if (listen(fd, 128) < 0)
		return berth_err_set(err, errno, "cannot listen on %s", path);
	return berth_steal_fd(&fd);
}

int ipc_connect(const char *path, struct berth_err *err)
{
	struct sockaddr_un addr;
	if (fill_addr(&addr, path, err) < 0)
		return -1;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_err_set(err, errno, "socket");
	while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		if (errno != EINTR)
			return berth_err_set(err, errno, "cannot connect to %s", path);
	}
	return berth_steal_fd(&fd);
}

int ipc_connect_timeout(const char *path, int timeout_ms, struct berth_err *err)
{
	struct sockaddr_un addr;
	if (fill_addr(&addr, path, err) < 0)
		return -1;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_err_set(err, errno, "socket");
	if (timeout_ms < 1)
		timeout_ms = 1;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return berth_err_set(err, errno, "setsockopt SO_SNDTIMEO");
	while (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		if (errno == EAGAIN)
			return berth_err_set(err, ETIMEDOUT, "cannot connect to %s within %d ms: its listener is busy",
					     path, timeout_ms);
		if (errno != EINTR)
			return berth_err_set(err, errno, "cannot connect to %s", path);
	}
	return berth_steal_fd(&fd);
}

int ipc_send(int sock, const char *msg, size_t len, int fd_to_pass, struct berth_err *err)
{
	bool need_nl = len == 0 || msg[len - 1] != '\n';
	size_t total = len + (need_nl ? 1 : 0);
	size_t sent = 0;
	while (sent < total) {
		struct iovec iov[2];
		int n_iov = 0;
		if (sent < len)
			iov[n_iov++] = (struct iovec){ (void *)(msg + sent), len - sent };
		if (need_nl)
			iov[n_iov++] = (struct iovec){ (void *)"\n", 1 };
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} control;
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n_iov };
		if (sent == 0 && fd_to_pass >= 0) {
			memset(&control, 0, sizeof(control));
			mh.msg_control = control.buf;
			mh.msg_controllen = sizeof(control.buf);
			struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd_to_pass, sizeof(int));
		}
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) /* SO_SNDTIMEO ran out: the peer stopped reading */
				return berth_err_set(err, ETIMEDOUT, "sending a message: the peer is not reading");
			return berth_err_set(err, errno, "sending a message");
		}
		sent += (size_t)n;
		if (sent > len)
			need_nl = false, len = total = sent;
	}
	return 0;
}

void ipc_reader_init(struct ipc_reader *r, int sock)
{
	memset(r, 0, sizeof(*r));
	r->sock = sock;
}

static void reader_keep_fds(struct ipc_reader *r, struct msghdr *mh)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (r->n_fds < BERTH_ARRAY_SIZE(r->fds))
				r->fds[r->n_fds++] = fd;
			else
				close(fd);
		}
	}
}

/* Returns 1 with a line, or 0 when no full line is buffered. */
static int reader_take_line(struct ipc_reader *r, const char **line, size_t *len, int *fd)
{
	if (r->consumed > 0) {
		buf_consume(&r->in, r->consumed);
		r->consumed = 0;
	}
	char *nl = r->in.len ? memchr(r->in.data, '\n', r->in.len) : NULL;
	if (nl == NULL)
		return 0;
	*nl = '\0';
	*line = r->in.data;
	*len = (size_t)(nl - r->in.data);
	r->consumed = *len + 1;
	if (fd != NULL) {
		*fd = -1;
		if (r->n_fds > 0) {
			*fd = r->fds[0];
			memmove(r->fds, r->fds + 1, (r->n_fds - 1) * sizeof(int));
			r->n_fds--;
		}
	}
	return 1;
}

/* One recvmsg; returns bytes read, 0 on EOF, -1 on error (errno set). */
static ssize_t reader_recv(struct ipc_reader *r)
{
	if (buf_reserve(&r->in, 65536) < 0)
		return -1;
	union {
		char buf[CMSG_SPACE(sizeof(int) * 8)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { r->in.data + r->in.len, r->in.cap - r->in.len - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	ssize_t n = recvmsg(r->sock, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -1;
	reader_keep_fds(r, &mh);
	r->in.len += (size_t)n;
	r->in.data[r->in.len] = '\0';
	return n;
}

static int reader_step(struct ipc_reader *r, const char **line, size_t *len, int *fd, bool block,
		       struct berth_err *err)
{
	for (;;) {
		if (reader_take_line(r, line, len, fd))
			return 1;
		if (r->in.len > IPC_MAX_MESSAGE)
			return berth_err_set(err, EMSGSIZE, "message longer than %u bytes", IPC_MAX_MESSAGE);
		ssize_t n = reader_recv(r);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && !block)
				return -2;
			return berth_err_set(err, errno, "receiving a message");
		}
		if (n == 0) {
			if (r->in.len > 0)
				return berth_err_set(err, EPROTO, "connection closed in the middle of a message");
			return 0;
		}
	}
}

int ipc_read(struct ipc_reader *r, const char **line, size_t *len, int *fd, struct berth_err *err)
{
	return reader_step(r, line, len, fd, true, err);
}

int ipc_read_nonblock(struct ipc_reader *r, const char **line, size_t *len, int *fd, struct berth_err *err)
{
	return reader_step(r, line, len, fd, false, err);
}

void ipc_reader_free(struct ipc_reader *r)
{
	for (size_t i = 0; i < r->n_fds; i++)
		close(r->fds[i]);
	r->n_fds = 0;
	buf_free(&r->in);
	r->consumed = 0;
}
