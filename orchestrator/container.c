/* container.c — see container.h. */
#include "container.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "artifact.h"
#include "bundle.h"
#include "cgroup.h"
#include "fsutil.h"
#include "image.h"
#include "log.h"
#include "runtime.h"
#include "shim_client.h"

static char *container_dir(const struct runtime_config *cfg, const char *id)
{
	return fs_path("%s/containers/%s", cfg->state_dir, id);
}

int container_alloc(const struct runtime_config *cfg, const char *hostname, struct endpoint_container *c,
		    struct berth_err *err)
{
	unsigned char rnd[8];
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return berth_err_set(err, errno, "getrandom");
	char id[17];
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(id + 2 * i, 3, "%02x", rnd[i]);
	memset(c, 0, sizeof(*c));
	c->id = strdup(id);
	c->hostname = strdup(hostname);
	c->socket = fs_path("%s/shims/%s.sock", cfg->run_dir, id);
	c->log = fs_path("%s/containers/%s/log", cfg->state_dir, id);
	if (!c->id || !c->hostname || !c->socket || !c->log)
		return berth_err_set(err, ENOMEM, "container");
	return 0;
}

int container_start(const struct runtime_config *cfg, const char *endpoint, const struct endpoint_container *c,
		    const struct container_def *def, struct berth_err *err)
{
	_cleanup_free_ char *rootfs = NULL;
	_cleanup_free_ char *model_dir = NULL;
	if (image_resolve(cfg->state_dir, def->image, &rootfs, err) < 0)
		return -1;
	if (def->model_data_url != NULL &&
	    artifact_resolve(cfg->state_dir, cfg->object_store_root, def->model_data_url, &model_dir, err) < 0)
		return -1;
	_cleanup_free_ char *dir = container_dir(cfg, c->id);
	_cleanup_free_ char *bundle = fs_path("%s/bundle", dir);
	_cleanup_free_ char *exit_file = fs_path("%s/exit", dir);
	_cleanup_free_ char *cgroups_path = cgroup_container_path(endpoint, c->id);
	_cleanup_free_ char *serve = bundle_find_serve(rootfs);
	_cleanup_free_ char *shims = fs_path("%s/shims", cfg->run_dir);
	_cleanup_free_ char *runc_root = fs_path("%s/runc", cfg->run_dir);
	if (!dir || !bundle || !exit_file || !cgroups_path || !serve || !shims || !runc_root)
		return berth_err_set(err, ENOMEM, "container");
	if (fs_mkdir_p(shims, 0700, err) < 0 || fs_mkdir_p(runc_root, 0700, err) < 0)
		return -1;
	const char *args[] = { serve, "serve" };
	/* Docker gives containers 1048576 open files; never more than this host
	 * lets berthd raise to, or runc fails with EPERM */
	struct rlimit nofile = { 0, 0 };
	getrlimit(RLIMIT_NOFILE, &nofile);
	long long nofile_limit = nofile.rlim_max == RLIM_INFINITY || nofile.rlim_max > 1048576 ? 1048576
											: (long long)nofile.rlim_max;
	struct bundle_spec spec = {
		.id = c->id,
		.hostname = c->hostname,
		.rootfs = rootfs,
		.model_dir = model_dir,
		.cgroups_path = cgroups_path,
		.args = args,
		.n_args = 2,
		.env = def->env,
		.n_env = def->n_env,
		.memory_limit_bytes = cfg->container_memory_bytes,
		.pids_limit = cfg->container_pids_limit,
		.nofile_limit = nofile_limit,
	};
	if (bundle_write(bundle, &spec, err) < 0)
		return -1;
	struct shim_launch launch = {
		.shim_path = cfg->shim_path,
		.runc_path = cfg->runc_path,
		.runc_root = runc_root,
		.id = c->id,
		.bundle = bundle,
		.socket = c->socket,
		.log = c->log,
		.exit_file = exit_file,
	};
	if (shim_spawn(&launch, 60000, err) < 0)
		return -1;
	log_info("endpoint %s: container %s (%s) started from %s", endpoint, c->hostname, c->id, def->image);
	return 0;
}

static void runc_force_delete(const struct runtime_config *cfg, const char *id)
{
	_cleanup_free_ char *runc_root = fs_path("%s/runc", cfg->run_dir);
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
		}
		execlp(cfg->runc_path, "runc", "--root", runc_root, "delete", "--force", id, (char *)NULL);
		_exit(127);
	}
	if (pid > 0) {
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
}

void container_stop_and_remove(const struct runtime_config *cfg, const struct endpoint_container *c)
{
	struct berth_err err;
	if (shim_stop(c->socket, cfg->stop_timeout_ms, &err) < 0) {
		/* no shim to ask: make sure runc has nothing left of it */
		log_info("container %s: shim not reachable (%s); removing with runc", c->id, err.msg);
		runc_force_delete(cfg, c->id);
		unlink(c->socket);
	}
	_cleanup_free_ char *dir = container_dir(cfg, c->id);
	if (dir != NULL && fs_remove_tree(dir, &err) < 0)
		log_warn("container %s: %s", c->id, err.msg);
}

void container_log_tail(const struct endpoint_container *c, int max_lines, struct berth_buf *out)
{
	_cleanup_close_ int fd = open(c->log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char tail[4096];
	off_t size = lseek(fd, 0, SEEK_END);
	off_t from = size > (off_t)sizeof(tail) - 1 ? size - (off_t)sizeof(tail) + 1 : 0;
	ssize_t n = pread(fd, tail, sizeof(tail) - 1, from);
	if (n <= 0)
		return;
	tail[n] = '\0';
	/* the shim's own records share the file; FailureReason quotes the container */
	char *w = tail;
	for (char *line = tail; line < tail + n;) {
		char *nl = memchr(line, '\n', (size_t)(tail + n - line));
		size_t len = nl ? (size_t)(nl - line) + 1 : (size_t)(tail + n - line);
		if (memmem(line, len, " berth-shim[", 12) == NULL) {
			memmove(w, line, len);
			w += len;
		}
		line += len;
	}
	n = w - tail;
	tail[n] = '\0';
	/* walk back max_lines lines from the end, ignoring trailing newlines */
	char *end = tail + n;
	while (end > tail && (end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	char *start = end;
	for (int lines = 0; start > tail && lines < max_lines;) {
		start--;
		if (*start == '\n' && ++lines == max_lines) {
			start++;
			break;
		}
	}
	if (from > 0 && start == tail) {
		char *nl = strchr(tail, '\n'); /* drop the cut first line */
		start = nl ? nl + 1 : tail;
	}
	bool first = true;
	for (char *line = strtok(start, "\n"); line; line = strtok(NULL, "\n")) {
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		if (len == 0)
			continue;
		buf_printf(out, "%s%s", first ? "" : " | ", line);
		first = false;
	}
}

void container_describe_exit(const struct runtime_config *cfg, const struct endpoint_container *c,
			     struct berth_buf *out)
{
	struct shim_state st;
	struct berth_err err;
	_cleanup_free_ char *exit_file = fs_path("%s/containers/%s/exit", cfg->state_dir, c->id);
	if (shim_get_state(c->socket, &st, &err) < 0 &&
	    (exit_file == NULL || shim_read_exit_file(exit_file, &st, &err) < 0)) {
		buf_printf(out, "container %s is not running", c->hostname);
		return;
	}
	if (st.running)
		buf_printf(out, "container %s is running", c->hostname);
	else if (st.oom_killed)
		buf_printf(out, "container %s was killed by the OOM killer (out of memory)", c->hostname);
	else if (st.signal > 0)
		buf_printf(out, "container %s was killed by signal %d (%s)", c->hostname, st.signal,
			   strsignal(st.signal));
	else
		buf_printf(out, "container %s exited with code %d", c->hostname, st.exit_code);
}
