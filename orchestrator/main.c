/* berthd — the supervisor: owns the state, runs the control plane, starts
 * and stops containers. This file only parses flags and wires the pieces. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "api.h"
#include "control_server.h"
#include "fsutil.h"
#include "log.h"
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
		"  --runc PATH              runc binary (default: runc on PATH)\n");
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

int main(int argc, char **argv)
{
	const char *state_dir = BERTHD_DEFAULT_STATE_DIR, *run_dir = BERTHD_DEFAULT_RUN_DIR;
	const char *socket_flag = NULL, *shim_flag = NULL;
	struct runtime_config rc = {
		.runc_path = "runc",
		.region = "us-east-1",
		.account = "000000000000",
		.stop_timeout_ms = 30000,
		.health_timeout_ms = 240000,
		.ping_timeout_ms = 2000,
		.container_memory_bytes = 2LL << 30,
		.container_pids_limit = 4096,
	};
	int grace_ms = 5000;
	enum { O_STATE = 256, O_RUN, O_SOCKET, O_OBJ, O_REGION, O_ACCOUNT, O_GRACE, O_HEALTH, O_STOP, O_SHIM, O_RUNC };
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
	struct runtime *rt = runtime_new(&rc, store, &lock, &changed, &err);
	if (rt == NULL) {
		log_error("%s", err.msg);
		return 1;
	}
	struct api_ctx api = {
		.store = store,
		.lock = &lock,
		.changed = &changed,
		.region = rc.region,
		.account = rc.account,
		.grace_ms = grace_ms,
		.runtime = runtime_hooks(rt),
	};
	pthread_mutex_lock(&lock);
	runtime_resume(rt);
	pthread_mutex_unlock(&lock);
	struct control_server *cs = control_server_start(socket_path, &api, rt, &err);
	if (cs == NULL) {
		log_error("%s", err.msg);
		return 1;
	}
	log_info("berthd ready: state %s, control socket %s", state_abs, socket_path);

	int sig = 0;
	while (sigwait(&sigs, &sig) != 0 || sig == SIGHUP)
		;
	log_info("berthd stopping on signal %d; containers keep running", sig);
	control_server_stop(cs);
	runtime_free(rt);
	store_close(store);
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
