/* test_resolve.c — what berthd reads from a registry's answer to its own
 * tag HEAD: WWW-Authenticate challenges, header lines, the digest and
 * media type it vouches for, token answers and auth.json entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "resolve.h"

#define HEX "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_challenge_bearer(void **state)
{
	(void)state;
	struct resolve_challenge c;
	assert_int_equal(resolve_parse_challenge("Bearer realm=\"https://auth.example/token\",service=\"registry.example\","
						 "scope=\"repository:library/ubuntu:pull\"",
						 &c),
			 0);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "https://auth.example/token");
	assert_string_equal(c.service, "registry.example");
	assert_string_equal(c.scope, "repository:library/ubuntu:pull");
	/* spaces, unquoted values, unknown params, case, escapes */
	assert_int_equal(resolve_parse_challenge("  BEARER  Realm = \"https://a/t?x=1\" , error=\"insufficient_scope\", "
						 "Service=reg , scope=\"a\\\"b\"",
						 &c),
			 0);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "https://a/t?x=1");
	assert_string_equal(c.service, "reg");
	assert_string_equal(c.scope, "a\"b");
}

static void test_challenge_basic_and_bad(void **state)
{
	(void)state;
	struct resolve_challenge c;
	assert_int_equal(resolve_parse_challenge("Basic realm=\"Registry Realm\"", &c), 0);
	assert_string_equal(c.scheme, "basic");
	assert_string_equal(c.realm, "Registry Realm");
	assert_string_equal(c.service, "");
	assert_int_equal(resolve_parse_challenge("Basic", &c), 0);
	assert_string_equal(c.scheme, "basic");
	assert_int_equal(resolve_parse_challenge("", &c), -1);
	assert_int_equal(resolve_parse_challenge("Bearer realm=\"unterminated", &c), -1);
	assert_int_equal(resolve_parse_challenge("Bearer realm", &c), -1);
	assert_int_equal(resolve_parse_challenge("Bearer realm=\"a\" junk", &c), -1);
	assert_int_equal(resolve_parse_challenge("Bearer =x", &c), -1);
	/* a realm longer than berth keeps is refused, not cut */
	char long_value[2000];
	int n = snprintf(long_value, sizeof(long_value), "Bearer realm=\"https://");
	memset(long_value + n, 'a', 1500);
	strcpy(long_value + n + 1500, "\"");
	assert_int_equal(resolve_parse_challenge(long_value, &c), -1);
	char long_scheme[64];
	memset(long_scheme, 'x', 40);
	long_scheme[40] = '\0';
	assert_int_equal(resolve_parse_challenge(long_scheme, &c), -1);
}

static void test_header_value(void **state)
{
	(void)state;
	char v[80];
	const char *line = "docker-content-digest:  sha256:" HEX " \r\n";
	assert_int_equal(resolve_header_value(line, strlen(line), "Docker-Content-Digest", v, sizeof(v)), 0);
	assert_string_equal(v, "sha256:" HEX);
	line = "Docker-Content-Digest-X: y\r\n";
	assert_int_equal(resolve_header_value(line, strlen(line), "Docker-Content-Digest", v, sizeof(v)), -1);
	line = "Content-Type: application/json\r\n";
	assert_int_equal(resolve_header_value(line, strlen(line), "Docker-Content-Digest", v, sizeof(v)), -1);
	line = "Content-Type:\r\n";
	assert_int_equal(resolve_header_value(line, strlen(line), "Content-Type", v, sizeof(v)), 0);
	assert_string_equal(v, "");
	/* too long for the buffer: refused */
	char big[200];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "X-A: ", 5);
	assert_int_equal(resolve_header_value(big, strlen(big), "X-A", v, sizeof(v)), -1);
	/* not NUL-terminated: only len bytes are read */
	char raw[] = "X-A: bc";
	assert_int_equal(resolve_header_value(raw, 6, "X-A", v, sizeof(v)), 0);
	assert_string_equal(v, "b");
}

static void test_digest_and_type(void **state)
{
	(void)state;
	assert_true(resolve_digest_valid("sha256:" HEX));
	assert_false(resolve_digest_valid("sha256:" HEX "0"));
	assert_false(resolve_digest_valid("sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
	assert_false(resolve_digest_valid("sha512:" HEX));
	assert_false(resolve_digest_valid(""));
	assert_true(resolve_media_type_accepted("application/vnd.oci.image.index.v1+json"));
	assert_true(resolve_media_type_accepted("application/vnd.oci.image.manifest.v1+json"));
	assert_true(resolve_media_type_accepted("application/vnd.docker.distribution.manifest.list.v2+json"));
	assert_true(resolve_media_type_accepted("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"));
	assert_false(resolve_media_type_accepted("application/vnd.docker.distribution.manifest.v1+prettyjws"));
	assert_false(resolve_media_type_accepted("application/json"));
	assert_false(resolve_media_type_accepted("application/vnd.oci.image.index.v1+jsonx"));
	assert_false(resolve_media_type_accepted(""));
}

static void test_token_answer(void **state)
{
	(void)state;
	char *t;
	long long life;
	const char *j = "{\"token\":\"abc\",\"expires_in\":300,\"issued_at\":\"2026-01-01T00:00:00Z\"}";
	assert_int_equal(resolve_parse_token(j, strlen(j), &t, &life), 0);
	assert_string_equal(t, "abc");
	assert_int_equal(life, 300);
	free(t);
	j = "{\"access_token\":\"xyz\"}";
	assert_int_equal(resolve_parse_token(j, strlen(j), &t, &life), 0);
	assert_string_equal(t, "xyz");
	assert_int_equal(life, 60);
	free(t);
	j = "{\"token\":\"\",\"access_token\":\"second\",\"expires_in\":0}";
	assert_int_equal(resolve_parse_token(j, strlen(j), &t, &life), 0);
	assert_string_equal(t, "second");
	assert_int_equal(life, 60);
	free(t);
	j = "{\"expires_in\":30}";
	assert_int_equal(resolve_parse_token(j, strlen(j), &t, &life), -1);
	assert_null(t);
	j = "{\"token\":\"a\\r\\nX-Injected: 1\"}"; /* would split the Authorization header */
	assert_int_equal(resolve_parse_token(j, strlen(j), &t, &life), -1);
	j = "not json";
	assert_int_equal(resolve_parse_token(j, strlen(j), &t, &life), -1);
}

static void test_auth_json(void **state)
{
	(void)state;
	char up[128];
	/* "user:pa:ss" and "u:p" in base64 */
	const char *j = "{\"auths\":{\"127.0.0.1:5000\":{\"auth\":\"dXNlcjpwYTpzcw==\"},\"r.example\":{\"auth\":\"dTpw\"}}}";
	assert_int_equal(resolve_auth_from_json(j, strlen(j), "127.0.0.1:5000", up, sizeof(up)), 0);
	assert_string_equal(up, "user:pa:ss");
	assert_int_equal(resolve_auth_from_json(j, strlen(j), "r.example", up, sizeof(up)), 0);
	assert_string_equal(up, "u:p");
	assert_int_equal(resolve_auth_from_json(j, strlen(j), "other", up, sizeof(up)), -1);
	assert_string_equal(up, "");
	j = "{\"auths\":{\"h\":{\"auth\":\"bm9jb2xvbg==\"}}}"; /* "nocolon" */
	assert_int_equal(resolve_auth_from_json(j, strlen(j), "h", up, sizeof(up)), -1);
	j = "{\"auths\":{\"h\":{\"auth\":\"!!!!\"}}}";
	assert_int_equal(resolve_auth_from_json(j, strlen(j), "h", up, sizeof(up)), -1);
	j = "{\"auths\":{\"h\":{\"identitytoken\":\"x\"}}}";
	assert_int_equal(resolve_auth_from_json(j, strlen(j), "h", up, sizeof(up)), -1);
	char small[4];
	j = "{\"auths\":{\"h\":{\"auth\":\"dXNlcjpwYTpzcw==\"}}}";
	assert_int_equal(resolve_auth_from_json(j, strlen(j), "h", small, sizeof(small)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_challenge_bearer), cmocka_unit_test(test_challenge_basic_and_bad),
		cmocka_unit_test(test_header_value),     cmocka_unit_test(test_digest_and_type),
		cmocka_unit_test(test_token_answer),     cmocka_unit_test(test_auth_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
