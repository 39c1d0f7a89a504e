/* test_shim_server.c — the shim's socket (shim/server.c, proto_shim.h) with
 * a real unix socket and the shim's own epoll set: how each request line is
 * decoded and answered (bad JSON, missing or unknown op, out-of-range
 * members), "state" before and after the exit, "stop" answered only once the
 * container has exited, "connect" handing over a TCP socket connected to
 * 127.0.0.1:PORT (the test's own network namespace stands in for the
 * container's), and requests sent in one write answered in order. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exit.h"
#include "fsutil.h"
#include "ipc.h"
#include "json.h"
#include "server.h"
#include "shim.h"

struct server_fixture {
	char dir[64];
	char socket_path[128];
	struct shim shim;
	int client;             /* the test's end */
	struct ipc_reader reader;
	pid_t child;
};

static int setup(void **state)
{
	struct server_fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/berth-shim-srv-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->socket_path, sizeof(f->socket_path), "%s/c.sock", f->dir);
	f->shim = (struct shim){ .epfd = -1, .signal_fd = -1, .listen_fd = -1, .output_fd = -1, .timer_fd = -1,
				 .own_netns_fd = -1, .container_netns_fd = -1, .log = { .fd = -1 } };
	f->shim.cfg.id = "c0ffee";
	f->shim.cfg.socket_path = f->socket_path;
	f->shim.epfd = epoll_create1(EPOLL_CLOEXEC);
	assert_true(f->shim.epfd >= 0);
	f->shim.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	assert_true(f->shim.timer_fd >= 0);
	struct berth_err err;
	assert_int_equal(server_listen(&f->shim, &err), 0);
	f->client = ipc_connect(f->socket_path, &err);
	assert_true(f->client >= 0);
	struct timeval tv = { 5, 0 };
	setsockopt(f->client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ipc_reader_init(&f->reader, f->client);
	server_accept(&f->shim);
	assert_non_null(f->shim.clients);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct server_fixture *f = *state;
	server_shutdown(&f->shim);
	ipc_reader_free(&f->reader);
	close(f->client);
	if (f->child > 0) {
		kill(f->child, SIGKILL);
		waitpid(f->child, NULL, 0);
	}
	if (f->shim.own_netns_fd >= 0)
		close(f->shim.own_netns_fd);
	if (f->shim.container_netns_fd >= 0)
		close(f->shim.container_netns_fd);
	close(f->shim.timer_fd);
	close(f->shim.epfd);
	struct berth_err err;
	fs_remove_tree(f->dir, &err);
	free(f);
	return 0;
}

/* One round of the shim's loop for client and connect events (what loop.c
 * dispatches), waiting up to ms. */
static void pump(struct shim *shim, int ms)
{
	struct epoll_event events[8];
	int n = epoll_wait(shim->epfd, events, 8, ms);
	for (int i = 0; i < n; i++) {
		struct shim_watch *w = events[i].data.ptr;
		if (w->kind == WATCH_CLIENT)
			server_client_event(shim, w->client, events[i].events);
		else if (w->kind == WATCH_CONNECT)
			server_connect_event(shim, w->client);
		else if (w->kind == WATCH_LISTEN)
			server_accept(shim);
	}
	server_expire_connects(shim);
	server_collect(shim);
}

static void send_line(struct server_fixture *f, const char *text)
{
	size_t len = strlen(text);
	assert_int_equal(write(f->client, text, len), (ssize_t)len);
}

/* The next answer (pumping the shim until it comes), parsed; *fd gets a
 * passed descriptor or -1. */
static yajl_val next_answer(struct server_fixture *f, int *fd)
{
	for (int i = 0; i < 50 && f->reader.in.len <= f->reader.consumed; i++) {
		pump(&f->shim, 20);
		struct pollfd p = { .fd = f->client, .events = POLLIN };
		if (poll(&p, 1, 0) > 0)
			break;
	}
	const char *line;
	size_t len;
	struct berth_err err;
	assert_int_equal(ipc_read(&f->reader, &line, &len, fd, &err), 1);
	yajl_val v = json_parse(line, len, &err);
	assert_non_null(v);
	return v;
}

/* Sends one request and checks the answer is {"ok":false,"error":want}. */
static void expect_refusal(struct server_fixture *f, const char *request, const char *want)
{
	send_line(f, request);
	yajl_val v = next_answer(f, NULL);
	bool ok = true;
	assert_true(json_get_bool(v, "ok", &ok));
	assert_false(ok);
	const char *got = json_get_string(v, "error");
	assert_non_null(got);
	if (strcmp(got, want) != 0)
		print_error("error: %s\n", got);
	assert_string_equal(got, want);
	yajl_tree_free(v);
}

static void test_shim_server_refuses_bad_requests_with_a_reason(void **state)
{
	struct server_fixture *f = *state;
	send_line(f, "{not json\n");
	yajl_val v = next_answer(f, NULL);
	const char *e = json_get_string(v, "error");
	assert_non_null(e);
	assert_int_equal(strncmp(e, "bad request: ", 13), 0);
	yajl_tree_free(v);
	expect_refusal(f, "{\"timeout_ms\":5}\n", "bad request: \"op\" (a string) is required");
	expect_refusal(f, "{\"op\":7}\n", "bad request: \"op\" (a string) is required");
	expect_refusal(f, "{\"op\":\"exec\"}\n", "unknown op \"exec\" (connect, state, stop)");
	/* an unknown op is quoted back cut to 63 bytes */
	char req[256], want[256];
	char name[101];
	memset(name, 'x', 100);
	name[100] = '\0';
	snprintf(req, sizeof(req), "{\"op\":\"%s\"}\n", name);
	snprintf(want, sizeof(want), "unknown op \"%.63s\" (connect, state, stop)", name);
	expect_refusal(f, req, want);
	expect_refusal(f, "{\"op\":\"stop\",\"timeout_ms\":-1}\n", "\"timeout_ms\" must be an integer from 0 to 86400000");
	expect_refusal(f, "{\"op\":\"stop\",\"timeout_ms\":\"5\"}\n",
		       "\"timeout_ms\" must be an integer from 0 to 86400000");
	expect_refusal(f, "{\"op\":\"stop\",\"timeout_ms\":86400001}\n",
		       "\"timeout_ms\" must be an integer from 0 to 86400000");
	expect_refusal(f, "{\"op\":\"connect\",\"port\":0}\n", "\"port\" must be an integer from 1 to 65535");
	expect_refusal(f, "{\"op\":\"connect\",\"port\":65536}\n", "\"port\" must be an integer from 1 to 65535");
	expect_refusal(f, "{\"op\":\"connect\",\"port\":80.5}\n", "\"port\" must be an integer from 1 to 65535");
	/* the connection stays usable after every refusal */
	assert_non_null(f->shim.clients);
	assert_false(f->shim.clients->closing);
}

static void test_shim_server_state_running_then_stopped(void **state)
{
	struct server_fixture *f = *state;
	f->shim.container_pid = 4242;
	f->shim.started_at = 1700000000;
	send_line(f, "{\"op\":\"state\"}\n");
	yajl_val v = next_answer(f, NULL);
	long long pid = 0, started = 0;
	assert_string_equal(json_get_string(v, "id"), "c0ffee");
	assert_string_equal(json_get_string(v, "state"), "running");
	assert_true(json_get_int64(v, "pid", &pid) && pid == 4242);
	assert_true(json_get_int64(v, "started_at", &started) && started == 1700000000);
	assert_true(YAJL_IS_NULL(json_get(v, "exit_code")));
	assert_true(YAJL_IS_NULL(json_get(v, "signal")));
	yajl_tree_free(v);

	f->shim.exited = true;
	f->shim.exit_status = SIGKILL; /* wait status: killed by signal 9 */
	f->shim.oom_killed = true;
	send_line(f, "{\"op\":\"state\"}\n");
	v = next_answer(f, NULL);
	long long sig = 0;
	bool oom = false;
	assert_string_equal(json_get_string(v, "state"), "stopped");
	assert_true(json_get_int64(v, "signal", &sig) && sig == 9);
	assert_true(YAJL_IS_NULL(json_get(v, "exit_code")));
	assert_true(json_get_bool(v, "oom_killed", &oom) && oom);
	yajl_tree_free(v);
}

static void test_shim_server_pipelined_requests_are_answered_in_order(void **state)
{
	struct server_fixture *f = *state;
	f->shim.container_pid = 1;
	send_line(f, "{\"op\":\"state\"}\n{\"op\":\"nope\"}\n{\"op\":\"state\"}\n");
	yajl_val a = next_answer(f, NULL), b = next_answer(f, NULL), c = next_answer(f, NULL);
	assert_string_equal(json_get_string(a, "state"), "running");
	assert_string_equal(json_get_string(b, "error"), "unknown op \"nope\" (connect, state, stop)");
	assert_string_equal(json_get_string(c, "state"), "running");
	yajl_tree_free(a);
	yajl_tree_free(b);
	yajl_tree_free(c);
}

static void test_shim_server_stop_is_answered_once_the_container_exited(void **state)
{
	struct server_fixture *f = *state;
	f->child = fork();
	assert_true(f->child >= 0);
	if (f->child == 0) {
		for (int i = 0; i < 600; i++)
			usleep(100000);
		_exit(0);
	}
	f->shim.container_pid = f->child;
	send_line(f, "{\"op\":\"stop\",\"timeout_ms\":10000}\n{\"op\":\"state\"}\n");
	pump(&f->shim, 50);
	struct shim_client *c = f->shim.clients;
	assert_non_null(c);
	assert_true(c->waiting_stop);
	assert_true(f->shim.stopping);
	/* the child dies of the SIGTERM; the shim reaps it */
	int status;
	assert_int_equal(waitpid(f->child, &status, 0), f->child);
	f->child = 0;
	shim_exit_remember(&f->shim, f->shim.container_pid, status);
	assert_true(f->shim.exited);
	server_answer_stops(&f->shim);
	yajl_val v = next_answer(f, NULL);
	bool ok = false;
	long long sig = 0;
	assert_true(json_get_bool(v, "ok", &ok) && ok);
	assert_true(json_get_int64(v, "signal", &sig) && sig == SIGTERM);
	assert_true(YAJL_IS_NULL(json_get(v, "exit_code")));
	yajl_tree_free(v);
	/* the state request queued behind the stop: its turn now */
	server_client_event(&f->shim, c, 0);
	v = next_answer(f, NULL);
	assert_string_equal(json_get_string(v, "state"), "stopped");
	yajl_tree_free(v);
}

static void test_shim_server_connect_passes_a_connected_socket(void **state)
{
	struct server_fixture *f = *state;
	struct berth_err err;
	int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(listener >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(listener, 4), 0);
	socklen_t sl = sizeof(sa);
	assert_int_equal(getsockname(listener, (struct sockaddr *)&sa, &sl), 0);
	int port = ntohs(sa.sin_port);

	/* not running yet: refused without touching any namespace */
	char req[64], want[160];
	snprintf(req, sizeof(req), "{\"op\":\"connect\",\"port\":%d}\n", port);
	snprintf(want, sizeof(want), "connect to 127.0.0.1:%d in container c0ffee: container is not running", port);
	expect_refusal(f, req, want);

	f->shim.container_pid = getpid();
	f->shim.own_netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	f->shim.container_netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_true(f->shim.own_netns_fd >= 0 && f->shim.container_netns_fd >= 0);
	send_line(f, req);
	int fd = -1;
	yajl_val v = next_answer(f, &fd);
	bool ok = false;
	assert_true(json_get_bool(v, "ok", &ok) && ok);
	yajl_tree_free(v);
	assert_true(fd >= 0);
	int flags = fcntl(fd, F_GETFL);
	assert_int_equal(flags & O_NONBLOCK, 0); /* handed over in blocking mode */
	int peer = accept(listener, NULL, NULL);
	assert_true(peer >= 0);
	assert_int_equal(write(fd, "ping", 4), 4);
	char got[4];
	assert_int_equal(read(peer, got, 4), 4);
	assert_memory_equal(got, "ping", 4);
	close(peer);
	close(fd);

	/* nothing listens any more: an ordinary refusal naming the port */
	close(listener);
	snprintf(want, sizeof(want), "connect to 127.0.0.1:%d in container c0ffee: Connection refused", port);
	expect_refusal(f, req, want);
	(void)err;
}

static void test_shim_server_refuses_clients_past_the_limit(void **state)
{
	struct server_fixture *f = *state;
	struct berth_err err;
	int extra[SERVER_CLIENTS_MAX];
	size_t n = 0;
	for (; n < SERVER_CLIENTS_MAX; n++) {
		extra[n] = ipc_connect(f->socket_path, &err);
		assert_true(extra[n] >= 0);
		server_accept(&f->shim); /* keeps the listen backlog from filling */
	}
	size_t clients = 0;
	for (struct shim_client *c = f->shim.clients; c; c = c->next)
		clients++;
	assert_int_equal(clients, SERVER_CLIENTS_MAX);
	/* the one past the limit was closed: it reads EOF */
	char b;
	struct timeval tv = { 2, 0 };
	setsockopt(extra[n - 1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(read(extra[n - 1], &b, 1), 0);
	for (size_t i = 0; i < n; i++)
		close(extra[i]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_shim_server_refuses_bad_requests_with_a_reason, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_server_state_running_then_stopped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_server_pipelined_requests_are_answered_in_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shim_server_stop_is_answered_once_the_container_exited, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shim_server_connect_passes_a_connected_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shim_server_refuses_clients_past_the_limit, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
