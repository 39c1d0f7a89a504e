/* devices.c — see devices.h. */
#include "devices.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdi_registry.h"
#include "device_claims.h"
#include "fsutil.h"
#include "log.h"
#include "json.h"
#include "store.h"

const char *devices_kind(const struct limits *l, const char *instance_type, int *gpus)
{
	const struct instance_type *t = instance_types_find(&l->types, instance_type);
	*gpus = t ? t->gpus : 0;
	if (t == NULL)
		return NULL;
	if (t->device_kind)
		return t->device_kind;
	return l->accelerator_kind ? l->accelerator_kind : DEVICES_DEFAULT_KIND;
}

static bool in(char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

int devices_pick(char *const *usable, size_t n_usable, char *const *held, size_t n_held, size_t count,
		 char ***out)
{
	*out = calloc(count + 1, sizeof(**out));
	if (*out == NULL)
		return -1;
	size_t got = 0;
	for (size_t i = 0; i < n_usable && got < count; i++)
		if (!in(held, n_held, usable[i]) && !in(*out, got, usable[i]) && ((*out)[got] = strdup(usable[i])) != NULL)
			got++;
	if (got < count) {
		cdi_names_free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* Every device name a record holds (each once), skipping endpoint except;
 * then those of fresh. Pointers into the records: valid under the lock. */
static char **held_names(const struct limits *l, const char *except, const struct endpoint_container *fresh,
			 size_t n_fresh, char *const *extra, size_t n_extra, size_t *n)
{
	size_t cap = n_extra;
	for (size_t i = 0; l->store && i < store_count_endpoints(l->store); i++) {
		const struct endpoint *e = store_endpoint_at(l->store, i);
		for (size_t j = 0; j < e->n_containers; j++)
			cap += e->containers[j].n_devices;
	}
	for (size_t j = 0; j < n_fresh; j++)
		cap += fresh[j].n_devices;
	char **held = calloc(cap + 1, sizeof(*held));
	*n = 0;
	for (size_t i = 0; held && l->store && i < store_count_endpoints(l->store); i++) {
		const struct endpoint *e = store_endpoint_at(l->store, i);
		if (except && strcmp(e->name, except) == 0)
			continue;
		for (size_t j = 0; j < e->n_containers; j++)
			for (size_t k = 0; k < e->containers[j].n_devices; k++)
				if (!in(held, *n, e->containers[j].devices[k]))
					held[(*n)++] = e->containers[j].devices[k];
	}
	for (size_t j = 0; held && j < n_fresh; j++)
		for (size_t k = 0; k < fresh[j].n_devices; k++)
			if (!in(held, *n, fresh[j].devices[k]))
				held[(*n)++] = fresh[j].devices[k];
	for (size_t j = 0; held && j < n_extra; j++)
		if (!in(held, *n, extra[j]))
			held[(*n)++] = extra[j];
	return held;
}

static bool of_kind(const char *name, const char *kind)
{
	size_t n = strlen(kind);
	return strncmp(name, kind, n) == 0 && name[n] == '=';
}

int devices_reserve(const struct limits *l, const char *instance_type, const char *except,
		    const struct endpoint_container *fresh, size_t n_fresh, char ***out, size_t *n,
		    struct berth_err *err)
{
	*out = NULL;
	*n = 0;
	int gpus = 0;
	const char *kind = devices_kind(l, instance_type, &gpus);
	if (kind == NULL || gpus == 0)
		return 0;
	char **usable = NULL;
	size_t n_usable = 0, n_held = 0, n_others = 0;
	char **others = device_claims_read(l->claims_dir, l->identity, &n_others, NULL);
	_cleanup_free_ char **held = held_names(l, except, fresh, n_fresh, others, n_others, &n_held);
	if (held == NULL || (l->cdi != NULL && cdi_registry_usable(l->cdi, kind, held, n_held, &usable, &n_usable) < 0)) {
		cdi_names_free(others);
		return berth_err_set(err, ENOMEM, "devices");
	}
	int r = 0;
	if (devices_pick(usable, n_usable, held, n_held, (size_t)gpus, out) < 0)
		r = berth_err_setc(err, BERTH_ERR_RESOURCE_LIMIT, 0,
				   "An instance of %s needs %d %s device%s and fewer are free now; delete an endpoint that "
				   "holds %s devices and create this one again.",
				   instance_type, gpus, kind, gpus == 1 ? "" : "s", kind);
	else
		*n = (size_t)gpus;
	cdi_names_free(usable);
	cdi_names_free(others);
	if (r == 0) { /* claimed host-wide before anyone else can look */
		size_t n_mine = 0;
		_cleanup_free_ char **mine = held_names(l, except, fresh, n_fresh, *out, *n, &n_mine);
		if (mine != NULL)
			devices_publish(l, mine, n_mine);
	}
	return r;
}

static bool holds_resources(const char *status)
{
	static const char *const holding[] = { "Creating", "InService", "Updating", "SystemUpdating", "RollingBack" };
	for (size_t i = 0; status && i < BERTH_ARRAY_SIZE(holding); i++)
		if (strcmp(status, holding[i]) == 0)
			return true;
	return false;
}

static long long demand(const struct limits *l, const char *kind, const struct variant *v, size_t n)
{
	long long d = 0;
	for (size_t i = 0; v && i < n; i++) {
		int gpus = 0;
		const char *k = devices_kind(l, v[i].instance_type, &gpus);
		if (k && gpus > 0 && strcmp(k, kind) == 0)
			d += (long long)gpus * v[i].initial_instance_count;
	}
	return d;
}

/* Devices of kind endpoints holding resources must still take (their
 * demand less what their records hold already). */
static long long still_to_take(const struct limits *l, const char *kind)
{
	long long total = 0;
	for (size_t i = 0; l->store && i < store_count_endpoints(l->store); i++) {
		const struct endpoint *e = store_endpoint_at(l->store, i);
		if (!holds_resources(e->status))
			continue;
		long long d;
		if (e->n_variants > 0) {
			d = demand(l, kind, e->variants, e->n_variants);
		} else {
			const struct endpoint_config *ec = store_get_endpoint_config(l->store, e->config_name);
			d = ec ? demand(l, kind, ec->variants, ec->n_variants) : 0;
		}
		if (e->pending_config_name != NULL) { /* blue/green: the new fleet beside the old */
			const struct endpoint_config *pc = store_get_endpoint_config(l->store, e->pending_config_name);
			if (pc)
				d += demand(l, kind, pc->variants, pc->n_variants);
		}
		long long recorded = 0;
		char *seen[RESOURCES_MAX_DEVICES * 4];
		size_t n_seen = 0;
		for (size_t j = 0; j < e->n_containers; j++)
			for (size_t k = 0; k < e->containers[j].n_devices; k++) {
				const char *name = e->containers[j].devices[k];
				if (of_kind(name, kind) && !in(seen, n_seen, name) && n_seen < BERTH_ARRAY_SIZE(seen)) {
					seen[n_seen++] = (char *)name;
					recorded++;
				}
			}
		if (d > recorded)
			total += d - recorded;
	}
	return total;
}

static void what_of(const struct variant *v, size_t n, struct berth_buf *out)
{
	for (size_t i = 0; i < n; i++)
		buf_printf(out, "%s%lld x %s", i ? ", " : "", v[i].initial_instance_count, v[i].instance_type);
}

static int fit_kind(const struct limits *l, const char *kind, int per_instance, const char *type,
		    const struct variant *want, size_t n_want, const struct variant *have, size_t n_have,
		    struct berth_err *err)
{
	long long delta = demand(l, kind, want, n_want) - demand(l, kind, have, n_have);
	if (delta <= 0)
		return 0;
	/* every device that can be handed out, and those no record holds */
	char **usable = NULL, **free_names = NULL;
	size_t n_usable = 0, n_held = 0, n_free_names = 0, n_others = 0;
	char **others = device_claims_read(l->claims_dir, l->identity, &n_others, NULL);
	_cleanup_free_ char **held = held_names(l, NULL, NULL, 0, others, n_others, &n_held);
	if (held == NULL ||
	    (l->cdi != NULL && (cdi_registry_usable(l->cdi, kind, NULL, 0, &usable, &n_usable) < 0 ||
				cdi_registry_usable(l->cdi, kind, held, n_held, &free_names, &n_free_names) < 0))) {
		cdi_names_free(usable);
		cdi_names_free(others);
		return berth_err_set(err, ENOMEM, "devices");
	}
	struct berth_buf free_list = BERTH_BUF_INIT;
	long long n_free = (long long)n_free_names;
	for (size_t i = 0; i < n_free_names; i++)
		buf_printf(&free_list, "%s%s", i ? ", " : "", free_names[i]);
	cdi_names_free(free_names);
	long long pending = still_to_take(l, kind);
	long long available = n_free - pending;
	long long held_of_kind = 0;
	for (size_t i = 0; held && i < n_held; i++) /* held and not usable now: still the host's */
		held_of_kind += of_kind(held[i], kind) && !in(usable, n_usable, held[i]);
	long long total = (long long)n_usable + held_of_kind, in_use = total - n_free + pending;
	bool any = l->cdi != NULL && cdi_registry_has_kind(l->cdi, kind);
	int r = 0;
	struct berth_buf what = BERTH_BUF_INIT;
	what_of(want, n_want, &what);
	if (held == NULL) {
		r = berth_err_set(err, ENOMEM, "devices");
	} else if (!any) {
		r = berth_err_setc(err, BERTH_ERR_RESOURCE_LIMIT, 0,
				   "%s needs %d %s device%s per instance, and this host has no devices of kind %s (no CDI "
				   "spec in the directories cdi_spec_dirs names defines one). Use an instance type without "
				   "GPUs, or install the devices' CDI spec (nvidia-ctk cdi generate).",
				   type, per_instance, kind, per_instance == 1 ? "" : "s", kind);
	} else if ((long long)per_instance > total) {
		r = berth_err_setc(err, BERTH_ERR_RESOURCE_LIMIT, 0,
				   "%s needs %d %s devices per instance, and this host has %lld. Use an instance type with "
				   "at most %lld GPUs, or add devices.",
				   type, per_instance, kind, total, total);
	} else if (delta > available) {
		r = berth_err_setc(err, BERTH_ERR_RESOURCE_LIMIT, 0,
				   "The host-level service limit '%s devices for endpoint usage' is %lld devices, with "
				   "current utilization of %lld devices and a request delta of %lld devices (%s). Free "
				   "devices: %s. Delete an endpoint that holds %s devices, or add devices, to fit it.",
				   kind, total, in_use, delta,
				   what.data ? what.data : "", available > 0 && free_list.data ? free_list.data : "none",
				   kind);
	}
	buf_free(&what);
	buf_free(&free_list);
	cdi_names_free(usable);
	cdi_names_free(others);
	return r;
}

int devices_fit(void *limits, const struct variant *want, size_t n_want, const struct variant *have,
		size_t n_have, struct berth_err *err)
{
	const struct limits *l = limits;
	if (l->cdi != NULL)
		cdi_registry_refresh(l->cdi);
	for (size_t i = 0; i < n_want; i++) {
		int gpus = 0;
		const char *kind = devices_kind(l, want[i].instance_type, &gpus);
		bool done = false; /* each kind once */
		for (size_t j = 0; kind && j < i && !done; j++) {
			int g2 = 0;
			const char *k2 = devices_kind(l, want[j].instance_type, &g2);
			done = k2 && g2 > 0 && strcmp(k2, kind) == 0;
		}
		if (kind && gpus > 0 && !done &&
		    fit_kind(l, kind, gpus, want[i].instance_type, want, n_want, have, n_have, err) < 0)
			return -1;
	}
	return 0;
}

/* The endpoint, variant and instance whose record holds name. */
static const struct endpoint *holder(const struct limits *l, const char *name, const struct endpoint_container **c)
{
	for (size_t i = 0; l->store && i < store_count_endpoints(l->store); i++) {
		const struct endpoint *e = store_endpoint_at(l->store, i);
		for (size_t j = 0; j < e->n_containers; j++)
			if (in(e->containers[j].devices, e->containers[j].n_devices, name)) {
				*c = &e->containers[j];
				return e;
			}
	}
	return NULL;
}

int devices_describe(const struct limits *l, struct berth_buf *out)
{
	struct cdi_registry_listing list = { 0 };
	if (l->cdi != NULL && cdi_registry_list(l->cdi, &list) < 0)
		return -1;
	size_t n_others = 0;
	char **owners = NULL;
	char **others = device_claims_read(l->claims_dir, l->identity, &n_others, &owners);
	yajl_gen g = json_gen_new();
	if (g == NULL) {
		cdi_registry_listing_free(&list);
		cdi_names_free(others);
		cdi_names_free(owners);
		return -1;
	}
	yajl_gen_map_open(g);
	json_gen_kv_bool(g, "ok", true);
	json_gen_str(g, "dirs");
	yajl_gen_array_open(g);
	for (size_t i = 0; l->cdi && i < l->cdi->n_dirs; i++)
		json_gen_str(g, l->cdi->dirs[i]);
	yajl_gen_array_close(g);
	json_gen_str(g, "devices");
	yajl_gen_array_open(g);
	/* every listed device, then held ones no spec defines any more */
	for (size_t i = 0; i < list.n_devices; i++) {
		const struct cdi_registry_device *d = &list.devices[i];
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "name", d->name);
		json_gen_kv_str(g, "kind", d->kind);
		json_gen_kv_str(g, "spec", d->spec_path);
		json_gen_kv_str(g, "health", d->health ? d->health : "ok");
		const struct endpoint_container *c = NULL;
		const struct endpoint *e = holder(l, d->name, &c);
		if (e != NULL) {
			json_gen_kv_str(g, "endpoint", e->name);
			json_gen_kv_str(g, "variant", endpoint_container_variant(e, c));
			json_gen_kv_int(g, "instance", c->instance);
		}
		for (size_t k = 0; e == NULL && k < n_others; k++)
			if (strcmp(others[k], d->name) == 0 && owners && owners[k]) {
				json_gen_kv_str(g, "berthd", owners[k]); /* another berthd of this host */
				break;
			}
		yajl_gen_map_close(g);
	}
	for (size_t i = 0; l->store && i < store_count_endpoints(l->store); i++) {
		const struct endpoint *e = store_endpoint_at(l->store, i);
		for (size_t j = 0; j < e->n_containers; j++)
			for (size_t k = 0; k < e->containers[j].n_devices; k++) {
				const char *name = e->containers[j].devices[k];
				bool listed = false, earlier = false;
				for (size_t m = 0; m < list.n_devices && !listed; m++)
					listed = strcmp(list.devices[m].name, name) == 0;
				const struct endpoint_container *c = NULL;
				earlier = holder(l, name, &c) != e || c != &e->containers[j];
				if (listed || earlier)
					continue;
				const char *eq = strchr(name, '=');
				yajl_gen_map_open(g);
				json_gen_kv_str(g, "name", name);
				if (eq)
					json_gen_strn(g, "kind", 4), json_gen_strn(g, name, (size_t)(eq - name));
				json_gen_kv_str(g, "health", "no CDI spec defines it any more");
				json_gen_kv_str(g, "endpoint", e->name);
				json_gen_kv_str(g, "variant", endpoint_container_variant(e, &e->containers[j]));
				json_gen_kv_int(g, "instance", e->containers[j].instance);
				yajl_gen_map_close(g);
			}
	}
	yajl_gen_array_close(g);
	json_gen_str(g, "problems");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < list.n_problems; i++) {
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "file", list.problems[i].path);
		json_gen_kv_str(g, "error", list.problems[i].message);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	cdi_registry_listing_free(&list);
	cdi_names_free(others);
	cdi_names_free(owners);
	return json_gen_finish(g, out);
}

void devices_publish(const struct limits *l, char *const *extra, size_t n_extra)
{
	if (l->claims_dir == NULL || l->identity == NULL)
		return;
	size_t n = 0;
	_cleanup_free_ char **mine = held_names(l, NULL, NULL, 0, extra, n_extra, &n);
	struct berth_err err;
	if (mine != NULL && device_claims_write(l->claims_dir, l->identity, mine, n, &err) < 0)
		log_warn("cannot publish the devices this berthd holds: %s", err.msg);
}
