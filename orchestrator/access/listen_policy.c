/* listen_policy.c — see listen_policy.h. */
#include "listen_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "log.h"
#include "netaddr.h"

/* -1: not an address; 0: another host may reach it; 1: loopback. */
static int loopback(const char *flag, const char *address, struct berth_err *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (netaddr_parse(address, &ss, &len, err) < 0)
		return berth_err_prefix(err, "%s", flag);
	return netaddr_is_loopback(&ss) ? 1 : 0;
}

/* The i-th address of listen, then tls_listen, and the flag it came with. */
static const char *address_at(const struct listen_policy *p, size_t i, const char **flag)
{
	*flag = i < p->n_listen ? "--listen" : "--tls-listen";
	return i < p->n_listen ? p->listen[i] : p->tls_listen[i - p->n_listen];
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* Two sockets on one address (berthd sets SO_REUSEPORT) would share its
 * connections at random between a TLS-only and a cleartext listener. */
static int check_duplicates(const struct listen_policy *p, struct berth_err *err)
{
	size_t n = p->n_listen + p->n_tls_listen;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			const char *fi, *fj, *ai = address_at(p, i, &fi), *aj = address_at(p, j, &fj);
			struct sockaddr_storage a, b;
			socklen_t la, lb;
			if (netaddr_parse(ai, &a, &la, err) < 0 || netaddr_parse(aj, &b, &lb, err) < 0)
				return -1;
			if (same_address(&a, &b) && ntohs(((const struct sockaddr_in *)&a)->sin_port) != 0)
				return berth_err_set(err, 0, "%s %s and %s %s are the same address: give each address once "
							     "(a --listen address takes TLS too once there is a certificate)",
						     fi, ai, fj, aj);
		}
	return 0;
}

int listen_policy_check(const struct listen_policy *p, struct berth_err *err)
{
	if (p->have_cert != p->have_key)
		return berth_err_set(err, 0, "%s: give both --tls-cert (the certificate chain, PEM) and --tls-key (its "
					     "private key, PEM), or neither",
				     p->have_cert ? "--tls-cert without --tls-key" : "--tls-key without --tls-cert");
	if (p->n_tls_listen > 0 && !p->have_cert)
		return berth_err_set(err, 0, "--tls-listen %s needs a certificate: add --tls-cert PEM and --tls-key PEM",
				     p->tls_listen[0]);
	for (size_t i = 0; i < p->n_tls_listen; i++) {
		int l = loopback("--tls-listen", p->tls_listen[i], err);
		if (l < 0)
			return -1;
		if (l == 0 && p->auth_none)
			return berth_err_set(err, 0, "--tls-listen %s is not a loopback address and --auth none would let "
						     "anyone who reaches it call every operation: use --auth sigv4 "
						     "(keys in --credentials), or listen on 127.0.0.1 or [::1]",
					     p->tls_listen[i]);
	}
	for (size_t i = 0; i < p->n_listen; i++) {
		int l = loopback("--listen", p->listen[i], err);
		if (l < 0)
			return -1;
		if (l == 1)
			continue;
		if (p->auth_none)
			return berth_err_set(err, 0, "--listen %s is not a loopback address and --auth none would let "
						     "anyone who reaches it call every operation (--insecure-listen does "
						     "not change that): use --auth sigv4 (keys in --credentials), or "
						     "listen on 127.0.0.1 or [::1]",
					     p->listen[i]);
		if (!p->insecure_listen)
			return berth_err_set(err, 0, "--listen %s is not a loopback address: callers and their keys "
						     "would cross the network in cleartext. Serve it over TLS: add "
						     "--tls-cert PEM --tls-key PEM and use --tls-listen %s instead; or, "
						     "on a network you trust, add --insecure-listen",
					     p->listen[i], p->listen[i]);
		log_warn("--insecure-listen: serving cleartext HTTP on %s, which is not a loopback address: requests "
			 "and their signatures cross the network unencrypted; prefer --tls-listen",
			 p->listen[i]);
	}
	return check_duplicates(p, err);
}
