/* test_http_response.c — the shared HTTP/1.1 response parser
 * (common/http_response.c): Content-Length, chunked (extensions,
 * trailers), close-delimited bodies, every split of the input, bounds on
 * head and body, malformed answers, interim answers, callbacks stopping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "err.h"
#include "http_response.h"

/* What the callbacks saw. */
struct seen {
	int status;
	uint64_t content_length;
	bool chunked;
	int heads;
	struct berth_buf headers; /* "name=value\n" each */
	struct berth_buf body;
	int stop_at_body; /* 1: on_body returns -1 */
};

static int on_header(void *u, const char *name, size_t name_len, const char *value, size_t value_len)
{
	struct seen *s = u;
	buf_append(&s->headers, name, name_len);
	buf_append(&s->headers, "=", 1);
	buf_append(&s->headers, value, value_len);
	buf_append(&s->headers, "\n", 1);
	return 0;
}

static int on_head(void *u, int status, uint64_t content_length, bool chunked)
{
	struct seen *s = u;
	s->status = status;
	s->content_length = content_length;
	s->chunked = chunked;
	s->heads++;
	return 0;
}

static int on_body(void *u, const char *at, size_t len)
{
	struct seen *s = u;
	if (s->stop_at_body)
		return -1;
	buf_append(&s->body, at, len);
	return 0;
}

static const struct http_response_callbacks cbs = { on_header, on_head, on_body };

static void seen_free(struct seen *s)
{
	buf_free(&s->headers);
	buf_free(&s->body);
}

/* Feeds text in pieces cut at the given offsets (ascending, 0 < cut < len);
 * then EOF when eof. Returns the last result; *used_total = bytes used. */
static enum http_response_result feed_cut(struct http_response *r, const char *text, size_t len,
					  const size_t *cuts, size_t n_cuts, bool eof, size_t *used_total)
{
	size_t start = 0, total = 0;
	enum http_response_result res = HTTP_RESPONSE_MORE;
	for (size_t i = 0; i <= n_cuts; i++) {
		size_t end = i < n_cuts ? cuts[i] : len;
		size_t used = 0;
		res = http_response_feed(r, text + start, end - start, &used);
		total += used;
		if (res != HTTP_RESPONSE_MORE)
			break;
		start = end;
	}
	if (res == HTTP_RESPONSE_MORE && eof)
		res = http_response_feed(r, NULL, 0, NULL);
	if (used_total)
		*used_total = total;
	return res;
}

static enum http_response_result parse_all(const char *text, size_t max_head, uint64_t max_body, bool eof,
					   struct seen *s, size_t *used)
{
	struct http_response r;
	http_response_init(&r, &cbs, s, max_head, max_body);
	enum http_response_result res = feed_cut(&r, text, strlen(text), NULL, 0, eof, used);
	http_response_free(&r);
	return res;
}

static const char CL_ANSWER[] = "HTTP/1.1 200 OK\r\n"
				"Content-Type: application/json\r\n"
				"X-Amzn-SageMaker-Custom-Attributes: a=1\r\n"
				"Content-Length: 13\r\n"
				"\r\n"
				"{\"ok\": true}\n";

static void test_content_length(void **state)
{
	(void)state;
	struct seen s = { 0 };
	size_t used = 0;
	assert_int_equal(parse_all(CL_ANSWER, 1024, 1024, false, &s, &used), HTTP_RESPONSE_DONE);
	assert_int_equal(used, strlen(CL_ANSWER));
	assert_int_equal(s.status, 200);
	assert_int_equal(s.heads, 1);
	assert_int_equal(s.content_length, 13);
	assert_false(s.chunked);
	assert_string_equal(s.headers.data, "Content-Type=application/json\n"
					    "X-Amzn-SageMaker-Custom-Attributes=a=1\n"
					    "Content-Length=13\n");
	assert_string_equal(s.body.data, "{\"ok\": true}\n");
	seen_free(&s);
}

static const char CHUNKED_ANSWER[] = "HTTP/1.1 201 Created\r\n"
				     "Transfer-Encoding: chunked\r\n"
				     "Content-Type: text/csv\r\n"
				     "\r\n"
				     "5\r\nhello\r\n"
				     "1;name=value;other=\"quoted\"\r\n,\r\n"
				     "B\r\n 0123456789\r\n"
				     "0\r\n"
				     "X-Trailer: t1\r\n"
				     "X-Other-Trailer: t2\r\n"
				     "\r\n";

static void test_chunked(void **state)
{
	(void)state;
	struct seen s = { 0 };
	size_t used = 0;
	assert_int_equal(parse_all(CHUNKED_ANSWER, 1024, 1024, false, &s, &used), HTTP_RESPONSE_DONE);
	assert_int_equal(used, strlen(CHUNKED_ANSWER));
	assert_int_equal(s.status, 201);
	assert_true(s.chunked);
	assert_true(s.content_length == HTTP_RESPONSE_NO_LENGTH);
	/* trailers are not reported as headers */
	assert_string_equal(s.headers.data, "Transfer-Encoding=chunked\nContent-Type=text/csv\n");
	assert_string_equal(s.body.data, "hello, 0123456789");
	seen_free(&s);
}

/* Every way of cutting the answer in two, and one byte at a time, gives
 * the same headers and body. */
static void check_every_split(const char *text, const char *headers, const char *body, int status)
{
	size_t len = strlen(text);
	for (size_t cut = 1; cut < len; cut++) {
		struct seen s = { 0 };
		struct http_response r;
		http_response_init(&r, &cbs, &s, 1024, 1024);
		size_t used = 0;
		assert_int_equal(feed_cut(&r, text, len, &cut, 1, false, &used), HTTP_RESPONSE_DONE);
		assert_int_equal(used, len);
		assert_int_equal(s.status, status);
		assert_int_equal(s.heads, 1);
		assert_string_equal(s.headers.data, headers);
		assert_string_equal(s.body.data ? s.body.data : "", body);
		http_response_free(&r);
		seen_free(&s);
	}
	size_t *cuts = malloc(len * sizeof(*cuts));
	assert_non_null(cuts);
	for (size_t i = 1; i < len; i++)
		cuts[i - 1] = i;
	struct seen s = { 0 };
	struct http_response r;
	http_response_init(&r, &cbs, &s, 1024, 1024);
	size_t used = 0;
	assert_int_equal(feed_cut(&r, text, len, cuts, len - 1, false, &used), HTTP_RESPONSE_DONE);
	assert_int_equal(used, len);
	assert_string_equal(s.headers.data, headers);
	assert_string_equal(s.body.data ? s.body.data : "", body);
	http_response_free(&r);
	seen_free(&s);
	free(cuts);
}

static void test_every_split(void **state)
{
	(void)state;
	check_every_split(CL_ANSWER,
			  "Content-Type=application/json\nX-Amzn-SageMaker-Custom-Attributes=a=1\nContent-Length=13\n",
			  "{\"ok\": true}\n", 200);
	check_every_split(CHUNKED_ANSWER, "Transfer-Encoding=chunked\nContent-Type=text/csv\n", "hello, 0123456789",
			  201);
	check_every_split("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n", "X-A=b\n", "",
			  204);
}

static void test_close_delimited(void **state)
{
	(void)state;
	struct seen s = { 0 };
	const char *text = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end";
	assert_int_equal(parse_all(text, 1024, 1024, true, &s, NULL), HTTP_RESPONSE_DONE);
	assert_string_equal(s.body.data, "until the end");
	seen_free(&s);

	/* without EOF the answer is not complete */
	struct seen s2 = { 0 };
	assert_int_equal(parse_all(text, 1024, 1024, false, &s2, NULL), HTTP_RESPONSE_MORE);
	seen_free(&s2);
}

static void test_early_eof(void **state)
{
	(void)state;
	struct seen s = { 0 };
	struct http_response r;
	/* nothing at all */
	http_response_init(&r, &cbs, &s, 1024, 1024);
	assert_int_equal(http_response_feed(&r, NULL, 0, NULL), HTTP_RESPONSE_EARLY_EOF);
	char what[256];
	http_response_describe(&r, HTTP_RESPONSE_EARLY_EOF, what, sizeof(what));
	assert_string_equal(what, "the connection closed before a complete response");
	/* in the head */
	http_response_reset(&r);
	assert_int_equal(feed_cut(&r, "HTTP/1.1 200 OK\r\nContent-Le", 27, NULL, 0, true, NULL),
			 HTTP_RESPONSE_EARLY_EOF);
	/* in a Content-Length body */
	http_response_reset(&r);
	const char *t = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
	assert_int_equal(feed_cut(&r, t, strlen(t), NULL, 0, true, NULL), HTTP_RESPONSE_EARLY_EOF);
	/* in a chunked body */
	http_response_reset(&r);
	t = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab";
	assert_int_equal(feed_cut(&r, t, strlen(t), NULL, 0, true, NULL), HTTP_RESPONSE_EARLY_EOF);
	http_response_free(&r);
	seen_free(&s);
}

static void test_head_limit(void **state)
{
	(void)state;
	const char *text = "HTTP/1.1 200 OK\r\nX-Big: 0123456789\r\nContent-Length: 2\r\n\r\nok";
	size_t head = strlen(text) - 2;
	/* exactly the head's size passes, one byte less is refused, however fed */
	for (size_t limit = head - 1; limit <= head; limit++) {
		enum http_response_result want = limit == head ? HTTP_RESPONSE_DONE : HTTP_RESPONSE_HEAD_TOO_LARGE;
		struct seen s = { 0 };
		assert_int_equal(parse_all(text, limit, 1024, false, &s, NULL), want);
		if (want == HTTP_RESPONSE_HEAD_TOO_LARGE)
			assert_int_equal(s.heads, 0);
		seen_free(&s);
		for (size_t cut = 1; cut < strlen(text); cut++) {
			struct seen s2 = { 0 };
			struct http_response r;
			http_response_init(&r, &cbs, &s2, limit, 1024);
			assert_int_equal(feed_cut(&r, text, strlen(text), &cut, 1, false, NULL), want);
			http_response_free(&r);
			seen_free(&s2);
		}
	}
	/* a head that never ends is refused once past the limit, not buffered */
	struct http_response r;
	struct seen s = { 0 };
	http_response_init(&r, &cbs, &s, 4096, 1024);
	assert_int_equal(http_response_feed(&r, "HTTP/1.1 200 OK\r\n", 17, NULL), HTTP_RESPONSE_MORE);
	char line[100];
	memset(line, 'a', sizeof(line));
	enum http_response_result res = HTTP_RESPONSE_MORE;
	for (int i = 0; i < 100 && res == HTTP_RESPONSE_MORE; i++)
		res = http_response_feed(&r, line, sizeof(line), NULL);
	assert_int_equal(res, HTTP_RESPONSE_HEAD_TOO_LARGE);
	char what[256];
	http_response_describe(&r, res, what, sizeof(what));
	assert_string_equal(what, "the response's status line and headers exceed the maximum of 4096 bytes");
	http_response_free(&r);
	seen_free(&s);
	/* interim answers count toward the head */
	struct seen s3 = { 0 };
	assert_int_equal(parse_all("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
				   "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
				   60, 1024, false, &s3, NULL),
			 HTTP_RESPONSE_HEAD_TOO_LARGE);
	seen_free(&s3);
}

static void test_body_limit(void **state)
{
	(void)state;
	/* declared: refused at the head, before any body byte */
	struct seen s = { 0 };
	struct http_response r;
	http_response_init(&r, &cbs, &s, 1024, 10);
	const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n";
	assert_int_equal(http_response_feed(&r, head, strlen(head), NULL), HTTP_RESPONSE_BODY_TOO_LARGE);
	assert_int_equal(s.body.len, 0);
	char what[256];
	http_response_describe(&r, HTTP_RESPONSE_BODY_TOO_LARGE, what, sizeof(what));
	assert_string_equal(what, "the response body exceeds the maximum of 10 bytes");
	/* at the limit: fine */
	http_response_reset(&r);
	const char *at = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
	assert_int_equal(http_response_feed(&r, at, strlen(at), NULL), HTTP_RESPONSE_DONE);
	/* chunked: refused once the chunks pass the limit */
	buf_reset(&s.body);
	http_response_reset(&r);
	const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n5\r\n6789a\r\n0\r\n\r\n";
	assert_int_equal(http_response_feed(&r, ch, strlen(ch), NULL), HTTP_RESPONSE_BODY_TOO_LARGE);
	assert_true(s.body.len <= 10);
	/* close-delimited too */
	buf_reset(&s.body);
	http_response_reset(&r);
	const char *cl = "HTTP/1.1 200 OK\r\n\r\n0123456789a";
	assert_int_equal(http_response_feed(&r, cl, strlen(cl), NULL), HTTP_RESPONSE_BODY_TOO_LARGE);
	http_response_free(&r);
	seen_free(&s);
}

static void test_malformed(void **state)
{
	(void)state;
	static const char *bad[] = {
		"HTTP/1.1 abc OK\r\n\r\n",
		"FOO/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
	};
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(bad); i++) {
		struct seen s = { 0 };
		struct http_response r;
		http_response_init(&r, &cbs, &s, 1024, 1024);
		enum http_response_result res = http_response_feed(&r, bad[i], strlen(bad[i]), NULL);
		if (res != HTTP_RESPONSE_MALFORMED)
			fail_msg("case %zu (%s): result %d", i, bad[i], res);
		char what[256];
		http_response_describe(&r, res, what, sizeof(what));
		assert_int_equal(strncmp(what, "malformed HTTP response: ", 25), 0);
		http_response_free(&r);
		seen_free(&s);
	}
	struct seen s = { 0 };
	struct http_response r;
	http_response_init(&r, &cbs, &s, 1024, 1024);
	http_response_feed(&r, "HTTP/1.1 abc", 12, NULL);
	char what[256];
	http_response_describe(&r, HTTP_RESPONSE_MALFORMED, what, sizeof(what));
	assert_string_equal(what, "malformed HTTP response: invalid HTTP status code");
	http_response_free(&r);
	seen_free(&s);
}

static void test_keep_alive_and_next(void **state)
{
	(void)state;
	/* two answers back to back: the first stops at its end */
	const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 500 Oops\r\nContent-Length: 1\r\n\r\nb";
	struct seen s = { 0 };
	struct http_response r;
	http_response_init(&r, &cbs, &s, 1024, 1024);
	size_t used = 0;
	assert_int_equal(http_response_feed(&r, two, strlen(two), &used), HTTP_RESPONSE_DONE);
	assert_int_equal(used, 39);
	assert_true(http_response_keep_alive(&r));
	assert_int_equal(http_response_status(&r), 200);
	http_response_reset(&r);
	buf_reset(&s.body);
	assert_int_equal(http_response_feed(&r, two + used, strlen(two) - used, NULL), HTTP_RESPONSE_DONE);
	assert_int_equal(s.status, 500);
	assert_string_equal(s.body.data, "b");
	/* Connection: close and HTTP/1.0 are not kept */
	http_response_reset(&r);
	const char *close = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(http_response_feed(&r, close, strlen(close), NULL), HTTP_RESPONSE_DONE);
	assert_false(http_response_keep_alive(&r));
	http_response_reset(&r);
	const char *old = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(http_response_feed(&r, old, strlen(old), NULL), HTTP_RESPONSE_DONE);
	assert_false(http_response_keep_alive(&r));
	http_response_free(&r);
	seen_free(&s);
}

static void test_callback_stops(void **state)
{
	(void)state;
	struct seen s = { .stop_at_body = 1 };
	assert_int_equal(parse_all(CL_ANSWER, 1024, 1024, false, &s, NULL), HTTP_RESPONSE_STOPPED);
	assert_int_equal(s.heads, 1);
	seen_free(&s);
}

static void test_switching_protocols_refused(void **state)
{
	(void)state;
	struct seen s = { 0 };
	assert_int_equal(parse_all("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
				   1024, 1024, false, &s, NULL),
			 HTTP_RESPONSE_MALFORMED);
	assert_int_equal(s.heads, 0);
	seen_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_every_split),
		cmocka_unit_test(test_close_delimited),
		cmocka_unit_test(test_early_eof),
		cmocka_unit_test(test_head_limit),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_keep_alive_and_next),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_switching_protocols_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
