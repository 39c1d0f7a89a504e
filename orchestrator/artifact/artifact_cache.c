/* artifact_cache.c — see artifact_cache.h. */
#include "artifact_cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fsutil.h"
#include "log.h"
#include "paths.h"

#define HOLDS_FILE "artifacts"
#define META_MAX 8192

static bool is_key(const char *s)
{
	if (strlen(s) != ARTIFACT_KEY_LEN)
		return false;
	for (size_t i = 0; i < ARTIFACT_KEY_LEN; i++)
		if (!strchr("0123456789abcdef", s[i]))
			return false;
	return true;
}

int artifact_cache_lock(const char *state_dir, bool exclusive, struct berth_err *err)
{
	_cleanup_free_ char *dir = fs_path("%s/artifacts", state_dir);
	_cleanup_free_ char *path = fs_path("%s/artifacts/.lock", state_dir);
	if (dir == NULL || path == NULL)
		return berth_err_set(err, ENOMEM, "artifact cache");
	if (fs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return berth_err_set(err, errno, "cannot open %s", path);
	int r;
	while ((r = flock(fd, exclusive ? LOCK_EX | LOCK_NB : LOCK_SH)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return berth_err_set(err, e, "a container is starting and resolving its model data");
		return berth_err_set(err, e, "cannot lock %s", path);
	}
	return fd;
}

int artifact_cache_hold(const char *state_dir, const char *id, const char *const *keys, size_t n,
			struct berth_err *err)
{
	_cleanup_free_ char *dir = state_path_container(state_dir, id);
	_cleanup_free_ char *path = dir ? fs_path("%s/%s", dir, HOLDS_FILE) : NULL;
	if (path == NULL)
		return berth_err_set(err, ENOMEM, "artifact cache");
	struct berth_buf b = BERTH_BUF_INIT;
	for (size_t i = 0; i < n; i++)
		if (keys[i] != NULL && keys[i][0] != '\0')
			buf_printf(&b, "%s\n", keys[i]);
	int r;
	if (b.len == 0)
		r = unlink(path) == 0 || errno == ENOENT ? 0 : berth_err_set(err, errno, "cannot remove %s", path);
	else
		r = fs_mkdir_p(dir, 0700, err) < 0 ? -1 : fs_write_atomic(path, b.data, b.len, 0600, err);
	buf_free(&b);
	return r;
}

static char *meta_path(const char *state_dir, const char *key)
{
	return fs_path("%s/artifacts/.meta/%s", state_dir, key);
}

static void write_meta(const char *state_dir, const char *key, const char *url, uint64_t bytes)
{
	_cleanup_free_ char *dir = fs_path("%s/artifacts/.meta", state_dir);
	_cleanup_free_ char *path = meta_path(state_dir, key);
	struct berth_buf b = BERTH_BUF_INIT;
	struct berth_err err;
	buf_printf(&b, "%s\n%" PRIu64 "\n", url ? url : "", bytes);
	if (dir == NULL || path == NULL || b.data == NULL || fs_mkdir_p(dir, 0700, &err) < 0 ||
	    fs_write_atomic(path, b.data, b.len, 0600, &err) < 0)
		log_warn("artifact cache: cannot record entry %s: %s", key, dir && path && b.data ? err.msg : "out of memory");
	buf_free(&b);
}

/* *url (owned, NULL when not recorded) and *bytes of an entry; -1 when it
 * has no record. */
static int read_meta(const char *state_dir, const char *key, char **url, uint64_t *bytes)
{
	_cleanup_free_ char *path = meta_path(state_dir, key);
	struct berth_buf b = BERTH_BUF_INIT;
	struct berth_err err;
	*url = NULL;
	if (path == NULL || fs_read_file(path, &b, META_MAX, &err) < 0 || buf_append(&b, "", 1) < 0) {
		buf_free(&b);
		return -1;
	}
	char *nl = strchr(b.data, '\n');
	char *end = NULL;
	unsigned long long v = nl ? strtoull(nl + 1, &end, 10) : 0;
	int r = -1;
	if (nl != NULL && end != nl + 1 && *end == '\n') {
		*nl = '\0';
		*url = b.data[0] ? strdup(b.data) : NULL;
		*bytes = v;
		r = 0;
	}
	buf_free(&b);
	return r;
}

void artifact_cache_used(const char *state_dir, const char *key, const char *url, bool made)
{
	_cleanup_free_ char *dest = fs_path("%s/artifacts/%s", state_dir, key);
	if (dest == NULL)
		return;
	if (made)
		write_meta(state_dir, key, url, fs_tree_bytes(dest));
	if (utimensat(AT_FDCWD, dest, NULL, 0) < 0)
		log_warn("artifact cache: cannot mark %s used: %s", dest, strerror(errno));
}

/* ---- who holds what ------------------------------------------------------ */

struct holds {
	char (*key)[ARTIFACT_KEY_LEN + 1];
	char **id;
	size_t n, cap;
};

static void holds_free(struct holds *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->id[i]);
	free(h->key);
	free(h->id);
}

static int holds_add(struct holds *h, const char *key, const char *id)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		char(*k)[ARTIFACT_KEY_LEN + 1] = realloc(h->key, cap * sizeof(*k));
		if (k == NULL)
			return -1;
		h->key = k;
		char **ids = realloc(h->id, cap * sizeof(char *));
		if (ids == NULL)
			return -1;
		h->id = ids;
		h->cap = cap;
	}
	if ((h->id[h->n] = strdup(id)) == NULL)
		return -1;
	memcpy(h->key[h->n], key, ARTIFACT_KEY_LEN + 1);
	h->n++;
	return 0;
}

/* Reads every STATE/containers/ID/artifacts. */
static int read_holds(const char *state_dir, struct holds *h, struct berth_err *err)
{
	_cleanup_free_ char *dir = state_path_container(state_dir, NULL);
	if (dir == NULL)
		return berth_err_set(err, ENOMEM, "artifact cache");
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : berth_err_set(err, errno, "cannot read %s", dir);
	int r = 0;
	for (struct dirent *de; r == 0 && (de = readdir(d)) != NULL;) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *path = fs_path("%s/%s/%s", dir, de->d_name, HOLDS_FILE);
		struct berth_buf b = BERTH_BUF_INIT;
		struct berth_err ignored;
		if (path == NULL) {
			r = berth_err_set(err, ENOMEM, "artifact cache");
		} else if (fs_read_file(path, &b, META_MAX, &ignored) == 0 && buf_append(&b, "", 1) == 0) {
			char *save = NULL;
			for (char *line = strtok_r(b.data, "\n", &save); line && r == 0; line = strtok_r(NULL, "\n", &save))
				if (is_key(line) && holds_add(h, line, de->d_name) < 0)
					r = berth_err_set(err, ENOMEM, "artifact cache");
		}
		buf_free(&b);
	}
	closedir(d);
	return r;
}

/* ---- listing -------------------------------------------------------------- */

void artifact_entries_free(struct artifact_entry *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].url);
		for (size_t j = 0; j < v[i].n_holders; j++)
			free(v[i].holders[j]);
		free(v[i].holders);
	}
	free(v);
}

static int by_last_used(const void *a, const void *b)
{
	const struct artifact_entry *x = a, *y = b;
	if (x->last_used != y->last_used)
		return x->last_used < y->last_used ? -1 : 1;
	return strcmp(x->key, y->key);
}

static int add_entry(const char *state_dir, const char *key, const struct holds *h, struct artifact_entry **v,
		     size_t *n, size_t *cap)
{
	_cleanup_free_ char *path = fs_path("%s/artifacts/%s", state_dir, key);
	struct stat st;
	if (path == NULL)
		return -1;
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct artifact_entry *grown = realloc(*v, c * sizeof(**v));
		if (grown == NULL)
			return -1;
		*v = grown;
		*cap = c;
	}
	struct artifact_entry *e = &(*v)[*n];
	memset(e, 0, sizeof(*e));
	memcpy(e->key, key, ARTIFACT_KEY_LEN + 1);
	e->last_used = (long long)st.st_mtim.tv_sec;
	if (read_meta(state_dir, key, &e->url, &e->bytes) < 0) { /* made before berth recorded it */
		e->bytes = fs_tree_bytes(path);
		write_meta(state_dir, key, NULL, e->bytes);
	}
	(*n)++;
	for (size_t i = 0; i < h->n; i++) {
		if (strcmp(h->key[i], key) != 0)
			continue;
		char **grown = realloc(e->holders, (e->n_holders + 1) * sizeof(char *));
		if (grown == NULL)
			return -1;
		e->holders = grown;
		if ((e->holders[e->n_holders] = strdup(h->id[i])) == NULL)
			return -1;
		e->n_holders++;
	}
	return 0;
}

static int list_with(const char *state_dir, const struct holds *h, struct artifact_entry **out, size_t *n_out,
		     struct berth_err *err)
{
	*out = NULL;
	*n_out = 0;
	_cleanup_free_ char *dir = fs_path("%s/artifacts", state_dir);
	if (dir == NULL)
		return berth_err_set(err, ENOMEM, "artifact cache");
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : berth_err_set(err, errno, "cannot read %s", dir);
	struct artifact_entry *v = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	for (struct dirent *de; r == 0 && (de = readdir(d)) != NULL;)
		if (is_key(de->d_name) && add_entry(state_dir, de->d_name, h, &v, &n, &cap) < 0)
			r = berth_err_set(err, ENOMEM, "artifact cache");
	closedir(d);
	if (r < 0) {
		artifact_entries_free(v, n);
		return -1;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), by_last_used);
	*out = v;
	*n_out = n;
	return 0;
}

int artifact_cache_list(const char *state_dir, struct artifact_entry **out, size_t *n, struct berth_err *err)
{
	struct holds h = { 0 };
	int r = read_holds(state_dir, &h, err) < 0 ? -1 : list_with(state_dir, &h, out, n, err);
	holds_free(&h);
	return r;
}

/* ---- removal -------------------------------------------------------------- */

/* Drops the .last records (artifact.c) that name key. */
static void forget_last(const char *state_dir, const char *key)
{
	_cleanup_free_ char *dir = fs_path("%s/artifacts/.last", state_dir);
	DIR *d = dir ? opendir(dir) : NULL;
	if (d == NULL)
		return;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		char buf[ARTIFACT_KEY_LEN + 1];
		int fd = de->d_name[0] != '.' ? openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
		if (fd < 0)
			continue;
		ssize_t got = read(fd, buf, ARTIFACT_KEY_LEN);
		close(fd);
		if (got == ARTIFACT_KEY_LEN && memcmp(buf, key, ARTIFACT_KEY_LEN) == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

/* Out of sight first (one rename), then removed. */
static int remove_entry(const char *state_dir, const char *key, struct berth_err *err)
{
	_cleanup_free_ char *path = fs_path("%s/artifacts/%s", state_dir, key);
	_cleanup_free_ char *gone = fs_path("%s/artifacts/.gone-%s", state_dir, key);
	_cleanup_free_ char *meta = meta_path(state_dir, key);
	if (path == NULL || gone == NULL || meta == NULL)
		return berth_err_set(err, ENOMEM, "artifact cache");
	if (fs_remove_tree(gone, err) < 0)
		return -1;
	if (rename(path, gone) < 0)
		return berth_err_set(err, errno, "cannot remove %s", path);
	forget_last(state_dir, key);
	unlink(meta);
	return fs_remove_tree(gone, err);
}

/* What an unpack or a removal interrupted by a crash left: KEY.partial.*
 * and .gone-KEY. Only with the lock held exclusive. */
static void sweep_leftovers(const char *state_dir)
{
	_cleanup_free_ char *dir = fs_path("%s/artifacts", state_dir);
	DIR *d = dir ? opendir(dir) : NULL;
	if (d == NULL)
		return;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		if (strstr(de->d_name, ".partial.") == NULL && strncmp(de->d_name, ".gone-", 6) != 0)
			continue;
		_cleanup_free_ char *p = fs_path("%s/%s", dir, de->d_name);
		struct berth_err err;
		if (p != NULL && fs_remove_tree(p, &err) < 0)
			log_warn("artifact cache: %s", err.msg);
	}
	closedir(d);
}

int artifact_cache_prune(const char *state_dir, uint64_t keep_bytes, size_t *removed, uint64_t *freed,
			 struct berth_err *err)
{
	*removed = 0;
	*freed = 0;
	_cleanup_close_ int lock = artifact_cache_lock(state_dir, true, err);
	if (lock < 0)
		return -1;
	sweep_leftovers(state_dir);
	struct holds h = { 0 };
	struct artifact_entry *v = NULL;
	size_t n = 0;
	if (read_holds(state_dir, &h, err) < 0 || list_with(state_dir, &h, &v, &n, err) < 0) {
		holds_free(&h);
		return -1;
	}
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += v[i].bytes;
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) { /* least recently used first */
		if (keep_bytes > 0 && total <= keep_bytes)
			break;
		if (v[i].n_holders > 0)
			continue;
		if (remove_entry(state_dir, v[i].key, err) < 0) {
			r = -1;
			break;
		}
		log_info("artifact cache: removed %s (%s, %" PRIu64 " bytes, held by no container)", v[i].key,
			 v[i].url ? v[i].url : "URL not recorded", v[i].bytes);
		total -= v[i].bytes;
		*freed += v[i].bytes;
		(*removed)++;
	}
	artifact_entries_free(v, n);
	holds_free(&h);
	return r;
}
