/* async_record.c — the asynchronous queue's records on disk (one
 * STATE_DIR/async/ID.json per request), a request's failure object, and
 * the queues' figures; below the scheduler (async_run.c) and the queue's
 * entry points (async.c). */
#include "async_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "objstore.h"
#include "store.h"

void async_item_free(struct async_item *it)
{
	if (it == NULL)
		return;
	free(it->endpoint);
	free(it->input);
	free(it->output_url);
	free(it->failure_url);
	free(it->content_type);
	free(it->accept);
	free(it->custom_attributes);
	free(it->inference_id);
	free(it->instance_key);
	for (size_t i = 0; i < it->n_steps; i++)
		free(it->steps[i]);
	free(it);
}

static char *record_path(const struct async_queue *q, const char *id)
{
	return fs_path("%s/" ASYNC_DIR "/%s.json", q->rt->cfg.state_dir, id);
}

static int gen_opt(yajl_gen g, const char *key, const char *v)
{
	return v ? json_gen_kv_str(g, key, v) : 0;
}

int async_item_persist(struct async_queue *q, const struct async_item *it, struct berth_err *err)
{
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return berth_err_set(err, ENOMEM, "asynchronous request record");
	struct berth_buf doc = BERTH_BUF_INIT;
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "id", it->id);
	json_gen_kv_str(g, "endpoint", it->endpoint);
	json_gen_kv_str(g, "input", it->input);
	json_gen_kv_str(g, "output", it->output_url);
	json_gen_kv_str(g, "failure", it->failure_url);
	gen_opt(g, "content_type", it->content_type);
	gen_opt(g, "accept", it->accept);
	gen_opt(g, "custom_attributes", it->custom_attributes);
	gen_opt(g, "inference_id", it->inference_id);
	json_gen_kv_int(g, "enqueued_ms", it->enqueued_ms);
	json_gen_kv_int(g, "ttl_s", it->ttl_s);
	json_gen_kv_int(g, "timeout_s", it->timeout_s);
	json_gen_kv_bool(g, "notify", it->notify);
	yajl_gen_map_close(g);
	_cleanup_free_ char *path = record_path(q, it->id);
	int r = -1;
	if (json_gen_finish(g, &doc) < 0 || path == NULL)
		berth_err_set(err, ENOMEM, "asynchronous request record");
	else
		r = fs_write_atomic(path, doc.data, doc.len, 0600, err);
	buf_free(&doc);
	return r;
}

int async_item_mark_running(struct async_queue *q, const struct async_item *it, struct berth_err *err)
{
	_cleanup_free_ char *dir = fs_path("%s/" ASYNC_DIR, q->rt->cfg.state_dir);
	_cleanup_free_ char *name = fs_path("%s" ASYNC_RUNNING_SUFFIX, it->id);
	if (dir == NULL || name == NULL)
		return berth_err_set(err, ENOMEM, "asynchronous request marker");
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return berth_err_set(err, errno, "%s", dir);
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return berth_err_set(err, errno, "%s/%s", dir, name);
	close(fd);
	/* the empty file has no data: its name in the directory is what must last */
	if (fsync(dfd) < 0)
		return berth_err_set(err, errno, "%s", dir);
	return 0;
}

void async_item_forget(struct async_queue *q, const struct async_item *it)
{
	/* the record first: a marker left alone is removed at the next start */
	_cleanup_free_ char *path = record_path(q, it->id);
	_cleanup_free_ char *marker = fs_path("%s/" ASYNC_DIR "/%s" ASYNC_RUNNING_SUFFIX, q->rt->cfg.state_dir, it->id);
	if (path != NULL && unlink(path) < 0 && errno != ENOENT)
		log_warn("asynchronous request %s: cannot remove its record %s: %s", it->id, path, strerror(errno));
	if (marker != NULL && unlink(marker) < 0 && errno != ENOENT)
		log_warn("asynchronous request %s: cannot remove %s: %s", it->id, marker, strerror(errno));
}

void async_item_fail(struct async_queue *q, struct async_item *it, const char *text, size_t len)
{
	struct objstore_object o = { 0 };
	enum objstore_status st;
	struct berth_err err;
	const struct objstore_config *store = q->rt->cfg.store;
	if (store == NULL || objstore_locate(store, it->failure_url, &o, &st, &err) < 0 ||
	    objstore_put(store, &o, text, len, "text/plain", &st, &err) < 0)
		log_error("asynchronous request %s (InferenceId %s) of endpoint %s failed (%.*s), and its failure "
			  "could not be written to %s: %s",
			  it->id, it->inference_id, it->endpoint, (int)(len > 300 ? 300 : len), text, it->failure_url,
			  store ? err.msg : "no object store");
	else
		log_info("asynchronous request %s (InferenceId %s) of endpoint %s failed: %.*s; written to %s", it->id,
			 it->inference_id, it->endpoint, (int)(len > 300 ? 300 : len), text, it->failure_url);
	if (store != NULL)
		objstore_object_free(&o);
	if (it->notify)
		log_info("asynchronous request %s: notification of its failure not delivered: berth has no SNS", it->id);
	async_item_forget(q, it);
}

/* ---- stats ------------------------------------------------------------------ */

struct endpoint_stats {
	const char *name;
	long long backlog, running, oldest_ms;
};

static struct endpoint_stats *stats_slot(struct endpoint_stats **all, size_t *n, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*all)[i].name, name) == 0)
			return &(*all)[i];
	struct endpoint_stats *grown = realloc(*all, (*n + 1) * sizeof(**all));
	if (grown == NULL)
		return NULL;
	*all = grown;
	grown[*n] = (struct endpoint_stats){ name, 0, 0, 0 };
	return &grown[(*n)++];
}

int runtime_async_render_stats(struct runtime *rt, const char *op, struct berth_buf *out)
{
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return -1;
	pthread_mutex_lock(rt->lock);
	struct async_queue *q = rt->async;
	struct endpoint_stats *all = NULL;
	size_t n = 0;
	if (q != NULL)
		pthread_mutex_lock(&q->mu);
	/* every endpoint with an AsyncInferenceConfig, even an idle one */
	for (size_t i = 0; i < store_count_endpoints(rt->store); i++) {
		const struct endpoint *e = store_endpoint_at(rt->store, i);
		if (e->async.present)
			stats_slot(&all, &n, e->name);
	}
	for (const struct async_item *it = q ? q->head : NULL; it; it = it->next) {
		struct endpoint_stats *s = stats_slot(&all, &n, it->endpoint);
		if (s && s->backlog++ == 0)
			s->oldest_ms = it->enqueued_ms;
	}
	for (const struct async_item *it = q ? q->running : NULL; it; it = it->next) {
		struct endpoint_stats *s = stats_slot(&all, &n, it->endpoint);
		if (s)
			s->running++;
	}
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "op", op);
	json_gen_kv_double(g, "now", clock_epoch_seconds_ms());
	json_gen_str(g, "endpoints");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		const struct endpoint *e = store_get_endpoint(rt->store, all[i].name);
		long long instances = 0;
		for (size_t v = 0; e && v < e->n_variants; v++)
			instances += endpoint_variant_serving_instances(e, e->variants[v].variant_name);
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "endpoint", all[i].name);
		json_gen_kv_int(g, "backlog", all[i].backlog);
		json_gen_kv_int(g, "running", all[i].running);
		json_gen_kv_int(g, "instances", instances);
		json_gen_kv_double(g, "oldest", all[i].backlog ? (double)all[i].oldest_ms / 1000.0 : 0);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	if (q != NULL) {
		q->stats_dirty = false;
		pthread_mutex_unlock(&q->mu);
	}
	pthread_mutex_unlock(rt->lock);
	free(all);
	return json_gen_finish(g, out);
}

