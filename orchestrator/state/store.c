/* store.c — the state store (store.h): three name-sorted arrays mirrored by
 * one JSON document per resource, each written atomically before the
 * in-memory array changes, so memory never holds what the disk does not. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "log.h"
#include "names.h"

#define STORE_DOC_MAX_BYTES (16u << 20) /* a document larger than this is corrupt */

/* One kind of resource: its directory and its sorted array of pointers. */
struct shelf {
	const char *kind;   /* "models", "endpoint-configs", "endpoints" */
	char *dir;
	void **items;
	size_t n, cap;
	const char *(*name_of)(const void *item);
	void (*free_item)(void *item);
	int (*to_json)(const void *item, struct berth_buf *out);
	void *(*from_json)(const char *text, size_t len, struct berth_err *err);
};

struct store {
	char *dir;
	struct shelf models, configs, endpoints;
};

/* Adapters so one shelf implementation serves the three resource types. */
static const char *model_name_of(const void *p) { return ((const struct model *)p)->name; }
static const char *config_name_of(const void *p) { return ((const struct endpoint_config *)p)->name; }
static const char *endpoint_name_of(const void *p) { return ((const struct endpoint *)p)->name; }
static void model_free_item(void *p) { model_free(p); }
static void config_free_item(void *p) { endpoint_config_free(p); }
static void endpoint_free_item(void *p) { endpoint_free(p); }
static int model_to_json_item(const void *p, struct berth_buf *out) { return model_to_json(p, out); }
static int config_to_json_item(const void *p, struct berth_buf *out) { return endpoint_config_to_json(p, out); }
static int endpoint_to_json_item(const void *p, struct berth_buf *out) { return endpoint_to_json(p, out); }
static void *model_from_json_item(const char *t, size_t l, struct berth_err *e) { return model_from_json(t, l, e); }
static void *config_from_json_item(const char *t, size_t l, struct berth_err *e) { return endpoint_config_from_json(t, l, e); }
static void *endpoint_from_json_item(const char *t, size_t l, struct berth_err *e) { return endpoint_from_json(t, l, e); }

/* Index of name, or of where it would go (*found false). */
static size_t shelf_find(const struct shelf *sh, const char *name, bool *found)
{
	size_t lo = 0, hi = sh->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(sh->name_of(sh->items[mid]), name);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static void *shelf_get(const struct shelf *sh, const char *name)
{
	bool found;
	if (!name)
		return NULL;
	size_t i = shelf_find(sh, name, &found);
	return found ? sh->items[i] : NULL;
}

static int shelf_reserve(struct shelf *sh)
{
	if (sh->n < sh->cap)
		return 0;
	size_t cap = sh->cap ? sh->cap * 2 : 16;
	void **items = realloc(sh->items, cap * sizeof(*items));
	if (!items)
		return -1;
	sh->items = items;
	sh->cap = cap;
	return 0;
}

/* Puts item in memory only (ownership taken). */
static void shelf_insert(struct shelf *sh, void *item)
{
	bool found;
	size_t i = shelf_find(sh, sh->name_of(item), &found);
	if (found) {
		sh->free_item(sh->items[i]);
		sh->items[i] = item;
		return;
	}
	memmove(&sh->items[i + 1], &sh->items[i], (sh->n - i) * sizeof(*sh->items));
	sh->items[i] = item;
	sh->n++;
}

static char *shelf_path(const struct shelf *sh, const char *name)
{
	return fs_path("%s/%s.json", sh->dir, name);
}

static int shelf_put(struct shelf *sh, void *item, struct berth_err *err)
{
	const char *name = item ? sh->name_of(item) : NULL;
	if (!name_is_valid(name)) {
		sh->free_item(item);
		return berth_err_set(err, EINVAL, "cannot store %s: invalid name", sh->kind);
	}
	struct berth_buf doc = BERTH_BUF_INIT;
	_cleanup_free_ char *path = shelf_path(sh, name);
	int r = -1;
	if (!path || shelf_reserve(sh) < 0) {
		berth_err_set(err, ENOMEM, "storing %s %s", sh->kind, name);
	} else if (sh->to_json(item, &doc) < 0) {
		berth_err_set(err, errno, "encoding %s %s", sh->kind, name);
	} else if (fs_write_atomic(path, doc.data, doc.len, 0600, err) < 0) {
		berth_err_prefix(err, "persisting %s %s", sh->kind, name);
	} else {
		shelf_insert(sh, item);
		item = NULL;
		r = 0;
	}
	buf_free(&doc);
	if (item)
		sh->free_item(item);
	return r;
}

static int shelf_delete(struct shelf *sh, const char *name, struct berth_err *err)
{
	bool found;
	size_t i = name ? shelf_find(sh, name, &found) : 0;
	if (!name || !found)
		return berth_err_set(err, ENOENT, "no such %s: %s", sh->kind, name ? name : "(null)");
	_cleanup_free_ char *path = shelf_path(sh, name);
	if (!path)
		return berth_err_set(err, ENOMEM, "deleting %s %s", sh->kind, name);
	if (fs_unlink_durable(path, err) < 0)
		return berth_err_prefix(err, "deleting %s %s", sh->kind, name);
	sh->free_item(sh->items[i]);
	memmove(&sh->items[i], &sh->items[i + 1], (sh->n - i - 1) * sizeof(*sh->items));
	sh->n--;
	return 0;
}

static void shelf_quarantine(const struct shelf *sh, const char *path, const char *why)
{
	_cleanup_free_ char *to = fs_path("%s.corrupt", path);
	log_error("state store: %s is corrupt (%s); moved aside to %s.corrupt and skipped", path, why, path);
	if (!to || rename(path, to) < 0)
		log_error("state store: cannot rename %s: %s", path, strerror(errno));
}

/* Loads every NAME.json of the shelf's directory. Only a failure to create
 * or read the directory itself is fatal. */
static int shelf_load(struct shelf *sh, struct berth_err *err)
{
	if (fs_mkdir_p(sh->dir, 0700, err) < 0)
		return -1;
	DIR *d = opendir(sh->dir);
	if (!d)
		return berth_err_set(err, errno, "cannot open %s", sh->dir);
	struct dirent *de;
	int r = 0;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue; /* ".", "..", NAME.json.tmp.TID leftovers, NAME.json.corrupt */
		_cleanup_free_ char *path = fs_path("%s/%s", sh->dir, de->d_name);
		_cleanup_free_ char *file_name = strndup(de->d_name, len - 5);
		if (!path || !file_name || shelf_reserve(sh) < 0) {
			r = berth_err_set(err, ENOMEM, "loading %s", sh->dir);
			break;
		}
		struct berth_buf text = BERTH_BUF_INIT;
		struct berth_err why = { 0 };
		void *item = NULL;
		if (fs_read_file(path, &text, STORE_DOC_MAX_BYTES, &why) == 0)
			item = sh->from_json(text.data ? text.data : "", text.len, &why);
		buf_free(&text);
		if (item && strcmp(sh->name_of(item), file_name) != 0) {
			berth_err_set(&why, 0, "the document names %s", sh->name_of(item));
			sh->free_item(item);
			item = NULL;
		}
		if (!item) {
			if (why.errnum == ENOMEM) {
				r = berth_err_set(err, ENOMEM, "loading %s", path);
				break;
			}
			shelf_quarantine(sh, path, why.msg);
			continue;
		}
		shelf_insert(sh, item);
	}
	closedir(d);
	return r;
}

static void shelf_clear(struct shelf *sh)
{
	for (size_t i = 0; i < sh->n; i++)
		sh->free_item(sh->items[i]);
	free(sh->items);
	free(sh->dir);
}

struct store *store_open(const char *state_dir, struct berth_err *err)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s) {
		berth_err_set(err, ENOMEM, "opening the state store");
		return NULL;
	}
	s->models = (struct shelf){ .kind = "models", .name_of = model_name_of, .free_item = model_free_item,
				    .to_json = model_to_json_item, .from_json = model_from_json_item };
	s->configs = (struct shelf){ .kind = "endpoint-configs", .name_of = config_name_of,
				     .free_item = config_free_item, .to_json = config_to_json_item,
				     .from_json = config_from_json_item };
	s->endpoints = (struct shelf){ .kind = "endpoints", .name_of = endpoint_name_of,
				       .free_item = endpoint_free_item, .to_json = endpoint_to_json_item,
				       .from_json = endpoint_from_json_item };
	s->dir = strdup(state_dir);
	s->models.dir = fs_path("%s/models", state_dir);
	s->configs.dir = fs_path("%s/endpoint-configs", state_dir);
	s->endpoints.dir = fs_path("%s/endpoints", state_dir);
	if (!s->dir || !s->models.dir || !s->configs.dir || !s->endpoints.dir) {
		berth_err_set(err, ENOMEM, "opening the state store");
		store_close(s);
		return NULL;
	}
	if (fs_mkdir_p(state_dir, 0700, err) < 0 || shelf_load(&s->models, err) < 0 ||
	    shelf_load(&s->configs, err) < 0 || shelf_load(&s->endpoints, err) < 0) {
		berth_err_prefix(err, "opening the state store in %s", state_dir);
		store_close(s);
		return NULL;
	}
	return s;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	shelf_clear(&s->models);
	shelf_clear(&s->configs);
	shelf_clear(&s->endpoints);
	free(s->dir);
	free(s);
}

const char *store_dir(const struct store *s)
{
	return s->dir;
}

int store_put_model(struct store *s, struct model *m, struct berth_err *err)
{
	return shelf_put(&s->models, m, err);
}

const struct model *store_get_model(const struct store *s, const char *name)
{
	return shelf_get(&s->models, name);
}

int store_delete_model(struct store *s, const char *name, struct berth_err *err)
{
	return shelf_delete(&s->models, name, err);
}

size_t store_count_models(const struct store *s)
{
	return s->models.n;
}

const struct model *store_model_at(const struct store *s, size_t i)
{
	return i < s->models.n ? s->models.items[i] : NULL;
}

int store_put_endpoint_config(struct store *s, struct endpoint_config *c, struct berth_err *err)
{
	return shelf_put(&s->configs, c, err);
}

const struct endpoint_config *store_get_endpoint_config(const struct store *s, const char *name)
{
	return shelf_get(&s->configs, name);
}

int store_delete_endpoint_config(struct store *s, const char *name, struct berth_err *err)
{
	return shelf_delete(&s->configs, name, err);
}

size_t store_count_endpoint_configs(const struct store *s)
{
	return s->configs.n;
}

const struct endpoint_config *store_endpoint_config_at(const struct store *s, size_t i)
{
	return i < s->configs.n ? s->configs.items[i] : NULL;
}

int store_put_endpoint(struct store *s, struct endpoint *e, struct berth_err *err)
{
	return shelf_put(&s->endpoints, e, err);
}

const struct endpoint *store_get_endpoint(const struct store *s, const char *name)
{
	return shelf_get(&s->endpoints, name);
}

int store_delete_endpoint(struct store *s, const char *name, struct berth_err *err)
{
	return shelf_delete(&s->endpoints, name, err);
}

size_t store_count_endpoints(const struct store *s)
{
	return s->endpoints.n;
}

const struct endpoint *store_endpoint_at(const struct store *s, size_t i)
{
	return i < s->endpoints.n ? s->endpoints.items[i] : NULL;
}
