/* router_harness.h — what the two router fuzz targets (fuzz_http1.c,
 * fuzz_http2.c) share: a whole berth-router server (server_init, the real
 * route watch, invoker, upstream pools, multi-model cache) whose client
 * connection is one end of a socketpair, exactly as the listener hands an
 * accepted socket to http1_conn_new(); the HTTP/1.1 front decides, as for
 * any client, whether the bytes are HTTP/1.1, h2c Upgrade or the HTTP/2
 * preface. Nothing in the parsing or request handling is replaced.
 *
 * What stands in for the rest of the host: a fake berthd on a unix socket
 * in a temporary directory, which pushes one route table (Single, Serial,
 * Direct, MultiModel, mixed-mode, two-variant and not-InService endpoints) on the route
 * watch and answers every other connection with one canned line (a control
 * call: a 400 ValidationException; an mme_load: loaded as model N); the
 * containers' shim sockets named in the table do not exist, so invocations
 * end in the router's own "cannot reach the container" answers.
 *
 * One input = one client connection: its bytes are written (as fast as the
 * router reads them) while the event loop runs without blocking, the
 * client's answers are read and thrown away, then the client half-closes,
 * and whatever remains is closed and freed, so the target can run
 * millions of iterations. Wall-clock timeouts (tens of seconds) never fire.
 * Header-only: each target is built from one .c file. */
#ifndef BERTH_FUZZ_ROUTER_HARNESS_H
#define BERTH_FUZZ_ROUTER_HARNESS_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "http1.h"
#include "loop.h"
#include "routes.h"
#include "server.h"

#define HARNESS_MAX_ROUNDS 2000      /* loop iterations per input, at most */
#define HARNESS_IDLE_ROUNDS 3        /* rounds without progress = settled */
#define HARNESS_MAX_BERTHD_CONNS 64

static const char harness_table_fmt[] =
	"{\"op\":\"routes\",\"generation\":1,\"account\":\"123456789012\",\"region\":\"us-east-1\",\"endpoints\":["
	"{\"name\":\"creating\",\"status\":\"Creating\",\"mode\":\"Single\",\"variants\":[]},"
	"{\"name\":\"direct\",\"status\":\"InService\",\"mode\":\"Direct\",\"variants\":[{\"name\":\"AllTraffic\",\"weight\":1,"
	"\"instances\":[{\"containers\":[{\"hostname\":\"a\",\"socket\":\"%1$s/a.sock\"},"
	"{\"hostname\":\"b\",\"socket\":\"%1$s/b.sock\"}]}]}]},"
	"{\"name\":\"ep\",\"status\":\"InService\",\"mode\":\"Single\",\"variants\":[{\"name\":\"AllTraffic\",\"weight\":1,"
	"\"instances\":[{\"containers\":[{\"hostname\":\"c1\",\"socket\":\"%1$s/c1.sock\",\"log\":\"%1$s/c1.log\"}]},"
	"{\"containers\":[{\"hostname\":\"c2\",\"socket\":\"%1$s/c2.sock\"}]}]}]},"
	/* each variant in its own mode (the form berthd pushes) */
	"{\"name\":\"mixed\",\"status\":\"InService\",\"variants\":["
	"{\"name\":\"one\",\"weight\":1,\"mode\":\"Single\",\"instances\":[{\"containers\":[{\"hostname\":\"x1\",\"socket\":\"%1$s/c1.sock\"}]}]},"
	"{\"name\":\"dir\",\"weight\":1,\"mode\":\"Direct\",\"instances\":[{\"containers\":[{\"hostname\":\"a\",\"socket\":\"%1$s/a.sock\"},"
	"{\"hostname\":\"b\",\"socket\":\"%1$s/b.sock\"}]}]},"
	"{\"name\":\"ser\",\"weight\":1,\"mode\":\"Serial\",\"instances\":[{\"containers\":[{\"hostname\":\"s1\",\"socket\":\"%1$s/s1.sock\"},"
	"{\"hostname\":\"s2\",\"socket\":\"%1$s/s2.sock\"}]}]},"
	"{\"name\":\"mm\",\"weight\":0,\"mode\":\"MultiModel\",\"instances\":[{\"containers\":[{\"hostname\":\"m\",\"socket\":\"%1$s/m.sock\"}]}]}]},"
	"{\"name\":\"mme\",\"status\":\"InService\",\"mode\":\"MultiModel\",\"variants\":[{\"name\":\"AllTraffic\",\"weight\":1,"
	"\"instances\":[{\"containers\":[{\"hostname\":\"m\",\"socket\":\"%1$s/m.sock\"}]}]}]},"
	"{\"name\":\"serial\",\"status\":\"InService\",\"mode\":\"Serial\",\"variants\":[{\"name\":\"AllTraffic\",\"weight\":1,"
	"\"instances\":[{\"containers\":[{\"hostname\":\"s1\",\"socket\":\"%1$s/s1.sock\"},"
	"{\"hostname\":\"s2\",\"socket\":\"%1$s/s2.sock\"}]}]}]},"
	"{\"name\":\"variants\",\"status\":\"Updating\",\"mode\":\"Single\",\"variants\":["
	"{\"name\":\"A\",\"weight\":1,\"instances\":[{\"containers\":[{\"hostname\":\"va\",\"socket\":\"%1$s/va.sock\"}]}]},"
	"{\"name\":\"B\",\"weight\":3,\"instances\":[{\"containers\":[{\"hostname\":\"vb\",\"socket\":\"%1$s/vb.sock\"}]}]}]}"
	"]}\n";

static const char harness_control_reply[] =
	"{\"status\":400,\"body\":\"{\\\"__type\\\":\\\"ValidationException\\\",\\\"message\\\":\\\"answered by the fuzz harness\\\"}\"}\n";
static const char harness_mme_reply[] = "{\"ok\":true,\"model\":\"0123456789abcdef01234567\",\"load_ms\":1.5}\n";

struct harness_berthd_conn {
	int fd;
	char line[4096];
	size_t len;
};

struct router_harness {
	struct server srv;
	struct loop_timer stopper;
	char dir[64];
	char socket_path[96];
	int berthd_listen;
	int watch_fd;                 /* the route watch: kept open */
	struct harness_berthd_conn conns[HARNESS_MAX_BERTHD_CONNS];
	size_t n_conns;
	uint64_t progress;            /* bytes moved + connections answered */
	bool trace;                   /* BERTH_FUZZ_TRACE set: print what the client got */
};

static inline void harness_die(const char *what)
{
	fprintf(stderr, "router harness: %s: %s\n", what, strerror(errno));
	abort();
}

static inline void harness_on_stopper(struct loop_timer *t)
{
	loop_stop(container_of(t, struct router_harness, stopper)->srv.loop);
}

/* One non-blocking pass of the event loop: ready events, due timers,
 * deferred calls. */
static inline void harness_loop_once(struct router_harness *h)
{
	struct berth_err err;
	loop_timer_arm_ms(h->srv.loop, &h->stopper, 0);
	if (loop_run(h->srv.loop, &err) < 0)
		harness_die("loop_run");
}

/* The fake berthd: accept what connected, answer each complete request line. */
static inline void harness_berthd_service(struct router_harness *h)
{
	for (;;) {
		int fd = accept4(h->berthd_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			break;
		if (h->n_conns == HARNESS_MAX_BERTHD_CONNS) {
			close(fd);
			continue;
		}
		h->conns[h->n_conns++] = (struct harness_berthd_conn){ .fd = fd };
		h->progress++;
	}
	for (size_t i = 0; i < h->n_conns;) {
		struct harness_berthd_conn *c = &h->conns[i];
		ssize_t n = recv(c->fd, c->line + c->len, sizeof(c->line) - 1 - c->len, MSG_DONTWAIT);
		if (n > 0)
			c->len += (size_t)n;
		c->line[c->len] = '\0';
		bool done = n == 0 || (n < 0 && errno != EAGAIN) || c->len == sizeof(c->line) - 1;
		if (memchr(c->line, '\n', c->len) != NULL) {
			const char *reply = strstr(c->line, "\"mme_load\"") ? harness_mme_reply
					    : strstr(c->line, "\"control\"") ? harness_control_reply : NULL;
			if (reply != NULL && send(c->fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
				(void)0; /* the router gave up on it already */
			done = true;
		}
		if (!done) {
			i++;
			continue;
		}
		close(c->fd);
		h->progress++;
		*c = h->conns[--h->n_conns];
	}
}

/* The fake berthd's directory holds only its socket; removed at exit
 * (libFuzzer ends with exit(): the run's time is up, or -runs reached). */
static struct router_harness *harness_at_exit; /* for atexit, which has no user_data */

static void harness_remove_dir(void)
{
	if (harness_at_exit == NULL)
		return;
	unlink(harness_at_exit->socket_path);
	rmdir(harness_at_exit->dir);
}

static inline void harness_init(struct router_harness *h)
{
	memset(h, 0, sizeof(*h));
	h->berthd_listen = h->watch_fd = -1;
	snprintf(h->dir, sizeof(h->dir), "/tmp/berth-fuzz-router-XXXXXX");
	if (mkdtemp(h->dir) == NULL)
		harness_die("mkdtemp");
	snprintf(h->socket_path, sizeof(h->socket_path), "%s/berthd.sock", h->dir);
	harness_at_exit = h;
	atexit(harness_remove_dir);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", h->socket_path);
	h->berthd_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (h->berthd_listen < 0 || bind(h->berthd_listen, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(h->berthd_listen, 128) < 0)
		harness_die("fake berthd socket");

	struct router_config cfg = {
		.berthd_socket = h->socket_path,
		.invocation_timeout_ms = 60000,
		.max_body_bytes = 6291456,
		.max_step_bytes = ROUTER_INTER_STEP_MAX_BODY,
		.model_wait_ms = 60000,
	};
	struct berth_err err;
	if (server_init(&h->srv, &cfg, http1_accept, &err) < 0) {
		fprintf(stderr, "router harness: %s\n", err.msg);
		abort();
	}
	/* server_init blocks SIGINT/SIGTERM for its signalfd: give them back to
	 * libFuzzer, whose handlers end a run cleanly */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	loop_timer_init(&h->stopper, harness_on_stopper);
	h->trace = getenv("BERTH_FUZZ_TRACE") != NULL;

	/* the route watch connects; push the table and wait until it is in */
	routes_start(h->srv.routes);
	for (int round = 0; round < 1000 && routes_current(h->srv.routes)->n_endpoints == 0; round++) {
		harness_loop_once(h);
		if (h->watch_fd < 0) {
			h->watch_fd = accept4(h->berthd_listen, NULL, NULL, SOCK_CLOEXEC);
			if (h->watch_fd >= 0) {
				char table[4096];
				int n = snprintf(table, sizeof(table), harness_table_fmt, h->dir);
				if (n < 0 || (size_t)n >= sizeof(table) || write(h->watch_fd, table, (size_t)n) != n)
					harness_die("route table");
			}
		}
		usleep(1000);
	}
	if (routes_current(h->srv.routes)->n_endpoints == 0) {
		fprintf(stderr, "router harness: the route table never arrived\n");
		abort();
	}
}

/* Runs one client connection that sends prefix then data. */
static inline void harness_run_connection(struct router_harness *h, const void *prefix, size_t prefix_len,
					  const uint8_t *data, size_t size)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		harness_die("socketpair");
	int client = sv[0];
	if (http1_conn_new(&h->srv, sv[1]) < 0)
		harness_die("http1_conn_new");
	size_t sent_prefix = 0, sent = 0;
	bool half_closed = false;
	int idle = 0;
	char sink[65536];
	for (int round = 0; round < HARNESS_MAX_ROUNDS && idle < HARNESS_IDLE_ROUNDS; round++) {
		uint64_t before = h->progress;
		while (sent_prefix < prefix_len) {
			ssize_t n = send(client, (const char *)prefix + sent_prefix, prefix_len - sent_prefix, MSG_NOSIGNAL);
			if (n <= 0)
				break;
			sent_prefix += (size_t)n;
			h->progress += (uint64_t)n;
		}
		while (sent_prefix == prefix_len && sent < size) {
			ssize_t n = send(client, data + sent, size - sent, MSG_NOSIGNAL);
			if (n <= 0)
				break;
			sent += (size_t)n;
			h->progress += (uint64_t)n;
		}
		harness_loop_once(h);
		harness_berthd_service(h);
		for (;;) {
			ssize_t n = recv(client, sink, sizeof(sink), 0);
			if (n <= 0)
				break;
			h->progress += (uint64_t)n;
			if (h->trace)
				fwrite(sink, 1, (size_t)n, stderr);
		}
		if (h->progress == before)
			idle++;
		else
			idle = 0;
		/* everything sent and the router settled: the client says it is done */
		if (idle == HARNESS_IDLE_ROUNDS && !half_closed && sent_prefix == prefix_len && sent == size) {
			shutdown(client, SHUT_WR);
			half_closed = true;
			idle = 0;
		}
	}
	close(client);
	harness_loop_once(h);
	/* whatever the client left behind (an invocation waiting on nothing) */
	while (h->srv.conns.next != &h->srv.conns)
		h->srv.conns.next->close(h->srv.conns.next);
	harness_loop_once(h);
	harness_berthd_service(h);
	/* every connection the front ends opened (HTTP/1.1, or handed over to
	 * HTTP/2) was accounted for when it closed */
	if (h->srv.metrics.client_connections != 0) {
		fprintf(stderr, "router harness: %lld client connections still counted\n",
			(long long)h->srv.metrics.client_connections);
		abort();
	}
}

#endif
