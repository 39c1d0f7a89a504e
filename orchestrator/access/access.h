/* access.h — who may call berthd's API: the access keys of the
 * credentials file, verified and authorized here (docs/contract.md §1,
 * docs/design.md "Who holds secrets").
 *
 * berthd is the only process that reads the secrets. It verifies
 * control-plane calls itself, from the signed request the router forwards
 * (method, path, every header, the body: the router cannot alter a call
 * without breaking its signature), and hands the router only
 *  - the derived day keys (sigv4.h step 3) of keys that may do nothing but
 *    invoke, for the three UTC days around now, so the router verifies
 *    their invocations on its own; and
 *  - the names of the other keys, whose invocations it asks berthd to
 *    check (access_verify_string): a router that is taken over can then
 *    invoke, as it always could, but never act as an admin.
 *
 * Thread-safe: control connections verify while the main thread reloads. */
#ifndef BERTH_ACCESS_H
#define BERTH_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "credentials.h"
#include "err.h"
#include "sigv4.h"

struct access;

struct access_config {
	const char *mode;        /* "sigv4" or "none" */
	const char *credentials; /* the keys file (read in sigv4 mode only) */
	const char *region;      /* the scope region calls must be signed for */
	const char *account;     /* for ARNs in AccessDenied messages */
};

/* Checks the mode and, with sigv4, reads the credentials file (which must
 * exist and hold at least one key: the message says how to make one). */
int access_open(const struct access_config *cfg, struct access **out, struct berth_err *err);
void access_free(struct access *a);
/* false with auth none. */
bool access_enabled(const struct access *a);

/* Re-reads the credentials file when it changed (size, mtime, inode) or
 * when force is set. 1: new keys in use; 0: unchanged; -1: err says why
 * and the keys in use stay. */
int access_reload(struct access *a, bool force, struct berth_err *err);
/* The number of keys in use. */
size_t access_key_count(struct access *a);

/* The router's greeting (runtime_add_watch_greeting): {"op":"auth",…}
 * with the mode, region, account and the keys as above, derived for the
 * UTC days of now - 1 day, now and now + 1 day. */
int access_render_router(struct access *a, int64_t now, struct berth_buf *out);

/* Who made a verified call. */
struct access_principal {
	char key_id[SIGV4_MAX_KEY_ID + 1];
	char name[128];
	char signed_headers[1024]; /* of the verified request ("" with auth none) */
};

/* Verifies a signed request (steps 1–4 of sigv4.h, the key looked up in
 * the file). SIGV4_OK with *who filled, else the status with err. With
 * auth none: SIGV4_OK, who->name "anonymous". */
enum sigv4_status access_authenticate(struct access *a, const struct sigv4_request *req, int64_t now,
				      struct access_principal *who, struct sigv4_error *err);

/* The router's question for a key whose day key it does not hold:
 * does signature sign string_to_sign (which the router computed) with
 * key_id's key? The string's date must be within the skew of now and its
 * scope this berthd's region and service. */
enum sigv4_status access_verify_string(struct access *a, const char *key_id, const char *string_to_sign,
				       const char *signature, int64_t now, struct access_principal *who,
				       struct sigv4_error *err);

/* May who perform action ("sagemaker:CreateModel") on the resource of
 * kind named name (credentials_allows)? SIGV4_OK or SIGV4_DENIED with
 * AWS's message. With auth none: always SIGV4_OK. */
enum sigv4_status access_authorize(struct access *a, const struct access_principal *who, const char *action,
				   enum credentials_kind kind, const char *name, struct sigv4_error *err);

#endif
