/* runtime.c — see runtime.h. */
#include "runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "container.h"
#include "image.h"
#include "ipc.h"
#include "json.h"
#include "log.h"
#include "shim_client.h"

enum worker_kind { WORKER_START, WORKER_STOP };

struct worker {
	struct runtime *rt;
	enum worker_kind kind;
	char *endpoint;
	bool cancel;            /* set by a stop that overtakes a start */
	struct worker *next;
};

struct runtime {
	struct runtime_config cfg;
	struct store *store;
	pthread_mutex_t *lock;
	pthread_cond_t *changed;
	struct worker *workers;  /* guarded by *lock */
	int *watchers;           /* router sockets, guarded by *lock */
	size_t n_watchers;
	unsigned long long generation;
};

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
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "name", e->variant_name ? e->variant_name : "AllTraffic");
		json_gen_kv_double(g, "weight", 1.0);
		json_gen_str(g, "instances");
		yajl_gen_array_open(g);
		if (e->n_containers > 0) {
			yajl_gen_map_open(g);
			json_gen_str(g, "containers");
			yajl_gen_array_open(g);
			for (size_t j = 0; j < e->n_containers; j++) {
				yajl_gen_map_open(g);
				json_gen_kv_str(g, "hostname", e->containers[j].hostname);
				json_gen_kv_str(g, "socket", e->containers[j].socket);
				json_gen_kv_str(g, "log", e->containers[j].log);
				yajl_gen_map_close(g);
			}
			yajl_gen_array_close(g);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
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
		struct endpoint tmp = { .containers = e->containers, .n_containers = e->n_containers };
		e->containers = NULL;
		e->n_containers = 0;
		for (size_t i = 0; i < tmp.n_containers; i++) {
			free(tmp.containers[i].id);
			free(tmp.containers[i].hostname);
			free(tmp.containers[i].socket);
			free(tmp.containers[i].log);
		}
		free(tmp.containers);
		if (n_containers > 0) {
			e->containers = calloc(n_containers, sizeof(*e->containers));
			for (size_t i = 0; e->containers && i < n_containers; i++) {
				e->containers[i].id = strdup(containers[i].id);
				e->containers[i].hostname = strdup(containers[i].hostname);
				e->containers[i].socket = strdup(containers[i].socket);
				e->containers[i].log = strdup(containers[i].log);
			}
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

static void free_containers(struct endpoint_container *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].id);
		free(c[i].hostname);
		free(c[i].socket);
		free(c[i].log);
	}
	free(c);
}

static struct endpoint_container *copy_containers(const struct endpoint *e)
{
	struct endpoint_container *c = calloc(e->n_containers + 1, sizeof(*c));
	for (size_t i = 0; c && i < e->n_containers; i++) {
		c[i].id = strdup(e->containers[i].id);
		c[i].hostname = strdup(e->containers[i].hostname);
		c[i].socket = strdup(e->containers[i].socket);
		c[i].log = strdup(e->containers[i].log);
	}
	return c;
}

/* ---- workers ------------------------------------------------------------ */

static struct worker *worker_find(struct runtime *rt, const char *endpoint, enum worker_kind kind)
{
	for (struct worker *w = rt->workers; w; w = w->next)
		if (w->kind == kind && strcmp(w->endpoint, endpoint) == 0)
			return w;
	return NULL;
}

/* With *lock held. */
static void worker_done(struct worker *w)
{
	struct runtime *rt = w->rt;
	for (struct worker **p = &rt->workers; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	free(w->endpoint);
	free(w);
	pthread_cond_broadcast(rt->changed);
}

struct start_job {
	const struct runtime_config *cfg;
	const char *endpoint;
	const struct endpoint_container *c;
	const struct container_def *def;
	pthread_t thread;
	int result;
	struct berth_err err;
};

static void *start_one(void *arg)
{
	struct start_job *job = arg;
	job->result = container_start(job->cfg, job->endpoint, job->c, job->def, &job->err);
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
	size_t n = 0;
	struct model *model = NULL;
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
	const char *model_name = e->n_variants > 0 ? e->variants[0].model_name
			       : cfg != NULL && cfg->n_variants > 0 ? cfg->variants[0].model_name : NULL;
	const struct model *m = model_name ? store_get_model(rt->store, model_name) : NULL;
	if (m == NULL) {
		buf_printf(&reason, "Could not find model \"%s\" of endpoint configuration \"%s\".",
			   model_name ? model_name : "?", e->config_name);
	} else {
		model = model_dup(m);
		n = model ? model->n_containers : 0;
		containers = calloc(n + 1, sizeof(*containers));
		struct berth_err err;
		for (size_t i = 0; containers && i < n; i++)
			if (container_alloc(&rt->cfg, model->containers[i].hostname, &containers[i], &err) < 0) {
				buf_printf(&reason, "%s", err.msg);
				break;
			}
		if (model == NULL || containers == NULL)
			buf_append_str(&reason, "out of memory");
	}
	if (reason.len == 0) /* record the ids before anything runs, so a crash can clean up */
		set_status(rt, w->endpoint, "Creating", NULL, containers, n, true);
	pthread_mutex_unlock(rt->lock);

	stop_all(rt, w->endpoint, stale, n_stale);
	long long t0 = now_ms();
	if (reason.len == 0) {
		struct start_job *jobs = calloc(n, sizeof(*jobs));
		for (size_t i = 0; jobs && i < n; i++)
			jobs[i] = (struct start_job){ .cfg = &rt->cfg, .endpoint = w->endpoint, .c = &containers[i],
						      .def = &model->containers[i] };
		if (jobs == NULL) {
			buf_append_str(&reason, "out of memory");
		} else {
			run_parallel(jobs, n, start_one);
			for (size_t i = 0; i < n; i++)
				if (jobs[i].result < 0) {
					buf_printf(&reason, "Container %s could not be started: %s", containers[i].hostname,
						   jobs[i].err.msg);
					break;
				}
		}
		free(jobs);
	}
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
	free_containers(containers, n);
	free_containers(stale, n_stale);
	if (model != NULL)
		model_free(model);
	buf_free(&reason);
	return NULL;
}

static void *stop_worker(void *arg)
{
	struct worker *w = arg;
	struct runtime *rt = w->rt;
	pthread_mutex_lock(rt->lock);
	/* a start still running for this endpoint is cancelled and waited for */
	for (struct worker *s; (s = worker_find(rt, w->endpoint, WORKER_START)) != NULL;) {
		s->cancel = true;
		pthread_cond_wait(rt->changed, rt->lock);
	}
	const struct endpoint *e = store_get_endpoint(rt->store, w->endpoint);
	size_t n = e ? e->n_containers : 0;
	struct endpoint_container *containers = e ? copy_containers(e) : NULL;
	pthread_mutex_unlock(rt->lock);

	if (containers != NULL)
		stop_all(rt, w->endpoint, containers, n);

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
	free_containers(containers, n);
	return NULL;
}

/* With *lock held. */
static void worker_spawn(struct runtime *rt, const char *endpoint, enum worker_kind kind)
{
	struct worker *w = calloc(1, sizeof(*w));
	if (w == NULL || (w->endpoint = strdup(endpoint)) == NULL) {
		free(w);
		log_error("endpoint %s: out of memory starting a worker", endpoint);
		return;
	}
	w->rt = rt;
	w->kind = kind;
	w->next = rt->workers;
	rt->workers = w;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	if (pthread_create(&t, &attr, kind == WORKER_START ? start_worker : stop_worker, w) != 0) {
		log_error("endpoint %s: cannot start a worker thread", endpoint);
		worker_done(w);
	}
	pthread_attr_destroy(&attr);
}

/* ---- hooks -------------------------------------------------------------- */

static void hook_start(void *data, const char *name)
{
	worker_spawn(data, name, WORKER_START);
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
	(void)data;
	return image_check(image, err);
}

struct api_runtime_hooks runtime_hooks(struct runtime *rt)
{
	return (struct api_runtime_hooks){
		.data = rt,
		.endpoint_start = hook_start,
		.endpoint_stop = hook_stop,
		.routes_changed = hook_routes,
		.image_check = hook_image_check,
	};
}

void runtime_resume(struct runtime *rt)
{
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
		} else if (strcmp(e->status, "InService") == 0) {
			struct berth_buf reason = BERTH_BUF_INIT;
			for (size_t j = 0; j < e->n_containers && reason.len == 0; j++) {
				struct shim_state st;
				struct berth_err err;
				if (shim_get_state(e->containers[j].socket, &st, &err) < 0 || !st.running) {
					container_describe_exit(&rt->cfg, &e->containers[j], &reason);
					buf_append_str(&reason, " while berthd was not running.");
				}
			}
			if (reason.len == 0)
				log_info("endpoint %s: re-adopted %zu running container%s", e->name, e->n_containers,
					 e->n_containers == 1 ? "" : "s");
			else
				set_status(rt, e->name, "Failed", reason.data, NULL, 0, false);
			buf_free(&reason);
		}
	}
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

int runtime_ps(struct runtime *rt, struct berth_buf *out)
{
	struct row {
		char *endpoint;
		struct endpoint_container c;
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
			rows[k].c.id = strdup(e->containers[j].id);
			rows[k].c.hostname = strdup(e->containers[j].hostname);
			rows[k].c.socket = strdup(e->containers[j].socket);
			rows[k].c.log = strdup(e->containers[j].log);
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
		yajl_gen_map_close(g);
		free(rows[i].endpoint);
		free(rows[i].c.id);
		free(rows[i].c.hostname);
		free(rows[i].c.socket);
		free(rows[i].c.log);
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
