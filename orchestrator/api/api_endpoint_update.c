/* api_endpoint_update.c — UpdateEndpoint and
 * UpdateEndpointWeightsAndCapacities.
 *
 * Both validate, persist the endpoint with status Updating (UpdateEndpoint
 * also records the config being rolled out as pending_config_name; the
 * weights call changes the endpoint's own copy of its variants: weight and
 * desired instance count), hand the roll-out to the runtime through the
 * endpoint_start hook (the runtime sees status Updating, runtime_update.c)
 * and answer once the endpoint is stable again or after ctx->grace_ms,
 * like CreateEndpoint. Every update is blue/green, all at once, with
 * automatic roll-back: DeploymentConfig, ExcludeRetainedVariantProperties
 * and RetainAllVariantProperties true are refused (api_unsupported.c);
 * RetainDeploymentConfig is accepted either way, as there is never a
 * DeploymentConfig to retain. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "api_internal.h"
#include "json.h"
#include "log.h"

/* The endpoint, when it exists and can be updated; otherwise replies. */
static const struct endpoint *updatable(struct api_request *r, const char *name)
{
	const struct endpoint *e = store_get_endpoint(r->ctx->store, name);
	if (!e) {
		api_reply_not_found(r, "endpoint", "endpoint", name);
		return NULL;
	}
	if (strcmp(e->status, "InService") != 0) {
		/* SageMaker's wording for an update of an endpoint not InService */
		api_reply_error(r->reply, BERTH_ERR_VALIDATION, "Cannot update in-progress endpoint \"%s\".",
				e->arn);
		return NULL;
	}
	return e;
}

/* Persists e (taken) as Updating, starts the roll-out, waits, replies. */
static void roll_out(struct api_request *r, struct endpoint *e)
{
	struct api_ctx *ctx = r->ctx;
	char *name = strdup(e->name), *arn = strdup(e->arn), *status = strdup("Updating");
	if (!name || !arn || !status) {
		free(name);
		free(arn);
		free(status);
		endpoint_free(e);
		api_reply_nomem(r->reply);
		return;
	}
	free(e->status);
	e->status = status;
	e->last_modified_time = clock_epoch_seconds_ms();
	struct berth_err err = { 0 };
	if (store_put_endpoint(ctx->store, e, &err) < 0) {
		api_reply_not_saved(r->reply, &err);
	} else {
		if (ctx->runtime.endpoint_start)
			ctx->runtime.endpoint_start(ctx->runtime.data, name);
		if (ctx->runtime.routes_changed)
			ctx->runtime.routes_changed(ctx->runtime.data);
		api_wait_for_endpoint(ctx, name, "Updating");
		api_reply_arn(r->reply, "EndpointArn", arn);
	}
	free(name);
	free(arn);
}

void api_update_endpoint(struct api_request *r)
{
	if (api_refuse_unsupported(r, "UpdateEndpoint"))
		return;
	const char *name = req_name(r, r->root, "EndpointName", "endpointName");
	const char *config_name = req_name(r, r->root, "EndpointConfigName", "endpointConfigName");
	bool ignored;
	req_bool(r, r->root, "RetainAllVariantProperties", "retainAllVariantProperties", &ignored);
	req_bool(r, r->root, "RetainDeploymentConfig", "retainDeploymentConfig", &ignored);
	if (req_failed(r))
		return;
	const struct endpoint *cur = updatable(r, name);
	if (!cur)
		return;
	const struct endpoint_config *c = store_get_endpoint_config(r->ctx->store, config_name);
	if (!c) {
		api_reply_not_found(r, "endpoint configuration", "endpoint-config", config_name);
		return;
	}
	for (size_t i = 0; i < c->n_variants; i++)
		if (!store_get_model(r->ctx->store, c->variants[i].model_name)) {
			api_reply_not_found(r, "model", "model", c->variants[i].model_name);
			return;
		}
	/* the new variants' modes may differ from the old ones'; the roll-out
	 * sets them again from the models it starts (runtime/update.c) */
	struct variant *check = variants_dup(c->variants, c->n_variants);
	if (!check) {
		api_reply_nomem(r->reply);
		return;
	}
	int modes = api_variants_set_modes(r, c, check, c->n_variants);
	variants_free(check, c->n_variants);
	if (modes < 0)
		return;
	struct berth_err fit_err = { 0 }; /* (devices) the new fleet comes up beside the old */
	if (r->ctx->runtime.devices_fit &&
	    r->ctx->runtime.devices_fit(r->ctx->runtime.limits, c->variants, c->n_variants, NULL, 0, &fit_err) < 0) {
		api_reply_err(r->reply, &fit_err);
		return;
	}
	struct endpoint *e = endpoint_dup(cur);
	char *pending = strdup(config_name);
	if (!e || !pending) {
		endpoint_free(e);
		free(pending);
		api_reply_nomem(r->reply);
		return;
	}
	free(e->pending_config_name);
	e->pending_config_name = pending;
	free(e->failure_reason);
	e->failure_reason = NULL;
	log_info("updating endpoint %s to endpoint configuration %s", name, config_name);
	roll_out(r, e);
}

#define DESIRED_MAX 10

void api_update_endpoint_weights_and_capacities(struct api_request *r)
{
	if (api_refuse_unsupported(r, "UpdateEndpointWeightsAndCapacities"))
		return;
	const char *name = req_name(r, r->root, "EndpointName", "endpointName");
	yajl_val list = req_array(r, r->root, "DesiredWeightsAndCapacities", "desiredWeightsAndCapacities", true);
	if (list && list->u.array.len < 1)
		req_invalid(r, list, "desiredWeightsAndCapacities", "Member must have length greater than or equal to 1");
	if (list && list->u.array.len > DESIRED_MAX)
		req_invalid(r, list, "desiredWeightsAndCapacities", "Member must have length less than or equal to %d",
			    DESIRED_MAX);
	size_t n = list ? list->u.array.len : 0;
	if (n > DESIRED_MAX)
		n = 0;
	const char *variant_names[DESIRED_MAX] = { 0 };
	double weights[DESIRED_MAX];
	long long counts[DESIRED_MAX];
	bool has_weight[DESIRED_MAX] = { 0 }, has_count[DESIRED_MAX] = { 0 };
	for (size_t i = 0; i < n; i++) {
		yajl_val o = list->u.array.values[i];
		char p_name[80], p_weight[80], p_count[80]; /* room for any size_t index */
		snprintf(p_name, sizeof(p_name), "desiredWeightsAndCapacities.%zu.member.variantName", i + 1);
		snprintf(p_weight, sizeof(p_weight), "desiredWeightsAndCapacities.%zu.member.desiredWeight", i + 1);
		snprintf(p_count, sizeof(p_count), "desiredWeightsAndCapacities.%zu.member.desiredInstanceCount", i + 1);
		if (!YAJL_IS_OBJECT(o)) {
			req_serialization(r, "'desiredWeightsAndCapacities.%zu' must be an object.", i + 1);
			continue;
		}
		variant_names[i] = req_name(r, o, "VariantName", p_name);
		has_weight[i] = req_number(r, o, "DesiredWeight", p_weight, false, &weights[i]);
		if (has_weight[i] && !(weights[i] >= 0))
			req_invalid(r, json_get(o, "DesiredWeight"), p_weight,
				    "Member must have value greater than or equal to 0");
		has_count[i] = req_int(r, o, "DesiredInstanceCount", p_count, false, &counts[i]);
		if (has_count[i] && counts[i] < 1)
			req_invalid(r, json_get(o, "DesiredInstanceCount"), p_count,
				    "Member must have value greater than or equal to 1");
		else if (has_count[i] && counts[i] > API_MAX_INSTANCE_COUNT)
			req_invalid(r, json_get(o, "DesiredInstanceCount"), p_count,
				    "Member must have value less than or equal to %d", API_MAX_INSTANCE_COUNT);
	}
	if (req_failed(r))
		return;
	const struct endpoint *cur = updatable(r, name);
	if (!cur)
		return;
	struct endpoint *e = endpoint_dup(cur);
	if (!e) {
		api_reply_nomem(r->reply);
		return;
	}
	if (e->n_variants == 0) {
		/* a record from before variants were copied: take the config's */
		const struct endpoint_config *c = store_get_endpoint_config(r->ctx->store, e->config_name);
		if (c && (e->variants = variants_dup(c->variants, c->n_variants)) != NULL)
			e->n_variants = c->n_variants;
	}
	for (size_t i = 0; i < n; i++) {
		struct variant *v = NULL;
		for (size_t j = 0; j < e->n_variants && !v; j++)
			if (strcmp(e->variants[j].variant_name, variant_names[i]) == 0)
				v = &e->variants[j];
		if (!v) {
			api_reply_error(r->reply, BERTH_ERR_VALIDATION,
					"The variant name(s) [%s] is/are not present in the endpoint \"%s\".",
					variant_names[i], e->arn);
			endpoint_free(e);
			return;
		}
		if (has_weight[i])
			v->initial_weight = weights[i];
		if (has_count[i])
			v->initial_instance_count = counts[i];
	}
	double total = 0;
	for (size_t j = 0; j < e->n_variants; j++)
		total += e->variants[j].initial_weight;
	if (!(total > 0)) {
		api_reply_error(r->reply, BERTH_ERR_VALIDATION,
				"The sum of the desired weights of the production variants of endpoint \"%s\" must be greater than 0.",
				e->arn);
		endpoint_free(e);
		return;
	}
	struct berth_err fit_err = { 0 }; /* (devices) added instances need their devices */
	if (r->ctx->runtime.devices_fit &&
	    r->ctx->runtime.devices_fit(r->ctx->runtime.limits, e->variants, e->n_variants, cur->variants,
					cur->n_variants, &fit_err) < 0) {
		endpoint_free(e);
		api_reply_err(r->reply, &fit_err);
		return;
	}
	free(e->failure_reason);
	e->failure_reason = NULL;
	log_info("updating the weights and capacities of endpoint %s", name);
	roll_out(r, e);
}
