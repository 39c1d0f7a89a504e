/* test_api_errors.c — dispatch and error rendering: unknown operations,
 * undecodable bodies, oversized bodies, and the exact JSON of an error. */
#include "api_fixture.h"

static void test_render_exact(void **state)
{
	(void)state;
	struct api_reply r = { 0, BERTH_BUF_INIT };
	api_reply_error(&r, 400, "ValidationException", "Value '%s' at '%s'", "a\"b\\c", "modelName");
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body.data,
			    "{\"__type\":\"ValidationException\",\"message\":\"Value 'a\\\"b\\\\c' at 'modelName'\"}");
	/* rendering again replaces the body */
	api_reply_error(&r, 500, "InternalFailure", "disk full");
	assert_int_equal(r.status, 500);
	assert_string_equal(r.body.data, "{\"__type\":\"InternalFailure\",\"message\":\"disk full\"}");
	/* text that is not UTF-8 never produces invalid JSON */
	api_reply_error(&r, 400, "ValidationException", "bad \xff byte");
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body.data, "{\"__type\":\"ValidationException\",\"message\":\"The request contains text "
					 "that is not valid UTF-8.\"}");
	buf_free(&r.body);
}

/* depth levels of '[' (or '{"a":' when objects) around 1, closed again */
static char *nested(size_t depth, bool objects)
{
	struct berth_buf b = BERTH_BUF_INIT;
	for (size_t i = 0; i < depth; i++)
		buf_append(&b, objects ? "{\"a\":" : "[", objects ? 5 : 1);
	buf_append(&b, "1", 1);
	for (size_t i = 0; i < depth; i++)
		buf_append(&b, objects ? "}" : "]", 1);
	buf_append(&b, "", 1);
	return b.data;
}

static void test_deep_nesting(void **state)
{
	struct fixture *f = *state;
	static const char deep_msg[] = "The request body nests JSON objects and arrays more than 64 levels deep. "
				       "Send at most 64 levels; no SageMaker request needs more.";
	/* 500,000 levels (1 MB, under the body limit): refused, no tree built */
	char *huge = nested(500000, false);
	expect_error(call(f, "ListModels", huge), 400, "ValidationException", deep_msg);
	free(huge);
	/* one past the bound, in objects: the outer object is level 1 */
	char *b65 = nested(65, true);
	expect_error(call(f, "ListModels", b65), 400, "ValidationException", deep_msg);
	free(b65);
	/* 64 levels in all parse; the operation then judges the member as usual */
	char *b64 = nested(64, true);
	yajl_tree_free(expect_ok(call(f, "ListModels", b64)));
	free(b64);
	/* brackets inside strings are text, not nesting */
	struct berth_buf s = BERTH_BUF_INIT;
	buf_append(&s, "{\"NameContains\":\"", 17);
	for (int i = 0; i < 100; i++)
		buf_append(&s, "[{", 2);
	buf_append(&s, "\"}", 3);
	struct api_reply r = call(f, "ListModels", s.data);
	assert_null(strstr(r.body.data ? r.body.data : "", "levels deep"));
	buf_free(&r.body);
	buf_free(&s);
	/* a syntax error before the bound is still a SerializationException */
	expect_error(call(f, "ListModels", "[[[[x"), 400, "SerializationException", NULL);
}

static void test_json_depth_bound(void **state)
{
	(void)state;
	struct berth_err err;
	for (size_t depth = 1; depth <= JSON_MAX_DEPTH + 1; depth++) {
		char *text = nested(depth, depth % 2 == 0);
		yajl_val v = json_parse(text, strlen(text), &err);
		if (depth <= JSON_MAX_DEPTH) {
			assert_non_null(v);
		} else {
			assert_null(v);
			assert_int_equal(err.errnum, JSON_TOO_DEEP);
			assert_string_equal(err.msg, "JSON nests arrays and objects more than 64 levels deep");
		}
		yajl_tree_free(v);
		free(text);
	}
	/* deep after a syntax error: the syntax error is what is reported */
	char bad[200] = "[1 2 ";
	memset(bad + 5, '[', 100);
	yajl_val v = json_parse(bad, strlen(bad), &err);
	assert_null(v);
	assert_int_equal(err.errnum, 0);
	assert_non_null(strstr(err.msg, "parse error"));
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
		cmocka_unit_test_setup_teardown(test_unknown_operation, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_bodies, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_deep_nesting, fixture_setup, fixture_teardown),
		cmocka_unit_test(test_json_depth_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
