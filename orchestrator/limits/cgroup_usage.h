/* cgroup_usage.h — memory and CPU a running container has used, read from
 * its own cgroup (found through /proc/PID/cgroup, so it does not depend on
 * where berth places cgroups), on cgroup v1, v2 and hybrid hosts. */
#ifndef BERTH_CGROUP_USAGE_H
#define BERTH_CGROUP_USAGE_H

#include <stdbool.h>
#include <sys/types.h>
#include <yajl/yajl_gen.h>

struct cgroup_usage {
	bool has_memory;
	long long memory_bytes;   /* v1 memory.usage_in_bytes, v2 memory.current */
	bool has_cpu;
	double cpu_seconds;       /* v1 cpuacct.usage, v2 cpu.stat usage_usec */
};

/* Fills what it can find (members stay false otherwise); never fails. */
void cgroup_usage_read(pid_t pid, struct cgroup_usage *u);
/* Writes "memory_bytes" and "cpu_seconds" members (when known) into an open map. */
void cgroup_usage_gen(pid_t pid, yajl_gen g);

#endif
