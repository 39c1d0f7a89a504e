/* health.c — keeps the containers of serving endpoints healthy.
 *
 * One monitor thread, every HEALTH_STATE_INTERVAL_MS, looks at every live
 * container (not pending or retiring) of InService and Updating endpoints:
 * asks its shim whether the process still runs, and every
 * HEALTH_PING_INTERVAL_MS (every second after a failure) sends GET /ping
 * (ping timeout from the config, 2 s). A container whose process is gone,
 * or that failed HEALTH_PING_FAILURES pings in a row, is marked down in the
 * endpoint record (its instance leaves the route table at once, so the
 * router sends traffic to the other instances, or answers 503
 * ServiceUnavailable when none is left) and restarted: same id, hostname,
 * log and bundle, new shim and runc container: the first time at once,
 * then after a back-off (backoff.h) that doubles after each restart and
 * starts over once the container has stayed healthy. The endpoint stays InService; its
 * FailureReason tells the last thing that happened and `berth ps` the
 * restart count. Per-container check state lives only in memory: a
 * restarted berthd starts it afresh (containers marked down are restarted
 * at once, the others checked). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "container.h"
#include "container_http.h"
#include "log.h"
#include "runtime_internal.h"
#include "shim_client.h"
#include "store.h"

struct health_entry {
	char *id;
	int failures;
	long long next_ping_ms;
	long long healthy_since_ms; /* 0 while down */
	long long backoff_ms;
	long long restart_at_ms;
	bool restarting;            /* a restart worker owns the container */
	bool seen;
	struct health_entry *next;
};

/* With *lock held. */
static struct health_entry *entry_get(struct runtime *rt, const char *id, bool create, bool down)
{
	for (struct health_entry *h = rt->health; h; h = h->next)
		if (strcmp(h->id, id) == 0)
			return h;
	if (!create)
		return NULL;
	struct health_entry *h = calloc(1, sizeof(*h));
	if (h == NULL || (h->id = strdup(id)) == NULL) {
		free(h);
		return NULL;
	}
	long long now = clock_now_ms();
	h->backoff_ms = 0; /* the first restart is immediate */
	h->healthy_since_ms = down ? 0 : now;
	h->next_ping_ms = now; /* first ping right away: adopted containers are checked at once */
	h->next = rt->health;
	rt->health = h;
	return h;
}

void health_forget(struct runtime *rt, const char *container_id)
{
	for (struct health_entry **p = &rt->health; *p; p = &(*p)->next)
		if (strcmp((*p)->id, container_id) == 0) {
			struct health_entry *h = *p;
			*p = h->next;
			free(h->id);
			free(h);
			return;
		}
}

void health_describe(struct runtime *rt, const char *container_id, long long *healthy_for_ms, int *failures)
{
	struct health_entry *h = entry_get(rt, container_id, false, false);
	*healthy_for_ms = h && h->healthy_since_ms ? clock_now_ms() - h->healthy_since_ms : 0;
	*failures = h ? h->failures : 0;
}

static struct endpoint_container *find_container(const struct endpoint *e, const char *id)
{
	for (size_t i = 0; e && i < e->n_containers; i++)
		if (strcmp(e->containers[i].id, id) == 0)
			return &e->containers[i];
	return NULL;
}

/* With *lock held: records the container's new health (and, when reason
 * is given, the endpoint's FailureReason), pushes the route table. */
static void record(struct runtime *rt, const char *endpoint, const char *id, bool down, bool count_restart,
		   const char *reason)
{
	const struct endpoint *cur = store_get_endpoint(rt->store, endpoint);
	if (find_container(cur, id) == NULL)
		return;
	struct endpoint *e = endpoint_dup(cur);
	if (e == NULL) {
		log_error("endpoint %s: out of memory recording a container's health", endpoint);
		return;
	}
	struct endpoint_container *c = find_container(e, id);
	c->down = down;
	if (count_restart)
		c->restarts++;
	if (reason != NULL) {
		char *r = strdup(reason);
		if (r != NULL) {
			free(e->failure_reason);
			e->failure_reason = r;
		}
		log_warn("endpoint %s: %s", endpoint, reason);
	}
	runtime_commit(rt, e);
}

/* ---- restarts ----------------------------------------------------------- */

static void *restart_worker(void *arg)
{
	struct worker *w = arg;
	struct runtime *rt = w->rt;
	struct endpoint_container c = { 0 };
	struct model *model = NULL;
	const struct container_def *def = NULL;
	struct berth_buf reason = BERTH_BUF_INIT;
	bool copied = false;

	pthread_mutex_lock(rt->lock);
	const struct endpoint *e = store_get_endpoint(rt->store, w->endpoint);
	const struct endpoint_container *cur = find_container(e, w->container_id);
	if (cur != NULL && !cur->pending && !cur->retiring && !w->cancel) {
		copied = endpoint_container_copy(&c, cur) == 0;
		const char *variant = endpoint_container_variant(e, cur);
		const char *model_name = NULL;
		for (size_t i = 0; i < e->n_variants; i++)
			if (strcmp(e->variants[i].variant_name, variant) == 0)
				model_name = e->variants[i].model_name;
		if (model_name == NULL) {
			const struct endpoint_config *cfg = store_get_endpoint_config(rt->store, e->config_name);
			if (cfg != NULL && cfg->n_variants > 0)
				model_name = cfg->variants[0].model_name;
		}
		const struct model *m = model_name ? store_get_model(rt->store, model_name) : NULL;
		model = m ? model_dup(m) : NULL;
		runtime_pin_model(rt, w->endpoint, model); /* the digests of its CreateEndpoint */
		for (size_t i = 0; model && i < model->n_containers; i++)
			if (strcmp(model->containers[i].hostname, cur->hostname) == 0)
				def = &model->containers[i];
		if (def == NULL)
			buf_printf(&reason, "Container %s cannot be restarted: model \"%s\" is gone.", cur->hostname,
				   model_name ? model_name : "?");
	}
	pthread_mutex_unlock(rt->lock);

	bool ok = false;
	long long t0 = clock_now_ms();
	if (copied && def != NULL) {
		container_stop(&rt->cfg, &c, HEALTH_RESTART_STOP_MS);
		struct berth_err err;
		if (container_start(&rt->cfg, w->endpoint, &c, def, model->n_containers, &err) < 0)
			buf_printf(&reason, "Container %s could not be restarted: %s", c.hostname, err.msg);
		else if (runtime_wait_healthy(rt, w, &c, 1, &reason) < 0)
			runtime_append_logs(&c, 1, &reason);
		else
			ok = true;
	}

	pthread_mutex_lock(rt->lock);
	struct health_entry *h = entry_get(rt, w->container_id, false, false);
	e = store_get_endpoint(rt->store, w->endpoint);
	cur = find_container(e, w->container_id);
	if (copied && cur != NULL && !cur->pending && !cur->retiring && !w->cancel) {
		long long now = clock_now_ms();
		if (ok) {
			log_info("endpoint %s: container %s (%s) restarted and healthy in %lld ms", w->endpoint,
				 c.hostname, c.id, now - t0);
			record(rt, w->endpoint, c.id, false, true, NULL);
			if (h != NULL) {
				h->failures = 0;
				h->healthy_since_ms = now;
				h->next_ping_ms = now + HEALTH_PING_INTERVAL_MS;
			}
		} else if (h != NULL) {
			buf_printf(&reason, " Next restart in %lld ms.", h->backoff_ms);
			record(rt, w->endpoint, c.id, true, true, reason.data);
			h->restart_at_ms = now + h->backoff_ms;
		}
		if (h != NULL) {
			h->backoff_ms = backoff_after_restart(h->backoff_ms);
		}
	}
	if (h != NULL)
		h->restarting = false;
	runtime_worker_done(w);
	pthread_mutex_unlock(rt->lock);
	if (copied)
		endpoint_container_clear(&c);
	if (model != NULL)
		model_free(model);
	buf_free(&reason);
	return NULL;
}

/* ---- the monitor ---------------------------------------------------------- */

struct check {
	struct runtime *rt;
	char *endpoint;
	char *id;
	char *hostname;
	char *variant;
	long long instance;
	struct endpoint_container c; /* socket, log: borrowed from the strings above */
	bool ping;
	/* results */
	bool alive;
	bool ping_ok;
	int ping_status;
	struct berth_buf why;
	pthread_t thread;
};

static void *check_one(void *arg)
{
	struct check *k = arg;
	struct shim_state st;
	struct berth_err err;
	k->alive = shim_get_state(k->c.socket, &st, &err) == 0 && st.running;
	if (!k->alive) {
		container_describe_exit(&k->rt->cfg, &k->c, &k->why);
		return NULL;
	}
	if (k->ping) {
		k->ping_ok = container_ping(k->c.socket, k->rt->cfg.ping_timeout_ms, &k->ping_status, &err) == 0 &&
			     k->ping_status == 200;
		if (!k->ping_ok && k->ping_status == 0)
			buf_printf(&k->why, "%s", err.msg);
	}
	return NULL;
}

static void check_free(struct check *k)
{
	free(k->endpoint);
	free(k->id);
	free(k->hostname);
	free(k->variant);
	free(k->c.socket);
	free(k->c.log);
	buf_free(&k->why);
}

/* With *lock held: the checks due now; spawns restarts that are due. */
static struct check *collect(struct runtime *rt, size_t *n_out)
{
	long long now = clock_now_ms();
	size_t n = 0, cap = 0;
	struct check *checks = NULL;
	for (struct health_entry *h = rt->health; h; h = h->next)
		h->seen = false;
	for (size_t i = 0; i < store_count_endpoints(rt->store); i++) {
		const struct endpoint *e = store_endpoint_at(rt->store, i);
		bool active = strcmp(e->status, "InService") == 0 || strcmp(e->status, "Updating") == 0;
		for (size_t j = 0; j < e->n_containers; j++) {
			const struct endpoint_container *c = &e->containers[j];
			struct health_entry *h = entry_get(rt, c->id, true, c->down);
			if (h == NULL)
				continue;
			h->seen = true;
			if (!active || c->pending || c->retiring || h->restarting)
				continue;
			if (c->down) {
				if (now >= h->restart_at_ms) {
					log_info("endpoint %s: restarting container %s (%s)", e->name, c->hostname, c->id);
					h->restarting = runtime_worker_spawn(rt, e->name, WORKER_RESTART, c->id,
									     restart_worker) != NULL;
				}
				continue;
			}
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct check *grown = realloc(checks, ncap * sizeof(*checks));
				if (grown == NULL)
					break;
				checks = grown;
				cap = ncap;
			}
			struct check *k = &checks[n];
			memset(k, 0, sizeof(*k));
			k->rt = rt;
			k->endpoint = strdup(e->name);
			k->id = strdup(c->id);
			k->hostname = strdup(c->hostname);
			k->variant = strdup(endpoint_container_variant(e, c));
			k->instance = c->instance;
			k->c.id = k->id;
			k->c.hostname = k->hostname;
			k->c.socket = c->socket ? strdup(c->socket) : NULL;
			k->c.log = c->log ? strdup(c->log) : NULL;
			k->ping = now >= h->next_ping_ms;
			if (!k->endpoint || !k->id || !k->hostname || !k->variant || !k->c.socket || !k->c.log) {
				check_free(k);
				continue;
			}
			n++;
		}
	}
	/* forget containers no record holds any more */
	for (struct health_entry **p = &rt->health; *p;) {
		struct health_entry *h = *p;
		if (!h->seen && !h->restarting) {
			*p = h->next;
			free(h->id);
			free(h);
		} else
			p = &h->next;
	}
	*n_out = n;
	return checks;
}

/* With *lock held: acts on one check's result. */
static void apply(struct runtime *rt, struct check *k)
{
	struct health_entry *h = entry_get(rt, k->id, false, false);
	const struct endpoint *e = store_get_endpoint(rt->store, k->endpoint);
	const struct endpoint_container *c = find_container(e, k->id);
	if (h == NULL || h->restarting || c == NULL || c->down || c->pending || c->retiring)
		return;
	long long now = clock_now_ms();
	struct berth_buf reason = BERTH_BUF_INIT;
	if (!k->alive) {
		buf_printf(&reason, "Instance %lld of variant %s: %s", k->instance, k->variant,
			   k->why.len ? k->why.data : "container is not running");
	} else if (k->ping) {
		if (k->ping_ok) {
			h->failures = 0;
			h->next_ping_ms = now + HEALTH_PING_INTERVAL_MS;
			if (h->healthy_since_ms == 0)
				h->healthy_since_ms = now;
		} else {
			h->failures++;
			h->next_ping_ms = now + 1000;
			log_warn("endpoint %s: container %s failed its ping health check (%d of %d): %s%s", k->endpoint,
				 k->hostname, h->failures, HEALTH_PING_FAILURES,
				 k->ping_status ? "status " : "", k->ping_status ? "not 200" : k->why.data ? k->why.data : "");
			if (h->failures >= HEALTH_PING_FAILURES)
				buf_printf(&reason,
					   "Instance %lld of variant %s: container %s did not pass the ping health check %d times in a row (last: %s%d).",
					   k->instance, k->variant, k->hostname, h->failures,
					   k->ping_status ? "status " : "no answer, ", k->ping_status);
		}
	}
	if (backoff_should_reset(h->healthy_since_ms, now))
		h->backoff_ms = 0;
	if (reason.len > 0) {
		if (h->backoff_ms == 0)
			buf_printf(&reason, "; berth restarts it now (restart %lld).", c->restarts + 1);
		else
			buf_printf(&reason, "; berth restarts it (restart %lld) in %lld ms.", c->restarts + 1,
				   h->backoff_ms);
		h->healthy_since_ms = 0;
		h->failures = 0;
		h->restart_at_ms = now + h->backoff_ms;
		record(rt, k->endpoint, k->id, true, false, reason.data);
	}
	buf_free(&reason);
}

static void *monitor(void *arg)
{
	struct runtime *rt = arg;
	pthread_mutex_lock(rt->lock);
	while (!rt->stopping) {
		size_t n = 0;
		struct check *checks = collect(rt, &n);
		pthread_mutex_unlock(rt->lock);
		for (size_t i = 0; i < n; i++)
			if (pthread_create(&checks[i].thread, NULL, check_one, &checks[i]) != 0) {
				checks[i].thread = 0;
				check_one(&checks[i]);
			}
		for (size_t i = 0; i < n; i++)
			if (checks[i].thread)
				pthread_join(checks[i].thread, NULL);
		pthread_mutex_lock(rt->lock);
		for (size_t i = 0; i < n; i++) {
			if (!rt->stopping)
				apply(rt, &checks[i]);
			check_free(&checks[i]);
		}
		free(checks);
		for (int slept = 0; slept < HEALTH_STATE_INTERVAL_MS && !rt->stopping; slept += 100) {
			pthread_mutex_unlock(rt->lock);
			usleep(100 * 1000);
			pthread_mutex_lock(rt->lock);
		}
	}
	pthread_mutex_unlock(rt->lock);
	return NULL;
}

void health_start(struct runtime *rt)
{
	if (rt->monitor_started)
		return;
	if (pthread_create(&rt->monitor, NULL, monitor, rt) != 0) {
		log_error("cannot start the health monitor thread");
		return;
	}
	rt->monitor_started = true;
}

void health_stop(struct runtime *rt)
{
	pthread_mutex_lock(rt->lock);
	rt->stopping = true;
	bool started = rt->monitor_started;
	rt->monitor_started = false;
	pthread_mutex_unlock(rt->lock);
	if (started)
		pthread_join(rt->monitor, NULL);
	pthread_mutex_lock(rt->lock);
	while (rt->health != NULL) {
		struct health_entry *h = rt->health;
		rt->health = h->next;
		free(h->id);
		free(h);
	}
	pthread_mutex_unlock(rt->lock);
}
