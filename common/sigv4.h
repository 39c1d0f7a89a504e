/* sigv4.h — AWS Signature Version 4 verification (AWS4-HMAC-SHA256), as
 * botocore, the aws CLI and curl --aws-sigv4 sign requests.
 *
 * The verifier works in steps so that each process does only its part:
 *  1. sigv4_parse: reads the Authorization and X-Amz-Date headers, checks
 *     the credential scope (date = X-Amz-Date's day, region, service,
 *     "aws4_request") and the clock skew (±SIGV4_MAX_SKEW_S). No secret.
 *  2. sigv4_string_to_sign: the canonical request (method, URI, query,
 *     the signed headers, the payload hash) hashed into the string to
 *     sign. No secret.
 *  3. sigv4_signing_key: the day's key derived from a secret
 *     (HMAC chain date → region → service → "aws4_request"); berthd
 *     derives it and may hand it to the router, which then never holds
 *     the secret itself.
 *  4. sigv4_check: HMAC of the string to sign with that key, compared with
 *     the signature in constant time.
 * The payload hash is computed as the body arrives (struct sigv4_hasher).
 *
 * Every failure fills a struct sigv4_error with the status and the exact
 * message AWS answers with (docs/contract.md §1 pins them); the caller
 * renders it in its plane's shape (JSON 1.1 or x-amzn-ErrorType). */
#ifndef BERTH_SIGV4_H
#define BERTH_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_SERVICE "sagemaker" /* botocore signs both sagemaker and sagemaker-runtime as "sagemaker" */
#define SIGV4_MAX_SKEW_S (15 * 60)
#define SIGV4_KEY_LEN 32                  /* a derived signing key: SHA-256 HMAC output */
#define SIGV4_MAX_KEY_ID 128              /* access key id length */
#define SIGV4_MAX_AUTHORIZATION 4096      /* longer Authorization headers are refused */
#define SIGV4_MAX_SIGNED_HEADERS 64
#define SIGV4_EMPTY_PAYLOAD_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

enum sigv4_status {
	SIGV4_OK = 0,
	SIGV4_MISSING,     /* MissingAuthenticationTokenException: no Authorization header at all */
	SIGV4_INCOMPLETE,  /* IncompleteSignatureException: a part missing or garbled, X-Amz-Date missing or malformed,
	                    * Authorization repeated or over the bound */
	SIGV4_UNKNOWN_KEY, /* UnrecognizedClientException: no such access key id */
	SIGV4_INVALID,     /* InvalidSignatureException: mismatch (a signed header absent too), host not signed,
	                    * X-Amz-Content-Sha256 not the body's hash, expired or not yet current, wrong scope */
	SIGV4_DENIED,      /* AccessDeniedException: a valid key without the permission (credentials.h) */
};

struct sigv4_error {
	enum sigv4_status status;
	char message[640];
};

/* "MissingAuthenticationTokenException", …; NULL for SIGV4_OK. */
const char *sigv4_error_type(enum sigv4_status status);
/* The HTTP status answered with it on the control plane (AWS JSON 1.1)
 * and on the runtime (REST JSON): see docs/contract.md §1. */
int sigv4_error_http_status(enum sigv4_status status, bool runtime);

/* One request header as received. Names in any case; HTTP/2's
 * ":authority" stands for "host" when there is no host header. Values
 * as received (the canonical form trims and folds spaces itself). */
struct sigv4_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

struct sigv4_request {
	const char *method;  /* "POST" */
	const char *target;  /* path and query as on the wire: "/endpoints/e/invocations?x=1" */
	const struct sigv4_header *headers;
	size_t n_headers;
	const char *payload_hash; /* 64 lower-case hex digits: SHA-256 of the body as received */
};

/* A parsed Authorization header (step 1). */
struct sigv4_auth {
	char key_id[SIGV4_MAX_KEY_ID + 1];
	char date[9];            /* scope date YYYYMMDD */
	char region[64];
	char service[64];
	char signed_headers[1024]; /* "host;x-amz-date", as sent */
	char signature[65];      /* 64 lower-case hex digits */
	char amz_date[17];       /* X-Amz-Date (or Date) as "20150830T123600Z" */
	int64_t amz_time;        /* the same, seconds since the epoch */
};

/* Step 1. region is berthd's; service SIGV4_SERVICE; now in seconds since
 * the epoch. SIGV4_OK, or the status with err filled, checked in this
 * order: Authorization absent, repeated, over SIGV4_MAX_AUTHORIZATION
 * bytes, another algorithm; Credential/Signature/SignedHeaders missing or
 * garbled and X-Amz-Date missing (one message); X-Amz-Date malformed or
 * repeated; scope date, region, service, terminator; clock skew (exactly
 * SIGV4_MAX_SKEW_S passes). The time is X-Amz-Date's, else the Date
 * header's (IMF-fixdate, zone GMT, +0000 or -0000, as botocore writes it
 * when a request carries Date), either of them once.
 * req->payload_hash is not used (the body may not have arrived yet).
 * Values quoted back in messages are cut at 256 bytes ("..."), bytes
 * that are not printable ASCII shown as '?'. */
enum sigv4_status sigv4_parse(const struct sigv4_request *req, const char *region, const char *service, int64_t now,
			      struct sigv4_auth *out, struct sigv4_error *err);

/* Step 2: the string to sign into out (reset first). Returns SIGV4_OK, or
 * SIGV4_INVALID with err filled (a signed header the request does not
 * carry: AWS's mismatch message; "host" not among the signed headers; an
 * X-Amz-Content-Sha256 header that is not req->payload_hash, which
 * refuses UNSIGNED-PAYLOAD too), or -1 on ENOMEM. req->payload_hash must
 * be set from here on. */
int sigv4_string_to_sign(const struct sigv4_request *req, const struct sigv4_auth *auth, struct berth_buf *out,
			 struct sigv4_error *err);

/* The canonical request step 2 hashes (into out, reset first), as
 * botocore's SigV4Auth.canonical_request builds it; same answers as
 * sigv4_string_to_sign. For tests and debug logs. */
int sigv4_canonical_request(const struct sigv4_request *req, const struct sigv4_auth *auth, struct berth_buf *out,
			    struct sigv4_error *err);

/* Step 3. secret: the secret access key; date YYYYMMDD. */
void sigv4_signing_key(const char *secret, const char *date, const char *region, const char *service,
		       unsigned char key[SIGV4_KEY_LEN]);

/* Step 4. SIGV4_OK, or SIGV4_INVALID with AWS's mismatch message. */
enum sigv4_status sigv4_check(const unsigned char key[SIGV4_KEY_LEN], const char *string_to_sign, size_t len,
			      const char *signature_hex, struct sigv4_error *err);

/* Steps 2–4 with a key already derived for auth->date (what the router and
 * berthd both call once they know the key): SIGV4_OK or SIGV4_INVALID with
 * err filled, -1 on ENOMEM. */
int sigv4_verify(const struct sigv4_request *req, const struct sigv4_auth *auth,
		 const unsigned char key[SIGV4_KEY_LEN], struct sigv4_error *err);

/* A day key made ready once for many checks (the router's hot path): the
 * HMAC's inner and outer blocks are absorbed at creation, so a check
 * costs two SHA-256 finishes and no key setup. Not thread-safe (one
 * scratch state). NULL on ENOMEM. */
struct sigv4_mac;
struct sigv4_mac *sigv4_mac_new(const unsigned char key[SIGV4_KEY_LEN]);
void sigv4_mac_free(struct sigv4_mac *m);
/* sigv4_verify with a prepared key. */
int sigv4_verify_mac(const struct sigv4_request *req, const struct sigv4_auth *auth, struct sigv4_mac *m,
		     struct sigv4_error *err);

/* Fills err with status and AWS's message for the cases that are not
 * found by the steps above: SIGV4_UNKNOWN_KEY ("The security token
 * included in the request is invalid."). */
void sigv4_error_unknown_key(struct sigv4_error *err);

/* SHA-256 of a body as it arrives. A hasher may be reset and reused. */
struct sigv4_hasher;
struct sigv4_hasher *sigv4_hasher_new(void); /* NULL on ENOMEM */
void sigv4_hasher_free(struct sigv4_hasher *h);
void sigv4_hasher_reset(struct sigv4_hasher *h);
void sigv4_hasher_update(struct sigv4_hasher *h, const void *data, size_t len);
/* Writes 64 hex digits and a NUL; the hasher must be reset before reuse. */
void sigv4_hasher_final_hex(struct sigv4_hasher *h, char out[65]);
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* Is name (lower-case) one of list's ';'-separated signed headers? */
bool sigv4_signed_headers_have(const char *list, const char *name);

/* "20150830T123600Z" → seconds since the epoch; false when malformed. */
bool sigv4_parse_amz_date(const char *text, size_t len, int64_t *out);
/* Seconds since the epoch → "20150830T123600Z". */
void sigv4_format_amz_date(int64_t t, char out[17]);

#endif
