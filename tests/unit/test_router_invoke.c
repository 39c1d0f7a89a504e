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
	"{\"name\":\"empty\",\"status\":\"InService\",\"mode\":\"Single\",\"variants\":[{\"name\":\"v\",\"weight\":1,\"instances\":[]}]},"
	/* one endpoint, a variant of each mode, each with its own */
	"{\"name\":\"mixed\",\"status\":\"InService\",\"variants\":["
	"{\"name\":\"one\",\"weight\":1,\"mode\":\"Single\",\"instances\":[{\"containers\":[{\"hostname\":\"primary\",\"socket\":\"/s/one\"}]}]},"
	"{\"name\":\"dir\",\"weight\":1,\"mode\":\"Direct\",\"instances\":[{\"containers\":["
	"{\"hostname\":\"left\",\"socket\":\"/s/dl\"},{\"hostname\":\"right\",\"socket\":\"/s/dr\"}]}]},"
	"{\"name\":\"ser\",\"weight\":2,\"mode\":\"Serial\",\"instances\":[{\"containers\":["
	"{\"hostname\":\"first\",\"socket\":\"/s/s1\"},{\"hostname\":\"second\",\"socket\":\"/s/s2\"}]}]},"
	"{\"name\":\"mm\",\"weight\":0,\"mode\":\"MultiModel\",\"instances\":[{\"containers\":[{\"hostname\":\"primary\",\"socket\":\"/s/mm\"}]}]}]},"
	"{\"name\":\"nodirect\",\"status\":\"InService\",\"variants\":["
	"{\"name\":\"a\",\"weight\":1,\"mode\":\"Single\",\"instances\":[{\"containers\":[{\"hostname\":\"primary\",\"socket\":\"/s/na\"}]}]},"
	"{\"name\":\"b\",\"weight\":1,\"mode\":\"Serial\",\"instances\":[{\"containers\":[{\"hostname\":\"x\",\"socket\":\"/s/nx\"},"
	"{\"hostname\":\"y\",\"socket\":\"/s/ny\"}]}]}]}"
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
	assert_int_equal(invoke_route(t, ep, target, variant, NULL, 0, &plan, &r), -1);
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
	assert_int_equal(invoke_route(*state, "single", NULL, NULL, NULL, 0, &plan, &r), 0);
	assert_int_equal(plan.n_steps, 1);
	assert_string_equal(plan.steps[0]->hostname, "primary");
	assert_string_equal(plan.variant->name, "AllTraffic");
	const char *first = plan.steps[0]->socket;
	/* successive picks spread over the two instances */
	assert_int_equal(invoke_route(*state, "single", NULL, NULL, NULL, 1, &plan, &r), 0);
	assert_string_not_equal(plan.steps[0]->socket, first);
	refused(*state, "single", "primary", NULL, 400, "ValidationError", "only be used with an endpoint in Direct");
}

static void direct_mode(void **state)
{
	struct invoke_plan plan;
	struct invoke_refusal r;
	assert_int_equal(invoke_route(*state, "direct", "xgb", NULL, NULL, 0, &plan, &r), 0);
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
	assert_int_equal(invoke_route(*state, "serial", NULL, NULL, NULL, 5, &plan, &r), 0);
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
		assert_int_equal(invoke_route(*state, "weighted", NULL, NULL, NULL, i, &plan, &r), 0);
		assert_string_equal(plan.variant->name, "b");
	}
	assert_int_equal(invoke_route(*state, "weighted", NULL, "a", NULL, 0, &plan, &r), 0);
	assert_string_equal(plan.steps[0]->hostname, "ha");
	refused(*state, "weighted", NULL, "c", 400, "ValidationError", "Variant c not found");
	refused(*state, "empty", NULL, NULL, 503, "ServiceUnavailable", "no instance");
}

static int route(const struct route_table *t, const char *ep, const char *target, const char *variant,
		 const char *model, uint64_t pick, struct invoke_plan *plan, struct invoke_refusal *r)
{
	return invoke_route(t, ep, target, variant, model, pick, plan, r);
}

/* The variant is chosen first (TargetVariant or weight), then the request
 * goes by that variant's own mode. */
static void mixed_modes_route_per_variant(void **state)
{
	const struct route_table *t = *state;
	struct invoke_plan plan;
	struct invoke_refusal r;
	/* pinned: each variant in its own mode */
	assert_int_equal(route(t, "mixed", NULL, "one", NULL, 0, &plan, &r), 0);
	assert_int_equal(plan.n_steps, 1);
	assert_string_equal(plan.steps[0]->socket, "/s/one");
	assert_int_equal(route(t, "mixed", "right", "dir", NULL, 0, &plan, &r), 0);
	assert_int_equal(plan.n_steps, 1);
	assert_string_equal(plan.steps[0]->socket, "/s/dr");
	assert_int_equal(route(t, "mixed", NULL, "ser", NULL, 0, &plan, &r), 0);
	assert_int_equal(plan.n_steps, 2);
	assert_string_equal(plan.steps[0]->hostname, "first");
	assert_string_equal(plan.steps[1]->hostname, "second");
	assert_int_equal(route(t, "mixed", NULL, "mm", "m.tar.gz", 0, &plan, &r), 0);
	assert_string_equal(plan.steps[0]->socket, "/s/mm");
	/* by weight (1:1:2:0): every variant but mm, ser about half the time */
	size_t seen[3] = { 0 };
	for (uint64_t pick = 0; pick < 4000; pick++) {
		if (route(t, "mixed", NULL, NULL, NULL, pick, &plan, &r) < 0) {
			/* only the Direct variant refuses a request without its target */
			assert_string_equal(r.code, "ValidationError");
			assert_non_null(strstr(r.message, "Direct invocation mode"));
			seen[1]++;
			continue;
		}
		assert_string_not_equal(plan.variant->name, "mm");
		if (strcmp(plan.variant->name, "one") == 0) {
			assert_int_equal(plan.n_steps, 1);
			seen[0]++;
		} else {
			assert_string_equal(plan.variant->name, "ser");
			assert_int_equal(plan.n_steps, 2);
			seen[2]++;
		}
	}
	assert_in_range(seen[0], 800, 1200);
	assert_in_range(seen[1], 800, 1200);
	assert_in_range(seen[2], 1800, 2200);
}

static void mixed_modes_wrong_kind_of_target(void **state)
{
	const struct route_table *t = *state;
	struct invoke_plan plan;
	struct invoke_refusal r;
	/* a hostname on the Serial variant: names the Direct one */
	assert_int_equal(route(t, "mixed", "first", "ser", NULL, 0, &plan, &r), -1);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.code, "ValidationError");
	assert_string_equal(r.message,
			    "The X-Amzn-SageMaker-Target-Container-Hostname header can only be used with a production "
			    "variant in Direct invocation mode; variant ser of endpoint mixed is in Serial mode. Name a "
			    "Direct variant (e.g. dir) in the X-Amzn-SageMaker-Target-Variant header.");
	/* unknown hostname on the Direct variant */
	assert_int_equal(route(t, "mixed", "first", "dir", NULL, 0, &plan, &r), -1);
	assert_non_null(strstr(r.message, "(its containers: left, right)"));
	/* a TargetModel on the Single variant: names the multi-model one */
	assert_int_equal(route(t, "mixed", NULL, "one", "m.tar.gz", 0, &plan, &r), -1);
	assert_string_equal(r.message,
			    "Variant one of endpoint mixed is not a multi-model variant and does not support target model "
			    "header. Name the multi-model variant (mm) in the X-Amzn-SageMaker-Target-Variant header.");
	/* an endpoint with neither kind: SageMaker's own words */
	assert_int_equal(route(t, "nodirect", "x", "b", NULL, 0, &plan, &r), -1);
	assert_string_equal(r.message,
			    "The X-Amzn-SageMaker-Target-Container-Hostname header can only be used with an endpoint in "
			    "Direct invocation mode; endpoint nodirect is in Serial mode.");
	assert_int_equal(route(t, "nodirect", NULL, "a", "m.tar.gz", 0, &plan, &r), -1);
	assert_string_equal(r.message,
			    "Endpoint nodirect is not a multi-model endpoint and does not support target model header.");
	/* the MultiModel variant without a TargetModel */
	assert_int_equal(route(t, "mixed", NULL, "mm", NULL, 0, &plan, &r), -1);
	assert_non_null(strstr(r.message, "must name its model"));
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
		cmocka_unit_test_setup_teardown(mixed_modes_route_per_variant, setup, teardown),
		cmocka_unit_test_setup_teardown(mixed_modes_wrong_kind_of_target, setup, teardown),
		cmocka_unit_test(inter_step_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
