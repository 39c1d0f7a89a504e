/* devices.h — which accelerators an endpoint instance holds. An instance
 * of a type with gpus = N reserves N whole CDI devices of the type's kind
 * (instance_types.h device_kind, else the limits' accelerator_kind, else
 * nvidia.com/gpu) for its lifetime; they are recorded in its containers'
 * records (resources.h devices), so a restarted berthd keeps them and
 * deleting the endpoint (its records) frees them. Never over-committed:
 *
 *   devices_fit       (api, *lock held) CreateEndpoint, UpdateEndpoint and
 *                     UpdateEndpointWeightsAndCapacities: the devices the
 *                     request adds, per kind, must not exceed the usable
 *                     devices no record holds, less those that endpoints
 *                     holding resources (Creating, InService, Updating, …)
 *                     still have to take (an update's new instances come
 *                     up beside the old ones: blue/green needs both).
 *                     Otherwise ResourceLimitExceeded naming the free
 *                     devices, or saying the host has none of that kind.
 *   devices_reserve   (runtime, *lock held) the lowest-named usable devices
 *                     of the kind that no record and no container allocated
 *                     so far holds, for one new instance.
 *   devices_describe  (berth devices) every device with its health and the
 *                     instance holding it, and each spec file's problem.
 *   devices_publish   (*lock held; main.c once a second, and each
 *                     reservation) writes the names this berthd's records
 *                     hold to CLAIMS_DIR/IDENTITY (removed when none);
 *                     every check and choice counts the names other
 *                     berthds' files list as held. A berthd that is down
 *                     keeps its claims (its containers still run); a
 *                     claim file left by a state directory wiped by hand
 *                     stays until it is removed or the host reboots
 *                     (/run), and berth devices names its owner. */
#ifndef BERTH_DEVICES_H
#define BERTH_DEVICES_H

#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "host_limits.h"
#include "resources.h"

#define DEVICES_DEFAULT_KIND "nvidia.com/gpu"
/* Host-wide: one file per berthd identity listing the devices it holds. */
#define DEVICES_CLAIMS_DIR "/run/berth-devices"

/* The kind of instance type's gpus; NULL when the type is unknown. */
const char *devices_kind(const struct limits *l, const char *instance_type, int *gpus);

/* Pure choice (tested on its own): the first count names of usable (in
 * order) not in held; *out NULL-terminated, caller frees (cdi_names_free).
 * -1 when fewer are free. */
int devices_pick(char *const *usable, size_t n_usable, char *const *held, size_t n_held, size_t count,
		 char ***out);

int devices_fit(void *limits, const struct variant *want, size_t n_want, const struct variant *have,
		size_t n_have, struct berth_err *err);

/* except: an endpoint whose recorded containers are being replaced (a
 * create resumed after a crash), NULL: none; fresh: containers allocated
 * but not recorded yet. *out: NULL when the type has no gpus. */
int devices_reserve(const struct limits *l, const char *instance_type, const char *except,
		    const struct endpoint_container *fresh, size_t n_fresh, char ***out, size_t *n,
		    struct berth_err *err);

/* {"dirs":[…],"devices":[{"name","kind","spec","health","endpoint","variant","instance"}],
 *  "problems":[{"file","error"}]} */
int devices_describe(const struct limits *l, struct berth_buf *out);

/* extra: names held that no record shows yet (a reservation in progress). */
void devices_publish(const struct limits *l, char *const *extra, size_t n_extra);

#endif
