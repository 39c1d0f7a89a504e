/* berthd — the supervisor: owns the state, runs the control plane, starts
 * and stops containers. This file only parses flags and wires the pieces. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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

#include "api.h"
#include "config.h"
#include "container.h"
#include "control_server.h"
#include "host_limits.h"
#include "reconcile.h"
#include "router_supervisor.h"
#include "seccomp_profile.h"
#include "fsutil.h"
#include "log.h"
#include "mme.h"
#include "objstore.h"
#include "proto_control.h"
#include "runtime.h"
#include "store.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: berthd [options]\n"
		"  --state-dir DIR          state, bundles, logs, caches (default " BERTHD_DEFAULT_STATE_DIR ")\n"
		"  --run-dir DIR            sockets and runc state (default " BERTHD_DEFAULT_RUN_DIR ")\n"
		"  --socket PATH            control socket (default RUN_DIR/berthd.sock)\n"
		"  --object-store-root DIR  where s3://bucket/key is read from (DIR/bucket/key)\n"
		"  --region R               ARN region (default us-east-1)\n"
		"  --account A              ARN account (default 000000000000)\n"
		"  --create-grace-ms N      how long CreateEndpoint/DeleteEndpoint wait for a stable state (5000)\n"
		"  --health-timeout-ms N    a container must answer /ping within this (240000)\n"
		"  --stop-timeout-ms N      SIGTERM to SIGKILL on stop (30000)\n"
		"  --shim PATH              berth-shim binary (default: next to berthd)\n"
		"  --runc PATH              runc binary (default: runc on PATH)\n"
		"  --config PATH            settings file (configs/berthd.json); flags given win\n"
		"  --instance-types PATH    instance type table (default: the one built in)\n"
		"  --seccomp-profile PATH   containers' seccomp profile (default: built in; \"none\": no filter)\n"
		"  --cpu-overcommit F       vCPUs of all instances may reach nproc x F (8.0)\n"
		"  --memory-overcommit F    memory of all instances may reach MemTotal x F (2.0)\n"
		"  --pids-limit N           processes per endpoint instance (4096)\n"
		"  --listen HOST:PORT       bind this router address and run berth-router on it (repeatable)\n"
		"  --router PATH            berth-router binary (default: next to berthd)\n"
		"  --router-user USER       the router's unprivileged user (default berth, else nobody)\n"
		"  --stop-containers        on SIGTERM, stop every endpoint's containers (records are kept)\n"
		"  --s3-endpoint URL        S3-compatible store for s3:// multi-model artifacts (SigV4, path style)\n"
		"  --mme-max-model-bytes N  bound of one multi-model artifact, unpacked (10737418240)\n"
		"  --mme-disk-bytes N       bound of an endpoint's model cache on disk, LRU (107374182400; 0 none)\n"
		"  --mme-memory-high-water F  evict LRU models above F x the instance's memory limit (0.9; 0 off)\n");
}

static int parse_ms(const char *flag, const char *s, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > INT_MAX) {
		fprintf(stderr, "berthd: %s wants a number of milliseconds, not \"%s\"\n", flag, s);
		return -1;
	}
	*out = (int)v;
	return 0;
}

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

static int parse_factor(const char *flag, const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 1000) {
		fprintf(stderr, "berthd: %s wants a factor above 0 (1.0: no over-commit), not \"%s\"\n", flag, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* --config PATH / --config=PATH, looked for before the other flags so
 * that they override the file. */
static const char *find_config_flag(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
	}
	return path;
}

/* The router's user: USER, else "nobody" (with a warning). */
static int resolve_router_user(const char *name, const char **user, uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam(name);
	if (pw == NULL) {
		log_warn("user %s does not exist (make install creates it); berth-router runs as nobody", name);
		pw = getpwnam("nobody");
		name = "nobody";
	}
	if (pw == NULL || pw->pw_uid == 0) {
		log_error("no unprivileged user to run berth-router as (tried %s and nobody)", name);
		return -1;
	}
	*user = name;
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

int main(int argc, char **argv)
{
	struct berthd_config conf;
	struct berth_err cerr;
	const char *config_path = find_config_flag(argc, argv);
	if (berthd_config_defaults(&conf, &cerr) < 0 ||
	    (config_path != NULL && berthd_config_load(config_path, &conf, &cerr) < 0)) {
		fprintf(stderr, "berthd: %s\n", cerr.msg);
		berthd_config_free(&conf);
		return 2;
	}
	const char *state_dir = conf.state_dir, *run_dir = conf.run_dir;
	const char *socket_flag = conf.socket, *shim_flag = conf.shim;
	const char *router_flag = conf.router, *router_user = conf.router_user;
	const char *types_path = conf.instance_types, *seccomp_path = conf.seccomp_profile;
	double cpu_overcommit = conf.cpu_overcommit, memory_overcommit = conf.memory_overcommit;
	long long pids_limit = conf.instance_pids_limit;
	const char *listen_flags[BERTHD_CONFIG_MAX_LISTEN];
	size_t n_listen_flags = 0;
	bool stop_containers = false;
	struct runtime_config rc = {
		.runc_path = conf.runc,
		.object_store_root = conf.object_store_root,
		.region = conf.region,
		.account = conf.account,
		.stop_timeout_ms = conf.stop_timeout_ms,
		.health_timeout_ms = conf.health_timeout_ms,
		.ping_timeout_ms = 2000,
		.container_memory_bytes = 2LL << 30,
		.container_pids_limit = 4096,
	};
	int grace_ms = conf.create_grace_ms;
	enum { O_STATE = 256, O_RUN, O_SOCKET, O_OBJ, O_REGION, O_ACCOUNT, O_GRACE, O_HEALTH, O_STOP, O_SHIM, O_RUNC,
	       O_CONFIG, O_TYPES, O_SECCOMP, O_CPU_OC, O_MEM_OC, O_PIDS, O_LISTEN, O_ROUTER, O_ROUTER_USER,
	       O_STOP_CONTAINERS, O_S3_ENDPOINT, O_MME_MAX, O_MME_DISK, O_MME_HW };
	struct mme_config mc = {
		.max_model_bytes = MME_DEFAULT_MAX_MODEL_BYTES,
		.disk_bytes = MME_DEFAULT_DISK_BYTES,
		.high_water = MME_DEFAULT_HIGH_WATER,
		.load_timeout_ms = MME_LOAD_TIMEOUT_MS,
	};
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "run-dir", required_argument, NULL, O_RUN },
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "object-store-root", required_argument, NULL, O_OBJ },
		{ "region", required_argument, NULL, O_REGION },
		{ "account", required_argument, NULL, O_ACCOUNT },
		{ "create-grace-ms", required_argument, NULL, O_GRACE },
		{ "health-timeout-ms", required_argument, NULL, O_HEALTH },
		{ "stop-timeout-ms", required_argument, NULL, O_STOP },
		{ "shim", required_argument, NULL, O_SHIM },
		{ "runc", required_argument, NULL, O_RUNC },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "instance-types", required_argument, NULL, O_TYPES },
		{ "seccomp-profile", required_argument, NULL, O_SECCOMP },
		{ "cpu-overcommit", required_argument, NULL, O_CPU_OC },
		{ "memory-overcommit", required_argument, NULL, O_MEM_OC },
		{ "pids-limit", required_argument, NULL, O_PIDS },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "router", required_argument, NULL, O_ROUTER },
		{ "router-user", required_argument, NULL, O_ROUTER_USER },
		{ "stop-containers", no_argument, NULL, O_STOP_CONTAINERS },
		{ "s3-endpoint", required_argument, NULL, O_S3_ENDPOINT },
		{ "mme-max-model-bytes", required_argument, NULL, O_MME_MAX },
		{ "mme-disk-bytes", required_argument, NULL, O_MME_DISK },
		{ "mme-memory-high-water", required_argument, NULL, O_MME_HW },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
		switch (c) {
		case O_STATE: state_dir = optarg; break;
		case O_RUN: run_dir = optarg; break;
		case O_SOCKET: socket_flag = optarg; break;
		case O_OBJ: rc.object_store_root = optarg; break;
		case O_REGION: rc.region = optarg; break;
		case O_ACCOUNT: rc.account = optarg; break;
		case O_GRACE: if (parse_ms("--create-grace-ms", optarg, &grace_ms) < 0) return 2; break;
		case O_HEALTH: if (parse_ms("--health-timeout-ms", optarg, &rc.health_timeout_ms) < 0) return 2; break;
		case O_STOP: if (parse_ms("--stop-timeout-ms", optarg, &rc.stop_timeout_ms) < 0) return 2; break;
		case O_SHIM: shim_flag = optarg; break;
		case O_RUNC: rc.runc_path = optarg; break;
		case O_CONFIG: break; /* read first, above */
		case O_TYPES: types_path = optarg; break;
		case O_SECCOMP: seccomp_path = optarg; break;
		case O_CPU_OC: if (parse_factor("--cpu-overcommit", optarg, &cpu_overcommit) < 0) return 2; break;
		case O_MEM_OC: if (parse_factor("--memory-overcommit", optarg, &memory_overcommit) < 0) return 2; break;
		case O_PIDS: {
			int v = 0;
			if (parse_ms("--pids-limit", optarg, &v) < 0 || v < 16) {
				fprintf(stderr, "berthd: --pids-limit wants a number of at least 16\n");
				return 2;
			}
			pids_limit = v;
			break;
		}
		case O_LISTEN:
			if (n_listen_flags == BERTHD_CONFIG_MAX_LISTEN) {
				fprintf(stderr, "berthd: at most %d --listen\n", BERTHD_CONFIG_MAX_LISTEN);
				return 2;
			}
			listen_flags[n_listen_flags++] = optarg;
			break;
		case O_ROUTER: router_flag = optarg; break;
		case O_ROUTER_USER: router_user = optarg; break;
		case O_STOP_CONTAINERS: stop_containers = true; break;
		case O_S3_ENDPOINT: mc.store.s3_endpoint = optarg; break;
		case O_MME_MAX:
		case O_MME_DISK: {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (errno || *end || optarg[0] == '-' || (c == O_MME_MAX && v == 0)) {
				fprintf(stderr, "berthd: %s wants a number of bytes, not \"%s\"\n",
					c == O_MME_MAX ? "--mme-max-model-bytes" : "--mme-disk-bytes", optarg);
				return 2;
			}
			*(c == O_MME_MAX ? &mc.max_model_bytes : &mc.disk_bytes) = v;
			break;
		}
		case O_MME_HW: {
			char *end;
			double v = strtod(optarg, &end);
			if (*end || !(v >= 0 && v <= 1)) {
				fprintf(stderr, "berthd: --mme-memory-high-water wants a fraction 0..1, not \"%s\"\n", optarg);
				return 2;
			}
			mc.high_water = v;
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	struct berth_err err;
	char *state_abs = realpath(state_dir, NULL);
	if (state_abs == NULL && (fs_mkdir_p(state_dir, 0700, &err) < 0 || !(state_abs = realpath(state_dir, NULL)))) {
		log_error("cannot use state directory %s: %s", state_dir, strerror(errno));
		return 1;
	}
	if (fs_mkdir_p(run_dir, 0755, &err) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	char *run_abs = realpath(run_dir, NULL);
	char *socket_path = socket_flag ? strdup(socket_flag) : fs_path("%s/berthd.sock", run_abs);
	char *shim_path = shim_flag ? strdup(shim_flag) : default_shim_path();
	char *runc_abs = resolve_on_path(rc.runc_path);
	if (runc_abs == NULL) {
		log_error("runc not found (\"%s\"); install Debian's runc package or pass --runc PATH", rc.runc_path);
		return 1;
	}
	rc.runc_path = runc_abs;
	char *shim_abs = realpath(shim_path, NULL);
	if (shim_abs == NULL) {
		log_error("berth-shim not found at %s; pass --shim PATH", shim_path);
		return 1;
	}
	free(shim_path);
	shim_path = shim_abs;
	rc.state_dir = state_abs;
	rc.run_dir = run_abs;
	rc.shim_path = shim_path;

	/* instance types, host limits, the containers' seccomp profile */
	struct limits limits_storage;
	struct limits *limits = &limits_storage;
	if (limits_init(limits, types_path, &err) < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	limits->cpu_overcommit = cpu_overcommit;
	limits->memory_overcommit = memory_overcommit;
	limits->pids_limit = pids_limit;
	limits->state_dir = state_abs;
	rc.limits = limits;
	struct seccomp_profile *seccomp = NULL;
	if (seccomp_path == NULL || (strcmp(seccomp_path, "none") != 0 && seccomp_path[0] != '\0')) {
		seccomp = seccomp_profile_load(seccomp_path, &err);
		if (seccomp == NULL) {
			log_error("%s", err.msg);
			return 1;
		}
	} else {
		log_warn("containers run without a seccomp filter (--seccomp-profile %s)", seccomp_path);
	}
	rc.seccomp = seccomp;
	log_info("host: %d CPUs, %lld MiB; %zu instance types; over-commit cpu %.3g memory %.3g; %lld pids per instance",
		 limits->host_cpus, limits->host_memory_bytes >> 20, limits->types.n, cpu_overcommit,
		 memory_overcommit, pids_limit);

	/* the supervised router: its user, and the addresses berthd binds for it */
	const char *const *listen = n_listen_flags ? listen_flags : (const char *const *)conf.listen;
	size_t n_listen = n_listen_flags ? n_listen_flags : conf.n_listen;
	uid_t router_uid = 0;
	gid_t router_gid = 0;
	char *router_path = NULL;
	if (n_listen > 0) {
		if (resolve_router_user(router_user, &router_user, &router_uid, &router_gid) < 0)
			return 1;
		_cleanup_free_ char *wanted = router_flag ? strdup(router_flag) : sibling_path("berth-router");
		router_path = wanted ? realpath(wanted, NULL) : NULL;
		if (router_path == NULL) {
			log_error("berth-router not found at %s; pass --router PATH", wanted ? wanted : "?");
			return 1;
		}
		rc.router_gid = router_gid;
	}

	/* one berthd per state directory */
	char *lock_path = fs_path("%s/berthd.lock", state_abs);
	int lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
		log_error("state directory %s is in use by another berthd (lock %s: %s); stop it first",
			  state_abs, lock_path, strerror(errno));
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

	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t changed;
	pthread_condattr_t cattr;
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&changed, &cattr);
	pthread_condattr_destroy(&cattr);

	struct store *store = store_open(state_abs, &err);
	if (store == NULL) {
		log_error("cannot open the state in %s: %s", state_abs, err.msg);
		return 1;
	}
	objstore_global_init();
	mc.state_dir = state_abs;
	mc.account = rc.account;
	mc.store.local_root = rc.object_store_root;
	mc.store.region = rc.region;
	mc.store.timeout_ms = 300000;
	struct mme *mme = mme_new(&mc, store, &lock, &err);
	if (mme == NULL) {
		log_error("%s", err.msg);
		return 1;
	}
	rc.mme = mme;
	struct runtime *rt = runtime_new(&rc, store, &lock, &changed, &err);
	if (rt == NULL) {
		log_error("%s", err.msg);
		return 1;
	}
	mme_attach(mme, rt);
	struct api_ctx api = {
		.store = store,
		.lock = &lock,
		.changed = &changed,
		.region = rc.region,
		.account = rc.account,
		.grace_ms = grace_ms,
		.runtime = runtime_hooks(rt),
	};
	limits->store = store;
	api.runtime.limits = limits;
	api.runtime.endpoint_fits = limits_endpoint_fits;
	api.runtime.instance_type_check = limits_instance_type_check;
	pthread_mutex_lock(&lock);
	reconcile_leftovers(&rc, store, NULL);
	runtime_resume(rt);
	pthread_mutex_unlock(&lock);
	struct control_server *cs = control_server_start(socket_path, &api, rt, &err);
	if (cs == NULL) {
		log_error("%s", err.msg);
		return 1;
	}
	struct router_supervisor *router = NULL;
	if (n_listen > 0) {
		/* the unprivileged router reaches berthd through its group: the run
		 * directory is berthd's own, so make it searchable for that group
		 * (it may have been created 0700 by an earlier run or by hand) */
		if (chown(run_abs, 0, router_gid) < 0 || chmod(run_abs, 0710) < 0)
			log_warn("cannot open %s to group %u: %s", run_abs, (unsigned)router_gid, strerror(errno));
		if (chown(socket_path, 0, router_gid) < 0 || chmod(socket_path, 0660) < 0)
			log_warn("cannot share %s with group %u: %s", socket_path, (unsigned)router_gid, strerror(errno));
		router_check_reachable(socket_path, router_uid, router_gid);
		struct router_supervisor_config sc = {
			.router_path = router_path,
			.listen = listen,
			.n_listen = n_listen,
			.berthd_socket = socket_path,
			.user = router_user,
			.run_dir = run_abs,
			.request_timeout_ms = conf.router_request_timeout_ms,
			.max_connections = conf.router_max_connections,
			.max_buffered_bytes = conf.router_max_buffered_bytes,
			.max_connection_buffered_bytes = conf.router_max_connection_buffered_bytes,
		};
		router = router_supervisor_start(&sc, &err);
		if (router == NULL) {
			log_error("%s", err.msg);
			return 1;
		}
	}
	log_info("berthd ready: state %s, control socket %s", state_abs, socket_path);

	int sig = 0;
	while (sigwait(&sigs, &sig) != 0 || sig == SIGHUP)
		;
	log_info("berthd stopping on signal %d; %s", sig,
		 stop_containers ? "stopping the containers (--stop-containers)" : "containers keep running");
	router_supervisor_stop(router);
	control_server_stop(cs);
	mme_detach(mme);  /* its monitor first: it sends through the runtime */
	runtime_free(rt); /* no health check may restart what is being stopped */
	mme_free(mme);
	if (stop_containers)
		stop_all_containers(&rc, store, &lock);
	store_close(store);
	seccomp_profile_free(seccomp);
	limits_free(limits);
	berthd_config_free(&conf);
	free(router_path);
	pthread_cond_destroy(&changed);
	close(lock_fd);
	free(lock_path);
	free(socket_path);
	free(shim_path);
	free(runc_abs);
	free(run_abs);
	free(state_abs);
	return 0;
}
