/* access.c — see access.h. */
#include "access.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "json.h"

#define DAY_S 86400

struct access {
	bool enabled;
	char *path, *region, *account;
	pthread_mutex_t mu;     /* guards keys and the file's identity */
	struct credentials keys;
	struct stat seen;       /* the file as last read */
	bool gone;              /* it could not be found at the last look */
};

static void copy_principal(struct access_principal *who, const struct credentials_key *k)
{
	snprintf(who->key_id, sizeof(who->key_id), "%s", k->key_id);
	snprintf(who->name, sizeof(who->name), "%s", k->name);
}

static int load(struct access *a, struct berth_err *err)
{
	struct stat st;
	if (stat(a->path, &st) < 0)
		return berth_err_set(err, errno,
				     "cannot read the credentials file %s: create one with `berth keys add admin "
				     "--allow 'sagemaker:*' --credentials %s`, name another with --credentials, or run "
				     "with --auth none on a loopback address",
				     a->path, a->path);
	struct credentials fresh = { 0 };
	if (credentials_load(a->path, &fresh, err) < 0)
		return -1;
	if (fresh.n == 0) {
		credentials_free(&fresh);
		return berth_err_set(err, 0,
				     "the credentials file %s holds no key, so nobody could call berth: add one with "
				     "`berth keys add admin --allow 'sagemaker:*' --credentials %s`",
				     a->path, a->path);
	}
	pthread_mutex_lock(&a->mu);
	credentials_free(&a->keys);
	a->keys = fresh;
	a->seen = st;
	pthread_mutex_unlock(&a->mu);
	return 0;
}

int access_open(const struct access_config *cfg, struct access **out, struct berth_err *err)
{
	bool enabled;
	if (strcmp(cfg->mode, "sigv4") == 0)
		enabled = true;
	else if (strcmp(cfg->mode, "none") == 0)
		enabled = false;
	else
		return berth_err_set(err, 0, "--auth must be sigv4 or none, not \"%.64s\"", cfg->mode);
	struct access *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return berth_err_set(err, ENOMEM, "access keys");
	pthread_mutex_init(&a->mu, NULL);
	a->enabled = enabled;
	a->path = strdup(cfg->credentials);
	a->region = strdup(cfg->region);
	a->account = strdup(cfg->account);
	if (a->path == NULL || a->region == NULL || a->account == NULL) {
		access_free(a);
		return berth_err_set(err, ENOMEM, "access keys");
	}
	if (enabled && load(a, err) < 0) {
		access_free(a);
		return -1;
	}
	*out = a;
	return 0;
}

void access_free(struct access *a)
{
	if (a == NULL)
		return;
	credentials_free(&a->keys);
	pthread_mutex_destroy(&a->mu);
	free(a->path);
	free(a->region);
	free(a->account);
	free(a);
}

bool access_enabled(const struct access *a)
{
	return a->enabled;
}

int access_reload(struct access *a, bool force, struct berth_err *err)
{
	if (!a->enabled)
		return 0;
	struct stat st;
	if (stat(a->path, &st) < 0) {
		/* removed or unreadable: said once, the keys in use stay */
		int saved = errno;
		pthread_mutex_lock(&a->mu);
		bool said = a->gone;
		a->gone = true;
		pthread_mutex_unlock(&a->mu);
		if (said && !force)
			return 0;
		return berth_err_set(err, saved, "cannot read the credentials file %s", a->path);
	}
	pthread_mutex_lock(&a->mu);
	bool same = !a->gone && st.st_ino == a->seen.st_ino && st.st_dev == a->seen.st_dev &&
		    st.st_size == a->seen.st_size && st.st_mtim.tv_sec == a->seen.st_mtim.tv_sec &&
		    st.st_mtim.tv_nsec == a->seen.st_mtim.tv_nsec && st.st_mode == a->seen.st_mode &&
		    st.st_uid == a->seen.st_uid;
	a->gone = false;
	pthread_mutex_unlock(&a->mu);
	if (same && !force)
		return 0;
	if (load(a, err) < 0) {
		/* remember this version, so a broken file is reported once, not every second */
		pthread_mutex_lock(&a->mu);
		a->seen = st;
		pthread_mutex_unlock(&a->mu);
		return -1;
	}
	return 1;
}

size_t access_key_count(struct access *a)
{
	pthread_mutex_lock(&a->mu);
	size_t n = a->keys.n;
	pthread_mutex_unlock(&a->mu);
	return n;
}

static void format_day(int64_t t, char out[9])
{
	char amz[17];
	sigv4_format_amz_date(t, amz);
	memcpy(out, amz, 8);
	out[8] = '\0';
}

static int gen_globs(yajl_gen g, const char *key, const struct credentials_globs *globs)
{
	if (json_gen_str(g, key) < 0)
		return -1;
	if (globs->v == NULL)
		return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
	if (yajl_gen_array_open(g) != yajl_gen_status_ok)
		return -1;
	for (size_t i = 0; i < globs->n; i++)
		if (json_gen_str(g, globs->v[i]) < 0)
			return -1;
	return yajl_gen_array_close(g) == yajl_gen_status_ok ? 0 : -1;
}

static int gen_key(yajl_gen g, const struct access *a, const struct credentials_key *k, int64_t now)
{
	if (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_kv_str(g, "id", k->key_id) < 0 ||
	    json_gen_kv_str(g, "name", k->name) < 0)
		return -1;
	if (!credentials_invoke_only(k)) {
		/* may do more than invoke: its invocations are checked by berthd */
		if (json_gen_kv_str(g, "verify", "berthd") < 0)
			return -1;
	} else {
		if (gen_globs(g, "allow", &k->allow) < 0 || gen_globs(g, "endpoints", &k->endpoints) < 0 ||
		    json_gen_str(g, "signing") < 0 || yajl_gen_map_open(g) != yajl_gen_status_ok)
			return -1;
		for (int d = -1; d <= 1; d++) {
			char day[9], hex[2 * SIGV4_KEY_LEN + 1];
			unsigned char key[SIGV4_KEY_LEN];
			format_day(now + d * DAY_S, day);
			sigv4_signing_key(k->secret, day, a->region, SIGV4_SERVICE, key);
			for (size_t i = 0; i < SIGV4_KEY_LEN; i++)
				snprintf(hex + 2 * i, 3, "%02x", key[i]);
			int r = json_gen_kv_str(g, day, hex);
			explicit_bzero(key, sizeof(key));
			explicit_bzero(hex, sizeof(hex));
			if (r < 0)
				return -1;
		}
		if (yajl_gen_map_close(g) != yajl_gen_status_ok)
			return -1;
	}
	return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
}

int access_render_router(struct access *a, int64_t now, struct berth_buf *out)
{
	yajl_gen g = json_gen_new();
	if (g == NULL)
		return -1;
	int r = -1;
	pthread_mutex_lock(&a->mu);
	if (yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_kv_str(g, "op", "auth") < 0 ||
	    json_gen_kv_str(g, "mode", a->enabled ? "sigv4" : "none") < 0 ||
	    json_gen_kv_str(g, "region", a->region) < 0 || json_gen_kv_str(g, "account", a->account) < 0 ||
	    json_gen_str(g, "keys") < 0 || yajl_gen_array_open(g) != yajl_gen_status_ok)
		goto out;
	for (size_t i = 0; i < a->keys.n; i++)
		if (gen_key(g, a, &a->keys.keys[i], now) < 0)
			goto out;
	if (yajl_gen_array_close(g) != yajl_gen_status_ok || yajl_gen_map_close(g) != yajl_gen_status_ok)
		goto out;
	r = 0;
out:
	pthread_mutex_unlock(&a->mu);
	if (r < 0) {
		yajl_gen_free(g);
		return -1;
	}
	return json_gen_finish(g, out);
}

enum sigv4_status access_authenticate(struct access *a, const struct sigv4_request *req, int64_t now,
				      struct access_principal *who, struct sigv4_error *err)
{
	if (!a->enabled) {
		snprintf(who->key_id, sizeof(who->key_id), "-");
		snprintf(who->name, sizeof(who->name), "anonymous");
		who->signed_headers[0] = '\0';
		return SIGV4_OK;
	}
	struct sigv4_auth auth;
	enum sigv4_status s = sigv4_parse(req, a->region, SIGV4_SERVICE, now, &auth, err);
	if (s != SIGV4_OK)
		return s;
	unsigned char key[SIGV4_KEY_LEN];
	pthread_mutex_lock(&a->mu);
	const struct credentials_key *k = credentials_find(&a->keys, auth.key_id);
	if (k != NULL) {
		sigv4_signing_key(k->secret, auth.date, a->region, SIGV4_SERVICE, key);
		copy_principal(who, k);
	}
	pthread_mutex_unlock(&a->mu);
	if (k == NULL) {
		sigv4_error_unknown_key(err);
		return SIGV4_UNKNOWN_KEY;
	}
	int r = sigv4_verify(req, &auth, key, err);
	explicit_bzero(key, sizeof(key));
	snprintf(who->signed_headers, sizeof(who->signed_headers), "%s", auth.signed_headers);
	if (r < 0) {
		err->status = SIGV4_INVALID;
		snprintf(err->message, sizeof(err->message), "berthd ran out of memory verifying the signature; retry");
		return SIGV4_INVALID;
	}
	return (enum sigv4_status)r;
}

/* The lines of a string to sign: algorithm, date, scope, hash. */
static bool split_string_to_sign(const char *s, char amz_date[17], char scope[256])
{
	const char *l1 = strchr(s, '\n');
	const char *l2 = l1 ? strchr(l1 + 1, '\n') : NULL;
	const char *l3 = l2 ? strchr(l2 + 1, '\n') : NULL;
	if (!l3 || (size_t)(l1 - s) != strlen(SIGV4_ALGORITHM) || memcmp(s, SIGV4_ALGORITHM, l1 - s) != 0 ||
	    l2 - l1 - 1 != 16 || (size_t)(l3 - l2 - 1) >= 256 || strlen(l3 + 1) != 64 || strchr(l3 + 1, '\n'))
		return false;
	memcpy(amz_date, l1 + 1, 16);
	amz_date[16] = '\0';
	memcpy(scope, l2 + 1, l3 - l2 - 1);
	scope[l3 - l2 - 1] = '\0';
	return true;
}

enum sigv4_status access_verify_string(struct access *a, const char *key_id, const char *string_to_sign,
				       const char *signature, int64_t now, struct access_principal *who,
				       struct sigv4_error *err)
{
	char amz_date[17], scope[256], want[256];
	int64_t t;
	if (!a->enabled) {
		err->status = SIGV4_INVALID;
		snprintf(err->message, sizeof(err->message), "berthd runs with auth none: nothing to verify");
		return SIGV4_INVALID;
	}
	if (!split_string_to_sign(string_to_sign, amz_date, scope) || !sigv4_parse_amz_date(amz_date, 16, &t) ||
	    t < now - SIGV4_MAX_SKEW_S || t > now + SIGV4_MAX_SKEW_S) {
		/* the router checks all this before it asks: it is not a client's mistake */
		err->status = SIGV4_INVALID;
		snprintf(err->message, sizeof(err->message),
			 "The request signature could not be checked (the router sent a malformed or stale "
			 "string to sign).");
		return SIGV4_INVALID;
	}
	snprintf(want, sizeof(want), "%.8s/%s/%s/%s", amz_date, a->region, SIGV4_SERVICE, SIGV4_TERMINATOR);
	if (strcmp(scope, want) != 0) {
		err->status = SIGV4_INVALID;
		snprintf(err->message, sizeof(err->message), "Credential should be scoped to a valid region. ");
		return SIGV4_INVALID;
	}
	unsigned char key[SIGV4_KEY_LEN];
	pthread_mutex_lock(&a->mu);
	const struct credentials_key *k = credentials_find(&a->keys, key_id);
	if (k != NULL) {
		char day[9];
		memcpy(day, amz_date, 8);
		day[8] = '\0';
		sigv4_signing_key(k->secret, day, a->region, SIGV4_SERVICE, key);
		copy_principal(who, k);
	}
	pthread_mutex_unlock(&a->mu);
	if (k == NULL) {
		sigv4_error_unknown_key(err);
		return SIGV4_UNKNOWN_KEY;
	}
	enum sigv4_status s = sigv4_check(key, string_to_sign, strlen(string_to_sign), signature, err);
	explicit_bzero(key, sizeof(key));
	return s;
}

enum sigv4_status access_authorize(struct access *a, const struct access_principal *who, const char *action,
				   enum credentials_kind kind, const char *name, struct sigv4_error *err)
{
	if (!a->enabled)
		return SIGV4_OK;
	pthread_mutex_lock(&a->mu);
	const struct credentials_key *k = credentials_find(&a->keys, who->key_id);
	bool ok = k != NULL && credentials_allows(k, action, kind, name);
	if (!ok) {
		char arn[512];
		credentials_resource_arn(arn, sizeof(arn), a->region, a->account, kind, name);
		if (k != NULL) {
			credentials_denied_message(k, a->account, action, arn, err->message, sizeof(err->message));
		} else {
			/* the key was removed between verification and now */
			struct credentials_key gone = { .name = (char *)who->name, .key_id = (char *)who->key_id };
			credentials_denied_message(&gone, a->account, action, arn, err->message, sizeof(err->message));
		}
		err->status = SIGV4_DENIED;
	}
	pthread_mutex_unlock(&a->mu);
	return ok ? SIGV4_OK : SIGV4_DENIED;
}
