/* credentials.c — see credentials.h. Needs no library beyond libc, so that
 * every binary (the CLI too) can read the file. */
#include "credentials.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

#define KEY_ID_MIN 16
#define KEY_ID_MAX 128
#define SECRET_MAX 128
#define SECTION_MAX 64 /* an IAM user name: [A-Za-z0-9+=,.@_-]{1,64} */
#define GLOB_MAX 256

/* ---- globs -------------------------------------------------------------- */

static bool glob_match(const char *p, const char *s, bool fold_case)
{
	/* Iterative: on a mismatch after a '*', that '*' takes one more byte
	 * and matching resumes after it. Each star only moves forward, so
	 * the cost is O(len(p) * len(s)) at worst, never exponential. */
	const char *star = NULL, *star_s = NULL;
	while (*s != '\0') {
		if (*p == '*') {
			star = ++p;
			star_s = s;
			continue;
		}
		bool same = fold_case ? tolower((unsigned char)*p) == tolower((unsigned char)*s) : *p == *s;
		if (*p != '\0' && (*p == '?' || same)) {
			p++, s++;
			continue;
		}
		if (star == NULL)
			return false;
		p = star;
		s = ++star_s;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

bool credentials_glob_match(const char *pattern, const char *s)
{
	return glob_match(pattern, s, false);
}

/* ---- queries ------------------------------------------------------------ */

/* Equal, in a time that depends on len only (not on where they differ). */
static bool same_bytes(const char *a, const char *b, size_t len)
{
	unsigned char diff = 0;
	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

const struct credentials_key *credentials_find(const struct credentials *c, const char *key_id)
{
	if (c == NULL || key_id == NULL)
		return NULL;
	size_t len = strlen(key_id);
	for (size_t i = 0; i < c->n; i++) {
		const char *k = c->keys[i].key_id;
		/* constant time in the bytes of a candidate of the same length */
		if (strlen(k) == len && same_bytes(k, key_id, len))
			return &c->keys[i];
	}
	return NULL;
}

static const struct credentials_globs *globs_of_kind(const struct credentials_key *key, enum credentials_kind kind)
{
	switch (kind) {
	case CRED_KIND_ENDPOINT:
		return &key->endpoints;
	case CRED_KIND_ENDPOINT_CONFIG:
		return &key->endpoint_configs;
	case CRED_KIND_MODEL:
		return &key->models;
	case CRED_KIND_NONE:
		break;
	}
	return NULL;
}

bool credentials_allows(const struct credentials_key *key, const char *action, enum credentials_kind kind,
			const char *name)
{
	if (key == NULL || action == NULL)
		return false;
	/* IAM matches action names case-insensitively */
	bool allowed = false;
	for (size_t i = 0; i < key->allow.n && !allowed; i++)
		allowed = glob_match(key->allow.v[i], action, true);
	if (!allowed)
		return false;
	const struct credentials_globs *g = globs_of_kind(key, kind);
	if (g == NULL || g->v == NULL)
		return true;
	if (name == NULL)
		return false;
	for (size_t i = 0; i < g->n; i++) {
		if (strcmp(name, "*") == 0 ? strcmp(g->v[i], "*") == 0 : glob_match(g->v[i], name, true))
			return true;
	}
	return false;
}

bool credentials_invoke_only(const struct credentials_key *key)
{
	/* A glob is runtime-only when its literal part, before any '*' or
	 * '?', already reaches "sagemaker:InvokeEndpoint": then every action
	 * it matches begins so ("sagemaker:Invoke*" does not qualify). */
	static const char prefix[] = "sagemaker:InvokeEndpoint";
	for (size_t i = 0; i < key->allow.n; i++) {
		const char *g = key->allow.v[i];
		size_t literal = strcspn(g, "*?");
		if (literal < sizeof(prefix) - 1 || strncasecmp(g, prefix, sizeof(prefix) - 1) != 0)
			return false;
	}
	return true;
}

void credentials_resource_arn(char *out, size_t len, const char *region, const char *account,
			      enum credentials_kind kind, const char *name)
{
	const char *part = kind == CRED_KIND_ENDPOINT ? "endpoint"
			   : kind == CRED_KIND_ENDPOINT_CONFIG ? "endpoint-config"
			   : kind == CRED_KIND_MODEL ? "model" : NULL;
	int n = part ? snprintf(out, len, "arn:aws:sagemaker:%s:%s:%s/", region, account, part)
		     : snprintf(out, len, "*");
	if (n < 0 || (size_t)n >= len || part == NULL)
		return;
	size_t i = (size_t)n;
	for (const char *p = name ? name : ""; *p && i < len - 1; p++, i++)
		out[i] = (*p >= 'A' && *p <= 'Z') ? (char)(*p + ('a' - 'A')) : *p;
	out[i] = '\0';
}

void credentials_denied_message(const struct credentials_key *key, const char *account, const char *action,
				const char *resource_arn, char *out, size_t len)
{
	snprintf(out, len,
		 "User: arn:aws:iam::%s:user/%s is not authorized to perform: %s on resource: %s because no "
		 "identity-based policy allows the %s action",
		 account, key->name, action, resource_arn, action);
}

/* ---- freeing ------------------------------------------------------------- */

static void globs_free(struct credentials_globs *g)
{
	for (size_t i = 0; i < g->n; i++)
		free(g->v[i]);
	free(g->v);
	g->v = NULL;
	g->n = 0;
}

static void key_free(struct credentials_key *k)
{
	free(k->name);
	free(k->key_id);
	if (k->secret != NULL) {
		explicit_bzero(k->secret, strlen(k->secret));
		free(k->secret);
	}
	globs_free(&k->allow);
	globs_free(&k->endpoints);
	globs_free(&k->endpoint_configs);
	globs_free(&k->models);
	memset(k, 0, sizeof(*k));
}

void credentials_free(struct credentials *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		key_free(&c->keys[i]);
	free(c->keys);
	c->keys = NULL;
	c->n = 0;
}

/* ---- parsing -------------------------------------------------------------- */

struct parser {
	const char *path;
	size_t line;         /* 1-based number of the line being read */
	size_t section_line; /* where the current section began */
	struct credentials result;
	struct berth_err *err;
};

__attribute__((format(printf, 2, 3))) static int parse_fail(struct parser *p, const char *fmt, ...)
{
	char what[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return berth_err_setc(p->err, BERTH_ERR_VALIDATION, 0, "%s line %zu: %s", p->path, p->line, what);
}

static bool is_section_char(char c)
{
	return isalnum((unsigned char)c) || (c != '\0' && strchr("+=,.@_-", c) != NULL);
}

static bool is_key_id(const char *s, size_t len)
{
	if (len < KEY_ID_MIN || len > KEY_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

static bool is_secret(const char *s, size_t len)
{
	if (len == 0 || len > SECRET_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return false;
	return true;
}

static bool is_action_glob(const char *s, size_t len)
{
	if (len == 1 && s[0] == '*')
		return true;
	static const char service[] = "sagemaker:";
	size_t n = sizeof(service) - 1;
	if (len <= n || len > GLOB_MAX || strncasecmp(s, service, n) != 0)
		return false;
	for (size_t i = n; i < len; i++)
		if (!isalpha((unsigned char)s[i]) && s[i] != '*' && s[i] != '?')
			return false;
	return true;
}

static bool is_name_glob(const char *s, size_t len)
{
	if (len == 0 || len > GLOB_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '*' && s[i] != '?')
			return false;
	return true;
}

static char *dup_n(const char *s, size_t len)
{
	char *d = strndup(s, len);
	if (d == NULL)
		errno = ENOMEM;
	return d;
}

/* A space-separated list of globs, each checked by valid(). */
static int parse_globs(struct parser *p, const char *member, const char *v, size_t len,
		       bool (*valid)(const char *, size_t), const char *expected, struct credentials_globs *out)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if ((i == 0 || v[i - 1] == ' ' || v[i - 1] == '\t') && v[i] != ' ' && v[i] != '\t')
			n++;
	if (n == 0)
		return parse_fail(p, "%s is empty; list %s, or remove the line", member, expected);
	out->v = calloc(n, sizeof(*out->v));
	if (out->v == NULL)
		return berth_err_set(p->err, ENOMEM, "%s line %zu", p->path, p->line);
	for (size_t i = 0; i < len;) {
		while (i < len && (v[i] == ' ' || v[i] == '\t'))
			i++;
		size_t start = i;
		while (i < len && v[i] != ' ' && v[i] != '\t')
			i++;
		if (i == start)
			break;
		if (!valid(v + start, i - start))
			return parse_fail(p, "%s: '%.*s' is not %s; correct it", member, (int)(i - start > 128 ? 128 : i - start),
					  v + start, expected);
		out->v[out->n] = dup_n(v + start, i - start);
		if (out->v[out->n] == NULL)
			return berth_err_set(p->err, ENOMEM, "%s line %zu", p->path, p->line);
		out->n++;
	}
	return 0;
}

static struct credentials_key *current_key(struct parser *p)
{
	return p->result.n > 0 ? &p->result.keys[p->result.n - 1] : NULL;
}

/* The section just ended must have its id and secret. */
static int section_finish(struct parser *p)
{
	struct credentials_key *k = current_key(p);
	if (k == NULL)
		return 0;
	const char *missing = k->key_id == NULL ? "aws_access_key_id" : k->secret == NULL ? "aws_secret_access_key" : NULL;
	if (missing == NULL)
		return 0;
	size_t line = p->line;
	p->line = p->section_line;
	parse_fail(p, "section [%s] has no %s; add `%s = …` to it, or remove the section", k->name, missing, missing);
	p->line = line;
	return -1;
}

static int section_start(struct parser *p, const char *s, size_t len)
{
	/* "[name]" with optional blanks inside the brackets */
	if (len < 2 || s[len - 1] != ']')
		return parse_fail(p, "a section header is `[NAME]` alone on its line; close the bracket or remove what follows it");
	const char *name = s + 1;
	size_t name_len = len - 2;
	while (name_len > 0 && (*name == ' ' || *name == '\t'))
		name++, name_len--;
	while (name_len > 0 && (name[name_len - 1] == ' ' || name[name_len - 1] == '\t'))
		name_len--;
	bool ok = name_len > 0 && name_len <= SECTION_MAX;
	for (size_t i = 0; ok && i < name_len; i++)
		ok = is_section_char(name[i]);
	if (!ok)
		return parse_fail(p,
				  "section name '%.*s' is not a user name (1 to 64 of letters, digits and +=,.@_-); "
				  "rename it",
				  (int)(name_len > 128 ? 128 : name_len), name);
	if (section_finish(p) < 0)
		return -1;
	for (size_t i = 0; i < p->result.n; i++)
		if (strlen(p->result.keys[i].name) == name_len && memcmp(p->result.keys[i].name, name, name_len) == 0)
			return parse_fail(p, "section [%.*s] appears twice; merge the two or rename one", (int)name_len,
					  name);
	struct credentials_key *keys = realloc(p->result.keys, (p->result.n + 1) * sizeof(*keys));
	if (keys == NULL)
		return berth_err_set(p->err, ENOMEM, "%s line %zu", p->path, p->line);
	p->result.keys = keys;
	struct credentials_key *k = &keys[p->result.n];
	memset(k, 0, sizeof(*k));
	k->name = dup_n(name, name_len);
	if (k->name == NULL)
		return berth_err_set(p->err, ENOMEM, "%s line %zu", p->path, p->line);
	p->result.n++;
	p->section_line = p->line;
	return 0;
}

static int member_set(struct parser *p, const char *name, size_t name_len, const char *v, size_t len)
{
	struct credentials_key *k = current_key(p);
	if (k == NULL)
		return parse_fail(p, "`%.*s` is outside any section; put a `[NAME]` line above it", (int)name_len, name);
#define IS(s) (name_len == sizeof(s) - 1 && memcmp(name, s, name_len) == 0)
	struct credentials_globs *globs = NULL;
	if (IS("aws_access_key_id")) {
		if (k->key_id != NULL)
			return parse_fail(p, "aws_access_key_id appears twice in section [%s]; keep one", k->name);
		if (!is_key_id(v, len))
			return parse_fail(p,
					  "aws_access_key_id must be 16 to 128 upper-case letters and digits "
					  "(as AKIAIOSFODNN7EXAMPLE); correct it");
		for (size_t i = 0; i + 1 < p->result.n; i++)
			if (strlen(p->result.keys[i].key_id) == len && memcmp(p->result.keys[i].key_id, v, len) == 0)
				return parse_fail(p, "aws_access_key_id %.*s is also section [%s]'s; give each key its own id",
						  (int)len, v, p->result.keys[i].name);
		k->key_id = dup_n(v, len);
		return k->key_id ? 0 : berth_err_set(p->err, ENOMEM, "%s line %zu", p->path, p->line);
	}
	if (IS("aws_secret_access_key")) {
		if (k->secret != NULL)
			return parse_fail(p, "aws_secret_access_key appears twice in section [%s]; keep one", k->name);
		if (!is_secret(v, len))
			return parse_fail(p,
					  "aws_secret_access_key must be 1 to 128 printable ASCII characters without "
					  "spaces; correct it");
		k->secret = dup_n(v, len);
		return k->secret ? 0 : berth_err_set(p->err, ENOMEM, "%s line %zu", p->path, p->line);
	}
	const char *expected = "endpoint names or globs (letters, digits, '-', '*', '?')";
	bool (*valid)(const char *, size_t) = is_name_glob;
	const char *member = NULL;
	if (IS("allow")) {
		globs = &k->allow, member = "allow";
		valid = is_action_glob;
		expected = "actions as sagemaker:NAME (letters, '*', '?'), or *";
	} else if (IS("endpoints")) {
		globs = &k->endpoints, member = "endpoints";
	} else if (IS("endpoint_configs")) {
		globs = &k->endpoint_configs, member = "endpoint_configs";
		expected = "endpoint configuration names or globs (letters, digits, '-', '*', '?')";
	} else if (IS("models")) {
		globs = &k->models, member = "models";
		expected = "model names or globs (letters, digits, '-', '*', '?')";
	}
#undef IS
	if (globs == NULL)
		return parse_fail(p,
				  "unknown member `%.*s`; the members are aws_access_key_id, aws_secret_access_key, "
				  "allow, endpoints, endpoint_configs and models",
				  (int)(name_len > 64 ? 64 : name_len), name);
	if (globs->v != NULL)
		return parse_fail(p, "%s appears twice in section [%s]; join the lists on one line", member, k->name);
	return parse_globs(p, member, v, len, valid, expected, globs);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int parse_line(struct parser *p, const char *s, size_t len)
{
	if (len > 0 && s[len - 1] == '\r')
		len--;
	while (len > 0 && is_blank(*s))
		s++, len--;
	while (len > 0 && is_blank(s[len - 1]))
		len--;
	if (len == 0 || s[0] == '#' || s[0] == ';')
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\t')
			return parse_fail(p, "a control character (byte 0x%02x); the file must be text", (unsigned char)s[i]);
	if (s[0] == '[')
		return section_start(p, s, len);
	const char *eq = memchr(s, '=', len);
	if (eq == NULL)
		return parse_fail(p, "expected `name = value`, `[NAME]` or a comment; correct the line");
	size_t name_len = (size_t)(eq - s);
	while (name_len > 0 && is_blank(s[name_len - 1]))
		name_len--;
	const char *v = eq + 1;
	size_t v_len = len - (size_t)(v - s);
	while (v_len > 0 && is_blank(*v))
		v++, v_len--;
	if (name_len == 0)
		return parse_fail(p, "a value without a name; write `name = value`");
	return member_set(p, s, name_len, v, v_len);
}

int credentials_parse(const char *text, size_t len, const char *path, struct credentials *out, struct berth_err *err)
{
	struct parser p = { .path = path, .line = 0, .err = err };
	if (len > CREDENTIALS_MAX_BYTES)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "%s: %zu bytes exceeds the limit of %u bytes for a credentials file; remove keys",
				      path, len, CREDENTIALS_MAX_BYTES);
	size_t start = 0;
	while (start < len) {
		const char *nl = memchr(text + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - text) : len;
		p.line++;
		if (parse_line(&p, text + start, end - start) < 0)
			goto fail;
		start = end + 1;
	}
	if (section_finish(&p) < 0)
		goto fail;
	*out = p.result;
	return 0;
fail:
	credentials_free(&p.result);
	return -1;
}

int credentials_load(const char *path, struct credentials *out, struct berth_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		int e = errno;
		if (e == ENOENT)
			return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
					      "credentials file %s does not exist; create it (mode 0600, one [NAME] "
					      "section per key, docs/contract.md §1) or name another with --credentials",
					      path);
		berth_err_set(err, e, "credentials file %s", path);
		return berth_err_blame_input(err);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return berth_err_set(err, errno, "credentials file %s", path);
	if (!S_ISREG(st.st_mode))
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0, "credentials file %s is not a regular file; name the file itself",
				      path);
	uid_t uid = geteuid();
	if (st.st_uid != uid)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "credentials file %s is owned by uid %u, not by berthd's uid %u, so another user "
				      "could change the keys; run `chown %u %s`",
				      path, (unsigned)st.st_uid, (unsigned)uid, (unsigned)uid, path);
	if ((st.st_mode & 077) != 0)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "credentials file %s has mode %04o: group or others may read or change the secret "
				      "keys; run `chmod 600 %s`",
				      path, (unsigned)(st.st_mode & 07777), path);
	if (st.st_size > (off_t)CREDENTIALS_MAX_BYTES)
		return berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
				      "credentials file %s: %lld bytes exceeds the limit of %u bytes; remove keys", path,
				      (long long)st.st_size, CREDENTIALS_MAX_BYTES);
	struct berth_buf text = BERTH_BUF_INIT;
	int r = 0;
	for (;;) {
		if (buf_reserve(&text, 65536) < 0) {
			r = berth_err_set(err, ENOMEM, "credentials file %s", path);
			break;
		}
		ssize_t n = read(fd, text.data + text.len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = berth_err_set(err, errno, "credentials file %s", path);
			break;
		}
		if (n == 0)
			break;
		text.len += (size_t)n;
		text.data[text.len] = '\0';
		if (text.len > CREDENTIALS_MAX_BYTES) {
			r = berth_err_setc(err, BERTH_ERR_VALIDATION, 0,
					   "credentials file %s exceeds the limit of %u bytes; remove keys", path,
					   CREDENTIALS_MAX_BYTES);
			break;
		}
	}
	if (r == 0)
		r = credentials_parse(text.data ? text.data : "", text.len, path, out, err);
	if (text.data != NULL)
		explicit_bzero(text.data, text.cap);
	buf_free(&text);
	return r;
}
