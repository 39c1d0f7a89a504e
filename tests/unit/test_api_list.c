/* test_api_list.c — List* sorting (SageMaker's defaults: CreationTime,
 * Descending, 10 a page), filters and NextToken paging. */
#include "api_fixture.h"

static void put_model(struct fixture *f, const char *name, double t)
{
	struct model *m = calloc(1, sizeof(*m));
	m->name = strdup(name);
	m->arn = strdup("arn:x");
	m->creation_time = t;
	m->has_primary = true;
	m->n_containers = 1;
	m->containers = calloc(1, sizeof(*m->containers));
	m->containers[0].hostname = strdup("primary");
	m->containers[0].image = strdup("img");
	assert_int_equal(store_put_model(f->store, m, &(struct berth_err){ 0 }), 0);
}

static void put_endpoint(struct fixture *f, const char *name, double t, double lm, const char *status)
{
	struct endpoint *e = calloc(1, sizeof(*e));
	e->name = strdup(name);
	e->arn = strdup("arn:e");
	e->config_name = strdup("cfg");
	e->creation_time = t;
	e->last_modified_time = lm;
	e->status = strdup(status);
	assert_int_equal(store_put_endpoint(f->store, e, &(struct berth_err){ 0 }), 0);
}

/* Names of the listed entries, comma-separated; *token gets NextToken (or NULL). */
static char *list_names(struct fixture *f, const char *op, const char *member, const char *key, const char *body,
			char **token)
{
	yajl_val v = expect_ok(call(f, op, body));
	yajl_val a = json_get(v, member);
	assert_non_null(a);
	assert_true(YAJL_IS_ARRAY(a));
	struct berth_buf out = BERTH_BUF_INIT;
	buf_append_str(&out, "");
	for (size_t i = 0; i < a->u.array.len; i++)
		buf_printf(&out, "%s%s", i ? "," : "", json_get_string(a->u.array.values[i], key));
	const char *t = json_get_string(v, "NextToken");
	if (token)
		*token = t ? strdup(t) : NULL;
	else
		assert_null(t);
	yajl_tree_free(v);
	return buf_steal(&out);
}

static void check_models(struct fixture *f, const char *body, const char *expected)
{
	char *got = list_names(f, "ListModels", "Models", "ModelName", body, NULL);
	assert_string_equal(got, expected);
	free(got);
}

static void test_sort_and_filters(void **state)
{
	struct fixture *f = *state;
	check_models(f, "{}", "");
	put_model(f, "b-model", 300);
	put_model(f, "a-model", 100);
	put_model(f, "C-other", 200);
	put_model(f, "d-same", 200);
	check_models(f, "{}", "b-model,d-same,C-other,a-model"); /* newest first; ties by name, reversed */
	check_models(f, "{\"SortOrder\":\"Ascending\"}", "a-model,C-other,d-same,b-model");
	check_models(f, "{\"SortBy\":\"Name\",\"SortOrder\":\"Ascending\"}", "C-other,a-model,b-model,d-same");
	check_models(f, "{\"SortBy\":\"Name\"}", "d-same,b-model,a-model,C-other");
	check_models(f, "{\"NameContains\":\"MODEL\"}", "b-model,a-model");
	check_models(f, "{\"CreationTimeBefore\":200}", "a-model");
	check_models(f, "{\"CreationTimeAfter\":200}", "b-model,d-same,C-other");
	check_models(f, "{\"CreationTimeAfter\":150.5,\"CreationTimeBefore\":300}", "d-same,C-other");

	/* summaries carry name, ARN, creation time only */
	yajl_val v = expect_ok(call(f, "ListModels", "{\"MaxResults\":1}"));
	yajl_val m0 = json_get(v, "Models")->u.array.values[0];
	assert_int_equal(m0->u.object.len, 3);
	double t = 0;
	assert_true(json_get_double(m0, "CreationTime", &t) && t == 300);
	assert_non_null(json_get_string(v, "NextToken"));
	yajl_tree_free(v);
}

static void test_pagination(void **state)
{
	struct fixture *f = *state;
	char name[32];
	for (int i = 0; i < 25; i++) {
		snprintf(name, sizeof(name), "m%02d", i);
		put_model(f, name, 1000 + i);
	}
	char *token = NULL;
	char *page = list_names(f, "ListModels", "Models", "ModelName", "{}", &token);
	assert_string_equal(page, "m24,m23,m22,m21,m20,m19,m18,m17,m16,m15"); /* default MaxResults 10 */
	free(page);
	assert_non_null(token);
	/* a model created between pages does not disturb the walk */
	put_model(f, "zz-new", 5000);
	char body[512];
	snprintf(body, sizeof(body), "{\"NextToken\":\"%s\",\"MaxResults\":10}", token);
	free(token);
	page = list_names(f, "ListModels", "Models", "ModelName", body, &token);
	assert_string_equal(page, "m14,m13,m12,m11,m10,m09,m08,m07,m06,m05");
	free(page);
	snprintf(body, sizeof(body), "{\"NextToken\":\"%s\",\"MaxResults\":100}", token);
	free(token);
	page = list_names(f, "ListModels", "Models", "ModelName", body, &token);
	assert_string_equal(page, "m04,m03,m02,m01,m00");
	assert_null(token);
	free(page);

	/* by name, 7 a page, across all pages */
	struct berth_buf all = BERTH_BUF_INIT;
	buf_append_str(&all, "");
	token = NULL;
	int pages = 0;
	do {
		if (token)
			snprintf(body, sizeof(body), "{\"SortBy\":\"Name\",\"SortOrder\":\"Ascending\",\"MaxResults\":7,"
				 "\"NextToken\":\"%s\"}", token);
		else
			snprintf(body, sizeof(body), "{\"SortBy\":\"Name\",\"SortOrder\":\"Ascending\",\"MaxResults\":7}");
		free(token);
		page = list_names(f, "ListModels", "Models", "ModelName", body, &token);
		buf_printf(&all, "%s%s", all.len ? "," : "", page);
		free(page);
		pages++;
	} while (token);
	assert_int_equal(pages, 4);
	assert_non_null(strstr(all.data, "m00,m01,m02"));
	assert_non_null(strstr(all.data, "m24,zz-new"));
	buf_free(&all);
}

static void test_bad_parameters(void **state)
{
	struct fixture *f = *state;
	put_model(f, "a", 1);
	expect_error(call(f, "ListModels", "{\"NextToken\":\"garbage\"}"), 400, "ValidationException",
		     "Invalid NextToken: pass the NextToken of an earlier answer to the same request (same SortBy "
		     "and SortOrder).");
	expect_error(call(f, "ListModels", "{\"MaxResults\":0}"), 400, "ValidationException",
		     "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must "
		     "have value greater than or equal to 1");
	expect_error(call(f, "ListModels", "{\"MaxResults\":101}"), 400, "ValidationException",
		     "1 validation error detected: Value '101' at 'maxResults' failed to satisfy constraint: Member "
		     "must have value less than or equal to 100");
	expect_error(call(f, "ListModels", "{\"SortBy\":\"Status\"}"), 400, "ValidationException",
		     "1 validation error detected: Value 'Status' at 'sortBy' failed to satisfy constraint: Member "
		     "must satisfy enum value set: [Name, CreationTime]");
	expect_error(call(f, "ListModels", "{\"SortOrder\":\"Up\",\"NameContains\":\"a_b\"}"), 400,
		     "ValidationException",
		     "2 validation errors detected: Value 'Up' at 'sortOrder' failed to satisfy constraint: Member "
		     "must satisfy enum value set: [Ascending, Descending]; Value 'a_b' at 'nameContains' failed to "
		     "satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-]+");
	expect_error(call(f, "ListModels", "{\"MaxResults\":\"5\"}"), 400, "SerializationException",
		     "'maxResults' must be an integer, not a string.");
	expect_error(call(f, "ListModels", "{\"CreationTimeBefore\":\"2024-01-01\"}"), 400, "SerializationException",
		     "'creationTimeBefore' must be a timestamp (epoch seconds as a number), not a string.");
	/* a token made for another sort */
	char *token = NULL;
	put_model(f, "b", 2);
	free(list_names(f, "ListModels", "Models", "ModelName", "{\"MaxResults\":1}", &token));
	char body[512];
	snprintf(body, sizeof(body), "{\"NextToken\":\"%s\",\"SortBy\":\"Name\"}", token);
	free(token);
	expect_error(call(f, "ListModels", body), 400, "ValidationException", NULL);
	check_models(f, "{\"NextToken\":\"\"}", "b,a");
}

static void test_endpoints_and_configs(void **state)
{
	struct fixture *f = *state;
	put_endpoint(f, "e1", 10, 50, "InService");
	put_endpoint(f, "e2", 20, 20, "Failed");
	put_endpoint(f, "e3", 30, 35, "Creating");
	char *got = list_names(f, "ListEndpoints", "Endpoints", "EndpointName", "{}", NULL);
	assert_string_equal(got, "e3,e2,e1");
	free(got);
	got = list_names(f, "ListEndpoints", "Endpoints", "EndpointName", "{\"SortBy\":\"Status\",\"SortOrder\":\"Ascending\"}", NULL);
	assert_string_equal(got, "e3,e2,e1"); /* Creating < Failed < InService */
	free(got);
	got = list_names(f, "ListEndpoints", "Endpoints", "EndpointName", "{\"StatusEquals\":\"Failed\"}", NULL);
	assert_string_equal(got, "e2");
	free(got);
	got = list_names(f, "ListEndpoints", "Endpoints", "EndpointName", "{\"LastModifiedTimeAfter\":30}", NULL);
	assert_string_equal(got, "e3,e1");
	free(got);
	got = list_names(f, "ListEndpoints", "Endpoints", "EndpointName", "{\"LastModifiedTimeBefore\":35}", NULL);
	assert_string_equal(got, "e2");
	free(got);
	expect_error(call(f, "ListEndpoints", "{\"StatusEquals\":\"Running\"}"), 400, "ValidationException",
		     "1 validation error detected: Value 'Running' at 'statusEquals' failed to satisfy constraint: "
		     "Member must satisfy enum value set: [OutOfService, Creating, Updating, SystemUpdating, "
		     "RollingBack, InService, Deleting, Failed, UpdateRollbackFailed]");
	yajl_val v = expect_ok(call(f, "ListEndpoints", "{\"MaxResults\":1}"));
	yajl_val e0 = json_get(v, "Endpoints")->u.array.values[0];
	assert_string_equal(json_get_string(e0, "EndpointStatus"), "Creating");
	assert_string_equal(json_get_string(e0, "EndpointArn"), "arn:e");
	double lm = 0;
	assert_true(json_get_double(e0, "LastModifiedTime", &lm) && lm == 35);
	yajl_tree_free(v);

	make_model(f, "m");
	make_config(f, "cfg-a", "m");
	make_config(f, "cfg-b", "m");
	got = list_names(f, "ListEndpointConfigs", "EndpointConfigs", "EndpointConfigName",
			 "{\"SortBy\":\"Name\",\"NameContains\":\"CFG\"}", NULL);
	assert_string_equal(got, "cfg-b,cfg-a");
	free(got);
	v = expect_ok(call(f, "ListEndpointConfigs", "{}"));
	yajl_val c0 = json_get(v, "EndpointConfigs")->u.array.values[0];
	assert_non_null(json_get_string(c0, "EndpointConfigArn"));
	yajl_tree_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sort_and_filters, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_pagination, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_bad_parameters, fixture_setup, fixture_teardown),
		cmocka_unit_test_setup_teardown(test_endpoints_and_configs, fixture_setup, fixture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
