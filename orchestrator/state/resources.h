/* resources.h — berthd's resources as C values, and their JSON form on
 * disk. The on-disk document of a model / endpoint config is its
 * Describe* output (SageMaker member names), plus for endpoints a
 * "Berth" member with the runtime facts berthd needs to re-adopt it. */
#ifndef BERTH_RESOURCES_H
#define BERTH_RESOURCES_H

#include <stdbool.h>
#include <stddef.h>

#include "async_config.h"
#include "buf.h"
#include "err.h"

struct kv {
	char *key;
	char *value;
};

struct container_def {
	char *hostname;        /* always set: given, "primary", or assigned by position */
	bool hostname_given;   /* false when berth assigned it */
	char *image;
	char *model_data_url;  /* NULL when absent */
	char *mode;            /* "SingleModel" | "MultiModel"; NULL = SingleModel */
	/* MultiModelConfig as given (described back): present, and with
	 * ModelCacheSetting Enabled (what berth does; Disabled is refused) */
	bool multi_model_config, model_cache_enabled;
	struct kv *env;        /* Environment, in the order given */
	size_t n_env;
};

struct model {
	char *name;
	char *arn;
	double creation_time;  /* epoch seconds */
	char *execution_role_arn;     /* NULL when absent */
	bool has_primary;             /* PrimaryContainer given (else Containers) */
	struct container_def *containers;
	size_t n_containers;
	char *execution_mode;  /* InferenceExecutionConfig.Mode: "Serial" | "Direct" | NULL */
	struct kv *tags;
	size_t n_tags;
	/* EnableNetworkIsolation as given (false when absent): kept and
	 * described; containers have no network but loopback either way */
	bool enable_network_isolation;
};

/* SageMaker's bounds of a variant's ContainerStartupHealthCheckTimeoutInSeconds
 * and ModelDataDownloadTimeoutInSeconds. */
#define VARIANT_TIMEOUT_MIN_S 60
#define VARIANT_TIMEOUT_MAX_S 3600

struct variant {
	char *variant_name;
	char *model_name;
	long long initial_instance_count;
	char *instance_type;
	double initial_weight; /* 1.0 when absent */
	/* ContainerStartupHealthCheckTimeoutInSeconds and
	 * ModelDataDownloadTimeoutInSeconds (60..3600); 0 when absent: berthd's
	 * configured defaults apply */
	long long startup_health_check_timeout_s;
	long long model_data_download_timeout_s;
	/* RoutingConfig was given: RoutingStrategy LEAST_OUTSTANDING_REQUESTS,
	 * which is how the router always picks an instance (RANDOM is refused
	 * at CreateEndpointConfig); kept to be described back */
	bool routing_least_outstanding;
	/* How the variant's model is invoked: "Single", "Direct", "Serial" or
	 * "MultiModel" (model_invocation_mode). Set in an endpoint's own copy
	 * of its variants when it is created or updated; NULL in an endpoint
	 * config and in endpoint records written before modes were per variant
	 * (endpoint_variant_mode then answers for them). */
	char *mode;
};

struct endpoint_config {
	char *name;
	char *arn;
	double creation_time;
	struct variant *variants;
	size_t n_variants;
	struct kv *tags;
	size_t n_tags;
	/* AsyncInferenceConfig (async_config.h); present false when absent */
	struct async_config async;
};

/* One running (or stopped) container of an endpoint instance. */
struct endpoint_container {
	char *id;        /* berth's container id, also the runc id */
	char *hostname;
	char *socket;    /* the shim's socket path */
	char *log;       /* the log file path */
	/* (added, health/instances) Which instance the container belongs to:
	 * the variant's name (NULL in records written before instances: the
	 * endpoint's variant_name) and the instance's index in that variant
	 * (0 when absent). The flat containers[] array stays the on-disk form;
	 * an instance is the containers sharing (variant, instance). */
	char *variant;
	long long instance;
	long long restarts;  /* times berthd restarted it (berth ps) */
	bool down;           /* not serving: exited, failing /ping, or restarting */
	bool pending;        /* started by an update, not yet given traffic */
	bool retiring;       /* replaced by an update or scaled in: draining, then stopped */
	/* (userns) First host uid and gid of the container's user namespace
	 * (USERNS_RANGE_SIZE ids; uid_range.h), shared by the containers of one
	 * instance; 0: none (user namespaces off, or a record written before). */
	long long uid_base;
	/* Its variant's ContainerStartupHealthCheckTimeoutInSeconds and
	 * ModelDataDownloadTimeoutInSeconds in ms, copied when the instance
	 * is allocated (restarts use them too); 0: berthd's defaults. */
	long long startup_timeout_ms;
	long long download_timeout_ms;
	/* (devices) The CDI devices ("nvidia.com/gpu=0") its instance holds,
	 * the same in each container of the instance; none on CPU types. */
	char **devices;
	size_t n_devices;
};
#define RESOURCES_MAX_DEVICES 64

struct endpoint {
	char *name;
	char *arn;
	char *config_name;
	double creation_time;
	double last_modified_time;
	char *status;          /* Creating | InService | Failed | Deleting | Updating | … */
	char *failure_reason;  /* NULL unless Failed */
	/* runtime facts, persisted under "Berth" so a restarted berthd re-adopts */
	/* The one mode records written before modes were per variant carry
	 * (Berth.mode: variant 0's); read, kept and written back, never set
	 * anew: each variant's own mode is variants[i].mode. NULL in records
	 * written since. */
	char *legacy_mode;
	char *variant_name;    /* the variant whose instance runs (first variant for now) */
	struct endpoint_container *containers;
	size_t n_containers;
	struct kv *tags;
	size_t n_tags;
	/* (added) the config's ProductionVariants copied at create time, so
	 * DescribeEndpoint still answers after DeleteEndpointConfig, as on
	 * SageMaker. Persisted under "Berth". May be empty (n_variants == 0). */
	struct variant *variants;
	size_t n_variants;
	/* (added) UpdateEndpoint in progress: the config being rolled out
	 * (NULL otherwise). The endpoint's own variants[] carry the current
	 * weights (initial_weight) and desired instance counts
	 * (initial_instance_count), as UpdateEndpointWeightsAndCapacities sets
	 * them. Persisted under "Berth". */
	char *pending_config_name;
	/* (async) The AsyncInferenceConfig of the config it serves, copied at
	 * create and when an update completes; persisted under "Berth". */
	struct async_config async;
};

/* (added) Instances in the flat containers[] array. The variant a
 * container belongs to (its own, else the endpoint's variant_name, else the
 * first variant's name, else "AllTraffic"). */
const char *endpoint_container_variant(const struct endpoint *e, const struct endpoint_container *c);
/* true when instance k of variant has live containers (not pending or
 * retiring) and none of them is down. */
bool endpoint_instance_serving(const struct endpoint *e, const char *variant, long long k);
/* How many instances of the variant serve now (DescribeEndpoint's CurrentInstanceCount). */
long long endpoint_variant_serving_instances(const struct endpoint *e, const char *variant);

/* How a model is invoked (SageMaker's rules): "MultiModel" for one
 * container with Mode MultiModel, "Single" for one container without an
 * InferenceExecutionConfig, else its InferenceExecutionConfig.Mode,
 * "Serial" by default. */
const char *model_invocation_mode(const struct model *m);
/* The mode of the endpoint's variant i: its own, else (a record written
 * before modes were per variant) the endpoint's legacy_mode, else "Single". */
const char *endpoint_variant_mode(const struct endpoint *e, size_t i);
/* true for the four mode names above. */
bool invocation_mode_valid(const char *mode);

void model_free(struct model *m);                 /* frees members and m */
void endpoint_config_free(struct endpoint_config *c);
void endpoint_free(struct endpoint *e);
struct endpoint *endpoint_dup(const struct endpoint *e);
/* One container record: copy (strings duplicated; on -1 free dst with
 * endpoint_containers_free) and free an array of n. */
int endpoint_container_copy(struct endpoint_container *dst, const struct endpoint_container *src);
void endpoint_containers_free(struct endpoint_container *ec, size_t n);
/* Frees the members of one record (what endpoint_container_copy made). */
void endpoint_container_clear(struct endpoint_container *c);
struct model *model_dup(const struct model *m);
struct endpoint_config *endpoint_config_dup(const struct endpoint_config *c);

/* JSON on disk: *_to_json appends the document to out; *_from_json parses
 * it back (NULL with err on a corrupt document). */
int model_to_json(const struct model *m, struct berth_buf *out);
struct model *model_from_json(const char *text, size_t len, struct berth_err *err);
int endpoint_config_to_json(const struct endpoint_config *c, struct berth_buf *out);
struct endpoint_config *endpoint_config_from_json(const char *text, size_t len, struct berth_err *err);
int endpoint_to_json(const struct endpoint *e, struct berth_buf *out);
struct endpoint *endpoint_from_json(const char *text, size_t len, struct berth_err *err);

/* (added) The Describe* output of a model / endpoint config (the on-disk
 * document without the members only berth keeps: Tags, "Berth"). */
int model_describe_to_json(const struct model *m, struct berth_buf *out);
int endpoint_config_describe_to_json(const struct endpoint_config *c, struct berth_buf *out);

/* (added) Deep copy of n variants: NULL with errno = 0 when n == 0, NULL
 * with errno = ENOMEM on failure. variants_free frees members and array. */
struct variant *variants_dup(const struct variant *v, size_t n);
void variants_free(struct variant *v, size_t n);

#endif
