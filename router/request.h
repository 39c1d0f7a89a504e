/* request.h — one HTTP request and its response, independent of the wire
 * protocol. The HTTP/1.1 and HTTP/2 front ends fill the request part
 * (method, path, headers, body), hand it to dispatch, and get it back
 * through ops->send once a response has been set with request_respond*().
 *
 * Asynchronous work (a control call, an invocation) registers a cancel hook;
 * when the client goes away first, the front end calls request_abort(),
 * which runs the hook so the work releases its resources, and the request
 * is then released. A request is freed only by request_release(), by the
 * front end, after the response was written or the client is gone.
 *
 * Requests are recycled through a free list (struct request_pool), keeping
 * their buffers, so steady traffic does not allocate. */
#ifndef BERTH_ROUTER_REQUEST_H
#define BERTH_ROUTER_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "budget.h"
#include "buf.h"

#define REQUEST_MAX_HEADERS 100
#define REQUEST_MAX_HEADER_BYTES (64u << 10) /* names + values + path */
#define REQUEST_MAX_RESPONSE_HEADERS 16
#define REQUEST_ID_LEN 36

enum request_method { REQUEST_GET, REQUEST_HEAD, REQUEST_POST, REQUEST_OTHER };

struct request;

struct request_frontend_ops {
	/* The response is complete in req: write it (now or when possible).
	 * For a streamed response (req->streaming): its head and the body
	 * bytes so far; more follow. */
	void (*send)(struct request *req);
	/* Streamed response: puts n pieces in the front end's wire form (an
	 * HTTP/1.1 chunk, or HTTP/2 DATA as it is), or the end (n 0,
	 * req->stream_ended set), on resp_body. It may write them to the
	 * client from its buffers at once and keep only what was not taken,
	 * but it never closes, fails or calls back into the producer here:
	 * errors and the rest wait for a deferred flush. -1 on ENOMEM. */
	int (*stream_more)(struct request *req, const struct iovec *iov, int n);
};

struct request_span { uint32_t off, len; };
struct request_header { struct request_span name, value; }; /* names lower-case */

struct request {
	/* front end */
	const struct request_frontend_ops *ops;
	void *frontend;        /* the connection */
	int32_t stream_id;     /* HTTP/2 stream, 0 for HTTP/1.1 */
	struct request *conn_prev, *conn_next; /* HTTP/2: streams of one connection */
	size_t resp_body_sent; /* front end's progress through resp.body */
	/* HTTP/2 stream state (http2.c) */
	uint64_t idle_deadline_ns;  /* head, then body-idle deadline while receiving */
	uint64_t whole_deadline_ns; /* the whole request must be in by then */
	bool received;              /* END_STREAM seen: the request is complete */
	bool dispatch_pending;      /* complete, dispatched after the read batch */
	bool refused;               /* RST_STREAM REFUSED_STREAM submitted */
	bool reset_after_response;  /* answered before it was whole: RST NO_ERROR once sent */

	/* request, as received */
	enum request_method method;
	struct berth_buf text; /* path and header bytes, each NUL-terminated */
	struct request_span path;
	struct request_header headers[REQUEST_MAX_HEADERS];
	size_t n_headers;
	struct berth_buf body;
	size_t body_limit;     /* set by dispatch once the head is known */
	bool body_too_large;
	uint64_t start_ns;     /* first byte of the request (monotonic) */
	/* body bytes charged to memory budgets (budget.h); given back on release */
	size_t charged;
	struct budget *charged_conn, *charged_global;
	char id[REQUEST_ID_LEN + 1];
	/* SHA-256 of the body as it arrives (request_hash_body), for SigV4;
	 * the hasher is kept across reuse */
	struct sigv4_hasher *hasher;
	bool hash_body;
	/* refused at its head (dispatch_head): answered without its body */
	struct sigv4_error *refusal;
	/* its Authorization as parsed at its head (kept across reuse) */
	struct sigv4_auth *auth;
	bool auth_parsed;

	/* response */
	bool responded;
	int status;
	struct berth_buf resp_text; /* header names and values, NUL-terminated */
	struct request_header resp_headers[REQUEST_MAX_RESPONSE_HEADERS];
	size_t n_resp_headers;
	struct berth_buf resp_body;

	/* asynchronous work attached by dispatch */
	void (*cancel)(void *arg);
	void *cancel_arg;

	/* streamed response (request_stream_*): resp_body holds the bytes not
	 * yet written from resp_body_sent on; resume is called (with
	 * cancel_arg) once they fell under REQUEST_STREAM_LOW_WATER after
	 * request_stream_write asked the producer to wait */
	bool streaming, stream_ended, stream_waiting;
	void (*stream_resume)(void *arg);

	struct request *pool_next;
};

struct request_pool {
	struct request *free;
	size_t n_free;
	size_t kept_bytes; /* buffer capacity held by the free list */
	uint64_t rng; /* xorshift state for request ids */
};

void request_pool_init(struct request_pool *pool, uint64_t seed);
void request_pool_free(struct request_pool *pool);
/* A zeroed request with a fresh id; NULL on ENOMEM. */
struct request *request_acquire(struct request_pool *pool, uint64_t now_ns);
void request_release(struct request_pool *pool, struct request *req);

/* Request filling (front ends). Each returns 0, or -1 when a bound is
 * exceeded (REQUEST_MAX_HEADERS / REQUEST_MAX_HEADER_BYTES) or on ENOMEM. */
int request_set_path(struct request *req, const char *path, size_t len);
int request_add_header(struct request *req, const char *name, size_t name_len,
		       const char *value, size_t value_len);
enum request_method request_method_from(const char *name, size_t len);
/* Appends to the body, first charging the memory it will occupy (its
 * buffer's capacity) to the budgets (conn may be NULL; the same budgets on
 * every call for one request). 0; 1 when it does not fit (nothing is
 * charged or appended); -1 on ENOMEM. request_release gives it back. */
int request_append_body(struct request *req, struct budget *conn, struct budget *global, const void *data,
			size_t len);
/* From now on the body is hashed as it arrives (call before the first
 * body byte). -1 on ENOMEM. */
int request_hash_body(struct request *req);
/* The body's SHA-256 in hex (that of the empty body when it was not
 * hashed). Once per request. */
void request_payload_hash(struct request *req, char out[65]);
/* Frees the body now and gives its charge back (a refused request). */
void request_drop_body(struct request *req);

static inline const char *request_str(const struct request *req, struct request_span s)
{
	return req->text.data + s.off;
}
static inline const char *request_path(const struct request *req)
{
	return req->path.len ? req->text.data + req->path.off : "/";
}
/* Value of header `name` (lower-case), or NULL; *len (may be NULL) set. */
const char *request_header(const struct request *req, const char *name, size_t *len);

/* Response. request_respond_start sets the status and the headers every
 * answer carries (x-amzn-RequestId); add headers, fill resp_body, then
 * request_respond_finish hands it to the front end. */
void request_respond_start(struct request *req, int status);
int request_respond_header(struct request *req, const char *name, const char *value);
void request_respond_finish(struct request *req);
/* Convenience: status, content type and body in one call. */
void request_respond(struct request *req, int status, const char *content_type,
		     const void *body, size_t len);
static inline const char *request_resp_str(const struct request *req, struct request_span s)
{
	return req->resp_text.data + s.off;
}

/* Streamed responses (InvokeEndpointWithResponseStream). After
 * request_respond_start and the headers, request_stream_begin hands the
 * head to the front end with no length (HTTP/1.1: chunked, or delimited
 * by the close for HTTP/1.0; HTTP/2: DATA frames as the bytes come). The
 * cancel hook stays attached until request_stream_end: a client that goes
 * away mid-stream cancels the producer. request_stream_write appends n
 * pieces (at most REQUEST_STREAM_MAX_PIECES, valid only during the call:
 * the front end writes them at once or copies them) as one unit; it
 * returns 1 when the bytes the client has not
 * taken yet exceed REQUEST_STREAM_HIGH_WATER: the producer then waits
 * until `resume` is called (from the loop, never from inside a request_*
 * call), so a slow client slows the producer instead of growing memory.
 * 0 otherwise, -1 on ENOMEM. request_stream_end ends the response. */
#define REQUEST_STREAM_HIGH_WATER (512u << 10)
#define REQUEST_STREAM_LOW_WATER (128u << 10)
#define REQUEST_STREAM_MAX_PIECES 48
void request_stream_begin(struct request *req, void (*resume)(void *arg));
int request_stream_write(struct request *req, const struct iovec *iov, int n);
void request_stream_end(struct request *req);
/* Bytes of a streamed response not yet written (front ends). */
static inline size_t request_stream_pending(const struct request *req)
{
	return req->resp_body.len - req->resp_body_sent;
}
/* Front ends, once they wrote some of a streamed response: resumes a
 * waiting producer when the rest fell under the low-water mark. */
void request_stream_drained(struct request *req);
/* Whether work for req is still running: not answered, or a stream not
 * ended. A front end whose client goes away then calls request_abort. */
static inline bool request_in_progress(const struct request *req)
{
	return !req->responded || (req->streaming && !req->stream_ended);
}

/* Called by a front end whose client went away: cancels attached work. */
void request_abort(struct request *req);
void request_set_cancel(struct request *req, void (*cancel)(void *), void *arg);

/* Formats a uuid-like id (8-4-4-4-12 hex) from two 64-bit values. */
void request_format_id(char out[REQUEST_ID_LEN + 1], uint64_t hi, uint64_t lo);

#endif
