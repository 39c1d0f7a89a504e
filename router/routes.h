/* routes.h — the route table the router serves from, kept current by a
 * persistent watch connection to berthd (proto_control.h kind 2).
 *
 * Non-blocking on the event loop. When the connection drops (or cannot be
 * made) it is retried with back-off from 100 ms doubling to 2 s, while the
 * last table keeps being served. Each pushed table replaces the current one
 * whole; a malformed one is logged and ignored. */
#ifndef BERTH_ROUTER_ROUTES_H
#define BERTH_ROUTER_ROUTES_H

#include <stdbool.h>

#include "loop.h"
#include "metrics.h"
#include "route_table.h"

#define ROUTES_BACKOFF_MIN_MS 100
#define ROUTES_BACKOFF_MAX_MS 2000

struct routes;

/* on_table (may be NULL) is called after each swap with the new table. */
struct routes *routes_new(struct loop *loop, const char *berthd_socket, struct metrics *metrics,
			  void (*on_table)(void *data, const struct route_table *t), void *data);
void routes_free(struct routes *r);
/* Starts connecting (first attempt now). */
void routes_start(struct routes *r);
/* The current snapshot (borrowed: route_table_ref it to keep it). Never NULL. */
struct route_table *routes_current(struct routes *r);
bool routes_connected(const struct routes *r);
/* Something else just reached berthd: when the watch is down, reconnect
 * now instead of waiting out the back-off. */
void routes_berthd_reachable(struct routes *r);
/* (mme) Lines on the watch that are events between tables
 * ({"op":"mme_evicted",…}) go to fn first; it returns true when it took
 * the line (otherwise the line is parsed as a table); a handler that took
 * it may overwrite it (secrets are wiped in place). */
void routes_set_event_handler(struct routes *r, bool (*fn)(void *data, char *line, size_t len), void *data);

#endif
