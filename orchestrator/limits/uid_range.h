/* uid_range.h — which host uids and gids an endpoint instance's user
 * namespace maps (like podman's --userns=auto): USERNS_RANGE_SIZE ids
 * starting at policy.base + k * USERNS_RANGE_SIZE, the lowest k whose range
 * is in use by no container record and overlaps no /etc/subuid or
 * /etc/subgid entry (those belong to real users' rootless containers).
 *
 * The ranges in use are the uid_base of the container records in the
 * state store (resources.h), so a restarted berthd keeps them, and a range
 * is free again once its endpoint's record is deleted. The caller picks
 * and persists under one hold of the store's lock. */
#ifndef BERTH_UID_RANGE_H
#define BERTH_UID_RANGE_H

#include <stddef.h>

#include "err.h"

#define USERNS_RANGE_SIZE 65536LL
/* The highest valid uid is 2^32 - 2 ((uid_t)-1 means "none"). */
#define USERNS_ID_LIMIT 4294967295LL
#define USERNS_DEFAULT_BASE 100000000LL

struct uid_span {
	long long start, count;
};

struct uid_range_policy {
	long long base;            /* first id a range may start at */
	struct uid_span *reserved; /* the subordinate id entries found */
	size_t n_reserved;
};

/* Parses /etc/subuid-style text ("name:start:count" lines; '#' comments and
 * blank lines skipped). A malformed line is skipped with a warning naming
 * it (label: the file's name), as shadow's tools skip it. Appends to *spans. */
int uid_range_parse_subid(const char *label, const char *text, size_t len, struct uid_span **spans, size_t *n,
			  struct berth_err *err);
/* policy->base = base; reserved = the entries of subuid_path and
 * subgid_path (a missing file has none). */
int uid_range_policy_load(struct uid_range_policy *policy, long long base, const char *subuid_path,
			  const char *subgid_path, struct berth_err *err);
void uid_range_policy_free(struct uid_range_policy *policy);

/* The lowest free range start (see above) given the starts in use; the
 * message says when every range is taken. */
int uid_range_pick(const struct uid_range_policy *policy, const long long *used, size_t n_used, long long *start,
		   struct berth_err *err);

#endif
