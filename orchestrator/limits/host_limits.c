/* host_limits.c — see host_limits.h. */
#include "host_limits.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices.h"
#include "fsutil.h"
#include "log.h"

static long long mem_total_bytes(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	long long kib = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %lld kB", &kib) == 1)
			break;
	return kib * 1024;
}

int limits_init(struct limits *l, const char *types_path, struct berth_err *err)
{
	memset(l, 0, sizeof(*l));
	l->cpu_overcommit = l->memory_overcommit = 1.0;
	l->pids_limit = 4096;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	l->host_cpus = cpus > 0 ? (int)cpus : 1;
	l->host_memory_bytes = mem_total_bytes();
	if (l->host_memory_bytes <= 0)
		return berth_err_set(err, errno, "cannot read MemTotal from /proc/meminfo");
	return instance_types_load(types_path, &l->types, err);
}

void limits_free(struct limits *l)
{
	instance_types_free(&l->types);
}

int limits_of_type(const struct limits *l, const char *type, struct cgroup_limits *out)
{
	const struct instance_type *t = instance_types_find(&l->types, type);
	memset(out, 0, sizeof(*out));
	if (t == NULL)
		return -1;
	out->cpu_quota_us = (long long)t->vcpus * CGROUP_CPU_PERIOD_US;
	out->memory_bytes = t->memory_mib << 20;
	out->pids = l->pids_limit;
	return 0;
}

int limits_instance_type_check(void *limits, const char *instance_type, struct berth_err *err)
{
	const struct limits *l = limits;
	if (instance_types_find(&l->types, instance_type) != NULL)
		return 0;
	struct berth_buf list = BERTH_BUF_INIT;
	instance_types_list(&l->types, &list);
	berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "Member must satisfy enum value set: %s",
		       list.data ? list.data : "[]");
	buf_free(&list);
	return -1;
}

struct usage {
	long long vcpus;
	long long memory_mib;
	long long instances;
};

static void add_variants(const struct limits *l, const struct variant *v, size_t n, struct usage *u)
{
	for (size_t i = 0; i < n; i++) {
		const struct instance_type *t = instance_types_find(&l->types, v[i].instance_type);
		if (t == NULL)
			continue; /* made with another table: counts for nothing it cannot name */
		u->vcpus += (long long)t->vcpus * v[i].initial_instance_count;
		u->memory_mib += t->memory_mib * v[i].initial_instance_count;
		u->instances += v[i].initial_instance_count;
	}
}

static int holds_resources(const char *status)
{
	static const char *const holding[] = { "Creating", "InService", "Updating", "SystemUpdating", "RollingBack" };
	for (size_t i = 0; status && i < BERTH_ARRAY_SIZE(holding); i++)
		if (strcmp(status, holding[i]) == 0)
			return 1;
	return 0;
}

static void format_gib(char *out, size_t len, double mib)
{
	snprintf(out, len, "%.4g GiB", mib / 1024.0);
}

int limits_endpoint_fits(void *limits, const struct endpoint_config *c, struct berth_err *err)
{
	const struct limits *l = limits;
	struct usage used = { 0 }, delta = { 0 };
	for (size_t i = 0; l->store && i < store_count_endpoints(l->store); i++) {
		const struct endpoint *e = store_endpoint_at(l->store, i);
		if (!holds_resources(e->status))
			continue;
		if (e->n_variants > 0) {
			add_variants(l, e->variants, e->n_variants, &used);
		} else {
			const struct endpoint_config *ec = store_get_endpoint_config(l->store, e->config_name);
			if (ec != NULL)
				add_variants(l, ec->variants, ec->n_variants, &used);
		}
	}
	add_variants(l, c->variants, c->n_variants, &delta);
	double cpu_cap = l->host_cpus * l->cpu_overcommit;
	double mem_cap_mib = (double)l->host_memory_bytes / (1024.0 * 1024.0) * l->memory_overcommit;
	bool cpu_ok = (double)(used.vcpus + delta.vcpus) <= cpu_cap + 1e-9;
	bool mem_ok = (double)(used.memory_mib + delta.memory_mib) <= mem_cap_mib + 1e-9;
	if (cpu_ok && mem_ok) /* (devices) and the accelerators it reserves */
		return devices_fit(limits, c->variants, c->n_variants, NULL, 0, err);
	char cap_mem[32], used_mem[32], delta_mem[32];
	format_gib(cap_mem, sizeof(cap_mem), mem_cap_mib);
	format_gib(used_mem, sizeof(used_mem), (double)used.memory_mib);
	format_gib(delta_mem, sizeof(delta_mem), (double)delta.memory_mib);
	struct berth_buf what = BERTH_BUF_INIT;
	for (size_t i = 0; i < c->n_variants; i++)
		buf_printf(&what, "%s%lld x %s", i ? ", " : "", c->variants[i].initial_instance_count,
			   c->variants[i].instance_type);
	/* SageMaker: "The account-level service limit 'ml.m5.large for endpoint
	 * usage' is 2 Instances, with current utilization of 2 Instances and a
	 * request delta of 1 Instances. Please use AWS Service Quotas …" */
	if (!cpu_ok)
		berth_err_setc(err, BERTH_ERR_RESOURCE_LIMIT, 0,
			       "The host-level service limit 'vCPUs for endpoint usage' is %.4g vCPUs (%d CPUs x "
			       "cpu_overcommit %.4g), with current utilization of %lld vCPUs and a request delta of %lld "
			       "vCPUs (%s). Delete an endpoint or raise cpu_overcommit in berthd.json to fit it.",
			       cpu_cap, l->host_cpus, l->cpu_overcommit, used.vcpus, delta.vcpus,
			       what.data ? what.data : "");
	else
		berth_err_setc(err, BERTH_ERR_RESOURCE_LIMIT, 0,
			       "The host-level service limit 'memory for endpoint usage' is %s (MemTotal x "
			       "memory_overcommit %.4g), with current utilization of %s and a request delta of %s (%s). "
			       "Delete an endpoint or raise memory_overcommit in berthd.json to fit it.",
			       cap_mem, l->memory_overcommit, used_mem, delta_mem, what.data ? what.data : "");
	buf_free(&what);
	return -1;
}

void limits_place(const struct limits *l, const char *endpoint, const struct endpoint_container *c,
		  struct container_placement *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->instance, sizeof(out->instance), "%s-%lld", c->variant ? c->variant : "AllTraffic", c->instance);
	if (l == NULL)
		return;
	_cleanup_free_ char *path = fs_path("%s/endpoints/%s.json", l->state_dir, endpoint);
	struct berth_buf doc = BERTH_BUF_INIT;
	struct berth_err err;
	struct endpoint *e = NULL;
	if (path != NULL && fs_read_file(path, &doc, 16u << 20, &err) == 0 && doc.data != NULL)
		e = endpoint_from_json(doc.data, doc.len, &err);
	buf_free(&doc);
	if (e == NULL) {
		log_warn("endpoint %s: cannot read its record to place its containers; no instance limits", endpoint);
		return;
	}
	/* the container's variant; else (older records) the endpoint's; else the first */
	const char *want = c->variant ? c->variant : e->variant_name;
	const struct variant *v = NULL;
	for (size_t i = 0; i < e->n_variants; i++)
		if (v == NULL || (want && strcmp(e->variants[i].variant_name, want) == 0))
			v = &e->variants[i];
	if (v != NULL) {
		snprintf(out->instance, sizeof(out->instance), "%s-%lld", v->variant_name, c->instance);
		snprintf(out->instance_type, sizeof(out->instance_type), "%s", v->instance_type ? v->instance_type : "");
		if (limits_of_type(l, v->instance_type, &out->lim) < 0)
			log_warn("endpoint %s: instance type %s is not in the table; no instance limits", endpoint,
				 v->instance_type ? v->instance_type : "?");
	}
	endpoint_free(e);
}
