/* cdi_spec.c — see cdi_spec.h. */
#include "cdi_spec.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "yaml_json.h"

/* The released versions, oldest first (the specification's table). */
static const char *const versions[] = { "0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0",
					"0.7.0", "0.8.0", "1.0.0", "1.1.0" };

static int version_index(const char *v)
{
	for (size_t i = 0; i < BERTH_ARRAY_SIZE(versions); i++)
		if (strcmp(versions[i], v) == 0)
			return (int)i;
	return -1;
}

struct parse {
	struct berth_err *err;
	int need;          /* index of the least version the members used need */
	const char *need_why;
	bool failed;
};

static void bad(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(struct parse *p, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	va_list ap;
	va_start(ap, fmt);
	char msg[sizeof(p->err->msg)];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	berth_err_setc(p->err, BERTH_ERR_VALIDATION, 0, "%s", msg);
}

static void needs(struct parse *p, const char *version, const char *why)
{
	int i = version_index(version);
	if (i > p->need) {
		p->need = i;
		p->need_why = why;
	}
}

static bool alnum(char c)
{
	return isascii((unsigned char)c) && isalnum((unsigned char)c);
}

/* [A-Za-z0-9_.-], beginning and ending alphanumeric; dot says whether '.' is allowed */
static bool name_ok(const char *s, size_t len, bool dot)
{
	if (len == 0 || !alnum(s[0]) || !alnum(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!alnum(s[i]) && s[i] != '-' && s[i] != '_' && !(dot && s[i] == '.'))
			return false;
	return true;
}

static bool vendor_ok(const char *s, size_t len)
{
	if (len == 0 || len > 253)
		return false;
	size_t label = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
				return false;
			label = 0;
		} else if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-') {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

bool cdi_kind_valid(const char *kind)
{
	const char *slash = kind ? strchr(kind, '/') : NULL;
	if (slash == NULL || strchr(slash + 1, '/') != NULL)
		return false;
	size_t class_len = strlen(slash + 1);
	return vendor_ok(kind, (size_t)(slash - kind)) && class_len <= 63 && name_ok(slash + 1, class_len, true);
}

bool cdi_qualified_name_valid(const char *name)
{
	const char *eq = name ? strchr(name, '=') : NULL;
	if (eq == NULL || strlen(name) >= CDI_NAME_MAX)
		return false;
	char kind[CDI_NAME_MAX];
	memcpy(kind, name, (size_t)(eq - name));
	kind[eq - name] = '\0';
	return cdi_kind_valid(kind) && name_ok(eq + 1, strlen(eq + 1), true);
}

/* ---- reading members -------------------------------------------------- */

/* Refuses members of o not in allowed (NULL-terminated); where: for the message. */
static void only(struct parse *p, yajl_val o, const char *where, const char *const *allowed)
{
	for (size_t i = 0; o && YAJL_IS_OBJECT(o) && i < o->u.object.len; i++) {
		const char *k = o->u.object.keys[i];
		bool ok = false;
		for (size_t j = 0; allowed[j] && !ok; j++)
			ok = strcmp(k, allowed[j]) == 0;
		if (!ok) {
			if (strcmp(k, "intelRdt") == 0 || strcmp(k, "netDevices") == 0)
				bad(p, "%s.%s: berth does not apply this edit; remove it from the spec or use a runtime "
				       "that does", where, k);
			else
				bad(p, "%s: unknown member \"%s\"", where, k);
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(o->u.object.keys[j], k) == 0)
				bad(p, "%s: member \"%s\" given twice", where, k);
	}
}

static char *str_member(struct parse *p, yajl_val o, const char *key, const char *where, bool required)
{
	yajl_val v = json_get(o, key);
	if (v == NULL || YAJL_IS_NULL(v)) {
		if (required)
			bad(p, "%s.%s is required", where, key);
		return NULL;
	}
	if (!YAJL_IS_STRING(v)) {
		bad(p, "%s.%s must be a string", where, key);
		return NULL;
	}
	const char *t = YAJL_GET_STRING(v);
	char *s = strdup(t ? t : "");
	if (s == NULL)
		bad(p, "out of memory");
	return s;
}

static bool int_member(struct parse *p, yajl_val o, const char *key, const char *where, long long min,
		       long long max, long long *out)
{
	yajl_val v = json_get(o, key);
	if (v == NULL || YAJL_IS_NULL(v))
		return false;
	if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < min || YAJL_GET_INTEGER(v) > max) {
		bad(p, "%s.%s must be an integer from %lld to %lld", where, key, min, max);
		return false;
	}
	*out = YAJL_GET_INTEGER(v);
	return true;
}

static yajl_val array_member(struct parse *p, yajl_val o, const char *key, const char *where)
{
	yajl_val v = json_get(o, key);
	if (v == NULL || YAJL_IS_NULL(v))
		return NULL;
	if (!YAJL_IS_ARRAY(v)) {
		bad(p, "%s.%s must be an array", where, key);
		return NULL;
	}
	return v;
}

static char **strings(struct parse *p, yajl_val o, const char *key, const char *where, bool env, size_t *n)
{
	*n = 0;
	yajl_val a = array_member(p, o, key, where);
	if (a == NULL || a->u.array.len == 0)
		return NULL;
	char **out = calloc(a->u.array.len, sizeof(*out));
	if (out == NULL) {
		bad(p, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < a->u.array.len; i++) {
		yajl_val s = a->u.array.values[i];
		if (!YAJL_IS_STRING(s)) {
			bad(p, "%s.%s[%zu] must be a string", where, key, i);
			continue;
		}
		const char *t = YAJL_GET_STRING(s) ? YAJL_GET_STRING(s) : "";
		const char *eq = strchr(t, '=');
		if (env && (eq == NULL || eq == t))
			bad(p, "%s.%s[%zu] \"%s\" must be NAME=VALUE", where, key, i, t);
		if ((out[*n] = strdup(t)) == NULL)
			bad(p, "out of memory");
		else
			(*n)++;
	}
	return out;
}

static bool absolute(const char *s)
{
	return s != NULL && s[0] == '/';
}

/* A host path lexically under /dev, with no ".." step. */
static bool under_dev(const char *s)
{
	if (strncmp(s, "/dev/", 5) != 0 || s[5] == '\0')
		return false;
	for (const char *c = s; (c = strstr(c, "..")) != NULL; c += 2)
		if ((c == s || c[-1] == '/') && (c[2] == '/' || c[2] == '\0'))
			return false;
	return true;
}

static void parse_node(struct parse *p, yajl_val o, const char *where, struct cdi_device_node *n)
{
	static const char *const members[] = { "path", "hostPath", "type", "major", "minor", "fileMode",
					       "permissions", "uid", "gid", NULL };
	n->major = n->minor = n->file_mode = n->uid = n->gid = -1;
	if (!YAJL_IS_OBJECT(o))
		return bad(p, "%s must be an object", where);
	only(p, o, where, members);
	n->path = str_member(p, o, "path", where, true);
	n->host_path = str_member(p, o, "hostPath", where, false);
	if (n->host_path != NULL)
		needs(p, "0.5.0", "deviceNodes.hostPath");
	if (n->path && !absolute(n->path))
		bad(p, "%s.path \"%s\" must be an absolute path", where, n->path);
	if (n->host_path == NULL && n->path && (n->host_path = strdup(n->path)) == NULL)
		bad(p, "out of memory");
	if (n->host_path && !under_dev(n->host_path))
		bad(p, "%s: host device node \"%s\" is not under /dev; berth only passes device nodes from /dev", where,
		    n->host_path);
	_cleanup_free_ char *type = str_member(p, o, "type", where, false);
	if (type && type[0] != '\0') {
		if (strlen(type) != 1 || strchr("bcup", type[0]) == NULL)
			bad(p, "%s.type \"%s\" must be b, c, u or p", where, type);
		n->type = type[0];
	}
	int_member(p, o, "major", where, 0, 0xfffff, &n->major);
	int_member(p, o, "minor", where, 0, 0xfffff, &n->minor);
	int_member(p, o, "fileMode", where, 0, 07777, &n->file_mode);
	int_member(p, o, "uid", where, 0, 4294967294LL, &n->uid);
	int_member(p, o, "gid", where, 0, 4294967294LL, &n->gid);
	n->permissions = str_member(p, o, "permissions", where, false);
	if (n->permissions && strcmp(n->permissions, "none") != 0 &&
	    (strlen(n->permissions) > 3 || strspn(n->permissions, "rwm") != strlen(n->permissions)))
		bad(p, "%s.permissions \"%s\" must be made of r, w and m, or be \"none\"", where, n->permissions);
}

static void parse_mount(struct parse *p, yajl_val o, const char *where, struct cdi_mount *m)
{
	static const char *const members[] = { "hostPath", "containerPath", "type", "options", NULL };
	if (!YAJL_IS_OBJECT(o))
		return bad(p, "%s must be an object", where);
	only(p, o, where, members);
	m->host_path = str_member(p, o, "hostPath", where, true);
	m->container_path = str_member(p, o, "containerPath", where, true);
	if (m->host_path && !absolute(m->host_path))
		bad(p, "%s.hostPath \"%s\" must be an absolute path", where, m->host_path);
	if (m->container_path && !absolute(m->container_path))
		bad(p, "%s.containerPath \"%s\" must be an absolute path", where, m->container_path);
	m->type = str_member(p, o, "type", where, false);
	if (m->type)
		needs(p, "0.4.0", "mounts.type");
	m->options = strings(p, o, "options", where, false, &m->n_options);
}

static void parse_hook(struct parse *p, yajl_val o, const char *where, struct cdi_hook *h)
{
	static const char *const members[] = { "hookName", "path", "args", "env", "timeout", NULL };
	static const char *const names[] = { "prestart", "createRuntime", "createContainer", "startContainer",
					     "poststart", "poststop" };
	if (!YAJL_IS_OBJECT(o))
		return bad(p, "%s must be an object", where);
	only(p, o, where, members);
	h->hook_name = str_member(p, o, "hookName", where, true);
	bool known = false;
	for (size_t i = 0; h->hook_name && i < BERTH_ARRAY_SIZE(names); i++)
		known = known || strcmp(names[i], h->hook_name) == 0;
	if (h->hook_name && !known)
		bad(p, "%s.hookName \"%s\" must be one of prestart, createRuntime, createContainer, startContainer, "
		       "poststart, poststop", where, h->hook_name);
	h->path = str_member(p, o, "path", where, true);
	if (h->path && !absolute(h->path))
		bad(p, "%s.path \"%s\" must be an absolute path", where, h->path);
	h->args = strings(p, o, "args", where, false, &h->n_args);
	h->env = strings(p, o, "env", where, true, &h->n_env);
	if (json_get(o, "timeout") && !YAJL_IS_NULL(json_get(o, "timeout")))
		if (!int_member(p, o, "timeout", where, 1, 86400, &h->timeout))
			bad(p, "%s.timeout must be greater than zero", where);
}

static void parse_edits(struct parse *p, yajl_val o, const char *where, struct cdi_edits *e)
{
	static const char *const members[] = { "env", "deviceNodes", "mounts", "hooks", "additionalGids",
					       "additionalGIDs", NULL };
	if (o == NULL || YAJL_IS_NULL(o))
		return;
	if (!YAJL_IS_OBJECT(o))
		return bad(p, "%s must be an object", where);
	only(p, o, where, members);
	char w[160];
	e->env = strings(p, o, "env", where, true, &e->n_env);
	yajl_val a = array_member(p, o, "deviceNodes", where);
	if (a && a->u.array.len > 0 && (e->nodes = calloc(a->u.array.len, sizeof(*e->nodes))) != NULL)
		for (; e->n_nodes < a->u.array.len; e->n_nodes++) {
			snprintf(w, sizeof(w), "%s.deviceNodes[%zu]", where, e->n_nodes);
			parse_node(p, a->u.array.values[e->n_nodes], w, &e->nodes[e->n_nodes]);
		}
	a = array_member(p, o, "mounts", where);
	if (a && a->u.array.len > 0 && (e->mounts = calloc(a->u.array.len, sizeof(*e->mounts))) != NULL)
		for (; e->n_mounts < a->u.array.len; e->n_mounts++) {
			snprintf(w, sizeof(w), "%s.mounts[%zu]", where, e->n_mounts);
			parse_mount(p, a->u.array.values[e->n_mounts], w, &e->mounts[e->n_mounts]);
		}
	a = array_member(p, o, "hooks", where);
	if (a && a->u.array.len > 0 && (e->hooks = calloc(a->u.array.len, sizeof(*e->hooks))) != NULL)
		for (; e->n_hooks < a->u.array.len; e->n_hooks++) {
			snprintf(w, sizeof(w), "%s.hooks[%zu]", where, e->n_hooks);
			parse_hook(p, a->u.array.values[e->n_hooks], w, &e->hooks[e->n_hooks]);
		}
	const char *gk = json_get(o, "additionalGids") ? "additionalGids" : "additionalGIDs";
	a = array_member(p, o, gk, where);
	if (a && a->u.array.len > 0) {
		needs(p, "0.7.0", "additionalGids");
		if ((e->additional_gids = calloc(a->u.array.len, sizeof(long long))) != NULL)
			for (size_t i = 0; i < a->u.array.len; i++) {
				yajl_val g = a->u.array.values[i];
				if (!YAJL_IS_INTEGER(g) || YAJL_GET_INTEGER(g) < 0 || YAJL_GET_INTEGER(g) > 4294967294LL)
					bad(p, "%s.%s[%zu] must be a group id", where, gk, i);
				else if (YAJL_GET_INTEGER(g) > 0) /* 0 is ignored, as the specification says */
					e->additional_gids[e->n_additional_gids++] = YAJL_GET_INTEGER(g);
			}
	}
}

static void annotations(struct parse *p, yajl_val o, const char *where)
{
	yajl_val a = json_get(o, "annotations");
	if (a == NULL || YAJL_IS_NULL(a))
		return;
	needs(p, "0.6.0", "annotations");
	if (!YAJL_IS_OBJECT(a))
		return bad(p, "%s.annotations must be an object of strings", where);
	for (size_t i = 0; i < a->u.object.len; i++)
		if (!YAJL_IS_STRING(a->u.object.values[i]))
			bad(p, "%s.annotations.%s must be a string", where, a->u.object.keys[i]);
}

int cdi_spec_parse(const char *text, size_t len, bool yaml, struct cdi_spec *out, struct berth_err *err)
{
	memset(out, 0, sizeof(*out));
	if (len > CDI_SPEC_MAX_BYTES)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "the file is larger than %u bytes",
				      CDI_SPEC_MAX_BYTES);
	struct berth_buf json = BERTH_BUF_INIT;
	if (yaml && yaml_to_json(text, len, &json, err) < 0) {
		buf_free(&json);
		return berth_err_prefix(err, "not a YAML CDI spec");
	}
	yajl_val root = json_parse(yaml ? json.data : text, yaml ? json.len : len, err);
	buf_free(&json);
	if (root == NULL) {
		err->cls = BERTH_ERR_VALIDATION;
		return berth_err_prefix(err, "not a JSON CDI spec");
	}
	struct parse p = { .err = err, .need = 0 };
	static const char *const members[] = { "cdiVersion", "kind", "annotations", "devices", "containerEdits",
					       NULL };
	if (!YAJL_IS_OBJECT(root)) {
		bad(&p, "a CDI spec is an object");
		goto out;
	}
	only(&p, root, "spec", members);
	out->version = str_member(&p, root, "cdiVersion", "spec", true);
	out->kind = str_member(&p, root, "kind", "spec", true);
	if (p.failed)
		goto out;
	if (version_index(out->version) < 0) {
		bad(&p, "cdiVersion \"%s\" is not a released CDI version (0.1.0 to 1.1.0)", out->version);
		goto out;
	}
	if (!cdi_kind_valid(out->kind)) {
		bad(&p, "kind \"%s\" is not VENDOR/CLASS (a DNS name, a slash, a class of letters, digits, -, _ and .: "
			"\"nvidia.com/gpu\")", out->kind);
		goto out;
	}
	if (strchr(strchr(out->kind, '/'), '.') != NULL)
		needs(&p, "0.6.0", "a dot in the kind's class");
	annotations(&p, root, "spec");
	parse_edits(&p, json_get(root, "containerEdits"), "containerEdits", &out->edits);
	yajl_val devs = array_member(&p, root, "devices", "spec");
	if (!p.failed && (devs == NULL || devs->u.array.len == 0))
		bad(&p, "devices must list at least one device");
	if (p.failed)
		goto out;
	if ((out->devices = calloc(devs->u.array.len, sizeof(*out->devices))) == NULL) {
		bad(&p, "out of memory");
		goto out;
	}
	for (; out->n_devices < devs->u.array.len && !p.failed; out->n_devices++) {
		static const char *const dmembers[] = { "name", "annotations", "containerEdits", NULL };
		yajl_val d = devs->u.array.values[out->n_devices];
		struct cdi_device *dev = &out->devices[out->n_devices];
		char where[64];
		snprintf(where, sizeof(where), "devices[%zu]", out->n_devices);
		if (!YAJL_IS_OBJECT(d)) {
			bad(&p, "%s must be an object", where);
			break;
		}
		only(&p, d, where, dmembers);
		dev->name = str_member(&p, d, "name", where, true);
		if (dev->name == NULL)
			break;
		if (!name_ok(dev->name, strlen(dev->name), true) || strlen(out->kind) + strlen(dev->name) + 2 > CDI_NAME_MAX)
			bad(&p, "%s.name \"%s\" must be letters, digits, -, _ and ., beginning and ending with a letter or "
				"digit", where, dev->name);
		if (isdigit((unsigned char)dev->name[0]))
			needs(&p, "0.5.0", "a device name beginning with a digit");
		for (size_t j = 0; j < out->n_devices; j++)
			if (strcmp(out->devices[j].name, dev->name) == 0)
				bad(&p, "device \"%s\" is defined twice in this spec", dev->name);
		annotations(&p, d, where);
		char ew[96];
		snprintf(ew, sizeof(ew), "%s.containerEdits", where);
		yajl_val ed = json_get(d, "containerEdits");
		parse_edits(&p, ed, ew, &dev->edits);
		if (!p.failed && dev->edits.n_env + dev->edits.n_nodes + dev->edits.n_mounts + dev->edits.n_hooks +
					   dev->edits.n_additional_gids == 0)
			bad(&p, "%s has no containerEdits: a device must change something", where);
	}
	if (!p.failed && p.need > version_index(out->version))
		bad(&p, "cdiVersion \"%s\" is too old for %s, which needs %s", out->version, p.need_why,
		    versions[p.need]);
out:
	yajl_tree_free(root);
	if (p.failed) {
		cdi_spec_free(out);
		return -1;
	}
	return 0;
}

/* ---- copies and frees --------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static char **strv_dup(char *const *v, size_t n, bool *ok)
{
	if (n == 0)
		return NULL;
	char **out = calloc(n, sizeof(*out));
	for (size_t i = 0; out && i < n; i++)
		if ((out[i] = strdup(v[i])) == NULL)
			*ok = false;
	if (out == NULL)
		*ok = false;
	return out;
}

static char *dup_or_null(const char *s, bool *ok)
{
	char *d = s ? strdup(s) : NULL;
	if (s && !d)
		*ok = false;
	return d;
}

void cdi_node_clear(struct cdi_device_node *n)
{
	free(n->path);
	free(n->host_path);
	free(n->permissions);
	n->path = n->host_path = n->permissions = NULL;
}

void cdi_mount_clear(struct cdi_mount *m)
{
	free(m->host_path);
	free(m->container_path);
	free(m->type);
	strv_free(m->options, m->n_options);
	memset(m, 0, sizeof(*m));
}

void cdi_edits_free(struct cdi_edits *e)
{
	strv_free(e->env, e->n_env);
	for (size_t i = 0; i < e->n_nodes; i++)
		cdi_node_clear(&e->nodes[i]);
	free(e->nodes);
	for (size_t i = 0; i < e->n_mounts; i++)
		cdi_mount_clear(&e->mounts[i]);
	free(e->mounts);
	for (size_t i = 0; i < e->n_hooks; i++) {
		free(e->hooks[i].hook_name);
		free(e->hooks[i].path);
		strv_free(e->hooks[i].args, e->hooks[i].n_args);
		strv_free(e->hooks[i].env, e->hooks[i].n_env);
	}
	free(e->hooks);
	free(e->additional_gids);
	memset(e, 0, sizeof(*e));
}

int cdi_edits_append(struct cdi_edits *dst, const struct cdi_edits *src)
{
	bool ok = true;
	char **env = realloc(dst->env, (dst->n_env + src->n_env + 1) * sizeof(*env));
	struct cdi_device_node *nodes = env ? realloc(dst->nodes, (dst->n_nodes + src->n_nodes + 1) * sizeof(*nodes)) : NULL;
	if (env)
		dst->env = env;
	if (nodes)
		dst->nodes = nodes;
	struct cdi_mount *mounts = nodes ? realloc(dst->mounts, (dst->n_mounts + src->n_mounts + 1) * sizeof(*mounts)) : NULL;
	if (mounts)
		dst->mounts = mounts;
	struct cdi_hook *hooks = mounts ? realloc(dst->hooks, (dst->n_hooks + src->n_hooks + 1) * sizeof(*hooks)) : NULL;
	if (hooks)
		dst->hooks = hooks;
	long long *gids = hooks ? realloc(dst->additional_gids,
					  (dst->n_additional_gids + src->n_additional_gids + 1) * sizeof(*gids)) : NULL;
	if (gids == NULL)
		return -1;
	dst->additional_gids = gids;
	for (size_t i = 0; i < src->n_env; i++)
		dst->env[dst->n_env++] = dup_or_null(src->env[i], &ok);
	for (size_t i = 0; i < src->n_nodes; i++) {
		struct cdi_device_node *n = &dst->nodes[dst->n_nodes++];
		*n = src->nodes[i];
		n->path = dup_or_null(src->nodes[i].path, &ok);
		n->host_path = dup_or_null(src->nodes[i].host_path, &ok);
		n->permissions = dup_or_null(src->nodes[i].permissions, &ok);
	}
	for (size_t i = 0; i < src->n_mounts; i++) {
		struct cdi_mount *m = &dst->mounts[dst->n_mounts++];
		*m = src->mounts[i];
		m->host_path = dup_or_null(src->mounts[i].host_path, &ok);
		m->container_path = dup_or_null(src->mounts[i].container_path, &ok);
		m->type = dup_or_null(src->mounts[i].type, &ok);
		m->options = strv_dup(src->mounts[i].options, src->mounts[i].n_options, &ok);
		if (m->options == NULL)
			m->n_options = 0;
	}
	for (size_t i = 0; i < src->n_hooks; i++) {
		struct cdi_hook *h = &dst->hooks[dst->n_hooks++];
		*h = src->hooks[i];
		h->hook_name = dup_or_null(src->hooks[i].hook_name, &ok);
		h->path = dup_or_null(src->hooks[i].path, &ok);
		h->args = strv_dup(src->hooks[i].args, src->hooks[i].n_args, &ok);
		h->env = strv_dup(src->hooks[i].env, src->hooks[i].n_env, &ok);
		if (h->args == NULL)
			h->n_args = 0;
		if (h->env == NULL)
			h->n_env = 0;
	}
	for (size_t i = 0; i < src->n_additional_gids; i++)
		dst->additional_gids[dst->n_additional_gids++] = src->additional_gids[i];
	return ok ? 0 : -1;
}

void cdi_spec_free(struct cdi_spec *s)
{
	free(s->version);
	free(s->kind);
	for (size_t i = 0; i < s->n_devices; i++) {
		free(s->devices[i].name);
		cdi_edits_free(&s->devices[i].edits);
	}
	free(s->devices);
	cdi_edits_free(&s->edits);
	memset(s, 0, sizeof(*s));
}
