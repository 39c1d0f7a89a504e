/* runtime.c — see runtime.h: the runtime object, and what berthd does
 * with its endpoints when it starts (runtime_resume). */
#include "runtime.h"
#include "runtime_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "container.h"
#include "log.h"
#include "shim_client.h"
#include "store.h"

struct mme *runtime_mme(struct runtime *rt)
{
	return rt->cfg.mme;
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

/* A record written before modes were per variant has one mode (variant
 * 0's, endpoint.legacy_mode) and variants without one. Each variant's
 * instances run its own model's containers (they always did), so its mode
 * is its model's; a model deleted since keeps the legacy mode. With *lock
 * held; the record is written back at once. */
static void upgrade_variant_modes(struct runtime *rt, const char *name)
{
	const struct endpoint *cur = store_get_endpoint(rt->store, name);
	bool missing = false;
	for (size_t v = 0; cur != NULL && v < cur->n_variants; v++)
		missing = missing || cur->variants[v].mode == NULL;
	if (!missing)
		return;
	struct endpoint *e = endpoint_dup(cur);
	if (e == NULL) {
		log_error("endpoint %s: out of memory giving its variants their modes", name);
		return;
	}
	for (size_t v = 0; v < e->n_variants; v++) {
		if (e->variants[v].mode != NULL)
			continue;
		const struct model *m = store_get_model(rt->store, e->variants[v].model_name);
		const char *mode = m != NULL ? model_invocation_mode(m) : endpoint_variant_mode(e, v);
		e->variants[v].mode = strdup(mode);
		log_info("endpoint %s: variant %s routes in %s mode (a record written before modes were per variant)",
			 name, e->variants[v].variant_name, mode);
	}
	runtime_commit(rt, e);
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
		upgrade_variant_modes(rt, names[i]);
		e = store_get_endpoint(rt->store, names[i]);
		if (e == NULL)
			continue;
		if (strcmp(e->status, "Creating") == 0) {
			log_info("endpoint %s: resuming creation", e->name);
			runtime_endpoint_start(rt, e->name);
		} else if (strcmp(e->status, "Deleting") == 0) {
			log_info("endpoint %s: resuming deletion", e->name);
			runtime_endpoint_stop(rt, e->name);
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
	runtime_async_resume(rt);
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
	rt->sessions_log_fd = -1;
	runtime_sessions_load(rt);
	return rt;
}

void runtime_free(struct runtime *rt)
{
	if (rt == NULL)
		return;
	runtime_async_stop(rt);
	health_stop(rt);
	pthread_mutex_lock(rt->lock);
	for (struct worker *w = rt->workers; w; w = w->next)
		w->cancel = true;
	long long deadline = clock_now_ms() + 5000;
	while (rt->workers != NULL && clock_now_ms() < deadline) {
		clock_cond_wait_ms(rt->changed, rt->lock, CLOCK_MONOTONIC, 100);
	}
	for (size_t i = 0; i < rt->n_watchers; i++)
		close(rt->watchers[i]);
	free(rt->watchers);
	runtime_sessions_free(rt);
	pthread_mutex_unlock(rt->lock);
	free(rt);
}
