/* resolve.c — see resolve.h. */
#include "resolve.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "buf.h"
#include "clock.h"
#include "fsutil.h"
#include "json.h"

#define ACCEPT                                                                                                   \
	"Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "          \
	"application/vnd.docker.distribution.manifest.list.v2+json, "                                            \
	"application/vnd.docker.distribution.manifest.v2+json"
#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define TOKEN_ANSWER_MAX (64u << 10)
#define AUTH_FILE_MAX (1u << 20)
#define DEFAULT_TOKEN_LIFE_S 60

/* ---- parsing -------------------------------------------------------------- */

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

int resolve_parse_challenge(const char *value, struct resolve_challenge *out)
{
	memset(out, 0, sizeof(*out));
	const char *p = skip_ws(value);
	size_t n = 0;
	while (p[n] && p[n] != ' ' && p[n] != '\t' && p[n] != ',')
		n++;
	if (n == 0 || n >= sizeof(out->scheme))
		return -1;
	for (size_t i = 0; i < n; i++)
		out->scheme[i] = (char)tolower((unsigned char)p[i]);
	p = skip_ws(p + n);
	while (*p) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		const char *name = p;
		while (*p && *p != '=' && *p != ',' && *p != ' ')
			p++;
		size_t name_len = (size_t)(p - name);
		p = skip_ws(p);
		if (*p != '=' || name_len == 0)
			return -1;
		p = skip_ws(p + 1);
		char val[1024];
		size_t o = 0;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				if (o + 1 >= sizeof(val))
					return -1;
				val[o++] = *p;
			}
			if (*p != '"')
				return -1;
			p++;
		} else {
			for (; *p && *p != ',' && *p != ' ' && *p != '\t'; p++) {
				if (o + 1 >= sizeof(val))
					return -1;
				val[o++] = *p;
			}
		}
		val[o] = '\0';
		char *dest = NULL;
		size_t dsize = 0;
		if (name_len == 5 && strncasecmp(name, "realm", 5) == 0)
			dest = out->realm, dsize = sizeof(out->realm);
		else if (name_len == 7 && strncasecmp(name, "service", 7) == 0)
			dest = out->service, dsize = sizeof(out->service);
		else if (name_len == 5 && strncasecmp(name, "scope", 5) == 0)
			dest = out->scope, dsize = sizeof(out->scope);
		if (dest) {
			if (o >= dsize)
				return -1;
			memcpy(dest, val, o + 1);
		}
		p = skip_ws(p);
		if (*p && *p != ',')
			return -1;
	}
	return 0;
}

int resolve_header_value(const char *line, size_t len, const char *name, char *value, size_t size)
{
	size_t nl = strlen(name);
	if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
		return -1;
	const char *v = line + nl + 1, *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	size_t n = (size_t)(end - v);
	if (n >= size)
		return -1;
	memcpy(value, v, n);
	value[n] = '\0';
	return 0;
}

bool resolve_digest_valid(const char *d)
{
	if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

bool resolve_media_type_accepted(const char *ct)
{
	static const char *const types[] = {
		"application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.docker.distribution.manifest.v2+json" };
	size_t n = strcspn(ct, "; \t");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (n == strlen(types[i]) && strncasecmp(ct, types[i], n) == 0)
			return true;
	return false;
}

int resolve_parse_token(const char *json, size_t len, char **token, long long *expires_in_s)
{
	struct berth_err err;
	*token = NULL;
	*expires_in_s = DEFAULT_TOKEN_LIFE_S;
	yajl_val root = json_parse(json, len, &err);
	if (root == NULL)
		return -1;
	const char *t = json_get_string(root, "token");
	if (t == NULL || t[0] == '\0')
		t = json_get_string(root, "access_token");
	long long e;
	if (json_get_int64(root, "expires_in", &e) && e >= 1)
		*expires_in_s = e;
	if (t && t[0] && strlen(t) < RESOLVE_TOKEN_MAX && strpbrk(t, "\r\n") == NULL)
		*token = strdup(t);
	yajl_tree_free(root);
	return *token ? 0 : -1;
}

int resolve_auth_from_json(const char *json, size_t len, const char *key, char *userpass, size_t size)
{
	struct berth_err err;
	yajl_val root = json_parse(json, len, &err);
	if (root == NULL)
		return -1;
	yajl_val auths = json_get(root, "auths");
	yajl_val entry = auths && YAJL_IS_OBJECT(auths) ? json_get(auths, key) : NULL;
	const char *b64 = entry ? json_get_string(entry, "auth") : NULL;
	int rc = -1;
	size_t n = b64 ? strlen(b64) : 0;
	if (n > 0 && n % 4 == 0 && n / 4 * 3 < size) {
		unsigned char *out = (unsigned char *)userpass;
		int got = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
		if (got > 0) {
			size_t d = (size_t)got;
			for (int pad = 0; pad < 2 && n - 1 - (size_t)pad > 0 && b64[n - 1 - pad] == '='; pad++)
				d--;
			userpass[d] = '\0';
			if (strlen(userpass) == d && strchr(userpass, ':') && userpass[0] != ':')
				rc = 0;
		}
	}
	if (rc < 0 && size > 0)
		userpass[0] = '\0';
	yajl_tree_free(root);
	return rc;
}

/* ---- tokens ----------------------------------------------------------------- */

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *user_data)
{
	(void)c, (void)access;
	struct resolve_cache *t = user_data;
	pthread_mutex_lock(&t->share_locks[(size_t)data % 8]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *user_data)
{
	(void)c;
	struct resolve_cache *t = user_data;
	pthread_mutex_unlock(&t->share_locks[(size_t)data % 8]);
}

void resolve_cache_init(struct resolve_cache *t)
{
	memset(t, 0, sizeof(*t));
	resolve_ca_init(&t->cas, SYSTEM_CA_BUNDLE);
	pthread_mutex_init(&t->lock, NULL);
	for (size_t i = 0; i < RESOLVE_HANDLES; i++)
		pthread_mutex_init(&t->handles[i].use, NULL);
	for (size_t i = 0; i < 8; i++)
		pthread_mutex_init(&t->share_locks[i], NULL);
	CURLSH *sh = curl_share_init();
	if (sh && curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock) == CURLSHE_OK &&
	    curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock) == CURLSHE_OK &&
	    curl_share_setopt(sh, CURLSHOPT_USERDATA, t) == CURLSHE_OK &&
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) == CURLSHE_OK &&
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) == CURLSHE_OK &&
	    curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) == CURLSHE_OK) {
		t->share = sh;
	} else if (sh) {
		curl_share_cleanup(sh);
	}
}

void resolve_cache_free(struct resolve_cache *t)
{
	for (size_t i = 0; i < RESOLVE_HANDLES; i++) {
		if (t->handles[i].easy)
			curl_easy_cleanup(t->handles[i].easy);
		pthread_mutex_destroy(&t->handles[i].use);
	}
	if (t->share)
		curl_share_cleanup(t->share);
	for (size_t i = 0; i < RESOLVE_TOKENS; i++)
		free(t->slots[i].token);
	for (size_t i = 0; i < 8; i++)
		pthread_mutex_destroy(&t->share_locks[i]);
	pthread_mutex_destroy(&t->lock);
	resolve_ca_free(&t->cas);
	memset(t, 0, sizeof(*t));
}

/* A copy of the live token for key, or NULL. */
static char *token_get(struct resolve_cache *t, const char *key)
{
	char *copy = NULL;
	long long now = clock_now_ms();
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < RESOLVE_TOKENS; i++)
		if (t->slots[i].token && strcmp(t->slots[i].key, key) == 0 && t->slots[i].expires_ms > now)
			copy = strdup(t->slots[i].token);
	pthread_mutex_unlock(&t->lock);
	return copy;
}

static void token_put(struct resolve_cache *t, const char *key, const char *token, long long life_s)
{
	long long now = clock_now_ms();
	pthread_mutex_lock(&t->lock);
	struct resolve_token *slot = NULL;
	for (size_t i = 0; i < RESOLVE_TOKENS && slot == NULL; i++)
		if (t->slots[i].token == NULL || strcmp(t->slots[i].key, key) == 0)
			slot = &t->slots[i];
	for (size_t i = 0; i < RESOLVE_TOKENS && slot == NULL; i++) /* full: replace the soonest to expire */
		if (slot == NULL || t->slots[i].expires_ms < slot->expires_ms)
			slot = &t->slots[i];
	char *copy = strdup(token);
	if (slot && copy) {
		free(slot->token);
		slot->token = copy;
		snprintf(slot->key, sizeof(slot->key), "%s", key);
		/* a little before the registry's end of it */
		slot->expires_ms = now + life_s * 1000 - (life_s > 10 ? 5000 : 0);
	} else {
		free(copy);
	}
	pthread_mutex_unlock(&t->lock);
}

/* ---- handles ------------------------------------------------------------------ */

#define HANDLE_NEW ((uint64_t)-2) /* ca_signature of a handle not set up yet */

static size_t on_header(char *data, size_t size, size_t n, void *user_data);
static size_t on_body(char *data, size_t size, size_t n, void *user_data);
static int on_progress(void *user_data, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un);

/* What every request of a handle has. */
static void handle_setup(struct resolve_cache *t, CURL *c)
{
	if (t->share)
		curl_easy_setopt(c, CURLOPT_SHARE, t->share);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	/* one small request on a kept connection needs nothing of HTTP/2 */
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
}

/* The registry's kept handle, locked for the caller, or NULL (all taken
 * by other registries, or in use: the caller makes its own). */
static struct resolve_handle *handle_take(struct resolve_cache *t, const char *host,
					  const struct registry_host *settings)
{
	if (strlen(host) >= sizeof(t->handles[0].host))
		return NULL;
	struct resolve_handle *h = NULL;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < RESOLVE_HANDLES && h == NULL; i++)
		if (strcmp(t->handles[i].host, host) == 0 && t->handles[i].settings == settings)
			h = &t->handles[i];
	for (size_t i = 0; i < RESOLVE_HANDLES && h == NULL; i++)
		if (t->handles[i].host[0] == '\0') {
			h = &t->handles[i];
			snprintf(h->host, sizeof(h->host), "%s", host);
			h->settings = settings;
		}
	pthread_mutex_unlock(&t->lock);
	if (h == NULL || pthread_mutex_trylock(&h->use) != 0)
		return NULL;
	if (h->easy == NULL) {
		h->easy = curl_easy_init();
		h->ca_signature = HANDLE_NEW;
	}
	if (h->easy == NULL) {
		pthread_mutex_unlock(&h->use);
		return NULL;
	}
	return h;
}

/* ---- the exchange ------------------------------------------------------------ */

struct exchange {
	const struct resolve_request *q;
	long long deadline_ms;
	bool stopped;
	char digest[128];
	char content_type[256];
	char challenge[2048];
	struct berth_buf body;
	size_t body_max;
};

static size_t on_header(char *data, size_t size, size_t n, void *user_data)
{
	struct exchange *x = user_data;
	size_t len = size * n;
	char value[2048];
	if (len > 5 && strncmp(data, "HTTP/", 5) == 0) { /* a new response (after 100, redirects): forget */
		x->digest[0] = x->content_type[0] = x->challenge[0] = '\0';
		return len;
	}
	if (resolve_header_value(data, len, "Docker-Content-Digest", value, sizeof(value)) == 0)
		snprintf(x->digest, sizeof(x->digest), "%.127s", value);
	else if (resolve_header_value(data, len, "Content-Type", value, sizeof(value)) == 0)
		snprintf(x->content_type, sizeof(x->content_type), "%.255s", value);
	else if (resolve_header_value(data, len, "WWW-Authenticate", value, sizeof(value)) == 0) {
		/* Bearer preferred over Basic when a registry offers both */
		struct resolve_challenge c;
		if (x->challenge[0] == '\0' ||
		    (resolve_parse_challenge(value, &c) == 0 && strcmp(c.scheme, "bearer") == 0))
			snprintf(x->challenge, sizeof(x->challenge), "%s", value);
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *user_data)
{
	struct exchange *x = user_data;
	size_t len = size * n;
	if (x->body.len + len > x->body_max || buf_append(&x->body, data, len) < 0)
		return 0;
	return len;
}

static int on_progress(void *user_data, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt, (void)dn, (void)ut, (void)un;
	struct exchange *x = user_data;
	if ((x->q->stop && atomic_load(x->q->stop)) || (x->q->cancelled && x->q->cancelled(x->q->cancel_ctx))) {
		x->stopped = true;
		return 1;
	}
	return 0;
}

/* TLS as containers-certs.d(5): the system CAs plus cert_dir's .crt files
 * (kept in memory, resolve_ca.h); a client certificate X.cert with its
 * key X.key. *ca_signature: that of the CA text c holds (0: libcurl's
 * default), updated; the text is set again only when it changed. */
static int setup_tls(CURL *c, struct resolve_cache *t, const struct registry_host *h, uint64_t *ca_signature,
		     char *why, size_t why_size)
{
	bool verify = h == NULL || h->tls_verify;
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
	_cleanup_free_ char *pem = NULL, *cert = NULL, *key = NULL;
	uint64_t signature = *ca_signature;
	size_t len = 0;
	if (verify && h && h->cert_dir &&
	    resolve_ca_get(&t->cas, h->cert_dir, &signature, &pem, &len, &cert, &key, why, why_size) < 0)
		return -1;
	if (!verify || h == NULL || h->cert_dir == NULL)
		signature = 0;
	if (signature != *ca_signature) {
		struct curl_blob blob = { .data = pem, .len = len, .flags = CURL_BLOB_COPY };
		if (curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, pem ? &blob : NULL) != CURLE_OK) {
			snprintf(why, why_size, "libcurl does not take the CA certificates of %s", h->cert_dir);
			*ca_signature = (uint64_t)-1; /* unknown: set again next time */
			return -1;
		}
		*ca_signature = signature;
	}
	curl_easy_setopt(c, CURLOPT_SSLCERT, cert);
	curl_easy_setopt(c, CURLOPT_SSLKEY, key);
	return 0;
}

/* One request; 0 with the status, -1 (why) on a transport error. */
static int perform(CURL *c, struct exchange *x, const char *url, const char *authorization, bool head, long *status,
		   char *why, size_t why_size)
{
	long long left = x->deadline_ms - clock_now_ms();
	if (left <= 0) {
		snprintf(why, why_size, "no answer within its time");
		return -1;
	}
	x->digest[0] = x->content_type[0] = x->challenge[0] = '\0';
	buf_reset(&x->body);
	struct curl_slist *hdrs = curl_slist_append(NULL, ACCEPT);
	char auth_line[RESOLVE_TOKEN_MAX + 64];
	if (hdrs && authorization) {
		snprintf(auth_line, sizeof(auth_line), "Authorization: %s", authorization);
		struct curl_slist *h2 = curl_slist_append(hdrs, auth_line);
		if (h2 == NULL) {
			curl_slist_free_all(hdrs);
			hdrs = NULL;
		}
	}
	if (hdrs == NULL) {
		snprintf(why, why_size, "out of memory");
		return -1;
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOBODY, head ? 1L : 0L);
	if (!head)
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)left);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK) {
		snprintf(why, why_size, "%s", curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

/* "user:password" for the request, or "" (anonymous); -1 (why) when the
 * auth file named cannot be read. */
static int credentials(const struct resolve_request *q, char *userpass, size_t size, char *why, size_t why_size)
{
	userpass[0] = '\0';
	const struct registry_host *h = q->settings;
	if (h && h->username) {
		snprintf(userpass, size, "%s:%s", h->username, h->password ? h->password : "");
		return 0;
	}
	if (q->auth_file == NULL)
		return 0;
	struct berth_buf b = BERTH_BUF_INIT;
	struct berth_err err;
	if (fs_read_file(q->auth_file, &b, AUTH_FILE_MAX, &err) < 0) {
		buf_free(&b);
		snprintf(why, why_size, "cannot read auth file %s", q->auth_file);
		return -1;
	}
	if (resolve_auth_from_json(b.data ? b.data : "", b.len, q->host, userpass, size) < 0)
		userpass[0] = '\0';
	buf_free(&b);
	return 0;
}

static void basic_header(const char *userpass, char *out, size_t size)
{
	size_t n = strlen(userpass);
	if (size < 7 + (n + 2) / 3 * 4 + 1) {
		out[0] = '\0';
		return;
	}
	memcpy(out, "Basic ", 6);
	EVP_EncodeBlock((unsigned char *)out + 6, (const unsigned char *)userpass, (int)n);
}

/* Asks the challenge's realm for a token. */
static char *fetch_token(CURL *c, struct exchange *x, const struct resolve_challenge *ch, const char *userpass,
			 long long *life_s, char *why, size_t why_size)
{
	if (strncmp(ch->realm, "https://", 8) != 0 &&
	    !(x->q->settings && !x->q->settings->tls_verify && strncmp(ch->realm, "http://", 7) == 0)) {
		snprintf(why, why_size, "token realm \"%s\" is not https", ch->realm);
		return NULL;
	}
	_cleanup_free_ char *service = curl_easy_escape(c, ch->service, 0);
	char scope[700];
	if (ch->scope[0])
		snprintf(scope, sizeof(scope), "%s", ch->scope);
	else
		snprintf(scope, sizeof(scope), "repository:%s:pull", x->q->repository);
	_cleanup_free_ char *scope_e = curl_easy_escape(c, scope, 0);
	if (service == NULL || scope_e == NULL) {
		snprintf(why, why_size, "out of memory");
		return NULL;
	}
	_cleanup_free_ char *url = fs_path("%s%sservice=%s&scope=%s", ch->realm, strchr(ch->realm, '?') ? "&" : "?",
					   service, scope_e);
	char auth[1200] = "";
	if (userpass[0])
		basic_header(userpass, auth, sizeof(auth));
	long status = 0;
	if (url == NULL || perform(c, x, url, auth[0] ? auth : NULL, false, &status, why, why_size) < 0)
		return NULL;
	char *token = NULL;
	if (status != 200 || resolve_parse_token(x->body.data ? x->body.data : "", x->body.len, &token, life_s) < 0) {
		snprintf(why, why_size, "the token service answered HTTP %ld without a token", status);
		return NULL;
	}
	return token;
}

enum resolve_outcome resolve_tag(struct resolve_cache *tokens, const struct resolve_request *q, char digest[72],
				 char *why, size_t why_size)
{
	struct exchange x = { .q = q, .deadline_ms = clock_now_ms() + q->timeout_ms, .body = BERTH_BUF_INIT,
			      .body_max = TOKEN_ANSWER_MAX };
	struct resolve_handle *kept = handle_take(tokens, q->host, q->settings);
	uint64_t own_signature = 0;
	uint64_t *ca_signature = kept ? &kept->ca_signature : &own_signature;
	CURL *c = kept ? kept->easy : curl_easy_init();
	if (c == NULL) {
		snprintf(why, why_size, "libcurl could not start");
		return RESOLVE_FALLBACK;
	}
	_cleanup_free_ char *url = NULL, *token = NULL;
	char userpass[700] = "", token_key[600];
	enum resolve_outcome outcome = RESOLVE_FALLBACK;
	snprintf(token_key, sizeof(token_key), "%s/%s", q->host, q->repository);
	/* docker.io's API is registry-1.docker.io, as skopeo knows */
	const char *api = strcmp(q->host, "docker.io") == 0 ? "registry-1.docker.io" : q->host;
	url = fs_path("https://%s/v2/%s/manifests/%s", api, q->repository, q->tag);
	if (kept == NULL || kept->ca_signature == HANDLE_NEW) {
		handle_setup(tokens, c);
		*ca_signature = 0;
	}
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
	if (url == NULL) {
		snprintf(why, why_size, "out of memory");
		goto out;
	}
	if (setup_tls(c, tokens, q->settings, ca_signature, why, why_size) < 0 ||
	    credentials(q, userpass, sizeof(userpass), why, why_size) < 0)
		goto out;
	token = token_get(tokens, token_key);
	char auth[RESOLVE_TOKEN_MAX + 16] = "";
	if (token)
		snprintf(auth, sizeof(auth), "Bearer %s", token);
	else if (userpass[0])
		basic_header(userpass, auth, sizeof(auth));
	long status = 0;
	for (int round = 0; round < 2; round++) {
		if (perform(c, &x, url, auth[0] ? auth : NULL, true, &status, why, why_size) < 0)
			goto out;
		if (status != 401 || round == 1)
			break;
		struct resolve_challenge ch;
		if (x.challenge[0] == '\0' || resolve_parse_challenge(x.challenge, &ch) < 0) {
			snprintf(why, why_size, "HTTP 401 without a challenge berth understands");
			goto out;
		}
		if (strcmp(ch.scheme, "basic") == 0) {
			if (userpass[0] == '\0') {
				snprintf(why, why_size, "the registry asks for credentials and none are set");
				goto out;
			}
			basic_header(userpass, auth, sizeof(auth));
		} else if (strcmp(ch.scheme, "bearer") == 0) {
			long long life_s = DEFAULT_TOKEN_LIFE_S;
			free(token);
			token = fetch_token(c, &x, &ch, userpass, &life_s, why, why_size);
			if (token == NULL)
				goto out;
			token_put(tokens, token_key, token, life_s);
			snprintf(auth, sizeof(auth), "Bearer %s", token);
		} else {
			snprintf(why, why_size, "the registry asks for \"%s\" authentication", ch.scheme);
			goto out;
		}
	}
	if (status != 200) {
		snprintf(why, why_size, "the registry answered HTTP %ld", status);
	} else if (!resolve_digest_valid(x.digest)) {
		snprintf(why, why_size, "the registry's answer has %s Docker-Content-Digest header",
			 x.digest[0] ? "a digest berth does not check (not sha256) in its" : "no");
	} else if (!resolve_media_type_accepted(x.content_type)) {
		snprintf(why, why_size, "the registry's manifest is of type \"%s\"", x.content_type);
	} else {
		snprintf(digest, 72, "%.71s", x.digest);
		outcome = RESOLVE_OK;
	}
out:
	if (x.stopped)
		outcome = RESOLVE_STOPPED;
	/* nothing of this call's stays set in a kept handle */
	curl_easy_setopt(c, CURLOPT_HEADERDATA, NULL);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, NULL);
	curl_easy_setopt(c, CURLOPT_URL, NULL);
	if (kept)
		pthread_mutex_unlock(&kept->use);
	else
		curl_easy_cleanup(c);
	buf_free(&x.body);
	explicit_bzero(userpass, sizeof(userpass));
	return outcome;
}
