/* control_server.c — see control_server.h. */
#include "control_server.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc.h"
#include "json.h"
#include "log.h"
#include "clock.h"
#include "mme.h"

#define CONTROL_STOP_WAIT_MS 10000 /* connections still busy at stop (a request in its grace wait) */

struct connection {
	struct control_server *cs;
	int fd;                  /* -1 once handed to the runtime; guarded by cs->mu */
	struct connection *next; /* in cs->conns */
};

struct control_server {
	int listen_fd;
	char *path;
	struct api_ctx *api;
	struct runtime *rt;
	pthread_t thread;
	/* Connection threads are detached; they are listed here so that stop
	 * can end them and wait until none touches cs, the API or the runtime
	 * any more (berthd frees those right after). */
	pthread_mutex_t mu;
	pthread_cond_t conn_ended;
	struct connection *conns;
};

/* The connection's thread is done with cs: unlist it (the last thing the
 * thread does with cs) and free it. */
static void connection_end(struct connection *c)
{
	struct control_server *cs = c->cs;
	pthread_mutex_lock(&cs->mu);
	for (struct connection **p = &cs->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	pthread_cond_broadcast(&cs->conn_ended);
	pthread_mutex_unlock(&cs->mu);
	free(c);
}

static void reply_control(struct control_server *cs, int fd, yajl_val req)
{
	const char *target = json_get_string(req, "target");
	yajl_val body = json_get(req, "body");
	struct api_reply reply = { 0, BERTH_BUF_INIT };
	if (target == NULL || body == NULL || !YAJL_IS_STRING(body))
		api_reply_error(&reply, 400, "SerializationException", "control request without target or body");
	else
		api_handle(cs->api, target, body->u.string, strlen(body->u.string), &reply);
	yajl_gen g = json_gen_new();
	struct berth_buf out = BERTH_BUF_INIT;
	yajl_gen_map_open(g);
	json_gen_kv_int(g, "status", reply.status);
	json_gen_str(g, "body");
	json_gen_strn(g, reply.body.data ? reply.body.data : "{}", reply.body.data ? reply.body.len : 2);
	yajl_gen_map_close(g);
	struct berth_err err;
	if (json_gen_finish(g, &out) < 0 || ipc_send(fd, out.data, out.len, -1, &err) < 0)
		log_warn("control reply for %s not delivered", target ? target : "?");
	buf_free(&out);
	buf_free(&reply.body);
}

static void *connection_main(void *arg)
{
	struct connection *c = arg;
	struct control_server *cs = c->cs;
	int fd = c->fd;
	struct timeval tv = { 30, 0 }; /* a client that sends nothing is dropped */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct ipc_reader rd;
	ipc_reader_init(&rd, fd);
	const char *line;
	size_t len;
	struct berth_err err;
	int r = ipc_read(&rd, &line, &len, NULL, &err);
	if (r <= 0) {
		if (r < 0)
			log_debug("control connection: %s", err.msg);
		goto out;
	}
	yajl_val req = json_parse(line, len, &err);
	const char *op = json_get_string(req, "op");
	if (op == NULL) {
		log_warn("control connection sent an unreadable request: %s", req ? "no op" : err.msg);
	} else if (strcmp(op, "control") == 0) {
		reply_control(cs, fd, req);
	} else if (strcmp(op, "watch_routes") == 0) {
		tv.tv_sec = 0;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		pthread_mutex_lock(&cs->mu);
		c->fd = -1; /* stop must not shut down what the runtime owns */
		pthread_mutex_unlock(&cs->mu);
		pthread_mutex_lock(cs->api->lock);
		runtime_add_route_watcher(cs->rt, fd);
		pthread_mutex_unlock(cs->api->lock);
		fd = -1; /* the runtime owns it now */
	} else if (strcmp(op, "ps") == 0) {
		struct berth_buf out = BERTH_BUF_INIT;
		if (runtime_ps(cs->rt, &out) == 0)
			ipc_send(fd, out.data, out.len, -1, &err);
		buf_free(&out);
	} else if (runtime_mme(cs->rt) != NULL &&
		   (strcmp(op, "mme_load") == 0 || strcmp(op, "mme_list") == 0)) {
		/* (mme) proto_control.h kind 4, and mme_list (mme.h) */
		tv.tv_sec = 0;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		struct berth_buf out = BERTH_BUF_INIT;
		if (strcmp(op, "mme_load") == 0)
			mme_handle_load(runtime_mme(cs->rt), req, &out);
		else
			mme_handle_list(runtime_mme(cs->rt), req, &out);
		if (out.len > 0 && ipc_send(fd, out.data, out.len, -1, &err) < 0)
			log_debug("%s reply not delivered: %s", op, err.msg);
		buf_free(&out);
	} else if (strcmp(op, "mme_touch") == 0) {
		/* kind 5: no answer; a router may keep the connection and send more */
		tv.tv_sec = 0;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		for (yajl_val t = req; t != NULL;) {
			if (runtime_mme(cs->rt) != NULL)
				mme_handle_touch(runtime_mme(cs->rt), t);
			if (t != req)
				yajl_tree_free(t);
			t = NULL;
			if (ipc_read(&rd, &line, &len, NULL, &err) == 1)
				t = json_parse(line, len, &err);
		}
	} else {
		log_warn("control connection: unknown op \"%s\"", op);
	}
	yajl_tree_free(req);
out:
	ipc_reader_free(&rd);
	connection_end(c); /* unlisted first, so stop never shuts down a reused fd number */
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void *accept_main(void *arg)
{
	struct control_server *cs = arg;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		int fd = accept4(cs->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
				if (errno == EMFILE || errno == ENFILE)
					usleep(10000);
				continue;
			}
			break; /* the listening socket was shut down */
		}
		struct connection *c = malloc(sizeof(*c));
		pthread_t t;
		if (c == NULL) {
			close(fd);
			continue;
		}
		*c = (struct connection){ cs, fd, NULL };
		pthread_mutex_lock(&cs->mu);
		c->next = cs->conns;
		cs->conns = c;
		pthread_mutex_unlock(&cs->mu);
		if (pthread_create(&t, &attr, connection_main, c) != 0) {
			log_warn("cannot start a thread for a control connection");
			connection_end(c);
			close(fd);
		}
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

struct control_server *control_server_start(const char *socket_path, struct api_ctx *api, struct runtime *rt,
					    struct berth_err *err)
{
	struct control_server *cs = calloc(1, sizeof(*cs));
	if (cs == NULL || (cs->path = strdup(socket_path)) == NULL) {
		free(cs);
		berth_err_set(err, ENOMEM, "control server");
		return NULL;
	}
	cs->api = api;
	cs->rt = rt;
	pthread_mutex_init(&cs->mu, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&cs->conn_ended, &attr);
	pthread_condattr_destroy(&attr);
	cs->listen_fd = ipc_listen(socket_path, 0600, err);
	if (cs->listen_fd < 0 || pthread_create(&cs->thread, NULL, accept_main, cs) != 0) {
		if (cs->listen_fd >= 0)
			close(cs->listen_fd);
		else
			berth_err_prefix(err, "control socket");
		pthread_cond_destroy(&cs->conn_ended);
		pthread_mutex_destroy(&cs->mu);
		free(cs->path);
		free(cs);
		return NULL;
	}
	return cs;
}

void control_server_stop(struct control_server *cs)
{
	if (cs == NULL)
		return;
	shutdown(cs->listen_fd, SHUT_RDWR);
	pthread_join(cs->thread, NULL);
	close(cs->listen_fd);
	unlink(cs->path);
	/* End the connections still open (their reads and writes fail at once)
	 * and wait until their threads are done with cs. */
	pthread_mutex_lock(&cs->mu);
	for (struct connection *c = cs->conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	long long deadline = clock_now_ms() + CONTROL_STOP_WAIT_MS;
	while (cs->conns != NULL && clock_now_ms() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&cs->conn_ended, &cs->mu, &ts);
	}
	bool busy = cs->conns != NULL;
	pthread_mutex_unlock(&cs->mu);
	if (busy) {
		/* never free what a thread still uses */
		log_error("control socket: a connection was still busy %d s after stop; leaving it be",
			  CONTROL_STOP_WAIT_MS / 1000);
		return;
	}
	pthread_cond_destroy(&cs->conn_ended);
	pthread_mutex_destroy(&cs->mu);
	free(cs->path);
	free(cs);
}
