/* json.c — see json.h. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

/* The depth pass: yajl's event parser with callbacks that count open
 * containers and cancel the parse past JSON_MAX_DEPTH, so a deep document
 * is refused before any tree exists (yajl_tree_free recurses). */
struct depth_count {
	unsigned depth;
	bool too_deep;
};

static int depth_open(void *ctx)
{
	struct depth_count *d = ctx;
	if (++d->depth > JSON_MAX_DEPTH) {
		d->too_deep = true;
		return 0; /* yajl_status_client_canceled */
	}
	return 1;
}

static int depth_close(void *ctx)
{
	struct depth_count *d = ctx;
	d->depth--;
	return 1;
}

/* true when text nests deeper than JSON_MAX_DEPTH (syntax errors are left
 * to the tree parser, which meets them at the same place). */
static bool json_too_deep(const char *text, size_t len, bool *nomem)
{
	static const yajl_callbacks counting = {
		.yajl_start_map = depth_open,
		.yajl_end_map = depth_close,
		.yajl_start_array = depth_open,
		.yajl_end_array = depth_close,
	};
	struct depth_count d = { 0, false };
	yajl_handle h = yajl_alloc(&counting, NULL, &d);
	if (h == NULL) {
		*nomem = true;
		return false;
	}
	yajl_config(h, yajl_allow_comments, 1); /* as yajl_tree_parse */
	if (yajl_parse(h, (const unsigned char *)text, len) == yajl_status_ok)
		yajl_complete_parse(h);
	yajl_free(h);
	return d.too_deep;
}

yajl_val json_parse(const char *text, size_t len, struct berth_err *err)
{
	/* yajl_tree_parse wants a NUL-terminated string; an embedded NUL would
	 * silently truncate the document, so refuse it. */
	if (memchr(text, '\0', len) != NULL) {
		berth_err_set(err, 0, "JSON text contains a NUL byte");
		return NULL;
	}
	bool nomem = false;
	if (json_too_deep(text, len, &nomem)) {
		berth_err_set(err, 0, "JSON nests arrays and objects more than %d levels deep", JSON_MAX_DEPTH);
		if (err != NULL)
			err->errnum = JSON_TOO_DEEP;
		return NULL;
	}
	char *copy = nomem ? NULL : malloc(len + 1);
	if (copy == NULL) {
		berth_err_set(err, ENOMEM, "parsing JSON");
		return NULL;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	char why[256] = "";
	yajl_val v = yajl_tree_parse(copy, why, sizeof(why));
	free(copy);
	if (v == NULL) {
		/* yajl's message spans lines ("parse error: …\n  text\n  (right here) ------^"); keep the first */
		char *nl = strchr(why, '\n');
		if (nl != NULL)
			*nl = '\0';
		berth_err_set(err, 0, "%s", why[0] ? why : "invalid JSON");
	}
	return v;
}

yajl_val json_get(yajl_val obj, const char *key)
{
	if (obj == NULL || !YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			return obj->u.object.values[i];
	return NULL;
}

const char *json_get_string(yajl_val obj, const char *key)
{
	yajl_val v = json_get(obj, key);
	return v != NULL && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

bool json_get_int64(yajl_val obj, const char *key, long long *out)
{
	yajl_val v = json_get(obj, key);
	if (v == NULL || !YAJL_IS_INTEGER(v))
		return false;
	*out = YAJL_GET_INTEGER(v);
	return true;
}

bool json_get_double(yajl_val obj, const char *key, double *out)
{
	yajl_val v = json_get(obj, key);
	if (v == NULL || !YAJL_IS_NUMBER(v))
		return false;
	*out = YAJL_GET_DOUBLE(v);
	if (!YAJL_IS_DOUBLE(v))
		*out = (double)YAJL_GET_INTEGER(v);
	return true;
}

bool json_get_bool(yajl_val obj, const char *key, bool *out)
{
	yajl_val v = json_get(obj, key);
	if (v == NULL || !(YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)))
		return false;
	*out = YAJL_IS_TRUE(v);
	return true;
}

yajl_gen json_gen_new(void)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (g != NULL)
		yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	return g;
}

int json_gen_str(yajl_gen g, const char *s)
{
	if (s == NULL)
		return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
	return json_gen_strn(g, s, strlen(s));
}

int json_gen_strn(yajl_gen g, const char *s, size_t len)
{
	return yajl_gen_string(g, (const unsigned char *)s, len) == yajl_gen_status_ok ? 0 : -1;
}

int json_gen_kv_str(yajl_gen g, const char *key, const char *value)
{
	return json_gen_str(g, key) < 0 ? -1 : json_gen_str(g, value);
}

int json_gen_kv_int(yajl_gen g, const char *key, long long value)
{
	if (json_gen_str(g, key) < 0)
		return -1;
	return yajl_gen_integer(g, value) == yajl_gen_status_ok ? 0 : -1;
}

int json_gen_kv_double(yajl_gen g, const char *key, double value)
{
	if (json_gen_str(g, key) < 0)
		return -1;
	/* yajl_gen_double prints %.20g, which turns 1.1 into 1.1000000000000000888;
	 * emit the shortest form that reads back the same. */
	if (!isfinite(value))
		return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
	char num[64];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(num, sizeof(num), "%.*g", prec, value);
		if (strtod(num, NULL) == value)
			break;
	}
	if (strpbrk(num, ".eEn") == NULL)
		strncat(num, ".0", sizeof(num) - strlen(num) - 1);
	return yajl_gen_number(g, num, strlen(num)) == yajl_gen_status_ok ? 0 : -1;
}

int json_gen_kv_bool(yajl_gen g, const char *key, bool value)
{
	if (json_gen_str(g, key) < 0)
		return -1;
	return yajl_gen_bool(g, value) == yajl_gen_status_ok ? 0 : -1;
}

int json_answer_error(struct berth_buf *out, const char *msg)
{
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return -1;
	if (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_kv_bool(g, "ok", false) < 0 ||
	    json_gen_kv_str(g, "error", msg) < 0 || yajl_gen_map_close(g) != yajl_gen_status_ok) {
		yajl_gen_free(g);
		return -1;
	}
	return json_gen_finish(g, out);
}

int json_gen_finish(yajl_gen g, struct berth_buf *out)
{
	const unsigned char *text;
	size_t len;
	int r = -1;
	if (yajl_gen_get_buf(g, &text, &len) == yajl_gen_status_ok)
		r = buf_append(out, text, len);
	yajl_gen_free(g);
	return r;
}
