/* control.c — asynchronous control-plane calls to berthd. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "errors.h"
#include "ipc.h"
#include "json.h"
#include "log.h"
#include "routes.h"
#include "server.h"

struct control_call {
	struct server *srv;
	struct request *req;
	int fd;
	struct loop_watch watch;
	struct loop_timer timer;
	struct loop_defer free_defer;
	struct berth_buf out;
	size_t sent;
	struct ipc_reader reader;
};

int control_render_call(struct berth_buf *out, const char *operation, const char *request_id,
			const char *body, size_t body_len)
{
	yajl_gen g = json_gen_new();
	if (!g)
		return -1;
	if (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_kv_str(g, "op", "control") < 0 ||
	    json_gen_kv_str(g, "target", operation) < 0 || json_gen_kv_str(g, "request_id", request_id) < 0 ||
	    json_gen_str(g, "body") < 0 || json_gen_strn(g, body ? body : "", body_len) < 0 ||
	    yajl_gen_map_close(g) != yajl_gen_status_ok) {
		yajl_gen_free(g);
		return -1;
	}
	if (json_gen_finish(g, out) < 0)
		return -1;
	return buf_append(out, "\n", 1);
}

static void call_free_deferred(struct loop_defer *d)
{
	struct control_call *cc = container_of(d, struct control_call, free_defer);
	buf_free(&cc->out);
	free(cc);
}

static void call_close(struct control_call *cc)
{
	loop_watch_del(cc->srv->loop, &cc->watch);
	loop_timer_cancel(cc->srv->loop, &cc->timer);
	if (cc->fd >= 0) {
		ipc_reader_free(&cc->reader);
		close(cc->fd);
		cc->fd = -1;
	}
	cc->req = NULL;
	loop_defer(cc->srv->loop, &cc->free_defer);
}

static void call_cancel(void *arg) { call_close(arg); }

static void call_unavailable(struct control_call *cc, const char *why)
{
	struct request *req = cc->req;
	const char *path = cc->srv->cfg.berthd_socket;
	call_close(cc);
	respond_control_error(req, 503, "ServiceUnavailable", "berthd is not reachable at %s: %s; start berthd", path, why);
}

static void call_reply(struct control_call *cc, const char *line, size_t len)
{
	struct request *req = cc->req;
	struct berth_err err;
	yajl_val v = json_parse(line, len, &err);
	long long status = 0;
	const char *body = v ? json_get_string(v, "body") : NULL;
	if (!v || !json_get_int64(v, "status", &status) || status < 100 || status > 599 || !body) {
		if (v)
			yajl_tree_free(v);
		log_error("malformed control reply from berthd: %.200s", line);
		call_close(cc);
		respond_control_error(req, 500, "InternalFailure", "berthd sent a malformed reply");
		return;
	}
	call_close(cc);
	request_respond(req, (int)status, CONTENT_TYPE_AMZ_JSON, body, strlen(body));
	yajl_tree_free(v);
}

static void call_write(struct control_call *cc)
{
	while (cc->sent < cc->out.len) {
		ssize_t n = send(cc->fd, cc->out.data + cc->sent, cc->out.len - cc->sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				loop_watch_mod(cc->srv->loop, &cc->watch, EPOLLIN | EPOLLOUT);
				return;
			}
			call_unavailable(cc, strerror(errno));
			return;
		}
		cc->sent += (size_t)n;
	}
	loop_watch_mod(cc->srv->loop, &cc->watch, EPOLLIN);
}

static void call_on_event(struct loop_watch *w, uint32_t events)
{
	struct control_call *cc = container_of(w, struct control_call, watch);
	if ((events & EPOLLOUT) && cc->sent < cc->out.len) {
		call_write(cc);
		if (cc->fd < 0)
			return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	const char *line;
	size_t len;
	int fd = -1;
	struct berth_err err;
	int rc = ipc_read_nonblock(&cc->reader, &line, &len, &fd, &err);
	if (fd >= 0)
		close(fd);
	if (rc == 1) {
		call_reply(cc, line, len);
		return;
	}
	if (rc == -2)
		return;
	struct request *req = cc->req;
	call_close(cc);
	respond_control_error(req, 503, "ServiceUnavailable",
			      "berthd closed the connection without answering (%s); it may be restarting, try again",
			      rc == 0 ? "end of file" : err.msg);
}

static void call_on_timer(struct loop_timer *t)
{
	struct control_call *cc = container_of(t, struct control_call, timer);
	struct request *req = cc->req;
	call_close(cc);
	respond_control_error(req, 503, "ServiceUnavailable", "berthd did not answer within %d s; try again",
			      CONTROL_TIMEOUT_MS / 1000);
}

void control_start(struct server *srv, struct request *req, const char *operation)
{
	struct control_call *cc = calloc(1, sizeof(*cc));
	if (!cc) {
		respond_control_error(req, 500, "InternalFailure", "out of memory");
		return;
	}
	cc->srv = srv;
	cc->req = req;
	cc->fd = -1;
	loop_watch_init(&cc->watch, call_on_event);
	loop_timer_init(&cc->timer, call_on_timer);
	loop_defer_init(&cc->free_defer, call_free_deferred);
	if (control_render_call(&cc->out, operation, req->id, req->body.data, req->body.len) < 0) {
		call_close(cc);
		respond_control_error(req, 400, "SerializationException", "The request body is not valid UTF-8 JSON.");
		return;
	}
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	const char *path = srv->cfg.berthd_socket;
	if (strlen(path) >= sizeof(addr.sun_path)) {
		call_unavailable(cc, "socket path too long");
		return;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		call_unavailable(cc, strerror(errno));
		return;
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int e = errno;
		close(fd);
		call_unavailable(cc, e == EAGAIN ? "its listen queue is full" : strerror(e));
		return;
	}
	struct berth_err err;
	if (loop_watch_add(srv->loop, &cc->watch, fd, EPOLLIN, &err) < 0) {
		close(fd);
		call_unavailable(cc, err.msg);
		return;
	}
	cc->fd = fd;
	/* berthd is back: its route table may be newer than ours (an endpoint
	 * created through this very call must be invocable at once) */
	routes_berthd_reachable(srv->routes);
	ipc_reader_init(&cc->reader, fd);
	loop_timer_arm_ms(srv->loop, &cc->timer, CONTROL_TIMEOUT_MS);
	request_set_cancel(req, call_cancel, cc);
	call_write(cc);
}
