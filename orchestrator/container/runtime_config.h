/* runtime_config.h — berthd's settings for running containers: where
 * things live, which programs to run, timeouts and limits. Filled once by
 * main.c from config.h and read, never changed, by the container, mme and
 * runtime layers. */
#ifndef BERTH_RUNTIME_CONFIG_H
#define BERTH_RUNTIME_CONFIG_H

struct mme;
struct image_policy;
struct objstore_config;
struct limits;
struct seccomp_profile;
struct uid_range_policy;

struct runtime_config {
	const char *state_dir;
	const char *run_dir;
	/* (identity) This berthd's name for what the host shares (identity.h):
	 * its cgroup root, "berth" or "berth-HASH". */
	const char *cgroup_root;
	const char *shim_path;
	const char *runc_path;
	const char *object_store_root; /* NULL: s3:// URLs are refused */
	/* (host paths) Where local images may be and how large they may unpack
	 * (image.h); the object store's rules for ModelDataUrl (objstore.h:
	 * model roots, buckets, hosts). NULL: nothing local is accepted. */
	const struct image_policy *images;
	const struct objstore_config *store;
	/* (s3) Downloaded and unpacked size of one ModelDataUrl or submit
	 * directory artifact (artifact.h); 0: ARTIFACT_MAX_UNPACKED_BYTES. */
	unsigned long long model_max_bytes;
	/* Entries of the artifact cache no container holds are removed, least
	 * recently used first, past this many bytes (artifact_cache.h); 0:
	 * only by berth artifacts prune. */
	unsigned long long artifact_cache_max_bytes;
	const char *region;
	const char *account;
	int stop_timeout_ms;           /* SIGTERM → SIGKILL, 30000 */
	int health_timeout_ms;         /* healthy within, 240000 */
	int ping_timeout_ms;           /* one /ping, 2000 */
	long long container_memory_bytes;
	long long container_pids_limit;
	/* (limits) Instance types and the host's limits: each container goes
	 * into its instance's cgroup (limits_place), with the instance's limits.
	 * NULL: "/CGROUP_ROOT/ENDPOINT/ID" with the two limits above. */
	const struct limits *limits;
	/* (confinement) The containers' seccomp profile; NULL: none. */
	const struct seccomp_profile *seccomp;
	/* (confinement) > 0: shim sockets (and their directory) are shared with
	 * this group, the unprivileged router's. */
	unsigned int router_gid;
	/* (mme) The multi-model cache (mme.h); NULL: none. */
	struct mme *mme;
	/* (userns) Where instances' uid ranges come from (uid_range.h); each
	 * new instance gets one, recorded in its containers' uid_base. NULL:
	 * containers run without a user namespace. */
	const struct uid_range_policy *userns;
	/* (async) InvokeEndpointAsync: requests waiting or running per endpoint
	 * (0: RUNTIME_ASYNC_QUEUE_MAX_DEFAULT), and the bound of one input and
	 * one answer in bytes (0: RUNTIME_ASYNC_MAX_BYTES_DEFAULT) */
	long long async_queue_max;
	unsigned long long async_max_bytes;
};

#endif
