/* async_config.c — AsyncInferenceConfig's value and JSON form. */
#include "async_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

void async_config_clear(struct async_config *a)
{
	free(a->s3_output_path);
	free(a->s3_failure_path);
	free(a->success_topic);
	free(a->error_topic);
	for (size_t i = 0; i < a->n_include; i++)
		free(a->include_in[i]);
	memset(a, 0, sizeof(*a));
}

static bool dup_into(char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return true;
	*dst = strdup(src);
	return *dst != NULL;
}

int async_config_copy(struct async_config *dst, const struct async_config *src)
{
	async_config_clear(dst);
	dst->present = src->present;
	dst->max_concurrent = src->max_concurrent;
	dst->has_notification = src->has_notification;
	bool ok = dup_into(&dst->s3_output_path, src->s3_output_path) &&
		  dup_into(&dst->s3_failure_path, src->s3_failure_path) &&
		  dup_into(&dst->success_topic, src->success_topic) && dup_into(&dst->error_topic, src->error_topic);
	for (size_t i = 0; ok && i < src->n_include; i++) {
		ok = dup_into(&dst->include_in[i], src->include_in[i]);
		if (ok)
			dst->n_include = i + 1;
	}
	if (!ok) {
		async_config_clear(dst);
		return -1;
	}
	return 0;
}

long long async_config_concurrency(const struct async_config *a)
{
	return a->max_concurrent > 0 ? a->max_concurrent : ASYNC_MAX_CONCURRENT_DEFAULT;
}

int async_config_gen(yajl_gen g, const struct async_config *a)
{
	if (!a->present)
		return 0;
	JSON_GEN(json_gen_str(g, "AsyncInferenceConfig"));
	JSON_GENY(yajl_gen_map_open(g));
	if (a->max_concurrent > 0) {
		JSON_GEN(json_gen_str(g, "ClientConfig"));
		JSON_GENY(yajl_gen_map_open(g));
		JSON_GEN(json_gen_kv_int(g, "MaxConcurrentInvocationsPerInstance", a->max_concurrent));
		JSON_GENY(yajl_gen_map_close(g));
	}
	JSON_GEN(json_gen_str(g, "OutputConfig"));
	JSON_GENY(yajl_gen_map_open(g));
	JSON_GEN(json_gen_kv_str(g, "S3OutputPath", a->s3_output_path));
	if (a->s3_failure_path)
		JSON_GEN(json_gen_kv_str(g, "S3FailurePath", a->s3_failure_path));
	if (a->has_notification) {
		JSON_GEN(json_gen_str(g, "NotificationConfig"));
		JSON_GENY(yajl_gen_map_open(g));
		if (a->success_topic)
			JSON_GEN(json_gen_kv_str(g, "SuccessTopic", a->success_topic));
		if (a->error_topic)
			JSON_GEN(json_gen_kv_str(g, "ErrorTopic", a->error_topic));
		if (a->n_include > 0) {
			JSON_GEN(json_gen_str(g, "IncludeInferenceResponseIn"));
			JSON_GENY(yajl_gen_array_open(g));
			for (size_t i = 0; i < a->n_include; i++)
				JSON_GEN(json_gen_str(g, a->include_in[i]));
			JSON_GENY(yajl_gen_array_close(g));
		}
		JSON_GENY(yajl_gen_map_close(g));
	}
	JSON_GENY(yajl_gen_map_close(g));
	JSON_GENY(yajl_gen_map_close(g));
	return 0;
}

static yajl_val object_at(yajl_val v, const char *key)
{
	yajl_val o = v && YAJL_IS_OBJECT(v) ? json_get(v, key) : NULL;
	return o && YAJL_IS_OBJECT(o) ? o : NULL;
}

static int string_at(yajl_val v, const char *key, bool required, char **out, char *why, size_t why_len)
{
	yajl_val s = json_get(v, key);
	if (s == NULL || YAJL_IS_NULL(s)) {
		if (required)
			snprintf(why, why_len, "AsyncInferenceConfig: %s is missing", key);
		return required ? -1 : 0;
	}
	if (!YAJL_IS_STRING(s) || strlen(s->u.string) > 2048) {
		snprintf(why, why_len, "AsyncInferenceConfig: %s is not a string of at most 2048 bytes", key);
		return -1;
	}
	if ((*out = strdup(s->u.string)) == NULL) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	return 0;
}

int async_config_decode(yajl_val v, struct async_config *out, char *why, size_t why_len)
{
	memset(out, 0, sizeof(*out));
	if (v == NULL || YAJL_IS_NULL(v))
		return 0;
	yajl_val oc = object_at(v, "OutputConfig");
	if (!YAJL_IS_OBJECT(v) || oc == NULL) {
		snprintf(why, why_len, "AsyncInferenceConfig is not an object with an OutputConfig");
		return -1;
	}
	out->present = true;
	if (string_at(oc, "S3OutputPath", true, &out->s3_output_path, why, why_len) < 0 ||
	    string_at(oc, "S3FailurePath", false, &out->s3_failure_path, why, why_len) < 0)
		goto fail;
	yajl_val cc = object_at(v, "ClientConfig");
	yajl_val mc = cc ? json_get(cc, "MaxConcurrentInvocationsPerInstance") : NULL;
	if (mc && !YAJL_IS_NULL(mc)) {
		if (!YAJL_IS_INTEGER(mc) || YAJL_GET_INTEGER(mc) < ASYNC_MAX_CONCURRENT_MIN ||
		    YAJL_GET_INTEGER(mc) > ASYNC_MAX_CONCURRENT_MAX) {
			snprintf(why, why_len, "AsyncInferenceConfig: MaxConcurrentInvocationsPerInstance is not 1..1000");
			goto fail;
		}
		out->max_concurrent = YAJL_GET_INTEGER(mc);
	}
	yajl_val nc = object_at(oc, "NotificationConfig");
	if (nc) {
		out->has_notification = true;
		if (string_at(nc, "SuccessTopic", false, &out->success_topic, why, why_len) < 0 ||
		    string_at(nc, "ErrorTopic", false, &out->error_topic, why, why_len) < 0)
			goto fail;
		yajl_val inc = json_get(nc, "IncludeInferenceResponseIn");
		if (inc && YAJL_IS_ARRAY(inc)) {
			for (size_t i = 0; i < inc->u.array.len && i < ASYNC_INCLUDE_MAX; i++) {
				yajl_val s = inc->u.array.values[i];
				if (!YAJL_IS_STRING(s) || (out->include_in[i] = strdup(s->u.string)) == NULL) {
					snprintf(why, why_len, "AsyncInferenceConfig: IncludeInferenceResponseIn is not "
						 "a list of strings");
					goto fail;
				}
				out->n_include = i + 1;
			}
		}
	}
	return 0;
fail:
	async_config_clear(out);
	return -1;
}
