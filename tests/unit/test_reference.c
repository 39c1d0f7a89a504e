/* test_reference.c — registry image references: parsing, normalizing,
 * refusing bad ones, and the mirror host patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "reference.h"

#define DIGEST "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void parse_ok(const char *text, const char *registry, const char *repo, const char *tag, const char *digest)
{
	struct image_reference r;
	struct berth_err err = { 0 };
	if (image_reference_parse(text, &r, &err) < 0)
		fail_msg("%s: %s", text, err.msg);
	assert_string_equal(r.registry, registry);
	assert_string_equal(r.repository, repo);
	assert_string_equal(r.tag, tag);
	assert_string_equal(r.digest, digest);
}

static void parse_bad(const char *text, const char *expect)
{
	struct image_reference r;
	struct berth_err err = { 0 };
	assert_int_equal(image_reference_parse(text, &r, &err), -1);
	assert_int_equal(err.cls, BERTH_ERR_VALIDATION);
	if (strstr(err.msg, expect) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", text, err.msg, expect);
}

static void test_is(void **state)
{
	(void)state;
	assert_true(image_reference_is("ubuntu"));
	assert_true(image_reference_is("127.0.0.1:5000/echo:1"));
	assert_false(image_reference_is("/abs/rootfs"));
	assert_false(image_reference_is("oci:/layout:tag"));
	assert_false(image_reference_is(""));
	assert_false(image_reference_is(NULL));
}

static void test_good(void **state)
{
	(void)state;
	parse_ok("ubuntu", "docker.io", "library/ubuntu", "latest", "");
	parse_ok("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", "");
	parse_ok("me/app", "docker.io", "me/app", "latest", "");
	parse_ok("123456789012.dkr.ecr.us-east-1.amazonaws.com/repo:tag",
		 "123456789012.dkr.ecr.us-east-1.amazonaws.com", "repo", "tag", "");
	parse_ok("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
		 "683313688378.dkr.ecr.us-east-1.amazonaws.com", "sagemaker-scikit-learn", "1.2-1-cpu-py3", "");
	parse_ok("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c", "latest", "");
	parse_ok("localhost/x", "localhost", "x", "latest", "");
	parse_ok("[::1]:5000/x:1", "[::1]:5000", "x", "1", "");
	parse_ok("reg.io/x@" DIGEST, "reg.io", "x", "", DIGEST);
	parse_ok("reg.io/x:t@" DIGEST, "reg.io", "x", "t", DIGEST);
	parse_ok("reg.io/a.b_c__d---e/f", "reg.io", "a.b_c__d---e/f", "latest", "");
}

static void test_bad(void **state)
{
	(void)state;
	parse_bad("", "not a valid image reference");
	parse_bad("Ubuntu", "invalid repository name");
	parse_bad("reg.io/x:", "invalid tag");
	parse_bad("reg.io/x:-t", "invalid tag");
	parse_bad("reg.io/x:t t", "invalid tag");
	parse_bad("reg.io/x@sha256:abc", "invalid digest");
	parse_bad("reg.io/x@md5:0123456789abcdef0123456789abcdef", "invalid digest");
	parse_bad("reg.io/x@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "invalid digest");
	parse_bad("reg.io/", "names no repository");
	parse_bad("reg.io/a//b", "invalid repository name");
	parse_bad("reg.io/a/", "invalid repository name");
	parse_bad("reg.io/-a", "invalid repository name");
	parse_bad("reg.io/a..b", "invalid repository name");
	parse_bad("reg.io/a___b", "invalid repository name");
	parse_bad("reg_io:5000/a", "invalid registry");
	parse_bad("reg.io:99999999/a", "invalid registry");
	parse_bad("reg.io:x/a", "invalid registry");
	parse_bad("[zz]:5/a", "invalid registry");
	char long_name[400];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	memcpy(long_name, "reg.io/", 7);
	parse_bad(long_name, "too long");
}

static void test_format(void **state)
{
	(void)state;
	struct image_reference r;
	struct berth_err err;
	char buf[600];
	assert_int_equal(image_reference_parse("ubuntu", &r, &err), 0);
	assert_int_equal(image_reference_format(&r, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "docker.io/library/ubuntu:latest");
	assert_int_equal(image_reference_pinned(&r, DIGEST, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "docker.io/library/ubuntu@" DIGEST);
	assert_int_equal(image_reference_parse("reg.io/x:t@" DIGEST, &r, &err), 0);
	assert_int_equal(image_reference_format(&r, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "reg.io/x:t@" DIGEST);
	assert_int_equal(image_reference_format(&r, buf, 10), -1);
}

static void test_host_patterns(void **state)
{
	(void)state;
	const char *ecr = "*.dkr.ecr.*.amazonaws.com";
	assert_true(image_reference_host_matches(ecr, "123456789012.dkr.ecr.us-east-1.amazonaws.com"));
	assert_true(image_reference_host_matches(ecr, "1.DKR.ecr.eu-west-2.amazonaws.com"));
	assert_false(image_reference_host_matches(ecr, "dkr.ecr.us-east-1.amazonaws.com"));
	assert_false(image_reference_host_matches(ecr, "a.b.dkr.ecr.us-east-1.amazonaws.com"));
	assert_false(image_reference_host_matches(ecr, "1.dkr.ecr.us-east-1.amazonaws.com.evil.io"));
	assert_false(image_reference_host_matches(ecr, "1.dkr.ecr.us.east.amazonaws.com"));
	assert_true(image_reference_host_matches("127.0.0.1:5000", "127.0.0.1:5000"));
	assert_false(image_reference_host_matches("127.0.0.1:5000", "127.0.0.1:5001"));
	assert_true(image_reference_host_matches("*.example.com", "a.example.com"));
	assert_false(image_reference_host_matches("*", "a.b"));
	assert_true(image_reference_host_matches("*", "docker"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is),
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_host_patterns),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
