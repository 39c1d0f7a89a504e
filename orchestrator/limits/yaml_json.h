/* yaml_json.h — one YAML document as JSON text (libyaml), so CDI specs in
 * YAML go through the same yajl tree and the same validator as JSON ones.
 *
 * Mappings become objects (keys as strings), sequences arrays; a plain
 * scalar that reads as an integer, a decimal number, true/false or
 * null/~ becomes that JSON value, every other scalar (quoted ones always)
 * a string. Refused with a message naming the line: anchors and aliases
 * (a spec has no use for them and they make small files large), tags, a
 * second document, nesting deeper than YAML_JSON_MAX_DEPTH, a mapping key
 * that is not a scalar, and anything libyaml cannot parse. */
#ifndef BERTH_YAML_JSON_H
#define BERTH_YAML_JSON_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

#define YAML_JSON_MAX_DEPTH 64

int yaml_to_json(const char *text, size_t len, struct berth_buf *out, struct berth_err *err);

#endif
