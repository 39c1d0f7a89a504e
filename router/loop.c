/* loop.c — epoll event loop, binary-heap timers, deferred calls, batched
 * socket I/O. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "clock.h"
#include "iobatch.h"

#define LOOP_MAX_EVENTS 128
/* a batch receive's room per watch: a request or answer head, a small body */
#define LOOP_STAGE_BYTES 16384

static void flush_writes(struct loop *loop);

struct loop {
	int epfd;
	bool stop;
	uint64_t now_ns;
	struct loop_timer **heap;
	size_t heap_len, heap_cap;
	struct loop_defer *defer_head, **defer_tail;
	/* events of the batch being delivered, so loop_watch_del can drop them */
	struct epoll_event events[LOOP_MAX_EVENTS];
	int n_events;
	/* writes queued this turn, and the batch being sent */
	struct iobatch *io;
	struct loop_write *write_head, **write_tail;
	struct loop_write *batch[IOBATCH_MAX];
	struct iobatch_op ops[IOBATCH_MAX];
	struct msghdr msgs[IOBATCH_MAX];
	struct iovec iovs[IOBATCH_MAX][LOOP_WRITE_IOV];
	/* batch receives: one slot per event; watches holding unread bytes */
	char *stage;
	struct loop_watch *pend_head;
};

uint64_t loop_now_ns(const struct loop *loop) { return loop->now_ns; }

int loop_new(struct loop **out, bool use_uring, struct berth_err *err)
{
	struct loop *loop = calloc(1, sizeof(*loop));
	if (!loop)
		return berth_err_set(err, ENOMEM, "event loop");
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int e = errno;
		free(loop);
		return berth_err_set(err, e, "epoll_create1");
	}
	loop->io = iobatch_new(use_uring);
	/* address space only: a page is touched when a receive fills it */
	loop->stage = malloc((size_t)LOOP_MAX_EVENTS * LOOP_STAGE_BYTES);
	if (!loop->io || !loop->stage) {
		iobatch_free(loop->io);
		free(loop->stage);
		close(loop->epfd);
		free(loop);
		return berth_err_set(err, ENOMEM, "event loop");
	}
	loop->defer_tail = &loop->defer_head;
	loop->write_tail = &loop->write_head;
	loop->now_ns = clock_now_ns();
	*out = loop;
	return 0;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	close(loop->epfd);
	iobatch_free(loop->io);
	while (loop->pend_head) {
		struct loop_watch *w = loop->pend_head;
		loop->pend_head = w->pend_next;
		free(w->pend);
		w->pend = NULL;
		w->pend_pprev = NULL;
	}
	free(loop->stage);
	free(loop->heap);
	free(loop);
}

const char *loop_io_backend(const struct loop *loop, char *buf, size_t len)
{
	if (iobatch_uring(loop->io))
		snprintf(buf, len, "io_uring (one io_uring_enter for an event batch's receives, one for a turn's sends)");
	else
		snprintf(buf, len, "plain system calls (no io_uring: %s)", iobatch_why_not(loop->io));
	return buf;
}

/* ---- fd watches ---------------------------------------------------------- */

void loop_watch_init(struct loop_watch *w, void (*cb)(struct loop_watch *, uint32_t))
{
	w->fd = -1;
	w->events = 0;
	w->cb = cb;
	w->batch_read = false;
	w->pend = NULL;
	w->pend_len = w->pend_off = 0;
	w->pend_status = 0;
	w->pend_owned = w->pend_drained = false;
	w->pend_next = NULL;
	w->pend_pprev = NULL;
}

/* ---- batch receives ------------------------------------------------------ */

static void pend_unlist(struct loop_watch *w)
{
	if (!w->pend_pprev)
		return;
	*w->pend_pprev = w->pend_next;
	if (w->pend_next)
		w->pend_next->pend_pprev = w->pend_pprev;
	w->pend_next = NULL;
	w->pend_pprev = NULL;
}

static void pend_clear(struct loop_watch *w)
{
	pend_unlist(w);
	if (w->pend_owned)
		free(w->pend);
	w->pend = NULL;
	w->pend_len = w->pend_off = 0;
	w->pend_status = 0;
	w->pend_owned = false;
}

static bool pend_any(const struct loop_watch *w) { return w->pend_off < w->pend_len || w->pend_status != 0; }

/* After the watch's callback: what it left unread moves out of the slot
 * (reused next batch) into memory of its own, listed for the next turn. */
static void pend_keep(struct loop *loop, struct loop_watch *w)
{
	w->pend_drained = false;
	if (!pend_any(w)) {
		pend_clear(w);
		return;
	}
	if (w->pend_owned)
		return;
	size_t n = w->pend_len - w->pend_off;
	char *copy = malloc(n ? n : 1);
	if (!copy)
		abort(); /* received bytes cannot be dropped silently: nothing sane left to do */
	memcpy(copy, w->pend + w->pend_off, n);
	w->pend = copy;
	w->pend_len = n;
	w->pend_off = 0;
	w->pend_owned = true;
	w->pend_next = loop->pend_head;
	if (loop->pend_head)
		loop->pend_head->pend_pprev = &w->pend_next;
	w->pend_pprev = &loop->pend_head;
	loop->pend_head = w;
}

ssize_t loop_read(struct loop *loop, struct loop_watch *w, void *buf, size_t len)
{
	if (w->pend) {
		if (w->pend_off < w->pend_len) {
			size_t n = w->pend_len - w->pend_off;
			if (n > len)
				n = len;
			memcpy(buf, w->pend + w->pend_off, n);
			w->pend_off += n;
			return (ssize_t)n;
		}
		int status = w->pend_status;
		pend_clear(w);
		if (status == LOOP_PEND_EOF)
			return 0;
		if (status < 0) {
			errno = -status;
			return -1;
		}
	}
	if (w->pend_drained) { /* the batch receive emptied the socket this turn */
		errno = EAGAIN;
		return -1;
	}
	(void)loop;
	return read(w->fd, buf, len);
}

/* Receives, in one batch, for every batch_read watch the events report
 * readable (and holding nothing unread already). */
static void receive_batch(struct loop *loop, int n)
{
	size_t k = 0;
	int slot_of[IOBATCH_MAX];
	for (int i = 0; i < n && k < IOBATCH_MAX; i++) {
		struct loop_watch *w = loop->events[i].data.ptr;
		if (!w || !w->batch_read || !(loop->events[i].events & EPOLLIN) || w->pend)
			continue;
		loop->ops[k] = (struct iobatch_op){ .fd = w->fd, .buf = loop->stage + (size_t)i * LOOP_STAGE_BYTES,
						    .len = LOOP_STAGE_BYTES };
		slot_of[k++] = i;
	}
	if (k < 2)
		return; /* one receive saves nothing: the callback reads itself */
	iobatch_run(loop->io, loop->ops, k);
	for (size_t j = 0; j < k; j++) {
		struct loop_watch *w = loop->events[slot_of[j]].data.ptr;
		ssize_t r = loop->ops[j].result;
		w->pend = loop->stage + (size_t)slot_of[j] * LOOP_STAGE_BYTES;
		w->pend_off = 0;
		w->pend_len = r > 0 ? (size_t)r : 0;
		w->pend_status = r == 0 ? LOOP_PEND_EOF : r < 0 && r != -EAGAIN && r != -EINTR ? (int)r : 0;
		w->pend_drained = (r > 0 && (size_t)r < LOOP_STAGE_BYTES) || r == -EAGAIN;
	}
}

/* Watches holding unread bytes and watching EPOLLIN get it again. */
static int add_pending_events(struct loop *loop, int n)
{
	for (struct loop_watch *w = loop->pend_head; w && n < LOOP_MAX_EVENTS; w = w->pend_next) {
		if (!(w->events & EPOLLIN))
			continue;
		int i;
		for (i = 0; i < n; i++)
			if (loop->events[i].data.ptr == w)
				break;
		if (i < n)
			loop->events[i].events |= EPOLLIN;
		else
			loop->events[n++] = (struct epoll_event){ .events = EPOLLIN, .data.ptr = w };
	}
	return n;
}

static bool pending_wanted(const struct loop *loop)
{
	for (const struct loop_watch *w = loop->pend_head; w; w = w->pend_next)
		if (w->events & EPOLLIN)
			return true;
	return false;
}

int loop_watch_add(struct loop *loop, struct loop_watch *w, int fd, uint32_t events, struct berth_err *err)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return berth_err_set(err, errno, "epoll_ctl add fd %d", fd);
	w->fd = fd;
	w->events = events;
	return 0;
}

int loop_watch_mod(struct loop *loop, struct loop_watch *w, uint32_t events)
{
	if (w->fd < 0 || w->events == events)
		return 0;
	struct epoll_event ev = { .events = events, .data.ptr = w };
	if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0)
		return -1;
	w->events = events;
	return 0;
}

void loop_watch_del(struct loop *loop, struct loop_watch *w)
{
	if (w->fd < 0)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->fd = -1;
	w->events = 0;
	pend_clear(w);
	w->pend_drained = false;
	for (int i = 0; i < loop->n_events; i++)
		if (loop->events[i].data.ptr == w)
			loop->events[i].data.ptr = NULL;
}

/* ---- timers: a binary min-heap keyed by deadline ------------------------- */

static void heap_set(struct loop *loop, size_t i, struct loop_timer *t)
{
	loop->heap[i] = t;
	t->heap_index = i;
}

static void heap_up(struct loop *loop, size_t i)
{
	struct loop_timer *t = loop->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (loop->heap[parent]->deadline_ns <= t->deadline_ns)
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void heap_down(struct loop *loop, size_t i)
{
	struct loop_timer *t = loop->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		uint64_t best = t->deadline_ns;
		if (l < loop->heap_len && loop->heap[l]->deadline_ns < best) {
			m = l;
			best = loop->heap[l]->deadline_ns;
		}
		if (r < loop->heap_len && loop->heap[r]->deadline_ns < best)
			m = r;
		if (m == i)
			break;
		heap_set(loop, i, loop->heap[m]);
		i = m;
	}
	heap_set(loop, i, t);
}

void loop_timer_init(struct loop_timer *t, void (*cb)(struct loop_timer *))
{
	t->deadline_ns = 0;
	t->heap_index = SIZE_MAX;
	t->cb = cb;
}

void loop_timer_cancel(struct loop *loop, struct loop_timer *t)
{
	size_t i = t->heap_index;
	if (i == SIZE_MAX)
		return;
	t->heap_index = SIZE_MAX;
	loop->heap_len--;
	if (i == loop->heap_len)
		return;
	struct loop_timer *last = loop->heap[loop->heap_len];
	heap_set(loop, i, last);
	if (i > 0 && loop->heap[(i - 1) / 2]->deadline_ns > last->deadline_ns)
		heap_up(loop, i);
	else
		heap_down(loop, i);
}

void loop_timer_arm_at(struct loop *loop, struct loop_timer *t, uint64_t deadline_ns)
{
	if (t->heap_index != SIZE_MAX) {
		uint64_t old = t->deadline_ns;
		t->deadline_ns = deadline_ns;
		if (deadline_ns < old)
			heap_up(loop, t->heap_index);
		else if (deadline_ns > old)
			heap_down(loop, t->heap_index);
		return;
	}
	if (loop->heap_len == loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		struct loop_timer **h = realloc(loop->heap, cap * sizeof(*h));
		if (!h)
			abort(); /* out of memory for a timer: nothing sane left to do */
		loop->heap = h;
		loop->heap_cap = cap;
	}
	t->deadline_ns = deadline_ns;
	heap_set(loop, loop->heap_len++, t);
	heap_up(loop, t->heap_index);
}

void loop_timer_arm_ms(struct loop *loop, struct loop_timer *t, uint64_t delay_ms)
{
	loop_timer_arm_at(loop, t, loop->now_ns + delay_ms * 1000000ull);
}

/* ---- deferred calls ------------------------------------------------------ */

void loop_defer_init(struct loop_defer *d, void (*cb)(struct loop_defer *))
{
	d->next = NULL;
	d->queued = false;
	d->cb = cb;
}

void loop_defer(struct loop *loop, struct loop_defer *d)
{
	if (d->queued)
		return;
	d->queued = true;
	d->next = NULL;
	*loop->defer_tail = d;
	loop->defer_tail = &d->next;
}

static void run_deferred(struct loop *loop)
{
	while (loop->defer_head) {
		struct loop_defer *d = loop->defer_head;
		loop->defer_head = d->next;
		if (!loop->defer_head)
			loop->defer_tail = &loop->defer_head;
		d->queued = false;
		d->cb(d);
	}
}

void loop_run_deferred(struct loop *loop)
{
	run_deferred(loop);
	flush_writes(loop);
	run_deferred(loop);
}

/* ---- batched writes ------------------------------------------------------ */

void loop_write_init(struct loop_write *w, int fd, int (*prepare)(struct loop_write *, struct iovec *),
		     void (*complete)(struct loop_write *, ssize_t))
{
	w->next = NULL;
	w->pprev = NULL;
	w->batch_index = -1;
	w->fd = fd;
	w->prepare = prepare;
	w->complete = complete;
}

void loop_write_queue(struct loop *loop, struct loop_write *w)
{
	if (w->pprev || w->batch_index >= 0)
		return; /* queued, or being sent: its complete() goes on */
	w->next = NULL;
	w->pprev = loop->write_tail;
	*loop->write_tail = w;
	loop->write_tail = &w->next;
}

static void write_unlink(struct loop *loop, struct loop_write *w)
{
	*w->pprev = w->next;
	if (w->next)
		w->next->pprev = w->pprev;
	else
		loop->write_tail = w->pprev;
	w->next = NULL;
	w->pprev = NULL;
}

void loop_write_cancel(struct loop *loop, struct loop_write *w)
{
	if (w->pprev)
		write_unlink(loop, w);
	if (w->batch_index >= 0) {
		loop->batch[w->batch_index] = NULL;
		w->batch_index = -1;
	}
}

/* Sends what is queued, IOBATCH_MAX writes a system call; completions may
 * queue more, sent in the next round. */
static void flush_writes(struct loop *loop)
{
	while (loop->write_head) {
		size_t n = 0;
		while (loop->write_head && n < IOBATCH_MAX) {
			struct loop_write *w = loop->write_head;
			write_unlink(loop, w);
			int k = w->prepare(w, loop->iovs[n]);
			if (k < 0) {
				w->complete(w, k);
				continue;
			}
			if (k == 0)
				continue;
			loop->msgs[n] = (struct msghdr){ .msg_iov = loop->iovs[n], .msg_iovlen = (size_t)k };
			loop->ops[n] = (struct iobatch_op){ .fd = w->fd, .send = true, .msg = &loop->msgs[n] };
			loop->batch[n] = w;
			w->batch_index = (int)n;
			n++;
		}
		iobatch_run(loop->io, loop->ops, n);
		for (size_t i = 0; i < n; i++) {
			struct loop_write *w = loop->batch[i];
			if (!w)
				continue; /* cancelled by an earlier completion */
			loop->batch[i] = NULL;
			w->batch_index = -1;
			w->complete(w, loop->ops[i].result);
		}
	}
}

/* ---- running ------------------------------------------------------------- */

static void run_timers(struct loop *loop)
{
	while (loop->heap_len > 0 && loop->heap[0]->deadline_ns <= loop->now_ns) {
		struct loop_timer *t = loop->heap[0];
		loop_timer_cancel(loop, t);
		t->cb(t);
	}
}

int loop_run(struct loop *loop, struct berth_err *err)
{
	loop->stop = false;
	while (!loop->stop) {
		int timeout = -1;
		loop->now_ns = clock_now_ns();
		if (loop->defer_head || loop->write_head || (loop->pend_head && pending_wanted(loop)))
			timeout = 0;
		else if (loop->heap_len > 0) {
			uint64_t d = loop->heap[0]->deadline_ns;
			timeout = d <= loop->now_ns ? 0 : (int)((d - loop->now_ns + 999999) / 1000000);
		}
		int n = epoll_wait(loop->epfd, loop->events, LOOP_MAX_EVENTS, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return berth_err_set(err, errno, "epoll_wait");
		}
		loop->now_ns = clock_now_ns();
		if (loop->pend_head)
			n = add_pending_events(loop, n);
		loop->n_events = n;
		receive_batch(loop, n);
		for (int i = 0; i < n; i++) {
			struct loop_watch *w = loop->events[i].data.ptr;
			if (!w)
				continue;
			w->cb(w, loop->events[i].events);
			/* still registered (not deleted by a callback): keep what it left */
			if (loop->events[i].data.ptr == w && (w->pend || w->pend_drained))
				pend_keep(loop, w);
		}
		loop->n_events = 0;
		run_timers(loop);
		run_deferred(loop);
		/* a completion may defer calls, deferred calls may write: both
		 * queues empty before the next wait (each round makes progress:
		 * a write that sent nothing waits for EPOLLOUT) */
		for (int rounds = 0; rounds < 64 && (loop->write_head || loop->defer_head); rounds++) {
			flush_writes(loop);
			run_deferred(loop);
		}
	}
	return 0;
}

void loop_stop(struct loop *loop) { loop->stop = true; }
