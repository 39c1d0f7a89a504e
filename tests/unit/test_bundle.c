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

/* SageMaker's variables: over the image's Env, under CreateModel
 * Environment where SageMaker lets it set them; the port is always 8080. */
static size_t env_count(yajl_val env, const char *key)
{
	size_t n = 0, klen = strlen(key);
	for (size_t i = 0; env && i < env->u.array.len; i++) {
		const char *s = env->u.array.values[i]->u.string;
		n += strncmp(s, key, klen) == 0 && s[klen] == '=';
	}
	return n;
}

static void test_render_sets_sagemaker_variables(void **state)
{
	(void)state;
	const char *args[] = { "/serve", "serve" };
	struct kv image_env[] = { { "SAGEMAKER_SAFE_PORT_RANGE", "1-2" }, { "SAGEMAKER_BIND_TO_PORT", "9999" },
				  { "SAGEMAKER_MULTI_MODEL", "false" }, { "LANG", "C.UTF-8" } };
	struct bundle_spec spec = { .id = "abc", .hostname = "h", .rootfs = "/r", .cgroups_path = "/berth/e/abc",
				    .args = args, .n_args = 2, .image_env = image_env, .n_image_env = 4 };
	yajl_val v = render(&spec);
	yajl_val env = json_get(json_get(v, "process"), "env");
	assert_true(array_has(env, "SAGEMAKER_BIND_TO_PORT=8080"));
	assert_true(array_has(env, "SAGEMAKER_SAFE_PORT_RANGE=23000-23999"));
	assert_int_equal(env_count(env, "SAGEMAKER_BIND_TO_PORT"), 1);
	assert_int_equal(env_count(env, "SAGEMAKER_SAFE_PORT_RANGE"), 1);
	/* not multi-model: the image's own value stays */
	assert_true(array_has(env, "SAGEMAKER_MULTI_MODEL=false"));
	assert_true(array_has(env, "LANG=C.UTF-8"));
	yajl_tree_free(v);

	/* multi-model: SageMaker's value over the image's */
	spec.multi_model_dir = "/state/mme/e";
	v = render(&spec);
	env = json_get(json_get(v, "process"), "env");
	assert_true(array_has(env, "SAGEMAKER_MULTI_MODEL=true"));
	assert_int_equal(env_count(env, "SAGEMAKER_MULTI_MODEL"), 1);
	yajl_tree_free(v);

	/* CreateModel Environment wins, but never over the port */
	struct kv user_env[] = { { "SAGEMAKER_SAFE_PORT_RANGE", "9000-9999" }, { "SAGEMAKER_BIND_TO_PORT", "7000" },
				 { "SAGEMAKER_MULTI_MODEL", "yes" } };
	spec.env = user_env;
	spec.n_env = 3;
	v = render(&spec);
	env = json_get(json_get(v, "process"), "env");
	assert_true(array_has(env, "SAGEMAKER_SAFE_PORT_RANGE=9000-9999"));
	assert_int_equal(env_count(env, "SAGEMAKER_SAFE_PORT_RANGE"), 1);
	assert_true(array_has(env, "SAGEMAKER_BIND_TO_PORT=8080"));
	assert_int_equal(env_count(env, "SAGEMAKER_BIND_TO_PORT"), 1);
	assert_true(array_has(env, "SAGEMAKER_MULTI_MODEL=yes"));
	assert_int_equal(env_count(env, "SAGEMAKER_MULTI_MODEL"), 1);
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

/* (devices) CDI edits in config.json: without a user namespace runc makes
 * the nodes (linux.devices); with one, berthd's nodes are bound; the
 * instance's devices decide NVIDIA_VISIBLE_DEVICES whatever the model says. */
static void test_render_cdi_devices(void **state)
{
	(void)state;
	const char *args[] = { "/serve", "serve" };
	struct kv env[] = { { "NVIDIA_VISIBLE_DEVICES", "all" }, { "DRIVER", "model" }, { "KEEP", "1" } };
	char *cdi_env[] = { "DRIVER=cdi" };
	struct cdi_device_node node = { .path = "/dev/nvidia0", .host_path = "/dev/nvidia0", .type = 'c', .major = 195,
					.minor = 0, .file_mode = 0666, .uid = -1, .gid = -1 };
	struct cdi_device_node none = { .path = "/dev/nvidiactl", .host_path = "/dev/nvidiactl", .type = 'c',
					.major = 195, .minor = 255, .file_mode = 0666, .permissions = "none",
					.uid = -1, .gid = -1 };
	struct cdi_device_node nodes[] = { node, none };
	char *opts[] = { "ro", "nosuid" };
	struct cdi_mount mount = { .host_path = "/usr/lib/libcuda.so.1", .container_path = "/usr/lib/libcuda.so.1",
				   .options = opts, .n_options = 2 };
	char *hook_args[] = { "hook", "x" };
	struct cdi_hook hook = { .hook_name = "createContainer", .path = "/usr/bin/hook", .args = hook_args,
				 .n_args = 2, .timeout = 5 };
	long long gids[] = { 44 };
	struct cdi_edits edits = { .env = cdi_env, .n_env = 1, .nodes = nodes, .n_nodes = 2, .mounts = &mount,
				   .n_mounts = 1, .hooks = &hook, .n_hooks = 1, .additional_gids = gids,
				   .n_additional_gids = 1 };
	struct bundle_spec spec = { .id = "abc", .hostname = "h", .rootfs = "/r", .cgroups_path = "/berth/e/abc",
				    .args = args, .n_args = 2, .env = env, .n_env = 3,
				    .devices = { .edits = &edits, .visible = "0" } };
	yajl_val v = render(&spec);
	yajl_val penv = json_get(json_get(v, "process"), "env");
	assert_true(array_has(penv, "NVIDIA_VISIBLE_DEVICES=0"));
	assert_false(array_has(penv, "NVIDIA_VISIBLE_DEVICES=all"));
	assert_true(array_has(penv, "DRIVER=cdi"));
	assert_false(array_has(penv, "DRIVER=model"));
	assert_true(array_has(penv, "KEEP=1"));
	long long gid = 0;
	yajl_val g = json_get(json_get(json_get(v, "process"), "user"), "additionalGids");
	assert_true(g && YAJL_IS_ARRAY(g) && g->u.array.len == 1);
	gid = YAJL_GET_INTEGER(g->u.array.values[0]);
	assert_int_equal(gid, 44);
	yajl_val linux_ = json_get(v, "linux");
	yajl_val rules = json_get(json_get(linux_, "resources"), "devices");
	assert_int_equal(rules->u.array.len, 2); /* deny-all, then nvidia0; "none" gets no rule */
	long long major = 0, minor = -1;
	assert_true(json_get_int64(rules->u.array.values[1], "major", &major) && major == 195);
	assert_true(json_get_int64(rules->u.array.values[1], "minor", &minor) && minor == 0);
	assert_string_equal(json_get_string(rules->u.array.values[1], "access"), "rwm");
	yajl_val devs = json_get(linux_, "devices");
	assert_int_equal(devs->u.array.len, 2);
	assert_string_equal(json_get_string(devs->u.array.values[0], "path"), "/dev/nvidia0");
	yajl_val hooks = json_get(json_get(v, "hooks"), "createContainer");
	assert_int_equal(hooks->u.array.len, 1);
	assert_string_equal(json_get_string(hooks->u.array.values[0], "path"), "/usr/bin/hook");
	yajl_val mounts = json_get(v, "mounts");
	yajl_val last = mounts->u.array.values[mounts->u.array.len - 1];
	assert_string_equal(json_get_string(last, "destination"), "/usr/lib/libcuda.so.1");
	assert_true(array_has(json_get(last, "options"), "bind")); /* added: runc must see a bind */
	yajl_tree_free(v);

	/* a user namespace: no linux.devices; berthd's nodes bound at the paths */
	char *sources[] = { "/state/containers/abc/devices/0", "/state/containers/abc/devices/1", NULL };
	spec.devices.node_sources = sources;
	spec.uid_base = 100000000;
	v = render(&spec);
	assert_null(json_get(json_get(v, "linux"), "devices"));
	mounts = json_get(v, "mounts");
	bool bound = false;
	for (size_t i = 0; i < mounts->u.array.len; i++) {
		yajl_val m = mounts->u.array.values[i];
		if (strcmp(json_get_string(m, "destination"), "/dev/nvidia0") == 0) {
			assert_string_equal(json_get_string(m, "source"), sources[0]);
			assert_false(array_has(json_get(m, "options"), "nodev"));
			bound = true;
		}
	}
	assert_true(bound);
	yajl_tree_free(v);

	/* no devices: nothing of the above */
	spec.devices = (struct bundle_devices){ 0 };
	v = render(&spec);
	assert_true(array_has(json_get(json_get(v, "process"), "env"), "NVIDIA_VISIBLE_DEVICES=all"));
	assert_null(json_get(v, "hooks"));
	assert_int_equal(json_get(json_get(json_get(v, "linux"), "resources"), "devices")->u.array.len, 1);
	yajl_tree_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_confines_the_container),
		cmocka_unit_test(test_render_user_namespace_maps_the_range),
		cmocka_unit_test(test_render_without_model_has_no_model_mount),
		cmocka_unit_test(test_render_sets_sagemaker_variables),
		cmocka_unit_test(test_render_mounts_the_submit_directory_read_only),
		cmocka_unit_test(test_render_cdi_devices),
	};
	return cmocka_run_group_tests_name("bundle", tests, NULL, NULL);
}
