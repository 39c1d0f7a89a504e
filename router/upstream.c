/* upstream.c — pooled HTTP/1.1 connections to containers, obtained from
 * their shims. See upstream.h for the contract. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc.h"
#include "proto_shim.h"
#include "shim_conn.h"
#include "clock.h"
#include "http_response.h"
#include "json.h"
#include "log.h"
#include "upstream.h"

#define UPSTREAM_READ_CHUNK (256u << 10)
/* A streamed body is read in larger pieces: each read's bytes go to the
 * client in one write, so the router and the client make a quarter of the
 * system calls and wake-ups (the router's CPU for a 1 GiB stream fell by
 * about a quarter against 256 KiB reads). One event still reads at most
 * UPSTREAM_EVENT_BYTES before other connections get their turn. */
#define UPSTREAM_STREAM_READ (1024u << 10)
#define UPSTREAM_EVENT_BYTES (4u << 20)

#define UPSTREAM_SHIM_IDLE_CHANNELS 4 /* shim connections kept open per container */

struct upstream_pool {
	struct upstream_pool *next;
	struct upstream *u;
	char *socket;
	struct shim_channel *channels; /* idle and busy */
	size_t n_idle_channels;
	size_t n_waiting;           /* exchanges waiting for a shim's answer */
	struct upstream_conn *idle; /* LIFO: the most recently used is the likeliest alive */
	size_t n_idle;
	size_t n_busy;
};

/* One unix connection to a shim carrying one "connect" request at a time
 * (a passed descriptor belongs to the answer it rides on; one request in
 * flight keeps that pairing trivial). Several channels per shim let
 * connects to one container proceed in parallel; none ever blocks the
 * loop. */
struct shim_channel {
	struct shim_channel *next;
	struct upstream_pool *pool;
	int fd;
	struct ipc_reader reader;
	struct loop_watch watch;
	struct loop_timer timer;
	struct loop_defer free_defer;
	bool busy;                   /* a request is outstanding */
	bool used;                   /* answered before: may be stale when reused */
	bool closed;
	struct upstream_exchange *x; /* the waiting exchange; NULL once cancelled */
	size_t sent;                 /* bytes of the request written */
};

struct upstream_conn {
	struct upstream_pool *pool;
	struct upstream_conn *next_idle;
	int fd;
	struct loop_watch watch;
	struct loop_timer timer;
	struct loop_defer free_defer;
	struct upstream_exchange *x;
	bool reused;       /* came from the pool for this exchange */
	bool got_bytes;    /* some response byte arrived */
	bool body_direct; /* Content-Length body: read straight into x->resp_body (no copy) */
	bool streaming;   /* a 2xx answer's body goes to x->on_data */
	bool paused;      /* on_data asked to wait: not reading */
	/* a streamed body's pieces parsed from the last read, not yet handed
	 * to on_data (they point into the read buffer) */
	struct iovec spans[UPSTREAM_STREAM_SPANS];
	int n_spans;
	enum upstream_result fail; /* set by parser callbacks to stop */
	struct http_response resp; /* the shared response parser (common/) */
	/* request being written */
	struct berth_buf head;
	size_t written; /* bytes of head + body written */
	struct loop_write writer; /* the first write: with the loop turn's batch */
};

struct upstream {
	struct loop *loop;
	struct metrics *metrics;
	uint64_t timeout_ms;
	size_t max_body;
	bool debug;
	struct upstream_pool *pools;
	char *read_buf; /* one shared buffer: the loop is single-threaded */
	char shim_request[SHIM_CONN_REQUEST_MAX]; /* the "connect" line (shim_conn.h), the same for every shim */
	size_t shim_request_len;
};

static void conn_on_event(struct loop_watch *w, uint32_t events);
static void conn_on_timer(struct loop_timer *t);
static void conn_free_deferred(struct loop_defer *d);
static int send_on(struct upstream_conn *c, struct upstream_exchange *x);
static int conn_writer_prepare(struct loop_write *w, struct iovec *iov);
static void conn_writer_complete(struct loop_write *w, ssize_t result);
static void exchange_fail(struct upstream_conn *c, enum upstream_result result, const char *what);
static int shim_request(struct upstream_pool *pool, struct upstream_exchange *x);
static void conn_finish(struct upstream_conn *c, bool reusable);

/* Ends x without a container answer (result and error set). */
static void exchange_give_up(struct upstream_exchange *x)
{
	x->end_ns = clock_now_ns();
	x->done(x);
}

/* ---- response parsing (http_response.h callbacks) ------------------------ */

static bool header_is(const char *name, size_t len, const char *want, size_t want_len)
{
	return len == want_len && strncasecmp(name, want, len) == 0;
}

/* Keeps a header value in a fixed field, cut to fit. */
static void keep_value(char *dst, size_t cap, const char *value, size_t len)
{
	if (len > cap - 1)
		len = cap - 1;
	memcpy(dst, value, len);
	dst[len] = '\0';
}

static int on_header(void *user_data, const char *name, size_t name_len, const char *value, size_t value_len)
{
	struct upstream_conn *c = user_data;
	struct upstream_exchange *x = c->x;
	if (header_is(name, name_len, "content-type", 12))
		keep_value(x->resp_content_type, sizeof(x->resp_content_type), value, value_len);
	else if (header_is(name, name_len, "x-amzn-sagemaker-custom-attributes", 34)) {
		keep_value(x->resp_custom_attributes, sizeof(x->resp_custom_attributes), value, value_len);
		x->has_resp_custom_attributes = true;
	} else if (header_is(name, name_len, "x-amzn-sagemaker-new-session-id", 31))
		keep_value(x->resp_new_session, sizeof(x->resp_new_session), value, value_len);
	else if (header_is(name, name_len, "x-amzn-sagemaker-closed-session-id", 34))
		keep_value(x->resp_closed_session, sizeof(x->resp_closed_session), value, value_len);
	return 0;
}

/* The container may answer before it has read the whole request: its
 * rest still needs EPOLLOUT while reading pauses. */
static bool request_unsent(const struct upstream_conn *c)
{
	return c->x && c->written < c->head.len + c->x->body_len;
}

static size_t exchange_limit(const struct upstream_conn *c)
{
	return c->x->max_body ? c->x->max_body : c->pool->u->max_body;
}

/* The parser's bound on the body: none for a streamed exchange (its 2xx
 * body is not kept; on_body bounds what else is kept). */
static uint64_t parser_limit(const struct upstream_conn *c)
{
	return c->x->on_data ? UINT64_MAX : exchange_limit(c);
}

static int on_head(void *user_data, int status, uint64_t content_length, bool chunked)
{
	struct upstream_conn *c = user_data;
	c->x->status = status;
	c->x->resp_content_length = content_length;
	if (c->x->on_data) {
		/* a 2xx answer without a declared length (chunked, or delimited
		 * by the close) streams; one with a length is kept whole, as for
		 * InvokeEndpoint (the caller sends it as one part) */
		c->streaming = status >= 200 && status <= 299 && (chunked || content_length == HTTP_RESPONSE_NO_LENGTH);
		if (!c->streaming && content_length != HTTP_RESPONSE_NO_LENGTH && content_length > exchange_limit(c)) {
			snprintf(c->x->error, sizeof(c->x->error), "the response body exceeds the maximum of %zu bytes",
				 exchange_limit(c));
			c->fail = UPSTREAM_TOO_LARGE;
			return -1;
		}
		if (c->streaming)
			return 0;
	}
	/* a declared length over the limit never gets here (the parser refuses it) */
	if (content_length != HTTP_RESPONSE_NO_LENGTH && content_length > 0 &&
	    buf_reserve(&c->x->resp_body, (size_t)content_length) == 0)
		c->body_direct = !chunked;
	return 0;
}

/* Hands the pieces gathered so far to on_data. 0, or -1 when it gave up. */
static int hand_spans(struct upstream_conn *c)
{
	int n = c->n_spans;
	c->n_spans = 0;
	if (n == 0)
		return 0;
	int r = c->x->on_data(c->x, c->spans, n);
	if (r < 0)
		return -1;
	if (r > 0 && !c->paused) {
		c->paused = true; /* conn_on_event stops reading after this feed */
		loop_watch_mod(c->pool->u->loop, &c->watch, request_unsent(c) ? EPOLLOUT : 0);
	}
	return 0;
}

static int on_body(void *user_data, const char *at, size_t len)
{
	struct upstream_conn *c = user_data;
	struct upstream_exchange *x = c->x;
	struct berth_buf *b = &x->resp_body;
	if (c->streaming) {
		x->streamed += len;
		c->spans[c->n_spans++] = (struct iovec){ (void *)at, len };
		if (c->n_spans == UPSTREAM_STREAM_SPANS && hand_spans(c) < 0) {
			c->fail = UPSTREAM_BAD_RESPONSE;
			return -1;
		}
		return 0;
	}
	if (x->on_data && b->len + len > exchange_limit(c)) { /* a streamed exchange's error answer */
		snprintf(x->error, sizeof(x->error), "the response body exceeds the maximum of %zu bytes",
			 exchange_limit(c));
		c->fail = UPSTREAM_TOO_LARGE;
		return -1;
	}
	if (b->data && at >= b->data && at < b->data + b->cap) {
		/* read straight into the body buffer (conn_on_event): no copy; the
		 * NUL after the body is set when the exchange completes */
		if (at != b->data + b->len)
			memmove(b->data + b->len, at, len);
		b->len += len;
		return 0;
	}
	if (buf_append(&x->resp_body, at, len) < 0) {
		c->fail = UPSTREAM_BAD_RESPONSE;
		snprintf(x->error, sizeof(x->error), "out of memory reading the response");
		return -1;
	}
	return 0;
}

static const struct http_response_callbacks response_callbacks = {
	.on_header = on_header,
	.on_head = on_head,
	.on_body = on_body,
};

/* ---- pools ------------------------------------------------------------- */

struct upstream *upstream_new(struct loop *loop, struct metrics *metrics, uint64_t timeout_ms,
			      size_t max_body_bytes, bool debug)
{
	struct upstream *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->read_buf = malloc(UPSTREAM_STREAM_READ > UPSTREAM_READ_CHUNK ? UPSTREAM_STREAM_READ : UPSTREAM_READ_CHUNK);
	if (!u->read_buf) {
		free(u);
		return NULL;
	}
	struct berth_err err;
	int len = shim_conn_request(SHIM_CONTAINER_PORT, u->shim_request, sizeof(u->shim_request), &err);
	if (len < 0) {
		free(u->read_buf);
		free(u);
		return NULL;
	}
	u->shim_request_len = (size_t)len;
	u->loop = loop;
	u->metrics = metrics;
	u->timeout_ms = timeout_ms;
	u->max_body = max_body_bytes;
	u->debug = debug;
	return u;
}

static void channel_free_deferred(struct loop_defer *d)
{
	struct shim_channel *ch = container_of(d, struct shim_channel, free_defer);
	free(ch);
}

/* Unlinks and closes; the waiting exchange, if any, is the caller's. */
static void channel_close(struct shim_channel *ch)
{
	if (ch->closed)
		return;
	ch->closed = true;
	struct upstream_pool *pool = ch->pool;
	struct loop *loop = pool->u->loop;
	for (struct shim_channel **pp = &pool->channels; *pp; pp = &(*pp)->next)
		if (*pp == ch) {
			*pp = ch->next;
			break;
		}
	if (!ch->busy)
		pool->n_idle_channels--;
	else if (ch->x)
		pool->n_waiting--;
	loop_watch_del(loop, &ch->watch);
	loop_timer_cancel(loop, &ch->timer);
	ipc_reader_free(&ch->reader);
	close(ch->fd);
	ch->fd = -1;
	loop_defer(loop, &ch->free_defer);
}

static void conn_close(struct upstream_conn *c)
{
	struct upstream *u = c->pool->u;
	loop_write_cancel(u->loop, &c->writer);
	loop_watch_del(u->loop, &c->watch);
	loop_timer_cancel(u->loop, &c->timer);
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	loop_defer(u->loop, &c->free_defer);
}

static void conn_free_deferred(struct loop_defer *d)
{
	struct upstream_conn *c = container_of(d, struct upstream_conn, free_defer);
	buf_free(&c->head);
	http_response_free(&c->resp);
	free(c);
}

static void pool_remove_idle(struct upstream_pool *pool, struct upstream_conn *c)
{
	for (struct upstream_conn **pp = &pool->idle; *pp; pp = &(*pp)->next_idle)
		if (*pp == c) {
			*pp = c->next_idle;
			pool->n_idle--;
			return;
		}
}

static void pool_free(struct upstream_pool *pool)
{
	while (pool->idle) {
		struct upstream_conn *c = pool->idle;
		pool->idle = c->next_idle;
		conn_close(c);
	}
	while (pool->channels) /* no exchange waits here any more (prune, teardown) */
		channel_close(pool->channels);
	free(pool->socket);
	free(pool);
}

void upstream_free(struct upstream *u)
{
	if (!u)
		return;
	while (u->pools) {
		struct upstream_pool *p = u->pools;
		u->pools = p->next;
		pool_free(p);
	}
	free(u->read_buf);
	free(u);
}

static struct upstream_pool *pool_get(struct upstream *u, const char *socket_path)
{
	struct upstream_pool **pp = &u->pools;
	for (struct upstream_pool *p = u->pools; p; pp = &p->next, p = p->next)
		if (strcmp(p->socket, socket_path) == 0) {
			if (p != u->pools) { /* move to front: hot pools are found first */
				*pp = p->next;
				p->next = u->pools;
				u->pools = p;
			}
			return p;
		}
	struct upstream_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->socket = strdup(socket_path);
	if (!p->socket) {
		free(p);
		return NULL;
	}
	p->u = u;
	p->next = u->pools;
	u->pools = p;
	return p;
}

static bool table_has_socket(const struct route_table *t, const char *socket_path)
{
	for (size_t e = 0; e < t->n_endpoints; e++) {
		const struct route_endpoint *ep = &t->endpoints[e];
		for (size_t v = 0; v < ep->n_variants; v++)
			for (size_t i = 0; i < ep->variants[v].n_instances; i++) {
				const struct route_instance *in = &ep->variants[v].instances[i];
				for (size_t c = 0; c < in->n_containers; c++)
					if (strcmp(in->containers[c].socket, socket_path) == 0)
						return true;
			}
	}
	return false;
}

void upstream_prune(struct upstream *u, const struct route_table *table)
{
	struct upstream_pool **pp = &u->pools;
	while (*pp) {
		struct upstream_pool *p = *pp;
		if (p->n_busy == 0 && p->n_waiting == 0 && !table_has_socket(table, p->socket)) {
			*pp = p->next;
			pool_free(p);
		} else
			pp = &p->next;
	}
}

/* A connection on fd, a socket the shim passed (its blocking mode is the
 * shim's: made non-blocking here). Takes fd. NULL with msg filled. */
static struct upstream_conn *conn_from_fd(struct upstream_pool *pool, int fd, char *msg, size_t msg_len)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		snprintf(msg, msg_len, "fcntl: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct upstream_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		snprintf(msg, msg_len, "out of memory");
		return NULL;
	}
	c->pool = pool;
	c->fd = fd;
	http_response_init(&c->resp, &response_callbacks, c, UPSTREAM_MAX_HEAD, pool->u->max_body);
	loop_watch_init(&c->watch, conn_on_event);
	c->watch.batch_read = true; /* conn_on_event reads with loop_read */
	loop_timer_init(&c->timer, conn_on_timer);
	loop_defer_init(&c->free_defer, conn_free_deferred);
	loop_write_init(&c->writer, fd, conn_writer_prepare, conn_writer_complete);
	struct berth_err err;
	if (loop_watch_add(pool->u->loop, &c->watch, fd, EPOLLIN | EPOLLRDHUP, &err) < 0) {
		snprintf(msg, msg_len, "%.300s", err.msg);
		close(fd);
		free(c);
		return NULL;
	}
	pool->u->metrics->upstream_opened++;
	return c;
}

/* ---- shim channels: the "connect" exchange, asynchronously -------------- */


static void channel_on_event(struct loop_watch *w, uint32_t events);
static void channel_on_timer(struct loop_timer *t);

/* A new channel (non-blocking unix connect: immediate or refused). NULL
 * with msg filled. */
static struct shim_channel *channel_open(struct upstream_pool *pool, char *msg, size_t msg_len)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(pool->socket) >= sizeof(addr.sun_path)) {
		snprintf(msg, msg_len, "shim socket path %s is too long", pool->socket);
		return NULL;
	}
	strcpy(addr.sun_path, pool->socket);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(msg, msg_len, "socket: %s", strerror(errno));
		return NULL;
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) {
		snprintf(msg, msg_len, "cannot reach the container's shim at %s: %s%s", pool->socket, strerror(errno),
			 errno == EAGAIN ? " (its connection backlog is full)" : "");
		close(fd);
		return NULL;
	}
	struct shim_channel *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		close(fd);
		snprintf(msg, msg_len, "out of memory");
		return NULL;
	}
	ch->pool = pool;
	ch->fd = fd;
	ipc_reader_init(&ch->reader, fd);
	loop_watch_init(&ch->watch, channel_on_event);
	loop_timer_init(&ch->timer, channel_on_timer);
	loop_defer_init(&ch->free_defer, channel_free_deferred);
	struct berth_err err;
	if (loop_watch_add(pool->u->loop, &ch->watch, fd, EPOLLIN | EPOLLRDHUP, &err) < 0) {
		snprintf(msg, msg_len, "%.300s", err.msg);
		close(fd);
		free(ch);
		return NULL;
	}
	ch->next = pool->channels;
	pool->channels = ch;
	pool->n_idle_channels++;
	return ch;
}

/* Writes what is left of the request. 0, or -1 (errno) when the channel is broken. */
static int channel_write(struct shim_channel *ch)
{
	const struct upstream *u = ch->pool->u;
	while (ch->sent < u->shim_request_len) {
		ssize_t n = send(ch->fd, u->shim_request + ch->sent, u->shim_request_len - ch->sent,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return loop_watch_mod(ch->pool->u->loop, &ch->watch, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
			return -1;
		}
		ch->sent += (size_t)n;
	}
	return loop_watch_mod(ch->pool->u->loop, &ch->watch, EPOLLIN | EPOLLRDHUP);
}

/* Puts x on ch and sends the request. 0, or -1 (errno) on a broken channel
 * (x is then detached again). */
static int channel_start(struct shim_channel *ch, struct upstream_exchange *x)
{
	struct upstream_pool *pool = ch->pool;
	ch->busy = true;
	pool->n_idle_channels--;
	ch->x = x;
	ch->sent = 0;
	x->shim_channel = ch;
	pool->n_waiting++;
	loop_timer_arm_ms(pool->u->loop, &ch->timer, UPSTREAM_SHIM_TIMEOUT_MS);
	if (channel_write(ch) == 0)
		return 0;
	ch->x = NULL;
	x->shim_channel = NULL;
	pool->n_waiting--;
	return -1;
}

/* Asks the shim for a connection for x on an idle channel (a stale one is
 * dropped and a fresh one tried) or a new one. 0: waiting; -1: x->result
 * and x->error set, done not called. */
static int shim_request(struct upstream_pool *pool, struct upstream_exchange *x)
{
	for (;;) {
		struct shim_channel *ch = NULL;
		for (struct shim_channel *it = pool->channels; it; it = it->next)
			if (!it->busy) {
				ch = it;
				break;
			}
		bool fresh = ch == NULL;
		if (fresh && !(ch = channel_open(pool, x->error, sizeof(x->error)))) {
			x->result = UPSTREAM_UNAVAILABLE;
			return -1;
		}
		if (channel_start(ch, x) == 0)
			return 0;
		int e = errno;
		channel_close(ch);
		if (!fresh)
			continue; /* the shim restarted since: that channel was stale */
		x->result = UPSTREAM_UNAVAILABLE;
		snprintf(x->error, sizeof(x->error), "writing to the shim at %s: %s", pool->socket, strerror(e));
		return -1;
	}
}

/* The shim's answer (or its absence) for the exchange on ch. */
static void channel_answered(struct shim_channel *ch, const char *line, size_t len, int fd)
{
	struct upstream_pool *pool = ch->pool;
	struct upstream_exchange *x = ch->x;
	ch->busy = false;
	ch->used = true;
	ch->x = NULL;
	loop_timer_cancel(pool->u->loop, &ch->timer);
	pool->n_idle_channels++;
	if (x) {
		pool->n_waiting--;
		x->shim_channel = NULL;
	}
	struct berth_err err;
	int conn = -1; /* decoded before a close frees line; fd is taken over */
	int answered = shim_conn_answer(pool->socket, line, len, fd, &conn, &err);
	if (pool->n_idle_channels > UPSTREAM_SHIM_IDLE_CHANNELS)
		channel_close(ch);
	char msg[512];
	if (answered == 0) {
		struct upstream_conn *c = conn_from_fd(pool, conn, msg, sizeof(msg));
		if (!c) {
			if (x) {
				x->result = UPSTREAM_UNAVAILABLE;
				snprintf(x->error, sizeof(x->error), "%s", msg);
				exchange_give_up(x);
			}
			return;
		}
		if (!x) { /* its caller went away meanwhile: the connection is pooled */
			if (pool->n_idle >= UPSTREAM_MAX_IDLE_PER_POOL) {
				conn_close(c);
				return;
			}
			loop_timer_arm_ms(pool->u->loop, &c->timer, UPSTREAM_IDLE_TIMEOUT_MS);
			c->next_idle = pool->idle;
			pool->idle = c;
			pool->n_idle++;
			return;
		}
		c->reused = false;
		if (send_on(c, x) == 0)
			return;
		int e = errno;
		conn_finish(c, false);
		x->result = UPSTREAM_RESET;
		snprintf(x->error, sizeof(x->error), "%s while sending the request", strerror(e));
		exchange_give_up(x);
		return;
	}
	if (x) {
		x->result = UPSTREAM_UNAVAILABLE;
		snprintf(x->error, sizeof(x->error), "%.500s", err.msg);
		exchange_give_up(x);
	}
}

/* The channel broke (EOF, error) or the shim did not answer in time. */
static void channel_fail(struct shim_channel *ch, const char *what, bool may_retry)
{
	struct upstream_pool *pool = ch->pool;
	struct upstream_exchange *x = ch->x;
	bool stale = ch->used; /* answered before: the shim may have restarted since */
	channel_close(ch);     /* counts x out of n_waiting */
	if (!x)
		return;
	x->shim_channel = NULL;
	if (may_retry && stale && !x->retried) {
		x->retried = true;
		if (shim_request(pool, x) == 0)
			return;
		exchange_give_up(x);
		return;
	}
	x->result = UPSTREAM_UNAVAILABLE;
	snprintf(x->error, sizeof(x->error), "%s", what);
	exchange_give_up(x);
}

static void channel_on_timer(struct loop_timer *t)
{
	struct shim_channel *ch = container_of(t, struct shim_channel, timer);
	char what[512];
	ch->pool->u->metrics->shim_connect_timeouts++;
	snprintf(what, sizeof(what), "the shim at %s did not hand over a connection within %d ms", ch->pool->socket,
		 UPSTREAM_SHIM_TIMEOUT_MS);
	log_warn("%s", what);
	channel_fail(ch, what, false);
}

static void channel_on_event(struct loop_watch *w, uint32_t events)
{
	struct shim_channel *ch = container_of(w, struct shim_channel, watch);
	char what[512];
	if ((events & EPOLLOUT) && ch->busy && channel_write(ch) < 0) {
		snprintf(what, sizeof(what), "writing to the shim at %s: %s", ch->pool->socket, strerror(errno));
		channel_fail(ch, what, true);
		return;
	}
	if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		return;
	for (int rounds = 0; rounds < 4 && !ch->closed; rounds++) {
		const char *line;
		size_t len;
		int fd = -1;
		struct berth_err err;
		int r = ipc_read_nonblock(&ch->reader, &line, &len, &fd, &err);
		if (r == -2)
			return;
		if (r == 1 && ch->busy) {
			channel_answered(ch, line, len, fd);
			continue;
		}
		if (fd >= 0)
			close(fd);
		if (r == 1) { /* an answer nobody asked for: the channel is out of step */
			snprintf(what, sizeof(what), "unexpected message from the shim at %s", ch->pool->socket);
			channel_fail(ch, what, true);
			return;
		}
		snprintf(what, sizeof(what), "the shim at %s did not answer: %.200s", ch->pool->socket,
			 r == 0 ? "connection closed" : err.msg);
		channel_fail(ch, what, true);
		return;
	}
}

/* ---- exchanges --------------------------------------------------------- */

static void build_head(struct upstream_conn *c, const struct upstream_exchange *x)
{
	struct berth_buf *h = &c->head;
	buf_reset(h);
	buf_append_str(h, "POST ");
	buf_append_str(h, x->path ? x->path : "/invocations");
	buf_append_str(h, " HTTP/1.1\r\nHost: ");
	buf_append_str(h, x->hostname);
	buf_append_str(h, "\r\nContent-Length: ");
	buf_append_u64(h, x->body_len);
	buf_append(h, "\r\n", 2);
#define HEADER(name, value)                        \
	if (value) {                                   \
		buf_append_str(h, name ": ");              \
		buf_append_str(h, value);                  \
		buf_append(h, "\r\n", 2);                  \
	}
	HEADER("Content-Type", x->content_type);
	HEADER("Accept", x->accept);
	HEADER("X-Amzn-SageMaker-Custom-Attributes", x->custom_attributes);
	HEADER("X-Amzn-SageMaker-Inference-Id", x->inference_id);
	HEADER("X-Amzn-SageMaker-Target-Model", x->target_model);
	HEADER(SESSION_ID_HEADER, x->session_id);
#undef HEADER
	buf_append(h, "\r\n", 2);
}

/* The vectors of the request still to be written: head, then body. */
static int conn_pending(const struct upstream_conn *c, struct iovec *iov)
{
	const struct upstream_exchange *x = c->x;
	size_t head_len = c->head.len;
	int n_iov = 0;
	if (c->written < head_len)
		iov[n_iov++] = (struct iovec){ c->head.data + c->written, head_len - c->written };
	size_t body_off = c->written > head_len ? c->written - head_len : 0;
	if (x->body_len > body_off)
		iov[n_iov++] = (struct iovec){ (void *)(x->body + body_off), x->body_len - body_off };
	return n_iov;
}

/* Writes what it can. 0: all written or waiting for EPOLLOUT; -1: error (errno). */
static int conn_write(struct upstream_conn *c)
{
	struct upstream_exchange *x = c->x;
	size_t total = c->head.len + x->body_len;
	while (c->written < total) {
		struct iovec iov[2];
		int n_iov = conn_pending(c, iov);
		ssize_t n = writev(c->fd, iov, n_iov);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return loop_watch_mod(c->pool->u->loop, &c->watch,
						      (c->paused ? 0 : EPOLLIN | EPOLLRDHUP) | EPOLLOUT);
			return -1;
		}
		c->written += (size_t)n;
	}
	/* all sent: reading, unless a streamed answer is paused (upstream_resume) */
	return loop_watch_mod(c->pool->u->loop, &c->watch, c->paused ? 0 : EPOLLIN | EPOLLRDHUP);
}

/* The request's first write goes with the loop turn's batch (loop.h). */
static int conn_writer_prepare(struct loop_write *w, struct iovec *iov)
{
	struct upstream_conn *c = container_of(w, struct upstream_conn, writer);
	return c->x ? conn_pending(c, iov) : 0;
}

static void conn_writer_complete(struct loop_write *w, ssize_t result)
{
	struct upstream_conn *c = container_of(w, struct upstream_conn, writer);
	if (!c->x)
		return;
	if (result > 0)
		c->written += (size_t)result;
	/* the rest, if any, and EPOLLOUT as for a direct write */
	if ((result < 0 && result != -EAGAIN && result != -EINTR) || conn_write(c) < 0) {
		char what[256];
		snprintf(what, sizeof(what), "%s while sending the request",
			 strerror(result < 0 && result != -EAGAIN && result != -EINTR ? (int)-result : errno));
		/* a stale pooled connection is retried once on a fresh one */
		exchange_fail(c, UPSTREAM_RESET, what);
	}
}

static void exchange_reset_result(struct upstream_exchange *x)
{
	x->result = UPSTREAM_OK;
	x->status = 0;
	buf_reset(&x->resp_body);
	x->resp_content_type[0] = '\0';
	x->resp_custom_attributes[0] = '\0';
	x->has_resp_custom_attributes = false;
	x->resp_new_session[0] = '\0';
	x->resp_closed_session[0] = '\0';
	x->resp_content_length = UINT64_MAX;
	x->error[0] = '\0';
	x->streamed = 0;
}

/* Binds x to c and sends. 0 or -1 (errno from the write). */
static int send_on(struct upstream_conn *c, struct upstream_exchange *x)
{
	struct upstream *u = c->pool->u;
	c->x = x;
	x->conn = c;
	c->got_bytes = false;
	c->body_direct = false; /* set once this exchange's answer head is parsed */
	c->streaming = c->paused = false;
	c->n_spans = 0;
	c->fail = UPSTREAM_OK;
	c->written = 0;
	c->pool->n_busy++;
	http_response_reset(&c->resp);
	http_response_set_limits(&c->resp, UPSTREAM_MAX_HEAD, parser_limit(c));
	build_head(c, x);
	loop_timer_arm_at(u->loop, &c->timer, x->start_ns + u->timeout_ms * 1000000ull);
	/* sent with the other writes of this loop turn; a failure then goes
	 * through exchange_fail (a stale pooled connection is retried) */
	loop_write_queue(u->loop, &c->writer);
	return 0;
}

/* Detaches the exchange; closes the connection or keeps it for reuse. */
static void conn_finish(struct upstream_conn *c, bool reusable)
{
	struct upstream_pool *pool = c->pool;
	struct upstream *u = pool->u;
	if (c->x) {
		c->x->conn = NULL;
		c->x = NULL;
		pool->n_busy--;
	}
	loop_write_cancel(u->loop, &c->writer);
	if (!reusable || pool->n_idle >= UPSTREAM_MAX_IDLE_PER_POOL) {
		conn_close(c);
		return;
	}
	c->reused = false;
	loop_watch_mod(u->loop, &c->watch, EPOLLIN | EPOLLRDHUP);
	loop_timer_arm_ms(u->loop, &c->timer, UPSTREAM_IDLE_TIMEOUT_MS);
	c->next_idle = pool->idle;
	pool->idle = c;
	pool->n_idle++;
}

/* Sends x on a pooled connection (unless fresh_only), else asks the shim
 * for a new one (x waits; send_on follows the answer). 0: in flight or
 * waiting; -1: x->result/x->error set. */
static int attach_and_send(struct upstream_pool *pool, struct upstream_exchange *x, bool fresh_only)
{
	struct upstream *u = pool->u;
	if (!fresh_only && pool->idle) {
		struct upstream_conn *c = pool->idle;
		pool->idle = c->next_idle;
		pool->n_idle--;
		c->reused = true;
		if (send_on(c, x) == 0) {
			u->metrics->upstream_reused++;
			return 0;
		}
		int e = errno;
		conn_finish(c, false);
		if (x->retried) {
			x->result = UPSTREAM_RESET;
			snprintf(x->error, sizeof(x->error), "%s while sending the request", strerror(e));
			return -1;
		}
		/* a stale pooled connection: once more on a fresh one */
		x->retried = true;
		u->metrics->upstream_retries++;
	}
	return shim_request(pool, x);
}

int upstream_start(struct upstream *u, struct upstream_exchange *x)
{
	exchange_reset_result(x);
	x->conn = NULL;
	x->shim_channel = NULL;
	x->retried = false;
	x->start_ns = clock_now_ns();
	x->end_ns = 0;
	struct upstream_pool *pool = pool_get(u, x->shim_socket);
	if (!pool) {
		x->result = UPSTREAM_UNAVAILABLE;
		snprintf(x->error, sizeof(x->error), "out of memory");
		return -1;
	}
	int r = attach_and_send(pool, x, false);
	if (r < 0)
		x->end_ns = clock_now_ns();
	return r;
}

void upstream_cancel(struct upstream *u, struct upstream_exchange *x)
{
	(void)u;
	if (x->shim_channel) { /* the shim's answer, when it comes, goes to the pool */
		x->shim_channel->x = NULL;
		x->shim_channel->pool->n_waiting--;
		x->shim_channel = NULL;
	}
	if (x->conn)
		conn_finish(x->conn, false); /* mid-exchange: never reused */
}

void upstream_resume(struct upstream *u, struct upstream_exchange *x)
{
	struct upstream_conn *c = x->conn;
	if (!c || !c->paused)
		return;
	c->paused = false;
	/* level-triggered: what waits in the socket is reported at once */
	loop_watch_mod(u->loop, &c->watch, EPOLLIN | EPOLLRDHUP | (request_unsent(c) ? EPOLLOUT : 0));
}

static void exchange_complete(struct upstream_conn *c, enum upstream_result result, bool reusable)
{
	struct upstream_exchange *x = c->x;
	x->result = result;
	x->end_ns = clock_now_ns();
	if (x->resp_body.data)
		x->resp_body.data[x->resp_body.len] = '\0'; /* after direct reads (on_body) */
	conn_finish(c, reusable);
	x->done(x);
}

/* The connection failed mid-exchange: retry once when it was a stale
 * pooled connection that never answered, else report. */
static void exchange_fail(struct upstream_conn *c, enum upstream_result result, const char *what)
{
	struct upstream_exchange *x = c->x;
	struct upstream_pool *pool = c->pool;
	if (result == UPSTREAM_RESET && c->reused && !c->got_bytes && !x->retried) {
		x->retried = true;
		pool->u->metrics->upstream_retries++;
		conn_finish(c, false);
		if (attach_and_send(pool, x, true) == 0)
			return;
		exchange_give_up(x);
		return;
	}
	if (what)
		snprintf(x->error, sizeof(x->error), "%s", what);
	exchange_complete(c, result, false);
}

static void conn_on_timer(struct loop_timer *t)
{
	struct upstream_conn *c = container_of(t, struct upstream_conn, timer);
	if (!c->x) { /* idle too long */
		pool_remove_idle(c->pool, c);
		conn_close(c);
		return;
	}
	c->pool->u->metrics->upstream_timeouts++;
	exchange_complete(c, UPSTREAM_TIMEOUT, false);
}

/* Feeds bytes to the parser (len 0: EOF); completes the exchange when it can. */
static void conn_parse(struct upstream_conn *c, const char *data, size_t len)
{
	struct upstream_exchange *x = c->x;
	size_t used = 0;
	enum http_response_result res = http_response_feed(&c->resp, data, len, &used);
	char what[256];
	if (c->x != x) /* cancelled during a callback (streaming) */
		return;
	/* what this read brought of a streamed body goes on now, before the
	 * answer completes or fails (the pieces point into the read buffer) */
	if (c->n_spans > 0 && hand_spans(c) < 0) {
		exchange_complete(c, UPSTREAM_BAD_RESPONSE, false);
		return;
	}
	switch (res) {
	case HTTP_RESPONSE_MORE:
		return;
	case HTTP_RESPONSE_DONE:
		c->body_direct = false;
		/* bytes after the answer: the container misbehaves, never reuse */
		exchange_complete(c, UPSTREAM_OK, http_response_keep_alive(&c->resp) && used == len && len != 0);
		return;
	case HTTP_RESPONSE_BODY_TOO_LARGE:
		x->status = http_response_status(&c->resp);
		x->resp_content_length = http_response_content_length(&c->resp);
		snprintf(x->error, sizeof(x->error), "the response body exceeds the maximum of %zu bytes",
			 exchange_limit(c));
		exchange_complete(c, UPSTREAM_TOO_LARGE, false);
		return;
	case HTTP_RESPONSE_STOPPED:
		exchange_complete(c, c->fail, false);
		return;
	case HTTP_RESPONSE_EARLY_EOF:
		exchange_fail(c, UPSTREAM_RESET,
			      "Connection reset by peer: the container closed the connection before sending a complete response");
		return;
	case HTTP_RESPONSE_MALFORMED:
	case HTTP_RESPONSE_HEAD_TOO_LARGE:
		http_response_describe(&c->resp, res, what, sizeof(what));
		exchange_fail(c, UPSTREAM_BAD_RESPONSE, what);
		return;
	}
}

static void conn_on_event(struct loop_watch *w, uint32_t events)
{
	struct upstream_conn *c = container_of(w, struct upstream_conn, watch);
	struct upstream *u = c->pool->u;
	if (!c->x) { /* idle: any event means the container closed it (or misbehaves) */
		pool_remove_idle(c->pool, c);
		conn_close(c);
		return;
	}
	if ((events & EPOLLOUT) && c->written < c->head.len + c->x->body_len) {
		if (conn_write(c) < 0) {
			char what[256];
			snprintf(what, sizeof(what), "%s while sending the request", strerror(errno));
			exchange_fail(c, UPSTREAM_RESET, what);
			return;
		}
	}
	if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)))
		return;
	size_t event_bytes = 0;
	for (int rounds = 0; rounds < 16 && event_bytes < UPSTREAM_EVENT_BYTES; rounds++) {
		/* In a Content-Length body, read into the body buffer itself
		 * (reserved at the head): the bytes are never copied in the router. */
		struct berth_buf *rb = &c->x->resp_body;
		char *dst = u->read_buf;
		size_t room = c->streaming ? UPSTREAM_STREAM_READ : UPSTREAM_READ_CHUNK;
		if (c->body_direct && rb->data && rb->cap - rb->len - 1 >= 4096) {
			dst = rb->data + rb->len;
			room = rb->cap - rb->len - 1;
		}
		ssize_t n = loop_read(u->loop, &c->watch, dst, room);
		if (n > 0) {
			c->got_bytes = true;
			event_bytes += (size_t)n;
			conn_parse(c, dst, (size_t)n);
			if (c->x == NULL || c->x->conn != c)
				return; /* completed (and maybe freed) */
			if (c->paused)
				return; /* back-pressure (on_body): resumed by upstream_resume */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n == 0) {
			/* EOF: completes a body delimited by the close, else a reset */
			conn_parse(c, NULL, 0);
			return;
		}
		char what[256];
		snprintf(what, sizeof(what), "%s%s", strerror(errno),
			 errno == ECONNRESET ? ": the container reset the connection before sending a complete response" : "");
		exchange_fail(c, UPSTREAM_RESET, what);
		return;
	}
}
