/* fuzz_json_depth.h — what the JSON-reading fuzz targets share: a nesting
 * depth scan, so that the fuzzers do not keep rediscovering the one known
 * JSON crash (yajl_tree_free recurses once per nesting level: a deep
 * enough "[[[[…" overflows the stack). That bound belongs in common/json.c
 * and is being added there; until then the targets skip deeper inputs.
 * Header-only: each target is built from one .c file. */
#ifndef BERTH_FUZZ_JSON_DEPTH_H
#define BERTH_FUZZ_JSON_DEPTH_H

#include <stdbool.h>
#include <stddef.h>

#define FUZZ_JSON_MAX_DEPTH 1000

/* True when text nests arrays/objects deeper than limit (strings skipped,
 * as a JSON parser reads them). */
static inline bool fuzz_json_too_deep(const char *text, size_t len, size_t limit)
{
	size_t depth = 0;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char ch = text[i];
		if (in_string) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_string = false;
		} else if (ch == '"') {
			in_string = true;
		} else if (ch == '[' || ch == '{') {
			if (++depth > limit)
				return true;
		} else if ((ch == ']' || ch == '}') && depth > 0) {
			depth--;
		}
	}
	return false;
}

#endif
