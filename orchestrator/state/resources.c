/* resources.c — freeing, copying and the on-disk JSON of models, endpoint
 * configs and endpoints (resources.h).
 *
 * Decoding is strict about types (a document berth did not write, or a
 * damaged one, is refused with a message naming the member) and never
 * trusts lengths: every string is copied from yajl's tree. */
#include "resources.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "names.h"

/* ---- freeing -------------------------------------------------------------- */

static void kvs_free(struct kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

static void container_def_clear(struct container_def *c)
{
	free(c->hostname);
	free(c->image);
	free(c->model_data_url);
	free(c->mode);
	kvs_free(c->env, c->n_env);
}

void model_free(struct model *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->arn);
	free(m->execution_role_arn);
	for (size_t i = 0; i < m->n_containers; i++)
		container_def_clear(&m->containers[i]);
	free(m->containers);
	free(m->execution_mode);
	kvs_free(m->tags, m->n_tags);
	free(m);
}

const char *model_invocation_mode(const struct model *m)
{
	if (m->n_containers == 1 && m->containers[0].mode && strcmp(m->containers[0].mode, "MultiModel") == 0)
		return "MultiModel";
	if (m->n_containers == 1 && !m->execution_mode)
		return "Single";
	return m->execution_mode ? m->execution_mode : "Serial";
}

const char *endpoint_variant_mode(const struct endpoint *e, size_t i)
{
	if (i < e->n_variants && e->variants[i].mode)
		return e->variants[i].mode;
	return e->legacy_mode ? e->legacy_mode : "Single";
}

bool invocation_mode_valid(const char *mode)
{
	return strcmp(mode, "Single") == 0 || strcmp(mode, "Direct") == 0 || strcmp(mode, "Serial") == 0 ||
	       strcmp(mode, "MultiModel") == 0;
}

void variants_free(struct variant *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].variant_name);
		free(v[i].model_name);
		free(v[i].instance_type);
		free(v[i].mode);
	}
	free(v);
}

void endpoint_config_free(struct endpoint_config *c)
{
	if (!c)
		return;
	free(c->name);
	free(c->arn);
	variants_free(c->variants, c->n_variants);
	kvs_free(c->tags, c->n_tags);
	async_config_clear(&c->async);
	free(c);
}

void endpoint_container_clear(struct endpoint_container *c)
{
	free(c->id);
	free(c->hostname);
	free(c->socket);
	free(c->log);
	free(c->variant);
	for (size_t j = 0; j < c->n_devices; j++)
		free(c->devices[j]);
	free(c->devices);
	c->devices = NULL;
	c->n_devices = 0;
}

void endpoint_containers_free(struct endpoint_container *ec, size_t n)
{
	for (size_t i = 0; ec && i < n; i++)
		endpoint_container_clear(&ec[i]);
	free(ec);
}

void endpoint_free(struct endpoint *e)
{
	if (!e)
		return;
	free(e->name);
	free(e->arn);
	free(e->config_name);
	free(e->status);
	free(e->failure_reason);
	free(e->legacy_mode);
	free(e->variant_name);
	free(e->pending_config_name);
	endpoint_containers_free(e->containers, e->n_containers);
	kvs_free(e->tags, e->n_tags);
	variants_free(e->variants, e->n_variants);
	async_config_clear(&e->async);
	free(e);
}

/* ---- copying -------------------------------------------------------------- */

/* strdup that maps NULL to NULL and records an allocation failure in *ok. */
static char *dup_or_null(const char *s, bool *ok)
{
	if (!s)
		return NULL;
	char *r = strdup(s);
	if (!r)
		*ok = false;
	return r;
}

int endpoint_container_copy(struct endpoint_container *dst, const struct endpoint_container *src)
{
	bool ok = true;
	*dst = *src;
	dst->id = dup_or_null(src->id, &ok);
	dst->hostname = dup_or_null(src->hostname, &ok);
	dst->socket = dup_or_null(src->socket, &ok);
	dst->log = dup_or_null(src->log, &ok);
	dst->variant = dup_or_null(src->variant, &ok);
	dst->devices = NULL;
	dst->n_devices = 0;
	if (src->n_devices > 0 && (dst->devices = calloc(src->n_devices, sizeof(char *))) == NULL)
		ok = false;
	for (size_t j = 0; dst->devices && j < src->n_devices; j++)
		if ((dst->devices[dst->n_devices] = dup_or_null(src->devices[j], &ok)) != NULL)
			dst->n_devices++;
	return ok ? 0 : -1;
}

static struct kv *kvs_dup(const struct kv *kv, size_t n, bool *ok)
{
	if (n == 0)
		return NULL;
	struct kv *r = calloc(n, sizeof(*r));
	if (!r) {
		*ok = false;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		r[i].key = dup_or_null(kv[i].key, ok);
		r[i].value = dup_or_null(kv[i].value, ok);
	}
	return r;
}

struct model *model_dup(const struct model *m)
{
	bool ok = true;
	struct model *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->name = dup_or_null(m->name, &ok);
	r->arn = dup_or_null(m->arn, &ok);
	r->creation_time = m->creation_time;
	r->execution_role_arn = dup_or_null(m->execution_role_arn, &ok);
	r->has_primary = m->has_primary;
	r->execution_mode = dup_or_null(m->execution_mode, &ok);
	r->enable_network_isolation = m->enable_network_isolation;
	r->tags = kvs_dup(m->tags, m->n_tags, &ok);
	r->n_tags = r->tags ? m->n_tags : 0;
	if (m->n_containers > 0) {
		r->containers = calloc(m->n_containers, sizeof(*r->containers));
		if (!r->containers)
			ok = false;
		else
			r->n_containers = m->n_containers;
	}
	for (size_t i = 0; i < r->n_containers; i++) {
		const struct container_def *s = &m->containers[i];
		struct container_def *d = &r->containers[i];
		d->hostname = dup_or_null(s->hostname, &ok);
		d->hostname_given = s->hostname_given;
		d->image = dup_or_null(s->image, &ok);
		d->model_data_url = dup_or_null(s->model_data_url, &ok);
		d->multi_model_config = s->multi_model_config;
		d->model_cache_enabled = s->model_cache_enabled;
		d->mode = dup_or_null(s->mode, &ok);
		d->env = kvs_dup(s->env, s->n_env, &ok);
		d->n_env = d->env ? s->n_env : 0;
	}
	if (!ok) {
		model_free(r);
		errno = ENOMEM;
		return NULL;
	}
	return r;
}

struct variant *variants_dup(const struct variant *v, size_t n)
{
	if (n == 0) {
		errno = 0;
		return NULL;
	}
	bool ok = true;
	struct variant *r = calloc(n, sizeof(*r));
	if (!r)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		r[i].variant_name = dup_or_null(v[i].variant_name, &ok);
		r[i].model_name = dup_or_null(v[i].model_name, &ok);
		r[i].initial_instance_count = v[i].initial_instance_count;
		r[i].instance_type = dup_or_null(v[i].instance_type, &ok);
		r[i].initial_weight = v[i].initial_weight;
		r[i].startup_health_check_timeout_s = v[i].startup_health_check_timeout_s;
		r[i].model_data_download_timeout_s = v[i].model_data_download_timeout_s;
		r[i].routing_least_outstanding = v[i].routing_least_outstanding;
		r[i].mode = dup_or_null(v[i].mode, &ok);
	}
	if (!ok) {
		variants_free(r, n);
		errno = ENOMEM;
		return NULL;
	}
	return r;
}

struct endpoint_config *endpoint_config_dup(const struct endpoint_config *c)
{
	bool ok = true;
	struct endpoint_config *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->name = dup_or_null(c->name, &ok);
	r->arn = dup_or_null(c->arn, &ok);
	r->creation_time = c->creation_time;
	if (c->n_variants > 0) {
		r->variants = variants_dup(c->variants, c->n_variants);
		if (!r->variants)
			ok = false;
		else
			r->n_variants = c->n_variants;
	}
	r->tags = kvs_dup(c->tags, c->n_tags, &ok);
	r->n_tags = r->tags ? c->n_tags : 0;
	if (async_config_copy(&r->async, &c->async) < 0)
		ok = false;
	if (!ok) {
		endpoint_config_free(r);
		errno = ENOMEM;
		return NULL;
	}
	return r;
}

struct endpoint *endpoint_dup(const struct endpoint *e)
{
	bool ok = true;
	struct endpoint *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->name = dup_or_null(e->name, &ok);
	r->arn = dup_or_null(e->arn, &ok);
	r->config_name = dup_or_null(e->config_name, &ok);
	r->creation_time = e->creation_time;
	r->last_modified_time = e->last_modified_time;
	r->status = dup_or_null(e->status, &ok);
	r->failure_reason = dup_or_null(e->failure_reason, &ok);
	r->legacy_mode = dup_or_null(e->legacy_mode, &ok);
	r->variant_name = dup_or_null(e->variant_name, &ok);
	r->pending_config_name = dup_or_null(e->pending_config_name, &ok);
	if (e->n_containers > 0) {
		r->containers = calloc(e->n_containers, sizeof(*r->containers));
		if (!r->containers)
			ok = false;
		else
			r->n_containers = e->n_containers;
	}
	for (size_t i = 0; i < r->n_containers; i++)
		if (endpoint_container_copy(&r->containers[i], &e->containers[i]) < 0)
			ok = false;
	r->tags = kvs_dup(e->tags, e->n_tags, &ok);
	r->n_tags = r->tags ? e->n_tags : 0;
	if (e->n_variants > 0) {
		r->variants = variants_dup(e->variants, e->n_variants);
		if (!r->variants)
			ok = false;
		else
			r->n_variants = e->n_variants;
	}
	if (async_config_copy(&r->async, &e->async) < 0)
		ok = false;
	if (!ok) {
		endpoint_free(r);
		errno = ENOMEM;
		return NULL;
	}
	return r;
}

/* ---- encoding ------------------------------------------------------------- */

static int gen_tags(yajl_gen g, const struct kv *tags, size_t n)
{
	JSON_GEN(json_gen_str(g, "Tags"));
	JSON_GENY(yajl_gen_array_open(g));
	for (size_t i = 0; i < n; i++) {
		JSON_GENY(yajl_gen_map_open(g));
		JSON_GEN(json_gen_kv_str(g, "Key", tags[i].key));
		JSON_GEN(json_gen_kv_str(g, "Value", tags[i].value ? tags[i].value : ""));
		JSON_GENY(yajl_gen_map_close(g));
	}
	JSON_GENY(yajl_gen_array_close(g));
	return 0;
}

static int gen_container(yajl_gen g, const struct container_def *c)
{
	JSON_GENY(yajl_gen_map_open(g));
	JSON_GEN(json_gen_kv_str(g, "ContainerHostname", c->hostname));
	JSON_GEN(json_gen_kv_str(g, "Image", c->image));
	JSON_GEN(json_gen_str(g, "Environment"));
	JSON_GENY(yajl_gen_map_open(g));
	for (size_t i = 0; i < c->n_env; i++)
		JSON_GEN(json_gen_kv_str(g, c->env[i].key, c->env[i].value));
	JSON_GENY(yajl_gen_map_close(g));
	if (c->model_data_url)
		JSON_GEN(json_gen_kv_str(g, "ModelDataUrl", c->model_data_url));
	JSON_GEN(json_gen_kv_str(g, "Mode", c->mode ? c->mode : "SingleModel"));
	if (c->multi_model_config) {
		JSON_GEN(json_gen_str(g, "MultiModelConfig"));
		JSON_GENY(yajl_gen_map_open(g));
		if (c->model_cache_enabled)
			JSON_GEN(json_gen_kv_str(g, "ModelCacheSetting", "Enabled"));
		JSON_GENY(yajl_gen_map_close(g));
	}
	JSON_GENY(yajl_gen_map_close(g));
	return 0;
}

static int gen_model(yajl_gen g, const struct model *m, bool disk)
{
	JSON_GENY(yajl_gen_map_open(g));
	JSON_GEN(json_gen_kv_str(g, "ModelName", m->name));
	JSON_GEN(json_gen_kv_str(g, "ModelArn", m->arn));
	JSON_GEN(json_gen_kv_double(g, "CreationTime", m->creation_time));
	if (m->has_primary && m->n_containers == 1) {
		JSON_GEN(json_gen_str(g, "PrimaryContainer"));
		JSON_GEN(gen_container(g, &m->containers[0]));
	} else {
		JSON_GEN(json_gen_str(g, "Containers"));
		JSON_GENY(yajl_gen_array_open(g));
		for (size_t i = 0; i < m->n_containers; i++)
			JSON_GEN(gen_container(g, &m->containers[i]));
		JSON_GENY(yajl_gen_array_close(g));
	}
	if (m->execution_mode) {
		JSON_GEN(json_gen_str(g, "InferenceExecutionConfig"));
		JSON_GENY(yajl_gen_map_open(g));
		JSON_GEN(json_gen_kv_str(g, "Mode", m->execution_mode));
		JSON_GENY(yajl_gen_map_close(g));
	}
	if (m->execution_role_arn)
		JSON_GEN(json_gen_kv_str(g, "ExecutionRoleArn", m->execution_role_arn));
	JSON_GEN(json_gen_kv_bool(g, "EnableNetworkIsolation", m->enable_network_isolation));
	if (disk) {
		JSON_GEN(gen_tags(g, m->tags, m->n_tags));
		JSON_GEN(json_gen_str(g, "Berth"));
		JSON_GENY(yajl_gen_map_open(g));
		JSON_GEN(json_gen_str(g, "hostname_given"));
		JSON_GENY(yajl_gen_array_open(g));
		for (size_t i = 0; i < m->n_containers; i++)
			JSON_GENY(yajl_gen_bool(g, m->containers[i].hostname_given));
		JSON_GENY(yajl_gen_array_close(g));
		JSON_GENY(yajl_gen_map_close(g));
	}
	JSON_GENY(yajl_gen_map_close(g));
	return 0;
}

static int gen_variants(yajl_gen g, const char *key, const struct variant *v, size_t n)
{
	JSON_GEN(json_gen_str(g, key));
	JSON_GENY(yajl_gen_array_open(g));
	for (size_t i = 0; i < n; i++) {
		JSON_GENY(yajl_gen_map_open(g));
		JSON_GEN(json_gen_kv_str(g, "VariantName", v[i].variant_name));
		JSON_GEN(json_gen_kv_str(g, "ModelName", v[i].model_name));
		JSON_GEN(json_gen_kv_int(g, "InitialInstanceCount", v[i].initial_instance_count));
		JSON_GEN(json_gen_kv_str(g, "InstanceType", v[i].instance_type));
		JSON_GEN(json_gen_kv_double(g, "InitialVariantWeight", v[i].initial_weight));
		if (v[i].model_data_download_timeout_s > 0)
			JSON_GEN(json_gen_kv_int(g, "ModelDataDownloadTimeoutInSeconds", v[i].model_data_download_timeout_s));
		if (v[i].startup_health_check_timeout_s > 0)
			JSON_GEN(json_gen_kv_int(g, "ContainerStartupHealthCheckTimeoutInSeconds",
					    v[i].startup_health_check_timeout_s));
		if (v[i].routing_least_outstanding) {
			JSON_GEN(json_gen_str(g, "RoutingConfig"));
			JSON_GENY(yajl_gen_map_open(g));
			JSON_GEN(json_gen_kv_str(g, "RoutingStrategy", "LEAST_OUTSTANDING_REQUESTS"));
			JSON_GENY(yajl_gen_map_close(g));
		}
		if (v[i].mode) /* only an endpoint's own copy (under "Berth") has one */
			JSON_GEN(json_gen_kv_str(g, "Mode", v[i].mode));
		JSON_GENY(yajl_gen_map_close(g));
	}
	JSON_GENY(yajl_gen_array_close(g));
	return 0;
}

static int gen_endpoint_config(yajl_gen g, const struct endpoint_config *c, bool disk)
{
	JSON_GENY(yajl_gen_map_open(g));
	JSON_GEN(json_gen_kv_str(g, "EndpointConfigName", c->name));
	JSON_GEN(json_gen_kv_str(g, "EndpointConfigArn", c->arn));
	JSON_GEN(gen_variants(g, "ProductionVariants", c->variants, c->n_variants));
	JSON_GEN(json_gen_kv_double(g, "CreationTime", c->creation_time));
	JSON_GEN(async_config_gen(g, &c->async));
	if (disk)
		JSON_GEN(gen_tags(g, c->tags, c->n_tags));
	JSON_GENY(yajl_gen_map_close(g));
	return 0;
}

static int gen_endpoint(yajl_gen g, const struct endpoint *e)
{
	JSON_GENY(yajl_gen_map_open(g));
	JSON_GEN(json_gen_kv_str(g, "EndpointName", e->name));
	JSON_GEN(json_gen_kv_str(g, "EndpointArn", e->arn));
	JSON_GEN(json_gen_kv_str(g, "EndpointConfigName", e->config_name));
	JSON_GEN(json_gen_kv_str(g, "EndpointStatus", e->status));
	if (e->failure_reason)
		JSON_GEN(json_gen_kv_str(g, "FailureReason", e->failure_reason));
	JSON_GEN(json_gen_kv_double(g, "CreationTime", e->creation_time));
	JSON_GEN(json_gen_kv_double(g, "LastModifiedTime", e->last_modified_time));
	JSON_GEN(gen_tags(g, e->tags, e->n_tags));
	JSON_GEN(json_gen_str(g, "Berth"));
	JSON_GENY(yajl_gen_map_open(g));
	if (e->legacy_mode)
		JSON_GEN(json_gen_kv_str(g, "mode", e->legacy_mode));
	if (e->variant_name)
		JSON_GEN(json_gen_kv_str(g, "variant_name", e->variant_name));
	JSON_GEN(json_gen_str(g, "containers"));
	JSON_GENY(yajl_gen_array_open(g));
	for (size_t i = 0; i < e->n_containers; i++) {
		const struct endpoint_container *c = &e->containers[i];
		JSON_GENY(yajl_gen_map_open(g));
		JSON_GEN(json_gen_kv_str(g, "id", c->id));
		JSON_GEN(json_gen_kv_str(g, "hostname", c->hostname));
		if (c->socket)
			JSON_GEN(json_gen_kv_str(g, "socket", c->socket));
		if (c->log)
			JSON_GEN(json_gen_kv_str(g, "log", c->log));
		if (c->variant)
			JSON_GEN(json_gen_kv_str(g, "variant", c->variant));
		JSON_GEN(json_gen_kv_int(g, "instance", c->instance));
		JSON_GEN(json_gen_kv_int(g, "restarts", c->restarts));
		if (c->down)
			JSON_GEN(json_gen_kv_bool(g, "down", true));
		if (c->pending)
			JSON_GEN(json_gen_kv_bool(g, "pending", true));
		if (c->retiring)
			JSON_GEN(json_gen_kv_bool(g, "retiring", true));
		if (c->uid_base > 0)
			JSON_GEN(json_gen_kv_int(g, "uid_base", c->uid_base));
		if (c->startup_timeout_ms > 0)
			JSON_GEN(json_gen_kv_int(g, "startup_timeout_ms", c->startup_timeout_ms));
		if (c->download_timeout_ms > 0)
			JSON_GEN(json_gen_kv_int(g, "download_timeout_ms", c->download_timeout_ms));
		if (c->n_devices > 0) { /* (devices) */
			JSON_GEN(json_gen_str(g, "devices"));
			JSON_GENY(yajl_gen_array_open(g));
			for (size_t j = 0; j < c->n_devices; j++)
				JSON_GEN(json_gen_str(g, c->devices[j]));
			JSON_GENY(yajl_gen_array_close(g));
		}
		JSON_GENY(yajl_gen_map_close(g));
	}
	JSON_GENY(yajl_gen_array_close(g));
	JSON_GEN(gen_variants(g, "production_variants", e->variants, e->n_variants));
	if (e->pending_config_name)
		JSON_GEN(json_gen_kv_str(g, "pending_config_name", e->pending_config_name));
	JSON_GEN(async_config_gen(g, &e->async));
	JSON_GENY(yajl_gen_map_close(g));
	JSON_GENY(yajl_gen_map_close(g));
	return 0;
}

/* Runs one generator into out; out is left unchanged on failure. */
#define ENCODE(out, call)                                        \
	do {                                                     \
		yajl_gen g_ = json_gen_new();                    \
		if (!g_) {                                       \
			errno = ENOMEM;                          \
			return -1;                               \
		}                                                \
		if ((call) < 0) {                                \
			yajl_gen_free(g_);                       \
			errno = EINVAL;                          \
			return -1;                               \
		}                                                \
		return json_gen_finish(g_, out);                 \
	} while (0)

int model_to_json(const struct model *m, struct berth_buf *out)
{
	ENCODE(out, gen_model(g_, m, true));
}

int model_describe_to_json(const struct model *m, struct berth_buf *out)
{
	ENCODE(out, gen_model(g_, m, false));
}

int endpoint_config_to_json(const struct endpoint_config *c, struct berth_buf *out)
{
	ENCODE(out, gen_endpoint_config(g_, c, true));
}

int endpoint_config_describe_to_json(const struct endpoint_config *c, struct berth_buf *out)
{
	ENCODE(out, gen_endpoint_config(g_, c, false));
}

int endpoint_to_json(const struct endpoint *e, struct berth_buf *out)
{
	ENCODE(out, gen_endpoint(g_, e));
}

/* ---- decoding ------------------------------------------------------------- */

/* The first problem found wins; later calls are no-ops once failed. */
struct dec {
	struct berth_err *err;
	bool failed;
};

__attribute__((format(printf, 2, 3))) static void dec_fail(struct dec *d, const char *fmt, ...)
{
	if (d->failed)
		return;
	d->failed = true;
	va_list ap;
	va_start(ap, fmt);
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	berth_err_set(d->err, 0, "%s", msg);
}

/* A member that is absent or JSON null counts as absent. */
static yajl_val member(yajl_val obj, const char *key)
{
	yajl_val v = json_get(obj, key);
	return v && YAJL_IS_NULL(v) ? NULL : v;
}

static char *dec_str(struct dec *d, yajl_val obj, const char *key, bool required)
{
	yajl_val v = member(obj, key);
	if (!v) {
		if (required)
			dec_fail(d, "member %s is missing", key);
		return NULL;
	}
	if (!YAJL_IS_STRING(v)) {
		dec_fail(d, "member %s is not a string", key);
		return NULL;
	}
	char *s = strdup(v->u.string);
	if (!s)
		dec_fail(d, "out of memory");
	return s;
}

static double dec_double(struct dec *d, yajl_val obj, const char *key, bool required, double fallback)
{
	yajl_val v = member(obj, key);
	if (!v) {
		if (required)
			dec_fail(d, "member %s is missing", key);
		return fallback;
	}
	if (!YAJL_IS_NUMBER(v)) {
		dec_fail(d, "member %s is not a number", key);
		return fallback;
	}
	return YAJL_IS_DOUBLE(v) ? YAJL_GET_DOUBLE(v) : (double)YAJL_GET_INTEGER(v);
}

static long long dec_int(struct dec *d, yajl_val obj, const char *key)
{
	yajl_val v = member(obj, key);
	if (!v || !YAJL_IS_INTEGER(v)) {
		dec_fail(d, "member %s is missing or not an integer", key);
		return 0;
	}
	return YAJL_GET_INTEGER(v);
}

/* An optional integer within [min, max]; fallback when absent. */
static long long dec_int_in(struct dec *d, yajl_val obj, const char *key, long long min, long long max,
			    long long fallback)
{
	yajl_val v = member(obj, key);
	if (!v)
		return fallback;
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < min || YAJL_GET_INTEGER(v) > max) {
		dec_fail(d, "member %s is not an integer from %lld to %lld", key, min, max);
		return fallback;
	}
	return YAJL_GET_INTEGER(v);
}

/* Optional array: NULL when absent; fails on another type. */
static yajl_val dec_array(struct dec *d, yajl_val obj, const char *key, bool required)
{
	yajl_val v = member(obj, key);
	if (!v) {
		if (required)
			dec_fail(d, "member %s is missing", key);
		return NULL;
	}
	if (!YAJL_IS_ARRAY(v)) {
		dec_fail(d, "member %s is not a list", key);
		return NULL;
	}
	return v;
}

static yajl_val dec_object(struct dec *d, yajl_val obj, const char *key)
{
	yajl_val v = member(obj, key);
	if (v && !YAJL_IS_OBJECT(v)) {
		dec_fail(d, "member %s is not an object", key);
		return NULL;
	}
	return v;
}

static void dec_tags(struct dec *d, yajl_val obj, struct kv **out, size_t *n_out)
{
	yajl_val a = dec_array(d, obj, "Tags", false);
	if (!a || a->u.array.len == 0)
		return;
	struct kv *kv = calloc(a->u.array.len, sizeof(*kv));
	if (!kv) {
		dec_fail(d, "out of memory");
		return;
	}
	*out = kv;
	*n_out = a->u.array.len;
	for (size_t i = 0; i < a->u.array.len; i++) {
		yajl_val t = a->u.array.values[i];
		if (!YAJL_IS_OBJECT(t)) {
			dec_fail(d, "Tags[%zu] is not an object", i);
			return;
		}
		kv[i].key = dec_str(d, t, "Key", true);
		kv[i].value = dec_str(d, t, "Value", false);
	}
}

static void dec_container(struct dec *d, yajl_val c, struct container_def *out)
{
	if (!YAJL_IS_OBJECT(c)) {
		dec_fail(d, "a container is not an object");
		return;
	}
	out->hostname = dec_str(d, c, "ContainerHostname", true);
	out->image = dec_str(d, c, "Image", true);
	out->model_data_url = dec_str(d, c, "ModelDataUrl", false);
	out->mode = dec_str(d, c, "Mode", false);
	yajl_val mmc = dec_object(d, c, "MultiModelConfig");
	if (mmc) {
		const char *cache = json_get_string(mmc, "ModelCacheSetting");
		out->multi_model_config = true;
		out->model_cache_enabled = cache != NULL;
		if (cache && strcmp(cache, "Enabled") != 0)
			dec_fail(d, "MultiModelConfig.ModelCacheSetting '%s' is not Enabled", cache);
	}
	if (out->hostname && !hostname_is_valid(out->hostname))
		dec_fail(d, "ContainerHostname '%s' is not valid", out->hostname);
	if (out->mode && strcmp(out->mode, "SingleModel") != 0 && strcmp(out->mode, "MultiModel") != 0)
		dec_fail(d, "container Mode '%s' is not valid", out->mode);
	yajl_val env = dec_object(d, c, "Environment");
	if (!env || env->u.object.len == 0)
		return;
	out->env = calloc(env->u.object.len, sizeof(*out->env));
	if (!out->env) {
		dec_fail(d, "out of memory");
		return;
	}
	out->n_env = env->u.object.len;
	for (size_t i = 0; i < env->u.object.len; i++) {
		yajl_val v = env->u.object.values[i];
		if (!YAJL_IS_STRING(v)) {
			dec_fail(d, "Environment value of %s is not a string", env->u.object.keys[i]);
			return;
		}
		out->env[i].key = strdup(env->u.object.keys[i]);
		out->env[i].value = strdup(v->u.string);
		if (!out->env[i].key || !out->env[i].value)
			dec_fail(d, "out of memory");
	}
}

static void dec_name(struct dec *d, yajl_val root, const char *key, char **out)
{
	*out = dec_str(d, root, key, true);
	if (*out && !name_is_valid(*out))
		dec_fail(d, "%s '%s' is not a valid name", key, *out);
}

static yajl_val dec_root(const char *text, size_t len, struct dec *d)
{
	yajl_val root = json_parse(text, len, d->err);
	if (!root) {
		d->failed = true;
		return NULL;
	}
	if (!YAJL_IS_OBJECT(root)) {
		dec_fail(d, "the document is not a JSON object");
		yajl_tree_free(root);
		return NULL;
	}
	return root;
}

struct model *model_from_json(const char *text, size_t len, struct berth_err *err)
{
	struct dec d = { err, false };
	yajl_val root = dec_root(text, len, &d);
	if (!root)
		return NULL;
	struct model *m = calloc(1, sizeof(*m));
	if (!m) {
		yajl_tree_free(root);
		berth_err_set(err, ENOMEM, "decoding a model");
		return NULL;
	}
	dec_name(&d, root, "ModelName", &m->name);
	m->arn = dec_str(&d, root, "ModelArn", true);
	m->creation_time = dec_double(&d, root, "CreationTime", true, 0);
	m->execution_role_arn = dec_str(&d, root, "ExecutionRoleArn", false);
	yajl_val isolation = json_get(root, "EnableNetworkIsolation"); /* absent in older records */
	m->enable_network_isolation = isolation != NULL && YAJL_IS_TRUE(isolation);
	yajl_val iec = dec_object(&d, root, "InferenceExecutionConfig");
	if (iec) {
		m->execution_mode = dec_str(&d, iec, "Mode", true);
		if (m->execution_mode && strcmp(m->execution_mode, "Serial") != 0 &&
		    strcmp(m->execution_mode, "Direct") != 0)
			dec_fail(&d, "InferenceExecutionConfig.Mode '%s' is not valid", m->execution_mode);
	}
	yajl_val primary = dec_object(&d, root, "PrimaryContainer");
	yajl_val list = dec_array(&d, root, "Containers", false);
	if (!d.failed && (!primary) == (!list))
		dec_fail(&d, "exactly one of PrimaryContainer and Containers must be present");
	if (!d.failed && list && (list->u.array.len < 1 || list->u.array.len > CONTAINERS_MAX))
		dec_fail(&d, "Containers has %zu entries", list->u.array.len);
	if (!d.failed) {
		size_t n = primary ? 1 : list->u.array.len;
		m->containers = calloc(n, sizeof(*m->containers));
		if (!m->containers)
			dec_fail(&d, "out of memory");
		else
			m->n_containers = n;
		m->has_primary = primary != NULL;
		for (size_t i = 0; i < m->n_containers; i++)
			dec_container(&d, primary ? primary : list->u.array.values[i], &m->containers[i]);
	}
	dec_tags(&d, root, &m->tags, &m->n_tags);
	yajl_val berth = dec_object(&d, root, "Berth");
	yajl_val given = berth ? dec_array(&d, berth, "hostname_given", false) : NULL;
	for (size_t i = 0; given && i < given->u.array.len && i < m->n_containers; i++)
		m->containers[i].hostname_given = YAJL_IS_TRUE(given->u.array.values[i]);
	yajl_tree_free(root);
	if (d.failed) {
		model_free(m);
		return NULL;
	}
	return m;
}

static void dec_variants(struct dec *d, yajl_val a, struct variant **out, size_t *n_out)
{
	if (!a || a->u.array.len == 0)
		return;
	struct variant *v = calloc(a->u.array.len, sizeof(*v));
	if (!v) {
		dec_fail(d, "out of memory");
		return;
	}
	*out = v;
	*n_out = a->u.array.len;
	for (size_t i = 0; i < a->u.array.len; i++) {
		yajl_val o = a->u.array.values[i];
		if (!YAJL_IS_OBJECT(o)) {
			dec_fail(d, "ProductionVariants[%zu] is not an object", i);
			return;
		}
		dec_name(d, o, "VariantName", &v[i].variant_name);
		dec_name(d, o, "ModelName", &v[i].model_name);
		v[i].initial_instance_count = dec_int(d, o, "InitialInstanceCount");
		v[i].instance_type = dec_str(d, o, "InstanceType", true);
		v[i].initial_weight = dec_double(d, o, "InitialVariantWeight", false, 1.0);
		if (v[i].initial_instance_count < 1)
			dec_fail(d, "InitialInstanceCount %lld is not valid", v[i].initial_instance_count);
		if (v[i].initial_weight < 0)
			dec_fail(d, "InitialVariantWeight is negative");
		v[i].model_data_download_timeout_s =
			dec_int_in(d, o, "ModelDataDownloadTimeoutInSeconds", VARIANT_TIMEOUT_MIN_S, VARIANT_TIMEOUT_MAX_S, 0);
		v[i].startup_health_check_timeout_s = dec_int_in(d, o, "ContainerStartupHealthCheckTimeoutInSeconds",
								 VARIANT_TIMEOUT_MIN_S, VARIANT_TIMEOUT_MAX_S, 0);
		yajl_val routing = dec_object(d, o, "RoutingConfig");
		if (routing) {
			const char *strategy = json_get_string(routing, "RoutingStrategy");
			if (strategy == NULL || strcmp(strategy, "LEAST_OUTSTANDING_REQUESTS") != 0)
				dec_fail(d, "ProductionVariants[%zu].RoutingConfig.RoutingStrategy is not LEAST_OUTSTANDING_REQUESTS", i);
			v[i].routing_least_outstanding = true;
		}
		v[i].mode = dec_str(d, o, "Mode", false);
		if (v[i].mode && !invocation_mode_valid(v[i].mode))
			dec_fail(d, "ProductionVariants[%zu].Mode '%s' is not valid", i, v[i].mode);
	}
}

/* (async) "AsyncInferenceConfig" of obj, when there */
static void dec_async(struct dec *d, yajl_val obj, struct async_config *out)
{
	char why[256];
	if (!d->failed && async_config_decode(member(obj, "AsyncInferenceConfig"), out, why, sizeof(why)) < 0)
		dec_fail(d, "%s", why);
}

struct endpoint_config *endpoint_config_from_json(const char *text, size_t len, struct berth_err *err)
{
	struct dec d = { err, false };
	yajl_val root = dec_root(text, len, &d);
	if (!root)
		return NULL;
	struct endpoint_config *c = calloc(1, sizeof(*c));
	if (!c) {
		yajl_tree_free(root);
		berth_err_set(err, ENOMEM, "decoding an endpoint config");
		return NULL;
	}
	dec_name(&d, root, "EndpointConfigName", &c->name);
	c->arn = dec_str(&d, root, "EndpointConfigArn", true);
	c->creation_time = dec_double(&d, root, "CreationTime", true, 0);
	yajl_val pv = dec_array(&d, root, "ProductionVariants", true);
	if (pv && pv->u.array.len == 0)
		dec_fail(&d, "ProductionVariants is empty");
	dec_variants(&d, pv, &c->variants, &c->n_variants);
	dec_tags(&d, root, &c->tags, &c->n_tags);
	dec_async(&d, root, &c->async);
	yajl_tree_free(root);
	if (d.failed) {
		endpoint_config_free(c);
		return NULL;
	}
	return c;
}

/* (devices) Berth.containers[i].devices: the CDI names the instance holds */
static void dec_devices(struct dec *d, yajl_val o, size_t i, struct endpoint_container *c)
{
	yajl_val ds = member(o, "devices");
	if (ds == NULL)
		return;
	if (!YAJL_IS_ARRAY(ds) || ds->u.array.len > RESOURCES_MAX_DEVICES) {
		dec_fail(d, "Berth.containers[%zu].devices is not an array of at most %d names", i, RESOURCES_MAX_DEVICES);
		return;
	}
	if (ds->u.array.len == 0 || (c->devices = calloc(ds->u.array.len, sizeof(char *))) == NULL)
		return;
	for (size_t j = 0; j < ds->u.array.len; j++) {
		const char *name = YAJL_IS_STRING(ds->u.array.values[j]) ? YAJL_GET_STRING(ds->u.array.values[j]) : NULL;
		if (name == NULL || strlen(name) >= 256 || strchr(name, '=') == NULL || strchr(name, '/') == NULL) {
			dec_fail(d, "Berth.containers[%zu].devices[%zu] is not a CDI device name", i, j);
			return;
		}
		if ((c->devices[c->n_devices] = strdup(name)) == NULL) {
			dec_fail(d, "out of memory");
			return;
		}
		c->n_devices++;
	}
}

struct endpoint *endpoint_from_json(const char *text, size_t len, struct berth_err *err)
{
	struct dec d = { err, false };
	yajl_val root = dec_root(text, len, &d);
	if (!root)
		return NULL;
	struct endpoint *e = calloc(1, sizeof(*e));
	if (!e) {
		yajl_tree_free(root);
		berth_err_set(err, ENOMEM, "decoding an endpoint");
		return NULL;
	}
	dec_name(&d, root, "EndpointName", &e->name);
	e->arn = dec_str(&d, root, "EndpointArn", true);
	dec_name(&d, root, "EndpointConfigName", &e->config_name);
	e->status = dec_str(&d, root, "EndpointStatus", true);
	e->failure_reason = dec_str(&d, root, "FailureReason", false);
	e->creation_time = dec_double(&d, root, "CreationTime", true, 0);
	e->last_modified_time = dec_double(&d, root, "LastModifiedTime", false, e->creation_time);
	dec_tags(&d, root, &e->tags, &e->n_tags);
	yajl_val berth = dec_object(&d, root, "Berth");
	if (berth) {
		e->legacy_mode = dec_str(&d, berth, "mode", false);
		if (e->legacy_mode && !invocation_mode_valid(e->legacy_mode))
			dec_fail(&d, "Berth.mode '%s' is not valid", e->legacy_mode);
		e->variant_name = dec_str(&d, berth, "variant_name", false);
		yajl_val cs = dec_array(&d, berth, "containers", false);
		if (cs && cs->u.array.len > 0) {
			e->containers = calloc(cs->u.array.len, sizeof(*e->containers));
			if (!e->containers)
				dec_fail(&d, "out of memory");
			else
				e->n_containers = cs->u.array.len;
		}
		for (size_t i = 0; i < e->n_containers; i++) {
			yajl_val o = cs->u.array.values[i];
			if (!YAJL_IS_OBJECT(o)) {
				dec_fail(&d, "Berth.containers[%zu] is not an object", i);
				break;
			}
			e->containers[i].id = dec_str(&d, o, "id", true);
			e->containers[i].hostname = dec_str(&d, o, "hostname", true);
			e->containers[i].socket = dec_str(&d, o, "socket", false);
			e->containers[i].log = dec_str(&d, o, "log", false);
			e->containers[i].variant = dec_str(&d, o, "variant", false);
			yajl_val inst = member(o, "instance");
			if (inst && YAJL_IS_INTEGER(inst) && YAJL_GET_INTEGER(inst) >= 0)
				e->containers[i].instance = YAJL_GET_INTEGER(inst);
			yajl_val rs = member(o, "restarts");
			if (rs && YAJL_IS_INTEGER(rs) && YAJL_GET_INTEGER(rs) >= 0)
				e->containers[i].restarts = YAJL_GET_INTEGER(rs);
			e->containers[i].down = YAJL_IS_TRUE(member(o, "down"));
			e->containers[i].pending = YAJL_IS_TRUE(member(o, "pending"));
			e->containers[i].retiring = YAJL_IS_TRUE(member(o, "retiring"));
			yajl_val ub = member(o, "uid_base");
			if (ub && (!YAJL_IS_INTEGER(ub) || YAJL_GET_INTEGER(ub) < 1 ||
				   YAJL_GET_INTEGER(ub) > 4294967295LL - 65536))
				dec_fail(&d, "Berth.containers[%zu].uid_base is not a uid range start", i);
			else if (ub)
				e->containers[i].uid_base = YAJL_GET_INTEGER(ub);
			e->containers[i].startup_timeout_ms =
				dec_int_in(&d, o, "startup_timeout_ms", 1, VARIANT_TIMEOUT_MAX_S * 1000, 0);
			e->containers[i].download_timeout_ms =
				dec_int_in(&d, o, "download_timeout_ms", 1, VARIANT_TIMEOUT_MAX_S * 1000, 0);
			dec_devices(&d, o, i, &e->containers[i]);
		}
		dec_variants(&d, dec_array(&d, berth, "production_variants", false), &e->variants,
			     &e->n_variants);
		e->pending_config_name = dec_str(&d, berth, "pending_config_name", false);
		dec_async(&d, berth, &e->async);
	}
	yajl_tree_free(root);
	if (d.failed) {
		endpoint_free(e);
		return NULL;
	}
	return e;
}

/* ---- instances ------------------------------------------------------------ */

const char *endpoint_container_variant(const struct endpoint *e, const struct endpoint_container *c)
{
	if (c->variant)
		return c->variant;
	if (e->variant_name)
		return e->variant_name;
	return e->n_variants > 0 ? e->variants[0].variant_name : "AllTraffic";
}

bool endpoint_instance_serving(const struct endpoint *e, const char *variant, long long k)
{
	/* pending (an update's new) and retiring (old) containers may share
	 * (variant, k) with live ones: they are not part of the live instance */
	size_t n = 0;
	for (size_t i = 0; i < e->n_containers; i++) {
		const struct endpoint_container *c = &e->containers[i];
		if (c->instance != k || c->pending || c->retiring ||
		    strcmp(endpoint_container_variant(e, c), variant) != 0)
			continue;
		if (c->down)
			return false;
		n++;
	}
	return n > 0;
}

long long endpoint_variant_serving_instances(const struct endpoint *e, const char *variant)
{
	long long n = 0, max = -1;
	for (size_t i = 0; i < e->n_containers; i++)
		if (strcmp(endpoint_container_variant(e, &e->containers[i]), variant) == 0 &&
		    e->containers[i].instance > max)
			max = e->containers[i].instance;
	for (long long k = 0; k <= max; k++)
		if (endpoint_instance_serving(e, variant, k))
			n++;
	return n;
}
