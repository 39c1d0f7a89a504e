/* listen_policy.h — who may listen where (docs/contract.md §1).
 *
 * Loopback addresses (127.0.0.0/8, ::1) may be served any way. Any other
 * address, the wildcards 0.0.0.0 and :: included, takes callers from the
 * network, so it needs TLS and signed requests:
 *   - a cleartext --listen on it is refused unless --insecure-listen
 *     (then a warning is logged at every start);
 *   - auth none on it is refused, --insecure-listen or not.
 * --tls-listen needs --tls-cert and --tls-key, which come together. No
 * address may be given twice (berthd binds with SO_REUSEPORT: two sockets
 * would share its connections at random).
 * berthd checks this before it binds anything, and exits 2 on a refusal. */
#ifndef BERTH_LISTEN_POLICY_H
#define BERTH_LISTEN_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct listen_policy {
	const char *const *listen;     /* cleartext (and TLS) addresses */
	size_t n_listen;
	const char *const *tls_listen; /* TLS-only addresses */
	size_t n_tls_listen;
	bool have_cert, have_key;      /* --tls-cert, --tls-key given */
	bool auth_none;                /* --auth none */
	bool insecure_listen;
};

/* 0: allowed (warnings logged); -1: err says what is refused and which
 * flag to add. */
int listen_policy_check(const struct listen_policy *p, struct berth_err *err);

#endif
