/* routes.c — the watch connection to berthd and the current route table. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "routes.h"

enum routes_state { ROUTES_IDLE, ROUTES_SENDING, ROUTES_WATCHING };

struct routes {
	struct loop *loop;
	char *socket_path;
	struct metrics *metrics;
	void (*on_table)(void *data, const struct route_table *t);
	void *data;
	struct route_table *current;
	enum routes_state state;
	int fd;
	struct loop_watch watch;
	struct loop_timer retry;
	struct ipc_reader reader;
	size_t sent;
	uint64_t backoff_ms;
	bool logged_unreachable; /* one log line per outage, not per attempt */
	bool ever_connected;
	bool (*on_event)(void *data, char *line, size_t len); /* (mme), auth, TLS */
	void *event_data;
};

static const char watch_request[] = "{\"op\":\"watch_routes\"}\n";

static void routes_on_event(struct loop_watch *w, uint32_t events);
static void routes_on_retry(struct loop_timer *t);

struct routes *routes_new(struct loop *loop, const char *berthd_socket, struct metrics *metrics,
			  void (*on_table)(void *data, const struct route_table *t), void *data)
{
	struct routes *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->socket_path = strdup(berthd_socket);
	r->current = route_table_new_empty();
	if (!r->socket_path || !r->current) {
		free(r->socket_path);
		route_table_unref(r->current);
		free(r);
		return NULL;
	}
	r->loop = loop;
	r->metrics = metrics;
	r->on_table = on_table;
	r->data = data;
	r->fd = -1;
	r->backoff_ms = ROUTES_BACKOFF_MIN_MS;
	loop_watch_init(&r->watch, routes_on_event);
	loop_timer_init(&r->retry, routes_on_retry);
	return r;
}

static void routes_close(struct routes *r)
{
	loop_watch_del(r->loop, &r->watch);
	if (r->fd >= 0) {
		ipc_reader_free(&r->reader);
		close(r->fd);
		r->fd = -1;
	}
	r->state = ROUTES_IDLE;
	r->metrics->berthd_connected = 0;
}

void routes_free(struct routes *r)
{
	if (!r)
		return;
	routes_close(r);
	loop_timer_cancel(r->loop, &r->retry);
	route_table_unref(r->current);
	free(r->socket_path);
	free(r);
}

struct route_table *routes_current(struct routes *r) { return r->current; }
bool routes_connected(const struct routes *r) { return r->state == ROUTES_WATCHING; }

static void schedule_retry(struct routes *r)
{
	loop_timer_arm_ms(r->loop, &r->retry, r->backoff_ms);
	r->backoff_ms *= 2;
	if (r->backoff_ms > ROUTES_BACKOFF_MAX_MS)
		r->backoff_ms = ROUTES_BACKOFF_MAX_MS;
}

static void lost(struct routes *r, const char *why)
{
	bool was_up = r->state == ROUTES_WATCHING;
	routes_close(r);
	if (was_up) {
		log_warn("lost the connection to berthd at %s (%s); serving the last route table (generation %lld) and reconnecting",
			 r->socket_path, why, r->current->generation);
		r->backoff_ms = ROUTES_BACKOFF_MIN_MS;
		r->logged_unreachable = true;
	} else if (!r->logged_unreachable) {
		log_warn("berthd is not reachable at %s (%s); retrying with back-off", r->socket_path, why);
		r->logged_unreachable = true;
	}
	schedule_retry(r);
}

static void try_send(struct routes *r)
{
	while (r->sent < sizeof(watch_request) - 1) {
		ssize_t n = send(r->fd, watch_request + r->sent, sizeof(watch_request) - 1 - r->sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				loop_watch_mod(r->loop, &r->watch, EPOLLIN | EPOLLOUT);
				return;
			}
			lost(r, strerror(errno));
			return;
		}
		r->sent += (size_t)n;
	}
	loop_watch_mod(r->loop, &r->watch, EPOLLIN);
	r->state = ROUTES_WATCHING;
	r->metrics->berthd_connected = 1;
	r->backoff_ms = ROUTES_BACKOFF_MIN_MS;
	r->logged_unreachable = false;
	log_info("connected to berthd at %s, watching routes", r->socket_path);
	r->ever_connected = true;
}

static void routes_connect(struct routes *r)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(r->socket_path) >= sizeof(addr.sun_path)) {
		lost(r, "socket path too long");
		return;
	}
	strcpy(addr.sun_path, r->socket_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		lost(r, strerror(errno));
		return;
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;
		close(fd);
		lost(r, strerror(e));
		return;
	}
	struct berth_err err;
	if (loop_watch_add(r->loop, &r->watch, fd, EPOLLIN, &err) < 0) {
		close(fd);
		lost(r, err.msg);
		return;
	}
	r->fd = fd;
	ipc_reader_init(&r->reader, fd);
	r->sent = 0;
	r->state = ROUTES_SENDING;
	try_send(r);
}

void routes_start(struct routes *r) { routes_connect(r); }

void routes_set_event_handler(struct routes *r, bool (*fn)(void *data, char *line, size_t len), void *data)
{
	r->on_event = fn;
	r->event_data = data;
}

void routes_berthd_reachable(struct routes *r)
{
	if (r->state != ROUTES_IDLE)
		return;
	loop_timer_cancel(r->loop, &r->retry);
	r->backoff_ms = ROUTES_BACKOFF_MIN_MS;
	routes_connect(r);
}

static void routes_on_retry(struct loop_timer *t)
{
	struct routes *r = container_of(t, struct routes, retry);
	if (r->state == ROUTES_IDLE)
		routes_connect(r);
}

static void install(struct routes *r, const char *line, size_t len)
{
	struct berth_err err;
	struct route_table *t = route_table_parse(line, len, &err);
	if (!t) {
		log_error("ignoring a route table from berthd: %s", err.msg);
		return;
	}
	route_table_unref(r->current);
	r->current = t;
	r->metrics->route_generation = t->generation;
	r->metrics->route_endpoints = (int64_t)t->n_endpoints;
	log_debug("route table generation %lld: %zu endpoints", t->generation, t->n_endpoints);
	if (r->on_table)
		r->on_table(r->data, t);
}

static void routes_on_event(struct loop_watch *w, uint32_t events)
{
	struct routes *r = container_of(w, struct routes, watch);
	if (r->state == ROUTES_SENDING && (events & EPOLLOUT)) {
		try_send(r);
		if (r->state != ROUTES_WATCHING)
			return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		const char *line;
		size_t len;
		int fd = -1;
		struct berth_err err;
		int rc = ipc_read_nonblock(&r->reader, &line, &len, &fd, &err);
		if (fd >= 0)
			close(fd);
		if (rc == 1) {
			/* the line lies in the reader's own buffer: a handler may wipe it */
			if (!(r->on_event && r->on_event(r->event_data, (char *)line, len)))
				install(r, line, len);
			continue;
		}
		if (rc == -2)
			return;
		lost(r, rc == 0 ? "connection closed" : err.msg);
		return;
	}
}
