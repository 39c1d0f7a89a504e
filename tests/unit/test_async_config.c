/* AsyncInferenceConfig in berthd's records (state/async_config.c through
 * resources.c): an endpoint config's and an endpoint's copy survive the
 * JSON on disk whole, DescribeEndpointConfig shows it, and a corrupt one
 * is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "resources.h"

static void fill(struct async_config *a)
{
	a->present = true;
	a->s3_output_path = strdup("s3://b/out");
	a->s3_failure_path = strdup("s3://b/err");
	a->max_concurrent = 7;
	a->has_notification = true;
	a->success_topic = strdup("arn:aws:sns:us-east-1:000000000000:ok");
	a->include_in[0] = strdup("SUCCESS_NOTIFICATION_TOPIC");
	a->n_include = 1;
}

static void config_round_trip(void **state)
{
	(void)state;
	struct variant v = { .variant_name = "AllTraffic", .model_name = "m", .initial_instance_count = 1,
			     .instance_type = "ml.m5.large", .initial_weight = 1.0 };
	struct endpoint_config c = { .name = "c", .arn = "arn:aws:sagemaker:us-east-1:0:endpoint-config/c",
				     .variants = &v, .n_variants = 1 };
	fill(&c.async);
	struct berth_buf doc = BERTH_BUF_INIT;
	assert_int_equal(endpoint_config_to_json(&c, &doc), 0);
	struct berth_err err;
	struct endpoint_config *back = endpoint_config_from_json(doc.data, doc.len, &err);
	assert_non_null(back);
	assert_true(back->async.present);
	assert_string_equal(back->async.s3_output_path, "s3://b/out");
	assert_string_equal(back->async.s3_failure_path, "s3://b/err");
	assert_int_equal(back->async.max_concurrent, 7);
	assert_true(back->async.has_notification);
	assert_string_equal(back->async.success_topic, "arn:aws:sns:us-east-1:000000000000:ok");
	assert_null(back->async.error_topic);
	assert_int_equal(back->async.n_include, 1);
	struct endpoint_config *dup = endpoint_config_dup(back);
	assert_non_null(dup);
	assert_string_equal(dup->async.include_in[0], "SUCCESS_NOTIFICATION_TOPIC");
	buf_reset(&doc);
	assert_int_equal(endpoint_config_describe_to_json(dup, &doc), 0);
	assert_non_null(strstr(doc.data, "\"AsyncInferenceConfig\":{\"ClientConfig\":{\"MaxConcurrentInvocationsPerInstance\":7},"
					 "\"OutputConfig\":{\"S3OutputPath\":\"s3://b/out\",\"S3FailurePath\":\"s3://b/err\""));
	assert_int_equal(async_config_concurrency(&dup->async), 7);
	endpoint_config_free(dup);
	endpoint_config_free(back);
	async_config_clear(&c.async);
	/* without one: nothing written, present false, the default concurrency */
	buf_reset(&doc);
	assert_int_equal(endpoint_config_to_json(&c, &doc), 0);
	assert_null(strstr(doc.data, "AsyncInferenceConfig"));
	back = endpoint_config_from_json(doc.data, doc.len, &err);
	assert_non_null(back);
	assert_false(back->async.present);
	assert_int_equal(async_config_concurrency(&back->async), ASYNC_MAX_CONCURRENT_DEFAULT);
	endpoint_config_free(back);
	buf_free(&doc);
}

static void endpoint_keeps_its_copy(void **state)
{
	(void)state;
	struct endpoint e = { .name = "e", .arn = "arn", .config_name = "c", .status = "InService" };
	fill(&e.async);
	struct berth_buf doc = BERTH_BUF_INIT;
	assert_int_equal(endpoint_to_json(&e, &doc), 0);
	struct berth_err err;
	struct endpoint *back = endpoint_from_json(doc.data, doc.len, &err);
	assert_non_null(back);
	assert_true(back->async.present);
	assert_string_equal(back->async.s3_output_path, "s3://b/out");
	endpoint_free(back);
	async_config_clear(&e.async);
	buf_free(&doc);
}

static void corrupt_is_refused(void **state)
{
	(void)state;
	static const char *const docs[] = {
		"{\"EndpointConfigName\":\"c\",\"EndpointConfigArn\":\"a\",\"CreationTime\":1,\"ProductionVariants\":"
		"[{\"VariantName\":\"v\",\"ModelName\":\"m\",\"InitialInstanceCount\":1,\"InstanceType\":\"ml.m5.large\"}],"
		"\"AsyncInferenceConfig\":{\"OutputConfig\":{}}}",
		"{\"EndpointConfigName\":\"c\",\"EndpointConfigArn\":\"a\",\"CreationTime\":1,\"ProductionVariants\":"
		"[{\"VariantName\":\"v\",\"ModelName\":\"m\",\"InitialInstanceCount\":1,\"InstanceType\":\"ml.m5.large\"}],"
		"\"AsyncInferenceConfig\":{\"OutputConfig\":{\"S3OutputPath\":\"s3://b\"},"
		"\"ClientConfig\":{\"MaxConcurrentInvocationsPerInstance\":0}}}",
	};
	for (size_t i = 0; i < 2; i++) {
		struct berth_err err;
		assert_null(endpoint_config_from_json(docs[i], strlen(docs[i]), &err));
		assert_non_null(strstr(err.msg, "AsyncInferenceConfig"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_round_trip),
		cmocka_unit_test(endpoint_keeps_its_copy),
		cmocka_unit_test(corrupt_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
