/* server.c — see server.h. */
#include "server.h"
#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exit.h"
#include "ipc.h"
#include "json.h"
#include "log.h"
#include "proto_shim.h"
#include "stop.h"

int server_listen(struct shim *shim, struct berth_err *err)
{
	int fd = ipc_listen(shim->cfg.socket_path, 0600, err);
	if (fd < 0)
		return -1;
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		close(fd);
		return berth_err_set(err, e, "fcntl O_NONBLOCK");
	}
	shim->listen_fd = fd;
	shim->listen_watch.kind = WATCH_LISTEN;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &shim->listen_watch };
	if (epoll_ctl(shim->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return berth_err_set(err, errno, "epoll_ctl");
	return 0;
}

static void client_free(struct shim *shim, struct shim_client *c)
{
	if (c->connect_fd >= 0) {
		epoll_ctl(shim->epfd, EPOLL_CTL_DEL, c->connect_fd, NULL);
		close(c->connect_fd);
	}
	epoll_ctl(shim->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	ipc_reader_free(&c->reader);
	close(c->fd);
	free(c);
}

void server_accept(struct shim *shim)
{
	for (;;) {
		int fd = accept4(shim->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				log_warn("accept on %s: %s", shim->cfg.socket_path, strerror(errno));
			return;
		}
		size_t n = 0;
		for (struct shim_client *c = shim->clients; c; c = c->next)
			n++;
		if (n >= SERVER_CLIENTS_MAX) {
			log_warn("too many clients on %s; refusing one", shim->cfg.socket_path);
			close(fd);
			continue;
		}
		struct shim_client *c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->connect_fd = -1;
		/* the socket is shared with the router's group, which needs only
		 * connect; state and stop are berthd's, who runs as our uid */
		struct ucred cred;
		socklen_t cred_len = sizeof(cred);
		c->privileged = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0 && cred.uid == geteuid();
		ipc_reader_init(&c->reader, fd);
		c->watch = (struct shim_watch){ WATCH_CLIENT, c };
		c->connect_watch = (struct shim_watch){ WATCH_CONNECT, c };
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &c->watch };
		if (epoll_ctl(shim->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = shim->clients;
		shim->clients = c;
	}
}

/* ---- answers ------------------------------------------------------------- */

static void reply_raw(struct shim_client *c, const char *msg, size_t len, int fd)
{
	struct berth_err err;
	if (c->closing)
		return;
	if (ipc_send(c->fd, msg, len, fd, &err) < 0) {
		log_debug("client: %s", err.msg);
		c->closing = true;
	}
}

static void reply_error(struct shim_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_error(struct shim_client *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	yajl_gen g = json_gen_new();
	struct berth_buf out = BERTH_BUF_INIT;
	if (g == NULL || yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_kv_bool(g, "ok", false) < 0 ||
	    json_gen_kv_str(g, "error", msg) < 0 || yajl_gen_map_close(g) != yajl_gen_status_ok) {
		if (g)
			yajl_gen_free(g);
		c->closing = true;
		return;
	}
	if (json_gen_finish(g, &out) < 0) {
		buf_free(&out);
		c->closing = true;
		return;
	}
	reply_raw(c, out.data, out.len, -1);
	buf_free(&out);
}

static void reply_state(struct shim *shim, struct shim_client *c)
{
	yajl_gen g = json_gen_new();
	struct berth_buf out = BERTH_BUF_INIT;
	if (g == NULL)
		goto fail;
	if (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_kv_bool(g, "ok", true) < 0 ||
	    json_gen_kv_str(g, "id", shim->cfg.id) < 0 ||
	    json_gen_kv_str(g, "state", shim->exited ? "stopped" : "running") < 0 ||
	    json_gen_kv_int(g, "pid", shim->container_pid) < 0 ||
	    json_gen_kv_int(g, "started_at", (long long)shim->started_at) < 0 || shim_exit_gen_status(shim, g) < 0 ||
	    json_gen_kv_bool(g, "oom_killed", shim->oom_killed) < 0 || yajl_gen_map_close(g) != yajl_gen_status_ok) {
		yajl_gen_free(g);
		goto fail;
	}
	if (json_gen_finish(g, &out) < 0)
		goto fail;
	reply_raw(c, out.data, out.len, -1);
	buf_free(&out);
	return;
fail:
	buf_free(&out);
	reply_error(c, "out of memory");
}

void server_answer_stops(struct shim *shim)
{
	for (struct shim_client *c = shim->clients; c; c = c->next) {
		if (!c->waiting_stop)
			continue;
		c->waiting_stop = false;
		yajl_gen g = json_gen_new();
		struct berth_buf out = BERTH_BUF_INIT;
		if (g == NULL)
			continue;
		if (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_kv_bool(g, "ok", true) < 0 ||
		    shim_exit_gen_status(shim, g) < 0 || yajl_gen_map_close(g) != yajl_gen_status_ok) {
			yajl_gen_free(g);
			continue;
		}
		if (json_gen_finish(g, &out) == 0)
			reply_raw(c, out.data, out.len, -1);
		buf_free(&out);
	}
}

/* ---- connect ------------------------------------------------------------- */

static void connect_fail(struct shim *shim, struct shim_client *c, int errnum)
{
	reply_error(c, "connect to 127.0.0.1:%d in container %s: %s", c->connect_port, shim->cfg.id,
		    strerror(errnum));
}

static void connect_done(struct shim *shim, struct shim_client *c, int errnum)
{
	int fd = c->connect_fd;
	c->connect_fd = -1;
	epoll_ctl(shim->epfd, EPOLL_CTL_DEL, fd, NULL);
	if (errnum == 0) {
		int flags = fcntl(fd, F_GETFL);
		if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
			errnum = errno;
	}
	if (errnum == 0)
		reply_raw(c, "{\"ok\":true}", 11, fd);
	else
		connect_fail(shim, c, errnum);
	close(fd);
}

/* Creates the socket inside the container's network namespace. */
static int socket_in_container(struct shim *shim)
{
	if (setns(shim->container_netns_fd, CLONE_NEWNET) < 0)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int saved = errno;
	if (setns(shim->own_netns_fd, CLONE_NEWNET) < 0) {
		/* Should never happen; the shim only makes AF_INET sockets for
		 * containers, but say so loudly. */
		log_error("cannot return to the shim's network namespace: %s", strerror(errno));
	}
	errno = saved;
	return fd;
}

static void op_connect(struct shim *shim, struct shim_client *c, yajl_val req)
{
	long long port = SHIM_CONTAINER_PORT;
	if (json_get(req, "port") != NULL && (!json_get_int64(req, "port", &port) || port < 1 || port > 65535)) {
		reply_error(c, "\"port\" must be an integer from 1 to 65535");
		return;
	}
	c->connect_port = (int)port;
	if (shim->exited || shim->container_netns_fd < 0) {
		reply_error(c, "connect to 127.0.0.1:%d in container %s: container is not running", c->connect_port,
			    shim->cfg.id);
		return;
	}
	int fd = socket_in_container(shim);
	if (fd < 0) {
		connect_fail(shim, c, errno);
		return;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	c->connect_fd = fd;
	int r;
	do
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	while (r < 0 && errno == EINTR);
	if (r == 0) {
		connect_done(shim, c, 0);
		return;
	}
	if (errno != EINPROGRESS) {
		connect_done(shim, c, errno);
		return;
	}
	c->connect_deadline_ms = clock_now_ms() + SERVER_CONNECT_TIMEOUT_MS;
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = &c->connect_watch };
	if (epoll_ctl(shim->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		connect_done(shim, c, errno);
}

void server_connect_event(struct shim *shim, struct shim_client *c)
{
	if (c->connect_fd < 0 || c->closing)
		return;
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	if (getsockopt(c->connect_fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	connect_done(shim, c, soerr);
	/* requests that queued behind the connect */
	server_client_event(shim, c, 0);
}

long long server_expire_connects(struct shim *shim)
{
	long long now = clock_now_ms(), next = -1;
	for (struct shim_client *c = shim->clients; c; c = c->next) {
		if (c->connect_fd < 0 || c->closing)
			continue;
		if (c->connect_deadline_ms <= now) {
			connect_done(shim, c, ETIMEDOUT);
			server_client_event(shim, c, 0);
		} else if (next < 0 || c->connect_deadline_ms < next) {
			next = c->connect_deadline_ms;
		}
	}
	return next;
}

/* ---- requests ------------------------------------------------------------ */

static void handle_line(struct shim *shim, struct shim_client *c, const char *line, size_t len)
{
	struct berth_err err;
	yajl_val req = json_parse(line, len, &err);
	if (req == NULL) {
		reply_error(c, "bad request: %s", err.msg);
		return;
	}
	const char *op = json_get_string(req, "op");
	if (op == NULL) {
		reply_error(c, "bad request: \"op\" (a string) is required");
	} else if (strcmp(op, "connect") == 0) {
		op_connect(shim, c, req);
	} else if ((strcmp(op, "state") == 0 || strcmp(op, "stop") == 0) && !c->privileged) {
		reply_error(c, "op \"%s\" is berthd's only; this connection may ask for connect", op);
	} else if (strcmp(op, "state") == 0) {
		reply_state(shim, c);
	} else if (strcmp(op, "stop") == 0) {
		long long timeout = STOP_TIMEOUT_MS_DEFAULT;
		if (json_get(req, "timeout_ms") != NULL &&
		    (!json_get_int64(req, "timeout_ms", &timeout) || timeout < 0 || timeout > STOP_TIMEOUT_MS_MAX)) {
			reply_error(c, "\"timeout_ms\" must be an integer from 0 to %lld", STOP_TIMEOUT_MS_MAX);
		} else {
			c->waiting_stop = true;
			shim_stop_request(shim, timeout);
		}
	} else {
		char name[64];
		snprintf(name, sizeof(name), "%s", op);
		reply_error(c, "unknown op \"%s\" (connect, state, stop)", name);
	}
	yajl_tree_free(req);
}

/* While a connect or stop is pending, later requests wait (answers stay in
 * order), so the socket is taken out of EPOLLIN to keep the level-triggered
 * loop from spinning on unread bytes. Hang-ups are still reported. */
static void client_watch_input(struct shim *shim, struct shim_client *c, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.ptr = &c->watch };
	epoll_ctl(shim->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

void server_client_event(struct shim *shim, struct shim_client *c, uint32_t events)
{
	bool blocked = c->connect_fd >= 0 || c->waiting_stop;
	if (blocked && (events & (EPOLLHUP | EPOLLERR))) {
		c->closing = true; /* gone: nobody to answer (a stop goes on regardless) */
		return;
	}
	if (!blocked && events == 0)
		client_watch_input(shim, c, true); /* resumed after a connect */
	while (!c->closing && c->connect_fd < 0 && !c->waiting_stop) {
		const char *line;
		size_t len;
		int fd = -1;
		struct berth_err err;
		int r = ipc_read_nonblock(&c->reader, &line, &len, &fd, &err);
		if (fd >= 0)
			close(fd); /* nobody sends the shim descriptors */
		if (r == -2)
			return;
		if (r <= 0) {
			if (r < 0)
				log_debug("client: %s", err.msg);
			c->closing = true;
			return;
		}
		handle_line(shim, c, line, len);
		if (c->connect_fd >= 0 || c->waiting_stop)
			client_watch_input(shim, c, false);
	}
}

void server_collect(struct shim *shim)
{
	struct shim_client **pp = &shim->clients;
	while (*pp) {
		struct shim_client *c = *pp;
		if (c->closing) {
			*pp = c->next;
			client_free(shim, c);
		} else {
			pp = &c->next;
		}
	}
}

void server_shutdown(struct shim *shim)
{
	while (shim->clients) {
		struct shim_client *c = shim->clients;
		shim->clients = c->next;
		client_free(shim, c);
	}
	if (shim->listen_fd >= 0) {
		epoll_ctl(shim->epfd, EPOLL_CTL_DEL, shim->listen_fd, NULL);
		close(shim->listen_fd);
		shim->listen_fd = -1;
		if (unlink(shim->cfg.socket_path) < 0 && errno != ENOENT)
			log_warn("cannot remove %s: %s", shim->cfg.socket_path, strerror(errno));
	}
}
