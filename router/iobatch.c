/* iobatch.c — socket sends and receives batched into one io_uring_enter,
 * or one plain call each. See iobatch.h for the contract. */
#include <errno.h>
#include <stdint.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iobatch.h"

struct iobatch {
	bool have_ring;
	struct io_uring ring;
	uint32_t seq; /* the batch being run, in each completion's user data */
	char why_not[128];
};

/* user data: the batch's sequence number above the operation's index, so
 * a completion left over from an earlier batch is never taken for one of
 * this batch's */
static uint64_t tag(uint32_t seq, size_t i) { return (uint64_t)seq << 32 | (uint32_t)i; }

struct iobatch *iobatch_new(bool use_uring)
{
	struct iobatch *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	if (!use_uring) {
		snprintf(b->why_not, sizeof(b->why_not), "turned off");
		return b;
	}
	/* twice the batch: a partly reaped ring never refuses a submission.
	 * Made disabled, so that it can be restricted before its first use. */
	/* SUBMIT_ALL: an operation refused at submission (it gets its error
	 * completion) does not leave the ones after it unsubmitted while the
	 * batch waits for all of them (Linux 5.18) */
	int r = io_uring_queue_init(2 * IOBATCH_MAX, &b->ring, IORING_SETUP_R_DISABLED | IORING_SETUP_SUBMIT_ALL);
	if (r == -EINVAL) /* an older kernel: berth's operations are not refused at submission anyway */
		r = io_uring_queue_init(2 * IOBATCH_MAX, &b->ring, IORING_SETUP_R_DISABLED);
	if (r < 0) {
		snprintf(b->why_not, sizeof(b->why_not), "io_uring_setup: %s", strerror(-r));
		return b;
	}
	/* seccomp does not see what a ring does: this one can do sendmsg and
	 * recv (what the allow-list permits anyway) and nothing else, no SQE
	 * flags, and no io_uring_register call once enabled. A router taken
	 * over cannot open files or sockets through it. */
	struct io_uring_restriction res[] = {
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_SENDMSG },
		{ .opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_RECV },
		{ .opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED, .sqe_flags = 0 },
	};
	/* (Debian's liburing 2.3 declares io_uring_register_restrictions and
	 * io_uring_enable_rings but does not export them: the raw register call) */
	r = io_uring_register((unsigned)b->ring.ring_fd, IORING_REGISTER_RESTRICTIONS, res,
			      sizeof(res) / sizeof(res[0]));
	if (r == 0)
		r = io_uring_register((unsigned)b->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	if (r < 0) {
		snprintf(b->why_not, sizeof(b->why_not), "restricting the ring: %s", strerror(-r));
		io_uring_queue_exit(&b->ring);
		return b;
	}
	b->have_ring = true;
	return b;
}

int iobatch_try_nop(struct iobatch *b)
{
	if (!b || !b->have_ring)
		return -ENOSYS;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data64(sqe, UINT64_MAX); /* no batch's tag */
	int r = io_uring_submit_and_wait(&b->ring, 1);
	if (r < 0)
		return r;
	struct io_uring_cqe *cqe;
	r = io_uring_wait_cqe(&b->ring, &cqe);
	if (r < 0)
		return r;
	int res = cqe->res;
	io_uring_cqe_seen(&b->ring, cqe);
	return res;
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
		io_uring_sqe_set_data64(sqe, tag(b->seq, i));
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
		uint64_t data = io_uring_cqe_get_data64(cqe);
		size_t i = (size_t)(uint32_t)data;
		if (data >> 32 == b->seq && i < n && ops[i].result == -EINPROGRESS) {
			ops[i].result = cqe->res;
			done++;
		}
		io_uring_cqe_seen(&b->ring, cqe);
	}
	for (size_t i = 0; i < n; i++)
		if (ops[i].result == -EINPROGRESS)
			ops[i].result = -EIO;
	b->seq++;
}
