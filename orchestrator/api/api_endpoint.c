/* api_endpoint.c — CreateEndpoint, DescribeEndpoint, and the api_kind
 * entry for ListEndpoints and DeleteEndpoint (api_kind.c; its remove
 * stops the containers and waits).
 *
 * Create and Delete hand the lifecycle to the runtime (ctx->runtime hooks,
 * called with *ctx->lock held), then wait on ctx->changed for the next
 * stable state for at most ctx->grace_ms, so boto3's waiters return on
 * their first poll (CONTRACT.md §2). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "api_internal.h"
#include "reference.h"
#include "json.h"
#include "log.h"
#include "names.h"

/* Waits, with *ctx->lock held, until the endpoint NAME is gone or (when
 * while_status is not NULL) its status is no longer while_status, or
 * ctx->grace_ms have passed. */
static void wait_for_endpoint(struct api_ctx *ctx, const char *name, const char *while_status)
{
	api_wait_for_endpoint(ctx, name, while_status);
}

void api_wait_for_endpoint(struct api_ctx *ctx, const char *name, const char *while_status)
{
	if (!ctx->changed || ctx->grace_ms <= 0)
		return;
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += ctx->grace_ms / 1000;
	deadline.tv_nsec += (long)(ctx->grace_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	for (;;) {
		const struct endpoint *e = store_get_endpoint(ctx->store, name);
		if (!e || (while_status && strcmp(e->status, while_status) != 0))
			return;
		int rc = pthread_cond_timedwait(ctx->changed, ctx->lock, &deadline);
		if (rc == ETIMEDOUT)
			return;
	}
}

int api_variants_set_modes(struct api_request *r, const struct endpoint_config *c, struct variant *v, size_t n)
{
	const char *multi = NULL;
	for (size_t i = 0; i < n; i++) {
		const struct model *m = store_get_model(r->ctx->store, v[i].model_name);
		const char *mode = m ? model_invocation_mode(m) : NULL;
		if (mode == NULL) {
			api_reply_not_found(r, "model", "model", v[i].model_name);
			return -1;
		}
		/* berth keeps one multi-model cache per endpoint (mme.h) */
		if (strcmp(mode, "MultiModel") == 0 && multi != NULL) {
			api_reply_error(r->reply, BERTH_ERR_VALIDATION,
					"Endpoint configuration \"%s\" has two production variants whose models are "
					"multi-model (Mode MultiModel): %s and %s. berth serves at most one multi-model "
					"variant per endpoint; put the other in an endpoint of its own.",
					c->name, multi, v[i].variant_name);
			return -1;
		}
		if (strcmp(mode, "MultiModel") == 0)
			multi = v[i].variant_name;
		if (api_async_check_modes(r, c->name, &c->async, &v[i], 1) < 0)
			return -1;
		free(v[i].mode);
		if ((v[i].mode = strdup(mode)) == NULL) {
			api_reply_nomem(r->reply);
			return -1;
		}
	}
	return 0;
}

void api_create_endpoint(struct api_request *r)
{
	struct api_ctx *ctx = r->ctx;
	if (api_refuse_unsupported(r, "CreateEndpoint"))
		return;
	struct endpoint *e = calloc(1, sizeof(*e));
	char *arn = NULL, *name_copy = NULL;
	if (!e) {
		api_reply_nomem(r->reply);
		return;
	}
	const char *name = req_name(r, r->root, "EndpointName", "endpointName");
	const char *config_name = req_name(r, r->root, "EndpointConfigName", "endpointConfigName");
	req_tags(r, r->root, &e->tags, &e->n_tags);
	if (req_failed(r) || api_tags_reserved(r, e->tags, e->n_tags))
		goto out;
	if (api_endpoint_name_taken(ctx->store, name)) {
		api_reply_exists(r, "endpoint", "endpoint", name);
		goto out;
	}
	const struct endpoint_config *c = store_get_endpoint_config(ctx->store, config_name);
	if (!c) {
		api_reply_not_found(r, "endpoint configuration", "endpoint-config", config_name);
		goto out;
	}
	/* Models may have been deleted since the config was made. */
	for (size_t i = 0; i < c->n_variants; i++)
		if (!store_get_model(ctx->store, c->variants[i].model_name)) {
			api_reply_not_found(r, "model", "model", c->variants[i].model_name);
			goto out;
		}
	struct berth_err fit_err = { 0 };
	if (ctx->runtime.endpoint_fits && ctx->runtime.endpoint_fits(ctx->runtime.limits, c, &fit_err) < 0) {
		api_reply_err(r->reply, &fit_err);
		goto out;
	}
	e->name = strdup(name);
	e->arn = api_arn(ctx, "endpoint", name);
	e->config_name = strdup(config_name);
	e->creation_time = e->last_modified_time = clock_epoch_seconds_ms();
	e->status = strdup("Creating");
	e->variant_name = strdup(c->variants[0].variant_name);
	e->variants = variants_dup(c->variants, c->n_variants);
	e->n_variants = e->variants ? c->n_variants : 0;
	/* each variant runs and routes by its own model's mode */
	if (e->variants && api_variants_set_modes(r, c, e->variants, e->n_variants) < 0)
		goto out;
	if (async_config_copy(&e->async, &c->async) < 0) {
		api_reply_nomem(r->reply);
		goto out;
	}
	arn = e->arn ? strdup(e->arn) : NULL;
	name_copy = strdup(name);
	if (!e->name || !arn || !e->config_name || !e->status || !e->variant_name || !e->variants ||
	    !name_copy) {
		api_reply_nomem(r->reply);
		goto out;
	}
	struct berth_err err = { 0 };
	int rc = store_put_endpoint(ctx->store, e, &err);
	e = NULL;
	if (rc < 0) {
		api_reply_not_saved(r->reply, &err);
		goto out;
	}
	log_info("created endpoint %s (config %s), starting it", name_copy, config_name);
	if (ctx->runtime.endpoint_start)
		ctx->runtime.endpoint_start(ctx->runtime.data, name_copy);
	if (ctx->runtime.routes_changed)
		ctx->runtime.routes_changed(ctx->runtime.data);
	/* name and config_name point into the request, not the store: still valid. */
	wait_for_endpoint(ctx, name_copy, "Creating");
	api_reply_arn(r->reply, "EndpointArn", arn);
out:
	free(arn);
	free(name_copy);
	endpoint_free(e);
}

static bool gen_ok(yajl_gen_status s)
{
	return s == yajl_gen_status_ok;
}

/* Instances of the variant running now: berth runs the endpoint's
 * variant_name; its instance count follows from the containers the runtime
 * recorded (containers per instance = the model's container count). */
static long long current_instance_count(const struct endpoint *e, const struct variant *v, const struct model *m)
{
	if (strcmp(e->status, "InService") != 0 && strcmp(e->status, "Updating") != 0)
		return 0;
	(void)m;
	if (e->n_containers == 0) /* a record without runtime facts */
		return v->initial_instance_count;
	/* (health/instances) the variant's instances whose containers all serve */
	return endpoint_variant_serving_instances(e, v->variant_name);
}

static int gen_describe_endpoint(yajl_gen g, const struct api_ctx *ctx, const struct store *s,
				  const struct endpoint *e)
{
	const struct variant *variants = e->variants;
	size_t n_variants = e->n_variants;
	if (n_variants == 0) {
		/* a record written without its own copy: use the config if still there */
		const struct endpoint_config *c = store_get_endpoint_config(s, e->config_name);
		if (c) {
			variants = c->variants;
			n_variants = c->n_variants;
		}
	}
	bool ok = gen_ok(yajl_gen_map_open(g)) && json_gen_kv_str(g, "EndpointName", e->name) == 0 &&
		  json_gen_kv_str(g, "EndpointArn", e->arn) == 0 &&
		  json_gen_kv_str(g, "EndpointConfigName", e->config_name) == 0 &&
		  json_gen_str(g, "ProductionVariants") == 0 && gen_ok(yajl_gen_array_open(g));
	for (size_t i = 0; ok && i < n_variants; i++) {
		const struct variant *v = &variants[i];
		const struct model *m = store_get_model(s, v->model_name);
		ok = gen_ok(yajl_gen_map_open(g)) && json_gen_kv_str(g, "VariantName", v->variant_name) == 0 &&
		     json_gen_str(g, "DeployedImages") == 0 && gen_ok(yajl_gen_array_open(g));
		for (size_t k = 0; ok && m && k < m->n_containers; k++) {
			/* a registry image: the digest its tag resolved to at
			 * CreateEndpoint (none yet while it is being pulled) */
			const char *image = m->containers[k].image;
			char resolved[600];
			double at = e->creation_time;
			bool registry = image_reference_is(image);
			bool known = !registry || (ctx->runtime.image_resolved &&
						   ctx->runtime.image_resolved(ctx->runtime.sources, e->name, image, resolved,
								       sizeof(resolved), &at) == 0);
			ok = gen_ok(yajl_gen_map_open(g)) && json_gen_kv_str(g, "SpecifiedImage", image) == 0;
			if (ok && known)
				ok = json_gen_kv_str(g, "ResolvedImage", registry ? resolved : image) == 0 &&
				     json_gen_kv_double(g, "ResolutionTime", at) == 0;
			/* (berth) a pull in progress: its last step, while Creating */
			char step[400];
			if (ok && registry && strcmp(e->status, "Creating") == 0 && ctx->runtime.image_pull_step &&
			    ctx->runtime.image_pull_step(ctx->runtime.sources, image, step, sizeof(step)) == 0)
				ok = json_gen_kv_str(g, "BerthPullProgress", step) == 0;
			ok = ok && gen_ok(yajl_gen_map_close(g));
		}
		ok = ok && gen_ok(yajl_gen_array_close(g)) &&
		     json_gen_kv_double(g, "CurrentWeight", v->initial_weight) == 0 &&
		     json_gen_kv_double(g, "DesiredWeight", v->initial_weight) == 0 &&
		     json_gen_kv_int(g, "CurrentInstanceCount", current_instance_count(e, v, m)) == 0 &&
		     json_gen_kv_int(g, "DesiredInstanceCount", v->initial_instance_count) == 0;
		if (ok && v->routing_least_outstanding)
			ok = json_gen_str(g, "RoutingConfig") == 0 && gen_ok(yajl_gen_map_open(g)) &&
			     json_gen_kv_str(g, "RoutingStrategy", "LEAST_OUTSTANDING_REQUESTS") == 0 &&
			     gen_ok(yajl_gen_map_close(g));
		ok = ok && gen_ok(yajl_gen_map_close(g));
	}
	ok = ok && gen_ok(yajl_gen_array_close(g)) && json_gen_kv_str(g, "EndpointStatus", e->status) == 0;
	/* (added) also on InService: a rolled-back update or a restarted
	 * container, as SageMaker reports a failed update on a serving endpoint */
	if (ok && e->failure_reason && strcmp(e->status, "Creating") != 0)
		ok = json_gen_kv_str(g, "FailureReason", e->failure_reason) == 0;
	ok = ok && json_gen_kv_double(g, "CreationTime", e->creation_time) == 0 &&
	     json_gen_kv_double(g, "LastModifiedTime", e->last_modified_time) == 0 && gen_ok(yajl_gen_map_close(g));
	return ok ? 0 : -1;
}

void api_describe_endpoint(struct api_request *r)
{
	const char *name = req_name(r, r->root, "EndpointName", "endpointName");
	if (req_failed(r))
		return;
	const struct endpoint *e = store_get_endpoint(r->ctx->store, name);
	if (!e) {
		api_reply_not_found(r, "endpoint", "endpoint", name);
		return;
	}
	yajl_gen g = json_gen_new();
	if (g && gen_describe_endpoint(g, r->ctx, r->ctx->store, e) < 0) {
		yajl_gen_free(g);
		g = NULL;
	}
	api_reply_gen(r->reply, g);
}

static int gen_endpoint_summary(yajl_gen g, const void *resource)
{
	const struct endpoint *e = resource;
	return json_gen_kv_str(g, "EndpointName", e->name) == 0 && json_gen_kv_str(g, "EndpointArn", e->arn) == 0 &&
			       json_gen_kv_double(g, "CreationTime", e->creation_time) == 0 &&
			       json_gen_kv_double(g, "LastModifiedTime", e->last_modified_time) == 0 &&
			       json_gen_kv_str(g, "EndpointStatus", e->status) == 0
		       ? 0
		       : -1;
}

static void endpoint_item_at(const struct store *s, size_t i, struct list_item *out)
{
	const struct endpoint *e = store_endpoint_at(s, i);
	*out = (struct list_item){ .name = e->name, .creation_time = e->creation_time,
				   .last_modified_time = e->last_modified_time, .status = e->status, .resource = e };
}

static bool endpoint_exists(const struct store *s, const char *name)
{
	return store_get_endpoint(s, name) != NULL;
}

/* DeleteEndpoint of an existing endpoint: persist Deleting, hand the stop
 * to the runtime, wait for the record to go (at most grace_ms). */
static void endpoint_remove(struct api_request *r, const char *name)
{
	struct api_ctx *ctx = r->ctx;
	const struct endpoint *current = store_get_endpoint(ctx->store, name);
	/* Deleting twice is not an error: the second call waits like the first. */
	if (strcmp(current->status, "Deleting") != 0) {
		struct endpoint *e = endpoint_dup(current);
		char *status = strdup("Deleting");
		if (!e || !status) {
			endpoint_free(e);
			free(status);
			api_reply_nomem(r->reply);
			return;
		}
		free(e->status);
		e->status = status;
		free(e->failure_reason);
		e->failure_reason = NULL;
		e->last_modified_time = clock_epoch_seconds_ms();
		struct berth_err err = { 0 };
		if (store_put_endpoint(ctx->store, e, &err) < 0) {
			api_reply_not_saved(r->reply, &err);
			return;
		}
		log_info("deleting endpoint %s", name);
		if (ctx->runtime.endpoint_stop)
			ctx->runtime.endpoint_stop(ctx->runtime.data, name);
		if (ctx->runtime.routes_changed)
			ctx->runtime.routes_changed(ctx->runtime.data);
	}
	wait_for_endpoint(ctx, name, NULL);
	api_reply_empty(r->reply);
}

const struct api_kind api_kind_endpoint = {
	.what = "endpoint",
	.arn_kind = "endpoint",
	.name_member = "EndpointName",
	.name_path = "endpointName",
	.list_member = "Endpoints",
	.endpoints = true,
	.count = store_count_endpoints,
	.item_at = endpoint_item_at,
	.gen_summary = gen_endpoint_summary,
	.exists = endpoint_exists,
	.remove = endpoint_remove,
};
