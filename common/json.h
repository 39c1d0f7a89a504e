/* json.h — small helpers over yajl (tree parser and generator). */
#ifndef BERTH_JSON_H
#define BERTH_JSON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "buf.h"
#include "err.h"

/* Documents nested deeper than this (arrays and objects; the outermost
 * counts 1) are refused before any tree is built: no SageMaker request,
 * OCI document, state file or berth message comes near it, and a deep
 * tree would overflow the stack when yajl frees it. */
#define JSON_MAX_DEPTH 64
/* err->errnum of that refusal (the message has no strerror text). */
#define JSON_TOO_DEEP EMLINK

/* Parses len bytes (need not be NUL-terminated). NULL on error with a
 * message that includes yajl's position information; errnum ENOMEM when
 * out of memory, JSON_TOO_DEEP past JSON_MAX_DEPTH ("JSON nests arrays
 * and objects more than 64 levels deep"), else 0. Free with yajl_tree_free. */
yajl_val json_parse(const char *text, size_t len, struct berth_err *err);

/* Member lookup in an object (one level, exact key). NULL when obj is not an
 * object or the key is absent. */
yajl_val json_get(yajl_val obj, const char *key);
/* Typed lookups: NULL / fallback when absent or of another type. */
const char *json_get_string(yajl_val obj, const char *key);
bool json_get_int64(yajl_val obj, const char *key, long long *out); /* true if present and integral */
bool json_get_double(yajl_val obj, const char *key, double *out);   /* any JSON number */
bool json_get_bool(yajl_val obj, const char *key, bool *out);

/* Generator: json_gen_new() makes a yajl_gen (no beautify, validate UTF-8).
 * json_gen_str(g, s) writes a string (NULL writes null); json_gen_kv_* write
 * a key and a value inside an object. json_gen_finish appends the document
 * to out and frees g. All return 0 or -1 (yajl error / ENOMEM). */
yajl_gen json_gen_new(void);
int json_gen_str(yajl_gen g, const char *s);
int json_gen_strn(yajl_gen g, const char *s, size_t len);
int json_gen_kv_str(yajl_gen g, const char *key, const char *value);
int json_gen_kv_int(yajl_gen g, const char *key, long long value);
int json_gen_kv_double(yajl_gen g, const char *key, double value);
int json_gen_kv_bool(yajl_gen g, const char *key, bool value);
int json_gen_finish(yajl_gen g, struct berth_buf *out);
/* In a function returning int: return -1 when a json_gen_* call (< 0) or
 * a yajl_gen_* call (not yajl_gen_status_ok) fails. */
#define JSON_GEN(expr)                   \
	do {                             \
		if ((expr) < 0)          \
			return -1;       \
	} while (0)
#define JSON_GENY(expr)                                  \
	do {                                             \
		if ((expr) != yajl_gen_status_ok)        \
			return -1;                       \
	} while (0)
/* Appends berthd's admin-socket refusal {"ok":false,"error":msg} to out. */
int json_answer_error(struct berth_buf *out, const char *msg);

#endif
