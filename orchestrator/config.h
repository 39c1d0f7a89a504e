/* config.h — berthd's configuration file (configs/berthd.json, --config
 * PATH) and flags. Every member is optional; a member present replaces
 * the compiled default, and a command-line flag replaces both. Each setting
 * is a member and a flag (--state-dir is state_dir) checked by one
 * function with the same bounds either way. Unknown members and values of
 * the wrong type or out of range are refused with the member's name, so a
 * typo never goes unnoticed.
 *
 *   state_dir, run_dir, socket, object_store_root, region, account, shim,
 *   runc, router, router_user, instance_types, seccomp_profile   strings
 *   listen                       array of "HOST:PORT" (router sockets)
 *   tls_listen                   array of "HOST:PORT" (router sockets, TLS only)
 *   create_grace_ms, health_timeout_ms, stop_timeout_ms          integers ≥ 0
 *   instance_pids_limit          integer 16..4194304 (flag --pids-limit)
 *   cpu_overcommit, memory_overcommit                            numbers > 0
 *   stop_containers              true/false
 *   s3_endpoint                  string
 *   model_max_bytes (> 0)        integer (artifact.h)
 *   artifact_cache_max_bytes     integer (artifact_cache.h; 0: no trim)
 *   mme_max_model_bytes (> 0), mme_disk_bytes                    integers
 *   mme_memory_high_water        number 0..1
 *   async_queue_max              integer 1..1000000: InvokeEndpointAsync requests
 *                                waiting or running per endpoint (1000)
 *   async_max_bytes (> 0)        integer: one async input or answer (104857600)
 *   no_user_namespaces           true/false (default false: every
 *                                container in a user namespace of its
 *                                instance's own uid range)
 *   userns_uid_base              integer 65536..4294901759, first host
 *                                uid/gid of those ranges (100000000); not
 *                                given, a berthd of another state directory
 *                                than the default takes a window above it
 *                                (uid_range.h)
 *   run_dir                      not given: /run/IDENTITY (identity.h)
 *   image_roots, model_roots     arrays of absolute directories (host_paths.h);
 *                                absent: STATE_DIR/local/images (models) and
 *                                /var/cache/berth/images; []: none at all
 *   s3_buckets                   array of bucket names (objstore.h)
 *   https_hosts                  array of "host" / "host:port" (objstore.h)
 *   https_ca_file                string (PEM CA certificates for https://)
 *   image_max_bytes, image_max_entries  integers ≥ 1 (image.h)
 *   cdi_spec_dirs                array of absolute directories of CDI specs
 *                                (cdi_registry.h; absent: /etc/cdi, /var/run/cdi)
 *   accelerator_kind             a CDI kind, VENDOR/CLASS (devices.h; absent:
 *                                nvidia.com/gpu)
 * The arrays are repeatable flags (--image-root, --model-root, --s3-bucket,
 * --https-host); flags given replace the file's array.
 *   router_request_timeout_ms, router_max_connections, router_max_buffered_bytes,
 *   router_max_connection_buffered_bytes   integers ≥ 1, passed to berth-router as
 *                                its flags without "router_" (not set: its defaults)
 */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "err.h"
#include "registry_config.h"
#include "host_paths.h"
#include "objstore.h"

#define BERTHD_CONFIG_MAX_LISTEN 16
/* where make framework-images puts the example images and their model data */
#define BERTHD_SHARED_IMAGE_DIR "/var/cache/berth/images"

struct berthd_config {
	char *state_dir, *run_dir, *socket, *object_store_root; /* run_dir NULL: /run/IDENTITY */
	char *region, *account;
	char *shim, *runc, *router, *router_user;
	char *instance_types;   /* NULL: the compiled-in table */
	char *seccomp_profile;  /* NULL: the compiled-in profile; "" or "none": no filter */
	char *listen[BERTHD_CONFIG_MAX_LISTEN];
	size_t n_listen;
	char *tls_listen[BERTHD_CONFIG_MAX_LISTEN]; /* TLS only (needs tls_cert, tls_key) */
	size_t n_tls_listen;
	int create_grace_ms, health_timeout_ms, stop_timeout_ms;
	long long instance_pids_limit;
	/* berth-router's containment limits; 0: not set (the router's defaults) */
	long long router_request_timeout_ms, router_max_connections;
	long long router_max_buffered_bytes, router_max_connection_buffered_bytes;
	double cpu_overcommit, memory_overcommit;
	bool stop_containers;
	char *s3_endpoint;
	unsigned long long model_max_bytes;
	unsigned long long artifact_cache_max_bytes;
	unsigned long long mme_max_model_bytes, mme_disk_bytes;
	double mme_memory_high_water;
	long long async_queue_max;           /* (async) */
	unsigned long long async_max_bytes;  /* (async) */
	bool no_user_namespaces;
	long long userns_uid_base;
	bool userns_uid_base_set; /* given: its window is used as it is */
	struct host_roots image_roots, model_roots;
	bool image_roots_set, model_roots_set; /* given (even as []): no defaults */
	struct objstore_list s3_buckets, https_hosts;
	char *https_ca_file;
	unsigned long long image_max_bytes, image_max_entries;
	/* registries images are pulled from (registry_config.h): the file's
	 * "registries" object, or --registries FILE holding that object */
	struct registry_config registries;
	/* who may call (docs/contract.md §1) */
	char *auth;             /* "sigv4" (default) or "none" (loopback only) */
	char *credentials;      /* the keys file (default CREDENTIALS_DEFAULT_PATH) */
	char *tls_cert, *tls_key; /* PEM files; both or neither */
	bool insecure_listen;   /* serve a non-loopback address without TLS or keys */
	/* (devices) where CDI specs are (cdi_registry.h); not given: /etc/cdi,
	 * /var/run/cdi. The kind of a GPU type's devices by default (devices.h). */
	struct host_roots cdi_spec_dirs;
	bool cdi_spec_dirs_set;
	char *accelerator_kind;
};

/* The compiled defaults (the same values configs/berthd.json ships). */
int berthd_config_defaults(struct berthd_config *c, struct berth_err *err);
/* Overlays the members present in the document on c. */
int berthd_config_parse(const char *text, size_t len, struct berthd_config *c, struct berth_err *err);
int berthd_config_load(const char *path, struct berthd_config *c, struct berth_err *err);
/* Defaults, then the --config file, then the other flags. 0: ready;
 * 1: --help was asked for (print berthd_config_usage); -1: err says what
 * is wrong. c must be freed in every case. */
int berthd_config_from_args(int argc, char **argv, struct berthd_config *c, struct berth_err *err);
void berthd_config_usage(FILE *f);
/* The default roots for a state directory, where none were given. */
int berthd_config_default_roots(struct berthd_config *c, const char *state_dir, struct berth_err *err);
/* Replaces a string member (copying value; NULL clears it). -1 on ENOMEM. */
int berthd_config_set(char **member, const char *value);
void berthd_config_free(struct berthd_config *c);

#endif
