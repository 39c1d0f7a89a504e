/* Route table parsing and lookup (router/route_table.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "route_table.h"

static const char good[] =
	"{\"op\":\"routes\",\"generation\":7,\"account\":\"111122223333\",\"region\":\"eu-west-1\","
	"\"endpoints\":["
	"{\"name\":\"zeta\",\"status\":\"InService\",\"mode\":\"Serial\",\"variants\":[{\"name\":\"AllTraffic\",\"weight\":1.0,"
	"\"instances\":[{\"containers\":[{\"hostname\":\"a\",\"socket\":\"/run/a.sock\",\"log\":\"/l/a\"},"
	"{\"hostname\":\"b\",\"socket\":\"/run/b.sock\"}]}]}]},"
	"{\"name\":\"alpha\",\"status\":\"Creating\",\"mode\":\"Single\",\"variants\":[]},"
	"{\"name\":\"mid\",\"status\":\"InService\",\"mode\":\"Direct\",\"variants\":[{\"name\":\"v1\",\"weight\":2,"
	"\"instances\":[{\"containers\":[{\"hostname\":\"x\",\"socket\":\"/run/x.sock\"}]}]}]}"
	"]}";

static void parses_good_table(void **state)
{
	(void)state;
	struct berth_err err;
	struct route_table *t = route_table_parse(good, strlen(good), &err);
	assert_non_null(t);
	assert_int_equal(t->generation, 7);
	assert_string_equal(t->account, "111122223333");
	assert_string_equal(t->region, "eu-west-1");
	assert_int_equal(t->n_endpoints, 3);
	/* sorted by name for lookup */
	assert_string_equal(t->endpoints[0].name, "alpha");
	assert_string_equal(t->endpoints[2].name, "zeta");
	const struct route_endpoint *z = route_table_find(t, "zeta");
	assert_non_null(z);
	assert_true(z->in_service);
	/* a table from an older berthd: the endpoint's mode applies to each variant */
	assert_int_equal(z->variants[0].mode, ROUTE_MODE_SERIAL);
	assert_int_equal(z->variants[0].instances[0].n_containers, 2);
	assert_string_equal(z->variants[0].instances[0].containers[1].socket, "/run/b.sock");
	assert_null(z->variants[0].instances[0].containers[1].log);
	const struct route_endpoint *a = route_table_find(t, "alpha");
	assert_false(a->in_service);
	assert_string_equal(a->status, "Creating");
	assert_int_equal(a->n_variants, 0);
	const struct route_endpoint *m = route_table_find(t, "mid");
	assert_int_equal(m->variants[0].mode, ROUTE_MODE_DIRECT);
	assert_true(m->variants[0].weight == 2.0);
	assert_null(route_table_find(t, "nope"));
	assert_null(route_table_find(t, ""));
	/* references */
	assert_ptr_equal(route_table_ref(t), t);
	route_table_unref(t);
	route_table_unref(t);
}

static void parses_empty_table(void **state)
{
	(void)state;
	struct berth_err err;
	const char *j = "{\"op\":\"routes\",\"generation\":1,\"account\":\"000000000000\",\"region\":\"us-east-1\",\"endpoints\":[]}";
	struct route_table *t = route_table_parse(j, strlen(j), &err);
	assert_non_null(t);
	assert_int_equal(t->n_endpoints, 0);
	assert_null(route_table_find(t, "x"));
	route_table_unref(t);
	t = route_table_new_empty();
	assert_non_null(t);
	assert_string_equal(t->account, "000000000000");
	route_table_unref(t);
}

static void expect_rejected(const char *json, const char *fragment)
{
	struct berth_err err;
	memset(&err, 0, sizeof(err));
	struct route_table *t = route_table_parse(json, strlen(json), &err);
	if (t)
		fail_msg("accepted: %s", json);
	if (!strstr(err.msg, fragment))
		fail_msg("message \"%s\" lacks \"%s\"", err.msg, fragment);
}

#define HEAD "{\"op\":\"routes\",\"generation\":1,\"account\":\"0\",\"region\":\"r\","

static void rejects_malformed_tables(void **state)
{
	(void)state;
	expect_rejected("{not json", "route table");
	expect_rejected("[]", "op");
	expect_rejected("{\"op\":\"ps\",\"endpoints\":[]}", "op");
	expect_rejected(HEAD "\"endpoints\":{}}", "endpoints");
	expect_rejected(HEAD "\"endpoints\":[1]}", "not an object");
	expect_rejected(HEAD "\"endpoints\":[{\"status\":\"InService\"}]}", "name");
	expect_rejected(HEAD "\"endpoints\":[{\"name\":\"e\",\"status\":\"InService\",\"mode\":\"Weird\"}]}", "unknown mode");
	expect_rejected(HEAD "\"endpoints\":[{\"name\":\"e\",\"status\":\"InService\",\"mode\":7}]}", "not a string");
	expect_rejected(HEAD "\"endpoints\":[{\"name\":\"e\",\"status\":\"InService\",\"variants\":[{\"name\":\"v\",\"mode\":\"direct\"}]}]}",
			"variant v has unknown mode");
	expect_rejected(HEAD "\"endpoints\":[{\"name\":\"e\",\"status\":\"InService\",\"variants\":[{\"name\":\"v\",\"mode\":[]}]}]}",
			"not a string");
	expect_rejected(HEAD "\"endpoints\":[{\"name\":\"e\",\"status\":\"InService\"},{\"name\":\"e\",\"status\":\"Failed\"}]}",
			"appears twice");
	expect_rejected(HEAD "\"endpoints\":[{\"name\":\"e\",\"status\":\"InService\",\"variants\":[{\"name\":\"v\","
			"\"instances\":[{\"containers\":[{\"hostname\":\"h\"}]}]}]}]}",
			"socket");
	expect_rejected(HEAD "\"endpoints\":[{\"name\":\"e\",\"status\":\"InService\",\"variants\":[{\"name\":\"v\","
			"\"instances\":[{\"containers\":[]}]}]}]}",
			"no containers");
	expect_rejected(HEAD "\"endpoints\":[{\"name\":\"e\",\"status\":\"InService\",\"variants\":[{\"name\":\"v\","
			"\"instances\":[{\"containers\":[{\"hostname\":\"h\",\"socket\":\"/a\"},{\"hostname\":\"h\",\"socket\":\"/b\"}]}]}]}]}",
			"appears twice");
	expect_rejected(HEAD "\"endpoints\":[{\"name\":\"e\",\"status\":\"InService\",\"variants\":[{\"name\":\"v\",\"weight\":-1}]}]}",
			"negative");
	/* 16 containers: over the limit of 15 */
	char big[4096];
	int n = snprintf(big, sizeof(big), HEAD "\"endpoints\":[{\"name\":\"e\",\"status\":\"InService\",\"variants\":[{\"name\":\"v\",\"instances\":[{\"containers\":[");
	for (int i = 0; i < 16; i++)
		n += snprintf(big + n, sizeof(big) - (size_t)n, "%s{\"hostname\":\"h%d\",\"socket\":\"/s%d\"}", i ? "," : "", i, i);
	snprintf(big + n, sizeof(big) - (size_t)n, "]}]}]}]}");
	expect_rejected(big, "more than 15");
	/* a name of 64 characters */
	char longname[512];
	snprintf(longname, sizeof(longname), HEAD "\"endpoints\":[{\"name\":\"%064d\",\"status\":\"InService\"}]}", 0);
	expect_rejected(longname, "1 to 63");
}

/* Each variant has its own mode; one the variant omits is the endpoint's
 * (an older berthd), else Single. */
static void parses_per_variant_modes(void **state)
{
	(void)state;
	static const char mixed[] = HEAD "\"endpoints\":[{\"name\":\"e\",\"status\":\"InService\",\"variants\":["
		"{\"name\":\"one\",\"mode\":\"Single\"},{\"name\":\"dir\",\"mode\":\"Direct\"},"
		"{\"name\":\"ser\",\"mode\":\"Serial\"},{\"name\":\"mm\",\"mode\":\"MultiModel\"},{\"name\":\"dflt\"}]},"
		"{\"name\":\"old\",\"status\":\"InService\",\"mode\":\"Serial\",\"variants\":["
		"{\"name\":\"a\"},{\"name\":\"b\",\"mode\":\"Direct\"}]}]}";
	struct berth_err err;
	struct route_table *t = route_table_parse(mixed, strlen(mixed), &err);
	assert_non_null(t);
	const struct route_endpoint *e = route_table_find(t, "e");
	assert_int_equal(e->n_variants, 5);
	assert_int_equal(e->variants[0].mode, ROUTE_MODE_SINGLE);
	assert_int_equal(e->variants[1].mode, ROUTE_MODE_DIRECT);
	assert_int_equal(e->variants[2].mode, ROUTE_MODE_SERIAL);
	assert_int_equal(e->variants[3].mode, ROUTE_MODE_MULTI);
	assert_int_equal(e->variants[4].mode, ROUTE_MODE_SINGLE);
	assert_ptr_equal(route_endpoint_variant_in_mode(e, ROUTE_MODE_SERIAL), &e->variants[2]);
	const struct route_endpoint *old = route_table_find(t, "old");
	assert_int_equal(old->variants[0].mode, ROUTE_MODE_SERIAL);
	assert_int_equal(old->variants[1].mode, ROUTE_MODE_DIRECT);
	assert_null(route_endpoint_variant_in_mode(old, ROUTE_MODE_MULTI));
	route_table_unref(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_good_table),
		cmocka_unit_test(parses_empty_table),
		cmocka_unit_test(rejects_malformed_tables),
		cmocka_unit_test(parses_per_variant_modes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
