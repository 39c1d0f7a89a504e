/* images.c — `berth images`, `berth pull REF`, `berth images prune`: the
 * registry image cache (registry.h) seen with the models that use it. */
#include "runtime_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "image.h"
#include "json.h"
#include "log.h"
#include "reference.h"
#include "registry.h"

/* Which model uses which digest: pairs[2k] = digest, pairs[2k+1] = model
 * name (owned, NULL-terminated). With *lock held. */
static char **digest_users(struct runtime *rt, struct registry *reg)
{
	size_t cap = 16, n = 0;
	char **pairs = calloc(cap + 1, sizeof(char *));
	for (size_t i = 0; pairs && i < store_count_models(rt->store); i++) {
		const struct model *m = store_model_at(rt->store, i);
		for (size_t k = 0; k < m->n_containers; k++) {
			struct registry_image img;
			if (!image_reference_is(m->containers[k].image) ||
			    registry_lookup(reg, m->containers[k].image, &img) < 0)
				continue;
			if (n + 2 > cap) {
				char **grown = realloc(pairs, (cap * 2 + 1) * sizeof(char *));
				if (grown == NULL)
					continue;
				pairs = grown;
				cap *= 2;
			}
			pairs[n++] = strdup(img.digest);
			pairs[n++] = strdup(m->name);
			pairs[n] = NULL;
		}
	}
	return pairs;
}

static void free_pairs(char **pairs)
{
	for (size_t i = 0; pairs && pairs[i]; i++)
		free(pairs[i]);
	free(pairs);
}

static void pull(struct registry *reg, yajl_val request, struct berth_buf *out)
{
	const char *image = json_get_string(request, "image");
	if (image == NULL || !image_reference_is(image)) {
		json_answer_error(out, "berth pull takes a registry reference: [registry/]repository[:tag][@sha256:digest]");
		return;
	}
	struct registry_image img;
	struct berth_err err;
	long long t0 = clock_now_ms();
	log_info("pull %s asked on the admin socket", image);
	if (registry_fetch(reg, image, &(struct registry_fetch_opts){ .refresh = true }, &img, &err) < 0) {
		json_answer_error(out, err.msg);
		return;
	}
	yajl_gen g = json_gen_new();
	if (g && yajl_gen_map_open(g) == yajl_gen_status_ok && json_gen_kv_bool(g, "ok", true) == 0 &&
	    json_gen_kv_str(g, "image", image) == 0 && json_gen_kv_str(g, "resolved", img.resolved) == 0 &&
	    json_gen_kv_str(g, "digest", img.digest) == 0 && json_gen_kv_bool(g, "pulled", img.pulled) == 0 &&
	    json_gen_kv_int(g, "ms", clock_now_ms() - t0) == 0 && yajl_gen_map_close(g) == yajl_gen_status_ok)
		json_gen_finish(g, out); /* frees g */
	else if (g)
		yajl_gen_free(g);
}

void runtime_images(struct runtime *rt, const char *op, yajl_val request, struct berth_buf *out)
{
	struct registry *reg = rt->cfg.images ? rt->cfg.images->registry : NULL;
	if (reg == NULL) {
		json_answer_error(out, "this berthd has no registry image cache");
		return;
	}
	if (strcmp(op, "pull") == 0) {
		pull(reg, request, out);
		return;
	}
	struct berth_err err;
	pthread_mutex_lock(rt->lock);
	char **pairs = digest_users(rt, reg);
	pthread_mutex_unlock(rt->lock);
	if (pairs == NULL) {
		json_answer_error(out, "out of memory");
		return;
	}
	if (strcmp(op, "images") == 0) {
		struct berth_buf list = BERTH_BUF_INIT;
		if (registry_list(reg, (const char *const *)pairs, &list, &err) < 0)
			json_answer_error(out, err.msg);
		else
			buf_printf(out, "{\"ok\":true,\"images\":%.*s}", (int)list.len, list.data ? list.data : "[]");
		buf_free(&list);
	} else {
		/* keep: every digest a model uses (the even entries) */
		size_t n = 0;
		while (pairs[n])
			n++;
		const char **keep = calloc(n / 2 + 1, sizeof(char *));
		size_t removed = 0;
		uint64_t freed = 0;
		for (size_t i = 0; keep && i + 1 < n; i += 2)
			keep[i / 2] = pairs[i];
		if (keep == NULL)
			json_answer_error(out, "out of memory");
		else if (registry_prune(reg, keep, &removed, &freed, &err) < 0)
			json_answer_error(out, err.msg);
		else
			buf_printf(out, "{\"ok\":true,\"removed\":%zu,\"bytes\":%llu}", removed, (unsigned long long)freed);
		free(keep);
	}
	free_pairs(pairs);
}
