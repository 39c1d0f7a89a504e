/* cgroup_usage.c — see cgroup_usage.h. */
#include "cgroup_usage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "json.h"

/* Reads the first number in a file; false when absent or unreadable. */
static bool read_number(const char *path, const char *key, long long *out)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (f == NULL)
		return false;
	char line[256];
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = line;
		if (key != NULL) {
			size_t n = strlen(key);
			if (strncmp(line, key, n) != 0 || line[n] != ' ')
				continue;
			p = line + n + 1;
		}
		char *end;
		long long v = strtoll(p, &end, 10);
		if (end == p)
			return false;
		*out = v;
		return true;
	}
	return false;
}

/* Tries each mount directory for DIR/PATH/FILE. */
static bool read_in(const char *const *dirs, const char *path, const char *file, const char *key, long long *out)
{
	for (size_t i = 0; dirs[i] != NULL; i++) {
		_cleanup_free_ char *p = fs_path("%s%s/%s", dirs[i], path, file);
		if (p != NULL && read_number(p, key, out))
			return true;
	}
	return false;
}

void cgroup_usage_read(pid_t pid, struct cgroup_usage *u)
{
	memset(u, 0, sizeof(*u));
	_cleanup_free_ char *proc = fs_path("/proc/%d/cgroup", (int)pid);
	_cleanup_fclose_ FILE *f = proc ? fopen(proc, "re") : NULL;
	if (f == NULL)
		return;
	char line[4096];
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		/* "ID:CONTROLLERS:PATH"; v2 has ID 0 and no controllers */
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2 == NULL)
			continue;
		*c2 = '\0';
		const char *controllers = c1 + 1, *path = c2 + 1;
		long long v;
		if (*controllers == '\0') {
			static const char *const v2[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified", NULL };
			if (!u->has_memory && read_in(v2, path, "memory.current", NULL, &v)) {
				u->has_memory = true;
				u->memory_bytes = v;
			}
			if (!u->has_cpu && read_in(v2, path, "cpu.stat", "usage_usec", &v)) {
				u->has_cpu = true;
				u->cpu_seconds = (double)v / 1e6;
			}
			continue;
		}
		if (strstr(controllers, "memory") != NULL) {
			static const char *const mem[] = { "/sys/fs/cgroup/memory", NULL };
			if (read_in(mem, path, "memory.usage_in_bytes", NULL, &v)) {
				u->has_memory = true;
				u->memory_bytes = v;
			}
		}
		if (strstr(controllers, "cpuacct") != NULL) {
			static const char *const cpu[] = { "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct",
							   "/sys/fs/cgroup/cpuacct,cpu", NULL };
			if (read_in(cpu, path, "cpuacct.usage", NULL, &v)) {
				u->has_cpu = true;
				u->cpu_seconds = (double)v / 1e9;
			}
		}
	}
}

void cgroup_usage_gen(pid_t pid, yajl_gen g)
{
	struct cgroup_usage u;
	cgroup_usage_read(pid, &u);
	if (u.has_memory)
		json_gen_kv_int(g, "memory_bytes", u.memory_bytes);
	if (u.has_cpu)
		json_gen_kv_double(g, "cpu_seconds", u.cpu_seconds);
}
