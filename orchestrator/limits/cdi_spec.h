/* cdi_spec.h — one Container Device Interface spec file (the format
 * `nvidia-ctk cdi generate` and other vendors' tools write to /etc/cdi and
 * /var/run/cdi), parsed and validated as the CDI specification says.
 *
 *   cdiVersion   one of the released versions 0.1.0 … 1.1.0, and at least
 *                the version the members used need (hostPath 0.5.0,
 *                annotations 0.6.0, mount type 0.4.0, a device name that
 *                starts with a digit 0.5.0, a dot in the kind's class 0.6.0,
 *                additionalGids 0.7.0)
 *   kind         "vendor.com/class": a DNS subdomain (labels of [a-z0-9-],
 *                at most 253 bytes), a slash, a class of at most 63 bytes
 *                of [A-Za-z0-9_.-] beginning and ending alphanumeric
 *   devices      at least one; each name [A-Za-z0-9_.-], beginning and
 *                ending alphanumeric, unique in the file; the device's
 *                fully qualified name is "KIND=NAME" (nvidia.com/gpu=0)
 *   containerEdits (the spec's, applied once when any of its devices is
 *                asked for, and each device's own):
 *     env        "NAME=VALUE" strings
 *     deviceNodes path (absolute, in the container), hostPath (default:
 *                path) which must lie under /dev (berth refuses a node
 *                anywhere else: a spec must not turn a state file into a
 *                device), type b/c/u/p, major, minor, fileMode,
 *                permissions (any of r, w, m, or "none"; empty: rwm),
 *                uid, gid
 *     mounts     hostPath, containerPath (both absolute), type, options
 *     hooks      hookName (prestart, createRuntime, createContainer,
 *                startContainer, poststart, poststop), path (absolute),
 *                args, env, timeout (> 0)
 *     additionalGids  group ids added to the container's process
 *   Members berth does not apply (intelRdt, netDevices) and unknown members
 *   are refused, never ignored. Every refusal says which member and why. */
#ifndef BERTH_CDI_SPEC_H
#define BERTH_CDI_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define CDI_SPEC_MAX_BYTES (4u << 20)
#define CDI_NAME_MAX 256 /* KIND=NAME, bytes */

struct cdi_device_node {
	char *path;       /* in the container */
	char *host_path;  /* on the host; the same as path when the spec omits it */
	char type;        /* 'b', 'c', 'u', 'p'; 0: from the host node */
	long long major, minor; /* -1: from the host node */
	long long file_mode;    /* -1: the host node's */
	char *permissions;      /* NULL or "": rwm; "none": no access rule */
	long long uid, gid;     /* -1: not set */
};

struct cdi_mount {
	char *host_path, *container_path;
	char *type;      /* NULL: "bind" */
	char **options;
	size_t n_options;
};

struct cdi_hook {
	char *hook_name, *path;
	char **args, **env;
	size_t n_args, n_env;
	long long timeout; /* 0: none */
};

struct cdi_edits {
	char **env;
	size_t n_env;
	struct cdi_device_node *nodes;
	size_t n_nodes;
	struct cdi_mount *mounts;
	size_t n_mounts;
	struct cdi_hook *hooks;
	size_t n_hooks;
	long long *additional_gids;
	size_t n_additional_gids;
};

struct cdi_device {
	char *name;             /* as in the file: "0" */
	struct cdi_edits edits;
};

struct cdi_spec {
	char *version;
	char *kind;             /* "nvidia.com/gpu" */
	struct cdi_device *devices;
	size_t n_devices;
	struct cdi_edits edits; /* the spec's own */
};

/* yaml: the text is YAML (a .yaml file), else JSON. On -1, err (class
 * VALIDATION for a bad spec) says what is wrong and *out is empty. */
int cdi_spec_parse(const char *text, size_t len, bool yaml, struct cdi_spec *out, struct berth_err *err);
void cdi_spec_free(struct cdi_spec *s);

/* "vendor.com/class" as the specification allows it. */
bool cdi_kind_valid(const char *kind);
/* "KIND=NAME" with both parts valid. */
bool cdi_qualified_name_valid(const char *name);

/* Appends a deep copy of src to dst. -1: out of memory (dst keeps what it had). */
int cdi_edits_append(struct cdi_edits *dst, const struct cdi_edits *src);
void cdi_edits_free(struct cdi_edits *e);
/* Free one entry's members. */
void cdi_node_clear(struct cdi_device_node *n);
void cdi_mount_clear(struct cdi_mount *m);

#endif
