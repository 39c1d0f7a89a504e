/* Tags (orchestrator/api/api_tags.c): SageMaker's tag pattern on Unicode
 * text, ResourceArn splitting, the access table's entries for the tag
 * operations, and AddTags / DeleteTags / ListTags against a real store. */
#include "api_fixture.h"

#include "api_access.h"
#include "api_internal.h"

static void test_tag_pattern(void **state)
{
	(void)state;
	const char *good[] = { "",          "team",        "cost:center/x=1+2@a_b-c.d", "Größe", "名前",
			       "٣٤",        "a b",         "ideographic\u3000space",   "nbsp\u00a0x", "Ⅻ" };
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(good); i++)
		assert_true(api_tag_text_valid(good[i]));
	const char *bad[] = { "a!b", "tab\tx", "line\nx", "emoji😀", "quote\"", "semi;colon", "\xff\xfe" };
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(bad); i++)
		assert_false(api_tag_text_valid(bad[i]));
	assert_true(api_tag_key_reserved("aws:x"));
	assert_true(api_tag_key_reserved("AWS:x"));
	assert_false(api_tag_key_reserved("awsx"));
}

static void test_arn_split(void **state)
{
	(void)state;
	struct api_arn_parts p;
	assert_true(api_arn_split("arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/prod-a", &p));
	assert_true(p.known);
	assert_int_equal(p.kind, API_TAG_ENDPOINT_CONFIG);
	assert_string_equal(p.region, "us-east-1");
	assert_string_equal(p.account, "000000000000");
	assert_string_equal(p.name, "prod-a");
	assert_true(api_arn_split("arn:aws-cn:sagemaker::123456789012:training-job/t", &p));
	assert_false(p.known);
	assert_string_equal(p.arn_kind, "training-job");
	assert_false(api_arn_split("arn:aws:sagemaker:us-east-1:0000:model/x", &p));
	assert_false(api_arn_split("arn:aws:s3:::bucket", &p));
	assert_false(api_arn_split("", &p));
	char longer[300];
	snprintf(longer, sizeof(longer), "arn:aws:sagemaker:us-east-1:000000000000:model/%0250d", 0);
	assert_false(api_arn_split(longer, &p));
}

static void test_access_table(void **state)
{
	(void)state;
	enum credentials_kind kind = CRED_KIND_MODEL;
	const char *member = NULL;
	const char *ops[] = { "AddTags", "DeleteTags", "ListTags" };
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(ops); i++) {
		assert_true(api_access_resource(ops[i], &kind, &member));
		assert_int_equal(kind, CRED_KIND_NONE); /* from the ARN */
		assert_string_equal(member, "ResourceArn");
	}
}

#define ARN_MODEL "arn:aws:sagemaker:us-east-1:000000000000:model/"

static void expect_tags(struct fixture *f, const char *arn, const char *want)
{
	char body[512];
	snprintf(body, sizeof(body), "{\"ResourceArn\":\"%s\"}", arn);
	struct api_reply r = call(f, "ListTags", body);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body.data, want);
	buf_free(&r.body);
}

static void test_add_delete_list(void **state)
{
	struct fixture *f = *state;
	call_ok(f, "CreateModel",
		"{\"ModelName\":\"Tm\",\"PrimaryContainer\":{\"Image\":\"oci:/img\"},"
		"\"Tags\":[{\"Key\":\"a\",\"Value\":\"1\"},{\"Key\":\"a\",\"Value\":\"2\"}]}");
	expect_tags(f, ARN_MODEL "tm", "{\"Tags\":[{\"Key\":\"a\",\"Value\":\"2\"}]}");
	call_ok(f, "AddTags",
		"{\"ResourceArn\":\"" ARN_MODEL "tm\",\"Tags\":[{\"Key\":\"b\",\"Value\":\"\"},{\"Key\":\"a\",\"Value\":\"3\"}]}");
	expect_tags(f, ARN_MODEL "tm", "{\"Tags\":[{\"Key\":\"a\",\"Value\":\"3\"},{\"Key\":\"b\",\"Value\":\"\"}]}");
	/* persisted: the store's record carries them */
	const struct model *m = store_get_model(f->store, "Tm");
	assert_int_equal(m->n_tags, 2);
	call_ok(f, "DeleteTags", "{\"ResourceArn\":\"" ARN_MODEL "tm\",\"TagKeys\":[\"a\",\"zz\"]}");
	expect_tags(f, ARN_MODEL "tm", "{\"Tags\":[{\"Key\":\"b\",\"Value\":\"\"}]}");
	expect_error(call(f, "ListTags", "{\"ResourceArn\":\"" ARN_MODEL "nope\"}"), 400, "ValidationException",
		     "Could not find model \"" ARN_MODEL "nope\".");
	expect_error(call(f, "AddTags", "{\"ResourceArn\":\"" ARN_MODEL "tm\"}"), 400, "ValidationException",
		     "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be "
		     "null");
	expect_error(call(f, "AddTags", "{\"ResourceArn\":\"" ARN_MODEL "tm\",\"Tags\":[{\"Key\":\"aws:k\",\"Value\":\"\"}]}"),
		     400, "ValidationException", "System prefix 'aws:' reserved for AWS usage in tag key: aws:k");
	expect_error(call(f, "ListTags", "{\"ResourceArn\":\"" ARN_MODEL "tm\",\"MaxResults\":49}"), 400,
		     "ValidationException",
		     "1 validation error detected: Value '49' at 'maxResults' failed to satisfy constraint: Member must "
		     "have value greater than or equal to 50");
	expect_tags(f, ARN_MODEL "tm", "{\"Tags\":[{\"Key\":\"b\",\"Value\":\"\"}]}");
	/* deleting the model takes its tags with it */
	call_ok(f, "DeleteModel", "{\"ModelName\":\"Tm\"}");
	expect_error(call(f, "ListTags", "{\"ResourceArn\":\"" ARN_MODEL "tm\"}"), 400, "ValidationException",
		     "Could not find model \"" ARN_MODEL "tm\".");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tag_pattern),
		cmocka_unit_test(test_arn_split),
		cmocka_unit_test(test_access_table),
		cmocka_unit_test_setup_teardown(test_add_delete_list, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
