/* berthd_call.h — one request line to berthd and (optionally) its answer
 * line, on the router's loop: a new non-blocking unix connection to
 * cfg.berthd_socket per call (common/ipc.h framing), the line written as
 * the socket takes it, the answer read with ipc_read_nonblock, the whole
 * bounded by a timer. A successful connect tells the route watch that
 * berthd is back (routes_berthd_reachable). The caller words the errors
 * its client sees; this module only says what happened. */
#ifndef BERTH_ROUTER_BERTHD_CALL_H
#define BERTH_ROUTER_BERTHD_CALL_H

#include <stdbool.h>
#include <stddef.h>

struct server;
struct berthd_call;

enum berthd_call_outcome {
	BERTHD_CALL_OK,          /* expect_reply: line is the answer; else the request was sent in full */
	BERTHD_CALL_UNREACHABLE, /* connect or send failed; detail is the client's message,
	                          * "berthd is not reachable at PATH: WHY; start berthd" */
	BERTHD_CALL_CLOSED,      /* closed without an answer; detail: "end of file" or the read error */
	BERTHD_CALL_TIMED_OUT,   /* no answer (or not sent) within timeout_ms; detail is NULL */
};

/* line/len: the answer without its '\n', NUL-terminated, valid during the
 * call only (BERTHD_CALL_OK with expect_reply; else NULL). The call is
 * over when done runs: it is freed by the module afterwards. */
typedef void (*berthd_call_done_fn)(void *data, enum berthd_call_outcome outcome, const char *line, size_t len,
				    const char *detail);

/* Sends request (one line, with its '\n'; copied) to berthd. done is
 * called exactly once, never from inside berthd_call_start (failures
 * found at once are delivered from the loop) and never after
 * berthd_call_cancel. expect_reply=false: fire-and-forget, done (may be
 * NULL) runs once the line is written or has failed. NULL only on ENOMEM
 * (done is then never called). */
struct berthd_call *berthd_call_start(struct server *srv, const char *request, size_t len, bool expect_reply,
				      int timeout_ms, berthd_call_done_fn done, void *data);
/* A call that fails as BERTHD_CALL_UNREACHABLE ("… at PATH: why; …"),
 * delivered from the loop, for a request the caller could not even
 * build. NULL on ENOMEM. */
struct berthd_call *berthd_call_fail(struct server *srv, const char *why, berthd_call_done_fn done, void *data);
/* Closes the call; done is not called. Not allowed once done has run
 * (a no-op from inside done). */
void berthd_call_cancel(struct berthd_call *c);

#endif
