/* store.h — the state store: every model, endpoint config and endpoint,
 * one JSON document per resource under STATE_DIR/{models,endpoint-configs,
 * endpoints}/NAME.json, written with fs_write_atomic before any change is
 * acknowledged. In memory, resources live in name-sorted arrays.
 *
 * Not thread-safe: the caller holds the lock that guards it (berthd's
 * context mutex). Getters return pointers owned by the store, valid until
 * the next change to that resource; copy (resources.h *_dup) to keep. */
#ifndef BERTH_STORE_H
#define BERTH_STORE_H

#include <stddef.h>

#include "err.h"
#include "resources.h"

struct store;

/* Opens (creating the directories) and loads every document. A corrupt
 * document is logged, renamed to NAME.json.corrupt and skipped: berthd
 * still starts. */
struct store *store_open(const char *state_dir, struct berth_err *err);
void store_close(struct store *s);
const char *store_dir(const struct store *s);

/* put_* take ownership of the value and persist it before returning 0
 * (replacing a resource of the same name); on failure nothing changed in
 * memory or on disk and the value is freed. delete_* persist the removal. */
int store_put_model(struct store *s, struct model *m, struct berth_err *err);
const struct model *store_get_model(const struct store *s, const char *name);
int store_delete_model(struct store *s, const char *name, struct berth_err *err);
size_t store_count_models(const struct store *s);
const struct model *store_model_at(const struct store *s, size_t i);   /* name order */

int store_put_endpoint_config(struct store *s, struct endpoint_config *c, struct berth_err *err);
const struct endpoint_config *store_get_endpoint_config(const struct store *s, const char *name);
int store_delete_endpoint_config(struct store *s, const char *name, struct berth_err *err);
size_t store_count_endpoint_configs(const struct store *s);
const struct endpoint_config *store_endpoint_config_at(const struct store *s, size_t i);

int store_put_endpoint(struct store *s, struct endpoint *e, struct berth_err *err);
const struct endpoint *store_get_endpoint(const struct store *s, const char *name);
int store_delete_endpoint(struct store *s, const char *name, struct berth_err *err);
size_t store_count_endpoints(const struct store *s);
const struct endpoint *store_endpoint_at(const struct store *s, size_t i);

#endif
