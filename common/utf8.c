/* utf8.c — see utf8.h. */
#include "utf8.h"

#define UTF8_REPLACEMENT "\xef\xbf\xbd"

/* The length of the well-formed sequence at p[0..len), or 0 when it is
 * ill-formed; then *bad is the length of its maximal subpart (≥ 1). The
 * ranges are the Unicode Standard's table of well-formed UTF-8 (3-7). */
static size_t sequence_length(const unsigned char *p, size_t len, size_t *bad)
{
	unsigned char c = p[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0; /* no overlong forms */
		else if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90; /* no overlong forms */
		else if (c == 0xf4)
			hi = 0x8f; /* nothing past U+10FFFF */
	} else {
		*bad = 1;
		return 0;
	}
	size_t i = 1;
	for (; i < need && i < len; i++) {
		unsigned char min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xbf;
		if (p[i] < min || p[i] > max)
			break;
	}
	if (i == need)
		return need;
	*bad = i;
	return 0;
}

int utf8_sanitize(struct berth_buf *out, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, start = 0;
	while (i < len) {
		size_t bad = 0;
		size_t n = sequence_length(p + i, len - i, &bad);
		if (n > 0) {
			i += n;
			continue;
		}
		if (buf_append(out, s + start, i - start) < 0 || buf_append(out, UTF8_REPLACEMENT, 3) < 0)
			return -1;
		i += bad;
		start = i;
	}
	/* reserve even for an empty string, so out->data is never NULL on success */
	return buf_append(out, s + start, len - start);
}

bool utf8_is_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len;) {
		size_t bad = 0;
		size_t n = sequence_length(p + i, len - i, &bad);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}
