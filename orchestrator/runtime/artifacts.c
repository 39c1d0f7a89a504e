/* artifacts.c — `berth artifacts`, `berth artifacts prune` and the trim
 * after containers go: the model data cache (artifact_cache.h) seen with
 * the endpoints whose containers hold each entry. */
#include "runtime_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "artifact_cache.h"
#include "json.h"
#include "log.h"

/* The endpoint whose record lists container id; NULL if none. With *lock held. */
static const char *endpoint_of(struct runtime *rt, const char *id)
{
	for (size_t i = 0; i < store_count_endpoints(rt->store); i++) {
		const struct endpoint *e = store_endpoint_at(rt->store, i);
		for (size_t j = 0; j < e->n_containers; j++)
			if (strcmp(e->containers[j].id, id) == 0)
				return e->name;
	}
	return NULL;
}

static int gen_entry(struct runtime *rt, yajl_gen g, const struct artifact_entry *a)
{
	if (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_kv_str(g, "key", a->key) < 0 ||
	    json_gen_kv_str(g, "url", a->url) < 0 || json_gen_kv_int(g, "bytes", (long long)a->bytes) < 0 ||
	    json_gen_kv_int(g, "last_used", a->last_used) < 0 || json_gen_str(g, "endpoints") < 0 ||
	    yajl_gen_array_open(g) != yajl_gen_status_ok)
		return -1;
	for (size_t i = 0; i < a->n_holders; i++) {
		const char *ep = endpoint_of(rt, a->holders[i]);
		bool seen = false; /* one name per endpoint, whatever its instance count */
		for (size_t j = 0; ep && j < i; j++) {
			const char *other = endpoint_of(rt, a->holders[j]);
			seen = seen || (other && strcmp(other, ep) == 0);
		}
		if (ep != NULL && !seen && json_gen_str(g, ep) < 0)
			return -1;
	}
	return yajl_gen_array_close(g) == yajl_gen_status_ok && yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
}

static void list(struct runtime *rt, struct berth_buf *out)
{
	struct artifact_entry *v = NULL;
	size_t n = 0;
	struct berth_err err;
	if (artifact_cache_list(rt->cfg.state_dir, &v, &n, &err) < 0) {
		json_answer_error(out, err.msg);
		return;
	}
	yajl_gen g = json_gen_new();
	bool ok = g && yajl_gen_map_open(g) == yajl_gen_status_ok && json_gen_kv_bool(g, "ok", true) == 0 &&
		  json_gen_str(g, "artifacts") == 0 && yajl_gen_array_open(g) == yajl_gen_status_ok;
	pthread_mutex_lock(rt->lock);
	for (size_t i = 0; ok && i < n; i++)
		ok = gen_entry(rt, g, &v[i]) == 0;
	pthread_mutex_unlock(rt->lock);
	ok = ok && yajl_gen_array_close(g) == yajl_gen_status_ok && yajl_gen_map_close(g) == yajl_gen_status_ok;
	if (ok)
		json_gen_finish(g, out); /* frees g */
	else {
		if (g)
			yajl_gen_free(g);
		json_answer_error(out, "out of memory listing the model data cache");
	}
	artifact_entries_free(v, n);
}

void runtime_artifacts(struct runtime *rt, const char *op, struct berth_buf *out)
{
	if (strcmp(op, "artifacts") == 0) {
		list(rt, out);
		return;
	}
	size_t removed = 0;
	uint64_t freed = 0;
	struct berth_err err;
	if (artifact_cache_prune(rt->cfg.state_dir, 0, &removed, &freed, &err) < 0) {
		json_answer_error(out, err.errnum == EWOULDBLOCK
					 ? "A container is starting and resolving its model data; nothing was removed. "
					   "Try berth artifacts prune again when it is up."
					 : err.msg);
		return;
	}
	log_info("artifacts prune asked on the admin socket: %zu entries removed, %llu bytes", removed,
		 (unsigned long long)freed);
	buf_printf(out, "{\"ok\":true,\"removed\":%zu,\"bytes\":%llu}", removed, (unsigned long long)freed);
}

void runtime_trim_artifacts(struct runtime *rt)
{
	if (rt->cfg.artifact_cache_max_bytes == 0)
		return;
	size_t removed = 0;
	uint64_t freed = 0;
	struct berth_err err;
	if (artifact_cache_prune(rt->cfg.state_dir, rt->cfg.artifact_cache_max_bytes, &removed, &freed, &err) < 0) {
		if (err.errnum != EWOULDBLOCK) /* a start holds it: the next trim comes */
			log_warn("artifact cache: %s", err.msg);
	} else if (removed > 0) {
		log_info("artifact cache: over artifact_cache_max_bytes (%llu): removed %zu entries no container "
			 "holds, %llu bytes",
			 rt->cfg.artifact_cache_max_bytes, removed, (unsigned long long)freed);
	}
}
