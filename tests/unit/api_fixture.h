/* api_fixture.h — what the test_api_*.c files share: a state store in a
 * temporary directory, an api_ctx with a stub runtime whose hooks record
 * their calls (and, like the real runtime, move endpoints to InService or
 * remove them and broadcast), and helpers to call operations and check
 * answers. Header-only: each test is built from one .c file. */
#ifndef BERTH_TEST_API_FIXTURE_H
#define BERTH_TEST_API_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "api.h"
#include "fsutil.h"
#include "json.h"
#include "store.h"

struct fixture {
	char dir[64];
	struct store *store;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct api_ctx ctx;
	/* stub runtime */
	int starts, stops, routes;
	char last_started[64], last_stopped[64];
	const char *start_status;   /* status the start hook moves to; NULL: stay Creating */
	int stop_removes;           /* 1: the stop hook removes the record */
};

static inline void stub_set_status(struct fixture *f, const char *name, const char *status)
{
	const struct endpoint *cur = store_get_endpoint(f->store, name);
	assert_non_null(cur);
	struct endpoint *e = endpoint_dup(cur);
	assert_non_null(e);
	free(e->status);
	e->status = strdup(status);
	struct berth_err err = { 0 };
	assert_int_equal(store_put_endpoint(f->store, e, &err), 0);
	pthread_cond_broadcast(&f->changed);
}

static inline void stub_start(void *data, const char *name)
{
	struct fixture *f = data;
	f->starts++;
	snprintf(f->last_started, sizeof(f->last_started), "%s", name);
	if (f->start_status)
		stub_set_status(f, name, f->start_status);
}

static inline void stub_stop(void *data, const char *name)
{
	struct fixture *f = data;
	f->stops++;
	snprintf(f->last_stopped, sizeof(f->last_stopped), "%s", name);
	if (f->stop_removes) {
		struct berth_err err = { 0 };
		assert_int_equal(store_delete_endpoint(f->store, name, &err), 0);
		pthread_cond_broadcast(&f->changed);
	}
}

static inline void stub_routes(void *data)
{
	((struct fixture *)data)->routes++;
}

static inline int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/berth-unit-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	struct berth_err err = { 0 };
	f->store = store_open(f->dir, &err);
	assert_non_null(f->store);
	pthread_mutex_init(&f->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&f->changed, &attr);
	pthread_condattr_destroy(&attr);
	f->start_status = "InService";
	f->stop_removes = 1;
	f->ctx = (struct api_ctx){
		.store = f->store, .lock = &f->lock, .changed = &f->changed, .region = "us-east-1",
		.account = "000000000000", .grace_ms = 2000,
		.runtime = { .data = f, .endpoint_start = stub_start, .endpoint_stop = stub_stop,
			     .routes_changed = stub_routes },
	};
	*state = f;
	return 0;
}

static inline int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	store_close(f->store);
	struct berth_err err = { 0 };
	fs_remove_tree(f->dir, &err);
	pthread_cond_destroy(&f->changed);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return 0;
}

/* Calls operation with body; the reply's body is owned by the caller. */
static inline struct api_reply call(struct fixture *f, const char *op, const char *body)
{
	struct api_reply reply = { 0, BERTH_BUF_INIT };
	api_handle(&f->ctx, op, body, strlen(body), &reply);
	return reply;
}

/* Checks status and parses the body (a JSON object); free with yajl_tree_free. */
static inline yajl_val expect_json(struct api_reply *reply, int status)
{
	if (reply->status != status)
		print_error("status %d, body %s\n", reply->status, reply->body.data ? reply->body.data : "");
	assert_int_equal(reply->status, status);
	assert_non_null(reply->body.data);
	struct berth_err err = { 0 };
	yajl_val v = json_parse(reply->body.data, reply->body.len, &err);
	assert_non_null(v);
	assert_true(YAJL_IS_OBJECT(v));
	return v;
}

/* Checks an error answer: status, __type and the exact message. Frees reply. */
static inline void expect_error(struct api_reply reply, int status, const char *type, const char *message)
{
	yajl_val v = expect_json(&reply, status);
	assert_int_equal(v->u.object.len, 2);
	assert_string_equal(json_get_string(v, "__type"), type);
	const char *got = json_get_string(v, "message");
	assert_non_null(got);
	if (message)
		assert_string_equal(got, message);
	yajl_tree_free(v);
	buf_free(&reply.body);
}

/* Checks a 200 answer and returns it parsed (caller frees). Frees reply. */
static inline yajl_val expect_ok(struct api_reply reply)
{
	yajl_val v = expect_json(&reply, 200);
	buf_free(&reply.body);
	return v;
}

static inline void call_ok(struct fixture *f, const char *op, const char *body)
{
	yajl_tree_free(expect_ok(call(f, op, body)));
}

#define MODEL_BODY(name) \
	"{\"ModelName\":\"" name "\",\"PrimaryContainer\":{\"Image\":\"oci:/images/echo:latest\"}}"

static inline void make_model(struct fixture *f, const char *name)
{
	char body[512];
	snprintf(body, sizeof(body), "{\"ModelName\":\"%s\",\"PrimaryContainer\":{\"Image\":\"oci:/img\"}}", name);
	call_ok(f, "CreateModel", body);
}

static inline void make_config(struct fixture *f, const char *name, const char *model)
{
	char body[512];
	snprintf(body, sizeof(body),
		 "{\"EndpointConfigName\":\"%s\",\"ProductionVariants\":[{\"VariantName\":\"AllTraffic\","
		 "\"ModelName\":\"%s\",\"InitialInstanceCount\":1,\"InstanceType\":\"ml.m5.large\"}]}",
		 name, model);
	call_ok(f, "CreateEndpointConfig", body);
}

#endif
