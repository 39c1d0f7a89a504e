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

/* Each operation has its own handler (run) or, for List* and Delete*, the
 * shared core with the kind's table entry (run_kind, kind; api_kind.c). */
static const struct {
	const char *name;
	void (*run)(struct api_request *r);
	void (*run_kind)(struct api_request *r, const struct api_kind *k);
	const struct api_kind *kind;
} api_operations[] = {
	{ "CreateModel", api_create_model, NULL, NULL },
	{ "DescribeModel", api_describe_model, NULL, NULL },
	{ "ListModels", NULL, api_list_kind, &api_kind_model },
	{ "DeleteModel", NULL, api_delete_kind, &api_kind_model },
	{ "CreateEndpointConfig", api_create_endpoint_config, NULL, NULL },
	{ "DescribeEndpointConfig", api_describe_endpoint_config, NULL, NULL },
	{ "ListEndpointConfigs", NULL, api_list_kind, &api_kind_endpoint_config },
	{ "DeleteEndpointConfig", NULL, api_delete_kind, &api_kind_endpoint_config },
	{ "CreateEndpoint", api_create_endpoint, NULL, NULL },
	{ "DescribeEndpoint", api_describe_endpoint, NULL, NULL },
	{ "ListEndpoints", NULL, api_list_kind, &api_kind_endpoint },
	{ "DeleteEndpoint", NULL, api_delete_kind, &api_kind_endpoint },
	{ "UpdateEndpoint", api_update_endpoint, NULL, NULL },
	{ "UpdateEndpointWeightsAndCapacities", api_update_endpoint_weights_and_capacities, NULL, NULL },
	{ "AddTags", api_add_tags, NULL, NULL },
	{ "DeleteTags", api_delete_tags, NULL, NULL },
	{ "ListTags", api_list_tags, NULL, NULL },
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
		api_reply_error(reply, BERTH_ERR_TOO_LARGE,
				"Request body of %zu bytes exceeds the maximum of %u bytes.", body_len,
				API_MAX_BODY_BYTES);
		return;
	}
	size_t op = BERTH_ARRAY_SIZE(api_operations);
	for (size_t i = 0; operation && i < BERTH_ARRAY_SIZE(api_operations); i++)
		if (strcmp(operation, api_operations[i].name) == 0)
			op = i;
	if (op == BERTH_ARRAY_SIZE(api_operations)) {
		api_reply_error(reply, BERTH_ERR_UNKNOWN_OPERATION, "Operation SageMaker.%s is not supported.",
				operation ? operation : "");
		return;
	}

	/* An empty body is an empty request, as AWS's JSON 1.1 services treat it. */
	struct berth_err err = { 0 };
	yajl_val root = body_is_blank(body, body_len) ? json_parse("{}", 2, &err) : json_parse(body, body_len, &err);
	if (!root) {
		if (err.errnum == JSON_TOO_DEEP) {
			api_reply_error(reply, BERTH_ERR_VALIDATION,
					"The request body nests JSON objects and arrays more than %d levels deep. "
					"Send at most %d levels; no SageMaker request needs more.",
					JSON_MAX_DEPTH, JSON_MAX_DEPTH);
			return;
		}
		berth_err_blame_input(&err); /* the text is the caller's; ENOMEM is berth's */
		if (err.cls == BERTH_ERR_INTERNAL) {
			api_reply_nomem(reply); /* what json_parse can fail with besides the text */
			return;
		}
		api_reply_error(reply, BERTH_ERR_SERIALIZATION, "The request body is not valid JSON: %s",
				err.msg);
		return;
	}
	if (!YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		api_reply_error(reply, BERTH_ERR_SERIALIZATION, "The request body must be a JSON object.");
		return;
	}

	struct api_request r = { .ctx = ctx, .reply = reply, .root = root, .errors = BERTH_BUF_INIT };
	pthread_mutex_lock(ctx->lock);
	if (api_operations[op].run)
		api_operations[op].run(&r);
	else
		api_operations[op].run_kind(&r, api_operations[op].kind);
	pthread_mutex_unlock(ctx->lock);
	buf_free(&r.errors);
	yajl_tree_free(root);
}
