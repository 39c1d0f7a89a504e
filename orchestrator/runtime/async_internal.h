/* async_internal.h — what async.c (the durable queue) and async_run.c (the
 * scheduler and the runs) share; not used outside runtime/.
 *
 * Locking: struct async_queue has its own mutex `mu`, so a run finishing
 * never needs the store's *rt->lock. Whoever needs both takes *rt->lock
 * first, then mu. */
#ifndef BERTH_ASYNC_INTERNAL_H
#define BERTH_ASYNC_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "buf.h"
#include "runtime_internal.h"

#define ASYNC_DIR "async"          /* STATE_DIR/async/ID.json: one record per request */
#define ASYNC_RUNNING_SUFFIX ".running" /* STATE_DIR/async/ID.running: sent to a container */
#define ASYNC_ID_LEN 36
#define ASYNC_MAX_STEPS 15         /* containers of a Serial instance */

enum async_state { ASYNC_QUEUED, ASYNC_RUNNING };

struct async_item {
	char id[ASYNC_ID_LEN + 1];     /* berth's UUID: the record's name */
	char *endpoint;
	char *input;                   /* InputLocation */
	char *output_url, *failure_url;
	char *content_type, *accept, *custom_attributes, *inference_id; /* NULL when absent */
	long long enqueued_ms;         /* Unix ms */
	long long ttl_s, timeout_s;
	enum async_state state;
	bool durable;                  /* its record is written: it may be run */
	/* while running: the instance's key (its first container's shim socket)
	 * and the shim sockets of its containers, in chain order */
	char *instance_key;
	char *steps[ASYNC_MAX_STEPS];
	size_t n_steps;
	/* the endpoint's notification topics, only to log them as not delivered */
	bool notify;
	struct async_item *next;
};

struct async_slot {
	char *key;       /* instance key */
	long long busy;  /* requests running on it */
};

struct async_queue {
	struct runtime *rt;
	pthread_mutex_t mu;
	pthread_cond_t wake;           /* CLOCK_MONOTONIC */
	struct async_item *head, *tail; /* queued, oldest first */
	struct async_item *running;     /* running, any order */
	size_t n_running_threads;
	struct async_slot *slots;
	size_t n_slots;
	bool stopping, started;
	int stop_fd;                   /* an eventfd, readable once stopping: runs give up (-1: none) */
	unsigned long long events;     /* bumped by async_kick: the scheduler looks again */
	long long stats_pushed_ms;     /* monotonic */
	bool stats_dirty;
	pthread_t scheduler;
	unsigned long long pick;       /* spreads choices among equal instances */
};

/* async_record.c (the lowest of the three; async_run.c above it, async.c on top) */
void async_item_free(struct async_item *it);
/* Writes the item's record (its state included), durably. -1 with err. */
int async_item_persist(struct async_queue *q, const struct async_item *it, struct berth_err *err);
/* Creates the request's marker ID.running and makes it durable (one
 * fsync of the directory): from then on a restart never sends it again. */
int async_item_mark_running(struct async_queue *q, const struct async_item *it, struct berth_err *err);
/* Removes the record, then the marker (not durably: a record left behind
 * by a crash is recognised at start by its output object, see async.c). */
void async_item_forget(struct async_queue *q, const struct async_item *it);
/* Writes text as the item's failure object, removes its record and logs
 * (the caller frees it). Without any lock. */
void async_item_fail(struct async_queue *q, struct async_item *it, const char *text, size_t len);

/* async_run.c */
/* With mu held: something changed (a request queued or finished, stop). */
void async_kick(struct async_queue *q);
/* Starts the scheduler thread (once). With nothing locked. */
void async_scheduler_start(struct async_queue *q);
/* With q->mu held, it taken out of every list: writes its failure (text)
 * on a detached thread that n_running_threads counts, then frees it. */
void async_spawn_fail(struct async_queue *q, struct async_item *it, const char *text);

#endif
