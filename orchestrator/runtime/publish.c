/* publish.c — route publication: the route table document and the routers
 * subscribed to it (proto_control.h kind 2). See runtime_internal.h. */
#include "runtime_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc.h"
#include "json.h"
#include "log.h"
#include "store.h"


int runtime_render_routes(struct runtime *rt, struct berth_buf *out)
{
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return -1;
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "op", "routes");
	json_gen_kv_int(g, "generation", (long long)rt->generation);
	json_gen_kv_str(g, "account", rt->cfg.account);
	json_gen_kv_str(g, "region", rt->cfg.region);
	json_gen_str(g, "endpoints");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < store_count_endpoints(rt->store); i++) {
		const struct endpoint *e = store_endpoint_at(rt->store, i);
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "name", e->name);
		json_gen_kv_str(g, "status", e->status);
		json_gen_str(g, "variants");
		yajl_gen_array_open(g);
		size_t n_variants = e->n_variants > 0 ? e->n_variants : 1;
		for (size_t v = 0; v < n_variants; v++) {
			const char *vname = e->n_variants > 0 ? e->variants[v].variant_name
				: e->variant_name ? e->variant_name : "AllTraffic";
			yajl_gen_map_open(g);
			json_gen_kv_str(g, "name", vname);
			json_gen_kv_double(g, "weight", e->n_variants > 0 ? e->variants[v].initial_weight : 1.0);
			/* each variant is routed by its own model's mode */
			json_gen_kv_str(g, "mode", endpoint_variant_mode(e, v));
			json_gen_str(g, "instances");
			yajl_gen_array_open(g);
			/* only instances whose every container serves; their
			 * containers in record (model) order */
			long long max_instance = -1;
			for (size_t j = 0; j < e->n_containers; j++)
				if (strcmp(endpoint_container_variant(e, &e->containers[j]), vname) == 0 &&
				    e->containers[j].instance > max_instance)
					max_instance = e->containers[j].instance;
			for (long long k = 0; k <= max_instance; k++) {
				if (!endpoint_instance_serving(e, vname, k))
					continue;
				yajl_gen_map_open(g);
				json_gen_str(g, "containers");
				yajl_gen_array_open(g);
				for (size_t j = 0; j < e->n_containers; j++) {
					const struct endpoint_container *c = &e->containers[j];
					if (c->instance != k || c->pending || c->retiring ||
					    strcmp(endpoint_container_variant(e, c), vname) != 0)
						continue;
					yajl_gen_map_open(g);
					json_gen_kv_str(g, "hostname", c->hostname);
					json_gen_kv_str(g, "socket", c->socket);
					json_gen_kv_str(g, "log", c->log);
					yajl_gen_map_close(g);
				}
				yajl_gen_array_close(g);
				yajl_gen_map_close(g);
			}
			yajl_gen_array_close(g);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	return json_gen_finish(g, out);
}

static void drop_watcher(struct runtime *rt, size_t i)
{
	close(rt->watchers[i]);
	rt->watchers[i] = rt->watchers[--rt->n_watchers];
}

void runtime_push_routes(struct runtime *rt)
{
	rt->generation++;
	if (rt->n_watchers == 0)
		return;
	struct berth_buf doc = BERTH_BUF_INIT;
	if (runtime_render_routes(rt, &doc) < 0) {
		log_error("cannot render the route table (out of memory)");
		buf_free(&doc);
		return;
	}
	for (size_t i = 0; i < rt->n_watchers;) {
		struct berth_err err;
		if (ipc_send(rt->watchers[i], doc.data, doc.len, -1, &err) < 0) {
			log_warn("router subscription dropped: %s", err.msg);
			drop_watcher(rt, i);
			continue;
		}
		i++;
	}
	buf_free(&doc);
}

int runtime_add_watch_greeting(struct runtime *rt, runtime_greeting_fn render, void *data)
{
	if (rt->n_greetings >= RUNTIME_MAX_GREETINGS)
		return -1;
	rt->greetings[rt->n_greetings].render = render;
	rt->greetings[rt->n_greetings].data = data;
	rt->n_greetings++;
	return 0;
}

void runtime_send_to_watchers(struct runtime *rt, const char *doc, size_t len)
{
	pthread_mutex_lock(rt->lock);
	for (size_t i = 0; i < rt->n_watchers;) {
		struct berth_err err;
		if (ipc_send(rt->watchers[i], doc, len, -1, &err) < 0) {
			log_warn("router subscription dropped: %s", err.msg);
			drop_watcher(rt, i);
			continue;
		}
		i++;
	}
	pthread_mutex_unlock(rt->lock);
}

void runtime_add_route_watcher(struct runtime *rt, int sock)
{
	struct timeval tv = { 2, 0 }; /* a router that stops reading is dropped */
	setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int *grown = realloc(rt->watchers, (rt->n_watchers + 1) * sizeof(int));
	if (grown == NULL) {
		close(sock);
		return;
	}
	rt->watchers = grown;
	rt->watchers[rt->n_watchers++] = sock;
	struct berth_buf doc = BERTH_BUF_INIT;
	struct berth_err err;
	for (size_t i = 0; i < rt->n_greetings; i++) {
		buf_reset(&doc);
		if (rt->greetings[i].render(rt->greetings[i].data, &doc) < 0 ||
		    ipc_send(sock, doc.data, doc.len, -1, &err) < 0) {
			log_warn("router subscription dropped: its settings could not be sent");
			drop_watcher(rt, rt->n_watchers - 1);
			buf_free(&doc);
			return;
		}
	}
	buf_reset(&doc);
	if (runtime_sessions_render(rt, &doc) < 0 || ipc_send(sock, doc.data, doc.len, -1, &err) < 0) {
		log_warn("router subscription dropped: its stateful session pins could not be sent");
		drop_watcher(rt, rt->n_watchers - 1);
		buf_free(&doc);
		return;
	}
	buf_reset(&doc);
	if (runtime_render_routes(rt, &doc) < 0 || ipc_send(sock, doc.data, doc.len, -1, &err) < 0)
		drop_watcher(rt, rt->n_watchers - 1);
	buf_free(&doc);
	log_info("router subscribed to the route table (%zu subscriber%s)", rt->n_watchers,
		 rt->n_watchers == 1 ? "" : "s");
}
