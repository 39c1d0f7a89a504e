/* iobatch.c — socket sends and receives batched into one io_uring_enter,
 * or one plain call each. See iobatch.h for the contract. */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iobatch.h"

struct iobatch {
	bool have_ring;
	struct io_uring ring;
	char why_not[128];
};

struct iobatch *iobatch_new(bool use_uring)
{
	struct iobatch *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	if (!use_uring) {
		snprintf(b->why_not, sizeof(b->why_not), "turned off");
		return b;
	}
	/* twice the batch: a partly reaped ring never refuses a submission */
	int r = io_uring_queue_init(2 * IOBATCH_MAX, &b->ring, 0);
	if (r < 0) {
		snprintf(b->why_not, sizeof(b->why_not), "io_uring_setup: %s", strerror(-r));
		return b;
	}
	b->have_ring = true;
	return b;
}

void iobatch_free(struct iobatch *b)
{
	if (!b)
		return;
	if (b->have_ring)
		io_uring_queue_exit(&b->ring);
	free(b);
}

bool iobatch_uring(const struct iobatch *b) { return b && b->have_ring; }

const char *iobatch_why_not(const struct iobatch *b) { return b ? b->why_not : "out of memory"; }

static void run_plain(struct iobatch_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct iobatch_op *op = &ops[i];
		ssize_t r;
		do
			r = op->send ? sendmsg(op->fd, op->msg, MSG_DONTWAIT | MSG_NOSIGNAL)
				     : recv(op->fd, op->buf, op->len, MSG_DONTWAIT);
		while (r < 0 && errno == EINTR);
		op->result = r < 0 ? -errno : r;
	}
}

void iobatch_run(struct iobatch *b, struct iobatch_op *ops, size_t n)
{
	if (n == 0)
		return;
	/* one operation costs one call either way */
	if (!b || !b->have_ring || n == 1) {
		run_plain(ops, n);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
		if (!sqe) { /* cannot happen (the ring holds 2 batches): do the rest plainly */
			run_plain(ops + i, n - i);
			n = i;
			break;
		}
		if (ops[i].send)
			io_uring_prep_sendmsg(sqe, ops[i].fd, ops[i].msg, MSG_DONTWAIT | MSG_NOSIGNAL);
		else
			io_uring_prep_recv(sqe, ops[i].fd, ops[i].buf, ops[i].len, MSG_DONTWAIT);
		io_uring_sqe_set_data64(sqe, i);
		ops[i].result = -EINPROGRESS;
	}
	/* MSG_DONTWAIT: every operation completes during the submission (a full
	 * or empty socket gives -EAGAIN, no poll is armed), so waiting for n
	 * completions never blocks for the sockets' sake. */
	size_t done = 0;
	int r;
	do
		r = io_uring_submit_and_wait(&b->ring, (unsigned)n);
	while (r == -EINTR);
	if (r < 0) {
		/* nothing of this batch was submitted (io_uring_enter reports an
		 * error only then): give the ring up, with what its queue holds,
		 * and do the batch, and every later one, with the plain calls */
		io_uring_queue_exit(&b->ring);
		b->have_ring = false;
		snprintf(b->why_not, sizeof(b->why_not), "io_uring_enter: %s", strerror(-r));
		run_plain(ops, n);
		return;
	}
	while (done < n) {
		struct io_uring_cqe *cqe;
		int w = io_uring_wait_cqe(&b->ring, &cqe);
		if (w == -EINTR)
			continue;
		if (w < 0)
			break;
		size_t i = (size_t)io_uring_cqe_get_data64(cqe);
		if (i < n && ops[i].result == -EINPROGRESS) {
			ops[i].result = cqe->res;
			done++;
		}
		io_uring_cqe_seen(&b->ring, cqe);
	}
	for (size_t i = 0; i < n; i++)
		if (ops[i].result == -EINPROGRESS)
			ops[i].result = -EIO;
}
