/* bundle.h — writes the OCI runtime bundle (config.json) for one container:
 * new pid, mount, uts (hostname = ContainerHostname), ipc, cgroup and
 * network namespaces (runc brings up loopback only), Docker's default
 * capability set, no_new_privileges, masked and read-only /proc and /sys
 * paths, default devices only, memory and pids limits in the container's
 * cgroup, the image's root read-only with a private /tmp, and the model
 * artifact read-only at /opt/ml/model. */
#ifndef BERTH_BUNDLE_H
#define BERTH_BUNDLE_H

#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "resources.h"

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
	long long memory_limit_bytes; /* 0: none */
	long long pids_limit;         /* 0: none */
	long long nofile_limit;       /* RLIMIT_NOFILE soft = hard; 0: inherit */
};

/* Renders config.json into out (tested on its own). */
int bundle_render(const struct bundle_spec *spec, struct berth_buf *out);
/* Creates bundle_dir and writes bundle_dir/config.json durably. */
int bundle_write(const char *bundle_dir, const struct bundle_spec *spec, struct berth_err *err);
/* The program SageMaker runs: `serve` found on the image's PATH (resolved
 * inside rootfs, symlinks kept inside it), or "/serve". Caller frees. */
char *bundle_find_serve(const char *rootfs);

#endif
