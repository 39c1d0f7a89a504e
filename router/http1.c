/* http1.c — HTTP/1.1 server connections. */
#include <errno.h>
#include <arpa/inet.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dispatch.h"
#include "errors.h"
#include "http1.h"
#include "http2.h"
#include "log.h"
#include "netaddr.h"
#include "server.h"
#include "tls.h"

#define H1_READ_CHUNK (16u << 10)
#define H1_MAX_BUFFERED (256u << 10) /* pipelined bytes kept while a request is served */
#define H1_WRITE_IDLE_MS 60000u

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum h1_state {
	H1_IDLE,    /* between requests */
	H1_HEAD,    /* reading a request head */
	H1_BODY,    /* reading a body */
	H1_WAIT,    /* request dispatched, waiting for its response */
	H1_WRITING, /* writing a response */
	H1_LINGER,  /* answered early, draining input before closing */
};

struct h1_conn {
	struct client_conn link;
	struct server *srv;
	int fd;
	struct tls_conn *tls; /* NULL: cleartext */
	struct loop_watch watch;
	struct loop_timer timer;
	uint64_t deadline_ns;
	struct loop_defer free_defer;
	struct loop_defer resume_defer;
	struct loop_defer flush_defer; /* a streamed response has more bytes */
	enum h1_state state;
	bool sniffed;      /* decided it is neither TLS nor the HTTP/2 preface */
	bool tls_only;     /* accepted on a --tls-listen address */
	bool closed;
	bool close_after;  /* close once the response is written */
	bool rejected;     /* body over the limit: answered, then linger */
	bool busy;         /* rejected because the router holds too many bodies */
	size_t rejected_size;
	uint64_t request_deadline_ns; /* the request being read must be whole by then */
	bool header_overflow;
	bool want_h2c;
	bool read_blocked; /* EPOLLIN off: too much pipelined input buffered */
	http_parser parser;
	struct berth_buf in;
	size_t in_off;
	struct request *req;
	/* header assembly: pieces arrive in several callbacks */
	struct berth_buf field, value;
	bool last_was_value;
	bool have_path;
	/* output: head in out, body from out_req->resp_body (a streamed one
	 * already in chunks, or delimited by the close: stream_close) */
	bool stream_chunked;
	struct berth_buf out;
	size_t out_off;
	struct request *out_req;
	struct loop_write writer; /* cleartext answers: sent with the loop turn's batch */
};

static const struct request_frontend_ops h1_ops;

static void h1_on_event(struct loop_watch *w, uint32_t events);
static void h1_on_timer(struct loop_timer *t);
static void h1_free_deferred(struct loop_defer *d);
static void h1_resume_deferred(struct loop_defer *d);
static void h1_flush_deferred(struct loop_defer *d);
static void h1_process(struct h1_conn *c);
static void h1_flush(struct h1_conn *c);

/* ---- rendering --------------------------------------------------------- */

const char *http1_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 424: return "Failed Dependency";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	}
	return "Unknown";
}

int http1_render_head(struct berth_buf *out, const struct request *req, int http_minor, bool close, bool keep_alive_10)
{
	/* no printf on this path: it was a fifth of the router's user time */
	int r = buf_append_str(out, http_minor ? "HTTP/1.1 " : "HTTP/1.0 ");
	r |= req->status >= 0 ? buf_append_u64(out, (unsigned long long)req->status) : buf_printf(out, "%d", req->status);
	r |= buf_append(out, " ", 1);
	r |= buf_append_str(out, http1_reason(req->status));
	r |= buf_append(out, "\r\n", 2);
	for (size_t i = 0; i < req->n_resp_headers; i++) {
		const struct request_header *h = &req->resp_headers[i];
		r |= buf_append(out, request_resp_str(req, h->name), h->name.len);
		r |= buf_append(out, ": ", 2);
		r |= buf_append(out, request_resp_str(req, h->value), h->value.len);
		r |= buf_append(out, "\r\n", 2);
	}
	if (req->streaming) {
		if (http_minor)
			r |= buf_append_str(out, "Transfer-Encoding: chunked\r\n");
	} else if (!(req->status < 200 || req->status == 204 || req->status == 304)) {
		r |= buf_append_str(out, "Content-Length: ");
		r |= buf_append_u64(out, req->resp_body.len);
		r |= buf_append(out, "\r\n", 2);
	}
	if (close)
		r |= buf_append_str(out, "Connection: close\r\n");
	else if (keep_alive_10)
		r |= buf_append_str(out, "Connection: keep-alive\r\n");
	r |= buf_append(out, "\r\n", 2);
	return r ? -1 : 0;
}

/* ---- lifetime ---------------------------------------------------------- */

/* While a request is being read, no deadline goes past the request's. */
static uint64_t h1_deadline_after(const struct h1_conn *c, uint64_t ms)
{
	uint64_t d = loop_now_ns(c->srv->loop) + ms * 1000000ull;
	if ((c->state == H1_HEAD || c->state == H1_BODY) && d > c->request_deadline_ns)
		d = c->request_deadline_ns;
	return d;
}

static void h1_set_deadline(struct h1_conn *c, uint64_t ms)
{
	struct loop *loop = c->srv->loop;
	c->deadline_ns = h1_deadline_after(c, ms);
	if (!loop_timer_armed(&c->timer) || c->timer.deadline_ns > c->deadline_ns)
		loop_timer_arm_at(loop, &c->timer, c->deadline_ns);
}

static void h1_clear_deadline(struct h1_conn *c)
{
	c->deadline_ns = UINT64_MAX;
	loop_timer_cancel(c->srv->loop, &c->timer);
}

/* Detaches from the loop and the server; frees after the event batch.
 * close_fd false when the fd was handed to HTTP/2. */
static void h1_destroy(struct h1_conn *c, bool close_fd)
{
	if (c->closed)
		return;
	c->closed = true;
	struct server *srv = c->srv;
	loop_watch_del(srv->loop, &c->watch);
	loop_timer_cancel(srv->loop, &c->timer);
	loop_write_cancel(srv->loop, &c->writer);
	if (close_fd) {
		tls_conn_free(c->tls);
		if (c->fd >= 0)
			close(c->fd);
	}
	c->tls = NULL;
	c->fd = -1;
	if (c->req) {
		if (request_in_progress(c->req))
			request_abort(c->req);
		if (c->req != c->out_req)
			request_release(&srv->requests, c->req);
	}
	if (c->out_req)
		request_release(&srv->requests, c->out_req);
	c->req = c->out_req = NULL;
	server_conn_unlink(srv, &c->link);
	srv->metrics.client_connections--;
	loop_defer(srv->loop, &c->free_defer);
}

static void h1_close(struct h1_conn *c) { h1_destroy(c, true); }

static void h1_close_link(struct client_conn *link) { h1_close(container_of(link, struct h1_conn, link)); }

static void h1_drain_link(struct client_conn *link)
{
	struct h1_conn *c = container_of(link, struct h1_conn, link);
	if (c->state == H1_IDLE && c->in_off == c->in.len)
		h1_close(c);
	else
		c->close_after = true; /* answer what was asked, with Connection: close */
}

static void h1_free_deferred(struct loop_defer *d)
{
	struct h1_conn *c = container_of(d, struct h1_conn, free_defer);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->field);
	buf_free(&c->value);
	free(c);
}

/* ---- parser callbacks -------------------------------------------------- */

static int flush_header(struct h1_conn *c)
{
	if (!c->last_was_value)
		return 0;
	c->last_was_value = false;
	if (request_add_header(c->req, c->field.data ? c->field.data : "", c->field.len,
			       c->value.data ? c->value.data : "", c->value.len) < 0) {
		c->header_overflow = true;
		return -1;
	}
	buf_reset(&c->field);
	buf_reset(&c->value);
	return 0;
}

static int flush_path(struct h1_conn *c)
{
	if (c->have_path)
		return 0;
	c->have_path = true;
	if (request_set_path(c->req, c->field.data ? c->field.data : "/", c->field.len) < 0) {
		c->header_overflow = true;
		return -1;
	}
	buf_reset(&c->field);
	return 0;
}

/* A request of this connection, as c->req; NULL on ENOMEM. */
static struct request *h1_new_request(struct h1_conn *c)
{
	c->req = request_acquire(&c->srv->requests, loop_now_ns(c->srv->loop));
	if (c->req) {
		c->req->ops = &h1_ops;
		c->req->frontend = c;
	}
	return c->req;
}

static int on_message_begin(http_parser *p)
{
	struct h1_conn *c = p->data;
	struct server *srv = c->srv;
	if (!h1_new_request(c))
		return -1;
	c->state = H1_HEAD;
	c->request_deadline_ns = loop_now_ns(srv->loop) + srv->cfg.request_timeout_ms * 1000000ull;
	c->have_path = false;
	c->last_was_value = false;
	c->want_h2c = false;
	buf_reset(&c->field);
	buf_reset(&c->value);
	h1_set_deadline(c, ROUTER_HEADER_TIMEOUT_MS);
	return 0;
}

static int bounded_append(struct h1_conn *c, struct berth_buf *b, const char *at, size_t len)
{
	if (b->len + len > REQUEST_MAX_HEADER_BYTES || buf_append(b, at, len) < 0) {
		c->header_overflow = true;
		return -1;
	}
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct h1_conn *c = p->data;
	return bounded_append(c, &c->field, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct h1_conn *c = p->data;
	if (flush_path(c) < 0 || flush_header(c) < 0)
		return -1;
	return bounded_append(c, &c->field, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct h1_conn *c = p->data;
	c->last_was_value = true;
	return bounded_append(c, &c->value, at, len);
}

static bool header_has_token(const char *value, const char *token)
{
	size_t tl = strlen(token);
	for (const char *s = value; *s;) {
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		const char *e = s;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if ((size_t)(t - s) == tl && strncasecmp(s, token, tl) == 0)
			return true;
		s = e;
	}
	return false;
}

static int on_headers_complete(http_parser *p)
{
	struct h1_conn *c = p->data;
	struct request *req = c->req;
	if (flush_path(c) < 0 || flush_header(c) < 0)
		return -1;
	const char *m = http_method_str((enum http_method)p->method);
	req->method = request_method_from(m, strlen(m));
	dispatch_head(c->srv, req);
	if (req->refusal) { /* answered without reading the body: as a body too large */
		c->rejected = true;
		http_parser_pause(p, 1);
		return 0;
	}
	const char *upgrade = request_header(req, "upgrade", NULL);
	c->want_h2c = !c->tls && upgrade && header_has_token(upgrade, "h2c") && request_header(req, "http2-settings", NULL);
	if (p->content_length != ULLONG_MAX && p->content_length > req->body_limit) {
		c->rejected = true;
		http_parser_pause(p, 1);
		return 0;
	}
	if (p->content_length != ULLONG_MAX && p->content_length > 0)
		buf_reserve(&req->body, (size_t)p->content_length);
	const char *expect = request_header(req, "expect", NULL);
	if (expect && strcasecmp(expect, "100-continue") == 0 && p->http_minor >= 1 && c->out_req == NULL) {
		buf_append_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
		h1_flush(c);
	}
	c->state = H1_BODY;
	h1_set_deadline(c, ROUTER_BODY_IDLE_MS);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct h1_conn *c = p->data;
	struct request *req = c->req;
	if (req->body.len + len > req->body_limit) {
		c->rejected = true;
		c->rejected_size = req->body.len + len;
		http_parser_pause(p, 1);
		return 0;
	}
	int r = request_append_body(req, NULL, &c->srv->buffered, at, len);
	if (r > 0) {
		c->rejected = c->busy = true;
		http_parser_pause(p, 1);
		return 0;
	}
	if (r < 0)
		return -1;
	c->deadline_ns = h1_deadline_after(c, ROUTER_BODY_IDLE_MS);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct h1_conn *c = p->data;
	c->state = H1_WAIT;
	if (!http_should_keep_alive(p))
		c->close_after = true;
	h1_clear_deadline(c);
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings h1_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* ---- output ------------------------------------------------------------ */

static void h1_after_write(struct h1_conn *c)
{
	struct server *srv = c->srv;
	if (c->out_req) {
		if (c->req == c->out_req)
			c->req = NULL;
		request_release(&srv->requests, c->out_req);
		c->out_req = NULL;
	}
	buf_reset(&c->out);
	c->out_off = 0;
	if (c->rejected) {
		/* the client may still be sending the body: let it finish and read
		 * the answer rather than see a reset */
		shutdown(c->fd, SHUT_WR);
		c->state = H1_LINGER;
		loop_watch_mod(srv->loop, &c->watch, EPOLLIN | EPOLLRDHUP);
		h1_clear_deadline(c);
		h1_set_deadline(c, ROUTER_LINGER_MS);
		return;
	}
	if (c->close_after) {
		h1_close(c);
		return;
	}
	if (c->state == H1_WRITING) {
		c->state = H1_IDLE;
		if (srv->draining) {
			h1_close(c);
			return;
		}
		h1_set_deadline(c, ROUTER_KEEPALIVE_IDLE_MS);
		if (c->in_off < c->in.len || c->read_blocked)
			loop_defer(srv->loop, &c->resume_defer); /* pipelined input waits */
	}
}

/* The vectors still to be written: the head, then the body. */
static int h1_pending(struct h1_conn *c, struct iovec *iov)
{
	struct request *req = c->out_req;
	size_t body_len = req && req->method != REQUEST_HEAD ? req->resp_body.len : 0;
	int n_iov = 0;
	if (c->out_off < c->out.len)
		iov[n_iov++] = (struct iovec){ c->out.data + c->out_off, c->out.len - c->out_off };
	if (req && req->resp_body_sent < body_len)
		iov[n_iov++] = (struct iovec){ req->resp_body.data + req->resp_body_sent, body_len - req->resp_body_sent };
	return n_iov;
}

/* n bytes of the pending vectors went out. */
static void h1_advance(struct h1_conn *c, size_t n)
{
	size_t head_left = c->out.len - c->out_off;
	if (n <= head_left)
		c->out_off += n;
	else {
		c->out_off = c->out.len;
		c->out_req->resp_body_sent += n - head_left;
	}
}

static void h1_flush(struct h1_conn *c)
{
	struct request *req = c->out_req;
	for (;;) {
		struct iovec iov[2];
		int n_iov = h1_pending(c, iov);
		if (n_iov == 0)
			break;
		ssize_t n = c->tls ? tls_conn_writev(c->tls, iov, n_iov) : writev(c->fd, iov, n_iov);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				loop_watch_mod(c->srv->loop, &c->watch,
					       (c->read_blocked ? 0 : EPOLLIN) | EPOLLOUT | EPOLLRDHUP);
				if (req)
					h1_set_deadline(c, H1_WRITE_IDLE_MS);
				if (req && req->streaming)
					request_stream_drained(req);
				return;
			}
			h1_close(c);
			return;
		}
		h1_advance(c, (size_t)n);
	}
	loop_watch_mod(c->srv->loop, &c->watch, c->read_blocked ? EPOLLRDHUP : EPOLLIN | EPOLLRDHUP);
	if (req && req->streaming && !req->stream_ended) {
		/* all written so far; the producer decides what comes (its own
		 * timeout bounds the wait) */
		buf_reset(&req->resp_body);
		req->resp_body_sent = 0;
		h1_clear_deadline(c);
		request_stream_drained(req);
		return;
	}
	if (req)
		h1_after_write(c);
	else {
		buf_reset(&c->out); /* only 100 Continue was pending */
		c->out_off = 0;
	}
}

/* The batched write (loop.h): what is pending now, and what became of it. */
static int h1_writer_prepare(struct loop_write *w, struct iovec *iov)
{
	struct h1_conn *c = container_of(w, struct h1_conn, writer);
	return c->closed ? 0 : h1_pending(c, iov);
}

static void h1_writer_complete(struct loop_write *w, ssize_t result)
{
	struct h1_conn *c = container_of(w, struct h1_conn, writer);
	if (result < 0 && result != -EAGAIN && result != -EINTR) {
		h1_close(c);
		return;
	}
	if (result > 0)
		h1_advance(c, (size_t)result);
	/* the rest (none, usually: then no system call), EPOLLOUT, and what
	 * follows a complete answer, as for a direct write */
	h1_flush(c);
}

static void h1_send(struct request *req)
{
	struct h1_conn *c = req->frontend;
	struct server *srv = c->srv;
	metrics_count_response(&srv->metrics, req->status);
	if (c->closed)
		return;
	bool close = c->close_after || c->rejected;
	/* a request that did not parse has no version: answer as HTTP/1.1 */
	int minor = c->parser.http_major == 1 ? c->parser.http_minor : 1;
	if (req->streaming && minor == 0)
		close = c->close_after = true; /* no chunked encoding: the close ends it */
	c->stream_chunked = req->streaming && minor > 0;
	bool keep_alive_10 = minor == 0 && !close;
	if (c->out_off == c->out.len) {
		buf_reset(&c->out);
		c->out_off = 0;
	}
	if (http1_render_head(&c->out, req, minor, close, keep_alive_10) < 0) {
		h1_close(c);
		return;
	}
	c->out_req = req;
	req->resp_body_sent = 0;
	if (c->state == H1_WAIT)
		c->state = H1_WRITING;
	if (req->streaming) { /* the producer is inside a callback: write after it */
		loop_defer(srv->loop, &c->flush_defer);
		return;
	}
	if (c->tls)
		h1_flush(c);
	else
		loop_write_queue(srv->loop, &c->writer); /* with the other writes of this turn */
}

/* Appends the bytes of iov from offset skip on to b. */
static int append_from(struct berth_buf *b, const struct iovec *iov, int n, size_t skip)
{
	for (int i = 0; i < n; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		if (buf_append(b, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip) < 0)
			return -1;
		skip = 0;
	}
	return 0;
}

/* A streamed piece this large is written straight from the producer's
 * buffers (behind what is pending, in one writev) instead of being copied
 * first: on a 1 GiB stream that copy was a tenth of the router's time.
 * Smaller pieces are gathered and go out together in the deferred flush. */
#define H1_STREAM_DIRECT_MIN (16u << 10)

static int h1_stream_more(struct request *req, const struct iovec *iov, int n)
{
	struct h1_conn *c = req->frontend;
	struct berth_buf *b = &req->resp_body;
	if (c->closed)
		return 0;
	if (req->resp_body_sent == b->len) {
		buf_reset(b);
		req->resp_body_sent = 0;
	} else if (req->resp_body_sent >= REQUEST_STREAM_LOW_WATER) {
		/* a slow client: drop what was written, so the buffer stays
		 * bounded by what is pending */
		buf_consume(b, req->resp_body_sent);
		req->resp_body_sent = 0;
	}
	loop_defer(c->srv->loop, &c->flush_defer);
	if (c->stream_chunked && n == 0)
		return buf_append_str(b, "0\r\n\r\n");
	if (n > REQUEST_STREAM_MAX_PIECES)
		return -1;
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	/* wire[1..k): the piece as it goes out (chunk size line, bytes, CRLF);
	 * wire[0]: what is pending before it, for a direct write */
	char size_line[24];
	struct iovec wire[1 + 1 + REQUEST_STREAM_MAX_PIECES + 1];
	int k = 1;
	if (c->stream_chunked && total > 0)
		wire[k++] = (struct iovec){ size_line, (size_t)snprintf(size_line, sizeof(size_line), "%zx\r\n", total) };
	for (int i = 0; i < n; i++)
		wire[k++] = iov[i];
	if (c->stream_chunked && total > 0)
		wire[k++] = (struct iovec){ "\r\n", 2 };
	size_t skip = 0;
	if (total >= H1_STREAM_DIRECT_MIN && !c->tls && c->out_off == c->out.len /* the head is out */) {
		size_t pending = request_stream_pending(req);
		wire[0] = (struct iovec){ b->data + req->resp_body_sent, pending };
		ssize_t w = pending ? writev(c->fd, wire, k) : writev(c->fd, wire + 1, k - 1);
		/* an error is the deferred flush's to see: nothing closes here,
		 * under the producer's callback */
		if (w > 0 && (size_t)w <= pending)
			req->resp_body_sent += (size_t)w;
		else if (w > 0) {
			req->resp_body_sent = b->len;
			skip = (size_t)w - pending;
		}
	}
	return append_from(b, wire + 1, k - 1, skip);
}

static void h1_flush_deferred(struct loop_defer *d)
{
	struct h1_conn *c = container_of(d, struct h1_conn, flush_defer);
	if (!c->closed && c->out_req)
		h1_flush(c);
}

static const struct request_frontend_ops h1_ops = { .send = h1_send, .stream_more = h1_stream_more };

/* ---- input ------------------------------------------------------------- */

static void h1_bad_request(struct h1_conn *c, int status, const char *what)
{
	struct server *srv = c->srv;
	if (!c->req && !h1_new_request(c)) {
		h1_close(c);
		return;
	}
	c->close_after = true;
	c->state = H1_WAIT;
	srv->metrics.requests[METRICS_KIND_OTHER]++;
	respond_message(c->req, status, "%s", what);
}

static void h1_switch_to_h2c(struct h1_conn *c)
{
	struct server *srv = c->srv;
	struct request *req = c->req;
	size_t settings_len = 0;
	const char *settings = request_header(req, "http2-settings", &settings_len);
	int fd = c->fd;
	const char *rest = c->in.data ? c->in.data + c->in_off : "";
	size_t rest_len = c->in.len - c->in_off;
	c->req = NULL; /* handed over with the fd */
	h1_destroy(c, false); /* c->in stays valid until the deferred free */
	http2_conn_upgrade(srv, fd, req, settings, settings_len, rest, rest_len);
}

static void h1_process(struct h1_conn *c)
{
	struct server *srv = c->srv;
	while (!c->closed && (c->state == H1_IDLE || c->state == H1_HEAD || c->state == H1_BODY) &&
	       c->in_off < c->in.len) {
		size_t avail = c->in.len - c->in_off;
		size_t n = http_parser_execute(&c->parser, &h1_settings, c->in.data + c->in_off, avail);
		c->in_off += n;
		enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
		if (e == HPE_PAUSED) {
			http_parser_pause(&c->parser, 0);
			if (c->busy) {
				c->state = H1_WAIT;
				srv->metrics.requests[METRICS_KIND_OTHER]++;
				srv->metrics.refused_busy++;
				respond_busy(c->req, ROUTER_RETRY_AFTER,
					     "The router holds the maximum of %zu bytes of request bodies in memory: retry shortly.",
					     srv->buffered.limit);
				return;
			}
			if (c->rejected && c->req->refusal) {
				c->state = H1_WAIT;
				dispatch_refuse_early(srv, c->req);
				return;
			}
			if (c->rejected) {
				size_t size = c->parser.content_length != ULLONG_MAX && c->state == H1_HEAD
						      ? (size_t)c->parser.content_length
						      : c->rejected_size;
				c->state = H1_WAIT;
				dispatch_body_too_large(srv, c->req, size);
				return;
			}
			if (c->state == H1_WAIT) {
				if (c->want_h2c && c->parser.upgrade) {
					h1_switch_to_h2c(c);
					return;
				}
				dispatch_request(srv, c->req);
			}
			continue;
		}
		if (e != HPE_OK) {
			if (c->header_overflow)
				h1_bad_request(c, 431, "Request head too large: at most 100 headers and 64 KiB.");
			else {
				char msg[256];
				snprintf(msg, sizeof(msg), "Malformed HTTP/1.1 request: %s.", http_errno_description(e));
				h1_bad_request(c, 400, msg);
			}
			return;
		}
	}
	if (c->closed)
		return;
	if (c->in_off == c->in.len) {
		buf_reset(&c->in);
		c->in_off = 0;
	} else if (c->in_off > 0 && c->state == H1_WAIT && c->in_off > c->in.len / 2) {
		buf_consume(&c->in, c->in_off);
		c->in_off = 0;
	}
}

/* The first bytes are a TLS handshake record: the connection goes to
 * tls.c with what was read, and comes back through http1_tls_ready. */
static void h1_switch_to_tls(struct h1_conn *c)
{
	int fd = c->fd;
	struct server *srv = c->srv;
	struct berth_buf in = c->in;
	c->in = (struct berth_buf)BERTH_BUF_INIT;
	h1_destroy(c, false);
	tls_server_accept(srv->tls, fd, in.data, in.len);
	buf_free(&in);
}

/* Plain HTTP on a --tls-listen address: the answer nginx gives, in JSON,
 * naming the address to use; then the connection lingers and closes. */
static void h1_plain_on_tls_port(struct h1_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char address[INET6_ADDRSTRLEN + 16] = "?";
	if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) == 0)
		netaddr_format(&ss, address, sizeof(address));
	char msg[160];
	snprintf(msg, sizeof(msg), "The plain HTTP request was sent to the HTTPS port: use https://%s/.", address);
	c->sniffed = true;
	c->rejected = true; /* answered before the request was read: linger */
	h1_bad_request(c, 400, msg);
}

static void h1_resume_deferred(struct loop_defer *d)
{
	struct h1_conn *c = container_of(d, struct h1_conn, resume_defer);
	if (c->closed)
		return;
	if (c->read_blocked) {
		c->read_blocked = false;
		loop_watch_mod(c->srv->loop, &c->watch, EPOLLIN | EPOLLRDHUP);
	}
	h1_process(c);
	/* TLS: what OpenSSL read ahead while reading was paused is invisible
	 * to epoll; read it now (a partial record just meets EAGAIN) */
	if (!c->closed && c->tls && !c->read_blocked && tls_conn_has_pending(c->tls))
		h1_on_event(&c->watch, EPOLLIN);
}

/* Reads what is there. Returns 1 if data arrived, 0 on EAGAIN, -1 on EOF/error. */
static int h1_read(struct h1_conn *c)
{
	int got = 0;
	for (;;) {
		if (c->in_off > 0 && c->in_off == c->in.len) {
			buf_reset(&c->in);
			c->in_off = 0;
		}
		if (c->in.len - c->in_off >= H1_MAX_BUFFERED && c->state != H1_HEAD && c->state != H1_BODY &&
		    c->state != H1_IDLE) {
			c->read_blocked = true;
			loop_watch_mod(c->srv->loop, &c->watch,
				       (c->watch.events & EPOLLOUT) | EPOLLRDHUP);
			return got;
		}
		if (buf_reserve(&c->in, H1_READ_CHUNK) < 0)
			return -1;
		size_t want = c->in.cap - c->in.len - 1;
		ssize_t n = c->tls ? tls_conn_read(c->tls, c->in.data + c->in.len, want)
				   : loop_read(c->srv->loop, &c->watch, c->in.data + c->in.len, want);
		if (n > 0) {
			c->in.len += (size_t)n;
			c->in.data[c->in.len] = '\0';
			got = 1;
			/* short read: nothing more for now (TLS: one record at a
			 * time, unless OpenSSL holds nothing more) */
			if ((size_t)n < want && !(c->tls && tls_conn_has_pending(c->tls)))
				return got;
			continue;
		}
		if (n == 0)
			return -1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return got;
		return -1;
	}
}

static void h1_on_event(struct loop_watch *w, uint32_t events)
{
	struct h1_conn *c = container_of(w, struct h1_conn, watch);
	if ((events & EPOLLOUT) && (c->out_off < c->out.len || c->out_req)) {
		h1_flush(c);
		if (c->closed)
			return;
	}
	if (c->state == H1_LINGER) {
		char sink[16384];
		for (;;) {
			ssize_t n = c->tls ? read(c->fd, sink, sizeof(sink)) : loop_read(c->srv->loop, &c->watch, sink, sizeof(sink));
			if (n > 0)
				continue;
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN)
				return;
			h1_close(c);
			return;
		}
	}
	if (c->read_blocked) {
		if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			h1_close(c);
		return;
	}
	if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		return;
	int r = h1_read(c);
	if (r < 0) {
		/* the client is gone (or half-closed): drop what it asked for */
		h1_close(c);
		return;
	}
	if (!c->sniffed && c->in.len > 0) {
		if (!c->tls && (unsigned char)c->in.data[0] == TLS_RECORD_HANDSHAKE) {
			h1_switch_to_tls(c);
			return;
		}
		if (c->tls_only) {
			h1_plain_on_tls_port(c);
			return;
		}
		size_t n = c->in.len < sizeof(h2_preface) - 1 ? c->in.len : sizeof(h2_preface) - 1;
		if (memcmp(c->in.data, h2_preface, n) == 0) {
			if (n < sizeof(h2_preface) - 1)
				return; /* wait for the whole preface */
			int fd = c->fd;
			struct server *srv = c->srv;
			struct berth_buf in = c->in;
			c->in = (struct berth_buf)BERTH_BUF_INIT;
			struct tls_conn *t = c->tls;
			c->tls = NULL; /* handed over with the fd */
			h1_destroy(c, false);
			http2_conn_new(srv, fd, t, in.data, in.len);
			buf_free(&in);
			return;
		}
		c->sniffed = true;
	}
	if (r > 0)
		h1_process(c);
}

static void h1_on_timer(struct loop_timer *t)
{
	struct h1_conn *c = container_of(t, struct h1_conn, timer);
	uint64_t now = loop_now_ns(c->srv->loop);
	if (c->deadline_ns == UINT64_MAX)
		return;
	if (c->deadline_ns > now) {
		loop_timer_arm_at(c->srv->loop, &c->timer, c->deadline_ns);
		return;
	}
	switch (c->state) {
	case H1_HEAD:
	case H1_BODY:
		if (c->srv->debug)
			log_debug("closing a slow HTTP/1.1 client (%s)", c->state == H1_HEAD ? "head" : "body");
		c->srv->metrics.request_timeouts++;
		if (now >= c->request_deadline_ns) {
			char msg[160];
			snprintf(msg, sizeof(msg), "Request timed out: a whole request must arrive within %llu ms.",
				 (unsigned long long)c->srv->cfg.request_timeout_ms);
			h1_bad_request(c, 408, msg);
		} else
			h1_bad_request(c, 408, "Request timed out: the request was not received in time.");
		return;
	default:
		h1_close(c);
		return;
	}
}

/* tls: the connection's session (NULL: cleartext); owned from here on. */
static struct h1_conn *h1_conn_create(struct server *srv, int fd, struct tls_conn *tls)
{
	struct h1_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		tls_conn_free(tls);
		close(fd);
		return NULL;
	}
	c->srv = srv;
	c->fd = fd;
	c->tls = tls;
	c->link.close = h1_close_link;
	c->link.drain = h1_drain_link;
	loop_watch_init(&c->watch, h1_on_event);
	c->watch.batch_read = tls == NULL; /* cleartext reads go through loop_read */
	loop_timer_init(&c->timer, h1_on_timer);
	loop_defer_init(&c->free_defer, h1_free_deferred);
	loop_defer_init(&c->resume_defer, h1_resume_deferred);
	loop_defer_init(&c->flush_defer, h1_flush_deferred);
	loop_write_init(&c->writer, fd, h1_writer_prepare, h1_writer_complete);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	struct berth_err err;
	if (loop_watch_add(srv->loop, &c->watch, fd, EPOLLIN | EPOLLRDHUP, &err) < 0) {
		log_error("%s", err.msg);
		tls_conn_free(tls);
		close(fd);
		free(c);
		return NULL;
	}
	server_conn_link(srv, &c->link);
	srv->metrics.client_connections++;
	if (!tls) /* a TLS connection was counted when it was accepted */
		srv->metrics.client_connections_total++;
	h1_set_deadline(c, ROUTER_KEEPALIVE_IDLE_MS);
	return c;
}

int http1_conn_new(struct server *srv, int fd)
{
	return h1_conn_create(srv, fd, NULL) ? 0 : -1;
}

void http1_tls_ready(struct server *srv, int fd, struct tls_conn *t, bool h2)
{
	if (h2) {
		http2_conn_new(srv, fd, t, NULL, 0);
		return;
	}
	struct h1_conn *c = h1_conn_create(srv, fd, t);
	if (c && tls_conn_has_pending(t)) /* read with the handshake's last flight */
		h1_on_event(&c->watch, EPOLLIN);
}

/* Past the connection cap: answer 503 at once (before the request, which
 * HTTP/1.1 clients read as the answer to it), then linger and close. */
static void h1_refuse(struct h1_conn *c)
{
	struct server *srv = c->srv;
	if (!h1_new_request(c)) {
		h1_close(c);
		return;
	}
	c->rejected = true;
	c->sniffed = true;
	c->state = H1_WAIT;
	srv->metrics.refused_connections++;
	respond_busy(c->req, ROUTER_RETRY_AFTER,
		     "The router serves the maximum of %zu client connections at once: retry shortly.",
		     srv->cfg.max_connections);
}

void http1_accept(int fd, int tag, void *user_data)
{
	struct server *srv = user_data;
	size_t open = srv->metrics.client_connections > 0 ? (size_t)srv->metrics.client_connections : 0;
	/* far past the cap: not even an answer; on a TLS-only address a plain
	 * 503 would be garbage to the client, so it is closed at the cap */
	if (open >= srv->cfg.max_connections + ROUTER_REFUSING_EXTRA ||
	    (tag == ROUTER_LISTEN_TLS_ONLY && open >= srv->cfg.max_connections)) {
		srv->metrics.refused_connections++;
		close(fd);
		return;
	}
	struct h1_conn *c = h1_conn_create(srv, fd, NULL);
	if (c)
		c->tls_only = tag == ROUTER_LISTEN_TLS_ONLY;
	if (c && open >= srv->cfg.max_connections)
		h1_refuse(c);
}
