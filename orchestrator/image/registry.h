/* registry.h — images by registry reference, pulled with skopeo into
 * berthd's content-addressed cache.
 *
 * Cache (STATE/registry/):
 *   sha256-HEX/          an OCI layout (tag "image") of the image whose
 *                        manifest (or manifest list) has digest sha256:HEX
 *                        in its registry; what image.c then unpacks
 *                        (oci.h verifies every blob's digest and size)
 *   sha256-HEX.partial/  a pull in progress; renamed into place only when
 *                        skopeo finished, removed on any failure and when
 *                        berthd starts (registry_open)
 *   sha256-HEX.lock      one pull per digest (flock), as in oci.h
 *   refs/SHA             what a reference last resolved to: its digest, the
 *                        reference and the time (one file per reference,
 *                        SHA = sha256 of the normalized reference)
 *   pins/ENDPOINT/SHA    the same, as of that endpoint's CreateEndpoint
 *
 * A reference with a digest, or a tag resolved before whose digest is
 * cached, needs no network at all at container start (restarts, new
 * instances). registry_fetch with refresh (CreateEndpoint, `berth pull`)
 * asks the registry what the tag means now and pulls only a digest that is
 * not cached: first with one HEAD request of berthd's own (resolve.h),
 * given at most registries.resolve_timeout_ms of the deadline; when that
 * cannot vouch for a digest (an error, a missing header, no answer in
 * time) with `skopeo inspect --raw` as before, in the deadline's rest, so
 * every error the API user sees is still skopeo's. A digest not cached is
 * inspected with skopeo (platform and size checks) and pulled.
 *
 * Before pulling, berthd checks what the registry declares: the platform
 * (a manifest list must have registries.os/arch; a single image's config
 * must be for it) and the size (config + compressed layers) against
 * image_max_bytes, so neither downloads anything. */
#ifndef BERTH_REGISTRY_H
#define BERTH_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "host_paths.h"
#include "registry_config.h"
#include "resolve.h"

#define REGISTRY_MAX_PULLS 32 /* shown at once in DescribeEndpoint; more still pull */

struct registry {
	const struct registry_config *cfg;
	char *dir;             /* STATE/registry */
	char *conf_file;       /* an empty registries.conf: no host mirrors */
	char *policy_file;     /* skopeo's signature policy: digests, not signatures */
	struct host_roots roots; /* { dir }: where cached layouts are opened beneath */
	uint64_t max_bytes;    /* image_max_bytes */
	atomic_bool stopping;  /* berthd is stopping: running pulls are killed */
	struct resolve_cache resolve; /* tokens and connections of tag resolutions (resolve.h) */
	/* pulls in progress: the image as given and its last step (for
	 * DescribeEndpoint while Creating), guarded by progress_lock */
	pthread_mutex_t progress_lock;
	struct registry_progress {
		char image[600];
		char step[400];
	} progress[REGISTRY_MAX_PULLS];
};

/* Creates the cache directory, removes what interrupted pulls left. */
int registry_open(struct registry *r, const char *state_dir, const struct registry_config *cfg, uint64_t max_bytes,
		  struct berth_err *err);
/* Kills running pulls (they fail with "berthd is stopping"). */
void registry_stop(struct registry *r);
void registry_close(struct registry *r);

struct registry_image {
	char digest[72];        /* sha256:… of the manifest (list) in the registry */
	char resolved[600];     /* registry/repository@digest (DescribeEndpoint's ResolvedImage) */
	char layout[4200];      /* the cached OCI layout */
	double resolved_at;     /* epoch seconds */
	bool pulled;            /* false: it was cached already */
};

/* Each line of skopeo copy's progress. */
typedef void (*registry_progress_fn)(void *user_data, const char *line);

/* CreateModel-time check, no network: the reference parses and berthd may
 * pull from its registry (VALIDATION errors for the API user). */
int registry_check(const struct registry *r, const char *image, struct berth_err *err);

struct registry_fetch_opts {
	bool refresh;                    /* ask the registry what a tag means now (else a
					    tag resolved before is taken as it was) */
	registry_progress_fn progress;   /* each line of skopeo copy (may be NULL) */
	void *user_data;
	bool (*cancelled)(void *ctx);    /* asked while skopeo runs: true kills it (may be NULL) */
	void *cancel_ctx;
};

/* Resolves and, when not cached, pulls image. Errors are for the API user
 * (FailureReason) and quote skopeo; a pull stopped by registry_stop or
 * cancelled() fails with class UNAVAILABLE. opts may be NULL (no refresh). */
int registry_fetch(struct registry *r, const char *image, const struct registry_fetch_opts *opts,
		   struct registry_image *out, struct berth_err *err);

/* The last step of a pull of image in progress ("asking H what T means",
 * "Copying blob sha256:…"); -1 when none runs. */
int registry_pull_step(struct registry *r, const char *image, char *step, size_t size);

/* What image last resolved to (no network); -1 when never. */
int registry_lookup(const struct registry *r, const char *image, struct registry_image *out);

/* Per endpoint: what its images resolved to at its CreateEndpoint
 * (STATE/registry/pins/ENDPOINT/SHA), so that a tag moved since changes
 * neither its DescribeEndpoint nor what its restarted containers run.
 * registry_pinned: -1 when the endpoint has no pin for image. */
int registry_pin(struct registry *r, const char *endpoint, const char *image, const struct registry_image *img);
int registry_pinned(const struct registry *r, const char *endpoint, const char *image, struct registry_image *out);
void registry_unpin(struct registry *r, const char *endpoint);

/* The cache as `berth images` shows it: a JSON array of
 * {"digest","bytes","references":[…],"resolved_at","models":[…]}; users
 * (may be NULL) is NULL-terminated pairs digest, model name. */
int registry_list(const struct registry *r, const char *const *users, struct berth_buf *json, struct berth_err *err);
/* Removes cached images whose digest is not in keep (NULL-terminated
 * digests); *removed counts them, *freed their bytes. */
int registry_prune(struct registry *r, const char *const *keep, size_t *removed, uint64_t *freed,
		   struct berth_err *err);

#endif
