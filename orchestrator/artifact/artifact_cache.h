/* artifact_cache.h — the bookkeeping of STATE/artifacts (artifact.h): which
 * entries containers hold, what each is, and taking away those none holds.
 *
 * An entry is held by every container whose STATE/containers/ID/artifacts
 * file names its key (one key a line, written by container_start once its
 * artifacts are resolved, replaced at each restart, gone with the
 * container's directory). Entries are resolved and holds written under the
 * cache lock taken shared; removal takes it exclusive without waiting, so
 * an entry a container is about to mount is never removed under it.
 *
 * STATE/artifacts/.meta/KEY: "URL\nBYTES\n", written when the entry is
 * made (entries from before have it filled in on the first listing); an
 * entry's mtime is the last time a container start used it. */
#ifndef BERTH_ARTIFACT_CACHE_H
#define BERTH_ARTIFACT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define ARTIFACT_KEY_LEN 16

/* The automatic trim's default bound (artifact_cache_max_bytes). */
#define ARTIFACT_CACHE_DEFAULT_MAX_BYTES (20ULL << 30)

struct artifact_entry {
	char key[ARTIFACT_KEY_LEN + 1];
	char *url;            /* NULL when not recorded */
	uint64_t bytes;
	long long last_used;  /* epoch seconds */
	char **holders;       /* container ids */
	size_t n_holders;
};

/* The cache lock, shared (container starts) or exclusive without waiting
 * (removal: -1 with EWOULDBLOCK when a start holds it). An fd to close. */
int artifact_cache_lock(const char *state_dir, bool exclusive, struct berth_err *err);

/* Records, with the lock held shared, that container id holds keys (empty
 * strings are skipped; none: the container holds nothing). */
int artifact_cache_hold(const char *state_dir, const char *id, const char *const *keys, size_t n,
			struct berth_err *err);

/* Called by artifact.c for an entry a start uses: marks it used now and,
 * for a new entry, records its URL and size. */
void artifact_cache_used(const char *state_dir, const char *key, const char *url, bool made);

/* Every entry, least recently used first. */
int artifact_cache_list(const char *state_dir, struct artifact_entry **out, size_t *n, struct berth_err *err);
void artifact_entries_free(struct artifact_entry *v, size_t n);

/* Removes entries no container holds, least recently used first, until
 * the cache takes at most keep_bytes (0: every one not held), and what
 * interrupted unpacks left. -1 with EWOULDBLOCK when a container start
 * holds the lock (nothing removed: try again). */
int artifact_cache_prune(const char *state_dir, uint64_t keep_bytes, size_t *removed, uint64_t *freed,
			 struct berth_err *err);

#endif
