/* shim_conn.c — see shim_conn.h. */
#include "shim_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "clock.h"
#include "ipc.h"
#include "json.h"

int shim_conn_request(int port, char *out, size_t size, struct berth_err *err)
{
	if (port < 1 || port > 65535)
		return berth_err_set(err, EINVAL, "port %d is not a TCP port (1-65535)", port);
	if (size < SHIM_CONN_REQUEST_MAX)
		return berth_err_set(err, ENOBUFS, "a shim connect request needs %d bytes", SHIM_CONN_REQUEST_MAX);
	return snprintf(out, size, "{\"op\":\"connect\",\"port\":%d}\n", port);
}

int shim_conn_answer(const char *shim_socket, const char *line, size_t len, int fd, int *conn,
		     struct berth_err *err)
{
	_cleanup_close_ int passed = fd;
	*conn = -1;
	struct berth_err parse_err;
	yajl_val reply = json_parse(line, len, &parse_err);
	if (reply == NULL || !YAJL_IS_OBJECT(reply)) {
		if (reply != NULL)
			yajl_tree_free(reply);
		return berth_err_set(err, EPROTO, "the shim at %s answered connect with something that is not its protocol",
				     shim_socket);
	}
	bool ok = false;
	if (!json_get_bool(reply, "ok", &ok) || !ok) {
		const char *why = json_get_string(reply, "error");
		if (why != NULL)
			berth_err_set(err, 0, "%s", why);
		else
			berth_err_set(err, EPROTO, "the shim at %s refused connect without saying why", shim_socket);
		yajl_tree_free(reply);
		return -1;
	}
	yajl_tree_free(reply);
	if (passed < 0)
		return berth_err_set(err, EPROTO, "the shim at %s answered connect without a socket", shim_socket);
	*conn = berth_steal_fd(&passed);
	return 0;
}

int shim_conn_open(const char *shim_socket, int port, int timeout_ms, int *conn, struct berth_err *err)
{
	*conn = -1;
	long long deadline = clock_now_ms() + timeout_ms;
	char request[SHIM_CONN_REQUEST_MAX];
	int len = shim_conn_request(port, request, sizeof(request), err);
	if (len < 0)
		return -1;
	_cleanup_close_ int s = ipc_connect_timeout(shim_socket, timeout_ms, err);
	if (s < 0)
		return -1;
	/* non-blocking from here: every wait below is a poll against the deadline */
	int flags = fcntl(s, F_GETFL);
	if (flags < 0 || fcntl(s, F_SETFL, flags | O_NONBLOCK) < 0)
		return berth_err_set(err, errno, "fcntl on the connection to %s", shim_socket);
	if (ipc_send(s, request, (size_t)len, -1, err) < 0)
		return berth_err_prefix(err, "asking the shim at %s for a connection", shim_socket);
	struct ipc_reader rd;
	ipc_reader_init(&rd, s);
	int r = -1;
	for (;;) {
		const char *line;
		size_t line_len;
		int fd = -1;
		int got = ipc_read_nonblock(&rd, &line, &line_len, &fd, err);
		if (got == 1) {
			r = shim_conn_answer(shim_socket, line, line_len, fd, conn, err);
			break;
		}
		if (got == 0) {
			berth_err_set(err, 0, "the shim at %s closed the connection without answering connect",
				      shim_socket);
			break;
		}
		if (got == -1) {
			berth_err_prefix(err, "the shim at %s", shim_socket);
			break;
		}
		long long left = deadline - clock_now_ms();
		if (left <= 0) {
			berth_err_set(err, ETIMEDOUT, "the shim at %s did not answer connect within %d ms", shim_socket,
				      timeout_ms);
			break;
		}
		struct pollfd p = { .fd = s, .events = POLLIN };
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
			berth_err_set(err, errno, "waiting for the shim at %s", shim_socket);
			break;
		}
	}
	ipc_reader_free(&rd);
	return r;
}
