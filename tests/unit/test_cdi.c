/* test_cdi.c — CDI specs (cdi_spec.h) in JSON and YAML, the registry of
 * spec directories (cdi_registry.h) and the device choice (devices.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <cmocka.h>

#include "cdi_registry.h"
#include "cdi_spec.h"
#include "devices.h"
#include "fsutil.h"

static const char json_spec[] =
	"{\"cdiVersion\":\"0.7.0\",\"kind\":\"nvidia.com/gpu\","
	"\"annotations\":{\"a\":\"b\"},"
	"\"devices\":[{\"name\":\"0\",\"containerEdits\":{"
	"  \"deviceNodes\":[{\"path\":\"/dev/nvidia0\",\"hostPath\":\"/dev/null\",\"permissions\":\"rw\","
	"                   \"major\":1,\"minor\":3,\"type\":\"c\",\"fileMode\":438,\"uid\":0,\"gid\":44}],"
	"  \"env\":[\"GPU=0\"]}},"
	"  {\"name\":\"gpu-1.a\",\"containerEdits\":{\"deviceNodes\":[{\"path\":\"/dev/nvidia1\"}]}}],"
	"\"containerEdits\":{\"env\":[\"DRIVER=1\"],"
	"  \"mounts\":[{\"hostPath\":\"/usr/lib/x\",\"containerPath\":\"/usr/lib/x\",\"type\":\"bind\","
	"              \"options\":[\"ro\",\"bind\"]}],"
	"  \"hooks\":[{\"hookName\":\"createContainer\",\"path\":\"/usr/bin/hook\",\"args\":[\"hook\",\"-v\"],"
	"             \"env\":[\"A=1\"],\"timeout\":5}],"
	"  \"additionalGids\":[0,44]}}";

/* the same spec as a CDI tool writes it in YAML */
static const char yaml_spec[] =
	"---\n"
	"cdiVersion: 0.7.0\n"
	"kind: nvidia.com/gpu\n"
	"annotations:\n"
	"  a: b\n"
	"devices:\n"
	"- name: \"0\"\n"
	"  containerEdits:\n"
	"    deviceNodes:\n"
	"    - path: /dev/nvidia0\n"
	"      hostPath: /dev/null\n"
	"      permissions: rw\n"
	"      major: 1\n"
	"      minor: 3\n"
	"      type: c\n"
	"      fileMode: 438\n"
	"      uid: 0\n"
	"      gid: 44\n"
	"    env: [GPU=0]\n"
	"- name: gpu-1.a\n"
	"  containerEdits:\n"
	"    deviceNodes:\n"
	"    - path: /dev/nvidia1\n"
	"containerEdits:\n"
	"  env:\n"
	"  - DRIVER=1\n"
	"  mounts:\n"
	"  - hostPath: /usr/lib/x\n"
	"    containerPath: /usr/lib/x\n"
	"    type: bind\n"
	"    options: [ro, bind]\n"
	"  hooks:\n"
	"  - hookName: createContainer\n"
	"    path: /usr/bin/hook\n"
	"    args: [hook, -v]\n"
	"    env: [A=1]\n"
	"    timeout: 5\n"
	"  additionalGids: [0, 44]\n";

static void check_parsed(const struct cdi_spec *s)
{
	assert_string_equal(s->version, "0.7.0");
	assert_string_equal(s->kind, "nvidia.com/gpu");
	assert_int_equal(s->n_devices, 2);
	assert_string_equal(s->devices[0].name, "0");
	const struct cdi_device_node *n = &s->devices[0].edits.nodes[0];
	assert_string_equal(n->path, "/dev/nvidia0");
	assert_string_equal(n->host_path, "/dev/null");
	assert_string_equal(n->permissions, "rw");
	assert_int_equal(n->type, 'c');
	assert_int_equal(n->major, 1);
	assert_int_equal(n->minor, 3);
	assert_int_equal(n->file_mode, 0666);
	assert_int_equal(n->gid, 44);
	assert_string_equal(s->devices[0].edits.env[0], "GPU=0");
	/* hostPath defaults to path; unset numbers are -1 */
	n = &s->devices[1].edits.nodes[0];
	assert_string_equal(n->host_path, "/dev/nvidia1");
	assert_int_equal(n->major, -1);
	assert_int_equal(n->file_mode, -1);
	assert_null(n->permissions);
	assert_int_equal(s->edits.n_mounts, 1);
	assert_int_equal(s->edits.mounts[0].n_options, 2);
	assert_string_equal(s->edits.mounts[0].options[1], "bind");
	assert_int_equal(s->edits.n_hooks, 1);
	assert_string_equal(s->edits.hooks[0].hook_name, "createContainer");
	assert_int_equal(s->edits.hooks[0].n_args, 2);
	assert_int_equal(s->edits.hooks[0].timeout, 5);
	/* a gid of 0 is ignored, as the specification says */
	assert_int_equal(s->edits.n_additional_gids, 1);
	assert_int_equal(s->edits.additional_gids[0], 44);
}

static void test_json_and_yaml(void **state)
{
	(void)state;
	struct cdi_spec s;
	struct berth_err err;
	assert_int_equal(cdi_spec_parse(json_spec, strlen(json_spec), false, &s, &err), 0);
	check_parsed(&s);
	cdi_spec_free(&s);
	int r = cdi_spec_parse(yaml_spec, strlen(yaml_spec), true, &s, &err);
	if (r != 0)
		fail_msg("%s", err.msg);
	check_parsed(&s);
	cdi_spec_free(&s);
}

struct bad {
	const char *text;
	bool yaml;
	const char *msg; /* the whole message, or its start when it ends in '*' */
};

static void test_bad_specs(void **state)
{
	(void)state;
	static const struct bad bad[] = {
		{ "{\"cdiVersion\":\"0.9.0\",\"kind\":\"a.com/b\",\"devices\":[]}", false,
		  "cdiVersion \"0.9.0\" is not a released CDI version (0.1.0 to 1.1.0)" },
		{ "{\"kind\":\"a.com/b\",\"devices\":[]}", false, "spec.cdiVersion is required" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/b/c\",\"devices\":[]}", false, "kind \"a.com/b/c\" is not*" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"A.com/b\",\"devices\":[]}", false, "kind \"A.com/b\" is not*" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"-a.com/b\",\"devices\":[]}", false, "kind \"-a.com/b\" is not*" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/b-\",\"devices\":[]}", false, "kind \"a.com/b-\" is not*" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/b\",\"devices\":[]}", false,
		  "devices must list at least one device" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/b\",\"devices\":[{\"name\":\"-x\",\"containerEdits\":"
		  "{\"env\":[\"A=1\"]}}]}", false, "devices[0].name \"-x\" must be*" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/b\",\"devices\":[{\"name\":\"x\"}]}", false,
		  "devices[0] has no containerEdits: a device must change something" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/b\",\"devices\":[{\"name\":\"x\",\"containerEdits\":"
		  "{\"deviceNodes\":[{\"path\":\"dev/x\"}]}}]}", false,
		  "devices[0].containerEdits.deviceNodes[0].path \"dev/x\" must be an absolute path" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/b\",\"devices\":[{\"name\":\"x\",\"containerEdits\":"
		  "{\"deviceNodes\":[{\"path\":\"/etc/passwd\"}]}}]}", false,
		  "devices[0].containerEdits.deviceNodes[0]: host device node \"/etc/passwd\" is not under /dev; berth "
		  "only passes device nodes from /dev" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/b\",\"devices\":[{\"name\":\"x\",\"containerEdits\":"
		  "{\"deviceNodes\":[{\"path\":\"/dev/x\",\"permissions\":\"rx\"}]}}]}", false,
		  "devices[0].containerEdits.deviceNodes[0].permissions \"rx\" must be made of r, w and m, or be \"none\"" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/b\",\"devices\":[{\"name\":\"x\",\"containerEdits\":"
		  "{\"deviceNodes\":[{\"path\":\"/dev/x\",\"type\":\"z\"}]}}]}", false,
		  "devices[0].containerEdits.deviceNodes[0].type \"z\" must be b, c, u or p" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/b\",\"devices\":[{\"name\":\"x\",\"containerEdits\":"
		  "{\"env\":[\"NOEQUALS\"]}}]}", false,
		  "devices[0].containerEdits.env[0] \"NOEQUALS\" must be NAME=VALUE" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/b\",\"devices\":[{\"name\":\"x\",\"containerEdits\":"
		  "{\"hooks\":[{\"hookName\":\"prestart\",\"path\":\"/x\",\"timeout\":0}]}}]}", false,
		  "devices[0].containerEdits.hooks[0].timeout must be an integer from 1 to 86400" },
		{ "{\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/b\",\"devices\":[{\"name\":\"x\",\"containerEdits\":"
		  "{\"netDevices\":[]}}]}", false,
		  "devices[0].containerEdits.netDevices: berth does not apply this edit; remove it from the spec or use "
		  "a runtime that does" },
		{ "{\"cdiVersion\":\"0.3.0\",\"kind\":\"a.com/b\",\"devices\":[{\"name\":\"x\",\"containerEdits\":"
		  "{\"mounts\":[{\"hostPath\":\"/a\",\"containerPath\":\"/a\",\"type\":\"bind\"}]}}]}", false,
		  "cdiVersion \"0.3.0\" is too old for mounts.type, which needs 0.4.0" },
		{ "{\"cdiVersion\":\"0.5.0\",\"kind\":\"a.com/b.c\",\"devices\":[{\"name\":\"x\",\"containerEdits\":"
		  "{\"env\":[\"A=1\"]}}]}", false, "cdiVersion \"0.5.0\" is too old for a dot in the kind's class, which "
		  "needs 0.6.0" },
		{ "{\"cdiVersion\":\"0.6.0\",\"cdiVersion\":\"0.6.0\",\"kind\":\"a.com/b\",\"devices\":[]}", false,
		  "spec: member \"cdiVersion\" given twice" },
		{ "[1,2]", false, "a CDI spec is an object" },
		{ "{\"cdiVersion\":", false, "not a JSON CDI spec*" },
		{ "cdiVersion: 0.6.0\nkind: a.com/b\ndevices:\n- name: 0\n  containerEdits: {env: [A=1]}\n", true,
		  "devices[0].name must be a string" },
		{ "cdiVersion: 0.6.0\nkind: a.com/b\ndevices:\n- name: x\n  containerEdits:\n    deviceNodes:\n"
		  "    - path: /dev/x\n      major: 0x1F\n", true,
		  "devices[0].containerEdits.deviceNodes[0].major must be an integer from 0 to 1048575" },
		{ "cdiVersion: 0.6.0\nkind: a.com/b\ndevices:\n- name: x\n  containerEdits:\n    deviceNodes:\n"
		  "    - path: /dev/x\n      minor: .5\n", true,
		  "devices[0].containerEdits.deviceNodes[0].minor must be an integer from 0 to 1048575" },
		{ "a: &x 1\nb: *x\n", true, "not a YAML CDI spec: line 1: anchors are not accepted in a CDI spec" },
		{ "a: 1\n---\nb: 2\n", true, "not a YAML CDI spec: line 2: a CDI spec is one YAML document, this is a second" },
		{ "a: [1\n", true, "not a YAML CDI spec: line *" },
		{ "? [a]\n: 1\n", true, "not a YAML CDI spec: line 1: a mapping key must be a plain string" },
		{ "", true, "not a YAML CDI spec: the file holds no YAML document" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cdi_spec s;
		struct berth_err err = { 0 };
		int r = cdi_spec_parse(bad[i].text, strlen(bad[i].text), bad[i].yaml, &s, &err);
		if (r != -1)
			fail_msg("case %zu was accepted: %s", i, bad[i].text);
		size_t n = strlen(bad[i].msg);
		bool prefix = bad[i].msg[n - 1] == '*';
		if (prefix ? strncmp(err.msg, bad[i].msg, n - 1) != 0 : strcmp(err.msg, bad[i].msg) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err.msg, bad[i].msg);
		assert_int_equal(err.cls, BERTH_ERR_VALIDATION);
		assert_null(s.kind);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_true(cdi_kind_valid("nvidia.com/gpu"));
	assert_true(cdi_kind_valid("foo.bar.baz/foo-bar123.B_az"));
	assert_false(cdi_kind_valid("foo"));
	assert_false(cdi_kind_valid("vendor.com/foo/"));
	assert_false(cdi_kind_valid("vendor.com/foo/bar"));
	assert_false(cdi_kind_valid("vendor..com/foo"));
	assert_false(cdi_kind_valid("/foo"));
	assert_false(cdi_kind_valid(NULL));
	assert_true(cdi_qualified_name_valid("nvidia.com/gpu=0"));
	assert_true(cdi_qualified_name_valid("nvidia.com/gpu=GPU-6f2d.x"));
	assert_false(cdi_qualified_name_valid("nvidia.com/gpu"));
	assert_false(cdi_qualified_name_valid("nvidia.com/gpu="));
	assert_false(cdi_qualified_name_valid("gpu=0"));
}

static void test_pick(void **state)
{
	(void)state;
	char *usable[] = { "k.io/g=0", "k.io/g=1", "k.io/g=2", "k.io/g=10" };
	char *held[] = { "k.io/g=1", "other.io/x=0" };
	char **out = NULL;
	assert_int_equal(devices_pick(usable, 4, held, 2, 2, &out), 0);
	assert_string_equal(out[0], "k.io/g=0");
	assert_string_equal(out[1], "k.io/g=2");
	assert_null(out[2]);
	cdi_names_free(out);
	assert_int_equal(devices_pick(usable, 4, held, 2, 3, &out), 0);
	assert_string_equal(out[2], "k.io/g=10");
	cdi_names_free(out);
	assert_int_equal(devices_pick(usable, 4, held, 2, 4, &out), -1);
	assert_null(out);
	assert_int_equal(devices_pick(usable, 0, NULL, 0, 1, &out), -1);
	assert_int_equal(devices_pick(usable, 4, NULL, 0, 0, &out), 0);
	assert_null(out[0]);
	cdi_names_free(out);
}

static void put(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *path = fs_path("%s/%s", dir, name);
	struct berth_err err;
	assert_int_equal(fs_write_atomic(path, text, strlen(text), 0644, &err), 0);
}

static const char *spec_fmt = "{\"cdiVersion\":\"0.6.0\",\"kind\":\"k.io/g\",\"devices\":[%s],"
			      "\"containerEdits\":{\"env\":[\"SPEC=%s\"]}}";

static char *spec_of(const char *devices, const char *tag)
{
	return fs_path(spec_fmt, devices, tag);
}

#define DEV(name, node, extra) \
	"{\"name\":\"" name "\",\"containerEdits\":{\"deviceNodes\":[{\"path\":\"/dev/g" name "\",\"hostPath\":\"" \
	node "\"" extra "}],\"env\":[\"DEV=" name "\"]}}"

static void test_registry(void **state)
{
	(void)state;
	char low[] = "/tmp/berth-cdi-low-XXXXXX", high[] = "/tmp/berth-cdi-high-XXXXXX";
	assert_non_null(mkdtemp(low));
	assert_non_null(mkdtemp(high));
	_cleanup_free_ char *a = spec_of(DEV("10", "/dev/full", "") "," DEV("2", "/dev/null", "") ","
					 DEV("bad", "/dev/null", ",\"major\":1,\"minor\":5"),
					 "a");
	put(low, "a.json", a);
	const char *dirs[] = { low, high };
	struct cdi_registry r;
	struct berth_err err;
	assert_int_equal(cdi_registry_init(&r, dirs, 2, &err), 0);
	/* name order (2 before 10); the node whose numbers differ is not usable */
	assert_int_equal(r.n_devices, 3);
	assert_string_equal(r.devices[0].name, "k.io/g=2");
	assert_string_equal(r.devices[1].name, "k.io/g=10");
	assert_string_equal(r.devices[2].name, "k.io/g=bad");
	assert_string_equal(r.devices[2].health, "device node /dev/null is 1:3, the spec says 1:5");
	char **names;
	size_t n;
	assert_int_equal(cdi_registry_usable(&r, "k.io/g", NULL, 0, &names, &n), 0);
	assert_int_equal(n, 2);
	cdi_names_free(names);
	assert_false(cdi_registry_refresh(&r)); /* nothing changed */

	/* the edits: the spec's once, then each device's, nodes filled from the host */
	char *want[] = { "k.io/g=2", "k.io/g=10" };
	struct cdi_edits e;
	assert_int_equal(cdi_registry_edits(&r, want, 2, &e, &err), 0);
	assert_int_equal(e.n_env, 3);
	assert_string_equal(e.env[0], "SPEC=a");
	assert_string_equal(e.env[1], "DEV=2");
	assert_string_equal(e.env[2], "DEV=10");
	assert_int_equal(e.n_nodes, 2);
	struct stat st;
	assert_int_equal(stat("/dev/null", &st), 0);
	assert_int_equal(e.nodes[0].type, 'c');
	assert_int_equal(e.nodes[0].major, major(st.st_rdev));
	assert_int_equal(e.nodes[0].minor, minor(st.st_rdev));
	assert_int_equal(e.nodes[0].file_mode, st.st_mode & 07777);
	cdi_edits_free(&e);
	char *unknown[] = { "k.io/g=7" };
	assert_int_equal(cdi_registry_edits(&r, unknown, 1, &e, &err), -1);
	assert_non_null(strstr(err.msg, "CDI device k.io/g=7, reserved for this instance, is defined by no CDI spec"));
	char *bad[] = { "k.io/g=bad" };
	assert_int_equal(cdi_registry_edits(&r, bad, 1, &e, &err), -1);
	assert_string_equal(err.msg, "CDI device k.io/g=bad is not usable: device node /dev/null is 1:3, the spec says 1:5.");

	/* a later directory replaces a device; one directory claiming it twice is a conflict */
	_cleanup_free_ char *b = spec_of(DEV("2", "/dev/zero", ""), "b");
	put(high, "b.json", b);
	assert_true(cdi_registry_refresh(&r));
	assert_int_equal(r.n_devices, 3);
	assert_string_equal(r.devices[0].name, "k.io/g=2");
	assert_non_null(strstr(r.devices[0].spec_path, high));
	assert_int_equal(r.n_problems, 0);
	put(high, "c.yaml", "cdiVersion: 0.6.0\nkind: k.io/g\ndevices:\n- name: \"2\"\n  containerEdits:\n"
			    "    env: [X=1]\n");
	assert_true(cdi_registry_refresh(&r));
	assert_int_equal(r.n_devices, 2); /* g=2 is in conflict: neither is used */
	assert_string_equal(r.devices[0].name, "k.io/g=10");
	assert_int_equal(r.n_problems, 2);
	assert_non_null(strstr(r.problems[0].message, "device k.io/g=2 is also defined by "));

	/* a spec writable by others is refused */
	_cleanup_free_ char *cpath = fs_path("%s/c.yaml", high);
	assert_int_equal(chmod(cpath, 0666), 0);
	assert_true(cdi_registry_refresh(&r));
	assert_int_equal(r.n_problems, 1);
	assert_string_equal(r.problems[0].message, "owned by uid 0 with mode 0666; a CDI spec must belong to root and be "
						   "writable by no one else (chown root, chmod go-w)");
	cdi_registry_free(&r);
	assert_int_equal(fs_remove_tree(low, &err), 0);
	assert_int_equal(fs_remove_tree(high, &err), 0);
}

/* nvidia-ctk names one GPU twice (by index and by UUID) and adds "all":
 * each physical device is handed out once, the aggregate never */
static void test_aliases_and_aggregates(void **state)
{
	(void)state;
	char dir[] = "/tmp/berth-cdi-alias-XXXXXX";
	assert_non_null(mkdtemp(dir));
	_cleanup_free_ char *a = spec_of(DEV("0", "/dev/null", "") "," DEV("1", "/dev/zero", "") ","
					 DEV("GPU-aaa", "/dev/null", "") ","
					 "{\"name\":\"all\",\"containerEdits\":{\"deviceNodes\":[{\"path\":\"/dev/g0\","
					 "\"hostPath\":\"/dev/null\"},{\"path\":\"/dev/g1\",\"hostPath\":\"/dev/zero\"}]}}",
					 "a");
	put(dir, "a.json", a);
	const char *dirs[] = { dir };
	struct cdi_registry r;
	struct berth_err err;
	assert_int_equal(cdi_registry_init(&r, dirs, 1, &err), 0);
	assert_int_equal(r.n_devices, 4);
	char **names;
	size_t n;
	assert_int_equal(cdi_registry_usable(&r, "k.io/g", NULL, 0, &names, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "k.io/g=0");
	assert_string_equal(names[1], "k.io/g=1");
	cdi_names_free(names);
	char *by_uuid[] = { "k.io/g=GPU-aaa" }; /* held under its other name */
	assert_int_equal(cdi_registry_usable(&r, "k.io/g", by_uuid, 1, &names, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "k.io/g=1");
	cdi_names_free(names);
	char *all[] = { "k.io/g=all" };
	assert_int_equal(cdi_registry_usable(&r, "k.io/g", all, 1, &names, &n), 0);
	assert_int_equal(n, 0);
	cdi_names_free(names);
	cdi_registry_free(&r);
	assert_int_equal(fs_remove_tree(dir, &err), 0);
}

/* which kind a type's gpus are: the table's device_kind, else the default */
static void test_instance_type_kinds(void **state)
{
	(void)state;
	static const char table[] = "{\"ml.g5.xlarge\":{\"vcpus\":4,\"memory_mib\":16384,\"gpus\":1},"
				    "\"ml.inf2.xlarge\":{\"vcpus\":4,\"memory_mib\":16384,\"gpus\":1,"
				    "\"device_kind\":\"aws.amazon.com/neuron\"},"
				    "\"ml.t2.medium\":{\"vcpus\":2,\"memory_mib\":4096}}";
	struct limits l = { 0 };
	struct berth_err err;
	assert_int_equal(instance_types_parse(table, strlen(table), &l.types, &err), 0);
	int gpus = -1;
	assert_string_equal(devices_kind(&l, "ml.g5.xlarge", &gpus), "nvidia.com/gpu");
	assert_int_equal(gpus, 1);
	assert_string_equal(devices_kind(&l, "ml.inf2.xlarge", &gpus), "aws.amazon.com/neuron");
	l.accelerator_kind = "amd.com/gpu";
	assert_string_equal(devices_kind(&l, "ml.g5.xlarge", &gpus), "amd.com/gpu");
	assert_string_equal(devices_kind(&l, "ml.t2.medium", &gpus), "amd.com/gpu");
	assert_int_equal(gpus, 0);
	assert_null(devices_kind(&l, "ml.x.none", &gpus));
	instance_types_free(&l.types);
	static const char bad[] = "{\"ml.g5.xlarge\":{\"vcpus\":4,\"memory_mib\":16384,\"gpus\":1,"
				  "\"device_kind\":\"gpu\"}}";
	assert_int_equal(instance_types_parse(bad, strlen(bad), &l.types, &err), -1);
	assert_string_equal(err.msg, "instance types: \"ml.g5.xlarge\": \"device_kind\" must be a CDI kind, "
				     "VENDOR/CLASS (\"nvidia.com/gpu\")");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_and_yaml),
		cmocka_unit_test(test_bad_specs),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_pick),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_aliases_and_aggregates),
		cmocka_unit_test(test_instance_type_kinds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
