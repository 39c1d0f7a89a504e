/* http2.c — HTTP/2 server connections over nghttp2. */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch.h"
#include "errors.h"
#include "http2.h"
#include "log.h"
#include "server.h"
#include "tls.h"

#define H2_READ_CHUNK (32u << 10)
#define H2_READ_ROUNDS 8 /* reads per event, then others get their turn */
#define H2_OUT_HIGH_WATER (64u << 10)
#define H2_MAX_CONCURRENT_STREAMS 128
#define H2_STREAM_WINDOW (1u << 20)
#define H2_CONNECTION_WINDOW (16u << 20)

struct h2_conn {
	struct client_conn link;
	struct server *srv;
	int fd;
	struct tls_conn *tls;      /* NULL: cleartext */
	struct loop_watch watch;
	struct loop_timer timer;   /* stream deadlines and the idle timeout */
	uint64_t last_activity_ns; /* a stream began or ended (not PINGs and SETTINGS) */
	struct loop_defer free_defer;
	struct loop_defer read_defer; /* TLS: bytes OpenSSL holds after the round limit */
	struct loop_defer flush_defer; /* a streamed response has more bytes */
	nghttp2_session *session;
	struct berth_buf out;
	size_t out_off;
	struct loop_write writer; /* cleartext: frames go out with the loop turn's batch */
	struct request *streams; /* requests of open streams */
	size_t n_streams;
	struct budget buffered;  /* request body bytes held by this connection's streams */
	bool closed;
	bool in_recv; /* inside nghttp2_session_mem_recv: flush afterwards */
};

static const struct request_frontend_ops h2_ops;
static void h2_flush(struct h2_conn *c);
static void h2_flush_soon(struct h2_conn *c);

static void h2_arm(struct h2_conn *c, uint64_t deadline_ns)
{
	if (!loop_timer_armed(&c->timer) || c->timer.deadline_ns > deadline_ns)
		loop_timer_arm_at(c->srv->loop, &c->timer, deadline_ns);
}

static uint64_t ms_ns(uint64_t ms) { return ms * 1000000ull; }

long base64url_decode(const char *in, size_t len, uint8_t *out, size_t out_cap)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];
		int v;
		if (ch >= 'A' && ch <= 'Z')
			v = ch - 'A';
		else if (ch >= 'a' && ch <= 'z')
			v = ch - 'a' + 26;
		else if (ch >= '0' && ch <= '9')
			v = ch - '0' + 52;
		else if (ch == '-' || ch == '+')
			v = 62;
		else if (ch == '_' || ch == '/')
			v = 63;
		else if (ch == '=')
			break;
		else
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= out_cap)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	return (long)n;
}

/* ---- lifetime ---------------------------------------------------------- */

static void stream_link(struct h2_conn *c, struct request *req)
{
	req->conn_prev = NULL;
	req->conn_next = c->streams;
	if (c->streams)
		c->streams->conn_prev = req;
	c->streams = req;
	c->n_streams++;
}

static void stream_unlink(struct h2_conn *c, struct request *req)
{
	if (req->conn_prev)
		req->conn_prev->conn_next = req->conn_next;
	else
		c->streams = req->conn_next;
	if (req->conn_next)
		req->conn_next->conn_prev = req->conn_prev;
	req->conn_prev = req->conn_next = NULL;
	c->n_streams--;
}

static void h2_close(struct h2_conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	struct server *srv = c->srv;
	loop_watch_del(srv->loop, &c->watch);
	loop_timer_cancel(srv->loop, &c->timer);
	loop_write_cancel(srv->loop, &c->writer);
	tls_conn_free(c->tls);
	c->tls = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	while (c->streams) {
		struct request *req = c->streams;
		stream_unlink(c, req);
		if (request_in_progress(req))
			request_abort(req);
		request_release(&srv->requests, req);
	}
	server_conn_unlink(srv, &c->link);
	srv->metrics.client_connections--;
	loop_defer(srv->loop, &c->free_defer);
}

static void h2_close_link(struct client_conn *link) { h2_close(container_of(link, struct h2_conn, link)); }


/* GOAWAY: streams already started finish, then the session ends itself
 * (want_read and want_write both false closes it in h2_flush). */
static void h2_drain_link(struct client_conn *link)
{
	struct h2_conn *c = container_of(link, struct h2_conn, link);
	nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->session),
			      NGHTTP2_NO_ERROR, NULL, 0);
	if (c->n_streams == 0)
		nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
	h2_flush(c);
}

static void h2_free_deferred(struct loop_defer *d)
{
	struct h2_conn *c = container_of(d, struct h2_conn, free_defer);
	nghttp2_session_del(c->session);
	buf_free(&c->out);
	free(c);
}

/* ---- nghttp2 callbacks ------------------------------------------------- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct h2_conn *c = user_data;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct request *req = request_acquire(&c->srv->requests, loop_now_ns(c->srv->loop));
	if (!req)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	req->ops = &h2_ops;
	req->frontend = c;
	req->stream_id = frame->hd.stream_id;
	uint64_t now = loop_now_ns(c->srv->loop);
	req->whole_deadline_ns = now + ms_ns(c->srv->cfg.request_timeout_ms);
	req->idle_deadline_ns = now + ms_ns(ROUTER_HEADER_TIMEOUT_MS);
	stream_link(c, req);
	c->last_activity_ns = now;
	h2_arm(c, req->idle_deadline_ns < req->whole_deadline_ns ? req->idle_deadline_ns : req->whole_deadline_ns);
	nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, req);
	return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
		     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
	(void)flags;
	(void)user_data;
	struct request *req = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (!req || req->responded)
		return 0;
	if (namelen > 0 && name[0] == ':') {
		if (namelen == 7 && memcmp(name, ":method", 7) == 0)
			req->method = request_method_from((const char *)value, valuelen);
		else if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
			if (request_set_path(req, (const char *)value, valuelen) < 0)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		} else if (namelen == 10 && memcmp(name, ":authority", 10) == 0) {
			/* the Host of HTTP/2: signed as "host" (sigv4.h), checked with auth none */
			if (request_add_header(req, (const char *)name, namelen, (const char *)value, valuelen) < 0)
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		}
		return 0;
	}
	if (request_add_header(req, (const char *)name, namelen, (const char *)value, valuelen) < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* too many or too large: reset the stream */
	return 0;
}

static void end_of_headers(struct h2_conn *c, struct request *req)
{
	dispatch_head(c->srv, req);
	if (req->refusal) { /* answered now; DATA that follows is ignored */
		dispatch_refuse_early(c->srv, req);
		return;
	}
	const char *cl = request_header(req, "content-length", NULL);
	if (cl) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(cl, &end, 10);
		if (errno == 0 && *end == '\0' && n > req->body_limit)
			dispatch_body_too_large(c->srv, req, (size_t)n);
		else if (errno == 0 && *end == '\0' && n > 0 && n <= c->buffered.limit - c->buffered.used)
			buf_reserve(&req->body, (size_t)n); /* only what the budget could hold */
	}
	req->idle_deadline_ns = loop_now_ns(c->srv->loop) + ms_ns(ROUTER_BODY_IDLE_MS);
}

/* Refuses a stream whose body does not fit the memory budgets: the client
 * may retry it (REFUSED_STREAM), and its bytes are given back now. */
static void refuse_stream(struct h2_conn *c, struct request *req)
{
	struct server *srv = c->srv;
	req->refused = true;
	srv->metrics.refused_busy++;
	if (srv->debug)
		log_debug("HTTP/2 stream %d refused: %zu body bytes held on the connection, %zu in all", req->stream_id,
			  c->buffered.used, srv->buffered.used);
	nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, req->stream_id, NGHTTP2_REFUSED_STREAM);
	request_drop_body(req);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct h2_conn *c = user_data;
	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
		return 0;
	struct request *req = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (!req)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
		end_of_headers(c, req);
	if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		req->received = true;
		/* dispatched once the whole read batch is processed: a stream the
		 * client resets in the same batch costs the container nothing */
		if (!req->responded && !req->body_too_large && !req->refused)
			req->dispatch_pending = true;
	}
	return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
			      size_t len, void *user_data)
{
	(void)flags;
	struct h2_conn *c = user_data;
	struct request *req = nghttp2_session_get_stream_user_data(session, stream_id);
	if (!req || req->responded || req->body_too_large || req->refused)
		return 0;
	if (req->body.len + len > req->body_limit) {
		dispatch_body_too_large(c->srv, req, req->body.len + len);
		return 0;
	}
	int r = request_append_body(req, &c->buffered, &c->srv->buffered, data, len);
	if (r > 0) {
		refuse_stream(c, req);
		return 0;
	}
	if (r < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	req->idle_deadline_ns = loop_now_ns(c->srv->loop) + ms_ns(ROUTER_BODY_IDLE_MS);
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data)
{
	(void)error_code;
	struct h2_conn *c = user_data;
	struct request *req = nghttp2_session_get_stream_user_data(session, stream_id);
	if (!req)
		return 0;
	nghttp2_session_set_stream_user_data(session, stream_id, NULL);
	stream_unlink(c, req);
	c->last_activity_ns = loop_now_ns(c->srv->loop);
	if (c->n_streams == 0)
		h2_arm(c, c->last_activity_ns + ms_ns(ROUTER_KEEPALIVE_IDLE_MS));
	if (request_in_progress(req))
		request_abort(req); /* the client reset the stream */
	request_release(&c->srv->requests, req);
	return 0;
}

/* A response sent before its request was whole (a timeout): tell the
 * client to stop sending (RFC 9113 §8.1) and free the stream. */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	(void)user_data;
	if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ||
	    (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA))
		return 0;
	struct request *req = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (req && req->reset_after_response)
		nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
	return 0;
}

static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
			 uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	(void)session;
	(void)stream_id;
	(void)user_data;
	struct request *req = source->ptr;
	size_t left = req->resp_body.len - req->resp_body_sent;
	size_t n = left < length ? left : length;
	if (n)
		memcpy(buf, req->resp_body.data + req->resp_body_sent, n);
	req->resp_body_sent += n;
	if (req->resp_body_sent == req->resp_body.len)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* A streamed response: what the producer put in resp_body so far; when
 * nothing is there yet, the stream waits (DEFERRED) until stream_more
 * resumes it. HTTP/2 flow control decides when this is called, so a
 * client that does not read stops the producer (request_stream_write). */
static ssize_t read_stream(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
			   uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	(void)session;
	(void)stream_id;
	(void)user_data;
	struct request *req = source->ptr;
	size_t left = request_stream_pending(req);
	size_t n = left < length ? left : length;
	if (n == 0 && !req->stream_ended)
		return NGHTTP2_ERR_DEFERRED;
	if (n)
		memcpy(buf, req->resp_body.data + req->resp_body_sent, n);
	req->resp_body_sent += n;
	if (req->resp_body_sent == req->resp_body.len) {
		buf_reset(&req->resp_body);
		req->resp_body_sent = 0;
		if (req->stream_ended)
			*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	}
	request_stream_drained(req);
	return (ssize_t)n;
}

static int h2_stream_more(struct request *req, const struct iovec *iov, int n)
{
	struct h2_conn *c = req->frontend;
	struct berth_buf *b = &req->resp_body;
	if (c->closed)
		return 0;
	if (req->resp_body_sent >= REQUEST_STREAM_LOW_WATER) { /* keep the buffer bounded */
		buf_consume(b, req->resp_body_sent);
		req->resp_body_sent = 0;
	}
	int r = 0;
	for (int i = 0; i < n; i++)
		r |= buf_append(b, iov[i].iov_base, iov[i].iov_len);
	nghttp2_session_resume_data(c->session, req->stream_id); /* not deferred: nothing to do */
	loop_defer(c->srv->loop, &c->flush_defer);
	return r ? -1 : 0;
}

static void h2_flush_deferred(struct loop_defer *d)
{
	struct h2_conn *c = container_of(d, struct h2_conn, flush_defer);
	if (!c->closed)
		h2_flush(c);
}

/* ---- output ------------------------------------------------------------ */

static void h2_send(struct request *req)
{
	struct h2_conn *c = req->frontend;
	struct server *srv = c->srv;
	metrics_count_response(&srv->metrics, req->status);
	if (c->closed)
		return;
	nghttp2_nv nva[REQUEST_MAX_RESPONSE_HEADERS + 2];
	char names[REQUEST_MAX_RESPONSE_HEADERS][64];
	char status[12], length[24];
	size_t n = 0;
	/* no printf on a request's path (see http1_render_head) */
	unsigned code = (unsigned)(req->status % 1000 + 1000) % 1000; /* "%03d" of it, never negative */
	status[0] = (char)('0' + code / 100);
	status[1] = (char)('0' + code / 10 % 10);
	status[2] = (char)('0' + code % 10);
	status[3] = '\0';
	nva[n++] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE };
	for (size_t i = 0; i < req->n_resp_headers; i++) {
		const struct request_header *h = &req->resp_headers[i];
		size_t nl = h->name.len < sizeof(names[i]) ? h->name.len : sizeof(names[i]) - 1;
		const char *src = request_resp_str(req, h->name);
		for (size_t k = 0; k < nl; k++) /* HTTP/2 header names are lower-case */
			names[i][k] = (char)(src[k] >= 'A' && src[k] <= 'Z' ? src[k] + 32 : src[k]);
		nva[n++] = (nghttp2_nv){ (uint8_t *)names[i], (uint8_t *)request_resp_str(req, h->value), nl,
					 h->value.len, NGHTTP2_NV_FLAG_NONE };
	}
	if (!req->streaming) {
		size_t ln = buf_format_u64(length, req->resp_body.len);
		nva[n++] = (nghttp2_nv){ (uint8_t *)"content-length", (uint8_t *)length, 14, ln,
					 NGHTTP2_NV_FLAG_NONE };
		req->resp_body_sent = 0;
	}
	nghttp2_data_provider prd = { .source.ptr = req, .read_callback = req->streaming ? read_stream : read_body };
	bool has_body = req->streaming || (req->resp_body.len > 0 && req->method != REQUEST_HEAD);
	int rv = nghttp2_submit_response(c->session, req->stream_id, nva, n, has_body ? &prd : NULL);
	if (rv != 0) {
		log_warn("HTTP/2 stream %d: cannot submit the response: %s", req->stream_id, nghttp2_strerror(rv));
		nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, req->stream_id, NGHTTP2_INTERNAL_ERROR);
	}
	if (req->streaming) /* the producer is inside a callback: write after it */
		loop_defer(srv->loop, &c->flush_defer);
	else if (!c->in_recv)
		h2_flush_soon(c);
}

static const struct request_frontend_ops h2_ops = { .send = h2_send, .stream_more = h2_stream_more };

/* Frames nghttp2 has ready, up to the high-water mark, appended to out.
 * -1: nghttp2 failed or no memory (the connection is lost). */
static int h2_produce(struct h2_conn *c)
{
	while (c->out.len - c->out_off < H2_OUT_HIGH_WATER) {
		const uint8_t *data;
		ssize_t n = nghttp2_session_mem_send(c->session, &data);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		if (buf_append(&c->out, data, (size_t)n) < 0)
			return -1;
	}
	return 0;
}

/* w bytes of out went out. */
static void h2_advance(struct h2_conn *c, size_t w)
{
	c->out_off += w;
	if (c->out_off == c->out.len) {
		buf_reset(&c->out);
		c->out_off = 0;
	}
}

static void h2_flush(struct h2_conn *c)
{
	if (c->closed)
		return;
	for (;;) {
		if (h2_produce(c) < 0) {
			h2_close(c);
			return;
		}
		if (c->out_off == c->out.len)
			break;
		ssize_t w = c->tls ? tls_conn_write(c->tls, c->out.data + c->out_off, c->out.len - c->out_off)
				   : write(c->fd, c->out.data + c->out_off, c->out.len - c->out_off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				loop_watch_mod(c->srv->loop, &c->watch, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
				return;
			}
			h2_close(c);
			return;
		}
		h2_advance(c, (size_t)w);
	}
	loop_watch_mod(c->srv->loop, &c->watch, EPOLLIN | EPOLLRDHUP);
	if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session))
		h2_close(c);
}

/* The batched write (loop.h): every frame ready when the loop turn's
 * writes go out, in one vector. */
static int h2_writer_prepare(struct loop_write *w, struct iovec *iov)
{
	struct h2_conn *c = container_of(w, struct h2_conn, writer);
	if (c->closed)
		return 0;
	if (h2_produce(c) < 0)
		return -EPROTO;
	if (c->out_off == c->out.len) {
		h2_flush(c); /* nothing to send: only the end-of-session check (may close) */
		return 0;
	}
	iov[0] = (struct iovec){ c->out.data + c->out_off, c->out.len - c->out_off };
	return 1;
}

static void h2_writer_complete(struct loop_write *w, ssize_t result)
{
	struct h2_conn *c = container_of(w, struct h2_conn, writer);
	if (c->closed)
		return;
	if (result < 0 && result != -EAGAIN && result != -EINTR) {
		h2_close(c);
		return;
	}
	if (result > 0)
		h2_advance(c, (size_t)result);
	h2_flush(c); /* what is left (usually nothing: no system call), EPOLLOUT, the end-of-session check */
}

/* h2_flush, with the loop turn's other writes when cleartext. */
static void h2_flush_soon(struct h2_conn *c)
{
	if (c->closed)
		return;
	if (c->tls)
		h2_flush(c);
	else
		loop_write_queue(c->srv->loop, &c->writer);
}

/* ---- input ------------------------------------------------------------- */

static int h2_feed(struct h2_conn *c, const uint8_t *data, size_t len)
{
	c->in_recv = true;
	ssize_t n = nghttp2_session_mem_recv(c->session, data, len);
	c->in_recv = false;
	if (n < 0) {
		if (c->srv->debug)
			log_debug("HTTP/2 connection error: %s", nghttp2_strerror((int)n));
		return -1;
	}
	return 0;
}

/* Starts the requests completed during the read batch and not reset since. */
static void h2_dispatch_pending(struct h2_conn *c)
{
	bool was_in_recv = c->in_recv;
	c->in_recv = true; /* answers given at once are flushed by the caller */
	for (struct request *req = c->streams, *next; req && !c->closed; req = next) {
		next = req->conn_next;
		if (!req->dispatch_pending)
			continue;
		req->dispatch_pending = false;
		dispatch_request(c->srv, req);
	}
	c->in_recv = was_in_recv;
}

static void h2_on_event(struct loop_watch *w, uint32_t events)
{
	struct h2_conn *c = container_of(w, struct h2_conn, watch);
	if (events & EPOLLOUT) {
		h2_flush(c);
		if (c->closed)
			return;
	}
	if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		return;
	uint8_t buf[H2_READ_CHUNK];
	int rounds;
	for (rounds = 0; rounds < H2_READ_ROUNDS; rounds++) {
		ssize_t n = c->tls ? tls_conn_read(c->tls, buf, sizeof(buf)) : loop_read(c->srv->loop, &c->watch, buf, sizeof(buf));
		if (n > 0) {
			if (h2_feed(c, buf, (size_t)n) < 0) {
				h2_flush(c); /* GOAWAY, if nghttp2 queued one */
				h2_close(c);
				return;
			}
			if (c->closed)
				return;
			if ((size_t)n < sizeof(buf) && !(c->tls && tls_conn_has_pending(c->tls)))
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		h2_close(c);
		return;
	}
	/* Stopped by the round limit with bytes OpenSSL already holds: epoll
	 * will not report them (the socket may be empty), so read again after
	 * this batch. Never after EAGAIN: a partial record also counts as
	 * pending, and waits for the socket. */
	if (rounds == H2_READ_ROUNDS && c->tls && tls_conn_has_pending(c->tls))
		loop_defer(c->srv->loop, &c->read_defer);
	h2_dispatch_pending(c);
	h2_flush_soon(c);
}

static void h2_read_deferred(struct loop_defer *d)
{
	struct h2_conn *c = container_of(d, struct h2_conn, read_defer);
	if (!c->closed)
		h2_on_event(&c->watch, EPOLLIN);
}

/* A stream not received in time gets 408 (as HTTP/1.1 does), then a
 * reset once the answer is out. */
static void stream_timeout(struct h2_conn *c, struct request *req, uint64_t now)
{
	struct server *srv = c->srv;
	srv->metrics.request_timeouts++;
	srv->metrics.requests[METRICS_KIND_OTHER]++;
	req->reset_after_response = true;
	if (srv->debug)
		log_debug("HTTP/2 stream %d: request not received in time", req->stream_id);
	if (now >= req->whole_deadline_ns)
		respond_message(req, 408, "Request timed out: a whole request must arrive within %llu ms.",
				(unsigned long long)srv->cfg.request_timeout_ms);
	else
		respond_message(req, 408, "Request timed out: the request was not received in time.");
}

static void h2_on_timer(struct loop_timer *t)
{
	struct h2_conn *c = container_of(t, struct h2_conn, timer);
	uint64_t now = loop_now_ns(c->srv->loop);
	uint64_t next = UINT64_MAX;
	c->in_recv = true; /* one flush below */
	for (struct request *req = c->streams; req; req = req->conn_next) {
		if (req->received || req->responded || req->refused)
			continue; /* complete (the invocation timeout bounds it), answered, or going */
		uint64_t d = req->idle_deadline_ns < req->whole_deadline_ns ? req->idle_deadline_ns
									     : req->whole_deadline_ns;
		if (d <= now)
			stream_timeout(c, req, now);
		else if (d < next)
			next = d;
	}
	c->in_recv = false;
	if (c->n_streams == 0) {
		uint64_t idle_end = c->last_activity_ns + ms_ns(ROUTER_KEEPALIVE_IDLE_MS);
		if (now >= idle_end) {
			nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
			h2_flush(c);
			h2_close(c);
			return;
		}
		if (idle_end < next)
			next = idle_end;
	}
	if (next != UINT64_MAX)
		loop_timer_arm_at(c->srv->loop, &c->timer, next);
	h2_flush(c);
}

static struct h2_conn *h2_conn_create(struct server *srv, int fd)
{
	struct h2_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->srv = srv;
	c->fd = fd;
	c->buffered.limit = srv->cfg.max_connection_buffered_bytes;
	c->link.close = h2_close_link;
	c->link.drain = h2_drain_link;
	loop_watch_init(&c->watch, h2_on_event);
	loop_timer_init(&c->timer, h2_on_timer);
	loop_defer_init(&c->free_defer, h2_free_deferred);
	loop_defer_init(&c->read_defer, h2_read_deferred);
	loop_defer_init(&c->flush_defer, h2_flush_deferred);
	loop_write_init(&c->writer, fd, h2_writer_prepare, h2_writer_complete);
	nghttp2_session_callbacks *cbs;
	if (nghttp2_session_callbacks_new(&cbs) != 0) {
		free(c);
		return NULL;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
	nghttp2_option *opt;
	nghttp2_option_new(&opt);
	nghttp2_option_set_max_send_header_block_length(opt, 64u << 10);
	int rv = nghttp2_session_server_new2(&c->session, cbs, c, opt);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cbs);
	if (rv != 0) {
		free(c);
		return NULL;
	}
	nghttp2_settings_entry settings[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_CONCURRENT_STREAMS },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, REQUEST_MAX_HEADER_BYTES },
	};
	if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, BERTH_ARRAY_SIZE(settings)) != 0 ||
	    nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, H2_CONNECTION_WINDOW) != 0) {
		nghttp2_session_del(c->session);
		free(c);
		return NULL;
	}
	struct berth_err err;
	if (loop_watch_add(srv->loop, &c->watch, fd, EPOLLIN | EPOLLRDHUP, &err) < 0) {
		log_error("%s", err.msg);
		nghttp2_session_del(c->session);
		free(c);
		return NULL;
	}
	server_conn_link(srv, &c->link);
	srv->metrics.client_connections++;
	c->last_activity_ns = loop_now_ns(srv->loop);
	loop_timer_arm_ms(srv->loop, &c->timer, ROUTER_KEEPALIVE_IDLE_MS);
	return c;
}

int http2_conn_new(struct server *srv, int fd, struct tls_conn *tls, const char *data, size_t len)
{
	struct h2_conn *c = h2_conn_create(srv, fd);
	if (!c) {
		tls_conn_free(tls);
		close(fd);
		return -1;
	}
	c->tls = tls;
	c->watch.batch_read = tls == NULL; /* cleartext reads go through loop_read */
	if (len && h2_feed(c, (const uint8_t *)data, len) < 0) {
		h2_flush(c);
		h2_close(c);
		return -1;
	}
	if (tls && tls_conn_has_pending(tls)) {
		h2_on_event(&c->watch, EPOLLIN); /* the preface came with the handshake's last flight */
		return 0;
	}
	h2_dispatch_pending(c);
	h2_flush(c);
	return 0;
}

int http2_conn_upgrade(struct server *srv, int fd, struct request *req, const char *settings,
		       size_t settings_len, const char *rest, size_t rest_len)
{
	uint8_t payload[256];
	long plen = base64url_decode(settings, settings_len, payload, sizeof(payload));
	struct h2_conn *c = plen < 0 ? NULL : h2_conn_create(srv, fd);
	if (!c) {
		request_release(&srv->requests, req);
		close(fd);
		return -1;
	}
	/* the 101 goes out before anything nghttp2 produces */
	buf_append_str(&c->out, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
	int rv = nghttp2_session_upgrade2(c->session, payload, (size_t)plen, req->method == REQUEST_HEAD, req);
	if (rv != 0) {
		log_debug("h2c upgrade refused: %s", nghttp2_strerror(rv));
		request_release(&srv->requests, req);
		h2_close(c);
		return -1;
	}
	req->ops = &h2_ops;
	req->frontend = c;
	req->stream_id = 1;
	req->received = true; /* the whole HTTP/1.1 request */
	stream_link(c, req);
	c->in_recv = true; /* flush once, below */
	dispatch_request(srv, req);
	c->in_recv = false;
	if (rest_len && h2_feed(c, (const uint8_t *)rest, rest_len) < 0) {
		h2_flush(c);
		h2_close(c);
		return 0;
	}
	h2_dispatch_pending(c);
	h2_flush(c);
	return 0;
}
