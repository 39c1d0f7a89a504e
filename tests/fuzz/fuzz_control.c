/* fuzz_control.c — libFuzzer target: the control plane's request decoding
 * and validation, every operation, through api_handle() as berthd's control
 * server calls it, on a fresh state store (a temporary directory) per input,
 * with the real host limits hooks (compiled-in instance types) and the real
 * image check. The runtime is the only stand-in: like the real one it moves
 * a started endpoint to InService (rolling an update out) and removes a
 * stopped one, at once.
 *
 * Input: up to FUZZ_MAX_CALLS calls separated by 0 bytes; each call's first
 * byte picks the operation (byte % 16: the 14 operations, then an unknown
 * name and an empty one), the rest is the request body. Every answer must
 * be one of api.h's statuses with a JSON object body; an error must carry
 * __type and message. */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "fsutil.h"
#include "host_limits.h"
#include "image.h"
#include "json.h"
#include "store.h"

#define FUZZ_MAX_CALLS 8

static const char *const operations[16] = {
	"CreateModel", "DescribeModel", "ListModels", "DeleteModel",
	"CreateEndpointConfig", "DescribeEndpointConfig", "ListEndpointConfigs", "DeleteEndpointConfig",
	"CreateEndpoint", "DescribeEndpoint", "ListEndpoints", "DeleteEndpoint",
	"UpdateEndpoint", "UpdateEndpointWeightsAndCapacities", "CreateTrainingJob", "",
};

struct harness {
	bool trace; /* BERTH_FUZZ_TRACE set: print each call's answer (writing seeds) */
	struct store *store;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct limits limits;
	struct api_ctx ctx;
};

/* ---- the runtime stand-in (called with the lock held) ------------------- */

static void stub_start(void *data, const char *name)
{
	struct harness *h = data;
	const struct endpoint *cur = store_get_endpoint(h->store, name);
	if (cur == NULL)
		abort(); /* api promises the record was just persisted */
	struct endpoint *e = endpoint_dup(cur);
	if (e == NULL)
		return;
	if (e->pending_config_name != NULL) { /* an update: the new config rolled out */
		free(e->config_name);
		e->config_name = e->pending_config_name;
		e->pending_config_name = NULL;
	}
	free(e->status);
	e->status = strdup("InService");
	struct berth_err err;
	if (e->status == NULL)
		endpoint_free(e);
	else
		(void)store_put_endpoint(h->store, e, &err); /* takes e, even on failure */
	pthread_cond_broadcast(&h->changed);
}

static void stub_stop(void *data, const char *name)
{
	struct harness *h = data;
	struct berth_err err;
	if (store_delete_endpoint(h->store, name, &err) < 0)
		abort();
	pthread_cond_broadcast(&h->changed);
}

static int hook_image_check(void *data, const char *image, struct berth_err *err)
{
	(void)data;
	return image_check(image, err);
}

/* ---- the oracle --------------------------------------------------------- */

static void check_reply(const struct api_reply *reply)
{
	if (reply->status != 200 && reply->status != 400 && reply->status != 413 && reply->status != 500) {
		fprintf(stderr, "status %d\n", reply->status);
		abort();
	}
	struct berth_err err;
	yajl_val v = reply->body.data ? json_parse(reply->body.data, reply->body.len, &err) : NULL;
	if (v == NULL || !YAJL_IS_OBJECT(v)) {
		fprintf(stderr, "status %d, body not a JSON object: %.*s\n", reply->status, (int)reply->body.len,
			reply->body.data ? reply->body.data : "");
		abort();
	}
	if (reply->status != 200 && (json_get_string(v, "__type") == NULL || json_get_string(v, "message") == NULL)) {
		fprintf(stderr, "error without __type/message: %.*s\n", (int)reply->body.len, reply->body.data);
		abort();
	}
	yajl_tree_free(v);
}

/* ---- entry points ------------------------------------------------------- */

static struct harness *harness; /* the process's one harness (libFuzzer has no user_data) */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	static struct harness h;
	struct berth_err err;
	if (limits_init(&h.limits, NULL, &err) < 0) {
		fprintf(stderr, "fuzz_control: %s\n", err.msg);
		exit(1);
	}
	h.limits.cpu_overcommit = 64; /* the tests' over-commit: room for a few endpoints */
	h.limits.memory_overcommit = 16;
	pthread_mutex_init(&h.lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&h.changed, &attr);
	pthread_condattr_destroy(&attr);
	h.ctx = (struct api_ctx){
		.lock = &h.lock, .changed = &h.changed, .region = "us-east-1", .account = "000000000000",
		.grace_ms = 0, /* the stand-in runtime is synchronous: nothing to wait for */
		.runtime = { .data = &h, .endpoint_start = stub_start, .endpoint_stop = stub_stop,
			     .image_check = hook_image_check, .limits = &h.limits,
			     .endpoint_fits = limits_endpoint_fits, .instance_type_check = limits_instance_type_check },
	};
	h.trace = getenv("BERTH_FUZZ_TRACE") != NULL;
	harness = &h;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness *h = harness;
	/* tmpfs when there is one: the store writes (and syncs) a file per change */
	char dir[] = "/dev/shm/berth-fuzz-control-XXXXXX";
	char dir_tmp[] = "/tmp/berth-fuzz-control-XXXXXX";
	char *d = mkdtemp(dir) ? dir : mkdtemp(dir_tmp);
	if (d == NULL)
		abort();
	struct berth_err err;
	h->store = store_open(d, &err);
	if (h->store == NULL) {
		fprintf(stderr, "fuzz_control: %s\n", err.msg);
		abort();
	}
	h->ctx.store = h->store;
	h->limits.store = h->store;
	size_t off = 0;
	for (int calls = 0; calls < FUZZ_MAX_CALLS && off < size; calls++) {
		const uint8_t *end = memchr(data + off, 0, size - off);
		size_t len = end ? (size_t)(end - (data + off)) : size - off;
		if (len > 0) {
			const char *op = operations[data[off] % 16];
			/* exactly the body's bytes: a read past the end is caught */
			char *body = malloc(len);
			if (body == NULL)
				abort();
			memcpy(body, data + off + 1, len - 1);
			struct api_reply reply = { 0, BERTH_BUF_INIT };
			api_handle(&h->ctx, op, body, len - 1, &reply);
			check_reply(&reply);
			if (h->trace)
				fprintf(stderr, "%s -> %d %.*s\n", op, reply.status, (int)reply.body.len, reply.body.data);
			buf_free(&reply.body);
			free(body);
		}
		off += len + 1;
	}
	store_close(h->store);
	h->store = NULL;
	if (fs_remove_tree(d, &err) < 0) {
		fprintf(stderr, "fuzz_control: %s\n", err.msg);
		abort();
	}
	return 0;
}
