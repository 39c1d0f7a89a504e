/* config.c — see config.h. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "image.h"
#include "json.h"

#define CONFIG_MAX_BYTES (1u << 20)
#define CONFIG_MAX_STRING 4096

int berthd_config_set(char **member, const char *value)
{
	char *copy = NULL;
	if (value != NULL && (copy = strdup(value)) == NULL)
		return -1;
	free(*member);
	*member = copy;
	return 0;
}

int berthd_config_defaults(struct berthd_config *c, struct berth_err *err)
{
	memset(c, 0, sizeof(*c));
	c->create_grace_ms = 5000;
	c->health_timeout_ms = 240000;
	c->stop_timeout_ms = 30000;
	c->instance_pids_limit = 4096;
	c->cpu_overcommit = 8.0;
	c->memory_overcommit = 2.0;
	c->image_max_bytes = IMAGE_DEFAULT_MAX_BYTES;
	c->image_max_entries = IMAGE_DEFAULT_MAX_ENTRIES;
	if (berthd_config_set(&c->state_dir, "/var/lib/berth") < 0 || berthd_config_set(&c->run_dir, "/run/berth") < 0 ||
	    berthd_config_set(&c->region, "us-east-1") < 0 || berthd_config_set(&c->account, "000000000000") < 0 ||
	    berthd_config_set(&c->runc, "runc") < 0 || berthd_config_set(&c->router_user, "berth") < 0)
		return berth_err_set(err, ENOMEM, "configuration");
	return 0;
}

struct string_member {
	const char *key;
	size_t offset;
};

static const struct string_member string_members[] = {
	{ "state_dir", offsetof(struct berthd_config, state_dir) },
	{ "run_dir", offsetof(struct berthd_config, run_dir) },
	{ "socket", offsetof(struct berthd_config, socket) },
	{ "object_store_root", offsetof(struct berthd_config, object_store_root) },
	{ "region", offsetof(struct berthd_config, region) },
	{ "account", offsetof(struct berthd_config, account) },
	{ "shim", offsetof(struct berthd_config, shim) },
	{ "runc", offsetof(struct berthd_config, runc) },
	{ "router", offsetof(struct berthd_config, router) },
	{ "router_user", offsetof(struct berthd_config, router_user) },
	{ "instance_types", offsetof(struct berthd_config, instance_types) },
	{ "seccomp_profile", offsetof(struct berthd_config, seccomp_profile) },
	{ "s3_endpoint", offsetof(struct berthd_config, s3_endpoint) },
	{ "https_ca_file", offsetof(struct berthd_config, https_ca_file) },
};

int berthd_config_default_roots(struct berthd_config *c, const char *state_dir, struct berth_err *err)
{
	_cleanup_free_ char *images = fs_path("%s/local/images", state_dir);
	_cleanup_free_ char *models = fs_path("%s/local/models", state_dir);
	if (images == NULL || models == NULL)
		return berth_err_set(err, ENOMEM, "configuration");
	if (!c->image_roots_set && (host_roots_add(&c->image_roots, images, err) < 0 ||
				    host_roots_add(&c->image_roots, BERTHD_SHARED_IMAGE_DIR, err) < 0))
		return -1;
	if (!c->model_roots_set && (host_roots_add(&c->model_roots, models, err) < 0 ||
				    host_roots_add(&c->model_roots, BERTHD_SHARED_IMAGE_DIR, err) < 0))
		return -1;
	return 0;
}

int berthd_config_bucket_ok(const char *b, struct berth_err *err)
{
	size_t n = strlen(b);
	if (n < 1 || n > 255 || strspn(b, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != n)
		return berth_err_set(err, 0, "bucket \"%s\" is not a bucket name (letters, digits, '.', '-', '_')", b);
	return 0;
}

int berthd_config_host_ok(const char *h, struct berth_err *err)
{
	size_t n = strlen(h);
	if (n < 1 || n > 255 || strcspn(h, "/@?#\\ \t\r\n") != n)
		return berth_err_set(err, 0, "host \"%s\" is not HOST or HOST:PORT", h);
	return 0;
}

/* "key": ["…", …] → each item checked and added. */
static int set_string_list(const char *key, yajl_val v, struct berthd_config *c, struct berth_err *err)
{
	if (!YAJL_IS_ARRAY(v) || v->u.array.len > OBJSTORE_LIST_MAX)
		return berth_err_set(err, 0, "\"%s\" must be an array of at most %d strings", key, OBJSTORE_LIST_MAX);
	bool roots = strcmp(key, "image_roots") == 0 || strcmp(key, "model_roots") == 0;
	struct host_roots *r = strcmp(key, "image_roots") == 0 ? &c->image_roots : &c->model_roots;
	struct objstore_list *l = strcmp(key, "s3_buckets") == 0 ? &c->s3_buckets : &c->https_hosts;
	if (roots) {
		host_roots_free(r);
		*(r == &c->image_roots ? &c->image_roots_set : &c->model_roots_set) = true;
	} else {
		objstore_list_free(l);
	}
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val s = v->u.array.values[i];
		if (!YAJL_IS_STRING(s) || strlen(s->u.string) > CONFIG_MAX_STRING)
			return berth_err_set(err, 0, "\"%s\" must be an array of strings", key);
		int r2 = roots ? host_roots_add(r, s->u.string, err)
			 : strcmp(key, "s3_buckets") == 0 ? berthd_config_bucket_ok(s->u.string, err)
							  : berthd_config_host_ok(s->u.string, err);
		if (r2 == 0 && !roots && objstore_list_add(l, s->u.string) < 0)
			r2 = berth_err_set(err, ENOMEM, "configuration");
		if (r2 < 0)
			return berth_err_prefix(err, "\"%s\"", key);
	}
	return 0;
}

static int set_count(const char *key, yajl_val v, unsigned long long *out, struct berth_err *err)
{
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 1)
		return berth_err_set(err, 0, "\"%s\" must be a whole number of at least 1", key);
	*out = (unsigned long long)YAJL_GET_INTEGER(v);
	return 0;
}

static int set_ms(const char *key, yajl_val v, int *out, struct berth_err *err)
{
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0 || YAJL_GET_INTEGER(v) > INT_MAX)
		return berth_err_set(err, 0, "\"%s\" must be a whole number of milliseconds", key);
	*out = (int)YAJL_GET_INTEGER(v);
	return 0;
}

static int set_factor(const char *key, yajl_val v, double *out, struct berth_err *err)
{
	if (!YAJL_IS_NUMBER(v) || YAJL_GET_DOUBLE(v) <= 0 || YAJL_GET_DOUBLE(v) > 1000)
		return berth_err_set(err, 0, "\"%s\" must be a number above 0 (1.0: no over-commit)", key);
	*out = YAJL_GET_DOUBLE(v);
	return 0;
}

static int set_listen(yajl_val v, struct berthd_config *c, struct berth_err *err)
{
	if (!YAJL_IS_ARRAY(v) || v->u.array.len > BERTHD_CONFIG_MAX_LISTEN)
		return berth_err_set(err, 0, "\"listen\" must be an array of at most %d \"HOST:PORT\" strings",
				     BERTHD_CONFIG_MAX_LISTEN);
	for (size_t i = 0; i < c->n_listen; i++)
		free(c->listen[i]);
	c->n_listen = 0;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val s = v->u.array.values[i];
		if (!YAJL_IS_STRING(s) || strlen(s->u.string) == 0 || strlen(s->u.string) > 255)
			return berth_err_set(err, 0, "\"listen\" must be an array of \"HOST:PORT\" strings");
		if ((c->listen[c->n_listen] = strdup(s->u.string)) == NULL)
			return berth_err_set(err, ENOMEM, "configuration");
		c->n_listen++;
	}
	return 0;
}

static int set_member(const char *key, yajl_val v, struct berthd_config *c, struct berth_err *err)
{
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(string_members); i++) {
		if (strcmp(key, string_members[i].key) != 0)
			continue;
		char **member = (char **)((char *)c + string_members[i].offset);
		if (YAJL_IS_NULL(v))
			return berthd_config_set(member, NULL);
		if (!YAJL_IS_STRING(v) || strlen(v->u.string) > CONFIG_MAX_STRING)
			return berth_err_set(err, 0, "\"%s\" must be a string (or null)", key);
		if (berthd_config_set(member, v->u.string) < 0)
			return berth_err_set(err, ENOMEM, "configuration");
		return 0;
	}
	if (strcmp(key, "create_grace_ms") == 0)
		return set_ms(key, v, &c->create_grace_ms, err);
	if (strcmp(key, "health_timeout_ms") == 0)
		return set_ms(key, v, &c->health_timeout_ms, err);
	if (strcmp(key, "stop_timeout_ms") == 0)
		return set_ms(key, v, &c->stop_timeout_ms, err);
	if (strcmp(key, "cpu_overcommit") == 0)
		return set_factor(key, v, &c->cpu_overcommit, err);
	if (strcmp(key, "memory_overcommit") == 0)
		return set_factor(key, v, &c->memory_overcommit, err);
	if (strcmp(key, "listen") == 0)
		return set_listen(v, c, err);
	if (strcmp(key, "image_roots") == 0 || strcmp(key, "model_roots") == 0 || strcmp(key, "s3_buckets") == 0 ||
	    strcmp(key, "https_hosts") == 0)
		return set_string_list(key, v, c, err);
	if (strcmp(key, "image_max_bytes") == 0)
		return set_count(key, v, &c->image_max_bytes, err);
	if (strcmp(key, "image_max_entries") == 0)
		return set_count(key, v, &c->image_max_entries, err);
	if (strcmp(key, "instance_pids_limit") == 0) {
		if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 16 || YAJL_GET_INTEGER(v) > (1LL << 22))
			return berth_err_set(err, 0, "\"instance_pids_limit\" must be a whole number from 16 to 4194304");
		c->instance_pids_limit = YAJL_GET_INTEGER(v);
		return 0;
	}
	if (key[0] == '_' || strcmp(key, "comment") == 0) /* notes for the reader */
		return 0;
	return berth_err_set(err, 0, "unknown setting \"%s\"", key);
}

int berthd_config_parse(const char *text, size_t len, struct berthd_config *c, struct berth_err *err)
{
	yajl_val root = json_parse(text, len, err);
	if (root == NULL)
		return -1;
	int r = 0;
	if (!YAJL_IS_OBJECT(root))
		r = berth_err_set(err, 0, "expected a JSON object of settings");
	for (size_t i = 0; r == 0 && i < root->u.object.len; i++)
		r = set_member(root->u.object.keys[i], root->u.object.values[i], c, err);
	yajl_tree_free(root);
	return r;
}

int berthd_config_load(const char *path, struct berthd_config *c, struct berth_err *err)
{
	struct berth_buf doc = BERTH_BUF_INIT;
	int r = fs_read_file(path, &doc, CONFIG_MAX_BYTES, err);
	if (r == 0)
		r = berthd_config_parse(doc.data ? doc.data : "", doc.len, c, err);
	if (r < 0)
		berth_err_prefix(err, "configuration %s", path);
	buf_free(&doc);
	return r;
}

void berthd_config_free(struct berthd_config *c)
{
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(string_members); i++) {
		char **member = (char **)((char *)c + string_members[i].offset);
		free(*member);
		*member = NULL;
	}
	for (size_t i = 0; i < c->n_listen; i++)
		free(c->listen[i]);
	c->n_listen = 0;
	host_roots_free(&c->image_roots);
	host_roots_free(&c->model_roots);
	objstore_list_free(&c->s3_buckets);
	objstore_list_free(&c->https_hosts);
}
