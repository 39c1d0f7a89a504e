/* request.c — protocol-neutral request/response object and its pool. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "request.h"
#include "sigv4.h"

#define REQUEST_POOL_KEEP 256
#define REQUEST_KEEP_BUFFER (1u << 20) /* larger buffers are freed on release */
#define REQUEST_POOL_KEEP_BYTES (8u << 20) /* buffer bytes kept by the whole pool */

static size_t buffer_bytes(const struct request *req)
{
	return req->text.cap + req->body.cap + req->resp_text.cap + req->resp_body.cap;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

void request_format_id(char out[REQUEST_ID_LEN + 1], uint64_t hi, uint64_t lo)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	for (int i = 0; i < 8; i++) {
		b[i] = (unsigned char)(hi >> (56 - 8 * i));
		b[8 + i] = (unsigned char)(lo >> (56 - 8 * i));
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 shape */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	char *p = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[b[i] >> 4];
		*p++ = hex[b[i] & 15];
	}
	*p = '\0';
}

void request_pool_init(struct request_pool *pool, uint64_t seed)
{
	pool->free = NULL;
	pool->n_free = 0;
	pool->kept_bytes = 0;
	pool->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

static void request_free(struct request *req)
{
	buf_free(&req->text);
	buf_free(&req->body);
	buf_free(&req->resp_text);
	buf_free(&req->resp_body);
	sigv4_hasher_free(req->hasher);
	free(req->refusal);
	free(req->auth);
	free(req);
}

void request_pool_free(struct request_pool *pool)
{
	while (pool->free) {
		struct request *r = pool->free;
		pool->free = r->pool_next;
		request_free(r);
	}
	pool->n_free = 0;
	pool->kept_bytes = 0;
}

struct request *request_acquire(struct request_pool *pool, uint64_t now_ns)
{
	struct request *req = pool->free;
	if (req) {
		pool->free = req->pool_next;
		pool->n_free--;
		pool->kept_bytes -= buffer_bytes(req);
		struct berth_buf text = req->text, body = req->body, rt = req->resp_text, rb = req->resp_body;
		struct sigv4_hasher *hasher = req->hasher;
		struct sigv4_auth *auth = req->auth;
		free(req->refusal);
		memset(req, 0, sizeof(*req));
		req->hasher = hasher;
		req->auth = auth;
		req->text = text;
		req->body = body;
		req->resp_text = rt;
		req->resp_body = rb;
		buf_reset(&req->text);
		buf_reset(&req->body);
		buf_reset(&req->resp_text);
		buf_reset(&req->resp_body);
	} else {
		req = calloc(1, sizeof(*req));
		if (!req)
			return NULL;
	}
	req->start_ns = now_ns;
	uint64_t hi = xorshift(&pool->rng), lo = xorshift(&pool->rng);
	request_format_id(req->id, hi, lo);
	return req;
}

static void trim_buffer(struct berth_buf *b)
{
	if (b->cap > REQUEST_KEEP_BUFFER)
		buf_free(b);
}

static void request_drop_charge(struct request *req)
{
	if (req->charged_global)
		budget_release(req->charged_conn, req->charged_global, req->charged);
	req->charged = 0;
	req->charged_conn = req->charged_global = NULL;
}

void request_release(struct request_pool *pool, struct request *req)
{
	if (!req)
		return;
	request_drop_charge(req);
	if (pool->n_free >= REQUEST_POOL_KEEP) {
		request_free(req);
		return;
	}
	trim_buffer(&req->text);
	trim_buffer(&req->body);
	trim_buffer(&req->resp_text);
	trim_buffer(&req->resp_body);
	/* a burst of large bodies (or an attack) must not stay resident */
	if (pool->kept_bytes + buffer_bytes(req) > REQUEST_POOL_KEEP_BYTES) {
		request_free(req);
		return;
	}
	pool->kept_bytes += buffer_bytes(req);
	req->pool_next = pool->free;
	pool->free = req;
	pool->n_free++;
}

void request_drop_body(struct request *req)
{
	buf_free(&req->body);
	request_drop_charge(req);
}

int request_append_body(struct request *req, struct budget *conn, struct budget *global, const void *data,
			size_t len)
{
	size_t cap = buf_capacity_for(&req->body, len);
	if (cap > req->charged) {
		if (!budget_charge(conn, global, cap - req->charged))
			return 1;
		req->charged_conn = conn;
		req->charged_global = global;
		req->charged = cap;
	}
	if (buf_append(&req->body, data, len) < 0)
		return -1;
	if (req->hash_body)
		sigv4_hasher_update(req->hasher, data, len);
	return 0;
}

int request_hash_body(struct request *req)
{
	if (req->hasher == NULL && (req->hasher = sigv4_hasher_new()) == NULL)
		return -1;
	sigv4_hasher_reset(req->hasher);
	req->hash_body = true;
	return 0;
}

void request_payload_hash(struct request *req, char out[65])
{
	if (!req->hash_body) {
		memcpy(out, SIGV4_EMPTY_PAYLOAD_HASH, 65);
		if (req->body.len > 0)
			sigv4_sha256_hex(req->body.data, req->body.len, out);
		return;
	}
	sigv4_hasher_final_hex(req->hasher, out);
	req->hash_body = false;
}

static int text_add(struct berth_buf *b, const char *s, size_t len, struct request_span *out)
{
	if (b->len > UINT32_MAX - len - 1)
		return -1;
	out->off = (uint32_t)b->len;
	out->len = (uint32_t)len;
	if (buf_append(b, s, len) < 0 || buf_append(b, "", 1) < 0)
		return -1;
	return 0;
}

int request_set_path(struct request *req, const char *path, size_t len)
{
	if (req->text.len + len + 1 > REQUEST_MAX_HEADER_BYTES)
		return -1;
	return text_add(&req->text, path, len, &req->path);
}

int request_add_header(struct request *req, const char *name, size_t name_len,
		       const char *value, size_t value_len)
{
	if (req->n_headers >= REQUEST_MAX_HEADERS ||
	    req->text.len + name_len + value_len + 2 > REQUEST_MAX_HEADER_BYTES)
		return -1;
	struct request_header *h = &req->headers[req->n_headers];
	if (text_add(&req->text, name, name_len, &h->name) < 0)
		return -1;
	char *n = req->text.data + h->name.off;
	for (size_t i = 0; i < name_len; i++)
		if (n[i] >= 'A' && n[i] <= 'Z')
			n[i] = (char)(n[i] + ('a' - 'A'));
	if (text_add(&req->text, value, value_len, &h->value) < 0)
		return -1;
	req->n_headers++;
	return 0;
}

enum request_method request_method_from(const char *name, size_t len)
{
	if (len == 3 && memcmp(name, "GET", 3) == 0)
		return REQUEST_GET;
	if (len == 4 && memcmp(name, "POST", 4) == 0)
		return REQUEST_POST;
	if (len == 4 && memcmp(name, "HEAD", 4) == 0)
		return REQUEST_HEAD;
	return REQUEST_OTHER;
}

const char *request_header(const struct request *req, const char *name, size_t *len)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct request_header *h = &req->headers[i];
		if (h->name.len == nl && memcmp(req->text.data + h->name.off, name, nl) == 0) {
			if (len)
				*len = h->value.len;
			return req->text.data + h->value.off;
		}
	}
	return NULL;
}

void request_respond_start(struct request *req, int status)
{
	req->status = status;
	req->n_resp_headers = 0;
	buf_reset(&req->resp_text);
	request_respond_header(req, "x-amzn-RequestId", req->id);
}

int request_respond_header(struct request *req, const char *name, const char *value)
{
	if (req->n_resp_headers >= REQUEST_MAX_RESPONSE_HEADERS)
		return -1;
	struct request_header *h = &req->resp_headers[req->n_resp_headers];
	if (text_add(&req->resp_text, name, strlen(name), &h->name) < 0 ||
	    text_add(&req->resp_text, value, strlen(value), &h->value) < 0)
		return -1;
	req->n_resp_headers++;
	return 0;
}

void request_respond_finish(struct request *req)
{
	if (req->responded)
		return;
	req->responded = true;
	req->cancel = NULL;
	req->cancel_arg = NULL;
	req->ops->send(req);
}

void request_respond(struct request *req, int status, const char *content_type,
		     const void *body, size_t len)
{
	request_respond_start(req, status);
	if (content_type)
		request_respond_header(req, "Content-Type", content_type);
	buf_reset(&req->resp_body);
	if (len && buf_append(&req->resp_body, body, len) < 0)
		buf_reset(&req->resp_body);
	request_respond_finish(req);
}

void request_stream_begin(struct request *req, void (*resume)(void *arg))
{
	if (req->responded)
		return;
	req->responded = true;
	req->streaming = true;
	req->stream_ended = false;
	req->stream_waiting = false;
	req->stream_resume = resume;
	buf_reset(&req->resp_body);
	req->resp_body_sent = 0;
	req->ops->send(req);
}

int request_stream_write(struct request *req, const struct iovec *iov, int n)
{
	if (!req->streaming || req->stream_ended)
		return -1;
	if (req->ops->stream_more(req, iov, n) < 0)
		return -1;
	if (request_stream_pending(req) > REQUEST_STREAM_HIGH_WATER) {
		req->stream_waiting = true;
		return 1;
	}
	return 0;
}

void request_stream_end(struct request *req)
{
	if (!req->streaming || req->stream_ended)
		return;
	req->stream_ended = true;
	req->stream_waiting = false;
	req->cancel = NULL;
	req->cancel_arg = NULL;
	req->stream_resume = NULL;
	req->ops->stream_more(req, NULL, 0);
}

void request_stream_drained(struct request *req)
{
	if (!req->stream_waiting || request_stream_pending(req) > REQUEST_STREAM_LOW_WATER)
		return;
	req->stream_waiting = false;
	if (req->stream_resume)
		req->stream_resume(req->cancel_arg);
}

void request_set_cancel(struct request *req, void (*cancel)(void *), void *arg)
{
	req->cancel = cancel;
	req->cancel_arg = arg;
}

void request_abort(struct request *req)
{
	void (*cancel)(void *) = req->cancel;
	void *arg = req->cancel_arg;
	req->cancel = NULL;
	req->cancel_arg = NULL;
	if (cancel)
		cancel(arg);
}
