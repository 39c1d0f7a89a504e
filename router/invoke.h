/* invoke.h — InvokeEndpoint: choose where a request goes (a pure decision
 * over a route table snapshot) and run it as a chain of container steps.
 * Single and Direct endpoints are a chain of one; Serial endpoints run each
 * container in order, the response body and Content-Type of one becoming
 * the request of the next (CONTRACT.md §3). */
#ifndef BERTH_ROUTER_INVOKE_H
#define BERTH_ROUTER_INVOKE_H

#include <stddef.h>
#include <stdint.h>

#include "request.h"
#include "route_table.h"

#define TARGET_CONTAINER_HEADER "X-Amzn-SageMaker-Target-Container-Hostname"
#define TARGET_VARIANT_HEADER "X-Amzn-SageMaker-Target-Variant"

/* Where one invocation goes. Pointers are into the table. */
struct invoke_plan {
	const struct route_endpoint *endpoint;
	const struct route_variant *variant;
	const struct route_instance *instance;
	const struct route_container *steps[ROUTE_MAX_CONTAINERS];
	size_t n_steps;
};

/* An answer the router gives itself (status, x-amzn-ErrorType code, message). */
struct invoke_refusal {
	int status;
	const char *code;
	char message[1024];
};

/* The routing decision. target_hostname / target_variant / target_model:
 * header values or NULL. pick: any number (a counter) spreading load over
 * variants by weight and over instances. The variant is chosen first
 * (target_variant, else by weight), then the request is routed by that
 * variant's own mode. Returns 0 with plan filled, or -1 with refusal
 * filled: unknown endpoint, not InService, unknown variant, a target
 * hostname on a variant not in Direct mode, a target model on a variant
 * not in MultiModel mode (each naming a variant that would take it, when
 * the endpoint has one), Direct target missing or unknown, MultiModel
 * target missing, no instance. */
int invoke_route(const struct route_table *table, const char *endpoint_name, const char *target_hostname,
		 const char *target_variant, const char *target_model, uint64_t pick, struct invoke_plan *plan,
		 struct invoke_refusal *refusal);

/* (added) The instance of v with the fewest invocations in flight (ties:
 * round-robin from pick), never `exclude`; NULL when none. */
const struct route_instance *invoke_pick_instance(const struct route_variant *v, uint64_t pick,
						 const struct route_instance *exclude);
/* Moves plan to instance `in` of its variant (same container positions):
 * a pinned stateful session (sessions.h). -1 when in's shape differs. */
int invoke_move(struct invoke_plan *plan, const struct route_instance *in);
/* (added) Moves plan to another instance of its variant (a container could
 * not be reached: nothing was sent, so retrying elsewhere is safe). -1 when
 * there is no other instance. */
int invoke_reroute(struct invoke_plan *plan, uint64_t pick);

/* Stateful sessions (sessions.h): tells berthd a pin, or (pin NULL) that
 * (endpoint, id) is unpinned, fire-and-forget. server: the struct server
 * (a sessions_tell_fn). */
struct session_pin;
void invoke_session_tell_berthd(void *server, const struct session_pin *pin, const char *endpoint, const char *id);

/* The Serial-mode message when step `from` produced n bytes for step `to`. */
void invoke_format_inter_step_limit(char *out, size_t out_len, const char *from, const char *to, size_t n);

struct server;
struct invoker;

struct invoker *invoker_new(struct server *srv);
void invoker_free(struct invoker *inv);
/* Runs the invocation and answers req (now or later). endpoint_name points
 * into req. */
void invoker_start(struct invoker *inv, struct request *req, const char *endpoint_name);
/* InvokeEndpointWithResponseStream: the same routing and steps; the last
 * step's 2xx answer goes to the client as application/vnd.amazon.eventstream
 * PayloadPart events as it arrives (eventstream.h), with back-pressure
 * from the client to the container (request_stream_write). A failure
 * before the first byte is the same error answer as InvokeEndpoint's; one
 * after it ends the stream with a ModelStreamError event (ErrorCode
 * ModelInvocationTimeExceeded or StreamBroken) or InternalStreamFailure. */
void invoker_start_stream(struct invoker *inv, struct request *req, const char *endpoint_name);

#endif
