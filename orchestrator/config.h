/* config.h — berthd's configuration file (configs/berthd.json, --config
 * PATH). Every member is optional; a member present replaces the compiled
 * default, and a command-line flag given after it replaces both (main.c).
 * Unknown members and values of the wrong type or out of range are
 * refused with the member's name, so a typo never goes unnoticed.
 *
 *   state_dir, run_dir, socket, object_store_root, region, account, shim,
 *   runc, router, router_user, instance_types, seccomp_profile,
 *   s3_endpoint, https_ca_file                                   strings
 *   listen                       array of "HOST:PORT" (router sockets)
 *   image_roots, model_roots     arrays of absolute directories (host_paths.h);
 *                                absent: STATE_DIR/local/images (models) and
 *                                /var/cache/berth/images; [] : none at all
 *   s3_buckets                   array of bucket names (objstore.h)
 *   https_hosts                  array of "host" / "host:port" (objstore.h)
 *   image_max_bytes, image_max_entries  integers ≥ 1 (image.h)
 *   create_grace_ms, health_timeout_ms, stop_timeout_ms          integers ≥ 0
 *   instance_pids_limit          integer ≥ 16
 *   cpu_overcommit, memory_overcommit                            numbers > 0
 */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "host_paths.h"
#include "objstore.h"

#define BERTHD_CONFIG_MAX_LISTEN 16
/* where make framework-images puts the example images and their model data */
#define BERTHD_SHARED_IMAGE_DIR "/var/cache/berth/images"

struct berthd_config {
	char *state_dir, *run_dir, *socket, *object_store_root;
	char *region, *account;
	char *shim, *runc, *router, *router_user;
	char *instance_types;   /* NULL: the compiled-in table */
	char *seccomp_profile;  /* NULL: the compiled-in profile; "" or "none": no filter */
	char *listen[BERTHD_CONFIG_MAX_LISTEN];
	size_t n_listen;
	char *s3_endpoint, *https_ca_file;
	struct host_roots image_roots, model_roots;
	bool image_roots_set, model_roots_set; /* given (even as []): no defaults */
	struct objstore_list s3_buckets, https_hosts;
	unsigned long long image_max_bytes, image_max_entries;
	int create_grace_ms, health_timeout_ms, stop_timeout_ms;
	long long instance_pids_limit;
	double cpu_overcommit, memory_overcommit;
};

/* The compiled defaults (the same values configs/berthd.json ships). */
int berthd_config_defaults(struct berthd_config *c, struct berth_err *err);
/* Overlays the members present in the document on c. */
int berthd_config_parse(const char *text, size_t len, struct berthd_config *c, struct berth_err *err);
int berthd_config_load(const char *path, struct berthd_config *c, struct berth_err *err);
/* The default roots for a state directory (when not given). */
int berthd_config_default_roots(struct berthd_config *c, const char *state_dir, struct berth_err *err);
/* Checks of one list item, shared with main.c's flags: -1 with a message. */
int berthd_config_bucket_ok(const char *bucket, struct berth_err *err);
int berthd_config_host_ok(const char *host, struct berth_err *err);
/* Replaces a string member (copying value; NULL clears it). -1 on ENOMEM. */
int berthd_config_set(char **member, const char *value);
void berthd_config_free(struct berthd_config *c);

#endif
