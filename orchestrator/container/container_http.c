/* container_http.c — see container_http.h. */
#include "container_http.h"
#include "clock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "shim_client.h"

#define BODY_KEEP (64 * 1024)

int container_http(const char *shim_socket, const char *method, const char *path, const char *json_body,
		   int timeout_ms, int *status, struct berth_buf *body, struct berth_err *err)
{
	*status = 0;
	int fd = -1;
	if (shim_connect_container(shim_socket, timeout_ms < 5000 ? timeout_ms : 5000, &fd, err) < 0)
		return -1;
	_cleanup_close_ int conn = fd;
	struct berth_buf req = BERTH_BUF_INIT;
	size_t blen = json_body ? strlen(json_body) : 0;
	buf_printf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n", method, path);
	if (json_body)
		buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", blen, json_body);
	else
		buf_append_str(&req, "Content-Length: 0\r\n\r\n");
	size_t off = 0;
	while (off < req.len) {
		ssize_t n = send(conn, req.data + off, req.len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = errno;
			buf_free(&req);
			return berth_err_set(err, e, "sending %s %s to the container", method, path);
		}
		off += (size_t)n;
	}
	buf_free(&req);
	struct berth_buf in = BERTH_BUF_INIT;
	long long deadline = clock_now_ms() + timeout_ms;
	char chunk[8192];
	long long content_length = -1;
	size_t head_end = 0;
	int r = -1;
	for (;;) {
		long long left = deadline - clock_now_ms();
		if (left <= 0) {
			berth_err_set(err, ETIMEDOUT, "%s %s: the container did not answer within %d ms", method, path,
				      timeout_ms);
			goto out;
		}
		struct pollfd p = { .fd = conn, .events = POLLIN };
		int pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		ssize_t n = recv(conn, chunk, sizeof(chunk), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (head_end > 0)
				break;
			berth_err_set(err, errno, "%s %s", method, path);
			goto out;
		}
		if (n == 0)
			break;
		if (in.len < BODY_KEEP + 16384)
			buf_append(&in, chunk, (size_t)n);
		if (head_end == 0 && in.len > 0) {
			buf_append(&in, "", 1);
			in.len--;
			char *e = strstr(in.data, "\r\n\r\n");
			if (e != NULL) {
				head_end = (size_t)(e - in.data) + 4;
				char *cl = strcasestr(in.data, "\r\ncontent-length:");
				if (cl != NULL && cl < e)
					content_length = strtoll(cl + 17, NULL, 10);
			}
		}
		if (head_end > 0 && content_length >= 0 && in.len >= head_end + (size_t)content_length)
			break;
		if (in.len >= BODY_KEEP + 16384 && head_end > 0)
			break;
	}
	buf_append(&in, "", 1);
	in.len--;
	if (in.len == 0 || sscanf(in.data, "HTTP/1.%*d %d", status) != 1) {
		berth_err_set(err, EPROTO, "%s %s: the container did not answer HTTP", method, path);
		goto out;
	}
	if (body != NULL && head_end > 0 && head_end <= in.len) {
		size_t blen2 = in.len - head_end;
		if (content_length >= 0 && (size_t)content_length < blen2)
			blen2 = (size_t)content_length;
		if (blen2 > BODY_KEEP)
			blen2 = BODY_KEEP;
		buf_append(body, in.data + head_end, blen2);
	}
	r = 0;
out:
	buf_free(&in);
	return r;
}
