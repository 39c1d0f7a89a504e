/* sessions.c — the router's stateful session pins, kept by berthd so a
 * restarted router honours them (runtime.h, proto_control.h kind 10).
 *
 * On disk: STATE_DIR/sessions.json, a snapshot {"pins":[…]}, and
 * STATE_DIR/sessions.log, one JSON line per change since ({"op":"pin",…}
 * or {"op":"unpin","endpoint":E,"id":ID}), appended and flushed to disk
 * before the change is announced. A pin costs one short append however
 * many sessions there are; the snapshot is written anew (and the log
 * emptied) once the log has SESSIONS_LOG_SLACK more lines than there are
 * pins, and at start. Loading replays the log over the snapshot; a pin or
 * unpin applied twice is the same, so a crash between the two writes of a
 * compaction loses nothing, and a torn last line is skipped. */
#include "runtime_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "store.h"

#define SESSIONS_FILE "sessions.json"
#define SESSIONS_LOG "sessions.log"
#define SESSIONS_LOG_SLACK 1000
#define SESSION_FIELD_MAX 256 /* an ID (SageMaker's bound); names and socket paths are shorter */

struct runtime_session {
	char *endpoint, *id, *variant, *instance;
	long long expires; /* Unix seconds */
};

static void session_clear(struct runtime_session *s)
{
	free(s->endpoint);
	free(s->id);
	free(s->variant);
	free(s->instance);
	memset(s, 0, sizeof(*s));
}

static bool id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > SESSION_FIELD_MAX || !isalnum((unsigned char)id[0]) || !isalnum((unsigned char)id[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '-')
			return false;
	return true;
}

static bool field_ok(const char *s, size_t max)
{
	return s && s[0] && strlen(s) <= max;
}

static ssize_t find(const struct runtime *rt, const char *endpoint, const char *id)
{
	for (size_t i = 0; i < rt->n_sessions; i++)
		if (strcmp(rt->sessions[i].id, id) == 0 && strcmp(rt->sessions[i].endpoint, endpoint) == 0)
			return (ssize_t)i;
	return -1;
}

static void remove_at(struct runtime *rt, size_t i)
{
	session_clear(&rt->sessions[i]);
	rt->sessions[i] = rt->sessions[--rt->n_sessions];
}

/* A pin's members, as the snapshot and a "pin" log line both hold them
 * (add() reads them back). 0 or -1. */
static int gen_pin_members(yajl_gen g, const struct runtime_session *s)
{
	bool ok = json_gen_kv_str(g, "endpoint", s->endpoint) == 0 && json_gen_kv_str(g, "id", s->id) == 0 &&
		  json_gen_kv_str(g, "variant", s->variant) == 0 && json_gen_kv_str(g, "instance", s->instance) == 0 &&
		  json_gen_kv_int(g, "expires", s->expires) == 0;
	return ok ? 0 : -1;
}

static int render_pins(const struct runtime *rt, yajl_gen g)
{
	json_gen_str(g, "pins");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < rt->n_sessions; i++) {
		yajl_gen_map_open(g);
		gen_pin_members(g, &rt->sessions[i]);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	return 0;
}

/* Writes the pins to STATE_DIR/sessions.json (atomically, durably), then
 * empties the log. */
static void snapshot(struct runtime *rt)
{
	yajl_gen g = json_gen_new();
	struct berth_buf doc = BERTH_BUF_INIT;
	struct berth_err err;
	_cleanup_free_ char *path = fs_path("%s/%s", rt->cfg.state_dir, SESSIONS_FILE);
	if (!g || !path) {
		if (g)
			yajl_gen_free(g);
		log_error("cannot save the stateful session pins: out of memory; a router restart may lose recent ones");
		return;
	}
	yajl_gen_map_open(g);
	render_pins(rt, g);
	yajl_gen_map_close(g);
	if (json_gen_finish(g, &doc) < 0 || fs_write_atomic(path, doc.data, doc.len, 0600, &err) < 0) {
		log_error("cannot save the stateful session pins to %s: %s; a router restart may lose recent ones", path,
			  doc.data ? err.msg : "out of memory");
	} else if (rt->sessions_log_fd >= 0) {
		if (ftruncate(rt->sessions_log_fd, 0) < 0)
			log_warn("cannot empty the session log: %s", strerror(errno));
		rt->sessions_log_lines = 0;
	}
	buf_free(&doc);
}

static void log_open(struct runtime *rt)
{
	_cleanup_free_ char *path = fs_path("%s/%s", rt->cfg.state_dir, SESSIONS_LOG);
	if (path != NULL && rt->sessions_log_fd < 0)
		rt->sessions_log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (rt->sessions_log_fd < 0)
		log_warn("cannot open the session log %s: %s; each change writes the whole snapshot",
			 path ? path : SESSIONS_LOG, strerror(errno));
}

/* Records one change: a line appended (one write, then fdatasync), or the
 * whole snapshot when the log has grown past the pins it holds or cannot
 * be written. s: the pin a "pin" line records (NULL for "unpin"). */
static void persist(struct runtime *rt, const char *op, const char *endpoint, const char *id,
		    const struct runtime_session *s)
{
	if (rt->sessions_log_fd < 0 || rt->sessions_log_lines >= rt->n_sessions + SESSIONS_LOG_SLACK) {
		snapshot(rt);
		return;
	}
	yajl_gen g = json_gen_new();
	struct berth_buf line = BERTH_BUF_INIT;
	bool built = g != NULL && yajl_gen_map_open(g) == yajl_gen_status_ok && json_gen_kv_str(g, "op", op) == 0 &&
		     (s != NULL ? gen_pin_members(g, s) == 0
				: json_gen_kv_str(g, "endpoint", endpoint) == 0 && json_gen_kv_str(g, "id", id) == 0) &&
		     yajl_gen_map_close(g) == yajl_gen_status_ok;
	int r = -1;
	if (built)
		r = json_gen_finish(g, &line); /* frees g */
	else if (g != NULL)
		yajl_gen_free(g);
	if (r == 0 && buf_append(&line, "\n", 1) == 0 && fs_write_all(rt->sessions_log_fd, line.data, line.len) == 0 &&
	    fdatasync(rt->sessions_log_fd) == 0) {
		rt->sessions_log_lines++;
	} else {
		log_warn("cannot append to the session log (%s); writing the whole snapshot",
			 r == 0 ? strerror(errno) : "out of memory");
		snapshot(rt);
	}
	buf_free(&line);
}

/* Adds or replaces a pin from its JSON object: its index, or -1 when it is
 * not valid or does not fit (the reason logged by the caller). */
static ssize_t add(struct runtime *rt, yajl_val v, long long now, const char **why)
{
	const char *endpoint = json_get_string(v, "endpoint"), *id = json_get_string(v, "id");
	const char *variant = json_get_string(v, "variant"), *instance = json_get_string(v, "instance");
	long long expires;
	if (!field_ok(endpoint, 63) || !id || !id_valid(id) || !field_ok(variant, 63) || !field_ok(instance, 107) ||
	    !json_get_int64(v, "expires", &expires)) {
		*why = "malformed";
		return -1;
	}
	if (expires <= now) {
		*why = "expired";
		return -1;
	}
	ssize_t at = find(rt, endpoint, id);
	if (at < 0 && rt->n_sessions >= RUNTIME_SESSIONS_MAX) {
		*why = "over berthd's bound of pins (RUNTIME_SESSIONS_MAX)";
		return -1;
	}
	struct runtime_session s = { strdup(endpoint), strdup(id), strdup(variant), strdup(instance), expires };
	if (!s.endpoint || !s.id || !s.variant || !s.instance) {
		session_clear(&s);
		*why = "out of memory";
		return -1;
	}
	if (at >= 0) {
		session_clear(&rt->sessions[at]);
		rt->sessions[at] = s;
		return at;
	}
	if (rt->n_sessions == rt->cap_sessions) {
		size_t cap = rt->cap_sessions ? rt->cap_sessions * 2 : 16;
		struct runtime_session *grown = realloc(rt->sessions, cap * sizeof(*grown));
		if (!grown) {
			session_clear(&s);
			*why = "out of memory";
			return -1;
		}
		rt->sessions = grown;
		rt->cap_sessions = cap;
	}
	rt->sessions[rt->n_sessions] = s;
	return (ssize_t)rt->n_sessions++;
}

/* Applies STATE_DIR/sessions.log over what the snapshot gave. */
static void replay(struct runtime *rt, long long now, size_t *dropped)
{
	_cleanup_free_ char *path = fs_path("%s/%s", rt->cfg.state_dir, SESSIONS_LOG);
	struct berth_buf doc = BERTH_BUF_INIT;
	struct berth_err err;
	if (path == NULL ||
	    fs_read_file(path, &doc, (size_t)(RUNTIME_SESSIONS_MAX + SESSIONS_LOG_SLACK) * 1024, &err) < 0) {
		if (path != NULL && err.errnum != ENOENT)
			log_warn("stateful session changes not replayed: %s", err.msg);
		buf_free(&doc);
		return;
	}
	size_t applied = 0, torn = 0;
	for (size_t off = 0; off < doc.len;) {
		char *nl = memchr(doc.data + off, '\n', doc.len - off);
		if (nl == NULL) { /* a line cut by a crash: never announced */
			torn++;
			break;
		}
		yajl_val v = json_parse(doc.data + off, (size_t)(nl - (doc.data + off)), &err);
		off = (size_t)(nl - doc.data) + 1;
		const char *op = v ? json_get_string(v, "op") : NULL;
		const char *why;
		if (op != NULL && strcmp(op, "pin") == 0) {
			if (add(rt, v, now, &why) >= 0)
				applied++;
			else
				(*dropped)++;
		} else if (op != NULL && strcmp(op, "unpin") == 0) {
			const char *endpoint = json_get_string(v, "endpoint"), *id = json_get_string(v, "id");
			ssize_t at = endpoint && id ? find(rt, endpoint, id) : -1;
			if (at >= 0)
				remove_at(rt, (size_t)at);
			applied++;
		} else {
			torn++;
		}
		if (v)
			yajl_tree_free(v);
	}
	buf_free(&doc);
	if (applied || torn)
		log_info("stateful session log replayed: %zu changes%s", applied, torn ? " (a torn line skipped)" : "");
}

void runtime_sessions_load(struct runtime *rt)
{
	_cleanup_free_ char *path = fs_path("%s/%s", rt->cfg.state_dir, SESSIONS_FILE);
	struct berth_buf doc = BERTH_BUF_INIT;
	struct berth_err err;
	if (!path)
		return;
	long long now = (long long)clock_epoch_seconds();
	size_t dropped = 0;
	if (fs_read_file(path, &doc, (size_t)RUNTIME_SESSIONS_MAX * 1024, &err) < 0) {
		if (err.errnum != ENOENT)
			log_warn("stateful session pins not restored: %s", err.msg);
	} else {
		yajl_val v = json_parse(doc.data, doc.len, &err);
		yajl_val pins = v ? json_get(v, "pins") : NULL;
		if (!pins || !YAJL_IS_ARRAY(pins))
			log_warn("stateful session pins not restored: %s is not {\"pins\":[…]}", path);
		for (size_t i = 0; pins && YAJL_IS_ARRAY(pins) && i < pins->u.array.len; i++) {
			const char *why;
			if (add(rt, pins->u.array.values[i], now, &why) < 0)
				dropped++;
		}
		if (v)
			yajl_tree_free(v);
	}
	buf_free(&doc);
	replay(rt, now, &dropped);
	log_info("stateful session pins restored: %zu (%zu expired or invalid dropped)", rt->n_sessions, dropped);
	/* a fresh snapshot and an empty log to append to */
	log_open(rt);
	snapshot(rt);
}

void runtime_sessions_free(struct runtime *rt)
{
	for (size_t i = 0; i < rt->n_sessions; i++)
		session_clear(&rt->sessions[i]);
	free(rt->sessions);
	rt->sessions = NULL;
	rt->n_sessions = rt->cap_sessions = 0;
	if (rt->sessions_log_fd >= 0)
		close(rt->sessions_log_fd);
	rt->sessions_log_fd = -1;
}

void runtime_session_handle(struct runtime *rt, const char *op, yajl_val req)
{
	long long now = (long long)clock_epoch_seconds();
	pthread_mutex_lock(rt->lock);
	if (strcmp(op, "session_pin") == 0) {
		const char *why;
		ssize_t at = add(rt, req, now, &why);
		if (at >= 0)
			persist(rt, "pin", rt->sessions[at].endpoint, rt->sessions[at].id, &rt->sessions[at]);
		else
			log_warn("router's session pin not kept: %s", why);
	} else {
		const char *endpoint = json_get_string(req, "endpoint"), *id = json_get_string(req, "id");
		ssize_t at = endpoint && id ? find(rt, endpoint, id) : -1;
		if (at >= 0) {
			remove_at(rt, (size_t)at);
			persist(rt, "unpin", endpoint, id, NULL);
		}
	}
	pthread_mutex_unlock(rt->lock);
}

/* Is the instance a pin names (by its first container's shim socket) still
 * serving its endpoint? */
static bool instance_present(const struct runtime *rt, const struct runtime_session *s)
{
	const struct endpoint *e = store_get_endpoint(rt->store, s->endpoint);
	for (size_t j = 0; e && j < e->n_containers; j++)
		if (!e->containers[j].retiring && e->containers[j].socket &&
		    strcmp(e->containers[j].socket, s->instance) == 0)
			return true;
	return false;
}

int runtime_sessions_render(struct runtime *rt, struct berth_buf *out)
{
	long long now = (long long)clock_epoch_seconds();
	size_t before = rt->n_sessions;
	for (size_t i = 0; i < rt->n_sessions;)
		if (rt->sessions[i].expires <= now || !instance_present(rt, &rt->sessions[i]))
			remove_at(rt, i);
		else
			i++;
	if (rt->n_sessions != before)
		snapshot(rt);
	yajl_gen g = json_gen_new();
	if (!g)
		return -1;
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "op", "sessions");
	render_pins(rt, g);
	yajl_gen_map_close(g);
	return json_gen_finish(g, out);
}
