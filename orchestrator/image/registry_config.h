/* registry_config.h — berthd's `registries` settings: which registries it
 * pulls from, how it logs in and checks them, and the mirror map.
 *
 *   "registries": {
 *     "hosts": {                       registries berthd may pull from
 *       "127.0.0.1:5000": {
 *         "username": "u", "password": "p",   (both or neither), or
 *         "auth_file": "/etc/berth/auth.json", (the containers auth.json format)
 *         "cert_dir": "/etc/berth/certs.d/127.0.0.1:5000", (CA .crt files, client .cert and .key)
 *         "tls_verify": true }},       (false: no TLS check, or plain http)
 *     "mirrors": {                     registry host pattern → where its images really are
 *       "*.dkr.ecr.*.amazonaws.com": "127.0.0.1:5000/ecr",   (a listed registry [+ path prefix])
 *       "public.ecr.aws": "oci-dir:/srv/layouts" },           (DIR/REPOSITORY, an OCI layout, tag = TAG)
 *     "allow_unlisted": false,         true: registries not in hosts too (anonymous, TLS verified)
 *     "auth_file": null,               default auth.json for every registry
 *     "pull_timeout_ms": 1800000,      one skopeo run
 *     "resolve_timeout_ms": 2000,      berthd's own tag request (resolve.h), then skopeo
 *     "skopeo": "skopeo",              the binary (PATH searched)
 *     "arch": "amd64", "os": "linux" } the platform pulled (default: this host's)
 *
 * '*' in a mirror pattern is one DNS label (reference.h). A mirror that
 * leads to a registry not in hosts is refused when berthd starts (unless
 * allow_unlisted), so an operator's typo shows at once and not at the
 * first CreateEndpoint. */
#ifndef BERTH_REGISTRY_CONFIG_H
#define BERTH_REGISTRY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <yajl/yajl_tree.h>

#include "err.h"
#include "reference.h"

#define REGISTRY_MAX_HOSTS 64
#define REGISTRY_DEFAULT_TIMEOUT_MS 1800000LL
#define REGISTRY_DEFAULT_RESOLVE_TIMEOUT_MS 2000LL

struct registry_host {
	char *host;
	char *username, *password;
	char *auth_file;
	char *cert_dir;
	bool tls_verify;
};

struct registry_mirror {
	char *pattern;
	char *registry;  /* target host[:port], NULL for a directory */
	char *prefix;    /* path prefix in the target ("" none) */
	char *oci_dir;   /* directory of OCI layouts, NULL for a registry */
};

struct registry_config {
	struct registry_host hosts[REGISTRY_MAX_HOSTS];
	size_t n_hosts;
	struct registry_mirror mirrors[REGISTRY_MAX_HOSTS];
	size_t n_mirrors;
	bool allow_unlisted;
	char *auth_file;
	long long pull_timeout_ms;
	long long resolve_timeout_ms; /* of pull_timeout_ms, for berthd's own HEAD */
	char *skopeo;
	char *arch, *os;
};

/* Where one reference is pulled from. */
struct registry_route {
	const struct registry_host *host; /* NULL: a directory, or unlisted (defaults) */
	const struct registry_mirror *mirror; /* NULL: not mirrored */
	char source[1200];                /* skopeo's source: docker://… or oci:DIR/REPO:TAG */
	char pinned_source[1200];         /* the same at a digest (filled by registry_route_pin) */
};

int registry_config_defaults(struct registry_config *c, struct berth_err *err);
/* The "registries" object (replaces what c had). */
int registry_config_parse(yajl_val v, struct registry_config *c, struct berth_err *err);
/* Cross-checks (mirror targets listed); called once all settings are in. */
int registry_config_check(const struct registry_config *c, struct berth_err *err);
void registry_config_free(struct registry_config *c);

/* Finds where ref comes from: its mirror, else its own registry when
 * listed (or allow_unlisted). VALIDATION error (for the API user, naming
 * the image) when berthd may not pull it. */
int registry_route(const struct registry_config *c, const char *image, const struct image_reference *ref,
		   struct registry_route *out, struct berth_err *err);
/* Fills out->pinned_source for the resolved digest. */
int registry_route_pin(const struct image_reference *ref, struct registry_route *out, const char *digest);

#endif
