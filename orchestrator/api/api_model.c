/* api_model.c — CreateModel, DescribeModel, and the model's api_kind entry
 * for ListModels and DeleteModel (api_kind.c).
 *
 * Hostnames: a PrimaryContainer is always "primary" (SageMaker ignores a
 * ContainerHostname given there, and names it so in its messages);
 * Containers without hostnames get "container-1", "container-2", … by
 * position (SageMaker: "a unique name is automatically assigned based on
 * the position"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "api_internal.h"
#include "json.h"
#include "log.h"
#include "names.h"

#define EXECUTION_ROLE_ARN_MIN 20
#define EXECUTION_ROLE_ARN_MAX 2048
#define MODEL_DATA_URL_PATTERN "^(https|s3)://([^/]+)/?(.*)$|^file:///(.*)$"

static bool model_data_url_ok(const char *s)
{
	const char *rest = NULL;
	if (strncmp(s, "s3://", 5) == 0)
		rest = s + 5;
	else if (strncmp(s, "https://", 8) == 0)
		rest = s + 8;
	else if (strncmp(s, "file:///", 8) == 0)
		return true;
	return rest && *rest && *rest != '/';
}

static char *path_of(const char *prefix, const char *member)
{
	char *p = NULL;
	return asprintf(&p, "%s.%s", prefix, member) < 0 ? NULL : p;
}

/* Decodes one ContainerDefinition at prefix ("primaryContainer",
 * "containers.3") into out, adding Environment bytes to *env_bytes.
 * Allocation failures are reported through *nomem. */
static void decode_container(struct api_request *r, yajl_val c, const char *prefix, struct container_def *out,
			     size_t *env_bytes, bool *nomem)
{
	static const char *const modes[] = { "SingleModel", "MultiModel", NULL };
	_cleanup_free_ char *p_host = path_of(prefix, "containerHostname");
	_cleanup_free_ char *p_image = path_of(prefix, "image");
	_cleanup_free_ char *p_url = path_of(prefix, "modelDataUrl");
	_cleanup_free_ char *p_env = path_of(prefix, "environment");
	_cleanup_free_ char *p_mode = path_of(prefix, "mode");
	_cleanup_free_ char *p_image_config = path_of(prefix, "imageConfig");
	if (!p_host || !p_image || !p_url || !p_env || !p_mode || !p_image_config) {
		*nomem = true;
		return;
	}

	const char *host = req_string(r, c, "ContainerHostname", p_host, false);
	if (host) {
		check_length(r, json_get(c, "ContainerHostname"), host, p_host, 0, HOSTNAME_MAX_LEN);
		if (!hostname_matches_pattern(host))
			req_invalid(r, json_get(c, "ContainerHostname"), p_host,
				    "Member must satisfy regular expression pattern: %s", HOSTNAME_PATTERN);
		out->hostname = strdup(host);
		out->hostname_given = true;
	}
	/* SageMaker also accepts a ModelPackageName instead of an Image; berth
	 * runs images, so Image is required here. */
	const char *image = req_string(r, c, "Image", p_image, true);
	if (image) {
		yajl_val v = json_get(c, "Image");
		check_length(r, v, image, p_image, 0, IMAGE_MAX_LEN);
		bool ok = *image != '\0';
		for (const char *s = image; *s; s++)
			if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v')
				ok = false;
		if (!ok)
			req_invalid(r, v, p_image, "Member must satisfy regular expression pattern: [\\S]+");
		out->image = strdup(image);
	}
	const char *url = req_string(r, c, "ModelDataUrl", p_url, false);
	if (url) {
		yajl_val v = json_get(c, "ModelDataUrl");
		check_length(r, v, url, p_url, 0, MODEL_DATA_URL_MAX_LEN);
		if (!model_data_url_ok(url))
			req_invalid(r, v, p_url, "Member must satisfy regular expression pattern: %s",
				    MODEL_DATA_URL_PATTERN);
		out->model_data_url = strdup(url);
	}
	const char *mode = req_string(r, c, "Mode", p_mode, false);
	if (mode) {
		check_enum(r, json_get(c, "Mode"), mode, p_mode, modes);
		out->mode = strdup(mode);
	}
	/* MultiModelConfig: berth's multi-model containers always cache their
	 * models (loaded on first use, evicted least recently used); Disabled
	 * never gets here: api_unsupported.c refuses it */
	static const char *const cache_settings[] = { "Enabled", "Disabled", NULL };
	_cleanup_free_ char *p_mmc = path_of(prefix, "multiModelConfig");
	_cleanup_free_ char *p_cache = path_of(prefix, "multiModelConfig.modelCacheSetting");
	if (!p_mmc || !p_cache) {
		*nomem = true;
		return;
	}
	yajl_val mmc = req_object(r, c, "MultiModelConfig", p_mmc, false);
	if (mmc) {
		out->multi_model_config = true;
		const char *cache = req_string(r, mmc, "ModelCacheSetting", p_cache, false);
		if (cache && check_enum(r, json_get(mmc, "ModelCacheSetting"), cache, p_cache, cache_settings))
			out->model_cache_enabled = strcmp(cache, "Enabled") == 0;
	}
	/* RepositoryAccessMode: berthd pulls with its own registry settings
	 * either way (RepositoryAuthConfig is refused, api_unsupported.c) */
	static const char *const access_modes[] = { "Platform", "Vpc", NULL };
	yajl_val image_config = req_object(r, c, "ImageConfig", p_image_config, false);
	if (image_config) {
		_cleanup_free_ char *p_access = path_of(p_image_config, "repositoryAccessMode");
		if (!p_access) {
			*nomem = true;
			return;
		}
		const char *access = req_string(r, image_config, "RepositoryAccessMode", p_access, true);
		if (access)
			check_enum(r, json_get(image_config, "RepositoryAccessMode"), access, p_access, access_modes);
	}

	yajl_val env = req_object(r, c, "Environment", p_env, false);
	if (env && env->u.object.len > 0) {
		size_t n = env->u.object.len;
		if (n > ENV_MAX_ENTRIES)
			req_invalid(r, env, p_env, "Member must have length less than or equal to %d", ENV_MAX_ENTRIES);
		bool bad_key_pattern = false, bad_key_length = false, bad_value_length = false;
		out->env = calloc(n, sizeof(*out->env));
		if (!out->env) {
			*nomem = true;
			return;
		}
		out->n_env = n;
		for (size_t i = 0; i < n; i++) {
			const char *key = env->u.object.keys[i];
			yajl_val value = env->u.object.values[i];
			if (!YAJL_IS_STRING(value)) {
				req_serialization(r, "'%s' values must be strings; '%s' is not.", p_env, key);
				continue;
			}
			size_t klen = strlen(key), vlen = strlen(value->u.string);
			if (klen > ENV_KEY_MAX_LEN)
				bad_key_length = true;
			else if (!env_key_is_valid(key))
				bad_key_pattern = true;
			if (vlen > ENV_VALUE_MAX_LEN)
				bad_value_length = true;
			*env_bytes += klen + vlen;
			out->env[i].key = strdup(key);
			out->env[i].value = strdup(value->u.string);
			if (!out->env[i].key || !out->env[i].value)
				*nomem = true;
		}
		if (bad_key_length)
			req_invalid(r, env, p_env,
				    "Map keys must satisfy constraint: [Member must have length less than or equal to %d]",
				    ENV_KEY_MAX_LEN);
		if (bad_key_pattern)
			req_invalid(r, env, p_env,
				    "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: %s]",
				    ENV_KEY_PATTERN);
		if (bad_value_length)
			req_invalid(r, env, p_env,
				    "Map value must satisfy constraint: [Member must have length less than or equal to %d]",
				    ENV_VALUE_MAX_LEN);
	}
	if ((host && !out->hostname) || (image && !out->image) || (url && !out->model_data_url) ||
	    (mode && !out->mode))
		*nomem = true;
}

/* SAGEMAKER_SUBMIT_DIRECTORY when berthd fetches it (s3://), else NULL. */
static const char *submit_directory(const struct container_def *c)
{
	for (size_t i = 0; i < c->n_env; i++)
		if (strcmp(c->env[i].key, "SAGEMAKER_SUBMIT_DIRECTORY") == 0 && strncmp(c->env[i].value, "s3://", 5) == 0)
			return c->env[i].value;
	return NULL;
}

/* The model-level rules that come after member validation. Returns false
 * with the reply set when one is broken. */
static bool check_model_rules(struct api_request *r, const struct model *m, size_t env_bytes)
{
	const struct api_runtime_hooks *rt = &r->ctx->runtime;
	size_t given = 0;
	for (size_t i = 0; i < m->n_containers; i++)
		given += m->containers[i].hostname_given;
	if (!m->has_primary && given != 0 && given != m->n_containers) {
		api_reply_error(r->reply, BERTH_ERR_VALIDATION,
				"ContainerHostname is set for some containers but not all: when one container of "
				"Containers sets ContainerHostname, every container must.");
		return false;
	}
	for (size_t i = 0; i < m->n_containers; i++)
		for (size_t j = i + 1; j < m->n_containers; j++)
			if (strcasecmp(m->containers[i].hostname, m->containers[j].hostname) == 0) {
				api_reply_error(r->reply, BERTH_ERR_VALIDATION,
						"Duplicate ContainerHostname '%s': every container of a model needs a "
						"unique hostname.",
						m->containers[j].hostname);
				return false;
			}
	if (env_bytes > ENV_TOTAL_MAX_BYTES) {
		api_reply_error(r->reply, BERTH_ERR_VALIDATION,
				"The Environment maps of all containers hold %zu bytes of keys and values; the "
				"limit is %d bytes (32 KB) across all containers.",
				env_bytes, ENV_TOTAL_MAX_BYTES);
		return false;
	}
	for (size_t i = 0; i < m->n_containers; i++) {
		/* images are local: say now, not at CreateEndpoint, that one is missing */
		struct berth_err err = { 0 };
		if (rt->image_check != NULL && rt->image_check(rt->sources, m->containers[i].image, &err) < 0) {
			/* a wrong image is the caller's (400), a failed check berth's (500) */
			berth_err_prefix(&err, "Container '%s'", m->containers[i].hostname);
			api_reply_err(r->reply, &err);
			return false;
		}
		const char *url = m->containers[i].model_data_url;
		if (url != NULL && rt->model_data_check != NULL && rt->model_data_check(rt->sources, url, &err) < 0) {
			berth_err_prefix(&err, "Container '%s'", m->containers[i].hostname);
			api_reply_err(r->reply, &err);
			return false;
		}
		/* (s3) berthd fetches an s3:// submit directory as it does model data */
		const char *submit = submit_directory(&m->containers[i]);
		if (submit != NULL && rt->model_data_check != NULL &&
		    rt->model_data_check(rt->sources, submit, &err) < 0) {
			berth_err_prefix(&err, "Container '%s': Environment SAGEMAKER_SUBMIT_DIRECTORY",
					 m->containers[i].hostname);
			api_reply_err(r->reply, &err);
			return false;
		}
	}
	if (m->n_containers > 1)
		for (size_t i = 0; i < m->n_containers; i++)
			if (m->containers[i].mode && strcmp(m->containers[i].mode, "MultiModel") == 0) {
				api_reply_error(r->reply, BERTH_ERR_VALIDATION,
						"Container '%s' has Mode MultiModel, which needs a model with a single "
						"container.",
						m->containers[i].hostname);
				return false;
			}
	return true;
}

void api_create_model(struct api_request *r)
{
	static const char *const exec_modes[] = { "Serial", "Direct", NULL };
	yajl_val root = r->root;
	if (api_refuse_unsupported(r, "CreateModel"))
		return;
	struct model *m = calloc(1, sizeof(*m));
	if (!m) {
		api_reply_nomem(r->reply);
		return;
	}
	bool nomem = false;
	size_t env_bytes = 0;
	char *arn = NULL;

	const char *name = req_name(r, root, "ModelName", "modelName");
	yajl_val primary = req_object(r, root, "PrimaryContainer", "primaryContainer", false);
	yajl_val list = req_array(r, root, "Containers", "containers", false);
	if (list && list->u.array.len < 1)
		req_invalid(r, list, "containers", "Member must have length greater than or equal to 1");
	if (list && list->u.array.len > CONTAINERS_MAX)
		req_invalid(r, list, "containers", "Member must have length less than or equal to %d", CONTAINERS_MAX);
	size_t n = primary && list ? 0 : primary ? 1 : list ? list->u.array.len : 0;
	if (n > 0) {
		m->containers = calloc(n, sizeof(*m->containers));
		if (!m->containers)
			nomem = true;
		else
			m->n_containers = n;
		m->has_primary = primary != NULL;
	}
	for (size_t i = 0; i < m->n_containers; i++) {
		yajl_val c = primary ? primary : list->u.array.values[i];
		char prefix[32];
		snprintf(prefix, sizeof(prefix), primary ? "primaryContainer" : "containers.%zu", i + 1);
		if (!YAJL_IS_OBJECT(c)) {
			req_serialization(r, "'%s' must be an object.", prefix);
			continue;
		}
		decode_container(r, c, prefix, &m->containers[i], &env_bytes, &nomem);
	}
	yajl_val iec = req_object(r, root, "InferenceExecutionConfig", "inferenceExecutionConfig", false);
	if (iec) {
		const char *mode = req_string(r, iec, "Mode", "inferenceExecutionConfig.mode", true);
		if (mode && check_enum(r, json_get(iec, "Mode"), mode, "inferenceExecutionConfig.mode", exec_modes) &&
		    !(m->execution_mode = strdup(mode)))
			nomem = true;
	}
	const char *role = req_string(r, root, "ExecutionRoleArn", "executionRoleArn", false);
	if (role) {
		check_length(r, json_get(root, "ExecutionRoleArn"), role, "executionRoleArn", EXECUTION_ROLE_ARN_MIN,
			     EXECUTION_ROLE_ARN_MAX);
		if (!(m->execution_role_arn = strdup(role)))
			nomem = true;
	}
	/* kept and described; containers have no network but loopback either way */
	bool isolation = false;
	if (req_bool(r, root, "EnableNetworkIsolation", "enableNetworkIsolation", &isolation))
		m->enable_network_isolation = isolation;
	req_tags(r, root, &m->tags, &m->n_tags);

	if (nomem) {
		api_reply_nomem(r->reply);
		goto out;
	}
	if (req_failed(r) || api_tags_reserved(r, m->tags, m->n_tags))
		goto out;
	if (primary && list) {
		api_reply_error(r->reply, BERTH_ERR_VALIDATION,
				"PrimaryContainer and Containers cannot both be specified: give one of them.");
		goto out;
	}
	if (!primary && !list) {
		api_reply_error(r->reply, BERTH_ERR_VALIDATION,
				"Either PrimaryContainer or Containers must be specified.");
		goto out;
	}
	for (size_t i = 0; i < m->n_containers; i++) {
		struct container_def *c = &m->containers[i];
		if (m->has_primary) {
			/* ignored for a PrimaryContainer, as on SageMaker */
			free(c->hostname);
			c->hostname = NULL;
			c->hostname_given = false;
		}
		if (!c->hostname) {
			if (m->has_primary)
				c->hostname = strdup("primary");
			else if (asprintf(&c->hostname, "container-%zu", i + 1) < 0)
				c->hostname = NULL;
			if (!c->hostname) {
				api_reply_nomem(r->reply);
				goto out;
			}
		}
	}
	if (!check_model_rules(r, m, env_bytes))
		goto out;
	if (api_model_name_taken(r->ctx->store, name)) {
		api_reply_exists(r, "model", "model", name);
		goto out;
	}
	m->name = strdup(name);
	m->arn = api_arn(r->ctx, "model", name);
	m->creation_time = clock_epoch_seconds_ms();
	if (!m->name || !m->arn) {
		api_reply_nomem(r->reply);
		goto out;
	}
	arn = strdup(m->arn);
	if (!arn) {
		api_reply_nomem(r->reply);
		goto out;
	}
	struct berth_err err = { 0 };
	int rc = store_put_model(r->ctx->store, m, &err);
	m = NULL; /* the store owns it now, or freed it */
	if (rc < 0) {
		api_reply_not_saved(r->reply, &err);
		goto out;
	}
	log_info("created model %s", name);
	api_reply_arn(r->reply, "ModelArn", arn);
out:
	free(arn);
	model_free(m);
}

void api_describe_model(struct api_request *r)
{
	const char *name = req_name(r, r->root, "ModelName", "modelName");
	if (req_failed(r))
		return;
	const struct model *m = store_get_model(r->ctx->store, name);
	if (!m) {
		api_reply_not_found(r, "model", "model", name);
		return;
	}
	struct berth_buf doc = BERTH_BUF_INIT;
	if (model_describe_to_json(m, &doc) < 0)
		api_reply_nomem(r->reply);
	else
		api_reply_text(r->reply, &doc);
	buf_free(&doc);
}

static int gen_model_summary(yajl_gen g, const void *resource)
{
	const struct model *m = resource;
	return json_gen_kv_str(g, "ModelName", m->name) == 0 && json_gen_kv_str(g, "ModelArn", m->arn) == 0 &&
			       json_gen_kv_double(g, "CreationTime", m->creation_time) == 0
		       ? 0
		       : -1;
}

static void model_item_at(const struct store *s, size_t i, struct list_item *out)
{
	const struct model *m = store_model_at(s, i);
	*out = (struct list_item){ .name = m->name, .creation_time = m->creation_time,
				   .last_modified_time = m->creation_time, .resource = m };
}

static bool model_exists(const struct store *s, const char *name)
{
	return store_get_model(s, name) != NULL;
}

/* List*, Delete* (api_kind.c). SageMaker lets a model go while endpoints
 * use it: they keep running. */
const struct api_kind api_kind_model = {
	.what = "model",
	.arn_kind = "model",
	.name_member = "ModelName",
	.name_path = "modelName",
	.list_member = "Models",
	.count = store_count_models,
	.item_at = model_item_at,
	.gen_summary = gen_model_summary,
	.exists = model_exists,
	.store_delete = store_delete_model,
};
