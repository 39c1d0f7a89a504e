/* control_server.c — see control_server.h. */
#include "control_server.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api_access.h"
#include "clock.h"
#include "devices.h"
#include "ipc.h"
#include "json.h"
#include "log.h"
#include "mme.h"
#include "router_log.h"

/* One listening socket: the admin socket or the router's channel. */
struct channel {
	struct control_server *cs;
	enum control_channel kind;
	int listen_fd;           /* -1 when not open */
	char *path;
	uid_t peer_uid;          /* CONTROL_ROUTER: the only uid let in */
	pthread_t thread;
	bool thread_started;
};

#define CONTROL_STOP_WAIT_MS 10000 /* connections still busy at stop (a request in its grace wait) */

struct connection {
	struct channel *ch;
	int fd;                  /* -1 once handed to the runtime; guarded by cs->mu */
	struct connection *next; /* in cs->conns */
};

struct control_server {
	struct api_ctx *api;
	struct runtime *rt;
	struct channel admin;
	struct channel router;
	/* Connection threads are detached; they are listed here so that stop
	 * can end them and wait until none touches cs, the API or the runtime
	 * any more (berthd frees those right after). */
	pthread_mutex_t mu;
	pthread_cond_t conn_ended;
	struct connection *conns;
	control_shutdown_fn on_shutdown;
	void *on_shutdown_data;
};

/* The connection's thread is done with cs: unlist it (the last thing the
 * thread does with cs) and free it. */
static void connection_end(struct connection *c)
{
	struct control_server *cs = c->ch->cs;
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

/* What the router needs (proto_control.h kinds 1, 2, 4, 5): forwarding
 * the public API its clients call, the route table, multi-model loads and
 * usage. Everything else (ps, mme_list, …) is the CLI's, on the admin
 * socket only. */
static bool router_may(const char *op)
{
	static const char *const offered[] = { "control", "watch_routes", "mme_load", "mme_touch", "auth_verify",
					       "session_pin", "session_unpin", "async_submit" };
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(offered); i++)
		if (strcmp(op, offered[i]) == 0)
			return true;
	return false;
}

static void refuse_op(struct channel *ch, int fd, const char *op)
{
	/* the name is the router's text: escaped, so it cannot start a line of ours */
	char shown[112];
	router_log_format(op, strlen(op), 0, shown, sizeof(shown));
	log_warn("router channel %s: refused operation \"%s\" (the router may use only control, watch_routes, "
		 "mme_load, mme_touch, auth_verify, session_pin, session_unpin, async_submit)", ch->path, shown);
	struct berth_buf out = BERTH_BUF_INIT;
	char msg[256];
	snprintf(msg, sizeof(msg),
		 "operation \"%.64s\" is not offered on the router's channel; the berth CLI uses berthd's admin socket",
		 op);
	struct berth_err err;
	if (json_answer_error(&out, msg) == 0)
		ipc_send(fd, out.data, out.len, -1, &err);
	buf_free(&out);
}

/* The router's channel lets in only the router's uid (its socket file is
 * root:ROUTER_GROUP 0660; this holds even if the file's mode is changed). */
static bool peer_allowed(struct channel *ch, int fd)
{
	if (ch->kind != CONTROL_ROUTER)
		return true;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warn("router channel %s: cannot read the peer's credentials: %s", ch->path, strerror(errno));
		return false;
	}
	if (cred.uid != ch->peer_uid) {
		log_warn("router channel %s: refused a connection from pid %d uid %u (only the router's uid %u may "
			 "connect; the CLI uses the admin socket)",
			 ch->path, (int)cred.pid, (unsigned)cred.uid, (unsigned)ch->peer_uid);
		return false;
	}
	return true;
}

/* A control call: a client's, forwarded by a router with the signed
 * request (always so on the router's channel; on the admin socket when a
 * router run by hand as root uses it), is checked first (api_access.h);
 * the CLI's on the admin socket carries none and is root's own. */
static void reply_control(struct control_server *cs, struct channel *ch, int fd, yajl_val req)
{
	const char *target = json_get_string(req, "target");
	yajl_val body = json_get(req, "body");
	struct api_reply reply = { 0, BERTH_BUF_INIT };
	struct access_principal who;
	if (target == NULL || body == NULL || !YAJL_IS_STRING(body))
		api_reply_error(&reply, BERTH_ERR_SERIALIZATION, "control request without target or body");
	else if ((ch->kind != CONTROL_ROUTER && json_get(req, "headers") == NULL) ||
		 api_access_check(cs->api->access, target, req, body->u.string, strlen(body->u.string),
				  (int64_t)clock_epoch_seconds(), &reply, &who))
		api_handle(cs->api, target, body->u.string, strlen(body->u.string), &reply);
	yajl_gen g = json_gen_new();
	struct berth_buf out = BERTH_BUF_INIT;
	yajl_gen_map_open(g);
	json_gen_kv_int(g, "status", reply.status);
	json_gen_str(g, "body");
	json_gen_strn(g, reply.body.data ? reply.body.data : "{}", reply.body.data ? reply.body.len : 2);
	yajl_gen_map_close(g);
	struct berth_err err;
	if (json_gen_finish(g, &out) < 0 || ipc_send(fd, out.data, out.len, -1, &err) < 0) {
		char shown[112]; /* the caller's text: escaped */
		router_log_format(target ? target : "?", target ? strlen(target) : 1, 0, shown, sizeof(shown));
		log_warn("control reply for %s not delivered", shown);
	}
	buf_free(&out);
	buf_free(&reply.body);
}

/* The router asks about an invocation signed by a key whose day key it
 * does not hold (access.h): {"ok":true} or the refusal to answer with. */
static void reply_auth_verify(struct control_server *cs, int fd, yajl_val req)
{
	const char *key_id = json_get_string(req, "key_id"), *sts = json_get_string(req, "string_to_sign");
	const char *sig = json_get_string(req, "signature"), *endpoint = json_get_string(req, "endpoint");
	/* (async) the action asked about: InvokeEndpoint (also when absent) or InvokeEndpointAsync */
	const char *action = json_get_string(req, "action");
	if (action == NULL || strcmp(action, "sagemaker:InvokeEndpointAsync") != 0)
		action = "sagemaker:InvokeEndpoint";
	struct sigv4_error e = { SIGV4_OK, "" };
	struct access_principal who;
	int64_t now = (int64_t)clock_epoch_seconds();
	enum sigv4_status s;
	if (!key_id || !sts || !sig || !endpoint) {
		e.status = s = SIGV4_INVALID;
		snprintf(e.message, sizeof(e.message), "The request signature could not be checked (malformed question "
			 "from the router).");
	} else if ((s = access_verify_string(cs->api->access, key_id, sts, sig, now, &who, &e)) == SIGV4_OK) {
		s = access_authorize(cs->api->access, &who, action, CRED_KIND_ENDPOINT, endpoint, &e);
	}
	yajl_gen g = json_gen_new();
	struct berth_buf out = BERTH_BUF_INIT;
	yajl_gen_map_open(g);
	json_gen_kv_bool(g, "ok", s == SIGV4_OK);
	if (s != SIGV4_OK) {
		json_gen_kv_str(g, "type", sigv4_error_type(s));
		json_gen_kv_int(g, "status", sigv4_error_http_status(s, true));
		json_gen_kv_str(g, "message", e.message);
	}
	yajl_gen_map_close(g);
	struct berth_err err;
	if (json_gen_finish(g, &out) < 0 || ipc_send(fd, out.data, out.len, -1, &err) < 0)
		log_warn("auth_verify reply not delivered");
	buf_free(&out);
}

static void *connection_main(void *arg)
{
	struct connection *c = arg;
	struct channel *ch = c->ch;
	struct control_server *cs = ch->cs;
	int fd = c->fd;
	if (!peer_allowed(ch, fd)) {
		connection_end(c);
		close(fd);
		return NULL;
	}
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
	} else if (ch->kind == CONTROL_ROUTER && !router_may(op)) {
		refuse_op(ch, fd, op);
	} else if (strcmp(op, "control") == 0) {
		reply_control(cs, ch, fd, req);
	} else if (strcmp(op, "auth_verify") == 0) {
		reply_auth_verify(cs, fd, req);
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
	} else if (strcmp(op, "shutdown") == 0 && ch->kind == CONTROL_ADMIN) {
		bool stop = false;
		json_get_bool(req, "stop_containers", &stop);
		char answer[64];
		int n = snprintf(answer, sizeof(answer), "{\"ok\":true,\"pid\":%d}", (int)getpid());
		ipc_send(fd, answer, (size_t)n, -1, &err);
		log_info("shutdown asked on the admin socket%s", stop ? ", the containers to be stopped" : "");
		if (cs->on_shutdown)
			cs->on_shutdown(cs->on_shutdown_data, stop);
	} else if (ch->kind == CONTROL_ADMIN &&
		   (strcmp(op, "images") == 0 || strcmp(op, "pull") == 0 || strcmp(op, "images_prune") == 0)) {
		/* proto_control.h kind 8; a pull takes what it takes (bounded by
		 * registries.pull_timeout_ms), on this connection's thread */
		tv.tv_sec = 0;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		struct berth_buf out = BERTH_BUF_INIT;
		runtime_images(cs->rt, op, req, &out);
		ipc_send(fd, out.data ? out.data : "{}", out.data ? out.len : 2, -1, &err);
		buf_free(&out);
	} else if (ch->kind == CONTROL_ADMIN && (strcmp(op, "artifacts") == 0 || strcmp(op, "artifacts_prune") == 0)) {
		/* proto_control.h kind 9 */
		struct berth_buf out = BERTH_BUF_INIT;
		runtime_artifacts(cs->rt, op, &out);
		ipc_send(fd, out.data ? out.data : "{}", out.data ? out.len : 2, -1, &err);
		buf_free(&out);
	} else if (strcmp(op, "devices") == 0 && ch->kind == CONTROL_ADMIN && cs->api->runtime.limits != NULL) {
		/* (devices) berth devices: the records say who holds each */
		struct berth_buf out = BERTH_BUF_INIT;
		pthread_mutex_lock(cs->api->lock);
		int dr = devices_describe(cs->api->runtime.limits, &out);
		pthread_mutex_unlock(cs->api->lock);
		if (dr == 0)
			ipc_send(fd, out.data, out.len, -1, &err);
		buf_free(&out);
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
	} else if (strcmp(op, "async_submit") == 0) {
		/* (async) kind 11: answered once the request is durable */
		struct berth_buf out = BERTH_BUF_INIT;
		runtime_async_submit(cs->rt, req, &out);
		if (out.len == 0 || ipc_send(fd, out.data, out.len, -1, &err) < 0)
			log_warn("async_submit reply not delivered (the router answers its client 500; the request, "
				 "if queued, runs)");
		buf_free(&out);
	} else if (strcmp(op, "async_stats") == 0 && ch->kind == CONTROL_ADMIN) {
		/* (async) kind 11: berth describe */
		struct berth_buf out = BERTH_BUF_INIT;
		if (runtime_async_render_stats(cs->rt, "async_stats", &out) == 0)
			ipc_send(fd, out.data, out.len, -1, &err);
		buf_free(&out);
	} else if (strcmp(op, "session_pin") == 0 || strcmp(op, "session_unpin") == 0) {
		/* kind 10: no answer */
		runtime_session_handle(cs->rt, op, req);
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
	struct channel *ch = arg;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (;;) {
		int fd = accept4(ch->listen_fd, NULL, NULL, SOCK_CLOEXEC);
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
		*c = (struct connection){ ch, fd, NULL };
		struct control_server *cs = ch->cs;
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

/* Binds path (mode, then group gid unless (gid_t)-1) and starts accepting. */
static int channel_open(struct control_server *cs, struct channel *ch, enum control_channel kind, const char *path,
			mode_t mode, uid_t peer_uid, gid_t gid, struct berth_err *err)
{
	*ch = (struct channel){ .cs = cs, .kind = kind, .listen_fd = -1, .peer_uid = peer_uid };
	if ((ch->path = strdup(path)) == NULL)
		return berth_err_set(err, ENOMEM, "control server");
	ch->listen_fd = ipc_listen(path, mode, err);
	if (ch->listen_fd < 0)
		return berth_err_prefix(err, "%s", kind == CONTROL_ADMIN ? "control socket" : "router channel");
	if (gid != (gid_t)-1 && chown(path, 0, gid) < 0)
		return berth_err_set(err, errno, "cannot give %s to group %u", path, (unsigned)gid);
	int r = pthread_create(&ch->thread, NULL, accept_main, ch);
	if (r != 0)
		return berth_err_set(err, r, "starting the accept thread of %s", path);
	ch->thread_started = true;
	return 0;
}

/* Stops accepting; the channel's connections may still use ch. */
static void channel_stop_accepting(struct channel *ch)
{
	if (ch->listen_fd >= 0) {
		shutdown(ch->listen_fd, SHUT_RDWR);
		if (ch->thread_started)
			pthread_join(ch->thread, NULL);
		close(ch->listen_fd);
		unlink(ch->path);
	}
	ch->listen_fd = -1;
	ch->thread_started = false;
}

/* Once no connection uses ch. */
static void channel_free(struct channel *ch)
{
	channel_stop_accepting(ch);
	free(ch->path);
	ch->path = NULL;
}

struct control_server *control_server_start(const char *socket_path, struct api_ctx *api, struct runtime *rt,
					    struct berth_err *err)
{
	struct control_server *cs = calloc(1, sizeof(*cs));
	if (cs == NULL) {
		berth_err_set(err, ENOMEM, "control server");
		return NULL;
	}
	cs->api = api;
	cs->rt = rt;
	cs->admin.listen_fd = -1;
	cs->router.listen_fd = -1;
	pthread_mutex_init(&cs->mu, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&cs->conn_ended, &attr);
	pthread_condattr_destroy(&attr);
	if (channel_open(cs, &cs->admin, CONTROL_ADMIN, socket_path, 0600, 0, (gid_t)-1, err) < 0) {
		control_server_stop(cs);
		return NULL;
	}
	return cs;
}

int control_server_open_router_channel(struct control_server *cs, const char *path, uid_t router_uid,
				       gid_t router_gid, struct berth_err *err)
{
	if (channel_open(cs, &cs->router, CONTROL_ROUTER, path, 0660, router_uid, router_gid, err) < 0) {
		channel_free(&cs->router); /* nothing was accepted on it */
		return -1;
	}
	return 0;
}

void control_server_on_shutdown(struct control_server *cs, control_shutdown_fn fn, void *data)
{
	cs->on_shutdown = fn;
	cs->on_shutdown_data = data;
}

void control_server_stop(struct control_server *cs)
{
	if (cs == NULL)
		return;
	channel_stop_accepting(&cs->router);
	channel_stop_accepting(&cs->admin);
	/* End the connections still open (their reads and writes fail at once)
	 * and wait until their threads are done with cs. */
	pthread_mutex_lock(&cs->mu);
	for (struct connection *c = cs->conns; c; c = c->next)
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
	long long deadline = clock_now_ms() + CONTROL_STOP_WAIT_MS;
	while (cs->conns != NULL && clock_now_ms() < deadline) {
		clock_cond_wait_ms(&cs->conn_ended, &cs->mu, CLOCK_MONOTONIC, 100);
	}
	bool busy = cs->conns != NULL;
	pthread_mutex_unlock(&cs->mu);
	if (busy) {
		/* never free what a thread still uses */
		log_error("control socket: a connection was still busy %d s after stop; leaving it be",
			  CONTROL_STOP_WAIT_MS / 1000);
		return;
	}
	channel_free(&cs->router);
	channel_free(&cs->admin);
	pthread_cond_destroy(&cs->conn_ended);
	pthread_mutex_destroy(&cs->mu);
	free(cs);
}
