/* async_metrics.h — the asynchronous inference queues' gauges on the
 * router's /metrics. berthd owns the queues (orchestrator/runtime/async.c)
 * and sends {"op":"async_stats","now":S,"endpoints":[{"endpoint","backlog",
 * "running","instances","oldest"}]} on the route watch when they change
 * (at most every 250 ms) and every 5 s; the router keeps the last one and
 * renders, per endpoint, SageMaker's CloudWatch metrics by their names:
 *   ApproximateBacklogSize{endpoint="E"}             requests waiting
 *   ApproximateBacklogSizePerInstance{endpoint="E"}  waiting / serving instances
 *   ApproximateAgeOfOldestRequest{endpoint="E"}      seconds the oldest has waited
 *   berth_async_running{endpoint="E"}                requests in a container now
 * The age is computed at scrape time from the oldest request's enqueue time. */
#ifndef BERTH_ROUTER_ASYNC_METRICS_H
#define BERTH_ROUTER_ASYNC_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct async_metrics;

struct async_metrics *async_metrics_new(void);
void async_metrics_free(struct async_metrics *m);
/* A route-watch line: true when it was "async_stats" (taken; a malformed
 * one is logged and the last kept). */
bool async_metrics_route_event(struct async_metrics *m, const char *line, size_t len);
/* Appends the gauges; now: Unix seconds. 0 or -1 (ENOMEM). */
int async_metrics_render(const struct async_metrics *m, double now, struct berth_buf *out);

#endif
