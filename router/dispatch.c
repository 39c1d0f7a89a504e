/* dispatch.c — request classification and the router's own answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "async_invoke.h"
#include "async_metrics.h"
#include "clock.h"
#include "auth.h"
#include "control.h"
#include "dispatch.h"
#include "mme.h"
#include "errors.h"
#include "invoke.h"
#include "log.h"
#include "server.h"
#include "sigv4.h"

#define AMZ_TARGET_PREFIX "SageMaker."

static size_t path_length(const char *path)
{
	const char *q = strpbrk(path, "?#");
	return q ? (size_t)(q - path) : strlen(path);
}

struct dispatch_target dispatch_classify(enum request_method method, const char *path, const char *amz_target)
{
	struct dispatch_target t = { DISPATCH_NOT_FOUND, NULL, 0, false, false };
	size_t len = path_length(path);
	bool get = method == REQUEST_GET || method == REQUEST_HEAD;
	if (get && len == 5 && memcmp(path, "/ping", 5) == 0) {
		t.kind = DISPATCH_PING;
		return t;
	}
	if (get && len == 8 && memcmp(path, "/metrics", 8) == 0) {
		t.kind = DISPATCH_METRICS;
		return t;
	}
	if (method == REQUEST_POST && len == 1 && path[0] == '/' && amz_target) {
		t.kind = DISPATCH_CONTROL;
		t.name = amz_target;
		t.name_len = strlen(amz_target);
		return t;
	}
	static const char prefix[] = "/endpoints/", suffix[] = "/invocations",
			  stream_suffix[] = "/invocations-response-stream";
	size_t pl = sizeof(prefix) - 1, sl = sizeof(suffix) - 1, ssl = sizeof(stream_suffix) - 1;
	if (method != REQUEST_POST || len <= pl || memcmp(path, prefix, pl) != 0)
		return t;
	static const char async_suffix[] = "/async-invocations";
	size_t asl = sizeof(async_suffix) - 1;
	bool stream = len > pl + ssl && memcmp(path + len - ssl, stream_suffix, ssl) == 0;
	bool async = !stream && len > pl + asl && memcmp(path + len - asl, async_suffix, asl) == 0;
	if (!stream && !async && !(len > pl + sl && memcmp(path + len - sl, suffix, sl) == 0))
		return t;
	const char *name = path + pl;
	size_t name_len = len - pl - (stream ? ssl : async ? asl : sl);
	if (memchr(name, '/', name_len) == NULL) {
		t.kind = DISPATCH_INVOKE;
		t.name = name;
		t.name_len = name_len;
		t.stream = stream;
		t.async = async;
	}
	return t;
}

static enum metrics_kind kind_metric(enum dispatch_kind k)
{
	switch (k) {
	case DISPATCH_PING: return METRICS_KIND_PING;
	case DISPATCH_METRICS: return METRICS_KIND_METRICS;
	case DISPATCH_CONTROL: return METRICS_KIND_CONTROL;
	case DISPATCH_INVOKE: return METRICS_KIND_INVOKE;
	case DISPATCH_NOT_FOUND: break;
	}
	return METRICS_KIND_OTHER;
}

static struct dispatch_target classify_request(const struct request *req)
{
	return dispatch_classify(req->method, request_path(req), request_header(req, "x-amz-target", NULL));
}

/* A control call or an invocation whose head alone is refused (auth.h):
 * keep the refusal, answered by dispatch_refuse_early. */
static void check_head(struct server *srv, struct request *req)
{
	struct sigv4_error e;
	if (!router_auth_refused_at_head(srv, req, &e))
		return;
	req->refusal = malloc(sizeof(*req->refusal));
	if (req->refusal)
		*req->refusal = e;
}

void dispatch_refuse_early(struct server *srv, struct request *req)
{
	struct dispatch_target t = classify_request(req);
	srv->metrics.requests[kind_metric(t.kind)]++;
	router_auth_refuse(req, req->refusal, t.kind == DISPATCH_INVOKE);
}

void dispatch_head(struct server *srv, struct request *req)
{
	struct dispatch_target t = classify_request(req);
	if (t.kind == DISPATCH_CONTROL || t.kind == DISPATCH_INVOKE)
		check_head(srv, req);
	switch (t.kind) {
	case DISPATCH_CONTROL: req->body_limit = ROUTER_CONTROL_MAX_BODY; break;
	case DISPATCH_INVOKE:
		req->body_limit = srv->cfg.max_body_bytes;
		if (srv->auth && router_auth_hashes_bodies(srv->auth) && request_hash_body(req) < 0)
			log_error("request %s: out of memory for its body hash; its signature will not match", req->id);
		break;
	default: req->body_limit = ROUTER_OTHER_MAX_BODY; break;
	}
}

void dispatch_body_too_large(struct server *srv, struct request *req, size_t size)
{
	struct dispatch_target t = classify_request(req);
	srv->metrics.requests[kind_metric(t.kind)]++;
	req->body_too_large = true;
	switch (t.kind) {
	case DISPATCH_CONTROL:
		respond_control_error(req, 413, "ValidationException",
				      "Request body of %zu bytes or more exceeds the maximum of %u bytes for a control-plane call.",
				      size, ROUTER_CONTROL_MAX_BODY);
		return;
	case DISPATCH_INVOKE:
		respond_runtime_error(req, 400, "ValidationError",
				      "Request body of %zu bytes or more exceeds the maximum of %zu bytes.", size,
				      srv->cfg.max_body_bytes);
		return;
	default:
		respond_message(req, 413, "Request body of %zu bytes or more is too large.", size);
	}
}

static void answer_metrics(struct server *srv, struct request *req)
{
	request_respond_start(req, 200);
	request_respond_header(req, "Content-Type", "text/plain; version=0.0.4");
	buf_reset(&req->resp_body);
	srv->metrics.buffered_bytes = (int64_t)srv->buffered.used;
	metrics_render(&srv->metrics, &req->resp_body);
	if (srv->mme)
		rmme_render_metrics(srv->mme, &req->resp_body);
	async_metrics_render(srv->async_metrics, clock_epoch_seconds(), &req->resp_body);
	request_respond_finish(req);
}

static void invoke_authorized(struct server *srv, struct request *req, const char *endpoint)
{
	invoker_start(srv->invoker, req, endpoint);
}

static void invoke_async_authorized(struct server *srv, struct request *req, const char *endpoint)
{
	async_invoke_start(srv, req, endpoint);
}

static void invoke_stream_authorized(struct server *srv, struct request *req, const char *endpoint)
{
	invoker_start_stream(srv->invoker, req, endpoint);
}

void dispatch_request(struct server *srv, struct request *req)
{
	struct dispatch_target t = classify_request(req);
	srv->metrics.requests[kind_metric(t.kind)]++;
	if (srv->debug)
		log_debug("request %s %s (kind %d, %zu body bytes)", req->id, request_path(req), (int)t.kind, req->body.len);
	switch (t.kind) {
	case DISPATCH_PING:
		request_respond(req, 200, "text/plain", NULL, 0);
		return;
	case DISPATCH_METRICS:
		answer_metrics(srv, req);
		return;
	case DISPATCH_CONTROL: {
		size_t pl = sizeof(AMZ_TARGET_PREFIX) - 1;
		if (t.name_len <= pl || strncmp(t.name, AMZ_TARGET_PREFIX, pl) != 0) {
			respond_control_error(req, 400, "UnknownOperationException", "Unknown operation %s.", t.name);
			return;
		}
		if (router_auth_control(srv, req))
			control_start(srv, req, t.name + pl);
		return;
	}
	case DISPATCH_INVOKE: {
		char name[256];
		if (t.name_len >= sizeof(name)) {
			respond_runtime_error(req, 400, "ValidationError", "Endpoint name of %zu characters is too long.",
					      t.name_len);
			return;
		}
		memcpy(name, t.name, t.name_len);
		name[t.name_len] = '\0';
		router_auth_invoke(srv, req, name, t.stream ? invoke_stream_authorized
						   : t.async ? invoke_async_authorized : invoke_authorized);
		return;
	}
	case DISPATCH_NOT_FOUND:
		break;
	}
	respond_message(req, 404, "No route for %s %.200s: use POST / (X-Amz-Target: SageMaker.*), POST /endpoints/NAME/invocations(-response-stream), POST /endpoints/NAME/async-invocations, GET /ping or GET /metrics.",
			req->method == REQUEST_GET ? "GET" : req->method == REQUEST_POST ? "POST"
			: req->method == REQUEST_HEAD ? "HEAD" : "this method on", request_path(req));
}
