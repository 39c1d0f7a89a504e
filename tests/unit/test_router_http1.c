/* HTTP/1.1 front end (router/http1.c) driven over a socketpair, plus the
 * pure helpers around it: response heads, request classification, listen
 * addresses, base64url (HTTP2-Settings), request header storage. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dispatch.h"
#include "http1.h"
#include "http2.h"
#include "netaddr.h"
#include "request.h"
#include "server.h"

/* ---- pure helpers ------------------------------------------------------ */

static void response_head(void **state)
{
	(void)state;
	struct request_pool pool;
	request_pool_init(&pool, 1);
	struct request *req = request_acquire(&pool, 0);
	request_format_id(req->id, 0, 0);
	req->status = 404;
	request_respond_header(req, "x-amzn-RequestId", req->id);
	request_respond_header(req, "Content-Type", "application/json");
	buf_append_str(&req->resp_body, "{}");
	struct berth_buf b = BERTH_BUF_INIT;
	assert_int_equal(http1_render_head(&b, req, 1, false, false), 0);
	assert_string_equal(b.data, "HTTP/1.1 404 Not Found\r\nx-amzn-RequestId: 00000000-0000-4000-8000-000000000000\r\n"
				    "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n");
	buf_reset(&b);
	req->status = 424;
	assert_int_equal(http1_render_head(&b, req, 0, false, true), 0);
	assert_non_null(strstr(b.data, "HTTP/1.0 424 Failed Dependency\r\n"));
	assert_non_null(strstr(b.data, "Connection: keep-alive\r\n"));
	buf_reset(&b);
	assert_int_equal(http1_render_head(&b, req, 1, true, false), 0);
	assert_non_null(strstr(b.data, "Connection: close\r\n"));
	buf_free(&b);
	request_release(&pool, req);
	request_pool_free(&pool);
}

static void classify(void **state)
{
	(void)state;
	struct dispatch_target t;
	t = dispatch_classify(REQUEST_GET, "/ping", NULL);
	assert_int_equal(t.kind, DISPATCH_PING);
	t = dispatch_classify(REQUEST_GET, "/ping?x=1", NULL);
	assert_int_equal(t.kind, DISPATCH_PING);
	t = dispatch_classify(REQUEST_POST, "/ping", NULL);
	assert_int_equal(t.kind, DISPATCH_NOT_FOUND);
	t = dispatch_classify(REQUEST_GET, "/metrics", NULL);
	assert_int_equal(t.kind, DISPATCH_METRICS);
	t = dispatch_classify(REQUEST_POST, "/", "SageMaker.CreateModel");
	assert_int_equal(t.kind, DISPATCH_CONTROL);
	assert_string_equal(t.name, "SageMaker.CreateModel");
	t = dispatch_classify(REQUEST_POST, "/", NULL);
	assert_int_equal(t.kind, DISPATCH_NOT_FOUND);
	t = dispatch_classify(REQUEST_POST, "/endpoints/my-ep/invocations", NULL);
	assert_int_equal(t.kind, DISPATCH_INVOKE);
	assert_int_equal(t.name_len, 5);
	assert_memory_equal(t.name, "my-ep", 5);
	t = dispatch_classify(REQUEST_POST, "/endpoints/my-ep/invocations?x", NULL);
	assert_int_equal(t.kind, DISPATCH_INVOKE);
	t = dispatch_classify(REQUEST_POST, "/endpoints//invocations", NULL);
	assert_int_equal(t.kind, DISPATCH_NOT_FOUND);
	t = dispatch_classify(REQUEST_POST, "/endpoints/a/b/invocations", NULL);
	assert_int_equal(t.kind, DISPATCH_NOT_FOUND);
	t = dispatch_classify(REQUEST_GET, "/endpoints/a/invocations", NULL);
	assert_int_equal(t.kind, DISPATCH_NOT_FOUND);
	assert_false(dispatch_classify(REQUEST_POST, "/endpoints/my-ep/invocations", NULL).stream);
	t = dispatch_classify(REQUEST_POST, "/endpoints/my-ep/invocations-response-stream", NULL);
	assert_int_equal(t.kind, DISPATCH_INVOKE);
	assert_true(t.stream);
	assert_int_equal(t.name_len, 5);
	assert_memory_equal(t.name, "my-ep", 5);
	t = dispatch_classify(REQUEST_POST, "/endpoints//invocations-response-stream", NULL);
	assert_int_equal(t.kind, DISPATCH_NOT_FOUND);
	t = dispatch_classify(REQUEST_POST, "/endpoints/a/b/invocations-response-stream", NULL);
	assert_int_equal(t.kind, DISPATCH_NOT_FOUND);
	t = dispatch_classify(REQUEST_POST, "/endpoints/a/invocations-response-streams", NULL);
	assert_int_equal(t.kind, DISPATCH_NOT_FOUND);
}

static void listen_addresses(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	socklen_t len;
	struct berth_err err;
	assert_int_equal(netaddr_parse("127.0.0.1:8080", &ss, &len, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
	assert_int_equal(netaddr_parse("[::1]:9000", &ss, &len, &err), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 9000);
	assert_int_equal(netaddr_parse("0.0.0.0:0", &ss, &len, &err), 0);
	assert_int_equal(netaddr_parse("127.0.0.1", &ss, &len, &err), -1);
	assert_int_equal(netaddr_parse("127.0.0.1:99999", &ss, &len, &err), -1);
	assert_int_equal(netaddr_parse("[::1]9000", &ss, &len, &err), -1);
	assert_int_equal(netaddr_parse("example.com:80", &ss, &len, &err), -1);
}

static void base64url(void **state)
{
	(void)state;
	uint8_t out[32];
	/* nghttp's HTTP2-Settings */
	long n = base64url_decode("AAMAAABkAAQAAP__", 16, out, sizeof(out));
	assert_int_equal(n, 12);
	assert_int_equal(out[1], 3);
	assert_int_equal(out[5], 0x64);
	assert_int_equal(out[10], 0xff);
	assert_int_equal(base64url_decode("AA!A", 4, out, sizeof(out)), -1);
	assert_int_equal(base64url_decode("AAAAAAAA", 8, out, 2), -1);
	assert_int_equal(base64url_decode("", 0, out, sizeof(out)), 0);
}

static void request_headers(void **state)
{
	(void)state;
	struct request_pool pool;
	request_pool_init(&pool, 1);
	struct request *req = request_acquire(&pool, 0);
	assert_int_equal(request_set_path(req, "/x", 2), 0);
	assert_int_equal(request_add_header(req, "Content-Type", 12, "text/csv", 8), 0);
	size_t len;
	assert_string_equal(request_header(req, "content-type", &len), "text/csv");
	assert_int_equal(len, 8);
	assert_null(request_header(req, "accept", NULL));
	assert_string_equal(request_path(req), "/x");
	for (int i = 1; i < REQUEST_MAX_HEADERS; i++)
		assert_int_equal(request_add_header(req, "a", 1, "b", 1), 0);
	assert_int_equal(request_add_header(req, "one-too-many", 12, "b", 1), -1);
	request_release(&pool, req);
	req = request_acquire(&pool, 0);
	static char big[REQUEST_MAX_HEADER_BYTES];
	memset(big, 'v', sizeof(big));
	assert_int_equal(request_add_header(req, "big", 3, big, sizeof(big)), -1);
	assert_int_equal(request_method_from("POST", 4), REQUEST_POST);
	assert_int_equal(request_method_from("PUT", 3), REQUEST_OTHER);
	request_release(&pool, req);
	request_pool_free(&pool);
}

/* ---- the connection over a socketpair ---------------------------------- */

struct fixture {
	struct server srv;
	int client;
};

static struct loop_timer stopper;
static struct loop *stopper_loop;
static void on_stop(struct loop_timer *t)
{
	(void)t;
	loop_stop(stopper_loop);
}

static int conn_setup(void **state)
{
	static struct fixture f;
	memset(&f, 0, sizeof(f));
	struct berth_err err;
	f.srv.conns.next = f.srv.conns.prev = &f.srv.conns;
	router_config_defaults(&f.srv.cfg);
	f.srv.cfg.max_body_bytes = 100;
	f.srv.buffered.limit = f.srv.cfg.max_buffered_bytes;
	request_pool_init(&f.srv.requests, 7);
	if (loop_new(&f.srv.loop, true, &err) < 0)
		return -1;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	f.client = sv[0];
	if (http1_conn_new(&f.srv, sv[1]) < 0)
		return -1;
	stopper_loop = f.srv.loop;
	*state = &f;
	return 0;
}

static int conn_teardown(void **state)
{
	struct fixture *f = *state;
	while (f->srv.conns.next != &f->srv.conns)
		f->srv.conns.next->close(f->srv.conns.next);
	loop_run_deferred(f->srv.loop);
	loop_timer_cancel(f->srv.loop, &stopper);
	loop_free(f->srv.loop);
	request_pool_free(&f->srv.requests);
	close(f->client);
	return 0;
}

/* Sends text, runs the loop for a moment, returns what came back. */
static const char *exchange(struct fixture *f, const char *text, size_t len)
{
	static char reply[65536];
	if (len && write(f->client, text, len) != (ssize_t)len)
		fail_msg("write: %s", strerror(errno));
	loop_timer_init(&stopper, on_stop);
	loop_timer_arm_ms(f->srv.loop, &stopper, 30);
	struct berth_err err;
	assert_int_equal(loop_run(f->srv.loop, &err), 0);
	ssize_t n = read(f->client, reply, sizeof(reply) - 1);
	reply[n > 0 ? n : 0] = '\0';
	return reply;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void pipelined_in_order(void **state)
{
	struct fixture *f = *state;
	const char req[] = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
			   "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
			   "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
	const char *r = exchange(f, req, sizeof(req) - 1);
	assert_int_equal(count(r, "HTTP/1.1 200 OK"), 2);
	assert_int_equal(count(r, "HTTP/1.1 404 Not Found"), 1);
	const char *a = strstr(r, "200 OK"), *b = strstr(r, "404 Not Found");
	assert_true(a < b);
	assert_non_null(strstr(b, "200 OK"));
	assert_non_null(strstr(r, "{\"message\":\"No route for GET /nope"));
	assert_int_equal(count(r, "x-amzn-RequestId: "), 3);
}

static void split_reads(void **state)
{
	struct fixture *f = *state;
	const char *r = exchange(f, "GET /pi", 7);
	assert_string_equal(r, "");
	r = exchange(f, "ng HTTP/1.1\r\nHo", 15);
	assert_string_equal(r, "");
	r = exchange(f, "st: x\r\n\r\n", 9);
	assert_non_null(strstr(r, "HTTP/1.1 200 OK"));
}

/* The whole-request deadline: a body trickled a byte at a time (the body
 * idle timeout never fires) still ends in 408. */
static void request_deadline(void **state)
{
	struct fixture *f = *state;
	f->srv.cfg.request_timeout_ms = 60;
	const char head[] = "POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\na";
	const char *r = exchange(f, head, sizeof(head) - 1);
	for (int i = 0; i < 20 && !strstr(r, "HTTP/1.1"); i++)
		r = exchange(f, "b", 1);
	assert_non_null(strstr(r, "HTTP/1.1 408 Request Timeout\r\n"));
	assert_non_null(strstr(r, "Connection: close\r\n"));
	assert_non_null(strstr(r, "{\"message\":\"Request timed out: a whole request must arrive within 60 ms.\"}"));
	assert_int_equal(f->srv.metrics.request_timeouts, 1);
}

/* Body bytes past the router's budget: 503 with Retry-After, and the
 * budget is whole again afterwards. */
static void body_budget_busy(void **state)
{
	struct fixture *f = *state;
	f->srv.buffered.limit = 100;
	const char req[] = "POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 90\r\n\r\n"
			   "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890";
	const char *r = exchange(f, req, sizeof(req) - 2);
	assert_non_null(strstr(r, "HTTP/1.1 503 Service Unavailable\r\n"));
	assert_non_null(strstr(r, "Retry-After: 1\r\n"));
	assert_non_null(strstr(r, "x-amzn-ErrorType: ServiceUnavailable:\r\n"));
	assert_non_null(strstr(r, "{\"message\":\"The router holds the maximum of 100 bytes of request bodies in memory: "
				  "retry shortly.\"}"));
	assert_int_equal(f->srv.metrics.refused_busy, 1);
	f->srv.conns.next->close(f->srv.conns.next);
	loop_run_deferred(f->srv.loop);
	assert_int_equal(f->srv.buffered.used, 0);
}

/* At the connection cap, a new connection is answered 503 at once. */
static void connection_cap(void **state)
{
	struct fixture *f = *state;
	f->srv.cfg.max_connections = 1; /* the fixture's connection is open */
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	http1_accept(sv[1], ROUTER_LISTEN_ANY, &f->srv);
	exchange(f, "", 0);
	char reply[4096];
	ssize_t n = read(sv[0], reply, sizeof(reply) - 1);
	assert_true(n > 0);
	reply[n] = '\0';
	assert_non_null(strstr(reply, "HTTP/1.1 503 Service Unavailable\r\n"));
	assert_non_null(strstr(reply, "Retry-After: 1\r\n"));
	assert_non_null(strstr(reply, "The router serves the maximum of 1 client connections at once: retry shortly."));
	assert_int_equal(f->srv.metrics.refused_connections, 1);
	close(sv[0]);
}

static void malformed_request(void **state)
{
	struct fixture *f = *state;
	const char *r = exchange(f, "GARBAGE\r\n\r\n", 11);
	assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request"));
	assert_non_null(strstr(r, "Connection: close"));
	assert_non_null(strstr(r, "{\"message\":\"Malformed HTTP/1.1 request"));
}

static void too_many_headers(void **state)
{
	struct fixture *f = *state;
	static char req[16384];
	size_t n = (size_t)snprintf(req, sizeof(req), "GET /ping HTTP/1.1\r\n");
	for (int i = 0; i < 120; i++)
		n += (size_t)snprintf(req + n, sizeof(req) - n, "X-H%d: v\r\n", i);
	n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n");
	const char *r = exchange(f, req, n);
	assert_non_null(strstr(r, "HTTP/1.1 431 "));
}

static void declared_body_too_large(void **state)
{
	struct fixture *f = *state;
	/* not an invocation (no routes here): the generic 1 MiB limit applies */
	const char req[] = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n";
	const char *r = exchange(f, req, sizeof(req) - 1);
	assert_null(strstr(r, "100 Continue"));
	assert_non_null(strstr(r, "HTTP/1.1 413 "));
	assert_non_null(strstr(r, "Connection: close"));
}

static void invocation_body_too_large(void **state)
{
	struct fixture *f = *state; /* max_body_bytes is 100 in this fixture */
	const char req[] = "POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n";
	const char *r = exchange(f, req, sizeof(req) - 1);
	assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request"));
	assert_non_null(strstr(r, "x-amzn-ErrorType: ValidationError:"));
	assert_non_null(strstr(r, "exceeds the maximum of 100 bytes"));
}

static void chunked_body_too_large(void **state)
{
	struct fixture *f = *state;
	char req[512];
	int n = snprintf(req, sizeof(req), "POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
					   "50\r\n%080d\r\n50\r\n%080d\r\n", 0, 0);
	const char *r = exchange(f, req, (size_t)n);
	assert_non_null(strstr(r, "HTTP/1.1 400 Bad Request"));
	assert_non_null(strstr(r, "160 bytes or more"));
}

static void expect_continue(void **state)
{
	struct fixture *f = *state;
	const char head[] = "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
	const char *r = exchange(f, head, sizeof(head) - 1);
	assert_string_equal(r, "HTTP/1.1 100 Continue\r\n\r\n");
	r = exchange(f, "hello", 5);
	assert_non_null(strstr(r, "HTTP/1.1 404 Not Found"));
}

static void http10_close(void **state)
{
	struct fixture *f = *state;
	const char req[] = "GET /ping HTTP/1.0\r\n\r\n";
	const char *r = exchange(f, req, sizeof(req) - 1);
	assert_non_null(strstr(r, "HTTP/1.0 200 OK"));
	assert_non_null(strstr(r, "Connection: close"));
	r = exchange(f, NULL, 0);
	assert_string_equal(r, ""); /* closed: EOF */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(response_head),
		cmocka_unit_test(classify),
		cmocka_unit_test(listen_addresses),
		cmocka_unit_test(base64url),
		cmocka_unit_test(request_headers),
		cmocka_unit_test_setup_teardown(pipelined_in_order, conn_setup, conn_teardown),
		cmocka_unit_test_setup_teardown(split_reads, conn_setup, conn_teardown),
		cmocka_unit_test_setup_teardown(malformed_request, conn_setup, conn_teardown),
		cmocka_unit_test_setup_teardown(request_deadline, conn_setup, conn_teardown),
		cmocka_unit_test_setup_teardown(body_budget_busy, conn_setup, conn_teardown),
		cmocka_unit_test_setup_teardown(connection_cap, conn_setup, conn_teardown),
		cmocka_unit_test_setup_teardown(too_many_headers, conn_setup, conn_teardown),
		cmocka_unit_test_setup_teardown(declared_body_too_large, conn_setup, conn_teardown),
		cmocka_unit_test_setup_teardown(invocation_body_too_large, conn_setup, conn_teardown),
		cmocka_unit_test_setup_teardown(chunked_body_too_large, conn_setup, conn_teardown),
		cmocka_unit_test_setup_teardown(expect_continue, conn_setup, conn_teardown),
		cmocka_unit_test_setup_teardown(http10_close, conn_setup, conn_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
