/* paths.h — where berthd keeps things in its state directory, for the
 * folders that need a path without the module that fills it. */
#ifndef BERTH_PATHS_H
#define BERTH_PATHS_H

/* STATE/mme/ENDPOINT: the multi-model cache of one endpoint, mounted at
 * /opt/ml/models in its containers (caller frees; NULL on ENOMEM). */
char *state_path_mme_endpoint(const char *state_dir, const char *endpoint);

/* STATE/containers/ID: one container's bundle, logs, mounts and what it
 * holds of the artifact cache (artifact_cache.h); STATE/containers when
 * id is NULL. Caller frees; NULL on ENOMEM. */
char *state_path_container(const char *state_dir, const char *id);

#endif
