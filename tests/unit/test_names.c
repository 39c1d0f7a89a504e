/* test_names.c — SageMaker's name, hostname and environment-key rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "names.h"

static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void test_name(void **state)
{
	(void)state;
	assert_true(name_is_valid("a"));
	assert_true(name_is_valid("my-model-1"));
	assert_true(name_is_valid("A--B"));
	assert_true(name_is_valid("0"));
	assert_false(name_is_valid(""));
	assert_false(name_is_valid(NULL));
	assert_false(name_is_valid("-a"));
	assert_false(name_is_valid("a-"));
	assert_false(name_is_valid("-"));
	assert_false(name_is_valid("a_b"));
	assert_false(name_is_valid("a.b"));
	assert_false(name_is_valid("x!"));
	assert_false(name_is_valid("a b"));
	assert_false(name_is_valid("caf\xc3\xa9"));
	char *s63 = repeat('a', 63), *s64 = repeat('a', 64);
	assert_true(name_is_valid(s63));
	assert_false(name_is_valid(s64));
	free(s63);
	free(s64);
}

static void test_hostname(void **state)
{
	(void)state;
	assert_true(hostname_is_valid("primary"));
	assert_true(hostname_is_valid("a"));
	assert_true(hostname_is_valid("a--b"));
	assert_true(hostname_is_valid("container-1"));
	assert_false(hostname_is_valid(""));
	assert_false(hostname_is_valid(NULL));
	assert_false(hostname_is_valid("-a"));
	assert_false(hostname_is_valid("a-"));
	assert_false(hostname_is_valid("a_b"));
	assert_false(hostname_is_valid("a.b"));
	char *s63 = repeat('h', 63), *s64 = repeat('h', 64);
	assert_true(hostname_is_valid(s63));
	assert_false(hostname_is_valid(s64));
	s63[10] = '-';
	assert_true(hostname_is_valid(s63));
	free(s63);
	free(s64);
}

static void test_env_key(void **state)
{
	(void)state;
	assert_true(env_key_is_valid("A"));
	assert_true(env_key_is_valid("_"));
	assert_true(env_key_is_valid("SAGEMAKER_PROGRAM"));
	assert_true(env_key_is_valid("a1_b2"));
	assert_false(env_key_is_valid(""));
	assert_false(env_key_is_valid(NULL));
	assert_false(env_key_is_valid("1ABC"));
	assert_false(env_key_is_valid("A-B"));
	assert_false(env_key_is_valid("A B"));
	assert_false(env_key_is_valid("A=B"));
	char *k1024 = repeat('K', 1024), *k1025 = repeat('K', 1025);
	assert_true(env_key_is_valid(k1024));
	assert_false(env_key_is_valid(k1025));
	free(k1024);
	free(k1025);
}

static void test_lower(void **state)
{
	(void)state;
	char *s = name_lower("My-Model-XYZ-09");
	assert_string_equal(s, "my-model-xyz-09");
	free(s);
	assert_null(name_lower(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_hostname),
		cmocka_unit_test(test_env_key),
		cmocka_unit_test(test_lower),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
