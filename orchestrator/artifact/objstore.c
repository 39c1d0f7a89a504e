/* objstore.c — see objstore.h. */
#include "objstore.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "log.h"

#define MAX_REDIRECTS 5

int objstore_list_add(struct objstore_list *l, const char *item)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i], item) == 0)
			return 0;
	if (l->n == OBJSTORE_LIST_MAX || (l->items[l->n] = strdup(item)) == NULL)
		return -1;
	l->n++;
	return 0;
}

void objstore_list_free(struct objstore_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	l->n = 0;
}

static void list_describe(const struct objstore_list *l, struct berth_buf *out)
{
	if (l == NULL || l->n == 0) {
		buf_append_str(out, "none");
		return;
	}
	for (size_t i = 0; i < l->n; i++)
		buf_printf(out, "%s%s", i ? ", " : "", l->items[i]);
}

/* ---- the operator's lists -------------------------------------------------- */

static bool bucket_allowed(const struct objstore_config *cfg, const char *bucket)
{
	bool need_list = cfg->s3_endpoint != NULL || (cfg->buckets != NULL && cfg->buckets->n > 0);
	if (!need_list)
		return true;
	for (size_t i = 0; cfg->buckets != NULL && i < cfg->buckets->n; i++)
		if (strcmp(cfg->buckets->items[i], bucket) == 0)
			return true;
	return false;
}

static int refuse_bucket(const struct objstore_config *cfg, const char *url, const char *bucket,
			 struct berth_err *err)
{
	struct berth_buf l = BERTH_BUF_INIT;
	list_describe(cfg->buckets, &l);
	berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
		      "Could not access model data at %s. berth reads s3:// model data only from the buckets in its "
		      "s3_buckets setting (--s3-bucket): %s; bucket \"%s\" is not one of them. Use one of those "
		      "buckets, or ask the operator to add this one.",
		      url, l.data, bucket);
	buf_free(&l);
	err->errnum = EACCES;
	return -1;
}

/* "host", "host:port", "[v6]", "[v6]:port" matches the URL's host and port */
static bool host_entry_matches(const char *entry, const char *host, long port)
{
	const char *colon = entry[0] == '[' ? strchr(entry, ']') : entry;
	if (colon != NULL)
		colon = strrchr(colon, ':');
	size_t hlen = colon ? (size_t)(colon - entry) : strlen(entry);
	if (strlen(host) != hlen || strncasecmp(entry, host, hlen) != 0)
		return false;
	if (colon == NULL)
		return true;
	char *end;
	long p = strtol(colon + 1, &end, 10);
	return *end == '\0' && p == port;
}

/* The URL's host and port as libcurl parses them (what it would connect to). */
static int url_host(const char *url, char **host, long *port, char **scheme)
{
	*host = *scheme = NULL;
	*port = 0;
	CURLU *u = curl_url();
	char *p = NULL;
	int r = -1;
	if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK) {
		*port = strtol(p, NULL, 10);
		r = 0;
	}
	curl_free(p);
	curl_url_cleanup(u);
	return r;
}

/* 0 when url is http(s) to a listed host; else -1 (EACCES: not listed). */
static int check_http_url(const struct objstore_config *cfg, const char *url, const char *shown,
			  struct berth_err *err)
{
	char *host = NULL, *scheme = NULL;
	long port = 0;
	if (url_host(url, &host, &port, &scheme) < 0) {
		curl_free(host);
		curl_free(scheme);
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "\"%s\" is not a valid URL", url);
	}
	bool ok = strcasecmp(scheme, "https") == 0 || strcasecmp(scheme, "http") == 0;
	for (size_t i = 0; ok && cfg->https_hosts != NULL && i < cfg->https_hosts->n; i++)
		if (host_entry_matches(cfg->https_hosts->items[i], host, port))
			goto allowed;
	struct berth_buf l = BERTH_BUF_INIT;
	list_describe(cfg->https_hosts, &l);
	berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
		      "Could not access model data at %s. berth fetches http(s):// model data only from the hosts in "
		      "its https_hosts setting (--https-host): %s; %s:%ld is not one of them. Use one of those hosts, "
		      "or ask the operator to add this one.",
		      shown, l.data, host, port);
	buf_free(&l);
	curl_free(host);
	curl_free(scheme);
	err->errnum = EACCES;
	return -1;
allowed:
	curl_free(host);
	curl_free(scheme);
	return 0;
}

int objstore_check(const struct objstore_config *cfg, const char *url, struct berth_err *err)
{
	if (strncmp(url, "s3://", 5) == 0) {
		const char *rest = url + 5;
		const char *slash = strchrnul(rest, '/');
		_cleanup_free_ char *bucket = strndup(rest, (size_t)(slash - rest));
		if (bucket == NULL)
			return berth_err_set(err, ENOMEM, "object store");
		if (bucket[0] != '\0' && !bucket_allowed(cfg, bucket))
			return refuse_bucket(cfg, url, bucket, err);
		return 0;
	}
	if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0)
		return check_http_url(cfg, url, url, err);
	if (strncmp(url, "file://", 7) == 0) {
		struct berth_err e;
		int fd = host_path_open(cfg->model_roots, url + 7, O_PATH, &e);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (e.errnum == EXDEV || e.errnum == ELOOP)
			return host_paths_refuse_model(cfg->model_roots, url, err);
		return 0; /* missing now: said when the model is fetched */
	}
	return 0;
}

void objstore_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

char *objstore_join(const char *prefix, const char *target)
{
	size_t n = strlen(prefix);
	return fs_path("%s%s%s", prefix, n > 0 && prefix[n - 1] == '/' ? "" : "/", target);
}

void objstore_object_free(struct objstore_object *o)
{
	if (o->local_open)
		close(o->local_fd);
	free(o->local_path);
	free(o->http_url);
	free(o->bucket);
	free(o->key);
	memset(o, 0, sizeof(*o));
}

/* percent-encodes a key, keeping "/" (S3 path style) */
static char *encode_key(const char *key)
{
	struct berth_buf b = BERTH_BUF_INIT;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		if (isalnum(*p) || strchr("-._~/", *p))
			buf_append(&b, p, 1);
		else
			buf_printf(&b, "%%%02X", *p);
	}
	buf_append(&b, "", 1);
	return buf_steal(&b);
}

static int locate(const struct objstore_config *cfg, const char *url, struct objstore_object *o,
		  enum objstore_status *st, struct berth_err *err);

int objstore_locate(const struct objstore_config *cfg, const char *url, struct objstore_object *o,
		    enum objstore_status *st, struct berth_err *err)
{
	memset(o, 0, sizeof(*o));
	*st = OBJSTORE_ERROR;
	int r = locate(cfg, url, o, st, err);
	if (r == 0)
		*st = OBJSTORE_OK;
	return r;
}

static int locate(const struct objstore_config *cfg, const char *url, struct objstore_object *o,
		  enum objstore_status *st, struct berth_err *err)
{
	if (strncmp(url, "s3://", 5) == 0) {
		const char *rest = url + 5;
		const char *slash = strchr(rest, '/');
		if (rest[0] == '\0' || rest[0] == '/' || slash == NULL || slash[1] == '\0' || strstr(rest, "..") != NULL)
			return berth_err_set(err, 0, "\"%s\" is not a valid s3://bucket/key URL", url);
		o->bucket = strndup(rest, (size_t)(slash - rest));
		o->key = strdup(slash + 1);
		if (o->bucket == NULL || o->key == NULL)
			return berth_err_set(err, ENOMEM, "object store");
		if (!bucket_allowed(cfg, o->bucket)) {
			*st = OBJSTORE_FORBIDDEN;
			return refuse_bucket(cfg, url, o->bucket, err);
		}
		if (cfg->s3_endpoint != NULL) {
			size_t n = strlen(cfg->s3_endpoint);
			_cleanup_free_ char *ek = encode_key(o->key);
			o->http_url = ek ? fs_path("%s%s%s/%s", cfg->s3_endpoint,
						   n > 0 && cfg->s3_endpoint[n - 1] == '/' ? "" : "/", o->bucket, ek)
					 : NULL;
			o->signed_s3 = true;
			return o->http_url ? 0 : berth_err_set(err, ENOMEM, "object store");
		}
		if (cfg->local_root == NULL)
			return berth_err_set(err, 0,
					     "\"%s\" needs an object store: start berthd with --object-store-root DIR "
					     "or --s3-endpoint URL",
					     url);
		o->local_path = fs_path("%s/%s", cfg->local_root, rest);
		return o->local_path ? 0 : berth_err_set(err, ENOMEM, "object store");
	}
	if (strncmp(url, "file://", 7) == 0) {
		const char *p = url + 7;
		if (p[0] != '/' || strstr(p, "/../") != NULL)
			return berth_err_set(err, 0, "\"%s\" must be file:///absolute/path", url);
		o->local_path = strdup(p);
		o->key = strdup(p);
		return o->local_path && o->key ? 0 : berth_err_set(err, ENOMEM, "object store");
	}
	if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) {
		if (check_http_url(cfg, url, url, err) < 0) {
			if (err->errnum == EACCES)
				*st = OBJSTORE_FORBIDDEN;
			return -1;
		}
		o->http_url = strdup(url);
		return o->http_url ? 0 : berth_err_set(err, ENOMEM, "object store");
	}
	return berth_err_set(err, 0, "\"%s\" uses a scheme berth cannot read; use s3://, file:// or https://", url);
}

void objstore_creds_free(struct objstore_creds *c)
{
	free(c->access_key);
	free(c->secret_key);
	free(c->session_token);
	memset(c, 0, sizeof(*c));
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

int objstore_creds_load(struct objstore_creds *c)
{
	memset(c, 0, sizeof(*c));
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	if (ak && *ak && sk && *sk) {
		const char *tok = getenv("AWS_SESSION_TOKEN");
		c->access_key = strdup(ak);
		c->secret_key = strdup(sk);
		c->session_token = tok && *tok ? strdup(tok) : NULL;
		return c->access_key && c->secret_key ? 0 : -1;
	}
	const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE");
	const char *home = getenv("HOME");
	_cleanup_free_ char *path = file ? strdup(file) : fs_path("%s/.aws/credentials", home ? home : "/root");
	FILE *f = path ? fopen(path, "re") : NULL;
	if (f == NULL)
		return -1;
	char line[1024];
	bool in_default = false;
	while (fgets(line, sizeof(line), f)) {
		char *l = trim(line);
		if (l[0] == '[') {
			in_default = strcmp(l, "[default]") == 0;
			continue;
		}
		char *eq = strchr(l, '=');
		if (!in_default || eq == NULL)
			continue;
		*eq = '\0';
		char *k = trim(l), *v = trim(eq + 1);
		char **dst = strcmp(k, "aws_access_key_id") == 0       ? &c->access_key
			     : strcmp(k, "aws_secret_access_key") == 0 ? &c->secret_key
			     : strcmp(k, "aws_session_token") == 0     ? &c->session_token
								       : NULL;
		if (dst != NULL) {
			free(*dst);
			*dst = strdup(v);
		}
	}
	fclose(f);
	if (c->access_key == NULL || c->secret_key == NULL) {
		objstore_creds_free(c);
		return -1;
	}
	return 0;
}

int objstore_sigv4_setup(const char *region, const struct objstore_creds *c, struct objstore_sigv4 *s)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->provider, sizeof(s->provider), "aws:amz:%s:s3", region && *region ? region : "us-east-1");
	s->userpwd = fs_path("%s:%s", c->access_key, c->secret_key);
	if (c->session_token != NULL)
		s->token_header = fs_path("x-amz-security-token: %s", c->session_token);
	return s->userpwd && (!c->session_token || s->token_header) ? 0 : -1;
}

void objstore_sigv4_free(struct objstore_sigv4 *s)
{
	free(s->userpwd);
	free(s->token_header);
	memset(s, 0, sizeof(*s));
}

/* ---- HTTP ---------------------------------------------------------------- */

struct transfer {
	int fd;
	uint64_t max_bytes, got;
	bool too_big;
	char *etag;
	struct berth_buf *mem;     /* (async) the body into memory instead of fd */
	const void *put_data;      /* (async) a PUT of these bytes */
	size_t put_len;
	const char *put_type;
};

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	size_t len = size * n;
	if (len > 5 && strncasecmp(data, "etag:", 5) == 0) {
		char *v = strndup(data + 5, len - 5);
		if (v != NULL) {
			char *tv = trim(v);
			free(t->etag);
			t->etag = strdup(tv);
			free(v);
		}
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	size_t len = size * n;
	if (t->fd < 0 && t->mem == NULL)
		return len;
	if (t->max_bytes > 0 && t->got + len > t->max_bytes) {
		t->too_big = true;
		return 0;
	}
	if (t->mem != NULL) {
		if (buf_append(t->mem, data, len) < 0)
			return 0;
		t->got += len;
		return len;
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = write(t->fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 0;
		off += (size_t)w;
	}
	t->got += len;
	return len;
}

static int http_request(const struct objstore_config *cfg, const struct objstore_object *o, bool head,
			struct transfer *t, long long *size, enum objstore_status *st, struct berth_err *err)
{
	CURL *c = curl_easy_init();
	if (c == NULL) {
		*st = OBJSTORE_ERROR;
		return berth_err_set(err, ENOMEM, "libcurl");
	}
	struct objstore_creds creds = { 0 };
	struct objstore_sigv4 sig = { 0 };
	struct curl_slist *hdrs = NULL;
	int timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms : 300000;
	curl_easy_setopt(c, CURLOPT_URL, o->http_url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 10000 ? timeout : 10000));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout);
	/* redirects are followed below, by hand, each target checked */
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (cfg->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca_file);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
	if (head)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (t->put_data != NULL) { /* (async) a body libcurl's SigV4 hashes */
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->put_len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, t->put_len > 0 ? t->put_data : "");
		char ct[300];
		snprintf(ct, sizeof(ct), "Content-Type: %.256s", t->put_type ? t->put_type : "application/octet-stream");
		hdrs = curl_slist_append(hdrs, ct);
	}
	if (t->max_bytes > 0)
		curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_bytes);
	if (o->signed_s3 && objstore_creds_load(&creds) == 0 &&
	    objstore_sigv4_setup(cfg->region, &creds, &sig) == 0) {
		curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sig.provider);
		curl_easy_setopt(c, CURLOPT_USERPWD, sig.userpwd);
		if (sig.token_header)
			hdrs = curl_slist_append(hdrs, sig.token_header);
	}
	if (hdrs)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	CURLcode rc;
	long code = 0;
	int r = -1;
	char *url = NULL;
	for (int hop = 0;; hop++) {
		rc = curl_easy_perform(c);
		code = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		char *location = NULL;
		if (rc != CURLE_OK || o->signed_s3 || code < 300 || code > 399 ||
		    curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location) != CURLE_OK || location == NULL)
			break;
		if (hop == MAX_REDIRECTS) {
			*st = OBJSTORE_ERROR;
			berth_err_set(err, 0, "%s redirects more than %d times", o->http_url, MAX_REDIRECTS);
			goto out;
		}
		if (check_http_url(cfg, location, location, err) < 0) {
			*st = err->errnum == EACCES ? OBJSTORE_FORBIDDEN : OBJSTORE_ERROR;
			berth_err_prefix(err, "%s redirects to %s, which berth does not follow", o->http_url, location);
			log_warn("object store: %s", err->msg);
			goto out;
		}
		char *next = strdup(location);
		if (next == NULL) {
			*st = OBJSTORE_ERROR;
			berth_err_set(err, ENOMEM, "object store");
			goto out;
		}
		free(url);
		url = next;
		/* what the redirect answer carried is not the object */
		t->got = 0;
		t->too_big = false;
		free(t->etag);
		t->etag = NULL;
		if (t->mem != NULL)
			buf_reset(t->mem);
		if (t->fd >= 0 && (ftruncate(t->fd, 0) < 0 || lseek(t->fd, 0, SEEK_SET) < 0)) {
			*st = OBJSTORE_ERROR;
			berth_err_set(err, errno, "object store");
			goto out;
		}
		curl_easy_setopt(c, CURLOPT_URL, url);
	}
	curl_off_t cl = -1;
	curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	if (size)
		*size = cl;
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_OPERATION_TIMEDOUT ||
	    rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR ||
	    rc == CURLE_GOT_NOTHING) {
		*st = OBJSTORE_UNREACHABLE;
		berth_err_set(err, 0, "the object store did not answer (%s): %s", o->http_url, curl_easy_strerror(rc));
	} else if (t->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		*st = OBJSTORE_TOO_BIG;
		berth_err_set(err, 0, "%s is larger than the limit of %llu bytes", o->http_url,
			      (unsigned long long)t->max_bytes);
	} else if (rc != CURLE_OK) {
		*st = OBJSTORE_ERROR;
		berth_err_set(err, 0, "fetching %s: %s", o->http_url, curl_easy_strerror(rc));
	} else if (code == 404 || code == 403) {
		*st = OBJSTORE_NOT_FOUND;
		berth_err_set(err, 0, "%s: HTTP %ld", o->http_url, code);
	} else if (code >= 500) {
		*st = OBJSTORE_UNREACHABLE;
		berth_err_set(err, 0, "the object store answered HTTP %ld for %s", code, o->http_url);
	} else if (code < 200 || code > 299) {
		*st = OBJSTORE_ERROR;
		berth_err_set(err, 0, "the object store answered HTTP %ld for %s", code, o->http_url);
	} else {
		*st = OBJSTORE_OK;
		r = 0;
	}
out:
	free(url);
	curl_slist_free_all(hdrs);
	objstore_sigv4_free(&sig);
	objstore_creds_free(&creds);
	curl_easy_cleanup(c);
	return r;
}

int objstore_stat(const struct objstore_config *cfg, struct objstore_object *o, char **version,
		  long long *size, enum objstore_status *st, struct berth_err *err)
{
	*version = NULL;
	*size = -1;
	if (o->local_path != NULL) {
		/* opened beneath its root, O_NONBLOCK so that a FIFO cannot hold us */
		int fd;
		struct berth_err oe;
		if (o->bucket != NULL) {
			_cleanup_free_ char *rel = fs_path("%s/%s", o->bucket, o->key);
			fd = rel ? host_path_open_beneath(cfg->local_root, rel, O_RDONLY | O_NONBLOCK, &oe)
				 : berth_err_set(&oe, ENOMEM, "object store");
		} else {
			fd = host_path_open(cfg->model_roots, o->local_path, O_RDONLY | O_NONBLOCK, &oe);
		}
		if (fd < 0) {
			if (oe.errnum == EXDEV || oe.errnum == ELOOP) {
				*st = OBJSTORE_FORBIDDEN;
				if (o->bucket != NULL)
					return berth_err_set(err, 0, "%s leads out of the object store root %s",
							     o->local_path, cfg->local_root);
				_cleanup_free_ char *url = fs_path("file://%s", o->local_path);
				host_paths_refuse_model(cfg->model_roots, url ? url : o->local_path, err);
				err->errnum = EACCES;
				return -1;
			}
			*st = oe.errnum == ENOENT || oe.errnum == ENOTDIR ? OBJSTORE_NOT_FOUND : OBJSTORE_ERROR;
			return berth_err_set(err, oe.errnum, "%s", o->local_path);
		}
		o->local_fd = fd;
		o->local_open = true;
		struct stat sb;
		if (fstat(fd, &sb) < 0) {
			*st = OBJSTORE_ERROR;
			return berth_err_set(err, errno, "%s", o->local_path);
		}
		if (S_ISDIR(sb.st_mode)) {
			o->local_dir = true;
			*version = strdup("dir");
			*st = *version ? OBJSTORE_OK : OBJSTORE_ERROR;
			return *version ? 0 : berth_err_set(err, ENOMEM, "object store");
		}
		if (!S_ISREG(sb.st_mode)) {
			*st = OBJSTORE_NOT_FOUND;
			return berth_err_set(err, 0, "%s is not a file", o->local_path);
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		*version = fs_path("%lld.%09ld-%lld-%llu", (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec,
				   (long long)sb.st_size, (unsigned long long)sb.st_ino);
		*size = sb.st_size;
		*st = OBJSTORE_OK;
		return *version ? 0 : berth_err_set(err, ENOMEM, "object store");
	}
	struct transfer t = { .fd = -1 };
	int r = http_request(cfg, o, true, &t, size, st, err);
	if (r == 0) {
		*version = t.etag ? t.etag : fs_path("size-%lld", *size);
		t.etag = NULL;
	}
	free(t.etag);
	return r;
}

int objstore_fetch(const struct objstore_config *cfg, const struct objstore_object *o, const char *dest_file,
		   uint64_t max_bytes, enum objstore_status *st, struct berth_err *err)
{
	int fd = open(dest_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		*st = OBJSTORE_ERROR;
		return berth_err_set(err, errno, "%s", dest_file);
	}
	struct transfer t = { .fd = fd, .max_bytes = max_bytes };
	int r = http_request(cfg, o, false, &t, NULL, st, err);
	free(t.etag);
	if (close(fd) < 0 && r == 0) {
		*st = OBJSTORE_ERROR;
		r = berth_err_set(err, errno, "%s", dest_file);
	}
	if (r < 0)
		unlink(dest_file);
	return r;
}

/* ---- whole objects in memory, and writes (async) -------------------------- */

int objstore_get(const struct objstore_config *cfg, struct objstore_object *o, uint64_t max_bytes,
		 struct berth_buf *out, enum objstore_status *st, struct berth_err *err)
{
	buf_reset(out);
	if (o->local_path == NULL) {
		struct transfer t = { .fd = -1, .max_bytes = max_bytes, .mem = out };
		int r = http_request(cfg, o, false, &t, NULL, st, err);
		free(t.etag);
		return r;
	}
	char *version = NULL;
	long long size = -1;
	if (!o->local_open && objstore_stat(cfg, o, &version, &size, st, err) < 0)
		return -1;
	free(version);
	if (o->local_dir) {
		*st = OBJSTORE_NOT_FOUND;
		return berth_err_set(err, EISDIR, "%s is a directory, not an object", o->local_path);
	}
	for (;;) {
		char chunk[65536];
		ssize_t n = read(o->local_fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*st = OBJSTORE_ERROR;
			return berth_err_set(err, errno, "%s", o->local_path);
		}
		if (n == 0)
			break;
		if (max_bytes > 0 && out->len + (size_t)n > max_bytes) {
			*st = OBJSTORE_TOO_BIG;
			return berth_err_set(err, EFBIG, "%s is larger than the limit of %llu bytes", o->local_path,
					     (unsigned long long)max_bytes);
		}
		if (buf_append(out, chunk, (size_t)n) < 0) {
			*st = OBJSTORE_ERROR;
			return berth_err_set(err, ENOMEM, "object store");
		}
	}
	*st = OBJSTORE_OK;
	return 0;
}

/* Opens (creating each missing one, 0755) the directories of rel beneath
 * the directory fd root, never following a link; the last component is the
 * file's name, left in *name. -1 with errno. */
static int open_parent_beneath(int root, const char *rel, const char **name)
{
	int dir = dup(root);
	const char *p = rel;
	for (;;) {
		const char *slash = strchr(p, '/');
		if (slash == NULL) {
			*name = p;
			return dir;
		}
		char part[256];
		size_t n = (size_t)(slash - p);
		if (n == 0 || n >= sizeof(part) || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			close(dir);
			errno = EINVAL;
			return -1;
		}
		memcpy(part, p, n);
		part[n] = '\0';
		if (mkdirat(dir, part, 0755) < 0 && errno != EEXIST) {
			int e = errno;
			close(dir);
			errno = e;
			return -1;
		}
		int next = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(dir);
		if (next < 0) {
			errno = e == ELOOP ? EXDEV : e;
			return -1;
		}
		dir = next;
		p = slash + 1;
	}
}

static int put_local(const struct objstore_config *cfg, const struct objstore_object *o, const void *data,
		     size_t len, enum objstore_status *st, struct berth_err *err)
{
	*st = OBJSTORE_ERROR;
	int root = open(cfg->local_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return berth_err_set(err, errno, "the object store root %s", cfg->local_root);
	_cleanup_free_ char *rel = fs_path("%s/%s", o->bucket, o->key);
	const char *name = NULL;
	int dir = rel ? open_parent_beneath(root, rel, &name) : -1;
	int e = rel ? errno : ENOMEM;
	close(root);
	if (dir < 0) {
		if (e == EXDEV)
			*st = OBJSTORE_FORBIDDEN;
		return berth_err_set(err, e, "cannot create the directories of %s", o->local_path);
	}
	if (name[0] == '\0' || strlen(name) > 200) {
		close(dir);
		return berth_err_set(err, EINVAL, "%s does not name an object", o->local_path);
	}
	char tmp[256];
	snprintf(tmp, sizeof(tmp), ".%s.%ld.partial", name, (long)gettid());
	int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	int r = -1;
	if (fd < 0) {
		berth_err_set(err, errno, "cannot write %s", o->local_path);
	} else if (fs_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		berth_err_set(err, errno, "cannot write %s", o->local_path);
		unlinkat(dir, tmp, 0);
	} else if (renameat(dir, tmp, dir, name) < 0) {
		berth_err_set(err, errno, "cannot write %s", o->local_path);
		unlinkat(dir, tmp, 0);
	} else {
		fsync(dir);
		*st = OBJSTORE_OK;
		r = 0;
	}
	if (fd >= 0)
		close(fd);
	close(dir);
	return r;
}

int objstore_put(const struct objstore_config *cfg, const struct objstore_object *o, const void *data, size_t len,
		 const char *content_type, enum objstore_status *st, struct berth_err *err)
{
	if (o->bucket == NULL) {
		*st = OBJSTORE_FORBIDDEN;
		return berth_err_set(err, EACCES, "berth writes objects only to s3:// locations");
	}
	if (o->local_path != NULL)
		return put_local(cfg, o, data, len, st, err);
	struct transfer t = { .fd = -1, .put_data = data, .put_len = len, .put_type = content_type };
	int r = http_request(cfg, o, false, &t, NULL, st, err);
	free(t.etag);
	return r;
}

void objstore_failure(const struct objstore_object *o, const char *url, const char *what, enum objstore_status st,
		      const struct berth_err *cause, struct berth_err *out)
{
	if (st == OBJSTORE_FORBIDDEN && o->bucket) /* as S3 answers for a bucket one may not read */
		log_warn("object store: %s", cause->msg);
	if (st == OBJSTORE_NOT_FOUND || (st == OBJSTORE_FORBIDDEN && o->bucket)) {
		if (o->bucket)
			berth_err_setc(out, BERTH_ERR_VALIDATION, 0,
				       "Failed to download %s(bucket: %s, key: %s). Please ensure that there is an "
				       "object located at the URL and that the role passed to CreateModel has "
				       "permissions to download the model.",
				       what, o->bucket, o->key);
		else
			berth_err_setc(out, BERTH_ERR_VALIDATION, 0,
				       "Failed to download %s(url: %s). Please ensure that there is an object located "
				       "at the URL and that the role passed to CreateModel has permissions to download "
				       "the model.",
				       what, url);
	} else if (st == OBJSTORE_UNREACHABLE) {
		berth_err_setc(out, BERTH_ERR_UNAVAILABLE, 0,
			       "Failed to download %s from %s: the object store could not be reached (%s). Please "
			       "try again.",
			       what, url, cause->msg);
	} else if (st == OBJSTORE_TOO_BIG) {
		berth_err_setc(out, BERTH_ERR_VALIDATION, 0, "Failed to download %s from %s: %s.", what, url, cause->msg);
	} else {
		/* a bad URL or a refused object is the caller's; a local I/O error berth's */
		struct berth_err blamed = *cause;
		berth_err_blame_input(&blamed);
		berth_err_setc(out, blamed.cls, 0, "Failed to download %s from %s: %s", what, url, cause->msg);
		out->errnum = cause->errnum;
	}
}
