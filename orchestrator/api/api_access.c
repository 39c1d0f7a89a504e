/* api_access.c — see api_access.h. */
#include "api_access.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api_internal.h"
#include "error_json.h"
#include "json.h"
#include "log.h"

#define MAX_CALL_HEADERS 128

struct op_resource {
	const char *op;
	enum credentials_kind kind;
	const char *member; /* NULL: every resource of the kind ("*") */
};

static const struct op_resource op_resources[] = {
	{ "CreateModel", CRED_KIND_MODEL, "ModelName" },
	{ "DescribeModel", CRED_KIND_MODEL, "ModelName" },
	{ "DeleteModel", CRED_KIND_MODEL, "ModelName" },
	{ "ListModels", CRED_KIND_MODEL, NULL },
	{ "CreateEndpointConfig", CRED_KIND_ENDPOINT_CONFIG, "EndpointConfigName" },
	{ "DescribeEndpointConfig", CRED_KIND_ENDPOINT_CONFIG, "EndpointConfigName" },
	{ "DeleteEndpointConfig", CRED_KIND_ENDPOINT_CONFIG, "EndpointConfigName" },
	{ "ListEndpointConfigs", CRED_KIND_ENDPOINT_CONFIG, NULL },
	{ "CreateEndpoint", CRED_KIND_ENDPOINT, "EndpointName" },
	{ "DescribeEndpoint", CRED_KIND_ENDPOINT, "EndpointName" },
	{ "DeleteEndpoint", CRED_KIND_ENDPOINT, "EndpointName" },
	{ "UpdateEndpoint", CRED_KIND_ENDPOINT, "EndpointName" },
	{ "UpdateEndpointWeightsAndCapacities", CRED_KIND_ENDPOINT, "EndpointName" },
	{ "ListEndpoints", CRED_KIND_ENDPOINT, NULL },
	/* the kind and name come from the ResourceArn (resource_from_arn) */
	{ "AddTags", CRED_KIND_NONE, "ResourceArn" },
	{ "DeleteTags", CRED_KIND_NONE, "ResourceArn" },
	{ "ListTags", CRED_KIND_NONE, "ResourceArn" },
};

/* A tag operation's resource: the kind and name its ResourceArn names
 * (names in ARNs are lower-cased, so a key's globs see that spelling).
 * false for an ARN berth cannot resolve: the action alone decides, and the
 * API refuses the ARN, executing nothing. */
static bool resource_from_arn(const char *arn, enum credentials_kind *kind, char *name, size_t size)
{
	struct api_arn_parts parts;
	if (!api_arn_split(arn, &parts) || !parts.known || !*parts.name || strlen(parts.name) >= size)
		return false;
	static const enum credentials_kind kinds[] = { [API_TAG_MODEL] = CRED_KIND_MODEL,
						       [API_TAG_ENDPOINT_CONFIG] = CRED_KIND_ENDPOINT_CONFIG,
						       [API_TAG_ENDPOINT] = CRED_KIND_ENDPOINT };
	*kind = kinds[parts.kind];
	snprintf(name, size, "%s", parts.name);
	return true;
}

bool api_access_resource(const char *operation, enum credentials_kind *kind, const char **member)
{
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(op_resources); i++)
		if (strcmp(op_resources[i].op, operation) == 0) {
			*kind = op_resources[i].kind;
			*member = op_resources[i].member;
			return true;
		}
	return false;
}

static void reply_denied(struct api_reply *reply, const struct sigv4_error *e)
{
	reply->status = sigv4_error_http_status(e->status, false);
	buf_reset(&reply->body);
	if (error_json_render(&reply->body, sigv4_error_type(e->status), e->message) < 0)
		buf_reset(&reply->body);
}

/* The signed request as the router received it. A call without one (a
 * forged line on the router's channel) reads as a request without
 * headers: no Authorization, MissingAuthenticationToken. false when
 * malformed. */
static bool read_request(yajl_val call, struct sigv4_header *headers, size_t *n, struct sigv4_request *req)
{
	const char *method = json_get_string(call, "method"), *path = json_get_string(call, "path");
	yajl_val list = json_get(call, "headers");
	if (list && (!YAJL_IS_ARRAY(list) || list->u.array.len > MAX_CALL_HEADERS))
		return false;
	size_t count = list ? list->u.array.len : 0;
	for (size_t i = 0; i < count; i++) {
		yajl_val h = list->u.array.values[i];
		if (!YAJL_IS_ARRAY(h) || h->u.array.len != 2 || !YAJL_IS_STRING(h->u.array.values[0]) ||
		    !YAJL_IS_STRING(h->u.array.values[1]))
			return false;
		headers[i].name = h->u.array.values[0]->u.string;
		headers[i].name_len = strlen(headers[i].name);
		headers[i].value = h->u.array.values[1]->u.string;
		headers[i].value_len = strlen(headers[i].value);
	}
	*n = count;
	req->method = method ? method : "POST";
	req->target = path ? path : "/";
	req->headers = headers;
	req->n_headers = count;
	return true;
}

/* Is "x-amz-target" among the signed headers, sent once, and
 * "SageMaker.OPERATION"? */
static bool target_signed(const struct sigv4_request *req, const char *signed_headers, const char *operation)
{
	if (!sigv4_signed_headers_have(signed_headers, "x-amz-target"))
		return false;
	const char *value = NULL;
	size_t value_len = 0;
	for (size_t i = 0; i < req->n_headers; i++)
		if (req->headers[i].name_len == 12 && strncasecmp(req->headers[i].name, "x-amz-target", 12) == 0) {
			if (value)
				return false;
			value = req->headers[i].value;
			value_len = req->headers[i].value_len;
		}
	size_t op_len = strlen(operation);
	return value && value_len == 10 + op_len && memcmp(value, "SageMaker.", 10) == 0 &&
	       memcmp(value + 10, operation, op_len) == 0;
}

bool api_access_check(struct access *a, const char *operation, yajl_val call, const char *body, size_t body_len,
		      int64_t now, struct api_reply *reply, struct access_principal *who)
{
	struct sigv4_error e = { SIGV4_OK, "" };
	if (access_enabled(a)) {
		struct sigv4_header headers[MAX_CALL_HEADERS];
		size_t n = 0;
		struct sigv4_request req;
		char hash[65];
		if (!read_request(call, headers, &n, &req)) {
			api_reply_error(reply, BERTH_ERR_INTERNAL,
					"the router forwarded a control call with a malformed signed request");
			return false;
		}
		sigv4_sha256_hex(body, body_len, hash);
		req.payload_hash = hash;
		if (access_authenticate(a, &req, now, who, &e) != SIGV4_OK) {
			log_debug("control call %s refused: %s: %s", operation, sigv4_error_type(e.status), e.message);
			reply_denied(reply, &e);
			return false;
		}
		/* The operation berthd runs is the one the client signed: a
		 * router that names another (a valid DescribeModel replayed as
		 * DeleteModel) is refused. */
		if (!target_signed(&req, who->signed_headers, operation)) {
			e.status = SIGV4_INVALID;
			snprintf(e.message, sizeof(e.message),
				 "The request signature does not cover the operation SageMaker.%.64s: sign the "
				 "X-Amz-Target header (every AWS SDK does).",
				 operation);
			log_warn("control call %s by key %s refused: X-Amz-Target not signed for it", operation,
				 who->name);
			reply_denied(reply, &e);
			return false;
		}
	} else if (access_authenticate(a, NULL, now, who, &e) != SIGV4_OK) {
		reply_denied(reply, &e);
		return false;
	}

	char action[160];
	snprintf(action, sizeof(action), "sagemaker:%.140s", operation);
	enum credentials_kind kind = CRED_KIND_NONE;
	const char *member = NULL;
	if (!api_access_resource(operation, &kind, &member)) {
		if (access_authorize(a, who, action, CRED_KIND_NONE, NULL, &e) != SIGV4_OK)
			goto denied;
		return true;
	}
	if (member == NULL) { /* List*: every resource of the kind */
		if (access_authorize(a, who, action, kind, "*", &e) != SIGV4_OK)
			goto denied;
		return true;
	}
	/* The names the body gives; a body that does not parse or lacks the
	 * name is refused by the API itself, executing nothing: the action
	 * alone decides whether the caller may hear that. */
	struct berth_err perr;
	yajl_val v = json_parse(body, body_len, &perr);
	const char *name = v ? json_get_string(v, member) : NULL;
	char arn_name[256];
	if (name && kind == CRED_KIND_NONE)
		name = resource_from_arn(name, &kind, arn_name, sizeof(arn_name)) ? arn_name : NULL;
	enum sigv4_status s = name ? access_authorize(a, who, action, kind, name, &e)
				   : access_authorize(a, who, action, CRED_KIND_NONE, NULL, &e);
	if (s == SIGV4_OK && (strcmp(operation, "CreateEndpoint") == 0 || strcmp(operation, "UpdateEndpoint") == 0)) {
		const char *config = v ? json_get_string(v, "EndpointConfigName") : NULL;
		if (config)
			s = access_authorize(a, who, action, CRED_KIND_ENDPOINT_CONFIG, config, &e);
	}
	if (v)
		yajl_tree_free(v);
	if (s != SIGV4_OK)
		goto denied;
	return true;
denied:
	log_info("control call %s by key %s (%s) denied: %s", operation, who->name, who->key_id, e.message);
	reply_denied(reply, &e);
	return false;
}
