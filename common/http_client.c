/* http_client.c — see http_client.h. */
#include "http_client.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "clock.h"
#include "http_response.h"

struct exchange {
	int status;
	struct berth_buf *body;
	int oom; /* errno of a failed append */
	char *content_type;       /* NULL: not wanted */
	size_t content_type_len;
};

static int on_header(void *user_data, const char *name, size_t name_len, const char *value, size_t value_len)
{
	struct exchange *x = user_data;
	if (x->content_type != NULL && name_len == 12 && strncasecmp(name, "content-type", 12) == 0) {
		size_t n = value_len < x->content_type_len - 1 ? value_len : x->content_type_len - 1;
		memcpy(x->content_type, value, n);
		x->content_type[n] = '\0';
	}
	return 0;
}

static int on_head(void *user_data, int status, uint64_t content_length, bool chunked)
{
	struct exchange *x = user_data;
	x->status = status;
	if (x->body != NULL && content_length != HTTP_RESPONSE_NO_LENGTH && content_length > 0 &&
	    buf_reserve(x->body, (size_t)content_length) < 0) {
		x->oom = ENOMEM;
		return -1;
	}
	return 0;
}

static int on_body(void *user_data, const char *at, size_t len)
{
	struct exchange *x = user_data;
	if (x->body != NULL && buf_append(x->body, at, len) < 0) {
		x->oom = ENOMEM;
		return -1;
	}
	return 0;
}

static const struct http_response_callbacks callbacks = { .on_head = on_head, .on_body = on_body };
static const struct http_response_callbacks callbacks_with_headers = { .on_header = on_header, .on_head = on_head,
									.on_body = on_body };

/* Waits for events on conn until deadline, or until the request's stop_fd
 * is readable. 1: ready; 0: deadline passed; -1: errno (ECANCELED: stop). */
static int wait_for(int conn, short events, long long deadline, const struct http_client_request *req)
{
	for (;;) {
		long long left = deadline - clock_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p[2] = { { .fd = conn, .events = events },
				       { .fd = req->stop_fd ? *req->stop_fd : -1, .events = POLLIN } };
		int r = poll(p, 2, left > 60000 ? 60000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0 && (p[1].revents & POLLIN)) {
			errno = ECANCELED;
			return -1;
		}
		if (r != 0)
			return r < 0 ? -1 : 1;
	}
}

static int send_all(int conn, const char *data, size_t len, const struct http_client_request *req,
		    long long deadline, int timeout_ms, struct berth_err *err)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(conn, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = wait_for(conn, POLLOUT, deadline, req);
			if (w == 0)
				return berth_err_set(err, ETIMEDOUT, "%s %s: the request could not be sent within %d ms",
						     req->method, req->path, timeout_ms);
			if (w < 0)
				return berth_err_set(err, errno, "%s %s: waiting to send", req->method, req->path);
			continue;
		}
		return berth_err_set(err, n < 0 ? errno : EPIPE, "%s %s: sending the request", req->method,
				     req->path);
	}
	return 0;
}

static int send_request(int conn, const struct http_client_request *req, long long deadline, int timeout_ms,
			struct berth_err *err)
{
	struct berth_buf head = BERTH_BUF_INIT;
	int r = buf_printf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", req->method, req->path,
			   req->host ? req->host : "localhost");
	if (r == 0 && req->content_type != NULL)
		r = buf_printf(&head, "Content-Type: %s\r\n", req->content_type);
	if (r == 0 && req->extra_headers != NULL)
		r = buf_append_str(&head, req->extra_headers);
	if (r == 0 && (req->body != NULL || strcmp(req->method, "GET") != 0))
		r = buf_printf(&head, "Content-Length: %zu\r\n", req->body ? req->body_len : 0);
	if (r == 0)
		r = buf_append_str(&head, "\r\n");
	if (r < 0) {
		buf_free(&head);
		return berth_err_set(err, ENOMEM, "%s %s", req->method, req->path);
	}
	r = send_all(conn, head.data, head.len, req, deadline, timeout_ms, err);
	buf_free(&head);
	if (r == 0 && req->body != NULL)
		r = send_all(conn, req->body, req->body_len, req, deadline, timeout_ms, err);
	return r;
}

/* Reads and parses until the answer is complete. */
static int read_answer(int conn, struct http_response *parser, struct exchange *x,
		       const struct http_client_request *req, long long deadline, int timeout_ms,
		       struct berth_err *err)
{
	char chunk[16384];
	for (;;) {
		ssize_t n = recv(conn, chunk, sizeof(chunk), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int w = wait_for(conn, POLLIN, deadline, req);
			if (w == 0)
				return berth_err_set(err, ETIMEDOUT, "%s %s: no complete response within %d ms",
						     req->method, req->path, timeout_ms);
			if (w < 0)
				return berth_err_set(err, errno, "%s %s: waiting for the response", req->method,
						     req->path);
			continue;
		}
		if (n < 0) {
			if (errno != ECONNRESET)
				return berth_err_set(err, errno, "%s %s: reading the response", req->method, req->path);
			n = 0; /* a reset after a close-delimited body still ends it: let the parser judge */
		}
		enum http_response_result res = http_response_feed(parser, chunk, (size_t)n, NULL);
		if (res == HTTP_RESPONSE_DONE)
			return 0;
		if (res == HTTP_RESPONSE_MORE)
			continue;
		if (res == HTTP_RESPONSE_STOPPED && x->oom)
			return berth_err_set(err, x->oom, "%s %s: keeping the response", req->method, req->path);
		char what[256];
		http_response_describe(parser, res, what, sizeof(what));
		int code = res == HTTP_RESPONSE_HEAD_TOO_LARGE || res == HTTP_RESPONSE_BODY_TOO_LARGE ? EMSGSIZE
											: EPROTO;
		berth_err_set(err, 0, "%s %s: %s", req->method, req->path, what);
		if (err != NULL) /* the kind for callers; the text above says it in words */
			err->errnum = code;
		return -1;
	}
}

int http_client_exchange(int conn, const struct http_client_request *req, int timeout_ms, int *status,
			 struct berth_buf *body, struct berth_err *err)
{
	*status = 0;
	long long deadline = clock_now_ms() + timeout_ms;
	if (send_request(conn, req, deadline, timeout_ms, err) < 0)
		return -1;
	struct exchange x = { .status = 0, .body = body, .oom = 0 };
	if (req->content_type_out != NULL && req->content_type_out_len > 0) {
		x.content_type = req->content_type_out;
		x.content_type_len = req->content_type_out_len;
		x.content_type[0] = '\0';
	}
	size_t body_start = body ? body->len : 0;
	struct http_response parser;
	http_response_init(&parser, x.content_type ? &callbacks_with_headers : &callbacks, &x, req->max_head,
			   req->max_body);
	int r = read_answer(conn, &parser, &x, req, deadline, timeout_ms, err);
	http_response_free(&parser);
	if (r < 0) {
		if (body != NULL && body->data != NULL) {
			body->len = body_start; /* no half answer */
			body->data[body->len] = '\0';
		}
		return -1;
	}
	*status = x.status;
	return 0;
}
