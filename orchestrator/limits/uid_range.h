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
#include <stdint.h>

#include "err.h"

#define USERNS_RANGE_SIZE 65536LL
/* The highest valid uid is 2^32 - 2 ((uid_t)-1 means "none"). */
#define USERNS_ID_LIMIT 4294967295LL
#define USERNS_DEFAULT_BASE 100000000LL
/* (identity) The ids one berthd hands out lie in one window of this many
 * (1024 ranges) above userns_uid_base; two berthds on one host hold
 * disjoint windows (uid_range_window_claim). */
#define USERNS_WINDOW_IDS (1024 * USERNS_RANGE_SIZE)
/* The host-wide file whose byte ranges stand for uid windows. */
#define USERNS_WINDOW_LOCK "/run/berth-userns.lock"

struct uid_span {
	long long start, count;
};

struct uid_range_policy {
	long long base;            /* first id a range may start at */
	long long limit;           /* ranges end at or below it; 0: USERNS_ID_LIMIT */
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

/* How many whole windows lie between base and USERNS_ID_LIMIT. */
long long uid_range_window_count(long long base);
/* The k-th window a berthd whose identity number is number (identity.h)
 * tries: the default identity (0) has only base itself (k 0); any other
 * starts at a window chosen by its number among those above base's first
 * and tries the next ones in turn, so two identities rarely want the same
 * window and never both get it. -1: no k-th window. */
long long uid_range_window_candidate(long long base, uint32_t number, long long k);
/* The pid of a process under proc (/proc) whose uid_map maps host ids
 * inside [start, start + USERNS_WINDOW_IDS): a container of a berthd that
 * is down (its window lock went with it) or any other user namespace; 0:
 * none; identity maps (the host's own namespace) are no range. A window
 * in use that way is not taken by a berthd choosing one. */
long long uid_range_window_mapped(const char *proc, long long start);
/* Takes the window [start, start + USERNS_WINDOW_IDS) host-wide: a write
 * lock on those bytes of lock_path, held as long as *fd stays open (the
 * process's life), so it is free again the moment its berthd dies and can
 * never outlive it. 0: taken; 1: another process holds an overlapping
 * window (err names its pid); -1: err says what failed. */
int uid_range_window_claim(const char *lock_path, long long start, int *fd, struct berth_err *err);
/* Lets go of a window uid_range_window_claim took on fd. */
void uid_range_window_release(int fd, long long start);

#endif
