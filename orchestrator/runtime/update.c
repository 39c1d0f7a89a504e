/* update.c — the worker of an endpoint in status Updating.
 *
 * UpdateEndpoint (record's pending_config_name set) is blue/green: the new
 * config's instances are allocated, recorded as pending (so a crash can
 * clean them up) and started in parallel; once every one answers /ping
 * they get the traffic in one route-table swap (old containers become
 * retiring in the same persisted change), the old ones drain for
 * UPDATE_DRAIN_MS (requests already sent to them finish; the router has
 * stopped sending new ones) and are stopped, and the endpoint is InService
 * on the new EndpointConfigName. When a new container fails, the new ones
 * are stopped and the endpoint stays InService on the old config, which
 * served throughout, with FailureReason saying why the update was rolled
 * back (as SageMaker reports a failed update on an endpoint that keeps
 * serving).
 *
 * UpdateEndpointWeightsAndCapacities (no pending config) has already set
 * the variants' weights and desired counts: missing instances are started
 * (pending until healthy), surplus ones (highest index first) retire and
 * drain the same way. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "container.h"
#include "log.h"
#include "runtime_internal.h"
#include "store.h"

#define UPDATE_DRAIN_MS 2000 /* old containers keep running after traffic moved */

/* With *lock held: a copy of the record, for changing and committing. */
static struct endpoint *record_dup(struct runtime *rt, const char *name)
{
	const struct endpoint *cur = store_get_endpoint(rt->store, name);
	return cur ? endpoint_dup(cur) : NULL;
}

/* Removes from e the containers for which drop() says so; returns them
 * (copies) in *out. */
static void remove_containers(struct endpoint *e, bool (*drop)(const struct endpoint_container *),
			      struct endpoint_container **out, size_t *n_out)
{
	size_t keep = 0;
	*out = calloc(e->n_containers + 1, sizeof(**out));
	*n_out = 0;
	for (size_t i = 0; i < e->n_containers; i++) {
		if (drop(&e->containers[i])) {
			if (*out != NULL)
				(*out)[(*n_out)++] = e->containers[i];
			else { /* out of memory: nobody needs the copy */
				endpoint_container_clear(&e->containers[i]);
			}
			continue;
		}
		e->containers[keep++] = e->containers[i];
	}
	e->n_containers = keep;
}

static bool is_pending(const struct endpoint_container *c)
{
	return c->pending;
}

static bool is_retiring(const struct endpoint_container *c)
{
	return c->retiring;
}

static bool is_pending_or_retiring(const struct endpoint_container *c)
{
	return c->pending || c->retiring;
}

/* Appends copies of n containers to e. */
static int append_containers(struct endpoint *e, const struct endpoint_container *c, size_t n)
{
	struct endpoint_container *grown = realloc(e->containers, (e->n_containers + n + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	e->containers = grown;
	for (size_t i = 0; i < n; i++) {
		if (endpoint_container_copy(&e->containers[e->n_containers], &c[i]) < 0)
			return -1;
		e->n_containers++;
	}
	return 0;
}

/* With *lock held: finishes with status InService (reason may be NULL). */
static void finish(struct runtime *rt, const char *name, const char *reason, bool clear_reason)
{
	struct endpoint *e = record_dup(rt, name);
	if (e == NULL)
		return;
	free(e->status);
	e->status = strdup("InService");
	free(e->pending_config_name);
	e->pending_config_name = NULL;
	if (reason != NULL || clear_reason) {
		free(e->failure_reason);
		e->failure_reason = reason ? strdup(reason) : NULL;
	}
	e->last_modified_time = clock_epoch_seconds();
	log_info("endpoint %s: InService%s%s", name, reason ? ": " : "", reason ? reason : "");
	runtime_commit(rt, e);
}

/* Drains and stops the retiring containers, then removes them. */
static void retire(struct runtime *rt, struct worker *w, bool drain)
{
	if (drain)
		usleep(UPDATE_DRAIN_MS * 1000);
	pthread_mutex_lock(rt->lock);
	/* a restart of a container that is now retiring must not race its stop */
	runtime_workers_cancel_wait(rt, w->endpoint, 1u << WORKER_RESTART, w);
	struct endpoint *e = record_dup(rt, w->endpoint);
	struct endpoint_container *old = NULL;
	size_t n_old = 0;
	for (size_t i = 0; e && i < e->n_containers; i++)
		if (e->containers[i].retiring)
			n_old++;
	if (e != NULL && n_old > 0) {
		old = calloc(n_old, sizeof(*old));
		n_old = 0;
		for (size_t i = 0; old && i < e->n_containers; i++)
			if (e->containers[i].retiring)
				endpoint_container_copy(&old[n_old++], &e->containers[i]);
	}
	endpoint_free(e);
	pthread_mutex_unlock(rt->lock);

	runtime_stop_containers(rt, w->endpoint, old, n_old);

	pthread_mutex_lock(rt->lock);
	e = record_dup(rt, w->endpoint);
	if (e != NULL) {
		struct endpoint_container *gone;
		size_t n_gone;
		remove_containers(e, is_retiring, &gone, &n_gone);
		for (size_t i = 0; i < n_gone; i++)
			health_forget(rt, gone[i].id);
		endpoint_containers_free(gone, n_gone);
		runtime_commit(rt, e);
	}
	pthread_mutex_unlock(rt->lock);
	endpoint_containers_free(old, n_old);
}

/* Starts the pending containers c (defs), waits until healthy. */
static int bring_up(struct runtime *rt, struct worker *w, const struct endpoint_container *c,
		    const struct container_def *const *defs, size_t n, struct berth_buf *reason)
{
	if (runtime_start_containers(rt, w->endpoint, c, defs, n, reason) < 0)
		return -1;
	if (runtime_wait_healthy(rt, w, c, n, reason) < 0) {
		runtime_append_logs(c, n, reason);
		return -1;
	}
	return 0;
}

/* With *lock held after a failed bring-up: forget the pending ones. */
static void drop_pending(struct runtime *rt, const char *name)
{
	struct endpoint *e = record_dup(rt, name);
	if (e == NULL)
		return;
	struct endpoint_container *gone;
	size_t n_gone;
	remove_containers(e, is_pending, &gone, &n_gone);
	endpoint_containers_free(gone, n_gone);
	runtime_commit(rt, e);
}

static void blue_green(struct runtime *rt, struct worker *w)
{
	struct berth_buf reason = BERTH_BUF_INIT;
	struct endpoint_container *fresh = NULL;
	const struct container_def **defs = NULL;
	size_t n = 0;
	struct model **models = NULL;
	size_t n_models = 0;
	struct variant *variants = NULL;
	char *config_name = NULL, *old_config = NULL;
	struct async_config new_async = { 0 }; /* (async) the new config's, taken at the swap */

	pthread_mutex_lock(rt->lock);
	struct endpoint *e = record_dup(rt, w->endpoint);
	const struct endpoint_config *cfg = e ? store_get_endpoint_config(rt->store, e->pending_config_name) : NULL;
	if (e == NULL) {
		pthread_mutex_unlock(rt->lock);
		return;
	}
	old_config = strdup(e->config_name);
	config_name = strdup(e->pending_config_name);
	if (cfg == NULL) {
		buf_printf(&reason, "Could not find endpoint configuration \"%s\".", e->pending_config_name);
	} else {
		variants = variants_dup(cfg->variants, cfg->n_variants);
		n_models = variants ? cfg->n_variants : 0;
		if (async_config_copy(&new_async, &cfg->async) < 0)
			buf_append_str(&reason, "out of memory");
		models = calloc(n_models + 1, sizeof(*models));
		for (size_t v = 0; models && v < n_models && reason.len == 0; v++) {
			const struct model *m = store_get_model(rt->store, variants[v].model_name);
			/* new instances are numbered after the old ones of a variant of
			 * the same name, so old and new never share an instance (and
			 * its cgroup) while both run */
			long long first = 0;
			for (size_t i = 0; i < e->n_containers; i++)
				if (strcmp(endpoint_container_variant(e, &e->containers[i]), variants[v].variant_name) == 0 &&
				    e->containers[i].instance >= first)
					first = e->containers[i].instance + 1;
			struct berth_err err;
			if (m == NULL)
				buf_printf(&reason, "Could not find model \"%s\".", variants[v].model_name);
			else if ((models[v] = model_dup(m)) == NULL ||
				 runtime_alloc_instances(rt, &variants[v], models[v], first, variants[v].initial_instance_count,
							 true, &fresh, &defs, &n, &err) < 0)
				buf_printf(&reason, "%s", models[v] ? err.msg : "out of memory");
		}
		if (models == NULL || variants == NULL)
			buf_append_str(&reason, "out of memory");
		/* each variant routes by its own model's mode */
		for (size_t v = 0; reason.len == 0 && v < n_models; v++) {
			free(variants[v].mode);
			if ((variants[v].mode = strdup(model_invocation_mode(models[v]))) == NULL)
				buf_append_str(&reason, "out of memory");
		}
	}
	if (reason.len == 0 && append_containers(e, fresh, n) == 0) {
		runtime_commit(rt, e); /* the new ids are on disk before anything runs */
		e = NULL;
	} else if (reason.len == 0) {
		buf_append_str(&reason, "out of memory");
	}
	endpoint_free(e);
	pthread_mutex_unlock(rt->lock);

	long long t0 = clock_now_ms();
	/* the new config's registry images: resolved now, pulled if need be;
	 * pinned only at the swap, so a failed update leaves the old pins */
	struct runtime_pins pins = { 0 };
	if (reason.len == 0)
		runtime_pull_images(rt, w, models, n_models, &pins, &reason);
	if (reason.len == 0 && bring_up(rt, w, fresh, defs, n, &reason) == 0) {
		/* the swap: new instances take the traffic, old ones retire */
		pthread_mutex_lock(rt->lock);
		e = record_dup(rt, w->endpoint);
		if (e != NULL && !w->cancel) {
			for (size_t i = 0; i < e->n_containers; i++) {
				struct endpoint_container *c = &e->containers[i];
				if (c->pending)
					c->pending = false;
				else
					c->retiring = true;
			}
			variants_free(e->variants, e->n_variants);
			e->variants = variants;
			e->n_variants = n_models;
			variants = NULL;
			free(e->config_name);
			e->config_name = config_name;
			config_name = NULL;
			free(e->variant_name);
			e->variant_name = strdup(e->variants[0].variant_name);
			free(e->legacy_mode); /* every variant has its own mode now */
			e->legacy_mode = NULL;
			free(e->pending_config_name);
			e->pending_config_name = NULL;
			async_config_clear(&e->async);
			e->async = new_async; /* taken whole */
			memset(&new_async, 0, sizeof(new_async));
			log_info("endpoint %s: %zu new container%s healthy in %lld ms; traffic moved to endpoint configuration %s",
				 w->endpoint, n, n == 1 ? "" : "s", clock_now_ms() - t0, e->config_name);
			runtime_pins_commit(rt, w->endpoint, &pins);
			runtime_commit(rt, e);
			e = NULL;
		}
		endpoint_free(e);
		pthread_mutex_unlock(rt->lock);
		if (!w->cancel) {
			retire(rt, w, true);
			pthread_mutex_lock(rt->lock);
			if (!w->cancel)
				finish(rt, w->endpoint, NULL, true);
			pthread_mutex_unlock(rt->lock);
		}
	} else {
		runtime_stop_containers(rt, w->endpoint, fresh, n);
		pthread_mutex_lock(rt->lock);
		if (!w->cancel) {
			drop_pending(rt, w->endpoint);
			struct berth_buf msg = BERTH_BUF_INIT;
			buf_printf(&msg, "Update to endpoint configuration \"%s\" failed and was rolled back to \"%s\": %s",
				   config_name ? config_name : "?", old_config ? old_config : "?",
				   reason.data ? reason.data : "");
			finish(rt, w->endpoint, msg.data, false);
			buf_free(&msg);
		}
		pthread_mutex_unlock(rt->lock);
	}
	runtime_pins_free(&pins);
	endpoint_containers_free(fresh, n);
	free(defs);
	runtime_models_free(models, n_models);
	variants_free(variants, variants ? n_models : 0);
	free(config_name);
	async_config_clear(&new_async);
	free(old_config);
	buf_free(&reason);
}

static void scale(struct runtime *rt, struct worker *w)
{
	struct berth_buf reason = BERTH_BUF_INIT;
	struct endpoint_container *fresh = NULL;
	const struct container_def **defs = NULL;
	size_t n = 0;
	struct model **models = NULL;
	size_t n_models = 0;
	bool any_retiring = false;

	pthread_mutex_lock(rt->lock);
	struct endpoint *e = record_dup(rt, w->endpoint);
	if (e == NULL) {
		pthread_mutex_unlock(rt->lock);
		return;
	}
	n_models = e->n_variants;
	models = calloc(n_models + 1, sizeof(*models));
	for (size_t v = 0; models && v < n_models && reason.len == 0; v++) {
		const struct variant *var = &e->variants[v];
		long long max = -1, live = 0;
		for (size_t i = 0; i < e->n_containers; i++)
			if (strcmp(endpoint_container_variant(e, &e->containers[i]), var->variant_name) == 0 &&
			    e->containers[i].instance > max)
				max = e->containers[i].instance;
		for (long long k = 0; k <= max; k++)
			for (size_t i = 0; i < e->n_containers; i++) {
				const struct endpoint_container *c = &e->containers[i];
				if (c->instance == k && !c->retiring &&
				    strcmp(endpoint_container_variant(e, c), var->variant_name) == 0) {
					live++;
					break;
				}
			}
		if (live < var->initial_instance_count) {
			const struct model *m = store_get_model(rt->store, var->model_name);
			struct berth_err err;
			if (m == NULL)
				buf_printf(&reason, "Could not find model \"%s\".", var->model_name);
			else if ((models[v] = model_dup(m)) == NULL ||
				 runtime_alloc_instances(rt, var, models[v], max + 1, var->initial_instance_count - live,
							 true, &fresh, &defs, &n, &err) < 0)
				buf_printf(&reason, "%s", models[v] ? err.msg : "out of memory");
			else
				runtime_pin_model(rt, w->endpoint, models[v]); /* the digests the endpoint runs */
		}
		/* scale in: the highest instances retire first */
		for (long long k = max; k >= 0 && live > var->initial_instance_count; k--) {
			bool found = false;
			for (size_t i = 0; i < e->n_containers; i++) {
				struct endpoint_container *c = &e->containers[i];
				if (c->instance == k && !c->retiring &&
				    strcmp(endpoint_container_variant(e, c), var->variant_name) == 0) {
					c->retiring = true;
					found = true;
				}
			}
			if (found) {
				live--;
				any_retiring = true;
			}
		}
	}
	if (models == NULL)
		buf_append_str(&reason, "out of memory");
	if (reason.len == 0 && append_containers(e, fresh, n) == 0) {
		runtime_commit(rt, e);
		e = NULL;
	}
	endpoint_free(e);
	pthread_mutex_unlock(rt->lock);

	if (reason.len == 0 && n > 0 && bring_up(rt, w, fresh, defs, n, &reason) == 0) {
		pthread_mutex_lock(rt->lock);
		e = record_dup(rt, w->endpoint);
		for (size_t i = 0; e && i < e->n_containers; i++)
			e->containers[i].pending = false;
		if (e != NULL)
			runtime_commit(rt, e);
		pthread_mutex_unlock(rt->lock);
	} else if (n > 0) {
		runtime_stop_containers(rt, w->endpoint, fresh, n);
		pthread_mutex_lock(rt->lock);
		if (!w->cancel)
			drop_pending(rt, w->endpoint);
		pthread_mutex_unlock(rt->lock);
	}
	if (any_retiring && !w->cancel)
		retire(rt, w, true);
	pthread_mutex_lock(rt->lock);
	if (!w->cancel) {
		struct berth_buf msg = BERTH_BUF_INIT;
		if (reason.len > 0)
			buf_printf(&msg, "Could not start the new instances: %s", reason.data);
		finish(rt, w->endpoint, msg.len ? msg.data : NULL, false);
		buf_free(&msg);
	}
	pthread_mutex_unlock(rt->lock);
	endpoint_containers_free(fresh, n);
	free(defs);
	runtime_models_free(models, n_models);
	buf_free(&reason);
}

void *runtime_update_worker(void *arg)
{
	struct worker *w = arg;
	struct runtime *rt = w->rt;
	pthread_mutex_lock(rt->lock);
	const struct endpoint *e = store_get_endpoint(rt->store, w->endpoint);
	bool go = e != NULL && strcmp(e->status, "Updating") == 0;
	bool blue = go && e->pending_config_name != NULL;
	pthread_mutex_unlock(rt->lock);
	if (go && blue)
		blue_green(rt, w);
	else if (go)
		scale(rt, w);
	pthread_mutex_lock(rt->lock);
	runtime_worker_done(w);
	pthread_mutex_unlock(rt->lock);
	return NULL;
}

/* Stops the containers in the background of start-up: a worker of its own. */
static void *cleanup_worker(void *arg)
{
	struct worker *w = arg;
	struct runtime *rt = w->rt;
	pthread_mutex_lock(rt->lock);
	struct endpoint *e = record_dup(rt, w->endpoint);
	struct endpoint_container *gone = NULL;
	size_t n_gone = 0;
	if (e != NULL)
		remove_containers(e, is_pending_or_retiring, &gone, &n_gone);
	pthread_mutex_unlock(rt->lock);
	runtime_stop_containers(rt, w->endpoint, gone, n_gone);
	pthread_mutex_lock(rt->lock);
	if (e != NULL) {
		endpoint_free(e);
		e = record_dup(rt, w->endpoint);
		if (e != NULL) {
			struct endpoint_container *again;
			size_t n_again;
			remove_containers(e, is_pending_or_retiring, &again, &n_again);
			endpoint_containers_free(again, n_again);
			runtime_commit(rt, e);
		}
	}
	/* then roll the acknowledged change out again */
	runtime_worker_spawn(rt, w->endpoint, WORKER_UPDATE, NULL, runtime_update_worker);
	runtime_worker_done(w);
	pthread_mutex_unlock(rt->lock);
	endpoint_containers_free(gone, n_gone);
	return NULL;
}

void runtime_update_resume(struct runtime *rt, const char *endpoint)
{
	log_info("endpoint %s: resuming an interrupted update", endpoint);
	runtime_worker_spawn(rt, endpoint, WORKER_UPDATE, NULL, cleanup_worker);
}
