/* resolve.h — what a tag means now, asked by berthd itself: one
 * `HEAD https://REGISTRY/v2/REPOSITORY/manifests/TAG` (libcurl) whose
 * Docker-Content-Digest is the digest of the manifest, or manifest list,
 * the registry holds; the same digest `skopeo inspect --raw` hashes, since
 * both accept the same four types (OCI index, OCI manifest, Docker
 * manifest list v2, Docker manifest v2) and a manifest list's digest is
 * what berth pins (never the platform entry's).
 *
 * Authentication as the registries settings say: Basic from
 * username/password or the auth.json "auths" entry's "auth"; a Bearer
 * challenge (WWW-Authenticate realm, service, scope=repository:REPO:pull)
 * is answered by asking the realm for a token (with those credentials when
 * any), kept for its expires_in (60 s when not said) per registry and
 * repository; a kept token the registry refuses (401) is replaced once,
 * within the same call. TLS: the system CAs plus cert_dir's *.crt, a client
 * certificate from cert_dir's *.cert and its *.key (containers-certs.d(5));
 * tls_verify false checks nothing. Credentials set are sent with the first
 * request (no round trip for the registry's Basic challenge). HTTP/1.1:
 * one small request on a kept connection needs nothing of HTTP/2.
 *
 * This is only a fast path: any answer it cannot vouch for (no or a
 * malformed digest header, another media type, an HTTP error, a transport
 * error, credentials it cannot read, no answer within its budget) returns
 * RESOLVE_FALLBACK with the reason, and the caller asks skopeo as before,
 * whose messages are the ones the API user sees. */
#ifndef BERTH_RESOLVE_H
#define BERTH_RESOLVE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "registry_config.h"
#include "resolve_ca.h"

#define RESOLVE_TOKENS 16
#define RESOLVE_TOKEN_MAX 8192

#define RESOLVE_HANDLES 8

/* What resolutions keep between them: Bearer tokens for their lifetime,
 * per registry and repository; one libcurl handle per registry (up to
 * RESOLVE_HANDLES; with its options, CA text and open connection), used
 * by one resolution at a time, others making their own; open
 * connections and TLS sessions shared by all (a libcurl share), so a
 * warm CreateEndpoint pays no TLS handshake; and each cert_dir's CA text
 * (resolve_ca.h), so it reads no CA file. Nothing of what a tag means is
 * kept: every resolution asks. */
struct resolve_cache {
	struct resolve_ca_cache cas;
	struct resolve_handle {
		pthread_mutex_t use;     /* held by the resolution using it */
		char host[256];          /* "" while free */
		const struct registry_host *settings; /* those it is set up for */
		void *easy;              /* CURL *, NULL until first used */
		uint64_t ca_signature;   /* of the CA text it holds (0: libcurl's default) */
	} handles[RESOLVE_HANDLES];
	pthread_mutex_t lock;    /* tokens and the handles' host */
	void *share;               /* CURLSH *, NULL when libcurl could not make one */
	pthread_mutex_t share_locks[8]; /* by curl_lock_data */
	struct resolve_token {
		char key[600];      /* "host/repository" */
		char *token;        /* NULL: free slot */
		long long expires_ms; /* monotonic */
	} slots[RESOLVE_TOKENS];
};

void resolve_cache_init(struct resolve_cache *t);
void resolve_cache_free(struct resolve_cache *t);

struct resolve_request {
	const char *host;        /* registry host[:port] to ask (after mirrors) */
	const char *repository;  /* in that registry (mirror prefix included) */
	const char *tag;
	const struct registry_host *settings; /* NULL: anonymous, TLS verified */
	const char *auth_file;   /* auth.json to read when settings has no username (may be NULL) */
	long long timeout_ms;    /* for the whole exchange */
	const atomic_bool *stop; /* may be NULL */
	bool (*cancelled)(void *ctx); /* may be NULL */
	void *cancel_ctx;
};

enum resolve_outcome {
	RESOLVE_OK,        /* digest filled */
	RESOLVE_FALLBACK,  /* why filled: ask skopeo */
	RESOLVE_STOPPED,   /* *stop or cancelled() */
};

enum resolve_outcome resolve_tag(struct resolve_cache *tokens, const struct resolve_request *q, char digest[72],
				 char *why, size_t why_size);

/* ---- parsing, exposed for unit tests ------------------------------------ */

struct resolve_challenge {
	char scheme[16];   /* "basic", "bearer" (lower-cased); "" when none */
	char realm[1024];
	char service[256];
	char scope[512];
};

/* One WWW-Authenticate value (RFC 7235: scheme, then comma-separated
 * name=value or name="quoted" params). -1 when malformed or too long. */
int resolve_parse_challenge(const char *value, struct resolve_challenge *out);

/* A header line "Name: value\r\n": 0 and value (trimmed, NUL-terminated)
 * when its name is name (case-insensitive); -1 otherwise or if too long. */
int resolve_header_value(const char *line, size_t len, const char *name, char *value, size_t size);

/* True for "sha256:" and 64 lower-case hex digits. */
bool resolve_digest_valid(const char *digest);

/* True for the four manifest media types asked for (parameters ignored). */
bool resolve_media_type_accepted(const char *content_type);

/* A token endpoint's JSON answer: "token" (else "access_token") and
 * "expires_in" (60 when absent or below 1). -1 when neither token. */
int resolve_parse_token(const char *json, size_t len, char **token, long long *expires_in_s);

/* "user:password" from an auth.json text's auths[key].auth (base64). -1
 * when there is no such entry or it does not decode to "user:password". */
int resolve_auth_from_json(const char *json, size_t len, const char *key, char *userpass, size_t size);

#endif
