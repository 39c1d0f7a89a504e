/* containers.c — what the runtime does to a set of containers at once:
 * allocate an instance's containers, start or stop them in parallel
 * threads, wait until all pass their ping health check. */
#include "runtime_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"
#include "clock.h"
#include "container.h"
#include "container_http.h"
#include "cdi_registry.h"
#include "devices.h"
#include "log.h"
#include "shim_client.h"
#include "uid_range.h"

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
	for (size_t i = 0; i < n; i++) {
		/* the model's container count: those of c[i]'s instance (a batch
		 * may hold instances of several variants, each its own model) */
		size_t same = 0;
		for (size_t j = 0; j < n; j++)
			same += c[j].instance == c[i].instance &&
				((c[j].variant == NULL && c[i].variant == NULL) ||
				 (c[j].variant != NULL && c[i].variant != NULL && strcmp(c[j].variant, c[i].variant) == 0));
		jobs[i] = (struct start_job){ .cfg = &rt->cfg, .endpoint = endpoint, .c = &c[i], .def = defs[i],
					      .n_model_containers = same };
	}
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
	runtime_trim_artifacts(rt);
}

void runtime_stop_all(struct runtime *rt, const char *endpoint, const struct endpoint_container *c, size_t n)
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
	if (ids != NULL && cgroup_remove_endpoint(rt->cfg.cgroup_root, endpoint, ids, n, &err) < 0)
		log_warn("%s", err.msg);
	free(ids);
	free(jobs);
	runtime_trim_artifacts(rt);
}

long long runtime_startup_timeout_ms(const struct runtime_config *cfg, const struct endpoint_container *c)
{
	return c->startup_timeout_ms > 0 ? c->startup_timeout_ms : cfg->health_timeout_ms;
}

int runtime_wait_healthy(struct runtime *rt, struct worker *w, const struct endpoint_container *c, size_t n,
			 struct berth_buf *reason)
{
	bool *healthy = calloc(n, sizeof(bool));
	struct berth_err *last = calloc(n, sizeof(*last)); /* each container's last ping failure */
	if (healthy == NULL || last == NULL) {
		free(healthy);
		free(last);
		return buf_append_str(reason, "out of memory"), -1;
	}
	/* each container's variant may set its own (ContainerStartupHealthCheckTimeoutInSeconds) */
	long long start = clock_now_ms();
	useconds_t pause = 2000;
	size_t n_healthy = 0;
	int r = -1;
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			if (healthy[i])
				continue;
			int status = 0;
			struct berth_err err;
			int pr = container_ping(c[i].socket, rt->cfg.ping_timeout_ms, &status, &err);
			if (pr == 0 && status == 200) {
				healthy[i] = true;
				n_healthy++;
				continue;
			}
			if (pr == 0)
				berth_err_set(&last[i], 0, "GET /ping answered %d", status);
			else
				last[i] = err;
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
		long long now = clock_now_ms();
		for (size_t i = 0; i < n; i++) {
			long long timeout_ms = runtime_startup_timeout_ms(&rt->cfg, &c[i]);
			if (!healthy[i] && now - start > timeout_ms) {
				buf_printf(reason, "container %s did not pass the ping health check within %lld seconds "
					   "(last: %s).", c[i].hostname, timeout_ms / 1000,
					   last[i].msg[0] ? last[i].msg : "no answer");
				goto out;
			}
		}
		usleep(pause);
		if (pause < 50000)
			pause = pause * 3 / 2;
	}
out:
	free(healthy);
	free(last);
	return r;
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

/* (userns) A free uid range: none recorded in the store, none among the
 * n containers allocated so far (not on disk yet). Called with *lock held,
 * and the caller persists the records before letting go of it. */
static int pick_uid_base(struct runtime *rt, const struct endpoint_container *fresh, size_t n, long long *base,
			 struct berth_err *err)
{
	size_t cap = n;
	for (size_t i = 0; i < store_count_endpoints(rt->store); i++)
		cap += store_endpoint_at(rt->store, i)->n_containers;
	_cleanup_free_ long long *used = calloc(cap + 1, sizeof(*used));
	if (used == NULL)
		return berth_err_set(err, ENOMEM, "uid ranges");
	size_t n_used = 0;
	for (size_t i = 0; i < store_count_endpoints(rt->store); i++) {
		const struct endpoint *e = store_endpoint_at(rt->store, i);
		for (size_t j = 0; j < e->n_containers; j++)
			if (e->containers[j].uid_base > 0)
				used[n_used++] = e->containers[j].uid_base;
	}
	for (size_t j = 0; j < n; j++)
		if (fresh[j].uid_base > 0)
			used[n_used++] = fresh[j].uid_base;
	return uid_range_pick(rt->cfg.userns, used, n_used, base, err);
}

int runtime_alloc_instances(struct runtime *rt, const struct variant *v, const struct model *m,
			    long long first_instance, long long count, bool pending, struct endpoint_container **out,
			    const struct container_def ***defs, size_t *n, struct berth_err *err)
{
	return runtime_alloc_instances_replacing(rt, NULL, v, m, first_instance, count, pending, out, defs, n, err);
}

int runtime_alloc_instances_replacing(struct runtime *rt, const char *replacing, const struct variant *v,
				      const struct model *m, long long first_instance, long long count, bool pending,
				      struct endpoint_container **out, const struct container_def ***defs, size_t *n,
				      struct berth_err *err)
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
	for (long long k = first_instance; k < first_instance + count; k++) {
		/* one range per instance: its containers share it, no other does */
		long long uid_base = 0;
		if (rt->cfg.userns != NULL && pick_uid_base(rt, c, *n, &uid_base, err) < 0)
			return -1;
		/* (devices) one set per instance too, shared by its containers */
		char **devices = NULL;
		size_t n_devices = 0;
		if (rt->cfg.limits != NULL &&
		    devices_reserve(rt->cfg.limits, v->instance_type, replacing, c, *n, &devices, &n_devices, err) < 0)
			return -1;
		for (size_t i = 0; i < m->n_containers; i++) {
			struct endpoint_container *x = &c[*n];
			if (container_alloc(&rt->cfg, m->containers[i].hostname, x, err) < 0) {
				cdi_names_free(devices);
				free(x->id);
				free(x->hostname);
				free(x->socket);
				free(x->log);
				return -1;
			}
			x->variant = strdup(v->variant_name);
			x->instance = k;
			x->pending = pending;
			x->uid_base = uid_base;
			x->startup_timeout_ms = v->startup_health_check_timeout_s * 1000;
			x->download_timeout_ms = v->model_data_download_timeout_s * 1000;
			x->devices = NULL;
			x->n_devices = 0;
			d[*n] = &m->containers[i];
			(*n)++;
			if (x->variant == NULL ||
			    (n_devices > 0 && (x->devices = calloc(n_devices, sizeof(char *))) == NULL)) {
				cdi_names_free(devices);
				return berth_err_set(err, ENOMEM, "containers");
			}
			for (size_t j = 0; j < n_devices; j++)
				if ((x->devices[x->n_devices] = strdup(devices[j])) != NULL)
					x->n_devices++;
			if (x->n_devices != n_devices) {
				cdi_names_free(devices);
				return berth_err_set(err, ENOMEM, "containers");
			}
		}
		cdi_names_free(devices);
	}
	return 0;
}

void runtime_models_free(struct model **models, size_t n)
{
	for (size_t v = 0; models != NULL && v < n; v++)
		if (models[v] != NULL)
			model_free(models[v]);
	free(models);
}
