/* test_instance_types.c — the instance type table (instance_types.h), the
 * host-fit check and instance limits (host_limits.h), and berthd.json
 * parsing (config.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "host_limits.h"
#include "instance_types.h"

static void test_builtin_table(void **state)
{
	(void)state;
	struct instance_types t;
	struct berth_err err;
	assert_int_equal(instance_types_load(NULL, &t, &err), 0);
	const struct instance_type *m = instance_types_find(&t, "ml.t2.medium");
	assert_non_null(m);
	assert_int_equal(m->vcpus, 2);
	assert_int_equal(m->memory_mib, 4096);
	m = instance_types_find(&t, "ml.m5.4xlarge");
	assert_non_null(m);
	assert_int_equal(m->vcpus, 16);
	assert_int_equal(m->memory_mib, 65536);
	m = instance_types_find(&t, "ml.c4.large");
	assert_non_null(m);
	assert_int_equal(m->memory_mib, 3840); /* 3.75 GiB */
	m = instance_types_find(&t, "ml.g4dn.xlarge");
	assert_non_null(m);
	assert_int_equal(m->gpus, 1);
	assert_null(instance_types_find(&t, "ml.m5.huge"));
	assert_null(instance_types_find(&t, NULL));
	struct berth_buf list = BERTH_BUF_INIT;
	instance_types_list(&t, &list);
	assert_non_null(strstr(list.data, "[ml.t2.medium, ml.t2.large,"));
	buf_free(&list);
	instance_types_free(&t);
}

static void expect_bad(const char *doc, const char *fragment)
{
	struct instance_types t;
	struct berth_err err;
	assert_int_equal(instance_types_parse(doc, strlen(doc), &t, &err), -1);
	if (strstr(err.msg, fragment) == NULL)
		fail_msg("\"%s\" not in \"%s\"", fragment, err.msg);
	assert_null(t.types);
}

static void test_bad_tables(void **state)
{
	(void)state;
	expect_bad("[]", "expected an object");
	expect_bad("{}", "expected an object");
	expect_bad("{\"m5.large\":{\"vcpus\":2,\"memory_mib\":8192}}", "ml.FAMILY.SIZE");
	expect_bad("{\"ml.m5\":{\"vcpus\":2,\"memory_mib\":8192}}", "ml.FAMILY.SIZE");
	expect_bad("{\"ml.M5.large\":{\"vcpus\":2,\"memory_mib\":8192}}", "ml.FAMILY.SIZE");
	expect_bad("{\"ml.m5.large\":{\"vcpus\":0,\"memory_mib\":8192}}", "\"vcpus\"");
	expect_bad("{\"ml.m5.large\":{\"vcpus\":2}}", "\"memory_mib\"");
	expect_bad("{\"ml.m5.large\":{\"vcpus\":2,\"memory_mib\":8192,\"gpus\":-1}}", "\"gpus\"");
	expect_bad("{\"ml.m5.large\":{\"vcpus\":2.5,\"memory_mib\":8192}}", "\"vcpus\"");
	expect_bad("{\"ml.a.b\":{\"vcpus\":1,\"memory_mib\":64},\"ml.a.b\":{\"vcpus\":1,\"memory_mib\":64}}", "twice");
	expect_bad("{\"ml.a.b\":", "instance types");
}

static struct variant variant(const char *type, long long count)
{
	return (struct variant){ .variant_name = (char *)"v", .model_name = (char *)"m",
				 .initial_instance_count = count, .instance_type = (char *)type, .initial_weight = 1 };
}

static void test_endpoint_fits(void **state)
{
	(void)state;
	struct limits l;
	struct berth_err err;
	assert_int_equal(limits_init(&l, NULL, &err), 0);
	l.host_cpus = 4;
	l.host_memory_bytes = 16LL << 30;
	struct variant v[2] = { variant("ml.t2.medium", 2), variant("ml.m5.large", 1) };
	struct endpoint_config c = { .name = (char *)"c", .variants = v, .n_variants = 1 };
	assert_int_equal(limits_endpoint_fits(&l, &c, &err), 0); /* 4 vCPUs, 8 GiB */
	c.n_variants = 2;                                        /* 6 vCPUs */
	assert_int_equal(limits_endpoint_fits(&l, &c, &err), -1);
	assert_int_equal(err.cls, BERTH_ERR_RESOURCE_LIMIT); /* 400 ResourceLimitExceeded */
	assert_non_null(strstr(err.msg, "'vCPUs for endpoint usage' is 4 vCPUs"));
	assert_non_null(strstr(err.msg, "request delta of 6 vCPUs (2 x ml.t2.medium, 1 x ml.m5.large)"));
	l.cpu_overcommit = 2.0;                                  /* 8 vCPUs; 16 GiB of 16 */
	assert_int_equal(limits_endpoint_fits(&l, &c, &err), 0);
	v[1] = variant("ml.r5.large", 1);                        /* 8 + 16 GiB > 16 */
	assert_int_equal(limits_endpoint_fits(&l, &c, &err), -1);
	assert_int_equal(err.cls, BERTH_ERR_RESOURCE_LIMIT);
	assert_non_null(strstr(err.msg, "'memory for endpoint usage' is 16 GiB"));
	l.memory_overcommit = 1.5;
	assert_int_equal(limits_endpoint_fits(&l, &c, &err), 0);

	struct cgroup_limits cg;
	assert_int_equal(limits_of_type(&l, "ml.t2.medium", &cg), 0);
	assert_int_equal(cg.cpu_quota_us, 200000);
	assert_int_equal(cg.memory_bytes, 4LL << 30);
	assert_int_equal(cg.pids, 4096);
	assert_int_equal(limits_of_type(&l, "ml.nope.large", &cg), -1);

	assert_int_equal(limits_instance_type_check(&l, "ml.c5.xlarge", &err), 0);
	assert_int_equal(limits_instance_type_check(&l, "ml.c5.huge", &err), -1);
	assert_int_equal(err.cls, BERTH_ERR_VALIDATION);
	assert_non_null(strstr(err.msg, "Member must satisfy enum value set: [ml.t2.medium,"));
	limits_free(&l);
}

static void test_config(void **state)
{
	(void)state;
	struct berthd_config c;
	struct berth_err err;
	assert_int_equal(berthd_config_defaults(&c, &err), 0);
	assert_string_equal(c.region, "us-east-1");
	assert_true(c.cpu_overcommit == 8.0 && c.memory_overcommit == 2.0);
	assert_int_equal(c.n_listen, 0);
	const char *doc = "{\"_comment\":\"x\",\"region\":\"eu-west-1\",\"cpu_overcommit\":2.5,\"memory_overcommit\":1,"
			  "\"create_grace_ms\":100,\"listen\":[\"127.0.0.1:80\",\"[::1]:80\"],\"socket\":null,"
			  "\"instance_pids_limit\":512,\"router_max_connections\":100,\"router_request_timeout_ms\":5000}";
	assert_int_equal(berthd_config_parse(doc, strlen(doc), &c, &err), 0);
	assert_string_equal(c.region, "eu-west-1");
	assert_true(c.cpu_overcommit == 2.5 && c.memory_overcommit == 1.0);
	assert_int_equal(c.create_grace_ms, 100);
	assert_int_equal(c.instance_pids_limit, 512);
	assert_int_equal(c.router_max_connections, 100);
	assert_int_equal(c.router_request_timeout_ms, 5000);
	assert_int_equal(c.router_max_buffered_bytes, 0); /* not set: the router's default */
	assert_int_equal(c.n_listen, 2);
	assert_string_equal(c.listen[1], "[::1]:80");
	assert_null(c.socket);
	assert_string_equal(c.account, "000000000000"); /* untouched */
	static const struct {
		const char *doc, *fragment;
	} bad[] = {
		{ "{\"regoin\":\"x\"}", "unknown setting \"regoin\"" },
		{ "{\"cpu_overcommit\":0}", "\"cpu_overcommit\" must be" },
		{ "{\"cpu_overcommit\":\"2\"}", "\"cpu_overcommit\" must be" },
		{ "{\"create_grace_ms\":-1}", "\"create_grace_ms\"" },
		{ "{\"region\":5}", "\"region\" must be a string" },
		{ "{\"listen\":\"127.0.0.1:80\"}", "\"listen\" must be an array" },
		{ "{\"instance_pids_limit\":1}", "\"instance_pids_limit\"" },
		{ "{\"no_user_namespaces\":1}", "\"no_user_namespaces\" must be true or false" },
		{ "{\"userns_uid_base\":1000}", "\"userns_uid_base\" must be a whole number from 65536" },
		{ "{\"userns_uid_base\":4294967295}", "\"userns_uid_base\"" },
		{ "{\"router_max_connections\":0}", "\"router_max_connections\" must be a whole number from 1" },
		{ "{\"router_max_buffered_bytes\":\"1M\"}", "\"router_max_buffered_bytes\" must be" },
		{ "[1]", "expected a JSON object" },
		{ "{", "" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(berthd_config_parse(bad[i].doc, strlen(bad[i].doc), &c, &err), -1);
		if (strstr(err.msg, bad[i].fragment) == NULL)
			fail_msg("\"%s\" not in \"%s\"", bad[i].fragment, err.msg);
	}
	berthd_config_free(&c);
	/* flags: the same checks; the file is read first, flags win */
	char *argv[] = { "berthd", "--listen", "127.0.0.1:1", "--config", "configs/berthd.json", "--pids-limit", "64",
			 "--stop-containers", "--mme-memory-high-water", "0.5", NULL };
	assert_int_equal(berthd_config_from_args(10, argv, &c, &err), 0);
	assert_int_equal(c.n_listen, 1);
	assert_string_equal(c.listen[0], "127.0.0.1:1"); /* replaces the file's */
	assert_int_equal(c.instance_pids_limit, 64);
	assert_true(c.stop_containers);
	assert_true(c.mme_memory_high_water == 0.5);
	berthd_config_free(&c);
	char *bad_pids[] = { "berthd", "--pids-limit", "15", NULL };
	assert_int_equal(berthd_config_from_args(3, bad_pids, &c, &err), -1);
	assert_string_equal(err.msg, "--pids-limit must be a whole number from 16 to 4194304, not \"15\"");
	berthd_config_free(&c);
	const char *doc_pids = "{\"instance_pids_limit\":15}"; /* the same bound in the file */
	assert_int_equal(berthd_config_defaults(&c, &err), 0);
	assert_int_equal(berthd_config_parse(doc_pids, strlen(doc_pids), &c, &err), -1);
	assert_string_equal(err.msg, "\"instance_pids_limit\" must be a whole number from 16 to 4194304");
	berthd_config_free(&c);
	/* the shipped configs/berthd.json parses */
	assert_int_equal(berthd_config_defaults(&c, &err), 0);
	assert_int_equal(berthd_config_load("configs/berthd.json", &c, &err), 0);
	assert_int_equal(c.n_listen, 1);
	assert_false(c.no_user_namespaces);
	assert_int_equal(c.userns_uid_base, 100000000);
	const char off[] = "{\"no_user_namespaces\":true,\"userns_uid_base\":200000000}";
	assert_int_equal(berthd_config_parse(off, strlen(off), &c, &err), 0);
	assert_true(c.no_user_namespaces);
	assert_int_equal(c.userns_uid_base, 200000000);
	berthd_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_builtin_table),
		cmocka_unit_test(test_bad_tables),
		cmocka_unit_test(test_endpoint_fits),
		cmocka_unit_test(test_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
