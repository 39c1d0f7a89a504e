/* buf.h — a growable byte buffer, always NUL-terminated after len bytes. */
#ifndef BERTH_BUF_H
#define BERTH_BUF_H

#include <stddef.h>
#include <stdarg.h>

struct berth_buf {
	char *data;   /* NULL until the first append; data[len] == '\0' after */
	size_t len;
	size_t cap;
};

#define BERTH_BUF_INIT { NULL, 0, 0 }

/* The capacity b has after buf_reserve(b, extra) (its growth rule), so a
 * caller can account for memory before it is allocated. */
size_t buf_capacity_for(const struct berth_buf *b, size_t extra);
/* Each returns 0, or -1 with errno = ENOMEM. */
int buf_reserve(struct berth_buf *b, size_t extra);
int buf_append(struct berth_buf *b, const void *data, size_t len);
int buf_append_str(struct berth_buf *b, const char *s);
int buf_printf(struct berth_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct berth_buf *b, const char *fmt, va_list ap);
/* v in decimal, as "%llu" would print it, without printf's cost (hot paths:
 * response heads, Content-Length). buf_format_u64 writes the digits to
 * out (no NUL) and returns how many. */
#define BUF_U64_DIGITS 20
size_t buf_format_u64(char out[BUF_U64_DIGITS], unsigned long long v);
int buf_append_u64(struct berth_buf *b, unsigned long long v);
/* Drops the first n bytes (n <= len), keeping the rest. */
void buf_consume(struct berth_buf *b, size_t n);
void buf_reset(struct berth_buf *b); /* len = 0, keeps memory */
void buf_free(struct berth_buf *b);  /* frees, back to BERTH_BUF_INIT */
/* Takes the data out (caller frees); b becomes empty. Never NULL unless ENOMEM. */
char *buf_steal(struct berth_buf *b);

#endif
