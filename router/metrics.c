/* metrics.c — Prometheus text rendering of struct metrics. */
#include <inttypes.h>

#include "metrics.h"

static const char *const kind_names[METRICS_KIND_COUNT] = { "invoke", "control", "ping", "metrics", "other" };

int metrics_render(const struct metrics *m, struct berth_buf *out)
{
	int r = 0;
	r |= buf_append_str(out, "# HELP berth_router_requests_total Requests received, by kind.\n"
				 "# TYPE berth_router_requests_total counter\n");
	for (int k = 0; k < METRICS_KIND_COUNT; k++)
		r |= buf_printf(out, "berth_router_requests_total{kind=\"%s\"} %" PRIu64 "\n", kind_names[k],
				m->requests[k]);
	r |= buf_append_str(out, "# HELP berth_router_responses_total Responses sent, by status class.\n"
				 "# TYPE berth_router_responses_total counter\n");
	for (int c = 1; c <= 5; c++)
		r |= buf_printf(out, "berth_router_responses_total{code=\"%dxx\"} %" PRIu64 "\n", c, m->responses[c]);
#define COUNTER(name, help, value)                                                                  \
	r |= buf_printf(out, "# HELP " name " " help "\n# TYPE " name " counter\n" name " %" PRIu64 "\n", \
			(uint64_t)(value))
#define GAUGE(name, help, value)                                                                   \
	r |= buf_printf(out, "# HELP " name " " help "\n# TYPE " name " gauge\n" name " %" PRId64 "\n", \
			(int64_t)(value))
	COUNTER("berth_router_model_errors_total", "Invocations answered 424 ModelError.", m->model_errors);
	COUNTER("berth_router_upstream_connections_opened_total", "Connections to containers obtained from shims.",
		m->upstream_opened);
	COUNTER("berth_router_upstream_connections_reused_total", "Invocations sent on a pooled connection.",
		m->upstream_reused);
	COUNTER("berth_router_upstream_retries_total", "Stale pooled connections retried on a fresh one.",
		m->upstream_retries);
	COUNTER("berth_router_upstream_timeouts_total", "Container requests that timed out.", m->upstream_timeouts);
	COUNTER("berth_router_client_connections_total", "Client connections accepted.",
		m->client_connections_total);
	GAUGE("berth_router_client_connections", "Client connections open.", m->client_connections);
	COUNTER("berth_router_refused_connections_total", "Client connections refused past --max-connections.",
		m->refused_connections);
	COUNTER("berth_router_refused_busy_total",
		"Requests refused because request bodies held reached a --max-*buffered-bytes bound.", m->refused_busy);
	COUNTER("berth_router_request_timeouts_total", "Requests not received in time (408).", m->request_timeouts);
	COUNTER("berth_router_shim_connect_timeouts_total", "Shims that did not hand over a container socket in time.",
		m->shim_connect_timeouts);
	COUNTER("berth_router_tls_handshakes_total", "TLS handshakes completed.", m->tls_handshakes);
	COUNTER("berth_router_tls_handshake_failures_total",
		"TLS clients closed before a session: failed or stalled handshakes, or no certificate yet.",
		m->tls_handshake_failures);
	COUNTER("berth_router_streams_total", "Streamed answers begun (InvokeEndpointWithResponseStream).", m->streams);
	COUNTER("berth_router_stream_bytes_total", "Bytes of streamed answers passed on as PayloadPart events.",
		m->stream_bytes);
	COUNTER("berth_router_stream_errors_total", "Streamed answers ended by a ModelStreamError or InternalStreamFailure.",
		m->stream_errors);
	GAUGE("berth_router_buffered_bytes", "Request body bytes held in memory.", m->buffered_bytes);
	GAUGE("berth_router_berthd_connected", "1 while the route watch connection to berthd is up.",
	      m->berthd_connected);
	GAUGE("berth_router_route_generation", "Generation of the route table in use.", m->route_generation);
	GAUGE("berth_router_route_endpoints", "Endpoints in the route table in use.", m->route_endpoints);
#undef COUNTER
#undef GAUGE
	return r ? -1 : 0;
}
