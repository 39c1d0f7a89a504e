/* pull.c — CreateEndpoint's image pulls: every registry reference of the
 * endpoint's models is resolved (the tag asked of the registry now, as
 * SageMaker resolves it at CreateEndpoint) and pulled when its digest is
 * not cached, before any container starts. Runs in the create worker, so
 * berthd's control loop never waits for a registry. */
#include "runtime_internal.h"

#include <string.h>

#include "image.h"
#include "log.h"
#include "reference.h"
#include "registry.h"

struct pull_progress {
	const char *endpoint;
	const char *hostname;
};

static void on_progress(void *user_data, const char *line)
{
	(void)user_data; /* registry.c logs each line already */
	(void)line;
}

int runtime_pull_images(struct runtime *rt, const char *endpoint, struct model *const *models, size_t n_models,
			struct berth_buf *reason)
{
	struct registry *reg = rt->cfg.images ? rt->cfg.images->registry : NULL;
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
			struct pull_progress p = { endpoint, def->hostname };
			long long t0 = clock_now_ms();
			int rc = reg ? registry_fetch(reg, def->image, true, on_progress, &p, &img, &err)
				     : image_check(rt->cfg.images, def->image, &err);
			if (rc < 0) {
				buf_printf(reason, "Container %s could not be started: %s", def->hostname, err.msg);
				return -1;
			}
			log_info("endpoint %s: container %s: image %s is %s (%s in %lld ms)", endpoint, def->hostname,
				 def->image, img.resolved, img.pulled ? "pulled" : "cached", clock_now_ms() - t0);
		}
	}
	return 0;
}
