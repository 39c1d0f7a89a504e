/* route_table.c — parsing, validation and lookup of route table snapshots. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "json.h"
#include "route_table.h"

#define ROUTE_MAX_ENDPOINTS 100000
#define ROUTE_MAX_VARIANTS 10
#define ROUTE_MAX_INSTANCES 1000

static void container_clear(struct route_container *c)
{
	free(c->hostname);
	free(c->socket);
	free(c->log);
}

static void endpoint_clear(struct route_endpoint *e)
{
	for (size_t v = 0; v < e->n_variants; v++) {
		struct route_variant *var = &e->variants[v];
		for (size_t i = 0; i < var->n_instances; i++) {
			struct route_instance *in = &var->instances[i];
			for (size_t c = 0; c < in->n_containers; c++)
				container_clear(&in->containers[c]);
			free(in->containers);
			free(in->outstanding);
		}
		free(var->instances);
		free(var->name);
	}
	free(e->variants);
	free(e->name);
	free(e->status);
}

static void table_free(struct route_table *t)
{
	for (size_t i = 0; i < t->n_endpoints; i++)
		endpoint_clear(&t->endpoints[i]);
	free(t->endpoints);
	free(t->account);
	free(t->region);
	free(t);
}

struct route_table *route_table_ref(struct route_table *t)
{
	if (t)
		t->refs++;
	return t;
}

void route_table_unref(struct route_table *t)
{
	if (t && --t->refs == 0)
		table_free(t);
}

struct route_table *route_table_new_empty(void)
{
	struct route_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->refs = 1;
	t->account = strdup("000000000000");
	t->region = strdup("us-east-1");
	if (!t->account || !t->region) {
		table_free(t);
		return NULL;
	}
	return t;
}

const char *route_mode_name(enum route_mode mode)
{
	switch (mode) {
	case ROUTE_MODE_SINGLE: return "Single";
	case ROUTE_MODE_DIRECT: return "Direct";
	case ROUTE_MODE_SERIAL: return "Serial";
	case ROUTE_MODE_MULTI: return "MultiModel";
	}
	return "?";
}

/* A required string of 1..max bytes, copied; -1 with err otherwise. */
static int take_string(yajl_val obj, const char *key, size_t max, const char *where, char **out,
		       struct berth_err *err)
{
	const char *s = json_get_string(obj, key);
	if (!s)
		return berth_err_set(err, 0, "route table: %s has no string \"%s\"", where, key);
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return berth_err_set(err, 0, "route table: %s \"%s\" must be 1 to %zu bytes long", where, key, max);
	*out = strdup(s);
	if (!*out)
		return berth_err_set(err, ENOMEM, "route table");
	return 0;
}

static yajl_val get_array(yajl_val obj, const char *key, size_t max, const char *where, struct berth_err *err)
{
	yajl_val a = json_get(obj, key);
	if (!YAJL_IS_ARRAY(a)) {
		berth_err_set(err, 0, "route table: %s has no array \"%s\"", where, key);
		return NULL;
	}
	if (a->u.array.len > max) {
		berth_err_set(err, 0, "route table: %s has more than %zu \"%s\"", where, max, key);
		return NULL;
	}
	return a;
}

static int parse_container(yajl_val v, struct route_container *c, struct berth_err *err)
{
	if (!YAJL_IS_OBJECT(v))
		return berth_err_set(err, 0, "route table: a container is not an object");
	if (take_string(v, "hostname", ROUTE_MAX_NAME, "container", &c->hostname, err) < 0 ||
	    take_string(v, "socket", sizeof(((struct sockaddr_un *)0)->sun_path) - 1, "container", &c->socket, err) < 0)
		return -1;
	const char *log = json_get_string(v, "log");
	if (log && !(c->log = strdup(log)))
		return berth_err_set(err, ENOMEM, "route table");
	return 0;
}

static int parse_instance(yajl_val v, struct route_instance *in, struct berth_err *err)
{
	if (!YAJL_IS_OBJECT(v))
		return berth_err_set(err, 0, "route table: an instance is not an object");
	yajl_val cs = get_array(v, "containers", ROUTE_MAX_CONTAINERS, "instance", err);
	if (!cs)
		return -1;
	if (cs->u.array.len == 0)
		return berth_err_set(err, 0, "route table: an instance has no containers");
	in->containers = calloc(cs->u.array.len, sizeof(*in->containers));
	in->outstanding = calloc(1, sizeof(*in->outstanding));
	if (!in->containers || !in->outstanding)
		return berth_err_set(err, ENOMEM, "route table");
	for (size_t i = 0; i < cs->u.array.len; i++) {
		in->n_containers = i + 1;
		if (parse_container(cs->u.array.values[i], &in->containers[i], err) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(in->containers[j].hostname, in->containers[i].hostname) == 0)
				return berth_err_set(err, 0, "route table: container hostname %s appears twice",
						     in->containers[i].hostname);
	}
	return 0;
}

/* mode: a mode name, or NULL for fallback; -1 for an unknown name. */
static int parse_mode(const char *mode, enum route_mode fallback, enum route_mode *out)
{
	static const enum route_mode all[] = { ROUTE_MODE_SINGLE, ROUTE_MODE_DIRECT, ROUTE_MODE_SERIAL,
					       ROUTE_MODE_MULTI };
	if (mode == NULL) {
		*out = fallback;
		return 0;
	}
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(mode, route_mode_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	return -1;
}

static int parse_variant(yajl_val v, enum route_mode endpoint_mode, struct route_variant *var,
			 struct berth_err *err)
{
	if (!YAJL_IS_OBJECT(v))
		return berth_err_set(err, 0, "route table: a variant is not an object");
	if (take_string(v, "name", ROUTE_MAX_NAME, "variant", &var->name, err) < 0)
		return -1;
	yajl_val mode = json_get(v, "mode");
	if (mode != NULL && !YAJL_IS_STRING(mode))
		return berth_err_set(err, 0, "route table: variant %s has a \"mode\" that is not a string", var->name);
	if (parse_mode(json_get_string(v, "mode"), endpoint_mode, &var->mode) < 0)
		return berth_err_set(err, 0, "route table: variant %s has unknown mode \"%.64s\"", var->name,
				     json_get_string(v, "mode"));
	var->weight = 1.0;
	json_get_double(v, "weight", &var->weight);
	if (!(var->weight >= 0.0))
		return berth_err_set(err, 0, "route table: variant %s has a negative weight", var->name);
	yajl_val ins = json_get(v, "instances");
	if (ins == NULL || YAJL_IS_NULL(ins))
		return 0;
	if (!(ins = get_array(v, "instances", ROUTE_MAX_INSTANCES, "variant", err)))
		return -1;
	if (ins->u.array.len == 0)
		return 0;
	var->instances = calloc(ins->u.array.len, sizeof(*var->instances));
	if (!var->instances)
		return berth_err_set(err, ENOMEM, "route table");
	for (size_t i = 0; i < ins->u.array.len; i++) {
		var->n_instances = i + 1;
		if (parse_instance(ins->u.array.values[i], &var->instances[i], err) < 0)
			return -1;
	}
	return 0;
}

static int parse_endpoint(yajl_val v, struct route_endpoint *e, struct berth_err *err)
{
	if (!YAJL_IS_OBJECT(v))
		return berth_err_set(err, 0, "route table: an endpoint is not an object");
	if (take_string(v, "name", ROUTE_MAX_NAME, "endpoint", &e->name, err) < 0 ||
	    take_string(v, "status", 64, "endpoint", &e->status, err) < 0)
		return -1;
	/* an endpoint being updated keeps serving (on its old instances until
	 * the swap), as on SageMaker */
	e->in_service = strcmp(e->status, "InService") == 0 || strcmp(e->status, "Updating") == 0 ||
			strcmp(e->status, "SystemUpdating") == 0 || strcmp(e->status, "RollingBack") == 0;
	/* an older berthd's table: one mode for the whole endpoint */
	enum route_mode endpoint_mode;
	yajl_val mode = json_get(v, "mode");
	if (mode != NULL && !YAJL_IS_STRING(mode))
		return berth_err_set(err, 0, "route table: endpoint %s has a \"mode\" that is not a string", e->name);
	if (parse_mode(json_get_string(v, "mode"), ROUTE_MODE_SINGLE, &endpoint_mode) < 0)
		return berth_err_set(err, 0, "route table: endpoint %s has unknown mode \"%.64s\"", e->name,
				     json_get_string(v, "mode"));
	yajl_val vs = json_get(v, "variants");
	if (vs == NULL || YAJL_IS_NULL(vs))
		return 0;
	if (!(vs = get_array(v, "variants", ROUTE_MAX_VARIANTS, "endpoint", err)))
		return -1;
	if (vs->u.array.len == 0)
		return 0;
	e->variants = calloc(vs->u.array.len, sizeof(*e->variants));
	if (!e->variants)
		return berth_err_set(err, ENOMEM, "route table");
	for (size_t i = 0; i < vs->u.array.len; i++) {
		e->n_variants = i + 1;
		if (parse_variant(vs->u.array.values[i], endpoint_mode, &e->variants[i], err) < 0)
			return berth_err_prefix(err, "endpoint %s", e->name);
	}
	return 0;
}

static int endpoint_compare(const void *a, const void *b)
{
	return strcmp(((const struct route_endpoint *)a)->name, ((const struct route_endpoint *)b)->name);
}

struct route_table *route_table_parse(const char *json, size_t len, struct berth_err *err)
{
	yajl_val root = json_parse(json, len, err);
	if (!root) {
		berth_err_prefix(err, "route table");
		return NULL;
	}
	struct route_table *t = calloc(1, sizeof(*t));
	if (!t) {
		yajl_tree_free(root);
		berth_err_set(err, ENOMEM, "route table");
		return NULL;
	}
	t->refs = 1;
	const char *op = json_get_string(root, "op");
	if (!op || strcmp(op, "routes") != 0) {
		berth_err_set(err, 0, "route table: message is not {\"op\":\"routes\",…}");
		goto fail;
	}
	if (!json_get_int64(root, "generation", &t->generation))
		t->generation = 0;
	if (take_string(root, "account", 64, "table", &t->account, err) < 0 ||
	    take_string(root, "region", 64, "table", &t->region, err) < 0)
		goto fail;
	yajl_val es = get_array(root, "endpoints", ROUTE_MAX_ENDPOINTS, "table", err);
	if (!es)
		goto fail;
	if (es->u.array.len > 0) {
		t->endpoints = calloc(es->u.array.len, sizeof(*t->endpoints));
		if (!t->endpoints) {
			berth_err_set(err, ENOMEM, "route table");
			goto fail;
		}
	}
	for (size_t i = 0; i < es->u.array.len; i++) {
		t->n_endpoints = i + 1;
		if (parse_endpoint(es->u.array.values[i], &t->endpoints[i], err) < 0)
			goto fail;
	}
	if (t->n_endpoints > 1)
		qsort(t->endpoints, t->n_endpoints, sizeof(*t->endpoints), endpoint_compare);
	for (size_t i = 1; i < t->n_endpoints; i++)
		if (strcmp(t->endpoints[i - 1].name, t->endpoints[i].name) == 0) {
			berth_err_set(err, 0, "route table: endpoint %s appears twice", t->endpoints[i].name);
			goto fail;
		}
	yajl_tree_free(root);
	return t;
fail:
	yajl_tree_free(root);
	table_free(t);
	return NULL;
}

const struct route_endpoint *route_table_find(const struct route_table *t, const char *name)
{
	size_t lo = 0, hi = t->n_endpoints;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, t->endpoints[mid].name);
		if (c == 0)
			return &t->endpoints[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct route_variant *route_endpoint_variant_in_mode(const struct route_endpoint *e, enum route_mode mode)
{
	for (size_t i = 0; i < e->n_variants; i++)
		if (e->variants[i].mode == mode)
			return &e->variants[i];
	return NULL;
}
