/* test_runtime_decisions.c — what berthd's runtime (orchestrator/runtime/)
 * decides from an endpoint record, without starting a container: which
 * containers the route table gives traffic (serving instances only, never
 * an update's pending or retiring ones, nor an instance with a container
 * down), that a status change is persisted and then pushed to subscribed
 * routers, the execution mode a model gets, how new instances' containers
 * are allocated and numbered, and the health column of `berth ps`. The real
 * runtime object on a real store in a temporary directory (api_fixture.h);
 * a socketpair stands in for a subscribed router. */
#include "api_fixture.h"

#include <sys/socket.h>

#include "fsutil.h"
#include "ipc.h"
#include "runtime.h"
#include "runtime_internal.h"

struct rt_fixture {
	struct fixture *f;
	struct runtime_config cfg;
	struct runtime *rt;
};

static int setup(void **state)
{
	struct rt_fixture *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	void *fs = NULL;
	fixture_setup(&fs);
	x->f = fs;
	x->cfg = (struct runtime_config){ .state_dir = x->f->dir, .run_dir = "/run/berth-unit", .cgroup_root = "berth-unit", .region = "us-east-1",
					  .account = "000000000000", .stop_timeout_ms = 1000,
					  .health_timeout_ms = 1000, .ping_timeout_ms = 100 };
	struct berth_err err;
	x->rt = runtime_new(&x->cfg, x->f->store, &x->f->lock, &x->f->changed, &err);
	assert_non_null(x->rt);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct rt_fixture *x = *state;
	runtime_free(x->rt);
	void *fs = x->f;
	fixture_teardown(&fs);
	free(x);
	return 0;
}

/* One container of a record: "VARIANT/INSTANCE/HOSTNAME[/FLAGS]" where
 * FLAGS has p (pending), r (retiring), d (down); its id is HOSTNAME-INSTANCE
 * plus the flags, so a test can tell containers apart in the table. */
static void add_container(struct berth_buf *doc, const char *spec, bool first)
{
	char variant[32], host[32], flags[8] = "";
	long long instance;
	int n = sscanf(spec, "%31[^/]/%lld/%31[^/]/%7s", variant, &instance, host, flags);
	assert_true(n >= 3);
	buf_printf(doc,
		   "%s{\"id\":\"%s-%lld%s\",\"hostname\":\"%s\",\"socket\":\"/nonexistent/%s-%lld%s.sock\","
		   "\"log\":\"/nonexistent/%s.log\",\"variant\":\"%s\",\"instance\":%lld%s%s%s}",
		   first ? "" : ",", host, instance, flags, host, host, instance, flags, host, variant, instance,
		   strchr(flags, 'p') ? ",\"pending\":true" : "", strchr(flags, 'r') ? ",\"retiring\":true" : "",
		   strchr(flags, 'd') ? ",\"down\":true" : "");
}

/* Stores endpoint NAME (status, mode) with two variants A (weight 3) and B
 * (weight 1) and the containers given (NULL-terminated specs). */
static void put_endpoint(struct rt_fixture *x, const char *name, const char *status, const char *mode,
			 const char *const *containers)
{
	struct berth_buf doc = BERTH_BUF_INIT;
	buf_printf(&doc,
		   "{\"EndpointName\":\"%s\",\"EndpointArn\":\"arn:aws:sagemaker:us-east-1:000000000000:endpoint/%s\","
		   "\"EndpointConfigName\":\"c\",\"EndpointStatus\":\"%s\",\"CreationTime\":1.5,"
		   "\"LastModifiedTime\":2.5,\"Tags\":[],\"Berth\":{\"mode\":\"%s\",\"variant_name\":\"A\","
		   "\"containers\":[",
		   name, name, status, mode);
	for (size_t i = 0; containers[i]; i++)
		add_container(&doc, containers[i], i == 0);
	buf_printf(&doc, "],\"production_variants\":["
			 "{\"VariantName\":\"A\",\"ModelName\":\"m\",\"InitialInstanceCount\":2,"
			 "\"InstanceType\":\"ml.m5.large\",\"InitialVariantWeight\":3},"
			 "{\"VariantName\":\"B\",\"ModelName\":\"m\",\"InitialInstanceCount\":1,"
			 "\"InstanceType\":\"ml.m5.large\",\"InitialVariantWeight\":1}]}}");
	struct berth_err err;
	struct endpoint *e = endpoint_from_json(doc.data, doc.len, &err);
	if (e == NULL)
		print_error("%s\n%s\n", err.msg, doc.data);
	assert_non_null(e);
	buf_free(&doc);
	assert_int_equal(store_put_endpoint(x->f->store, e, &err), 0);
}

static yajl_val rendered(struct rt_fixture *x)
{
	struct berth_buf out = BERTH_BUF_INIT;
	assert_int_equal(runtime_render_routes(x->rt, &out), 0);
	struct berth_err err;
	yajl_val v = json_parse(out.data, out.len, &err);
	assert_non_null(v);
	buf_free(&out);
	return v;
}

static yajl_val array_at(yajl_val a, size_t i)
{
	assert_true(YAJL_IS_ARRAY(a));
	assert_true(i < a->u.array.len);
	return a->u.array.values[i];
}

static size_t array_len(yajl_val a)
{
	assert_true(YAJL_IS_ARRAY(a));
	return a->u.array.len;
}

/* "id,id|id" : the instances of a variant in the table, their containers' ids. */
static void expect_instances(yajl_val variant, const char *want)
{
	struct berth_buf got = BERTH_BUF_INIT;
	yajl_val inst = json_get(variant, "instances");
	for (size_t i = 0; i < array_len(inst); i++) {
		yajl_val cs = json_get(array_at(inst, i), "containers");
		for (size_t j = 0; j < array_len(cs); j++) {
			yajl_val c = array_at(cs, j);
			const char *sock = json_get_string(c, "socket");
			assert_non_null(sock);
			/* /nonexistent/ID.sock → ID */
			const char *id = strrchr(sock, '/') + 1;
			buf_printf(&got, "%s%.*s", j ? "," : (i ? "|" : ""), (int)(strlen(id) - 5), id);
		}
	}
	assert_string_equal(got.data ? got.data : "", want);
	buf_free(&got);
}

static void test_runtime_routes_carry_only_serving_instances(void **state)
{
	struct rt_fixture *x = *state;
	/* A: instance 0 serves (two containers, record order kept); instance 1
	 * has a container down; an update's pending replacement of instance 0
	 * and a retiring old one share its number. B: one serving instance 2. */
	const char *const cs[] = { "A/0/first", "A/0/second", "A/1/first", "A/1/second/d", "A/0/first/p",
				   "A/0/second/p", "A/0/old/r", "B/2/only", NULL };
	put_endpoint(x, "ep", "Updating", "Serial", cs);
	yajl_val v = rendered(x);
	assert_string_equal(json_get_string(v, "op"), "routes");
	assert_string_equal(json_get_string(v, "account"), "000000000000");
	assert_string_equal(json_get_string(v, "region"), "us-east-1");
	yajl_val eps = json_get(v, "endpoints");
	assert_int_equal(array_len(eps), 1);
	yajl_val ep = array_at(eps, 0);
	assert_string_equal(json_get_string(ep, "name"), "ep");
	assert_string_equal(json_get_string(ep, "status"), "Updating");
	/* a record from before per-variant modes: its one mode for each variant */
	assert_null(json_get(ep, "mode"));
	yajl_val vs = json_get(ep, "variants");
	assert_string_equal(json_get_string(array_at(vs, 0), "mode"), "Serial");
	assert_string_equal(json_get_string(array_at(vs, 1), "mode"), "Serial");
	assert_int_equal(array_len(vs), 2);
	double w = 0;
	assert_string_equal(json_get_string(array_at(vs, 0), "name"), "A");
	assert_true(json_get_double(array_at(vs, 0), "weight", &w) && w == 3.0);
	expect_instances(array_at(vs, 0), "first-0,second-0");
	assert_string_equal(json_get_string(array_at(vs, 1), "name"), "B");
	assert_true(json_get_double(array_at(vs, 1), "weight", &w) && w == 1.0);
	expect_instances(array_at(vs, 1), "only-2");
	yajl_val c0 = array_at(json_get(array_at(json_get(array_at(vs, 0), "instances"), 0), "containers"), 0);
	assert_string_equal(json_get_string(c0, "hostname"), "first");
	assert_string_equal(json_get_string(c0, "log"), "/nonexistent/first.log");
	yajl_tree_free(v);
}

/* Each variant is published with its own mode. */
static void test_runtime_routes_carry_each_variant_mode(void **state)
{
	struct rt_fixture *x = *state;
	const char *const cs[] = { "A/0/first", "A/0/second", "B/0/only", NULL };
	put_endpoint(x, "ep", "InService", "Serial", cs);
	struct endpoint *e = endpoint_dup(store_get_endpoint(x->f->store, "ep"));
	free(e->legacy_mode);
	e->legacy_mode = NULL;
	e->variants[0].mode = strdup("Direct");
	e->variants[1].mode = strdup("Single");
	struct berth_err err;
	assert_int_equal(store_put_endpoint(x->f->store, e, &err), 0);
	yajl_val v = rendered(x);
	yajl_val vs = json_get(array_at(json_get(v, "endpoints"), 0), "variants");
	assert_string_equal(json_get_string(array_at(vs, 0), "mode"), "Direct");
	assert_string_equal(json_get_string(array_at(vs, 1), "mode"), "Single");
	expect_instances(array_at(vs, 0), "first-0,second-0");
	expect_instances(array_at(vs, 1), "only-0");
	yajl_tree_free(v);
}

static void test_runtime_routes_of_an_endpoint_with_every_instance_down_are_empty(void **state)
{
	struct rt_fixture *x = *state;
	const char *const cs[] = { "A/0/a/d", "A/1/a/d", NULL };
	put_endpoint(x, "down", "InService", "Single", cs);
	const char *const fresh[] = { "A/0/a/p", NULL };
	put_endpoint(x, "fresh", "Creating", "Single", fresh);
	yajl_val v = rendered(x);
	yajl_val eps = json_get(v, "endpoints");
	assert_int_equal(array_len(eps), 2); /* name order */
	assert_string_equal(json_get_string(array_at(eps, 0), "name"), "down");
	expect_instances(array_at(json_get(array_at(eps, 0), "variants"), 0), "");
	assert_string_equal(json_get_string(array_at(eps, 1), "name"), "fresh");
	expect_instances(array_at(json_get(array_at(eps, 1), "variants"), 0), "");
	yajl_tree_free(v);
}

/* Reads one route table from the subscriber's end. */
static yajl_val next_table(struct ipc_reader *r)
{
	const char *line;
	size_t len;
	struct berth_err err;
	assert_int_equal(ipc_read(r, &line, &len, NULL, &err), 1);
	yajl_val v = json_parse(line, len, &err);
	assert_non_null(v);
	return v;
}

static void test_runtime_status_change_is_persisted_then_pushed_to_routers(void **state)
{
	struct rt_fixture *x = *state;
	const char *const cs[] = { "A/0/a/d", NULL };
	put_endpoint(x, "ep", "Creating", "Single", cs);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct ipc_reader r;
	ipc_reader_init(&r, sv[1]);
	pthread_mutex_lock(&x->f->lock);
	runtime_add_route_watcher(x->rt, sv[0]); /* the session pins, then the current table at once */
	pthread_mutex_unlock(&x->f->lock);
	yajl_val t = next_table(&r);
	assert_string_equal(json_get_string(t, "op"), "sessions");
	assert_int_equal(YAJL_GET_ARRAY(json_get(t, "pins"))->len, 0);
	yajl_tree_free(t);
	t = next_table(&r);
	long long g0 = -1, g1 = -1;
	assert_true(json_get_int64(t, "generation", &g0));
	assert_string_equal(json_get_string(array_at(json_get(t, "endpoints"), 0), "status"), "Creating");
	yajl_tree_free(t);

	/* the container came up: InService with it serving */
	const struct endpoint *e = store_get_endpoint(x->f->store, "ep");
	struct endpoint_container *c = runtime_copy_containers(e);
	assert_non_null(c);
	c[0].down = false;
	pthread_mutex_lock(&x->f->lock);
	runtime_set_status(x->rt, "ep", "InService", NULL, c, 1, true);
	pthread_mutex_unlock(&x->f->lock);
	endpoint_containers_free(c, 2);

	/* persisted: a store opened anew on the same directory sees it */
	struct berth_err err;
	struct store *again = store_open(x->f->dir, &err);
	assert_non_null(again);
	const struct endpoint *back = store_get_endpoint(again, "ep");
	assert_non_null(back);
	assert_string_equal(back->status, "InService");
	assert_false(back->containers[0].down);
	store_close(again);

	t = next_table(&r);
	assert_true(json_get_int64(t, "generation", &g1));
	assert_true(g1 > g0);
	yajl_val ep = array_at(json_get(t, "endpoints"), 0);
	assert_string_equal(json_get_string(ep, "status"), "InService");
	expect_instances(array_at(json_get(ep, "variants"), 0), "a-0d"); /* its id kept, now serving */
	yajl_tree_free(t);

	/* a Failed status with its reason */
	pthread_mutex_lock(&x->f->lock);
	runtime_set_status(x->rt, "ep", "Failed", "container a exited", NULL, 0, false);
	pthread_mutex_unlock(&x->f->lock);
	assert_string_equal(store_get_endpoint(x->f->store, "ep")->failure_reason, "container a exited");
	t = next_table(&r);
	assert_string_equal(json_get_string(array_at(json_get(t, "endpoints"), 0), "status"), "Failed");
	yajl_tree_free(t);

	/* a router that went away is dropped at the next push, quietly */
	ipc_reader_free(&r);
	close(sv[1]);
	pthread_mutex_lock(&x->f->lock);
	runtime_push_routes(x->rt);
	assert_int_equal(x->rt->n_watchers, 0);
	pthread_mutex_unlock(&x->f->lock);
}

static void test_model_invocation_mode_for_each_kind_of_model(void **state)
{
	(void)state;
	struct container_def one = { .hostname = "primary" }, mme = { .hostname = "primary", .mode = "MultiModel" },
			     single_model = { .hostname = "primary", .mode = "SingleModel" };
	struct container_def two[2] = { { .hostname = "a" }, { .hostname = "b" } };
	struct model m = { .containers = &one, .n_containers = 1 };
	assert_string_equal(model_invocation_mode(&m), "Single");
	m.containers = &single_model;
	assert_string_equal(model_invocation_mode(&m), "Single");
	m.containers = &mme;
	assert_string_equal(model_invocation_mode(&m), "MultiModel");
	m.containers = two;
	m.n_containers = 2;
	assert_string_equal(model_invocation_mode(&m), "Serial"); /* SageMaker's default for several */
	m.execution_mode = "Direct";
	assert_string_equal(model_invocation_mode(&m), "Direct");
	m.containers = &one;
	m.n_containers = 1;
	assert_string_equal(model_invocation_mode(&m), "Direct"); /* one container, mode given */
}

static void test_runtime_alloc_instances_numbers_each_instance_and_its_containers(void **state)
{
	struct rt_fixture *x = *state;
	struct container_def defs[2] = { { .hostname = "pre" }, { .hostname = "clf" } };
	struct model m = { .name = "m", .containers = defs, .n_containers = 2 };
	struct variant v = { .variant_name = "Blue" };
	struct endpoint_container *c = NULL;
	const struct container_def **d = NULL;
	size_t n = 0;
	struct berth_err err;
	/* two live instances from 0, then one pending from 2 (an update adding one) */
	assert_int_equal(runtime_alloc_instances(x->rt, &v, &m, 0, 2, false, &c, &d, &n, &err), 0);
	assert_int_equal(runtime_alloc_instances(x->rt, &v, &m, 2, 1, true, &c, &d, &n, &err), 0);
	assert_int_equal(n, 6);
	const long long want_instance[] = { 0, 0, 1, 1, 2, 2 };
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(c[i].instance, want_instance[i]);
		assert_string_equal(c[i].variant, "Blue");
		assert_string_equal(c[i].hostname, i % 2 ? "clf" : "pre");
		assert_ptr_equal(d[i], &defs[i % 2]);
		assert_int_equal(c[i].pending, i >= 4);
		assert_false(c[i].retiring || c[i].down);
		assert_int_equal(strlen(c[i].id), 16);
		char want_socket[128], want_log[256];
		snprintf(want_socket, sizeof(want_socket), "/run/berth-unit/shims/%s.sock", c[i].id);
		snprintf(want_log, sizeof(want_log), "%s/containers/%s/log", x->f->dir, c[i].id);
		assert_string_equal(c[i].socket, want_socket);
		assert_string_equal(c[i].log, want_log);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(c[i].id, c[j].id);
	}
	/* count 0 adds nothing */
	assert_int_equal(runtime_alloc_instances(x->rt, &v, &m, 3, 0, false, &c, &d, &n, &err), 0);
	assert_int_equal(n, 6);
	endpoint_containers_free(c, n);
	free(d);
}

/* A variant's ContainerStartupHealthCheckTimeoutInSeconds and
 * ModelDataDownloadTimeoutInSeconds reach each container of its
 * instances; without them berthd's health timeout applies. */
static void test_variant_timeouts_reach_each_container(void **state)
{
	struct rt_fixture *x = *state;
	struct container_def defs[2] = { { .hostname = "pre" }, { .hostname = "clf" } };
	struct model m = { .name = "m", .containers = defs, .n_containers = 2 };
	struct variant timed = { .variant_name = "Slow", .startup_health_check_timeout_s = 600,
				 .model_data_download_timeout_s = 90 };
	struct variant plain = { .variant_name = "Plain" };
	struct endpoint_container *c = NULL;
	const struct container_def **d = NULL;
	size_t n = 0;
	struct berth_err err;
	assert_int_equal(runtime_alloc_instances(x->rt, &timed, &m, 0, 1, false, &c, &d, &n, &err), 0);
	assert_int_equal(runtime_alloc_instances(x->rt, &plain, &m, 0, 1, false, &c, &d, &n, &err), 0);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(c[i].startup_timeout_ms, 600000);
		assert_int_equal(c[i].download_timeout_ms, 90000);
		assert_int_equal(runtime_startup_timeout_ms(&x->cfg, &c[i]), 600000);
	}
	for (size_t i = 2; i < 4; i++) {
		assert_int_equal(c[i].startup_timeout_ms, 0);
		assert_int_equal(c[i].download_timeout_ms, 0);
		assert_int_equal(runtime_startup_timeout_ms(&x->cfg, &c[i]), x->cfg.health_timeout_ms);
	}
	/* a restart copies the container, timeouts included */
	struct endpoint_container *copy = calloc(1, sizeof(*copy));
	assert_int_equal(endpoint_container_copy(copy, &c[0]), 0);
	assert_int_equal(runtime_startup_timeout_ms(&x->cfg, copy), 600000);
	assert_int_equal(copy->download_timeout_ms, 90000);
	endpoint_containers_free(copy, 1);
	endpoint_containers_free(c, n);
	free(d);
}

static void test_runtime_ps_health_column_says_what_each_container_is_doing(void **state)
{
	struct rt_fixture *x = *state;
	const char *const cs[] = { "A/0/live", "A/1/sick/d", "A/0/next/p", "A/0/prev/r", NULL };
	put_endpoint(x, "ep", "Updating", "Single", cs);
	struct berth_buf out = BERTH_BUF_INIT;
	assert_int_equal(runtime_ps(x->rt, &out), 0);
	struct berth_err err;
	yajl_val v = json_parse(out.data, out.len, &err);
	assert_non_null(v);
	buf_free(&out);
	yajl_val rows = json_get(v, "containers");
	assert_int_equal(array_len(rows), 4);
	const char *want[][2] = { { "live-0", "healthy" }, { "sick-1d", "down" }, { "next-0p", "starting" },
				  { "prev-0r", "draining" } };
	for (size_t i = 0; i < 4; i++) {
		yajl_val r = array_at(rows, i);
		long long pid = -1;
		assert_string_equal(json_get_string(r, "id"), want[i][0]);
		assert_string_equal(json_get_string(r, "health"), want[i][1]);
		assert_string_equal(json_get_string(r, "endpoint"), "ep");
		assert_string_equal(json_get_string(r, "variant"), "A");
		/* no shim answers on /nonexistent: stopped, no pid */
		assert_string_equal(json_get_string(r, "state"), "stopped");
		assert_true(json_get_int64(r, "pid", &pid) && pid == 0);
	}
	yajl_tree_free(v);
}

static void session_op(struct rt_fixture *x, const char *json)
{
	struct berth_err err;
	yajl_val v = json_parse(json, strlen(json), &err);
	assert_non_null(v);
	runtime_session_handle(x->rt, json_get_string(v, "op"), v);
	yajl_tree_free(v);
}

static char *greeting_pins(struct rt_fixture *x)
{
	struct berth_buf out = BERTH_BUF_INIT;
	pthread_mutex_lock(&x->f->lock);
	assert_int_equal(runtime_sessions_render(x->rt, &out), 0);
	pthread_mutex_unlock(&x->f->lock);
	return out.data;
}

/* The router's session pins: kept when valid, persisted at once, given
 * back without expired ones and ones whose instance is gone, restored by
 * the next berthd. */
static void test_runtime_session_pins_persist_and_drop_orphans(void **state)
{
	struct rt_fixture *x = *state;
	const char *const cs[] = { "A/0/a", "A/1/a", NULL };
	put_endpoint(x, "ep", "InService", "Single", cs);
	long long far = (long long)clock_epoch_seconds() + 3600;
	char line[512];
	const char *const pins[][2] = { { "s-1", "/nonexistent/a-0.sock" }, { "s-2", "/nonexistent/a-1.sock" },
					{ "orphan", "/nonexistent/gone.sock" }, { "bad_id", "/nonexistent/a-0.sock" } };
	for (size_t i = 0; i < 4; i++) {
		snprintf(line, sizeof(line),
			 "{\"op\":\"session_pin\",\"endpoint\":\"ep\",\"id\":\"%s\",\"variant\":\"A\",\"instance\":\"%s\",\"expires\":%lld}",
			 pins[i][0], pins[i][1], far);
		session_op(x, line);
	}
	session_op(x, "{\"op\":\"session_pin\",\"endpoint\":\"ep\",\"id\":\"old\",\"variant\":\"A\",\"instance\":\"/nonexistent/a-0.sock\",\"expires\":1000}");
	session_op(x, "{\"op\":\"session_unpin\",\"endpoint\":\"ep\",\"id\":\"s-2\"}");
	/* persisted at once, a line each in the log: the orphan is there too,
	 * not yet checked; what was refused is not */
	char *path = fs_path("%s/sessions.log", x->f->dir);
	struct berth_buf file = BERTH_BUF_INIT;
	struct berth_err err;
	assert_int_equal(fs_read_file(path, &file, 1 << 20, &err), 0);
	assert_int_equal(buf_append(&file, "", 1), 0);
	assert_non_null(strstr(file.data, "{\"op\":\"pin\",\"endpoint\":\"ep\",\"id\":\"s-1\",\"variant\":\"A\","));
	assert_non_null(strstr(file.data, "\"id\":\"orphan\""));
	assert_non_null(strstr(file.data, "{\"op\":\"unpin\",\"endpoint\":\"ep\",\"id\":\"s-2\"}\n"));
	assert_null(strstr(file.data, "bad_id"));
	assert_null(strstr(file.data, "\"old\""));
	buf_free(&file);
	char expect[512];
	snprintf(expect, sizeof(expect),
		 "{\"op\":\"sessions\",\"pins\":[{\"endpoint\":\"ep\",\"id\":\"s-1\",\"variant\":\"A\",\"instance\":\"/nonexistent/a-0.sock\",\"expires\":%lld}]}",
		 far);
	char *g = greeting_pins(x);
	assert_string_equal(g, expect);
	free(g);
	/* a new berthd on the same state directory has the pin */
	runtime_free(x->rt);
	x->rt = runtime_new(&x->cfg, x->f->store, &x->f->lock, &x->f->changed, &err);
	assert_non_null(x->rt);
	g = greeting_pins(x);
	assert_string_equal(g, expect);
	free(g);
	free(path);
}

/* The log is folded into a new snapshot once it holds SESSIONS_LOG_SLACK
 * (1000) lines more than there are pins: it never grows without bound. */
static void test_runtime_session_log_is_compacted(void **state)
{
	struct rt_fixture *x = *state;
	const char *const cs[] = { "A/0/a", NULL };
	put_endpoint(x, "ep", "InService", "Single", cs);
	long long far = (long long)clock_epoch_seconds() + 3600;
	char line[512];
	snprintf(line, sizeof(line),
		 "{\"op\":\"session_pin\",\"endpoint\":\"ep\",\"id\":\"keep\",\"variant\":\"A\",\"instance\":\"/nonexistent/a-0.sock\",\"expires\":%lld}",
		 far);
	session_op(x, line);
	char *log = fs_path("%s/sessions.log", x->f->dir);
	struct stat st;
	off_t biggest = 0;
	for (int i = 0; i < 1200; i++) {
		snprintf(line, sizeof(line),
			 "{\"op\":\"session_pin\",\"endpoint\":\"ep\",\"id\":\"churn\",\"variant\":\"A\",\"instance\":\"/nonexistent/a-0.sock\",\"expires\":%lld}",
			 far);
		session_op(x, line);
		session_op(x, "{\"op\":\"session_unpin\",\"endpoint\":\"ep\",\"id\":\"churn\"}");
		assert_int_equal(stat(log, &st), 0);
		if (st.st_size > biggest)
			biggest = st.st_size;
	}
	/* 2401 changes, at most ~1002 lines at any time */
	assert_true(biggest < 1003 * 200);
	assert_true(st.st_size < biggest);
	char *snap = fs_path("%s/sessions.json", x->f->dir);
	struct berth_buf file = BERTH_BUF_INIT;
	struct berth_err err;
	assert_int_equal(fs_read_file(snap, &file, 1 << 20, &err), 0);
	assert_int_equal(buf_append(&file, "", 1), 0);
	assert_non_null(strstr(file.data, "\"keep\""));
	buf_free(&file);
	/* the next berthd has exactly "keep" */
	runtime_free(x->rt);
	x->rt = runtime_new(&x->cfg, x->f->store, &x->f->lock, &x->f->changed, &err);
	assert_non_null(x->rt);
	char *g = greeting_pins(x);
	assert_non_null(strstr(g, "\"id\":\"keep\""));
	assert_null(strstr(g, "churn"));
	free(g);
	/* loading folds the log into the snapshot */
	assert_int_equal(stat(log, &st), 0);
	assert_int_equal(st.st_size, 0);
	free(snap);
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_runtime_routes_carry_only_serving_instances, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_session_pins_persist_and_drop_orphans, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_session_log_is_compacted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_routes_carry_each_variant_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_routes_of_an_endpoint_with_every_instance_down_are_empty,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_status_change_is_persisted_then_pushed_to_routers, setup,
						teardown),
		cmocka_unit_test(test_model_invocation_mode_for_each_kind_of_model),
		cmocka_unit_test_setup_teardown(test_variant_timeouts_reach_each_container, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_alloc_instances_numbers_each_instance_and_its_containers,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_runtime_ps_health_column_says_what_each_container_is_doing, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
