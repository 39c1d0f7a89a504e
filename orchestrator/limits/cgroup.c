/* cgroup.c — see cgroup.h. */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"

struct hierarchy {
	const char *mnt;
	bool v2;
	bool cpu, memory, pids; /* v1: the controllers this mount carries */
};

char *cgroup_container_path(const char *root, const char *endpoint, const char *id)
{
	return fs_path("/%s/%s/%s", root, endpoint, id);
}

char *cgroup_container_path_in(const char *root, const char *endpoint, const char *instance, const char *id)
{
	return fs_path("/%s/%s/%s/%s", root, endpoint, instance, id);
}

static bool has_option(const char *opts, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = opts; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

/* Calls fn for every cgroup (v1) and cgroup2 mount. */
static int for_each_hierarchy(int (*fn)(const struct hierarchy *h, void *data), void *data)
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
		char fstype[32] = "", source[256] = "", super[1024] = "";
		if (sscanf(sep + 3, "%31s %255s %1023s", fstype, source, super) < 1)
			continue;
		bool v2 = strcmp(fstype, "cgroup2") == 0;
		if (strcmp(fstype, "cgroup") != 0 && !v2)
			continue;
		char mnt[4096];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		struct hierarchy h = { .mnt = mnt, .v2 = v2 };
		if (!v2) {
			h.cpu = has_option(super, "cpu");
			h.memory = has_option(super, "memory");
			h.pids = has_option(super, "pids");
		}
		if (fn(&h, data) < 0)
			r = -1;
	}
	free(line);
	return r;
}

/* Writes value into dir/file. ENOENT is reported to the caller. */
static int write_file(const char *dir, const char *file, const char *value, struct berth_err *err)
{
	_cleanup_free_ char *path = fs_path("%s/%s", dir, file);
	if (path == NULL)
		return berth_err_set(err, ENOMEM, "cgroup");
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return berth_err_set(err, errno, "open %s", path);
	size_t len = strlen(value);
	if (write(fd, value, len) != (ssize_t)len)
		return berth_err_set(err, errno, "writing \"%s\" to %s", value, path);
	return 0;
}

static bool file_exists(const char *dir, const char *file)
{
	_cleanup_free_ char *path = fs_path("%s/%s", dir, file);
	return path != NULL && access(path, F_OK) == 0;
}

/* v2: true when dir's cgroup.controllers lists name. */
static bool v2_offers(const char *dir, const char *name)
{
	_cleanup_free_ char *path = fs_path("%s/cgroup.controllers", dir);
	struct berth_buf text = BERTH_BUF_INIT;
	bool found = false;
	if (path != NULL && fs_read_file(path, &text, 4096, NULL) == 0 && text.data != NULL) {
		char *save = NULL;
		for (char *w = strtok_r(text.data, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
			if (strcmp(w, name) == 0)
				found = true;
	}
	buf_free(&text);
	return found;
}

struct setup_job {
	const char *root, *endpoint, *instance;
	const struct cgroup_limits *lim;
	struct berth_err *err;
};

static int mkdir_one(const char *path, struct berth_err *err)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return berth_err_set(err, errno, "mkdir %s", path);
	return 0;
}

static int setup_v2(const struct hierarchy *h, const struct setup_job *job)
{
	static const char *const controllers[] = { "cpu", "memory", "pids" };
	_cleanup_free_ char *l1 = fs_path("%s/%s", h->mnt, job->root);
	_cleanup_free_ char *l2 = fs_path("%s/%s/%s", h->mnt, job->root, job->endpoint);
	_cleanup_free_ char *l3 = fs_path("%s/%s/%s/%s", h->mnt, job->root, job->endpoint, job->instance);
	if (!l1 || !l2 || !l3)
		return berth_err_set(job->err, ENOMEM, "cgroup");
	const char *levels[] = { h->mnt, l1, l2, l3 };
	bool offered[3];
	for (size_t c = 0; c < 3; c++)
		offered[c] = v2_offers(h->mnt, controllers[c]);
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(levels); i++) {
		if (i > 0 && mkdir_one(levels[i], job->err) < 0)
			return -1;
		/* the instance enables them too, for its containers' accounting */
		for (size_t c = 0; c < 3; c++) {
			char word[16];
			snprintf(word, sizeof(word), "+%s", controllers[c]);
			if (offered[c] && write_file(levels[i], "cgroup.subtree_control", word, NULL) < 0)
				offered[c] = false; /* e.g. a threaded or busy level: do without */
		}
	}
	char value[64];
	if (offered[0] && job->lim->cpu_quota_us > 0) {
		snprintf(value, sizeof(value), "%lld %d", job->lim->cpu_quota_us, CGROUP_CPU_PERIOD_US);
		if (write_file(l3, "cpu.max", value, job->err) < 0)
			return -1;
	}
	if (offered[1] && job->lim->memory_bytes > 0) {
		snprintf(value, sizeof(value), "%lld", job->lim->memory_bytes);
		if (write_file(l3, "memory.max", value, job->err) < 0)
			return -1;
		if (file_exists(l3, "memory.swap.max") && write_file(l3, "memory.swap.max", "0", job->err) < 0)
			return -1;
	}
	if (offered[2] && job->lim->pids > 0) {
		snprintf(value, sizeof(value), "%lld", job->lim->pids);
		if (write_file(l3, "pids.max", value, job->err) < 0)
			return -1;
	}
	return 0;
}

static int setup_v1(const struct hierarchy *h, const struct setup_job *job)
{
	const struct cgroup_limits *lim = job->lim;
	bool cpu = h->cpu && lim->cpu_quota_us > 0, memory = h->memory && lim->memory_bytes > 0,
	     pids = h->pids && lim->pids > 0;
	if (!cpu && !memory && !pids)
		return 0; /* runc makes the directories of the other hierarchies */
	_cleanup_free_ char *dir = fs_path("%s/%s/%s/%s", h->mnt, job->root, job->endpoint, job->instance);
	if (dir == NULL)
		return berth_err_set(job->err, ENOMEM, "cgroup");
	if (fs_mkdir_p(dir, 0755, job->err) < 0)
		return -1;
	char value[64];
	if (cpu) {
		snprintf(value, sizeof(value), "%d", CGROUP_CPU_PERIOD_US);
		if (write_file(dir, "cpu.cfs_period_us", value, job->err) < 0)
			return -1;
		snprintf(value, sizeof(value), "%lld", lim->cpu_quota_us);
		if (write_file(dir, "cpu.cfs_quota_us", value, job->err) < 0)
			return -1;
	}
	if (memory) {
		snprintf(value, sizeof(value), "%lld", lim->memory_bytes);
		/* memsw must stay ≥ the limit: raise it first when it is lower */
		bool memsw = file_exists(dir, "memory.memsw.limit_in_bytes");
		if (memsw)
			write_file(dir, "memory.memsw.limit_in_bytes", "-1", NULL);
		if (write_file(dir, "memory.limit_in_bytes", value, job->err) < 0)
			return -1;
		if (memsw && write_file(dir, "memory.memsw.limit_in_bytes", value, job->err) < 0)
			return -1;
	}
	if (pids) {
		snprintf(value, sizeof(value), "%lld", lim->pids);
		if (write_file(dir, "pids.max", value, job->err) < 0)
			return -1;
	}
	return 0;
}

static int setup_in(const struct hierarchy *h, void *data)
{
	const struct setup_job *job = data;
	return h->v2 ? setup_v2(h, job) : setup_v1(h, job);
}

int cgroup_instance_setup(const char *root, const char *endpoint, const char *instance,
			  const struct cgroup_limits *lim, struct berth_err *err)
{
	struct berth_err local;
	struct setup_job job = { root, endpoint, instance, lim, err ? err : &local };
	job.err->msg[0] = '\0';
	if (for_each_hierarchy(setup_in, &job) < 0) {
		if (job.err->msg[0] == '\0')
			berth_err_set(job.err, errno, "reading /proc/self/mountinfo");
		return berth_err_prefix(job.err, "setting the limits of instance %s of endpoint %s", instance, endpoint);
	}
	return 0;
}

static void rmdir_quiet(const char *path)
{
	if (rmdir(path) < 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EBUSY)
		log_warn("cannot remove cgroup %s: %s", path, strerror(errno));
}

/* rmdir of path's subdirectories (depth first), then of path. A cgroup
 * directory holds only control files, which rmdir takes with it. */
static void rmdir_tree(const char *path, int depth)
{
	DIR *d = depth < 8 ? opendir(path) : NULL;
	if (d != NULL) {
		for (struct dirent *de; (de = readdir(d)) != NULL;) {
			if (de->d_type != DT_DIR || strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			_cleanup_free_ char *sub = fs_path("%s/%s", path, de->d_name);
			if (sub != NULL)
				rmdir_tree(sub, depth + 1);
		}
		closedir(d);
	}
	rmdir_quiet(path);
}

struct remove_job {
	const char *root, *endpoint;
};

static int remove_in(const struct hierarchy *h, void *data)
{
	const struct remove_job *job = data;
	_cleanup_free_ char *parent = fs_path("%s/%s/%s", h->mnt, job->root, job->endpoint);
	_cleanup_free_ char *root = fs_path("%s/%s", h->mnt, job->root);
	if (parent == NULL || root == NULL)
		return -1;
	rmdir_tree(parent, 0);
	if (rmdir(root) < 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EBUSY)
		log_warn("cannot remove cgroup %s: %s", root, strerror(errno));
	return 0;
}

/* A single path component: an identity or an endpoint name. */
static bool component_ok(const char *name)
{
	return name != NULL && name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, "..") != 0 &&
	       strcmp(name, ".") != 0;
}

int cgroup_remove_endpoint(const char *root, const char *endpoint, const char *const *ids, size_t n_ids,
			   struct berth_err *err)
{
	(void)ids;
	(void)n_ids;
	if (!component_ok(root))
		return berth_err_set(err, EINVAL, "bad cgroup root name");
	if (endpoint == NULL || endpoint[0] == '\0' || strchr(endpoint, '/') != NULL || strcmp(endpoint, "..") == 0 ||
	    strcmp(endpoint, ".") == 0)
		return berth_err_set(err, EINVAL, "bad endpoint name for a cgroup");
	struct remove_job job = { root, endpoint };
	if (for_each_hierarchy(remove_in, &job) < 0)
		return berth_err_set(err, errno, "removing the cgroups of endpoint %s", endpoint);
	return 0;
}

struct list_job {
	const char *root;
	char **names;
	size_t n;
	char **young;  /* seen too recently made somewhere: left out */
	size_t n_young;
	int min_age_s;
	int r;
};

static int add_name(char ***list, size_t *n, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*list)[i], name) == 0)
			return 0;
	char **grown = realloc(*list, (*n + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	*list = grown;
	if ((grown[*n] = strdup(name)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

static int list_in(const struct hierarchy *h, void *data)
{
	struct list_job *job = data;
	_cleanup_free_ char *root = fs_path("%s/%s", h->mnt, job->root);
	DIR *d = root ? opendir(root) : NULL;
	if (d == NULL)
		return 0;
	time_t now = time(NULL);
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		struct stat st;
		bool young = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			     now - st.st_mtime < job->min_age_s;
		if (add_name(young ? &job->young : &job->names, young ? &job->n_young : &job->n, de->d_name) < 0) {
			job->r = -1;
			break;
		}
	}
	closedir(d);
	return 0;
}

int cgroup_list_endpoints(const char *root, int min_age_s, char ***names, size_t *n, struct berth_err *err)
{
	if (!component_ok(root))
		return berth_err_set(err, EINVAL, "bad cgroup root name");
	struct list_job job = { .root = root, .min_age_s = min_age_s };
	for_each_hierarchy(list_in, &job);
	for (size_t i = 0; i < job.n_young; i++) {
		for (size_t j = 0; j < job.n; j++)
			if (strcmp(job.names[j], job.young[i]) == 0) {
				free(job.names[j]);
				job.names[j] = job.names[--job.n];
				break;
			}
		free(job.young[i]);
	}
	free(job.young);
	if (job.r < 0) {
		for (size_t i = 0; i < job.n; i++)
			free(job.names[i]);
		free(job.names);
		return berth_err_set(err, ENOMEM, "listing cgroups");
	}
	*names = job.names;
	*n = job.n;
	return 0;
}
