/* async_config.h — an endpoint config's AsyncInferenceConfig as a C value
 * and its JSON form (SageMaker's member names: the same object is stored,
 * described by DescribeEndpointConfig, and copied into the endpoint record
 * under "Berth" so an endpoint keeps it after DeleteEndpointConfig).
 * The API validates what a caller sends (api_async_config.c); this module
 * only encodes and decodes what was validated. */
#ifndef BERTH_ASYNC_CONFIG_H
#define BERTH_ASYNC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

/* SageMaker's bounds of ClientConfig.MaxConcurrentInvocationsPerInstance. */
#define ASYNC_MAX_CONCURRENT_MIN 1
#define ASYNC_MAX_CONCURRENT_MAX 1000
/* berth's choice when it is not given (SageMaker "chooses an optimal
 * value"): one request at a time per instance, what any container can take. */
#define ASYNC_MAX_CONCURRENT_DEFAULT 1
#define ASYNC_INCLUDE_MAX 2

struct async_config {
	bool present;              /* the config has an AsyncInferenceConfig */
	char *s3_output_path;      /* OutputConfig.S3OutputPath (required) */
	char *s3_failure_path;     /* OutputConfig.S3FailurePath; NULL: not given */
	long long max_concurrent;  /* ClientConfig.MaxConcurrentInvocationsPerInstance; 0: not given */
	bool has_notification;     /* OutputConfig.NotificationConfig given (accepted, never delivered) */
	char *success_topic, *error_topic;          /* NULL when absent */
	char *include_in[ASYNC_INCLUDE_MAX];        /* IncludeInferenceResponseIn */
	size_t n_include;
};

void async_config_clear(struct async_config *a);
/* Deep copy into dst (cleared first); -1 on ENOMEM (dst then cleared). */
int async_config_copy(struct async_config *dst, const struct async_config *src);
/* Emits "AsyncInferenceConfig": {…} into an open map, nothing when absent.
 * -1 on a generator error. */
int async_config_gen(yajl_gen g, const struct async_config *a);
/* Decodes the stored object v (the value of "AsyncInferenceConfig"); -1
 * with why filled when it is malformed (a corrupt record). */
int async_config_decode(yajl_val v, struct async_config *out, char *why, size_t why_len);
/* The concurrency an instance takes: the configured value or the default. */
long long async_config_concurrency(const struct async_config *a);

#endif
