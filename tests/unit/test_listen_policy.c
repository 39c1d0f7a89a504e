/* test_listen_policy.c — who may listen where (access/listen_policy.h) and
 * the loopback test under it (common/netaddr.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "listen_policy.h"
#include "netaddr.h"

static bool loopback(const char *address)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct berth_err err;
	assert_int_equal(netaddr_parse(address, &ss, &len, &err), 0);
	return netaddr_is_loopback(&ss);
}

static void test_loopback(void **state)
{
	(void)state;
	assert_true(loopback("127.0.0.1:8080"));
	assert_true(loopback("127.255.1.2:1"));
	assert_true(loopback("localhost:80"));
	assert_true(loopback("[::1]:8080"));
	assert_false(loopback("0.0.0.0:8080"));
	assert_false(loopback(":8080"));
	assert_false(loopback("*:8080"));
	assert_false(loopback("[::]:8080"));
	assert_false(loopback("10.0.0.1:8080"));
	assert_false(loopback("128.0.0.1:8080"));
	assert_false(loopback("[::ffff:127.0.0.1]:8080")); /* a v6-only socket: never IPv4 loopback */
	assert_false(loopback("[fe80::1]:8080"));
}

static void test_format(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	socklen_t len;
	struct berth_err err;
	char out[64];
	assert_int_equal(netaddr_parse("[::1]:443", &ss, &len, &err), 0);
	netaddr_format(&ss, out, sizeof(out));
	assert_string_equal(out, "[::1]:443");
	assert_int_equal(netaddr_parse("localhost:8443", &ss, &len, &err), 0);
	netaddr_format(&ss, out, sizeof(out));
	assert_string_equal(out, "127.0.0.1:8443");
}

static int check(const char *listen, const char *tls_listen, bool cert, bool key, bool auth_none, bool insecure,
		 struct berth_err *err)
{
	const char *l[1] = { listen }, *t[1] = { tls_listen };
	struct listen_policy p = {
		.listen = l,
		.n_listen = listen ? 1 : 0,
		.tls_listen = t,
		.n_tls_listen = tls_listen ? 1 : 0,
		.have_cert = cert,
		.have_key = key,
		.auth_none = auth_none,
		.insecure_listen = insecure,
	};
	memset(err, 0, sizeof(*err));
	return listen_policy_check(&p, err);
}

static void test_policy(void **state)
{
	(void)state;
	struct berth_err err;
	/* loopback: anything goes */
	assert_int_equal(check("127.0.0.1:8080", NULL, false, false, true, false, &err), 0);
	assert_int_equal(check("[::1]:8080", "127.0.0.1:8443", true, true, true, false, &err), 0);
	/* cleartext elsewhere: TLS or --insecure-listen */
	assert_int_equal(check("0.0.0.0:8080", NULL, false, false, false, false, &err), -1);
	assert_string_equal(err.msg, "--listen 0.0.0.0:8080 is not a loopback address: callers and their keys would "
				     "cross the network in cleartext. Serve it over TLS: add --tls-cert PEM --tls-key "
				     "PEM and use --tls-listen 0.0.0.0:8080 instead; or, on a network you trust, add "
				     "--insecure-listen");
	assert_int_equal(check("0.0.0.0:8080", NULL, false, false, false, true, &err), 0);
	/* a certificate does not make a --listen address TLS-only */
	assert_int_equal(check("10.1.2.3:8080", NULL, true, true, false, false, &err), -1);
	assert_int_equal(check(NULL, "0.0.0.0:8443", true, true, false, false, &err), 0);
	/* auth none: loopback only, whatever else is given */
	assert_int_equal(check("0.0.0.0:8080", NULL, false, false, true, true, &err), -1);
	assert_non_null(strstr(err.msg, "--auth none would let anyone who reaches it call every operation"));
	assert_int_equal(check(NULL, "[::]:8443", true, true, true, false, &err), -1);
	assert_non_null(strstr(err.msg, "--tls-listen [::]:8443 is not a loopback address and --auth none"));
	/* the pair and --tls-listen */
	assert_int_equal(check("127.0.0.1:8080", NULL, true, false, false, false, &err), -1);
	assert_non_null(strstr(err.msg, "--tls-cert without --tls-key"));
	assert_int_equal(check("127.0.0.1:8080", NULL, false, true, false, false, &err), -1);
	assert_non_null(strstr(err.msg, "--tls-key without --tls-cert"));
	assert_int_equal(check(NULL, "127.0.0.1:8443", false, false, false, false, &err), -1);
	assert_string_equal(err.msg, "--tls-listen 127.0.0.1:8443 needs a certificate: add --tls-cert PEM and --tls-key PEM");
	/* one address, two sockets: refused */
	assert_int_equal(check("127.0.0.1:8443", "localhost:8443", true, true, false, false, &err), -1);
	assert_string_equal(err.msg, "--listen 127.0.0.1:8443 and --tls-listen localhost:8443 are the same address: "
				     "give each address once (a --listen address takes TLS too once there is a "
				     "certificate)");
	assert_int_equal(check("127.0.0.1:8080", "127.0.0.1:8443", true, true, false, false, &err), 0);
	/* a bad address is named */
	assert_int_equal(check("nowhere", NULL, false, false, false, false, &err), -1);
	assert_non_null(strstr(err.msg, "--listen"));
	assert_non_null(strstr(err.msg, "nowhere"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_policy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
