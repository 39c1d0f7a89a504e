/* loop.h — a single-threaded epoll event loop with timers and deferred calls.
 *
 * Objects embed a struct loop_watch (one per fd), struct loop_timer and
 * struct loop_defer and get their own pointer back in the callback
 * (container_of). Nothing here allocates per event.
 *
 * Lifetime rule: an object closed while an event batch is being delivered
 * may still have an event pending in that batch. Close it with
 * loop_watch_del() (the pending event is then dropped) and free it from a
 * loop_defer callback, which runs after the batch. */
#ifndef BERTH_ROUTER_LOOP_H
#define BERTH_ROUTER_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "err.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

struct loop;

struct loop_watch {
	int fd;          /* -1 when not registered */
	uint32_t events; /* EPOLLIN | EPOLLOUT … as registered */
	void (*cb)(struct loop_watch *w, uint32_t events);
};

struct loop_timer {
	uint64_t deadline_ns;      /* CLOCK_MONOTONIC */
	size_t heap_index;         /* SIZE_MAX when not armed */
	void (*cb)(struct loop_timer *t);
};

struct loop_defer {
	struct loop_defer *next;
	bool queued;
	void (*cb)(struct loop_defer *d);
};

int loop_new(struct loop **out, struct berth_err *err);
void loop_free(struct loop *loop);

void loop_watch_init(struct loop_watch *w, void (*cb)(struct loop_watch *, uint32_t));
int loop_watch_add(struct loop *loop, struct loop_watch *w, int fd, uint32_t events, struct berth_err *err);
/* Changes the event mask; no syscall when it is unchanged. */
int loop_watch_mod(struct loop *loop, struct loop_watch *w, uint32_t events);
/* Unregisters (does not close the fd); pending events for it are dropped. */
void loop_watch_del(struct loop *loop, struct loop_watch *w);

void loop_timer_init(struct loop_timer *t, void (*cb)(struct loop_timer *));
void loop_timer_arm_ms(struct loop *loop, struct loop_timer *t, uint64_t delay_ms);
void loop_timer_arm_at(struct loop *loop, struct loop_timer *t, uint64_t deadline_ns);
void loop_timer_cancel(struct loop *loop, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t) { return t->heap_index != SIZE_MAX; }

void loop_defer_init(struct loop_defer *d, void (*cb)(struct loop_defer *));
/* Runs cb once after the current event batch (idempotent while queued). */
void loop_defer(struct loop *loop, struct loop_defer *d);

/* Runs the deferred calls queued so far (for teardown after loop_run). */
void loop_run_deferred(struct loop *loop);

/* Monotonic time cached at the start of each iteration, and a fresh read. */
uint64_t loop_now_ns(const struct loop *loop);

/* Runs until loop_stop(); returns 0, or -1 on an epoll failure. */
int loop_run(struct loop *loop, struct berth_err *err);
void loop_stop(struct loop *loop);

#endif
