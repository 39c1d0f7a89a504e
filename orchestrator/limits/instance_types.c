/* instance_types.c — see instance_types.h. */
#include "instance_types.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cdi_spec.h"
#include "embedded_configs.h"
#include "fsutil.h"
#include "json.h"

#define INSTANCE_TYPES_MAX_BYTES (1u << 20)
#define INSTANCE_TYPES_MAX 1024

static int name_ok(const char *s)
{
	if (strncmp(s, "ml.", 3) != 0 || strlen(s) > 63)
		return 0;
	int dots = 0;
	for (s += 3; *s; s++) {
		if (*s == '.' && s[1] != '\0' && s[-1] != '.')
			dots++;
		else if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
			return 0;
	}
	return dots == 1;
}

int instance_types_parse(const char *text, size_t len, struct instance_types *out, struct berth_err *err)
{
	memset(out, 0, sizeof(*out));
	yajl_val root = json_parse(text, len, err);
	if (root == NULL)
		return berth_err_prefix(err, "instance types");
	int r = -1;
	if (!YAJL_IS_OBJECT(root) || root->u.object.len == 0 || root->u.object.len > INSTANCE_TYPES_MAX) {
		berth_err_set(err, 0, "instance types: expected an object of 1 to %d types", INSTANCE_TYPES_MAX);
		goto out;
	}
	out->types = calloc(root->u.object.len, sizeof(*out->types));
	if (out->types == NULL) {
		berth_err_set(err, ENOMEM, "instance types");
		goto out;
	}
	for (size_t i = 0; i < root->u.object.len; i++) {
		const char *name = root->u.object.keys[i];
		yajl_val v = root->u.object.values[i];
		long long vcpus = 0, mib = 0, gpus = 0;
		if (!name_ok(name)) {
			berth_err_set(err, 0, "instance types: \"%s\" is not a name of the form ml.FAMILY.SIZE", name);
			goto out;
		}
		if (instance_types_find(out, name) != NULL) {
			berth_err_set(err, 0, "instance types: \"%s\" is listed twice", name);
			goto out;
		}
		if (!json_get_int64(v, "vcpus", &vcpus) || vcpus < 1 || vcpus > 1024 ||
		    !json_get_int64(v, "memory_mib", &mib) || mib < 64 || mib > (64LL << 20) ||
		    (json_get(v, "gpus") && (!json_get_int64(v, "gpus", &gpus) || gpus < 0 || gpus > 64))) {
			berth_err_set(err, 0,
				      "instance types: \"%s\" needs integer \"vcpus\" (1-1024), \"memory_mib\" "
				      "(64-67108864) and optionally \"gpus\" (0-64)",
				      name);
			goto out;
		}
		/* (devices) which CDI kind its gpus are; absent: the default kind */
		yajl_val kind = json_get(v, "device_kind");
		if (kind && (!YAJL_IS_STRING(kind) || !cdi_kind_valid(YAJL_GET_STRING(kind)))) {
			berth_err_set(err, 0,
				      "instance types: \"%s\": \"device_kind\" must be a CDI kind, VENDOR/CLASS "
				      "(\"nvidia.com/gpu\")",
				      name);
			goto out;
		}
		struct instance_type *t = &out->types[out->n];
		t->name = strdup(name);
		const char *kind_s = kind ? YAJL_GET_STRING(kind) : NULL;
		t->device_kind = kind_s ? strdup(kind_s) : NULL;
		if (t->name == NULL || (kind_s && t->device_kind == NULL)) {
			free(t->name);
			berth_err_set(err, ENOMEM, "instance types");
			goto out;
		}
		t->vcpus = (int)vcpus;
		t->memory_mib = mib;
		t->gpus = (int)gpus;
		out->n++;
	}
	r = 0;
out:
	yajl_tree_free(root);
	if (r < 0)
		instance_types_free(out);
	return r;
}

int instance_types_load(const char *path, struct instance_types *out, struct berth_err *err)
{
	if (path == NULL) {
		size_t len;
		const char *text = embedded_instance_types(&len);
		return instance_types_parse(text, len, out, err);
	}
	struct berth_buf doc = BERTH_BUF_INIT;
	int r = fs_read_file(path, &doc, INSTANCE_TYPES_MAX_BYTES, err);
	if (r == 0 && (r = instance_types_parse(doc.data ? doc.data : "", doc.len, out, err)) < 0)
		berth_err_prefix(err, "%s", path);
	buf_free(&doc);
	return r;
}

const struct instance_type *instance_types_find(const struct instance_types *t, const char *name)
{
	for (size_t i = 0; name && i < t->n; i++)
		if (strcmp(t->types[i].name, name) == 0)
			return &t->types[i];
	return NULL;
}

void instance_types_list(const struct instance_types *t, struct berth_buf *out)
{
	buf_append_str(out, "[");
	for (size_t i = 0; i < t->n; i++)
		buf_printf(out, "%s%s", i ? ", " : "", t->types[i].name);
	buf_append_str(out, "]");
}

void instance_types_free(struct instance_types *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->types[i].name);
		free(t->types[i].device_kind);
	}
	free(t->types);
	t->types = NULL;
	t->n = 0;
}
