/* async_run.c — the asynchronous queue's scheduler and its runs
 * (async.c keeps the queue durable). One scheduler thread hands each
 * queued request, oldest first, to an instance of its endpoint that runs
 * fewer than MaxConcurrentInvocationsPerInstance of them (variants chosen
 * by weight among those with room, then the least busy instance), and
 * fails those whose RequestTTLSeconds passed in the queue. Each run is a
 * detached thread: input from the object store, the record marked
 * "running" (durably, before a byte goes to the container), POST
 * /invocations through the chain of the instance's containers within
 * InvocationTimeoutSeconds, the answer written to the output location or
 * the failure to the failure location, the record removed. */
#include "async_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "container_http.h"
#include "json.h"
#include "log.h"
#include "objstore.h"
#include "store.h"

#define ASYNC_STATS_MIN_INTERVAL_MS 250
#define ASYNC_STATS_HEARTBEAT_MS 5000
#define ASYNC_CONTENT_TYPE_MAX 256

void async_kick(struct async_queue *q)
{
	q->events++;
	pthread_cond_broadcast(&q->wake);
}

static long long epoch_ms(void)
{
	return (long long)(clock_epoch_seconds_ms() * 1000.0);
}

static struct async_slot *slot_of(struct async_queue *q, const char *key, bool create)
{
	for (size_t i = 0; i < q->n_slots; i++)
		if (strcmp(q->slots[i].key, key) == 0)
			return &q->slots[i];
	if (!create)
		return NULL;
	struct async_slot *grown = realloc(q->slots, (q->n_slots + 1) * sizeof(*grown));
	if (grown == NULL)
		return NULL;
	q->slots = grown;
	char *k = strdup(key);
	if (k == NULL)
		return NULL;
	grown[q->n_slots] = (struct async_slot){ k, 0 };
	return &grown[q->n_slots++];
}

static long long slot_busy(struct async_queue *q, const char *key)
{
	struct async_slot *s = slot_of(q, key, false);
	return s ? s->busy : 0;
}

/* The first live container of instance k of variant vname (its key). */
static const struct endpoint_container *instance_head(const struct endpoint *e, const char *vname, long long k)
{
	for (size_t j = 0; j < e->n_containers; j++) {
		const struct endpoint_container *c = &e->containers[j];
		if (c->instance == k && !c->pending && !c->retiring && c->socket &&
		    strcmp(endpoint_container_variant(e, c), vname) == 0)
			return c;
	}
	return NULL;
}

/* Chooses an instance with room for it; 0 with it->instance_key and steps
 * set, -1 when every instance is busy (or none serves). With both locks. */
static int pick_instance(struct async_queue *q, const struct endpoint *e, struct async_item *it)
{
	if (strcmp(e->status, "InService") != 0 && strcmp(e->status, "Updating") != 0)
		return -1;
	long long conc = async_config_concurrency(&e->async);
	double weights[64] = { 0 }, total = 0;
	long long best[64];
	size_t nv = e->n_variants < 64 ? e->n_variants : 64;
	bool zero_weights = true;
	for (size_t v = 0; v < nv; v++)
		if (e->variants[v].initial_weight > 0)
			zero_weights = false;
	for (size_t v = 0; v < nv; v++) {
		const char *vname = e->variants[v].variant_name;
		best[v] = -1;
		long long best_busy = conc, max_instance = -1;
		for (size_t j = 0; j < e->n_containers; j++)
			if (strcmp(endpoint_container_variant(e, &e->containers[j]), vname) == 0 &&
			    e->containers[j].instance > max_instance)
				max_instance = e->containers[j].instance;
		for (long long k = 0; k <= max_instance; k++) {
			const struct endpoint_container *head = instance_head(e, vname, k);
			if (head == NULL || !endpoint_instance_serving(e, vname, k))
				continue;
			long long busy = slot_busy(q, head->socket);
			if (busy < best_busy) {
				best_busy = busy;
				best[v] = k;
			}
		}
		if (best[v] >= 0) {
			weights[v] = zero_weights ? 1.0 : e->variants[v].initial_weight;
			total += weights[v];
		}
	}
	if (!(total > 0))
		return -1;
	/* a weighted choice, spread by a counter (Knuth's multiplicative hash) */
	double at = (double)((q->pick++ * 2654435761ULL) % 1000003ULL) / 1000003.0 * total;
	size_t chosen = nv;
	for (size_t v = 0; v < nv; v++) {
		if (weights[v] <= 0)
			continue;
		chosen = v;
		if (at < weights[v])
			break;
		at -= weights[v];
	}
	if (chosen == nv)
		return -1;
	const char *vname = e->variants[chosen].variant_name;
	const struct endpoint_container *head = instance_head(e, vname, best[chosen]);
	struct async_slot *slot = head ? slot_of(q, head->socket, true) : NULL;
	if (slot == NULL || (it->instance_key = strdup(head->socket)) == NULL)
		return -1;
	for (size_t j = 0; j < e->n_containers && it->n_steps < ASYNC_MAX_STEPS; j++) {
		const struct endpoint_container *c = &e->containers[j];
		if (c->instance != best[chosen] || c->pending || c->retiring || c->socket == NULL ||
		    strcmp(endpoint_container_variant(e, c), vname) != 0)
			continue;
		if ((it->steps[it->n_steps] = strdup(c->socket)) == NULL)
			break;
		it->n_steps++;
	}
	if (it->n_steps == 0) {
		free(it->instance_key);
		it->instance_key = NULL;
		return -1;
	}
	slot->busy++;
	return 0;
}

/* ---- one run ---------------------------------------------------------------- */

struct run {
	struct async_queue *q;
	struct async_item *it;
	char *fail_text; /* set: only write this failure */
};

static void finish(struct async_queue *q, struct async_item *it, bool was_running)
{
	pthread_mutex_lock(&q->mu);
	if (was_running) {
		for (struct async_item **p = &q->running; *p; p = &(*p)->next)
			if (*p == it) {
				*p = it->next;
				break;
			}
		struct async_slot *s = it->instance_key ? slot_of(q, it->instance_key, false) : NULL;
		if (s && s->busy > 0)
			s->busy--;
		if (s && s->busy == 0) { /* idle: forgotten, so instances that came and went leave nothing */
			free(s->key);
			*s = q->slots[--q->n_slots];
		}
	}
	q->n_running_threads--;
	q->stats_dirty = true;
	async_kick(q);
	pthread_mutex_unlock(&q->mu);
	async_item_free(it);
}

static void fail_with(struct async_queue *q, struct async_item *it, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail_with(struct async_queue *q, struct async_item *it, const char *fmt, ...)
{
	char text[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	async_item_fail(q, it, text, strlen(text));
}

/* Reads the input; -1 when it failed (the failure written). */
static int read_input(struct async_queue *q, struct async_item *it, struct berth_buf *input)
{
	const struct runtime_config *cfg = &q->rt->cfg;
	unsigned long long max = cfg->async_max_bytes > 0 ? cfg->async_max_bytes : RUNTIME_ASYNC_MAX_BYTES_DEFAULT;
	struct objstore_object o = { 0 };
	enum objstore_status st;
	struct berth_err err;
	int r = cfg->store ? objstore_locate(cfg->store, it->input, &o, &st, &err) : -1;
	if (r == 0)
		r = objstore_get(cfg->store, &o, max, input, &st, &err);
	if (r == 0) {
		objstore_object_free(&o);
		return 0;
	}
	if (cfg->store == NULL)
		fail_with(q, it, "Failed to download the input from %s: berthd has no object store.", it->input);
	else if (st == OBJSTORE_NOT_FOUND && o.bucket)
		fail_with(q, it, "Failed to download the input(bucket: %s, key: %s): there is no object at the "
			  "InputLocation %s. Upload the input there, then invoke the endpoint again.",
			  o.bucket, o.key, it->input);
	else if (st == OBJSTORE_TOO_BIG)
		fail_with(q, it, "Failed to download the input from %s: it is larger than berthd's bound of %llu bytes "
			  "(async_max_bytes).", it->input, max);
	else
		fail_with(q, it, "Failed to download the input from %s: %s", it->input, err.msg);
	objstore_object_free(&o);
	return -1;
}

static void run_request(struct async_queue *q, struct async_item *it)
{
	const struct runtime_config *cfg = &q->rt->cfg;
	unsigned long long max = cfg->async_max_bytes > 0 ? cfg->async_max_bytes : RUNTIME_ASYNC_MAX_BYTES_DEFAULT;
	struct berth_buf data = BERTH_BUF_INIT, answer = BERTH_BUF_INIT;
	struct berth_err err;
	if (read_input(q, it, &data) < 0)
		goto out;
	/* from here the container may compute it: a restart must not run it again */
	if (async_item_mark_running(q, it, &err) < 0) {
		fail_with(q, it, "berthd could not record that the request started (%s); it was not run.", err.msg);
		goto out;
	}
	long long deadline = clock_now_ms() + it->timeout_s * 1000;
	char ctype[ASYNC_CONTENT_TYPE_MAX] = "";
	const char *step_ctype = it->content_type;
	int status = 0;
	for (size_t i = 0; i < it->n_steps; i++) {
		long long left = deadline - clock_now_ms();
		if (left <= 0) {
			err.errnum = ETIMEDOUT;
			status = -1;
			break;
		}
		struct container_invocation inv = {
			.content_type = step_ctype,
			.accept = i + 1 == it->n_steps ? it->accept : NULL,
			.custom_attributes = it->custom_attributes,
			.inference_id = it->inference_id,
			.body = data.data,
			.body_len = data.len,
			.max_body = max,
			.content_type_out = ctype,
			.content_type_out_len = sizeof(ctype),
			.stop_fd = q->stop_fd >= 0 ? &q->stop_fd : NULL,
		};
		buf_reset(&answer);
		if (container_invoke(it->steps[i], &inv, (int)(left > 3600000 ? 3600000 : left), &status, &answer, &err) < 0) {
			status = -1;
			break;
		}
		if (status < 200 || status > 299)
			break;
		struct berth_buf swap = data; /* this step's answer is the next one's request */
		data = answer;
		answer = swap;
		step_ctype = ctype[0] ? ctype : step_ctype;
	}
	if (status == -1 && err.errnum == ECANCELED) {
		/* berthd is stopping: the record and its marker stay, and the
		 * next start fails the request (it may have run in part) */
		log_info("asynchronous request %s of endpoint %s: berthd is stopping; the run is given up and left for "
			 "the next start, which writes its failure (it is never sent twice)", it->id, it->endpoint);
	} else if (status == -1 && err.errnum == ETIMEDOUT) {
		fail_with(q, it, "Inference request timed out: the container of endpoint %s did not answer within the "
			  "InvocationTimeoutSeconds of %lld s.", it->endpoint, it->timeout_s);
	} else if (status == -1) {
		fail_with(q, it, "The container of endpoint %s could not be invoked: %s", it->endpoint, err.msg);
	} else if (status < 200 || status > 299) {
		/* the container's own error, as it answered (SageMaker writes the model's error payload) */
		if (answer.len > 0)
			async_item_fail(q, it, answer.data, answer.len);
		else
			fail_with(q, it, "The container of endpoint %s answered HTTP %d with an empty body.", it->endpoint,
				  status);
	} else {
		struct objstore_object o;
		enum objstore_status st;
		int r = objstore_locate(cfg->store, it->output_url, &o, &st, &err);
		if (r == 0)
			r = objstore_put(cfg->store, &o, data.data ? data.data : "", data.len, step_ctype, &st, &err);
		objstore_object_free(&o); /* objstore_locate cleared it first */
		if (r < 0) {
			fail_with(q, it, "The inference succeeded, but its result could not be written to %s: %s",
				  it->output_url, err.msg);
		} else {
			async_item_forget(q, it);
			log_debug("asynchronous request %s of endpoint %s: %zu bytes written to %s", it->id, it->endpoint,
				  data.len, it->output_url);
			if (it->notify)
				log_info("asynchronous request %s: notification of its success not delivered: berth has "
					 "no SNS", it->id);
		}
	}
out:
	buf_free(&data);
	buf_free(&answer);
}

static void *run_main(void *arg)
{
	struct run *r = arg;
	if (r->fail_text != NULL) {
		async_item_fail(r->q, r->it, r->fail_text, strlen(r->fail_text));
		finish(r->q, r->it, false);
	} else {
		run_request(r->q, r->it);
		finish(r->q, r->it, true);
	}
	free(r->fail_text);
	free(r);
	return NULL;
}

/* With mu held. -1 when no thread could be started. */
static int spawn(struct async_queue *q, struct async_item *it, const char *fail_text)
{
	struct run *r = calloc(1, sizeof(*r));
	if (r == NULL || (fail_text && (r->fail_text = strdup(fail_text)) == NULL)) {
		free(r);
		return -1;
	}
	r->q = q;
	r->it = it;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_t t;
	int rc = pthread_create(&t, &attr, run_main, r);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(r->fail_text);
		free(r);
		return -1;
	}
	q->n_running_threads++;
	return 0;
}

void async_spawn_fail(struct async_queue *q, struct async_item *it, const char *text)
{
	if (spawn(q, it, text) < 0) {
		log_error("asynchronous request %s: no thread to write its failure (%s); its record stays", it->id, text);
		async_item_free(it);
	}
}

/* ---- the scheduler ---------------------------------------------------------- */

/* One pass over the queue with both locks held; the time until the next
 * expiry (ms, at most 1000). */
static long long schedule(struct async_queue *q)
{
	struct runtime *rt = q->rt;
	long long now = epoch_ms(), wait = 1000;
	for (struct async_item **p = &q->head; *p;) {
		struct async_item *it = *p;
		if (!it->durable) {
			p = &it->next;
			continue;
		}
		long long expires = it->enqueued_ms + it->ttl_s * 1000;
		const struct endpoint *e = store_get_endpoint(rt->store, it->endpoint);
		char text[512];
		if (now >= expires || e == NULL) {
			*p = it->next;
			if (e == NULL)
				snprintf(text, sizeof(text), "Endpoint %s was deleted before this inference request ran.",
					 it->endpoint);
			else
				snprintf(text, sizeof(text),
					 "Inference request expired: it waited %lld s in the queue of endpoint %s, longer than "
					 "its RequestTTLSeconds of %lld s, before an instance was free to run it.",
					 (now - it->enqueued_ms) / 1000, it->endpoint, it->ttl_s);
			async_spawn_fail(q, it, text);
			q->stats_dirty = true;
			continue;
		}
		if (pick_instance(q, e, it) == 0) {
			it->state = ASYNC_RUNNING;
			*p = it->next;
			it->next = q->running;
			q->running = it;
			if (spawn(q, it, NULL) < 0) { /* back in the queue, tried again next pass */
				q->running = it->next;
				struct async_slot *s = slot_of(q, it->instance_key, false);
				if (s)
					s->busy--;
				free(it->instance_key);
				it->instance_key = NULL;
				for (size_t i = 0; i < it->n_steps; i++)
					free(it->steps[i]);
				it->n_steps = 0;
				it->state = ASYNC_QUEUED;
				it->next = *p;
				*p = it;
				log_warn("asynchronous request %s: no thread to run it; tried again", it->id);
				break;
			}
			q->stats_dirty = true;
			continue;
		}
		if (expires - now < wait)
			wait = expires - now;
		p = &it->next;
	}
	q->tail = NULL;
	for (struct async_item *it = q->head; it; it = it->next)
		q->tail = it;
	return wait > 0 ? wait : 1;
}

static void push_stats(struct runtime *rt)
{
	struct berth_buf doc = BERTH_BUF_INIT;
	if (runtime_async_render_stats(rt, "async_stats", &doc) == 0)
		runtime_send_to_watchers(rt, doc.data, doc.len);
	buf_free(&doc);
}

static void *scheduler_main(void *arg)
{
	struct async_queue *q = arg;
	struct runtime *rt = q->rt;
	for (;;) {
		pthread_mutex_lock(rt->lock);
		pthread_mutex_lock(&q->mu);
		if (q->stopping) {
			pthread_mutex_unlock(&q->mu);
			pthread_mutex_unlock(rt->lock);
			break;
		}
		unsigned long long seen = q->events;
		long long wait = schedule(q);
		pthread_mutex_unlock(rt->lock);
		long long now = clock_now_ms();
		bool push = (q->stats_dirty && now - q->stats_pushed_ms >= ASYNC_STATS_MIN_INTERVAL_MS) ||
			    now - q->stats_pushed_ms >= ASYNC_STATS_HEARTBEAT_MS;
		if (push) {
			q->stats_pushed_ms = now;
			pthread_mutex_unlock(&q->mu);
			push_stats(rt);
			pthread_mutex_lock(&q->mu);
		} else if (q->stats_dirty && wait > ASYNC_STATS_MIN_INTERVAL_MS) {
			wait = ASYNC_STATS_MIN_INTERVAL_MS;
		}
		if (q->events == seen && !q->stopping)
			clock_cond_wait_ms(&q->wake, &q->mu, CLOCK_MONOTONIC, (long)wait);
		pthread_mutex_unlock(&q->mu);
	}
	return NULL;
}

void async_scheduler_start(struct async_queue *q)
{
	pthread_mutex_lock(&q->mu);
	if (!q->started && !q->stopping) {
		if (pthread_create(&q->scheduler, NULL, scheduler_main, q) == 0)
			q->started = true;
		else
			log_error("asynchronous inference: cannot start the scheduler thread; requests stay queued");
	}
	pthread_mutex_unlock(&q->mu);
}
