/* test_http_client.c — the blocking exchange berthd uses with containers
 * (common/http_client.c), over a socketpair standing in for the container:
 * the request it writes, chunked / close-delimited answers, bounds, the
 * deadline, malformed and cut-short answers. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "clock.h"
#include "err.h"
#include "http_client.h"

struct pair {
	int client, container;
};

static void pair_open(struct pair *p)
{
	int fds[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
	p->client = fds[0];
	p->container = fds[1];
}

static void pair_close(struct pair *p)
{
	close(p->client);
	if (p->container >= 0)
		close(p->container);
}

/* The container's answer, written before the call (the socket holds it). */
static void answer(struct pair *p, const char *text, bool then_close)
{
	assert_int_equal(write(p->container, text, strlen(text)), (ssize_t)strlen(text));
	if (then_close) /* the container's side of the close; it still reads */
		assert_int_equal(shutdown(p->container, SHUT_WR), 0);
}

static void read_request(struct pair *p, char *out, size_t size)
{
	ssize_t n = recv(p->container, out, size - 1, MSG_DONTWAIT);
	assert_true(n > 0);
	out[n] = '\0';
}

static const struct http_client_request PING = {
	.method = "GET", .path = "/ping", .max_head = 1024, .max_body = 1024,
};

static void test_ping_request_and_chunked_answer(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p);
	answer(&p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhea\r\n4\r\nlthy\r\n0\r\nT: 1\r\n\r\n",
	       false);
	int status = 0;
	struct berth_buf body = BERTH_BUF_INIT;
	struct berth_err err;
	assert_int_equal(http_client_exchange(p.client, &PING, 2000, &status, &body, &err), 0);
	assert_int_equal(status, 200);
	assert_string_equal(body.data, "healthy");
	char req[512];
	read_request(&p, req, sizeof(req));
	assert_string_equal(req, "GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
	buf_free(&body);
	pair_close(&p);
}

static void test_post_json(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p);
	answer(&p, "HTTP/1.1 507 Insufficient Storage\r\nContent-Length: 4\r\n\r\nfull", false);
	const char *json = "{\"model_name\":\"m\"}";
	struct http_client_request req = { .method = "POST", .path = "/models", .content_type = "application/json",
					   .body = json, .body_len = strlen(json), .max_head = 1024, .max_body = 1024 };
	int status = 0;
	struct berth_buf body = BERTH_BUF_INIT;
	struct berth_err err;
	assert_int_equal(http_client_exchange(p.client, &req, 2000, &status, &body, &err), 0);
	assert_int_equal(status, 507);
	assert_string_equal(body.data, "full");
	char got[512];
	read_request(&p, got, sizeof(got));
	assert_string_equal(got, "POST /models HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
				 "Content-Type: application/json\r\nContent-Length: 18\r\n\r\n{\"model_name\":\"m\"}");
	/* a body-less DELETE says Content-Length: 0 */
	buf_free(&body);
	pair_close(&p);
	pair_open(&p);
	answer(&p, "HTTP/1.1 204 No Content\r\n\r\n", false);
	struct http_client_request del = { .method = "DELETE", .path = "/models/m", .max_head = 1024, .max_body = 0 };
	assert_int_equal(http_client_exchange(p.client, &del, 2000, &status, NULL, &err), 0);
	assert_int_equal(status, 204);
	read_request(&p, got, sizeof(got));
	assert_string_equal(got, "DELETE /models/m HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
				 "Content-Length: 0\r\n\r\n");
	pair_close(&p);
}

static void test_close_delimited(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p);
	answer(&p, "HTTP/1.0 200 OK\r\n\r\nall of it", true);
	int status = 0;
	struct berth_buf body = BERTH_BUF_INIT;
	struct berth_err err;
	assert_int_equal(http_client_exchange(p.client, &PING, 2000, &status, &body, &err), 0);
	assert_int_equal(status, 200);
	assert_string_equal(body.data, "all of it");
	buf_free(&body);
	pair_close(&p);
}

static void expect_failure(const char *text, bool then_close, const struct http_client_request *req,
			   int errnum, const char *msg)
{
	struct pair p;
	pair_open(&p);
	answer(&p, text, then_close);
	int status = -1;
	struct berth_buf body = BERTH_BUF_INIT;
	struct berth_err err;
	assert_int_equal(http_client_exchange(p.client, req, 2000, &status, &body, &err), -1);
	assert_int_equal(status, 0);
	assert_int_equal(err.errnum, errnum);
	assert_string_equal(err.msg, msg);
	assert_int_equal(body.len, 0); /* never half an answer */
	buf_free(&body);
	pair_close(&p);
}

static void test_failures(void **state)
{
	(void)state;
	expect_failure("HTTP/1.1 2xx OK\r\n\r\n", false, &PING, EPROTO,
		       "GET /ping: malformed HTTP response: invalid HTTP status code");
	expect_failure("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true, &PING, EPROTO,
		       "GET /ping: the connection closed before a complete response");
	expect_failure("", true, &PING, EPROTO, "GET /ping: the connection closed before a complete response");
	expect_failure("HTTP/1.1 200 OK\r\nContent-Length: 1025\r\n\r\n", false, &PING, EMSGSIZE,
		       "GET /ping: the response body exceeds the maximum of 1024 bytes");
	struct http_client_request small = PING;
	small.max_head = 32;
	expect_failure("HTTP/1.1 200 OK\r\nX-Padding: 0123456789abcdef\r\n\r\n", false, &small, EMSGSIZE,
		       "GET /ping: the response's status line and headers exceed the maximum of 32 bytes");
	small = PING;
	small.max_body = 4;
	expect_failure("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", false,
		       &small, EMSGSIZE, "GET /ping: the response body exceeds the maximum of 4 bytes");
}

static void test_deadline(void **state)
{
	(void)state;
	struct pair p;
	pair_open(&p);
	answer(&p, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", false); /* then nothing */
	int status = -1;
	struct berth_err err;
	long long t0 = clock_now_ms();
	assert_int_equal(http_client_exchange(p.client, &PING, 150, &status, NULL, &err), -1);
	long long took = clock_now_ms() - t0;
	assert_true(took >= 150 && took < 1500);
	assert_int_equal(err.errnum, ETIMEDOUT);
	assert_string_equal(err.msg, "GET /ping: no complete response within 150 ms: Connection timed out");
	pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ping_request_and_chunked_answer),
		cmocka_unit_test(test_post_json),
		cmocka_unit_test(test_close_delimited),
		cmocka_unit_test(test_failures),
		cmocka_unit_test(test_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
