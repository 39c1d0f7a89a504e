/* Streamed responses of router/request.c: what a producer is told (go on,
 * wait), when it is resumed, and that a stream keeps its cancel hook until
 * it ends. The front end here records calls and takes bytes as asked. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "request.h"

struct record {
	int sends, mores, ends, resumes, cancels;
};

static struct record *rec_of(struct request *req) { return req->frontend; }

static void rec_send(struct request *req) { rec_of(req)->sends++; }

static int rec_more(struct request *req, const struct iovec *iov, int n)
{
	if (n == 0) {
		rec_of(req)->ends++;
		return 0;
	}
	rec_of(req)->mores++;
	for (int i = 0; i < n; i++)
		if (buf_append(&req->resp_body, iov[i].iov_base, iov[i].iov_len) < 0)
			return -1;
	return 0;
}

static const struct request_frontend_ops rec_ops = { .send = rec_send, .stream_more = rec_more };

static void on_resume(void *arg) { ((struct record *)arg)->resumes++; }
static void on_cancel(void *arg) { ((struct record *)arg)->cancels++; }

static void back_pressure_and_end(void **state)
{
	(void)state;
	struct request_pool pool;
	request_pool_init(&pool, 7);
	struct request *req = request_acquire(&pool, 0);
	struct record r = { 0 };
	req->ops = &rec_ops;
	req->frontend = &r;
	request_set_cancel(req, on_cancel, &r);
	assert_true(request_in_progress(req));

	request_respond_start(req, 200);
	request_stream_begin(req, on_resume);
	assert_int_equal(r.sends, 1);
	assert_true(req->responded && req->streaming);
	assert_true(request_in_progress(req));   /* the stream is not over */
	assert_ptr_equal(req->cancel_arg, &r);   /* still cancellable */

	static char piece[64 << 10];
	struct iovec iov = { piece, sizeof(piece) };
	int writes = 0;
	while (request_stream_write(req, &iov, 1) == 0)
		writes++;
	/* told to wait only past the high-water mark, and not before */
	assert_int_equal(writes, REQUEST_STREAM_HIGH_WATER / sizeof(piece));
	assert_true(request_stream_pending(req) > REQUEST_STREAM_HIGH_WATER);
	assert_true(req->stream_waiting);

	/* the front end writes some: still above the low-water mark, no resume */
	req->resp_body_sent = req->resp_body.len - REQUEST_STREAM_LOW_WATER - 1;
	request_stream_drained(req);
	assert_int_equal(r.resumes, 0);
	/* down to the low-water mark: resumed once */
	req->resp_body_sent = req->resp_body.len - REQUEST_STREAM_LOW_WATER;
	request_stream_drained(req);
	request_stream_drained(req);
	assert_int_equal(r.resumes, 1);
	assert_false(req->stream_waiting);

	request_stream_end(req);
	assert_int_equal(r.ends, 1);
	assert_false(request_in_progress(req));
	assert_null(req->cancel);
	request_abort(req); /* a client gone after the end cancels nothing */
	assert_int_equal(r.cancels, 0);
	assert_int_equal(request_stream_write(req, &iov, 1), -1);
	request_stream_end(req);
	assert_int_equal(r.ends, 1);
	request_release(&pool, req);
	request_pool_free(&pool);
}

static void client_gone_mid_stream_cancels(void **state)
{
	(void)state;
	struct request_pool pool;
	request_pool_init(&pool, 8);
	struct request *req = request_acquire(&pool, 0);
	struct record r = { 0 };
	req->ops = &rec_ops;
	req->frontend = &r;
	request_set_cancel(req, on_cancel, &r);
	request_respond_start(req, 200);
	request_stream_begin(req, on_resume);
	struct iovec iov = { "abc", 3 };
	assert_int_equal(request_stream_write(req, &iov, 1), 0);
	assert_true(request_in_progress(req));
	request_abort(req);
	assert_int_equal(r.cancels, 1);
	request_release(&pool, req);
	request_pool_free(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(back_pressure_and_end),
		cmocka_unit_test(client_gone_mid_stream_cancels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
