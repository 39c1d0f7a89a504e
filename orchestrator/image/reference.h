/* reference.h — registry image references, as users write them
 * (`[registry/]repository[:tag][@sha256:digest]`), parsed and normalized
 * the way Docker and the SageMaker SDK read them.
 *
 * Grammar (the distribution project's reference grammar):
 *   - the first '/'-separated part is the registry when it has a '.' or a
 *     ':' or is "localhost" ("host", "host:port", "[v6]:port"); otherwise
 *     the registry is docker.io, and a one-part name on docker.io gets
 *     "library/" (as `docker pull ubuntu` does);
 *   - repository parts: lower-case letters and digits, separated by one
 *     '.', one or two '_', or any number of '-';
 *   - tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; digest: sha256: and 64
 *     lower-case hex digits; neither given: the tag "latest";
 *   - registry/repository together at most 255 bytes.
 * Anything else is refused with a message naming what is wrong. */
#ifndef BERTH_REFERENCE_H
#define BERTH_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define REFERENCE_DEFAULT_REGISTRY "docker.io"
#define REFERENCE_MAX_NAME 255

struct image_reference {
	char registry[REFERENCE_MAX_NAME + 1];   /* "host[:port]", never empty */
	char repository[REFERENCE_MAX_NAME + 1]; /* "a/b/c" */
	char tag[129];                           /* "" when only a digest was given */
	char digest[72];                         /* "sha256:HEX" or "" */
};

/* True when an Image names a registry reference (not a host path, not an
 * "oci:" layout). Says nothing of whether it is well formed. */
bool image_reference_is(const char *image);

/* Parses and normalizes text (VALIDATION errors for the API user). */
int image_reference_parse(const char *text, struct image_reference *out, struct berth_err *err);

/* "registry/repository[:tag][@digest]" into buf; -1 when it does not fit. */
int image_reference_format(const struct image_reference *r, char *buf, size_t size);
/* "registry/repository@digest" (the pinned form) into buf. */
int image_reference_pinned(const struct image_reference *r, const char *digest, char *buf, size_t size);

/* True when pattern matches a registry host: '*' stands for one DNS label
 * (any run of characters without '.' or ':'), everything else literally,
 * case-insensitively. "*.dkr.ecr.*.amazonaws.com" matches
 * "123456789012.dkr.ecr.us-east-1.amazonaws.com". */
bool image_reference_host_matches(const char *pattern, const char *host);

#endif
