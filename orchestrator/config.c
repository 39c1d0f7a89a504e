/* config.c — see config.h. One table of settings serves the file and the
 * flags: each setting is checked by the same function, with the same
 * bounds, whichever way it arrives. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact.h"
#include "credentials.h"
#include "fsutil.h"
#include "image.h"
#include "json.h"
#include "mme.h"
#include "proto_control.h"
#include "runtime.h"
#include "uid_range.h"

#define CONFIG_MAX_BYTES (1u << 20)
#define CONFIG_MAX_STRING 4096

enum setting_kind {
	SETTING_STRING,   /* text; JSON null clears it */
	SETTING_MS,       /* int, milliseconds */
	SETTING_FACTOR,   /* double, 0 < F <= 1000 */
	SETTING_FRACTION, /* double, 0 <= F <= 1 */
	SETTING_COUNT,    /* long long, min..max */
	SETTING_BYTES,    /* unsigned long long, >= min */
	SETTING_LIST,     /* listen, tls_listen: array in the file, repeatable flag */
	SETTING_SWITCH,   /* bool; a flag without argument */
	SETTING_ROOTS,    /* struct host_roots: array in the file, repeatable flag */
	SETTING_BUCKETS,  /* struct objstore_list of bucket names: the same */
	SETTING_HOSTS,    /* struct objstore_list of HOST[:PORT]: the same */
	SETTING_REGISTRIES, /* struct registry_config: an object in the file, a file of it as a flag */
};

struct setting {
	const char *key;  /* member of the file */
	const char *flag; /* --flag */
	const char *arg;  /* the flag's argument, for the usage text */
	enum setting_kind kind;
	size_t offset;
	long long min, max;
	const char *help;
};

#define AT(m) offsetof(struct berthd_config, m)

static const struct setting settings[] = {
	{ "state_dir", "state-dir", "DIR", SETTING_STRING, AT(state_dir), 0, 0,
	  "state, bundles, logs, caches (default " BERTHD_DEFAULT_STATE_DIR ")" },
	{ "run_dir", "run-dir", "DIR", SETTING_STRING, AT(run_dir), 0, 0,
	  "sockets and runc state (default " BERTHD_DEFAULT_RUN_DIR " for the default state directory, "
	  "/run/berth-HASH for any other: docs/design.md, State)" },
	{ "socket", "socket", "PATH", SETTING_STRING, AT(socket), 0, 0, "admin socket, root only (default RUN_DIR/berthd.sock)" },
	{ "object_store_root", "object-store-root", "DIR", SETTING_STRING, AT(object_store_root), 0, 0,
	  "where s3://bucket/key is read from (DIR/bucket/key)" },
	{ "region", "region", "R", SETTING_STRING, AT(region), 0, 0, "ARN region (default us-east-1)" },
	{ "account", "account", "A", SETTING_STRING, AT(account), 0, 0, "ARN account (default 000000000000)" },
	{ "create_grace_ms", "create-grace-ms", "N", SETTING_MS, AT(create_grace_ms), 0, 0,
	  "how long CreateEndpoint/DeleteEndpoint wait for a stable state (5000)" },
	{ "health_timeout_ms", "health-timeout-ms", "N", SETTING_MS, AT(health_timeout_ms), 0, 0,
	  "a container must answer /ping within this (240000)" },
	{ "stop_timeout_ms", "stop-timeout-ms", "N", SETTING_MS, AT(stop_timeout_ms), 0, 0,
	  "SIGTERM to SIGKILL on stop (30000)" },
	{ "shim", "shim", "PATH", SETTING_STRING, AT(shim), 0, 0, "berth-shim binary (default: next to berthd)" },
	{ "runc", "runc", "PATH", SETTING_STRING, AT(runc), 0, 0, "runc binary (default: runc on PATH)" },
	{ "instance_types", "instance-types", "PATH", SETTING_STRING, AT(instance_types), 0, 0,
	  "instance type table (default: the one built in)" },
	{ "seccomp_profile", "seccomp-profile", "PATH", SETTING_STRING, AT(seccomp_profile), 0, 0,
	  "containers' seccomp profile (default: built in; \"none\": no filter)" },
	{ "cpu_overcommit", "cpu-overcommit", "F", SETTING_FACTOR, AT(cpu_overcommit), 0, 0,
	  "vCPUs of all instances may reach nproc x F (8.0)" },
	{ "memory_overcommit", "memory-overcommit", "F", SETTING_FACTOR, AT(memory_overcommit), 0, 0,
	  "memory of all instances may reach MemTotal x F (2.0)" },
	{ "instance_pids_limit", "pids-limit", "N", SETTING_COUNT, AT(instance_pids_limit), 16, 1LL << 22,
	  "processes per endpoint instance (4096)" },
	{ "listen", "listen", "HOST:PORT", SETTING_LIST, AT(listen), 0, 0,
	  "bind this router address and run berth-router on it (repeatable)" },
	{ "tls_listen", "tls-listen", "HOST:PORT", SETTING_LIST, AT(tls_listen), 0, 0,
	  "bind this router address for TLS only (needs --tls-cert, --tls-key; repeatable)" },
	{ "router", "router", "PATH", SETTING_STRING, AT(router), 0, 0, "berth-router binary (default: next to berthd)" },
	{ "router_user", "router-user", "USER", SETTING_STRING, AT(router_user), 0, 0,
	  "the router's dedicated unprivileged user (default berth; never nobody)" },
	/* berth-router's containment limits, passed on as its flags of the same
	 * names with the same bounds; not set: the router's own defaults */
	{ "router_request_timeout_ms", "router-request-timeout-ms", "N", SETTING_COUNT, AT(router_request_timeout_ms),
	  1, 3600000, "router: a whole request must arrive within this (router default 60000)" },
	{ "router_max_connections", "router-max-connections", "N", SETTING_COUNT, AT(router_max_connections), 1,
	  1000000, "router: client connections served at once (router default 4096)" },
	{ "router_max_buffered_bytes", "router-max-buffered-bytes", "N", SETTING_COUNT, AT(router_max_buffered_bytes),
	  1, 1LL << 40, "router: request body bytes held, all clients (router default 268435456)" },
	{ "router_max_connection_buffered_bytes", "router-max-connection-buffered-bytes", "N", SETTING_COUNT,
	  AT(router_max_connection_buffered_bytes), 1, 1LL << 40,
	  "router: request body bytes held by one HTTP/2 connection (router default 16777216)" },
	{ "stop_containers", "stop-containers", NULL, SETTING_SWITCH, AT(stop_containers), 0, 0,
	  "on SIGTERM, stop every endpoint's containers (records are kept)" },
	{ "s3_endpoint", "s3-endpoint", "URL", SETTING_STRING, AT(s3_endpoint), 0, 0,
	  "S3-compatible store every s3:// URL is read from (SigV4, path style; default: --object-store-root)" },
	{ "model_max_bytes", "model-max-bytes", "N", SETTING_BYTES, AT(model_max_bytes), 1, 0,
	  "bound of one ModelDataUrl or SAGEMAKER_SUBMIT_DIRECTORY artifact, downloaded and unpacked (68719476736)" },
	{ "artifact_cache_max_bytes", "artifact-cache-max-bytes", "N", SETTING_BYTES, AT(artifact_cache_max_bytes), 0, 0,
	  "model data kept once no container holds it, LRU beyond N (21474836480; 0: until berth artifacts prune)" },
	{ "mme_max_model_bytes", "mme-max-model-bytes", "N", SETTING_BYTES, AT(mme_max_model_bytes), 1, 0,
	  "bound of one multi-model artifact, unpacked (10737418240)" },
	{ "async_queue_max", "async-queue-max", "N", SETTING_COUNT, AT(async_queue_max), 1, 1000000,
	  "InvokeEndpointAsync requests waiting or running per endpoint; more are refused 503 (1000)" },
	{ "async_max_bytes", "async-max-bytes", "N", SETTING_BYTES, AT(async_max_bytes), 1, 0,
	  "bound of one InvokeEndpointAsync input and of its answer (104857600)" },
	{ "mme_disk_bytes", "mme-disk-bytes", "N", SETTING_BYTES, AT(mme_disk_bytes), 0, 0,
	  "bound of an endpoint's model cache on disk, LRU (107374182400; 0 none)" },
	{ "mme_memory_high_water", "mme-memory-high-water", "F", SETTING_FRACTION, AT(mme_memory_high_water), 0, 0,
	  "evict LRU models above F x the instance's memory limit (0.9; 0 off)" },
	{ "no_user_namespaces", "no-user-namespaces", NULL, SETTING_SWITCH, AT(no_user_namespaces), 0, 0,
	  "containers' root is host root (default: a user namespace per instance)" },
	{ "userns_uid_base", "userns-uid-base", "UID", SETTING_COUNT, AT(userns_uid_base), USERNS_RANGE_SIZE,
	  USERNS_ID_LIMIT - USERNS_RANGE_SIZE, "first host uid of the containers' ranges (100000000; another state directory than the default "
	  "takes a window of 67108864 ids above it, unless this is given)" },
	{ "image_roots", "image-root", "DIR", SETTING_ROOTS, AT(image_roots), 0, 0,
	  "local images (rootfs dirs, tarballs, oci: layouts) only under DIR (repeatable; default "
	  "STATE_DIR/local/images and " BERTHD_SHARED_IMAGE_DIR ")" },
	{ "model_roots", "model-root", "DIR", SETTING_ROOTS, AT(model_roots), 0, 0,
	  "file:// model data only under DIR (repeatable; default STATE_DIR/local/models and "
	  BERTHD_SHARED_IMAGE_DIR ")" },
	{ "s3_buckets", "s3-bucket", "NAME", SETTING_BUCKETS, AT(s3_buckets), 0, 0,
	  "a bucket s3:// model data may come from (repeatable; needed with --s3-endpoint)" },
	{ "https_hosts", "https-host", "HOST[:PORT]", SETTING_HOSTS, AT(https_hosts), 0, 0,
	  "a host https:// model data may come from, redirects included (repeatable; default none)" },
	{ "https_ca_file", "https-ca-file", "FILE", SETTING_STRING, AT(https_ca_file), 0, 0,
	  "CA certificates (PEM) https:// model data is verified with (default: the system's)" },
	{ "image_max_bytes", "image-max-bytes", "N", SETTING_BYTES, AT(image_max_bytes), 1, 0,
	  "unpacked size of one image, all layers (21474836480)" },
	{ "image_max_entries", "image-max-entries", "N", SETTING_COUNT, AT(image_max_entries), 1, 1LL << 40,
	  "files, directories and links of one image (1000000)" },
	{ "registries", "registries", "FILE", SETTING_REGISTRIES, AT(registries), 0, 0,
	  "registries images are pulled from, their credentials and CAs, mirrors (a JSON file holding the "
	  "\"registries\" object of the settings file; default: none, registry images refused)" },
	{ "auth", "auth", "MODE", SETTING_STRING, AT(auth), 0, 0,
	  "sigv4: every call is signed with a key of --credentials (default); none: anyone who reaches a loopback "
	  "address may call (Host checked)" },
	{ "credentials", "credentials", "PATH", SETTING_STRING, AT(credentials), 0, 0,
	  "access keys, AWS credentials INI shape, owner berthd's user, mode 0600 (default " CREDENTIALS_DEFAULT_PATH ")" },
	{ "tls_cert", "tls-cert", "PEM", SETTING_STRING, AT(tls_cert), 0, 0,
	  "the router's certificate chain; with --tls-key: TLS 1.2+ with ALPN h2, http/1.1 (reloaded on SIGHUP)" },
	{ "tls_key", "tls-key", "PEM", SETTING_STRING, AT(tls_key), 0, 0, "the private key of --tls-cert" },
	{ "cdi_spec_dirs", "cdi-spec-dir", "DIR", SETTING_ROOTS, AT(cdi_spec_dirs), 0, 0,
	  "CDI spec files (*.json, *.yaml) of the host's accelerators, later directories first (repeatable; "
	  "default /etc/cdi and /var/run/cdi)" },
	{ "accelerator_kind", "accelerator-kind", "KIND", SETTING_STRING, AT(accelerator_kind), 0, 0,
	  "the CDI kind of a GPU instance type's devices when its table entry names none (default nvidia.com/gpu)" },
	{ "insecure_listen", "insecure-listen", NULL, SETTING_SWITCH, AT(insecure_listen), 0, 0,
	  "allow a non-loopback --listen without TLS or keys (logged as a warning at every start)" },
};

int berthd_config_set(char **member, const char *value)
{
	char *copy = NULL;
	if (value != NULL && (copy = strdup(value)) == NULL)
		return -1;
	free(*member);
	*member = copy;
	return 0;
}

int berthd_config_defaults(struct berthd_config *c, struct berth_err *err)
{
	memset(c, 0, sizeof(*c));
	c->create_grace_ms = 5000;
	c->health_timeout_ms = 240000;
	c->stop_timeout_ms = 30000;
	c->instance_pids_limit = 4096;
	c->cpu_overcommit = 8.0;
	c->memory_overcommit = 2.0;
	c->model_max_bytes = ARTIFACT_MAX_UNPACKED_BYTES;
	c->artifact_cache_max_bytes = ARTIFACT_CACHE_DEFAULT_MAX_BYTES;
	c->mme_max_model_bytes = MME_DEFAULT_MAX_MODEL_BYTES;
	c->mme_disk_bytes = MME_DEFAULT_DISK_BYTES;
	c->async_queue_max = RUNTIME_ASYNC_QUEUE_MAX_DEFAULT;
	c->async_max_bytes = RUNTIME_ASYNC_MAX_BYTES_DEFAULT;
	c->mme_memory_high_water = MME_DEFAULT_HIGH_WATER;
	c->userns_uid_base = USERNS_DEFAULT_BASE;
	c->image_max_bytes = IMAGE_DEFAULT_MAX_BYTES;
	c->image_max_entries = IMAGE_DEFAULT_MAX_ENTRIES;
	if (registry_config_defaults(&c->registries, err) < 0)
		return -1;
	if (berthd_config_set(&c->state_dir, BERTHD_DEFAULT_STATE_DIR) < 0 ||
	    berthd_config_set(&c->region, "us-east-1") < 0 || berthd_config_set(&c->auth, "sigv4") < 0 ||
	    berthd_config_set(&c->credentials, CREDENTIALS_DEFAULT_PATH) < 0 || berthd_config_set(&c->account, "000000000000") < 0 ||
	    berthd_config_set(&c->runc, "runc") < 0 || berthd_config_set(&c->router_user, "berth") < 0)
		return berth_err_set(err, ENOMEM, "configuration");
	return 0;
}

/* ---- one check per kind, for both ways in ------------------------------- */

static void *member(struct berthd_config *c, const struct setting *s)
{
	return (char *)c + s->offset;
}

static int set_string(const struct setting *s, struct berthd_config *c, const char *v, const char *name,
		      struct berth_err *err)
{
	if (v != NULL && strlen(v) > CONFIG_MAX_STRING)
		return berth_err_set(err, 0, "%s must be a string of at most %d bytes", name, CONFIG_MAX_STRING);
	if (berthd_config_set(member(c, s), v) < 0)
		return berth_err_set(err, ENOMEM, "configuration");
	return 0;
}

/* The address list a SETTING_LIST setting fills, and its count. */
static char **list_of(const struct setting *s, struct berthd_config *c, size_t **n)
{
	*n = s->offset == AT(tls_listen) ? &c->n_tls_listen : &c->n_listen;
	return s->offset == AT(tls_listen) ? c->tls_listen : c->listen;
}

static int add_listen(const struct setting *s, struct berthd_config *c, const char *v, const char *name,
		      struct berth_err *err)
{
	size_t *n;
	char **list = list_of(s, c, &n);
	if (*n == BERTHD_CONFIG_MAX_LISTEN)
		return berth_err_set(err, 0, "%s takes at most %d \"HOST:PORT\" addresses", name,
				     BERTHD_CONFIG_MAX_LISTEN);
	if (strlen(v) == 0 || strlen(v) > 255)
		return berth_err_set(err, 0, "%s must be \"HOST:PORT\" addresses", name);
	if ((list[*n] = strdup(v)) == NULL)
		return berth_err_set(err, ENOMEM, "configuration");
	(*n)++;
	return 0;
}

static void clear_listen(const struct setting *s, struct berthd_config *c)
{
	size_t *n;
	char **list = list_of(s, c, &n);
	for (size_t i = 0; i < *n; i++)
		free(list[i]);
	*n = 0;
}

/* Whether a SETTING_ROOTS setting was given (even as []). */
static bool *roots_set(const struct setting *s, struct berthd_config *c)
{
	if (s->offset == AT(cdi_spec_dirs))
		return &c->cdi_spec_dirs_set;
	return s->offset == AT(image_roots) ? &c->image_roots_set : &c->model_roots_set;
}

/* One item of an array setting (roots, buckets, hosts), checked. */
static int add_item(const struct setting *s, struct berthd_config *c, const char *v, const char *name,
		    struct berth_err *err)
{
	size_t n = strlen(v);
	if (s->kind == SETTING_ROOTS) {
		if (host_roots_add(member(c, s), v, err) < 0)
			return berth_err_prefix(err, "%s", name);
		*roots_set(s, c) = true;
		return 0;
	}
	if (s->kind == SETTING_BUCKETS &&
	    (n < 1 || n > 255 || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != n))
		return berth_err_set(err, 0, "%s: \"%s\" is not a bucket name (letters, digits, '.', '-', '_')", name, v);
	if (s->kind == SETTING_HOSTS && (n < 1 || n > 255 || strcspn(v, "/@?#\\ \t\r\n") != n))
		return berth_err_set(err, 0, "%s: \"%s\" is not HOST or HOST:PORT", name, v);
	if (objstore_list_add(member(c, s), v) < 0)
		return berth_err_set(err, 0, "%s takes at most %d names", name, OBJSTORE_LIST_MAX);
	return 0;
}

static void clear_items(const struct setting *s, struct berthd_config *c)
{
	if (s->kind == SETTING_ROOTS) {
		host_roots_free(member(c, s));
		*roots_set(s, c) = true;
	} else {
		objstore_list_free(member(c, s));
	}
}

/* A number given as text (a flag) or JSON (the file), checked against the
 * setting's kind and bounds. integral: the value had no fraction. */
static int set_number(const struct setting *s, struct berthd_config *c, double v, bool integral, const char *name,
		      struct berth_err *err)
{
	switch (s->kind) {
	case SETTING_MS:
		if (!integral || v < 0 || v > INT_MAX)
			return berth_err_set(err, 0, "%s must be a whole number of milliseconds", name);
		*(int *)member(c, s) = (int)v;
		return 0;
	case SETTING_FACTOR:
		if (!(v > 0) || v > 1000)
			return berth_err_set(err, 0, "%s must be a number above 0 (1.0: no over-commit)", name);
		*(double *)member(c, s) = v;
		return 0;
	case SETTING_FRACTION:
		if (!(v >= 0 && v <= 1))
			return berth_err_set(err, 0, "%s must be a fraction from 0 to 1", name);
		*(double *)member(c, s) = v;
		return 0;
	case SETTING_COUNT:
		if (!integral || v < (double)s->min || v > (double)s->max)
			return berth_err_set(err, 0, "%s must be a whole number from %lld to %lld", name, s->min, s->max);
		*(long long *)member(c, s) = (long long)v;
		if (s->offset == AT(userns_uid_base))
			c->userns_uid_base_set = true;
		return 0;
	case SETTING_BYTES:
		if (!integral || v < (double)s->min || v > 9.2e18)
			return berth_err_set(err, 0, "%s must be a whole number of bytes%s", name,
					     s->min > 0 ? " above 0" : "");
		*(unsigned long long *)member(c, s) = (unsigned long long)v;
		return 0;
	default:
		return berth_err_set(err, 0, "%s must not be a number", name);
	}
}

/* ---- the file ----------------------------------------------------------- */

static int set_member(const struct setting *s, yajl_val v, struct berthd_config *c, struct berth_err *err)
{
	char name[96];
	snprintf(name, sizeof(name), "\"%s\"", s->key);
	switch (s->kind) {
	case SETTING_STRING:
		if (YAJL_IS_NULL(v))
			return set_string(s, c, NULL, name, err);
		if (!YAJL_IS_STRING(v))
			return berth_err_set(err, 0, "%s must be a string (or null)", name);
		return set_string(s, c, v->u.string, name, err);
	case SETTING_LIST:
		if (!YAJL_IS_ARRAY(v) || v->u.array.len > BERTHD_CONFIG_MAX_LISTEN)
			return berth_err_set(err, 0, "%s must be an array of at most %d \"HOST:PORT\" strings", name,
					     BERTHD_CONFIG_MAX_LISTEN);
		clear_listen(s, c);
		for (size_t i = 0; i < v->u.array.len; i++) {
			yajl_val a = v->u.array.values[i];
			if (!YAJL_IS_STRING(a))
				return berth_err_set(err, 0, "%s must be an array of \"HOST:PORT\" strings", name);
			if (add_listen(s, c, a->u.string, name, err) < 0)
				return -1;
		}
		return 0;
	case SETTING_ROOTS:
	case SETTING_BUCKETS:
	case SETTING_HOSTS:
		if (!YAJL_IS_ARRAY(v) || v->u.array.len > OBJSTORE_LIST_MAX)
			return berth_err_set(err, 0, "%s must be an array of at most %d strings", name, OBJSTORE_LIST_MAX);
		clear_items(s, c); /* [] is a value too: none at all */
		for (size_t i = 0; i < v->u.array.len; i++) {
			yajl_val a = v->u.array.values[i];
			if (!YAJL_IS_STRING(a) || strlen(a->u.string) > CONFIG_MAX_STRING)
				return berth_err_set(err, 0, "%s must be an array of strings", name);
			if (add_item(s, c, a->u.string, name, err) < 0)
				return -1;
		}
		return 0;
	case SETTING_REGISTRIES:
		return registry_config_parse(v, member(c, s), err);
	case SETTING_SWITCH:
		if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
			return berth_err_set(err, 0, "%s must be true or false", name);
		*(bool *)member(c, s) = YAJL_IS_TRUE(v);
		return 0;
	default:
		if (!YAJL_IS_NUMBER(v))
			return set_number(s, c, NAN, false, name, err);
		return set_number(s, c, YAJL_GET_DOUBLE(v), YAJL_IS_INTEGER(v), name, err);
	}
}

int berthd_config_parse(const char *text, size_t len, struct berthd_config *c, struct berth_err *err)
{
	yajl_val root = json_parse(text, len, err);
	if (root == NULL)
		return -1;
	int r = 0;
	if (!YAJL_IS_OBJECT(root))
		r = berth_err_set(err, 0, "expected a JSON object of settings");
	for (size_t i = 0; r == 0 && i < root->u.object.len; i++) {
		const char *key = root->u.object.keys[i];
		if (key[0] == '_' || strcmp(key, "comment") == 0) /* notes for the reader */
			continue;
		const struct setting *s = NULL;
		for (size_t k = 0; s == NULL && k < BERTH_ARRAY_SIZE(settings); k++)
			if (strcmp(key, settings[k].key) == 0)
				s = &settings[k];
		r = s ? set_member(s, root->u.object.values[i], c, err)
		      : berth_err_set(err, 0, "unknown setting \"%s\"", key);
	}
	yajl_tree_free(root);
	return r;
}

int berthd_config_load(const char *path, struct berthd_config *c, struct berth_err *err)
{
	struct berth_buf doc = BERTH_BUF_INIT;
	int r = fs_read_file(path, &doc, CONFIG_MAX_BYTES, err);
	if (r == 0)
		r = berthd_config_parse(doc.data ? doc.data : "", doc.len, c, err);
	if (r < 0)
		berth_err_prefix(err, "configuration %s", path);
	buf_free(&doc);
	return r;
}

/* ---- the flags ---------------------------------------------------------- */

static int set_flag(const struct setting *s, const char *arg, struct berthd_config *c, bool *given,
		    struct berth_err *err)
{
	char name[96];
	snprintf(name, sizeof(name), "--%s", s->flag);
	switch (s->kind) {
	case SETTING_STRING:
		return set_string(s, c, arg, name, err);
	case SETTING_SWITCH:
		*(bool *)member(c, s) = true;
		return 0;
	case SETTING_REGISTRIES: {
		struct berth_buf doc = BERTH_BUF_INIT;
		int r = fs_read_file(arg, &doc, CONFIG_MAX_BYTES, err);
		yajl_val v = r == 0 ? json_parse(doc.data ? doc.data : "", doc.len, err) : NULL;
		buf_free(&doc);
		r = v ? registry_config_parse(v, member(c, s), err) : -1;
		yajl_tree_free(v);
		return r < 0 ? berth_err_prefix(err, "%s %s", name, arg) : 0;
	}
	case SETTING_LIST:
		if (!*given) /* flags replace the file's list */
			clear_listen(s, c);
		*given = true;
		return add_listen(s, c, arg, name, err);
	case SETTING_ROOTS:
	case SETTING_BUCKETS:
	case SETTING_HOSTS:
		if (!*given)
			clear_items(s, c);
		*given = true;
		return add_item(s, c, arg, name, err);
	default: {
		char *end;
		errno = 0;
		double v = strtod(arg, &end);
		bool number = end != arg && *end == '\0' && errno == 0;
		bool integral = number && strspn(arg, "0123456789") == strlen(arg);
		if (!number)
			v = NAN;
		if (set_number(s, c, v, integral, name, err) < 0) {
			size_t l = strlen(err->msg);
			snprintf(err->msg + l, sizeof(err->msg) - l, ", not \"%s\"", arg);
			return -1;
		}
		return 0;
	}
	}
}

void berthd_config_usage(FILE *f)
{
	fprintf(f, "usage: berthd [options]\n"
		   "  --config PATH                 settings file (configs/berthd.json); flags given win\n");
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(settings); i++) {
		char left[64];
		snprintf(left, sizeof(left), "--%s%s%s", settings[i].flag, settings[i].arg ? " " : "",
			 settings[i].arg ? settings[i].arg : "");
		fprintf(f, "  %-29s %s\n", left, settings[i].help);
	}
	fprintf(f, "Every flag is also a member of the settings file, with '_' for '-'\n"
		   "(--pids-limit is instance_pids_limit).\n");
}

int berthd_config_from_args(int argc, char **argv, struct berthd_config *c, struct berth_err *err)
{
	enum { FLAG_CONFIG = 256, FLAG_HELP, FLAG_FIRST_SETTING };
	struct option opts[BERTH_ARRAY_SIZE(settings) + 3];
	size_t n = 0;
	opts[n++] = (struct option){ "config", required_argument, NULL, FLAG_CONFIG };
	opts[n++] = (struct option){ "help", no_argument, NULL, FLAG_HELP };
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(settings); i++)
		opts[n++] = (struct option){ settings[i].flag,
					     settings[i].kind == SETTING_SWITCH ? no_argument : required_argument, NULL,
					     FLAG_FIRST_SETTING + (int)i };
	opts[n] = (struct option){ NULL, 0, NULL, 0 };

	if (berthd_config_defaults(c, err) < 0)
		return -1;
	/* the file first, wherever --config stands, so that flags win */
	opterr = 0;
	optind = 1;
	for (int o; (o = getopt_long(argc, argv, "h", opts, NULL)) != -1;)
		if (o == FLAG_CONFIG && berthd_config_load(optarg, c, err) < 0)
			return -1;
	optind = 1;
	bool given[BERTH_ARRAY_SIZE(settings)] = { false };
	for (int o; (o = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
		if (o == FLAG_CONFIG)
			continue;
		if (o == 'h' || o == FLAG_HELP)
			return 1;
		if (o < FLAG_FIRST_SETTING || o >= FLAG_FIRST_SETTING + (int)BERTH_ARRAY_SIZE(settings))
			return berth_err_set(err, 0, "unknown option \"%s\" or a missing argument (berthd --help lists them)",
					     argv[optind - 1]);
		if (set_flag(&settings[o - FLAG_FIRST_SETTING], optarg, c, &given[o - FLAG_FIRST_SETTING], err) < 0)
			return -1;
	}
	if (optind < argc)
		return berth_err_set(err, 0, "unexpected argument \"%s\" (berthd --help lists the options)", argv[optind]);
	return 0;
}

void berthd_config_free(struct berthd_config *c)
{
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(settings); i++)
		if (settings[i].kind == SETTING_STRING) {
			char **m = member(c, &settings[i]);
			free(*m);
			*m = NULL;
		} else if (settings[i].kind == SETTING_LIST) {
			clear_listen(&settings[i], c);
		}
	host_roots_free(&c->image_roots);
	host_roots_free(&c->model_roots);
	host_roots_free(&c->cdi_spec_dirs);
	objstore_list_free(&c->s3_buckets);
	objstore_list_free(&c->https_hosts);
	registry_config_free(&c->registries);
}

int berthd_config_default_roots(struct berthd_config *c, const char *state_dir, struct berth_err *err)
{
	_cleanup_free_ char *images = fs_path("%s/local/images", state_dir);
	_cleanup_free_ char *models = fs_path("%s/local/models", state_dir);
	if (images == NULL || models == NULL)
		return berth_err_set(err, ENOMEM, "configuration");
	if (!c->image_roots_set && (host_roots_add(&c->image_roots, images, err) < 0 ||
				    host_roots_add(&c->image_roots, BERTHD_SHARED_IMAGE_DIR, err) < 0))
		return -1;
	if (!c->model_roots_set && (host_roots_add(&c->model_roots, models, err) < 0 ||
				    host_roots_add(&c->model_roots, BERTHD_SHARED_IMAGE_DIR, err) < 0))
		return -1;
	return 0;
}
