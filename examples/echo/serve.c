/* serve.c — the echo serving container: a small, static, single-threaded
 * HTTP/1.1 server that follows SageMaker's container contract
 * (CONTRACT.md §4) and whose behaviour is chosen by environment variables
 * (see README.md beside this file). It is the baseline of router benchmarks,
 * so it is built for speed: one epoll loop, non-blocking sockets, keep-alive
 * and pipelining, a response in one writev, echo bodies never copied.
 *
 * Deliberately self-contained (no libraries beyond libc) so that it links
 * statically and runs alone in a bare rootfs.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADER_BYTES (64u << 10)       /* request line + headers */
#define MAX_BODY_DEFAULT (16u << 20)       /* ECHO_MAX_BODY overrides */
#define MAX_MODEL_FILE (64u << 20)
#define IN_BUF_INITIAL (16u << 10)
#define IN_BUF_KEEP (256u << 10)           /* idle buffers above this are freed */
#define READ_SPIN 16                       /* reads per readiness event */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum echo_mode { MODE_ECHO, MODE_UPPER, MODE_HOSTNAME, MODE_FAIL, MODE_RESET, MODE_HANG, MODE_MODEL, MODE_HEADERS,
		 MODE_ENV, MODE_FILE, MODE_ALLOC, MODE_FORK, MODE_PROBE, MODE_COUNT, MODE_SESSION };

static const char *const mode_names[] = { "echo", "upper", "hostname", "fail", "reset", "hang", "model", "headers",
					  "env", "file", "alloc", "fork", "probe", "count", "session" };

static long long echo_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* How answers are put on the wire (ECHO_PING_FORM, ECHO_ANSWER_FORM), to
 * test the HTTP clients that read them: Content-Length (plain); chunked
 * in small chunks with an extension and a trailer; delimited by the close;
 * a head of 100 KiB; an invalid status line. */
enum answer_form { FORM_PLAIN, FORM_CHUNKED, FORM_CLOSE, FORM_BIGHEAD, FORM_BADSTATUS };

static const char *const form_names[] = { "plain", "chunked", "close", "bighead", "badstatus" };

#define BIGHEAD_PADDING (100u << 10)
#define FORM_CHUNK 1000 /* body bytes per chunk in FORM_CHUNKED */

struct server_config {
	enum echo_mode mode;
	int ping_status;
	long long ping_fail_at_ms; /* ECHO_PING_FAIL_AFTER: /ping answers 500 from then on (0: never) */
	long long ping_ok_at_ms;   /* ECHO_PING_OK_AFTER: /ping answers 503 until then (0: at once) */
	int fail_status;
	const char *fail_body;
	size_t fail_body_len;
	char model_path[256];      /* /opt/ml/model/ECHO_MODEL_FILE */
	size_t max_body;
	char hostname[256];
	size_t hostname_len;
	const char *accept_content_type; /* ECHO_ACCEPT_CONTENT_TYPE: others get 415 */
	const char *content_type;        /* ECHO_CONTENT_TYPE: the answer's Content-Type */
	const char *extra_header;        /* ECHO_EXTRA_HEADER: "Name: value" on /invocations answers */
	enum answer_form ping_form;      /* ECHO_PING_FORM: how /ping answers are written */
	enum answer_form answer_form;    /* ECHO_ANSWER_FORM: how every other answer is written */
	const char *stream;              /* ECHO_STREAM: streams 2xx answers (a spec, below) */
};

struct echo_stream;
struct conn;
static void stream_free(struct conn *c, const char *why);

struct conn {
	struct server *srv;
	int fd;
	struct echo_stream *stream; /* a streamed answer being written */
	char *in;           /* received bytes; [in_off, in_len) not yet parsed */
	size_t in_len, in_cap, in_off;
	char *out;          /* bytes a writev could not send; [out_off, out_len) */
	size_t out_len, out_cap, out_off;
	bool continue_sent; /* "100 Continue" sent for the request being received */
	bool close_after;   /* close once out is drained */
	bool hung;          /* hang mode: never answer again, discard input */
	enum answer_form form; /* of the answer to the request being handled */
	uint32_t events;    /* currently registered epoll events */
};

struct echo_models; /* SAGEMAKER_MULTI_MODEL=true: the model API (below) */

struct server {
	const struct server_config *cfg;
	struct echo_models *models; /* NULL unless SAGEMAKER_MULTI_MODEL=true */
	int epfd;
	int listen_fd;
	int signal_fd;
	struct conn **conns; /* indexed by fd */
	size_t n_conns;
	unsigned long long invocations; /* /invocations requests received whole */
	size_t n_streams;               /* connections writing a streamed answer */
};

/* One parsed request; pointers point into the connection's input buffer. */
struct request {
	const char *method; size_t method_len;
	const char *path; size_t path_len;
	const char *content_type; size_t content_type_len;
	const char *accept; size_t accept_len;
	const char *custom_attributes; size_t custom_attributes_len;
	const char *session_id; size_t session_id_len; /* X-Amzn-SageMaker-Session-Id */
	const char *reply_attributes; size_t reply_attributes_len; /* X-Amzn-SageMaker-Custom-Attributes back */
	const char *extra_header; /* a whole "Name: value" line (no CRLF), or NULL */
	char *body; size_t body_len;
	size_t total_len; /* bytes of input this request occupies */
	bool keep_alive;
	bool head;
};

/* ---- small helpers ------------------------------------------------------- */

static const char *status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 424: return "Failed Dependency";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 507: return "Insufficient Storage";
	default: return "Status";
	}
}

static int env_status(const char *name, int fallback)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return fallback;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || n < 100 || n > 599) {
		fprintf(stderr, "echo: ignoring %s=%s (want 100..599)\n", name, v);
		return fallback;
	}
	return (int)n;
}

static int env_form(const char *name, enum answer_form *form)
{
	const char *v = getenv(name);
	*form = FORM_PLAIN;
	if (!v || !*v)
		return 0;
	for (size_t i = 0; i < ARRAY_LEN(form_names); i++)
		if (strcmp(v, form_names[i]) == 0) {
			*form = (enum answer_form)i;
			return 0;
		}
	fprintf(stderr, "echo: unknown %s=%s (plain|chunked|close|bighead|badstatus)\n", name, v);
	return -1;
}

static bool token_eq(const char *s, size_t len, const char *lit)
{
	size_t n = strlen(lit);
	return len == n && strncasecmp(s, lit, n) == 0;
}

/* Does a comma-separated header value contain token (case-insensitive)? */
static bool header_has_token(const char *v, size_t len, const char *token)
{
	size_t i = 0;
	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		size_t start = i;
		while (i < len && v[i] != ',')
			i++;
		size_t end = i;
		while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
			end--;
		if (token_eq(v + start, end - start, token))
			return true;
	}
	return false;
}

static void *memmem_crlfcrlf(const char *p, size_t len)
{
	return memmem(p, len, "\r\n\r\n", 4);
}

/* ---- connections --------------------------------------------------------- */

static int conn_set_events(struct server *s, struct conn *c, uint32_t events)
{
	if (c->events == events)
		return 0;
	struct epoll_event ev = { .events = events, .data.fd = c->fd };
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		return -1;
	c->events = events;
	return 0;
}

static void conn_close(struct server *s, struct conn *c, bool reset)
{
	if (reset) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	stream_free(c, "the connection closed");
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	s->conns[c->fd] = NULL;
	free(c->in);
	free(c->out);
	free(c);
}

static int buf_ensure(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : IN_BUF_INITIAL;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return -1;
		n *= 2;
	}
	char *p = realloc(*buf, n);
	if (!p)
		return -1;
	*buf = p;
	*cap = n;
	return 0;
}

/* Queues bytes the socket did not take. */
static int conn_queue(struct conn *c, const struct iovec *iov, int n, size_t skip)
{
	for (int i = 0; i < n; i++) {
		size_t len = iov[i].iov_len;
		const char *p = iov[i].iov_base;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		p += skip;
		len -= skip;
		skip = 0;
		if (buf_ensure(&c->out, &c->out_cap, c->out_len + len) < 0)
			return -1;
		memcpy(c->out + c->out_len, p, len);
		c->out_len += len;
	}
	return 0;
}

/* Sends a response: one writev when nothing is queued; the rest is queued. */
static int conn_send(struct conn *c, const struct iovec *iov, int n)
{
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += iov[i].iov_len;
	if (c->out_len > c->out_off)
		return conn_queue(c, iov, n, 0);
	c->out_len = c->out_off = 0;
	ssize_t w;
	do
		w = writev(c->fd, iov, n);
	while (w < 0 && errno == EINTR);
	if (w < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		w = 0;
	}
	if ((size_t)w == total)
		return 0;
	return conn_queue(c, iov, n, (size_t)w);
}

/* An answer in one of the test forms (enum answer_form), built whole. */
static int send_in_form(struct conn *c, int status, const char *ctype, size_t ctype_len,
			const struct iovec *body, int n_body, size_t body_len)
{
	size_t cap = 1024 + BIGHEAD_PADDING + body_len + (body_len / FORM_CHUNK + 1) * 32;
	char *out = malloc(cap);
	if (out == NULL)
		return -1;
	char code[16];
	snprintf(code, sizeof(code), c->form == FORM_BADSTATUS ? "2x0" : "%d", status);
	size_t n = (size_t)snprintf(out, cap, "HTTP/1.1 %s %s\r\nContent-Type: %.*s\r\n", code, status_text(status),
				    (int)ctype_len, ctype);
	if (c->form == FORM_BIGHEAD) {
		memcpy(out + n, "X-Padding: ", 11);
		n += 11;
		memset(out + n, 'p', BIGHEAD_PADDING);
		n += BIGHEAD_PADDING;
		memcpy(out + n, "\r\n", 2);
		n += 2;
	}
	if (c->form == FORM_CHUNKED)
		n += (size_t)snprintf(out + n, cap - n, "Transfer-Encoding: chunked\r\n\r\n");
	else if (c->form == FORM_CLOSE) {
		n += (size_t)snprintf(out + n, cap - n, "Connection: close\r\n\r\n");
		c->close_after = true;
	} else
		n += (size_t)snprintf(out + n, cap - n, "Content-Length: %zu\r\n%s\r\n", body_len,
				      c->close_after ? "Connection: close\r\n" : "");
	/* the body, cut in FORM_CHUNK pieces across the iovecs when chunked */
	size_t in_chunk = 0, chunk_no = 0;
	for (int i = 0; i < n_body; i++) {
		const char *p = body[i].iov_base;
		for (size_t left = body[i].iov_len; left > 0;) {
			size_t take = left;
			if (c->form == FORM_CHUNKED) {
				if (in_chunk == 0) {
					size_t rest = body_len - chunk_no * FORM_CHUNK;
					size_t size = rest < FORM_CHUNK ? rest : FORM_CHUNK;
					n += (size_t)snprintf(out + n, cap - n, "%zx%s\r\n", size,
							      chunk_no == 0 ? ";first=\"yes\"" : "");
					in_chunk = size;
				}
				if (take > in_chunk)
					take = in_chunk;
			}
			memcpy(out + n, p, take);
			n += take;
			p += take;
			left -= take;
			if (c->form == FORM_CHUNKED && (in_chunk -= take) == 0) {
				memcpy(out + n, "\r\n", 2);
				n += 2;
				chunk_no++;
			}
		}
	}
	if (c->form == FORM_CHUNKED)
		n += (size_t)snprintf(out + n, cap - n, "0\r\nX-Echo-Trailer: done\r\n\r\n");
	struct iovec iov = { out, n };
	int r = conn_send(c, &iov, 1);
	free(out);
	return r;
}

static int stream_start(struct conn *c, const struct request *req, int status, const char *ctype,
			size_t ctype_len, const struct iovec *body, int n_body);

static int send_response(struct conn *c, const struct request *req, int status,
			 const char *ctype, size_t ctype_len,
			 const struct iovec *body, int n_body)
{
	char head[768];
	if (req && !req->head && status >= 200 && status <= 299) {
		int r = stream_start(c, req, status, ctype, ctype_len, body, n_body);
		if (r != 1)
			return r; /* streamed (or failed) */
	}
	size_t body_len = 0;
	for (int i = 0; i < n_body; i++)
		body_len += body[i].iov_len;
	if (ctype_len > 200)
		ctype_len = 200; /* bounded echo of the client's header */
	size_t ra_len = req && req->reply_attributes ? req->reply_attributes_len : 0;
	if (ra_len > 200)
		ra_len = 200;
	if (c->form != FORM_PLAIN && !(req && req->head))
		return send_in_form(c, status, ctype, ctype_len, body, n_body, body_len);
	const char *extra = req && req->extra_header ? req->extra_header : NULL;
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\n%s%.*s%s%.200s%s%s\r\n",
			  status, status_text(status), (int)ctype_len, ctype, body_len,
			  ra_len ? "X-Amzn-SageMaker-Custom-Attributes: " : "", (int)ra_len,
			  ra_len ? req->reply_attributes : "", ra_len ? "\r\n" : "", extra ? extra : "",
			  extra ? "\r\n" : "", c->close_after ? "Connection: close\r\n" : "");
	if (hl < 0 || (size_t)hl >= sizeof(head))
		return -1;
	struct iovec iov[8];
	int n = 0;
	iov[n++] = (struct iovec){ head, (size_t)hl };
	if (!(req && req->head))
		for (int i = 0; i < n_body && n < (int)ARRAY_LEN(iov); i++)
			if (body[i].iov_len)
				iov[n++] = body[i];
	return conn_send(c, iov, n);
}
static int send_simple(struct conn *c, const struct request *req, int status, const char *json)
{
	struct iovec b = { (void *)json, strlen(json) };
	return send_response(c, req, status, "application/json", 16, &b, 1);
}

/* ---- streamed answers (README: "Streaming") ------------------------------ */

struct echo_stream {
	long chunks, sent, delay_ms, bytes, reset_after, hang_after;
	bool stamp;
	char *data;      /* the body to cut in chunks, or the byte pattern (bytes=B) */
	size_t data_len, data_off;
	unsigned long long pattern_off;
	long long next_at_ms;
};

/* key=N in a spec "stream=N,delay=MS,..." (separators , ; or space). */
static bool spec_number(const char *spec, size_t len, const char *key, long *out)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i + kl < len; i++) {
		if ((i > 0 && spec[i - 1] != ',' && spec[i - 1] != ';' && spec[i - 1] != ' ') ||
		    memcmp(spec + i, key, kl) != 0 || spec[i + kl] != '=')
			continue;
		long v = 0;
		size_t j = i + kl + 1;
		if (j >= len || !isdigit((unsigned char)spec[j]))
			return false;
		for (; j < len && isdigit((unsigned char)spec[j]) && v < 1000000000L; j++)
			v = v * 10 + (spec[j] - '0');
		*out = v;
		return true;
	}
	return false;
}

static void stream_free(struct conn *c, const char *why)
{
	struct echo_stream *st = c->stream;
	if (!st)
		return;
	if (why) {
		printf("echo: stream ended after %ld of %ld chunks: %s\n", st->sent, st->chunks, why);
		fflush(stdout);
	}
	free(st->data);
	free(st);
	c->stream = NULL;
	c->srv->n_streams--;
}

/* Starts a streamed answer when the request (custom attributes) or
 * ECHO_STREAM asks for one: 1 when not asked, 0 started, -1 error. */
static int stream_start(struct conn *c, const struct request *req, int status, const char *ctype,
			size_t ctype_len, const struct iovec *body, int n_body)
{
	const char *spec = NULL;
	size_t spec_len = 0;
	long n;
	if (req->custom_attributes && spec_number(req->custom_attributes, req->custom_attributes_len, "stream", &n)) {
		spec = req->custom_attributes;
		spec_len = req->custom_attributes_len;
	} else if (c->srv->cfg->stream) {
		spec = c->srv->cfg->stream;
		spec_len = strlen(spec);
	}
	if (!spec || !spec_number(spec, spec_len, "stream", &n) || n < 1)
		return 1;
	struct echo_stream *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	st->chunks = n;
	st->reset_after = st->hang_after = -1;
	spec_number(spec, spec_len, "delay", &st->delay_ms);
	spec_number(spec, spec_len, "bytes", &st->bytes);
	spec_number(spec, spec_len, "reset", &st->reset_after);
	spec_number(spec, spec_len, "hang", &st->hang_after);
	long stamp = 0;
	st->stamp = spec_number(spec, spec_len, "stamp", &stamp) && stamp;
	size_t body_len = 0;
	for (int i = 0; i < n_body; i++)
		body_len += body[i].iov_len;
	st->data_len = st->bytes > 0 ? (size_t)st->bytes + 26 : body_len;
	st->data = malloc(st->data_len ? st->data_len : 1);
	if (!st->data) {
		free(st);
		return -1;
	}
	if (st->bytes > 0)
		for (size_t k = 0; k < st->data_len; k++)
			st->data[k] = (char)('a' + k % 26);
	else
		for (size_t i = 0, off = 0; i < (size_t)n_body; off += body[i].iov_len, i++)
			memcpy(st->data + off, body[i].iov_base, body[i].iov_len);
	char head[768];
	size_t ra_len = req->reply_attributes ? req->reply_attributes_len : 0;
	if (ra_len > 200)
		ra_len = 200;
	const char *extra = req->extra_header;
	int hl = snprintf(head, sizeof(head),
			  "HTTP/1.1 %d %s\r\nContent-Type: %.*s\r\nTransfer-Encoding: chunked\r\n%s%.*s%s%.200s%s%s\r\n",
			  status, status_text(status), (int)(ctype_len > 200 ? 200 : ctype_len), ctype,
			  ra_len ? "X-Amzn-SageMaker-Custom-Attributes: " : "", (int)ra_len,
			  ra_len ? req->reply_attributes : "", ra_len ? "\r\n" : "", extra ? extra : "",
			  extra ? "\r\n" : "", c->close_after ? "Connection: close\r\n" : "");
	if (hl < 0 || (size_t)hl >= sizeof(head)) {
		free(st->data);
		free(st);
		return -1;
	}
	struct iovec iov = { head, (size_t)hl };
	c->stream = st;
	c->srv->n_streams++;
	st->next_at_ms = echo_now_ms();
	return conn_send(c, &iov, 1);
}

/* Writes the chunks that are due while nothing waits in the output queue
 * (the peer's pace bounds what is held). 0, or -2 to reset the connection. */
static int stream_pump(struct conn *c)
{
	long long now = echo_now_ms();
	struct echo_stream *st;
	while ((st = c->stream) && c->out_len == c->out_off && now >= st->next_at_ms) {
		if (st->sent == st->reset_after) {
			stream_free(c, "reset as asked");
			return -2;
		}
		if (st->sent == st->hang_after) {
			stream_free(c, "hanging as asked");
			c->hung = true;
			return 0;
		}
		if (st->sent == st->chunks) {
			static const char last[] = "0\r\n\r\n";
			struct iovec iov = { (void *)last, sizeof(last) - 1 };
			stream_free(c, NULL);
			return conn_send(c, &iov, 1);
		}
		char stamp[64], size[32];
		const char *p;
		size_t len;
		if (st->stamp) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			len = (size_t)snprintf(stamp, sizeof(stamp), "%ld %lld\n", st->sent,
					       (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000);
			p = stamp;
		} else if (st->bytes > 0) {
			p = st->data + st->pattern_off % 26;
			len = (size_t)st->bytes;
			st->pattern_off += len;
		} else {
			size_t left = st->data_len - st->data_off, parts = (size_t)(st->chunks - st->sent);
			len = (left + parts - 1) / parts;
			p = st->data + st->data_off;
			st->data_off += len;
		}
		st->sent++;
		st->next_at_ms = now + st->delay_ms;
		if (len == 0)
			continue; /* a zero-size chunk would end the answer */
		struct iovec iov[3] = { { size, (size_t)snprintf(size, sizeof(size), "%zx\r\n", len) },
					{ (void *)p, len }, { "\r\n", 2 } };
		if (conn_send(c, iov, 3) < 0)
			return -1;
	}
	return 0;
}

/* Milliseconds until the next chunk is due on any connection (-1: none). */
static int stream_wait_ms(const struct server *s)
{
	if (s->n_streams == 0)
		return -1;
	long long now = echo_now_ms(), best = -1;
	for (size_t fd = 0; fd < s->n_conns; fd++) {
		const struct conn *c = s->conns[fd];
		if (!c || !c->stream || c->out_len != c->out_off)
			continue;
		long long w = c->stream->next_at_ms > now ? c->stream->next_at_ms - now : 0;
		if (best < 0 || w < best)
			best = w;
	}
	return best < 0 ? -1 : (int)(best > 60000 ? 60000 : best);
}

/* ---- request parsing ----------------------------------------------------- */

/* Scans a chunked body starting at p. Returns 1 when complete (sets the
 * decoded length and the encoded length including trailers), 0 when more
 * bytes are needed, -1 on malformed input or a body over max. With decode,
 * the chunk data is moved together at p (in place; the destination never
 * passes the source). */
static int chunked_scan(char *p, size_t len, size_t max, bool decode,
			size_t *decoded_len, size_t *encoded_len)
{
	size_t i = 0, out = 0;
	for (;;) {
		/* chunk-size [; ext] CRLF */
		size_t line_start = i;
		char *eol = memchr(p + i, '\n', len - i);
		if (!eol)
			return (len - i > 1024) ? -1 : 0;
		size_t line_end = (size_t)(eol - p);
		if (line_end - line_start > 1024)
			return -1;
		size_t size = 0;
		size_t j = line_start;
		int digits = 0;
		while (j < line_end && isxdigit((unsigned char)p[j])) {
			int d = isdigit((unsigned char)p[j]) ? p[j] - '0' : (tolower((unsigned char)p[j]) - 'a' + 10);
			if (size > (SIZE_MAX >> 4))
				return -1;
			size = (size << 4) | (size_t)d;
			j++;
			digits++;
		}
		if (!digits)
			return -1;
		if (j < line_end && p[j] != ';' && p[j] != ' ' && p[j] != '\t' && p[j] != '\r')
			return -1;
		i = line_end + 1;
		if (size == 0) {
			/* trailers until an empty line */
			for (;;) {
				char *e = memchr(p + i, '\n', len - i);
				if (!e)
					return (len - i > MAX_HEADER_BYTES) ? -1 : 0;
				size_t le = (size_t)(e - p);
				bool empty = (le == i) || (le == i + 1 && p[i] == '\r');
				i = le + 1;
				if (empty)
					break;
			}
			*decoded_len = out;
			*encoded_len = i;
			return 1;
		}
		if (size > max || out + size > max)
			return -1;
		if (len - i < size)
			return 0;
		if (decode && out != i)
			memmove(p + out, p + i, size);
		out += size;
		i += size;
		/* CRLF after data */
		if (len - i < 1)
			return 0;
		if (p[i] == '\r') {
			if (len - i < 2)
				return 0;
			if (p[i + 1] != '\n')
				return -1;
			i += 2;
		} else if (p[i] == '\n') {
			i += 1;
		} else {
			return -1;
		}
	}
}

/* Parses the request at the start of buf. Returns 1 with *req filled, 0 when
 * more bytes are needed, -status for an error answered with that status. */
static int parse_request(const struct server_config *cfg, struct conn *c,
			 char *buf, size_t len, struct request *req)
{
	/* Tolerate stray CRLFs between pipelined requests (RFC 7230 §3.5). */
	size_t lead = 0;
	while (lead < len && (buf[lead] == '\r' || buf[lead] == '\n'))
		lead++;
	if (lead == len)
		return 0;
	buf += lead;
	len -= lead;

	char *hend = memmem_crlfcrlf(buf, len);
	if (!hend)
		return len > MAX_HEADER_BYTES ? -431 : 0;
	size_t head_len = (size_t)(hend - buf) + 4;
	if (head_len > MAX_HEADER_BYTES)
		return -431;

	memset(req, 0, sizeof(*req));
	/* request line */
	char *line_end = memmem(buf, head_len, "\r\n", 2);
	char *sp1 = memchr(buf, ' ', (size_t)(line_end - buf));
	if (!sp1 || sp1 == buf)
		return -400;
	char *sp2 = memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return -400;
	req->method = buf;
	req->method_len = (size_t)(sp1 - buf);
	req->path = sp1 + 1;
	req->path_len = (size_t)(sp2 - sp1 - 1);
	const char *ver = sp2 + 1;
	size_t ver_len = (size_t)(line_end - ver);
	bool http10;
	if (token_eq(ver, ver_len, "HTTP/1.1"))
		http10 = false;
	else if (token_eq(ver, ver_len, "HTTP/1.0"))
		http10 = true;
	else
		return -400;
	for (size_t i = 0; i < req->method_len; i++)
		if (!isupper((unsigned char)req->method[i]))
			return -400;
	req->keep_alive = !http10;
	req->head = token_eq(req->method, req->method_len, "HEAD");

	/* headers */
	bool have_cl = false, chunked = false, expect_continue = false;
	size_t content_length = 0;
	char *p = line_end + 2;
	char *end = buf + head_len - 2; /* points at the final CRLF */
	while (p < end) {
		char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
		if (!eol)
			return -400;
		char *colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || colon == p)
			return -400;
		const char *name = p;
		size_t name_len = (size_t)(colon - p);
		const char *v = colon + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		const char *ve = eol;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		size_t vlen = (size_t)(ve - v);
		if (token_eq(name, name_len, "Content-Length")) {
			size_t n = 0;
			if (vlen == 0)
				return -400;
			for (size_t i = 0; i < vlen; i++) {
				if (!isdigit((unsigned char)v[i]))
					return -400;
				if (n > (SIZE_MAX - 9) / 10)
					return -413;
				n = n * 10 + (size_t)(v[i] - '0');
			}
			if (have_cl && n != content_length)
				return -400;
			have_cl = true;
			content_length = n;
		} else if (token_eq(name, name_len, "Transfer-Encoding")) {
			if (header_has_token(v, vlen, "chunked"))
				chunked = true;
			else if (!header_has_token(v, vlen, "identity"))
				return -501;
		} else if (token_eq(name, name_len, "Connection")) {
			if (header_has_token(v, vlen, "close"))
				req->keep_alive = false;
			else if (header_has_token(v, vlen, "keep-alive"))
				req->keep_alive = true;
		} else if (token_eq(name, name_len, "Content-Type")) {
			req->content_type = v;
			req->content_type_len = vlen;
		} else if (token_eq(name, name_len, "Accept")) {
			req->accept = v;
			req->accept_len = vlen;
		} else if (token_eq(name, name_len, "X-Amzn-SageMaker-Custom-Attributes")) {
			req->custom_attributes = v;
			req->custom_attributes_len = vlen;
		} else if (token_eq(name, name_len, "X-Amzn-SageMaker-Session-Id")) {
			req->session_id = v;
			req->session_id_len = vlen;
		} else if (token_eq(name, name_len, "Expect")) {
			if (header_has_token(v, vlen, "100-continue"))
				expect_continue = true;
		}
		p = eol + 2;
	}

	char *body = buf + head_len;
	size_t avail = len - head_len;
	if (chunked) { /* Transfer-Encoding wins over Content-Length (RFC 7230 §3.3.3) */
		size_t dlen, elen;
		int r = chunked_scan(body, avail, cfg->max_body, false, &dlen, &elen);
		if (r < 0)
			return -400;
		if (r == 0)
			goto need_more;
		chunked_scan(body, avail, cfg->max_body, true, &dlen, &elen);
		req->body = body;
		req->body_len = dlen;
		req->total_len = lead + head_len + elen;
	} else {
		if (content_length > cfg->max_body)
			return -413;
		if (avail < content_length) {
			/* make room once for the whole body */
			size_t need = c->in_off + lead + head_len + content_length;
			if (buf_ensure(&c->in, &c->in_cap, need) < 0)
				return -500;
			goto need_more;
		}
		req->body = body;
		req->body_len = content_length;
		req->total_len = lead + head_len + content_length;
	}
	return 1;

need_more:
	if (expect_continue && !c->continue_sent && c->out_len == c->out_off) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		struct iovec iov = { (void *)cont, sizeof(cont) - 1 };
		if (conn_send(c, &iov, 1) < 0)
			return -500;
		c->continue_sent = true;
	}
	return 0;
}

/* ---- handlers ------------------------------------------------------------ */

static bool path_is(const struct request *req, const char *want)
{
	size_t n = req->path_len;
	const char *q = memchr(req->path, '?', n);
	if (q)
		n = (size_t)(q - req->path);
	return token_eq(req->path, n, want) && memcmp(req->path, want, n) == 0;
}

/* env mode: "KEY=value" (KEY = the body, or ECHO_ENV_KEY when the body is
 * empty; "KEY unset" when absent), then cwd=, uid=, gid=, groups= lines. */
static int handle_env(struct conn *c, struct request *req)
{
	char key[256], cwd[1024], out[4096];
	const char *k = getenv("ECHO_ENV_KEY");
	if (req->body_len > 0 && req->body_len < sizeof(key)) {
		memcpy(key, req->body, req->body_len);
		key[req->body_len] = '\0';
	} else {
		snprintf(key, sizeof(key), "%s", k ? k : "PATH");
	}
	const char *v = getenv(key);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		snprintf(cwd, sizeof(cwd), "?");
	gid_t groups[64];
	int ng = getgroups(64, groups);
	int n = v ? snprintf(out, sizeof(out), "%s=%s\n", key, v) : snprintf(out, sizeof(out), "%s unset\n", key);
	n += snprintf(out + n, sizeof(out) - (size_t)n, "cwd=%s\nuid=%u\ngid=%u\ngroups=", cwd, (unsigned)getuid(),
		      (unsigned)getgid());
	for (int i = 0; i < ng && (size_t)n < sizeof(out) - 16; i++)
		n += snprintf(out + n, sizeof(out) - (size_t)n, "%s%u", i ? "," : "", (unsigned)groups[i]);
	n += snprintf(out + n, sizeof(out) - (size_t)n, "\n");
	struct iovec body[1] = { { out, (size_t)n } };
	return send_response(c, req, 200, "text/plain", 10, body, 1);
}

/* file mode: body "read PATH" answers the file (404 when missing);
 * "write PATH DATA" creates or replaces PATH with DATA (500 + strerror). */
static int handle_file(struct conn *c, struct request *req)
{
	char cmd[4096];
	if (req->body_len >= sizeof(cmd))
		return send_simple(c, req, 413, "{\"error\":\"file mode: command too long\"}");
	memcpy(cmd, req->body, req->body_len);
	cmd[req->body_len] = '\0';
	char *path = strchr(cmd, ' ');
	if (path == NULL)
		return send_simple(c, req, 400, "{\"error\":\"file mode: want 'read PATH' or 'write PATH DATA'\"}");
	*path++ = '\0';
	char msg[512];
	if (strcmp(cmd, "write") == 0) {
		char *data = strchr(path, ' ');
		if (data != NULL)
			*data++ = '\0';
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		size_t len = data ? strlen(data) : 0;
		if (fd < 0 || write(fd, data ? data : "", len) != (ssize_t)len) {
			snprintf(msg, sizeof(msg), "{\"error\":\"write %.200s: %s\"}", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return send_simple(c, req, 500, msg);
		}
		close(fd);
		struct iovec ok[1] = { { "ok", 2 } };
		return send_response(c, req, 200, "text/plain", 10, ok, 1);
	}
	if (strcmp(cmd, "read") != 0)
		return send_simple(c, req, 400, "{\"error\":\"file mode: want 'read PATH' or 'write PATH DATA'\"}");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(msg, sizeof(msg), "{\"error\":\"read %.200s: %s\"}", path, strerror(errno));
		return send_simple(c, req, errno == ENOENT ? 404 : 500, msg);
	}
	char data[65536];
	ssize_t got = read(fd, data, sizeof(data));
	close(fd);
	struct iovec body[1] = { { data, got > 0 ? (size_t)got : 0 } };
	return send_response(c, req, 200, "application/octet-stream", 24, body, 1);
}

/* alloc mode: each invocation allocates and touches ECHO_ALLOC_MB MiB more
 * (default 64) and keeps it, answering the total; past the memory limit
 * the OOM killer ends the server. */
static int handle_alloc(struct conn *c, struct request *req)
{
	static size_t total_mb; /* kept across invocations, as a leak would */
	const char *env = getenv("ECHO_ALLOC_MB");
	long mb = env ? strtol(env, NULL, 10) : 64;
	if (mb <= 0 || mb > (1L << 20))
		mb = 64;
	for (long i = 0; i < mb; i++) {
		char *chunk = malloc(1u << 20);
		if (chunk == NULL)
			return send_simple(c, req, 507, "{\"error\":\"alloc mode: malloc failed\"}");
		memset(chunk, 0x5a, 1u << 20); /* touch every page */
		total_mb++;
	}
	char msg[128];
	int n = snprintf(msg, sizeof(msg), "{\"allocated_mb\":%ld,\"total_mb\":%zu}", mb, total_mb);
	struct iovec body[1] = { { msg, (size_t)n } };
	return send_response(c, req, 200, "application/json", 16, body, 1);
}

/* fork mode: forks sleeping children until fork fails (the pids limit),
 * then kills and reaps them and answers how many it made and why it stopped. */
static int handle_fork(struct conn *c, struct request *req)
{
	enum { FORK_MAX = 100000 };
	pid_t *kids = malloc(FORK_MAX * sizeof(pid_t));
	if (kids == NULL)
		return send_simple(c, req, 500, "{\"error\":\"fork mode: out of memory\"}");
	int n = 0, why = 0;
	while (n < FORK_MAX) {
		pid_t pid = fork();
		if (pid == 0) {
			for (;;)
				pause();
		}
		if (pid < 0) {
			why = errno;
			break;
		}
		kids[n++] = pid;
	}
	for (int i = 0; i < n; i++)
		kill(kids[i], SIGKILL);
	for (int i = 0; i < n; i++)
		while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
			;
	free(kids);
	char msg[256];
	int len = snprintf(msg, sizeof(msg), "{\"forked\":%d,\"error\":\"%s\"}", n, why ? strerror(why) : "");
	struct iovec body[1] = { { msg, (size_t)len } };
	return send_response(c, req, 200, "application/json", 16, body, 1);
}

static const char *probe_errno(int r)
{
	return r == 0 ? "ok" : strerror(errno);
}

/* probe mode: what the container can see and do, as JSON. ECHO_PROBE_CONNECT
 * (HOST:PORT, IPv4) is tried as a TCP connection; ECHO_PROBE_WRITE (a path)
 * is tried as a new file. */
static int handle_probe(struct conn *c, struct request *req)
{
	char out[4096];
	int n = 0;
	int pids = 0;
	DIR *proc = opendir("/proc");
	for (struct dirent *de; proc && (de = readdir(proc)) != NULL;)
		if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
			pids++;
	if (proc)
		closedir(proc);
	n += snprintf(out + n, sizeof(out) - (size_t)n, "{\"proc_pids\":%d", pids);
	const char *target = getenv("ECHO_PROBE_CONNECT");
	if (target) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		char host[64];
		int port = 0;
		int r = -1;
		errno = EINVAL;
		if (sscanf(target, "%63[^:]:%d", host, &port) == 2 && inet_pton(AF_INET, host, &sa.sin_addr) == 1) {
			sa.sin_port = htons((uint16_t)port);
			int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			r = fd < 0 ? -1 : connect(fd, (struct sockaddr *)&sa, sizeof(sa));
			int e = errno;
			if (fd >= 0)
				close(fd);
			errno = e;
		}
		n += snprintf(out + n, sizeof(out) - (size_t)n, ",\"connect\":\"%s\"", probe_errno(r));
	}
	const char *wpath = getenv("ECHO_PROBE_WRITE");
	if (wpath) {
		int fd = open(wpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		n += snprintf(out + n, sizeof(out) - (size_t)n, ",\"write\":\"%s\"", probe_errno(fd < 0 ? -1 : 0));
		if (fd >= 0)
			close(fd);
	}
	/* ECHO_PROBE_OVERWRITE: an existing file written over (e.g. a host
	 * knob such as /proc/sys/kernel/core_pattern); ECHO_PROBE_READ: a file
	 * read (e.g. a root-only file of the model) */
	const char *opath = getenv("ECHO_PROBE_OVERWRITE");
	if (opath) {
		int ofd = open(opath, O_WRONLY | O_CLOEXEC);
		ssize_t w = ofd < 0 ? -1 : write(ofd, "|/probe\n", 8);
		n += snprintf(out + n, sizeof(out) - (size_t)n, ",\"overwrite\":\"%s\"", probe_errno(w < 0 ? -1 : 0));
		if (ofd >= 0)
			close(ofd);
	}
	const char *rpath = getenv("ECHO_PROBE_READ");
	if (rpath) {
		char tmp[64];
		int rfd = open(rpath, O_RDONLY | O_CLOEXEC);
		ssize_t got_r = rfd < 0 ? -1 : read(rfd, tmp, sizeof(tmp));
		n += snprintf(out + n, sizeof(out) - (size_t)n, ",\"read\":\"%s\"", probe_errno(got_r < 0 ? -1 : 0));
		if (rfd >= 0)
			close(rfd);
	}
	/* the user namespace's first mapping, "inside outside count" */
	char map[128] = "";
	int mfd = open("/proc/self/uid_map", O_RDONLY | O_CLOEXEC);
	ssize_t mlen = mfd >= 0 ? read(mfd, map, sizeof(map) - 1) : -1;
	if (mfd >= 0)
		close(mfd);
	map[mlen > 0 ? mlen : 0] = '\0';
	long long m_in = -1, m_out = -1, m_count = -1;
	sscanf(map, "%lld %lld %lld", &m_in, &m_out, &m_count);
	n += snprintf(out + n, sizeof(out) - (size_t)n, ",\"uid_map\":[%lld,%lld,%lld],\"pid\":%d", m_in, m_out,
		      m_count, (int)getpid());
	int fd = open("/probe-root-write", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	n += snprintf(out + n, sizeof(out) - (size_t)n, ",\"write_root\":\"%s\"", probe_errno(fd < 0 ? -1 : 0));
	if (fd >= 0)
		close(fd);
	long r = syscall(SYS_unshare, CLONE_NEWUSER);
	n += snprintf(out + n, sizeof(out) - (size_t)n, ",\"unshare\":\"%s\"", probe_errno(r < 0 ? -1 : 0));
	r = syscall(SYS_mount, "none", "/tmp", "tmpfs", 0L, NULL);
	n += snprintf(out + n, sizeof(out) - (size_t)n, ",\"mount\":\"%s\"", probe_errno(r < 0 ? -1 : 0));
	r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3L /* session */, 0L);
	n += snprintf(out + n, sizeof(out) - (size_t)n, ",\"keyctl\":\"%s\"", probe_errno(r < 0 ? -1 : 0));
	/* io_uring: Docker 25 and later deny it (EPERM); params is struct
	 * io_uring_params (120 bytes), zeroed */
	long params[15] = { 0 };
	r = syscall(__NR_io_uring_setup, 1L, params);
	if (r >= 0)
		close((int)r);
	n += snprintf(out + n, sizeof(out) - (size_t)n, ",\"io_uring_setup\":\"%s\"", probe_errno(r < 0 ? -1 : 0));
	/* /proc/interrupts masked: a bind of /dev/null reads as 0 bytes */
	char intr[512];
	int ifd = open("/proc/interrupts", O_RDONLY | O_CLOEXEC);
	ssize_t ib = ifd >= 0 ? read(ifd, intr, sizeof(intr)) : -1;
	if (ifd >= 0)
		close(ifd);
	n += snprintf(out + n, sizeof(out) - (size_t)n, ",\"proc_interrupts_bytes\":%zd", ib);
	char status[4096] = "";
	int sfd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t got = sfd >= 0 ? read(sfd, status, sizeof(status) - 1) : -1;
	if (sfd >= 0)
		close(sfd);
	status[got > 0 ? got : 0] = '\0';
	char *sec = strstr(status, "Seccomp:\t");
	char *nnp = strstr(status, "NoNewPrivs:\t");
	n += snprintf(out + n, sizeof(out) - (size_t)n, ",\"seccomp\":%d,\"no_new_privs\":%d}",
		      sec ? atoi(sec + 9) : -1, nnp ? atoi(nnp + 12) : -1);
	struct iovec body[1] = { { out, (size_t)n } };
	return send_response(c, req, 200, "application/json", 16, body, 1);
}

/* session mode (README: "Stateful sessions"): NEW_SESSION gets a new ID
 * "HOST-TOKEN-N" with Expires ECHO_SESSION_TTL seconds (default 3600) from
 * now, in X-Amzn-SageMaker-New-Session-Id (ECHO_SESSION_BAD_ID=1: a value
 * not of SageMaker's form); a request naming an ID whose body is "close"
 * gets X-Amzn-SageMaker-Closed-Session-Id. The body answered is
 * "HOSTNAME session=ID calls=N\n": which instance answered, and how many
 * requests this server saw. Sessions are not remembered: the router's
 * pinning is what the tests check. */
static int handle_session(struct server *s, struct conn *c, struct request *req)
{
	const struct server_config *cfg = s->cfg;
	char hdr[400], id[300] = "";
	bool is_new = req->session_id && token_eq(req->session_id, req->session_id_len, "NEW_SESSION");
	req->extra_header = NULL;
	if (is_new) {
		const char *ttl_env = getenv("ECHO_SESSION_TTL");
		long ttl = ttl_env ? atol(ttl_env) : 3600;
		time_t exp = time(NULL) + ttl;
		struct tm tm;
		gmtime_r(&exp, &tm);
		/* the hostname token without its ':' and '#' */
		char host[160];
		size_t hl = 0;
		for (size_t i = 0; i + 1 < cfg->hostname_len && hl + 1 < sizeof(host); i++)
			if (isalnum((unsigned char)cfg->hostname[i]))
				host[hl++] = cfg->hostname[i];
		host[hl] = '\0';
		snprintf(id, sizeof(id), "%s-%llu", hl ? host : "echo", s->invocations);
		const char *bad = getenv("ECHO_SESSION_BAD_ID");
		if (bad && strcmp(bad, "1") == 0)
			snprintf(hdr, sizeof(hdr), "X-Amzn-SageMaker-New-Session-Id: %s; Expires=tomorrow", id);
		else
			snprintf(hdr, sizeof(hdr), "X-Amzn-SageMaker-New-Session-Id: %s; Expires=%04d-%02d-%02dT%02d:%02d:%02dZ",
				 id, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		req->extra_header = hdr;
	} else if (req->session_id) {
		snprintf(id, sizeof(id), "%.*s", (int)(req->session_id_len > 256 ? 256 : req->session_id_len),
			 req->session_id);
		if (req->body_len == 5 && memcmp(req->body, "close", 5) == 0) {
			snprintf(hdr, sizeof(hdr), "X-Amzn-SageMaker-Closed-Session-Id: %s", id);
			req->extra_header = hdr;
		}
	}
	char out[512];
	int n = snprintf(out, sizeof(out), "%.*s session=%s calls=%llu\n", (int)cfg->hostname_len - 1, cfg->hostname,
			 id[0] ? id : "-", s->invocations);
	if (n < 0 || (size_t)n >= sizeof(out))
		n = (int)strlen(out);
	struct iovec body[1] = { { out, (size_t)n } };
	return send_response(c, req, 200, "text/plain", 10, body, 1);
}

/* Returns 0, or -1 to close the connection (-2: with a reset). */
static int handle_invocation(struct server *s, struct conn *c, struct request *req)
{
	const struct server_config *cfg = s->cfg;
	const char *ctype = req->content_type ? req->content_type : "application/octet-stream";
	s->invocations++;
	req->extra_header = cfg->extra_header;
	size_t ctype_len = req->content_type ? req->content_type_len : strlen(ctype);
	struct iovec body[2];

	if (cfg->accept_content_type &&
	    !(req->content_type && token_eq(req->content_type, req->content_type_len, cfg->accept_content_type))) {
		char msg[512];
		snprintf(msg, sizeof(msg), "{\"error\":\"unsupported content type '%.*s', want '%.200s'\"}",
			 req->content_type ? (int)(req->content_type_len > 200 ? 200 : req->content_type_len) : 6,
			 req->content_type ? req->content_type : "(none)", cfg->accept_content_type);
		return send_simple(c, req, 415, msg);
	}
	if (cfg->content_type) {
		ctype = cfg->content_type;
		ctype_len = strlen(ctype);
	}

	switch (cfg->mode) {
	case MODE_ECHO:
		body[0] = (struct iovec){ req->body, req->body_len };
		return send_response(c, req, 200, ctype, ctype_len, body, 1);
	case MODE_UPPER:
		for (size_t i = 0; i < req->body_len; i++)
			req->body[i] = (char)toupper((unsigned char)req->body[i]);
		body[0] = (struct iovec){ req->body, req->body_len };
		return send_response(c, req, 200, ctype, ctype_len, body, 1);
	case MODE_HOSTNAME:
		body[0] = (struct iovec){ (void *)cfg->hostname, cfg->hostname_len };
		body[1] = (struct iovec){ req->body, req->body_len };
		return send_response(c, req, 200, ctype, ctype_len, body, 2);
	case MODE_FAIL:
		body[0] = (struct iovec){ (void *)cfg->fail_body, cfg->fail_body_len };
		return send_response(c, req, cfg->fail_status, "application/json", 16, body, 1);
	case MODE_HEADERS: {
		/* "HOSTNAME ct=CT accept=A ca=CA\n" before the body; custom attributes back as "HOSTNAME:CA" */
		char line[1024], ra[300];
		int n = snprintf(line, sizeof(line), "%.*s ct=%.*s accept=%.*s ca=%.*s\n",
				 (int)cfg->hostname_len - 1, cfg->hostname,
				 (int)(req->content_type_len > 200 ? 200 : req->content_type_len),
				 req->content_type ? req->content_type : "",
				 (int)(req->accept_len > 200 ? 200 : req->accept_len), req->accept ? req->accept : "",
				 (int)(req->custom_attributes_len > 200 ? 200 : req->custom_attributes_len),
				 req->custom_attributes ? req->custom_attributes : "");
		if (n < 0 || (size_t)n >= sizeof(line))
			n = (int)strlen(line);
		if (req->custom_attributes) {
			int m = snprintf(ra, sizeof(ra), "%.*s%.*s", (int)cfg->hostname_len, cfg->hostname,
					 (int)(req->custom_attributes_len > 200 ? 200 : req->custom_attributes_len),
					 req->custom_attributes);
			req->reply_attributes = ra;
			req->reply_attributes_len = m < 0 ? 0 : (size_t)m >= sizeof(ra) ? sizeof(ra) - 1 : (size_t)m;
		}
		body[0] = (struct iovec){ line, (size_t)n };
		body[1] = (struct iovec){ req->body, req->body_len };
		return send_response(c, req, 200, ctype, ctype_len, body, 2);
	}
	case MODE_ENV:
		return handle_env(c, req);
	case MODE_FILE:
		return handle_file(c, req);
	case MODE_ALLOC:
		return handle_alloc(c, req);
	case MODE_FORK:
		return handle_fork(c, req);
	case MODE_PROBE:
		return handle_probe(c, req);
	case MODE_COUNT: {
		char out[64];
		int n = snprintf(out, sizeof(out), "{\"invocations\":%llu}", s->invocations);
		body[0] = (struct iovec){ out, (size_t)n };
		return send_response(c, req, 200, "application/json", 16, body, 1);
	}
	case MODE_SESSION:
		return handle_session(s, c, req);
	case MODE_RESET:
		return -2;
	case MODE_HANG:
		c->hung = true;
		return 0;
	case MODE_MODEL: {
		int fd = open(cfg->model_path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > MAX_MODEL_FILE) {
			char msg[512];
			snprintf(msg, sizeof(msg), "{\"error\":\"cannot read model file %.200s\"}", cfg->model_path);
			if (fd >= 0)
				close(fd);
			return send_simple(c, req, 500, msg);
		}
		size_t size = (size_t)st.st_size, got = 0;
		char *data = malloc(size ? size : 1);
		while (data && got < size) {
			ssize_t r = read(fd, data + got, size - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		close(fd);
		if (!data)
			return send_simple(c, req, 500, "{\"error\":\"out of memory\"}");
		body[0] = (struct iovec){ data, got };
		int r = send_response(c, req, 200, ctype, ctype_len, body, 1);
		free(data);
		return r;
	}
	}
	return -1;
}

/* ---- multi-model API (SAGEMAKER_MULTI_MODEL=true; CONTRACT.md §4) -------- */

struct echo_model {
	char *name;
	char *url;
	char *content; /* model.txt, or the first file (by name) of the model dir */
	size_t content_len;
	unsigned long long invocations;
};

struct echo_models {
	struct echo_model *v;
	size_t n, cap;
	unsigned long long loads;  /* POST /models calls, shown by GET /models */
	size_t max;                /* ECHO_MAX_MODELS: 507 beyond (0: no limit) */
	bool load_fail;            /* ECHO_LOAD_FAIL=1: POST /models answers 500 */
	long load_delay_ms;        /* ECHO_LOAD_DELAY_MS: each load sleeps this long */
};

/* The string value of "key" in a flat JSON object (\" and \\ unescaped);
 * NULL when missing. Bounded by out_len. */
static char *json_string_field(const char *body, size_t len, const char *key, char *out, size_t out_len)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\"", key);
	const char *p = memmem(body, len, pat, strlen(pat));
	if (!p)
		return NULL;
	const char *end = body + len;
	p += strlen(pat);
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':'))
		p++;
	if (p >= end || *p != '"')
		return NULL;
	p++;
	size_t o = 0;
	while (p < end && *p != '"') {
		char ch = *p++;
		if (ch == '\\' && p < end) {
			ch = *p++;
			if (ch == 'n')
				ch = '\n';
		}
		if (o + 1 >= out_len)
			return NULL;
		out[o++] = ch;
	}
	if (p >= end)
		return NULL;
	out[o] = '\0';
	return out;
}

static bool model_name_ok(const char *n)
{
	if (!*n || strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strlen(n) > 255)
		return false;
	for (; *n; n++)
		if (*n == '/' || (unsigned char)*n < 0x21 || *n == '"' || *n == '\\')
			return false;
	return true;
}

static struct echo_model *model_find(struct echo_models *m, const char *name, size_t len)
{
	for (size_t i = 0; i < m->n; i++)
		if (strlen(m->v[i].name) == len && memcmp(m->v[i].name, name, len) == 0)
			return &m->v[i];
	return NULL;
}

/* Reads model.txt, else the first regular file by name, of dir (empty when none). */
static int model_read_content(const char *dir, char **out, size_t *out_len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/model.txt", dir);
	struct stat st;
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		DIR *d = opendir(dir);
		if (!d)
			return -1;
		char best[256] = "";
		struct dirent *de;
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			char p2[PATH_MAX];
			snprintf(p2, sizeof(p2), "%s/%s", dir, de->d_name);
			if (stat(p2, &st) == 0 && S_ISREG(st.st_mode) && (!best[0] || strcmp(de->d_name, best) < 0))
				snprintf(best, sizeof(best), "%s", de->d_name);
		}
		closedir(d);
		if (!best[0]) {
			*out = strdup("");
			*out_len = 0;
			return *out ? 0 : -1;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, best);
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char *buf = malloc(4097);
	ssize_t n = buf ? read(fd, buf, 4096) : -1;
	close(fd);
	if (n < 0) {
		free(buf);
		return -1;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	*out = buf;
	*out_len = (size_t)n;
	return 0;
}

static int models_load(struct echo_models *m, struct conn *c, struct request *req)
{
	char name[512], url[1024], msg[1536];
	m->loads++;
	if (!json_string_field(req->body, req->body_len, "model_name", name, sizeof(name)) ||
	    !json_string_field(req->body, req->body_len, "url", url, sizeof(url)) || !model_name_ok(name))
		return send_simple(c, req, 400, "{\"error\":\"body must be {\\\"model_name\\\":N,\\\"url\\\":DIR}\"}");
	if (m->load_fail)
		return send_simple(c, req, 500, "{\"error\":\"model load failed (ECHO_LOAD_FAIL=1)\"}");
	if (model_find(m, name, strlen(name))) {
		snprintf(msg, sizeof(msg), "{\"error\":\"model %s is already loaded\"}", name);
		return send_simple(c, req, 409, msg);
	}
	if (m->max && m->n >= m->max) {
		snprintf(msg, sizeof(msg), "{\"error\":\"out of memory: %zu models loaded (ECHO_MAX_MODELS)\"}", m->n);
		return send_simple(c, req, 507, msg);
	}
	if (m->load_delay_ms > 0) {
		struct timespec ts = { m->load_delay_ms / 1000, (m->load_delay_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	char *content;
	size_t content_len;
	if (model_read_content(url, &content, &content_len) < 0) {
		snprintf(msg, sizeof(msg), "{\"error\":\"cannot read model at %.900s: %s\"}", url, strerror(errno));
		return send_simple(c, req, 404, msg);
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct echo_model *v = realloc(m->v, cap * sizeof(*v));
		if (!v) {
			free(content);
			return send_simple(c, req, 507, "{\"error\":\"out of memory\"}");
		}
		m->v = v;
		m->cap = cap;
	}
	struct echo_model *e = &m->v[m->n];
	e->name = strdup(name);
	e->url = strdup(url);
	e->content = content;
	e->content_len = content_len;
	e->invocations = 0;
	if (!e->name || !e->url) {
		free(e->name);
		free(e->url);
		free(content);
		return send_simple(c, req, 507, "{\"error\":\"out of memory\"}");
	}
	m->n++;
	snprintf(msg, sizeof(msg), "{\"status\":\"Model %s loaded\"}", name);
	return send_simple(c, req, 200, msg);
}

static long query_param(const struct request *req, const char *key, long fallback)
{
	const char *q = memchr(req->path, '?', req->path_len);
	if (!q)
		return fallback;
	size_t klen = strlen(key);
	const char *end = req->path + req->path_len;
	for (const char *p = q + 1; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		if ((size_t)(stop - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
			char num[32];
			size_t n = (size_t)(stop - p) - klen - 1;
			if (n >= sizeof(num))
				return fallback;
			memcpy(num, p + klen + 1, n);
			num[n] = '\0';
			return strtol(num, NULL, 10);
		}
		p = stop + 1;
	}
	return fallback;
}

static int models_list(struct echo_models *m, struct conn *c, struct request *req)
{
	long limit = query_param(req, "limit", 100), start = query_param(req, "next_page_token", 0);
	if (limit < 1 || limit > 1000)
		limit = 100;
	if (start < 0)
		start = 0;
	size_t cap = 256 + (size_t)limit * 600, off = 0;
	char *out = malloc(cap);
	if (!out)
		return send_simple(c, req, 500, "{\"error\":\"out of memory\"}");
	off += (size_t)snprintf(out, cap, "{\"loads\":%llu,\"count\":%zu,\"models\":[", m->loads, m->n);
	size_t i = (size_t)start;
	for (; i < m->n && i < (size_t)start + (size_t)limit; i++)
		off += (size_t)snprintf(out + off, cap - off, "%s{\"modelName\":\"%s\",\"modelUrl\":\"%.500s\"}",
					i > (size_t)start ? "," : "", m->v[i].name, m->v[i].url);
	if (i < m->n)
		off += (size_t)snprintf(out + off, cap - off, "],\"nextPageToken\":\"%zu\"}", i);
	else
		off += (size_t)snprintf(out + off, cap - off, "]}");
	struct iovec b = { out, off };
	int r = send_response(c, req, 200, "application/json", 16, &b, 1);
	free(out);
	return r;
}

static int handle_models(struct server *s, struct conn *c, struct request *req)
{
	struct echo_models *m = s->models;
	size_t n = req->path_len;
	const char *q = memchr(req->path, '?', n);
	if (q)
		n = (size_t)(q - req->path);
	const char *p = req->path + 7, *end = req->path + n; /* after "/models" */
	bool get = token_eq(req->method, req->method_len, "GET") || req->head;
	bool post = token_eq(req->method, req->method_len, "POST");
	bool del = token_eq(req->method, req->method_len, "DELETE");
	if (p == end || (p + 1 == end && *p == '/')) {
		if (post)
			return models_load(m, c, req);
		if (get)
			return models_list(m, c, req);
		return send_simple(c, req, 405, "{\"error\":\"method not allowed\"}");
	}
	if (*p != '/')
		return send_simple(c, req, 404, "{\"error\":\"not found\"}");
	p++;
	const char *slash = memchr(p, '/', (size_t)(end - p));
	size_t name_len = slash ? (size_t)(slash - p) : (size_t)(end - p);
	char msg[768];
	struct echo_model *e = model_find(m, p, name_len);
	if (slash) {
		if (!(end - slash == 7 && memcmp(slash, "/invoke", 7) == 0))
			return send_simple(c, req, 404, "{\"error\":\"not found\"}");
		if (!post)
			return send_simple(c, req, 405, "{\"error\":\"method not allowed\"}");
		if (!e) {
			snprintf(msg, sizeof(msg), "{\"error\":\"model %.*s is not loaded\"}", (int)(name_len > 300 ? 300 : name_len), p);
			return send_simple(c, req, 404, msg);
		}
		e->invocations++;
		/* "N:CONTENT:" + body: each answer names its model */
		struct iovec body[4] = { { e->name, strlen(e->name) }, { (void *)":", 1 }, { e->content, e->content_len },
					 { (void *)":", 1 } };
		struct iovec all[5];
		memcpy(all, body, sizeof(body));
		all[4] = (struct iovec){ req->body, req->body_len };
		const char *ctype = req->content_type ? req->content_type : "application/octet-stream";
		size_t ctype_len = req->content_type ? req->content_type_len : strlen(ctype);
		return send_response(c, req, 200, ctype, ctype_len, all, 5);
	}
	if (!e) {
		snprintf(msg, sizeof(msg), "{\"error\":\"model %.*s is not loaded\"}", (int)(name_len > 300 ? 300 : name_len), p);
		return send_simple(c, req, 404, msg);
	}
	if (get) {
		snprintf(msg, sizeof(msg), "[{\"modelName\":\"%s\",\"modelUrl\":\"%.500s\",\"invocations\":%llu}]", e->name,
			 e->url, e->invocations);
		return send_simple(c, req, 200, msg);
	}
	if (del) {
		snprintf(msg, sizeof(msg), "{\"status\":\"Model %s unloaded\"}", e->name);
		free(e->name);
		free(e->url);
		free(e->content);
		*e = m->v[--m->n];
		return send_simple(c, req, 200, msg);
	}
	return send_simple(c, req, 405, "{\"error\":\"method not allowed\"}");
}

static int handle_request(struct server *s, struct conn *c, struct request *req)
{
	if (!req->keep_alive)
		c->close_after = true;
	c->form = path_is(req, "/ping") ? s->cfg->ping_form : s->cfg->answer_form;
	if (path_is(req, "/ping")) {
		if (!token_eq(req->method, req->method_len, "GET") && !req->head)
			return send_simple(c, req, 405, "{\"error\":\"method not allowed\"}");
		int ping = s->cfg->ping_status;
		if (s->cfg->ping_fail_at_ms > 0 && echo_now_ms() >= s->cfg->ping_fail_at_ms)
			ping = 500;
		if (s->cfg->ping_ok_at_ms > 0 && echo_now_ms() < s->cfg->ping_ok_at_ms)
			ping = 503; /* a model still loading */
		return send_response(c, req, ping, "text/plain", 10, NULL, 0);
	}
	if (s->models && req->path_len >= 7 && memcmp(req->path, "/models", 7) == 0 &&
	    (req->path_len == 7 || req->path[7] == '/' || req->path[7] == '?'))
		return handle_models(s, c, req);
	if (path_is(req, "/invocations")) {
		if (!token_eq(req->method, req->method_len, "POST"))
			return send_simple(c, req, 405, "{\"error\":\"method not allowed\"}");
		return handle_invocation(s, c, req);
	}
	return send_simple(c, req, 404, "{\"error\":\"not found\"}");
}

/* Parses and answers every complete request in the input buffer, as long as
 * nothing is queued for output (back-pressure for pipelining clients).
 * Returns 0, or -1 / -2 (reset) to close the connection. */
static int conn_process(struct server *s, struct conn *c)
{
	while (!c->hung && !c->stream && !c->close_after && c->out_len == c->out_off && c->in_off < c->in_len) {
		struct request req;
		int r = parse_request(s->cfg, c, c->in + c->in_off, c->in_len - c->in_off, &req);
		if (r == 0)
			break;
		if (r < 0) {
			c->close_after = true;
			char msg[64];
			snprintf(msg, sizeof(msg), "{\"error\":\"bad request (%d)\"}", -r);
			if (send_simple(c, NULL, -r, msg) < 0)
				return -1;
			c->in_off = c->in_len;
			break;
		}
		r = handle_request(s, c, &req);
		c->in_off += req.total_len;
		c->continue_sent = false;
		if (r < 0)
			return r;
	}
	if (c->hung)
		c->in_off = c->in_len; /* discard: hang mode never answers */
	/* compact */
	if (c->in_off == c->in_len) {
		c->in_off = c->in_len = 0;
		if (c->in_cap > IN_BUF_KEEP) {
			free(c->in);
			c->in = NULL;
			c->in_cap = 0;
		}
	} else if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
	if (c->out_len == c->out_off && c->out_cap > IN_BUF_KEEP) {
		free(c->out);
		c->out = NULL;
		c->out_cap = c->out_len = c->out_off = 0;
	}
	return 0;
}

static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		c->out_off += (size_t)w;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

/* Chooses epoll interest: stop reading while output is queued. Returns -1
 * when the connection should close now. */
static int conn_rearm(struct server *s, struct conn *c)
{
	bool pending = c->out_off < c->out_len;
	if (!pending && c->close_after && !c->stream && !c->hung) { /* hang: stays open, even for Connection: close */
		shutdown(c->fd, SHUT_WR);
		return -1;
	}
	return conn_set_events(s, c, pending ? EPOLLOUT : EPOLLIN | EPOLLRDHUP);
}

static void conn_on_event(struct server *s, struct conn *c, uint32_t events)
{
	int r;
	if (events & EPOLLOUT) {
		if (conn_flush(c) < 0)
			goto close;
		if (c->stream && (r = stream_pump(c)) < 0) {
			conn_close(s, c, r == -2);
			return;
		}
		if (c->out_off == c->out_len && (r = conn_process(s, c)) < 0) {
			conn_close(s, c, r == -2);
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		bool eof = false;
		for (int spin = 0; spin < READ_SPIN; spin++) {
			if (c->in_cap - c->in_len < 4096 &&
			    buf_ensure(&c->in, &c->in_cap, c->in_len + (c->in_cap ? c->in_cap : IN_BUF_INITIAL)) < 0)
				goto close;
			ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				goto close;
			}
			if (n == 0) {
				eof = true;
				break;
			}
			c->in_len += (size_t)n;
			if (c->hung)
				c->in_len = 0;
			/* bound what an idle or hostile peer can make us hold */
			if (c->in_len > MAX_HEADER_BYTES + s->cfg->max_body + s->cfg->max_body / 4 + (64u << 10))
				goto close;
			if ((size_t)n < 4096)
				break;
		}
		if ((r = conn_process(s, c)) < 0 || (c->stream && (r = stream_pump(c)) < 0)) {
			conn_close(s, c, r == -2);
			return;
		}
		if (eof) {
			/* Peer finished sending: answer what was complete, then close. */
			if (c->out_off == c->out_len)
				goto close;
			c->close_after = true;
		}
	}
	if (conn_rearm(s, c) < 0)
		goto close;
	return;
close:
	conn_close(s, c, false);
}

static void server_accept(struct server *s)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN, or EMFILE & co: try again on the next event */
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if ((size_t)fd >= s->n_conns) {
			size_t n = s->n_conns ? s->n_conns : 64;
			while (n <= (size_t)fd)
				n *= 2;
			struct conn **p = realloc(s->conns, n * sizeof(*p));
			if (!p) {
				close(fd);
				continue;
			}
			memset(p + s->n_conns, 0, (n - s->n_conns) * sizeof(*p));
			s->conns = p;
			s->n_conns = n;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->srv = s;
		c->events = EPOLLIN | EPOLLRDHUP;
		struct epoll_event ev = { .events = c->events, .data.fd = fd };
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		s->conns[fd] = c;
	}
}

/* ---- set-up -------------------------------------------------------------- */

static int config_load(struct server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	const char *mode = getenv("ECHO_MODE");
	cfg->mode = MODE_ECHO;
	if (mode && *mode) {
		size_t i;
		for (i = 0; i < ARRAY_LEN(mode_names); i++)
			if (strcmp(mode, mode_names[i]) == 0)
				break;
		if (i == ARRAY_LEN(mode_names)) {
			fprintf(stderr, "echo: unknown ECHO_MODE=%s (echo|upper|hostname|fail|reset|hang|model|headers|env|file|session|"
					"alloc|fork|probe)\n",
				mode);
			return -1;
		}
		cfg->mode = (enum echo_mode)i;
	}
	cfg->ping_status = env_status("ECHO_PING_STATUS", 200);
	if (env_form("ECHO_PING_FORM", &cfg->ping_form) < 0 || env_form("ECHO_ANSWER_FORM", &cfg->answer_form) < 0)
		return -1;
	cfg->accept_content_type = getenv("ECHO_ACCEPT_CONTENT_TYPE");
	if (cfg->accept_content_type && !*cfg->accept_content_type)
		cfg->accept_content_type = NULL;
	cfg->content_type = getenv("ECHO_CONTENT_TYPE");
	cfg->stream = getenv("ECHO_STREAM");
	long chunks;
	if (cfg->stream && *cfg->stream && (!spec_number(cfg->stream, strlen(cfg->stream), "stream", &chunks) || chunks < 1)) {
		fprintf(stderr, "echo: ECHO_STREAM must start a spec with stream=N (N >= 1), got \"%s\"\n", cfg->stream);
		return -1;
	}
	if (cfg->stream && !*cfg->stream)
		cfg->stream = NULL;
	cfg->extra_header = getenv("ECHO_EXTRA_HEADER");
	if (cfg->extra_header && (strchr(cfg->extra_header, '\r') || strchr(cfg->extra_header, '\n') ||
				  !strchr(cfg->extra_header, ':'))) {
		fprintf(stderr, "echo: ECHO_EXTRA_HEADER must be one \"Name: value\" line\n");
		return -1;
	}
	if (cfg->content_type && (!*cfg->content_type || strlen(cfg->content_type) > 200))
		cfg->content_type = NULL;
	cfg->fail_status = env_status("ECHO_FAIL_STATUS", 500);
	cfg->fail_body = getenv("ECHO_FAIL_BODY");
	if (!cfg->fail_body)
		cfg->fail_body = "{\"error\":\"echo: failing as configured (ECHO_MODE=fail)\"}";
	cfg->fail_body_len = strlen(cfg->fail_body);
	cfg->max_body = MAX_BODY_DEFAULT;
	const char *mb = getenv("ECHO_MAX_BODY");
	if (mb && *mb) {
		char *end;
		unsigned long long n = strtoull(mb, &end, 10);
		if (*end || n == 0 || n > (1ull << 30)) {
			fprintf(stderr, "echo: bad ECHO_MAX_BODY=%s\n", mb);
			return -1;
		}
		cfg->max_body = (size_t)n;
	}
	const char *model = getenv("ECHO_MODEL_FILE");
	if (!model || !*model)
		model = "model.txt";
	if (strstr(model, "..") || (size_t)snprintf(cfg->model_path, sizeof(cfg->model_path),
						     "/opt/ml/model/%s", model) >= sizeof(cfg->model_path)) {
		fprintf(stderr, "echo: bad ECHO_MODEL_FILE=%s\n", model);
		return -1;
	}
	if (gethostname(cfg->hostname, sizeof(cfg->hostname) - 2) < 0)
		strcpy(cfg->hostname, "unknown");
	cfg->hostname[sizeof(cfg->hostname) - 2] = '\0';
	cfg->hostname_len = strlen(cfg->hostname);
	/* ECHO_INSTANCE_TOKEN=1: "HOST#TOKEN:" with a token drawn at start, so
	 * instances of one model (same hostname) tell themselves apart */
	const char *tok = getenv("ECHO_INSTANCE_TOKEN");
	if (tok && strcmp(tok, "1") == 0 && cfg->hostname_len + 10 < sizeof(cfg->hostname) - 2) {
		unsigned r = (unsigned)echo_now_ms() ^ ((unsigned)getpid() << 16);
		int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (read(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
				r ^= 0x5bd1e995u;
			close(fd);
		}
		cfg->hostname_len += (size_t)snprintf(cfg->hostname + cfg->hostname_len, 10, "#%08x", r);
	}
	const char *pf = getenv("ECHO_PING_FAIL_AFTER");
	if (pf && atoi(pf) > 0)
		cfg->ping_fail_at_ms = echo_now_ms() + atoi(pf) * 1000LL;
	const char *po = getenv("ECHO_PING_OK_AFTER");
	if (po && atoi(po) > 0)
		cfg->ping_ok_at_ms = echo_now_ms() + atoi(po) * 1000LL;
	cfg->hostname[cfg->hostname_len++] = ':';
	cfg->hostname[cfg->hostname_len] = '\0';
	return 0;
}

static int listen_on(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_ANY) };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv; /* started as `/serve serve`; the argument is SageMaker's convention */

	if (getenv("ECHO_EXIT_AT_START") && strcmp(getenv("ECHO_EXIT_AT_START"), "1") == 0) {
		fprintf(stderr, "echo: ECHO_EXIT_AT_START=1, exiting with status 3\n");
		return 3;
	}

	struct server_config cfg;
	if (config_load(&cfg) < 0)
		return 2;

	int port = 8080;
	const char *ps = getenv("SAGEMAKER_BIND_TO_PORT");
	if (ps && *ps) {
		char *end;
		long n = strtol(ps, &end, 10);
		if (*end || n < 1 || n > 65535) {
			fprintf(stderr, "echo: bad SAGEMAKER_BIND_TO_PORT=%s\n", ps);
			return 2;
		}
		port = (int)n;
	}

	const char *it = getenv("ECHO_IGNORE_TERM");
	bool ignore_term = it && strcmp(it, "1") == 0; /* for testing stop timeouts */

	/* ECHO_TERM_DEFAULT=1: leave SIGTERM as it is, like a server that
	 * never installs a handler; as pid 1 of its namespace it never sees it */
	const char *td = getenv("ECHO_TERM_DEFAULT");
	bool term_default = td && strcmp(td, "1") == 0;

	signal(SIGPIPE, SIG_IGN);
	/* As pid 1 of its namespace the default SIGTERM action does nothing, so
	 * SIGTERM and SIGINT are taken through a signalfd and end the loop. */
	sigset_t mask;
	sigemptyset(&mask);
	if (!term_default)
		sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	struct server s = { .cfg = &cfg };
	struct echo_models models = { 0 };
	const char *mm = getenv("SAGEMAKER_MULTI_MODEL");
	if (mm && strcmp(mm, "true") == 0) {
		const char *v = getenv("ECHO_MAX_MODELS");
		models.max = v ? (size_t)strtoul(v, NULL, 10) : 0;
		v = getenv("ECHO_LOAD_FAIL");
		models.load_fail = v && strcmp(v, "1") == 0;
		v = getenv("ECHO_LOAD_DELAY_MS");
		models.load_delay_ms = v ? strtol(v, NULL, 10) : 0;
		s.models = &models;
	}
	s.signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	s.listen_fd = listen_on(port);
	if (s.listen_fd < 0) {
		fprintf(stderr, "echo: listen on 0.0.0.0:%d: %s\n", port, strerror(errno));
		return 1;
	}
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s.epfd < 0 || s.signal_fd < 0) {
		fprintf(stderr, "echo: epoll/signalfd: %s\n", strerror(errno));
		return 1;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = s.listen_fd };
	epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.listen_fd, &ev);
	ev.data.fd = s.signal_fd;
	epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.signal_fd, &ev);

	printf("echo: listening on 0.0.0.0:%d mode=%s\n", port, mode_names[cfg.mode]);
	fflush(stdout);

	struct epoll_event events[256];
	for (;;) {
		int n = epoll_wait(s.epfd, events, 256, stream_wait_ms(&s));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "echo: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			if (fd == s.listen_fd) {
				server_accept(&s);
			} else if (fd == s.signal_fd) {
				struct signalfd_siginfo si;
				if (read(s.signal_fd, &si, sizeof(si)) == sizeof(si)) {
					if (ignore_term) {
						printf("echo: ignoring signal %u (ECHO_IGNORE_TERM=1)\n", si.ssi_signo);
						fflush(stdout);
						continue;
					}
					printf("echo: signal %u, exiting\n", si.ssi_signo);
					fflush(stdout);
					return 0;
				}
			} else if ((size_t)fd < s.n_conns && s.conns[fd]) {
				conn_on_event(&s, s.conns[fd], events[i].events);
			}
		}
		/* streamed answers whose next chunk is due */
		for (size_t fd = 0; s.n_streams > 0 && fd < s.n_conns; fd++) {
			struct conn *c = s.conns[fd];
			if (!c || !c->stream || c->out_len != c->out_off)
				continue;
			int r = stream_pump(c);
			if (r < 0 || conn_rearm(&s, c) < 0)
				conn_close(&s, c, r == -2);
		}
	}
}
