/* auth.c — see auth.h. */
#include "auth.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berthd_call.h"
#include "clock.h"
#include "credentials.h"
#include "errors.h"
#include "json.h"
#include "log.h"
#include "server.h"
#include "sigv4.h"

#define AUTH_DAYS 3
#define AUTH_VERIFY_TIMEOUT_MS 10000

struct auth_key {
	struct credentials_key ck; /* secret NULL */
	bool via_berthd;           /* may do more than invoke: berthd checks its calls */
	size_t n_days;
	struct { char date[9]; struct sigv4_mac *mac; } days[AUTH_DAYS];
};

struct router_auth {
	enum router_auth_mode mode;
	char region[64], account[64];
	struct auth_key *keys;
	size_t n_keys;
};

struct router_auth *router_auth_new(void)
{
	return calloc(1, sizeof(struct router_auth));
}

static void free_globs(struct credentials_globs *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->v[i]);
	free(g->v);
	g->v = NULL;
	g->n = 0;
}

static void free_keys(struct auth_key *keys, size_t n)
{
	if (keys == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(keys[i].ck.name);
		free(keys[i].ck.key_id);
		free_globs(&keys[i].ck.allow);
		free_globs(&keys[i].ck.endpoints);
		for (size_t d = 0; d < keys[i].n_days; d++)
			sigv4_mac_free(keys[i].days[d].mac);
	}
	if (keys != NULL) /* none yet: explicit_bzero(NULL, 0) is undefined (UBSan stops the router) */
		explicit_bzero(keys, n * sizeof(*keys));
	free(keys);
}

void router_auth_free(struct router_auth *a)
{
	if (!a)
		return;
	free_keys(a->keys, a->n_keys);
	free(a);
}

enum router_auth_mode router_auth_mode(const struct router_auth *a)
{
	return a->mode;
}

bool router_auth_hashes_bodies(const struct router_auth *a)
{
	return a->mode != ROUTER_AUTH_NONE;
}

/* JSON null: absent (any); an array of strings: the globs. */
static int read_globs(yajl_val v, struct credentials_globs *out)
{
	if (v == NULL || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_ARRAY(v))
		return -1;
	out->v = calloc(v->u.array.len + 1, sizeof(char *));
	if (!out->v)
		return -1;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val s = v->u.array.values[i];
		if (!YAJL_IS_STRING(s) || !(out->v[out->n] = strdup(s->u.string)))
			return -1;
		out->n++;
	}
	return 0;
}

static int hex_key(const char *hex, unsigned char key[SIGV4_KEY_LEN])
{
	if (strlen(hex) != 2 * SIGV4_KEY_LEN)
		return -1;
	for (size_t i = 0; i < SIGV4_KEY_LEN; i++) {
		unsigned v;
		if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1]) ||
		    sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		key[i] = (unsigned char)v;
	}
	return 0;
}

static int read_key(yajl_val v, struct auth_key *k)
{
	const char *id = json_get_string(v, "id"), *name = json_get_string(v, "name");
	const char *verify = json_get_string(v, "verify");
	if (!id || !name || !(k->ck.key_id = strdup(id)) || !(k->ck.name = strdup(name)))
		return -1;
	if (verify) {
		k->via_berthd = strcmp(verify, "berthd") == 0;
		return k->via_berthd ? 0 : -1;
	}
	yajl_val signing = json_get(v, "signing");
	if (read_globs(json_get(v, "allow"), &k->ck.allow) < 0 || k->ck.allow.v == NULL ||
	    read_globs(json_get(v, "endpoints"), &k->ck.endpoints) < 0 || !signing || !YAJL_IS_OBJECT(signing) ||
	    signing->u.object.len > AUTH_DAYS)
		return -1;
	for (size_t i = 0; i < signing->u.object.len; i++) {
		const char *day = signing->u.object.keys[i];
		yajl_val hex = signing->u.object.values[i];
		unsigned char key[SIGV4_KEY_LEN];
		if (strlen(day) != 8 || !YAJL_IS_STRING(hex) || hex_key(hex->u.string, key) < 0)
			return -1;
		k->days[i].mac = sigv4_mac_new(key);
		explicit_bzero(key, sizeof(key));
		if (k->days[i].mac == NULL)
			return -1;
		memcpy(k->days[i].date, day, 9);
		k->n_days++;
	}
	return 0;
}

/* The greeting carried signing keys: wipe them from the parsed tree and
 * the watch buffer before both are let go. */
static void forget_greeting(yajl_val v, char *line, size_t len)
{
	yajl_val keys = json_get(v, "keys");
	for (size_t i = 0; keys && YAJL_IS_ARRAY(keys) && i < keys->u.array.len; i++) {
		yajl_val signing = json_get(keys->u.array.values[i], "signing");
		for (size_t d = 0; signing && YAJL_IS_OBJECT(signing) && d < signing->u.object.len; d++) {
			yajl_val hex = signing->u.object.values[d];
			if (YAJL_IS_STRING(hex))
				explicit_bzero(hex->u.string, strlen(hex->u.string));
		}
	}
	yajl_tree_free(v);
	explicit_bzero(line, len);
}

bool router_auth_handle_event(struct router_auth *a, char *line, size_t len)
{
	if (!memmem(line, len < 64 ? len : 64, "\"auth\"", 6))
		return false;
	struct berth_err err;
	yajl_val v = json_parse(line, len, &err);
	const char *op = v ? json_get_string(v, "op") : NULL;
	if (!op || strcmp(op, "auth") != 0) {
		if (v)
			yajl_tree_free(v);
		return false;
	}
	const char *mode = json_get_string(v, "mode"), *region = json_get_string(v, "region");
	const char *account = json_get_string(v, "account");
	yajl_val keys = json_get(v, "keys");
	struct auth_key *fresh = NULL;
	size_t n = 0;
	bool ok = mode && region && account && keys && YAJL_IS_ARRAY(keys) &&
		  (strcmp(mode, "sigv4") == 0 || strcmp(mode, "none") == 0) && strlen(region) < sizeof(a->region) &&
		  strlen(account) < sizeof(a->account);
	if (ok && keys->u.array.len > 0) {
		fresh = calloc(keys->u.array.len, sizeof(*fresh));
		ok = fresh != NULL;
		for (size_t i = 0; ok && i < keys->u.array.len; i++) {
			n++;
			ok = read_key(keys->u.array.values[i], &fresh[i]) == 0;
		}
	}
	if (!ok) {
		log_error("berthd sent malformed access keys; the previous ones stay in use");
		free_keys(fresh, n);
		forget_greeting(v, line, len);
		return true;
	}
	enum router_auth_mode was = a->mode;
	free_keys(a->keys, a->n_keys);
	a->keys = fresh;
	a->n_keys = n;
	a->mode = strcmp(mode, "sigv4") == 0 ? ROUTER_AUTH_SIGV4 : ROUTER_AUTH_NONE;
	snprintf(a->region, sizeof(a->region), "%s", region);
	snprintf(a->account, sizeof(a->account), "%s", account);
	if (was != a->mode)
		log_info("access: %s (%zu key%s)", a->mode == ROUTER_AUTH_SIGV4 ? "SigV4 verified" : "auth none", n,
			 n == 1 ? "" : "s");
	forget_greeting(v, line, len);
	return true;
}

static const struct auth_key *find_key(const struct router_auth *a, const char *id)
{
	for (size_t i = 0; i < a->n_keys; i++)
		if (strcmp(a->keys[i].ck.key_id, id) == 0)
			return &a->keys[i];
	return NULL;
}

/* ---- auth none: Host ------------------------------------------------------- */

/* host[0..len) without its port: "[::1]:8080" → "::1", "a:80" → "a". */
static size_t host_name(const char *host, size_t len, const char **name)
{
	if (len > 0 && host[0] == '[') {
		const char *end = memchr(host, ']', len);
		if (!end)
			return 0;
		*name = host + 1;
		return (size_t)(end - host - 1);
	}
	const char *colon = memchr(host, ':', len);
	*name = host;
	return colon ? (size_t)(colon - host) : len;
}

static bool name_is(const char *name, size_t len, const char *want)
{
	return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

bool router_auth_host_allowed(const char *const *listen, size_t n_listen, const char *host, size_t len)
{
	const char *name;
	size_t n = host_name(host, len, &name);
	if (n == 0 || n >= 64)
		return false;
	char text[64];
	memcpy(text, name, n);
	text[n] = '\0';
	struct in_addr v4;
	struct in6_addr v6;
	if (name_is(text, n, "localhost") || (inet_pton(AF_INET, text, &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127) ||
	    (inet_pton(AF_INET6, text, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6)))
		return true;
	for (size_t i = 0; i < n_listen; i++) {
		const char *lname;
		size_t ln = host_name(listen[i], strlen(listen[i]), &lname);
		if (ln == n && strncasecmp(lname, text, n) == 0)
			return true;
	}
	return false;
}

static const char *request_host(const struct request *req, size_t *len)
{
	const char *h = request_header(req, "host", len);
	return h ? h : request_header(req, ":authority", len);
}

/* true when the call may go on; else req is answered. */
static bool gate_common(struct server *srv, struct request *req, bool runtime)
{
	struct router_auth *a = srv->auth;
	if (a->mode == ROUTER_AUTH_UNKNOWN) {
		if (runtime)
			respond_runtime_error(req, 503, "ServiceUnavailable",
					      "berth-router has not received its access keys from berthd yet; retry shortly.");
		else
			respond_control_error(req, 503, "ServiceUnavailable",
					      "berth-router has not received its access keys from berthd yet; retry shortly.");
		return false;
	}
	if (a->mode == ROUTER_AUTH_NONE) {
		size_t len = 0;
		const char *host = request_host(req, &len);
		if (!host || !router_auth_host_allowed(srv->cfg.listen, srv->cfg.n_listen, host, len)) {
			static const char fmt[] =
				"Host '%.*s' is not served by this berth: with auth none it answers only localhost, "
				"127.0.0.1, [::1] and its listen addresses (a guard against DNS rebinding). Call it by "
				"one of those names, or run berthd with keys (auth sigv4).";
			int shown = host ? (int)(len < 200 ? len : 200) : 0;
			if (runtime)
				respond_runtime_error(req, 403, "AccessDeniedException", fmt, shown, host ? host : "");
			else
				respond_control_error(req, 403, "AccessDeniedException", fmt, shown, host ? host : "");
			return false;
		}
	}
	return true;
}

bool router_auth_control(struct server *srv, struct request *req)
{
	return gate_common(srv, req, false);
}

/* ---- sigv4: invocations ------------------------------------------------------- */

void router_auth_refuse(struct request *req, const struct sigv4_error *e, bool runtime)
{
	if (runtime)
		respond_runtime_error(req, sigv4_error_http_status(e->status, true), sigv4_error_type(e->status), "%s",
				      e->message);
	else
		respond_control_error(req, sigv4_error_http_status(e->status, false), sigv4_error_type(e->status),
				      "%s", e->message);
}

static void refuse(struct request *req, const struct sigv4_error *e)
{
	router_auth_refuse(req, e, true);
}

static size_t request_sigv4_headers(const struct request *req, struct sigv4_header *out)
{
	for (size_t i = 0; i < req->n_headers; i++) {
		out[i].name = request_str(req, req->headers[i].name);
		out[i].name_len = req->headers[i].name.len;
		out[i].value = request_str(req, req->headers[i].value);
		out[i].value_len = req->headers[i].value.len;
	}
	return req->n_headers;
}

/* A question to berthd about a key whose day key the router does not hold. */
struct verify_call {
	struct server *srv;
	struct request *req;
	router_auth_continue_fn cont;
	struct berthd_call *call;
	char endpoint[];
};

static void verify_cancel(void *arg)
{
	struct verify_call *v = arg;
	berthd_call_cancel(v->call);
	free(v);
}

static void verify_done(void *data, enum berthd_call_outcome outcome, const char *line, size_t len,
			const char *detail)
{
	struct verify_call *v = data;
	struct request *req = v->req;
	request_set_cancel(req, NULL, NULL);
	if (outcome != BERTHD_CALL_OK) {
		respond_runtime_error(req, 503, "ServiceUnavailable",
				      "The signature could not be checked: berthd did not answer (%s); retry.",
				      detail ? detail : "timed out");
		free(v);
		return;
	}
	struct berth_err err;
	yajl_val r = json_parse(line, len, &err);
	bool ok = false;
	long long status = 0;
	const char *type = r ? json_get_string(r, "type") : NULL, *msg = r ? json_get_string(r, "message") : NULL;
	if (!r || !json_get_bool(r, "ok", &ok) ||
	    (!ok && (!type || !msg || !json_get_int64(r, "status", &status) || status < 400 || status > 599))) {
		log_error("malformed auth_verify reply from berthd: %.200s", line);
		respond_runtime_error(req, 500, "InternalFailure", "berthd sent a malformed reply");
	} else if (!ok) {
		respond_runtime_error(req, (int)status, type, "%s", msg);
	} else {
		v->cont(v->srv, req, v->endpoint);
	}
	if (r)
		yajl_tree_free(r);
	free(v);
}

/* The IAM action of an invocation: InvokeEndpointAsync for
 * /endpoints/NAME/async-invocations, else InvokeEndpoint (the streaming
 * call is authorised as InvokeEndpoint, as on SageMaker). */
static const char *invoke_action(const struct request *req)
{
	static const char suffix[] = "/async-invocations";
	const char *path = request_path(req);
	size_t n = strcspn(path, "?#"), sl = sizeof(suffix) - 1;
	return n > sl && memcmp(path + n - sl, suffix, sl) == 0 ? "sagemaker:InvokeEndpointAsync"
								 : "sagemaker:InvokeEndpoint";
}

static void ask_berthd(struct server *srv, struct request *req, const char *endpoint, const struct sigv4_auth *auth,
		       const struct sigv4_request *sreq, router_auth_continue_fn cont)
{
	struct berth_buf sts = BERTH_BUF_INIT, line = BERTH_BUF_INIT;
	struct sigv4_error e;
	int r = sigv4_string_to_sign(sreq, auth, &sts, &e);
	if (r != SIGV4_OK) {
		if (r < 0)
			respond_runtime_error(req, 500, "InternalFailure", "out of memory");
		else
			refuse(req, &e);
		buf_free(&sts);
		return;
	}
	size_t elen = strlen(endpoint);
	struct verify_call *v = malloc(sizeof(*v) + elen + 1);
	yajl_gen g = json_gen_new();
	if (!v || !g || yajl_gen_map_open(g) != yajl_gen_status_ok || json_gen_kv_str(g, "op", "auth_verify") < 0 ||
	    json_gen_kv_str(g, "key_id", auth->key_id) < 0 || json_gen_str(g, "string_to_sign") < 0 ||
	    json_gen_strn(g, sts.data, sts.len) < 0 || json_gen_kv_str(g, "signature", auth->signature) < 0 ||
	    json_gen_kv_str(g, "endpoint", endpoint) < 0 || json_gen_kv_str(g, "action", invoke_action(req)) < 0 ||
	    yajl_gen_map_close(g) != yajl_gen_status_ok ||
	    json_gen_finish(g, &line) < 0 || buf_append(&line, "\n", 1) < 0) {
		if (g)
			yajl_gen_free(g);
		free(v);
		buf_free(&sts);
		buf_free(&line);
		respond_runtime_error(req, 500, "InternalFailure", "out of memory");
		return;
	}
	g = NULL;
	buf_free(&sts);
	v->srv = srv;
	v->req = req;
	v->cont = cont;
	memcpy(v->endpoint, endpoint, elen + 1);
	v->call = berthd_call_start(srv, line.data, line.len, true, AUTH_VERIFY_TIMEOUT_MS, verify_done, v);
	buf_free(&line);
	if (!v->call) {
		free(v);
		respond_runtime_error(req, 500, "InternalFailure", "out of memory");
		return;
	}
	request_set_cancel(req, verify_cancel, v);
}

bool router_auth_refused_at_head(const struct server *srv, struct request *req, struct sigv4_error *out)
{
	const struct router_auth *a = srv->auth;
	if (a == NULL || a->mode != ROUTER_AUTH_SIGV4)
		return false;
	struct sigv4_header headers[REQUEST_MAX_HEADERS];
	struct sigv4_request sreq = {
		.method = "POST",
		.target = request_path(req),
		.headers = headers,
		.n_headers = request_sigv4_headers(req, headers),
		.payload_hash = SIGV4_EMPTY_PAYLOAD_HASH, /* not looked at before step 2 */
	};
	if (req->auth == NULL && (req->auth = malloc(sizeof(*req->auth))) == NULL)
		return false; /* parsed again when the request is whole */
	if (sigv4_parse(&sreq, a->region, SIGV4_SERVICE, (int64_t)clock_epoch_seconds(), req->auth, out) != SIGV4_OK)
		return true;
	if (find_key(a, req->auth->key_id) == NULL) {
		sigv4_error_unknown_key(out);
		return true;
	}
	req->auth_parsed = true; /* the invocation's check starts from it */
	return false;
}

void router_auth_invoke(struct server *srv, struct request *req, const char *endpoint, router_auth_continue_fn cont)
{
	struct router_auth *a = srv->auth;
	if (!gate_common(srv, req, true))
		return;
	if (a->mode == ROUTER_AUTH_NONE) {
		cont(srv, req, endpoint);
		return;
	}
	struct sigv4_header headers[REQUEST_MAX_HEADERS];
	char hash[65];
	request_payload_hash(req, hash);
	struct sigv4_request sreq = {
		.method = "POST",
		.target = request_path(req),
		.headers = headers,
		.n_headers = request_sigv4_headers(req, headers),
		.payload_hash = hash,
	};
	struct sigv4_auth parsed;
	const struct sigv4_auth *auth_p = req->auth_parsed ? req->auth : &parsed;
	struct sigv4_error e;
	if (!req->auth_parsed &&
	    sigv4_parse(&sreq, a->region, SIGV4_SERVICE, (int64_t)clock_epoch_seconds(), &parsed, &e) != SIGV4_OK) {
		refuse(req, &e);
		return;
	}
	const struct auth_key *k = find_key(a, auth_p->key_id);
	if (!k) {
		sigv4_error_unknown_key(&e);
		refuse(req, &e);
		return;
	}
	struct sigv4_mac *day_key = NULL;
	for (size_t i = 0; i < k->n_days; i++)
		if (strcmp(k->days[i].date, auth_p->date) == 0)
			day_key = k->days[i].mac;
	if (k->via_berthd || !day_key) {
		ask_berthd(srv, req, endpoint, auth_p, &sreq, cont);
		return;
	}
	int r = sigv4_verify_mac(&sreq, auth_p, day_key, &e);
	if (r != SIGV4_OK) {
		if (r < 0)
			respond_runtime_error(req, 500, "InternalFailure", "out of memory");
		else
			refuse(req, &e);
		return;
	}
	const char *action = invoke_action(req);
	if (!credentials_allows(&k->ck, action, CRED_KIND_ENDPOINT, endpoint)) {
		char arn[512];
		credentials_resource_arn(arn, sizeof(arn), a->region, a->account, CRED_KIND_ENDPOINT, endpoint);
		e.status = SIGV4_DENIED;
		credentials_denied_message(&k->ck, a->account, action, arn, e.message,
					   sizeof(e.message));
		refuse(req, &e);
		return;
	}
	cont(srv, req, endpoint);
}
