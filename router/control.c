/* control.c — asynchronous control-plane calls to berthd. */
#include <string.h>

#include "berthd_call.h"
#include "control.h"
#include "errors.h"
#include "json.h"
#include "log.h"
#include "server.h"

/* The signed request, as received, for berthd to verify: method, path
 * and every header (berthd builds the canonical request itself). */
static int render_signed(yajl_gen g, const struct request *req)
{
	if (json_gen_kv_str(g, "method", req->method == REQUEST_POST ? "POST" : req->method == REQUEST_GET ? "GET"
					  : req->method == REQUEST_HEAD ? "HEAD" : "OTHER") < 0 ||
	    json_gen_str(g, "path") < 0 || json_gen_strn(g, request_path(req), req->path.len ? req->path.len : 1) < 0 ||
	    json_gen_str(g, "headers") < 0 || yajl_gen_array_open(g) != yajl_gen_status_ok)
		return -1;
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct request_header *h = &req->headers[i];
		if (yajl_gen_array_open(g) != yajl_gen_status_ok ||
		    json_gen_strn(g, request_str(req, h->name), h->name.len) < 0 ||
		    json_gen_strn(g, request_str(req, h->value), h->value.len) < 0 ||
		    yajl_gen_array_close(g) != yajl_gen_status_ok)
			return -1;
	}
	return yajl_gen_array_close(g) == yajl_gen_status_ok ? 0 : -1;
}

int control_render_call(struct berth_buf *out, const struct request *req, const char *operation,
			const char *request_id, const char *body, size_t body_len)
{
	yajl_gen g = json_gen_new();
	if (!g)
		return -1;
	if (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_kv_str(g, "op", "control") < 0 ||
	    json_gen_kv_str(g, "target", operation) < 0 || json_gen_kv_str(g, "request_id", request_id) < 0 ||
	    (req && render_signed(g, req) < 0) ||
	    json_gen_str(g, "body") < 0 || json_gen_strn(g, body ? body : "", body_len) < 0 ||
	    yajl_gen_map_close(g) != yajl_gen_status_ok) {
		yajl_gen_free(g);
		return -1;
	}
	if (json_gen_finish(g, out) < 0)
		return -1;
	return buf_append(out, "\n", 1);
}

static void call_cancel(void *arg) { berthd_call_cancel(arg); }

static void call_done(void *data, enum berthd_call_outcome outcome, const char *line, size_t len, const char *detail)
{
	struct request *req = data;
	switch (outcome) {
	case BERTHD_CALL_UNREACHABLE:
		respond_control_error(req, 503, "ServiceUnavailable", "%s", detail);
		return;
	case BERTHD_CALL_CLOSED:
		respond_control_error(req, 503, "ServiceUnavailable",
				      "berthd closed the connection without answering (%s); it may be restarting, try again",
				      detail);
		return;
	case BERTHD_CALL_TIMED_OUT:
		respond_control_error(req, 503, "ServiceUnavailable", "berthd did not answer within %d s; try again",
				      CONTROL_TIMEOUT_MS / 1000);
		return;
	case BERTHD_CALL_OK:
		break;
	}
	struct berth_err err;
	yajl_val v = json_parse(line, len, &err);
	long long status = 0;
	const char *body = v ? json_get_string(v, "body") : NULL;
	if (!v || !json_get_int64(v, "status", &status) || status < 100 || status > 599 || !body) {
		if (v)
			yajl_tree_free(v);
		log_error("malformed control reply from berthd: %.200s", line);
		respond_control_error(req, 500, "InternalFailure", "berthd sent a malformed reply");
		return;
	}
	request_respond(req, (int)status, CONTENT_TYPE_AMZ_JSON, body, strlen(body));
	yajl_tree_free(v);
}

void control_start(struct server *srv, struct request *req, const char *operation)
{
	struct berth_buf line = BERTH_BUF_INIT;
	if (control_render_call(&line, req, operation, req->id, req->body.data, req->body.len) < 0) {
		buf_free(&line);
		respond_control_error(req, 400, "SerializationException", "The request body is not valid UTF-8 JSON.");
		return;
	}
	struct berthd_call *c = berthd_call_start(srv, line.data, line.len, true, CONTROL_TIMEOUT_MS, call_done, req);
	buf_free(&line);
	if (!c) {
		respond_control_error(req, 500, "InternalFailure", "out of memory");
		return;
	}
	request_set_cancel(req, call_cancel, c);
}
