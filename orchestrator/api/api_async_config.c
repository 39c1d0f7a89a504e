/* api_async_config.c — CreateEndpointConfig's AsyncInferenceConfig:
 * decoded and validated with SageMaker's messages (botocore's sagemaker
 * service model: AsyncInferenceConfig, AsyncInferenceOutputConfig,
 * AsyncInferenceClientConfig, AsyncInferenceNotificationConfig), and the
 * variants it cannot serve refused. OutputConfig.KmsKeyId is refused by
 * api_unsupported.c's table before this runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "json.h"

#define S3_URI_PATTERN "(https|s3)://([^/])/?(.*)"
#define S3_URI_MAX 512
#define SNS_ARN_PATTERN "arn:aws[a-z\\-]*:sns:[a-z0-9\\-]*:[0-9]{12}:[a-zA-Z0-9_.-]+"

/* (https|s3)://X… with X not '/' */
static bool s3_uri_pattern_ok(const char *s)
{
	const char *rest = strncmp(s, "s3://", 5) == 0 ? s + 5 : strncmp(s, "https://", 8) == 0 ? s + 8 : NULL;
	return rest && rest[0] != '\0' && rest[0] != '/';
}

static bool sns_arn_ok(const char *s)
{
	if (strncmp(s, "arn:aws", 7) != 0)
		return false;
	s += 7;
	while ((*s >= 'a' && *s <= 'z') || *s == '-')
		s++;
	if (strncmp(s, ":sns:", 5) != 0)
		return false;
	s += 5;
	while ((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-')
		s++;
	if (*s++ != ':')
		return false;
	for (int i = 0; i < 12; i++, s++)
		if (*s < '0' || *s > '9')
			return false;
	if (*s++ != ':' || *s == '\0')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '.' || *s == '-'))
			return false;
	return true;
}

/* S3OutputPath / S3FailurePath: SageMaker's pattern and length; berth
 * writes only to s3:// (through its object store). */
static const char *decode_s3_path(struct api_request *r, yajl_val oc, const char *key, const char *path,
				  bool required)
{
	const char *s = req_string(r, oc, key, path, false);
	if (s == NULL) {
		if (required && !r->serialization_failed)
			req_invalid(r, NULL, path, "Member must not be null (berth has no default bucket for "
				    "asynchronous inference results: give the s3:// prefix they are written under)");
		return NULL;
	}
	yajl_val v = json_get(oc, key);
	check_length(r, v, s, path, 0, S3_URI_MAX);
	if (!s3_uri_pattern_ok(s))
		req_invalid(r, v, path, "Member must satisfy regular expression pattern: %s", S3_URI_PATTERN);
	else if (strncmp(s, "s3://", 5) != 0)
		req_invalid(r, v, path, "Member must be an s3:// URI: berth writes asynchronous inference results "
			    "through its object store, which has no https:// destinations");
	return s;
}

static char *dup_or_flag(const char *s, bool *nomem)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		*nomem = true;
	return d;
}

int api_async_config_decode(struct api_request *r, yajl_val root, struct async_config *out)
{
	memset(out, 0, sizeof(*out));
	yajl_val aic = req_object(r, root, "AsyncInferenceConfig", "asyncInferenceConfig", false);
	if (aic == NULL)
		return 0;
	bool nomem = false;
	out->present = true;
	yajl_val oc = req_object(r, aic, "OutputConfig", "asyncInferenceConfig.outputConfig", true);
	if (oc) {
		const char *o = decode_s3_path(r, oc, "S3OutputPath", "asyncInferenceConfig.outputConfig.s3OutputPath",
					       true);
		const char *f = decode_s3_path(r, oc, "S3FailurePath",
					       "asyncInferenceConfig.outputConfig.s3FailurePath", false);
		out->s3_output_path = dup_or_flag(o, &nomem);
		out->s3_failure_path = dup_or_flag(f, &nomem);
		yajl_val nc = req_object(r, oc, "NotificationConfig", "asyncInferenceConfig.outputConfig.notificationConfig",
					 false);
		if (nc) {
			out->has_notification = true;
			static const char *const topics[] = { "SuccessTopic", "ErrorTopic" };
			static const char *const paths[] = { "asyncInferenceConfig.outputConfig.notificationConfig.successTopic",
							     "asyncInferenceConfig.outputConfig.notificationConfig.errorTopic" };
			char **dst[] = { &out->success_topic, &out->error_topic };
			for (size_t i = 0; i < 2; i++) {
				const char *t = req_string(r, nc, topics[i], paths[i], false);
				if (t == NULL)
					continue;
				check_length(r, json_get(nc, topics[i]), t, paths[i], 0, 2048);
				if (!sns_arn_ok(t))
					req_invalid(r, json_get(nc, topics[i]), paths[i],
						    "Member must satisfy regular expression pattern: %s", SNS_ARN_PATTERN);
				*dst[i] = dup_or_flag(t, &nomem);
			}
			const char *ipath = "asyncInferenceConfig.outputConfig.notificationConfig.includeInferenceResponseIn";
			yajl_val inc = req_array(r, nc, "IncludeInferenceResponseIn", ipath, false);
			if (inc && inc->u.array.len > ASYNC_INCLUDE_MAX)
				req_invalid(r, inc, ipath, "Member must have length less than or equal to %d",
					    ASYNC_INCLUDE_MAX);
			static const char *const kinds[] = { "SUCCESS_NOTIFICATION_TOPIC", "ERROR_NOTIFICATION_TOPIC", NULL };
			for (size_t i = 0; inc && i < inc->u.array.len && i < ASYNC_INCLUDE_MAX; i++) {
				yajl_val s = inc->u.array.values[i];
				if (!YAJL_IS_STRING(s)) {
					req_serialization(r, "Unexpected value type in payload");
					continue;
				}
				if (check_enum(r, s, s->u.string, ipath, kinds)) {
					out->include_in[out->n_include] = dup_or_flag(s->u.string, &nomem);
					out->n_include++;
				}
			}
		}
	}
	yajl_val cc = req_object(r, aic, "ClientConfig", "asyncInferenceConfig.clientConfig", false);
	const char *mpath = "asyncInferenceConfig.clientConfig.maxConcurrentInvocationsPerInstance";
	long long m = 0;
	if (cc && req_int(r, cc, "MaxConcurrentInvocationsPerInstance", mpath, false, &m)) {
		if (m < ASYNC_MAX_CONCURRENT_MIN)
			req_invalid(r, json_get(cc, "MaxConcurrentInvocationsPerInstance"), mpath,
				    "Member must have value greater than or equal to %d", ASYNC_MAX_CONCURRENT_MIN);
		else if (m > ASYNC_MAX_CONCURRENT_MAX)
			req_invalid(r, json_get(cc, "MaxConcurrentInvocationsPerInstance"), mpath,
				    "Member must have value less than or equal to %d", ASYNC_MAX_CONCURRENT_MAX);
		else
			out->max_concurrent = m;
	}
	return nomem ? -1 : 0;
}

int api_async_check_modes(struct api_request *r, const char *config_name, const struct async_config *a,
			  const struct variant *v, size_t n)
{
	if (!a->present)
		return 0;
	for (size_t i = 0; i < n; i++) {
		const struct model *m = store_get_model(r->ctx->store, v[i].model_name);
		const char *mode = m ? model_invocation_mode(m) : NULL;
		if (mode == NULL)
			continue; /* the caller answers the missing model */
		if (strcmp(mode, "MultiModel") == 0 || strcmp(mode, "Direct") == 0) {
			api_reply_error(r->reply, BERTH_ERR_VALIDATION,
					"Endpoint configuration \"%s\" has an AsyncInferenceConfig, but production "
					"variant %s serves model %s in %s mode, which InvokeEndpointAsync cannot "
					"address (it has no %s member). Serve that model from an endpoint without "
					"AsyncInferenceConfig.",
					config_name, v[i].variant_name, v[i].model_name,
					strcmp(mode, "MultiModel") == 0 ? "multi-model (MultiModel)" : "Direct",
					strcmp(mode, "MultiModel") == 0 ? "TargetModel" : "TargetContainerHostname");
			return -1;
		}
	}
	return 0;
}
