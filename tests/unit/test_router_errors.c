/* Error rendering and Server-Timing (router/errors.c); the UTF-8 handling
 * of error bodies is tested with common/error_json.c (test_error_json.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "error_json.h"
#include "errors.h"
#include "request.h"

static void message_body(void **state)
{
	(void)state;
	struct berth_buf b = BERTH_BUF_INIT;
	assert_int_equal(error_json_render(&b, NULL, "Endpoint e of account 0 not found."), 0);
	assert_string_equal(b.data, "{\"message\":\"Endpoint e of account 0 not found.\"}");
	buf_reset(&b);
	assert_int_equal(error_json_render(&b, NULL, "quote \" and\nnewline"), 0);
	assert_string_equal(b.data, "{\"message\":\"quote \\\" and\\nnewline\"}");
	buf_reset(&b);
	assert_int_equal(error_json_render(&b, "ServiceUnavailable", "berthd is not reachable at /x: No such file or directory; start berthd"), 0);
	assert_string_equal(b.data, "{\"__type\":\"ServiceUnavailable\",\"message\":\"berthd is not reachable at /x: No such file or directory; start berthd\"}");
	buf_free(&b);
}

static void model_error_body(void **state)
{
	(void)state;
	struct berth_buf b = BERTH_BUF_INIT;
	struct model_error me = { 500, "primary", "boom", 4, "ep", "AllTraffic", "us-east-1", "000000000000", NULL };
	assert_int_equal(render_model_error(&b, &me), 0);
	assert_string_equal(b.data,
			    "{\"message\":\"Received server error (500) from primary with message \\\"boom\\\". See berth logs ep primary for more information.\","
			    "\"OriginalStatusCode\":500,\"OriginalMessage\":\"boom\","
			    "\"LogStreamArn\":\"arn:aws:logs:us-east-1:000000000000:log-group:/aws/sagemaker/Endpoints/ep:log-stream:AllTraffic/primary\"}");
	buf_reset(&b);
	me.original_status = 404;
	me.original = "nope";
	assert_int_equal(render_model_error(&b, &me), 0);
	assert_non_null(strstr(b.data, "Received client error (404) from primary with message \\\"nope\\\""));
	assert_non_null(strstr(b.data, "\"OriginalStatusCode\":404"));
	buf_reset(&b);
	/* invalid UTF-8 from a container is replaced, not refused */
	me.original_status = 0;
	me.original = "a\xff" "b";
	me.original_len = 3;
	assert_int_equal(render_model_error(&b, &me), 0);
	assert_non_null(strstr(b.data, "\"OriginalMessage\":\"a\xef\xbf\xbd" "b\""));
	assert_non_null(strstr(b.data, "Received server error (0) from primary"));
	buf_free(&b);
}

static void server_timing(void **state)
{
	(void)state;
	struct berth_buf b = BERTH_BUF_INIT;
	struct timing_step steps[] = { { "pre", 1500000 }, { "model", 12345678 } };
	assert_int_equal(render_server_timing(&b, 12000, steps, 2, 13900000), 0);
	assert_string_equal(b.data, "route;dur=0.012, pre;dur=1.500, model;dur=12.345, total;dur=13.900");
	buf_reset(&b);
	assert_int_equal(render_server_timing(&b, 0, NULL, 0, 999), 0);
	assert_string_equal(b.data, "route;dur=0.000, total;dur=0.000");
	/* hand-rolled digits (no printf on this path): as printf renders them */
	buf_reset(&b);
	struct timing_step big[] = { { "x", 1000000 }, { "y", 999999999 }, { "z", 10001000000 } };
	assert_int_equal(render_server_timing(&b, 100000, big, 3, UINT64_MAX), 0);
	char want[256];
	snprintf(want, sizeof(want), "route;dur=0.100, x;dur=1.000, y;dur=999.999, z;dur=10001.000, total;dur=%llu.%03llu",
		 (unsigned long long)(UINT64_MAX / 1000000), (unsigned long long)(UINT64_MAX / 1000 % 1000));
	assert_string_equal(b.data, want);
	buf_free(&b);
}

static void append_u64(void **state)
{
	(void)state;
	const unsigned long long values[] = { 0, 1, 9, 10, 99, 100, 4294967295ull, 4294967296ull, 10000000000000000000ull,
					      UINT64_MAX };
	struct berth_buf b = BERTH_BUF_INIT;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char want[32];
		snprintf(want, sizeof(want), "a%llu", values[i]);
		buf_reset(&b);
		assert_int_equal(buf_append_str(&b, "a"), 0);
		assert_int_equal(buf_append_u64(&b, values[i]), 0);
		assert_string_equal(b.data, want);
		assert_int_equal(b.len, strlen(want));
		char digits[BUF_U64_DIGITS];
		size_t n = buf_format_u64(digits, values[i]);
		assert_int_equal(n, strlen(want) - 1);
		assert_memory_equal(digits, want + 1, n);
	}
	buf_free(&b);
}

/* A front end that records what it was asked to send. */
static int sent;
static void fake_send(struct request *req)
{
	(void)req;
	sent++;
}
static const struct request_frontend_ops fake_ops = { .send = fake_send };

static const char *resp_header(const struct request *req, const char *name)
{
	for (size_t i = 0; i < req->n_resp_headers; i++)
		if (strcmp(request_resp_str(req, req->resp_headers[i].name), name) == 0)
			return request_resp_str(req, req->resp_headers[i].value);
	return NULL;
}

static void runtime_error_answer(void **state)
{
	(void)state;
	struct request_pool pool;
	request_pool_init(&pool, 42);
	struct request *req = request_acquire(&pool, 0);
	req->ops = &fake_ops;
	sent = 0;
	respond_runtime_error(req, 400, "ValidationError", "Endpoint %s of account %s not found.", "e", "1");
	assert_int_equal(sent, 1);
	assert_int_equal(req->status, 400);
	assert_string_equal(resp_header(req, "x-amzn-ErrorType"), "ValidationError:");
	assert_string_equal(resp_header(req, "Content-Type"), "application/json");
	assert_string_equal(resp_header(req, "x-amzn-RequestId"), req->id);
	assert_int_equal(strlen(req->id), 36);
	assert_int_equal(req->id[8], '-');
	assert_string_equal(req->resp_body.data, "{\"message\":\"Endpoint e of account 1 not found.\"}");
	/* answering twice is ignored */
	respond_runtime_error(req, 500, "InternalFailure", "again");
	assert_int_equal(sent, 1);
	request_release(&pool, req);

	req = request_acquire(&pool, 0); /* recycled, clean */
	req->ops = &fake_ops;
	assert_false(req->responded);
	assert_int_equal(req->n_headers, 0);
	struct model_error me = { 0, "h", "Connection reset by peer", 24, "e", "v", "r", "a", NULL };
	respond_model_error(req, &me);
	assert_int_equal(req->status, 424);
	assert_string_equal(resp_header(req, "x-amzn-ErrorType"), "ModelError:");
	respond_control_error(req, 503, "ServiceUnavailable", "x");
	request_release(&pool, req);

	req = request_acquire(&pool, 0);
	req->ops = &fake_ops;
	respond_control_error(req, 503, "ServiceUnavailable", "berthd is not reachable at %s: %s; start berthd", "/p", "gone");
	assert_string_equal(resp_header(req, "Content-Type"), "application/x-amz-json-1.1");
	assert_string_equal(req->resp_body.data,
			    "{\"__type\":\"ServiceUnavailable\",\"message\":\"berthd is not reachable at /p: gone; start berthd\"}");
	request_release(&pool, req);
	request_pool_free(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(message_body),
		cmocka_unit_test(model_error_body),
		cmocka_unit_test(server_timing),
		cmocka_unit_test(append_u64),
		cmocka_unit_test(runtime_error_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
