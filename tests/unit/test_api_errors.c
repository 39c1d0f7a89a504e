/* test_api_errors.c — dispatch and error rendering: unknown operations,
 * undecodable bodies, oversized bodies, and the exact JSON of an error. */
#include <errno.h>

#include "api_fixture.h"

static void test_render_exact(void **state)
{
	(void)state;
	struct api_reply r = { 0, BERTH_BUF_INIT };
	api_reply_error(&r, BERTH_ERR_VALIDATION, "Value '%s' at '%s'", "a\"b\\c", "modelName");
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body.data,
			    "{\"__type\":\"ValidationException\",\"message\":\"Value 'a\\\"b\\\\c' at 'modelName'\"}");
	/* rendering again replaces the body */
	api_reply_error(&r, BERTH_ERR_INTERNAL, "disk full");
	assert_int_equal(r.status, 500);
	assert_string_equal(r.body.data, "{\"__type\":\"InternalFailure\",\"message\":\"disk full\"}");
	/* text that is not UTF-8 never produces invalid JSON: the bad byte
	 * becomes U+FFFD and the rest of the message stays */
	api_reply_error(&r, BERTH_ERR_VALIDATION, "bad \xff byte");
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body.data, "{\"__type\":\"ValidationException\",\"message\":\"bad \xef\xbf\xbd byte\"}");
	/* each class answers with its own status and type */
	api_reply_error(&r, BERTH_ERR_RESOURCE_LIMIT, "full");
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body.data, "{\"__type\":\"ResourceLimitExceeded\",\"message\":\"full\"}");
	api_reply_error(&r, BERTH_ERR_TOO_LARGE, "big");
	assert_int_equal(r.status, 413);
	assert_string_equal(r.body.data, "{\"__type\":\"ValidationException\",\"message\":\"big\"}");
	buf_free(&r.body);
}

static void test_reply_err_uses_the_class(void **state)
{
	(void)state;
	struct api_reply r = { 0, BERTH_BUF_INIT };
	struct berth_err err;
	berth_err_setc(&err, BERTH_ERR_VALIDATION, 0, "Image \"x\" is wrong.");
	api_reply_err(&r, &err);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body.data, "{\"__type\":\"ValidationException\",\"message\":\"Image \\\"x\\\" is wrong.\"}");
	/* an error raised without a class is berth's own: 500, and says so */
	berth_err_set(&err, EIO, "cannot read /x");
	api_reply_err(&r, &err);
	assert_int_equal(r.status, 500);
	assert_string_equal(r.body.data,
			    "{\"__type\":\"InternalFailure\",\"message\":\"cannot read /x: Input/output error. This is a "
			    "failure of berthd on this host, not of the request: retry it, and see berthd's log if it "
			    "persists.\"}");
	/* ENOMEM is internal even where the failing code thought it was the input's */
	berth_err_setc(&err, BERTH_ERR_VALIDATION, ENOMEM, "image");
	api_reply_err(&r, &err);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body.data, "\"__type\":\"InternalFailure\""));
	buf_free(&r.body);
}

static void test_unknown_operation(void **state)
{
	struct fixture *f = *state;
	expect_error(call(f, "CreateTrainingJob", "{}"), 400, "UnknownOperationException",
		     "Operation SageMaker.CreateTrainingJob is not supported.");
	expect_error(call(f, "", "{}"), 400, "UnknownOperationException", "Operation SageMaker. is not supported.");
}

static void test_bodies(void **state)
{
	struct fixture *f = *state;
	struct api_reply r = call(f, "ListModels", "{\"MaxResults\": ");
	assert_non_null(strstr(r.body.data, "The request body is not valid JSON: "));
	expect_error(r, 400, "SerializationException", NULL);
	expect_error(call(f, "ListModels", "[1,2]"), 400, "SerializationException",
		     "The request body must be a JSON object.");
	expect_error(call(f, "ListModels", "\"x\""), 400, "SerializationException",
		     "The request body must be a JSON object.");
	/* invalid UTF-8 inside a string is undecodable */
	expect_error(call(f, "DescribeModel", "{\"ModelName\":\"\xff\"}"), 400, "SerializationException", NULL);
	/* an empty body is an empty request */
	yajl_tree_free(expect_ok(call(f, "ListModels", "")));
	yajl_tree_free(expect_ok(call(f, "ListModels", "  \n")));
	expect_error(call(f, "DescribeModel", ""), 400, "ValidationException",
		     "1 validation error detected: Value null at 'modelName' failed to satisfy constraint: Member "
		     "must not be null");
	/* unknown members are ignored, as AWS does */
	yajl_tree_free(expect_ok(call(f, "ListModels", "{\"Whatever\":[1]}")));

	size_t n = API_MAX_BODY_BYTES + 1;
	char *big = malloc(n);
	memset(big, ' ', n);
	struct api_reply b = { 0, BERTH_BUF_INIT };
	api_handle(&f->ctx, "ListModels", big, n, &b);
	free(big);
	expect_error(b, 413, "ValidationException", "Request body of 1048577 bytes exceeds the maximum of 1048576 bytes.");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_exact),
		cmocka_unit_test(test_reply_err_uses_the_class),
		cmocka_unit_test_setup_teardown(test_unknown_operation, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_bodies, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
