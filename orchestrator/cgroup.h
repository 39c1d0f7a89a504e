/* cgroup.h — where berth's container cgroups live, on cgroup v1, v2 and
 * hybrid hosts alike (detected from /proc/self/mountinfo, never assumed).
 *
 * runc creates each container's cgroup at "/berth/ENDPOINT/ID" in every
 * mounted hierarchy and removes the leaf on `runc delete`; the parents are
 * berth's to remove when the endpoint goes. */
#ifndef BERTH_CGROUP_H
#define BERTH_CGROUP_H

#include "err.h"

#define CGROUP_ROOT_NAME "berth"

/* The cgroupsPath runc gets for a container. Caller frees. */
char *cgroup_container_path(const char *endpoint, const char *id);
/* Removes ID leaves (if still there and empty) and the endpoint's parent
 * directory in every hierarchy, then "/berth" itself when empty. */
int cgroup_remove_endpoint(const char *endpoint, const char *const *ids, size_t n_ids, struct berth_err *err);

#endif
