/* api_endpoint_config.c — CreateEndpointConfig, DescribeEndpointConfig,
 * and the api_kind entry for ListEndpointConfigs and DeleteEndpointConfig
 * (api_kind.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "api_internal.h"
#include "json.h"
#include "log.h"
#include "names.h"

#define VARIANTS_MAX 10
#define INSTANCE_TYPE_PATTERN "ml\\.[a-z0-9]+\\.[a-z0-9]+"

/* ml.FAMILY.SIZE, lower-case letters and digits; the instance type table
 * (configs/) decides later which ones this host offers. */
static bool instance_type_ok(const char *s)
{
	if (strncmp(s, "ml.", 3) != 0)
		return false;
	s += 3;
	int parts = 0;
	for (;;) {
		size_t n = 0;
		while ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9'))
			n++;
		if (n == 0)
			return false;
		parts++;
		s += n;
		if (*s == '\0')
			return parts == 2;
		if (*s != '.' || parts == 2)
			return false;
		s++;
	}
}

/* A per-variant timeout in seconds, SageMaker's 60..3600; 0 when absent. */
static long long req_variant_timeout(struct api_request *r, yajl_val o, const char *key, const char *member,
				     size_t index)
{
	char path[128];
	snprintf(path, sizeof(path), "productionVariants.%zu.%s", index, member);
	long long s = 0;
	if (!req_int(r, o, key, path, false, &s))
		return 0;
	if (s < VARIANT_TIMEOUT_MIN_S)
		req_invalid(r, json_get(o, key), path, "Member must have value greater than or equal to %d",
			    VARIANT_TIMEOUT_MIN_S);
	else if (s > VARIANT_TIMEOUT_MAX_S)
		req_invalid(r, json_get(o, key), path, "Member must have value less than or equal to %d",
			    VARIANT_TIMEOUT_MAX_S);
	return s;
}

static void decode_variant(struct api_request *r, yajl_val o, size_t index, struct variant *v, bool *nomem)
{
	char p_name[64], p_model[64], p_count[64], p_type[64], p_weight[64];
	snprintf(p_name, sizeof(p_name), "productionVariants.%zu.variantName", index);
	snprintf(p_model, sizeof(p_model), "productionVariants.%zu.modelName", index);
	snprintf(p_count, sizeof(p_count), "productionVariants.%zu.initialInstanceCount", index);
	snprintf(p_type, sizeof(p_type), "productionVariants.%zu.instanceType", index);
	snprintf(p_weight, sizeof(p_weight), "productionVariants.%zu.initialVariantWeight", index);

	const char *name = req_name(r, o, "VariantName", p_name);
	const char *model = req_name(r, o, "ModelName", p_model);
	long long count = 0;
	if (req_int(r, o, "InitialInstanceCount", p_count, true, &count)) {
		if (count < 1)
			req_invalid(r, json_get(o, "InitialInstanceCount"), p_count,
				    "Member must have value greater than or equal to 1");
		else if (count > API_MAX_INSTANCE_COUNT)
			req_invalid(r, json_get(o, "InitialInstanceCount"), p_count,
				    "Member must have value less than or equal to %d", API_MAX_INSTANCE_COUNT);
	}
	const char *type = req_string(r, o, "InstanceType", p_type, true);
	if (type && !instance_type_ok(type))
		req_invalid(r, json_get(o, "InstanceType"), p_type,
			    "Member must satisfy regular expression pattern: %s", INSTANCE_TYPE_PATTERN);
	struct berth_err type_err;
	if (type && instance_type_ok(type) && r->ctx->runtime.instance_type_check &&
	    r->ctx->runtime.instance_type_check(r->ctx->runtime.limits, type, &type_err) < 0)
		req_invalid(r, json_get(o, "InstanceType"), p_type, "%s", type_err.msg);
	double weight = 1.0;
	if (req_number(r, o, "InitialVariantWeight", p_weight, false, &weight) && weight < 0)
		req_invalid(r, json_get(o, "InitialVariantWeight"), p_weight,
			    "Member must have value greater than or equal to 0");
	v->startup_health_check_timeout_s =
		req_variant_timeout(r, o, "ContainerStartupHealthCheckTimeoutInSeconds",
				    "containerStartupHealthCheckTimeoutInSeconds", index);
	v->model_data_download_timeout_s = req_variant_timeout(r, o, "ModelDataDownloadTimeoutInSeconds",
							       "modelDataDownloadTimeoutInSeconds", index);
	char p_routing[96], p_strategy[128];
	snprintf(p_routing, sizeof(p_routing), "productionVariants.%zu.routingConfig", index);
	snprintf(p_strategy, sizeof(p_strategy), "%s.routingStrategy", p_routing);
	yajl_val routing = req_object(r, o, "RoutingConfig", p_routing, false);
	const char *strategy = routing ? req_string(r, routing, "RoutingStrategy", p_strategy, true) : NULL;
	static const char *const strategies[] = { "LEAST_OUTSTANDING_REQUESTS", "RANDOM", NULL };
	/* RANDOM never gets here: api_unsupported.c refuses it */
	if (strategy && check_enum(r, json_get(routing, "RoutingStrategy"), strategy, p_strategy, strategies))
		v->routing_least_outstanding = strcmp(strategy, "LEAST_OUTSTANDING_REQUESTS") == 0;
	v->variant_name = name ? strdup(name) : NULL;
	v->model_name = model ? strdup(model) : NULL;
	v->instance_type = type ? strdup(type) : NULL;
	v->initial_instance_count = count;
	v->initial_weight = weight;
	if ((name && !v->variant_name) || (model && !v->model_name) || (type && !v->instance_type))
		*nomem = true;
}

void api_create_endpoint_config(struct api_request *r)
{
	yajl_val root = r->root;
	if (api_refuse_unsupported(r, "CreateEndpointConfig"))
		return;
	struct endpoint_config *c = calloc(1, sizeof(*c));
	char *arn = NULL;
	if (!c) {
		api_reply_nomem(r->reply);
		return;
	}
	bool nomem = false;
	const char *name = req_name(r, root, "EndpointConfigName", "endpointConfigName");
	yajl_val list = req_array(r, root, "ProductionVariants", "productionVariants", true);
	if (list && list->u.array.len < 1)
		req_invalid(r, list, "productionVariants", "Member must have length greater than or equal to 1");
	if (list && list->u.array.len > VARIANTS_MAX)
		req_invalid(r, list, "productionVariants", "Member must have length less than or equal to %d",
			    VARIANTS_MAX);
	if (list && list->u.array.len > 0) {
		c->variants = calloc(list->u.array.len, sizeof(*c->variants));
		if (!c->variants)
			nomem = true;
		else
			c->n_variants = list->u.array.len;
	}
	for (size_t i = 0; i < c->n_variants; i++) {
		yajl_val o = list->u.array.values[i];
		if (!YAJL_IS_OBJECT(o)) {
			req_serialization(r, "'productionVariants.%zu' must be an object.", i + 1);
			continue;
		}
		decode_variant(r, o, i + 1, &c->variants[i], &nomem);
	}
	req_tags(r, root, &c->tags, &c->n_tags);
	if (api_async_config_decode(r, root, &c->async) < 0)
		nomem = true;
	if (nomem) {
		api_reply_nomem(r->reply);
		goto out;
	}
	if (req_failed(r) || api_tags_reserved(r, c->tags, c->n_tags))
		goto out;
	for (size_t i = 0; i < c->n_variants; i++)
		for (size_t j = i + 1; j < c->n_variants; j++)
			if (strcmp(c->variants[i].variant_name, c->variants[j].variant_name) == 0) {
				api_reply_error(r->reply, BERTH_ERR_VALIDATION,
						"Duplicate VariantName '%s' in ProductionVariants: every variant of an "
						"endpoint configuration needs a unique name.",
						c->variants[j].variant_name);
				goto out;
			}
	double total_weight = 0; /* (added) as UpdateEndpointWeightsAndCapacities */
	for (size_t i = 0; i < c->n_variants; i++)
		total_weight += c->variants[i].initial_weight;
	if (c->n_variants > 0 && !(total_weight > 0)) {
		api_reply_error(r->reply, BERTH_ERR_VALIDATION,
				"At least one production variant must have an InitialVariantWeight greater than 0.");
		goto out;
	}
	if (api_endpoint_config_name_taken(r->ctx->store, name)) {
		api_reply_exists(r, "endpoint configuration", "endpoint-config", name);
		goto out;
	}
	for (size_t i = 0; i < c->n_variants; i++)
		if (!store_get_model(r->ctx->store, c->variants[i].model_name)) {
			api_reply_not_found(r, "model", "model", c->variants[i].model_name);
			goto out;
		}
	if (api_async_check_modes(r, name, &c->async, c->variants, c->n_variants) < 0)
		goto out;
	c->name = strdup(name);
	c->arn = api_arn(r->ctx, "endpoint-config", name);
	c->creation_time = clock_epoch_seconds_ms();
	arn = c->arn ? strdup(c->arn) : NULL;
	if (!c->name || !arn) {
		api_reply_nomem(r->reply);
		goto out;
	}
	struct berth_err err = { 0 };
	bool c_async = c->async.present;
	int rc = store_put_endpoint_config(r->ctx->store, c, &err);
	c = NULL;
	if (rc < 0) {
		api_reply_not_saved(r->reply, &err);
		goto out;
	}
	log_info("created endpoint configuration %s%s", name, c_async ? " (asynchronous inference)" : "");
	api_reply_arn(r->reply, "EndpointConfigArn", arn);
out:
	free(arn);
	endpoint_config_free(c);
}

void api_describe_endpoint_config(struct api_request *r)
{
	const char *name = req_name(r, r->root, "EndpointConfigName", "endpointConfigName");
	if (req_failed(r))
		return;
	const struct endpoint_config *c = store_get_endpoint_config(r->ctx->store, name);
	if (!c) {
		api_reply_not_found(r, "endpoint configuration", "endpoint-config", name);
		return;
	}
	struct berth_buf doc = BERTH_BUF_INIT;
	if (endpoint_config_describe_to_json(c, &doc) < 0)
		api_reply_nomem(r->reply);
	else
		api_reply_text(r->reply, &doc);
	buf_free(&doc);
}

static int gen_config_summary(yajl_gen g, const void *resource)
{
	const struct endpoint_config *c = resource;
	return json_gen_kv_str(g, "EndpointConfigName", c->name) == 0 &&
			       json_gen_kv_str(g, "EndpointConfigArn", c->arn) == 0 &&
			       json_gen_kv_double(g, "CreationTime", c->creation_time) == 0
		       ? 0
		       : -1;
}

static void config_item_at(const struct store *s, size_t i, struct list_item *out)
{
	const struct endpoint_config *c = store_endpoint_config_at(s, i);
	*out = (struct list_item){ .name = c->name, .creation_time = c->creation_time,
				   .last_modified_time = c->creation_time, .resource = c };
}

static bool config_exists(const struct store *s, const char *name)
{
	return store_get_endpoint_config(s, name) != NULL;
}

/* As on SageMaker, deleting a configuration leaves the endpoints created
 * from it running (each keeps its own copy of the variants). */
const struct api_kind api_kind_endpoint_config = {
	.what = "endpoint configuration",
	.arn_kind = "endpoint-config",
	.name_member = "EndpointConfigName",
	.name_path = "endpointConfigName",
	.list_member = "EndpointConfigs",
	.count = store_count_endpoint_configs,
	.item_at = config_item_at,
	.gen_summary = gen_config_summary,
	.exists = config_exists,
	.store_delete = store_delete_endpoint_config,
};
