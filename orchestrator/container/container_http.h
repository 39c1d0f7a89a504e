/* container_http.h — one small HTTP/1.1 exchange with a container's port
 * through its shim (berthd's side of the /models API, CONTRACT.md §4):
 * request with Connection: close, answer read to EOF or Content-Length,
 * bounded in size (64 KiB of body kept) and time. */
#ifndef BERTH_CONTAINER_HTTP_H
#define BERTH_CONTAINER_HTTP_H

#include "buf.h"
#include "err.h"

/* *status = the HTTP status; body (may be NULL) gets the answer's body.
 * -1 when the container cannot be reached or does not answer HTTP. */
int container_http(const char *shim_socket, const char *method, const char *path, const char *json_body,
		   int timeout_ms, int *status, struct berth_buf *body, struct berth_err *err);

#endif
