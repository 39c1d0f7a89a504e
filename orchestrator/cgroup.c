/* cgroup.c — see cgroup.h. */
#include "cgroup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"

char *cgroup_container_path(const char *endpoint, const char *id)
{
	return fs_path("/" CGROUP_ROOT_NAME "/%s/%s", endpoint, id);
}

/* Calls fn for the mount point of every cgroup (v1) and cgroup2 mount. */
static int for_each_hierarchy(int (*fn)(const char *mnt, void *data), void *data)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	int r = 0;
	while (getline(&line, &cap, f) > 0) {
		/* id parent major:minor root mountpoint options ... - fstype source superopts */
		char *sep = strstr(line, " - ");
		if (sep == NULL)
			continue;
		char fstype[32] = "";
		if (sscanf(sep + 3, "%31s", fstype) != 1)
			continue;
		if (strcmp(fstype, "cgroup") != 0 && strcmp(fstype, "cgroup2") != 0)
			continue;
		char mnt[4096];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		if (fn(mnt, data) < 0)
			r = -1;
	}
	free(line);
	return r;
}

struct remove_job {
	const char *endpoint;
	const char *const *ids;
	size_t n_ids;
};

static void rmdir_quiet(const char *path)
{
	if (rmdir(path) < 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EBUSY)
		log_warn("cannot remove cgroup %s: %s", path, strerror(errno));
}

static int remove_in(const char *mnt, void *data)
{
	const struct remove_job *job = data;
	for (size_t i = 0; i < job->n_ids; i++) {
		_cleanup_free_ char *leaf = fs_path("%s/" CGROUP_ROOT_NAME "/%s/%s", mnt, job->endpoint, job->ids[i]);
		if (leaf != NULL)
			rmdir_quiet(leaf);
	}
	_cleanup_free_ char *parent = fs_path("%s/" CGROUP_ROOT_NAME "/%s", mnt, job->endpoint);
	_cleanup_free_ char *root = fs_path("%s/" CGROUP_ROOT_NAME, mnt);
	if (parent == NULL || root == NULL)
		return -1;
	rmdir_quiet(parent);
	if (rmdir(root) < 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EBUSY)
		log_warn("cannot remove cgroup %s: %s", root, strerror(errno));
	return 0;
}

int cgroup_remove_endpoint(const char *endpoint, const char *const *ids, size_t n_ids, struct berth_err *err)
{
	struct remove_job job = { endpoint, ids, n_ids };
	if (for_each_hierarchy(remove_in, &job) < 0)
		return berth_err_set(err, errno, "removing the cgroups of endpoint %s", endpoint);
	return 0;
}
