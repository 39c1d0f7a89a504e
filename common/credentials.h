/* credentials.h — berth's access keys and what each may do.
 *
 * The credentials file has the AWS credentials INI shape, one section per
 * key (docs/contract.md §1):
 *
 *   [ops]
 *   aws_access_key_id = AKIA…
 *   aws_secret_access_key = …
 *   allow = sagemaker:*
 *   [app]
 *   aws_access_key_id = …
 *   aws_secret_access_key = …
 *   allow = sagemaker:InvokeEndpoint sagemaker:InvokeEndpointAsync
 *   endpoints = prod-*
 *
 * `allow` lists IAM-style actions ("sagemaker:CreateModel"), `*` and `?`
 * globs allowed ("sagemaker:Describe*", "sagemaker:*", "*"); without it a
 * key may do nothing. `endpoints`, `endpoint_configs`, `models` restrict
 * the resources of that kind by name glob (space-separated; absent: any).
 * Lines starting with '#' or ';' are comments. Anything else — an unknown
 * member, a duplicate section, key id or member, a line outside a section,
 * a missing id or secret — is refused with the file, line and what to do:
 * berth never accepts a setting it would ignore.
 *
 * The same structures describe the router's copy, which carries no secret
 * (secret NULL; credentials_parse is berthd's, credentials_allows both's). */
#ifndef BERTH_CREDENTIALS_H
#define BERTH_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define CREDENTIALS_DEFAULT_PATH "/etc/berth/credentials"
#define CREDENTIALS_MAX_BYTES (1u << 20)

enum credentials_kind { CRED_KIND_NONE, CRED_KIND_ENDPOINT, CRED_KIND_ENDPOINT_CONFIG, CRED_KIND_MODEL };

struct credentials_globs {
	char **v;       /* NULL when the member is absent: any name */
	size_t n;
};

struct credentials_key {
	char *name;     /* the section: "ops" */
	char *key_id;
	char *secret;   /* NULL in the router's copy */
	struct credentials_globs allow, endpoints, endpoint_configs, models;
};

struct credentials {
	struct credentials_key *keys;
	size_t n;
};

/* Parses text (len bytes; path only names it in messages). 0, or -1 with
 * err (class INPUT: "PATH line N: …; …"). *out is replaced only on
 * success. */
int credentials_parse(const char *text, size_t len, const char *path, struct credentials *out, struct berth_err *err);
/* Reads and parses path, which must be a regular file owned by berthd's
 * uid and not readable or writable by group or others (the message says
 * the chmod/chown to run). */
int credentials_load(const char *path, struct credentials *out, struct berth_err *err);
void credentials_free(struct credentials *c);

const struct credentials_key *credentials_find(const struct credentials *c, const char *key_id);

/* May key perform action ("sagemaker:InvokeEndpoint") on the resource of
 * kind named name? name "*" stands for "every resource" (List* calls): it
 * passes only a key without a restriction of that kind, or one whose glob
 * list has "*". CRED_KIND_NONE: the action alone decides. */
bool credentials_allows(const struct credentials_key *key, const char *action, enum credentials_kind kind,
			const char *name);
/* True when every action key may perform is a runtime one
 * (sagemaker:InvokeEndpoint*): only such keys' derived signing keys are
 * handed to the router (docs/design.md, "Who holds secrets"). */
bool credentials_invoke_only(const struct credentials_key *key);

/* Shell-style match of '*' (any run, also empty) and '?' (one byte). */
bool credentials_glob_match(const char *pattern, const char *s);

/* The ARN an AccessDenied message names: arn:aws:sagemaker:REGION:ACCOUNT:
 * endpoint|endpoint-config|model/NAME, the name lower-cased as berth's ARNs
 * are ("*" for a List* call); "*" for CRED_KIND_NONE. Cut to len. */
void credentials_resource_arn(char *out, size_t len, const char *region, const char *account,
			      enum credentials_kind kind, const char *name);

/* AWS's AccessDeniedException message:
 * "User: arn:aws:iam::ACCOUNT:user/NAME is not authorized to perform:
 *  ACTION on resource: ARN because no identity-based policy allows the
 *  ACTION action". */
void credentials_denied_message(const struct credentials_key *key, const char *account, const char *action,
				const char *resource_arn, char *out, size_t len);

#endif
