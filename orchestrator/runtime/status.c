/* status.c — changes to an endpoint record made by the runtime's workers:
 * persisted first, then announced (*changed broadcast, route table pushed). */
#include "runtime_internal.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "store.h"

void runtime_set_status(struct runtime *rt, const char *name, const char *status, const char *reason,
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
	e->last_modified_time = clock_epoch_seconds();
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
	runtime_push_routes(rt);
}

void runtime_commit(struct runtime *rt, struct endpoint *e)
{
	char *name = strdup(e->name);
	struct berth_err err;
	if (store_put_endpoint(rt->store, e, &err) < 0)
		log_error("endpoint %s: cannot record a change: %s", name ? name : "?", err.msg);
	free(name);
	pthread_cond_broadcast(rt->changed);
	runtime_push_routes(rt);
}

struct endpoint_container *runtime_copy_containers(const struct endpoint *e)
{
	struct endpoint_container *c = calloc(e->n_containers + 1, sizeof(*c));
	for (size_t i = 0; c && i < e->n_containers; i++)
		endpoint_container_copy(&c[i], &e->containers[i]);
	return c;
}
