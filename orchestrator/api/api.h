/* api.h — SageMaker control-plane operations (AWS JSON 1.1): decode and
 * validate the request, change the store, render the answer or the error
 * exactly as SageMaker does (CONTRACT.md §2).
 *
 * Threading: api_handle() is called from many threads; it takes *ctx->lock
 * around every use of the store. Endpoint lifecycles run in the runtime
 * (runtime.h) which is reached through ctx->runtime hooks, always called
 * with *ctx->lock held. The runtime broadcasts *ctx->changed whenever an
 * endpoint's status changes or an endpoint record is removed, so
 * CreateEndpoint / DeleteEndpoint can wait (pthread_cond_timedwait on
 * ctx->lock) for the next stable state for at most ctx->grace_ms. */
#ifndef BERTH_API_H
#define BERTH_API_H

#include <pthread.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "store.h"

struct api_reply {
	int status;               /* HTTP status: 200, 400, 413, 500 */
	struct berth_buf body;    /* JSON text */
};

struct api_runtime_hooks {
	void *data;
	/* The endpoint NAME was just persisted with status "Creating": start its
	 * containers in the background; must not block. The runtime sets the
	 * status to InService or Failed (persisted) and broadcasts ctx->changed. */
	void (*endpoint_start)(void *data, const char *name);
	/* The endpoint NAME was just persisted with status "Deleting": stop its
	 * containers in the background, then delete the record (store_delete_endpoint)
	 * and broadcast ctx->changed. Must not block. */
	void (*endpoint_stop)(void *data, const char *name);
	/* Something the router's route table shows changed (an endpoint was
	 * added, removed or changed status): push a new table. */
	void (*routes_changed)(void *data);
	/* (host paths) Data for the two checks below: what berthd may read on a
	 * caller's behalf (image roots, model roots, buckets, hosts). */
	void *sources;
	/* CreateModel: can this host run the image? -1 with a message for the
	 * user when not, classed VALIDATION when the image is wrong, INTERNAL
	 * when berth could not check it (NULL: every image is accepted). */
	int (*image_check)(void *sources, const char *image, struct berth_err *err);
	/* CreateModel: may berth read this ModelDataUrl (or MultiModel prefix)?
	 * The operator's model roots, buckets and hosts (objstore.h); -1 with a
	 * message for the user when not (NULL: every URL is accepted). */
	int (*model_data_check)(void *sources, const char *url, struct berth_err *err);
	/* DescribeEndpoint: what a registry image resolved to at the endpoint's
	 * CreateEndpoint ("registry/repository@sha256:…") and when (epoch
	 * seconds); -1 when it has not been resolved (NULL: images are shown
	 * as specified). */
	int (*image_resolved)(void *sources, const char *endpoint, const char *image, char *resolved, size_t size,
			      double *at);
	/* DescribeEndpoint: the last step of a pull of image in progress; -1
	 * when none runs (NULL: never shown). */
	int (*image_pull_step)(void *sources, const char *image, char *step, size_t size);
	/* (host_limits.h) Data for the two hooks below, which belong to the host's
	 * limits rather than to the runtime. */
	void *limits;
	/* CreateEndpoint: would the config's instances, with every endpoint
	 * already holding resources, fit this host? -1 with SageMaker's
	 * ResourceLimitExceeded message (class RESOURCE_LIMIT) when not (NULL:
	 * everything fits). */
	int (*endpoint_fits)(void *limits, const struct endpoint_config *c, struct berth_err *err);
	/* CreateEndpointConfig: does this host offer the instance type? -1 with
	 * the constraint text ("Member must satisfy enum value set: [...]")
	 * when not (NULL: every well-formed type is accepted). */
	int (*instance_type_check)(void *limits, const char *instance_type, struct berth_err *err);
	/* (devices) UpdateEndpoint and UpdateEndpointWeightsAndCapacities: do
	 * the accelerators the change adds (want less have; have NULL for a
	 * blue/green update, whose new fleet runs beside the old) fit what is
	 * free? -1 with ResourceLimitExceeded naming the free devices (NULL:
	 * everything fits). devices.h. */
	int (*devices_fit)(void *limits, const struct variant *want, size_t n_want, const struct variant *have,
			   size_t n_have, struct berth_err *err);
};

struct access;

struct api_ctx {
	struct store *store;
	pthread_mutex_t *lock;
	pthread_cond_t *changed;   /* CLOCK_MONOTONIC condition */
	const char *region;        /* "us-east-1" */
	const char *account;       /* "000000000000" */
	int grace_ms;              /* CreateEndpoint/DeleteEndpoint wait, default 5000 */
	struct api_runtime_hooks runtime;
	struct access *access;     /* who may call through the router (access.h) */
};

#define API_MAX_BODY_BYTES (1u << 20) /* larger control bodies get 413 ValidationException */

/* operation: "CreateModel", … (without "SageMaker."). reply->body must be
 * BERTH_BUF_INIT on entry; the caller frees it. Never fails: every error is
 * rendered into reply. */
void api_handle(struct api_ctx *ctx, const char *operation, const char *body, size_t body_len,
		struct api_reply *reply);

/* Error answers, shared with the rest of berthd; the one place a class
 * (err.h) becomes an HTTP status and a SageMaker error type:
 * {"__type":"TYPE","message":"MESSAGE"} (common/error_json.h: ill-formed
 * UTF-8 in the message becomes U+FFFD). api_reply_error words an error
 * found by the api itself; api_reply_err answers with an error that arose
 * elsewhere (image check, host limits, …) with the class it carries. An
 * INTERNAL error is logged, and its message says that berth, not the
 * request, failed. */
void api_reply_error(struct api_reply *reply, enum berth_err_class cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void api_reply_err(struct api_reply *reply, const struct berth_err *err);

#endif
