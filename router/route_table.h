/* route_table.h — one immutable snapshot of berthd's route table
 * (proto_control.h kind 2), parsed and validated from its JSON message.
 *
 * A snapshot is never changed after route_table_parse() returns; the
 * router swaps the whole table on each push. Snapshots are reference
 * counted so an invocation in flight keeps using the table it started
 * with while a newer one is installed. Single-threaded (no atomics). */
#ifndef BERTH_ROUTER_ROUTE_TABLE_H
#define BERTH_ROUTER_ROUTE_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define ROUTE_MAX_CONTAINERS 15
#define ROUTE_MAX_NAME 63

enum route_mode { ROUTE_MODE_SINGLE, ROUTE_MODE_DIRECT, ROUTE_MODE_SERIAL, ROUTE_MODE_MULTI /* "MultiModel" */ };

struct route_container {
	char *hostname;
	char *socket; /* the shim's unix socket */
	char *log;    /* may be NULL */
};

struct route_instance {
	struct route_container *containers; /* in model (Serial) order */
	size_t n_containers;
	/* The one mutable part of a snapshot: invocations in flight to this
	 * instance (least-outstanding-requests balancing, invoke.c). Counts
	 * start at 0 in each new table; an invocation decrements the counter of
	 * the table it started with. */
	unsigned *outstanding;
};

struct route_variant {
	char *name;
	double weight;
	/* how this variant's model is invoked: each variant of an endpoint has
	 * its own ("mode" of the variant; a table from an older berthd gives
	 * it per endpoint, which then applies to every variant) */
	enum route_mode mode;
	struct route_instance *instances;
	size_t n_instances;
};

struct route_endpoint {
	char *name;
	char *status; /* "InService", "Creating", … */
	bool in_service;
	struct route_variant *variants;
	size_t n_variants;
};

struct route_table {
	unsigned refs;
	long long generation;
	char *account;
	char *region;
	struct route_endpoint *endpoints; /* sorted by name */
	size_t n_endpoints;
};

/* Parses one {"op":"routes",…} message. Returns a table with refs == 1, or
 * NULL with err describing the first problem (the caller keeps its old table). */
struct route_table *route_table_parse(const char *json, size_t len, struct berth_err *err);
/* The table used before berthd first answers: no endpoints, default
 * account "000000000000" and region "us-east-1". NULL on ENOMEM. */
struct route_table *route_table_new_empty(void);
struct route_table *route_table_ref(struct route_table *t);
void route_table_unref(struct route_table *t);

const struct route_endpoint *route_table_find(const struct route_table *t, const char *name);
const char *route_mode_name(enum route_mode mode);
/* The first variant of e in mode, or NULL. */
const struct route_variant *route_endpoint_variant_in_mode(const struct route_endpoint *e, enum route_mode mode);

#endif
