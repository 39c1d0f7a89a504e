/* cdi_edits.c — see cdi_edits.h. */
#include "cdi_edits.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "buf.h"
#include "cdi_registry.h"
#include "fsutil.h"
#include "json.h"

int cdi_edits_make_nodes(const char *dir, const struct cdi_edits *e, long long uid_base, char ***sources,
			 struct berth_err *err)
{
	*sources = calloc(e->n_nodes + 1, sizeof(**sources));
	_cleanup_free_ char *devdir = fs_path("%s/devices", dir);
	if (*sources == NULL || devdir == NULL)
		return berth_err_set(err, ENOMEM, "device nodes");
	struct berth_err ignored;
	fs_remove_tree(devdir, &ignored); /* a restart makes them anew */
	int r = fs_mkdir_p(devdir, 0711, err);
	if (r == 0 && chmod(devdir, 0711) < 0)
		r = berth_err_set(err, errno, "chmod %s", devdir);
	if (r < 0) {
		cdi_names_free(*sources);
		*sources = NULL;
		return -1;
	}
	for (size_t i = 0; i < e->n_nodes; i++) {
		const struct cdi_device_node *n = &e->nodes[i];
		char *path = fs_path("%s/%zu", devdir, i);
		if (path == NULL) {
			cdi_names_free(*sources);
			*sources = NULL;
			return berth_err_set(err, ENOMEM, "device nodes");
		}
		(*sources)[i] = path;
		mode_t type = n->type == 'b' ? S_IFBLK : n->type == 'p' ? S_IFIFO : S_IFCHR;
		mode_t mode = (mode_t)(n->file_mode >= 0 ? n->file_mode : 0666) & 07777;
		dev_t dev = n->type == 'p' ? 0 : makedev((unsigned)n->major, (unsigned)n->minor);
		long long uid = uid_base + (n->uid >= 0 && n->uid < 65536 ? n->uid : 0);
		long long gid = uid_base + (n->gid >= 0 && n->gid < 65536 ? n->gid : 0);
		if (mknod(path, type | mode, dev) < 0 || chown(path, (uid_t)uid, (gid_t)gid) < 0 || chmod(path, mode) < 0) {
			int e2 = errno;
			cdi_names_free(*sources);
			*sources = NULL;
			return berth_err_set(err, e2, "making device node %s for %s", path, n->path);
		}
	}
	return 0;
}

char *cdi_edits_visible_devices(char *const *names, size_t n)
{
	struct berth_buf out = BERTH_BUF_INIT;
	for (size_t i = 0; i < n; i++)
		if (strncmp(names[i], "nvidia.com/", 11) == 0 && strchr(names[i], '='))
			buf_printf(&out, "%s%s", out.len ? "," : "", strchr(names[i], '=') + 1);
	return out.data; /* NULL when none */
}

bool cdi_edits_sets_env(const struct bundle_devices *d, const char *key, size_t key_len)
{
	if (d->visible && key_len == 22 && strncmp(key, "NVIDIA_VISIBLE_DEVICES", 22) == 0)
		return true;
	for (size_t i = 0; d->edits && i < d->edits->n_env; i++) {
		const char *eq = strchr(d->edits->env[i], '=');
		if (eq && (size_t)(eq - d->edits->env[i]) == key_len && strncmp(d->edits->env[i], key, key_len) == 0)
			return true;
	}
	return false;
}

void cdi_edits_gen_env(yajl_gen g, const struct bundle_devices *d)
{
	for (size_t i = 0; d->edits && i < d->edits->n_env; i++) {
		const char *kv = d->edits->env[i];
		const char *eq = strchr(kv, '=');
		bool later = false; /* the last of a key wins, once */
		for (size_t j = i + 1; eq && j < d->edits->n_env && !later; j++)
			later = strncmp(d->edits->env[j], kv, (size_t)(eq - kv) + 1) == 0;
		if (d->visible && eq && strncmp(kv, "NVIDIA_VISIBLE_DEVICES=", 23) == 0)
			later = true;
		if (!later)
			json_gen_str(g, kv);
	}
	if (d->visible) {
		struct berth_buf s = BERTH_BUF_INIT;
		buf_printf(&s, "NVIDIA_VISIBLE_DEVICES=%s", d->visible);
		json_gen_strn(g, s.data, s.len);
		buf_free(&s);
	}
}

size_t cdi_edits_n_gids(const struct bundle_devices *d)
{
	return d->edits ? d->edits->n_additional_gids : 0;
}

void cdi_edits_gen_gids(yajl_gen g, const struct bundle_devices *d)
{
	for (size_t i = 0; d->edits && i < d->edits->n_additional_gids; i++)
		yajl_gen_integer(g, d->edits->additional_gids[i]);
}

static void gen_strs(yajl_gen g, const char *key, char *const *v, size_t n)
{
	json_gen_str(g, key);
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++)
		json_gen_str(g, v[i]);
	yajl_gen_array_close(g);
}

void cdi_edits_gen_mounts(yajl_gen g, const struct bundle_devices *d)
{
	if (d->edits == NULL)
		return;
	/* user namespace: berth's own nodes, bound where the container looks */
	for (size_t i = 0; d->node_sources && i < d->edits->n_nodes; i++) {
		static char *const node_o[] = { "bind", "nosuid", "noexec" };
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "destination", d->edits->nodes[i].path);
		json_gen_kv_str(g, "type", "bind");
		json_gen_kv_str(g, "source", d->node_sources[i]);
		gen_strs(g, "options", node_o, BERTH_ARRAY_SIZE(node_o));
		yajl_gen_map_close(g);
	}
	for (size_t i = 0; i < d->edits->n_mounts; i++) {
		const struct cdi_mount *m = &d->edits->mounts[i];
		bool bind = m->type == NULL || strcmp(m->type, "bind") == 0 || strcmp(m->type, "none") == 0;
		bool has_bind = false;
		for (size_t j = 0; j < m->n_options; j++)
			has_bind = has_bind || strcmp(m->options[j], "bind") == 0 || strcmp(m->options[j], "rbind") == 0;
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "destination", m->container_path);
		json_gen_kv_str(g, "type", m->type ? m->type : "bind");
		json_gen_kv_str(g, "source", m->host_path);
		json_gen_str(g, "options");
		yajl_gen_array_open(g);
		if (bind && !has_bind) /* a bind mount runc can tell from its options */
			json_gen_str(g, "bind");
		for (size_t j = 0; j < m->n_options; j++)
			json_gen_str(g, m->options[j]);
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
}

static char cgroup_type(char t)
{
	return t == 'b' ? 'b' : t == 'c' || t == 'u' ? 'c' : 0;
}

void cdi_edits_gen_device_rules(yajl_gen g, const struct bundle_devices *d)
{
	for (size_t i = 0; d->edits && i < d->edits->n_nodes; i++) {
		const struct cdi_device_node *n = &d->edits->nodes[i];
		char t = cgroup_type(n->type);
		if (t == 0 || (n->permissions && strcmp(n->permissions, "none") == 0))
			continue;
		char type[2] = { t, 0 };
		yajl_gen_map_open(g);
		json_gen_kv_bool(g, "allow", true);
		json_gen_kv_str(g, "type", type);
		json_gen_kv_int(g, "major", n->major);
		json_gen_kv_int(g, "minor", n->minor);
		json_gen_kv_str(g, "access", n->permissions && n->permissions[0] ? n->permissions : "rwm");
		yajl_gen_map_close(g);
	}
}

void cdi_edits_gen_devices(yajl_gen g, const struct bundle_devices *d)
{
	if (d->edits == NULL || d->edits->n_nodes == 0 || d->node_sources != NULL)
		return;
	json_gen_str(g, "devices");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < d->edits->n_nodes; i++) {
		const struct cdi_device_node *n = &d->edits->nodes[i];
		char type[2] = { n->type == 'u' ? 'c' : n->type, 0 };
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "path", n->path);
		json_gen_kv_str(g, "type", type);
		json_gen_kv_int(g, "major", n->major);
		json_gen_kv_int(g, "minor", n->minor);
		if (n->file_mode >= 0)
			json_gen_kv_int(g, "fileMode", n->file_mode);
		json_gen_kv_int(g, "uid", n->uid >= 0 ? n->uid : 0);
		json_gen_kv_int(g, "gid", n->gid >= 0 ? n->gid : 0);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
}

void cdi_edits_gen_hooks(yajl_gen g, const struct bundle_devices *d)
{
	static const char *const names[] = { "prestart", "createRuntime", "createContainer", "startContainer",
					     "poststart", "poststop" };
	if (d->edits == NULL || d->edits->n_hooks == 0)
		return;
	json_gen_str(g, "hooks");
	yajl_gen_map_open(g);
	for (size_t k = 0; k < BERTH_ARRAY_SIZE(names); k++) {
		bool any = false;
		for (size_t i = 0; i < d->edits->n_hooks && !any; i++)
			any = strcmp(d->edits->hooks[i].hook_name, names[k]) == 0;
		if (!any)
			continue;
		json_gen_str(g, names[k]);
		yajl_gen_array_open(g);
		for (size_t i = 0; i < d->edits->n_hooks; i++) {
			const struct cdi_hook *h = &d->edits->hooks[i];
			if (strcmp(h->hook_name, names[k]) != 0)
				continue;
			yajl_gen_map_open(g);
			json_gen_kv_str(g, "path", h->path);
			if (h->n_args)
				gen_strs(g, "args", h->args, h->n_args);
			if (h->n_env)
				gen_strs(g, "env", h->env, h->n_env);
			if (h->timeout > 0)
				json_gen_kv_int(g, "timeout", h->timeout);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
	}
	yajl_gen_map_close(g);
}
