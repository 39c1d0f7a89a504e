/* mme.c — see mme.h. */
#include "mme.h"
#include "clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup_usage.h"
#include "container_http.h"
#include "fsutil.h"
#include "paths.h"
#include "error_json.h"
#include "json.h"
#include "log.h"
#include "shim_client.h"
#include "store.h"
#include "unpack.h"

enum mstate { M_LOADING, M_LOADED, M_FAILED };

struct result {
	int status;                /* 0 = ok */
	char code[64];
	char message[1200];
	int original_status;
	char *original_message;
};

struct mmodel {
	char *target;
	char name[MME_NAME_HEX + 1];
	enum mstate state;
	double loaded_at;
	long long last_used;       /* monotonic ms */
	double last_used_epoch;
	uint64_t bytes;
	long long invocations;
	double load_ms;
	int refs;                  /* callers waiting on / leading it */
	bool linked;               /* in ep->models */
	struct result res;
	struct mmodel *next;
};

struct mendpoint {
	char *name;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct mmodel *models;
	char *sig;                 /* container ids + restarts: a change = models gone */
	char **sockets;
	size_t n_sockets;
	struct mendpoint *next;
};

struct mme {
	struct mme_config cfg;
	struct store *store;
	pthread_mutex_t *lock;
	mme_notify_fn notify;      /* mme_evicted lines to the routers; NULL: none */
	void *notify_data;
	pthread_mutex_t mu;        /* eps list, stopping */
	pthread_cond_t stop_cond;
	struct mendpoint *eps;
	bool stopping, monitor_started;
	int active;                /* control ops in progress, under mu */
	pthread_t monitor;
};

static void op_enter(struct mme *m);
static void op_leave(struct mme *m);

struct evicted {
	char names[32][MME_NAME_HEX + 1];
	size_t n;
};

/* ---- pure helpers --------------------------------------------------------- */

int mme_validate_target(const char *t, size_t len, struct berth_err *err)
{
	if (t == NULL || len == 0)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "TargetModel must not be empty.");
	if (len > MME_TARGET_MAX)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "TargetModel is %zu characters long; it must have length less than or equal "
				      "to %d.",
				      len, MME_TARGET_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
			return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
					      "TargetModel must not contain control characters.");
	if (t[0] == '/')
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "TargetModel \"%s\" must be a path relative to the model's ModelDataUrl, not "
				      "an absolute path (it starts with \"/\").",
				      t);
	for (const char *p = t; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if ((n == 2 && p[0] == '.' && p[1] == '.') || (n == 1 && p[0] == '.') || n == 0)
			return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
					      "TargetModel \"%s\" must not contain \"..\", \".\" or empty path "
					      "components.",
					      t);
		p = e ? e + 1 : p + n;
		if (e && *p == '\0')
			return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
					      "TargetModel \"%s\" must name an object, not end with \"/\".", t);
	}
	return 0;
}

void mme_model_name(const char *target, const char *version, char out[MME_NAME_HEX + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	EVP_DigestUpdate(c, target, strlen(target));
	EVP_DigestUpdate(c, "\n", 1);
	EVP_DigestUpdate(c, version ? version : "", version ? strlen(version) : 0);
	EVP_DigestFinal_ex(c, md, &n);
	EVP_MD_CTX_free(c);
	for (int i = 0; i < MME_NAME_HEX / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[MME_NAME_HEX] = '\0';
}

long mme_lru_pick(const struct mme_lru_item *items, size_t n)
{
	long best = -1;
	for (size_t i = 0; i < n; i++)
		if (items[i].evictable && (best < 0 || items[i].last_used < items[best].last_used))
			best = (long)i;
	return best;
}

/* ---- replies ------------------------------------------------------------ */

/* The answer's status and runtime code come from the class (err.h), the
 * one table berthd's answers use. */
static void set_result(struct result *r, enum berth_err_class cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_result(struct result *r, enum berth_err_class cls, const char *fmt, ...)
{
	r->status = berth_err_class_status(cls);
	snprintf(r->code, sizeof(r->code), "%s", berth_err_class_runtime_code(cls));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
}

static void reply_result(const struct result *r, const char *name, double load_ms, struct berth_buf *out)
{
	yajl_gen g = json_gen_new();
	yajl_gen_map_open(g);
	if (r->status == 0) {
		json_gen_kv_bool(g, "ok", true);
		json_gen_kv_str(g, "model", name);
		json_gen_kv_double(g, "load_ms", load_ms);
	} else {
		json_gen_kv_bool(g, "ok", false);
		json_gen_kv_int(g, "status", r->status);
		json_gen_kv_str(g, "code", r->code);
		/* the message may quote an archive's entry names, the original
		 * message is the container's body: neither need be UTF-8 */
		json_gen_str(g, "message");
		error_json_gen_text(g, r->message, strlen(r->message));
		if (r->original_status > 0) {
			json_gen_kv_int(g, "original_status", r->original_status);
			json_gen_str(g, "original_message");
			error_json_gen_text(g, r->original_message ? r->original_message : "",
					    r->original_message ? strlen(r->original_message) : 0);
		}
	}
	yajl_gen_map_close(g);
	json_gen_finish(g, out);
}

/* ---- endpoints and models ---------------------------------------------- */

static struct mendpoint *get_ep(struct mme *m, const char *name, bool create)
{
	pthread_mutex_lock(&m->mu);
	struct mendpoint *ep = m->eps;
	while (ep && strcmp(ep->name, name) != 0)
		ep = ep->next;
	if (ep == NULL && create && (ep = calloc(1, sizeof(*ep))) != NULL) {
		if ((ep->name = strdup(name)) == NULL) {
			free(ep);
			ep = NULL;
		} else {
			pthread_mutex_init(&ep->mu, NULL);
			pthread_cond_init(&ep->cond, NULL);
			ep->next = m->eps;
			m->eps = ep;
		}
	}
	pthread_mutex_unlock(&m->mu);
	return ep;
}

static void mmodel_free(struct mmodel *x)
{
	free(x->target);
	free(x->res.original_message);
	free(x);
}

static void unlink_model(struct mendpoint *ep, struct mmodel *x)
{
	for (struct mmodel **p = &ep->models; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			break;
		}
	x->linked = false;
	x->next = NULL;
	if (x->refs == 0)
		mmodel_free(x);
}

static void set_sockets(struct mendpoint *ep, char **sockets, size_t n)
{
	for (size_t i = 0; i < ep->n_sockets; i++)
		free(ep->sockets[i]);
	free(ep->sockets);
	ep->sockets = sockets;
	ep->n_sockets = n;
}

static char **copy_sockets(struct mendpoint *ep, size_t *n)
{
	char **s = calloc(ep->n_sockets + 1, sizeof(char *));
	*n = 0;
	for (size_t i = 0; s && i < ep->n_sockets; i++)
		if ((s[*n] = strdup(ep->sockets[i])) != NULL)
			(*n)++;
	return s;
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* With ep->mu held: DELETE /models/N on every container, remove its
 * directory, unlink it; the name is added to ev for the watchers. */
static void evict_locked(struct mme *m, struct mendpoint *ep, struct mmodel *x, const char *why, struct evicted *ev)
{
	char path[64 + MME_NAME_HEX];
	snprintf(path, sizeof(path), "/models/%s", x->name);
	for (size_t i = 0; i < ep->n_sockets; i++) {
		int status = 0;
		struct berth_err err;
		if (container_http(ep->sockets[i], "DELETE", path, NULL, 30000, &status, NULL, &err) < 0)
			log_warn("mme %s: DELETE %s: %s", ep->name, path, err.msg);
		else if (status != 200 && status != 204 && status != 404)
			log_warn("mme %s: DELETE %s answered %d", ep->name, path, status);
	}
	_cleanup_free_ char *dir = fs_path("%s/mme/%s/%s", m->cfg.state_dir, ep->name, x->name);
	struct berth_err err;
	if (dir && fs_remove_tree(dir, &err) < 0)
		log_warn("mme %s: %s", ep->name, err.msg);
	log_info("mme %s: evicted model %s (%s, %llu bytes): %s", ep->name, x->name, x->target,
		 (unsigned long long)x->bytes, why);
	if (ev->n < sizeof(ev->names) / sizeof(ev->names[0]))
		memcpy(ev->names[ev->n++], x->name, MME_NAME_HEX + 1);
	unlink_model(ep, x);
}

/* With ep->mu held: the least recently used loaded model but `keep`. */
static struct mmodel *lru_locked(struct mendpoint *ep, const struct mmodel *keep)
{
	size_t n = 0;
	for (struct mmodel *x = ep->models; x; x = x->next)
		n++;
	struct mme_lru_item *items = calloc(n + 1, sizeof(*items));
	struct mmodel **ptrs = calloc(n + 1, sizeof(*ptrs));
	struct mmodel *pick = NULL;
	if (items && ptrs) {
		size_t i = 0;
		for (struct mmodel *x = ep->models; x; x = x->next, i++) {
			ptrs[i] = x;
			items[i] = (struct mme_lru_item){ x->last_used, x->state == M_LOADED && x != keep };
		}
		long k = mme_lru_pick(items, n);
		pick = k >= 0 ? ptrs[k] : NULL;
	}
	free(items);
	free(ptrs);
	return pick;
}

static void notify_evicted(struct mme *m, const char *endpoint, const struct evicted *ev)
{
	for (size_t i = 0; i < ev->n && m->notify != NULL; i++) {
		yajl_gen g = json_gen_new();
		struct berth_buf doc = BERTH_BUF_INIT;
		yajl_gen_map_open(g);
		json_gen_kv_str(g, "op", "mme_evicted");
		json_gen_kv_str(g, "endpoint", endpoint);
		json_gen_kv_str(g, "model", ev->names[i]);
		yajl_gen_map_close(g);
		if (json_gen_finish(g, &doc) == 0)
			m->notify(m->notify_data, doc.data, doc.len);
		buf_free(&doc);
	}
}

/* memory.max (v2) / memory.limit_in_bytes (v1) of pid's cgroup; -1 unknown */
static long long memory_limit(int pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -1;
	char line[1024];
	long long limit = -1;
	while (fgets(line, sizeof(line), f) && limit < 0) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2 == NULL)
			continue;
		_cleanup_free_ char *file = NULL;
		if (c1[1] == ':')
			file = fs_path("/sys/fs/cgroup%s/memory.max", c2 + 1);
		else if (strncmp(c1 + 1, "memory:", 7) == 0 || strstr(c1 + 1, ",memory:") != NULL)
			file = fs_path("/sys/fs/cgroup/memory%s/memory.limit_in_bytes", c2 + 1);
		struct berth_buf text = BERTH_BUF_INIT;
		struct berth_err err;
		if (file && fs_read_file(file, &text, 64, &err) == 0 && text.len > 0) {
			buf_append(&text, "", 1);
			if (strncmp(text.data, "max", 3) != 0) {
				long long v = strtoll(text.data, NULL, 10);
				if (v > 0 && v < (1LL << 60))
					limit = v;
			}
		}
		buf_free(&text);
	}
	fclose(f);
	return limit;
}

/* true when a container of ep is over the high-water mark */
static bool over_high_water(struct mme *m, char **sockets, size_t n, long long *usage_out, long long *limit_out)
{
	if (m->cfg.high_water <= 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		struct shim_state st;
		struct berth_err err;
		if (shim_get_state(sockets[i], &st, &err) < 0 || !st.running || st.pid <= 0)
			continue;
		struct cgroup_usage u;
		cgroup_usage_read(st.pid, &u);
		long long limit = memory_limit(st.pid);
		if (u.has_memory && limit > 0 && (double)u.memory_bytes > m->cfg.high_water * (double)limit) {
			*usage_out = u.memory_bytes;
			*limit_out = limit;
			return true;
		}
	}
	return false;
}

/* With ep->mu held: evicts LRU models (not keep) while the memory mark or
 * the disk bound is passed. */
static void enforce_bounds_locked(struct mme *m, struct mendpoint *ep, const struct mmodel *keep, struct evicted *ev)
{
	for (int guard = 0; guard < 10000; guard++) {
		uint64_t total = 0;
		for (struct mmodel *x = ep->models; x; x = x->next)
			total += x->bytes;
		if (m->cfg.disk_bytes == 0 || total <= m->cfg.disk_bytes)
			break;
		struct mmodel *v = lru_locked(ep, keep);
		if (v == NULL)
			break;
		char why[160];
		snprintf(why, sizeof(why), "model cache on disk %llu bytes > bound %llu", (unsigned long long)total,
			 (unsigned long long)m->cfg.disk_bytes);
		evict_locked(m, ep, v, why, ev);
	}
	/* memory is not given back at once: one model per check (after each
	 * load and every 2 s), so one slow release does not empty the cache */
	long long usage = 0, limit = 0;
	if (over_high_water(m, ep->sockets, ep->n_sockets, &usage, &limit)) {
		struct mmodel *v = lru_locked(ep, keep);
		char why[160];
		snprintf(why, sizeof(why), "memory %lld bytes > %.2f x limit %lld", usage, m->cfg.high_water, limit);
		if (v != NULL)
			evict_locked(m, ep, v, why, ev);
	}
}

/* ---- loading ------------------------------------------------------------ */

struct endpoint_facts {
	char *url;       /* ModelDataUrl prefix */
	char *sig;
	char **sockets;
	size_t n_sockets;
};

/* Under berthd's lock: the endpoint's facts, or a 400. */
static int read_endpoint(struct mme *m, const char *name, struct endpoint_facts *f, struct result *r)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_lock(m->lock);
	const struct endpoint *e = store_get_endpoint(m->store, name);
	int rc = -1;
	if (e == NULL) {
		set_result(r, BERTH_ERR_NOT_FOUND, "Endpoint %s of account %s not found.", name, m->cfg.account);
		goto out;
	}
	/* the endpoint's multi-model variant (at most one: api_variants_set_modes) */
	size_t mv = 0;
	size_t n_v = e->n_variants > 0 ? e->n_variants : 1;
	while (mv < n_v && strcmp(endpoint_variant_mode(e, mv), "MultiModel") != 0)
		mv++;
	if (mv == n_v) {
		set_result(r, BERTH_ERR_VALIDATION,
			   "Endpoint %s is not a multi-model endpoint and does not support target model header.", name);
		goto out;
	}
	const char *variant_name = e->n_variants > 0 ? e->variants[mv].variant_name : NULL;
	if (strcmp(e->status, "InService") != 0) {
		set_result(r, BERTH_ERR_VALIDATION, "Endpoint %s of account %s is not in service (status %s).", name,
			   m->cfg.account, e->status);
		goto out;
	}
	const char *model_name = e->n_variants > 0 ? e->variants[mv].model_name : NULL;
	if (model_name == NULL) {
		const struct endpoint_config *c = store_get_endpoint_config(m->store, e->config_name);
		model_name = c && c->n_variants > 0 ? c->variants[0].model_name : NULL;
	}
	const struct model *mod = model_name ? store_get_model(m->store, model_name) : NULL;
	if (mod == NULL || mod->n_containers < 1 || mod->containers[0].model_data_url == NULL) {
		set_result(r, BERTH_ERR_VALIDATION,
			   "Endpoint %s: its model %s is gone or has no ModelDataUrl prefix to load models from.", name,
			   model_name ? model_name : "?");
		goto out;
	}
	struct berth_buf sig = BERTH_BUF_INIT;
	f->url = strdup(mod->containers[0].model_data_url);
	f->sockets = calloc(e->n_containers + 1, sizeof(char *));
	for (size_t i = 0; f->sockets && i < e->n_containers; i++) {
		const struct endpoint_container *c = &e->containers[i];
		buf_printf(&sig, "%s.%lld;", c->id, c->restarts);
		if (!c->pending && !c->retiring && !c->down && c->socket &&
		    (variant_name == NULL || strcmp(endpoint_container_variant(e, c), variant_name) == 0))
			f->sockets[f->n_sockets++] = strdup(c->socket);
	}
	buf_append(&sig, "", 1);
	f->sig = buf_steal(&sig);
	if (f->url == NULL || f->sockets == NULL || f->sig == NULL) {
		set_result(r, BERTH_ERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(m->lock);
	return rc;
}

static void facts_free(struct endpoint_facts *f)
{
	free(f->url);
	free(f->sig);
	free_strv(f->sockets, f->n_sockets);
}

static void download_failed(struct result *r, const struct objstore_object *o, const char *url,
			    enum objstore_status st, const struct berth_err *err)
{
	struct berth_err said;
	objstore_failure(o, url, "model data", st, err, &said);
	set_result(r, said.cls, "%s", said.msg);
}

/* Fetch + unpack into STATE/mme/E/N/model (kept when already there). */
static int fetch_unpack(struct mme *m, const char *endpoint, const char *target, const char *url,
			const struct objstore_object *o, const char *name, uint64_t *bytes, struct result *r)
{
	_cleanup_free_ char *ndir = fs_path("%s/mme/%s/%s", m->cfg.state_dir, endpoint, name);
	_cleanup_free_ char *mdir = fs_path("%s/mme/%s/%s/model", m->cfg.state_dir, endpoint, name);
	struct berth_err err;
	if (ndir == NULL || mdir == NULL) {
		set_result(r, BERTH_ERR_INTERNAL, "out of memory");
		return -1;
	}
	struct stat st;
	if (stat(mdir, &st) == 0 && S_ISDIR(st.st_mode)) {
		*bytes = fs_tree_bytes(ndir);
		return 0;
	}
	if (fs_mkdir_p(ndir, 0755, &err) < 0) {
		set_result(r, BERTH_ERR_INTERNAL, "model cache: %s", err.msg);
		return -1;
	}
	_cleanup_free_ char *tmp = NULL;
	const char *archive = o->local_path;
	log_info("mme %s: fetching %s (%s) as %s", endpoint, target, url, name);
	struct unpack_limits lim = { .max_bytes = m->cfg.max_model_bytes, .max_entries = UNPACK_DEFAULT_MAX_ENTRIES };
	if (o->local_open) {
		/* the file objstore_stat opened beneath its root, not its path again */
		if (unpack_once_fd(o->local_fd, archive, mdir, &lim, &err) < 0) {
			set_result(r, err.cls, "Failed to extract model data from %s (TargetModel %s): %s",
				   url, target, err.msg);
			goto fail;
		}
		*bytes = fs_tree_bytes(ndir);
		return 0;
	}
	if (archive == NULL) {
		_cleanup_free_ char *tdir = fs_path("%s/mme/.fetch", m->cfg.state_dir);
		tmp = fs_path("%s/mme/.fetch/%s-%s.%d.%lx", m->cfg.state_dir, endpoint, name, (int)getpid(),
			      (unsigned long)pthread_self());
		enum objstore_status ost = OBJSTORE_OK;
		if (tdir == NULL || tmp == NULL || fs_mkdir_p(tdir, 0700, &err) < 0) {
			set_result(r, BERTH_ERR_INTERNAL, "model cache: %s", tdir ? err.msg : "out of memory");
			goto fail;
		}
		if (objstore_fetch(&m->cfg.store, o, tmp, m->cfg.max_model_bytes, &ost, &err) < 0) {
			download_failed(r, o, url, ost, &err);
			goto fail;
		}
		archive = tmp;
	}
	if (unpack_once(archive, mdir, &lim, &err) < 0) {
		/* a bad archive is the caller's (400), a full disk berth's (500) */
		set_result(r, err.cls, "Failed to extract model data from %s (TargetModel %s): %s", url,
			   target, err.msg);
		goto fail;
	}
	if (tmp)
		unlink(tmp);
	*bytes = fs_tree_bytes(ndir);
	return 0;
fail:
	if (tmp)
		unlink(tmp);
	fs_remove_tree(ndir, &err);
	return -1;
}

/* POST /models to every container; 507 → evict LRU and retry. */
static int post_models(struct mme *m, struct mendpoint *ep, struct mmodel *self, char **sockets, size_t n,
		       struct result *r)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"model_name\":\"%s\",\"url\":\"/opt/ml/models/%s/model\"}", self->name,
		 self->name);
	if (n == 0) {
		set_result(r, BERTH_ERR_UNAVAILABLE, "Endpoint %s has no serving container to load the model into.",
			   ep->name);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		for (;;) {
			int status = 0;
			struct berth_buf resp = BERTH_BUF_INIT;
			struct berth_err err;
			if (container_http(sockets[i], "POST", "/models", body, m->cfg.load_timeout_ms, &status, &resp,
					   &err) < 0) {
				buf_free(&resp);
				if (err.errnum == EPROTO || err.errnum == EMSGSIZE) /* it answered, unusably */
					set_result(r, BERTH_ERR_UNAVAILABLE,
						   "The model container of endpoint %s gave an answer to the model load that berth "
						   "cannot use: %s. Fix the container's POST /models handler.",
						   ep->name, err.msg);
				else
					set_result(r, BERTH_ERR_UNAVAILABLE,
						   "The model container of endpoint %s could not be reached to load the model: %s",
						   ep->name, err.msg);
				return -1;
			}
			if (status == 200 || status == 201 || status == 409) {
				buf_free(&resp);
				break;
			}
			if (status == 507) {
				struct evicted ev = { .n = 0 };
				pthread_mutex_lock(&ep->mu);
				struct mmodel *v = lru_locked(ep, self);
				if (v != NULL)
					evict_locked(m, ep, v, "the container answered 507 (out of memory) to POST /models",
						     &ev);
				pthread_mutex_unlock(&ep->mu);
				notify_evicted(m, ep->name, &ev);
				if (v != NULL) {
					buf_free(&resp);
					continue;
				}
			}
			buf_append(&resp, "", 1);
			r->original_status = status;
			free(r->original_message);
			r->original_message = strdup(resp.data ? resp.data : "");
			set_result(r, BERTH_ERR_MODEL,
				   "Received %s error (%d) from primary with message \"%s\" while loading the model. "
				   "See berth logs %s for more information.",
				   status >= 500 ? "server" : "client", status, resp.data ? resp.data : "", ep->name);
			buf_free(&resp);
			return -1;
		}
	}
	return 0;
}

static void lead_load(struct mme *m, struct mendpoint *ep, struct mmodel *x, const char *url_prefix,
		      char **sockets, size_t n_sockets)
{
	long long t0 = clock_now_ms();
	struct result r = { 0 };
	struct objstore_object o = { 0 };
	char *version = NULL;
	_cleanup_free_ char *url = objstore_join(url_prefix, x->target);
	struct berth_err err;
	enum objstore_status ost = OBJSTORE_OK;
	long long size = -1;
	uint64_t bytes = 0;
	char name[MME_NAME_HEX + 1];
	if (url == NULL) {
		set_result(&r, BERTH_ERR_INTERNAL, "out of memory");
	} else if (objstore_locate(&m->cfg.store, url, &o, &ost, &err) < 0) {
		if (ost == OBJSTORE_FORBIDDEN) {
			download_failed(&r, &o, url, ost, &err);
		} else {
			berth_err_blame_input(&err); /* the URL is the caller's; ENOMEM is berth's */
			set_result(&r, err.cls, "Failed to download model data from %s: %s", url, err.msg);
		}
	} else if (objstore_stat(&m->cfg.store, &o, &version, &size, &ost, &err) < 0) {
		download_failed(&r, &o, url, ost, &err);
	} else if (o.local_dir) { /* a TargetModel is an archive, never a directory */
		berth_err_set(&err, 0, "%s is a directory", url);
		download_failed(&r, &o, url, OBJSTORE_NOT_FOUND, &err);
	} else {
		mme_model_name(x->target, version, name);
		pthread_mutex_lock(&ep->mu);
		memcpy(x->name, name, sizeof(name));
		pthread_mutex_unlock(&ep->mu);
		if (fetch_unpack(m, ep->name, x->target, url, &o, name, &bytes, &r) == 0)
			post_models(m, ep, x, sockets, n_sockets, &r);
	}
	double ms = (double)(clock_now_ms() - t0);
	struct evicted ev = { .n = 0 };
	pthread_mutex_lock(&ep->mu);
	if (r.status == 0) {
		x->state = M_LOADED;
		x->bytes = bytes;
		x->loaded_at = clock_epoch_seconds();
		x->last_used = clock_now_ms();
		x->last_used_epoch = x->loaded_at;
		x->load_ms = ms;
		log_info("mme %s: loaded %s as %s (%llu bytes) in %.0f ms", ep->name, x->target, x->name,
			 (unsigned long long)bytes, ms);
		enforce_bounds_locked(m, ep, x, &ev);
	} else {
		log_warn("mme %s: loading %s failed (%d %s): %s", ep->name, x->target, r.status, r.code, r.message);
		if (r.status == 424 || r.status == 503) {
			_cleanup_free_ char *ndir = x->name[0] ? fs_path("%s/mme/%s/%s", m->cfg.state_dir, ep->name, x->name)
							       : NULL;
			if (ndir)
				fs_remove_tree(ndir, &err);
		}
		x->state = M_FAILED;
	}
	x->res = r;
	if (x->state == M_FAILED && x->linked)
		unlink_model(ep, x); /* refs > 0 (ours): kept until the waiters have the answer */
	x->load_ms = ms;
	pthread_cond_broadcast(&ep->cond);
	pthread_mutex_unlock(&ep->mu);
	notify_evicted(m, ep->name, &ev);
	free(version);
	objstore_object_free(&o);
}

static void handle_load(struct mme *m, yajl_val req, struct berth_buf *reply);

void mme_handle_load(struct mme *m, yajl_val req, struct berth_buf *reply)
{
	op_enter(m);
	handle_load(m, req, reply);
	op_leave(m);
}

static void handle_load(struct mme *m, yajl_val req, struct berth_buf *reply)
{
	const char *endpoint = json_get_string(req, "endpoint");
	yajl_val tv = json_get(req, "target_model");
	struct result r = { 0 };
	struct berth_err err;
	if (endpoint == NULL || tv == NULL || !YAJL_IS_STRING(tv)) {
		set_result(&r, BERTH_ERR_VALIDATION, "mme_load needs \"endpoint\" and \"target_model\" strings.");
		reply_result(&r, NULL, 0, reply);
		return;
	}
	const char *target = tv->u.string;
	if (mme_validate_target(target, strlen(target), &err) < 0) {
		set_result(&r, err.cls, "%s", err.msg);
		reply_result(&r, NULL, 0, reply);
		return;
	}
	struct endpoint_facts f;
	if (read_endpoint(m, endpoint, &f, &r) < 0) {
		facts_free(&f);
		reply_result(&r, NULL, 0, reply);
		return;
	}
	struct mendpoint *ep = get_ep(m, endpoint, true);
	if (ep == NULL) {
		facts_free(&f);
		set_result(&r, BERTH_ERR_INTERNAL, "out of memory");
		reply_result(&r, NULL, 0, reply);
		return;
	}
	pthread_mutex_lock(&ep->mu);
	if (ep->sig == NULL || strcmp(ep->sig, f.sig) != 0) {
		/* new or restarted containers: what was loaded is gone */
		if (ep->sig != NULL)
			log_info("mme %s: the containers changed; forgetting loaded models", endpoint);
		for (struct mmodel *x = ep->models, *next; x; x = next) {
			next = x->next;
			if (x->state == M_LOADED)
				unlink_model(ep, x);
		}
		free(ep->sig);
		ep->sig = f.sig;
		f.sig = NULL;
	}
	set_sockets(ep, f.sockets, f.n_sockets);
	f.sockets = NULL;
	f.n_sockets = 0;
	struct mmodel *x = ep->models;
	while (x && strcmp(x->target, target) != 0)
		x = x->next;
	if (x != NULL && x->state == M_LOADED) {
		x->last_used = clock_now_ms();
		x->last_used_epoch = clock_epoch_seconds();
		char name[MME_NAME_HEX + 1];
		memcpy(name, x->name, sizeof(name));
		pthread_mutex_unlock(&ep->mu);
		facts_free(&f);
		reply_result(&r, name, 0, reply);
		return;
	}
	bool leader = x == NULL;
	if (leader) {
		x = calloc(1, sizeof(*x));
		if (x == NULL || (x->target = strdup(target)) == NULL) {
			free(x);
			pthread_mutex_unlock(&ep->mu);
			facts_free(&f);
			set_result(&r, BERTH_ERR_INTERNAL, "out of memory");
			reply_result(&r, NULL, 0, reply);
			return;
		}
		x->state = M_LOADING;
		x->linked = true;
		x->next = ep->models;
		ep->models = x;
	}
	x->refs++;
	if (leader) {
		size_t n = 0;
		char **sockets = copy_sockets(ep, &n);
		pthread_mutex_unlock(&ep->mu);
		lead_load(m, ep, x, f.url, sockets, n);
		free_strv(sockets, n);
		pthread_mutex_lock(&ep->mu);
	} else {
		while (x->state == M_LOADING)
			pthread_cond_wait(&ep->cond, &ep->mu);
	}
	reply_result(&x->res, x->name, x->load_ms, reply);
	if (--x->refs == 0 && !x->linked)
		mmodel_free(x);
	pthread_mutex_unlock(&ep->mu);
	facts_free(&f);
}

static void handle_touch(struct mme *m, yajl_val req);
void mme_handle_touch(struct mme *m, yajl_val req)
{
	op_enter(m);
	handle_touch(m, req);
	op_leave(m);
}

static void handle_touch(struct mme *m, yajl_val req)
{
	const char *endpoint = json_get_string(req, "endpoint");
	yajl_val models = json_get(req, "models");
	if (endpoint == NULL || models == NULL || !YAJL_IS_OBJECT(models))
		return;
	struct mendpoint *ep = get_ep(m, endpoint, false);
	if (ep == NULL)
		return;
	pthread_mutex_lock(&ep->mu);
	long long now = clock_now_ms();
	double epoch = clock_epoch_seconds();
	for (size_t i = 0; i < models->u.object.len; i++) {
		for (struct mmodel *x = ep->models; x; x = x->next)
			if (x->state == M_LOADED && strcmp(x->name, models->u.object.keys[i]) == 0) {
				x->last_used = now;
				x->last_used_epoch = epoch;
				yajl_val c = models->u.object.values[i];
				if (YAJL_IS_INTEGER(c) && YAJL_GET_INTEGER(c) > 0)
					x->invocations += YAJL_GET_INTEGER(c);
			}
	}
	pthread_mutex_unlock(&ep->mu);
}

static void handle_list(struct mme *m, yajl_val req, struct berth_buf *reply);
void mme_handle_list(struct mme *m, yajl_val req, struct berth_buf *reply)
{
	op_enter(m);
	handle_list(m, req, reply);
	op_leave(m);
}

static void handle_list(struct mme *m, yajl_val req, struct berth_buf *reply)
{
	const char *endpoint = json_get_string(req, "endpoint");
	struct mendpoint *ep = endpoint ? get_ep(m, endpoint, false) : NULL;
	yajl_gen g = json_gen_new();
	yajl_gen_map_open(g);
	json_gen_kv_bool(g, "ok", true);
	json_gen_str(g, "models");
	yajl_gen_array_open(g);
	if (ep != NULL) {
		pthread_mutex_lock(&ep->mu);
		for (struct mmodel *x = ep->models; x; x = x->next) {
			yajl_gen_map_open(g);
			json_gen_kv_str(g, "model", x->name);
			json_gen_kv_str(g, "target", x->target);
			json_gen_kv_str(g, "state", x->state == M_LOADED ? "loaded" : "loading");
			json_gen_kv_int(g, "bytes", (long long)x->bytes);
			if (x->state == M_LOADED) {
				json_gen_kv_double(g, "loaded_at", x->loaded_at);
				json_gen_kv_double(g, "last_used", x->last_used_epoch);
				json_gen_kv_double(g, "load_ms", x->load_ms);
			}
			json_gen_kv_int(g, "invocations", x->invocations);
			yajl_gen_map_close(g);
		}
		pthread_mutex_unlock(&ep->mu);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	json_gen_finish(g, reply);
}

void mme_forget_endpoint(struct mme *m, const char *endpoint)
{
	if (m == NULL)
		return;
	struct mendpoint *ep = get_ep(m, endpoint, false);
	if (ep != NULL) {
		pthread_mutex_lock(&ep->mu);
		for (struct mmodel *x = ep->models, *next; x; x = next) {
			next = x->next;
			if (x->state == M_LOADED)
				unlink_model(ep, x);
		}
		free(ep->sig);
		ep->sig = NULL;
		set_sockets(ep, NULL, 0);
		pthread_mutex_unlock(&ep->mu);
	}
	_cleanup_free_ char *dir = state_path_mme_endpoint(m->cfg.state_dir, endpoint);
	struct berth_err err;
	if (dir && fs_remove_tree(dir, &err) < 0)
		log_warn("mme %s: %s", endpoint, err.msg);
}

/* ---- life ---------------------------------------------------------------- */

static void *monitor_main(void *arg)
{
	struct mme *m = arg;
	pthread_mutex_lock(&m->mu);
	while (!m->stopping) {
		clock_cond_wait_ms(&m->stop_cond, &m->mu, CLOCK_REALTIME, 2000);
		if (m->stopping)
			break;
		struct mendpoint *eps = m->eps;
		pthread_mutex_unlock(&m->mu);
		for (struct mendpoint *ep = eps; ep; ep = ep->next) {
			/* ep structs live until mme_free */
			struct evicted ev = { .n = 0 };
			pthread_mutex_lock(&ep->mu);
			bool any = false;
			for (struct mmodel *x = ep->models; x && !any; x = x->next)
				any = x->state == M_LOADED;
			if (any)
				enforce_bounds_locked(m, ep, NULL, &ev);
			pthread_mutex_unlock(&ep->mu);
			notify_evicted(m, ep->name, &ev);
		}
		pthread_mutex_lock(&m->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

struct mme *mme_new(const struct mme_config *cfg, struct store *store, pthread_mutex_t *lock,
		    struct berth_err *err)
{
	struct mme *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		berth_err_set(err, ENOMEM, "mme");
		return NULL;
	}
	m->cfg = *cfg;
	if (m->cfg.load_timeout_ms <= 0)
		m->cfg.load_timeout_ms = MME_LOAD_TIMEOUT_MS;
	if (m->cfg.account == NULL)
		m->cfg.account = "000000000000";
	m->store = store;
	m->lock = lock;
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->stop_cond, NULL);
	return m;
}

void mme_attach(struct mme *m, mme_notify_fn notify, void *notify_data)
{
	m->notify = notify;
	m->notify_data = notify_data;
	if (pthread_create(&m->monitor, NULL, monitor_main, m) == 0)
		m->monitor_started = true;
	else
		log_warn("mme: cannot start the memory monitor");
}

static void op_enter(struct mme *m)
{
	pthread_mutex_lock(&m->mu);
	m->active++;
	pthread_mutex_unlock(&m->mu);
}

static void op_leave(struct mme *m)
{
	pthread_mutex_lock(&m->mu);
	m->active--;
	pthread_cond_broadcast(&m->stop_cond);
	pthread_mutex_unlock(&m->mu);
}

void mme_detach(struct mme *m)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	m->stopping = true;
	pthread_cond_broadcast(&m->stop_cond);
	pthread_mutex_unlock(&m->mu);
	if (m->monitor_started)
		pthread_join(m->monitor, NULL);
	m->monitor_started = false;
	pthread_mutex_lock(&m->mu);
	m->notify = NULL;
	m->notify_data = NULL;
	pthread_mutex_unlock(&m->mu);
}

void mme_free(struct mme *m)
{
	if (m == NULL)
		return;
	mme_detach(m);
	pthread_mutex_lock(&m->mu);
	long long deadline = clock_now_ms() + 5000;
	while (m->active > 0 && clock_now_ms() < deadline) {
		clock_cond_wait_ms(&m->stop_cond, &m->mu, CLOCK_REALTIME, 100);
	}
	bool busy = m->active > 0;
	pthread_mutex_unlock(&m->mu);
	if (busy) { /* a load still runs (detached thread): leave it its memory */
		log_warn("mme: %d multi-model operation(s) still running at exit", m->active);
		return;
	}
	for (struct mendpoint *ep = m->eps, *next; ep; ep = next) {
		next = ep->next;
		for (struct mmodel *x = ep->models, *nx; x; x = nx) {
			nx = x->next;
			mmodel_free(x);
		}
		free(ep->sig);
		set_sockets(ep, NULL, 0);
		pthread_mutex_destroy(&ep->mu);
		pthread_cond_destroy(&ep->cond);
		free(ep->name);
		free(ep);
	}
	pthread_mutex_destroy(&m->mu);
	pthread_cond_destroy(&m->stop_cond);
	free(m);
}
