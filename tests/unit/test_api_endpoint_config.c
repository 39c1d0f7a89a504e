/* test_api_endpoint_config.c — CreateEndpointConfig / Describe / Delete. */
#include "api_fixture.h"

#define PATTERN "[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?"

static void bad(struct fixture *f, const char *body, const char *type, const char *message)
{
	expect_error(call(f, "CreateEndpointConfig", body), 400, type, message);
	assert_int_equal(store_count_endpoint_configs(f->store), 0);
}

#define VARIANT(extra) \
	"{\"VariantName\":\"AllTraffic\",\"ModelName\":\"m\",\"InitialInstanceCount\":1,\"InstanceType\":\"ml.m5.large\"" extra "}"

static void test_create_describe(void **state)
{
	struct fixture *f = *state;
	make_model(f, "m");
	make_model(f, "m2");
	yajl_val v = expect_ok(call(f, "CreateEndpointConfig",
				    "{\"EndpointConfigName\":\"Cfg\",\"ProductionVariants\":[" VARIANT("") ","
				    "{\"VariantName\":\"B\",\"ModelName\":\"m2\",\"InitialInstanceCount\":2,"
				    "\"InstanceType\":\"ml.g5.12xlarge\",\"InitialVariantWeight\":0.25}]}"));
	assert_string_equal(json_get_string(v, "EndpointConfigArn"),
			    "arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/cfg");
	yajl_tree_free(v);
	v = expect_ok(call(f, "DescribeEndpointConfig", "{\"EndpointConfigName\":\"Cfg\"}"));
	assert_string_equal(json_get_string(v, "EndpointConfigName"), "Cfg");
	assert_string_equal(json_get_string(v, "EndpointConfigArn"),
			    "arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/cfg");
	double t;
	assert_true(json_get_double(v, "CreationTime", &t));
	yajl_val pv = json_get(v, "ProductionVariants");
	assert_int_equal(pv->u.array.len, 2);
	double w = 0;
	assert_true(json_get_double(pv->u.array.values[0], "InitialVariantWeight", &w) && w == 1.0);
	assert_true(json_get_double(pv->u.array.values[1], "InitialVariantWeight", &w) && w == 0.25);
	long long n = 0;
	assert_true(json_get_int64(pv->u.array.values[1], "InitialInstanceCount", &n) && n == 2);
	assert_string_equal(json_get_string(pv->u.array.values[1], "InstanceType"), "ml.g5.12xlarge");
	assert_string_equal(json_get_string(pv->u.array.values[1], "ModelName"), "m2");
	yajl_tree_free(v);

	expect_error(call(f, "CreateEndpointConfig",
			  "{\"EndpointConfigName\":\"cfg\",\"ProductionVariants\":[" VARIANT("") "]}"),
		     400, "ValidationException",
		     "Cannot create already existing endpoint configuration "
		     "\"arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/cfg\".");
	/* a model may go while a config names it, as on SageMaker */
	call_ok(f, "DeleteModel", "{\"ModelName\":\"m2\"}");
	assert_non_null(store_get_endpoint_config(f->store, "Cfg"));
	call_ok(f, "DeleteEndpointConfig", "{\"EndpointConfigName\":\"Cfg\"}");
	expect_error(call(f, "DescribeEndpointConfig", "{\"EndpointConfigName\":\"Cfg\"}"), 400, "ValidationException",
		     "Could not find endpoint configuration \"arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/cfg\".");
	expect_error(call(f, "DeleteEndpointConfig", "{\"EndpointConfigName\":\"Cfg\"}"), 400, "ValidationException",
		     "Could not find endpoint configuration \"arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/cfg\".");
}

static void test_rules(void **state)
{
	struct fixture *f = *state;
	make_model(f, "m");
	bad(f, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":[" VARIANT("") "," VARIANT("") "]}",
	    "ValidationException",
	    "Duplicate VariantName 'AllTraffic' in ProductionVariants: every variant of an endpoint configuration "
	    "needs a unique name.");
	bad(f, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":[{\"VariantName\":\"v\",\"ModelName\":\"ghost\","
	       "\"InitialInstanceCount\":1,\"InstanceType\":\"ml.m5.large\"}]}",
	    "ValidationException", "Could not find model \"arn:aws:sagemaker:us-east-1:000000000000:model/ghost\".");
	bad(f, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":[]}", "ValidationException",
	    "1 validation error detected: Value '[]' at 'productionVariants' failed to satisfy constraint: Member "
	    "must have length greater than or equal to 1");
	bad(f, "{\"EndpointConfigName\":\"c\"}", "ValidationException",
	    "1 validation error detected: Value null at 'productionVariants' failed to satisfy constraint: Member "
	    "must not be null");
	struct berth_buf b = BERTH_BUF_INIT;
	buf_append_str(&b, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":[");
	for (int i = 0; i < 11; i++)
		buf_printf(&b, "%s{\"VariantName\":\"v%d\",\"ModelName\":\"m\",\"InitialInstanceCount\":1,"
			       "\"InstanceType\":\"ml.m5.large\"}", i ? "," : "", i);
	buf_append_str(&b, "]}");
	struct api_reply r = call(f, "CreateEndpointConfig", b.data);
	assert_non_null(strstr(r.body.data, "at 'productionVariants' failed to satisfy constraint: Member must have "
					    "length less than or equal to 10"));
	expect_error(r, 400, "ValidationException", NULL);
	buf_free(&b);
	bad(f, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":[{\"VariantName\":\"v_1\",\"ModelName\":\"m\","
	       "\"InitialInstanceCount\":0,\"InstanceType\":\"m5.large\",\"InitialVariantWeight\":-1}]}",
	    "ValidationException",
	    "4 validation errors detected: Value 'v_1' at 'productionVariants.1.variantName' failed to satisfy "
	    "constraint: Member must satisfy regular expression pattern: " PATTERN "; Value '0' at "
	    "'productionVariants.1.initialInstanceCount' failed to satisfy constraint: Member must have value "
	    "greater than or equal to 1; Value 'm5.large' at 'productionVariants.1.instanceType' failed to satisfy "
	    "constraint: Member must satisfy regular expression pattern: ml\\.[a-z0-9]+\\.[a-z0-9]+; Value '-1' at "
	    "'productionVariants.1.initialVariantWeight' failed to satisfy constraint: Member must have value "
	    "greater than or equal to 0");
	bad(f, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":[{\"VariantName\":\"v\",\"ModelName\":\"m\","
	       "\"InitialInstanceCount\":21,\"InstanceType\":\"ml.m5.large\"}]}",
	    "ValidationException",
	    "1 validation error detected: Value '21' at 'productionVariants.1.initialInstanceCount' failed to "
	    "satisfy constraint: Member must have value less than or equal to 20");
	bad(f, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":[{\"VariantName\":\"v\",\"ModelName\":\"m\"}]}",
	    "ValidationException",
	    "2 validation errors detected: Value null at 'productionVariants.1.initialInstanceCount' failed to "
	    "satisfy constraint: Member must not be null; Value null at 'productionVariants.1.instanceType' failed "
	    "to satisfy constraint: Member must not be null");
	bad(f, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":{}}", "SerializationException",
	    "'productionVariants' must be a list, not an object.");
	bad(f, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":[{\"VariantName\":\"v\",\"ModelName\":\"m\","
	       "\"InitialInstanceCount\":1.5,\"InstanceType\":\"ml.m5.large\"}]}",
	    "SerializationException",
	    "'productionVariants.1.initialInstanceCount' must be an integer, not a fraction or an out-of-range number.");
	bad(f, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":[{\"VariantName\":\"v\",\"ModelName\":\"m\","
	       "\"InitialInstanceCount\":1,\"InstanceType\":\"ml.m5.large\",\"InitialVariantWeight\":\"1\"}]}",
	    "SerializationException", "'productionVariants.1.initialVariantWeight' must be a number, not a string.");
}

/* ContainerStartupHealthCheckTimeoutInSeconds and
 * ModelDataDownloadTimeoutInSeconds: SageMaker's 60..3600, kept and
 * described; unsupported members refused by name, nothing created. */
static void test_variant_timeouts_and_unsupported_members(void **state)
{
	struct fixture *f = *state;
	make_model(f, "m");
	bad(f, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":[" VARIANT(",\"ContainerStartupHealthCheckTimeoutInSeconds\":59") "]}",
	    "ValidationException",
	    "1 validation error detected: Value '59' at 'productionVariants.1.containerStartupHealthCheckTimeoutInSeconds' "
	    "failed to satisfy constraint: Member must have value greater than or equal to 60");
	bad(f, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":[" VARIANT(",\"ModelDataDownloadTimeoutInSeconds\":3601") "]}",
	    "ValidationException",
	    "1 validation error detected: Value '3601' at 'productionVariants.1.modelDataDownloadTimeoutInSeconds' "
	    "failed to satisfy constraint: Member must have value less than or equal to 3600");
	bad(f, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":[" VARIANT("") "],\"DataCaptureConfig\":"
	       "{\"InitialSamplingPercentage\":100,\"DestinationS3Uri\":\"s3://b/c\",\"CaptureOptions\":[]}}",
	    "ValidationException",
	    "berth does not support DataCaptureConfig yet: requests and responses are not captured. Remove it from "
	    "the CreateEndpointConfig request.");
	bad(f, "{\"EndpointConfigName\":\"c\",\"ProductionVariants\":[" VARIANT("") "," VARIANT(",\"EnableSSMAccess\":true") "]}",
	    "ValidationException",
	    "berth does not support ProductionVariants.2.EnableSSMAccess yet: there is no SSM agent to reach the "
	    "containers (false is accepted). Remove it from the CreateEndpointConfig request.");
	/* JSON null is "not given" */
	call_ok(f, "CreateEndpointConfig",
		"{\"EndpointConfigName\":\"c\",\"KmsKeyId\":null,\"ProductionVariants\":["
		VARIANT(",\"EnableSSMAccess\":false,\"ContainerStartupHealthCheckTimeoutInSeconds\":60,"
			"\"ModelDataDownloadTimeoutInSeconds\":3600") "]}");
	yajl_val v = expect_ok(call(f, "DescribeEndpointConfig", "{\"EndpointConfigName\":\"c\"}"));
	yajl_val pv = json_get(v, "ProductionVariants")->u.array.values[0];
	long long n = 0;
	assert_true(json_get_int64(pv, "ContainerStartupHealthCheckTimeoutInSeconds", &n) && n == 60);
	assert_true(json_get_int64(pv, "ModelDataDownloadTimeoutInSeconds", &n) && n == 3600);
	assert_null(json_get(pv, "EnableSSMAccess"));
	yajl_tree_free(v);
	assert_int_equal(store_get_endpoint_config(f->store, "c")->variants[0].startup_health_check_timeout_s, 60);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_describe, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_rules, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_variant_timeouts_and_unsupported_members, fixture_setup,
						fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
