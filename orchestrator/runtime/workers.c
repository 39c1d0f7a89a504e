/* workers.c — the runtime's background jobs: one detached thread each,
 * listed under *lock so they can be cancelled and waited for. */
#include "runtime_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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
		runtime_worker_done(w);
		w = NULL;
	}
	pthread_attr_destroy(&attr);
	return w;
}
