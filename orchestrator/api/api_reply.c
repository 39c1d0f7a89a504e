/* api_reply.c — the replies every control-plane operation shares: errors
 * in AWS JSON 1.1's shape, not-found and already-exists messages worded as
 * SageMaker's, ARNs, and the name-taken checks. See api_internal.h. */
#include "api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_internal.h"
#include "error_json.h"
#include "json.h"
#include "log.h"
#include "names.h"

/* The fixed answer when even rendering an error runs out of memory. */
static const char api_nomem_body[] = "{\"__type\":\"InternalFailure\",\"message\":\"out of memory\"}";

static void reply_set_raw(struct api_reply *reply, int status, const char *text)
{
	reply->status = status;
	buf_reset(&reply->body);
	if (buf_append_str(&reply->body, text) < 0)
		reply->status = 500; /* the caller sends an empty body; nothing better exists */
}

void api_reply_error(struct api_reply *reply, enum berth_err_class cls, const char *fmt, ...)
{
	struct berth_buf msg = BERTH_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	buf_reset(&reply->body);
	reply->status = berth_err_class_status(cls);
	if (r < 0 || error_json_render(&reply->body, berth_err_class_type(cls), msg.data ? msg.data : "") < 0)
		reply_set_raw(reply, 500, api_nomem_body);
	buf_free(&msg);
}

void api_reply_err(struct api_reply *reply, const struct berth_err *err)
{
	if (err->cls != BERTH_ERR_INTERNAL) {
		api_reply_error(reply, err->cls, "%s", err->msg);
		return;
	}
	log_error("control plane: %s", err->msg);
	api_reply_error(reply, BERTH_ERR_INTERNAL,
			"%s. This is a failure of berthd on this host, not of the request: retry it, and see "
			"berthd's log if it persists.",
			err->msg);
}

void api_reply_nomem(struct api_reply *reply)
{
	reply_set_raw(reply, 500, api_nomem_body);
}

void api_reply_not_saved(struct api_reply *reply, const struct berth_err *err)
{
	log_error("control plane: %s", err->msg);
	api_reply_error(reply, err->cls,
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
	api_reply_error(r->reply, BERTH_ERR_NOT_FOUND, "Could not find %s \"%s\".", what, arn);
}

void api_reply_exists(struct api_request *r, const char *what, const char *kind, const char *name)
{
	_cleanup_free_ char *arn = api_arn(r->ctx, kind, name);
	if (!arn) {
		api_reply_nomem(r->reply);
		return;
	}
	api_reply_error(r->reply, BERTH_ERR_ALREADY_EXISTS, "Cannot create already existing %s \"%s\".", what, arn);
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


void api_reply_arn(struct api_reply *reply, const char *member, const char *arn)
{
	yajl_gen g = json_gen_new();
	if (g && (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_kv_str(g, member, arn) < 0 ||
		  yajl_gen_map_close(g) != yajl_gen_status_ok)) {
		yajl_gen_free(g);
		g = NULL;
	}
	api_reply_gen(reply, g);
}
