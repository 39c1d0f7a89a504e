/* runtime.h — endpoint lifecycles: turns an endpoint record into running
 * containers (image, artifact, OCI bundle, one shim each, started in
 * parallel), health-checks them to InService or Failed, stops them on
 * delete, re-adopts running shims after a berthd restart, and publishes
 * the route table to subscribed routers.
 *
 * Locking: every function that touches the store runs with *lock held;
 * slow work (unpacking, spawning, pinging, stopping) runs in worker
 * threads without it. Status changes are persisted, then *changed is
 * broadcast and the route table pushed. */
#ifndef BERTH_RUNTIME_H
#define BERTH_RUNTIME_H

#include <pthread.h>

#include <yajl/yajl_tree.h>

#include "buf.h"
#include "err.h"
#include "runtime_config.h"
#include "store.h"


struct runtime;
struct mme;
struct limits;
struct seccomp_profile;

struct runtime *runtime_new(const struct runtime_config *cfg, struct store *store, pthread_mutex_t *lock,
			    pthread_cond_t *changed, struct berth_err *err);
/* Waits for running workers to finish their current step; containers keep running. */
void runtime_free(struct runtime *rt);

/* The endpoint NAME was just persisted as Creating or Updating (start its
 * containers / roll the update out) or Deleting (stop them, then remove the
 * record), in a background worker; with *lock held, never blocks. The
 * worker persists the outcome, broadcasts *changed and pushes routes. */
void runtime_endpoint_start(struct runtime *rt, const char *name);
void runtime_endpoint_stop(struct runtime *rt, const char *name);
/* With *lock held: push the route table to every subscribed router. */
void runtime_push_routes(struct runtime *rt);

/* At start-up, with *lock held: re-adopt InService endpoints as they are
 * (running containers untouched; those that died meanwhile are restarted
 * by the health monitor, health.c, which this starts), resume Creating and
 * Deleting ones, and clean up then roll out again interrupted updates
 * (update.c). */
void runtime_resume(struct runtime *rt);

/* Subscribes a router (proto_control.h kind 2): sends the greetings (below),
 * then the current table and every later one. Takes ownership of sock.
 * Call with *lock held. */
void runtime_add_route_watcher(struct runtime *rt, int sock);
/* A document every new subscriber gets before its first route table (the
 * router's settings: access keys, TLS material), rendered by the layer
 * above (main.c wires them). render fills out with one message and returns
 * 0, or -1 (the subscriber is then dropped and will retry). At most
 * RUNTIME_MAX_GREETINGS; set before any router subscribes. */
#define RUNTIME_MAX_GREETINGS 4
typedef int (*runtime_greeting_fn)(void *data, struct berth_buf *out);
int runtime_add_watch_greeting(struct runtime *rt, runtime_greeting_fn render, void *data);
/* The route table document, with *lock held (exposed for tests). */
int runtime_render_routes(struct runtime *rt, struct berth_buf *out);
/* (mme) Sends one line (e.g. {"op":"mme_evicted",…}) to every route
 * watcher, between tables. Takes *lock itself. */
void runtime_send_to_watchers(struct runtime *rt, const char *doc, size_t len);
/* (mme) The multi-model cache given in the config (may be NULL). */
struct mme *runtime_mme(struct runtime *rt);
/* proto_control.h kind 10: the router's "session_pin" (a stateful session
 * and the instance serving it) or "session_unpin"; kept (at most
 * RUNTIME_SESSIONS_MAX, each until its expiry or its instance goes) and
 * persisted at once (sessions.c: a line appended to STATE_DIR/sessions.log,
 * folded into sessions.json now and then), then given to every router
 * that subscribes ({"op":"sessions",…} after the greetings). Takes *lock
 * itself; no answer. */
#define RUNTIME_SESSIONS_MAX 10000
void runtime_session_handle(struct runtime *rt, const char *op, yajl_val req);
/* (async) proto_control.h kind 11, the router's "async_submit"
 * (InvokeEndpointAsync, already authenticated by the router): checks it
 * against the endpoint (its AsyncInferenceConfig, its queue's bound
 * runtime_config.async_queue_max), writes it durably to
 * STATE_DIR/async/ID.json and only then fills out with
 * {"ok":true,"id","inference_id","output","failure"}; or
 * {"ok":false,"status","code","message"}. The request then runs in the
 * background (async_run.c). Takes *lock itself. */
void runtime_async_submit(struct runtime *rt, yajl_val req, struct berth_buf *out);
/* (async) The queues as one message {"op":OP,"now":EPOCH_S,"endpoints":[{"endpoint",
 * "backlog" (waiting),"running","instances" (serving),"oldest" (epoch s of the
 * oldest waiting, 0 none)}]}: pushed to routers as "async_stats" (their
 * /metrics) and answered on the admin socket (berth describe). Takes the
 * locks itself. */
int runtime_async_render_stats(struct runtime *rt, const char *op, struct berth_buf *out);
#define RUNTIME_ASYNC_QUEUE_MAX_DEFAULT 1000
#define RUNTIME_ASYNC_MAX_BYTES_DEFAULT (100ULL << 20)
/* proto_control.h kind 3; takes *lock itself. */
int runtime_ps(struct runtime *rt, struct berth_buf *out);
/* proto_control.h kind 8 (images.c): the registry image cache, for the
 * admin socket. op "images": the cache with the models using each image;
 * "pull" (request member "image"): resolve and pull now; "images_prune":
 * remove what no model uses. Fills out with one JSON object; takes *lock
 * itself, never across a pull. */
void runtime_images(struct runtime *rt, const char *op, yajl_val request, struct berth_buf *out);
/* proto_control.h kind 9 (artifacts.c): the model data cache, for the
 * admin socket. op "artifacts": every entry with the endpoints whose
 * containers hold it; "artifacts_prune": remove what none holds. Fills
 * out with one JSON object; takes *lock itself, never across removal. */
void runtime_artifacts(struct runtime *rt, const char *op, struct berth_buf *out);
/* (artifacts.c) Removes cache entries no container holds past
 * cfg.artifact_cache_max_bytes, least recently used first; nothing when a
 * container start holds the cache (the next call does it). Without *lock:
 * after containers are removed, and once berthd has resumed. */
void runtime_trim_artifacts(struct runtime *rt);

#endif
