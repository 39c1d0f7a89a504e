/* The router's access table and Host check (router/auth.c). The
 * verification itself is common/sigv4.c's (test_sigv4.c); end to end,
 * tests/integration/test_auth.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

static bool allowed(const char *host)
{
	static const char *const listen[] = { "10.1.2.3:8080", "[fd00::5]:443", "berth.internal:8080" };
	return router_auth_host_allowed(listen, 3, host, strlen(host));
}

static void host_check(void **state)
{
	(void)state;
	assert_true(allowed("localhost"));
	assert_true(allowed("LOCALHOST:8080"));
	assert_true(allowed("127.0.0.1"));
	assert_true(allowed("127.0.0.1:8080"));
	assert_true(allowed("127.9.8.7:1"));
	assert_true(allowed("[::1]"));
	assert_true(allowed("[::1]:8080"));
	assert_true(allowed("10.1.2.3:9999"));     /* a listen address, any port */
	assert_true(allowed("[fd00::5]"));
	assert_true(allowed("berth.internal"));
	/* DNS rebinding: a name the attacker's DNS points at 127.0.0.1 */
	assert_false(allowed("evil.example"));
	assert_false(allowed("evil.example:8080"));
	assert_false(allowed("localhost.evil.example"));
	assert_false(allowed("127.0.0.1.evil.example"));
	assert_false(allowed("128.0.0.1"));
	assert_false(allowed("[::2]:8080"));
	assert_false(allowed("[::1"));
	assert_false(allowed(""));
	assert_false(allowed(":8080"));
	assert_false(router_auth_host_allowed(NULL, 0, "10.1.2.3", 8));
}

static const char keys_msg[] =
	"{\"op\":\"auth\",\"mode\":\"sigv4\",\"region\":\"us-east-1\",\"account\":\"000000000000\",\"keys\":["
	"{\"id\":\"BRTHAAAAAAAAAAAAAAAA\",\"name\":\"app\",\"allow\":[\"sagemaker:InvokeEndpoint\"],"
	"\"endpoints\":[\"prod-*\"],\"signing\":{\"20261201\":\""
	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}},"
	"{\"id\":\"BRTHBBBBBBBBBBBBBBBB\",\"name\":\"ops\",\"verify\":\"berthd\"}]}";

static void table_from_berthd(void **state)
{
	(void)state;
	struct router_auth *a = router_auth_new();
	assert_non_null(a);
	assert_int_equal(router_auth_mode(a), ROUTER_AUTH_UNKNOWN);
	assert_true(router_auth_hashes_bodies(a)); /* not known yet: hash, in case */
	/* not ours: left to the next handler */
	char routes[] = "{\"op\":\"routes\",\"generation\":1,\"endpoints\":[]}";
	assert_false(router_auth_handle_event(a, routes, strlen(routes)));
	assert_memory_equal(routes, "{\"op\":\"routes\"", 14); /* not ours: left as it was */
	char evicted[] = "{\"op\":\"mme_evicted\",\"endpoint\":\"e\",\"model\":\"1\"}";
	assert_false(router_auth_handle_event(a, evicted, strlen(evicted)));

	char *line = strdup(keys_msg);
	assert_non_null(line);
	size_t len = strlen(line);
	assert_true(router_auth_handle_event(a, line, len));
	assert_int_equal(router_auth_mode(a), ROUTER_AUTH_SIGV4);
	for (size_t i = 0; i < len; i++) /* the signing keys do not stay in the watch buffer */
		assert_int_equal(line[i], 0);
	free(line);

	/* malformed: taken, the previous table kept */
	const char *bad[] = {
		"{\"op\":\"auth\",\"mode\":\"maybe\",\"region\":\"r\",\"account\":\"a\",\"keys\":[]}",
		"{\"op\":\"auth\",\"mode\":\"none\",\"region\":\"r\",\"account\":\"a\"}",
		"{\"op\":\"auth\",\"mode\":\"none\",\"region\":\"r\",\"account\":\"a\",\"keys\":[{\"id\":\"x\"}]}",
		"{\"op\":\"auth\",\"mode\":\"none\",\"region\":\"r\",\"account\":\"a\",\"keys\":[{\"id\":\"x\",\"name\":\"n\","
		"\"allow\":[\"sagemaker:*\"],\"signing\":{\"20261201\":\"zz\"}}]}",
		"{\"op\":\"auth\",\"mode\":\"none\",\"region\":\"r\",\"account\":\"a\",\"keys\":[{\"id\":\"x\",\"name\":\"n\","
		"\"verify\":\"router\"}]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		line = strdup(bad[i]);
		assert_non_null(line);
		assert_true(router_auth_handle_event(a, line, strlen(line)));
		assert_int_equal(router_auth_mode(a), ROUTER_AUTH_SIGV4);
		assert_int_equal(line[0], 0);
		free(line);
	}

	char none[] = "{\"op\":\"auth\",\"mode\":\"none\",\"region\":\"us-east-1\",\"account\":\"0\",\"keys\":[]}";
	assert_true(router_auth_handle_event(a, none, strlen(none)));
	assert_int_equal(router_auth_mode(a), ROUTER_AUTH_NONE);
	assert_false(router_auth_hashes_bodies(a));
	router_auth_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(host_check),
		cmocka_unit_test(table_from_berthd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
