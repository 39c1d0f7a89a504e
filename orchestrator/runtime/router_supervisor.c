/* router_supervisor.c — see router_supervisor.h. */
#include "router_supervisor.h"
#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "netaddr.h"

#define MAX_LISTEN 32 /* listen and tls_listen together */
#define QUICK_DEATH_MS 1000
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define STOP_DRAIN_MS 10000
#define SPAWN_FD_BASE 100

struct router_supervisor {
	struct router_supervisor_config cfg;
	int fds[MAX_LISTEN];         /* the listen ones, then the tls_listen ones */
	size_t n_fds, n_tls_fds;
	int wake_fd;              /* eventfd: stop */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pid_t pid;                /* guarded by mu */
	char *pid_file;
};

static int bind_one(const char *address, struct berth_err *err)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	if (netaddr_parse(address, &ss, &len, err) < 0)
		return -1;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_err_set(err, errno, "socket for %s", address);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* a router left by a killed berthd still holds the port until the new one is up */
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4096) < 0) {
		int e = errno;
		close(fd);
		return berth_err_set(err, e, "cannot listen on %s", address);
	}
	return fd;
}

/* Starts the router with the listening sockets as fds 3, 4, …. posix_spawn
 * (clone with CLONE_VM|CLONE_VFORK) rather than fork: no page tables of a
 * large berthd to copy, so a restart takes a few milliseconds. The sockets
 * sit above SPAWN_FD_BASE in berthd, so the dup2s cannot clobber each other. */
static pid_t spawn_router(struct router_supervisor *s)
{
	char fd_args[MAX_LISTEN][16];
	char limit_args[4][24];
	const char *argv[18 + 2 * MAX_LISTEN];
	size_t n = 0;
	argv[n++] = s->cfg.router_path;
	for (size_t i = 0; i < s->n_fds; i++) {
		snprintf(fd_args[i], sizeof(fd_args[i]), "%zu", 3 + i);
		argv[n++] = i < s->n_fds - s->n_tls_fds ? "--listen-fd" : "--tls-listen-fd";
		argv[n++] = fd_args[i];
	}
	if (s->cfg.insecure_listen)
		argv[n++] = "--insecure-listen";
	argv[n++] = "--berthd-socket";
	argv[n++] = s->cfg.berthd_socket;
	if (s->cfg.user != NULL) {
		argv[n++] = "--user";
		argv[n++] = s->cfg.user;
	}
	const struct { const char *flag; long long value; } limits[] = {
		{ "--request-timeout-ms", s->cfg.request_timeout_ms },
		{ "--max-connections", s->cfg.max_connections },
		{ "--max-buffered-bytes", s->cfg.max_buffered_bytes },
		{ "--max-connection-buffered-bytes", s->cfg.max_connection_buffered_bytes },
	};
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(limits); i++) {
		if (limits[i].value <= 0)
			continue;
		snprintf(limit_args[i], sizeof(limit_args[i]), "%lld", limits[i].value);
		argv[n++] = limits[i].flag;
		argv[n++] = limit_args[i];
	}
	argv[n] = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/* its stdout and stderr: berthd's log pipe (router_log.h), never
	 * berthd's own log file; first, before fd 3 and up are overwritten */
	if (s->cfg.log_fd >= 0) {
		posix_spawn_file_actions_adddup2(&fa, s->cfg.log_fd, STDOUT_FILENO);
		posix_spawn_file_actions_adddup2(&fa, s->cfg.log_fd, STDERR_FILENO);
	}
	for (size_t i = 0; i < s->n_fds; i++)
		posix_spawn_file_actions_adddup2(&fa, s->fds[i], 3 + (int)i); /* dup2 clears FD_CLOEXEC */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3 + (int)s->n_fds);
	sigset_t none, defaults;
	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE); /* berthd ignores it; the router decides for itself */
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	/* its own session: a terminal's ^C reaches berthd, which stops it */
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
	pid_t pid = -1;
	int r = posix_spawn(&pid, s->cfg.router_path, &fa, &attr, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r != 0) {
		errno = r;
		return -1;
	}
	return pid;
}

static void write_pid_file(struct router_supervisor *s, pid_t pid)
{
	char text[32];
	int len = snprintf(text, sizeof(text), "%d\n", (int)pid);
	struct berth_err err;
	if (fs_write_atomic(s->pid_file, text, (size_t)len, 0644, &err) < 0)
		log_warn("%s", err.msg);
}

/* A router left behind by a berthd that was killed: its pid, or 0. */
static pid_t leftover_router(struct router_supervisor *s)
{
	struct berth_buf text = BERTH_BUF_INIT;
	pid_t pid = 0;
	if (fs_read_file(s->pid_file, &text, 64, NULL) == 0 && text.data != NULL) {
		int v = atoi(text.data);
		char exe[64], target[4096];
		snprintf(exe, sizeof(exe), "/proc/%d/exe", v);
		ssize_t n = v > 1 ? readlink(exe, target, sizeof(target) - 1) : -1;
		if (n > 0) {
			target[n] = '\0';
			const char *base = strrchr(target, '/');
			if (strncmp(base ? base + 1 : target, "berth-router", 12) == 0)
				pid = v;
		}
	}
	buf_free(&text);
	return pid;
}

static void *watch(void *arg)
{
	struct router_supervisor *s = arg;
	int quick_deaths = 0; /* in a row, each within QUICK_DEATH_MS of its start */
	for (;;) {
		pthread_mutex_lock(&s->mu);
		pid_t pid = s->pid;
		pthread_mutex_unlock(&s->mu);
		long long started = clock_now_ms();
		int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		struct pollfd p[2] = { { s->wake_fd, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
		int status = 0;
		for (;;) {
			int n = poll(p, pidfd >= 0 ? 2 : 1, pidfd >= 0 ? -1 : 50);
			if (n > 0 && p[0].revents) {
				if (pidfd >= 0)
					close(pidfd);
				return NULL; /* stopping: router_supervisor_stop reaps */
			}
			if (pidfd >= 0 && n > 0 && p[1].revents)
				break;
			if (pidfd < 0 && waitpid(pid, &status, WNOHANG) == pid)
				goto reaped;
		}
		close(pidfd);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	reaped:;
		long long lived = clock_now_ms() - started;
		if (WIFSIGNALED(status))
			log_warn("berth-router (pid %d) was killed by signal %d after %lld ms; restarting it", (int)pid,
				 WTERMSIG(status), lived);
		else
			log_warn("berth-router (pid %d) exited with status %d after %lld ms; restarting it", (int)pid,
				 WEXITSTATUS(status), lived);
		quick_deaths = lived < QUICK_DEATH_MS ? quick_deaths + 1 : 0;
		/* a death is answered at once; a crash loop waits 100 ms, 200 ms, … 5 s
		 * (and wakes for stop) */
		int delay = 0;
		if (quick_deaths > 1) {
			delay = BACKOFF_FIRST_MS;
			for (int i = 2; i < quick_deaths && delay < BACKOFF_MAX_MS; i++)
				delay *= 2;
			if (delay > BACKOFF_MAX_MS)
				delay = BACKOFF_MAX_MS;
		}
		if (delay > 0) {
			log_warn("berth-router keeps dying; next start in %d ms", delay);
			struct pollfd w = { s->wake_fd, POLLIN, 0 };
			if (poll(&w, 1, delay) > 0)
				return NULL;
		}
		pthread_mutex_lock(&s->mu);
		s->pid = spawn_router(s);
		pid = s->pid;
		pthread_mutex_unlock(&s->mu);
		if (pid < 0) {
			log_error("cannot start berth-router: %s", strerror(errno));
			pthread_mutex_lock(&s->mu);
			s->pid = 0;
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		write_pid_file(s, pid);
		log_info("berth-router started again as pid %d", (int)pid);
	}
}

struct router_supervisor *router_supervisor_start(const struct router_supervisor_config *cfg, struct berth_err *err)
{
	size_t n_all = cfg->n_listen + cfg->n_tls_listen;
	if (n_all == 0 || n_all > MAX_LISTEN) {
		berth_err_set(err, EINVAL, "1 to %d --listen and --tls-listen addresses", MAX_LISTEN);
		return NULL;
	}
	struct router_supervisor *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		berth_err_set(err, ENOMEM, "router supervisor");
		return NULL;
	}
	s->cfg = *cfg;
	s->wake_fd = -1;
	pthread_mutex_init(&s->mu, NULL);
	s->pid_file = fs_path("%s/router.pid", cfg->run_dir);
	for (size_t i = 0; i < n_all; i++) {
		bool tls = i >= cfg->n_listen;
		const char *address = tls ? cfg->tls_listen[i - cfg->n_listen] : cfg->listen[i];
		int fd = bind_one(address, err);
		if (fd < 0)
			goto fail;
		int high = fcntl(fd, F_DUPFD_CLOEXEC, SPAWN_FD_BASE);
		close(fd);
		if (high < 0) {
			berth_err_set(err, errno, "moving the socket of %s", address);
			goto fail;
		}
		s->fds[s->n_fds++] = high;
		s->n_tls_fds += tls;
		log_info("listening on %s for berth-router%s", address, tls ? " (TLS only)" : "");
	}
	if ((s->wake_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
		berth_err_set(err, errno, "eventfd");
		goto fail;
	}
	pid_t old = leftover_router(s);
	s->pid = spawn_router(s);
	if (s->pid < 0) {
		berth_err_set(err, errno, "cannot start %s", cfg->router_path);
		goto fail;
	}
	write_pid_file(s, s->pid);
	log_info("berth-router started as pid %d", (int)s->pid);
	if (old > 0 && old != s->pid) {
		log_info("stopping berth-router pid %d left by an earlier berthd", (int)old);
		kill(old, SIGTERM);
	}
	if (pthread_create(&s->thread, NULL, watch, s) != 0) {
		berth_err_set(err, errno, "starting the router supervisor thread");
		goto fail;
	}
	s->thread_started = true;
	return s;
fail:
	router_supervisor_stop(s);
	return NULL;
}

pid_t router_supervisor_pid(struct router_supervisor *s)
{
	pthread_mutex_lock(&s->mu);
	pid_t pid = s->pid;
	pthread_mutex_unlock(&s->mu);
	return pid;
}

void router_supervisor_stop(struct router_supervisor *s)
{
	if (s == NULL)
		return;
	if (s->wake_fd >= 0) {
		uint64_t one = 1;
		if (write(s->wake_fd, &one, sizeof(one)) < 0)
			log_warn("waking the router supervisor: %s", strerror(errno));
	}
	if (s->thread_started)
		pthread_join(s->thread, NULL);
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		int status;
		long long deadline = clock_now_ms() + STOP_DRAIN_MS;
		while (waitpid(s->pid, &status, WNOHANG) == 0) {
			if (clock_now_ms() > deadline) {
				kill(s->pid, SIGKILL);
				waitpid(s->pid, &status, 0);
				break;
			}
			usleep(10000);
		}
		if (s->pid_file != NULL)
			unlink(s->pid_file);
	}
	for (size_t i = 0; i < s->n_fds; i++)
		close(s->fds[i]);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	pthread_mutex_destroy(&s->mu);
	free(s->pid_file);
	free(s);
}

void router_check_reachable(const char *path, uid_t uid, gid_t gid)
{
	_cleanup_free_ char *dir = strdup(path);
	for (char *slash = dir ? strrchr(dir, '/') : NULL; slash != NULL && slash != dir; slash = strrchr(dir, '/')) {
		*slash = '\0';
		struct stat st;
		if (stat(dir, &st) < 0)
			continue;
		bool ok = (st.st_uid == uid && (st.st_mode & 0100)) || (st.st_gid == gid && (st.st_mode & 0010)) ||
			  (st.st_mode & 0001);
		if (!ok)
			log_warn("berth-router (uid %u) cannot reach %s: %s is not searchable for it (chmod o+x, or "
				 "group %u with g+x)",
				 (unsigned)uid, path, dir, (unsigned)gid);
	}
}
