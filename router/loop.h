/* loop.h — a single-threaded epoll event loop with timers, deferred calls
 * and batched socket I/O.
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
#include <sys/types.h>
#include <sys/uio.h>

#include "err.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

struct loop;

struct loop_watch {
	int fd;          /* -1 when not registered */
	uint32_t events; /* EPOLLIN | EPOLLOUT … as registered */
	void (*cb)(struct loop_watch *w, uint32_t events);
	/* Set by the owner when its callback reads the fd only with
	 * loop_read(): the loop may then receive for it, with the other
	 * watches of the event batch, in one system call (see loop_read). */
	bool batch_read;
	/* private: bytes received for the watch and not read yet */
	char *pend;               /* a slot of the loop's, or owned (pend_owned) */
	size_t pend_len, pend_off;
	int pend_status;          /* after the bytes: 0, LOOP_PEND_EOF, or -errno */
	bool pend_owned, pend_drained;
	struct loop_watch *pend_next, **pend_pprev; /* watches holding owned bytes */
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

/* A socket write gathered with the others of this loop turn and sent with
 * them in one system call (iobatch.h), after the turn's events, timers and
 * deferred calls. prepare() is called then and fills iov (at most
 * LOOP_WRITE_IOV) with what is to be sent: 0 vectors, nothing is sent and
 * complete() is not called; a negative value (-errno), complete() gets it
 * at once. complete() gets the bytes sent or -errno (-EAGAIN: the socket
 * is full): it goes on from there (writes the rest itself, waits for
 * EPOLLOUT, or closes). prepare() may end its owner (loop_write_cancel,
 * then returns 0). The buffers named in iov must stay as they are
 * until complete(). Every write has MSG_NOSIGNAL. */
#define LOOP_WRITE_IOV 4

struct loop_write {
	struct loop_write *next, **pprev; /* in the queue when pprev != NULL */
	int batch_index;                  /* in the batch being sent, else -1 */
	int fd;
	int (*prepare)(struct loop_write *w, struct iovec *iov);
	void (*complete)(struct loop_write *w, ssize_t result);
};

/* use_uring: batch with io_uring when the kernel allows it (iobatch.h). */
int loop_new(struct loop **out, bool use_uring, struct berth_err *err);
/* "io_uring" or "plain system calls (<why>)": for the start-up log */
const char *loop_io_backend(const struct loop *loop, char *buf, size_t len);
void loop_free(struct loop *loop);

void loop_watch_init(struct loop_watch *w, void (*cb)(struct loop_watch *, uint32_t));
int loop_watch_add(struct loop *loop, struct loop_watch *w, int fd, uint32_t events, struct berth_err *err);
/* Changes the event mask; no syscall when it is unchanged. */
int loop_watch_mod(struct loop *loop, struct loop_watch *w, uint32_t events);
/* Unregisters (does not close the fd); pending events for it are dropped,
 * and so are bytes received for it and not read. */
void loop_watch_del(struct loop *loop, struct loop_watch *w);

/* read(2) for a batch_read watch: first what the loop received for it (its
 * batch receive, in the event batch being delivered), then the socket
 * itself. Same results as read(2): bytes, 0 at EOF, -1 with errno (EAGAIN
 * when nothing is there; it is known without a system call once the batch
 * receive found the socket drained). What the callback leaves unread is
 * kept and delivered again (EPOLLIN) next turn, when EPOLLIN is watched:
 * nothing received is ever lost. */
#define LOOP_PEND_EOF 1
ssize_t loop_read(struct loop *loop, struct loop_watch *w, void *buf, size_t len);

void loop_timer_init(struct loop_timer *t, void (*cb)(struct loop_timer *));
void loop_timer_arm_ms(struct loop *loop, struct loop_timer *t, uint64_t delay_ms);
void loop_timer_arm_at(struct loop *loop, struct loop_timer *t, uint64_t deadline_ns);
void loop_timer_cancel(struct loop *loop, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t) { return t->heap_index != SIZE_MAX; }

void loop_defer_init(struct loop_defer *d, void (*cb)(struct loop_defer *));
/* Runs cb once after the current event batch (idempotent while queued). */
void loop_defer(struct loop *loop, struct loop_defer *d);

void loop_write_init(struct loop_write *w, int fd, int (*prepare)(struct loop_write *, struct iovec *),
		     void (*complete)(struct loop_write *, ssize_t));
/* Queues w for this turn's batch (idempotent while queued). */
void loop_write_queue(struct loop *loop, struct loop_write *w);
/* Takes w out of the queue, or out of the batch being sent (complete() is
 * then not called): before its owner is freed or its fd closed. */
void loop_write_cancel(struct loop *loop, struct loop_write *w);
static inline bool loop_write_queued(const struct loop_write *w) { return w->pprev != NULL; }

/* Runs the deferred calls queued so far (for teardown after loop_run). */
void loop_run_deferred(struct loop *loop);

/* Monotonic time cached at the start of each iteration, and a fresh read. */
uint64_t loop_now_ns(const struct loop *loop);

/* Runs until loop_stop(); returns 0, or -1 on an epoll failure. */
int loop_run(struct loop *loop, struct berth_err *err);
void loop_stop(struct loop *loop);

#endif
