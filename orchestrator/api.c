/* api.c — control-plane dispatch (api.h) and the replies every operation
 * shares: errors in AWS JSON 1.1's shape, not-found and already-exists
 * messages worded as SageMaker's, ARNs and times. */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api_internal.h"
#include "json.h"
#include "log.h"
#include "names.h"

static const struct {
	const char *name;
	void (*run)(struct api_request *r);
} api_operations[] = {
	{ "CreateModel", api_create_model },
	{ "DescribeModel", api_describe_model },
	{ "ListModels", api_list_models },
	{ "DeleteModel", api_delete_model },
	{ "CreateEndpointConfig", api_create_endpoint_config },
	{ "DescribeEndpointConfig", api_describe_endpoint_config },
	{ "ListEndpointConfigs", api_list_endpoint_configs },
	{ "DeleteEndpointConfig", api_delete_endpoint_config },
	{ "CreateEndpoint", api_create_endpoint },
	{ "DescribeEndpoint", api_describe_endpoint },
	{ "ListEndpoints", api_list_endpoints },
	{ "DeleteEndpoint", api_delete_endpoint },
	{ "UpdateEndpoint", api_update_endpoint },
	{ "UpdateEndpointWeightsAndCapacities", api_update_endpoint_weights_and_capacities },
};

/* The fixed answer when even rendering an error runs out of memory. */
static const char api_nomem_body[] = "{\"__type\":\"InternalFailure\",\"message\":\"out of memory\"}";

static void reply_set_raw(struct api_reply *reply, int status, const char *text)
{
	reply->status = status;
	buf_reset(&reply->body);
	if (buf_append_str(&reply->body, text) < 0)
		reply->status = 500; /* the caller sends an empty body; nothing better exists */
}

void api_reply_error(struct api_reply *reply, int status, const char *type, const char *fmt, ...)
{
	struct berth_buf msg = BERTH_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	yajl_gen g = json_gen_new();
	buf_reset(&reply->body);
	reply->status = status;
	if (r < 0 || !g || yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_kv_str(g, "__type", type) < 0 ||
	    json_gen_kv_str(g, "message", msg.data ? msg.data : "") < 0 ||
	    yajl_gen_map_close(g) != yajl_gen_status_ok) {
		if (g)
			yajl_gen_free(g);
		/* yajl refuses invalid UTF-8 (a name echoed back, say): fall back
		 * to a message without the offending text. */
		buf_free(&msg);
		if (r >= 0 && g) {
			api_reply_error(reply, status, type, "%s", "The request contains text that is not valid UTF-8.");
			return;
		}
		reply_set_raw(reply, 500, api_nomem_body);
		return;
	}
	buf_free(&msg);
	if (json_gen_finish(g, &reply->body) < 0)
		reply_set_raw(reply, 500, api_nomem_body);
}

void api_reply_nomem(struct api_reply *reply)
{
	reply_set_raw(reply, 500, api_nomem_body);
}

void api_reply_internal(struct api_reply *reply, const struct berth_err *err)
{
	/* every caller reports a failed store write: say so, and what to do */
	log_error("control plane: %s", err->msg);
	api_reply_error(reply, 500, "InternalFailure",
			"berthd could not save the change to its state directory, so nothing was changed: %s. "
			"Make sure the state directory is writable and has free space, then retry.",
			err->msg);
}

void api_reply_empty(struct api_reply *reply)
{
	reply->status = 200;
	buf_reset(&reply->body);
	if (buf_append_str(&reply->body, "{}") < 0)
		api_reply_nomem(reply);
}

void api_reply_gen(struct api_reply *reply, yajl_gen g)
{
	buf_reset(&reply->body);
	if (!g || json_gen_finish(g, &reply->body) < 0) {
		api_reply_nomem(reply);
		return;
	}
	reply->status = 200;
}

void api_reply_text(struct api_reply *reply, const struct berth_buf *doc)
{
	reply->status = 200;
	buf_reset(&reply->body);
	if (buf_append(&reply->body, doc->data ? doc->data : "{}", doc->data ? doc->len : 2) < 0)
		api_reply_nomem(reply);
}

double api_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return (double)ms / 1000.0;
}

char *api_arn(const struct api_ctx *ctx, const char *kind, const char *name)
{
	_cleanup_free_ char *lower = name_lower(name);
	if (!lower)
		return NULL;
	char *arn = NULL;
	if (asprintf(&arn, "arn:aws:sagemaker:%s:%s:%s/%s", ctx->region, ctx->account, kind, lower) < 0)
		return NULL;
	return arn;
}

void api_reply_not_found(struct api_request *r, const char *what, const char *kind, const char *name)
{
	_cleanup_free_ char *arn = api_arn(r->ctx, kind, name);
	if (!arn) {
		api_reply_nomem(r->reply);
		return;
	}
	api_reply_error(r->reply, 400, "ValidationException", "Could not find %s \"%s\".", what, arn);
}

void api_reply_exists(struct api_request *r, const char *what, const char *kind, const char *name)
{
	_cleanup_free_ char *arn = api_arn(r->ctx, kind, name);
	if (!arn) {
		api_reply_nomem(r->reply);
		return;
	}
	api_reply_error(r->reply, 400, API_ALREADY_EXISTS_TYPE, "Cannot create already existing %s \"%s\".", what,
			arn);
}

bool api_model_name_taken(const struct store *s, const char *name)
{
	for (size_t i = 0; i < store_count_models(s); i++)
		if (strcasecmp(store_model_at(s, i)->name, name) == 0)
			return true;
	return false;
}

bool api_endpoint_config_name_taken(const struct store *s, const char *name)
{
	for (size_t i = 0; i < store_count_endpoint_configs(s); i++)
		if (strcasecmp(store_endpoint_config_at(s, i)->name, name) == 0)
			return true;
	return false;
}

bool api_endpoint_name_taken(const struct store *s, const char *name)
{
	for (size_t i = 0; i < store_count_endpoints(s); i++)
		if (strcasecmp(store_endpoint_at(s, i)->name, name) == 0)
			return true;
	return false;
}

static bool body_is_blank(const char *body, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isspace((unsigned char)body[i]))
			return false;
	return true;
}

void api_handle(struct api_ctx *ctx, const char *operation, const char *body, size_t body_len,
		struct api_reply *reply)
{
	reply->status = 200;
	if (body_len > API_MAX_BODY_BYTES) {
		api_reply_error(reply, 413, "ValidationException",
				"Request body of %zu bytes exceeds the maximum of %u bytes.", body_len,
				API_MAX_BODY_BYTES);
		return;
	}
	void (*run)(struct api_request *) = NULL;
	for (size_t i = 0; operation && i < BERTH_ARRAY_SIZE(api_operations); i++)
		if (strcmp(operation, api_operations[i].name) == 0)
			run = api_operations[i].run;
	if (!run) {
		api_reply_error(reply, 400, "UnknownOperationException", "Operation SageMaker.%s is not supported.",
				operation ? operation : "");
		return;
	}

	/* An empty body is an empty request, as AWS's JSON 1.1 services treat it. */
	struct berth_err err = { 0 };
	yajl_val root = body_is_blank(body, body_len) ? json_parse("{}", 2, &err) : json_parse(body, body_len, &err);
	if (!root) {
		if (err.errnum == ENOMEM) {
			api_reply_nomem(reply);
			return;
		}
		if (err.errnum == JSON_TOO_DEEP) {
			api_reply_error(reply, 400, "ValidationException",
					"The request body nests JSON objects and arrays more than %d levels deep. "
					"Send at most %d levels; no SageMaker request needs more.",
					JSON_MAX_DEPTH, JSON_MAX_DEPTH);
			return;
		}
		api_reply_error(reply, 400, "SerializationException", "The request body is not valid JSON: %s",
				err.msg);
		return;
	}
	if (!YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		api_reply_error(reply, 400, "SerializationException", "The request body must be a JSON object.");
		return;
	}

	struct api_request r = { .ctx = ctx, .reply = reply, .root = root, .errors = BERTH_BUF_INIT };
	pthread_mutex_lock(ctx->lock);
	run(&r);
	pthread_mutex_unlock(ctx->lock);
	buf_free(&r.errors);
	yajl_tree_free(root);
}
