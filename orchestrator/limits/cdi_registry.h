/* cdi_registry.h — the accelerators this host offers: every device of the
 * CDI spec files in the spec directories (cdi_spec_dirs: /etc/cdi then
 * /var/run/cdi), known by its fully qualified name ("nvidia.com/gpu=0").
 *
 * Files: DIR/NAME.json and DIR/NAME.yaml (not below DIR), regular files
 * of at most CDI_SPEC_MAX_BYTES owned by root (or berthd's user) and
 * writable by no one else: a spec names host paths and hooks berthd hands
 * to runc as root. A file that fails cdi_spec.h's checks adds none of its
 * devices and is listed with its error. As in the CDI specification, a
 * later directory has priority over an earlier one (/var/run/cdi's spec of
 * a device replaces /etc/cdi's); two files of one directory claiming one
 * name are a conflict: neither offers the device and both are listed.
 *
 * Health: a device is usable when each of its device nodes (its own and
 * its spec's) exists on the host as a device of the spec's type and
 * numbers; otherwise its health says which node and why, and it is never
 * handed out (a reservation it already has is kept). A physical device a
 * spec names twice (by index and by UUID) is handed out once, and an
 * aggregate ("all") never: see cdi_registry_usable.
 *
 * Re-reading: cdi_registry_refresh compares the directories' listings and
 * each file's inode, size and modification time with the last read, and
 * reads everything again when one differs; the health is looked at anew on
 * every refresh. Every function takes the registry's own mutex, so the
 * API, the runtime and container starts may share one registry. */
#ifndef BERTH_CDI_REGISTRY_H
#define BERTH_CDI_REGISTRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "cdi_spec.h"
#include "err.h"

#define CDI_DEFAULT_SPEC_DIRS { "/etc/cdi", "/var/run/cdi" }
#define CDI_MAX_SPEC_FILES 256

struct cdi_registry_device {
	char *name;       /* KIND=NAME */
	char *kind;
	char *spec_path;  /* the file that defines it */
	char *health;     /* NULL: usable; else what is wrong */
	size_t spec, index; /* into specs[] and its devices[] */
	/* (physical identity) its own device nodes' numbers (dev_t, sorted);
	 * an alias has the same set as another device (nvidia-ctk's "0" and
	 * "GPU-UUID"), an aggregate a strict superset of another's ("all") */
	unsigned long long *nodes;
	size_t n_nodes;
};

struct cdi_registry_problem {
	char *path;
	char *message;
};

struct cdi_registry_spec {
	char *path;
	struct cdi_spec spec;
};

struct cdi_registry {
	pthread_mutex_t mu;
	char **dirs;
	size_t n_dirs;
	char *signature;  /* what the directories held at the last read */
	struct cdi_registry_spec *specs;
	size_t n_specs;
	struct cdi_registry_device *devices; /* sorted by name (strverscmp) */
	size_t n_devices;
	struct cdi_registry_problem *problems;
	size_t n_problems;
};

/* Copies dirs and reads them (a missing directory holds nothing). */
int cdi_registry_init(struct cdi_registry *r, const char *const *dirs, size_t n_dirs, struct berth_err *err);
void cdi_registry_free(struct cdi_registry *r);
/* Reads the directories again when they changed (logging each problem
 * found), and the devices' health. true: the specs were read again. */
bool cdi_registry_refresh(struct cdi_registry *r);

/* The usable devices of kind that can be handed out whole, in name order
 * (strverscmp: gpu=2 before gpu=10): one name per physical device (the
 * first of its aliases), no aggregate (a device whose nodes include
 * another device's, such as "all"), and none of whose aliases or parts
 * is among held (n_held names; NULL: none). *names is a NULL-terminated
 * array the caller frees with cdi_names_free. -1: out of memory. */
int cdi_registry_usable(struct cdi_registry *r, const char *kind, char *const *held, size_t n_held, char ***names,
			size_t *n);
/* Whether the kind has any device at all, usable or not. */
bool cdi_registry_has_kind(struct cdi_registry *r, const char *kind);
void cdi_names_free(char **names);

/* The edits that give a container the named devices, as the CDI
 * specification applies them: each spec's own edits once, then each
 * device's; every device node's type, numbers and mode filled in from the
 * host node where the spec leaves them out (the numbers the spec gives
 * must match the host's). -1: err says which device is unknown, which
 * node is missing or wrong: the container is not started. */
int cdi_registry_edits(struct cdi_registry *r, char *const *names, size_t n, struct cdi_edits *out,
		       struct berth_err *err);

/* Copies of the devices and problems now (refreshed first), for listing.
 * Free with cdi_registry_listing_free. */
struct cdi_registry_listing {
	struct cdi_registry_device *devices;
	size_t n_devices;
	struct cdi_registry_problem *problems;
	size_t n_problems;
};
int cdi_registry_list(struct cdi_registry *r, struct cdi_registry_listing *out);
void cdi_registry_listing_free(struct cdi_registry_listing *l);

#endif
