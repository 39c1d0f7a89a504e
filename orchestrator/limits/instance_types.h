/* instance_types.h — the SageMaker instance types this host offers
 * (configs/instance-types.json): name → vCPUs, memory, GPUs. The document is
 * one object, {"ml.t2.medium": {"vcpus": 2, "memory_mib": 4096, "gpus": 0}, …};
 * every entry is validated (name ml.FAMILY.SIZE, 1 ≤ vcpus ≤ 1024,
 * 64 ≤ memory_mib ≤ 64 TiB, 0 ≤ gpus ≤ 64, device_kind a CDI kind) and
 * the whole table is refused on the first bad one. (devices) "gpus" is how
 * many whole devices of the CDI kind "device_kind" each instance reserves
 * (absent: berthd's accelerator_kind, nvidia.com/gpu; devices.h). Read-only once loaded, so threads share it freely. */
#ifndef BERTH_INSTANCE_TYPES_H
#define BERTH_INSTANCE_TYPES_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

struct instance_type {
	char *name;
	int vcpus;
	long long memory_mib;
	int gpus;
	char *device_kind; /* NULL: the configured default kind */
};

struct instance_types {
	struct instance_type *types; /* in document order */
	size_t n;
};

int instance_types_parse(const char *text, size_t len, struct instance_types *out, struct berth_err *err);
/* path NULL: the table compiled into berthd (embedded_configs.h). */
int instance_types_load(const char *path, struct instance_types *out, struct berth_err *err);
const struct instance_type *instance_types_find(const struct instance_types *t, const char *name);
/* "[ml.t2.medium, ml.t2.large, …]", as in SageMaker's enum messages. */
void instance_types_list(const struct instance_types *t, struct berth_buf *out);
void instance_types_free(struct instance_types *t);

#endif
