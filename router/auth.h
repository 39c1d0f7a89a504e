/* auth.h — the router's part of access control (docs/design.md, "Who
 * holds secrets"; docs/contract.md §1 for the answers).
 *
 * berthd sends the router, on the route watch and again whenever they
 * change, {"op":"auth",…}: the mode (sigv4 or none), the region and
 * account, and per access key either the derived day keys (sigv4.h step
 * 3) of a key that may only invoke, or "verify":"berthd" for a key that
 * may do more. The router never sees a secret:
 *  - invocations signed by an invoke-only key are verified here, and the
 *    key's `allow` / `endpoints` checked here;
 *  - invocations signed by any other key are verified by berthd from the
 *    string to sign computed here (op auth_verify), one round trip;
 *  - control-plane calls are forwarded whole (method, path, headers, body)
 *    and verified by berthd, so a router that is taken over cannot forge
 *    them.
 * With auth none, the Host of every call must be a loopback name or a
 * listen address (DNS rebinding). Until berthd's first message, calls get
 * 503 (the keys are not known yet). */
#ifndef BERTH_ROUTER_AUTH_H
#define BERTH_ROUTER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct server;
struct request;
struct router_auth;
struct sigv4_error;

enum router_auth_mode { ROUTER_AUTH_UNKNOWN, ROUTER_AUTH_SIGV4, ROUTER_AUTH_NONE };

struct router_auth *router_auth_new(void);
void router_auth_free(struct router_auth *a);
/* A watch line: true when it was berthd's {"op":"auth",…} (taken: the
 * table is replaced whole; a malformed one is logged and the old kept;
 * either way the line, which carries signing keys, is zeroed). */
bool router_auth_handle_event(struct router_auth *a, char *line, size_t len);
enum router_auth_mode router_auth_mode(const struct router_auth *a);
/* Does a request need its body hashed as it arrives (sigv4, or not yet
 * known)? */
bool router_auth_hashes_bodies(const struct router_auth *a);

/* The gate of an invocation of endpoint: on success calls
 * cont(srv, req, endpoint) (now or once berthd has answered), else answers
 * req with the refusal. */
typedef void (*router_auth_continue_fn)(struct server *srv, struct request *req, const char *endpoint);
void router_auth_invoke(struct server *srv, struct request *req, const char *endpoint, router_auth_continue_fn cont);
/* The gate of a control call: true to forward it (berthd verifies it),
 * false when req was answered (auth none and a foreign Host, or no keys
 * yet). */
bool router_auth_control(struct server *srv, struct request *req);

/* With sigv4, what the head alone already refuses — no or a malformed
 * Authorization, a date out of the skew, a wrong scope, an unknown key —
 * is answered before the body is read, so a caller without a key cannot
 * make the router hold bodies. true with *out filled: refuse the request
 * with it (dispatch_refuse_early). */
bool router_auth_refused_at_head(const struct server *srv, struct request *req, struct sigv4_error *out);
/* Answers req with the refusal found at its head, in its plane's shape. */
void router_auth_refuse(struct request *req, const struct sigv4_error *e, bool runtime);

/* auth none: is host (the Host header or :authority, with or without a
 * port) a loopback name or the host of one of the listen addresses? */
bool router_auth_host_allowed(const char *const *listen, size_t n_listen, const char *host, size_t len);

#endif
