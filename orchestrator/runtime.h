/* runtime.h — endpoint lifecycles: turns an endpoint record into running
 * containers (image, artifact, OCI bundle, one shim each, started in
 * parallel), health-checks them to InService or Failed, stops them on
 * delete, re-adopts running shims after a berthd restart, and publishes
 * the route table to subscribed routers.
 *
 * Locking: every function that touches the store runs with *lock held;
 * slow work (unpacking, spawning, pinging, stopping) runs in worker
 * threads without it. Status changes are persisted, then *changed is
 * broadcast and the route table pushed. */
#ifndef BERTH_RUNTIME_H
#define BERTH_RUNTIME_H

#include <pthread.h>

#include "api.h"
#include "buf.h"
#include "err.h"
#include "store.h"

struct runtime_config {
	const char *state_dir;
	const char *run_dir;
	const char *shim_path;
	const char *runc_path;
	const char *object_store_root; /* NULL: s3:// URLs are refused */
	/* (host paths) Where local images may be and how large they may unpack
	 * (image.h); the object store's rules for ModelDataUrl (objstore.h:
	 * model roots, buckets, hosts). NULL: nothing local is accepted. */
	const struct image_policy *images;
	const struct objstore_config *store;
	const char *region;
	const char *account;
	int stop_timeout_ms;           /* SIGTERM → SIGKILL, 30000 */
	int health_timeout_ms;         /* healthy within, 240000 */
	int ping_timeout_ms;           /* one /ping, 2000 */
	long long container_memory_bytes;
	long long container_pids_limit;
	/* (limits) Instance types and the host's limits: each container goes
	 * into its instance's cgroup (limits_place), with the instance's limits.
	 * NULL: "/berth/ENDPOINT/ID" with the two limits above. */
	const struct limits *limits;
	/* (confinement) The containers' seccomp profile; NULL: none. */
	const struct seccomp_profile *seccomp;
	/* (confinement) > 0: shim sockets (and their directory) are shared with
	 * this group, the unprivileged router's. */
	unsigned int router_gid;
	/* (mme) The multi-model cache (mme.h); NULL: none. */
	struct mme *mme;
};

struct runtime;
struct image_policy;
struct objstore_config;
struct mme;
struct limits;
struct seccomp_profile;

struct runtime *runtime_new(const struct runtime_config *cfg, struct store *store, pthread_mutex_t *lock,
			    pthread_cond_t *changed, struct berth_err *err);
/* Waits for running workers to finish their current step; containers keep running. */
void runtime_free(struct runtime *rt);
struct api_runtime_hooks runtime_hooks(struct runtime *rt);

/* At start-up, with *lock held: re-adopt InService endpoints as they are
 * (running containers untouched; those that died meanwhile are restarted
 * by the health monitor, health.c, which this starts), resume Creating and
 * Deleting ones, and clean up then roll out again interrupted updates
 * (runtime_update.c). */
void runtime_resume(struct runtime *rt);

/* Subscribes a router (proto_control.h kind 2): sends the current table
 * and every later one. Takes ownership of sock. Call with *lock held. */
void runtime_add_route_watcher(struct runtime *rt, int sock);
/* The route table document, with *lock held (exposed for tests). */
int runtime_render_routes(struct runtime *rt, struct berth_buf *out);
/* (mme) Sends one line (e.g. {"op":"mme_evicted",…}) to every route
 * watcher, between tables. Takes *lock itself. */
void runtime_send_to_watchers(struct runtime *rt, const char *doc, size_t len);
/* (mme) The multi-model cache given in the config (may be NULL). */
struct mme *runtime_mme(struct runtime *rt);
/* proto_control.h kind 3; takes *lock itself. */
int runtime_ps(struct runtime *rt, struct berth_buf *out);

#endif
