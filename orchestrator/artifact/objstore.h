/* objstore.h — where every artifact comes from (single-model and pipeline
 * ModelDataUrl, multi-model prefixes, SAGEMAKER_SUBMIT_DIRECTORY): maps a
 * URL to an object, asks its version (ETag or mtime) and fetches it,
 * bounded in size and time. The one place that speaks to a store.
 *
 *   s3://BUCKET/KEY   → LOCAL_ROOT/BUCKET/KEY (berthd --object-store-root), or,
 *                       with --s3-endpoint URL, URL/BUCKET/KEY (path style)
 *                       signed with SigV4 ("aws:amz:REGION:s3", libcurl);
 *                       credentials from AWS_ACCESS_KEY_ID /
 *                       AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else
 *                       ~/.aws/credentials [default] (none: unsigned)
 *   file:///ABS/PATH  → /ABS/PATH, only under model_roots (host_paths.h)
 *   https://… http:// → fetched with libcurl, only from https_hosts
 *
 * Who may be asked for what (the operator's lists; a refusal is
 * OBJSTORE_FORBIDDEN and nothing is sent):
 *   - s3:// with s3_endpoint: only buckets in `buckets` (the host's
 *     credentials sign requests for those only); with the local root and a
 *     non-empty `buckets`, the same rule; local objects are opened beneath
 *     LOCAL_ROOT (a symbolic link cannot lead out of it);
 *   - http(s)://: only hosts in `https_hosts` ("host" or "host:port",
 *     case-insensitive; [v6] in brackets); redirects are followed by hand,
 *     at most 5, each target checked against the same list (and signed S3
 *     requests never follow one);
 *   - file://: opened beneath the model root it lies under.
 * Local objects are used through the descriptor objstore_stat opened, never
 * looked up again.
 *
 * Failures are classified (enum objstore_status) so the caller can answer
 * as SageMaker does: a missing object is the user's fault (400), an
 * unreachable store is 503. */
#ifndef BERTH_OBJSTORE_H
#define BERTH_OBJSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "host_paths.h"

enum objstore_status {
	OBJSTORE_OK = 0,
	OBJSTORE_NOT_FOUND,    /* no such object (404, or 403 as S3 says without ListBucket) */
	OBJSTORE_UNREACHABLE,  /* connect/resolve/timeout: the store did not answer */
	OBJSTORE_TOO_BIG,      /* over max_bytes */
	OBJSTORE_FORBIDDEN,    /* the operator's lists do not allow it: nothing was sent */
	OBJSTORE_ERROR,        /* anything else (bad URL, 5xx, local I/O) */
};

#define OBJSTORE_LIST_MAX 64

struct objstore_list {
	char *items[OBJSTORE_LIST_MAX];
	size_t n;
};

/* Adds a copy of item (no duplicates). -1 when full or out of memory. */
int objstore_list_add(struct objstore_list *l, const char *item);
void objstore_list_free(struct objstore_list *l);

struct objstore_config {
	const char *local_root;   /* s3:// without s3_endpoint; NULL: s3:// refused */
	const char *s3_endpoint;  /* e.g. http://127.0.0.1:9000; NULL: local root */
	const char *region;       /* SigV4 region, us-east-1 when NULL */
	int timeout_ms;           /* whole transfer; connect gets min(this, 10 s) */
	/* one single-model artifact's fetch and unpack together (artifact.h):
	 * a variant's ModelDataDownloadTimeoutInSeconds, set per container;
	 * 0: no bound but timeout_ms per transfer */
	int artifact_timeout_ms;
	const struct host_roots *model_roots;      /* file:// (NULL: refused) */
	const struct objstore_list *buckets;       /* s3:// buckets (see above) */
	const struct objstore_list *https_hosts;   /* http(s):// hosts (NULL or empty: refused) */
	const char *ca_file;      /* CA certificates for https:// (PEM); NULL: the system's */
};

struct objstore_object {
	char *local_path;   /* set for local objects */
	int local_fd;       /* opened by objstore_stat when local_open, closed by objstore_object_free */
	bool local_open;
	char *http_url;     /* set for HTTP objects */
	bool signed_s3;     /* http_url is an S3 endpoint: sign it */
	bool local_dir;     /* objstore_stat found a directory (local objects): local_fd is it */
	char *bucket;       /* s3:// only */
	char *key;          /* s3:// only; file:// the path */
};

/* Joins a ModelDataUrl prefix and a relative target (adds "/" if needed). */
char *objstore_join(const char *prefix, const char *target);
/* The operator's lists applied to a URL (or MultiModel prefix), without
 * sending anything: -1 with errnum EACCES and a message for the API user
 * when refused (file:// also opened beneath its root: EXDEV, the model
 * roots message of host_paths.h, unless it simply does not exist yet). */
int objstore_check(const struct objstore_config *cfg, const char *url, struct berth_err *err);
/* Maps url to an object (objstore_check's rules applied: *st is
 * OBJSTORE_FORBIDDEN on a refusal, OBJSTORE_ERROR on a bad URL). */
int objstore_locate(const struct objstore_config *cfg, const char *url, struct objstore_object *o,
		    enum objstore_status *st, struct berth_err *err);
void objstore_object_free(struct objstore_object *o);

struct objstore_creds {
	char *access_key, *secret_key, *session_token;
};
/* Environment first, then HOME/.aws/credentials [default]. 0 found, -1 none. */
int objstore_creds_load(struct objstore_creds *c);
void objstore_creds_free(struct objstore_creds *c);

/* The libcurl options a signed S3 request gets (tested on their own). */
struct objstore_sigv4 {
	char provider[128];   /* CURLOPT_AWS_SIGV4 */
	char *userpwd;        /* CURLOPT_USERPWD "AK:SK" */
	char *token_header;   /* "x-amz-security-token: T" or NULL */
};
int objstore_sigv4_setup(const char *region, const struct objstore_creds *c, struct objstore_sigv4 *s);
void objstore_sigv4_free(struct objstore_sigv4 *s);

/* The object's version (ETag, or "mtime-size-inode" for local files;
 * caller frees) and size (-1 when unknown). Local objects are opened here
 * (o->local_fd) beneath their root; a local directory is OBJSTORE_OK with
 * o->local_dir set and version "dir" (an already unpacked artifact: the
 * caller decides whether it takes one). */
int objstore_stat(const struct objstore_config *cfg, struct objstore_object *o, char **version,
		  long long *size, enum objstore_status *st, struct berth_err *err);
/* HTTP objects: downloads into dest_file (created 0600), at most max_bytes. */
int objstore_fetch(const struct objstore_config *cfg, const struct objstore_object *o, const char *dest_file,
		   uint64_t max_bytes, enum objstore_status *st, struct berth_err *err);

/* (async) The whole object into out (reset first), at most max_bytes (0:
 * no bound): local objects are opened (objstore_stat) when they are not
 * yet; a directory is OBJSTORE_NOT_FOUND. */
int objstore_get(const struct objstore_config *cfg, struct objstore_object *o, uint64_t max_bytes,
		 struct berth_buf *out, enum objstore_status *st, struct berth_err *err);
/* (async) Writes data as the s3:// object o (objstore_locate's rules
 * applied): under the local root, its directories created (0755, no link
 * followed, nothing out of the root), written to a temporary file, fsync'd
 * and renamed into place (0644), so a reader never sees half an object; to
 * the S3 endpoint, a signed PUT with content_type (NULL:
 * application/octet-stream). Other schemes are OBJSTORE_FORBIDDEN. */
int objstore_put(const struct objstore_config *cfg, const struct objstore_object *o, const void *data, size_t len,
		 const char *content_type, enum objstore_status *st, struct berth_err *err);

/* What the API user is told when an object could not be had, as SageMaker
 * words it (what: "model data" or e.g. "the source directory"), into out
 * with its class:
 *   NOT_FOUND, FORBIDDEN (s3://)  400  Failed to download WHAT(bucket: B, key: K). Please ensure that
 *                                      there is an object located at the URL and that the role passed
 *                                      to CreateModel has permissions to download the model.
 *   UNREACHABLE                   503  Failed to download WHAT from URL: the object store could not be
 *                                      reached (CAUSE). Please try again.
 *   TOO_BIG                       400  Failed to download WHAT from URL: CAUSE.
 *   other                         400 (the URL) or 500 (berth's disk, memory): … from URL: CAUSE
 * A FORBIDDEN bucket answers as S3 does for a bucket one may not read;
 * the operator's reason (cause) is logged. */
void objstore_failure(const struct objstore_object *o, const char *url, const char *what, enum objstore_status st,
		      const struct berth_err *cause, struct berth_err *out);

/* Once, from main() before threads. */
void objstore_global_init(void);

#endif
