/* buf.c — see buf.h. */
#include "buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t buf_capacity_for(const struct berth_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len - 1)
		return SIZE_MAX;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return b->cap;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	return cap;
}

int buf_reserve(struct berth_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len - 1) {
		errno = ENOMEM;
		return -1;
	}
	size_t cap = buf_capacity_for(b, extra);
	if (cap == b->cap)
		return 0;
	char *p = realloc(b->data, cap);
	if (p == NULL) {
		errno = ENOMEM;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct berth_buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) < 0)
		return -1;
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append_str(struct berth_buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_vprintf(struct berth_buf *b, const char *fmt, va_list ap)
{
	va_list copy;
	va_copy(copy, ap);
	int n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct berth_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

size_t buf_format_u64(char out[BUF_U64_DIGITS], unsigned long long v)
{
	char digits[BUF_U64_DIGITS]; /* 2^64 - 1 has 20 */
	size_t n = sizeof(digits);
	do {
		digits[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	memcpy(out, digits + n, sizeof(digits) - n);
	return sizeof(digits) - n;
}

int buf_append_u64(struct berth_buf *b, unsigned long long v)
{
	char digits[BUF_U64_DIGITS];
	return buf_append(b, digits, buf_format_u64(digits, v));
}

void buf_consume(struct berth_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
	} else {
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
	if (b->data != NULL)
		b->data[b->len] = '\0';
}

void buf_reset(struct berth_buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

void buf_free(struct berth_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *buf_steal(struct berth_buf *b)
{
	if (b->data == NULL && buf_reserve(b, 0) < 0)
		return NULL;
	if (b->len == 0)
		b->data[0] = '\0';
	char *p = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
