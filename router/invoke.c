/* invoke.c — InvokeEndpoint routing decision and the chain of steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "berthd_call.h"
#include "clock.h"
#include "eventstream.h"
#include "invoke.h"
#include "log.h"
#include "mme.h"
#include "routes.h"
#include "server.h"
#include "sessions.h"
#include "upstream.h"

#define INVOKER_KEEP 128
#define INVOKER_KEEP_BUFFER (1u << 20)

/* ---- the routing decision (pure) --------------------------------------- */

static void list_hostnames(char *out, size_t len, const struct route_instance *in)
{
	size_t off = 0;
	out[0] = '\0';
	for (size_t i = 0; in && i < in->n_containers && off < len; i++) {
		int n = snprintf(out + off, len - off, "%s%s", i ? ", " : "", in->containers[i].hostname);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

static const struct route_variant *pick_variant(const struct route_endpoint *e, uint64_t pick)
{
	double total = 0;
	for (size_t i = 0; i < e->n_variants; i++)
		total += e->variants[i].weight;
	if (e->n_variants == 1 || !(total > 0))
		return &e->variants[0];
	/* spread a counter over [0,1) (golden ratio sequence), then by weight */
	double f = (double)((pick * 0x9e3779b97f4a7c15ull) >> 11) / 9007199254740992.0 * total;
	for (size_t i = 0; i < e->n_variants; i++) {
		if (f < e->variants[i].weight)
			return &e->variants[i];
		f -= e->variants[i].weight;
	}
	return &e->variants[e->n_variants - 1];
}

const struct route_instance *invoke_pick_instance(const struct route_variant *v, uint64_t pick,
						 const struct route_instance *exclude)
{
	/* least outstanding requests; ties go round-robin from pick */
	const struct route_instance *best = NULL;
	unsigned best_load = 0;
	for (size_t k = 0; k < v->n_instances; k++) {
		const struct route_instance *in = &v->instances[(pick + k) % v->n_instances];
		if (in == exclude)
			continue;
		unsigned load = in->outstanding ? *in->outstanding : 0;
		if (!best || load < best_load) {
			best = in;
			best_load = load;
		}
	}
	return best;
}

int invoke_move(struct invoke_plan *plan, const struct route_instance *in)
{
	if (!in || !plan->instance || in->n_containers != plan->instance->n_containers)
		return -1;
	/* same model: the same container positions in the other instance */
	for (size_t s = 0; s < plan->n_steps; s++) {
		size_t pos = (size_t)(plan->steps[s] - plan->instance->containers);
		if (pos >= in->n_containers)
			return -1;
		plan->steps[s] = &in->containers[pos];
	}
	plan->instance = in;
	return 0;
}

int invoke_reroute(struct invoke_plan *plan, uint64_t pick)
{
	return invoke_move(plan, invoke_pick_instance(plan->variant, pick, plan->instance));
}

static int refuse(struct invoke_refusal *r, int status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int refuse(struct invoke_refusal *r, int status, const char *code, const char *fmt, ...)
{
	r->status = status;
	r->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->message, sizeof(r->message), fmt, ap);
	va_end(ap);
	return -1;
}

int invoke_route(const struct route_table *table, const char *endpoint_name, const char *target_hostname,
		 const char *target_variant, const char *target_model, uint64_t pick, struct invoke_plan *plan,
		 struct invoke_refusal *refusal)
{
	memset(plan, 0, sizeof(*plan));
	const struct route_endpoint *e = route_table_find(table, endpoint_name);
	if (!e)
		return refuse(refusal, 400, "ValidationError", "Endpoint %s of account %s not found.", endpoint_name,
			      table->account);
	plan->endpoint = e;
	if (!e->in_service)
		return refuse(refusal, 400, "ValidationError",
			      "Endpoint %s of account %s is not InService: its status is %s. Wait until the endpoint is InService, then try again.",
			      e->name, table->account, e->status);
	if (e->n_variants == 0)
		return refuse(refusal, 503, "ServiceUnavailable",
			      "Endpoint %s has no production variant ready to serve; try again later.", e->name);
	const struct route_variant *v = NULL;
	if (target_variant) {
		for (size_t i = 0; i < e->n_variants && !v; i++)
			if (strcmp(e->variants[i].name, target_variant) == 0)
				v = &e->variants[i];
		if (!v)
			return refuse(refusal, 400, "ValidationError",
				      "Variant %s not found for endpoint %s of account %s.", target_variant, e->name,
				      table->account);
	} else
		v = pick_variant(e, pick);
	plan->variant = v;
	/* the variant's own mode decides what the target headers may say */
	if (target_hostname && v->mode != ROUTE_MODE_DIRECT) {
		const struct route_variant *direct = route_endpoint_variant_in_mode(e, ROUTE_MODE_DIRECT);
		if (direct == NULL)
			return refuse(refusal, 400, "ValidationError",
				      "The %s header can only be used with an endpoint in Direct invocation mode; endpoint %s is in %s mode.",
				      TARGET_CONTAINER_HEADER, e->name, route_mode_name(v->mode));
		return refuse(refusal, 400, "ValidationError",
			      "The %s header can only be used with a production variant in Direct invocation mode; variant %s of endpoint %s is in %s mode. Name a Direct variant (e.g. %s) in the %s header.",
			      TARGET_CONTAINER_HEADER, v->name, e->name, route_mode_name(v->mode), direct->name,
			      TARGET_VARIANT_HEADER);
	}
	if (target_model && v->mode != ROUTE_MODE_MULTI) {
		const struct route_variant *multi = route_endpoint_variant_in_mode(e, ROUTE_MODE_MULTI);
		if (multi == NULL) /* SageMaker's words */
			return refuse(refusal, 400, "ValidationError",
				      "Endpoint %s is not a multi-model endpoint and does not support target model header.",
				      e->name);
		return refuse(refusal, 400, "ValidationError",
			      "Variant %s of endpoint %s is not a multi-model variant and does not support target model header. Name the multi-model variant (%s) in the %s header.",
			      v->name, e->name, multi->name, TARGET_VARIANT_HEADER);
	}
	if (v->mode == ROUTE_MODE_MULTI && !target_model)
		return refuse(refusal, 400, "ValidationError",
			      "Endpoint %s is a multi-model endpoint: the request must name its model in the %s header (TargetModel), e.g. model-1.tar.gz.",
			      e->name, TARGET_MODEL_HEADER);
	if (v->n_instances == 0)
		return refuse(refusal, 503, "ServiceUnavailable",
			      "Endpoint %s variant %s has no instance ready to serve; try again later.", e->name,
			      v->name);
	const struct route_instance *in = invoke_pick_instance(v, pick, NULL);
	plan->instance = in;
	if (v->mode == ROUTE_MODE_DIRECT) {
		char names[512]; /* for the refusals only: not on the success path */
		if (!target_hostname) {
			list_hostnames(names, sizeof(names), in);
			return refuse(refusal, 400, "ValidationError",
				      "Endpoint %s is in Direct invocation mode: the request must name its container in the %s header (one of: %s).",
				      e->name, TARGET_CONTAINER_HEADER, names);
		}
		for (size_t i = 0; i < in->n_containers; i++)
			if (strcmp(in->containers[i].hostname, target_hostname) == 0) {
				plan->steps[0] = &in->containers[i];
				plan->n_steps = 1;
				return 0;
			}
		list_hostnames(names, sizeof(names), in);
		return refuse(refusal, 400, "ValidationError",
			      "Container hostname %s given in the %s header is not a container of endpoint %s (its containers: %s).",
			      target_hostname, TARGET_CONTAINER_HEADER, e->name, names);
	}
	if (v->mode == ROUTE_MODE_SINGLE || v->mode == ROUTE_MODE_MULTI) {
		plan->steps[0] = &in->containers[0];
		plan->n_steps = 1;
		return 0;
	}
	for (size_t i = 0; i < in->n_containers && i < ROUTE_MAX_CONTAINERS; i++)
		plan->steps[i] = &in->containers[i];
	plan->n_steps = in->n_containers;
	return 0;
}

void invoke_format_inter_step_limit(char *out, size_t out_len, const char *from, const char *to, size_t n)
{
	snprintf(out, out_len,
		 "Received response from %s with status code 200. However, the request payload from %s to %s is %zu bytes, which has exceeded the maximum limit of 5 MB.",
		 from, from, to, n);
}

/* The inter-step message for a configured limit and a size that may be
 * unknown (a chunked answer cut off at the limit: "more than LIMIT bytes"). */
static void format_step_limit(char *out, size_t out_len, const char *from, const char *to, uint64_t n,
			      size_t limit)
{
	if (n != UINT64_MAX && limit == ROUTER_INTER_STEP_MAX_BODY) {
		invoke_format_inter_step_limit(out, out_len, from, to, (size_t)n);
		return;
	}
	char size[64], max[64];
	if (n != UINT64_MAX)
		snprintf(size, sizeof(size), "%llu bytes", (unsigned long long)n);
	else
		snprintf(size, sizeof(size), "more than %zu bytes", limit);
	if (limit == ROUTER_INTER_STEP_MAX_BODY)
		snprintf(max, sizeof(max), "5 MB");
	else
		snprintf(max, sizeof(max), "%zu bytes", limit);
	snprintf(out, out_len,
		 "Received response from %s with status code 200. However, the request payload from %s to %s is %s, which has exceeded the maximum limit of %s.",
		 from, from, to, size, max);
}

/* ---- running a chain --------------------------------------------------- */

struct invocation {
	struct invoker *inv;
	struct request *req;
	struct route_table *table;
	struct invoke_plan plan;
	size_t step;
	struct upstream_exchange x;
	struct berth_buf carry; /* previous step's body, the next step's request */
	char carry_content_type[256];
	const char *content_type, *accept, *custom_attributes, *inference_id, *target_model;
	uint64_t t0_ns, route_ns;
	uint64_t step_ns[ROUTE_MAX_CONTAINERS];
	bool rerouted; /* (added) moved once to another instance */
	/* InvokeEndpointWithResponseStream: the last step's answer goes out
	 * as PayloadPart events as it arrives; once the 200 is out
	 * (stream_started), a failure ends the stream with an exception */
	bool stream, stream_started, stream_nomem;
	/* (mme) MultiModel: the container's /models/N/invoke path, the wait for
	 * a load, whether one happened (Server-Timing "load") and whether a 404
	 * (evicted under us) was already retried */
	char mme_path[MME_MAX_MODEL_NAME + 32];
	struct mme_wait mme_wait;
	bool mme_waiting, mme_loaded, mme_retried;
	uint64_t load_ns;
	/* stateful sessions (sessions.h): the request's session ID (NULL: none),
	 * whether it is NEW_SESSION, and which session headers go back */
	const char *session_id;
	bool session_new, session_created, session_closed;
	struct invocation *next_free;
};

/* PayloadParts framed for one request_stream_write (request.h's bound on
 * its pieces, three a part) */
#define INVOKER_STREAM_BATCH (REQUEST_STREAM_MAX_PIECES / 3)

struct invoker {
	struct server *srv;
	uint64_t counter;
	struct invocation *free;
	size_t n_free;
	/* heads and trailers of the PayloadParts being written: the front end
	 * writes or copies them before request_stream_write returns, so one
	 * set serves every stream (the loop is single-threaded) */
	struct eventstream_frame frames[INVOKER_STREAM_BATCH];
};

struct invoker *invoker_new(struct server *srv)
{
	struct invoker *inv = calloc(1, sizeof(*inv));
	if (inv)
		inv->srv = srv;
	return inv;
}

static void invocation_destroy(struct invocation *iv)
{
	buf_free(&iv->carry);
	buf_free(&iv->x.resp_body);
	free(iv);
}

void invoker_free(struct invoker *inv)
{
	if (!inv)
		return;
	while (inv->free) {
		struct invocation *iv = inv->free;
		inv->free = iv->next_free;
		invocation_destroy(iv);
	}
	free(inv);
}

static struct invocation *invocation_get(struct invoker *inv)
{
	struct invocation *iv = inv->free;
	if (iv) {
		inv->free = iv->next_free;
		inv->n_free--;
		struct berth_buf carry = iv->carry, body = iv->x.resp_body;
		memset(iv, 0, sizeof(*iv));
		iv->carry = carry;
		iv->x.resp_body = body;
		buf_reset(&iv->carry);
	} else if (!(iv = calloc(1, sizeof(*iv))))
		return NULL;
	iv->inv = inv;
	return iv;
}

static void invocation_put(struct invocation *iv)
{
	struct invoker *inv = iv->inv;
	if (iv->plan.instance && iv->plan.instance->outstanding && *iv->plan.instance->outstanding > 0)
		(*iv->plan.instance->outstanding)--;
	route_table_unref(iv->table);
	iv->table = NULL;
	iv->req = NULL;
	if (inv->n_free >= INVOKER_KEEP) {
		invocation_destroy(iv);
		return;
	}
	if (iv->carry.cap > INVOKER_KEEP_BUFFER)
		buf_free(&iv->carry);
	if (iv->x.resp_body.cap > INVOKER_KEEP_BUFFER)
		buf_free(&iv->x.resp_body);
	iv->next_free = inv->free;
	inv->free = iv;
	inv->n_free++;
}

static void invocation_cancel(void *arg)
{
	struct invocation *iv = arg;
	if (iv->mme_waiting) {
		rmme_wait_cancel(&iv->mme_wait);
		iv->mme_waiting = false;
		invocation_put(iv);
		return;
	}
	upstream_cancel(iv->inv->srv->upstream, &iv->x);
	invocation_put(iv);
}

static void step_start(struct invocation *iv);
static void mme_resolve(struct invocation *iv);

/* ---- streaming (InvokeEndpointWithResponseStream) ------------------------ */

static void stream_resume(void *arg)
{
	struct invocation *iv = arg;
	upstream_resume(iv->inv->srv->upstream, &iv->x);
}

/* The 200 and its headers, before the first PayloadPart. */
static void stream_begin(struct invocation *iv)
{
	struct request *req = iv->req;
	struct upstream_exchange *x = &iv->x;
	request_respond_start(req, 200);
	request_respond_header(req, "Content-Type", EVENTSTREAM_CONTENT_TYPE);
	request_respond_header(req, "X-Amzn-SageMaker-Content-Type",
			       x->resp_content_type[0] ? x->resp_content_type : "application/octet-stream");
	request_respond_header(req, "X-Amzn-Invoked-Production-Variant", iv->plan.variant->name);
	if (x->has_resp_custom_attributes)
		request_respond_header(req, "X-Amzn-SageMaker-Custom-Attributes", x->resp_custom_attributes);
	/* a session may be closed by a streamed answer (SageMaker's stream
	 * response has no ClosedSessionId member: the pin just goes) */
	if (iv->session_id && x->resp_closed_session[0] && strcmp(x->resp_closed_session, iv->session_id) == 0 &&
	    sessions_unpin(iv->inv->srv->sessions, iv->plan.endpoint->name, iv->session_id))
		invoke_session_tell_berthd(iv->inv->srv, NULL, iv->plan.endpoint->name, iv->session_id);
	iv->stream_started = true;
	iv->inv->srv->metrics.streams++;
	request_stream_begin(req, stream_resume);
}

/* Sends each span as a PayloadPart event of its own (one over the
 * format's bound as several), together in one request_stream_write per
 * batch: the front end writes them in one go, from the caller's buffers
 * when it can. 0, 1 (the client is behind: wait for stream_resume) or -1. */
static int stream_parts(struct invocation *iv, const struct iovec *spans, int n)
{
	struct eventstream_frame *frames = iv->inv->frames;
	struct iovec iov[3 * INVOKER_STREAM_BATCH];
	int r = 0, k = 0;
	for (int i = 0; i < n; i++) {
		const char *data = spans[i].iov_base;
		size_t len = spans[i].iov_len;
		iv->inv->srv->metrics.stream_bytes += len;
		while (len > 0) {
			size_t part = len < EVENTSTREAM_MAX_PAYLOAD ? len : EVENTSTREAM_MAX_PAYLOAD;
			struct eventstream_frame *f = &frames[k / 3];
			if (eventstream_payload_part(f, data, part) < 0)
				return -1;
			iov[k++] = (struct iovec){ f->head, f->head_len };
			iov[k++] = (struct iovec){ (void *)data, part };
			iov[k++] = (struct iovec){ f->trailer, 4 };
			data += part;
			len -= part;
			if (k == 3 * INVOKER_STREAM_BATCH || (len == 0 && i == n - 1)) {
				int w = request_stream_write(iv->req, iov, k);
				if (w < 0)
					return -1;
				if (w > 0)
					r = 1;
				k = 0;
			}
		}
	}
	return r;
}

static int stream_on_data(struct upstream_exchange *x, const struct iovec *spans, int n)
{
	struct invocation *iv = container_of(x, struct invocation, x);
	if (!iv->stream_started)
		stream_begin(iv);
	int r = stream_parts(iv, spans, n);
	if (r < 0) {
		iv->stream_nomem = true;
		snprintf(x->error, sizeof(x->error), "out of memory framing the streamed response");
	}
	return r;
}

/* Ends a started stream: after a complete answer, or with the exception
 * SageMaker sends for a failure after the first byte (botocore's
 * ResponseStream: ModelStreamError with ErrorCode ModelInvocationTimeExceeded
 * or StreamBroken; InternalStreamFailure for berth's own trouble). */
static void stream_finish(struct invocation *iv)
{
	struct upstream_exchange *x = &iv->x;
	struct request *req = iv->req;
	const char *host = iv->plan.steps[iv->step]->hostname;
	char msg[768];
	const char *type = "ModelStreamError", *code = NULL;
	switch (x->result) {
	case UPSTREAM_OK:
		if (iv->plan.variant->mode == ROUTE_MODE_MULTI)
			rmme_count(iv->inv->srv->mme, iv->plan.endpoint->name, iv->target_model);
		request_stream_end(req);
		invocation_put(iv);
		return;
	case UPSTREAM_TIMEOUT:
		code = "ModelInvocationTimeExceeded";
		snprintf(msg, sizeof(msg),
			 "Container %s did not finish its streamed response within %llu ms; %llu bytes were sent. Make the model answer faster or raise the invocation timeout.",
			 host, (unsigned long long)iv->inv->srv->cfg.invocation_timeout_ms,
			 (unsigned long long)x->streamed);
		break;
	default:
		if (iv->stream_nomem) {
			type = "InternalStreamFailure";
			snprintf(msg, sizeof(msg), "The router could not pass the streamed response on (%s); try your request again.",
				 x->error);
			break;
		}
		code = "StreamBroken";
		snprintf(msg, sizeof(msg),
			 "The connection to container %s was reset or closed before its streamed response was complete (%llu bytes were sent): %.400s. Check the container's logs.",
			 host, (unsigned long long)x->streamed, x->error);
		break;
	}
	iv->inv->srv->metrics.stream_errors++;
	log_warn("invoke %s: streamed response from %s ended early: %s", iv->plan.endpoint->name, host, msg);
	struct berth_buf ev = BERTH_BUF_INIT;
	if (eventstream_append_exception(&ev, type, code, msg) == 0) {
		struct iovec iov = { ev.data, ev.len };
		request_stream_write(req, &iov, 1);
	}
	buf_free(&ev);
	request_stream_end(req);
	invocation_put(iv);
}

/* A whole 2xx answer (Content-Length, or empty) of a streamed invocation:
 * the 200, one PayloadPart (none for an empty body), the end. */
static void stream_whole(struct invocation *iv)
{
	struct upstream_exchange *x = &iv->x;
	stream_begin(iv);
	struct iovec whole = { x->resp_body.data, x->resp_body.len };
	if (x->resp_body.len > 0 && stream_parts(iv, &whole, 1) < 0) {
		iv->stream_nomem = true;
		x->result = UPSTREAM_BAD_RESPONSE;
		snprintf(x->error, sizeof(x->error), "out of memory framing the response");
	}
	stream_finish(iv);
}

static void respond_success(struct invocation *iv)
{
	struct request *req = iv->req;
	struct upstream_exchange *x = &iv->x;
	uint64_t total = clock_now_ns() - iv->t0_ns;
	request_respond_start(req, 200);
	request_respond_header(req, "Content-Type",
			       x->resp_content_type[0] ? x->resp_content_type : "application/octet-stream");
	request_respond_header(req, "X-Amzn-Invoked-Production-Variant", iv->plan.variant->name);
	if (x->has_resp_custom_attributes)
		request_respond_header(req, "X-Amzn-SageMaker-Custom-Attributes", x->resp_custom_attributes);
	if (iv->session_created)
		request_respond_header(req, SESSION_NEW_ID_HEADER, x->resp_new_session);
	if (iv->session_closed)
		request_respond_header(req, SESSION_CLOSED_ID_HEADER, x->resp_closed_session);
	struct timing_step steps[ROUTE_MAX_CONTAINERS + 1];
	size_t n_timing = 0;
	if (iv->mme_loaded) /* (mme) a load happened for this request */
		steps[n_timing++] = (struct timing_step){ "load", iv->load_ns };
	for (size_t i = 0; i < iv->plan.n_steps; i++)
		steps[n_timing++] = (struct timing_step){ iv->plan.steps[i]->hostname, iv->step_ns[i] };
	/* 15 steps with 63-character hostnames make about 1.3 KB: no fixed bound */
	struct berth_buf tb = BERTH_BUF_INIT;
	if (render_server_timing(&tb, iv->route_ns, steps, n_timing, total) == 0)
		request_respond_header(req, "Server-Timing", tb.data);
	buf_free(&tb);
	struct berth_buf tmp = req->resp_body; /* hand the body over without copying */
	req->resp_body = x->resp_body;
	x->resp_body = tmp;
	buf_reset(&x->resp_body);
	request_respond_finish(req);
	invocation_put(iv);
}

static void respond_model_failure(struct invocation *iv, int status, const char *text, size_t len,
				  const char *message)
{
	const struct route_container *c = iv->plan.steps[iv->step];
	struct model_error me = {
		.message = message,
		.original_status = status,
		.hostname = c->hostname,
		.original = text,
		.original_len = len,
		.endpoint = iv->plan.endpoint->name,
		.variant = iv->plan.variant->name,
		.region = iv->table->region,
		.account = iv->table->account,
	};
	respond_model_error(iv->req, &me);
	invocation_put(iv);
}

#define SESSION_SYNC_TIMEOUT_MS 2000

/* Tells berthd a pin (pin != NULL) or that (endpoint, id) is unpinned, so a
 * restarted router gets it back (sessions.h); fire-and-forget: the router
 * serves from its own table either way. */
void invoke_session_tell_berthd(void *server, const struct session_pin *pin, const char *endpoint, const char *id)
{
	struct server *srv = server;
	struct berth_buf line = BERTH_BUF_INIT;
	int r = pin ? session_render_pin(pin, &line) : session_render_unpin(endpoint, id, &line);
	if (r < 0 || !berthd_call_start(srv, line.data, line.len, false, SESSION_SYNC_TIMEOUT_MS, NULL, NULL))
		log_warn("session %s of endpoint %s: out of memory telling berthd; a router restart will lose this change",
			 id, endpoint);
	buf_free(&line);
}

/* The last container's 2xx answer of a request with a session ID: a
 * NEW_SESSION answered with New-Session-Id pins the session to this
 * instance; an answer naming the request's session in Closed-Session-Id
 * unpins it. 0, or -1 when iv was answered with an error (a malformed
 * New-Session-Id: ModelError; no room for the pin: 503). */
static int session_answer(struct invocation *iv)
{
	struct upstream_exchange *x = &iv->x;
	struct server *srv = iv->inv->srv;
	const char *endpoint = iv->plan.endpoint->name;
	if (iv->session_new && x->resp_new_session[0]) {
		char id[SESSION_ID_MAX + 1];
		int64_t expires;
		if (session_parse_new(x->resp_new_session, id, &expires) < 0) {
			char msg[640];
			snprintf(msg, sizeof(msg),
				 "Container %s answered a NEW_SESSION request with %s \"%.300s\", which is not of the form \"ID; Expires=YYYY-MM-DDTHH:MM:SSZ\" (ID: letters, digits and inner hyphens, at most %d characters). Fix the model's session handling.",
				 iv->plan.steps[iv->step]->hostname, SESSION_NEW_ID_HEADER, x->resp_new_session,
				 SESSION_ID_MAX);
			respond_model_failure(iv, x->status, msg, strlen(msg), msg);
			return -1;
		}
		int64_t now = (int64_t)clock_epoch_seconds();
		if (sessions_pin(srv->sessions, endpoint, id, iv->plan.variant->name,
				 session_instance_key(iv->plan.instance), expires, now, iv->table) < 0) {
			respond_busy(iv->req, "5",
				     "The router holds its limit of %zu stateful sessions (--max-sessions), so session %s of endpoint %s could not be kept. Close sessions you no longer need or wait for them to expire, then try again.",
				     sessions_max(srv->sessions), id, endpoint);
			invocation_put(iv);
			return -1;
		}
		iv->session_created = true;
		invoke_session_tell_berthd(srv, sessions_find(srv->sessions, endpoint, id, now), endpoint, id);
		log_info("invoke %s: session %s pinned to variant %s instance %s until %lld", endpoint, id,
			 iv->plan.variant->name, session_instance_key(iv->plan.instance), (long long)expires);
	}
	if (!iv->session_new && x->resp_closed_session[0] && strcmp(x->resp_closed_session, iv->session_id) == 0) {
		sessions_unpin(srv->sessions, endpoint, iv->session_id);
		invoke_session_tell_berthd(srv, NULL, endpoint, iv->session_id);
		iv->session_closed = true;
	}
	return 0;
}

static void step_done(struct upstream_exchange *x)
{
	struct invocation *iv = container_of(x, struct invocation, x);
	struct server *srv = iv->inv->srv;
	const struct route_container *c = iv->plan.steps[iv->step];
	iv->step_ns[iv->step] = x->end_ns - x->start_ns;
	if (srv->debug)
		log_debug("invoke %s step %zu (%s): result %d status %d in %.3f ms", iv->plan.endpoint->name, iv->step,
			  c->hostname, (int)x->result, x->status, (double)iv->step_ns[iv->step] / 1e6);
	if (iv->stream_started) { /* the 200 is out: the stream ends, well or not */
		stream_finish(iv);
		return;
	}
	switch (x->result) {
	case UPSTREAM_OK:
		break;
	case UPSTREAM_TIMEOUT: {
		char text[512];
		snprintf(text, sizeof(text),
			 "Your invocation timed out while waiting for a response from container %s. Review the latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again.",
			 c->hostname);
		respond_model_failure(iv, 0, text, strlen(text), NULL);
		return;
	}
	case UPSTREAM_UNAVAILABLE:
		/* nothing reached the container (it is restarting, say): once, try
		 * another instance of the same variant */
		if (iv->step == 0 && !iv->rerouted && iv->plan.variant->n_instances > 1) {
			const struct route_instance *from = iv->plan.instance;
			if (invoke_reroute(&iv->plan, iv->inv->counter++) == 0) {
				if (from->outstanding && *from->outstanding > 0)
					(*from->outstanding)--;
				if (iv->plan.instance->outstanding)
					(*iv->plan.instance->outstanding)++;
				iv->rerouted = true;
				step_start(iv);
				return;
			}
		}
		respond_runtime_error(iv->req, 503, "ServiceUnavailable",
				      "Could not connect to container %s of endpoint %s: %s. The container may be restarting; try again later.",
				      c->hostname, iv->plan.endpoint->name, x->error);
		invocation_put(iv);
		return;
	case UPSTREAM_TOO_LARGE:
		if (x->status >= 200 && x->status <= 299 && iv->step + 1 < iv->plan.n_steps) {
			/* a step's answer too large to feed the next (bounded: reading
			 * stopped at the limit): ModelError naming the step */
			char msg[512];
			format_step_limit(msg, sizeof(msg), c->hostname, iv->plan.steps[iv->step + 1]->hostname,
					  x->resp_content_length, srv->cfg.max_step_bytes);
			respond_model_failure(iv, x->status, msg, strlen(msg), msg);
			return;
		}
		respond_model_failure(iv, 0, x->error, strlen(x->error), NULL);
		return;
	case UPSTREAM_RESET:
	case UPSTREAM_BAD_RESPONSE:
		respond_model_failure(iv, 0, x->error, strlen(x->error), NULL);
		return;
	}
	if (x->status == 404 && iv->plan.variant->mode == ROUTE_MODE_MULTI && !iv->mme_retried) {
		/* (mme) the container no longer has the model (evicted under us):
		 * a miss; load it again, once */
		iv->mme_retried = true;
		rmme_forget(srv->mme, iv->plan.endpoint->name, iv->target_model);
		mme_resolve(iv);
		return;
	}
	if (x->status < 200 || x->status > 299) {
		respond_model_failure(iv, x->status, x->resp_body.data ? x->resp_body.data : "", x->resp_body.len, NULL);
		return;
	}
	if (iv->plan.variant->mode == ROUTE_MODE_MULTI)
		rmme_count(srv->mme, iv->plan.endpoint->name, iv->target_model);
	if (iv->step + 1 == iv->plan.n_steps) {
		if (iv->session_id && session_answer(iv) < 0)
			return;
		if (iv->stream)
			stream_whole(iv);
		else
			respond_success(iv);
		return;
	}
	/* Serial: this answer becomes the next step's request. A 0-byte body
	 * is passed on as such (Content-Length: 0), as SageMaker does; the
	 * buffers are swapped, never copied. */
	struct berth_buf tmp = iv->carry;
	iv->carry = x->resp_body;
	x->resp_body = tmp;
	snprintf(iv->carry_content_type, sizeof(iv->carry_content_type), "%s", x->resp_content_type);
	iv->step++;
	step_start(iv);
}

static void step_start(struct invocation *iv)
{
	struct upstream_exchange *x = &iv->x;
	const struct route_container *c = iv->plan.steps[iv->step];
	bool first = iv->step == 0, last = iv->step + 1 == iv->plan.n_steps;
	x->shim_socket = c->socket;
	x->hostname = c->hostname;
	if (first) {
		x->body = iv->req->body.data ? iv->req->body.data : "";
		x->body_len = iv->req->body.len;
		x->content_type = iv->content_type;
	} else {
		x->body = iv->carry.data ? iv->carry.data : "";
		x->body_len = iv->carry.len;
		x->content_type = iv->carry_content_type[0] ? iv->carry_content_type : NULL;
	}
	x->accept = last ? iv->accept : NULL;
	/* intermediate answers feed the next step: bounded by --max-step-bytes */
	x->max_body = last ? 0 : iv->inv->srv->cfg.max_step_bytes;
	x->custom_attributes = iv->custom_attributes;
	x->inference_id = iv->inference_id;
	x->target_model = iv->target_model;
	x->session_id = iv->session_id;
	x->path = iv->mme_path[0] ? iv->mme_path : NULL;
	x->done = step_done;
	/* streamed: the last step only (a Serial pipeline's earlier answers
	 * feed the next step whole, as for InvokeEndpoint) */
	x->on_data = iv->stream && last ? stream_on_data : NULL;
	if (first && iv->plan.variant->mode != ROUTE_MODE_MULTI) /* (mme) set before the load */
		iv->route_ns = clock_now_ns() - iv->t0_ns;
	if (upstream_start(iv->inv->srv->upstream, x) < 0)
		step_done(x);
}

/* ---- MultiModel (mme.h) ------------------------------------------------ */

static void mme_set_path(struct invocation *iv, const char *model)
{
	snprintf(iv->mme_path, sizeof(iv->mme_path), "/models/%s/invoke", model);
}

static void mme_on_loaded(struct mme_wait *w, const struct mme_result *r)
{
	struct invocation *iv = container_of(w, struct invocation, mme_wait);
	iv->mme_waiting = false;
	iv->mme_wait.m = NULL;
	if (r->ok) {
		mme_set_path(iv, r->model);
		iv->mme_loaded = true;
		iv->load_ns = clock_now_ns() - w->start_ns;
		step_start(iv);
		return;
	}
	if (r->original_status >= 0 || (r->code && strcmp(r->code, "ModelError") == 0)) {
		/* the container refused the load: ModelError as for an invocation */
		const struct route_container *c = iv->plan.steps[0];
		const char *om = r->original_message ? r->original_message : "";
		struct model_error me = {
			.message = r->message,
			.original_status = r->original_status >= 0 ? r->original_status : 0,
			.hostname = c->hostname,
			.original = om,
			.original_len = strlen(om),
			.endpoint = iv->plan.endpoint->name,
			.variant = iv->plan.variant->name,
			.region = iv->table->region,
			.account = iv->table->account,
		};
		struct request *req = iv->req;
		if (r->status != 424) {
			/* keep berthd's status: render the ModelError body by hand */
			buf_reset(&req->resp_body);
			int rr = render_model_error(&req->resp_body, &me);
			request_respond_start(req, r->status);
			request_respond_header(req, "Content-Type", CONTENT_TYPE_JSON);
			char et[160];
			snprintf(et, sizeof(et), "%s:", r->code ? r->code : "ModelError");
			request_respond_header(req, "x-amzn-ErrorType", et);
			if (rr < 0)
				buf_reset(&req->resp_body);
			request_respond_finish(req);
		} else
			respond_model_error(req, &me);
		invocation_put(iv);
		return;
	}
	respond_runtime_error(iv->req, r->status, r->code, "%s", r->message ? r->message : "");
	invocation_put(iv);
}

/* Known N: invoke at once; else wait for berthd's load (single-flight). */
static void mme_resolve(struct invocation *iv)
{
	struct mme *m = iv->inv->srv->mme;
	const char *model = rmme_lookup(m, iv->plan.endpoint->name, iv->target_model);
	if (model) {
		mme_set_path(iv, model);
		step_start(iv);
		return;
	}
	iv->mme_waiting = true;
	rmme_wait_start(m, iv->plan.endpoint->name, iv->target_model, &iv->mme_wait, mme_on_loaded);
}

/* A request's X-Amzn-SageMaker-Session-Id, before routing: NEW_SESSION
 * (InvokeEndpoint only) needs room for a pin; an ID must name a live pin
 * of this endpoint, whose variant (*variant, unless the request named
 * another: refused) and instance (*pinned) the request then goes to. 0, or
 * -1 when req was answered. */
static int session_route(struct server *srv, struct request *req, const struct route_table *table,
			 const char *endpoint, const char *session, bool stream, const char **variant,
			 const struct route_instance **pinned)
{
	if (!route_table_find(table, endpoint))
		return 0; /* invoke_route answers: the endpoint is not found */
	int64_t now = (int64_t)clock_epoch_seconds();
	if (strcmp(session, SESSION_NEW) == 0) {
		if (stream) {
			respond_runtime_error(req, 400, "ValidationError",
					      "A stateful session cannot be created with InvokeEndpointWithResponseStream. Create it with InvokeEndpoint (SessionId NEW_SESSION), then pass its ID here.");
			return -1;
		}
		if (!sessions_has_room(srv->sessions, now, table)) {
			respond_busy(req, "5",
				     "The router holds its limit of %zu stateful sessions (--max-sessions). Close sessions you no longer need or wait for them to expire, then try again.",
				     sessions_max(srv->sessions));
			return -1;
		}
		return 0;
	}
	if (!session_id_valid(session)) {
		respond_runtime_error(req, 400, "ValidationError",
				      "1 validation error detected: Value '%.300s' at 'sessionId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(NEW_SESSION)$|^[a-zA-Z0-9](-*[a-zA-Z0-9])*$ and have length less than or equal to %d",
				      session, SESSION_ID_MAX);
		return -1;
	}
	const struct session_pin *pin = sessions_find(srv->sessions, endpoint, session, now);
	const struct route_variant *v = NULL;
	if (pin && session_resolve(table, pin, &v, pinned) < 0) {
		/* its instance is gone (replaced, endpoint deleted): so is the session */
		log_info("invoke %s: session %s dropped: its instance %s is no longer in service", endpoint, session,
			 pin->instance);
		sessions_unpin(srv->sessions, endpoint, session);
		invoke_session_tell_berthd(srv, NULL, endpoint, session);
		pin = NULL;
	}
	if (!pin) {
		respond_runtime_error(req, 400, "ValidationError",
				      "Invalid session ID: %s is not an active session of endpoint %s (it was never created, was closed, has expired, or the instance serving it is gone). Start a new session with SessionId NEW_SESSION.",
				      session, endpoint);
		return -1;
	}
	if (*variant && strcmp(*variant, v->name) != 0) {
		respond_runtime_error(req, 400, "ValidationError",
				      "Session %s of endpoint %s is served by variant %s; the request names variant %s in the %s header. Omit TargetVariant or name %s.",
				      session, endpoint, v->name, *variant, TARGET_VARIANT_HEADER, v->name);
		return -1;
	}
	*variant = v->name;
	return 0;
}

static void invoke_begin(struct invoker *inv, struct request *req, const char *endpoint_name, bool stream)
{
	struct server *srv = inv->srv;
	uint64_t t0 = clock_now_ns();
	struct route_table *table = routes_current(srv->routes);
	struct invoke_plan plan;
	struct invoke_refusal refusal;
	const char *target = request_header(req, "x-amzn-sagemaker-target-container-hostname", NULL);
	const char *variant = request_header(req, "x-amzn-sagemaker-target-variant", NULL);
	const char *target_model = request_header(req, "x-amzn-sagemaker-target-model", NULL); /* (mme) */
	const char *session = request_header(req, "x-amzn-sagemaker-session-id", NULL);
	const struct route_instance *pinned = NULL;
	if (session && session_route(srv, req, table, endpoint_name, session, stream, &variant, &pinned) < 0)
		return;
	if (invoke_route(table, endpoint_name, target, variant, target_model, inv->counter++, &plan, &refusal) < 0) {
		respond_runtime_error(req, refusal.status, refusal.code, "%s", refusal.message);
		return;
	}
	if (pinned && invoke_move(&plan, pinned) < 0) { /* same variant: the same shape; belt and braces */
		respond_runtime_error(req, 400, "ValidationError",
				      "Session %s of endpoint %s can no longer be served: its instance changed. Start a new session with SessionId NEW_SESSION.",
				      session, endpoint_name);
		return;
	}
	/* berthd checks the path (mme_validate_target); the router only bounds
	 * what it keeps, with berthd's wording */
	if (plan.variant->mode == ROUTE_MODE_MULTI && strlen(target_model) > MME_MAX_TARGET) {
		respond_runtime_error(req, 400, "ValidationError",
				      "TargetModel is %zu characters long; it must have length less than or equal to %d.",
				      strlen(target_model), MME_MAX_TARGET);
		return;
	}
	if (req->body.len > srv->cfg.max_body_bytes) { /* dispatch stops earlier; belt and braces */
		respond_runtime_error(req, 400, "ValidationError", "Request body of %zu bytes exceeds the maximum of %zu bytes.",
				      req->body.len, srv->cfg.max_body_bytes);
		return;
	}
	struct invocation *iv = invocation_get(inv);
	if (!iv) {
		respond_runtime_error(req, 500, "InternalFailure", "out of memory");
		return;
	}
	iv->req = req;
	iv->table = route_table_ref(table);
	iv->plan = plan;
	if (plan.instance && plan.instance->outstanding)
		(*plan.instance->outstanding)++;
	iv->t0_ns = t0;
	iv->stream = stream;
	iv->content_type = request_header(req, "content-type", NULL);
	/* InvokeEndpointWithResponseStream's Accept travels as
	 * X-Amzn-SageMaker-Accept (the HTTP Accept is the event stream's) */
	iv->accept = request_header(req, stream ? "x-amzn-sagemaker-accept" : "accept", NULL);
	iv->custom_attributes = request_header(req, "x-amzn-sagemaker-custom-attributes", NULL);
	iv->inference_id = request_header(req, "x-amzn-sagemaker-inference-id", NULL);
	iv->target_model = request_header(req, "x-amzn-sagemaker-target-model", NULL);
	iv->session_id = session;
	iv->session_new = session && strcmp(session, SESSION_NEW) == 0;
	iv->rerouted = pinned != NULL; /* a pinned session never moves to another instance */
	request_set_cancel(req, invocation_cancel, iv);
	if (plan.variant->mode == ROUTE_MODE_MULTI) {
		iv->route_ns = clock_now_ns() - t0;
		mme_resolve(iv);
		return;
	}
	step_start(iv);
}

void invoker_start(struct invoker *inv, struct request *req, const char *endpoint_name)
{
	invoke_begin(inv, req, endpoint_name, false);
}

void invoker_start_stream(struct invoker *inv, struct request *req, const char *endpoint_name)
{
	invoke_begin(inv, req, endpoint_name, true);
}
