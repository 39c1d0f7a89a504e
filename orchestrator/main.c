/* berthd — the supervisor: owns the state, runs the control plane, starts
 * and stops containers. This file only wires the pieces: settings come
 * from config.c (checked there, once), the layers below do the work. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "artifact.h"
#include "clock.h"
#include "api.h"
#include "config.h"
#include "container.h"
#include "control_server.h"
#include "cdi_registry.h"
#include "devices.h"
#include "host_limits.h"
#include "identity.h"
#include "image.h"
#include "listen_policy.h"
#include "reconcile.h"
#include "router_log.h"
#include "router_supervisor.h"
#include "seccomp_profile.h"
#include "uid_range.h"
#include "fsutil.h"
#include "log.h"
#include "mme.h"
#include "objstore.h"
#include "proto_control.h"
#include "runtime.h"
#include "store.h"
#include "tls_material.h"

static char *default_shim_path(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return strdup("berth-shim");
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	*slash = '\0';
	return fs_path("%s/berth-shim", self);
}

/* PROGRAM in berthd's own directory (berth-router). Caller frees. */
static char *sibling_path(const char *program)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return strdup(program);
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	return fs_path("%s/%s", self, program);
}

/* The shim runs in / and wants absolute paths: look runc up on PATH now. */
static char *resolve_on_path(const char *name)
{
	if (strchr(name, '/') != NULL)
		return realpath(name, NULL);
	const char *path = getenv("PATH");
	_cleanup_free_ char *dirs = strdup(path && *path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	char *save = NULL;
	for (char *d = dirs ? strtok_r(dirs, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
		char *full = fs_path("%s/%s", d, name);
		if (full != NULL && access(full, X_OK) == 0)
			return full;
		free(full);
	}
	return NULL;
}

/* The router's user: an existing, dedicated, unprivileged user. Not
 * nobody: every process running as nobody could then reach what is shared
 * with the router (its channel to berthd, the shims' sockets). */
static int resolve_router_user(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam(name);
	if (pw == NULL) {
		log_error("the router's user %s does not exist; create it (make install and make run do: useradd "
			  "--system --user-group --no-create-home --shell /usr/sbin/nologin %s) or name another "
			  "dedicated user with --router-user",
			  name, name);
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		log_error("--router-user %s is root (uid %u gid %u); berth-router must run as a dedicated unprivileged "
			  "user (the system user berth)",
			  name, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
		return -1;
	}
	if (strcmp(name, "nobody") == 0 || pw->pw_uid == 65534 || pw->pw_gid == 65534) {
		log_error("--router-user %s is nobody (uid %u gid %u), which other processes share: they could reach "
			  "the router's channel and the shims' sockets; use a dedicated user (the system user berth, "
			  "which make install creates)",
			  name, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

struct stop_job {
	const struct runtime_config *rc;
	struct endpoint_container c;
	pthread_t thread;
	bool started;
};

/* ---- wiring: the API's and the multi-model cache's calls into the runtime */

static void hook_endpoint_start(void *rt, const char *name)
{
	runtime_endpoint_start(rt, name);
}

static void hook_endpoint_stop(void *rt, const char *name)
{
	runtime_endpoint_stop(rt, name);
}

static void hook_routes_changed(void *rt)
{
	runtime_push_routes(rt);
}

static int hook_image_check(void *sources, const char *image, struct berth_err *err)
{
	const struct runtime_config *rc = sources;
	return image_check(rc->images, image, err);
}

static int hook_image_resolved(void *sources, const char *endpoint, const char *image, char *resolved, size_t size,
			       double *at)
{
	const struct runtime_config *rc = sources;
	struct registry_image img;
	if (rc->images == NULL || rc->images->registry == NULL ||
	    registry_pinned(rc->images->registry, endpoint, image, &img) < 0)
		return -1;
	snprintf(resolved, size, "%s", img.resolved);
	*at = img.resolved_at;
	return 0;
}

static int hook_image_pull_step(void *sources, const char *image, char *step, size_t size)
{
	const struct runtime_config *rc = sources;
	if (rc->images == NULL || rc->images->registry == NULL)
		return -1;
	return registry_pull_step(rc->images->registry, image, step, size);
}

static int hook_model_data_check(void *sources, const char *url, struct berth_err *err)
{
	const struct runtime_config *rc = sources;
	return objstore_check(rc->store, url, err);
}

static void notify_routers(void *rt, const char *doc, size_t len)
{
	runtime_send_to_watchers(rt, doc, len);
}

static void *stop_one_container(void *arg)
{
	struct stop_job *job = arg;
	container_stop(job->rc, &job->c, job->rc->stop_timeout_ms);
	return NULL;
}

/* --stop-containers: every endpoint's containers are stopped (in parallel),
 * their records left as they are so that the next berthd brings them back. */
static void stop_all_containers(const struct runtime_config *rc, struct store *store, pthread_mutex_t *lock)
{
	pthread_mutex_lock(lock);
	size_t n = 0;
	for (size_t i = 0; i < store_count_endpoints(store); i++)
		n += store_endpoint_at(store, i)->n_containers;
	struct stop_job *jobs = calloc(n + 1, sizeof(*jobs));
	size_t k = 0;
	for (size_t i = 0; jobs && i < store_count_endpoints(store); i++) {
		const struct endpoint *e = store_endpoint_at(store, i);
		for (size_t j = 0; j < e->n_containers; j++) {
			const struct endpoint_container *c = &e->containers[j];
			jobs[k].rc = rc;
			jobs[k].c.id = strdup(c->id);
			jobs[k].c.hostname = strdup(c->hostname);
			jobs[k].c.socket = strdup(c->socket);
			jobs[k].c.log = strdup(c->log);
			k++;
		}
	}
	pthread_mutex_unlock(lock);
	log_info("stopping %zu container%s (--stop-containers)", k, k == 1 ? "" : "s");
	for (size_t i = 0; i < k; i++)
		if (jobs[i].c.id && jobs[i].c.socket && jobs[i].c.log)
			jobs[i].started = pthread_create(&jobs[i].thread, NULL, stop_one_container, &jobs[i]) == 0;
	for (size_t i = 0; i < k; i++) {
		if (jobs[i].started)
			pthread_join(jobs[i].thread, NULL);
		free(jobs[i].c.id);
		free(jobs[i].c.hostname);
		free(jobs[i].c.socket);
		free(jobs[i].c.log);
	}
	free(jobs);
}


/* Everything berthd runs with, owned here and handed down. */
struct berthd {
	struct berthd_config conf;
	char *state_dir, *run_dir, *socket_path, *shim_path, *runc_path, *router_path, *lock_path;
	char *router_socket;              /* the router's channel (control_server.h) */
	char identity[BERTH_IDENTITY_MAX]; /* names what the host shares (identity.h) */
	int lock_fd, run_lock_fd;         /* the state and run directories' locks */
	char *run_lock_path;
	int userns_lock_fd;               /* holds this berthd's uid window (uid_range.h) */
	const char *router_user;
	uid_t router_uid;
	gid_t router_gid;
	struct limits limits;
	bool limits_ready;
	struct cdi_registry cdi;        /* (devices) the host's CDI devices */
	bool cdi_ready;
	struct seccomp_profile *seccomp;
	struct uid_range_policy userns; /* (userns) unused with no_user_namespaces */
	struct runtime_config rc;
	struct image_policy images;
	struct registry registry;         /* registry references: the pull cache (registry.h) */
	bool registry_ready;
	struct mme_config mc;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct store *store;
	struct mme *mme;
	struct runtime *rt;
	struct api_ctx api;
	struct control_server *cs;
	struct router_supervisor *router;
	struct router_log *router_output; /* the router's stdout and stderr */
	struct access *access;            /* the keys (access.h) */
	int64_t access_day;               /* UTC day whose keys the routers hold */
	struct tls_material *tls;         /* --tls-cert, --tls-key; NULL without */
	volatile sig_atomic_t shutdown_stop_containers; /* `berth shutdown --stop-containers` */
};

/* berthd runs a router when it has an address to serve. */
static bool runs_router(const struct berthd_config *c)
{
	return c->n_listen + c->n_tls_listen > 0;
}

/* Who may listen where (listen_policy.h), before anything is bound. */
static int check_listen_policy(const struct berthd_config *c, struct berth_err *err)
{
	struct listen_policy p = {
		.listen = (const char *const *)c->listen,
		.n_listen = c->n_listen,
		.tls_listen = (const char *const *)c->tls_listen,
		.n_tls_listen = c->n_tls_listen,
		.have_cert = c->tls_cert != NULL,
		.have_key = c->tls_key != NULL,
		.auth_none = c->auth != NULL && strcmp(c->auth, "none") == 0,
		.insecure_listen = c->insecure_listen,
	};
	return listen_policy_check(&p, err);
}

/* The router's certificate and key: read here, by root, and handed to
 * every router as a greeting on its route watch (tls_material.h). */
static int load_tls(struct berthd *d, struct berth_err *err)
{
	if (d->conf.tls_cert == NULL)
		return 0;
	d->tls = tls_material_load(d->conf.tls_cert, d->conf.tls_key, err);
	if (d->tls == NULL)
		return -1;
	log_info("TLS certificate %s and key %s loaded for the router", d->conf.tls_cert, d->conf.tls_key);
	return 0;
}

/* SIGHUP: the certificate and key again, to every router; a pair that
 * fails a check leaves the one in use. */
static void reload_tls(struct berthd *d)
{
	if (d->tls == NULL)
		return;
	struct berth_err err;
	if (tls_material_reload(d->tls, &err) < 0) {
		log_error("SIGHUP: the TLS certificate was not reloaded: %s; the router keeps serving the previous one",
			  err.msg);
		return;
	}
	struct berth_buf doc = BERTH_BUF_INIT;
	if (tls_material_render(d->tls, &doc) < 0) {
		log_error("SIGHUP: out of memory sending the TLS certificate to the router");
	} else {
		runtime_send_to_watchers(d->rt, doc.data, doc.len);
		log_info("SIGHUP: TLS certificate %s reloaded and sent to the router", d->conf.tls_cert);
	}
	if (doc.data != NULL)
		explicit_bzero(doc.data, doc.cap);
	buf_free(&doc);
}

/* Absolute paths of the state and run directories, the control socket and
 * the programs berthd runs (the shim runs in / and wants absolute paths). */
static int resolve_paths(struct berthd *d)
{
	struct berthd_config *c = &d->conf;
	struct berth_err err;
	d->state_dir = realpath(c->state_dir, NULL);
	if (d->state_dir == NULL &&
	    (fs_mkdir_p(c->state_dir, 0700, &err) < 0 || !(d->state_dir = realpath(c->state_dir, NULL)))) {
		log_error("cannot use state directory %s: %s", c->state_dir, strerror(errno));
		return -1;
	}
	_cleanup_free_ char *default_real = realpath(BERTHD_DEFAULT_STATE_DIR, NULL);
	berth_identity_of(d->state_dir, default_real ? default_real : BERTHD_DEFAULT_STATE_DIR, d->identity);
	_cleanup_free_ char *run_dir = c->run_dir ? strdup(c->run_dir) : fs_path("/run/%s", d->identity);
	if (run_dir == NULL || fs_mkdir_p(run_dir, 0755, &err) < 0 || !(d->run_dir = realpath(run_dir, NULL))) {
		log_error("cannot use run directory %s: %s", run_dir ? run_dir : "?", run_dir ? err.msg : "out of memory");
		return -1;
	}
	d->socket_path = c->socket ? strdup(c->socket) : fs_path("%s/berthd.sock", d->run_dir);
	d->runc_path = resolve_on_path(c->runc);
	if (d->runc_path == NULL) {
		log_error("runc not found (\"%s\"); install Debian's runc package or pass --runc PATH", c->runc);
		return -1;
	}
	_cleanup_free_ char *shim = c->shim ? strdup(c->shim) : default_shim_path();
	d->shim_path = shim ? realpath(shim, NULL) : NULL;
	if (d->shim_path == NULL) {
		log_error("berth-shim not found at %s; pass --shim PATH", shim ? shim : "?");
		return -1;
	}
	if (runs_router(c)) {
		if (resolve_router_user(c->router_user, &d->router_uid, &d->router_gid) < 0)
			return -1;
		d->router_user = c->router_user;
		_cleanup_free_ char *wanted = c->router ? strdup(c->router) : sibling_path("berth-router");
		d->router_path = wanted ? realpath(wanted, NULL) : NULL;
		if (d->router_path == NULL) {
			log_error("berth-router not found at %s; pass --router PATH", wanted ? wanted : "?");
			return -1;
		}
	}
	return d->socket_path ? 0 : -1;
}

/* (devices) The CDI spec directories and the default accelerator kind. */
static int load_devices(struct berthd *d)
{
	struct berthd_config *c = &d->conf;
	struct berth_err err;
	if (c->accelerator_kind != NULL && !cdi_kind_valid(c->accelerator_kind)) {
		log_error("accelerator_kind \"%s\" is not a CDI kind, VENDOR/CLASS (\"nvidia.com/gpu\")",
			  c->accelerator_kind);
		return -1;
	}
	d->limits.accelerator_kind = c->accelerator_kind;
	d->limits.claims_dir = DEVICES_CLAIMS_DIR;
	d->limits.identity = d->identity;
	static const char *const defaults[] = CDI_DEFAULT_SPEC_DIRS;
	const char *const *dirs = c->cdi_spec_dirs_set ? (const char *const *)c->cdi_spec_dirs.dirs : defaults;
	size_t n = c->cdi_spec_dirs_set ? c->cdi_spec_dirs.n : BERTH_ARRAY_SIZE(defaults);
	if (cdi_registry_init(&d->cdi, dirs, n, &err) < 0) {
		log_error("%s", err.msg);
		return -1;
	}
	d->cdi_ready = true;
	d->limits.cdi = &d->cdi;
	return 0;
}

/* Instance types, the host's limits and the containers' seccomp profile. */
static int load_limits(struct berthd *d)
{
	struct berthd_config *c = &d->conf;
	struct berth_err err;
	if (limits_init(&d->limits, c->instance_types, &err) < 0) {
		log_error("%s", err.msg);
		return -1;
	}
	d->limits_ready = true;
	d->limits.cpu_overcommit = c->cpu_overcommit;
	d->limits.memory_overcommit = c->memory_overcommit;
	d->limits.pids_limit = c->instance_pids_limit;
	d->limits.state_dir = d->state_dir;
	if (load_devices(d) < 0)
		return -1;
	const char *seccomp = c->seccomp_profile;
	if (seccomp == NULL || (strcmp(seccomp, "none") != 0 && seccomp[0] != '\0')) {
		d->seccomp = seccomp_profile_load(seccomp, &err);
		if (d->seccomp == NULL) {
			log_error("%s", err.msg);
			return -1;
		}
	} else {
		log_warn("containers run without a seccomp filter (--seccomp-profile %s)", seccomp);
	}
	log_info("host: %d CPUs, %lld MiB; %zu instance types; over-commit cpu %.3g memory %.3g; %lld pids per instance",
		 d->limits.host_cpus, d->limits.host_memory_bytes >> 20, d->limits.types.n, c->cpu_overcommit,
		 c->memory_overcommit, c->instance_pids_limit);
	return 0;
}

/* (userns) Each instance's uid range comes from above userns_uid_base,
 * leaving real users' rootless ranges (/etc/subuid, /etc/subgid) alone;
 * the containers' unprivileged roots must reach STATE/containers. */
static int prepare_userns(struct berthd *d)
{
	struct berth_err err;
	if (d->conf.no_user_namespaces) {
		log_warn("containers run without user namespaces: their root is host root (no_user_namespaces)");
		return 0;
	}
	if (uid_range_policy_load(&d->userns, d->conf.userns_uid_base, "/etc/subuid", "/etc/subgid", &err) < 0 ||
	    container_userns_prepare(d->state_dir, &err) < 0) {
		log_error("%s", err.msg);
		return -1;
	}
	log_info("containers run in user namespaces: %lld host uids each, in a window above %lld", USERNS_RANGE_SIZE,
		 d->conf.userns_uid_base);
	return 0;
}

/* What berthd may read on a caller's behalf: the roots (defaults under the
 * state directory, created so that there is a place to put things), the
 * object store's lists, the image bounds. */
static int load_sources(struct berthd *d)
{
	struct berthd_config *c = &d->conf;
	struct berth_err err;
	bool defaults = !c->image_roots_set || !c->model_roots_set;
	if (berthd_config_default_roots(c, d->state_dir, &err) < 0) {
		log_error("%s", err.msg);
		return -1;
	}
	if (defaults) {
		_cleanup_free_ char *li = fs_path("%s/local/images", d->state_dir);
		_cleanup_free_ char *lm = fs_path("%s/local/models", d->state_dir);
		if (li == NULL || lm == NULL || fs_mkdir_p(li, 0755, &err) < 0 || fs_mkdir_p(lm, 0755, &err) < 0)
			log_warn("cannot create the default roots under %s/local: %s", d->state_dir,
				 li && lm ? err.msg : "out of memory");
	}
	if (c->s3_endpoint != NULL && c->s3_buckets.n == 0) {
		log_error("--s3-endpoint %s needs the buckets berthd may read from it: give --s3-bucket NAME (or "
			  "s3_buckets in the configuration); berthd signs requests with this host's credentials only "
			  "for buckets listed",
			  c->s3_endpoint);
		return -1;
	}
	if (c->https_ca_file != NULL && access(c->https_ca_file, R_OK) < 0) {
		log_error("--https-ca-file %s: %s", c->https_ca_file, strerror(errno));
		return -1;
	}
	if (registry_config_check(&c->registries, &err) < 0 ||
	    registry_open(&d->registry, d->state_dir, &c->registries, c->image_max_bytes, &err) < 0) {
		log_error("%s", err.msg);
		return -1;
	}
	d->registry_ready = true;
	d->images = (struct image_policy){
		.roots = &c->image_roots,
		.max_bytes = c->image_max_bytes,
		.max_entries = c->image_max_entries,
		.registry = &d->registry,
	};
	log_info("registries: %zu listed, %zu mirrors%s", c->registries.n_hosts, c->registries.n_mirrors,
		 c->registries.allow_unlisted ? ", others allowed (allow_unlisted)" : "; others refused");
	struct berth_buf text = BERTH_BUF_INIT;
	buf_append_str(&text, "image roots: ");
	host_roots_describe(&c->image_roots, &text);
	buf_append_str(&text, "; model roots: ");
	host_roots_describe(&c->model_roots, &text);
	log_info("%s; images up to %llu bytes, %llu entries", text.data ? text.data : "", c->image_max_bytes,
		 c->image_max_entries);
	buf_free(&text);
	return 0;
}

/* Who may call: the mode and, with sigv4, the keys (access.h). */
static int load_access(struct berthd *d)
{
	struct berthd_config *c = &d->conf;
	struct berth_err err;
	struct access_config ac = { c->auth, c->credentials, c->region, c->account };
	if (access_open(&ac, &d->access, &err) < 0) {
		log_error("%s", err.msg);
		return -1;
	}
	if (access_enabled(d->access))
		log_info("calls are verified (SigV4, region %s) against %zu key%s of %s", c->region,
			 access_key_count(d->access), access_key_count(d->access) == 1 ? "" : "s", c->credentials);
	else
		log_warn("auth none: every caller that reaches a loopback listen address may use the whole API "
			 "(requests must name localhost, 127.0.0.1, [::1] or the listen address in Host)");
	d->access_day = (int64_t)clock_epoch_seconds() / 86400;
	return 0;
}

/* The router's greeting: its keys (runtime_add_watch_greeting). */
static int render_access(void *data, struct berth_buf *out)
{
	struct berthd *d = data;
	return access_render_router(d->access, (int64_t)clock_epoch_seconds(), out);
}

/* Sends every router the keys now in use. */
static void push_access(struct berthd *d)
{
	struct berth_buf doc = BERTH_BUF_INIT;
	if (access_render_router(d->access, (int64_t)clock_epoch_seconds(), &doc) == 0)
		runtime_send_to_watchers(d->rt, doc.data, doc.len);
	else
		log_error("cannot render the router's keys (out of memory); the routers keep the previous ones");
	explicit_bzero(doc.data, doc.cap);
	buf_free(&doc);
}

/* SIGHUP (force) or the once-a-second look at the credentials file: new
 * keys take effect for the next call; open connections stay. A new UTC
 * day gives the routers that day's derived keys. */
static void refresh_access(struct berthd *d, bool force)
{
	struct berth_err err;
	int r = access_reload(d->access, force, &err);
	if (r < 0)
		log_error("credentials not reloaded, the previous keys stay in use: %s", err.msg);
	else if (r > 0)
		log_info("credentials reloaded: %zu key%s", access_key_count(d->access),
			 access_key_count(d->access) == 1 ? "" : "s");
	int64_t day = (int64_t)clock_epoch_seconds() / 86400;
	if (r > 0 || day != d->access_day) {
		d->access_day = day;
		push_access(d);
	}
}

/* One berthd per state directory, and per run directory: two berthds
 * given the same --run-dir would share runc's state, the shims' sockets
 * and the control socket, and remove each other's containers at start. */
static int lock_state_dir(struct berthd *d)
{
	d->run_lock_path = fs_path("%s/berthd.lock", d->run_dir);
	d->run_lock_fd = d->run_lock_path ? open(d->run_lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
	if (d->run_lock_fd < 0 || flock(d->run_lock_fd, LOCK_EX | LOCK_NB) < 0) {
		log_error("run directory %s is in use by another berthd (lock %s: %s); give this berthd its own "
			  "--run-dir, or leave it out (default /run/%s for state directory %s)",
			  d->run_dir, d->run_lock_path ? d->run_lock_path : "?", strerror(errno), d->identity,
			  d->state_dir);
		return -1;
	}
	d->lock_path = fs_path("%s/berthd.lock", d->state_dir);
	d->lock_fd = d->lock_path ? open(d->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
	if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		log_error("state directory %s is in use by another berthd (lock %s: %s); stop it first", d->state_dir,
			  d->lock_path ? d->lock_path : "?", strerror(errno));
		return -1;
	}
	return 0;
}

/* (userns, identity) The window of host uids this berthd hands ranges out
 * of, disjoint from every other berthd's on this host (uid_range.h):
 * that of the ranges its records already hold; else userns_uid_base's
 * own for the default state directory or when it is given; else the first
 * free one of those its identity tries. Taken before anything starts. */
static int claim_userns_window(struct berthd *d)
{
	if (d->conf.no_user_namespaces)
		return 0;
	long long base = d->conf.userns_uid_base, held = -1;
	for (size_t i = 0; i < store_count_endpoints(d->store); i++) {
		const struct endpoint *e = store_endpoint_at(d->store, i);
		for (size_t j = 0; j < e->n_containers; j++)
			if (e->containers[j].uid_base > 0 && (held < 0 || e->containers[j].uid_base < held))
				held = e->containers[j].uid_base;
	}
	uint32_t number = d->conf.userns_uid_base_set ? 0 : berth_identity_number(d->identity);
	struct berth_err err;
	long long start = -1;
	if (held >= 0) {
		long long off = held - base;
		start = base + (off >= 0 ? off / USERNS_WINDOW_IDS : -((-off + USERNS_WINDOW_IDS - 1) / USERNS_WINDOW_IDS)) *
				       USERNS_WINDOW_IDS;
		int r = uid_range_window_claim(USERNS_WINDOW_LOCK, start, &d->userns_lock_fd, &err);
		if (r != 0) {
			log_error("%s: this berthd's containers (state directory %s) already use uid %lld of that window; "
				  "stop the other berthd, or delete this one's endpoints and give them different "
				  "userns_uid_base settings at least %lld apart",
				  err.msg, d->state_dir, held, USERNS_WINDOW_IDS);
			return -1;
		}
	} else {
		for (long long k = 0; start < 0; k++) {
			long long candidate = uid_range_window_candidate(base, number, k);
			if (candidate < 0) {
				log_error("%s; every window of %lld ids above userns_uid_base %lld is held by another berthd: "
					  "give this one (state directory %s) a userns_uid_base whose window no other "
					  "berthd uses",
					  k > 0 ? err.msg : "no window of user namespace ids", USERNS_WINDOW_IDS, base,
					  d->state_dir);
				return -1;
			}
			int r = uid_range_window_claim(USERNS_WINDOW_LOCK, candidate, &d->userns_lock_fd, &err);
			if (r < 0) {
				log_error("%s", err.msg);
				return -1;
			}
			long long pid = r == 0 && number != 0 ? uid_range_window_mapped("/proc", candidate) : 0;
			if (pid > 0) {
				/* a berthd that is down may have containers there */
				log_info("host uids %lld..%lld are mapped by process %lld's user namespace; trying the next "
					 "window",
					 candidate, candidate + USERNS_WINDOW_IDS - 1, pid);
				uid_range_window_release(d->userns_lock_fd, candidate);
				berth_err_set(&err, 0, "host uids %lld..%lld are in use by process %lld", candidate,
					      candidate + USERNS_WINDOW_IDS - 1, pid);
			} else if (r == 0)
				start = candidate;
			else if (number == 0) {
				log_error("%s; give this berthd (state directory %s) a userns_uid_base at least %lld away "
					  "from the other's, e.g. --userns-uid-base %lld",
					  err.msg, d->state_dir, USERNS_WINDOW_IDS, base + 2 * USERNS_WINDOW_IDS);
				return -1;
			}
		}
	}
	d->userns.base = start;
	d->userns.limit = start + USERNS_WINDOW_IDS;
	log_info("user namespace ids of this berthd: %lld..%lld (lock %s)", start, start + USERNS_WINDOW_IDS - 1,
		 USERNS_WINDOW_LOCK);
	return 0;
}

/* The state store, the multi-model cache, the runtime and the API over
 * them; then what a crash left behind is cleaned up and the endpoints
 * resumed. */
static int start_core(struct berthd *d)
{
	struct berthd_config *c = &d->conf;
	struct berth_err err;
	d->rc = (struct runtime_config){
		.state_dir = d->state_dir,
		.run_dir = d->run_dir,
		.cgroup_root = d->identity,
		.shim_path = d->shim_path,
		.runc_path = d->runc_path,
		.object_store_root = c->object_store_root,
		.region = c->region,
		.account = c->account,
		.stop_timeout_ms = c->stop_timeout_ms,
		.health_timeout_ms = c->health_timeout_ms,
		.ping_timeout_ms = 2000,
		.container_memory_bytes = 2LL << 30,
		.container_pids_limit = 4096,
		.limits = &d->limits,
		.seccomp = d->seccomp,
		.router_gid = runs_router(c) ? d->router_gid : 0,
		.userns = c->no_user_namespaces ? NULL : &d->userns,
		.images = &d->images,
		.store = &d->mc.store,
		.model_max_bytes = c->model_max_bytes,
		.artifact_cache_max_bytes = c->artifact_cache_max_bytes,
		.async_queue_max = c->async_queue_max,
		.async_max_bytes = c->async_max_bytes,
	};
	d->store = store_open(d->state_dir, &err);
	if (d->store == NULL) {
		log_error("cannot open the state in %s: %s", d->state_dir, err.msg);
		return -1;
	}
	if (claim_userns_window(d) < 0)
		return -1;
	objstore_global_init();
	artifact_sweep(d->state_dir);
	d->mc = (struct mme_config){
		.state_dir = d->state_dir,
		.account = c->account,
		.max_model_bytes = c->mme_max_model_bytes,
		.disk_bytes = c->mme_disk_bytes,
		.high_water = c->mme_memory_high_water,
		.load_timeout_ms = MME_LOAD_TIMEOUT_MS,
		.store = {
			.local_root = c->object_store_root,
			.s3_endpoint = c->s3_endpoint,
			.region = c->region,
			.timeout_ms = 300000,
			.model_roots = &c->model_roots,
			.buckets = &c->s3_buckets,
			.https_hosts = &c->https_hosts,
			.ca_file = c->https_ca_file,
		},
	};
	d->mme = mme_new(&d->mc, d->store, &d->lock, &err);
	if (d->mme == NULL) {
		log_error("%s", err.msg);
		return -1;
	}
	d->rc.mme = d->mme;
	d->rt = runtime_new(&d->rc, d->store, &d->lock, &d->changed, &err);
	if (d->rt == NULL) {
		log_error("%s", err.msg);
		return -1;
	}
	mme_attach(d->mme, notify_routers, d->rt);
	if (runtime_add_watch_greeting(d->rt, render_access, d) < 0) {
		log_error("cannot register the router's greeting");
		return -1;
	}
	if (d->tls != NULL && runtime_add_watch_greeting(d->rt, tls_material_render, d->tls) < 0) {
		log_error("cannot hand the router its TLS certificate: too many greetings");
		return -1;
	}
	d->limits.store = d->store;
	d->api = (struct api_ctx){
		.store = d->store,
		.lock = &d->lock,
		.changed = &d->changed,
		.region = c->region,
		.account = c->account,
		.grace_ms = c->create_grace_ms,
		.access = d->access,
		.runtime = {
			.data = d->rt,
			.endpoint_start = hook_endpoint_start,
			.endpoint_stop = hook_endpoint_stop,
			.routes_changed = hook_routes_changed,
			.sources = &d->rc,
			.image_check = hook_image_check,
			.image_resolved = hook_image_resolved,
			.image_pull_step = hook_image_pull_step,
			.model_data_check = hook_model_data_check,
			.limits = &d->limits,
			.endpoint_fits = limits_endpoint_fits,
			.devices_fit = devices_fit,
			.instance_type_check = limits_instance_type_check,
		},
	};
	pthread_mutex_lock(&d->lock);
	reconcile_leftovers(&d->rc, d->store, NULL);
	runtime_resume(d->rt);
	pthread_mutex_unlock(&d->lock);
	runtime_trim_artifacts(d->rt);
	return 0;
}

/* `berth shutdown` (a control connection's thread): the main thread stops
 * berthd as on SIGTERM. */
static void on_shutdown(void *data, bool stop_containers)
{
	struct berthd *d = data;
	if (stop_containers)
		d->shutdown_stop_containers = 1;
	kill(getpid(), SIGTERM);
}

/* The admin socket, then the router's channel, its log pipe and the
 * supervised router on the listen addresses. */
static int start_serving(struct berthd *d)
{
	struct berthd_config *c = &d->conf;
	struct berth_err err;
	d->cs = control_server_start(d->socket_path, &d->api, d->rt, &err);
	if (d->cs == NULL) {
		log_error("%s", err.msg);
		return -1;
	}
	control_server_on_shutdown(d->cs, on_shutdown, d);
	if (!runs_router(c))
		return 0;
	/* the unprivileged router reaches berthd through its group: the run
	 * directory is berthd's own, so make it searchable for that group
	 * (it may have been created 0700 by an earlier run or by hand) */
	if (chown(d->run_dir, 0, d->router_gid) < 0 || chmod(d->run_dir, 0710) < 0)
		log_warn("cannot open %s to group %u: %s", d->run_dir, (unsigned)d->router_gid, strerror(errno));
	/* the admin socket stays root's; the router gets its own channel */
	d->router_socket = fs_path("%s/router.sock", d->run_dir);
	if (d->router_socket == NULL ||
	    control_server_open_router_channel(d->cs, d->router_socket, d->router_uid, d->router_gid, &err) < 0) {
		log_error("%s", d->router_socket ? err.msg : "out of memory");
		return -1;
	}
	router_check_reachable(d->router_socket, d->router_uid, d->router_gid);
	d->router_output = router_log_start(&err);
	if (d->router_output == NULL) {
		log_error("%s", err.msg);
		return -1;
	}
	struct router_supervisor_config sc = {
		.router_path = d->router_path,
		.listen = (const char *const *)c->listen,
		.n_listen = c->n_listen,
		.tls_listen = (const char *const *)c->tls_listen,
		.n_tls_listen = c->n_tls_listen,
		.insecure_listen = c->insecure_listen,
		.berthd_socket = d->router_socket,
		.user = d->router_user,
		.run_dir = d->run_dir,
		.request_timeout_ms = c->router_request_timeout_ms,
		.max_connections = c->router_max_connections,
		.max_buffered_bytes = c->router_max_buffered_bytes,
		.max_connection_buffered_bytes = c->router_max_connection_buffered_bytes,
		.log_fd = router_log_fd(d->router_output),
	};
	d->router = router_supervisor_start(&sc, &err);
	if (d->router == NULL) {
		log_error("%s", err.msg);
		return -1;
	}
	return 0;
}

/* In the order that lets nothing act on what is already gone. */
static void berthd_stop(struct berthd *d)
{
	if (d->registry_ready)
		registry_stop(&d->registry); /* running pulls end now, not after their timeout */
	router_supervisor_stop(d->router);
	router_log_stop(d->router_output); /* after the router: its last lines */
	control_server_stop(d->cs);
	mme_detach(d->mme); /* its monitor first: it sends through the runtime */
	runtime_free(d->rt); /* no health check may restart what is being stopped */
	mme_free(d->mme);
	if (d->conf.stop_containers && d->store != NULL)
		stop_all_containers(&d->rc, d->store, &d->lock);
	store_close(d->store);
}

static void berthd_free(struct berthd *d)
{
	access_free(d->access);
	tls_material_free(d->tls);
	seccomp_profile_free(d->seccomp);
	uid_range_policy_free(&d->userns);
	if (d->limits_ready)
		limits_free(&d->limits);
	if (d->registry_ready)
		registry_close(&d->registry);
	if (d->cdi_ready)
		cdi_registry_free(&d->cdi);
	berthd_config_free(&d->conf);
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	if (d->run_lock_fd >= 0)
		close(d->run_lock_fd);
	if (d->userns_lock_fd >= 0)
		close(d->userns_lock_fd);
	free(d->lock_path);
	free(d->run_lock_path);
	free(d->router_path);
	free(d->socket_path);
	free(d->router_socket);
	free(d->shim_path);
	free(d->runc_path);
	free(d->run_dir);
	free(d->state_dir);
}

int main(int argc, char **argv)
{
	struct berthd d = { .lock_fd = -1, .run_lock_fd = -1, .userns_lock_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };
	struct berth_err err;
	int r = berthd_config_from_args(argc, argv, &d.conf, &err);
	if (r != 0) {
		if (r > 0)
			berthd_config_usage(stdout);
		else
			fprintf(stderr, "berthd: %s\n", err.msg);
		berthd_config_free(&d.conf);
		return r > 0 ? 0 : 2;
	}
	/* settings that contradict each other are usage errors, like a bad flag */
	if (check_listen_policy(&d.conf, &err) < 0 || load_tls(&d, &err) < 0) {
		fprintf(stderr, "berthd: %s\n", err.msg);
		berthd_free(&d);
		return 2;
	}
	if (resolve_paths(&d) < 0 || load_sources(&d) < 0 || load_limits(&d) < 0 || prepare_userns(&d) < 0 ||
	    load_access(&d) < 0 || lock_state_dir(&d) < 0) {
		berthd_free(&d);
		return 1;
	}

	/* signals are taken synchronously by the main thread; workers inherit the mask */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_condattr_t cattr;
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&d.changed, &cattr);
	pthread_condattr_destroy(&cattr);

	if (start_core(&d) < 0 || start_serving(&d) < 0)
		return 1; /* containers keep running; the next start picks them up */
	log_info("berthd ready: state %s, identity %s (cgroups /%s, run directory %s), control socket %s", d.state_dir,
		 d.identity, d.identity, d.run_dir, d.socket_path);

	/* SIGHUP reloads; once a second the credentials file and the CDI specs
	 * are looked at and this berthd's device claims published */
	int sig = 0;
	for (;;) {
		struct timespec tick = { 1, 0 };
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig == SIGHUP) {
			log_info("SIGHUP: reloading the credentials");
			refresh_access(&d, true);
			reload_tls(&d);
		} else if (sig < 0) {
			refresh_access(&d, false);
			cdi_registry_refresh(&d.cdi); /* (devices) a changed spec is logged when it changes */
			pthread_mutex_lock(&d.lock); /* what this berthd holds, for the others */
			devices_publish(&d.limits, NULL, 0);
			pthread_mutex_unlock(&d.lock);
		} else {
			break;
		}
	}
	if (d.shutdown_stop_containers)
		d.conf.stop_containers = true;
	pthread_mutex_lock(&d.lock);
	devices_publish(&d.limits, NULL, 0); /* kept while records hold devices: their containers run on */
	pthread_mutex_unlock(&d.lock);
	log_info("berthd stopping on signal %d; %s", sig,
		 d.conf.stop_containers ? "stopping the containers (--stop-containers)" : "containers keep running");
	berthd_stop(&d);
	pthread_cond_destroy(&d.changed);
	berthd_free(&d);
	return 0;
}
