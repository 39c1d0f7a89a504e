/* reconcile.c — see reconcile.h. */
#include "reconcile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "container.h"
#include "fsutil.h"
#include "log.h"
#include "router_supervisor.h"
#include "shim_client.h"

#define RECORD_MAX_BYTES (16u << 20)
/* each berthd has its own cgroup root (identity.h), but one of an older
 * version shares /berth whatever its state directory: leave what may be
 * its own, starting */
#define RECONCILE_CGROUP_MIN_AGE_S 30

/* Every endpoint record's text, one after another (NUL-separated). */
static void read_records(const char *state_dir, struct berth_buf *out)
{
	_cleanup_free_ char *dir = fs_path("%s/endpoints", state_dir);
	DIR *d = dir ? opendir(dir) : NULL;
	if (d == NULL)
		return;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		_cleanup_free_ char *path = fs_path("%s/%s", dir, de->d_name);
		if (path != NULL && fs_read_file(path, out, RECORD_MAX_BYTES, NULL) == 0)
			buf_append(out, "", 1);
	}
	closedir(d);
}

static bool referenced(const struct berth_buf *records, const char *id)
{
	size_t n = strlen(id);
	for (const char *p = records->data, *end = records->data + records->len; p && p < end;) {
		const char *hit = memmem(p, (size_t)(end - p), id, n);
		if (hit == NULL)
			return false;
		/* a whole token: the id is quoted or part of a path */
		char before = hit > records->data ? hit[-1] : '"', after = hit + n < end ? hit[n] : '"';
		if ((before == '"' || before == '/') && (after == '"' || after == '.' || after == '/'))
			return true;
		p = hit + 1;
	}
	return false;
}

static bool id_ok(const char *name)
{
	size_t n = strlen(name);
	return n > 0 && n <= 64 && strspn(name, "0123456789abcdefABCDEF-_") == n;
}

static size_t reconcile_runc(const struct runtime_config *cfg, const struct berth_buf *records)
{
	_cleanup_free_ char *root = fs_path("%s/runc", cfg->run_dir);
	DIR *d = root ? opendir(root) : NULL;
	size_t n = 0;
	if (d == NULL)
		return 0;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		if (de->d_name[0] == '.' || !id_ok(de->d_name) || referenced(records, de->d_name))
			continue;
		/* its shim, if it still runs, stops it properly (and exits) */
		_cleanup_free_ char *sock = fs_path("%s/shims/%s.sock", cfg->run_dir, de->d_name);
		struct berth_err err;
		if (sock != NULL && shim_stop(sock, cfg->stop_timeout_ms, &err) == 0)
			log_info("leftover container %s: stopped through its shim", de->d_name);
		log_info("leftover runc container %s belongs to no endpoint; deleting it", de->d_name);
		container_runc_delete(cfg, de->d_name);
		n++;
	}
	closedir(d);
	return n;
}

static size_t reconcile_shims(const struct runtime_config *cfg, const struct berth_buf *records)
{
	_cleanup_free_ char *dir = fs_path("%s/shims", cfg->run_dir);
	DIR *d = dir ? opendir(dir) : NULL;
	size_t n = 0;
	if (d == NULL)
		return 0;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		size_t len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".sock") != 0)
			continue;
		char id[80];
		if (len - 5 >= sizeof(id))
			continue;
		memcpy(id, de->d_name, len - 5);
		id[len - 5] = '\0';
		if (!id_ok(id))
			continue;
		_cleanup_free_ char *sock = fs_path("%s/%s", dir, de->d_name);
		if (referenced(records, id)) {
			/* adopted shims made before the router ran unprivileged */
			if (cfg->router_gid > 0 && sock != NULL)
				fs_share_with_group(sock, 0660, cfg->router_gid);
			continue;
		}
		struct berth_err err;
		if (sock != NULL && shim_stop(sock, cfg->stop_timeout_ms, &err) == 0)
			log_info("leftover shim %s: its container stopped", id);
		log_info("leftover shim socket %s belongs to no endpoint; removing it", de->d_name);
		if (sock != NULL)
			unlink(sock);
		n++;
	}
	closedir(d);
	return n;
}

static size_t reconcile_cgroups(const struct runtime_config *cfg, const struct store *store)
{
	char **names = NULL;
	size_t n_names = 0, n = 0;
	struct berth_err err;
	if (cgroup_list_endpoints(cfg->cgroup_root, RECONCILE_CGROUP_MIN_AGE_S, &names, &n_names, &err) < 0) {
		log_warn("%s", err.msg);
		return 0;
	}
	for (size_t i = 0; i < n_names; i++) {
		if (store_get_endpoint(store, names[i]) == NULL) {
			log_info("leftover cgroup /%s/%s belongs to no endpoint; removing it", cfg->cgroup_root, names[i]);
			if (cgroup_remove_endpoint(cfg->cgroup_root, names[i], NULL, 0, &err) < 0)
				log_warn("%s", err.msg);
			n++;
		}
		free(names[i]);
	}
	free(names);
	return n;
}

void reconcile_leftovers(const struct runtime_config *cfg, const struct store *store, struct reconcile_stats *out)
{
	struct berth_buf records = BERTH_BUF_INIT;
	read_records(cfg->state_dir, &records);
	struct reconcile_stats st = { 0 };
	st.runc_containers = reconcile_runc(cfg, &records);
	st.shim_sockets = reconcile_shims(cfg, &records);
	st.cgroups = reconcile_cgroups(cfg, store);
	buf_free(&records);
	if (st.runc_containers || st.shim_sockets || st.cgroups)
		log_info("start-up clean-up: removed %zu runc container%s, %zu shim socket%s, %zu endpoint cgroup%s "
			 "no state refers to",
			 st.runc_containers, st.runc_containers == 1 ? "" : "s", st.shim_sockets,
			 st.shim_sockets == 1 ? "" : "s", st.cgroups, st.cgroups == 1 ? "" : "s");
	if (out != NULL)
		*out = st;
}
