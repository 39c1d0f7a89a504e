/* container.c — see container.h. */
#include "container.h"

#include <dirent.h>
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
#include "cdi_registry.h"
#include "cgroup.h"
#include "fsutil.h"
#include "paths.h"
#include "image.h"
#include "host_limits.h"
#include "idmap.h"
#include "image_user.h"
#include "log.h"
#include "model_mount.h"
#include "rootfs.h"
#include "serve_process.h"
#include "runtime_config.h"
#include "shim_client.h"
#include "uid_range.h"

#define LABEL_BIND_TO_PORT "com.amazonaws.sagemaker.capabilities.accept-bind-to-port"

static char *container_dir(const struct runtime_config *cfg, const char *id)
{
	return state_path_container(cfg->state_dir, id);
}

int container_userns_prepare(const char *state_dir, struct berth_err *err)
{
	_cleanup_free_ char *containers = fs_path("%s/containers", state_dir);
	_cleanup_free_ char *path = strdup(state_dir);
	if (containers == NULL || path == NULL)
		return berth_err_set(err, ENOMEM, "state directory");
	if (fs_mkdir_p(containers, 0711, err) < 0)
		return -1;
	if (chmod(state_dir, 0711) < 0 || chmod(containers, 0711) < 0)
		return berth_err_set(err, errno, "cannot make %s passable for containers' roots (chmod 0711)",
				     containers);
	/* state_dir is absolute: check each ancestor, "/" last */
	for (char *slash = strrchr(path, '/'); slash != NULL; slash = strrchr(path, '/')) {
		*slash = '\0';
		const char *dir = path[0] ? path : "/";
		struct stat st;
		if (stat(dir, &st) < 0)
			return berth_err_set(err, errno, "stat %s", dir);
		if (!(st.st_mode & S_IXOTH))
			return berth_err_set(err, 0,
					     "containers run as unprivileged uids (user namespaces) and must pass "
					     "through %s to reach their root under %s, but it is not searchable by "
					     "others: chmod o+x %s, move the state directory, or set "
					     "\"no_user_namespaces\": true",
					     dir, containers, dir);
		if (path[0] == '\0')
			break;
	}
	return 0;
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

#define SUBMIT_DIRECTORY "SAGEMAKER_SUBMIT_DIRECTORY"

/* SAGEMAKER_SUBMIT_DIRECTORY when it names an object to fetch (s3://);
 * a local path (/opt/ml/model/code, what the SDK sets when it repacks the
 * code into model.tar.gz) is the container's own business. */
static const char *submit_directory_url(const struct container_def *def)
{
	for (size_t i = 0; i < def->n_env; i++)
		if (strcmp(def->env[i].key, SUBMIT_DIRECTORY) == 0)
			return strncmp(def->env[i].value, "s3://", 5) == 0 ? def->env[i].value : NULL;
	return NULL;
}

/* def's Environment with SAGEMAKER_SUBMIT_DIRECTORY naming the local
 * mount: the toolkits copy a local directory into /opt/ml/code as they
 * would unpack the archive. Shallow (the strings are def's); caller frees
 * the array. */
static struct kv *env_with_submit_dir(const struct container_def *def)
{
	struct kv *env = calloc(def->n_env ? def->n_env : 1, sizeof(*env));
	for (size_t i = 0; env && i < def->n_env; i++) {
		env[i] = def->env[i];
		if (strcmp(env[i].key, SUBMIT_DIRECTORY) == 0)
			env[i].value = (char *)BUNDLE_SUBMIT_DIR;
	}
	return env;
}

/* (devices) The edits of the container's devices (cdi_registry.h); with a
 * user namespace, the nodes berthd makes for its root (cdi_edits.h). */
static int container_devices(const struct runtime_config *cfg, const char *dir, const struct endpoint_container *c,
			     bool userns, struct cdi_edits *edits, char ***node_sources, char **visible,
			     struct berth_err *err)
{
	if (cfg->limits == NULL || cfg->limits->cdi == NULL)
		return berth_err_set(err, 0, "the instance holds CDI devices but this berthd reads no CDI specs");
	if (cdi_registry_edits(cfg->limits->cdi, c->devices, c->n_devices, edits, err) < 0)
		return -1;
	if (userns && cdi_edits_make_nodes(dir, edits, c->uid_base, node_sources, err) < 0)
		return -1;
	*visible = cdi_edits_visible_devices(c->devices, c->n_devices);
	return 0;
}

int container_start(const struct runtime_config *cfg, const char *endpoint, const struct endpoint_container *c,
		    const struct container_def *def, size_t n_model_containers, struct berth_err *err)
{
	__attribute__((cleanup(image_info_free))) struct image_info img = { 0 };
	_cleanup_free_ char *model_dir = NULL;
	_cleanup_free_ char *root = NULL;
	_cleanup_close_ int model_fd = -1;
	if (image_resolve(cfg->state_dir, cfg->images, def->image, &img, err) < 0)
		return -1;
	if (n_model_containers > 1 && img.oci) {
		const char *v = oci_config_label(&img.config, LABEL_BIND_TO_PORT);
		if (v == NULL || strcmp(v, "true") != 0)
			log_warn("endpoint %s: container %s: image %s lacks the label %s=true that multi-container "
				 "images are meant to carry; running it anyway",
				 endpoint, c->hostname, def->image, LABEL_BIND_TO_PORT);
	}
	struct image_user user;
	if (image_user_resolve(img.rootfs, img.config.user, &user, err) < 0)
		return berth_err_prefix(err, "Image \"%s\"", def->image);
	/* (userns) the instance's range; the image's ids must fall inside it */
	_cleanup_close_ int userns = -1;
	if (c->uid_base > 0) {
		bool fits = user.uid < USERNS_RANGE_SIZE && user.gid < USERNS_RANGE_SIZE;
		for (size_t i = 0; i < user.n_additional_gids; i++)
			fits = fits && user.additional_gids[i] < USERNS_RANGE_SIZE;
		if (!fits)
			return berth_err_set(err, 0,
					     "Image \"%s\" runs as uid %u gid %u (or a supplementary group) beyond the "
					     "%lld ids a container's user namespace maps; use ids below %lld",
					     def->image, user.uid, user.gid, USERNS_RANGE_SIZE, USERNS_RANGE_SIZE);
		if (idmap_userns_open(c->uid_base, USERNS_RANGE_SIZE, &userns, err) < 0)
			return -1;
	} else if (cfg->userns != NULL) {
		log_warn("endpoint %s: container %s was recorded before user namespaces; it runs without one until "
			 "the endpoint is re-created",
			 endpoint, c->id);
	}
	/* (mme) MultiModel: ModelDataUrl is a prefix, loaded model by model
	 * later (mme.c) into STATE/mme/ENDPOINT, mounted at /opt/ml/models */
	bool multi_model = def->mode != NULL && strcmp(def->mode, "MultiModel") == 0;
	_cleanup_free_ char *mme_dir = multi_model ? state_path_mme_endpoint(cfg->state_dir, endpoint) : NULL;
	if (multi_model && (mme_dir == NULL || fs_mkdir_p(mme_dir, 0755, err) < 0))
		return mme_dir ? -1 : berth_err_set(err, ENOMEM, "container");
	/* the variant's ModelDataDownloadTimeoutInSeconds bounds this container's
	 * fetches; it replaces the operator's per-transfer bound */
	struct objstore_config store = { 0 };
	if (cfg->store != NULL)
		store = *cfg->store;
	if (c->download_timeout_ms > 0)
		store.timeout_ms = store.artifact_timeout_ms = (int)c->download_timeout_ms;
	struct artifact_config artifacts = { .state_dir = cfg->state_dir, .store = cfg->store ? &store : NULL,
					     .max_bytes = cfg->model_max_bytes };
	/* the cache lock, shared, from resolving to recording that this
	 * container holds what it resolved: no prune removes it meanwhile */
	const char *submit_url = submit_directory_url(def);
	bool fetches = (def->model_data_url != NULL && !multi_model) || submit_url != NULL;
	_cleanup_close_ int cache_lock = fetches ? artifact_cache_lock(cfg->state_dir, false, err) : -1;
	if (fetches && cache_lock < 0)
		return -1;
	char keys[2][ARTIFACT_KEY_LEN + 1] = { "", "" };
	if (def->model_data_url != NULL && !multi_model &&
	    artifact_resolve(&artifacts, def->model_data_url, "model data", &model_fd, keys[0], err) < 0)
		return -1;
	/* (s3) the SDK's sourcedir.tar.gz: the container has no network to fetch it */
	_cleanup_close_ int submit_fd = -1;
	if (submit_url != NULL &&
	    artifact_resolve(&artifacts, submit_url, "the source directory", &submit_fd, keys[1], err) < 0)
		return berth_err_prefix(err, "Environment SAGEMAKER_SUBMIT_DIRECTORY");
	if (artifact_cache_hold(cfg->state_dir, c->id, (const char *const[]){ keys[0], keys[1] }, 2, err) < 0)
		return -1;
	if (cache_lock >= 0) { /* held now: a prune may run while the rest starts */
		close(cache_lock);
		cache_lock = -1;
	}
	_cleanup_free_ struct kv *env = submit_fd >= 0 ? env_with_submit_dir(def) : NULL;
	if (submit_fd >= 0 && env == NULL)
		return berth_err_set(err, ENOMEM, "container");
	_cleanup_free_ char *dir = container_dir(cfg, c->id);
	_cleanup_free_ char *bundle = fs_path("%s/bundle", dir);
	_cleanup_free_ char *exit_file = fs_path("%s/exit", dir);
	/* the container joins its instance's cgroup, whose limits berthd sets */
	struct container_placement place;
	limits_place(cfg->limits, endpoint, c, &place);
	if (cfg->limits != NULL && cgroup_instance_setup(cfg->cgroup_root, endpoint, place.instance, &place.lim, err) < 0)
		return -1;
	_cleanup_free_ char *cgroups_path = cfg->limits ? cgroup_container_path_in(cfg->cgroup_root, endpoint, place.instance, c->id)
							: cgroup_container_path(cfg->cgroup_root, endpoint, c->id);
	_cleanup_free_ char *shims = fs_path("%s/shims", cfg->run_dir);
	_cleanup_free_ char *runc_root = fs_path("%s/runc", cfg->run_dir);
	if (!dir || !bundle || !exit_file || !cgroups_path || !shims || !runc_root)
		return berth_err_set(err, ENOMEM, "container");
	/* `docker run IMAGE serve`, by Docker's rules (serve_process.h) */
	__attribute__((cleanup(serve_process_free))) struct serve_process proc = { 0 };
	const char *path = serve_process_path(img.config.env, img.config.n_env, def->env, def->n_env);
	if (serve_process_resolve(img.rootfs, img.config.entrypoint, img.config.n_entrypoint, img.oci, path, &proc,
				  err) < 0)
		return berth_err_prefix(err, "Image \"%s\"", def->image);
	if (fs_mkdir_p(shims, 0700, err) < 0 || fs_mkdir_p(runc_root, 0700, err) < 0)
		return -1;
	/* Docker gives containers 1048576 open files; never more than this host
	 * lets berthd raise to, or runc fails with EPERM */
	struct rlimit nofile = { 0, 0 };
	getrlimit(RLIMIT_NOFILE, &nofile);
	long long nofile_limit = nofile.rlim_max == RLIM_INFINITY || nofile.rlim_max > 1048576 ? 1048576
											: (long long)nofile.rlim_max;
	/* with a user namespace, runc mounts the root as the container's
	 * unprivileged root: it must be able to pass through dir */
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	if (userns >= 0 && chmod(dir, 0711) < 0)
		return berth_err_set(err, errno, "chmod %s", dir);
	if (rootfs_mount(dir, img.rootfs, userns, &root, err) < 0)
		return -1;
	/* model data: one directory resolved beneath a model root, mounted
	 * read-only (idmapped under a user namespace); the multi-model cache is
	 * berth's own directory, idmapped under a user namespace */
	_cleanup_free_ char *models_mp = NULL;
	_cleanup_free_ char *submit_dir = NULL;
	if ((model_fd >= 0 && model_mount(dir, model_fd, userns, &model_dir, err) < 0) ||
	    (submit_fd >= 0 && model_mount_at(dir, "submit", submit_fd, userns, &submit_dir, err) < 0) ||
	    (userns >= 0 && mme_dir && rootfs_mount_data(dir, "models", mme_dir, userns, &models_mp, err) < 0)) {
		struct berth_err ignored;
		if (model_unmount(dir, &ignored) < 0 || rootfs_unmount(dir, &ignored) < 0)
			log_warn("container %s: %s", c->id, ignored.msg);
		return -1;
	}
	/* (devices) the instance's CDI devices, from the specs as they are now */
	__attribute__((cleanup(cdi_edits_free))) struct cdi_edits edits = { 0 };
	_cleanup_free_ char *visible = NULL;
	char **node_sources = NULL;
	if (c->n_devices > 0 &&
	    container_devices(cfg, dir, c, userns >= 0, &edits, &node_sources, &visible, err) < 0) {
		struct berth_err ignored;
		if (model_unmount(dir, &ignored) < 0 || rootfs_unmount(dir, &ignored) < 0)
			log_warn("container %s: %s", c->id, ignored.msg);
		return -1;
	}
	struct bundle_spec spec = {
		.id = c->id,
		.hostname = c->hostname,
		.rootfs = root,
		.model_dir = model_dir,
		.cgroups_path = cgroups_path,
		.args = (const char *const *)proc.argv,
		.n_args = proc.argc,
		.env = env ? env : def->env,
		.n_env = def->n_env,
		.image_env = img.config.env,
		.n_image_env = img.config.n_env,
		.cwd = img.config.working_dir,
		.uid = user.uid,
		.gid = user.gid,
		.additional_gids = user.additional_gids,
		.n_additional_gids = user.n_additional_gids,
		.rootfs_writable = true,
		.memory_limit_bytes = place.lim.memory_bytes > 0 ? place.lim.memory_bytes : cfg->container_memory_bytes,
		.pids_limit = place.lim.pids > 0 ? place.lim.pids : cfg->container_pids_limit,
		.nofile_limit = nofile_limit,
		.seccomp = cfg->seccomp,
		.multi_model_dir = models_mp ? models_mp : mme_dir,
		.submit_dir = submit_dir,
		.uid_base = userns >= 0 ? c->uid_base : 0,
		.devices = { .edits = c->n_devices > 0 ? &edits : NULL, .node_sources = node_sources, .visible = visible },
	};
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
	int started = bundle_write(bundle, &spec, err) < 0 || shim_spawn(&launch, 60000, err) < 0 ? -1 : 0;
	cdi_names_free(node_sources);
	if (started < 0) {
		struct berth_err ignored;
		if (model_unmount(dir, &ignored) < 0 || rootfs_unmount(dir, &ignored) < 0)
			log_warn("container %s: %s", c->id, ignored.msg);
		return -1;
	}
	if (cfg->router_gid > 0) /* the unprivileged router asks the shim for connections */
		fs_share_with_group(c->socket, 0660, cfg->router_gid);
	log_info("endpoint %s: container %s (%s) started from %s", endpoint, c->hostname, c->id, def->image);
	return 0;
}

void container_runc_delete(const struct runtime_config *cfg, const char *id)
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

void container_stop(const struct runtime_config *cfg, const struct endpoint_container *c, int timeout_ms)
{
	struct berth_err err;
	if (shim_stop(c->socket, timeout_ms, &err) < 0) {
		log_info("container %s: shim not reachable (%s); removing with runc", c->id, err.msg);
		container_runc_delete(cfg, c->id);
		unlink(c->socket);
	}
	_cleanup_free_ char *exit_file = fs_path("%s/containers/%s/exit", cfg->state_dir, c->id);
	if (exit_file != NULL)
		unlink(exit_file);
	/* the restart gets a fresh private root, as a new container would */
	_cleanup_free_ char *dir = container_dir(cfg, c->id);
	if (dir != NULL && (model_unmount(dir, &err) < 0 || rootfs_unmount(dir, &err) < 0))
		log_warn("container %s: %s", c->id, err.msg);
}

void container_stop_and_remove(const struct runtime_config *cfg, const struct endpoint_container *c)
{
	struct berth_err err;
	if (shim_stop(c->socket, cfg->stop_timeout_ms, &err) < 0) {
		/* no shim to ask: make sure runc has nothing left of it */
		log_info("container %s: shim not reachable (%s); removing with runc", c->id, err.msg);
		container_runc_delete(cfg, c->id);
		unlink(c->socket);
	}
	_cleanup_free_ char *dir = container_dir(cfg, c->id);
	if (dir != NULL && (model_unmount(dir, &err) < 0 || rootfs_unmount(dir, &err) < 0))
		log_warn("container %s: %s", c->id, err.msg);
	if (dir != NULL && fs_remove_tree(dir, &err) < 0)
		log_warn("container %s: %s", c->id, err.msg);
}

void container_remove_orphans(const struct runtime_config *cfg, const char *const *known_ids, size_t n_known)
{
	_cleanup_free_ char *containers = fs_path("%s/containers", cfg->state_dir);
	DIR *d = containers ? opendir(containers) : NULL;
	if (d == NULL)
		return;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		if (de->d_name[0] == '.' || strlen(de->d_name) != 16 || strspn(de->d_name, "0123456789abcdef") != 16)
			continue;
		bool known = false;
		for (size_t i = 0; i < n_known && !known; i++)
			known = known_ids[i] && strcmp(known_ids[i], de->d_name) == 0;
		if (known)
			continue;
		struct endpoint_container orphan = {
			.id = de->d_name,
			.hostname = de->d_name,
			.socket = fs_path("%s/shims/%s.sock", cfg->run_dir, de->d_name),
			.log = fs_path("%s/containers/%s/log", cfg->state_dir, de->d_name),
		};
		if (orphan.socket != NULL && orphan.log != NULL) {
			log_info("container %s belongs to no endpoint; removing it", de->d_name);
			container_stop_and_remove(cfg, &orphan);
		}
		free(orphan.socket);
		free(orphan.log);
	}
	closedir(d);
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
