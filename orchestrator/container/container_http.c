/* container_http.c — see container_http.h. */
#include "container_http.h"

#include <string.h>

#include "clock.h"
#include "http_client.h"
#include "proto_shim.h"
#include "shim_conn.h"

int container_http(const char *shim_socket, const char *method, const char *path, const char *json_body,
		   int timeout_ms, int *status, struct berth_buf *body, struct berth_err *err)
{
	*status = 0;
	long long deadline = clock_now_ms() + timeout_ms;
	int fd = -1;
	int connect_ms = timeout_ms < CONTAINER_HTTP_CONNECT_TIMEOUT_MS ? timeout_ms : CONTAINER_HTTP_CONNECT_TIMEOUT_MS;
	if (shim_conn_open(shim_socket, SHIM_CONTAINER_PORT, connect_ms, &fd, err) < 0)
		return -1;
	_cleanup_close_ int conn = fd;
	long long left = deadline - clock_now_ms();
	struct http_client_request req = {
		.method = method,
		.path = path,
		.content_type = json_body ? "application/json" : NULL,
		.body = json_body,
		.body_len = json_body ? strlen(json_body) : 0,
		.max_head = CONTAINER_HTTP_MAX_HEAD,
		.max_body = CONTAINER_HTTP_MAX_BODY,
	};
	return http_client_exchange(conn, &req, left > 0 ? (int)left : 1, status, body, err);
}

int container_ping(const char *shim_socket, int timeout_ms, int *status, struct berth_err *err)
{
	return container_http(shim_socket, "GET", "/ping", NULL, timeout_ms, status, NULL, err);
}
