/* api.c — control-plane dispatch (api.h): the operation table, the body
 * bound, JSON decoding, then the operation's handler (api_*.c). */
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
