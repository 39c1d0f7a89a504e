/* ps.c — `berth ps`: one row per container (proto_control.h kind 3):
 * state from its shim, health from health.c, usage from its cgroup. */
#include "runtime_internal.h"

#include <stdlib.h>
#include <string.h>

#include "cgroup_usage.h"
#include "json.h"
#include "shim_client.h"
#include "store.h"

int runtime_ps(struct runtime *rt, struct berth_buf *out)
{
	struct row {
		char *endpoint;
		struct endpoint_container c;
		long long healthy_for_ms;
		int failures;
	};
	pthread_mutex_lock(rt->lock);
	size_t total = 0;
	for (size_t i = 0; i < store_count_endpoints(rt->store); i++)
		total += store_endpoint_at(rt->store, i)->n_containers;
	struct row *rows = calloc(total + 1, sizeof(*rows));
	size_t k = 0;
	for (size_t i = 0; rows && i < store_count_endpoints(rt->store); i++) {
		const struct endpoint *e = store_endpoint_at(rt->store, i);
		for (size_t j = 0; j < e->n_containers; j++, k++) {
			rows[k].endpoint = strdup(e->name);
			endpoint_container_copy(&rows[k].c, &e->containers[j]);
			if (rows[k].c.variant == NULL)
				rows[k].c.variant = strdup(endpoint_container_variant(e, &e->containers[j]));
			health_describe(rt, e->containers[j].id, &rows[k].healthy_for_ms, &rows[k].failures);
		}
	}
	pthread_mutex_unlock(rt->lock);
	if (rows == NULL)
		return -1;
	yajl_gen g = json_gen_new();
	yajl_gen_map_open(g);
	json_gen_str(g, "containers");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < k; i++) {
		struct shim_state st;
		struct berth_err err;
		bool reachable = shim_get_state(rows[i].c.socket, &st, &err) == 0;
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "endpoint", rows[i].endpoint);
		json_gen_kv_str(g, "hostname", rows[i].c.hostname);
		json_gen_kv_str(g, "id", rows[i].c.id);
		json_gen_kv_str(g, "state", reachable && st.running ? "running" : "stopped");
		json_gen_kv_int(g, "pid", reachable ? st.pid : 0);
		json_gen_kv_str(g, "log", rows[i].c.log);
		json_gen_kv_str(g, "variant", rows[i].c.variant ? rows[i].c.variant : "");
		json_gen_kv_int(g, "instance", rows[i].c.instance);
		json_gen_kv_int(g, "restarts", rows[i].c.restarts);
		json_gen_kv_str(g, "health", rows[i].c.pending ? "starting"
					   : rows[i].c.retiring ? "draining"
					   : rows[i].c.down ? "down" : "healthy");
		json_gen_kv_int(g, "ping_failures", rows[i].failures);
		if (reachable && st.running && st.started_at > 0)
			json_gen_kv_double(g, "started_at", st.started_at);
		if (reachable && st.running && st.pid > 0)
			cgroup_usage_gen(st.pid, g);
		yajl_gen_map_close(g);
		free(rows[i].endpoint);
		endpoint_container_clear(&rows[i].c);
	}
	free(rows);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	return json_gen_finish(g, out);
}
