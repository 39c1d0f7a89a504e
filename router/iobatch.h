/* iobatch.h — many socket sends and receives for the price of one system
 * call.
 *
 * On this kind of host a system call costs about a microsecond on its own
 * (entry and exit), as much as the work of a small loopback send. The
 * event loop (loop.h) gathers the sends and the receives of one turn and
 * runs them here as one batch: with io_uring, one io_uring_enter submits
 * them all and they complete during it; without io_uring (kernel too old,
 * io_uring disabled by sysctl or by a seccomp profile) each is one plain
 * sendmsg / recv, as before.
 *
 * Every operation carries MSG_DONTWAIT (and a send MSG_NOSIGNAL): it never
 * waits for the socket, so it completes inside the submitting call with
 * the result a plain call would give (bytes, or -EAGAIN when the socket is
 * full / empty, or another -errno). The batch is therefore synchronous:
 * when iobatch_run returns, every result is in and the kernel holds no
 * pointer into the caller's buffers. */
#ifndef BERTH_ROUTER_IOBATCH_H
#define BERTH_ROUTER_IOBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#define IOBATCH_MAX 128 /* operations per iobatch_run call */

struct iobatch;

struct iobatch_op {
	int fd;
	bool send;             /* sendmsg of msg, else recv into buf */
	struct msghdr *msg;    /* send: msg_iov / msg_iovlen set */
	void *buf;             /* receive */
	size_t len;
	ssize_t result;        /* out: bytes, 0 (receive: EOF), or -errno */
};

/* A batcher: io_uring when the kernel lets this process have one, else
 * the plain system calls. Never fails (NULL only without memory).
 * use_uring false: the plain calls, whatever the kernel offers. */
struct iobatch *iobatch_new(bool use_uring);
void iobatch_free(struct iobatch *b);
/* true when batches go through io_uring */
bool iobatch_uring(const struct iobatch *b);
/* Why io_uring is not used ("" when it is): for the start-up log. */
const char *iobatch_why_not(const struct iobatch *b);

/* For tests: submits a no-op through the ring and returns its result;
 * -EACCES shows the ring refuses anything but sendmsg and recv (it is
 * restricted before its first use: seccomp does not see inside a ring).
 * -ENOSYS without a ring. */
int iobatch_try_nop(struct iobatch *b);

/* Runs ops[0..n) (n <= IOBATCH_MAX), each op's result set on return. */
void iobatch_run(struct iobatch *b, struct iobatch_op *ops, size_t n);

#endif
