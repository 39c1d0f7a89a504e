/* registry.c — see registry.h. */
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "oci.h"
#include "reference.h"
#include "sigv4.h"
#include "skopeo.h"

#define MANIFEST_MAX (4u << 20)
#define CONFIG_MAX (8u << 20)
#define LAYOUT_TAG "image"

static const char POLICY[] = "{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}\n";

int registry_open(struct registry *r, const char *state_dir, const struct registry_config *cfg, uint64_t max_bytes,
		  struct berth_err *err)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->max_bytes = max_bytes;
	atomic_init(&r->stopping, false);
	pthread_mutex_init(&r->progress_lock, NULL);
	resolve_cache_init(&r->resolve);
	r->dir = fs_path("%s/registry", state_dir);
	r->conf_file = fs_path("%s/registry/registries.conf", state_dir);
	r->policy_file = fs_path("%s/registry/policy.json", state_dir);
	_cleanup_free_ char *refs = fs_path("%s/registry/refs", state_dir);
	if (r->dir == NULL || r->conf_file == NULL || r->policy_file == NULL || refs == NULL)
		return berth_err_set(err, ENOMEM, "registry");
	if (fs_mkdir_p(refs, 0700, err) < 0 || host_roots_add(&r->roots, r->dir, err) < 0)
		return -1;
	/* skopeo's own configuration is berthd's: no host registries.conf
	 * (its mirrors and short names), signatures not required (digests are) */
	static const char conf[] = "# berthd: registries and mirrors are berthd's \"registries\" settings\n";
	if (fs_write_atomic(r->conf_file, conf, sizeof(conf) - 1, 0600, err) < 0 ||
	    fs_write_atomic(r->policy_file, POLICY, sizeof(POLICY) - 1, 0600, err) < 0)
		return -1;
	DIR *d = opendir(r->dir);
	if (d == NULL)
		return berth_err_set(err, errno, "cannot list %s", r->dir);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		size_t n = strlen(e->d_name);
		if (n > 8 && strcmp(e->d_name + n - 8, ".partial") == 0) {
			_cleanup_free_ char *p = fs_path("%s/%s", r->dir, e->d_name);
			struct berth_err ignored;
			if (p && fs_remove_tree(p, &ignored) == 0)
				log_info("registry: removed %s, left by an interrupted pull", p);
		}
	}
	closedir(d);
	return 0;
}

void registry_stop(struct registry *r)
{
	atomic_store(&r->stopping, true);
}

void registry_close(struct registry *r)
{
	free(r->dir);
	free(r->conf_file);
	free(r->policy_file);
	host_roots_free(&r->roots);
	pthread_mutex_destroy(&r->progress_lock);
	resolve_cache_free(&r->resolve);
	memset(r, 0, sizeof(*r));
}

/* ---- progress ------------------------------------------------------------ */

/* Sets (step != NULL) or ends (NULL) the shown step of a pull of image. */
static void progress_set(struct registry *r, const char *image, const char *step)
{
	pthread_mutex_lock(&r->progress_lock);
	struct registry_progress *slot = NULL, *free_slot = NULL;
	for (size_t i = 0; i < REGISTRY_MAX_PULLS && slot == NULL; i++) {
		if (strcmp(r->progress[i].image, image) == 0)
			slot = &r->progress[i];
		else if (free_slot == NULL && r->progress[i].image[0] == '\0')
			free_slot = &r->progress[i];
	}
	if (slot == NULL && step != NULL && free_slot != NULL) {
		slot = free_slot;
		snprintf(slot->image, sizeof(slot->image), "%s", image);
	}
	if (slot != NULL && step != NULL)
		snprintf(slot->step, sizeof(slot->step), "%s", step);
	else if (slot != NULL)
		memset(slot, 0, sizeof(*slot));
	pthread_mutex_unlock(&r->progress_lock);
}

int registry_pull_step(struct registry *r, const char *image, char *step, size_t size)
{
	int found = -1;
	pthread_mutex_lock(&r->progress_lock);
	for (size_t i = 0; i < REGISTRY_MAX_PULLS && found < 0; i++)
		if (r->progress[i].image[0] != '\0' && strcmp(r->progress[i].image, image) == 0) {
			snprintf(step, size, "%s", r->progress[i].step);
			found = 0;
		}
	pthread_mutex_unlock(&r->progress_lock);
	return found;
}

int registry_check(const struct registry *r, const char *image, struct berth_err *err)
{
	struct image_reference ref;
	struct registry_route route;
	if (image_reference_parse(image, &ref, err) < 0)
		return -1;
	return registry_route(r->cfg, image, &ref, &route, err);
}

/* ---- skopeo ------------------------------------------------------------ */

struct argv_builder {
	const char *v[40];
	size_t n;
	char creds[600];
};

static void arg(struct argv_builder *a, const char *s)
{
	if (a->n < sizeof(a->v) / sizeof(a->v[0]) - 1)
		a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

/* skopeo's global options, then the command, then the source's options. */
static void argv_start(struct argv_builder *a, const struct registry *r, const char *command)
{
	a->n = 0;
	arg(a, r->cfg->skopeo);
	arg(a, "--policy");
	arg(a, r->policy_file);
	arg(a, "--override-arch");
	arg(a, r->cfg->arch);
	arg(a, "--override-os");
	arg(a, r->cfg->os);
	arg(a, command);
}

static void argv_source_opts(struct argv_builder *a, const struct registry *r, const struct registry_route *route,
			     bool copy)
{
	if (route->mirror && route->mirror->oci_dir)
		return;
	const struct registry_host *h = route->host;
	const char *auth = h && h->auth_file ? h->auth_file : r->cfg->auth_file;
	if (h && h->username) {
		snprintf(a->creds, sizeof(a->creds), "%s:%s", h->username, h->password);
		arg(a, copy ? "--src-creds" : "--creds");
		arg(a, a->creds);
	} else if (auth) {
		arg(a, copy ? "--src-authfile" : "--authfile");
		arg(a, auth);
	} else {
		arg(a, copy ? "--src-no-creds" : "--no-creds");
	}
	if (h && h->cert_dir) {
		arg(a, copy ? "--src-cert-dir" : "--cert-dir");
		arg(a, h->cert_dir);
	}
	if (h && !h->tls_verify)
		arg(a, copy ? "--src-tls-verify=false" : "--tls-verify=false");
}

/* skopeo's message, cleaned of its wrapping. */
static void skopeo_reason(const char *errtext, char *buf, size_t size)
{
	char line[1024], clean[1024];
	skopeo_error_line(errtext, line, sizeof(line));
	size_t o = 0;
	for (size_t i = 0; line[i] && o + 1 < sizeof(clean); i++) {
		if (line[i] == '\\' && (line[i + 1] == '"' || line[i + 1] == '\\'))
			i++;
		clean[o++] = line[i];
	}
	clean[o] = '\0';
	const char *m = clean;
	static const char *const wrappers[] = { "Error parsing image name \"", "Error initializing source ",
						"initializing source ", "Error reading manifest " };
	for (size_t k = 0; k < sizeof(wrappers) / sizeof(wrappers[0]); k++)
		if (strncmp(m, wrappers[k], strlen(wrappers[k])) == 0) {
			const char *sep = strstr(m + strlen(wrappers[k]), ": ");
			if (sep)
				m = sep + 2;
			break;
		}
	snprintf(buf, size, "%s", m[0] ? m : "skopeo failed without a message");
}

struct run_result {
	struct berth_buf out, errtext;
	enum skopeo_outcome outcome;
	int status;
};

static void run_result_free(struct run_result *res)
{
	buf_free(&res->out);
	buf_free(&res->errtext);
}

static int timed_out(const struct registry *r, const char *image, struct berth_err *err)
{
	return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
			      "Image \"%s\" could not be pulled within %lld seconds (registries.pull_timeout_ms); "
			      "check that the registry answers, or raise the limit",
			      image, r->cfg->pull_timeout_ms / 1000);
}

static int stopped(const char *image, struct berth_err *err)
{
	return berth_err_setc(err, BERTH_ERR_UNAVAILABLE, 0,
			      "Image \"%s\" was not pulled: the pull was stopped (berthd is stopping, or the "
			      "endpoint is being deleted)",
			      image);
}

/* Runs skopeo; -1 with a message for the API user unless it exited 0. */
static int run_within(struct registry *r, const char *image, const struct registry_fetch_opts *o,
		      struct argv_builder *a, registry_progress_fn progress, void *user_data, long long timeout_ms,
		      struct run_result *res, struct berth_err *err)
{
	struct skopeo_run sr = { .argv = a->v, .registries_conf = r->conf_file, .home = r->dir,
				 .timeout_ms = timeout_ms, .stop = &r->stopping,
				 .cancelled = o->cancelled, .cancel_ctx = o->cancel_ctx,
				 .max_stdout = CONFIG_MAX, .on_line = progress, .user_data = user_data };
	if (skopeo_run(&sr, &res->out, &res->errtext, &res->outcome, &res->status, err) < 0)
		return berth_err_prefix(err, "Image \"%s\" could not be pulled", image);
	switch (res->outcome) {
	case SKOPEO_TIMED_OUT:
		return timed_out(r, image, err);
	case SKOPEO_STOPPED:
		return stopped(image, err);
	case SKOPEO_TOO_MUCH:
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "Image \"%s\": the registry's manifest or config is larger than berth reads "
				      "(%u bytes)",
				      image, CONFIG_MAX);
	case SKOPEO_EXITED:
		break;
	}
	if (res->status != 0) {
		char why[1024];
		skopeo_reason(res->errtext.data ? res->errtext.data : "", why, sizeof(why));
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "Image \"%s\" could not be pulled: %s", image, why);
	}
	return 0;
}

static int run(struct registry *r, const char *image, const struct registry_fetch_opts *o, struct argv_builder *a,
	       registry_progress_fn progress, void *user_data, struct run_result *res, struct berth_err *err)
{
	return run_within(r, image, o, a, progress, user_data, r->cfg->pull_timeout_ms, res, err);
}

/* ---- records of what references resolved to ---------------------------- */

static char *ref_record_path(const struct registry *r, const char *normalized)
{
	char hex[65];
	sigv4_sha256_hex(normalized, strlen(normalized), hex);
	return fs_path("%s/refs/%s", r->dir, hex);
}

static int write_record(const char *p, const char *normalized, const struct registry_image *img)
{
	char text[1400];
	int n = snprintf(text, sizeof(text), "%s\n%s\n%s\n%.3f\n", img->digest, normalized, img->resolved,
			 img->resolved_at);
	struct berth_err err;
	if (p == NULL || n < 0 || (size_t)n >= sizeof(text) || fs_write_atomic(p, text, (size_t)n, 0600, &err) < 0)
		return -1;
	return 0;
}

static int write_ref_record(const struct registry *r, const char *normalized, const struct registry_image *img)
{
	_cleanup_free_ char *p = ref_record_path(r, normalized);
	return write_record(p, normalized, img);
}

/* A tag resolved again to the digest its record names: only the time
 * changes, so the record is replaced (atomically, by rename) without
 * waiting for the disk; after a crash it shows an older time, or is gone
 * and the tag is asked again, never a wrong digest. A new digest is
 * written durably. */
static void refresh_ref_record(const struct registry *r, const char *image, const char *normalized,
			       const struct registry_image *img)
{
	struct registry_image known;
	if (registry_lookup(r, image, &known) < 0 || strcmp(known.digest, img->digest) != 0) {
		write_ref_record(r, normalized, img);
		return;
	}
	char text[1400];
	int n = snprintf(text, sizeof(text), "%s\n%s\n%s\n%.3f\n", img->digest, normalized, img->resolved,
			 img->resolved_at);
	_cleanup_free_ char *p = ref_record_path(r, normalized);
	_cleanup_free_ char *tmp = p ? fs_path("%s.tmp.%d", p, (int)gettid()) : NULL;
	if (tmp == NULL || n < 0 || (size_t)n >= sizeof(text))
		return;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	bool ok = fs_write_all(fd, text, (size_t)n) == 0;
	if (close(fd) < 0 || !ok || rename(tmp, p) < 0)
		unlink(tmp);
}

/* Reads a record file: digest, reference, resolved, time. */
static int read_ref_record(const char *path, struct registry_image *out, char *normalized, size_t nsize)
{
	struct berth_buf b = BERTH_BUF_INIT;
	struct berth_err err;
	if (fs_read_file(path, &b, 4096, &err) < 0)
		return -1;
	char digest[128] = "", ref[700] = "", resolved[700] = "";
	double at = 0;
	int got = b.data ? sscanf(b.data, "%127[^\n]\n%699[^\n]\n%699[^\n]\n%lf", digest, ref, resolved, &at) : 0;
	buf_free(&b);
	if (got != 4 || strlen(digest) != 71 || strncmp(digest, "sha256:", 7) != 0)
		return -1;
	snprintf(out->digest, sizeof(out->digest), "%.71s", digest);
	snprintf(out->resolved, sizeof(out->resolved), "%.599s", resolved);
	out->resolved_at = at;
	if (normalized)
		snprintf(normalized, nsize, "%s", ref);
	return 0;
}

static bool cached(const struct registry *r, const char *digest, char *layout, size_t size)
{
	snprintf(layout, size, "%s/sha256-%s", r->dir, digest + 7);
	struct stat st;
	return stat(layout, &st) == 0 && S_ISDIR(st.st_mode);
}

int registry_lookup(const struct registry *r, const char *image, struct registry_image *out)
{
	struct image_reference ref;
	struct berth_err err;
	char normalized[600];
	memset(out, 0, sizeof(*out));
	if (image_reference_parse(image, &ref, &err) < 0 || image_reference_format(&ref, normalized, sizeof(normalized)) < 0)
		return -1;
	_cleanup_free_ char *p = ref_record_path(r, normalized);
	if (p == NULL || read_ref_record(p, out, NULL, 0) < 0)
		return -1;
	cached(r, out->digest, out->layout, sizeof(out->layout));
	return 0;
}

/* ---- per-endpoint pins --------------------------------------------------- */

static char *pin_path(const struct registry *r, const char *endpoint, const char *image)
{
	struct image_reference ref;
	struct berth_err err;
	char normalized[600], hex[65];
	if (strchr(endpoint, '/') || endpoint[0] == '.' || image_reference_parse(image, &ref, &err) < 0 ||
	    image_reference_format(&ref, normalized, sizeof(normalized)) < 0)
		return NULL;
	sigv4_sha256_hex(normalized, strlen(normalized), hex);
	return fs_path("%s/pins/%s/%s", r->dir, endpoint, hex);
}

int registry_pin(struct registry *r, const char *endpoint, const char *image, const struct registry_image *img)
{
	_cleanup_free_ char *p = pin_path(r, endpoint, image);
	_cleanup_free_ char *dir = fs_path("%s/pins/%s", r->dir, endpoint);
	struct berth_err err;
	if (p == NULL || dir == NULL || fs_mkdir_p(dir, 0700, &err) < 0)
		return -1;
	return write_record(p, image, img);
}

int registry_pinned(const struct registry *r, const char *endpoint, const char *image, struct registry_image *out)
{
	memset(out, 0, sizeof(*out));
	_cleanup_free_ char *p = pin_path(r, endpoint, image);
	if (p == NULL || read_ref_record(p, out, NULL, 0) < 0)
		return -1;
	cached(r, out->digest, out->layout, sizeof(out->layout));
	return 0;
}

void registry_unpin(struct registry *r, const char *endpoint)
{
	if (strchr(endpoint, '/') || endpoint[0] == '.' || endpoint[0] == '\0')
		return;
	_cleanup_free_ char *dir = fs_path("%s/pins/%s", r->dir, endpoint);
	struct berth_err err;
	if (dir)
		fs_remove_tree(dir, &err);
}

/* ---- checks before pulling --------------------------------------------- */

static bool platform_matches(yajl_val platform, const struct registry_config *c)
{
	const char *os = json_get_string(platform, "os");
	const char *arch = json_get_string(platform, "architecture");
	return os && arch && strcmp(os, c->os) == 0 && strcmp(arch, c->arch) == 0;
}

/* In a manifest list: the digest of the entry for our platform. */
static int pick_platform(const char *image, const struct registry_config *c, const char *text, size_t len,
			 char *digest, struct berth_err *err)
{
	yajl_val root = json_parse(text, len, err);
	if (root == NULL)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "Image \"%s\": the registry's manifest list is not JSON",
				      image);
	yajl_val list = json_get(root, "manifests");
	char have[512] = "";
	size_t used = 0;
	int r = -1;
	for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len && r < 0; i++) {
		yajl_val m = list->u.array.values[i];
		yajl_val p = json_get(m, "platform");
		const char *d = json_get_string(m, "digest");
		if (p && d && platform_matches(p, c) && strlen(d) == 71) {
			snprintf(digest, 72, "%s", d);
			r = 0;
		} else if (p && used < sizeof(have)) {
			const char *os = json_get_string(p, "os"), *arch = json_get_string(p, "architecture");
			used += (size_t)snprintf(have + used, sizeof(have) - used, "%s%s/%s", used ? ", " : "",
						 os ? os : "?", arch ? arch : "?");
		}
	}
	yajl_tree_free(root);
	if (r < 0)
		berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
			       "Image \"%s\" has no %s/%s image (its manifest list has: %s); berthd runs %s/%s images "
			       "(registries.os, registries.arch)",
			       image, c->os, c->arch, have[0] ? have : "nothing", c->os, c->arch);
	return r;
}

/* Declared size: config + layers (compressed). */
static int check_manifest(const char *image, const struct registry *r, const char *text, size_t len,
			  struct berth_err *err)
{
	struct oci_manifest m;
	if (oci_manifest_parse(text, len, &m, err) < 0)
		return berth_err_prefix(err, "Image \"%s\": the registry's manifest", image);
	unsigned long long total = (unsigned long long)m.config.size;
	for (size_t i = 0; i < m.n_layers; i++)
		total += (unsigned long long)m.layers[i].size;
	size_t n_layers = m.n_layers;
	oci_manifest_free(&m);
	if (r->max_bytes > 0 && total > r->max_bytes)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "Image \"%s\" is over berthd's image bounds: its %zu layers and config are %llu "
				      "bytes compressed, above image_max_bytes %llu; nothing was downloaded",
				      image, n_layers, total, (unsigned long long)r->max_bytes);
	return 0;
}

static int check_config(const char *image, const struct registry_config *c, const char *text, size_t len,
			struct berth_err *err)
{
	yajl_val root = json_parse(text, len, err);
	if (root == NULL)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "Image \"%s\": its config is not JSON", image);
	bool ok = platform_matches(root, c);
	const char *os = json_get_string(root, "os"), *arch = json_get_string(root, "architecture");
	if (!ok)
		berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
			       "Image \"%s\" is built for %s/%s; berthd runs %s/%s images (registries.os, "
			       "registries.arch). Push a %s/%s image, or a manifest list that has one",
			       image, os ? os : "an unknown OS", arch ? arch : "an unknown architecture", c->os, c->arch,
			       c->os, c->arch);
	yajl_tree_free(root);
	return ok ? 0 : -1;
}

static bool doc_is_list(const char *text, size_t len)
{
	return oci_doc_is_index(text, len) || memmem(text, len, "manifest.list.v2", 16) != NULL;
}

/* ---- what a tag means, asked by berthd itself --------------------------- */

/* One HEAD (resolve.h) to where route leads, within registries.resolve_timeout_ms
 * of the deadline, with the credentials and TLS settings skopeo gets. */
static enum resolve_outcome resolve_fast(struct registry *r, const struct image_reference *ref,
					 const struct registry_route *route, const struct registry_fetch_opts *o,
					 char digest[72], char *why, size_t why_size)
{
	const char *host = route->mirror ? route->mirror->registry : ref->registry;
	const char *prefix = route->mirror ? route->mirror->prefix : "";
	char repository[600];
	int w = snprintf(repository, sizeof(repository), "%s%s%s", prefix, prefix[0] ? "/" : "", ref->repository);
	if (w < 0 || (size_t)w >= sizeof(repository)) {
		snprintf(why, why_size, "the repository name is too long");
		return RESOLVE_FALLBACK;
	}
	const struct registry_host *h = route->host;
	long long budget = r->cfg->pull_timeout_ms < r->cfg->resolve_timeout_ms ? r->cfg->pull_timeout_ms
										: r->cfg->resolve_timeout_ms;
	struct resolve_request q = { .host = host, .repository = repository, .tag = ref->tag, .settings = h,
				     .auth_file = h && h->auth_file ? h->auth_file : r->cfg->auth_file,
				     .timeout_ms = budget, .stop = &r->stopping, .cancelled = o->cancelled,
				     .cancel_ctx = o->cancel_ctx };
	return resolve_tag(&r->resolve, &q, digest, why, why_size);
}

/* ---- the pull ----------------------------------------------------------- */

struct progress_ctx {
	struct registry *r;
	const char *image;
	registry_progress_fn fn;
	void *user_data;
};

static void on_copy_line(void *user_data, const char *line)
{
	struct progress_ctx *p = user_data;
	log_info("pull %s: %s", p->image, line);
	progress_set(p->r, p->image, line);
	if (p->fn)
		p->fn(p->user_data, line);
}

static int pull_locked(struct registry *r, const char *image, const struct registry_fetch_opts *o,
		       const struct registry_route *route, const char *digest, const char *layout, struct berth_err *err)
{
	_cleanup_free_ char *partial = fs_path("%s.partial", layout);
	_cleanup_free_ char *dest = fs_path("oci:%s.partial:" LAYOUT_TAG, layout);
	if (partial == NULL || dest == NULL)
		return berth_err_set(err, ENOMEM, "registry");
	struct berth_err ignored;
	fs_remove_tree(partial, &ignored);
	struct argv_builder a;
	argv_start(&a, r, "copy");
	arg(&a, "--quiet=false");
	argv_source_opts(&a, r, route, true);
	arg(&a, route->pinned_source);
	arg(&a, dest);
	struct progress_ctx pc = { r, image, o->progress, o->user_data };
	struct run_result res = { BERTH_BUF_INIT, BERTH_BUF_INIT, SKOPEO_EXITED, 0 };
	long long t0 = clock_now_ms();
	log_info("pull %s: %s (%s) into %s", image, route->pinned_source, digest, layout);
	int rc = run(r, image, o, &a, on_copy_line, &pc, &res, err);
	run_result_free(&res);
	if (rc == 0 && rename(partial, layout) < 0)
		rc = berth_err_set(err, errno, "cannot move %s into place", partial);
	if (rc < 0) {
		fs_remove_tree(partial, &ignored);
		log_warn("pull %s: failed: %s", image, err->msg);
		return -1;
	}
	log_info("pull %s: done in %lld ms", image, clock_now_ms() - t0);
	return 0;
}

static int fetch(struct registry *r, const char *image, const struct registry_fetch_opts *o,
		 struct registry_image *out, struct berth_err *err)
{
	bool refresh = o->refresh;
	memset(out, 0, sizeof(*out));
	struct image_reference ref;
	struct registry_route route;
	char normalized[600];
	if (image_reference_parse(image, &ref, err) < 0 || registry_route(r->cfg, image, &ref, &route, err) < 0)
		return -1;
	if (image_reference_format(&ref, normalized, sizeof(normalized)) < 0)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "Image \"%s\" is too long", image);
	/* no network: a digest named, or a tag resolved before (not refreshing) */
	struct registry_image known;
	if (ref.digest[0] && !(route.mirror && route.mirror->oci_dir)) {
		snprintf(out->digest, sizeof(out->digest), "%s", ref.digest);
	} else if (!refresh && registry_lookup(r, image, &known) == 0) {
		snprintf(out->digest, sizeof(out->digest), "%s", known.digest);
	}
	if (out->digest[0] && cached(r, out->digest, out->layout, sizeof(out->layout))) {
		image_reference_pinned(&ref, out->digest, out->resolved, sizeof(out->resolved));
		out->resolved_at = clock_epoch_seconds_ms();
		if (registry_lookup(r, image, &known) == 0 && strcmp(known.digest, out->digest) == 0)
			out->resolved_at = known.resolved_at;
		else
			write_ref_record(r, normalized, out);
		return 0;
	}
	/* ask the registry what the reference means */
	char step[400];
	snprintf(step, sizeof(step), "asking %.200s what %.150s means", route.source, ref.digest[0] ? ref.digest : ref.tag);
	progress_set(r, image, step);
	long long skopeo_ms = r->cfg->pull_timeout_ms;
	if (ref.digest[0] == '\0' && !(route.mirror && route.mirror->oci_dir)) {
		long long t0 = clock_now_ms();
		char why[512];
		enum resolve_outcome ro = resolve_fast(r, &ref, &route, o, out->digest, why, sizeof(why));
		if (ro == RESOLVE_STOPPED)
			return stopped(image, err);
		if (ro == RESOLVE_OK && cached(r, out->digest, out->layout, sizeof(out->layout))) {
			image_reference_pinned(&ref, out->digest, out->resolved, sizeof(out->resolved));
			out->resolved_at = clock_epoch_seconds_ms();
			refresh_ref_record(r, image, normalized, out);
			log_info("image %s is %s (cached; the registry answered in %lld ms)", image, out->digest,
				 clock_now_ms() - t0);
			return 0;
		}
		if (ro == RESOLVE_FALLBACK)
			log_info("image %s: asking skopeo what %s means, since berthd's own request could not tell: %s",
				 image, ref.tag, why);
		/* else a digest not cached: skopeo inspects it (platform, size) as before */
		out->digest[0] = '\0';
		skopeo_ms -= clock_now_ms() - t0;
		if (skopeo_ms <= 0)
			return timed_out(r, image, err);
	}
	struct argv_builder a;
	struct run_result res = { BERTH_BUF_INIT, BERTH_BUF_INIT, SKOPEO_EXITED, 0 };
	argv_start(&a, r, "inspect");
	arg(&a, "--raw");
	argv_source_opts(&a, r, &route, false);
	arg(&a, route.source);
	if (run_within(r, image, o, &a, NULL, NULL, skopeo_ms, &res, err) < 0) {
		run_result_free(&res);
		return -1;
	}
	char hex[65];
	sigv4_sha256_hex(res.out.data ? res.out.data : "", res.out.len, hex);
	snprintf(out->digest, sizeof(out->digest), "sha256:%s", hex);
	if (ref.digest[0] && strcmp(ref.digest, out->digest) != 0) {
		run_result_free(&res);
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "Image \"%s\" could not be pulled: its manifest has digest %s, not the %s the "
				      "reference names",
				      image, out->digest, ref.digest);
	}
	image_reference_pinned(&ref, out->digest, out->resolved, sizeof(out->resolved));
	out->resolved_at = clock_epoch_seconds_ms();
	bool is_list = res.out.len > 0 && doc_is_list(res.out.data, res.out.len);
	struct berth_buf manifest = res.out;
	res.out = (struct berth_buf)BERTH_BUF_INIT;
	run_result_free(&res);
	if (cached(r, out->digest, out->layout, sizeof(out->layout))) {
		buf_free(&manifest);
		write_ref_record(r, normalized, out);
		log_info("image %s is %s (cached)", image, out->digest);
		return 0;
	}
	/* what will be pulled: platform and size, before any layer moves */
	char platform_digest[72];
	snprintf(platform_digest, sizeof(platform_digest), "%s", out->digest);
	int rc = 0;
	if (is_list) {
		rc = pick_platform(image, r->cfg, manifest.data, manifest.len, platform_digest, err);
		buf_reset(&manifest);
		if (rc == 0 && registry_route_pin(&ref, &route, platform_digest) == 0) {
			argv_start(&a, r, "inspect");
			arg(&a, "--raw");
			argv_source_opts(&a, r, &route, false);
			arg(&a, route.pinned_source);
			rc = run(r, image, o, &a, NULL, NULL, &res, err);
			if (rc == 0)
				rc = buf_append(&manifest, res.out.data ? res.out.data : "", res.out.len);
			run_result_free(&res);
		}
	}
	if (rc == 0)
		rc = check_manifest(image, r, manifest.data ? manifest.data : "", manifest.len, err);
	buf_free(&manifest);
	if (rc == 0 && !is_list) {
		registry_route_pin(&ref, &route, out->digest);
		argv_start(&a, r, "inspect");
		arg(&a, "--config");
		arg(&a, "--raw");
		argv_source_opts(&a, r, &route, false);
		arg(&a, route.pinned_source);
		rc = run(r, image, o, &a, NULL, NULL, &res, err);
		if (rc == 0)
			rc = check_config(image, r->cfg, res.out.data ? res.out.data : "", res.out.len, err);
		run_result_free(&res);
	}
	if (rc < 0)
		return -1;
	registry_route_pin(&ref, &route, out->digest);
	/* one pull per digest */
	_cleanup_free_ char *lock_path = fs_path("%s/sha256-%s.lock", r->dir, out->digest + 7);
	if (lock_path == NULL)
		return berth_err_set(err, ENOMEM, "registry");
	_cleanup_close_ int lock = oci_cache_lock(lock_path, err);
	if (lock < 0)
		return -1;
	if (!cached(r, out->digest, out->layout, sizeof(out->layout))) {
		rc = pull_locked(r, image, o, &route, out->digest, out->layout, err);
		out->pulled = rc == 0;
	}
	unlink(lock_path);
	if (rc < 0)
		return -1;
	write_ref_record(r, normalized, out);
	return 0;
}

int registry_fetch(struct registry *r, const char *image, const struct registry_fetch_opts *opts,
		   struct registry_image *out, struct berth_err *err)
{
	static const struct registry_fetch_opts none = { 0 };
	int rc = fetch(r, image, opts ? opts : &none, out, err);
	progress_set(r, image, NULL);
	return rc;
}

/* ---- listing and pruning ------------------------------------------------ */

/* Calls fn for each cached digest. */
static int each_cached(const struct registry *r, int (*fn)(void *ctx, const char *digest, const char *path),
		       void *ctx, struct berth_err *err)
{
	DIR *d = opendir(r->dir);
	if (d == NULL)
		return berth_err_set(err, errno, "cannot list %s", r->dir);
	int rc = 0;
	for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
		if (strncmp(e->d_name, "sha256-", 7) != 0 || strlen(e->d_name) != 7 + 64)
			continue;
		char digest[72];
		snprintf(digest, sizeof(digest), "sha256:%s", e->d_name + 7);
		_cleanup_free_ char *p = fs_path("%s/%s", r->dir, e->d_name);
		rc = p ? fn(ctx, digest, p) : berth_err_set(err, ENOMEM, "registry");
	}
	closedir(d);
	return rc;
}

struct list_ctx {
	const struct registry *r;
	const char *const *users;
	yajl_gen g;
};

static int list_one(void *c, const char *digest, const char *path)
{
	struct list_ctx *lc = c;
	yajl_gen g = lc->g;
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "digest", digest);
	json_gen_kv_int(g, "bytes", (long long)fs_tree_bytes(path));
	json_gen_str(g, "references");
	yajl_gen_array_open(g);
	double newest = 0;
	_cleanup_free_ char *refs = fs_path("%s/refs", lc->r->dir);
	DIR *d = refs ? opendir(refs) : NULL;
	for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.')
			continue;
		_cleanup_free_ char *p = fs_path("%s/%s", refs, e->d_name);
		struct registry_image img;
		char normalized[700];
		if (p && read_ref_record(p, &img, normalized, sizeof(normalized)) == 0 && strcmp(img.digest, digest) == 0) {
			json_gen_str(g, normalized);
			if (img.resolved_at > newest)
				newest = img.resolved_at;
		}
	}
	if (d)
		closedir(d);
	yajl_gen_array_close(g);
	json_gen_kv_double(g, "resolved_at", newest);
	json_gen_str(g, "models");
	yajl_gen_array_open(g);
	for (const char *const *u = lc->users; u && u[0] && u[1]; u += 2)
		if (strcmp(u[0], digest) == 0)
			json_gen_str(g, u[1]);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	return 0;
}

int registry_list(const struct registry *r, const char *const *users, struct berth_buf *json, struct berth_err *err)
{
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return berth_err_set(err, ENOMEM, "registry");
	yajl_gen_array_open(g);
	struct list_ctx lc = { r, users, g };
	int rc = each_cached(r, list_one, &lc, err);
	yajl_gen_array_close(g);
	if (rc < 0) {
		yajl_gen_free(g);
		return -1;
	}
	if (json_gen_finish(g, json) < 0) /* frees g */
		return berth_err_set(err, ENOMEM, "registry");
	return 0;
}

struct prune_ctx {
	struct registry *r;
	const char *const *keep;
	size_t removed;
	uint64_t freed;
	struct berth_err *err;
};

static int prune_one(void *c, const char *digest, const char *path)
{
	struct prune_ctx *pc = c;
	for (const char *const *k = pc->keep; k && *k; k++)
		if (strcmp(*k, digest) == 0)
			return 0;
	_cleanup_free_ char *lock_path = fs_path("%s/sha256-%s.lock", pc->r->dir, digest + 7);
	if (lock_path == NULL)
		return berth_err_set(pc->err, ENOMEM, "registry");
	_cleanup_close_ int lock = oci_cache_lock(lock_path, pc->err);
	if (lock < 0)
		return -1;
	uint64_t bytes = fs_tree_bytes(path);
	int rc = fs_remove_tree(path, pc->err);
	unlink(lock_path);
	if (rc < 0)
		return -1;
	log_info("registry: pruned %s (%llu bytes)", digest, (unsigned long long)bytes);
	pc->removed++;
	pc->freed += bytes;
	return 0;
}

int registry_prune(struct registry *r, const char *const *keep, size_t *removed, uint64_t *freed,
		   struct berth_err *err)
{
	struct prune_ctx pc = { r, keep, 0, 0, err };
	int rc = each_cached(r, prune_one, &pc, err);
	*removed = pc.removed;
	*freed = pc.freed;
	return rc;
}
