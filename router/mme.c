/* mme.c — MultiModel endpoints on the router: target map, single-flight
 * loads through berthd, usage reports, evictions, metrics. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berthd_call.h"
#include "clock.h"
#include "json.h"
#include "log.h"
#include "mme.h"
#include "server.h"

/* load latency histogram bounds, ms */
static const double load_buckets_ms[] = { 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 360000 };
#define N_LOAD_BUCKETS (sizeof(load_buckets_ms) / sizeof(load_buckets_ms[0]))
#define MME_TOUCH_TIMEOUT_MS 5000 /* an mme_touch line not written by then is dropped */

struct mme_entry {
	char *target;
	char *model;                   /* NULL while loading */
	struct mme_load *load;         /* in flight */
	struct mme_entry *hnext;       /* hash chain */
	struct mme_entry *lprev, *lnext; /* LRU list, most recent first */
	struct mme_entry *dnext;       /* dirty (touch pending) list */
	bool dirty;
	uint64_t touches;              /* since the last mme_touch */
	uint64_t invocations;          /* total, for /metrics */
	uint64_t hash;
};

struct mme_endpoint {
	struct mme_endpoint *next;
	char *name;
	struct mme_entry **buckets;
	size_t n_buckets, n_entries, n_loaded;
	size_t n_loading;              /* loads in flight point at this endpoint: not pruned */
	struct mme_entry lru;          /* list head */
	struct mme_entry *dirty;
	uint64_t evictions;
	uint64_t other_invocations;    /* of entries trimmed or forgotten */
};

struct mme_load {
	struct mme_load *lnext, *lprev; /* all loads in flight */
	struct mme *m;
	struct mme_endpoint *ep;
	struct mme_entry *entry;       /* NULL once the entry went away */
	struct berthd_call *call;      /* the mme_load line and its answer */
	struct loop_defer free_defer;
	struct mme_wait waiters;       /* list head */
	uint64_t start_ns;
};

/* a fire-and-forget mme_touch line */
struct mme_send {
	struct mme_send *snext, *sprev;
	struct server *srv;
	struct berthd_call *call;
};

struct mme {
	struct server *srv;
	struct mme_endpoint *endpoints;
	struct mme_load loads;         /* list head */
	struct mme_send sends;         /* list head */
	struct loop_timer touch_timer;
	uint64_t hits, misses, loads_done, load_errors, not_ready, reloads;
	uint64_t load_hist[N_LOAD_BUCKETS + 1];
	double load_sum_ms;
	uint64_t load_count;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* ---- endpoints and entries ---------------------------------------------- */

static struct mme_endpoint *endpoint_find(struct mme *m, const char *name, bool create)
{
	for (struct mme_endpoint *e = m->endpoints; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e;
	if (!create)
		return NULL;
	struct mme_endpoint *e = calloc(1, sizeof(*e));
	if (!e || !(e->name = strdup(name)) || !(e->buckets = calloc(64, sizeof(*e->buckets)))) {
		if (e)
			free(e->name);
		free(e);
		return NULL;
	}
	e->n_buckets = 64;
	e->lru.lnext = e->lru.lprev = &e->lru;
	e->next = m->endpoints;
	m->endpoints = e;
	return e;
}

static struct mme_entry *entry_find(struct mme_endpoint *e, const char *target, uint64_t h)
{
	for (struct mme_entry *x = e->buckets[h & (e->n_buckets - 1)]; x; x = x->hnext)
		if (x->hash == h && strcmp(x->target, target) == 0)
			return x;
	return NULL;
}

static void lru_unlink(struct mme_entry *x)
{
	x->lprev->lnext = x->lnext;
	x->lnext->lprev = x->lprev;
}

static void lru_front(struct mme_endpoint *e, struct mme_entry *x)
{
	x->lnext = e->lru.lnext;
	x->lprev = &e->lru;
	e->lru.lnext->lprev = x;
	e->lru.lnext = x;
}

static void grow(struct mme_endpoint *e)
{
	size_t nb = e->n_buckets * 2;
	struct mme_entry **b = calloc(nb, sizeof(*b));
	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < e->n_buckets; i++)
		for (struct mme_entry *x = e->buckets[i], *n; x; x = n) {
			n = x->hnext;
			x->hnext = b[x->hash & (nb - 1)];
			b[x->hash & (nb - 1)] = x;
		}
	free(e->buckets);
	e->buckets = b;
	e->n_buckets = nb;
}

static void entry_remove(struct mme_endpoint *e, struct mme_entry *x);

static struct mme_entry *entry_add(struct mme_endpoint *e, const char *target, uint64_t h)
{
	struct mme_entry *x = calloc(1, sizeof(*x));
	if (!x || !(x->target = strdup(target))) {
		free(x);
		return NULL;
	}
	x->hash = h;
	x->hnext = e->buckets[h & (e->n_buckets - 1)];
	e->buckets[h & (e->n_buckets - 1)] = x;
	lru_front(e, x);
	e->n_entries++;
	if (e->n_entries > e->n_buckets)
		grow(e);
	/* bounded: trim the least recently used entries that are not loading */
	for (struct mme_entry *t = e->lru.lprev; e->n_entries > MME_MAX_ENTRIES && t != &e->lru;) {
		struct mme_entry *p = t->lprev;
		if (!t->load && t != x)
			entry_remove(e, t);
		t = p;
	}
	return x;
}

/* Unlinks and frees x (a load in flight keeps going, detached). */
static void entry_remove(struct mme_endpoint *e, struct mme_entry *x)
{
	struct mme_entry **pp = &e->buckets[x->hash & (e->n_buckets - 1)];
	while (*pp && *pp != x)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = x->hnext;
	lru_unlink(x);
	if (x->dirty) {
		struct mme_entry **dp = &e->dirty;
		while (*dp && *dp != x)
			dp = &(*dp)->dnext;
		if (*dp)
			*dp = x->dnext;
	}
	if (x->load)
		x->load->entry = NULL;
	if (x->model)
		e->n_loaded--;
	e->other_invocations += x->invocations;
	e->n_entries--;
	free(x->target);
	free(x->model);
	free(x);
}

static void endpoint_free(struct mme_endpoint *e)
{
	while (e->lru.lnext != &e->lru)
		entry_remove(e, e->lru.lnext);
	free(e->buckets);
	free(e->name);
	free(e);
}

/* ---- public lookups ----------------------------------------------------- */

const char *rmme_lookup(struct mme *m, const char *endpoint, const char *target)
{
	struct mme_endpoint *e = endpoint_find(m, endpoint, false);
	struct mme_entry *x = e ? entry_find(e, target, hash_str(target)) : NULL;
	if (!x || !x->model) {
		m->misses++;
		return NULL;
	}
	m->hits++;
	if (e->lru.lnext != x) {
		lru_unlink(x);
		lru_front(e, x);
	}
	return x->model;
}

void rmme_forget(struct mme *m, const char *endpoint, const char *target)
{
	struct mme_endpoint *e = endpoint_find(m, endpoint, false);
	struct mme_entry *x = e ? entry_find(e, target, hash_str(target)) : NULL;
	if (x && !x->load) {
		m->reloads++;
		entry_remove(e, x);
	}
}

void rmme_count(struct mme *m, const char *endpoint, const char *target)
{
	struct mme_endpoint *e = endpoint_find(m, endpoint, false);
	struct mme_entry *x = e ? entry_find(e, target, hash_str(target)) : NULL;
	if (!x || !x->model)
		return;
	x->invocations++;
	x->touches++;
	if (!x->dirty) {
		x->dirty = true;
		x->dnext = e->dirty;
		e->dirty = x;
	}
	if (!loop_timer_armed(&m->touch_timer))
		loop_timer_arm_ms(m->srv->loop, &m->touch_timer, MME_TOUCH_INTERVAL_MS);
}

void rmme_format_not_ready(char *out, size_t len, const char *endpoint, const char *target)
{
	snprintf(out, len,
		 "Model %s is not ready yet: it is being loaded into endpoint %s. Retry the request; the model continues to load.",
		 target, endpoint);
}

/* ---- touch reports ------------------------------------------------------ */

static void send_free(struct mme_send *s)
{
	s->snext->sprev = s->sprev;
	s->sprev->snext = s->snext;
	free(s);
}

static void send_done(void *data, enum berthd_call_outcome outcome, const char *line, size_t len,
		      const char *detail)
{
	struct mme_send *s = data;
	(void)line;
	(void)len;
	if (outcome == BERTHD_CALL_UNREACHABLE && s->srv->debug)
		log_debug("mme_touch not sent: %s", detail);
	send_free(s);
}

static void send_line(struct mme *m, const struct berth_buf *line)
{
	struct mme_send *s = calloc(1, sizeof(*s));
	if (!s)
		return;
	s->srv = m->srv;
	s->call = berthd_call_start(m->srv, line->data, line->len, false, MME_TOUCH_TIMEOUT_MS, send_done, s);
	if (!s->call) {
		free(s);
		return;
	}
	s->snext = m->sends.snext;
	s->sprev = &m->sends;
	m->sends.snext->sprev = s;
	m->sends.snext = s;
}

static void on_touch_timer(struct loop_timer *t)
{
	struct mme *m = container_of(t, struct mme, touch_timer);
	for (struct mme_endpoint *e = m->endpoints; e; e = e->next) {
		if (!e->dirty)
			continue;
		yajl_gen g = json_gen_new();
		if (!g)
			return;
		int r = yajl_gen_map_open(g) != yajl_gen_status_ok;
		r |= json_gen_kv_str(g, "op", "mme_touch") < 0;
		r |= json_gen_kv_str(g, "endpoint", e->name) < 0;
		r |= json_gen_str(g, "models") < 0;
		r |= yajl_gen_map_open(g) != yajl_gen_status_ok;
		while (e->dirty) {
			struct mme_entry *x = e->dirty;
			e->dirty = x->dnext;
			x->dirty = false;
			if (x->model && x->touches)
				r |= json_gen_kv_int(g, x->model, (long long)x->touches) < 0;
			x->touches = 0;
		}
		r |= yajl_gen_map_close(g) != yajl_gen_status_ok;
		r |= yajl_gen_map_close(g) != yajl_gen_status_ok;
		struct berth_buf line = BERTH_BUF_INIT;
		if (r) {
			yajl_gen_free(g);
			continue;
		}
		if (json_gen_finish(g, &line) < 0 || buf_append(&line, "\n", 1) < 0) { /* g is freed */
			buf_free(&line);
			continue;
		}
		send_line(m, &line);
		buf_free(&line);
	}
}

/* ---- loads -------------------------------------------------------------- */

static void load_free_deferred(struct loop_defer *d)
{
	free(container_of(d, struct mme_load, free_defer));
}

static void wait_unlink(struct mme_wait *w)
{
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->prev = w->next = NULL;
	w->load = NULL;
	loop_timer_cancel(w->m->srv->loop, &w->timer);
}

/* Ends the load: the entry learns N (or goes away on failure), every waiter
 * gets r. */
static void load_finish(struct mme_load *l, const struct mme_result *r)
{
	struct mme *m = l->m;
	l->lnext->lprev = l->lprev;
	l->lprev->lnext = l->lnext;
	l->ep->n_loading--;
	berthd_call_cancel(l->call); /* a no-op when its answer brought us here */
	l->call = NULL;
	double ms = (double)(clock_now_ns() - l->start_ns) / 1e6;
	if (r->ok) {
		m->loads_done++;
		size_t b = 0;
		while (b < N_LOAD_BUCKETS && ms > load_buckets_ms[b])
			b++;
		m->load_hist[b]++;
		m->load_sum_ms += ms;
		m->load_count++;
	} else
		m->load_errors++;
	struct mme_entry *x = l->entry;
	if (x) {
		x->load = NULL;
		if (r->ok) {
			char *n = strdup(r->model);
			if (n) {
				if (!x->model)
					l->ep->n_loaded++;
				free(x->model);
				x->model = n;
			} else
				entry_remove(l->ep, x);
		} else
			entry_remove(l->ep, x);
	}
	/* detach all waiters first: a callback may start new loads */
	struct mme_wait head = { .prev = &head, .next = &head };
	if (l->waiters.next != &l->waiters) {
		head.next = l->waiters.next;
		head.prev = l->waiters.prev;
		head.next->prev = &head;
		head.prev->next = &head;
		l->waiters.next = l->waiters.prev = &l->waiters;
	}
	while (head.next != &head) {
		struct mme_wait *w = head.next;
		wait_unlink(w);
		w->cb(w, r);
	}
	loop_defer(m->srv->loop, &l->free_defer);
}

static void load_fail(struct mme_load *l, int status, const char *code, const char *message)
{
	struct mme_result r = { .ok = false, .status = status, .code = code, .message = message, .original_status = -1 };
	load_finish(l, &r);
}

static bool model_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > MME_MAX_MODEL_NAME || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' ||
		      *s == '_' || *s == '-'))
			return false;
	return true;
}

static void load_reply(struct mme_load *l, const char *line, size_t len)
{
	struct berth_err err;
	yajl_val v = json_parse(line, len, &err);
	bool ok = false;
	if (!v || !json_get_bool(v, "ok", &ok)) {
		if (v)
			yajl_tree_free(v);
		log_error("malformed mme_load reply from berthd: %.200s", line);
		load_fail(l, 500, "InternalFailure", "berthd sent a malformed reply to a model load");
		return;
	}
	struct mme_result r = { .ok = ok, .original_status = -1 };
	if (ok) {
		r.model = json_get_string(v, "model");
		json_get_double(v, "load_ms", &r.load_ms);
		if (!r.model || !model_name_ok(r.model)) {
			yajl_tree_free(v);
			log_error("mme_load reply from berthd names no valid model: %.200s", line);
			load_fail(l, 500, "InternalFailure", "berthd sent a malformed reply to a model load");
			return;
		}
	} else {
		long long st = 0, ost = -1;
		if (!json_get_int64(v, "status", &st) || st < 400 || st > 599)
			st = 500;
		r.status = (int)st;
		r.code = json_get_string(v, "code");
		if (!r.code || !*r.code)
			r.code = st < 500 ? "ValidationError" : "InternalFailure";
		r.message = json_get_string(v, "message");
		if (!r.message)
			r.message = "The model could not be loaded.";
		if (json_get_int64(v, "original_status", &ost))
			r.original_status = (int)ost;
		r.original_message = json_get_string(v, "original_message");
	}
	load_finish(l, &r);
	yajl_tree_free(v);
}

static void load_done(void *data, enum berthd_call_outcome outcome, const char *line, size_t len,
		      const char *detail)
{
	struct mme_load *l = data;
	char msg[512];
	switch (outcome) {
	case BERTHD_CALL_OK:
		load_reply(l, line, len);
		return;
	case BERTHD_CALL_UNREACHABLE:
		load_fail(l, 503, "ServiceUnavailable", detail);
		return;
	case BERTHD_CALL_CLOSED:
		snprintf(msg, sizeof(msg),
			 "berthd closed the connection without answering a model load (%.200s); it may be restarting, try again",
			 detail);
		load_fail(l, 503, "ServiceUnavailable", msg);
		return;
	case BERTHD_CALL_TIMED_OUT:
		load_fail(l, 503, "ServiceUnavailable", "berthd did not finish loading the model in time; try again");
		return;
	}
}

static int render_load(struct berth_buf *out, const char *endpoint, const char *target)
{
	yajl_gen g = json_gen_new();
	if (!g)
		return -1;
	if (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_kv_str(g, "op", "mme_load") < 0 ||
	    json_gen_kv_str(g, "endpoint", endpoint) < 0 || json_gen_kv_str(g, "target_model", target) < 0 ||
	    yajl_gen_map_close(g) != yajl_gen_status_ok) {
		yajl_gen_free(g);
		return -1;
	}
	if (json_gen_finish(g, out) < 0)
		return -1;
	return buf_append(out, "\n", 1);
}

static struct mme_load *load_start(struct mme *m, struct mme_endpoint *e, struct mme_entry *x)
{
	struct mme_load *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->start_ns = clock_now_ns();
	struct berth_buf line = BERTH_BUF_INIT;
	if (render_load(&line, e->name, x->target) < 0)
		l->call = berthd_call_fail(m->srv, "the target model name is not valid UTF-8", load_done, l);
	else
		l->call = berthd_call_start(m->srv, line.data, line.len, true, MME_LOAD_TIMEOUT_MS, load_done, l);
	buf_free(&line);
	if (!l->call) {
		free(l);
		return NULL;
	}
	l->m = m;
	l->ep = e;
	e->n_loading++;
	l->lnext = m->loads.lnext;
	l->lprev = &m->loads;
	m->loads.lnext->lprev = l;
	m->loads.lnext = l;
	l->entry = x;
	l->waiters.next = l->waiters.prev = &l->waiters;
	loop_defer_init(&l->free_defer, load_free_deferred);
	x->load = l;
	return l;
}

/* ---- waiters ------------------------------------------------------------ */

static void wait_on_timer(struct loop_timer *t)
{
	struct mme_wait *w = container_of(t, struct mme_wait, timer);
	struct mme_load *l = w->load;
	char msg[2048];
	rmme_format_not_ready(msg, sizeof(msg), l->ep->name, l->entry ? l->entry->target : "?");
	wait_unlink(w);
	w->m->not_ready++;
	struct mme_result r = { .ok = false, .status = 429, .code = "ModelNotReadyException", .message = msg,
				.original_status = -1 };
	w->cb(w, &r);
}

static void wait_on_fail_now(struct loop_timer *t)
{
	struct mme_wait *w = container_of(t, struct mme_wait, timer);
	struct mme_result r = { .ok = false, .status = 500, .code = "InternalFailure", .message = "out of memory",
				.original_status = -1 };
	w->cb(w, &r);
}

void rmme_wait_start(struct mme *m, const char *endpoint, const char *target, struct mme_wait *w, mme_wait_cb cb)
{
	memset(w, 0, sizeof(*w));
	w->m = m;
	w->cb = cb;
	w->start_ns = clock_now_ns();
	uint64_t h = hash_str(target);
	struct mme_endpoint *e = endpoint_find(m, endpoint, true);
	struct mme_entry *x = e ? entry_find(e, target, h) : NULL;
	if (e && !x)
		x = entry_add(e, target, h);
	struct mme_load *l = x ? x->load : NULL;
	if (x && !l) {
		if (x->model) { /* forgotten N but entry kept: reload */
			free(x->model);
			x->model = NULL;
			e->n_loaded--;
		}
		l = load_start(m, e, x);
	}
	if (!l) {
		loop_timer_init(&w->timer, wait_on_fail_now);
		loop_timer_arm_ms(m->srv->loop, &w->timer, 0);
		return;
	}
	w->load = l;
	w->next = &l->waiters;
	w->prev = l->waiters.prev;
	l->waiters.prev->next = w;
	l->waiters.prev = w;
	loop_timer_init(&w->timer, wait_on_timer);
	loop_timer_arm_ms(m->srv->loop, &w->timer, m->srv->cfg.model_wait_ms);
}

void rmme_wait_cancel(struct mme_wait *w)
{
	if (!w->m)
		return;
	if (w->load)
		wait_unlink(w);
	else
		loop_timer_cancel(w->m->srv->loop, &w->timer);
	w->m = NULL;
}

/* ---- route watch events ------------------------------------------------- */

bool rmme_route_event(struct mme *m, const char *line, size_t len)
{
	if (!memmem(line, len < 64 ? len : 64, "mme_evicted", 11))
		return false;
	struct berth_err err;
	yajl_val v = json_parse(line, len, &err);
	const char *op = v ? json_get_string(v, "op") : NULL;
	if (!op || strcmp(op, "mme_evicted") != 0) {
		if (v)
			yajl_tree_free(v);
		return false;
	}
	const char *ep = json_get_string(v, "endpoint"), *model = json_get_string(v, "model");
	struct mme_endpoint *e = ep ? endpoint_find(m, ep, false) : NULL;
	if (e && model) {
		e->evictions++;
		for (struct mme_entry *x = e->lru.lprev; x != &e->lru; x = x->lprev)
			if (x->model && !x->load && strcmp(x->model, model) == 0) {
				entry_remove(e, x);
				break;
			}
	} else if (ep && model) {
		struct mme_endpoint *ne = endpoint_find(m, ep, true);
		if (ne)
			ne->evictions++;
	}
	yajl_tree_free(v);
	return true;
}

void rmme_prune(struct mme *m, const struct route_table *t)
{
	for (struct mme_endpoint **pp = &m->endpoints; *pp;) {
		struct mme_endpoint *e = *pp;
		const struct route_endpoint *re = route_table_find(t, e->name);
		if ((!re || !route_endpoint_variant_in_mode(re, ROUTE_MODE_MULTI)) && e->n_loading == 0) {
			*pp = e->next;
			endpoint_free(e);
		} else
			pp = &e->next;
	}
}

/* ---- metrics ------------------------------------------------------------ */

static int label_escape(struct berth_buf *out, const char *s)
{
	int r = 0;
	for (; *s && !r; s++) {
		if (*s == '\\' || *s == '"')
			r |= buf_printf(out, "\\%c", *s);
		else if (*s == '\n')
			r |= buf_append_str(out, "\\n");
		else
			r |= buf_append(out, s, 1);
	}
	return r;
}

int rmme_render_metrics(struct mme *m, struct berth_buf *out)
{
	int r = 0;
#define COUNTER(name, help, value)                                                                  \
	r |= buf_printf(out, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %" PRIu64 "\n", \
			(uint64_t)(value))
	COUNTER("berth_router_mme_cache_hits_total", "MultiModel invocations whose model the router knew loaded.", m->hits);
	COUNTER("berth_router_mme_cache_misses_total", "MultiModel invocations that needed a load.", m->misses);
	COUNTER("berth_router_mme_loads_total", "Model loads completed through berthd.", m->loads_done);
	COUNTER("berth_router_mme_load_errors_total", "Model loads that failed.", m->load_errors);
	COUNTER("berth_router_mme_not_ready_total", "Invocations answered 429 ModelNotReadyException.", m->not_ready);
	COUNTER("berth_router_mme_reloads_total", "Models found evicted under the router (404) and loaded again.", m->reloads);
#undef COUNTER
	r |= buf_append_str(out, "# HELP berth_router_mme_load_seconds Model load latency seen by the router.\n"
				 "# TYPE berth_router_mme_load_seconds histogram\n");
	uint64_t cum = 0;
	for (size_t b = 0; b < N_LOAD_BUCKETS; b++) {
		cum += m->load_hist[b];
		r |= buf_printf(out, "berth_router_mme_load_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
				load_buckets_ms[b] / 1000.0, cum);
	}
	cum += m->load_hist[N_LOAD_BUCKETS];
	r |= buf_printf(out, "berth_router_mme_load_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
	r |= buf_printf(out, "berth_router_mme_load_seconds_sum %.6f\nberth_router_mme_load_seconds_count %" PRIu64 "\n",
			m->load_sum_ms / 1000.0, m->load_count);
	r |= buf_append_str(out, "# HELP berth_router_mme_models_loaded Models the router knows loaded, by endpoint.\n"
				 "# TYPE berth_router_mme_models_loaded gauge\n");
	for (struct mme_endpoint *e = m->endpoints; e; e = e->next) {
		r |= buf_append_str(out, "berth_router_mme_models_loaded{endpoint=\"");
		r |= label_escape(out, e->name);
		r |= buf_printf(out, "\"} %zu\n", e->n_loaded);
	}
	r |= buf_append_str(out, "# HELP berth_router_mme_evictions_total Models berthd unloaded, by endpoint.\n"
				 "# TYPE berth_router_mme_evictions_total counter\n");
	for (struct mme_endpoint *e = m->endpoints; e; e = e->next) {
		r |= buf_append_str(out, "berth_router_mme_evictions_total{endpoint=\"");
		r |= label_escape(out, e->name);
		r |= buf_printf(out, "\"} %" PRIu64 "\n", e->evictions);
	}
	r |= buf_append_str(out, "# HELP berth_router_mme_model_invocations_total Invocations per model (the top "
				 "20 per endpoint; the rest under model=\"other\").\n"
				 "# TYPE berth_router_mme_model_invocations_total counter\n");
	for (struct mme_endpoint *e = m->endpoints; e; e = e->next) {
		const struct mme_entry *top[MME_TOP_MODELS];
		size_t n_top = 0;
		uint64_t other = e->other_invocations;
		for (const struct mme_entry *x = e->lru.lnext; x != &e->lru; x = x->lnext) {
			if (x->invocations == 0)
				continue;
			if (n_top < MME_TOP_MODELS) {
				top[n_top++] = x;
				continue;
			}
			size_t min = 0;
			for (size_t i = 1; i < n_top; i++)
				if (top[i]->invocations < top[min]->invocations)
					min = i;
			if (x->invocations > top[min]->invocations) {
				other += top[min]->invocations;
				top[min] = x;
			} else
				other += x->invocations;
		}
		for (size_t i = 0; i < n_top; i++) {
			r |= buf_append_str(out, "berth_router_mme_model_invocations_total{endpoint=\"");
			r |= label_escape(out, e->name);
			r |= buf_append_str(out, "\",model=\"");
			r |= label_escape(out, top[i]->target);
			r |= buf_printf(out, "\"} %" PRIu64 "\n", top[i]->invocations);
		}
		r |= buf_append_str(out, "berth_router_mme_model_invocations_total{endpoint=\"");
		r |= label_escape(out, e->name);
		r |= buf_printf(out, "\",model=\"other\"} %" PRIu64 "\n", other);
	}
	return r ? -1 : 0;
}

/* ---- life --------------------------------------------------------------- */

struct mme *rmme_new(struct server *srv)
{
	struct mme *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->srv = srv;
	m->loads.lnext = m->loads.lprev = &m->loads;
	m->sends.snext = m->sends.sprev = &m->sends;
	loop_timer_init(&m->touch_timer, on_touch_timer);
	return m;
}

/* The caller runs the loop's deferred work afterwards (frees). */
void rmme_free(struct mme *m)
{
	if (!m)
		return;
	loop_timer_cancel(m->srv->loop, &m->touch_timer);
	while (m->loads.lnext != &m->loads)
		load_fail(m->loads.lnext, 503, "ServiceUnavailable", "the router is stopping");
	while (m->sends.snext != &m->sends) {
		berthd_call_cancel(m->sends.snext->call);
		send_free(m->sends.snext);
	}
	while (m->endpoints) {
		struct mme_endpoint *e = m->endpoints;
		m->endpoints = e->next;
		endpoint_free(e);
	}
	free(m);
}
