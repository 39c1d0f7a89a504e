/* Unit tests for the OCI bundle renderer (the `serve` lookup: test_serve_process.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle.h"
#include "fsutil.h"
#include "json.h"

static yajl_val render(const struct bundle_spec *spec)
{
	struct berth_buf out = BERTH_BUF_INIT;
	assert_int_equal(bundle_render(spec, &out), 0);
	struct berth_err err;
	yajl_val v = json_parse(out.data, out.len, &err);
	assert_non_null(v);
	buf_free(&out);
	return v;
}

static bool array_has(yajl_val arr, const char *s)
{
	for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++)
		if (YAJL_IS_STRING(arr->u.array.values[i]) && strcmp(arr->u.array.values[i]->u.string, s) == 0)
			return true;
	return false;
}

static void test_render_confines_the_container(void **state)
{
	(void)state;
	const char *args[] = { "/serve", "serve" };
	struct kv env[] = { { "ECHO_MODE", "upper" } };
	struct bundle_spec spec = { .id = "abc", .hostname = "model-a", .rootfs = "/images/x/rootfs",
				    .model_dir = "/state/artifacts/k", .cgroups_path = "/berth/e/abc",
				    .args = args, .n_args = 2, .env = env, .n_env = 1,
				    .memory_limit_bytes = 1 << 30, .pids_limit = 512 };
	yajl_val v = render(&spec);
	assert_string_equal(json_get_string(v, "hostname"), "model-a");
	yajl_val proc = json_get(v, "process");
	assert_true(array_has(json_get(proc, "args"), "serve"));
	assert_true(array_has(json_get(proc, "env"), "SAGEMAKER_BIND_TO_PORT=8080"));
	assert_true(array_has(json_get(proc, "env"), "ECHO_MODE=upper"));
	bool nnp = false;
	assert_true(json_get_bool(proc, "noNewPrivileges", &nnp) && nnp);
	yajl_val caps = json_get(json_get(proc, "capabilities"), "bounding");
	assert_true(array_has(caps, "CAP_CHOWN"));
	assert_true(array_has(caps, "CAP_NET_BIND_SERVICE"));
	assert_false(array_has(caps, "CAP_SYS_ADMIN"));
	yajl_val linux_ = json_get(v, "linux");
	yajl_val ns = json_get(linux_, "namespaces");
	assert_non_null(ns);
	const char *want[] = { "pid", "network", "ipc", "uts", "mount" };
	for (size_t w = 0; w < 5; w++) {
		bool found = false;
		for (size_t i = 0; i < ns->u.array.len; i++)
			found |= strcmp(json_get_string(ns->u.array.values[i], "type"), want[w]) == 0;
		assert_true(found);
	}
	/* Docker's default masked and read-only paths, no fewer */
	static const char *const masked[] = { "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore",
					      "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
					      "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
					      "/sys/devices/virtual/powercap" };
	static const char *const readonly[] = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
						"/proc/sysrq-trigger" };
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(masked); i++)
		assert_true(array_has(json_get(linux_, "maskedPaths"), masked[i]));
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(readonly); i++)
		assert_true(array_has(json_get(linux_, "readonlyPaths"), readonly[i]));
	long long limit = 0;
	assert_true(json_get_int64(json_get(json_get(linux_, "resources"), "memory"), "limit", &limit));
	assert_int_equal(limit, 1 << 30);
	assert_true(json_get_int64(json_get(json_get(linux_, "resources"), "pids"), "limit", &limit));
	assert_int_equal(limit, 512);
	bool ro = false;
	assert_true(json_get_bool(json_get(v, "root"), "readonly", &ro) && ro);
	/* the model is mounted read-only at /opt/ml/model */
	yajl_val mounts = json_get(v, "mounts");
	bool model_ro = false;
	for (size_t i = 0; i < mounts->u.array.len; i++) {
		yajl_val m = mounts->u.array.values[i];
		if (strcmp(json_get_string(m, "destination"), "/opt/ml/model") == 0) {
			assert_string_equal(json_get_string(m, "source"), "/state/artifacts/k");
			model_ro = array_has(json_get(m, "options"), "ro");
		}
	}
	assert_true(model_ro);
	yajl_tree_free(v);
}

static void test_render_without_model_has_no_model_mount(void **state)
{
	(void)state;
	const char *args[] = { "/serve", "serve" };
	struct bundle_spec spec = { .id = "abc", .hostname = "h", .rootfs = "/r", .cgroups_path = "/berth/e/abc",
				    .args = args, .n_args = 2 };
	yajl_val v = render(&spec);
	yajl_val mounts = json_get(v, "mounts");
	for (size_t i = 0; i < mounts->u.array.len; i++)
		assert_string_not_equal(json_get_string(mounts->u.array.values[i], "destination"), "/opt/ml/model");
	assert_null(json_get(json_get(json_get(v, "linux"), "resources"), "memory"));
	yajl_tree_free(v);
}

static void test_render_mounts_the_submit_directory_read_only(void **state)
{
	(void)state;
	const char *args[] = { "/serve", "serve" };
	struct bundle_spec spec = { .id = "abc", .hostname = "h", .rootfs = "/r", .cgroups_path = "/berth/e/abc",
				    .args = args, .n_args = 2, .submit_dir = "/state/containers/abc/submit" };
	yajl_val v = render(&spec);
	yajl_val mounts = json_get(v, "mounts");
	int found = 0;
	for (size_t i = 0; i < mounts->u.array.len; i++) {
		yajl_val m = mounts->u.array.values[i];
		if (strcmp(json_get_string(m, "destination"), BUNDLE_SUBMIT_DIR) != 0)
			continue;
		found++;
		assert_string_equal(json_get_string(m, "source"), "/state/containers/abc/submit");
		yajl_val o = json_get(m, "options");
		assert_true(array_has(o, "ro") && array_has(o, "nosuid") && array_has(o, "nodev"));
		assert_false(array_has(o, "rbind"));
	}
	assert_int_equal(found, 1);
	yajl_tree_free(v);
	spec.submit_dir = NULL; /* none: no mount */
	v = render(&spec);
	mounts = json_get(v, "mounts");
	for (size_t i = 0; i < mounts->u.array.len; i++)
		assert_string_not_equal(json_get_string(mounts->u.array.values[i], "destination"), BUNDLE_SUBMIT_DIR);
	yajl_tree_free(v);
}

static bool has_namespace(yajl_val linux_, const char *type)
{
	yajl_val ns = json_get(linux_, "namespaces");
	for (size_t i = 0; ns && i < ns->u.array.len; i++)
		if (strcmp(json_get_string(ns->u.array.values[i], "type"), type) == 0)
			return true;
	return false;
}

static void test_render_user_namespace_maps_the_range(void **state)
{
	(void)state;
	const char *args[] = { "/serve", "serve" };
	struct bundle_spec spec = { .id = "abc", .hostname = "h", .rootfs = "/r", .cgroups_path = "/berth/e/abc",
				    .args = args, .n_args = 2, .uid_base = 100065536 };
	yajl_val v = render(&spec);
	yajl_val linux_ = json_get(v, "linux");
	assert_true(has_namespace(linux_, "user"));
	const char *keys[] = { "uidMappings", "gidMappings" };
	for (size_t k = 0; k < 2; k++) {
		yajl_val maps = json_get(linux_, keys[k]);
		assert_non_null(maps);
		assert_int_equal(maps->u.array.len, 1);
		long long cid = -1, hid = -1, size = -1;
		assert_true(json_get_int64(maps->u.array.values[0], "containerID", &cid));
		assert_true(json_get_int64(maps->u.array.values[0], "hostID", &hid));
		assert_true(json_get_int64(maps->u.array.values[0], "size", &size));
		assert_int_equal(cid, 0);
		assert_int_equal(hid, 100065536);
		assert_int_equal(size, 65536);
	}
	yajl_tree_free(v);
	spec.uid_base = 0; /* off: no user namespace, no mappings */
	v = render(&spec);
	linux_ = json_get(v, "linux");
	assert_false(has_namespace(linux_, "user"));
	assert_null(json_get(linux_, "uidMappings"));
	yajl_tree_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_confines_the_container),
		cmocka_unit_test(test_render_user_namespace_maps_the_range),
		cmocka_unit_test(test_render_without_model_has_no_model_mount),
		cmocka_unit_test(test_render_mounts_the_submit_directory_read_only),
	};
	return cmocka_run_group_tests_name("bundle", tests, NULL, NULL);
}
