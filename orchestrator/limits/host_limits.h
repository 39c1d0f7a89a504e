/* host_limits.h — what an endpoint instance may use and whether the host has
 * room for it: the instance type table, the host's CPUs and memory, the
 * over-commit factors, and the per-instance pids limit.
 *
 *   limits_endpoint_fits   (api hook, *lock held) CreateEndpoint: the
 *                          instances (count × type) of every endpoint that
 *                          holds resources (Creating, InService, Updating,
 *                          SystemUpdating, RollingBack) plus the new one
 *                          must fit nproc × cpu_overcommit vCPUs and
 *                          MemTotal × memory_overcommit bytes; otherwise
 *                          -1 with SageMaker's ResourceLimitExceeded text
 *                          (class BERTH_ERR_RESOURCE_LIMIT).
 *   limits_instance_type_check  (api hook) CreateEndpointConfig: a type
 *                          this host does not offer is a ValidationException.
 *   limits_place           (container start, no lock) the instance cgroup a
 *                          container of ENDPOINT goes into ("VARIANT-INDEX"
 *                          from the container's variant and instance) and
 *                          the limits of that variant's instance type, read
 *                          from the endpoint's persisted record. */
#ifndef BERTH_HOST_LIMITS_H
#define BERTH_HOST_LIMITS_H

struct cdi_registry;

#include "cgroup.h"
#include "err.h"
#include "instance_types.h"
#include "resources.h"
#include "store.h"

struct limits {
	struct instance_types types;
	double cpu_overcommit, memory_overcommit;
	long long pids_limit;      /* per instance */
	int host_cpus;
	long long host_memory_bytes;
	const char *state_dir;     /* where endpoint records are (limits_place) */
	struct store *store;       /* read by limits_endpoint_fits, with the lock held */
	/* (devices) The host's CDI devices (NULL: none; every GPU type is then
	 * refused) and the kind an instance type's gpus are when the table
	 * does not say (NULL: DEVICES_DEFAULT_KIND). devices.h. */
	struct cdi_registry *cdi;
	const char *accelerator_kind;
	/* (devices, identity) Where each berthd of this host publishes the
	 * devices its records hold (CLAIMS_DIR/IDENTITY), so that another
	 * berthd reading the same specs never hands them out too; NULL: none. */
	const char *claims_dir;
	const char *identity;
};

/* types_path NULL: the compiled-in table. Reads nproc and MemTotal. */
int limits_init(struct limits *l, const char *types_path, struct berth_err *err);
void limits_free(struct limits *l);

/* The cgroup limits of one instance of type; -1 when the type is unknown. */
int limits_of_type(const struct limits *l, const char *type, struct cgroup_limits *out);

int limits_endpoint_fits(void *limits, const struct endpoint_config *c, struct berth_err *err);
int limits_instance_type_check(void *limits, const char *instance_type, struct berth_err *err);

struct container_placement {
	char instance[96];         /* cgroup name of the instance: "VARIANT-INDEX" */
	char instance_type[64];    /* "" when unknown */
	struct cgroup_limits lim;  /* zeros when the type is unknown */
};
void limits_place(const struct limits *l, const char *endpoint, const struct endpoint_container *c,
		  struct container_placement *out);

#endif
