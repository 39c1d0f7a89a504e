/* utf8.h — making text that may not be UTF-8 (a container's answer, a file
 * name from an archive, an errno message in another locale) safe to put in
 * a JSON string, which must be UTF-8 (RFC 8259 §8.1; yajl refuses anything
 * else).
 *
 * Each ill-formed part becomes U+FFFD, following the Unicode Standard's
 * "U+FFFD substitution of maximal subparts" (chapter 3, the practice the
 * WHATWG Encoding Standard and most decoders use): a truncated or broken
 * sequence gives one U+FFFD for the longest prefix that could have begun a
 * well-formed sequence, then decoding goes on at the next byte; a byte
 * that can begin nothing (80..BF alone, C0, C1, F5..FF) gives one U+FFFD.
 * Overlong forms, surrogates (ED A0..BF) and code points past U+10FFFF are
 * ill-formed. Well-formed text is copied unchanged, so replacing twice
 * changes nothing. */
#ifndef BERTH_UTF8_H
#define BERTH_UTF8_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Appends s[0..len) to out with every ill-formed part replaced by U+FFFD
 * (EF BF BD). 0, or -1 on ENOMEM. NUL bytes are copied (JSON escapes them). */
int utf8_sanitize(struct berth_buf *out, const char *s, size_t len);

/* true when s[0..len) is well-formed UTF-8. */
bool utf8_is_valid(const char *s, size_t len);

#endif
