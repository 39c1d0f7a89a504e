/* test_api_endpoint.c — CreateEndpoint / DescribeEndpoint / DeleteEndpoint
 * against a stub runtime: hooks called with the lock held, the wait for the
 * next stable state, the persisted record. */
#include <time.h>

#include "api_fixture.h"

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void setup_model_and_config(struct fixture *f)
{
	make_model(f, "m");
	make_config(f, "cfg", "m");
}

static void test_create_describe_delete(void **state)
{
	struct fixture *f = *state;
	setup_model_and_config(f);
	double t0 = mono_now();
	yajl_val v = expect_ok(call(f, "CreateEndpoint",
				    "{\"EndpointName\":\"Ep\",\"EndpointConfigName\":\"cfg\",\"Tags\":[{\"Key\":\"k\","
				    "\"Value\":\"v\"}]}"));
	assert_true(mono_now() - t0 < 1.0); /* the stub went InService at once: no wait */
	assert_string_equal(json_get_string(v, "EndpointArn"), "arn:aws:sagemaker:us-east-1:000000000000:endpoint/ep");
	yajl_tree_free(v);
	assert_int_equal(f->starts, 1);
	assert_string_equal(f->last_started, "Ep");
	assert_int_equal(f->routes, 1);
	const struct endpoint *e = store_get_endpoint(f->store, "Ep");
	assert_string_equal(e->variants[0].mode, "Single");
	assert_null(e->legacy_mode);
	assert_string_equal(e->variant_name, "AllTraffic");
	assert_int_equal(e->n_containers, 0);
	assert_int_equal(e->n_variants, 1);
	assert_int_equal(e->n_tags, 1);

	/* the config may go: the endpoint keeps its variants */
	call_ok(f, "DeleteEndpointConfig", "{\"EndpointConfigName\":\"cfg\"}");
	v = expect_ok(call(f, "DescribeEndpoint", "{\"EndpointName\":\"Ep\"}"));
	assert_string_equal(json_get_string(v, "EndpointName"), "Ep");
	assert_string_equal(json_get_string(v, "EndpointArn"), "arn:aws:sagemaker:us-east-1:000000000000:endpoint/ep");
	assert_string_equal(json_get_string(v, "EndpointConfigName"), "cfg");
	assert_string_equal(json_get_string(v, "EndpointStatus"), "InService");
	assert_null(json_get(v, "FailureReason"));
	double ct = 0, lm = 0;
	assert_true(json_get_double(v, "CreationTime", &ct) && json_get_double(v, "LastModifiedTime", &lm));
	assert_true(lm >= ct);
	yajl_val pv = json_get(v, "ProductionVariants");
	assert_int_equal(pv->u.array.len, 1);
	yajl_val pv0 = pv->u.array.values[0];
	assert_string_equal(json_get_string(pv0, "VariantName"), "AllTraffic");
	long long n = -1;
	assert_true(json_get_int64(pv0, "CurrentInstanceCount", &n) && n == 1);
	assert_true(json_get_int64(pv0, "DesiredInstanceCount", &n) && n == 1);
	double w = 0;
	assert_true(json_get_double(pv0, "CurrentWeight", &w) && w == 1.0);
	assert_true(json_get_double(pv0, "DesiredWeight", &w) && w == 1.0);
	yajl_val di = json_get(pv0, "DeployedImages");
	assert_int_equal(di->u.array.len, 1);
	assert_string_equal(json_get_string(di->u.array.values[0], "SpecifiedImage"), "oci:/img");
	assert_string_equal(json_get_string(di->u.array.values[0], "ResolvedImage"), "oci:/img");
	yajl_tree_free(v);

	struct api_reply r = call(f, "DeleteEndpoint", "{\"EndpointName\":\"Ep\"}");
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, "{}");
	buf_free(&r.body);
	assert_int_equal(f->stops, 1);
	assert_int_equal(f->routes, 2);
	assert_null(store_get_endpoint(f->store, "Ep"));
	expect_error(call(f, "DescribeEndpoint", "{\"EndpointName\":\"Ep\"}"), 400, "ValidationException",
		     "Could not find endpoint \"arn:aws:sagemaker:us-east-1:000000000000:endpoint/ep\".");
	expect_error(call(f, "DeleteEndpoint", "{\"EndpointName\":\"Ep\"}"), 400, "ValidationException",
		     "Could not find endpoint \"arn:aws:sagemaker:us-east-1:000000000000:endpoint/ep\".");
}

static void test_create_errors(void **state)
{
	struct fixture *f = *state;
	expect_error(call(f, "CreateEndpoint", "{\"EndpointName\":\"e\",\"EndpointConfigName\":\"nope\"}"), 400,
		     "ValidationException",
		     "Could not find endpoint configuration "
		     "\"arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/nope\".");
	expect_error(call(f, "CreateEndpoint", "{\"EndpointName\":\"e!\"}"), 400, "ValidationException",
		     "2 validation errors detected: Value 'e!' at 'endpointName' failed to satisfy constraint: Member "
		     "must satisfy regular expression pattern: [a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?; Value null at "
		     "'endpointConfigName' failed to satisfy constraint: Member must not be null");
	setup_model_and_config(f);
	call_ok(f, "CreateEndpoint", "{\"EndpointName\":\"e\",\"EndpointConfigName\":\"cfg\"}");
	expect_error(call(f, "CreateEndpoint", "{\"EndpointName\":\"E\",\"EndpointConfigName\":\"cfg\"}"), 400,
		     "ValidationException",
		     "Cannot create already existing endpoint \"arn:aws:sagemaker:us-east-1:000000000000:endpoint/e\".");
	/* the model was deleted after the config was made */
	call_ok(f, "DeleteModel", "{\"ModelName\":\"m\"}");
	expect_error(call(f, "CreateEndpoint", "{\"EndpointName\":\"e2\",\"EndpointConfigName\":\"cfg\"}"), 400,
		     "ValidationException", "Could not find model \"arn:aws:sagemaker:us-east-1:000000000000:model/m\".");
	assert_int_equal(f->starts, 1);
	assert_int_equal(store_count_endpoints(f->store), 1);
}

static void test_grace_period(void **state)
{
	struct fixture *f = *state;
	setup_model_and_config(f);
	f->start_status = NULL; /* the runtime never finishes */
	f->stop_removes = 0;
	f->ctx.grace_ms = 300;
	double t0 = mono_now();
	call_ok(f, "CreateEndpoint", "{\"EndpointName\":\"slow\",\"EndpointConfigName\":\"cfg\"}");
	double waited = mono_now() - t0;
	assert_true(waited >= 0.29 && waited < 2.0);
	yajl_val v = expect_ok(call(f, "DescribeEndpoint", "{\"EndpointName\":\"slow\"}"));
	assert_string_equal(json_get_string(v, "EndpointStatus"), "Creating");
	long long n = -1;
	assert_true(json_get_int64(json_get(v, "ProductionVariants")->u.array.values[0], "CurrentInstanceCount", &n));
	assert_int_equal(n, 0);
	yajl_tree_free(v);

	t0 = mono_now();
	call_ok(f, "DeleteEndpoint", "{\"EndpointName\":\"slow\"}");
	assert_true(mono_now() - t0 >= 0.29);
	assert_string_equal(store_get_endpoint(f->store, "slow")->status, "Deleting");
	/* deleting again is not an error and does not stop twice */
	call_ok(f, "DeleteEndpoint", "{\"EndpointName\":\"slow\"}");
	assert_int_equal(f->stops, 1);
}

static void test_failed_and_modes(void **state)
{
	struct fixture *f = *state;
	f->start_status = "Failed";
	call_ok(f, "CreateModel",
		"{\"ModelName\":\"pipe\",\"Containers\":[{\"Image\":\"a\"},{\"Image\":\"b\"}]}");
	call_ok(f, "CreateModel",
		"{\"ModelName\":\"dir\",\"InferenceExecutionConfig\":{\"Mode\":\"Direct\"},\"Containers\":[{\"Image\":\"a\"}]}");
	make_config(f, "c1", "pipe");
	make_config(f, "c2", "dir");
	call_ok(f, "CreateEndpoint", "{\"EndpointName\":\"e1\",\"EndpointConfigName\":\"c1\"}");
	call_ok(f, "CreateEndpoint", "{\"EndpointName\":\"e2\",\"EndpointConfigName\":\"c2\"}");
	assert_string_equal(store_get_endpoint(f->store, "e1")->variants[0].mode, "Serial");
	assert_string_equal(store_get_endpoint(f->store, "e2")->variants[0].mode, "Direct");
	/* each variant its own model's mode */
	call_ok(f, "CreateModel", "{\"ModelName\":\"one\",\"PrimaryContainer\":{\"Image\":\"a\"}}");
	call_ok(f, "CreateEndpointConfig",
		"{\"EndpointConfigName\":\"mixed\",\"ProductionVariants\":["
		"{\"VariantName\":\"s\",\"ModelName\":\"one\",\"InitialInstanceCount\":1,\"InstanceType\":\"ml.m5.large\"},"
		"{\"VariantName\":\"p\",\"ModelName\":\"pipe\",\"InitialInstanceCount\":1,\"InstanceType\":\"ml.m5.large\"},"
		"{\"VariantName\":\"d\",\"ModelName\":\"dir\",\"InitialInstanceCount\":1,\"InstanceType\":\"ml.m5.large\"}]}");
	call_ok(f, "CreateEndpoint", "{\"EndpointName\":\"e3\",\"EndpointConfigName\":\"mixed\"}");
	const struct endpoint *e3 = store_get_endpoint(f->store, "e3");
	assert_string_equal(e3->variants[0].mode, "Single");
	assert_string_equal(e3->variants[1].mode, "Serial");
	assert_string_equal(e3->variants[2].mode, "Direct");
	/* FailureReason only when Failed */
	struct endpoint *e = endpoint_dup(store_get_endpoint(f->store, "e1"));
	e->failure_reason = strdup("container b exited with status 3");
	assert_int_equal(store_put_endpoint(f->store, e, &(struct berth_err){ 0 }), 0);
	yajl_val v = expect_ok(call(f, "DescribeEndpoint", "{\"EndpointName\":\"e1\"}"));
	assert_string_equal(json_get_string(v, "EndpointStatus"), "Failed");
	assert_string_equal(json_get_string(v, "FailureReason"), "container b exited with status 3");
	assert_int_equal(json_get(json_get(v, "ProductionVariants")->u.array.values[0], "DeployedImages")->u.array.len, 2);
	yajl_tree_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_describe_delete, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_create_errors, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_grace_period, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_failed_and_modes, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
