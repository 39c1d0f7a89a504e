/* The router's MultiModel pieces that need no loop: route-table mode
 * "MultiModel", its routing decision, the 429 wording. (router/mme.c's
 * loads, single-flight and evictions are covered end to end by
 * tests/integration/test_mme.py.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "invoke.h"
#include "route_table.h"
#include "mme.h"

static const char table_json[] =
	"{\"op\":\"routes\",\"generation\":1,\"account\":\"123456789012\",\"region\":\"us-east-1\",\"endpoints\":["
	"{\"name\":\"mme\",\"status\":\"InService\",\"mode\":\"MultiModel\",\"variants\":[{\"name\":\"AllTraffic\",\"weight\":1,"
	"\"instances\":[{\"containers\":[{\"hostname\":\"primary\",\"socket\":\"/s/p1\"}]}]}]}]}";

static void multimodel_mode_parses_and_routes(void **state)
{
	(void)state;
	struct berth_err err;
	struct route_table *t = route_table_parse(table_json, strlen(table_json), &err);
	assert_non_null(t);
	const struct route_endpoint *e = route_table_find(t, "mme");
	assert_non_null(e);
	assert_int_equal(e->variants[0].mode, ROUTE_MODE_MULTI);
	assert_string_equal(route_mode_name(e->variants[0].mode), "MultiModel");
	struct invoke_plan plan;
	struct invoke_refusal r;
	assert_int_equal(invoke_route(t, "mme", NULL, NULL, "model-1.tar.gz", 0, &plan, &r), 0);
	assert_int_equal(plan.n_steps, 1);
	assert_string_equal(plan.steps[0]->hostname, "primary");
	/* the Direct-mode header is refused on a MultiModel endpoint too */
	assert_int_equal(invoke_route(t, "mme", "primary", NULL, "model-1.tar.gz", 0, &plan, &r), -1);
	assert_int_equal(r.status, 400);
	/* a MultiModel variant needs its TargetModel */
	assert_int_equal(invoke_route(t, "mme", NULL, NULL, NULL, 0, &plan, &r), -1);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.message, "must name its model"));
	route_table_unref(t);
}

static void unknown_mode_still_refused(void **state)
{
	(void)state;
	static const char bad[] = "{\"op\":\"routes\",\"account\":\"1\",\"region\":\"r\",\"endpoints\":["
				  "{\"name\":\"x\",\"status\":\"InService\",\"mode\":\"Multi\"}]}";
	struct berth_err err;
	assert_null(route_table_parse(bad, strlen(bad), &err));
	assert_non_null(strstr(err.msg, "unknown mode"));
}

static void not_ready_wording(void **state)
{
	(void)state;
	char msg[512];
	rmme_format_not_ready(msg, sizeof(msg), "ep", "model-17.tar.gz");
	assert_string_equal(msg, "Model model-17.tar.gz is not ready yet: it is being loaded into endpoint ep. "
				 "Retry the request; the model continues to load.");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(multimodel_mode_parses_and_routes),
		cmocka_unit_test(unknown_mode_still_refused),
		cmocka_unit_test(not_ready_wording),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
