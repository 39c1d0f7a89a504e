/* http_response.h — the one HTTP/1.1 response parser of berth: berthd's
 * health pings and model loads (through http_client.h) and the router's
 * upstream connections read containers' answers with it. Built on
 * http-parser (libhttp_parser); binaries that use it link -lhttp_parser,
 * the shim does not.
 *
 * Incremental and I/O-free: the caller feeds bytes as they arrive, in
 * pieces of any size (down to one byte), and the parser calls back, with
 * the caller's user_data, for
 *   - each header of the final answer, name and value whole even when the
 *     feed split them (interim 1xx answers are skipped; trailers after a
 *     chunked body are checked by http-parser and not reported);
 *   - the end of the head: status, declared Content-Length, chunked or not;
 *   - each piece of the body, decoded (Content-Length, chunked with any
 *     chunk extensions, or delimited by the close: feed len 0 at EOF).
 * No global state: one struct per connection; http-parser's own head limit
 * (a process-wide setting) is left alone, this module counts.
 *
 * Bounds: the head (status line and headers, interim answers included)
 * is at most max_head bytes, the decoded body at most max_body bytes; a
 * declared Content-Length over max_body is refused at the end of the head,
 * before any body byte is read. */
#ifndef BERTH_HTTP_RESPONSE_H
#define BERTH_HTTP_RESPONSE_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define HTTP_RESPONSE_NO_LENGTH UINT64_MAX /* no Content-Length declared */

/* Callbacks (each may be NULL). Return 0 to go on, -1 to stop parsing:
 * the feed then answers HTTP_RESPONSE_STOPPED. `at` points into the bytes
 * being fed (valid during the call only); a header's name and value are
 * not NUL-terminated. */
struct http_response_callbacks {
	int (*on_header)(void *user_data, const char *name, size_t name_len, const char *value,
			 size_t value_len);
	int (*on_head)(void *user_data, int status, uint64_t content_length, bool chunked);
	int (*on_body)(void *user_data, const char *at, size_t len);
};

enum http_response_result {
	HTTP_RESPONSE_MORE,           /* all bytes used; the answer is not complete yet */
	HTTP_RESPONSE_DONE,           /* the answer is complete (bytes after it are left unused) */
	HTTP_RESPONSE_MALFORMED,      /* not an HTTP/1.x answer (http_response_describe says how) */
	HTTP_RESPONSE_HEAD_TOO_LARGE, /* the head exceeds max_head */
	HTTP_RESPONSE_BODY_TOO_LARGE, /* the body (declared or received) exceeds max_body */
	HTTP_RESPONSE_EARLY_EOF,      /* EOF before the answer was complete */
	HTTP_RESPONSE_STOPPED         /* a callback returned -1 */
};

struct http_response {
	/* private: embedded so a connection needs no extra allocation */
	http_parser parser;
	const struct http_response_callbacks *cb;
	void *user_data;
	size_t max_head;
	uint64_t max_body;
	size_t head_bytes;  /* head bytes consumed so far */
	uint64_t body_bytes;
	uint64_t content_length; /* declared, at the end of the head */
	bool head_done;     /* the final answer's head is complete */
	bool message_done;
	bool in_value;      /* the last header piece was a value */
	bool stopped;       /* a callback asked to stop */
	enum http_response_result fail; /* set by a callback-side check */
	struct berth_buf header; /* the current header: name then value */
	size_t name_len;
};

/* Ready for one answer. cb must outlive the parser. */
void http_response_init(struct http_response *r, const struct http_response_callbacks *cb, void *user_data,
			size_t max_head, uint64_t max_body);
/* Ready for the next answer on the same connection (keeps memory). */
void http_response_reset(struct http_response *r);
void http_response_free(struct http_response *r);

/* Feeds len bytes (len 0: the peer closed). *used (may be NULL) = bytes
 * consumed: all of them for MORE, up to the answer's end for DONE. After
 * anything but MORE, feed nothing more until http_response_reset. */
enum http_response_result http_response_feed(struct http_response *r, const char *data, size_t len,
					      size_t *used);

/* After DONE: whether the connection may carry another exchange. */
bool http_response_keep_alive(const struct http_response *r);
/* The final answer's status (0 until its head is complete), and its
 * declared Content-Length (HTTP_RESPONSE_NO_LENGTH: none or chunked) —
 * also after BODY_TOO_LARGE for a declared length, which on_head never
 * saw. */
int http_response_status(const struct http_response *r);
uint64_t http_response_content_length(const struct http_response *r);
/* Changes the bounds for the answer being read (before its head ends). */
void http_response_set_limits(struct http_response *r, size_t max_head, uint64_t max_body);
/* Writes what went wrong for a result other than MORE/DONE, in words a
 * log or an error answer can quote ("malformed HTTP response: invalid
 * HTTP status code", "the response's head exceeds 16384 bytes", ...). */
void http_response_describe(const struct http_response *r, enum http_response_result result, char *out,
			    size_t size);

#endif
