/* async_metrics.c — see async_metrics.h. */
#include "async_metrics.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

#define ASYNC_METRICS_MAX_ENDPOINTS 4096

struct async_gauge {
	char *endpoint;
	long long backlog, running, instances;
	double oldest; /* Unix seconds; 0: nothing waits */
};

struct async_metrics {
	struct async_gauge *g;
	size_t n;
};

struct async_metrics *async_metrics_new(void)
{
	return calloc(1, sizeof(struct async_metrics));
}

static void gauges_free(struct async_gauge *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(g[i].endpoint);
	free(g);
}

void async_metrics_free(struct async_metrics *m)
{
	if (m == NULL)
		return;
	gauges_free(m->g, m->n);
	free(m);
}

static double number(yajl_val o, const char *key)
{
	yajl_val v = json_get(o, key);
	return v && YAJL_IS_NUMBER(v) ? YAJL_GET_DOUBLE(v) : 0;
}

bool async_metrics_route_event(struct async_metrics *m, const char *line, size_t len)
{
	if (len < 20 || memmem(line, len < 64 ? len : 64, "async_stats", 11) == NULL)
		return false;
	struct berth_err err;
	yajl_val v = json_parse(line, len, &err);
	const char *op = v ? json_get_string(v, "op") : NULL;
	if (op == NULL || strcmp(op, "async_stats") != 0) {
		if (v)
			yajl_tree_free(v);
		return false;
	}
	yajl_val a = json_get(v, "endpoints");
	size_t n = a && YAJL_IS_ARRAY(a) ? a->u.array.len : 0;
	struct async_gauge *g = n ? calloc(n, sizeof(*g)) : NULL;
	bool ok = a && YAJL_IS_ARRAY(a) && n <= ASYNC_METRICS_MAX_ENDPOINTS && (n == 0 || g);
	for (size_t i = 0; ok && i < n; i++) {
		yajl_val o = a->u.array.values[i];
		const char *name = json_get_string(o, "endpoint");
		if (name == NULL || strlen(name) > 63 || (g[i].endpoint = strdup(name)) == NULL) {
			ok = false;
			break;
		}
		g[i].backlog = (long long)number(o, "backlog");
		g[i].running = (long long)number(o, "running");
		g[i].instances = (long long)number(o, "instances");
		g[i].oldest = number(o, "oldest");
	}
	yajl_tree_free(v);
	if (!ok) {
		gauges_free(g, n);
		log_warn("route watch: malformed async_stats message ignored");
		return true;
	}
	gauges_free(m->g, m->n);
	m->g = g;
	m->n = n;
	return true;
}

/* Endpoint names are [a-zA-Z0-9-]: nothing to escape in a label. */
int async_metrics_render(const struct async_metrics *m, double now, struct berth_buf *out)
{
	if (m == NULL || m->n == 0)
		return 0;
	int r = 0;
	r |= buf_append_str(out, "# HELP ApproximateBacklogSize InvokeEndpointAsync requests waiting in the endpoint's queue.\n"
				 "# TYPE ApproximateBacklogSize gauge\n");
	for (size_t i = 0; i < m->n; i++)
		r |= buf_printf(out, "ApproximateBacklogSize{endpoint=\"%s\"} %lld\n", m->g[i].endpoint, m->g[i].backlog);
	r |= buf_append_str(out, "# HELP ApproximateBacklogSizePerInstance Waiting requests per serving instance.\n"
				 "# TYPE ApproximateBacklogSizePerInstance gauge\n");
	for (size_t i = 0; i < m->n; i++)
		r |= buf_printf(out, "ApproximateBacklogSizePerInstance{endpoint=\"%s\"} %g\n", m->g[i].endpoint,
				m->g[i].instances > 0 ? (double)m->g[i].backlog / (double)m->g[i].instances
						      : (double)m->g[i].backlog);
	r |= buf_append_str(out, "# HELP ApproximateAgeOfOldestRequest Seconds the oldest waiting request has waited.\n"
				 "# TYPE ApproximateAgeOfOldestRequest gauge\n");
	for (size_t i = 0; i < m->n; i++) {
		double age = m->g[i].backlog > 0 && m->g[i].oldest > 0 && now > m->g[i].oldest ? now - m->g[i].oldest : 0;
		r |= buf_printf(out, "ApproximateAgeOfOldestRequest{endpoint=\"%s\"} %.3f\n", m->g[i].endpoint, age);
	}
	r |= buf_append_str(out, "# HELP berth_async_running InvokeEndpointAsync requests in a container now.\n"
				 "# TYPE berth_async_running gauge\n");
	for (size_t i = 0; i < m->n; i++)
		r |= buf_printf(out, "berth_async_running{endpoint=\"%s\"} %lld\n", m->g[i].endpoint, m->g[i].running);
	return r ? -1 : 0;
}
