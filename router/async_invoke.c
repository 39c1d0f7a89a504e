/* async_invoke.c — see async_invoke.h. */
#include "async_invoke.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berthd_call.h"
#include "errors.h"
#include "json.h"
#include "log.h"
#include "request.h"
#include "server.h"

#define INPUT_PATTERN "^(https|s3)://([^/]+)/?(.*)$"
#define INFERENCE_ID_PATTERN "\\A\\S[\\p{Print}]*\\z"
#define EXTENSION_PATTERN "^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$"
#define FILENAME_PATTERN "^(?!.*\\..*\\.)[a-zA-Z0-9][a-zA-Z0-9-_\\.]*$"

struct checks {
	struct berth_buf *why;
	int n;
};

__attribute__((format(printf, 4, 5))) static void invalid(struct checks *c, const char *value, const char *member,
							  const char *fmt, ...)
{
	buf_append_str(c->why, c->n++ ? "; " : "");
	if (value)
		buf_printf(c->why, "Value '%.200s' at '%s' failed to satisfy constraint: ", value, member);
	else
		buf_printf(c->why, "Value null at '%s' failed to satisfy constraint: ", member);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(c->why, fmt, ap);
	va_end(ap);
}

static bool printable_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/* A header of printable ASCII, at most max bytes. */
static void check_text(struct checks *c, const char *v, const char *member, size_t max)
{
	if (v == NULL)
		return;
	if (strlen(v) > max)
		invalid(c, v, member, "Member must have length less than or equal to %zu", max);
	if (!printable_ascii(v))
		invalid(c, v, member, "Member must satisfy regular expression pattern: \\p{ASCII}*");
}

static bool input_ok(const char *s)
{
	const char *rest = strncmp(s, "s3://", 5) == 0 ? s + 5 : strncmp(s, "https://", 8) == 0 ? s + 8 : NULL;
	return rest && rest[0] != '\0' && rest[0] != '/' && printable_ascii(s);
}

static bool extension_ok(const char *s)
{
	if (s[0] == '\0' || strncmp(s, "s3:", 3) == 0 || strncmp(s, "https:", 6) == 0)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr("!_.*'()/-", *s)))
			return false;
	return true;
}

static bool filename_ok(const char *s)
{
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	int dots = 0;
	for (; *s; s++) {
		if (*s == '.')
			dots++;
		else if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
			   *s == '-' || *s == '_'))
			return false;
	}
	return dots <= 1;
}

/* An integer header in min..max; -1 when absent, -2 when invalid (recorded). */
static long long check_int(struct checks *c, const char *v, const char *member, long long min, long long max)
{
	if (v == NULL)
		return -1;
	char *end = NULL;
	long long n = strtoll(v, &end, 10);
	if (v[0] == '\0' || *end != '\0' || strlen(v) > 12) {
		invalid(c, v, member, "Member must be an integer");
		return -2;
	}
	if (n < min) {
		invalid(c, v, member, "Member must have value greater than or equal to %lld", min);
		return -2;
	}
	if (n > max) {
		invalid(c, v, member, "Member must have value less than or equal to %lld", max);
		return -2;
	}
	return n;
}

int async_invoke_render(const char *endpoint, async_header_fn get, const void *ctx, struct berth_buf *line,
			struct berth_buf *why)
{
	struct berth_buf errors = BERTH_BUF_INIT;
	struct checks c = { &errors, 0 };
	const char *input = get(ctx, "x-amzn-sagemaker-inputlocation");
	const char *ct = get(ctx, "x-amzn-sagemaker-content-type"), *accept = get(ctx, "x-amzn-sagemaker-accept");
	const char *ca = get(ctx, "x-amzn-sagemaker-custom-attributes");
	const char *iid = get(ctx, "x-amzn-sagemaker-inference-id");
	const char *ext = get(ctx, "x-amzn-sagemaker-s3outputpathextension");
	const char *fname = get(ctx, "x-amzn-sagemaker-filename");
	if (input == NULL) {
		invalid(&c, NULL, "inputLocation", "Member must not be null");
	} else {
		if (strlen(input) < 1)
			invalid(&c, input, "inputLocation", "Member must have length greater than or equal to 1");
		else if (strlen(input) > 1024)
			invalid(&c, input, "inputLocation", "Member must have length less than or equal to 1024");
		if (input[0] != '\0' && !input_ok(input))
			invalid(&c, input, "inputLocation", "Member must satisfy regular expression pattern: %s",
				INPUT_PATTERN);
	}
	check_text(&c, ct, "contentType", 1024);
	check_text(&c, accept, "accept", 1024);
	check_text(&c, ca, "customAttributes", 1024);
	if (iid != NULL) {
		if (strlen(iid) < 1 || strlen(iid) > 64)
			invalid(&c, iid, "inferenceId", "Member must have length %s",
				strlen(iid) < 1 ? "greater than or equal to 1" : "less than or equal to 64");
		else if (iid[0] == ' ' || !printable_ascii(iid))
			invalid(&c, iid, "inferenceId", "Member must satisfy regular expression pattern: %s",
				INFERENCE_ID_PATTERN);
	}
	if (ext != NULL && strlen(ext) > 512)
		invalid(&c, ext, "s3OutputPathExtension", "Member must have length less than or equal to 512");
	else if (ext != NULL && !extension_ok(ext))
		invalid(&c, ext, "s3OutputPathExtension", "Member must satisfy regular expression pattern: %s",
			EXTENSION_PATTERN);
	if (fname != NULL && strlen(fname) > 32)
		invalid(&c, fname, "filename", "Member must have length less than or equal to 32");
	else if (fname != NULL && !filename_ok(fname))
		invalid(&c, fname, "filename", "Member must satisfy regular expression pattern: %s", FILENAME_PATTERN);
	long long ttl = check_int(&c, get(ctx, "x-amzn-sagemaker-requestttlseconds"), "requestTTLSeconds", 60, 21600);
	long long timeout = check_int(&c, get(ctx, "x-amzn-sagemaker-invocationtimeoutseconds"),
				      "invocationTimeoutSeconds", 1, 3600);
	if (c.n > 0) {
		buf_printf(why, "%d validation error%s detected: %s", c.n, c.n == 1 ? "" : "s",
			   errors.data ? errors.data : "");
		buf_free(&errors);
		return -1;
	}
	buf_free(&errors);
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return -1;
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "op", "async_submit");
	json_gen_kv_str(g, "endpoint", endpoint);
	json_gen_kv_str(g, "input", input);
	const char *keys[] = { "content_type", "accept", "custom_attributes", "inference_id", "output_extension",
			       "filename" };
	const char *vals[] = { ct, accept, ca, iid, ext, fname };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (vals[i])
			json_gen_kv_str(g, keys[i], vals[i]);
	if (ttl >= 0)
		json_gen_kv_int(g, "ttl_s", ttl);
	if (timeout >= 0)
		json_gen_kv_int(g, "timeout_s", timeout);
	yajl_gen_map_close(g);
	if (json_gen_finish(g, line) < 0 || buf_append(line, "\n", 1) < 0)
		return -1;
	return 0;
}

static const char *request_get(const void *ctx, const char *name)
{
	return request_header(ctx, name, NULL);
}

static void call_cancel(void *arg) { berthd_call_cancel(arg); }

static void submit_done(void *data, enum berthd_call_outcome outcome, const char *line, size_t len, const char *detail)
{
	struct request *req = data;
	switch (outcome) {
	case BERTHD_CALL_UNREACHABLE:
		respond_runtime_error(req, 503, "ServiceUnavailable", "%s", detail);
		return;
	case BERTHD_CALL_CLOSED:
	case BERTHD_CALL_TIMED_OUT:
		respond_runtime_error(req, 503, "ServiceUnavailable",
				      "berthd did not confirm the request (%s); it may or may not have been queued. Try "
				      "again, with the same InferenceId to recognise a duplicate.",
				      outcome == BERTHD_CALL_CLOSED ? detail : "no answer in time");
		return;
	case BERTHD_CALL_OK:
		break;
	}
	struct berth_err err;
	yajl_val v = json_parse(line, len, &err);
	bool ok = false;
	const char *iid = NULL, *out = NULL, *fail = NULL;
	if (v && json_get_bool(v, "ok", &ok) && ok) {
		iid = json_get_string(v, "inference_id");
		out = json_get_string(v, "output");
		fail = json_get_string(v, "failure");
	}
	if (v && ok && iid && out && fail) {
		request_respond_start(req, 202);
		request_respond_header(req, "Content-Type", "application/json");
		request_respond_header(req, "X-Amzn-SageMaker-OutputLocation", out);
		request_respond_header(req, "X-Amzn-SageMaker-FailureLocation", fail);
		buf_reset(&req->resp_body);
		yajl_gen g = json_gen_new();
		if (g) {
			yajl_gen_map_open(g);
			json_gen_kv_str(g, "InferenceId", iid);
			yajl_gen_map_close(g);
			json_gen_finish(g, &req->resp_body);
		}
		request_respond_finish(req);
	} else if (v && !ok) {
		long long status = 0;
		const char *code = json_get_string(v, "code"), *message = json_get_string(v, "message");
		if (!json_get_int64(v, "status", &status) || status < 400 || status > 599 || !code || !message)
			respond_runtime_error(req, 500, "InternalFailure", "berthd sent a malformed answer");
		else
			respond_runtime_error(req, (int)status, code, "%s", message);
	} else {
		log_error("malformed async_submit reply from berthd: %.200s", line);
		respond_runtime_error(req, 500, "InternalFailure", "berthd sent a malformed answer");
	}
	if (v)
		yajl_tree_free(v);
}

void async_invoke_start(struct server *srv, struct request *req, const char *endpoint)
{
	struct berth_buf line = BERTH_BUF_INIT, why = BERTH_BUF_INIT;
	if (async_invoke_render(endpoint, request_get, req, &line, &why) < 0) {
		if (why.len > 0)
			respond_runtime_error(req, 400, "ValidationError", "%s", why.data);
		else
			respond_runtime_error(req, 500, "InternalFailure", "out of memory");
		buf_free(&line);
		buf_free(&why);
		return;
	}
	buf_free(&why);
	struct berthd_call *c = berthd_call_start(srv, line.data, line.len, true, ASYNC_SUBMIT_TIMEOUT_MS,
						  submit_done, req);
	buf_free(&line);
	if (!c) {
		respond_runtime_error(req, 500, "InternalFailure", "out of memory");
		return;
	}
	request_set_cancel(req, call_cancel, c);
}
