/* bundle.h — writes the OCI runtime bundle (config.json) for one container:
 * new pid, mount, uts (hostname = ContainerHostname), ipc, cgroup and
 * network namespaces (runc brings up loopback only), Docker's default
 * capability set, no_new_privileges, masked and read-only /proc and /sys
 * paths, default devices only, memory and pids limits in the container's
 * cgroup, the image's root read-only with a private /tmp (or, with
 * rootfs_writable, the container's private overlay root writable and no
 * /tmp tmpfs: /tmp is in the overlay, as with Docker), and the model
 * artifact read-only at /opt/ml/model (a fetched submit directory at
 * BUNDLE_SUBMIT_DIR). Environment: image Env, then PATH (default when
 * neither sets it), then SageMaker's variables
 * (SAGEMAKER_BIND_TO_PORT=8080, always; SAGEMAKER_SAFE_PORT_RANGE;
 * SAGEMAKER_MULTI_MODEL=true for a multi-model container), then CreateModel
 * Environment, each key once, the later source winning (Environment cannot
 * move the port). With uid_base, a user namespace too: the container's root is
 * an unprivileged host uid. */
#ifndef BERTH_BUNDLE_H
#define BERTH_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "cdi_edits.h"
#include "err.h"
#include "resources.h"

struct seccomp_profile;

/* SageMaker's variables in every serving container (docs/contract.md §4):
 * the port it listens on and the ports it may use for its own processes
 * (SageMaker's range; a container's network namespace is its own, so no
 * two containers share these). */
#define BUNDLE_BIND_TO_PORT "8080"
#define BUNDLE_SAFE_PORT_RANGE "23000-23999"

/* Where a fetched SAGEMAKER_SUBMIT_DIRECTORY is mounted in the container. */
#define BUNDLE_SUBMIT_DIR "/opt/ml/berth/submit"

struct bundle_spec {
	const char *id;            /* runc container id */
	const char *hostname;
	const char *rootfs;
	const char *model_dir;     /* NULL: no /opt/ml/model mount */
	const char *cgroups_path;  /* e.g. "/berth/ENDPOINT/ID" */
	const char *const *args;   /* process args */
	size_t n_args;
	const struct kv *env;      /* CreateModel Environment */
	size_t n_env;
	/* from the image config; zero values mean Docker's defaults */
	const struct kv *image_env; /* image Env: under env, which wins per key */
	size_t n_image_env;
	const char *cwd;           /* NULL: "/" */
	unsigned int uid, gid;
	const unsigned int *additional_gids;
	size_t n_additional_gids;
	bool rootfs_writable;      /* private overlay root: root not read-only, no /tmp tmpfs */
	long long memory_limit_bytes; /* 0: none */
	long long pids_limit;         /* 0: none */
	long long nofile_limit;       /* RLIMIT_NOFILE soft = hard; 0: inherit */
	const struct seccomp_profile *seccomp; /* NULL: no linux.seccomp (seccomp_profile.h) */
	/* (mme) MultiModel: this directory read-only at /opt/ml/models and
	 * SAGEMAKER_MULTI_MODEL=true (CreateModel Environment still wins). NULL: neither. */
	const char *multi_model_dir;
	/* SAGEMAKER_SUBMIT_DIRECTORY=s3://… fetched and unpacked by berthd:
	 * this directory read-only at BUNDLE_SUBMIT_DIR (the caller gives env
	 * with the variable rewritten to that path). NULL: no mount. */
	const char *submit_dir;
	/* (userns) > 0: a user namespace mapping container ids 0..65535 to host
	 * ids uid_base.. (uids and gids alike; uid_range.h). 0: none. */
	long long uid_base;
	/* (devices) The instance's CDI devices, applied by cdi_edits.c; zeros: none. */
	struct bundle_devices devices;
};

/* Renders config.json into out (tested on its own). */
int bundle_render(const struct bundle_spec *spec, struct berth_buf *out);
/* Creates bundle_dir and writes bundle_dir/config.json durably. */
int bundle_write(const char *bundle_dir, const struct bundle_spec *spec, struct berth_err *err);

#endif
