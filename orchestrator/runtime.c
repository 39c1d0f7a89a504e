/* runtime.c — see runtime.h. */
#include "runtime.h"
#include "runtime_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "cgroup_usage.h"
#include "container.h"
#include "image.h"
#include "ipc.h"
#include "json.h"
#include "log.h"
#include "mme.h"
#include "shim_client.h"

static double now_epoch(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

const char *runtime_mode_for(const struct model *m)
{
	/* as CreateEndpoint decides it (api_endpoint.c) */
	if (m->n_containers == 1 && m->containers[0].mode && strcmp(m->containers[0].mode, "MultiModel") == 0)
		return "MultiModel";
	if (m->n_containers == 1 && !m->execution_mode)
		return "Single";
	return m->execution_mode ? m->execution_mode : "Serial";
}

long long runtime_now_ms(void)
{
	return now_ms();
}

double runtime_now_epoch(void)
{
	return now_epoch();
}

/* ---- route table ------------------------------------------------------ */

int runtime_render_routes(struct runtime *rt, struct berth_buf *out)
{
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return -1;
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "op", "routes");
	json_gen_kv_int(g, "generation", (long long)rt->generation);
	json_gen_kv_str(g, "account", rt->cfg.account);
	json_gen_kv_str(g, "region", rt->cfg.region);
	json_gen_str(g, "endpoints");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < store_count_endpoints(rt->store); i++) {
		const struct endpoint *e = store_endpoint_at(rt->store, i);
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "name", e->name);
		json_gen_kv_str(g, "status", e->status);
		json_gen_kv_str(g, "mode", e->mode ? e->mode : "Single");
		json_gen_str(g, "variants");
		yajl_gen_array_open(g);
		size_t n_variants = e->n_variants > 0 ? e->n_variants : 1;
		for (size_t v = 0; v < n_variants; v++) {
			const char *vname = e->n_variants > 0 ? e->variants[v].variant_name
				: e->variant_name ? e->variant_name : "AllTraffic";
			yajl_gen_map_open(g);
			json_gen_kv_str(g, "name", vname);
			json_gen_kv_double(g, "weight", e->n_variants > 0 ? e->variants[v].initial_weight : 1.0);
			json_gen_str(g, "instances");
			yajl_gen_array_open(g);
			/* only instances whose every container serves; their
			 * containers in record (model) order */
			long long max_instance = -1;
			for (size_t j = 0; j < e->n_containers; j++)
				if (strcmp(endpoint_container_variant(e, &e->containers[j]), vname) == 0 &&
				    e->containers[j].instance > max_instance)
					max_instance = e->containers[j].instance;
			for (long long k = 0; k <= max_instance; k++) {
				if (!endpoint_instance_serving(e, vname, k))
					continue;
				yajl_gen_map_open(g);
				json_gen_str(g, "containers");
				yajl_gen_array_open(g);
				for (size_t j = 0; j < e->n_containers; j++) {
					const struct endpoint_container *c = &e->containers[j];
					if (c->instance != k || c->pending || c->retiring ||
					    strcmp(endpoint_container_variant(e, c), vname) != 0)
						continue;
					yajl_gen_map_open(g);
					json_gen_kv_str(g, "hostname", c->hostname);
					json_gen_kv_str(g, "socket", c->socket);
					json_gen_kv_str(g, "log", c->log);
					yajl_gen_map_close(g);
				}
				yajl_gen_array_close(g);
				yajl_gen_map_close(g);
			}
			yajl_gen_array_close(g);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	return json_gen_finish(g, out);
}

static void drop_watcher(struct runtime *rt, size_t i)
{
	close(rt->watchers[i]);
	rt->watchers[i] = rt->watchers[--rt->n_watchers];
}

/* With *lock held. */
static void push_routes(struct runtime *rt)
{
	runtime_push_routes(rt);
}

void runtime_push_routes(struct runtime *rt)
{
	rt->generation++;
	if (rt->n_watchers == 0)
		return;
	struct berth_buf doc = BERTH_BUF_INIT;
	if (runtime_render_routes(rt, &doc) < 0) {
		log_error("cannot render the route table (out of memory)");
		buf_free(&doc);
		return;
	}
	for (size_t i = 0; i < rt->n_watchers;) {
		struct berth_err err;
		if (ipc_send(rt->watchers[i], doc.data, doc.len, -1, &err) < 0) {
			log_warn("router subscription dropped: %s", err.msg);
			drop_watcher(rt, i);
			continue;
		}
		i++;
	}
	buf_free(&doc);
}

void runtime_send_to_watchers(struct runtime *rt, const char *doc, size_t len)
{
	pthread_mutex_lock(rt->lock);
	for (size_t i = 0; i < rt->n_watchers;) {
		struct berth_err err;
		if (ipc_send(rt->watchers[i], doc, len, -1, &err) < 0) {
			log_warn("router subscription dropped: %s", err.msg);
			drop_watcher(rt, i);
			continue;
		}
		i++;
	}
	pthread_mutex_unlock(rt->lock);
}

struct mme *runtime_mme(struct runtime *rt)
{
	return rt->cfg.mme;
}

void runtime_add_route_watcher(struct runtime *rt, int sock)
{
	struct timeval tv = { 2, 0 }; /* a router that stops reading is dropped */
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int *grown = realloc(rt->watchers, (rt->n_watchers + 1) * sizeof(int));
	if (grown == NULL) {
		close(sock);
		return;
	}
	rt->watchers = grown;
	rt->watchers[rt->n_watchers++] = sock;
	struct berth_buf doc = BERTH_BUF_INIT;
	struct berth_err err;
	if (runtime_render_routes(rt, &doc) < 0 || ipc_send(sock, doc.data, doc.len, -1, &err) < 0)
		drop_watcher(rt, rt->n_watchers - 1);
	buf_free(&doc);
	log_info("router subscribed to the route table (%zu subscriber%s)", rt->n_watchers,
		 rt->n_watchers == 1 ? "" : "s");
}

/* ---- status changes ----------------------------------------------------- */

/* With *lock held: persist a new status (and reason) and tell everyone. */
static void set_status(struct runtime *rt, const char *name, const char *status, const char *reason,
		       const struct endpoint_container *containers, size_t n_containers, bool replace_containers)
{
	const struct endpoint *cur = store_get_endpoint(rt->store, name);
	if (cur == NULL)
		return;
	struct endpoint *e = endpoint_dup(cur);
	if (e == NULL) {
		log_error("endpoint %s: out of memory", name);
		return;
	}
	free(e->status);
	e->status = strdup(status);
	free(e->failure_reason);
	e->failure_reason = reason ? strdup(reason) : NULL;
	e->last_modified_time = now_epoch();
	if (replace_containers) {
		endpoint_containers_free(e->containers, e->n_containers);
		e->containers = NULL;
		e->n_containers = 0;
		if (n_containers > 0) {
			e->containers = calloc(n_containers, sizeof(*e->containers));
			for (size_t i = 0; e->containers && i < n_containers; i++)
				endpoint_container_copy(&e->containers[i], &containers[i]);
			e->n_containers = e->containers ? n_containers : 0;
		}
	}
	struct berth_err err;
	if (store_put_endpoint(rt->store, e, &err) < 0)
		log_error("endpoint %s: cannot record status %s: %s", name, status, err.msg);
	else
		log_info("endpoint %s: %s%s%s", name, status, reason ? ": " : "", reason ? reason : "");
	pthread_cond_broadcast(rt->changed);
	push_routes(rt);
}

void runtime_commit(struct runtime *rt, struct endpoint *e)
{
	char *name = strdup(e->name);
	struct berth_err err;
	if (store_put_endpoint(rt->store, e, &err) < 0)
		log_error("endpoint %s: cannot record a change: %s", name ? name : "?", err.msg);
	free(name);
	pthread_cond_broadcast(rt->changed);
	push_routes(rt);
}

static struct endpoint_container *copy_containers(const struct endpoint *e)
{
	struct endpoint_container *c = calloc(e->n_containers + 1, sizeof(*c));
	for (size_t i = 0; c && i < e->n_containers; i++)
		endpoint_container_copy(&c[i], &e->containers[i]);
	return c;
}

/* ---- workers ------------------------------------------------------------ */

/* With *lock held. */
static void worker_done(struct worker *w)
{
	runtime_worker_done(w);
}

void runtime_workers_cancel_wait(struct runtime *rt, const char *endpoint, unsigned kinds, const struct worker *self)
{
	for (;;) {
		bool any = false;
		for (struct worker *w = rt->workers; w; w = w->next)
			if (w != self && (kinds & (1u << w->kind)) && strcmp(w->endpoint, endpoint) == 0) {
				w->cancel = true;
				any = true;
			}
		if (!any)
			return;
		pthread_cond_wait(rt->changed, rt->lock);
	}
}

void runtime_worker_done(struct worker *w)
{
	struct runtime *rt = w->rt;
	for (struct worker **p = &rt->workers; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	free(w->endpoint);
	free(w->container_id);
	free(w);
	pthread_cond_broadcast(rt->changed);
}

struct start_job {
	const struct runtime_config *cfg;
	const char *endpoint;
	const struct endpoint_container *c;
	const struct container_def *def;
	size_t n_model_containers;
	pthread_t thread;
	int result;
	struct berth_err err;
};

static void *start_one(void *arg)
{
	struct start_job *job = arg;
	job->result = container_start(job->cfg, job->endpoint, job->c, job->def, job->n_model_containers,
				      &job->err);
	return NULL;
}

static void *stop_one(void *arg)
{
	struct start_job *job = arg;
	container_stop_and_remove(job->cfg, job->c);
	return NULL;
}

/* Runs fn for each container in parallel threads and waits for all. */
static void run_parallel(struct start_job *jobs, size_t n, void *(*fn)(void *))
{
	for (size_t i = 0; i < n; i++)
		if (pthread_create(&jobs[i].thread, NULL, fn, &jobs[i]) != 0) {
			jobs[i].thread = 0;
			fn(&jobs[i]);
		}
	for (size_t i = 0; i < n; i++)
		if (jobs[i].thread)
			pthread_join(jobs[i].thread, NULL);
}

int runtime_start_containers(struct runtime *rt, const char *endpoint, const struct endpoint_container *c,
			     const struct container_def *const *defs, size_t n, struct berth_buf *reason)
{
	if (n == 0)
		return 0;
	struct start_job *jobs = calloc(n, sizeof(*jobs));
	if (jobs == NULL)
		return buf_append_str(reason, "out of memory"), -1;
	for (size_t i = 0; i < n; i++)
		jobs[i] = (struct start_job){ .cfg = &rt->cfg, .endpoint = endpoint, .c = &c[i], .def = defs[i],
					      .n_model_containers = n };
	run_parallel(jobs, n, start_one);
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		if (jobs[i].result < 0) {
			buf_printf(reason, "Container %s could not be started: %s", c[i].hostname, jobs[i].err.msg);
			r = -1;
		}
	free(jobs);
	return r;
}

void runtime_stop_containers(struct runtime *rt, const char *endpoint, const struct endpoint_container *c,
			     size_t n)
{
	if (n == 0)
		return;
	struct start_job *jobs = calloc(n, sizeof(*jobs));
	for (size_t i = 0; jobs && i < n; i++)
		jobs[i] = (struct start_job){ .cfg = &rt->cfg, .endpoint = endpoint, .c = &c[i] };
	if (jobs != NULL)
		run_parallel(jobs, n, stop_one);
	free(jobs);
}

static void stop_all(struct runtime *rt, const char *endpoint, const struct endpoint_container *c, size_t n)
{
	if (n == 0)
		return;
	struct start_job *jobs = calloc(n, sizeof(*jobs));
	const char **ids = calloc(n, sizeof(*ids));
	for (size_t i = 0; jobs && i < n; i++)
		jobs[i] = (struct start_job){ .cfg = &rt->cfg, .endpoint = endpoint, .c = &c[i] };
	if (jobs != NULL)
		run_parallel(jobs, n, stop_one);
	for (size_t i = 0; ids && i < n; i++)
		ids[i] = c[i].id;
	struct berth_err err;
	if (ids != NULL && cgroup_remove_endpoint(endpoint, ids, n, &err) < 0)
		log_warn("%s", err.msg);
	free(ids);
	free(jobs);
}

/* Polls every container's /ping until all answer 200, one exits, the
 * deadline passes, or the worker is cancelled. Returns 0 when healthy;
 * otherwise fills reason. */
static int wait_healthy(struct runtime *rt, struct worker *w, const struct endpoint_container *c, size_t n,
			struct berth_buf *reason)
{
	return runtime_wait_healthy(rt, w, c, n, reason);
}

int runtime_wait_healthy(struct runtime *rt, struct worker *w, const struct endpoint_container *c, size_t n,
			 struct berth_buf *reason)
{
	bool *healthy = calloc(n, sizeof(bool));
	if (healthy == NULL)
		return buf_append_str(reason, "out of memory"), -1;
	long long deadline = now_ms() + rt->cfg.health_timeout_ms;
	useconds_t pause = 2000;
	size_t n_healthy = 0;
	int r = -1;
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			if (healthy[i])
				continue;
			int status = 0;
			struct berth_err err;
			if (shim_ping(c[i].socket, rt->cfg.ping_timeout_ms, &status, &err) == 0 && status == 200) {
				healthy[i] = true;
				n_healthy++;
				continue;
			}
			struct shim_state st;
			if (shim_get_state(c[i].socket, &st, &err) < 0 || !st.running) {
				container_describe_exit(&rt->cfg, &c[i], reason);
				buf_append_str(reason, " before it passed the ping health check.");
				goto out;
			}
		}
		if (n_healthy == n) {
			r = 0;
			goto out;
		}
		pthread_mutex_lock(rt->lock);
		bool cancel = w->cancel;
		pthread_mutex_unlock(rt->lock);
		if (cancel) {
			buf_append_str(reason, "cancelled");
			goto out;
		}
		if (now_ms() > deadline) {
			for (size_t i = 0; i < n; i++)
				if (!healthy[i]) {
					buf_printf(reason, "container %s did not pass the ping health check within %d seconds.",
						   c[i].hostname, rt->cfg.health_timeout_ms / 1000);
					break;
				}
			goto out;
		}
		usleep(pause);
		if (pause < 50000)
			pause = pause * 3 / 2;
	}
out:
	free(healthy);
	return r;
}

static void append_logs(const struct endpoint_container *c, size_t n, struct berth_buf *reason)
{
	runtime_append_logs(c, n, reason);
}

void runtime_append_logs(const struct endpoint_container *c, size_t n, struct berth_buf *reason)
{
	for (size_t i = 0; i < n; i++) {
		struct berth_buf tail = BERTH_BUF_INIT;
		container_log_tail(&c[i], 5, &tail);
		if (tail.len > 0)
			buf_printf(reason, " Last log lines of %s: %s", c[i].hostname, tail.data);
		buf_free(&tail);
	}
}

static void *start_worker(void *arg)
{
	struct worker *w = arg;
	struct runtime *rt = w->rt;
	struct berth_buf reason = BERTH_BUF_INIT;
	struct endpoint_container *containers = NULL;
	const struct container_def **defs = NULL;
	size_t n = 0;
	struct model **models = NULL;
	size_t n_models = 0;
	struct endpoint_container *stale = NULL;
	size_t n_stale = 0;

	pthread_mutex_lock(rt->lock);
	const struct endpoint *e = store_get_endpoint(rt->store, w->endpoint);
	if (e == NULL || strcmp(e->status, "Creating") != 0) {
		worker_done(w);
		pthread_mutex_unlock(rt->lock);
		return NULL;
	}
	/* containers left by a berthd that died while creating: replace them */
	stale = copy_containers(e);
	n_stale = e->n_containers;
	/* the endpoint keeps the variants it was created with, so a config
	 * deleted since (as SageMaker allows) does not matter */
	const struct endpoint_config *cfg = store_get_endpoint_config(rt->store, e->config_name);
	const struct variant *variants = e->n_variants > 0 ? e->variants : cfg != NULL ? cfg->variants : NULL;
	n_models = e->n_variants > 0 ? e->n_variants : cfg != NULL ? cfg->n_variants : 0;
	models = calloc(n_models + 1, sizeof(*models));
	if (models == NULL)
		n_models = 0;
	if (n_models == 0)
		buf_printf(&reason, "Could not find the production variants of endpoint configuration \"%s\".",
			   e->config_name);
	/* every instance of every variant; an instance's containers in model order */
	for (size_t v = 0; v < n_models && reason.len == 0; v++) {
		const struct model *m = store_get_model(rt->store, variants[v].model_name);
		if (m == NULL) {
			buf_printf(&reason, "Could not find model \"%s\" of endpoint configuration \"%s\".",
				   variants[v].model_name, e->config_name);
			break;
		}
		struct berth_err err;
		if ((models[v] = model_dup(m)) == NULL ||
		    runtime_alloc_instances(rt, &variants[v], models[v], 0, variants[v].initial_instance_count, false,
					    &containers, &defs, &n, &err) < 0)
			buf_printf(&reason, "%s", models[v] ? err.msg : "out of memory");
	}
	if (reason.len == 0) /* record the ids before anything runs, so a crash can clean up */
		set_status(rt, w->endpoint, "Creating", NULL, containers, n, true);
	pthread_mutex_unlock(rt->lock);

	stop_all(rt, w->endpoint, stale, n_stale);
	long long t0 = now_ms();
	if (reason.len == 0)
		runtime_start_containers(rt, w->endpoint, containers, defs, n, &reason);
	if (reason.len == 0 && wait_healthy(rt, w, containers, n, &reason) < 0)
		append_logs(containers, n, &reason);

	pthread_mutex_lock(rt->lock);
	e = store_get_endpoint(rt->store, w->endpoint);
	bool still_creating = e != NULL && strcmp(e->status, "Creating") == 0 && !w->cancel;
	if (still_creating && reason.len == 0) {
		log_info("endpoint %s: %zu container%s healthy in %lld ms", w->endpoint, n, n == 1 ? "" : "s",
			 now_ms() - t0);
		set_status(rt, w->endpoint, "InService", NULL, NULL, 0, false);
	}
	pthread_mutex_unlock(rt->lock);

	if (still_creating && reason.len > 0) {
		stop_all(rt, w->endpoint, containers, n);
		pthread_mutex_lock(rt->lock);
		e = store_get_endpoint(rt->store, w->endpoint);
		if (e != NULL && strcmp(e->status, "Creating") == 0)
			set_status(rt, w->endpoint, "Failed", reason.data, NULL, 0, true);
		pthread_mutex_unlock(rt->lock);
	}
	pthread_mutex_lock(rt->lock);
	worker_done(w);
	pthread_mutex_unlock(rt->lock);
	endpoint_containers_free(containers, n);
	free(defs);
	endpoint_containers_free(stale, n_stale);
	for (size_t v = 0; v < n_models; v++)
		if (models[v] != NULL)
			model_free(models[v]);
	free(models);
	buf_free(&reason);
	return NULL;
}

int runtime_alloc_instances(struct runtime *rt, const struct variant *v, const struct model *m,
			    long long first_instance, long long count, bool pending, struct endpoint_container **out,
			    const struct container_def ***defs, size_t *n, struct berth_err *err)
{
	size_t add = (size_t)(count > 0 ? count : 0) * m->n_containers;
	struct endpoint_container *c = realloc(*out, (*n + add + 1) * sizeof(*c));
	if (c == NULL)
		return berth_err_set(err, ENOMEM, "containers");
	*out = c;
	const struct container_def **d = realloc(*defs, (*n + add + 1) * sizeof(*d));
	if (d == NULL)
		return berth_err_set(err, ENOMEM, "containers");
	*defs = d;
	for (long long k = first_instance; k < first_instance + count; k++)
		for (size_t i = 0; i < m->n_containers; i++) {
			struct endpoint_container *x = &c[*n];
			if (container_alloc(&rt->cfg, m->containers[i].hostname, x, err) < 0) {
				free(x->id);
				free(x->hostname);
				free(x->socket);
				free(x->log);
				return -1;
			}
			x->variant = strdup(v->variant_name);
			x->instance = k;
			x->pending = pending;
			d[*n] = &m->containers[i];
			(*n)++;
			if (x->variant == NULL)
				return berth_err_set(err, ENOMEM, "containers");
		}
	return 0;
}

static void *stop_worker(void *arg)
{
	struct worker *w = arg;
	struct runtime *rt = w->rt;
	pthread_mutex_lock(rt->lock);
	/* a start, update or restart still running for this endpoint is
	 * cancelled and waited for */
	runtime_workers_cancel_wait(rt, w->endpoint,
				    1u << WORKER_START | 1u << WORKER_UPDATE | 1u << WORKER_RESTART, w);
	const struct endpoint *e = store_get_endpoint(rt->store, w->endpoint);
	size_t n = e ? e->n_containers : 0;
	struct endpoint_container *containers = e ? copy_containers(e) : NULL;
	pthread_mutex_unlock(rt->lock);

	if (containers != NULL)
		stop_all(rt, w->endpoint, containers, n);
	mme_forget_endpoint(rt->cfg.mme, w->endpoint); /* (mme) STATE/mme/ENDPOINT */

	pthread_mutex_lock(rt->lock);
	struct berth_err err;
	if (store_get_endpoint(rt->store, w->endpoint) != NULL &&
	    store_delete_endpoint(rt->store, w->endpoint, &err) < 0)
		log_error("endpoint %s: containers stopped but the record could not be removed: %s", w->endpoint,
			  err.msg);
	else
		log_info("endpoint %s: deleted", w->endpoint);
	push_routes(rt);
	worker_done(w);
	pthread_mutex_unlock(rt->lock);
	endpoint_containers_free(containers, n);
	return NULL;
}

/* With *lock held. */
static void worker_spawn(struct runtime *rt, const char *endpoint, enum worker_kind kind)
{
	runtime_worker_spawn(rt, endpoint, kind, NULL,
			     kind == WORKER_START    ? start_worker
			     : kind == WORKER_UPDATE ? runtime_update_worker
						     : stop_worker);
}

struct worker *runtime_worker_spawn(struct runtime *rt, const char *endpoint, enum worker_kind kind,
				    const char *container_id, void *(*fn)(void *))
{
	struct worker *w = calloc(1, sizeof(*w));
	if (w == NULL || (w->endpoint = strdup(endpoint)) == NULL ||
	    (container_id && (w->container_id = strdup(container_id)) == NULL)) {
		if (w)
			free(w->endpoint);
		free(w);
		log_error("endpoint %s: out of memory starting a worker", endpoint);
		return NULL;
	}
	w->rt = rt;
	w->kind = kind;
	w->next = rt->workers;
	rt->workers = w;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	if (pthread_create(&t, &attr, fn, w) != 0) {
		log_error("endpoint %s: cannot start a worker thread", endpoint);
		worker_done(w);
		w = NULL;
	}
	pthread_attr_destroy(&attr);
	return w;
}

/* ---- hooks -------------------------------------------------------------- */

/* Creating: start the endpoint; Updating (UpdateEndpoint,
 * UpdateEndpointWeightsAndCapacities): roll the change out. */
static void hook_start(void *data, const char *name)
{
	struct runtime *rt = data;
	const struct endpoint *e = store_get_endpoint(rt->store, name);
	worker_spawn(rt, name, e != NULL && strcmp(e->status, "Updating") == 0 ? WORKER_UPDATE : WORKER_START);
}

static void hook_stop(void *data, const char *name)
{
	worker_spawn(data, name, WORKER_STOP);
}

static void hook_routes(void *data)
{
	push_routes(data);
}

static int hook_image_check(void *data, const char *image, struct berth_err *err)
{
	struct runtime *rt = data;
	return image_check(rt->cfg.images, image, err);
}

static int hook_model_data_check(void *data, const char *url, struct berth_err *err)
{
	struct runtime *rt = data;
	static const struct objstore_config nothing = { 0 };
	return objstore_check(rt->cfg.store ? rt->cfg.store : &nothing, url, err);
}

struct api_runtime_hooks runtime_hooks(struct runtime *rt)
{
	return (struct api_runtime_hooks){
		.data = rt,
		.endpoint_start = hook_start,
		.endpoint_stop = hook_stop,
		.routes_changed = hook_routes,
		.image_check = hook_image_check,
		.model_data_check = hook_model_data_check,
	};
}

/* Container directories (and their overlay mounts) no endpoint refers to
 * are what a berthd that died mid-way left behind: remove them first. */
static void remove_orphan_containers(struct runtime *rt)
{
	size_t total = 0;
	for (size_t i = 0; i < store_count_endpoints(rt->store); i++)
		total += store_endpoint_at(rt->store, i)->n_containers;
	const char **ids = calloc(total + 1, sizeof(char *));
	if (ids == NULL)
		return;
	size_t k = 0;
	for (size_t i = 0; i < store_count_endpoints(rt->store); i++) {
		const struct endpoint *e = store_endpoint_at(rt->store, i);
		for (size_t j = 0; j < e->n_containers; j++)
			ids[k++] = e->containers[j].id;
	}
	container_remove_orphans(&rt->cfg, ids, k);
	free(ids);
}

void runtime_resume(struct runtime *rt)
{
	remove_orphan_containers(rt);
	/* names first: set_status replaces records while we walk */
	size_t n = store_count_endpoints(rt->store);
	char **names = calloc(n + 1, sizeof(char *));
	for (size_t i = 0; names && i < n; i++)
		names[i] = strdup(store_endpoint_at(rt->store, i)->name);
	for (size_t i = 0; names && i < n; i++) {
		const struct endpoint *e = store_get_endpoint(rt->store, names[i]);
		if (e == NULL)
			continue;
		if (strcmp(e->status, "Creating") == 0) {
			log_info("endpoint %s: resuming creation", e->name);
			worker_spawn(rt, e->name, WORKER_START);
		} else if (strcmp(e->status, "Deleting") == 0) {
			log_info("endpoint %s: resuming deletion", e->name);
			worker_spawn(rt, e->name, WORKER_STOP);
		} else if (strcmp(e->status, "Updating") == 0) {
			/* drops what the interrupted update had started or was retiring,
			 * then rolls it out again (or finishes a scale) */
			runtime_update_resume(rt, e->name);
		} else if (strcmp(e->status, "InService") == 0) {
			/* running containers are adopted as they are; the health monitor
			 * restarts those that died while berthd was down */
			size_t running = 0;
			for (size_t j = 0; j < e->n_containers; j++) {
				struct shim_state st;
				struct berth_err err;
				if (shim_get_state(e->containers[j].socket, &st, &err) == 0 && st.running)
					running++;
			}
			log_info("endpoint %s: re-adopted %zu running container%s of %zu", e->name, running,
				 running == 1 ? "" : "s", e->n_containers);
		}
	}
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
	health_start(rt);
}

int runtime_ps(struct runtime *rt, struct berth_buf *out)
{
	struct row {
		char *endpoint;
		struct endpoint_container c;
		long long healthy_for_ms;
		int failures;
	};
	pthread_mutex_lock(rt->lock);
	size_t total = 0;
	for (size_t i = 0; i < store_count_endpoints(rt->store); i++)
		total += store_endpoint_at(rt->store, i)->n_containers;
	struct row *rows = calloc(total + 1, sizeof(*rows));
	size_t k = 0;
	for (size_t i = 0; rows && i < store_count_endpoints(rt->store); i++) {
		const struct endpoint *e = store_endpoint_at(rt->store, i);
		for (size_t j = 0; j < e->n_containers; j++, k++) {
			rows[k].endpoint = strdup(e->name);
			endpoint_container_copy(&rows[k].c, &e->containers[j]);
			if (rows[k].c.variant == NULL)
				rows[k].c.variant = strdup(endpoint_container_variant(e, &e->containers[j]));
			health_describe(rt, e->containers[j].id, &rows[k].healthy_for_ms, &rows[k].failures);
		}
	}
	pthread_mutex_unlock(rt->lock);
	if (rows == NULL)
		return -1;
	yajl_gen g = json_gen_new();
	yajl_gen_map_open(g);
	json_gen_str(g, "containers");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < k; i++) {
		struct shim_state st;
		struct berth_err err;
		bool reachable = shim_get_state(rows[i].c.socket, &st, &err) == 0;
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "endpoint", rows[i].endpoint);
		json_gen_kv_str(g, "hostname", rows[i].c.hostname);
		json_gen_kv_str(g, "id", rows[i].c.id);
		json_gen_kv_str(g, "state", reachable && st.running ? "running" : "stopped");
		json_gen_kv_int(g, "pid", reachable ? st.pid : 0);
		json_gen_kv_str(g, "log", rows[i].c.log);
		json_gen_kv_str(g, "variant", rows[i].c.variant ? rows[i].c.variant : "");
		json_gen_kv_int(g, "instance", rows[i].c.instance);
		json_gen_kv_int(g, "restarts", rows[i].c.restarts);
		json_gen_kv_str(g, "health", rows[i].c.pending ? "starting"
					   : rows[i].c.retiring ? "draining"
					   : rows[i].c.down ? "down" : "healthy");
		json_gen_kv_int(g, "ping_failures", rows[i].failures);
		if (reachable && st.running && st.started_at > 0)
			json_gen_kv_double(g, "started_at", st.started_at);
		if (reachable && st.running && st.pid > 0)
			cgroup_usage_gen(st.pid, g);
		yajl_gen_map_close(g);
		free(rows[i].endpoint);
		free(rows[i].c.id);
		free(rows[i].c.hostname);
		free(rows[i].c.socket);
		free(rows[i].c.log);
		free(rows[i].c.variant);
	}
	free(rows);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	return json_gen_finish(g, out);
}

struct runtime *runtime_new(const struct runtime_config *cfg, struct store *store, pthread_mutex_t *lock,
			    pthread_cond_t *changed, struct berth_err *err)
{
	struct runtime *rt = calloc(1, sizeof(*rt));
	if (rt == NULL) {
		berth_err_set(err, ENOMEM, "runtime");
		return NULL;
	}
	rt->cfg = *cfg;
	rt->store = store;
	rt->lock = lock;
	rt->changed = changed;
	return rt;
}

void runtime_free(struct runtime *rt)
{
	if (rt == NULL)
		return;
	health_stop(rt);
	pthread_mutex_lock(rt->lock);
	for (struct worker *w = rt->workers; w; w = w->next)
		w->cancel = true;
	long long deadline = now_ms() + 5000;
	while (rt->workers != NULL && now_ms() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(rt->changed, rt->lock, &ts);
	}
	for (size_t i = 0; i < rt->n_watchers; i++)
		close(rt->watchers[i]);
	free(rt->watchers);
	pthread_mutex_unlock(rt->lock);
	free(rt);
}
