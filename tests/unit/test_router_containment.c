/* The router's containment logic that needs no sockets: memory budgets
 * (router/budget.c), request bodies charged to them and the request
 * pool's bound (router/request.c), the 503 a limit answers
 * (router/errors.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "budget.h"
#include "errors.h"
#include "request.h"

static void budgets(void **state)
{
	(void)state;
	struct budget conn = { 0, 100 }, global = { 0, 150 };
	assert_true(budget_charge(&conn, &global, 60));
	assert_false(budget_charge(&conn, &global, 41)); /* conn full: nothing charged */
	assert_int_equal(conn.used, 60);
	assert_int_equal(global.used, 60);
	assert_true(budget_charge(NULL, &global, 80)); /* an HTTP/1.1 body: global only */
	assert_false(budget_charge(&conn, &global, 20)); /* global full */
	assert_true(budget_charge(&conn, &global, 10));
	assert_int_equal(global.used, 150);
	budget_release(&conn, &global, 70);
	assert_int_equal(conn.used, 0);
	assert_int_equal(global.used, 80);
	budget_release(NULL, &global, 1000); /* never below zero */
	assert_int_equal(global.used, 0);
	assert_false(budget_charge(NULL, &global, SIZE_MAX));
}

static void body_charged_by_capacity_and_given_back(void **state)
{
	(void)state;
	struct request_pool pool;
	request_pool_init(&pool, 3);
	struct budget conn = { 0, 4096 }, global = { 0, 1 << 20 };
	struct request *req = request_acquire(&pool, 0);
	char data[1000];
	memset(data, 'x', sizeof(data));
	assert_int_equal(request_append_body(req, &conn, &global, data, sizeof(data)), 0);
	assert_int_equal(conn.used, req->body.cap); /* what is held, not what was sent */
	assert_true(conn.used >= sizeof(data) + 1);
	assert_int_equal(request_append_body(req, &conn, &global, data, sizeof(data)), 0);
	assert_int_equal(request_append_body(req, &conn, &global, data, sizeof(data)), 0);
	assert_int_equal(req->body.len, 3000);
	assert_int_equal(conn.used, req->body.cap);
	assert_int_equal(request_append_body(req, &conn, &global, data, sizeof(data)), 0); /* 4000 fit 4096 */
	assert_int_equal(conn.used, 4096);
	/* the next growth would double past the connection's 4096 */
	assert_int_equal(request_append_body(req, &conn, &global, data, sizeof(data)), 1);
	assert_int_equal(req->body.len, 4000);
	assert_int_equal(conn.used, req->body.cap);
	request_drop_body(req); /* a refused stream gives its bytes back at once */
	assert_int_equal(conn.used, 0);
	assert_int_equal(global.used, 0);
	assert_int_equal(req->body.len, 0);
	assert_int_equal(request_append_body(req, &conn, &global, data, 10), 0);
	assert_int_equal(conn.used, req->body.cap);
	request_release(&pool, req);
	assert_int_equal(conn.used, 0);
	assert_int_equal(global.used, 0);
	request_pool_free(&pool);
}

static void pool_keeps_bounded_bytes(void **state)
{
	(void)state;
	struct request_pool pool;
	request_pool_init(&pool, 5);
	struct request *reqs[40];
	char chunk[4096];
	memset(chunk, 'y', sizeof(chunk));
	for (int i = 0; i < 40; i++) {
		reqs[i] = request_acquire(&pool, 0);
		assert_non_null(reqs[i]);
		for (int k = 0; k < 200; k++) /* 800 KiB: kept by the pool on its own */
			assert_int_equal(buf_append(&reqs[i]->body, chunk, sizeof(chunk)), 0);
	}
	for (int i = 0; i < 40; i++)
		request_release(&pool, reqs[i]);
	assert_true(pool.kept_bytes <= (8u << 20));
	assert_true(pool.n_free < 40);
	request_pool_free(&pool);
	assert_int_equal(pool.kept_bytes, 0);
}

static int sent;
static void count_send(struct request *req)
{
	(void)req;
	sent++;
}
static const struct request_frontend_ops counting_ops = { .send = count_send };

static void busy_answer(void **state)
{
	(void)state;
	struct request_pool pool;
	request_pool_init(&pool, 9);
	struct request *req = request_acquire(&pool, 0);
	req->ops = &counting_ops;
	respond_busy(req, "1", "The router serves the maximum of %d client connections at once: retry shortly.", 3);
	assert_true(req->responded);
	assert_int_equal(sent, 1);
	assert_int_equal(req->status, 503);
	bool retry = false, type = false;
	for (size_t i = 0; i < req->n_resp_headers; i++) {
		const char *name = request_resp_str(req, req->resp_headers[i].name);
		const char *value = request_resp_str(req, req->resp_headers[i].value);
		if (strcmp(name, "Retry-After") == 0)
			retry = strcmp(value, "1") == 0;
		if (strcmp(name, "x-amzn-ErrorType") == 0)
			type = strcmp(value, "ServiceUnavailable:") == 0;
	}
	assert_true(retry);
	assert_true(type);
	assert_string_equal(req->resp_body.data, "{\"message\":\"The router serves the maximum of 3 client connections at "
						"once: retry shortly.\"}");
	request_release(&pool, req);
	request_pool_free(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(budgets),
		cmocka_unit_test(body_charged_by_capacity_and_given_back),
		cmocka_unit_test(pool_keeps_bounded_bytes),
		cmocka_unit_test(busy_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
