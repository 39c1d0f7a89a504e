/* sessions.h — stateful sessions (InvokeEndpoint SessionId): the table of
 * pins, session ID -> the endpoint instance whose container created it.
 *
 * A request with X-Amzn-SageMaker-Session-Id: NEW_SESSION is routed as
 * usual; when the container answers X-Amzn-SageMaker-New-Session-Id
 * "ID; Expires=YYYY-MM-DDTHH:MM:SSZ" the router pins ID (per endpoint) to
 * that variant and instance. Later requests naming ID go there; a container
 * answer X-Amzn-SageMaker-Closed-Session-Id: ID unpins it. A pin ends at
 * its Expires time, when closed, or when its instance is no longer in the
 * route table (the instance is identified by its first container's shim
 * socket, which a replacement instance does not share).
 *
 * The table is bounded (router flag --max-sessions): sessions_pin refuses
 * a new pin when full, after dropping expired pins and pins whose instance
 * is gone. berthd keeps a copy (proto_control.h "session_pin" /
 * "session_unpin", sent by the router as pins change; berthd persists them
 * in its state directory) and hands them back at the route watch's greeting
 * ({"op":"sessions","pins":[…]}), so a restarted router honours them.
 * Single-threaded; times are Unix seconds passed in by the caller. */
#ifndef BERTH_ROUTER_SESSIONS_H
#define BERTH_ROUTER_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "route_table.h"

#define SESSION_ID_MAX 256               /* SageMaker's bound on a session ID */
#define SESSION_NEW "NEW_SESSION"
#define SESSION_ID_HEADER "X-Amzn-SageMaker-Session-Id"
#define SESSION_NEW_ID_HEADER "X-Amzn-SageMaker-New-Session-Id"
#define SESSION_CLOSED_ID_HEADER "X-Amzn-SageMaker-Closed-Session-Id"
#define SESSIONS_DEFAULT_MAX 10000
/* --max-sessions's bound: berthd keeps at most as many (RUNTIME_SESSIONS_MAX) */
#define SESSIONS_LIMIT 10000

struct session_pin {
	char id[SESSION_ID_MAX + 1];
	char endpoint[ROUTE_MAX_NAME + 1];
	char variant[ROUTE_MAX_NAME + 1];
	char instance[108];              /* the instance's first container's shim socket */
	int64_t expires;                 /* Unix seconds */
	struct session_pin *next;        /* hash chain */
};

struct sessions;

/* NULL on ENOMEM. max >= 1. */
struct sessions *sessions_new(size_t max);
void sessions_free(struct sessions *s);
size_t sessions_count(const struct sessions *s);
size_t sessions_max(const struct sessions *s);

/* SageMaker's pattern for a session ID: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$,
 * at most SESSION_ID_MAX characters. */
bool session_id_valid(const char *id);
/* Parses a container's New-Session-Id value "ID; Expires=YYYY-MM-DDTHH:MM:SSZ"
 * (one white-space character after ';', as SageMaker's pattern). 0 with id
 * (SESSION_ID_MAX + 1 bytes) and *expires (Unix seconds) set, or -1. */
int session_parse_new(const char *value, char *id, int64_t *expires);

/* The key of an instance for session_pin.instance. */
const char *session_instance_key(const struct route_instance *in);

/* Pins (endpoint, id) to variant/instance until expires. Replaces an
 * existing pin of the same id. 0; -1 with errno ENOSPC (full, even after
 * dropping pins expired at now or whose instance is not in table; table
 * may be NULL), ENAMETOOLONG (a name does not fit) or ENOMEM. */
int sessions_pin(struct sessions *s, const char *endpoint, const char *id, const char *variant,
		 const char *instance_key, int64_t expires, int64_t now, const struct route_table *table);
/* Would a new pin fit (after the same dropping)? */
bool sessions_has_room(struct sessions *s, int64_t now, const struct route_table *table);
/* The pin of (endpoint, id), or NULL when there is none or it has expired
 * at now (then it is dropped). The pointer is valid until the next call
 * that changes the table. */
const struct session_pin *sessions_find(struct sessions *s, const char *endpoint, const char *id, int64_t now);
/* Drops the pin of (endpoint, id); whether there was one. */
bool sessions_unpin(struct sessions *s, const char *endpoint, const char *id);

/* The line telling berthd about a pin ({"op":"session_pin",…}\n), or
 * that (endpoint, id) is gone ({"op":"session_unpin",…}\n). 0 or -1 (ENOMEM). */
int session_render_pin(const struct session_pin *pin, struct berth_buf *out);
int session_render_unpin(const char *endpoint, const char *id, struct berth_buf *out);
/* Tells berthd a pin (pin set) or an unpin (pin NULL, endpoint and id). */
typedef void (*sessions_tell_fn)(void *data, const struct session_pin *pin, const char *endpoint, const char *id);
/* A line on the route watch: berthd's {"op":"sessions","pins":[…]}. The
 * first one a router gets is merged into s (pins that are valid, not
 * expired at now, and fit; the router's own pins of the same ID win).
 * A later one (berthd restarted while this router ran, and may have missed
 * changes it sent meanwhile) is answered instead: the router's table is
 * the truth, so tell() unpins what berthd has and s has not, and pins what
 * s has and berthd has not. false when the line is not one. */
bool sessions_route_event(struct sessions *s, const char *line, size_t len, int64_t now, sessions_tell_fn tell,
			  void *data);

/* The instance of table a pin names: its variant and instance, or -1 when
 * the endpoint, variant or instance is gone. */
int session_resolve(const struct route_table *table, const struct session_pin *pin,
		    const struct route_variant **variant, const struct route_instance **instance);

#endif
