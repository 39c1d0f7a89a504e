/* test_registry_config.c — the registries setting: parsing, its refusals,
 * the start-up cross-check, and where a reference is pulled from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "json.h"
#include "registry_config.h"

static int parse(const char *text, struct registry_config *c, struct berth_err *err)
{
	yajl_val v = json_parse(text, strlen(text), err);
	assert_non_null(v);
	int r = registry_config_parse(v, c, err);
	yajl_tree_free(v);
	return r;
}

static void bad(const char *text, const char *want)
{
	struct registry_config c;
	struct berth_err err = { 0 };
	assert_int_equal(registry_config_defaults(&c, &err), 0);
	int r = parse(text, &c, &err);
	if (r == 0)
		r = registry_config_check(&c, &err);
	assert_int_equal(r, -1);
	if (strstr(err.msg, want) == NULL)
		fail_msg("%s: \"%s\" lacks \"%s\"", text, err.msg, want);
	registry_config_free(&c);
}

static const char GOOD[] = "{\"hosts\":{\"127.0.0.1:5000\":{\"username\":\"u\",\"password\":\"p\",\"cert_dir\":\"/c\"},"
			   "\"plain.example:80\":{\"tls_verify\":false}},"
			   "\"mirrors\":{\"*.dkr.ecr.*.amazonaws.com\":\"127.0.0.1:5000/ecr/\","
			   "\"public.ecr.aws\":\"oci-dir:/srv/layouts\"},\"pull_timeout_ms\":5000}";

static void route(const struct registry_config *c, const char *image, const char *want_source, const char *want_err)
{
	struct image_reference ref;
	struct registry_route rt;
	struct berth_err err = { 0 };
	assert_int_equal(image_reference_parse(image, &ref, &err), 0);
	int r = registry_route(c, image, &ref, &rt, &err);
	if (want_source) {
		if (r < 0)
			fail_msg("%s: %s", image, err.msg);
		assert_string_equal(rt.source, want_source);
	} else {
		assert_int_equal(r, -1);
		assert_int_equal(err.cls, BERTH_ERR_VALIDATION);
		if (strstr(err.msg, want_err) == NULL)
			fail_msg("%s: \"%s\" lacks \"%s\"", image, err.msg, want_err);
	}
}

static void test_parse_and_route(void **state)
{
	(void)state;
	struct registry_config c;
	struct berth_err err;
	assert_int_equal(registry_config_defaults(&c, &err), 0);
	assert_int_equal(parse(GOOD, &c, &err), 0);
	assert_int_equal(registry_config_check(&c, &err), 0);
	assert_int_equal(c.n_hosts, 2);
	assert_true(c.hosts[0].tls_verify);
	assert_false(c.hosts[1].tls_verify);
	assert_int_equal(c.pull_timeout_ms, 5000);
	assert_int_equal(c.resolve_timeout_ms, 2000); /* the default */
	assert_string_equal(c.mirrors[0].prefix, "ecr");
	route(&c, "127.0.0.1:5000/echo:v1", "docker://127.0.0.1:5000/echo:v1", NULL);
	route(&c, "123456789012.dkr.ecr.us-east-1.amazonaws.com/repo:tag", "docker://127.0.0.1:5000/ecr/repo:tag", NULL);
	route(&c, "public.ecr.aws/a/b", "oci:/srv/layouts/a/b:latest", NULL);
	route(&c, "plain.example:80/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	      "docker://plain.example:80/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	      NULL);
	route(&c, "ghcr.io/a/b:1", NULL, "berthd does not pull from registry \"ghcr.io\" (it pulls from: 127.0.0.1:5000, "
					  "plain.example:80, *.dkr.ecr.*.amazonaws.com (mirrored), public.ecr.aws (mirrored))");
	route(&c, "ubuntu", NULL, "registry \"docker.io\"");
	registry_config_free(&c);
	/* berthd's own tag request's budget */
	assert_int_equal(registry_config_defaults(&c, &err), 0);
	assert_int_equal(parse("{\"resolve_timeout_ms\":250}", &c, &err), 0);
	assert_int_equal(c.resolve_timeout_ms, 250);
	registry_config_free(&c);
	/* allow_unlisted: any registry, anonymous */
	assert_int_equal(registry_config_defaults(&c, &err), 0);
	assert_int_equal(parse("{\"allow_unlisted\":true}", &c, &err), 0);
	route(&c, "ghcr.io/a/b:1", "docker://ghcr.io/a/b:1", NULL);
	registry_config_free(&c);
	/* no registries at all: the ECR hint */
	assert_int_equal(registry_config_defaults(&c, &err), 0);
	route(&c, "1.dkr.ecr.eu-west-1.amazonaws.com/r:1", NULL, "berth cannot reach Amazon ECR itself");
	registry_config_free(&c);
}

static void test_refusals(void **state)
{
	(void)state;
	bad("[]", "registries must be an object");
	bad("{\"nope\":1}", "unknown setting \"nope\"");
	bad("{\"hosts\":{\"a/b\":{}}}", "is not HOST or HOST:PORT");
	bad("{\"hosts\":{\"h\":{\"username\":\"u\"}}}", "\"username\" and \"password\" go together");
	bad("{\"hosts\":{\"h\":{\"username\":\"u:x\",\"password\":\"p\"}}}", "must not contain ':'");
	bad("{\"hosts\":{\"h\":{\"cert_dir\":\"rel\"}}}", "must be an absolute path");
	bad("{\"hosts\":{\"h\":{\"tls_verify\":\"yes\"}}}", "must be true or false");
	bad("{\"hosts\":{\"h\":{\"nope\":1}}}", "unknown setting \"nope\"");
	bad("{\"hosts\":{\"h\":{\"username\":\"u\",\"password\":\"p\",\"auth_file\":\"/a\"}}}", "not both");
	bad("{\"mirrors\":{\"x.io\":\"oci-dir:rel\"}}", "absolute directory");
	bad("{\"mirrors\":{\"x.io\":\"oci-dir:/a/../b\"}}", "absolute directory");
	bad("{\"mirrors\":{\"x.io\":5}}", "must be \"HOST[:PORT][/PREFIX]\"");
	bad("{\"mirrors\":{\"*.dkr.ecr.*.amazonaws.com\":\"10.0.0.1:5000\"}}",
	    "mirror \"*.dkr.ecr.*.amazonaws.com\" leads to registry \"10.0.0.1:5000\", which is not in registries.hosts");
	bad("{\"pull_timeout_ms\":5}", "from 1000 to 86400000");
	bad("{\"resolve_timeout_ms\":99}", "\"resolve_timeout_ms\" must be a whole number from 100 to 600000");
	bad("{\"resolve_timeout_ms\":600001}", "from 100 to 600000");
	bad("{\"resolve_timeout_ms\":\"2s\"}", "from 100 to 600000");
	bad("{\"arch\":\"AMD64\"}", "lower-case letters and digits");
	bad("{\"auth_file\":\"rel\"}", "absolute path");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_route),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
