/* bundle.c — see bundle.h. */
#include "bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "json.h"
#include "proto_shim.h"
#include "seccomp_profile.h"
#include "serve_process.h"
#include "uid_range.h"

#define IMAGE_PATH SERVE_DEFAULT_PATH

/* Docker's default set (not runc spec's three): serving stacks chown their
 * directories and bind low ports at start. */
static const char *const default_caps[] = {
	"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",	   "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID",	   "CAP_SETUID",	   "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
};
/* Docker's (moby's) default masked and read-only paths: host hardware,
 * kernel state and interrupt counts (a side channel) stay out of sight. */
static const char *const masked_paths[] = {
	"/proc/asound",	       "/proc/acpi",	   "/proc/interrupts",	"/proc/kcore",
	"/proc/keys",	       "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
	"/proc/sched_debug",   "/proc/scsi",	   "/sys/firmware",	"/sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

static void gen_str_array(yajl_gen g, const char *key, const char *const *items, size_t n)
{
	json_gen_str(g, key);
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++)
		json_gen_str(g, items[i]);
	yajl_gen_array_close(g);
}

static void gen_mount(yajl_gen g, const char *dest, const char *type, const char *source,
		      const char *const *options, size_t n_options)
{
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "destination", dest);
	json_gen_kv_str(g, "type", type);
	json_gen_kv_str(g, "source", source);
	gen_str_array(g, "options", options, n_options);
	yajl_gen_map_close(g);
}

static void gen_mounts(yajl_gen g, const struct bundle_spec *spec)
{
	static const char *const proc_o[] = { "nosuid", "noexec", "nodev" };
	static const char *const dev_o[] = { "nosuid", "strictatime", "mode=755", "size=65536k" };
	static const char *const pts_o[] = { "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" };
	static const char *const shm_o[] = { "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" };
	static const char *const mq_o[] = { "nosuid", "noexec", "nodev" };
	static const char *const sys_o[] = { "nosuid", "noexec", "nodev", "ro" };
	static const char *const cg_o[] = { "nosuid", "noexec", "nodev", "relatime", "ro" };
	static const char *const tmp_o[] = { "nosuid", "nodev", "mode=1777", "size=1g" };
	/* never rbind: nothing mounted below the source comes along */
	static const char *const model_o[] = { "bind", "ro", "nosuid", "nodev" };
	json_gen_str(g, "mounts");
	yajl_gen_array_open(g);
	gen_mount(g, "/proc", "proc", "proc", proc_o, BERTH_ARRAY_SIZE(proc_o));
	gen_mount(g, "/dev", "tmpfs", "tmpfs", dev_o, BERTH_ARRAY_SIZE(dev_o));
	gen_mount(g, "/dev/pts", "devpts", "devpts", pts_o, BERTH_ARRAY_SIZE(pts_o));
	gen_mount(g, "/dev/shm", "tmpfs", "shm", shm_o, BERTH_ARRAY_SIZE(shm_o));
	gen_mount(g, "/dev/mqueue", "mqueue", "mqueue", mq_o, BERTH_ARRAY_SIZE(mq_o));
	gen_mount(g, "/sys", "sysfs", "sysfs", sys_o, BERTH_ARRAY_SIZE(sys_o));
	gen_mount(g, "/sys/fs/cgroup", "cgroup", "cgroup", cg_o, BERTH_ARRAY_SIZE(cg_o));
	if (!spec->rootfs_writable) /* an overlay root has a writable /tmp already */
		gen_mount(g, "/tmp", "tmpfs", "tmpfs", tmp_o, BERTH_ARRAY_SIZE(tmp_o));
	if (spec->model_dir != NULL)
		gen_mount(g, "/opt/ml/model", "bind", spec->model_dir, model_o, BERTH_ARRAY_SIZE(model_o));
	if (spec->multi_model_dir != NULL)
		gen_mount(g, "/opt/ml/models", "bind", spec->multi_model_dir, model_o, BERTH_ARRAY_SIZE(model_o));
	if (spec->submit_dir != NULL)
		gen_mount(g, BUNDLE_SUBMIT_DIR, "bind", spec->submit_dir, model_o, BERTH_ARRAY_SIZE(model_o));
	cdi_edits_gen_mounts(g, &spec->devices);
	yajl_gen_array_close(g);
}

static bool env_has(const struct kv *env, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(env[i].key, key) == 0)
			return true;
	return false;
}

static void gen_kv_unless_devices(yajl_gen g, const struct kv *kv, const struct bundle_devices *d)
{
	if (cdi_edits_sets_env(d, kv->key, strlen(kv->key)))
		return; /* (devices) the instance's devices decide these */
	struct berth_buf s = BERTH_BUF_INIT;
	buf_printf(&s, "%s=%s", kv->key, kv->value);
	json_gen_strn(g, s.data, s.len);
	buf_free(&s);
}

/* What SageMaker itself sets in a serving container (the SDK's own
 * variables, SAGEMAKER_PROGRAM, SAGEMAKER_SUBMIT_DIRECTORY, SAGEMAKER_REGION
 * and the like, come in through CreateModel Environment). It overrides the
 * image's Env, as `docker run -e` does; CreateModel Environment may override
 * those marked so (docs/contract.md §4). */
struct platform_env {
	const char *key;
	const char *value;
	bool user_wins;         /* CreateModel Environment may set its own */
	bool multi_model_only;  /* only for Mode MultiModel */
};

static const struct platform_env platform_env[] = {
	/* every container listens here; its network namespace is its own */
	{ "SAGEMAKER_BIND_TO_PORT", BUNDLE_BIND_TO_PORT, false, false },
	/* ports a container may use for its own processes (TensorFlow
	 * Serving's gRPC and REST ports, Triton's metrics) */
	{ "SAGEMAKER_SAFE_PORT_RANGE", BUNDLE_SAFE_PORT_RANGE, true, false },
	{ "SAGEMAKER_MULTI_MODEL", "true", true, true },
};

static const struct platform_env *platform_env_for(const struct bundle_spec *spec, const char *key)
{
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(platform_env); i++)
		if (strcmp(platform_env[i].key, key) == 0 &&
		    (!platform_env[i].multi_model_only || spec->multi_model_dir != NULL))
			return &platform_env[i];
	return NULL;
}

/* image Env < berth's PATH default < SageMaker's variables < CreateModel
 * Environment (for the variables SageMaker lets it set) */
static void gen_env(yajl_gen g, const struct bundle_spec *spec)
{
	json_gen_str(g, "env");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < spec->n_image_env; i++) {
		const struct kv *kv = &spec->image_env[i];
		if (platform_env_for(spec, kv->key) == NULL && !env_has(spec->env, spec->n_env, kv->key) &&
		    !env_has(spec->image_env, i, kv->key))
			gen_kv_unless_devices(g, kv, &spec->devices);
	}
	if (!env_has(spec->image_env, spec->n_image_env, "PATH") && !env_has(spec->env, spec->n_env, "PATH"))
		json_gen_str(g, "PATH=" IMAGE_PATH);
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(platform_env); i++) {
		const struct platform_env *p = &platform_env[i];
		if ((p->multi_model_only && spec->multi_model_dir == NULL) ||
		    (p->user_wins && env_has(spec->env, spec->n_env, p->key)))
			continue;
		gen_kv_unless_devices(g, &(struct kv){ (char *)p->key, (char *)p->value }, &spec->devices);
	}
	for (size_t i = 0; i < spec->n_env; i++) {
		const struct platform_env *p = platform_env_for(spec, spec->env[i].key);
		if ((p == NULL || p->user_wins) && !env_has(spec->env, i, spec->env[i].key))
			gen_kv_unless_devices(g, &spec->env[i], &spec->devices);
	}
	cdi_edits_gen_env(g, &spec->devices);
	yajl_gen_array_close(g);
}

static void gen_process(yajl_gen g, const struct bundle_spec *spec)
{
	json_gen_str(g, "process");
	yajl_gen_map_open(g);
	json_gen_kv_bool(g, "terminal", false);
	json_gen_str(g, "user");
	yajl_gen_map_open(g);
	json_gen_kv_int(g, "uid", spec->uid);
	json_gen_kv_int(g, "gid", spec->gid);
	if (spec->n_additional_gids > 0 || cdi_edits_n_gids(&spec->devices) > 0) {
		json_gen_str(g, "additionalGids");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < spec->n_additional_gids; i++)
			yajl_gen_integer(g, spec->additional_gids[i]);
		cdi_edits_gen_gids(g, &spec->devices);
		yajl_gen_array_close(g);
	}
	yajl_gen_map_close(g);
	gen_str_array(g, "args", spec->args, spec->n_args);
	gen_env(g, spec);
	json_gen_kv_str(g, "cwd", spec->cwd ? spec->cwd : "/");
	json_gen_str(g, "capabilities");
	yajl_gen_map_open(g);
	gen_str_array(g, "bounding", default_caps, BERTH_ARRAY_SIZE(default_caps));
	gen_str_array(g, "effective", default_caps, BERTH_ARRAY_SIZE(default_caps));
	gen_str_array(g, "permitted", default_caps, BERTH_ARRAY_SIZE(default_caps));
	yajl_gen_map_close(g);
	if (spec->nofile_limit > 0) {
		json_gen_str(g, "rlimits");
		yajl_gen_array_open(g);
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "type", "RLIMIT_NOFILE");
		json_gen_kv_int(g, "hard", spec->nofile_limit);
		json_gen_kv_int(g, "soft", spec->nofile_limit);
		yajl_gen_map_close(g);
		yajl_gen_array_close(g);
	}
	json_gen_kv_bool(g, "noNewPrivileges", true);
	yajl_gen_map_close(g);
}

static void gen_id_mapping(yajl_gen g, const char *key, long long base)
{
	json_gen_str(g, key);
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	json_gen_kv_int(g, "containerID", 0);
	json_gen_kv_int(g, "hostID", base);
	json_gen_kv_int(g, "size", USERNS_RANGE_SIZE);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
}

static void gen_linux(yajl_gen g, const struct bundle_spec *spec)
{
	static const char *const namespaces[] = { "user", "pid", "network", "ipc", "uts", "mount", "cgroup" };
	json_gen_str(g, "linux");
	yajl_gen_map_open(g);
	json_gen_str(g, "namespaces");
	yajl_gen_array_open(g);
	for (size_t i = spec->uid_base > 0 ? 0 : 1; i < BERTH_ARRAY_SIZE(namespaces); i++) {
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "type", namespaces[i]);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	if (spec->uid_base > 0) {
		gen_id_mapping(g, "uidMappings", spec->uid_base);
		gen_id_mapping(g, "gidMappings", spec->uid_base);
	}
	json_gen_kv_str(g, "cgroupsPath", spec->cgroups_path);
	json_gen_str(g, "resources");
	yajl_gen_map_open(g);
	json_gen_str(g, "devices");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g); /* deny all; runc allows its default devices */
	json_gen_kv_bool(g, "allow", false);
	json_gen_kv_str(g, "access", "rwm");
	yajl_gen_map_close(g);
	cdi_edits_gen_device_rules(g, &spec->devices);
	yajl_gen_array_close(g);
	if (spec->memory_limit_bytes > 0) {
		json_gen_str(g, "memory");
		yajl_gen_map_open(g);
		json_gen_kv_int(g, "limit", spec->memory_limit_bytes);
		yajl_gen_map_close(g);
	}
	if (spec->pids_limit > 0) {
		json_gen_str(g, "pids");
		yajl_gen_map_open(g);
		json_gen_kv_int(g, "limit", spec->pids_limit);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	cdi_edits_gen_devices(g, &spec->devices);
	gen_str_array(g, "maskedPaths", masked_paths, BERTH_ARRAY_SIZE(masked_paths));
	gen_str_array(g, "readonlyPaths", readonly_paths, BERTH_ARRAY_SIZE(readonly_paths));
	if (spec->seccomp != NULL) /* rules the container's capabilities unlock are kept, as Docker does */
		seccomp_profile_gen(spec->seccomp, default_caps, BERTH_ARRAY_SIZE(default_caps), g);
	yajl_gen_map_close(g);
}

int bundle_render(const struct bundle_spec *spec, struct berth_buf *out)
{
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return -1;
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "ociVersion", "1.0.2");
	gen_process(g, spec);
	json_gen_str(g, "root");
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "path", spec->rootfs);
	json_gen_kv_bool(g, "readonly", !spec->rootfs_writable);
	yajl_gen_map_close(g);
	json_gen_kv_str(g, "hostname", spec->hostname);
	gen_mounts(g, spec);
	cdi_edits_gen_hooks(g, &spec->devices);
	gen_linux(g, spec);
	yajl_gen_map_close(g);
	return json_gen_finish(g, out);
}

int bundle_write(const char *bundle_dir, const struct bundle_spec *spec, struct berth_err *err)
{
	if (fs_mkdir_p(bundle_dir, 0700, err) < 0)
		return -1;
	struct berth_buf doc = BERTH_BUF_INIT;
	if (bundle_render(spec, &doc) < 0) {
		buf_free(&doc);
		return berth_err_set(err, ENOMEM, "rendering the OCI config of %s", spec->id);
	}
	_cleanup_free_ char *path = fs_path("%s/config.json", bundle_dir);
	int r = path ? fs_write_atomic(path, doc.data, doc.len, 0600, err)
		     : berth_err_set(err, ENOMEM, "bundle");
	buf_free(&doc);
	return r;
}
