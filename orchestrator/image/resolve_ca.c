/* resolve_ca.c — see resolve_ca.h. */
#include "resolve_ca.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "fsutil.h"

#define CRT_FILES_MAX 256

void resolve_ca_init(struct resolve_ca_cache *c, const char *system_bundle)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->system_bundle = system_bundle;
}

void resolve_ca_free(struct resolve_ca_cache *c)
{
	for (size_t i = 0; i < RESOLVE_CA_SETS; i++) {
		free(c->sets[i].cert_dir);
		free(c->sets[i].pem);
	}
	pthread_mutex_destroy(&c->lock);
	memset(c, 0, sizeof(*c));
}

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Folds a file's identity (or its absence) into h. */
static uint64_t fold_file(uint64_t h, const char *path)
{
	struct stat st;
	h = fnv(h, path, strlen(path) + 1);
	if (stat(path, &st) < 0) {
		int e = errno;
		return fnv(h, &e, sizeof(e));
	}
	long long id[6] = { (long long)st.st_dev, (long long)st.st_ino, (long long)st.st_size,
			    (long long)st.st_mtim.tv_sec, (long long)st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_nsec };
	return fnv(h, id, sizeof(id));
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct crt_list {
	char *names[CRT_FILES_MAX];
	size_t n;
};

static void crt_list_free(struct crt_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	l->n = 0;
}

/* The directory's .crt names (sorted) and its client certificate. */
static int list_dir(const char *cert_dir, struct crt_list *crts, char **cert, char **key, char *why, size_t why_size)
{
	DIR *d = opendir(cert_dir);
	if (d == NULL) {
		snprintf(why, why_size, "cannot read cert_dir %s: %s", cert_dir, strerror(errno));
		return -1;
	}
	int rc = 0;
	for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
		size_t n = strlen(e->d_name);
		if (n > 4 && strcmp(e->d_name + n - 4, ".crt") == 0) {
			if (crts->n == CRT_FILES_MAX) {
				snprintf(why, why_size, "cert_dir %s has more than %d .crt files", cert_dir, CRT_FILES_MAX);
				rc = -1;
			} else if ((crts->names[crts->n] = strdup(e->d_name)) == NULL) {
				snprintf(why, why_size, "out of memory");
				rc = -1;
			} else {
				crts->n++;
			}
		} else if (n > 5 && strcmp(e->d_name + n - 5, ".cert") == 0 && *cert == NULL) {
			*cert = fs_path("%s/%s", cert_dir, e->d_name);
			*key = fs_path("%s/%.*s.key", cert_dir, (int)(n - 5), e->d_name);
			if (*cert == NULL || *key == NULL) {
				snprintf(why, why_size, "out of memory");
				rc = -1;
			}
		}
	}
	closedir(d);
	qsort(crts->names, crts->n, sizeof(crts->names[0]), by_name);
	return rc;
}

/* The PEM text: the system bundle (when readable) then each .crt. */
static int build_pem(const struct resolve_ca_cache *c, const char *cert_dir, const struct crt_list *crts,
		     struct berth_buf *out, char *why, size_t why_size)
{
	struct berth_err err;
	if (c->system_bundle && fs_read_file(c->system_bundle, out, RESOLVE_CA_MAX, &err) == 0)
		buf_append(out, "\n", 1);
	else
		buf_reset(out); /* no system CAs here: the cert_dir's alone */
	for (size_t i = 0; i < crts->n; i++) {
		_cleanup_free_ char *p = fs_path("%s/%s", cert_dir, crts->names[i]);
		if (p == NULL || fs_read_file(p, out, RESOLVE_CA_MAX, &err) < 0 || buf_append(out, "\n", 1) < 0 ||
		    out->len > RESOLVE_CA_MAX) {
			snprintf(why, why_size, "cannot read %s: %s", p ? p : cert_dir, p ? err.msg : "out of memory");
			return -1;
		}
	}
	return 0;
}

int resolve_ca_get(struct resolve_ca_cache *c, const char *cert_dir, uint64_t *signature, char **pem, size_t *len,
		   char **cert, char **key, char *why, size_t why_size)
{
	uint64_t held = *signature;
	*pem = *cert = *key = NULL;
	*len = 0;
	struct crt_list crts = { .n = 0 };
	if (list_dir(cert_dir, &crts, cert, key, why, why_size) < 0)
		goto fail;
	*signature = 0;
	if (crts.n == 0)
		return 0;
	uint64_t sig = fold_file(14695981039346656037ULL, cert_dir);
	if (c->system_bundle)
		sig = fold_file(sig, c->system_bundle);
	for (size_t i = 0; i < crts.n; i++) {
		_cleanup_free_ char *p = fs_path("%s/%s", cert_dir, crts.names[i]);
		if (p == NULL) {
			snprintf(why, why_size, "out of memory");
			goto fail;
		}
		sig = fold_file(sig, p);
	}
	sig |= 1; /* never 0, which means no .crt */
	*signature = sig;
	if (sig == held) {
		crt_list_free(&crts);
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	struct resolve_ca_set *hit = NULL;
	for (size_t i = 0; i < RESOLVE_CA_SETS && hit == NULL; i++)
		if (c->sets[i].cert_dir && strcmp(c->sets[i].cert_dir, cert_dir) == 0 && c->sets[i].signature == sig)
			hit = &c->sets[i];
	if (hit && (*pem = malloc(hit->len + 1)) != NULL) {
		memcpy(*pem, hit->pem, hit->len + 1);
		*len = hit->len;
		hit->used = ++c->clock;
	}
	pthread_mutex_unlock(&c->lock);
	if (*pem) {
		crt_list_free(&crts);
		return 0;
	}
	/* read outside the lock; another thread may do the same meanwhile */
	struct berth_buf text = BERTH_BUF_INIT;
	if (build_pem(c, cert_dir, &crts, &text, why, why_size) < 0) {
		buf_free(&text);
		goto fail;
	}
	if ((*pem = malloc(text.len + 1)) == NULL) {
		snprintf(why, why_size, "out of memory");
		buf_free(&text);
		goto fail;
	}
	memcpy(*pem, text.data, text.len);
	(*pem)[text.len] = '\0';
	*len = text.len;
	char *dir_copy = strdup(cert_dir);
	pthread_mutex_lock(&c->lock);
	c->loads++;
	struct resolve_ca_set *slot = NULL;
	for (size_t i = 0; i < RESOLVE_CA_SETS && slot == NULL; i++)
		if (c->sets[i].cert_dir && strcmp(c->sets[i].cert_dir, cert_dir) == 0)
			slot = &c->sets[i];
	for (size_t i = 0; i < RESOLVE_CA_SETS && slot == NULL; i++)
		if (c->sets[i].cert_dir == NULL)
			slot = &c->sets[i];
	if (slot == NULL) { /* full: the least recently used goes */
		slot = &c->sets[0];
		for (size_t i = 1; i < RESOLVE_CA_SETS; i++)
			if (c->sets[i].used < slot->used)
				slot = &c->sets[i];
	}
	if (dir_copy && text.data) {
		free(slot->cert_dir);
		free(slot->pem);
		slot->cert_dir = dir_copy;
		slot->signature = sig;
		slot->pem = text.data; /* the buffer's NUL-terminated text, kept */
		slot->len = text.len;
		slot->used = ++c->clock;
		text = (struct berth_buf)BERTH_BUF_INIT;
		dir_copy = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(dir_copy);
	buf_free(&text);
	crt_list_free(&crts);
	return 0;
fail:
	crt_list_free(&crts);
	free(*cert);
	free(*key);
	*cert = *key = NULL;
	return -1;
}
