/* pull.c — CreateEndpoint's image pulls: every registry reference of the
 * endpoint's models is resolved (the tag asked of the registry now, as
 * SageMaker resolves it at CreateEndpoint) and pulled when its digest is
 * not cached, before any container starts. Runs in the create worker, so
 * berthd's control loop never waits for a registry. */
#include "runtime_internal.h"

#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "log.h"
#include "reference.h"
#include "registry.h"

/* A DeleteEndpoint (or berthd's stop) cancels the worker: its pull ends. */
static bool worker_cancelled(void *ctx)
{
	struct worker *w = ctx;
	pthread_mutex_lock(w->rt->lock);
	bool c = w->cancel;
	pthread_mutex_unlock(w->rt->lock);
	return c;
}

static int pins_add(struct runtime_pins *p, const char *image, const struct registry_image *img)
{
	char **names = realloc(p->image, (p->n + 1) * sizeof(char *));
	if (names == NULL)
		return -1;
	p->image = names;
	struct registry_image *imgs = realloc(p->img, (p->n + 1) * sizeof(*imgs));
	if (imgs == NULL)
		return -1;
	p->img = imgs;
	if ((p->image[p->n] = strdup(image)) == NULL)
		return -1;
	p->img[p->n++] = *img;
	return 0;
}

void runtime_pins_free(struct runtime_pins *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->image[i]);
	free(p->image);
	free(p->img);
	*p = (struct runtime_pins){ 0 };
}

void runtime_pins_commit(struct runtime *rt, const char *endpoint, const struct runtime_pins *p)
{
	struct registry *reg = rt->cfg.images ? rt->cfg.images->registry : NULL;
	for (size_t i = 0; reg && i < p->n; i++)
		if (registry_pin(reg, endpoint, p->image[i], &p->img[i]) < 0)
			log_warn("endpoint %s: cannot record that %s is %s; a restart resolves it again", endpoint,
				 p->image[i], p->img[i].resolved);
}

/* Every container of the models naming a resolved reference runs its digest. */
static int rewrite(struct model *const *models, size_t n_models, const struct runtime_pins *p)
{
	for (size_t v = 0; v < n_models; v++)
		for (size_t k = 0; models[v] && k < models[v]->n_containers; k++)
			for (size_t i = 0; i < p->n; i++) {
				struct container_def *def = &models[v]->containers[k];
				if (strcmp(def->image, p->image[i]) != 0)
					continue;
				char *pinned = strdup(p->img[i].resolved);
				if (pinned == NULL)
					return -1;
				free(def->image);
				def->image = pinned;
				break;
			}
	return 0;
}

int runtime_pull_images(struct runtime *rt, struct worker *w, struct model *const *models, size_t n_models,
			struct runtime_pins *pins, struct berth_buf *reason)
{
	const char *endpoint = w->endpoint;
	struct registry *reg = rt->cfg.images ? rt->cfg.images->registry : NULL;
	struct runtime_pins now = { 0 };
	struct runtime_pins *resolved = pins ? pins : &now;
	for (size_t v = 0; v < n_models; v++) {
		for (size_t k = 0; models[v] && k < models[v]->n_containers; k++) {
			const struct container_def *def = &models[v]->containers[k];
			if (!image_reference_is(def->image))
				continue;
			/* the same image twice in one endpoint is resolved once */
			bool seen = false;
			for (size_t pv = 0; pv <= v && !seen; pv++)
				for (size_t pk = 0; models[pv] && pk < (pv == v ? k : models[pv]->n_containers) && !seen; pk++)
					seen = strcmp(models[pv]->containers[pk].image, def->image) == 0;
			if (seen)
				continue;
			struct berth_err err;
			struct registry_image img;
			struct registry_fetch_opts opts = { .refresh = true, .cancelled = worker_cancelled, .cancel_ctx = w };
			long long t0 = clock_now_ms();
			int rc = reg ? registry_fetch(reg, def->image, &opts, &img, &err)
				     : image_check(rt->cfg.images, def->image, &err);
			if (rc < 0 && err.cls == BERTH_ERR_UNAVAILABLE) {
				/* stopped, not failed: berthd's stop or a delete; a
				 * restarted berthd creates it again */
				pthread_mutex_lock(rt->lock);
				w->cancel = true;
				pthread_mutex_unlock(rt->lock);
				log_info("endpoint %s: %s", endpoint, err.msg);
			}
			if (rc < 0) {
				buf_printf(reason, "Container %s could not be started: %s", def->hostname, err.msg);
				runtime_pins_free(&now);
				return -1;
			}
			log_info("endpoint %s: container %s: image %s is %s (%s in %lld ms)", endpoint, def->hostname,
				 def->image, img.resolved, img.pulled ? "pulled" : "cached", clock_now_ms() - t0);
			if (reg && pins_add(resolved, def->image, &img) < 0) {
				buf_append_str(reason, "out of memory");
				runtime_pins_free(&now);
				return -1;
			}
		}
	}
	/* this endpoint's containers start from what the tags meant now */
	int r = rewrite(models, n_models, resolved);
	if (r < 0)
		buf_append_str(reason, "out of memory");
	if (r == 0 && pins == NULL)
		runtime_pins_commit(rt, endpoint, &now);
	runtime_pins_free(&now);
	return r;
}

void runtime_pin_model(struct runtime *rt, const char *endpoint, struct model *m)
{
	struct registry *reg = rt->cfg.images ? rt->cfg.images->registry : NULL;
	for (size_t k = 0; reg && m && k < m->n_containers; k++) {
		struct container_def *def = &m->containers[k];
		struct registry_image img;
		char *pinned;
		if (!image_reference_is(def->image) || registry_pinned(reg, endpoint, def->image, &img) < 0 ||
		    (pinned = strdup(img.resolved)) == NULL)
			continue;
		free(def->image);
		def->image = pinned;
	}
}


