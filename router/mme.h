/* mme.h — the router's side of MultiModel endpoints (CONTRACT.md §3,
 * proto_control.h kinds 4 and 5, the mme_evicted event).
 *
 * Per endpoint a hash map TargetModel → N (berth's opaque model name)
 * learned from berthd's mme_load answers, bounded (MME_MAX_ENTRIES per
 * endpoint, least recently used trimmed) so a lookup costs O(1) with any
 * number of models. On a miss one mme_load per (endpoint, target) goes to
 * berthd over a new non-blocking unix connection (router-side
 * single-flight); every request for that target waits on it, each with its
 * own budget (--model-wait-ms), after which it gets 429
 * ModelNotReadyException while the load goes on (its answer is still
 * learned). Invocation counts per model go to berthd as mme_touch about
 * once a second. Single-threaded, on the router's loop. Functions are
 * prefixed rmme_ (berthd has its own mme_* in orchestrator/mme.h). */
#ifndef BERTH_ROUTER_MME_H
#define BERTH_ROUTER_MME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "loop.h"
#include "route_table.h"

#define MME_MAX_ENTRIES 100000      /* TargetModel → N per endpoint */
#define MME_LOAD_TIMEOUT_MS 420000  /* a load berthd never answers is abandoned (loads take up to 360 s) */
#define MME_TOUCH_INTERVAL_MS 1000
#define MME_MAX_TARGET 1024         /* longer TargetModel values are refused before berthd */
#define MME_MAX_MODEL_NAME 200      /* N as sent by berthd */
#define MME_TOP_MODELS 20           /* per-model invocation metrics: top N, the rest in "other" */
#define TARGET_MODEL_HEADER "X-Amzn-SageMaker-Target-Model"

struct server;
struct mme;
struct mme_load;

/* The outcome of a load, as given to a waiter. */
struct mme_result {
	bool ok;
	const char *model;          /* ok: N */
	double load_ms;             /* ok: berthd's load time (0 when it was loaded already) */
	int status;                 /* !ok: HTTP status for the client */
	const char *code;           /* !ok: x-amzn-ErrorType */
	const char *message;
	int original_status;        /* ModelError: the container's status (-1: none) */
	const char *original_message;
};

struct mme_wait;
typedef void (*mme_wait_cb)(struct mme_wait *w, const struct mme_result *r);

/* A request waiting for a load; embedded in the caller's object. */
struct mme_wait {
	struct mme *m;
	struct mme_load *load;       /* NULL when not waiting */
	struct mme_wait *prev, *next;
	struct loop_timer timer;
	mme_wait_cb cb;
	uint64_t start_ns;
};

struct mme *rmme_new(struct server *srv);
void rmme_free(struct mme *m);

/* N for (endpoint, target) when known (a hit; counted), else NULL (a miss).
 * The string is valid until the next call into mme: copy it. */
const char *rmme_lookup(struct mme *m, const char *endpoint, const char *target);
/* Joins or starts the load of (endpoint, target); cb is called exactly once
 * (from the loop, never from inside this call), unless mme_wait_cancel
 * comes first. On a wait over the budget cb gets 429
 * ModelNotReadyException. */
void rmme_wait_start(struct mme *m, const char *endpoint, const char *target, struct mme_wait *w, mme_wait_cb cb);
void rmme_wait_cancel(struct mme_wait *w);
/* The container does not have N any more (404): forget it. */
void rmme_forget(struct mme *m, const char *endpoint, const char *target);
/* One invocation of target answered by the container (usage for berthd's LRU and /metrics). */
void rmme_count(struct mme *m, const char *endpoint, const char *target);
/* A line on the route watch that is not a table; true when it was ours
 * ({"op":"mme_evicted",…}). */
bool rmme_route_event(struct mme *m, const char *line, size_t len);
/* Forgets endpoints no longer MultiModel in t. */
void rmme_prune(struct mme *m, const struct route_table *t);
/* Prometheus text of the MME metrics (appended). */
int rmme_render_metrics(struct mme *m, struct berth_buf *out);

/* The 429 message (pure). */
void rmme_format_not_ready(char *out, size_t len, const char *endpoint, const char *target);

#endif
