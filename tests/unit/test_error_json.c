/* common/err.c classes, common/utf8.c and common/error_json.c: every error
 * carries its SageMaker status and code, and every error body is valid
 * JSON whatever bytes its message holds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "error_json.h"
#include "json.h"
#include "utf8.h"

/* sanitize(in) == want, and the result is itself valid and stable. */
static void expect_sanitized(const char *in, size_t len, const char *want)
{
	struct berth_buf b = BERTH_BUF_INIT;
	assert_int_equal(utf8_sanitize(&b, in, len), 0);
	assert_non_null(b.data);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	assert_true(utf8_is_valid(b.data, b.len));
	assert_int_equal(utf8_is_valid(in, len), strcmp(in, want) == 0 && len == strlen(want));
	struct berth_buf again = BERTH_BUF_INIT;
	assert_int_equal(utf8_sanitize(&again, b.data, b.len), 0);
	assert_string_equal(again.data, b.data);
	buf_free(&again);
	buf_free(&b);
}

#define R "\xef\xbf\xbd" /* U+FFFD */
#define S(lit) lit, sizeof(lit) - 1

static void utf8_replacement(void **state)
{
	(void)state;
	/* well-formed: 1 to 4 bytes, the edges of each range */
	expect_sanitized(S("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
	expect_sanitized(S("\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"),
			 "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
	expect_sanitized(S(""), "");
	/* a lone byte that begins nothing: one U+FFFD each */
	expect_sanitized(S("a\xff" "b"), "a" R "b");
	expect_sanitized(S("\x80\xbf"), R R);
	expect_sanitized(S("\xc0\xaf"), R R);             /* overlong '/': C0 begins nothing */
	expect_sanitized(S("\xf5\x80\x80\x80"), R R R R); /* past U+10FFFF's lead bytes */
	/* truncated sequences: one U+FFFD for the maximal subpart */
	expect_sanitized(S("\xc3"), R);
	expect_sanitized(S("\xe2\x82"), R);
	expect_sanitized(S("x\xe2\x82y"), "x" R "y");
	expect_sanitized(S("\xf0\x9f\x98"), R);
	expect_sanitized(S("\xf0\x9f\x98" "A"), R "A");
	/* overlong, surrogate and too large: the second byte is out of range */
	expect_sanitized(S("\xe0\x80\x80"), R R R);
	expect_sanitized(S("\xed\xa0\x80"), R R R);       /* U+D800 */
	expect_sanitized(S("\xf4\x90\x80\x80"), R R R R); /* U+110000 */
	expect_sanitized(S("\xf0\x80\x80\x80"), R R R R);
	/* the Unicode Standard's own example (table 3-8): 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 */
	expect_sanitized(S("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64"), "a" R R R "b" R "c" R R "d");
}

static void error_body(void **state)
{
	(void)state;
	struct berth_buf b = BERTH_BUF_INIT;
	assert_int_equal(error_json_render(&b, "ValidationException", "Value 'a\"b\\c' at 'modelName'"), 0);
	assert_string_equal(b.data, "{\"__type\":\"ValidationException\",\"message\":\"Value 'a\\\"b\\\\c' at 'modelName'\"}");
	buf_reset(&b);
	assert_int_equal(error_json_render(&b, NULL, "Endpoint e of account 0 not found."), 0);
	assert_string_equal(b.data, "{\"message\":\"Endpoint e of account 0 not found.\"}");
	buf_reset(&b);
	/* invalid UTF-8 is replaced and the rest of the message kept; the body parses */
	assert_int_equal(error_json_render(&b, "InternalFailure", "cannot open /img/\xff\xfe/x: No such file"), 0);
	assert_string_equal(b.data, "{\"__type\":\"InternalFailure\",\"message\":\"cannot open /img/" R R "/x: No such file\"}");
	struct berth_err err = { 0 };
	yajl_val v = json_parse(b.data, b.len, &err);
	assert_non_null(v);
	assert_string_equal(json_get_string(v, "message"), "cannot open /img/" R R "/x: No such file");
	yajl_tree_free(v);
	buf_reset(&b);
	/* control characters are escaped, NUL-free messages only (C strings) */
	assert_int_equal(error_json_render(&b, NULL, "tab\there\x01"), 0);
	assert_string_equal(b.data, "{\"message\":\"tab\\there\\u0001\"}");
	buf_free(&b);
}

static void classes(void **state)
{
	(void)state;
	struct berth_err err;
	/* berth_err_set keeps meaning "berth's own fault" */
	assert_int_equal(berth_err_set(&err, EIO, "cannot read %s", "/x"), -1);
	assert_int_equal(err.cls, BERTH_ERR_INTERNAL);
	assert_string_equal(err.msg, "cannot read /x: Input/output error");
	assert_int_equal(berth_err_class_status(err.cls), 500);
	assert_string_equal(berth_err_class_type(err.cls), "InternalFailure");
	assert_string_equal(berth_err_class_runtime_code(err.cls), "InternalFailure");

	assert_int_equal(berth_err_setc(&err, BERTH_ERR_VALIDATION, 0, "Image \"%s\" is bad.", "x"), -1);
	assert_int_equal(err.cls, BERTH_ERR_VALIDATION);
	assert_int_equal(err.errnum, 0);
	assert_string_equal(err.msg, "Image \"x\" is bad.");
	assert_int_equal(berth_err_class_status(err.cls), 400);
	assert_string_equal(berth_err_class_type(err.cls), "ValidationException");
	assert_string_equal(berth_err_class_runtime_code(err.cls), "ValidationError");
	/* a prefix keeps the class */
	berth_err_prefix(&err, "Container '%s'", "primary");
	assert_int_equal(err.cls, BERTH_ERR_VALIDATION);
	assert_string_equal(err.msg, "Container 'primary': Image \"x\" is bad.");

	/* ENOMEM is always internal, whatever the caller claims */
	berth_err_setc(&err, BERTH_ERR_VALIDATION, ENOMEM, "image");
	assert_int_equal(err.cls, BERTH_ERR_INTERNAL);
	/* an unknown class is internal too */
	berth_err_setc(&err, (enum berth_err_class)999, 0, "x");
	assert_int_equal(err.cls, BERTH_ERR_INTERNAL);
	assert_int_equal(berth_err_class_status((enum berth_err_class)-1), 500);

	/* the table */
	assert_int_equal(berth_err_class_status(BERTH_ERR_RESOURCE_LIMIT), 400);
	assert_string_equal(berth_err_class_type(BERTH_ERR_RESOURCE_LIMIT), "ResourceLimitExceeded");
	assert_string_equal(berth_err_class_type(BERTH_ERR_NOT_FOUND), "ValidationException");
	assert_string_equal(berth_err_class_type(BERTH_ERR_ALREADY_EXISTS), "ValidationException");
	assert_string_equal(berth_err_class_type(BERTH_ERR_SERIALIZATION), "SerializationException");
	assert_int_equal(berth_err_class_status(BERTH_ERR_TOO_LARGE), 413);
	assert_string_equal(berth_err_class_type(BERTH_ERR_UNKNOWN_OPERATION), "UnknownOperationException");
	assert_int_equal(berth_err_class_status(BERTH_ERR_UNAVAILABLE), 503);
	assert_string_equal(berth_err_class_runtime_code(BERTH_ERR_UNAVAILABLE), "ServiceUnavailable");
	assert_int_equal(berth_err_class_status(BERTH_ERR_MODEL), 424);
	assert_string_equal(berth_err_class_runtime_code(BERTH_ERR_MODEL), "ModelError");

	/* blaming the input: a bad name is the caller's, a full table berth's */
	berth_err_set(&err, ENOENT, "open /nope");
	berth_err_blame_input(&err);
	assert_int_equal(err.cls, BERTH_ERR_VALIDATION);
	berth_err_set(&err, EMFILE, "open /x");
	berth_err_blame_input(&err);
	assert_int_equal(err.cls, BERTH_ERR_INTERNAL);
	berth_err_set(&err, ENOMEM, "parse");
	berth_err_blame_input(&err);
	assert_int_equal(err.cls, BERTH_ERR_INTERNAL);
	/* an explicit class is not overridden */
	berth_err_setc(&err, BERTH_ERR_UNAVAILABLE, ENOENT, "store");
	berth_err_blame_input(&err);
	assert_int_equal(err.cls, BERTH_ERR_UNAVAILABLE);
	berth_err_clear(&err);
	assert_int_equal(err.cls, BERTH_ERR_INTERNAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(utf8_replacement),
		cmocka_unit_test(error_body),
		cmocka_unit_test(classes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
