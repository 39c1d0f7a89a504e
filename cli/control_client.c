/* control_client.c — see control_client.h. */
#include "control_client.h"

#include <string.h>

#include "buf.h"
#include "ipc.h"
#include "json.h"

static yajl_val roundtrip(const char *socket, const char *request, size_t len, struct berth_err *err)
{
	_cleanup_close_ int s = ipc_connect(socket, err);
	if (s < 0) {
		berth_err_prefix(err, "berthd is not reachable (is it running? --socket chooses the socket)");
		return NULL;
	}
	if (ipc_send(s, request, len, -1, err) < 0)
		return NULL;
	struct ipc_reader rd;
	ipc_reader_init(&rd, s);
	const char *line;
	size_t n;
	yajl_val v = NULL;
	int r = ipc_read(&rd, &line, &n, NULL, err);
	if (r == 0)
		berth_err_set(err, 0, "berthd closed the connection without answering");
	if (r == 1)
		v = json_parse(line, n, err);
	ipc_reader_free(&rd);
	return v;
}

int control_call(const char *socket, const char *operation, const char *body, yajl_val *reply,
		 struct berth_err *err)
{
	*reply = NULL;
	yajl_gen g = json_gen_new();
	struct berth_buf req = BERTH_BUF_INIT;
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "op", "control");
	json_gen_kv_str(g, "target", operation);
	json_gen_kv_str(g, "request_id", "berth-cli");
	json_gen_kv_str(g, "body", body);
	yajl_gen_map_close(g);
	if (json_gen_finish(g, &req) < 0) {
		buf_free(&req);
		return berth_err_set(err, 0, "cannot encode the request");
	}
	yajl_val v = roundtrip(socket, req.data, req.len, err);
	buf_free(&req);
	if (v == NULL)
		return -1;
	long long status = 0;
	const char *text = json_get_string(v, "body");
	json_get_int64(v, "status", &status);
	struct berth_err ignored;
	if (text != NULL)
		*reply = json_parse(text, strlen(text), &ignored);
	yajl_tree_free(v);
	return (int)status;
}

yajl_val control_request(const char *socket, const char *line, struct berth_err *err)
{
	return roundtrip(socket, line, strlen(line), err);
}

yajl_val control_simple(const char *socket, const char *op, struct berth_err *err)
{
	struct berth_buf req = BERTH_BUF_INIT;
	buf_printf(&req, "{\"op\":\"%s\"}", op);
	yajl_val v = roundtrip(socket, req.data, req.len, err);
	buf_free(&req);
	return v;
}
