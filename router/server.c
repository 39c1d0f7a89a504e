/* server.c — builds the router's objects, runs the loop, tears down. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "async_metrics.h"
#include "auth.h"
#include "clock.h"
#include "invoke.h"
#include "log.h"
#include "mme.h"
#include "proto_control.h"
#include "routes.h"
#include "server.h"
#include "sessions.h"
#include "tls.h"
#include "upstream.h"

void router_config_defaults(struct router_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->berthd_socket = BERTHD_DEFAULT_SOCKET;
	cfg->invocation_timeout_ms = 60000;
	cfg->max_body_bytes = 6291456;
	cfg->max_step_bytes = ROUTER_INTER_STEP_MAX_BODY;
	cfg->model_wait_ms = 60000;
	cfg->request_timeout_ms = ROUTER_REQUEST_TIMEOUT_MS;
	cfg->max_connections = ROUTER_MAX_CONNECTIONS;
	cfg->max_buffered_bytes = ROUTER_MAX_BUFFERED_BYTES;
	cfg->max_connection_buffered_bytes = ROUTER_MAX_CONNECTION_BUFFERED_BYTES;
	cfg->max_sessions = SESSIONS_DEFAULT_MAX;
	cfg->io_uring = true;
}

static void accept_clients(struct server *srv, const char *why)
{
	if (!srv->awaiting_routes)
		return;
	srv->awaiting_routes = false;
	loop_timer_cancel(srv->loop, &srv->routes_wait);
	if (!srv->draining)
		listener_pause_all(srv->listeners, false);
	log_info("accepting clients (%s)", why);
}

static void on_routes_wait(struct loop_timer *t)
{
	accept_clients(container_of(t, struct server, routes_wait), "no route table yet; serving without one");
}

static void on_route_table(void *data, const struct route_table *t)
{
	struct server *srv = data;
	upstream_prune(srv->upstream, t);
	rmme_prune(srv->mme, t);
	accept_clients(srv, "route table received");
}

/* (mme) a line on the route watch that is not a table */
static bool on_route_event(void *data, char *line, size_t len)
{
	struct server *srv = data;
	if (router_auth_handle_event(srv->auth, line, len) || tls_server_route_event(srv->tls, line, len) ||
	    sessions_route_event(srv->sessions, line, len, (int64_t)clock_epoch_seconds(), invoke_session_tell_berthd, srv) ||
	    async_metrics_route_event(srv->async_metrics, line, len))
		return true;
	return rmme_route_event(srv->mme, line, len);
}

static void on_drain_tick(struct loop_timer *t)
{
	struct server *srv = container_of(t, struct server, drain_timer);
	if (srv->conns.next == &srv->conns || loop_now_ns(srv->loop) >= srv->drain_deadline_ns) {
		loop_stop(srv->loop);
		return;
	}
	loop_timer_arm_ms(srv->loop, &srv->drain_timer, 20);
}

/* First signal: stop accepting, let every connection finish what it is
 * doing (at most ROUTER_DRAIN_MS), then stop. A second signal stops now. */
static void start_drain(struct server *srv)
{
	srv->draining = true;
	listener_close_all(srv->listeners);
	struct client_conn *c = srv->conns.next;
	while (c != &srv->conns) {
		struct client_conn *next = c->next; /* drain may unlink c */
		c->drain(c);
		c = next;
	}
	srv->drain_deadline_ns = loop_now_ns(srv->loop) + ROUTER_DRAIN_MS * 1000000ull;
	loop_timer_arm_ms(srv->loop, &srv->drain_timer, 0);
}

static void on_signal(struct loop_watch *w, uint32_t events)
{
	(void)events;
	struct server *srv = container_of(w, struct server, signal_watch);
	struct signalfd_siginfo si;
	while (read(srv->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo != SIGTERM && si.ssi_signo != SIGINT)
			continue;
		if (srv->draining) {
			log_info("received %s again, stopping now", strsignal((int)si.ssi_signo));
			loop_stop(srv->loop);
			return;
		}
		log_info("received %s, finishing requests in flight (at most %u ms)", strsignal((int)si.ssi_signo),
			 ROUTER_DRAIN_MS);
		start_drain(srv);
	}
}

/* Each client connection needs a descriptor, and one more toward its
 * container while it is being answered: let the connection cap, not
 * EMFILE, be what limits clients. */
static void raise_fd_limit(size_t max_connections)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	rlim_t want = (rlim_t)max_connections * 2 + 256;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		log_warn("open file limit %llu is below the %llu that --max-connections %zu may need; clients beyond it "
			 "wait in the backlog", (unsigned long long)rl.rlim_cur, (unsigned long long)want, max_connections);
}

int server_init(struct server *srv, const struct router_config *cfg, listener_accept_cb accept_client,
		struct berth_err *err)
{
	memset(srv, 0, sizeof(*srv));
	srv->cfg = *cfg;
	srv->buffered.limit = cfg->max_buffered_bytes;
	raise_fd_limit(cfg->max_connections);
	srv->signal_fd = -1;
	srv->conns.next = srv->conns.prev = &srv->conns;
	srv->debug = getenv("BERTH_DEBUG") != NULL;
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)getpid() ^ clock_now_ns();
	request_pool_init(&srv->requests, seed);
	if (loop_new(&srv->loop, srv->cfg.io_uring, err) < 0)
		return -1;
	char backend[192];
	log_info("socket I/O: %s", loop_io_backend(srv->loop, backend, sizeof(backend)));
	signal(SIGPIPE, SIG_IGN);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	srv->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv->signal_fd < 0)
		return berth_err_set(err, errno, "signalfd");
	loop_watch_init(&srv->signal_watch, on_signal);
	loop_timer_init(&srv->drain_timer, on_drain_tick);
	if (loop_watch_add(srv->loop, &srv->signal_watch, srv->signal_fd, EPOLLIN, err) < 0)
		return -1;
	srv->upstream = upstream_new(srv->loop, &srv->metrics, cfg->invocation_timeout_ms, cfg->max_body_bytes, srv->debug);
	srv->routes = routes_new(srv->loop, cfg->berthd_socket, &srv->metrics, on_route_table, srv);
	srv->invoker = invoker_new(srv);
	srv->mme = rmme_new(srv);
	srv->sessions = sessions_new(cfg->max_sessions);
	srv->async_metrics = async_metrics_new(); /* (async) */
	srv->auth = router_auth_new();
	srv->listeners = listeners_new(srv->loop, accept_client, srv);
	srv->tls = tls_server_new(srv);
	if (srv->routes && srv->mme)
		routes_set_event_handler(srv->routes, on_route_event, srv);
	if (!srv->upstream || !srv->routes || !srv->invoker || !srv->mme || !srv->sessions || !srv->async_metrics || !srv->auth || !srv->listeners || !srv->tls)
		return berth_err_set(err, ENOMEM, "router");
	for (size_t i = 0; i < cfg->n_listen_fds; i++)
		if (listener_adopt(srv->listeners, cfg->listen_fds[i], ROUTER_LISTEN_ANY, err) < 0)
			return -1;
	for (size_t i = 0; i < cfg->n_tls_listen_fds; i++)
		if (listener_adopt(srv->listeners, cfg->tls_listen_fds[i], ROUTER_LISTEN_TLS_ONLY, err) < 0)
			return -1;
	for (size_t i = 0; i < cfg->n_listen; i++)
		if (listener_open(srv->listeners, cfg->listen[i], ROUTER_LISTEN_ANY, err) < 0)
			return -1;
	for (size_t i = 0; i < cfg->n_tls_listen; i++)
		if (listener_open(srv->listeners, cfg->tls_listen[i], ROUTER_LISTEN_TLS_ONLY, err) < 0)
			return -1;
	if (cfg->n_tls_listen + cfg->n_tls_listen_fds > 0)
		log_info("%zu address%s TLS only: a certificate comes from berthd", cfg->n_tls_listen + cfg->n_tls_listen_fds,
			 cfg->n_tls_listen + cfg->n_tls_listen_fds == 1 ? " is" : "es are");
	loop_timer_init(&srv->routes_wait, on_routes_wait);
	if (cfg->n_listen_fds + cfg->n_tls_listen_fds > 0) { /* a restart: take clients once routes are known */
		srv->awaiting_routes = true;
		listener_pause_all(srv->listeners, true);
		loop_timer_arm_ms(srv->loop, &srv->routes_wait, ROUTER_FIRST_ROUTES_WAIT_MS);
	}
	return 0;
}

int server_run(struct server *srv, struct berth_err *err)
{
	log_info("started: berthd socket %s, invocation timeout %llu ms, max body %zu bytes", srv->cfg.berthd_socket,
		 (unsigned long long)srv->cfg.invocation_timeout_ms, srv->cfg.max_body_bytes);
	routes_start(srv->routes);
	int r = loop_run(srv->loop, err);
	log_info("stopped");
	return r;
}

void server_fini(struct server *srv)
{
	if (!srv->loop)
		return;
	listeners_free(srv->listeners);
	srv->listeners = NULL;
	loop_timer_cancel(srv->loop, &srv->drain_timer);
	while (srv->conns.next != &srv->conns)
		srv->conns.next->close(srv->conns.next);
	loop_run_deferred(srv->loop);
	invoker_free(srv->invoker);
	if (srv->mme)
		rmme_free(srv->mme);
	sessions_free(srv->sessions);
	srv->sessions = NULL;
	async_metrics_free(srv->async_metrics);
	srv->async_metrics = NULL;
	router_auth_free(srv->auth);
	upstream_free(srv->upstream);
	loop_run_deferred(srv->loop);
	routes_free(srv->routes);
	tls_server_free(srv->tls);
	srv->tls = NULL;
	if (srv->signal_fd >= 0) {
		loop_watch_del(srv->loop, &srv->signal_watch);
		close(srv->signal_fd);
	}
	request_pool_free(&srv->requests);
	loop_free(srv->loop);
	srv->loop = NULL;
}
