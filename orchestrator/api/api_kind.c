/* api_kind.c — ListModels, ListEndpointConfigs, ListEndpoints and
 * DeleteModel, DeleteEndpointConfig, DeleteEndpoint: one core, driven by
 * each kind's struct api_kind (api_internal.h). */
#include <stdlib.h>

#include "api_internal.h"
#include "log.h"

void api_list_kind(struct api_request *r, const struct api_kind *k)
{
	const struct store *s = r->ctx->store;
	size_t n = k->count(s);
	struct list_item *items = calloc(n ? n : 1, sizeof(*items));
	if (!items) {
		api_reply_nomem(r->reply);
		return;
	}
	for (size_t i = 0; i < n; i++)
		k->item_at(s, i, &items[i]);
	api_list_run(r, k->endpoints, k->list_member, items, n, k->gen_summary);
	free(items);
}

void api_delete_kind(struct api_request *r, const struct api_kind *k)
{
	const char *name = req_name(r, r->root, k->name_member, k->name_path);
	if (req_failed(r))
		return;
	if (!k->exists(r->ctx->store, name)) {
		api_reply_not_found(r, k->what, k->arn_kind, name);
		return;
	}
	if (k->remove) {
		k->remove(r, name);
		return;
	}
	struct berth_err err = { 0 };
	if (k->store_delete(r->ctx->store, name, &err) < 0) {
		api_reply_not_saved(r->reply, &err);
		return;
	}
	log_info("deleted %s %s", k->what, name);
	api_reply_empty(r->reply);
}
