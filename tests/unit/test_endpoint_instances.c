/* Endpoint records with instances (orchestrator/resources.c): the old flat
 * form still loads, the new members round-trip, and instance accounting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "resources.h"

/* As written by the walking skeleton: no variant / instance members. */
static const char old_record[] =
	"{\"EndpointName\":\"e\",\"EndpointArn\":\"arn:aws:sagemaker:us-east-1:000000000000:endpoint/e\","
	"\"EndpointConfigName\":\"c\",\"EndpointStatus\":\"InService\",\"CreationTime\":1.5,\"LastModifiedTime\":2.5,"
	"\"Tags\":[],\"Berth\":{\"mode\":\"Direct\",\"variant_name\":\"AllTraffic\",\"containers\":["
	"{\"id\":\"aa\",\"hostname\":\"a\",\"socket\":\"/r/aa.sock\",\"log\":\"/s/aa/log\"},"
	"{\"id\":\"bb\",\"hostname\":\"b\",\"socket\":\"/r/bb.sock\",\"log\":\"/s/bb/log\"}],"
	"\"production_variants\":[{\"VariantName\":\"AllTraffic\",\"ModelName\":\"m\",\"InitialInstanceCount\":1,"
	"\"InstanceType\":\"ml.m5.large\",\"InitialVariantWeight\":1}]}}";

static void old_flat_record_loads(void **state)
{
	(void)state;
	struct berth_err err;
	struct endpoint *e = endpoint_from_json(old_record, strlen(old_record), &err);
	assert_non_null(e);
	assert_int_equal(e->n_containers, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_null(e->containers[i].variant);
		assert_int_equal(e->containers[i].instance, 0);
		assert_int_equal(e->containers[i].restarts, 0);
		assert_false(e->containers[i].down || e->containers[i].pending || e->containers[i].retiring);
		assert_string_equal(endpoint_container_variant(e, &e->containers[i]), "AllTraffic");
	}
	assert_null(e->pending_config_name);
	assert_true(endpoint_instance_serving(e, "AllTraffic", 0));
	assert_int_equal(endpoint_variant_serving_instances(e, "AllTraffic"), 1);
	endpoint_free(e);
}

static void new_members_round_trip(void **state)
{
	(void)state;
	struct berth_err err;
	struct endpoint *e = endpoint_from_json(old_record, strlen(old_record), &err);
	assert_non_null(e);
	e->containers[1].variant = strdup("AllTraffic");
	e->containers[1].instance = 1;
	e->containers[1].restarts = 4;
	e->containers[1].down = true;
	e->pending_config_name = strdup("c2");
	struct berth_buf doc = BERTH_BUF_INIT;
	assert_int_equal(endpoint_to_json(e, &doc), 0);
	struct endpoint *back = endpoint_from_json(doc.data, doc.len, &err);
	assert_non_null(back);
	assert_string_equal(back->containers[1].variant, "AllTraffic");
	assert_int_equal(back->containers[1].instance, 1);
	assert_int_equal(back->containers[1].restarts, 4);
	assert_true(back->containers[1].down);
	assert_string_equal(back->pending_config_name, "c2");
	/* instance 1 is down: only instance 0 serves */
	assert_int_equal(endpoint_variant_serving_instances(back, "AllTraffic"), 1);
	assert_false(endpoint_instance_serving(back, "AllTraffic", 1));
	struct endpoint *copy = endpoint_dup(back);
	assert_non_null(copy);
	assert_int_equal(copy->containers[1].restarts, 4);
	assert_string_equal(copy->pending_config_name, "c2");
	/* a pending container sharing (variant, instance) with a live one does
	 * not take the live instance out of service */
	copy->containers[1].down = false;
	copy->containers[1].instance = 0;
	copy->containers[1].pending = true;
	assert_true(endpoint_instance_serving(copy, "AllTraffic", 0));
	assert_int_equal(endpoint_variant_serving_instances(copy, "AllTraffic"), 1);
	endpoint_free(copy);
	endpoint_free(back);
	endpoint_free(e);
	buf_free(&doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(old_flat_record_loads),
		cmocka_unit_test(new_members_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
