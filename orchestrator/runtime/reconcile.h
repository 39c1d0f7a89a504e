/* reconcile.h — start-up clean-up after a crash: removes what no state
 * refers to, before runtime_resume() adopts what does.
 *
 *   - runc containers under RUN_DIR/runc whose id appears in no endpoint
 *     record: `runc delete --force`;
 *   - shim sockets RUN_DIR/shims/ID.sock of such ids: the shim (if one
 *     still answers) is asked to stop its container, then the socket goes
 *     (the sockets that stay are shared with the router's group, when
 *     cfg->router_gid is set);
 *   - cgroups /berth/NAME of endpoints that are not in the store and were
 *     made at least 30 s ago (several berthd may share a host's /berth;
 *     only empty cgroups can go anyway).
 *
 * "Refers to" is decided on the endpoint records' text (STATE_DIR/
 * endpoints/NAME.json): an id found anywhere in a record is kept, whatever
 * member holds it, so records that grow new members (instances, updates in
 * flight) are never cleaned from under. Container directories are
 * runtime_resume's (container_remove_orphans). Call with the lock held,
 * before runtime_resume(). */
#ifndef BERTH_RECONCILE_H
#define BERTH_RECONCILE_H

#include "runtime.h"
#include "store.h"

struct reconcile_stats {
	size_t runc_containers, shim_sockets, cgroups;
};

void reconcile_leftovers(const struct runtime_config *cfg, const struct store *store, struct reconcile_stats *out);

#endif
