/* container_http.c — see container_http.h. */
#include "container_http.h"

#include <errno.h>
#include <string.h>

#include "clock.h"
#include "http_client.h"
#include "proto_shim.h"
#include "shim_conn.h"

/* One request to the container through its shim, connect and answer
 * within timeout_ms. */
static int exchange(const char *shim_socket, const struct http_client_request *req, int timeout_ms, int *status,
		    struct berth_buf *body, struct berth_err *err)
{
	*status = 0;
	long long deadline = clock_now_ms() + timeout_ms;
	int fd = -1;
	int connect_ms = timeout_ms < CONTAINER_HTTP_CONNECT_TIMEOUT_MS ? timeout_ms : CONTAINER_HTTP_CONNECT_TIMEOUT_MS;
	if (shim_conn_open(shim_socket, SHIM_CONTAINER_PORT, connect_ms, &fd, err) < 0)
		return -1;
	_cleanup_close_ int conn = fd;
	long long left = deadline - clock_now_ms();
	return http_client_exchange(conn, req, left > 0 ? (int)left : 1, status, body, err);
}

int container_http(const char *shim_socket, const char *method, const char *path, const char *json_body,
		   int timeout_ms, int *status, struct berth_buf *body, struct berth_err *err)
{
	struct http_client_request req = {
		.method = method,
		.path = path,
		.content_type = json_body ? "application/json" : NULL,
		.body = json_body,
		.body_len = json_body ? strlen(json_body) : 0,
		.max_head = CONTAINER_HTTP_MAX_HEAD,
		.max_body = CONTAINER_HTTP_MAX_BODY,
	};
	return exchange(shim_socket, &req, timeout_ms, status, body, err);
}

int container_ping(const char *shim_socket, int timeout_ms, int *status, struct berth_err *err)
{
	return container_http(shim_socket, "GET", "/ping", NULL, timeout_ms, status, NULL, err);
}

int container_invoke(const char *shim_socket, const struct container_invocation *inv, int timeout_ms, int *status,
		     struct berth_buf *body, struct berth_err *err)
{
	*status = 0;
	struct berth_buf headers = BERTH_BUF_INIT;
	int r = 0;
	if (inv->accept)
		r |= buf_printf(&headers, "Accept: %s\r\n", inv->accept);
	if (inv->custom_attributes)
		r |= buf_printf(&headers, "X-Amzn-SageMaker-Custom-Attributes: %s\r\n", inv->custom_attributes);
	if (inv->inference_id)
		r |= buf_printf(&headers, "X-Amzn-SageMaker-Inference-Id: %s\r\n", inv->inference_id);
	if (r != 0) {
		buf_free(&headers);
		return berth_err_set(err, ENOMEM, "POST /invocations");
	}
	struct http_client_request req = {
		.method = "POST",
		.path = "/invocations",
		.content_type = inv->content_type ? inv->content_type : "application/octet-stream",
		.body = inv->body_len > 0 ? inv->body : "",
		.body_len = inv->body_len,
		.max_head = CONTAINER_HTTP_MAX_HEAD,
		.max_body = inv->max_body,
		.extra_headers = headers.data,
		.content_type_out = inv->content_type_out,
		.content_type_out_len = inv->content_type_out_len,
		.stop_fd = inv->stop_fd,
	};
	r = exchange(shim_socket, &req, timeout_ms, status, body, err);
	buf_free(&headers);
	return r;
}
