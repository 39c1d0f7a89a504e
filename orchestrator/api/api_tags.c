/* api_tags.c — tags of models, endpoint configs and endpoints: the Tags
 * member of Create* (req_tags), AddTags, DeleteTags, ListTags, and the
 * ResourceArn they name (api_internal.h).
 *
 * Limits and patterns are SageMaker's (botocore's service model): ≤ 50
 * tags per resource; keys 1..128 and values 0..256 characters of
 * ([\p{L}\p{Z}\p{N}_.:/=+\-@]*), matched with PCRE2 in UTF mode with
 * Unicode properties (the classes are Unicode general categories, as in
 * Java's regular expressions that AWS's validation uses); keys starting
 * with "aws:" are reserved. Tags live in the resource's own record, so
 * they are persisted with it and deleted with it. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_internal.h"
#include "json.h"
#include "log.h"

#define TAGS_MAX 50
#define TAG_KEY_MAX 128
#define TAG_VALUE_MAX 256
#define RESOURCE_ARN_MAX 256
#define LIST_TAGS_MIN_RESULTS 50
#define TAG_TEXT_PATTERN "([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)"
#define RESOURCE_ARN_PATTERN "arn:aws[a-z-]*:sagemaker:[a-z0-9-]*:[0-9]{12}:.+"
#define TAG_TOKEN_PREFIX "t1:"

/* ---- patterns --------------------------------------------------------------- */

/* true when the whole of s matches pattern (UTF-8, Unicode properties);
 * false also for ill-formed UTF-8 or when PCRE2 cannot run. */
static bool whole_match(const char *pattern, const char *s)
{
	int code;
	PCRE2_SIZE at;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code,
				       &at, NULL);
	if (!re)
		return false;
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	int rc = md ? pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, PCRE2_ANCHORED | PCRE2_ENDANCHORED, md, NULL) : -1;
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	return rc >= 0;
}

bool api_tag_text_valid(const char *s)
{
	return whole_match("^" TAG_TEXT_PATTERN "$", s);
}

bool api_tag_key_reserved(const char *key)
{
	return strncasecmp(key, "aws:", 4) == 0;
}

/* Length in characters (UTF-8 code points), as AWS counts them. */
static size_t text_length(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p & 0xC0) != 0x80)
			n++;
	return n;
}

static void check_text_length(struct api_request *r, yajl_val v, const char *s, const char *path, size_t min,
			      size_t max)
{
	size_t len = text_length(s);
	if (len < min)
		req_invalid(r, v, path, "Member must have length greater than or equal to %zu", min);
	if (len > max)
		req_invalid(r, v, path, "Member must have length less than or equal to %zu", max);
}

static void check_tag_text(struct api_request *r, yajl_val v, const char *s, const char *path, size_t min,
			   size_t max)
{
	check_text_length(r, v, s, path, min, max);
	if (!api_tag_text_valid(s))
		req_invalid(r, v, path, "Member must satisfy regular expression pattern: %s", TAG_TEXT_PATTERN);
}

/* ---- the Tags member ---------------------------------------------------------- */

static void kvs_free(struct kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

/* "System prefix 'aws:' …" as SageMaker words it; true when reserved. */
static bool reject_reserved(struct api_request *r, const char *key)
{
	if (!api_tag_key_reserved(key))
		return false;
	api_reply_error(r->reply, BERTH_ERR_VALIDATION, "System prefix 'aws:' reserved for AWS usage in tag key: %s",
			key);
	return true;
}

void req_tags(struct api_request *r, yajl_val obj, struct kv **out, size_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	yajl_val tags = req_array(r, obj, "Tags", "tags", false);
	if (!tags)
		return;
	if (tags->u.array.len > TAGS_MAX)
		req_invalid(r, tags, "tags", "Member must have length less than or equal to %d", TAGS_MAX);
	size_t n = tags->u.array.len;
	struct kv *kv = n ? calloc(n, sizeof(*kv)) : NULL;
	if (n && !kv) {
		req_serialization(r, "out of memory");
		return;
	}
	size_t kept = 0;
	for (size_t i = 0; i < n; i++) {
		yajl_val t = tags->u.array.values[i];
		char path[64];
		if (!YAJL_IS_OBJECT(t)) {
			snprintf(path, sizeof(path), "tags.%zu.member", i + 1);
			req_serialization(r, "'%s' must be an object with Key and Value.", path);
			continue;
		}
		snprintf(path, sizeof(path), "tags.%zu.member.key", i + 1);
		const char *key = req_string(r, t, "Key", path, true);
		if (key)
			check_tag_text(r, json_get(t, "Key"), key, path, 1, TAG_KEY_MAX);
		snprintf(path, sizeof(path), "tags.%zu.member.value", i + 1);
		const char *value = req_string(r, t, "Value", path, true);
		if (value)
			check_tag_text(r, json_get(t, "Value"), value, path, 0, TAG_VALUE_MAX);
		if (!key || !value)
			continue;
		/* Keys are unique per resource: a key given twice keeps its last value. */
		size_t j = 0;
		while (j < kept && strcmp(kv[j].key, key) != 0)
			j++;
		char *v = strdup(value);
		if (!v) {
			req_serialization(r, "out of memory decoding 'tags'");
			continue;
		}
		if (j < kept) {
			free(kv[j].value);
			kv[j].value = v;
			continue;
		}
		kv[kept].key = strdup(key);
		kv[kept].value = v;
		if (!kv[kept].key) {
			free(v);
			kv[kept].value = NULL;
			req_serialization(r, "out of memory decoding 'tags'");
			continue;
		}
		kept++;
	}
	*out = kv;
	*n_out = kept;
}

bool api_tags_reserved(struct api_request *r, const struct kv *tags, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (reject_reserved(r, tags[i].key))
			return true;
	return false;
}

/* ---- ResourceArn ------------------------------------------------------------- */

static const struct {
	const char *arn_kind;
	enum api_tag_kind kind;
} arn_kinds[] = {
	{ "model", API_TAG_MODEL },
	{ "endpoint-config", API_TAG_ENDPOINT_CONFIG },
	{ "endpoint", API_TAG_ENDPOINT },
};

bool api_arn_split(const char *arn, struct api_arn_parts *out)
{
	memset(out, 0, sizeof(*out));
	if (strlen(arn) > RESOURCE_ARN_MAX || !whole_match(RESOURCE_ARN_PATTERN, arn))
		return false;
	/* arn : partition : sagemaker : region : account : resource */
	const char *p = arn;
	const char *fields[6];
	size_t lens[6];
	for (int i = 0; i < 5; i++) {
		const char *colon = strchr(p, ':');
		if (!colon)
			return false;
		fields[i] = p;
		lens[i] = (size_t)(colon - p);
		p = colon + 1;
	}
	fields[5] = p;
	lens[5] = strlen(p);
	if (lens[3] >= sizeof(out->region) || lens[4] >= sizeof(out->account))
		return false;
	memcpy(out->region, fields[3], lens[3]);
	memcpy(out->account, fields[4], lens[4]);
	const char *slash = strchr(fields[5], '/');
	size_t kind_len = slash ? (size_t)(slash - fields[5]) : lens[5];
	if (kind_len >= sizeof(out->arn_kind))
		kind_len = sizeof(out->arn_kind) - 1;
	memcpy(out->arn_kind, fields[5], kind_len);
	out->name = slash ? slash + 1 : "";
	out->known = false;
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(arn_kinds); i++)
		if (strcmp(out->arn_kind, arn_kinds[i].arn_kind) == 0) {
			out->kind = arn_kinds[i].kind;
			out->known = true;
		}
	return true;
}

/* The resource the ARN names, found case-insensitively (ARNs carry the
 * name lower-cased); NULL with the reply written when there is none. */
struct tag_target {
	enum api_tag_kind kind;
	const char *name;          /* the resource's own spelling (store-owned) */
	const struct kv *tags;
	size_t n_tags;
	const char *arn_kind, *what;
};

static bool find_target(struct api_request *r, const char *arn, struct tag_target *t)
{
	struct api_arn_parts parts;
	if (!api_arn_split(arn, &parts))
		return false; /* the pattern check already reported it */
	if (!parts.known) {
		api_reply_error(r->reply, BERTH_ERR_VALIDATION,
				"Resource type '%s' in ResourceArn \"%s\" is not one berth serves: berth tags models "
				"(model/NAME), endpoint configurations (endpoint-config/NAME) and endpoints "
				"(endpoint/NAME).",
				parts.arn_kind, arn);
		return false;
	}
	static const char *const whats[] = { "model", "endpoint configuration", "endpoint" };
	static const char *const kinds[] = { "model", "endpoint-config", "endpoint" };
	t->kind = parts.kind;
	t->what = whats[parts.kind];
	t->arn_kind = kinds[parts.kind];
	t->name = NULL;
	const struct store *s = r->ctx->store;
	bool here = strcmp(parts.region, r->ctx->region) == 0 && strcmp(parts.account, r->ctx->account) == 0;
	if (here && *parts.name) {
		if (parts.kind == API_TAG_MODEL) {
			for (size_t i = 0; i < store_count_models(s); i++) {
				const struct model *m = store_model_at(s, i);
				if (strcasecmp(m->name, parts.name) == 0) {
					*t = (struct tag_target){ parts.kind, m->name, m->tags, m->n_tags, t->arn_kind, t->what };
				}
			}
		} else if (parts.kind == API_TAG_ENDPOINT_CONFIG) {
			for (size_t i = 0; i < store_count_endpoint_configs(s); i++) {
				const struct endpoint_config *c = store_endpoint_config_at(s, i);
				if (strcasecmp(c->name, parts.name) == 0)
					*t = (struct tag_target){ parts.kind, c->name, c->tags, c->n_tags, t->arn_kind, t->what };
			}
		} else {
			for (size_t i = 0; i < store_count_endpoints(s); i++) {
				const struct endpoint *e = store_endpoint_at(s, i);
				if (strcasecmp(e->name, parts.name) == 0)
					*t = (struct tag_target){ parts.kind, e->name, e->tags, e->n_tags, t->arn_kind, t->what };
			}
		}
	}
	if (t->name)
		return true;
	/* As Describe* words it; the ARN is quoted as given. */
	api_reply_error(r->reply, BERTH_ERR_NOT_FOUND, "Could not find %s \"%s\".", t->what, arn);
	return false;
}

/* Replaces the target's tags with tags[0..n) (copied), persisting the record. */
static int target_set_tags(struct api_request *r, const struct tag_target *t, const struct kv *tags, size_t n,
			   struct berth_err *err)
{
	struct store *s = r->ctx->store;
	struct kv *copy = n ? calloc(n, sizeof(*copy)) : NULL;
	bool ok = !n || copy;
	for (size_t i = 0; ok && i < n; i++) {
		copy[i].key = strdup(tags[i].key);
		copy[i].value = strdup(tags[i].value ? tags[i].value : "");
		ok = copy[i].key && copy[i].value;
	}
	if (!ok) {
		kvs_free(copy, n);
		berth_err_set(err, ENOMEM, "out of memory");
		return -1;
	}
	if (t->kind == API_TAG_MODEL) {
		struct model *m = model_dup(store_get_model(s, t->name));
		if (!m)
			goto nomem;
		kvs_free(m->tags, m->n_tags);
		m->tags = copy;
		m->n_tags = n;
		return store_put_model(s, m, err);
	}
	if (t->kind == API_TAG_ENDPOINT_CONFIG) {
		struct endpoint_config *c = endpoint_config_dup(store_get_endpoint_config(s, t->name));
		if (!c)
			goto nomem;
		kvs_free(c->tags, c->n_tags);
		c->tags = copy;
		c->n_tags = n;
		return store_put_endpoint_config(s, c, err);
	}
	struct endpoint *e = endpoint_dup(store_get_endpoint(s, t->name));
	if (!e)
		goto nomem;
	kvs_free(e->tags, e->n_tags);
	e->tags = copy;
	e->n_tags = n;
	return store_put_endpoint(s, e, err);
nomem:
	kvs_free(copy, n);
	berth_err_set(err, ENOMEM, "out of memory");
	return -1;
}

static const char *req_resource_arn(struct api_request *r)
{
	const char *arn = req_string(r, r->root, "ResourceArn", "resourceArn", true);
	if (!arn)
		return NULL;
	yajl_val v = json_get(r->root, "ResourceArn");
	int before = r->n_errors;
	check_text_length(r, v, arn, "resourceArn", 0, RESOURCE_ARN_MAX);
	if (!whole_match(RESOURCE_ARN_PATTERN, arn))
		req_invalid(r, v, "resourceArn", "Member must satisfy regular expression pattern: %s",
			    RESOURCE_ARN_PATTERN);
	return r->n_errors == before ? arn : NULL;
}

static void reply_tags(struct api_reply *reply, const char *member, const struct kv *tags, size_t n,
		       const char *next_token)
{
	yajl_gen g = json_gen_new();
	bool ok = g && yajl_gen_map_open(g) == yajl_gen_status_ok && json_gen_str(g, member) == 0 &&
		  yajl_gen_array_open(g) == yajl_gen_status_ok;
	for (size_t i = 0; ok && i < n; i++)
		ok = yajl_gen_map_open(g) == yajl_gen_status_ok && json_gen_kv_str(g, "Key", tags[i].key) == 0 &&
		     json_gen_kv_str(g, "Value", tags[i].value ? tags[i].value : "") == 0 &&
		     yajl_gen_map_close(g) == yajl_gen_status_ok;
	ok = ok && yajl_gen_array_close(g) == yajl_gen_status_ok &&
	     (!next_token || json_gen_kv_str(g, "NextToken", next_token) == 0) &&
	     yajl_gen_map_close(g) == yajl_gen_status_ok;
	if (!ok && g) {
		yajl_gen_free(g);
		g = NULL;
	}
	api_reply_gen(reply, g);
}

/* ---- operations ---------------------------------------------------------------- */

void api_add_tags(struct api_request *r)
{
	struct kv *add = NULL;
	size_t n_add = 0;
	const char *arn = req_resource_arn(r);
	if (!json_get(r->root, "Tags") || YAJL_IS_NULL(json_get(r->root, "Tags")))
		req_null(r, "tags");
	else
		req_tags(r, r->root, &add, &n_add);
	struct kv *merged = NULL;
	struct tag_target t;
	if (req_failed(r) || api_tags_reserved(r, add, n_add) || !find_target(r, arn, &t))
		goto out;
	/* AddTags adds or overwrites: existing keys keep their place. */
	merged = calloc(t.n_tags + n_add + 1, sizeof(*merged));
	if (!merged) {
		api_reply_nomem(r->reply);
		goto out;
	}
	size_t n = 0;
	for (size_t i = 0; i < t.n_tags; i++)
		merged[n++] = t.tags[i]; /* borrowed: target_set_tags copies */
	for (size_t i = 0; i < n_add; i++) {
		size_t j = 0;
		while (j < n && strcmp(merged[j].key, add[i].key) != 0)
			j++;
		merged[j] = add[i];
		if (j == n)
			n++;
	}
	if (n > TAGS_MAX) {
		api_reply_error(r->reply, BERTH_ERR_VALIDATION,
				"Adding these tags would give %s \"%s\" %zu tags, more than the limit of %d tags per "
				"resource. Delete tags it no longer needs with DeleteTags, or add fewer.",
				t.what, arn, n, TAGS_MAX);
		goto out;
	}
	struct berth_err err = { 0 };
	if (target_set_tags(r, &t, merged, n, &err) < 0) {
		api_reply_not_saved(r->reply, &err);
		goto out;
	}
	log_info("%s %s: %zu tag%s added or changed", t.what, arn, n_add, n_add == 1 ? "" : "s");
	reply_tags(r->reply, "Tags", add, n_add, NULL);
out:
	free(merged);
	kvs_free(add, n_add);
}

/* TagKeys: 1..50 keys; a violation is reported on the list as AWS does
 * for a list of strings ("Member must satisfy constraint: [...]"). */
static void check_tag_keys(struct api_request *r, yajl_val keys)
{
	size_t n = keys->u.array.len;
	if (n < 1)
		req_invalid(r, keys, "tagKeys", "Member must have length greater than or equal to 1");
	if (n > TAGS_MAX)
		req_invalid(r, keys, "tagKeys", "Member must have length less than or equal to %d", TAGS_MAX);
	bool too_long = false, empty = false, pattern = false;
	for (size_t i = 0; i < n; i++) {
		yajl_val k = keys->u.array.values[i];
		if (!YAJL_IS_STRING(k)) {
			req_serialization(r, "'tagKeys.%zu.member' must be a string.", i + 1);
			return;
		}
		size_t len = text_length(k->u.string);
		too_long |= len > TAG_KEY_MAX;
		empty |= len < 1;
		pattern |= !api_tag_text_valid(k->u.string);
	}
	if (!too_long && !empty && !pattern)
		return;
	struct berth_buf list = BERTH_BUF_INIT;
	if (too_long)
		buf_printf(&list, "Member must have length less than or equal to %d", TAG_KEY_MAX);
	if (empty)
		buf_printf(&list, "%sMember must have length greater than or equal to 1", list.len ? ", " : "");
	if (pattern)
		buf_printf(&list, "%sMember must satisfy regular expression pattern: %s", list.len ? ", " : "",
			   TAG_TEXT_PATTERN);
	req_invalid(r, keys, "tagKeys", "Member must satisfy constraint: [%s]", list.data ? list.data : "");
	buf_free(&list);
}

void api_delete_tags(struct api_request *r)
{
	const char *arn = req_resource_arn(r);
	yajl_val keys = req_array(r, r->root, "TagKeys", "tagKeys", true);
	if (keys)
		check_tag_keys(r, keys);
	struct tag_target t;
	if (req_failed(r))
		return;
	for (size_t i = 0; i < keys->u.array.len; i++)
		if (reject_reserved(r, keys->u.array.values[i]->u.string))
			return;
	if (!find_target(r, arn, &t))
		return;
	struct kv *kept = calloc(t.n_tags + 1, sizeof(*kept));
	if (!kept) {
		api_reply_nomem(r->reply);
		return;
	}
	size_t n = 0;
	for (size_t i = 0; i < t.n_tags; i++) {
		bool drop = false;
		for (size_t j = 0; j < keys->u.array.len && !drop; j++)
			drop = strcmp(t.tags[i].key, keys->u.array.values[j]->u.string) == 0;
		if (!drop)
			kept[n++] = t.tags[i];
	}
	/* Keys the resource does not have are ignored, as on SageMaker. */
	size_t removed = t.n_tags - n;
	struct berth_err err = { 0 };
	if (removed > 0 && target_set_tags(r, &t, kept, n, &err) < 0) {
		free(kept);
		api_reply_not_saved(r->reply, &err);
		return;
	}
	free(kept);
	if (removed > 0)
		log_info("%s %s: %zu tag%s deleted", t.what, arn, removed, removed == 1 ? "" : "s");
	api_reply_empty(r->reply);
}

/* NextToken: "t1:" and the index of the next tag, in decimal. */
static bool token_parse(const char *token, size_t *start)
{
	if (strncmp(token, TAG_TOKEN_PREFIX, 3) != 0 || !token[3] || strlen(token) > 12)
		return false;
	size_t v = 0;
	for (const char *p = token + 3; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (size_t)(*p - '0');
	}
	*start = v;
	return true;
}

void api_list_tags(struct api_request *r)
{
	const char *arn = req_resource_arn(r);
	long long max_results = LIST_TAGS_MIN_RESULTS;
	if (req_int(r, r->root, "MaxResults", "maxResults", false, &max_results) &&
	    max_results < LIST_TAGS_MIN_RESULTS)
		req_invalid(r, json_get(r->root, "MaxResults"), "maxResults",
			    "Member must have value greater than or equal to %d", LIST_TAGS_MIN_RESULTS);
	const char *token = req_string(r, r->root, "NextToken", "nextToken", false);
	if (token)
		check_length(r, json_get(r->root, "NextToken"), token, "nextToken", 0, 8192);
	struct tag_target t;
	if (req_failed(r))
		return;
	size_t start = 0;
	if (token && *token && !token_parse(token, &start)) {
		api_reply_error(r->reply, BERTH_ERR_VALIDATION,
				"Invalid NextToken: pass the NextToken of an earlier ListTags answer for the same "
				"resource, or none to start from the first tag.");
		return;
	}
	if (!find_target(r, arn, &t))
		return;
	if (start > t.n_tags)
		start = t.n_tags;
	size_t n = t.n_tags - start;
	char next[32];
	bool more = (long long)n > max_results;
	if (more) {
		n = (size_t)max_results;
		snprintf(next, sizeof(next), TAG_TOKEN_PREFIX "%zu", start + n);
	}
	reply_tags(r->reply, "Tags", t.tags + start, n, more ? next : NULL);
}
