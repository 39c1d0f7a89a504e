/* api_list.c — what ListModels, ListEndpointConfigs and ListEndpoints share
 * (api_internal.h): their parameters with SageMaker's defaults (SortBy
 * CreationTime, SortOrder Descending, MaxResults 10 of 1..100), filters,
 * a stable order (ties broken by name) and NextToken paging.
 *
 * A NextToken is opaque to clients: the hex form of the sort it was made
 * for and the position (creation time, status, name) of the last item
 * returned. The next page starts after that position, so creating or
 * deleting resources between calls neither repeats nor skips the others. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "json.h"
#include "names.h"

#define LIST_DEFAULT_MAX_RESULTS 10
#define LIST_MAX_MAX_RESULTS 100
#define NEXT_TOKEN_MAX_LEN 8192
#define TOKEN_VERSION "b1"

static const char *const sort_names[] = { "CreationTime", "Name", "Status" };

static char *hex_encode(const char *s)
{
	static const char digits[] = "0123456789abcdef";
	size_t len = strlen(s);
	char *out = malloc(2 * len + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[(unsigned char)s[i] >> 4];
		out[2 * i + 1] = digits[(unsigned char)s[i] & 15];
	}
	out[2 * len] = '\0';
	return out;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* NULL on bad hex or an embedded NUL. */
static char *hex_decode(const char *s)
{
	size_t len = strlen(s);
	if (len % 2)
		return NULL;
	char *out = malloc(len / 2 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return NULL;
		}
		out[i] = (char)(hi * 16 + lo);
	}
	out[len / 2] = '\0';
	return out;
}

/* "b1\nSORT\nA|D\nTIME\nSTATUS\nNAME" */
static bool token_parse(const char *token, struct list_params *p)
{
	_cleanup_free_ char *text = hex_decode(token);
	if (!text)
		return false;
	char *fields[6];
	char *cursor = text;
	for (int i = 0; i < 6; i++) {
		char *nl = strchr(cursor, '\n');
		fields[i] = cursor;
		if (i < 5) {
			if (!nl)
				return false;
			*nl = '\0';
			cursor = nl + 1;
		} else if (nl) {
			return false;
		}
	}
	if (strcmp(fields[0], TOKEN_VERSION) != 0)
		return false;
	int sort = -1;
	for (int i = 0; i < 3; i++)
		if (strcmp(fields[1], sort_names[i]) == 0)
			sort = i;
	if (sort < 0 || (strcmp(fields[2], "A") != 0 && strcmp(fields[2], "D") != 0))
		return false;
	char *end;
	errno = 0;
	double t = strtod(fields[3], &end);
	if (errno || end == fields[3] || *end)
		return false;
	if (!name_is_valid(fields[5]))
		return false;
	p->token_sort = (enum list_sort)sort;
	p->token_descending = fields[2][0] == 'D';
	p->token_time = t;
	p->token_key = strdup(fields[4]);
	p->token_name = strdup(fields[5]);
	if (!p->token_key || !p->token_name)
		return false;
	p->has_token = true;
	return true;
}

static char *token_make(const struct list_params *p, const struct list_item *last)
{
	char *text = NULL;
	if (asprintf(&text, "%s\n%s\n%s\n%.17g\n%s\n%s", TOKEN_VERSION, sort_names[p->sort_by],
		     p->descending ? "D" : "A", last->creation_time, last->status ? last->status : "",
		     last->name) < 0)
		return NULL;
	char *token = hex_encode(text);
	free(text);
	return token;
}

static void decode_time(struct api_request *r, const char *key, const char *path, bool *has, double *out)
{
	*has = req_timestamp(r, r->root, key, path, out);
}

bool list_params_decode(struct api_request *r, bool endpoints, struct list_params *p)
{
	static const char *const sort_models[] = { "Name", "CreationTime", NULL };
	static const char *const sort_endpoints[] = { "Name", "CreationTime", "Status", NULL };
	static const char *const orders[] = { "Ascending", "Descending", NULL };
	static const char *const statuses[] = { "OutOfService", "Creating",  "Updating",
						"SystemUpdating", "RollingBack", "InService",
						"Deleting", "Failed", "UpdateRollbackFailed", NULL };
	yajl_val root = r->root;
	memset(p, 0, sizeof(*p));
	p->sort_by = LIST_SORT_CREATION_TIME;
	p->descending = true;
	p->max_results = LIST_DEFAULT_MAX_RESULTS;

	const char *s = req_string(r, root, "SortBy", "sortBy", false);
	if (s && check_enum(r, json_get(root, "SortBy"), s, "sortBy", endpoints ? sort_endpoints : sort_models))
		p->sort_by = strcmp(s, "Name") == 0 ? LIST_SORT_NAME
			     : strcmp(s, "Status") == 0 ? LIST_SORT_STATUS : LIST_SORT_CREATION_TIME;
	s = req_string(r, root, "SortOrder", "sortOrder", false);
	if (s && check_enum(r, json_get(root, "SortOrder"), s, "sortOrder", orders))
		p->descending = strcmp(s, "Descending") == 0;
	long long max;
	if (req_int(r, root, "MaxResults", "maxResults", false, &max)) {
		if (max < 1)
			req_invalid(r, json_get(root, "MaxResults"), "maxResults",
				    "Member must have value greater than or equal to 1");
		else if (max > LIST_MAX_MAX_RESULTS)
			req_invalid(r, json_get(root, "MaxResults"), "maxResults",
				    "Member must have value less than or equal to %d", LIST_MAX_MAX_RESULTS);
		else
			p->max_results = max;
	}
	s = req_string(r, root, "NameContains", "nameContains", false);
	if (s) {
		yajl_val v = json_get(root, "NameContains");
		check_length(r, v, s, "nameContains", 0, NAME_MAX_LEN);
		bool ok = *s != '\0';
		for (const char *c = s; *c; c++)
			ok = ok && ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
				    *c == '-');
		if (!ok)
			req_invalid(r, v, "nameContains", "Member must satisfy regular expression pattern: [a-zA-Z0-9-]+");
		p->name_contains = s;
	}
	decode_time(r, "CreationTimeBefore", "creationTimeBefore", &p->has_created_before, &p->created_before);
	decode_time(r, "CreationTimeAfter", "creationTimeAfter", &p->has_created_after, &p->created_after);
	if (endpoints) {
		decode_time(r, "LastModifiedTimeBefore", "lastModifiedTimeBefore", &p->has_modified_before,
			    &p->modified_before);
		decode_time(r, "LastModifiedTimeAfter", "lastModifiedTimeAfter", &p->has_modified_after,
			    &p->modified_after);
		s = req_string(r, root, "StatusEquals", "statusEquals", false);
		if (s && check_enum(r, json_get(root, "StatusEquals"), s, "statusEquals", statuses))
			p->status_equals = s;
	}
	const char *token = req_string(r, root, "NextToken", "nextToken", false);
	if (token)
		check_length(r, json_get(root, "NextToken"), token, "nextToken", 0, NEXT_TOKEN_MAX_LEN);
	if (req_failed(r))
		return false;
	/* An empty NextToken means "from the start", as botocore's paginators send none. */
	if (token && *token) {
		if (!token_parse(token, p) || p->token_sort != p->sort_by || p->token_descending != p->descending) {
			api_reply_error(r->reply, 400, "ValidationException",
					"Invalid NextToken: pass the NextToken of an earlier answer to the same request "
					"(same SortBy and SortOrder).");
			return false;
		}
	}
	return true;
}

void list_params_clear(struct list_params *p)
{
	free(p->token_key);
	free(p->token_name);
	p->token_key = p->token_name = NULL;
}

static int compare_double(double a, double b)
{
	return a < b ? -1 : a > b ? 1 : 0;
}

static int item_compare(const struct list_item *a, const struct list_item *b, const struct list_params *p)
{
	int c = 0;
	if (p->sort_by == LIST_SORT_CREATION_TIME)
		c = compare_double(a->creation_time, b->creation_time);
	else if (p->sort_by == LIST_SORT_STATUS)
		c = strcmp(a->status ? a->status : "", b->status ? b->status : "");
	if (c == 0)
		c = strcmp(a->name, b->name);
	return p->descending ? -c : c;
}

static int item_qsort_compare(const void *a, const void *b, void *p)
{
	return item_compare(a, b, p);
}

static bool item_matches(const struct list_params *p, const struct list_item *it)
{
	if (p->name_contains && !strcasestr(it->name, p->name_contains))
		return false;
	if (p->has_created_before && !(it->creation_time < p->created_before))
		return false;
	if (p->has_created_after && !(it->creation_time >= p->created_after))
		return false;
	if (p->has_modified_before && !(it->last_modified_time < p->modified_before))
		return false;
	if (p->has_modified_after && !(it->last_modified_time > p->modified_after))
		return false;
	if (p->status_equals && (!it->status || strcmp(it->status, p->status_equals) != 0))
		return false;
	return true;
}

int list_select(const struct list_params *p, struct list_item *items, size_t n, size_t *n_page, char **next_token)
{
	*next_token = NULL;
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (item_matches(p, &items[i]))
			items[kept++] = items[i];
	qsort_r(items, kept, sizeof(*items), item_qsort_compare, (void *)p);
	size_t start = 0;
	if (p->has_token) {
		struct list_item mark = { .name = p->token_name, .creation_time = p->token_time,
					  .status = p->token_key };
		while (start < kept && item_compare(&items[start], &mark, p) <= 0)
			start++;
	}
	size_t count = kept - start;
	if (count > (size_t)p->max_results)
		count = (size_t)p->max_results;
	memmove(items, items + start, count * sizeof(*items));
	*n_page = count;
	if (start + count < kept) {
		*next_token = token_make(p, &items[count - 1]);
		if (!*next_token)
			return -1;
	}
	return 0;
}

void api_list_run(struct api_request *r, bool endpoints, const char *member, struct list_item *items, size_t n,
		  int (*gen_summary)(yajl_gen g, const void *resource))
{
	struct list_params p;
	if (!list_params_decode(r, endpoints, &p)) {
		list_params_clear(&p);
		return;
	}
	size_t n_page = 0;
	char *token = NULL;
	yajl_gen g = NULL;
	bool ok = list_select(&p, items, n, &n_page, &token) == 0 && (g = json_gen_new()) != NULL;
	ok = ok && yajl_gen_map_open(g) == yajl_gen_status_ok && json_gen_str(g, member) == 0 &&
	     yajl_gen_array_open(g) == yajl_gen_status_ok;
	for (size_t i = 0; ok && i < n_page; i++)
		ok = yajl_gen_map_open(g) == yajl_gen_status_ok && gen_summary(g, items[i].resource) == 0 &&
		     yajl_gen_map_close(g) == yajl_gen_status_ok;
	ok = ok && yajl_gen_array_close(g) == yajl_gen_status_ok &&
	     (!token || json_gen_kv_str(g, "NextToken", token) == 0) && yajl_gen_map_close(g) == yajl_gen_status_ok;
	if (ok) {
		api_reply_gen(r->reply, g);
	} else {
		if (g)
			yajl_gen_free(g);
		api_reply_nomem(r->reply);
	}
	free(token);
	list_params_clear(&p);
}
