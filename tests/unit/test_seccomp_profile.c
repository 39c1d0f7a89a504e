/* test_seccomp_profile.c — rendering the Docker-format default profile into
 * an OCI linux.seccomp (seccomp_profile.h), and the bundle carrying it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bundle.h"
#include "embedded_configs.h"
#include "json.h"
#include "seccomp_profile.h"

static const char *const docker_caps[] = { "CAP_CHOWN", "CAP_SETUID", "CAP_SYS_CHROOT", "CAP_KILL" };

/* Renders the embedded profile for machine/kernel and caps; returns the tree. */
static yajl_val render(const char *machine, const char *kernel, const char *const *caps, size_t n_caps)
{
	size_t len;
	const char *text = embedded_seccomp_profile(&len);
	struct berth_err err;
	struct seccomp_profile *p = seccomp_profile_parse(text, len, machine, kernel, &err);
	if (p == NULL)
		fail_msg("%s", err.msg);
	yajl_gen g = json_gen_new();
	yajl_gen_map_open(g);
	assert_int_equal(seccomp_profile_gen(p, caps, n_caps, g), 0);
	yajl_gen_map_close(g);
	struct berth_buf out = BERTH_BUF_INIT;
	assert_int_equal(json_gen_finish(g, &out), 0);
	seccomp_profile_free(p);
	yajl_val v = json_parse(out.data, out.len, &err);
	buf_free(&out);
	assert_non_null(v);
	return v;
}

/* The action a rule list gives name: the first rule naming it, or NULL. */
static yajl_val rule_for(yajl_val sec, const char *name)
{
	yajl_val rules = json_get(sec, "syscalls");
	for (size_t i = 0; i < rules->u.array.len; i++) {
		yajl_val names = json_get(rules->u.array.values[i], "names");
		for (size_t j = 0; j < names->u.array.len; j++)
			if (strcmp(names->u.array.values[j]->u.string, name) == 0)
				return rules->u.array.values[i];
	}
	return NULL;
}

static void test_x86_64_docker_caps(void **state)
{
	(void)state;
	yajl_val root = render("x86_64", "6.1.0", docker_caps, 4);
	yajl_val sec = json_get(root, "seccomp");
	assert_string_equal(json_get_string(sec, "defaultAction"), "SCMP_ACT_ERRNO");
	long long e = 0;
	assert_true(json_get_int64(sec, "defaultErrnoRet", &e));
	assert_int_equal(e, 1);
	yajl_val arches = json_get(sec, "architectures");
	assert_int_equal(arches->u.array.len, 3);
	assert_string_equal(arches->u.array.values[0]->u.string, "SCMP_ARCH_X86_64");
	assert_string_equal(arches->u.array.values[1]->u.string, "SCMP_ARCH_X86");
	assert_string_equal(arches->u.array.values[2]->u.string, "SCMP_ARCH_X32");
	assert_non_null(rule_for(sec, "read"));
	assert_non_null(rule_for(sec, "arch_prctl"));   /* amd64 only */
	assert_null(rule_for(sec, "arm_fadvise64_64"));
	assert_non_null(rule_for(sec, "chroot"));       /* CAP_SYS_CHROOT held */
	assert_non_null(rule_for(sec, "ptrace"));       /* kernel ≥ 4.8 */
	assert_null(rule_for(sec, "mount"));            /* needs CAP_SYS_ADMIN */
	assert_null(rule_for(sec, "unshare"));
	assert_null(rule_for(sec, "keyctl"));           /* never */
	assert_null(rule_for(sec, "reboot"));
	/* io_uring: denied (default EPERM), as Docker 25 and later do */
	assert_null(rule_for(sec, "io_uring_setup"));
	assert_null(rule_for(sec, "io_uring_enter"));
	assert_null(rule_for(sec, "io_uring_register"));
	/* clone: only without namespace flags */
	yajl_val clone = rule_for(sec, "clone");
	assert_non_null(clone);
	yajl_val arg = json_get(clone, "args")->u.array.values[0];
	long long v = 0;
	assert_true(json_get_int64(arg, "value", &v));
	assert_int_equal(v, 2114060288);
	assert_string_equal(json_get_string(arg, "op"), "SCMP_CMP_MASKED_EQ");
	/* clone3 answers ENOSYS so libcs fall back to clone */
	yajl_val clone3 = rule_for(sec, "clone3");
	assert_string_equal(json_get_string(clone3, "action"), "SCMP_ACT_ERRNO");
	assert_true(json_get_int64(clone3, "errnoRet", &v));
	assert_int_equal(v, 38);
	/* large argument values pass through unchanged */
	yajl_val rules = json_get(sec, "syscalls");
	bool found = false;
	for (size_t i = 0; i < rules->u.array.len; i++) {
		yajl_val r = rules->u.array.values[i];
		yajl_val a = json_get(r, "args");
		if (a && strcmp(json_get(r, "names")->u.array.values[0]->u.string, "personality") == 0 &&
		    json_get_int64(a->u.array.values[0], "value", &v) && v == 4294967295LL)
			found = true;
	}
	assert_true(found);
	yajl_tree_free(root);
}

static void test_aarch64_old_kernel_sys_admin(void **state)
{
	(void)state;
	static const char *const admin[] = { "CAP_SYS_ADMIN" };
	yajl_val root = render("aarch64", "4.4.0", admin, 1);
	yajl_val sec = json_get(root, "seccomp");
	yajl_val arches = json_get(sec, "architectures");
	assert_int_equal(arches->u.array.len, 2);
	assert_string_equal(arches->u.array.values[0]->u.string, "SCMP_ARCH_AARCH64");
	assert_null(rule_for(sec, "arch_prctl"));
	assert_non_null(rule_for(sec, "arm_fadvise64_64"));
	assert_null(rule_for(sec, "ptrace"));           /* kernel < 4.8, no CAP_SYS_PTRACE */
	assert_non_null(rule_for(sec, "mount"));        /* CAP_SYS_ADMIN */
	/* with CAP_SYS_ADMIN the unconditional clone rule wins; the masked one is excluded */
	yajl_val clone = rule_for(sec, "clone");
	assert_null(json_get(clone, "args"));
	assert_string_equal(json_get_string(rule_for(sec, "clone3"), "action"), "SCMP_ACT_ALLOW");
	yajl_tree_free(root);
}

static void test_bad_profiles(void **state)
{
	(void)state;
	static const struct {
		const char *doc, *fragment;
	} bad[] = {
		{ "{}", "defaultAction" },
		{ "{\"defaultAction\":\"ALLOW\",\"syscalls\":[]}", "defaultAction" },
		{ "{\"defaultAction\":\"SCMP_ACT_ERRNO\"}", "\"syscalls\"" },
		{ "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[],\"action\":\"SCMP_ACT_ALLOW\"}]}",
		  "rule 0" },
		{ "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"x\"}]}", "rule 0" },
		{ "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\","
		  "\"args\":[{\"index\":9,\"value\":1,\"op\":\"SCMP_CMP_EQ\"}]}]}",
		  "argument condition" },
		{ "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],\"action\":\"SCMP_ACT_ALLOW\","
		  "\"includes\":{\"caps\":\"CAP_X\"}}]}",
		  "bad caps" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct berth_err err;
		assert_null(seccomp_profile_parse(bad[i].doc, strlen(bad[i].doc), "x86_64", "6.1", &err));
		if (strstr(err.msg, bad[i].fragment) == NULL)
			fail_msg("\"%s\" not in \"%s\"", bad[i].fragment, err.msg);
	}
}

static void test_bundle_carries_it(void **state)
{
	(void)state;
	struct berth_err err;
	struct seccomp_profile *p = seccomp_profile_load(NULL, &err);
	assert_non_null(p);
	const char *args[] = { "/serve", "serve" };
	struct bundle_spec spec = { .id = "c1", .hostname = "h", .rootfs = "/r", .cgroups_path = "/berth/e/v-0/c1",
				    .args = args, .n_args = 2, .seccomp = p };
	struct berth_buf out = BERTH_BUF_INIT;
	assert_int_equal(bundle_render(&spec, &out), 0);
	yajl_val root = json_parse(out.data, out.len, &err);
	assert_non_null(root);
	yajl_val sec = json_get(json_get(root, "linux"), "seccomp");
	assert_non_null(sec);
	assert_non_null(rule_for(sec, "chown"));
	assert_null(rule_for(sec, "mount")); /* the bundle's capability set has no CAP_SYS_ADMIN */
	yajl_tree_free(root);
	buf_free(&out);
	spec.seccomp = NULL;
	assert_int_equal(bundle_render(&spec, &out), 0);
	root = json_parse(out.data, out.len, &err);
	assert_null(json_get(json_get(root, "linux"), "seccomp"));
	yajl_tree_free(root);
	buf_free(&out);
	seccomp_profile_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_x86_64_docker_caps),
		cmocka_unit_test(test_aarch64_old_kernel_sys_admin),
		cmocka_unit_test(test_bad_profiles),
		cmocka_unit_test(test_bundle_carries_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
