/* async.c — InvokeEndpointAsync's durable queue (proto_control.h kind 11):
 * a request is checked, given an ID and written to STATE_DIR/async/ID.json
 * (fs_write_atomic: fsync'd, renamed, directory fsync'd) before berthd
 * answers, so an accepted request survives a kill -9. The record says
 * "queued" until the moment before its input is sent to a container,
 * when it is rewritten "running" (durably, async_run.c); after the
 * output or failure object is written the record is removed. At start a
 * queued record is queued again; a running one was perhaps already
 * computed by the container, so it is not run again: if its output object
 * exists the run had finished (only the removal was lost), else a failure
 * object says berthd restarted while it ran. Exactly once to completion
 * or failure, never twice. docs/design.md, "Asynchronous inference". */
#include "async_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "names.h"
#include "objstore.h"
#include "store.h"

#define ASYNC_RECORD_MAX (64u << 10)
#define ASYNC_TTL_MIN_S 60
#define ASYNC_TTL_MAX_S 21600
#define ASYNC_TTL_DEFAULT_S 21600     /* SageMaker: 6 hours */
#define ASYNC_TIMEOUT_MIN_S 1
#define ASYNC_TIMEOUT_MAX_S 3600
#define ASYNC_TIMEOUT_DEFAULT_S 900   /* SageMaker: 15 minutes */
#define ASYNC_HEADER_MAX 1024
#define ASYNC_INPUT_MAX 1024

/* ---- the queue ------------------------------------------------------------ */

static struct async_queue *queue_of(struct runtime *rt)
{
	if (rt->async != NULL)
		return rt->async;
	struct async_queue *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->rt = rt;
	/* without it a stop waits (briefly) for runs instead of ending them */
	q->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->wake, &ca);
	pthread_condattr_destroy(&ca);
	rt->async = q;
	return q;
}

/* Appends in enqueue order (loading may come in any order). With mu held. */
static void enqueue(struct async_queue *q, struct async_item *it)
{
	it->next = NULL;
	if (q->tail == NULL || q->tail->enqueued_ms <= it->enqueued_ms) {
		if (q->tail)
			q->tail->next = it;
		else
			q->head = it;
		q->tail = it;
		return;
	}
	struct async_item **p = &q->head;
	while (*p && (*p)->enqueued_ms <= it->enqueued_ms)
		p = &(*p)->next;
	it->next = *p;
	*p = it;
}

/* Requests of endpoint queued or running. With mu held. */
static size_t endpoint_count(const struct async_queue *q, const char *endpoint)
{
	size_t n = 0;
	for (const struct async_item *it = q->head; it; it = it->next)
		n += strcmp(it->endpoint, endpoint) == 0;
	for (const struct async_item *it = q->running; it; it = it->next)
		n += strcmp(it->endpoint, endpoint) == 0;
	return n;
}

static int make_uuid(char out[ASYNC_ID_LEN + 1])
{
	unsigned char b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -1;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, ASYNC_ID_LEN + 1, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
		 b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

/* Header values go to the container as they are: printable ASCII only. */
static bool header_value_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* A file name made of the inference ID when it is a safe one, else berth's ID. */
static bool file_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64 || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

static char *join_location(const char *prefix, const char *extension, const char *name)
{
	size_t n = strlen(prefix);
	const char *sep = n > 0 && prefix[n - 1] == '/' ? "" : "/";
	if (extension == NULL)
		return fs_path("%s%s%s", prefix, sep, name);
	size_t e = strlen(extension);
	return fs_path("%s%s%s%s%s", prefix, sep, extension, e > 0 && extension[e - 1] == '/' ? "" : "/", name);
}

struct submit_refusal {
	int status;
	const char *code;
	char message[1024];
};

static void render_refusal(struct berth_buf *out, const struct submit_refusal *r)
{
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return;
	yajl_gen_map_open(g);
	json_gen_kv_bool(g, "ok", false);
	json_gen_kv_int(g, "status", r->status);
	json_gen_kv_str(g, "code", r->code);
	json_gen_kv_str(g, "message", r->message);
	yajl_gen_map_close(g);
	json_gen_finish(g, out);
}

static char *dup_opt(const char *s, bool *nomem)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		*nomem = true;
	return d;
}

/* Builds the item from the router's request and the endpoint record, with
 * *rt->lock held; NULL with r filled. */
static struct async_item *item_from_request(struct runtime *rt, yajl_val req, struct submit_refusal *r)
{
	const char *endpoint = json_get_string(req, "endpoint"), *input = json_get_string(req, "input");
	const char *ct = json_get_string(req, "content_type"), *accept = json_get_string(req, "accept");
	const char *ca = json_get_string(req, "custom_attributes"), *iid = json_get_string(req, "inference_id");
	const char *ext = json_get_string(req, "output_extension"), *fname = json_get_string(req, "filename");
	long long ttl = ASYNC_TTL_DEFAULT_S, timeout = ASYNC_TIMEOUT_DEFAULT_S;
	r->status = 400;
	r->code = "ValidationError";
	if (endpoint == NULL || !name_is_valid(endpoint) || input == NULL || strlen(input) == 0 ||
	    !header_value_ok(input, ASYNC_INPUT_MAX) || (ct && !header_value_ok(ct, ASYNC_HEADER_MAX)) ||
	    (accept && !header_value_ok(accept, ASYNC_HEADER_MAX)) || (ca && !header_value_ok(ca, ASYNC_HEADER_MAX)) ||
	    (iid && (!header_value_ok(iid, 64) || iid[0] == '\0' || iid[0] == ' ')) ||
	    (ext && (!header_value_ok(ext, 512) || strstr(ext, "..") || ext[0] == '/')) ||
	    (fname && !file_name_ok(fname)) || (json_get(req, "ttl_s") && (!json_get_int64(req, "ttl_s", &ttl) ||
									   ttl < ASYNC_TTL_MIN_S || ttl > ASYNC_TTL_MAX_S)) ||
	    (json_get(req, "timeout_s") && (!json_get_int64(req, "timeout_s", &timeout) ||
					     timeout < ASYNC_TIMEOUT_MIN_S || timeout > ASYNC_TIMEOUT_MAX_S))) {
		snprintf(r->message, sizeof(r->message), "The asynchronous inference request is malformed.");
		return NULL;
	}
	const struct endpoint *e = store_get_endpoint(rt->store, endpoint);
	if (e == NULL) {
		snprintf(r->message, sizeof(r->message), "Endpoint %s of account %s not found.", endpoint,
			 rt->cfg.account);
		return NULL;
	}
	if (!e->async.present) {
		snprintf(r->message, sizeof(r->message),
			 "Endpoint %s of account %s is not configured for asynchronous inference: its endpoint "
			 "configuration %s has no AsyncInferenceConfig. Call InvokeEndpoint instead, or update the "
			 "endpoint to a configuration with an AsyncInferenceConfig.",
			 endpoint, rt->cfg.account, e->config_name);
		return NULL;
	}
	if (strcmp(e->status, "Deleting") == 0 || strcmp(e->status, "Failed") == 0) {
		snprintf(r->message, sizeof(r->message),
			 "Endpoint %s of account %s is not InService: its status is %s. Wait until the endpoint is "
			 "InService, then try again.",
			 endpoint, rt->cfg.account, e->status);
		return NULL;
	}
	struct objstore_object o = { 0 };
	enum objstore_status st;
	struct berth_err err;
	if (rt->cfg.store == NULL || objstore_locate(rt->cfg.store, input, &o, &st, &err) < 0) {
		snprintf(r->message, sizeof(r->message), "InputLocation %.300s cannot be read: %.600s", input,
			 rt->cfg.store ? err.msg : "berthd has no object store");
		return NULL;
	}
	objstore_object_free(&o);
	struct async_item *it = calloc(1, sizeof(*it));
	if (it == NULL || make_uuid(it->id) < 0) {
		free(it);
		r->status = 500;
		r->code = "InternalFailure";
		snprintf(r->message, sizeof(r->message), "berthd could not queue the request: %s",
			 it ? "no random numbers" : "out of memory");
		return NULL;
	}
	bool nomem = false;
	it->endpoint = dup_opt(endpoint, &nomem);
	it->input = dup_opt(input, &nomem);
	it->content_type = dup_opt(ct, &nomem);
	it->accept = dup_opt(accept, &nomem);
	it->custom_attributes = dup_opt(ca, &nomem);
	it->inference_id = dup_opt(iid ? iid : it->id, &nomem);
	it->ttl_s = ttl;
	it->timeout_s = timeout;
	it->notify = e->async.has_notification;
	it->enqueued_ms = (long long)(clock_epoch_seconds_ms() * 1000.0);
	/* SageMaker names the result after the inference ID (or Filename) */
	const char *base = fname ? fname : (iid && file_name_ok(iid)) ? iid : it->id;
	_cleanup_free_ char *out_name = fname ? strdup(fname) : fs_path("%s.out", base);
	_cleanup_free_ char *err_name = fs_path("%s-error.out", base);
	if (out_name && err_name) {
		it->output_url = join_location(e->async.s3_output_path, ext, out_name);
		it->failure_url = join_location(e->async.s3_failure_path ? e->async.s3_failure_path
								 : e->async.s3_output_path,
						ext, err_name);
	}
	if (nomem || it->output_url == NULL || it->failure_url == NULL) {
		async_item_free(it);
		r->status = 500;
		r->code = "InternalFailure";
		snprintf(r->message, sizeof(r->message), "berthd could not queue the request: out of memory");
		return NULL;
	}
	return it;
}

static void render_accepted(struct berth_buf *out, const struct async_item *it)
{
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return;
	yajl_gen_map_open(g);
	json_gen_kv_bool(g, "ok", true);
	json_gen_kv_str(g, "id", it->id);
	json_gen_kv_str(g, "inference_id", it->inference_id);
	json_gen_kv_str(g, "output", it->output_url);
	json_gen_kv_str(g, "failure", it->failure_url);
	yajl_gen_map_close(g);
	json_gen_finish(g, out);
}

void runtime_async_submit(struct runtime *rt, yajl_val req, struct berth_buf *out)
{
	struct submit_refusal refusal = { 0 };
	pthread_mutex_lock(rt->lock);
	struct async_queue *q = queue_of(rt);
	struct async_item *it = q ? item_from_request(rt, req, &refusal) : NULL;
	if (q == NULL) {
		refusal = (struct submit_refusal){ 500, "InternalFailure", "berthd could not queue the request: out of memory" };
	}
	pthread_mutex_unlock(rt->lock);
	if (it == NULL) {
		render_refusal(out, &refusal);
		return;
	}
	/* the bound counts what is waiting and running; a request refused for
	 * it was never written, and nothing accepted is dropped */
	pthread_mutex_lock(&q->mu);
	size_t n = endpoint_count(q, it->endpoint);
	long long max = rt->cfg.async_queue_max > 0 ? rt->cfg.async_queue_max : RUNTIME_ASYNC_QUEUE_MAX_DEFAULT;
	bool full = (long long)n >= max || q->stopping;
	if (!full) { /* reserved: a placeholder at the tail keeps the count right while we write */
		enqueue(q, it);
		it->state = ASYNC_QUEUED;
		it->durable = false; /* the scheduler leaves it alone until written */
	}
	pthread_mutex_unlock(&q->mu);
	if (full) {
		refusal = (struct submit_refusal){ 503, "ServiceUnavailable", "" };
		snprintf(refusal.message, sizeof(refusal.message),
			 "The asynchronous inference queue of endpoint %s is full: %zu requests are waiting or running, "
			 "berthd's bound (async_queue_max) is %lld. Try your call again later.",
			 it->endpoint, n, max);
		log_warn("asynchronous request for endpoint %s refused: its queue is full (%zu)", it->endpoint, n);
		async_item_free(it);
		render_refusal(out, &refusal);
		return;
	}
	struct berth_err err;
	int r = async_item_persist(q, it, &err);
	pthread_mutex_lock(&q->mu);
	if (r < 0) { /* take the placeholder back out */
		struct async_item **p = &q->head;
		struct async_item *prev = NULL;
		while (*p && *p != it) {
			prev = *p;
			p = &(*p)->next;
		}
		if (*p)
			*p = it->next;
		if (q->tail == it)
			q->tail = prev;
	} else {
		/* answered from here: once durable the scheduler may run and free it */
		render_accepted(out, it);
		it->durable = true;
		q->stats_dirty = true;
		async_kick(q);
	}
	pthread_mutex_unlock(&q->mu);
	if (r < 0) {
		log_error("asynchronous request for endpoint %s not queued: its record could not be written: %s",
			  it->endpoint, err.msg);
		refusal = (struct submit_refusal){ 500, "InternalFailure", "" };
		snprintf(refusal.message, sizeof(refusal.message),
			 "berthd could not store the request durably (%.600s); it was not queued. Try your call again.",
			 err.msg);
		async_item_free(it);
		render_refusal(out, &refusal);
		return;
	}
	async_scheduler_start(q);
}

/* ---- start, delete, stop ---------------------------------------------------- */

static struct async_item *item_from_record(const char *text, size_t len, bool *running, struct berth_err *err)
{
	yajl_val v = json_parse(text, len, err);
	if (v == NULL)
		return NULL;
	struct async_item *it = calloc(1, sizeof(*it));
	const char *id = json_get_string(v, "id");
	bool nomem = false;
	*running = false;
	if (it && id && strlen(id) == ASYNC_ID_LEN && strspn(id, "0123456789abcdef-") == ASYNC_ID_LEN) {
		memcpy(it->id, id, ASYNC_ID_LEN + 1);
		it->endpoint = dup_opt(json_get_string(v, "endpoint"), &nomem);
		it->input = dup_opt(json_get_string(v, "input"), &nomem);
		it->output_url = dup_opt(json_get_string(v, "output"), &nomem);
		it->failure_url = dup_opt(json_get_string(v, "failure"), &nomem);
		it->content_type = dup_opt(json_get_string(v, "content_type"), &nomem);
		it->accept = dup_opt(json_get_string(v, "accept"), &nomem);
		it->custom_attributes = dup_opt(json_get_string(v, "custom_attributes"), &nomem);
		it->inference_id = dup_opt(json_get_string(v, "inference_id"), &nomem);
		json_get_int64(v, "enqueued_ms", &it->enqueued_ms);
		json_get_int64(v, "ttl_s", &it->ttl_s);
		json_get_int64(v, "timeout_s", &it->timeout_s);
		json_get_bool(v, "notify", &it->notify);
	}
	yajl_tree_free(v);
	if (it == NULL || it->endpoint == NULL || it->input == NULL || it->output_url == NULL ||
	    it->failure_url == NULL || it->inference_id == NULL || nomem || it->ttl_s <= 0 || it->timeout_s <= 0) {
		async_item_free(it);
		berth_err_set(err, EINVAL, "not an asynchronous request record");
		return NULL;
	}
	return it;
}

/* Was the run that a crash interrupted already finished (its output is there)? */
static bool output_exists(struct async_queue *q, const struct async_item *it)
{
	struct objstore_object o = { 0 };
	enum objstore_status st;
	struct berth_err err;
	if (q->rt->cfg.store == NULL || objstore_locate(q->rt->cfg.store, it->output_url, &o, &st, &err) < 0)
		return false;
	char *version = NULL;
	long long size;
	bool there = objstore_stat(q->rt->cfg.store, &o, &version, &size, &st, &err) == 0 && !o.local_dir;
	free(version);
	objstore_object_free(&o);
	return there;
}

void runtime_async_resume(struct runtime *rt)
{
	_cleanup_free_ char *dir = fs_path("%s/" ASYNC_DIR, rt->cfg.state_dir);
	struct berth_err err;
	if (dir == NULL || fs_mkdir_p(dir, 0700, &err) < 0) {
		log_error("asynchronous inference: cannot create %s: %s", dir ? dir : "its directory",
			  dir ? err.msg : "out of memory");
		return;
	}
	struct async_queue *q = queue_of(rt);
	DIR *d = q ? opendir(dir) : NULL;
	if (d == NULL)
		return;
	size_t queued = 0, interrupted = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (de->d_name[0] == '.' || n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue; /* fs_write_atomic's temporary files too */
		_cleanup_free_ char *path = fs_path("%s/%s", dir, de->d_name);
		struct berth_buf text = BERTH_BUF_INIT;
		bool running = false;
		struct async_item *it = NULL;
		if (path && fs_read_file(path, &text, ASYNC_RECORD_MAX, &err) == 0)
			it = item_from_record(text.data, text.len, &running, &err);
		buf_free(&text);
		if (it != NULL && (strlen(de->d_name) != ASYNC_ID_LEN + 5 || strncmp(de->d_name, it->id, ASYNC_ID_LEN) != 0)) {
			berth_err_set(&err, EINVAL, "its name is not its ID");
			async_item_free(it);
			it = NULL;
		}
		if (it != NULL) { /* sent to a container before the stop? */
			char marker[ASYNC_ID_LEN + sizeof(ASYNC_RUNNING_SUFFIX)];
			snprintf(marker, sizeof(marker), "%s" ASYNC_RUNNING_SUFFIX, it->id);
			running = faccessat(dirfd(d), marker, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
		}
		if (it == NULL) {
			log_error("asynchronous inference: record %s is unreadable (%s); left as it is", path ? path : "?",
				  err.msg);
			continue;
		}
		pthread_mutex_lock(&q->mu);
		if (running) {
			interrupted++;
			if (output_exists(q, it)) {
				log_info("asynchronous request %s of endpoint %s had finished (%s) when berthd stopped",
					 it->id, it->endpoint, it->output_url);
				async_item_forget(q, it);
				async_item_free(it);
			} else { /* the failure is written by a thread of its own */
				char text_fail[512];
				snprintf(text_fail, sizeof(text_fail),
					 "berthd restarted while this inference request was running in the container of "
					 "endpoint %s; it is not run again, so that it never runs twice. Invoke the "
					 "endpoint again if it should run.",
					 it->endpoint);
				async_spawn_fail(q, it, text_fail);
			}
		} else {
			queued++;
			it->durable = true;
			enqueue(q, it);
		}
		q->stats_dirty = true;
		pthread_mutex_unlock(&q->mu);
	}
	/* markers whose record is gone: the request had finished */
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name), sl = sizeof(ASYNC_RUNNING_SUFFIX) - 1;
		if (n != ASYNC_ID_LEN + sl || strcmp(de->d_name + ASYNC_ID_LEN, ASYNC_RUNNING_SUFFIX) != 0)
			continue;
		char record[ASYNC_ID_LEN + 6];
		snprintf(record, sizeof(record), "%.*s.json", ASYNC_ID_LEN, de->d_name);
		if (faccessat(dirfd(d), record, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	if (queued + interrupted > 0)
		log_info("asynchronous inference: %zu queued request%s resumed, %zu interrupted while running", queued,
			 queued == 1 ? "" : "s", interrupted);
	async_scheduler_start(q);
}

void runtime_async_drop_endpoint(struct runtime *rt, const char *endpoint)
{
	struct async_queue *q = rt->async;
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	size_t dropped = 0;
	for (struct async_item **p = &q->head; *p;) {
		struct async_item *it = *p;
		if (strcmp(it->endpoint, endpoint) != 0 || !it->durable) {
			p = &it->next;
			continue;
		}
		*p = it->next;
		dropped++;
		char text[512];
		snprintf(text, sizeof(text), "Endpoint %s was deleted before this inference request ran.", endpoint);
		async_spawn_fail(q, it, text);
	}
	q->tail = NULL;
	for (struct async_item *it = q->head; it; it = it->next)
		q->tail = it;
	size_t running = 0;
	for (struct async_item *it = q->running; it; it = it->next)
		running += strcmp(it->endpoint, endpoint) == 0;
	q->stats_dirty = true;
	pthread_mutex_unlock(&q->mu);
	if (dropped + running > 0)
		log_info("endpoint %s deleted: %zu queued asynchronous request%s dropped (failure written for each), %zu "
			 "running ones end with its containers",
			 endpoint, dropped, dropped == 1 ? "" : "s", running);
}

void runtime_async_stop(struct runtime *rt)
{
	struct async_queue *q = rt->async;
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	async_kick(q);
	if (q->stop_fd >= 0 && eventfd_write(q->stop_fd, 1) < 0)
		log_warn("asynchronous inference: cannot tell running requests to stop: %s", strerror(errno));
	bool started = q->started;
	pthread_mutex_unlock(&q->mu);
	if (started)
		pthread_join(q->scheduler, NULL);
	/* runs in flight keep their records ("running": the next berthd fails
	 * them rather than run them twice); wait a little for them */
	long long deadline = clock_now_ms() + 2000;
	pthread_mutex_lock(&q->mu);
	while (q->n_running_threads > 0 && clock_now_ms() < deadline)
		clock_cond_wait_ms(&q->wake, &q->mu, CLOCK_MONOTONIC, 50);
	bool busy = q->n_running_threads > 0;
	pthread_mutex_unlock(&q->mu);
	rt->async = NULL;
	if (busy) {
		log_info("asynchronous inference: requests still running at stop; the next start fails them");
		return; /* their threads still use q: left allocated, the process is ending */
	}
	for (struct async_item *it = q->head, *next; it; it = next) {
		next = it->next;
		async_item_free(it);
	}
	for (size_t i = 0; i < q->n_slots; i++)
		free(q->slots[i].key);
	free(q->slots);
	if (q->stop_fd >= 0)
		close(q->stop_fd);
	pthread_cond_destroy(&q->wake);
	pthread_mutex_destroy(&q->mu);
	free(q);
}
