/* The InvokeEndpoint routing decision (router/invoke.c invoke_route). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "invoke.h"
#include "route_table.h"

static const char table_json[] =
	"{\"op\":\"routes\",\"generation\":3,\"account\":\"123456789012\",\"region\":\"us-east-1\",\"endpoints\":["
	"{\"name\":\"single\",\"status\":\"InService\",\"mode\":\"Single\",\"variants\":[{\"name\":\"AllTraffic\",\"weight\":1,"
	"\"instances\":[{\"containers\":[{\"hostname\":\"primary\",\"socket\":\"/s/p1\"}]},"
	"{\"containers\":[{\"hostname\":\"primary\",\"socket\":\"/s/p2\"}]}]}]},"
	"{\"name\":\"direct\",\"status\":\"InService\",\"mode\":\"Direct\",\"variants\":[{\"name\":\"v\",\"weight\":1,"
	"\"instances\":[{\"containers\":[{\"hostname\":\"sk\",\"socket\":\"/s/sk\"},{\"hostname\":\"xgb\",\"socket\":\"/s/xgb\"}]}]}]},"
	"{\"name\":\"serial\",\"status\":\"InService\",\"mode\":\"Serial\",\"variants\":[{\"name\":\"AllTraffic\",\"weight\":1,"
	"\"instances\":[{\"containers\":[{\"hostname\":\"pre\",\"socket\":\"/s/pre\"},{\"hostname\":\"model\",\"socket\":\"/s/m\"},"
	"{\"hostname\":\"post\",\"socket\":\"/s/post\"}]}]}]},"
	"{\"name\":\"weighted\",\"status\":\"InService\",\"mode\":\"Single\",\"variants\":["
	"{\"name\":\"a\",\"weight\":0,\"instances\":[{\"containers\":[{\"hostname\":\"ha\",\"socket\":\"/s/a\"}]}]},"
	"{\"name\":\"b\",\"weight\":3,\"instances\":[{\"containers\":[{\"hostname\":\"hb\",\"socket\":\"/s/b\"}]}]}]},"
	"{\"name\":\"creating\",\"status\":\"Creating\",\"mode\":\"Single\",\"variants\":[]},"
	"{\"name\":\"empty\",\"status\":\"InService\",\"mode\":\"Single\",\"variants\":[{\"name\":\"v\",\"weight\":1,\"instances\":[]}]}"
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

static void refused(const struct route_table *t, const char *ep, const char *target, const char *variant, int status,
		    const char *code, const char *message)
{
	struct invoke_plan plan;
	struct invoke_refusal r;
	assert_int_equal(invoke_route(t, ep, target, variant, 0, &plan, &r), -1);
	assert_int_equal(r.status, status);
	assert_string_equal(r.code, code);
	if (!strstr(r.message, message))
		fail_msg("message \"%s\" lacks \"%s\"", r.message, message);
}

static void unknown_endpoint(void **state)
{
	refused(*state, "nope", NULL, NULL, 400, "ValidationError", "Endpoint nope of account 123456789012 not found.");
}

static void not_in_service(void **state)
{
	refused(*state, "creating", NULL, NULL, 400, "ValidationError", "its status is Creating");
	refused(*state, "creating", NULL, NULL, 400, "ValidationError", "InService");
}

static void single_mode(void **state)
{
	struct invoke_plan plan;
	struct invoke_refusal r;
	assert_int_equal(invoke_route(*state, "single", NULL, NULL, 0, &plan, &r), 0);
	assert_int_equal(plan.n_steps, 1);
	assert_string_equal(plan.steps[0]->hostname, "primary");
	assert_string_equal(plan.variant->name, "AllTraffic");
	const char *first = plan.steps[0]->socket;
	/* successive picks spread over the two instances */
	assert_int_equal(invoke_route(*state, "single", NULL, NULL, 1, &plan, &r), 0);
	assert_string_not_equal(plan.steps[0]->socket, first);
	refused(*state, "single", "primary", NULL, 400, "ValidationError", "only be used with an endpoint in Direct");
}

static void direct_mode(void **state)
{
	struct invoke_plan plan;
	struct invoke_refusal r;
	assert_int_equal(invoke_route(*state, "direct", "xgb", NULL, 0, &plan, &r), 0);
	assert_int_equal(plan.n_steps, 1);
	assert_string_equal(plan.steps[0]->hostname, "xgb");
	assert_string_equal(plan.steps[0]->socket, "/s/xgb");
	refused(*state, "direct", NULL, NULL, 400, "ValidationError", "X-Amzn-SageMaker-Target-Container-Hostname");
	refused(*state, "direct", NULL, NULL, 400, "ValidationError", "Direct");
	refused(*state, "direct", "lightgbm", NULL, 400, "ValidationError", "lightgbm");
	refused(*state, "direct", "lightgbm", NULL, 400, "ValidationError", "sk, xgb");
}

static void serial_mode(void **state)
{
	struct invoke_plan plan;
	struct invoke_refusal r;
	assert_int_equal(invoke_route(*state, "serial", NULL, NULL, 5, &plan, &r), 0);
	assert_int_equal(plan.n_steps, 3);
	assert_string_equal(plan.steps[0]->hostname, "pre");
	assert_string_equal(plan.steps[1]->hostname, "model");
	assert_string_equal(plan.steps[2]->hostname, "post");
	refused(*state, "serial", "model", NULL, 400, "ValidationError", "Serial mode");
}

static void variants(void **state)
{
	struct invoke_plan plan;
	struct invoke_refusal r;
	for (uint64_t i = 0; i < 50; i++) { /* weight 0 never chosen */
		assert_int_equal(invoke_route(*state, "weighted", NULL, NULL, i, &plan, &r), 0);
		assert_string_equal(plan.variant->name, "b");
	}
	assert_int_equal(invoke_route(*state, "weighted", NULL, "a", 0, &plan, &r), 0);
	assert_string_equal(plan.steps[0]->hostname, "ha");
	refused(*state, "weighted", NULL, "c", 400, "ValidationError", "Variant c not found");
	refused(*state, "empty", NULL, NULL, 503, "ServiceUnavailable", "no instance");
}

static void inter_step_message(void **state)
{
	(void)state;
	char msg[512];
	invoke_format_inter_step_limit(msg, sizeof(msg), "pre", "model", 5242881);
	assert_string_equal(msg, "Received response from pre with status code 200. However, the request payload from pre to model "
				 "is 5242881 bytes, which has exceeded the maximum limit of 5 MB.");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(unknown_endpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(not_in_service, setup, teardown),
		cmocka_unit_test_setup_teardown(single_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(direct_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(serial_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(variants, setup, teardown),
		cmocka_unit_test(inter_step_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
