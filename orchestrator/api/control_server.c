/* control_server.c — see control_server.h. */
#include "control_server.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc.h"
#include "json.h"
#include "log.h"
#include "mme.h"

struct control_server {
	int listen_fd;
	char *path;
	struct api_ctx *api;
	struct runtime *rt;
	pthread_t thread;
};

struct connection {
	struct control_server *cs;
	int fd;
};

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
	free(c);
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
		*c = (struct connection){ cs, fd };
		if (pthread_create(&t, &attr, connection_main, c) != 0) {
			log_warn("cannot start a thread for a control connection");
			close(fd);
			free(c);
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
	cs->listen_fd = ipc_listen(socket_path, 0600, err);
	if (cs->listen_fd < 0 || pthread_create(&cs->thread, NULL, accept_main, cs) != 0) {
		if (cs->listen_fd >= 0)
			close(cs->listen_fd);
		else
			berth_err_prefix(err, "control socket");
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
	free(cs->path);
	free(cs);
}
