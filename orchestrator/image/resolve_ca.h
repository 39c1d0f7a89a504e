/* resolve_ca.h — the CA certificates berthd's own tag requests (resolve.h)
 * trust for one cert_dir (containers-certs.d(5)): the system bundle plus
 * the directory's *.crt files, as one PEM text. Kept in memory per
 * cert_dir and read again only when one of those files changed (its
 * inode, size or modification time, or the directory's entries), so a
 * warm resolution reads no certificate file: it stats them.
 *
 * Thread-safe (one lock); callers get their own copy of the text. */
#ifndef BERTH_RESOLVE_CA_H
#define BERTH_RESOLVE_CA_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define RESOLVE_CA_SETS 8
#define RESOLVE_CA_MAX (4u << 20) /* one file and the whole text */

struct resolve_ca_cache {
	pthread_mutex_t lock;
	const char *system_bundle; /* read first when a cert_dir has any .crt (may be missing) */
	unsigned long loads;       /* texts (re)built from the files: for tests and logs */
	struct resolve_ca_set {
		char *cert_dir;     /* NULL: free slot */
		uint64_t signature; /* of the files' identities, see above */
		char *pem;
		size_t len;
		unsigned long long used; /* least recently used goes when full */
	} sets[RESOLVE_CA_SETS];
	unsigned long long clock;
};

/* system_bundle is borrowed (a string literal in berthd). */
void resolve_ca_init(struct resolve_ca_cache *c, const char *system_bundle);
void resolve_ca_free(struct resolve_ca_cache *c);

/* What cert_dir says. *signature: in, that of the CA text the caller
 * already holds (0: none); out, that of the current text (0 when the
 * directory has no *.crt: libcurl's default CAs then). *pem: a malloc'd
 * copy of the current text (*len bytes), or NULL when there is no *.crt
 * or the caller holds the current text already. *cert and *key
 * (malloc'd, NULL when none): the client certificate X.cert and its
 * X.key. 0, or -1 with why filled when the directory or a .crt in it
 * cannot be read or is over RESOLVE_CA_MAX. */
int resolve_ca_get(struct resolve_ca_cache *c, const char *cert_dir, uint64_t *signature, char **pem, size_t *len,
		   char **cert, char **key, char *why, size_t why_size);

#endif
