/* cgroup.h — where berth's cgroups live, on cgroup v1, v2 and hybrid hosts
 * alike (detected from /proc/self/mountinfo, never assumed).
 *
 * ROOT is the berthd instance's identity (identity.h): "berth" for the
 * default state directory, "berth-HASH" for any other, so two berthds on
 * one host have disjoint trees and never list or remove each other's.
 *
 *   /ROOT/ENDPOINT/INSTANCE         one per endpoint instance, made by
 *                                   berthd, which writes the instance's
 *                                   limits there (CPU quota, memory, pids)
 *   /ROOT/ENDPOINT/INSTANCE/ID      one per container, made by runc and
 *                                   removed by `runc delete`
 *
 * so an instance's containers share its CPU and memory as on SageMaker.
 * v2: cpu.max, memory.max (memory.swap.max 0), pids.max, with cpu, memory
 * and pids enabled in cgroup.subtree_control from the mount's root down to
 * the instance (only those the hierarchy offers). v1: cpu.cfs_period_us /
 * cpu.cfs_quota_us, memory.limit_in_bytes (and memory.memsw.limit_in_bytes
 * when swap is accounted), pids.max, each in the hierarchy that carries the
 * controller. Directories are made only in those hierarchies; runc makes
 * the rest. Removal walks every hierarchy. */
#ifndef BERTH_CGROUP_H
#define BERTH_CGROUP_H

#include <stddef.h>

#include "err.h"

#define CGROUP_CPU_PERIOD_US 100000

struct cgroup_limits {
	long long cpu_quota_us;  /* per CGROUP_CPU_PERIOD_US; 0: none */
	long long memory_bytes;  /* 0: none */
	long long pids;          /* 0: none */
};

/* The cgroupsPath runc gets for a container, "/ROOT/ENDPOINT/ID" (no
 * instance level; kept for callers that have no instance). Caller frees. */
char *cgroup_container_path(const char *root, const char *endpoint, const char *id);
/* "/ROOT/ENDPOINT/INSTANCE/ID". Caller frees. */
char *cgroup_container_path_in(const char *root, const char *endpoint, const char *instance, const char *id);
/* Creates /ROOT/ENDPOINT/INSTANCE where a limited controller lives and
 * writes lim there; idempotent (an existing directory gets lim again). */
int cgroup_instance_setup(const char *root, const char *endpoint, const char *instance,
			  const struct cgroup_limits *lim, struct berth_err *err);
/* Removes everything under /ROOT/ENDPOINT (leaves first; busy ones stay)
 * in every hierarchy, then "/ROOT" itself when empty. ids is unused (the
 * whole subtree goes) and kept for the callers' sake. */
int cgroup_remove_endpoint(const char *root, const char *endpoint, const char *const *ids, size_t n_ids,
			   struct berth_err *err);
/* Names of the directories under /ROOT in any hierarchy (each once),
 * leaving out those made (in any hierarchy) less than min_age_s seconds
 * ago (a berthd of an older version, which used /berth whatever its state
 * directory, may be starting them). Caller frees each and the array. */
int cgroup_list_endpoints(const char *root, int min_age_s, char ***names, size_t *n, struct berth_err *err);

#endif
