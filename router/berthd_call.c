/* berthd_call.c — a request line to berthd over its own connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "berthd_call.h"
#include "ipc.h"
#include "loop.h"
#include "routes.h"
#include "server.h"

struct berthd_call {
	struct server *srv;
	int fd;                  /* -1 when not connected (or closed) */
	bool expect_reply;
	bool closed;             /* done ran, or cancelled */
	bool failed_early;       /* the timer delivers UNREACHABLE with early_error */
	struct loop_watch watch;
	struct loop_timer timer;
	struct loop_defer free_defer;
	struct berth_buf out;
	size_t sent;
	struct ipc_reader reader;
	berthd_call_done_fn done;
	void *data;
	char early_error[512];
};

static void call_free_deferred(struct loop_defer *d)
{
	struct berthd_call *c = container_of(d, struct berthd_call, free_defer);
	buf_free(&c->out);
	free(c);
}

/* Unregisters everything; the fd and reader stay until call_release (the
 * answer line lives in the reader). */
static void call_stop(struct berthd_call *c)
{
	c->closed = true;
	loop_watch_del(c->srv->loop, &c->watch);
	loop_timer_cancel(c->srv->loop, &c->timer);
}

static void call_release(struct berthd_call *c)
{
	if (c->fd >= 0) {
		ipc_reader_free(&c->reader);
		close(c->fd);
		c->fd = -1;
	}
	loop_defer(c->srv->loop, &c->free_defer);
}

static void call_finish(struct berthd_call *c, enum berthd_call_outcome outcome, const char *line, size_t len,
			const char *detail)
{
	call_stop(c);
	if (c->done)
		c->done(c->data, outcome, line, len, detail);
	call_release(c);
}

void berthd_call_cancel(struct berthd_call *c)
{
	if (!c || c->closed)
		return;
	call_stop(c);
	call_release(c);
}

/* The message every caller gives its client when berthd cannot be reached. */
static void format_unreachable(char *out, size_t len, const struct server *srv, const char *why)
{
	snprintf(out, len, "berthd is not reachable at %s: %.200s; start berthd", srv->cfg.berthd_socket, why);
}

/* Delivers UNREACHABLE from the loop (timer at 0). */
static void call_fail_soon(struct berthd_call *c, const char *why)
{
	c->failed_early = true;
	format_unreachable(c->early_error, sizeof(c->early_error), c->srv, why);
	loop_watch_del(c->srv->loop, &c->watch);
	loop_timer_arm_ms(c->srv->loop, &c->timer, 0);
}

/* -1 with why filled when the socket refused the line. */
static int call_write(struct berthd_call *c, char *why, size_t why_len)
{
	while (c->sent < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				loop_watch_mod(c->srv->loop, &c->watch, c->expect_reply ? EPOLLIN | EPOLLOUT : EPOLLOUT);
				return 0;
			}
			snprintf(why, why_len, "%s", strerror(errno));
			return -1;
		}
		c->sent += (size_t)n;
	}
	if (c->expect_reply)
		loop_watch_mod(c->srv->loop, &c->watch, EPOLLIN);
	return 0;
}

/* Writes from the loop; true when the call is still going. */
static bool call_write_from_loop(struct berthd_call *c)
{
	char why[256], msg[512];
	if (call_write(c, why, sizeof(why)) < 0) {
		format_unreachable(msg, sizeof(msg), c->srv, why);
		call_finish(c, BERTHD_CALL_UNREACHABLE, NULL, 0, msg);
		return false;
	}
	if (!c->expect_reply && c->sent == c->out.len) {
		call_finish(c, BERTHD_CALL_OK, NULL, 0, NULL);
		return false;
	}
	return true;
}

static void call_on_event(struct loop_watch *w, uint32_t events)
{
	struct berthd_call *c = container_of(w, struct berthd_call, watch);
	if (!c->expect_reply) {
		call_write_from_loop(c); /* also what a hang-up turns into (EPIPE) */
		return;
	}
	if ((events & EPOLLOUT) && c->sent < c->out.len && !call_write_from_loop(c))
		return;
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	const char *line;
	size_t len;
	int fd = -1;
	struct berth_err err;
	int rc = ipc_read_nonblock(&c->reader, &line, &len, &fd, &err);
	if (fd >= 0)
		close(fd);
	if (rc == 1)
		call_finish(c, BERTHD_CALL_OK, line, len, NULL);
	else if (rc != -2)
		call_finish(c, BERTHD_CALL_CLOSED, NULL, 0, rc == 0 ? "end of file" : err.msg);
}

static void call_on_timer(struct loop_timer *t)
{
	struct berthd_call *c = container_of(t, struct berthd_call, timer);
	if (c->failed_early)
		call_finish(c, BERTHD_CALL_UNREACHABLE, NULL, 0, c->early_error);
	else if (!c->expect_reply && c->sent == c->out.len)
		call_finish(c, BERTHD_CALL_OK, NULL, 0, NULL);
	else
		call_finish(c, BERTHD_CALL_TIMED_OUT, NULL, 0, NULL);
}

static struct berthd_call *call_new(struct server *srv, bool expect_reply, berthd_call_done_fn done, void *data)
{
	struct berthd_call *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->srv = srv;
	c->fd = -1;
	c->expect_reply = expect_reply;
	c->done = done;
	c->data = data;
	loop_watch_init(&c->watch, call_on_event);
	loop_timer_init(&c->timer, call_on_timer);
	loop_defer_init(&c->free_defer, call_free_deferred);
	return c;
}

struct berthd_call *berthd_call_fail(struct server *srv, const char *why, berthd_call_done_fn done, void *data)
{
	struct berthd_call *c = call_new(srv, true, done, data);
	if (c)
		call_fail_soon(c, why);
	return c;
}

static int connect_berthd(const char *path, char *why, size_t why_len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(why, why_len, "socket path too long");
		return -1;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(why, why_len, "%s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;
		close(fd);
		snprintf(why, why_len, "%s", e == EAGAIN ? "its listen queue is full" : strerror(e));
		return -1;
	}
	return fd;
}

struct berthd_call *berthd_call_start(struct server *srv, const char *request, size_t len, bool expect_reply,
				      int timeout_ms, berthd_call_done_fn done, void *data)
{
	struct berthd_call *c = call_new(srv, expect_reply, done, data);
	if (!c)
		return NULL;
	if (buf_append(&c->out, request, len) < 0) {
		free(c);
		return NULL;
	}
	char why[256];
	int fd = connect_berthd(srv->cfg.berthd_socket, why, sizeof(why));
	struct berth_err err;
	if (fd >= 0 && loop_watch_add(srv->loop, &c->watch, fd, expect_reply ? EPOLLIN : 0, &err) < 0) {
		close(fd);
		fd = -1;
		snprintf(why, sizeof(why), "%.200s", err.msg);
	}
	if (fd < 0) {
		call_fail_soon(c, why);
		return c;
	}
	c->fd = fd;
	/* berthd is back: its route table may be newer than ours (an endpoint
	 * created through a control call must be invocable at once) */
	routes_berthd_reachable(srv->routes);
	ipc_reader_init(&c->reader, fd);
	loop_timer_arm_ms(srv->loop, &c->timer, (uint64_t)(timeout_ms > 0 ? timeout_ms : 0));
	if (call_write(c, why, sizeof(why)) < 0)
		call_fail_soon(c, why);
	else if (!expect_reply && c->sent == c->out.len)
		loop_timer_arm_ms(srv->loop, &c->timer, 0); /* sent: report from the loop */
	return c;
}
