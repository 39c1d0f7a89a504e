/* Instance and variant choice (router/invoke.c): least outstanding
 * requests between instances, weights between variants, Target-Variant,
 * and moving a request to another instance when its container cannot be
 * reached. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "invoke.h"
#include "route_table.h"

static const char table_json[] =
	"{\"op\":\"routes\",\"generation\":1,\"account\":\"123456789012\",\"region\":\"us-east-1\",\"endpoints\":["
	"{\"name\":\"three\",\"status\":\"InService\",\"mode\":\"Serial\",\"variants\":[{\"name\":\"AllTraffic\",\"weight\":1,"
	"\"instances\":[{\"containers\":[{\"hostname\":\"a\",\"socket\":\"/s/a0\"},{\"hostname\":\"b\",\"socket\":\"/s/b0\"}]},"
	"{\"containers\":[{\"hostname\":\"a\",\"socket\":\"/s/a1\"},{\"hostname\":\"b\",\"socket\":\"/s/b1\"}]},"
	"{\"containers\":[{\"hostname\":\"a\",\"socket\":\"/s/a2\"},{\"hostname\":\"b\",\"socket\":\"/s/b2\"}]}]}]},"
	"{\"name\":\"w13\",\"status\":\"Updating\",\"mode\":\"Single\",\"variants\":["
	"{\"name\":\"A\",\"weight\":1,\"instances\":[{\"containers\":[{\"hostname\":\"h\",\"socket\":\"/s/A\"}]}]},"
	"{\"name\":\"B\",\"weight\":3,\"instances\":[{\"containers\":[{\"hostname\":\"h\",\"socket\":\"/s/B\"}]}]}]}"
	"]}";

static int setup(void **state)
{
	struct berth_err err;
	*state = route_table_parse(table_json, strlen(table_json), &err);
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	route_table_unref(*state);
	return 0;
}

static size_t instance_index(const struct route_endpoint *e, const struct route_instance *in)
{
	return (size_t)(in - e->variants[0].instances);
}

static void least_outstanding(void **state)
{
	const struct route_table *t = *state;
	const struct route_endpoint *e = route_table_find(t, "three");
	struct invoke_plan plan;
	struct invoke_refusal r;
	/* nothing in flight: round-robin by pick */
	for (uint64_t pick = 0; pick < 6; pick++) {
		assert_int_equal(invoke_route(t, "three", NULL, NULL, NULL, pick, &plan, &r), 0);
		assert_int_equal(instance_index(e, plan.instance), pick % 3);
	}
	/* instance 0 has 2 in flight, instance 1 has 1, instance 2 has 0 */
	*e->variants[0].instances[0].outstanding = 2;
	*e->variants[0].instances[1].outstanding = 1;
	for (uint64_t pick = 0; pick < 6; pick++) {
		assert_int_equal(invoke_route(t, "three", NULL, NULL, NULL, pick, &plan, &r), 0);
		assert_int_equal(instance_index(e, plan.instance), 2);
		assert_string_equal(plan.steps[0]->socket, "/s/a2");
		assert_string_equal(plan.steps[1]->socket, "/s/b2");
	}
	*e->variants[0].instances[2].outstanding = 5;
	assert_int_equal(invoke_route(t, "three", NULL, NULL, NULL, 0, &plan, &r), 0);
	assert_int_equal(instance_index(e, plan.instance), 1);
	/* reroute: never the same instance, same container positions */
	assert_int_equal(invoke_reroute(&plan, 0), 0);
	assert_int_equal(instance_index(e, plan.instance), 0);
	assert_string_equal(plan.steps[1]->socket, "/s/b0");
}

static void weights_and_target(void **state)
{
	const struct route_table *t = *state;
	struct invoke_plan plan;
	struct invoke_refusal r;
	int a = 0, b = 0;
	for (uint64_t pick = 0; pick < 400; pick++) {
		assert_int_equal(invoke_route(t, "w13", NULL, NULL, NULL, pick, &plan, &r), 0); /* Updating serves */
		if (strcmp(plan.variant->name, "A") == 0)
			a++;
		else
			b++;
	}
	assert_in_range(a, 90, 110);
	assert_in_range(b, 290, 310);
	for (uint64_t pick = 0; pick < 10; pick++) {
		assert_int_equal(invoke_route(t, "w13", NULL, "A", NULL, pick, &plan, &r), 0);
		assert_string_equal(plan.variant->name, "A");
	}
	assert_int_equal(invoke_route(t, "w13", NULL, "C", NULL, 0, &plan, &r), -1);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.code, "ValidationError");
	/* one instance only: nowhere to move */
	assert_int_equal(invoke_route(t, "w13", NULL, "B", NULL, 0, &plan, &r), 0);
	assert_int_equal(invoke_reroute(&plan, 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(least_outstanding, setup, teardown),
		cmocka_unit_test_setup_teardown(weights_and_target, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
