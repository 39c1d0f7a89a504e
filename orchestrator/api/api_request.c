/* api_request.c — decoding a control-plane request into AWS's validation
 * vocabulary (api_internal.h).
 *
 * AWS reports every constraint violation of a request at once:
 *   "2 validation errors detected: Value 'a!' at 'modelName' failed to
 *    satisfy constraint: Member must satisfy regular expression pattern: …;
 *    Value null at 'primaryContainer.image' failed to satisfy constraint:
 *    Member must not be null"
 * and a member of the wrong JSON type as a SerializationException before
 * any validation. Values are echoed the way AWS's Java services print them:
 * strings bare, lists "[a, b]", maps "{k=v, k2=v2}". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "json.h"
#include "names.h"

#define VALUE_ECHO_MAX 4096 /* longer echoed values are cut, ending in "..." */

static void render_value(struct berth_buf *out, yajl_val v)
{
	if (out->len > VALUE_ECHO_MAX)
		return;
	if (!v || YAJL_IS_NULL(v)) {
		buf_append_str(out, "null");
	} else if (YAJL_IS_STRING(v)) {
		buf_append_str(out, v->u.string);
	} else if (YAJL_IS_NUMBER(v)) {
		buf_append_str(out, v->u.number.r);
	} else if (YAJL_IS_TRUE(v)) {
		buf_append_str(out, "true");
	} else if (YAJL_IS_FALSE(v)) {
		buf_append_str(out, "false");
	} else if (YAJL_IS_ARRAY(v)) {
		buf_append_str(out, "[");
		for (size_t i = 0; i < v->u.array.len; i++) {
			if (i)
				buf_append_str(out, ", ");
			render_value(out, v->u.array.values[i]);
		}
		buf_append_str(out, "]");
	} else if (YAJL_IS_OBJECT(v)) {
		buf_append_str(out, "{");
		for (size_t i = 0; i < v->u.object.len; i++) {
			if (i)
				buf_append_str(out, ", ");
			buf_printf(out, "%s=", v->u.object.keys[i]);
			render_value(out, v->u.object.values[i]);
		}
		buf_append_str(out, "}");
	}
}

static void add_error_prefix(struct api_request *r)
{
	if (r->n_errors++ > 0)
		buf_append_str(&r->errors, "; ");
}

void req_invalid(struct api_request *r, yajl_val value, const char *path, const char *constraint_fmt, ...)
{
	struct berth_buf shown = BERTH_BUF_INIT;
	render_value(&shown, value);
	if (shown.len > VALUE_ECHO_MAX) {
		shown.len = VALUE_ECHO_MAX;
		shown.data[shown.len] = '\0';
		buf_append_str(&shown, "...");
	}
	add_error_prefix(r);
	if (value && !YAJL_IS_NULL(value))
		buf_printf(&r->errors, "Value '%s' at '%s' failed to satisfy constraint: ", shown.data ? shown.data : "",
			   path);
	else
		buf_printf(&r->errors, "Value null at '%s' failed to satisfy constraint: ", path);
	buf_free(&shown);
	va_list ap;
	va_start(ap, constraint_fmt);
	buf_vprintf(&r->errors, constraint_fmt, ap);
	va_end(ap);
}

void req_null(struct api_request *r, const char *path)
{
	add_error_prefix(r);
	buf_printf(&r->errors, "Value null at '%s' failed to satisfy constraint: Member must not be null", path);
}

void req_serialization(struct api_request *r, const char *fmt, ...)
{
	if (r->serialization_failed)
		return;
	r->serialization_failed = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->serialization, sizeof(r->serialization), fmt, ap);
	va_end(ap);
}

bool req_failed(struct api_request *r)
{
	if (r->serialization_failed) {
		api_reply_error(r->reply, BERTH_ERR_SERIALIZATION, "%s", r->serialization);
		return true;
	}
	if (r->n_errors == 0)
		return false;
	api_reply_error(r->reply, BERTH_ERR_VALIDATION, "%d validation error%s detected: %s", r->n_errors,
			r->n_errors == 1 ? "" : "s", r->errors.data ? r->errors.data : "");
	return true;
}

static const char *type_name(yajl_val v)
{
	if (YAJL_IS_STRING(v))
		return "a string";
	if (YAJL_IS_NUMBER(v))
		return "a number";
	if (YAJL_IS_OBJECT(v))
		return "an object";
	if (YAJL_IS_ARRAY(v))
		return "a list";
	return "a boolean";
}

/* The member, or NULL when absent or null (adding "must not be null" when required). */
static yajl_val get_member(struct api_request *r, yajl_val obj, const char *key, const char *path, bool required)
{
	yajl_val v = json_get(obj, key);
	if (v && YAJL_IS_NULL(v))
		v = NULL;
	if (!v && required)
		req_null(r, path);
	return v;
}

const char *req_string(struct api_request *r, yajl_val obj, const char *key, const char *path, bool required)
{
	yajl_val v = get_member(r, obj, key, path, required);
	if (!v)
		return NULL;
	if (!YAJL_IS_STRING(v)) {
		req_serialization(r, "'%s' must be a string, not %s.", path, type_name(v));
		return NULL;
	}
	return v->u.string;
}

yajl_val req_object(struct api_request *r, yajl_val obj, const char *key, const char *path, bool required)
{
	yajl_val v = get_member(r, obj, key, path, required);
	if (v && !YAJL_IS_OBJECT(v)) {
		req_serialization(r, "'%s' must be an object, not %s.", path, type_name(v));
		return NULL;
	}
	return v;
}

yajl_val req_array(struct api_request *r, yajl_val obj, const char *key, const char *path, bool required)
{
	yajl_val v = get_member(r, obj, key, path, required);
	if (v && !YAJL_IS_ARRAY(v)) {
		req_serialization(r, "'%s' must be a list, not %s.", path, type_name(v));
		return NULL;
	}
	return v;
}

bool req_int(struct api_request *r, yajl_val obj, const char *key, const char *path, bool required, long long *out)
{
	yajl_val v = get_member(r, obj, key, path, required);
	if (!v)
		return false;
	if (!YAJL_IS_INTEGER(v)) {
		req_serialization(r, "'%s' must be an integer, not %s.", path,
				  YAJL_IS_NUMBER(v) ? "a fraction or an out-of-range number" : type_name(v));
		return false;
	}
	*out = YAJL_GET_INTEGER(v);
	return true;
}

bool req_number(struct api_request *r, yajl_val obj, const char *key, const char *path, bool required, double *out)
{
	yajl_val v = get_member(r, obj, key, path, required);
	if (!v)
		return false;
	if (!YAJL_IS_NUMBER(v) || !(YAJL_IS_DOUBLE(v) || YAJL_IS_INTEGER(v))) {
		req_serialization(r, "'%s' must be a number, not %s.", path,
				  YAJL_IS_NUMBER(v) ? "an out-of-range number" : type_name(v));
		return false;
	}
	*out = YAJL_IS_DOUBLE(v) ? YAJL_GET_DOUBLE(v) : (double)YAJL_GET_INTEGER(v);
	return true;
}

bool req_bool(struct api_request *r, yajl_val obj, const char *key, const char *path, bool *out)
{
	yajl_val v = get_member(r, obj, key, path, false);
	if (!v)
		return false;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) {
		req_serialization(r, "'%s' must be a boolean, not %s.", path, type_name(v));
		return false;
	}
	*out = YAJL_IS_TRUE(v);
	return true;
}

bool req_timestamp(struct api_request *r, yajl_val obj, const char *key, const char *path, double *out)
{
	yajl_val v = get_member(r, obj, key, path, false);
	if (!v)
		return false;
	if (!YAJL_IS_NUMBER(v) || !(YAJL_IS_DOUBLE(v) || YAJL_IS_INTEGER(v))) {
		req_serialization(r, "'%s' must be a timestamp (epoch seconds as a number), not %s.", path,
				  YAJL_IS_NUMBER(v) ? "an out-of-range number" : type_name(v));
		return false;
	}
	*out = YAJL_IS_DOUBLE(v) ? YAJL_GET_DOUBLE(v) : (double)YAJL_GET_INTEGER(v);
	return true;
}

void check_length(struct api_request *r, yajl_val v, const char *s, const char *path, size_t min, size_t max)
{
	size_t len = strlen(s);
	if (len < min)
		req_invalid(r, v, path, "Member must have length greater than or equal to %zu", min);
	if (len > max)
		req_invalid(r, v, path, "Member must have length less than or equal to %zu", max);
}

void check_name(struct api_request *r, yajl_val v, const char *s, const char *path)
{
	check_length(r, v, s, path, 1, NAME_MAX_LEN);
	/* The pattern alone (any length): a 64-character valid name breaks only
	 * the length constraint, as on AWS. */
	if (!name_matches_pattern(s))
		req_invalid(r, v, path, "Member must satisfy regular expression pattern: %s", NAME_PATTERN);
}

bool check_enum(struct api_request *r, yajl_val v, const char *s, const char *path, const char *const *values)
{
	for (size_t i = 0; values[i]; i++)
		if (strcmp(s, values[i]) == 0)
			return true;
	struct berth_buf set = BERTH_BUF_INIT;
	for (size_t i = 0; values[i]; i++)
		buf_printf(&set, "%s%s", i ? ", " : "", values[i]);
	req_invalid(r, v, path, "Member must satisfy enum value set: [%s]", set.data ? set.data : "");
	buf_free(&set);
	return false;
}

const char *req_name(struct api_request *r, yajl_val obj, const char *key, const char *path)
{
	const char *s = req_string(r, obj, key, path, true);
	if (!s)
		return NULL;
	int before = r->n_errors;
	check_name(r, json_get(obj, key), s, path);
	return r->n_errors == before ? s : NULL;
}
