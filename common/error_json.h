/* error_json.h — the one renderer of error bodies, for every binary:
 * berthd's control-plane answers and the router's own answers.
 *
 *   error_json_render(out, "ValidationException", m) → {"__type":"ValidationException","message":"m"}
 *   error_json_render(out, NULL, m)                   → {"message":"m"}
 *
 * The first is AWS JSON 1.1's error shape (botocore reads __type and
 * message), the second REST-JSON's (the type travels in the
 * x-amzn-ErrorType header). Messages may quote text from outside (a name
 * from an archive, a container's answer, an errno message): whatever the
 * bytes, the body is valid JSON, with ill-formed UTF-8 replaced by U+FFFD
 * as utf8.h says; the rest of the message is kept. */
#ifndef BERTH_ERROR_JSON_H
#define BERTH_ERROR_JSON_H

#include <stddef.h>
#include <yajl/yajl_gen.h>

#include "buf.h"

/* Appends the body to out. 0, or -1 on ENOMEM (out may hold part of it:
 * the caller resets it). */
int error_json_render(struct berth_buf *out, const char *type, const char *message);

/* Writes s[0..len) as a JSON string into g, ill-formed UTF-8 replaced by
 * U+FFFD (for error bodies with more members, such as ModelError's). */
int error_json_gen_text(yajl_gen g, const char *s, size_t len);

#endif
