/* errors.c — wording and rendering of error answers and Server-Timing. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"
#include "error_json.h"
#include "json.h"

int render_model_error(struct berth_buf *out, const struct model_error *me)
{
	struct berth_buf msg = BERTH_BUF_INIT, arn = BERTH_BUF_INIT;
	int r = 0;
	const char *kind = me->original_status >= 400 && me->original_status < 500 ? "client" : "server";
	if (me->message)
		r |= buf_append_str(&msg, me->message);
	else {
		r |= buf_printf(&msg, "Received %s error (%d) from %s with message \"", kind, me->original_status,
				me->hostname);
		r |= buf_append(&msg, me->original, me->original_len);
		r |= buf_printf(&msg, "\". See berth logs %s %s for more information.", me->endpoint, me->hostname);
	}
	r |= buf_printf(&arn, "arn:aws:logs:%s:%s:log-group:/aws/sagemaker/Endpoints/%s:log-stream:%s/%s", me->region,
			me->account, me->endpoint, me->variant, me->hostname);
	yajl_gen g = r == 0 ? json_gen_new() : NULL;
	if (!g) {
		r = -1;
		goto out;
	}
	if (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_str(g, "message") < 0 ||
	    error_json_gen_text(g, msg.data, msg.len) < 0 ||
	    json_gen_kv_int(g, "OriginalStatusCode", me->original_status) < 0 ||
	    json_gen_str(g, "OriginalMessage") < 0 ||
	    error_json_gen_text(g, me->original, me->original_len) < 0 ||
	    json_gen_str(g, "LogStreamArn") < 0 ||
	    error_json_gen_text(g, arn.data, arn.len) < 0 || yajl_gen_map_close(g) != yajl_gen_status_ok) {
		yajl_gen_free(g);
		r = -1;
		goto out;
	}
	r = json_gen_finish(g, out);
out:
	buf_free(&msg);
	buf_free(&arn);
	return r;
}

static int append_ms(struct berth_buf *out, const char *name, uint64_t ns)
{
	/* "%s;dur=%llu.%03llu" without printf: on every answer's path */
	unsigned us = (unsigned)((ns / 1000) % 1000);
	char frac[4] = { '.', (char)('0' + us / 100), (char)('0' + us / 10 % 10), (char)('0' + us % 10) };
	int r = buf_append_str(out, name);
	r |= buf_append(out, ";dur=", 5);
	r |= buf_append_u64(out, (unsigned long long)(ns / 1000000));
	r |= buf_append(out, frac, sizeof(frac));
	return r;
}

int render_server_timing(struct berth_buf *out, uint64_t route_ns, const struct timing_step *steps,
			 size_t n_steps, uint64_t total_ns)
{
	int r = append_ms(out, "route", route_ns);
	for (size_t i = 0; i < n_steps; i++) {
		r |= buf_append(out, ", ", 2);
		r |= append_ms(out, steps[i].name, steps[i].dur_ns);
	}
	r |= buf_append(out, ", ", 2);
	r |= append_ms(out, "total", total_ns);
	return r ? -1 : 0;
}

/* ---- putting them on a request ----------------------------------------- */

static void respond_rendered_retry(struct request *req, int status, const char *content_type,
				   const char *error_type, int rendered, const char *retry_after)
{
	request_respond_start(req, status);
	request_respond_header(req, "Content-Type", content_type);
	if (retry_after)
		request_respond_header(req, "Retry-After", retry_after);
	if (error_type) {
		char v[128];
		snprintf(v, sizeof(v), "%s:", error_type);
		request_respond_header(req, "x-amzn-ErrorType", v);
	}
	if (rendered < 0) {
		buf_reset(&req->resp_body);
		buf_append_str(&req->resp_body, "{\"message\":\"internal error rendering an error\"}");
	}
	request_respond_finish(req);
}

static void respond_rendered(struct request *req, int status, const char *content_type, const char *error_type,
			     int rendered)
{
	respond_rendered_retry(req, status, content_type, error_type, rendered, NULL);
}

/* An error body {"__type"?,"message"} from fmt, with its headers. */
static void respond_error_v(struct request *req, int status, const char *content_type, const char *body_type,
			    const char *error_type, const char *retry_after, const char *fmt, va_list ap)
	__attribute__((format(printf, 7, 0)));
static void respond_error_v(struct request *req, int status, const char *content_type, const char *body_type,
			    const char *error_type, const char *retry_after, const char *fmt, va_list ap)
{
	char msg[2048];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	buf_reset(&req->resp_body);
	int r = error_json_render(&req->resp_body, body_type, msg);
	respond_rendered_retry(req, status, content_type, error_type, r, retry_after);
}

void respond_busy(struct request *req, const char *retry_after, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	respond_error_v(req, 503, CONTENT_TYPE_JSON, NULL, "ServiceUnavailable", retry_after, fmt, ap);
	va_end(ap);
}

void respond_runtime_error(struct request *req, int status, const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	respond_error_v(req, status, CONTENT_TYPE_JSON, NULL, code, NULL, fmt, ap);
	va_end(ap);
}

void respond_control_error(struct request *req, int status, const char *type, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	respond_error_v(req, status, CONTENT_TYPE_AMZ_JSON, type, type, NULL, fmt, ap);
	va_end(ap);
}

void respond_message(struct request *req, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	respond_error_v(req, status, CONTENT_TYPE_JSON, NULL, NULL, NULL, fmt, ap);
	va_end(ap);
}

void respond_model_error(struct request *req, const struct model_error *me)
{
	buf_reset(&req->resp_body);
	int r = render_model_error(&req->resp_body, me);
	respond_rendered(req, 424, CONTENT_TYPE_JSON, "ModelError", r);
}
