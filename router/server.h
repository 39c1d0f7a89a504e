/* server.h — the router's context: configuration and the objects main.c
 * wires together (event loop, listeners, route watch, upstream pools,
 * request pool, metrics, open client connections). Every module receives
 * this struct (or one of its members); there is no global state. */
#ifndef BERTH_ROUTER_SERVER_H
#define BERTH_ROUTER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "err.h"
#include "listener.h"
#include "loop.h"
#include "metrics.h"
#include "request.h"

#define ROUTER_MAX_LISTEN 16
#define ROUTER_CONTROL_MAX_BODY (1u << 20) /* as berthd's API_MAX_BODY_BYTES */
#define ROUTER_OTHER_MAX_BODY (1u << 20)   /* bodies of /ping, /metrics, 404s */
#define ROUTER_INTER_STEP_MAX_BODY (5u << 20) /* Serial: between two containers (default of --max-step-bytes) */

/* Client connection timeouts (slowloris guards). */
#define ROUTER_KEEPALIVE_IDLE_MS 75000u /* between requests */
#define ROUTER_HEADER_TIMEOUT_MS 20000u /* whole request head, from its first byte */
#define ROUTER_BODY_IDLE_MS 30000u      /* no body byte for this long */
#define ROUTER_LINGER_MS 2000u          /* draining after an early rejection */
/* Defaults of the containment flags (router_config_defaults). The request
 * deadline bounds the whole request (head and body) from its first byte,
 * on top of the head and body-idle timeouts above; bodies held in memory
 * are bounded for all clients and, on HTTP/2, per connection. */
#define ROUTER_REQUEST_TIMEOUT_MS 60000u
#define ROUTER_MAX_CONNECTIONS 4096u
#define ROUTER_MAX_BUFFERED_BYTES (256u << 20)
#define ROUTER_MAX_CONNECTION_BUFFERED_BYTES (16u << 20)
#define ROUTER_RETRY_AFTER "1"     /* seconds, on every 503 for a limit */
#define ROUTER_REFUSING_EXTRA 64u  /* connections past the cap still answered 503; beyond, closed at once */

/* Listener tags (listener.h): what an accepted connection may speak. */
#define ROUTER_LISTEN_ANY 0      /* HTTP/1.1, h2c, and TLS once berthd sent a certificate */
#define ROUTER_LISTEN_TLS_ONLY 1 /* TLS only: plain HTTP gets 400 and is closed */

struct router_config {
	const char *listen[ROUTER_MAX_LISTEN]; /* "HOST:PORT", "[::1]:PORT" */
	size_t n_listen;
	int listen_fds[ROUTER_MAX_LISTEN];     /* inherited listening sockets */
	size_t n_listen_fds;
	const char *tls_listen[ROUTER_MAX_LISTEN]; /* TLS-only addresses */
	size_t n_tls_listen;
	int tls_listen_fds[ROUTER_MAX_LISTEN];
	size_t n_tls_listen_fds;
	bool insecure_listen;                  /* a non-loopback --listen is allowed (cleartext) */
	const char *berthd_socket;
	uint64_t invocation_timeout_ms;
	size_t max_body_bytes;
	size_t max_step_bytes;                 /* Serial: a step's answer that feeds the next */
	uint64_t model_wait_ms;                /* MultiModel: wait for a load before 429 ModelNotReadyException */
	uint64_t request_timeout_ms;           /* whole request received within this */
	size_t max_connections;                /* client connections served at once; more get 503 */
	size_t max_buffered_bytes;             /* request bodies held, all connections */
	size_t max_connection_buffered_bytes;  /* request bodies held by one HTTP/2 connection */
	size_t max_sessions;                   /* stateful session pins held (sessions.h) */
	bool io_uring;                         /* batch socket I/O with io_uring when the kernel allows */
};

/* The compiled defaults (main.c's flags override them). */
void router_config_defaults(struct router_config *cfg);

/* A client connection of either protocol, so the server can close them all. */
struct client_conn {
	struct client_conn *prev, *next;
	void (*close)(struct client_conn *c); /* immediate, frees (deferred) */
	void (*drain)(struct client_conn *c); /* finish what is in flight, then close */
};

struct routes;
struct tls_server;
struct upstream;
struct invoker;
struct mme;
struct router_auth;
struct sessions;

struct server {
	struct loop *loop;
	struct router_config cfg;
	bool debug; /* BERTH_DEBUG set: log_debug is worth calling */
	struct request_pool requests;
	struct metrics metrics;
	struct routes *routes;
	struct upstream *upstream;
	struct invoker *invoker;
	struct mme *mme;             /* MultiModel endpoints (mme.h) */
	struct sessions *sessions;   /* stateful session pins (sessions.h) */
	struct async_metrics *async_metrics; /* (async) queue gauges from berthd (async_metrics.h) */
	struct router_auth *auth;    /* access keys and mode from berthd (auth.h) */
	struct listeners *listeners;
	struct tls_server *tls;      /* certificate from berthd, handshakes (tls.h) */
	struct client_conn conns; /* list head */
	struct budget buffered;      /* request body bytes held, every connection */
	int signal_fd;
	struct loop_watch signal_watch;
	bool draining;               /* first SIGTERM/SIGINT: no new work */
	/* Started on inherited sockets (berthd restarting it): clients wait in
	 * the backlog until the first route table is in, at most
	 * ROUTER_FIRST_ROUTES_WAIT_MS, instead of meeting an empty table. */
	bool awaiting_routes;
	struct loop_timer routes_wait;
	struct loop_timer drain_timer;
	uint64_t drain_deadline_ns;
};

#define ROUTER_DRAIN_MS 5000u /* in-flight requests get this long after SIGTERM */
#define ROUTER_FIRST_ROUTES_WAIT_MS 1000u

/* accept_client gets every accepted client socket, with srv as user_data
 * (main.c passes http1_accept): the server knows no protocol. */
int server_init(struct server *srv, const struct router_config *cfg, listener_accept_cb accept_client,
		struct berth_err *err);
/* Runs until SIGTERM/SIGINT. */
int server_run(struct server *srv, struct berth_err *err);
void server_fini(struct server *srv);

/* Inline: every front (http1.c, http2.c, tls.c) links its connections
 * without calling into server.c, which calls them. */
static inline void server_conn_link(struct server *srv, struct client_conn *c)
{
	c->prev = &srv->conns;
	c->next = srv->conns.next;
	srv->conns.next->prev = c;
	srv->conns.next = c;
}

static inline void server_conn_unlink(struct server *srv, struct client_conn *c)
{
	(void)srv;
	if (!c->next)
		return;
	c->prev->next = c->next;
	c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

#endif
