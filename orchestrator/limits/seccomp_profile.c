/* seccomp_profile.c — see seccomp_profile.h. */
#include "seccomp_profile.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "embedded_configs.h"
#include "fsutil.h"
#include "json.h"

#define PROFILE_MAX_BYTES (4u << 20)
#define PROFILE_MAX_RULES 4096

struct seccomp_profile {
	yajl_val root;
	yajl_val arch;          /* the archMap entry of this host, or NULL */
	const char *goarch;     /* the name "arches" conditions use: amd64, arm64, … */
	int kernel_major, kernel_minor;
};

static const struct {
	const char *machine, *scmp, *goarch;
} machines[] = {
	{ "x86_64", "SCMP_ARCH_X86_64", "amd64" },   { "aarch64", "SCMP_ARCH_AARCH64", "arm64" },
	{ "i686", "SCMP_ARCH_X86", "386" },          { "armv7l", "SCMP_ARCH_ARM", "arm" },
	{ "ppc64le", "SCMP_ARCH_PPC64LE", "ppc64le" }, { "s390x", "SCMP_ARCH_S390X", "s390x" },
	{ "riscv64", "SCMP_ARCH_RISCV64", "riscv64" },
};

static bool is_string_array(yajl_val v, size_t max)
{
	if (v == NULL || !YAJL_IS_ARRAY(v) || v->u.array.len > max)
		return false;
	for (size_t i = 0; i < v->u.array.len; i++)
		if (!YAJL_IS_STRING(v->u.array.values[i]) || strlen(v->u.array.values[i]->u.string) > 64)
			return false;
	return true;
}

static bool action_ok(const char *a)
{
	return a != NULL && strncmp(a, "SCMP_ACT_", 9) == 0 && strlen(a) < 32;
}

static int check_conditions(yajl_val cond, size_t rule, struct berth_err *err)
{
	if (cond == NULL)
		return 0;
	if (!YAJL_IS_OBJECT(cond))
		return berth_err_set(err, 0, "seccomp profile: rule %zu: includes/excludes must be objects", rule);
	yajl_val caps = json_get(cond, "caps"), arches = json_get(cond, "arches"), kernel = json_get(cond, "minKernel");
	if ((caps && !is_string_array(caps, 64)) || (arches && !is_string_array(arches, 64)) ||
	    (kernel && !YAJL_IS_STRING(kernel)))
		return berth_err_set(err, 0, "seccomp profile: rule %zu: bad caps, arches or minKernel", rule);
	return 0;
}

static int check_rule(yajl_val r, size_t i, struct berth_err *err)
{
	if (!YAJL_IS_OBJECT(r) || !is_string_array(json_get(r, "names"), 1024) ||
	    json_get(r, "names")->u.array.len == 0 || !action_ok(json_get_string(r, "action")))
		return berth_err_set(err, 0, "seccomp profile: rule %zu needs \"names\" and an SCMP_ACT_* \"action\"", i);
	yajl_val errno_ret = json_get(r, "errnoRet");
	if (errno_ret && (!YAJL_IS_INTEGER(errno_ret) || YAJL_GET_INTEGER(errno_ret) < 0 ||
			  YAJL_GET_INTEGER(errno_ret) > 4095))
		return berth_err_set(err, 0, "seccomp profile: rule %zu: errnoRet must be 0-4095", i);
	yajl_val args = json_get(r, "args");
	if (args && (!YAJL_IS_ARRAY(args) || args->u.array.len > 6))
		return berth_err_set(err, 0, "seccomp profile: rule %zu: args must be an array of at most 6", i);
	for (size_t a = 0; args && a < args->u.array.len; a++) {
		yajl_val arg = args->u.array.values[a];
		long long index, value, two;
		const char *op = json_get_string(arg, "op");
		if (!json_get_int64(arg, "index", &index) || index < 0 || index > 5 ||
		    !json_get(arg, "value") || !YAJL_IS_NUMBER(json_get(arg, "value")) || op == NULL ||
		    strncmp(op, "SCMP_CMP_", 9) != 0 || (json_get(arg, "valueTwo") && !json_get_int64(arg, "valueTwo", &two)))
			return berth_err_set(err, 0, "seccomp profile: rule %zu: bad argument condition %zu", i, a);
		(void)value;
	}
	if (check_conditions(json_get(r, "includes"), i, err) < 0 || check_conditions(json_get(r, "excludes"), i, err) < 0)
		return -1;
	return 0;
}

struct seccomp_profile *seccomp_profile_parse(const char *text, size_t len, const char *machine, const char *kernel,
					      struct berth_err *err)
{
	struct utsname u;
	if ((machine == NULL || kernel == NULL) && uname(&u) < 0) {
		berth_err_set(err, errno, "uname");
		return NULL;
	}
	if (machine == NULL)
		machine = u.machine;
	if (kernel == NULL)
		kernel = u.release;
	struct seccomp_profile *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		berth_err_set(err, ENOMEM, "seccomp profile");
		return NULL;
	}
	p->root = json_parse(text, len, err);
	if (p->root == NULL) {
		berth_err_prefix(err, "seccomp profile");
		goto fail;
	}
	if (!action_ok(json_get_string(p->root, "defaultAction"))) {
		berth_err_set(err, 0, "seccomp profile: \"defaultAction\" must be an SCMP_ACT_* action");
		goto fail;
	}
	yajl_val rules = json_get(p->root, "syscalls");
	if (rules == NULL || !YAJL_IS_ARRAY(rules) || rules->u.array.len > PROFILE_MAX_RULES) {
		berth_err_set(err, 0, "seccomp profile: \"syscalls\" must be an array of rules");
		goto fail;
	}
	for (size_t i = 0; i < rules->u.array.len; i++)
		if (check_rule(rules->u.array.values[i], i, err) < 0)
			goto fail;
	const char *scmp = NULL;
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(machines); i++)
		if (strcmp(machines[i].machine, machine) == 0) {
			scmp = machines[i].scmp;
			p->goarch = machines[i].goarch;
		}
	yajl_val map = json_get(p->root, "archMap");
	for (size_t i = 0; scmp && map && YAJL_IS_ARRAY(map) && i < map->u.array.len; i++) {
		yajl_val entry = map->u.array.values[i];
		const char *a = json_get_string(entry, "architecture");
		yajl_val subs = json_get(entry, "subArchitectures");
		if (a == NULL || (subs && !is_string_array(subs, 16))) {
			berth_err_set(err, 0, "seccomp profile: bad archMap entry %zu", i);
			goto fail;
		}
		if (strcmp(a, scmp) == 0)
			p->arch = entry;
	}
	if (sscanf(kernel, "%d.%d", &p->kernel_major, &p->kernel_minor) != 2)
		p->kernel_major = p->kernel_minor = 0;
	return p;
fail:
	seccomp_profile_free(p);
	return NULL;
}

struct seccomp_profile *seccomp_profile_load(const char *path, struct berth_err *err)
{
	if (path == NULL) {
		size_t len;
		const char *text = embedded_seccomp_profile(&len);
		return seccomp_profile_parse(text, len, NULL, NULL, err);
	}
	struct berth_buf doc = BERTH_BUF_INIT;
	struct seccomp_profile *p = NULL;
	if (fs_read_file(path, &doc, PROFILE_MAX_BYTES, err) == 0 &&
	    (p = seccomp_profile_parse(doc.data ? doc.data : "", doc.len, NULL, NULL, err)) == NULL)
		berth_err_prefix(err, "%s", path);
	buf_free(&doc);
	return p;
}

void seccomp_profile_free(struct seccomp_profile *p)
{
	if (p == NULL)
		return;
	yajl_tree_free(p->root);
	free(p);
}

static bool in_list(yajl_val list, const char *s)
{
	for (size_t i = 0; s && list && i < list->u.array.len; i++)
		if (strcmp(list->u.array.values[i]->u.string, s) == 0)
			return true;
	return false;
}

static bool has_cap(const char *const *caps, size_t n, const char *cap)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(caps[i], cap) == 0)
			return true;
	return false;
}

static bool rule_applies(const struct seccomp_profile *p, yajl_val rule, const char *const *caps, size_t n_caps)
{
	yajl_val inc = json_get(rule, "includes"), exc = json_get(rule, "excludes");
	yajl_val v;
	if ((v = json_get(inc, "caps")) != NULL)
		for (size_t i = 0; i < v->u.array.len; i++)
			if (!has_cap(caps, n_caps, v->u.array.values[i]->u.string))
				return false;
	if ((v = json_get(inc, "arches")) != NULL && !in_list(v, p->goarch))
		return false;
	const char *min = json_get_string(inc, "minKernel");
	int major, minor;
	if (min && sscanf(min, "%d.%d", &major, &minor) == 2 &&
	    (p->kernel_major < major || (p->kernel_major == major && p->kernel_minor < minor)))
		return false;
	if ((v = json_get(exc, "caps")) != NULL)
		for (size_t i = 0; i < v->u.array.len; i++)
			if (has_cap(caps, n_caps, v->u.array.values[i]->u.string))
				return false;
	if ((v = json_get(exc, "arches")) != NULL && in_list(v, p->goarch))
		return false;
	return true;
}

static void gen_number(yajl_gen g, yajl_val v)
{
	if (YAJL_IS_INTEGER(v))
		yajl_gen_integer(g, YAJL_GET_INTEGER(v));
	else /* beyond long long (yajl keeps the text): pass it through as written */
		yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
}

static void gen_rule(yajl_gen g, yajl_val rule)
{
	yajl_gen_map_open(g);
	yajl_val names = json_get(rule, "names");
	json_gen_str(g, "names");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < names->u.array.len; i++)
		json_gen_str(g, names->u.array.values[i]->u.string);
	yajl_gen_array_close(g);
	json_gen_kv_str(g, "action", json_get_string(rule, "action"));
	long long errno_ret;
	if (json_get_int64(rule, "errnoRet", &errno_ret))
		json_gen_kv_int(g, "errnoRet", errno_ret);
	yajl_val args = json_get(rule, "args");
	if (args && args->u.array.len > 0) {
		json_gen_str(g, "args");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < args->u.array.len; i++) {
			yajl_val a = args->u.array.values[i];
			yajl_gen_map_open(g);
			long long index = 0;
			json_get_int64(a, "index", &index);
			json_gen_kv_int(g, "index", index);
			json_gen_str(g, "value");
			gen_number(g, json_get(a, "value"));
			if (json_get(a, "valueTwo")) {
				json_gen_str(g, "valueTwo");
				gen_number(g, json_get(a, "valueTwo"));
			}
			json_gen_kv_str(g, "op", json_get_string(a, "op"));
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
	}
	yajl_gen_map_close(g);
}

int seccomp_profile_gen(const struct seccomp_profile *p, const char *const *caps, size_t n_caps, yajl_gen g)
{
	json_gen_str(g, "seccomp");
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "defaultAction", json_get_string(p->root, "defaultAction"));
	long long default_errno;
	if (json_get_int64(p->root, "defaultErrnoRet", &default_errno))
		json_gen_kv_int(g, "defaultErrnoRet", default_errno);
	if (p->arch != NULL) {
		json_gen_str(g, "architectures");
		yajl_gen_array_open(g);
		json_gen_str(g, json_get_string(p->arch, "architecture"));
		yajl_val subs = json_get(p->arch, "subArchitectures");
		for (size_t i = 0; subs && i < subs->u.array.len; i++)
			json_gen_str(g, subs->u.array.values[i]->u.string);
		yajl_gen_array_close(g);
	}
	json_gen_str(g, "syscalls");
	yajl_gen_array_open(g);
	yajl_val rules = json_get(p->root, "syscalls");
	for (size_t i = 0; i < rules->u.array.len; i++)
		if (rule_applies(p, rules->u.array.values[i], caps, n_caps))
			gen_rule(g, rules->u.array.values[i]);
	yajl_gen_array_close(g);
	return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
}
