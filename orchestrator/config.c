/* config.c — see config.h. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
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
};

static int set_ms(const char *key, yajl_val v, int *out, struct berth_err *err)
{
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0 || YAJL_GET_INTEGER(v) > INT_MAX)
		return berth_err_set(err, 0, "\"%s\" must be a whole number of milliseconds", key);
	*out = (int)YAJL_GET_INTEGER(v);
	return 0;
}

static int set_count(const char *key, yajl_val v, long long max, long long *out, struct berth_err *err)
{
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 1 || YAJL_GET_INTEGER(v) > max)
		return berth_err_set(err, 0, "\"%s\" must be a whole number from 1 to %lld", key, max);
	*out = YAJL_GET_INTEGER(v);
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
	/* the same bounds as berth-router's flags */
	if (strcmp(key, "router_request_timeout_ms") == 0)
		return set_count(key, v, 3600000, &c->router_request_timeout_ms, err);
	if (strcmp(key, "router_max_connections") == 0)
		return set_count(key, v, 1000000, &c->router_max_connections, err);
	if (strcmp(key, "router_max_buffered_bytes") == 0)
		return set_count(key, v, 1LL << 40, &c->router_max_buffered_bytes, err);
	if (strcmp(key, "router_max_connection_buffered_bytes") == 0)
		return set_count(key, v, 1LL << 40, &c->router_max_connection_buffered_bytes, err);
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
}
