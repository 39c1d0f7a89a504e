/* api_unsupported.c — the members of SageMaker's requests that berth does
 * not implement yet, refused instead of taken and ignored.
 *
 * One table, gone through member by member from SageMaker's service model
 * (botocore's sagemaker/2017-07-24/service-2.json) for every operation
 * berth serves: a member listed here, given with a value other than JSON
 * null, makes the call fail before anything is created or changed, with
 *
 *   400 ValidationException "berth does not support PATH yet: WHAT.
 *   Remove it from the OPERATION request."
 *
 * PATH as the caller wrote it (PascalCase, 1-based positions:
 * "ProductionVariants.2.ServerlessConfig"). A boolean whose false is what
 * berth does anyway (EnableSSMAccess) is accepted when false. An enum
 * member "A.B" of which berth does one value and not another is refused
 * for that other value only, with
 *
 *   400 ValidationException "berth does not support B VALUE (PATH-TO-A)
 *   yet: WHAT. Give B ACCEPTED, or leave A out of the OPERATION request."
 *
 * (other values go on to the operation's own validation). Members that
 * are not listed are implemented (docs/contract.md §2 lists what each does). */
#include <stdio.h>
#include <string.h>

#include "api_internal.h"
#include "json.h"

enum unsupported_scope {
	SCOPE_REQUEST,    /* a member of the request itself */
	SCOPE_CONTAINER,  /* of PrimaryContainer and of each of Containers */
	SCOPE_VARIANT,    /* of each of ProductionVariants */
	SCOPE_WEIGHT,     /* of each of DesiredWeightsAndCapacities */
};

struct unsupported_member {
	const char *operation;
	enum unsupported_scope scope;
	const char *member;      /* "A" or "A.B" (a member of member A) */
	const char *what;        /* what it does on SageMaker, or why berth has none */
	bool false_ok;           /* a boolean false is accepted: berth does that */
};

/* An enum member "A.B" of which only one value is refused: berth does
 * `accepted` and not `refused` (other values go on to validation). */
struct unsupported_value {
	struct unsupported_member m;
	const char *refused, *accepted;
};

#define VARIANT_MEMBERS(OP)                                                                                     \
	{ OP, SCOPE_VARIANT, "InstancePools", "instance pools choose among several instance types; berth runs "  \
					      "each variant on its one InstanceType", false },                  \
	{ OP, SCOPE_VARIANT, "VariantInstanceProvisionTimeoutInSeconds",                                        \
	  "it bounds the provisioning of instances, which berth does not do: an instance is started at once",   \
	  false },                                                                                              \
	{ OP, SCOPE_VARIANT, "AcceleratorType", "Elastic Inference accelerators do not exist on this host",      \
	  false },                                                                                              \
	{ OP, SCOPE_VARIANT, "CoreDumpConfig", "core dumps of serving containers are not collected", false },    \
	{ OP, SCOPE_VARIANT, "ServerlessConfig", "serverless variants are not served; give InstanceType and "    \
						 "InitialInstanceCount instead", false },                         \
	{ OP, SCOPE_VARIANT, "VolumeSizeInGB", "containers write to a private overlay on berthd's state "        \
					       "directory, whose size berth does not bound per variant", false }, \
	{ OP, SCOPE_VARIANT, "EnableSSMAccess", "there is no SSM agent to reach the containers (false is "       \
						"accepted)", true },                                              \
	{ OP, SCOPE_VARIANT, "ManagedInstanceScaling", "berth does not scale instances by itself; use "          \
						       "UpdateEndpointWeightsAndCapacities", false },             \
	{ OP, SCOPE_VARIANT, "InferenceAmiVersion", "containers run on this host's kernel and drivers, not on "  \
						    "a SageMaker AMI", false },                                   \
	{ OP, SCOPE_VARIANT, "CapacityReservationConfig", "there are no capacity reservations on one host",     \
	  false }

static const struct unsupported_member unsupported[] = {
	{ "CreateModel", SCOPE_REQUEST, "VpcConfig", "containers have no network but their own loopback, so "
						     "there is no VPC to attach them to", false },
	{ "CreateModel", SCOPE_CONTAINER, "ModelDataSource", "give the model data as ModelDataUrl (a .tar.gz, "
							     "or a directory already unpacked)", false },
	{ "CreateModel", SCOPE_CONTAINER, "AdditionalModelDataSources", "only ModelDataUrl is mounted, at "
									"/opt/ml/model", false },
	{ "CreateModel", SCOPE_CONTAINER, "ModelPackageName", "there is no model registry; give Image (and "
							      "ModelDataUrl) instead", false },
	{ "CreateModel", SCOPE_CONTAINER, "InferenceSpecificationName", "there is no model registry; give Image "
									"instead", false },
	{ "CreateModel", SCOPE_CONTAINER, "ImageConfig.RepositoryAuthConfig",
	  "registry credentials are berthd's (its registries configuration), not a Lambda function's", false },

	{ "CreateEndpointConfig", SCOPE_REQUEST, "DataCaptureConfig", "requests and responses are not captured",
	  false },
	{ "CreateEndpointConfig", SCOPE_REQUEST, "KmsKeyId", "there is no KMS to encrypt the instances' "
							     "storage with", false },
	{ "CreateEndpointConfig", SCOPE_REQUEST, "AsyncInferenceConfig.OutputConfig.KmsKeyId",
	  "there is no KMS to encrypt asynchronous inference results with", false },
	{ "CreateEndpointConfig", SCOPE_REQUEST, "ExplainerConfig", "there is no SageMaker Clarify explainer",
	  false },
	{ "CreateEndpointConfig", SCOPE_REQUEST, "ShadowProductionVariants", "shadow variants are not served",
	  false },
	{ "CreateEndpointConfig", SCOPE_REQUEST, "ExecutionRoleArn", "it serves inference components, which "
								     "berth does not have", false },
	{ "CreateEndpointConfig", SCOPE_REQUEST, "VpcConfig", "containers have no network but their own "
							      "loopback, so there is no VPC to attach them to", false },
	{ "CreateEndpointConfig", SCOPE_REQUEST, "EnableNetworkIsolation", "it serves inference components, "
									   "which berth does not have; give "
									   "it in CreateModel", false },
	{ "CreateEndpointConfig", SCOPE_REQUEST, "MetricsConfig", "berth-router's /metrics has no per-endpoint "
								  "settings", false },
	VARIANT_MEMBERS("CreateEndpointConfig"),

	{ "CreateEndpoint", SCOPE_REQUEST, "DeploymentConfig", "updates are always blue/green, all at once, "
							       "with roll-back when the new instances do not "
							       "become healthy", false },

	{ "UpdateEndpoint", SCOPE_REQUEST, "RetainAllVariantProperties", "the new endpoint configuration's "
									 "weights and instance counts are used "
									 "(false is accepted)", true },
	{ "UpdateEndpoint", SCOPE_REQUEST, "ExcludeRetainedVariantProperties", "variant properties are not "
									       "retained across an update",
	  false },
	{ "UpdateEndpoint", SCOPE_REQUEST, "DeploymentConfig", "updates are always blue/green, all at once, "
							       "with roll-back when the new instances do not "
							       "become healthy", false },

	{ "UpdateEndpointWeightsAndCapacities", SCOPE_WEIGHT, "ServerlessUpdateConfig", "serverless variants are "
											"not served", false },
};

static const struct unsupported_value unsupported_values[] = {
	{ .m = { .operation = "CreateEndpointConfig", .scope = SCOPE_VARIANT, .member = "RoutingConfig.RoutingStrategy",
		 .what = "berth always routes a variant's requests to the instance with the fewest outstanding "
			 "requests" },
	  .refused = "RANDOM", .accepted = "LEAST_OUTSTANDING_REQUESTS" },
	{ .m = { .operation = "CreateModel", .scope = SCOPE_CONTAINER, .member = "MultiModelConfig.ModelCacheSetting",
		 .what = "multi-model containers always cache their models (loaded on first use, evicted least "
			 "recently used)" },
	  .refused = "Disabled", .accepted = "Enabled" },
};

/* The value at member ("A", "A.B", "A.B.C") of obj; NULL when absent or null. */
static yajl_val member_value(yajl_val obj, const char *member)
{
	const char *dot = strchr(member, '.');
	if (dot == NULL)
		return obj && YAJL_IS_OBJECT(obj) ? json_get(obj, member) : NULL;
	char outer[64];
	size_t n = (size_t)(dot - member);
	if (n >= sizeof(outer))
		return NULL;
	memcpy(outer, member, n);
	outer[n] = '\0';
	yajl_val o = obj && YAJL_IS_OBJECT(obj) ? json_get(obj, outer) : NULL;
	return o && YAJL_IS_OBJECT(o) ? member_value(o, dot + 1) : NULL;
}

/* Replies and returns true when obj carries entry's member (with val: its
 * refused value). */
static bool refuse(struct api_request *r, const struct unsupported_member *u, const struct unsupported_value *val,
		   yajl_val obj, const char *prefix)
{
	yajl_val v = member_value(obj, u->member);
	if (v == NULL || YAJL_IS_NULL(v) || (u->false_ok && YAJL_IS_FALSE(v)))
		return false;
	if (val != NULL) {
		if (!YAJL_IS_STRING(v) || strcmp(v->u.string, val->refused) != 0)
			return false;
		const char *leaf = strchr(u->member, '.') + 1;
		int outer = (int)(leaf - 1 - u->member);
		api_reply_error(r->reply, BERTH_ERR_VALIDATION,
				"berth does not support %s %s (%s%.*s) yet: %s. Give %s %s, or leave %.*s out of the %s "
				"request.",
				leaf, val->refused, prefix, outer, u->member, u->what, leaf, val->accepted, outer,
				u->member, u->operation);
		return true;
	}
	api_reply_error(r->reply, BERTH_ERR_VALIDATION,
			"berth does not support %s%s yet: %s. Remove it from the %s request.", prefix, u->member,
			u->what, u->operation);
	return true;
}

/* Each element of the request's array member list (objects only; others
 * are the operation's own validation's business). */
static bool refuse_in_list(struct api_request *r, const struct unsupported_member *u,
			   const struct unsupported_value *val, const char *list)
{
	yajl_val a = json_get(r->root, list);
	for (size_t i = 0; a && YAJL_IS_ARRAY(a) && i < a->u.array.len; i++) {
		char prefix[96];
		snprintf(prefix, sizeof(prefix), "%s.%zu.", list, i + 1);
		if (refuse(r, u, val, a->u.array.values[i], prefix))
			return true;
	}
	return false;
}

/* Replies and returns true when the request carries u's member wherever
 * its scope puts it. */
static bool refuse_in_scope(struct api_request *r, const struct unsupported_member *u,
			    const struct unsupported_value *val)
{
	switch (u->scope) {
	case SCOPE_REQUEST:
		return refuse(r, u, val, r->root, "");
	case SCOPE_CONTAINER:
		return refuse(r, u, val, json_get(r->root, "PrimaryContainer"), "PrimaryContainer.") ||
		       refuse_in_list(r, u, val, "Containers");
	case SCOPE_VARIANT:
		return refuse_in_list(r, u, val, "ProductionVariants");
	case SCOPE_WEIGHT:
		return refuse_in_list(r, u, val, "DesiredWeightsAndCapacities");
	}
	return false;
}

bool api_refuse_unsupported(struct api_request *r, const char *operation)
{
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(unsupported); i++)
		if (strcmp(unsupported[i].operation, operation) == 0 && refuse_in_scope(r, &unsupported[i], NULL))
			return true;
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(unsupported_values); i++)
		if (strcmp(unsupported_values[i].m.operation, operation) == 0 &&
		    refuse_in_scope(r, &unsupported_values[i].m, &unsupported_values[i]))
			return true;
	return false;
}
