/* cdi_edits.h — a container's CDI devices in its OCI bundle, applied as
 * the CDI specification says (cdi_spec.h has the edits):
 *
 *   env          appended to process.env; a key CDI sets is set by CDI
 *                alone (the instance type decides the devices, so a
 *                model's Environment cannot widen them), and
 *                NVIDIA_VISIBLE_DEVICES lists the instance's nvidia.com
 *                devices by name ("0,1")
 *   deviceNodes  an allow rule in linux.resources.devices for each block
 *                or char node (permissions, default rwm; "none": no rule)
 *                beside berth's deny-all, and the node itself: without a
 *                user namespace a linux.devices entry runc creates (type,
 *                numbers, mode, uid, gid); with one, runc can only bind
 *                the host's node, which the container's root (an
 *                unprivileged host uid) could not open, so berthd makes
 *                the node itself under the container's directory, owned
 *                by the container's root (or the spec's uid/gid, mapped)
 *                with the spec's or the host node's mode, and binds that
 *   mounts       after berth's own mounts: type (default bind) and
 *                options as given
 *   hooks        the OCI hooks object, by hookName
 *   additionalGids  into process.user.additionalGids */
#ifndef BERTH_CDI_EDITS_H
#define BERTH_CDI_EDITS_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_gen.h>

#include "cdi_spec.h"
#include "err.h"

struct bundle_devices {
	const struct cdi_edits *edits; /* NULL: no devices (CPU instance types) */
	/* per edits->nodes[i], the node berthd made for a user-namespaced
	 * container; NULL: linux.devices entries runc creates */
	char *const *node_sources;
	const char *visible;           /* NVIDIA_VISIBLE_DEVICES, NULL: not set */
};

/* Makes dir/devices/N for each device node of e, owned by uid_base +
 * (the node's uid or 0) and uid_base + (gid or 0), for a container in a
 * user namespace. *sources: NULL-terminated, caller frees with
 * cdi_names_free (cdi_registry.h). */
int cdi_edits_make_nodes(const char *dir, const struct cdi_edits *e, long long uid_base, char ***sources,
			 struct berth_err *err);
/* "0,1": the names of the nvidia.com devices among names; NULL when none. */
char *cdi_edits_visible_devices(char *const *names, size_t n);

bool cdi_edits_sets_env(const struct bundle_devices *d, const char *key, size_t key_len);
void cdi_edits_gen_env(yajl_gen g, const struct bundle_devices *d);
void cdi_edits_gen_gids(yajl_gen g, const struct bundle_devices *d);
size_t cdi_edits_n_gids(const struct bundle_devices *d);
void cdi_edits_gen_mounts(yajl_gen g, const struct bundle_devices *d);
void cdi_edits_gen_device_rules(yajl_gen g, const struct bundle_devices *d);
void cdi_edits_gen_devices(yajl_gen g, const struct bundle_devices *d);
void cdi_edits_gen_hooks(yajl_gen g, const struct bundle_devices *d);

#endif
