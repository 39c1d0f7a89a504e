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
 *   create_grace_ms, health_timeout_ms, stop_timeout_ms          integers ≥ 0
 *   instance_pids_limit          integer 16..4194304 (flag --pids-limit)
 *   cpu_overcommit, memory_overcommit                            numbers > 0
 *   stop_containers              true/false
 *   s3_endpoint                  string
 *   mme_max_model_bytes (> 0), mme_disk_bytes                    integers
 *   mme_memory_high_water        number 0..1
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

#define BERTHD_CONFIG_MAX_LISTEN 16

struct berthd_config {
	char *state_dir, *run_dir, *socket, *object_store_root;
	char *region, *account;
	char *shim, *runc, *router, *router_user;
	char *instance_types;   /* NULL: the compiled-in table */
	char *seccomp_profile;  /* NULL: the compiled-in profile; "" or "none": no filter */
	char *listen[BERTHD_CONFIG_MAX_LISTEN];
	size_t n_listen;
	int create_grace_ms, health_timeout_ms, stop_timeout_ms;
	long long instance_pids_limit;
	/* berth-router's containment limits; 0: not set (the router's defaults) */
	long long router_request_timeout_ms, router_max_connections;
	long long router_max_buffered_bytes, router_max_connection_buffered_bytes;
	double cpu_overcommit, memory_overcommit;
	bool stop_containers;
	char *s3_endpoint;
	unsigned long long mme_max_model_bytes, mme_disk_bytes;
	double mme_memory_high_water;
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
/* Replaces a string member (copying value; NULL clears it). -1 on ENOMEM. */
int berthd_config_set(char **member, const char *value);
void berthd_config_free(struct berthd_config *c);

#endif
