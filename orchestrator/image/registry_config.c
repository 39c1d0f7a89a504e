/* registry_config.c — see registry_config.h. */
#include "registry_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include "json.h"

#define OCI_DIR_PREFIX "oci-dir:"

static const char *host_arch(void)
{
	struct utsname u;
	if (uname(&u) == 0) {
		if (strcmp(u.machine, "aarch64") == 0)
			return "arm64";
		if (strcmp(u.machine, "ppc64le") == 0 || strcmp(u.machine, "s390x") == 0 ||
		    strcmp(u.machine, "riscv64") == 0)
			return u.machine[0] == 'p' ? "ppc64le" : u.machine[0] == 's' ? "s390x" : "riscv64";
	}
	return "amd64";
}

static int set_str(char **m, const char *v, struct berth_err *err)
{
	char *copy = v ? strdup(v) : NULL;
	if (v && copy == NULL)
		return berth_err_set(err, ENOMEM, "registries");
	free(*m);
	*m = copy;
	return 0;
}

int registry_config_defaults(struct registry_config *c, struct berth_err *err)
{
	memset(c, 0, sizeof(*c));
	c->pull_timeout_ms = REGISTRY_DEFAULT_TIMEOUT_MS;
	c->resolve_timeout_ms = REGISTRY_DEFAULT_RESOLVE_TIMEOUT_MS;
	if (set_str(&c->skopeo, "skopeo", err) < 0 || set_str(&c->arch, host_arch(), err) < 0 ||
	    set_str(&c->os, "linux", err) < 0)
		return -1;
	return 0;
}

void registry_config_free(struct registry_config *c)
{
	for (size_t i = 0; i < c->n_hosts; i++) {
		struct registry_host *h = &c->hosts[i];
		free(h->host);
		free(h->username);
		free(h->password);
		free(h->auth_file);
		free(h->cert_dir);
	}
	for (size_t i = 0; i < c->n_mirrors; i++) {
		free(c->mirrors[i].pattern);
		free(c->mirrors[i].registry);
		free(c->mirrors[i].prefix);
		free(c->mirrors[i].oci_dir);
	}
	free(c->auth_file);
	free(c->skopeo);
	free(c->arch);
	free(c->os);
	memset(c, 0, sizeof(*c));
}

/* A string member (or null), at most 4096 bytes; absolute path when path. */
static int get_str(yajl_val obj, const char *key, const char *where, bool path, char **out, struct berth_err *err)
{
	yajl_val v = json_get(obj, key);
	if (v == NULL || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_STRING(v) || strlen(v->u.string) == 0 || strlen(v->u.string) > 4096)
		return berth_err_set(err, 0, "registries: %s\"%s\" must be a non-empty string", where, key);
	if (path && v->u.string[0] != '/')
		return berth_err_set(err, 0, "registries: %s\"%s\" must be an absolute path, not \"%s\"", where, key,
				     v->u.string);
	return set_str(out, v->u.string, err);
}

static bool host_name_ok(const char *h)
{
	size_t n = strlen(h);
	return n > 0 && n <= 255 && strcspn(h, "/@?#\\ \t\r\n*") == n;
}

static int parse_host(const char *name, yajl_val v, struct registry_host *h, struct berth_err *err)
{
	char where[320];
	snprintf(where, sizeof(where), "hosts.\"%.255s\": ", name);
	if (!host_name_ok(name))
		return berth_err_set(err, 0, "registries: hosts: \"%.255s\" is not HOST or HOST:PORT", name);
	if (!YAJL_IS_OBJECT(v))
		return berth_err_set(err, 0, "registries: %smust be an object", where);
	h->tls_verify = true;
	if (set_str(&h->host, name, err) < 0)
		return -1;
	static const char *const known[] = { "username", "password", "auth_file", "cert_dir", "tls_verify" };
	for (size_t i = 0; i < v->u.object.len; i++) {
		bool ok = false;
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			ok = ok || strcmp(v->u.object.keys[i], known[k]) == 0;
		if (!ok && v->u.object.keys[i][0] != '_')
			return berth_err_set(err, 0, "registries: %sunknown setting \"%.64s\"", where,
					     v->u.object.keys[i]);
	}
	if (get_str(v, "username", where, false, &h->username, err) < 0 ||
	    get_str(v, "password", where, false, &h->password, err) < 0 ||
	    get_str(v, "auth_file", where, true, &h->auth_file, err) < 0 ||
	    get_str(v, "cert_dir", where, true, &h->cert_dir, err) < 0)
		return -1;
	if ((h->username == NULL) != (h->password == NULL))
		return berth_err_set(err, 0, "registries: %s\"username\" and \"password\" go together", where);
	if (h->username && strchr(h->username, ':'))
		return berth_err_set(err, 0, "registries: %s\"username\" must not contain ':'", where);
	if (h->username && h->auth_file)
		return berth_err_set(err, 0, "registries: %sgive \"username\"/\"password\" or \"auth_file\", not both",
				     where);
	yajl_val tv = json_get(v, "tls_verify");
	if (tv && !YAJL_IS_TRUE(tv) && !YAJL_IS_FALSE(tv))
		return berth_err_set(err, 0, "registries: %s\"tls_verify\" must be true or false", where);
	if (tv)
		h->tls_verify = YAJL_IS_TRUE(tv);
	return 0;
}

static int parse_mirror(const char *pattern, yajl_val v, struct registry_mirror *m, struct berth_err *err)
{
	size_t pn = strlen(pattern);
	if (pn == 0 || pn > 255 || strcspn(pattern, "/@?#\\ \t\r\n") != pn)
		return berth_err_set(err, 0, "registries: mirrors: \"%.255s\" is not a registry host pattern", pattern);
	if (!YAJL_IS_STRING(v) || strlen(v->u.string) == 0 || strlen(v->u.string) > 4096)
		return berth_err_set(err, 0,
				     "registries: mirrors.\"%.255s\" must be \"HOST[:PORT][/PREFIX]\" or "
				     "\"" OCI_DIR_PREFIX "/DIR\"",
				     pattern);
	const char *t = v->u.string;
	if (set_str(&m->pattern, pattern, err) < 0)
		return -1;
	if (strncmp(t, OCI_DIR_PREFIX, strlen(OCI_DIR_PREFIX)) == 0) {
		const char *dir = t + strlen(OCI_DIR_PREFIX);
		if (dir[0] != '/' || strstr(dir, "/../") || (strlen(dir) >= 3 && !strcmp(dir + strlen(dir) - 3, "/..")))
			return berth_err_set(err, 0, "registries: mirrors.\"%.255s\": \"%s\" must name an absolute "
						     "directory without \"..\"",
					     pattern, t);
		return set_str(&m->oci_dir, dir, err);
	}
	const char *slash = strchr(t, '/');
	size_t hn = slash ? (size_t)(slash - t) : strlen(t);
	char host[256];
	if (hn == 0 || hn > 255)
		return berth_err_set(err, 0, "registries: mirrors.\"%.255s\": \"%.255s\" names no registry", pattern, t);
	memcpy(host, t, hn);
	host[hn] = '\0';
	if (!host_name_ok(host))
		return berth_err_set(err, 0, "registries: mirrors.\"%.255s\": \"%s\" is not HOST or HOST:PORT", pattern,
				     host);
	const char *prefix = slash ? slash + 1 : "";
	size_t pl = strlen(prefix);
	while (pl > 0 && prefix[pl - 1] == '/')
		pl--;
	if (set_str(&m->registry, host, err) < 0 || (m->prefix = strndup(prefix, pl)) == NULL)
		return berth_err_set(err, ENOMEM, "registries");
	return 0;
}

int registry_config_parse(yajl_val v, struct registry_config *c, struct berth_err *err)
{
	if (!YAJL_IS_OBJECT(v))
		return berth_err_set(err, 0, "registries must be an object (hosts, mirrors, …)");
	registry_config_free(c);
	if (registry_config_defaults(c, err) < 0)
		return -1;
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *key = v->u.object.keys[i];
		yajl_val val = v->u.object.values[i];
		if (key[0] == '_')
			continue;
		if (strcmp(key, "hosts") == 0) {
			if (!YAJL_IS_OBJECT(val) || val->u.object.len > REGISTRY_MAX_HOSTS)
				return berth_err_set(err, 0, "registries: \"hosts\" must be an object of at most %d registries",
						     REGISTRY_MAX_HOSTS);
			for (size_t k = 0; k < val->u.object.len; k++)
				if (parse_host(val->u.object.keys[k], val->u.object.values[k], &c->hosts[c->n_hosts++],
					       err) < 0)
					return -1;
		} else if (strcmp(key, "mirrors") == 0) {
			if (!YAJL_IS_OBJECT(val) || val->u.object.len > REGISTRY_MAX_HOSTS)
				return berth_err_set(err, 0, "registries: \"mirrors\" must be an object of at most %d patterns",
						     REGISTRY_MAX_HOSTS);
			for (size_t k = 0; k < val->u.object.len; k++)
				if (parse_mirror(val->u.object.keys[k], val->u.object.values[k],
						 &c->mirrors[c->n_mirrors++], err) < 0)
					return -1;
		} else if (strcmp(key, "allow_unlisted") == 0) {
			if (!YAJL_IS_TRUE(val) && !YAJL_IS_FALSE(val))
				return berth_err_set(err, 0, "registries: \"allow_unlisted\" must be true or false");
			c->allow_unlisted = YAJL_IS_TRUE(val);
		} else if (strcmp(key, "pull_timeout_ms") == 0) {
			if (!YAJL_IS_INTEGER(val) || YAJL_GET_INTEGER(val) < 1000 || YAJL_GET_INTEGER(val) > 86400000)
				return berth_err_set(err, 0,
						     "registries: \"pull_timeout_ms\" must be a whole number from 1000 to 86400000");
			c->pull_timeout_ms = YAJL_GET_INTEGER(val);
		} else if (strcmp(key, "resolve_timeout_ms") == 0) {
			if (!YAJL_IS_INTEGER(val) || YAJL_GET_INTEGER(val) < 100 || YAJL_GET_INTEGER(val) > 600000)
				return berth_err_set(err, 0,
						     "registries: \"resolve_timeout_ms\" must be a whole number from 100 to 600000");
			c->resolve_timeout_ms = YAJL_GET_INTEGER(val);
		} else if (strcmp(key, "auth_file") == 0 || strcmp(key, "skopeo") == 0 || strcmp(key, "arch") == 0 ||
			   strcmp(key, "os") == 0) {
			char **m = key[0] == 'a' && key[1] == 'u' ? &c->auth_file
				   : key[0] == 's'		  ? &c->skopeo
				   : key[0] == 'a'		  ? &c->arch
								  : &c->os;
			if (YAJL_IS_NULL(val) && m == &c->auth_file) {
				free(c->auth_file);
				c->auth_file = NULL;
				continue;
			}
			if (!YAJL_IS_STRING(val) || strlen(val->u.string) == 0 || strlen(val->u.string) > 4096 ||
			    (m != &c->skopeo && m != &c->auth_file && strspn(val->u.string, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(val->u.string)))
				return berth_err_set(err, 0, "registries: \"%s\" must be a non-empty string%s", key,
						     m == &c->arch || m == &c->os ? " of lower-case letters and digits" : "");
			if (m == &c->auth_file && val->u.string[0] != '/')
				return berth_err_set(err, 0, "registries: \"auth_file\" must be an absolute path");
			if (set_str(m, val->u.string, err) < 0)
				return -1;
		} else {
			return berth_err_set(err, 0, "registries: unknown setting \"%.64s\" (hosts, mirrors, allow_unlisted, "
						     "auth_file, pull_timeout_ms, resolve_timeout_ms, skopeo, arch, os)",
					     key);
		}
	}
	return 0;
}

static const struct registry_host *find_host(const struct registry_config *c, const char *host)
{
	for (size_t i = 0; i < c->n_hosts; i++)
		if (strcasecmp(c->hosts[i].host, host) == 0)
			return &c->hosts[i];
	return NULL;
}

int registry_config_check(const struct registry_config *c, struct berth_err *err)
{
	for (size_t i = 0; i < c->n_mirrors; i++) {
		const struct registry_mirror *m = &c->mirrors[i];
		if (m->registry && !c->allow_unlisted && find_host(c, m->registry) == NULL)
			return berth_err_set(err, 0,
					     "registries: mirror \"%s\" leads to registry \"%s\", which is not in "
					     "registries.hosts; add it there (with its credentials and CA) or correct the "
					     "mirror",
					     m->pattern, m->registry);
	}
	return 0;
}

static void list_hosts(const struct registry_config *c, char *buf, size_t size)
{
	buf[0] = '\0';
	size_t used = 0;
	for (size_t i = 0; i < c->n_hosts && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", c->hosts[i].host);
	for (size_t i = 0; i < c->n_mirrors && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%s (mirrored)", used ? ", " : "",
					 c->mirrors[i].pattern);
	if (used == 0)
		snprintf(buf, size, "none");
}

int registry_route(const struct registry_config *c, const char *image, const struct image_reference *ref,
		   struct registry_route *out, struct berth_err *err)
{
	memset(out, 0, sizeof(*out));
	const char *target = ref->registry;
	const char *prefix = "";
	for (size_t i = 0; i < c->n_mirrors && out->mirror == NULL; i++)
		if (image_reference_host_matches(c->mirrors[i].pattern, ref->registry))
			out->mirror = &c->mirrors[i];
	if (out->mirror && out->mirror->oci_dir) {
		int w = snprintf(out->source, sizeof(out->source), "oci:%s/%s:%s", out->mirror->oci_dir, ref->repository,
				 ref->tag[0] ? ref->tag : "latest");
		if (w < 0 || (size_t)w >= sizeof(out->source))
			return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "Image \"%s\" is too long", image);
		return 0;
	}
	if (out->mirror) {
		target = out->mirror->registry;
		prefix = out->mirror->prefix;
	}
	out->host = find_host(c, target);
	if (out->host == NULL && !c->allow_unlisted) {
		char listed[1024];
		list_hosts(c, listed, sizeof(listed));
		bool ecr = image_reference_host_matches("*.dkr.ecr.*.amazonaws.com", ref->registry);
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "Image \"%s\": berthd does not pull from registry \"%s\" (it pulls from: %s). %s",
				      image, ref->registry, listed,
				      ecr ? "berth cannot reach Amazon ECR itself: ask the operator to map this registry "
					    "with registries.mirrors in berthd's configuration (to a registry or a "
					    "directory of OCI layouts)."
					  : "Ask the operator to add it to registries.hosts in berthd's configuration, or "
					    "to map it with registries.mirrors.");
	}
	int w = snprintf(out->source, sizeof(out->source), "docker://%s/%s%s%s%s%s", target, prefix,
			 prefix[0] ? "/" : "", ref->repository, ref->digest[0] ? "@" : ":",
			 ref->digest[0] ? ref->digest : ref->tag);
	if (w < 0 || (size_t)w >= sizeof(out->source))
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "Image \"%s\" is too long", image);
	return 0;
}

int registry_route_pin(const struct image_reference *ref, struct registry_route *out, const char *digest)
{
	if (out->mirror && out->mirror->oci_dir) { /* a layout is read by tag; the digest is checked after */
		snprintf(out->pinned_source, sizeof(out->pinned_source), "%s", out->source);
		return 0;
	}
	const char *target = out->mirror ? out->mirror->registry : ref->registry;
	const char *prefix = out->mirror ? out->mirror->prefix : "";
	int w = snprintf(out->pinned_source, sizeof(out->pinned_source), "docker://%s/%s%s%s@%s", target, prefix,
			 prefix[0] ? "/" : "", ref->repository, digest);
	return w < 0 || (size_t)w >= sizeof(out->pinned_source) ? -1 : 0;
}
