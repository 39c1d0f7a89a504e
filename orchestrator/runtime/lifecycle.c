/* lifecycle.c — an endpoint's life: the workers that create it (Creating →
 * InService or Failed) and delete it (Deleting → gone), and the entry
 * points that start them and the update worker (update.c). */
#include "runtime_internal.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "devices.h"
#include "log.h"
#include "image.h"
#include "mme.h"
#include "store.h"

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
		runtime_worker_done(w);
		pthread_mutex_unlock(rt->lock);
		return NULL;
	}
	/* containers left by a berthd that died while creating: replace them */
	stale = runtime_copy_containers(e);
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
		    runtime_alloc_instances_replacing(rt, w->endpoint, &variants[v], models[v], 0,
						      variants[v].initial_instance_count, false, &containers, &defs, &n,
						      &err) < 0)
			buf_printf(&reason, "%s", models[v] ? err.msg : "out of memory");
	}
	if (reason.len == 0) /* record the ids before anything runs, so a crash can clean up */
		runtime_set_status(rt, w->endpoint, "Creating", NULL, containers, n, true);
	pthread_mutex_unlock(rt->lock);

	runtime_stop_all(rt, w->endpoint, stale, n_stale);
	long long t0 = clock_now_ms();
	if (reason.len == 0)
		runtime_pull_images(rt, w, models, n_models, NULL, &reason);
	if (reason.len == 0)
		runtime_start_containers(rt, w->endpoint, containers, defs, n, &reason);
	if (reason.len == 0 && runtime_wait_healthy(rt, w, containers, n, &reason) < 0)
		runtime_append_logs(containers, n, &reason);

	pthread_mutex_lock(rt->lock);
	e = store_get_endpoint(rt->store, w->endpoint);
	bool still_creating = e != NULL && strcmp(e->status, "Creating") == 0 && !w->cancel;
	if (still_creating && reason.len == 0) {
		log_info("endpoint %s: %zu container%s healthy in %lld ms", w->endpoint, n, n == 1 ? "" : "s",
			 clock_now_ms() - t0);
		runtime_set_status(rt, w->endpoint, "InService", NULL, NULL, 0, false);
	}
	pthread_mutex_unlock(rt->lock);

	if (still_creating && reason.len > 0) {
		runtime_stop_all(rt, w->endpoint, containers, n);
		pthread_mutex_lock(rt->lock);
		e = store_get_endpoint(rt->store, w->endpoint);
		if (e != NULL && strcmp(e->status, "Creating") == 0)
			runtime_set_status(rt, w->endpoint, "Failed", reason.data, NULL, 0, true);
		pthread_mutex_unlock(rt->lock);
	}
	pthread_mutex_lock(rt->lock);
	runtime_worker_done(w);
	pthread_mutex_unlock(rt->lock);
	endpoint_containers_free(containers, n);
	free(defs);
	endpoint_containers_free(stale, n_stale);
	runtime_models_free(models, n_models);
	buf_free(&reason);
	return NULL;
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
	struct endpoint_container *containers = e ? runtime_copy_containers(e) : NULL;
	pthread_mutex_unlock(rt->lock);

	if (containers != NULL)
		runtime_stop_all(rt, w->endpoint, containers, n);
	mme_forget_endpoint(rt->cfg.mme, w->endpoint); /* (mme) STATE/mme/ENDPOINT */

	pthread_mutex_lock(rt->lock);
	struct berth_err err;
	if (store_get_endpoint(rt->store, w->endpoint) != NULL &&
	    store_delete_endpoint(rt->store, w->endpoint, &err) < 0)
		log_error("endpoint %s: containers stopped but the record could not be removed: %s", w->endpoint,
			  err.msg);
	else
		log_info("endpoint %s: deleted", w->endpoint);
	if (rt->cfg.images && rt->cfg.images->registry) /* what its tags resolved to */
		registry_unpin(rt->cfg.images->registry, w->endpoint);
	if (rt->cfg.limits != NULL) /* (devices) its devices are free for other berthds too */
		devices_publish(rt->cfg.limits, NULL, 0);
	runtime_push_routes(rt);
	runtime_worker_done(w);
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

/* Creating: start the endpoint; Updating (UpdateEndpoint,
 * UpdateEndpointWeightsAndCapacities): roll the change out. */
void runtime_endpoint_start(struct runtime *rt, const char *name)
{
	const struct endpoint *e = store_get_endpoint(rt->store, name);
	worker_spawn(rt, name, e != NULL && strcmp(e->status, "Updating") == 0 ? WORKER_UPDATE : WORKER_START);
}

void runtime_endpoint_stop(struct runtime *rt, const char *name)
{
	runtime_async_drop_endpoint(rt, name);
	worker_spawn(rt, name, WORKER_STOP);
}
