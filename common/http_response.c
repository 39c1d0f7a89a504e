/* http_response.c — see http_response.h. */
#include "http_response.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static struct http_response *of(http_parser *p)
{
	return p->data;
}

/* Interim answers (1xx) are skipped; trailers come after the final head. */
static bool reporting_headers(const struct http_response *r)
{
	return !r->head_done && r->parser.status_code >= 200;
}

static int flush_header(struct http_response *r)
{
	if (!r->in_value)
		return 0;
	r->in_value = false;
	int rc = 0;
	if (r->cb->on_header != NULL) {
		const char *d = r->header.data;
		rc = r->cb->on_header(r->user_data, d, r->name_len, d + r->name_len, r->header.len - r->name_len);
		if (rc != 0)
			r->stopped = true;
	}
	buf_reset(&r->header);
	r->name_len = 0;
	return rc == 0 ? 0 : -1;
}

static int on_message_begin(http_parser *p)
{
	struct http_response *r = of(p);
	r->in_value = false;
	r->name_len = 0;
	buf_reset(&r->header);
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_response *r = of(p);
	if (!reporting_headers(r))
		return 0;
	if (r->in_value && flush_header(r) < 0)
		return -1;
	if (buf_append(&r->header, at, len) < 0) {
		r->fail = HTTP_RESPONSE_HEAD_TOO_LARGE; /* no memory for it: too large for us */
		return -1;
	}
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_response *r = of(p);
	if (!reporting_headers(r))
		return 0;
	if (!r->in_value) {
		r->in_value = true;
		r->name_len = r->header.len;
	}
	if (buf_append(&r->header, at, len) < 0) {
		r->fail = HTTP_RESPONSE_HEAD_TOO_LARGE;
		return -1;
	}
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_response *r = of(p);
	if (p->status_code < 200)
		return 0; /* interim: its end completes it (no body) */
	if (flush_header(r) < 0)
		return -1;
	r->head_done = true;
	bool chunked = (p->flags & F_CHUNKED) != 0;
	uint64_t length = chunked || p->content_length == ULLONG_MAX ? HTTP_RESPONSE_NO_LENGTH : p->content_length;
	r->content_length = length;
	if (length != HTTP_RESPONSE_NO_LENGTH && length > r->max_body) {
		r->fail = HTTP_RESPONSE_BODY_TOO_LARGE;
		return -1;
	}
	if (r->cb->on_head != NULL && r->cb->on_head(r->user_data, (int)p->status_code, length, chunked) != 0) {
		r->stopped = true;
		return -1;
	}
	/* stop here so the feed knows where the head ended (http_response_feed) */
	http_parser_pause(p, 1);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_response *r = of(p);
	if (len > r->max_body - r->body_bytes) {
		r->fail = HTTP_RESPONSE_BODY_TOO_LARGE;
		return -1;
	}
	r->body_bytes += len;
	if (r->cb->on_body != NULL && r->cb->on_body(r->user_data, at, len) != 0) {
		r->stopped = true;
		return -1;
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_response *r = of(p);
	if (p->status_code < 200) {
		on_message_begin(p); /* an interim answer (100 Continue): the final one follows */
		return 0;
	}
	r->message_done = true;
	http_parser_pause(p, 1); /* bytes after the answer belong to the caller */
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void http_response_init(struct http_response *r, const struct http_response_callbacks *cb, void *user_data,
			size_t max_head, uint64_t max_body)
{
	memset(r, 0, sizeof(*r));
	r->cb = cb;
	r->user_data = user_data;
	r->max_head = max_head;
	r->max_body = max_body;
	http_response_reset(r);
}

void http_response_reset(struct http_response *r)
{
	http_parser_init(&r->parser, HTTP_RESPONSE);
	r->parser.data = r;
	r->head_bytes = 0;
	r->body_bytes = 0;
	r->content_length = HTTP_RESPONSE_NO_LENGTH;
	r->head_done = false;
	r->message_done = false;
	r->in_value = false;
	r->stopped = false;
	r->fail = HTTP_RESPONSE_MORE;
	buf_reset(&r->header);
	r->name_len = 0;
}

void http_response_free(struct http_response *r)
{
	buf_free(&r->header);
}

/* The result of a parser error (not a pause). */
static enum http_response_result failure(const struct http_response *r, bool eof)
{
	if (r->fail != HTTP_RESPONSE_MORE)
		return r->fail;
	if (r->stopped)
		return HTTP_RESPONSE_STOPPED;
	if (eof && HTTP_PARSER_ERRNO(&r->parser) == HPE_INVALID_EOF_STATE)
		return HTTP_RESPONSE_EARLY_EOF;
	return HTTP_RESPONSE_MALFORMED;
}

enum http_response_result http_response_feed(struct http_response *r, const char *data, size_t len,
					      size_t *used)
{
	size_t off = 0;
	if (used != NULL)
		*used = 0;
	if (len == 0) {
		http_parser_execute(&r->parser, &settings, NULL, 0);
		if (r->message_done)
			return HTTP_RESPONSE_DONE;
		enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
		if (e != HPE_OK && e != HPE_PAUSED && e != HPE_INVALID_EOF_STATE)
			return failure(r, true);
		return HTTP_RESPONSE_EARLY_EOF;
	}
	while (off < len) {
		size_t piece = len - off;
		bool in_head = !r->head_done;
		if (in_head) {
			if (r->head_bytes >= r->max_head)
				return HTTP_RESPONSE_HEAD_TOO_LARGE;
			if (piece > r->max_head - r->head_bytes)
				piece = r->max_head - r->head_bytes;
		}
		size_t n = http_parser_execute(&r->parser, &settings, data + off, piece);
		enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
		off += n;
		if (in_head)
			r->head_bytes += n;
		if (e == HPE_PAUSED) {
			if (r->message_done) {
				if (used != NULL)
					*used = off;
				return HTTP_RESPONSE_DONE;
			}
			/* paused at the end of the head, on its last '\n', which the
			 * next execute consumes: it is the head's, not the body's */
			r->head_bytes += 1;
			if (r->head_bytes > r->max_head)
				return HTTP_RESPONSE_HEAD_TOO_LARGE;
			http_parser_pause(&r->parser, 0);
			continue;
		}
		if (e != HPE_OK)
			return failure(r, false);
		if (r->parser.upgrade) {
			r->fail = HTTP_RESPONSE_MALFORMED;
			return HTTP_RESPONSE_MALFORMED;
		}
		if (n < piece)
			return HTTP_RESPONSE_MALFORMED; /* http-parser stopped without saying why */
	}
	if (used != NULL)
		*used = off;
	if (!r->head_done && r->head_bytes >= r->max_head)
		return HTTP_RESPONSE_HEAD_TOO_LARGE;
	return HTTP_RESPONSE_MORE;
}

bool http_response_keep_alive(const struct http_response *r)
{
	return r->message_done && http_should_keep_alive(&r->parser);
}

int http_response_status(const struct http_response *r)
{
	return r->head_done ? (int)r->parser.status_code : 0;
}

uint64_t http_response_content_length(const struct http_response *r)
{
	return r->head_done ? r->content_length : HTTP_RESPONSE_NO_LENGTH;
}

void http_response_set_limits(struct http_response *r, size_t max_head, uint64_t max_body)
{
	r->max_head = max_head;
	r->max_body = max_body;
}

void http_response_describe(const struct http_response *r, enum http_response_result result, char *out,
			    size_t size)
{
	switch (result) {
	case HTTP_RESPONSE_MORE:
		snprintf(out, size, "the response is not complete yet");
		break;
	case HTTP_RESPONSE_DONE:
		snprintf(out, size, "the response is complete");
		break;
	case HTTP_RESPONSE_MALFORMED:
		if (r->parser.upgrade)
			snprintf(out, size, "malformed HTTP response: it switches protocols, which berth never asks for");
		else
			snprintf(out, size, "malformed HTTP response: %s",
				 http_errno_description(HTTP_PARSER_ERRNO(&r->parser)));
		break;
	case HTTP_RESPONSE_HEAD_TOO_LARGE:
		snprintf(out, size, "the response's status line and headers exceed the maximum of %zu bytes",
			 r->max_head);
		break;
	case HTTP_RESPONSE_BODY_TOO_LARGE:
		snprintf(out, size, "the response body exceeds the maximum of %llu bytes",
			 (unsigned long long)r->max_body);
		break;
	case HTTP_RESPONSE_EARLY_EOF:
		snprintf(out, size, "the connection closed before a complete response");
		break;
	case HTTP_RESPONSE_STOPPED:
		snprintf(out, size, "reading the response was stopped");
		break;
	}
}
