/* runtime_internal.h — what the files of runtime/ share (not used outside
 * it): the runtime object, its background workers and the helpers that
 * change an endpoint record under *lock. Its files, lowest first (each
 * calls only those above it in this list):
 *
 *   publish.c     the route table document and its subscribers
 *   status.c      persist an endpoint record's change, then announce it
 *   workers.c     background jobs: spawn, finish, cancel and wait
 *   containers.c  a set of containers: allocate, start/stop in parallel, wait healthy
 *   pull.c        CreateEndpoint's registry images: resolve tags, pull what is not cached
 *   backoff.c     when a failed container is restarted (pure)
 *   health.c      the monitor thread: checks and restarts
 *   update.c      UpdateEndpoint: blue/green roll-out and scaling
 *   lifecycle.c   the create and delete workers; runtime_endpoint_start/stop
 *   async_record.c  InvokeEndpointAsync's records on disk, failures, figures (async_internal.h)
 *   async_run.c   its scheduler and runs
 *   async.c       its queue: submit, resume, drop, stop
 *   ps.c          `berth ps`
 *   runtime.c     the object; what berthd does with its endpoints at start
 *
 * Workers: one detached thread per job (start, stop, update, restart),
 * listed in rt->workers under *lock so a stop can cancel and wait for the
 * others of its endpoint, and runtime_free can wait for all of them. */
#ifndef BERTH_RUNTIME_INTERNAL_H
#define BERTH_RUNTIME_INTERNAL_H

#include <stdbool.h>

#include "clock.h"
#include "buf.h"
#include "registry.h"
#include "resources.h"
#include "runtime.h"

enum worker_kind { WORKER_START, WORKER_STOP, WORKER_UPDATE, WORKER_RESTART };

struct worker {
	struct runtime *rt;
	enum worker_kind kind;
	char *endpoint;
	char *container_id;     /* WORKER_RESTART: the container being restarted */
	bool cancel;            /* set by a stop that overtakes this job */
	struct worker *next;
};

struct health_entry;


struct runtime {
	struct runtime_config cfg;
	struct store *store;
	pthread_mutex_t *lock;
	pthread_cond_t *changed;
	struct worker *workers;  /* guarded by *lock */
	int *watchers;           /* router sockets, guarded by *lock */
	size_t n_watchers;
	struct { runtime_greeting_fn render; void *data; } greetings[RUNTIME_MAX_GREETINGS];
	size_t n_greetings;
	unsigned long long generation;
	/* health.c, guarded by *lock */
	struct health_entry *health;
	bool stopping;
	bool monitor_started;
	pthread_t monitor;
	/* sessions.c, guarded by *lock: the router's stateful session pins */
	struct runtime_session *sessions;
	size_t n_sessions, cap_sessions;
	int sessions_log_fd;        /* STATE_DIR/sessions.log, appended; -1: none open */
	size_t sessions_log_lines;  /* changes in it since the last snapshot */
	/* async.c: the asynchronous inference queue (its own lock) */
	struct async_queue *async;
};

/* async.c (also async_record.c, async_run.c). At start, after the records are resumed (runtime_resume, with
 * *lock held; it takes only the queue's own lock): the queue on disk taken
 * up again. */
void runtime_async_resume(struct runtime *rt);
/* async.c. An endpoint is being deleted (with *lock held): its waiting
 * requests are dropped, each with a failure object "endpoint deleted". */
void runtime_async_drop_endpoint(struct runtime *rt, const char *endpoint);
/* async.c. At stop, without *lock: the scheduler stopped, runs given 2 s. */
void runtime_async_stop(struct runtime *rt);


/* sessions.c. Without *lock, at start: the pins saved in STATE_DIR. */
void runtime_sessions_load(struct runtime *rt);
void runtime_sessions_free(struct runtime *rt);
/* sessions.c. With *lock held: drops pins expired or whose instance is
 * gone, then renders {"op":"sessions","pins":[…]} for a new subscriber. */
int runtime_sessions_render(struct runtime *rt, struct berth_buf *out);

/* status.c. With *lock held: persist e (ownership taken) and tell
 * everyone (broadcast *changed, push the route table). */
void runtime_commit(struct runtime *rt, struct endpoint *e);
/* With *lock held: persist a new status (and reason; with
 * replace_containers, the container list) of endpoint name, and tell
 * everyone. */
void runtime_set_status(struct runtime *rt, const char *name, const char *status, const char *reason,
			const struct endpoint_container *containers, size_t n_containers, bool replace_containers);
/* A copy of e's containers (one spare zeroed entry); NULL on ENOMEM. */
struct endpoint_container *runtime_copy_containers(const struct endpoint *e);

/* pull.c. Without *lock: resolves and pulls the registry images of the
 * models (refreshing tags) and replaces each reference in them by the
 * digest it resolved to; -1 with reason filled when one cannot be. A
 * cancel of w kills a running pull; a pull stopped that way (or by
 * berthd's stop) cancels w, so the endpoint is not marked Failed.
 *
 * The endpoint's pins (what restarts run, what DescribeEndpoint shows) are
 * written at once when pins is NULL (CreateEndpoint); an update passes
 * pins and writes them with runtime_pins_commit only once its containers
 * take the traffic, so a failed update leaves the running containers'
 * pins as they were. */
struct runtime_pins {
	char **image;                 /* the references as the models name them */
	struct registry_image *img;   /* what each resolved to */
	size_t n;
};
int runtime_pull_images(struct runtime *rt, struct worker *w, struct model *const *models, size_t n_models,
			struct runtime_pins *pins, struct berth_buf *reason);
void runtime_pins_commit(struct runtime *rt, const char *endpoint, const struct runtime_pins *pins);
void runtime_pins_free(struct runtime_pins *pins);
/* pull.c. m's registry images replaced by what they resolved to at the
 * endpoint's CreateEndpoint (its pins), where it has them. */
void runtime_pin_model(struct runtime *rt, const char *endpoint, struct model *m);

/* workers.c. With *lock held: adds a worker and starts its thread running fn(w).
 * container_id may be NULL. Returns the worker or NULL. */
struct worker *runtime_worker_spawn(struct runtime *rt, const char *endpoint, enum worker_kind kind,
				    const char *container_id, void *(*fn)(void *));
/* With *lock held: removes w, frees it, broadcasts. */
void runtime_worker_done(struct worker *w);
/* With *lock held: cancels every worker of endpoint but `self` whose kind
 * is in kinds (bit mask of 1 << kind) and waits until they are gone. */
void runtime_workers_cancel_wait(struct runtime *rt, const char *endpoint, unsigned kinds, const struct worker *self);

/* containers.c. Runs the containers' jobs in parallel threads and waits. */
int runtime_start_containers(struct runtime *rt, const char *endpoint, const struct endpoint_container *c,
			     const struct container_def *const *defs, size_t n, struct berth_buf *reason);
void runtime_stop_containers(struct runtime *rt, const char *endpoint, const struct endpoint_container *c,
			     size_t n);
/* Stops and removes the containers in parallel, then their cgroups. */
void runtime_stop_all(struct runtime *rt, const char *endpoint, const struct endpoint_container *c, size_t n);
/* How long a started container may take to pass its first ping health
 * check: its variant's ContainerStartupHealthCheckTimeoutInSeconds, else
 * berthd's configured health timeout. */
long long runtime_startup_timeout_ms(const struct runtime_config *cfg, const struct endpoint_container *c);
/* Polls /ping of every container until all answer 200 (0), or one exits,
 * a container's startup deadline (runtime_startup_timeout_ms) passes or w
 * is cancelled (-1, reason filled). */
int runtime_wait_healthy(struct runtime *rt, struct worker *w, const struct endpoint_container *c, size_t n,
			 struct berth_buf *reason);
/* Appends the last log lines of each container to reason. */
void runtime_append_logs(const struct endpoint_container *c, size_t n, struct berth_buf *reason);


/* Allocates the containers of `count` new instances of variant v (model
 * m), numbered from first_instance, marked pending; appends them to *out
 * (and their definitions to *defs). */
int runtime_alloc_instances(struct runtime *rt, const struct variant *v, const struct model *m,
			    long long first_instance, long long count, bool pending, struct endpoint_container **out,
			    const struct container_def ***defs, size_t *n, struct berth_err *err);
/* (devices) The same for a create that replaces the containers endpoint
 * `replacing` recorded before (a create resumed after a crash): the
 * devices those records hold may be taken again. Each instance of a GPU
 * type reserves its devices here (devices.h), recorded in its containers. */
int runtime_alloc_instances_replacing(struct runtime *rt, const char *replacing, const struct variant *v,
				      const struct model *m, long long first_instance, long long count, bool pending,
				      struct endpoint_container **out, const struct container_def ***defs, size_t *n,
				      struct berth_err *err);
/* Frees n models (entries may be NULL) and the array. */
void runtime_models_free(struct model **models, size_t n);

/* health.c */
#define HEALTH_STATE_INTERVAL_MS 500      /* shim state (is the process alive?) */
#define HEALTH_PING_INTERVAL_MS 5000      /* GET /ping */
#define HEALTH_PING_FAILURES 3            /* consecutive failures = unhealthy */
#define HEALTH_RESTART_STOP_MS 2000       /* SIGTERM → SIGKILL when replacing a failed container */
void health_start(struct runtime *rt);     /* with *lock held */
void health_stop(struct runtime *rt);      /* without *lock */
void health_forget(struct runtime *rt, const char *container_id);   /* with *lock held */
/* Fills per-container health facts for `berth ps` (with *lock held). */
void health_describe(struct runtime *rt, const char *container_id, long long *healthy_for_ms, int *failures);

/* update.c: the worker of an endpoint in status Updating. */
void *runtime_update_worker(void *arg);
/* At start-up, with *lock held: what an interrupted update left behind. */
void runtime_update_resume(struct runtime *rt, const char *endpoint);

#endif
