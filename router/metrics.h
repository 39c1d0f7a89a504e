/* metrics.h — the router's counters and their Prometheus text rendering. */
#ifndef BERTH_ROUTER_METRICS_H
#define BERTH_ROUTER_METRICS_H

#include <stdint.h>

#include "buf.h"

enum metrics_kind { METRICS_KIND_INVOKE, METRICS_KIND_CONTROL, METRICS_KIND_PING,
		    METRICS_KIND_METRICS, METRICS_KIND_OTHER, METRICS_KIND_COUNT };

struct metrics {
	uint64_t requests[METRICS_KIND_COUNT];
	uint64_t responses[6];          /* by status class: [2] = 2xx … [5] = 5xx, [0] other */
	uint64_t model_errors;          /* 424 answers */
	uint64_t upstream_opened;       /* connections obtained from shims */
	uint64_t upstream_reused;       /* exchanges on a pooled connection */
	uint64_t upstream_retries;      /* stale pooled connection, retried on a fresh one */
	uint64_t upstream_timeouts;
	uint64_t client_connections_total;
	uint64_t refused_connections;   /* past --max-connections (503, or closed far past it) */
	uint64_t refused_busy;          /* requests refused at the buffered-bytes budget (503 / REFUSED_STREAM) */
	uint64_t request_timeouts;      /* requests not received in time (408) */
	uint64_t shim_connect_timeouts; /* a shim did not hand over a socket in time */
	uint64_t tls_handshakes;        /* TLS handshakes completed */
	uint64_t tls_handshake_failures; /* failed, timed out, or refused (no certificate yet) */
	uint64_t streams;               /* streamed answers begun (InvokeEndpointWithResponseStream) */
	uint64_t stream_bytes;          /* their payload bytes sent on */
	uint64_t stream_errors;         /* ended with ModelStreamError / InternalStreamFailure */
	int64_t client_connections;     /* gauge */
	int64_t buffered_bytes;         /* gauge: request body bytes held */
	int64_t berthd_connected;       /* gauge, 0/1 */
	int64_t route_generation;       /* gauge */
	int64_t route_endpoints;        /* gauge */
};

static inline void metrics_count_response(struct metrics *m, int status)
{
	int c = status / 100;
	m->responses[(c >= 1 && c <= 5) ? c : 0]++;
	if (status == 424)
		m->model_errors++;
}

/* Appends the Prometheus text exposition (version 0.0.4). 0 or -1 (ENOMEM). */
int metrics_render(const struct metrics *m, struct berth_buf *out);

#endif
