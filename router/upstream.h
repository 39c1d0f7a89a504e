/* upstream.h — HTTP/1.1 client to containers, with one keep-alive pool per
 * container.
 *
 * A new connection is obtained from the container's shim (proto_shim.h
 * "connect"; the connected TCP socket arrives by SCM_RIGHTS) over unix
 * connections to the shim kept open (a few per shim), one request in
 * flight on each. That exchange runs on the event loop like everything
 * else: the request is written without blocking, the answer read when it
 * arrives, and a shim that does not answer within UPSTREAM_SHIM_TIMEOUT_MS
 * fails that exchange with UPSTREAM_UNAVAILABLE. A container that never
 * accepts therefore delays only its own callers, never the loop. An answer
 * that arrives after its exchange was cancelled leaves its connection in
 * the pool.
 *
 * An exchange is one POST /invocations. upstream_start() either returns -1
 * at once (result set, done not called) or 0, and then done() is called
 * exactly once later from the loop, unless upstream_cancel() comes first.
 * A pooled connection that fails on write or before its first response
 * byte is retried once on a fresh connection (it was stale). A connection
 * that timed out or was cancelled mid-exchange is closed, never reused.
 * Answers are read with the shared parser (http_response.h): Content-Length,
 * chunked or close-delimited bodies, head bounded by UPSTREAM_MAX_HEAD.
 *
 * Streaming (InvokeEndpointWithResponseStream): with on_data set, the
 * body of a 2xx answer without a declared length (chunked or delimited by
 * the close) is not kept but handed to on_data as it is read, with no
 * bound on its total: the pieces (spans) one read brought (each a chunk,
 * or the part of one the read brought), in order, at most
 * UPSTREAM_STREAM_SPANS in a call, valid only during the call. A read
 * never waits for more: what it brought goes on at once, so pieces that
 * arrived back to back go on together and a lone one goes on alone.
 * Other answers, Content-Length ones included, are kept as usual
 * (bounded by max_body). on_data
 * returns 0 to go on, 1 to stop reading from the container until
 * upstream_resume (back-pressure: the connection's receive window fills
 * and the container's writes block), -1 to give up (the exchange ends
 * UPSTREAM_BAD_RESPONSE with x->error set by on_data). x->streamed
 * counts the bytes handed over. The timeout still bounds the whole
 * exchange. on_data must not cancel or finish the exchange itself. */
#ifndef BERTH_ROUTER_UPSTREAM_H
#define BERTH_ROUTER_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "buf.h"
#include "loop.h"
#include "metrics.h"
#include "route_table.h"
#include "sessions.h"

#define UPSTREAM_SHIM_TIMEOUT_MS 1000
#define UPSTREAM_MAX_HEAD (80u << 10) /* an answer's status line and headers (http-parser's own default) */
#define UPSTREAM_MAX_IDLE_PER_POOL 64
#define UPSTREAM_IDLE_TIMEOUT_MS 60000
#define UPSTREAM_STREAM_SPANS 16 /* pieces of a streamed body in one on_data call */

enum upstream_result {
	UPSTREAM_OK,          /* status, headers and body are set */
	UPSTREAM_RESET,       /* the connection closed or reset before a full answer */
	UPSTREAM_TIMEOUT,     /* no full answer within the timeout */
	UPSTREAM_UNAVAILABLE, /* no connection to the container could be made */
	UPSTREAM_TOO_LARGE,   /* the answer's body exceeds the limit (status is set; reading stops there) */
	UPSTREAM_BAD_RESPONSE /* not HTTP/1.x */
};

struct upstream_conn;
struct shim_channel;

struct upstream_exchange {
	/* request: strings must stay valid until done/cancel; NULL = omitted */
	const char *shim_socket;
	const char *hostname;
	const char *content_type;
	const char *accept;
	const char *custom_attributes;
	const char *inference_id;
	const char *target_model;
	const char *session_id; /* X-Amzn-SageMaker-Session-Id (sessions.h) */
	const char *path;       /* (mme) request path; NULL = /invocations */
	const char *body;
	size_t body_len;
	size_t max_body;  /* limit of the answer's body; 0: the upstream's default */
	void (*done)(struct upstream_exchange *x);
	int (*on_data)(struct upstream_exchange *x, const struct iovec *spans, int n); /* streaming; NULL: keep the body */

	/* result */
	enum upstream_result result;
	int status;
	struct berth_buf resp_body;         /* owned by the caller; reset by start */
	char resp_content_type[256];
	char resp_custom_attributes[1024];
	bool has_resp_custom_attributes;
	/* X-Amzn-SageMaker-New-Session-Id / -Closed-Session-Id of the answer
	 * ("" when absent; longer values are cut, and then fail validation) */
	char resp_new_session[SESSION_ID_MAX + 48];
	char resp_closed_session[SESSION_ID_MAX + 2];
	uint64_t resp_content_length;       /* as declared by the container; UINT64_MAX: not declared */
	char error[512];                    /* text for RESET / UNAVAILABLE / BAD_RESPONSE */
	uint64_t start_ns, end_ns;
	uint64_t streamed;                  /* body bytes handed to on_data */

	/* private */
	struct upstream_conn *conn;
	struct shim_channel *shim_channel; /* waiting for the shim's answer */
	bool retried;
};

struct upstream;

struct upstream *upstream_new(struct loop *loop, struct metrics *metrics, uint64_t timeout_ms,
			      size_t max_body_bytes, bool debug);
void upstream_free(struct upstream *u);

int upstream_start(struct upstream *u, struct upstream_exchange *x);
void upstream_cancel(struct upstream *u, struct upstream_exchange *x);
/* Reading x's answer goes on after on_data returned 1. */
void upstream_resume(struct upstream *u, struct upstream_exchange *x);

/* Closes pools (shim connections and idle connections) of containers not in
 * table and not in use. */
void upstream_prune(struct upstream *u, const struct route_table *table);

#endif
