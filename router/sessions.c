/* sessions.c — the pin table of stateful sessions (sessions.h): a chained
 * hash of (endpoint, session ID), bounded, expired lazily. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "log.h"
#include "sessions.h"

struct sessions {
	struct session_pin **buckets;
	size_t n_buckets; /* a power of two */
	size_t count, max;
	bool greeted; /* berthd's pins were merged once (sessions_route_event) */
};

struct sessions *sessions_new(size_t max)
{
	if (max == 0)
		max = 1;
	struct sessions *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	size_t n = 64;
	while (n < max && n < (1u << 20))
		n <<= 1;
	s->buckets = calloc(n, sizeof(*s->buckets));
	if (!s->buckets) {
		free(s);
		return NULL;
	}
	s->n_buckets = n;
	s->max = max;
	return s;
}

void sessions_free(struct sessions *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_buckets; i++)
		while (s->buckets[i]) {
			struct session_pin *p = s->buckets[i];
			s->buckets[i] = p->next;
			free(p);
		}
	free(s->buckets);
	free(s);
}

size_t sessions_count(const struct sessions *s)
{
	return s->count;
}

size_t sessions_max(const struct sessions *s)
{
	return s->max;
}

bool session_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > SESSION_ID_MAX || !isalnum((unsigned char)id[0]) || !isalnum((unsigned char)id[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '-')
			return false;
	return true;
}

static bool digits(const char *p, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return true;
}

int session_parse_new(const char *value, char *id, int64_t *expires)
{
	const char *semi = strchr(value, ';');
	if (!semi || (size_t)(semi - value) > SESSION_ID_MAX)
		return -1;
	memcpy(id, value, (size_t)(semi - value));
	id[semi - value] = '\0';
	if (!session_id_valid(id) || !isspace((unsigned char)semi[1]))
		return -1;
	const char *t = semi + 2;
	static const char key[] = "Expires=";
	if (strncmp(t, key, sizeof(key) - 1) != 0)
		return -1;
	t += sizeof(key) - 1;
	/* YYYY-MM-DDTHH:MM:SSZ */
	if (strlen(t) != 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':' || t[19] != 'Z')
		return -1;
	int y, mo, d, h, mi, se;
	if (!digits(t, 4, &y) || !digits(t + 5, 2, &mo) || !digits(t + 8, 2, &d) || !digits(t + 11, 2, &h) ||
	    !digits(t + 14, 2, &mi) || !digits(t + 17, 2, &se))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return -1;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = se };
	time_t e = timegm(&tm);
	if (e == (time_t)-1)
		return -1;
	*expires = (int64_t)e;
	return 0;
}

const char *session_instance_key(const struct route_instance *in)
{
	return in && in->n_containers > 0 ? in->containers[0].socket : "";
}

static size_t hash(const struct sessions *s, const char *endpoint, const char *id)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (const char *p = endpoint; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	return (size_t)(h & (s->n_buckets - 1));
}

static struct session_pin **slot_of(struct sessions *s, const char *endpoint, const char *id)
{
	struct session_pin **pp = &s->buckets[hash(s, endpoint, id)];
	while (*pp && !(strcmp((*pp)->id, id) == 0 && strcmp((*pp)->endpoint, endpoint) == 0))
		pp = &(*pp)->next;
	return pp;
}

static void drop(struct sessions *s, struct session_pin **pp)
{
	struct session_pin *p = *pp;
	*pp = p->next;
	free(p);
	s->count--;
}

int session_resolve(const struct route_table *table, const struct session_pin *pin,
		    const struct route_variant **variant, const struct route_instance **instance)
{
	const struct route_endpoint *e = table ? route_table_find(table, pin->endpoint) : NULL;
	for (size_t v = 0; e && v < e->n_variants; v++) {
		if (strcmp(e->variants[v].name, pin->variant) != 0)
			continue;
		for (size_t i = 0; i < e->variants[v].n_instances; i++)
			if (strcmp(session_instance_key(&e->variants[v].instances[i]), pin->instance) == 0) {
				*variant = &e->variants[v];
				*instance = &e->variants[v].instances[i];
				return 0;
			}
	}
	return -1;
}

/* Drops pins expired at now, and those whose instance is not in table. */
static void purge(struct sessions *s, int64_t now, const struct route_table *table)
{
	for (size_t b = 0; b < s->n_buckets; b++) {
		struct session_pin **pp = &s->buckets[b];
		while (*pp) {
			const struct route_variant *v;
			const struct route_instance *in;
			if ((*pp)->expires <= now || (table && session_resolve(table, *pp, &v, &in) < 0))
				drop(s, pp);
			else
				pp = &(*pp)->next;
		}
	}
}

bool sessions_has_room(struct sessions *s, int64_t now, const struct route_table *table)
{
	if (s->count < s->max)
		return true;
	purge(s, now, table);
	return s->count < s->max;
}

static int copy_name(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (n >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

int sessions_pin(struct sessions *s, const char *endpoint, const char *id, const char *variant,
		 const char *instance_key, int64_t expires, int64_t now, const struct route_table *table)
{
	struct session_pin **pp = slot_of(s, endpoint, id);
	struct session_pin *p = *pp;
	if (!p) {
		if (!sessions_has_room(s, now, table)) {
			errno = ENOSPC;
			return -1;
		}
		pp = slot_of(s, endpoint, id); /* purge may have changed the chain */
		if (!(p = calloc(1, sizeof(*p)))) {
			errno = ENOMEM;
			return -1;
		}
	}
	struct session_pin tmp = { .expires = expires };
	if (copy_name(tmp.id, sizeof(tmp.id), id) < 0 || copy_name(tmp.endpoint, sizeof(tmp.endpoint), endpoint) < 0 ||
	    copy_name(tmp.variant, sizeof(tmp.variant), variant) < 0 ||
	    copy_name(tmp.instance, sizeof(tmp.instance), instance_key) < 0) {
		if (p != *pp)
			free(p);
		return -1;
	}
	tmp.next = p == *pp ? p->next : NULL;
	*p = tmp;
	if (p != *pp) {
		p->next = NULL;
		*pp = p;
		s->count++;
	}
	return 0;
}

const struct session_pin *sessions_find(struct sessions *s, const char *endpoint, const char *id, int64_t now)
{
	struct session_pin **pp = slot_of(s, endpoint, id);
	if (!*pp)
		return NULL;
	if ((*pp)->expires <= now) {
		drop(s, pp);
		return NULL;
	}
	return *pp;
}

bool sessions_unpin(struct sessions *s, const char *endpoint, const char *id)
{
	struct session_pin **pp = slot_of(s, endpoint, id);
	if (!*pp)
		return false;
	drop(s, pp);
	return true;
}

static int render_line(yajl_gen g, struct berth_buf *out)
{
	if (json_gen_finish(g, out) < 0)
		return -1;
	return buf_append(out, "\n", 1);
}

int session_render_pin(const struct session_pin *pin, struct berth_buf *out)
{
	yajl_gen g = json_gen_new();
	if (!g)
		return -1;
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "op", "session_pin");
	json_gen_kv_str(g, "endpoint", pin->endpoint);
	json_gen_kv_str(g, "id", pin->id);
	json_gen_kv_str(g, "variant", pin->variant);
	json_gen_kv_str(g, "instance", pin->instance);
	json_gen_kv_int(g, "expires", (long long)pin->expires);
	yajl_gen_map_close(g);
	return render_line(g, out);
}

int session_render_unpin(const char *endpoint, const char *id, struct berth_buf *out)
{
	yajl_gen g = json_gen_new();
	if (!g)
		return -1;
	yajl_gen_map_open(g);
	json_gen_kv_str(g, "op", "session_unpin");
	json_gen_kv_str(g, "endpoint", endpoint);
	json_gen_kv_str(g, "id", id);
	yajl_gen_map_close(g);
	return render_line(g, out);
}

/* One pin object of berthd's list, checked; false when not usable. */
static bool greeting_pin(yajl_val p, int64_t now, const char **endpoint, const char **id, const char **variant,
			 const char **instance, long long *expires)
{
	*endpoint = json_get_string(p, "endpoint");
	*id = json_get_string(p, "id");
	*variant = json_get_string(p, "variant");
	*instance = json_get_string(p, "instance");
	return *endpoint && *id && *variant && *instance && json_get_int64(p, "expires", expires) &&
	       session_id_valid(*id) && *expires > now;
}

/* Router's pins berthd's list lacks: told to berthd. */
static void resync(struct sessions *s, yajl_val pins, int64_t now, sessions_tell_fn tell, void *data)
{
	struct sessions *theirs = sessions_new(pins->u.array.len ? pins->u.array.len : 1);
	size_t unpinned = 0, pinned = 0;
	for (size_t i = 0; theirs && i < pins->u.array.len; i++) {
		const char *endpoint, *id, *variant, *instance;
		long long expires;
		if (!greeting_pin(pins->u.array.values[i], now, &endpoint, &id, &variant, &instance, &expires))
			continue;
		sessions_pin(theirs, endpoint, id, variant, instance, expires, now, NULL);
		if (!sessions_find(s, endpoint, id, now)) {
			tell(data, NULL, endpoint, id);
			unpinned++;
		}
	}
	for (size_t b = 0; theirs && b < s->n_buckets; b++)
		for (struct session_pin *p = s->buckets[b]; p; p = p->next)
			if (p->expires > now && !sessions_find(theirs, p->endpoint, p->id, now)) {
				tell(data, p, p->endpoint, p->id);
				pinned++;
			}
	if (!theirs)
		log_error("stateful sessions: out of memory comparing berthd's pins; they stay as berthd has them");
	sessions_free(theirs);
	log_info("stateful sessions: berthd is back; told it %zu pin%s and %zu unpin%s it missed", pinned,
		 pinned == 1 ? "" : "s", unpinned, unpinned == 1 ? "" : "s");
}

bool sessions_route_event(struct sessions *s, const char *line, size_t len, int64_t now, sessions_tell_fn tell,
			  void *data)
{
	if (!memmem(line, len < 32 ? len : 32, "\"sessions\"", 10))
		return false;
	struct berth_err err;
	yajl_val v = json_parse(line, len, &err);
	const char *op = v ? json_get_string(v, "op") : NULL;
	if (!op || strcmp(op, "sessions") != 0) {
		if (v)
			yajl_tree_free(v);
		return false;
	}
	yajl_val pins = json_get(v, "pins");
	if (!pins || !YAJL_IS_ARRAY(pins)) {
		log_error("stateful sessions: berthd's message has no \"pins\" list; ignored");
		yajl_tree_free(v);
		return true;
	}
	if (s->greeted) {
		resync(s, pins, now, tell, data);
		yajl_tree_free(v);
		return true;
	}
	s->greeted = true;
	size_t kept = 0, refused = 0;
	for (size_t i = 0; i < pins->u.array.len; i++) {
		const char *endpoint, *id, *variant, *instance;
		long long expires;
		if (!greeting_pin(pins->u.array.values[i], now, &endpoint, &id, &variant, &instance, &expires)) {
			refused++;
			continue;
		}
		if (sessions_find(s, endpoint, id, now)) /* the router's own is newer */
			continue;
		if (sessions_pin(s, endpoint, id, variant, instance, expires, now, NULL) < 0)
			refused++;
		else
			kept++;
	}
	yajl_tree_free(v);
	log_info("stateful sessions from berthd: %zu pinned%s", kept,
		 refused ? " (some refused: expired, invalid or over --max-sessions)" : "");
	return true;
}
