/* mme.h — multi-model endpoints, berthd's side: the per-endpoint
 * model cache STATE/mme/ENDPOINT/N/model (mounted read-only in the
 * container at /opt/ml/models), loading on the router's request
 * (proto_control.h kind 4, mme_load), recency (kind 5, mme_touch), LRU
 * eviction and the listing `berth describe` shows (mme_list).
 *
 * mme_load: validates TargetModel, checks the endpoint (exists, InService,
 * MultiModel), maps TARGET to N = first 24 hex digits of
 * sha256(TARGET "\n" VERSION) (VERSION = ETag or mtime/size/inode, so a
 * changed object gets a new N on its next load), fetches it (objstore.h),
 * unpacks it (unpack_once: bounded, no path escape), and POSTs /models to
 * every serving container of the endpoint. Single-flight per (endpoint,
 * TARGET): one per-model state (loading / loaded / failed) under a
 * per-endpoint mutex and condition variable; berthd's global lock is only
 * taken briefly to read the endpoint record. A loaded TARGET answers at
 * once (no store access).
 *
 * Eviction (least recently used first; recency from loads and mme_touch):
 * on 507 from POST /models (then the load is retried), when an instance's
 * cgroup memory passes high_water x its limit (after each load and every
 * 2 s; one model per check), and when STATE/mme/ENDPOINT holds more than disk_bytes. Eviction =
 * DELETE /models/N (404 is fine), remove N's directory, and send
 * {"op":"mme_evicted","endpoint":E,"model":N} to every route watcher.
 *
 *   mme_list → {"op":"mme_list","endpoint":"E"}
 *            ← {"ok":true,"models":[{"model":N,"target":T,"bytes":B,"state":"loaded",
 *                "loaded_at":EPOCH,"last_used":EPOCH,"invocations":C}]}
 *
 * Replies to mme_load are as proto_control.h kind 4 describes; codes:
 *   400 ValidationError  bad TargetModel, unknown / non-MME / not InService
 *                        endpoint, object missing (SageMaker's "Failed to
 *                        download model data(bucket: B, key: K). …"),
 *                        corrupt, unsafe or over-size artifact
 *   424 ModelError       the container answered POST /models with an error
 *                        (original_status / original_message), or 507 with
 *                        nothing left to evict
 *   503 ServiceUnavailable  the object store or the container cannot be reached
 *   500 InternalFailure  berth's own fault (disk, memory) */
#ifndef BERTH_MME_H
#define BERTH_MME_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yajl/yajl_tree.h>

#include "buf.h"
#include "err.h"
#include "objstore.h"

#define MME_TARGET_MAX 1024
#define MME_NAME_HEX 24
#define MME_DEFAULT_MAX_MODEL_BYTES (10ULL << 30)
#define MME_DEFAULT_DISK_BYTES (100ULL << 30)
#define MME_DEFAULT_HIGH_WATER 0.9
#define MME_LOAD_TIMEOUT_MS 360000

struct mme_config {
	const char *state_dir;
	const char *account;
	struct objstore_config store;
	uint64_t max_model_bytes;   /* unpacked (and downloaded) size of one artifact */
	uint64_t disk_bytes;        /* STATE/mme/ENDPOINT; 0: unbounded */
	double high_water;          /* fraction of the instance's memory limit; 0: not checked */
	int load_timeout_ms;        /* POST /models */
};

struct mme;
struct store;

/* Sends one line (e.g. {"op":"mme_evicted",…}) to every router; the
 * runtime's runtime_send_to_watchers, wired by main.c. */
typedef void (*mme_notify_fn)(void *data, const char *doc, size_t len);

struct mme *mme_new(const struct mme_config *cfg, struct store *store, pthread_mutex_t *lock,
		    struct berth_err *err);
/* Gives the routers' notifier (for mme_evicted pushes) and starts the
 * memory monitor. */
void mme_attach(struct mme *m, mme_notify_fn notify, void *notify_data);
/* Stops the monitor and forgets the notifier (before runtime_free). */
void mme_detach(struct mme *m);
/* Waits (≤ 5 s) for control ops in progress; frees. */
void mme_free(struct mme *m);

/* The control connection's ops (reply: one JSON line, without newline). */
void mme_handle_load(struct mme *m, yajl_val req, struct berth_buf *reply);
void mme_handle_touch(struct mme *m, yajl_val req);
void mme_handle_list(struct mme *m, yajl_val req, struct berth_buf *reply);
/* Endpoint deleted (without berthd's lock): forget its models, remove
 * STATE/mme/ENDPOINT. m may be NULL. */
void mme_forget_endpoint(struct mme *m, const char *endpoint);


/* ---- exposed for unit tests ---- */
/* 0 when TARGET is a relative path without "..", NUL or control
 * characters, ≤ MME_TARGET_MAX; else -1 with a message for the user. */
int mme_validate_target(const char *target, size_t len, struct berth_err *err);
void mme_model_name(const char *target, const char *version, char out[MME_NAME_HEX + 1]);
struct mme_lru_item {
	long long last_used;
	bool evictable;
};
/* Index of the least recently used evictable item, -1 when none. */
long mme_lru_pick(const struct mme_lru_item *items, size_t n);

#endif
